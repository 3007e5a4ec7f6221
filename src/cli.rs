//! One-off admin commands and `serve` (twelve-factor admin processes).

use crate::app;
use crate::config::{Config, LogFormat};
use crate::store::{Store, StoreError};
use crate::web::auth::hash_password;
use anyhow::{Context, bail};
use clap::{Args, Parser, Subcommand};
use std::io::BufRead;

#[derive(Parser)]
#[command(
    name = "snag",
    version,
    about = "Self-hosted, Sentry-compatible error tracking"
)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the HTTP server (ingest, dashboard, API).
    Serve,
    /// Apply database migrations (idempotent).
    Migrate {
        /// Only report pending migrations; exit 1 if any.
        #[arg(long)]
        check: bool,
    },
    /// Create a dashboard user.
    Createuser(CreateUser),
    /// Manage projects.
    #[command(subcommand)]
    Project(ProjectCommand),
    /// Manage personal API tokens.
    #[command(subcommand)]
    Token(TokenCommand),
    /// Validate configuration and database connectivity.
    Check,
    /// Create the demo admin and project if missing, then print the login and DSN.
    Demo {
        #[arg(long, default_value = "admin@example.com")]
        email: String,
        #[arg(long, default_value = "admin")]
        password: String,
    },
    /// Apply retention now: delete events past their project's age limit or
    /// event cap (with their attachments), in bounded batches.
    Purge,
    /// Write projects, DSN keys, issues and events as JSON lines.
    Export {
        /// Only this project (id, slug or org/slug); repeatable.
        #[arg(long = "project")]
        projects: Vec<String>,
        /// Write here instead of standard output.
        #[arg(long, short)]
        output: Option<std::path::PathBuf>,
    },
    /// Load a `snag export` file (or standard input) in one transaction.
    Import {
        /// The export file; `-` or absent for standard input.
        file: Option<std::path::PathBuf>,
    },
    /// Manage dashboard users.
    #[command(subcommand)]
    User(UserCommand),
}

#[derive(Subcommand)]
enum UserCommand {
    /// One line per user: <email> <role> <active|disabled> <admin|-> <last login>.
    List,
    /// Disable a user and end their sessions.
    Disable { email: String },
    /// Enable a disabled user again.
    Enable { email: String },
}

#[derive(Args)]
struct CreateUser {
    #[arg(long)]
    email: String,
    #[arg(
        long,
        required_unless_present = "password_stdin",
        conflicts_with = "password_stdin"
    )]
    password: Option<String>,
    /// Read the password from the first line of standard input.
    #[arg(long)]
    password_stdin: bool,
    #[arg(long)]
    admin: bool,
}

#[derive(Subcommand)]
enum ProjectCommand {
    /// Create a project; its DSN is the last line printed.
    Create {
        name: String,
        #[arg(long)]
        platform: Option<String>,
    },
    /// One line per project: <org-slug> <project-slug> <project-id> <dsn>.
    List,
    /// One line per DSN key of a project (id, slug or org/slug):
    /// <key-id> <active|revoked> <rate limit/min|-> <label> <dsn>.
    Keys { project: String },
}

#[derive(Subcommand)]
enum TokenCommand {
    /// Create an API token for a user; the token is the last line printed.
    Create {
        #[arg(long)]
        email: String,
        /// Scopes, comma-separated or repeated (default: org:read,
        /// project:read, project:write, project:releases, event:read, event:write).
        #[arg(long, value_delimiter = ',', num_args = 1..)]
        scopes: Vec<String>,
        /// A label to tell tokens apart.
        #[arg(long, default_value = "")]
        name: String,
    },
}

/// Logs go to stdout (JSON lines by default, with the request's id on
/// every line logged while serving it); with `self_report`, error-level
/// events also go to SNAG_SENTRY_DSN.
pub fn init_logging(format: LogFormat, self_report: bool) {
    use tracing_subscriber::Layer as _;
    use tracing_subscriber::layer::SubscriberExt as _;
    use tracing_subscriber::util::SubscriberInitExt as _;
    let filter = tracing_subscriber::EnvFilter::try_from_env("SNAG_LOG")
        .or_else(|_| tracing_subscriber::EnvFilter::try_from_default_env())
        .unwrap_or_else(|_| "info,sqlx=warn".into());
    let stdout = tracing_subscriber::fmt::layer().with_writer(std::io::stdout);
    let stdout = match format {
        LogFormat::Json => stdout
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .with_span_list(false)
            .boxed(),
        LogFormat::Pretty => stdout.boxed(),
    };
    let _ = tracing_subscriber::registry()
        .with(stdout.with_filter(filter))
        .with(self_report.then(crate::ops::selfreport::layer))
        .try_init();
}

/// A project by id, slug or org/slug.
async fn find_project(store: &Store, text: &str) -> anyhow::Result<crate::store::ProjectRow> {
    let text = text.trim();
    let projects = store.list_projects().await?;
    let matches: Vec<_> = projects
        .into_iter()
        .filter(|p| {
            text.parse::<i64>().ok() == Some(p.id)
                || p.slug == text
                || format!("{}/{}", p.organization_slug, p.slug) == text
        })
        .collect();
    match matches.len() {
        0 => bail!("no project {text:?} (use `snag project list`)"),
        1 => Ok(matches.into_iter().next().expect("one match")),
        _ => bail!("{text:?} names several projects; use org/slug or the id"),
    }
}

async fn connect(config: &Config) -> anyhow::Result<Store> {
    Store::connect(&config.database_url, config.db_max_connections)
        .await
        .map_err(|e| anyhow::anyhow!("cannot connect to the database: {e}"))
}

pub async fn run(cli: Cli) -> anyhow::Result<()> {
    let config = Config::from_env().context("configuration")?;
    match cli.command {
        Command::Serve => serve(config).await,
        Command::Migrate { check } => {
            let store = connect(&config).await?;
            let pending = store.pending_migrations().await?;
            if check {
                if pending.is_empty() {
                    println!("database is up to date");
                    return Ok(());
                }
                bail!("pending migrations: {}", pending.join(", "));
            }
            store.migrate().await?;
            println!(
                "applied {} migration(s); database is up to date",
                pending.len()
            );
            Ok(())
        }
        Command::Createuser(args) => {
            let password = match (args.password, args.password_stdin) {
                (Some(p), _) => p,
                (None, _) => {
                    let mut line = String::new();
                    std::io::stdin()
                        .lock()
                        .read_line(&mut line)
                        .context("reading the password from stdin")?;
                    line.trim_end_matches(['\r', '\n']).to_string()
                }
            };
            if password.is_empty() {
                bail!("the password must not be empty");
            }
            if !args.email.contains('@') {
                bail!("{:?} is not an email address", args.email);
            }
            let store = connect(&config).await?;
            let hash = hash_password(&password)?;
            let id = store
                .create_user(args.email.trim(), &hash, args.admin)
                .await?;
            println!(
                "created user {} (id {id}{})",
                args.email.trim(),
                if args.admin { ", admin" } else { "" }
            );
            Ok(())
        }
        Command::Project(ProjectCommand::Create { name, platform }) => {
            let store = connect(&config).await?;
            let (project, key) = store.create_project(&name, platform.as_deref()).await?;
            println!(
                "created project {}/{} (id {})",
                project.organization_slug, project.slug, project.id
            );
            println!("{}", config.dsn(&key.public_key, project.id));
            Ok(())
        }
        Command::Project(ProjectCommand::List) => {
            let store = connect(&config).await?;
            let keys = store.primary_keys().await?;
            for p in store.list_projects().await? {
                let dsn = keys
                    .iter()
                    .find(|k| k.project_id == p.id)
                    .map(|k| config.dsn(&k.public_key, p.id))
                    .unwrap_or_else(|| "-".into());
                println!("{} {} {} {dsn}", p.organization_slug, p.slug, p.id);
            }
            Ok(())
        }
        Command::Token(TokenCommand::Create {
            email,
            scopes,
            name,
        }) => {
            let scopes = if scopes.is_empty() {
                crate::api::auth::DEFAULT_SCOPES
                    .iter()
                    .map(|s| s.to_string())
                    .collect()
            } else {
                crate::api::auth::parse_scopes(scopes.iter().map(String::as_str))
                    .map_err(anyhow::Error::msg)?
            };
            let store = connect(&config).await?;
            let user = store
                .user_by_email(email.trim())
                .await?
                .filter(|u| u.is_active)
                .ok_or_else(|| anyhow::anyhow!("no active user with email {email}"))?;
            let (token, _) =
                crate::api::auth::create_token(&store, user.id, name.trim(), &scopes).await?;
            println!(
                "created API token for {} with scopes {}",
                user.email,
                scopes.join(",")
            );
            println!("{token}");
            Ok(())
        }
        Command::Project(ProjectCommand::Keys { project }) => {
            let store = connect(&config).await?;
            let project = find_project(&store, &project).await?;
            for k in store.project_keys(project.id).await? {
                println!(
                    "{} {} {} {} {}",
                    k.id,
                    if k.is_active { "active" } else { "revoked" },
                    k.rate_limit_per_minute
                        .map(|n| n.to_string())
                        .unwrap_or_else(|| "-".into()),
                    k.label.replace(char::is_whitespace, "_"),
                    config.dsn(&k.public_key, project.id)
                );
            }
            Ok(())
        }
        Command::Purge => {
            let store = connect(&config).await?;
            let Some(lock) = store.try_purge_lock().await? else {
                bail!("another process is purging right now; try again later");
            };
            let report = crate::ops::retention::purge_once(
                &store,
                &config.retention,
                &crate::ops::retention::Never,
            )
            .await;
            lock.release().await;
            println!("{}", report?);
            Ok(())
        }
        Command::Export { projects, output } => {
            let store = connect(&config).await?;
            let mut ids = Vec::new();
            for p in &projects {
                ids.push(find_project(&store, p).await?.id);
            }
            let counts = match &output {
                Some(path) => {
                    let file = std::fs::File::create(path)
                        .with_context(|| format!("cannot create {}", path.display()))?;
                    let mut out = std::io::BufWriter::new(file);
                    crate::ops::backup::export(&store, &ids, &mut out).await?
                }
                None => {
                    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
                    crate::ops::backup::export(&store, &ids, &mut out).await?
                }
            };
            eprintln!("exported {counts}");
            Ok(())
        }
        Command::Import { file } => {
            let store = connect(&config).await?;
            let result = match file.as_deref() {
                Some(path) if path != std::path::Path::new("-") => {
                    let f = std::fs::File::open(path)
                        .with_context(|| format!("cannot open {}", path.display()))?;
                    crate::ops::backup::import(&store, std::io::BufReader::new(f)).await
                }
                _ => crate::ops::backup::import(&store, std::io::stdin().lock()).await,
            };
            let (counts, projects) = result.context("nothing was imported")?;
            println!("imported {counts}");
            for p in projects {
                if p.id != p.source_id {
                    println!(
                        "note: project {} is now id {} (id {} was taken); its DSNs changed",
                        p.slug, p.id, p.source_id
                    );
                }
            }
            Ok(())
        }
        Command::User(UserCommand::List) => {
            let store = connect(&config).await?;
            for (u, role) in store.list_users_with_roles().await? {
                println!(
                    "{} {role} {} {} {}",
                    u.email,
                    if u.is_active { "active" } else { "disabled" },
                    if u.is_admin { "admin" } else { "-" },
                    u.last_login_at
                        .map(|t| t.format("%Y-%m-%dT%H:%M:%SZ").to_string())
                        .unwrap_or_else(|| "never".into())
                );
            }
            Ok(())
        }
        Command::User(UserCommand::Disable { email }) => {
            set_user_active(&config, &email, false).await
        }
        Command::User(UserCommand::Enable { email }) => {
            set_user_active(&config, &email, true).await
        }
        Command::Check => {
            config.signing_key().context("configuration")?;
            crate::ingest::limits::Limits::from_env()
                .map_err(|e| anyhow::anyhow!("limits: {e}"))?;
            let store = connect(&config).await?;
            store.ping().await?;
            let pending = store.pending_migrations().await?;
            if !pending.is_empty() {
                bail!(
                    "database reachable but {} migration(s) pending; run `snag migrate`",
                    pending.len()
                );
            }
            let alerts = crate::alerts::AlertsConfig::from_env()
                .map_err(|e| anyhow::anyhow!("alerts: {e}"))?;
            println!("ok: configuration valid, database reachable, schema up to date");
            println!("{}", alerts.describe());
            Ok(())
        }
        Command::Demo { email, password } => {
            let store = connect(&config).await?;
            store.migrate().await?;
            match store
                .create_user(&email, &hash_password(&password)?, true)
                .await
            {
                Ok(_) | Err(StoreError::Conflict(_)) => {}
                Err(e) => return Err(e.into()),
            }
            store
                .set_password(&email, &hash_password(&password)?)
                .await?;
            let projects = store.list_projects().await?;
            let project_id = match projects.iter().find(|p| p.slug == "demo") {
                Some(p) => p.id,
                None => store.create_project("demo", Some("python")).await?.0.id,
            };
            let key = store
                .project_keys(project_id)
                .await?
                .into_iter()
                .find(|k| k.is_active)
                .ok_or_else(|| anyhow::anyhow!("the demo project has no active key"))?;
            println!("Dashboard: {}/", config.base_url);
            println!("Login:     {email} / {password}");
            println!("DSN:       {}", config.dsn(&key.public_key, project_id));
            Ok(())
        }
    }
}

/// sqlx turns `0050_contract_drop_x.sql` into the description
/// "contract drop x".
fn is_contract_migration(description: &str) -> bool {
    description
        .split([' ', '_'])
        .next()
        .is_some_and(|w| w.eq_ignore_ascii_case("contract"))
}

async fn set_user_active(config: &Config, email: &str, active: bool) -> anyhow::Result<()> {
    let store = connect(config).await?;
    let Some(user) = store.user_by_email(email.trim()).await? else {
        bail!(
            "no user with email {:?} (use `snag user list`)",
            email.trim()
        );
    };
    store.set_user_active(user.id, active).await?;
    println!(
        "{} {}",
        if active { "enabled" } else { "disabled" },
        user.email
    );
    Ok(())
}

fn running_as_root() -> bool {
    // The effective uid from /proc: `geteuid` would need unsafe code, which
    // the crate denies.
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("Uid:"))
                .map(str::to_string)
        })
        .and_then(|l| l.split_whitespace().nth(2).map(|euid| euid == "0"))
        .unwrap_or(false)
}

async fn serve(config: Config) -> anyhow::Result<()> {
    let reporter = crate::ops::selfreport::init(
        config.sentry_dsn.as_deref(),
        config.sentry_environment.as_deref(),
    )
    .map_err(anyhow::Error::msg)?;
    init_logging(config.log_format, reporter.is_some());
    if config.secret_key.is_none() && !config.dev_mode {
        bail!("SNAG_SECRET_KEY is not set (set it, or SNAG_DEV=1 for local development)");
    }
    if running_as_root() && crate::config::env_var("SNAG_ALLOW_ROOT").as_deref() != Some("1") {
        bail!("refusing to serve as root; run as an unprivileged user (or set SNAG_ALLOW_ROOT=1)");
    }
    let store = connect(&config).await?;
    // Expand/contract: a newer release's additive migrations leave this
    // binary working (that is what lets two releases run side by side and
    // a rollback work); a contract migration (named `NNNN_contract_…`)
    // removed or changed something this binary may rely on.
    let (contract, expand): (Vec<_>, Vec<_>) = store
        .unknown_migrations()
        .await?
        .into_iter()
        .partition(|(_, description)| is_contract_migration(description));
    if !contract.is_empty() {
        let names: Vec<String> = contract.iter().map(|(v, d)| format!("{v}_{d}")).collect();
        bail!(
            "the database schema is newer than this binary (unknown contract migrations {}); deploy the newer release",
            names.join(", ")
        );
    }
    if !expand.is_empty() {
        let names: Vec<String> = expand.iter().map(|(v, d)| format!("{v}_{d}")).collect();
        tracing::warn!(migrations = %names.join(", "),
            "the schema has additive migrations from a newer release; serving (expand/contract)");
    }
    let pending = store.pending_migrations().await?;
    if !pending.is_empty() {
        bail!(
            "{} migration(s) pending; run `snag migrate` first",
            pending.len()
        );
    }
    let listener = match crate::ops::reload::take_inherited_listener() {
        Some(inherited) => {
            inherited.set_nonblocking(true)?;
            let local = inherited.local_addr()?;
            if local != config.bind {
                tracing::warn!(inherited = %local, configured = %config.bind,
                    "serving on the inherited socket, not SNAG_BIND");
            }
            tokio::net::TcpListener::from_std(inherited)?
        }
        None => {
            app::bind(config.bind).with_context(|| format!("cannot listen on {}", config.bind))?
        }
    };
    // A second handle on the socket, for handing it to a successor.
    let handover = {
        let std_listener = listener.into_std()?;
        let copy = std_listener.try_clone()?;
        (tokio::net::TcpListener::from_std(std_listener)?, copy)
    };
    let (listener, handover) = handover;
    let (grace, drain_delay, reload_timeout) = (
        config.shutdown_grace,
        config.drain_delay,
        config.reload_timeout,
    );
    let mut signals = crate::ops::reload::Signals::new()?;
    let mut server = app::start(config, store, listener).await?;
    tracing::info!(
        addr = %server.addr,
        base_url = %server.state.config.base_url,
        pid = std::process::id(),
        version = env!("CARGO_PKG_VERSION"),
        "listening"
    );
    crate::ops::reload::notify_ready();
    loop {
        match signals.next().await {
            crate::ops::reload::Signal::Stop => {
                tracing::info!("shutdown requested");
                break;
            }
            crate::ops::reload::Signal::Reload => {
                tracing::info!("reload requested: starting a new process on the same socket");
                match crate::ops::reload::hand_over(&handover, reload_timeout).await {
                    Ok(pid) => {
                        tracing::info!(successor = pid, "successor is serving; handing over");
                        break;
                    }
                    Err(e) => {
                        tracing::error!(error = %e, "reload failed; this process keeps serving");
                    }
                }
            }
        }
    }
    // Stop accepting first (a successor takes the queue), give open
    // keep-alive connections a moment to move over, then close them and
    // wait for in-flight requests and the write queue.
    server.stop_accepting();
    drop(handover);
    tokio::time::sleep(drain_delay).await;
    server.trigger_shutdown();
    match tokio::time::timeout(grace, server.wait()).await {
        Ok(result) => result.context("server error")?,
        Err(_) => tracing::warn!(
            grace_secs = grace.as_secs(),
            "in-flight requests did not finish in time"
        ),
    }
    drop(reporter);
    Ok(())
}
