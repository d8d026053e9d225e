-- Signed entry timestamps are signed once, when an entry is integrated, and
-- kept: after a log key rotation the old key is gone, and its entries must
-- still be served with the SETs it signed.
CREATE TABLE rekor_sets (
  tree_id    BIGINT NOT NULL,
  leaf_index BIGINT NOT NULL CHECK (leaf_index >= 0),
  set        BYTEA NOT NULL,
  PRIMARY KEY (tree_id, leaf_index)
);

-- The checkpoint signed over the leaves the index has seen, stored with them:
-- when the key rotates, the old tree is frozen at this checkpoint, which the
-- old key signed, and served as an inactive shard.
ALTER TABLE search_index_watermark ADD COLUMN checkpoint TEXT;
