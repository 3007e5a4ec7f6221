use serde::{Deserialize, Deserializer, Serialize};
use std::fmt;
use std::str::FromStr;

/// Severity of an event. Ordered from least to most severe so that
/// "the worst level an issue has seen" is a plain `max`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Level {
    Debug,
    Info,
    Warning,
    #[default]
    Error,
    Fatal,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown level: {0:?}")]
pub struct ParseLevelError(pub String);

impl Level {
    pub const ALL: [Level; 5] = [
        Level::Debug,
        Level::Info,
        Level::Warning,
        Level::Error,
        Level::Fatal,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Level::Debug => "debug",
            Level::Info => "info",
            Level::Warning => "warning",
            Level::Error => "error",
            Level::Fatal => "fatal",
        }
    }

    /// raven's logging handler sends `record.levelno`; Relay only maps the
    /// five standard numbers, and so do we, so a custom level such as 25
    /// is reported as invalid rather than silently guessed.
    pub fn from_python_level(n: i64) -> Option<Level> {
        match n {
            10 => Some(Level::Debug),
            20 => Some(Level::Info),
            30 => Some(Level::Warning),
            40 => Some(Level::Error),
            50 => Some(Level::Fatal),
            _ => None,
        }
    }

    /// Lenient reading of a JSON `level` field (string or number).
    pub fn from_json(v: &serde_json::Value) -> Option<Level> {
        match v {
            serde_json::Value::String(s) => s.parse().ok(),
            serde_json::Value::Number(n) => {
                let f = n.as_f64()?;
                if f.fract() != 0.0 {
                    return None;
                }
                Level::from_python_level(f as i64)
            }
            _ => None,
        }
    }
}

impl fmt::Display for Level {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Level {
    type Err = ParseLevelError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let t = s.trim();
        let lower = t.to_ascii_lowercase();
        Ok(match lower.as_str() {
            "debug" => Level::Debug,
            "info" | "log" => Level::Info,
            "warning" | "warn" => Level::Warning,
            "error" => Level::Error,
            "fatal" | "critical" => Level::Fatal,
            _ => match t.parse::<i64>() {
                Ok(n) => Level::from_python_level(n).ok_or_else(|| ParseLevelError(s.into()))?,
                Err(_) => return Err(ParseLevelError(s.into())),
            },
        })
    }
}

impl<'de> Deserialize<'de> for Level {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let v = serde_json::Value::deserialize(d)?;
        Level::from_json(&v).ok_or_else(|| serde::de::Error::custom(format!("unknown level: {v}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_aliases_and_python_levels() {
        let cases = [
            ("debug", Level::Debug),
            ("INFO", Level::Info),
            ("log", Level::Info),
            ("warn", Level::Warning),
            ("warning", Level::Warning),
            ("error", Level::Error),
            ("critical", Level::Fatal),
            ("fatal", Level::Fatal),
            ("10", Level::Debug),
            ("50", Level::Fatal),
        ];
        for (s, l) in cases {
            assert_eq!(s.parse::<Level>().unwrap(), l, "{s}");
        }
        assert!("verbose".parse::<Level>().is_err());
        assert!("25".parse::<Level>().is_err());
        assert_eq!(Level::from_json(&serde_json::json!(40)), Some(Level::Error));
        assert_eq!(Level::from_json(&serde_json::json!(40.5)), None);
        assert_eq!(Level::from_json(&serde_json::json!(null)), None);
    }

    #[test]
    fn ordering_and_serde() {
        assert!(Level::Fatal > Level::Error && Level::Warning > Level::Info);
        assert_eq!(Level::default(), Level::Error);
        assert_eq!(
            serde_json::to_string(&Level::Warning).unwrap(),
            "\"warning\""
        );
        let l: Level = serde_json::from_str("30").unwrap();
        assert_eq!(l, Level::Warning);
        let l: Level = serde_json::from_str("\"critical\"").unwrap();
        assert_eq!(l, Level::Fatal);
        for l in Level::ALL {
            assert_eq!(l.as_str().parse::<Level>().unwrap(), l);
        }
    }
}
