//! Server-side data scrubbing, modelled on Sentry's default data scrubber:
//! values under sensitive-looking keys are replaced with `[Filtered]`, and
//! credit-card numbers, private keys and URL passwords are cut out of any
//! string, wherever in the event they appear.

#[cfg(test)]
mod tests;

use super::FILTERED;
use aho_corasick::AhoCorasick;
use regex::Regex;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::sync::LazyLock;

/// Sentry's `DEFAULT_SCRUBBED_FIELDS` plus the cookie and authorization
/// headers. Matching is by substring of the lower-cased key with `-` read
/// as `_`, as in Sentry, so `X-Api-Key` and `csrftoken` match too.
pub const DEFAULT_SENSITIVE_FIELDS: &[&str] = &[
    "password",
    "secret",
    "passwd",
    "api_key",
    "apikey",
    "auth",
    "credentials",
    "mysql_pwd",
    "privatekey",
    "private_key",
    "token",
    "session",
    "cookie",
    "authorization",
];

/// Headers that carry the client address; removed with `scrub_ip`.
const IP_HEADERS: &[&str] = &[
    "x-forwarded-for",
    "x-real-ip",
    "forwarded",
    "cf-connecting-ip",
    "true-client-ip",
];

/// Top-level keys that are server-set or structural and never hold user
/// data, so scrubbing them could only break the event.
const SKIP_TOP_LEVEL: &[&str] = &[
    "event_id",
    "timestamp",
    "start_timestamp",
    "received",
    "type",
    "level",
    "platform",
    "sdk",
    "fingerprint",
    "_meta",
    "errors",
    "debug_meta",
    "release",
    "dist",
    "environment",
    "modules",
    "measurements",
    "breakdowns",
    "transaction_info",
];

/// The scrubber walks at most this deep; anything below is replaced
/// wholesale, because unscrubbed data must never slip through.
const MAX_SCRUB_DEPTH: usize = 64;

/// Per-project scrubbing settings (Sentry's "Data Scrubber" options).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct ScrubConfig {
    pub enabled: bool,
    /// Apply [`DEFAULT_SENSITIVE_FIELDS`] and the value patterns.
    pub scrub_defaults: bool,
    /// Additional sensitive field names (substring match).
    pub extra_fields: Vec<String>,
    /// Field names never scrubbed, even if they look sensitive (exact,
    /// case-insensitive match).
    pub safe_fields: Vec<String>,
    /// Remove the user's IP address and the headers that carry it.
    pub scrub_ip: bool,
}

impl Default for ScrubConfig {
    fn default() -> Self {
        ScrubConfig {
            enabled: true,
            scrub_defaults: true,
            extra_fields: Vec::new(),
            safe_fields: Vec::new(),
            scrub_ip: false,
        }
    }
}

/// Card numbers of 13–19 digits, optionally grouped by spaces or dashes;
/// candidates are confirmed with the Luhn checksum so ids and timestamps
/// are rarely hit.
static CREDIT_CARD: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"\b\d(?:[ -]?\d){12,18}\b").expect("static regex"));
static PRIVATE_KEY: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?s)-----BEGIN[A-Z ]*PRIVATE KEY-----.*?-----END[A-Z ]*PRIVATE KEY-----")
        .expect("static regex")
});
static URL_PASSWORD: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"\b([a-zA-Z][a-zA-Z0-9+.-]*://[^:/?#@\s]*):([^@/?#\s]+)@").expect("static regex")
});

/// The default fields as one automaton: the scrubber asks about every key
/// of every event, so matching must not allocate. `-` and `_` are equal in
/// keys, which the automaton handles by holding both spellings.
static DEFAULT_FIELDS: LazyLock<AhoCorasick> = LazyLock::new(|| {
    let spellings = DEFAULT_SENSITIVE_FIELDS
        .iter()
        .flat_map(|f| [f.to_string(), f.replace('_', "-")]);
    AhoCorasick::builder()
        .ascii_case_insensitive(true)
        .build(spellings)
        .expect("static patterns")
});

struct Rules {
    defaults: bool,
    extra: Vec<String>,
    safe: Vec<String>,
    values: bool,
}

fn norm_key(k: &str) -> String {
    k.to_ascii_lowercase().replace('-', "_")
}

impl Rules {
    fn new(cfg: &ScrubConfig) -> Self {
        Rules {
            defaults: cfg.scrub_defaults,
            extra: cfg
                .extra_fields
                .iter()
                .map(|f| norm_key(f.trim()))
                .filter(|f| !f.is_empty())
                .collect(),
            safe: cfg.safe_fields.iter().map(|f| norm_key(f.trim())).collect(),
            values: cfg.scrub_defaults,
        }
    }

    fn is_safe(&self, key: &str) -> bool {
        !self.safe.is_empty() && self.safe.contains(&norm_key(key))
    }

    fn is_sensitive(&self, key: &str) -> bool {
        if self.is_safe(key) {
            return false;
        }
        if self.defaults && DEFAULT_FIELDS.is_match(key) {
            return true;
        }
        if self.extra.is_empty() {
            return false;
        }
        let k = norm_key(key);
        self.extra.iter().any(|f| k.contains(f.as_str()))
    }
}

/// Scrubs a canonical event in place. Safe to call on any JSON value.
pub fn scrub(data: &mut Value, cfg: &ScrubConfig) {
    if !cfg.enabled {
        return;
    }
    let rules = Rules::new(cfg);
    if cfg.scrub_ip {
        scrub_ip(data);
    }
    match data {
        Value::Object(m) => {
            for (k, v) in m.iter_mut() {
                if SKIP_TOP_LEVEL.contains(&k.as_str()) {
                    continue;
                }
                walk(v, &rules, 1);
            }
        }
        other => walk(other, &rules, 0),
    }
}

fn walk(v: &mut Value, rules: &Rules, depth: usize) {
    if depth >= MAX_SCRUB_DEPTH {
        if !v.is_null() {
            super::values::replace(v, Value::String(FILTERED.into()));
        }
        return;
    }
    match v {
        Value::String(s) => {
            if rules.values
                && let Some(new) = scrub_string(s)
            {
                *s = new;
            }
        }
        Value::Number(n) => {
            // Millisecond timestamps have 13 digits and pass Luhn one time
            // in ten, so bare numbers need the length of a real card.
            let text = n.to_string();
            if rules.values && n.is_u64() && text.len() >= 15 && luhn_candidate(&text) {
                *v = Value::String(FILTERED.into());
            }
        }
        Value::Object(m) => {
            for (k, x) in m.iter_mut() {
                if rules.is_safe(k) {
                    continue;
                }
                if rules.is_sensitive(k) {
                    filter_all(x, 0);
                } else {
                    walk(x, rules, depth + 1);
                }
            }
        }
        Value::Array(a) => {
            for x in a.iter_mut() {
                // `[key, value]` pairs (headers, cookies, query strings,
                // tags) are judged by their key like object entries.
                if let Value::Array(pair) = x
                    && pair.len() == 2
                    && let Some(k) = pair[0].as_str()
                {
                    if rules.is_safe(k) {
                        continue;
                    }
                    if rules.is_sensitive(k) {
                        filter_all(&mut pair[1], 0);
                        continue;
                    }
                }
                walk(x, rules, depth + 1);
            }
        }
        _ => {}
    }
}

/// Replaces every non-null leaf, keeping the container shape so the
/// dashboard still renders e.g. `[["sessionid", "[Filtered]"]]`.
fn filter_all(v: &mut Value, depth: usize) {
    match v {
        Value::Null => {}
        Value::String(s) if s.is_empty() => {}
        Value::Array(a) if depth < MAX_SCRUB_DEPTH => {
            for x in a.iter_mut() {
                match x {
                    Value::Array(pair) if pair.len() == 2 && pair[0].is_string() => {
                        filter_all(&mut pair[1], depth + 2)
                    }
                    _ => filter_all(x, depth + 1),
                }
            }
        }
        Value::Object(m) if depth < MAX_SCRUB_DEPTH => {
            for x in m.values_mut() {
                filter_all(x, depth + 1);
            }
        }
        _ => super::values::replace(v, Value::String(FILTERED.into())),
    }
}

/// Returns the scrubbed string when anything matched.
fn scrub_string(s: &str) -> Option<String> {
    // Cheap pre-checks keep the regexes off the vast majority of strings.
    let digits = s.bytes().filter(u8::is_ascii_digit).count();
    let mut out: Option<String> = None;
    if digits >= 13 {
        let cur = out.as_deref().unwrap_or(s);
        let replaced = CREDIT_CARD.replace_all(cur, |c: &regex::Captures<'_>| {
            if luhn_candidate(&c[0]) {
                FILTERED.to_owned()
            } else {
                c[0].to_owned()
            }
        });
        if replaced != cur {
            out = Some(replaced.into_owned());
        }
    }
    if s.contains("PRIVATE KEY-----") {
        let cur = out.as_deref().unwrap_or(s);
        let replaced = PRIVATE_KEY.replace_all(cur, FILTERED);
        if replaced != cur {
            out = Some(replaced.into_owned());
        }
    }
    if s.contains("://") && s.contains('@') {
        let cur = out.as_deref().unwrap_or(s);
        let replaced = URL_PASSWORD.replace_all(cur, format!("${{1}}:{FILTERED}@").as_str());
        if replaced != cur {
            out = Some(replaced.into_owned());
        }
    }
    out
}

/// 13–19 digits (separators ignored) passing the Luhn checksum.
fn luhn_candidate(s: &str) -> bool {
    let digits: Vec<u32> = s.chars().filter_map(|c| c.to_digit(10)).collect();
    if !(13..=19).contains(&digits.len()) || digits.iter().all(|d| *d == digits[0]) {
        return false;
    }
    let sum: u32 = digits
        .iter()
        .rev()
        .enumerate()
        .map(|(i, &d)| {
            if i % 2 == 1 {
                let dd = d * 2;
                if dd > 9 { dd - 9 } else { dd }
            } else {
                d
            }
        })
        .sum();
    sum.is_multiple_of(10)
}

fn scrub_ip(data: &mut Value) {
    if let Some(user) = data.get_mut("user").and_then(Value::as_object_mut) {
        user.remove("ip_address");
        if let Some(geo) = user.get_mut("geo") {
            filter_all(geo, 0);
        }
    }
    let Some(req) = data.get_mut("request").and_then(Value::as_object_mut) else {
        return;
    };
    if let Some(env) = req.get_mut("env").and_then(Value::as_object_mut) {
        env.remove("REMOTE_ADDR");
    }
    if let Some(headers) = req.get_mut("headers") {
        let filter_pair = |k: &str, v: &mut Value| {
            if IP_HEADERS.contains(&k.to_ascii_lowercase().as_str()) {
                filter_all(v, 0);
            }
        };
        match headers {
            Value::Array(pairs) => {
                for p in pairs.iter_mut() {
                    if let Value::Array(pair) = p
                        && pair.len() == 2
                        && let Some(k) = pair[0].as_str().map(str::to_owned)
                    {
                        filter_pair(&k, &mut pair[1]);
                    }
                }
            }
            Value::Object(m) => {
                for (k, v) in m.iter_mut() {
                    filter_pair(k, v);
                }
            }
            _ => {}
        }
    }
}
