-- The database's writer lease: the one signet-server that may commit to
-- its trees (internal/lease). A server takes it at start-up if it is free
-- or has expired, renews it every TTL/4, and gives it up when it stops;
-- each take bumps token, and every batch's transaction checks that the
-- token is still the committing server's (pgstore's fence), so a server
-- that lost the lease (paused, partitioned) cannot commit beside the one
-- that took it. One row: replicas, with one writer each per tree, are
-- issue #16's.
CREATE TABLE signet_writer_lease (
    one         boolean PRIMARY KEY DEFAULT true CHECK (one),
    holder      text NOT NULL,
    address     text NOT NULL,
    -- UNIQUE makes the token a key: a take, which bumps it, conflicts
    -- with the fence's FOR KEY SHARE (it waits for a commit under way),
    -- while a renewal, which does not, goes through beside it.
    token       bigint NOT NULL UNIQUE,
    acquired_at timestamptz NOT NULL DEFAULT now(),
    expires_at  timestamptz NOT NULL
);

-- The fence every batch's transaction runs (pgstore): it fails, and so
-- rolls the transaction back, unless token and holder are still the
-- lease's, and holds the row FOR KEY SHARE until the transaction ends, so
-- a takeover (which bumps the token, a key) waits for a commit under way
-- instead of slipping in before it; renewals do not wait. The holder is
-- checked too: a token could come back after a restore or an asynchronous
-- failover lost its bump, a holder (host, process, random nonce) cannot.
CREATE FUNCTION signet_check_writer(t bigint, h text) RETURNS void AS $$
BEGIN
    PERFORM 1 FROM signet_writer_lease WHERE token = t AND holder = h FOR KEY SHARE;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'this server (%) no longer holds the database''s writer lease (token %)', h, t
            USING ERRCODE = 'SG001';
    END IF;
END
$$ LANGUAGE plpgsql;
