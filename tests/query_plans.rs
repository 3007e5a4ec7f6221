//! Every dashboard page reads `event` through an index: on a project with
//! a million events a sequential scan is seconds, not milliseconds.
//!
//! The real `snag serve` runs with `enable_seqscan = off`, so PostgreSQL
//! scans a table sequentially only when no index can answer the query at
//! all, which is the mistake to catch. It ingests events and serves every
//! main page; the table statistics of `event` must then show index scans
//! and not one sequential scan.

mod common;

use common::{SnagProcess, database_url_of, error_event, event_envelope, free_port};
use sqlx::PgPool;
use std::time::Duration;

async fn event_scans(pool: &PgPool) -> (i64, i64) {
    sqlx::query_as(
        "SELECT COALESCE(seq_scan, 0), COALESCE(idx_scan, 0)
           FROM pg_stat_user_tables WHERE relname = 'event'",
    )
    .fetch_one(pool)
    .await
    .unwrap()
}

#[sqlx::test]
async fn dashboard_pages_read_events_only_through_indexes(pool: PgPool) {
    let store = snag::store::Store::from_pool(pool.clone());
    let (project, key) = store.create_project("plans", Some("python")).await.unwrap();
    let hash = snag::web::auth::hash_password("plans-password").unwrap();
    store
        .create_user("plans@example.com", &hash, true)
        .await
        .unwrap();

    // Building the indexes in the migrations scanned `event`; those counts
    // reach the statistics when the connections that ran them end.
    let plain_url = database_url_of(&pool);
    pool.close().await;
    let pool = PgPool::connect(&plain_url).await.unwrap();
    tokio::time::sleep(Duration::from_secs(1)).await;
    let (seq_before, idx_before) = event_scans(&pool).await;

    let url = format!("{plain_url}?options=-c%20enable_seqscan%3Doff");
    let mut snag = SnagProcess::spawn(&url, free_port(), &[]).await;
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();

    let mut event_ids = Vec::new();
    for i in 0..60 {
        let mut event = error_event(
            &format!("Error{}", i % 6),
            &format!("failed for order {i}"),
            &format!("job_{}", i % 6),
        );
        event["release"] = format!("app@1.{}", i % 3).into();
        event["user"] = serde_json::json!({"id": format!("user-{}", i % 7)});
        event["tags"] = serde_json::json!({"tenant": format!("tenant-{}", i % 4)});
        let id = uuid::Uuid::new_v4().simple().to_string();
        let r = client
            .post(format!("{}/api/{}/envelope/", snag.base, project.id))
            .header("x-sentry-auth", common::auth_header(&key.public_key))
            .body(event_envelope(&id, &event))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
        event_ids.push(id);
    }

    let login = client
        .post(format!("{}/login", snag.base))
        .form(&[
            ("email", "plans@example.com"),
            ("password", "plans-password"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(login.status(), 303);
    let cookie = login.headers()["set-cookie"].to_str().unwrap();
    let cookie = cookie.split(';').next().unwrap().to_string();

    let (issue_id,): (i64,) =
        sqlx::query_as("SELECT id FROM issue ORDER BY times_seen DESC LIMIT 1")
            .fetch_one(&pool)
            .await
            .unwrap();
    let event_of_issue: String =
        sqlx::query_scalar("SELECT replace(last_event_id::text, '-', '') FROM issue WHERE id = $1")
            .bind(issue_id)
            .fetch_one(&pool)
            .await
            .unwrap();
    let list = format!("/projects/{}/issues", project.id);
    let pages = [
        list.clone(),
        format!("{list}?sort=freq"),
        format!("{list}?sort=new"),
        format!("{list}?sort=user"),
        format!("{list}?query=failed"),
        format!("{list}?query=tenant%3Atenant-1"),
        format!("{list}?release=app%401.1"),
        format!("{list}?status=all"),
        "/issues".to_string(),
        "/projects".to_string(),
        format!("/issues/{issue_id}"),
        format!("/issues/{issue_id}/events/{event_of_issue}"),
        format!("/issues/{issue_id}/events/{event_of_issue}/json"),
        format!("/issues/{issue_id}/events"),
        format!("/issues/{issue_id}/events?query=tenant%3Atenant-2"),
    ];
    for page in &pages {
        let r = client
            .get(format!("{}{page}", snag.base))
            .header("cookie", &cookie)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200, "{page}");
    }

    // Backends publish their table statistics when they exit.
    snag.signal("TERM");
    assert!(snag.wait_exit(Duration::from_secs(20)).await.success());
    let deadline = std::time::Instant::now() + Duration::from_secs(15);
    let (mut seq, mut idx) = event_scans(&pool).await;
    while idx == idx_before && std::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(200)).await;
        (seq, idx) = event_scans(&pool).await;
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let (later_seq, _) = event_scans(&pool).await;
    assert!(idx > idx_before, "no index scans of event were recorded");
    assert_eq!(
        seq.max(later_seq) - seq_before,
        0,
        "a query read `event` sequentially: no index serves it"
    );
}
