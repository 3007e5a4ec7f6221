"""docker-compose.yml as `docker compose up` reads it. scripts/test runs
`docker compose config` where the compose plugin exists; this checks the
structure everywhere (the plugin is often missing on CI machines)."""

import re
import shutil
import subprocess

import pytest
import yaml

from conftest import ROOT

COMPOSE = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
SERVICES = COMPOSE["services"]


def test_services_and_their_roles():
    assert {"snag", "postgres", "migrate", "mailpit"} <= set(SERVICES)
    pg = SERVICES["postgres"]
    assert any(v.startswith("pgdata:/var/lib/postgresql/data") for v in pg["volumes"])
    assert "pgdata" in COMPOSE["volumes"]
    assert "pg_isready" in " ".join(pg["healthcheck"]["test"])

    migrate = SERVICES["migrate"]
    assert migrate["command"] == ["migrate"]
    assert migrate["restart"] == "no", "a one-off, not a daemon"
    assert migrate["depends_on"]["postgres"]["condition"] == "service_healthy"

    snag = SERVICES["snag"]
    assert snag["command"] == ["serve"]
    assert snag["depends_on"]["migrate"]["condition"] == "service_completed_successfully"
    assert "/readyz" in " ".join(snag["healthcheck"]["test"])
    assert snag["environment"]["SNAG_BIND"] == "0.0.0.0:9000"
    assert ":?" in snag["environment"]["SNAG_SECRET_KEY"], "compose refuses to start without a secret"
    assert "9000:9000" in snag["ports"]

    assert SERVICES["mailpit"]["profiles"] == ["mail"], "the mail catcher is optional"


def test_database_urls_agree_with_postgres_service():
    pg_env = SERVICES["postgres"]["environment"]
    for name in ("snag", "migrate"):
        url = SERVICES[name]["environment"]["DATABASE_URL"]
        m = re.fullmatch(r"postgres://(\w+):(\$\{POSTGRES_PASSWORD:-\w+\}|\w+)@postgres:5432/(\w+)", url)
        assert m, url
        assert m.group(1) == pg_env["POSTGRES_USER"] and m.group(3) == pg_env["POSTGRES_DB"]
        assert m.group(2) == pg_env["POSTGRES_PASSWORD"]


def test_every_snag_variable_is_documented():
    readme = (ROOT / "README.md").read_text()
    for name in SERVICES["snag"]["environment"]:
        assert f"`{name}`" in readme, f"{name} is not in README's configuration table"


@pytest.mark.skipif(
    shutil.which("docker") is None
    or subprocess.run(["docker", "compose", "version"], capture_output=True).returncode != 0,
    reason="the docker compose plugin is not installed",
)
def test_docker_compose_config_accepts_it():
    result = subprocess.run(
        ["docker", "compose", "-f", str(ROOT / "docker-compose.yml"), "config", "--quiet"],
        env={"SNAG_SECRET_KEY": "x" * 32, "PATH": "/usr/bin:/bin:/usr/local/bin"},
        capture_output=True, text=True, timeout=60,
    )
    assert result.returncode == 0, result.stderr
