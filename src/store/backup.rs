//! Export and import of projects, keys, issues and events, for backups and
//! moving projects between instances. Records reference projects by their
//! id in the source instance and issues by their per-project short id, so a
//! dump means the same thing wherever it is loaded.

use super::{Result, Store, StoreError};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sqlx::{Postgres, Transaction};
use std::collections::HashMap;
use uuid::Uuid;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, sqlx::FromRow)]
pub struct ProjectRecord {
    pub id: i64,
    pub organization: String,
    pub slug: String,
    pub name: String,
    pub platform: Option<String>,
    pub grouping_config: String,
    pub fingerprint_rules: String,
    pub scrub_data: bool,
    pub scrub_ip: bool,
    pub retention_days: Option<i32>,
    pub max_events: Option<i64>,
    pub created_at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, sqlx::FromRow)]
pub struct KeyRecord {
    pub project: i64,
    pub public_key: String,
    pub secret_key: Option<String>,
    pub label: String,
    pub is_active: bool,
    pub rate_limit_per_minute: Option<i32>,
    pub created_at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, sqlx::FromRow)]
pub struct TagRecord {
    pub key: String,
    pub value: String,
    pub times_seen: i64,
    pub first_seen: DateTime<Utc>,
    pub last_seen: DateTime<Utc>,
}

#[derive(sqlx::FromRow)]
struct IssueTag {
    issue_id: i64,
    #[sqlx(flatten)]
    tag: TagRecord,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, sqlx::FromRow)]
pub struct IssueRecord {
    #[serde(skip)]
    pub id: i64,
    pub project: i64,
    pub short_id: i64,
    pub title: String,
    pub culprit: String,
    pub event_type: String,
    pub metadata: Value,
    pub level: String,
    pub platform: String,
    pub status: String,
    pub substatus: Option<String>,
    pub resolved_at: Option<DateTime<Utc>>,
    pub resolution_type: Option<String>,
    pub resolved_in_release: Option<String>,
    pub ignored_until: Option<DateTime<Utc>>,
    pub ignored_until_count: Option<i64>,
    /// The assignee's email; on import, assigned again if that user exists.
    pub assignee: Option<String>,
    pub first_seen: DateTime<Utc>,
    pub last_seen: DateTime<Utc>,
    pub times_seen: i64,
    pub user_count: i64,
    pub first_release: Option<String>,
    pub last_release: Option<String>,
    pub last_event_id: Option<Uuid>,
    /// Grouping hashes, so new events keep joining this issue.
    #[sqlx(skip)]
    #[serde(default)]
    pub hashes: Vec<String>,
    #[sqlx(skip)]
    #[serde(default)]
    pub tags: Vec<TagRecord>,
    /// (hour, events) for the issue's sparkline.
    #[sqlx(skip)]
    #[serde(default)]
    pub hourly: Vec<(DateTime<Utc>, i64)>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, sqlx::FromRow)]
pub struct EventRecord {
    #[serde(skip)]
    pub id: i64,
    pub project: i64,
    /// The issue's short id; None for events that form no issue.
    pub issue: Option<i64>,
    pub event_id: Uuid,
    pub event_type: String,
    pub timestamp: DateTime<Utc>,
    pub received_at: DateTime<Utc>,
    pub level: String,
    pub platform: String,
    pub release: Option<String>,
    pub environment: Option<String>,
    pub transaction: Option<String>,
    pub message: Option<String>,
    pub title: String,
    pub user_key: Option<String>,
    pub tags: Value,
    #[sqlx(skip)]
    #[serde(default)]
    pub data: Value,
    #[sqlx(skip)]
    #[serde(default)]
    pub grouping: Option<Value>,
}

/// Where an imported project ended up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImportedProject {
    pub source_id: i64,
    pub id: i64,
    pub slug: String,
}

impl Store {
    pub async fn export_projects(&self, only: &[i64]) -> Result<Vec<ProjectRecord>> {
        Ok(sqlx::query_as(
            "SELECT p.id, o.slug AS organization, p.slug, p.name, p.platform, p.grouping_config,
                    p.fingerprint_rules, p.scrub_data, p.scrub_ip, p.retention_days, p.max_events,
                    p.created_at
               FROM project p JOIN organization o ON o.id = p.organization_id
              WHERE cardinality($1::bigint[]) = 0 OR p.id = ANY($1)
              ORDER BY p.id",
        )
        .bind(only)
        .fetch_all(&self.pool)
        .await?)
    }

    pub async fn export_keys(&self, project_id: i64) -> Result<Vec<KeyRecord>> {
        Ok(sqlx::query_as(
            "SELECT project_id AS project, public_key, secret_key, label, is_active,
                    rate_limit_per_minute, created_at
               FROM project_key WHERE project_id = $1 ORDER BY id",
        )
        .bind(project_id)
        .fetch_all(&self.pool)
        .await?)
    }

    /// Up to `limit` issues of a project with an id above `after`, with
    /// their hashes, tags and hourly counts.
    pub async fn export_issues(
        &self,
        project_id: i64,
        after: i64,
        limit: i64,
    ) -> Result<Vec<IssueRecord>> {
        let mut issues: Vec<IssueRecord> = sqlx::query_as(
            "SELECT i.id, i.project_id AS project, i.short_id, i.title, i.culprit, i.event_type,
                    i.metadata, i.level, i.platform, i.status, i.substatus, i.resolved_at,
                    i.resolution_type, i.resolved_in_release, i.ignored_until, i.ignored_until_count,
                    u.email AS assignee, i.first_seen, i.last_seen, i.times_seen, i.user_count,
                    i.first_release, i.last_release, i.last_event_id
               FROM issue i LEFT JOIN users u ON u.id = i.assignee_id
              WHERE i.project_id = $1 AND i.id > $2 ORDER BY i.id LIMIT $3",
        )
        .bind(project_id)
        .bind(after)
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        let ids: Vec<i64> = issues.iter().map(|i| i.id).collect();
        let hashes: Vec<(i64, String)> = sqlx::query_as(
            "SELECT issue_id, hash FROM issue_hash WHERE issue_id = ANY($1) ORDER BY hash",
        )
        .bind(&ids)
        .fetch_all(&self.pool)
        .await?;
        let tags: Vec<IssueTag> = sqlx::query_as(
            "SELECT issue_id, key, value, times_seen, first_seen, last_seen FROM issue_tag
              WHERE issue_id = ANY($1) ORDER BY key, value",
        )
        .bind(&ids)
        .fetch_all(&self.pool)
        .await?;
        let hourly: Vec<(i64, DateTime<Utc>, i64)> = sqlx::query_as(
            "SELECT issue_id, hour, count FROM issue_hourly WHERE issue_id = ANY($1) ORDER BY hour",
        )
        .bind(&ids)
        .fetch_all(&self.pool)
        .await?;
        let mut index: HashMap<i64, usize> = HashMap::new();
        for (n, issue) in issues.iter().enumerate() {
            index.insert(issue.id, n);
        }
        for (issue_id, hash) in hashes {
            issues[index[&issue_id]].hashes.push(hash);
        }
        for IssueTag { issue_id, tag } in tags {
            issues[index[&issue_id]].tags.push(tag);
        }
        for (issue_id, hour, count) in hourly {
            issues[index[&issue_id]].hourly.push((hour, count));
        }
        Ok(issues)
    }

    /// Up to `limit` events of a project with an internal id above `after`,
    /// payloads included.
    pub async fn export_events(
        &self,
        project_id: i64,
        after: i64,
        limit: i64,
    ) -> Result<Vec<EventRecord>> {
        let mut events: Vec<EventRecord> = sqlx::query_as(
            "SELECT e.id, e.project_id AS project, i.short_id AS issue, e.event_id, e.event_type,
                    e.\"timestamp\", e.received_at, e.level, e.platform, e.release, e.environment,
                    e.transaction, e.message, e.title, e.user_key, e.tags
               FROM event e LEFT JOIN issue i ON i.id = e.issue_id
              WHERE e.project_id = $1 AND e.id > $2 ORDER BY e.id LIMIT $3",
        )
        .bind(project_id)
        .bind(after)
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        let ids: Vec<Uuid> = events.iter().map(|e| e.event_id).collect();
        // Payloads through the one function that knows how they are stored.
        let mut rows: HashMap<Uuid, super::EventRow> = self
            .events_by_ids(project_id, &ids)
            .await?
            .into_iter()
            .map(|row| (row.event_id, row))
            .collect();
        for event in &mut events {
            if let Some(row) = rows.remove(&event.event_id) {
                event.data = row.data;
                event.grouping = row.grouping;
            }
        }
        Ok(events)
    }

    pub async fn begin_import(&self) -> Result<Import> {
        Ok(Import {
            tx: self.pool.begin().await?,
            projects: HashMap::new(),
            issues: HashMap::new(),
            imported: Vec::new(),
        })
    }
}

/// One import, in one transaction: all of it lands or none.
pub struct Import {
    tx: Transaction<'static, Postgres>,
    /// Source project id → id here.
    projects: HashMap<i64, i64>,
    /// (source project id, short id) → issue id here.
    issues: HashMap<(i64, i64), i64>,
    imported: Vec<ImportedProject>,
}

fn conflict(message: String) -> StoreError {
    StoreError::Conflict(message)
}

impl Import {
    fn project_id(&self, source: i64) -> Result<i64> {
        self.projects.get(&source).copied().ok_or_else(|| {
            conflict(format!(
                "record refers to project {source}, which is not in the file before it"
            ))
        })
    }

    /// Creates the project, keeping its id when it is free here (DSNs
    /// contain it); refuses a slug that already exists.
    pub async fn project(&mut self, p: &ProjectRecord) -> Result<()> {
        let org_id: i64 = sqlx::query_scalar(
            "INSERT INTO organization (slug, name) VALUES ($1, $1)
             ON CONFLICT (slug) DO UPDATE SET slug = EXCLUDED.slug RETURNING id",
        )
        .bind(&p.organization)
        .fetch_one(&mut *self.tx)
        .await?;
        let taken: bool = sqlx::query_scalar(
            "SELECT EXISTS (SELECT 1 FROM project WHERE organization_id = $1 AND slug = $2)",
        )
        .bind(org_id)
        .bind(&p.slug)
        .fetch_one(&mut *self.tx)
        .await?;
        if taken {
            return Err(conflict(format!(
                "project {}/{} already exists here",
                p.organization, p.slug
            )));
        }
        let id_free: bool =
            sqlx::query_scalar("SELECT NOT EXISTS (SELECT 1 FROM project WHERE id = $1)")
                .bind(p.id)
                .fetch_one(&mut *self.tx)
                .await?;
        let id: i64 = sqlx::query_scalar(
            "INSERT INTO project (id, organization_id, slug, name, platform, grouping_config,
                                  fingerprint_rules, scrub_data, scrub_ip, retention_days, max_events,
                                  created_at)
             VALUES (COALESCE($1, nextval('project_id_seq')), $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)
             RETURNING id",
        )
        .bind(id_free.then_some(p.id))
        .bind(org_id)
        .bind(&p.slug)
        .bind(&p.name)
        .bind(&p.platform)
        .bind(&p.grouping_config)
        .bind(&p.fingerprint_rules)
        .bind(p.scrub_data)
        .bind(p.scrub_ip)
        .bind(p.retention_days)
        .bind(p.max_events)
        .bind(p.created_at)
        .fetch_one(&mut *self.tx)
        .await?;
        // Explicit ids do not advance the sequence; later projects must not
        // collide with imported ones.
        sqlx::query("SELECT setval('project_id_seq', GREATEST((SELECT max(id) FROM project), 1))")
            .execute(&mut *self.tx)
            .await?;
        sqlx::query("INSERT INTO project_counter (project_id) VALUES ($1)")
            .bind(id)
            .execute(&mut *self.tx)
            .await?;
        self.projects.insert(p.id, id);
        self.imported.push(ImportedProject {
            source_id: p.id,
            id,
            slug: format!("{}/{}", p.organization, p.slug),
        });
        Ok(())
    }

    pub async fn key(&mut self, k: &KeyRecord) -> Result<()> {
        let project_id = self.project_id(k.project)?;
        sqlx::query(
            "INSERT INTO project_key (project_id, public_key, secret_key, label, is_active,
                                      rate_limit_per_minute, created_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(project_id)
        .bind(&k.public_key)
        .bind(&k.secret_key)
        .bind(&k.label)
        .bind(k.is_active)
        .bind(k.rate_limit_per_minute)
        .bind(k.created_at)
        .execute(&mut *self.tx)
        .await
        .map_err(|e| {
            if super::is_unique_violation(&e) {
                conflict(format!("DSN key {} already exists here", k.public_key))
            } else {
                e.into()
            }
        })?;
        Ok(())
    }

    pub async fn issue(&mut self, i: &IssueRecord) -> Result<()> {
        let project_id = self.project_id(i.project)?;
        let id: i64 = sqlx::query_scalar(
            "INSERT INTO issue (project_id, short_id, title, culprit, event_type, metadata, level,
                                platform, status, substatus, resolved_at, resolution_type,
                                resolved_in_release, ignored_until, ignored_until_count, assignee_id,
                                first_seen, last_seen, times_seen, user_count, first_release,
                                last_release, last_event_id)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15,
                     (SELECT id FROM users WHERE lower(email) = lower($16)),
                     $17, $18, $19, $20, $21, $22, $23)
             RETURNING id",
        )
        .bind(project_id)
        .bind(i.short_id)
        .bind(&i.title)
        .bind(&i.culprit)
        .bind(&i.event_type)
        .bind(&i.metadata)
        .bind(&i.level)
        .bind(&i.platform)
        .bind(&i.status)
        .bind(&i.substatus)
        .bind(i.resolved_at)
        .bind(&i.resolution_type)
        .bind(&i.resolved_in_release)
        .bind(i.ignored_until)
        .bind(i.ignored_until_count)
        .bind(&i.assignee)
        .bind(i.first_seen)
        .bind(i.last_seen)
        .bind(i.times_seen)
        .bind(i.user_count)
        .bind(&i.first_release)
        .bind(&i.last_release)
        .bind(i.last_event_id)
        .fetch_one(&mut *self.tx)
        .await
        .map_err(|e| {
            if super::is_unique_violation(&e) {
                conflict(format!("issue {} appears twice", i.short_id))
            } else {
                e.into()
            }
        })?;
        sqlx::query(
            "UPDATE project_counter SET next_short_id = GREATEST(next_short_id, $2 + 1)
              WHERE project_id = $1",
        )
        .bind(project_id)
        .bind(i.short_id)
        .execute(&mut *self.tx)
        .await?;
        sqlx::query(
            "INSERT INTO issue_hash (project_id, hash, issue_id)
             SELECT $1, h, $2 FROM UNNEST($3::text[]) AS h ON CONFLICT DO NOTHING",
        )
        .bind(project_id)
        .bind(id)
        .bind(&i.hashes)
        .execute(&mut *self.tx)
        .await?;
        if !i.tags.is_empty() {
            let column = |f: fn(&TagRecord) -> String| i.tags.iter().map(f).collect::<Vec<_>>();
            let seen: Vec<i64> = i.tags.iter().map(|t| t.times_seen).collect();
            let first: Vec<DateTime<Utc>> = i.tags.iter().map(|t| t.first_seen).collect();
            let last: Vec<DateTime<Utc>> = i.tags.iter().map(|t| t.last_seen).collect();
            sqlx::query(
                "INSERT INTO issue_tag (issue_id, key, value, times_seen, first_seen, last_seen)
                 SELECT $1, k, v, n, f, l
                   FROM UNNEST($2::text[], $3::text[], $4::bigint[], $5::timestamptz[], $6::timestamptz[])
                        AS t(k, v, n, f, l)
                 ON CONFLICT DO NOTHING",
            )
            .bind(id)
            .bind(column(|t| t.key.clone()))
            .bind(column(|t| t.value.clone()))
            .bind(seen)
            .bind(first)
            .bind(last)
            .execute(&mut *self.tx)
            .await?;
        }
        if !i.hourly.is_empty() {
            let hours: Vec<DateTime<Utc>> = i.hourly.iter().map(|(h, _)| *h).collect();
            let counts: Vec<i64> = i.hourly.iter().map(|(_, n)| *n).collect();
            sqlx::query(
                "INSERT INTO issue_hourly (issue_id, hour, count)
                 SELECT $1, h, n FROM UNNEST($2::timestamptz[], $3::bigint[]) AS t(h, n)
                 ON CONFLICT DO NOTHING",
            )
            .bind(id)
            .bind(hours)
            .bind(counts)
            .execute(&mut *self.tx)
            .await?;
        }
        self.issues.insert((i.project, i.short_id), id);
        Ok(())
    }

    // Writes the payload column directly, compressed as `store::write`
    // stores it (the one other writer).
    pub async fn event(&mut self, e: &EventRecord) -> Result<()> {
        let project_id = self.project_id(e.project)?;
        let issue_id = match e.issue {
            None => None,
            Some(short_id) => Some(
                self.issues
                    .get(&(e.project, short_id))
                    .copied()
                    .ok_or_else(|| {
                        conflict(format!(
                            "event {} refers to issue {short_id}, which is not in the file before it",
                            e.event_id.simple()
                        ))
                    })?,
            ),
        };
        sqlx::query(
            "INSERT INTO event (event_id, project_id, issue_id, event_type, \"timestamp\", received_at,
                                level, platform, release, environment, transaction, message, title,
                                user_key, tags, payload, grouping)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17)",
        )
        .bind(e.event_id)
        .bind(project_id)
        .bind(issue_id)
        .bind(&e.event_type)
        .bind(e.timestamp)
        .bind(e.received_at)
        .bind(&e.level)
        .bind(&e.platform)
        .bind(&e.release)
        .bind(&e.environment)
        .bind(&e.transaction)
        .bind(&e.message)
        .bind(&e.title)
        .bind(&e.user_key)
        .bind(&e.tags)
        .bind(super::payload::encode(&e.data))
        .bind(&e.grouping)
        .execute(&mut *self.tx)
        .await
        .map_err(|err| {
            if super::is_unique_violation(&err) {
                conflict(format!("event {} appears twice", e.event_id.simple()))
            } else {
                err.into()
            }
        })?;
        if let Some(release) = &e.release {
            sqlx::query(
                "INSERT INTO release (project_id, version, created_at) VALUES ($1, $2, $3)
                 ON CONFLICT (project_id, version)
                 DO UPDATE SET created_at = LEAST(release.created_at, EXCLUDED.created_at)",
            )
            .bind(project_id)
            .bind(release)
            .bind(e.received_at)
            .execute(&mut *self.tx)
            .await?;
        }
        Ok(())
    }

    pub async fn commit(self) -> Result<Vec<ImportedProject>> {
        self.tx.commit().await?;
        Ok(self.imported)
    }
}
