//! Turns a stored event's JSON into what the issue page shows. Kept apart
//! from the handlers so it can be tested without a server.

use serde_json::Value;

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
    pub request: Vec<(String, String)>,
    pub request_headers: Vec<(String, String)>,
    pub user: Vec<(String, String)>,
    pub tags: Vec<(String, String)>,
    pub contexts: Vec<(String, Vec<(String, String)>)>,
    pub extra: Vec<(String, String)>,
    pub sdk: String,
}

pub fn display(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => "null".into(),
        other => other.to_string(),
    }
}

fn text(v: &Value, key: &str) -> String {
    v.get(key).map(display).unwrap_or_default()
}

fn pairs(v: Option<&Value>) -> Vec<(String, String)> {
    match v {
        Some(Value::Object(map)) => map.iter().map(|(k, v)| (k.clone(), display(v))).collect(),
        Some(Value::Array(list)) => list
            .iter()
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

fn frames_of(stacktrace: Option<&Value>) -> Vec<FrameView> {
    let mut frames: Vec<FrameView> = stacktrace
        .and_then(|s| s.get("frames"))
        .and_then(Value::as_array)
        .map(|fs| fs.iter().map(frame_view).collect())
        .unwrap_or_default();
    frames.reverse();
    frames
}

pub fn event_view(event_id: &str, data: &Value) -> EventView {
    let mut exceptions: Vec<ExceptionView> = values(data.get("exception"))
        .iter()
        .map(|e| {
            let mechanism = e.get("mechanism");
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
                frames: frames_of(e.get("stacktrace")),
            }
        })
        .collect();
    // Sentry lists the outermost (last) exception first.
    exceptions.reverse();
    if exceptions.is_empty() {
        let frames = match data.get("stacktrace") {
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
    let breadcrumbs = values(data.get("breadcrumbs"))
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
        request: request_pairs,
        request_headers: pairs(request.and_then(|r| r.get("headers"))),
        user: pairs(data.get("user")),
        tags: pairs(data.get("tags")),
        contexts,
        extra: pairs(data.get("extra")),
        sdk,
    }
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
    fn threads_stack_without_exception() {
        let data =
            json!({"threads": {"values": [{"stacktrace": {"frames": [{"function": "run"}]}}]}});
        let view = event_view("x", &data);
        assert_eq!(view.exceptions[0].frames[0].function, "run");
    }
}
