//! User feedback in both generations: the deprecated `user_report` item /
//! endpoint (`{"event_id","name","email","comments"}`) and the new
//! `feedback` item, an event carrying `contexts.feedback`.

use super::EventError;
use super::values::{lenient_string, truncate_chars};
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// Sentry's `UserReport` model column sizes.
const MAX_NAME_CHARS: usize = 128;
const MAX_EMAIL_CHARS: usize = 75;
const MAX_COMMENTS_CHARS: usize = 4096;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserReport {
    /// The event the feedback is about (for new-style feedback without an
    /// associated event, the feedback event itself).
    pub event_id: uuid::Uuid,
    pub name: String,
    pub email: String,
    pub comments: String,
}

fn field(v: &Value, key: &str, max: usize) -> String {
    let mut s = v
        .get(key)
        .and_then(lenient_string)
        .map(|s| s.trim().to_owned())
        .unwrap_or_default();
    truncate_chars(&mut s, max);
    s
}

fn parse_id(v: &Value) -> Result<uuid::Uuid, EventError> {
    match v {
        Value::String(s) => uuid::Uuid::parse_str(s.trim()).map_err(|_| {
            let mut s = s.clone();
            truncate_chars(&mut s, 64);
            EventError::InvalidEventId(s)
        }),
        other => Err(EventError::InvalidEventId(super::values::preview(
            other, 64,
        ))),
    }
}

/// Parses a legacy user report. `event_id` is required; the text fields
/// default to empty, as Relay's schema allows.
pub fn parse_user_report(v: &Value) -> Result<UserReport, EventError> {
    if !v.is_object() {
        return Err(EventError::InvalidUserReport(
            "user report must be a JSON object".into(),
        ));
    }
    let event_id = match v.get("event_id") {
        None | Some(Value::Null) => {
            return Err(EventError::InvalidUserReport("missing event_id".into()));
        }
        Some(id) => parse_id(id)?,
    };
    Ok(UserReport {
        event_id,
        name: field(v, "name", MAX_NAME_CHARS),
        email: field(v, "email", MAX_EMAIL_CHARS),
        comments: field(v, "comments", MAX_COMMENTS_CHARS),
    })
}

/// Extracts the report from a new-style feedback event. None when the
/// event has no feedback context or no message.
pub fn feedback_from_event(v: &Value) -> Option<UserReport> {
    let fb = v.get("contexts")?.get("feedback")?;
    if !fb.is_object() {
        return None;
    }
    let comments = field(fb, "message", MAX_COMMENTS_CHARS);
    if comments.is_empty() {
        return None;
    }
    let event_id = fb
        .get("associated_event_id")
        .and_then(|id| parse_id(id).ok())
        .or_else(|| v.get("event_id").and_then(|id| parse_id(id).ok()))?;
    let user = v.get("user").unwrap_or(&Value::Null);
    let mut name = field(fb, "name", MAX_NAME_CHARS);
    if name.is_empty() {
        name = field(user, "name", MAX_NAME_CHARS);
    }
    if name.is_empty() {
        name = field(user, "username", MAX_NAME_CHARS);
    }
    let mut email = field(fb, "contact_email", MAX_EMAIL_CHARS);
    if email.is_empty() {
        email = field(user, "email", MAX_EMAIL_CHARS);
    }
    Some(UserReport {
        event_id,
        name,
        email,
        comments,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn legacy_report() {
        let r = parse_user_report(&json!({
            "event_id": "C0FFEE00-0000-4000-8000-000000000001",
            "name": " Ann ", "email": "ann@example.com", "comments": "It broke"
        }))
        .unwrap();
        assert_eq!(
            r.event_id.simple().to_string(),
            "c0ffee00000040008000000000000001"
        );
        assert_eq!(r.name, "Ann");
        assert_eq!(r.comments, "It broke");

        let r =
            parse_user_report(&json!({"event_id": "c0ffee00000040008000000000000001"})).unwrap();
        assert_eq!(r.name, "");

        assert!(matches!(
            parse_user_report(&json!({"name": "x"})),
            Err(EventError::InvalidUserReport(_))
        ));
        assert!(matches!(
            parse_user_report(&json!({"event_id": "nope"})),
            Err(EventError::InvalidEventId(_))
        ));
        assert!(matches!(
            parse_user_report(&json!({"event_id": 12})),
            Err(EventError::InvalidEventId(_))
        ));
        assert!(parse_user_report(&json!([1])).is_err());
        let long = parse_user_report(&json!({
            "event_id": "c0ffee00000040008000000000000001", "email": "a".repeat(500)
        }))
        .unwrap();
        assert_eq!(long.email.chars().count(), MAX_EMAIL_CHARS);
    }

    #[test]
    fn new_style_feedback() {
        let ev = json!({
            "event_id": "9ec79c33ec9942ab8353589fcb2e04dc",
            "type": "feedback",
            "user": {"email": "fallback@example.com", "username": "ann"},
            "contexts": {"feedback": {
                "message": "Checkout button does nothing",
                "contact_email": "ann@example.com",
                "associated_event_id": "32fd1995636d446385016e2747623e11"
            }}
        });
        let r = feedback_from_event(&ev).unwrap();
        assert_eq!(
            r.event_id.simple().to_string(),
            "32fd1995636d446385016e2747623e11"
        );
        assert_eq!(r.email, "ann@example.com");
        assert_eq!(r.name, "ann");
        assert_eq!(r.comments, "Checkout button does nothing");

        let standalone = json!({
            "event_id": "9ec79c33ec9942ab8353589fcb2e04dc",
            "contexts": {"feedback": {"message": "hi", "name": "Bo"}}
        });
        let r = feedback_from_event(&standalone).unwrap();
        assert_eq!(
            r.event_id.simple().to_string(),
            "9ec79c33ec9942ab8353589fcb2e04dc"
        );
        assert_eq!(r.name, "Bo");
        assert_eq!(r.email, "");

        assert!(feedback_from_event(&json!({"contexts": {"feedback": {"message": ""}}})).is_none());
        assert!(feedback_from_event(&json!({"contexts": {"feedback": 3}})).is_none());
        assert!(
            feedback_from_event(&json!({"contexts": {"feedback": {"message": "x"}}})).is_none()
        );
        assert!(feedback_from_event(&json!(null)).is_none());
    }
}
