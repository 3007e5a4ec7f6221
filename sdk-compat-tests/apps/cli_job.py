"""A command-line job with an application-mode session (one `session` item
per run, as desktop apps and CLIs send), crashing when asked to."""

import os
import sys

import sentry_sdk

sentry_sdk.init(release="cli-tool@0.9", environment="production")
sentry_sdk.start_session(session_mode="application")


def import_rows(path):
    if path == "broken.csv":
        raise UnicodeDecodeError("utf-8", b"\xff", 0, 1, "invalid start byte")
    return 3


import_rows(sys.argv[1])  # unhandled on a broken file: the session crashes
sentry_sdk.end_session()
