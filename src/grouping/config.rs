//! Versioned grouping configurations.
//!
//! A project stores the id of the config its issues were grouped with. Any change to what
//! feeds the hash ships as a new id, and every id keeps hashing exactly as it did when it
//! shipped (`golden.rs` holds the proof), so upgrading Snag never splits existing issues.
//!
//! Moving a project to a newer config without splitting its issues uses a transition id,
//! `<new>+<old>`: the event is grouped by the new config and the old config's hashes are
//! appended as secondary hashes. The event then still finds the issue its old hash belongs
//! to, and the new hashes get attached to that issue on the way (Sentry's secondary
//! grouping config). Once the old hashes no longer matter (say, after a month), the project
//! is set to the new id alone.

use serde::{Deserialize, Serialize};

/// Issue 4's config: what shipped first.
pub const CONFIG_2026_11: &str = "snag:2026-11";
/// Fixes over 2026-11 (each flag below says which), built-in stack-trace rules as rules.
pub const CONFIG_2026_12: &str = "snag:2026-12";

/// The config new projects get.
pub const DEFAULT_CONFIG_ID: &str = CONFIG_2026_12;

const KNOWN_IDS: &[&str] = &[CONFIG_2026_11, CONFIG_2026_12];

/// A grouping configuration, identified by its id. Serialises as the id string (with a
/// `+secondary` suffix during a transition).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(into = "String")]
pub struct GroupingConfig {
    id: &'static str,
    /// Unknown `{{ x }}` fingerprint variables become `<unrecognized-variable-x>` instead of
    /// staying literal (Sentry's fall-2025 behaviour): a typo then shows up in the UI rather
    /// than silently hashing the braces.
    pub(crate) unknown_variable_placeholder: bool,
    /// Lines of an exception value or message kept for grouping.
    pub(crate) message_lines: usize,
    /// Raw context lines longer than this are minified code and never hashed.
    pub(crate) max_context_line_len: usize,
    /// Characters of the exception value's first line kept in a title.
    pub(crate) title_value_len: usize,
    /// 2026-11 hard-coded its few "never group" rules (transpiler runtimes, node internals,
    /// `io.sentry`, native crash handlers); later configs express them, and more, as
    /// stack-trace rules in the same language users write (`enhancers::base_rules`).
    pub(crate) legacy_builtin_rules: bool,
    /// JavaScript function names are checked for `<anonymous>`, `?` and friends after
    /// cutting them to their last `.` segment, as Sentry does: `Object.<anonymous>`
    /// (a Node module's top level) is as anonymous as `<anonymous>`. 2026-11 hashed it.
    pub(crate) js_anonymous_after_trim: bool,
    /// A whitespace-only context line (source not found, blank line) contributes nothing;
    /// 2026-11 hashed it as an empty value.
    pub(crate) skip_blank_context_line: bool,
    /// More JVM code-generation markers are cleaned from class names: Spring 6's
    /// `$$SpringCGLIB$$0`, single-`$` Guice/FastClass forms, `$$?HibernateProxy$?$`,
    /// ByteBuddy and Mockito proxies, and JDK 21 lambda classes (`$$Lambda/0x…`, which
    /// 2026-11 hashed, address and all).
    pub(crate) java_codegen_v2: bool,
    /// Frames with only `filename` or only `abs_path` get the other filled in, as Relay
    /// does, so a frame whose filename is a URL is treated as a URL frame.
    pub(crate) relay_frame_paths: bool,
    /// Ruby: every function starting with `block ` is a block (Sentry's rule); 2026-11 only
    /// recognised `block in …` / `block (N levels) in …`.
    pub(crate) ruby_block_prefix: bool,
    /// PHP 8.4 closure names lose their line number (`{closure:Kernel::handle():12}`).
    pub(crate) php_closure_lines: bool,
    /// C# compiler-generated ordinals (`<Run>d__12`, `<>c__DisplayClass5_0`, `<Main>b__0_1`)
    /// become `<auto>`: they shift when code is added elsewhere in the class.
    pub(crate) csharp_generated_names: bool,
    /// Native symbols are trimmed by `trim_native_function_v2` (Rust `<T as Trait>` heads,
    /// Swift return types and closures, fastcall `@name@8`).
    pub(crate) native_trim_v2: bool,
    /// A lone JavaScript frame without a function is dropped only when it is not a URL;
    /// `file://` counts as one (Node), as it does for context lines.
    pub(crate) js_file_urls_are_urls: bool,
    /// Hashes of an older config, appended after this config's own.
    secondary: Option<Box<GroupingConfig>>,
}

// Hand-written because the `&'static str` id would otherwise tie the derived
// impl to `Deserialize<'static>`.
impl<'de> Deserialize<'de> for GroupingConfig {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let id = String::deserialize(d)?;
        GroupingConfig::by_id(&id)
            .ok_or_else(|| serde::de::Error::custom(format!("unknown grouping config {id:?}")))
    }
}

impl GroupingConfig {
    /// The config with the given id (or `<new>+<old>` transition id), if this build knows it.
    pub fn by_id(id: &str) -> Option<Self> {
        let id = id.trim();
        if let Some((primary, secondary)) = id.split_once('+') {
            let mut cfg = Self::single(primary.trim())?;
            let old = Self::single(secondary.trim())?;
            if old.id != cfg.id {
                cfg.secondary = Some(Box::new(old));
            }
            return Some(cfg);
        }
        Self::single(id)
    }

    fn single(id: &str) -> Option<Self> {
        let v2026_11 = GroupingConfig {
            id: CONFIG_2026_11,
            unknown_variable_placeholder: true,
            message_lines: 2,
            max_context_line_len: 120,
            title_value_len: 100,
            legacy_builtin_rules: true,
            js_anonymous_after_trim: false,
            skip_blank_context_line: false,
            java_codegen_v2: false,
            relay_frame_paths: false,
            ruby_block_prefix: false,
            php_closure_lines: false,
            csharp_generated_names: false,
            native_trim_v2: false,
            js_file_urls_are_urls: false,
            secondary: None,
        };
        match id {
            CONFIG_2026_11 => Some(v2026_11),
            CONFIG_2026_12 => Some(GroupingConfig {
                id: CONFIG_2026_12,
                legacy_builtin_rules: false,
                js_anonymous_after_trim: true,
                skip_blank_context_line: true,
                java_codegen_v2: true,
                relay_frame_paths: true,
                ruby_block_prefix: true,
                php_closure_lines: true,
                csharp_generated_names: true,
                native_trim_v2: true,
                js_file_urls_are_urls: true,
                ..v2026_11
            }),
            _ => None,
        }
    }

    /// The id of the config that decides grouping (without any transition suffix).
    pub fn id(&self) -> &str {
        self.id
    }

    /// The older config whose hashes are appended during a transition.
    pub fn secondary(&self) -> Option<&GroupingConfig> {
        self.secondary.as_deref()
    }

    /// The id as stored: `<id>` or `<id>+<secondary id>`.
    pub fn spec(&self) -> String {
        match &self.secondary {
            Some(s) => format!("{}+{}", self.id, s.id),
            None => self.id.to_owned(),
        }
    }

    /// Every id `by_id` accepts on its own, oldest first.
    pub fn known_ids() -> &'static [&'static str] {
        KNOWN_IDS
    }
}

impl Default for GroupingConfig {
    fn default() -> Self {
        GroupingConfig::by_id(DEFAULT_CONFIG_ID).expect("default config is known")
    }
}

impl TryFrom<String> for GroupingConfig {
    type Error = String;

    fn try_from(id: String) -> Result<Self, String> {
        GroupingConfig::by_id(&id).ok_or_else(|| format!("unknown grouping config {id:?}"))
    }
}

impl From<GroupingConfig> for String {
    fn from(c: GroupingConfig) -> String {
        c.spec()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_and_lookup() {
        let c = GroupingConfig::default();
        assert_eq!(c.id(), DEFAULT_CONFIG_ID);
        assert!(GroupingConfig::known_ids().contains(&DEFAULT_CONFIG_ID));
        assert_eq!(GroupingConfig::known_ids().last(), Some(&DEFAULT_CONFIG_ID));
        assert!(GroupingConfig::by_id("newstyle:2023-01-11").is_none());
        for id in GroupingConfig::known_ids() {
            assert_eq!(GroupingConfig::by_id(id).unwrap().id(), *id);
            assert_eq!(GroupingConfig::by_id(id).unwrap().secondary(), None);
        }
    }

    #[test]
    fn transition_ids() {
        let t = GroupingConfig::by_id("snag:2026-12+snag:2026-11").unwrap();
        assert_eq!(t.id(), CONFIG_2026_12);
        assert_eq!(t.secondary().unwrap().id(), CONFIG_2026_11);
        assert_eq!(t.spec(), "snag:2026-12+snag:2026-11");
        assert_eq!(
            GroupingConfig::by_id(" snag:2026-12 + snag:2026-11 ").unwrap(),
            t
        );
        // A config is not its own secondary.
        let same = GroupingConfig::by_id("snag:2026-12+snag:2026-12").unwrap();
        assert_eq!(same.secondary(), None);
        for bad in ["snag:2026-12+nope", "nope+snag:2026-11", "+", "", "a+b+c"] {
            assert!(GroupingConfig::by_id(bad).is_none(), "{bad:?}");
        }
    }

    #[test]
    fn serde_as_id() {
        for spec in [CONFIG_2026_11, CONFIG_2026_12, "snag:2026-12+snag:2026-11"] {
            let c = GroupingConfig::by_id(spec).unwrap();
            let s = serde_json::to_string(&c).unwrap();
            assert_eq!(s, format!("\"{spec}\""));
            let back: GroupingConfig = serde_json::from_str(&s).unwrap();
            assert_eq!(back, c);
        }
        assert!(serde_json::from_str::<GroupingConfig>("\"nope\"").is_err());
    }
}
