//! Whether the database answers, checked twice a second on a connection of
//! its own. Ingest consults it before queueing a write: while PostgreSQL is
//! down a new request gets a 503 at once (the SDK retries later) instead of
//! waiting out the pool's acquire timeout and the writer's retries.
//! Requests already queued keep waiting and complete when it is back.

use sqlx::Connection as _;
use sqlx::postgres::{PgConnectOptions, PgConnection};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

const INTERVAL: Duration = Duration::from_millis(500);
const PING_TIMEOUT: Duration = Duration::from_secs(1);
/// Failed checks in a row before the database counts as down, so one slow
/// ping under load does not refuse traffic.
const FAILURES_TO_DOWN: u32 = 2;

#[derive(Debug)]
pub struct DbWatch {
    up: AtomicBool,
}

impl DbWatch {
    /// Starts watching; the database counts as up until a check says not.
    pub fn spawn(options: PgConnectOptions) -> Arc<Self> {
        let watch = Arc::new(DbWatch {
            up: AtomicBool::new(true),
        });
        let weak = Arc::downgrade(&watch);
        tokio::spawn(async move {
            let mut conn: Option<PgConnection> = None;
            let mut failures = 0;
            let mut ticker = tokio::time::interval(INTERVAL);
            ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                ticker.tick().await;
                let Some(watch) = weak.upgrade() else { return };
                let ok = check(&mut conn, &options).await;
                failures = if ok { 0 } else { failures + 1 };
                let up = failures < FAILURES_TO_DOWN;
                if watch.up.swap(up, Ordering::Relaxed) != up {
                    if up {
                        tracing::info!("database reachable again; accepting writes");
                    } else {
                        tracing::error!(
                            "database unreachable; ingest answers 503 until it is back"
                        );
                    }
                }
            }
        });
        watch
    }

    pub fn is_up(&self) -> bool {
        self.up.load(Ordering::Relaxed)
    }
}

async fn check(conn: &mut Option<PgConnection>, options: &PgConnectOptions) -> bool {
    if conn.is_none() {
        match tokio::time::timeout(PING_TIMEOUT, PgConnection::connect_with(options)).await {
            Ok(Ok(c)) => *conn = Some(c),
            _ => return false,
        }
    }
    let Some(c) = conn.as_mut() else {
        return false;
    };
    match tokio::time::timeout(PING_TIMEOUT, c.ping()).await {
        Ok(Ok(())) => true,
        _ => {
            // Broken or stuck: reconnect on the next check.
            *conn = None;
            false
        }
    }
}
