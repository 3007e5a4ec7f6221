//! Releases and deploys: what `sentry-cli releases new|finalize|list|delete`
//! and `sentry-cli deploys new|list` call, at organization and project level.

use super::auth::{self, Principal};
use super::pagination::{self, Page};
use super::{ApiError, ApiJson, ApiResult, Params, json, ok, serialize};
use crate::app::AppState;
use crate::store::{NewDeploy, OrganizationRow, ProjectRow, ReleaseChanges, ReleaseRow};
use axum::extract::{OriginalUri, Path, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde_json::Value;

const READ: &[&str] = &["project:read", "project:releases"];
const WRITE: &[&str] = &["project:releases", "project:write"];
const DEFAULT_PER_PAGE: i64 = 100;

/// Sentry's rules: no path separators or control whitespace, not a dot
/// path, not `latest` (it means "the newest" in filters).
fn check_version(version: &str) -> ApiResult<()> {
    let bad = version.trim().is_empty()
        || version.chars().count() > 200
        || matches!(version, "." | ".." | "latest")
        || version.contains(['/', '\\', '\n', '\r', '\t', '\x0c'])
        || version != version.trim();
    if bad {
        return Err(ApiError::BadRequest(format!(
            "invalid release version {version:?}: 1 to 200 characters, no slashes, tabs or newlines, not \".\", \"..\" or \"latest\""
        )));
    }
    Ok(())
}

fn time(field: &str, value: Option<&str>) -> ApiResult<Option<DateTime<Utc>>> {
    match value {
        None => Ok(None),
        Some(v) => crate::event::parse_timestamp_str(v)
            .map(Some)
            .ok_or_else(|| ApiError::BadRequest(format!("{field} must be an ISO 8601 time"))),
    }
}

fn text(field: &str, value: Option<String>, max: usize) -> ApiResult<Option<String>> {
    match value {
        Some(v) if v.chars().count() > max => Err(ApiError::BadRequest(format!(
            "{field} is limited to {max} characters"
        ))),
        Some(v) if v.is_empty() => Ok(None),
        other => Ok(other),
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct NewRelease {
    version: String,
    #[serde(default)]
    projects: Vec<String>,
    #[serde(rename = "ref")]
    ref_: Option<String>,
    url: Option<String>,
    date_started: Option<String>,
    date_released: Option<String>,
    commits: Option<Value>,
    refs: Option<Value>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ReleaseUpdate {
    /// Accepted for sentry-cli, which names the projects it finalizes in.
    projects: Option<Vec<String>>,
    #[serde(rename = "ref")]
    ref_: Option<String>,
    url: Option<String>,
    date_started: Option<String>,
    date_released: Option<String>,
    status: Option<String>,
    commits: Option<Value>,
    refs: Option<Value>,
}

fn no_commits(commits: &Option<Value>, refs: &Option<Value>) -> ApiResult<()> {
    let given = |v: &Option<Value>| {
        v.as_ref()
            .is_some_and(|v| !v.is_null() && v.as_array().is_none_or(|a| !a.is_empty()))
    };
    if given(commits) || given(refs) {
        return Err(ApiError::BadRequest(
            "Snag does not track commits: leave out commits and refs".into(),
        ));
    }
    Ok(())
}

fn changes_of(
    ref_: Option<String>,
    url: Option<String>,
    date_started: Option<&str>,
    date_released: Option<&str>,
    status: Option<String>,
) -> ApiResult<ReleaseChanges> {
    if let Some(s) = status.as_deref()
        && !matches!(s, "open" | "archived")
    {
        return Err(ApiError::BadRequest(format!(
            "unknown release status {s:?}; use open or archived"
        )));
    }
    Ok(ReleaseChanges {
        date_started: time("dateStarted", date_started)?,
        date_released: time("dateReleased", date_released)?,
        url: text("url", url, 1000)?,
        ref_: text("ref", ref_, 1000)?,
        status,
    })
}

/// The named projects, which must all be visible projects of the
/// organization.
fn pick_projects(all: &[ProjectRow], slugs: &[String]) -> ApiResult<Vec<ProjectRow>> {
    let mut out: Vec<ProjectRow> = Vec::new();
    for slug in slugs {
        let project = all
            .iter()
            .find(|p| p.slug == *slug || p.id.to_string() == *slug)
            .ok_or_else(|| ApiError::BadRequest(format!("Invalid project slug {slug:?}")))?;
        if !out.iter().any(|p| p.id == project.id) {
            out.push(project.clone());
        }
    }
    Ok(out)
}

async fn render(
    app: &AppState,
    org: &OrganizationRow,
    rows: &[ReleaseRow],
    projects: &[ProjectRow],
) -> ApiResult<Vec<Value>> {
    let versions: Vec<String> = rows.iter().map(|r| r.version.clone()).collect();
    let ids: Vec<i64> = projects.iter().map(|p| p.id).collect();
    let stats = app.store.release_issue_stats(&ids, &versions).await?;
    let deploys = app.store.deploys(org.id, &versions).await?;
    Ok(rows
        .iter()
        .map(|r| {
            let mine: Vec<_> = deploys.iter().filter(|d| d.version == r.version).collect();
            serialize::release(r, projects, &stats, &mine)
        })
        .collect())
}

async fn render_one(
    app: &AppState,
    org: &OrganizationRow,
    row: &ReleaseRow,
    projects: &[ProjectRow],
) -> ApiResult<Value> {
    render(app, org, std::slice::from_ref(row), projects)
        .await?
        .pop()
        .ok_or(ApiError::NotFound)
}

/// Where a release request applies: the organization and its visible
/// projects, or one project when the path names it.
struct Scope {
    org: OrganizationRow,
    projects: Vec<ProjectRow>,
    single: bool,
}

impl Scope {
    fn ids(&self) -> Vec<i64> {
        self.projects.iter().map(|p| p.id).collect()
    }
}

async fn org_scope(app: &AppState, p: &Principal, org: &str) -> ApiResult<Scope> {
    let org = auth::organization(app, p, org).await?;
    let projects = auth::organization_projects(app, p, &org).await?;
    Ok(Scope {
        org,
        projects,
        single: false,
    })
}

async fn project_scope(
    app: &AppState,
    p: &Principal,
    org: &str,
    project: &str,
) -> ApiResult<Scope> {
    let (org, project) = auth::project(app, p, org, project).await?;
    Ok(Scope {
        org,
        projects: vec![project],
        single: true,
    })
}

async fn list(app: &AppState, scope: Scope, params: &Params, path: &str) -> ApiResult {
    let page = Page::from_params(params, DEFAULT_PER_PAGE)?;
    let wanted = params.ids("project")?;
    let projects: Vec<ProjectRow> = if wanted.is_empty() || wanted.contains(&-1) || scope.single {
        scope.projects.clone()
    } else {
        scope
            .projects
            .iter()
            .filter(|p| wanted.contains(&p.id))
            .cloned()
            .collect()
    };
    let ids: Vec<i64> = projects.iter().map(|p| p.id).collect();
    let query = params.get("query").filter(|q| !q.is_empty());
    let mut rows = app
        .store
        .releases(scope.org.id, &ids, query, page.fetch(), page.offset)
        .await?;
    let has_next = pagination::split_page(&mut rows, page);
    let body = render(app, &scope.org, &rows, &projects).await?;
    let link = pagination::link(&app.config.base_url, path, params, page, has_next);
    Ok(pagination::with_link(ok(Value::Array(body)), &link))
}

async fn create(app: &AppState, scope: Scope, body: ApiJson<NewRelease>) -> ApiResult {
    let body = body.parse()?;
    check_version(&body.version)?;
    no_commits(&body.commits, &body.refs)?;
    let targets = if scope.single {
        if !body.projects.is_empty() {
            pick_projects(&scope.projects, &body.projects)?;
        }
        scope.projects.clone()
    } else {
        if body.projects.is_empty() {
            return Err(ApiError::BadRequest(
                "name the projects of the release in projects".into(),
            ));
        }
        pick_projects(&scope.projects, &body.projects)?
    };
    let changes = changes_of(
        body.ref_,
        body.url,
        body.date_started.as_deref(),
        body.date_released.as_deref(),
        None,
    )?;
    let ids: Vec<i64> = targets.iter().map(|p| p.id).collect();
    let created = app
        .store
        .upsert_release(&ids, &body.version, &changes)
        .await?;
    let row = app
        .store
        .release(scope.org.id, &scope.ids(), &body.version)
        .await?
        .ok_or(ApiError::NotFound)?;
    let value = render_one(app, &scope.org, &row, &scope.projects).await?;
    // Sentry answers 208 when nothing new was created; sentry-cli accepts both.
    let status = if created {
        StatusCode::CREATED
    } else {
        StatusCode::ALREADY_REPORTED
    };
    Ok(json(status, value))
}

async fn find(app: &AppState, scope: &Scope, version: &str) -> ApiResult<ReleaseRow> {
    app.store
        .release(scope.org.id, &scope.ids(), version)
        .await?
        .ok_or(ApiError::NotFound)
}

async fn detail(app: &AppState, scope: Scope, version: &str) -> ApiResult {
    let row = find(app, &scope, version).await?;
    Ok(ok(render_one(app, &scope.org, &row, &scope.projects).await?))
}

async fn update(
    app: &AppState,
    scope: Scope,
    version: &str,
    body: ApiJson<ReleaseUpdate>,
) -> ApiResult {
    let body = body.parse()?;
    no_commits(&body.commits, &body.refs)?;
    if let Some(slugs) = &body.projects {
        pick_projects(&scope.projects, slugs)?;
    }
    let row = find(app, &scope, version).await?;
    let changes = changes_of(
        body.ref_,
        body.url,
        body.date_started.as_deref(),
        body.date_released.as_deref(),
        body.status,
    )?;
    app.store
        .update_release(&row.project_ids, version, &changes)
        .await?;
    let row = find(app, &scope, version).await?;
    Ok(ok(render_one(app, &scope.org, &row, &scope.projects).await?))
}

async fn remove(app: &AppState, p: &Principal, scope: Scope, version: &str) -> ApiResult {
    auth::require_manager(app, p).await?;
    let row = find(app, &scope, version).await?;
    app.store
        .delete_release(scope.org.id, &row.project_ids, version)
        .await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

pub async fn org_list(
    State(app): State<AppState>,
    p: Principal,
    Path(org): Path<String>,
    OriginalUri(uri): OriginalUri,
    params: Params,
) -> ApiResult {
    p.require(READ)?;
    let scope = org_scope(&app, &p, &org).await?;
    list(&app, scope, &params, uri.path()).await
}

pub async fn org_create(
    State(app): State<AppState>,
    p: Principal,
    Path(org): Path<String>,
    body: ApiJson<NewRelease>,
) -> ApiResult {
    p.require(WRITE)?;
    let scope = org_scope(&app, &p, &org).await?;
    create(&app, scope, body).await
}

pub async fn org_detail(
    State(app): State<AppState>,
    p: Principal,
    Path((org, version)): Path<(String, String)>,
) -> ApiResult {
    p.require(READ)?;
    let scope = org_scope(&app, &p, &org).await?;
    detail(&app, scope, &version).await
}

pub async fn org_update(
    State(app): State<AppState>,
    p: Principal,
    Path((org, version)): Path<(String, String)>,
    body: ApiJson<ReleaseUpdate>,
) -> ApiResult {
    p.require(WRITE)?;
    let scope = org_scope(&app, &p, &org).await?;
    update(&app, scope, &version, body).await
}

pub async fn org_delete(
    State(app): State<AppState>,
    p: Principal,
    Path((org, version)): Path<(String, String)>,
) -> ApiResult {
    p.require(WRITE)?;
    let scope = org_scope(&app, &p, &org).await?;
    remove(&app, &p, scope, &version).await
}

pub async fn project_list(
    State(app): State<AppState>,
    p: Principal,
    Path((org, project)): Path<(String, String)>,
    OriginalUri(uri): OriginalUri,
    params: Params,
) -> ApiResult {
    p.require(READ)?;
    let scope = project_scope(&app, &p, &org, &project).await?;
    list(&app, scope, &params, uri.path()).await
}

pub async fn project_create(
    State(app): State<AppState>,
    p: Principal,
    Path((org, project)): Path<(String, String)>,
    body: ApiJson<NewRelease>,
) -> ApiResult {
    p.require(WRITE)?;
    let scope = project_scope(&app, &p, &org, &project).await?;
    create(&app, scope, body).await
}

pub async fn project_detail(
    State(app): State<AppState>,
    p: Principal,
    Path((org, project, version)): Path<(String, String, String)>,
) -> ApiResult {
    p.require(READ)?;
    let scope = project_scope(&app, &p, &org, &project).await?;
    detail(&app, scope, &version).await
}

pub async fn project_update(
    State(app): State<AppState>,
    p: Principal,
    Path((org, project, version)): Path<(String, String, String)>,
    body: ApiJson<ReleaseUpdate>,
) -> ApiResult {
    p.require(WRITE)?;
    let scope = project_scope(&app, &p, &org, &project).await?;
    update(&app, scope, &version, body).await
}

pub async fn project_delete(
    State(app): State<AppState>,
    p: Principal,
    Path((org, project, version)): Path<(String, String, String)>,
) -> ApiResult {
    p.require(WRITE)?;
    let scope = project_scope(&app, &p, &org, &project).await?;
    remove(&app, &p, scope, &version).await
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct NewDeployBody {
    environment: String,
    name: Option<String>,
    url: Option<String>,
    date_started: Option<String>,
    date_finished: Option<String>,
    projects: Option<Vec<String>>,
}

pub async fn deploy_list(
    State(app): State<AppState>,
    p: Principal,
    Path((org, version)): Path<(String, String)>,
) -> ApiResult {
    p.require(READ)?;
    let scope = org_scope(&app, &p, &org).await?;
    let row = find(&app, &scope, &version).await?;
    let deploys = app.store.deploys(scope.org.id, &[row.version]).await?;
    Ok(ok(Value::Array(
        deploys.iter().map(serialize::deploy).collect(),
    )))
}

pub async fn deploy_create(
    State(app): State<AppState>,
    p: Principal,
    Path((org, version)): Path<(String, String)>,
    body: ApiJson<NewDeployBody>,
) -> ApiResult {
    p.require(WRITE)?;
    let scope = org_scope(&app, &p, &org).await?;
    let body = body.parse()?;
    let env = body.environment.as_str();
    if env.is_empty() || env.chars().count() > 64 || env.contains(['/', '\n', '\r', '\t', '\x0c']) {
        return Err(ApiError::BadRequest(
            "environment must be 1 to 64 characters without slashes or newlines".into(),
        ));
    }
    let row = find(&app, &scope, &version).await?;
    if let Some(slugs) = &body.projects {
        let named = pick_projects(&scope.projects, slugs)?;
        if let Some(outside) = named.iter().find(|p| !row.project_ids.contains(&p.id)) {
            return Err(ApiError::BadRequest(format!(
                "the release is not attached to project {}",
                outside.slug
            )));
        }
    }
    let name = text("name", body.name, 64)?;
    let url = text("url", body.url, 1000)?;
    let started = time("dateStarted", body.date_started.as_deref())?;
    let finished = time("dateFinished", body.date_finished.as_deref())?;
    if let (Some(s), Some(f)) = (started, finished)
        && s > f
    {
        return Err(ApiError::BadRequest(
            "dateStarted must not be after dateFinished".into(),
        ));
    }
    let deploy = app
        .store
        .create_deploy(
            scope.org.id,
            &row.version,
            &NewDeploy {
                environment: env,
                name: name.as_deref(),
                url: url.as_deref(),
                date_started: started,
                date_finished: finished,
            },
        )
        .await?;
    Ok(json(StatusCode::CREATED, serialize::deploy(&deploy)))
}

#[cfg(test)]
mod tests {
    use super::check_version;

    #[test]
    fn versions() {
        for ok in ["1.0", "app@1.2.3+build.5", "0123456789abcdef", "release 7"] {
            assert!(check_version(ok).is_ok(), "{ok}");
        }
        for bad in [
            "",
            " ",
            "latest",
            ".",
            "..",
            "a/b",
            "a\\b",
            "a\nb",
            " 1.0",
            &"x".repeat(201),
        ] {
            assert!(check_version(bad).is_err(), "{bad:?}");
        }
    }
}
