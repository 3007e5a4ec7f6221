//! Hostile ingest against the real `snag serve` binary: every attack class
//! gets a 4xx (or its connection is closed by a timeout), a legitimate
//! client keeps getting 200s meanwhile, and the process's peak resident
//! memory, read from /proc, stays bounded. The run prints a results table
//! (docs/security.md quotes it).

mod common;

use common::*;
use serde_json::{Value, json};
use sqlx::PgPool;
use std::fmt::Write as _;
use std::io::Write as _;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use uuid::Uuid;

/// Short timeouts so the slow-client cases finish in seconds.
const HEADER_TIMEOUT_SECS: u64 = 2;
const BODY_TIMEOUT_SECS: u64 = 2;
/// The memory budget for buffered bodies in this run.
const BODY_BUDGET_MIB: usize = 256;

struct Target {
    base: String,
    addr: String,
    project_id: i64,
    key: String,
    client: reqwest::Client,
}

impl Target {
    fn envelope_url(&self) -> String {
        format!("{}/api/{}/envelope/", self.base, self.project_id)
    }

    fn store_url(&self) -> String {
        format!("{}/api/{}/store/", self.base, self.project_id)
    }

    async fn post(&self, url: &str, body: Vec<u8>, encoding: Option<&str>) -> u16 {
        let mut request = self
            .client
            .post(url)
            .header("x-sentry-auth", auth_header(&self.key))
            .body(body);
        if let Some(e) = encoding {
            request = request.header("content-encoding", e);
        }
        match request.send().await {
            Ok(r) => {
                let status = r.status().as_u16();
                let _ = r.bytes().await;
                status
            }
            Err(e) => panic!("request to {url} failed without an answer: {e:?}"),
        }
    }

    async fn envelope(&self, body: Vec<u8>) -> u16 {
        self.post(&self.envelope_url(), body, None).await
    }

    /// A well-behaved SDK's request must keep succeeding quickly.
    async fn probe(&self, during: &str) -> Duration {
        let started = Instant::now();
        let id = Uuid::new_v4().simple().to_string();
        let status = tokio::time::timeout(
            Duration::from_secs(10),
            self.envelope(event_envelope(
                &id,
                &error_event("ProbeError", during, "probe"),
            )),
        )
        .await
        .unwrap_or_else(|_| panic!("probe timed out during {during}"));
        assert_eq!(status, 200, "probe during {during}");
        started.elapsed()
    }
}

/// What a raw connection saw.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Seen {
    Status(u16),
    /// Closed (or reset) by the server without a response.
    Closed,
    /// Still open when the client gave up.
    Open,
}

impl Seen {
    fn refused(self) -> bool {
        matches!(self, Seen::Status(400..=499) | Seen::Closed)
    }
}

/// Reads until the status line arrives, the server closes, or `wait` ends.
async fn read_status(stream: &mut TcpStream, wait: Duration) -> Seen {
    let mut got = Vec::new();
    let deadline = tokio::time::Instant::now() + wait;
    let mut buf = [0u8; 4096];
    loop {
        match tokio::time::timeout_at(deadline, stream.read(&mut buf)).await {
            Err(_) => return Seen::Open,
            Ok(Ok(0)) | Ok(Err(_)) => {
                return status_of(&got).map_or(Seen::Closed, Seen::Status);
            }
            Ok(Ok(n)) => {
                got.extend_from_slice(&buf[..n]);
                if let Some(status) = status_of(&got) {
                    return Seen::Status(status);
                }
            }
        }
    }
}

fn status_of(response: &[u8]) -> Option<u16> {
    let text = std::str::from_utf8(response.get(..12)?).ok()?;
    text.strip_prefix("HTTP/1.1 ")?.get(..3)?.parse().ok()
}

async fn raw(addr: &str, request: &[u8]) -> Seen {
    let mut stream = TcpStream::connect(addr).await.unwrap();
    // The server may answer (431) and close before it has read everything.
    if stream.write_all(request).await.is_err() {
        return read_status(&mut stream, Duration::from_secs(5)).await;
    }
    read_status(&mut stream, Duration::from_secs(10)).await
}

#[derive(Default)]
struct Table {
    rows: Vec<(String, usize, String)>,
}

impl Table {
    fn add(&mut self, class: &str, cases: usize, result: impl Into<String>) {
        self.rows.push((class.to_string(), cases, result.into()));
    }

    fn render(&self, peak_kib: u64, baseline_kib: u64) -> String {
        let mut out = String::from("\n| attack class | cases | result |\n|---|---:|---|\n");
        for (class, cases, result) in &self.rows {
            let _ = writeln!(out, "| {class} | {cases} | {result} |");
        }
        let _ = writeln!(
            out,
            "\npeak RSS of snag serve: {} MiB (after start-up: {} MiB)",
            peak_kib / 1024,
            baseline_kib / 1024
        );
        out
    }
}

fn tally(statuses: &[u16]) -> String {
    let mut counts = std::collections::BTreeMap::new();
    for s in statuses {
        *counts.entry(*s).or_insert(0usize) += 1;
    }
    counts
        .iter()
        .map(|(s, n)| format!("{n}× {s}"))
        .collect::<Vec<_>>()
        .join(", ")
}

fn event_item(id: &str, payload: &[u8]) -> Vec<u8> {
    envelope(Some(id), &[("event", payload.to_vec())])
}

fn new_id() -> String {
    Uuid::new_v4().simple().to_string()
}

/// Sends `bodies` to the envelope endpoint, 16 at a time.
async fn send_all(target: &Arc<Target>, bodies: Vec<Vec<u8>>) -> Vec<u16> {
    use futures_util::StreamExt as _;
    futures_util::stream::iter(bodies.into_iter().map(|b| {
        let t = target.clone();
        async move { t.envelope(b).await }
    }))
    .buffered(16)
    .collect()
    .await
}

/// A full event: every interface the dashboard renders has a value.
fn full_event() -> Value {
    let mut event = error_event("TypeError", "bad value", "handle");
    let extra = json!({
        "logger": "app.views", "transaction": "/checkout", "server_name": "web-1",
        "dist": "1", "environment": "production", "culprit": "app.views in handle",
        "timestamp": "2026-05-01T12:00:00Z", "fingerprint": ["{{ default }}"],
        "message": "hello", "logentry": {"message": "hi %s", "params": ["x"]},
        "request": {"url": "https://shop.example/checkout", "method": "POST",
                    "headers": [["User-Agent", "x"]], "cookies": "a=b", "data": {"k": "v"},
                    "query_string": "q=1", "env": {"REMOTE_ADDR": "192.0.2.1"}},
        "contexts": {"os": {"name": "Linux"}, "browser": {"name": "Firefox"},
                     "runtime": {"name": "CPython"}, "trace": {"trace_id": "0123456789abcdef0123456789abcdef"}},
        "breadcrumbs": {"values": [{"timestamp": 1.7e9, "message": "m", "category": "c",
                                     "data": {"a": 1}, "level": "info"}]},
        "sdk": {"name": "sentry.python", "version": "2.75.0", "integrations": ["x"],
                "packages": [{"name": "pypi:sentry-sdk", "version": "2.75.0"}]},
        "modules": {"django": "5.0"}, "extra": {"order": 42},
        "threads": {"values": [{"id": 1, "crashed": true, "stacktrace": {"frames": [{"function": "t"}]}}]},
    });
    for (k, v) in extra.as_object().unwrap() {
        event[k] = v.clone();
    }
    event["user"] = json!({"id": "42", "email": "a@example.com", "ip_address": "192.0.2.9",
                           "username": "ann", "geo": {"city": "Oslo"}});
    event
}

/// Every field (top-level and nested) that has a typed meaning.
const TYPED_PATHS: &[&str] = &[
    "event_id",
    "timestamp",
    "level",
    "platform",
    "logger",
    "transaction",
    "server_name",
    "release",
    "dist",
    "environment",
    "culprit",
    "message",
    "logentry",
    "logentry/message",
    "logentry/params",
    "exception",
    "exception/values",
    "exception/values/0",
    "exception/values/0/type",
    "exception/values/0/value",
    "exception/values/0/module",
    "exception/values/0/mechanism",
    "exception/values/0/mechanism/handled",
    "exception/values/0/stacktrace",
    "exception/values/0/stacktrace/frames",
    "exception/values/0/stacktrace/frames/1",
    "exception/values/0/stacktrace/frames/1/filename",
    "exception/values/0/stacktrace/frames/1/function",
    "exception/values/0/stacktrace/frames/1/lineno",
    "exception/values/0/stacktrace/frames/1/in_app",
    "exception/values/0/stacktrace/frames/1/vars",
    "exception/values/0/stacktrace/frames/1/pre_context",
    "exception/values/0/stacktrace/frames/1/context_line",
    "threads",
    "threads/values/0/crashed",
    "threads/values/0/stacktrace/frames",
    "breadcrumbs",
    "breadcrumbs/values",
    "breadcrumbs/values/0",
    "breadcrumbs/values/0/timestamp",
    "breadcrumbs/values/0/data",
    "breadcrumbs/values/0/level",
    "request",
    "request/url",
    "request/method",
    "request/headers",
    "request/cookies",
    "request/data",
    "request/query_string",
    "request/env",
    "user",
    "user/id",
    "user/email",
    "user/ip_address",
    "user/geo",
    "contexts",
    "contexts/os",
    "contexts/trace",
    "tags",
    "tags/server",
    "extra",
    "fingerprint",
    "sdk",
    "sdk/version",
    "sdk/packages",
    "modules",
];

fn wrong_values() -> Vec<Value> {
    vec![
        Value::Null,
        json!(true),
        json!(42),
        json!(-1.5e300),
        json!("text"),
        json!([]),
        json!({}),
        json!([[1, [2]], {"a": null}]),
        json!({"a": {"b": [1, "2", null]}}),
    ]
}

fn set_path(target: &mut Value, path: &str, value: Value) {
    let mut cur = target;
    let parts: Vec<&str> = path.split('/').collect();
    for (i, part) in parts.iter().enumerate() {
        let last = i == parts.len() - 1;
        let next = match cur {
            Value::Object(m) => {
                if last {
                    m.insert((*part).to_string(), value);
                    return;
                }
                m.entry((*part).to_string()).or_insert(json!({}))
            }
            Value::Array(a) => {
                let idx: usize = part.parse().unwrap();
                if idx >= a.len() {
                    return;
                }
                if last {
                    a[idx] = value;
                    return;
                }
                &mut a[idx]
            }
            _ => return,
        };
        cur = next;
    }
}

fn nested(open: &str, close: &str, depth: usize, core: &str) -> String {
    let mut s = open.repeat(depth);
    s.push_str(core);
    s.push_str(&close.repeat(depth));
    s
}

fn gzip_members(member_mib: usize, members: usize) -> Vec<u8> {
    let member = gzip(&vec![0u8; member_mib * 1024 * 1024]);
    member
        .iter()
        .copied()
        .cycle()
        .take(member.len() * members)
        .collect()
}

/// Trickles `request` one chunk per `gap`; returns what the connection saw
/// once the server reacted (or after `give_up`).
async fn trickle(
    addr: String,
    head: Vec<u8>,
    rest: Vec<u8>,
    gap: Duration,
    give_up: Duration,
) -> (Seen, Duration) {
    let started = Instant::now();
    let Ok(mut stream) = TcpStream::connect(&addr).await else {
        return (Seen::Closed, started.elapsed());
    };
    if stream.write_all(&head).await.is_err() {
        return (Seen::Closed, started.elapsed());
    }
    let mut buf = [0u8; 1024];
    let mut got = Vec::new();
    for byte in rest.iter().cycle() {
        if started.elapsed() > give_up {
            return (Seen::Open, started.elapsed());
        }
        // Anything the server sends (or a close) ends the attack.
        match tokio::time::timeout(gap, stream.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) => {
                return (
                    status_of(&got).map_or(Seen::Closed, Seen::Status),
                    started.elapsed(),
                );
            }
            Ok(Ok(n)) => {
                got.extend_from_slice(&buf[..n]);
                if let Some(s) = status_of(&got) {
                    return (Seen::Status(s), started.elapsed());
                }
            }
            Err(_) => {}
        }
        if stream.write_all(&[*byte]).await.is_err() {
            let seen = read_status(&mut stream, Duration::from_secs(1)).await;
            return (seen, started.elapsed());
        }
    }
    (Seen::Open, started.elapsed())
}

#[sqlx::test]
async fn hostile_ingest_is_refused_while_others_are_served(pool: PgPool) {
    let store = snag::store::Store::from_pool(pool.clone());
    let (project, key) = store
        .create_project("hostile", Some("python"))
        .await
        .unwrap();
    let budget = format!("{BODY_BUDGET_MIB}MiB");
    let snag = SnagProcess::spawn(
        &database_url_of(&pool),
        free_port(),
        &[
            (
                "SNAG_HEADER_READ_TIMEOUT_SECS",
                &HEADER_TIMEOUT_SECS.to_string(),
            ),
            (
                "SNAG_BODY_READ_TIMEOUT_SECS",
                &BODY_TIMEOUT_SECS.to_string(),
            ),
            ("SNAG_MAX_BUFFERED_BODIES", &budget),
            ("SNAG_DB_MAX_CONNECTIONS", "8"),
        ],
    )
    .await;
    let target = Arc::new(Target {
        addr: snag.base.trim_start_matches("http://").to_string(),
        base: snag.base.clone(),
        project_id: project.id,
        key: key.public_key.clone(),
        // Idle connections are dropped before the server's 2 s header
        // timeout closes them, or a reused one can race its close.
        client: reqwest::Client::builder()
            .timeout(Duration::from_secs(30))
            .pool_idle_timeout(Duration::from_millis(1000))
            .build()
            .unwrap(),
    });
    target.probe("start-up").await;
    let baseline_kib = snag.peak_rss_kib();
    let mut table = Table::default();
    let run_started = Instant::now();

    // Malformed JSON, in every place JSON is parsed.
    let broken: &[&str] = &[
        "{",
        "}",
        "{\"a\":}",
        "{\"a\" 1}",
        "[1,2",
        "{\"a\":1}}",
        "{\"a\":1,}",
        "{'a':1}",
        "{a:1}",
        "{\"a\":1 /* c */}",
        "{\"a\":\"\\x41\"}",
        "{\"a\":\"\\ud800\"}",
        "{\"a\":1e999999}",
        "{\"a\":01}",
        "{\"a\":tru}",
        "{\"a\":\"unterminated}",
        "\u{feff}{\"a\":",
        "{\"a\":[}]",
        "{\"a\":\"\t\"}",
        "{\"a\":-}",
    ];
    let mut bodies = Vec::new();
    for b in broken {
        bodies.push(event_item(&new_id(), b.as_bytes()));
        // As the envelope header and as the item header.
        bodies.push(format!("{b}\n{{\"type\":\"event\"}}\n{{}}\n").into_bytes());
        bodies.push(format!("{{}}\n{b}\n{{}}\n").into_bytes());
    }
    let mut statuses = send_all(&target, bodies).await;
    for b in broken {
        statuses.push(
            target
                .post(&target.store_url(), b.as_bytes().to_vec(), None)
                .await,
        );
    }
    assert!(
        statuses.iter().all(|s| (400..500).contains(s)),
        "{}",
        tally(&statuses)
    );
    table.add(
        "malformed JSON (event, envelope header, item header, store body)",
        statuses.len(),
        format!("all 4xx ({})", tally(&statuses)),
    );
    target.probe("malformed JSON").await;

    // Wrong types in every field: accepted leniently (the bad value is
    // dropped and noted, as Relay does) or refused, never a 5xx.
    let mut bodies = Vec::new();
    let mut wrong_ids = Vec::new();
    for path in TYPED_PATHS {
        for value in wrong_values() {
            let mut event = full_event();
            set_path(&mut event, path, value);
            let id = new_id();
            wrong_ids.push(id.clone());
            bodies.push(event_envelope(&id, &event));
        }
    }
    let statuses = send_all(&target, bodies).await;
    assert!(
        statuses.iter().all(|s| *s == 200 || (400..500).contains(s)),
        "{}",
        tally(&statuses)
    );
    let accepted = statuses.iter().filter(|s| **s == 200).count();
    assert!(
        accepted * 10 > statuses.len() * 9,
        "most wrong types are normalised: {}",
        tally(&statuses)
    );
    table.add(
        "wrong JSON types in every field (66 fields × 9 types)",
        statuses.len(),
        format!(
            "no 5xx: {}; every stored issue page renders",
            tally(&statuses)
        ),
    );

    // Deep nesting: serde's recursion limit refuses it before any
    // recursive code of ours runs.
    let deep_array = nested("[", "]", 10_000, "1");
    let deep_object = nested("{\"a\":", "}", 10_000, "1");
    let mut bodies = Vec::new();
    for deep in [&deep_array, &deep_object] {
        bodies.push(event_item(&new_id(), deep.as_bytes()));
        bodies.push(event_item(
            &new_id(),
            format!("{{\"extra\":{{\"x\":{deep}}}}}").as_bytes(),
        ));
        bodies.push(format!("{{\"x\":{deep}}}\n{{\"type\":\"event\"}}\n{{}}\n").into_bytes());
        bodies.push(format!("{{}}\n{{\"type\":\"event\",\"x\":{deep}}}\n{{}}\n").into_bytes());
    }
    let mut statuses = send_all(&target, bodies).await;
    for deep in [&deep_array, &deep_object] {
        let body = format!("{{\"extra\":{deep}}}").into_bytes();
        statuses.push(target.post(&target.store_url(), body.clone(), None).await);
        statuses.push(
            target
                .post(&target.store_url(), gzip(&body), Some("gzip"))
                .await,
        );
    }
    assert!(statuses.iter().all(|s| *s == 400), "{}", tally(&statuses));
    table.add(
        "10,000-level nesting (arrays, objects; event, headers, store)",
        statuses.len(),
        format!("all 400 ({})", tally(&statuses)),
    );
    target.probe("deep nesting").await;

    // 1 MB strings in every kind of place: stored truncated, or 413.
    let mega = "x".repeat(1_000_000);
    let mut big_ids = Vec::new();
    let mut bodies = Vec::new();
    for path in [
        "message",
        "exception/values/0/value",
        "exception/values/0/type",
        "exception/values/0/stacktrace/frames/1/function",
        "exception/values/0/stacktrace/frames/1/context_line",
        "exception/values/0/stacktrace/frames/1/vars/count",
        "breadcrumbs/values/0/message",
        "tags/server",
        "extra/blob",
        "request/url",
        "request/data",
        "user/email",
        "transaction",
        "release",
        "environment",
    ] {
        let mut event = full_event();
        set_path(&mut event, path, json!(mega));
        let id = new_id();
        big_ids.push((path.to_string(), id.clone()));
        bodies.push(event_envelope(&id, &event));
    }
    let mut key_event = full_event();
    key_event["extra"] = json!({ mega.clone(): 1 });
    let id = new_id();
    big_ids.push(("an extra key".into(), id.clone()));
    bodies.push(event_envelope(&id, &key_event));
    let id = new_id();
    big_ids.push(("a top-level key".into(), id.clone()));
    bodies.push(event_item(
        &id,
        format!("{{\"{mega}\":1,\"message\":\"m\"}}").as_bytes(),
    ));
    bodies.push(format!("{{\"dsn\":\"{mega}\"}}\n{{\"type\":\"event\"}}\n{{}}\n").into_bytes());
    bodies.push(
        format!("{{}}\n{{\"type\":\"attachment\",\"filename\":\"{mega}\",\"length\":1}}\nx\n")
            .into_bytes(),
    );
    let statuses = send_all(&target, bodies).await;
    assert!(
        statuses.iter().all(|s| matches!(s, 200 | 400..=499)),
        "{}",
        tally(&statuses)
    );
    let mut largest_stored = 0;
    for (path, id) in &big_ids {
        if let Some(row) = store.event(project.id, id.parse().unwrap()).await.unwrap() {
            let size = serde_json::to_vec(&row.data).unwrap().len();
            assert!(size < 256 * 1024, "1 MB in {path}: stored {size} bytes");
            largest_stored = largest_stored.max(size);
        }
    }
    table.add(
        "1 MB strings (15 fields, an object key, envelope and item headers)",
        statuses.len(),
        format!(
            "{}; largest stored event {} KiB",
            tally(&statuses),
            largest_stored / 1024
        ),
    );
    target.probe("1 MB strings").await;

    // 100,000 frames, breadcrumbs, exceptions, tags: bounded per-event work.
    let many = |n: usize, item: &str| format!("[{}]", vec![item; n].join(","));
    let cases: Vec<(&str, String)> = vec![
        (
            "frames",
            format!(
                "{{\"exception\":{{\"values\":[{{\"type\":\"E\",\"stacktrace\":{{\"frames\":{}}}}}]}}}}",
                many(100_000, "{}")
            ),
        ),
        (
            "thread frames",
            format!(
                "{{\"threads\":{{\"values\":[{{\"crashed\":true,\"stacktrace\":{{\"frames\":{}}}}}]}}}}",
                many(100_000, "{}")
            ),
        ),
        (
            "breadcrumbs",
            format!(
                "{{\"message\":\"m\",\"breadcrumbs\":{}}}",
                many(100_000, "{}")
            ),
        ),
        (
            "exceptions",
            format!("{{\"exception\":{{\"values\":{}}}}}", many(100_000, "{}")),
        ),
        (
            "tags",
            format!(
                "{{\"message\":\"m\",\"tags\":{}}}",
                many(90_000, "[\"k\",\"v\"]")
            ),
        ),
        (
            "fingerprint parts",
            format!(
                "{{\"message\":\"m\",\"fingerprint\":{}}}",
                many(100_000, "\"\"")
            ),
        ),
        (
            "frame vars",
            format!(
                "{{\"exception\":{{\"values\":[{{\"type\":\"E\",\"stacktrace\":{{\"frames\":[{{\"vars\":{}}}]}}}}]}}}}",
                many(100_000, "0")
            ),
        ),
    ];
    let mut many_ids = Vec::new();
    let mut slowest = Duration::ZERO;
    let mut statuses = Vec::new();
    for (_, payload) in &cases {
        let id = new_id();
        many_ids.push(id.clone());
        let started = Instant::now();
        statuses.push(target.envelope(event_item(&id, payload.as_bytes())).await);
        slowest = slowest.max(started.elapsed());
    }
    assert!(
        statuses.iter().all(|s| matches!(s, 200 | 400..=499)),
        "{}",
        tally(&statuses)
    );
    assert!(
        slowest < Duration::from_secs(10),
        "slowest answer {slowest:?}"
    );
    for id in &many_ids {
        if let Some(row) = store.event(project.id, id.parse().unwrap()).await.unwrap() {
            let frames = row
                .data
                .pointer("/exception/values/0/stacktrace/frames")
                .and_then(Value::as_array)
                .map_or(0, Vec::len);
            assert!(frames <= 250, "{frames} frames stored");
            let crumbs = row
                .data
                .pointer("/breadcrumbs/values")
                .and_then(Value::as_array)
                .map_or(0, Vec::len);
            assert!(crumbs <= 100, "{crumbs} breadcrumbs stored");
            let size = serde_json::to_vec(&row.data).unwrap().len();
            assert!(size < 2 * 1024 * 1024, "stored event of {size} bytes");
        }
    }
    table.add(
        "100,000 frames / thread frames / breadcrumbs / exceptions / fingerprint parts / vars, 90,000 tags",
        statuses.len(),
        format!("{}; slowest answer {} ms; stored ≤ 250 frames, ≤ 100 breadcrumbs", tally(&statuses), slowest.as_millis()),
    );
    target.probe("huge arrays").await;

    // Invalid UTF-8 and NUL bytes.
    let mut bodies = Vec::new();
    for bad in [
        &b"\xff"[..],
        b"\xc3\x28",
        b"\xed\xa0\x80",
        b"\xf4\x90\x80\x80",
        b"\xc0\xaf",
        b"\x00",
    ] {
        let mut payload = b"{\"message\":\"".to_vec();
        payload.extend_from_slice(bad);
        payload.extend_from_slice(b"\"}");
        bodies.push(event_item(&new_id(), &payload));
        let mut header = b"{\"dsn\":\"".to_vec();
        header.extend_from_slice(bad);
        header.extend_from_slice(b"\"}\n{\"type\":\"event\"}\n{}\n");
        bodies.push(header);
        let mut item = b"{}\n{\"type\":\"ev".to_vec();
        item.extend_from_slice(bad);
        item.extend_from_slice(b"ent\"}\n{}\n");
        bodies.push(item);
    }
    let mut statuses = send_all(&target, bodies).await;
    for bad in [&b"\xff"[..], b"\xc3\x28", b"\x00"] {
        let mut payload = b"{\"message\":\"".to_vec();
        payload.extend_from_slice(bad);
        payload.extend_from_slice(b"\"}");
        statuses.push(target.post(&target.store_url(), payload, None).await);
    }
    // In the auth header, the encoding header and the path.
    for request in [
        format!("POST /api/{}/envelope/ HTTP/1.1\r\nHost: x\r\nX-Sentry-Auth: Sentry sentry_key=\u{ff}\u{fe}\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{{}}", project.id).into_bytes(),
        [format!("POST /api/{}/envelope/ HTTP/1.1\r\nHost: x\r\nX-Sentry-Auth: {}\r\nContent-Encoding: ", project.id, auth_header(&key.public_key)).into_bytes(), b"gz\xffip\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{}".to_vec()].concat(),
        b"POST /api/%ff%fe/envelope/ HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{}".to_vec(),
        b"POST /api/1/envelope/\xff HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{}".to_vec(),
    ] {
        match raw(&target.addr, &request).await {
            Seen::Status(s) => statuses.push(s),
            other => panic!("invalid UTF-8 in the request head: {other:?}"),
        }
    }
    assert!(
        statuses.iter().all(|s| (400..500).contains(s)),
        "{}",
        tally(&statuses)
    );
    let nul_id = new_id();
    let nul = target
        .envelope(event_item(
            &nul_id,
            br#"{"message":"a\u0000b","extra":{"k\u0000":"\u0000"}}"#,
        ))
        .await;
    assert_eq!(nul, 200, "escaped NUL is data, stored with U+FFFD");
    table.add(
        "invalid UTF-8 and raw NUL bytes (payload, headers, path, store)",
        statuses.len() + 1,
        format!("all 4xx ({}); escaped \\u0000 stored", tally(&statuses)),
    );
    target.probe("invalid UTF-8").await;

    // Compression bombs, several at once: each decoder stops at its limit
    // and all of them together stay within the body budget.
    let gzip_bomb = gzip_members(1, 300);
    let nested_bomb = gzip(&gzip_bomb);
    let zstd_bomb = zstd::encode_all(vec![0u8; 300 * 1024 * 1024].as_slice(), 1).unwrap();
    let deflate_bomb = {
        let mut e = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::fast());
        e.write_all(&vec![0u8; 300 * 1024 * 1024]).unwrap();
        e.finish().unwrap()
    };
    let br_bomb = {
        let mut out = Vec::new();
        {
            let mut w = brotli::CompressorWriter::new(&mut out, 4096, 1, 22);
            w.write_all(&vec![0u8; 32 * 1024 * 1024]).unwrap();
        }
        out
    };
    let wire: usize =
        gzip_bomb.len() + nested_bomb.len() + zstd_bomb.len() + deflate_bomb.len() + br_bomb.len();
    let mut sends = Vec::new();
    for _ in 0..3 {
        for (url, body, encoding) in [
            (target.envelope_url(), gzip_bomb.clone(), "gzip"),
            (target.envelope_url(), nested_bomb.clone(), "gzip, gzip"),
            (target.envelope_url(), zstd_bomb.clone(), "zstd"),
            (target.envelope_url(), deflate_bomb.clone(), "deflate"),
            (target.store_url(), br_bomb.clone(), "br"),
        ] {
            let t = target.clone();
            sends.push(tokio::spawn(async move {
                t.post(&url, body, Some(encoding)).await
            }));
        }
    }
    let probe_during = target.probe("compression bombs").await;
    let mut statuses = Vec::new();
    for s in sends {
        statuses.push(s.await.unwrap());
    }
    drop((gzip_bomb, nested_bomb, zstd_bomb, deflate_bomb, br_bomb));
    assert!(
        statuses.iter().all(|s| matches!(s, 413 | 503)),
        "{}",
        tally(&statuses)
    );
    assert!(statuses.contains(&413));
    let bomb_peak = snag.peak_rss_kib();
    table.add(
        "compression bombs: gzip (multi-member), gzip inside gzip, zstd, deflate (300 MiB each), br; 3 of each at once",
        statuses.len(),
        format!("{} ({} MiB on the wire in all); probe meanwhile {} ms", tally(&statuses), wire / 1024 / 1024, probe_during.as_millis()),
    );

    // Slowloris, headers: a byte every 500 ms never completes a head.
    let head_attack = (0..200).map(|_| {
        tokio::spawn(trickle(
            target.addr.clone(),
            b"POST /api/1/envelope/ HTTP/1.1\r\nHost: x\r\n".to_vec(),
            b"X-Padding: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa".to_vec(),
            Duration::from_millis(500),
            Duration::from_secs(HEADER_TIMEOUT_SECS + 8),
        ))
    });
    let head_attack: Vec<_> = head_attack.collect();
    tokio::time::sleep(Duration::from_millis(500)).await;
    let probe_during = target.probe("slowloris headers").await;
    let mut slowest = Duration::ZERO;
    for t in head_attack {
        let (seen, took) = t.await.unwrap();
        assert!(seen.refused(), "trickled head: {seen:?} after {took:?}");
        slowest = slowest.max(took);
    }
    assert!(
        slowest < Duration::from_secs(HEADER_TIMEOUT_SECS + 4),
        "{slowest:?}"
    );
    table.add(
        "slowloris: headers trickled a byte per 500 ms (200 connections)",
        200,
        format!("all closed by the {HEADER_TIMEOUT_SECS} s header timeout (last after {} ms); probe meanwhile {} ms", slowest.as_millis(), probe_during.as_millis()),
    );

    // Slowloris, bodies: complete headers, then a byte every 300 ms.
    let body_attack: Vec<_> = (0..200)
        .map(|i| {
            let path = if i % 4 == 0 { "/login".to_string() } else { format!("/api/{}/envelope/", project.id) };
            let head = format!(
                "POST {path} HTTP/1.1\r\nHost: x\r\nX-Sentry-Auth: {}\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: 100000\r\n\r\n",
                auth_header(&key.public_key)
            );
            tokio::spawn(trickle(
                target.addr.clone(),
                head.into_bytes(),
                b"{\"message\":\"slow".to_vec(),
                Duration::from_millis(300),
                Duration::from_secs(BODY_TIMEOUT_SECS + 8),
            ))
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(500)).await;
    let probe_during = target.probe("slowloris bodies").await;
    let mut slowest = Duration::ZERO;
    let mut seen_all = Vec::new();
    for t in body_attack {
        let (seen, took) = t.await.unwrap();
        assert!(seen.refused(), "trickled body: {seen:?} after {took:?}");
        slowest = slowest.max(took);
        seen_all.push(match seen {
            Seen::Status(s) => s,
            _ => 0,
        });
    }
    assert!(
        slowest < Duration::from_secs(BODY_TIMEOUT_SECS + 4),
        "{slowest:?}"
    );
    assert!(
        seen_all.iter().filter(|s| **s == 408).count() >= 150,
        "{}",
        tally(&seen_all)
    );
    table.add(
        "slowloris: bodies trickled a byte per 300 ms (150 ingest, 50 login; 200 connections)",
        200,
        format!(
            "{} (0 = closed) within {} ms; probe meanwhile {} ms",
            tally(&seen_all),
            slowest.as_millis(),
            probe_during.as_millis()
        ),
    );

    // Huge headers.
    let big = "a".repeat(1024 * 1024);
    let many_headers: String = (0..500).map(|i| format!("X-H{i}: v\r\n")).collect();
    let mut statuses = Vec::new();
    for request in [
        format!(
            "POST /api/1/envelope/ HTTP/1.1\r\nHost: x\r\nX-Big: {big}\r\nContent-Length: 0\r\n\r\n"
        ),
        format!(
            "POST /api/1/envelope/ HTTP/1.1\r\nHost: x\r\nX-Sentry-Auth: Sentry sentry_key={big}\r\nContent-Length: 0\r\n\r\n"
        ),
        format!(
            "POST /api/1/envelope/ HTTP/1.1\r\nHost: x\r\n{many_headers}Content-Length: 0\r\n\r\n"
        ),
        format!("GET /api/1/store/?sentry_key=k&sentry_data={big} HTTP/1.1\r\nHost: x\r\n\r\n"),
        format!("GET /projects HTTP/1.1\r\nHost: x\r\nCookie: snag_session={big}\r\n\r\n"),
    ] {
        let seen = raw(&target.addr, request.as_bytes()).await;
        assert!(seen.refused(), "{seen:?}");
        statuses.push(match seen {
            Seen::Status(s) => s,
            _ => 0,
        });
    }
    table.add(
        "huge headers: 1 MiB header, 1 MiB auth, 500 headers, 1 MiB URL, 1 MiB cookie",
        statuses.len(),
        format!("all refused ({})", tally(&statuses)),
    );
    target.probe("huge headers").await;

    // Thousands of concurrent connections: idle ones are closed by the
    // header timeout, busy ones each get an answer.
    let mut idle = Vec::new();
    for _ in 0..3000 {
        idle.push(TcpStream::connect(&target.addr).await.unwrap());
    }
    let probe_idle = target.probe("3000 idle connections").await;
    let event = error_event("ConcurrentError", "many at once", "burst");
    // One client: it opens a connection per concurrent request.
    let burst_client = reqwest::Client::builder()
        .pool_max_idle_per_host(0)
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap();
    let burst = (0..1000).map(|_| {
        let request = burst_client
            .post(target.envelope_url())
            .header("x-sentry-auth", auth_header(&target.key))
            .body(event_envelope(&new_id(), &event));
        tokio::spawn(async move {
            match request.send().await {
                Ok(r) => r.status().as_u16(),
                Err(e) => {
                    eprintln!("burst: {e:?}");
                    0
                }
            }
        })
    });
    let burst: Vec<_> = burst.collect();
    let mut statuses = Vec::new();
    for b in burst {
        statuses.push(b.await.unwrap());
    }
    assert!(
        statuses.iter().all(|s| matches!(s, 200 | 503)),
        "{}",
        tally(&statuses)
    );
    let mut closed = 0;
    for mut conn in idle {
        if read_status(&mut conn, Duration::from_secs(HEADER_TIMEOUT_SECS + 3)).await
            == Seen::Closed
        {
            closed += 1;
        }
    }
    assert_eq!(closed, 3000, "idle connections outlived the header timeout");
    table.add(
        "3,000 idle connections + 1,000 concurrent event posts",
        4000,
        format!(
            "idle: all 3000 closed by the header timeout; posts: {}; probe meanwhile {} ms",
            tally(&statuses),
            probe_idle.as_millis()
        ),
    );
    target.probe("after the connection flood").await;

    // The dashboard renders every issue the hostile events created.
    let hash = snag::web::auth::hash_password("pw-123456789").unwrap();
    store
        .create_user("admin@example.com", &hash, true)
        .await
        .unwrap();
    let web = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let login = web
        .post(format!("{}/login", snag.base))
        .form(&[("email", "admin@example.com"), ("password", "pw-123456789")])
        .send()
        .await
        .unwrap();
    assert_eq!(login.status(), 303);
    let cookie = login.headers()["set-cookie"]
        .to_str()
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_string();
    let issues: Vec<i64> = sqlx::query_scalar("SELECT id FROM issue WHERE project_id = $1")
        .bind(project.id)
        .fetch_all(&pool)
        .await
        .unwrap();
    for issue in &issues {
        let r = web
            .get(format!("{}/issues/{issue}", snag.base))
            .header("cookie", &cookie)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200, "issue {issue} page");
    }
    let r = web
        .get(format!("{}/projects/{}/issues", snag.base, project.id))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);

    let peak_kib = snag.peak_rss_kib();
    let log = std::fs::read_to_string(&snag.log_path).unwrap_or_default();
    assert!(!log.contains("panicked"), "the server panicked: {log}");
    eprintln!("{}", table.render(peak_kib, baseline_kib));
    eprintln!(
        "hostile run: {:?}; {} issue pages rendered; peak RSS after the bombs {} MiB",
        run_started.elapsed(),
        issues.len(),
        bomb_peak / 1024
    );
    // Start-up plus the body budget plus per-connection buffers; without
    // the budget the concurrent bombs alone would need over 3 GiB.
    assert!(
        peak_kib < (BODY_BUDGET_MIB as u64 + 512) * 1024,
        "peak RSS {peak_kib} KiB"
    );
}

/// Past `SNAG_MAX_CONNECTIONS`, a connection gets an immediate 503 and
/// is closed; once the idle ones time out, clients are served again.
#[sqlx::test]
async fn connections_over_the_cap_get_503_until_slots_free(pool: PgPool) {
    let store = snag::store::Store::from_pool(pool.clone());
    let (project, key) = store.create_project("cap", Some("python")).await.unwrap();
    let snag = SnagProcess::spawn(
        &database_url_of(&pool),
        free_port(),
        &[
            ("SNAG_HEADER_READ_TIMEOUT_SECS", "2"),
            ("SNAG_MAX_CONNECTIONS", "50"),
        ],
    )
    .await;
    let addr = snag.base.trim_start_matches("http://").to_string();
    let mut idle = Vec::new();
    for _ in 0..50 {
        idle.push(TcpStream::connect(&addr).await.unwrap());
    }
    // Let the server accept them all.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let mut refused = 0;
    for _ in 0..20 {
        let seen = raw(
            &addr,
            b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
        )
        .await;
        assert_eq!(seen, Seen::Status(503));
        refused += 1;
    }
    let started = Instant::now();
    let target = Target {
        base: snag.base.clone(),
        addr: addr.clone(),
        project_id: project.id,
        key: key.public_key,
        client: reqwest::Client::new(),
    };
    loop {
        let id = new_id();
        let status = target
            .envelope(event_envelope(&id, &error_event("CapError", "x", "f")))
            .await;
        if status == 200 {
            break;
        }
        assert_eq!(status, 503);
        assert!(
            started.elapsed() < Duration::from_secs(6),
            "slots never freed"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    eprintln!(
        "cap: 50 idle connections held every slot; {refused} extra connections got 503; served again after {:?}",
        started.elapsed()
    );
    assert!(
        started.elapsed() >= Duration::from_secs(1),
        "the cap did not hold"
    );
    drop(idle);
}
