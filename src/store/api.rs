//! Queries only the Web API needs: API tokens, organizations, releases and
//! deploys, and the issue state Sentry's serializers report.

use super::{Result, Store, StoreError, is_unique_violation};
use chrono::{DateTime, Utc};

/// A token as its owner sees it in the account page; the secret itself is
/// never stored, only its SHA-256 and its last characters.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct ApiTokenRow {
    pub id: i64,
    pub name: String,
    pub scopes: Vec<String>,
    pub token_last_chars: String,
    pub created_at: DateTime<Utc>,
    pub last_used_at: Option<DateTime<Utc>>,
}

/// Who a presented token belongs to and what it may do.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct TokenOwner {
    pub token_id: i64,
    pub user_id: i64,
    pub email: String,
    pub name: String,
    pub is_admin: bool,
    pub scopes: Vec<String>,
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct OrganizationRow {
    pub id: i64,
    pub slug: String,
    pub name: String,
    pub created_at: DateTime<Utc>,
}

/// One release version of an organization, folded over the projects it is
/// attached to (Snag stores one row per project).
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct ReleaseRow {
    pub id: i64,
    pub version: String,
    pub date_created: DateTime<Utc>,
    pub date_started: Option<DateTime<Utc>>,
    pub date_released: Option<DateTime<Utc>>,
    pub url: Option<String>,
    pub ref_: Option<String>,
    pub status: String,
    pub project_ids: Vec<i64>,
}

/// Issue counts of one release in one project, from the issue table.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct ReleaseIssueStats {
    pub version: String,
    pub project_id: i64,
    pub new_groups: i64,
    pub first_event: Option<DateTime<Utc>>,
    pub last_event: Option<DateTime<Utc>>,
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct DeployRow {
    pub id: i64,
    pub version: String,
    pub environment: String,
    pub name: Option<String>,
    pub url: Option<String>,
    pub date_started: Option<DateTime<Utc>>,
    pub date_finished: DateTime<Utc>,
}

/// What a release creation or update sets; `None` leaves a field alone.
#[derive(Debug, Clone, Default)]
pub struct ReleaseChanges {
    pub date_started: Option<DateTime<Utc>>,
    pub date_released: Option<DateTime<Utc>>,
    pub url: Option<String>,
    pub ref_: Option<String>,
    pub status: Option<String>,
}

pub struct NewDeploy<'a> {
    pub environment: &'a str,
    pub name: Option<&'a str>,
    pub url: Option<&'a str>,
    pub date_started: Option<DateTime<Utc>>,
    pub date_finished: Option<DateTime<Utc>>,
}

/// The resolution and snooze details of an issue, for `statusDetails`.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct IssueState {
    pub id: i64,
    pub resolution_type: Option<String>,
    pub resolved_in_release: Option<String>,
    pub ignored_until: Option<DateTime<Utc>>,
    pub ignored_until_count: Option<i64>,
    /// The "more events" count of the latest ignore.
    pub ignore_count: Option<i64>,
    pub ignored_until_user_count: Option<i64>,
    /// The "more users" count of the latest ignore.
    pub ignore_user_count: Option<i64>,
    pub num_comments: i64,
}

/// A grouping hash of an issue and its newest event among the recent ones.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct HashRow {
    pub hash: String,
    pub latest_event_id: Option<uuid::Uuid>,
}

/// How many recent events of an issue are searched for each hash's latest
/// event: enough for live hashes, bounded for issues with millions.
const HASH_SCAN_EVENTS: i64 = 1000;

const RELEASE_FOLD: &str = "SELECT min(r.id) AS id, r.version, min(r.created_at) AS date_created,
        min(r.date_started) AS date_started, max(r.date_released) AS date_released,
        max(r.url) AS url, max(r.ref) AS ref_,
        CASE WHEN bool_or(r.status = 'open') THEN 'open' ELSE 'archived' END AS status,
        array_agg(r.project_id ORDER BY r.project_id) AS project_ids
   FROM release r JOIN project p ON p.id = r.project_id
  WHERE p.organization_id = $1 AND r.project_id = ANY($2)";

impl Store {
    pub async fn create_api_token(
        &self,
        user_id: i64,
        name: &str,
        scopes: &[String],
        token_hash: &str,
        last_chars: &str,
    ) -> Result<ApiTokenRow> {
        Ok(sqlx::query_as(
            "INSERT INTO api_token (user_id, name, scopes, token_hash, token_last_chars)
             VALUES ($1, $2, $3, $4, $5)
             RETURNING id, name, scopes, token_last_chars, created_at, last_used_at",
        )
        .bind(user_id)
        .bind(name)
        .bind(scopes)
        .bind(token_hash)
        .bind(last_chars)
        .fetch_one(&self.pool)
        .await?)
    }

    pub async fn api_tokens(&self, user_id: i64) -> Result<Vec<ApiTokenRow>> {
        Ok(sqlx::query_as(
            "SELECT id, name, scopes, token_last_chars, created_at, last_used_at
               FROM api_token WHERE user_id = $1 ORDER BY created_at DESC, id DESC",
        )
        .bind(user_id)
        .fetch_all(&self.pool)
        .await?)
    }

    /// Deletes one of the user's tokens; another user's token is `NotFound`.
    pub async fn revoke_api_token(&self, user_id: i64, token_id: i64) -> Result<()> {
        let done = sqlx::query("DELETE FROM api_token WHERE id = $1 AND user_id = $2")
            .bind(token_id)
            .bind(user_id)
            .execute(&self.pool)
            .await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound);
        }
        Ok(())
    }

    /// The active user a token hash belongs to. Marks the token used, at
    /// most once a minute so busy scripts do not write on every request.
    pub async fn token_owner(&self, token_hash: &str) -> Result<Option<TokenOwner>> {
        let owner: Option<TokenOwner> = sqlx::query_as(
            "SELECT t.id AS token_id, u.id AS user_id, u.email, u.name, u.is_admin, t.scopes
               FROM api_token t JOIN users u ON u.id = t.user_id
              WHERE t.token_hash = $1 AND u.is_active",
        )
        .bind(token_hash)
        .fetch_optional(&self.pool)
        .await?;
        if let Some(o) = &owner {
            sqlx::query(
                "UPDATE api_token SET last_used_at = now()
                  WHERE id = $1 AND (last_used_at IS NULL OR last_used_at < now() - interval '1 minute')",
            )
            .bind(o.token_id)
            .execute(&self.pool)
            .await?;
        }
        Ok(owner)
    }

    pub async fn organization_by_slug(&self, slug: &str) -> Result<Option<OrganizationRow>> {
        Ok(
            sqlx::query_as("SELECT id, slug, name, created_at FROM organization WHERE slug = $1")
                .bind(slug)
                .fetch_optional(&self.pool)
                .await?,
        )
    }

    /// Organizations the user is a member of (all of them for superusers).
    pub async fn organizations_of(
        &self,
        user_id: i64,
        is_admin: bool,
    ) -> Result<Vec<OrganizationRow>> {
        Ok(sqlx::query_as(
            "SELECT o.id, o.slug, o.name, o.created_at FROM organization o
              WHERE $2 OR EXISTS (SELECT 1 FROM organization_member m
                                   WHERE m.organization_id = o.id AND m.user_id = $1)
              ORDER BY o.slug",
        )
        .bind(user_id)
        .bind(is_admin)
        .fetch_all(&self.pool)
        .await?)
    }

    pub async fn organization_role(&self, user_id: i64, org_id: i64) -> Result<Option<String>> {
        Ok(sqlx::query_scalar(
            "SELECT role FROM organization_member WHERE organization_id = $1 AND user_id = $2",
        )
        .bind(org_id)
        .bind(user_id)
        .fetch_optional(&self.pool)
        .await?)
    }

    pub async fn project_id_by_slug(&self, org_id: i64, slug: &str) -> Result<Option<i64>> {
        Ok(
            sqlx::query_scalar("SELECT id FROM project WHERE organization_id = $1 AND slug = $2")
                .bind(org_id)
                .bind(slug)
                .fetch_optional(&self.pool)
                .await?,
        )
    }

    /// Projects of an organization, by id, in slug order.
    pub async fn organization_project_ids(&self, org_id: i64) -> Result<Vec<i64>> {
        Ok(sqlx::query_scalar(
            "SELECT id FROM project WHERE organization_id = $1 ORDER BY slug, id",
        )
        .bind(org_id)
        .fetch_all(&self.pool)
        .await?)
    }

    pub async fn set_project_slug(&self, project_id: i64, slug: &str) -> Result<()> {
        let done = sqlx::query("UPDATE project SET slug = $2 WHERE id = $1")
            .bind(project_id)
            .bind(slug)
            .execute(&self.pool)
            .await
            .map_err(|e| {
                if is_unique_violation(&e) {
                    StoreError::Conflict(format!("a project with slug {slug} already exists"))
                } else {
                    e.into()
                }
            })?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound);
        }
        Ok(())
    }

    /// Release versions of an organization attached to any of the projects,
    /// newest first, optionally filtered by a substring of the version.
    pub async fn releases(
        &self,
        org_id: i64,
        project_ids: &[i64],
        query: Option<&str>,
        limit: i64,
        offset: i64,
    ) -> Result<Vec<ReleaseRow>> {
        let sql = format!(
            "{RELEASE_FOLD} AND ($3::text IS NULL OR r.version ILIKE $3)
              GROUP BY r.version ORDER BY min(r.created_at) DESC, min(r.id) DESC
              LIMIT $4 OFFSET $5"
        );
        Ok(sqlx::query_as(sqlx::AssertSqlSafe(sql))
            .bind(org_id)
            .bind(project_ids)
            .bind(query.map(super::issues::like_pattern))
            .bind(limit.clamp(1, 1000))
            .bind(offset.max(0))
            .fetch_all(&self.pool)
            .await?)
    }

    pub async fn release(
        &self,
        org_id: i64,
        project_ids: &[i64],
        version: &str,
    ) -> Result<Option<ReleaseRow>> {
        let sql = format!("{RELEASE_FOLD} AND r.version = $3 GROUP BY r.version");
        Ok(sqlx::query_as(sqlx::AssertSqlSafe(sql))
            .bind(org_id)
            .bind(project_ids)
            .bind(version)
            .fetch_optional(&self.pool)
            .await?)
    }

    /// Attaches a release to projects (creating it where missing) and fills
    /// in the given fields. Returns whether any project row was new.
    pub async fn upsert_release(
        &self,
        project_ids: &[i64],
        version: &str,
        changes: &ReleaseChanges,
    ) -> Result<bool> {
        let inserted: Vec<bool> = sqlx::query_scalar(
            "INSERT INTO release (project_id, version, date_started, date_released, url, ref)
             SELECT unnest($1::bigint[]), $2, $3, $4, $5, $6
             ON CONFLICT (project_id, version) DO UPDATE SET
                date_started = COALESCE(EXCLUDED.date_started, release.date_started),
                date_released = COALESCE(EXCLUDED.date_released, release.date_released),
                url = COALESCE(EXCLUDED.url, release.url),
                ref = COALESCE(EXCLUDED.ref, release.ref)
             RETURNING (xmax = 0)",
        )
        .bind(project_ids)
        .bind(version)
        .bind(changes.date_started)
        .bind(changes.date_released)
        .bind(changes.url.as_deref())
        .bind(changes.ref_.as_deref())
        .fetch_all(&self.pool)
        .await?;
        Ok(inserted.into_iter().any(|new| new))
    }

    /// Updates a release on every given project it is attached to.
    pub async fn update_release(
        &self,
        project_ids: &[i64],
        version: &str,
        changes: &ReleaseChanges,
    ) -> Result<()> {
        let done = sqlx::query(
            "UPDATE release SET
                date_started = COALESCE($3, date_started),
                date_released = COALESCE($4, date_released),
                url = COALESCE($5, url),
                ref = COALESCE($6, ref),
                status = COALESCE($7, status)
              WHERE project_id = ANY($1) AND version = $2",
        )
        .bind(project_ids)
        .bind(version)
        .bind(changes.date_started)
        .bind(changes.date_released)
        .bind(changes.url.as_deref())
        .bind(changes.ref_.as_deref())
        .bind(changes.status.as_deref())
        .execute(&self.pool)
        .await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound);
        }
        Ok(())
    }

    /// Detaches a release from the projects; its deploys go with the last
    /// project of the organization.
    pub async fn delete_release(
        &self,
        org_id: i64,
        project_ids: &[i64],
        version: &str,
    ) -> Result<()> {
        let mut tx = self.pool.begin().await?;
        let done = sqlx::query("DELETE FROM release WHERE project_id = ANY($1) AND version = $2")
            .bind(project_ids)
            .bind(version)
            .execute(&mut *tx)
            .await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound);
        }
        sqlx::query(
            "DELETE FROM release_deploy d WHERE d.organization_id = $1 AND d.version = $2
               AND NOT EXISTS (SELECT 1 FROM release r JOIN project p ON p.id = r.project_id
                                WHERE p.organization_id = $1 AND r.version = $2)",
        )
        .bind(org_id)
        .bind(version)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// New issues, first and last event per release version and project.
    pub async fn release_issue_stats(
        &self,
        project_ids: &[i64],
        versions: &[String],
    ) -> Result<Vec<ReleaseIssueStats>> {
        Ok(sqlx::query_as(
            "WITH firsts AS (
                SELECT first_release AS version, project_id, count(*) AS new_groups,
                       min(first_seen) AS first_event
                  FROM issue WHERE project_id = ANY($1) AND first_release = ANY($2)
                 GROUP BY 1, 2),
             lasts AS (
                SELECT last_release AS version, project_id, max(last_seen) AS last_event
                  FROM issue WHERE project_id = ANY($1) AND last_release = ANY($2)
                 GROUP BY 1, 2)
             SELECT COALESCE(f.version, l.version) AS version,
                    COALESCE(f.project_id, l.project_id) AS project_id,
                    COALESCE(f.new_groups, 0) AS new_groups, f.first_event, l.last_event
               FROM firsts f FULL JOIN lasts l ON l.version = f.version AND l.project_id = f.project_id",
        )
        .bind(project_ids)
        .bind(versions)
        .fetch_all(&self.pool)
        .await?)
    }

    pub async fn create_deploy(
        &self,
        org_id: i64,
        version: &str,
        deploy: &NewDeploy<'_>,
    ) -> Result<DeployRow> {
        Ok(sqlx::query_as(
            "INSERT INTO release_deploy (organization_id, version, environment, name, url, date_started, date_finished)
             VALUES ($1, $2, $3, $4, $5, $6, COALESCE($7, now()))
             RETURNING id, version, environment, name, url, date_started, date_finished",
        )
        .bind(org_id)
        .bind(version)
        .bind(deploy.environment)
        .bind(deploy.name)
        .bind(deploy.url)
        .bind(deploy.date_started)
        .bind(deploy.date_finished)
        .fetch_one(&self.pool)
        .await?)
    }

    /// Deploys of the given versions, newest first.
    pub async fn deploys(&self, org_id: i64, versions: &[String]) -> Result<Vec<DeployRow>> {
        Ok(sqlx::query_as(
            "SELECT id, version, environment, name, url, date_started, date_finished
               FROM release_deploy WHERE organization_id = $1 AND version = ANY($2)
              ORDER BY date_finished DESC, id DESC LIMIT 10000",
        )
        .bind(org_id)
        .bind(versions)
        .fetch_all(&self.pool)
        .await?)
    }

    pub async fn issue_states(&self, issue_ids: &[i64]) -> Result<Vec<IssueState>> {
        Ok(sqlx::query_as(
            "SELECT i.id, i.resolution_type, i.resolved_in_release, i.ignored_until, i.ignored_until_count,
                    (SELECT (a.data->>'more_events')::bigint FROM activity a
                      WHERE a.issue_id = i.id AND a.kind = 'set_ignored'
                      ORDER BY a.created_at DESC, a.id DESC LIMIT 1) AS ignore_count,
                    i.ignored_until_user_count,
                    (SELECT (a.data->>'more_users')::bigint FROM activity a
                      WHERE a.issue_id = i.id AND a.kind = 'set_ignored'
                      ORDER BY a.created_at DESC, a.id DESC LIMIT 1) AS ignore_user_count,
                    (SELECT count(*) FROM activity a WHERE a.issue_id = i.id AND a.kind = 'note') AS num_comments
               FROM issue i WHERE i.id = ANY($1)",
        )
        .bind(issue_ids)
        .fetch_all(&self.pool)
        .await?)
    }

    /// Every grouping hash of an issue with its newest event (among the
    /// issue's latest events; `None` for hashes no recent event produced).
    pub async fn issue_hashes(&self, issue_id: i64) -> Result<Vec<HashRow>> {
        Ok(sqlx::query_as(
            "WITH recent AS (
                SELECT event_id, hashes, grouping, received_at, id FROM event WHERE issue_id = $1
                 ORDER BY received_at DESC, id DESC LIMIT $2),
             latest AS (
                SELECT DISTINCT ON (h.hash) h.hash, r.event_id
                  FROM recent r,
                       unnest(COALESCE(r.hashes, ARRAY(SELECT jsonb_array_elements_text(
                           COALESCE(r.grouping->'hashes', '[]'))))) AS h(hash)
                 ORDER BY h.hash, r.received_at DESC, r.id DESC)
             SELECT ih.hash, l.event_id AS latest_event_id
               FROM issue_hash ih LEFT JOIN latest l ON l.hash = ih.hash
              WHERE ih.issue_id = $1 ORDER BY ih.hash",
        )
        .bind(issue_id)
        .bind(HASH_SCAN_EVENTS)
        .fetch_all(&self.pool)
        .await?)
    }

    /// Ids of a project's events, newest first.
    pub async fn project_event_ids(
        &self,
        project_id: i64,
        limit: i64,
        offset: i64,
    ) -> Result<Vec<uuid::Uuid>> {
        Ok(sqlx::query_scalar(
            "SELECT event_id FROM event WHERE project_id = $1
              ORDER BY received_at DESC, id DESC LIMIT $2 OFFSET $3",
        )
        .bind(project_id)
        .bind(limit.clamp(1, 1000))
        .bind(offset.max(0))
        .fetch_all(&self.pool)
        .await?)
    }

    /// The issue with a short id (`<slug>-<n>`) among the given projects.
    pub async fn issue_id_by_short_id(
        &self,
        project_ids: &[i64],
        project_slug: &str,
        short_id: i64,
    ) -> Result<Option<i64>> {
        Ok(sqlx::query_scalar(
            "SELECT i.id FROM issue i JOIN project p ON p.id = i.project_id
              WHERE i.project_id = ANY($1) AND lower(p.slug) = lower($2) AND i.short_id = $3",
        )
        .bind(project_ids)
        .bind(project_slug)
        .bind(short_id)
        .fetch_optional(&self.pool)
        .await?)
    }
}
