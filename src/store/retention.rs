//! Retention: deleting what has outlived a project's limits, in small
//! statements so ingest never waits behind one big delete.

use super::{Result, Store, StoreError};
use chrono::{DateTime, Utc};

/// A project's effective limits: its own setting, else the instance
/// default; `None` means no limit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProjectRetention {
    pub project_id: i64,
    pub days: Option<i64>,
    pub max_events: Option<i64>,
}

/// What a project stores itself (NULL = instance default, 0 = unlimited).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, sqlx::FromRow)]
pub struct RetentionSettings {
    pub retention_days: Option<i32>,
    pub max_events: Option<i64>,
}

/// Rows one purge statement removed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Purged {
    pub events: u64,
    pub attachments: u64,
}

fn effective(own: Option<i64>, default: Option<i64>) -> Option<i64> {
    match own {
        Some(0) => None,
        Some(n) => Some(n),
        None => default.filter(|n| *n > 0),
    }
}

/// Deletes the selected events and, in the same statement, the attachments
/// and user feedback stored under their ids (those are keyed by
/// (project_id, event_id), not by a foreign key, so nothing cascades).
const DELETE_EVENTS_WITH_DEPENDENTS: &str = "
    , gone AS (
        DELETE FROM event e USING doomed d WHERE e.id = d.id
        RETURNING e.project_id, e.event_id
    ), attachments AS (
        DELETE FROM attachment a USING gone g
         WHERE a.project_id = g.project_id AND a.event_id = g.event_id
        RETURNING 1
    ), reports AS (
        DELETE FROM user_report r USING gone g
         WHERE r.project_id = g.project_id AND r.event_id = g.event_id
        RETURNING 1
    )
    SELECT (SELECT count(*) FROM gone), (SELECT count(*) FROM attachments)";

impl Store {
    pub async fn retention_settings(&self, project_id: i64) -> Result<RetentionSettings> {
        sqlx::query_as("SELECT retention_days, max_events FROM project WHERE id = $1")
            .bind(project_id)
            .fetch_optional(&self.pool)
            .await?
            .ok_or(StoreError::NotFound)
    }

    pub async fn set_retention_settings(
        &self,
        project_id: i64,
        settings: RetentionSettings,
    ) -> Result<()> {
        let done =
            sqlx::query("UPDATE project SET retention_days = $2, max_events = $3 WHERE id = $1")
                .bind(project_id)
                .bind(settings.retention_days)
                .bind(settings.max_events)
                .execute(&self.pool)
                .await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound);
        }
        Ok(())
    }

    /// Every project with the limits that apply to it.
    pub async fn retention_targets(
        &self,
        default_days: Option<i64>,
        default_max_events: Option<i64>,
    ) -> Result<Vec<ProjectRetention>> {
        let rows: Vec<(i64, Option<i32>, Option<i64>)> =
            sqlx::query_as("SELECT id, retention_days, max_events FROM project ORDER BY id")
                .fetch_all(&self.pool)
                .await?;
        Ok(rows
            .into_iter()
            .map(|(project_id, days, max_events)| ProjectRetention {
                project_id,
                days: effective(days.map(i64::from), default_days),
                max_events: effective(max_events, default_max_events),
            })
            .collect())
    }

    /// Deletes up to `limit` events received before `cutoff`, with their
    /// attachments and feedback. Rows another transaction holds are skipped
    /// (the next pass gets them), so this never waits on ingest.
    pub async fn purge_events_before(
        &self,
        project_id: i64,
        cutoff: DateTime<Utc>,
        limit: i64,
    ) -> Result<Purged> {
        let sql = format!(
            "WITH doomed AS (
                SELECT id FROM event WHERE project_id = $1 AND received_at < $2
                 LIMIT $3 FOR UPDATE SKIP LOCKED
            ){DELETE_EVENTS_WITH_DEPENDENTS}"
        );
        let (events, attachments): (i64, i64) = sqlx::query_as(sqlx::AssertSqlSafe(sql))
            .bind(project_id)
            .bind(cutoff)
            .bind(limit)
            .fetch_one(&self.pool)
            .await?;
        Ok(Purged {
            events: events as u64,
            attachments: attachments as u64,
        })
    }

    /// The newest event beyond a project's cap (`keep` newest events stay):
    /// everything at or before it goes. None when the project is under cap.
    pub async fn event_cap_boundary(
        &self,
        project_id: i64,
        keep: i64,
    ) -> Result<Option<(DateTime<Utc>, i64)>> {
        Ok(sqlx::query_as(
            "SELECT received_at, id FROM event WHERE project_id = $1
              ORDER BY received_at DESC, id DESC OFFSET $2 LIMIT 1",
        )
        .bind(project_id)
        .bind(keep.max(0))
        .fetch_optional(&self.pool)
        .await?)
    }

    /// Deletes up to `limit` events at or before `boundary` (from
    /// `event_cap_boundary`), with their attachments and feedback.
    pub async fn purge_events_through(
        &self,
        project_id: i64,
        boundary: (DateTime<Utc>, i64),
        limit: i64,
    ) -> Result<Purged> {
        let sql = format!(
            "WITH doomed AS (
                SELECT id FROM event
                 WHERE project_id = $1 AND received_at <= $2 AND (received_at, id) <= ($2, $3)
                 LIMIT $4 FOR UPDATE SKIP LOCKED
            ){DELETE_EVENTS_WITH_DEPENDENTS}"
        );
        let (events, attachments): (i64, i64) = sqlx::query_as(sqlx::AssertSqlSafe(sql))
            .bind(project_id)
            .bind(boundary.0)
            .bind(boundary.1)
            .bind(limit)
            .fetch_one(&self.pool)
            .await?;
        Ok(Purged {
            events: events as u64,
            attachments: attachments as u64,
        })
    }

    /// Deletes up to `limit` rows of each kind of per-project data older
    /// than `cutoff` that is not an event: attachments and feedback whose
    /// event never arrived, hourly outcome and session counts, check-ins,
    /// session dedupe ids. Returns the rows deleted.
    pub async fn purge_side_data_before(
        &self,
        project_id: i64,
        cutoff: DateTime<Utc>,
        limit: i64,
    ) -> Result<u64> {
        let mut total = 0;
        for sql in [
            "DELETE FROM attachment WHERE id IN (SELECT id FROM attachment
              WHERE project_id = $1 AND created_at < $2 LIMIT $3 FOR UPDATE SKIP LOCKED)",
            "DELETE FROM user_report WHERE id IN (SELECT id FROM user_report
              WHERE project_id = $1 AND created_at < $2 LIMIT $3 FOR UPDATE SKIP LOCKED)",
            "DELETE FROM outcome_hourly WHERE ctid IN (SELECT ctid FROM outcome_hourly
              WHERE project_id = $1 AND hour < $2 LIMIT $3 FOR UPDATE SKIP LOCKED)",
            "DELETE FROM session_hourly WHERE ctid IN (SELECT ctid FROM session_hourly
              WHERE project_id = $1 AND hour < $2 LIMIT $3 FOR UPDATE SKIP LOCKED)",
            "DELETE FROM session_seen WHERE ctid IN (SELECT ctid FROM session_seen
              WHERE project_id = $1 AND first_seen < $2 LIMIT $3 FOR UPDATE SKIP LOCKED)",
            "DELETE FROM monitor_check_in WHERE id IN (SELECT c.id FROM monitor_check_in c
              JOIN monitor m ON m.id = c.monitor_id
              WHERE m.project_id = $1 AND c.created_at < $2 LIMIT $3 FOR UPDATE OF c SKIP LOCKED)",
        ] {
            total += sqlx::query(sql)
                .bind(project_id)
                .bind(cutoff)
                .bind(limit)
                .execute(&self.pool)
                .await?
                .rows_affected();
        }
        Ok(total)
    }

    /// Deletes up to `limit` issues last seen before `cutoff` that have no
    /// events left. Their grouping hashes are locked the way the ingest
    /// writer locks them, so an event arriving for such an issue either
    /// lands before the delete or creates a fresh issue after it.
    pub async fn purge_stale_issues(
        &self,
        project_id: i64,
        cutoff: DateTime<Utc>,
        limit: i64,
    ) -> Result<u64> {
        let mut tx = self.pool.begin().await?;
        let ids: Vec<i64> = sqlx::query_scalar(
            "SELECT i.id FROM issue i
              WHERE i.project_id = $1 AND i.last_seen < $2
                AND NOT EXISTS (SELECT 1 FROM event e WHERE e.issue_id = i.id)
              ORDER BY i.id LIMIT $3 FOR UPDATE SKIP LOCKED",
        )
        .bind(project_id)
        .bind(cutoff)
        .bind(limit)
        .fetch_all(&mut *tx)
        .await?;
        if ids.is_empty() {
            return Ok(0);
        }
        lock_issue_hashes(&mut tx, &ids).await?;
        let done = sqlx::query(
            "DELETE FROM issue i WHERE i.id = ANY($1)
                AND NOT EXISTS (SELECT 1 FROM event e WHERE e.issue_id = i.id)",
        )
        .bind(&ids)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(done.rows_affected())
    }

    /// Deletes an issue with its events (cascade) and the attachments and
    /// feedback stored under those events' ids. Returns the attachments
    /// deleted.
    pub async fn delete_issue_with_dependents(&self, issue_id: i64) -> Result<u64> {
        let mut tx = self.pool.begin().await?;
        let found: Option<i64> = sqlx::query_scalar("SELECT id FROM issue WHERE id = $1")
            .bind(issue_id)
            .fetch_optional(&mut *tx)
            .await?;
        if found.is_none() {
            return Err(StoreError::NotFound);
        }
        lock_issue_hashes(&mut tx, &[issue_id]).await?;
        let attachments = sqlx::query(
            "DELETE FROM attachment a USING event e
              WHERE e.issue_id = $1 AND a.project_id = e.project_id AND a.event_id = e.event_id",
        )
        .bind(issue_id)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        sqlx::query(
            "DELETE FROM user_report r USING event e
              WHERE e.issue_id = $1 AND r.project_id = e.project_id AND r.event_id = e.event_id",
        )
        .bind(issue_id)
        .execute(&mut *tx)
        .await?;
        sqlx::query("DELETE FROM issue WHERE id = $1")
            .bind(issue_id)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(attachments)
    }

    /// The purge lock, unless another process holds it (several `snag
    /// serve` processes share one database; one purge at a time is enough).
    pub async fn try_purge_lock(&self) -> Result<Option<PurgeLock>> {
        let mut conn = self.pool.acquire().await?.detach();
        let got: bool = sqlx::query_scalar("SELECT pg_try_advisory_lock($1)")
            .bind(PURGE_LOCK_KEY)
            .fetch_one(&mut conn)
            .await?;
        Ok(got.then_some(PurgeLock { conn: Some(conn) }))
    }
}

/// Session-level advisory lock key for the purge job ("snagpurg").
const PURGE_LOCK_KEY: i64 = 0x736e_6167_7075_7267;

/// Held while one process purges; released when dropped (the dedicated
/// connection closes, which releases a session advisory lock).
pub struct PurgeLock {
    conn: Option<sqlx::PgConnection>,
}

impl PurgeLock {
    pub async fn release(mut self) {
        if let Some(conn) = self.conn.take() {
            use sqlx::Connection;
            let _ = conn.close().await;
        }
    }
}

/// The same transaction-scoped advisory locks the ingest writer takes on
/// primary grouping hashes, in the same (sorted) order so the two can never
/// deadlock.
async fn lock_issue_hashes(
    tx: &mut sqlx::Transaction<'static, sqlx::Postgres>,
    issue_ids: &[i64],
) -> Result<()> {
    let rows: Vec<(i64, String)> =
        sqlx::query_as("SELECT project_id, hash FROM issue_hash WHERE issue_id = ANY($1)")
            .bind(issue_ids)
            .fetch_all(&mut **tx)
            .await?;
    let mut keys: Vec<String> = rows.iter().map(|(p, h)| format!("{p}:{h}")).collect();
    if keys.is_empty() {
        return Ok(());
    }
    keys.sort_unstable();
    keys.dedup();
    sqlx::query(
        "SELECT pg_advisory_xact_lock(hashtextextended(k, 0)) FROM UNNEST($1::text[]) WITH ORDINALITY AS t(k, n) ORDER BY n",
    )
    .bind(&keys)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::effective;

    #[test]
    fn project_setting_beats_default_and_zero_means_unlimited() {
        assert_eq!(effective(None, Some(90)), Some(90));
        assert_eq!(effective(Some(7), Some(90)), Some(7));
        assert_eq!(effective(Some(0), Some(90)), None);
        assert_eq!(effective(None, None), None);
        assert_eq!(effective(None, Some(0)), None);
    }
}
