//! Ingest errors and the HTTP status/body they map to.
//!
//! Status codes and `detail` strings follow Relay (protocol reference §2.4, §6.2) so SDKs that
//! log or branch on them behave as they do against sentry.io. This module deliberately has no
//! web-framework dependency: handlers turn `status()`, `detail()` and `causes()` into
//! `{"detail": …, "causes": […]}` themselves.

use super::ratelimit::format_rate_limits;

/// The text Relay sends with every 429; SDK users see it in their logs.
pub const RATE_LIMITED_DETAIL: &str = "Sentry dropped data due to a quota or internal rate limit being reached. This will not affect your application. See https://docs.sentry.io/product/accounts/quotas/ for more information.";

#[derive(Debug, thiserror::Error)]
pub enum IngestError {
    /// No credentials in headers, query string or envelope `dsn` header.
    #[error("missing authorization information")]
    MissingAuth,

    /// Two credential sources that name different keys.
    #[error("multiple authorization payloads detected")]
    MultipleAuth,

    /// `X-Sentry-Auth` / `Authorization: Sentry` / query auth present but unusable.
    #[error("bad x-sentry-auth header")]
    InvalidAuthHeader(String),

    /// The envelope header `dsn` could not be parsed.
    #[error("bad envelope authentication header")]
    InvalidEnvelopeAuth(String),

    /// Key with characters no key generator produces; rejected before any lookup.
    #[error("bad sentry DSN public key")]
    BadPublicKey,

    #[error("unsupported protocol version ({0})")]
    UnsupportedVersion(u32),

    /// The key exists nowhere.
    #[error("event submission rejected with_reason: ProjectId")]
    UnknownKey,

    /// The key (or its project) exists but is disabled / revoked.
    #[error("event submission rejected with_reason: ProjectId")]
    DisabledKey,

    /// The key belongs to a different project than the URL names.
    #[error("event submission rejected with_reason: ProjectId")]
    WrongProject,

    /// The URL's project id is not an integer.
    #[error("bad project path parameter")]
    BadProjectId,

    /// The URL's project id is well-formed but no such project exists (Relay: 403).
    #[error("event submission rejected with_reason: ProjectId")]
    ProjectNotFound,

    #[error("empty request body")]
    EmptyBody,

    /// The client hung up or sent a broken chunked stream.
    #[error("failed to read request body")]
    BodyRead(String),

    #[error("method not allowed")]
    MethodNotAllowed,

    /// Wrong `Content-Type` on an endpoint that checks it (security reports).
    #[error("unsupported content type")]
    UnsupportedMediaType(String),

    /// Well-formed JSON that is not a usable event.
    #[error("invalid event")]
    InvalidEvent(String),

    #[error("invalid multipart data")]
    InvalidMultipart(String),

    /// Minidump endpoint body without an `MDMP`/`PMDM` payload.
    #[error("invalid minidump")]
    InvalidMinidump,

    /// A whole-body limit: raw request body or decompressed body.
    #[error("request body exceeded the size limit ({limit_name}: {limit} bytes)")]
    PayloadTooLarge {
        limit_name: &'static str,
        limit: usize,
    },

    /// A per-item size limit; the detail text is Relay's, which SDKs log verbatim.
    #[error(
        "envelope exceeded size limits for type '{item_type}' (https://develop.sentry.dev/sdk/envelopes/#size-limits)"
    )]
    ItemTooLarge {
        item_type: String,
        size: usize,
        limit_name: &'static str,
        limit: usize,
    },

    /// A per-envelope count limit (including "one event-class item per envelope").
    #[error(
        "envelope exceeded size limits for type '{item_type}' (https://develop.sentry.dev/sdk/envelopes/#size-limits)"
    )]
    TooManyItems {
        item_type: String,
        limit_name: &'static str,
        limit: usize,
    },

    /// The body did not decode with the encoding it claimed.
    #[error("failed to decode request body")]
    InvalidCompression {
        encoding: &'static str,
        reason: String,
    },

    /// A `Content-Encoding` token we do not implement (Relay/tower-http answer 415).
    #[error("unsupported content encoding")]
    UnsupportedEncoding(String),

    /// Store body that is neither JSON, zlib nor base64.
    #[error("invalid request body")]
    InvalidBody(String),

    #[error("invalid event envelope")]
    InvalidEnvelope(String),

    #[error("invalid JSON data: {0}")]
    InvalidJson(#[source] serde_json::Error),

    /// An item that needs an event id (attachments endpoint, user reports) came without one.
    #[error("missing event id")]
    MissingEventId,

    #[error(
        "Sentry dropped data due to a quota or internal rate limit being reached. This will not affect your application. See https://docs.sentry.io/product/accounts/quotas/ for more information."
    )]
    RateLimited {
        retry_after: u64,
        categories: Vec<String>,
        scope: &'static str,
        reason: Option<String>,
    },

    /// Write pipeline saturated; Relay's `QueueFailed`.
    #[error("failed to queue envelope")]
    Overloaded,

    /// The body did not arrive within the body read timeout (slow or
    /// stalled client).
    #[error("timed out reading the request body")]
    BodyTimeout(String),

    /// Other requests' bodies fill the server's memory budget for bodies;
    /// the client should retry later.
    #[error("the server is busy receiving other requests")]
    BodiesOverBudget,
}

impl IngestError {
    pub fn invalid_json(e: serde_json::Error) -> Self {
        IngestError::InvalidJson(e)
    }

    pub fn invalid_envelope(reason: impl Into<String>) -> Self {
        IngestError::InvalidEnvelope(reason.into())
    }

    /// Categories an events-per-minute key limit covers: those of event-class items. Sessions,
    /// client reports and attachments-only envelopes stay unaffected in the SDK.
    pub const EVENT_CATEGORIES: &'static [&'static str] =
        &["default", "error", "security", "transaction", "feedback"];

    /// The per-key events-per-minute limit (scope `key`, Relay's name for it).
    pub fn rate_limited(retry_after: u64) -> Self {
        Self::rate_limited_categories(retry_after, Self::EVENT_CATEGORIES)
    }

    /// A key-scoped limit on specific categories; empty means every category.
    pub fn rate_limited_categories(retry_after: u64, categories: &[&str]) -> Self {
        IngestError::RateLimited {
            retry_after,
            categories: categories.iter().map(|c| (*c).to_owned()).collect(),
            scope: "key",
            reason: None,
        }
    }

    pub fn missing_auth() -> Self {
        IngestError::MissingAuth
    }
    pub fn unknown_key() -> Self {
        IngestError::UnknownKey
    }
    pub fn disabled_key() -> Self {
        IngestError::DisabledKey
    }
    pub fn wrong_project() -> Self {
        IngestError::WrongProject
    }
    pub fn bad_project_path() -> Self {
        IngestError::BadProjectId
    }
    pub fn project_not_found() -> Self {
        IngestError::ProjectNotFound
    }
    pub fn empty_body() -> Self {
        IngestError::EmptyBody
    }
    pub fn body_read(reason: impl Into<String>) -> Self {
        IngestError::BodyRead(reason.into())
    }
    /// `what` names the limit in `causes`, e.g. `"request body"` or `"attachment"`.
    pub fn too_large(what: &'static str, limit: usize) -> Self {
        IngestError::PayloadTooLarge {
            limit_name: what,
            limit,
        }
    }
    pub fn method_not_allowed() -> Self {
        IngestError::MethodNotAllowed
    }
    pub fn unsupported_media_type(content_type: impl Into<String>) -> Self {
        IngestError::UnsupportedMediaType(content_type.into())
    }
    pub fn invalid_event(reason: impl Into<String>) -> Self {
        IngestError::InvalidEvent(reason.into())
    }
    pub fn invalid_multipart(reason: impl Into<String>) -> Self {
        IngestError::InvalidMultipart(reason.into())
    }
    pub fn invalid_minidump() -> Self {
        IngestError::InvalidMinidump
    }
    pub fn unavailable() -> Self {
        IngestError::Overloaded
    }

    /// Relay's `ApiErrorResponse` body: `{"detail": …, "causes": […]}`, `causes` omitted when
    /// empty.
    pub fn to_json(&self) -> serde_json::Value {
        let mut body = serde_json::Map::new();
        body.insert("detail".into(), self.detail().into());
        let causes = self.causes();
        if !causes.is_empty() {
            body.insert("causes".into(), causes.into());
        }
        serde_json::Value::Object(body)
    }

    pub fn status(&self) -> u16 {
        use IngestError::*;
        match self {
            MissingAuth | MultipleAuth | InvalidAuthHeader(_) | InvalidEnvelopeAuth(_) => 401,
            BadPublicKey | UnsupportedVersion(_) | BadProjectId | EmptyBody => 400,
            UnknownKey | DisabledKey | WrongProject | ProjectNotFound => 403,
            PayloadTooLarge { .. } | ItemTooLarge { .. } | TooManyItems { .. } => 413,
            InvalidCompression { .. } | InvalidBody(_) | InvalidEnvelope(_) | InvalidJson(_) => 400,
            UnsupportedEncoding(_) => 415,
            MissingEventId | BodyRead(_) | InvalidEvent(_) | InvalidMultipart(_) => 400,
            InvalidMinidump => 400,
            MethodNotAllowed => 405,
            UnsupportedMediaType(_) => 415,
            RateLimited { .. } => 429,
            Overloaded | BodiesOverBudget => 503,
            BodyTimeout(_) => 408,
        }
    }

    /// Top-level message for the `detail` field.
    pub fn detail(&self) -> String {
        self.to_string()
    }

    /// The explanation chain for the `causes` field (omitted from the body when empty).
    pub fn causes(&self) -> Vec<String> {
        use IngestError::*;
        match self {
            InvalidAuthHeader(c)
            | InvalidEnvelopeAuth(c)
            | InvalidBody(c)
            | InvalidEnvelope(c)
            | BodyRead(c)
            | BodyTimeout(c)
            | InvalidEvent(c)
            | InvalidMultipart(c) => vec![c.clone()],
            UnsupportedMediaType(ct) => vec![format!("content type '{ct}' is not accepted")],
            UnknownKey => vec!["unknown public key".into()],
            DisabledKey => vec!["public key is disabled".into()],
            WrongProject => vec!["public key does not belong to this project".into()],
            ProjectNotFound => vec!["project does not exist".into()],
            PayloadTooLarge { limit_name, limit } => {
                vec![format!("{limit_name} is {limit} bytes")]
            }
            ItemTooLarge {
                size,
                limit_name,
                limit,
                ..
            } => vec![format!(
                "item of {size} bytes exceeds {limit_name} ({limit} bytes)"
            )],
            TooManyItems {
                limit_name, limit, ..
            } => vec![format!("more items than {limit_name} ({limit}) allows")],
            InvalidCompression { encoding, reason } => {
                vec![format!("{encoding}: {reason}")]
            }
            UnsupportedEncoding(enc) => vec![format!("content encoding '{enc}' is not supported")],
            InvalidJson(e) => vec![e.to_string()],
            _ => Vec::new(),
        }
    }

    /// Seconds for `Retry-After`. Only 429s carry it: JS and Rust SDKs treat a `Retry-After` on
    /// any other status as a global rate limit (reference §7.2, §9.15).
    pub fn retry_after(&self) -> Option<u64> {
        match self {
            IngestError::RateLimited { retry_after, .. } => Some(*retry_after),
            _ => None,
        }
    }

    /// Value for `X-Sentry-Rate-Limits`, in Relay's format.
    pub fn rate_limits_header(&self) -> Option<String> {
        match self {
            IngestError::RateLimited {
                retry_after,
                categories,
                scope,
                reason,
            } => {
                let cats: Vec<&str> = categories.iter().map(String::as_str).collect();
                Some(format_rate_limits(
                    *retry_after,
                    &cats,
                    scope,
                    reason.as_deref(),
                ))
            }
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_match_relay() {
        assert_eq!(IngestError::MissingAuth.status(), 401);
        assert_eq!(IngestError::MultipleAuth.status(), 401);
        assert_eq!(IngestError::InvalidAuthHeader("x".into()).status(), 401);
        assert_eq!(IngestError::InvalidEnvelopeAuth("x".into()).status(), 401);
        assert_eq!(IngestError::BadPublicKey.status(), 400);
        assert_eq!(IngestError::UnsupportedVersion(8).status(), 400);
        assert_eq!(IngestError::UnknownKey.status(), 403);
        assert_eq!(IngestError::DisabledKey.status(), 403);
        assert_eq!(IngestError::WrongProject.status(), 403);
        assert_eq!(IngestError::BadProjectId.status(), 400);
        assert_eq!(IngestError::ProjectNotFound.status(), 403);
        assert_eq!(IngestError::EmptyBody.status(), 400);
        assert_eq!(
            IngestError::PayloadTooLarge {
                limit_name: "max_envelope_size",
                limit: 1
            }
            .status(),
            413
        );
        assert_eq!(
            IngestError::UnsupportedEncoding("compress".into()).status(),
            415
        );
        assert_eq!(IngestError::Overloaded.status(), 503);
        assert_eq!(IngestError::MissingEventId.status(), 400);
        assert_eq!(IngestError::method_not_allowed().status(), 405);
        assert_eq!(
            IngestError::unsupported_media_type("text/html").status(),
            415
        );
        assert_eq!(IngestError::invalid_event("x").status(), 400);
        assert_eq!(IngestError::invalid_multipart("x").status(), 400);
        assert_eq!(IngestError::invalid_minidump().status(), 400);
        assert_eq!(IngestError::body_read("reset").status(), 400);
        assert_eq!(IngestError::unavailable().status(), 503);
        assert_eq!(IngestError::unknown_key().status(), 403);
        assert_eq!(IngestError::disabled_key().status(), 403);
        assert_eq!(IngestError::wrong_project().status(), 403);
        assert_eq!(IngestError::project_not_found().status(), 403);
        assert_eq!(IngestError::bad_project_path().status(), 400);
        assert_eq!(IngestError::missing_auth().status(), 401);
        assert_eq!(IngestError::empty_body().status(), 400);
        let e = IngestError::too_large("attachment", 10);
        assert_eq!(e.status(), 413);
        assert_eq!(e.causes(), vec!["attachment is 10 bytes"]);
    }

    #[test]
    fn details_are_relays() {
        assert_eq!(
            IngestError::MissingAuth.detail(),
            "missing authorization information"
        );
        assert_eq!(
            IngestError::UnsupportedVersion(8).detail(),
            "unsupported protocol version (8)"
        );
        assert_eq!(
            IngestError::UnknownKey.detail(),
            "event submission rejected with_reason: ProjectId"
        );
        let e = IngestError::TooManyItems {
            item_type: "event".into(),
            limit_name: "event items per envelope",
            limit: 1,
        };
        assert_eq!(e.status(), 413);
        assert_eq!(
            e.detail(),
            "envelope exceeded size limits for type 'event' (https://develop.sentry.dev/sdk/envelopes/#size-limits)"
        );
        let e = IngestError::invalid_envelope("missing newline after header or payload");
        assert_eq!(e.detail(), "invalid event envelope");
        assert_eq!(e.causes(), vec!["missing newline after header or payload"]);
        assert!(IngestError::MissingAuth.causes().is_empty());
    }

    #[test]
    fn json_body_shape() {
        assert_eq!(
            IngestError::MissingAuth.to_json(),
            serde_json::json!({"detail": "missing authorization information"})
        );
        assert_eq!(
            IngestError::invalid_envelope("unexpected end of file").to_json(),
            serde_json::json!({
                "detail": "invalid event envelope",
                "causes": ["unexpected end of file"]
            })
        );
    }

    #[test]
    fn invalid_json_has_cause() {
        let err = serde_json::from_str::<serde_json::Value>("{nope").unwrap_err();
        let e = IngestError::invalid_json(err);
        assert_eq!(e.status(), 400);
        assert!(e.detail().starts_with("invalid JSON data: "));
        assert_eq!(e.causes().len(), 1);
    }

    #[test]
    fn retry_after_only_on_429() {
        let e = IngestError::rate_limited_categories(60, &["error", "transaction"]);
        assert_eq!(e.status(), 429);
        assert_eq!(e.retry_after(), Some(60));
        assert_eq!(
            e.rate_limits_header().as_deref(),
            Some("60:error;transaction:key")
        );
        assert_eq!(e.detail(), RATE_LIMITED_DETAIL);
        assert_eq!(
            IngestError::rate_limited(5).rate_limits_header().as_deref(),
            Some("5:default;error;security;transaction;feedback:key")
        );
        assert_eq!(
            IngestError::rate_limited_categories(7, &[])
                .rate_limits_header()
                .as_deref(),
            Some("7::key")
        );
        for other in [
            IngestError::Overloaded,
            IngestError::MissingAuth,
            IngestError::PayloadTooLarge {
                limit_name: "x",
                limit: 1,
            },
        ] {
            assert_eq!(other.retry_after(), None);
            assert_eq!(other.rate_limits_header(), None);
        }
    }
}
