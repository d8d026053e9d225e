-- Whether the lease's holder is one of several replicas
-- (replicas.advertise_url): its address is then where the others forward
-- requests to. A server that is not a replica has nowhere to be forwarded
-- to, and a replica started beside it refuses to start.
ALTER TABLE signet_writer_lease ADD COLUMN replica boolean NOT NULL DEFAULT false;
