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

/// One entry of an issue's activity feed, with who did it.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct ActivityRow {
    pub id: i64,
    pub kind: String,
    pub data: serde_json::Value,
    pub created_at: DateTime<Utc>,
    pub user_email: Option<String>,
}

/// The top values of one tag on an issue; `total` counts all its values.
#[derive(Debug, Clone, PartialEq)]
pub struct TagFacet {
    pub key: String,
    pub total: i64,
    pub values: Vec<(String, i64)>,
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
        if let Some(secs) = query.last_seen_within {
            qb.push(" AND i.last_seen >= now() - make_interval(secs => ")
                .push_bind(secs as f64)
                .push(")");
        }
        if let Some(secs) = query.first_seen_within {
            qb.push(" AND i.first_seen >= now() - make_interval(secs => ")
                .push_bind(secs as f64)
                .push(")");
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

    /// Deletes the issue with its events (by cascade) and the attachments
    /// and user reports of those events, which reference events by id only.
    pub async fn delete_issue(&self, issue_id: i64) -> Result<()> {
        let mut tx = self.pool.begin().await?;
        for sql in [
            "DELETE FROM attachment t USING event e
              WHERE e.issue_id = $1 AND t.project_id = e.project_id AND t.event_id = e.event_id",
            "DELETE FROM user_report t USING event e
              WHERE e.issue_id = $1 AND t.project_id = e.project_id AND t.event_id = e.event_id",
        ] {
            sqlx::query(sql).bind(issue_id).execute(&mut *tx).await?;
        }
        let done = sqlx::query("DELETE FROM issue WHERE id = $1")
            .bind(issue_id)
            .execute(&mut *tx)
            .await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound);
        }
        tx.commit().await?;
        Ok(())
    }

    /// The top `per_key` values of every tag of an issue, most frequent
    /// first, with the key's total so the page can show percentages.
    pub async fn issue_tag_facets(&self, issue_id: i64, per_key: i64) -> Result<Vec<TagFacet>> {
        let rows: Vec<(String, String, i64, i64)> = sqlx::query_as(
            "SELECT key, value, times_seen, total FROM (
                SELECT key, value, times_seen,
                       sum(times_seen) OVER (PARTITION BY key)::bigint AS total,
                       row_number() OVER (PARTITION BY key ORDER BY times_seen DESC, value) AS rank
                  FROM issue_tag WHERE issue_id = $1) t
              WHERE rank <= $2 ORDER BY key, rank LIMIT 2000",
        )
        .bind(issue_id)
        .bind(per_key)
        .fetch_all(&self.pool)
        .await?;
        let mut facets: Vec<TagFacet> = Vec::new();
        for (key, value, n, total) in rows {
            match facets.last_mut() {
                Some(f) if f.key == key => f.values.push((value, n)),
                _ => facets.push(TagFacet {
                    key,
                    total,
                    values: vec![(value, n)],
                }),
            }
        }
        Ok(facets)
    }

    /// Events per hour for the last `hours` hours of each issue, as
    /// (issue id, hours ago with 0 = this hour, count).
    pub async fn issue_hourly_counts(
        &self,
        issue_ids: &[i64],
        hours: i64,
    ) -> Result<Vec<(i64, i64, i64)>> {
        Ok(sqlx::query_as(
            "SELECT issue_id,
                    floor(extract(epoch FROM date_trunc('hour', now()) - hour) / 3600)::bigint AS ago,
                    count
               FROM issue_hourly
              WHERE issue_id = ANY($1) AND hour > date_trunc('hour', now()) - make_interval(hours => $2::int)",
        )
        .bind(issue_ids)
        .bind(hours as i32)
        .fetch_all(&self.pool)
        .await?)
    }

    /// Unresolved issue counts per project.
    pub async fn unresolved_counts(&self, project_ids: &[i64]) -> Result<Vec<(i64, i64)>> {
        Ok(sqlx::query_as(
            "SELECT project_id, count(*) FROM issue
              WHERE project_id = ANY($1) AND status = 'unresolved' GROUP BY project_id",
        )
        .bind(project_ids)
        .fetch_all(&self.pool)
        .await?)
    }

    /// Sets or clears the assignee and records it in the activity feed.
    pub async fn assign_issue(
        &self,
        issue_id: i64,
        assignee_id: Option<i64>,
        actor_id: Option<i64>,
    ) -> Result<()> {
        let mut tx = self.pool.begin().await?;
        let email: Option<String> = match assignee_id {
            Some(id) => Some(
                sqlx::query_scalar("SELECT email FROM users WHERE id = $1 AND is_active")
                    .bind(id)
                    .fetch_optional(&mut *tx)
                    .await?
                    .ok_or(StoreError::NotFound)?,
            ),
            None => None,
        };
        let done = sqlx::query("UPDATE issue SET assignee_id = $2 WHERE id = $1")
            .bind(issue_id)
            .bind(assignee_id)
            .execute(&mut *tx)
            .await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound);
        }
        sqlx::query("INSERT INTO activity (issue_id, user_id, kind, data) VALUES ($1, $2, $3, $4)")
            .bind(issue_id)
            .bind(actor_id)
            .bind(if email.is_some() {
                "assigned"
            } else {
                "unassigned"
            })
            .bind(serde_json::json!({ "assignee": email }))
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(())
    }

    pub async fn add_comment(&self, issue_id: i64, user_id: i64, text: &str) -> Result<()> {
        sqlx::query(
            "INSERT INTO activity (issue_id, user_id, kind, data)
             SELECT id, $2, 'note', $3 FROM issue WHERE id = $1",
        )
        .bind(issue_id)
        .bind(user_id)
        .bind(serde_json::json!({ "text": text }))
        .execute(&self.pool)
        .await
        .map_err(StoreError::from)
        .and_then(|done| {
            if done.rows_affected() == 0 {
                Err(StoreError::NotFound)
            } else {
                Ok(())
            }
        })
    }

    /// The newest `limit` activity entries of an issue, newest first.
    pub async fn issue_activity(&self, issue_id: i64, limit: i64) -> Result<Vec<ActivityRow>> {
        Ok(sqlx::query_as(
            "SELECT a.id, a.kind, a.data, a.created_at, u.email AS user_email
               FROM activity a LEFT JOIN users u ON u.id = a.user_id
              WHERE a.issue_id = $1 ORDER BY a.created_at DESC, a.id DESC LIMIT $2",
        )
        .bind(issue_id)
        .bind(limit)
        .fetch_all(&self.pool)
        .await?)
    }

    /// Merges `sources` into `target`: events, hashes (so future events of
    /// the sources join the target), tag, hourly and user counts move over
    /// and the source issues are deleted. All issues must share a project.
    pub async fn merge_issues(
        &self,
        target: i64,
        sources: &[i64],
        actor_id: Option<i64>,
    ) -> Result<()> {
        let sources: Vec<i64> = sources.iter().copied().filter(|id| *id != target).collect();
        if sources.is_empty() {
            return Ok(());
        }
        let mut all = sources.clone();
        all.push(target);
        let mut tx = self.pool.begin().await?;
        // Lock in id order so concurrent merges and ingest cannot deadlock on
        // each other's rows in opposite orders.
        let locked: Vec<(i64, i64, i64)> = sqlx::query_as(
            "SELECT id, project_id, short_id FROM issue WHERE id = ANY($1) ORDER BY id FOR UPDATE",
        )
        .bind(&all)
        .fetch_all(&mut *tx)
        .await?;
        if locked.len() != all.len() {
            return Err(StoreError::NotFound);
        }
        if locked.iter().any(|(_, p, _)| *p != locked[0].1) {
            return Err(StoreError::Conflict(
                "only issues of one project can be merged".into(),
            ));
        }
        for sql in [
            "UPDATE event SET issue_id = $1 WHERE issue_id = ANY($2)",
            "UPDATE issue_hash SET issue_id = $1 WHERE issue_id = ANY($2)",
            "UPDATE activity SET issue_id = $1 WHERE issue_id = ANY($2)",
            "INSERT INTO issue_tag (issue_id, key, value, times_seen, first_seen, last_seen)
             SELECT $1, key, value, sum(times_seen), min(first_seen), max(last_seen)
               FROM issue_tag WHERE issue_id = ANY($2) GROUP BY key, value
             ON CONFLICT (issue_id, key, value) DO UPDATE SET
                times_seen = issue_tag.times_seen + EXCLUDED.times_seen,
                first_seen = LEAST(issue_tag.first_seen, EXCLUDED.first_seen),
                last_seen = GREATEST(issue_tag.last_seen, EXCLUDED.last_seen)",
            "INSERT INTO issue_hourly (issue_id, hour, count)
             SELECT $1, hour, sum(count) FROM issue_hourly WHERE issue_id = ANY($2) GROUP BY hour
             ON CONFLICT (issue_id, hour) DO UPDATE SET count = issue_hourly.count + EXCLUDED.count",
            "INSERT INTO issue_user (issue_id, user_key)
             SELECT $1, user_key FROM issue_user WHERE issue_id = ANY($2) ON CONFLICT DO NOTHING",
            "UPDATE issue t SET
                times_seen = t.times_seen + s.times_seen,
                first_seen = LEAST(t.first_seen, s.first_seen),
                last_seen = GREATEST(t.last_seen, s.last_seen),
                first_release = CASE WHEN s.first_seen < t.first_seen THEN COALESCE(s.first_release, t.first_release) ELSE t.first_release END,
                last_release = CASE WHEN s.last_seen > t.last_seen THEN COALESCE(s.last_release, t.last_release) ELSE t.last_release END,
                last_event_id = CASE WHEN s.last_seen > t.last_seen THEN s.last_event_id ELSE t.last_event_id END,
                user_count = (SELECT count(*) FROM issue_user WHERE issue_id = $1)
               FROM (SELECT sum(times_seen)::bigint AS times_seen, min(first_seen) AS first_seen,
                            max(last_seen) AS last_seen,
                            (array_agg(first_release ORDER BY first_seen))[1] AS first_release,
                            (array_agg(last_release ORDER BY last_seen DESC))[1] AS last_release,
                            (array_agg(last_event_id ORDER BY last_seen DESC))[1] AS last_event_id
                       FROM issue WHERE id = ANY($2)) s
              WHERE t.id = $1",
            "DELETE FROM issue WHERE id = ANY($2)",
        ] {
            sqlx::query(sql)
                .bind(target)
                .bind(&sources)
                .execute(&mut *tx)
                .await?;
        }
        let merged: Vec<i64> = locked
            .iter()
            .filter(|(id, _, _)| *id != target)
            .map(|(_, _, short)| *short)
            .collect();
        sqlx::query(
            "INSERT INTO activity (issue_id, user_id, kind, data) VALUES ($1, $2, 'merge', $3)",
        )
        .bind(target)
        .bind(actor_id)
        .bind(serde_json::json!({ "merged_short_ids": merged }))
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }
}
