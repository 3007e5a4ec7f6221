//! Dashboard timing: log in as a real user through the login form, then
//! request each page over and over (one keep-alive connection, one request
//! at a time, full body read) and report p50/p95/max per page.

use crate::report::percentile_ms;
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1;
use hyper_util::rt::TokioIo;
use serde_json::json;
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::Instant;

#[derive(clap::Args)]
pub struct DashboardArgs {
    /// e.g. http://127.0.0.1:9000 (loopback only).
    #[arg(long)]
    base_url: String,
    #[arg(long)]
    email: String,
    #[arg(long, env = "SNAG_BENCH_PASSWORD")]
    password: String,
    /// Timed requests per page.
    #[arg(long, default_value_t = 50)]
    requests: usize,
    /// Untimed requests per page first (warm caches, as a user's second
    /// visit would find them).
    #[arg(long, default_value_t = 2)]
    warmup: usize,
    /// A page to time, as LABEL=PATH (repeatable), e.g.
    /// "issue list=/projects/1/issues".
    #[arg(long = "page", value_parser = parse_page, required = true)]
    pages: Vec<(String, String)>,
    /// Write the result as JSON here too.
    #[arg(long)]
    pub json: Option<std::path::PathBuf>,
}

fn parse_page(s: &str) -> Result<(String, String), String> {
    let (label, path) = s
        .split_once('=')
        .ok_or_else(|| format!("{s:?}: expected LABEL=PATH"))?;
    if !path.starts_with('/') || label.trim().is_empty() {
        return Err(format!("{s:?}: expected LABEL=/path"));
    }
    Ok((label.trim().to_string(), path.to_string()))
}

pub struct PageResult {
    pub label: String,
    pub path: String,
    /// Sorted, of the successful requests.
    pub latencies_us: Vec<u32>,
    pub bytes: usize,
    pub failures: usize,
    pub statuses: BTreeMap<String, usize>,
}

/// `http://127.0.0.1:PORT[/]` → the address and Host header.
fn parse_base(base: &str) -> Result<(SocketAddr, String), String> {
    let host = base
        .strip_prefix("http://")
        .ok_or("only http:// on loopback is supported")?
        .trim_end_matches('/');
    let addr: SocketAddr = host
        .replace("localhost", "127.0.0.1")
        .parse()
        .map_err(|_| format!("{host} must be a loopback ip:port"))?;
    if !addr.ip().is_loopback() {
        return Err(format!("refusing non-loopback target {addr}"));
    }
    Ok((addr, host.to_string()))
}

/// application/x-www-form-urlencoded, as a browser sends the login form.
fn form_encode(pairs: &[(&str, &str)]) -> String {
    let enc = |s: &str| {
        s.bytes()
            .map(|b| match b {
                b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'*' => {
                    (b as char).to_string()
                }
                b' ' => "+".to_string(),
                _ => format!("%{b:02X}"),
            })
            .collect::<String>()
    };
    pairs
        .iter()
        .map(|(k, v)| format!("{}={}", enc(k), enc(v)))
        .collect::<Vec<_>>()
        .join("&")
}

/// The `name=value` parts of Set-Cookie headers, as a Cookie header.
fn cookie_header<'a>(set_cookies: impl Iterator<Item = &'a str>) -> String {
    set_cookies
        .filter_map(|c| c.split(';').next())
        .map(str::trim)
        .filter(|c| c.contains('=') && !c.ends_with('='))
        .collect::<Vec<_>>()
        .join("; ")
}

struct Client {
    addr: SocketAddr,
    host: String,
    cookie: String,
    conn: Option<http1::SendRequest<Full<Bytes>>>,
}

struct Response {
    status: u16,
    headers: hyper::HeaderMap,
    body: Bytes,
}

impl Client {
    async fn send(
        &mut self,
        method: hyper::Method,
        path: &str,
        form: Option<String>,
    ) -> Result<Response, Box<dyn std::error::Error>> {
        // A kept-alive connection the server closed meanwhile is replaced.
        if let Some(c) = self.conn.as_mut()
            && c.ready().await.is_err()
        {
            self.conn = None;
        }
        if self.conn.is_none() {
            let stream = tokio::net::TcpStream::connect(self.addr).await?;
            stream.set_nodelay(true)?;
            let (sender, connection) = http1::handshake(TokioIo::new(stream)).await?;
            tokio::spawn(async move {
                let _ = connection.await;
            });
            self.conn = Some(sender);
        }
        let mut request = hyper::Request::builder()
            .method(method)
            .uri(path)
            .header("host", self.host.as_str())
            .header("user-agent", "snag-loadgen dashboard")
            .header("accept", "text/html");
        if !self.cookie.is_empty() {
            request = request.header("cookie", self.cookie.as_str());
        }
        let body = match form {
            Some(form) => {
                request = request.header("content-type", "application/x-www-form-urlencoded");
                Bytes::from(form)
            }
            None => Bytes::new(),
        };
        let sender = self.conn.as_mut().expect("connected above");
        let response = match sender.send_request(request.body(Full::new(body))?).await {
            Ok(r) => r,
            Err(e) => {
                self.conn = None;
                return Err(e.into());
            }
        };
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let body = response.into_body().collect().await?.to_bytes();
        Ok(Response {
            status,
            headers,
            body,
        })
    }

    /// Logs in through the form and keeps the session cookie.
    async fn login(
        &mut self,
        email: &str,
        password: &str,
    ) -> Result<(), Box<dyn std::error::Error>> {
        let form = form_encode(&[
            ("email", email),
            ("password", password),
            ("next", "/projects"),
        ]);
        let r = self.send(hyper::Method::POST, "/login", Some(form)).await?;
        self.cookie = cookie_header(
            r.headers
                .get_all(hyper::header::SET_COOKIE)
                .iter()
                .filter_map(|v| v.to_str().ok()),
        );
        if !(300..400).contains(&r.status) || self.cookie.is_empty() {
            return Err(format!(
                "login as {email} failed: HTTP {} without a session cookie",
                r.status
            )
            .into());
        }
        let check = self.send(hyper::Method::GET, "/projects", None).await?;
        if check.status != 200 {
            return Err(format!("logged in, but /projects answered {}", check.status).into());
        }
        Ok(())
    }
}

pub async fn run(args: &DashboardArgs) -> Result<Vec<PageResult>, Box<dyn std::error::Error>> {
    let (addr, host) = parse_base(&args.base_url)?;
    let mut client = Client {
        addr,
        host,
        cookie: String::new(),
        conn: None,
    };
    client.login(&args.email, &args.password).await?;
    let mut results = Vec::new();
    for (label, path) in &args.pages {
        for _ in 0..args.warmup {
            client.send(hyper::Method::GET, path, None).await?;
        }
        let mut page = PageResult {
            label: label.clone(),
            path: path.clone(),
            latencies_us: Vec::with_capacity(args.requests),
            bytes: 0,
            failures: 0,
            statuses: BTreeMap::new(),
        };
        for _ in 0..args.requests {
            let started = Instant::now();
            let outcome = client.send(hyper::Method::GET, path, None).await;
            let micros = started.elapsed().as_micros().min(u32::MAX as u128) as u32;
            let key = match outcome {
                Ok(r) if r.status == 200 => {
                    page.latencies_us.push(micros);
                    page.bytes = r.body.len();
                    "200".to_string()
                }
                Ok(r) => {
                    page.failures += 1;
                    r.status.to_string()
                }
                Err(e) => {
                    page.failures += 1;
                    format!("error: {e}")
                }
            };
            *page.statuses.entry(key).or_default() += 1;
        }
        page.latencies_us.sort_unstable();
        eprintln!(
            "dashboard: {label}: p50 {:.1} ms, p95 {:.1} ms",
            percentile_ms(&page.latencies_us, 50.0),
            percentile_ms(&page.latencies_us, 95.0)
        );
        results.push(page);
    }
    Ok(results)
}

pub fn print(pages: &[PageResult]) {
    let w = pages
        .iter()
        .map(|p| p.label.chars().count())
        .max()
        .unwrap_or(4)
        .max(4);
    println!();
    println!(
        "| {:<w$} | {:>8} | {:>8} | {:>8} | {:>8} | {:>8} |",
        "page", "p50 ms", "p95 ms", "max ms", "KiB", "failed"
    );
    println!(
        "|{}|{}|{}|{}|{}|{}|",
        "-".repeat(w + 2),
        "-".repeat(10),
        "-".repeat(10),
        "-".repeat(10),
        "-".repeat(10),
        "-".repeat(10)
    );
    for p in pages {
        let failed = if p.failures == 0 {
            "0".to_string()
        } else {
            p.statuses
                .iter()
                .filter(|(k, _)| *k != "200")
                .map(|(k, v)| format!("{v}×{k}"))
                .collect::<Vec<_>>()
                .join(" ")
        };
        println!(
            "| {:<w$} | {:>8.1} | {:>8.1} | {:>8.1} | {:>8.1} | {:>8} |",
            p.label,
            percentile_ms(&p.latencies_us, 50.0),
            percentile_ms(&p.latencies_us, 95.0),
            percentile_ms(&p.latencies_us, 100.0),
            p.bytes as f64 / 1024.0,
            failed
        );
    }
    println!();
}

pub fn to_json(pages: &[PageResult]) -> serde_json::Value {
    json!(
        pages
            .iter()
            .map(|p| json!({
                "label": p.label,
                "path": p.path,
                "requests": p.latencies_us.len() + p.failures,
                "p50_ms": percentile_ms(&p.latencies_us, 50.0),
                "p95_ms": percentile_ms(&p.latencies_us, 95.0),
                "max_ms": percentile_ms(&p.latencies_us, 100.0),
                "bytes": p.bytes,
                "failures": p.failures,
                "statuses": p.statuses,
            }))
            .collect::<Vec<_>>()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pages_parse_as_label_and_path() {
        assert_eq!(
            parse_page("sorted by events=/projects/1/issues?sort=freq"),
            Ok((
                "sorted by events".to_string(),
                "/projects/1/issues?sort=freq".to_string()
            ))
        );
        assert!(parse_page("no path").is_err());
        assert!(parse_page("relative=issues").is_err());
        assert!(parse_page("=/x").is_err());
    }

    #[test]
    fn only_loopback_bases() {
        let (addr, host) = parse_base("http://localhost:8000/").unwrap();
        assert_eq!(addr.to_string(), "127.0.0.1:8000");
        assert_eq!(host, "localhost:8000");
        assert!(parse_base("http://192.168.1.2:80").is_err());
        assert!(parse_base("https://127.0.0.1:80").is_err());
    }

    #[test]
    fn login_form_and_cookies() {
        assert_eq!(
            form_encode(&[("email", "a+b@x.org"), ("next", "/p q")]),
            "email=a%2Bb%40x.org&next=%2Fp+q"
        );
        let cookies = [
            "snag_session=abc123; HttpOnly; SameSite=Lax; Path=/",
            "other=1",
            "cleared=; Max-Age=0",
        ];
        assert_eq!(
            cookie_header(cookies.iter().copied()),
            "snag_session=abc123; other=1"
        );
    }
}
