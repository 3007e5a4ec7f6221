//! Durable group-commit writer. Handlers submit the items of one request
//! and wait; the writer commits many requests per transaction and only then
//! releases their responses, so an acknowledged event is always on disk.
//!
//! The writer runs on its own thread with its own runtime and its own
//! database connection: its dozen round trips per batch never queue behind
//! request handlers' CPU work (normalising, grouping, compressing) on the
//! shared workers, nor wait for a pool slot.

pub mod process;

use crate::ops::metrics::Metrics;
use crate::store::Store;
use crate::store::write::{NewItem, NewOutcome, WriteOutcome};
use chrono::{DateTime, DurationRound, TimeDelta, Utc};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{Notify, mpsc, oneshot};

/// How long counted drops may wait for a commit when no events arrive.
const DROPS_FLUSH: Duration = Duration::from_secs(5);

/// Data ingest refused on its own (rate limits), counted per project,
/// hour, reason and category and written with the next commit, as Relay
/// records outcomes: a flood of refused requests costs a counter, not a
/// write each.
type DropKey = (i64, DateTime<Utc>, &'static str, &'static str);

#[derive(Default)]
struct Drops(Mutex<HashMap<DropKey, i64>>);

impl Drops {
    fn add(&self, key: DropKey, quantity: i64) {
        if let Ok(mut map) = self.0.lock() {
            *map.entry(key).or_default() += quantity;
        }
    }

    fn take(&self) -> Vec<NewItem> {
        let Ok(mut map) = self.0.lock() else {
            return Vec::new();
        };
        map.drain()
            .map(|((project_id, hour, reason, category), quantity)| {
                NewItem::Outcome(NewOutcome {
                    project_id,
                    timestamp: hour,
                    outcome: "rate_limited".into(),
                    reason: reason.into(),
                    category: category.into(),
                    quantity,
                })
            })
            .collect()
    }
}

#[derive(Debug, thiserror::Error)]
pub enum PipelineError {
    #[error("the write queue is full; retry later")]
    Overloaded,
    #[error("the server is shutting down")]
    Closed,
    /// The database is unavailable; the client should retry.
    #[error("could not store the data: {0}")]
    Write(String),
    /// The database refused this request's rows (and would again): the
    /// client must not retry.
    #[error("the data was refused by storage: {0}")]
    Rejected(String),
}

type Ack = oneshot::Sender<Result<Vec<WriteOutcome>, PipelineError>>;

struct Job {
    items: Vec<NewItem>,
    ack: Ack,
}

#[derive(Clone)]
pub struct Pipeline {
    queue: mpsc::Sender<Job>,
    drops: Arc<Drops>,
    /// Woken after a commit that created or regressed an issue.
    pub alerts_wakeup: Arc<Notify>,
}

pub struct PipelineHandle {
    stop: oneshot::Sender<()>,
    done: oneshot::Receiver<()>,
}

impl PipelineHandle {
    /// Stops accepting new jobs, writes everything already queued, and waits
    /// for the writer to finish.
    pub async fn drain(self) {
        let _ = self.stop.send(());
        let _ = self.done.await;
    }
}

impl Pipeline {
    pub fn start(
        store: Store,
        metrics: Arc<Metrics>,
        queue_capacity: usize,
        batch_max: usize,
    ) -> (Self, PipelineHandle) {
        let (queue, rx) = mpsc::channel(queue_capacity.max(1));
        let (stop, stop_rx) = oneshot::channel();
        let alerts_wakeup = Arc::new(Notify::new());
        let drops = Arc::new(Drops::default());
        let writer = Writer {
            store,
            conn: None,
            metrics,
            batch_max: batch_max.max(1),
            alerts_wakeup: alerts_wakeup.clone(),
            drops: drops.clone(),
        };
        let (done_tx, done) = oneshot::channel();
        let spawned = std::thread::Builder::new()
            .name("snag-writer".into())
            .spawn(move || {
                match tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                {
                    Ok(runtime) => runtime.block_on(writer.run(rx, stop_rx)),
                    Err(e) => tracing::error!(error = %e, "cannot start the writer runtime"),
                }
                let _ = done_tx.send(());
            });
        if let Err(e) = spawned {
            // Without a writer every submit answers 503 (the queue closes).
            tracing::error!(error = %e, "cannot start the writer thread");
        }
        (
            Self {
                queue,
                drops,
                alerts_wakeup,
            },
            PipelineHandle { stop, done },
        )
    }

    /// Queues items for the next commit and waits until they are durable.
    pub async fn submit(&self, items: Vec<NewItem>) -> Result<Vec<WriteOutcome>, PipelineError> {
        if items.is_empty() {
            return Ok(Vec::new());
        }
        let (ack, done) = oneshot::channel();
        self.queue
            .try_send(Job { items, ack })
            .map_err(|e| match e {
                mpsc::error::TrySendError::Full(_) => PipelineError::Overloaded,
                mpsc::error::TrySendError::Closed(_) => PipelineError::Closed,
            })?;
        done.await.unwrap_or(Err(PipelineError::Closed))
    }

    /// Counts `quantity` items of `category` that ingest refused because of
    /// a rate limit (`reason`, e.g. `key_quota`); stored with the next
    /// commit.
    pub fn count_rate_limited(
        &self,
        project_id: i64,
        reason: &'static str,
        category: &'static str,
        quantity: i64,
    ) {
        let now = Utc::now();
        let hour = now.duration_trunc(TimeDelta::hours(1)).unwrap_or(now);
        self.drops
            .add((project_id, hour, reason, category), quantity);
    }

    pub fn queue_depth(&self) -> usize {
        self.queue.max_capacity() - self.queue.capacity()
    }
}

struct Writer {
    store: Store,
    /// The writer's own connection, opened on first use and again after a
    /// failure.
    conn: Option<sqlx::PgConnection>,
    metrics: Arc<Metrics>,
    batch_max: usize,
    alerts_wakeup: Arc<Notify>,
    drops: Arc<Drops>,
}

impl Writer {
    async fn run(mut self, mut rx: mpsc::Receiver<Job>, mut stop: oneshot::Receiver<()>) {
        let mut batch = Vec::with_capacity(self.batch_max);
        loop {
            let first = tokio::select! {
                job = rx.recv() => job,
                _ = tokio::time::sleep(DROPS_FLUSH) => {
                    self.commit(Vec::new()).await;
                    continue;
                }
                _ = &mut stop => {
                    // Refuse new jobs but keep what is already queued.
                    rx.close();
                    rx.recv().await
                }
            };
            let Some(first) = first else {
                // Counted drops go with the last commit.
                self.commit(Vec::new()).await;
                break;
            };
            batch.push(first);
            while batch.len() < self.batch_max {
                match rx.try_recv() {
                    Ok(job) => batch.push(job),
                    Err(_) => break,
                }
            }
            self.commit(std::mem::take(&mut batch)).await;
        }
    }

    async fn write(
        &mut self,
        items: &[Vec<NewItem>],
    ) -> Result<crate::store::write::BatchResults, crate::store::StoreError> {
        let conn = match &mut self.conn {
            Some(conn) => conn,
            None => self.conn.insert(self.store.connect_writer().await?),
        };
        let result = crate::store::write::write_batch_on(conn, items).await;
        if result.is_err() {
            // The transaction failed as a whole: start afresh.
            self.conn = None;
        }
        result
    }

    async fn commit(&mut self, jobs: Vec<Job>) {
        let (mut items, acks): (Vec<_>, Vec<_>) =
            jobs.into_iter().map(|j| (j.items, j.ack)).unzip();
        // Counted drops ride along as one more request nobody waits for.
        let drops = self.drops.take();
        if items.is_empty() && drops.is_empty() {
            return;
        }
        if !drops.is_empty() {
            items.push(drops);
        }
        let started = std::time::Instant::now();
        let mut attempt = 0;
        let results = loop {
            match self.write(&items).await {
                Ok(results) => break Ok(results),
                // Connection-level failures are usually brief (failover,
                // restart); the SDKs are waiting, so retry a little before
                // giving up and letting them resend.
                Err(e) if attempt < 3 => {
                    attempt += 1;
                    tracing::warn!(error = %e, attempt, "batch write failed; retrying");
                    tokio::time::sleep(Duration::from_millis(200 * attempt)).await;
                }
                Err(e) => break Err(e),
            }
        };
        if !acks.is_empty() {
            self.metrics.observe_batch(acks.len(), started.elapsed());
        }
        match results {
            Ok(results) => {
                let mut wake_alerts = false;
                for (result, ack) in results.into_iter().zip(acks) {
                    if let Ok(outcomes) = &result {
                        wake_alerts |= outcomes.iter().any(|o| {
                            matches!(
                                o,
                                WriteOutcome::Event {
                                    new_issue: true,
                                    ..
                                } | WriteOutcome::Event {
                                    regression: true,
                                    ..
                                }
                            )
                        });
                    } else if let Err(e) = &result {
                        tracing::error!(error = %e, "item rejected by the database");
                    }
                    let _ = ack.send(result.map_err(PipelineError::Rejected));
                }
                if wake_alerts {
                    self.alerts_wakeup.notify_one();
                }
            }
            Err(e) => {
                tracing::error!(error = %e, jobs = acks.len(), "batch write failed; responding 503");
                for ack in acks {
                    let _ = ack.send(Err(PipelineError::Write(e.to_string())));
                }
            }
        }
    }
}
