"""A real Django project (apps/django_shop.py) with sentry-sdk's
DjangoIntegration, send_default_pii and local variables, driven over HTTP."""

import json

import pytest

from conftest import latest_event, start_app, text_of
from apps_constants import SECRET_CARD


@pytest.fixture(scope="module")
def shop(module_snag, tmp_path_factory):
    db = tmp_path_factory.mktemp("django") / "shop.sqlite3"
    with start_app("django_shop.py", module_snag.dsn, DJANGO_DB=str(db)) as app:
        yield app


@pytest.mark.feature("Django: request, user, locals, SQL + log breadcrumbs, transaction",
                     "Django: before_send scrubbing")
def test_django_error_is_complete_and_scrubbed(module_snag, shop):
    snag = module_snag
    r = shop.post("/orders/7/checkout?coupon=OLD-2019", data=json.dumps({"card_number": SECRET_CARD, "items": 2}),
                  headers={"X-User": "alice", "Content-Type": "application/json", "X-Request-Id": "req-8812"})
    assert r.status_code == 500
    rows = snag.wait_for("SELECT id, title, culprit, level FROM issue WHERE title LIKE 'CouponExpired%%'")
    assert len(rows) == 1, snag.query("SELECT title FROM issue")
    issue_id, title, culprit, level = rows[0]
    assert title == "CouponExpired: coupon OLD-2019 expired" and level == "error"
    assert culprit == "/orders/{order_id}/checkout", culprit

    markup, data = latest_event(snag, issue_id)
    request = data["request"]
    assert request["method"] == "POST" and request["url"].endswith("/orders/7/checkout")
    assert ["coupon", "OLD-2019"] in request["query_string"]
    assert request["data"] == {"card_number": "[scrubbed]", "items": 2}
    headers = {k.lower(): v for k, v in dict(request["headers"]).items()}
    assert headers["x-request-id"] == "req-8812"
    assert data["user"]["email"] == "alice@example.com" and data["user"]["username"] == "alice"
    assert data["transaction"] == "/orders/{order_id}/checkout"
    frames = data["exception"]["values"][-1]["stacktrace"]["frames"]
    view = next(f for f in frames if f["function"] == "checkout")
    assert view["vars"]["order_total"] == "85.0" and view["vars"]["card_number"] == "[scrubbed]"
    assert next(f for f in frames if f["function"] == "apply_coupon")["vars"]["coupon"] == "'OLD-2019'"
    crumbs = data["breadcrumbs"]["values"]
    assert any(b.get("category") == "query" and "FROM auth_user WHERE username" in b.get("message", "") for b in crumbs), crumbs
    assert any(b.get("message") == "checking out order 7" for b in crumbs), crumbs

    assert SECRET_CARD not in json.dumps(data) and SECRET_CARD not in markup
    shown = text_of(markup)
    for expected in ("CouponExpired", "/orders/{order_id}/checkout", "apply_coupon", "order_total", "85.0",
                     "FROM auth_user WHERE username", "checking out order 7", "alice@example.com",
                     "req-8812", "OLD-2019", "[scrubbed]", 'raise CouponExpired(f"coupon {coupon} expired")'):
        assert expected in shown, expected
