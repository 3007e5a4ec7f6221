//! Sentry's rule globs, shared by fingerprint rules and stack-trace rules.
//!
//! `*` matches any run of characters, `?` one character, `[...]` a class (`[!...]` negated)
//! and `\x` a literal `x`. In path mode `*` and `?` stop at `/`, `**` crosses it, and
//! backslashes in the value are read as `/` so Windows paths match the same patterns.
//! Stack-trace rules also let a leading `**/` match no directory at all (`**/vendor/**`
//! matches `vendor/x.php`); fingerprint rules keep their original reading, in which it
//! needs a `/` before `vendor`, because their matches decide existing issues' hashes.

use std::borrow::Cow;

use regex::Regex;

#[derive(Debug, Clone)]
pub(crate) struct Glob {
    kind: Kind,
    path: bool,
    ci: bool,
}

/// How a path glob's leading `**/` reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum LeadingGlobstar {
    /// At least one `/` before the rest (fingerprint rules, as they always were).
    NeedsSlash,
    /// Zero or more whole directories (stack-trace rules).
    MayBeEmpty,
}

#[derive(Debug, Clone)]
enum Kind {
    /// No wildcard at all: a string comparison (the common case in rules, e.g.
    /// `function:processTicksAndRejections`), lower-cased when case-insensitive.
    Exact(String),
    /// A literal followed by one `*` outside path mode, e.g. `module:io.sentry.*`.
    Prefix(String),
    /// Path mode `**/dir/**`: the value has `dir` as a whole directory somewhere (or, with
    /// `at_start`, as its first directory).
    Directory { dir: String, at_start: bool },
    /// `required` is the pattern's longest literal run: a value without it cannot match,
    /// and checking that is far cheaper than running the regex.
    Regex { re: Regex, required: String },
}

fn is_special(c: char) -> bool {
    matches!(c, '*' | '?' | '[' | '\\')
}

impl Glob {
    pub fn new(glob: &str, path: bool, ci: bool) -> Result<Glob, String> {
        Glob::with_leading(glob, path, ci, LeadingGlobstar::NeedsSlash)
    }

    pub fn with_leading(
        glob: &str,
        path: bool,
        ci: bool,
        leading: LeadingGlobstar,
    ) -> Result<Glob, String> {
        let fold = |s: &str| if ci { s.to_lowercase() } else { s.to_owned() };
        let kind = if !glob.contains(is_special) {
            Kind::Exact(fold(glob))
        } else if !path
            && let Some(lit) = glob.strip_suffix('*')
            && !lit.contains(is_special)
        {
            Kind::Prefix(fold(lit))
        } else if path
            && let Some(dir) = glob.strip_prefix("**/").and_then(|g| g.strip_suffix("/**"))
            && !dir.is_empty()
            && !dir.contains(is_special)
        {
            Kind::Directory {
                dir: fold(dir),
                at_start: leading == LeadingGlobstar::MayBeEmpty,
            }
        } else {
            Kind::Regex {
                re: compile(glob, path, ci, leading)?,
                required: fold(&longest_literal(glob)),
            }
        };
        Ok(Glob { kind, path, ci })
    }

    pub fn is_match(&self, value: &str) -> bool {
        let mut value: Cow<str> = if self.path && value.contains('\\') {
            Cow::Owned(value.replace('\\', "/"))
        } else {
            Cow::Borrowed(value)
        };
        if self.ci && needs_lowercase(&value) {
            value = Cow::Owned(value.to_lowercase());
        }
        self.is_match_folded(&value)
    }

    /// [`Glob::is_match`] for a value already lower-cased (when case-insensitive) and with
    /// `/` separators (in path mode), as stack-trace rules prepare frame paths once.
    pub fn is_match_folded(&self, value: &str) -> bool {
        match &self.kind {
            Kind::Exact(s) => *value == **s,
            Kind::Prefix(p) => value.starts_with(p.as_str()),
            Kind::Directory { dir, at_start } => {
                // `/dir/` anywhere, or `dir/` at the start
                let v = value.as_bytes();
                let d = dir.as_bytes();
                (*at_start && v.starts_with(d) && v.get(d.len()) == Some(&b'/'))
                    || v.windows(d.len() + 2)
                        .any(|w| w[0] == b'/' && &w[1..=d.len()] == d && w[d.len() + 1] == b'/')
            }
            Kind::Regex { re, required } => value.contains(required.as_str()) && re.is_match(value),
        }
    }
}

/// Whether `to_lowercase` would change `s` (cheap for the usual ASCII paths).
pub(crate) fn needs_lowercase(s: &str) -> bool {
    if s.is_ascii() {
        s.bytes().any(|b| b.is_ascii_uppercase())
    } else {
        s.chars().any(|c| c.to_lowercase().next() != Some(c))
    }
}

/// The longest run of the glob that must appear literally in any match.
fn longest_literal(glob: &str) -> String {
    let mut best = String::new();
    let mut cur = String::new();
    let mut chars = glob.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => match chars.next() {
                Some(n) => cur.push(n),
                None => cur.push(c),
            },
            '*' | '?' => {
                if cur.len() > best.len() {
                    best = std::mem::take(&mut cur);
                }
                cur.clear();
            }
            '[' => {
                if cur.len() > best.len() {
                    best = std::mem::take(&mut cur);
                }
                cur.clear();
                // skip the class
                let mut first = true;
                for n in chars.by_ref() {
                    if n == ']' && !first {
                        break;
                    }
                    first = false;
                }
            }
            c => cur.push(c),
        }
    }
    if cur.len() > best.len() {
        best = cur;
    }
    best
}

fn compile(glob: &str, path: bool, ci: bool, leading: LeadingGlobstar) -> Result<Regex, String> {
    let mut re = String::with_capacity(glob.len() * 2 + 10);
    re.push_str(if ci { "(?si)^" } else { "(?s)^" });
    let chars: Vec<char> = glob.chars().collect();
    let mut i = 0;
    if path && leading == LeadingGlobstar::MayBeEmpty && glob.starts_with("**/") {
        re.push_str("(?:.*/)?");
        i = 3;
    }
    while i < chars.len() {
        match chars[i] {
            '*' if path && chars.get(i + 1) == Some(&'*') => {
                re.push_str(".*");
                i += 1;
            }
            '*' if path => re.push_str("[^/]*"),
            '*' => re.push_str(".*"),
            '?' if path => re.push_str("[^/]"),
            '?' => re.push('.'),
            '[' => {
                let close = chars[i + 1..]
                    .iter()
                    .skip(1)
                    .position(|&c| c == ']')
                    .map(|p| p + 1)
                    .ok_or("unterminated [ in pattern")?;
                let body: String = chars[i + 1..i + 1 + close].iter().collect();
                let body = body
                    .strip_prefix('!')
                    .map_or(body.clone(), |b| format!("^{b}"));
                re.push('[');
                re.push_str(&body.replace('\\', "\\\\").replace('[', "\\["));
                re.push(']');
                i += close + 1;
            }
            '\\' if i + 1 < chars.len() => {
                i += 1;
                re.push_str(&regex::escape(chars[i].encode_utf8(&mut [0; 4])));
            }
            c => re.push_str(&regex::escape(c.encode_utf8(&mut [0; 4]))),
        }
        i += 1;
    }
    re.push('$');
    Regex::new(&re).map_err(|e| format!("bad pattern {glob:?}: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table() {
        // (pattern, path mode, case-insensitive, value, expected)
        let cases = [
            (
                "*timed out*",
                false,
                true,
                "Request TIMED OUT after 3s",
                true,
            ),
            ("a/*", false, false, "a/b/c", true),
            ("a/*", true, false, "a/b/c", false),
            ("a/**", true, false, "a/b/c", true),
            ("**/vendor/**", true, false, "/app/vendor/x/y.php", true),
            ("**/vendor/**", true, false, "vendor/autoload.php", true),
            ("**/vendor/**", true, false, "/app/myvendor/x.php", false),
            (
                "**/node_modules/**",
                true,
                true,
                "C:\\App\\Node_Modules\\x\\i.js",
                true,
            ),
            ("c:/srv/**", true, true, "C:\\srv\\app\\db.py", true),
            ("*.py", true, false, "views.py", true),
            ("*.py", true, false, "shop/views.py", false),
            ("Err?r", false, false, "Error", true),
            ("[A-C]x", false, false, "Bx", true),
            ("[!A-C]x", false, false, "Bx", false),
            ("[]]x", false, false, "]x", true),
            ("\\*", false, false, "*", true),
            ("\\*", false, false, "x", false),
            ("Error", false, false, "error", false),
            ("Error", false, true, "ERROR", true),
            ("io.sentry.*", false, false, "io.sentry.SentryClient", true),
            ("io.sentry.*", false, false, "io.sentryx", false),
            ("IO.SENTRY.*", false, true, "io.sentry.X", true),
            ("std::*", false, false, "std::vector<T>::push_back", true),
            ("", false, false, "", true),
            ("**/node_modules/**", true, false, "node_modules/x.js", true),
            ("**/node_modules/**", true, false, "/a/node_modules/", true),
            ("**/node_modules/**", true, false, "/a/node_modules", false),
            (
                "**/node_modules/**",
                true,
                false,
                "/a/my_node_modules/x",
                false,
            ),
            (
                "**/@babel/**",
                true,
                false,
                "/app/node_modules/@babel/runtime/x.js",
                true,
            ),
        ];
        for (pat, path, ci, value, want) in cases {
            let g = Glob::with_leading(pat, path, ci, LeadingGlobstar::MayBeEmpty).unwrap();
            assert_eq!(g.is_match(value), want, "{pat:?} ~ {value:?}");
        }
        // Fingerprint rules' reading: a leading `**/` needs a `/`.
        for (pat, value, want) in [
            ("**/vendor/**", "vendor/autoload.php", false),
            ("**/vendor/**", "/app/vendor/autoload.php", true),
            ("**/vendor/*.php", "vendor/autoload.php", false),
            ("**/vendor/*.php", "/vendor/autoload.php", true),
        ] {
            let g = Glob::new(pat, true, false).unwrap();
            assert_eq!(g.is_match(value), want, "{pat:?} ~ {value:?}");
        }
        assert!(Glob::new("[abc", false, false).is_err());
        assert_eq!(
            longest_literal("**/gems/sentry-ruby-*/**"),
            "/gems/sentry-ruby-"
        );
        assert_eq!(longest_literal("a[xy]bcd*e"), "bcd");
        assert_eq!(longest_literal("\\*lit*"), "*lit");
    }
}
