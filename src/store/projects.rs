use super::{Result, Store, StoreError, is_unique_violation};
use chrono::{DateTime, Utc};

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct ProjectRow {
    pub id: i64,
    pub organization_slug: String,
    pub slug: String,
    pub name: String,
    pub platform: Option<String>,
    pub grouping_config: String,
    pub fingerprint_rules: String,
    pub stack_rules: String,
    pub scrub_data: bool,
    pub scrub_ip: bool,
    pub scrub_defaults: bool,
    pub scrub_sensitive_fields: Vec<String>,
    pub scrub_safe_fields: Vec<String>,
    pub created_at: DateTime<Utc>,
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct ProjectKeyRow {
    pub id: i64,
    pub project_id: i64,
    pub public_key: String,
    pub secret_key: Option<String>,
    pub label: String,
    pub is_active: bool,
    pub rate_limit_per_minute: Option<i32>,
    pub created_at: DateTime<Utc>,
    /// Set on a key replaced by rotation: it works until then (None: until
    /// revoked).
    pub expires_at: Option<DateTime<Utc>>,
    pub rotated_at: Option<DateTime<Utc>>,
}

impl ProjectKeyRow {
    /// Active and not past its rotation grace period.
    pub fn is_usable(&self) -> bool {
        self.is_active && self.expires_at.is_none_or(|t| t > Utc::now())
    }
}

/// What ingest needs to know about a DSN key, cached per public key.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct KeyInfo {
    pub key_id: i64,
    pub project_id: i64,
    pub is_active: bool,
    /// A rotated key's end of grace: checked at every use, so a cached key
    /// stops on time.
    pub expires_at: Option<DateTime<Utc>>,
    pub rate_limit_per_minute: Option<i32>,
    pub platform: Option<String>,
    pub grouping_config: String,
    pub fingerprint_rules: String,
    pub stack_rules: String,
    pub scrub_data: bool,
    pub scrub_ip: bool,
    pub scrub_defaults: bool,
    pub scrub_sensitive_fields: Vec<String>,
    pub scrub_safe_fields: Vec<String>,
}

/// A project's data scrubber settings, as the settings form edits them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScrubSettings {
    pub enabled: bool,
    pub defaults: bool,
    pub scrub_ip: bool,
    pub sensitive_fields: Vec<String>,
    pub safe_fields: Vec<String>,
}

impl KeyInfo {
    pub fn usable(&self, now: DateTime<Utc>) -> bool {
        self.is_active && self.expires_at.is_none_or(|t| t > now)
    }
}

const PROJECT_COLUMNS: &str = "p.id, o.slug AS organization_slug, p.slug, p.name, p.platform,
    p.grouping_config, p.fingerprint_rules, p.stack_rules, p.scrub_data, p.scrub_ip, p.scrub_defaults,
    p.scrub_sensitive_fields, p.scrub_safe_fields, p.created_at";

/// Lowercase ASCII slug: letters and digits, runs of anything else become
/// one dash.
pub fn slugify(name: &str) -> String {
    let mut slug = String::new();
    for c in name.chars() {
        if c.is_ascii_alphanumeric() {
            slug.push(c.to_ascii_lowercase());
        } else if !slug.is_empty() && !slug.ends_with('-') {
            slug.push('-');
        }
    }
    let slug = slug.trim_end_matches('-');
    if slug.is_empty() {
        "project".into()
    } else {
        slug.chars().take(50).collect()
    }
}

fn random_hex_key() -> String {
    uuid::Uuid::new_v4().simple().to_string()
}

impl Store {
    /// Creates a project in the default organization with one active DSN key.
    pub async fn create_project(
        &self,
        name: &str,
        platform: Option<&str>,
    ) -> Result<(ProjectRow, ProjectKeyRow)> {
        let name = name.trim();
        if name.is_empty() {
            return Err(StoreError::Conflict(
                "project name must not be empty".into(),
            ));
        }
        let base = slugify(name);
        let mut tx = self.pool.begin().await?;
        let mut project_id = None;
        for attempt in 0..100 {
            let slug = if attempt == 0 {
                base.clone()
            } else {
                format!("{base}-{}", attempt + 1)
            };
            let inserted: Option<i64> = sqlx::query_scalar(
                "INSERT INTO project (organization_id, slug, name, platform, grouping_config)
                 SELECT id, $1, $2, $3, $4 FROM organization WHERE slug = 'default'
                 ON CONFLICT (organization_id, slug) DO NOTHING
                 RETURNING id",
            )
            .bind(&slug)
            .bind(name)
            .bind(platform)
            // New projects group with the newest config; existing ones keep theirs.
            .bind(crate::grouping::DEFAULT_CONFIG_ID)
            .fetch_optional(&mut *tx)
            .await?;
            if inserted.is_some() {
                project_id = inserted;
                break;
            }
        }
        let project_id =
            project_id.ok_or_else(|| StoreError::Conflict(format!("no free slug for {name}")))?;
        sqlx::query("INSERT INTO project_counter (project_id) VALUES ($1)")
            .bind(project_id)
            .execute(&mut *tx)
            .await?;
        let key: ProjectKeyRow = sqlx::query_as(
            "INSERT INTO project_key (project_id, public_key) VALUES ($1, $2) RETURNING *",
        )
        .bind(project_id)
        .bind(random_hex_key())
        .fetch_one(&mut *tx)
        .await?;
        tx.commit().await?;
        let project = self
            .project(project_id)
            .await?
            .ok_or(StoreError::NotFound)?;
        Ok((project, key))
    }

    pub async fn project(&self, id: i64) -> Result<Option<ProjectRow>> {
        let sql = format!(
            "SELECT {PROJECT_COLUMNS} FROM project p JOIN organization o ON o.id = p.organization_id
              WHERE p.id = $1"
        );
        Ok(sqlx::query_as(sqlx::AssertSqlSafe(sql))
            .bind(id)
            .fetch_optional(&self.pool)
            .await?)
    }

    pub async fn list_projects(&self) -> Result<Vec<ProjectRow>> {
        let sql = format!(
            "SELECT {PROJECT_COLUMNS} FROM project p JOIN organization o ON o.id = p.organization_id
              ORDER BY o.slug, p.slug"
        );
        Ok(sqlx::query_as(sqlx::AssertSqlSafe(sql))
            .fetch_all(&self.pool)
            .await?)
    }

    pub async fn project_keys(&self, project_id: i64) -> Result<Vec<ProjectKeyRow>> {
        Ok(
            sqlx::query_as("SELECT * FROM project_key WHERE project_id = $1 ORDER BY id")
                .bind(project_id)
                .fetch_all(&self.pool)
                .await?,
        )
    }

    /// The first active key of each project, for listing DSNs; a key
    /// replaced by rotation comes after its replacement.
    pub async fn primary_keys(&self) -> Result<Vec<ProjectKeyRow>> {
        Ok(sqlx::query_as(
            "SELECT DISTINCT ON (project_id) * FROM project_key
              ORDER BY project_id, (is_active AND rotated_at IS NULL) DESC, is_active DESC, id",
        )
        .fetch_all(&self.pool)
        .await?)
    }

    pub async fn create_key(&self, project_id: i64, label: &str) -> Result<ProjectKeyRow> {
        sqlx::query_as(
            "INSERT INTO project_key (project_id, public_key, label) VALUES ($1, $2, $3) RETURNING *",
        )
        .bind(project_id)
        .bind(random_hex_key())
        .bind(label)
        .fetch_one(&self.pool)
        .await
        .map_err(|e| if is_unique_violation(&e) { StoreError::Conflict("key collision".into()) } else { e.into() })
    }

    /// Returns the public key whose state changed, so callers can evict it
    /// from caches.
    pub async fn set_key_active(
        &self,
        project_id: i64,
        key_id: i64,
        active: bool,
    ) -> Result<String> {
        sqlx::query_scalar(
            // Enabling a key again also lifts a rotation's expiry.
            "UPDATE project_key SET is_active = $3,
                    expires_at = CASE WHEN $3 THEN NULL ELSE expires_at END
              WHERE project_id = $1 AND id = $2 RETURNING public_key",
        )
        .bind(project_id)
        .bind(key_id)
        .bind(active)
        .fetch_optional(&self.pool)
        .await?
        .ok_or(StoreError::NotFound)
    }

    /// Rotates a key as Sentry does: a new key with the same label and
    /// rate limit, while the old one keeps working for `grace_secs` (None:
    /// until revoked). Returns the new key and the old public key (for
    /// cache eviction).
    pub async fn rotate_key(
        &self,
        project_id: i64,
        key_id: i64,
        grace_secs: Option<i64>,
    ) -> Result<(ProjectKeyRow, String)> {
        let mut tx = self.pool.begin().await?;
        let old: ProjectKeyRow = sqlx::query_as(
            "SELECT * FROM project_key WHERE project_id = $1 AND id = $2 FOR UPDATE",
        )
        .bind(project_id)
        .bind(key_id)
        .fetch_optional(&mut *tx)
        .await?
        .ok_or(StoreError::NotFound)?;
        if !old.is_usable() {
            return Err(StoreError::Conflict(
                "only an active key can be rotated".into(),
            ));
        }
        if old.rotated_at.is_some() {
            return Err(StoreError::Conflict(
                "this key was already replaced; rotate its replacement".into(),
            ));
        }
        sqlx::query(
            "UPDATE project_key SET rotated_at = now(),
                    expires_at = CASE WHEN $2::float8 IS NULL THEN NULL ELSE now() + make_interval(secs => $2) END
              WHERE id = $1",
        )
        .bind(key_id)
        .bind(grace_secs.map(|s| s as f64))
        .execute(&mut *tx)
        .await?;
        let new: ProjectKeyRow = sqlx::query_as(
            "INSERT INTO project_key (project_id, public_key, label, rate_limit_per_minute)
             VALUES ($1, $2, $3, $4) RETURNING *",
        )
        .bind(project_id)
        .bind(random_hex_key())
        .bind(&old.label)
        .bind(old.rate_limit_per_minute)
        .fetch_one(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok((new, old.public_key))
    }

    pub async fn update_project(
        &self,
        project_id: i64,
        name: &str,
        platform: Option<&str>,
    ) -> Result<()> {
        let done = sqlx::query("UPDATE project SET name = $2, platform = $3 WHERE id = $1")
            .bind(project_id)
            .bind(name)
            .bind(platform)
            .execute(&self.pool)
            .await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound);
        }
        Ok(())
    }

    pub async fn set_fingerprint_rules(&self, project_id: i64, rules: &str) -> Result<()> {
        sqlx::query("UPDATE project SET fingerprint_rules = $2 WHERE id = $1")
            .bind(project_id)
            .bind(rules)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    pub async fn set_scrub_settings(&self, project_id: i64, s: &ScrubSettings) -> Result<()> {
        let done = sqlx::query(
            "UPDATE project SET scrub_data = $2, scrub_defaults = $3, scrub_ip = $4,
                    scrub_sensitive_fields = $5, scrub_safe_fields = $6
              WHERE id = $1",
        )
        .bind(project_id)
        .bind(s.enabled)
        .bind(s.defaults)
        .bind(s.scrub_ip)
        .bind(&s.sensitive_fields)
        .bind(&s.safe_fields)
        .execute(&self.pool)
        .await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound);
        }
        Ok(())
    }

    /// Stack-trace rules text, already validated by `grouping::StackRules::parse`.
    pub async fn set_stack_rules(&self, project_id: i64, rules: &str) -> Result<()> {
        sqlx::query("UPDATE project SET stack_rules = $2 WHERE id = $1")
            .bind(project_id)
            .bind(rules)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Returns the key's public part so callers can evict it from caches.
    pub async fn set_key_rate_limit(
        &self,
        project_id: i64,
        key_id: i64,
        per_minute: Option<i32>,
    ) -> Result<String> {
        sqlx::query_scalar(
            "UPDATE project_key SET rate_limit_per_minute = $3 WHERE project_id = $1 AND id = $2 RETURNING public_key",
        )
        .bind(project_id)
        .bind(key_id)
        .bind(per_minute)
        .fetch_optional(&self.pool)
        .await?
        .ok_or(StoreError::NotFound)
    }

    /// Newest release versions of a project, for filter suggestions.
    pub async fn recent_releases(&self, project_id: i64, limit: i64) -> Result<Vec<String>> {
        Ok(sqlx::query_scalar(
            "SELECT version FROM release WHERE project_id = $1 ORDER BY created_at DESC, id DESC LIMIT $2",
        )
        .bind(project_id)
        .bind(limit)
        .fetch_all(&self.pool)
        .await?)
    }

    pub async fn key_info(&self, public_key: &str) -> Result<Option<KeyInfo>> {
        Ok(sqlx::query_as(
            "SELECT k.id AS key_id, k.project_id,
                    k.is_active AND (k.expires_at IS NULL OR k.expires_at > now()) AS is_active,
                    k.expires_at, k.rate_limit_per_minute,
                    p.platform, p.grouping_config, p.fingerprint_rules, p.stack_rules,
                    p.scrub_data, p.scrub_ip,
                    p.scrub_defaults, p.scrub_sensitive_fields, p.scrub_safe_fields
               FROM project_key k JOIN project p ON p.id = k.project_id
              WHERE k.public_key = $1",
        )
        .bind(public_key)
        .fetch_optional(&self.pool)
        .await?)
    }
}

#[cfg(test)]
mod tests {
    use super::slugify;

    #[test]
    fn slugs() {
        assert_eq!(slugify("My Shop API"), "my-shop-api");
        assert_eq!(slugify("  --weird__Name!! "), "weird-name");
        assert_eq!(slugify("ünïcode"), "n-code");
        assert_eq!(slugify("***"), "project");
    }
}
