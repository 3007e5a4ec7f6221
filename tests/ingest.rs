//! Ingest over HTTP: every endpoint, path form, encoding, auth form, limit
//! and error code an SDK can meet (protocol reference §1–9, checklist §11).

mod common;

use base64::Engine as _;
use common::*;
use serde_json::{Value, json};
use sqlx::PgPool;
use std::io::Write;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use uuid::Uuid;

fn id(n: u32) -> String {
    format!("{n:08x}00000000000000000000abcd")
}

fn ev_envelope(n: u32) -> Vec<u8> {
    event_envelope(
        &id(n),
        &error_event("KeyError", &format!("'k{n}'"), "lookup"),
    )
}

async fn stored(pool: &PgPool, event_id: &str) -> bool {
    sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM event WHERE event_id = $1)")
        .bind(Uuid::parse_str(event_id).unwrap())
        .fetch_one(pool)
        .await
        .unwrap()
}

async fn count(pool: &PgPool, sql: &str) -> i64 {
    sqlx::query_scalar(sqlx::AssertSqlSafe(sql.to_string()))
        .fetch_one(pool)
        .await
        .unwrap()
}

/// Asserts Relay's error shape and that `Retry-After` only ever comes with 429.
async fn expect_error(response: reqwest::Response, status: u16) -> Value {
    assert_eq!(response.status(), status);
    assert!(
        response.headers().get("retry-after").is_none(),
        "Retry-After on a {status}"
    );
    let body: Value = response.json().await.unwrap();
    assert!(body["detail"].is_string(), "no detail in {body}");
    body
}

fn zlib(data: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
    e.write_all(data).unwrap();
    e.finish().unwrap()
}

fn raw_deflate(data: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::default());
    e.write_all(data).unwrap();
    e.finish().unwrap()
}

fn brotli_compress(data: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    {
        let mut w = brotli::CompressorWriter::new(&mut out, 4096, 4, 22);
        w.write_all(data).unwrap();
    }
    out
}

/// One raw HTTP/1.1 exchange; returns (status, head, body).
async fn raw_http(addr: std::net::SocketAddr, request: &[u8]) -> (u16, String, Vec<u8>) {
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    stream.write_all(request).await.unwrap();
    let mut response = Vec::new();
    stream.read_to_end(&mut response).await.unwrap();
    let split = response
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("response head");
    let head = String::from_utf8_lossy(&response[..split]).into_owned();
    let status = head[9..12].parse().unwrap();
    (status, head, response[split + 4..].to_vec())
}

#[sqlx::test]
async fn envelope_is_accepted_under_every_path_form(pool: PgPool) {
    let app = start(pool.clone()).await;
    let p = app.project("paths").await;
    let paths = [
        format!("/api/{}/envelope/", p.id),
        format!("/api/{}/envelope", p.id),
        format!("/api//{}//envelope/", p.id),
        format!("/sentry/sub/api/{}/envelope/", p.id),
    ];
    for (n, path) in paths.iter().enumerate() {
        let r = app
            .client
            .post(app.url(path))
            .header("x-sentry-auth", auth_header(&p.key))
            .body(ev_envelope(n as u32))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200, "{path}");
        assert_eq!(
            r.json::<Value>().await.unwrap(),
            json!({"id": id(n as u32)})
        );
        assert!(stored(&pool, &id(n as u32)).await, "{path}");
    }
    // A leading `//` cannot go through reqwest's URL parser: send it raw.
    let body = ev_envelope(9);
    let request = [
        format!(
            "POST //api/{}/envelope/ HTTP/1.1\r\nHost: x\r\nX-Sentry-Auth: {}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
            p.id,
            auth_header(&p.key),
            body.len()
        )
        .into_bytes(),
        body,
    ]
    .concat();
    let (status, _, _) = raw_http(app.server.addr, &request).await;
    assert_eq!(status, 200);
    assert!(stored(&pool, &id(9)).await);

    // Header-only envelope: nothing to store, still 200 with `{}`.
    let r = app.post_envelope(&p, b"{}\n".to_vec()).await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.json::<Value>().await.unwrap(), json!({}));
    // JS-style: no `length`, no trailing newline, dashed event id.
    let dashed = "6f1d0c34-4b5e-4a8e-9d7f-0123456789ab";
    let js = format!(
        "{{\"event_id\":\"{dashed}\",\"sent_at\":\"2025-07-31T23:05:37.0926585+00:00\"}}\n{{\"type\":\"event\"}}\n{}",
        serde_json::to_string(&error_event("TypeError", "x is undefined", "onClick")).unwrap()
    );
    let r = app.post_envelope(&p, js.into_bytes()).await;
    assert_eq!(r.status(), 200);
    assert_eq!(
        r.json::<Value>().await.unwrap()["id"],
        dashed.replace('-', "")
    );
    assert!(stored(&pool, dashed).await);
}

#[sqlx::test]
async fn every_content_encoding_is_decoded(pool: PgPool) {
    let app = start(pool.clone()).await;
    let p = app.project("encodings").await;
    type Encoder = fn(&[u8]) -> Vec<u8>;
    let cases: [(&str, Encoder); 11] = [
        ("gzip", gzip),
        ("x-gzip", gzip),
        ("GZip", gzip),
        ("deflate", zlib),
        ("deflate", raw_deflate),
        ("br", brotli_compress),
        ("zstd", |d| zstd::encode_all(d, 3).unwrap()),
        ("identity", |d| d.to_vec()),
        ("", |d| d.to_vec()),
        ("UTF-8", |d| d.to_vec()),
        ("gzip, br", |d| brotli_compress(&gzip(d))),
    ];
    for (n, (encoding, encode)) in cases.iter().enumerate() {
        let n = 100 + n as u32;
        let r = app
            .client
            .post(app.url(&format!("/api/{}/envelope/", p.id)))
            .header("x-sentry-auth", auth_header(&p.key))
            .header("content-type", "application/x-sentry-envelope")
            .header("content-encoding", *encoding)
            .body(encode(&ev_envelope(n)))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200, "content-encoding {encoding:?}");
        assert!(stored(&pool, &id(n)).await, "content-encoding {encoding:?}");
    }
    let r = app
        .client
        .post(app.url(&format!("/api/{}/envelope/", p.id)))
        .header("x-sentry-auth", auth_header(&p.key))
        .header("content-encoding", "compress")
        .body(ev_envelope(1))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 415);
    assert!(r.headers().get("retry-after").is_none());
    let r = app
        .client
        .post(app.url(&format!("/api/{}/envelope/", p.id)))
        .header("x-sentry-auth", auth_header(&p.key))
        .header("content-encoding", "gzip")
        .body(b"not gzip at all".to_vec())
        .send()
        .await
        .unwrap();
    expect_error(r, 400).await;
    assert!(!stored(&pool, &id(1)).await);
}

#[sqlx::test]
async fn store_accepts_json_raven_bodies_and_nan(pool: PgPool) {
    let app = start(pool.clone()).await;
    let p = app.project("raven").await;
    let raven_auth = format!(
        "Sentry sentry_timestamp=1610999999.123456, sentry_client=raven-python/6.10.0, sentry_version=6, sentry_key={}, sentry_secret=ignored",
        p.key
    );
    let event = |n: u32| {
        let mut e = error_event("ValueError", &format!("bad {n}"), "parse");
        e["event_id"] = json!(id(n));
        e["level"] = json!(40);
        serde_json::to_vec(&e).unwrap()
    };
    let b64 = |d: &[u8]| {
        base64::engine::general_purpose::STANDARD
            .encode(d)
            .into_bytes()
    };
    let bodies: Vec<(Option<&str>, Vec<u8>)> = vec![
        (None, event(200)),
        // raven 6.10: zlib with `Content-Encoding: deflate`.
        (Some("deflate"), zlib(&event(201))),
        // raven < 5.6: base64(zlib(json)) and no header.
        (None, b64(&zlib(&event(202)))),
        (None, b64(&event(203))),
        // zlib without any header.
        (None, zlib(&event(204))),
    ];
    let url = app.url(&format!("/api/{}/store/", p.id));
    for (n, (encoding, body)) in bodies.into_iter().enumerate() {
        let mut req = app
            .client
            .post(&url)
            .header("x-sentry-auth", &raven_auth)
            .header("user-agent", "raven-python/6.10.0")
            .header("content-type", "application/octet-stream");
        if let Some(e) = encoding {
            req = req.header("content-encoding", e);
        }
        let r = req.body(body).send().await.unwrap();
        let n = 200 + n as u32;
        assert_eq!(r.status(), 200, "store body {n}");
        assert_eq!(r.json::<Value>().await.unwrap(), json!({"id": id(n)}));
        assert!(stored(&pool, &id(n)).await);
    }
    let level: String = sqlx::query_scalar("SELECT level FROM event WHERE event_id = $1")
        .bind(Uuid::parse_str(&id(201)).unwrap())
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(level, "error", "raven's integer level 40");

    // Python's json.dumps writes bare NaN / Infinity.
    let nan = format!(
        r#"{{"event_id":"{}","message":"ratio","extra":{{"ratio":NaN,"max":Infinity,"min":-Infinity,"text":"NaN stays"}}}}"#,
        id(210)
    );
    let r = app
        .client
        .post(&url)
        .header("x-sentry-auth", &raven_auth)
        .header("content-encoding", "deflate")
        .body(zlib(nan.as_bytes()))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let data = stored_event(&pool, Uuid::parse_str(&id(210)).unwrap()).await;
    assert_eq!(data["extra"]["ratio"], Value::Null);
    assert_eq!(data["extra"]["text"], "NaN stays");

    // An envelope posted to /store/ with the envelope content type.
    let r = app
        .client
        .post(&url)
        .header("x-sentry-auth", auth_header(&p.key))
        .header("content-type", "application/x-sentry-envelope")
        .body(ev_envelope(211))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert!(stored(&pool, &id(211)).await);

    // Invalid JSON is a 400 with Relay's detail, never a 500.
    let r = app
        .client
        .post(&url)
        .header("x-sentry-auth", auth_header(&p.key))
        .body(b"{\"event_id\": ".to_vec())
        .send()
        .await
        .unwrap();
    let body = expect_error(r, 400).await;
    assert!(
        body["detail"]
            .as_str()
            .unwrap()
            .starts_with("invalid JSON data"),
        "{body}"
    );
    let r = app
        .client
        .post(&url)
        .header("x-sentry-auth", auth_header(&p.key))
        .body(Vec::new())
        .send()
        .await
        .unwrap();
    let body = expect_error(r, 400).await;
    assert_eq!(body["detail"], "empty request body");
}

#[sqlx::test]
async fn store_get_answers_a_gif(pool: PgPool) {
    let app = start(pool.clone()).await;
    let p = app.project("beacon").await;
    let event = json!({"event_id": id(300), "message": "from an image beacon", "level": "warning"});
    let query: String = form_urlencoded::Serializer::new(String::new())
        .append_pair("sentry_version", "7")
        .append_pair("sentry_key", &p.key)
        .append_pair("sentry_data", &event.to_string())
        .finish();
    let r = app
        .client
        .get(app.url(&format!("/api/{}/store/?{query}", p.id)))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["content-type"], "image/gif");
    assert!(r.bytes().await.unwrap().starts_with(b"GIF89a"));
    assert!(stored(&pool, &id(300)).await);
}

#[sqlx::test]
async fn csp_report_becomes_an_event(pool: PgPool) {
    let app = start(pool.clone()).await;
    let p = app.project("csp").await;
    let report = json!({"csp-report": {
        "document-uri": "https://shop.example/checkout",
        "referrer": "",
        "violated-directive": "script-src-elem",
        "effective-directive": "script-src-elem",
        "original-policy": "default-src 'self'; report-uri /api/1/security/",
        "blocked-uri": "https://evil.example/x.js",
        "status-code": 200
    }});
    let url = app.url(&format!(
        "/api/{}/security/?sentry_key={}&sentry_release=web@2&sentry_environment=edge",
        p.id, p.key
    ));
    let r = app
        .client
        .post(&url)
        .header("content-type", "application/csp-report")
        .body(report.to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let (event_id, title, release, environment): (Uuid, String, Option<String>, Option<String>) =
        sqlx::query_as("SELECT event_id, title, release, environment FROM event")
            .fetch_one(&pool)
            .await
            .unwrap();
    let data = stored_event(&pool, event_id).await;
    assert!(title.contains("evil.example"), "{title}");
    // Browsers cannot set headers on report POSTs, so Relay reads these from the query.
    assert_eq!(release.as_deref(), Some("web@2"));
    assert_eq!(environment.as_deref(), Some("edge"));
    assert!(data.to_string().contains("script-src"), "{data}");
    assert_eq!(count(&pool, "SELECT count(*) FROM issue").await, 1);

    let r = app
        .client
        .post(&url)
        .header("content-type", "text/html")
        .body(report.to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 415);
    assert_eq!(count(&pool, "SELECT count(*) FROM event").await, 1);
}

#[sqlx::test]
async fn minidump_raw_and_multipart_become_attachments(pool: PgPool) {
    let app = start(pool.clone()).await;
    let p = app.project("native").await;
    let url = app.url(&format!("/api/{}/minidump/?sentry_key={}", p.id, p.key));
    let dump = [b"MDMP".as_slice(), &[0x93, 0xa7, 0, 0], &[7u8; 64]].concat();

    let r = app
        .client
        .post(&url)
        .header("content-type", "application/octet-stream")
        .body(dump.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let text = r.text().await.unwrap();
    let raw_id = Uuid::parse_str(text.trim()).unwrap();
    assert_eq!(text.trim(), raw_id.hyphenated().to_string());

    let boundary = "----snagboundary";
    let mut form = Vec::new();
    write!(
        form,
        "--{boundary}\r\nContent-Disposition: form-data; name=\"sentry[release]\"\r\n\r\nnative@3.1\r\n\
         --{boundary}\r\nContent-Disposition: form-data; name=\"sentry[tags][os]\"\r\n\r\nlinux\r\n\
         --{boundary}\r\nContent-Disposition: form-data; name=\"upload_file_minidump\"; filename=\"crash.dmp\"\r\n\
         Content-Type: application/octet-stream\r\n\r\n"
    )
    .unwrap();
    form.extend_from_slice(&dump);
    write!(form, "\r\n--{boundary}--\r\n").unwrap();
    let r = app
        .client
        .post(&url)
        .header(
            "content-type",
            format!("multipart/form-data; boundary={boundary}"),
        )
        .body(form)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["content-type"], "text/plain");
    let form_id = Uuid::parse_str(r.text().await.unwrap().trim()).unwrap();

    for event_id in [raw_id, form_id] {
        let (kind, size, data): (String, i64, Vec<u8>) = sqlx::query_as(
            "SELECT a.attachment_type, a.size, a.data FROM attachment a
             JOIN event e ON e.event_id = a.event_id AND e.project_id = a.project_id
             WHERE a.event_id = $1",
        )
        .bind(event_id)
        .fetch_one(&pool)
        .await
        .unwrap();
        assert_eq!(kind, "event.minidump");
        assert_eq!(size as usize, dump.len());
        assert_eq!(data, dump);
    }
    let release: Option<String> =
        sqlx::query_scalar("SELECT release FROM event WHERE event_id = $1")
            .bind(form_id)
            .fetch_one(&pool)
            .await
            .unwrap();
    assert_eq!(release.as_deref(), Some("native@3.1"));

    // Crashpad gzips its multipart upload and says so in Content-Encoding.
    let mut gz_form = Vec::new();
    write!(
        gz_form,
        "--{boundary}\r\nContent-Disposition: form-data; name=\"upload_file_minidump\"; filename=\"c.dmp\"\r\n\r\n"
    )
    .unwrap();
    gz_form.extend_from_slice(&dump);
    write!(gz_form, "\r\n--{boundary}--\r\n").unwrap();
    let r = app
        .client
        .post(&url)
        .header(
            "content-type",
            format!("multipart/form-data; boundary={boundary}"),
        )
        .header("content-encoding", "gzip")
        .body(gzip(&gz_form))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "gzip multipart minidump");
    let gz_id = Uuid::parse_str(r.text().await.unwrap().trim()).unwrap();
    // A minidump that is itself a gzip or zstd container (Relay sniffs the magic bytes).
    let r = app
        .client
        .post(&url)
        .body(gzip(&dump))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "gzip container");
    let container_id = Uuid::parse_str(r.text().await.unwrap().trim()).unwrap();
    let r = app
        .client
        .post(&url)
        .body(zstd::encode_all(dump.as_slice(), 3).unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "zstd container");
    let zstd_id = Uuid::parse_str(r.text().await.unwrap().trim()).unwrap();
    for event_id in [gz_id, container_id, zstd_id] {
        let data: Vec<u8> = sqlx::query_scalar("SELECT data FROM attachment WHERE event_id = $1")
            .bind(event_id)
            .fetch_one(&pool)
            .await
            .unwrap();
        assert_eq!(data, dump, "stored decompressed");
    }

    let r = app
        .client
        .post(&url)
        .body(b"not a minidump".to_vec())
        .send()
        .await
        .unwrap();
    expect_error(r, 400).await;
}

#[sqlx::test]
async fn every_auth_form_and_auth_error(pool: PgPool) {
    let app = start(pool.clone()).await;
    let p = app.project("auth").await;
    let other = app.project("other").await;
    let url = app.url(&format!("/api/{}/envelope/", p.id));

    let ok = app
        .client
        .post(&url)
        .header(
            "authorization",
            format!("Sentry sentry_key={}, sentry_version=7", p.key),
        )
        .body(ev_envelope(400))
        .send()
        .await
        .unwrap();
    assert_eq!(ok.status(), 200);
    let ok = app
        .client
        .post(format!(
            "{url}?sentry_version=7&sentry_key={}&sentry_client=sentry.javascript.node%2F8.55.0",
            p.key
        ))
        .body(ev_envelope(401))
        .send()
        .await
        .unwrap();
    assert_eq!(ok.status(), 200);
    // Tunnel envelope: the only credential is the `dsn` header.
    let dsn_only = format!(
        "{{\"event_id\":\"{}\",\"dsn\":\"{}\"}}\n{{\"type\":\"event\"}}\n{{\"message\":\"via tunnel\"}}",
        id(402),
        p.dsn
    );
    let ok = app.client.post(&url).body(dsn_only).send().await.unwrap();
    assert_eq!(ok.status(), 200);
    for n in 400..=402 {
        assert!(stored(&pool, &id(n)).await, "{n}");
    }
    // The right key, but a `dsn` header naming another project: Relay's 400.
    let elsewhere = format!(
        "{{\"event_id\":\"{}\",\"dsn\":\"{}\"}}\n{{\"type\":\"event\"}}\n{{\"message\":\"x\"}}",
        id(409),
        p.dsn
            .replace(&format!("/{}", p.id), &format!("/{}", p.id + 1000))
    );
    let r = app.client.post(&url).body(elsewhere).send().await.unwrap();
    let body = expect_error(r, 400).await;
    assert_eq!(body["detail"], "invalid event envelope", "{body}");
    assert!(!stored(&pool, &id(409)).await);

    let missing = app
        .client
        .post(&url)
        .body(ev_envelope(410))
        .send()
        .await
        .unwrap();
    let body = expect_error(missing, 401).await;
    assert_eq!(body["detail"], "missing authorization information");

    let no_key = app
        .client
        .post(&url)
        .header("x-sentry-auth", "Sentry sentry_version=7")
        .body(ev_envelope(411))
        .send()
        .await
        .unwrap();
    expect_error(no_key, 401).await;

    let conflicting = app
        .client
        .post(format!("{url}?sentry_key={}", other.key))
        .header("x-sentry-auth", auth_header(&p.key))
        .body(ev_envelope(412))
        .send()
        .await
        .unwrap();
    expect_error(conflicting, 401).await;

    let unknown = app
        .client
        .post(&url)
        .header("x-sentry-auth", auth_header(&"0".repeat(32)))
        .body(ev_envelope(413))
        .send()
        .await
        .unwrap();
    expect_error(unknown, 403).await;

    let wrong_project = app
        .client
        .post(&url)
        .header("x-sentry-auth", auth_header(&other.key))
        .body(ev_envelope(414))
        .send()
        .await
        .unwrap();
    expect_error(wrong_project, 403).await;

    let future_version = app
        .client
        .post(&url)
        .header(
            "x-sentry-auth",
            format!("Sentry sentry_key={}, sentry_version=8", p.key),
        )
        .body(ev_envelope(415))
        .send()
        .await
        .unwrap();
    let body = expect_error(future_version, 400).await;
    assert_eq!(body["detail"], "unsupported protocol version (8)");

    for n in 410..=415 {
        assert!(!stored(&pool, &id(n)).await, "{n} was stored");
    }
}

#[sqlx::test]
async fn malformed_envelopes_get_relay_error_bodies(pool: PgPool) {
    let app = start(pool.clone()).await;
    let p = app.project("errors").await;

    let r = app
        .post_envelope(&p, b"this is not json\n{\"type\":\"event\"}\n{}".to_vec())
        .await;
    let body = expect_error(r, 400).await;
    assert_eq!(body["detail"], "invalid event envelope");
    assert!(
        body["causes"].as_array().is_some_and(|c| !c.is_empty()),
        "{body}"
    );

    // Explicit length longer than the payload.
    let r = app
        .post_envelope(&p, b"{}\n{\"type\":\"event\",\"length\":500}\n{}".to_vec())
        .await;
    expect_error(r, 400).await;

    let r = app.post_envelope(&p, Vec::new()).await;
    let body = expect_error(r, 400).await;
    assert_eq!(body["detail"], "empty request body");

    // Valid envelope, event payload that is not JSON.
    let r = app
        .post_envelope(
            &p,
            envelope(Some(&id(500)), &[("event", b"{nope".to_vec())]),
        )
        .await;
    expect_error(r, 400).await;

    // Two event-class items in one envelope: Relay's shared budget of 1.
    let event = serde_json::to_vec(&error_event("E", "v", "f")).unwrap();
    let r = app
        .post_envelope(
            &p,
            envelope(
                Some(&id(501)),
                &[("event", event.clone()), ("event", event.clone())],
            ),
        )
        .await;
    let body = expect_error(r, 413).await;
    assert!(
        body["detail"]
            .as_str()
            .unwrap()
            .starts_with("envelope exceeded size limits"),
        "{body}"
    );
    let r = app
        .post_envelope(
            &p,
            envelope(
                Some(&id(502)),
                &[("event", event.clone()), ("transaction", event)],
            ),
        )
        .await;
    expect_error(r, 413).await;

    let r = app
        .client
        .post(app.url("/api/notanumber/envelope/"))
        .header("x-sentry-auth", auth_header(&p.key))
        .body(ev_envelope(503))
        .send()
        .await
        .unwrap();
    assert!(r.status().is_client_error(), "{}", r.status());

    for n in 500..=503 {
        assert!(!stored(&pool, &id(n)).await);
    }
    assert_eq!(count(&pool, "SELECT count(*) FROM event").await, 0);
}

#[sqlx::test]
async fn key_rate_limit_answers_429_with_relay_headers(pool: PgPool) {
    let app = start(pool.clone()).await;
    let p = app.project("limited").await;
    // Before the first request, so the key cache loads the limit.
    sqlx::query("UPDATE project_key SET rate_limit_per_minute = 2 WHERE public_key = $1")
        .bind(&p.key)
        .execute(&pool)
        .await
        .unwrap();
    for n in 600..602 {
        let r = app.post_envelope(&p, ev_envelope(n)).await;
        assert_eq!(r.status(), 200);
        assert!(r.headers().get("retry-after").is_none());
    }
    let r = app.post_envelope(&p, ev_envelope(602)).await;
    assert_eq!(r.status(), 429);
    let retry_after: u64 = r.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .expect("integer Retry-After");
    // A sliding one-minute window: the earliest admission can lie up to 90 s
    // ahead when the whole budget was spent at the start of a window.
    assert!((1..=120).contains(&retry_after), "{retry_after}");
    let limits = r.headers()["x-sentry-rate-limits"]
        .to_str()
        .unwrap()
        .to_string();
    let first = limits.split(", ").next().unwrap();
    let parts: Vec<&str> = first.split(':').collect();
    assert!(parts.len() >= 3, "{limits}");
    assert!(parts[0].parse::<u64>().is_ok(), "{limits}");
    assert!(parts[1].split(';').any(|c| c == "error"), "{limits}");
    assert_eq!(parts[2], "key", "{limits}");
    let body: Value = r.json().await.unwrap();
    assert!(
        body["detail"]
            .as_str()
            .unwrap()
            .starts_with("Sentry dropped data")
    );
    assert!(!stored(&pool, &id(602)).await);
    let r = app.post_envelope(&p, ev_envelope(603)).await;
    assert_eq!(r.status(), 429);
    // Refused events are counted as Relay's `rate_limited` outcome, stored
    // with the next commit (or within seconds when none comes).
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(15);
    let dropped = loop {
        let n: Option<i64> = sqlx::query_scalar(
            "SELECT sum(quantity)::bigint FROM outcome_hourly
              WHERE outcome = 'rate_limited' AND reason = 'key_quota' AND category = 'error'",
        )
        .fetch_one(&pool)
        .await
        .unwrap();
        if n.is_some() || std::time::Instant::now() > deadline {
            break n;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    };
    assert_eq!(dropped, Some(2));

    // The limit counts events: a sessions-only envelope still goes through.
    let session = json!({"sid": Uuid::new_v4().simple().to_string(), "init": true,
        "started": "2025-05-01T10:00:00Z", "status": "exited", "attrs": {"release": "app@1"}});
    let r = app
        .post_envelope(
            &p,
            envelope(None, &[("session", session.to_string().into_bytes())]),
        )
        .await;
    assert_eq!(r.status(), 200);
    assert!(r.headers().get("retry-after").is_none());
}

#[sqlx::test]
async fn every_item_type_lands_in_its_table(pool: PgPool) {
    let app = start(pool.clone()).await;
    let p = app.project("items").await;
    let event_id = id(700);
    let body = envelope(
        Some(&event_id),
        &[
            (
                "event",
                serde_json::to_vec(&error_event("OSError", "disk full", "save")).unwrap(),
            ),
            ("attachment", b"log line 1\nlog line 2".to_vec()),
            (
                "user_report",
                json!({"event_id": event_id, "name": "Ann", "email": "ann@example.com", "comments": "it broke"})
                    .to_string()
                    .into_bytes(),
            ),
            ("profile", b"{\"whatever\":1}".to_vec()),
            ("some_future_type", b"\x00\x01binary".to_vec()),
        ],
    );
    let r = app.post_envelope(&p, body).await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.json::<Value>().await.unwrap(), json!({"id": event_id}));
    let (name, size, data): (String, i64, Vec<u8>) =
        sqlx::query_as("SELECT name, size, data FROM attachment WHERE event_id = $1")
            .bind(Uuid::parse_str(&event_id).unwrap())
            .fetch_one(&pool)
            .await
            .unwrap();
    assert_eq!(name, "attachment");
    assert_eq!(size, 21);
    assert_eq!(data, b"log line 1\nlog line 2");
    let comments: String =
        sqlx::query_scalar("SELECT comments FROM user_report WHERE event_id = $1")
            .bind(Uuid::parse_str(&event_id).unwrap())
            .fetch_one(&pool)
            .await
            .unwrap();
    assert_eq!(comments, "it broke");

    let feedback = json!({"event_id": id(701), "contexts": {"feedback": {
        "message": "button does nothing", "contact_email": "bo@example.com", "name": "Bo",
        "associated_event_id": event_id}}});
    let r = app
        .post_envelope(
            &p,
            envelope(
                Some(&id(701)),
                &[("feedback", feedback.to_string().into_bytes())],
            ),
        )
        .await;
    assert_eq!(r.status(), 200);
    assert_eq!(
        count(
            &pool,
            &format!(
                "SELECT count(*) FROM user_report WHERE event_id = '{event_id}' AND comments = 'button does nothing' AND email = 'bo@example.com'"
            )
        )
        .await,
        1
    );

    let session = json!({"sid": "7c7b6585f90143518f8d02711b721929", "init": true,
        "started": "2025-05-01T10:00:00.000000Z", "status": "crashed", "errors": 1,
        "attrs": {"release": "app@1.0.0", "environment": "production"}});
    let sessions = json!({"attrs": {"release": "app@1.0.0", "environment": "production"},
        "aggregates": [{"started": "2025-05-01T10:20:00Z", "exited": 120, "errored": 3, "crashed": 1}]});
    let report = json!({"timestamp": 1746093900.25,
        "discarded_events": [{"reason": "ratelimit_backoff", "category": "error", "quantity": 3},
                             {"reason": "queue_overflow", "category": "transaction", "quantity": 5}]});
    let check_in = json!({"check_in_id": "83a7c03ed0a04e1b97e2e3b18d38f244", "monitor_slug": "nightly-backup",
        "status": "ok", "duration": 12.5, "environment": "production"});
    let r = app
        .post_envelope(
            &p,
            envelope(
                None,
                &[
                    ("session", session.to_string().into_bytes()),
                    ("sessions", sessions.to_string().into_bytes()),
                    ("client_report", report.to_string().into_bytes()),
                    ("check_in", check_in.to_string().into_bytes()),
                ],
            ),
        )
        .await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.json::<Value>().await.unwrap(), json!({}));
    let (total, errored, crashed): (i64, i64, i64) = sqlx::query_as(
        "SELECT sum(total)::bigint, sum(errored)::bigint, sum(crashed)::bigint FROM session_hourly
         WHERE release = 'app@1.0.0' AND environment = 'production'",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!((total, errored, crashed), (1 + 124, 1 + 4, 1 + 1));
    let outcomes: Vec<(String, String, i64)> =
        sqlx::query_as("SELECT reason, category, quantity FROM outcome_hourly ORDER BY reason")
            .fetch_all(&pool)
            .await
            .unwrap();
    assert_eq!(
        outcomes,
        vec![
            ("queue_overflow".into(), "transaction".into(), 5),
            ("ratelimit_backoff".into(), "error".into(), 3)
        ]
    );
    let (slug, status, duration): (String, String, Option<f64>) = sqlx::query_as(
        "SELECT m.slug, m.last_status, c.duration FROM monitor m JOIN monitor_check_in c ON c.monitor_id = m.id",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!(
        (slug.as_str(), status.as_str(), duration),
        ("nightly-backup", "ok", Some(12.5))
    );
    // Only the one error event: profile and the unknown type were dropped.
    assert_eq!(count(&pool, "SELECT count(*) FROM event").await, 1);
}

#[sqlx::test]
async fn cors_preflight_and_headers(pool: PgPool) {
    let app = start(pool.clone()).await;
    let p = app.project("browser").await;
    let r = app
        .client
        .request(
            reqwest::Method::OPTIONS,
            app.url(&format!("/api/{}/envelope/", p.id)),
        )
        .header("origin", "https://shop.example")
        .header("access-control-request-method", "POST")
        .header(
            "access-control-request-headers",
            "content-type, x-sentry-auth",
        )
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success(), "{}", r.status());
    let h = r.headers();
    assert_eq!(h["access-control-allow-origin"], "*");
    assert!(
        h["access-control-allow-methods"]
            .to_str()
            .unwrap()
            .contains("POST")
    );
    let allowed = h["access-control-allow-headers"].to_str().unwrap();
    assert!(allowed.contains("x-sentry-auth") && allowed.contains("content-type"));
    assert_eq!(h["access-control-max-age"], "3600");

    let r = app
        .client
        .post(app.url(&format!("/api/{}/envelope/?sentry_key={}", p.id, p.key)))
        .header("origin", "https://shop.example")
        .header("content-type", "text/plain;charset=UTF-8")
        .body(ev_envelope(800))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["access-control-allow-origin"], "*");
    assert!(
        r.headers()["access-control-expose-headers"]
            .to_str()
            .unwrap()
            .contains("x-sentry-rate-limits")
    );
}

#[sqlx::test]
async fn chunked_request_body_is_read_completely(pool: PgPool) {
    let app = start(pool.clone()).await;
    let p = app.project("node").await;
    // @sentry/node streams the body without Content-Length or Content-Type.
    let body = ev_envelope(900);
    let mut request = format!(
        "POST /api/{}/envelope/?sentry_version=7&sentry_key={}&sentry_client=sentry.javascript.node%2F8.55.0 HTTP/1.1\r\n\
         Host: 127.0.0.1\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n",
        p.id, p.key
    )
    .into_bytes();
    for chunk in body.chunks(37) {
        write!(request, "{:x}\r\n", chunk.len()).unwrap();
        request.extend_from_slice(chunk);
        request.extend_from_slice(b"\r\n");
    }
    request.extend_from_slice(b"0\r\n\r\n");
    let (status, _, response) = raw_http(app.server.addr, &request).await;
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&response));
    assert!(String::from_utf8_lossy(&response).contains(&id(900)));
    assert!(stored(&pool, &id(900)).await);

    // A gzipped chunked body (node compresses above 32 KiB).
    let mut big = error_event("RangeError", "too big", "render");
    big["extra"] = json!({"blob": "x".repeat(40_000)});
    let body = gzip(&event_envelope(&id(901), &big));
    let mut request = format!(
        "POST /api/{}/envelope/?sentry_key={} HTTP/1.1\r\nHost: 127.0.0.1\r\ncontent-encoding: gzip\r\n\
         Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n",
        p.id, p.key
    )
    .into_bytes();
    for chunk in body.chunks(100) {
        write!(request, "{:x}\r\n", chunk.len()).unwrap();
        request.extend_from_slice(chunk);
        request.extend_from_slice(b"\r\n");
    }
    request.extend_from_slice(b"0\r\n\r\n");
    let (status, _, _) = raw_http(app.server.addr, &request).await;
    assert_eq!(status, 200);
    assert!(stored(&pool, &id(901)).await);
}

/// A gzip bomb: multi-member gzip of 1 MiB zero blocks, ~10 MB on the wire
/// that would inflate to ~10 GiB. Run against the real binary so its peak
/// memory can be read from /proc.
#[sqlx::test]
async fn decompression_bomb_is_refused_with_bounded_memory(pool: PgPool) {
    let store = snag::store::Store::from_pool(pool.clone());
    let (project, key) = store.create_project("bomb", None).await.unwrap();
    let member = gzip(&vec![0u8; 1024 * 1024]);
    let members = 10 * 1024 * 1024 / member.len();
    let bomb: Vec<u8> = member
        .iter()
        .copied()
        .cycle()
        .take(member.len() * members)
        .collect();
    let inflated_gib = members as f64 / 1024.0;
    let snag = SnagProcess::spawn(&database_url_of(&pool), free_port(), &[]).await;
    let before_kib = snag.peak_rss_kib();
    let started = std::time::Instant::now();
    let r = reqwest::Client::new()
        .post(format!("{}/api/{}/envelope/", snag.base, project.id))
        .header("x-sentry-auth", auth_header(&key.public_key))
        .header("content-encoding", "gzip")
        .body(bomb.clone())
        .send()
        .await
        .unwrap();
    let elapsed = started.elapsed();
    let peak_kib = snag.peak_rss_kib();
    eprintln!(
        "bomb: {} bytes compressed, {inflated_gib:.1} GiB inflated; answered {} in {elapsed:?}; \
         peak RSS {before_kib} KiB before, {peak_kib} KiB after",
        bomb.len(),
        r.status()
    );
    let body = expect_error(r, 413).await;
    assert!(
        body["detail"].as_str().unwrap().contains("size limit"),
        "{body}"
    );
    assert!(inflated_gib > 9.0);
    // The cap is the 200 MiB envelope limit plus the 10 MB body; an unbounded
    // decoder would need 10 GiB.
    assert!(peak_kib < 400 * 1024, "peak RSS {peak_kib} KiB");
    assert!(elapsed < std::time::Duration::from_secs(20), "{elapsed:?}");
    assert_eq!(count(&pool, "SELECT count(*) FROM event").await, 0);
}

#[sqlx::test]
async fn bombs_and_oversized_items_are_413_in_every_encoding(pool: PgPool) {
    let app = start(pool.clone()).await;
    let p = app.project("limits").await;
    // 32 MiB of zeros against the 1 MiB store limit.
    let zeros = vec![0u8; 32 * 1024 * 1024];
    let bombs: [(&str, Vec<u8>); 4] = [
        ("gzip", gzip(&zeros)),
        ("deflate", zlib(&zeros)),
        ("br", brotli_compress(&zeros)),
        ("zstd", zstd::encode_all(zeros.as_slice(), 3).unwrap()),
    ];
    drop(zeros);
    for (encoding, bomb) in bombs {
        let r = app
            .client
            .post(app.url(&format!("/api/{}/store/", p.id)))
            .header("x-sentry-auth", auth_header(&p.key))
            .header("content-encoding", encoding)
            .body(bomb)
            .send()
            .await
            .unwrap();
        expect_error(r, 413).await;
    }

    // One event item over max_event_size (1 MiB) inside a small envelope.
    let mut big = error_event("E", "v", "f");
    big["extra"] = json!({"blob": "y".repeat(1024 * 1024 + 10)});
    let r = app
        .client
        .post(app.url(&format!("/api/{}/envelope/", p.id)))
        .header("x-sentry-auth", auth_header(&p.key))
        .header("content-encoding", "gzip")
        .body(gzip(&event_envelope(&id(950), &big)))
        .send()
        .await
        .unwrap();
    let body = expect_error(r, 413).await;
    assert!(
        body["detail"].as_str().unwrap().contains("'event'"),
        "{body}"
    );
    assert_eq!(count(&pool, "SELECT count(*) FROM event").await, 0);
}

#[sqlx::test]
async fn a_retried_event_is_acknowledged_but_stored_once(pool: PgPool) {
    let app = start(pool.clone()).await;
    let p = app.project("retry").await;
    for _ in 0..3 {
        let r = app.post_envelope(&p, ev_envelope(960)).await;
        assert_eq!(r.status(), 200);
        assert_eq!(r.json::<Value>().await.unwrap(), json!({"id": id(960)}));
    }
    assert_eq!(count(&pool, "SELECT count(*) FROM event").await, 1);
    assert_eq!(
        count(&pool, "SELECT sum(times_seen)::bigint FROM issue").await,
        1
    );
}

#[sqlx::test]
async fn odd_payloads_are_answered_without_a_server_error(pool: PgPool) {
    let app = start(pool.clone()).await;
    let p = app.project("odd").await;
    let envelopes: Vec<Vec<u8>> = vec![
        envelope(Some(&id(970)), &[("event", b"[]".to_vec())]),
        envelope(Some(&id(971)), &[("event", b"null".to_vec())]),
        envelope(Some(&id(972)), &[("event", b"\"text\"".to_vec())]),
        envelope(Some(&id(973)), &[("event", b"{\"timestamp\":\"yesterday\",\"level\":[1],\"exception\":{\"values\":[null,{}]},\"tags\":[[\"a\"],7]}".to_vec())]),
        envelope(None, &[("user_report", b"{\"name\":\"no id\"}".to_vec())]),
        envelope(None, &[("sessions", b"[1,2]".to_vec())]),
        envelope(None, &[("session", b"{\"attrs\":{\"release\":\"r\"},\"started\":\"never\"}".to_vec())]),
        envelope(None, &[("client_report", b"{\"discarded_events\":[{\"quantity\":-5},{\"quantity\":\"x\"}]}".to_vec())]),
        envelope(None, &[("check_in", b"{\"monitor_slug\":\"m\",\"check_in_id\":\"nope\",\"duration\":\"long\"}".to_vec())]),
        envelope(Some(&id(974)), &[("feedback", b"{\"contexts\":{\"feedback\":{\"message\":\"\"}}}".to_vec())]),
        envelope(Some(&id(975)), &[("event", b"{\"message\":\"nul \\u0000 inside\",\"extra\":{\"k\\u0000\":1}}".to_vec())]),
        b"{\"event_id\":null}\n{\"type\":\"event\"}\n{}".to_vec(),
        envelope(
            Some(&id(976)),
            &[(
                "user_report",
                format!(r#"{{"event_id":"{}","name":"a\u0000","comments":"b\u0000"}}"#, id(976)).into_bytes(),
            )],
        ),
        envelope(
            None,
            &[
                ("session", br#"{"attrs":{"release":"r\u0000","environment":"e\u0000"},"started":"2025-05-01T10:00:00Z","init":true}"#.to_vec()),
                ("client_report", br#"{"discarded_events":[{"reason":"x\u0000","category":"error","quantity":1}]}"#.to_vec()),
                ("check_in", br#"{"monitor_slug":"m\u0000","status":"ok\u0000","environment":"\u0000"}"#.to_vec()),
            ],
        ),
        b"{\"event_id\":\"0123456789abcdef0123456789abcdef\"}\n{\"type\":\"attachment\",\"length\":1,\"filename\":\"f\\u0000\",\"content_type\":\"t\\u0000\"}\nx".to_vec(),
        b"{\"event_id\":\"not-a-uuid\"}\n{\"type\":\"event\"}\n{}".to_vec(),
        b"{}\n{\"type\":\"attachment\",\"length\":-1}\nx".to_vec(),
        b"{}\n{\"type\":7}\n{}".to_vec(),
        b"{}\n\n\n".to_vec(),
    ];
    for (n, body) in envelopes.into_iter().enumerate() {
        let r = app.post_envelope(&p, body).await;
        let status = r.status().as_u16();
        let text = r.text().await.unwrap();
        assert!(status < 500, "envelope {n}: {status} {text}");
        if status != 200 {
            let v: Value = serde_json::from_str(&text).unwrap();
            assert!(v["detail"].is_string(), "envelope {n}: {text}");
        }
    }
    let stores: [&[u8]; 5] = [
        b"[]",
        b"null",
        b"{\"event_id\":42}",
        b"\xff\xfe",
        b"{\"exception\":\"boom\"}",
    ];
    for (n, body) in stores.into_iter().enumerate() {
        let r = app
            .client
            .post(app.url(&format!("/api/{}/store/", p.id)))
            .header("x-sentry-auth", auth_header(&p.key))
            .body(body.to_vec())
            .send()
            .await
            .unwrap();
        let status = r.status().as_u16();
        assert!(
            status < 500,
            "store {n}: {status} {}",
            r.text().await.unwrap()
        );
    }
    assert!(
        stored(&pool, &id(975)).await,
        "NUL bytes must not fail the event"
    );
}

#[sqlx::test]
async fn check_in_opened_then_closed_is_one_row(pool: PgPool) {
    let app = start(pool.clone()).await;
    let project = app.project("cron").await;
    for (status, duration) in [("in_progress", None), ("ok", Some(12.5))] {
        let mut check_in = json!({"check_in_id": "93a7c03ed0a04e1b97e2e3b18d38f244", "monitor_slug": "nightly", "status": status});
        if let Some(d) = duration {
            check_in["duration"] = json!(d);
        }
        let r = app
            .post_envelope(
                &project,
                envelope(None, &[("check_in", check_in.to_string().into_bytes())]),
            )
            .await;
        assert_eq!(r.status(), 200);
    }
    let rows: Vec<(String, Option<f64>)> =
        sqlx::query_as("SELECT status, duration FROM monitor_check_in")
            .fetch_all(&pool)
            .await
            .unwrap();
    assert_eq!(rows, vec![("ok".to_string(), Some(12.5))]);
    let last: String = sqlx::query_scalar("SELECT last_status FROM monitor")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(last, "ok");
}

#[sqlx::test]
async fn repeated_session_updates_count_the_session_once(pool: PgPool) {
    let app = start(pool.clone()).await;
    let project = app.project("health").await;
    // sentry-python sends an update per error and one at exit, each with init.
    for (status, errors) in [("ok", 1), ("ok", 2), ("exited", 2)] {
        let update = json!({"sid": "8c7b6585f90143518f8d02711b721929", "init": true, "started": "2026-11-28T10:00:00Z",
                            "status": status, "errors": errors, "attrs": {"release": "app@2.0.0"}});
        let r = app
            .post_envelope(
                &project,
                envelope(None, &[("session", update.to_string().into_bytes())]),
            )
            .await;
        assert_eq!(r.status(), 200);
    }
    let counts: (i64, i64) =
        sqlx::query_as("SELECT sum(total)::bigint, sum(errored)::bigint FROM session_hourly WHERE release = 'app@2.0.0'")
            .fetch_one(&pool)
            .await
            .unwrap();
    assert_eq!(counts, (1, 1));
}

#[sqlx::test]
async fn forwarded_client_address_is_believed_only_from_trusted_proxies(pool: PgPool) {
    async fn stored_ip(pool: PgPool, trusted: &[&str]) -> String {
        let mut config = test_config();
        config.trusted_proxies = trusted
            .iter()
            .map(|t| snag::config::IpNet::parse(t).unwrap())
            .collect();
        let app = start_with(pool.clone(), config).await;
        let project = app.project(&format!("p{}", trusted.len())).await;
        let mut event = error_event("E", "v", "f");
        event["user"] = json!({"ip_address": "{{auto}}"});
        let event_id = format!("{:032x}", 0xabc0 + trusted.len());
        let r = app
            .client
            .post(app.url(&format!("/api/{}/envelope/", project.id)))
            .header("x-sentry-auth", auth_header(&project.key))
            .header("x-forwarded-for", "203.0.113.7")
            .body(event_envelope(&event_id, &event))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        stored_event(&pool, Uuid::parse_str(&event_id).unwrap()).await["user"]["ip_address"]
            .as_str()
            .unwrap()
            .to_string()
    }
    assert_eq!(
        stored_ip(pool.clone(), &[]).await,
        "127.0.0.1",
        "a spoofed header from a stranger is ignored"
    );
    assert_eq!(stored_ip(pool, &["127.0.0.0/8"]).await, "203.0.113.7");
}
