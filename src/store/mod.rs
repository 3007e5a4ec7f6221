//! All SQL lives here. Handlers and workers call typed functions; nothing
//! outside this module builds a query.

pub mod alerts;
mod api;
pub mod backup;
mod events;
mod health;
mod issues;
pub mod payload;
mod projects;
pub mod retention;
mod teams;
mod users;
pub mod write;

pub use api::{
    ApiTokenRow, DeployRow, HashRow, IssueState, NewDeploy, OrganizationRow, ReleaseChanges,
    ReleaseIssueStats, ReleaseRow, TokenOwner,
};
pub use events::{AttachmentRow, EventRow, EventSummaryRow, UserReportRow};
pub use health::{CheckInRow, MonitorRow, OutcomeRow, ReleaseHealthRow};
pub use issues::{
    ActivityRow, IgnoreUntil, IssueCursor, IssueFilter, IssueRow, IssueSort, IssueStatus,
    Resolution, TagFacet,
};
pub use projects::{KeyInfo, ProjectKeyRow, ProjectRow, ScrubSettings};
pub use teams::{ROLES, TeamRow};
pub use users::{InvitationRow, SessionUser, UserRow};

use sqlx::postgres::PgPoolOptions;
use sqlx::{Connection, PgPool};
use std::time::Duration;

pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    #[error("migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("{0}")]
    Conflict(String),
    #[error("not found")]
    NotFound,
    /// A stored row that cannot be read back (e.g. a damaged payload).
    #[error("corrupt data: {0}")]
    Corrupt(String),
}

pub type Result<T, E = StoreError> = std::result::Result<T, E>;

#[derive(Clone)]
pub struct Store {
    pool: PgPool,
}

impl Store {
    pub async fn connect(url: &str, max_connections: u32) -> Result<Self> {
        // One direct connection first: a pool only reports "timed out",
        // while this surfaces the real reason (refused, bad password, …).
        let options: sqlx::postgres::PgConnectOptions = url.parse()?;
        let probe = tokio::time::timeout(
            Duration::from_secs(10),
            sqlx::PgConnection::connect_with(&options),
        )
        .await
        .map_err(|_| sqlx::Error::PoolTimedOut)??;
        probe.close().await?;
        let pool = PgPoolOptions::new()
            .max_connections(max_connections)
            .acquire_timeout(Duration::from_secs(5))
            .connect(url)
            .await?;
        Ok(Self { pool })
    }

    /// A store that connects on first use; `readyz` must report an
    /// unreachable database rather than the process refusing to start.
    pub fn connect_lazy(url: &str, max_connections: u32) -> Result<Self> {
        let pool = PgPoolOptions::new()
            .max_connections(max_connections)
            .acquire_timeout(Duration::from_secs(2))
            .connect_lazy(url)?;
        Ok(Self { pool })
    }

    pub fn from_pool(pool: PgPool) -> Self {
        Self { pool }
    }

    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    pub async fn migrate(&self) -> Result<()> {
        MIGRATOR.run(&self.pool).await?;
        Ok(())
    }

    /// Names of embedded migrations the database has not applied yet.
    pub async fn pending_migrations(&self) -> Result<Vec<String>> {
        let applied: Vec<i64> = sqlx::query_scalar(
            "SELECT version FROM _sqlx_migrations WHERE success ORDER BY version",
        )
        .fetch_all(&self.pool)
        .await
        .or_else(|e| match &e {
            sqlx::Error::Database(db) if db.code().as_deref() == Some("42P01") => Ok(Vec::new()),
            _ => Err(e),
        })?;
        Ok(MIGRATOR
            .iter()
            .filter(|m| !applied.contains(&m.version))
            .map(|m| format!("{}_{}", m.version, m.description))
            .collect())
    }

    /// Applied migrations this binary does not know, as (version,
    /// description): the schema was migrated by a newer release.
    pub async fn unknown_migrations(&self) -> Result<Vec<(i64, String)>> {
        let applied: Vec<(i64, String)> =
            sqlx::query_as("SELECT version, description FROM _sqlx_migrations ORDER BY version")
                .fetch_all(&self.pool)
                .await
                .or_else(|e| match &e {
                    sqlx::Error::Database(db) if db.code().as_deref() == Some("42P01") => {
                        Ok(Vec::new())
                    }
                    _ => Err(e),
                })?;
        Ok(applied
            .into_iter()
            .filter(|(v, _)| !MIGRATOR.iter().any(|m| m.version == *v))
            .collect())
    }

    pub async fn ping(&self) -> Result<()> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }
}

fn is_unique_violation(e: &sqlx::Error) -> bool {
    matches!(e, sqlx::Error::Database(db) if db.code().as_deref() == Some("23505"))
}
