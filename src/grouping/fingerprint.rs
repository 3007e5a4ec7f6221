//! Client fingerprints (`fingerprint: [...]` with `{{ variable }}` entries) and server-side
//! fingerprint rules in Sentry's text syntax:
//!
//! ```text
//! # comment
//! error.type:DatabaseUnavailable -> system-down
//! stack.function:"query_database" !app:no -> {{ default }}, {{ transaction }}
//! logger:"my.app.*" level:error -> my-app-errors title="Error in {{ transaction }}"
//! ```

use std::fmt;
use std::sync::LazyLock;

use regex::Regex;
use serde::{Deserialize, Serialize};

use super::config::GroupingConfig;
use super::event::{EventView, Frame};
use super::frame::family;
use super::glob::Glob;
use super::title::{crash_frame, formatted_message};

/// The `{{ default }}` marker after resolution; never a real fingerprint value because the
/// resolver never produces a string starting with NUL.
pub(crate) const DEFAULT_MARKER: &str = "\0default";

/// `{{ name }}` as a whole fingerprint entry; returns `name`.
fn variable_name(entry: &str) -> Option<&str> {
    let inner = entry.strip_prefix("{{")?.strip_suffix("}}")?.trim();
    (!inner.is_empty() && !inner.contains(char::is_whitespace)).then_some(inner)
}

pub(crate) fn is_default_entry(entry: &str) -> bool {
    variable_name(entry).is_some_and(|n| n.eq_ignore_ascii_case("default"))
}

/// Resolves fingerprint entries: `{{ default }}` becomes [`DEFAULT_MARKER`], other whole-entry
/// variables their value (placeholders like `<no-transaction>` when missing), literals stay.
pub(crate) fn resolve(entries: &[String], view: &EventView, cfg: &GroupingConfig) -> Vec<String> {
    entries
        .iter()
        .map(|e| match variable_name(e) {
            Some(n) if n.eq_ignore_ascii_case("default") => DEFAULT_MARKER.to_owned(),
            Some(n) => resolve_variable(n, view).unwrap_or_else(|| unknown_variable(e, n, cfg)),
            None => e.clone(),
        })
        .collect()
}

fn unknown_variable(entry: &str, name: &str, cfg: &GroupingConfig) -> String {
    if cfg.unknown_variable_placeholder {
        format!("<unrecognized-variable-{name}>")
    } else {
        entry.to_owned()
    }
}

/// The value of a known variable (or its `<no-...>` placeholder); `None` if unknown.
fn resolve_variable(name: &str, view: &EventView) -> Option<String> {
    let or = |v: Option<&str>, missing: &str| v.unwrap_or(missing).to_owned();
    if let Some(tag) = name.strip_prefix("tags.") {
        return Some(
            view.tag(tag)
                .map(str::to_owned)
                .unwrap_or_else(|| format!("<no-value-for-tag-{tag}>")),
        );
    }
    let lower = name.to_ascii_lowercase();
    let frame = || crash_frame(view, false);
    Some(match lower.as_str() {
        "transaction" => or(view.transaction, "<no-transaction>"),
        "message" => formatted_message(view)
            .or_else(|| {
                view.main_exception()
                    .and_then(|e| e.value)
                    .map(str::to_owned)
            })
            .unwrap_or_else(|| "<no-message>".to_owned()),
        "type" | "error.type" => or(view.main_exception().and_then(|e| e.ty), "<no-type>"),
        "value" | "error.value" => or(view.main_exception().and_then(|e| e.value), "<no-value>"),
        "function" | "stack.function" => or(frame().and_then(|f| f.function), "<no-function>"),
        "path" | "stack.abs_path" => or(
            frame().and_then(|f| f.abs_path.or(f.filename)),
            "<no-abs-path>",
        ),
        "stack.filename" => or(frame().and_then(|f| f.filename), "<no-filename>"),
        "module" | "stack.module" => or(frame().and_then(|f| f.module), "<no-module>"),
        "package" | "stack.package" => or(
            frame()
                .and_then(|f| f.package)
                .map(|p| p.rsplit(['/', '\\']).next().unwrap_or(p)),
            "<no-package>",
        ),
        "level" => or(view.level, "<no-level>"),
        "logger" => or(view.logger, "<no-logger>"),
        _ => return None,
    })
}

static TITLE_VAR_RE: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"\{\{\s*(\S+?)\s*\}\}").unwrap());

/// Expands `{{ var }}` anywhere in a rule's `title=` template; unknown variables stay as written.
pub(crate) fn expand_title(template: &str, view: &EventView) -> String {
    TITLE_VAR_RE
        .replace_all(template, |c: &regex::Captures| {
            resolve_variable(&c[1], view).unwrap_or_else(|| c[0].to_owned())
        })
        .into_owned()
}

/// A rule file failed to parse.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RuleParseError {
    /// 1-based line number.
    pub line: usize,
    pub message: String,
}

impl fmt::Display for RuleParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "fingerprint rules, line {}: {}", self.line, self.message)
    }
}

impl std::error::Error for RuleParseError {}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Key {
    Type,
    Value,
    Message,
    Logger,
    Level,
    Sdk,
    Release,
    Tag,
    // frame matchers: all of a rule's must hit the same frame
    Path,
    Module,
    Function,
    Package,
    Family,
    App,
}

impl Key {
    fn parse(key: &str) -> Option<Key> {
        Some(match key {
            "type" | "error.type" => Key::Type,
            "value" | "error.value" => Key::Value,
            "message" => Key::Message,
            "logger" => Key::Logger,
            "level" => Key::Level,
            "sdk" => Key::Sdk,
            "release" => Key::Release,
            "path" | "stack.abs_path" => Key::Path,
            "module" | "stack.module" => Key::Module,
            "function" | "stack.function" => Key::Function,
            "package" | "stack.package" => Key::Package,
            "family" => Key::Family,
            "app" => Key::App,
            k if k.starts_with("tags.") && k.len() > 5 => Key::Tag,
            _ => return None,
        })
    }

    fn is_frame(self) -> bool {
        matches!(
            self,
            Key::Path | Key::Module | Key::Function | Key::Package | Key::Family | Key::App
        )
    }

    fn case_insensitive(self) -> bool {
        matches!(
            self,
            Key::Value | Key::Message | Key::Level | Key::Path | Key::Package
        )
    }
}

#[derive(Debug, Clone)]
struct Matcher {
    key: Key,
    tag: Option<String>,
    negated: bool,
    pattern: Pattern,
}

#[derive(Debug, Clone)]
enum Pattern {
    Glob(Glob),
    /// `family:` lists families, `app:` is yes/no.
    Families(Vec<String>),
    App(bool),
}

#[derive(Debug, Clone)]
struct Rule {
    text: String,
    matchers: Vec<Matcher>,
    fingerprint: Vec<String>,
    title: Option<String>,
}

/// A parsed set of server-side fingerprint rules. Serialises as its source text.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct FingerprintRules {
    source: String,
    rules: Vec<Rule>,
}

/// What a matching rule asks for.
pub(crate) struct RuleMatch<'r> {
    pub text: &'r str,
    pub fingerprint: &'r [String],
    pub title: Option<&'r str>,
}

impl FingerprintRules {
    pub fn parse(text: &str) -> Result<Self, RuleParseError> {
        let mut rules = Vec::new();
        for (i, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let rule = parse_rule(line).map_err(|message| RuleParseError {
                line: i + 1,
                message,
            })?;
            rules.push(rule);
        }
        Ok(FingerprintRules {
            source: text.to_owned(),
            rules,
        })
    }

    pub fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }

    pub fn len(&self) -> usize {
        self.rules.len()
    }

    /// The source text this was parsed from.
    pub fn as_str(&self) -> &str {
        &self.source
    }

    /// The first rule whose matchers all match.
    pub(crate) fn first_match(&self, view: &EventView) -> Option<RuleMatch<'_>> {
        self.rules
            .iter()
            .find(|r| rule_matches(r, view))
            .map(|r| RuleMatch {
                text: &r.text,
                fingerprint: &r.fingerprint,
                title: r.title.as_deref(),
            })
    }
}

impl TryFrom<String> for FingerprintRules {
    type Error = RuleParseError;

    fn try_from(s: String) -> Result<Self, RuleParseError> {
        FingerprintRules::parse(&s)
    }
}

impl From<FingerprintRules> for String {
    fn from(r: FingerprintRules) -> String {
        r.source
    }
}

/// Splits off the next token: a quoted string (unescaped), a `{{ ... }}` variable, or a run
/// of characters up to whitespace or one of `stops`. Returns (token, was_quoted, rest).
fn next_token<'s>(s: &'s str, stops: &[char]) -> Result<(String, bool, &'s str), String> {
    if let Some(rest) = s.strip_prefix('"') {
        let mut out = String::new();
        let mut chars = rest.char_indices();
        while let Some((i, c)) = chars.next() {
            match c {
                '\\' => match chars.next() {
                    Some((_, n @ ('"' | '\\'))) => out.push(n),
                    // keep other escapes for the glob (`\*` is a literal star)
                    Some((_, n)) => {
                        out.push('\\');
                        out.push(n);
                    }
                    None => break,
                },
                '"' => return Ok((out, true, &rest[i + 1..])),
                _ => out.push(c),
            }
        }
        return Err("unterminated quoted string".to_owned());
    }
    if s.starts_with("{{") {
        let end = s.find("}}").ok_or("unterminated {{ variable")? + 2;
        return Ok((s[..end].to_owned(), false, &s[end..]));
    }
    let end = s
        .find(|c: char| c.is_whitespace() || stops.contains(&c))
        .unwrap_or(s.len());
    Ok((s[..end].to_owned(), false, &s[end..]))
}

/// Finds `->` outside quotes.
fn split_arrow(line: &str) -> Result<(&str, &str), String> {
    let mut in_quotes = false;
    let mut escaped = false;
    for (i, c) in line.char_indices() {
        match c {
            _ if escaped => escaped = false,
            '\\' => escaped = true,
            '"' => in_quotes = !in_quotes,
            '-' if !in_quotes && line[i..].starts_with("->") => {
                return Ok((&line[..i], &line[i + 2..]));
            }
            _ => {}
        }
    }
    Err(if in_quotes {
        "unterminated quoted string".to_owned()
    } else {
        "expected `matcher:value ... -> fingerprint`".to_owned()
    })
}

fn parse_rule(line: &str) -> Result<Rule, String> {
    let (lhs, rhs) = split_arrow(line)?;

    let mut matchers = Vec::new();
    let mut s = lhs.trim_start();
    while !s.is_empty() {
        let (negated, rest) = match s.strip_prefix('!') {
            Some(r) => (true, r),
            None => (false, s),
        };
        let colon = rest
            .find(':')
            .filter(|&i| !rest[..i].contains(char::is_whitespace))
            .ok_or_else(|| format!("expected `key:value` at {:?}", first_word(rest)))?;
        let key_text = &rest[..colon];
        let key = Key::parse(key_text).ok_or_else(|| format!("unknown matcher {key_text:?}"))?;
        let (value, _, after) = next_token(&rest[colon + 1..], &[])?;
        if value.is_empty() {
            return Err(format!("empty value for matcher {key_text:?}"));
        }
        let pattern = match key {
            // Unknown families never match rather than fail the whole rule set: projects
            // saved such rules before families were checked, and their other rules must
            // keep applying.
            Key::Family => {
                Pattern::Families(value.split(',').map(|f| f.trim().to_owned()).collect())
            }
            Key::App => Pattern::App(match value.to_ascii_lowercase().as_str() {
                "yes" | "true" | "1" => true,
                "no" | "false" | "0" => false,
                _ => return Err(format!("app: expects yes or no, got {value:?}")),
            }),
            _ => Pattern::Glob(Glob::new(&value, key == Key::Path, key.case_insensitive())?),
        };
        matchers.push(Matcher {
            key,
            tag: (key == Key::Tag).then(|| key_text[5..].to_owned()),
            negated,
            pattern,
        });
        s = after.trim_start();
    }
    if matchers.is_empty() {
        return Err("a rule needs at least one matcher".to_owned());
    }

    let mut fingerprint = Vec::new();
    let mut title = None;
    let mut s = rhs.trim_start();
    while !s.is_empty() {
        let (tok, quoted, after) = next_token(s, &[',', '='])?;
        if !quoted && after.starts_with('=') {
            let (value, _, after) = next_token(&after[1..], &[])?;
            match tok.as_str() {
                "title" => title = Some(value),
                other => return Err(format!("unknown attribute {other:?}")),
            }
            s = after.trim_start();
            continue;
        }
        // Sentry's grammar makes the comma between values optional: `-> a b` is `a, b`.
        if tok.is_empty() {
            return Err("empty fingerprint value".to_owned());
        }
        fingerprint.push(tok);
        s = after.trim_start();
        if let Some(r) = s.strip_prefix(',') {
            s = r.trim_start();
            if s.is_empty() {
                return Err("trailing comma".to_owned());
            }
        }
    }
    if fingerprint.is_empty() {
        return Err("missing fingerprint after `->`".to_owned());
    }
    Ok(Rule {
        text: line.to_owned(),
        matchers,
        fingerprint,
        title,
    })
}

fn first_word(s: &str) -> &str {
    s.split_whitespace().next().unwrap_or(s)
}

fn glob_any<'a>(m: &Matcher, mut values: impl Iterator<Item = &'a str>) -> bool {
    match &m.pattern {
        Pattern::Glob(re) => values.any(|v| re.is_match(v)),
        _ => false,
    }
}

fn event_matcher(m: &Matcher, view: &EventView) -> bool {
    let hit = match m.key {
        Key::Type => glob_any(m, view.exceptions.iter().filter_map(|e| e.ty)),
        Key::Value => glob_any(m, view.exceptions.iter().filter_map(|e| e.value)),
        Key::Message => glob_any(
            m,
            [view.message_formatted, view.message_template]
                .into_iter()
                .flatten()
                .chain(view.exceptions.iter().filter_map(|e| e.value)),
        ),
        Key::Logger => glob_any(m, view.logger.into_iter()),
        Key::Level => glob_any(m, view.level.into_iter()),
        Key::Sdk => glob_any(m, view.sdk_name.into_iter()),
        Key::Release => glob_any(m, view.release.into_iter()),
        Key::Tag => glob_any(m, m.tag.as_deref().and_then(|t| view.tag(t)).into_iter()),
        _ => unreachable!("frame matcher"),
    };
    hit != m.negated
}

fn frame_matcher(m: &Matcher, f: &Frame) -> bool {
    let hit = match (&m.pattern, m.key) {
        (Pattern::Families(fams), _) => {
            let fam = family(f.platform);
            fams.iter().any(|x| x == "all" || x == fam)
        }
        (Pattern::App(want), _) => f.in_app == *want,
        (Pattern::Glob(re), Key::Path) => [f.abs_path, f.filename]
            .into_iter()
            .flatten()
            .any(|p| re.is_match(p)),
        (Pattern::Glob(re), Key::Module) => f.module.is_some_and(|v| re.is_match(v)),
        (Pattern::Glob(re), Key::Function) => f.function.is_some_and(|v| re.is_match(v)),
        (Pattern::Glob(re), Key::Package) => f.package.is_some_and(|v| re.is_match(v)),
        _ => false,
    };
    hit != m.negated
}

fn rule_matches(rule: &Rule, view: &EventView) -> bool {
    if !rule
        .matchers
        .iter()
        .filter(|m| !m.key.is_frame())
        .all(|m| event_matcher(m, view))
    {
        return false;
    }
    let mut frame_matchers = rule.matchers.iter().filter(|m| m.key.is_frame()).peekable();
    if frame_matchers.peek().is_none() {
        return true;
    }
    let frame_matchers: Vec<&Matcher> = frame_matchers.collect();
    view.all_frames()
        .any(|f| frame_matchers.iter().all(|m| frame_matcher(m, f)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_documented_forms() {
        let rules = FingerprintRules::parse(
            r#"
# comments and blank lines are skipped

error.type:DatabaseUnavailable -> system-down
stack.function:"query_database" -> {{ default }}, {{ transaction }}
type:"ConnectionError" value:"*timed out*" -> connection, timeout title="Timeout in {{ transaction }}"
!app:no module:"my.app.*" family:other -> "my app"
tags.server_name:"web-*" level:error -> web-errors
path:**/vendor/** -> vendor
message:"\*literal star*" logger:db* sdk:sentry.python release:1.* -> odd
"#,
        )
        .unwrap();
        assert_eq!(rules.len(), 7);
        assert!(!rules.is_empty());
        assert_eq!(
            rules.rules[1].fingerprint,
            ["{{ default }}", "{{ transaction }}"]
        );
        assert_eq!(
            rules.rules[2].title.as_deref(),
            Some("Timeout in {{ transaction }}")
        );
        assert_eq!(rules.rules[3].fingerprint, ["my app"]);
        assert!(rules.rules[3].matchers[0].negated);
        assert!(FingerprintRules::default().is_empty());
        assert_eq!(FingerprintRules::parse("").unwrap().len(), 0);
        // Sentry's grammar makes the commas optional.
        let spaced = FingerprintRules::parse("type:X -> a b {{ type }}").unwrap();
        assert_eq!(spaced.rules[0].fingerprint, ["a", "b", "{{ type }}"]);
    }

    #[test]
    fn parse_errors_carry_line_numbers() {
        let cases = [
            ("\nerror.type:X", 2, "expected"),
            ("bogus:X -> a", 1, "unknown matcher"),
            ("type:X ->", 1, "missing fingerprint"),
            ("type:\"X -> a", 1, "unterminated"),
            ("type:X -> a, ", 1, "trailing comma"),
            ("type:X -> a foo=bar", 1, "unknown attribute"),
            ("-> a", 1, "at least one matcher"),
            ("app:maybe -> a", 1, "yes or no"),
        ];
        for (text, line, msg) in cases {
            let err = FingerprintRules::parse(text).unwrap_err();
            assert_eq!(err.line, line, "{text:?}");
            assert!(err.message.contains(msg), "{text:?}: {}", err.message);
            assert!(err.to_string().contains(&format!("line {line}")));
        }
    }

    #[test]
    fn serde_as_text() {
        let rules = FingerprintRules::parse("type:X -> a").unwrap();
        let json = serde_json::to_string(&rules).unwrap();
        assert_eq!(json, "\"type:X -> a\"");
        let back: FingerprintRules = serde_json::from_str(&json).unwrap();
        assert_eq!(back.len(), 1);
        assert!(serde_json::from_str::<FingerprintRules>("\"nope\"").is_err());
    }
}
