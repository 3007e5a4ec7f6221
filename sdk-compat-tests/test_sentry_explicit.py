"""sentry-sdk's explicit API and logging integration, from real processes
(apps/explicit_api.py, apps/logging_app.py), checked on the dashboard."""

import json
import re
import uuid

import pytest

from conftest import dashboard, latest_event, page, run_app_script, text_of

SDK_ERRORS = ("Internal error in sentry_sdk", "Unexpected status code", "Failed to send")


@pytest.fixture(scope="module")
def captured(module_snag):
    result = run_app_script("explicit_api.py", module_snag.dsn, SENTRY_DEBUG="1")
    assert result.returncode == 0, result.stderr
    for marker in SDK_ERRORS:
        assert marker not in result.stderr, result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1])


def issue_of(snag, event_id):
    rows = snag.wait_for("SELECT issue_id FROM event WHERE event_id = %s", uuid.UUID(event_id))
    assert rows, f"event {event_id} not stored"
    return rows[0][0]


@pytest.mark.feature("sentry-sdk: capture_message with levels")
def test_messages_keep_their_levels(module_snag, captured):
    snag = module_snag
    for level, text in [("warning", "Disk usage at 91%"), ("info", "Nightly import finished"),
                        ("fatal", "Primary database unreachable")]:
        issue_id = issue_of(snag, captured[f"message_{level}"])
        assert snag.query("SELECT title, level FROM issue WHERE id = %s", issue_id) == [(text, level)]
        markup = page(snag, f"/issues/{issue_id}")
        assert f"level-{level}" in markup and text in text_of(markup)


@pytest.mark.feature("sentry-sdk: capture_exception (handled)", "sentry-sdk: chained exceptions")
def test_handled_and_chained_exceptions(module_snag, captured):
    snag = module_snag
    issue_id = issue_of(snag, captured["handled"])
    markup, data = latest_event(snag, issue_id)
    exc = data["exception"]["values"][-1]
    assert exc["type"] == "ZeroDivisionError" and exc["mechanism"]["handled"] is True
    assert exc["stacktrace"]["frames"][-1]["function"] == "compute_ratio"
    assert "handled: yes" in text_of(markup) or "handled: true" in text_of(markup)

    issue_id = issue_of(snag, captured["chained"])
    title, = snag.query("SELECT title FROM issue WHERE id = %s", issue_id)[0]
    assert title == "OrderError: could not place order for durian"
    markup, data = latest_event(snag, issue_id)
    chain = [(e["type"], e["value"]) for e in data["exception"]["values"]]
    assert chain == [("KeyError", "'durian'"), ("OrderError", "could not place order for durian")]
    shown = text_of(markup)
    assert shown.index("OrderError") < shown.index("KeyError"), "the raised exception is shown first"
    assert "place_order" in shown


@pytest.mark.feature("sentry-sdk: set_tag / set_user / set_context / add_breadcrumb")
def test_scope_data_is_shown(module_snag, captured):
    snag = module_snag
    markup, data = latest_event(snag, issue_of(snag, captured["scoped"]))
    assert data["tags"]["tenant"] == "acme-corp" if isinstance(data["tags"], dict) else \
        ["tenant", "acme-corp"] in data["tags"]
    assert data["user"]["email"] == "carol@example.com"
    assert data["contexts"]["order"]["payment_provider"] == "stripe-test"
    assert any(b.get("message") == "added sku-77 to cart" and b.get("category") == "cart"
               for b in data["breadcrumbs"]["values"])
    shown = text_of(markup)
    for expected in ("tenant", "acme-corp", "carol@example.com", "stripe-test", "991", "added sku-77 to cart"):
        assert expected in shown, expected
    # Set inside isolation_scope(): the next event outside it has none of it.
    _, later = latest_event(snag, issue_of(snag, captured["fingerprinted"][0]))
    assert "tenant" not in json.dumps(later.get("tags", {}))


@pytest.mark.feature("sentry-sdk: custom fingerprint (scope.fingerprint)")
def test_custom_fingerprint_merges_different_errors(module_snag, captured):
    snag = module_snag
    first, second = (issue_of(snag, e) for e in captured["fingerprinted"])
    assert first == second
    assert snag.query("SELECT times_seen FROM issue WHERE id = %s", first) == [(2,)]
    assert "upstream-services-down" in text_of(page(snag, f"/issues/{first}"))


@pytest.mark.feature("sentry-sdk: attachments (scope.add_attachment)")
def test_attachment_is_downloadable_from_the_event(module_snag, captured):
    snag = module_snag
    issue_id = issue_of(snag, captured["scoped"])
    snag.wait_for("SELECT 1 FROM attachment WHERE name = 'cart.json'")
    markup = page(snag, f"/issues/{issue_id}")
    link = re.search(r'href="(/attachments/\d+)">cart\.json</a>', markup)
    assert link, "attachment listed on the event"
    r = dashboard(snag).get(snag.base_url + link.group(1), timeout=10)
    assert r.status_code == 200
    assert r.content == b'{"items": ["sku-77"], "total": 12.5}'
    assert "attachment" in r.headers["content-disposition"]


@pytest.mark.feature("sentry-sdk: user feedback (feedback and user_report items)")
def test_user_feedback_is_shown_on_the_issue(module_snag, captured):
    snag = module_snag
    issue_id = issue_of(snag, captured["scoped"])
    rows = snag.wait_for("SELECT count(*) FROM user_report HAVING count(*) = 2")
    assert rows, snag.query("SELECT event_id, name, comments FROM user_report")
    shown = text_of(page(snag, f"/issues/{issue_id}"))
    assert "User feedback" in shown
    assert "The cart showed the wrong total" in shown and "carol@example.com" in shown
    assert "Same here, twice" in shown and "Dave" in shown


@pytest.mark.feature("sentry-sdk: cron check-ins (crons.monitor)")
def test_cron_monitors_show_success_and_failure(module_snag, captured):
    snag = module_snag
    rows = snag.wait_for("SELECT slug, last_status FROM monitor WHERE last_status IN ('ok', 'error') ORDER BY slug")
    assert sorted(rows) == [("nightly-report", "ok"), ("sync-stock", "error")], rows
    # in_progress then ok/error: one check-in each, updated in place.
    assert snag.query("SELECT count(*) FROM monitor_check_in") == [(2,)]
    markup = page(snag, "/projects/1/monitors")
    nightly = markup[markup.index("monitor-slug\">nightly-report"):]
    assert "monitor-status badge new\">ok<" in nightly[: nightly.index("</tr>")]
    sync = markup[markup.index("monitor-slug\">sync-stock"):]
    sync = sync[: sync.index("</tr>")]
    assert ">error<" in sync and "*/5 * * * *" in sync


@pytest.mark.feature("sentry-sdk: transactions accepted")
def test_transaction_is_stored_without_an_issue(module_snag, captured):
    snag = module_snag
    rows = snag.wait_for("SELECT issue_id, release FROM event WHERE event_type = 'transaction' AND transaction = 'rebuild-search-index'")
    assert rows == [(None, "api-demo@1.0")], rows
    assert snag.query("SELECT count(*) FROM issue WHERE title LIKE '%%rebuild-search-index%%'") == [(0,)]


@pytest.mark.feature("sentry-sdk: logging integration (templates group, logger.exception has a stack)")
def test_logging_integration(snag):
    result = run_app_script("logging_app.py", snag.dsn)
    assert result.returncode == 0, result.stderr
    rows = snag.wait_for("SELECT id, title, times_seen, level FROM issue WHERE times_seen = 3")
    assert len(rows) == 1, snag.query("SELECT title, times_seen FROM issue")
    issue_id, title, times_seen, level = rows[0]
    # Grouped by the template and titled by it; each event keeps its formatted message.
    assert title == "Payment %s failed" and level == "error"
    markup, data = latest_event(snag, issue_id)
    assert data["logentry"]["message"] == "Payment %s failed" and data["logger"] == "payments.worker"
    shown = text_of(markup)
    assert "Payment %s failed" in shown  # the title
    assert any(f"Payment {n} failed" in shown for n in (5001, 5002, 5003))  # the event's own message
    messages = snag.query("SELECT message FROM event WHERE issue_id = %s ORDER BY message", issue_id)
    assert messages == [("Payment 5001 failed",), ("Payment 5002 failed",), ("Payment 5003 failed",)], messages
    assert "worker started" in [b.get("message") for b in data["breadcrumbs"]["values"]]

    rows = snag.wait_for("SELECT id, title FROM issue WHERE title LIKE 'KeyError%%'")
    assert len(rows) == 1, snag.query("SELECT title FROM issue")
    markup, data = latest_event(snag, rows[0][0])
    frames = data["exception"]["values"][-1]["stacktrace"]["frames"]
    assert frames[-1]["function"] == "refund" and "ledger" in frames[-1]["vars"]
    assert data["logentry"]["message"] == "Refund crashed for order %s"
    shown = text_of(markup)
    assert "refund" in shown and "Refund crashed for order 5001" in shown
    # A warning is below the default event level: no issue for it.
    assert snag.query("SELECT count(*) FROM issue") == [(2,)]


@pytest.mark.feature("sentry-sdk: application-mode sessions (session items)")
def test_cli_sessions_give_a_crash_free_rate(snag):
    for path in ("ok.csv", "ok.csv", "broken.csv"):
        result = run_app_script("cli_job.py", snag.dsn, path)
        assert result.returncode == (1 if path == "broken.csv" else 0), result.stderr
    rows = snag.wait_for("SELECT total, crashed FROM session_hourly WHERE release = 'cli-tool@0.9' AND total = 3")
    assert rows == [(3, 1)], snag.query("SELECT release, total, errored, crashed FROM session_hourly")
    health = page(snag, "/projects/1/health")
    row = health[health.index("cli-tool@0.9"):]
    assert ">66.6%<" in row[: row.index("</tr>")]
