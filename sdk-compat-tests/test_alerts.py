"""Alert email through a real SMTP server (aiosmtpd): new issues, no repeat
for the same issue, regressions, SMTP outages, storms as digests, frequency
rules, opt-outs, and password reset links."""

import email
import re
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
        total = 500
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
        assert 1 <= count <= 20, f"{count} emails for {total} new issues"
        assert any("alerts in compat" in body_text(m) for _, m in inbox.messages), "digests, not single mails"
        listed = "".join(body_text(m) for _, m in inbox.messages)
        for i in range(total):
            assert f"Storm{i}Error:" in listed, f"Storm{i}Error is in no email"
        assert snag.query("SELECT count(*) FROM alert_outbox WHERE status = 'sent'") == [(total,)]


FREQUENT = r'''
import os, sentry_sdk
sentry_sdk.init(dsn=os.environ["DSN"], environment="prod")

def poll_queue(ms):
    raise TimeoutError("queue poll timed out after %d ms" % ms)

for i in range(int(os.environ["COUNT"])):
    try:
        poll_queue(100 + i)
    except TimeoutError:
        sentry_sdk.capture_exception()
sentry_sdk.flush()
'''


def csrf_of(page):
    return re.search(r'name="csrf" value="([^"]+)"', page).group(1)


def test_frequency_rule_mails_once_per_cool_down(smtp, snag_factory):
    inbox, port, _ = smtp
    with snag_factory(alert_env(port, SNAG_ALERT_FREQUENCY_CHECK_SECS="1")) as snag:
        snag.cli("createuser", "--email", "lead@example.com", "--password", "pw-123456", "--admin")
        project_id = snag.dsn.rsplit("/", 1)[1]
        session = snag.login("lead@example.com", "pw-123456")
        settings = session.get(f"{snag.base_url}/projects/{project_id}/settings", timeout=10).text
        form = {"csrf": csrf_of(settings), "frequency_threshold": "3", "frequency_window": "10"}
        for kind in ("new_issue", "regression", "escalating", "frequency"):
            form[f"{kind}_enabled"] = "on"
        r = session.post(f"{snag.base_url}/projects/{project_id}/alert-rules", data=form, timeout=10)
        assert r.status_code == 200 and "Alert rules saved." in r.text

        assert run_python(FREQUENT, DSN=snag.dsn, COUNT="5").returncode == 0
        snag.wait_for("SELECT 1 FROM issue WHERE times_seen = 5")
        messages = inbox.wait_for(2)
        assert len(messages) == 2, [m["Subject"] for _, m in messages]
        bodies = [body_text(m) for _, m in messages]
        assert any(b.startswith("New issue in compat") for b in bodies), bodies
        frequent = [b for b in bodies if b.startswith("Frequent: seen more than 3 times in 10 minutes")]
        assert len(frequent) == 1, bodies
        assert "poll_queue" in frequent[0] and "Environment: prod" in frequent[0]
        assert messages[0][1]["Subject"] == messages[1][1]["Subject"], "one thread per issue"

        # More events within the cool-down: counted, not mailed again.
        assert run_python(FREQUENT, DSN=snag.dsn, COUNT="5").returncode == 0
        snag.wait_for("SELECT 1 FROM issue WHERE times_seen = 10")
        time.sleep(3)
        assert len(inbox.messages) == 2
        assert snag.query("SELECT count(*) FROM alert_outbox WHERE kind = 'frequency' AND channel = 'email'") == [(1,)]


def test_opted_out_users_get_no_email(smtp, snag_factory):
    inbox, port, _ = smtp
    with snag_factory(alert_env(port)) as snag:
        for who in ("quiet", "keen"):
            snag.cli("createuser", "--email", f"{who}@example.com", "--password", "pw-123456")
        project_id = snag.dsn.rsplit("/", 1)[1]
        quiet = snag.login("quiet@example.com", "pw-123456")
        account = quiet.get(f"{snag.base_url}/account", timeout=10).text
        assert f'name="project" value="{project_id}" checked' in account
        # Email on in general, but not for this project.
        r = quiet.post(f"{snag.base_url}/account/alerts",
                       data={"csrf": csrf_of(account), "alerts_enabled": "on"}, timeout=10)
        assert r.status_code == 200 and "Alert settings saved." in r.text

        assert run_python(RAISE, DSN=snag.dsn).returncode == 1
        messages = inbox.wait_for(1)
        time.sleep(2)
        assert [rcpts for rcpts, _ in inbox.messages] == [["keen@example.com"]]

        # Keen turns alert email off altogether: the next new issue mails no one.
        keen = snag.login("keen@example.com", "pw-123456")
        account = keen.get(f"{snag.base_url}/account", timeout=10).text
        keen.post(f"{snag.base_url}/account/alerts", data={"csrf": csrf_of(account), "project": project_id}, timeout=10)
        assert run_python(FREQUENT, DSN=snag.dsn, COUNT="1").returncode == 0
        rows = snag.wait_for("SELECT last_error FROM alert_outbox WHERE status = 'skipped'")
        assert rows and rows[0][0].startswith("no one to notify")
        time.sleep(1)
        assert len(inbox.messages) == 1


def test_password_reset_by_emailed_link(smtp, snag_factory):
    inbox, port, _ = smtp
    with snag_factory(alert_env(port)) as snag:
        snag.cli("createuser", "--email", "forgetful@example.com", "--password", "old-pass-123")
        page = requests.get(f"{snag.base_url}/password/forgot", timeout=10).text
        assert "send you a link" in page
        for address in ("forgetful@example.com", "nobody@example.com"):
            r = requests.post(f"{snag.base_url}/password/forgot", data={"email": address}, timeout=10)
            assert r.status_code == 200 and "If an account exists" in r.text, "same answer either way"
        messages = inbox.wait_for(1)
        time.sleep(1)
        assert len(inbox.messages) == 1, "unknown addresses get nothing"
        rcpts, msg = messages[0]
        assert rcpts == ["forgetful@example.com"] and msg["Subject"] == "[Snag] Reset your password"
        link = re.search(r"(http://\S+/password/reset/\w+)", body_text(msg)).group(1)
        assert link.startswith(snag.base_url)
        assert snag.query("SELECT body_text FROM mail_outbox") == [("",)], "the sent link is not kept"
        r = requests.post(link, data={"password": "new-pass-456", "confirm": "new-pass-456"},
                          allow_redirects=False, timeout=10)
        assert r.status_code == 303
        snag.login("forgetful@example.com", "new-pass-456")
        r = requests.post(f"{snag.base_url}/login", data={"email": "forgetful@example.com", "password": "old-pass-123"},
                          allow_redirects=False, timeout=10)
        assert r.status_code == 401
        assert requests.get(link, timeout=10).status_code == 404, "a link works once"
