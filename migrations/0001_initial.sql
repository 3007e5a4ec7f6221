-- Snag's initial schema. Migrations are append-only: never edit this file
-- once released; add a new numbered file instead.

CREATE TABLE organization (
    id          BIGSERIAL PRIMARY KEY,
    slug        TEXT NOT NULL UNIQUE,
    name        TEXT NOT NULL,
    created_at  TIMESTAMPTZ NOT NULL DEFAULT now()
);
INSERT INTO organization (slug, name) VALUES ('default', 'Default');

CREATE TABLE users (
    id             BIGSERIAL PRIMARY KEY,
    email          TEXT NOT NULL,
    name           TEXT NOT NULL DEFAULT '',
    password_hash  TEXT NOT NULL,
    is_admin       BOOLEAN NOT NULL DEFAULT false,
    is_active      BOOLEAN NOT NULL DEFAULT true,
    created_at     TIMESTAMPTZ NOT NULL DEFAULT now(),
    last_login_at  TIMESTAMPTZ
);
CREATE UNIQUE INDEX users_email_key ON users (lower(email));

CREATE TABLE organization_member (
    organization_id BIGINT NOT NULL REFERENCES organization (id) ON DELETE CASCADE,
    user_id         BIGINT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    role            TEXT NOT NULL DEFAULT 'member',
    PRIMARY KEY (organization_id, user_id)
);

-- Sessions are stored by the SHA-256 of their token, so a database leak does
-- not hand out live logins.
CREATE TABLE user_session (
    token_hash  TEXT PRIMARY KEY,
    user_id     BIGINT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    created_at  TIMESTAMPTZ NOT NULL DEFAULT now(),
    expires_at  TIMESTAMPTZ NOT NULL
);
CREATE INDEX user_session_user ON user_session (user_id);

CREATE TABLE project (
    id                 BIGSERIAL PRIMARY KEY,
    organization_id    BIGINT NOT NULL REFERENCES organization (id) ON DELETE CASCADE,
    slug               TEXT NOT NULL,
    name               TEXT NOT NULL,
    platform           TEXT,
    grouping_config    TEXT NOT NULL DEFAULT 'snag:2026-11',
    fingerprint_rules  TEXT NOT NULL DEFAULT '',
    scrub_data         BOOLEAN NOT NULL DEFAULT true,
    scrub_ip           BOOLEAN NOT NULL DEFAULT false,
    retention_days     INTEGER,
    created_at         TIMESTAMPTZ NOT NULL DEFAULT now(),
    UNIQUE (organization_id, slug)
);

CREATE TABLE project_key (
    id                     BIGSERIAL PRIMARY KEY,
    project_id             BIGINT NOT NULL REFERENCES project (id) ON DELETE CASCADE,
    public_key             TEXT NOT NULL UNIQUE,
    secret_key             TEXT,
    label                  TEXT NOT NULL DEFAULT 'Default',
    is_active              BOOLEAN NOT NULL DEFAULT true,
    rate_limit_per_minute  INTEGER,
    created_at             TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX project_key_project ON project_key (project_id);

CREATE TABLE issue (
    id                   BIGSERIAL PRIMARY KEY,
    project_id           BIGINT NOT NULL REFERENCES project (id) ON DELETE CASCADE,
    -- Per-project sequence shown as PROJECT-123.
    short_id             BIGINT NOT NULL,
    title                TEXT NOT NULL,
    culprit              TEXT NOT NULL DEFAULT '',
    event_type           TEXT NOT NULL DEFAULT 'error',
    metadata             JSONB NOT NULL DEFAULT '{}',
    level                TEXT NOT NULL DEFAULT 'error',
    platform             TEXT NOT NULL DEFAULT 'other',
    status               TEXT NOT NULL DEFAULT 'unresolved',
    substatus            TEXT,
    resolved_at          TIMESTAMPTZ,
    resolved_in_release  TEXT,
    ignored_until        TIMESTAMPTZ,
    ignored_until_count  BIGINT,
    assignee_id          BIGINT REFERENCES users (id) ON DELETE SET NULL,
    first_seen           TIMESTAMPTZ NOT NULL,
    last_seen            TIMESTAMPTZ NOT NULL,
    times_seen           BIGINT NOT NULL DEFAULT 0,
    user_count           BIGINT NOT NULL DEFAULT 0,
    first_release        TEXT,
    last_release         TEXT,
    last_event_id        UUID,
    UNIQUE (project_id, short_id)
);
CREATE INDEX issue_project_last_seen ON issue (project_id, status, last_seen DESC);
CREATE INDEX issue_project_first_seen ON issue (project_id, first_seen DESC);
CREATE INDEX issue_project_times_seen ON issue (project_id, times_seen DESC);

CREATE TABLE project_counter (
    project_id  BIGINT PRIMARY KEY REFERENCES project (id) ON DELETE CASCADE,
    next_short_id BIGINT NOT NULL DEFAULT 1
);

-- Every grouping hash an issue has absorbed; (project, hash) decides which
-- issue a new event joins.
CREATE TABLE issue_hash (
    project_id  BIGINT NOT NULL REFERENCES project (id) ON DELETE CASCADE,
    hash        TEXT NOT NULL,
    issue_id    BIGINT NOT NULL REFERENCES issue (id) ON DELETE CASCADE,
    PRIMARY KEY (project_id, hash)
);
CREATE INDEX issue_hash_issue ON issue_hash (issue_id);

CREATE TABLE event (
    id           BIGSERIAL PRIMARY KEY,
    event_id     UUID NOT NULL,
    project_id   BIGINT NOT NULL REFERENCES project (id) ON DELETE CASCADE,
    issue_id     BIGINT REFERENCES issue (id) ON DELETE CASCADE,
    event_type   TEXT NOT NULL,
    "timestamp"  TIMESTAMPTZ NOT NULL,
    received_at  TIMESTAMPTZ NOT NULL,
    level        TEXT NOT NULL,
    platform     TEXT NOT NULL,
    release      TEXT,
    environment  TEXT,
    transaction  TEXT,
    message      TEXT,
    title        TEXT NOT NULL DEFAULT '',
    user_key     TEXT,
    tags         JSONB NOT NULL DEFAULT '[]',
    data         JSONB NOT NULL,
    grouping     JSONB,
    UNIQUE (project_id, event_id)
);
CREATE INDEX event_issue_received ON event (issue_id, received_at DESC);
CREATE INDEX event_project_received ON event (project_id, received_at DESC);

CREATE TABLE issue_tag (
    issue_id    BIGINT NOT NULL REFERENCES issue (id) ON DELETE CASCADE,
    key         TEXT NOT NULL,
    value       TEXT NOT NULL,
    times_seen  BIGINT NOT NULL DEFAULT 0,
    first_seen  TIMESTAMPTZ NOT NULL,
    last_seen   TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (issue_id, key, value)
);

CREATE TABLE issue_user (
    issue_id  BIGINT NOT NULL REFERENCES issue (id) ON DELETE CASCADE,
    user_key  TEXT NOT NULL,
    PRIMARY KEY (issue_id, user_key)
);

CREATE TABLE issue_hourly (
    issue_id  BIGINT NOT NULL REFERENCES issue (id) ON DELETE CASCADE,
    hour      TIMESTAMPTZ NOT NULL,
    count     BIGINT NOT NULL DEFAULT 0,
    PRIMARY KEY (issue_id, hour)
);

CREATE TABLE activity (
    id          BIGSERIAL PRIMARY KEY,
    issue_id    BIGINT NOT NULL REFERENCES issue (id) ON DELETE CASCADE,
    user_id     BIGINT REFERENCES users (id) ON DELETE SET NULL,
    kind        TEXT NOT NULL,
    data        JSONB NOT NULL DEFAULT '{}',
    created_at  TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX activity_issue ON activity (issue_id, created_at DESC);

CREATE TABLE attachment (
    id               BIGSERIAL PRIMARY KEY,
    project_id       BIGINT NOT NULL REFERENCES project (id) ON DELETE CASCADE,
    event_id         UUID NOT NULL,
    name             TEXT NOT NULL,
    content_type     TEXT,
    attachment_type  TEXT NOT NULL DEFAULT 'event.attachment',
    size             BIGINT NOT NULL,
    data             BYTEA NOT NULL,
    created_at       TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX attachment_event ON attachment (project_id, event_id);

CREATE TABLE user_report (
    id          BIGSERIAL PRIMARY KEY,
    project_id  BIGINT NOT NULL REFERENCES project (id) ON DELETE CASCADE,
    event_id    UUID NOT NULL,
    name        TEXT NOT NULL DEFAULT '',
    email       TEXT NOT NULL DEFAULT '',
    comments    TEXT NOT NULL DEFAULT '',
    created_at  TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX user_report_event ON user_report (project_id, event_id);

CREATE TABLE release (
    id          BIGSERIAL PRIMARY KEY,
    project_id  BIGINT NOT NULL REFERENCES project (id) ON DELETE CASCADE,
    version     TEXT NOT NULL,
    created_at  TIMESTAMPTZ NOT NULL DEFAULT now(),
    UNIQUE (project_id, version)
);

-- Release-health aggregates from `session`/`sessions` items.
CREATE TABLE session_hourly (
    project_id   BIGINT NOT NULL REFERENCES project (id) ON DELETE CASCADE,
    release      TEXT NOT NULL,
    environment  TEXT NOT NULL DEFAULT '',
    hour         TIMESTAMPTZ NOT NULL,
    total        BIGINT NOT NULL DEFAULT 0,
    errored      BIGINT NOT NULL DEFAULT 0,
    crashed      BIGINT NOT NULL DEFAULT 0,
    abnormal     BIGINT NOT NULL DEFAULT 0,
    PRIMARY KEY (project_id, release, environment, hour)
);

-- Client reports and our own drops, per Sentry's outcome categories.
CREATE TABLE outcome_hourly (
    project_id  BIGINT NOT NULL REFERENCES project (id) ON DELETE CASCADE,
    hour        TIMESTAMPTZ NOT NULL,
    outcome     TEXT NOT NULL,
    reason      TEXT NOT NULL DEFAULT '',
    category    TEXT NOT NULL,
    quantity    BIGINT NOT NULL DEFAULT 0,
    PRIMARY KEY (project_id, hour, outcome, reason, category)
);

CREATE TABLE monitor (
    id              BIGSERIAL PRIMARY KEY,
    project_id      BIGINT NOT NULL REFERENCES project (id) ON DELETE CASCADE,
    slug            TEXT NOT NULL,
    last_status     TEXT,
    last_check_in   TIMESTAMPTZ,
    config          JSONB,
    UNIQUE (project_id, slug)
);

CREATE TABLE monitor_check_in (
    id           BIGSERIAL PRIMARY KEY,
    monitor_id   BIGINT NOT NULL REFERENCES monitor (id) ON DELETE CASCADE,
    check_in_id  UUID NOT NULL,
    status       TEXT NOT NULL,
    duration     DOUBLE PRECISION,
    environment  TEXT,
    created_at   TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX monitor_check_in_monitor ON monitor_check_in (monitor_id, created_at DESC);

-- Alert notifications are written in the same transaction as the issue
-- change that caused them, then delivered by a worker with retries.
CREATE TABLE alert_outbox (
    id               BIGSERIAL PRIMARY KEY,
    project_id       BIGINT NOT NULL REFERENCES project (id) ON DELETE CASCADE,
    issue_id         BIGINT NOT NULL REFERENCES issue (id) ON DELETE CASCADE,
    kind             TEXT NOT NULL,
    created_at       TIMESTAMPTZ NOT NULL DEFAULT now(),
    attempts         INTEGER NOT NULL DEFAULT 0,
    next_attempt_at  TIMESTAMPTZ NOT NULL DEFAULT now(),
    sent_at          TIMESTAMPTZ,
    last_error       TEXT
);
CREATE INDEX alert_outbox_pending ON alert_outbox (next_attempt_at) WHERE sent_at IS NULL;

CREATE TABLE api_token (
    id            BIGSERIAL PRIMARY KEY,
    user_id       BIGINT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    token_hash    TEXT NOT NULL UNIQUE,
    name          TEXT NOT NULL DEFAULT '',
    scopes        TEXT[] NOT NULL DEFAULT '{}',
    created_at    TIMESTAMPTZ NOT NULL DEFAULT now(),
    last_used_at  TIMESTAMPTZ
);
