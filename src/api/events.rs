//! Events: of a project, of an issue, one by id (Sentry's full shape or
//! the raw stored JSON).

use super::auth::{self, Principal};
use super::pagination::{self, Page};
use super::{ApiError, ApiResult, Params, ok, serialize};
use crate::app::AppState;
use crate::search::TagFilter;
use crate::store::EventRow;
use axum::extract::{OriginalUri, Path, State};
use serde_json::Value;

const DEFAULT_PER_PAGE: i64 = 100;

fn event_id(s: &str) -> ApiResult<uuid::Uuid> {
    uuid::Uuid::parse_str(s).map_err(|_| ApiError::NotFound)
}

/// The full event with its previous and next event within its issue.
async fn full(app: &AppState, row: &EventRow) -> ApiResult<Value> {
    let neighbours = match row.issue_id {
        Some(issue_id) => {
            let [_, older, newer, _] = app.store.event_neighbours(issue_id, row.event_id).await?;
            (older, newer)
        }
        None => (None, None),
    };
    Ok(serialize::event(row, neighbours))
}

pub async fn project_events(
    State(app): State<AppState>,
    p: Principal,
    Path((org, project)): Path<(String, String)>,
    OriginalUri(uri): OriginalUri,
    params: Params,
) -> ApiResult {
    p.require(&["event:read"])?;
    let (_, project) = auth::project(&app, &p, &org, &project).await?;
    let page = Page::from_params(&params, DEFAULT_PER_PAGE)?;
    let full_events = matches!(params.get("full"), Some("1" | "true"));
    let mut ids = app
        .store
        .project_event_ids(project.id, page.fetch(), page.offset)
        .await?;
    let has_next = pagination::split_page(&mut ids, page);
    let mut out = Vec::with_capacity(ids.len());
    for id in ids {
        // Fetched one by one through the store so the payload is decoded
        // wherever and however it is stored.
        if let Some(row) = app.store.event(project.id, id).await? {
            out.push(if full_events {
                full(&app, &row).await?
            } else {
                serialize::event_summary(&row)
            });
        }
    }
    let link = pagination::link(&app.config.base_url, uri.path(), &params, page, has_next);
    Ok(pagination::with_link(ok(Value::Array(out)), &link))
}

pub async fn project_event(
    State(app): State<AppState>,
    p: Principal,
    Path((org, project, id)): Path<(String, String, String)>,
) -> ApiResult {
    p.require(&["event:read"])?;
    let (_, project) = auth::project(&app, &p, &org, &project).await?;
    let row = app
        .store
        .event(project.id, event_id(&id)?)
        .await?
        .ok_or(ApiError::NotFound)?;
    Ok(ok(full(&app, &row).await?))
}

/// The event as stored (normalised), like Sentry's `…/events/<id>/json/`.
pub async fn project_event_json(
    State(app): State<AppState>,
    p: Principal,
    Path((org, project, id)): Path<(String, String, String)>,
) -> ApiResult {
    p.require(&["event:read"])?;
    let (_, project) = auth::project(&app, &p, &org, &project).await?;
    let row = app
        .store
        .event(project.id, event_id(&id)?)
        .await?
        .ok_or(ApiError::NotFound)?;
    let mut data = row.data;
    if let Value::Object(map) = &mut data {
        map.entry("event_id")
            .or_insert_with(|| Value::String(row.event_id.simple().to_string()));
        map.entry("project")
            .or_insert_with(|| Value::from(row.project_id));
    }
    Ok(ok(data))
}

/// Events of an issue, newest first; `query` filters on tags as the
/// dashboard's event list does, `full=true` returns whole events.
pub async fn issue_events(
    State(app): State<AppState>,
    p: Principal,
    Path(issue_id): Path<String>,
    OriginalUri(uri): OriginalUri,
    params: Params,
) -> ApiResult {
    p.require(&["event:read"])?;
    let (issue, _) = auth::issue(&app, &p, &issue_id).await?;
    let page = Page::from_params(&params, DEFAULT_PER_PAGE)?;
    let search = crate::search::parse(params.get("query").unwrap_or(""));
    if !search.text.is_empty() {
        return Err(ApiError::BadRequest(
            "event lists filter on tags only (key:value)".into(),
        ));
    }
    let mut tags = search.tags;
    if let Some(level) = search.level {
        tags.push(TagFilter {
            key: "level".into(),
            value: level,
            negated: false,
        });
    }
    if let Some(env) = params.get("environment").filter(|e| !e.is_empty()) {
        tags.push(TagFilter {
            key: "environment".into(),
            value: env.into(),
            negated: false,
        });
    }
    let full_events = matches!(params.get("full"), Some("1" | "true"));
    let mut rows = app
        .store
        .issue_events_matching(issue.id, &tags, page.fetch(), page.offset)
        .await?;
    let has_next = pagination::split_page(&mut rows, page);
    let mut out = Vec::with_capacity(rows.len());
    for summary in rows {
        if let Some(row) = app
            .store
            .issue_event(issue.id, Some(summary.event_id))
            .await?
        {
            out.push(if full_events {
                full(&app, &row).await?
            } else {
                serialize::event_summary(&row)
            });
        }
    }
    let link = pagination::link(&app.config.base_url, uri.path(), &params, page, has_next);
    Ok(pagination::with_link(ok(Value::Array(out)), &link))
}

/// `latest`, `oldest`, `recommended` (the latest, in Snag) or an event id.
pub async fn issue_event(
    State(app): State<AppState>,
    p: Principal,
    Path((issue_id, which)): Path<(String, String)>,
) -> ApiResult {
    p.require(&["event:read"])?;
    let (issue, _) = auth::issue(&app, &p, &issue_id).await?;
    let row = match which.as_str() {
        "latest" | "recommended" => app.store.latest_event(issue.id).await?,
        "oldest" => match app.store.latest_event(issue.id).await? {
            Some(latest) => {
                let [oldest, ..] = app
                    .store
                    .event_neighbours(issue.id, latest.event_id)
                    .await?;
                match oldest {
                    Some(id) => app.store.issue_event(issue.id, Some(id)).await?,
                    None => Some(latest),
                }
            }
            None => None,
        },
        id => app.store.issue_event(issue.id, Some(event_id(id)?)).await?,
    }
    .ok_or(ApiError::NotFound)?;
    Ok(ok(full(&app, &row).await?))
}
