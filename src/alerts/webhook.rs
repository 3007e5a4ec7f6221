//! Webhook payloads, signatures and the HTTP client that posts them.
//!
//! Every request carries `X-Snag-Timestamp` (Unix seconds) and
//! `X-Snag-Signature: sha256=<hex>`, the HMAC-SHA256 of
//! `"<timestamp>.<body>"` keyed with the webhook's secret. Receivers
//! recompute it over the raw body and compare in constant time; checking
//! that the timestamp is recent stops replays. `X-Snag-Delivery` names the
//! outbox row, so a receiver can drop the rare duplicate after a crash.

use super::email::{headline, in_app_frames, issue_url, kind_label, short_id};
use crate::store::alerts::PendingAlert;
use hmac::{Hmac, KeyInit, Mac};
use serde_json::{Value, json};
use sha2::Sha256;
use std::time::Duration;

pub const SIGNATURE_HEADER: &str = "x-snag-signature";
pub const TIMESTAMP_HEADER: &str = "x-snag-timestamp";
pub const DELIVERY_HEADER: &str = "x-snag-delivery";

/// `sha256=<hex HMAC-SHA256 of "<timestamp>.<body>">`.
pub fn signature(secret: &str, timestamp: i64, body: &[u8]) -> String {
    let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(secret.as_bytes())
        .expect("HMAC accepts any key length");
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    let hex: String = mac
        .finalize()
        .into_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    format!("sha256={hex}")
}

/// Slack's mrkdwn wants these three escaped in text.
fn slack_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

fn issue_json(base_url: &str, alert: &PendingAlert) -> Value {
    json!({
        "id": alert.issue_id,
        "short_id": short_id(alert),
        "title": alert.title,
        "culprit": alert.culprit,
        "level": alert.event_level.as_deref().unwrap_or(&alert.level),
        "status": alert.status,
        "times_seen": alert.times_seen,
        "environment": alert.event_environment,
        "release": alert.event_release.as_deref().or(alert.last_release.as_deref()),
        "url": issue_url(base_url, alert),
    })
}

/// One alert: `text` for Slack-compatible receivers, the rest for programs.
pub fn single(base_url: &str, alert: &PendingAlert, event: Option<&Value>) -> Value {
    let frames = event.map(in_app_frames).unwrap_or_default();
    let mut text = format!(
        "*{}* in {}: <{}|{}> ({})",
        slack_escape(&headline(alert)),
        slack_escape(&alert.project_name),
        issue_url(base_url, alert),
        slack_escape(&alert.title),
        short_id(alert)
    );
    if let Some(top) = frames.first() {
        text.push_str(&format!(
            "\n`{}`",
            slack_escape(top.lines().next().unwrap_or(""))
        ));
    }
    json!({
        "text": text,
        "kind": alert.kind,
        "digest": false,
        "project": {"id": alert.project_id, "slug": alert.project_slug, "name": alert.project_name},
        "alerts": [{"kind": alert.kind, "issue": issue_json(base_url, alert), "stacktrace": frames}],
    })
}

/// Several alerts of one project in one request, during a storm.
pub fn digest(base_url: &str, alerts: &[PendingAlert]) -> Value {
    let first = &alerts[0];
    let mut text = format!(
        "*{} alerts* in {}:",
        alerts.len(),
        slack_escape(&first.project_name)
    );
    for alert in alerts.iter().take(50) {
        text.push_str(&format!(
            "\n• [{}] <{}|{}> ({})",
            kind_label(&alert.kind),
            issue_url(base_url, alert),
            slack_escape(&alert.title),
            short_id(alert)
        ));
    }
    if alerts.len() > 50 {
        text.push_str(&format!("\n… and {} more", alerts.len() - 50));
    }
    json!({
        "text": text,
        "kind": "digest",
        "digest": true,
        "project": {"id": first.project_id, "slug": first.project_slug, "name": first.project_name},
        "alerts": alerts.iter().map(|a| json!({"kind": a.kind, "issue": issue_json(base_url, a)})).collect::<Vec<_>>(),
    })
}

pub struct Poster {
    client: reqwest::Client,
}

impl Poster {
    pub fn new() -> Result<Self, String> {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .connect_timeout(Duration::from_secs(5))
            .timeout(Duration::from_secs(10))
            .user_agent(concat!("Snag-Webhook/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| e.to_string())?;
        Ok(Self { client })
    }

    /// Posts a signed payload; any 2xx answer is success.
    pub async fn post(
        &self,
        url: &str,
        secret: &str,
        delivery: &str,
        payload: &Value,
    ) -> Result<(), String> {
        let body = serde_json::to_vec(payload).map_err(|e| e.to_string())?;
        let timestamp = chrono::Utc::now().timestamp();
        let response = self
            .client
            .post(url)
            .header("content-type", "application/json")
            .header(TIMESTAMP_HEADER, timestamp.to_string())
            .header(SIGNATURE_HEADER, signature(secret, timestamp, &body))
            .header(DELIVERY_HEADER, delivery)
            .body(body)
            .send()
            .await
            .map_err(|e| describe(&e))?;
        let status = response.status();
        if status.is_success() {
            return Ok(());
        }
        let text = response.text().await.unwrap_or_default();
        let snippet: String = text.chars().take(200).collect();
        Err(format!("HTTP {}: {}", status.as_u16(), snippet.trim()))
    }
}

/// reqwest's Display stops at "error sending request"; the cause (refused,
/// timed out, bad certificate) is what an operator needs.
fn describe(e: &reqwest::Error) -> String {
    let mut text = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

/// Only http(s) URLs with a host can be webhook targets.
pub fn validate_url(url: &str) -> Result<(), String> {
    let parsed = reqwest::Url::parse(url.trim()).map_err(|e| format!("not a URL: {e}"))?;
    if !matches!(parsed.scheme(), "http" | "https") {
        return Err("webhooks need an http:// or https:// URL".into());
    }
    if parsed.host_str().is_none_or(str::is_empty) {
        return Err("the URL needs a host".into());
    }
    if url.len() > 2000 {
        return Err("the URL is too long".into());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signature_matches_a_known_vector() {
        // python3 -c 'import hmac; print(hmac.new(b"secret", b"1700000000.{\"a\":1}", "sha256").hexdigest())'
        assert_eq!(
            signature("secret", 1_700_000_000, br#"{"a":1}"#),
            "sha256=49f24e537407743fa4a0242bb63b94b9a47ee99cbbe071ccd8a22550ae411686"
        );
        assert_ne!(
            signature("secret", 1_700_000_001, br#"{"a":1}"#),
            signature("secret", 1_700_000_000, br#"{"a":1}"#),
            "the timestamp is signed"
        );
    }

    #[test]
    fn payload_has_slack_text_and_escapes_it() {
        let alert = crate::alerts::sample_alert("new_issue", "<b>KeyError</b> & co");
        let p = single("https://snag.example", &alert, None);
        let text = p["text"].as_str().unwrap();
        assert!(text.starts_with("*New issue* in Shop: <https://snag.example/issues/7|"));
        assert!(text.contains("&lt;b&gt;KeyError&lt;/b&gt; &amp; co"));
        assert_eq!(p["alerts"][0]["issue"]["short_id"], "SHOP-3");
        assert_eq!(
            p["alerts"][0]["issue"]["url"],
            "https://snag.example/issues/7"
        );
        let d = digest("https://snag.example", &[alert.clone(), alert]);
        assert_eq!(d["digest"], true);
        assert_eq!(d["alerts"].as_array().unwrap().len(), 2);
        assert!(
            d["text"]
                .as_str()
                .unwrap()
                .starts_with("*2 alerts* in Shop:")
        );
    }

    #[test]
    fn only_http_urls_are_accepted() {
        assert!(validate_url("https://hooks.slack.com/services/x").is_ok());
        assert!(validate_url("http://127.0.0.1:8080/hook").is_ok());
        assert!(validate_url("ftp://x/").is_err());
        assert!(validate_url("javascript:alert(1)").is_err());
        assert!(validate_url("not a url").is_err());
    }
}
