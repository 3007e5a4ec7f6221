//! Sentry-style issue search syntax, parsed into a typed query (pure code).
//!
//! `parse("is:unresolved level:error release:1.2 !browser:Firefox \"bad thing\"")`
//! understands: free text (words or quoted phrases, matched against title and
//! culprit), `is:unresolved|resolved|ignored|regressed|assigned|unassigned`,
//! `level:`, `release:`, `environment:` (or `env:`), `assigned:me|none|<email>`,
//! `has:user`, `lastSeen:-24h` / `firstSeen:-7d` (also `age:-7d`; units
//! m, h, d, w), and any other `key:value` as a tag filter. A leading `!`
//! negates a filter. Values may be quoted. Nothing here touches SQL; the
//! store binds every value as a parameter.
//!
//! Public API: [`parse`] → [`SearchQuery`] (fields: `text`, `status`,
//! `level`, `assigned`, `has_user`, `last_seen_within`, `first_seen_within`,
//! `tags`), consumed by `Store::search_issues`. Malformed input never fails:
//! what is not a recognised filter is free text.

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StatusFilter {
    Unresolved,
    Resolved,
    Ignored,
    Regressed,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AssignedFilter {
    Me,
    Nobody,
    Anybody,
    Email(String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TagFilter {
    pub key: String,
    pub value: String,
    pub negated: bool,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SearchQuery {
    pub text: Vec<String>,
    pub status: Option<StatusFilter>,
    pub level: Option<String>,
    pub assigned: Option<AssignedFilter>,
    pub has_user: Option<bool>,
    /// Only issues seen within this many seconds (`lastSeen:-24h`).
    pub last_seen_within: Option<i64>,
    /// Only issues first seen within this many seconds (`firstSeen:-7d`, `age:-7d`).
    pub first_seen_within: Option<i64>,
    /// Tag filters, including `release`, `environment` and any `key:value`.
    pub tags: Vec<TagFilter>,
}

/// Splits on whitespace, keeping quoted runs (with their quotes removed)
/// together, also after a `key:`.
fn tokens(input: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut current = String::new();
    let mut in_quotes = false;
    for c in input.chars() {
        match c {
            '"' => in_quotes = !in_quotes,
            c if c.is_whitespace() && !in_quotes => {
                if !current.is_empty() {
                    out.push(std::mem::take(&mut current));
                }
            }
            c => current.push(c),
        }
    }
    if !current.is_empty() {
        out.push(current);
    }
    out
}

/// `-24h` → 86400. Sentry writes relative times with a leading minus.
pub fn relative_seconds(value: &str) -> Option<i64> {
    let value = value.strip_prefix('-').unwrap_or(value);
    let unit = value.chars().last()?;
    let n: i64 = value[..value.len() - unit.len_utf8()].parse().ok()?;
    let scale = match unit {
        'm' => 60,
        'h' => 3600,
        'd' => 86_400,
        'w' => 7 * 86_400,
        _ => return None,
    };
    (n > 0).then(|| n.saturating_mul(scale))
}

fn is_key(key: &str) -> bool {
    !key.is_empty()
        && key
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'))
}

pub fn parse(input: &str) -> SearchQuery {
    let mut query = SearchQuery::default();
    for token in tokens(input) {
        let (negated, body) = match token.strip_prefix('!') {
            Some(rest) => (true, rest),
            None => (false, token.as_str()),
        };
        // `http://…` is a URL someone pasted, not a filter on a tag `http`.
        let Some((key, value)) = body
            .split_once(':')
            .filter(|(k, v)| is_key(k) && !v.is_empty() && !v.starts_with("//"))
        else {
            query.text.push(token);
            continue;
        };
        match (key, value) {
            ("is", "unresolved") => query.status = Some(StatusFilter::Unresolved),
            ("is", "resolved") => query.status = Some(StatusFilter::Resolved),
            ("is", "ignored" | "archived" | "muted") => query.status = Some(StatusFilter::Ignored),
            ("is", "regressed") => query.status = Some(StatusFilter::Regressed),
            ("is", "assigned") => query.assigned = Some(AssignedFilter::Anybody),
            ("is", "unassigned") => query.assigned = Some(AssignedFilter::Nobody),
            ("level", level) => query.level = Some(level.to_ascii_lowercase()),
            ("assigned", "me") => query.assigned = Some(AssignedFilter::Me),
            ("assigned", "none") => query.assigned = Some(AssignedFilter::Nobody),
            ("assigned", email) => query.assigned = Some(AssignedFilter::Email(email.to_string())),
            ("has", "user") => query.has_user = Some(!negated),
            ("lastSeen" | "last_seen", v) if relative_seconds(v).is_some() => {
                query.last_seen_within = relative_seconds(v)
            }
            ("firstSeen" | "first_seen" | "age", v) if relative_seconds(v).is_some() => {
                query.first_seen_within = relative_seconds(v)
            }
            ("env", value) | ("environment", value) => query.tags.push(TagFilter {
                key: "environment".into(),
                value: value.into(),
                negated,
            }),
            (key, value) => query.tags.push(TagFilter {
                key: key.into(),
                value: value.into(),
                negated,
            }),
        }
    }
    query
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_every_filter_kind() {
        let q = parse(
            r#"is:regressed level:ERROR release:"app 1.0" env:prod !browser:Firefox assigned:me has:user "card declined" timeout"#,
        );
        assert_eq!(q.status, Some(StatusFilter::Regressed));
        assert_eq!(q.level.as_deref(), Some("error"));
        assert_eq!(q.assigned, Some(AssignedFilter::Me));
        assert_eq!(q.has_user, Some(true));
        assert_eq!(q.text, vec!["card declined", "timeout"]);
        assert_eq!(
            q.tags,
            vec![
                TagFilter {
                    key: "release".into(),
                    value: "app 1.0".into(),
                    negated: false
                },
                TagFilter {
                    key: "environment".into(),
                    value: "prod".into(),
                    negated: false
                },
                TagFilter {
                    key: "browser".into(),
                    value: "Firefox".into(),
                    negated: true
                },
            ]
        );
    }

    #[test]
    fn odd_input_is_free_text_not_an_error() {
        let q = parse("http://x.io/a:b ':' ' OR 1=1 -- :value key: \"unterminated");
        assert!(q.tags.is_empty(), "{:?}", q.tags);
        assert_eq!(
            q.text,
            vec![
                "http://x.io/a:b",
                "':'",
                "'",
                "OR",
                "1=1",
                "--",
                ":value",
                "key:",
                "unterminated"
            ]
        );
        assert_eq!(parse("").text, Vec::<String>::new());
        assert_eq!(
            parse("is:unassigned").assigned,
            Some(AssignedFilter::Nobody)
        );
        assert_eq!(parse("!has:user").has_user, Some(false));
    }

    #[test]
    fn relative_time_filters() {
        let q = parse("lastSeen:-24h age:-2w");
        assert_eq!(q.last_seen_within, Some(86_400));
        assert_eq!(q.first_seen_within, Some(14 * 86_400));
        assert!(q.tags.is_empty());
        assert_eq!(relative_seconds("-30m"), Some(1800));
        assert_eq!(relative_seconds("-0h"), None);
        assert_eq!(relative_seconds("-5y"), None);
        // Not a relative time: an ordinary tag filter.
        assert_eq!(parse("lastSeen:yesterday").tags.len(), 1);
    }
}
