"""The real sentry-sdk 2.x, configured with nothing but the DSN."""

import json

from conftest import event_json, run_python

UNHANDLED = r'''
import sentry_sdk
sentry_sdk.init(dsn=__import__("os").environ["DSN"], release="shop@1.2.3", environment="test", debug=True)

def parse_quantity(text):
    return int(text)

def handle_order():
    return parse_quantity("three")

handle_order()
'''


def test_unhandled_exception_becomes_issue_visible_on_dashboard(snag):
    result = run_python(UNHANDLED, DSN=snag.dsn)
    assert result.returncode == 1, result.stderr
    assert "ValueError" in result.stderr
    # sentry-sdk logs transport failures in debug mode; none may appear.
    for marker in ("Internal error in sentry_sdk", "Unexpected status code", "Failed to send"):
        assert marker not in result.stderr, result.stderr

    rows = snag.wait_for("SELECT id, title, culprit, times_seen, level FROM issue")
    assert len(rows) == 1, rows
    issue_id, title, culprit, times_seen, level = rows[0]
    assert title.startswith("ValueError: invalid literal for int() with base 10")
    assert times_seen == 1
    assert level == "error"

    (payload,) = snag.query("SELECT payload FROM event WHERE issue_id = %s", issue_id)[0]
    data = event_json(payload)
    exception = data["exception"]["values"][-1]
    assert exception["type"] == "ValueError"
    assert exception["mechanism"]["handled"] is False
    frames = exception["stacktrace"]["frames"]
    app_functions = [f["function"] for f in frames if f.get("in_app")]
    assert "parse_quantity" in app_functions and "handle_order" in app_functions
    assert data["release"] == "shop@1.2.3"

    snag.cli("createuser", "--email", "dev@example.com", "--password", "s3cret-pass")
    session = snag.login("dev@example.com", "s3cret-pass")
    page = session.get(f"{snag.base_url}/issues/{issue_id}", timeout=10)
    assert page.status_code == 200
    assert "ValueError" in page.text
    assert "invalid literal for int() with base 10: &#x27;three&#x27;" in page.text or "three" in page.text
    assert "parse_quantity" in page.text
    assert "return int(text)" in page.text  # context line from the SDK


def test_same_bug_twice_is_one_issue(snag):
    for _ in range(2):
        assert run_python(UNHANDLED, DSN=snag.dsn).returncode == 1
    rows = snag.wait_for("SELECT times_seen FROM issue WHERE times_seen = 2")
    assert rows == [(2,)]
    assert snag.query("SELECT count(*) FROM issue") == [(1,)]
    assert snag.query("SELECT count(*) FROM event") == [(2,)]


def test_captured_message_and_wrong_key(snag):
    code = r'''
import os, sentry_sdk
sentry_sdk.init(dsn=os.environ["DSN"])
sentry_sdk.capture_message("cache warmed in %s ms" % 1234, level="info")
sentry_sdk.flush()
'''
    assert run_python(code, DSN=snag.dsn).returncode == 0
    rows = snag.wait_for("SELECT title, level FROM issue")
    assert rows and rows[0][1] == "info", rows

    bad_dsn = snag.dsn.replace(snag.dsn.split("//")[1].split("@")[0], "0" * 32)
    result = run_python(code.replace("sentry_sdk.init(dsn=os.environ[\"DSN\"])",
                                     "sentry_sdk.init(dsn=os.environ[\"DSN\"], debug=True)"), DSN=bad_dsn)
    assert result.returncode == 0
    assert "403" in result.stderr or "Unexpected status code" in result.stderr, result.stderr
    assert snag.query("SELECT count(*) FROM event") == [(1,)]
