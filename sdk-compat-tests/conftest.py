"""Fixtures: a real `snag serve` process on a fresh database per test."""

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import psycopg
import pytest
import requests
import zstandard

ROOT = Path(__file__).resolve().parent.parent
SNAG_BIN = os.environ.get("SNAG_BIN", str(ROOT / "target" / "debug" / "snag"))
ADMIN_URL = os.environ["DATABASE_URL"]


def event_json(payload):
    """An event's stored payload (`event.payload`: zstd-compressed JSON) as a dict."""
    return json.loads(zstandard.ZstdDecompressor().decompress(bytes(payload)))


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def with_database(url, name):
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path="/" + name))


class Snag:
    def __init__(self, base_url, database_url, env, proc, dsn):
        self.base_url = base_url
        self.database_url = database_url
        self.env = env
        self.proc = proc
        self.dsn = dsn

    def cli(self, *args, check=True, input=None):
        return subprocess.run(
            [SNAG_BIN, *args], env=self.env, capture_output=True, text=True, check=check, input=input, timeout=60
        )

    def query(self, sql, *params):
        with psycopg.connect(self.database_url) as conn:
            return conn.execute(sql, params).fetchall()

    def wait_for(self, sql, *params, timeout=15.0):
        """Polls until the query returns rows; events are committed before the SDK
        gets its 200, but SDKs send from a background thread."""
        deadline = time.monotonic() + timeout
        while True:
            rows = self.query(sql, *params)
            if rows or time.monotonic() > deadline:
                return rows
            time.sleep(0.1)

    def login(self, email, password):
        session = requests.Session()
        r = session.post(f"{self.base_url}/login", data={"email": email, "password": password}, timeout=10)
        r.raise_for_status()
        return session


@contextlib.contextmanager
def start_snag(extra_env=None):
    """A fresh database, migrations, one project, and `snag serve` on a free
    port; SIGTERM on exit must end it with status 0."""
    name = "snag_compat_" + uuid.uuid4().hex[:12]
    with psycopg.connect(ADMIN_URL, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    database_url = with_database(ADMIN_URL, name)
    port = free_port()
    base_url = f"http://127.0.0.1:{port}"
    env = dict(
        os.environ,
        DATABASE_URL=database_url,
        SNAG_BIND=f"127.0.0.1:{port}",
        SNAG_BASE_URL=base_url,
        SNAG_SECRET_KEY="compat-tests-secret-key-0123456789",
        SNAG_LOG_FORMAT="json",
        **(extra_env or {}),
    )
    subprocess.run([SNAG_BIN, "migrate"], env=env, check=True, capture_output=True, timeout=60)
    created = subprocess.run(
        [SNAG_BIN, "project", "create", "compat", "--platform", "python"],
        env=env, check=True, capture_output=True, text=True, timeout=60,
    )
    dsn = created.stdout.strip().splitlines()[-1]
    log = open(ROOT / "target" / f"{name}.log", "w")
    proc = subprocess.Popen([SNAG_BIN, "serve"], env=env, stdout=log, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 30
    while True:
        try:
            if requests.get(f"{base_url}/readyz", timeout=1).status_code == 200:
                break
        except requests.RequestException:
            pass
        if proc.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError(f"snag did not start; see {log.name}")
        time.sleep(0.05)
    instance = Snag(base_url, database_url, env, proc, dsn)
    try:
        yield instance
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            code = proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            code = "killed"
        log.close()
        with psycopg.connect(ADMIN_URL, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        assert code == 0, f"snag exited with {code} after SIGTERM"


@pytest.fixture
def snag():
    with start_snag() as instance:
        yield instance


@pytest.fixture
def snag_factory():
    """For tests that need extra environment (SMTP, limits): `with snag_factory(env) as s:`."""
    return start_snag


def run_python(code, **env):
    """Runs a program from a file in a fresh interpreter, as a user's service
    would (a file, so the SDK can read context lines)."""
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        script = Path(tmp) / "service.py"
        script.write_text(code)
        return subprocess.run(
            [sys.executable, str(script)], env=dict(os.environ, **env), capture_output=True, text=True,
            timeout=60, cwd=tmp,
        )


# ---------------------------------------------------------------------------
# Real applications (sdk-compat-tests/apps/) started on loopback ports, the
# dashboard seen by a logged-in user, and the SDK feature → pass/fail table.

import re
import html as html_lib

APPS = Path(__file__).resolve().parent / "apps"
DASHBOARD_EMAIL = "dev@example.com"
DASHBOARD_PASSWORD = "s3cret-pass-123"


def dashboard(snag):
    """A requests session logged in as a user made by `snag createuser`
    (created once per Snag instance)."""
    if getattr(snag, "_dashboard", None) is None:
        snag.cli("createuser", "--email", DASHBOARD_EMAIL, "--password", DASHBOARD_PASSWORD, "--admin")
        snag._dashboard = snag.login(DASHBOARD_EMAIL, DASHBOARD_PASSWORD)
    return snag._dashboard


def page(snag, path):
    r = dashboard(snag).get(f"{snag.base_url}{path}", timeout=10)
    assert r.status_code == 200, (path, r.status_code, r.text[:500])
    return r.text


def text_of(markup):
    """Rendered text without tags, entities decoded: what a reader sees."""
    return html_lib.unescape(re.sub(r"<[^>]+>", " ", markup))


def latest_event(snag, issue_id):
    """(issue page HTML, raw JSON of the event it shows), both fetched over
    HTTP the way a user downloads them."""
    markup = page(snag, f"/issues/{issue_id}")
    match = re.search(rf"/issues/{issue_id}/events/([0-9a-f]{{32}})/json", markup)
    assert match, f"issue {issue_id} shows no event"
    r = dashboard(snag).get(f"{snag.base_url}{match.group(0)}", timeout=10)
    assert r.status_code == 200
    return markup, r.json()


def metric(snag, name, **labels):
    """Sum of a Prometheus counter from /metrics over series matching labels."""
    body = requests.get(f"{snag.base_url}/metrics", timeout=5).text
    total = 0.0
    for line in body.splitlines():
        if not line.startswith(name + "{") and not line.startswith(name + " "):
            continue
        series, _, value = line.rpartition(" ")
        if all(f'{k}="{v}"' in series for k, v in labels.items()):
            total += float(value)
    return total


class App:
    def __init__(self, name, base_url, proc, log_path):
        self.name, self.base_url, self.proc, self.log_path = name, base_url, proc, log_path

    def get(self, path, **kw):
        return requests.get(self.base_url + path, timeout=kw.pop("timeout", 10), **kw)

    def post(self, path, **kw):
        return requests.post(self.base_url + path, timeout=kw.pop("timeout", 10), **kw)

    def log(self):
        return Path(self.log_path).read_text(errors="replace")

    def stop(self, timeout=20):
        """SIGINT, as a terminal or supervisor stops a dev server: the SDK's
        atexit hook flushes queued events, sessions and client reports."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
                raise AssertionError(f"{self.name} did not stop on SIGINT; log:\n{self.log()}")
        return self.proc.returncode


def wait_for_port(port, proc, log_path, timeout=30):
    deadline = time.monotonic() + timeout
    while True:
        with socket.socket() as s:
            s.settimeout(0.2)
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        if proc.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError(f"app did not listen on {port}: " + Path(log_path).read_text(errors="replace")[-3000:])
        time.sleep(0.05)


@contextlib.contextmanager
def start_app(script, dsn, *args, port=None, wait=True, **env):
    """Runs apps/<script> in a fresh interpreter with SENTRY_DSN and PORT set
    and waits until it listens; stops it (SIGINT) on exit."""
    port = port or free_port()
    name = Path(script.split()[0]).stem
    log_path = ROOT / "target" / f"app_{name}_{port}.log"
    log = open(log_path, "w")
    cmd = [sys.executable, str(APPS / script), *args] if script.endswith(".py") else [sys.executable, "-m", *script.split(), *args]
    proc = subprocess.Popen(
        cmd, cwd=APPS, stdout=log, stderr=subprocess.STDOUT,
        env=dict(os.environ, SENTRY_DSN=dsn, PORT=str(port), PYTHONUNBUFFERED="1", **env),
    )
    app = App(name, f"http://127.0.0.1:{port}", proc, log_path)
    try:
        if wait:
            wait_for_port(port, proc, log_path)
        yield app
    finally:
        try:
            app.stop()
        finally:
            log.close()


def run_app_script(script, dsn, *args, timeout=60, **env):
    """Runs apps/<script> to completion, as a cron job or CLI would."""
    return subprocess.run(
        [sys.executable, str(APPS / script), *args], cwd=APPS, capture_output=True, text=True, timeout=timeout,
        env=dict(os.environ, SENTRY_DSN=dsn, PYTHONUNBUFFERED="1", **env),
    )


@pytest.fixture(scope="module")
def module_snag():
    """One Snag per test module: the app tests share a server and filter by
    what each test sent."""
    with start_snag() as instance:
        yield instance


FEATURES = {}


def pytest_configure(config):
    config.addinivalue_line("markers", "feature(*names): SDK features the test proves, for the summary table")


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    names = [name for mark in item.iter_markers("feature") for name in mark.args]
    if not names or (report.when != "call" and report.passed):
        return
    result = "pass" if report.passed else ("skip" if report.skipped else "FAIL")
    for name in names:
        previous = FEATURES.get(name)
        # One failing test fails the feature, whichever order they ran in.
        if previous not in ("FAIL",) and not (previous == "pass" and result == "skip"):
            FEATURES[name] = result


def pytest_terminal_summary(terminalreporter):
    if not FEATURES:
        return
    width = max(len(n) for n in FEATURES)
    terminalreporter.section("SDK features")
    for name in sorted(FEATURES):
        terminalreporter.write_line(f"{name.ljust(width)}  {FEATURES[name]}")
    failed = sum(1 for v in FEATURES.values() if v == "FAIL")
    terminalreporter.write_line(f"{len(FEATURES) - failed} of {len(FEATURES)} features pass")
