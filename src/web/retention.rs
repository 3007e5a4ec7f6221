//! The retention section of a project's settings: how long events are kept
//! and how many, over the instance defaults.

use super::access::{project_for, require_manager};
use super::auth::CurrentUser;
use super::{WebError, WebResult};
use crate::app::AppState;
use crate::store::retention::RetentionSettings;
use axum::Router;
use axum::extract::{Form, Path, State};
use axum::response::{IntoResponse, Redirect};
use axum::routing::post;
use serde::Deserialize;

pub fn router() -> Router<AppState> {
    Router::new().route("/projects/{project_id}/retention", post(update))
}

/// What the settings page shows: the project's own values (empty = the
/// instance default) and the defaults themselves.
pub struct RetentionView {
    pub days: String,
    pub max_events: String,
    pub default_days: String,
    pub default_max_events: String,
}

fn describe(limit: Option<i64>, unit: &str) -> String {
    match limit {
        Some(n) => format!("{n} {unit}"),
        None => "no limit".into(),
    }
}

pub async fn view(app: &AppState, project_id: i64) -> WebResult<RetentionView> {
    let own = app.store.retention_settings(project_id).await?;
    let policy = &app.config.retention;
    Ok(RetentionView {
        days: own
            .retention_days
            .map(|n| n.to_string())
            .unwrap_or_default(),
        max_events: own.max_events.map(|n| n.to_string()).unwrap_or_default(),
        default_days: describe(policy.days, "days"),
        default_max_events: describe(policy.max_events, "events"),
    })
}

#[derive(Deserialize)]
struct RetentionForm {
    csrf: String,
    retention_days: String,
    max_events: String,
}

/// Empty means "use the instance default"; 0 means "no limit".
fn parse_limit<T: std::str::FromStr + PartialOrd + Default>(
    text: &str,
    what: &str,
    max: T,
) -> Result<Option<T>, WebError> {
    let text = text.trim();
    if text.is_empty() {
        return Ok(None);
    }
    match text.parse::<T>() {
        Ok(n) if n >= T::default() && n <= max => Ok(Some(n)),
        _ => Err(WebError::BadRequest(format!(
            "{what} must be a whole number from 0 (no limit) upwards, or empty for the default; got {text:?}"
        ))),
    }
}

async fn update(
    State(app): State<AppState>,
    user: CurrentUser,
    Path(project_id): Path<i64>,
    Form(form): Form<RetentionForm>,
) -> WebResult {
    if !user.check_csrf(&app.signing_key, &form.csrf) {
        return Err(WebError::Csrf);
    }
    project_for(&app, &user, project_id).await?;
    require_manager(&app, &user).await?;
    let settings = RetentionSettings {
        retention_days: parse_limit(&form.retention_days, "Retention days", 36_500)?,
        max_events: parse_limit(&form.max_events, "The event cap", 1_000_000_000_000)?,
    };
    app.store
        .set_retention_settings(project_id, settings)
        .await?;
    Ok(Redirect::to(&format!("/projects/{project_id}/settings#retention")).into_response())
}

#[cfg(test)]
mod tests {
    use super::parse_limit;

    #[test]
    fn limits_parse_strictly() {
        assert_eq!(parse_limit::<i32>("", "x", 10).unwrap(), None);
        assert_eq!(parse_limit::<i32>(" 7 ", "x", 10).unwrap(), Some(7));
        assert_eq!(parse_limit::<i32>("0", "x", 10).unwrap(), Some(0));
        for bad in ["-1", "11", "1.5", "ten", "1e3"] {
            assert!(parse_limit::<i32>(bad, "x", 10).is_err(), "{bad}");
        }
    }
}
