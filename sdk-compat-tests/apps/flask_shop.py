"""A small Flask shop reporting to Snag through sentry-sdk's FlaskIntegration,
or, with SHOP_SDK=raven, through raven 6.10's Flask extension: the same code
under either SDK, as during a migration from raven."""

import logging
import os
import tempfile

import sentry_sdk
import sqlalchemy
from flask import Flask, jsonify, request
from sentry_sdk.integrations.flask import FlaskIntegration


class ClientWentAway(Exception):
    """Noise the team filters out in before_send."""


def before_send(event, hint):
    exc = hint.get("exc_info")
    if exc and issubclass(exc[0], ClientWentAway):
        return None  # dropped: the SDK reports it in a client report
    return event


RAVEN = os.environ.get("SHOP_SDK") == "raven"
if not RAVEN:
    sentry_sdk.init(
        dsn=os.environ["SENTRY_DSN"],
        release=os.environ.get("RELEASE", "flask-shop@1.0"),
        environment="production",
        send_default_pii=True,
        traces_sample_rate=1.0,
        integrations=[FlaskIntegration(transaction_style="url")],
        before_send=before_send,
    )

app = Flask(__name__)
if RAVEN:
    from raven import Client
    from raven.contrib.flask import Sentry

    Sentry(app, client=Client(os.environ["SENTRY_DSN"], release=os.environ.get("RELEASE", "flask-shop@1.0"),
                              environment="production", include_paths=["__main__"]), logging=False)
log = logging.getLogger("shop.inventory")
# The stock table, through SQLAlchemy, so the SDK records SQL breadcrumbs.
engine = sqlalchemy.create_engine("sqlite:///" + os.path.join(tempfile.mkdtemp(), "stock.sqlite3"))
with engine.begin() as db:
    db.execute(sqlalchemy.text("CREATE TABLE stock (sku TEXT PRIMARY KEY, quantity INTEGER)"))
    db.execute(sqlalchemy.text("INSERT INTO stock VALUES ('apple', 3), ('pear', 0)"))


def load_inventory(sku):
    log.warning("looking up stock for %s", sku)
    with engine.connect() as db:
        rows = db.execute(sqlalchemy.text("SELECT sku, quantity FROM stock WHERE sku = :sku"), {"sku": sku})
        warehouse = dict(rows.all())
    return warehouse[sku]  # KeyError for an unknown SKU


@app.before_request
def identify():
    user = request.headers.get("X-User")
    if user and not RAVEN:
        sentry_sdk.set_user({"id": user, "email": f"{user}@example.com"})


@app.route("/health")
def health():
    return "ok"


def stock(sku):
    """Served under the old and the new API path: one function, two routes."""
    return jsonify(sku=sku, stock=load_inventory(sku))


app.add_url_rule("/api/v1/stock/<sku>", "stock_v1", stock)
app.add_url_rule("/api/v2/stock/<sku>", "stock_v2", stock)


@app.route("/cart/<sku>", methods=["POST"])
def add_to_cart(sku):
    quantity = request.get_json()["quantity"]
    available = load_inventory(sku)
    return jsonify(added=min(quantity, available))


@app.route("/disconnect")
def disconnect():
    raise ClientWentAway("client closed the connection")


if __name__ == "__main__":
    app.run(host="127.0.0.1", port=int(os.environ["PORT"]), threaded=True)
