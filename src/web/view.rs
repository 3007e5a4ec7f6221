//! Turns a stored event's JSON into what the issue page shows. Kept apart
//! from the handlers so it can be tested without a server.

use serde_json::Value;

/// Rendering limits: events are attacker-sized (1 MB, thousands of frames
/// or breadcrumbs) and the page must stay fast and readable.
pub const MAX_FRAMES: usize = 100;
pub const MAX_EXCEPTIONS: usize = 20;
pub const MAX_BREADCRUMBS: usize = 200;
pub const MAX_PAIRS: usize = 200;
pub const MAX_CONTEXT_LINES: usize = 15;
pub const MAX_TEXT: usize = 4096;

/// Headers and request fields whose values are secrets.
const REDACTED_HEADERS: [&str; 5] = [
    "cookie",
    "set-cookie",
    "authorization",
    "proxy-authorization",
    "x-api-key",
];
const REDACTED: &str = "[redacted]";

#[derive(Debug, Clone, Default)]
pub struct FrameView {
    pub filename: String,
    pub function: String,
    pub lineno: String,
    pub in_app: bool,
    pub context_line: Option<String>,
    pub pre_context: Vec<(String, String)>,
    pub post_context: Vec<(String, String)>,
    pub vars: Vec<(String, String)>,
}

#[derive(Debug, Clone, Default)]
pub struct ExceptionView {
    pub ty: String,
    pub value: String,
    pub module: String,
    pub mechanism: String,
    pub handled: String,
    /// Most recent call first, as Sentry shows them.
    pub frames: Vec<FrameView>,
    /// Older frames left out of `frames`.
    pub frames_omitted: usize,
}

#[derive(Debug, Clone, Default)]
pub struct BreadcrumbView {
    pub time: String,
    pub category: String,
    pub level: String,
    pub message: String,
}

#[derive(Debug, Clone, Default)]
pub struct EventView {
    pub event_id: String,
    pub message: String,
    pub exceptions: Vec<ExceptionView>,
    pub breadcrumbs: Vec<BreadcrumbView>,
    /// Older breadcrumbs left out.
    pub breadcrumbs_omitted: usize,
    pub request: Vec<(String, String)>,
    pub request_headers: Vec<(String, String)>,
    pub user: Vec<(String, String)>,
    pub tags: Vec<(String, String)>,
    pub contexts: Vec<(String, Vec<(String, String)>)>,
    pub extra: Vec<(String, String)>,
    pub sdk: String,
    pub release: String,
    pub environment: String,
}

/// Shortens text to `MAX_TEXT` bytes (on a character boundary).
pub fn clip(mut s: String) -> String {
    if s.len() > MAX_TEXT {
        s.truncate(s.floor_char_boundary(MAX_TEXT));
        s.push_str("… (truncated)");
    }
    s
}

pub fn display(v: &Value) -> String {
    clip(match v {
        Value::String(s) => s.clone(),
        Value::Null => "null".into(),
        other => other.to_string(),
    })
}

fn text(v: &Value, key: &str) -> String {
    v.get(key).map(display).unwrap_or_default()
}

fn pairs(v: Option<&Value>) -> Vec<(String, String)> {
    match v {
        Some(Value::Object(map)) => map
            .iter()
            .take(MAX_PAIRS)
            .map(|(k, v)| (clip(k.clone()), display(v)))
            .collect(),
        Some(Value::Array(list)) => list
            .iter()
            .take(MAX_PAIRS)
            .filter_map(|p| {
                let p = p.as_array()?;
                Some((
                    display(p.first()?),
                    p.get(1).map(display).unwrap_or_default(),
                ))
            })
            .collect(),
        _ => Vec::new(),
    }
}

fn values(v: Option<&Value>) -> Vec<Value> {
    match v {
        Some(Value::Object(o)) => o
            .get("values")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default(),
        Some(Value::Array(a)) => a.clone(),
        _ => Vec::new(),
    }
}

fn numbered(lines: Option<&Value>, first_line: Option<i64>) -> Vec<(String, String)> {
    let lines = lines.and_then(Value::as_array).cloned().unwrap_or_default();
    lines
        .iter()
        .enumerate()
        .take(MAX_CONTEXT_LINES)
        .map(|(i, l)| {
            (
                first_line
                    .map(|n| (n + i as i64).to_string())
                    .unwrap_or_default(),
                display(l),
            )
        })
        .collect()
}

fn frame_view(f: &Value) -> FrameView {
    let lineno = f.get("lineno").and_then(Value::as_i64);
    let pre_len = f
        .get("pre_context")
        .and_then(Value::as_array)
        .map_or(0, Vec::len) as i64;
    FrameView {
        filename: ["filename", "abs_path", "module"]
            .iter()
            .map(|k| text(f, k))
            .find(|s| !s.is_empty())
            .unwrap_or_else(|| "?".into()),
        function: Some(text(f, "function"))
            .filter(|s| !s.is_empty())
            .unwrap_or_else(|| "?".into()),
        lineno: lineno.map(|n| n.to_string()).unwrap_or_default(),
        in_app: f.get("in_app").and_then(Value::as_bool).unwrap_or(false),
        context_line: f.get("context_line").map(display),
        pre_context: numbered(f.get("pre_context"), lineno.map(|n| n - pre_len)),
        post_context: numbered(f.get("post_context"), lineno.map(|n| n + 1)),
        vars: pairs(f.get("vars")),
    }
}

/// Frames most recent first, at most `MAX_FRAMES`, and how many older
/// ones were left out.
fn frames_of(stacktrace: Option<&Value>) -> (Vec<FrameView>, usize) {
    let all = stacktrace
        .and_then(|s| s.get("frames"))
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or_default();
    let frames = all.iter().rev().take(MAX_FRAMES).map(frame_view).collect();
    (frames, all.len().saturating_sub(MAX_FRAMES))
}

pub fn event_view(event_id: &str, data: &Value) -> EventView {
    let all_exceptions = values(data.get("exception"));
    // Keep the outermost ones: the last in the list.
    let skip = all_exceptions.len().saturating_sub(MAX_EXCEPTIONS);
    let mut exceptions: Vec<ExceptionView> = all_exceptions[skip..]
        .iter()
        .map(|e| {
            let mechanism = e.get("mechanism");
            let (frames, frames_omitted) = frames_of(e.get("stacktrace"));
            ExceptionView {
                ty: text(e, "type"),
                value: text(e, "value"),
                module: text(e, "module"),
                mechanism: mechanism.map(|m| text(m, "type")).unwrap_or_default(),
                handled: mechanism
                    .and_then(|m| m.get("handled"))
                    .and_then(Value::as_bool)
                    .map(|h| if h { "yes" } else { "no" }.to_string())
                    .unwrap_or_default(),
                frames,
                frames_omitted,
            }
        })
        .collect();
    // Sentry lists the outermost (last) exception first.
    exceptions.reverse();
    if exceptions.is_empty() {
        let (frames, frames_omitted) = match data.get("stacktrace") {
            Some(stack) => frames_of(Some(stack)),
            None => values(data.get("threads"))
                .iter()
                .find_map(|t| t.get("stacktrace").map(|s| frames_of(Some(s))))
                .unwrap_or_default(),
        };
        if !frames.is_empty() {
            exceptions.push(ExceptionView {
                ty: "Stack trace".into(),
                frames,
                frames_omitted,
                ..Default::default()
            });
        }
    }
    let message = data
        .get("logentry")
        .and_then(|l| l.get("formatted").or_else(|| l.get("message")))
        .map(display)
        .or_else(|| data.get("message").map(display))
        .unwrap_or_default();
    let all_crumbs = values(data.get("breadcrumbs"));
    // The newest breadcrumbs, closest to the error, are the useful ones.
    let breadcrumbs_omitted = all_crumbs.len().saturating_sub(MAX_BREADCRUMBS);
    let breadcrumbs = all_crumbs[breadcrumbs_omitted..]
        .iter()
        .map(|b| BreadcrumbView {
            time: b.get("timestamp").map(format_timestamp).unwrap_or_default(),
            category: text(b, "category"),
            level: text(b, "level"),
            message: Some(text(b, "message"))
                .filter(|m| !m.is_empty())
                .or_else(|| b.get("data").map(display))
                .unwrap_or_default(),
        })
        .collect();
    let request = data.get("request");
    let mut request_pairs = Vec::new();
    if let Some(r) = request {
        for key in ["method", "url", "query_string", "data", "env"] {
            if let Some(v) = r.get(key).filter(|v| !v.is_null()) {
                request_pairs.push((key.to_string(), display(v)));
            }
        }
        if r.get("cookies").is_some_and(|c| !c.is_null()) {
            request_pairs.push(("cookies".into(), REDACTED.into()));
        }
    }
    let mut request_headers = pairs(request.and_then(|r| r.get("headers")));
    for (name, value) in &mut request_headers {
        if REDACTED_HEADERS.contains(&name.to_ascii_lowercase().as_str()) {
            *value = REDACTED.into();
        }
    }
    let contexts = match data.get("contexts") {
        Some(Value::Object(map)) => map
            .iter()
            .map(|(k, v)| (k.clone(), pairs(Some(v))))
            .collect(),
        _ => Vec::new(),
    };
    let sdk = data
        .get("sdk")
        .map(|s| {
            format!("{} {}", text(s, "name"), text(s, "version"))
                .trim()
                .to_string()
        })
        .unwrap_or_default();
    EventView {
        event_id: event_id.to_string(),
        message,
        exceptions,
        breadcrumbs,
        breadcrumbs_omitted,
        request: request_pairs,
        request_headers,
        user: pairs(data.get("user")),
        tags: pairs(data.get("tags")),
        contexts,
        extra: pairs(data.get("extra")),
        sdk,
        release: text(data, "release"),
        environment: text(data, "environment"),
    }
}

/// The issue and its event as Markdown, for pasting into a ticket.
pub fn markdown(
    short_id: &str,
    title: &str,
    culprit: &str,
    url: &str,
    event: Option<&EventView>,
) -> String {
    let one_line = |s: &str| s.replace(['\n', '\r'], " ");
    let mut md = format!("## {short_id}: {}\n\n", one_line(title));
    if !culprit.is_empty() {
        md.push_str(&format!("`{}`\n\n", one_line(culprit).replace('`', "'")));
    }
    md.push_str(&format!("{url}\n"));
    let Some(event) = event else {
        return md;
    };
    md.push_str(&format!("\nEvent `{}`\n", event.event_id));
    if !event.message.is_empty() {
        md.push_str(&format!("\n> {}\n", one_line(&event.message)));
    }
    for exc in &event.exceptions {
        md.push_str(&format!("\n**{}**", one_line(&exc.ty)));
        if !exc.value.is_empty() {
            md.push_str(&format!(": {}", one_line(&exc.value)));
        }
        md.push_str("\n\n```\n");
        for f in exc.frames.iter().take(30) {
            md.push_str(&format!("  at {} ({}", f.function, f.filename));
            if !f.lineno.is_empty() {
                md.push_str(&format!(":{}", f.lineno));
            }
            md.push_str(if f.in_app { ") [in app]\n" } else { ")\n" });
            if let Some(line) = &f.context_line {
                md.push_str(&format!("      {}\n", line.trim()));
            }
        }
        let more = exc.frames.len().saturating_sub(30) + exc.frames_omitted;
        if more > 0 {
            md.push_str(&format!("  … {more} more frames\n"));
        }
        md.push_str("```\n");
    }
    if !event.tags.is_empty() {
        md.push_str("\n| tag | value |\n|---|---|\n");
        for (k, v) in &event.tags {
            md.push_str(&format!(
                "| {} | {} |\n",
                one_line(k).replace('|', "\\|"),
                one_line(v).replace('|', "\\|")
            ));
        }
    }
    md
}

fn format_timestamp(v: &Value) -> String {
    match v {
        Value::Number(n) => n
            .as_f64()
            .and_then(|secs| chrono::DateTime::from_timestamp_millis((secs * 1000.0) as i64))
            .map(|t| t.format("%H:%M:%S%.3f").to_string())
            .unwrap_or_default(),
        other => display(other),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn exception_frames_most_recent_first_with_context() {
        let data = json!({
            "exception": {"values": [{"type": "ValueError", "value": "bad", "mechanism": {"type": "excepthook", "handled": false},
                "stacktrace": {"frames": [
                    {"filename": "app.py", "function": "main", "lineno": 10, "in_app": true},
                    {"filename": "lib.py", "function": "parse", "lineno": 5, "context_line": "raise ValueError('bad')",
                     "pre_context": ["a", "b"], "post_context": ["c"], "vars": {"x": 1}}
                ]}}]},
            "tags": [["env", "prod"]],
            "breadcrumbs": {"values": [{"timestamp": 1700000000.5, "category": "http", "message": "GET /"}]}
        });
        let view = event_view("abc", &data);
        assert_eq!(view.exceptions.len(), 1);
        let e = &view.exceptions[0];
        assert_eq!(
            (e.ty.as_str(), e.value.as_str(), e.handled.as_str()),
            ("ValueError", "bad", "no")
        );
        assert_eq!(e.frames[0].function, "parse");
        assert_eq!(
            e.frames[0].pre_context,
            vec![("3".into(), "a".into()), ("4".into(), "b".into())]
        );
        assert_eq!(e.frames[0].post_context, vec![("6".into(), "c".into())]);
        assert_eq!(e.frames[0].vars, vec![("x".into(), "1".into())]);
        assert_eq!(view.tags, vec![("env".into(), "prod".into())]);
        assert_eq!(view.breadcrumbs[0].time, "22:13:20.500");
    }

    #[test]
    fn huge_events_are_capped_and_secrets_redacted() {
        let frames: Vec<Value> = (0..500)
            .map(|i| json!({"function": format!("f{i}"), "filename": "x.py"}))
            .collect();
        let crumbs: Vec<Value> = (0..10_000)
            .map(|i| json!({"message": format!("c{i}")}))
            .collect();
        let data = json!({
            "exception": {"values": [{"type": "E", "stacktrace": {"frames": frames}}]},
            "breadcrumbs": {"values": crumbs},
            "extra": {"big": "x".repeat(100_000)},
            "request": {"url": "/", "cookies": {"session": "s3cret"},
                        "headers": [["Cookie", "session=s3cret"], ["Accept", "*/*"]]}
        });
        let view = event_view("x", &data);
        let e = &view.exceptions[0];
        assert_eq!(e.frames.len(), MAX_FRAMES);
        assert_eq!(e.frames[0].function, "f499", "most recent first");
        assert_eq!(e.frames_omitted, 400);
        assert_eq!(view.breadcrumbs.len(), MAX_BREADCRUMBS);
        assert_eq!(view.breadcrumbs_omitted, 9_800);
        assert_eq!(view.breadcrumbs.last().unwrap().message, "c9999");
        assert!(view.extra[0].1.len() < MAX_TEXT + 20);
        assert!(view.extra[0].1.ends_with("(truncated)"));
        assert_eq!(view.request_headers[0], ("Cookie".into(), REDACTED.into()));
        assert_eq!(view.request_headers[1].1, "*/*");
        assert!(view.request.contains(&("cookies".into(), REDACTED.into())));
        let md = markdown(
            "SHOP-1",
            "E: boom",
            "app.x",
            "http://h/issues/1",
            Some(&view),
        );
        assert!(!md.contains("s3cret"));
        assert!(md.starts_with("## SHOP-1: E: boom\n"));
        assert!(md.contains("  at f499 (x.py)\n"));
        assert!(md.contains("… 470 more frames"));
    }

    #[test]
    fn threads_stack_without_exception() {
        let data =
            json!({"threads": {"values": [{"stacktrace": {"frames": [{"function": "run"}]}}]}});
        let view = event_view("x", &data);
        assert_eq!(view.exceptions[0].frames[0].function, "run");
    }
}
