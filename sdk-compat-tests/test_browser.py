"""The dashboard in real headless Chromium, driven over the DevTools
protocol: log in, search, open an issue, expand a library frame, resolve it,
find it under resolved; the same pages on a phone-sized screen; and no
request to any host but Snag. Screenshots land in target/test-output/."""

import base64
import json
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import pytest
import requests
import websocket

from conftest import ROOT, free_port, run_python

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
OUTPUT = ROOT / "target" / "test-output"

SERVICE = r'''
import json, os, sentry_sdk
sentry_sdk.init(dsn=os.environ["DSN"])

def load_settings(text):
    return json.loads(text)

load_settings("{not json")
'''


class Page:
    """A minimal DevTools client: enough to navigate, run script, screenshot."""

    def __init__(self, ws_url):
        self.ws = websocket.create_connection(ws_url, timeout=20, suppress_origin=True)
        self.next_id = 0
        # Every URL the page requested (Network.requestWillBeSent).
        self.requested = []

    def call(self, method, **params):
        self.next_id += 1
        self.ws.send(json.dumps({"id": self.next_id, "method": method, "params": params}))
        while True:
            message = json.loads(self.ws.recv())
            if message.get("method") == "Network.requestWillBeSent":
                self.requested.append(message["params"]["request"]["url"])
            if message.get("id") == self.next_id:
                if "error" in message:
                    raise RuntimeError(f"{method}: {message['error']}")
                return message.get("result", {})

    def eval(self, expression):
        result = self.call("Runtime.evaluate", expression=expression, returnByValue=True, awaitPromise=True)
        if "exceptionDetails" in result:
            raise RuntimeError(f"{expression}: {result['exceptionDetails']}")
        return result["result"].get("value")

    def wait_for(self, expression, timeout=15.0):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                if self.eval(expression):
                    return
            except RuntimeError:
                pass  # the page is navigating
            time.sleep(0.1)
        raise AssertionError(f"timed out waiting for {expression}")

    def goto(self, url):
        self.call("Page.navigate", url=url)
        self.wait_for(f"location.href.startsWith({json.dumps(url.split('?')[0])}) && document.readyState === 'complete'")

    def screenshot(self, name):
        OUTPUT.mkdir(parents=True, exist_ok=True)
        data = self.call("Page.captureScreenshot", format="png")["data"]
        (OUTPUT / name).write_bytes(base64.b64decode(data))


@pytest.fixture
def browser():
    if not CHROMIUM:
        pytest.fail("chromium is not installed (scripts/test installs Debian's chromium when run as root)")
    port = free_port()
    profile = tempfile.mkdtemp(prefix="snag-chromium-")
    proc = subprocess.Popen(
        [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-quic",
         f"--remote-debugging-port={port}", f"--user-data-dir={profile}", "--window-size=1280,900", "about:blank"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                targets = requests.get(f"http://127.0.0.1:{port}/json/list", timeout=1).json()
                pages = [t for t in targets if t.get("type") == "page"]
                if pages:
                    break
            except requests.RequestException:
                pass
            assert time.monotonic() < deadline, "chromium did not start"
            time.sleep(0.2)
        page = Page(pages[0]["webSocketDebuggerUrl"])
        page.call("Page.enable")
        page.call("Runtime.enable")
        page.call("Network.enable")
        yield page
    finally:
        proc.terminate()
        proc.wait(timeout=10)
        shutil.rmtree(profile, ignore_errors=True)


def test_triage_in_a_real_browser(snag, browser):
    assert run_python(SERVICE, DSN=snag.dsn).returncode == 1
    rows = snag.wait_for("SELECT id, project_id FROM issue")
    issue_id, project_id = rows[0]
    snag.cli("createuser", "--email", "triage@example.com", "--password", "browser-pass-1")

    browser.goto(f"{snag.base_url}/login")
    browser.eval("""
        document.querySelector('input[name=email]').value = 'triage@example.com';
        document.querySelector('input[name=password]').value = 'browser-pass-1';
        document.querySelector('form').submit();
    """)
    browser.wait_for("location.pathname === '/projects' && document.readyState === 'complete'")

    browser.goto(f"{snag.base_url}/projects/{project_id}/issues")
    browser.eval("""
        document.querySelector('input[name=query]').value = 'is:resolved JSONDecodeError';
        document.querySelector('form.filters').submit();
    """)
    browser.wait_for("location.search.includes('JSONDecodeError') && document.readyState === 'complete'")
    # The search text's is: wins over the status select: nothing is resolved yet.
    assert browser.eval("document.querySelectorAll('a.title').length") == 0
    browser.eval("""
        document.querySelector('input[name=query]').value = 'is:unresolved level:error JSONDecodeError';
        document.querySelector('form.filters').submit();
    """)
    browser.wait_for("location.search.includes('level%3Aerror') && document.readyState === 'complete'")
    titles = browser.eval("[...document.querySelectorAll('a.title')].map(a => a.textContent)")
    assert len(titles) == 1 and titles[0].startswith("JSONDecodeError"), titles
    assert browser.eval("document.querySelector('svg.spark rect:not(.zero)') !== null"), "the sparkline shows the event"
    # The external script runs under the CSP: "select all" ticks every row.
    browser.eval("const all = document.querySelector('input[data-select-all]'); all.checked = true; all.dispatchEvent(new Event('change', {bubbles: true}))")
    assert browser.eval("[...document.querySelectorAll('input[name=issue]')].every(b => b.checked)")
    browser.screenshot("issue-list.png")

    browser.eval("document.querySelector('a.title').click()")
    browser.wait_for(f"location.pathname === '/issues/{issue_id}' && document.readyState === 'complete'")
    # In-app frames are open, library frames (json's decoder) collapsed until clicked.
    assert browser.eval("[...document.querySelectorAll('li.frame.in-app details')].every(d => d.open)")
    library = "document.querySelector('li.frame:not(.in-app) details')"
    assert browser.eval(f"{library} !== null && !{library}.open")
    browser.eval(f"{library}.querySelector('summary').click()")
    assert browser.eval(f"{library}.open")
    assert browser.eval("document.body.innerText.includes('load_settings')")
    assert "## COMPAT-1: JSONDecodeError" in browser.eval("document.getElementById('issue-markdown').value")
    browser.screenshot("issue-page.png")

    browser.eval("[...document.querySelectorAll('section.actions button')].find(b => b.textContent === 'Resolve').click()")
    browser.wait_for("document.querySelector('.badge.status') && document.querySelector('.badge.status').textContent === 'resolved'")
    browser.goto(f"{snag.base_url}/projects/{project_id}/issues?status=resolved")
    assert browser.eval("[...document.querySelectorAll('a.title')].some(a => a.textContent.startsWith('JSONDecodeError'))")
    assert snag.query("SELECT status FROM issue WHERE id = %s", issue_id) == [("resolved",)]
    assert (OUTPUT / "issue-list.png").stat().st_size > 1000

    # A phone: the same pages fit the screen (nothing wider than it) and
    # the main controls are still there.
    browser.call("Emulation.setDeviceMetricsOverride", width=390, height=844, deviceScaleFactor=2, mobile=True)
    # On a phone an overflowing page is zoomed out, so innerWidth grows.
    fits = "window.innerWidth <= 390 && document.documentElement.scrollWidth <= 390"
    too_wide = ("[...document.querySelectorAll('body *')].filter(e => e.getBoundingClientRect().right > 391)"
                ".slice(0, 5).map(e => e.tagName + '.' + e.className + ' ' + Math.round(e.getBoundingClientRect().right))")
    for path, shot, control in [
        (f"/projects/{project_id}/issues?status=all", "issue-list-phone.png", "input[name=query]"),
        (f"/issues/{issue_id}", "issue-page-phone.png", "section.actions button"),
        (f"/projects/{project_id}/settings", "settings-phone.png", "input[name=url]"),
    ]:
        browser.goto(f"{snag.base_url}{path}")
        browser.screenshot(shot)
        assert browser.eval(control.join(["document.querySelector('", "') !== null"])), control
        assert browser.eval(fits), f"{path} is wider than a 390px screen: {browser.eval(too_wide)}"
    browser.call("Emulation.clearDeviceMetricsOverride")

    # Server-side only: every request the pages made went to Snag.
    browser.call("Runtime.evaluate", expression="1")
    assert browser.requested, "requests were recorded"
    foreign = [u for u in browser.requested if not u.startswith(snag.base_url + "/") and not u.startswith("data:")]
    assert foreign == [], foreign
