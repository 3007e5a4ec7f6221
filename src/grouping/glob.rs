//! Sentry's rule globs, shared by fingerprint rules and stack-trace rules.
//!
//! `*` matches any run of characters, `?` one character, `[...]` a class (`[!...]` negated)
//! and `\x` a literal `x`. In path mode `*` and `?` stop at `/`, `**` crosses it, a leading
//! `**/` also matches no directory at all (so `**/vendor/**` matches `vendor/x.php`), and
//! backslashes in the value are read as `/` so Windows paths match the same patterns.

use std::borrow::Cow;

use regex::Regex;

#[derive(Debug, Clone)]
pub(crate) struct Glob {
    kind: Kind,
    path: bool,
    ci: bool,
}

#[derive(Debug, Clone)]
enum Kind {
    /// No wildcard at all: a string comparison (the common case in rules, e.g.
    /// `function:processTicksAndRejections`), lower-cased when case-insensitive.
    Exact(String),
    /// A literal followed by one `*` outside path mode, e.g. `module:io.sentry.*`.
    Prefix(String),
    Regex(Regex),
}

fn is_special(c: char) -> bool {
    matches!(c, '*' | '?' | '[' | '\\')
}

impl Glob {
    pub fn new(glob: &str, path: bool, ci: bool) -> Result<Glob, String> {
        let fold = |s: &str| if ci { s.to_lowercase() } else { s.to_owned() };
        let kind = if !glob.contains(is_special) {
            Kind::Exact(fold(glob))
        } else if !path
            && let Some(lit) = glob.strip_suffix('*')
            && !lit.contains(is_special)
        {
            Kind::Prefix(fold(lit))
        } else {
            Kind::Regex(compile(glob, path, ci)?)
        };
        Ok(Glob { kind, path, ci })
    }

    pub fn is_match(&self, value: &str) -> bool {
        let value: Cow<str> = if self.path && value.contains('\\') {
            Cow::Owned(value.replace('\\', "/"))
        } else {
            Cow::Borrowed(value)
        };
        match &self.kind {
            Kind::Exact(s) if self.ci => value.to_lowercase() == *s,
            Kind::Exact(s) => *value == **s,
            Kind::Prefix(p) if self.ci => value.to_lowercase().starts_with(p.as_str()),
            Kind::Prefix(p) => value.starts_with(p.as_str()),
            Kind::Regex(re) => re.is_match(&value),
        }
    }
}

fn compile(glob: &str, path: bool, ci: bool) -> Result<Regex, String> {
    let mut re = String::with_capacity(glob.len() * 2 + 10);
    re.push_str(if ci { "(?si)^" } else { "(?s)^" });
    let chars: Vec<char> = glob.chars().collect();
    let mut i = 0;
    if path && glob.starts_with("**/") {
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
        ];
        for (pat, path, ci, value, want) in cases {
            let g = Glob::new(pat, path, ci).unwrap();
            assert_eq!(g.is_match(value), want, "{pat:?} ~ {value:?}");
        }
        assert!(Glob::new("[abc", false, false).is_err());
    }
}
