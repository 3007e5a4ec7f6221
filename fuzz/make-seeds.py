#!/usr/bin/env python3
"""Builds fuzz/seeds/<target>/ from the captured SDK requests
(src/ingest/testdata/captured, a copy of ../shared/fixtures/captured) and the
normaliser fixtures (src/event/testdata). The output is committed; rerun this
after adding fixtures. Standard library only (no brotli/zstd modules), so
brotli bodies are used as captured and zstd seeds come from the Rust tests.
"""
import base64
import gzip
import hashlib
import json
import os
import shutil
import zlib

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CAPTURED = os.path.join(ROOT, "src/ingest/testdata/captured")
EVENTS = os.path.join(ROOT, "src/event/testdata")
OUT = os.path.join(ROOT, "fuzz/seeds")

# decode target: selector byte = outer encoding (low 3 bits) | inner << 3
# (inner 7 = none). Encodings: 0 identity, 1 gzip, 2 deflate, 3 br, 4 zstd.
NO_INNER = 7 << 3
ENC_BITS = {"identity": 0, "gzip": 1, "deflate": 2, "br": 3, "zstd": 4}

seeds = {t: [] for t in ["envelope", "decode", "store_body", "normalize", "search",
                          "fingerprint_rules", "ingest_all"]}


def add(target, data):
    if isinstance(data, str):
        data = data.encode()
    seeds[target].append(data)


def envelope_items(body):
    """(header, payload) pairs of an envelope, following Relay's framing."""
    lines = body.split(b"\n", 1)
    rest = lines[1] if len(lines) > 1 else b""
    items = []
    while rest.strip():
        header_line, _, rest = rest.partition(b"\n")
        header = json.loads(header_line)
        length = header.get("length")
        if length is None:
            payload, _, rest = rest.partition(b"\n")
        else:
            payload, rest = rest[:length], rest[length + 1:]
        items.append((header, payload))
    return items


for name in sorted(os.listdir(CAPTURED)):
    if not name.endswith(".body"):
        continue
    raw = open(os.path.join(CAPTURED, name), "rb").read()
    meta = json.load(open(os.path.join(CAPTURED, name[:-5] + ".json")))
    headers = {k.lower(): v for k, v in meta["headers"].items()}
    encoding = headers.get("content-encoding", "identity").strip().lower()
    add("ingest_all", raw)
    add("decode", bytes([ENC_BITS.get(encoding, 0) | NO_INNER]) + raw)
    plain = {
        "gzip": lambda b: gzip.decompress(b),
        "deflate": lambda b: zlib.decompress(b),
        "identity": lambda b: b,
    }.get(encoding)
    if plain is None:
        continue  # brotli: no stdlib decoder; the gzip twins carry the same events
    plain = plain(raw)
    if meta["path"].split("?")[0].endswith("/store/"):
        add("store_body", raw)
        add("store_body", base64.b64encode(raw))
        add("store_body", plain)
        add("normalize", plain.replace(b"NaN", b"null"))
        continue
    add("envelope", plain)
    add("ingest_all", plain)
    for header, payload in envelope_items(plain):
        if header.get("type") in ("event", "transaction"):
            add("normalize", payload)
    if encoding == "gzip":
        # Nested: gzip(deflate(x)) and a zstd-free identity pass-through.
        add("decode", bytes([ENC_BITS["gzip"] | ENC_BITS["deflate"] << 3])
            + gzip.compress(zlib.compress(plain)))
        add("decode", bytes([ENC_BITS["deflate"] | NO_INNER]) + zlib.compress(plain))
        add("decode", bytes([ENC_BITS["identity"] | NO_INNER]) + plain)

for name in sorted(os.listdir(EVENTS)):
    if name.endswith(".json"):
        add("normalize", open(os.path.join(EVENTS, name), "rb").read())

add("normalize", json.dumps({
    "csp-report": {"document-uri": "https://example.com/", "violated-directive": "script-src",
                   "blocked-uri": "https://evil.example/x.js"}}))
add("normalize", json.dumps({
    "event_id": "0123456789abcdef0123456789abcdef", "name": "n", "email": "a@b.c",
    "comments": "it broke"}))
add("normalize", json.dumps({
    "message": {"formatted": "x", "message": "%s and %d", "params": ["a", 1]},
    "request": {"url": "https://x/?password=1", "headers": [["Authorization", "Bearer t"]],
                "cookies": "sessionid=abc", "data": {"card": "4111 1111 1111 1111"}},
    "user": {"ip_address": "{{auto}}", "id": 1}, "tags": {"a": "b"},
    "breadcrumbs": {"values": [{"message": "m", "timestamp": 1.5e9}]},
    "fingerprint": ["{{ default }}", "x"], "threads": {"values": [{"crashed": True,
        "stacktrace": {"frames": [{"function": "f", "vars": {"token": "t"}}]}}]}}))

for q in [
    'is:unresolved level:error release:1.2 !browser:Firefox "bad thing"',
    "assigned:me has:user lastSeen:-24h firstSeen:-7d age:-2w",
    'env:prod environment:"staging eu" assigned:none is:ignored',
    "http://example.com/path?q=1 server:web-1 !level:info",
    '"unterminated quote is:resolved', "!!", ":", "a:b:c", "is:",
]:
    add("search", q)

for rules in [
    "error.type:DatabaseUnavailable -> system-down\n",
    'stack.function:"query_database" -> {{ default }}, {{ transaction }}\n',
    'type:"ConnectionError" value:"*timed out*" -> connection, timeout title="Timeout in {{ transaction }}"\n',
    '!app:no module:"my.app.*" family:other -> "my app"\n',
    'tags.server_name:"web-*" level:error -> web-errors\npath:**/vendor/** -> vendor\n',
    'message:"\\*literal star*" logger:db* sdk:sentry.python release:1.* -> odd\n',
    "# comment\n\nmodule:app.db function:connect -> x\nstack.abs_path:c:/srv/** -> y\n",
    "[!A-C]x -> a\ntype:[A-C]x? -> b\n",
]:
    add("fingerprint_rules", rules)

add("envelope", b'{}\n{"type":"attachment","length":0}\n\n')
add("envelope", b'{"event_id":"22d00b3fd1b14b5d8d2049d138cd8a9c","dsn":"https://abc:@h/42"}\n'
    b'{"type":"event","length":2}\n{}\n')
add("envelope", b'{}\n{"type":"session"}\n{"sid":"x"}\n{"type":"client_report","length":4}\nabcd')
add("store_body", b'{"a": NaN, "b": [-Infinity, "NaN\\""], "c": Infinity}')

if os.path.isdir(OUT):
    shutil.rmtree(OUT)
for target, items in seeds.items():
    os.makedirs(os.path.join(OUT, target))
    for data in items:
        name = hashlib.sha1(data).hexdigest()
        with open(os.path.join(OUT, target, name), "wb") as f:
            f.write(data)
    print(f"{target}: {len(set(items))} seeds")
