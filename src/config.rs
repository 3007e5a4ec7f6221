//! Typed configuration, read once from the environment (twelve-factor).

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("{0} is not set")]
    Missing(&'static str),
    #[error("{name} is invalid: {reason}")]
    Invalid { name: &'static str, reason: String },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    Json,
    Pretty,
}

#[derive(Debug, Clone)]
pub struct Config {
    pub database_url: String,
    pub bind: SocketAddr,
    /// Public URL, no trailing slash; DSNs and links are built from it.
    pub base_url: String,
    pub secret_key: Option<String>,
    pub dev_mode: bool,
    pub log_format: LogFormat,
    pub db_max_connections: u32,
    /// How many accepted-but-uncommitted events may wait for the writer
    /// before ingest answers 503.
    pub pipeline_queue: usize,
    pub pipeline_batch: usize,
    pub shutdown_grace: Duration,
    /// On shutdown or hand-over: how long the process keeps its open
    /// connections (answering with `Connection: close`) after it stopped
    /// accepting, before idle keep-alive connections are closed.
    pub drain_delay: Duration,
    /// How long SIGHUP waits for the successor to become ready.
    pub reload_timeout: Duration,
    pub session_ttl: Duration,
    /// Peers whose X-Forwarded-For / X-Real-IP headers are believed.
    pub trusted_proxies: Vec<IpNet>,
    pub retention: RetentionPolicy,
    /// Where Snag reports its own errors (any Sentry-compatible server).
    pub sentry_dsn: Option<String>,
    pub sentry_environment: Option<String>,
}

/// Instance-wide retention defaults and how the background purge paces
/// itself (projects may override the limits).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetentionPolicy {
    /// Events older than this are purged; None keeps them forever.
    pub days: Option<i64>,
    /// A project keeps at most this many events; None is no cap.
    pub max_events: Option<i64>,
    /// Time between purge passes; zero disables the background job.
    pub interval: Duration,
    /// Rows per delete statement.
    pub batch: i64,
    /// Sleep between statements, so purging yields to ingest.
    pub pause: Duration,
}

impl Default for RetentionPolicy {
    fn default() -> Self {
        Self {
            days: Some(90),
            max_events: None,
            interval: Duration::from_secs(3600),
            batch: 1000,
            pause: Duration::from_millis(50),
        }
    }
}

impl RetentionPolicy {
    pub fn from_env() -> Result<Self, ConfigError> {
        let defaults = Self::default();
        let positive = |n: i64| (n > 0).then_some(n);
        Ok(Self {
            days: positive(parse_num(
                "SNAG_RETENTION_DAYS",
                defaults.days.unwrap_or(0),
            )?),
            max_events: positive(parse_num("SNAG_RETENTION_MAX_EVENTS", 0)?),
            interval: Duration::from_secs(parse_num(
                "SNAG_RETENTION_INTERVAL_SECS",
                defaults.interval.as_secs(),
            )?),
            batch: parse_num("SNAG_RETENTION_BATCH", defaults.batch)?.clamp(1, 100_000),
            pause: Duration::from_millis(parse_num(
                "SNAG_RETENTION_PAUSE_MS",
                defaults.pause.as_millis() as u64,
            )?),
        })
    }
}

/// An address block such as `10.0.0.0/8` or `::1/128` (a bare address is a
/// block of one).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IpNet {
    addr: IpAddr,
    prefix: u8,
}

impl IpNet {
    pub fn parse(text: &str) -> Option<Self> {
        let (addr, prefix) = match text.trim().split_once('/') {
            Some((a, p)) => (a.parse::<IpAddr>().ok()?, Some(p.parse::<u8>().ok()?)),
            None => (text.trim().parse::<IpAddr>().ok()?, None),
        };
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let prefix = prefix.unwrap_or(max);
        (prefix <= max).then_some(Self { addr, prefix })
    }

    pub fn contains(&self, ip: IpAddr) -> bool {
        let bits = |ip: IpAddr| -> (u128, u8) {
            match ip {
                IpAddr::V4(v4) => (u128::from(u32::from(v4)), 32),
                IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
                    Some(v4) => (u128::from(u32::from(v4)), 32),
                    None => (u128::from(v6), 128),
                },
            }
        };
        let ((net, width), (candidate, candidate_width)) = (bits(self.addr), bits(ip));
        if width != candidate_width {
            return false;
        }
        let host_bits = u32::from(width - self.prefix);
        let mask = if host_bits >= 128 {
            0
        } else {
            u128::MAX << host_bits
        };
        (net & mask) == (candidate & mask)
    }
}

/// The client address for a request from `peer`: the first X-Forwarded-For
/// (or X-Real-IP) entry when the peer is a trusted proxy, else the peer.
pub fn client_ip(peer: IpAddr, headers: &axum::http::HeaderMap, trusted: &[IpNet]) -> IpAddr {
    if !trusted.iter().any(|net| net.contains(peer)) {
        return peer;
    }
    headers
        .get("x-forwarded-for")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(',').next())
        .or_else(|| headers.get("x-real-ip").and_then(|v| v.to_str().ok()))
        .and_then(|ip| ip.trim().parse().ok())
        .unwrap_or(peer)
}

pub fn is_trusted(peer: IpAddr, trusted: &[IpNet]) -> bool {
    trusted.iter().any(|net| net.contains(peer))
}

/// Whether a request reached the proxy over https, per X-Forwarded-Proto
/// (the edge removes that header unless the peer is a trusted proxy).
pub fn forwarded_https(headers: &axum::http::HeaderMap) -> bool {
    headers
        .get("x-forwarded-proto")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(',').next())
        .is_some_and(|proto| proto.trim().eq_ignore_ascii_case("https"))
}

/// Reads a variable, treating an empty value as unset (shell scripts often
/// export `VAR=` to mean "default").
pub fn env_var(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.trim().is_empty())
}

fn parse_num<T: std::str::FromStr>(name: &'static str, default: T) -> Result<T, ConfigError>
where
    T::Err: std::fmt::Display,
{
    match env_var(name) {
        None => Ok(default),
        Some(v) => v.trim().parse().map_err(|e: T::Err| ConfigError::Invalid {
            name,
            reason: format!("{v:?}: {e}"),
        }),
    }
}

fn parse_bool(name: &'static str) -> Result<bool, ConfigError> {
    match env_var(name)
        .as_deref()
        .map(str::to_ascii_lowercase)
        .as_deref()
    {
        None | Some("0" | "false" | "no" | "off") => Ok(false),
        Some("1" | "true" | "yes" | "on") => Ok(true),
        Some(other) => Err(ConfigError::Invalid {
            name,
            reason: format!("{other:?} is not a boolean (use 1 or 0)"),
        }),
    }
}

impl Config {
    /// Defaults for everything but the database; what `from_env` starts from
    /// and what tests use.
    pub fn defaults(database_url: String) -> Self {
        let bind: SocketAddr = ([127, 0, 0, 1], 9000).into();
        Config {
            database_url,
            bind,
            base_url: default_base_url(bind),
            secret_key: None,
            dev_mode: false,
            log_format: LogFormat::Json,
            db_max_connections: 16,
            pipeline_queue: 10_000,
            pipeline_batch: 500,
            shutdown_grace: Duration::from_secs(25),
            drain_delay: Duration::from_millis(500),
            reload_timeout: Duration::from_secs(60),
            session_ttl: Duration::from_secs(14 * 24 * 3600),
            trusted_proxies: Vec::new(),
            retention: RetentionPolicy::default(),
            sentry_dsn: None,
            sentry_environment: None,
        }
    }

    pub fn from_env() -> Result<Self, ConfigError> {
        let database_url = env_var("DATABASE_URL").ok_or(ConfigError::Missing("DATABASE_URL"))?;
        let bind_text = env_var("SNAG_BIND").unwrap_or_else(|| "127.0.0.1:9000".into());
        let bind: SocketAddr = bind_text.parse().map_err(|e| ConfigError::Invalid {
            name: "SNAG_BIND",
            reason: format!("{bind_text:?}: {e}"),
        })?;
        let base_url = match env_var("SNAG_BASE_URL") {
            Some(url) => normalize_base_url(&url)?,
            None => default_base_url(bind),
        };
        let log_format = match env_var("SNAG_LOG_FORMAT").as_deref() {
            None | Some("json") => LogFormat::Json,
            Some("pretty") => LogFormat::Pretty,
            Some(other) => {
                return Err(ConfigError::Invalid {
                    name: "SNAG_LOG_FORMAT",
                    reason: format!("{other:?} (expected json or pretty)"),
                });
            }
        };
        let secret_key = env_var("SNAG_SECRET_KEY");
        if let Some(key) = &secret_key
            && key.len() < 16
        {
            return Err(ConfigError::Invalid {
                name: "SNAG_SECRET_KEY",
                reason: "must be at least 16 characters".into(),
            });
        }
        Ok(Config {
            database_url,
            bind,
            base_url,
            secret_key,
            dev_mode: parse_bool("SNAG_DEV")?,
            log_format,
            db_max_connections: parse_num("SNAG_DB_MAX_CONNECTIONS", 16)?,
            pipeline_queue: parse_num("SNAG_PIPELINE_QUEUE", 10_000)?,
            pipeline_batch: parse_num("SNAG_PIPELINE_BATCH", 500)?,
            shutdown_grace: Duration::from_secs(parse_num("SNAG_SHUTDOWN_GRACE_SECS", 25)?),
            drain_delay: Duration::from_millis(parse_num("SNAG_DRAIN_DELAY_MS", 500)?),
            reload_timeout: Duration::from_secs(parse_num("SNAG_RELOAD_TIMEOUT_SECS", 60)?),
            session_ttl: Duration::from_secs(
                3600 * parse_num::<u64>("SNAG_SESSION_HOURS", 24 * 14)?,
            ),
            trusted_proxies: parse_proxies()?,
            retention: RetentionPolicy::from_env()?,
            sentry_dsn: env_var("SNAG_SENTRY_DSN"),
            sentry_environment: env_var("SNAG_SENTRY_ENVIRONMENT"),
        })
    }

    /// The key that signs sessions and CSRF tokens. In dev mode without a
    /// configured key, a per-process random key is used, which only means
    /// logins do not survive a restart.
    pub fn signing_key(&self) -> Result<Vec<u8>, ConfigError> {
        match (&self.secret_key, self.dev_mode) {
            (Some(key), _) => Ok(key.as_bytes().to_vec()),
            (None, true) => Ok(uuid::Uuid::new_v4().as_bytes().to_vec()),
            (None, false) => Err(ConfigError::Missing("SNAG_SECRET_KEY")),
        }
    }

    pub fn secure_cookies(&self) -> bool {
        self.base_url.starts_with("https://")
    }

    /// Secure cookies for this request: always behind an https public URL,
    /// and whenever a trusted proxy reports the client used https.
    pub fn secure_cookies_for(&self, headers: &axum::http::HeaderMap) -> bool {
        self.secure_cookies() || forwarded_https(headers)
    }

    /// The DSN an SDK uses to reach `project_id` with `public_key`.
    pub fn dsn(&self, public_key: &str, project_id: i64) -> String {
        dsn_for(&self.base_url, public_key, project_id)
    }
}

pub fn dsn_for(base_url: &str, public_key: &str, project_id: i64) -> String {
    let (scheme, rest) = base_url.split_once("://").unwrap_or(("http", base_url));
    format!("{scheme}://{public_key}@{rest}/{project_id}")
}

fn parse_proxies() -> Result<Vec<IpNet>, ConfigError> {
    env_var("SNAG_TRUSTED_PROXIES")
        .unwrap_or_default()
        .split(',')
        .filter(|s| !s.trim().is_empty())
        .map(|s| {
            IpNet::parse(s).ok_or_else(|| ConfigError::Invalid {
                name: "SNAG_TRUSTED_PROXIES",
                reason: format!("{s:?} is not an address or CIDR block"),
            })
        })
        .collect()
}

fn normalize_base_url(url: &str) -> Result<String, ConfigError> {
    let url = url.trim().trim_end_matches('/');
    if !(url.starts_with("http://") || url.starts_with("https://")) {
        return Err(ConfigError::Invalid {
            name: "SNAG_BASE_URL",
            reason: format!("{url:?} must start with http:// or https://"),
        });
    }
    Ok(url.to_string())
}

fn default_base_url(bind: SocketAddr) -> String {
    let host = if bind.ip().is_unspecified() {
        "127.0.0.1".to_string()
    } else if bind.is_ipv6() {
        format!("[{}]", bind.ip())
    } else {
        bind.ip().to_string()
    };
    format!("http://{host}:{}", bind.port())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dsn_keeps_path_prefix() {
        assert_eq!(
            dsn_for("https://errors.example.com/snag", "abc", 7),
            "https://abc@errors.example.com/snag/7"
        );
        assert_eq!(
            dsn_for("http://127.0.0.1:9000", "k", 1),
            "http://k@127.0.0.1:9000/1"
        );
    }

    #[test]
    fn default_base_url_from_bind() {
        assert_eq!(
            default_base_url("0.0.0.0:80".parse().unwrap()),
            "http://127.0.0.1:80"
        );
        assert_eq!(
            default_base_url("[::1]:9000".parse().unwrap()),
            "http://[::1]:9000"
        );
    }

    #[test]
    fn trusted_proxies_decide_the_client_address() {
        let nets = vec![
            IpNet::parse("10.0.0.0/8").unwrap(),
            IpNet::parse("::1").unwrap(),
        ];
        assert!(nets[0].contains("10.1.2.3".parse().unwrap()));
        assert!(!nets[0].contains("11.0.0.1".parse().unwrap()));
        assert!(nets[0].contains("::ffff:10.0.0.9".parse().unwrap()));
        assert!(nets[1].contains("::1".parse().unwrap()));
        assert!(IpNet::parse("10.0.0.0/33").is_none() && IpNet::parse("nonsense").is_none());
        let mut headers = axum::http::HeaderMap::new();
        headers.insert("x-forwarded-for", "203.0.113.7, 10.0.0.2".parse().unwrap());
        let proxy: IpAddr = "10.0.0.2".parse().unwrap();
        let stranger: IpAddr = "198.51.100.1".parse().unwrap();
        assert_eq!(
            client_ip(proxy, &headers, &nets),
            "203.0.113.7".parse::<IpAddr>().unwrap()
        );
        assert_eq!(
            client_ip(stranger, &headers, &nets),
            stranger,
            "spoofed headers are ignored"
        );
        assert_eq!(
            client_ip(proxy, &axum::http::HeaderMap::new(), &nets),
            proxy
        );
    }

    #[test]
    fn base_url_requires_scheme() {
        assert!(normalize_base_url("example.com").is_err());
        assert_eq!(normalize_base_url("https://x.io/").unwrap(), "https://x.io");
    }
}
