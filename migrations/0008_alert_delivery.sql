-- Delivery state for alert_outbox rows: pending → sent | suppressed
-- (cool-down) | skipped (no email configured, no recipients) | failed (gave
-- up after retries).
ALTER TABLE alert_outbox ADD COLUMN status TEXT NOT NULL DEFAULT 'pending';
ALTER TABLE alert_outbox ADD COLUMN recipients TEXT[] NOT NULL DEFAULT '{}';
ALTER TABLE alert_outbox ADD COLUMN digest BOOLEAN NOT NULL DEFAULT false;
DROP INDEX alert_outbox_pending;
CREATE INDEX alert_outbox_pending ON alert_outbox (next_attempt_at) WHERE status = 'pending';
CREATE INDEX alert_outbox_issue_sent ON alert_outbox (issue_id, kind, sent_at) WHERE status = 'sent';
