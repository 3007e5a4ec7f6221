//! A borrowed, lenient view of the event JSON with just what grouping needs.
//!
//! Grouping must never fail on an odd payload: every field is optional, wrong types are
//! treated as absent, and the shapes SDKs and older clients send (`{"values": [...]}`, bare
//! lists, single objects, legacy `sentry.interfaces.*` keys) are all accepted here so the
//! strategies only ever see one shape.

use serde_json::{Map, Value};

use super::enhancers::{ExceptionData, RuleSet};

pub(crate) type Obj = Map<String, Value>;

#[derive(Debug, Clone)]
pub(crate) struct Frame<'a> {
    pub function: Option<&'a str>,
    pub raw_function: Option<&'a str>,
    pub module: Option<&'a str>,
    pub filename: Option<&'a str>,
    pub abs_path: Option<&'a str>,
    pub package: Option<&'a str>,
    pub context_line: Option<&'a str>,
    pub lineno: Option<&'a Value>,
    pub colno: Option<&'a Value>,
    /// Unset counts as false, as in Sentry after `_normalize_in_app`.
    pub in_app: bool,
    /// The frame's own platform, else the event's.
    pub platform: &'a str,
    /// A source map was applied, so the context line is original source.
    pub sourcemap: bool,
    /// Set by a stack-trace rule's `category=`.
    pub category: Option<String>,
    /// Why a stack-trace rule changed `in_app`, for the grouping-info view.
    pub app_hint: Option<String>,
}

#[derive(Debug, Clone, Default)]
pub(crate) struct Exception<'a> {
    pub ty: Option<&'a str>,
    pub value: Option<&'a str>,
    pub frames: Option<Vec<Frame<'a>>>,
    pub synthetic: bool,
    pub exception_id: Option<i64>,
    pub parent_id: Option<i64>,
    pub is_exception_group: bool,
    pub ns_error: Option<(String, String)>,
    pub mechanism_type: Option<&'a str>,
    pub module: Option<&'a str>,
    /// `mechanism.source`, e.g. `cause` for an error's `cause` chain (JS).
    pub mechanism_source: Option<&'a str>,
}

#[derive(Debug, Clone, Default)]
pub(crate) struct Thread<'a> {
    pub id: Option<&'a Value>,
    pub crashed: bool,
    pub current: bool,
    pub frames: Option<Vec<Frame<'a>>>,
}

#[derive(Debug, Default)]
pub(crate) struct EventView<'a> {
    pub exceptions: Vec<Exception<'a>>,
    /// Top-level `stacktrace`, unless it was moved into the only exception.
    pub stacktrace: Option<Vec<Frame<'a>>>,
    pub threads: Vec<Thread<'a>>,
    /// `logentry.message`: the template, before parameters were substituted.
    pub message_template: Option<&'a str>,
    pub message_formatted: Option<&'a str>,
    pub message_params: Option<&'a Value>,
    pub fingerprint: Option<Vec<String>>,
    pub checksum: Option<&'a str>,
    pub transaction: Option<&'a str>,
    pub culprit: Option<&'a str>,
    pub level: Option<&'a str>,
    pub logger: Option<&'a str>,
    pub release: Option<&'a str>,
    pub sdk_name: Option<&'a str>,
    pub request_url: Option<&'a str>,
    pub tags: Vec<(&'a str, &'a str)>,
    pub main_exception_id: Option<i64>,
    /// An exception that titles the issue in place of the main one (a wrapper's cause);
    /// titles only, so fingerprint variables keep their meaning.
    pub title_exception_id: Option<i64>,
}

/// A non-empty string field. Empty strings are treated as missing because SDKs send `""`
/// for "unknown" and Sentry's strategies skip them the same way.
pub(crate) fn str_field<'a>(o: &'a Obj, key: &str) -> Option<&'a str> {
    match o.get(key) {
        Some(Value::String(s)) if !s.is_empty() => Some(s.as_str()),
        _ => None,
    }
}

fn bool_field(o: &Obj, key: &str) -> bool {
    matches!(o.get(key), Some(Value::Bool(true)))
}

fn int_field(o: &Obj, key: &str) -> Option<i64> {
    match o.get(key)? {
        Value::Number(n) => n.as_i64(),
        Value::String(s) => s.parse().ok(),
        _ => None,
    }
}

/// The first present key among a modern name and its legacy interface alias.
fn get_any<'a>(o: &'a Obj, keys: &[&str]) -> Option<&'a Value> {
    keys.iter().find_map(|k| o.get(*k).filter(|v| !v.is_null()))
}

/// Items of a `{"values": [...]}`, a bare list, or a single object.
fn values_list(v: &Value) -> impl Iterator<Item = &Obj> {
    let (list, single): (&[Value], Option<&Obj>) = match v {
        Value::Array(a) => (a.as_slice(), None),
        Value::Object(o) => match o.get("values") {
            Some(Value::Array(a)) => (a.as_slice(), None),
            Some(_) => (&[], None),
            None => (&[], Some(o)),
        },
        _ => (&[], None),
    };
    list.iter().filter_map(Value::as_object).chain(single)
}

fn frames<'a>(stacktrace: Option<&'a Value>, platform: &'a str) -> Option<Vec<Frame<'a>>> {
    let st = stacktrace?.as_object()?;
    let list = st.get("frames")?.as_array()?;
    Some(
        list.iter()
            .filter_map(Value::as_object)
            .map(|f| frame(f, platform))
            .collect(),
    )
}

fn frame<'a>(f: &'a Obj, event_platform: &'a str) -> Frame<'a> {
    let mut fr = Frame {
        function: None,
        raw_function: None,
        module: None,
        filename: None,
        abs_path: None,
        package: None,
        context_line: None,
        lineno: None,
        colno: None,
        in_app: false,
        platform: event_platform,
        sourcemap: false,
        category: None,
        app_hint: None,
    };
    // One pass over the frame's keys instead of a map lookup per field: frames are the
    // bulk of an event and this runs for every one of them.
    for (k, v) in f {
        let s = match v {
            Value::String(s) if !s.is_empty() => Some(s.as_str()),
            _ => None,
        };
        match k.as_str() {
            "function" => fr.function = s,
            "raw_function" => fr.raw_function = s,
            "module" => fr.module = s,
            "filename" => fr.filename = s,
            "abs_path" => fr.abs_path = s,
            "package" => fr.package = s,
            "context_line" => fr.context_line = s,
            "lineno" if !v.is_null() => fr.lineno = Some(v),
            "colno" if !v.is_null() => fr.colno = Some(v),
            "in_app" => fr.in_app = matches!(v, Value::Bool(true)),
            "platform" => fr.platform = s.unwrap_or(event_platform),
            "data" => {
                fr.sourcemap = v
                    .as_object()
                    .and_then(|d| d.get("sourcemap"))
                    .is_some_and(|s| !s.is_null());
            }
            _ => {}
        }
    }
    fr
}

/// Relay's split of an untyped `"TypeError: x"` value into type and value.
fn split_type_value(value: &str) -> Option<(&str, &str)> {
    let (ty, rest) = value.split_once(':')?;
    if ty.is_empty() || rest.contains('\n') || !ty.chars().all(|c| c.is_alphanumeric() || c == '_')
    {
        return None;
    }
    Some((ty, rest.trim()))
}

fn exception<'a>(e: &'a Obj, platform: &'a str) -> Exception<'a> {
    let mut ty = str_field(e, "type");
    let mut value = str_field(e, "value");
    if ty.is_none()
        && let Some((t, v)) = value.and_then(split_type_value)
    {
        ty = Some(t);
        value = Some(v).filter(|v| !v.is_empty());
    }
    let mech = e.get("mechanism").and_then(Value::as_object);
    let ns_error = mech
        .and_then(|m| m.get("meta"))
        .and_then(Value::as_object)
        .and_then(|m| m.get("ns_error"))
        .and_then(Value::as_object)
        .map(|ns| {
            let domain = str_field(ns, "domain").unwrap_or("").to_owned();
            let code = match ns.get("code") {
                Some(Value::Number(n)) => n.to_string(),
                Some(Value::String(s)) => s.clone(),
                _ => String::new(),
            };
            (domain, code)
        });
    Exception {
        ty,
        value,
        frames: frames(get_any(e, &["stacktrace"]), platform),
        synthetic: mech.is_some_and(|m| bool_field(m, "synthetic")),
        exception_id: mech.and_then(|m| int_field(m, "exception_id")),
        parent_id: mech.and_then(|m| int_field(m, "parent_id")),
        is_exception_group: mech.is_some_and(|m| bool_field(m, "is_exception_group")),
        ns_error,
        mechanism_type: mech.and_then(|m| str_field(m, "type")),
        module: str_field(e, "module"),
        mechanism_source: mech.and_then(|m| str_field(m, "source")),
    }
}

fn scalar_string(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(if *b { "True" } else { "False" }.to_owned()),
        _ => None,
    }
}

impl<'a> Exception<'a> {
    /// What `error.*` stack-trace rule matchers see of this exception.
    pub fn data(&self) -> ExceptionData<'a> {
        ExceptionData {
            ty: self.ty,
            value: self.value,
            mechanism: self.mechanism_type,
        }
    }
}

/// The path of a URL (`http://x/a.js?v=1` → `/a.js`), if it has one beyond `/`.
fn url_path(url: &str) -> Option<&str> {
    let rest = url.split_once("://")?.1;
    let path = &rest[rest.find('/')?..];
    let path = &path[..path.find(['?', '#']).unwrap_or(path.len())];
    (path.len() > 1).then_some(path)
}

fn is_url(p: &str) -> bool {
    ["file:", "http:", "https:", "applewebdata:"]
        .iter()
        .any(|s| p.starts_with(s))
}

impl<'a> EventView<'a> {
    /// Relay's frame path normalisation: a frame with only a `filename` has it as its
    /// `abs_path`, and a frame with only an `abs_path` gets it (or, for a URL, its path)
    /// as its `filename`.
    pub fn fill_frame_paths(&mut self) {
        self.for_each_stack(|frames, _| {
            for f in frames {
                if f.abs_path.is_none() {
                    f.abs_path = f.filename.take();
                }
                if f.filename.is_none()
                    && let Some(abs) = f.abs_path
                {
                    f.filename = Some(if is_url(abs) {
                        url_path(abs).unwrap_or(abs)
                    } else {
                        abs
                    });
                }
            }
        });
    }

    /// The first pass of stack-trace rules (in-app flags, categories) over every stack.
    pub fn apply_stack_rules(&mut self, rules: &RuleSet) {
        if rules.is_empty() {
            return;
        }
        self.for_each_stack(|frames, exc| rules.apply_modifiers(frames, exc));
    }

    fn for_each_stack(&mut self, mut f: impl FnMut(&mut [Frame<'a>], &ExceptionData<'a>)) {
        for e in &mut self.exceptions {
            let data = e.data();
            if let Some(frames) = e.frames.as_deref_mut() {
                f(frames, &data);
            }
        }
        let none = ExceptionData::default();
        if let Some(frames) = self.stacktrace.as_deref_mut() {
            f(frames, &none);
        }
        for t in &mut self.threads {
            if let Some(frames) = t.frames.as_deref_mut() {
                f(frames, &none);
            }
        }
    }

    pub fn parse(event: &'a Value) -> EventView<'a> {
        let Some(o) = event.as_object() else {
            return EventView::default();
        };
        // Frames carry the platform they are grouped by (their own, else this one).
        let platform = str_field(o, "platform").unwrap_or("other");
        let mut view = EventView::default();

        if let Some(ex) = get_any(o, &["exception", "sentry.interfaces.Exception"]) {
            view.exceptions = values_list(ex).map(|e| exception(e, platform)).collect();
            // Relay drops exceptions that carry neither a type nor a value.
            view.exceptions
                .retain(|e| e.ty.is_some() || e.value.is_some() || e.frames.is_some());
        }
        view.stacktrace = frames(
            get_any(o, &["stacktrace", "sentry.interfaces.Stacktrace"]),
            platform,
        );
        if let Some(th) = get_any(o, &["threads"]) {
            view.threads = values_list(th)
                .map(|t| Thread {
                    id: t.get("id"),
                    crashed: bool_field(t, "crashed"),
                    current: bool_field(t, "current"),
                    frames: frames(t.get("stacktrace"), platform),
                })
                .collect();
        }
        // Relay moves a lone top-level stack into the only exception, and native SDKs put the
        // crashing stack on the thread the exception points at; either way the stack belongs
        // to the exception, where the exception strategy (which outranks threads) sees it.
        if view.exceptions.len() == 1 && view.exceptions[0].frames.is_none() {
            if view.stacktrace.is_some() {
                view.exceptions[0].frames = view.stacktrace.take();
            } else if let Some(tid) = get_any(o, &["exception"])
                .and_then(|ex| values_list(ex).next())
                .and_then(|e| e.get("thread_id"))
                && let Some(t) = view.threads.iter().find(|t| t.id == Some(tid))
            {
                view.exceptions[0].frames = t.frames.clone();
            }
        }

        let logentry = get_any(o, &["logentry", "sentry.interfaces.Message"]);
        match (logentry, o.get("message")) {
            (Some(Value::Object(le)), _) | (None, Some(Value::Object(le))) => {
                view.message_template = str_field(le, "message");
                view.message_formatted = str_field(le, "formatted");
                view.message_params = le.get("params").filter(|p| !p.is_null());
            }
            (Some(Value::String(s)), _) | (None, Some(Value::String(s))) if !s.is_empty() => {
                view.message_formatted = Some(s);
            }
            _ => {}
        }
        if view.message_formatted.is_none()
            && view.message_template.is_none()
            && let Some(Value::String(s)) = o.get("message")
            && !s.is_empty()
        {
            view.message_formatted = Some(s);
        }

        if let Some(Value::Array(fp)) = o.get("fingerprint") {
            view.fingerprint = Some(fp.iter().filter_map(scalar_string).collect());
        }
        view.checksum = str_field(o, "checksum");
        view.transaction = str_field(o, "transaction");
        view.culprit = str_field(o, "culprit");
        view.level = str_field(o, "level");
        view.logger = str_field(o, "logger");
        view.release = str_field(o, "release");
        view.sdk_name = o
            .get("sdk")
            .and_then(Value::as_object)
            .and_then(|s| str_field(s, "name"));
        view.request_url = get_any(o, &["request", "sentry.interfaces.Http"])
            .and_then(Value::as_object)
            .and_then(|r| str_field(r, "url"));
        view.main_exception_id = int_field(o, "main_exception_id");
        match o.get("tags") {
            Some(Value::Object(m)) => {
                view.tags = m
                    .iter()
                    .filter_map(|(k, v)| Some((k.as_str(), v.as_str()?)))
                    .collect();
            }
            Some(Value::Array(pairs)) => {
                view.tags = pairs
                    .iter()
                    .filter_map(|p| match p {
                        Value::Array(kv) if kv.len() == 2 => {
                            Some((kv[0].as_str()?, kv[1].as_str()?))
                        }
                        Value::Object(kv) => Some((str_field(kv, "key")?, str_field(kv, "value")?)),
                        _ => None,
                    })
                    .collect();
            }
            _ => {}
        }
        view
    }

    /// The exception titles, culprits and fingerprint variables describe: the one picked by
    /// exception-group handling, else the last (outermost) one.
    pub fn main_exception(&self) -> Option<&Exception<'a>> {
        if let Some(id) = self.main_exception_id
            && let Some(e) = self.exceptions.iter().find(|e| e.exception_id == Some(id))
        {
            return Some(e);
        }
        self.exceptions.last()
    }

    /// The exception that titles the issue.
    pub fn title_exception(&self) -> Option<&Exception<'a>> {
        if let Some(id) = self.title_exception_id
            && let Some(e) = self.exceptions.iter().find(|e| e.exception_id == Some(id))
        {
            return Some(e);
        }
        self.main_exception()
    }

    pub fn tag(&self, name: &str) -> Option<&'a str> {
        self.tags.iter().find(|(k, _)| *k == name).map(|(_, v)| *v)
    }

    /// The single thread Sentry's threads strategy would use.
    pub fn grouping_thread(&self) -> Option<&Thread<'a>> {
        let pick = |f: fn(&Thread) -> bool| {
            let mut it = self.threads.iter().filter(|t| f(t));
            match (it.next(), it.next()) {
                (Some(t), None) => Some(t),
                _ => None,
            }
        };
        pick(|t| t.crashed)
            .or_else(|| pick(|t| t.current))
            .or_else(|| pick(|_| true))
    }

    /// Every frame of every stack in the event, for fingerprint rule matching.
    pub fn all_frames(&self) -> impl Iterator<Item = &Frame<'a>> {
        self.exceptions
            .iter()
            .filter_map(|e| e.frames.as_deref())
            .chain(self.stacktrace.as_deref())
            .chain(self.threads.iter().filter_map(|t| t.frames.as_deref()))
            .flatten()
    }
}
