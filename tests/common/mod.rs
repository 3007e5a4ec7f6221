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
