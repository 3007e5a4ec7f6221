//! Links that stand in for a password: password reset (emailed to the user
//! when SMTP is on; made by an owner or admin either way) and invitations
//! (made by an owner or admin, shared by hand or emailed). Tokens are 256
//! random bits, stored only hashed, single-use and short-lived.

use super::access::require_manager;
use super::account::{MIN_PASSWORD_LEN, hash};
use super::auth::{self, CurrentUser};
use super::{WebError, WebResult, render};
use crate::app::AppState;
use crate::store::{InvitationRow, ROLES, StoreError};
use askama::Template;
use axum::Router;
use axum::extract::{Form, Path, State};
use axum::http::{StatusCode, header};
use axum::response::{Html, IntoResponse, Redirect};
use axum::routing::{get, post};
use chrono::Utc;
use serde::Deserialize;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/password/forgot", get(forgot_page).post(forgot_password))
        .route(
            "/password/reset/{token}",
            get(reset_page).post(reset_password),
        )
        .route("/users/{user_id}/reset-link", post(admin_reset_link))
        .route("/invitations", post(create_invitation))
        .route("/invitations/{id}/revoke", post(revoke_invitation))
        .route("/invite/{token}", get(invite_page).post(accept_invitation))
}

/// An emailed reset link works for an hour; one an admin hands over, a day.
pub const EMAILED_RESET_TTL_SECS: i64 = 3600;
pub const ADMIN_RESET_TTL_SECS: i64 = 86_400;
pub const INVITATION_TTL_SECS: i64 = 7 * 86_400;
/// Reset emails per account per hour: enough for a user, useless for
/// flooding someone's inbox.
const RESETS_PER_HOUR: i64 = 3;

fn link(app: &AppState, path: &str) -> String {
    format!("{}{path}", app.config.base_url.trim_end_matches('/'))
}

async fn queue_mail(
    app: &AppState,
    to: &str,
    content: crate::alerts::email::Content,
) -> WebResult<()> {
    app.store
        .queue_mail(to, &content.subject, &content.text, &content.html)
        .await?;
    app.pipeline.alerts_wakeup.notify_one();
    Ok(())
}

#[derive(Template)]
#[template(path = "password_forgot.html")]
struct ForgotPage {
    email_on: bool,
    sent: bool,
    email: String,
}

async fn forgot_page() -> WebResult {
    render(ForgotPage {
        email_on: crate::alerts::email_configured(),
        sent: false,
        email: String::new(),
    })
}

#[derive(Deserialize)]
struct ForgotForm {
    email: String,
}

/// Always answers the same way, so the form does not reveal which emails
/// have accounts.
/// The forms anyone may post (no session, so no CSRF token) must still come
/// from our own pages: a foreign page could otherwise log a visitor into an
/// account of its choosing through an invitation or reset link it holds.
fn from_our_pages(app: &AppState, headers: &axum::http::HeaderMap) -> WebResult<()> {
    if super::same_origin(headers, &app.config.base_url) {
        Ok(())
    } else {
        Err(WebError::Csrf)
    }
}

async fn forgot_password(
    State(app): State<AppState>,
    headers: axum::http::HeaderMap,
    Form(form): Form<ForgotForm>,
) -> WebResult {
    from_our_pages(&app, &headers)?;
    let email_on = crate::alerts::email_configured();
    let email = form.email.trim().to_string();
    if email_on
        && let Some(user) = app.store.user_by_email(&email).await?
        && user.is_active
        && app.store.recent_password_resets(user.id, 3600).await? < RESETS_PER_HOUR
    {
        let token = auth::new_session_token();
        app.store
            .create_password_reset(user.id, &auth::token_hash(&token), EMAILED_RESET_TTL_SECS)
            .await?;
        let url = link(&app, &format!("/password/reset/{token}"));
        let content = crate::alerts::email::account(
            "[Snag] Reset your password",
            &format!(
                "Someone (hopefully you) asked to reset the password of {} on Snag. \
                 Open this link within an hour to choose a new one:",
                user.email
            ),
            &url,
            "If you did not ask for this, ignore this email: your password stays as it is.",
        );
        queue_mail(&app, &user.email, content).await?;
    }
    render(ForgotPage {
        email_on,
        sent: email_on,
        email,
    })
}

#[derive(Template)]
#[template(path = "password_reset.html")]
struct ResetPage {
    token: String,
    email: String,
    error: Option<String>,
}

fn invalid_link(what: &str) -> WebError {
    WebError::LinkExpired(format!(
        "This {what} link is invalid, expired or already used. Ask for a new one."
    ))
}

async fn reset_page(State(app): State<AppState>, Path(token): Path<String>) -> WebResult {
    let user = app
        .store
        .password_reset_user(&auth::token_hash(&token))
        .await?
        .ok_or_else(|| invalid_link("password reset"))?;
    render(ResetPage {
        token,
        email: user.email,
        error: None,
    })
}

#[derive(Deserialize)]
struct NewPasswordForm {
    password: String,
    confirm: String,
    #[serde(default)]
    name: String,
}

fn password_problem(password: &str, confirm: &str) -> Option<&'static str> {
    if password.chars().count() < MIN_PASSWORD_LEN {
        Some("The password needs at least 8 characters.")
    } else if password != confirm {
        Some("The passwords do not match.")
    } else {
        None
    }
}

async fn reset_password(
    State(app): State<AppState>,
    Path(token): Path<String>,
    headers: axum::http::HeaderMap,
    Form(form): Form<NewPasswordForm>,
) -> WebResult {
    from_our_pages(&app, &headers)?;
    let token_hash = auth::token_hash(&token);
    let user = app
        .store
        .password_reset_user(&token_hash)
        .await?
        .ok_or_else(|| invalid_link("password reset"))?;
    if let Some(problem) = password_problem(&form.password, &form.confirm) {
        let page = ResetPage {
            token,
            email: user.email,
            error: Some(problem.into()),
        };
        return Ok((StatusCode::BAD_REQUEST, Html(page.render()?)).into_response());
    }
    let password_hash = hash(form.password).await?;
    app.store
        .reset_password(&token_hash, &password_hash)
        .await
        .map_err(|e| match e {
            StoreError::NotFound => invalid_link("password reset"),
            e => e.into(),
        })?;
    Ok(Redirect::to("/login?reset=1").into_response())
}

#[derive(Deserialize)]
struct CsrfForm {
    csrf: String,
}

/// For users who cannot receive email (or when SMTP is off): an owner or
/// admin makes the link and hands it over.
async fn admin_reset_link(
    State(app): State<AppState>,
    user: CurrentUser,
    Path(user_id): Path<i64>,
    Form(form): Form<CsrfForm>,
) -> WebResult {
    if !user.check_csrf(&app.signing_key, &form.csrf) {
        return Err(WebError::Csrf);
    }
    require_manager(&app, &user).await?;
    let target = app
        .store
        .user_by_id(user_id)
        .await?
        .ok_or(WebError::NotFound)?;
    if !target.is_active {
        return Err(WebError::BadRequest(
            "enable the user before making a reset link".into(),
        ));
    }
    let token = auth::new_session_token();
    app.store
        .create_password_reset(target.id, &auth::token_hash(&token), ADMIN_RESET_TTL_SECS)
        .await?;
    let notice = super::account::LinkNotice {
        text: format!(
            "Password reset link for {} (works once, for 24 hours):",
            target.email
        ),
        link: link(&app, &format!("/password/reset/{token}")),
    };
    super::account::users_page_with(&app, user, None, Some(notice)).await
}

#[derive(Deserialize)]
struct InvitationForm {
    csrf: String,
    email: String,
    role: String,
}

async fn create_invitation(
    State(app): State<AppState>,
    user: CurrentUser,
    Form(form): Form<InvitationForm>,
) -> WebResult {
    if !user.check_csrf(&app.signing_key, &form.csrf) {
        return Err(WebError::Csrf);
    }
    require_manager(&app, &user).await?;
    let email = form.email.trim();
    let problem = if !email.contains('@') || email.len() > 254 {
        Some("Enter an email address.".to_string())
    } else if !ROLES.contains(&form.role.as_str()) {
        Some(format!("Unknown role {:?}.", form.role))
    } else {
        None
    };
    if let Some(problem) = problem {
        return super::account::users_page_error(&app, user, problem).await;
    }
    let token = auth::new_session_token();
    match app
        .store
        .create_invitation(
            email,
            &form.role,
            user.id,
            &auth::token_hash(&token),
            INVITATION_TTL_SECS,
        )
        .await
    {
        Ok(_) => {}
        Err(StoreError::Conflict(message)) => {
            return super::account::users_page_error(&app, user, message).await;
        }
        Err(e) => return Err(e.into()),
    }
    let url = link(&app, &format!("/invite/{token}"));
    let emailed = crate::alerts::email_configured();
    if emailed {
        let content = crate::alerts::email::account(
            "[Snag] You are invited to Snag",
            &format!(
                "{} invited you to Snag, the error tracker, as {}. Open this link within 7 days to choose your name and password:",
                user.email, form.role
            ),
            &url,
            "If you did not expect this, ignore this email.",
        );
        queue_mail(&app, email, content).await?;
    }
    let notice = super::account::LinkNotice {
        text: format!(
            "Invitation for {email} (works once, for 7 days){}. Share this link with them:",
            if emailed { "; it was also emailed" } else { "" }
        ),
        link: url,
    };
    super::account::users_page_with(&app, user, None, Some(notice)).await
}

async fn revoke_invitation(
    State(app): State<AppState>,
    user: CurrentUser,
    Path(id): Path<i64>,
    Form(form): Form<CsrfForm>,
) -> WebResult {
    if !user.check_csrf(&app.signing_key, &form.csrf) {
        return Err(WebError::Csrf);
    }
    require_manager(&app, &user).await?;
    app.store.revoke_invitation(id).await?;
    Ok(Redirect::to("/users").into_response())
}

#[derive(Template)]
#[template(path = "invite.html")]
struct InvitePage {
    token: String,
    invitation: InvitationRow,
    name: String,
    error: Option<String>,
}

async fn invite_page(State(app): State<AppState>, Path(token): Path<String>) -> WebResult {
    let invitation = app
        .store
        .invitation(&auth::token_hash(&token))
        .await?
        .ok_or_else(|| invalid_link("invitation"))?;
    render(InvitePage {
        token,
        invitation,
        name: String::new(),
        error: None,
    })
}

/// Creates the account and logs the new user in.
async fn accept_invitation(
    State(app): State<AppState>,
    Path(token): Path<String>,
    headers: axum::http::HeaderMap,
    Form(form): Form<NewPasswordForm>,
) -> WebResult {
    from_our_pages(&app, &headers)?;
    let token_hash = auth::token_hash(&token);
    let invitation = app
        .store
        .invitation(&token_hash)
        .await?
        .ok_or_else(|| invalid_link("invitation"))?;
    let name = form.name.trim().to_string();
    let problem = if name.is_empty() {
        Some("Tell us your name.")
    } else if name.chars().count() > 200 {
        Some("Names are at most 200 characters.")
    } else {
        password_problem(&form.password, &form.confirm)
    };
    if let Some(problem) = problem {
        let page = InvitePage {
            token,
            invitation,
            name,
            error: Some(problem.into()),
        };
        return Ok((StatusCode::BAD_REQUEST, Html(page.render()?)).into_response());
    }
    let password_hash = hash(form.password).await?;
    let user_id = app
        .store
        .accept_invitation(&token_hash, &name, &password_hash)
        .await
        .map_err(|e| match e {
            StoreError::NotFound => invalid_link("invitation"),
            StoreError::Conflict(m) => WebError::BadRequest(m),
            e => e.into(),
        })?;
    let session = auth::new_session_token();
    let ttl = app.config.session_ttl;
    let expires =
        Utc::now() + chrono::Duration::from_std(ttl).unwrap_or(chrono::Duration::days(14));
    app.store
        .create_session(&auth::token_hash(&session), user_id, expires)
        .await?;
    let cookie = auth::session_cookie(&session, app.config.secure_cookies(), ttl.as_secs());
    Ok(([(header::SET_COOKIE, cookie)], Redirect::to("/projects")).into_response())
}
