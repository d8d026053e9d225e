-- Every row appended to a tree fired a foreign-key check on insert: an SQL
-- query with a row lock per LeafData and SequencedLeafData row (two for
-- the latter), per tile and per tree head. A profile of PostgreSQL under
-- appends put a fifth of its CPU in those checks. The rows are written
-- only by the append path, which writes a leaf's LeafData and
-- SequencedLeafData rows in one statement and never deletes any, and no
-- tree is ever deleted (Trillian's HardDeleteTree relied on the cascades;
-- Signet does not call it). TreeControl and signet_logs keep theirs.
ALTER TABLE LeafData DROP CONSTRAINT IF EXISTS leafdata_treeid_fkey;
ALTER TABLE SequencedLeafData DROP CONSTRAINT IF EXISTS sequencedleafdata_treeid_fkey;
ALTER TABLE SequencedLeafData DROP CONSTRAINT IF EXISTS sequencedleafdata_treeid_leafidentityhash_fkey;
ALTER TABLE Subtree DROP CONSTRAINT IF EXISTS subtree_treeid_fkey;
ALTER TABLE TreeHead DROP CONSTRAINT IF EXISTS treehead_treeid_fkey;

-- A tile (up to 256 leaf hashes, about 10 KB) is rewritten by every batch
-- that adds to it. PostgreSQL tried to compress each new version: hashes do
-- not compress, and the attempts were another twelfth of its CPU. Tiles
-- are still stored out of line, uncompressed.
ALTER TABLE Subtree ALTER COLUMN Nodes SET STORAGE EXTERNAL;
