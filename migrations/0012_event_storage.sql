-- Event rows stay in the heap page, uncompressed by PostgreSQL: payloads
-- are already zstd-compressed (pglz would only burn CPU on them), and a row
-- of a few KB inline saves a TOAST insert and index entry per event.
ALTER TABLE event ALTER COLUMN payload SET STORAGE EXTERNAL;
ALTER TABLE event SET (toast_tuple_target = 8160);

-- The grouping info (which values made each hash) is stored compressed
-- like the payload; the hashes themselves as a plain array for SQL. Rows
-- written before keep their JSONB `grouping`.
ALTER TABLE event ADD COLUMN grouping_z BYTEA;
ALTER TABLE event ALTER COLUMN grouping_z SET STORAGE EXTERNAL;
ALTER TABLE event ADD COLUMN hashes TEXT[];
