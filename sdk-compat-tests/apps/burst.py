"""A job that reports a burst of errors, through sentry-sdk or (SHOP_SDK=raven)
raven, flushing after each so every event is its own request."""

import os
import sys

COUNT = int(sys.argv[1])

if os.environ.get("SHOP_SDK") == "raven":
    from raven import Client
    from raven.transport.http import HTTPTransport

    client = Client(transport=HTTPTransport)  # synchronous: one request per event
    for i in range(COUNT):
        client.captureMessage(f"raven burst {i}")
else:
    import sentry_sdk

    sentry_sdk.init(debug=True)
    for i in range(COUNT):
        sentry_sdk.capture_message(f"burst {i}")
        sentry_sdk.flush()
