//! The alert outbox, rules, recipients, webhooks and account email.

use super::{Result, Store, StoreError};
use chrono::{DateTime, Utc};
use sqlx::{Postgres, Transaction};

/// Rule kinds, in the order the settings page lists them. The first three
/// are raised by the ingest write path, `frequency` by the alert worker.
pub const ALERT_KINDS: [&str; 4] = ["new_issue", "regression", "escalating", "frequency"];

/// Event levels from least to most severe; a rule's minimum level lets
/// through this level and every one after it.
pub const LEVELS: [&str; 5] = ["debug", "info", "warning", "error", "fatal"];

pub const DEFAULT_FREQUENCY_THRESHOLD: i64 = 100;
pub const DEFAULT_FREQUENCY_WINDOW_MINUTES: i32 = 60;

pub fn level_rank(level: &str) -> Option<usize> {
    let level = match level {
        "critical" => "fatal",
        "warn" => "warning",
        "log" => "info",
        other => other,
    };
    LEVELS.iter().position(|l| *l == level)
}

/// One rule of a project; projects without a stored row get the default:
/// on, no filters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AlertRule {
    pub kind: String,
    pub enabled: bool,
    pub min_level: Option<String>,
    pub environment: Option<String>,
    /// Frequency rules: more than `threshold` events in `window_minutes`.
    pub threshold: i64,
    pub window_minutes: i32,
}

impl AlertRule {
    pub fn default_for(kind: &str) -> Self {
        Self {
            kind: kind.to_string(),
            enabled: true,
            min_level: None,
            environment: None,
            threshold: DEFAULT_FREQUENCY_THRESHOLD,
            window_minutes: DEFAULT_FREQUENCY_WINDOW_MINUTES,
        }
    }

    /// Why an event with this level and environment does not pass the
    /// rule's filters, or None when it does.
    pub fn rejects(&self, level: Option<&str>, environment: Option<&str>) -> Option<String> {
        if let Some(min) = &self.min_level {
            let min_rank = level_rank(min).unwrap_or(0);
            // An unknown level counts as error, Sentry's default level.
            let rank = level.and_then(level_rank).unwrap_or(3);
            if rank < min_rank {
                return Some(format!("level {} is below {min}", level.unwrap_or("error")));
            }
        }
        if let Some(want) = &self.environment
            && environment != Some(want.as_str())
        {
            return Some(format!(
                "environment {} is not {want}",
                environment.unwrap_or("(none)")
            ));
        }
        None
    }
}

#[derive(sqlx::FromRow)]
struct RuleRow {
    kind: String,
    enabled: bool,
    min_level: Option<String>,
    environment: Option<String>,
    threshold: Option<i64>,
    window_minutes: Option<i32>,
}

/// An outbox row joined with what a notification shows and what decides
/// whether it goes out.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct PendingAlert {
    pub id: i64,
    pub kind: String,
    pub attempts: i32,
    /// `email` or `webhook`.
    pub channel: String,
    pub webhook_id: Option<i64>,
    pub webhook_url: Option<String>,
    pub webhook_secret: Option<String>,
    pub webhook_enabled: Option<bool>,
    pub project_id: i64,
    pub project_name: String,
    pub project_slug: String,
    pub issue_id: i64,
    pub short_id: i64,
    pub title: String,
    pub culprit: String,
    pub level: String,
    pub status: String,
    pub times_seen: i64,
    pub last_release: Option<String>,
    pub last_event_id: Option<uuid::Uuid>,
    /// The event that raised the alert: the issue's newest when the alert
    /// was written.
    pub event_id: Option<uuid::Uuid>,
    pub event_level: Option<String>,
    pub event_environment: Option<String>,
    pub event_release: Option<String>,
    pub rule_enabled: Option<bool>,
    pub rule_min_level: Option<String>,
    pub rule_environment: Option<String>,
    pub rule_threshold: Option<i64>,
    pub rule_window_minutes: Option<i32>,
    /// Sent alerts of the same issue, kind and destination within the
    /// cool-down window.
    pub recently_sent: bool,
}

impl PendingAlert {
    pub fn rule(&self) -> AlertRule {
        let default = AlertRule::default_for(&self.kind);
        AlertRule {
            enabled: self.rule_enabled.unwrap_or(default.enabled),
            min_level: self.rule_min_level.clone(),
            environment: self.rule_environment.clone(),
            threshold: self.rule_threshold.unwrap_or(default.threshold),
            window_minutes: self.rule_window_minutes.unwrap_or(default.window_minutes),
            kind: default.kind,
        }
    }
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct AlertDelivery {
    pub id: i64,
    pub issue_id: i64,
    pub title: String,
    pub kind: String,
    pub channel: String,
    pub webhook_url: Option<String>,
    pub status: String,
    pub attempts: i32,
    pub digest: bool,
    pub recipients: Vec<String>,
    pub created_at: DateTime<Utc>,
    pub next_attempt_at: DateTime<Utc>,
    pub sent_at: Option<DateTime<Utc>>,
    pub last_error: Option<String>,
}

impl AlertDelivery {
    /// What the deliveries page calls the row's state: a pending row that
    /// already failed once is "retrying".
    pub fn state(&self) -> &str {
        match self.status.as_str() {
            "pending" if self.attempts > 0 => "retrying",
            other => other,
        }
    }

    pub fn destination(&self) -> String {
        match (&self.webhook_url, self.channel.as_str()) {
            (Some(url), _) => url.clone(),
            (None, "email") if !self.recipients.is_empty() => self.recipients.join(", "),
            (None, channel) => channel.to_string(),
        }
    }
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct WebhookRow {
    pub id: i64,
    pub project_id: i64,
    pub url: String,
    pub secret: String,
    pub enabled: bool,
    pub created_at: DateTime<Utc>,
}

/// A claim on due outbox rows. The rows stay locked (`FOR UPDATE SKIP
/// LOCKED`) until `finish`, so concurrent workers in other processes skip
/// them; a crash before `finish` releases them for one more attempt.
pub struct AlertClaim {
    tx: Transaction<'static, Postgres>,
    pub alerts: Vec<PendingAlert>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum AlertResult {
    Sent {
        recipients: Vec<String>,
        digest: bool,
    },
    Suppressed,
    Skipped(String),
    /// A rule is off or its filters exclude the event.
    Filtered(String),
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

/// An account email (reset link, invitation) waiting for delivery.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct PendingMail {
    pub id: i64,
    pub recipient: String,
    pub subject: String,
    pub body_text: String,
    pub body_html: String,
    pub attempts: i32,
}

pub struct MailClaim {
    tx: Transaction<'static, Postgres>,
    pub mails: Vec<PendingMail>,
}

impl Store {
    pub async fn claim_alerts(&self, limit: i64, cooldown_secs: i64) -> Result<AlertClaim> {
        let mut tx = self.pool.begin().await?;
        // Fan new email rows out to the project's webhooks, once, in the
        // same transaction: a crash undoes both. Only fanned-out rows are
        // claimed below: a row committed between the two statements, or
        // locked by another process's fan-out, would otherwise be delivered
        // by email and never reach the webhooks.
        sqlx::query(
            "WITH fresh AS (
                SELECT id, project_id, issue_id, kind, created_at FROM alert_outbox
                 WHERE status = 'pending' AND channel = 'email' AND NOT fanned_out
                 ORDER BY id LIMIT $1
                 FOR UPDATE SKIP LOCKED),
             copies AS (
                INSERT INTO alert_outbox (project_id, issue_id, kind, created_at, channel, webhook_id, fanned_out)
                SELECT f.project_id, f.issue_id, f.kind, f.created_at, 'webhook', w.id, true
                  FROM fresh f JOIN webhook w ON w.project_id = f.project_id AND w.enabled
                 ORDER BY f.id, w.id)
             UPDATE alert_outbox SET fanned_out = true WHERE id IN (SELECT id FROM fresh)",
        )
        .bind(limit)
        .execute(&mut *tx)
        .await?;
        let alerts = sqlx::query_as(
            "WITH due AS (
                SELECT id FROM alert_outbox
                 WHERE status = 'pending' AND next_attempt_at <= now()
                   AND (channel <> 'email' OR fanned_out)
                 ORDER BY id LIMIT $1
                 FOR UPDATE SKIP LOCKED)
             SELECT o.id, o.kind, o.attempts, o.channel, o.webhook_id,
                    w.url AS webhook_url, w.secret AS webhook_secret, w.enabled AS webhook_enabled,
                    p.id AS project_id, p.name AS project_name, p.slug AS project_slug,
                    i.id AS issue_id, i.short_id, i.title, i.culprit, i.level, i.status, i.times_seen,
                    i.last_release, i.last_event_id,
                    COALESCE(at_alert.event_id, latest.event_id) AS event_id,
                    COALESCE(at_alert.level, latest.level) AS event_level,
                    CASE WHEN at_alert.event_id IS NULL THEN latest.environment ELSE at_alert.environment END
                        AS event_environment,
                    CASE WHEN at_alert.event_id IS NULL THEN latest.release ELSE at_alert.release END
                        AS event_release,
                    r.enabled AS rule_enabled, r.min_level AS rule_min_level,
                    r.environment AS rule_environment, r.threshold AS rule_threshold,
                    r.window_minutes AS rule_window_minutes,
                    EXISTS (SELECT 1 FROM alert_outbox s
                             WHERE s.issue_id = o.issue_id AND s.kind = o.kind AND s.status = 'sent'
                               AND s.channel = o.channel AND s.webhook_id IS NOT DISTINCT FROM o.webhook_id
                               AND s.sent_at > now() - make_interval(secs => $2)) AS recently_sent
               FROM due JOIN alert_outbox o ON o.id = due.id
               JOIN issue i ON i.id = o.issue_id
               JOIN project p ON p.id = o.project_id
               LEFT JOIN webhook w ON w.id = o.webhook_id
               LEFT JOIN alert_rule r ON r.project_id = o.project_id AND r.kind = o.kind
               LEFT JOIN LATERAL (
                    SELECT e.event_id, e.level, e.environment, e.release FROM event e
                     WHERE e.issue_id = o.issue_id AND e.received_at <= o.created_at
                     ORDER BY e.received_at DESC LIMIT 1) at_alert ON true
               LEFT JOIN LATERAL (
                    SELECT e.event_id, e.level, e.environment, e.release FROM event e
                     WHERE e.issue_id = o.issue_id
                     ORDER BY e.received_at DESC LIMIT 1) latest ON true
              ORDER BY o.id",
        )
        .bind(limit)
        .bind(cooldown_secs as f64)
        .fetch_all(&mut *tx)
        .await?;
        Ok(AlertClaim { tx, alerts })
    }

    /// Raises `frequency` alerts: unresolved issues of projects whose
    /// frequency rule is on that received more than the rule's threshold of
    /// events within its window, unless one was raised for the issue within
    /// `cooldown_secs` (or the window, if longer). Counting stops at
    /// threshold + 1 events per issue, using the (issue, received_at)
    /// index. One process evaluates at a time; returns the rows written.
    pub async fn raise_frequency_alerts(&self, cooldown_secs: i64) -> Result<u64> {
        let mut tx = self.pool.begin().await?;
        let locked: bool = sqlx::query_scalar("SELECT pg_try_advisory_xact_lock(7361002)")
            .fetch_one(&mut *tx)
            .await?;
        if !locked {
            return Ok(0);
        }
        let written = sqlx::query(
            "WITH rules AS (
                SELECT p.id AS project_id,
                       COALESCE(r.threshold, $1) AS threshold,
                       make_interval(mins => COALESCE(r.window_minutes, $2)) AS window
                  FROM project p
                  LEFT JOIN alert_rule r ON r.project_id = p.id AND r.kind = 'frequency'
                 WHERE COALESCE(r.enabled, true))
             INSERT INTO alert_outbox (project_id, issue_id, kind)
             SELECT i.project_id, i.id, 'frequency'
               FROM rules
               JOIN issue i ON i.project_id = rules.project_id AND i.status = 'unresolved'
                           AND i.last_seen > now() - rules.window AND i.times_seen > rules.threshold
              WHERE (SELECT count(*) FROM (
                        SELECT 1 FROM event e
                         WHERE e.issue_id = i.id AND e.received_at > now() - rules.window
                         LIMIT rules.threshold + 1) recent) > rules.threshold
                AND NOT EXISTS (
                        SELECT 1 FROM alert_outbox o
                         WHERE o.issue_id = i.id AND o.kind = 'frequency'
                           AND o.created_at > now() - GREATEST(rules.window, make_interval(secs => $3)))
              LIMIT 1000",
        )
        .bind(DEFAULT_FREQUENCY_THRESHOLD)
        .bind(DEFAULT_FREQUENCY_WINDOW_MINUTES)
        .bind(cooldown_secs as f64)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        tx.commit().await?;
        Ok(written)
    }

    /// Who gets a project's alert email: the members of the teams owning
    /// it, or every member of its organization when no team owns it;
    /// active users only, minus those who opted out for the project or
    /// for everything.
    pub async fn alert_recipients(&self, project_id: i64) -> Result<Vec<String>> {
        Ok(sqlx::query_scalar(
            "SELECT u.email FROM users u, project p
              WHERE p.id = $1 AND u.is_active AND u.alerts_enabled
                AND NOT EXISTS (SELECT 1 FROM alert_opt_out x WHERE x.user_id = u.id AND x.project_id = p.id)
                AND CASE WHEN EXISTS (SELECT 1 FROM project_team pt WHERE pt.project_id = p.id)
                         THEN EXISTS (SELECT 1 FROM project_team pt JOIN team_member tm ON tm.team_id = pt.team_id
                                       WHERE pt.project_id = p.id AND tm.user_id = u.id)
                         ELSE EXISTS (SELECT 1 FROM organization_member m
                                       WHERE m.organization_id = p.organization_id AND m.user_id = u.id)
                    END
              ORDER BY u.email",
        )
        .bind(project_id)
        .fetch_all(&self.pool)
        .await?)
    }

    /// Recent deliveries of a project, newest first; `state` filters by
    /// what [`AlertDelivery::state`] returns.
    pub async fn alert_deliveries(
        &self,
        project_id: i64,
        state: Option<&str>,
        limit: i64,
    ) -> Result<Vec<AlertDelivery>> {
        Ok(sqlx::query_as(
            "SELECT o.id, o.issue_id, i.title, o.kind, o.channel, w.url AS webhook_url, o.status,
                    o.attempts, o.digest, o.recipients, o.created_at, o.next_attempt_at, o.sent_at, o.last_error
               FROM alert_outbox o JOIN issue i ON i.id = o.issue_id
               LEFT JOIN webhook w ON w.id = o.webhook_id
              WHERE o.project_id = $1
                AND CASE $2::text
                      WHEN 'retrying' THEN o.status = 'pending' AND o.attempts > 0
                      WHEN 'pending' THEN o.status = 'pending' AND o.attempts = 0
                      ELSE $2::text IS NULL OR o.status = $2::text
                    END
              ORDER BY o.id DESC LIMIT $3",
        )
        .bind(project_id)
        .bind(state)
        .bind(limit)
        .fetch_all(&self.pool)
        .await?)
    }

    /// Individual alerts sent to one destination of the project within
    /// the window, and the seconds since its last digest (None: no digest
    /// in the window).
    pub async fn alert_pressure(
        &self,
        project_id: i64,
        channel: &str,
        webhook_id: Option<i64>,
        window_secs: i64,
    ) -> Result<(i64, Option<f64>)> {
        Ok(sqlx::query_as(
            "SELECT count(*) FILTER (WHERE NOT digest),
                    EXTRACT(EPOCH FROM now() - max(sent_at) FILTER (WHERE digest))::float8
               FROM alert_outbox
              WHERE project_id = $1 AND status = 'sent' AND sent_at > now() - make_interval(secs => $4)
                AND channel = $2 AND webhook_id IS NOT DISTINCT FROM $3",
        )
        .bind(project_id)
        .bind(channel)
        .bind(webhook_id)
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

    /// Every rule kind of a project, stored or default.
    pub async fn alert_rules(&self, project_id: i64) -> Result<Vec<AlertRule>> {
        let rows: Vec<RuleRow> = sqlx::query_as(
            "SELECT kind, enabled, min_level, environment, threshold, window_minutes
               FROM alert_rule WHERE project_id = $1",
        )
        .bind(project_id)
        .fetch_all(&self.pool)
        .await?;
        Ok(ALERT_KINDS
            .iter()
            .map(|kind| {
                let default = AlertRule::default_for(kind);
                match rows.iter().find(|r| r.kind == *kind) {
                    Some(r) => AlertRule {
                        kind: r.kind.clone(),
                        enabled: r.enabled,
                        min_level: r.min_level.clone(),
                        environment: r.environment.clone(),
                        threshold: r.threshold.unwrap_or(default.threshold),
                        window_minutes: r.window_minutes.unwrap_or(default.window_minutes),
                    },
                    None => default,
                }
            })
            .collect())
    }

    pub async fn set_alert_rule(&self, project_id: i64, rule: &AlertRule) -> Result<()> {
        if !ALERT_KINDS.contains(&rule.kind.as_str()) {
            return Err(StoreError::Conflict(format!(
                "unknown alert rule {:?}",
                rule.kind
            )));
        }
        let done = sqlx::query(
            "INSERT INTO alert_rule (project_id, kind, enabled, min_level, environment, threshold, window_minutes)
             SELECT id, $2, $3, $4, $5, $6, $7 FROM project WHERE id = $1
             ON CONFLICT (project_id, kind) DO UPDATE SET
                enabled = EXCLUDED.enabled, min_level = EXCLUDED.min_level,
                environment = EXCLUDED.environment, threshold = EXCLUDED.threshold,
                window_minutes = EXCLUDED.window_minutes",
        )
        .bind(project_id)
        .bind(&rule.kind)
        .bind(rule.enabled)
        .bind(&rule.min_level)
        .bind(&rule.environment)
        .bind(rule.threshold)
        .bind(rule.window_minutes)
        .execute(&self.pool)
        .await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound);
        }
        Ok(())
    }

    /// Whether the user gets alert email at all, and the projects they
    /// opted out of.
    pub async fn alert_preferences(&self, user_id: i64) -> Result<(bool, Vec<i64>)> {
        let enabled: bool = sqlx::query_scalar("SELECT alerts_enabled FROM users WHERE id = $1")
            .bind(user_id)
            .fetch_optional(&self.pool)
            .await?
            .ok_or(StoreError::NotFound)?;
        let opted_out = sqlx::query_scalar(
            "SELECT project_id FROM alert_opt_out WHERE user_id = $1 ORDER BY project_id",
        )
        .bind(user_id)
        .fetch_all(&self.pool)
        .await?;
        Ok((enabled, opted_out))
    }

    /// Replaces the user's preferences: `muted` lists the projects (among
    /// `shown`, the ones the form offered) the user does not want email
    /// for; opt-outs for projects not shown are kept.
    pub async fn set_alert_preferences(
        &self,
        user_id: i64,
        enabled: bool,
        shown: &[i64],
        muted: &[i64],
    ) -> Result<()> {
        let mut tx = self.pool.begin().await?;
        sqlx::query("UPDATE users SET alerts_enabled = $2 WHERE id = $1")
            .bind(user_id)
            .bind(enabled)
            .execute(&mut *tx)
            .await?;
        sqlx::query("DELETE FROM alert_opt_out WHERE user_id = $1 AND project_id = ANY($2)")
            .bind(user_id)
            .bind(shown)
            .execute(&mut *tx)
            .await?;
        sqlx::query(
            "INSERT INTO alert_opt_out (user_id, project_id)
             SELECT $1, id FROM project WHERE id = ANY($2) ON CONFLICT DO NOTHING",
        )
        .bind(user_id)
        .bind(muted)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    pub async fn webhooks(&self, project_id: i64) -> Result<Vec<WebhookRow>> {
        Ok(sqlx::query_as(
            "SELECT id, project_id, url, secret, enabled, created_at FROM webhook
              WHERE project_id = $1 ORDER BY id",
        )
        .bind(project_id)
        .fetch_all(&self.pool)
        .await?)
    }

    pub async fn create_webhook(&self, project_id: i64, url: &str) -> Result<WebhookRow> {
        let secret = format!(
            "{}{}",
            uuid::Uuid::new_v4().simple(),
            uuid::Uuid::new_v4().simple()
        );
        Ok(sqlx::query_as(
            "INSERT INTO webhook (project_id, url, secret) VALUES ($1, $2, $3)
             RETURNING id, project_id, url, secret, enabled, created_at",
        )
        .bind(project_id)
        .bind(url)
        .bind(secret)
        .fetch_one(&self.pool)
        .await?)
    }

    pub async fn set_webhook_enabled(
        &self,
        project_id: i64,
        webhook_id: i64,
        enabled: bool,
    ) -> Result<()> {
        let done = sqlx::query("UPDATE webhook SET enabled = $3 WHERE project_id = $1 AND id = $2")
            .bind(project_id)
            .bind(webhook_id)
            .bind(enabled)
            .execute(&self.pool)
            .await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound);
        }
        Ok(())
    }

    /// Deleting a webhook also drops its queued and past deliveries.
    pub async fn delete_webhook(&self, project_id: i64, webhook_id: i64) -> Result<()> {
        let done = sqlx::query("DELETE FROM webhook WHERE project_id = $1 AND id = $2")
            .bind(project_id)
            .bind(webhook_id)
            .execute(&self.pool)
            .await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound);
        }
        Ok(())
    }

    /// Queues an account email for the worker.
    pub async fn queue_mail(&self, to: &str, subject: &str, text: &str, html: &str) -> Result<()> {
        sqlx::query(
            "INSERT INTO mail_outbox (recipient, subject, body_text, body_html) VALUES ($1, $2, $3, $4)",
        )
        .bind(to)
        .bind(subject)
        .bind(text)
        .bind(html)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    pub async fn claim_mail(&self, limit: i64) -> Result<MailClaim> {
        let mut tx = self.pool.begin().await?;
        let mails = sqlx::query_as(
            "SELECT id, recipient, subject, body_text, body_html, attempts FROM mail_outbox
              WHERE status = 'pending' AND next_attempt_at <= now()
              ORDER BY id LIMIT $1 FOR UPDATE SKIP LOCKED",
        )
        .bind(limit)
        .fetch_all(&mut *tx)
        .await?;
        Ok(MailClaim { tx, mails })
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
            AlertResult::Filtered(why) => {
                sqlx::query("UPDATE alert_outbox SET status = 'filtered', last_error = $2 WHERE id = $1")
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

impl MailClaim {
    /// Ok: sent (the body, which holds a live link, is cleared); Err with
    /// a retry delay, or with None to give up.
    pub async fn record(
        &mut self,
        id: i64,
        outcome: std::result::Result<(), (String, Option<i64>)>,
    ) -> Result<()> {
        match outcome {
            Ok(()) => sqlx::query(
                "UPDATE mail_outbox SET status = 'sent', sent_at = now(), attempts = attempts + 1,
                        body_text = '', body_html = '', last_error = NULL WHERE id = $1",
            )
            .bind(id),
            Err((error, Some(delay))) => sqlx::query(
                "UPDATE mail_outbox SET attempts = attempts + 1, last_error = $2,
                        next_attempt_at = now() + make_interval(secs => $3) WHERE id = $1",
            )
            .bind(id)
            .bind(error)
            .bind(delay as f64),
            Err((error, None)) => sqlx::query(
                "UPDATE mail_outbox SET status = 'failed', attempts = attempts + 1, last_error = $2,
                        body_text = '', body_html = '' WHERE id = $1",
            )
            .bind(id)
            .bind(error),
        }
        .execute(&mut *self.tx)
        .await?;
        Ok(())
    }

    pub async fn finish(self) -> Result<()> {
        self.tx.commit().await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rule_filters_by_level_and_environment() {
        let mut rule = AlertRule::default_for("new_issue");
        assert_eq!(rule.rejects(Some("debug"), None), None, "no filters");
        rule.min_level = Some("error".into());
        assert_eq!(rule.rejects(Some("error"), None), None);
        assert_eq!(rule.rejects(Some("fatal"), None), None);
        assert_eq!(
            rule.rejects(Some("warning"), None).as_deref(),
            Some("level warning is below error")
        );
        assert_eq!(rule.rejects(None, None), None, "no level means error");
        rule.environment = Some("prod".into());
        assert_eq!(rule.rejects(Some("error"), Some("prod")), None);
        assert_eq!(
            rule.rejects(Some("error"), Some("staging")).as_deref(),
            Some("environment staging is not prod")
        );
        assert!(rule.rejects(Some("error"), None).is_some());
    }

    #[test]
    fn level_aliases_rank_like_their_level() {
        assert_eq!(level_rank("warn"), level_rank("warning"));
        assert_eq!(level_rank("critical"), level_rank("fatal"));
        assert!(level_rank("info") < level_rank("error"));
        assert_eq!(level_rank("bogus"), None);
    }
}
