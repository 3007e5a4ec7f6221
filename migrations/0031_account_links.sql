-- Password reset and invitation links. Only the SHA-256 of a token is
-- stored, so a database leak hands out no live link.
CREATE TABLE password_reset (
    token_hash  TEXT PRIMARY KEY,
    user_id     BIGINT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    created_at  TIMESTAMPTZ NOT NULL DEFAULT now(),
    expires_at  TIMESTAMPTZ NOT NULL,
    used_at     TIMESTAMPTZ
);
CREATE INDEX password_reset_user ON password_reset (user_id, created_at);

CREATE TABLE invitation (
    id           BIGSERIAL PRIMARY KEY,
    token_hash   TEXT NOT NULL UNIQUE,
    email        TEXT NOT NULL,
    role         TEXT NOT NULL DEFAULT 'member',
    invited_by   BIGINT REFERENCES users (id) ON DELETE SET NULL,
    created_at   TIMESTAMPTZ NOT NULL DEFAULT now(),
    expires_at   TIMESTAMPTZ NOT NULL,
    accepted_at  TIMESTAMPTZ,
    revoked_at   TIMESTAMPTZ
);

-- Account email (reset links, invitations), delivered by the alert worker
-- with retries so a request never waits on SMTP. Bodies are cleared once
-- sent: they carry live links.
CREATE TABLE mail_outbox (
    id               BIGSERIAL PRIMARY KEY,
    recipient        TEXT NOT NULL,
    subject          TEXT NOT NULL,
    body_text        TEXT NOT NULL,
    body_html        TEXT NOT NULL,
    status           TEXT NOT NULL DEFAULT 'pending',
    attempts         INTEGER NOT NULL DEFAULT 0,
    next_attempt_at  TIMESTAMPTZ NOT NULL DEFAULT now(),
    created_at       TIMESTAMPTZ NOT NULL DEFAULT now(),
    sent_at          TIMESTAMPTZ,
    last_error       TEXT
);
CREATE INDEX mail_outbox_pending ON mail_outbox (next_attempt_at) WHERE status = 'pending';

-- Key rotation: the replaced key keeps working until `expires_at` (NULL:
-- until revoked), like Sentry's rotated client keys.
ALTER TABLE project_key ADD COLUMN expires_at TIMESTAMPTZ;
ALTER TABLE project_key ADD COLUMN rotated_at TIMESTAMPTZ;
