//! Accounts: changing one's password; for owners and admins, managing users
//! (create, role, disable) and teams (members, owned projects).

use super::access::require_manager;
use super::auth::{self, CurrentUser};
use super::{WebError, WebResult, render};
use crate::app::AppState;
use crate::store::{InvitationRow, ProjectRow, ROLES, StoreError, TeamRow, UserRow};
use askama::Template;
use axum::Router;
use axum::extract::{Form, Path, RawForm, State};
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Redirect};
use axum::routing::{get, post};
use serde::Deserialize;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/account", get(account_page).post(change_password))
        .route("/account/sessions", post(end_other_sessions))
        .route("/account/alerts", post(set_alert_preferences))
        .route("/account/tokens", post(create_token))
        .route("/account/tokens/{token_id}/revoke", post(revoke_token))
        .route("/users", get(users_page).post(create_user))
        .route("/users/{user_id}", post(update_user))
        .route("/teams", get(teams_page).post(create_team))
        .route("/teams/{team_id}", post(update_team))
}

pub const MIN_PASSWORD_LEN: usize = 8;

fn check_csrf(app: &AppState, user: &CurrentUser, token: &str) -> WebResult<()> {
    if user.check_csrf(&app.signing_key, token) {
        Ok(())
    } else {
        Err(WebError::Csrf)
    }
}

pub(super) async fn hash(password: String) -> WebResult<String> {
    tokio::task::spawn_blocking(move || auth::hash_password(&password))
        .await
        .map_err(|_| WebError::BadRequest("could not hash the password".into()))?
        .map_err(|e| WebError::BadRequest(e.to_string()))
}

#[derive(Template)]
#[template(path = "account.html")]
struct AccountPage {
    user: CurrentUser,
    role: String,
    sessions: i64,
    error: Option<String>,
    notice: Option<String>,
    alerts_enabled: bool,
    /// (project id, name, alerts on) for every project the user sees.
    alert_projects: Vec<(i64, String, bool)>,
    tokens: Vec<crate::store::ApiTokenRow>,
    /// Every API scope, and whether the new-token form checks it.
    token_scopes: Vec<(&'static str, bool)>,
    /// A token just created: its secret is shown this once.
    new_token: Option<String>,
}

async fn account_render(
    app: &AppState,
    user: CurrentUser,
    error: Option<String>,
    notice: Option<String>,
) -> WebResult<AccountPage> {
    let (alerts_enabled, muted) = app.store.alert_preferences(user.id).await?;
    let alert_projects = super::access::visible_projects(app, &user)
        .await?
        .into_iter()
        .map(|p| (p.id, p.name, !muted.contains(&p.id)))
        .collect();
    Ok(AccountPage {
        role: app.store.org_role(user.id).await?.unwrap_or_default(),
        sessions: app.store.active_session_count(user.id).await?,
        tokens: app.store.api_tokens(user.id).await?,
        token_scopes: crate::api::auth::SCOPES
            .iter()
            .map(|s| (*s, crate::api::auth::DEFAULT_SCOPES.contains(s)))
            .collect(),
        new_token: None,
        user,
        error,
        notice,
        alerts_enabled,
        alert_projects,
    })
}

/// Creates an API token from the account page; the form repeats `scope`,
/// so the body is parsed by hand.
async fn create_token(
    State(app): State<AppState>,
    user: CurrentUser,
    RawForm(body): RawForm,
) -> WebResult {
    let mut csrf = String::new();
    let mut name = String::new();
    let mut scopes = Vec::new();
    for (k, v) in form_urlencoded::parse(&body) {
        match k.as_ref() {
            "csrf" => csrf = v.into_owned(),
            "name" => name = v.trim().to_string(),
            "scope" => scopes.push(v.into_owned()),
            _ => {}
        }
    }
    check_csrf(&app, &user, &csrf)?;
    let problem = if name.chars().count() > 100 {
        Some("The token name is limited to 100 characters.".to_string())
    } else {
        None
    };
    let scopes = match problem {
        Some(p) => Err(p),
        None => crate::api::auth::parse_scopes(scopes.iter().map(String::as_str)),
    };
    let scopes = match scopes {
        Ok(scopes) => scopes,
        Err(message) => {
            let page = account_render(&app, user, Some(message), None).await?;
            return Ok((StatusCode::BAD_REQUEST, Html(page.render()?)).into_response());
        }
    };
    let (token, row) = crate::api::auth::create_token(&app.store, user.id, &name, &scopes).await?;
    let notice = format!(
        "Created token {}.",
        if row.name.is_empty() {
            "…".to_string() + &row.token_last_chars
        } else {
            row.name.clone()
        }
    );
    let mut page = account_render(&app, user, None, Some(notice)).await?;
    page.new_token = Some(token);
    // The secret must not linger in caches or history.
    Ok((
        [(axum::http::header::CACHE_CONTROL, "no-store")],
        Html(page.render()?),
    )
        .into_response())
}

async fn revoke_token(
    State(app): State<AppState>,
    user: CurrentUser,
    Path(token_id): Path<i64>,
    Form(form): Form<CsrfOnly>,
) -> WebResult {
    check_csrf(&app, &user, &form.csrf)?;
    app.store.revoke_api_token(user.id, token_id).await?;
    Ok(Redirect::to("/account#api-tokens").into_response())
}

async fn account_page(State(app): State<AppState>, user: CurrentUser) -> WebResult {
    render(account_render(&app, user, None, None).await?)
}

#[derive(Deserialize)]
struct CsrfOnly {
    csrf: String,
}

async fn end_other_sessions(
    State(app): State<AppState>,
    user: CurrentUser,
    Form(form): Form<CsrfOnly>,
) -> WebResult {
    check_csrf(&app, &user, &form.csrf)?;
    let ended = app
        .store
        .end_other_sessions(user.id, &user.session_token_hash())
        .await?;
    let notice = format!("Logged out {ended} other session(s).");
    render(account_render(&app, user, None, Some(notice)).await?)
}

/// The form repeats `project` (one per ticked box), which serde's form
/// decoding cannot collect, so the body is parsed by hand.
async fn set_alert_preferences(
    State(app): State<AppState>,
    user: CurrentUser,
    RawForm(body): RawForm,
) -> WebResult {
    let mut csrf = String::new();
    let mut enabled = false;
    let mut on = Vec::new();
    for (k, v) in form_urlencoded::parse(&body) {
        match k.as_ref() {
            "csrf" => csrf = v.into_owned(),
            "alerts_enabled" => enabled = true,
            "project" => on.push(
                v.parse::<i64>()
                    .map_err(|_| WebError::BadRequest("bad project id".into()))?,
            ),
            _ => {}
        }
    }
    check_csrf(&app, &user, &csrf)?;
    let shown: Vec<i64> = super::access::visible_projects(&app, &user)
        .await?
        .iter()
        .map(|p| p.id)
        .collect();
    let muted: Vec<i64> = shown
        .iter()
        .copied()
        .filter(|id| !on.contains(id))
        .collect();
    app.store
        .set_alert_preferences(user.id, enabled, &shown, &muted)
        .await?;
    render(account_render(&app, user, None, Some("Alert settings saved.".into())).await?)
}

#[derive(Deserialize)]
struct PasswordForm {
    csrf: String,
    current: String,
    new: String,
    confirm: String,
}

async fn change_password(
    State(app): State<AppState>,
    user: CurrentUser,
    Form(form): Form<PasswordForm>,
) -> WebResult {
    check_csrf(&app, &user, &form.csrf)?;
    let row = app
        .store
        .user_by_id(user.id)
        .await?
        .ok_or(WebError::NotFound)?;
    let current = form.current;
    let stored = row.password_hash.clone();
    let ok = tokio::task::spawn_blocking(move || auth::verify_password(&current, &stored))
        .await
        .unwrap_or(false);
    let error = if !ok {
        Some("The current password is wrong.")
    } else if form.new.chars().count() < MIN_PASSWORD_LEN {
        Some("The new password needs at least 8 characters.")
    } else if form.new != form.confirm {
        Some("The new passwords do not match.")
    } else {
        None
    };
    if let Some(error) = error {
        let page = account_render(&app, user, Some(error.into()), None).await?;
        return Ok((StatusCode::BAD_REQUEST, Html(page.render()?)).into_response());
    }
    let new_hash = hash(form.new).await?;
    app.store
        .change_password(user.id, &new_hash, &user.session_token_hash())
        .await?;
    render(
        account_render(
            &app,
            user,
            None,
            Some("Password changed; your other sessions were logged out.".into()),
        )
        .await?,
    )
}

#[derive(Template)]
#[template(path = "users.html")]
struct UsersPage {
    user: CurrentUser,
    users: Vec<(UserRow, String)>,
    roles: [&'static str; 3],
    error: Option<String>,
    invitations: Vec<InvitationRow>,
    /// A freshly made reset or invitation link, shown once.
    link: Option<LinkNotice>,
    email_on: bool,
}

pub struct LinkNotice {
    pub text: String,
    pub link: String,
}

pub(super) async fn users_page_with(
    app: &AppState,
    user: CurrentUser,
    error: Option<String>,
    link: Option<LinkNotice>,
) -> WebResult {
    let status = if error.is_some() {
        StatusCode::BAD_REQUEST
    } else {
        StatusCode::OK
    };
    let page = UsersPage {
        users: app.store.list_users_with_roles().await?,
        invitations: app.store.pending_invitations().await?,
        user,
        roles: ROLES,
        error,
        link,
        email_on: crate::alerts::email_configured(),
    };
    Ok((status, Html(page.render()?)).into_response())
}

pub(super) async fn users_page_error(
    app: &AppState,
    user: CurrentUser,
    error: String,
) -> WebResult {
    users_page_with(app, user, Some(error), None).await
}

async fn users_page(State(app): State<AppState>, user: CurrentUser) -> WebResult {
    require_manager(&app, &user).await?;
    users_page_with(&app, user, None, None).await
}

#[derive(Deserialize)]
struct NewUserForm {
    csrf: String,
    email: String,
    password: String,
    role: String,
}

async fn create_user(
    State(app): State<AppState>,
    user: CurrentUser,
    Form(form): Form<NewUserForm>,
) -> WebResult {
    check_csrf(&app, &user, &form.csrf)?;
    require_manager(&app, &user).await?;
    let email = form.email.trim();
    let error = if !email.contains('@') || email.len() > 254 {
        Some("Enter an email address.".to_string())
    } else if form.password.chars().count() < MIN_PASSWORD_LEN {
        Some("The password needs at least 8 characters.".to_string())
    } else if !ROLES.contains(&form.role.as_str()) {
        Some(format!("Unknown role {:?}.", form.role))
    } else {
        None
    };
    let error = match error {
        Some(e) => Some(e),
        None => {
            let password_hash = hash(form.password).await?;
            match app
                .store
                .create_user(email, &password_hash, form.role == "owner")
                .await
            {
                Ok(id) => {
                    app.store.set_org_role(id, &form.role).await?;
                    None
                }
                Err(StoreError::Conflict(message)) => Some(message),
                Err(e) => return Err(e.into()),
            }
        }
    };
    if let Some(error) = error {
        return users_page_error(&app, user, error).await;
    }
    Ok(Redirect::to("/users").into_response())
}

#[derive(Deserialize)]
struct UserUpdateForm {
    csrf: String,
    /// "disable", "enable" or "role".
    action: String,
    role: Option<String>,
}

async fn update_user(
    State(app): State<AppState>,
    user: CurrentUser,
    Path(user_id): Path<i64>,
    Form(form): Form<UserUpdateForm>,
) -> WebResult {
    check_csrf(&app, &user, &form.csrf)?;
    require_manager(&app, &user).await?;
    if user_id == user.id {
        return Err(WebError::BadRequest(
            "you cannot disable yourself or change your own role".into(),
        ));
    }
    match form.action.as_str() {
        "disable" => app.store.set_user_active(user_id, false).await?,
        "enable" => app.store.set_user_active(user_id, true).await?,
        "role" => {
            let role = form.role.as_deref().unwrap_or("");
            if !ROLES.contains(&role) {
                return Err(WebError::BadRequest(format!("unknown role {role:?}")));
            }
            app.store
                .user_by_id(user_id)
                .await?
                .ok_or(WebError::NotFound)?;
            app.store.set_org_role(user_id, role).await?;
        }
        other => {
            return Err(WebError::BadRequest(format!(
                "unknown user action {other:?}"
            )));
        }
    }
    Ok(Redirect::to("/users").into_response())
}

#[derive(Template)]
#[template(path = "teams.html")]
struct TeamsPage {
    user: CurrentUser,
    teams: Vec<TeamRow>,
    users: Vec<UserRow>,
    projects: Vec<ProjectRow>,
    error: Option<String>,
}

async fn teams_render(
    app: &AppState,
    user: CurrentUser,
    error: Option<String>,
) -> WebResult<TeamsPage> {
    Ok(TeamsPage {
        teams: app.store.list_teams().await?,
        users: app.store.list_users().await?,
        projects: app.store.list_projects().await?,
        user,
        error,
    })
}

async fn teams_page(State(app): State<AppState>, user: CurrentUser) -> WebResult {
    require_manager(&app, &user).await?;
    render(teams_render(&app, user, None).await?)
}

#[derive(Deserialize)]
struct NewTeamForm {
    csrf: String,
    name: String,
}

async fn create_team(
    State(app): State<AppState>,
    user: CurrentUser,
    Form(form): Form<NewTeamForm>,
) -> WebResult {
    check_csrf(&app, &user, &form.csrf)?;
    require_manager(&app, &user).await?;
    let name = form.name.trim();
    if name.is_empty() {
        return Err(WebError::BadRequest("the team needs a name".into()));
    }
    match app.store.create_team(name).await {
        Ok(_) => Ok(Redirect::to("/teams").into_response()),
        Err(StoreError::Conflict(message)) => {
            let page = teams_render(&app, user, Some(message)).await?;
            Ok((StatusCode::BAD_REQUEST, Html(page.render()?)).into_response())
        }
        Err(e) => Err(e.into()),
    }
}

#[derive(Deserialize)]
struct TeamUpdateForm {
    csrf: String,
    /// add_member, remove_member, add_project, remove_project or delete.
    action: String,
    user_id: Option<i64>,
    project_id: Option<i64>,
}

async fn update_team(
    State(app): State<AppState>,
    user: CurrentUser,
    Path(team_id): Path<i64>,
    Form(form): Form<TeamUpdateForm>,
) -> WebResult {
    check_csrf(&app, &user, &form.csrf)?;
    require_manager(&app, &user).await?;
    let need = |v: Option<i64>, what: &str| {
        v.ok_or_else(|| WebError::BadRequest(format!("choose a {what}")))
    };
    match form.action.as_str() {
        "add_member" => {
            app.store
                .set_team_member(team_id, need(form.user_id, "user")?, true)
                .await?
        }
        "remove_member" => {
            app.store
                .set_team_member(team_id, need(form.user_id, "user")?, false)
                .await?
        }
        "add_project" => {
            app.store
                .set_project_team(need(form.project_id, "project")?, team_id, true)
                .await?
        }
        "remove_project" => {
            app.store
                .set_project_team(need(form.project_id, "project")?, team_id, false)
                .await?
        }
        "delete" => app.store.delete_team(team_id).await?,
        other => {
            return Err(WebError::BadRequest(format!(
                "unknown team action {other:?}"
            )));
        }
    }
    Ok(Redirect::to("/teams").into_response())
}
