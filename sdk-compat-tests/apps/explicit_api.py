"""A service using sentry-sdk's explicit API: messages, handled and chained
exceptions, scope data, custom fingerprints, attachments, user feedback,
cron check-ins and a transaction. Prints the ids it captured as JSON."""

import json
import os
import time
import uuid

import sentry_sdk
from sentry_sdk.crons import monitor
from sentry_sdk.envelope import Envelope, Item, PayloadRef

sentry_sdk.init(
    dsn=os.environ["SENTRY_DSN"],
    release="api-demo@1.0",
    environment="staging",
    traces_sample_rate=1.0,
)
ids = {}


class OrderError(Exception):
    pass


class CartError(Exception):
    pass


def compute_ratio(hits, total):
    return hits / total


def place_order(sku):
    try:
        return {"apple": 1}[sku]
    except KeyError as e:
        raise OrderError(f"could not place order for {sku}") from e


def fetch_a():
    raise TimeoutError("inventory service timed out")


def fetch_b():
    raise ConnectionError("pricing service refused the connection")


# Messages at their levels.
for text, level in [("Disk usage at 91%", "warning"), ("Nightly import finished", "info"),
                    ("Primary database unreachable", "fatal")]:
    ids[f"message_{level}"] = sentry_sdk.capture_message(text, level=level)

# A handled exception.
try:
    compute_ratio(3, 0)
except ZeroDivisionError:
    ids["handled"] = sentry_sdk.capture_exception()

# raise … from …
try:
    place_order("durian")
except OrderError:
    ids["chained"] = sentry_sdk.capture_exception()

# Tags, user, context and a manual breadcrumb, on an isolation scope (as a
# web integration makes per request).
with sentry_sdk.isolation_scope() as scope:
    sentry_sdk.set_tag("tenant", "acme-corp")
    sentry_sdk.set_user({"id": "u-9", "email": "carol@example.com", "username": "carol"})
    sentry_sdk.set_context("order", {"order_id": 991, "payment_provider": "stripe-test"})
    sentry_sdk.add_breadcrumb(category="cart", message="added sku-77 to cart", level="info")
    scope.add_attachment(bytes=b'{"items": ["sku-77"], "total": 12.5}', filename="cart.json",
                         content_type="application/json")
    try:
        raise CartError("cart total mismatch")
    except CartError:
        ids["scoped"] = sentry_sdk.capture_exception()

# Two different errors the team wants as one issue.
for fetch in (fetch_a, fetch_b):
    with sentry_sdk.new_scope() as scope:
        scope.fingerprint = ["upstream-services-down"]
        try:
            fetch()
        except Exception:
            ids.setdefault("fingerprinted", []).append(sentry_sdk.capture_exception())

# User feedback about the scoped error, in both envelope forms the SDKs use:
# the `feedback` item (an event with contexts.feedback) and `user_report`.
client = sentry_sdk.get_client()
feedback_id = uuid.uuid4().hex
feedback = Envelope(headers={"event_id": feedback_id})
feedback.add_item(Item(payload=PayloadRef(json={
    "event_id": feedback_id, "type": "feedback", "platform": "python", "level": "info",
    "timestamp": time.time(),
    "contexts": {"feedback": {"message": "The cart showed the wrong total", "contact_email": "carol@example.com",
                              "name": "Carol", "associated_event_id": ids["scoped"]}},
}), type="feedback"))
client.transport.capture_envelope(feedback)
report = Envelope(headers={"event_id": ids["scoped"]})
report.add_item(Item(payload=PayloadRef(json={
    "event_id": ids["scoped"], "name": "Dave", "email": "dave@example.com", "comments": "Same here, twice",
}), type="user_report"))
client.transport.capture_envelope(report)


# Cron check-ins: one job succeeds, one fails.
@monitor(monitor_slug="nightly-report")
def nightly_report():
    time.sleep(0.05)
    return "ok"


@monitor(monitor_slug="sync-stock", monitor_config={"schedule": {"type": "crontab", "value": "*/5 * * * *"}})
def sync_stock():
    raise ConnectionError("warehouse API unreachable")


nightly_report()
try:
    sync_stock()
except ConnectionError:
    pass

# A transaction with a span.
with sentry_sdk.start_transaction(op="task", name="rebuild-search-index"):
    with sentry_sdk.start_span(op="db.query", name="SELECT * FROM products"):
        time.sleep(0.01)

sentry_sdk.flush()
print(json.dumps(ids))
