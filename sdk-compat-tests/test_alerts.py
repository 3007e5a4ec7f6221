"""Alert email through a real SMTP server (aiosmtpd): new issues, no repeat
for the same issue, regressions, SMTP outages, and storms as digests."""

import email
import time
import uuid

import pytest
import requests
from aiosmtpd.controller import Controller

from conftest import free_port, run_python

RAISE = r'''
import os, sentry_sdk
sentry_sdk.init(dsn=os.environ["DSN"], release="shop@2.0", environment="prod")

def charge_card(amount):
    raise RuntimeError("card declined for amount %d" % amount)

charge_card(int(os.environ.get("AMOUNT", "5")))
'''


class Inbox:
    def __init__(self):
        self.messages = []

    async def handle_DATA(self, server, session, envelope):
        msg = email.message_from_bytes(envelope.content)
        self.messages.append((list(envelope.rcpt_tos), msg))
        return "250 OK"

    def wait_for(self, count, timeout=20.0):
        deadline = time.monotonic() + timeout
        while len(self.messages) < count and time.monotonic() < deadline:
            time.sleep(0.1)
        return self.messages


def body_text(msg):
    for part in msg.walk():
        if part.get_content_type() == "text/plain":
            return part.get_payload(decode=True).decode()
    return ""


@pytest.fixture
def smtp():
    inbox = Inbox()
    port = free_port()
    controller = Controller(inbox, hostname="127.0.0.1", port=port)
    controller.start()
    yield inbox, port, controller
    controller.stop()


def alert_env(port, **extra):
    return {
        "SNAG_SMTP_URL": f"smtp://127.0.0.1:{port}",
        "SNAG_EMAIL_FROM": "Snag <alerts@snag.test>",
        "SNAG_ALERT_RETRY_BASE_SECS": "1",
        **extra,
    }


def test_new_issue_one_email_then_silence_then_regression(smtp, snag_factory):
    inbox, port, _ = smtp
    with snag_factory(alert_env(port)) as snag:
        snag.cli("createuser", "--email", "dev@example.com", "--password", "pw-123456")
        assert run_python(RAISE, DSN=snag.dsn, AMOUNT="5").returncode == 1
        messages = inbox.wait_for(1)
        assert len(messages) == 1
        rcpts, msg = messages[0]
        assert rcpts == ["dev@example.com"]
        (issue_id,) = snag.query("SELECT id FROM issue")[0]
        assert msg["Subject"] == "[Snag] compat: RuntimeError: card declined for amount <int> (COMPAT-1)" or \
            msg["Subject"].startswith("[Snag] compat: RuntimeError: card declined")
        text = body_text(msg)
        assert f"{snag.base_url}/issues/{issue_id}" in text
        assert "charge_card" in text and "Release:     shop@2.0" in text and "Environment: prod" in text

        # The same bug again: counted, but no second email.
        assert run_python(RAISE, DSN=snag.dsn, AMOUNT="7").returncode == 1
        snag.wait_for("SELECT 1 FROM issue WHERE times_seen = 2")
        time.sleep(3)
        assert len(inbox.messages) == 1

        # Resolved, then seen again: exactly one regression email, same subject (threads).
        snag.query("UPDATE issue SET status = 'resolved', resolved_at = now() RETURNING id")
        assert run_python(RAISE, DSN=snag.dsn, AMOUNT="9").returncode == 1
        messages = inbox.wait_for(2)
        assert len(messages) == 2
        assert messages[1][1]["Subject"] == msg["Subject"]
        assert "Regression" in body_text(messages[1][1])
        time.sleep(2)
        assert len(inbox.messages) == 2


def test_smtp_outage_delays_but_loses_nothing(snag_factory):
    inbox = Inbox()
    port = free_port()  # nothing listens here yet
    with snag_factory(alert_env(port)) as snag:
        snag.cli("createuser", "--email", "ops@example.com", "--password", "pw-123456")
        assert run_python(RAISE, DSN=snag.dsn).returncode == 1
        rows = snag.wait_for("SELECT attempts, last_error FROM alert_outbox WHERE attempts > 0")
        assert rows and rows[0][1], "the failed attempt is recorded with its error"
        controller = Controller(inbox, hostname="127.0.0.1", port=port)
        controller.start()
        try:
            messages = inbox.wait_for(1, timeout=30)
            assert len(messages) == 1
            time.sleep(3)
            assert len(inbox.messages) == 1, "delivered once, not doubled"
            assert snag.query("SELECT status FROM alert_outbox") == [("sent",)]
        finally:
            controller.stop()


def test_storm_of_new_issues_becomes_digests(smtp, snag_factory):
    inbox, port, _ = smtp
    with snag_factory(alert_env(port, SNAG_ALERT_DIGEST_THRESHOLD="5", SNAG_ALERT_DIGEST_WINDOW_SECS="3")) as snag:
        snag.cli("createuser", "--email", "oncall@example.com", "--password", "pw-123456")
        key = snag.dsn.split("//")[1].split("@")[0]
        project_id = snag.dsn.rsplit("/", 1)[1]
        session = requests.Session()
        total = 300
        for i in range(total):
            event_id = uuid.uuid4().hex
            body = (
                '{"event_id":"%s"}\n{"type":"event"}\n'
                '{"exception":{"values":[{"type":"Storm%dError","value":"boom"}]}}\n' % (event_id, i)
            )
            r = session.post(
                f"{snag.base_url}/api/{project_id}/envelope/",
                data=body,
                headers={"X-Sentry-Auth": f"Sentry sentry_version=7, sentry_key={key}"},
                timeout=10,
            )
            assert r.status_code == 200
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if snag.query("SELECT count(*) FROM alert_outbox WHERE status = 'pending'") == [(0,)]:
                break
            time.sleep(0.2)
        time.sleep(1)
        count = len(inbox.messages)
        assert 1 <= count <= 30, f"{count} emails for {total} new issues"
        listed = "".join(body_text(m) for _, m in inbox.messages)
        for i in range(total):
            assert f"Storm{i}Error" in listed
