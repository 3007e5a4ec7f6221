-- Alert rules per project. A project without a row for a kind uses the
-- defaults (on, no filters; frequency: more than 100 events in 60 minutes).
CREATE TABLE alert_rule (
    project_id      BIGINT NOT NULL REFERENCES project (id) ON DELETE CASCADE,
    kind            TEXT NOT NULL,
    enabled         BOOLEAN NOT NULL DEFAULT true,
    -- Lowest event level that alerts (debug < info < warning < error < fatal); NULL: any.
    min_level       TEXT,
    -- Only events of this environment alert; NULL: any.
    environment     TEXT,
    -- Frequency rules: more than `threshold` events within `window_minutes`.
    threshold       BIGINT,
    window_minutes  INTEGER,
    PRIMARY KEY (project_id, kind)
);

-- Opting out of alert email: for one project, or (users.alerts_enabled) all.
ALTER TABLE users ADD COLUMN alerts_enabled BOOLEAN NOT NULL DEFAULT true;
CREATE TABLE alert_opt_out (
    user_id     BIGINT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    project_id  BIGINT NOT NULL REFERENCES project (id) ON DELETE CASCADE,
    PRIMARY KEY (user_id, project_id)
);

CREATE TABLE webhook (
    id          BIGSERIAL PRIMARY KEY,
    project_id  BIGINT NOT NULL REFERENCES project (id) ON DELETE CASCADE,
    url         TEXT NOT NULL,
    -- Signs every request (HMAC-SHA256); shown to owners and admins.
    secret      TEXT NOT NULL,
    enabled     BOOLEAN NOT NULL DEFAULT true,
    created_at  TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX webhook_project ON webhook (project_id);

-- Outbox rows written by ingest are email rows; the worker fans each out
-- once into one row per enabled webhook, so every channel has its own
-- attempts, backoff, cool-down and error.
ALTER TABLE alert_outbox ADD COLUMN channel TEXT NOT NULL DEFAULT 'email';
ALTER TABLE alert_outbox ADD COLUMN webhook_id BIGINT REFERENCES webhook (id) ON DELETE CASCADE;
ALTER TABLE alert_outbox ADD COLUMN fanned_out BOOLEAN NOT NULL DEFAULT false;
-- Frequency alerts are raised by the worker: it looks for an issue's last
-- one to avoid raising it again within the cool-down.
CREATE INDEX alert_outbox_issue_created ON alert_outbox (issue_id, kind, created_at);
CREATE INDEX alert_outbox_project_sent ON alert_outbox (project_id, sent_at) WHERE status = 'sent';
