//! Project creation and settings: name, platform, DSN keys (create, revoke,
//! rate limit), fingerprint rules, setup snippet, recent alert deliveries.

use super::access::{project_for, require_manager};
use super::auth::CurrentUser;
use super::{WebError, WebResult, render};
use crate::app::AppState;
use crate::store::alerts::AlertDelivery;
use crate::store::{ProjectKeyRow, ProjectRow, ScrubSettings};
use askama::Template;
use axum::Router;
use axum::extract::{Form, Path, State};
use axum::response::{IntoResponse, Redirect};
use axum::routing::{get, post};
use serde::Deserialize;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/projects/new", get(new_project_page).post(create_project))
        .route(
            "/projects/{project_id}/settings",
            get(settings_page).post(update_project),
        )
        .route("/projects/{project_id}/keys", post(create_key))
        .route("/projects/{project_id}/keys/{key_id}", post(update_key))
        .route("/projects/{project_id}/rules", post(update_rules))
        .route("/projects/{project_id}/scrubbing", post(update_scrubbing))
}

struct KeyView {
    key: ProjectKeyRow,
    dsn: String,
}

#[derive(Template)]
#[template(path = "settings.html")]
struct SettingsPage {
    user: CurrentUser,
    project: ProjectRow,
    keys: Vec<KeyView>,
    snippet: String,
    rules: String,
    rules_error: Option<String>,
    notice: Option<String>,
    deliveries: Vec<AlertDelivery>,
}

#[derive(Template)]
#[template(path = "project_new.html")]
struct NewProjectPage {
    user: CurrentUser,
    error: Option<String>,
}

fn python_snippet(dsn: &str) -> String {
    format!(
        "import sentry_sdk\n\nsentry_sdk.init(\n    dsn=\"{dsn}\",\n    send_default_pii=False,\n)\n"
    )
}

async fn page(
    app: &AppState,
    user: CurrentUser,
    project_id: i64,
    rules_override: Option<(String, String)>,
    notice: Option<String>,
) -> WebResult {
    let project = project_for(app, &user, project_id).await?;
    let keys: Vec<KeyView> = app
        .store
        .project_keys(project_id)
        .await?
        .into_iter()
        .map(|key| KeyView {
            dsn: app.config.dsn(&key.public_key, project_id),
            key,
        })
        .collect();
    let snippet = keys
        .iter()
        .find(|k| k.key.is_active)
        .map(|k| python_snippet(&k.dsn))
        .unwrap_or_default();
    let (rules, rules_error) = match rules_override {
        Some((text, error)) => (text, Some(error)),
        None => (project.fingerprint_rules.clone(), None),
    };
    let deliveries = app.store.alert_deliveries(project_id, 20).await?;
    render(SettingsPage {
        user,
        project,
        keys,
        snippet,
        rules,
        rules_error,
        notice,
        deliveries,
    })
}

/// Every settings change: a valid form, a project the user can see, and
/// an owner or admin role.
async fn may_change(
    app: &AppState,
    user: &CurrentUser,
    token: &str,
    project_id: Option<i64>,
) -> Result<(), WebError> {
    if !user.check_csrf(&app.signing_key, token) {
        return Err(WebError::Csrf);
    }
    if let Some(id) = project_id {
        project_for(app, user, id).await?;
    }
    require_manager(app, user).await
}

async fn settings_page(
    State(app): State<AppState>,
    user: CurrentUser,
    Path(project_id): Path<i64>,
) -> WebResult {
    page(&app, user, project_id, None, None).await
}

async fn new_project_page(State(app): State<AppState>, user: CurrentUser) -> WebResult {
    require_manager(&app, &user).await?;
    render(NewProjectPage { user, error: None })
}

#[derive(Deserialize)]
struct ProjectForm {
    csrf: String,
    name: String,
    platform: Option<String>,
}

fn platform(value: Option<&str>) -> Option<&str> {
    value.map(str::trim).filter(|p| !p.is_empty())
}

async fn create_project(
    State(app): State<AppState>,
    user: CurrentUser,
    Form(form): Form<ProjectForm>,
) -> WebResult {
    may_change(&app, &user, &form.csrf, None).await?;
    if form.name.trim().is_empty() {
        return render(NewProjectPage {
            user,
            error: Some("The project needs a name.".into()),
        });
    }
    let (project, _) = app
        .store
        .create_project(form.name.trim(), platform(form.platform.as_deref()))
        .await?;
    Ok(Redirect::to(&format!("/projects/{}/settings", project.id)).into_response())
}

async fn update_project(
    State(app): State<AppState>,
    user: CurrentUser,
    Path(project_id): Path<i64>,
    Form(form): Form<ProjectForm>,
) -> WebResult {
    may_change(&app, &user, &form.csrf, Some(project_id)).await?;
    let name = form.name.trim();
    if name.is_empty() {
        return Err(WebError::BadRequest(
            "the project name must not be empty".into(),
        ));
    }
    app.store
        .update_project(project_id, name, platform(form.platform.as_deref()))
        .await?;
    app.keys.invalidate_all();
    page(&app, user, project_id, None, Some("Project saved.".into())).await
}

#[derive(Deserialize)]
struct KeyForm {
    csrf: String,
    label: Option<String>,
}

async fn create_key(
    State(app): State<AppState>,
    user: CurrentUser,
    Path(project_id): Path<i64>,
    Form(form): Form<KeyForm>,
) -> WebResult {
    may_change(&app, &user, &form.csrf, Some(project_id)).await?;
    let label = form
        .label
        .as_deref()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .unwrap_or("Default");
    app.store.create_key(project_id, label).await?;
    Ok(Redirect::to(&format!("/projects/{project_id}/settings")).into_response())
}

#[derive(Deserialize)]
struct KeyUpdateForm {
    csrf: String,
    /// "revoke", "enable" or "rate_limit".
    action: String,
    rate_limit: Option<String>,
}

async fn update_key(
    State(app): State<AppState>,
    user: CurrentUser,
    Path((project_id, key_id)): Path<(i64, i64)>,
    Form(form): Form<KeyUpdateForm>,
) -> WebResult {
    may_change(&app, &user, &form.csrf, Some(project_id)).await?;
    let public_key = match form.action.as_str() {
        "revoke" => app.store.set_key_active(project_id, key_id, false).await?,
        "enable" => app.store.set_key_active(project_id, key_id, true).await?,
        "rate_limit" => {
            let limit = match form
                .rate_limit
                .as_deref()
                .map(str::trim)
                .filter(|v| !v.is_empty())
            {
                None => None,
                Some(v) => Some(v.parse::<i32>().ok().filter(|n| *n >= 0).ok_or_else(|| {
                    WebError::BadRequest(format!("{v:?} is not a number of events per minute"))
                })?),
            };
            app.store
                .set_key_rate_limit(project_id, key_id, limit.filter(|n| *n > 0))
                .await?
        }
        other => {
            return Err(WebError::BadRequest(format!(
                "unknown key action {other:?}"
            )));
        }
    };
    // Ingest caches keys; a revoked key must stop working now, not in a minute.
    app.keys.invalidate(&public_key).await;
    Ok(Redirect::to(&format!("/projects/{project_id}/settings")).into_response())
}

#[derive(Deserialize)]
struct RulesForm {
    csrf: String,
    rules: String,
}

async fn update_rules(
    State(app): State<AppState>,
    user: CurrentUser,
    Path(project_id): Path<i64>,
    Form(form): Form<RulesForm>,
) -> WebResult {
    may_change(&app, &user, &form.csrf, Some(project_id)).await?;
    let rules = form.rules.replace("\r\n", "\n");
    if let Err(e) = crate::grouping::FingerprintRules::parse(&rules) {
        let message = format!("line {}: {}", e.line, e.message);
        return page(&app, user, project_id, Some((rules, message)), None).await;
    }
    app.store.set_fingerprint_rules(project_id, &rules).await?;
    app.keys.invalidate_all();
    page(
        &app,
        user,
        project_id,
        None,
        Some("Fingerprint rules saved; they apply to new events.".into()),
    )
    .await
}

#[derive(Deserialize)]
struct ScrubForm {
    csrf: String,
    /// Checkboxes: present ("on") when ticked.
    scrub_data: Option<String>,
    scrub_defaults: Option<String>,
    scrub_ip: Option<String>,
    #[serde(default)]
    sensitive_fields: String,
    #[serde(default)]
    safe_fields: String,
}

const MAX_SCRUB_FIELDS: usize = 100;
const MAX_SCRUB_FIELD_CHARS: usize = 100;

/// One field name per line (or comma-separated), as Sentry's settings take
/// them; blank entries and duplicates dropped.
fn field_list(text: &str, what: &str) -> Result<Vec<String>, WebError> {
    let mut out: Vec<String> = Vec::new();
    for name in text
        .split(['\n', ','])
        .map(str::trim)
        .filter(|n| !n.is_empty())
    {
        if name.chars().count() > MAX_SCRUB_FIELD_CHARS || name.chars().any(char::is_control) {
            return Err(WebError::BadRequest(format!(
                "{what}: {name:?} is not a field name (at most {MAX_SCRUB_FIELD_CHARS} characters)"
            )));
        }
        if !out.iter().any(|n| n.eq_ignore_ascii_case(name)) {
            out.push(name.to_string());
        }
    }
    if out.len() > MAX_SCRUB_FIELDS {
        return Err(WebError::BadRequest(format!(
            "{what}: at most {MAX_SCRUB_FIELDS} names"
        )));
    }
    Ok(out)
}

async fn update_scrubbing(
    State(app): State<AppState>,
    user: CurrentUser,
    Path(project_id): Path<i64>,
    Form(form): Form<ScrubForm>,
) -> WebResult {
    may_change(&app, &user, &form.csrf, Some(project_id)).await?;
    let settings = ScrubSettings {
        enabled: form.scrub_data.is_some(),
        defaults: form.scrub_defaults.is_some(),
        scrub_ip: form.scrub_ip.is_some(),
        sensitive_fields: field_list(&form.sensitive_fields, "additional sensitive fields")?,
        safe_fields: field_list(&form.safe_fields, "safe fields")?,
    };
    app.store.set_scrub_settings(project_id, &settings).await?;
    // Ingest caches project settings with the key; new events must be
    // scrubbed the new way now, not in a minute.
    app.keys.invalidate_all();
    page(
        &app,
        user,
        project_id,
        None,
        Some("Data scrubbing saved; it applies to new events.".into()),
    )
    .await
}

#[cfg(test)]
mod tests {
    use super::field_list;

    #[test]
    fn field_lists_split_trim_and_dedupe() {
        assert_eq!(
            field_list(" ssn\r\nIBAN, iban\n\n,card_cvc ", "x").unwrap(),
            ["ssn", "IBAN", "card_cvc"]
        );
        assert!(field_list("", "x").unwrap().is_empty());
        assert!(field_list(&"a".repeat(101), "x").is_err());
        assert!(field_list("a\u{7}b", "x").is_err());
        let many: Vec<String> = (0..101).map(|i| format!("f{i}")).collect();
        assert!(field_list(&many.join("\n"), "x").is_err());
    }
}
