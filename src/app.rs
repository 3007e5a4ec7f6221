//! Wiring: shared state, the router, and the server lifecycle.

use crate::config::Config;
use crate::ingest::{self, KeyCache, limits::Limits, ratelimit::KeyRateLimiter};
use crate::ops::{self, metrics::Metrics};
use crate::pipeline::{Pipeline, PipelineHandle};
use crate::store::Store;
use crate::web;

pub mod conn;
pub mod dbwatch;
use axum::Router;
use axum::routing::get;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use tokio::net::TcpListener;
use tokio::sync::oneshot;

#[derive(Debug, thiserror::Error)]
pub enum AppError {
    #[error(transparent)]
    Config(#[from] crate::config::ConfigError),
    #[error("invalid limits: {0}")]
    Limits(String),
    #[error(transparent)]
    Io(#[from] std::io::Error),
}

#[derive(Clone)]
pub struct AppState {
    pub config: Arc<Config>,
    pub store: Store,
    pub metrics: Arc<Metrics>,
    pub pipeline: Pipeline,
    pub keys: KeyCache,
    pub rate_limiter: Arc<KeyRateLimiter>,
    pub limits: Arc<Limits>,
    /// Request-body bytes held in memory, across all ingest requests.
    pub body_budget: Arc<ingest::budget::BodyBudget>,
    /// Whether PostgreSQL answers; ingest refuses writes at once when not.
    pub db: Arc<dbwatch::DbWatch>,
    pub signing_key: Arc<Vec<u8>>,
    shutting_down: Arc<AtomicBool>,
}

impl AppState {
    pub fn shutting_down(&self) -> bool {
        self.shutting_down.load(Ordering::Relaxed)
    }
}

pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/healthz", get(ops::healthz))
        .route("/readyz", get(ops::readyz))
        .route("/metrics", get(ops::metrics))
        .merge(ingest::router())
        .merge(crate::api::router())
        .merge(web::router())
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            ops::track,
        ))
        .with_state(state)
}

/// A server running in the background; used by `snag serve` and by tests.
pub struct RunningServer {
    pub addr: SocketAddr,
    pub state: AppState,
    accepting: ops::listener::StopAccepting,
    shutdown: Option<oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<std::io::Result<()>>,
}

impl RunningServer {
    /// Stops accepting connections, lets in-flight requests finish, flushes
    /// the write pipeline, then returns.
    pub async fn shutdown(mut self) -> std::io::Result<()> {
        self.trigger_shutdown();
        self.wait().await
    }

    /// First step of a shutdown or hand-over: no new connections, readiness
    /// 503, and responses on open connections ask clients to reconnect.
    pub fn stop_accepting(&self) {
        self.state.shutting_down.store(true, Ordering::Relaxed);
        self.accepting.stop();
    }

    pub fn trigger_shutdown(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
    }

    pub async fn wait(self) -> std::io::Result<()> {
        self.task
            .await
            .unwrap_or_else(|e| Err(std::io::Error::other(e)))
    }
}

pub async fn start(
    config: Config,
    store: Store,
    listener: TcpListener,
) -> Result<RunningServer, AppError> {
    let addr = listener.local_addr()?;
    let limits = Limits::from_env().map_err(AppError::Limits)?;
    let conn_limits = conn::ConnLimits::from_env().map_err(AppError::Limits)?;
    let signing_key = config.signing_key()?;
    let metrics = Arc::new(Metrics::default());
    let (pipeline, pipeline_handle) = Pipeline::start(
        store.clone(),
        metrics.clone(),
        config.pipeline_queue,
        config.pipeline_batch,
    );
    crate::grouping::compute(
        &serde_json::json!({}),
        &Default::default(),
        &Default::default(),
    );
    let db = dbwatch::DbWatch::spawn((*store.pool().connect_options()).clone());
    let state = AppState {
        config: Arc::new(config),
        store: store.clone(),
        metrics,
        pipeline,
        keys: KeyCache::new(store),
        rate_limiter: Arc::new(KeyRateLimiter::new()),
        body_budget: ingest::budget::BodyBudget::new(limits.max_buffered_bodies),
        db,
        limits: Arc::new(limits),
        signing_key: Arc::new(signing_key),
        shutting_down: Arc::new(AtomicBool::new(false)),
    };
    let workers: Vec<_> = [
        crate::alerts::spawn(&state),
        crate::ops::retention::spawn(&state),
    ]
    .into_iter()
    .flatten()
    .collect();
    let (shutdown_tx, shutdown_rx) = oneshot::channel::<()>();
    let (listener, accepting) = ops::listener::DrainableListener::new(listener, addr);
    let task = tokio::spawn(serve(
        listener,
        state.clone(),
        shutdown_rx,
        pipeline_handle,
        conn_limits,
        workers,
    ));
    Ok(RunningServer {
        addr,
        state,
        accepting,
        shutdown: Some(shutdown_tx),
        task,
    })
}

async fn serve(
    listener: ops::listener::DrainableListener,
    state: AppState,
    shutdown: oneshot::Receiver<()>,
    pipeline: PipelineHandle,
    limits: conn::ConnLimits,
    workers: Vec<tokio::task::JoinHandle<()>>,
) -> std::io::Result<()> {
    let wakeup = state.pipeline.alerts_wakeup.clone();
    let flag = state.shutting_down.clone();
    let trusted = Arc::new(state.config.trusted_proxies.clone());
    conn::serve(listener, router(state), trusted, limits, async move {
        let _ = shutdown.await;
        flag.store(true, Ordering::Relaxed);
        tracing::info!("shutting down: draining in-flight requests");
    })
    .await;
    pipeline.drain().await;
    // Background workers see the shutdown flag between rounds; one in the
    // middle of a slow delivery is cut off (its work stays in the outbox
    // for the next process).
    wakeup.notify_waiters();
    for worker in workers {
        let abort = worker.abort_handle();
        if tokio::time::timeout(std::time::Duration::from_secs(5), worker)
            .await
            .is_err()
        {
            abort.abort();
        }
    }
    tracing::info!("shutdown complete");
    Ok(())
}

/// Binds with SO_REUSEPORT so a new process can take over the port while
/// the old one drains (zero-downtime restarts).
pub fn bind(addr: SocketAddr) -> std::io::Result<TcpListener> {
    let socket = socket2::Socket::new(
        socket2::Domain::for_address(addr),
        socket2::Type::STREAM,
        Some(socket2::Protocol::TCP),
    )?;
    socket.set_reuse_address(true)?;
    #[cfg(unix)]
    socket.set_reuse_port(true)?;
    socket.set_nonblocking(true)?;
    socket.bind(&addr.into())?;
    socket.listen(1024)?;
    TcpListener::from_std(socket.into())
}
