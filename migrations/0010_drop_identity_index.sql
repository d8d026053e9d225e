-- Trillian indexes SequencedLeafData by identity hash for lookups in its own
-- QueueLeaves, which Signet does not use. Signet's identity hash is the leaf
-- hash, and every lookup by hash goes through SequencedLeafMerkleIdx on the
-- same values. Dropping the copy saves about 88 bytes per entry and the work
-- of keeping it up to date on every append.
DROP INDEX IF EXISTS SequencedLeafIdentityIdx;
