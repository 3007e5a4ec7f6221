"""Celery tasks reporting to Snag through sentry-sdk's CeleryIntegration.
The broker is kombu's filesystem transport in a directory the test makes:
a real broker between two processes, nothing to install or run."""

import os

import sentry_sdk
from celery import Celery
from sentry_sdk.integrations.celery import CeleryIntegration

BROKER_DIR = os.environ["CELERY_BROKER_DIR"]
for sub in ("queue", "processed"):
    os.makedirs(os.path.join(BROKER_DIR, sub), exist_ok=True)

sentry_sdk.init(
    dsn=os.environ["SENTRY_DSN"],
    release="billing-worker@4.2",
    environment="production",
    integrations=[CeleryIntegration()],
)

app = Celery("celery_tasks", broker="filesystem://")
app.conf.update(
    broker_transport_options={
        "data_folder_in": os.path.join(BROKER_DIR, "queue"),
        "data_folder_out": os.path.join(BROKER_DIR, "queue"),
        "processed_folder": os.path.join(BROKER_DIR, "processed"),
        "polling_interval": 0.1,
    },
    task_ignore_result=True,
    worker_hijack_root_logger=False,
    broker_connection_retry_on_startup=True,
)


class PaymentDeclined(Exception):
    pass


@app.task
def charge_card(order_id, amount):
    gateway_reply = {"status": "declined", "order": order_id}
    raise PaymentDeclined(f"order {order_id}: card declined for {amount}")


@app.task
def send_receipt(order_id):
    return f"receipt {order_id} sent"
