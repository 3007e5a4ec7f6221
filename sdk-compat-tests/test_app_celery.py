"""A real Celery worker (apps/celery_tasks.py, filesystem broker) with
sentry-sdk's CeleryIntegration: a failing task is an issue named after it."""

import time

import pytest

from conftest import latest_event, run_app_script, start_app, text_of


@pytest.mark.feature("Celery: failing task captured with task name as transaction")
def test_failing_celery_task_is_captured(snag, tmp_path):
    env = {"CELERY_BROKER_DIR": str(tmp_path)}
    with start_app("celery -A celery_tasks worker --pool=solo --concurrency=1 --without-heartbeat "
                   "--without-mingle --without-gossip --loglevel=INFO", snag.dsn, wait=False, **env) as worker:
        deadline = time.monotonic() + 30
        while "ready." not in worker.log():
            assert worker.proc.poll() is None and time.monotonic() < deadline, worker.log()
            time.sleep(0.1)
        enqueued = run_app_script("celery_enqueue.py", snag.dsn, "31", **env)
        assert enqueued.returncode == 0, enqueued.stderr
        rows = snag.wait_for("SELECT id, title, culprit FROM issue WHERE title LIKE 'PaymentDeclined%%'")
        assert "receipt 31 sent" in worker.log()
    assert len(rows) == 1, snag.query("SELECT title FROM issue")
    issue_id, title, culprit = rows[0]
    assert title == "PaymentDeclined: order 31: card declined for 19.99"
    assert culprit == "celery_tasks.charge_card"
    markup, data = latest_event(snag, issue_id)
    assert data["transaction"] == "celery_tasks.charge_card"
    exc = data["exception"]["values"][-1]
    assert exc["mechanism"]["type"] == "celery" and exc["mechanism"]["handled"] is False
    frame = exc["stacktrace"]["frames"][-1]
    assert frame["function"] == "charge_card" and "gateway_reply" in frame["vars"]
    assert data["release"] == "billing-worker@4.2"
    # Only the failure is an issue; the successful task is not.
    assert snag.query("SELECT count(*) FROM issue") == [(1,)]
    shown = text_of(markup)
    for expected in ("PaymentDeclined", "celery_tasks.charge_card", "gateway_reply", "card declined"):
        assert expected in shown, expected
