//! The API root, organizations, projects and their DSN keys.

use super::auth::{self, Principal};
use super::{ApiError, ApiJson, ApiResult, json, ok, serialize};
use crate::app::AppState;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use serde::Deserialize;
use serde_json::Value;

/// `GET /api/0/`: who the token belongs to (what `sentry-cli info` shows).
/// Anonymous callers get nulls, as from Sentry; a bad token is still 401.
pub async fn index(principal: Result<Principal, ApiError>) -> ApiResult {
    let principal = match principal {
        Ok(p) => Some(p),
        Err(ApiError::Unauthenticated) => None,
        Err(e) => return Err(e),
    };
    Ok(ok(match principal {
        Some(p) => serde_json::json!({
            "version": "0",
            "auth": {"scopes": p.scopes},
            "user": {
                "id": p.user_id.to_string(),
                "name": if p.name.is_empty() { &p.email } else { &p.name },
                "username": p.email,
                "email": p.email,
                "isSuperuser": p.is_admin,
            },
        }),
        None => serde_json::json!({"version": "0", "auth": null, "user": null}),
    }))
}

pub async fn organizations(State(app): State<AppState>, p: Principal) -> ApiResult {
    p.require(&["org:read"])?;
    let orgs = app.store.organizations_of(p.user_id, p.is_admin).await?;
    Ok(ok(Value::Array(
        orgs.iter().map(serialize::organization).collect(),
    )))
}

pub async fn organization(
    State(app): State<AppState>,
    p: Principal,
    Path(org): Path<String>,
) -> ApiResult {
    p.require(&["org:read"])?;
    let org = auth::organization(&app, &p, &org).await?;
    Ok(ok(serialize::organization(&org)))
}

/// Every visible project of the organization. Sentry paginates this list;
/// Snag returns it whole with a `Link` header that says there is no more.
pub async fn organization_projects(
    State(app): State<AppState>,
    p: Principal,
    Path(org): Path<String>,
) -> ApiResult {
    p.require(&["org:read"])?;
    let org = auth::organization(&app, &p, &org).await?;
    let projects = auth::organization_projects(&app, &p, &org).await?;
    let teams = app.store.list_teams().await?;
    Ok(ok(Value::Array(
        projects
            .iter()
            .map(|project| serialize::project(project, &teams))
            .collect(),
    )))
}

pub async fn project_detail(
    State(app): State<AppState>,
    p: Principal,
    Path((org, project)): Path<(String, String)>,
) -> ApiResult {
    p.require(&["project:read"])?;
    let (org, project) = auth::project(&app, &p, &org, &project).await?;
    let teams = app.store.list_teams().await?;
    Ok(ok(serialize::project_detail(&project, &teams, &org)))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProjectUpdate {
    name: Option<String>,
    slug: Option<String>,
    /// `null` clears the platform.
    #[serde(default, with = "double_option")]
    platform: Option<Option<String>>,
}

/// Distinguishes a missing field (`None`) from an explicit `null`
/// (`Some(None)`).
mod double_option {
    use serde::{Deserialize, Deserializer};

    pub fn deserialize<'de, D, T>(d: D) -> Result<Option<Option<T>>, D::Error>
    where
        D: Deserializer<'de>,
        T: Deserialize<'de>,
    {
        Option::<T>::deserialize(d).map(Some)
    }
}

fn valid_slug(slug: &str) -> bool {
    !slug.is_empty()
        && slug.len() <= 50
        && slug
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !slug.bytes().all(|b| b.is_ascii_digit())
        && !slug.starts_with('-')
        && !slug.ends_with('-')
}

pub async fn project_update(
    State(app): State<AppState>,
    p: Principal,
    Path((org, project)): Path<(String, String)>,
    body: ApiJson<ProjectUpdate>,
) -> ApiResult {
    p.require(&["project:write"])?;
    let (org, project) = auth::project(&app, &p, &org, &project).await?;
    auth::require_manager(&app, &p).await?;
    let body = body.parse()?;
    let name = match body.name.as_deref().map(str::trim) {
        Some("") => return Err(ApiError::BadRequest("name must not be empty".into())),
        Some(n) if n.chars().count() > 200 => {
            return Err(ApiError::BadRequest(
                "name is limited to 200 characters".into(),
            ));
        }
        Some(n) => n.to_string(),
        None => project.name.clone(),
    };
    let platform = match body.platform {
        Some(Some(p)) if p.len() > 64 || p.trim().is_empty() => {
            return Err(ApiError::BadRequest(
                "platform must be a short non-empty name".into(),
            ));
        }
        Some(platform) => platform,
        None => project.platform.clone(),
    };
    if let Some(slug) = &body.slug {
        if !valid_slug(slug) {
            return Err(ApiError::BadRequest(
                "slug must be lowercase letters, digits and dashes (not only digits), at most 50"
                    .into(),
            ));
        }
        if *slug != project.slug {
            app.store.set_project_slug(project.id, slug).await?;
        }
    }
    app.store
        .update_project(project.id, &name, platform.as_deref())
        .await?;
    let project = app
        .store
        .project(project.id)
        .await?
        .ok_or(ApiError::NotFound)?;
    let teams = app.store.list_teams().await?;
    Ok(ok(serialize::project_detail(&project, &teams, &org)))
}

pub async fn key_list(
    State(app): State<AppState>,
    p: Principal,
    Path((org, project)): Path<(String, String)>,
) -> ApiResult {
    p.require(&["project:read"])?;
    let (_, project) = auth::project(&app, &p, &org, &project).await?;
    let keys = app.store.project_keys(project.id).await?;
    Ok(ok(Value::Array(
        keys.iter()
            .map(|k| serialize::project_key(k, &app.config.base_url))
            .collect(),
    )))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RateLimit {
    window: i64,
    count: i64,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewKey {
    name: Option<String>,
    #[serde(rename = "rateLimit")]
    rate_limit: Option<RateLimit>,
}

pub async fn key_create(
    State(app): State<AppState>,
    p: Principal,
    Path((org, project)): Path<(String, String)>,
    body: ApiJson<NewKey>,
) -> ApiResult<Response> {
    p.require(&["project:write"])?;
    let (_, project) = auth::project(&app, &p, &org, &project).await?;
    auth::require_manager(&app, &p).await?;
    let body = body.parse()?;
    let label = body
        .name
        .as_deref()
        .map(str::trim)
        .filter(|n| !n.is_empty())
        .unwrap_or("Default");
    if label.chars().count() > 64 {
        return Err(ApiError::BadRequest(
            "name is limited to 64 characters".into(),
        ));
    }
    let per_minute = match body.rate_limit {
        None => None,
        Some(RateLimit { window: 60, count }) if (1..=i32::MAX as i64).contains(&count) => {
            Some(count as i32)
        }
        Some(RateLimit { window: 60, .. }) => {
            return Err(ApiError::BadRequest(
                "rateLimit.count must be a positive number".into(),
            ));
        }
        Some(_) => {
            return Err(ApiError::BadRequest(
                "Snag limits keys per minute: rateLimit.window must be 60".into(),
            ));
        }
    };
    let mut key = app.store.create_key(project.id, label).await?;
    if per_minute.is_some() {
        app.store
            .set_key_rate_limit(project.id, key.id, per_minute)
            .await?;
        key.rate_limit_per_minute = per_minute;
    }
    Ok(json(
        StatusCode::CREATED,
        serialize::project_key(&key, &app.config.base_url),
    ))
}

#[cfg(test)]
mod tests {
    use super::valid_slug;

    #[test]
    fn slugs() {
        assert!(valid_slug("my-app2"));
        for bad in ["", "My", "a_b", "123", "-a", "a-", &"x".repeat(51)] {
            assert!(!valid_slug(bad), "{bad}");
        }
    }
}
