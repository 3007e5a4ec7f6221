//! Load generator for Sentry-compatible servers (Snag, or a peer).
//!
//! `snag-loadgen load` sends sentry-python-shaped envelopes to a DSN at a
//! fixed rate or as fast as possible and reports acknowledged events/s,
//! latency percentiles, errors by status, the server's peak RSS and CPU,
//! and, through `--stored-cmd`, how many events the server really stored.
//! `snag-loadgen copy` measures the machine's write ceiling: PostgreSQL
//! COPYing the same generated events into a plain table of Snag's row shape.
//!
//! Bodies are generated and compressed before the clock starts, so during a
//! run the client spends its CPU on HTTP only (the server shares the box).

mod dashboard;
mod payload;
mod proc;
mod report;
mod send;
mod spread;

use clap::{Parser, Subcommand};
use payload::{Compression, Mix};
use spread::SpreadSpec;
use std::sync::Arc;
use std::time::Duration;

#[derive(Parser)]
#[command(
    name = "snag-loadgen",
    about = "Realistic Sentry SDK load for a Sentry-compatible DSN"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(clap::Args, Clone)]
struct MixArgs {
    /// Recurring bugs most events come from.
    #[arg(long, default_value_t = 50)]
    bugs: usize,
    /// Fraction of events that are new, unique bugs.
    #[arg(long, default_value_t = 0.10)]
    unique: f64,
    #[arg(long, value_enum, default_value_t = Compression::Mix)]
    compression: Compression,
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// How events spread over issues: `uniform` (`--bugs` equally often
    /// plus `--unique` new ones), or `zipf:<issues>[:<exponent>]`: exactly
    /// that many bugs with power-law popularity (exponent 1 by default) and
    /// realistic release, environment, user and tenant spread; `--bugs` and
    /// `--unique` are then ignored.
    #[arg(long, default_value = "uniform", value_parser = spread::parse_spec)]
    issues_spread: SpreadSpec,
}

impl MixArgs {
    /// `planned_events`: how many events this run sends, so a power-law
    /// spread can give every issue its first event within them.
    fn mix(&self, planned_events: usize) -> Mix {
        Mix {
            bugs: self.bugs,
            unique_fraction: self.unique,
            zipf: match self.issues_spread {
                SpreadSpec::Uniform => None,
                SpreadSpec::Zipf { issues, exponent } => Some(Arc::new(spread::Zipf::new(
                    issues,
                    exponent,
                    planned_events,
                ))),
            },
        }
    }
}

#[derive(Subcommand)]
enum Command {
    /// Send load to a DSN and report.
    Load(LoadArgs),
    /// Time PostgreSQL COPYing generated events into a plain table.
    Copy {
        #[arg(long, env = "DATABASE_URL")]
        database_url: String,
        #[arg(long, default_value_t = 100_000)]
        events: usize,
        #[command(flatten)]
        mix: MixArgs,
        /// Write the result as JSON here too.
        #[arg(long)]
        json: Option<std::path::PathBuf>,
    },
    /// Time dashboard pages as a logged-in user: p50/p95/max per page.
    Dashboard(dashboard::DashboardArgs),
}

#[derive(clap::Args)]
pub struct LoadArgs {
    /// e.g. http://<key>@127.0.0.1:9000/1 (loopback only).
    #[arg(long)]
    dsn: String,
    #[arg(long, default_value_t = 32)]
    concurrency: usize,
    /// Seconds of load.
    #[arg(long, default_value_t = 60.0)]
    duration: f64,
    /// Events per second in total; 0 sends as fast as the server answers.
    #[arg(long, default_value_t = 0.0)]
    rate: f64,
    /// Bodies prepared before the run (the run stops early when they are
    /// used up). Default: rate × duration, or 400,000 at full speed.
    #[arg(long)]
    max_requests: Option<usize>,
    #[command(flatten)]
    mix: MixArgs,
    /// Server processes to watch for RSS and CPU (repeatable).
    #[arg(long)]
    server_pid: Vec<u32>,
    /// Generate each body when it is sent instead of all before the run:
    /// for fills of millions of events, which would not fit in memory;
    /// costs client CPU during the run.
    #[arg(long)]
    stream: bool,
    /// Send a request again (after a pause) when the server answers 429 or
    /// 503 or the connection fails, so every planned event is eventually
    /// acknowledged (for fills; latency then counts the successful try).
    #[arg(long)]
    retry: bool,
    /// Shell command printing "<events stored> <issues>"; polled after the
    /// load until stored = acknowledged or --drain-timeout.
    #[arg(long)]
    stored_cmd: Option<String>,
    #[arg(long, default_value_t = 120.0)]
    drain_timeout: f64,
    /// Also stop waiting when the stored count has not grown for this many
    /// seconds (a server that lost events would otherwise keep the run
    /// waiting for the whole --drain-timeout).
    #[arg(long)]
    drain_stall: Option<f64>,
    /// Seconds between polls of --stored-cmd (each poll costs the server's
    /// box a process start and a query).
    #[arg(long, default_value_t = 0.5)]
    drain_poll: f64,
    /// A name for this run in the report.
    #[arg(long, default_value = "run")]
    label: String,
    /// Write the result as JSON here too.
    #[arg(long)]
    json: Option<std::path::PathBuf>,
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let cli = Cli::parse();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    match cli.command {
        Command::Load(args) => {
            let result = runtime.block_on(send::run(&args))?;
            report::print_load(&result);
            if let Some(path) = &args.json {
                std::fs::write(path, serde_json::to_vec_pretty(&result.to_json())?)?;
            }
        }
        Command::Dashboard(args) => {
            let result = runtime.block_on(dashboard::run(&args))?;
            dashboard::print(&result);
            if let Some(path) = &args.json {
                std::fs::write(
                    path,
                    serde_json::to_vec_pretty(&dashboard::to_json(&result))?,
                )?;
            }
            if result.iter().any(|p| p.failures > 0) {
                return Err("some dashboard requests failed (see the table)".into());
            }
        }
        Command::Copy {
            database_url,
            events,
            mix,
            json,
        } => {
            let result = runtime.block_on(copy_ceiling(&database_url, events, &mix))?;
            report::print_copy(&result);
            if let Some(path) = &json {
                std::fs::write(path, serde_json::to_vec_pretty(&result.to_json())?)?;
            }
        }
    }
    Ok(())
}

pub struct CopyResult {
    pub events: usize,
    pub seconds: f64,
    pub payload_bytes: usize,
}

impl CopyResult {
    pub fn rate(&self) -> f64 {
        self.events as f64 / self.seconds
    }

    fn to_json(&self) -> serde_json::Value {
        serde_json::json!({"events": self.events, "seconds": self.seconds, "events_per_sec": self.rate(),
                           "avg_payload_bytes": self.payload_bytes / self.events.max(1)})
    }
}

/// COPY in text format of rows shaped like Snag's `event` table (ids,
/// timestamps, a dozen short columns, tags as JSON and the zstd-compressed
/// event payload), into a table without indexes: the cost of just writing
/// the bytes durably, which no event store can beat.
async fn copy_ceiling(
    database_url: &str,
    events: usize,
    mix: &MixArgs,
) -> Result<CopyResult, Box<dyn std::error::Error>> {
    use sqlx::Connection;
    let mut conn = sqlx::PgConnection::connect(database_url).await?;
    sqlx::query("DROP TABLE IF EXISTS loadgen_copy_ceiling")
        .execute(&mut conn)
        .await?;
    sqlx::query(
        "CREATE TABLE loadgen_copy_ceiling (
            id BIGSERIAL, event_id UUID NOT NULL, project_id BIGINT NOT NULL, issue_id BIGINT,
            event_type TEXT NOT NULL, \"timestamp\" TIMESTAMPTZ NOT NULL, received_at TIMESTAMPTZ NOT NULL,
            level TEXT NOT NULL, platform TEXT NOT NULL, release TEXT, environment TEXT, transaction TEXT,
            message TEXT, title TEXT NOT NULL, user_key TEXT, tags JSONB NOT NULL, payload BYTEA NOT NULL)",
    )
    .execute(&mut conn)
    .await?;
    let mix_cfg = mix.mix(events);
    let mut text = Vec::with_capacity(events * 2200);
    let mut payload_bytes = 0;
    for n in 0..events {
        let mut rng = payload::Rng::new(mix.seed ^ n as u64);
        let id = rng.uuid().simple().to_string();
        let event = payload::event(&mut rng, &mix_cfg, n, &id, 1.7e9);
        let raw = serde_json::to_vec(&event)?;
        let compressed = zstd::bulk::compress(&raw, 3)?;
        payload_bytes += compressed.len();
        let tags = serde_json::to_string(&event["tags"])?;
        let line = format!(
            "{id}\t1\t{}\terror\t2026-12-01 00:00:00+00\t2026-12-01 00:00:00+00\terror\tpython\t{}\t{}\t{}\t{}\t{}\tuser:{}\t{}\t\\\\x",
            n % 5000,
            event["release"].as_str().unwrap_or_default(),
            event["environment"].as_str().unwrap_or_default(),
            event["transaction"].as_str().unwrap_or_default(),
            copy_escape(
                event["exception"]["values"][0]["value"]
                    .as_str()
                    .unwrap_or_default()
            ),
            copy_escape(
                event["exception"]["values"][0]["type"]
                    .as_str()
                    .unwrap_or_default()
            ),
            event["user"]["id"].as_str().unwrap_or_default(),
            copy_escape(&tags),
        );
        text.extend_from_slice(line.as_bytes());
        for b in compressed {
            text.extend_from_slice(format!("{b:02x}").as_bytes());
        }
        text.push(b'\n');
    }
    let started = std::time::Instant::now();
    let mut tx = conn.begin().await?;
    let mut copy = tx
        .copy_in_raw(
            "COPY loadgen_copy_ceiling (event_id, project_id, issue_id, event_type, \"timestamp\", received_at,
             level, platform, release, environment, transaction, message, title, user_key, tags, payload) FROM STDIN",
        )
        .await?;
    for chunk in text.chunks(1 << 20) {
        copy.send(chunk).await?;
    }
    copy.finish().await?;
    tx.commit().await?;
    let seconds = started.elapsed().as_secs_f64();
    sqlx::query("DROP TABLE loadgen_copy_ceiling")
        .execute(&mut conn)
        .await?;
    Ok(CopyResult {
        events,
        seconds,
        payload_bytes,
    })
}

fn copy_escape(s: &str) -> String {
    s.replace('\\', "\\\\")
        .replace('\t', "\\t")
        .replace('\n', "\\n")
        .replace('\r', "\\r")
}

pub fn seconds(d: f64) -> Duration {
    Duration::from_secs_f64(d.max(0.0))
}
