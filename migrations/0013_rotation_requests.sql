-- The rotations an operator asked for (signet-server admin rotate
-- log|ct|ca|tsa, admin import-chain): a production server that starts with
-- a log key other than its tree's, or a CA or TSA chain other than the one
-- in use, changes it only for the key or chain named here, so a wrong key
-- file or a stray environment variable stops start-up instead of freezing
-- the log. what is the log ("rekor", "ct") or chain ("ca-chain",
-- "tsa-chain"); id names the new key (SHA-256 of its PKIX encoding) or
-- chain (SHA-256 of its first certificate). At most one request per what
-- is open; done_at closes it, once carried out or replaced.
CREATE TABLE signet_rotation_requests (
    what         text NOT NULL,
    id           text NOT NULL,
    requested_at timestamptz NOT NULL DEFAULT now(),
    done_at      timestamptz,
    PRIMARY KEY (what, id)
);

-- The one open request per what.
CREATE UNIQUE INDEX signet_rotation_requests_open ON signet_rotation_requests (what) WHERE done_at IS NULL;
