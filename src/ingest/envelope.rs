//! Envelope parsing (protocol reference §3), following Relay's parser byte for byte except
//! where noted as deliberately more lenient.
//!
//! Items of unknown type are kept as [`ItemType::Unknown`] (the spec says "skip and retain");
//! handlers skip them, and they never count against limits.

use std::fmt;

use bytes::Bytes;
use chrono::{DateTime, NaiveDateTime, TimeZone, Utc};
use serde_json::{Map, Value};

use super::error::IngestError;
use super::limits::Limits;

#[derive(Debug, Clone)]
pub struct Envelope {
    pub headers: EnvelopeHeaders,
    pub items: Vec<Item>,
}

#[derive(Debug, Clone, Default)]
pub struct EnvelopeHeaders {
    /// Dashed or undashed in the header; `None` if absent or not a UUID (header validation must
    /// never reject an envelope, §9.4 — the caller generates an id when it needs one).
    pub event_id: Option<uuid::Uuid>,
    pub dsn: Option<String>,
    /// RFC 3339 with any offset or fraction length, naive (UTC assumed), or unix seconds.
    pub sent_at: Option<DateTime<Utc>>,
    /// The whole header object, including the fields above and any unknown ones.
    pub raw: Map<String, Value>,
}

#[derive(Debug, Clone)]
pub struct Item {
    pub headers: ItemHeaders,
    pub payload: Bytes,
}

#[derive(Debug, Clone)]
pub struct ItemHeaders {
    pub ty: ItemType,
    pub length: Option<usize>,
    pub filename: Option<String>,
    pub content_type: Option<String>,
    pub attachment_type: Option<String>,
    pub item_count: Option<u64>,
    pub raw: Map<String, Value>,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum ItemType {
    Event,
    Transaction,
    Attachment,
    Session,
    Sessions,
    UserReport,
    Feedback,
    ClientReport,
    CheckIn,
    Profile,
    ProfileChunk,
    ReplayEvent,
    ReplayRecording,
    ReplayVideo,
    Statsd,
    MetricBuckets,
    Span,
    Log,
    OtelLog,
    Security,
    RawSecurity,
    FormData,
    Nel,
    Unknown(String),
}

impl ItemType {
    /// Never fails: unrecognised names become `Unknown` so new SDK item types are skipped, not
    /// rejected (the failure mode of old Relay and Bugsink, §3.4).
    pub fn parse(s: &str) -> ItemType {
        use ItemType::*;
        match s {
            "event" => Event,
            "transaction" => Transaction,
            "attachment" => Attachment,
            "session" => Session,
            "sessions" => Sessions,
            "user_report" => UserReport,
            "feedback" => Feedback,
            "client_report" => ClientReport,
            "check_in" => CheckIn,
            "profile" => Profile,
            "profile_chunk" | "profile_chunk_ui" => ProfileChunk,
            "replay_event" => ReplayEvent,
            "replay_recording" => ReplayRecording,
            "replay_video" => ReplayVideo,
            "statsd" => Statsd,
            "metric_buckets" => MetricBuckets,
            "span" => Span,
            "log" => Log,
            "otel_log" => OtelLog,
            "security" => Security,
            "raw_security" => RawSecurity,
            "form_data" => FormData,
            "nel" => Nel,
            other => Unknown(other.to_owned()),
        }
    }

    pub fn as_str(&self) -> &str {
        use ItemType::*;
        match self {
            Event => "event",
            Transaction => "transaction",
            Attachment => "attachment",
            Session => "session",
            Sessions => "sessions",
            UserReport => "user_report",
            Feedback => "feedback",
            ClientReport => "client_report",
            CheckIn => "check_in",
            Profile => "profile",
            ProfileChunk => "profile_chunk",
            ReplayEvent => "replay_event",
            ReplayRecording => "replay_recording",
            ReplayVideo => "replay_video",
            Statsd => "statsd",
            MetricBuckets => "metric_buckets",
            Span => "span",
            Log => "log",
            OtelLog => "otel_log",
            Security => "security",
            RawSecurity => "raw_security",
            FormData => "form_data",
            Nel => "nel",
            Unknown(s) => s,
        }
    }

    pub fn is_unknown(&self) -> bool {
        matches!(self, ItemType::Unknown(_))
    }

    /// Items that become an event; Relay's event budget allows one per envelope (§6.1, §9.17).
    /// `feedback` is an event too (`UserReportV2` is stored as an event) and shares the budget.
    pub fn is_event_class(&self) -> bool {
        use ItemType::*;
        matches!(
            self,
            Event | Transaction | Security | RawSecurity | Feedback | Nel
        )
    }

    /// Items that need the envelope `event_id` (Relay's `Item::requires_event`); when missing,
    /// the caller generates one.
    pub fn requires_event_id(&self) -> bool {
        use ItemType::*;
        matches!(
            self,
            Event
                | Transaction
                | Security
                | RawSecurity
                | Nel
                | Attachment
                | FormData
                | UserReport
                | Feedback
                | Profile
                | ReplayEvent
                | ReplayRecording
                | ReplayVideo
        )
    }

    /// Category name for `X-Sentry-Rate-Limits` and client-report accounting (§7.1).
    pub fn rate_limit_category(&self) -> &'static str {
        use ItemType::*;
        match self {
            Event | Nel => "error",
            Transaction => "transaction",
            Security | RawSecurity => "security",
            Attachment | FormData => "attachment",
            Session | Sessions => "session",
            UserReport | Feedback => "feedback",
            ClientReport => "internal",
            CheckIn => "monitor",
            Profile => "profile",
            ProfileChunk => "profile_chunk",
            ReplayEvent | ReplayRecording | ReplayVideo => "replay",
            Statsd | MetricBuckets => "metric_bucket",
            Span => "span",
            Log | OtelLog => "log_item",
            Unknown(_) => "default",
        }
    }
}

impl fmt::Display for ItemType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for ItemType {
    type Err = std::convert::Infallible;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(ItemType::parse(s))
    }
}

/// Default for [`parse_envelope`]; see `Limits::max_envelope_items`.
pub const DEFAULT_MAX_ITEMS: usize = 10_000;

pub fn parse_envelope(body: Bytes) -> Result<Envelope, IngestError> {
    parse_envelope_with_max_items(body, DEFAULT_MAX_ITEMS)
}

/// Relay's algorithm (§3.2): header JSON, `\n` or EOF; then per item a header JSON, then either
/// exactly `length` bytes followed by `\n`/EOF, or everything up to the next `\n`/EOF.
///
/// Deliberate leniencies: trailing whitespace after the last item is ignored (Relay fails on a
/// stray final blank line, §11), and spaces/`\r` between a header's JSON and its `\n` are
/// skipped (CRLF-producing hand-written clients).
pub fn parse_envelope_with_max_items(
    body: Bytes,
    max_items: usize,
) -> Result<Envelope, IngestError> {
    if body.is_empty() {
        return Err(IngestError::EmptyBody);
    }
    let (header, mut pos) = match read_json_line(&body, 0) {
        Json::Value(v, end) => (v, end),
        Json::Eof => return Err(IngestError::invalid_envelope("missing envelope header")),
        Json::Invalid(e) => {
            return Err(IngestError::invalid_envelope(format!(
                "invalid envelope header: {e}"
            )));
        }
    };
    let Value::Object(header) = header else {
        return Err(IngestError::invalid_envelope(
            "invalid envelope header: not a JSON object",
        ));
    };
    pos = require_termination(&body, pos)?;
    let headers = envelope_headers(header);

    let mut items = Vec::new();
    loop {
        if body[pos..].iter().all(u8::is_ascii_whitespace) {
            break;
        }
        if items.len() >= max_items {
            return Err(IngestError::TooManyItems {
                item_type: "envelope".into(),
                limit_name: "max_envelope_items",
                limit: max_items,
            });
        }
        let (raw, end) = match read_json_line(&body, pos) {
            Json::Value(Value::Object(m), end) => (m, end),
            Json::Value(_, _) => {
                return Err(IngestError::invalid_envelope(
                    "invalid item header: not a JSON object",
                ));
            }
            Json::Eof => return Err(IngestError::invalid_envelope("unexpected end of file")),
            Json::Invalid(e) => {
                return Err(IngestError::invalid_envelope(format!(
                    "invalid item header: {e}"
                )));
            }
        };
        let item_headers = item_headers(raw)?;
        pos = require_termination(&body, end)?;

        let payload = match item_headers.length {
            Some(len) => {
                let end = pos
                    .checked_add(len)
                    .filter(|e| *e <= body.len())
                    .ok_or_else(|| IngestError::invalid_envelope("unexpected end of file"))?;
                let p = body.slice(pos..end);
                // Strict as in the spec: "Any other character, including whitespace, means
                // the Envelope is malformed."
                match body.get(end) {
                    None => pos = end,
                    Some(b'\n') => pos = end + 1,
                    Some(_) => {
                        return Err(IngestError::invalid_envelope(
                            "missing newline after header or payload",
                        ));
                    }
                }
                p
            }
            None => {
                let end = memchr_newline(&body[pos..]).map_or(body.len(), |i| pos + i);
                let p = body.slice(pos..end);
                pos = (end + 1).min(body.len());
                p
            }
        };
        items.push(Item {
            headers: item_headers,
            payload,
        });
    }
    Ok(Envelope { headers, items })
}

impl Envelope {
    /// Items the server understands; unknown types are skipped per spec.
    pub fn known_items(&self) -> impl Iterator<Item = &Item> {
        self.items.iter().filter(|i| !i.headers.ty.is_unknown())
    }

    /// The (single) event-class item, if any.
    pub fn event_item(&self) -> Option<&Item> {
        self.items.iter().find(|i| i.headers.ty.is_event_class())
    }

    pub fn requires_event_id(&self) -> bool {
        self.items.iter().any(|i| i.headers.ty.requires_event_id())
    }
}

/// Per-envelope budgets from Relay's `check_envelope_size_limits` (§6.1). Unknown items are
/// exempt. Any violation is 413, which sentry-python logs as "Event dropped due to exceeded
/// envelope size limit".
pub fn validate_item_counts(env: &Envelope, limits: &Limits) -> Result<(), IngestError> {
    fn too_many(ty: &ItemType, limit_name: &'static str, limit: usize) -> IngestError {
        IngestError::TooManyItems {
            item_type: ty.as_str().to_owned(),
            limit_name,
            limit,
        }
    }
    fn check_size(
        ty: &ItemType,
        size: usize,
        limit_name: &'static str,
        limit: usize,
    ) -> Result<(), IngestError> {
        if size > limit {
            return Err(IngestError::ItemTooLarge {
                item_type: ty.as_str().to_owned(),
                size,
                limit_name,
                limit,
            });
        }
        Ok(())
    }

    if env.items.len() > limits.max_envelope_items {
        return Err(IngestError::TooManyItems {
            item_type: "envelope".into(),
            limit_name: "max_envelope_items",
            limit: limits.max_envelope_items,
        });
    }

    let mut events = 0usize;
    let (mut attachments, mut attachments_size) = (0usize, 0usize);
    let (mut sessions, mut sessions_size) = (0usize, 0usize);
    let (mut reports, mut reports_size) = (0usize, 0usize);
    let mut profiles = 0usize;

    for item in &env.items {
        let ty = &item.headers.ty;
        let size = item.payload.len();
        use ItemType::*;
        match ty {
            Event | Transaction | Security | RawSecurity | Feedback | Nel => {
                events += 1;
                if events > 1 {
                    return Err(too_many(ty, "event items per envelope", 1));
                }
                check_size(ty, size, "max_event_size", limits.max_event_size)?;
            }
            Attachment | FormData | UserReport => {
                // user_report shares the attachment budget in Relay.
                if matches!(ty, Attachment) {
                    attachments += 1;
                    if attachments > limits.max_attachment_count {
                        return Err(too_many(
                            ty,
                            "max_attachment_count",
                            limits.max_attachment_count,
                        ));
                    }
                }
                check_size(ty, size, "max_attachment_size", limits.max_attachment_size)?;
                attachments_size += size;
                check_size(
                    ty,
                    attachments_size,
                    "max_attachments_size",
                    limits.max_attachments_size,
                )?;
            }
            Session | Sessions => {
                sessions += 1;
                if sessions > limits.max_session_count {
                    return Err(too_many(ty, "max_session_count", limits.max_session_count));
                }
                sessions_size += size;
                check_size(
                    ty,
                    sessions_size,
                    "max_sessions_size",
                    limits.max_sessions_size,
                )?;
            }
            ClientReport => {
                reports += 1;
                if reports > limits.max_client_reports_count {
                    return Err(too_many(
                        ty,
                        "max_client_reports_count",
                        limits.max_client_reports_count,
                    ));
                }
                reports_size += size;
                check_size(
                    ty,
                    reports_size,
                    "max_client_reports_size",
                    limits.max_client_reports_size,
                )?;
            }
            CheckIn => check_size(ty, size, "max_check_in_size", limits.max_check_in_size)?,
            Profile | ProfileChunk => {
                profiles += 1;
                if profiles > 1 {
                    return Err(too_many(ty, "profile items per envelope", 1));
                }
                check_size(ty, size, "max_profile_size", limits.max_profile_size)?;
            }
            ReplayEvent => check_size(ty, size, "max_event_size", limits.max_event_size)?,
            ReplayRecording | ReplayVideo => check_size(
                ty,
                size,
                "max_replay_compressed_size",
                limits.max_replay_compressed_size,
            )?,
            Statsd => check_size(ty, size, "max_statsd_size", limits.max_statsd_size)?,
            MetricBuckets => check_size(
                ty,
                size,
                "max_metric_buckets_size",
                limits.max_metric_buckets_size,
            )?,
            Span => {
                let limit_name = if item.headers.item_count.is_some() {
                    "max_container_size"
                } else {
                    "max_span_size"
                };
                let limit = if item.headers.item_count.is_some() {
                    limits.max_container_size
                } else {
                    limits.max_span_size
                };
                check_size(ty, size, limit_name, limit)?;
            }
            Log | OtelLog => {
                // A log container holds many logs; Relay checks the container and the average.
                check_size(ty, size, "max_container_size", limits.max_container_size)?;
                let n = item.headers.item_count.unwrap_or(1).max(1);
                let avg = size / usize::try_from(n).unwrap_or(usize::MAX);
                check_size(ty, avg, "max_log_size", limits.max_log_size)?;
            }
            Unknown(_) => {}
        }
    }
    Ok(())
}

enum Json {
    Value(Value, usize),
    Eof,
    Invalid(serde_json::Error),
}

/// First JSON value at `pos` (leading whitespace skipped, as serde_json's StreamDeserializer
/// does in Relay) and the offset just past it.
fn read_json_line(body: &[u8], pos: usize) -> Json {
    let mut stream = serde_json::Deserializer::from_slice(&body[pos..]).into_iter::<Value>();
    match stream.next() {
        None => Json::Eof,
        Some(Ok(v)) => Json::Value(v, pos + stream.byte_offset()),
        Some(Err(e)) => Json::Invalid(e),
    }
}

/// After a header the next byte must be `\n` or EOF; returns the offset after the newline.
fn require_termination(body: &[u8], mut pos: usize) -> Result<usize, IngestError> {
    while matches!(body.get(pos), Some(b' ' | b'\t' | b'\r')) {
        pos += 1;
    }
    match body.get(pos) {
        None => Ok(pos),
        Some(b'\n') => Ok(pos + 1),
        Some(_) => Err(IngestError::invalid_envelope(
            "missing newline after header or payload",
        )),
    }
}

fn memchr_newline(s: &[u8]) -> Option<usize> {
    s.iter().position(|b| *b == b'\n')
}

fn envelope_headers(raw: Map<String, Value>) -> EnvelopeHeaders {
    let event_id = raw
        .get("event_id")
        .and_then(Value::as_str)
        .and_then(|s| uuid::Uuid::parse_str(s.trim()).ok());
    let dsn = raw
        .get("dsn")
        .and_then(Value::as_str)
        .filter(|s| !s.trim().is_empty())
        .map(str::to_owned);
    let sent_at = raw.get("sent_at").and_then(parse_timestamp);
    EnvelopeHeaders {
        event_id,
        dsn,
        sent_at,
        raw,
    }
}

/// Lenient like Relay's timestamp parsing: `2025-07-31T23:05:37.0926585+00:00` and friends
/// (§9.4), naive strings as UTC, or unix seconds.
pub fn parse_timestamp(v: &Value) -> Option<DateTime<Utc>> {
    match v {
        Value::String(s) => {
            let s = s.trim();
            if let Ok(dt) = DateTime::parse_from_rfc3339(s) {
                return Some(dt.with_timezone(&Utc));
            }
            for fmt in ["%Y-%m-%dT%H:%M:%S%.f", "%Y-%m-%d %H:%M:%S%.f"] {
                if let Ok(n) = NaiveDateTime::parse_from_str(s, fmt) {
                    return Some(Utc.from_utc_datetime(&n));
                }
            }
            None
        }
        Value::Number(n) => {
            let secs = n.as_f64()?;
            if !secs.is_finite() {
                return None;
            }
            let whole = secs.floor();
            // Out-of-range values fall through `from_timestamp` as None.
            if whole.abs() > 1e12 {
                return None;
            }
            let nanos = ((secs - whole) * 1e9).round().min(999_999_999.0) as u32;
            DateTime::from_timestamp(whole as i64, nanos)
        }
        _ => None,
    }
}

fn item_headers(raw: Map<String, Value>) -> Result<ItemHeaders, IngestError> {
    let ty = match raw.get("type") {
        Some(Value::String(s)) => ItemType::parse(s),
        Some(_) => {
            return Err(IngestError::invalid_envelope(
                "invalid item header: `type` is not a string",
            ));
        }
        None => {
            return Err(IngestError::invalid_envelope(
                "invalid item header: missing field `type`",
            ));
        }
    };
    let length = match raw.get("length") {
        None | Some(Value::Null) => None,
        Some(v) => {
            // Relay types this as u32.
            let n = v
                .as_u64()
                .filter(|n| *n <= u64::from(u32::MAX))
                .ok_or_else(|| {
                    IngestError::invalid_envelope("invalid item header: invalid `length`")
                })?;
            Some(n as usize)
        }
    };
    let string = |k: &str| raw.get(k).and_then(Value::as_str).map(str::to_owned);
    Ok(ItemHeaders {
        ty,
        length,
        filename: string("filename"),
        content_type: string("content_type"),
        attachment_type: string("attachment_type"),
        item_count: raw.get("item_count").and_then(Value::as_u64),
        raw,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(s: &[u8]) -> Result<Envelope, IngestError> {
        parse_envelope(Bytes::copy_from_slice(s))
    }
    fn payloads(e: &Envelope) -> Vec<&[u8]> {
        e.items.iter().map(|i| &i.payload[..]).collect()
    }
    fn types(e: &Envelope) -> Vec<&str> {
        e.items.iter().map(|i| i.headers.ty.as_str()).collect()
    }
    fn cause(r: Result<Envelope, IngestError>) -> String {
        let e = r.unwrap_err();
        assert_eq!(e.status(), 400, "{e:?}");
        e.causes().join("; ")
    }

    #[test]
    fn sentry_python_style() {
        let body = b"{\"event_id\":\"9ec79c33ec9942ab8353589fcb2e04dc\",\"sent_at\":\"2025-05-01T10:00:00.123456Z\"}\n{\"type\":\"event\",\"content_type\":\"application/json\",\"length\":13}\n{\"a\":\"hello\"}\n";
        let e = parse(body).unwrap();
        assert_eq!(
            e.headers.event_id.unwrap().simple().to_string(),
            "9ec79c33ec9942ab8353589fcb2e04dc"
        );
        assert_eq!(
            e.headers.sent_at.unwrap().to_rfc3339(),
            "2025-05-01T10:00:00.123456+00:00"
        );
        assert_eq!(types(&e), ["event"]);
        assert_eq!(payloads(&e), [b"{\"a\":\"hello\"}".as_slice()]);
        let h = &e.items[0].headers;
        assert_eq!(h.length, Some(13));
        assert_eq!(h.content_type.as_deref(), Some("application/json"));
    }

    #[test]
    fn js_style_no_length_no_trailing_newline() {
        // §3.5 (b): implicit length for the event, explicit for the attachment, no final \n.
        let body = b"{\"event_id\":\"0b5f3c7ad3d74c8aa0e1d4a1c6e0a0c4\"}\n{\"type\":\"event\"}\n{\"message\":\"x\"}\n{\"type\":\"attachment\",\"length\":5,\"filename\":\"log.txt\",\"content_type\":\"text/plain\"}\nhello";
        let e = parse(body).unwrap();
        assert_eq!(types(&e), ["event", "attachment"]);
        assert_eq!(
            payloads(&e),
            [b"{\"message\":\"x\"}".as_slice(), b"hello".as_slice()]
        );
        assert_eq!(e.items[1].headers.filename.as_deref(), Some("log.txt"));
        // Implicit-length last item without a trailing newline.
        let e = parse(b"{}\n{\"type\":\"event\"}\n{\"message\":\"x\"}").unwrap();
        assert_eq!(payloads(&e), [b"{\"message\":\"x\"}".as_slice()]);
    }

    #[test]
    fn length_prefixed_payload_may_contain_newlines() {
        let body =
            b"{}\n{\"type\":\"attachment\",\"length\":6}\na\nb\n\nc\n{\"type\":\"event\"}\n{}";
        let e = parse(body).unwrap();
        assert_eq!(payloads(&e), [b"a\nb\n\nc".as_slice(), b"{}".as_slice()]);
    }

    #[test]
    fn length_then_garbage_is_malformed() {
        let c = cause(parse(b"{}\n{\"type\":\"attachment\",\"length\":2}\nabc\n"));
        assert_eq!(c, "missing newline after header or payload");
        // Whitespace counts as "any other character".
        let c = cause(parse(b"{}\n{\"type\":\"attachment\",\"length\":2}\nab \n"));
        assert_eq!(c, "missing newline after header or payload");
    }

    #[test]
    fn length_past_eof() {
        assert_eq!(
            cause(parse(b"{}\n{\"type\":\"attachment\",\"length\":10}\nabc")),
            "unexpected end of file"
        );
        assert_eq!(
            cause(parse(
                b"{}\n{\"type\":\"attachment\",\"length\":18446744073709551615}\nabc"
            )),
            "invalid item header: invalid `length`"
        );
    }

    #[test]
    fn empty_payloads() {
        // Explicit zero length followed by the terminator.
        let e = parse(b"{}\n{\"type\":\"attachment\",\"length\":0}\n\n{\"type\":\"event\",\"length\":2}\n{}\n")
            .unwrap();
        assert_eq!(payloads(&e), [b"".as_slice(), b"{}".as_slice()]);
        // Zero length at EOF.
        let e = parse(b"{}\n{\"type\":\"attachment\",\"length\":0}").unwrap();
        assert_eq!(payloads(&e), [b"".as_slice()]);
        // Implicit length, header is the last line (with and without newline).
        let e = parse(b"{}\n{\"type\":\"attachment\"}").unwrap();
        assert_eq!(payloads(&e), [b"".as_slice()]);
        let e = parse(b"{}\n{\"type\":\"attachment\"}\n").unwrap();
        assert_eq!(payloads(&e), [b"".as_slice()]);
        // Implicit length, empty line as payload, followed by another item.
        let e = parse(b"{}\n{\"type\":\"attachment\"}\n\n{\"type\":\"event\"}\n{}").unwrap();
        assert_eq!(payloads(&e), [b"".as_slice(), b"{}".as_slice()]);
    }

    #[test]
    fn header_only_envelopes() {
        for body in [
            &b"{}"[..],
            b"{}\n",
            b"{\"event_id\":\"9ec79c33ec9942ab8353589fcb2e04dc\"}\n",
        ] {
            let e = parse(body).unwrap();
            assert!(e.items.is_empty());
        }
    }

    #[test]
    fn stray_trailing_blank_lines_tolerated() {
        let e = parse(b"{}\n{\"type\":\"event\",\"length\":2}\n{}\n\n").unwrap();
        assert_eq!(payloads(&e), [b"{}".as_slice()]);
        let e = parse(b"{}\n{\"type\":\"event\"}\n{}\n\n\r\n  ").unwrap();
        assert_eq!(payloads(&e), [b"{}".as_slice()]);
    }

    #[test]
    fn empty_and_junk_bodies() {
        let e = parse(b"").unwrap_err();
        assert_eq!(e.status(), 400);
        assert_eq!(e.detail(), "empty request body");
        assert_eq!(cause(parse(b"\n\n ")), "missing envelope header");
        assert!(cause(parse(b"garbage")).starts_with("invalid envelope header"));
        assert!(cause(parse(b"[1,2]\n")).starts_with("invalid envelope header"));
        assert!(cause(parse(b"{\"a\":1")).starts_with("invalid envelope header"));
        assert_eq!(
            cause(parse(b"{}x\n")),
            "missing newline after header or payload"
        );
        assert!(cause(parse(b"{}\nnot json\n")).starts_with("invalid item header"));
        assert!(cause(parse(b"{}\n[]\n")).starts_with("invalid item header"));
        assert!(cause(parse(b"{}\n{\"length\":2}\n{}")).contains("missing field `type`"));
        assert!(cause(parse(b"{}\n{\"type\":5}\n{}")).contains("not a string"));
        assert_eq!(
            cause(parse(b"{}\n{\"type\":\"event\"}x\n{}")),
            "missing newline after header or payload"
        );
    }

    #[test]
    fn dashed_and_undashed_uuids() {
        let dashed = parse(b"{\"event_id\":\"22d00b3f-d1b1-4b5d-8d20-49d138cd8a9c\"}\n").unwrap();
        let simple = parse(b"{\"event_id\":\"22d00b3fd1b14b5d8d2049d138cd8a9c\"}\n").unwrap();
        let upper = parse(b"{\"event_id\":\"22D00B3FD1B14B5D8D2049D138CD8A9C\"}\n").unwrap();
        assert_eq!(dashed.headers.event_id, simple.headers.event_id);
        assert_eq!(upper.headers.event_id, simple.headers.event_id);
        assert_eq!(
            simple.headers.event_id.unwrap().simple().to_string(),
            "22d00b3fd1b14b5d8d2049d138cd8a9c"
        );
        // Invalid or non-string ids don't reject the envelope.
        for h in [
            &b"{\"event_id\":\"nope\"}"[..],
            b"{\"event_id\":42}",
            b"{\"event_id\":null}",
        ] {
            assert_eq!(parse(h).unwrap().headers.event_id, None);
        }
    }

    #[test]
    fn unknown_header_keys_retained() {
        let e = parse(b"{\"trace\":{\"trace_id\":\"abc\"},\"x_custom\":[1],\"sdk\":{\"name\":\"s\"}}\n{\"type\":\"event\",\"routing_hint\":\"x\",\"weird\":true}\n{}").unwrap();
        assert_eq!(e.headers.raw["x_custom"], serde_json::json!([1]));
        assert_eq!(e.headers.raw["trace"]["trace_id"], "abc");
        assert_eq!(e.items[0].headers.raw["weird"], true);
        assert_eq!(e.items[0].headers.raw["type"], "event");
    }

    #[test]
    fn unknown_item_types_are_kept_as_unknown_and_skippable() {
        let body = b"{}\n{\"type\":\"trace_metric\",\"item_count\":1}\n{\"items\":[]}\n{\"type\":\"brand_new_thing\",\"length\":3}\nabc\n{\"type\":\"event\"}\n{}\n{\"type\":\"integration\"}\n{}";
        let e = parse(body).unwrap();
        assert_eq!(
            types(&e),
            ["trace_metric", "brand_new_thing", "event", "integration"]
        );
        assert!(e.items[0].headers.ty.is_unknown());
        assert_eq!(e.known_items().count(), 1);
        assert_eq!(e.items[0].headers.item_count, Some(1));
        // And they are exempt from limits.
        let limits = Limits {
            max_event_size: 2,
            ..Limits::default()
        };
        validate_item_counts(&e, &limits).unwrap();
    }

    #[test]
    fn all_item_types_round_trip() {
        for name in [
            "event",
            "transaction",
            "attachment",
            "session",
            "sessions",
            "user_report",
            "feedback",
            "client_report",
            "check_in",
            "profile",
            "profile_chunk",
            "replay_event",
            "replay_recording",
            "replay_video",
            "statsd",
            "metric_buckets",
            "span",
            "log",
            "otel_log",
            "security",
            "raw_security",
            "form_data",
            "nel",
            "something_else",
        ] {
            let t: ItemType = name.parse().unwrap();
            assert_eq!(t.as_str(), name);
            assert_eq!(t.to_string(), name);
            assert_eq!(t.is_unknown(), name == "something_else");
            assert!(!t.rate_limit_category().is_empty());
        }
        assert_eq!(ItemType::parse("profile_chunk_ui"), ItemType::ProfileChunk);
        assert!(ItemType::Event.is_event_class());
        assert!(ItemType::Transaction.is_event_class());
        assert!(ItemType::Security.is_event_class());
        assert!(!ItemType::Attachment.is_event_class());
        assert!(!ItemType::Session.is_event_class());
        assert!(ItemType::Attachment.requires_event_id());
        assert!(!ItemType::ClientReport.requires_event_id());
        assert_eq!(ItemType::Event.rate_limit_category(), "error");
        assert_eq!(ItemType::Transaction.rate_limit_category(), "transaction");
        assert_eq!(ItemType::CheckIn.rate_limit_category(), "monitor");
    }

    #[test]
    fn header_fields() {
        let e = parse(b"{\"dsn\":\"https://k@h/1\",\"sent_at\":\"2025-07-31T23:05:37.0926585+00:00\"}\n{\"type\":\"log\",\"item_count\":3,\"content_type\":\"application/vnd.sentry.items.log+json\"}\n{\"items\":[]}\n").unwrap();
        assert_eq!(e.headers.dsn.as_deref(), Some("https://k@h/1"));
        let s = e.headers.sent_at.unwrap();
        assert_eq!(s.timestamp(), 1754003137);
        assert_eq!(s.timestamp_subsec_nanos(), 92_658_500);
        assert_eq!(e.items[0].headers.item_count, Some(3));
        assert_eq!(e.items[0].headers.length, None);
    }

    #[test]
    fn sent_at_formats_never_reject() {
        let cases: &[(&str, Option<i64>)] = &[
            ("\"2025-01-02T03:04:05Z\"", Some(1735787045)),
            ("\"2025-01-02T03:04:05.123Z\"", Some(1735787045)),
            ("\"2025-01-02T05:04:05+02:00\"", Some(1735787045)),
            ("\"2025-01-02T03:04:05\"", Some(1735787045)),
            ("\"2025-01-02 03:04:05.5\"", Some(1735787045)),
            ("1735787045.25", Some(1735787045)),
            ("1735787045", Some(1735787045)),
            ("\"yesterday\"", None),
            ("null", None),
            ("1e300", None),
            ("{}", None),
        ];
        for (v, expect) in cases {
            let body = format!("{{\"sent_at\":{v}}}\n");
            let e = parse(body.as_bytes()).unwrap();
            assert_eq!(e.headers.sent_at.map(|d| d.timestamp()), *expect, "{v}");
        }
    }

    #[test]
    fn leading_whitespace_and_crlf_headers() {
        let e = parse(b"\n {}\r\n{\"type\":\"event\"} \r\n{\"a\":1}\r\n").unwrap();
        // CR before LF belongs to an implicit-length payload, as in Relay.
        assert_eq!(payloads(&e), [b"{\"a\":1}\r".as_slice()]);
    }

    #[test]
    fn payloads_share_the_body_buffer() {
        let body = Bytes::from_static(b"{}\n{\"type\":\"attachment\",\"length\":3}\nabc\n");
        let e = parse_envelope(body.clone()).unwrap();
        let p = &e.items[0].payload;
        let base = body.as_ptr() as usize;
        assert!((base..base + body.len()).contains(&(p.as_ptr() as usize)));
    }

    #[test]
    fn item_count_cap() {
        let mut body = b"{}\n".to_vec();
        for _ in 0..20 {
            body.extend_from_slice(b"{\"type\":\"x\"}\n\n");
        }
        let e = parse_envelope_with_max_items(Bytes::from(body.clone()), 10).unwrap_err();
        assert_eq!(e.status(), 413);
        assert_eq!(
            parse_envelope_with_max_items(Bytes::from(body), 20)
                .unwrap()
                .items
                .len(),
            20
        );
    }

    #[test]
    fn deep_nesting_is_an_error_not_a_crash() {
        let mut body = b"{\"a\":".to_vec();
        body.extend(std::iter::repeat_n(b'[', 100_000));
        assert_eq!(parse(&body).unwrap_err().status(), 400);
    }

    fn env_of(items: &[(&str, usize)]) -> Envelope {
        let mut body = b"{}\n".to_vec();
        for (ty, len) in items {
            body.extend(format!("{{\"type\":\"{ty}\",\"length\":{len}}}\n").as_bytes());
            body.extend(std::iter::repeat_n(b'x', *len));
            body.push(b'\n');
        }
        parse_envelope(Bytes::from(body)).unwrap()
    }

    #[test]
    fn one_event_class_item_per_envelope() {
        let l = Limits::default();
        validate_item_counts(&env_of(&[("event", 2), ("attachment", 3)]), &l).unwrap();
        for pair in [
            ["event", "event"],
            ["event", "transaction"],
            ["transaction", "security"],
            ["feedback", "event"],
        ] {
            let e = validate_item_counts(&env_of(&[(pair[0], 2), (pair[1], 2)]), &l).unwrap_err();
            assert_eq!(e.status(), 413, "{pair:?}");
            assert_eq!(
                e.detail(),
                format!(
                    "envelope exceeded size limits for type '{}' (https://develop.sentry.dev/sdk/envelopes/#size-limits)",
                    pair[1]
                )
            );
        }
    }

    #[test]
    fn size_and_count_limits() {
        let l = Limits {
            max_event_size: 10,
            max_attachment_size: 10,
            max_attachments_size: 15,
            max_attachment_count: 3,
            max_session_count: 2,
            max_client_reports_count: 1,
            max_check_in_size: 4,
            ..Limits::default()
        };
        let ok = |items: &[(&str, usize)]| validate_item_counts(&env_of(items), &l);
        ok(&[("event", 10)]).unwrap();
        assert_eq!(ok(&[("event", 11)]).unwrap_err().status(), 413);
        assert_eq!(ok(&[("transaction", 11)]).unwrap_err().status(), 413);
        ok(&[("attachment", 10)]).unwrap();
        assert_eq!(ok(&[("attachment", 11)]).unwrap_err().status(), 413);
        assert_eq!(
            ok(&[("attachment", 8), ("attachment", 8)])
                .unwrap_err()
                .status(),
            413
        );
        // user_report counts toward the attachment size budget.
        assert!(ok(&[("attachment", 8), ("user_report", 8)]).is_err());
        assert!(ok(&[("attachment", 1), ("attachment", 1), ("attachment", 1)]).is_ok());
        assert!(ok(&[("attachment", 1); 4]).is_err());
        assert!(ok(&[("session", 1), ("sessions", 1)]).is_ok());
        assert!(ok(&[("session", 1), ("sessions", 1), ("session", 1)]).is_err());
        assert!(ok(&[("client_report", 1), ("client_report", 1)]).is_err());
        assert!(ok(&[("check_in", 4)]).is_ok());
        assert!(ok(&[("check_in", 5)]).is_err());
        assert!(ok(&[("profile", 1), ("profile", 1)]).is_err());
        // Unknown items are exempt.
        assert!(ok(&[("mystery", 1000)]).is_ok());
        let e = ok(&[("event", 11)]).unwrap_err();
        assert!(e.causes()[0].contains("max_event_size"), "{:?}", e.causes());
    }

    #[test]
    fn max_items_from_limits() {
        let l = Limits {
            max_envelope_items: 2,
            ..Limits::default()
        };
        let e = validate_item_counts(&env_of(&[("mystery", 1); 3]), &l).unwrap_err();
        assert_eq!(e.status(), 413);
    }
}
