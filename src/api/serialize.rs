//! Snag's rows in Sentry's JSON shapes (camelCase names, ids as strings,
//! ISO 8601 times). Pure functions: no I/O, tested without a server.

use crate::store::{
    ActivityRow, DeployRow, EventRow, IssueRow, IssueState, OrganizationRow, ProjectKeyRow,
    ProjectRow, ReleaseIssueStats, ReleaseRow, TeamRow, UserRow,
};
use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::{Map, Value, json};

pub fn iso(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Millis, true)
}

fn iso_opt(t: Option<DateTime<Utc>>) -> Value {
    t.map(|t| Value::String(iso(t))).unwrap_or(Value::Null)
}

pub fn short_id(project: &ProjectRow, issue: &IssueRow) -> String {
    format!("{}-{}", project.slug.to_uppercase(), issue.short_id)
}

pub fn organization(o: &OrganizationRow) -> Value {
    json!({
        "id": o.id.to_string(),
        "slug": o.slug,
        "name": o.name,
        "dateCreated": iso(o.created_at),
        "status": {"id": "active", "name": "active"},
        "isEarlyAdopter": false,
        "require2FA": false,
        "requireEmailVerification": false,
        "features": [],
    })
}

fn team(t: &TeamRow) -> Value {
    json!({"id": t.id.to_string(), "slug": t.slug, "name": t.name})
}

pub fn project(p: &ProjectRow, teams: &[TeamRow]) -> Value {
    let owners: Vec<Value> = teams
        .iter()
        .filter(|t| t.project_ids.contains(&p.id))
        .map(team)
        .collect();
    json!({
        "id": p.id.to_string(),
        "slug": p.slug,
        "name": p.name,
        "platform": p.platform,
        "dateCreated": iso(p.created_at),
        "isBookmarked": false,
        "isMember": true,
        "hasAccess": true,
        "features": [],
        "status": "active",
        "team": owners.first().cloned().unwrap_or(Value::Null),
        "teams": owners,
    })
}

pub fn project_detail(p: &ProjectRow, teams: &[TeamRow], org: &OrganizationRow) -> Value {
    let mut v = project(p, teams);
    v["organization"] = organization(org);
    v["groupingConfig"] = json!(p.grouping_config);
    v["fingerprintingRules"] = json!(p.fingerprint_rules);
    v["dataScrubber"] = json!(p.scrub_data);
    v["scrubIPAddresses"] = json!(p.scrub_ip);
    v
}

/// A DSN key; `base_url` is the public URL DSNs point at.
pub fn project_key(k: &ProjectKeyRow, base_url: &str) -> Value {
    let public = crate::config::dsn_for(base_url, &k.public_key, k.project_id);
    let secret = match &k.secret_key {
        Some(secret) => public.replacen(
            &format!("{}@", k.public_key),
            &format!("{}:{secret}@", k.public_key),
            1,
        ),
        None => public.clone(),
    };
    let endpoint = |name: &str| {
        format!(
            "{}/api/{}/{name}/?sentry_key={}",
            base_url.trim_end_matches('/'),
            k.project_id,
            k.public_key
        )
    };
    json!({
        "id": k.public_key,
        "name": k.label,
        "label": k.label,
        "public": k.public_key,
        "secret": k.secret_key,
        "projectId": k.project_id,
        "isActive": k.is_active,
        "rateLimit": k.rate_limit_per_minute.map(|count| json!({"window": 60, "count": count})),
        "dsn": {
            "public": public,
            "secret": secret,
            "csp": endpoint("security"),
            "security": endpoint("security"),
            "minidump": endpoint("minidump"),
            "envelope": endpoint("envelope"),
            "unreal": "",
            "cdn": "",
        },
        "browserSdkVersion": "latest",
        "dateCreated": iso(k.created_at),
    })
}

pub fn user(u: &UserRow) -> Value {
    json!({
        "type": "user",
        "id": u.id.to_string(),
        "name": if u.name.is_empty() { &u.email } else { &u.name },
        "email": u.email,
    })
}

/// Sentry's `statusDetails` for an issue's current state.
pub fn status_details(issue: &IssueRow, state: Option<&IssueState>) -> Value {
    let mut details = Map::new();
    let Some(state) = state else {
        return Value::Object(details);
    };
    match issue.status.as_str() {
        "resolved" => match state.resolution_type.as_deref() {
            Some("next_release") => {
                details.insert("inNextRelease".into(), json!(true));
            }
            Some("in_release") => {
                details.insert("inRelease".into(), json!(state.resolved_in_release));
            }
            _ => {}
        },
        "ignored" => {
            if let Some(until) = state.ignored_until {
                details.insert("ignoreUntil".into(), json!(iso(until)));
            }
            if let Some(target) = state.ignored_until_count {
                let remaining = (target - issue.times_seen).max(0);
                details.insert(
                    "ignoreCount".into(),
                    json!(state.ignore_count.unwrap_or(remaining)),
                );
            }
            if let Some(target) = state.ignored_until_user_count {
                let remaining = (target - issue.user_count).max(0);
                details.insert(
                    "ignoreUserCount".into(),
                    json!(state.ignore_user_count.unwrap_or(remaining)),
                );
            }
        }
        _ => {}
    }
    Value::Object(details)
}

/// `[[bucket start (unix seconds), count], …]`, oldest first.
pub type Stats = Vec<(i64, i64)>;

pub struct IssueContext<'a> {
    pub project: &'a ProjectRow,
    pub state: Option<&'a IssueState>,
    pub assignee: Option<&'a UserRow>,
    /// (period name, buckets), e.g. ("24h", …).
    pub stats: Vec<(&'static str, Stats)>,
    pub base_url: &'a str,
}

pub fn issue(i: &IssueRow, cx: &IssueContext<'_>) -> Value {
    let metadata = match &i.metadata {
        Value::Object(m) => {
            let mut m = m.clone();
            m.entry("title").or_insert_with(|| json!(i.title));
            Value::Object(m)
        }
        _ => json!({"title": i.title}),
    };
    let mut v = json!({
        "id": i.id.to_string(),
        "shortId": short_id(cx.project, i),
        "title": i.title,
        "culprit": i.culprit,
        "permalink": format!("{}/issues/{}", cx.base_url.trim_end_matches('/'), i.id),
        "logger": null,
        "level": i.level,
        "status": i.status,
        "statusDetails": status_details(i, cx.state),
        "substatus": i.substatus,
        "isPublic": false,
        "platform": i.platform,
        "project": {
            "id": cx.project.id.to_string(),
            "name": cx.project.name,
            "slug": cx.project.slug,
            "platform": cx.project.platform,
        },
        "type": i.event_type,
        "issueType": "error",
        "issueCategory": "error",
        "metadata": metadata,
        "numComments": cx.state.map_or(0, |s| s.num_comments),
        "assignedTo": cx.assignee.map(user),
        "isBookmarked": false,
        "isSubscribed": false,
        "hasSeen": false,
        "annotations": [],
        "count": i.times_seen.to_string(),
        "userCount": i.user_count,
        "firstSeen": iso(i.first_seen),
        "lastSeen": iso(i.last_seen),
    });
    if !cx.stats.is_empty() {
        let stats: Map<String, Value> = cx
            .stats
            .iter()
            .map(|(period, buckets)| {
                (
                    period.to_string(),
                    Value::Array(buckets.iter().map(|(t, n)| json!([t, n])).collect()),
                )
            })
            .collect();
        v["stats"] = Value::Object(stats);
    }
    v
}

/// The release summary Sentry nests in issues and events.
pub fn release_ref(version: Option<&str>) -> Value {
    match version {
        Some(v) => json!({"version": v, "shortVersion": short_version(v)}),
        None => Value::Null,
    }
}

pub fn activity(a: &ActivityRow) -> Value {
    json!({
        "id": a.id.to_string(),
        "type": a.kind,
        "data": a.data,
        "dateCreated": iso(a.created_at),
        "user": a.user_email.as_ref().map(|email| json!({"email": email, "name": email})),
    })
}

/// `app@1.2.3+build` → `1.2.3+build`; a bare commit hash → its first 12
/// characters, as Sentry shortens them.
pub fn short_version(version: &str) -> String {
    let without_package = match version.split_once('@') {
        Some((package, rest)) if !package.is_empty() && !rest.is_empty() => rest,
        _ => version,
    };
    if without_package.len() == 40 && without_package.bytes().all(|b| b.is_ascii_hexdigit()) {
        without_package[..12].to_string()
    } else {
        without_package.to_string()
    }
}

pub fn deploy(d: &DeployRow) -> Value {
    json!({
        "id": d.id.to_string(),
        "environment": d.environment,
        "name": d.name,
        "url": d.url,
        "dateStarted": iso_opt(d.date_started),
        "dateFinished": iso(d.date_finished),
    })
}

/// A release with its projects, issue counts and deploys (newest first).
pub fn release(
    r: &ReleaseRow,
    projects: &[ProjectRow],
    stats: &[ReleaseIssueStats],
    deploys: &[&DeployRow],
) -> Value {
    let mine =
        |s: &&ReleaseIssueStats| s.version == r.version && r.project_ids.contains(&s.project_id);
    let project_list: Vec<Value> = projects
        .iter()
        .filter(|p| r.project_ids.contains(&p.id))
        .map(|p| {
            let new_groups: i64 = stats
                .iter()
                .filter(mine)
                .filter(|s| s.project_id == p.id)
                .map(|s| s.new_groups)
                .sum();
            json!({
                "id": p.id,
                "slug": p.slug,
                "name": p.name,
                "newGroups": new_groups,
                "platform": p.platform,
                "platforms": p.platform.iter().collect::<Vec<_>>(),
                "hasHealthData": false,
            })
        })
        .collect();
    let new_groups: i64 = stats.iter().filter(mine).map(|s| s.new_groups).sum();
    let first_event = stats
        .iter()
        .filter(mine)
        .filter_map(|s| s.first_event)
        .min();
    let last_event = stats.iter().filter(mine).filter_map(|s| s.last_event).max();
    json!({
        "id": r.id,
        "version": r.version,
        "shortVersion": short_version(&r.version),
        "ref": r.ref_,
        "url": r.url,
        "status": r.status,
        "dateCreated": iso(r.date_created),
        "dateStarted": iso_opt(r.date_started),
        "dateReleased": iso_opt(r.date_released),
        "data": {},
        "newGroups": new_groups,
        "owner": null,
        "commitCount": 0,
        "lastCommit": null,
        "authors": [],
        "deployCount": deploys.len(),
        "lastDeploy": deploys.first().map(|d| deploy(d)),
        "firstEvent": iso_opt(first_event),
        "lastEvent": iso_opt(last_event),
        "projects": project_list,
    })
}

// ---- events ----

/// Header and request fields whose values are secrets; the dashboard hides
/// them too.
const REDACTED_HEADERS: [&str; 5] = [
    "cookie",
    "set-cookie",
    "authorization",
    "proxy-authorization",
    "x-api-key",
];
const REDACTED: &str = "[redacted]";

/// Epoch seconds or an ISO string, as ISO 8601.
fn time_value(v: Option<&Value>) -> Value {
    v.and_then(crate::event::parse_timestamp)
        .map(|t| Value::String(iso(t)))
        .unwrap_or(Value::Null)
}

fn field(v: &Value, key: &str) -> Value {
    v.get(key).cloned().unwrap_or(Value::Null)
}

/// `[[k, v], …]` or `{k: v}` as `[[k, v], …]`.
fn pair_list(v: Option<&Value>) -> Vec<(String, Value)> {
    match v {
        Some(Value::Array(items)) => items
            .iter()
            .filter_map(|p| {
                let p = p.as_array()?;
                Some((
                    p.first()?.as_str()?.to_string(),
                    p.get(1).cloned().unwrap_or(Value::Null),
                ))
            })
            .collect(),
        Some(Value::Object(m)) => m.iter().map(|(k, v)| (k.clone(), v.clone())).collect(),
        _ => Vec::new(),
    }
}

fn pairs_json(pairs: Vec<(String, Value)>) -> Value {
    Value::Array(pairs.into_iter().map(|(k, v)| json!([k, v])).collect())
}

fn frame(f: &Value) -> Value {
    let lineno = f.get("lineno").and_then(Value::as_i64);
    let mut context = Vec::new();
    if let Some(line) = lineno {
        let pre: Vec<Value> = f
            .get("pre_context")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        let first = line - pre.len() as i64;
        for (i, l) in pre.into_iter().enumerate() {
            context.push(json!([first + i as i64, l]));
        }
        if let Some(l) = f.get("context_line") {
            context.push(json!([line, l]));
        }
        for (i, l) in f
            .get("post_context")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default()
            .into_iter()
            .enumerate()
        {
            context.push(json!([line + 1 + i as i64, l]));
        }
    }
    json!({
        "filename": field(f, "filename"),
        "absPath": field(f, "abs_path"),
        "module": field(f, "module"),
        "package": field(f, "package"),
        "platform": field(f, "platform"),
        "instructionAddr": field(f, "instruction_addr"),
        "symbolAddr": field(f, "symbol_addr"),
        "function": field(f, "function"),
        "rawFunction": field(f, "raw_function"),
        "symbol": field(f, "symbol"),
        "context": context,
        "lineNo": lineno,
        "colNo": field(f, "colno"),
        "inApp": f.get("in_app").and_then(Value::as_bool).unwrap_or(false),
        "trust": field(f, "trust"),
        "errors": null,
        "lock": null,
        "vars": field(f, "vars"),
    })
}

fn stacktrace(s: Option<&Value>) -> Value {
    let Some(s) = s.filter(|s| s.is_object()) else {
        return Value::Null;
    };
    let frames: Vec<Value> = s
        .get("frames")
        .and_then(Value::as_array)
        .map(|frames| frames.iter().map(frame).collect())
        .unwrap_or_default();
    let has_system = frames.iter().any(|f| f["inApp"] == json!(false));
    json!({
        "frames": frames,
        "framesOmitted": field(s, "frames_omitted"),
        "registers": field(s, "registers"),
        "hasSystemFrames": has_system,
    })
}

fn values_of(v: Option<&Value>) -> Vec<Value> {
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

fn exception_entry(data: &Value) -> Option<Value> {
    let values: Vec<Value> = values_of(data.get("exception"))
        .iter()
        .map(|e| {
            json!({
                "type": field(e, "type"),
                "value": field(e, "value"),
                "module": field(e, "module"),
                "threadId": field(e, "thread_id"),
                "mechanism": field(e, "mechanism"),
                "stacktrace": stacktrace(e.get("stacktrace")),
                "rawStacktrace": null,
            })
        })
        .collect();
    if values.is_empty() {
        return None;
    }
    let has_system = values
        .iter()
        .any(|v| v["stacktrace"]["hasSystemFrames"] == json!(true));
    Some(json!({
        "type": "exception",
        "data": {"values": values, "excOmitted": null, "hasSystemFrames": has_system},
    }))
}

fn threads_entry(data: &Value) -> Option<Value> {
    let values: Vec<Value> = values_of(data.get("threads"))
        .iter()
        .map(|t| {
            json!({
                "id": field(t, "id"),
                "name": field(t, "name"),
                "crashed": t.get("crashed").and_then(Value::as_bool).unwrap_or(false),
                "current": t.get("current").and_then(Value::as_bool).unwrap_or(false),
                "stacktrace": stacktrace(t.get("stacktrace")),
                "rawStacktrace": null,
            })
        })
        .collect();
    (!values.is_empty()).then(|| json!({"type": "threads", "data": {"values": values}}))
}

fn message_entry(data: &Value) -> Option<Value> {
    let logentry = data.get("logentry").filter(|l| l.is_object());
    let formatted = logentry
        .and_then(|l| l.get("formatted").or_else(|| l.get("message")))
        .or_else(|| data.get("message"))
        .and_then(Value::as_str)?;
    Some(json!({
        "type": "message",
        "data": {
            "formatted": formatted,
            "message": logentry.and_then(|l| l.get("message")).cloned().unwrap_or(Value::Null),
            "params": logentry.and_then(|l| l.get("params")).cloned().unwrap_or(Value::Null),
        },
    }))
}

fn breadcrumbs_entry(data: &Value) -> Option<Value> {
    let values: Vec<Value> = values_of(data.get("breadcrumbs"))
        .iter()
        .filter(|b| b.is_object())
        .map(|b| {
            json!({
                "type": b.get("type").and_then(Value::as_str).unwrap_or("default"),
                "timestamp": time_value(b.get("timestamp")),
                "level": b.get("level").and_then(Value::as_str).unwrap_or("info"),
                "message": field(b, "message"),
                "category": field(b, "category"),
                "data": field(b, "data"),
                "event_id": field(b, "event_id"),
            })
        })
        .collect();
    (!values.is_empty()).then(|| json!({"type": "breadcrumbs", "data": {"values": values}}))
}

fn redact(pairs: Vec<(String, Value)>) -> Vec<(String, Value)> {
    pairs
        .into_iter()
        .map(|(k, v)| {
            if REDACTED_HEADERS.contains(&k.to_ascii_lowercase().as_str()) {
                (k, json!(REDACTED))
            } else {
                (k, v)
            }
        })
        .collect()
}

fn request_entry(data: &Value) -> Option<Value> {
    let r = data.get("request").filter(|r| r.is_object())?;
    let cookies: Vec<(String, Value)> = pair_list(r.get("cookies"))
        .into_iter()
        .map(|(k, _)| (k, json!(REDACTED)))
        .collect();
    Some(json!({
        "type": "request",
        "data": {
            "apiTarget": null,
            "method": field(r, "method"),
            "url": field(r, "url"),
            "query": pairs_json(pair_list(r.get("query_string"))),
            "fragment": field(r, "fragment"),
            "data": field(r, "data"),
            "headers": pairs_json(redact(pair_list(r.get("headers")))),
            "cookies": pairs_json(cookies),
            "env": field(r, "env"),
            "inferredContentType": field(r, "inferred_content_type"),
        },
    }))
}

fn event_user(data: &Value) -> Value {
    let Some(u) = data.get("user").filter(|u| u.is_object()) else {
        return Value::Null;
    };
    json!({
        "id": field(u, "id"),
        "email": field(u, "email"),
        "username": field(u, "username"),
        "ip_address": field(u, "ip_address"),
        "name": field(u, "name"),
        "geo": field(u, "geo"),
        "data": field(u, "data"),
    })
}

fn event_tags(data: &Value) -> Value {
    let summary = crate::event::summarize(data);
    Value::Array(
        summary
            .tags
            .into_iter()
            .map(|(key, value)| json!({"key": key, "value": value}))
            .collect(),
    )
}

fn event_message(row: &EventRow) -> String {
    row.message.clone().unwrap_or_default()
}

/// The short form Sentry lists events in.
pub fn event_summary(row: &EventRow) -> Value {
    let data = &row.data;
    json!({
        "id": row.event_id.simple().to_string(),
        "eventID": row.event_id.simple().to_string(),
        "groupID": row.issue_id.map(|id| id.to_string()),
        "projectID": row.project_id.to_string(),
        "title": row.title,
        "message": event_message(row),
        "platform": row.platform,
        "event.type": row.event_type,
        "dateCreated": iso(row.timestamp),
        "dateReceived": iso(row.received_at),
        "location": field(data, "transaction"),
        "culprit": field(data, "culprit"),
        "user": event_user(data),
        "tags": event_tags(data),
        "crashFile": null,
    })
}

/// The full event: Sentry's `entries`, `contexts`, `tags`, `user`, `sdk`.
/// `neighbours` are the (previous, next) event ids within its issue.
pub fn event(row: &EventRow, neighbours: (Option<uuid::Uuid>, Option<uuid::Uuid>)) -> Value {
    let data = &row.data;
    let entries: Vec<Value> = [
        exception_entry(data),
        threads_entry(data),
        message_entry(data),
        breadcrumbs_entry(data),
        request_entry(data),
    ]
    .into_iter()
    .flatten()
    .collect();
    let id = |u: Option<uuid::Uuid>| u.map(|u| u.simple().to_string());
    let mut v = event_summary(row);
    let extra = json!({
        "entries": entries,
        "contexts": data.get("contexts").filter(|c| c.is_object()).cloned().unwrap_or_else(|| json!({})),
        "context": data.get("extra").filter(|c| c.is_object()).cloned().unwrap_or_else(|| json!({})),
        "sdk": data.get("sdk").filter(|s| s.is_object()).cloned().unwrap_or(Value::Null),
        "packages": data.get("modules").filter(|m| m.is_object()).cloned().unwrap_or_else(|| json!({})),
        "fingerprints": row.grouping.as_ref().and_then(|g| g.get("hashes")).cloned().unwrap_or_else(|| json!([])),
        "errors": data.get("errors").filter(|e| e.is_array()).cloned().unwrap_or_else(|| json!([])),
        "release": release_ref(row.release.as_deref()),
        "environment": row.environment,
        "dist": field(data, "dist"),
        "level": row.level,
        "size": serde_json::to_vec(data).map_or(0, |b| b.len()),
        "previousEventID": id(neighbours.0),
        "nextEventID": id(neighbours.1),
        "userReport": null,
    });
    if let (Value::Object(base), Value::Object(more)) = (&mut v, extra) {
        base.extend(more);
    }
    v
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn event_row(data: Value) -> EventRow {
        EventRow {
            event_id: uuid::Uuid::nil(),
            project_id: 7,
            issue_id: Some(3),
            event_type: "error".into(),
            timestamp: Utc.timestamp_opt(1_700_000_000, 0).unwrap(),
            received_at: Utc.timestamp_opt(1_700_000_001, 0).unwrap(),
            level: "error".into(),
            platform: "python".into(),
            release: Some("app@1.0".into()),
            environment: Some("prod".into()),
            message: Some("boom".into()),
            title: "ValueError: boom".into(),
            data,
            grouping: Some(json!({"hashes": ["abc"]})),
        }
    }

    #[test]
    fn event_entries_follow_sentry_names() {
        let data = json!({
            "exception": {"values": [{"type": "ValueError", "value": "boom", "stacktrace": {"frames": [
                {"filename": "a.py", "function": "f", "lineno": 10, "pre_context": ["x", "y"],
                 "context_line": "raise", "post_context": ["z"], "in_app": true, "abs_path": "/a.py"},
                {"filename": "lib.py", "function": "g", "in_app": false}
            ]}}]},
            "breadcrumbs": {"values": [{"timestamp": 1700000000.5, "message": "clicked", "category": "ui"}]},
            "request": {"url": "http://x/", "method": "GET", "headers": [["Cookie", "s=1"], ["Accept", "*/*"]],
                        "cookies": [["s", "1"]], "query_string": [["q", "1"]]},
            "logentry": {"formatted": "boom 1", "message": "boom %s", "params": [1]},
            "tags": [["server", "web-1"]],
            "user": {"id": "42"},
            "sdk": {"name": "sentry.python", "version": "2.0"},
            "contexts": {"os": {"name": "Linux"}},
        });
        let v = event(&event_row(data), (None, Some(uuid::Uuid::max())));
        assert_eq!(v["groupID"], "3");
        assert_eq!(v["eventID"], "00000000000000000000000000000000");
        let types: Vec<&str> = v["entries"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["type"].as_str().unwrap())
            .collect();
        assert_eq!(types, ["exception", "message", "breadcrumbs", "request"]);
        let frame = &v["entries"][0]["data"]["values"][0]["stacktrace"]["frames"][0];
        assert_eq!(frame["lineNo"], 10);
        assert_eq!(frame["absPath"], "/a.py");
        assert_eq!(
            frame["context"],
            json!([[8, "x"], [9, "y"], [10, "raise"], [11, "z"]])
        );
        assert_eq!(v["entries"][0]["data"]["hasSystemFrames"], true);
        assert_eq!(v["entries"][1]["data"]["formatted"], "boom 1");
        assert_eq!(
            v["entries"][2]["data"]["values"][0]["timestamp"],
            "2023-11-14T22:13:20.500Z"
        );
        let request = &v["entries"][3]["data"];
        assert_eq!(
            request["headers"],
            json!([["Cookie", "[redacted]"], ["Accept", "*/*"]])
        );
        assert_eq!(request["cookies"], json!([["s", "[redacted]"]]));
        assert_eq!(request["query"], json!([["q", "1"]]));
        assert!(
            v["tags"]
                .as_array()
                .unwrap()
                .contains(&json!({"key": "server", "value": "web-1"}))
        );
        assert_eq!(v["user"]["id"], "42");
        assert_eq!(v["sdk"]["name"], "sentry.python");
        assert_eq!(v["contexts"]["os"]["name"], "Linux");
        assert_eq!(v["fingerprints"], json!(["abc"]));
        assert_eq!(v["nextEventID"], "ffffffffffffffffffffffffffffffff");
        assert_eq!(v["release"]["version"], "app@1.0");
        assert_eq!(v["dateCreated"], "2023-11-14T22:13:20.000Z");
    }

    #[test]
    fn odd_event_data_never_panics() {
        for data in [
            json!({}),
            json!({"exception": "nope", "breadcrumbs": [1, "x"], "request": [], "user": 5}),
            json!({"exception": {"values": [{"stacktrace": {"frames": [{"lineno": "x", "pre_context": 3}]}}]}}),
        ] {
            let v = event(&event_row(data), (None, None));
            assert!(v["entries"].is_array());
        }
    }

    #[test]
    fn short_versions() {
        assert_eq!(short_version("app@1.2.3+build"), "1.2.3+build");
        assert_eq!(short_version("1.0"), "1.0");
        assert_eq!(
            short_version("0123456789abcdef0123456789abcdef01234567"),
            "0123456789ab"
        );
        assert_eq!(short_version("@x"), "@x");
    }
}
