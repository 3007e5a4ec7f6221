//! Zero-downtime reload: on SIGHUP `snag serve` starts its successor (the
//! binary at the same path, so a replaced binary is picked up, with the
//! environment re-read from `SNAG_ENV_FILE` when set) and hands it the
//! listening socket itself. Both processes accept from the same kernel
//! queue, so no connection is refused or reset while they overlap; once the
//! successor reports ready the old process stops accepting, lets its
//! keep-alive clients move over, finishes in-flight requests, flushes its
//! write queue and exits.
//!
//! Sockets and readiness travel over the systemd protocols: the socket as
//! `LISTEN_FDS` (so `snag serve` also works with systemd socket
//! activation) and readiness as `READY=1` on `NOTIFY_SOCKET` (so it also
//! works as a `Type=notify` unit, where the old process tells systemd the
//! successor's pid with `MAINPID=`).

use std::net::TcpListener;
use std::os::fd::AsRawFd;
use std::os::linux::net::SocketAddrExt;
use std::os::unix::net::{SocketAddr as UnixAddr, UnixDatagram};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, Instant};

static INHERITED: Mutex<Option<TcpListener>> = Mutex::new(None);
static EXE: std::sync::OnceLock<Option<PathBuf>> = std::sync::OnceLock::new();
/// Where readiness and pid changes go: systemd's socket when we run under
/// it, also after a hand-over (the successor's own NOTIFY_SOCKET points at
/// its predecessor, which is gone soon).
static UPSTREAM_NOTIFY: std::sync::OnceLock<Option<String>> = std::sync::OnceLock::new();

const UPSTREAM_VAR: &str = "SNAG_NOTIFY_UPSTREAM";

#[derive(Debug, thiserror::Error)]
pub enum ReloadError {
    #[error("cannot read SNAG_ENV_FILE {path}: {source}")]
    EnvFile {
        path: String,
        source: std::io::Error,
    },
    #[error("SNAG_ENV_FILE {path} line {line}: {message}")]
    EnvSyntax {
        path: String,
        line: usize,
        message: String,
    },
    #[error("the path of the running binary is unknown")]
    NoExe,
    #[error(
        "running as PID 1 (a container's main process): exiting would stop the container; roll out a new container instead"
    )]
    Pid1,
    #[error("cannot start the new process: {0}")]
    Spawn(std::io::Error),
    #[error("the new process exited with {0} before it was ready (see its log lines)")]
    Exited(std::process::ExitStatus),
    #[error("the new process was not ready within {0:?}; stopped it")]
    Timeout(Duration),
}

/// Must run before any thread is started (it edits the environment):
/// takes a listening socket passed in by systemd or by a predecessor, and
/// remembers where the binary and systemd's notify socket are.
pub fn capture_startup_state() {
    let _ = EXE.set(std::env::current_exe().ok());
    let upstream = std::env::var(UPSTREAM_VAR)
        .ok()
        .or_else(|| std::env::var("NOTIFY_SOCKET").ok())
        .filter(|s| !s.is_empty());
    let _ = UPSTREAM_NOTIFY.set(upstream);
    let mut fds = listenfd::ListenFd::from_env();
    if fds.len() > 0 {
        match fds.take_tcp_listener(0) {
            Ok(Some(listener)) => {
                *INHERITED.lock().unwrap_or_else(|p| p.into_inner()) = Some(listener);
            }
            Ok(None) => {}
            Err(e) => eprintln!("warning: ignoring the inherited socket (LISTEN_FDS): {e}"),
        }
    }
}

/// The listening socket handed to this process, if any.
pub fn take_inherited_listener() -> Option<TcpListener> {
    INHERITED.lock().unwrap_or_else(|p| p.into_inner()).take()
}

fn send_notify(target: &str, message: &str) -> std::io::Result<()> {
    let socket = UnixDatagram::unbound()?;
    match target.strip_prefix('@') {
        Some(name) => socket.send_to_addr(
            message.as_bytes(),
            &UnixAddr::from_abstract_name(name.as_bytes())?,
        )?,
        None => socket.send_to(message.as_bytes(), target)?,
    };
    Ok(())
}

/// Tells whoever started us (systemd or a predecessor) that we serve.
pub fn notify_ready() {
    if let Ok(target) = std::env::var("NOTIFY_SOCKET")
        && !target.is_empty()
    {
        let message = format!("READY=1\nMAINPID={}\n", std::process::id());
        if let Err(e) = send_notify(&target, &message) {
            tracing::warn!(error = %e, "cannot send readiness to NOTIFY_SOCKET");
        }
    }
}

/// Parses a systemd-style environment file: `KEY=value` lines, `#`
/// comments, optional `export `, values optionally in single or double
/// quotes.
pub fn parse_env_file(text: &str, path: &str) -> Result<Vec<(String, String)>, ReloadError> {
    let mut vars = Vec::new();
    for (n, raw) in text.lines().enumerate() {
        let line = raw.trim();
        if line.is_empty() || line.starts_with('#') || line.starts_with(';') {
            continue;
        }
        let line = line.strip_prefix("export ").unwrap_or(line);
        let syntax = |message: &str| ReloadError::EnvSyntax {
            path: path.to_string(),
            line: n + 1,
            message: message.to_string(),
        };
        let (key, value) = line
            .split_once('=')
            .ok_or_else(|| syntax("expected KEY=value"))?;
        let key = key.trim();
        if key.is_empty() || !key.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') {
            return Err(syntax("invalid variable name"));
        }
        let value = value.trim();
        let value = match value.as_bytes() {
            [b'"', .., b'"'] | [b'\'', .., b'\''] if value.len() >= 2 => &value[1..value.len() - 1],
            _ => value,
        };
        vars.push((key.to_string(), value.to_string()));
    }
    Ok(vars)
}

fn env_file_overrides() -> Result<Vec<(String, String)>, ReloadError> {
    let Some(path) = crate::config::env_var("SNAG_ENV_FILE") else {
        return Ok(Vec::new());
    };
    let text = std::fs::read_to_string(&path).map_err(|source| ReloadError::EnvFile {
        path: path.clone(),
        source,
    })?;
    parse_env_file(&text, &path)
}

/// Starts the successor with `listener` and waits until it reports ready
/// (at most `timeout`). Returns its pid; on error the successor is gone and
/// this process keeps serving.
pub async fn hand_over(listener: &TcpListener, timeout: Duration) -> Result<u32, ReloadError> {
    if std::process::id() == 1 {
        return Err(ReloadError::Pid1);
    }
    let exe = EXE.get().cloned().flatten().ok_or(ReloadError::NoExe)?;
    let overrides = env_file_overrides()?;
    let listener = listener.try_clone().map_err(ReloadError::Spawn)?;
    tokio::task::spawn_blocking(move || spawn_and_wait(&exe, &listener, &overrides, timeout))
        .await
        .map_err(|e| ReloadError::Spawn(std::io::Error::other(e)))?
}

fn spawn_and_wait(
    exe: &Path,
    listener: &TcpListener,
    overrides: &[(String, String)],
    timeout: Duration,
) -> Result<u32, ReloadError> {
    let name = format!(
        "snag-reload-{}-{}",
        std::process::id(),
        uuid::Uuid::new_v4().simple()
    );
    let ready = UnixDatagram::bind_addr(
        &UnixAddr::from_abstract_name(name.as_bytes()).map_err(ReloadError::Spawn)?,
    )
    .map_err(ReloadError::Spawn)?;
    ready
        .set_read_timeout(Some(Duration::from_millis(100)))
        .map_err(ReloadError::Spawn)?;
    let socket = socket2::SockRef::from(listener);
    // Only the successor may inherit the socket; everything else this
    // process opens stays close-on-exec.
    socket.set_cloexec(false).map_err(ReloadError::Spawn)?;
    let mut command = std::process::Command::new(exe);
    command
        .arg("serve")
        .envs(overrides.iter().map(|(k, v)| (k, v)))
        .env("LISTEN_FDS", "1")
        .env("LISTEN_FDS_FIRST_FD", listener.as_raw_fd().to_string())
        .env_remove("LISTEN_PID")
        .env_remove("LISTEN_FDNAMES")
        .env("NOTIFY_SOCKET", format!("@{name}"));
    match UPSTREAM_NOTIFY.get().cloned().flatten() {
        Some(upstream) => command.env(UPSTREAM_VAR, upstream),
        None => command.env_remove(UPSTREAM_VAR),
    };
    let spawned = command.spawn();
    let _ = socket.set_cloexec(true);
    let mut child = spawned.map_err(ReloadError::Spawn)?;
    let pid = child.id();
    let deadline = Instant::now() + timeout;
    let mut buf = [0u8; 1024];
    loop {
        if let Ok(n) = ready.recv(&mut buf)
            && String::from_utf8_lossy(&buf[..n])
                .lines()
                .any(|l| l == "READY=1")
        {
            break;
        }
        if let Ok(Some(status)) = child.try_wait() {
            return Err(ReloadError::Exited(status));
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            return Err(ReloadError::Timeout(timeout));
        }
    }
    // systemd follows the service's main process by pid.
    if let Some(upstream) = UPSTREAM_NOTIFY.get().cloned().flatten()
        && let Err(e) = send_notify(&upstream, &format!("MAINPID={pid}\n"))
    {
        tracing::warn!(error = %e, "cannot tell systemd the new main pid");
    }
    Ok(pid)
}

/// What the serve loop waits for.
pub enum Signal {
    /// SIGTERM or SIGINT: drain and exit.
    Stop,
    /// SIGHUP: hand over to a fresh process.
    Reload,
}

pub struct Signals {
    term: tokio::signal::unix::Signal,
    int: tokio::signal::unix::Signal,
    hup: tokio::signal::unix::Signal,
}

impl Signals {
    pub fn new() -> std::io::Result<Self> {
        use tokio::signal::unix::{SignalKind, signal};
        Ok(Self {
            term: signal(SignalKind::terminate())?,
            int: signal(SignalKind::interrupt())?,
            hup: signal(SignalKind::hangup())?,
        })
    }

    pub async fn next(&mut self) -> Signal {
        tokio::select! {
            _ = self.term.recv() => Signal::Stop,
            _ = self.int.recv() => Signal::Stop,
            _ = self.hup.recv() => Signal::Reload,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::parse_env_file;

    #[test]
    fn env_files_parse_like_systemd_environment_files() {
        let text = "# comment\n\nDATABASE_URL=postgres://u:p@h/db?x=1\nexport SNAG_BIND = 127.0.0.1:9000\nSNAG_EMAIL_FROM=\"Snag <snag@example.com>\"\nEMPTY=\nQ='single'\n";
        let vars = parse_env_file(text, "f").unwrap();
        assert_eq!(
            vars,
            vec![
                ("DATABASE_URL".into(), "postgres://u:p@h/db?x=1".into()),
                ("SNAG_BIND".into(), "127.0.0.1:9000".into()),
                ("SNAG_EMAIL_FROM".into(), "Snag <snag@example.com>".into()),
                ("EMPTY".into(), String::new()),
                ("Q".into(), "single".into()),
            ]
        );
        let err = parse_env_file("A=1\nnot a line\n", "f").unwrap_err();
        assert_eq!(
            err.to_string(),
            "SNAG_ENV_FILE f line 2: expected KEY=value"
        );
        assert!(parse_env_file("BAD-NAME=1", "f").is_err());
    }
}
