//! Sentry-compatible Web API (`/api/0/…`): the subset scripts, CI steps and
//! `sentry-cli` use, with Sentry's paths, field names and semantics, over
//! the same store functions the dashboard uses.
//!
//! Authentication is `Authorization: Bearer <token>` with personal API
//! tokens ([`auth`]); errors are `{"detail": …}` JSON ([`ApiError`]); lists
//! paginate with Sentry's `Link` header ([`pagination`]).

pub mod auth;
mod events;
mod issues;
mod pagination;
mod projects;
mod releases;
pub mod serialize;

use crate::app::AppState;
use crate::store::StoreError;
use axum::Router;
use axum::extract::{FromRequest, Request};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{MethodRouter, any, get};
use serde::de::DeserializeOwned;

/// The OpenAPI 3.1 description of every endpoint below; `tests/api.rs`
/// validates each response of the suite against it.
pub const OPENAPI: &str = include_str!("openapi.json");

pub fn router() -> Router<AppState> {
    let routes: Vec<(&str, MethodRouter<AppState>)> = vec![
        ("/api/0/", get(projects::index)),
        ("/api/0/openapi.json", get(openapi)),
        ("/api/0/organizations/", get(projects::organizations)),
        ("/api/0/organizations/{org}/", get(projects::organization)),
        (
            "/api/0/organizations/{org}/projects/",
            get(projects::organization_projects),
        ),
        (
            "/api/0/organizations/{org}/issues/",
            get(issues::org_list)
                .put(issues::org_bulk_update)
                .delete(issues::org_bulk_delete),
        ),
        (
            "/api/0/organizations/{org}/issues/{issue_id}/",
            get(issues::org_issue_detail)
                .put(issues::org_issue_update)
                .delete(issues::org_issue_delete),
        ),
        (
            "/api/0/organizations/{org}/releases/",
            get(releases::org_list).post(releases::org_create),
        ),
        (
            "/api/0/organizations/{org}/releases/{version}/",
            get(releases::org_detail)
                .put(releases::org_update)
                .delete(releases::org_delete),
        ),
        (
            "/api/0/organizations/{org}/releases/{version}/deploys/",
            get(releases::deploy_list).post(releases::deploy_create),
        ),
        (
            "/api/0/projects/{org}/{project}/",
            get(projects::project_detail).put(projects::project_update),
        ),
        (
            "/api/0/projects/{org}/{project}/keys/",
            get(projects::key_list).post(projects::key_create),
        ),
        (
            "/api/0/projects/{org}/{project}/issues/",
            get(issues::project_list)
                .put(issues::project_bulk_update)
                .delete(issues::project_bulk_delete),
        ),
        (
            "/api/0/projects/{org}/{project}/events/",
            get(events::project_events),
        ),
        (
            "/api/0/projects/{org}/{project}/events/{event_id}/",
            get(events::project_event),
        ),
        (
            "/api/0/projects/{org}/{project}/events/{event_id}/json/",
            get(events::project_event_json),
        ),
        (
            "/api/0/projects/{org}/{project}/releases/",
            get(releases::project_list).post(releases::project_create),
        ),
        (
            "/api/0/projects/{org}/{project}/releases/{version}/",
            get(releases::project_detail)
                .put(releases::project_update)
                .delete(releases::project_delete),
        ),
        (
            "/api/0/issues/{issue_id}/",
            get(issues::detail)
                .put(issues::update)
                .delete(issues::delete),
        ),
        (
            "/api/0/issues/{issue_id}/events/",
            get(events::issue_events),
        ),
        (
            "/api/0/issues/{issue_id}/events/{event_id}/",
            get(events::issue_event),
        ),
        ("/api/0/issues/{issue_id}/tags/", get(issues::tags)),
        ("/api/0/issues/{issue_id}/hashes/", get(issues::hashes)),
    ];
    let mut router = Router::new();
    for (path, method_router) in routes {
        let method_router = method_router.fallback(method_not_allowed);
        // Sentry's paths end in `/`; curl users often leave it off.
        router = router.route(path, method_router.clone());
        if let Some(bare) = path.strip_suffix('/') {
            router = router.route(bare, method_router);
        }
    }
    // Anything else under the API answers like Sentry, in JSON: tools probe
    // optional endpoints (chunk upload, regions) and treat 404 as "absent".
    router.route("/api/0/{*rest}", any(not_found))
}

async fn openapi() -> Response {
    (
        [
            (header::CONTENT_TYPE, "application/json"),
            (header::CACHE_CONTROL, "public, max-age=3600"),
        ],
        OPENAPI,
    )
        .into_response()
}

async fn not_found() -> ApiError {
    ApiError::NotFound
}

async fn method_not_allowed() -> ApiError {
    ApiError::MethodNotAllowed
}

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("Authentication credentials were not provided.")]
    Unauthenticated,
    #[error("Invalid token")]
    InvalidToken,
    #[error(
        "You do not have permission to perform this action. This endpoint needs a token with one of the scopes: {}.",
        .0.join(", ")
    )]
    MissingScope(Vec<&'static str>),
    #[error("You do not have permission to perform this action.")]
    Forbidden,
    #[error("The requested resource does not exist")]
    NotFound,
    #[error("{0}")]
    BadRequest(String),
    #[error("Method not allowed")]
    MethodNotAllowed,
    #[error("Internal Error")]
    Store(#[from] StoreError),
}

pub type ApiResult<T = Response> = Result<T, ApiError>;

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = match &self {
            ApiError::Unauthenticated | ApiError::InvalidToken => StatusCode::UNAUTHORIZED,
            ApiError::MissingScope(_) | ApiError::Forbidden => StatusCode::FORBIDDEN,
            ApiError::NotFound | ApiError::Store(StoreError::NotFound) => StatusCode::NOT_FOUND,
            ApiError::BadRequest(_) | ApiError::Store(StoreError::Conflict(_)) => {
                StatusCode::BAD_REQUEST
            }
            ApiError::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            ApiError::Store(_) => {
                tracing::error!(error = ?self, "API request failed");
                StatusCode::INTERNAL_SERVER_ERROR
            }
        };
        let detail = match &self {
            ApiError::Store(StoreError::NotFound) => ApiError::NotFound.to_string(),
            ApiError::Store(StoreError::Conflict(message)) => message.clone(),
            other => other.to_string(),
        };
        let mut response =
            (status, axum::Json(serde_json::json!({ "detail": detail }))).into_response();
        if status == StatusCode::UNAUTHORIZED {
            response
                .headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        response
    }
}

/// A JSON request body whose problems answer 400 with a `detail` instead of
/// axum's plain-text rejections. Parsing waits for [`ApiJson::parse`], so
/// handlers check the token and access first, as Sentry does (401, then
/// 403/404, then 400). The content type is not checked: scripts often post
/// JSON without one.
pub struct ApiJson<T>(Result<T, String>);

impl<T> ApiJson<T> {
    pub fn parse(self) -> ApiResult<T> {
        self.0.map_err(ApiError::BadRequest)
    }
}

impl<S, T> FromRequest<S> for ApiJson<T>
where
    S: Send + Sync,
    T: DeserializeOwned,
{
    type Rejection = std::convert::Infallible;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let bytes = match axum::body::Bytes::from_request(req, state).await {
            Ok(bytes) => bytes,
            Err(e) => return Ok(ApiJson(Err(format!("could not read the body: {e}")))),
        };
        let body: &[u8] = if bytes.iter().all(u8::is_ascii_whitespace) {
            b"{}"
        } else {
            &bytes
        };
        Ok(ApiJson(
            serde_json::from_slice(body).map_err(|e| format!("invalid JSON body: {e}")),
        ))
    }
}

/// The query string as ordered pairs: Sentry repeats keys (`id=1&id=2`,
/// `project=1&project=2`), which serde's query decoding cannot collect.
#[derive(Debug, Clone, Default)]
pub struct Params(pub Vec<(String, String)>);

impl Params {
    pub fn parse(query: Option<&str>) -> Self {
        Params(
            form_urlencoded::parse(query.unwrap_or("").as_bytes())
                .map(|(k, v)| (k.into_owned(), v.into_owned()))
                .collect(),
        )
    }

    pub fn get(&self, key: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    pub fn all(&self, key: &str) -> impl Iterator<Item = &str> {
        self.0
            .iter()
            .filter(move |(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    /// Every value of a repeated id parameter, which must be integers.
    pub fn ids(&self, key: &str) -> ApiResult<Vec<i64>> {
        self.all(key)
            .flat_map(|v| v.split(','))
            .filter(|v| !v.trim().is_empty())
            .map(|v| {
                v.trim()
                    .parse::<i64>()
                    .map_err(|_| ApiError::BadRequest(format!("{key} must be an integer: {v:?}")))
            })
            .collect()
    }
}

impl<S: Send + Sync> axum::extract::FromRequestParts<S> for Params {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        _state: &S,
    ) -> Result<Self, Self::Rejection> {
        Ok(Params::parse(parts.uri.query()))
    }
}

/// A JSON response with a status.
pub fn json(status: StatusCode, value: serde_json::Value) -> Response {
    (status, axum::Json(value)).into_response()
}

pub fn ok(value: serde_json::Value) -> Response {
    json(StatusCode::OK, value)
}
