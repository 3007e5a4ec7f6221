//! Exceptions, threads, stack traces, frames, breadcrumbs and spans.

use super::super::level::Level;
use super::super::timestamp::{parse_timestamp, to_value};
use super::super::values::{
    drop_deep, lenient_string, preview, trim_bag, truncate_bytes, truncate_chars,
};
use super::{MAX_BREADCRUMBS, MAX_MESSAGE_CHARS, Normalizer};
use regex::Regex;
use serde_json::{Map, Value, json};
use std::sync::LazyLock;

/// Frames kept per stack trace. Deep recursion can produce tens of
/// thousands; the outermost and the innermost frames are the informative
/// ones, so the middle is dropped and recorded in `frames_omitted`.
const MAX_FRAMES: usize = 250;
const KEEP_OUTER_FRAMES: usize = 50;
/// Relay trims frame variables as a "medium" data bag.
const VARS_DEPTH: usize = 5;
const VARS_BYTES: usize = 4096;
const CONTEXT_LINE_BYTES: usize = 1024;
const MAX_CONTEXT_LINES: usize = 50;

/// Relay's `TYPE_VALUE_RE`: `"ValueError: bad"` with no type is split.
static TYPE_VALUE_RE: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"(?s)^(\w+):\s*(.*)$").expect("static regex"));

/// `Values<T>` leniency: a bare array, `{"values": [...]}` (other keys such
/// as `exc_omitted` kept), or one bare item.
fn values_of(v: Value) -> Option<(Vec<Value>, Map<String, Value>)> {
    match v {
        Value::Array(a) => Some((a, Map::new())),
        Value::Object(mut m) => match m.remove("values") {
            Some(Value::Array(a)) => Some((a, m)),
            Some(Value::Null) | None if m.is_empty() => Some((Vec::new(), m)),
            None => Some((vec![Value::Object(m)], Map::new())),
            Some(Value::Null) => Some((Vec::new(), m)),
            Some(one @ Value::Object(_)) => Some((vec![one], m)),
            Some(other) => {
                drop_deep(other);
                None
            }
        },
        _ => None,
    }
}

fn set_lenient(m: &mut Map<String, Value>, key: &str, max_chars: usize) {
    let Some(v) = m.remove(key) else { return };
    let s = match &v {
        Value::Null => return,
        Value::Array(_) | Value::Object(_) => Some(preview(&v, max_chars)),
        other => lenient_string(other),
    };
    drop_deep(v);
    if let Some(mut s) = s {
        truncate_chars(&mut s, max_chars);
        m.insert(key.into(), Value::String(s));
    }
}

fn as_u64(v: &Value) -> Option<u64> {
    match v {
        Value::Number(n) => n.as_u64().or_else(|| {
            n.as_f64()
                .filter(|f| *f >= 0.0 && f.is_finite())
                .map(|f| f as u64)
        }),
        Value::String(s) => s.trim().parse::<u64>().ok(),
        _ => None,
    }
}

fn as_bool(v: &Value) -> Option<bool> {
    match v {
        Value::Bool(b) => Some(*b),
        Value::Number(n) => n.as_f64().map(|f| f != 0.0),
        Value::String(s) => match s.trim().to_ascii_lowercase().as_str() {
            "true" | "1" | "yes" => Some(true),
            "false" | "0" | "no" => Some(false),
            _ => None,
        },
        _ => None,
    }
}

fn set_bool(m: &mut Map<String, Value>, key: &str) {
    if let Some(v) = m.remove(key)
        && let Some(b) = as_bool(&v)
    {
        m.insert(key.into(), Value::Bool(b));
    }
}

/// Addresses may come as integers; the canonical form is `0x…` hex.
fn set_addr(m: &mut Map<String, Value>, key: &str) {
    match m.remove(key) {
        Some(Value::Number(n)) => {
            if let Some(u) = n.as_u64() {
                m.insert(key.into(), Value::String(format!("{u:#x}")));
            }
        }
        Some(Value::String(s)) if !s.is_empty() && s.len() <= 64 => {
            m.insert(key.into(), Value::String(s));
        }
        Some(other) => drop_deep(other),
        None => {}
    }
}

impl Normalizer<'_> {
    pub(super) fn interfaces(&mut self) {
        self.exceptions();
        self.threads();
        if let Some(st) = self.obj.remove("stacktrace") {
            match normalize_stacktrace(st) {
                Some(st) => {
                    self.obj.insert("stacktrace".into(), st);
                }
                None => self.error("invalid_data", "stacktrace", None),
            }
        }
        self.breadcrumbs();
        self.spans();
        if let Some(t) = self.obj.remove("template")
            && t.is_object()
        {
            self.obj.insert("template".into(), t);
        }
    }

    fn exceptions(&mut self) {
        let Some(raw) = self.obj.remove("exception") else {
            return;
        };
        if raw.is_null() {
            return;
        }
        let Some((values, mut rest)) = values_of(raw) else {
            self.error("invalid_data", "exception", None);
            return;
        };
        let mut out = Vec::with_capacity(values.len());
        for v in values {
            match v {
                Value::Object(m) => out.push(Value::Object(normalize_exception(m))),
                // Relay would null these; a bare message is still useful.
                Value::String(s) => {
                    out.push(Value::Object(normalize_exception(Map::from_iter([(
                        "value".to_owned(),
                        Value::String(s),
                    )]))))
                }
                Value::Null => {}
                other => {
                    self.error("invalid_data", "exception.values", Some(&other));
                    drop_deep(other);
                }
            }
        }
        if out.is_empty() {
            return;
        }
        rest.insert("values".into(), Value::Array(out));
        self.obj.insert("exception".into(), Value::Object(rest));
    }

    fn threads(&mut self) {
        let Some(raw) = self.obj.remove("threads") else {
            return;
        };
        if raw.is_null() {
            return;
        }
        let Some((values, mut rest)) = values_of(raw) else {
            self.error("invalid_data", "threads", None);
            return;
        };
        let out: Vec<Value> = values
            .into_iter()
            .filter_map(|v| match v {
                Value::Object(m) => Some(Value::Object(normalize_thread(m))),
                other => {
                    drop_deep(other);
                    None
                }
            })
            .collect();
        if out.is_empty() {
            return;
        }
        rest.insert("values".into(), Value::Array(out));
        self.obj.insert("threads".into(), Value::Object(rest));
    }

    fn breadcrumbs(&mut self) {
        let Some(raw) = self.obj.remove("breadcrumbs") else {
            return;
        };
        if raw.is_null() {
            return;
        }
        let Some((mut values, mut rest)) = values_of(raw) else {
            self.error("invalid_data", "breadcrumbs", None);
            return;
        };
        if values.len() > MAX_BREADCRUMBS {
            for v in values.drain(..values.len() - MAX_BREADCRUMBS) {
                drop_deep(v);
            }
        }
        let out: Vec<Value> = values
            .into_iter()
            .filter_map(|v| match v {
                Value::Object(m) => Some(Value::Object(self.normalize_breadcrumb(m))),
                Value::String(s) => {
                    Some(Value::Object(self.normalize_breadcrumb(Map::from_iter([
                        ("message".to_owned(), Value::String(s)),
                    ]))))
                }
                other => {
                    drop_deep(other);
                    None
                }
            })
            .collect();
        rest.insert("values".into(), Value::Array(out));
        self.obj.insert("breadcrumbs".into(), Value::Object(rest));
    }

    fn normalize_breadcrumb(&self, mut m: Map<String, Value>) -> Map<String, Value> {
        if let Some(t) = m.remove("timestamp").as_ref().and_then(parse_timestamp) {
            m.insert("timestamp".into(), to_value(self.shifted(t)));
        }
        let level = m
            .remove("level")
            .as_ref()
            .and_then(Level::from_json)
            .unwrap_or(Level::Info);
        m.insert("level".into(), json!(level.as_str()));
        set_lenient(&mut m, "type", 64);
        if !m.contains_key("type") {
            m.insert("type".into(), json!("default"));
        }
        set_lenient(&mut m, "category", 256);
        set_lenient(&mut m, "message", MAX_MESSAGE_CHARS);
        match m.remove("data") {
            Some(mut d @ Value::Object(_)) => {
                trim_bag(&mut d, 5, 4096);
                m.insert("data".into(), d);
            }
            Some(other) => drop_deep(other),
            None => {}
        }
        m
    }

    fn spans(&mut self) {
        let Some(raw) = self.obj.remove("spans") else {
            return;
        };
        let Value::Array(spans) = raw else {
            self.error("invalid_data", "spans", Some(&raw));
            drop_deep(raw);
            return;
        };
        let out: Vec<Value> = spans
            .into_iter()
            .filter_map(|s| match s {
                Value::Object(mut m) => {
                    for key in ["start_timestamp", "timestamp"] {
                        if let Some(v) = m.remove(key)
                            && let Some(t) = parse_timestamp(&v)
                        {
                            m.insert(key.into(), to_value(self.shifted(t)));
                        }
                    }
                    for key in ["op", "description", "status", "span_id", "parent_span_id"] {
                        set_lenient(&mut m, key, 8192);
                    }
                    if let Some(mut d @ Value::Object(_)) = m.remove("data") {
                        trim_bag(&mut d, 5, 8192);
                        m.insert("data".into(), d);
                    }
                    Some(Value::Object(m))
                }
                other => {
                    drop_deep(other);
                    None
                }
            })
            .collect();
        self.obj.insert("spans".into(), Value::Array(out));
    }
}

fn normalize_exception(mut m: Map<String, Value>) -> Map<String, Value> {
    set_lenient(&mut m, "type", 256);
    set_lenient(&mut m, "value", MAX_MESSAGE_CHARS);
    set_lenient(&mut m, "module", 256);
    if !m.contains_key("type") {
        let split = m
            .get("value")
            .and_then(Value::as_str)
            .and_then(|v| TYPE_VALUE_RE.captures(v))
            .map(|c| (c[1].to_owned(), c[2].trim().to_owned()));
        if let Some((ty, value)) = split {
            m.insert("type".into(), Value::String(ty));
            m.insert("value".into(), Value::String(value));
        }
    }
    match m.remove("mechanism") {
        Some(Value::Object(mut mech)) => {
            set_lenient(&mut mech, "type", 128);
            if !mech.contains_key("type") {
                mech.insert("type".into(), json!("generic"));
            }
            set_bool(&mut mech, "handled");
            set_bool(&mut mech, "synthetic");
            m.insert("mechanism".into(), Value::Object(mech));
        }
        Some(Value::String(s)) => {
            m.insert("mechanism".into(), json!({"type": s}));
        }
        Some(other) => drop_deep(other),
        None => {}
    }
    for key in ["stacktrace", "raw_stacktrace"] {
        if let Some(st) = m.remove(key)
            && let Some(st) = normalize_stacktrace(st)
        {
            m.insert(key.into(), st);
        }
    }
    m
}

fn normalize_thread(mut m: Map<String, Value>) -> Map<String, Value> {
    match m.remove("id") {
        Some(id @ Value::Number(_)) => {
            m.insert("id".into(), id);
        }
        Some(Value::String(mut s)) => {
            truncate_chars(&mut s, 128);
            m.insert("id".into(), Value::String(s));
        }
        Some(other) => drop_deep(other),
        None => {}
    }
    set_lenient(&mut m, "name", 256);
    set_lenient(&mut m, "state", 64);
    for key in ["crashed", "current", "main"] {
        set_bool(&mut m, key);
    }
    for key in ["stacktrace", "raw_stacktrace"] {
        if let Some(st) = m.remove(key)
            && let Some(st) = normalize_stacktrace(st)
        {
            m.insert(key.into(), st);
        }
    }
    m
}

/// A stack trace object with a `frames` list; a bare list of frames is
/// accepted too. Returns None for shapes that cannot be a stack trace.
pub(super) fn normalize_stacktrace(v: Value) -> Option<Value> {
    let mut m = match v {
        Value::Object(m) => m,
        Value::Array(a) => Map::from_iter([("frames".to_owned(), Value::Array(a))]),
        other => {
            drop_deep(other);
            return None;
        }
    };
    let frames = match m.remove("frames") {
        Some(Value::Array(a)) => a,
        Some(other) => {
            drop_deep(other);
            Vec::new()
        }
        None => Vec::new(),
    };
    let mut frames: Vec<Map<String, Value>> = frames
        .into_iter()
        .filter_map(|f| match f {
            Value::Object(f) => Some(f),
            other => {
                drop_deep(other);
                None
            }
        })
        .collect();
    if frames.len() > MAX_FRAMES {
        let end = frames.len() - (MAX_FRAMES - KEEP_OUTER_FRAMES);
        for f in frames.drain(KEEP_OUTER_FRAMES..end) {
            drop_deep(Value::Object(f));
        }
        m.insert("frames_omitted".into(), json!([KEEP_OUTER_FRAMES, end]));
    }
    let frames: Vec<Value> = frames
        .into_iter()
        .map(|f| Value::Object(normalize_frame(f)))
        .collect();
    m.insert("frames".into(), Value::Array(frames));
    if let Some(r) = m.remove("registers")
        && let Value::Object(mut regs) = r
    {
        regs.retain(|_, v| v.is_string() || v.is_number());
        m.insert("registers".into(), Value::Object(regs));
    }
    Some(Value::Object(m))
}

fn normalize_frame(mut f: Map<String, Value>) -> Map<String, Value> {
    for key in [
        "filename",
        "abs_path",
        "module",
        "function",
        "raw_function",
        "symbol",
        "package",
        "platform",
        "lang",
    ] {
        set_lenient(&mut f, key, 512);
    }
    for key in ["instruction_addr", "symbol_addr", "image_addr"] {
        set_addr(&mut f, key);
    }
    for key in ["lineno", "colno"] {
        if let Some(v) = f.remove(key)
            && let Some(n) = as_u64(&v)
        {
            f.insert(key.into(), json!(n));
        }
    }
    set_bool(&mut f, "in_app");
    if let Some(v) = f.remove("context_line")
        && let Some(mut s) = lenient_string(&v)
    {
        truncate_bytes(&mut s, CONTEXT_LINE_BYTES);
        f.insert("context_line".into(), Value::String(s));
    }
    for key in ["pre_context", "post_context"] {
        match f.remove(key) {
            Some(Value::Array(lines)) => {
                // Keep the lines nearest the context line.
                let skip = if key == "pre_context" {
                    lines.len().saturating_sub(MAX_CONTEXT_LINES)
                } else {
                    0
                };
                let lines: Vec<Value> = lines
                    .iter()
                    .skip(skip)
                    .take(MAX_CONTEXT_LINES)
                    .map(|l| {
                        let mut s = lenient_string(l).unwrap_or_default();
                        truncate_bytes(&mut s, CONTEXT_LINE_BYTES);
                        Value::String(s)
                    })
                    .collect();
                f.insert(key.into(), Value::Array(lines));
            }
            Some(other) => drop_deep(other),
            None => {}
        }
    }
    match f.remove("vars") {
        Some(Value::Object(vars)) => {
            f.insert("vars".into(), normalize_vars(vars));
        }
        // PHP and some others send positional arguments as a list.
        Some(Value::Array(a)) => {
            let vars = a
                .into_iter()
                .enumerate()
                .map(|(i, v)| (i.to_string(), v))
                .collect();
            f.insert("vars".into(), normalize_vars(vars));
        }
        Some(other) => drop_deep(other),
        None => {}
    }
    f
}

/// Variables are shown as text; numbers and booleans become their text so
/// the dashboard renders every variable the same way.
fn normalize_vars(vars: Map<String, Value>) -> Value {
    let mut v = Value::Object(vars);
    stringify_scalars(&mut v, VARS_DEPTH + 1);
    trim_bag(&mut v, VARS_DEPTH, VARS_BYTES);
    v
}

fn stringify_scalars(v: &mut Value, depth: usize) {
    if depth == 0 {
        return;
    }
    match v {
        Value::Number(n) => *v = Value::String(n.to_string()),
        Value::Bool(b) => *v = Value::String(b.to_string()),
        Value::Array(a) => a.iter_mut().for_each(|x| stringify_scalars(x, depth - 1)),
        Value::Object(m) => m.values_mut().for_each(|x| stringify_scalars(x, depth - 1)),
        _ => {}
    }
}
