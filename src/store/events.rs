use super::{Result, Store};
use chrono::{DateTime, Utc};

#[derive(Debug, Clone)]
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
    level, platform, release, environment, message, title, data, payload, grouping, grouping_z";

/// An event row as stored: the payload compressed (`payload`), or as JSONB
/// (`data`) for rows written before compression.
#[derive(sqlx::FromRow)]
struct StoredEvent {
    event_id: uuid::Uuid,
    project_id: i64,
    issue_id: Option<i64>,
    event_type: String,
    timestamp: DateTime<Utc>,
    received_at: DateTime<Utc>,
    level: String,
    platform: String,
    release: Option<String>,
    environment: Option<String>,
    message: Option<String>,
    title: String,
    data: Option<serde_json::Value>,
    payload: Option<Vec<u8>>,
    grouping: Option<serde_json::Value>,
    grouping_z: Option<Vec<u8>>,
}

impl StoredEvent {
    fn decode(self) -> Result<EventRow> {
        let data = match (self.payload, self.data) {
            (Some(bytes), _) => super::payload::decode(&bytes)
                .map_err(|e| super::StoreError::Corrupt(format!("event {}: {e}", self.event_id)))?,
            (None, Some(data)) => data,
            (None, None) => serde_json::Value::Object(Default::default()),
        };
        let grouping = match self.grouping_z {
            Some(bytes) => Some(super::payload::decode(&bytes).map_err(|e| {
                super::StoreError::Corrupt(format!("grouping of event {}: {e}", self.event_id))
            })?),
            None => self.grouping,
        };
        Ok(EventRow {
            event_id: self.event_id,
            project_id: self.project_id,
            issue_id: self.issue_id,
            event_type: self.event_type,
            timestamp: self.timestamp,
            received_at: self.received_at,
            level: self.level,
            platform: self.platform,
            release: self.release,
            environment: self.environment,
            message: self.message,
            title: self.title,
            data,
            grouping,
        })
    }
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct AttachmentRow {
    pub id: i64,
    pub project_id: i64,
    pub event_id: uuid::Uuid,
    pub name: String,
    pub content_type: Option<String>,
    pub attachment_type: String,
    pub size: i64,
}

#[derive(sqlx::FromRow)]
struct Neighbours {
    oldest: Option<uuid::Uuid>,
    older: Option<uuid::Uuid>,
    newer: Option<uuid::Uuid>,
    latest: Option<uuid::Uuid>,
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct UserReportRow {
    pub event_id: uuid::Uuid,
    pub name: String,
    pub email: String,
    pub comments: String,
    pub created_at: DateTime<Utc>,
}

impl Store {
    /// The event of an issue by id, or its latest when `event_id` is None.
    pub async fn issue_event(
        &self,
        issue_id: i64,
        event_id: Option<uuid::Uuid>,
    ) -> Result<Option<EventRow>> {
        match event_id {
            None => self.latest_event(issue_id).await,
            Some(id) => {
                let sql = format!(
                    "SELECT {EVENT_COLUMNS} FROM event WHERE issue_id = $1 AND event_id = $2"
                );
                sqlx::query_as::<_, StoredEvent>(sqlx::AssertSqlSafe(sql))
                    .bind(issue_id)
                    .bind(id)
                    .fetch_optional(&self.pool)
                    .await?
                    .map(StoredEvent::decode)
                    .transpose()
            }
        }
    }

    /// Ids of the (oldest, older, newer, latest) events around one event of
    /// an issue, for navigation.
    pub async fn event_neighbours(
        &self,
        issue_id: i64,
        event_id: uuid::Uuid,
    ) -> Result<[Option<uuid::Uuid>; 4]> {
        let row: Neighbours = sqlx::query_as(
            // The row comparisons take the current event's key as plain
            // parameters so they become index conditions, not filters.
            "WITH cur AS (SELECT id, received_at FROM event
                           WHERE project_id = (SELECT project_id FROM issue WHERE id = $1)
                             AND event_id = $2 AND issue_id = $1)
             SELECT
               (SELECT event_id FROM event WHERE issue_id = $1 ORDER BY received_at, id LIMIT 1) AS oldest,
               (SELECT e.event_id FROM event e WHERE e.issue_id = $1
                   AND (e.received_at, e.id) < ((SELECT received_at FROM cur), (SELECT id FROM cur))
                 ORDER BY e.received_at DESC, e.id DESC LIMIT 1) AS older,
               (SELECT e.event_id FROM event e WHERE e.issue_id = $1
                   AND (e.received_at, e.id) > ((SELECT received_at FROM cur), (SELECT id FROM cur))
                 ORDER BY e.received_at, e.id LIMIT 1) AS newer,
               (SELECT event_id FROM event WHERE issue_id = $1 ORDER BY received_at DESC, id DESC LIMIT 1) AS latest",
        )
        .bind(issue_id)
        .bind(event_id)
        .fetch_one(&self.pool)
        .await?;
        Ok([row.oldest, row.older, row.newer, row.latest])
    }

    pub async fn event_attachments(
        &self,
        project_id: i64,
        event_id: uuid::Uuid,
    ) -> Result<Vec<AttachmentRow>> {
        Ok(sqlx::query_as(
            "SELECT id, project_id, event_id, name, content_type, attachment_type, size
               FROM attachment WHERE project_id = $1 AND event_id = $2 ORDER BY id",
        )
        .bind(project_id)
        .bind(event_id)
        .fetch_all(&self.pool)
        .await?)
    }

    pub async fn attachment(&self, id: i64) -> Result<Option<(AttachmentRow, Vec<u8>)>> {
        let Some(row): Option<AttachmentRow> = sqlx::query_as(
            "SELECT id, project_id, event_id, name, content_type, attachment_type, size FROM attachment WHERE id = $1",
        )
        .bind(id)
        .fetch_optional(&self.pool)
        .await?
        else {
            return Ok(None);
        };
        let data: Vec<u8> = sqlx::query_scalar("SELECT data FROM attachment WHERE id = $1")
            .bind(id)
            .fetch_one(&self.pool)
            .await?;
        Ok(Some((row, data)))
    }

    /// User feedback on any event of the issue.
    pub async fn issue_user_reports(&self, issue_id: i64) -> Result<Vec<UserReportRow>> {
        Ok(sqlx::query_as(
            "SELECT r.event_id, r.name, r.email, r.comments, r.created_at
               FROM user_report r JOIN event e ON e.project_id = r.project_id AND e.event_id = r.event_id
              WHERE e.issue_id = $1 ORDER BY r.created_at DESC LIMIT 50",
        )
        .bind(issue_id)
        .fetch_all(&self.pool)
        .await?)
    }

    pub async fn event(&self, project_id: i64, event_id: uuid::Uuid) -> Result<Option<EventRow>> {
        let sql =
            format!("SELECT {EVENT_COLUMNS} FROM event WHERE project_id = $1 AND event_id = $2");
        sqlx::query_as::<_, StoredEvent>(sqlx::AssertSqlSafe(sql))
            .bind(project_id)
            .bind(event_id)
            .fetch_optional(&self.pool)
            .await?
            .map(StoredEvent::decode)
            .transpose()
    }

    pub async fn latest_event(&self, issue_id: i64) -> Result<Option<EventRow>> {
        let sql = format!(
            "SELECT {EVENT_COLUMNS} FROM event WHERE issue_id = $1 ORDER BY received_at DESC, id DESC LIMIT 1"
        );
        sqlx::query_as::<_, StoredEvent>(sqlx::AssertSqlSafe(sql))
            .bind(issue_id)
            .fetch_optional(&self.pool)
            .await?
            .map(StoredEvent::decode)
            .transpose()
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

    /// Events of an issue whose tags match every filter (a negated filter
    /// excludes), newest first. Values are bound, never interpolated.
    pub async fn issue_events_matching(
        &self,
        issue_id: i64,
        tags: &[crate::search::TagFilter],
        limit: i64,
        offset: i64,
    ) -> Result<Vec<EventSummaryRow>> {
        let mut qb = sqlx::QueryBuilder::<sqlx::Postgres>::new(
            "SELECT event_id, \"timestamp\", received_at, level, release, environment, title
               FROM event WHERE issue_id = ",
        );
        qb.push_bind(issue_id);
        for tag in tags {
            qb.push(if tag.negated { " AND NOT " } else { " AND " });
            qb.push("tags @> ")
                .push_bind(serde_json::json!([[tag.key, tag.value]]));
        }
        qb.push(" ORDER BY received_at DESC, id DESC LIMIT ")
            .push_bind(limit.clamp(1, 1000))
            .push(" OFFSET ")
            .push_bind(offset.max(0));
        Ok(qb
            .build_query_as::<EventSummaryRow>()
            .fetch_all(&self.pool)
            .await?)
    }

    /// Full rows of the given events of a project (any order), for export.
    pub async fn events_by_ids(
        &self,
        project_id: i64,
        event_ids: &[uuid::Uuid],
    ) -> Result<Vec<EventRow>> {
        let sql = format!(
            "SELECT {EVENT_COLUMNS} FROM event WHERE project_id = $1 AND event_id = ANY($2)"
        );
        sqlx::query_as::<_, StoredEvent>(sqlx::AssertSqlSafe(sql))
            .bind(project_id)
            .bind(event_ids)
            .fetch_all(&self.pool)
            .await?
            .into_iter()
            .map(StoredEvent::decode)
            .collect()
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
