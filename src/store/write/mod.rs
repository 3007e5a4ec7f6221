//! The ingest write path: one transaction per batch (group commit).
//!
//! A batch is written with a fixed number of multi-row statements
//! (`events`). When PostgreSQL refuses a row, the batch is rolled back and
//! written again one request per savepoint, so a bad request fails alone
//! and its neighbours are still stored.

mod events;
mod issue_state;
mod other;

use super::{Result, Store};
use chrono::{DateTime, DurationRound, TimeDelta, Utc};
use serde_json::Value;
use sqlx::{Connection as _, PgConnection};
use uuid::Uuid;

#[derive(Debug, Clone)]
pub struct NewEvent {
    pub project_id: i64,
    pub event_id: Uuid,
    pub event_type: String,
    pub timestamp: DateTime<Utc>,
    pub received: DateTime<Utc>,
    pub level: String,
    pub platform: String,
    pub release: Option<String>,
    pub environment: Option<String>,
    pub transaction: Option<String>,
    pub message: Option<String>,
    pub title: String,
    pub culprit: String,
    pub metadata: Value,
    pub user_key: Option<String>,
    pub tags: Vec<(String, String)>,
    /// The normalised event, compressed by `store::payload::encode`.
    pub payload: Vec<u8>,
    /// The grouping info (config, hashes, variants), compressed like the
    /// payload; None for transactions.
    pub grouping: Option<Vec<u8>>,
    /// Grouping hashes, primary first. Empty for events that never form
    /// issues (transactions).
    pub hashes: Vec<String>,
}

#[derive(Debug, Clone)]
pub struct NewAttachment {
    pub project_id: i64,
    pub event_id: Uuid,
    pub name: String,
    pub content_type: Option<String>,
    pub attachment_type: String,
    pub data: Vec<u8>,
}

#[derive(Debug, Clone)]
pub struct NewUserReport {
    pub project_id: i64,
    pub event_id: Uuid,
    pub name: String,
    pub email: String,
    pub comments: String,
}

#[derive(Debug, Clone, Default)]
pub struct SessionCounts {
    pub total: i64,
    pub errored: i64,
    pub crashed: i64,
    pub abnormal: i64,
}

#[derive(Debug, Clone)]
pub struct NewSessions {
    pub project_id: i64,
    /// Set for single session updates, so repeats are counted once;
    /// aggregates carry no id.
    pub sid: Option<Uuid>,
    pub release: String,
    pub environment: String,
    pub started: DateTime<Utc>,
    pub counts: SessionCounts,
}

#[derive(Debug, Clone)]
pub struct NewOutcome {
    pub project_id: i64,
    pub timestamp: DateTime<Utc>,
    pub outcome: String,
    pub reason: String,
    pub category: String,
    pub quantity: i64,
}

#[derive(Debug, Clone)]
pub struct NewCheckIn {
    pub project_id: i64,
    pub check_in_id: Uuid,
    pub monitor_slug: String,
    pub status: String,
    pub duration: Option<f64>,
    pub environment: Option<String>,
    pub monitor_config: Option<Value>,
    pub received: DateTime<Utc>,
}

/// Everything ingest persists. Items from one request are written together.
#[derive(Debug, Clone)]
pub enum NewItem {
    Event(Box<NewEvent>),
    Attachment(NewAttachment),
    UserReport(NewUserReport),
    Sessions(NewSessions),
    Outcome(NewOutcome),
    CheckIn(NewCheckIn),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WriteOutcome {
    Event {
        issue_id: Option<i64>,
        new_issue: bool,
        regression: bool,
    },
    /// The event id was already stored (an SDK retry); nothing changed.
    DuplicateEvent,
    Other,
}

fn hour_of(t: DateTime<Utc>) -> DateTime<Utc> {
    t.duration_trunc(TimeDelta::hours(1)).unwrap_or(t)
}

/// Per request of a batch: its outcomes, or why the database refused it.
pub type BatchResults = Vec<std::result::Result<Vec<WriteOutcome>, String>>;

impl Store {
    /// [`write_batch_on`] on a connection from the pool.
    pub async fn write_batch(&self, batch: &[Vec<NewItem>]) -> Result<BatchResults> {
        let mut conn = self.pool.acquire().await?;
        write_batch_on(&mut conn, batch).await
    }

    /// A connection outside the pool, for the batch writer: it lives on its
    /// own thread and must never wait for a pool slot.
    pub async fn connect_writer(&self) -> Result<PgConnection> {
        let options = self.pool.connect_options();
        Ok(tokio::time::timeout(
            std::time::Duration::from_secs(5),
            PgConnection::connect_with(&options),
        )
        .await
        .map_err(|_| sqlx::Error::PoolTimedOut)??)
    }
}

/// Writes a batch of requests' items in one transaction. Returns, per
/// request, either its outcomes or why the database refused it. An `Err`
/// means nothing was written and the whole batch may be retried.
pub async fn write_batch_on(
    conn: &mut PgConnection,
    batch: &[Vec<NewItem>],
) -> Result<BatchResults> {
    let requests: Vec<&[NewItem]> = batch.iter().map(Vec::as_slice).collect();
    let mut tx = conn.begin().await?;
    lock_fingerprints(&mut tx, batch).await?;
    match write_requests(&mut tx, &requests).await {
        Ok(outcomes) => {
            tx.commit().await?;
            return Ok(outcomes.into_iter().map(Ok).collect());
        }
        Err(e) if refused(&e) => {
            tracing::warn!(error = %e, requests = batch.len(), "batch refused; writing its requests one by one");
            tx.rollback().await?;
        }
        Err(e) => return Err(e.into()),
    }

    let mut tx = conn.begin().await?;
    lock_fingerprints(&mut tx, batch).await?;
    let mut results = Vec::with_capacity(batch.len());
    for request in requests {
        sqlx::query("SAVEPOINT request").execute(&mut *tx).await?;
        match write_requests(&mut tx, &[request]).await {
            Ok(mut outcomes) => {
                sqlx::query("RELEASE SAVEPOINT request")
                    .execute(&mut *tx)
                    .await?;
                results.push(Ok(outcomes.pop().unwrap_or_default()));
            }
            Err(e) if refused(&e) => {
                sqlx::query("ROLLBACK TO SAVEPOINT request")
                    .execute(&mut *tx)
                    .await?;
                results.push(Err(e.to_string()));
            }
            Err(e) => return Err(e.into()),
        }
    }
    tx.commit().await?;
    Ok(results)
}

/// Whether PostgreSQL refused the data itself (and would again), as opposed
/// to a failure worth retrying: lost connections, deadlocks, serialisation
/// failures, shutdowns, a concurrently deleted issue.
fn refused(e: &sqlx::Error) -> bool {
    match e {
        sqlx::Error::Database(db) => db.code().is_some_and(|code| {
            // 22: data exception, 23: integrity constraint, 54: program
            // limit exceeded (e.g. an index row too large).
            matches!(code.get(..2), Some("22" | "23" | "54"))
        }),
        sqlx::Error::Encode(_) => true,
        _ => false,
    }
}

/// Writes every request's items; events of all requests together.
async fn write_requests(
    conn: &mut PgConnection,
    requests: &[&[NewItem]],
) -> std::result::Result<Vec<Vec<WriteOutcome>>, sqlx::Error> {
    let events: Vec<&NewEvent> = requests
        .iter()
        .flat_map(|items| items.iter())
        .filter_map(|item| match item {
            NewItem::Event(e) => Some(&**e),
            _ => None,
        })
        .collect();
    let mut event_outcomes = if events.is_empty() {
        Vec::new()
    } else {
        events::write_events(conn, &events).await?
    }
    .into_iter();
    let mut results = Vec::with_capacity(requests.len());
    for items in requests {
        let mut outcomes = Vec::with_capacity(items.len());
        for item in items.iter() {
            outcomes.push(match item {
                NewItem::Event(_) => event_outcomes.next().expect("one outcome per event"),
                other => other::write_other(conn, other).await?,
            });
        }
        results.push(outcomes);
    }
    Ok(results)
}

/// Several `snag serve` processes may see the same new fingerprint at the
/// same moment; without serialising them each would create its own issue.
/// Transaction-scoped advisory locks on the primary hashes do that, taken in
/// sorted order so two batches can never deadlock on each other.
async fn lock_fingerprints(conn: &mut PgConnection, batch: &[Vec<NewItem>]) -> Result<()> {
    let mut keys: Vec<String> = batch
        .iter()
        .flatten()
        .filter_map(|item| match item {
            NewItem::Event(e) => e.hashes.first().map(|h| format!("{}:{h}", e.project_id)),
            _ => None,
        })
        .collect();
    if keys.is_empty() {
        return Ok(());
    }
    keys.sort_unstable();
    keys.dedup();
    sqlx::query(
        "SELECT pg_advisory_xact_lock(hashtextextended(k, 0)) FROM UNNEST($1::text[]) WITH ORDINALITY AS t(k, n) ORDER BY n",
    )
    .bind(&keys)
    .execute(&mut *conn)
    .await?;
    Ok(())
}
