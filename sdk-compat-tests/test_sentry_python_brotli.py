"""sentry-sdk 2.x picks brotli when the `brotli` module imports, gzip otherwise
(protocol reference §4.2, §9.1); both must land as the same issue."""

from conftest import event_json, run_python

PROGRAM = r'''
import os, sys
if os.environ.get("HIDE_BROTLI"):
    # As if brotli were not installed: `import brotli` raises ImportError.
    sys.modules["brotli"] = None
import sentry_sdk
sentry_sdk.init(dsn=os.environ["DSN"], release="shop@2.0.0", debug=True)
print("compression=%s" % sentry_sdk.get_client().transport._compression_algo, flush=True)

def load_price(raw):
    return float(raw)

def checkout():
    return load_price("12,50")

try:
    checkout()
except ValueError:
    sentry_sdk.capture_exception()
sentry_sdk.flush()
'''

TRANSPORT_ERRORS = ("Internal error in sentry_sdk", "Unexpected status code", "Failed to send", "HTTP 413")


def send(snag, hide_brotli):
    env = {"DSN": snag.dsn}
    if hide_brotli:
        env["HIDE_BROTLI"] = "1"
    result = run_python(PROGRAM, **env)
    assert result.returncode == 0, result.stderr
    for marker in TRANSPORT_ERRORS:
        assert marker not in result.stderr, result.stderr
    return result


def assert_issue(snag, times_seen):
    rows = snag.wait_for("SELECT id, title, times_seen FROM issue WHERE times_seen = %s", times_seen)
    assert len(rows) == 1, snag.query("SELECT id, title, times_seen FROM issue")
    issue_id, title, _ = rows[0]
    assert title == "ValueError: could not convert string to float: '12,50'"
    events = [(event_json(p),) for (p,) in snag.query("SELECT payload FROM event WHERE issue_id = %s", issue_id)]
    assert len(events) == times_seen
    for (data,) in events:
        frames = data["exception"]["values"][-1]["stacktrace"]["frames"]
        assert [f["function"] for f in frames][-2:] == ["checkout", "load_price"]
        assert data["release"] == "shop@2.0.0"
        # Integrations auto-enabled by installed frameworks add a suffix (sentry.python.django).
        assert data["sdk"]["name"].startswith("sentry.python")
    return issue_id


def test_brotli_installed_sends_br(snag):
    import brotli  # noqa: F401  (pinned in requirements.txt; the test is meaningless without it)

    result = send(snag, hide_brotli=False)
    assert "compression=br" in result.stdout, result.stdout
    assert_issue(snag, 1)


def test_without_brotli_sends_gzip_and_joins_the_same_issue(snag):
    result = send(snag, hide_brotli=True)
    assert "compression=gzip" in result.stdout, result.stdout
    first = assert_issue(snag, 1)
    result = send(snag, hide_brotli=False)
    assert "compression=br" in result.stdout
    assert assert_issue(snag, 2) == first
