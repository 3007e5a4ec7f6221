//! Alert delivery. The ingest write path records alert intents (new issue,
//! regression, escalating) in `alert_outbox` in the same transaction that
//! changes the issue; this worker raises frequency alerts itself, fans each
//! intent out to the project's webhooks, applies the project's rules and
//! the recipients' opt-outs, and delivers by email and webhook with
//! retries, cool-downs and digests, never on the ingest path. It also
//! sends account email (password resets, invitations) from `mail_outbox`.

pub mod email;
pub mod webhook;

use crate::app::AppState;
use crate::config::env_var;
use crate::ops::metrics::Metrics;
use crate::store::Store;
use crate::store::alerts::{AlertResult, PendingAlert};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

#[derive(Debug, Clone)]
pub struct AlertsConfig {
    /// `smtp://host:port`, `smtps://…`, `smtp://…?tls=required`; user and
    /// password in the URL. None: alerts are recorded, not mailed.
    pub smtp_url: Option<String>,
    pub from: String,
    pub cooldown_secs: i64,
    /// When more alerts than this are due for one destination of a project
    /// within `digest_window_secs`, they go out as one digest per window.
    pub digest_threshold: usize,
    pub digest_window_secs: i64,
    pub retry_base_secs: i64,
    pub max_attempts: i32,
    /// How often frequency rules are evaluated.
    pub frequency_check_secs: u64,
}

impl AlertsConfig {
    pub fn from_env() -> Result<Self, String> {
        let num = |name: &str, default: i64| -> Result<i64, String> {
            env_var(name).map_or(Ok(default), |v| {
                v.trim().parse().map_err(|e| format!("{name}: {e}"))
            })
        };
        Ok(Self {
            smtp_url: env_var("SNAG_SMTP_URL"),
            from: env_var("SNAG_EMAIL_FROM").unwrap_or_else(|| "Snag <snag@localhost>".into()),
            cooldown_secs: num("SNAG_ALERT_COOLDOWN_SECS", 1800)?,
            digest_threshold: num("SNAG_ALERT_DIGEST_THRESHOLD", 5)?.max(1) as usize,
            digest_window_secs: num("SNAG_ALERT_DIGEST_WINDOW_SECS", 300)?.max(1),
            retry_base_secs: num("SNAG_ALERT_RETRY_BASE_SECS", 30)?.max(1),
            max_attempts: num("SNAG_ALERT_MAX_ATTEMPTS", 12)?.max(1) as i32,
            frequency_check_secs: num("SNAG_ALERT_FREQUENCY_CHECK_SECS", 10)?.max(1) as u64,
        })
    }

    pub fn describe(&self) -> String {
        match &self.smtp_url {
            Some(url) => format!("email alerts on via {}", email::redact_url(url)),
            None => "email alerts off (SNAG_SMTP_URL not set): alerts are recorded only".into(),
        }
    }
}

/// Whether email can be sent at all (SNAG_SMTP_URL set), read once: the
/// dashboard offers emailed reset links only then.
pub fn email_configured() -> bool {
    static CONFIGURED: OnceLock<bool> = OnceLock::new();
    *CONFIGURED.get_or_init(|| {
        AlertsConfig::from_env()
            .ok()
            .and_then(|c| c.smtp_url)
            .is_some_and(|url| email::Mailer::new(&url).is_ok())
    })
}

/// Starts the delivery worker. It wakes when the pipeline commits a new or
/// regressed issue, and every few seconds for retries and frequency rules.
/// Starts the delivery worker; it stops between rounds once the server is
/// shutting down.
pub fn spawn(state: &AppState) -> Option<tokio::task::JoinHandle<()>> {
    let config = match AlertsConfig::from_env() {
        Ok(c) => c,
        Err(e) => {
            tracing::error!(error = %e, "invalid alert configuration; alerts disabled");
            return None;
        }
    };
    let mailer = match config
        .smtp_url
        .as_deref()
        .map(email::Mailer::new)
        .transpose()
    {
        Ok(m) => m,
        Err(e) => {
            tracing::error!(error = %e, "invalid SNAG_SMTP_URL; alerts are recorded but not mailed");
            None
        }
    };
    let poster = match webhook::Poster::new() {
        Ok(p) => Some(p),
        Err(e) => {
            tracing::error!(error = %e, "webhook client unavailable; webhooks will retry");
            None
        }
    };
    let worker = Worker {
        store: state.store.clone(),
        config,
        mailer,
        poster,
        base_url: state.config.base_url.clone(),
        metrics: state.metrics.clone(),
    };
    let wakeup = state.pipeline.alerts_wakeup.clone();
    let state = state.clone();
    Some(tokio::spawn(async move {
        let mut last_frequency_check: Option<Instant> = None;
        while !state.shutting_down() {
            let check_every = Duration::from_secs(worker.config.frequency_check_secs);
            if last_frequency_check.is_none_or(|t| t.elapsed() >= check_every) {
                last_frequency_check = Some(Instant::now());
                match worker
                    .store
                    .raise_frequency_alerts(worker.config.cooldown_secs)
                    .await
                {
                    Ok(0) => {}
                    Ok(n) => tracing::info!(alerts = n, "frequency rules raised alerts"),
                    Err(e) => tracing::warn!(error = %e, "frequency rule check failed"),
                }
            }
            if let Err(e) = worker.round().await {
                tracing::warn!(error = %e, "alert delivery round failed");
            }
            if let Err(e) = worker.mail_round().await {
                tracing::warn!(error = %e, "account email round failed");
            }
            if state.shutting_down() {
                break;
            }
            let _ = tokio::time::timeout(Duration::from_secs(2), wakeup.notified()).await;
        }
    }))
}

struct Worker {
    store: Store,
    config: AlertsConfig,
    mailer: Option<email::Mailer>,
    poster: Option<webhook::Poster>,
    base_url: String,
    metrics: Arc<Metrics>,
}

/// How one destination's due alerts go out this round.
enum Plan {
    /// One message per alert.
    Singles,
    /// One message listing them all.
    Digest,
    /// A digest went out recently; wait this long for the next.
    Wait(i64),
}

/// What is decided before any delivery: a rule that is off or filters the
/// event out, a cool-down, a disabled webhook. None: deliver it.
fn screen(alert: &PendingAlert) -> Option<AlertResult> {
    if alert.channel == "webhook" && alert.webhook_enabled != Some(true) {
        return Some(AlertResult::Skipped("the webhook is disabled".into()));
    }
    let rule = alert.rule();
    if !rule.enabled {
        return Some(AlertResult::Filtered(format!(
            "the {} rule is off",
            alert.kind.replace('_', " ")
        )));
    }
    if let Some(why) = rule.rejects(
        alert.event_level.as_deref(),
        alert.event_environment.as_deref(),
    ) {
        return Some(AlertResult::Filtered(why));
    }
    if alert.recently_sent {
        return Some(AlertResult::Suppressed);
    }
    None
}

fn channel_label(alert: &PendingAlert) -> &'static str {
    if alert.channel == "webhook" {
        "webhook"
    } else {
        "email"
    }
}

impl Worker {
    async fn round(&self) -> Result<(), crate::store::StoreError> {
        let mut claim = self
            .store
            .claim_alerts(1000, self.config.cooldown_secs)
            .await?;
        if claim.alerts.is_empty() {
            return claim.finish().await;
        }
        let alerts = std::mem::take(&mut claim.alerts);
        let mut due = Vec::new();
        for alert in alerts {
            match screen(&alert) {
                Some(result) => claim.record(alert.id, &result).await?,
                None => due.push(alert),
            }
        }
        // One destination at a time: a project's email recipients, or one
        // of its webhooks.
        due.sort_by(|a, b| {
            (a.project_id, &a.channel, a.webhook_id, a.id).cmp(&(
                b.project_id,
                &b.channel,
                b.webhook_id,
                b.id,
            ))
        });
        for chunk in due.chunk_by(|a, b| {
            (a.project_id, &a.channel, a.webhook_id) == (b.project_id, &b.channel, b.webhook_id)
        }) {
            let results = match self.plan(chunk).await? {
                Plan::Wait(secs) => chunk
                    .iter()
                    .map(|_| AlertResult::Defer { delay_secs: secs })
                    .collect(),
                plan if chunk[0].channel == "webhook" => self.deliver_webhook(chunk, plan).await?,
                plan => self.deliver_email(chunk, plan).await?,
            };
            for (alert, result) in chunk.iter().zip(results) {
                self.count(alert, &result);
                claim.record(alert.id, &result).await?;
            }
        }
        claim.finish().await
    }

    fn count(&self, alert: &PendingAlert, result: &AlertResult) {
        let outcome = match result {
            AlertResult::Sent { .. } => "sent",
            AlertResult::Retry { .. } => "retried",
            AlertResult::Failed(_) => "failed",
            _ => return,
        };
        self.metrics.alert(outcome, channel_label(alert), 1);
    }

    async fn plan(&self, chunk: &[PendingAlert]) -> Result<Plan, crate::store::StoreError> {
        let first = &chunk[0];
        let window = self.config.digest_window_secs;
        let (sent_recently, since_digest) = self
            .store
            .alert_pressure(first.project_id, &first.channel, first.webhook_id, window)
            .await?;
        let storm = sent_recently as usize + chunk.len() > self.config.digest_threshold;
        Ok(match (storm, since_digest) {
            (false, _) => Plan::Singles,
            (true, None) => Plan::Digest,
            (true, Some(since)) => Plan::Wait((window as f64 - since).ceil().max(1.0) as i64),
        })
    }

    /// The outcome of a failed attempt: retry with backoff, or give up.
    fn failure(&self, alert: &PendingAlert, error: &str) -> AlertResult {
        if alert.attempts + 1 >= self.config.max_attempts {
            AlertResult::Failed(error.to_string())
        } else {
            AlertResult::Retry {
                error: error.to_string(),
                delay_secs: backoff(self.config.retry_base_secs, alert.attempts),
            }
        }
    }

    async fn event_data(
        &self,
        alert: &PendingAlert,
    ) -> Result<Option<serde_json::Value>, crate::store::StoreError> {
        Ok(match alert.event_id.or(alert.last_event_id) {
            Some(id) => self
                .store
                .event(alert.project_id, id)
                .await?
                .map(|e| e.data),
            None => None,
        })
    }

    async fn deliver_email(
        &self,
        alerts: &[PendingAlert],
        plan: Plan,
    ) -> Result<Vec<AlertResult>, crate::store::StoreError> {
        let skip = |why: &str| {
            alerts
                .iter()
                .map(|_| AlertResult::Skipped(why.to_string()))
                .collect()
        };
        let Some(mailer) = &self.mailer else {
            return Ok(skip("email is not configured"));
        };
        let recipients = self.store.alert_recipients(alerts[0].project_id).await?;
        if recipients.is_empty() {
            return Ok(skip(
                "no one to notify: no members, or all opted out of this project's alerts",
            ));
        }
        let send_all = |content: email::Content| {
            let recipients = recipients.clone();
            async move {
                for to in &recipients {
                    mailer.send(&self.config.from, to, &content).await?;
                }
                Ok::<(), String>(())
            }
        };
        if matches!(plan, Plan::Digest) {
            let outcome = send_all(email::digest(&self.base_url, alerts)).await;
            return Ok(alerts
                .iter()
                .map(|alert| match &outcome {
                    Ok(()) => AlertResult::Sent {
                        recipients: recipients.clone(),
                        digest: true,
                    },
                    Err(e) => self.failure(alert, e),
                })
                .collect());
        }
        let mut results = Vec::with_capacity(alerts.len());
        let mut down: Option<String> = None;
        for alert in alerts {
            if down.is_some() {
                // The server just failed: wait with the rest instead of
                // counting an attempt against each.
                results.push(AlertResult::Defer {
                    delay_secs: backoff(self.config.retry_base_secs, 0),
                });
                continue;
            }
            let event = self.event_data(alert).await?;
            let content = email::single(&self.base_url, alert, event.as_ref());
            match send_all(content).await {
                Ok(()) => results.push(AlertResult::Sent {
                    recipients: recipients.clone(),
                    digest: false,
                }),
                Err(e) => {
                    results.push(self.failure(alert, &e));
                    down = Some(e);
                }
            }
        }
        Ok(results)
    }

    async fn deliver_webhook(
        &self,
        alerts: &[PendingAlert],
        plan: Plan,
    ) -> Result<Vec<AlertResult>, crate::store::StoreError> {
        let first = &alerts[0];
        let (Some(url), Some(secret)) = (&first.webhook_url, &first.webhook_secret) else {
            return Ok(alerts
                .iter()
                .map(|_| AlertResult::Skipped("the webhook was deleted".into()))
                .collect());
        };
        let Some(poster) = &self.poster else {
            return Ok(alerts
                .iter()
                .map(|a| self.failure(a, "the webhook client could not start"))
                .collect());
        };
        let sent = |digest| AlertResult::Sent {
            recipients: vec![url.clone()],
            digest,
        };
        if matches!(plan, Plan::Digest) {
            let payload = webhook::digest(&self.base_url, alerts);
            let outcome = poster
                .post(url, secret, &format!("digest-{}", first.id), &payload)
                .await;
            return Ok(alerts
                .iter()
                .map(|alert| match &outcome {
                    Ok(()) => sent(true),
                    Err(e) => self.failure(alert, e),
                })
                .collect());
        }
        let mut results = Vec::with_capacity(alerts.len());
        let mut down = false;
        for alert in alerts {
            if down {
                results.push(AlertResult::Defer {
                    delay_secs: backoff(self.config.retry_base_secs, 0),
                });
                continue;
            }
            let event = self.event_data(alert).await?;
            let payload = webhook::single(&self.base_url, alert, event.as_ref());
            match poster
                .post(url, secret, &alert.id.to_string(), &payload)
                .await
            {
                Ok(()) => results.push(sent(false)),
                Err(e) => {
                    results.push(self.failure(alert, &e));
                    down = true;
                }
            }
        }
        Ok(results)
    }

    /// Account email: reset links and invitations.
    async fn mail_round(&self) -> Result<(), crate::store::StoreError> {
        let mut claim = self.store.claim_mail(50).await?;
        let mails = std::mem::take(&mut claim.mails);
        for mail in mails {
            let outcome = match &self.mailer {
                None => Err(("email is not configured".to_string(), None)),
                Some(mailer) => {
                    let content = email::Content {
                        subject: mail.subject.clone(),
                        text: mail.body_text.clone(),
                        html: mail.body_html.clone(),
                    };
                    mailer
                        .send(&self.config.from, &mail.recipient, &content)
                        .await
                        .map_err(|e| {
                            // Links in these mails expire within hours.
                            let retry = (mail.attempts + 1 < self.config.max_attempts.min(6))
                                .then(|| backoff(self.config.retry_base_secs, mail.attempts));
                            (e, retry)
                        })
                }
            };
            claim.record(mail.id, outcome).await?;
        }
        claim.finish().await
    }
}

/// Exponential backoff, capped at an hour.
fn backoff(base_secs: i64, attempts: i32) -> i64 {
    base_secs
        .saturating_mul(1_i64 << attempts.clamp(0, 20))
        .min(3600)
}

/// An alert as the worker sees it, for unit tests of message content.
#[cfg(test)]
pub fn sample_alert(kind: &str, title: &str) -> PendingAlert {
    PendingAlert {
        id: 1,
        kind: kind.into(),
        attempts: 0,
        channel: "email".into(),
        webhook_id: None,
        webhook_url: None,
        webhook_secret: None,
        webhook_enabled: None,
        project_id: 1,
        project_name: "Shop".into(),
        project_slug: "shop".into(),
        issue_id: 7,
        short_id: 3,
        title: title.into(),
        culprit: "app.views in checkout".into(),
        level: "error".into(),
        status: "unresolved".into(),
        times_seen: 1,
        last_release: Some("1.0".into()),
        last_event_id: None,
        event_id: None,
        event_level: Some("error".into()),
        event_environment: Some("prod".into()),
        event_release: Some("1.0".into()),
        rule_enabled: None,
        rule_min_level: None,
        rule_environment: None,
        rule_threshold: None,
        rule_window_minutes: None,
        recently_sent: false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_and_caps() {
        assert_eq!(backoff(30, 0), 30);
        assert_eq!(backoff(30, 1), 60);
        assert_eq!(backoff(30, 3), 240);
        assert_eq!(backoff(30, 40), 3600);
    }

    #[test]
    fn screening_applies_rules_filters_and_cool_down() {
        let mut alert = sample_alert("new_issue", "A");
        assert_eq!(screen(&alert), None, "defaults: on, no filters");
        alert.rule_min_level = Some("fatal".into());
        assert_eq!(
            screen(&alert),
            Some(AlertResult::Filtered("level error is below fatal".into()))
        );
        alert.rule_min_level = None;
        alert.rule_environment = Some("staging".into());
        assert!(matches!(screen(&alert), Some(AlertResult::Filtered(_))));
        alert.rule_environment = Some("prod".into());
        alert.recently_sent = true;
        assert_eq!(screen(&alert), Some(AlertResult::Suppressed));
        alert.rule_enabled = Some(false);
        assert_eq!(
            screen(&alert),
            Some(AlertResult::Filtered("the new issue rule is off".into()))
        );
        let mut hook = sample_alert("regression", "B");
        hook.channel = "webhook".into();
        hook.webhook_enabled = Some(false);
        assert!(matches!(screen(&hook), Some(AlertResult::Skipped(_))));
    }
}
