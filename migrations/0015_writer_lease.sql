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
    token       bigint NOT NULL,
    acquired_at timestamptz NOT NULL DEFAULT now(),
    expires_at  timestamptz NOT NULL
);

-- The fence every batch's transaction runs (pgstore): it fails, and so
-- rolls the transaction back, unless token is still the lease's, and
-- holds the row until the transaction ends, so a takeover waits for a
-- commit already under way instead of slipping in before it.
CREATE FUNCTION signet_check_writer(t bigint) RETURNS void AS $$
BEGIN
    PERFORM 1 FROM signet_writer_lease WHERE token = t FOR SHARE;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'this server no longer holds the database''s writer lease (token %)', t
            USING ERRCODE = 'SG001';
    END IF;
END
$$ LANGUAGE plpgsql;
