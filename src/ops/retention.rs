//! The retention job: events older than a project's retention or beyond its
//! event cap are deleted with their attachments, in bounded batches with
//! pauses, by one process at a time.

use crate::app::AppState;
use crate::config::RetentionPolicy;
use crate::ops::metrics::Metrics;
use crate::store::{Store, StoreError};
use chrono::Utc;
use std::sync::Arc;
use std::time::Duration;

/// What one pass deleted.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PurgeReport {
    pub projects: usize,
    pub expired_events: u64,
    pub capped_events: u64,
    pub attachments: u64,
    pub side_rows: u64,
    pub issues: u64,
    /// Delete statements issued; each touches at most `batch` rows.
    pub statements: u64,
}

impl std::fmt::Display for PurgeReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "purged {} expired and {} over-cap event(s), {} attachment(s), {} other row(s), {} issue(s) in {} project(s) ({} statements)",
            self.expired_events,
            self.capped_events,
            self.attachments,
            self.side_rows,
            self.issues,
            self.projects,
            self.statements
        )
    }
}

/// Whether to keep going; the background job stops when the server drains.
pub trait Cancel: Sync {
    fn cancelled(&self) -> bool;
}

pub struct Never;

impl Cancel for Never {
    fn cancelled(&self) -> bool {
        false
    }
}

impl Cancel for AppState {
    fn cancelled(&self) -> bool {
        self.shutting_down()
    }
}

/// One full pass over every project. Each statement deletes at most
/// `policy.batch` rows and is followed by `policy.pause`, so ingest keeps
/// its share of the database while a large backlog is worked off.
pub async fn purge_once(
    store: &Store,
    policy: &RetentionPolicy,
    cancel: &dyn Cancel,
) -> Result<PurgeReport, StoreError> {
    let mut report = PurgeReport::default();
    let targets = store
        .retention_targets(policy.days, policy.max_events)
        .await?;
    report.projects = targets.len();
    let batch = policy.batch.max(1);
    let mut statements = 0;
    for target in targets {
        let project = target.project_id;
        let cutoff = target
            .days
            .map(|days| Utc::now() - chrono::Duration::days(days));
        if let Some(cutoff) = cutoff {
            let (events, attachments) =
                repeat(policy, cancel, &mut statements, move || async move {
                    let p = store.purge_events_before(project, cutoff, batch).await?;
                    Ok((p.events, p.attachments))
                })
                .await?;
            report.expired_events += events;
            report.attachments += attachments;
            let (rows, _) = repeat(policy, cancel, &mut statements, move || async move {
                Ok((
                    store.purge_side_data_before(project, cutoff, batch).await?,
                    0,
                ))
            })
            .await?;
            report.side_rows += rows;
        }
        if let Some(keep) = target.max_events
            && let Some(boundary) = store.event_cap_boundary(project, keep).await?
        {
            let (events, attachments) =
                repeat(policy, cancel, &mut statements, move || async move {
                    let p = store.purge_events_through(project, boundary, batch).await?;
                    Ok((p.events, p.attachments))
                })
                .await?;
            report.capped_events += events;
            report.attachments += attachments;
        }
        if let Some(cutoff) = cutoff {
            // Deleting an issue cascades to its tags, hashes and counters,
            // so these statements take fewer rows.
            let issue_batch = (batch / 10).max(1);
            let (issues, _) = repeat(policy, cancel, &mut statements, move || async move {
                Ok((
                    store
                        .purge_stale_issues(project, cutoff, issue_batch)
                        .await?,
                    0,
                ))
            })
            .await?;
            report.issues += issues;
        }
        if cancel.cancelled() {
            break;
        }
    }
    report.statements = statements;
    Ok(report)
}

/// Repeats one bounded delete until it removes nothing, pausing between
/// statements. Returns the summed (rows, attachments).
async fn repeat<F, Fut>(
    policy: &RetentionPolicy,
    cancel: &dyn Cancel,
    statements: &mut u64,
    mut step: F,
) -> Result<(u64, u64), StoreError>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<(u64, u64), StoreError>>,
{
    let (mut rows, mut attachments) = (0, 0);
    loop {
        let (n, a) = step().await?;
        *statements += 1;
        rows += n;
        attachments += a;
        if n == 0 || cancel.cancelled() {
            return Ok((rows, attachments));
        }
        if !policy.pause.is_zero() {
            tokio::time::sleep(policy.pause).await;
        }
    }
}

/// Runs `purge_once` every `policy.interval` in the background, starting
/// shortly after boot; only the process holding the purge lock works.
pub fn spawn(state: &AppState) -> Option<tokio::task::JoinHandle<()>> {
    let policy = state.config.retention.clone();
    if policy.interval.is_zero() {
        tracing::info!("retention job disabled (SNAG_RETENTION_INTERVAL_SECS=0)");
        return None;
    }
    let state = state.clone();
    Some(tokio::spawn(async move {
        // Let the server settle (and a reload's old process exit) first.
        pause(&state, policy.interval.min(Duration::from_secs(30))).await;
        while !state.shutting_down() {
            run_locked(&state.store, &policy, &state, &state.metrics).await;
            pause(&state, policy.interval).await;
        }
    }))
}

/// Sleeps for `total`, waking early when the server starts shutting down.
async fn pause(state: &AppState, total: Duration) {
    let until = tokio::time::Instant::now() + total;
    while !state.shutting_down() && tokio::time::Instant::now() < until {
        tokio::time::sleep_until(until.min(tokio::time::Instant::now() + Duration::from_secs(1)))
            .await;
    }
}

pub async fn run_locked(
    store: &Store,
    policy: &RetentionPolicy,
    cancel: &dyn Cancel,
    metrics: &Arc<Metrics>,
) -> Option<PurgeReport> {
    let lock = match store.try_purge_lock().await {
        Ok(Some(lock)) => lock,
        Ok(None) => {
            tracing::debug!("another process is purging; skipping this pass");
            return None;
        }
        Err(e) => {
            tracing::warn!(error = %e, "retention pass could not start");
            return None;
        }
    };
    let started = std::time::Instant::now();
    let result = match purge_once(store, policy, cancel).await {
        Ok(report) => {
            metrics.observe_purge(&report, started.elapsed());
            tracing::info!(
                expired_events = report.expired_events,
                capped_events = report.capped_events,
                attachments = report.attachments,
                side_rows = report.side_rows,
                issues = report.issues,
                statements = report.statements,
                duration_ms = started.elapsed().as_millis() as u64,
                "retention pass done"
            );
            Some(report)
        }
        Err(e) => {
            tracing::warn!(error = %e, "retention pass failed");
            None
        }
    };
    lock.release().await;
    result
}
