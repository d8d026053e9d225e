-- The log key rotations an operator asked for (signet-server admin rotate
-- log|ct): a production server that starts with a key other than its
-- tree's retires the tree only for a key named here, so a wrong key file
-- or a stray environment variable stops start-up instead of freezing the
-- log. done_at is set once the new tree exists.
CREATE TABLE signet_rotation_requests (
    log_name     text NOT NULL,
    key_sha256   text NOT NULL,
    requested_at timestamptz NOT NULL DEFAULT now(),
    done_at      timestamptz,
    PRIMARY KEY (log_name, key_sha256)
);
