//! Shared helpers: the real app on a random port against the per-test
//! database that `#[sqlx::test]` creates.
#![allow(dead_code)]

use snag::app::{self, RunningServer};
use snag::config::Config;
use snag::store::Store;
use sqlx::PgPool;
use std::io::Write;

pub struct TestApp {
    pub server: RunningServer,
    pub base: String,
    pub client: reqwest::Client,
    pub store: Store,
}

pub struct TestProject {
    pub id: i64,
    pub key: String,
    pub dsn: String,
}

pub fn test_config() -> Config {
    let mut config = Config::defaults("postgres://unused".into());
    config.secret_key = Some("test-secret-key-0123456789abcdef".into());
    config
}

pub async fn start(pool: PgPool) -> TestApp {
    start_with(pool, test_config()).await
}

pub async fn start_with(pool: PgPool, mut config: Config) -> TestApp {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    config.bind = addr;
    config.base_url = format!("http://{addr}");
    let store = Store::from_pool(pool);
    let server = app::start(config, store.clone(), listener).await.unwrap();
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    TestApp {
        base: format!("http://{addr}"),
        server,
        client,
        store,
    }
}

impl TestApp {
    pub async fn project(&self, name: &str) -> TestProject {
        let (project, key) = self
            .store
            .create_project(name, Some("python"))
            .await
            .unwrap();
        TestProject {
            id: project.id,
            dsn: self.server.state.config.dsn(&key.public_key, project.id),
            key: key.public_key,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    pub async fn post_envelope(&self, project: &TestProject, body: Vec<u8>) -> reqwest::Response {
        self.client
            .post(self.url(&format!("/api/{}/envelope/", project.id)))
            .header("x-sentry-auth", auth_header(&project.key))
            .body(body)
            .send()
            .await
            .unwrap()
    }

    pub async fn login(&self, email: &str, password: &str) -> String {
        let hash = snag::web::auth::hash_password(password).unwrap();
        let _ = self.store.create_user(email, &hash, true).await;
        let response = self
            .client
            .post(self.url("/login"))
            .form(&[("email", email), ("password", password)])
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 303, "login failed");
        let cookie = response.headers()["set-cookie"].to_str().unwrap();
        cookie.split(';').next().unwrap().to_string()
    }

    pub async fn get_page(&self, path: &str, cookie: &str) -> (u16, String) {
        let r = self
            .client
            .get(self.url(path))
            .header("cookie", cookie)
            .send()
            .await
            .unwrap();
        (r.status().as_u16(), r.text().await.unwrap())
    }
}

pub fn auth_header(key: &str) -> String {
    format!("Sentry sentry_version=7, sentry_client=sentry.python/2.75.0, sentry_key={key}")
}

/// A Python-style error event raising `exc_type` from `function`.
pub fn error_event(exc_type: &str, value: &str, function: &str) -> serde_json::Value {
    serde_json::json!({
        "platform": "python",
        "level": "error",
        "release": "app@1.0",
        "exception": {"values": [{
            "type": exc_type,
            "value": value,
            "module": "builtins",
            "mechanism": {"type": "excepthook", "handled": false},
            "stacktrace": {"frames": [
                {"filename": "app/main.py", "module": "app.main", "function": "main", "lineno": 3,
                 "context_line": "    run()", "in_app": true},
                {"filename": "app/jobs.py", "module": "app.jobs", "function": function, "lineno": 42,
                 "context_line": "    raise Boom()", "pre_context": ["def f():"], "post_context": [""],
                 "vars": {"count": "3"}, "in_app": true}
            ]}
        }]},
        "tags": {"server": "web-1"},
        "user": {"id": "42"}
    })
}

pub fn envelope(event_id: Option<&str>, items: &[(&str, Vec<u8>)]) -> Vec<u8> {
    let mut out = Vec::new();
    match event_id {
        Some(id) => writeln!(out, "{{\"event_id\":\"{id}\"}}").unwrap(),
        None => writeln!(out, "{{}}").unwrap(),
    }
    for (ty, payload) in items {
        writeln!(out, "{{\"type\":\"{ty}\",\"length\":{}}}", payload.len()).unwrap();
        out.extend_from_slice(payload);
        out.push(b'\n');
    }
    out
}

pub fn event_envelope(event_id: &str, event: &serde_json::Value) -> Vec<u8> {
    envelope(
        Some(event_id),
        &[("event", serde_json::to_vec(event).unwrap())],
    )
}

pub fn gzip(data: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    e.write_all(data).unwrap();
    e.finish().unwrap()
}

/// The URL of the per-test database `#[sqlx::test]` created, for a separate
/// `snag` process: DATABASE_URL with the database name replaced.
pub fn database_url_of(pool: &PgPool) -> String {
    let base = std::env::var("DATABASE_URL").expect("DATABASE_URL");
    let name = pool
        .connect_options()
        .get_database()
        .expect("sqlx::test database name")
        .to_string();
    let mut url = reqwest::Url::parse(&base).expect("DATABASE_URL is a URL");
    url.set_path(&format!("/{name}"));
    url.to_string()
}

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// The real `snag serve` binary as a child process (killed on drop).
pub struct SnagProcess {
    pub child: std::process::Child,
    pub base: String,
    pub port: u16,
    pub log_path: std::path::PathBuf,
}

impl SnagProcess {
    pub async fn spawn(database_url: &str, port: u16, extra_env: &[(&str, &str)]) -> Self {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let log_path = std::path::Path::new(env!("CARGO_TARGET_TMPDIR"))
            .join(format!("snag-{port}-{}.log", std::process::id()));
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log_path)
            .unwrap();
        let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_snag"));
        cmd.arg("serve")
            .env("DATABASE_URL", database_url)
            .env("SNAG_BIND", format!("127.0.0.1:{port}"))
            .env("SNAG_BASE_URL", format!("http://127.0.0.1:{port}"))
            .env("SNAG_SECRET_KEY", "durability-secret-key-0123456789")
            .env("SNAG_LOG_FORMAT", "json")
            .env("SNAG_DB_MAX_CONNECTIONS", "4")
            .env("SNAG_ALLOW_ROOT", "1")
            .stdout(log.try_clone().unwrap())
            .stderr(log);
        for (k, v) in extra_env {
            cmd.env(k, v);
        }
        let child = cmd.spawn().expect("spawn snag serve");
        let mut process = SnagProcess {
            child,
            base: format!("http://127.0.0.1:{port}"),
            port,
            log_path,
        };
        process.wait_ready().await;
        process
    }

    async fn wait_ready(&mut self) {
        let client = reqwest::Client::new();
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        loop {
            if let Ok(r) = client.get(format!("{}/readyz", self.base)).send().await
                && r.status() == 200
            {
                return;
            }
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!(
                    "snag exited with {status} before it was ready; log: {}",
                    std::fs::read_to_string(&self.log_path).unwrap_or_default()
                );
            }
            assert!(
                std::time::Instant::now() < deadline,
                "snag not ready after 30 s"
            );
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// SIGKILL: no chance to flush anything.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    pub fn signal(&self, signal: &str) {
        let status = std::process::Command::new("kill")
            .arg(format!("-{signal}"))
            .arg(self.pid().to_string())
            .status()
            .unwrap();
        assert!(status.success(), "kill -{signal} failed");
    }

    /// Waits for the process to exit, at most `timeout`.
    pub async fn wait_exit(&mut self, timeout: std::time::Duration) -> std::process::ExitStatus {
        let deadline = std::time::Instant::now() + timeout;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "snag did not exit within {timeout:?}"
            );
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
    }

    /// Peak resident memory (VmHWM) in KiB, from /proc.
    pub fn peak_rss_kib(&self) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid())).unwrap();
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmHWM:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .expect("VmHWM in /proc/<pid>/status")
    }
}

impl Drop for SnagProcess {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// A stored event's payload, decoded the way the dashboard reads it.
pub async fn stored_event(pool: &PgPool, event_id: uuid::Uuid) -> serde_json::Value {
    let payload: Vec<u8> = sqlx::query_scalar("SELECT payload FROM event WHERE event_id = $1")
        .bind(event_id)
        .fetch_one(pool)
        .await
        .expect("event stored");
    snag::store::payload::decode(&payload).expect("payload decodes")
}
