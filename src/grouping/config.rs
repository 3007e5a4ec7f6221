//! Versioned grouping configurations.
//!
//! A project stores the id of the config its issues were grouped with. Any change to what
//! feeds the hash must ship as a new id, so that a project can keep hashing with the old
//! config (as a secondary) during a transition window instead of splitting every issue.

use serde::{Deserialize, Serialize};

/// The config new projects get.
pub const DEFAULT_CONFIG_ID: &str = "snag:2026-11";

const KNOWN_IDS: &[&str] = &[DEFAULT_CONFIG_ID];

/// A grouping configuration, identified by its id. Serialises as the bare id string.
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
    /// The config with the given id, if this build knows it.
    pub fn by_id(id: &str) -> Option<Self> {
        match id {
            DEFAULT_CONFIG_ID => Some(GroupingConfig {
                id: DEFAULT_CONFIG_ID,
                unknown_variable_placeholder: true,
                message_lines: 2,
                max_context_line_len: 120,
                title_value_len: 100,
            }),
            _ => None,
        }
    }

    pub fn id(&self) -> &str {
        self.id
    }

    /// Every id `by_id` accepts, newest last.
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
        c.id.to_owned()
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
        assert!(GroupingConfig::by_id("newstyle:2023-01-11").is_none());
        for id in GroupingConfig::known_ids() {
            assert_eq!(GroupingConfig::by_id(id).unwrap().id(), *id);
        }
    }

    #[test]
    fn serde_as_id() {
        let c = GroupingConfig::default();
        let s = serde_json::to_string(&c).unwrap();
        assert_eq!(s, format!("\"{DEFAULT_CONFIG_ID}\""));
        let back: GroupingConfig = serde_json::from_str(&s).unwrap();
        assert_eq!(back, c);
        assert!(serde_json::from_str::<GroupingConfig>("\"nope\"").is_err());
    }
}
