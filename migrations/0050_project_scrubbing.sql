-- Per-project data scrubber settings beyond the on/off switches of 0001:
-- whether the default sensitive-field list and value patterns apply, and
-- extra sensitive field names / never-scrubbed field names.
ALTER TABLE project
    ADD COLUMN scrub_defaults BOOLEAN NOT NULL DEFAULT true,
    ADD COLUMN scrub_sensitive_fields TEXT[] NOT NULL DEFAULT '{}',
    ADD COLUMN scrub_safe_fields TEXT[] NOT NULL DEFAULT '{}';
