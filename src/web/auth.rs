//! Password hashing, session cookies and CSRF tokens for the dashboard.

use crate::app::AppState;
use argon2::Argon2;
use argon2::password_hash::phc::PasswordHash;
use argon2::password_hash::{PasswordHasher, PasswordVerifier};
use axum::extract::FromRequestParts;
use axum::http::header;
use axum::http::request::Parts;
use axum::response::{IntoResponse, Redirect, Response};
use hmac::{Hmac, KeyInit, Mac};
use sha2::{Digest, Sha256};

pub const SESSION_COOKIE: &str = "snag_session";

#[derive(Debug, thiserror::Error)]
#[error("could not hash the password: {0}")]
pub struct HashError(String);

pub fn hash_password(password: &str) -> Result<String, HashError> {
    Argon2::default()
        .hash_password(password.as_bytes())
        .map(|h| h.to_string())
        .map_err(|e| HashError(e.to_string()))
}

pub fn verify_password(password: &str, stored: &str) -> bool {
    PasswordHash::new(stored)
        .map(|parsed| {
            Argon2::default()
                .verify_password(password.as_bytes(), &parsed)
                .is_ok()
        })
        .unwrap_or(false)
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

pub fn new_session_token() -> String {
    let a = uuid::Uuid::new_v4();
    let b = uuid::Uuid::new_v4();
    format!("{}{}", a.simple(), b.simple())
}

pub fn token_hash(token: &str) -> String {
    hex(&Sha256::digest(token.as_bytes()))
}

/// CSRF token bound to the session: forging it needs both the session
/// token and the server key.
pub fn csrf_token(key: &[u8], session_token: &str) -> String {
    let mut mac =
        <Hmac<Sha256> as KeyInit>::new_from_slice(key).expect("HMAC accepts any key length");
    mac.update(b"csrf:");
    mac.update(session_token.as_bytes());
    hex(&mac.finalize().into_bytes())
}

pub fn csrf_matches(key: &[u8], session_token: &str, submitted: &str) -> bool {
    let expected = csrf_token(key, session_token);
    // Constant-time comparison: the token is a secret.
    expected.len() == submitted.len()
        && expected
            .bytes()
            .zip(submitted.bytes())
            .fold(0u8, |acc, (a, b)| acc | (a ^ b))
            == 0
}

pub fn session_cookie(token: &str, secure: bool, max_age_secs: u64) -> String {
    let secure = if secure { "; Secure" } else { "" };
    format!(
        "{SESSION_COOKIE}={token}; Path=/; HttpOnly; SameSite=Lax; Max-Age={max_age_secs}{secure}"
    )
}

pub fn clear_session_cookie(secure: bool) -> String {
    session_cookie("", secure, 0)
}

pub fn cookie_value<'a>(parts: &'a Parts, name: &str) -> Option<&'a str> {
    parts
        .headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

/// The logged-in user. Extracting it from an anonymous request redirects
/// to the login page, remembering where the user was going.
#[derive(Debug, Clone)]
pub struct CurrentUser {
    pub id: i64,
    pub email: String,
    pub is_admin: bool,
    pub csrf: String,
    session_token: String,
}

impl CurrentUser {
    pub fn session_token_hash(&self) -> String {
        token_hash(&self.session_token)
    }

    pub fn check_csrf(&self, key: &[u8], submitted: &str) -> bool {
        csrf_matches(key, &self.session_token, submitted)
    }
}

fn login_redirect(parts: &Parts) -> Response {
    let next = parts
        .uri
        .path_and_query()
        .map(|p| p.as_str())
        .unwrap_or("/");
    let encoded: String = form_urlencoded::byte_serialize(next.as_bytes()).collect();
    Redirect::to(&format!("/login?next={encoded}")).into_response()
}

impl FromRequestParts<AppState> for CurrentUser {
    type Rejection = Response;

    async fn from_request_parts(
        parts: &mut Parts,
        app: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let Some(token) = cookie_value(parts, SESSION_COOKIE)
            .filter(|t| !t.is_empty())
            .map(str::to_string)
        else {
            return Err(login_redirect(parts));
        };
        match app.store.session_user(&token_hash(&token)).await {
            Ok(Some(user)) => Ok(CurrentUser {
                id: user.id,
                email: user.email,
                is_admin: user.is_admin,
                csrf: csrf_token(&app.signing_key, &token),
                session_token: token,
            }),
            Ok(None) => Err(login_redirect(parts)),
            Err(e) => Err(super::WebError::from(e).into_response()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn password_round_trip() {
        let hash = hash_password("correct horse").unwrap();
        assert!(hash.starts_with("$argon2id$"));
        assert!(verify_password("correct horse", &hash));
        assert!(!verify_password("wrong", &hash));
        assert!(!verify_password("x", "not a hash"));
    }

    #[test]
    fn csrf_is_bound_to_session_and_key() {
        let t = csrf_token(b"key-one-0123456789", "session-a");
        assert!(csrf_matches(b"key-one-0123456789", "session-a", &t));
        assert!(!csrf_matches(b"key-one-0123456789", "session-b", &t));
        assert!(!csrf_matches(b"key-two-0123456789", "session-a", &t));
        assert!(!csrf_matches(b"key-one-0123456789", "session-a", ""));
    }
}
