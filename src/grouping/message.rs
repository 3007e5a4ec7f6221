//! Message and exception-value normalisation (Sentry's `normalize_message_for_grouping`).
//!
//! Variable parts of a message (ids, addresses, times, numbers) are replaced by `<name>`
//! placeholders so that "User 123 not found" and "User 4567 not found" share an issue. The
//! alternatives and their order follow Sentry's `parameterization.py`: at each position the
//! first alternative that matches wins, so e.g. a URL swallows the numbers inside it.

use std::borrow::Cow;
use std::sync::LazyLock;

use regex::{Captures, Regex};

const TLDS: &str = "com|net|org|jp|de|uk|fr|br|it|ru|es|me|gov|pl|ca|au|cn|co|in|nl|edu|info|eu|ch|id|at|kr|cz|mx|be|tv|se|tr|tw|al|ua|ir|vn|cl|sk|ly|cc|to|no|fi|us|pt|dk|ar|hu|tk|gr|il|news|ro|my|biz|ie|za|nz|sg|ee|th|io|xyz|pe|bg|hk|rs|lt|link|ph|club|si|site|mobi|by|cat|wiki|la|ga|xxx|cf|hr|ng|jobs|online|kz|ug|gq|ae|is|lv|pro|fm|tips|ms|sa|app";

const IPV4: &str =
    r"(?:(?:25[0-5]|(?:2[0-4]|1?[0-9])?[0-9])\.){3}(?:25[0-5]|(?:2[0-4]|1?[0-9])?[0-9])";

const MONTH: &str = "(?:Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec)";
const WDAY: &str = "(?:Sun|Mon|Tue|Wed|Thu|Fri|Sat)";
const ZONE: &str = "(?:UT|GMT|[ECMP][SD]T|[A-IK-Z])";

/// Placeholder names, in the order their alternatives appear in [`PARAM_RE`].
const NAMES: &[&str] = &[
    "email",
    "url",
    "hostname",
    "ip",
    "uuid",
    "sha1",
    "md5",
    "date",
    "duration",
    "hex",
    "float",
    "int",
    "quoted_str",
    "bool",
];

static PARAM_RE: LazyLock<Regex> = LazyLock::new(|| {
    // The regex engine takes the first alternative that matches, not the
    // longest: embedded IPv4 forms go first, then compressed forms by how
    // many groups precede the `::`, so `2001:db8::ff00:42:8329` is matched
    // whole rather than cut at its `::`.
    let ipv6 = [
        &format!(r"::(?:ffff(?::0{{1,4}})?:)?{IPV4}"),
        &format!(r"(?:[0-9a-fA-F]{{1,4}}:){{1,4}}:{IPV4}\b"),
        r"fe80:(?::[0-9a-fA-F]{0,4}){0,4}%[0-9a-zA-Z]+",
        r"(?:[0-9a-fA-F]{1,4}:){7}[0-9a-fA-F]{1,4}",
        r"[0-9a-fA-F]{1,4}:(?:(?::[0-9a-fA-F]{1,4}){1,6})",
        r"(?:[0-9a-fA-F]{1,4}:){1,2}(?::[0-9a-fA-F]{1,4}){1,5}",
        r"(?:[0-9a-fA-F]{1,4}:){1,3}(?::[0-9a-fA-F]{1,4}){1,4}",
        r"(?:[0-9a-fA-F]{1,4}:){1,4}(?::[0-9a-fA-F]{1,4}){1,3}",
        r"(?:[0-9a-fA-F]{1,4}:){1,5}(?::[0-9a-fA-F]{1,4}){1,2}",
        r"(?:[0-9a-fA-F]{1,4}:){1,6}:[0-9a-fA-F]{1,4}",
        r":(?:(?::[0-9a-fA-F]{1,4}){1,7}|:)",
        r"(?:[0-9a-fA-F]{1,4}:){1,7}:",
    ]
    .join("|");
    let date = [
        // RFC822, RFC1123, RFC1123Z
        format!(
            r"{WDAY},\s\d{{1,2}}\s{MONTH}\s\d{{2,4}}\s\d{{1,2}}:\d{{1,2}}(?::\d{{1,2}})?\s(?:[-+]\d{{2}}[0-5]\d|{ZONE})"
        ),
        // "Mon Jan 02, 1999", "Jan 02, 1999"
        format!(r"(?:{WDAY}\s)?{MONTH}\s[0-3]\d,\s\d{{2,4}}"),
        // RFC850
        format!(
            r"(?:Sunday|Monday|Tuesday|Wednesday|Thursday|Friday|Saturday),\s\d{{2}}-{MONTH}-\d{{2}}\s\d{{2}}:\d{{2}}:\d{{2}}\s{ZONE}"
        ),
        // RFC3339 (Nano)
        r"\d{4}-?[01]\d-?[0-3]\dT[0-2]\d:?[0-5]\d:?[0-5]\d(?:\.\d+)?(?:Z|[+-][0-2]\d(?::?[0-5]\d)?)?".into(),
        // datetime
        r"\d{4}-[01]\d-[0-3]\d\s[0-2]\d:[0-5]\d:[0-5]\d".into(),
        // kitchen
        r"[1-9]\d?:\d{2}(?::\d{2})?(?: [aApP][Mm])?".into(),
        // date
        r"\d{4}-[01]\d-[0-3]\d".into(),
        // time
        r"[01]?\d:[0-5]\d:[0-5]\d".into(),
        r"\d{4}-[01]\d-[0-3]\dT[0-2]\d:[0-5]\d(?::[0-5]\d(?:\.\d+)?)?(?:[+-][0-2]\d:[0-5]\d|Z)".into(),
        // ctime: "Mon Jan  2 15:04:05 2006"
        format!(r"\b(?:{WDAY}\s+)?{MONTH}\s+\d{{1,2}}\s+\d{{2}}:?\d{{2}}:?\d{{2}}\s+\d{{4}}"),
        r"datetime\.datetime\(.*?\)".into(),
    ]
    .join("|");
    let alternatives = [
        // email
        r"[a-zA-Z0-9.!#$%&'*+/=?^_`{|}~-]+@[a-zA-Z0-9](?:[a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?(?:\.[a-zA-Z0-9](?:[a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?)*".to_owned(),
        // url
        r"\b(?:wss?|https?|ftp)://[^\s/$.?#].[^\s]*".to_owned(),
        // hostname: the top ~100 TLDs, upper or lower case (not mixed), as in Sentry
        format!(
            r"\b(?:[a-zA-Z0-9\-]{{1,63}}\.)+?(?:(?:{TLDS})|(?:{}))\b",
            TLDS.to_uppercase()
        ),
        format!(r"(?:{ipv6})|(?:\b{IPV4}\b)"),
        r"\b[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}\b".to_owned(),
        r"\b[0-9a-fA-F]{40}\b".to_owned(),
        r"\b[0-9a-fA-F]{32}\b".to_owned(),
        date,
        r"\b\d+ms|\d+(?:\.\d+)?s\b".to_owned(),
        r"\b0[xX][0-9a-fA-F]+\b".to_owned(),
        r"-\d+\.\d+\b|\b\d+\.\d+\b".to_owned(),
        r"-\d+\b|\b\d+\b".to_owned(),
        // Sentry uses a `(?<==)` look-behind, which the regex crate lacks; the `=` is matched
        // and put back in the replacement instead. Nothing else can start a match at `=`
        // except an email, which Sentry would also have tried first.
        r#"=(?:'[^']+'|"[^"]+")"#.to_owned(),
        r"=(?:True|true|False|false)".to_owned(),
    ];
    debug_assert_eq!(alternatives.len(), NAMES.len());
    let combined: Vec<String> = alternatives
        .iter()
        .zip(NAMES)
        .map(|(re, name)| format!("(?P<{name}>{re})"))
        .collect();
    Regex::new(&combined.join("|")).expect("parameterization regex compiles")
});

/// Replaces variable parts of `message` with `<email>`, `<url>`, `<hostname>`, `<ip>`,
/// `<uuid>`, `<sha1>`, `<md5>`, `<date>`, `<duration>`, `<hex>`, `<float>`, `<int>`, and,
/// right after `=`, `<quoted_str>` / `<bool>`. Borrows when nothing changed.
pub fn parameterize(message: &str) -> Cow<'_, str> {
    // Every alternative needs a digit or one of these; most plain-prose messages skip the regex.
    if !message
        .bytes()
        .any(|b| b.is_ascii_digit() || matches!(b, b'@' | b'.' | b':' | b'=') || b >= 0x80)
    {
        return Cow::Borrowed(message);
    }
    PARAM_RE.replace_all(message, |caps: &Captures| {
        for (i, name) in NAMES.iter().enumerate() {
            if caps.name(name).is_some() {
                return if i >= NAMES.len() - 2 {
                    format!("=<{name}>")
                } else {
                    format!("<{name}>")
                };
            }
        }
        caps[0].to_owned()
    })
}

/// Keeps the first `lines` non-empty lines, joined by `\n`, with `...` appended when that
/// changed anything: a long SQL error or traceback dump in a value must not split issues.
pub(crate) fn trim_lines(message: &str, lines: usize) -> Cow<'_, str> {
    let mut kept = message.lines().filter(|l| !l.trim().is_empty()).take(lines);
    let first = kept.next();
    let joined: Cow<str> = match (first, kept.next()) {
        (None, _) => Cow::Borrowed(""),
        (Some(a), None) => Cow::Borrowed(a.trim()),
        (Some(a), Some(b)) => {
            let mut s = String::with_capacity(a.len() + b.len() + 1);
            s.push_str(a);
            s.push('\n');
            s.push_str(b);
            for l in kept {
                s.push('\n');
                s.push_str(l);
            }
            Cow::Owned(s.trim().to_owned())
        }
    };
    if joined == message {
        Cow::Borrowed(message)
    } else {
        Cow::Owned(format!("{joined}..."))
    }
}

/// Trim to the first two non-empty lines, then [`parameterize`]: what is hashed for an
/// exception value or a message.
pub fn normalize_message_for_grouping(message: &str) -> String {
    normalize_lines(message, 2)
}

pub(crate) fn normalize_lines(message: &str, lines: usize) -> String {
    let trimmed = trim_lines(message, lines);
    parameterize(&trimmed).into_owned()
}

/// `logentry.message % params` for titles when the SDK sent no `formatted`, covering the
/// printf-style placeholders the Python and other SDKs use.
pub(crate) fn format_params(template: &str, params: &serde_json::Value) -> Option<String> {
    let params: Vec<String> = match params {
        serde_json::Value::Array(a) => a.iter().map(display_param).collect(),
        _ => return None,
    };
    let mut out = String::with_capacity(template.len() + 16);
    let mut next = params.iter();
    let mut chars = template.chars().peekable();
    while let Some(c) = chars.next() {
        if c != '%' {
            out.push(c);
            continue;
        }
        match chars.peek() {
            Some('%') => {
                chars.next();
                out.push('%');
            }
            Some('s' | 'd' | 'i' | 'r' | 'f' | 'x' | 'u') => {
                chars.next();
                out.push_str(next.next().map(String::as_str).unwrap_or(""));
            }
            _ => out.push('%'),
        }
    }
    Some(out)
}

fn display_param(v: &serde_json::Value) -> String {
    match v {
        serde_json::Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[track_caller]
    fn p(input: &str, want: &str) {
        assert_eq!(parameterize(input), want, "input: {input:?}");
    }

    #[test]
    fn reference_outputs() {
        p(
            "connect to 10.0.0.12:5432 failed",
            "connect to <ip>:<int> failed",
        );
        p(
            "GET https://api.example.com/v1/users/42?x=1 returned 500",
            "GET <url> returned <int>",
        );
        p("Timeout after 3000ms", "Timeout after <duration>");
        p("Timeout after 1.5s", "Timeout after <duration>");
        p("took 12:30:45 to run", "took <date> to run");
        p(
            "invalid literal for int() with base 10: 'abc'",
            "invalid literal for int() with base <int>: 'abc'",
        );
    }

    #[test]
    fn table() {
        let cases = [
            ("mail bob@example.com bounced", "mail <email> bounced"),
            ("visit www.example.com now", "visit <hostname> now"),
            ("visit WWW.EXAMPLE.COM now", "visit <hostname> now"),
            ("from ::1 denied", "from <ip> denied"),
            ("from 2001:db8::ff00:42:8329 denied", "from <ip> denied"),
            (
                "Order 1f0e9a52-7c3b-4a6e-9d7a-2b1c3d4e5f60 failed",
                "Order <uuid> failed",
            ),
            (
                "commit da39a3ee5e6b4b0d3255bfef95601890afd80709 bad",
                "commit <sha1> bad",
            ),
            (
                "blob d41d8cd98f00b204e9800998ecf8427e bad",
                "blob <md5> bad",
            ),
            (
                "deadline 2024-01-02T03:04:05Z passed",
                "deadline <date> passed",
            ),
            ("at 2024-01-02 03:04:05 ok", "at <date> ok"),
            ("on 2024-01-02 ok", "on <date> ok"),
            ("at 3:04 PM ok", "at <date> ok"),
            ("Mon, 02 Jan 2006 15:04:05 MST x", "<date> x"),
            ("Mon Jan  2 15:04:05 2006 x", "<date> x"),
            ("at datetime.datetime(2024, 1, 2) x", "at <date> x"),
            ("bad pointer 0x7f3a2c1d", "bad pointer <hex>"),
            ("ratio 0.75 too low", "ratio <float> too low"),
            ("delta -3.5 too low", "delta <float> too low"),
            ("offset -42 bad", "offset <int> bad"),
            ("user 12345 missing", "user <int> missing"),
            ("user-12345 missing", "user<int> missing"),
            ("user_12345 missing", "user_12345 missing"),
            (
                "query failed: id='42' active=true",
                "query failed: id=<quoted_str> active=<bool>",
            ),
            ("x=\"y z\" done", "x=<quoted_str> done"),
            (
                "Cannot read properties of undefined (reading 'email')",
                "Cannot read properties of undefined (reading 'email')",
            ),
            ("said 'true' and True", "said 'true' and True"),
            ("no variables here", "no variables here"),
            ("", ""),
        ];
        for (input, want) in cases {
            p(input, want);
        }
    }

    /// One or more inputs per placeholder, in the order of the alternatives, then the
    /// precedence between neighbours (the first alternative matching at a position wins).
    #[test]
    fn every_placeholder_and_its_precedence() {
        let cases = [
            // email
            ("to bob.smith+x@mail.example.co.uk now", "to <email> now"),
            // url: the whole thing up to whitespace, numbers and all
            ("see https://x.io/a/1?b=2#c, ok", "see <url> ok"),
            ("socket wss://x.io:443/s closed", "socket <url> closed"),
            ("ftp://files.x.org/a.tgz gone", "<url> gone"),
            // hostname: dotted names with a common TLD, upper or lower case
            ("db1.internal.example.com down", "<hostname> down"),
            ("API.EXAMPLE.IO down", "<hostname> down"),
            ("cache.local down", "cache.local down"),
            // ip
            ("from 192.168.0.1 denied", "from <ip> denied"),
            ("from fe80::1%eth0 denied", "from <ip> denied"),
            ("from ::ffff:10.0.0.1 denied", "from <ip> denied"),
            ("from 2001:db8::1 denied", "from <ip> denied"),
            // uuid, sha1, md5
            (
                "job 123E4567-E89B-12D3-A456-426614174000 lost",
                "job <uuid> lost",
            ),
            (
                "rev 2fd4e1c67a2d28fced849ee1bb76e7391b93eb12 bad",
                "rev <sha1> bad",
            ),
            (
                "etag 9e107d9d372bb6826bd81d3542a419d6 bad",
                "etag <md5> bad",
            ),
            // date
            ("at 2024-01-02T03:04:05.123456+01:00 x", "at <date> x"),
            ("at Tue, 02 Jan 2024 03:04:05 GMT x", "at <date> x"),
            ("at Tuesday, 02-Jan-24 03:04:05 GMT x", "at <date> x"),
            ("at Jan 02, 2024 x", "at <date> x"),
            ("at 12:30:45 x", "at <date> x"),
            ("at 9:41 am x", "at <date> x"),
            // duration
            ("took 500ms", "took <duration>"),
            ("took 1.5s", "took <duration>"),
            ("took 30s", "took <duration>"),
            // hex, float, int
            ("flags 0xFF set", "flags <hex> set"),
            ("ratio 3.14 low", "ratio <float> low"),
            ("delta -0.5 low", "delta <float> low"),
            ("count 42 high", "count <int> high"),
            ("count -7 low", "count <int> low"),
            // quoted_str and bool only as the value of `key=`
            ("where name='a b' failed", "where name=<quoted_str> failed"),
            (
                "where name=\"a b\" failed",
                "where name=<quoted_str> failed",
            ),
            ("flag=True and done=false", "flag=<bool> and done=<bool>"),
            ("it is 'a b' and True", "it is 'a b' and True"),
            // precedence
            ("GET https://1.2.3.4:8080/v1/42 failed", "GET <url> failed"),
            (
                "host 10.0.0.1 is an ip, not a float",
                "host <ip> is an ip, not a float",
            ),
            ("on 2024-01-02 not ints", "on <date> not ints"),
            (
                "id 1f0e9a52-7c3b-4a6e-9d7a-2b1c3d4e5f60 not hex",
                "id <uuid> not hex",
            ),
            ("id=42 is an int", "id=<int> is an int"),
            ("timeout=1.5s", "timeout=<duration>"),
            (
                "mail me@x.io is an email, not a host",
                "mail <email> is an email, not a host",
            ),
            ("x 0x1f not an int", "x <hex> not an int"),
        ];
        for (input, want) in cases {
            p(input, want);
        }
        // Every placeholder name is produced by some case above.
        let outputs: String = cases.iter().map(|(_, o)| *o).collect();
        for name in NAMES {
            assert!(outputs.contains(&format!("<{name}>")), "no case for {name}");
        }
    }

    #[test]
    fn borrows_when_unchanged() {
        assert!(matches!(parameterize("plain words"), Cow::Borrowed(_)));
        assert!(matches!(parameterize("a: b"), Cow::Borrowed(_)));
    }

    #[test]
    fn trims_to_two_non_empty_lines() {
        assert_eq!(trim_lines("one line", 2), "one line");
        assert_eq!(trim_lines("a\n\nb\nc", 2), "a\nb...");
        assert_eq!(trim_lines("a\nb", 2), "a\nb");
        assert_eq!(trim_lines("  a  ", 2), "a...");
        assert_eq!(
            normalize_message_for_grouping("deadlock detected\nprocess 412 waits\nDETAIL: q"),
            "deadlock detected\nprocess <int> waits..."
        );
    }

    #[test]
    fn formats_printf_params() {
        let params = serde_json::json!(["99", 3]);
        assert_eq!(
            format_params("Payment %s failed %d%%", &params).unwrap(),
            "Payment 99 failed 3%"
        );
    }
}
