"""A service that only uses the standard logging module; sentry-sdk's
LoggingIntegration (on by default) turns errors into events."""

import logging
import os

import sentry_sdk

sentry_sdk.init(dsn=os.environ["SENTRY_DSN"], release="payments@7.0")
logging.basicConfig(level=logging.INFO)
log = logging.getLogger("payments.worker")


def refund(order_id):
    ledger = {"balance": 0}
    return ledger["refunds"][order_id]


log.info("worker started")  # a breadcrumb, not an event
for order_id in (5001, 5002, 5003):
    log.error("Payment %s failed", order_id)

try:
    refund(5001)
except KeyError:
    log.exception("Refund crashed for order %s", 5001)

log.warning("retry queue is long")  # below the event level: breadcrumb only
sentry_sdk.flush()
