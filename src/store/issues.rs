use super::{Result, Store, StoreError};
use crate::search::{AssignedFilter, SearchQuery, StatusFilter};
use chrono::{DateTime, Utc};

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct IssueRow {
    pub id: i64,
    pub project_id: i64,
    pub short_id: i64,
    pub title: String,
    pub culprit: String,
    pub event_type: String,
    pub metadata: serde_json::Value,
    pub level: String,
    pub platform: String,
    pub status: String,
    pub substatus: Option<String>,
    pub resolved_at: Option<DateTime<Utc>>,
    pub assignee_id: Option<i64>,
    pub first_seen: DateTime<Utc>,
    pub last_seen: DateTime<Utc>,
    pub times_seen: i64,
    pub user_count: i64,
    pub first_release: Option<String>,
    pub last_release: Option<String>,
    pub last_event_id: Option<uuid::Uuid>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IssueStatus {
    Unresolved,
    Resolved,
    Ignored,
}

impl IssueStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Unresolved => "unresolved",
            Self::Resolved => "resolved",
            Self::Ignored => "ignored",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "unresolved" => Some(Self::Unresolved),
            "resolved" => Some(Self::Resolved),
            "ignored" | "muted" | "archived" => Some(Self::Ignored),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Resolution {
    Now,
    NextRelease,
    InRelease(String),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IgnoreUntil {
    Forever,
    Duration(i64),
    MoreEvents(i64),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum IssueSort {
    #[default]
    LastSeen,
    FirstSeen,
    TimesSeen,
    Users,
}

impl IssueSort {
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "date" | "last_seen" => Some(Self::LastSeen),
            "new" | "first_seen" => Some(Self::FirstSeen),
            "freq" | "times_seen" => Some(Self::TimesSeen),
            "user" | "users" => Some(Self::Users),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::LastSeen => "date",
            Self::FirstSeen => "new",
            Self::TimesSeen => "freq",
            Self::Users => "user",
        }
    }

    fn order_by(self) -> &'static str {
        match self {
            Self::LastSeen => "last_seen DESC, id DESC",
            Self::FirstSeen => "first_seen DESC, id DESC",
            Self::TimesSeen => "times_seen DESC, id DESC",
            Self::Users => "user_count DESC, id DESC",
        }
    }
}

#[derive(Debug, Clone, Default)]
pub struct IssueFilter {
    pub status: Option<IssueStatus>,
    pub level: Option<String>,
    /// Case-insensitive substring of title or culprit.
    pub text: Option<String>,
    pub sort: IssueSort,
    pub limit: i64,
    pub offset: i64,
}

const ISSUE_COLUMNS: &str = "id, project_id, short_id, title, culprit, event_type, metadata, level,
    platform, status, substatus, resolved_at, assignee_id, first_seen, last_seen, times_seen,
    user_count, first_release, last_release, last_event_id";

fn like_pattern(text: &str) -> String {
    let escaped = text
        .replace('\\', "\\\\")
        .replace('%', "\\%")
        .replace('_', "\\_");
    format!("%{escaped}%")
}

impl Store {
    pub async fn list_issues(
        &self,
        project_id: i64,
        filter: &IssueFilter,
    ) -> Result<Vec<IssueRow>> {
        let sql = format!(
            "SELECT {ISSUE_COLUMNS} FROM issue
              WHERE project_id = $1
                AND ($2::text IS NULL OR status = $2)
                AND ($3::text IS NULL OR level = $3)
                AND ($4::text IS NULL OR title ILIKE $4 OR culprit ILIKE $4)
              ORDER BY {}
              LIMIT $5 OFFSET $6",
            filter.sort.order_by()
        );
        Ok(sqlx::query_as(sqlx::AssertSqlSafe(sql))
            .bind(project_id)
            .bind(filter.status.map(IssueStatus::as_str))
            .bind(filter.level.as_deref())
            .bind(filter.text.as_deref().map(like_pattern))
            .bind(filter.limit.clamp(1, 1000))
            .bind(filter.offset.max(0))
            .fetch_all(&self.pool)
            .await?)
    }

    /// Issues of the given projects matching a parsed search. Every value is
    /// bound as a parameter; only fixed SQL fragments are concatenated.
    pub async fn search_issues(
        &self,
        project_ids: &[i64],
        query: &SearchQuery,
        sort: IssueSort,
        limit: i64,
        offset: i64,
        current_user_id: Option<i64>,
    ) -> Result<Vec<IssueRow>> {
        let mut qb = sqlx::QueryBuilder::<sqlx::Postgres>::new(format!(
            "SELECT {ISSUE_COLUMNS} FROM issue i WHERE i.project_id = ANY("
        ));
        qb.push_bind(project_ids.to_vec()).push(")");
        match &query.status {
            Some(StatusFilter::Unresolved) => qb.push(" AND i.status = 'unresolved'"),
            Some(StatusFilter::Resolved) => qb.push(" AND i.status = 'resolved'"),
            Some(StatusFilter::Ignored) => qb.push(" AND i.status = 'ignored'"),
            Some(StatusFilter::Regressed) => {
                qb.push(" AND i.status = 'unresolved' AND i.substatus = 'regressed'")
            }
            None => &mut qb,
        };
        if let Some(level) = &query.level {
            qb.push(" AND i.level = ").push_bind(level.clone());
        }
        match &query.assigned {
            Some(AssignedFilter::Me) => {
                qb.push(" AND i.assignee_id = ")
                    .push_bind(current_user_id.unwrap_or(-1));
            }
            Some(AssignedFilter::Nobody) => {
                qb.push(" AND i.assignee_id IS NULL");
            }
            Some(AssignedFilter::Anybody) => {
                qb.push(" AND i.assignee_id IS NOT NULL");
            }
            Some(AssignedFilter::Email(email)) => {
                qb.push(" AND i.assignee_id = (SELECT id FROM users WHERE lower(email) = lower(")
                    .push_bind(email.clone())
                    .push("))");
            }
            None => {}
        }
        match query.has_user {
            Some(true) => {
                qb.push(" AND i.user_count > 0");
            }
            Some(false) => {
                qb.push(" AND i.user_count = 0");
            }
            None => {}
        }
        for tag in &query.tags {
            qb.push(if tag.negated {
                " AND NOT EXISTS"
            } else {
                " AND EXISTS"
            });
            qb.push(" (SELECT 1 FROM issue_tag t WHERE t.issue_id = i.id AND t.key = ")
                .push_bind(tag.key.clone())
                .push(" AND t.value = ")
                .push_bind(tag.value.clone())
                .push(")");
        }
        for word in &query.text {
            let pattern = like_pattern(word);
            qb.push(" AND (i.title ILIKE ")
                .push_bind(pattern.clone())
                .push(" OR i.culprit ILIKE ")
                .push_bind(pattern)
                .push(")");
        }
        qb.push(" ORDER BY ").push(sort.order_by());
        qb.push(" LIMIT ")
            .push_bind(limit.clamp(1, 1000))
            .push(" OFFSET ")
            .push_bind(offset.max(0));
        Ok(qb
            .build_query_as::<IssueRow>()
            .fetch_all(&self.pool)
            .await?)
    }

    pub async fn issue(&self, issue_id: i64) -> Result<Option<IssueRow>> {
        let sql = format!("SELECT {ISSUE_COLUMNS} FROM issue WHERE id = $1");
        Ok(sqlx::query_as(sqlx::AssertSqlSafe(sql))
            .bind(issue_id)
            .fetch_optional(&self.pool)
            .await?)
    }

    pub async fn set_issue_status(
        &self,
        issue_id: i64,
        status: IssueStatus,
        user_id: Option<i64>,
    ) -> Result<()> {
        let mut tx = self.pool.begin().await?;
        let done = sqlx::query(
            "UPDATE issue SET status = $2,
                    resolved_at = CASE WHEN $2 = 'resolved' THEN now() ELSE NULL END,
                    substatus = CASE WHEN $2 = 'unresolved' THEN 'ongoing' ELSE NULL END
              WHERE id = $1",
        )
        .bind(issue_id)
        .bind(status.as_str())
        .execute(&mut *tx)
        .await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound);
        }
        sqlx::query("INSERT INTO activity (issue_id, user_id, kind) VALUES ($1, $2, $3)")
            .bind(issue_id)
            .bind(user_id)
            .bind(format!("set_{}", status.as_str()))
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Resolves an issue. "Next release" records the release current at
    /// resolve time (plain resolve when the issue has none); the ingest
    /// path then decides regressions per the resolution.
    pub async fn resolve_issue(
        &self,
        issue_id: i64,
        resolution: Resolution,
        user_id: Option<i64>,
    ) -> Result<()> {
        let (kind, release) = match &resolution {
            Resolution::Now => (None, None),
            Resolution::NextRelease => (Some("next_release"), None),
            Resolution::InRelease(version) => (Some("in_release"), Some(version.clone())),
        };
        let mut tx = self.pool.begin().await?;
        let done = sqlx::query(
            "UPDATE issue SET status = 'resolved', substatus = NULL, resolved_at = now(),
                    resolution_type = CASE WHEN $2 = 'next_release' AND last_release IS NULL THEN NULL ELSE $2 END,
                    resolved_in_release = CASE WHEN $2 = 'next_release' THEN last_release ELSE $3 END,
                    ignored_until = NULL, ignored_until_count = NULL
              WHERE id = $1",
        )
        .bind(issue_id)
        .bind(kind)
        .bind(release.clone())
        .execute(&mut *tx)
        .await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound);
        }
        sqlx::query("INSERT INTO activity (issue_id, user_id, kind, data) VALUES ($1, $2, 'set_resolved', $3)")
            .bind(issue_id)
            .bind(user_id)
            .bind(serde_json::json!({ "resolution": kind, "release": release }))
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(())
    }

    pub async fn ignore_issue(
        &self,
        issue_id: i64,
        until: IgnoreUntil,
        user_id: Option<i64>,
    ) -> Result<()> {
        let (secs, count) = match until {
            IgnoreUntil::Forever => (None, None),
            IgnoreUntil::Duration(secs) => (Some(secs as f64), None),
            IgnoreUntil::MoreEvents(n) => (None, Some(n)),
        };
        let mut tx = self.pool.begin().await?;
        let done = sqlx::query(
            "UPDATE issue SET status = 'ignored', substatus = NULL, resolved_at = NULL, resolution_type = NULL,
                    resolved_in_release = NULL,
                    ignored_until = CASE WHEN $2::float8 IS NULL THEN NULL ELSE now() + make_interval(secs => $2) END,
                    ignored_until_count = CASE WHEN $3::bigint IS NULL THEN NULL ELSE times_seen + $3 END
              WHERE id = $1",
        )
        .bind(issue_id)
        .bind(secs)
        .bind(count)
        .execute(&mut *tx)
        .await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound);
        }
        sqlx::query("INSERT INTO activity (issue_id, user_id, kind, data) VALUES ($1, $2, 'set_ignored', $3)")
            .bind(issue_id)
            .bind(user_id)
            .bind(serde_json::json!({ "for_seconds": secs, "more_events": count }))
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(())
    }

    pub async fn delete_issue(&self, issue_id: i64) -> Result<()> {
        let done = sqlx::query("DELETE FROM issue WHERE id = $1")
            .bind(issue_id)
            .execute(&self.pool)
            .await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound);
        }
        Ok(())
    }

    pub async fn issue_tags(&self, issue_id: i64) -> Result<Vec<(String, String, i64)>> {
        Ok(sqlx::query_as(
            "SELECT key, value, times_seen FROM issue_tag WHERE issue_id = $1
              ORDER BY key, times_seen DESC, value LIMIT 500",
        )
        .bind(issue_id)
        .fetch_all(&self.pool)
        .await?)
    }
}
