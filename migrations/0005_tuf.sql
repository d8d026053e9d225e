-- TUF repository: every signed version of every role, and the target files
-- by content hash, so replicas serve the same metadata.
CREATE TABLE tuf_metadata (
  role       TEXT NOT NULL,        -- root, targets, snapshot, timestamp
  version    BIGINT NOT NULL CHECK (version > 0),
  body       BYTEA NOT NULL,
  created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
  PRIMARY KEY (role, version)
);

CREATE TABLE tuf_targets (
  sha256 TEXT NOT NULL,
  name   TEXT NOT NULL,
  body   BYTEA NOT NULL,
  PRIMARY KEY (sha256, name)
);
