"""The real @sentry/node (npm, pinned in node/package-lock.json) run with the
machine's Node.js: query-string auth, no Content-Type, chunked bodies, no
length on JSON items and no trailing newline (protocol reference §3.3, §4.2)."""

import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest

from conftest import event_json

NODE_DIR = Path(__file__).resolve().parent / "node"

CAPTURE = r'''
const Sentry = require("@sentry/node");
Sentry.init({ dsn: process.env.DSN, release: "api@4.2.0", environment: "staging", debug: true });

function parseConfig(text) {
  return JSON.parse(text);
}

function loadSettings() {
  return parseConfig("{not json");
}

try {
  loadSettings();
} catch (err) {
  const id = Sentry.captureException(err);
  console.log("event_id=" + id);
}
Sentry.flush(10000).then((ok) => {
  console.log("flushed=" + ok);
});
'''

UNCAUGHT = r'''
const Sentry = require("@sentry/node");
Sentry.init({ dsn: process.env.DSN, release: "api@4.2.0", debug: true });

function chargeCard(card) {
  return card.number.length;
}

setTimeout(() => chargeCard({}), 10);
'''

TRANSPORT_ERRORS = ("Error while sending", "Encountered error running transport request", "[error]", "status code 4",
                    "status code 5")


@pytest.fixture(scope="module")
def node_modules():
    node = shutil.which("node")
    npm = shutil.which("npm")
    if node is None or npm is None:
        pytest.fail("node and npm are required for the @sentry/node compat test")
    if not (NODE_DIR / "node_modules" / "@sentry" / "node").is_dir():
        subprocess.run([npm, "ci", "--no-audit", "--no-fund"], cwd=NODE_DIR, check=True, timeout=300,
                       capture_output=True)
    return node


def run_node(node, code, **env):
    with tempfile.TemporaryDirectory() as tmp:
        script = Path(tmp) / "service.js"
        script.write_text(code)
        return subprocess.run(
            [node, str(script)], env=dict(os.environ, NODE_PATH=str(NODE_DIR / "node_modules"), **env),
            capture_output=True, text=True, timeout=60, cwd=tmp,
        )


def assert_no_transport_error(result):
    output = result.stdout + result.stderr
    for marker in TRANSPORT_ERRORS:
        assert marker not in output, output


def test_capture_exception_and_flush(snag, node_modules):
    result = run_node(node_modules, CAPTURE, DSN=snag.dsn)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "flushed=true" in result.stdout, result.stdout + result.stderr
    assert_no_transport_error(result)
    event_id = result.stdout.split("event_id=")[1].split()[0]

    rows = snag.wait_for("SELECT id, title, times_seen, platform FROM issue")
    assert len(rows) == 1, rows
    issue_id, title, times_seen, platform = rows[0]
    assert title.startswith("SyntaxError"), title
    assert times_seen == 1 and platform == "node"
    ((stored_id, payload),) = snag.query("SELECT event_id, payload FROM event WHERE issue_id = %s", issue_id)
    data = event_json(payload)
    assert stored_id.hex == event_id
    exception = data["exception"]["values"][-1]
    assert exception["mechanism"]["handled"] is True
    functions = [f.get("function") for f in exception["stacktrace"]["frames"]]
    assert "parseConfig" in functions and "loadSettings" in functions, functions
    assert data["release"] == "api@4.2.0" and data["environment"] == "staging"
    assert data["sdk"]["name"] == "sentry.javascript.node"


def test_uncaught_exception(snag, node_modules):
    result = run_node(node_modules, UNCAUGHT, DSN=snag.dsn)
    assert result.returncode == 1, result.stdout + result.stderr
    assert "TypeError" in result.stderr
    assert_no_transport_error(result)
    rows = snag.wait_for("SELECT id, title FROM issue")
    assert len(rows) == 1, rows
    issue_id, title = rows[0]
    assert title.startswith("TypeError: Cannot read properties of undefined"), title
    ((payload,),) = snag.query("SELECT payload FROM event WHERE issue_id = %s", issue_id)
    data = event_json(payload)
    exception = data["exception"]["values"][-1]
    assert exception["mechanism"]["handled"] is False
    assert exception["mechanism"]["type"] == "onuncaughtexception"
    assert exception["stacktrace"]["frames"][-1]["function"] == "chargeCard"
    assert data["level"] == "fatal"
