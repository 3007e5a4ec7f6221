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

fn unix_now() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}

/// Generates and compresses every body before the clock starts, on all
/// cores.
fn prepare_all(args: &LoadArgs, mix: &Mix, public_key: &str, count: usize) -> Vec<Prepared> {
    let now = unix_now();
    let threads = std::thread::available_parallelism().map_or(2, |n| n.get());
    let chunk = count.div_ceil(threads).max(1);
    let mut out: Vec<Prepared> = Vec::with_capacity(count);
    std::thread::scope(|scope| {
        let handles: Vec<_> = (0..count)
            .step_by(chunk)
            .map(|start| {
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

/// Where request bodies come from: all made before the run, or each made
/// when it is sent (`--stream`). Both give body `n` the same bytes.
enum Bodies {
    Prepared(Vec<Prepared>),
    Streamed {
        mix: Mix,
        seed: u64,
        compression: payload::Compression,
        public_key: String,
        now: f64,
        count: usize,
    },
}

impl Bodies {
    fn get(&self, n: usize) -> Option<Prepared> {
        match self {
            Bodies::Prepared(all) => all.get(n).map(|p| Prepared {
                body: p.body.clone(),
                encoding: p.encoding,
                raw_len: p.raw_len,
            }),
            Bodies::Streamed {
                mix,
                seed,
                compression,
                public_key,
                now,
                count,
            } => (n < *count)
                .then(|| payload::prepare(*seed, mix, *compression, public_key, n, *now)),
        }
    }
}

#[derive(Default)]
struct WorkerStats {
    latencies_us: Vec<u32>,
    statuses: BTreeMap<String, u64>,
    acknowledged: u64,
    bytes_sent: u64,
    raw_bytes: u64,
    retries: u64,
}

/// When a refused request is sent again (`--retry`).
fn should_retry(outcome: &Result<hyper::StatusCode, String>) -> bool {
    match outcome {
        Ok(status) => {
            *status == hyper::StatusCode::TOO_MANY_REQUESTS
                || *status == hyper::StatusCode::SERVICE_UNAVAILABLE
        }
        Err(_) => true,
    }
}

/// The pause before a retry: the server's Retry-After when it gives one,
/// capped so a fill keeps moving.
fn retry_pause(retry_after: Option<&str>) -> Duration {
    retry_after
        .and_then(|v| v.trim().parse::<f64>().ok())
        .map_or(Duration::from_millis(100), |s| {
            Duration::from_secs_f64(s.clamp(0.01, 2.0))
        })
}

pub async fn run(args: &LoadArgs) -> Result<LoadResult, Box<dyn std::error::Error>> {
    let dsn = parse_dsn(&args.dsn)?;
    let count = args.max_requests.unwrap_or(if args.rate > 0.0 {
        (args.rate * args.duration).ceil() as usize + args.concurrency
    } else {
        400_000
    });
    let mix = args.mix.mix(count);
    let (bodies, raw_total, wire_total) = if args.stream {
        eprintln!(
            "loadgen: generating up to {count} envelopes while sending, for {} s at c={}",
            args.duration, args.concurrency
        );
        let bodies = Bodies::Streamed {
            mix,
            seed: args.mix.seed,
            compression: args.mix.compression,
            public_key: dsn.public_key.clone(),
            now: unix_now(),
            count,
        };
        (bodies, None, None)
    } else {
        eprintln!("loadgen: preparing {count} envelopes…");
        let prep_started = Instant::now();
        let prepared = prepare_all(args, &mix, &dsn.public_key, count);
        let raw_total: usize = prepared.iter().map(|b| b.raw_len).sum();
        let wire_total: usize = prepared.iter().map(|b| b.body.len()).sum();
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
        (
            Bodies::Prepared(prepared),
            Some(raw_total),
            Some(wire_total),
        )
    };
    let bodies = Arc::new(bodies);
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
    let retry = args.retry;
    for _ in 0..args.concurrency.max(1) {
        let (bodies, next, dsn, auth) = (bodies.clone(), next.clone(), dsn.clone(), auth.clone());
        workers.push(tokio::spawn(async move {
            worker(bodies, next, dsn, auth, started, deadline, interval, retry).await
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
        stats.raw_bytes += s.raw_bytes;
        stats.retries += s.retries;
    }
    let elapsed = started.elapsed().as_secs_f64();
    let resources = sampler.stop().await;
    let drain = match &args.stored_cmd {
        Some(cmd) => {
            wait_stored(
                cmd,
                before,
                stats.acknowledged,
                args.drain_timeout,
                args.drain_stall,
                args.drain_poll,
            )
            .await
        }
        None => Drain::default(),
    };
    stats.latencies_us.sort_unstable();
    let sent = stats.latencies_us.len();
    let raw_total = raw_total.unwrap_or(stats.raw_bytes as usize);
    let wire_total = wire_total.unwrap_or(stats.bytes_sent as usize);
    let per = if args.stream { sent } else { count };
    Ok(LoadResult {
        label: args.label.clone(),
        concurrency: args.concurrency,
        target_rate: args.rate,
        duration: elapsed,
        sent: sent as u64,
        acknowledged: stats.acknowledged,
        statuses: stats.statuses,
        latencies_us: stats.latencies_us,
        avg_raw_bytes: raw_total / per.max(1),
        avg_wire_bytes: wire_total / per.max(1),
        resources,
        stored: drain.stored,
        stored_at_load_end: drain.stored_at_load_end,
        issues: drain.issues,
        drain_seconds: drain.seconds,
        retries: stats.retries,
        exhausted: next.load(Ordering::Relaxed) >= count,
    })
}

#[allow(clippy::too_many_arguments)]
async fn worker(
    bodies: Arc<Bodies>,
    next: Arc<AtomicUsize>,
    dsn: Arc<Dsn>,
    auth: String,
    started: Instant,
    deadline: Instant,
    interval: Option<Duration>,
    retry: bool,
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
        loop {
            let (outcome, micros, retry_after) = send_one(&mut conn, &dsn, &auth, &prepared).await;
            if retry && should_retry(&outcome) && Instant::now() < deadline {
                stats.retries += 1;
                tokio::time::sleep(retry_pause(retry_after.as_deref())).await;
                continue;
            }
            if let Some(micros) = micros {
                stats.latencies_us.push(micros);
                stats.bytes_sent += prepared.body.len() as u64;
                stats.raw_bytes += prepared.raw_len as u64;
            }
            let key = match outcome {
                Ok(status) => {
                    if status.is_success() {
                        stats.acknowledged += 1;
                    }
                    status.as_u16().to_string()
                }
                Err(kind) => kind,
            };
            *stats.statuses.entry(key).or_default() += 1;
            break;
        }
    }
    stats
}

/// One request on the worker's connection (opened or re-opened as
/// needed): the status or the kind of failure, the latency in µs (none
/// when no connection could be made, so nothing was sent), and the
/// server's Retry-After.
async fn send_one(
    conn: &mut Option<http1::SendRequest<Full<Bytes>>>,
    dsn: &Dsn,
    auth: &str,
    prepared: &Prepared,
) -> (
    Result<hyper::StatusCode, String>,
    Option<u32>,
    Option<String>,
) {
    // Wait until the kept-alive connection can take the next request (it
    // may still be finishing the previous response); a closed one is
    // replaced.
    if let Some(s) = conn.as_mut()
        && s.ready().await.is_err()
    {
        *conn = None;
    }
    let sender = match conn.as_mut() {
        Some(s) if !s.is_closed() => s,
        _ => match connect(dsn.addr).await {
            Ok(s) => conn.insert(s),
            Err(e) => {
                tokio::time::sleep(Duration::from_millis(50)).await;
                return (Err(format!("connect: {e}")), None, None);
            }
        },
    };
    let mut request = hyper::Request::post(dsn.envelope_path.as_str())
        .header("host", dsn.host.as_str())
        .header("content-type", "application/x-sentry-envelope")
        .header("user-agent", "sentry.python/2.75.0")
        .header("x-sentry-auth", auth);
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
            let retry_after = response
                .headers()
                .get(hyper::header::RETRY_AFTER)
                .and_then(|v| v.to_str().ok())
                .map(str::to_string);
            // Read the whole body so the connection can be reused.
            let _ = response.into_body().collect().await;
            Ok((status, retry_after))
        }
        Err(e) => Err(e),
    };
    let micros = sent_at.elapsed().as_micros().min(u32::MAX as u128) as u32;
    match outcome {
        Ok((status, retry_after)) => (Ok(status), Some(micros), retry_after),
        Err(e) => {
            *conn = None;
            let kind = if e.is_canceled() || e.is_closed() || e.is_incomplete_message() {
                "connection closed"
            } else {
                "http error"
            };
            (Err(kind.to_string()), Some(micros), None)
        }
    }
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

#[derive(Default)]
struct Drain {
    /// What this run added, when the wait ended.
    stored: Option<u64>,
    issues: Option<u64>,
    /// Seconds after the load until the final count was first seen (so
    /// time spent waiting on a stalled count is not charged as draining).
    seconds: Option<f64>,
    /// What this run had added when the load ended (before any drain).
    stored_at_load_end: Option<u64>,
}

/// Polls the server's own count every `poll` seconds until it has stored
/// what it acknowledged (or the timeout, or no progress for `stall`
/// seconds); reports what this run added.
async fn wait_stored(
    cmd: &str,
    before: (Option<u64>, Option<u64>),
    acknowledged: u64,
    timeout: f64,
    stall: Option<f64>,
    poll: f64,
) -> Drain {
    let started = Instant::now();
    let added =
        |now: Option<u64>, was: Option<u64>| now.map(|n| n.saturating_sub(was.unwrap_or(0)));
    let mut at_load_end = None;
    // The count last seen and when it was first seen.
    let mut progress: Option<(Option<u64>, f64)> = None;
    loop {
        let now = read_stored(cmd).await;
        let stored = added(now.0, before.0);
        let waited = started.elapsed().as_secs_f64();
        if at_load_end.is_none() {
            at_load_end = Some(stored);
        }
        let since = match progress {
            Some((last, since)) if last == stored => since,
            _ => {
                progress = Some((stored, waited));
                waited
            }
        };
        let stalled = stall.is_some_and(|limit| waited - since >= limit);
        if stored.is_some_and(|s| s >= acknowledged) || waited >= timeout || stalled {
            return Drain {
                stored,
                issues: added(now.1, before.1),
                seconds: Some(since),
                stored_at_load_end: at_load_end.flatten(),
            };
        }
        tokio::time::sleep(seconds(poll.max(0.05))).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn streamed_bodies_equal_prepared_ones() {
        let mix = || Mix {
            bugs: 5,
            unique_fraction: 0.2,
            zipf: Some(Arc::new(crate::spread::Zipf::new(10, 1.0, 40))),
        };
        let streamed = Bodies::Streamed {
            mix: mix(),
            seed: 4,
            compression: payload::Compression::Gzip,
            public_key: "k".into(),
            now: 1.7e9,
            count: 40,
        };
        let prepared = Bodies::Prepared(
            (0..40)
                .map(|n| payload::prepare(4, &mix(), payload::Compression::Gzip, "k", n, 1.7e9))
                .collect(),
        );
        for n in [0, 7, 39] {
            assert_eq!(streamed.get(n).unwrap().body, prepared.get(n).unwrap().body);
        }
        assert!(streamed.get(40).is_none() && prepared.get(40).is_none());
    }

    #[test]
    fn only_overload_and_broken_connections_are_retried() {
        assert!(should_retry(&Ok(hyper::StatusCode::TOO_MANY_REQUESTS)));
        assert!(should_retry(&Ok(hyper::StatusCode::SERVICE_UNAVAILABLE)));
        assert!(should_retry(&Err("connection closed".into())));
        assert!(!should_retry(&Ok(hyper::StatusCode::OK)));
        assert!(!should_retry(&Ok(hyper::StatusCode::BAD_REQUEST)));
        assert_eq!(retry_pause(Some("1")), Duration::from_secs(1));
        assert_eq!(retry_pause(Some("3600")), Duration::from_secs(2));
        assert_eq!(retry_pause(None), Duration::from_millis(100));
    }

    #[tokio::test]
    async fn drain_reports_what_the_run_added_and_gives_up_on_a_stall() {
        // A "server" whose count never reaches what was acknowledged.
        let cmd = "echo 107 12";
        let started = Instant::now();
        let d = wait_stored(cmd, (Some(100), Some(10)), 50, 30.0, Some(1.0), 0.2).await;
        let waited = started.elapsed().as_secs_f64();
        assert!((1.0..5.0).contains(&waited), "waited {waited} s");
        assert_eq!(d.stored, Some(7));
        assert_eq!(d.issues, Some(2));
        assert_eq!(d.stored_at_load_end, Some(7));
        // The count never moved after the load, so nothing was drained.
        assert!(d.seconds.unwrap() < 0.5, "{:?}", d.seconds);
        let d = wait_stored(cmd, (Some(100), Some(10)), 7, 30.0, None, 0.5).await;
        assert!(d.seconds.unwrap() < 0.5);

        // A count that grows for two more polls and then stops short: the
        // drain ends when the last event arrived, not when the wait gave up.
        let file = std::env::temp_dir().join(format!("loadgen-drain-{}", std::process::id()));
        let cmd = format!(
            "n=$(cat {f} 2>/dev/null || echo 0); n=$((n + 1)); echo $n > {f}; [ $n -gt 3 ] && n=3; echo $n 0",
            f = file.display()
        );
        let d = wait_stored(&cmd, (Some(0), Some(0)), 10, 30.0, Some(1.0), 0.3).await;
        let _ = std::fs::remove_file(&file);
        assert_eq!(d.stored_at_load_end, Some(1));
        assert_eq!(d.stored, Some(3));
        let drained = d.seconds.unwrap();
        assert!((0.5..1.5).contains(&drained), "drained {drained} s");
    }

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
