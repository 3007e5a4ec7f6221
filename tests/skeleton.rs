//! The walking skeleton end to end: ingest auth, storage and grouping,
//! dashboard login, health endpoints, graceful shutdown.

mod common;

use common::*;
use serde_json::{Value, json};
use sqlx::PgPool;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const EVENT_A: &str = "0123456789abcdef0123456789abcdef";

#[sqlx::test]
async fn envelope_with_valid_key_is_stored_and_acknowledged_with_its_id(pool: PgPool) {
    let app = start(pool.clone()).await;
    let project = app.project("shop").await;
    let body = event_envelope(EVENT_A, &error_event("KeyError", "'sku'", "lookup"));
    let response = app.post_envelope(&project, body).await;
    assert_eq!(response.status(), 200);
    assert_eq!(
        response.json::<Value>().await.unwrap(),
        json!({"id": EVENT_A})
    );
    let (issue_title, level): (String, String) =
        sqlx::query_as("SELECT i.title, e.level FROM event e JOIN issue i ON i.id = e.issue_id WHERE e.event_id = $1")
            .bind(uuid::Uuid::parse_str(EVENT_A).unwrap())
            .fetch_one(&pool)
            .await
            .unwrap();
    assert_eq!(issue_title, "KeyError: 'sku'");
    assert_eq!(level, "error");
}

#[sqlx::test]
async fn auth_is_required_and_checked(pool: PgPool) {
    let app = start(pool.clone()).await;
    let shop = app.project("shop").await;
    let other = app.project("other").await;
    let body = event_envelope(EVENT_A, &error_event("E", "v", "f"));
    let url = app.url(&format!("/api/{}/envelope/", shop.id));

    let missing = app
        .client
        .post(&url)
        .body(body.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(missing.status(), 401);
    assert!(
        missing.json::<Value>().await.unwrap()["detail"]
            .as_str()
            .unwrap()
            .len()
            > 5
    );

    let unknown = app
        .client
        .post(&url)
        .header("x-sentry-auth", auth_header(&"f".repeat(32)))
        .body(body.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(unknown.status(), 403);
    assert!(unknown.json::<Value>().await.unwrap()["detail"].is_string());

    let wrong_project = app
        .client
        .post(&url)
        .header("x-sentry-auth", auth_header(&other.key))
        .body(body.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(wrong_project.status(), 403);

    // The query-string form is what browser SDKs use.
    let query = app
        .client
        .post(format!("{url}?sentry_key={}&sentry_version=7", shop.key))
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(query.status(), 200);

    let events: i64 = sqlx::query_scalar("SELECT count(*) FROM event")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(
        events, 1,
        "only the authenticated request may store an event"
    );
}

#[sqlx::test]
async fn disabled_key_is_rejected_immediately(pool: PgPool) {
    let app = start(pool.clone()).await;
    let project = app.project("shop").await;
    let ok = app
        .post_envelope(
            &project,
            event_envelope(EVENT_A, &error_event("E", "v", "f")),
        )
        .await;
    assert_eq!(ok.status(), 200);
    let key_id: i64 = sqlx::query_scalar("SELECT id FROM project_key WHERE public_key = $1")
        .bind(&project.key)
        .fetch_one(&pool)
        .await
        .unwrap();
    let key = app
        .store
        .set_key_active(project.id, key_id, false)
        .await
        .unwrap();
    app.server.state.keys.invalidate(&key).await;
    let rejected = app
        .post_envelope(
            &project,
            event_envelope(
                "11111111111111111111111111111111",
                &error_event("E", "v", "f"),
            ),
        )
        .await;
    assert_eq!(rejected.status(), 403);
}

#[sqlx::test]
async fn same_exception_groups_into_one_issue_and_different_ones_split(pool: PgPool) {
    let app = start(pool.clone()).await;
    let project = app.project("shop").await;
    let ids = [
        "a0000000000000000000000000000001",
        "a0000000000000000000000000000002",
        "a0000000000000000000000000000003",
    ];
    for id in &ids[..2] {
        let r = app
            .post_envelope(
                &project,
                event_envelope(id, &error_event("TimeoutError", "took 31s", "fetch")),
            )
            .await;
        assert_eq!(r.status(), 200);
    }
    let r = app
        .post_envelope(
            &project,
            event_envelope(ids[2], &error_event("KeyError", "'id'", "parse")),
        )
        .await;
    assert_eq!(r.status(), 200);

    let issues: Vec<(String, i64)> =
        sqlx::query_as("SELECT title, times_seen FROM issue ORDER BY title")
            .fetch_all(&pool)
            .await
            .unwrap();
    assert_eq!(
        issues,
        vec![
            ("KeyError: 'id'".to_string(), 1),
            ("TimeoutError: took 31s".to_string(), 2)
        ]
    );

    // A retried event id is stored once and not counted twice.
    let r = app
        .post_envelope(
            &project,
            event_envelope(ids[0], &error_event("TimeoutError", "took 31s", "fetch")),
        )
        .await;
    assert_eq!(r.status(), 200);
    let times: i64 = sqlx::query_scalar("SELECT times_seen FROM issue WHERE title LIKE 'Timeout%'")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(times, 2);
}

#[sqlx::test]
async fn store_endpoint_accepts_gzip_json(pool: PgPool) {
    let app = start(pool.clone()).await;
    let project = app.project("legacy").await;
    let mut event = error_event("ZeroDivisionError", "division by zero", "ratio");
    event["event_id"] = json!("b0000000000000000000000000000001");
    let response = app
        .client
        .post(app.url(&format!("/api/{}/store/", project.id)))
        .header("x-sentry-auth", auth_header(&project.key))
        .header("content-encoding", "gzip")
        .header("content-type", "application/json")
        .body(gzip(&serde_json::to_vec(&event).unwrap()))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(
        response.json::<Value>().await.unwrap()["id"],
        "b0000000000000000000000000000001"
    );
    let title: String = sqlx::query_scalar("SELECT title FROM issue")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(title, "ZeroDivisionError: division by zero");
}

#[sqlx::test]
async fn dashboard_requires_login_and_shows_the_stack(pool: PgPool) {
    let app = start(pool.clone()).await;
    let project = app.project("shop").await;
    app.post_envelope(
        &project,
        event_envelope(
            EVENT_A,
            &error_event("PaymentDeclined", "card expired", "charge_card"),
        ),
    )
    .await;
    let issue_id: i64 = sqlx::query_scalar("SELECT id FROM issue")
        .fetch_one(&pool)
        .await
        .unwrap();

    for path in [
        "/",
        "/projects",
        &format!("/projects/{}/issues", project.id),
        &format!("/issues/{issue_id}"),
    ] {
        let r = app.client.get(app.url(path)).send().await.unwrap();
        assert_eq!(r.status(), 303, "{path} must redirect anonymous users");
        assert!(
            r.headers()["location"]
                .to_str()
                .unwrap()
                .starts_with("/login?next=")
        );
    }

    let bad = app
        .client
        .post(app.url("/login"))
        .form(&[("email", "nobody@example.com"), ("password", "x")])
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status(), 401);

    let cookie = app.login("admin@example.com", "hunter2hunter2").await;
    let (status, projects) = app.get_page("/projects", &cookie).await;
    assert_eq!(status, 200);
    assert!(projects.contains("shop") && projects.contains(&project.dsn));

    let (status, list) = app
        .get_page(&format!("/projects/{}/issues", project.id), &cookie)
        .await;
    assert_eq!(status, 200);
    assert!(list.contains("PaymentDeclined: card expired"));

    let (status, page) = app.get_page(&format!("/issues/{issue_id}"), &cookie).await;
    assert_eq!(status, 200);
    for needle in [
        "PaymentDeclined",
        "card expired",
        "app/jobs.py",
        "charge_card",
        "raise Boom()",
        "42",
    ] {
        assert!(page.contains(needle), "issue page lacks {needle:?}");
    }
}

#[sqlx::test]
async fn health_and_readiness(pool: PgPool) {
    let app = start(pool).await;
    assert_eq!(
        app.client
            .get(app.url("/healthz"))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    assert_eq!(
        app.client
            .get(app.url("/readyz"))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    let metrics = app
        .client
        .get(app.url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains(
            "snag_http_requests_total{method=\"GET\",route=\"/readyz\",status=\"200\"} 1"
        )
    );
}

#[tokio::test]
async fn readiness_fails_when_the_database_is_unreachable() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    // Port 1 on loopback refuses connections immediately.
    let store = snag::store::Store::connect_lazy("postgres://snag@127.0.0.1:1/none", 2).unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let server = snag::app::start(test_config(), store, listener)
        .await
        .unwrap();
    let r = reqwest::get(format!("http://{addr}/readyz")).await.unwrap();
    assert_eq!(r.status(), 503);
    let r = reqwest::get(format!("http://{addr}/healthz"))
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    server.shutdown().await.unwrap();
}

#[sqlx::test]
async fn graceful_shutdown_finishes_an_in_flight_request(pool: PgPool) {
    let app = start(pool.clone()).await;
    let project = app.project("shop").await;
    let body = event_envelope(EVENT_A, &error_event("E", "in flight", "f"));
    let (head, tail) = body.split_at(body.len() / 2);

    let mut stream = tokio::net::TcpStream::connect(app.server.addr)
        .await
        .unwrap();
    let request_head = format!(
        "POST /api/{}/envelope/ HTTP/1.1\r\nHost: x\r\nX-Sentry-Auth: {}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        project.id,
        auth_header(&project.key),
        body.len()
    );
    stream.write_all(request_head.as_bytes()).await.unwrap();
    stream.write_all(head).await.unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(100)).await;

    let mut server = app.server;
    server.trigger_shutdown();
    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    // The request already in flight completes after shutdown began.
    stream.write_all(tail).await.unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).await.unwrap();
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
    tokio::time::timeout(std::time::Duration::from_secs(10), server.wait())
        .await
        .unwrap()
        .unwrap();
    let stored: i64 = sqlx::query_scalar("SELECT count(*) FROM event")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(stored, 1);
}
