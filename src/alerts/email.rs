//! Alert email content and SMTP transport.

use crate::store::alerts::PendingAlert;
use lettre::message::{Mailbox, MultiPart};
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use serde_json::Value;
use std::fmt::Write;

pub struct Content {
    pub subject: String,
    pub text: String,
    pub html: String,
}

pub struct Mailer {
    transport: AsyncSmtpTransport<Tokio1Executor>,
}

impl Mailer {
    pub fn new(url: &str) -> Result<Self, String> {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let transport = AsyncSmtpTransport::<Tokio1Executor>::from_url(url)
            .map_err(|e| e.to_string())?
            .timeout(Some(std::time::Duration::from_secs(20)))
            .build();
        Ok(Self { transport })
    }

    pub async fn send(&self, from: &str, to: &str, content: &Content) -> Result<(), String> {
        let from: Mailbox = from.parse().map_err(|e| format!("SNAG_EMAIL_FROM: {e}"))?;
        let to: Mailbox = to.parse().map_err(|e| format!("recipient {to}: {e}"))?;
        let message = Message::builder()
            .from(from)
            .to(to)
            .subject(&content.subject)
            .multipart(MultiPart::alternative_plain_html(
                content.text.clone(),
                content.html.clone(),
            ))
            .map_err(|e| e.to_string())?;
        self.transport
            .send(message)
            .await
            .map(|_| ())
            .map_err(|e| e.to_string())
    }
}

pub fn redact_url(url: &str) -> String {
    match (url.split_once("://"), url.rfind('@')) {
        (Some((scheme, _)), Some(at)) => format!("{scheme}://***{}", &url[at..]),
        _ => url.to_string(),
    }
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

pub fn short_id(alert: &PendingAlert) -> String {
    format!("{}-{}", alert.project_slug.to_uppercase(), alert.short_id)
}

/// Stable per issue (no counts, no kind) so mail clients thread every alert
/// of one issue together.
pub fn subject(alert: &PendingAlert) -> String {
    let mut title: String = alert.title.chars().take(120).collect();
    if title.len() < alert.title.len() {
        title.push('…');
    }
    format!(
        "[Snag] {}: {} ({})",
        alert.project_name,
        title,
        short_id(alert)
    )
}

/// The newest in-app frames of the event's main exception, most recent first.
pub fn in_app_frames(event: &Value) -> Vec<String> {
    let exceptions = event
        .pointer("/exception/values")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let Some(frames) = exceptions
        .last()
        .and_then(|e| e.pointer("/stacktrace/frames"))
        .and_then(Value::as_array)
    else {
        return Vec::new();
    };
    frames
        .iter()
        .rev()
        .filter(|f| f.get("in_app").and_then(Value::as_bool) == Some(true))
        .take(5)
        .map(|f| {
            let text = |k: &str| f.get(k).and_then(Value::as_str).map(clip);
            let file = text("filename")
                .or_else(|| text("module"))
                .unwrap_or_else(|| "?".into());
            let function = text("function").unwrap_or_else(|| "?".into());
            let line = f
                .get("lineno")
                .and_then(Value::as_i64)
                .map(|l| format!(":{l}"))
                .unwrap_or_default();
            let context = text("context_line").unwrap_or_default();
            let context = context.trim();
            if context.is_empty() {
                format!("{file}{line} in {function}")
            } else {
                format!("{file}{line} in {function}\n    {context}")
            }
        })
        .collect()
}

/// Event strings are attacker-sized; an alert shows the start of each.
fn clip(s: &str) -> String {
    let mut out: String = s.chars().take(200).collect();
    if out.len() < s.len() {
        out.push('…');
    }
    out
}

/// What happened, in a few words, for the first line of a message.
pub fn headline(alert: &PendingAlert) -> String {
    match alert.kind.as_str() {
        "regression" => "Regression: a resolved issue came back".into(),
        "escalating" => "Escalating: an ignored issue is back".into(),
        "frequency" => {
            let rule = alert.rule();
            format!(
                "Frequent: seen more than {} times in {} minutes",
                rule.threshold, rule.window_minutes
            )
        }
        _ => "New issue".into(),
    }
}

/// A short label for digests and webhook payloads.
pub fn kind_label(kind: &str) -> &'static str {
    match kind {
        "regression" => "regression",
        "escalating" => "escalating",
        "frequency" => "frequent",
        _ => "new",
    }
}

pub fn issue_url(base_url: &str, alert: &PendingAlert) -> String {
    format!(
        "{}/issues/{}",
        base_url.trim_end_matches('/'),
        alert.issue_id
    )
}

pub fn single(base_url: &str, alert: &PendingAlert, event: Option<&Value>) -> Content {
    let link = issue_url(base_url, alert);
    let headline = headline(alert);
    let environment = alert.event_environment.as_deref().unwrap_or("—");
    let release = alert
        .event_release
        .as_deref()
        .or(alert.last_release.as_deref())
        .unwrap_or("—");
    let level = alert.event_level.as_deref().unwrap_or(&alert.level);
    let frames = event.map(in_app_frames).unwrap_or_default();
    let mut text = String::new();
    let _ = writeln!(text, "{headline} in {}\n", alert.project_name);
    let _ = writeln!(text, "{}\n{}\n", alert.title, alert.culprit);
    let _ = writeln!(text, "Project:     {}", alert.project_name);
    let _ = writeln!(text, "Level:       {level}");
    let _ = writeln!(text, "Environment: {environment}");
    let _ = writeln!(text, "Release:     {release}");
    let _ = writeln!(text, "Events:      {}", alert.times_seen);
    if !frames.is_empty() {
        let _ = writeln!(text, "\nStack trace (most recent call first):");
        for f in &frames {
            let _ = writeln!(text, "  {f}");
        }
    }
    let _ = writeln!(text, "\n{link}");

    let mut html = format!(
        "<h2>{}</h2><p><a href=\"{}\"><strong>{}</strong></a><br><code>{}</code></p>\
         <table><tr><th align=left>Project</th><td>{}</td></tr><tr><th align=left>Level</th><td>{}</td></tr>\
         <tr><th align=left>Environment</th><td>{}</td></tr><tr><th align=left>Release</th><td>{}</td></tr>\
         <tr><th align=left>Events</th><td>{}</td></tr></table>",
        escape(&headline),
        escape(&link),
        escape(&alert.title),
        escape(&alert.culprit),
        escape(&alert.project_name),
        escape(level),
        escape(environment),
        escape(release),
        alert.times_seen
    );
    if !frames.is_empty() {
        html.push_str("<pre>");
        for f in &frames {
            html.push_str(&escape(f));
            html.push('\n');
        }
        html.push_str("</pre>");
    }
    let _ = write!(
        html,
        "<p><a href=\"{}\">Open in Snag</a></p>",
        escape(&link)
    );
    Content {
        subject: subject(alert),
        text,
        html,
    }
}

pub fn digest(base_url: &str, alerts: &[PendingAlert]) -> Content {
    let project = &alerts[0].project_name;
    let mut text = format!("{} alerts in {project}:\n\n", alerts.len());
    let mut html = format!(
        "<h2>{} alerts in {}</h2><ul>",
        alerts.len(),
        escape(project)
    );
    for alert in alerts {
        let link = issue_url(base_url, alert);
        let kind = kind_label(&alert.kind);
        let _ = writeln!(
            text,
            "- [{kind}] {} ({})\n  {link}",
            alert.title,
            short_id(alert)
        );
        let _ = write!(
            html,
            "<li>[{kind}] <a href=\"{}\">{}</a> ({})</li>",
            escape(&link),
            escape(&alert.title),
            escape(&short_id(alert))
        );
    }
    html.push_str("</ul>");
    Content {
        subject: format!("[Snag] {project}: {} new alerts", alerts.len()),
        text,
        html,
    }
}

/// An account email (password reset, invitation): a few lines and a link.
pub fn account(subject: &str, intro: &str, link: &str, outro: &str) -> Content {
    Content {
        subject: subject.to_string(),
        text: format!("{intro}\n\n{link}\n\n{outro}\n"),
        html: format!(
            "<p>{}</p><p><a href=\"{}\">{}</a></p><p>{}</p>",
            escape(intro),
            escape(link),
            escape(link),
            escape(outro)
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn alert(kind: &str, title: &str) -> PendingAlert {
        crate::alerts::sample_alert(kind, title)
    }

    #[test]
    fn subject_is_stable_across_kinds_and_counts() {
        let mut a = alert("new_issue", "KeyError: 'sku'");
        let b = alert("regression", "KeyError: 'sku'");
        a.times_seen = 50;
        assert_eq!(subject(&a), subject(&b));
        assert_eq!(subject(&a), "[Snag] Shop: KeyError: 'sku' (SHOP-3)");
    }

    #[test]
    fn single_email_escapes_html_and_lists_in_app_frames() {
        let event = json!({"environment": "prod", "exception": {"values": [{"stacktrace": {"frames": [
            {"filename": "lib.py", "function": "x", "in_app": false},
            {"filename": "app.py", "function": "checkout", "lineno": 9, "context_line": "  pay()", "in_app": true}
        ]}}]}});
        let c = single(
            "https://snag.example",
            &alert("new_issue", "<script>x</script>"),
            Some(&event),
        );
        assert!(c.html.contains("&lt;script&gt;") && !c.html.contains("<script>"));
        assert!(c.text.contains("app.py:9 in checkout\n    pay()"));
        assert!(!c.text.contains("lib.py"));
        assert!(c.text.contains("https://snag.example/issues/7"));
        assert!(c.text.contains("Environment: prod"));
    }

    #[test]
    fn digest_lists_every_alert() {
        let alerts = vec![alert("new_issue", "A"), alert("regression", "B")];
        let c = digest("http://x", &alerts);
        assert!(c.text.contains("[new] A") && c.text.contains("[regression] B"));
        assert_eq!(c.subject, "[Snag] Shop: 2 new alerts");
    }

    #[test]
    fn headlines_name_the_rule_that_fired() {
        let mut a = alert("frequency", "A");
        a.rule_threshold = Some(3);
        a.rule_window_minutes = Some(10);
        assert_eq!(
            headline(&a),
            "Frequent: seen more than 3 times in 10 minutes"
        );
        let c = single("http://x/", &alert("escalating", "A"), None);
        assert!(
            c.text
                .starts_with("Escalating: an ignored issue is back in Shop")
        );
        assert!(c.text.contains("http://x/issues/7\n"), "{}", c.text);
        let d = digest("http://x", &[a, alert("escalating", "B")]);
        assert!(d.text.contains("[frequent] A") && d.text.contains("[escalating] B"));
    }

    #[test]
    fn account_mail_escapes_its_link() {
        let c = account("Reset", "Hello <b>", "http://x/?a=1&b=2", "Bye");
        assert!(c.text.contains("http://x/?a=1&b=2"));
        assert!(c.html.contains("http://x/?a=1&amp;b=2") && c.html.contains("Hello &lt;b&gt;"));
    }

    #[test]
    fn smtp_passwords_are_redacted() {
        assert_eq!(redact_url("smtp://user:pw@mail:25"), "smtp://***@mail:25");
    }
}
