"""A small FastAPI service reporting to Snag through sentry-sdk's Starlette
and FastAPI integrations (enabled automatically)."""

import logging
import os

import sentry_sdk
import uvicorn
from fastapi import FastAPI, Request
from pydantic import BaseModel


def scrub(event, hint):
    """The team's before_send: loyalty card numbers never leave the process."""
    headers = (event.get("request") or {}).get("headers") or {}
    for name in list(headers):
        if name.lower() == "x-loyalty-card":
            headers[name] = "[removed by before_send]"
    return event


sentry_sdk.init(
    dsn=os.environ["SENTRY_DSN"],
    release=os.environ.get("RELEASE", "fastapi-shop@1.0"),
    environment="production",
    send_default_pii=True,
    traces_sample_rate=1.0,
    before_send=scrub,
)

app = FastAPI()
log = logging.getLogger("shop.pricing")
PRICES = {"apple": 1.25}


class Quote(BaseModel):
    sku: str
    quantity: int


def price_of(sku):
    log.warning("pricing %s", sku)
    table = dict(PRICES)
    return table[sku]  # KeyError for an unknown SKU


@app.middleware("http")
async def identify(request: Request, call_next):
    user = request.headers.get("x-user")
    if user:
        sentry_sdk.set_user({"id": user, "email": f"{user}@example.com"})
    return await call_next(request)


@app.get("/health")
async def health():
    return {"ok": True}


async def price(sku: str):
    return {"sku": sku, "price": price_of(sku)}


# One handler under the old and the new API path.
app.add_api_route("/v1/price/{sku}", price, methods=["GET"])
app.add_api_route("/v2/price/{sku}", price, methods=["GET"])


@app.post("/quote")
async def quote(body: Quote):
    unit = price_of(body.sku)
    return {"total": unit * body.quantity}


if __name__ == "__main__":
    uvicorn.run(app, host="127.0.0.1", port=int(os.environ["PORT"]), log_level="warning")
