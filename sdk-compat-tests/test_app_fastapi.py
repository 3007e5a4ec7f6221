"""A real FastAPI app (apps/fastapi_shop.py) under uvicorn with sentry-sdk's
Starlette/FastAPI integrations, driven over HTTP."""

import pytest

from conftest import latest_event, page, start_app, text_of


@pytest.fixture(scope="module")
def service(module_snag):
    with start_app("fastapi_shop.py", module_snag.dsn) as app:
        yield app


@pytest.mark.feature("FastAPI: request, user, locals, breadcrumbs, transaction",
                     "FastAPI: before_send scrubbing")
def test_fastapi_error_shows_request_user_locals_and_breadcrumbs(module_snag, service):
    snag = module_snag
    r = service.post("/quote?campaign=spring", json={"sku": "plum", "quantity": 4},
                     headers={"X-User": "bob", "X-Client-Version": "ios-5.1", "X-Loyalty-Card": "LOYAL-778899"})
    assert r.status_code == 500
    rows = snag.wait_for("SELECT id, title, level FROM issue WHERE culprit = '/quote'")
    assert len(rows) == 1, snag.query("SELECT title, culprit FROM issue")
    issue_id, title, level = rows[0]
    assert title == "KeyError: 'plum'" and level == "error"

    markup, data = latest_event(snag, issue_id)
    request = data["request"]
    assert request["method"] == "POST" and request["url"].endswith("/quote")
    assert ["campaign", "spring"] in request["query_string"], request["query_string"]
    assert request["data"] == {"sku": "plum", "quantity": 4}
    headers = {k.lower(): v for k, v in dict(request["headers"]).items()}
    assert headers["x-client-version"] == "ios-5.1"
    assert headers["x-loyalty-card"] == "[removed by before_send]"
    assert "LOYAL-778899" not in str(data) and "LOYAL-778899" not in markup
    assert data["user"]["email"] == "bob@example.com"
    assert data["transaction"] == "/quote"
    exc = data["exception"]["values"][-1]
    assert exc["mechanism"]["handled"] is False
    helper = next(f for f in exc["stacktrace"]["frames"] if f["function"] == "price_of")
    assert helper["in_app"] and helper["vars"]["sku"] == "'plum'" and "table" in helper["vars"]
    assert "pricing plum" in [b.get("message") for b in data["breadcrumbs"]["values"]]

    shown = text_of(markup)
    for expected in ("KeyError", "/quote", "price_of", "return table[sku]", "pricing plum",
                     "bob@example.com", "ios-5.1", "spring"):
        assert expected in shown, expected


@pytest.mark.feature("FastAPI: grouping by stack, not by route")
def test_fastapi_two_routes_one_helper_one_issue(module_snag, service):
    snag = module_snag
    for path in ("/v1/price/kiwi", "/v2/price/kiwi", "/v2/price/lime"):
        assert service.get(path).status_code == 500
    rows = snag.wait_for("SELECT id FROM issue WHERE culprit LIKE '/v_/price/{sku}' AND times_seen = 3")
    assert len(rows) == 1, snag.query("SELECT title, culprit, times_seen FROM issue")
    issue_id = rows[0][0]
    transactions = {t for (t,) in snag.query("SELECT transaction FROM event WHERE issue_id = %s", issue_id)}
    assert transactions == {"/v1/price/{sku}", "/v2/price/{sku}"}
    assert "3</strong> events" in page(snag, f"/issues/{issue_id}")
