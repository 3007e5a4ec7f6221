//! Browser security reports (CSP, HPKP, Expect-CT, Expect-Staple) turned
//! into events the way Relay's `security_report.rs` does: an interface
//! object under the report type's key, a human message, a culprit, tags,
//! and the reporting document as the request URL.

#[cfg(test)]
mod tests;

use super::EventError;
use super::values::{lenient_string, truncate_chars};
use serde_json::{Map, Value, json};

const MAX_FIELD_CHARS: usize = 4096;

/// Converts one report body. For a Reporting-API array the first CSP
/// violation is used; see [`security_reports_to_events`] for all of them.
pub fn security_report_to_event(body: &Value) -> Result<Value, EventError> {
    let mut events = security_reports_to_events(body)?;
    if events.is_empty() {
        return Err(EventError::InvalidSecurityReport(
            "empty report list".into(),
        ));
    }
    Ok(events.swap_remove(0))
}

/// Converts a report body that may hold several reports (the Reporting API
/// batches them as a JSON array). Entries of other report types in a batch
/// are skipped; a body with nothing usable is an error.
pub fn security_reports_to_events(body: &Value) -> Result<Vec<Value>, EventError> {
    match body {
        Value::Array(items) => {
            let mut out = Vec::new();
            let mut last_err = None;
            for item in items.iter().take(100) {
                match single(item) {
                    Ok(e) => out.push(e),
                    Err(e) => last_err = Some(e),
                }
            }
            if out.is_empty() {
                return Err(last_err.unwrap_or_else(|| {
                    EventError::InvalidSecurityReport("empty report list".into())
                }));
            }
            Ok(out)
        }
        Value::Object(_) => Ok(vec![single(body)?]),
        _ => Err(EventError::InvalidSecurityReport(
            "report must be a JSON object or array".into(),
        )),
    }
}

fn single(body: &Value) -> Result<Value, EventError> {
    let Value::Object(m) = body else {
        return Err(EventError::InvalidSecurityReport(
            "report must be a JSON object".into(),
        ));
    };
    if let Some(r) = m.get("csp-report") {
        let r = r
            .as_object()
            .ok_or_else(|| invalid("csp-report is not an object"))?;
        return csp(&from_dashed(r), None);
    }
    if m.contains_key("known-pins") {
        return hpkp(&from_dashed(m));
    }
    if let Some(r) = m.get("expect-staple-report") {
        let r = r
            .as_object()
            .ok_or_else(|| invalid("expect-staple-report is not an object"))?;
        return expect_staple(&from_dashed(r));
    }
    if let Some(r) = m.get("expect-ct-report") {
        let r = r
            .as_object()
            .ok_or_else(|| invalid("expect-ct-report is not an object"))?;
        return expect_ct(&from_dashed(r));
    }
    match m.get("type").and_then(Value::as_str) {
        Some("csp-violation") => {
            let b = m
                .get("body")
                .and_then(Value::as_object)
                .ok_or_else(|| invalid("csp-violation without body"))?;
            let mut r = from_camel(b);
            if !r.contains_key("document_uri")
                && let Some(url) = m.get("url").and_then(lenient_string)
            {
                r.insert("document_uri".into(), Value::String(url));
            }
            let ua = m.get("user_agent").and_then(Value::as_str);
            csp(&r, ua)
        }
        Some(other) => {
            let mut t = other.to_owned();
            truncate_chars(&mut t, 64);
            Err(EventError::UnsupportedSecurityReport(t))
        }
        None => Err(EventError::UnsupportedSecurityReport(
            "no known report key".into(),
        )),
    }
}

fn invalid(msg: &str) -> EventError {
    EventError::InvalidSecurityReport(msg.into())
}

/// `blocked-uri` → `blocked_uri`, values kept if they are scalars or lists.
fn from_dashed(m: &Map<String, Value>) -> Map<String, Value> {
    m.iter()
        .filter_map(|(k, v)| Some((k.replace('-', "_"), clean(v)?)))
        .collect()
}

/// Reporting-API names (`blockedURL`, `effectiveDirective`) → CSP2 names.
fn from_camel(m: &Map<String, Value>) -> Map<String, Value> {
    m.iter()
        .filter_map(|(k, v)| {
            let key = match k.as_str() {
                "documentURL" => "document_uri".to_owned(),
                "blockedURL" => "blocked_uri".to_owned(),
                "sample" => "script_sample".to_owned(),
                other => {
                    let mut s = String::new();
                    for c in other.chars() {
                        if c.is_ascii_uppercase() {
                            s.push('_');
                            s.push(c.to_ascii_lowercase());
                        } else {
                            s.push(c);
                        }
                    }
                    s
                }
            };
            Some((key, clean(v)?))
        })
        .collect()
}

fn clean(v: &Value) -> Option<Value> {
    match v {
        Value::Null => None,
        Value::String(s) => {
            let mut s = s.clone();
            truncate_chars(&mut s, MAX_FIELD_CHARS);
            Some(Value::String(s))
        }
        Value::Number(_) | Value::Bool(_) => Some(v.clone()),
        // Certificate chains and SCT lists.
        Value::Array(a) => Some(Value::Array(a.iter().take(64).filter_map(clean).collect())),
        Value::Object(o) => Some(Value::Object(
            o.iter()
                .take(64)
                .filter_map(|(k, v)| match v {
                    Value::Array(_) | Value::Object(_) => None,
                    _ => Some((k.clone(), clean(v)?)),
                })
                .collect(),
        )),
    }
}

fn get_str(r: &Map<String, Value>, key: &str) -> Option<String> {
    r.get(key)
        .and_then(lenient_string)
        .map(|s| s.trim().to_owned())
}

fn event(
    ty: &str,
    message: String,
    culprit: Option<String>,
    tags: Vec<(&str, String)>,
) -> Map<String, Value> {
    let mut e = Map::new();
    e.insert("type".into(), json!(ty));
    e.insert("logger".into(), json!(ty));
    e.insert("platform".into(), json!("javascript"));
    e.insert("logentry".into(), json!({ "formatted": message }));
    if let Some(c) = culprit.filter(|c| !c.is_empty()) {
        e.insert("culprit".into(), json!(c));
    }
    let tags: Vec<Value> = tags
        .into_iter()
        .filter(|(_, v)| !v.is_empty())
        .map(|(k, v)| json!([k, v]))
        .collect();
    if !tags.is_empty() {
        e.insert("tags".into(), Value::Array(tags));
    }
    e
}

fn csp(r: &Map<String, Value>, user_agent: Option<&str>) -> Result<Value, EventError> {
    let violated = get_str(r, "violated_directive").unwrap_or_default();
    let effective = get_str(r, "effective_directive")
        .filter(|s| !s.is_empty())
        .or_else(|| violated.split_whitespace().next().map(str::to_owned))
        .map(|s| s.to_ascii_lowercase())
        .ok_or_else(|| invalid("missing effective-directive and violated-directive"))?;
    let blocked = get_str(r, "blocked_uri").unwrap_or_default();
    let document = get_str(r, "document_uri").unwrap_or_default();

    let mut iface = r.clone();
    iface.insert("effective_directive".into(), json!(effective));
    if violated.is_empty() {
        iface.insert("violated_directive".into(), json!(effective));
    }
    let blocked_tag = sanitized_blocked_uri(&blocked);
    iface.insert("blocked_uri".into(), json!(blocked_tag));

    let culprit = culprit(
        if violated.is_empty() {
            &effective
        } else {
            &violated
        },
        &document,
    );
    let mut e = event(
        "csp",
        csp_message(&effective, &blocked),
        Some(culprit),
        vec![
            ("effective-directive", effective.clone()),
            ("blocked-uri", blocked_tag),
        ],
    );
    e.insert("csp".into(), Value::Object(iface));

    let mut req = Map::new();
    if !document.is_empty() {
        req.insert("url".into(), json!(document));
    }
    let mut headers = Vec::new();
    if let Some(ua) = user_agent.filter(|u| !u.is_empty()) {
        headers.push(json!(["User-Agent", ua]));
    }
    if let Some(referrer) = get_str(r, "referrer").filter(|s| !s.is_empty()) {
        headers.push(json!(["Referer", referrer]));
    }
    if !headers.is_empty() {
        req.insert("headers".into(), Value::Array(headers));
    }
    if !req.is_empty() {
        e.insert("request".into(), Value::Object(req));
    }
    Ok(Value::Object(e))
}

/// Relay's workaround for Stripe, whose blocked URLs carry secrets in the
/// query string; the query and fragment are cut from every blocked URI for
/// the same reason.
fn sanitized_blocked_uri(uri: &str) -> String {
    let cut = uri.find(['?', '#']).unwrap_or(uri.len());
    uri[..cut].to_owned()
}

fn is_local(uri: &str) -> bool {
    matches!(
        uri.to_ascii_lowercase().as_str(),
        "" | "self"
            | "'self'"
            | "inline"
            | "eval"
            | "wasm-eval"
            | "'unsafe-inline'"
            | "'unsafe-eval'"
    )
}

/// `https://evil.com:8443/x.js` → `evil.com:8443`; `data:image/png…` →
/// `data:`; a bare scheme such as `blob` → `blob:`.
fn normalize_uri(uri: &str) -> String {
    if uri.is_empty() {
        return "'self'".into();
    }
    let Some((scheme, rest)) = uri.split_once(':') else {
        return format!("{uri}:");
    };
    let scheme_l = scheme.to_ascii_lowercase();
    if scheme_l == "http" || scheme_l == "https" || scheme_l == "ws" || scheme_l == "wss" {
        let rest = rest.trim_start_matches('/');
        let host = rest.split(['/', '?', '#']).next().unwrap_or("");
        let host = host.rsplit('@').next().unwrap_or(host);
        if host.is_empty() {
            return format!("{scheme_l}:");
        }
        return host.to_ascii_lowercase();
    }
    format!("{scheme_l}:")
}

fn directive_noun(directive: &str) -> Option<&'static str> {
    Some(match directive {
        "child-src" => "child",
        "connect-src" => "connect",
        "font-src" => "font",
        "img-src" => "image",
        "manifest-src" => "manifest",
        "media-src" => "media",
        "object-src" => "object",
        "script-src" | "script-src-elem" | "script-src-attr" => "script",
        "style-src" | "style-src-elem" | "style-src-attr" => "style",
        _ => return None,
    })
}

fn csp_message(directive: &str, blocked: &str) -> String {
    let noun = directive_noun(directive);
    if is_local(blocked) {
        let eval = matches!(
            blocked.to_ascii_lowercase().as_str(),
            "eval" | "wasm-eval" | "'unsafe-eval'"
        );
        return match (directive, noun) {
            ("form-action", _) => "Blocked 'form' action to 'self'".into(),
            (_, Some("script")) if eval => "Blocked unsafe eval() 'script'".into(),
            (_, Some("script")) => "Blocked unsafe inline 'script'".into(),
            (_, Some(n)) => format!("Blocked inline '{n}'"),
            (d, None) => format!("Blocked inline '{d}'"),
        };
    }
    let uri = normalize_uri(blocked);
    match (directive, noun) {
        ("form-action", _) => format!("Blocked 'form' action to '{uri}'"),
        (_, Some(n)) => format!("Blocked '{n}' from '{uri}'"),
        (d, None) => format!("Blocked '{d}' from '{uri}'"),
    }
}

/// The directive with its sources made readable: keywords kept, schemes
/// reduced to `scheme:`, URLs to their host, the page's own origin to
/// `'self'` (Relay's `get_culprit`/`normalize_value`).
fn culprit(violated: &str, document: &str) -> String {
    let mut bits = violated.split_whitespace();
    let mut out = bits.next().unwrap_or_default().to_owned();
    let doc_host = if document.contains("://") {
        Some(normalize_uri(document))
    } else {
        None
    };
    for bit in bits.take(32) {
        out.push(' ');
        if bit.starts_with('\'') || !bit.contains(':') && !bit.contains('.') {
            out.push_str(bit);
            continue;
        }
        if bit.contains("://") {
            let host = normalize_uri(bit);
            if doc_host.as_deref() == Some(host.as_str()) {
                out.push_str("'self'");
            } else {
                out.push_str(&host);
            }
        } else {
            out.push_str(bit);
        }
    }
    truncate_chars(&mut out, 200);
    out
}

fn host_tags(r: &Map<String, Value>) -> (String, Vec<(&'static str, String)>) {
    let hostname = get_str(r, "hostname").unwrap_or_default();
    let mut tags = vec![("hostname", hostname.clone())];
    if let Some(port) = get_str(r, "port") {
        tags.push(("port", port));
    }
    (hostname, tags)
}

fn hpkp(r: &Map<String, Value>) -> Result<Value, EventError> {
    let (hostname, mut tags) = host_tags(r);
    if hostname.is_empty() {
        return Err(invalid("HPKP report without hostname"));
    }
    if let Some(b) = r.get("include_subdomains").and_then(Value::as_bool) {
        tags.push(("include-subdomains", b.to_string()));
    }
    let mut e = event(
        "hpkp",
        format!("Public key pinning validation failed for '{hostname}'"),
        Some(hostname.clone()),
        tags,
    );
    e.insert("hpkp".into(), Value::Object(r.clone()));
    Ok(Value::Object(e))
}

fn expect_ct(r: &Map<String, Value>) -> Result<Value, EventError> {
    let (hostname, tags) = host_tags(r);
    if hostname.is_empty() {
        return Err(invalid("Expect-CT report without hostname"));
    }
    let mut e = event(
        "expectct",
        format!("Expect-CT failed for '{hostname}'"),
        Some(hostname.clone()),
        tags,
    );
    e.insert("expectct".into(), Value::Object(r.clone()));
    Ok(Value::Object(e))
}

fn expect_staple(r: &Map<String, Value>) -> Result<Value, EventError> {
    let (hostname, mut tags) = host_tags(r);
    if hostname.is_empty() {
        return Err(invalid("Expect-Staple report without hostname"));
    }
    for key in ["response_status", "cert_status"] {
        if let Some(v) = get_str(r, key) {
            tags.push((key, v));
        }
    }
    let mut e = event(
        "expectstaple",
        format!("Expect-Staple failed for '{hostname}'"),
        Some(hostname.clone()),
        tags,
    );
    e.insert("expectstaple".into(), Value::Object(r.clone()));
    Ok(Value::Object(e))
}
