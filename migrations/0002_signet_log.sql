-- Signet's own tables for the transparency log.

-- Which Trillian tree serves which log, so a restart finds its tree again.
CREATE TABLE signet_logs (
  name       TEXT PRIMARY KEY,
  tree_id    BIGINT NOT NULL UNIQUE REFERENCES Trees(TreeId),
  -- PKIX DER of the key the tree was created with: starting with another key
  -- would make every earlier signature unverifiable with the published one.
  public_key BYTEA NOT NULL,
  created_at TIMESTAMPTZ NOT NULL DEFAULT now()
);

-- Search index: lower-cased key -> entry (tree and RFC 6962 leaf hash).
CREATE TABLE search_index (
  key       TEXT NOT NULL,
  tree_id   BIGINT NOT NULL,
  leaf_hash BYTEA NOT NULL CHECK (length(leaf_hash) = 32),
  PRIMARY KEY (key, tree_id, leaf_hash)
);

-- How far each tree's index is complete: leaves [0, indexed_size) are indexed.
CREATE TABLE search_index_watermark (
  tree_id      BIGINT PRIMARY KEY,
  indexed_size BIGINT NOT NULL CHECK (indexed_size >= 0)
);
