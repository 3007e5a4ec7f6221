//! Tags, request, user, SDK info and the free-form data bags.

use super::super::values::{
    drop_deep, lenient_string, pairs_to_object, trim_bag, truncate_bytes, truncate_chars,
};
use super::Normalizer;
use serde_json::{Map, Value, json};
use std::net::IpAddr;

const MAX_TAG_KEY_CHARS: usize = 200;
const MAX_TAG_VALUE_CHARS: usize = 200;
const MAX_TAGS: usize = 200;
const AUTO_IP: &str = "{{auto}}";
/// Platforms whose events come from end-user devices: Relay fills in the
/// peer address for them even without `{{auto}}`.
const DEVICE_PLATFORMS: &[&str] = &["javascript", "cocoa", "objc"];

impl Normalizer<'_> {
    pub(super) fn tags(&mut self) {
        let raw = self.obj.remove("tags");
        let mut pairs: Vec<(String, String)> = Vec::new();
        let mut push = |k: Option<String>, v: Option<String>| {
            let (Some(k), Some(v)) = (k, v) else { return };
            let Some((k, v)) = clean_tag(k, v) else {
                return;
            };
            if pairs.len() < MAX_TAGS && !pairs.iter().any(|(pk, _)| *pk == k) {
                pairs.push((k, v));
            }
        };
        match raw {
            None | Some(Value::Null) => {}
            Some(Value::Object(m)) => {
                for (k, v) in m {
                    push(Some(k), lenient_string(&v));
                }
            }
            Some(Value::Array(items)) => {
                for item in items {
                    match item {
                        Value::Array(pair) if pair.len() == 2 => {
                            push(lenient_string(&pair[0]), lenient_string(&pair[1]))
                        }
                        Value::Object(o) => push(
                            o.get("key").and_then(lenient_string),
                            o.get("value").and_then(lenient_string),
                        ),
                        // Very old clients sent `"key:value"` strings.
                        Value::String(s) => {
                            if let Some((k, v)) = s.split_once(':') {
                                push(Some(k.to_owned()), Some(v.to_owned()));
                            }
                        }
                        other => drop_deep(other),
                    }
                }
            }
            Some(other) => {
                self.error("invalid_data", "tags", Some(&other));
                drop_deep(other);
            }
        }
        // `site` is a deprecated attribute that Relay turns into a tag.
        if let Some(Value::String(site)) = self.obj.remove("site") {
            push(Some("site".into()), Some(site));
        }
        if !pairs.is_empty() {
            let list = pairs.into_iter().map(|(k, v)| json!([k, v])).collect();
            self.obj.insert("tags".into(), Value::Array(list));
        }
    }

    pub(super) fn http(&mut self) {
        if let Some(raw) = self.obj.remove("request") {
            match raw {
                Value::Object(m) => {
                    let req = normalize_request(m);
                    self.obj.insert("request".into(), Value::Object(req));
                }
                Value::Null => {}
                other => {
                    self.error("invalid_data", "request", Some(&other));
                    drop_deep(other);
                }
            }
        }
        self.user();
    }

    fn user(&mut self) {
        let mut user = match self.obj.remove("user") {
            Some(Value::Object(m)) => m,
            None | Some(Value::Null) => Map::new(),
            Some(other) => {
                self.error("invalid_data", "user", Some(&other));
                drop_deep(other);
                Map::new()
            }
        };
        for key in ["id", "email", "username", "name", "segment"] {
            if let Some(v) = user.remove(key) {
                match lenient_string(&v) {
                    Some(mut s) if !s.trim().is_empty() => {
                        truncate_chars(&mut s, if key == "email" { 256 } else { 128 });
                        user.insert(key.into(), Value::String(s));
                    }
                    Some(_) => {}
                    None if v.is_null() => {}
                    None => self.error("invalid_data", &format!("user.{key}"), Some(&v)),
                }
            }
        }
        let client_ip = self.ctx.client_ip.map(|ip| ip.to_string());
        match user.remove("ip_address") {
            Some(Value::String(s)) if s.trim() == AUTO_IP => {
                if let Some(ip) = &client_ip {
                    user.insert("ip_address".into(), Value::String(ip.clone()));
                }
            }
            Some(Value::String(s)) => match s.trim().parse::<IpAddr>() {
                Ok(ip) => {
                    user.insert("ip_address".into(), Value::String(ip.to_string()));
                }
                Err(_) => self.error("invalid_data", "user.ip_address", Some(&Value::String(s))),
            },
            Some(Value::Null) | None => {
                let remote = self
                    .obj
                    .get("request")
                    .and_then(|r| r.get("env"))
                    .and_then(|e| e.get("REMOTE_ADDR"))
                    .and_then(Value::as_str)
                    .and_then(|s| s.trim().parse::<IpAddr>().ok())
                    .map(|ip| ip.to_string());
                let device = self
                    .obj
                    .get("platform")
                    .and_then(Value::as_str)
                    .is_some_and(|p| DEVICE_PLATFORMS.contains(&p));
                if let Some(ip) = remote.or(client_ip.filter(|_| device)) {
                    user.insert("ip_address".into(), Value::String(ip));
                }
            }
            Some(other) => {
                self.error("invalid_data", "user.ip_address", Some(&other));
                drop_deep(other);
            }
        }
        match user.remove("data") {
            Some(mut d @ Value::Object(_)) => {
                trim_bag(&mut d, 7, 8192);
                user.insert("data".into(), d);
            }
            Some(other) => drop_deep(other),
            None => {}
        }
        if !user.is_empty() {
            self.obj.insert("user".into(), Value::Object(user));
        }
    }

    pub(super) fn sdk(&mut self) {
        match self.obj.remove("sdk") {
            Some(Value::Object(mut m)) => {
                for key in ["name", "version"] {
                    if let Some(mut s) = m.remove(key).as_ref().and_then(lenient_string) {
                        truncate_chars(&mut s, 256);
                        m.insert(key.into(), Value::String(s));
                    }
                }
                self.obj.insert("sdk".into(), Value::Object(m));
            }
            Some(other) if !other.is_null() => {
                self.error("invalid_data", "sdk", Some(&other));
                drop_deep(other);
            }
            _ => {}
        }
        if !self.obj.contains_key("sdk")
            && let Some(client) = self.ctx.client_sdk.as_deref().map(str::trim)
            && !client.is_empty()
        {
            let (name, version) = match client.rsplit_once('/') {
                Some((n, v)) => (n, Some(v)),
                None => (client, None),
            };
            let mut sdk = Map::new();
            sdk.insert("name".into(), json!(name));
            if let Some(v) = version {
                sdk.insert("version".into(), json!(v));
            }
            self.obj.insert("sdk".into(), Value::Object(sdk));
        }
    }

    /// Free-form objects. They must be objects; their size is bounded like
    /// Relay's data bags (`extra` is "massive", each context "large").
    pub(super) fn data_bags(&mut self) {
        match self.obj.remove("extra") {
            Some(mut v @ Value::Object(_)) => {
                trim_bag(&mut v, 16, 256 * 1024);
                self.obj.insert("extra".into(), v);
            }
            Some(Value::Null) | None => {}
            Some(other) => {
                self.error("invalid_data", "extra", Some(&other));
                drop_deep(other);
            }
        }
        match self.obj.remove("contexts") {
            Some(Value::Object(m)) => {
                let mut out = Map::new();
                for (k, v) in m {
                    match v {
                        Value::Object(mut c) => {
                            // Relay serialises each known context with its
                            // type; unknown ones default to their key.
                            if !c.get("type").is_some_and(Value::is_string) {
                                c.insert("type".into(), Value::String(k.clone()));
                            }
                            let mut c = Value::Object(c);
                            trim_bag(&mut c, 8, 16 * 1024);
                            out.insert(k, c);
                        }
                        Value::Null => {}
                        other => {
                            self.error("invalid_data", &format!("contexts.{k}"), Some(&other));
                            drop_deep(other);
                        }
                    }
                }
                if !out.is_empty() {
                    self.obj.insert("contexts".into(), Value::Object(out));
                }
            }
            Some(Value::Null) | None => {}
            Some(other) => {
                self.error("invalid_data", "contexts", Some(&other));
                drop_deep(other);
            }
        }
        match self.obj.remove("modules") {
            Some(Value::Object(m)) => {
                let mods: Map<String, Value> = m
                    .into_iter()
                    .filter_map(|(k, v)| {
                        let mut s = lenient_string(&v)?;
                        truncate_chars(&mut s, 256);
                        Some((k, Value::String(s)))
                    })
                    .collect();
                self.obj.insert("modules".into(), Value::Object(mods));
            }
            Some(other) => drop_deep(other),
            None => {}
        }
    }
}

fn clean_tag(k: String, v: String) -> Option<(String, String)> {
    let mut k = k.trim().replace(['\n', '\r', '\t'], " ");
    let mut v = v.trim().replace(['\n', '\r', '\t'], " ");
    if k.is_empty() || v.is_empty() {
        return None;
    }
    truncate_chars(&mut k, MAX_TAG_KEY_CHARS);
    truncate_chars(&mut v, MAX_TAG_VALUE_CHARS);
    Some((k, v))
}

fn normalize_request(mut m: Map<String, Value>) -> Map<String, Value> {
    if let Some(method) = m.remove("method").as_ref().and_then(lenient_string) {
        let mut method = method.trim().to_ascii_uppercase();
        truncate_chars(&mut method, 32);
        m.insert("method".into(), Value::String(method));
    }
    if let Some(url) = m.remove("url").as_ref().and_then(lenient_string) {
        let mut url = url.trim().to_owned();
        // Relay splits the fragment and the query out of the URL so that
        // the URL groups and searches without per-request noise.
        if let Some((base, frag)) = url.split_once('#') {
            if !m.contains_key("fragment") && !frag.is_empty() {
                m.insert("fragment".into(), Value::String(frag.to_owned()));
            }
            url = base.to_owned();
        }
        if let Some((base, query)) = url.split_once('?') {
            if m.get("query_string").is_none_or(is_empty_value) && !query.is_empty() {
                m.insert("query_string".into(), Value::String(query.to_owned()));
            }
            url = base.to_owned();
        }
        truncate_bytes(&mut url, 4096);
        m.insert("url".into(), Value::String(url));
    }

    let headers = m.remove("headers").map(header_pairs).unwrap_or_default();
    match m.remove("query_string") {
        Some(Value::String(s)) => {
            let q = parse_query(s.trim_start_matches('?'));
            m.insert("query_string".into(), pair_list(q));
        }
        Some(other) => {
            if let Some(q) = generic_pairs(other) {
                m.insert("query_string".into(), pair_list(q));
            }
        }
        None => {}
    }
    let cookies = match m.remove("cookies") {
        Some(Value::String(s)) => Some(parse_cookies(&s)),
        Some(other) => generic_pairs(other),
        None => None,
    }
    .or_else(|| {
        headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case("cookie"))
            .map(|(_, v)| parse_cookies(v))
    });
    if let Some(c) = cookies.filter(|c| !c.is_empty()) {
        m.insert("cookies".into(), pair_list(c));
    }
    let content_type = headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case("content-type"))
        .map(|(_, v)| v.to_ascii_lowercase());
    if !headers.is_empty() {
        m.insert("headers".into(), pair_list(headers));
    }

    if let Some(data) = m.remove("data") {
        let (mut data, inferred) = infer_body(data, content_type.as_deref());
        trim_bag(&mut data, 8, 16 * 1024);
        if !data.is_null() {
            m.insert("data".into(), data);
        }
        if let Some(ct) = inferred {
            m.insert("inferred_content_type".into(), json!(ct));
        }
    }
    match m.remove("env") {
        Some(mut env @ Value::Object(_)) => {
            trim_bag(&mut env, 5, 8192);
            m.insert("env".into(), env);
        }
        Some(other) => drop_deep(other),
        None => {}
    }
    m
}

fn is_empty_value(v: &Value) -> bool {
    match v {
        Value::Null => true,
        Value::String(s) => s.is_empty(),
        Value::Array(a) => a.is_empty(),
        Value::Object(o) => o.is_empty(),
        _ => false,
    }
}

fn pair_list(pairs: Vec<(String, String)>) -> Value {
    Value::Array(pairs.into_iter().map(|(k, v)| json!([k, v])).collect())
}

/// Object or pair-list form, values coerced to strings; arrays of values
/// (`{"Accept": ["a", "b"]}`) are joined as HTTP would.
fn generic_pairs(v: Value) -> Option<Vec<(String, String)>> {
    let keep_order: Vec<(String, Value)> = match v {
        Value::Array(a) => a
            .into_iter()
            .filter_map(|item| match item {
                Value::Array(mut p) if p.len() == 2 => {
                    let v = p.pop()?;
                    let k = lenient_string(&p.pop()?)?;
                    Some((k, v))
                }
                _ => None,
            })
            .collect(),
        other => pairs_to_object(other)?.into_iter().collect(),
    };
    Some(
        keep_order
            .into_iter()
            .filter_map(|(k, v)| {
                let s = match &v {
                    Value::Array(items) => {
                        let parts: Vec<String> = items.iter().filter_map(lenient_string).collect();
                        parts.join(", ")
                    }
                    other => lenient_string(other)?,
                };
                let mut s = s;
                truncate_bytes(&mut s, 8192);
                Some((k, s))
            })
            .collect(),
    )
}

fn header_pairs(v: Value) -> Vec<(String, String)> {
    generic_pairs(v)
        .unwrap_or_default()
        .into_iter()
        .filter(|(k, _)| !k.trim().is_empty())
        .map(|(k, v)| (header_case(k.trim()), v))
        .collect()
}

/// Relay's header-name normalisation: `x-forwarded-for` → `X-Forwarded-For`
/// (only first letters are touched, so `X-API-Key` survives).
fn header_case(k: &str) -> String {
    k.split('-')
        .map(|part| {
            let mut c = part.chars();
            match c.next() {
                Some(first) => first.to_uppercase().chain(c).collect(),
                None => String::new(),
            }
        })
        .collect::<Vec<_>>()
        .join("-")
}

fn parse_query(q: &str) -> Vec<(String, String)> {
    q.split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (percent_decode(k), percent_decode(v))
        })
        .collect()
}

fn parse_cookies(s: &str) -> Vec<(String, String)> {
    s.split(';')
        .filter_map(|p| {
            let p = p.trim();
            if p.is_empty() {
                return None;
            }
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            Some((k.trim().to_owned(), v.trim().to_owned()))
        })
        .collect()
}

fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < b.len() => {
                let hex = std::str::from_utf8(&b[i + 1..i + 3]).ok();
                match hex.and_then(|h| u8::from_str_radix(h, 16).ok()) {
                    Some(byte) => {
                        out.push(byte);
                        i += 3;
                        continue;
                    }
                    None => out.push(b'%'),
                }
            }
            c => out.push(c),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Request bodies arrive as strings more often than not; JSON and form
/// bodies are parsed so the dashboard (and the scrubber) see their keys.
fn infer_body(data: Value, content_type: Option<&str>) -> (Value, Option<&'static str>) {
    let Value::String(s) = data else {
        let ct = match &data {
            Value::Object(_) | Value::Array(_) => Some("application/json"),
            _ => None,
        };
        return (data, ct);
    };
    let trimmed = s.trim_start();
    if trimmed.starts_with(['{', '['])
        && let Ok(mut v) = serde_json::from_str::<Value>(&s)
    {
        super::super::values::cap_depth(&mut v, 10);
        return (v, Some("application/json"));
    }
    if content_type.is_some_and(|ct| ct.starts_with("application/x-www-form-urlencoded")) {
        let mut m = Map::new();
        for (k, v) in parse_query(&s) {
            m.entry(k).or_insert(Value::String(v));
        }
        return (Value::Object(m), Some("application/x-www-form-urlencoded"));
    }
    (Value::String(s), None)
}
