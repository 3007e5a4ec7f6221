-- Retention: `retention_days` (from the initial schema) limits how old an
-- event may get, `max_events` how many a project keeps; NULL means the
-- instance default (SNAG_RETENTION_DAYS / SNAG_RETENTION_MAX_EVENTS), 0
-- means no limit. The purge job walks these indexes in small batches.
ALTER TABLE project ADD COLUMN max_events BIGINT;
CREATE INDEX attachment_created ON attachment (project_id, created_at);
CREATE INDEX user_report_created ON user_report (project_id, created_at);
CREATE INDEX monitor_check_in_created ON monitor_check_in (created_at);
CREATE INDEX issue_project_last_seen_only ON issue (project_id, last_seen);
