-- Tables and functions queried by Trillian's PostgreSQL log storage
-- (github.com/google/trillian/storage/postgresql, v1.8). Names, columns and
-- the two PL/pgSQL functions must match what that code runs.

CREATE TYPE TreeState AS ENUM ('ACTIVE', 'FROZEN', 'DRAINING');
CREATE TYPE TreeType AS ENUM ('LOG', 'MAP', 'PREORDERED_LOG');

CREATE TABLE Trees (
  TreeId                BIGINT NOT NULL PRIMARY KEY,
  TreeState             TreeState NOT NULL,
  TreeType              TreeType NOT NULL,
  DisplayName           VARCHAR(20),
  Description           VARCHAR(200),
  CreateTimeMillis      BIGINT NOT NULL,
  UpdateTimeMillis      BIGINT NOT NULL,
  MaxRootDurationMillis BIGINT NOT NULL,
  Deleted               BOOLEAN,
  DeleteTimeMillis      BIGINT
);

CREATE TABLE TreeControl (
  TreeId                  BIGINT NOT NULL PRIMARY KEY REFERENCES Trees(TreeId) ON DELETE CASCADE,
  SigningEnabled          BOOLEAN NOT NULL,
  SequencingEnabled       BOOLEAN NOT NULL,
  SequenceIntervalSeconds INTEGER NOT NULL
);

CREATE TABLE Subtree (
  TreeId    BIGINT NOT NULL REFERENCES Trees(TreeId) ON DELETE CASCADE,
  SubtreeId BYTEA NOT NULL CHECK (length(SubtreeId) <= 255),
  Nodes     BYTEA NOT NULL,
  CONSTRAINT Subtree_pk PRIMARY KEY (TreeId, SubtreeId)
);

CREATE TABLE TreeHead (
  TreeId            BIGINT NOT NULL REFERENCES Trees(TreeId) ON DELETE CASCADE,
  TreeHeadTimestamp BIGINT,
  TreeSize          BIGINT,
  RootHash          BYTEA NOT NULL CHECK (length(RootHash) <= 255),
  RootSignature     BYTEA NOT NULL CHECK (length(RootSignature) <= 1024),
  PRIMARY KEY (TreeId, TreeHeadTimestamp)
);

-- One row per distinct leaf, keyed by the identity hash Trillian dedups on.
CREATE TABLE LeafData (
  TreeId              BIGINT NOT NULL REFERENCES Trees(TreeId) ON DELETE CASCADE,
  LeafIdentityHash    BYTEA NOT NULL CHECK (length(LeafIdentityHash) <= 255),
  LeafValue           BYTEA NOT NULL,
  ExtraData           BYTEA,
  QueueTimestampNanos BIGINT NOT NULL,
  PRIMARY KEY (TreeId, LeafIdentityHash)
);

-- One row per integrated leaf: its position in the tree.
CREATE TABLE SequencedLeafData (
  TreeId                  BIGINT NOT NULL REFERENCES Trees(TreeId) ON DELETE CASCADE,
  SequenceNumber          BIGINT NOT NULL CHECK (SequenceNumber >= 0),
  LeafIdentityHash        BYTEA NOT NULL CHECK (length(LeafIdentityHash) <= 255),
  MerkleLeafHash          BYTEA NOT NULL CHECK (length(MerkleLeafHash) <= 255),
  IntegrateTimestampNanos BIGINT NOT NULL,
  PRIMARY KEY (TreeId, SequenceNumber),
  FOREIGN KEY (TreeId, LeafIdentityHash) REFERENCES LeafData(TreeId, LeafIdentityHash) ON DELETE CASCADE
);

CREATE INDEX SequencedLeafMerkleIdx ON SequencedLeafData(TreeId, MerkleLeafHash);
CREATE INDEX SequencedLeafIdentityIdx ON SequencedLeafData(TreeId, LeafIdentityHash);

-- Leaves queued but not yet integrated.
CREATE TABLE Unsequenced (
  TreeId              BIGINT NOT NULL,
  Bucket              INTEGER NOT NULL,
  LeafIdentityHash    BYTEA NOT NULL CHECK (length(LeafIdentityHash) <= 255),
  MerkleLeafHash      BYTEA NOT NULL CHECK (length(MerkleLeafHash) <= 255),
  QueueTimestampNanos BIGINT NOT NULL,
  QueueID             BYTEA DEFAULT NULL UNIQUE CHECK (length(QueueID) <= 32),
  PRIMARY KEY (TreeId, Bucket, QueueTimestampNanos, LeafIdentityHash)
);

CREATE FUNCTION count_estimate(table_name text) RETURNS bigint
LANGUAGE plpgsql AS $$
DECLARE
  n bigint;
  plan jsonb;
BEGIN
  EXECUTE 'SELECT count(1) FROM (SELECT 1 FROM ' || table_name || ' LIMIT 10000) sub' INTO n;
  IF n < 10000 THEN
    RETURN n;
  END IF;
  EXECUTE 'ANALYZE ' || table_name || ';EXPLAIN (FORMAT JSON) SELECT * FROM ' || table_name INTO plan;
  RETURN plan->0->'Plan'->'Plan Rows';
EXCEPTION
  WHEN OTHERS THEN
    RETURN 0;
END;
$$;

-- Called by QueueLeaves after it fills the session's TempQueueLeaves table:
-- stores new leaves and returns the identity hashes that already existed.
CREATE FUNCTION queue_leaves() RETURNS SETOF bytea
LANGUAGE plpgsql AS $$
BEGIN
  LOCK TABLE LeafData, Unsequenced IN SHARE ROW EXCLUSIVE MODE;
  UPDATE TempQueueLeaves t SET IsDuplicate = TRUE
    FROM LeafData l
    WHERE t.TreeId = l.TreeId AND t.LeafIdentityHash = l.LeafIdentityHash;
  INSERT INTO LeafData (TreeId, LeafIdentityHash, LeafValue, ExtraData, QueueTimestampNanos)
    SELECT TreeId, LeafIdentityHash, LeafValue, ExtraData, QueueTimestampNanos
    FROM TempQueueLeaves WHERE NOT IsDuplicate;
  INSERT INTO Unsequenced (TreeId, Bucket, LeafIdentityHash, MerkleLeafHash, QueueTimestampNanos, QueueID)
    SELECT TreeId, 0, LeafIdentityHash, MerkleLeafHash, QueueTimestampNanos, QueueID
    FROM TempQueueLeaves WHERE NOT IsDuplicate;
  RETURN QUERY SELECT DISTINCT LeafIdentityHash FROM TempQueueLeaves WHERE IsDuplicate;
END;
$$;

-- Called by AddSequencedLeaves (pre-ordered logs) after it fills TempAddSequencedLeaves.
CREATE FUNCTION add_sequenced_leaves()
RETURNS TABLE(leaf_identity_hash bytea, is_duplicate_leaf_data boolean, is_duplicate_sequenced_leaf_data boolean)
LANGUAGE plpgsql AS $$
BEGIN
  LOCK TABLE LeafData, SequencedLeafData IN SHARE ROW EXCLUSIVE MODE;
  UPDATE TempAddSequencedLeaves t SET IsDuplicateLeafData = TRUE
    FROM LeafData l
    WHERE t.TreeId = l.TreeId AND t.LeafIdentityHash = l.LeafIdentityHash;
  UPDATE TempAddSequencedLeaves t SET IsDuplicateSequencedLeafData = TRUE
    FROM SequencedLeafData s
    WHERE t.TreeId = s.TreeId AND t.SequenceNumber = s.SequenceNumber;
  INSERT INTO LeafData (TreeId, LeafIdentityHash, LeafValue, ExtraData, QueueTimestampNanos)
    SELECT TreeId, LeafIdentityHash, LeafValue, ExtraData, QueueTimestampNanos
    FROM TempAddSequencedLeaves WHERE NOT IsDuplicateLeafData AND NOT IsDuplicateSequencedLeafData;
  INSERT INTO SequencedLeafData (TreeId, LeafIdentityHash, MerkleLeafHash, SequenceNumber, IntegrateTimestampNanos)
    SELECT TreeId, LeafIdentityHash, MerkleLeafHash, SequenceNumber, 0
    FROM TempAddSequencedLeaves WHERE NOT IsDuplicateLeafData AND NOT IsDuplicateSequencedLeafData;
  RETURN QUERY SELECT LeafIdentityHash, IsDuplicateLeafData, IsDuplicateSequencedLeafData
    FROM TempAddSequencedLeaves;
END;
$$;
