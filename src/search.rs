//! Sentry-style issue search syntax, parsed into a typed query (pure code).
//!
//! `parse("is:unresolved level:error release:1.2 !browser:Firefox \"bad thing\"")`
//! understands: free text (words or quoted phrases, matched against title and
//! culprit), `is:unresolved|resolved|ignored|regressed|assigned|unassigned`,
//! `level:`, `release:`, `environment:` (or `env:`), `assigned:me|none|<email>`,
//! `has:user`, and any other `key:value` as a tag filter. A leading `!`
//! negates a filter. Values may be quoted. Nothing here touches SQL; the
//! store binds every value as a parameter.

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
}
