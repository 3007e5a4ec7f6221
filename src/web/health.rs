//! Project pages for what SDKs report besides errors: release health from
//! sessions, cron monitors from check-ins, and dropped events from client
//! reports.

use super::access::project_for;
use super::auth::CurrentUser;
use super::{WebResult, ago, render};
use crate::app::AppState;
use crate::store::{MonitorRow, ProjectRow};
use askama::Template;
use axum::Router;
use axum::extract::{Path, State};
use axum::routing::get;

/// How far back the release-health and dropped-event tables look.
const WINDOW_DAYS: i32 = 30;
const RECENT_CHECK_INS: i64 = 50;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/projects/{project_id}/health", get(release_health))
        .route("/projects/{project_id}/monitors", get(monitors))
        .route("/projects/{project_id}/outcomes", get(outcomes))
}

pub struct ReleaseView {
    release: String,
    /// `release:"…"` for the issue search, URL-encoded.
    release_query: String,
    environment: String,
    total: i64,
    errored: i64,
    crashed: i64,
    abnormal: i64,
    /// "97.5%", or "—" when no session was opened in the window.
    crash_free: String,
    /// A CSS class by how healthy the release is.
    health: &'static str,
    last_seen: String,
}

#[derive(Template)]
#[template(path = "health.html")]
struct HealthPage {
    user: CurrentUser,
    project: ProjectRow,
    days: i32,
    releases: Vec<ReleaseView>,
}

async fn release_health(
    State(app): State<AppState>,
    user: CurrentUser,
    Path(project_id): Path<i64>,
) -> WebResult {
    let project = project_for(&app, &user, project_id).await?;
    let releases = app
        .store
        .release_health(project_id, WINDOW_DAYS)
        .await?
        .into_iter()
        .map(|r| {
            let rate = r.crash_free_percent();
            ReleaseView {
                crash_free: rate.map_or_else(|| "—".into(), format_percent),
                health: match rate {
                    None => "",
                    Some(p) if p >= 99.0 => "healthy",
                    Some(p) if p >= 90.0 => "degraded",
                    Some(_) => "unhealthy",
                },
                last_seen: ago(r.last_hour),
                release_query: form_urlencoded::byte_serialize(
                    format!("release:\"{}\"", r.release).as_bytes(),
                )
                .collect(),
                release: r.release,
                environment: r.environment,
                total: r.total,
                errored: r.errored,
                crashed: r.crashed,
                abnormal: r.abnormal,
            }
        })
        .collect();
    render(HealthPage {
        user,
        project,
        days: WINDOW_DAYS,
        releases,
    })
}

/// One decimal, without a trailing ".0" hiding a real 99.95 → "100%".
fn format_percent(p: f64) -> String {
    let rounded = (p * 10.0).floor() / 10.0;
    if rounded.fract() == 0.0 {
        format!("{rounded:.0}%")
    } else {
        format!("{rounded:.1}%")
    }
}

pub struct MonitorView {
    slug: String,
    status: String,
    last_check_in: String,
    schedule: String,
    check_ins: i64,
    failures: i64,
}

pub struct CheckInView {
    monitor: String,
    status: String,
    duration: String,
    environment: String,
    when: String,
}

#[derive(Template)]
#[template(path = "monitors.html")]
struct MonitorsPage {
    user: CurrentUser,
    project: ProjectRow,
    monitors: Vec<MonitorView>,
    check_ins: Vec<CheckInView>,
}

fn monitor_view(m: MonitorRow) -> MonitorView {
    MonitorView {
        slug: m.slug,
        status: m.last_status.unwrap_or_else(|| "unknown".into()),
        last_check_in: m.last_check_in.map(ago).unwrap_or_default(),
        schedule: m.schedule.unwrap_or_default(),
        check_ins: m.check_ins,
        failures: m.failures,
    }
}

fn format_duration(secs: Option<f64>) -> String {
    match secs {
        None => String::new(),
        Some(s) if s < 1.0 => format!("{:.0} ms", s * 1000.0),
        Some(s) if s < 120.0 => format!("{s:.1} s"),
        Some(s) => format!("{:.1} min", s / 60.0),
    }
}

async fn monitors(
    State(app): State<AppState>,
    user: CurrentUser,
    Path(project_id): Path<i64>,
) -> WebResult {
    let project = project_for(&app, &user, project_id).await?;
    let monitors = app
        .store
        .monitors(project_id)
        .await?
        .into_iter()
        .map(monitor_view)
        .collect();
    let check_ins = app
        .store
        .recent_check_ins(project_id, RECENT_CHECK_INS)
        .await?
        .into_iter()
        .map(|c| CheckInView {
            monitor: c.monitor_slug,
            status: c.status,
            duration: format_duration(c.duration),
            environment: c.environment.unwrap_or_default(),
            when: ago(c.created_at),
        })
        .collect();
    render(MonitorsPage {
        user,
        project,
        monitors,
        check_ins,
    })
}

pub struct OutcomeView {
    outcome: &'static str,
    reason: String,
    category: String,
    quantity: i64,
    last_seen: String,
}

#[derive(Template)]
#[template(path = "outcomes.html")]
struct OutcomesPage {
    user: CurrentUser,
    project: ProjectRow,
    days: i32,
    outcomes: Vec<OutcomeView>,
    total: i64,
}

/// Client-report outcome codes in words a user understands.
fn outcome_label(outcome: &str) -> &'static str {
    match outcome {
        "client_discard" => "discarded by the SDK",
        "rate_limited" => "rate limited",
        "filtered" => "filtered",
        "filtered_sampling" => "dropped by sampling",
        "invalid" => "invalid",
        "accepted" => "accepted",
        _ => "other",
    }
}

async fn outcomes(
    State(app): State<AppState>,
    user: CurrentUser,
    Path(project_id): Path<i64>,
) -> WebResult {
    let project = project_for(&app, &user, project_id).await?;
    let rows = app.store.outcomes(project_id, WINDOW_DAYS).await?;
    let total = rows.iter().map(|r| r.quantity).sum();
    let outcomes = rows
        .into_iter()
        .map(|r| OutcomeView {
            outcome: outcome_label(&r.outcome),
            reason: r.reason,
            category: r.category,
            quantity: r.quantity,
            last_seen: ago(r.last_hour),
        })
        .collect();
    render(OutcomesPage {
        user,
        project,
        days: WINDOW_DAYS,
        outcomes,
        total,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentages_never_round_up_to_perfect() {
        assert_eq!(format_percent(100.0), "100%");
        assert_eq!(format_percent(99.96), "99.9%");
        assert_eq!(format_percent(75.0), "75%");
        assert_eq!(format_percent(66.666), "66.6%");
    }

    #[test]
    fn durations() {
        assert_eq!(format_duration(None), "");
        assert_eq!(format_duration(Some(0.25)), "250 ms");
        assert_eq!(format_duration(Some(3.0)), "3.0 s");
        assert_eq!(format_duration(Some(600.0)), "10.0 min");
    }
}
