-- Web API: release metadata that sentry-cli sets, deploys, and the last
-- characters of each API token so people can tell their tokens apart.
ALTER TABLE release ADD COLUMN date_started TIMESTAMPTZ;
ALTER TABLE release ADD COLUMN date_released TIMESTAMPTZ;
ALTER TABLE release ADD COLUMN url TEXT;
ALTER TABLE release ADD COLUMN ref TEXT;
ALTER TABLE release ADD COLUMN status TEXT NOT NULL DEFAULT 'open';
CREATE INDEX release_version ON release (version);

-- A deploy belongs to a release version of an organization (Sentry's
-- releases are organization-wide, attached to projects).
CREATE TABLE release_deploy (
    id               BIGSERIAL PRIMARY KEY,
    organization_id  BIGINT NOT NULL REFERENCES organization (id) ON DELETE CASCADE,
    version          TEXT NOT NULL,
    environment      TEXT NOT NULL,
    name             TEXT,
    url              TEXT,
    date_started     TIMESTAMPTZ,
    date_finished    TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX release_deploy_version ON release_deploy (organization_id, version, date_finished DESC);

ALTER TABLE api_token ADD COLUMN token_last_chars TEXT NOT NULL DEFAULT '';
CREATE INDEX api_token_user ON api_token (user_id);
