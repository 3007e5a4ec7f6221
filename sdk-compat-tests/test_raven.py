"""raven-python 6.10: the legacy /store/ endpoint, zlib bodies with
`Content-Encoding: deflate`, `sentry_version=6`, integer levels."""

from conftest import event_json, run_python

CAPTURE = r'''
import logging, os
logging.basicConfig(level=logging.DEBUG)
from raven import Client

client = Client(release="legacy@6.1", environment="prod")  # DSN from SENTRY_DSN

def divide(a, b):
    return a / b

def report():
    return divide(1, 0)

try:
    report()
except ZeroDivisionError:
    ident = client.captureException(extra={"ratio": float("nan")})
    print("ident=%s" % ident, flush=True)
'''

HANDLER = r'''
import logging, os
from raven import Client
from raven.handlers.logging import SentryHandler

logging.basicConfig(level=logging.DEBUG)
client = Client()
handler = SentryHandler(client, level=logging.ERROR)
log = logging.getLogger("billing")
log.addHandler(handler)

def charge(amount):
    raise KeyError("card_token")

try:
    charge(10)
except KeyError:
    log.error("charge failed for %s", "order-17", exc_info=True)
log.error("plain message without exception: %s", "disk at 91%")
'''

TRANSPORT_ERRORS = ("Sentry responded with an", "Failed to submit", "sentry.errors")


def run(snag, code):
    result = run_python(code, SENTRY_DSN=snag.dsn)
    assert result.returncode == 0, result.stderr
    for marker in TRANSPORT_ERRORS:
        assert marker not in result.stderr, result.stderr
    return result


def test_capture_exception(snag):
    result = run(snag, CAPTURE)
    ident = result.stdout.split("ident=")[1].strip()
    rows = snag.wait_for("SELECT id, title, level, times_seen FROM issue")
    assert len(rows) == 1, rows
    issue_id, title, level, times_seen = rows[0]
    assert title.startswith("ZeroDivisionError: division by zero"), title
    assert level == "error" and times_seen == 1
    ((event_id, payload),) = snag.query("SELECT event_id, payload FROM event WHERE issue_id = %s", issue_id)
    data = event_json(payload)
    assert event_id.hex == ident
    frames = data["exception"]["values"][-1]["stacktrace"]["frames"]
    assert [f["function"] for f in frames][-2:] == ["report", "divide"]
    assert data["release"] == "legacy@6.1"
    # raven's serializer turns float("nan") into "nan"; a bare NaN token would be null.
    assert data["extra"]["ratio"] in ("nan", None)


def test_logging_handler(snag):
    run(snag, HANDLER)
    rows = snag.wait_for("SELECT title FROM issue WHERE title LIKE 'KeyError%%'")
    assert rows, snag.query("SELECT title FROM issue")
    rows = snag.wait_for("SELECT count(*) FROM event HAVING count(*) = 2")
    assert rows == [(2,)], snag.query("SELECT title, message FROM event")
    events = snag.query("SELECT e.title, e.message, e.level, e.payload, i.title FROM event e JOIN issue i ON i.id = e.issue_id")
    by_title = {title: (message, level, event_json(payload), issue_title) for title, message, level, payload, issue_title in events}
    keyerror = next(v for t, v in by_title.items() if t.startswith("KeyError"))
    assert keyerror[1] == "error"
    assert keyerror[2]["logger"] == "billing"
    frames = keyerror[2]["exception"]["values"][-1]["stacktrace"]["frames"]
    assert frames[-1]["function"] == "charge"
    plain = [v for t, v in by_title.items() if not t.startswith("KeyError")]
    assert len(plain) == 1
    assert "disk at 91%" in (plain[0][0] or "") or "disk at 91%" in plain[0][3], plain
