//! Two real `snag serve` processes on one database, under one concurrent
//! load, must add up as if one process had taken it all: one issue per
//! fingerprint, exact counts and facets, every event stored once, and one
//! alert per new issue although both processes run the delivery worker.

mod common;

use axum::extract::State;
use common::{SnagProcess, auth_header, database_url_of, error_event, event_envelope, free_port};
use serde_json::Value;
use sqlx::PgPool;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const FINGERPRINTS: usize = 24;
const EVENTS_PER_FINGERPRINT: usize = 25;
const USERS_PER_FINGERPRINT: usize = 5;
/// Events sent to both processes at the same moment, as an SDK retry after
/// a timeout can do.
const RACED_RETRIES: usize = 20;

#[derive(Clone, Default)]
struct Hooks(Arc<Mutex<Vec<Value>>>);

async fn hook(State(hooks): State<Hooks>, body: axum::body::Bytes) -> &'static str {
    hooks
        .0
        .lock()
        .unwrap()
        .push(serde_json::from_slice(&body).unwrap());
    "ok"
}

async fn receive_webhooks() -> (String, Hooks) {
    let hooks = Hooks::default();
    let router = axum::Router::new()
        .route("/hook", axum::routing::post(hook))
        .with_state(hooks.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, router).await });
    (url, hooks)
}

fn event_of(fingerprint: usize, n: usize) -> Value {
    let mut event = error_event(
        &format!("Scale{fingerprint}Error"),
        &format!("order {n} failed"),
        &format!("handle_{fingerprint}"),
    );
    event["user"] = serde_json::json!({"id": format!("user-{}", n % USERS_PER_FINGERPRINT)});
    event["tags"] = serde_json::json!({"tenant": format!("tenant-{}", n % 3)});
    event
}

async fn count(pool: &PgPool, sql: &'static str) -> i64 {
    sqlx::query_scalar(sql).fetch_one(pool).await.unwrap()
}

async fn count_for(pool: &PgPool, sql: &'static str, issue: i64) -> i64 {
    sqlx::query_scalar(sql)
        .bind(issue)
        .fetch_one(pool)
        .await
        .unwrap()
}

#[sqlx::test]
async fn two_processes_under_one_load_count_exactly_and_alert_once(pool: PgPool) {
    let store = snag::store::Store::from_pool(pool.clone());
    let (project, key) = store.create_project("scale", Some("python")).await.unwrap();
    let (hook_url, hooks) = receive_webhooks().await;
    store.create_webhook(project.id, &hook_url).await.unwrap();

    let url = database_url_of(&pool);
    // A short digest window, so the digests of this burst all go out in the test.
    let env = [
        ("SNAG_PIPELINE_BATCH", "64"),
        ("SNAG_ALERT_DIGEST_WINDOW_SECS", "2"),
    ];
    let mut first = SnagProcess::spawn(&url, free_port(), &env).await;
    let mut second = SnagProcess::spawn(&url, free_port(), &env).await;
    let bases = [first.base.clone(), second.base.clone()];
    let client = reqwest::Client::new();
    let auth = auth_header(&key.public_key);

    // Interleave fingerprints so both processes create and update every
    // issue at once, in many concurrent batches.
    let mut sends = Vec::new();
    for n in 0..EVENTS_PER_FINGERPRINT {
        for f in 0..FINGERPRINTS {
            let id = uuid::Uuid::new_v4().simple().to_string();
            let body = event_envelope(&id, &event_of(f, n));
            let targets = if n * FINGERPRINTS + f < RACED_RETRIES {
                vec![0, 1]
            } else {
                vec![(n + f) % 2]
            };
            for target in targets {
                sends.push((
                    format!("{}/api/{}/envelope/", bases[target], project.id),
                    body.clone(),
                    id.clone(),
                ));
            }
        }
    }
    let semaphore = Arc::new(tokio::sync::Semaphore::new(24));
    let mut tasks = Vec::new();
    for (url, body, id) in sends {
        let (client, auth, semaphore) = (client.clone(), auth.clone(), semaphore.clone());
        tasks.push(tokio::spawn(async move {
            let _permit = semaphore.acquire().await.unwrap();
            let r = client
                .post(url)
                .header("x-sentry-auth", auth)
                .body(body)
                .send()
                .await
                .unwrap();
            let status = r.status().as_u16();
            (id, status, r.text().await.unwrap())
        }));
    }
    let mut statuses: HashMap<String, Vec<u16>> = HashMap::new();
    for task in tasks {
        let (id, status, body) = task.await.unwrap();
        assert!(
            status == 200 || status == 400 && body.contains("duplicate"),
            "{status}: {body}"
        );
        statuses.entry(id).or_default().push(status);
    }
    for (id, answers) in &statuses {
        assert!(
            answers.contains(&200),
            "event {id} was acknowledged by neither process: {answers:?}"
        );
    }

    let total = (FINGERPRINTS * EVENTS_PER_FINGERPRINT) as i64;
    assert_eq!(count(&pool, "SELECT count(*) FROM event").await, total);
    assert_eq!(
        count(
            &pool,
            "SELECT count(*) FROM (SELECT DISTINCT event_id FROM event) e"
        )
        .await,
        total,
        "a raced retry was stored twice"
    );
    let issues: Vec<(i64, i64, i64)> =
        sqlx::query_as("SELECT id, times_seen, user_count FROM issue ORDER BY id")
            .fetch_all(&pool)
            .await
            .unwrap();
    assert_eq!(issues.len(), FINGERPRINTS, "one issue per fingerprint");
    for (id, times_seen, users) in &issues {
        assert_eq!(*times_seen, EVENTS_PER_FINGERPRINT as i64, "issue {id}");
        assert_eq!(*users, USERS_PER_FINGERPRINT as i64, "issue {id}");
        let per_issue = |sql: &'static str| count_for(&pool, sql, *id);
        assert_eq!(
            per_issue("SELECT count(*) FROM event WHERE issue_id = $1").await,
            *times_seen
        );
        assert_eq!(
            per_issue(
                "SELECT COALESCE(sum(count), 0)::bigint FROM issue_hourly WHERE issue_id = $1"
            )
            .await,
            *times_seen
        );
        assert_eq!(
            per_issue(
                "SELECT COALESCE(sum(times_seen), 0)::bigint FROM issue_tag
                  WHERE issue_id = $1 AND key = 'tenant'"
            )
            .await,
            *times_seen
        );
        assert_eq!(
            per_issue("SELECT count(*) FROM issue_user WHERE issue_id = $1").await,
            *users
        );
        assert_eq!(
            per_issue(
                "SELECT count(*) FROM alert_outbox
                  WHERE issue_id = $1 AND kind = 'new_issue' AND channel = 'email'"
            )
            .await,
            1,
            "one alert intent per new issue"
        );
    }
    assert_eq!(
        count(
            &pool,
            "SELECT count(*) FROM activity WHERE kind = 'first_seen'"
        )
        .await,
        FINGERPRINTS as i64
    );

    // Both workers claim from the same outbox; each alert goes out once,
    // singly or inside a digest.
    let deadline = Instant::now() + Duration::from_secs(40);
    while count(
        &pool,
        "SELECT count(*) FROM alert_outbox WHERE channel = 'webhook' AND status <> 'sent'",
    )
    .await
        > 0
        || count(
            &pool,
            "SELECT count(*) FROM alert_outbox WHERE channel = 'webhook'",
        )
        .await
            < FINGERPRINTS as i64
    {
        if Instant::now() > deadline {
            let rows: Vec<(String, String, Option<String>)> =
                sqlx::query_as("SELECT channel, status, last_error FROM alert_outbox ORDER BY id")
                    .fetch_all(&pool)
                    .await
                    .unwrap();
            panic!("webhook alerts not all sent: {rows:?}");
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let mut alerted: HashMap<i64, usize> = HashMap::new();
    for payload in hooks.0.lock().unwrap().iter() {
        for alert in payload["alerts"].as_array().unwrap() {
            assert_eq!(alert["kind"], "new_issue");
            *alerted
                .entry(alert["issue"]["id"].as_i64().unwrap())
                .or_default() += 1;
        }
    }
    assert_eq!(alerted.len(), FINGERPRINTS, "every new issue alerted");
    assert!(
        alerted.values().all(|n| *n == 1),
        "an alert was delivered twice: {alerted:?}"
    );

    for process in [&mut first, &mut second] {
        process.signal("TERM");
        assert!(process.wait_exit(Duration::from_secs(20)).await.success());
    }
}
