//! Alert delivery. The ingest write path records alert intents in
//! `alert_outbox` in the same transaction that creates or regresses an
//! issue; this worker delivers them by email with retries, cool-downs and
//! digests, never on the ingest path.

mod email;

use crate::app::AppState;
use crate::config::env_var;
use crate::store::Store;
use crate::store::alerts::{AlertResult, PendingAlert};
use std::time::Duration;

#[derive(Debug, Clone)]
pub struct AlertsConfig {
    /// `smtp://host:port`, `smtps://…`, `smtp://…?tls=required`; user and
    /// password in the URL. None: alerts are recorded, not mailed.
    pub smtp_url: Option<String>,
    pub from: String,
    pub cooldown_secs: i64,
    /// When more alerts than this are due for a project within
    /// `digest_window_secs`, they go out as one digest per window.
    pub digest_threshold: usize,
    pub digest_window_secs: i64,
    pub retry_base_secs: i64,
    pub max_attempts: i32,
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
        })
    }

    pub fn describe(&self) -> String {
        match &self.smtp_url {
            Some(url) => format!("email alerts on via {}", email::redact_url(url)),
            None => "email alerts off (SNAG_SMTP_URL not set): alerts are recorded only".into(),
        }
    }
}

/// Starts the delivery worker. It wakes when the pipeline commits a new or
/// regressed issue, and every few seconds for retries.
pub fn spawn(state: &AppState) {
    let config = match AlertsConfig::from_env() {
        Ok(c) => c,
        Err(e) => {
            tracing::error!(error = %e, "invalid alert configuration; alerts disabled");
            return;
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
    let worker = Worker {
        store: state.store.clone(),
        config,
        mailer,
        base_url: state.config.base_url.clone(),
    };
    let wakeup = state.pipeline.alerts_wakeup.clone();
    tokio::spawn(async move {
        loop {
            if let Err(e) = worker.round().await {
                tracing::warn!(error = %e, "alert delivery round failed");
            }
            let _ = tokio::time::timeout(Duration::from_secs(2), wakeup.notified()).await;
        }
    });
}

struct Worker {
    store: Store,
    config: AlertsConfig,
    mailer: Option<email::Mailer>,
    base_url: String,
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
            if alert.recently_sent {
                claim.record(alert.id, &AlertResult::Suppressed).await?;
            } else {
                due.push(alert);
            }
        }
        // Group by project: recipients are per project.
        due.sort_by_key(|a| (a.project_id, a.id));
        for chunk in due.chunk_by(|a, b| a.project_id == b.project_id) {
            let results = self.deliver(chunk).await?;
            for (alert, result) in chunk.iter().zip(results) {
                claim.record(alert.id, &result).await?;
            }
        }
        claim.finish().await
    }

    async fn deliver(
        &self,
        alerts: &[PendingAlert],
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
            return Ok(skip("the project has no members to notify"));
        }
        let window = self.config.digest_window_secs;
        let (sent_recently, since_digest) = self
            .store
            .alert_pressure(alerts[0].project_id, window)
            .await?;
        let storm = sent_recently as usize + alerts.len() > self.config.digest_threshold;
        if storm && let Some(since) = since_digest {
            // One digest per window: hold these for the next one.
            let wait = (window as f64 - since).ceil().max(1.0) as i64;
            return Ok(alerts
                .iter()
                .map(|_| AlertResult::Defer { delay_secs: wait })
                .collect());
        }
        let messages = if storm {
            vec![email::digest(&self.base_url, alerts)]
        } else {
            let mut messages = Vec::with_capacity(alerts.len());
            for alert in alerts {
                let event = match alert.last_event_id {
                    Some(id) => self.store.event(alert.project_id, id).await?,
                    None => None,
                };
                messages.push(email::single(
                    &self.base_url,
                    alert,
                    event.as_ref().map(|e| &e.data),
                ));
            }
            messages
        };
        let digest = storm;
        let mut outcome: Result<(), String> = Ok(());
        for content in &messages {
            for to in &recipients {
                if let Err(e) = mailer.send(&self.config.from, to, content).await {
                    outcome = Err(e);
                    break;
                }
            }
            if outcome.is_err() {
                break;
            }
        }
        Ok(alerts
            .iter()
            .map(|alert| match &outcome {
                Ok(()) => AlertResult::Sent {
                    recipients: recipients.clone(),
                    digest,
                },
                Err(e) if alert.attempts + 1 >= self.config.max_attempts => {
                    AlertResult::Failed(e.clone())
                }
                Err(e) => AlertResult::Retry {
                    error: e.clone(),
                    delay_secs: backoff(self.config.retry_base_secs, alert.attempts),
                },
            })
            .collect())
    }
}

/// Exponential backoff, capped at an hour.
fn backoff(base_secs: i64, attempts: i32) -> i64 {
    base_secs
        .saturating_mul(1_i64 << attempts.clamp(0, 20))
        .min(3600)
}

#[cfg(test)]
mod tests {
    use super::backoff;

    #[test]
    fn backoff_doubles_and_caps() {
        assert_eq!(backoff(30, 0), 30);
        assert_eq!(backoff(30, 1), 60);
        assert_eq!(backoff(30, 3), 240);
        assert_eq!(backoff(30, 40), 3600);
    }
}
