//! Zero-downtime reload: a constant load of SDK-style envelopes over
//! keep-alive connections while `snag serve` is reloaded three times with
//! SIGHUP, the binary replaced and the configuration changed in between.
//! Not one request may fail, and every acknowledged event must be stored.

mod common;

use common::*;
use sqlx::PgPool;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

const RELOADS: usize = 3;
const WORKERS: usize = 8;
/// Upper bound on requests, whatever the timing.
const MAX_REQUESTS: u64 = 4000;

fn kill(pid: u32, signal: &str) {
    let status = std::process::Command::new("kill")
        .arg(format!("-{signal}"))
        .arg(pid.to_string())
        .status()
        .unwrap();
    assert!(status.success(), "kill -{signal} {pid}");
}

/// Gone, or a zombie waiting for its (new) parent to reap it.
fn has_exited(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Err(_) => true,
        Ok(stat) => stat
            .rsplit(')')
            .next()
            .is_some_and(|rest| rest.trim_start().starts_with('Z')),
    }
}

/// Pids that logged "listening", in order.
fn listening_pids(log: &Path) -> Vec<u32> {
    std::fs::read_to_string(log)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|l| l["message"] == "listening")
        .filter_map(|l| l["pid"].as_u64().map(|p| p as u32))
        .collect()
}

/// Installs a fresh copy of the built binary at `path` (a new file, as a
/// package upgrade does: the running process keeps the old one).
fn install_binary(path: &Path) {
    let staging = path.with_extension("new");
    std::fs::copy(env!("CARGO_BIN_EXE_snag"), &staging).unwrap();
    std::fs::rename(&staging, path).unwrap();
}

fn write_env_file(path: &Path, pool_size: u32) {
    std::fs::write(
        path,
        format!(
            "# reloaded on SIGHUP\nSNAG_DB_MAX_CONNECTIONS={pool_size}\nSNAG_DRAIN_DELAY_MS=300\n"
        ),
    )
    .unwrap();
}

/// Kills every process the test started if it fails half-way.
struct Reaper(std::sync::Mutex<Vec<u32>>);

impl Drop for Reaper {
    fn drop(&mut self) {
        for pid in self.0.lock().unwrap().iter() {
            if !has_exited(*pid) {
                let _ = std::process::Command::new("kill")
                    .arg("-KILL")
                    .arg(pid.to_string())
                    .status();
            }
        }
    }
}

struct Load {
    sent: AtomicU64,
    failed: AtomicU64,
    acked: std::sync::Mutex<Vec<String>>,
    failures: std::sync::Mutex<Vec<String>>,
}

async fn metric(client: &reqwest::Client, base: &str, name: &str) -> f64 {
    let text = client
        .get(format!("{base}/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    text.lines()
        .find_map(|l| l.strip_prefix(&format!("{name} ")))
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("{name} not in /metrics"))
}

#[sqlx::test]
async fn three_reloads_under_load_lose_nothing(pool: PgPool) {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let url = database_url_of(&pool);
    let store = snag::store::Store::from_pool(pool.clone());
    let (project, key) = store
        .create_project("reload", Some("python"))
        .await
        .unwrap();
    let dir: PathBuf = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!(
        "reload-{}-{}",
        std::process::id(),
        project.id
    ));
    std::fs::create_dir_all(&dir).unwrap();
    let exe = dir.join("snag");
    install_binary(&exe);
    let env_file = dir.join("snag.env");
    write_env_file(&env_file, 3);
    let log_path = dir.join("snag.log");
    let log = std::fs::File::create(&log_path).unwrap();
    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    let mut first = std::process::Command::new(&exe)
        .arg("serve")
        .env("DATABASE_URL", &url)
        .env("SNAG_BIND", format!("127.0.0.1:{port}"))
        .env("SNAG_BASE_URL", &base)
        .env("SNAG_SECRET_KEY", "reload-test-secret-key-0123456789")
        .env("SNAG_LOG_FORMAT", "json")
        .env("SNAG_ALLOW_ROOT", "1")
        .env("SNAG_DB_MAX_CONNECTIONS", "3")
        .env("SNAG_ENV_FILE", &env_file)
        .env_remove("NOTIFY_SOCKET")
        .env_remove("LISTEN_FDS")
        .stdout(log.try_clone().unwrap())
        .stderr(log)
        .spawn()
        .unwrap();
    let reaper = Reaper(std::sync::Mutex::new(vec![first.id()]));
    let client = reqwest::Client::new();
    let deadline = Instant::now() + Duration::from_secs(30);
    while !matches!(client.get(format!("{base}/readyz")).send().await, Ok(r) if r.status() == 200) {
        assert!(
            Instant::now() < deadline,
            "snag did not start: {}",
            std::fs::read_to_string(&log_path).unwrap()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(
        metric(&client, &base, "snag_db_pool_max_connections").await,
        3.0
    );

    // The load: WORKERS clients, each sending one envelope after the other
    // over its own keep-alive connection pool, as SDK transports do.
    let load = Arc::new(Load {
        sent: AtomicU64::new(0),
        failed: AtomicU64::new(0),
        acked: std::sync::Mutex::new(Vec::new()),
        failures: std::sync::Mutex::new(Vec::new()),
    });
    let stop = Arc::new(AtomicBool::new(false));
    let endpoint = format!("{base}/api/{}/envelope/", project.id);
    let auth = auth_header(&key.public_key);
    let workers: Vec<_> = (0..WORKERS)
        .map(|w| {
            let (load, stop, endpoint, auth) =
                (load.clone(), stop.clone(), endpoint.clone(), auth.clone());
            tokio::spawn(async move {
                let client = reqwest::Client::builder()
                    .pool_max_idle_per_host(1)
                    .timeout(Duration::from_secs(20))
                    .build()
                    .unwrap();
                let mut n = 0u64;
                while !stop.load(Ordering::Relaxed)
                    && load.sent.fetch_add(1, Ordering::Relaxed) < MAX_REQUESTS
                {
                    n += 1;
                    let event_id = format!("{:08x}{:024x}", w, n);
                    let body = event_envelope(
                        &event_id,
                        &error_event("ReloadProbe", &format!("worker {w}"), "probe"),
                    );
                    let result = client
                        .post(&endpoint)
                        .header("x-sentry-auth", &auth)
                        .body(body)
                        .send()
                        .await;
                    match result {
                        Ok(r) if r.status() == 200 => load.acked.lock().unwrap().push(event_id),
                        Ok(r) => {
                            load.failed.fetch_add(1, Ordering::Relaxed);
                            let status = r.status();
                            let text = r.text().await.unwrap_or_default();
                            load.failures
                                .lock()
                                .unwrap()
                                .push(format!("{status}: {text}"));
                        }
                        Err(e) => {
                            load.failed.fetch_add(1, Ordering::Relaxed);
                            load.failures.lock().unwrap().push(format!("{e:?}"));
                        }
                    }
                    tokio::time::sleep(Duration::from_millis(2)).await;
                }
            })
        })
        .collect();

    tokio::time::sleep(Duration::from_millis(300)).await;
    let mut current = first.id();
    for reload in 1..=RELOADS {
        // Between reloads: a new binary on disk and a changed environment file.
        install_binary(&exe);
        write_env_file(&env_file, 3 + reload as u32);
        let acked_before = load.acked.lock().unwrap().len();
        kill(current, "HUP");
        let deadline = Instant::now() + Duration::from_secs(30);
        let successor = loop {
            let pids = listening_pids(&log_path);
            if pids.len() > reload {
                break pids[reload];
            }
            assert!(
                Instant::now() < deadline,
                "reload {reload}: no successor; log:\n{}",
                std::fs::read_to_string(&log_path).unwrap()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        };
        reaper.0.lock().unwrap().push(successor);
        assert_ne!(successor, current);
        while !has_exited(current) {
            assert!(
                Instant::now() < deadline,
                "reload {reload}: the old process {current} did not exit"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        // The successor runs the replaced binary and the new configuration.
        let exe_link = std::fs::read_link(format!("/proc/{successor}/exe")).unwrap();
        assert!(
            !exe_link.to_string_lossy().ends_with("(deleted)"),
            "{exe_link:?}"
        );
        assert_eq!(
            metric(&client, &base, "snag_db_pool_max_connections").await,
            f64::from(3 + reload as u32)
        );
        // Keep the load running across the hand-over.
        tokio::time::sleep(Duration::from_millis(400)).await;
        assert!(
            load.acked.lock().unwrap().len() > acked_before,
            "requests kept being served around reload {reload}"
        );
        current = successor;
    }
    let status = first.wait().unwrap();
    assert!(
        status.success(),
        "the first process exits 0 after handing over: {status}"
    );
    stop.store(true, Ordering::Relaxed);
    for w in workers {
        w.await.unwrap();
    }

    let sent = load.sent.load(Ordering::Relaxed).min(MAX_REQUESTS);
    let failed = load.failed.load(Ordering::Relaxed);
    let acked = load.acked.lock().unwrap().clone();
    let stored: i64 = sqlx::query_scalar("SELECT count(*) FROM event WHERE project_id = $1")
        .bind(project.id)
        .fetch_one(&pool)
        .await
        .unwrap();
    let stored_ids: std::collections::HashSet<String> =
        sqlx::query_scalar::<_, uuid::Uuid>("SELECT event_id FROM event WHERE project_id = $1")
            .bind(project.id)
            .fetch_all(&pool)
            .await
            .unwrap()
            .into_iter()
            .map(|u| u.simple().to_string())
            .collect();
    let missing = acked.iter().filter(|id| !stored_ids.contains(*id)).count();
    println!();
    println!(
        "| reloads | requests sent | failed | acknowledged | events stored | acknowledged but missing |"
    );
    println!("|---|---|---|---|---|---|");
    println!(
        "| {RELOADS} | {} | {failed} | {} | {stored} | {missing} |",
        acked.len() as u64 + failed,
        acked.len()
    );
    assert!(
        sent >= 200,
        "the load was too light to prove anything: {sent}"
    );
    assert_eq!(
        failed,
        0,
        "failed requests: {:?}",
        load.failures.lock().unwrap()
    );
    assert_eq!(missing, 0);
    assert_eq!(stored as usize, acked.len(), "stored = acknowledged");

    kill(current, "TERM");
    let deadline = Instant::now() + Duration::from_secs(30);
    while !has_exited(current) {
        assert!(Instant::now() < deadline, "the last process did not stop");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[sqlx::test]
async fn a_successor_that_cannot_start_leaves_the_old_process_serving(pool: PgPool) {
    let url = database_url_of(&pool);
    let dir: PathBuf = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!(
        "reload-fail-{}-{}",
        std::process::id(),
        free_port()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    let env_file = dir.join("snag.env");
    std::fs::write(&env_file, "SNAG_BASE_URL=not-a-url\n").unwrap();
    let mut snag = SnagProcess::spawn(
        &url,
        free_port(),
        &[("SNAG_ENV_FILE", env_file.to_str().unwrap())],
    )
    .await;
    snag.signal("HUP");
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let log = std::fs::read_to_string(&snag.log_path).unwrap_or_default();
        if log.contains("reload failed; this process keeps serving") {
            assert!(log.contains("SNAG_BASE_URL is invalid"), "{log}");
            break;
        }
        assert!(Instant::now() < deadline, "{log}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let r = reqwest::get(format!("{}/readyz", snag.base)).await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(listening_pids(&snag.log_path), vec![snag.pid()]);
    // A syntax error in the file is refused before anything starts.
    std::fs::write(&env_file, "this is not an assignment\n").unwrap();
    snag.signal("HUP");
    let deadline = Instant::now() + Duration::from_secs(10);
    while !std::fs::read_to_string(&snag.log_path)
        .unwrap_or_default()
        .contains("line 1: expected KEY=value")
    {
        assert!(Instant::now() < deadline);
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    snag.signal("TERM");
    assert!(snag.wait_exit(Duration::from_secs(30)).await.success());
}
