//! The real `snag serve` binary under concurrent load: a SIGKILL loses no
//! acknowledged event, retries are stored once, SIGTERM drains and exits 0.

mod common;

use common::*;
use sqlx::PgPool;
use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use uuid::Uuid;

const TASKS: usize = 8;

#[derive(Default)]
struct Tally {
    acked: Mutex<Vec<Uuid>>,
    failed_attempts: AtomicUsize,
    /// Ids given up on without ever getting a 200.
    unacked: Mutex<Vec<Uuid>>,
}

impl Tally {
    fn acked(&self) -> usize {
        self.acked.lock().unwrap().len()
    }
}

struct Load {
    base: String,
    project_id: i64,
    key: String,
    per_task: usize,
    /// Resend an id until it is acknowledged, as an SDK's retry would.
    retry_until: Option<Duration>,
    stop: Arc<AtomicBool>,
    tally: Arc<Tally>,
}

impl Load {
    fn spawn(self: &Arc<Self>) -> Vec<tokio::task::JoinHandle<()>> {
        (0..TASKS)
            .map(|task| {
                let load = self.clone();
                tokio::spawn(async move { load.run(task).await })
            })
            .collect()
    }

    async fn run(&self, task: usize) {
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .build()
            .unwrap();
        let url = format!("{}/api/{}/envelope/", self.base, self.project_id);
        let event = error_event("TimeoutError", "upstream timed out", "fetch");
        for i in 0..self.per_task {
            if self.stop.load(Ordering::Relaxed) {
                return;
            }
            let event_id = Uuid::new_v4();
            let body = event_envelope(&event_id.simple().to_string(), &event);
            let started = Instant::now();
            loop {
                let sent = client
                    .post(&url)
                    .header("x-sentry-auth", auth_header(&self.key))
                    .body(body.clone())
                    .send()
                    .await;
                if let Ok(r) = sent
                    && r.status() == 200
                {
                    let reply: serde_json::Value = r.json().await.unwrap();
                    assert_eq!(reply["id"], event_id.simple().to_string());
                    self.tally.acked.lock().unwrap().push(event_id);
                    break;
                }
                self.tally.failed_attempts.fetch_add(1, Ordering::Relaxed);
                let keep_trying = self
                    .retry_until
                    .is_some_and(|limit| started.elapsed() < limit);
                if !keep_trying || self.stop.load(Ordering::Relaxed) {
                    self.tally.unacked.lock().unwrap().push(event_id);
                    break;
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            // Spread the load over a few seconds rather than a burst.
            tokio::time::sleep(Duration::from_millis(((task + i) % 4) as u64 * 5)).await;
        }
    }
}

async fn stored_ids(pool: &PgPool, project_id: i64) -> (Vec<Uuid>, i64) {
    let ids: Vec<Uuid> = sqlx::query_scalar("SELECT event_id FROM event WHERE project_id = $1")
        .bind(project_id)
        .fetch_all(pool)
        .await
        .unwrap();
    let times_seen: i64 = sqlx::query_scalar(
        "SELECT COALESCE(sum(times_seen), 0)::bigint FROM issue WHERE project_id = $1",
    )
    .bind(project_id)
    .fetch_one(pool)
    .await
    .unwrap();
    (ids, times_seen)
}

/// Every acknowledged id is stored, nothing is stored twice, and the issue
/// counted each stored event once (a retried duplicate bumps nothing).
fn assert_exactly_once(acked: &[Uuid], stored: &[Uuid], times_seen: i64) -> usize {
    let stored_set: HashSet<&Uuid> = stored.iter().collect();
    assert_eq!(stored_set.len(), stored.len(), "duplicate event rows");
    let acked_set: HashSet<&Uuid> = acked.iter().collect();
    assert_eq!(acked_set.len(), acked.len(), "an id was acknowledged twice");
    let lost: Vec<&&Uuid> = acked_set.difference(&stored_set).collect();
    assert!(
        lost.is_empty(),
        "{} acknowledged events lost: {lost:?}",
        lost.len()
    );
    assert_eq!(times_seen, stored.len() as i64, "issue counts drifted");
    lost.len()
}

async fn project(pool: &PgPool) -> (i64, String) {
    let store = snag::store::Store::from_pool(pool.clone());
    let (project, key) = store.create_project("load", Some("python")).await.unwrap();
    (project.id, key.public_key)
}

#[sqlx::test]
async fn sigkill_under_load_loses_no_acknowledged_event(pool: PgPool) {
    let database_url = database_url_of(&pool);
    let (project_id, key) = project(&pool).await;
    let port = free_port();
    let mut snag = SnagProcess::spawn(&database_url, port, &[]).await;
    let load = Arc::new(Load {
        base: snag.base.clone(),
        project_id,
        key,
        per_task: 40,
        retry_until: Some(Duration::from_secs(20)),
        stop: Arc::new(AtomicBool::new(false)),
        tally: Arc::new(Tally::default()),
    });
    let started = Instant::now();
    let tasks = load.spawn();
    let deadline = Instant::now() + Duration::from_secs(15);
    while load.tally.acked() < 80 {
        assert!(Instant::now() < deadline, "load made no progress");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    snag.kill();
    let acked_at_kill = load.tally.acked();
    tokio::time::sleep(Duration::from_millis(300)).await;
    let _restarted = SnagProcess::spawn(&database_url, port, &[]).await;
    for t in tasks {
        t.await.unwrap();
    }
    let acked = load.tally.acked.lock().unwrap().clone();
    let unacked = load.tally.unacked.lock().unwrap().clone();
    let (stored, times_seen) = stored_ids(&pool, project_id).await;
    let lost = assert_exactly_once(&acked, &stored, times_seen);
    eprintln!(
        "sigkill: {} acked ({acked_at_kill} before the kill), {} failed attempts retried, \
         {} given up, {} stored, {lost} lost, {:?}",
        acked.len(),
        load.tally.failed_attempts.load(Ordering::Relaxed),
        unacked.len(),
        stored.len(),
        started.elapsed()
    );
    assert!(
        load.tally.failed_attempts.load(Ordering::Relaxed) > 0,
        "the kill interrupted nothing"
    );
    assert!(unacked.is_empty(), "retries gave up: {unacked:?}");
    assert_eq!(acked.len(), TASKS * 40);
}

#[sqlx::test]
async fn sigterm_under_load_drains_and_exits_zero(pool: PgPool) {
    let database_url = database_url_of(&pool);
    let (project_id, key) = project(&pool).await;
    let mut snag = SnagProcess::spawn(&database_url, free_port(), &[]).await;
    let stop = Arc::new(AtomicBool::new(false));
    let load = Arc::new(Load {
        base: snag.base.clone(),
        project_id,
        key,
        per_task: 1000,
        retry_until: None,
        stop: stop.clone(),
        tally: Arc::new(Tally::default()),
    });
    let tasks = load.spawn();
    let deadline = Instant::now() + Duration::from_secs(15);
    while load.tally.acked() < 80 {
        assert!(Instant::now() < deadline, "load made no progress");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    snag.signal("TERM");
    let signalled = Instant::now();
    let status = snag.wait_exit(Duration::from_secs(30)).await;
    let exit_time = signalled.elapsed();
    stop.store(true, Ordering::Relaxed);
    for t in tasks {
        t.await.unwrap();
    }
    assert!(status.success(), "snag exited with {status} after SIGTERM");
    let acked = load.tally.acked.lock().unwrap().clone();
    let (stored, times_seen) = stored_ids(&pool, project_id).await;
    let lost = assert_exactly_once(&acked, &stored, times_seen);
    eprintln!(
        "sigterm: exit {status} after {exit_time:?}; {} acked, {} refused after the signal, \
         {} stored, {lost} lost",
        acked.len(),
        load.tally.failed_attempts.load(Ordering::Relaxed),
        stored.len()
    );
}

#[sqlx::test]
async fn saturated_write_queue_answers_503_at_once(pool: PgPool) {
    let database_url = database_url_of(&pool);
    let (project_id, key) = project(&pool).await;
    let snag = SnagProcess::spawn(
        &database_url,
        free_port(),
        &[("SNAG_PIPELINE_QUEUE", "1"), ("SNAG_PIPELINE_BATCH", "1")],
    )
    .await;
    let client = reqwest::Client::new();
    let url = format!("{}/api/{project_id}/envelope/", snag.base);
    let event = error_event("BusyError", "queue full", "submit");
    let requests = (0..64).map(|_| {
        let event_id = Uuid::new_v4();
        let body = event_envelope(&event_id.simple().to_string(), &event);
        let send = client
            .post(&url)
            .header("x-sentry-auth", auth_header(&key))
            .body(body)
            .send();
        async move {
            let r = send.await.unwrap();
            let status = r.status().as_u16();
            let retry_after = r.headers().contains_key("retry-after");
            let body: serde_json::Value = r.json().await.unwrap();
            (event_id, status, retry_after, body)
        }
    });
    let results = futures_util::future::join_all(requests).await;
    let mut acked = Vec::new();
    let mut refused = 0;
    for (event_id, status, retry_after, body) in results {
        match status {
            200 => acked.push(event_id),
            503 => {
                refused += 1;
                assert!(!retry_after, "Retry-After on a 503");
                assert_eq!(body["detail"], "failed to queue envelope");
            }
            other => panic!("unexpected status {other}: {body}"),
        }
    }
    eprintln!(
        "saturated: {} acked, {refused} refused with 503",
        acked.len()
    );
    assert!(refused > 0, "a one-slot queue never filled");
    let (stored, times_seen) = stored_ids(&pool, project_id).await;
    assert_exactly_once(&acked, &stored, times_seen);
    assert_eq!(stored.len(), acked.len(), "a refused event was stored");
}
