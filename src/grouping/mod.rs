//! Sentry-style event grouping: which issue an event belongs to.
//!
//! [`compute`] turns Sentry event JSON into a list of hashes (primary first) plus everything
//! needed to explain them. An event joins the issue that owns **any** of its hashes; the
//! other hashes are then attached to that issue. That is what keeps issues together when
//! in-app flags or the grouping config change: the `system` hash (all frames) stays stable
//! when the `app` hash (in-app frames only) moves, and vice versa.
//!
//! Before anything looks at the frames, stack-trace rules ([`StackRules`], after the
//! config's built-in ones) may change frames' in-app flags and categories; their grouping
//! actions (`-group`, `max-frames`, ...) apply when the stacks are hashed.
//!
//! Order of precedence (reference `grouping.md` §1):
//! 1. a legacy `checksum`, used as the only hash;
//! 2. server-side [`FingerprintRules`] (first match replaces the event's fingerprint);
//! 3. the fingerprint: absent / `["{{ default }}"]` means default grouping, no
//!    `{{ default }}` replaces it entirely, `{{ default }}` plus other entries salts it;
//! 4. default grouping: exception chain (type + in-app frames, or type + parameterised value
//!    when no stack contributes), else the single crashed/current thread's stack, else the
//!    bare stacktrace, else the parameterised message template;
//! 5. nothing at all: md5 of nothing, so such events share one issue per project.
//!
//! Pure functions only: no I/O, no clock, no randomness.

mod component;
mod config;
mod enhancers;
mod event;
mod fingerprint;
mod frame;
mod glob;
mod message;
mod stacktrace;
mod strategy;
mod title;

#[cfg(test)]
mod golden;
#[cfg(test)]
mod platform_tests;
#[cfg(test)]
mod tests;

use serde::{Deserialize, Serialize};

pub use component::{Component, ComponentValue};
pub use config::{CONFIG_2026_11, CONFIG_2026_12, DEFAULT_CONFIG_ID, GroupingConfig};
pub use enhancers::{StackRuleParseError, StackRules, builtin_stack_rules};
pub use fingerprint::{FingerprintRules, RuleParseError};
pub use message::{normalize_message_for_grouping, parameterize};

use component::{ValueHasher, md5_hex};
use event::EventView;
use fingerprint::{DEFAULT_MARKER, is_default_entry};
use strategy::RawVariant;

/// Everything grouping decided about one event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GroupingResult {
    /// Hashes of the contributing variants, primary first (`app` before `system`); 32
    /// lower-case hex characters each; never empty.
    pub hashes: Vec<String>,
    /// Every variant considered, contributing or not, for the "grouping info" view.
    pub variants: Vec<Variant>,
    pub title: String,
    /// Display only, never part of a hash.
    pub culprit: String,
    pub metadata: IssueMetadata,
    /// The text of the server-side rule that set the fingerprint, if one matched.
    pub matched_rule: Option<String>,
    pub fingerprint_kind: FingerprintKind,
}

impl GroupingResult {
    pub fn primary_hash(&self) -> &str {
        &self.hashes[0]
    }
}

/// One way of hashing the event (`app`, `system`, `default`, `custom-fingerprint`,
/// `checksum`, `fallback`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Variant {
    pub name: String,
    /// Human-readable summary of what was hashed, e.g. "in-app exception stacktrace".
    pub description: String,
    /// Set only when the variant contributes.
    pub hash: Option<String>,
    pub contributes: bool,
    /// Why the variant does not contribute, when it does not.
    pub hint: Option<String>,
    /// The tree of values; contributing leaves are what was hashed.
    pub component: Component,
    /// The resolved fingerprint, for custom and salted (hybrid) variants.
    pub fingerprint: Option<Vec<String>>,
}

/// Issue metadata shown in lists, from the main exception and crash frame (or the message).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct IssueMetadata {
    #[serde(rename = "type", default, skip_serializing_if = "Option::is_none")]
    pub ty: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub filename: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub function: Option<String>,
}

/// Where the grouping key came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FingerprintKind {
    /// Built-in strategies (exception, stack, message, fallback).
    Default,
    /// The client's fingerprint (without `{{ default }}`) or legacy checksum replaced them.
    Custom,
    /// The client's fingerprint combined `{{ default }}` with extra values.
    Hybrid,
    /// A server-side fingerprint rule matched (see `matched_rule` and the variants for
    /// whether it replaced or salted default grouping).
    Rule,
}

/// Groups one event. `event` is Sentry event JSON in any of the shapes SDKs send.
pub fn compute(
    event: &serde_json::Value,
    rules: &FingerprintRules,
    config: &GroupingConfig,
) -> GroupingResult {
    compute_with(event, rules, &StackRules::default(), config)
}

/// [`compute`] with the project's stack-trace rules, which run (after the config's
/// built-in ones) before anything else looks at the frames. During a config transition
/// (`config.secondary()`), the old config's hashes follow the new ones, so the event still
/// finds the issue it would have joined before.
pub fn compute_with(
    event: &serde_json::Value,
    rules: &FingerprintRules,
    stack_rules: &StackRules,
    config: &GroupingConfig,
) -> GroupingResult {
    let mut result = compute_one(event, rules, stack_rules, config);
    if let Some(old) = config.secondary() {
        for h in compute_one(event, rules, stack_rules, old).hashes {
            if !result.hashes.contains(&h) {
                result.hashes.push(h);
            }
        }
    }
    result
}

fn compute_one(
    event: &serde_json::Value,
    rules: &FingerprintRules,
    stack_rules: &StackRules,
    config: &GroupingConfig,
) -> GroupingResult {
    let mut view = EventView::parse(event);
    if config.relay_frame_paths {
        view.fill_frame_paths();
    }
    let stack_rules = enhancers::RuleSet::new(config, stack_rules);
    view.apply_stack_rules(&stack_rules);
    let rule = rules.first_match(&view);
    let strategies = strategy::strategy_variants(&mut view, config, &stack_rules);

    let (mut metadata_title, culprit) = (
        title::metadata_and_title(&view, config),
        title::culprit(&view),
    );
    if let Some(t) = rule.as_ref().and_then(|r| r.title) {
        metadata_title.1 = fingerprint::expand_title(t, &view);
    }
    let (metadata, title) = metadata_title;

    let matched_rule = rule.as_ref().map(|r| r.text.to_owned());
    let (variants, kind) = if let Some(checksum) = view.checksum {
        (vec![checksum_variant(checksum)], FingerprintKind::Custom)
    } else {
        let entries: Option<&[String]> = match &rule {
            Some(r) => Some(r.fingerprint),
            None => view.fingerprint.as_deref(),
        };
        let from_rule = rule.is_some();
        apply_fingerprint(strategies, entries, from_rule, &view, config)
    };

    let mut hashes: Vec<String> = Vec::with_capacity(2);
    // `system` last: it is the most stable hash, but the least specific.
    for v in variants.iter().filter(|v| v.name != "system") {
        if let (true, Some(h)) = (v.contributes, &v.hash) {
            hashes.push(h.clone());
        }
    }
    for v in variants.iter().filter(|v| v.name == "system") {
        if let (true, Some(h)) = (v.contributes, &v.hash) {
            hashes.push(h.clone());
        }
    }
    hashes.dedup();
    if hashes.is_empty() {
        // Unreachable by construction (fallback always contributes); kept so callers can
        // rely on `hashes[0]`.
        hashes.push(component::empty_hash());
    }

    GroupingResult {
        hashes,
        variants,
        title,
        culprit,
        metadata,
        matched_rule,
        fingerprint_kind: kind,
    }
}

fn checksum_variant(checksum: &str) -> Variant {
    let is_md5 = checksum.len() == 32
        && checksum
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
    let hash = if is_md5 {
        checksum.to_owned()
    } else {
        md5_hex(checksum)
    };
    Variant {
        name: "checksum".to_owned(),
        description: "legacy checksum".to_owned(),
        hash: Some(hash),
        contributes: true,
        hint: None,
        component: Component::leaf("checksum", checksum),
        fingerprint: None,
    }
}

fn finish(raw: RawVariant, fingerprint: Option<Vec<String>>) -> Variant {
    let contributes = raw.contributes();
    Variant {
        name: raw.name.to_owned(),
        description: raw.description,
        hash: if contributes { raw.hash } else { None },
        contributes,
        hint: raw.component.hint.as_ref().map(|h| h.to_string()),
        component: raw.component,
        fingerprint,
    }
}

fn apply_fingerprint(
    mut strategies: Vec<RawVariant>,
    entries: Option<&[String]>,
    from_rule: bool,
    view: &EventView,
    cfg: &GroupingConfig,
) -> (Vec<Variant>, FingerprintKind) {
    let default_kind = if from_rule {
        FingerprintKind::Rule
    } else {
        FingerprintKind::Default
    };
    let entries = match entries {
        Some(e) if !(e.is_empty() || e.len() == 1 && is_default_entry(&e[0])) => e,
        _ => {
            if !strategies.iter().any(RawVariant::contributes) {
                strategies.push(strategy::fallback());
            }
            return (
                strategies.into_iter().map(|v| finish(v, None)).collect(),
                default_kind,
            );
        }
    };
    let resolved = fingerprint::resolve(entries, view, cfg);
    let display: Vec<String> = resolved
        .iter()
        .map(|e| {
            if e == DEFAULT_MARKER {
                "{{ default }}".to_owned()
            } else {
                e.clone()
            }
        })
        .collect();

    if !resolved.iter().any(|e| e == DEFAULT_MARKER) {
        // Custom: the fingerprint alone decides; strategies are kept for display.
        let mut c = Component::new("custom-fingerprint");
        let mut h = ValueHasher::new();
        for e in &resolved {
            c.values.push(ComponentValue::Value(e.clone()));
            h.tagged("fingerprint", e);
        }
        let mut out = vec![Variant {
            name: "custom-fingerprint".to_owned(),
            description: if from_rule {
                "fingerprint from server-side rule".to_owned()
            } else {
                "custom fingerprint from the client".to_owned()
            },
            hash: Some(h.finish()),
            contributes: true,
            hint: None,
            component: c,
            fingerprint: Some(display.clone()),
        }];
        for mut v in strategies {
            v.component.ignore("custom fingerprint takes precedence");
            out.push(finish(v, None));
        }
        let kind = if from_rule {
            FingerprintKind::Rule
        } else {
            FingerprintKind::Custom
        };
        return (out, kind);
    }

    // Hybrid: each contributing variant is salted with the other entries, `{{ default }}`
    // expanding in place to that variant's own values.
    if !strategies.iter().any(RawVariant::contributes) {
        strategies.push(strategy::fallback());
    }
    let out = strategies
        .into_iter()
        .map(|mut v| {
            if v.contributes() {
                let mut h = ValueHasher::new();
                for e in &resolved {
                    if e == DEFAULT_MARKER {
                        v.component.feed(&mut h);
                    } else {
                        h.tagged("fingerprint", e);
                    }
                }
                v.hash = Some(h.finish());
                v.description = format!("{} salted with fingerprint", v.description);
            }
            finish(v, Some(display.clone()))
        })
        .collect();
    let kind = if from_rule {
        FingerprintKind::Rule
    } else {
        FingerprintKind::Hybrid
    };
    (out, kind)
}
