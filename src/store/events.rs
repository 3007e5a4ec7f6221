use super::{Result, Store};
use chrono::{DateTime, Utc};

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct EventRow {
    pub event_id: uuid::Uuid,
    pub project_id: i64,
    pub issue_id: Option<i64>,
    pub event_type: String,
    pub timestamp: DateTime<Utc>,
    pub received_at: DateTime<Utc>,
    pub level: String,
    pub platform: String,
    pub release: Option<String>,
    pub environment: Option<String>,
    pub message: Option<String>,
    pub title: String,
    pub data: serde_json::Value,
    pub grouping: Option<serde_json::Value>,
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct EventSummaryRow {
    pub event_id: uuid::Uuid,
    pub timestamp: DateTime<Utc>,
    pub received_at: DateTime<Utc>,
    pub level: String,
    pub release: Option<String>,
    pub environment: Option<String>,
    pub title: String,
}

const EVENT_COLUMNS: &str =
    "event_id, project_id, issue_id, event_type, \"timestamp\", received_at,
    level, platform, release, environment, message, title, data, grouping";

impl Store {
    pub async fn event(&self, project_id: i64, event_id: uuid::Uuid) -> Result<Option<EventRow>> {
        let sql =
            format!("SELECT {EVENT_COLUMNS} FROM event WHERE project_id = $1 AND event_id = $2");
        Ok(sqlx::query_as(sqlx::AssertSqlSafe(sql))
            .bind(project_id)
            .bind(event_id)
            .fetch_optional(&self.pool)
            .await?)
    }

    pub async fn latest_event(&self, issue_id: i64) -> Result<Option<EventRow>> {
        let sql = format!(
            "SELECT {EVENT_COLUMNS} FROM event WHERE issue_id = $1 ORDER BY received_at DESC, id DESC LIMIT 1"
        );
        Ok(sqlx::query_as(sqlx::AssertSqlSafe(sql))
            .bind(issue_id)
            .fetch_optional(&self.pool)
            .await?)
    }

    pub async fn issue_events(&self, issue_id: i64, limit: i64) -> Result<Vec<EventSummaryRow>> {
        Ok(sqlx::query_as(
            "SELECT event_id, \"timestamp\", received_at, level, release, environment, title
               FROM event WHERE issue_id = $1 ORDER BY received_at DESC, id DESC LIMIT $2",
        )
        .bind(issue_id)
        .bind(limit)
        .fetch_all(&self.pool)
        .await?)
    }

    pub async fn count_events(&self, project_id: i64) -> Result<i64> {
        Ok(
            sqlx::query_scalar("SELECT count(*) FROM event WHERE project_id = $1")
                .bind(project_id)
                .fetch_one(&self.pool)
                .await?,
        )
    }
}
