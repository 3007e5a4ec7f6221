"""raven 6.10 in real apps: its Client, logging handler, Django and Flask
integrations. The same code reporting through raven and through sentry-sdk
lands in the same issues, as Sentry groups them."""

import json

import pytest

from apps_constants import SECRET_CARD
from conftest import latest_event, run_app_script, start_app, text_of

RAVEN_ERRORS = ("Sentry responded with an", "Failed to submit", "sentry.errors")


def events_by_issue(snag):
    return dict(snag.query("SELECT issue_id, count(*) FROM event WHERE issue_id IS NOT NULL GROUP BY issue_id"))


@pytest.mark.feature("raven: Client.captureException / captureMessage / SentryHandler",
                     "raven: same issues as sentry-sdk (client, handler)")
def test_raven_and_sentry_sdk_batch_job_share_issues(snag):
    for sdk in ("raven", "sentry"):
        result = run_app_script("legacy_worker.py", snag.dsn, SHOP_SDK=sdk)
        assert result.returncode == 0, result.stderr
        for marker in RAVEN_ERRORS:
            assert marker not in result.stderr, result.stderr
    rows = snag.wait_for("SELECT count(*) FROM event HAVING count(*) = 6")
    assert rows, snag.query("SELECT title FROM event")
    issues = snag.query("SELECT title, times_seen FROM issue ORDER BY title")
    assert issues == [
        ("Invoice %s could not be rendered", 2),
        ("Nightly sync lost its lock", 2),
        ("ValueError: invalid literal for int() with base 10: 'twelve'", 2),
    ], issues
    for issue_id in events_by_issue(snag):
        markup, data = latest_event(snag, issue_id)
        assert data["release"] == "billing@9.0"
    exc_issue = snag.query("SELECT id FROM issue WHERE title LIKE 'ValueError%%'")[0][0]
    markup, _ = latest_event(snag, exc_issue)
    assert "parse_row" in text_of(markup) and "sync_inventory" in text_of(markup)


def hit_and_stop(script, snag, sdk, path, **kwargs):
    with start_app(script, snag.dsn, SHOP_SDK=sdk, **kwargs.pop("env", {})) as app:
        r = app.post(path, **kwargs) if "data" in kwargs or "json" in kwargs else app.get(path, **kwargs)
        assert r.status_code == 500, r.text[:300]
        assert app.stop() == 0
    log = app.log()
    for marker in RAVEN_ERRORS + ("Internal error in sentry_sdk",):
        assert marker not in log, log
    return log


@pytest.mark.feature("raven: Flask integration", "raven: same issues as sentry-sdk (Flask)")
def test_raven_flask_and_sentry_flask_share_an_issue(snag):
    hit_and_stop("flask_shop.py", snag, "raven", "/api/v1/stock/kiwi?src=raven")
    rows = snag.wait_for("SELECT id, title FROM issue")
    assert len(rows) == 1 and rows[0][1] == "KeyError: 'kiwi'", rows
    issue_id = rows[0][0]
    markup, data = latest_event(snag, issue_id)
    assert data["sdk"]["name"].startswith("raven")
    assert data["request"]["url"].endswith("/api/v1/stock/kiwi") and data["request"]["method"] == "GET"
    assert "load_inventory" in text_of(markup) and "warehouse" in text_of(markup)

    hit_and_stop("flask_shop.py", snag, "sentry", "/api/v1/stock/kiwi?src=sentry-sdk")
    rows = snag.wait_for("SELECT id, times_seen FROM issue WHERE times_seen = 2")
    assert rows == [(issue_id, 2)], snag.query("SELECT id, title, times_seen FROM issue")


@pytest.mark.feature("raven: Django integration", "raven: same issues as sentry-sdk (Django)")
def test_raven_django_and_sentry_django_share_an_issue(snag, tmp_path):
    body = json.dumps({"card_number": SECRET_CARD, "items": 1})
    headers = {"X-User": "alice", "Content-Type": "application/json"}
    for n, sdk in enumerate(("raven", "sentry")):
        hit_and_stop("django_shop.py", snag, sdk, "/orders/9/checkout?coupon=OLD-1", data=body, headers=headers,
                     env={"DJANGO_DB": str(tmp_path / f"{sdk}.sqlite3")})
        rows = snag.wait_for("SELECT id, times_seen FROM issue WHERE times_seen = %s", n + 1)
        assert len(rows) == 1, snag.query("SELECT id, title, times_seen FROM issue")
        issue_id = rows[0][0]
        if sdk == "raven":
            markup, data = latest_event(snag, issue_id)
            assert data["sdk"]["name"].startswith("raven")
            assert data["request"]["url"].endswith("/orders/9/checkout")
            assert data["user"]["email"] == "alice@example.com"
            # raven's default sanitizer masks card numbers.
            assert SECRET_CARD not in json.dumps(data) and SECRET_CARD not in markup
            assert "apply_coupon" in text_of(markup)
    assert snag.query("SELECT title FROM issue") == [("CouponExpired: coupon OLD-1 expired",)]
