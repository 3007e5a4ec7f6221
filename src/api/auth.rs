//! API tokens and who may do what with them.
//!
//! Tokens look like Sentry's personal tokens (`sntryu_` + 64 hex digits),
//! so `sentry-cli` accepts them as they are; only their SHA-256 is stored.
//! A request is allowed when the token carries a scope the endpoint needs
//! (Sentry's rule: `admin` implies `write` implies `read` within one area)
//! *and* the token's user may see the project, exactly as in the dashboard.

use super::{ApiError, ApiResult};
use crate::app::AppState;
use crate::store::{IssueRow, OrganizationRow, ProjectRow, TokenOwner};
use axum::extract::FromRequestParts;
use axum::http::header;
use axum::http::request::Parts;
use sha2::{Digest, Sha256};

/// Every scope a token can hold.
pub const SCOPES: [&str; 10] = [
    "org:read",
    "org:write",
    "org:admin",
    "project:read",
    "project:write",
    "project:admin",
    "project:releases",
    "event:read",
    "event:write",
    "event:admin",
];

/// Scopes a token gets when none are asked for: enough for sentry-cli and
/// triage scripts, nothing destructive.
pub const DEFAULT_SCOPES: [&str; 6] = [
    "org:read",
    "project:read",
    "project:write",
    "project:releases",
    "event:read",
    "event:write",
];

const TOKEN_PREFIX: &str = "sntryu_";

fn level(access: &str) -> Option<u8> {
    match access {
        "read" => Some(1),
        "write" => Some(2),
        "admin" => Some(3),
        _ => None,
    }
}

/// Whether holding `held` grants `needed`.
pub fn grants(held: &str, needed: &str) -> bool {
    if held == needed {
        return true;
    }
    match (held.split_once(':'), needed.split_once(':')) {
        (Some((held_area, held_access)), Some((area, access))) if held_area == area => {
            matches!((level(held_access), level(access)), (Some(h), Some(n)) if h >= n)
        }
        _ => false,
    }
}

/// Parses a scope list (comma- or space-separated, repeated), rejecting
/// unknown scopes; duplicates fold, order follows [`SCOPES`].
pub fn parse_scopes<'a>(items: impl IntoIterator<Item = &'a str>) -> Result<Vec<String>, String> {
    let mut wanted = Vec::new();
    for item in items {
        for scope in item
            .split([',', ' '])
            .map(str::trim)
            .filter(|s| !s.is_empty())
        {
            if !SCOPES.contains(&scope) {
                return Err(format!(
                    "unknown scope {scope:?}; known scopes: {}",
                    SCOPES.join(", ")
                ));
            }
            wanted.push(scope);
        }
    }
    if wanted.is_empty() {
        return Err("a token needs at least one scope".into());
    }
    Ok(SCOPES
        .iter()
        .filter(|s| wanted.contains(s))
        .map(|s| s.to_string())
        .collect())
}

/// A new random token and what is stored of it: (token, hash, last chars).
pub fn new_token() -> (String, String, String) {
    let token = format!(
        "{TOKEN_PREFIX}{}{}",
        uuid::Uuid::new_v4().simple(),
        uuid::Uuid::new_v4().simple()
    );
    let last = token[token.len() - 4..].to_string();
    (token.clone(), token_hash(&token), last)
}

pub fn token_hash(token: &str) -> String {
    Sha256::digest(token.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Creates a token for a user; returns the secret, shown only once.
pub async fn create_token(
    store: &crate::store::Store,
    user_id: i64,
    name: &str,
    scopes: &[String],
) -> Result<(String, crate::store::ApiTokenRow), crate::store::StoreError> {
    // Stored in the canonical order, so listings read the same everywhere.
    let scopes: Vec<String> = SCOPES
        .iter()
        .filter(|s| scopes.iter().any(|given| given == *s))
        .map(|s| s.to_string())
        .collect();
    let (token, hash, last) = new_token();
    let row = store
        .create_api_token(user_id, name, &scopes, &hash, &last)
        .await?;
    Ok((token, row))
}

/// The user behind a valid Bearer token.
#[derive(Debug, Clone)]
pub struct Principal {
    pub user_id: i64,
    pub email: String,
    pub name: String,
    pub is_admin: bool,
    pub scopes: Vec<String>,
}

impl Principal {
    /// Passes when the token holds (or implies) one of the scopes.
    pub fn require(&self, any_of: &[&'static str]) -> ApiResult<()> {
        if any_of
            .iter()
            .any(|needed| self.scopes.iter().any(|held| grants(held, needed)))
        {
            Ok(())
        } else {
            Err(ApiError::MissingScope(any_of.to_vec()))
        }
    }
}

impl From<TokenOwner> for Principal {
    fn from(o: TokenOwner) -> Self {
        Principal {
            user_id: o.user_id,
            email: o.email,
            name: o.name,
            is_admin: o.is_admin,
            scopes: o.scopes,
        }
    }
}

impl FromRequestParts<AppState> for Principal {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, app: &AppState) -> ApiResult<Self> {
        let Some(value) = parts.headers.get(header::AUTHORIZATION) else {
            return Err(ApiError::Unauthenticated);
        };
        let value = value.to_str().map_err(|_| ApiError::InvalidToken)?.trim();
        let token = match value.split_once(' ') {
            Some((scheme, token)) if scheme.eq_ignore_ascii_case("bearer") => token.trim(),
            _ => return Err(ApiError::InvalidToken),
        };
        if token.is_empty() || token.len() > 200 {
            return Err(ApiError::InvalidToken);
        }
        app.store
            .token_owner(&token_hash(token))
            .await?
            .map(Principal::from)
            .ok_or(ApiError::InvalidToken)
    }
}

/// Ids of the projects the user may see.
pub async fn visible_project_ids(app: &AppState, p: &Principal) -> ApiResult<Vec<i64>> {
    if p.is_admin {
        return Ok(app
            .store
            .list_projects()
            .await?
            .iter()
            .map(|p| p.id)
            .collect());
    }
    Ok(app.store.visible_project_ids(p.user_id).await?)
}

/// The organization by slug, if the user belongs to it (404 otherwise, so
/// outsiders cannot probe for slugs).
pub async fn organization(app: &AppState, p: &Principal, slug: &str) -> ApiResult<OrganizationRow> {
    let org = app
        .store
        .organization_by_slug(slug)
        .await?
        .ok_or(ApiError::NotFound)?;
    if !p.is_admin
        && app
            .store
            .organization_role(p.user_id, org.id)
            .await?
            .is_none()
    {
        return Err(ApiError::NotFound);
    }
    Ok(org)
}

/// The visible projects of an organization, in slug order.
pub async fn organization_projects(
    app: &AppState,
    p: &Principal,
    org: &OrganizationRow,
) -> ApiResult<Vec<ProjectRow>> {
    let visible = visible_project_ids(app, p).await?;
    Ok(app
        .store
        .list_projects()
        .await?
        .into_iter()
        .filter(|project| project.organization_slug == org.slug && visible.contains(&project.id))
        .collect())
}

/// A project by slug (or numeric id, as Sentry allows) in an organization
/// the user belongs to; invisible projects are 404 like missing ones.
pub async fn project(
    app: &AppState,
    p: &Principal,
    org_slug: &str,
    id_or_slug: &str,
) -> ApiResult<(OrganizationRow, ProjectRow)> {
    let org = organization(app, p, org_slug).await?;
    let mut id = app.store.project_id_by_slug(org.id, id_or_slug).await?;
    if id.is_none()
        && let Ok(n) = id_or_slug.parse::<i64>()
    {
        id = Some(n);
    }
    let project = match id {
        Some(id) => app.store.project(id).await?,
        None => None,
    }
    .filter(|project| project.organization_slug == org.slug)
    .ok_or(ApiError::NotFound)?;
    if !visible_project_ids(app, p).await?.contains(&project.id) {
        return Err(ApiError::NotFound);
    }
    Ok((org, project))
}

pub async fn issue(
    app: &AppState,
    p: &Principal,
    issue_id: &str,
) -> ApiResult<(IssueRow, ProjectRow)> {
    let id: i64 = issue_id.parse().map_err(|_| ApiError::NotFound)?;
    let issue = app.store.issue(id).await?.ok_or(ApiError::NotFound)?;
    let project = app
        .store
        .project(issue.project_id)
        .await?
        .ok_or(ApiError::NotFound)?;
    if !visible_project_ids(app, p).await?.contains(&project.id) {
        return Err(ApiError::NotFound);
    }
    Ok((issue, project))
}

/// Settings, DSN keys and deletions need an owner or admin, as in the
/// dashboard, whatever the token's scopes.
pub async fn require_manager(app: &AppState, p: &Principal) -> ApiResult<()> {
    if p.is_admin || app.store.is_org_manager(p.user_id).await? {
        Ok(())
    } else {
        Err(ApiError::Forbidden)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn write_implies_read_within_an_area_only() {
        assert!(grants("project:write", "project:read"));
        assert!(grants("project:admin", "project:write"));
        assert!(grants("event:read", "event:read"));
        assert!(!grants("project:read", "project:write"));
        assert!(!grants("project:write", "event:read"));
        assert!(!grants("project:write", "project:releases"));
        assert!(!grants("project:releases", "project:read"));
        assert!(!grants("org:admin", "project:read"));
    }

    #[test]
    fn scope_lists_parse_strictly() {
        assert_eq!(
            parse_scopes(["event:read,project:read", "event:read"]).unwrap(),
            vec!["project:read", "event:read"]
        );
        assert_eq!(parse_scopes(["org:read event:write"]).unwrap().len(), 2);
        assert!(parse_scopes(["project:delete"]).is_err());
        assert!(parse_scopes([" , "]).is_err());
    }

    #[test]
    fn tokens_look_like_sentry_user_tokens_and_hash_stably() {
        let (token, hash, last) = new_token();
        assert!(token.starts_with("sntryu_") && token.len() == 71, "{token}");
        assert!(token.ends_with(&last) && last.len() == 4);
        assert_eq!(hash, token_hash(&token));
        assert_eq!(hash.len(), 64);
        assert_ne!(new_token().0, token);
    }
}
