//! Snag reporting its own errors (error-level log events and panics) to a
//! Sentry-compatible server, itself included, when `SNAG_SENTRY_DSN` is set.

use std::sync::Mutex;
use std::time::{Duration, Instant};

/// At most this many self-reports per minute: an error that repeats per
/// request (or a Snag reporting to itself while its database is down) must
/// not turn into a flood.
const MAX_PER_MINUTE: u32 = 30;

pub struct Reporter {
    _guard: sentry::ClientInitGuard,
}

impl Reporter {
    /// Flushes what is queued (on shutdown), waiting at most `timeout`.
    pub fn flush(&self, timeout: Duration) {
        if let Some(client) = sentry::Hub::current().client() {
            client.flush(Some(timeout));
        }
    }
}

/// Starts the client; None when `dsn` is None. An invalid DSN is an error
/// (the operator asked for reporting and would silently get none).
pub fn init(dsn: Option<&str>, environment: Option<&str>) -> Result<Option<Reporter>, String> {
    let Some(dsn) = dsn else { return Ok(None) };
    let parsed: sentry::types::Dsn = dsn
        .parse()
        .map_err(|e| format!("SNAG_SENTRY_DSN is invalid: {e}"))?;
    // reqwest with rustls needs a process-wide crypto provider for https DSNs.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let window = Mutex::new((Instant::now(), 0u32));
    let mut options = sentry::ClientOptions::new();
    options.dsn = Some(parsed);
    options.release = Some(concat!("snag@", env!("CARGO_PKG_VERSION")).into());
    options.environment = environment.map(|e| e.to_string().into());
    // Payloads of failing requests are other people's data: never send
    // request bodies, cookies or client addresses of Snag's own users.
    options.send_default_pii = false;
    options.attach_stacktrace = true;
    options.before_send = Some(std::sync::Arc::new(move |event| {
        let mut w = window.lock().unwrap_or_else(|p| p.into_inner());
        if w.0.elapsed() >= Duration::from_secs(60) {
            *w = (Instant::now(), 0);
        }
        w.1 += 1;
        (w.1 <= MAX_PER_MINUTE).then_some(event)
    }));
    let guard = sentry::init(options);
    Ok(Some(Reporter { _guard: guard }))
}

/// The tracing layer that turns error-level events into Sentry events.
pub fn layer<S>() -> impl tracing_subscriber::Layer<S>
where
    S: tracing::Subscriber + for<'a> tracing_subscriber::registry::LookupSpan<'a>,
{
    use tracing_subscriber::Layer;
    sentry::integrations::tracing::ErrorLayer::new()
        .with_filter(tracing_subscriber::filter::LevelFilter::ERROR)
}
