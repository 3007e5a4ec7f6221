-- Session updates repeat (one per error, one at exit); Relay counts each
-- session once in `total` and once in `errored`. This table remembers which
-- session ids were already counted.
CREATE TABLE session_seen (
    project_id  BIGINT NOT NULL REFERENCES project (id) ON DELETE CASCADE,
    sid         UUID NOT NULL,
    errored     BOOLEAN NOT NULL DEFAULT false,
    first_seen  TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (project_id, sid)
);
CREATE INDEX session_seen_first_seen ON session_seen (first_seen);
