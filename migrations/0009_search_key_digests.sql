-- Search keys are kept as their SHA-256: 32 bytes whatever the key (an
-- artifact hash key "sha256:<64 hex>" is 71), which shrinks the index rows
-- and their primary key. Lookups hash the key the same way. The rows move
-- to a new table so the space of the old ones is returned at once.
CREATE TABLE search_index_digests (
  key       BYTEA NOT NULL CHECK (length(key) = 32),
  tree_id   BIGINT NOT NULL,
  leaf_hash BYTEA NOT NULL CHECK (length(leaf_hash) = 32),
  PRIMARY KEY (key, tree_id, leaf_hash)
);
INSERT INTO search_index_digests (key, tree_id, leaf_hash)
  SELECT sha256(convert_to(key, 'UTF8')), tree_id, leaf_hash FROM search_index
  ON CONFLICT DO NOTHING;
DROP TABLE search_index;
ALTER TABLE search_index_digests RENAME TO search_index;
ALTER INDEX search_index_digests_pkey RENAME TO search_index_pkey;
