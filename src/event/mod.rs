//! Event normalisation: every payload shape the Sentry SDKs send (raven's
//! store endpoint with `sentry.interfaces.*` names, modern envelope items,
//! browser security reports, user feedback) is turned into one canonical
//! JSON document plus a typed [`EventSummary`] that the database columns are
//! filled from.
//!
//! Everything here is pure: no I/O, no clock reads except through
//! [`NormalizeContext`], so the same input always gives the same output
//! (apart from a freshly generated event id when none was supplied).

mod feedback;
mod level;
mod message;
mod normalize;
mod scrub;
mod security;
mod summary;
mod timestamp;
mod values;

use chrono::{DateTime, Utc};
use std::net::IpAddr;

pub use feedback::{UserReport, feedback_from_event, parse_user_report};
pub use level::{Level, ParseLevelError};
pub use message::format_message;
pub use normalize::normalize;
pub use scrub::{DEFAULT_SENSITIVE_FIELDS, ScrubConfig, scrub};
pub use security::{security_report_to_event, security_reports_to_events};
pub use summary::{EventSummary, UserSummary, summarize};
pub use timestamp::{parse_timestamp, parse_timestamp_str};

/// Replacement written over every value the scrubber removes; the same text
/// Sentry uses so users recognise it.
pub const FILTERED: &str = "[Filtered]";

/// Which kind of envelope item (or endpoint) the payload came from. It
/// decides the event type when the payload itself does not say.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum ItemKind {
    #[default]
    Event,
    Transaction,
    Feedback,
    Security,
}

impl ItemKind {
    /// The kind for an envelope item type; None for items that are not
    /// events (attachments, sessions, client reports, unknown types).
    pub fn from_item_type(ty: &str) -> Option<ItemKind> {
        match ty {
            "event" => Some(ItemKind::Event),
            "transaction" => Some(ItemKind::Transaction),
            "feedback" => Some(ItemKind::Feedback),
            "security" | "raw_security" => Some(ItemKind::Security),
            _ => None,
        }
    }
}

/// Server-side facts about the request that carried the event.
#[derive(Debug, Clone)]
pub struct NormalizeContext {
    /// When the server received the request; also the clamp target for
    /// timestamps that are implausibly far in the future or past.
    pub received: DateTime<Utc>,
    /// Peer address, used where the SDK asks for `{{auto}}`.
    pub client_ip: Option<IpAddr>,
    /// The envelope header's `event_id`; it wins over the payload's.
    pub event_id: Option<uuid::Uuid>,
    /// `sentry_client` from the auth header, e.g. `raven-python/6.10.0`.
    pub client_sdk: Option<String>,
    /// The project's platform, used when the payload names none.
    pub default_platform: Option<String>,
    pub item_type: ItemKind,
    /// The envelope header's `sent_at`, for clock-drift correction.
    pub sent_at: Option<DateTime<Utc>>,
    pub scrub: Option<ScrubConfig>,
}

impl NormalizeContext {
    pub fn new(received: DateTime<Utc>) -> Self {
        NormalizeContext {
            received,
            client_ip: None,
            event_id: None,
            client_sdk: None,
            default_platform: None,
            item_type: ItemKind::Event,
            sent_at: None,
            scrub: None,
        }
    }
}

/// The canonical event to store, and the typed fields derived from it.
#[derive(Debug, Clone)]
pub struct NormalizedEvent {
    pub data: serde_json::Value,
    pub summary: EventSummary,
}

/// Why a payload was rejected. Every variant is a client error (HTTP 400).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EventError {
    #[error("event payload must be a JSON object")]
    NotAnObject,
    #[error("invalid event id: {0}")]
    InvalidEventId(String),
    #[error("invalid security report: {0}")]
    InvalidSecurityReport(String),
    #[error("unsupported security report type: {0}")]
    UnsupportedSecurityReport(String),
    #[error("invalid user report: {0}")]
    InvalidUserReport(String),
}
