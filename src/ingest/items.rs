//! Envelope items → rows for the writer. Every known item type is stored,
//! aggregated or counted; nothing here makes an SDK retry forever.

use super::IngestError;
use super::envelope::{Envelope, Item, ItemType};
use super::limits::Limits;
use crate::event::{self, ItemKind, NormalizeContext};
use crate::ops::metrics::Metrics;
use crate::pipeline::process::{ProjectContext, build_event, strip_nul};
use crate::store::write::{
    NewAttachment, NewCheckIn, NewItem, NewOutcome, NewSessions, NewUserReport, SessionCounts,
};
use chrono::{DateTime, Utc};
use serde_json::Value;
use std::net::IpAddr;
use uuid::Uuid;

/// Facts about the HTTP request every item shares.
#[derive(Debug, Clone)]
pub struct RequestInfo {
    pub received: DateTime<Utc>,
    pub client_ip: Option<IpAddr>,
    pub client_sdk: Option<String>,
}

impl RequestInfo {
    pub fn normalize_context(
        &self,
        kind: ItemKind,
        event_id: Option<Uuid>,
        project: &ProjectContext,
    ) -> NormalizeContext {
        let mut ctx = NormalizeContext::new(self.received);
        ctx.client_ip = self.client_ip;
        ctx.client_sdk = self.client_sdk.clone();
        ctx.event_id = event_id;
        ctx.item_type = kind;
        ctx.default_platform = project.info.platform.clone();
        ctx.scrub = scrub_config(&project.info);
        ctx
    }
}

/// The project's data scrubber settings as the normaliser takes them.
pub fn scrub_config(info: &crate::store::KeyInfo) -> Option<event::ScrubConfig> {
    info.scrub_data.then(|| event::ScrubConfig {
        enabled: true,
        scrub_defaults: info.scrub_defaults,
        extra_fields: info.scrub_sensitive_fields.clone(),
        safe_fields: info.scrub_safe_fields.clone(),
        scrub_ip: info.scrub_ip,
    })
}

pub struct Converted {
    pub items: Vec<NewItem>,
    /// Counts per data category for metrics after the commit.
    pub categories: Vec<(&'static str, u64)>,
}

/// Parses a JSON item payload; raven and old SDKs emit bare NaN/Infinity.
/// U+0000 is replaced: PostgreSQL TEXT and JSONB refuse it, and a row that
/// can never be written would fail the SDK's every retry.
pub fn parse_json(payload: &[u8], client: Option<&str>) -> Result<Value, IngestError> {
    let mut value = parse_json_raw(payload, client)?;
    // JSON can only spell U+0000 as an escape, so most payloads skip the walk.
    if memchr::memmem::find(payload, b"\\u0000").is_some() {
        strip_nul(&mut value);
    }
    Ok(value)
}

fn parse_json_raw(payload: &[u8], client: Option<&str>) -> Result<Value, IngestError> {
    match serde_json::from_slice(payload) {
        Ok(v) => Ok(v),
        Err(e) => {
            let repaired = super::decode::repair_python_json(payload);
            if super::decode::needs_python_json_repair(client)
                || !matches!(repaired, std::borrow::Cow::Borrowed(_))
            {
                serde_json::from_slice(&repaired).map_err(IngestError::invalid_json)
            } else {
                Err(IngestError::invalid_json(e))
            }
        }
    }
}

pub fn event_item(
    raw: Value,
    kind: ItemKind,
    event_id: Option<Uuid>,
    project: &ProjectContext,
    req: &RequestInfo,
) -> Result<NewItem, IngestError> {
    let ctx = req.normalize_context(kind, event_id, project);
    let event =
        build_event(project, raw, &ctx).map_err(|e| IngestError::invalid_event(e.to_string()))?;
    Ok(NewItem::Event(Box::new(event)))
}

pub fn convert_envelope(
    envelope: &Envelope,
    project: &ProjectContext,
    req: &RequestInfo,
    limits: &Limits,
    metrics: &Metrics,
) -> Result<Converted, IngestError> {
    let project_id = project.info.project_id;
    let event_id = envelope.headers.event_id;
    let client = req.client_sdk.as_deref();
    let mut out = Converted {
        items: Vec::new(),
        categories: Vec::new(),
    };
    for item in &envelope.items {
        let category = item.headers.ty.rate_limit_category();
        match &item.headers.ty {
            ItemType::Event | ItemType::Transaction => {
                let kind = if item.headers.ty == ItemType::Transaction {
                    ItemKind::Transaction
                } else {
                    ItemKind::Event
                };
                let raw = parse_json(&item.payload, client)?;
                out.items
                    .push(event_item(raw, kind, event_id, project, req)?);
            }
            ItemType::Security | ItemType::RawSecurity => {
                let report = parse_json(&item.payload, client)?;
                let raw = event::security_report_to_event(&report)
                    .map_err(|e| IngestError::invalid_event(e.to_string()))?;
                out.items
                    .push(event_item(raw, ItemKind::Security, event_id, project, req)?);
            }
            ItemType::Feedback => {
                let raw = parse_json(&item.payload, client)?;
                if let Some(mut report) = event::feedback_from_event(&raw) {
                    if report.event_id.is_nil() {
                        report.event_id = event_id.unwrap_or_else(Uuid::new_v4);
                    }
                    out.items.push(user_report(project_id, report));
                }
            }
            ItemType::UserReport => {
                let raw = parse_json(&item.payload, client)?;
                let report = event::parse_user_report(&raw)
                    .map_err(|e| IngestError::invalid_event(e.to_string()))?;
                out.items.push(user_report(project_id, report));
            }
            ItemType::Attachment => {
                let Some(event_id) = event_id else {
                    metrics.ingest("rejected", "attachment_without_event", "attachment", 1);
                    continue;
                };
                if item.payload.len() > limits.max_attachment_size {
                    return Err(IngestError::too_large(
                        "attachment",
                        limits.max_attachment_size,
                    ));
                }
                out.items.push(NewItem::Attachment(NewAttachment {
                    project_id,
                    event_id,
                    name: item
                        .headers
                        .filename
                        .as_deref()
                        .map_or_else(|| "attachment".into(), no_nul),
                    content_type: item.headers.content_type.as_deref().map(no_nul),
                    attachment_type: item
                        .headers
                        .attachment_type
                        .as_deref()
                        .map_or_else(|| "event.attachment".into(), no_nul),
                    data: item.payload.to_vec(),
                }));
            }
            ItemType::Session => {
                if let Some(s) = session_update(project_id, &item.payload, req.received) {
                    out.items.push(NewItem::Sessions(s));
                }
            }
            ItemType::Sessions => out.items.extend(
                session_aggregates(project_id, item)
                    .into_iter()
                    .map(NewItem::Sessions),
            ),
            ItemType::ClientReport => out.items.extend(
                client_report(project_id, &item.payload, req.received)
                    .into_iter()
                    .map(NewItem::Outcome),
            ),
            ItemType::CheckIn => {
                if let Some(c) = check_in(project_id, &item.payload, req.received) {
                    out.items.push(NewItem::CheckIn(c));
                }
            }
            // Accepted and counted so the SDK stops sending, but not stored:
            // Snag has no profiling, replay, metrics or log views.
            _ => {
                metrics.ingest("accepted", "not_stored", category, 1);
                continue;
            }
        }
        out.categories.push((category, 1));
    }
    Ok(out)
}

/// A JSON payload Snag aggregates rather than keeps; malformed ones are
/// dropped (never retried by the SDK), NULs replaced as in `parse_json`.
fn payload_value(payload: &[u8]) -> Option<Value> {
    let mut v: Value = serde_json::from_slice(payload).ok()?;
    strip_nul(&mut v);
    Some(v)
}

fn no_nul(s: &str) -> String {
    s.replace('\0', "\u{FFFD}")
}

fn user_report(project_id: i64, r: event::UserReport) -> NewItem {
    NewItem::UserReport(NewUserReport {
        project_id,
        event_id: r.event_id,
        name: r.name,
        email: r.email,
        comments: r.comments,
    })
}

fn str_field(v: &Value, key: &str) -> Option<String> {
    v.get(key).and_then(Value::as_str).map(str::to_string)
}

fn count_field(v: &Value, key: &str) -> i64 {
    v.get(key).and_then(Value::as_i64).unwrap_or(0).max(0)
}

fn release_env(v: &Value) -> Option<(String, String)> {
    let attrs = v.get("attrs")?;
    let release = str_field(attrs, "release").filter(|r| !r.is_empty())?;
    Some((release, str_field(attrs, "environment").unwrap_or_default()))
}

/// One session update, counted as Relay does: `init` opens it, a terminal
/// bad status or errors marks it.
fn session_update(project_id: i64, payload: &[u8], received: DateTime<Utc>) -> Option<NewSessions> {
    let v = payload_value(payload)?;
    let (release, environment) = release_env(&v)?;
    let status = v.get("status").and_then(Value::as_str).unwrap_or("ok");
    let init = v.get("init").and_then(Value::as_bool).unwrap_or(false);
    let errored = count_field(&v, "errors") > 0 || !matches!(status, "ok" | "exited");
    let counts = SessionCounts {
        total: i64::from(init),
        errored: i64::from(errored),
        crashed: i64::from(status == "crashed"),
        abnormal: i64::from(status == "abnormal"),
    };
    let started = v
        .get("started")
        .and_then(event::parse_timestamp)
        .unwrap_or(received);
    let sid = v
        .get("sid")
        .and_then(Value::as_str)
        .and_then(|s| Uuid::parse_str(s).ok());
    Some(NewSessions {
        project_id,
        sid,
        release,
        environment,
        started,
        counts,
    })
}

fn session_aggregates(project_id: i64, item: &Item) -> Vec<NewSessions> {
    let Some(v) = payload_value(&item.payload) else {
        return Vec::new();
    };
    let Some((release, environment)) = release_env(&v) else {
        return Vec::new();
    };
    let Some(aggregates) = v.get("aggregates").and_then(Value::as_array) else {
        return Vec::new();
    };
    aggregates
        .iter()
        .filter_map(|a| {
            let started = a.get("started").and_then(event::parse_timestamp)?;
            let exited = count_field(a, "exited");
            let errored = count_field(a, "errored");
            let abnormal = count_field(a, "abnormal");
            let crashed = count_field(a, "crashed");
            let unhandled = count_field(a, "unhandled");
            Some(NewSessions {
                project_id,
                sid: None,
                release: release.clone(),
                environment: environment.clone(),
                started,
                counts: SessionCounts {
                    total: exited + errored + abnormal + crashed + unhandled,
                    errored: errored + abnormal + crashed + unhandled,
                    crashed,
                    abnormal,
                },
            })
        })
        .collect()
}

fn client_report(project_id: i64, payload: &[u8], received: DateTime<Utc>) -> Vec<NewOutcome> {
    let Some(v) = payload_value(payload) else {
        return Vec::new();
    };
    let timestamp = v
        .get("timestamp")
        .and_then(event::parse_timestamp)
        .unwrap_or(received);
    let mut out = Vec::new();
    for (field, outcome) in [
        ("discarded_events", "client_discard"),
        ("rate_limited_events", "rate_limited"),
        ("filtered_events", "filtered"),
        ("filtered_sampling_events", "filtered_sampling"),
    ] {
        for entry in v.get(field).and_then(Value::as_array).into_iter().flatten() {
            let quantity = count_field(entry, "quantity");
            if quantity == 0 {
                continue;
            }
            out.push(NewOutcome {
                project_id,
                timestamp,
                outcome: outcome.into(),
                reason: str_field(entry, "reason").unwrap_or_default(),
                category: str_field(entry, "category").unwrap_or_else(|| "default".into()),
                quantity,
            });
        }
    }
    out
}

fn check_in(project_id: i64, payload: &[u8], received: DateTime<Utc>) -> Option<NewCheckIn> {
    let v = payload_value(payload)?;
    let monitor_slug = str_field(&v, "monitor_slug").filter(|s| !s.is_empty())?;
    let check_in_id = str_field(&v, "check_in_id")
        .and_then(|s| Uuid::parse_str(&s).ok())
        .unwrap_or_else(Uuid::new_v4);
    Some(NewCheckIn {
        project_id,
        check_in_id,
        monitor_slug,
        status: str_field(&v, "status").unwrap_or_else(|| "unknown".into()),
        duration: v.get("duration").and_then(Value::as_f64),
        environment: str_field(&v, "environment"),
        monitor_config: v.get("monitor_config").cloned(),
        received,
    })
}
