//! HTTP handlers. Each follows the same order: cap the body, authenticate,
//! decode, parse, authorise against the project, rate-limit, convert, and
//! answer only after the pipeline has committed.

use super::IngestError;
use super::auth::{self, AuthInfo};
use super::budget::Reservation;
use super::decode;
use super::envelope::{self, Envelope};
use super::items::{self, RequestInfo};
use crate::app::AppState;
use crate::event::ItemKind;
use crate::pipeline::PipelineError;
use crate::pipeline::process::ProjectContext;
use crate::store::write::{NewAttachment, NewItem, WriteOutcome};
use axum::body::{Body, Bytes};
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use bytes::BytesMut;
use http_body_util::BodyExt as _;
use serde_json::{Value, json};
use std::sync::Arc;
use uuid::Uuid;

/// Transparent 1×1 GIF, the GET store endpoint's answer (image beacons).
const PIXEL: &[u8] = b"GIF89a\x01\x00\x01\x00\x80\x00\x00\x00\x00\x00\x00\x00\x00!\xf9\x04\x01\x00\x00\x00\x00,\x00\x00\x00\x00\x01\x00\x01\x00\x00\x02\x02D\x01\x00;";

fn project_id(raw: &str) -> Result<i64, IngestError> {
    raw.parse::<i64>()
        .ok()
        .filter(|id| *id > 0)
        .ok_or_else(IngestError::bad_project_path)
}

/// Reads the whole body, at most `limit` bytes, within the body read
/// timeout. Its bytes count against the process-wide body budget until the
/// returned reservation is dropped, so handlers keep it for their lifetime.
async fn read_body(
    app: &AppState,
    headers: &HeaderMap,
    body: Body,
    limit: usize,
) -> Result<(Bytes, Reservation), IngestError> {
    let held = app.body_budget.reservation();
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<usize>().ok());
    if let Some(n) = declared {
        // Refused before a byte is read: neither the budget nor the
        // socket is tied up by a body that cannot be accepted.
        if n > limit {
            return Err(IngestError::too_large("request body", limit));
        }
        if !held.grow(n) {
            return Err(IngestError::BodiesOverBudget);
        }
    }
    let mut buf = BytesMut::with_capacity(declared.unwrap_or(0));
    let mut body = body;
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|e| {
            if crate::app::conn::is_body_timeout(&e) {
                IngestError::BodyTimeout(e.to_string())
            } else {
                // A client that hung up or sent a broken chunked stream.
                IngestError::body_read(e.to_string())
            }
        })?;
        let Ok(data) = frame.into_data() else {
            continue;
        };
        let total = buf.len() + data.len();
        if total > limit {
            return Err(IngestError::too_large("request body", limit));
        }
        if !held.ensure(total) {
            return Err(IngestError::BodiesOverBudget);
        }
        buf.extend_from_slice(&data);
    }
    Ok((buf.freeze(), held))
}

fn request_info(headers: &HeaderMap, auth: &AuthInfo) -> RequestInfo {
    let client_ip = headers
        .get("x-forwarded-for")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(',').next())
        .or_else(|| headers.get("x-real-ip").and_then(|v| v.to_str().ok()))
        .and_then(|ip| ip.trim().parse().ok());
    let client_sdk = auth.client.clone().or_else(|| {
        headers
            .get(header::USER_AGENT)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
    });
    RequestInfo {
        received: chrono::Utc::now(),
        client_ip,
        client_sdk,
    }
}

/// Resolves the key to its project and checks it may write to `project_id`.
async fn authorize(
    app: &AppState,
    project_id: i64,
    auth: &AuthInfo,
) -> Result<Arc<ProjectContext>, IngestError> {
    let project = app
        .keys
        .get(&auth.public_key)
        .await
        .map_err(|e| {
            tracing::error!(error = %e, "key lookup failed");
            IngestError::unavailable()
        })?
        .ok_or_else(IngestError::unknown_key)?;
    if !project.info.usable(chrono::Utc::now()) {
        return Err(IngestError::disabled_key());
    }
    if project.info.project_id != project_id {
        return Err(IngestError::wrong_project());
    }
    Ok(project)
}

fn check_rate_limit(
    app: &AppState,
    project: &ProjectContext,
    auth: &AuthInfo,
    events: u32,
) -> Result<(), IngestError> {
    let (Some(limit), true) = (project.info.rate_limit_per_minute, events > 0) else {
        return Ok(());
    };
    let limit = u32::try_from(limit.max(0)).unwrap_or(0);
    app.rate_limiter
        .check(&auth.public_key, limit, events, std::time::Instant::now())
        .map_err(|retry_after| {
            app.metrics
                .ingest("rejected", "rate_limited", "error", u64::from(events));
            app.pipeline.count_rate_limited(
                project.info.project_id,
                "key_quota",
                "error",
                i64::from(events),
            );
            IngestError::rate_limited(retry_after)
        })
}

/// Hands items to the writer and waits for the commit.
async fn commit(
    app: &AppState,
    items: Vec<NewItem>,
    categories: &[(&'static str, u64)],
) -> Result<Vec<WriteOutcome>, IngestError> {
    if !app.db.is_up() {
        for (category, n) in categories {
            app.metrics
                .ingest("rejected", "database_down", category, *n);
        }
        return Err(IngestError::unavailable());
    }
    match app.pipeline.submit(items).await {
        Ok(outcomes) => {
            for (category, n) in categories {
                app.metrics.ingest("accepted", "", category, *n);
            }
            Ok(outcomes)
        }
        Err(e) => {
            for (category, n) in categories {
                app.metrics.ingest("rejected", "pipeline", category, *n);
            }
            Err(match e {
                PipelineError::Overloaded | PipelineError::Closed => IngestError::unavailable(),
                PipelineError::Rejected(msg) => {
                    IngestError::invalid_event(format!("the event could not be stored: {msg}"))
                }
                PipelineError::Write(msg) => {
                    tracing::error!(error = %msg, "write failed");
                    IngestError::unavailable()
                }
            })
        }
    }
}

fn id_response(event_id: Option<Uuid>) -> Response {
    let body = match event_id {
        Some(id) => json!({ "id": id.simple().to_string() }),
        None => json!({}),
    };
    (StatusCode::OK, axum::Json(body)).into_response()
}

pub(super) async fn envelope(
    State(app): State<AppState>,
    Path(raw_project): Path<String>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, IngestError> {
    let project_id = project_id(&raw_project)?;
    let (body, held) = read_body(&app, &headers, body, app.limits.envelope_body_limit()).await?;
    handle_envelope_body(&app, project_id, query.as_deref(), &headers, body, &held).await
}

async fn handle_envelope_body(
    app: &AppState,
    project_id: i64,
    query: Option<&str>,
    headers: &HeaderMap,
    body: Bytes,
    held: &Reservation,
) -> Result<Response, IngestError> {
    let auth = auth::extract_auth(headers, query)?;
    let encodings = decode::content_encoding_from_headers(headers)?;
    let decoded = decode::decode_body_within(
        body,
        &encodings,
        app.limits.envelope_decode_limit(),
        Some(held),
    )?;
    let mut envelope: Envelope = envelope::parse_envelope(decoded)?;
    let auth = auth::reconcile(auth, envelope.headers.dsn.as_deref())?;
    auth::check_dsn_project(envelope.headers.dsn.as_deref(), &project_id.to_string())?;
    let project = authorize(app, project_id, &auth).await?;
    envelope::validate_item_counts(&envelope, &app.limits)?;
    let needs_event_id = envelope
        .items
        .iter()
        .any(|i| i.headers.ty.requires_event_id());
    if needs_event_id && envelope.headers.event_id.is_none() {
        envelope.headers.event_id = Some(Uuid::new_v4());
    }
    let events = envelope
        .items
        .iter()
        .filter(|i| i.headers.ty.is_event_class())
        .count() as u32;
    check_rate_limit(app, &project, &auth, events)?;
    let req = request_info(headers, &auth);
    let converted = items::convert_envelope(&envelope, &project, &req, &app.limits, &app.metrics)?;
    commit(app, converted.items, &converted.categories).await?;
    Ok(id_response(if needs_event_id {
        envelope.headers.event_id
    } else {
        None
    }))
}

pub(super) async fn store(
    State(app): State<AppState>,
    method: Method,
    Path(raw_project): Path<String>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, IngestError> {
    let project_id = project_id(&raw_project)?;
    if method == Method::GET {
        return store_get(&app, project_id, query.as_deref(), &headers).await;
    }
    if method != Method::POST {
        return Err(IngestError::method_not_allowed());
    }
    let is_envelope = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|ct| ct.starts_with("application/x-sentry-envelope"));
    let body_limit = if is_envelope {
        app.limits.envelope_body_limit()
    } else {
        app.limits.store_body_limit()
    };
    let (body, held) = read_body(&app, &headers, body, body_limit).await?;
    if is_envelope {
        return handle_envelope_body(&app, project_id, query.as_deref(), &headers, body, &held)
            .await;
    }
    let auth =
        auth::extract_auth(&headers, query.as_deref())?.ok_or_else(IngestError::missing_auth)?;
    let encodings = decode::content_encoding_from_headers(&headers)?;
    let limit = app.limits.store_decode_limit();
    let decoded = if encodings.is_empty()
        || encodings
            .iter()
            .all(|e| matches!(e, decode::ContentEncoding::Identity))
    {
        decode::decode_store_body_within(body, limit, Some(&held))?
    } else {
        decode::decode_body_within(body, &encodings, limit, Some(&held))?
    };
    let project = authorize(&app, project_id, &auth).await?;
    check_rate_limit(&app, &project, &auth, 1)?;
    let req = request_info(&headers, &auth);
    store_event(&app, &project, &req, &decoded).await
}

async fn store_event(
    app: &AppState,
    project: &ProjectContext,
    req: &RequestInfo,
    json_body: &[u8],
) -> Result<Response, IngestError> {
    if json_body.iter().all(u8::is_ascii_whitespace) {
        return Err(IngestError::empty_body());
    }
    let raw = items::parse_json(json_body, req.client_sdk.as_deref())?;
    let kind = if raw.get("type").and_then(Value::as_str) == Some("transaction") {
        ItemKind::Transaction
    } else {
        ItemKind::Event
    };
    let item = items::event_item(raw, kind, None, project, req)?;
    let (event_id, category) = match &item {
        NewItem::Event(e) => (
            e.event_id,
            if kind == ItemKind::Transaction {
                "transaction"
            } else {
                "error"
            },
        ),
        _ => unreachable!("event_item returns events"),
    };
    commit(app, vec![item], &[(category, 1)]).await?;
    Ok(id_response(Some(event_id)))
}

async fn store_get(
    app: &AppState,
    project_id: i64,
    query: Option<&str>,
    headers: &HeaderMap,
) -> Result<Response, IngestError> {
    let auth = auth::extract_auth(headers, query)?.ok_or_else(IngestError::missing_auth)?;
    let data = form_urlencoded::parse(query.unwrap_or("").as_bytes())
        .find(|(k, _)| k == "sentry_data")
        .map(|(_, v)| v.into_owned())
        .ok_or_else(IngestError::empty_body)?;
    let project = authorize(app, project_id, &auth).await?;
    check_rate_limit(app, &project, &auth, 1)?;
    let req = request_info(headers, &auth);
    store_event(app, &project, &req, data.as_bytes()).await?;
    Ok(([(header::CONTENT_TYPE, "image/gif")], PIXEL).into_response())
}

const SECURITY_TYPES: [&str; 6] = [
    "application/json",
    "application/csp-report",
    "application/expect-ct-report",
    "application/expect-ct-report+json",
    "application/expect-staple-report",
    "application/reports+json",
];

pub(super) async fn security(
    State(app): State<AppState>,
    Path(raw_project): Path<String>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, IngestError> {
    let project_id = project_id(&raw_project)?;
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(|v| {
            v.split(';')
                .next()
                .unwrap_or("")
                .trim()
                .to_ascii_lowercase()
        })
        .unwrap_or_default();
    if !SECURITY_TYPES.contains(&content_type.as_str()) {
        return Err(IngestError::unsupported_media_type(content_type));
    }
    let (body, held) = read_body(&app, &headers, body, app.limits.store_body_limit()).await?;
    let auth =
        auth::extract_auth(&headers, query.as_deref())?.ok_or_else(IngestError::missing_auth)?;
    let encodings = decode::content_encoding_from_headers(&headers)?;
    let decoded = decode::decode_body_within(
        body,
        &encodings,
        app.limits.store_decode_limit(),
        Some(&held),
    )?;
    let project = authorize(&app, project_id, &auth).await?;
    check_rate_limit(&app, &project, &auth, 1)?;
    let req = request_info(&headers, &auth);
    let report = items::parse_json(&decoded, None)?;
    // The Reporting API batches reports in an array; each becomes an event.
    let raws = crate::event::security_reports_to_events(&report)
        .map_err(|e| IngestError::invalid_event(e.to_string()))?;
    // Browsers cannot add headers to report POSTs, so the report URL carries
    // release and environment as Relay reads them.
    let from_query = |name: &str| {
        form_urlencoded::parse(query.as_deref().unwrap_or("").as_bytes())
            .find(|(k, v)| k == name && !v.is_empty())
            .map(|(_, v)| v.into_owned())
    };
    let release = from_query("sentry_release");
    let environment = from_query("sentry_environment");
    let mut new_items = Vec::with_capacity(raws.len());
    for mut raw in raws {
        if let Some(obj) = raw.as_object_mut() {
            if let Some(r) = &release {
                obj.entry("release").or_insert_with(|| json!(r));
            }
            if let Some(e) = &environment {
                obj.entry("environment").or_insert_with(|| json!(e));
            }
        }
        new_items.push(items::event_item(
            raw,
            ItemKind::Security,
            None,
            &project,
            &req,
        )?);
    }
    let n = new_items.len() as u64;
    commit(&app, new_items, &[("security", n)]).await?;
    Ok(StatusCode::OK.into_response())
}

pub(super) async fn minidump(
    State(app): State<AppState>,
    Path(raw_project): Path<String>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, IngestError> {
    let project_id = project_id(&raw_project)?;
    let (body, held) = read_body(&app, &headers, body, app.limits.max_attachment_size).await?;
    let auth =
        auth::extract_auth(&headers, query.as_deref())?.ok_or_else(IngestError::missing_auth)?;
    let project = authorize(&app, project_id, &auth).await?;
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    // Crashpad gzips its uploads and says so in Content-Encoding.
    let encodings = decode::content_encoding_from_headers(&headers)?;
    let body = decode::decode_body_within(
        body,
        &encodings,
        app.limits.max_attachment_size,
        Some(&held),
    )?;
    let (dump, mut event) = if content_type.starts_with("multipart/form-data") {
        parse_minidump_form(&content_type, body).await?
    } else {
        (body, json!({}))
    };
    let dump = decode_minidump_container(dump, app.limits.max_attachment_size, &held)?;
    if !(dump.starts_with(b"MDMP") || dump.starts_with(b"PMDM")) {
        return Err(IngestError::invalid_minidump());
    }
    if let Some(obj) = event.as_object_mut() {
        obj.entry("platform").or_insert(json!("native"));
        obj.entry("level").or_insert(json!("fatal"));
        obj.entry("exception").or_insert(json!({"values": [{
            "type": "Minidump",
            "value": "Crash report (minidump)",
            "mechanism": {"type": "minidump", "handled": false, "synthetic": true}
        }]}));
    }
    let req = request_info(&headers, &auth);
    let item = items::event_item(event, ItemKind::Event, None, &project, &req)?;
    let NewItem::Event(e) = &item else {
        unreachable!("event_item returns events")
    };
    let event_id = e.event_id;
    let attachment = NewItem::Attachment(NewAttachment {
        project_id,
        event_id,
        name: "minidump.dmp".into(),
        content_type: Some("application/x-dmp".into()),
        attachment_type: "event.minidump".into(),
        data: dump.to_vec(),
    });
    commit(
        &app,
        vec![item, attachment],
        &[("error", 1), ("attachment", 1)],
    )
    .await?;
    // Crashpad and Breakpad read the id back as a hyphenated UUID.
    Ok((
        [(header::CONTENT_TYPE, "text/plain")],
        event_id.hyphenated().to_string(),
    )
        .into_response())
}

/// Some uploaders compress the minidump itself; Relay recognises the
/// container by its magic bytes. (xz and bzip2 containers are not decoded:
/// no decoder is linked, so they fail the `MDMP` check with a 400.)
fn decode_minidump_container(
    dump: Bytes,
    limit: usize,
    held: &Reservation,
) -> Result<Bytes, IngestError> {
    let encoding = if dump.starts_with(&[0x1f, 0x8b]) {
        decode::ContentEncoding::Gzip
    } else if dump.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
        decode::ContentEncoding::Zstd
    } else {
        return Ok(dump);
    };
    decode::decode_body_within(dump, &[encoding], limit, Some(held))
}

/// Extracts the minidump file and any `sentry` / `sentry[...]` event fields.
async fn parse_minidump_form(
    content_type: &str,
    body: Bytes,
) -> Result<(Bytes, Value), IngestError> {
    let boundary = multer::parse_boundary(content_type)
        .map_err(|e| IngestError::invalid_multipart(e.to_string()))?;
    let stream = futures_util::stream::once(async move { Ok::<_, std::convert::Infallible>(body) });
    let mut form = multer::Multipart::new(stream, boundary);
    let mut dump = None;
    let mut event = json!({});
    while let Some(field) = form
        .next_field()
        .await
        .map_err(|e| IngestError::invalid_multipart(e.to_string()))?
    {
        let name = field.name().unwrap_or("").to_string();
        let data = field
            .bytes()
            .await
            .map_err(|e| IngestError::invalid_multipart(e.to_string()))?;
        if name == "upload_file_minidump" {
            dump = Some(data);
        } else if name == "sentry" {
            if let Ok(v @ Value::Object(_)) = serde_json::from_slice::<Value>(&data) {
                event = v;
            }
        } else if let Some(path) = name.strip_prefix("sentry[") {
            let keys: Vec<&str> = path.trim_end_matches(']').split("][").collect();
            set_path(
                &mut event,
                &keys,
                Value::String(String::from_utf8_lossy(&data).into_owned()),
            );
        }
    }
    Ok((dump.ok_or_else(IngestError::invalid_minidump)?, event))
}

fn set_path(target: &mut Value, keys: &[&str], value: Value) {
    let Some((first, rest)) = keys.split_first() else {
        return;
    };
    let Some(obj) = target.as_object_mut() else {
        return;
    };
    if rest.is_empty() {
        obj.insert((*first).to_string(), value);
    } else {
        let child = obj.entry((*first).to_string()).or_insert_with(|| json!({}));
        set_path(child, rest, value);
    }
}
