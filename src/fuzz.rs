//! Fuzz harnesses: one function per `cargo fuzz` target in `fuzz/`.
//!
//! They live in the library, not in the fuzz crate, so the regular test
//! build compiles and lints them and the regression test below can replay
//! every input a fuzzer ever crashed on (`fuzz/regressions/<target>/`)
//! and every seed (`fuzz/seeds/<target>/`) without cargo-fuzz or nightly
//! flags. Each harness must never panic on any input; where a component
//! promises a bound (decoders never return more than their limit) the
//! harness asserts it, so an unbounded allocation is a crash too.

use crate::event::{self, ItemKind, NormalizeContext, ScrubConfig};
use crate::grouping::{self, FingerprintRules, GroupingConfig};
use crate::ingest::decode::{self, ContentEncoding};
use crate::ingest::envelope;
use crate::ingest::limits::Limits;
use crate::pipeline::process::{ProjectContext, build_event};
use crate::store::KeyInfo;
use bytes::Bytes;
use chrono::{DateTime, TimeZone, Utc};
use serde_json::Value;
use std::sync::LazyLock;

/// Small so a mutated bomb costs little per run, large enough for real
/// payloads (the captured SDK requests are a few KiB).
pub const DECODE_LIMIT: usize = 256 * 1024;

/// Every target, in the order `scripts/fuzz` runs them.
pub const TARGETS: &[&str] = &[
    "envelope",
    "decode",
    "store_body",
    "normalize",
    "search",
    "fingerprint_rules",
    "ingest_all",
];

/// Runs the harness of `target` on `data`. Panics on an unknown name.
pub fn run(target: &str, data: &[u8]) {
    match target {
        "envelope" => envelope(data),
        "decode" => decode(data),
        "store_body" => store_body(data),
        "normalize" => normalize(data),
        "search" => search(data),
        "fingerprint_rules" => fingerprint_rules(data),
        "ingest_all" => crate::ingest::fuzz::fuzz_exercise(data),
        other => panic!("no fuzz target {other}"),
    }
}

/// The envelope parser and the per-envelope item limits.
pub fn envelope(data: &[u8]) {
    let limits = Limits::default();
    let body = Bytes::copy_from_slice(data);
    for max_items in [envelope::DEFAULT_MAX_ITEMS, 3] {
        let Ok(env) = envelope::parse_envelope_with_max_items(body.clone(), max_items) else {
            continue;
        };
        assert!(env.items.len() <= max_items, "item cap ignored");
        let _ = envelope::validate_item_counts(&env, &limits);
        let _ = env.requires_event_id();
        let _ = env.event_item();
        let mut payload_bytes = 0;
        for item in &env.items {
            payload_bytes += item.payload.len();
            if let Some(length) = item.headers.length {
                assert_eq!(item.payload.len(), length, "payload disagrees with length");
            }
            let _ = item.headers.ty.rate_limit_category();
            let _ = item.headers.ty.as_str();
        }
        assert!(payload_bytes <= data.len(), "payloads larger than the body");
    }
}

const ENCODINGS: [ContentEncoding; 5] = [
    ContentEncoding::Identity,
    ContentEncoding::Gzip,
    ContentEncoding::Deflate,
    ContentEncoding::Brotli,
    ContentEncoding::Zstd,
];

/// Every decoder, alone and stacked. The first byte picks the chain (low
/// three bits: the outer encoding, next three: an optional inner one), the
/// rest is the body, so a seed is a selector byte plus a captured body.
pub fn decode(data: &[u8]) {
    let Some((&selector, body)) = data.split_first() else {
        return;
    };
    let outer = ENCODINGS[usize::from(selector & 7) % ENCODINGS.len()];
    let mut chain = vec![outer];
    let inner = usize::from((selector >> 3) & 7);
    if inner < ENCODINGS.len() {
        // Application order: inner first, outer last.
        chain.insert(0, ENCODINGS[inner]);
    }
    let body = Bytes::copy_from_slice(body);
    for limit in [DECODE_LIMIT, 64] {
        if let Ok(out) = decode::decode_body(body.clone(), &chain, limit) {
            assert!(out.len() <= limit, "{chain:?} returned more than its limit");
        }
    }
    let text = String::from_utf8_lossy(body.as_ref());
    if let Ok(value) = http::HeaderValue::from_str(&text) {
        let mut headers = http::HeaderMap::new();
        headers.insert(http::header::CONTENT_ENCODING, value);
        let _ = decode::content_encoding_from_headers(&headers);
    }
}

/// The `/store/` body sniffer (JSON, zlib, base64) and raven's NaN repair.
pub fn store_body(data: &[u8]) {
    let body = Bytes::copy_from_slice(data);
    for limit in [DECODE_LIMIT, 64] {
        if let Ok(out) = decode::decode_store_body(body.clone(), limit) {
            assert!(out.len() <= limit, "store body over its limit");
            let repaired = decode::repair_python_json(&out);
            let _ = serde_json::from_slice::<Value>(&repaired);
        }
    }
    let _ = decode::needs_python_json_repair(Some(&String::from_utf8_lossy(data)));
}

fn received() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 5, 1, 12, 0, 0)
        .single()
        .unwrap_or_default()
}

fn project(rules: &str) -> ProjectContext {
    ProjectContext::new(KeyInfo {
        key_id: 1,
        project_id: 1,
        is_active: true,
        expires_at: None,
        rate_limit_per_minute: None,
        platform: Some("python".into()),
        grouping_config: GroupingConfig::default().id().to_string(),
        fingerprint_rules: rules.to_string(),
        stack_rules: String::new(),
        scrub_data: true,
        scrub_ip: false,
        scrub_defaults: true,
        scrub_sensitive_fields: vec!["card".into()],
        scrub_safe_fields: vec!["session_id".into()],
    })
}

static DEFAULT_PROJECT: LazyLock<ProjectContext> = LazyLock::new(|| project(""));

/// The event normaliser with scrubbing, then grouping, title and culprit
/// (everything `build_event` does before the writer), plus the other
/// payload readers that take event-shaped JSON.
pub fn normalize(data: &[u8]) {
    let Ok(raw) = serde_json::from_slice::<Value>(data) else {
        return;
    };
    let kind = match data.len() % 4 {
        0 => ItemKind::Event,
        1 => ItemKind::Transaction,
        2 => ItemKind::Feedback,
        _ => ItemKind::Security,
    };
    let mut ctx = NormalizeContext::new(received());
    ctx.item_type = kind;
    ctx.client_ip = "192.0.2.1".parse().ok();
    ctx.client_sdk = Some("raven-python/6.10.0".into());
    ctx.sent_at = Some(received());
    ctx.scrub = Some(ScrubConfig {
        scrub_ip: data.len().is_multiple_of(2),
        extra_fields: vec!["card".into()],
        safe_fields: vec!["session_id".into()],
        ..ScrubConfig::default()
    });
    let _ = event::security_reports_to_events(&raw);
    let _ = event::parse_user_report(&raw);
    let _ = event::feedback_from_event(&raw);
    let _ = event::summarize(&raw);
    if let Ok(built) = build_event(&DEFAULT_PROJECT, raw, &ctx) {
        // What the writer stores must read back.
        crate::store::payload::decode(&built.payload).expect("stored payload decodes");
    }
}

/// The issue search syntax.
pub fn search(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let query = crate::search::parse(&text);
    for tag in &query.tags {
        assert!(!tag.key.is_empty(), "empty tag key from {text:?}");
    }
    let _ = crate::search::relative_seconds(&text);
}

/// A typical grouped event the fingerprint rules are matched against.
static RULE_EVENT: LazyLock<Value> = LazyLock::new(|| {
    serde_json::json!({
        "platform": "python",
        "level": "error",
        "logger": "app.jobs",
        "message": "Connection timeout to db-1",
        "release": "app@1.0",
        "tags": [["server", "web-1"], ["region", "eu"]],
        "sdk": {"name": "sentry.python", "version": "2.75.0"},
        "exception": {"values": [{
            "type": "DatabaseUnavailable",
            "value": "timeout after 30s",
            "module": "app.db",
            "stacktrace": {"frames": [
                {"filename": "app/main.py", "abs_path": "/srv/app/main.py", "module": "app.main",
                 "function": "main", "lineno": 3, "in_app": true, "package": "/srv/app"},
                {"filename": "app/db.py", "module": "app.db", "function": "connect",
                 "lineno": 42, "in_app": true}
            ]}
        }]}
    })
});

/// The fingerprint-rule parser; rules that parse are applied to an event.
pub fn fingerprint_rules(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let Ok(rules) = FingerprintRules::parse(&text) else {
        return;
    };
    assert_eq!(rules.as_str(), text, "rules keep their source");
    let result = grouping::compute(&RULE_EVENT, &rules, &GroupingConfig::default());
    let _ = result.primary_hash();
    // Saved rules are re-parsed from their text when the key cache loads.
    let reparsed = FingerprintRules::parse(rules.as_str()).expect("saved rules parse again");
    assert_eq!(reparsed.len(), rules.len());
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    /// Files under `fuzz/<dir>/<target>/`, with their names.
    fn inputs(dir: &str, target: &str) -> Vec<(String, Vec<u8>)> {
        let path = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("fuzz")
            .join(dir)
            .join(target);
        let Ok(entries) = std::fs::read_dir(&path) else {
            return Vec::new();
        };
        let mut out: Vec<(String, Vec<u8>)> = entries
            .filter_map(Result::ok)
            .filter(|e| e.path().is_file())
            .map(|e| {
                (
                    e.file_name().to_string_lossy().into_owned(),
                    std::fs::read(e.path()).unwrap(),
                )
            })
            .collect();
        out.sort();
        out
    }

    /// Every input a fuzzer once crashed on, replayed on every test run.
    #[test]
    fn fuzz_regressions_stay_fixed() {
        for target in TARGETS {
            for (name, data) in inputs("regressions", target) {
                let outcome = std::panic::catch_unwind(|| run(target, &data));
                assert!(outcome.is_ok(), "fuzz/regressions/{target}/{name} panics");
            }
        }
    }

    #[test]
    fn every_target_has_seeds_and_accepts_them() {
        for target in TARGETS {
            let seeds = inputs("seeds", target);
            assert!(!seeds.is_empty(), "no seeds for {target}");
            for (name, data) in seeds {
                let outcome = std::panic::catch_unwind(|| run(target, &data));
                assert!(outcome.is_ok(), "fuzz/seeds/{target}/{name} panics");
            }
        }
    }

    #[test]
    fn seeds_reach_past_the_first_parse() {
        // Seeds that all failed at the first check would leave the fuzzer
        // exploring error paths only.
        let parsed = inputs("seeds", "envelope")
            .iter()
            .filter(|(_, d)| envelope::parse_envelope(Bytes::copy_from_slice(d)).is_ok())
            .count();
        assert!(parsed >= 10, "only {parsed} envelope seeds parse");
        let normalised = inputs("seeds", "normalize")
            .iter()
            .filter_map(|(_, d)| serde_json::from_slice::<Value>(d).ok())
            .filter(|v| event::normalize(v.clone(), &NormalizeContext::new(received())).is_ok())
            .count();
        assert!(normalised >= 10, "only {normalised} normaliser seeds parse");
        let decoded = inputs("seeds", "decode")
            .iter()
            .filter(|(_, d)| {
                let outer = ENCODINGS[usize::from(d[0] & 7) % ENCODINGS.len()];
                outer != ContentEncoding::Identity
                    && decode::decode_body(Bytes::copy_from_slice(&d[1..]), &[outer], DECODE_LIMIT)
                        .is_ok()
            })
            .count();
        assert!(decoded >= 10, "only {decoded} decoder seeds decompress");
    }

    #[test]
    fn decode_selector_covers_every_encoding_and_nesting() {
        let mut seen = std::collections::HashSet::new();
        for selector in 0..=255u8 {
            let outer = ENCODINGS[usize::from(selector & 7) % ENCODINGS.len()];
            let inner = usize::from((selector >> 3) & 7);
            seen.insert((outer, (inner < ENCODINGS.len()).then(|| ENCODINGS[inner])));
        }
        assert_eq!(seen.len(), ENCODINGS.len() * (ENCODINGS.len() + 1));
    }
}
