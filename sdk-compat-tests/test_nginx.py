"""Debian's nginx in front of Snag on loopback, with the site config from
deploy/nginx.conf (TLS with a certificate made here, HTTP/2): real
sentry-sdk events through it, client addresses and secure cookies only from
a trusted proxy, request ids from nginx in Snag's logs."""

import contextlib
import json
import os
import re
import shutil
import signal
import socket
import ssl
import subprocess
import time
from pathlib import Path

import pytest
import requests

from conftest import ROOT, event_json, free_port, run_python

NGINX = shutil.which("nginx") or ("/usr/sbin/nginx" if os.path.exists("/usr/sbin/nginx") else None)
pytestmark = pytest.mark.skipif(
    NGINX is None, reason="nginx is not installed (scripts/test installs it when run as root)"
)
SITE = ROOT / "deploy" / "nginx.conf"


def replace_once(text, old, new):
    assert text.count(old) == 1, f"deploy/nginx.conf no longer contains {old!r} exactly once"
    return text.replace(old, new)


@contextlib.contextmanager
def nginx_in_front(snag, tmp_path):
    """nginx on two free loopback ports proxying to `snag`; yields
    (https base URL, http base URL, CA file, access log path)."""
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
         "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost",
         "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True, timeout=60,
    )
    https_port, http_port = free_port(), free_port()
    snag_port = snag.base_url.rsplit(":", 1)[1]
    site = SITE.read_text()
    site = replace_once(site, "server 127.0.0.1:9000;", f"server 127.0.0.1:{snag_port};")
    site = replace_once(site, "listen 443 ssl http2;", f"listen 127.0.0.1:{https_port} ssl http2;")
    site = replace_once(site, "listen 80;", f"listen 127.0.0.1:{http_port};")
    site = replace_once(site, "/etc/ssl/certs/errors.example.com.pem", str(cert))
    site = replace_once(site, "/etc/ssl/private/errors.example.com.key", str(key))
    access_log = tmp_path / "access.log"
    for d in ("body", "proxy", "fastcgi", "uwsgi", "scgi"):
        (tmp_path / d).mkdir()
    # As root nginx's workers would switch to `nobody`, who cannot read the
    # test's private directory.
    user = "user root;" if os.geteuid() == 0 else ""
    conf = tmp_path / "nginx.conf"
    conf.write_text(f"""
{user}
worker_processes 1;
daemon off;
pid {tmp_path}/nginx.pid;
error_log {tmp_path}/error.log info;
events {{ worker_connections 256; }}
http {{
    access_log {access_log} combined;
    client_body_temp_path {tmp_path}/body;
    proxy_temp_path {tmp_path}/proxy;
    fastcgi_temp_path {tmp_path}/fastcgi;
    uwsgi_temp_path {tmp_path}/uwsgi;
    scgi_temp_path {tmp_path}/scgi;
{site}
}}
""")
    check = subprocess.run([NGINX, "-t", "-p", str(tmp_path), "-c", str(conf)], capture_output=True, text=True)
    assert check.returncode == 0, check.stderr
    proc = subprocess.Popen([NGINX, "-p", str(tmp_path), "-c", str(conf)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 15
        while True:
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", https_port), timeout=1):
                break
            assert proc.poll() is None, proc.stderr.read().decode()
            assert time.monotonic() < deadline, "nginx did not start"
            time.sleep(0.05)
        yield f"https://127.0.0.1:{https_port}", f"http://127.0.0.1:{http_port}", str(cert), access_log
    finally:
        proc.send_signal(signal.SIGQUIT)  # graceful
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()


def through(dsn, https_base):
    """The DSN with nginx's https address in place of Snag's."""
    return re.sub(r"http://([^@]+)@[^/]+", lambda m: f"https://{m.group(1)}@{https_base.split('://')[1]}", dsn)


SEND = r'''
import os, sentry_sdk
from sentry_sdk import transport

class FromSecondLoopback(transport.Http2Transport):
    """The real HTTP/2 transport, connecting from 127.0.0.2 so the client's
    address differs from nginx's (127.0.0.1)."""
    def _get_pool_options(self):
        options = super()._get_pool_options()
        options["local_address"] = "127.0.0.2"
        return options

sentry_sdk.init(
    dsn=os.environ["DSN"], ca_certs=os.environ["CA"], send_default_pii=True, debug=True,
    transport=FromSecondLoopback, release="shop@2.0.0",
)

# Ask the server to fill in the client's address, as browser SDKs do.
sentry_sdk.set_user({"id": "42", "ip_address": "{{auto}}"})

def checkout():
    raise RuntimeError("payment gateway unreachable")

try:
    checkout()
except RuntimeError:
    sentry_sdk.capture_exception()
sentry_sdk.flush()
'''


def send_event(dsn, ca):
    result = run_python(SEND, DSN=dsn, CA=ca)
    assert result.returncode == 0, result.stderr
    for marker in ("Internal error in sentry_sdk", "Unexpected status code", "Failed to send", "Traceback"):
        assert marker not in result.stderr, result.stderr
    return result


def stored_ip(snag):
    rows = snag.wait_for("SELECT payload FROM event")
    assert len(rows) == 1, rows
    return event_json(rows[0][0])["user"]["ip_address"]


def test_tls_offers_http2(snag, tmp_path):
    with nginx_in_front(snag, tmp_path) as (https, http, ca, _):
        context = ssl.create_default_context(cafile=ca)
        context.set_alpn_protocols(["h2", "http/1.1"])
        host, port = https.split("://")[1].split(":")
        with socket.create_connection((host, int(port)), timeout=5) as raw:
            with context.wrap_socket(raw, server_hostname=host) as tls:
                assert tls.selected_alpn_protocol() == "h2"
        r = requests.get(f"{http}/healthz", allow_redirects=False, timeout=5)
        assert r.status_code == 301 and r.headers["location"].startswith("https://")
        r = requests.get(f"{https}/healthz", verify=ca, timeout=5)
        assert r.status_code == 200 and r.text == "ok\n"


def test_sdk_events_over_http2_with_client_address_from_trusted_proxy(snag_factory, tmp_path):
    with snag_factory({"SNAG_TRUSTED_PROXIES": "127.0.0.1"}) as snag:
        with nginx_in_front(snag, tmp_path) as (https, _, ca, access_log):
            send_event(through(snag.dsn, https), ca)
            assert stored_ip(snag) == "127.0.0.2", "the address nginx saw, forwarded and believed"
            (title,) = snag.wait_for("SELECT title FROM issue")[0]
            assert title.startswith("RuntimeError: payment gateway unreachable")
            log = access_log.read_text()
            assert re.search(r'"POST /api/\d+/envelope/ HTTP/2\.0" 200', log), log

            # nginx's request id reaches Snag's log lines and comes back.
            r = requests.get(f"{https}/healthz", verify=ca, timeout=5)
            request_id = r.headers["x-request-id"]
            assert re.fullmatch(r"[0-9a-f]{32}", request_id), request_id
            log_file = ROOT / "target" / f"{snag.database_url.rsplit('/', 1)[1]}.log"
            deadline = time.monotonic() + 5
            while True:
                lines = [json.loads(l) for l in log_file.read_text().splitlines() if l.startswith("{")]
                if any(l.get("span", {}).get("request_id") == request_id for l in lines):
                    break
                assert time.monotonic() < deadline, "nginx's request id is not in Snag's log"
                time.sleep(0.1)


def test_untrusted_proxy_headers_are_ignored(snag, tmp_path):
    with nginx_in_front(snag, tmp_path) as (https, _, ca, _):
        send_event(through(snag.dsn, https), ca)
        assert stored_ip(snag) == "127.0.0.1", "without SNAG_TRUSTED_PROXIES the peer (nginx) counts"


def login(base, ca):
    session = requests.Session()
    r = session.post(f"{base}/login", data={"email": "ops@example.com", "password": "s3cret-pass"},
                     verify=ca, allow_redirects=False, timeout=10)
    assert r.status_code == 303, r.text
    return r.headers["set-cookie"]


def is_secure(cookie):
    return any(part.strip() == "Secure" for part in cookie.split(";"))


def test_secure_cookies_follow_forwarded_proto_from_trusted_proxy(snag_factory, tmp_path):
    for trusted, expect_secure in (("127.0.0.1", True), ("10.0.0.0/8", False)):
        with snag_factory({"SNAG_TRUSTED_PROXIES": trusted}) as snag:
            snag.cli("createuser", "--email", "ops@example.com", "--password", "s3cret-pass")
            workdir = tmp_path / trusted.replace("/", "_")
            workdir.mkdir()
            with nginx_in_front(snag, workdir) as (https, _, ca, _):
                assert is_secure(login(https, ca)) is expect_secure, trusted
            if not expect_secure:
                # Straight to Snag from an untrusted peer, header spoofed.
                spoofed = requests.post(f"{snag.base_url}/login", headers={"X-Forwarded-Proto": "https"},
                                        data={"email": "ops@example.com", "password": "s3cret-pass"},
                                        allow_redirects=False, timeout=10)
                assert spoofed.status_code == 303
                assert not is_secure(spoofed.headers["set-cookie"])
