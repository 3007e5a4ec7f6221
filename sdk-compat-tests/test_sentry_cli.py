"""The real sentry-cli (npm `@sentry/cli`, pinned in node/package-lock.json; its
binary comes from the `@sentry/cli-linux-x64` optional dependency, so nothing is
downloaded from a CDN) pointed at Snag's Web API with SENTRY_URL,
SENTRY_AUTH_TOKEN, SENTRY_ORG and SENTRY_PROJECT, and only at 127.0.0.1."""

import json
import os
import re
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest
import requests

NODE_DIR = Path(__file__).resolve().parent / "node"
CLI = NODE_DIR / "node_modules" / ".bin" / "sentry-cli"
OPENAPI = Path(__file__).resolve().parent.parent / "src" / "api" / "openapi.json"


@pytest.fixture(scope="module")
def sentry_cli():
    npm = shutil.which("npm")
    if shutil.which("node") is None or npm is None:
        pytest.fail("node and npm are required for the sentry-cli compat test")
    binary = NODE_DIR / "node_modules" / "@sentry" / "cli-linux-x64" / "bin" / "sentry-cli"
    if not binary.exists():
        # The platform package carries the binary; the postinstall download
        # is skipped (it would reach a CDN).
        env = dict(os.environ, SENTRYCLI_SKIP_DOWNLOAD="1")
        subprocess.run([npm, "ci", "--no-audit", "--no-fund"], cwd=NODE_DIR, check=True, timeout=300,
                       capture_output=True, env=env)
    assert CLI.exists(), "node_modules/.bin/sentry-cli missing after npm ci"
    return CLI


def api_token(snag, scopes="org:read,project:read,project:releases,event:read,event:write"):
    snag.cli("createuser", "--email", "ci@example.com", "--password", "ci-password-123", "--admin")
    created = snag.cli("token", "create", "--email", "ci@example.com", "--scopes", scopes, "--name", "ci")
    return created.stdout.strip().splitlines()[-1]


class Cli:
    def __init__(self, binary, snag, token, home):
        self.binary = binary
        self.env = {
            "PATH": os.environ["PATH"],
            "HOME": home,  # no ~/.sentryclirc from the machine
            "SENTRY_URL": snag.base_url,
            "SENTRY_AUTH_TOKEN": token,
            "SENTRY_ORG": "default",
            "SENTRY_PROJECT": "compat",
            "SENTRY_DISABLE_UPDATE_CHECK": "true",
            "SENTRY_LOAD_DOTENV": "0",
            "NO_PROXY": "127.0.0.1",
        }

    def __call__(self, *args, check=True, **env):
        result = subprocess.run([str(self.binary), *args], env=dict(self.env, **env), capture_output=True,
                                text=True, timeout=60)
        output = result.stdout + result.stderr
        if check:
            assert result.returncode == 0, f"sentry-cli {' '.join(args)} failed:\n{output}"
        return result, output


@pytest.fixture
def cli(snag, sentry_cli):
    with tempfile.TemporaryDirectory() as home:
        yield Cli(sentry_cli, snag, api_token(snag), home)


def get(snag, cli, path):
    r = requests.get(snag.base_url + path, headers={"Authorization": f"Bearer {cli.env['SENTRY_AUTH_TOKEN']}"},
                     timeout=10)
    assert r.status_code == 200, (path, r.status_code, r.text)
    return r.json()


def test_sentry_cli_info_send_event_and_issues(snag, cli):
    _, out = cli("info")
    assert "ci@example.com" in out and "event:write" in out, out

    # The DSN comes from the API, as a deploy script would fetch it.
    keys = get(snag, cli, "/api/0/projects/default/compat/keys/")
    dsn = keys[0]["dsn"]["public"]
    assert dsn == snag.dsn
    _, out = cli("send-event", "-m", "Payment gateway timed out", "--release", "compat@1.2.3", "-E", "staging", "--no-environ",
                 "-t", "server:build-7", SENTRY_DSN=dsn)
    assert "Event dispatched" in out, out
    event_id = re.search(r"Event id: ([0-9a-f-]{36})", out).group(1).replace("-", "")

    event = get(snag, cli, f"/api/0/projects/default/compat/events/{event_id}/")
    assert event["eventID"] == event_id
    assert {"key": "server", "value": "build-7"} in event["tags"]
    assert event["release"]["version"] == "compat@1.2.3"
    ((issue_id, title, release),) = snag.query("SELECT id, title, first_release FROM issue")
    assert event["groupID"] == str(issue_id)
    assert title == "Payment gateway timed out" and release == "compat@1.2.3"

    _, out = cli("issues", "list")
    assert "COMPAT-1" in out and "Payment gateway timed out" in out and "unresolved" in out, out
    _, out = cli("events", "list")
    assert event_id[:8] in out.replace("-", ""), out

    _, out = cli("issues", "resolve", "-i", str(issue_id))
    assert snag.query("SELECT status FROM issue") == [("resolved",)]
    _, out = cli("issues", "list", "--query", "is:resolved")
    assert "COMPAT-1" in out and "resolved" in out, out
    _, out = cli("issues", "unresolve", "--status", "resolved")
    assert snag.query("SELECT status FROM issue") == [("unresolved",)]
    # `--all` means what Sentry's default query matches: unresolved issues.
    _, out = cli("issues", "mute", "--all")
    assert snag.query("SELECT status FROM issue") == [("ignored",)]
    _, out = cli("issues", "unresolve", "--status", "muted")
    assert snag.query("SELECT status FROM issue") == [("unresolved",)]


def test_sentry_cli_releases_and_deploys(snag, cli):
    _, out = cli("releases", "new", "compat@2.0.0")
    assert "compat@2.0.0" in out, out
    ((started, released),) = snag.query("SELECT date_started, date_released FROM release WHERE version = 'compat@2.0.0'")
    assert started is not None and released is None

    _, out = cli("releases", "finalize", "compat@2.0.0")
    assert "Finalized release compat@2.0.0" in out, out
    ((released,),) = snag.query("SELECT date_released FROM release WHERE version = 'compat@2.0.0'")
    assert released is not None

    _, out = cli("deploys", "new", "-r", "compat@2.0.0", "-e", "production", "-n", "deploy 7")
    assert "production" in out, out
    assert snag.query("SELECT environment, name FROM release_deploy") == [("production", "deploy 7")]
    _, out = cli("deploys", "list", "-r", "compat@2.0.0")
    assert "production" in out and "deploy 7" in out, out

    # A release that ingest saw first, with the issue it brought.
    _, out = cli("send-event", "-m", "first in 1.0", "--release", "compat@1.0.0", "--no-environ", SENTRY_DSN=snag.dsn)
    _, out = cli("releases", "list")
    assert "compat@2.0.0" in out and "compat@1.0.0" in out, out
    _, out = cli("releases", "info", "compat@2.0.0")
    assert "compat@2.0.0" in out, out

    release = get(snag, cli, "/api/0/organizations/default/releases/compat@2.0.0/")
    assert release["dateReleased"] and release["deployCount"] == 1
    assert release["lastDeploy"]["name"] == "deploy 7"
    older = get(snag, cli, "/api/0/organizations/default/releases/compat@1.0.0/")
    assert older["newGroups"] == 1

    _, out = cli("releases", "delete", "compat@1.0.0")
    assert snag.query("SELECT version FROM release ORDER BY version") == [("compat@2.0.0",)]


def test_sentry_cli_reports_api_errors(snag, sentry_cli):
    with tempfile.TemporaryDirectory() as home:
        token = api_token(snag, scopes="org:read")
        cli = Cli(sentry_cli, snag, token, home)
        result, out = cli("releases", "new", "compat@9", check=False)
        assert result.returncode != 0
        assert "project:releases" in out, out
        bad = Cli(sentry_cli, snag, "sntryu_" + "0" * 64, home)
        result, out = bad("releases", "list", check=False)
        assert result.returncode != 0
        assert "401" in out or "Invalid token" in out, out
        # Optional endpoints Snag lacks answer 404 JSON, which sentry-cli
        # reports instead of hanging or crashing.
        r = requests.get(snag.base_url + "/api/0/organizations/default/chunk-upload/",
                         headers={"Authorization": f"Bearer {token}"}, timeout=10)
        assert r.status_code == 404 and "detail" in r.json()


def test_openapi_document_is_valid_openapi_31():
    from openapi_spec_validator import validate

    spec = json.loads(OPENAPI.read_text())
    validate(spec)
    assert spec["openapi"] == "3.1.0"
