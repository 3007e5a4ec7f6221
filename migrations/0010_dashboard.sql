-- Teams own projects. A project no team owns stays open to every member of
-- its organization (so a fresh install works without setup); once a team
-- owns it, only that team's members and the organization's owners and
-- admins see it.
CREATE TABLE team (
    id               BIGSERIAL PRIMARY KEY,
    organization_id  BIGINT NOT NULL REFERENCES organization (id) ON DELETE CASCADE,
    slug             TEXT NOT NULL,
    name             TEXT NOT NULL,
    created_at       TIMESTAMPTZ NOT NULL DEFAULT now(),
    UNIQUE (organization_id, slug)
);

CREATE TABLE team_member (
    team_id  BIGINT NOT NULL REFERENCES team (id) ON DELETE CASCADE,
    user_id  BIGINT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    PRIMARY KEY (team_id, user_id)
);
CREATE INDEX team_member_user ON team_member (user_id);

CREATE TABLE project_team (
    project_id  BIGINT NOT NULL REFERENCES project (id) ON DELETE CASCADE,
    team_id     BIGINT NOT NULL REFERENCES team (id) ON DELETE CASCADE,
    PRIMARY KEY (project_id, team_id)
);
CREATE INDEX project_team_team ON project_team (team_id);

-- Failed dashboard logins, for throttling password guessing per account.
CREATE TABLE login_failure (
    id          BIGSERIAL PRIMARY KEY,
    email       TEXT NOT NULL,
    created_at  TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX login_failure_email ON login_failure (lower(email), created_at);
