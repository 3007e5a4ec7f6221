//! Project creation and settings: name, platform, DSN keys (create, revoke,
//! rotate, rate limit), fingerprint rules, setup snippet, alert rules,
//! webhooks, and the alert deliveries page.

use super::access::{project_for, require_manager};
use super::auth::CurrentUser;
use super::{WebError, WebResult, render};
use crate::app::AppState;
use crate::store::alerts::{ALERT_KINDS, AlertDelivery, AlertRule, LEVELS, WebhookRow};
use crate::store::{ProjectKeyRow, ProjectRow, ScrubSettings, StoreError};
use askama::Template;
use axum::Router;
use axum::extract::{Form, Path, Query, RawForm, State};
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
        .route(
            "/projects/{project_id}/stack-rules",
            post(update_stack_rules),
        )
        .route(
            "/projects/{project_id}/alert-rules",
            post(update_alert_rules),
        )
        .route("/projects/{project_id}/webhooks", post(create_webhook))
        .route(
            "/projects/{project_id}/webhooks/{webhook_id}",
            post(update_webhook),
        )
        .route("/projects/{project_id}/alerts", get(deliveries_page))
}

struct KeyView {
    key: ProjectKeyRow,
    dsn: String,
    /// "active", "revoked", "expired", or how long a rotated key lasts.
    state: String,
}

fn key_state(key: &ProjectKeyRow) -> String {
    if !key.is_active {
        return "revoked".into();
    }
    match (key.rotated_at, key.expires_at) {
        (_, Some(t)) if t <= chrono::Utc::now() => "expired".into(),
        (_, Some(t)) => format!("replaced; works until {}", t.format("%Y-%m-%d %H:%M UTC")),
        (Some(_), None) => "replaced; works until revoked".into(),
        (None, None) => "active".into(),
    }
}

/// One alert rule as the settings form shows it.
struct RuleView {
    kind: &'static str,
    title: &'static str,
    enabled: bool,
    min_level: String,
    environment: String,
    threshold: i64,
    window_minutes: i32,
}

fn rule_title(kind: &str) -> &'static str {
    match kind {
        "new_issue" => "A new issue is created",
        "regression" => "A resolved issue is seen again (regression)",
        "escalating" => "An ignored issue wakes up (escalating)",
        _ => "An issue is seen more than N times in M minutes",
    }
}

fn rule_views(rules: Vec<AlertRule>) -> Vec<RuleView> {
    rules
        .into_iter()
        .filter_map(|r| {
            let kind = *ALERT_KINDS.iter().find(|k| **k == r.kind)?;
            Some(RuleView {
                kind,
                title: rule_title(kind),
                enabled: r.enabled,
                min_level: r.min_level.unwrap_or_default(),
                environment: r.environment.unwrap_or_default(),
                threshold: r.threshold,
                window_minutes: r.window_minutes,
            })
        })
        .collect()
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
    stack_rules: String,
    stack_rules_error: Option<String>,
    /// The grouping config's own stack-trace rules, shown for reference.
    builtin_stack_rules: &'static str,
    notice: Option<String>,
    deliveries: Vec<AlertDelivery>,
    rules_alerts: Vec<RuleView>,
    levels: [&'static str; 5],
    webhooks: Vec<WebhookRow>,
    alert_error: Option<String>,
    email_on: bool,
    /// Owners and admins; only they see webhook secrets.
    is_manager: bool,
    retention: super::retention::RetentionView,
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

/// Rules text the user submitted and why it was refused, shown again for editing.
enum RulesOverride {
    Fingerprint(String, String),
    Stack(String, String),
}

async fn page(
    app: &AppState,
    user: CurrentUser,
    project_id: i64,
    rules_override: Option<RulesOverride>,
    notice: Option<String>,
) -> WebResult {
    page_with(app, user, project_id, rules_override, notice, None).await
}

async fn page_with(
    app: &AppState,
    user: CurrentUser,
    project_id: i64,
    rules_override: Option<RulesOverride>,
    notice: Option<String>,
    alert_error: Option<String>,
) -> WebResult {
    let project = project_for(app, &user, project_id).await?;
    let keys: Vec<KeyView> = app
        .store
        .project_keys(project_id)
        .await?
        .into_iter()
        .map(|key| KeyView {
            dsn: app.config.dsn(&key.public_key, project_id),
            state: key_state(&key),
            key,
        })
        .collect();
    let snippet = keys
        .iter()
        .find(|k| k.key.is_usable() && k.key.rotated_at.is_none())
        .or_else(|| keys.iter().find(|k| k.key.is_usable()))
        .map(|k| python_snippet(&k.dsn))
        .unwrap_or_default();
    let (mut rules, mut rules_error) = (project.fingerprint_rules.clone(), None);
    let (mut stack_rules, mut stack_rules_error) = (project.stack_rules.clone(), None);
    match rules_override {
        Some(RulesOverride::Fingerprint(text, error)) => (rules, rules_error) = (text, Some(error)),
        Some(RulesOverride::Stack(text, error)) => {
            (stack_rules, stack_rules_error) = (text, Some(error))
        }
        None => {}
    }
    let builtin_stack_rules = crate::grouping::GroupingConfig::by_id(&project.grouping_config)
        .map_or("", |c| crate::grouping::builtin_stack_rules(&c));
    let deliveries = app.store.alert_deliveries(project_id, None, 10).await?;
    let rules_alerts = rule_views(app.store.alert_rules(project_id).await?);
    let webhooks = app.store.webhooks(project_id).await?;
    let is_manager = user.is_admin || app.store.is_org_manager(user.id).await?;
    let retention = super::retention::view(app, project_id).await?;
    render(SettingsPage {
        is_manager,
        user,
        project,
        keys,
        snippet,
        rules,
        rules_error,
        stack_rules,
        stack_rules_error,
        builtin_stack_rules,
        notice,
        deliveries,
        rules_alerts,
        levels: LEVELS,
        webhooks,
        alert_error,
        email_on: crate::alerts::email_configured(),
        retention,
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
    /// "revoke", "enable", "rotate" or "rate_limit".
    action: String,
    rate_limit: Option<String>,
    /// For "rotate": how long the old key keeps working: "1h", "24h",
    /// "7d", "30d" or "revoke" (until revoked by hand).
    grace: Option<String>,
}

fn grace_secs(value: Option<&str>) -> WebResult<Option<i64>> {
    Ok(match value.unwrap_or("24h") {
        "0" | "now" => Some(0),
        "1h" => Some(3600),
        "" | "24h" => Some(86_400),
        "7d" => Some(7 * 86_400),
        "30d" => Some(30 * 86_400),
        "revoke" | "never" => None,
        other => {
            return Err(WebError::BadRequest(format!(
                "unknown grace period {other:?}"
            )));
        }
    })
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
        "rotate" => {
            let grace = grace_secs(form.grace.as_deref())?;
            let (new, old) = app
                .store
                .rotate_key(project_id, key_id, grace)
                .await
                .map_err(|e| match e {
                    StoreError::Conflict(m) => WebError::BadRequest(m),
                    e => e.into(),
                })?;
            app.keys.invalidate(&old).await;
            let notice = format!(
                "New key created: {}. The old key {}.",
                app.config.dsn(&new.public_key, project_id),
                match grace {
                    Some(0) => "stopped working".to_string(),
                    Some(secs) if secs < 86_400 =>
                        format!("works for {} more hour(s)", secs / 3600),
                    Some(secs) => format!("works for {} more day(s)", secs / 86_400),
                    None => "works until you revoke it".to_string(),
                }
            );
            return page(&app, user, project_id, None, Some(notice)).await;
        }
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
        return page(
            &app,
            user,
            project_id,
            Some(RulesOverride::Fingerprint(rules, message)),
            None,
        )
        .await;
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
struct StackRulesForm {
    csrf: String,
    stack_rules: String,
}

async fn update_stack_rules(
    State(app): State<AppState>,
    user: CurrentUser,
    Path(project_id): Path<i64>,
    Form(form): Form<StackRulesForm>,
) -> WebResult {
    may_change(&app, &user, &form.csrf, Some(project_id)).await?;
    let rules = form.stack_rules.replace("\r\n", "\n");
    if let Err(e) = crate::grouping::StackRules::parse(&rules) {
        let message = format!("line {}: {}", e.line, e.message);
        let retry = Some(RulesOverride::Stack(rules, message));
        return page(&app, user, project_id, retry, None).await;
    }
    app.store.set_stack_rules(project_id, &rules).await?;
    app.keys.invalidate_all();
    page(
        &app,
        user,
        project_id,
        None,
        Some("Stack trace rules saved; they apply to new events.".into()),
    )
    .await
}

/// Reads the alert rules form: `<kind>_enabled` (checkbox),
/// `<kind>_min_level`, `<kind>_environment`, and for frequency
/// `frequency_threshold` and `frequency_window`.
fn parse_alert_rules(fields: &[(String, String)]) -> Result<Vec<AlertRule>, String> {
    let get = |name: &str| {
        fields
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.trim().to_string())
            .filter(|v| !v.is_empty())
    };
    let mut rules = Vec::new();
    for kind in ALERT_KINDS {
        let mut rule = AlertRule::default_for(kind);
        rule.enabled = get(&format!("{kind}_enabled")).is_some();
        rule.min_level = match get(&format!("{kind}_min_level")) {
            Some(level) if LEVELS.contains(&level.as_str()) => Some(level),
            Some(level) => return Err(format!("unknown level {level:?}")),
            None => None,
        };
        rule.environment = get(&format!("{kind}_environment"));
        if rule.environment.as_ref().is_some_and(|e| e.len() > 200) {
            return Err("environment names are at most 200 characters".into());
        }
        if kind == "frequency" {
            if let Some(n) = get("frequency_threshold") {
                rule.threshold = n
                    .parse()
                    .ok()
                    .filter(|n| (1..=1_000_000).contains(n))
                    .ok_or("the event count must be a number from 1 to 1,000,000")?;
            }
            if let Some(m) = get("frequency_window") {
                rule.window_minutes = m
                    .parse()
                    .ok()
                    .filter(|m| (1..=10_080).contains(m))
                    .ok_or("the window must be from 1 to 10,080 minutes (a week)")?;
            }
        }
        rules.push(rule);
    }
    Ok(rules)
}

fn form_fields(body: &[u8]) -> Vec<(String, String)> {
    form_urlencoded::parse(body)
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect()
}

fn field<'a>(fields: &'a [(String, String)], name: &str) -> &'a str {
    fields
        .iter()
        .find(|(k, _)| k == name)
        .map_or("", |(_, v)| v.as_str())
}

async fn update_alert_rules(
    State(app): State<AppState>,
    user: CurrentUser,
    Path(project_id): Path<i64>,
    RawForm(body): RawForm,
) -> WebResult {
    let fields = form_fields(&body);
    may_change(&app, &user, field(&fields, "csrf"), Some(project_id)).await?;
    let rules = match parse_alert_rules(&fields) {
        Ok(rules) => rules,
        Err(message) => {
            let response = page_with(&app, user, project_id, None, None, Some(message)).await?;
            return Ok((axum::http::StatusCode::BAD_REQUEST, response).into_response());
        }
    };
    for rule in &rules {
        app.store.set_alert_rule(project_id, rule).await?;
    }
    page(
        &app,
        user,
        project_id,
        None,
        Some("Alert rules saved.".into()),
    )
    .await
}

#[derive(Deserialize)]
struct WebhookForm {
    csrf: String,
    url: String,
}

async fn create_webhook(
    State(app): State<AppState>,
    user: CurrentUser,
    Path(project_id): Path<i64>,
    Form(form): Form<WebhookForm>,
) -> WebResult {
    may_change(&app, &user, &form.csrf, Some(project_id)).await?;
    let url = form.url.trim();
    if let Err(message) = crate::alerts::webhook::validate_url(url) {
        let response = page_with(&app, user, project_id, None, None, Some(message)).await?;
        return Ok((axum::http::StatusCode::BAD_REQUEST, response).into_response());
    }
    app.store.create_webhook(project_id, url).await?;
    page(
        &app,
        user,
        project_id,
        None,
        Some("Webhook added; it receives this project's alerts from now on.".into()),
    )
    .await
}

#[derive(Deserialize)]
struct WebhookUpdateForm {
    csrf: String,
    /// "enable", "disable" or "delete".
    action: String,
}

async fn update_webhook(
    State(app): State<AppState>,
    user: CurrentUser,
    Path((project_id, webhook_id)): Path<(i64, i64)>,
    Form(form): Form<WebhookUpdateForm>,
) -> WebResult {
    may_change(&app, &user, &form.csrf, Some(project_id)).await?;
    match form.action.as_str() {
        "enable" => {
            app.store
                .set_webhook_enabled(project_id, webhook_id, true)
                .await?
        }
        "disable" => {
            app.store
                .set_webhook_enabled(project_id, webhook_id, false)
                .await?
        }
        "delete" => app.store.delete_webhook(project_id, webhook_id).await?,
        other => {
            return Err(WebError::BadRequest(format!(
                "unknown webhook action {other:?}"
            )));
        }
    }
    Ok(Redirect::to(&format!("/projects/{project_id}/settings#webhooks")).into_response())
}

#[derive(Deserialize, Default)]
struct DeliveriesQuery {
    #[serde(default)]
    state: String,
}

/// States the deliveries page filters by.
const DELIVERY_STATES: [&str; 7] = [
    "pending",
    "retrying",
    "sent",
    "failed",
    "suppressed",
    "filtered",
    "skipped",
];

#[derive(Template)]
#[template(path = "alerts.html")]
struct DeliveriesPage {
    user: CurrentUser,
    project: ProjectRow,
    deliveries: Vec<AlertDelivery>,
    state: String,
    states: [&'static str; 7],
    email_on: bool,
}

/// Recent alert deliveries of a project: where each went, and for those
/// retrying or failed, the SMTP or HTTP error. Anyone who sees the project
/// may look.
async fn deliveries_page(
    State(app): State<AppState>,
    user: CurrentUser,
    Path(project_id): Path<i64>,
    Query(q): Query<DeliveriesQuery>,
) -> WebResult {
    let project = project_for(&app, &user, project_id).await?;
    let state = q.state.trim();
    if !state.is_empty() && !DELIVERY_STATES.contains(&state) {
        return Err(WebError::BadRequest(format!("unknown state {state:?}")));
    }
    let deliveries = app
        .store
        .alert_deliveries(project_id, Some(state).filter(|s| !s.is_empty()), 200)
        .await?;
    render(DeliveriesPage {
        user,
        project,
        deliveries,
        state: state.to_string(),
        states: DELIVERY_STATES,
        email_on: crate::alerts::email_configured(),
    })
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
    use super::*;

    fn fields(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn alert_rules_form_reads_checkboxes_filters_and_frequency() {
        let rules = parse_alert_rules(&fields(&[
            ("new_issue_enabled", "on"),
            ("new_issue_min_level", "error"),
            ("new_issue_environment", " prod "),
            ("frequency_enabled", "on"),
            ("frequency_threshold", "25"),
            ("frequency_window", "10"),
        ]))
        .unwrap();
        assert_eq!(rules.len(), 4);
        assert!(rules[0].enabled);
        assert_eq!(rules[0].min_level.as_deref(), Some("error"));
        assert_eq!(rules[0].environment.as_deref(), Some("prod"));
        assert!(!rules[1].enabled, "an unticked box turns the rule off");
        assert_eq!((rules[3].threshold, rules[3].window_minutes), (25, 10));
        assert!(parse_alert_rules(&fields(&[("regression_min_level", "loud")])).is_err());
        assert!(parse_alert_rules(&fields(&[("frequency_threshold", "0")])).is_err());
        assert!(parse_alert_rules(&fields(&[("frequency_window", "x")])).is_err());
    }

    #[test]
    fn grace_periods() {
        assert_eq!(grace_secs(None).unwrap(), Some(86_400));
        assert_eq!(grace_secs(Some("7d")).unwrap(), Some(604_800));
        assert_eq!(grace_secs(Some("revoke")).unwrap(), None);
        assert!(grace_secs(Some("1y")).is_err());
    }

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
