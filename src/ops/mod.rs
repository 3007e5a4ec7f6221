//! Health, readiness, metrics, request accounting and shutdown signals.

pub mod backup;
pub mod listener;
pub mod metrics;
pub mod reload;
pub mod retention;
pub mod selfreport;

use crate::app::AppState;
use axum::extract::{MatchedPath, Request, State};
use axum::http::{StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use std::time::Instant;

pub async fn healthz() -> impl IntoResponse {
    (
        StatusCode::OK,
        [(header::CACHE_CONTROL, "no-store")],
        "ok\n",
    )
}

pub async fn readyz(State(app): State<AppState>) -> Response {
    if app.shutting_down() {
        return (StatusCode::SERVICE_UNAVAILABLE, "shutting down\n").into_response();
    }
    match tokio::time::timeout(std::time::Duration::from_secs(2), app.store.ping()).await {
        Ok(Ok(())) => (
            StatusCode::OK,
            [(header::CACHE_CONTROL, "no-store")],
            "ready\n",
        )
            .into_response(),
        Ok(Err(e)) => {
            tracing::warn!(error = %e, "readiness check failed");
            (StatusCode::SERVICE_UNAVAILABLE, "database unreachable\n").into_response()
        }
        Err(_) => (StatusCode::SERVICE_UNAVAILABLE, "database timeout\n").into_response(),
    }
}

pub async fn metrics(State(app): State<AppState>) -> Response {
    let pool = app.store.pool();
    let backlog = app
        .store
        .alert_backlog()
        .await
        .map(|n| n as f64)
        .unwrap_or(f64::NAN);
    let gauges = [
        (
            "snag_alert_outbox_pending",
            "Alert notifications waiting for delivery.",
            backlog,
        ),
        (
            "snag_pipeline_queue_depth",
            "Requests waiting for the writer.",
            app.pipeline.queue_depth() as f64,
        ),
        (
            "snag_db_pool_connections",
            "Open database connections.",
            f64::from(pool.size()),
        ),
        (
            "snag_db_pool_idle",
            "Idle database connections.",
            pool.num_idle() as f64,
        ),
        (
            "snag_db_pool_in_use",
            "Database connections checked out of the pool.",
            f64::from(pool.size()) - pool.num_idle() as f64,
        ),
        (
            "snag_db_pool_max_connections",
            "Configured pool size (SNAG_DB_MAX_CONNECTIONS).",
            f64::from(pool.options().get_max_connections()),
        ),
    ];
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        app.metrics.render(&gauges),
    )
        .into_response()
}

/// The id that ties a request's log lines together: the caller's
/// `X-Request-Id` when it is a sane token (nginx's `$request_id`, a load
/// balancer's trace id), else a fresh one. Echoed in the response.
#[derive(Debug, Clone)]
pub struct RequestId(pub String);

fn request_id(req: &Request) -> String {
    req.headers()
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
        .filter(|id| {
            !id.is_empty()
                && id.len() <= 128
                && id
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"-_.:/+=@".contains(&b))
        })
        .map(str::to_string)
        .unwrap_or_else(|| uuid::Uuid::new_v4().simple().to_string())
}

/// Counts every request by its route template (not the raw path, which
/// would explode label cardinality), logs it, and gives it a request id
/// that every log line written while handling it carries. While the
/// server drains, responses ask clients to close the connection so their
/// next request opens a fresh one (to the process taking over).
pub async fn track(State(app): State<AppState>, mut req: Request, next: Next) -> Response {
    use tracing::Instrument as _;
    let started = Instant::now();
    let method = req.method().clone();
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_string())
        .unwrap_or_else(|| "unmatched".into());
    let id = request_id(&req);
    req.extensions_mut().insert(RequestId(id.clone()));
    let span = tracing::info_span!("request", request_id = %id);
    let mut response = next.run(req).instrument(span.clone()).await;
    let elapsed = started.elapsed();
    let status = response.status().as_u16();
    app.metrics
        .observe_request(method.as_str(), &route, status, elapsed);
    if let Ok(value) = axum::http::HeaderValue::from_str(&id) {
        response.headers_mut().insert("x-request-id", value);
    }
    if app.shutting_down() {
        response.headers_mut().insert(
            header::CONNECTION,
            axum::http::HeaderValue::from_static("close"),
        );
    }
    span.in_scope(|| {
        tracing::info!(
            method = %method,
            route = %route,
            status,
            duration_ms = elapsed.as_secs_f64() * 1000.0,
            "request"
        )
    });
    response
}

/// Resolves on SIGTERM or SIGINT.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = term => {},
    }
}
