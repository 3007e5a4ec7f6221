use serde_json::Value;

/// Widths beyond this are clamped so `%999999999s` cannot allocate gigabytes.
const MAX_WIDTH: usize = 256;
const MAX_PRECISION: usize = 64;

/// Fills a log-message template the way the SDK's language would have.
///
/// Two families exist in the wild: printf/Python `%` conversions (Python
/// logging, raven, JS console-style) and brace placeholders (`{}`, `{0}`,
/// `{name}` from .NET, Serilog, Rust). A template is treated as `%` style if
/// it has any `%` conversion that consumes a parameter, otherwise as brace
/// style, so a literal `{}` in a Python message is left alone. Named
/// placeholders take their values from `params[0]` when it is an object
/// (Python's `msg % {"name": …}`). Placeholders without a matching
/// parameter stay verbatim, never panic.
pub fn format_message(template: &str, params: &[Value]) -> String {
    let mapping = match params.first() {
        Some(Value::Object(m)) if params.len() == 1 => Some(m),
        _ => None,
    };
    if has_percent_conversion(template) {
        format_percent(template, params, mapping)
    } else {
        format_braces(template, params, mapping)
    }
}

struct Spec<'a> {
    name: Option<&'a str>,
    left: bool,
    zero: bool,
    plus: bool,
    space: bool,
    width: Option<usize>,
    precision: Option<usize>,
    conv: char,
    end: usize,
}

/// Parses one conversion starting just after a `%` at byte `i`.
fn parse_spec(t: &str, mut i: usize) -> Option<Spec<'_>> {
    let b = t.as_bytes();
    let mut name = None;
    if b.get(i) == Some(&b'(') {
        let close = t[i..].find(')')? + i;
        name = Some(&t[i + 1..close]);
        i = close + 1;
    }
    let (mut left, mut zero, mut plus, mut space) = (false, false, false, false);
    while let Some(&c) = b.get(i) {
        match c {
            b'-' => left = true,
            b'0' => zero = true,
            b'+' => plus = true,
            b' ' => space = true,
            b'#' => {}
            _ => break,
        }
        i += 1;
    }
    let mut width = None;
    let start = i;
    while b.get(i).is_some_and(u8::is_ascii_digit) {
        i += 1;
    }
    if i > start {
        width = t[start..i].parse::<usize>().ok().map(|w| w.min(MAX_WIDTH));
    }
    let mut precision = None;
    if b.get(i) == Some(&b'.') {
        i += 1;
        let start = i;
        while b.get(i).is_some_and(u8::is_ascii_digit) {
            i += 1;
        }
        precision = Some(t[start..i].parse::<usize>().unwrap_or(0).min(MAX_PRECISION));
    }
    while matches!(b.get(i), Some(b'h' | b'l' | b'L')) {
        i += 1;
    }
    let conv = *b.get(i)? as char;
    if !"diouxXeEfFgGcrsa%".contains(conv) {
        return None;
    }
    Some(Spec {
        name,
        left,
        zero,
        plus,
        space,
        width,
        precision,
        conv,
        end: i + 1,
    })
}

fn has_percent_conversion(t: &str) -> bool {
    let mut i = 0;
    while let Some(off) = t[i..].find('%') {
        let p = i + off;
        match parse_spec(t, p + 1) {
            Some(s) if s.conv != '%' => return true,
            Some(s) => i = s.end,
            None => i = p + 1,
        }
    }
    false
}

fn format_percent(
    t: &str,
    params: &[Value],
    mapping: Option<&serde_json::Map<String, Value>>,
) -> String {
    let mut out = String::with_capacity(t.len());
    let mut next = 0usize;
    let mut i = 0;
    while let Some(off) = t[i..].find('%') {
        let p = i + off;
        out.push_str(&t[i..p]);
        let Some(spec) = parse_spec(t, p + 1) else {
            out.push('%');
            i = p + 1;
            continue;
        };
        if spec.conv == '%' {
            out.push('%');
            i = spec.end;
            continue;
        }
        let arg = match spec.name {
            Some(n) => mapping.and_then(|m| m.get(n)),
            None => {
                let a = params.get(next);
                next += 1;
                a
            }
        };
        match arg {
            Some(v) => render_spec(&mut out, &spec, v),
            None => out.push_str(&t[p..spec.end]),
        }
        i = spec.end;
    }
    out.push_str(&t[i..]);
    out
}

fn render_spec(out: &mut String, spec: &Spec<'_>, v: &Value) {
    let body = match spec.conv {
        'd' | 'i' | 'u' => match as_f64(v) {
            Some(f) => signed(spec, format!("{}", f.trunc() as i64), f < 0.0),
            None => display(v),
        },
        'f' | 'F' => match as_f64(v) {
            Some(f) => signed(
                spec,
                format!("{:.*}", spec.precision.unwrap_or(6), f),
                f < 0.0,
            ),
            None => display(v),
        },
        'e' | 'E' => match as_f64(v) {
            Some(f) => {
                let s = format!("{:.*e}", spec.precision.unwrap_or(6), f);
                if spec.conv == 'E' {
                    s.to_uppercase()
                } else {
                    s
                }
            }
            None => display(v),
        },
        'g' | 'G' => match as_f64(v) {
            Some(f) => signed(spec, format_g(f), f < 0.0),
            None => display(v),
        },
        'x' | 'X' | 'o' => match as_f64(v) {
            Some(f) => {
                let n = f.trunc() as i64;
                let (neg, m) = (n < 0, n.unsigned_abs());
                let digits = match spec.conv {
                    'x' => format!("{m:x}"),
                    'X' => format!("{m:X}"),
                    _ => format!("{m:o}"),
                };
                if neg { format!("-{digits}") } else { digits }
            }
            None => display(v),
        },
        'c' => match v {
            Value::Number(n) => n
                .as_u64()
                .and_then(|c| char::from_u32(u32::try_from(c).ok()?))
                .map(String::from)
                .unwrap_or_else(|| display(v)),
            _ => display(v)
                .chars()
                .next()
                .map(String::from)
                .unwrap_or_default(),
        },
        'r' | 'a' => repr(v),
        _ => {
            let s = display(v);
            match spec.precision {
                Some(p) => s.chars().take(p).collect(),
                None => s,
            }
        }
    };
    pad(out, spec, &body);
}

fn signed(spec: &Spec<'_>, s: String, neg: bool) -> String {
    if neg {
        s
    } else if spec.plus {
        format!("+{s}")
    } else if spec.space {
        format!(" {s}")
    } else {
        s
    }
}

fn format_g(f: f64) -> String {
    if f == f.trunc() && f.abs() < 1e16 {
        format!("{}", f as i64)
    } else {
        format!("{f}")
    }
}

fn pad(out: &mut String, spec: &Spec<'_>, body: &str) {
    let len = body.chars().count();
    let width = spec.width.unwrap_or(0);
    if len >= width {
        out.push_str(body);
        return;
    }
    let fill = width - len;
    if spec.left {
        out.push_str(body);
        out.extend(std::iter::repeat_n(' ', fill));
    } else if spec.zero && "diufFeEgGxXo".contains(spec.conv) {
        let (sign, digits) = match body.strip_prefix(['-', '+', ' ']) {
            Some(rest) => (&body[..1], rest),
            None => ("", body),
        };
        out.push_str(sign);
        out.extend(std::iter::repeat_n('0', fill));
        out.push_str(digits);
    } else {
        out.extend(std::iter::repeat_n(' ', fill));
        out.push_str(body);
    }
}

fn format_braces(
    t: &str,
    params: &[Value],
    mapping: Option<&serde_json::Map<String, Value>>,
) -> String {
    let mut out = String::with_capacity(t.len());
    let mut next = 0usize;
    let mut rest = t;
    while let Some(p) = rest.find(['{', '}']) {
        out.push_str(&rest[..p]);
        let tail = &rest[p..];
        if tail.starts_with("{{") || tail.starts_with("}}") {
            out.push_str(&tail[..1]);
            rest = &tail[2..];
            continue;
        }
        if let Some(after) = tail.strip_prefix('}') {
            out.push('}');
            rest = after;
            continue;
        }
        let Some(close) = tail.find('}') else {
            out.push_str(tail);
            rest = "";
            break;
        };
        let inner = &tail[1..close];
        // `{0:N2}` / `{name,10}` carry .NET/Python format specs; the value
        // is what matters for a readable message, so the spec is dropped.
        let key = inner.split([':', ',']).next().unwrap_or("").trim();
        let arg = if key.is_empty() {
            let a = params.get(next);
            next += 1;
            a
        } else if let Ok(idx) = key.parse::<usize>() {
            params.get(idx)
        } else if key
            .chars()
            .all(|c| c.is_alphanumeric() || c == '_' || c == '@' || c == '$')
        {
            let k = key.trim_start_matches(['@', '$']);
            mapping.and_then(|m| m.get(k)).or_else(|| {
                // Structured-logging templates (`{User} logged in`) name
                // their holes but SDKs send the values positionally.
                let a = params.get(next).filter(|_| mapping.is_none());
                next += 1;
                a
            })
        } else {
            None
        };
        match arg {
            Some(v) => out.push_str(&display(v)),
            None => out.push_str(&tail[..=close]),
        }
        rest = &tail[close + 1..];
    }
    out.push_str(rest);
    out
}

fn as_f64(v: &Value) -> Option<f64> {
    match v {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => s.trim().parse::<f64>().ok().filter(|f| f.is_finite()),
        Value::Bool(b) => Some(f64::from(u8::from(*b))),
        _ => None,
    }
}

/// How a parameter reads inside a message: strings bare, everything else as
/// compact JSON (bounded so a huge parameter cannot blow up the message).
pub(crate) fn display(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => "null".to_owned(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => n.to_string(),
        _ => super::values::preview(v, 1024),
    }
}

fn repr(v: &Value) -> String {
    match v {
        Value::String(s) => {
            let mut out = String::with_capacity(s.len() + 2);
            out.push('\'');
            for c in s.chars() {
                match c {
                    '\'' => out.push_str("\\'"),
                    '\\' => out.push_str("\\\\"),
                    '\n' => out.push_str("\\n"),
                    _ => out.push(c),
                }
            }
            out.push('\'');
            out
        }
        Value::Null => "None".to_owned(),
        Value::Bool(true) => "True".to_owned(),
        Value::Bool(false) => "False".to_owned(),
        _ => display(v),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn f(t: &str, p: Value) -> String {
        match p {
            Value::Array(a) => format_message(t, &a),
            other => format_message(t, &[other]),
        }
    }

    #[test]
    fn percent_styles() {
        assert_eq!(
            f("Payment %s failed", json!(["9912"])),
            "Payment 9912 failed"
        );
        assert_eq!(f("Payment %s failed", json!([7777])), "Payment 7777 failed");
        assert_eq!(f("%d items, %r", json!([3.9, "x"])), "3 items, 'x'");
        assert_eq!(f("%i%%", json!(["50"])), "50%");
        assert_eq!(f("%.2f s", json!([1.23456])), "1.23 s");
        assert_eq!(
            f("[%5s|%-4d|%03d]", json!(["ab", 7, 5])),
            "[   ab|7   |005]"
        );
        assert_eq!(f("%x %X %o", json!([255, 255, 8])), "ff FF 10");
        assert_eq!(f("%s and %s", json!(["one"])), "one and %s");
        assert_eq!(f("100%% sure %s", json!(["yes"])), "100% sure yes");
        assert_eq!(f("50% off", json!([])), "50% off");
        assert_eq!(f("%r %r", json!([null, true])), "None True");
        assert_eq!(f("%s", json!([{"a": [1, 2]}])), "{\"a\":[1,2]}");
        assert_eq!(f("%c%c", json!([65, "bc"])), "Ab");
    }

    #[test]
    fn named_and_brace_styles() {
        assert_eq!(
            f("user %(name)s has %(n)d", json!({"name": "bob", "n": 2})),
            "user bob has 2"
        );
        assert_eq!(f("%(missing)s", json!({"a": 1})), "%(missing)s");
        assert_eq!(f("{} + {} = {}", json!([1, 2, 3])), "1 + 2 = 3");
        assert_eq!(f("{1} before {0}", json!(["a", "b"])), "b before a");
        assert_eq!(f("{0:N2} total", json!([5])), "5 total");
        assert_eq!(f("{User} logged in", json!(["ann"])), "ann logged in");
        assert_eq!(
            f("{user} logged in", json!({"user": "ann"})),
            "ann logged in"
        );
        assert_eq!(f("{{literal}} {}", json!(["x"])), "{literal} x");
        assert_eq!(f("dangling { and }", json!([])), "dangling { and }");
        assert_eq!(f("{5}", json!(["a"])), "{5}");
        // A Python message with a literal `{}` is not brace-formatted.
        assert_eq!(f("dict {} has %s", json!(["k"])), "dict {} has k");
    }

    #[test]
    fn hostile_templates_do_not_panic_or_explode() {
        for t in [
            "%",
            "%(",
            "%(x",
            "%999999999999999999999s",
            "%.99999999f",
            "{",
            "}",
            "{{{",
            "%-",
            "%ll",
            "%(é)s",
            "é%sé",
            "%\u{1F600}",
        ] {
            let out = format_message(t, &[json!("v"), json!(1e308), json!(-1)]);
            assert!(out.len() < 2000, "{t}");
        }
        assert_eq!(format_message("%d", &[json!(1e308)]), i64::MAX.to_string());
    }
}
