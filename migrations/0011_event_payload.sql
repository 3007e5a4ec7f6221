-- Event payloads are stored zstd-compressed in `payload`: about a third of
-- the JSONB size, and PostgreSQL no longer parses every event's JSON on the
-- write path. `data` keeps the rows written before this migration and is
-- NULL for new ones; readers take whichever is set.
ALTER TABLE event ALTER COLUMN data DROP NOT NULL;
ALTER TABLE event ADD COLUMN payload BYTEA;

-- "Ignore until N users": an ignored issue wakes up once this many distinct
-- users have seen it (an absolute user_count, like ignored_until_count).
ALTER TABLE issue ADD COLUMN ignored_until_user_count BIGINT;
