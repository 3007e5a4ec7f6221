//! Issue lists, per project and across every project the user sees: search,
//! filters, sort, keyset pagination, 24-hour or 14-day sparklines and bulk
//! triage.

use super::access::{issue_for, project_for, require_manager, visible_projects};
use super::auth::CurrentUser;
use super::{WebError, WebResult, ago, render};
use crate::app::AppState;
use crate::search::{AssignedFilter, SearchQuery, StatusFilter, TagFilter};
use crate::store::{
    IgnoreUntil, IssueCursor, IssueRow, IssueSort, IssueStatus, ProjectRow, Resolution,
};
use askama::Template;
use axum::Router;
use axum::extract::{Path, Query, RawForm, State};
use axum::response::{IntoResponse, Redirect};
use axum::routing::{get, post};
use chrono::Utc;
use serde::Deserialize;
use std::collections::HashMap;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/issues", get(all_issues))
        .route("/issues/bulk", post(bulk))
        .route("/projects/{project_id}/issues", get(project_issues))
        .route("/issues/{issue_id}/events", get(issue_events))
}

pub const PAGE_SIZE: i64 = 50;

/// The sparkline's span: 24 hourly bars or 14 daily ones.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Graph {
    Day,
    TwoWeeks,
}

impl Graph {
    fn parse(s: &str) -> WebResult<Self> {
        match s {
            "" | "24h" => Ok(Self::Day),
            "14d" => Ok(Self::TwoWeeks),
            other => Err(WebError::BadRequest(format!("unknown graph {other:?}"))),
        }
    }

    /// (bars, hours per bar, unit for the label)
    fn shape(self) -> (i64, i64, &'static str) {
        match self {
            Self::Day => (24, 1, "hours"),
            Self::TwoWeeks => (14, 24, "days"),
        }
    }
}

/// Every filter lives in the query string, so a list view is a shareable URL.
#[derive(Deserialize, Default, Clone)]
pub struct IssueQuery {
    #[serde(default)]
    query: String,
    status: Option<String>,
    #[serde(default)]
    level: String,
    #[serde(default)]
    environment: String,
    #[serde(default)]
    release: String,
    /// "", "me" or "none".
    #[serde(default)]
    assigned: String,
    /// Relative time like "24h" or "7d": only issues seen since then.
    #[serde(default)]
    since: String,
    #[serde(default)]
    sort: String,
    /// "24h" (default) or "14d".
    #[serde(default)]
    graph: String,
    /// Keyset cursors (`<sort value>_<id>`): the page after or before a row.
    #[serde(default)]
    after: String,
    #[serde(default)]
    before: String,
}

impl IssueQuery {
    fn status(&self) -> &str {
        self.status.as_deref().unwrap_or("unresolved")
    }

    /// The filters as a query string (without the cursor), for links.
    fn query_string(&self) -> String {
        let mut s = form_urlencoded::Serializer::new(String::new());
        for (k, v) in [
            ("query", self.query.as_str()),
            ("status", self.status()),
            ("level", &self.level),
            ("environment", &self.environment),
            ("release", &self.release),
            ("assigned", &self.assigned),
            ("since", &self.since),
            ("sort", &self.sort),
            ("graph", &self.graph),
        ] {
            if !v.is_empty() {
                s.append_pair(k, v);
            }
        }
        s.finish()
    }

    /// The search text plus the form's filters, as one query. What the
    /// search text says wins over the select boxes.
    fn search(&self) -> WebResult<SearchQuery> {
        let mut search = crate::search::parse(&self.query);
        if search.status.is_none() {
            search.status = match self.status() {
                "all" => None,
                "regressed" => Some(StatusFilter::Regressed),
                s => Some(
                    match IssueStatus::parse(s)
                        .ok_or_else(|| WebError::BadRequest(format!("unknown status {s:?}")))?
                    {
                        IssueStatus::Unresolved => StatusFilter::Unresolved,
                        IssueStatus::Resolved => StatusFilter::Resolved,
                        IssueStatus::Ignored => StatusFilter::Ignored,
                    },
                ),
            };
        }
        if search.level.is_none() && !self.level.is_empty() {
            search.level = Some(self.level.to_ascii_lowercase());
        }
        for (key, value) in [
            ("environment", &self.environment),
            ("release", &self.release),
        ] {
            if !value.is_empty() && !search.tags.iter().any(|t| t.key == key) {
                search.tags.push(TagFilter {
                    key: key.into(),
                    value: value.clone(),
                    negated: false,
                });
            }
        }
        if search.assigned.is_none() {
            search.assigned = match self.assigned.as_str() {
                "" => None,
                "me" => Some(AssignedFilter::Me),
                "none" => Some(AssignedFilter::Nobody),
                other => {
                    return Err(WebError::BadRequest(format!(
                        "unknown assignee filter {other:?}"
                    )));
                }
            };
        }
        if search.last_seen_within.is_none() && !self.since.is_empty() {
            search.last_seen_within =
                Some(crate::search::relative_seconds(&self.since).ok_or_else(|| {
                    WebError::BadRequest(format!("unknown time range {:?}", self.since))
                })?);
        }
        Ok(search)
    }

    fn cursor(&self) -> WebResult<Option<IssueCursor>> {
        let bad = |c: &str| WebError::BadRequest(format!("bad page cursor {c:?}"));
        match (self.after.trim(), self.before.trim()) {
            ("", "") => Ok(None),
            (after, "") => IssueCursor::decode(after, false)
                .map(Some)
                .ok_or_else(|| bad(after)),
            (_, before) => IssueCursor::decode(before, true)
                .map(Some)
                .ok_or_else(|| bad(before)),
        }
    }

    fn sort(&self) -> WebResult<IssueSort> {
        match self.sort.as_str() {
            "" => Ok(IssueSort::default()),
            s => IssueSort::parse(s)
                .ok_or_else(|| WebError::BadRequest(format!("unknown sort {s:?}"))),
        }
    }
}

pub struct IssueListItem {
    pub issue: IssueRow,
    pub project_slug: String,
    pub last_seen: String,
    pub first_seen: String,
    pub assignee: String,
    pub is_new: bool,
    pub is_regressed: bool,
    /// Inline SVG built only from numbers, so it is safe to emit unescaped.
    pub sparkline: String,
}

#[derive(Template)]
#[template(path = "issues.html")]
struct IssuesPage {
    user: CurrentUser,
    /// None on the all-projects list.
    project: Option<ProjectRow>,
    issues: Vec<IssueListItem>,
    q: IssueQuery,
    status: String,
    sort: String,
    qs: String,
    /// The filters without the graph choice, for the 24h / 14d switch.
    qs_without_graph: String,
    graph: String,
    /// Cursors for the previous and next page, when there is one.
    prev: Option<String>,
    next: Option<String>,
    releases: Vec<String>,
}

/// One bar per bucket, oldest on the left, scaled to the busiest bucket;
/// `unit` names the bucket ("hours", "days") in the label.
pub fn sparkline(counts: &[i64], unit: &str) -> String {
    let max = counts.iter().copied().max().unwrap_or(0).max(1);
    let total: i64 = counts.iter().sum();
    let n = counts.len().max(1);
    // Hourly bars are narrow, daily ones a little wider.
    let step = if n > 16 { 4 } else { 6 };
    let mut svg = format!(
        "<svg class=\"spark\" viewBox=\"0 0 {w} 24\" width=\"{w}\" height=\"24\" role=\"img\" aria-label=\"{total} events in the last {n} {unit}\">",
        w = n * step
    );
    for (i, &c) in counts.iter().enumerate() {
        let h = if c > 0 { (c * 22 / max).max(2) } else { 1 };
        svg.push_str(&format!(
            "<rect x=\"{}\" y=\"{}\" width=\"{}\" height=\"{h}\"{}/>",
            i * step,
            24 - h,
            step - 1,
            if c > 0 { "" } else { " class=\"zero\"" }
        ));
    }
    svg.push_str("</svg>");
    svg
}

async fn list(
    app: &AppState,
    user: CurrentUser,
    project: Option<ProjectRow>,
    projects: Vec<ProjectRow>,
    q: IssueQuery,
) -> WebResult {
    let search = q.search()?;
    let sort = q.sort()?;
    let graph = Graph::parse(&q.graph)?;
    let cursor = q.cursor()?;
    let project_ids: Vec<i64> = projects.iter().map(|p| p.id).collect();
    let mut rows = app
        .store
        .search_issues(
            &project_ids,
            &search,
            sort,
            PAGE_SIZE + 1,
            cursor,
            Some(user.id),
        )
        .await?;
    // One row more than a page says whether there is a page beyond, in
    // the direction read: after the last row, or before the first.
    let more = rows.len() as i64 > PAGE_SIZE;
    let backwards = cursor.is_some_and(|c| c.before);
    if more {
        if backwards {
            rows.remove(0);
        } else {
            rows.truncate(PAGE_SIZE as usize);
        }
    }
    let (has_prev, has_next) = match cursor {
        None => (false, more),
        Some(c) if c.before => (more, true),
        Some(_) => (true, more),
    };
    let prev = rows
        .first()
        .filter(|_| has_prev)
        .map(|i| sort.cursor_after(i).before().encode());
    let next = rows
        .last()
        .filter(|_| has_next)
        .map(|i| sort.cursor_after(i).encode());
    let ids: Vec<i64> = rows.iter().map(|i| i.id).collect();
    let (bars, bucket_hours, unit) = graph.shape();
    let mut buckets: HashMap<i64, Vec<i64>> = HashMap::new();
    for (issue_id, ago, count) in app
        .store
        .issue_bucket_counts(&ids, bars, bucket_hours)
        .await?
    {
        if (0..bars).contains(&ago) {
            buckets
                .entry(issue_id)
                .or_insert_with(|| vec![0; bars as usize])[(bars - 1 - ago) as usize] += count;
        }
    }
    let zeros = vec![0; bars as usize];
    let users = app.store.list_users().await?;
    let now = Utc::now();
    let issues = rows
        .into_iter()
        .map(|issue| IssueListItem {
            project_slug: projects
                .iter()
                .find(|p| p.id == issue.project_id)
                .map(|p| p.slug.clone())
                .unwrap_or_default(),
            last_seen: ago(issue.last_seen),
            first_seen: ago(issue.first_seen),
            assignee: issue
                .assignee_id
                .and_then(|id| users.iter().find(|u| u.id == id))
                .map(|u| u.email.clone())
                .unwrap_or_default(),
            is_new: issue.status == "unresolved"
                && (now - issue.first_seen) < chrono::Duration::hours(24),
            is_regressed: issue.substatus.as_deref() == Some("regressed"),
            sparkline: sparkline(
                buckets
                    .get(&issue.id)
                    .map_or(zeros.as_slice(), Vec::as_slice),
                unit,
            ),
            issue,
        })
        .collect();
    let releases = match &project {
        Some(p) => app.store.recent_releases(p.id, 50).await?,
        None => Vec::new(),
    };
    render(IssuesPage {
        user,
        project,
        issues,
        status: q.status().to_string(),
        sort: sort.as_str().to_string(),
        qs: q.query_string(),
        qs_without_graph: IssueQuery {
            graph: String::new(),
            ..q.clone()
        }
        .query_string(),
        graph: match graph {
            Graph::Day => "24h".into(),
            Graph::TwoWeeks => "14d".into(),
        },
        q,
        prev,
        next,
        releases,
    })
}

async fn project_issues(
    State(app): State<AppState>,
    user: CurrentUser,
    Path(project_id): Path<i64>,
    Query(q): Query<IssueQuery>,
) -> WebResult {
    let project = project_for(&app, &user, project_id).await?;
    list(&app, user, Some(project.clone()), vec![project], q).await
}

async fn all_issues(
    State(app): State<AppState>,
    user: CurrentUser,
    Query(q): Query<IssueQuery>,
) -> WebResult {
    let projects = visible_projects(&app, &user).await?;
    list(&app, user, None, projects, q).await
}

#[derive(Deserialize, Default)]
struct EventsQuery {
    #[serde(default)]
    query: String,
    page: Option<i64>,
}

pub struct EventListItem {
    pub event_id: String,
    pub received: String,
    pub level: String,
    pub release: String,
    pub environment: String,
    pub title: String,
}

#[derive(Template)]
#[template(path = "events.html")]
struct EventsPage {
    user: CurrentUser,
    project: ProjectRow,
    issue: IssueRow,
    events: Vec<EventListItem>,
    query: String,
    qs: String,
    page: i64,
    has_more: bool,
}

/// Every event of an issue, filterable by tags (`server:web-1
/// !environment:staging`); other search terms do not apply to events.
async fn issue_events(
    State(app): State<AppState>,
    user: CurrentUser,
    Path(issue_id): Path<i64>,
    Query(q): Query<EventsQuery>,
) -> WebResult {
    let (issue, project) = issue_for(&app, &user, issue_id).await?;
    let search = crate::search::parse(&q.query);
    let mut tags = search.tags;
    if let Some(level) = search.level {
        tags.push(TagFilter {
            key: "level".into(),
            value: level,
            negated: false,
        });
    }
    let page = q.page.unwrap_or(1).clamp(1, 10_000);
    let mut rows = app
        .store
        .issue_events_matching(issue_id, &tags, PAGE_SIZE + 1, (page - 1) * PAGE_SIZE)
        .await?;
    let has_more = rows.len() as i64 > PAGE_SIZE;
    rows.truncate(PAGE_SIZE as usize);
    let events = rows
        .into_iter()
        .map(|e| EventListItem {
            event_id: e.event_id.simple().to_string(),
            received: ago(e.received_at),
            level: e.level,
            release: e.release.unwrap_or_default(),
            environment: e.environment.unwrap_or_default(),
            title: e.title,
        })
        .collect();
    let qs = form_urlencoded::Serializer::new(String::new())
        .append_pair("query", &q.query)
        .finish();
    render(EventsPage {
        user,
        project,
        issue,
        events,
        query: q.query,
        qs,
        page,
        has_more,
    })
}

/// The issue the detail page's merge form names, by short id (`SHOP-12`,
/// in the project of the issue being merged) or numeric id.
async fn issue_by_reference(
    app: &AppState,
    user: &CurrentUser,
    ids: &[i64],
    reference: &str,
) -> WebResult<i64> {
    if let Ok(id) = reference.trim_start_matches('#').parse::<i64>() {
        return Ok(id);
    }
    let unknown = || WebError::BadRequest(format!("no issue {reference} in this project"));
    let (slug, number) = reference.rsplit_once('-').ok_or_else(unknown)?;
    let number = number.parse::<i64>().map_err(|_| unknown())?;
    let first = *ids.first().ok_or_else(unknown)?;
    let (_, project) = issue_for(app, user, first).await?;
    app.store
        .issue_id_by_short_id(&[project.id], slug, number)
        .await?
        .ok_or_else(unknown)
}

/// Bulk triage from the list's checkboxes. The form repeats `issue`, which
/// serde's form decoding cannot collect, so the body is parsed by hand.
async fn bulk(State(app): State<AppState>, user: CurrentUser, RawForm(body): RawForm) -> WebResult {
    let mut csrf = String::new();
    let mut action = String::new();
    let mut back = String::new();
    let mut merge_with = String::new();
    let mut ids = Vec::new();
    for (k, v) in form_urlencoded::parse(&body) {
        match k.as_ref() {
            "csrf" => csrf = v.into_owned(),
            "action" => action = v.into_owned(),
            "merge_with" => merge_with = v.trim().to_string(),
            "back" => back = v.into_owned(),
            "issue" => ids.push(
                v.parse::<i64>()
                    .map_err(|_| WebError::BadRequest("bad issue id".into()))?,
            ),
            _ => {}
        }
    }
    if !user.check_csrf(&app.signing_key, &csrf) {
        return Err(WebError::Csrf);
    }
    if ids.len() > 500 {
        return Err(WebError::BadRequest("at most 500 issues at once".into()));
    }
    if action == "delete" {
        require_manager(&app, &user).await?;
    }
    if action == "merge" {
        if !merge_with.is_empty() {
            let other = issue_by_reference(&app, &user, &ids, &merge_with).await?;
            ids.push(other);
        }
        ids.dedup();
        let mut issues = Vec::new();
        for id in &ids {
            issues.push(issue_for(&app, &user, *id).await?.0);
        }
        if issues.len() < 2 {
            return Err(WebError::BadRequest(
                "select two or more issues to merge".into(),
            ));
        }
        // Like Sentry, the issue with the most events absorbs the others.
        let target = issues
            .iter()
            .max_by_key(|i| (i.times_seen, -i.id))
            .map(|i| i.id)
            .unwrap_or_default();
        app.store
            .merge_issues(target, &ids, Some(user.id))
            .await
            .map_err(|e| match e {
                crate::store::StoreError::Conflict(m) => WebError::BadRequest(m),
                e => e.into(),
            })?;
        return Ok(Redirect::to(&format!("/issues/{target}")).into_response());
    }
    for id in ids {
        // Every id is checked: a hidden project's issue is "not found".
        let (issue, _) = issue_for(&app, &user, id).await?;
        match action.as_str() {
            "resolve" => {
                app.store
                    .resolve_issue(issue.id, Resolution::Now, Some(user.id))
                    .await?
            }
            "unresolve" => {
                app.store
                    .set_issue_status(issue.id, IssueStatus::Unresolved, Some(user.id))
                    .await?
            }
            "ignore" => {
                app.store
                    .ignore_issue(issue.id, IgnoreUntil::Forever, Some(user.id))
                    .await?
            }
            "assign_me" => {
                app.store
                    .assign_issue(issue.id, Some(user.id), Some(user.id))
                    .await?
            }
            "unassign" => {
                app.store
                    .assign_issue(issue.id, None, Some(user.id))
                    .await?
            }
            "delete" => app.store.delete_issue(issue.id).await?,
            other => {
                return Err(WebError::BadRequest(format!(
                    "unknown bulk action {other:?}"
                )));
            }
        }
    }
    Ok(Redirect::to(&super::safe_next(Some(&back))).into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sparkline_scales_to_the_busiest_hour() {
        let svg = sparkline(&[0, 5, 10], "hours");
        assert!(svg.starts_with("<svg class=\"spark\" viewBox=\"0 0 18 24\""));
        assert!(svg.contains("<rect x=\"0\" y=\"23\" width=\"5\" height=\"1\" class=\"zero\"/>"));
        assert!(svg.contains("<rect x=\"6\" y=\"13\" width=\"5\" height=\"11\"/>"));
        assert!(svg.contains("<rect x=\"12\" y=\"2\" width=\"5\" height=\"22\"/>"));
        let day = sparkline(&[0; 24], "hours");
        assert!(
            day.contains("viewBox=\"0 0 96 24\"")
                && day.contains("<rect x=\"92\" y=\"23\" width=\"3\"")
        );
        assert!(svg.contains("15 events in the last 3 hours"));
        let fortnight = sparkline(&[1; 14], "days");
        assert!(fortnight.contains("viewBox=\"0 0 84 24\""));
        assert!(fortnight.contains("<rect x=\"78\" y=\"2\" width=\"5\" height=\"22\"/>"));
        assert!(fortnight.contains("14 events in the last 14 days"));
    }

    #[test]
    fn cursors_round_trip_and_reject_garbage() {
        let q = IssueQuery {
            after: "1712345678901234_57".into(),
            ..Default::default()
        };
        assert_eq!(
            q.cursor().unwrap(),
            Some(IssueCursor {
                value: 1_712_345_678_901_234,
                id: 57,
                before: false
            })
        );
        let q = IssueQuery {
            before: "-5_3".into(),
            ..Default::default()
        };
        assert_eq!(q.cursor().unwrap().unwrap().encode(), "-5_3");
        assert!(q.cursor().unwrap().unwrap().before);
        for bad in ["x_1", "12", "1_y", "_"] {
            let q = IssueQuery {
                after: bad.into(),
                ..Default::default()
            };
            assert!(q.cursor().is_err(), "{bad}");
        }
    }

    #[test]
    fn form_filters_merge_into_the_search() {
        let q = IssueQuery {
            query: "is:resolved boom".into(),
            status: Some("ignored".into()),
            level: "Error".into(),
            environment: "prod".into(),
            assigned: "me".into(),
            since: "24h".into(),
            ..Default::default()
        };
        let s = q.search().unwrap();
        assert_eq!(
            s.status,
            Some(StatusFilter::Resolved),
            "the search text wins"
        );
        assert_eq!(s.level.as_deref(), Some("error"));
        assert_eq!(s.tags[0].key, "environment");
        assert_eq!(s.assigned, Some(AssignedFilter::Me));
        assert_eq!(s.last_seen_within, Some(86_400));
        assert_eq!(
            q.query_string(),
            "query=is%3Aresolved+boom&status=ignored&level=Error&environment=prod&assigned=me&since=24h"
        );
        let bad = IssueQuery {
            since: "forever".into(),
            ..Default::default()
        };
        assert!(bad.search().is_err());
    }
}
