"""What an app sees when Snag says 429 or is not there at all."""

import re
import socket
import time

import pytest

from conftest import dashboard, metric, page, run_app_script, start_app


def set_rate_limit(snag, per_minute):
    settings = page(snag, "/projects/1/settings")
    csrf = re.search(r'name="csrf" value="([^"]+)"', settings).group(1)
    key_id = re.search(r'action="/projects/1/keys/(\d+)"', settings).group(1)
    r = dashboard(snag).post(f"{snag.base_url}/projects/1/keys/{key_id}",
                             data={"csrf": csrf, "action": "rate_limit", "rate_limit": str(per_minute)}, timeout=10)
    assert r.status_code == 200, r.text[:300]


def envelope_requests(snag, status):
    return metric(snag, "snag_http_requests_total", status=str(status), route="/api/{project_id}/envelope/")


def store_requests(snag, status):
    return metric(snag, "snag_http_requests_total", status=str(status), route="/api/{project_id}/store/")


@pytest.mark.feature("sentry-sdk: honours 429 / X-Sentry-Rate-Limits (no retry loop)",
                     "raven: honours 429 Retry-After (no retry loop)")
def test_sdks_back_off_on_429(snag):
    set_rate_limit(snag, 2)
    result = run_app_script("burst.py", snag.dsn, "10")
    assert result.returncode == 0, result.stderr
    assert "Rate-limited via x-sentry-rate-limits" in result.stderr, result.stderr[-3000:]
    assert snag.query("SELECT count(*) FROM event") == [(2,)]
    # Exactly one refused request: every later event is dropped in the SDK
    # for the Retry-After period instead of being sent again.
    assert envelope_requests(snag, 429) == 1
    # The other seven were dropped in the SDK and reported as such; each
    # flush() sends that client report, never the event again.
    lost = snag.wait_for("SELECT quantity FROM outcome_hourly WHERE reason = 'ratelimit_backoff' AND category = 'error' AND quantity >= 7")
    assert lost == [(7,)], snag.query("SELECT outcome, reason, category, quantity FROM outcome_hourly")
    assert envelope_requests(snag, 200) <= 2 + 7
    assert snag.query("SELECT count(*) FROM event") == [(2,)]

    result = run_app_script("burst.py", snag.dsn, "5", SHOP_SDK="raven")
    assert result.returncode == 0, result.stderr
    assert store_requests(snag, 429) == 1, result.stderr[-3000:]
    assert store_requests(snag, 200) == 0
    assert snag.query("SELECT count(*) FROM event") == [(2,)]


@pytest.fixture
def blackhole():
    """A port that accepts connections and never answers: a hung Snag."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen(64)
        yield s.getsockname()[1]


def timed(app, path):
    started = time.monotonic()
    r = app.get(path, timeout=10)
    return r.status_code, time.monotonic() - started


@pytest.mark.feature("sentry-sdk: app unaffected when Snag is down or hung")
@pytest.mark.parametrize("outage", ["refused", "hung"])
def test_app_keeps_serving_when_snag_is_unreachable(outage, blackhole):
    from conftest import free_port

    port = blackhole if outage == "hung" else free_port()
    dsn = f"http://{'0' * 32}@127.0.0.1:{port}/1"
    with start_app("flask_shop.py", dsn) as app:
        for _ in range(5):
            status, seconds = timed(app, "/api/v1/stock/kiwi")
            assert status == 500
            # Sending happens on the SDK's worker thread, never in the request.
            assert seconds < 1.0, seconds
            status, seconds = timed(app, "/health")
            assert status == 200 and seconds < 1.0
        started = time.monotonic()
        assert app.stop() == 0
        # Shutdown waits at most the SDK's shutdown_timeout (2 s) for the
        # queue, not the 30 s transport timeout.
        assert time.monotonic() - started < 8, app.log()
