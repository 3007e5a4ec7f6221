//! The normalisation pipeline: legacy aliases, server-side fields, lenient
//! type coercion and size limits, in the order Relay applies them.

mod http;
mod interfaces;
#[cfg(test)]
mod tests;

use super::level::Level;
use super::summary::summarize;
use super::timestamp::{parse_timestamp, to_value};
use super::values::{
    MAX_EVENT_DEPTH, cap_depth, cap_keys, drop_deep, lenient_string, preview, trim_bag,
    truncate_chars,
};
use super::{EventError, ItemKind, NormalizeContext, NormalizedEvent, format_message, scrub};
use chrono::{DateTime, Duration, Utc};
use serde_json::{Map, Value, json};

/// Relay's `MaxChars::Message`.
pub(crate) const MAX_MESSAGE_CHARS: usize = 8192;
/// Only the most recent breadcrumbs are worth their storage (Sentry's SDK
/// default `max_breadcrumbs` is also 100).
const MAX_BREADCRUMBS: usize = 100;
/// Relay's `max_secs_in_future` and `max_secs_in_past` defaults.
const MAX_SECS_IN_FUTURE: i64 = 60;
const MAX_DAYS_IN_PAST: i64 = 30;
/// Relay's `MINIMUM_CLOCK_DRIFT`: below this a `sent_at`/receive gap is
/// network latency, above it the device clock is wrong.
const MIN_CLOCK_DRIFT_MINUTES: i64 = 55;
const DEFAULT_ENVIRONMENT: &str = "production";

/// Relay's `VALID_PLATFORMS`; anything else is stored as `other`.
const VALID_PLATFORMS: &[&str] = &[
    "as3",
    "c",
    "cfml",
    "cocoa",
    "csharp",
    "elixir",
    "go",
    "groovy",
    "haskell",
    "java",
    "javascript",
    "native",
    "node",
    "objc",
    "other",
    "perl",
    "php",
    "python",
    "ruby",
];

/// Event types that only the server (or a specific item type) sets; an
/// explicit one in the payload is trusted, `error`/`default` are inferred.
const EXPLICIT_TYPES: &[&str] = &[
    "transaction",
    "feedback",
    "csp",
    "hpkp",
    "expectct",
    "expectstaple",
    "nel",
];

/// Modern key, then its legacy aliases in Relay's declared order.
const ALIASES: &[(&str, &[&str])] = &[
    ("user", &["sentry.interfaces.User"]),
    ("request", &["sentry.interfaces.Http"]),
    ("contexts", &["sentry.interfaces.Contexts"]),
    ("breadcrumbs", &["sentry.interfaces.Breadcrumbs"]),
    ("exception", &["sentry.interfaces.Exception"]),
    ("stacktrace", &["sentry.interfaces.Stacktrace"]),
    ("template", &["sentry.interfaces.Template"]),
    ("threads", &["sentry.interfaces.Threads"]),
    ("debug_meta", &["sentry.interfaces.DebugMeta"]),
    ("csp", &["sentry.interfaces.Csp"]),
    ("hpkp", &["sentry.interfaces.Hpkp"]),
    ("expectct", &["sentry.interfaces.ExpectCT"]),
    ("expectstaple", &["sentry.interfaces.ExpectStaple"]),
    // raven's captureQuery; Relay keeps it as an unknown key, we give it a
    // readable name so the dashboard can show the query.
    ("query", &["sentry.interfaces.Query"]),
];

/// Turns any accepted payload shape into the canonical stored event.
pub fn normalize(raw: Value, ctx: &NormalizeContext) -> Result<NormalizedEvent, EventError> {
    let mut obj = match raw {
        Value::Object(m) => m,
        other => {
            drop_deep(other);
            return Err(EventError::NotAnObject);
        }
    };
    // First, so every later step works on bounded input.
    cap_keys(&mut obj);
    for v in obj.values_mut() {
        cap_depth(v, MAX_EVENT_DEPTH - 1);
    }
    let mut n = Normalizer {
        obj,
        errors: Vec::new(),
        meta: Map::new(),
        ctx,
        shift: None,
    };
    n.event_id()?;
    n.run();
    let mut data = Value::Object(n.finish());
    if let Some(cfg) = ctx.scrub.as_ref().filter(|c| c.enabled) {
        scrub(&mut data, cfg);
    }
    let summary = summarize(&data);
    Ok(NormalizedEvent { data, summary })
}

pub(crate) struct Normalizer<'a> {
    pub(crate) obj: Map<String, Value>,
    errors: Vec<Value>,
    meta: Map<String, Value>,
    ctx: &'a NormalizeContext,
    /// Clock-drift correction applied to every timestamp in the event.
    pub(crate) shift: Option<Duration>,
}

impl Normalizer<'_> {
    fn run(&mut self) {
        if let Some(Value::Array(errs)) = self.obj.remove("errors") {
            self.errors
                .extend(errs.into_iter().filter(Value::is_object));
        }
        if let Some(Value::Object(m)) = self.obj.remove("_meta") {
            self.meta = m;
        }
        // The authenticated project wins; a payload's own claim is noise.
        self.obj.remove("project");
        if self.obj.get("time_spent").is_some_and(Value::is_null) {
            self.obj.remove("time_spent");
        }
        self.aliases();
        self.timestamps();
        self.platform();
        self.string_fields();
        self.logentry();
        self.interfaces();
        self.tags();
        self.http();
        self.sdk();
        self.data_bags();
        self.fingerprint();
        self.type_and_level();
    }

    pub(crate) fn error(&mut self, kind: &str, name: &str, value: Option<&Value>) {
        let mut e = Map::new();
        e.insert("type".into(), Value::String(kind.into()));
        e.insert("name".into(), Value::String(name.into()));
        if let Some(v) = value {
            let v = match v {
                Value::Array(_) | Value::Object(_) => Value::String(preview(v, 200)),
                Value::String(s) => {
                    let mut s = s.clone();
                    truncate_chars(&mut s, 200);
                    Value::String(s)
                }
                other => other.clone(),
            };
            e.insert("value".into(), v);
        }
        // A hostile payload could otherwise make the error list the
        // biggest part of the stored event.
        if self.errors.len() < 100 {
            self.errors.push(Value::Object(e));
        }
    }

    /// Records Relay-style `_meta` for a value that was cut.
    pub(crate) fn meta_len(&mut self, path: &[&str], original_len: usize) {
        let mut cur = &mut self.meta;
        for p in path {
            let entry = cur
                .entry(p.to_string())
                .or_insert_with(|| Value::Object(Map::new()));
            if !entry.is_object() {
                *entry = Value::Object(Map::new());
            }
            let Value::Object(m) = entry else { return };
            cur = m;
        }
        let entry = cur
            .entry(String::new())
            .or_insert_with(|| Value::Object(Map::new()));
        if let Value::Object(m) = entry {
            m.insert("len".into(), json!(original_len));
        }
    }

    fn event_id(&mut self) -> Result<(), EventError> {
        let id = match self.ctx.event_id {
            Some(id) => id,
            None => match self.obj.get("event_id") {
                None | Some(Value::Null) => uuid::Uuid::new_v4(),
                Some(Value::String(s)) if s.trim().is_empty() => uuid::Uuid::new_v4(),
                Some(Value::String(s)) => uuid::Uuid::parse_str(s.trim()).map_err(|_| {
                    let mut s = s.clone();
                    truncate_chars(&mut s, 64);
                    EventError::InvalidEventId(s)
                })?,
                Some(other) => return Err(EventError::InvalidEventId(preview(other, 64))),
            },
        };
        self.obj
            .insert("event_id".into(), Value::String(id.simple().to_string()));
        Ok(())
    }

    /// Modern key wins; aliases are removed either way (Relay's generated
    /// `obj.remove(modern).or(obj.remove(alias))`), and a null never wins.
    fn aliases(&mut self) {
        for (modern, aliases) in ALIASES {
            let mut chosen = self.obj.remove(*modern).filter(|v| !v.is_null());
            for alias in *aliases {
                if let Some(v) = self.obj.remove(*alias) {
                    if chosen.is_none() && !v.is_null() {
                        chosen = Some(v);
                    } else {
                        drop_deep(v);
                    }
                }
            }
            if let Some(v) = chosen {
                self.obj.insert((*modern).into(), v);
            }
        }
    }

    fn timestamps(&mut self) {
        let received = self.ctx.received;
        if let Some(sent_at) = self.ctx.sent_at {
            let drift = received - sent_at;
            if drift.num_minutes().abs() >= MIN_CLOCK_DRIFT_MINUTES {
                self.shift = Some(drift);
                let mut e = Map::new();
                e.insert("type".into(), json!("clock_drift"));
                e.insert("name".into(), json!("timestamp"));
                e.insert("sdk_time".into(), json!(sent_at.to_rfc3339()));
                e.insert("server_time".into(), json!(received.to_rfc3339()));
                self.errors.push(Value::Object(e));
            }
        }

        let ts = self.take_timestamp("timestamp");
        let mut start = self.take_timestamp("start_timestamp");
        let mut ts_value = ts.unwrap_or(received);

        let limit_future = received
            .checked_add_signed(Duration::seconds(MAX_SECS_IN_FUTURE))
            .unwrap_or(received);
        let limit_past = received
            .checked_sub_signed(Duration::days(MAX_DAYS_IN_PAST))
            .unwrap_or(received);
        let clamp = if ts_value > limit_future {
            Some("future_timestamp")
        } else if ts_value < limit_past {
            Some("past_timestamp")
        } else {
            None
        };
        if let Some(kind) = clamp {
            let mut e = Map::new();
            e.insert("type".into(), json!(kind));
            e.insert("name".into(), json!("timestamp"));
            e.insert("sdk_time".into(), json!(ts_value.to_rfc3339()));
            e.insert("server_time".into(), json!(received.to_rfc3339()));
            self.errors.push(Value::Object(e));
            // Moving the start by the same amount keeps a transaction's
            // duration, which is the part users actually read.
            let delta = received - ts_value;
            start = start.and_then(|s| s.checked_add_signed(delta));
            ts_value = received;
        }
        self.obj.insert("timestamp".into(), to_value(ts_value));
        if let Some(s) = start {
            self.obj.insert("start_timestamp".into(), to_value(s));
        }
        self.obj.insert("received".into(), to_value(received));
    }

    /// Parses, applies clock-drift correction, and reports unreadable values.
    fn take_timestamp(&mut self, key: &str) -> Option<DateTime<Utc>> {
        let raw = self.obj.remove(key)?;
        if raw.is_null() {
            return None;
        }
        match parse_timestamp(&raw) {
            Some(t) => Some(self.shifted(t)),
            None => {
                self.error("invalid_data", key, Some(&raw));
                None
            }
        }
    }

    pub(crate) fn shifted(&self, t: DateTime<Utc>) -> DateTime<Utc> {
        match self.shift {
            Some(d) => t.checked_add_signed(d).unwrap_or(t),
            None => t,
        }
    }

    fn platform(&mut self) {
        let given = self.obj.get("platform").and_then(Value::as_str);
        let valid = |p: &str| {
            let p = p.trim().to_ascii_lowercase();
            // Project platforms are named like `python-django`.
            let base = p.split(['-', '.']).next().unwrap_or("").to_owned();
            [p, base]
                .into_iter()
                .find(|c| VALID_PLATFORMS.contains(&c.as_str()))
        };
        let platform = given
            .and_then(valid)
            .or_else(|| self.ctx.default_platform.as_deref().and_then(valid))
            .unwrap_or_else(|| "other".to_owned());
        self.obj.insert("platform".into(), Value::String(platform));
    }

    /// Plain string attributes: scalars are coerced (raven may send a
    /// number as release), containers are dropped with an error.
    fn string_fields(&mut self) {
        const FIELDS: &[(&str, usize)] = &[
            ("release", 200),
            ("dist", 64),
            ("environment", 64),
            ("logger", 64),
            ("server_name", 256),
            ("transaction", 200),
            ("culprit", 200),
            ("site", 200),
        ];
        for (key, max) in FIELDS {
            let Some(raw) = self.obj.remove(*key) else {
                continue;
            };
            if raw.is_null() {
                continue;
            }
            let Some(s) = lenient_string(&raw) else {
                self.error("invalid_data", key, Some(&raw));
                continue;
            };
            let mut s = s.trim().to_owned();
            if s.is_empty() {
                continue;
            }
            let valid = match *key {
                // Relay rejects, rather than cuts, malformed releases and
                // environments: a truncated release would silently become
                // a different release.
                "release" => {
                    s.chars().count() <= *max
                        && !s.contains(['\n', '\r', '\t', '/', '\\'])
                        && !matches!(s.as_str(), "." | "..")
                        && !s.eq_ignore_ascii_case("latest")
                }
                "environment" => s.chars().count() <= *max && !s.contains(['\n', '\r', '/']),
                _ => {
                    truncate_chars(&mut s, *max);
                    true
                }
            };
            if !valid {
                self.error("invalid_data", key, Some(&raw));
                continue;
            }
            self.obj.insert((*key).into(), Value::String(s));
        }
        if !self.obj.contains_key("environment") {
            self.obj
                .insert("environment".into(), json!(DEFAULT_ENVIRONMENT));
        }
    }

    fn logentry(&mut self) {
        let modern = self.obj.remove("logentry").filter(|v| !v.is_null());
        let legacy = self
            .obj
            .remove("sentry.interfaces.Message")
            .filter(|v| !v.is_null());
        let plain = self.obj.remove("message").filter(|v| !v.is_null());
        let (chosen, raw_message) = match (modern, legacy) {
            (Some(m), _) => (Some(m), plain),
            (None, Some(l)) => (Some(l), plain),
            (None, None) => (plain, None),
        };

        let mut message: Option<String> = None;
        let mut formatted: Option<String> = None;
        let mut params: Option<Value> = None;
        match chosen {
            None => {}
            Some(Value::Object(mut m)) => {
                message = m.remove("message").as_ref().and_then(lenient_string);
                formatted = m.remove("formatted").as_ref().and_then(lenient_string);
                params = match m.remove("params") {
                    None | Some(Value::Null) => None,
                    Some(Value::Array(a)) if a.is_empty() => None,
                    Some(p @ (Value::Array(_) | Value::Object(_))) => Some(p),
                    Some(scalar) => Some(Value::Array(vec![scalar])),
                };
            }
            Some(v) => match lenient_string(&v) {
                Some(s) => formatted = Some(s),
                None => self.error("invalid_data", "logentry", Some(&v)),
            },
        }
        if formatted.as_deref().is_none_or(str::is_empty) {
            formatted = match (&message, &params) {
                (Some(m), Some(Value::Array(p))) => Some(format_message(m, p)),
                (Some(m), Some(p @ Value::Object(_))) => {
                    Some(format_message(m, std::slice::from_ref(p)))
                }
                // GH-3248: a raw top-level `message` next to a Message
                // interface is the formatted text.
                _ => raw_message
                    .as_ref()
                    .and_then(lenient_string)
                    .filter(|s| !s.is_empty())
                    .or_else(|| message.clone()),
            };
        }
        if message.is_some() && message == formatted && params.is_none() {
            message = None;
        }
        if formatted.is_none() {
            // raven's captureQuery has no message of its own.
            formatted = self
                .obj
                .get("query")
                .and_then(|q| q.get("query"))
                .and_then(Value::as_str)
                .map(str::to_owned);
        }
        let Some(mut formatted) = formatted.filter(|f| !f.is_empty()) else {
            if message.is_none() {
                return;
            }
            // Keep an unformattable template rather than lose it.
            let mut le = Map::new();
            le.insert("message".into(), Value::String(message.unwrap_or_default()));
            self.obj.insert("logentry".into(), Value::Object(le));
            return;
        };
        let len = formatted.chars().count();
        if truncate_chars(&mut formatted, MAX_MESSAGE_CHARS) {
            self.meta_len(&["logentry", "formatted"], len);
        }
        let mut le = Map::new();
        le.insert("formatted".into(), Value::String(formatted.clone()));
        if let Some(mut m) = message {
            truncate_chars(&mut m, MAX_MESSAGE_CHARS);
            le.insert("message".into(), Value::String(m));
        }
        if let Some(mut p) = params {
            trim_bag(&mut p, 3, 4096);
            le.insert("params".into(), p);
        }
        self.obj.insert("logentry".into(), Value::Object(le));
        self.obj.insert("message".into(), Value::String(formatted));
    }

    fn fingerprint(&mut self) {
        let Some(raw) = self.obj.remove("fingerprint") else {
            return;
        };
        let items: Vec<Value> = match raw {
            Value::Null => return,
            Value::Array(a) => a,
            Value::String(s) => vec![Value::String(s)],
            other => {
                self.error("invalid_data", "fingerprint", Some(&other));
                return;
            }
        };
        let fp: Vec<Value> = items
            .iter()
            .filter_map(lenient_string)
            .map(|mut s| {
                truncate_chars(&mut s, 1024);
                Value::String(s)
            })
            .collect();
        if !fp.is_empty() {
            self.obj.insert("fingerprint".into(), Value::Array(fp));
        }
    }

    fn type_and_level(&mut self) {
        let explicit = self
            .obj
            .get("type")
            .and_then(Value::as_str)
            .map(|s| s.trim().to_ascii_lowercase())
            .filter(|s| EXPLICIT_TYPES.contains(&s.as_str()));
        let has_exception = self
            .obj
            .get("exception")
            .and_then(|e| e.get("values"))
            .and_then(Value::as_array)
            .is_some_and(|v| !v.is_empty());
        let ty = match self.ctx.item_type {
            ItemKind::Transaction => "transaction".to_owned(),
            ItemKind::Feedback => "feedback".to_owned(),
            ItemKind::Event | ItemKind::Security => explicit.unwrap_or_else(|| {
                let security = ["csp", "hpkp", "expectct", "expectstaple", "nel"]
                    .into_iter()
                    .find(|k| self.obj.get(*k).is_some_and(Value::is_object));
                match (has_exception, security) {
                    (true, _) => "error".to_owned(),
                    (false, Some(k)) => k.to_owned(),
                    (false, None) => "default".to_owned(),
                }
            }),
        };

        let level = match self.obj.remove("level") {
            None | Some(Value::Null) => None,
            Some(raw) => {
                let l = Level::from_json(&raw);
                if l.is_none() {
                    self.error("invalid_data", "level", Some(&raw));
                }
                l
            }
        };
        let level = level.unwrap_or(match ty.as_str() {
            "transaction" | "feedback" => Level::Info,
            _ => Level::Error,
        });
        if ty == "feedback" && !self.obj.contains_key("logentry") {
            // Feedback carries its text in a context; surfacing it as the
            // message gives lists and search something to show.
            let text = self
                .obj
                .get("contexts")
                .and_then(|c| c.get("feedback"))
                .and_then(|f| f.get("message"))
                .and_then(Value::as_str)
                .map(|m| {
                    let mut m = m.to_owned();
                    truncate_chars(&mut m, MAX_MESSAGE_CHARS);
                    m
                });
            if let Some(text) = text.filter(|t| !t.is_empty()) {
                self.obj
                    .insert("logentry".into(), json!({ "formatted": text }));
                self.obj.insert("message".into(), Value::String(text));
            }
        }
        self.obj.insert("type".into(), Value::String(ty));
        self.obj
            .insert("level".into(), Value::String(level.as_str().into()));
    }

    fn finish(mut self) -> Map<String, Value> {
        if !self.errors.is_empty() {
            self.obj.insert("errors".into(), Value::Array(self.errors));
        }
        if !self.meta.is_empty() {
            self.obj.insert("_meta".into(), Value::Object(self.meta));
        }
        self.obj
    }
}
