use super::{Result, Store};
use chrono::{DateTime, Utc};
use sqlx::{Postgres, Transaction};

/// An outbox row joined with what an alert email shows.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct PendingAlert {
    pub id: i64,
    pub kind: String,
    pub attempts: i32,
    pub project_id: i64,
    pub project_name: String,
    pub project_slug: String,
    pub issue_id: i64,
    pub short_id: i64,
    pub title: String,
    pub culprit: String,
    pub level: String,
    pub times_seen: i64,
    pub last_release: Option<String>,
    pub last_event_id: Option<uuid::Uuid>,
    /// Sent alerts of the same issue and kind within the cool-down window.
    pub recently_sent: bool,
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct AlertDelivery {
    pub id: i64,
    pub issue_id: i64,
    pub title: String,
    pub kind: String,
    pub status: String,
    pub attempts: i32,
    pub created_at: DateTime<Utc>,
    pub sent_at: Option<DateTime<Utc>>,
    pub last_error: Option<String>,
}

/// A claim on due outbox rows. The rows stay locked (`FOR UPDATE SKIP
/// LOCKED`) until `finish`, so concurrent workers in other processes skip
/// them; a crash before `finish` releases them for one more attempt.
pub struct AlertClaim {
    tx: Transaction<'static, Postgres>,
    pub alerts: Vec<PendingAlert>,
}

pub enum AlertResult {
    Sent {
        recipients: Vec<String>,
        digest: bool,
    },
    Suppressed,
    Skipped(String),
    Retry {
        error: String,
        delay_secs: i64,
    },
    /// Held back to join the next digest; not a failed attempt.
    Defer {
        delay_secs: i64,
    },
    Failed(String),
}

impl Store {
    pub async fn claim_alerts(&self, limit: i64, cooldown_secs: i64) -> Result<AlertClaim> {
        let mut tx = self.pool.begin().await?;
        let alerts = sqlx::query_as(
            "WITH due AS (
                SELECT id FROM alert_outbox
                 WHERE status = 'pending' AND next_attempt_at <= now()
                 ORDER BY id LIMIT $1
                 FOR UPDATE SKIP LOCKED)
             SELECT o.id, o.kind, o.attempts, p.id AS project_id, p.name AS project_name, p.slug AS project_slug,
                    i.id AS issue_id, i.short_id, i.title, i.culprit, i.level, i.times_seen, i.last_release,
                    i.last_event_id,
                    EXISTS (SELECT 1 FROM alert_outbox s
                             WHERE s.issue_id = o.issue_id AND s.kind = o.kind AND s.status = 'sent'
                               AND s.sent_at > now() - make_interval(secs => $2)) AS recently_sent
               FROM due JOIN alert_outbox o ON o.id = due.id
               JOIN issue i ON i.id = o.issue_id
               JOIN project p ON p.id = o.project_id
              ORDER BY o.id",
        )
        .bind(limit)
        .bind(cooldown_secs as f64)
        .fetch_all(&mut *tx)
        .await?;
        Ok(AlertClaim { tx, alerts })
    }

    /// Active users of the project's organization: the alert recipients.
    pub async fn alert_recipients(&self, project_id: i64) -> Result<Vec<String>> {
        Ok(sqlx::query_scalar(
            "SELECT u.email FROM users u
               JOIN organization_member m ON m.user_id = u.id
               JOIN project p ON p.organization_id = m.organization_id
              WHERE p.id = $1 AND u.is_active
              ORDER BY u.email",
        )
        .bind(project_id)
        .fetch_all(&self.pool)
        .await?)
    }

    pub async fn alert_deliveries(
        &self,
        project_id: i64,
        limit: i64,
    ) -> Result<Vec<AlertDelivery>> {
        Ok(sqlx::query_as(
            "SELECT o.id, o.issue_id, i.title, o.kind, o.status, o.attempts, o.created_at, o.sent_at, o.last_error
               FROM alert_outbox o JOIN issue i ON i.id = o.issue_id
              WHERE o.project_id = $1 ORDER BY o.id DESC LIMIT $2",
        )
        .bind(project_id)
        .bind(limit)
        .fetch_all(&self.pool)
        .await?)
    }

    /// Individual alerts sent for the project within the window, and the
    /// seconds since its last digest (None: no digest in the window).
    pub async fn alert_pressure(
        &self,
        project_id: i64,
        window_secs: i64,
    ) -> Result<(i64, Option<f64>)> {
        Ok(sqlx::query_as(
            "SELECT count(*) FILTER (WHERE NOT digest),
                    EXTRACT(EPOCH FROM now() - max(sent_at) FILTER (WHERE digest))::float8
               FROM alert_outbox
              WHERE project_id = $1 AND status = 'sent' AND sent_at > now() - make_interval(secs => $2)",
        )
        .bind(project_id)
        .bind(window_secs as f64)
        .fetch_one(&self.pool)
        .await?)
    }

    pub async fn alert_backlog(&self) -> Result<i64> {
        Ok(
            sqlx::query_scalar("SELECT count(*) FROM alert_outbox WHERE status = 'pending'")
                .fetch_one(&self.pool)
                .await?,
        )
    }
}

impl AlertClaim {
    pub async fn record(&mut self, id: i64, result: &AlertResult) -> Result<()> {
        let q = match result {
            AlertResult::Sent { recipients, digest } => sqlx::query(
                "UPDATE alert_outbox SET status = 'sent', sent_at = now(), attempts = attempts + 1,
                        recipients = $2, digest = $3, last_error = NULL WHERE id = $1",
            )
            .bind(id)
            .bind(recipients.clone())
            .bind(*digest),
            AlertResult::Suppressed => {
                sqlx::query("UPDATE alert_outbox SET status = 'suppressed', last_error = 'cool-down' WHERE id = $1")
                    .bind(id)
            }
            AlertResult::Skipped(why) => {
                sqlx::query("UPDATE alert_outbox SET status = 'skipped', last_error = $2 WHERE id = $1")
                    .bind(id)
                    .bind(why.clone())
            }
            AlertResult::Retry { error, delay_secs } => sqlx::query(
                "UPDATE alert_outbox SET attempts = attempts + 1, last_error = $2,
                        next_attempt_at = now() + make_interval(secs => $3) WHERE id = $1",
            )
            .bind(id)
            .bind(error.clone())
            .bind(*delay_secs as f64),
            AlertResult::Defer { delay_secs } => {
                sqlx::query("UPDATE alert_outbox SET next_attempt_at = now() + make_interval(secs => $2) WHERE id = $1")
                    .bind(id)
                    .bind(*delay_secs as f64)
            }
            AlertResult::Failed(error) => sqlx::query(
                "UPDATE alert_outbox SET status = 'failed', attempts = attempts + 1, last_error = $2 WHERE id = $1",
            )
            .bind(id)
            .bind(error.clone()),
        };
        q.execute(&mut *self.tx).await?;
        Ok(())
    }

    pub async fn finish(self) -> Result<()> {
        self.tx.commit().await?;
        Ok(())
    }
}
