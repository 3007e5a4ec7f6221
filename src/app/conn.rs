//! The HTTP connection loop. axum's `serve` has no header or body read
//! timeout and no connection cap, so a client that trickles its request
//! (slowloris) or opens connections by the thousand would hold sockets and
//! memory forever; this loop bounds all three.

use axum::Router;
use axum::body::Body;
use axum::extract::Request;
use bytes::Bytes;
use http_body::{Body as HttpBody, Frame, SizeHint};
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto::Builder;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::{Semaphore, watch};
use tower::ServiceExt as _;

/// Connection-level limits, from `SNAG_HEADER_READ_TIMEOUT_SECS`,
/// `SNAG_BODY_READ_TIMEOUT_SECS` and `SNAG_MAX_CONNECTIONS`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnLimits {
    /// From the first byte of a request (or the end of the previous one on
    /// a kept-alive connection) to the end of its headers. Idle keep-alive
    /// connections are closed after this long too.
    pub header_read_timeout: Duration,
    /// From the end of the headers to the last byte of the body.
    pub body_read_timeout: Duration,
    /// Open connections; one more is answered 503 and closed.
    pub max_connections: usize,
}

/// Sockets kept free for the database pool, SMTP and files when the
/// connection cap is derived from the open-files limit.
const RESERVED_FDS: u64 = 128;
const DEFAULT_MAX_CONNECTIONS: u64 = 10_000;

impl ConnLimits {
    pub fn from_env() -> Result<Self, String> {
        Self::with_lookup(crate::config::env_var, open_files_limit())
    }

    /// `fd_limit` is the soft open-files limit; the default connection cap
    /// stays below it so accept() never fails with EMFILE.
    pub fn with_lookup(
        lookup: impl Fn(&str) -> Option<String>,
        fd_limit: Option<u64>,
    ) -> Result<Self, String> {
        let secs = |name: &str, default: u64| -> Result<Duration, String> {
            match lookup(name) {
                None => Ok(Duration::from_secs(default)),
                Some(v) => match v.trim().parse::<f64>() {
                    Ok(s) if s > 0.0 && s.is_finite() => Ok(Duration::from_secs_f64(s)),
                    _ => Err(format!("{name}: {v:?} is not a positive number of seconds")),
                },
            }
        };
        let default_max = fd_limit
            .map(|l| {
                l.saturating_sub(RESERVED_FDS)
                    .clamp(16, DEFAULT_MAX_CONNECTIONS)
            })
            .unwrap_or(1024);
        let max_connections = match lookup("SNAG_MAX_CONNECTIONS") {
            None => default_max as usize,
            Some(v) => v
                .trim()
                .parse::<usize>()
                .ok()
                .filter(|n| *n > 0)
                .ok_or_else(|| format!("SNAG_MAX_CONNECTIONS: {v:?} is not a positive number"))?,
        };
        Ok(ConnLimits {
            header_read_timeout: secs("SNAG_HEADER_READ_TIMEOUT_SECS", 30)?,
            body_read_timeout: secs("SNAG_BODY_READ_TIMEOUT_SECS", 60)?,
            max_connections,
        })
    }
}

/// The soft `RLIMIT_NOFILE`, read from /proc (no unsafe libc call needed).
fn open_files_limit() -> Option<u64> {
    let limits = std::fs::read_to_string("/proc/self/limits").ok()?;
    let line = limits.lines().find(|l| l.starts_with("Max open files"))?;
    line.split_whitespace().nth(3)?.parse().ok()
}

/// The error a request body read returns once its deadline has passed.
#[derive(Debug, thiserror::Error)]
#[error("the request body was not received within {0:?}")]
pub struct BodyTimeout(pub Duration);

/// Whether `err` (or anything in its source chain) is a [`BodyTimeout`].
pub fn is_body_timeout(err: &(dyn std::error::Error + 'static)) -> bool {
    let mut current = Some(err);
    while let Some(e) = current {
        if e.is::<BodyTimeout>() {
            return true;
        }
        current = e.source();
    }
    false
}

/// A request body that fails with [`BodyTimeout`] when it is not complete
/// by its deadline: a total, not a per-chunk, limit, so trickling one byte
/// at a time does not keep it alive.
struct DeadlineBody {
    inner: Body,
    deadline: Pin<Box<tokio::time::Sleep>>,
    timeout: Duration,
}

impl HttpBody for DeadlineBody {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        if let Poll::Ready(frame) = Pin::new(&mut self.inner).poll_frame(cx) {
            return Poll::Ready(frame);
        }
        if self.deadline.as_mut().poll(cx).is_ready() {
            let timeout = self.timeout;
            return Poll::Ready(Some(Err(axum::Error::new(BodyTimeout(timeout)))));
        }
        Poll::Pending
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// Per request: the body deadline, and the client address (only the peer
/// decides whether forwarding headers are believed; downstream code sees
/// one X-Forwarded-For value, the client address Snag trusts).
fn prepare(
    req: Request<hyper::body::Incoming>,
    peer: std::net::IpAddr,
    trusted: &[crate::config::IpNet],
    body_timeout: Duration,
) -> Request {
    let mut req = req.map(|incoming| {
        let inner = Body::new(incoming);
        if inner.is_end_stream() {
            return inner;
        }
        Body::new(DeadlineBody {
            inner,
            deadline: Box::pin(tokio::time::sleep(body_timeout)),
            timeout: body_timeout,
        })
    });
    let client = crate::config::client_ip(peer, req.headers(), trusted);
    let headers = req.headers_mut();
    headers.remove("x-real-ip");
    if !crate::config::is_trusted(peer, trusted) {
        headers.remove("x-forwarded-proto");
    }
    if let Ok(value) = axum::http::HeaderValue::from_str(&client.to_string()) {
        headers.insert("x-forwarded-for", value);
    }
    if let Some(rewritten) = crate::ingest::canonical_path(req.uri()) {
        *req.uri_mut() = rewritten;
    }
    req
}

const OVER_CAPACITY: &[u8] = b"HTTP/1.1 503 Service Unavailable\r\n\
content-type: application/json\r\n\
content-length: 38\r\n\
connection: close\r\n\r\n\
{\"detail\":\"too many open connections\"}";

/// Answers a connection over the cap with a 503 and closes it. The
/// request head is read first (briefly, boundedly): an HTTP client treats
/// bytes that arrive before it has sent its request as a broken connection,
/// and closing with unread data would reset the connection before the
/// client has read the answer.
async fn refuse(mut stream: TcpStream) {
    let _ = tokio::time::timeout(Duration::from_secs(2), async {
        let mut head = Vec::new();
        let mut buf = [0u8; 4096];
        while head.len() < 16 * 1024 && !head.windows(4).any(|w| w == b"\r\n\r\n") {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(n) => head.extend_from_slice(&buf[..n]),
            }
        }
        let _ = stream.write_all(OVER_CAPACITY).await;
        let _ = stream.shutdown().await;
        let mut drained = 0;
        while drained < 64 * 1024 {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => drained += n,
            }
        }
    })
    .await;
}

/// Serves `app` on `listener` until `shutdown` resolves, then lets every
/// open connection finish its in-flight request and returns.
pub async fn serve(
    mut listener: crate::ops::listener::DrainableListener,
    app: Router,
    trusted: Arc<Vec<crate::config::IpNet>>,
    limits: ConnLimits,
    shutdown: impl Future<Output = ()>,
) {
    let mut builder = Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout);
    builder
        .http2()
        .timer(TokioTimer::new())
        // A silent HTTP/2 peer is dropped like an idle HTTP/1 one.
        .keep_alive_interval(limits.header_read_timeout)
        .keep_alive_timeout(Duration::from_secs(20))
        .max_concurrent_streams(128);
    let builder = Arc::new(builder);
    let slots = Arc::new(Semaphore::new(limits.max_connections));
    // Refusing costs a socket for up to two seconds; past this many at
    // once, extra connections are closed without an answer.
    let refusals = Arc::new(Semaphore::new(256));
    // Connections hold a receiver; shutdown is done when all are dropped.
    let (signal, _) = watch::channel(());
    let (close_tx, close_rx) = watch::channel(());
    let mut shutdown = std::pin::pin!(shutdown);
    let mut warned_full = false;
    loop {
        // The listener retries failed accepts itself, and stops accepting
        // (pending forever) once a reload hands the socket to a successor.
        let (stream, peer) = tokio::select! {
            conn = axum::serve::Listener::accept(&mut listener) => conn,
            () = &mut shutdown => break,
        };
        let Ok(slot) = slots.clone().try_acquire_owned() else {
            if !warned_full {
                tracing::warn!(
                    max_connections = limits.max_connections,
                    "connection limit reached; answering 503"
                );
                warned_full = true;
            }
            if let Ok(permit) = refusals.clone().try_acquire_owned() {
                tokio::spawn(async move {
                    refuse(stream).await;
                    drop(permit);
                });
            }
            continue;
        };
        warned_full = false;
        let _ = stream.set_nodelay(true);
        let app = app.clone();
        let trusted = trusted.clone();
        let body_timeout = limits.body_read_timeout;
        let header_timeout = limits.header_read_timeout;
        let served = Arc::new(AtomicBool::new(false));
        let first_seen = served.clone();
        let service = hyper::service::service_fn(move |req: Request<hyper::body::Incoming>| {
            first_seen.store(true, Ordering::Relaxed);
            let req = prepare(req, peer.ip(), &trusted, body_timeout);
            app.clone().oneshot(req)
        });
        let builder = builder.clone();
        let mut signal = signal.subscribe();
        let close_rx = close_rx.clone();
        tokio::spawn(async move {
            let conn = builder.serve_connection_with_upgrades(TokioIo::new(stream), service);
            let mut conn = std::pin::pin!(conn);
            // hyper's header timeout starts only once it has told HTTP/1
            // from HTTP/2, which waits for bytes without a limit: a client
            // must have sent a whole first request head by then.
            let mut first_request = std::pin::pin!(tokio::time::sleep(header_timeout));
            let mut watching = true;
            loop {
                tokio::select! {
                    result = conn.as_mut() => {
                        if let Err(e) = result {
                            tracing::debug!(error = %e, "connection ended with an error");
                        }
                        break;
                    }
                    _ = signal.changed() => conn.as_mut().graceful_shutdown(),
                    () = &mut first_request, if watching => {
                        if !served.load(Ordering::Relaxed) {
                            tracing::debug!(%peer, "no request head within the header timeout; closing");
                            break;
                        }
                        watching = false;
                    }
                }
            }
            drop(slot);
            drop(close_rx);
        });
    }
    drop(listener);
    let _ = signal.send(());
    drop(close_rx);
    close_tx.closed().await;
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn limits(env: &[(&str, &str)], fd: Option<u64>) -> Result<ConnLimits, String> {
        let env: HashMap<String, String> = env
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        ConnLimits::with_lookup(|k| env.get(k).cloned(), fd)
    }

    #[test]
    fn defaults_follow_the_open_files_limit() {
        let l = limits(&[], Some(1024)).unwrap();
        assert_eq!(l.max_connections, 1024 - 128);
        assert_eq!(l.header_read_timeout, Duration::from_secs(30));
        assert_eq!(l.body_read_timeout, Duration::from_secs(60));
        assert_eq!(limits(&[], Some(1 << 20)).unwrap().max_connections, 10_000);
        assert_eq!(limits(&[], Some(100)).unwrap().max_connections, 16);
        assert_eq!(limits(&[], None).unwrap().max_connections, 1024);
    }

    #[test]
    fn overrides_and_bad_values() {
        let l = limits(
            &[
                ("SNAG_HEADER_READ_TIMEOUT_SECS", "1.5"),
                ("SNAG_BODY_READ_TIMEOUT_SECS", "2"),
                ("SNAG_MAX_CONNECTIONS", "50"),
            ],
            Some(1024),
        )
        .unwrap();
        assert_eq!(l.header_read_timeout, Duration::from_millis(1500));
        assert_eq!(l.body_read_timeout, Duration::from_secs(2));
        assert_eq!(l.max_connections, 50);
        for (name, bad) in [
            ("SNAG_HEADER_READ_TIMEOUT_SECS", "0"),
            ("SNAG_BODY_READ_TIMEOUT_SECS", "soon"),
            ("SNAG_MAX_CONNECTIONS", "-1"),
            ("SNAG_MAX_CONNECTIONS", "0"),
        ] {
            let err = limits(&[(name, bad)], None).unwrap_err();
            assert!(err.starts_with(name), "{err}");
        }
    }

    #[test]
    fn over_capacity_answer_is_well_formed() {
        let text = std::str::from_utf8(OVER_CAPACITY).unwrap();
        let (head, body) = text.split_once("\r\n\r\n").unwrap();
        assert!(head.contains(&format!("content-length: {}", body.len())));
        assert!(serde_json::from_str::<serde_json::Value>(body).is_ok());
    }

    #[test]
    fn body_timeout_is_found_in_a_source_chain() {
        let wrapped = axum::Error::new(BodyTimeout(Duration::from_secs(1)));
        assert!(is_body_timeout(&wrapped));
        let other = std::io::Error::other("x");
        assert!(!is_body_timeout(&other));
    }
}
