-- Stacks and frames are found by content in memory (store/ingest.py Dictionaries): a stack's hash
-- is recomputed from its frame ids when the store opens, a frame is keyed by its columns. The
-- stored hash columns were never read back; without them the stacks table is ~15% smaller.
ALTER TABLE stacks DROP COLUMN hash;
ALTER TABLE frames DROP COLUMN hash;
