//! The server-rendered dashboard: login, projects, issues, triage.

mod access;
mod account;
pub mod auth;
mod health;
mod links;
mod list;
mod retention;
mod settings;
pub mod view;

use crate::app::AppState;
use crate::store::{
    ActivityRow, IgnoreUntil, IssueRow, IssueStatus, ProjectRow, Resolution, StoreError, TagFacet,
};
use access::{issue_for, project_for, require_manager, visible_projects};
use askama::Template;
use auth::CurrentUser;
use axum::Router;
use axum::extract::{Form, Path, Query, State};
use axum::http::{StatusCode, header};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use chrono::{DateTime, Utc};
use serde::Deserialize;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/", get(home))
        .route("/login", get(login_page).post(login))
        .route("/logout", post(logout))
        .route("/projects", get(projects))
        .route("/issues/{issue_id}", get(issue))
        .route("/issues/{issue_id}/events/{event_id}", get(issue_event))
        .route("/issues/{issue_id}/events/{event_id}/json", get(event_json))
        .route("/attachments/{attachment_id}", get(download_attachment))
        .route("/issues/{issue_id}/status", post(set_status))
        .route("/issues/{issue_id}/delete", post(delete_issue))
        .route("/issues/{issue_id}/assign", post(assign))
        .route("/issues/{issue_id}/comments", post(comment))
        .route("/static/snag.css", get(stylesheet))
        .route("/static/snag.js", get(script))
        .merge(list::router())
        .merge(account::router())
        .merge(links::router())
        .merge(settings::router())
        .merge(health::router())
        .merge(retention::router())
        .layer(axum::middleware::from_fn(security_headers))
}

/// Dashboard pages render user-controlled event data: no inline script, no
/// framing, no MIME sniffing, no referrer leaks of issue URLs.
async fn security_headers(req: axum::extract::Request, next: axum::middleware::Next) -> Response {
    let mut response = next.run(req).await;
    let headers = response.headers_mut();
    let set = |headers: &mut axum::http::HeaderMap, name: &'static str, value: &'static str| {
        headers.insert(name, axum::http::HeaderValue::from_static(value));
    };
    set(
        headers,
        "content-security-policy",
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; object-src 'none'; \
         base-uri 'none'; form-action 'self'; frame-ancestors 'none'",
    );
    set(headers, "x-frame-options", "DENY");
    set(headers, "x-content-type-options", "nosniff");
    set(headers, "referrer-policy", "same-origin");
    response
}

#[derive(Debug, thiserror::Error)]
pub enum WebError {
    #[error("page not found")]
    NotFound,
    #[error("{0}")]
    BadRequest(String),
    #[error("the form expired; reload the page and try again")]
    Csrf,
    #[error("you do not have permission to do that")]
    Forbidden,
    #[error("too many failed attempts; try again in a few minutes")]
    TooManyRequests,
    /// A reset or invitation link that is unknown, expired or used.
    #[error("{0}")]
    LinkExpired(String),
    #[error("database error")]
    Store(#[from] StoreError),
    #[error("template error")]
    Template(#[from] askama::Error),
}

impl IntoResponse for WebError {
    fn into_response(self) -> Response {
        let status = match &self {
            WebError::NotFound
            | WebError::LinkExpired(_)
            | WebError::Store(StoreError::NotFound) => StatusCode::NOT_FOUND,
            WebError::BadRequest(_) => StatusCode::BAD_REQUEST,
            WebError::Csrf | WebError::Forbidden => StatusCode::FORBIDDEN,
            WebError::TooManyRequests => StatusCode::TOO_MANY_REQUESTS,
            WebError::Store(_) | WebError::Template(_) => {
                tracing::error!(error = ?self, "dashboard request failed");
                StatusCode::INTERNAL_SERVER_ERROR
            }
        };
        let page = ErrorPage {
            status: status.as_u16(),
            message: self.to_string(),
        };
        (
            status,
            Html(page.render().unwrap_or_else(|_| self.to_string())),
        )
            .into_response()
    }
}

type WebResult<T = Response> = Result<T, WebError>;

fn render(t: impl Template) -> WebResult {
    Ok(Html(t.render()?).into_response())
}

#[derive(Template)]
#[template(path = "error.html")]
struct ErrorPage {
    status: u16,
    message: String,
}

async fn stylesheet() -> impl IntoResponse {
    (
        [
            (header::CONTENT_TYPE, "text/css; charset=utf-8"),
            (header::CACHE_CONTROL, "public, max-age=3600"),
        ],
        include_str!("../../templates/snag.css"),
    )
}

async fn script() -> impl IntoResponse {
    (
        [
            (header::CONTENT_TYPE, "text/javascript; charset=utf-8"),
            (header::CACHE_CONTROL, "public, max-age=3600"),
        ],
        include_str!("../../templates/snag.js"),
    )
}

async fn home(_user: CurrentUser) -> Redirect {
    Redirect::to("/projects")
}

#[derive(Template)]
#[template(path = "login.html")]
struct LoginPage {
    error: Option<String>,
    next: String,
    email: String,
    notice: Option<String>,
}

#[derive(Deserialize)]
struct NextQuery {
    next: Option<String>,
    /// Set after a password reset, to say so.
    reset: Option<String>,
}

/// Only same-site relative paths, so the login form cannot be used as an
/// open redirect.
fn safe_next(next: Option<&str>) -> String {
    match next {
        Some(n) if n.starts_with('/') && !n.starts_with("//") && !n.contains('\\') => n.to_string(),
        _ => "/projects".into(),
    }
}

async fn login_page(Query(q): Query<NextQuery>) -> WebResult {
    render(LoginPage {
        error: None,
        next: safe_next(q.next.as_deref()),
        email: String::new(),
        notice: q
            .reset
            .map(|_| "Your password was changed. Log in with the new one.".into()),
    })
}

#[derive(Deserialize)]
struct LoginForm {
    email: String,
    password: String,
    next: Option<String>,
}

/// Failed logins per email allowed within [`THROTTLE_WINDOW_SECS`] before
/// even a correct password is refused: online guessing gets ten tries per
/// quarter hour.
const THROTTLE_ATTEMPTS: i64 = 10;
/// Failed logins per client address in the same window, whatever the
/// emails: password spraying (one guess for many accounts) stops too. Higher
/// than the per-email limit because offices share an address.
const THROTTLE_IP_ATTEMPTS: i64 = 50;
const THROTTLE_WINDOW_SECS: i64 = 900;

/// The failure-record key for a client address. Emails always contain `@`,
/// and a submitted "email" without one is never recorded under its own
/// name, so a visitor cannot lock out an address by typing its key.
fn address_key(headers: &axum::http::HeaderMap) -> String {
    let client = headers
        .get("x-forwarded-for")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("unknown");
    format!("ip:{client}")
}

/// Whether a form post comes from our own pages: browsers send `Origin`
/// (and `Sec-Fetch-Site`) on POSTs; clients that send neither are not
/// browsers and cannot be tricked into posting.
pub(super) fn same_origin(headers: &axum::http::HeaderMap, base_url: &str) -> bool {
    if headers
        .get("sec-fetch-site")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v == "cross-site")
    {
        return false;
    }
    let Some(origin) = headers.get(header::ORIGIN) else {
        return true;
    };
    let Ok(origin) = origin.to_str() else {
        return false;
    };
    let ours = base_url
        .splitn(4, '/')
        .take(3)
        .collect::<Vec<_>>()
        .join("/");
    // The configured public URL, or the host the browser addressed (a
    // local install reached as localhost rather than 127.0.0.1).
    let host = headers.get(header::HOST).and_then(|v| v.to_str().ok());
    origin.eq_ignore_ascii_case(&ours)
        || host.is_some_and(|h| {
            origin
                .split_once("://")
                .is_some_and(|(_, o)| o.eq_ignore_ascii_case(h))
        })
}

async fn login(
    State(app): State<AppState>,
    headers: axum::http::HeaderMap,
    Form(form): Form<LoginForm>,
) -> WebResult {
    if !same_origin(&headers, &app.config.base_url) {
        // Login CSRF: a foreign page must not log the visitor into an
        // account of the attacker's choosing.
        return Err(WebError::Csrf);
    }
    let next = safe_next(form.next.as_deref());
    let email = form.email.trim().to_string();
    let address = address_key(&headers);
    let throttled = app
        .store
        .recent_login_failures(&email, THROTTLE_WINDOW_SECS)
        .await?
        >= THROTTLE_ATTEMPTS
        || app
            .store
            .recent_login_failures(&address, THROTTLE_WINDOW_SECS)
            .await?
            >= THROTTLE_IP_ATTEMPTS;
    if throttled {
        let page = LoginPage {
            error: Some(WebError::TooManyRequests.to_string()),
            next,
            email: form.email,
            notice: None,
        };
        return Ok((StatusCode::TOO_MANY_REQUESTS, Html(page.render()?)).into_response());
    }
    let user = app.store.user_by_email(&email).await?;
    let password = form.password;
    // Verify even for unknown users so response time does not reveal
    // which emails exist.
    let stored = user
        .as_ref()
        .map(|u| u.password_hash.clone())
        .unwrap_or_else(dummy_hash);
    let ok = tokio::task::spawn_blocking(move || auth::verify_password(&password, &stored))
        .await
        .unwrap_or(false);
    let Some(user) = user.filter(|u| ok && u.is_active) else {
        if email.contains('@') {
            app.store
                .record_login_failure(&email, THROTTLE_WINDOW_SECS)
                .await?;
        }
        app.store
            .record_login_failure(&address, THROTTLE_WINDOW_SECS)
            .await?;
        let page = LoginPage {
            error: Some("Invalid email or password.".into()),
            next,
            email: form.email,
            notice: None,
        };
        return Ok((StatusCode::UNAUTHORIZED, Html(page.render()?)).into_response());
    };
    app.store.clear_login_failures(&email).await?;
    let token = auth::new_session_token();
    let ttl = app.config.session_ttl;
    let expires =
        Utc::now() + chrono::Duration::from_std(ttl).unwrap_or(chrono::Duration::days(14));
    app.store
        .create_session(&auth::token_hash(&token), user.id, expires)
        .await?;
    let cookie = auth::session_cookie(
        &token,
        app.config.secure_cookies_for(&headers),
        ttl.as_secs(),
    );
    Ok(([(header::SET_COOKIE, cookie)], Redirect::to(&next)).into_response())
}

fn dummy_hash() -> String {
    static DUMMY: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    DUMMY
        .get_or_init(|| auth::hash_password("not a real password").unwrap_or_default())
        .clone()
}

#[derive(Deserialize)]
struct CsrfForm {
    csrf: String,
}

async fn logout(
    State(app): State<AppState>,
    user: CurrentUser,
    headers: axum::http::HeaderMap,
    Form(form): Form<CsrfForm>,
) -> WebResult {
    if !user.check_csrf(&app.signing_key, &form.csrf) {
        return Err(WebError::Csrf);
    }
    app.store.delete_session(&user.session_token_hash()).await?;
    let cookie = auth::clear_session_cookie(app.config.secure_cookies_for(&headers));
    Ok(([(header::SET_COOKIE, cookie)], Redirect::to("/login")).into_response())
}

struct ProjectListItem {
    project: ProjectRow,
    dsn: String,
    unresolved: i64,
}

#[derive(Template)]
#[template(path = "projects.html")]
struct ProjectsPage {
    user: CurrentUser,
    projects: Vec<ProjectListItem>,
}

async fn projects(State(app): State<AppState>, user: CurrentUser) -> WebResult {
    let keys = app.store.primary_keys().await?;
    let visible = visible_projects(&app, &user).await?;
    let ids: Vec<i64> = visible.iter().map(|p| p.id).collect();
    let counts = app.store.unresolved_counts(&ids).await?;
    let items = visible
        .into_iter()
        .map(|project| ProjectListItem {
            dsn: keys
                .iter()
                .find(|k| k.project_id == project.id)
                .map(|k| app.config.dsn(&k.public_key, project.id))
                .unwrap_or_default(),
            unresolved: counts
                .iter()
                .find(|(id, _)| *id == project.id)
                .map_or(0, |(_, n)| *n),
            project,
        })
        .collect();
    render(ProjectsPage {
        user,
        projects: items,
    })
}

pub fn ago(t: DateTime<Utc>) -> String {
    let secs = (Utc::now() - t).num_seconds().max(0);
    match secs {
        0..60 => format!("{secs}s ago"),
        60..3600 => format!("{}m ago", secs / 60),
        3600..86400 => format!("{}h ago", secs / 3600),
        _ => format!("{}d ago", secs / 86400),
    }
}

#[derive(Template)]
#[template(path = "issue.html")]
struct IssuePage {
    user: CurrentUser,
    project: ProjectRow,
    issue: IssueRow,
    first_seen: String,
    last_seen: String,
    event: Option<view::EventView>,
    /// Event ids for oldest, older, newer, latest.
    nav: [Option<String>; 4],
    attachments: Vec<crate::store::AttachmentRow>,
    reports: Vec<crate::store::UserReportRow>,
    grouping: Vec<GroupingVariant>,
    grouping_config: String,
    facets: Vec<TagFacet>,
    events: Vec<(String, String, String)>,
    activity: Vec<ActivityView>,
    /// (id, email) of users the issue can be assigned to.
    assignees: Vec<(i64, String)>,
    assignee: String,
    markdown: String,
}

/// One line of the activity feed, ready to print.
pub struct ActivityView {
    who: String,
    when: String,
    what: String,
    /// The text of a comment; empty for other entries.
    comment: String,
}

fn activity_view(a: ActivityRow) -> ActivityView {
    let field = |k: &str| a.data.get(k).and_then(|v| v.as_str()).unwrap_or("");
    let what = match a.kind.as_str() {
        "first_seen" => "first seen".to_string(),
        "note" => "commented".to_string(),
        "set_resolved" => match (field("resolution"), field("release")) {
            ("next_release", _) => "resolved in the next release".to_string(),
            ("in_release", r) => format!("resolved in release {r}"),
            _ => "resolved".to_string(),
        },
        "set_unresolved" => "unresolved".to_string(),
        "set_ignored" => {
            let secs = a.data.get("for_seconds").and_then(|v| v.as_f64());
            let more = a.data.get("more_events").and_then(|v| v.as_i64());
            let users = a.data.get("more_users").and_then(|v| v.as_i64());
            match (secs, more, users) {
                (Some(s), _, _) => format!("ignored for {}h", (s / 3600.0).round()),
                (_, Some(n), _) => format!("ignored until {n} more events"),
                (_, _, Some(n)) => format!("ignored until {n} more users"),
                _ => "ignored".to_string(),
            }
        }
        "set_regression" => match field("release") {
            "" => "regressed".to_string(),
            r => format!("regressed in release {r}"),
        },
        "set_escalating" => "came back from ignored".to_string(),
        "assigned" => format!("assigned to {}", field("assignee")),
        "unassigned" => "unassigned".to_string(),
        "merge" => {
            let ids: Vec<String> = a
                .data
                .get("merged_short_ids")
                .and_then(|v| v.as_array())
                .map(|ids| ids.iter().map(|id| format!("#{id}")).collect())
                .unwrap_or_default();
            format!("merged {} into this issue", ids.join(", "))
        }
        other => other.replace('_', " "),
    };
    ActivityView {
        who: a.user_email.unwrap_or_else(|| "Snag".into()),
        when: ago(a.created_at),
        comment: if a.kind == "note" {
            field("text").to_string()
        } else {
            String::new()
        },
        what,
    }
}

/// One row of "why was this grouped": a variant, whether it produced a hash
/// the issue uses, and what it was made of.
pub struct GroupingVariant {
    name: String,
    contributes: bool,
    hash: String,
    hint: String,
    values: String,
}

fn grouping_variants(grouping: Option<&serde_json::Value>) -> (String, Vec<GroupingVariant>) {
    let Some(g) = grouping else {
        return (String::new(), Vec::new());
    };
    let text = |v: &serde_json::Value, k: &str| {
        v.get(k).and_then(|x| x.as_str()).unwrap_or("").to_string()
    };
    let variants = g
        .get("variants")
        .and_then(|v| v.as_array())
        .map(|list| {
            list.iter()
                .map(|v| GroupingVariant {
                    name: text(v, "name"),
                    contributes: v
                        .get("contributes")
                        .and_then(|c| c.as_bool())
                        .unwrap_or(false),
                    hash: text(v, "hash"),
                    hint: text(v, "hint"),
                    values: v
                        .get("fingerprint")
                        .filter(|f| !f.is_null())
                        .or_else(|| v.get("component"))
                        .map(contributing_values)
                        .unwrap_or_default(),
                })
                .collect()
        })
        .unwrap_or_default();
    (text(g, "config"), variants)
}

/// Flattens a grouping component tree to the values that contributed.
fn contributing_values(component: &serde_json::Value) -> String {
    fn walk(v: &serde_json::Value, out: &mut Vec<String>) {
        match v {
            serde_json::Value::String(s) => out.push(s.clone()),
            serde_json::Value::Array(items) => items.iter().for_each(|i| walk(i, out)),
            serde_json::Value::Object(map) => {
                if map.get("contributes").and_then(|c| c.as_bool()) == Some(false) {
                    return;
                }
                for key in ["values", "children"] {
                    if let Some(child) = map.get(key) {
                        walk(child, out);
                    }
                }
            }
            _ => {}
        }
    }
    let mut out = Vec::new();
    walk(component, &mut out);
    let mut text = out.join(" · ");
    if text.len() > 2000 {
        text.truncate(text.floor_char_boundary(2000));
        text.push('…');
    }
    text
}

async fn issue(
    State(app): State<AppState>,
    user: CurrentUser,
    Path(issue_id): Path<i64>,
) -> WebResult {
    issue_page(&app, user, issue_id, None).await
}

async fn issue_event(
    State(app): State<AppState>,
    user: CurrentUser,
    Path((issue_id, event_id)): Path<(i64, String)>,
) -> WebResult {
    let event_id = uuid::Uuid::parse_str(&event_id).map_err(|_| WebError::NotFound)?;
    issue_page(&app, user, issue_id, Some(event_id)).await
}

/// The stored event as JSON, downloaded rather than rendered: it is
/// attacker-controlled content.
async fn event_json(
    State(app): State<AppState>,
    user: CurrentUser,
    Path((issue_id, event_id)): Path<(i64, String)>,
) -> WebResult {
    let event_id = uuid::Uuid::parse_str(&event_id).map_err(|_| WebError::NotFound)?;
    issue_for(&app, &user, issue_id).await?;
    let event = app
        .store
        .issue_event(issue_id, Some(event_id))
        .await?
        .ok_or(WebError::NotFound)?;
    let body = serde_json::to_string_pretty(&event.data).unwrap_or_default();
    let disposition = format!("attachment; filename=\"event-{}.json\"", event_id.simple());
    Ok((
        [
            (header::CONTENT_TYPE, "application/json".to_string()),
            (header::CONTENT_DISPOSITION, disposition),
        ],
        body,
    )
        .into_response())
}

async fn download_attachment(
    State(app): State<AppState>,
    user: CurrentUser,
    Path(attachment_id): Path<i64>,
) -> WebResult {
    let (row, data) = app
        .store
        .attachment(attachment_id)
        .await?
        .ok_or(WebError::NotFound)?;
    project_for(&app, &user, row.project_id).await?;
    let safe_name: String = row
        .name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || ".-_".contains(c) {
                c
            } else {
                '_'
            }
        })
        .collect();
    // Always a download with a neutral type: attachments are uploaded by
    // anyone holding a DSN and must never render in our origin.
    let disposition = format!("attachment; filename=\"{safe_name}\"");
    Ok((
        [
            (header::CONTENT_TYPE, "application/octet-stream".to_string()),
            (header::CONTENT_DISPOSITION, disposition),
        ],
        data,
    )
        .into_response())
}

async fn issue_page(
    app: &AppState,
    user: CurrentUser,
    issue_id: i64,
    event_id: Option<uuid::Uuid>,
) -> WebResult {
    let (issue, project) = issue_for(app, &user, issue_id).await?;
    let latest = app.store.issue_event(issue_id, event_id).await?;
    if event_id.is_some() && latest.is_none() {
        return Err(WebError::NotFound);
    }
    let (nav, attachments) = match &latest {
        Some(e) => (
            app.store
                .event_neighbours(issue_id, e.event_id)
                .await?
                .map(|id| id.map(|u| u.simple().to_string())),
            app.store
                .event_attachments(e.project_id, e.event_id)
                .await?,
        ),
        None => (Default::default(), Vec::new()),
    };
    let reports = app.store.issue_user_reports(issue_id).await?;
    let (grouping_config, grouping) =
        grouping_variants(latest.as_ref().and_then(|e| e.grouping.as_ref()));
    let event = latest.map(|e| view::event_view(&e.event_id.simple().to_string(), &e.data));
    let facets = app.store.issue_tag_facets(issue_id, 5).await?;
    let users = app.store.list_users().await?;
    let assignee = issue
        .assignee_id
        .and_then(|id| users.iter().find(|u| u.id == id))
        .map(|u| u.email.clone())
        .unwrap_or_default();
    let assignees = users
        .into_iter()
        .filter(|u| u.is_active)
        .map(|u| (u.id, u.email))
        .collect();
    let activity = app
        .store
        .issue_activity(issue_id, 100)
        .await?
        .into_iter()
        .map(activity_view)
        .collect();
    let markdown = view::markdown(
        &format!("{}-{}", project.slug.to_uppercase(), issue.short_id),
        &issue.title,
        &issue.culprit,
        &format!(
            "{}/issues/{}",
            app.config.base_url.trim_end_matches('/'),
            issue.id
        ),
        event.as_ref(),
    );
    let events = app
        .store
        .issue_events(issue_id, 20)
        .await?
        .into_iter()
        .map(|e| {
            (
                e.event_id.simple().to_string(),
                ago(e.received_at),
                e.release.unwrap_or_default(),
            )
        })
        .collect();
    render(IssuePage {
        user,
        first_seen: ago(issue.first_seen),
        last_seen: ago(issue.last_seen),
        project,
        issue,
        event,
        nav,
        attachments,
        reports,
        grouping,
        grouping_config,
        facets,
        events,
        activity,
        assignees,
        assignee,
        markdown,
    })
}

#[derive(Deserialize)]
struct StatusForm {
    csrf: String,
    status: String,
    /// For `resolved`: `now` (default), `next_release` or `in_release`.
    resolve: Option<String>,
    release: Option<String>,
    /// For `ignored`: `forever` (default), `1h`, `24h`, `7d`, `events:N` or
    /// `users:N`.
    ignore: Option<String>,
}

fn ignore_until(value: Option<&str>) -> Result<IgnoreUntil, WebError> {
    Ok(match value.unwrap_or("forever") {
        "" | "forever" => IgnoreUntil::Forever,
        "1h" => IgnoreUntil::Duration(3600),
        "24h" => IgnoreUntil::Duration(86_400),
        "7d" => IgnoreUntil::Duration(7 * 86_400),
        other => match other
            .split_once(':')
            .and_then(|(kind, n)| Some((kind, n.parse::<i64>().ok().filter(|n| *n > 0)?)))
        {
            Some(("events", n)) => IgnoreUntil::MoreEvents(n),
            Some(("users", n)) => IgnoreUntil::MoreUsers(n),
            _ => {
                return Err(WebError::BadRequest(format!(
                    "unknown ignore option {other:?}"
                )));
            }
        },
    })
}

async fn set_status(
    State(app): State<AppState>,
    user: CurrentUser,
    Path(issue_id): Path<i64>,
    Form(form): Form<StatusForm>,
) -> WebResult {
    if !user.check_csrf(&app.signing_key, &form.csrf) {
        return Err(WebError::Csrf);
    }
    issue_for(&app, &user, issue_id).await?;
    match IssueStatus::parse(&form.status) {
        Some(IssueStatus::Resolved) => {
            let resolution = match form.resolve.as_deref().unwrap_or("now") {
                "" | "now" => Resolution::Now,
                "next_release" => Resolution::NextRelease,
                "in_release" => match form
                    .release
                    .as_deref()
                    .map(str::trim)
                    .filter(|r| !r.is_empty())
                {
                    Some(release) => Resolution::InRelease(release.to_string()),
                    None => {
                        return Err(WebError::BadRequest(
                            "name the release that fixes it".into(),
                        ));
                    }
                },
                other => {
                    return Err(WebError::BadRequest(format!(
                        "unknown resolution {other:?}"
                    )));
                }
            };
            app.store
                .resolve_issue(issue_id, resolution, Some(user.id))
                .await?;
        }
        Some(IssueStatus::Ignored) => {
            app.store
                .ignore_issue(
                    issue_id,
                    ignore_until(form.ignore.as_deref())?,
                    Some(user.id),
                )
                .await?;
        }
        Some(IssueStatus::Unresolved) => {
            app.store
                .set_issue_status(issue_id, IssueStatus::Unresolved, Some(user.id))
                .await?;
        }
        None => {
            return Err(WebError::BadRequest(format!(
                "unknown status {:?}",
                form.status
            )));
        }
    }
    Ok(Redirect::to(&format!("/issues/{issue_id}")).into_response())
}

async fn delete_issue(
    State(app): State<AppState>,
    user: CurrentUser,
    Path(issue_id): Path<i64>,
    Form(form): Form<CsrfForm>,
) -> WebResult {
    if !user.check_csrf(&app.signing_key, &form.csrf) {
        return Err(WebError::Csrf);
    }
    let (issue, _) = issue_for(&app, &user, issue_id).await?;
    require_manager(&app, &user).await?;
    app.store.delete_issue(issue_id).await?;
    Ok(Redirect::to(&format!("/projects/{}/issues", issue.project_id)).into_response())
}

#[derive(Deserialize)]
struct AssignForm {
    csrf: String,
    /// A user id, or empty to unassign.
    assignee: String,
}

async fn assign(
    State(app): State<AppState>,
    user: CurrentUser,
    Path(issue_id): Path<i64>,
    Form(form): Form<AssignForm>,
) -> WebResult {
    if !user.check_csrf(&app.signing_key, &form.csrf) {
        return Err(WebError::Csrf);
    }
    issue_for(&app, &user, issue_id).await?;
    let assignee = match form.assignee.trim() {
        "" => None,
        "me" => Some(user.id),
        id => Some(
            id.parse::<i64>()
                .map_err(|_| WebError::BadRequest(format!("unknown user {id:?}")))?,
        ),
    };
    app.store
        .assign_issue(issue_id, assignee, Some(user.id))
        .await
        .map_err(|e| match e {
            StoreError::NotFound => WebError::BadRequest("no such active user".into()),
            e => e.into(),
        })?;
    Ok(Redirect::to(&format!("/issues/{issue_id}")).into_response())
}

#[derive(Deserialize)]
struct CommentForm {
    csrf: String,
    text: String,
}

async fn comment(
    State(app): State<AppState>,
    user: CurrentUser,
    Path(issue_id): Path<i64>,
    Form(form): Form<CommentForm>,
) -> WebResult {
    if !user.check_csrf(&app.signing_key, &form.csrf) {
        return Err(WebError::Csrf);
    }
    issue_for(&app, &user, issue_id).await?;
    let text = form.text.trim();
    if text.is_empty() {
        return Err(WebError::BadRequest("the comment is empty".into()));
    }
    if text.len() > 10_000 {
        return Err(WebError::BadRequest(
            "comments are limited to 10,000 characters".into(),
        ));
    }
    app.store.add_comment(issue_id, user.id, text).await?;
    Ok(Redirect::to(&format!("/issues/{issue_id}#activity")).into_response())
}
