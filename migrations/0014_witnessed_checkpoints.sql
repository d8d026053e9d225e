-- The newest checkpoint of each tree that witnesses cosigned
-- (log.v2.witness): the log's signed note followed by the witnesses'
-- cosignature lines. It is what /checkpoint serves once the quorum has
-- cosigned, kept here so that a restart serves it again instead of
-- nothing. tree_size only grows (pgstore.Tree.StoreWitnessed).
CREATE TABLE signet_witnessed_checkpoints (
    tree_id    bigint PRIMARY KEY,
    tree_size  bigint NOT NULL,
    checkpoint text NOT NULL,
    stored_at  timestamptz NOT NULL DEFAULT now()
);
