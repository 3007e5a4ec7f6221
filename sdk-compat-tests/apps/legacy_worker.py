"""A batch job that reports through raven 6.10 (SHOP_SDK=raven: Client,
captureException, captureMessage, logging SentryHandler) or through
sentry-sdk's equivalents: the same code before and after a migration."""

import logging
import os

RAVEN = os.environ.get("SHOP_SDK") == "raven"
logging.basicConfig(level=logging.INFO)
log = logging.getLogger("billing.invoices")

if RAVEN:
    from raven import Client
    from raven.handlers.logging import SentryHandler

    client = Client(release="billing@9.0", include_paths=["__main__"])  # DSN from SENTRY_DSN
    log.addHandler(SentryHandler(client, level=logging.ERROR))

    def capture_exception():
        return client.captureException()

    def capture_message(text):
        return client.captureMessage(text)
else:
    import sentry_sdk

    sentry_sdk.init(release="billing@9.0")  # DSN from SENTRY_DSN

    def capture_exception():
        return sentry_sdk.capture_exception()

    def capture_message(text):
        return sentry_sdk.capture_message(text)


def parse_row(row):
    return int(row["amount"])


def sync_inventory(rows):
    return [parse_row(r) for r in rows]


try:
    sync_inventory([{"amount": "12"}, {"amount": "twelve"}])
except ValueError:
    capture_exception()

capture_message("Nightly sync lost its lock")
log.error("Invoice %s could not be rendered", 4711 if RAVEN else 4712)

# Both SDKs send from a background thread and drain it at exit (atexit).
