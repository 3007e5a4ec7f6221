//! Issues: lists with the dashboard's search syntax, bulk and single
//! updates (status, assignment, merge), deletion, tags and hashes.

use super::auth::{self, Principal};
use super::pagination::{self, KeysetPage};
use super::serialize::{self, IssueContext, Stats};
use super::{ApiError, ApiJson, ApiResult, Params, ok};
use crate::app::AppState;
use crate::search::TagFilter;
use crate::store::{
    IgnoreUntil, IssueRow, IssueSort, IssueStatus, ProjectRow, Resolution, UserRow,
};
use axum::extract::{OriginalUri, Path, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use chrono::{DateTime, Duration, DurationRound, Utc};
use serde::Deserialize;
use serde_json::{Value, json};
use std::collections::HashMap;

/// Query-based bulk changes touch at most this many issues, as in Sentry.
const BULK_LIMIT: i64 = 1000;
const DEFAULT_PER_PAGE: i64 = 100;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StatsPeriod {
    None,
    Day,
    TwoWeeks,
    Month,
}

impl StatsPeriod {
    fn parse(value: Option<&str>) -> ApiResult<Self> {
        match value {
            None | Some("24h") => Ok(Self::Day),
            Some("14d") => Ok(Self::TwoWeeks),
            Some("") => Ok(Self::None),
            Some(other) => Err(ApiError::BadRequest(format!(
                "Invalid statsPeriod {other:?}; valid choices are '', '24h' and '14d'"
            ))),
        }
    }

    fn name(self) -> &'static str {
        match self {
            Self::None => "",
            Self::Day => "24h",
            Self::TwoWeeks => "14d",
            Self::Month => "30d",
        }
    }

    /// (number of buckets, bucket length in hours)
    fn shape(self) -> (i64, i64) {
        match self {
            Self::None => (0, 1),
            Self::Day => (24, 1),
            Self::TwoWeeks => (14, 24),
            Self::Month => (30, 24),
        }
    }
}

/// Event counts per bucket for each issue, oldest bucket first. Daily
/// buckets start at UTC midnight, hourly ones on the hour.
async fn stats(app: &AppState, ids: &[i64], period: StatsPeriod) -> ApiResult<HashMap<i64, Stats>> {
    let (buckets, hours_per_bucket) = period.shape();
    let mut out = HashMap::new();
    if buckets == 0 || ids.is_empty() {
        return Ok(out);
    }
    let now = Utc::now();
    let this_hour = now.duration_trunc(Duration::hours(1)).unwrap_or(now);
    let this_bucket = now
        .duration_trunc(Duration::hours(hours_per_bucket))
        .unwrap_or(this_hour);
    let first_bucket = this_bucket - Duration::hours(hours_per_bucket * (buckets - 1));
    let empty: Stats = (0..buckets)
        .map(|i| {
            (
                (first_bucket + Duration::hours(hours_per_bucket * i)).timestamp(),
                0,
            )
        })
        .collect();
    for id in ids {
        out.insert(*id, empty.clone());
    }
    let span_hours = (this_hour - first_bucket).num_hours() + 1;
    for (issue_id, hours_ago, count) in app.store.issue_hourly_counts(ids, span_hours).await? {
        let hour = this_hour - Duration::hours(hours_ago);
        let index = (hour - first_bucket)
            .num_hours()
            .div_euclid(hours_per_bucket);
        if let Some(bucket) = out
            .get_mut(&issue_id)
            .and_then(|s| s.get_mut(index as usize))
        {
            bucket.1 += count;
        }
    }
    Ok(out)
}

/// Serializes issues of the given projects with their state, assignee and
/// stats, in the given order.
async fn render(
    app: &AppState,
    issues: &[IssueRow],
    projects: &[ProjectRow],
    periods: &[StatsPeriod],
) -> ApiResult<Vec<Value>> {
    let ids: Vec<i64> = issues.iter().map(|i| i.id).collect();
    let states = app.store.issue_states(&ids).await?;
    let users = if issues.iter().any(|i| i.assignee_id.is_some()) {
        app.store.list_users().await?
    } else {
        Vec::new()
    };
    let mut all_stats = Vec::new();
    for period in periods.iter().filter(|p| **p != StatsPeriod::None) {
        all_stats.push((period.name(), stats(app, &ids, *period).await?));
    }
    let mut out = Vec::with_capacity(issues.len());
    for issue in issues {
        let Some(project) = projects.iter().find(|p| p.id == issue.project_id) else {
            continue;
        };
        let cx = IssueContext {
            project,
            state: states.iter().find(|s| s.id == issue.id),
            assignee: issue
                .assignee_id
                .and_then(|id| users.iter().find(|u| u.id == id)),
            stats: all_stats
                .iter()
                .map(|(name, by_issue)| {
                    (*name, by_issue.get(&issue.id).cloned().unwrap_or_default())
                })
                .collect(),
            base_url: &app.config.base_url,
        };
        out.push(serialize::issue(issue, &cx));
    }
    Ok(out)
}

/// The search of a list request: the dashboard's syntax, Sentry's default
/// of `is:unresolved` when no `query` is given, plus `environment`.
fn search_of(params: &Params) -> ApiResult<crate::search::SearchQuery> {
    let mut search = crate::search::parse(params.get("query").unwrap_or("is:unresolved"));
    let environments: Vec<&str> = params
        .all("environment")
        .filter(|e| !e.is_empty())
        .collect();
    match environments.as_slice() {
        [] => {}
        [env] => search.tags.push(TagFilter {
            key: "environment".into(),
            value: env.to_string(),
            negated: false,
        }),
        _ => {
            return Err(ApiError::BadRequest(
                "Snag filters on one environment at a time".into(),
            ));
        }
    }
    Ok(search)
}

fn sort_of(params: &Params) -> ApiResult<IssueSort> {
    match params.get("sort") {
        None | Some("") => Ok(IssueSort::default()),
        Some(s) => IssueSort::parse(s).ok_or_else(|| {
            ApiError::BadRequest(format!(
                "unknown sort {s:?}; Snag sorts by date, new, freq or user"
            ))
        }),
    }
}

/// `?shortIdLookup=1&query=SHOP-12` finds that issue whatever its status.
async fn short_id_lookup(
    app: &AppState,
    params: &Params,
    project_ids: &[i64],
) -> ApiResult<Option<IssueRow>> {
    if !matches!(params.get("shortIdLookup"), Some("1" | "true")) {
        return Ok(None);
    }
    let query = params.get("query").unwrap_or("").trim();
    let Some((slug, n)) = query.rsplit_once('-') else {
        return Ok(None);
    };
    let Ok(n) = n.parse::<i64>() else {
        return Ok(None);
    };
    match app.store.issue_id_by_short_id(project_ids, slug, n).await? {
        Some(id) => Ok(app.store.issue(id).await?),
        None => Ok(None),
    }
}

async fn list(
    app: &AppState,
    p: &Principal,
    projects: Vec<ProjectRow>,
    params: &Params,
    path: &str,
) -> ApiResult {
    p.require(&["event:read"])?;
    let period = StatsPeriod::parse(
        params
            .get("statsPeriod")
            .or_else(|| params.get("groupStatsPeriod")),
    )?;
    let page = KeysetPage::from_params(params, DEFAULT_PER_PAGE)?;
    let search = search_of(params)?;
    let sort = sort_of(params)?;
    let project_ids: Vec<i64> = projects.iter().map(|p| p.id).collect();
    let mut rows = match short_id_lookup(app, params, &project_ids).await? {
        Some(issue) => vec![issue],
        None => {
            app.store
                .search_issues(
                    &project_ids,
                    &search,
                    sort,
                    page.fetch(),
                    page.cursor,
                    Some(p.user_id),
                )
                .await?
        }
    };
    let link = page.finish(
        &mut rows,
        |issue| sort.cursor_after(issue),
        &app.config.base_url,
        path,
        params,
    );
    let body = render(app, &rows, &projects, &[period]).await?;
    Ok(pagination::with_link(ok(Value::Array(body)), &link))
}

pub async fn project_list(
    State(app): State<AppState>,
    p: Principal,
    Path((org, project)): Path<(String, String)>,
    OriginalUri(uri): OriginalUri,
    params: Params,
) -> ApiResult {
    p.require(&["event:read"])?;
    let (_, project) = auth::project(&app, &p, &org, &project).await?;
    list(&app, &p, vec![project], &params, uri.path()).await
}

/// The organization's visible projects, narrowed by `project=<id>`
/// parameters (`-1` means all); naming a project the user cannot see is a
/// 400, so a typo does not silently widen or empty the list.
async fn org_projects(
    app: &AppState,
    p: &Principal,
    org: &str,
    params: &Params,
) -> ApiResult<Vec<ProjectRow>> {
    let org = auth::organization(app, p, org).await?;
    let projects = auth::organization_projects(app, p, &org).await?;
    let wanted = params.ids("project")?;
    if wanted.is_empty() || wanted.contains(&-1) {
        return Ok(projects);
    }
    if let Some(missing) = wanted
        .iter()
        .find(|id| !projects.iter().any(|p| p.id == **id))
    {
        return Err(ApiError::BadRequest(format!(
            "project {missing} does not exist or you cannot see it"
        )));
    }
    Ok(projects
        .into_iter()
        .filter(|p| wanted.contains(&p.id))
        .collect())
}

pub async fn org_list(
    State(app): State<AppState>,
    p: Principal,
    Path(org): Path<String>,
    OriginalUri(uri): OriginalUri,
    params: Params,
) -> ApiResult {
    p.require(&["event:read"])?;
    let projects = org_projects(&app, &p, &org, &params).await?;
    list(&app, &p, projects, &params, uri.path()).await
}

// ---- updates ----

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct StatusDetails {
    in_release: Option<String>,
    in_next_release: Option<bool>,
    in_commit: Option<Value>,
    /// Minutes.
    ignore_duration: Option<i64>,
    ignore_until: Option<String>,
    ignore_count: Option<i64>,
    /// Minutes; Snag counts events since the ignore, without a window.
    ignore_window: Option<i64>,
    ignore_user_count: Option<i64>,
    ignore_user_window: Option<i64>,
}

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct IssueUpdate {
    status: Option<String>,
    status_details: Option<StatusDetails>,
    /// Sent by Sentry's UI along with a status; the status decides.
    substatus: Option<String>,
    /// Minutes (Sentry's legacy top-level form).
    ignore_duration: Option<i64>,
    /// Minutes; what `sentry-cli issues mute` sends.
    snooze_duration: Option<i64>,
    /// `null` or `""` unassigns; `"user:<id>"`, `"<id>"`, an email or `"me"`.
    #[serde(default, deserialize_with = "present")]
    assigned_to: Option<Option<String>>,
    merge: Option<Value>,
}

fn present<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<Option<String>>, D::Error> {
    Option::<String>::deserialize(d).map(Some)
}

#[derive(Debug, Clone, PartialEq)]
enum StatusChange {
    Resolve(Resolution),
    /// `inRelease: "latest"`, resolved per project.
    ResolveInLatest,
    Unresolve,
    Ignore(IgnoreUntil),
}

#[derive(Debug)]
struct Changes {
    status: Option<StatusChange>,
    assignee: Option<Option<UserRow>>,
    merge: bool,
}

fn ignore_of(update: &IssueUpdate, details: &StatusDetails) -> ApiResult<IgnoreUntil> {
    if details.ignore_user_window.is_some() {
        return Err(ApiError::BadRequest(
            "ignoreUserWindow is not supported: Snag counts ignoreUserCount users from now on"
                .into(),
        ));
    }
    if details.ignore_window.is_some() {
        return Err(ApiError::BadRequest(
            "ignoreWindow is not supported: Snag counts ignoreCount events from now on".into(),
        ));
    }
    let minutes = details
        .ignore_duration
        .or(update.ignore_duration)
        .or(update.snooze_duration);
    let chosen = [
        minutes.is_some(),
        details.ignore_until.is_some(),
        details.ignore_count.is_some(),
        details.ignore_user_count.is_some(),
    ]
    .iter()
    .filter(|b| **b)
    .count();
    if chosen > 1 {
        return Err(ApiError::BadRequest(
            "choose one of ignoreDuration, ignoreUntil, ignoreCount and ignoreUserCount".into(),
        ));
    }
    if let Some(minutes) = minutes {
        if !(1..=525_600 * 10).contains(&minutes) {
            return Err(ApiError::BadRequest(
                "ignoreDuration is in minutes, from 1 to ten years".into(),
            ));
        }
        return Ok(IgnoreUntil::Duration(minutes * 60));
    }
    if let Some(until) = &details.ignore_until {
        let until: DateTime<Utc> = crate::event::parse_timestamp_str(until)
            .ok_or_else(|| ApiError::BadRequest("ignoreUntil must be an ISO 8601 time".into()))?;
        let secs = (until - Utc::now()).num_seconds();
        if secs <= 0 {
            return Err(ApiError::BadRequest(
                "ignoreUntil must be in the future".into(),
            ));
        }
        return Ok(IgnoreUntil::Duration(secs));
    }
    if let Some(count) = details.ignore_count {
        if count < 1 {
            return Err(ApiError::BadRequest("ignoreCount must be positive".into()));
        }
        return Ok(IgnoreUntil::MoreEvents(count));
    }
    if let Some(users) = details.ignore_user_count {
        if users < 1 {
            return Err(ApiError::BadRequest(
                "ignoreUserCount must be positive".into(),
            ));
        }
        return Ok(IgnoreUntil::MoreUsers(users));
    }
    Ok(IgnoreUntil::Forever)
}

fn status_change(update: &IssueUpdate) -> ApiResult<Option<StatusChange>> {
    let Some(status) = update.status.as_deref() else {
        if update.status_details.is_some() {
            return Err(ApiError::BadRequest("statusDetails needs a status".into()));
        }
        return Ok(None);
    };
    let empty = StatusDetails::default();
    let details = update.status_details.as_ref().unwrap_or(&empty);
    if details.in_commit.is_some() {
        return Err(ApiError::BadRequest(
            "resolving in a commit is not supported by Snag".into(),
        ));
    }
    if let Some(sub) = update.substatus.as_deref()
        && ![
            "ongoing",
            "regressed",
            "escalating",
            "new",
            "archived_until_escalating",
            "archived_until_condition_met",
            "archived_forever",
        ]
        .contains(&sub)
    {
        return Err(ApiError::BadRequest(format!("unknown substatus {sub:?}")));
    }
    Ok(Some(match status {
        "resolved" => match (details.in_release.as_deref(), details.in_next_release) {
            (Some(_), Some(true)) => {
                return Err(ApiError::BadRequest(
                    "choose one of inRelease and inNextRelease".into(),
                ));
            }
            (Some("latest"), _) => StatusChange::ResolveInLatest,
            (Some(v), _) if v.trim().is_empty() => {
                return Err(ApiError::BadRequest("inRelease must name a release".into()));
            }
            (Some(v), _) => StatusChange::Resolve(Resolution::InRelease(v.trim().to_string())),
            (None, Some(true)) => StatusChange::Resolve(Resolution::NextRelease),
            (None, _) => StatusChange::Resolve(Resolution::Now),
        },
        "resolvedInNextRelease" => StatusChange::Resolve(Resolution::NextRelease),
        "unresolved" => StatusChange::Unresolve,
        "ignored" | "muted" | "archived" => StatusChange::Ignore(ignore_of(update, details)?),
        other => {
            return Err(ApiError::BadRequest(format!(
                "unknown status {other:?}; use resolved, resolvedInNextRelease, unresolved or ignored"
            )));
        }
    }))
}

async fn assignee_of(
    app: &AppState,
    p: &Principal,
    value: Option<&str>,
) -> ApiResult<Option<UserRow>> {
    let value = value.map(str::trim).unwrap_or("");
    if value.is_empty() {
        return Ok(None);
    }
    if value.starts_with("team:") {
        return Err(ApiError::BadRequest(
            "assigning to teams is not supported by Snag".into(),
        ));
    }
    let user = if value == "me" {
        app.store.user_by_id(p.user_id).await?
    } else if let Some(id) = value
        .strip_prefix("user:")
        .or(Some(value))
        .and_then(|v| v.parse::<i64>().ok())
    {
        app.store.user_by_id(id).await?
    } else {
        app.store.user_by_email(value).await?
    };
    match user.filter(|u| u.is_active) {
        Some(u) => Ok(Some(u)),
        None => Err(ApiError::BadRequest(format!(
            "cannot assign to {value:?}: no such active user"
        ))),
    }
}

fn truthy(v: &Value) -> bool {
    match v {
        Value::Bool(b) => *b,
        Value::Number(n) => n.as_i64() != Some(0),
        Value::String(s) => matches!(s.as_str(), "1" | "true"),
        _ => false,
    }
}

async fn changes_of(app: &AppState, p: &Principal, update: &IssueUpdate) -> ApiResult<Changes> {
    let status = status_change(update)?;
    let assignee = match &update.assigned_to {
        None => None,
        Some(value) => Some(assignee_of(app, p, value.as_deref()).await?),
    };
    let merge = update.merge.as_ref().is_some_and(truthy);
    if merge && (status.is_some() || assignee.is_some()) {
        return Err(ApiError::BadRequest(
            "merge cannot be combined with other changes".into(),
        ));
    }
    Ok(Changes {
        status,
        assignee,
        merge,
    })
}

/// Applies validated changes to issues the user may see; returns Sentry's
/// summary of what changed.
async fn apply(
    app: &AppState,
    p: &Principal,
    issues: &[(IssueRow, ProjectRow)],
    changes: &Changes,
) -> ApiResult<Value> {
    let actor = Some(p.user_id);
    if changes.merge {
        if issues.len() < 2 {
            return Err(ApiError::BadRequest(
                "select two or more issues to merge".into(),
            ));
        }
        // Like Sentry and the dashboard: the issue with the most events
        // absorbs the others.
        let target = issues
            .iter()
            .map(|(i, _)| i)
            .max_by_key(|i| (i.times_seen, -i.id))
            .map(|i| i.id)
            .unwrap_or_default();
        let ids: Vec<i64> = issues.iter().map(|(i, _)| i.id).collect();
        app.store.merge_issues(target, &ids, actor).await?;
        let children: Vec<String> = ids
            .iter()
            .filter(|id| **id != target)
            .map(|id| id.to_string())
            .collect();
        return Ok(json!({"merge": {"parent": target.to_string(), "children": children}}));
    }
    let mut result = serde_json::Map::new();
    if let Some(change) = &changes.status {
        for (issue, project) in issues {
            match change {
                StatusChange::Resolve(resolution) => {
                    app.store
                        .resolve_issue(issue.id, resolution.clone(), actor)
                        .await?
                }
                StatusChange::ResolveInLatest => {
                    let latest = app
                        .store
                        .recent_releases(project.id, 1)
                        .await?
                        .into_iter()
                        .next()
                        .ok_or_else(|| {
                            ApiError::BadRequest(format!(
                                "project {} has no release to resolve in",
                                project.slug
                            ))
                        })?;
                    app.store
                        .resolve_issue(issue.id, Resolution::InRelease(latest), actor)
                        .await?
                }
                StatusChange::Unresolve => {
                    app.store
                        .set_issue_status(issue.id, IssueStatus::Unresolved, actor)
                        .await?
                }
                StatusChange::Ignore(until) => {
                    app.store.ignore_issue(issue.id, *until, actor).await?
                }
            }
        }
        let (status, details) = match change {
            StatusChange::Resolve(Resolution::Now) => ("resolved", json!({})),
            StatusChange::Resolve(Resolution::NextRelease) => {
                ("resolved", json!({"inNextRelease": true}))
            }
            StatusChange::Resolve(Resolution::InRelease(v)) => {
                ("resolved", json!({"inRelease": v}))
            }
            StatusChange::ResolveInLatest => ("resolved", json!({"inRelease": "latest"})),
            StatusChange::Unresolve => ("unresolved", json!({})),
            StatusChange::Ignore(IgnoreUntil::Forever) => ("ignored", json!({})),
            StatusChange::Ignore(IgnoreUntil::Duration(secs)) => (
                "ignored",
                json!({"ignoreUntil": serialize::iso(Utc::now() + Duration::seconds(*secs))}),
            ),
            StatusChange::Ignore(IgnoreUntil::MoreEvents(n)) => {
                ("ignored", json!({"ignoreCount": n}))
            }
            StatusChange::Ignore(IgnoreUntil::MoreUsers(n)) => {
                ("ignored", json!({"ignoreUserCount": n}))
            }
        };
        result.insert("status".into(), json!(status));
        result.insert("statusDetails".into(), details);
    }
    if let Some(assignee) = &changes.assignee {
        for (issue, _) in issues {
            app.store
                .assign_issue(issue.id, assignee.as_ref().map(|u| u.id), actor)
                .await?;
        }
        result.insert(
            "assignedTo".into(),
            assignee
                .as_ref()
                .map(serialize::user)
                .unwrap_or(Value::Null),
        );
    }
    Ok(Value::Object(result))
}

/// The issues a bulk request names: `id=` parameters (each must be
/// visible, in these projects), or else up to 1000 matching the query
/// (and Sentry's `status=` filter, which `sentry-cli` sends).
async fn bulk_targets(
    app: &AppState,
    p: &Principal,
    projects: &[ProjectRow],
    params: &Params,
    allow_query: bool,
) -> ApiResult<Vec<(IssueRow, ProjectRow)>> {
    let ids = params.ids("id")?;
    let project_of = |issue: &IssueRow| projects.iter().find(|p| p.id == issue.project_id).cloned();
    if !ids.is_empty() {
        if ids.len() as i64 > BULK_LIMIT {
            return Err(ApiError::BadRequest(format!(
                "at most {BULK_LIMIT} issues at once"
            )));
        }
        let mut out = Vec::new();
        for id in ids {
            let issue = app.store.issue(id).await?.ok_or(ApiError::NotFound)?;
            out.push((issue.clone(), project_of(&issue).ok_or(ApiError::NotFound)?));
        }
        return Ok(out);
    }
    if !allow_query {
        return Err(ApiError::BadRequest(
            "name the issues to delete with id parameters".into(),
        ));
    }
    let mut search = search_of(params)?;
    if let Some(status) = params.get("status").filter(|s| !s.is_empty()) {
        search.status = Some(match IssueStatus::parse(status) {
            Some(IssueStatus::Unresolved) => crate::search::StatusFilter::Unresolved,
            Some(IssueStatus::Resolved) => crate::search::StatusFilter::Resolved,
            Some(IssueStatus::Ignored) => crate::search::StatusFilter::Ignored,
            None => return Err(ApiError::BadRequest(format!("unknown status {status:?}"))),
        });
    }
    let project_ids: Vec<i64> = projects.iter().map(|p| p.id).collect();
    let rows = app
        .store
        .search_issues(
            &project_ids,
            &search,
            IssueSort::default(),
            BULK_LIMIT,
            None,
            Some(p.user_id),
        )
        .await?;
    Ok(rows
        .into_iter()
        .filter_map(|i| project_of(&i).map(|p| (i, p)))
        .collect())
}

async fn bulk_update(
    app: &AppState,
    p: &Principal,
    projects: Vec<ProjectRow>,
    params: &Params,
    update: IssueUpdate,
) -> ApiResult {
    p.require(&["event:write"])?;
    let changes = changes_of(app, p, &update).await?;
    let targets = bulk_targets(app, p, &projects, params, true).await?;
    if targets.is_empty() {
        return Ok(StatusCode::NO_CONTENT.into_response());
    }
    Ok(ok(apply(app, p, &targets, &changes).await?))
}

async fn bulk_delete(
    app: &AppState,
    p: &Principal,
    projects: Vec<ProjectRow>,
    params: &Params,
) -> ApiResult {
    p.require(&["event:admin"])?;
    auth::require_manager(app, p).await?;
    let targets = bulk_targets(app, p, &projects, params, false).await?;
    for (issue, _) in &targets {
        app.store.delete_issue(issue.id).await?;
    }
    Ok(StatusCode::NO_CONTENT.into_response())
}

pub async fn project_bulk_update(
    State(app): State<AppState>,
    p: Principal,
    Path((org, project)): Path<(String, String)>,
    params: Params,
    update: ApiJson<IssueUpdate>,
) -> ApiResult {
    p.require(&["event:write"])?;
    let (_, project) = auth::project(&app, &p, &org, &project).await?;
    bulk_update(&app, &p, vec![project], &params, update.parse()?).await
}

pub async fn org_bulk_update(
    State(app): State<AppState>,
    p: Principal,
    Path(org): Path<String>,
    params: Params,
    update: ApiJson<IssueUpdate>,
) -> ApiResult {
    p.require(&["event:write"])?;
    let projects = org_projects(&app, &p, &org, &params).await?;
    bulk_update(&app, &p, projects, &params, update.parse()?).await
}

pub async fn project_bulk_delete(
    State(app): State<AppState>,
    p: Principal,
    Path((org, project)): Path<(String, String)>,
    params: Params,
) -> ApiResult {
    p.require(&["event:admin"])?;
    let (_, project) = auth::project(&app, &p, &org, &project).await?;
    bulk_delete(&app, &p, vec![project], &params).await
}

pub async fn org_bulk_delete(
    State(app): State<AppState>,
    p: Principal,
    Path(org): Path<String>,
    params: Params,
) -> ApiResult {
    p.require(&["event:admin"])?;
    let projects = org_projects(&app, &p, &org, &params).await?;
    bulk_delete(&app, &p, projects, &params).await
}

// ---- one issue ----

async fn detail_json(app: &AppState, issue: &IssueRow, project: &ProjectRow) -> ApiResult<Value> {
    let mut v = render(
        app,
        std::slice::from_ref(issue),
        std::slice::from_ref(project),
        &[StatsPeriod::Day, StatsPeriod::Month],
    )
    .await?
    .pop()
    .ok_or(ApiError::NotFound)?;
    let activity: Vec<Value> = app
        .store
        .issue_activity(issue.id, 100)
        .await?
        .iter()
        .map(serialize::activity)
        .collect();
    v["activity"] = Value::Array(activity);
    v["firstRelease"] = serialize::release_ref(issue.first_release.as_deref());
    v["lastRelease"] = serialize::release_ref(issue.last_release.as_deref());
    v["userReportCount"] = json!(app.store.issue_user_reports(issue.id).await?.len());
    Ok(v)
}

/// The issue, checked to belong to the organization when the path names one.
async fn issue_in(
    app: &AppState,
    p: &Principal,
    org: Option<&str>,
    issue_id: &str,
) -> ApiResult<(IssueRow, ProjectRow)> {
    if let Some(org) = org {
        auth::organization(app, p, org).await?;
    }
    let (issue, project) = auth::issue(app, p, issue_id).await?;
    if org.is_some_and(|org| org != project.organization_slug) {
        return Err(ApiError::NotFound);
    }
    Ok((issue, project))
}

async fn get_one(app: &AppState, p: &Principal, org: Option<&str>, issue_id: &str) -> ApiResult {
    p.require(&["event:read"])?;
    let (issue, project) = issue_in(app, p, org, issue_id).await?;
    Ok(ok(detail_json(app, &issue, &project).await?))
}

async fn update_one(
    app: &AppState,
    p: &Principal,
    org: Option<&str>,
    issue_id: &str,
    update: ApiJson<IssueUpdate>,
) -> ApiResult {
    p.require(&["event:write"])?;
    let (issue, project) = issue_in(app, p, org, issue_id).await?;
    let update = update.parse()?;
    let changes = changes_of(app, p, &update).await?;
    if changes.merge {
        return Err(ApiError::BadRequest(
            "merge needs two or more issues: use the issue list endpoint with id parameters".into(),
        ));
    }
    apply(app, p, &[(issue.clone(), project.clone())], &changes).await?;
    let issue = app.store.issue(issue.id).await?.ok_or(ApiError::NotFound)?;
    Ok(ok(detail_json(app, &issue, &project).await?))
}

async fn delete_one(app: &AppState, p: &Principal, org: Option<&str>, issue_id: &str) -> ApiResult {
    p.require(&["event:admin"])?;
    let (issue, _) = issue_in(app, p, org, issue_id).await?;
    auth::require_manager(app, p).await?;
    app.store.delete_issue(issue.id).await?;
    Ok(StatusCode::ACCEPTED.into_response())
}

pub async fn detail(
    State(app): State<AppState>,
    p: Principal,
    Path(id): Path<String>,
) -> ApiResult {
    get_one(&app, &p, None, &id).await
}

pub async fn update(
    State(app): State<AppState>,
    p: Principal,
    Path(id): Path<String>,
    body: ApiJson<IssueUpdate>,
) -> ApiResult {
    update_one(&app, &p, None, &id, body).await
}

pub async fn delete(
    State(app): State<AppState>,
    p: Principal,
    Path(id): Path<String>,
) -> ApiResult {
    delete_one(&app, &p, None, &id).await
}

pub async fn org_issue_detail(
    State(app): State<AppState>,
    p: Principal,
    Path((org, id)): Path<(String, String)>,
) -> ApiResult {
    get_one(&app, &p, Some(&org), &id).await
}

pub async fn org_issue_update(
    State(app): State<AppState>,
    p: Principal,
    Path((org, id)): Path<(String, String)>,
    body: ApiJson<IssueUpdate>,
) -> ApiResult {
    update_one(&app, &p, Some(&org), &id, body).await
}

pub async fn org_issue_delete(
    State(app): State<AppState>,
    p: Principal,
    Path((org, id)): Path<(String, String)>,
) -> ApiResult {
    delete_one(&app, &p, Some(&org), &id).await
}

/// Tag keys with their most frequent values.
pub async fn tags(State(app): State<AppState>, p: Principal, Path(id): Path<String>) -> ApiResult {
    p.require(&["event:read"])?;
    let (issue, _) = auth::issue(&app, &p, &id).await?;
    let facets = app.store.issue_tag_facets(issue.id, 9).await?;
    Ok(ok(Value::Array(
        facets
            .iter()
            .map(|f| {
                json!({
                    "key": f.key,
                    "name": f.key,
                    "totalValues": f.total,
                    "topValues": f.values.iter().map(|(value, count)| json!({
                        "key": f.key,
                        "name": value,
                        "value": value,
                        "count": count,
                    })).collect::<Vec<_>>(),
                })
            })
            .collect(),
    )))
}

/// The grouping hashes that make up the issue, each with its latest event.
pub async fn hashes(
    State(app): State<AppState>,
    p: Principal,
    Path(id): Path<String>,
) -> ApiResult {
    p.require(&["event:read"])?;
    let (issue, _) = auth::issue(&app, &p, &id).await?;
    let mut out = Vec::new();
    for h in app.store.issue_hashes(issue.id).await? {
        let latest = match h.latest_event_id {
            Some(event_id) => app
                .store
                .issue_event(issue.id, Some(event_id))
                .await?
                .map(|e| serialize::event_summary(&e)),
            None => None,
        };
        out.push(json!({"id": h.hash, "latestEvent": latest, "mergedBySeer": false}));
    }
    Ok(ok(Value::Array(out)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn update(v: Value) -> IssueUpdate {
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn statuses_map_to_store_actions() {
        let cases = [
            (
                json!({"status": "resolved"}),
                StatusChange::Resolve(Resolution::Now),
            ),
            (
                json!({"status": "resolvedInNextRelease"}),
                StatusChange::Resolve(Resolution::NextRelease),
            ),
            (
                json!({"status": "resolved", "statusDetails": {"inNextRelease": true}}),
                StatusChange::Resolve(Resolution::NextRelease),
            ),
            (
                json!({"status": "resolved", "statusDetails": {"inRelease": "1.2"}}),
                StatusChange::Resolve(Resolution::InRelease("1.2".into())),
            ),
            (
                json!({"status": "resolved", "statusDetails": {"inRelease": "latest"}}),
                StatusChange::ResolveInLatest,
            ),
            (json!({"status": "unresolved"}), StatusChange::Unresolve),
            (
                json!({"status": "ignored"}),
                StatusChange::Ignore(IgnoreUntil::Forever),
            ),
            (
                json!({"status": "ignored", "statusDetails": {"ignoreDuration": 30}}),
                StatusChange::Ignore(IgnoreUntil::Duration(1800)),
            ),
            (
                json!({"status": "ignored", "snoozeDuration": 60}),
                StatusChange::Ignore(IgnoreUntil::Duration(3600)),
            ),
            (
                json!({"status": "ignored", "statusDetails": {"ignoreCount": 5}}),
                StatusChange::Ignore(IgnoreUntil::MoreEvents(5)),
            ),
            (
                json!({"status": "ignored", "statusDetails": {"ignoreUserCount": 3}}),
                StatusChange::Ignore(IgnoreUntil::MoreUsers(3)),
            ),
        ];
        for (body, expected) in cases {
            assert_eq!(
                status_change(&update(body.clone())).unwrap(),
                Some(expected),
                "{body}"
            );
        }
        assert_eq!(status_change(&update(json!({}))).unwrap(), None);
        // What sentry-cli sends for `issues resolve`.
        assert_eq!(
            status_change(&update(
                json!({"status": "resolved", "snoozeDuration": null})
            ))
            .unwrap(),
            Some(StatusChange::Resolve(Resolution::Now))
        );
    }

    #[test]
    fn unsupported_or_contradictory_changes_are_rejected() {
        for body in [
            json!({"status": "closed"}),
            json!({"status": "ignored", "statusDetails": {"ignoreUserCount": 3, "ignoreUserWindow": 60}}),
            json!({"status": "ignored", "statusDetails": {"ignoreUserCount": 0}}),
            json!({"status": "ignored", "statusDetails": {"ignoreUserCount": 3, "ignoreCount": 3}}),
            json!({"status": "ignored", "statusDetails": {"ignoreCount": 3, "ignoreWindow": 60}}),
            json!({"status": "ignored", "statusDetails": {"ignoreCount": 3, "ignoreDuration": 60}}),
            json!({"status": "ignored", "statusDetails": {"ignoreDuration": 0}}),
            json!({"status": "ignored", "statusDetails": {"ignoreUntil": "2001-01-01T00:00:00Z"}}),
            json!({"status": "resolved", "statusDetails": {"inCommit": {"commit": "abc"}}}),
            json!({"status": "resolved", "statusDetails": {"inRelease": " "}}),
            json!({"statusDetails": {"inNextRelease": true}}),
            json!({"status": "ignored", "substatus": "sleeping"}),
        ] {
            assert!(status_change(&update(body.clone())).is_err(), "{body}");
        }
        assert!(serde_json::from_value::<IssueUpdate>(json!({"isBookmarked": true})).is_err());
    }

    #[test]
    fn stats_periods() {
        assert_eq!(StatsPeriod::parse(None).unwrap(), StatsPeriod::Day);
        assert_eq!(StatsPeriod::parse(Some("")).unwrap(), StatsPeriod::None);
        assert_eq!(StatsPeriod::parse(Some("14d")).unwrap().shape(), (14, 24));
        assert!(StatsPeriod::parse(Some("1y")).is_err());
    }
}
