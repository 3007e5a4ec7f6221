//! Teams, organization roles and who sees which project, plus the failed
//! login record used for throttling.

use super::{Result, Store, StoreError, is_unique_violation};

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct TeamRow {
    pub id: i64,
    pub slug: String,
    pub name: String,
    /// Member emails, sorted, and their ids in the same order.
    pub members: Vec<String>,
    pub member_ids: Vec<i64>,
    /// Owned project names, sorted, and their ids in the same order.
    pub projects: Vec<String>,
    pub project_ids: Vec<i64>,
}

impl TeamRow {
    pub fn member_list(&self) -> Vec<(i64, &str)> {
        self.member_ids
            .iter()
            .copied()
            .zip(self.members.iter().map(String::as_str))
            .collect()
    }

    pub fn project_list(&self) -> Vec<(i64, &str)> {
        self.project_ids
            .iter()
            .copied()
            .zip(self.projects.iter().map(String::as_str))
            .collect()
    }
}

/// Organization roles, most powerful first.
pub const ROLES: [&str; 3] = ["owner", "admin", "member"];

impl Store {
    /// Ids of the projects a (non-admin) user may see: those of a team they
    /// belong to, those no team owns, and all of them for organization
    /// owners and admins.
    pub async fn visible_project_ids(&self, user_id: i64) -> Result<Vec<i64>> {
        Ok(sqlx::query_scalar(
            "SELECT p.id FROM project p
               JOIN organization_member m ON m.organization_id = p.organization_id AND m.user_id = $1
              WHERE m.role IN ('owner', 'admin')
                 OR NOT EXISTS (SELECT 1 FROM project_team pt WHERE pt.project_id = p.id)
                 OR EXISTS (SELECT 1 FROM project_team pt
                              JOIN team_member tm ON tm.team_id = pt.team_id
                             WHERE pt.project_id = p.id AND tm.user_id = $1)
              ORDER BY p.id",
        )
        .bind(user_id)
        .fetch_all(&self.pool)
        .await?)
    }

    /// Whether the user is an owner or admin of an organization.
    pub async fn is_org_manager(&self, user_id: i64) -> Result<bool> {
        Ok(sqlx::query_scalar(
            "SELECT EXISTS (SELECT 1 FROM organization_member
                             WHERE user_id = $1 AND role IN ('owner', 'admin'))",
        )
        .bind(user_id)
        .fetch_one(&self.pool)
        .await?)
    }

    /// The user's role in the default organization.
    pub async fn org_role(&self, user_id: i64) -> Result<Option<String>> {
        Ok(sqlx::query_scalar(
            "SELECT m.role FROM organization_member m JOIN organization o ON o.id = m.organization_id
              WHERE o.slug = 'default' AND m.user_id = $1",
        )
        .bind(user_id)
        .fetch_optional(&self.pool)
        .await?)
    }

    pub async fn set_org_role(&self, user_id: i64, role: &str) -> Result<()> {
        if !ROLES.contains(&role) {
            return Err(StoreError::Conflict(format!("unknown role {role:?}")));
        }
        sqlx::query(
            "INSERT INTO organization_member (organization_id, user_id, role)
             SELECT id, $1, $2 FROM organization WHERE slug = 'default'
             ON CONFLICT (organization_id, user_id) DO UPDATE SET role = EXCLUDED.role",
        )
        .bind(user_id)
        .bind(role)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    pub async fn list_teams(&self) -> Result<Vec<TeamRow>> {
        Ok(sqlx::query_as(
            "SELECT t.id, t.slug, t.name,
                    ARRAY(SELECT u.email FROM team_member tm JOIN users u ON u.id = tm.user_id
                           WHERE tm.team_id = t.id ORDER BY u.email, u.id) AS members,
                    ARRAY(SELECT u.id FROM team_member tm JOIN users u ON u.id = tm.user_id
                           WHERE tm.team_id = t.id ORDER BY u.email, u.id) AS member_ids,
                    ARRAY(SELECT p.name FROM project_team pt JOIN project p ON p.id = pt.project_id
                           WHERE pt.team_id = t.id ORDER BY p.name, p.id) AS projects,
                    ARRAY(SELECT p.id FROM project_team pt JOIN project p ON p.id = pt.project_id
                           WHERE pt.team_id = t.id ORDER BY p.name, p.id) AS project_ids
               FROM team t ORDER BY t.slug",
        )
        .fetch_all(&self.pool)
        .await?)
    }

    pub async fn create_team(&self, name: &str) -> Result<i64> {
        let slug = super::projects::slugify(name);
        sqlx::query_scalar(
            "INSERT INTO team (organization_id, slug, name)
             SELECT id, $1, $2 FROM organization WHERE slug = 'default' RETURNING id",
        )
        .bind(&slug)
        .bind(name)
        .fetch_one(&self.pool)
        .await
        .map_err(|e| {
            if is_unique_violation(&e) {
                StoreError::Conflict(format!("a team {slug} already exists"))
            } else {
                e.into()
            }
        })
    }

    pub async fn delete_team(&self, team_id: i64) -> Result<()> {
        let done = sqlx::query("DELETE FROM team WHERE id = $1")
            .bind(team_id)
            .execute(&self.pool)
            .await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound);
        }
        Ok(())
    }

    /// Adds (`member = true`) or removes a user; unknown ids are `NotFound`.
    pub async fn set_team_member(&self, team_id: i64, user_id: i64, member: bool) -> Result<()> {
        let done = if member {
            sqlx::query(
                "INSERT INTO team_member (team_id, user_id)
                 SELECT t.id, u.id FROM team t, users u WHERE t.id = $1 AND u.id = $2
                 ON CONFLICT DO NOTHING",
            )
            .bind(team_id)
            .bind(user_id)
            .execute(&self.pool)
            .await?
        } else {
            sqlx::query("DELETE FROM team_member WHERE team_id = $1 AND user_id = $2")
                .bind(team_id)
                .bind(user_id)
                .execute(&self.pool)
                .await?
        };
        if member && done.rows_affected() == 0 {
            let exists: bool = sqlx::query_scalar(
                "SELECT EXISTS (SELECT 1 FROM team_member WHERE team_id = $1 AND user_id = $2)",
            )
            .bind(team_id)
            .bind(user_id)
            .fetch_one(&self.pool)
            .await?;
            if !exists {
                return Err(StoreError::NotFound);
            }
        }
        Ok(())
    }

    /// Gives a project to a team or takes it away.
    pub async fn set_project_team(&self, project_id: i64, team_id: i64, owns: bool) -> Result<()> {
        if owns {
            sqlx::query(
                "INSERT INTO project_team (project_id, team_id)
                 SELECT p.id, t.id FROM project p, team t WHERE p.id = $1 AND t.id = $2
                 ON CONFLICT DO NOTHING",
            )
            .bind(project_id)
            .bind(team_id)
            .execute(&self.pool)
            .await?;
        } else {
            sqlx::query("DELETE FROM project_team WHERE project_id = $1 AND team_id = $2")
                .bind(project_id)
                .bind(team_id)
                .execute(&self.pool)
                .await?;
        }
        Ok(())
    }

    /// Ids of the teams owning a project.
    pub async fn project_team_ids(&self, project_id: i64) -> Result<Vec<i64>> {
        Ok(sqlx::query_scalar(
            "SELECT team_id FROM project_team WHERE project_id = $1 ORDER BY team_id",
        )
        .bind(project_id)
        .fetch_all(&self.pool)
        .await?)
    }

    /// Records a failed login and returns how many failures the email had in
    /// the last `window_secs` seconds, this one included.
    pub async fn record_login_failure(&self, email: &str, window_secs: i64) -> Result<i64> {
        let mut tx = self.pool.begin().await?;
        sqlx::query("INSERT INTO login_failure (email) VALUES (lower($1))")
            .bind(email)
            .execute(&mut *tx)
            .await?;
        // Old rows are useless; trimming here avoids a cleanup job.
        sqlx::query("DELETE FROM login_failure WHERE created_at < now() - interval '1 day'")
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        self.recent_login_failures(email, window_secs).await
    }

    pub async fn recent_login_failures(&self, email: &str, window_secs: i64) -> Result<i64> {
        Ok(sqlx::query_scalar(
            "SELECT count(*) FROM login_failure
              WHERE lower(email) = lower($1) AND created_at > now() - make_interval(secs => $2::float8)",
        )
        .bind(email)
        .bind(window_secs as f64)
        .fetch_one(&self.pool)
        .await?)
    }

    pub async fn clear_login_failures(&self, email: &str) -> Result<()> {
        sqlx::query("DELETE FROM login_failure WHERE lower(email) = lower($1)")
            .bind(email)
            .execute(&self.pool)
            .await?;
        Ok(())
    }
}
