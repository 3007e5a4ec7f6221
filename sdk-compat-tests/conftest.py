"""Fixtures: a real `snag serve` process on a fresh database per test."""

import contextlib
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

ROOT = Path(__file__).resolve().parent.parent
SNAG_BIN = os.environ.get("SNAG_BIN", str(ROOT / "target" / "debug" / "snag"))
ADMIN_URL = os.environ["DATABASE_URL"]


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
