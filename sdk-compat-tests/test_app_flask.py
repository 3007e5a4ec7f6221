"""A real Flask app (apps/flask_shop.py) with sentry-sdk's FlaskIntegration,
driven over HTTP; everything is checked on Snag's dashboard."""

import pytest

from conftest import latest_event, metric, page, start_app, text_of


@pytest.fixture(scope="module")
def shop(module_snag):
    with start_app("flask_shop.py", module_snag.dsn) as app:
        yield app


def frames_of(data):
    return data["exception"]["values"][-1]["stacktrace"]["frames"]


@pytest.mark.feature("Flask: request, user, locals, SQL + log breadcrumbs, transaction")
def test_flask_error_shows_request_user_locals_and_breadcrumbs(module_snag, shop):
    snag = module_snag
    r = shop.post("/cart/plum?ref=newsletter", json={"quantity": 2}, headers={"X-User": "alice", "X-Shop-Region": "eu-west"})
    assert r.status_code == 500
    rows = snag.wait_for("SELECT id, title, culprit, level FROM issue WHERE title LIKE 'KeyError%%' AND culprit = '/cart/<sku>'")
    assert len(rows) == 1, snag.query("SELECT title, culprit FROM issue")
    issue_id, title, culprit, level = rows[0]
    assert title == "KeyError: 'plum'" and level == "error"

    markup, data = latest_event(snag, issue_id)
    request = data["request"]
    assert request["method"] == "POST"
    assert request["url"].endswith("/cart/plum")
    # Normalised into pairs, as Relay does.
    assert ["ref", "newsletter"] in request["query_string"], request["query_string"]
    assert request["data"] == {"quantity": 2}
    headers = {k.lower(): v for k, v in dict(request["headers"]).items()}
    assert headers["x-shop-region"] == "eu-west"
    assert data["user"]["email"] == "alice@example.com"
    assert data["transaction"] == "/cart/<sku>"
    exc = data["exception"]["values"][-1]
    assert exc["mechanism"]["type"] == "flask" and exc["mechanism"]["handled"] is False
    frames = frames_of(data)
    helper = next(f for f in frames if f["function"] == "load_inventory")
    assert helper["in_app"] and "warehouse" in helper["vars"] and helper["vars"]["sku"] == "'plum'"
    crumbs = [b.get("message", "") for b in data["breadcrumbs"]["values"]]
    assert "looking up stock for plum" in crumbs
    assert any(b.get("category") == "query" and "FROM stock WHERE sku" in b.get("message", "")
               for b in data["breadcrumbs"]["values"]), crumbs

    shown = text_of(markup)
    for expected in ("KeyError", "/cart/<sku>", "load_inventory", "add_to_cart", "return warehouse[sku]",
                     "looking up stock for plum", "FROM stock WHERE sku", "alice@example.com", "eu-west", "POST", "newsletter",
                     "warehouse"):
        assert expected in shown, expected


@pytest.mark.feature("Flask: grouping by stack, not by route")
def test_flask_two_routes_one_helper_one_issue(module_snag, shop):
    snag = module_snag
    for path in ("/api/v1/stock/kiwi", "/api/v2/stock/kiwi", "/api/v1/stock/mango"):
        assert shop.get(path).status_code == 500
    rows = snag.wait_for("SELECT id, times_seen FROM issue WHERE title LIKE 'KeyError%%' AND times_seen = 3")
    assert len(rows) == 1, snag.query("SELECT title, culprit, times_seen FROM issue")
    issue_id = rows[0][0]
    transactions = {t for (t,) in snag.query("SELECT transaction FROM event WHERE issue_id = %s", issue_id)}
    assert transactions == {"/api/v1/stock/<sku>", "/api/v2/stock/<sku>"}
    # The cart route reaches the helper through another in-app caller: a
    # different stack, so a different issue, as in Sentry.
    assert shop.post("/cart/kiwi", json={"quantity": 1}).status_code == 500
    cart = snag.wait_for("SELECT DISTINCT issue_id FROM event WHERE transaction = '/cart/<sku>'")
    assert cart and issue_id not in [i for (i,) in cart]
    assert "3</strong> events" in page(snag, f"/issues/{issue_id}")


@pytest.mark.feature("sentry-sdk: release health (crash-free sessions)", "sentry-sdk: transactions accepted",
                     "sentry-sdk: client reports (before_send drops)", "Flask: flush on shutdown")
def test_flask_sessions_transactions_and_client_reports(module_snag):
    snag = module_snag
    with start_app("flask_shop.py", snag.dsn, RELEASE="flask-shop@2.0") as app:
        for _ in range(3):
            assert app.get("/health").status_code == 200
        assert app.get("/api/v1/stock/durian").status_code == 500
        assert app.get("/disconnect").status_code == 500  # dropped by before_send
        assert app.stop() == 0, app.log()
    assert "Internal error in sentry_sdk" not in app.log()

    rows = snag.wait_for("SELECT total, crashed FROM session_hourly WHERE release = 'flask-shop@2.0'")
    assert rows == [(5, 1)], rows
    health = page(snag, f"/projects/1/health")
    row = health[health.index("flask-shop@2.0"):]
    row = row[: row.index("</tr>")]
    assert ">80%<" in row, row

    tx = snag.wait_for("SELECT count(*) FROM event WHERE event_type = 'transaction' AND release = 'flask-shop@2.0' HAVING count(*) >= 5")
    assert tx and tx[0][0] >= 5, snag.query("SELECT event_type, transaction FROM event WHERE release = 'flask-shop@2.0'")
    assert snag.query("SELECT count(*) FROM issue WHERE title LIKE 'ClientWentAway%%'") == [(0,)]
    assert metric(snag, "snag_ingest_items_total", outcome="rejected") == 0

    outcomes = snag.wait_for("SELECT quantity FROM outcome_hourly WHERE reason = 'before_send' AND category = 'error'")
    # Flask's own error log of the same exception is dropped too: one or two.
    assert outcomes and outcomes[0][0] >= 1, snag.query("SELECT * FROM outcome_hourly")
    dropped = text_of(page(snag, "/projects/1/outcomes"))
    assert "before_send" in dropped and "discarded by the SDK" in dropped
