//! The load itself: N keep-alive connections, each sending prepared
//! envelopes one after another (closed loop), or on a fixed schedule when a
//! rate is given (open loop: latency counts from the send, and a late
//! schedule shows up as a lower achieved rate).

use crate::payload::{self, Mix, Prepared};
use crate::proc::Sampler;
use crate::report::LoadResult;
use crate::{LoadArgs, seconds};
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1;
use hyper_util::rt::TokioIo;
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

pub struct Dsn {
    pub public_key: String,
    pub addr: SocketAddr,
    pub host: String,
    pub envelope_path: String,
}

pub fn parse_dsn(dsn: &str) -> Result<Dsn, String> {
    let rest = dsn
        .strip_prefix("http://")
        .ok_or("only http:// DSNs on loopback are supported")?;
    let (key, rest) = rest.split_once('@').ok_or("DSN has no public key")?;
    let public_key = key.split(':').next().unwrap_or(key).to_string();
    let (host, path) = rest.split_once('/').ok_or("DSN has no project id")?;
    let (prefix, project) = match path.trim_end_matches('/').rsplit_once('/') {
        Some((prefix, project)) => (format!("/{prefix}"), project),
        None => (String::new(), path.trim_end_matches('/')),
    };
    let addr: SocketAddr = host
        .replace("localhost", "127.0.0.1")
        .parse()
        .map_err(|_| format!("DSN host {host} must be a loopback ip:port"))?;
    if !addr.ip().is_loopback() {
        return Err(format!("refusing non-loopback target {addr}"));
    }
    Ok(Dsn {
        public_key,
        addr,
        host: host.to_string(),
        envelope_path: format!("{prefix}/api/{project}/envelope/"),
    })
}

/// Generates and compresses every body before the clock starts, on all
/// cores.
fn prepare_all(args: &LoadArgs, public_key: &str, count: usize) -> Vec<Prepared> {
    let mix = Mix {
        bugs: args.mix.bugs,
        unique_fraction: args.mix.unique,
    };
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0);
    let threads = std::thread::available_parallelism().map_or(2, |n| n.get());
    let chunk = count.div_ceil(threads).max(1);
    let mut out: Vec<Prepared> = Vec::with_capacity(count);
    std::thread::scope(|scope| {
        let handles: Vec<_> = (0..count)
            .step_by(chunk)
            .map(|start| {
                let mix = &mix;
                scope.spawn(move || {
                    (start..(start + chunk).min(count))
                        .map(|n| {
                            payload::prepare(
                                args.mix.seed,
                                mix,
                                args.mix.compression,
                                public_key,
                                n,
                                now,
                            )
                        })
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        for h in handles {
            out.extend(h.join().expect("generator thread"));
        }
    });
    out
}

#[derive(Default)]
struct WorkerStats {
    latencies_us: Vec<u32>,
    statuses: BTreeMap<String, u64>,
    acknowledged: u64,
    bytes_sent: u64,
}

pub async fn run(args: &LoadArgs) -> Result<LoadResult, Box<dyn std::error::Error>> {
    let dsn = parse_dsn(&args.dsn)?;
    let count = args.max_requests.unwrap_or(if args.rate > 0.0 {
        (args.rate * args.duration).ceil() as usize + args.concurrency
    } else {
        400_000
    });
    eprintln!("loadgen: preparing {count} envelopes…");
    let prep_started = Instant::now();
    let bodies = Arc::new(prepare_all(args, &dsn.public_key, count));
    let raw_total: usize = bodies.iter().map(|b| b.raw_len).sum();
    let wire_total: usize = bodies.iter().map(|b| b.body.len()).sum();
    eprintln!(
        "loadgen: prepared in {:.1} s (avg {} B raw, {} B on the wire); sending for {} s at c={}{}",
        prep_started.elapsed().as_secs_f64(),
        raw_total / count.max(1),
        wire_total / count.max(1),
        args.duration,
        args.concurrency,
        if args.rate > 0.0 {
            format!(", {} ev/s", args.rate)
        } else {
            String::new()
        }
    );
    let auth = format!(
        "Sentry sentry_key={}, sentry_version=7, sentry_client=sentry.python/2.75.0",
        dsn.public_key
    );
    let dsn = Arc::new(dsn);
    // What the server held before this run, so a run into a used project
    // reports only its own events and issues.
    let before = match &args.stored_cmd {
        Some(cmd) => read_stored(cmd).await,
        None => (None, None),
    };
    let next = Arc::new(AtomicUsize::new(0));
    let sampler = Sampler::start(&args.server_pid);
    let started = Instant::now();
    let deadline = started + seconds(args.duration);
    let interval = (args.rate > 0.0).then(|| Duration::from_secs_f64(1.0 / args.rate));
    let mut workers = Vec::new();
    for _ in 0..args.concurrency.max(1) {
        let (bodies, next, dsn, auth) = (bodies.clone(), next.clone(), dsn.clone(), auth.clone());
        workers.push(tokio::spawn(async move {
            worker(bodies, next, dsn, auth, started, deadline, interval).await
        }));
    }
    let mut stats = WorkerStats::default();
    for w in workers {
        let s = w.await?;
        stats.latencies_us.extend(s.latencies_us);
        for (k, v) in s.statuses {
            *stats.statuses.entry(k).or_default() += v;
        }
        stats.acknowledged += s.acknowledged;
        stats.bytes_sent += s.bytes_sent;
    }
    let elapsed = started.elapsed().as_secs_f64();
    let resources = sampler.stop().await;
    let (stored, issues, drain_seconds) = match &args.stored_cmd {
        Some(cmd) => wait_stored(cmd, before, stats.acknowledged, args.drain_timeout).await,
        None => (None, None, None),
    };
    stats.latencies_us.sort_unstable();
    Ok(LoadResult {
        label: args.label.clone(),
        concurrency: args.concurrency,
        target_rate: args.rate,
        duration: elapsed,
        sent: stats.latencies_us.len() as u64,
        acknowledged: stats.acknowledged,
        statuses: stats.statuses,
        latencies_us: stats.latencies_us,
        avg_raw_bytes: raw_total / count.max(1),
        avg_wire_bytes: wire_total / count.max(1),
        resources,
        stored,
        issues,
        drain_seconds,
        exhausted: next.load(Ordering::Relaxed) >= count,
    })
}

async fn worker(
    bodies: Arc<Vec<Prepared>>,
    next: Arc<AtomicUsize>,
    dsn: Arc<Dsn>,
    auth: String,
    started: Instant,
    deadline: Instant,
    interval: Option<Duration>,
) -> WorkerStats {
    let mut stats = WorkerStats::default();
    let mut conn: Option<http1::SendRequest<Full<Bytes>>> = None;
    loop {
        let n = next.fetch_add(1, Ordering::Relaxed);
        let Some(prepared) = bodies.get(n) else { break };
        if let Some(interval) = interval {
            let at = started + interval * n as u32;
            if at >= deadline {
                break;
            }
            tokio::time::sleep_until(at.into()).await;
        } else if Instant::now() >= deadline {
            break;
        }
        let sender = match conn.as_mut() {
            Some(s) if !s.is_closed() => s,
            _ => match connect(dsn.addr).await {
                Ok(s) => conn.insert(s),
                Err(e) => {
                    *stats.statuses.entry(format!("connect: {e}")).or_default() += 1;
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        let mut request = hyper::Request::post(dsn.envelope_path.as_str())
            .header("host", dsn.host.as_str())
            .header("content-type", "application/x-sentry-envelope")
            .header("user-agent", "sentry.python/2.75.0")
            .header("x-sentry-auth", auth.as_str());
        if let Some(encoding) = prepared.encoding {
            request = request.header("content-encoding", encoding);
        }
        let request = request
            .body(Full::new(prepared.body.clone()))
            .expect("valid request");
        let sent_at = Instant::now();
        let outcome = match sender.send_request(request).await {
            Ok(response) => {
                let status = response.status();
                // Read the whole body so the connection can be reused.
                let _ = response.into_body().collect().await;
                Ok(status)
            }
            Err(e) => Err(e),
        };
        let micros = sent_at.elapsed().as_micros().min(u32::MAX as u128) as u32;
        stats.latencies_us.push(micros);
        stats.bytes_sent += prepared.body.len() as u64;
        match outcome {
            Ok(status) => {
                if status.is_success() {
                    stats.acknowledged += 1;
                }
                *stats
                    .statuses
                    .entry(status.as_u16().to_string())
                    .or_default() += 1;
            }
            Err(e) => {
                conn = None;
                let kind = if e.is_canceled() || e.is_closed() || e.is_incomplete_message() {
                    "connection closed"
                } else {
                    "http error"
                };
                *stats.statuses.entry(kind.to_string()).or_default() += 1;
            }
        }
    }
    stats
}

async fn connect(addr: SocketAddr) -> std::io::Result<http1::SendRequest<Full<Bytes>>> {
    let stream = tokio::net::TcpStream::connect(addr).await?;
    stream.set_nodelay(true)?;
    let (sender, connection) = http1::handshake(TokioIo::new(stream))
        .await
        .map_err(std::io::Error::other)?;
    tokio::spawn(async move {
        let _ = connection.await;
    });
    Ok(sender)
}

async fn read_stored(cmd: &str) -> (Option<u64>, Option<u64>) {
    let Ok(out) = tokio::process::Command::new("sh")
        .arg("-c")
        .arg(cmd)
        .output()
        .await
    else {
        return (None, None);
    };
    let text = String::from_utf8_lossy(&out.stdout);
    let mut parts = text.split_whitespace().map(|p| p.parse::<u64>().ok());
    (parts.next().flatten(), parts.next().flatten())
}

/// Polls the server's own count until it has stored what it acknowledged;
/// returns what this run added.
async fn wait_stored(
    cmd: &str,
    before: (Option<u64>, Option<u64>),
    acknowledged: u64,
    timeout: f64,
) -> (Option<u64>, Option<u64>, Option<f64>) {
    let started = Instant::now();
    let added =
        |now: Option<u64>, was: Option<u64>| now.map(|n| n.saturating_sub(was.unwrap_or(0)));
    loop {
        let now = read_stored(cmd).await;
        let stored = added(now.0, before.0);
        let waited = started.elapsed().as_secs_f64();
        if stored.is_some_and(|s| s >= acknowledged) || waited >= timeout {
            return (stored, added(now.1, before.1), Some(waited));
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

#[cfg(test)]
mod tests {
    use super::parse_dsn;

    #[test]
    fn dsns_parse_and_must_be_loopback() {
        let d = parse_dsn("http://abc@127.0.0.1:9000/42").unwrap();
        assert_eq!(d.public_key, "abc");
        assert_eq!(d.envelope_path, "/api/42/envelope/");
        let d = parse_dsn("http://abc:secret@localhost:8000/sentry/7").unwrap();
        assert_eq!(d.envelope_path, "/sentry/api/7/envelope/");
        assert!(parse_dsn("http://abc@10.0.0.1:9000/1").is_err());
        assert!(parse_dsn("https://abc@127.0.0.1:9000/1").is_err());
    }
}
