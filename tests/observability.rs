//! Snag observed from outside: request ids in responses and JSON logs,
//! Prometheus metrics (and the Grafana dashboard built on them), and Snag
//! reporting its own errors to a Sentry-compatible server: itself.

mod common;

use common::*;
use serde_json::Value;
use sqlx::PgPool;
use std::time::{Duration, Instant};

fn log_lines(process: &SnagProcess) -> Vec<Value> {
    std::fs::read_to_string(&process.log_path)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect()
}

/// Makes every query on `users` fail until restored, so the dashboard's
/// login hits a real database error.
async fn break_users_table(pool: &PgPool) {
    sqlx::query("ALTER TABLE users RENAME TO users_away")
        .execute(pool)
        .await
        .unwrap();
}

async fn restore_users_table(pool: &PgPool) {
    sqlx::query("ALTER TABLE users_away RENAME TO users")
        .execute(pool)
        .await
        .unwrap();
}

#[sqlx::test]
async fn request_ids_are_echoed_and_on_every_log_line(pool: PgPool) {
    let url = database_url_of(&pool);
    let snag = SnagProcess::spawn(&url, free_port(), &[]).await;
    let client = reqwest::Client::new();
    let get = |id: Option<&str>| {
        let mut r = client.get(format!("{}/healthz", snag.base));
        if let Some(id) = id {
            r = r.header("x-request-id", id);
        }
        r.send()
    };
    let r = get(Some("nginx-7f3a9c")).await.unwrap();
    assert_eq!(r.headers()["x-request-id"], "nginx-7f3a9c");
    let fresh = get(None).await.unwrap();
    let fresh_id = fresh.headers()["x-request-id"]
        .to_str()
        .unwrap()
        .to_string();
    assert_eq!(fresh_id.len(), 32);
    assert!(fresh_id.bytes().all(|b| b.is_ascii_hexdigit()));
    for hostile in ["two words", &"x".repeat(200), "<script>", "a\"b"] {
        let r = get(Some(hostile)).await.unwrap();
        let echoed = r.headers()["x-request-id"].to_str().unwrap();
        assert_ne!(echoed, hostile, "unsafe ids are replaced");
        assert_eq!(echoed.len(), 32);
    }

    break_users_table(&pool).await;
    let failed = client
        .post(format!("{}/login", snag.base))
        .header("x-request-id", "login-attempt-1")
        .form(&[("email", "a@example.com"), ("password", "whatever")])
        .send()
        .await
        .unwrap();
    restore_users_table(&pool).await;
    assert_eq!(failed.status(), 500);

    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let lines = log_lines(&snag);
        let access = lines
            .iter()
            .find(|l| l["message"] == "request" && l["span"]["request_id"] == "nginx-7f3a9c");
        let error = lines
            .iter()
            .find(|l| l["level"] == "ERROR" && l["span"]["request_id"] == "login-attempt-1");
        if let (Some(access), Some(error)) = (access, error) {
            assert_eq!(access["route"], "/healthz");
            assert_eq!(access["status"], 200);
            assert!(
                error["message"]
                    .as_str()
                    .unwrap()
                    .contains("request failed"),
                "{error}"
            );
            break;
        }
        assert!(
            Instant::now() < deadline,
            "log lines with request ids missing: {lines:#?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[sqlx::test]
async fn snag_reports_its_own_errors_to_itself(pool: PgPool) {
    let url = database_url_of(&pool);
    let port = free_port();
    let store = snag::store::Store::from_pool(pool.clone());
    let (project, key) = store
        .create_project("snag-itself", Some("rust"))
        .await
        .unwrap();
    let dsn = snag::config::dsn_for(
        &format!("http://127.0.0.1:{port}"),
        &key.public_key,
        project.id,
    );
    let snag = SnagProcess::spawn(
        &url,
        port,
        &[
            ("SNAG_SENTRY_DSN", dsn.as_str()),
            ("SNAG_SENTRY_ENVIRONMENT", "selftest"),
        ],
    )
    .await;
    let client = reqwest::Client::new();
    break_users_table(&pool).await;
    let failed = client
        .post(format!("{}/login", snag.base))
        .form(&[("email", "a@example.com"), ("password", "whatever")])
        .send()
        .await
        .unwrap();
    restore_users_table(&pool).await;
    assert_eq!(failed.status(), 500);

    let deadline = Instant::now() + Duration::from_secs(15);
    let event = loop {
        if let Some(issue) = store
            .list_issues(project.id, &Default::default())
            .await
            .unwrap()
            .into_iter()
            .next()
        {
            break store.latest_event(issue.id).await.unwrap().unwrap();
        }
        assert!(
            Instant::now() < deadline,
            "no self-reported event arrived; log: {}",
            std::fs::read_to_string(&snag.log_path).unwrap_or_default()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(event.level, "error");
    assert!(
        event.title.contains("dashboard request failed"),
        "{}",
        event.title
    );
    assert_eq!(
        event.release.as_deref(),
        Some(env!("CARGO_PKG_VERSION"))
            .map(|v| format!("snag@{v}"))
            .as_deref()
    );
    assert_eq!(event.environment.as_deref(), Some("selftest"));
    let fields = event.data["contexts"].to_string();
    assert!(
        fields.contains("users"),
        "the database error is attached: {fields}"
    );
    // One failure, one report: no feedback loop through its own ingest.
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(store.count_events(project.id).await.unwrap(), 1);
}

#[sqlx::test]
async fn metrics_cover_ingest_pipeline_pool_and_outbox(pool: PgPool) {
    let app = start(pool).await;
    let p = app.project("metrics").await;
    for n in 0..3u32 {
        let r = app
            .post_envelope(
                &p,
                event_envelope(&format!("{n:032x}"), &error_event("E", "x", "f")),
            )
            .await;
        assert_eq!(r.status(), 200);
    }
    let bad = app
        .client
        .post(app.url(&format!("/api/{}/envelope/", p.id)))
        .header("x-sentry-auth", auth_header("0".repeat(32).as_str()))
        .body("{}\n")
        .send()
        .await
        .unwrap();
    assert!(bad.status().is_client_error());
    let text = app
        .client
        .get(app.url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    for needle in [
        "snag_http_requests_total{method=\"POST\",route=\"/api/{project_id}/envelope/\",status=\"200\"} 3",
        "snag_http_request_duration_seconds_bucket{route=\"/api/{project_id}/envelope/\",le=\"+Inf\"} ",
        "snag_ingest_items_total{outcome=\"accepted\",reason=\"\",category=\"error\"} 3",
        "snag_events_accepted_total 3",
        "snag_pipeline_queue_depth 0",
        "snag_pipeline_batch_size_count ",
        "snag_pipeline_batch_size_bucket{le=\"500\"} ",
        "snag_pipeline_commit_seconds_count ",
        "snag_db_pool_connections ",
        "snag_db_pool_in_use ",
        "snag_db_pool_max_connections ",
        "snag_alert_outbox_pending ",
        "snag_retention_purged_rows_total{kind=\"expired_events\"} 0",
        "process_start_time_seconds ",
        "snag_build_info{version=\"",
    ] {
        assert!(text.contains(needle), "{needle:?} missing from\n{text}");
    }
    // Every metric the shipped Grafana dashboard queries exists.
    let dashboard: Value = serde_json::from_str(
        &std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/deploy/grafana-dashboard.json"
        ))
        .unwrap(),
    )
    .unwrap();
    let mut exprs = Vec::new();
    for panel in dashboard["panels"].as_array().unwrap() {
        for target in panel["targets"].as_array().into_iter().flatten() {
            exprs.push(target["expr"].as_str().unwrap().to_string());
        }
    }
    assert!(exprs.len() >= 8, "{exprs:?}");
    let names = regex::Regex::new(r"\b(snag_[a-z_]+|process_[a-z_]+)").unwrap();
    for expr in &exprs {
        for name in names.find_iter(expr) {
            let name = name.as_str();
            let base = ["_bucket", "_count", "_sum"]
                .iter()
                .find_map(|s| name.strip_suffix(s))
                .unwrap_or(name);
            assert!(
                text.contains(&format!("# TYPE {base} ")),
                "dashboard query {expr:?} uses {name}, which /metrics does not export"
            );
        }
    }
    app.server.shutdown().await.unwrap();
}

#[test]
fn an_invalid_self_report_dsn_is_one_clear_error() {
    let o = std::process::Command::new(env!("CARGO_BIN_EXE_snag"))
        .arg("serve")
        .env("DATABASE_URL", "postgres://snag@127.0.0.1:1/none")
        .env("SNAG_SECRET_KEY", "observability-secret-0123456789")
        .env("SNAG_SENTRY_DSN", "not a dsn")
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(1));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.starts_with("error: SNAG_SENTRY_DSN is invalid"),
        "{err}"
    );
    assert_eq!(err.trim_end().lines().count(), 1, "{err}");
}
