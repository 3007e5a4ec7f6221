//! The ingest edge: HTTP endpoints the Sentry SDKs talk to. Bytes in,
//! validated items out to the pipeline.

pub mod auth;
pub mod budget;
pub mod decode;
pub mod envelope;
pub mod error;
pub mod fuzz;
mod handlers;
mod items;
pub mod limits;
pub mod ratelimit;

pub use error::IngestError;

use crate::app::AppState;
use crate::pipeline::process::ProjectContext;
use crate::store::Store;
use axum::Router;
use axum::extract::Request;
use axum::http::{HeaderValue, Method, StatusCode, Uri, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{any, post};
use std::sync::Arc;
use std::time::Duration;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/{project_id}/envelope/", post(handlers::envelope))
        .route("/api/{project_id}/store/", any(handlers::store))
        .route("/api/{project_id}/security/", post(handlers::security))
        .route("/api/{project_id}/csp-report/", post(handlers::security))
        .route("/api/{project_id}/minidump/", post(handlers::minidump))
        .layer(axum::middleware::from_fn(cors))
}

const ENDPOINTS: [&str; 5] = ["envelope", "store", "security", "csp-report", "minidump"];

/// SDKs reach us with `//` in paths (DSNs with trailing slashes), without the
/// trailing slash, or under the path prefix of their DSN
/// (`https://key@host/prefix/42`). All of those map to one canonical route.
pub fn canonical_path(uri: &Uri) -> Option<Uri> {
    let path = uri.path();
    if !path.contains("/api/") {
        return None;
    }
    let segments: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
    let n = segments.len();
    if n < 3 {
        return None;
    }
    let (api, id, endpoint) = (segments[n - 3], segments[n - 2], segments[n - 1]);
    if api != "api"
        || !ENDPOINTS.contains(&endpoint)
        || id.is_empty()
        || !id.bytes().all(|b| b.is_ascii_digit())
    {
        return None;
    }
    let canonical = format!("/api/{id}/{endpoint}/");
    if canonical == path {
        return None;
    }
    let rebuilt = match uri.query() {
        Some(q) => format!("{canonical}?{q}"),
        None => canonical,
    };
    rebuilt.parse().ok()
}

/// Browser SDKs post cross-origin; Relay allows any origin on ingest.
async fn cors(req: Request, next: Next) -> Response {
    let mut response = if req.method() == Method::OPTIONS {
        StatusCode::OK.into_response()
    } else {
        next.run(req).await
    };
    let headers = response.headers_mut();
    headers.insert(
        header::ACCESS_CONTROL_ALLOW_ORIGIN,
        HeaderValue::from_static("*"),
    );
    headers.insert(
        header::ACCESS_CONTROL_ALLOW_METHODS,
        HeaderValue::from_static("GET, POST, OPTIONS"),
    );
    headers.insert(
        header::ACCESS_CONTROL_ALLOW_HEADERS,
        HeaderValue::from_static(
            "x-sentry-auth, x-requested-with, x-forwarded-for, origin, referer, accept, authorization, \
             content-type, content-encoding, content-length, sentry-trace, baggage",
        ),
    );
    headers.insert(
        header::ACCESS_CONTROL_EXPOSE_HEADERS,
        HeaderValue::from_static("x-sentry-error, x-sentry-rate-limits, retry-after"),
    );
    headers.insert(
        header::ACCESS_CONTROL_MAX_AGE,
        HeaderValue::from_static("3600"),
    );
    response
}

impl IntoResponse for IngestError {
    fn into_response(self) -> Response {
        let status = StatusCode::from_u16(self.status()).unwrap_or(StatusCode::BAD_REQUEST);
        let detail = self.detail();
        let body = self.to_json();
        let mut response = (status, axum::Json(body)).into_response();
        let headers = response.headers_mut();
        if let Ok(v) = HeaderValue::from_str(&detail.replace(['\r', '\n'], " ")) {
            headers.insert("x-sentry-error", v);
        }
        if status == StatusCode::TOO_MANY_REQUESTS {
            if let Some(secs) = self.retry_after()
                && let Ok(v) = HeaderValue::from_str(&secs.to_string())
            {
                headers.insert(header::RETRY_AFTER, v);
            }
            if let Some(limits) = self.rate_limits_header()
                && let Ok(v) = HeaderValue::from_str(&limits)
            {
                headers.insert("x-sentry-rate-limits", v);
            }
        }
        response
    }
}

/// DSN public key → project settings. Misses hit the database once per
/// minute at most; revoking a key evicts it here immediately.
#[derive(Clone)]
pub struct KeyCache {
    store: Store,
    cache: moka::future::Cache<String, Option<Arc<ProjectContext>>>,
}

impl KeyCache {
    pub fn new(store: Store) -> Self {
        Self {
            store,
            cache: moka::future::Cache::builder()
                .max_capacity(50_000)
                .time_to_live(Duration::from_secs(60))
                .build(),
        }
    }

    pub async fn get(
        &self,
        public_key: &str,
    ) -> Result<Option<Arc<ProjectContext>>, crate::store::StoreError> {
        if let Some(hit) = self.cache.get(public_key).await {
            return Ok(hit);
        }
        let loaded = self
            .store
            .key_info(public_key)
            .await?
            .map(|info| Arc::new(ProjectContext::new(info)));
        self.cache
            .insert(public_key.to_string(), loaded.clone())
            .await;
        Ok(loaded)
    }

    pub async fn invalidate(&self, public_key: &str) {
        self.cache.invalidate(public_key).await;
    }

    /// Project settings changed (rules, scrubbing): drop every cached key.
    pub fn invalidate_all(&self) {
        self.cache.invalidate_all();
    }
}

#[cfg(test)]
mod tests {
    use super::canonical_path;

    fn canon(s: &str) -> Option<String> {
        canonical_path(&s.parse().unwrap()).map(|u| u.to_string())
    }

    #[test]
    fn canonical_paths() {
        assert_eq!(canon("/api/1/envelope/"), None);
        assert_eq!(canon("/api/1/envelope"), Some("/api/1/envelope/".into()));
        assert_eq!(
            canon("//api/1/store/?sentry_key=a"),
            Some("/api/1/store/?sentry_key=a".into())
        );
        assert_eq!(
            canon("/prefix/sub/api/42/envelope/"),
            Some("/api/42/envelope/".into())
        );
        assert_eq!(canon("/api/x/envelope/"), None);
        assert_eq!(canon("/projects/1"), None);
    }
}
