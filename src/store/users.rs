use super::{Result, Store, StoreError, is_unique_violation};
use chrono::{DateTime, Utc};

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct UserRow {
    pub id: i64,
    pub email: String,
    pub name: String,
    pub password_hash: String,
    pub is_admin: bool,
    pub is_active: bool,
    pub created_at: DateTime<Utc>,
    pub last_login_at: Option<DateTime<Utc>>,
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct SessionUser {
    pub id: i64,
    pub email: String,
    pub name: String,
    pub is_admin: bool,
}

impl Store {
    /// Creates a user in the default organization. A duplicate email (any
    /// case) is a `Conflict`.
    pub async fn create_user(
        &self,
        email: &str,
        password_hash: &str,
        is_admin: bool,
    ) -> Result<i64> {
        let mut tx = self.pool.begin().await?;
        let id: i64 = sqlx::query_scalar(
            "INSERT INTO users (email, password_hash, is_admin) VALUES ($1, $2, $3) RETURNING id",
        )
        .bind(email)
        .bind(password_hash)
        .bind(is_admin)
        .fetch_one(&mut *tx)
        .await
        .map_err(|e| {
            if is_unique_violation(&e) {
                StoreError::Conflict(format!("a user with email {email} already exists"))
            } else {
                e.into()
            }
        })?;
        sqlx::query(
            "INSERT INTO organization_member (organization_id, user_id, role)
             SELECT id, $1, $2 FROM organization WHERE slug = 'default'",
        )
        .bind(id)
        .bind(if is_admin { "owner" } else { "member" })
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(id)
    }

    pub async fn set_password(&self, email: &str, password_hash: &str) -> Result<()> {
        let done =
            sqlx::query("UPDATE users SET password_hash = $2 WHERE lower(email) = lower($1)")
                .bind(email)
                .bind(password_hash)
                .execute(&self.pool)
                .await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound);
        }
        Ok(())
    }

    pub async fn user_by_email(&self, email: &str) -> Result<Option<UserRow>> {
        Ok(
            sqlx::query_as("SELECT * FROM users WHERE lower(email) = lower($1)")
                .bind(email)
                .fetch_optional(&self.pool)
                .await?,
        )
    }

    pub async fn list_users(&self) -> Result<Vec<UserRow>> {
        Ok(sqlx::query_as("SELECT * FROM users ORDER BY email")
            .fetch_all(&self.pool)
            .await?)
    }

    pub async fn create_session(
        &self,
        token_hash: &str,
        user_id: i64,
        expires_at: DateTime<Utc>,
    ) -> Result<()> {
        let mut tx = self.pool.begin().await?;
        sqlx::query(
            "INSERT INTO user_session (token_hash, user_id, expires_at) VALUES ($1, $2, $3)",
        )
        .bind(token_hash)
        .bind(user_id)
        .bind(expires_at)
        .execute(&mut *tx)
        .await?;
        sqlx::query("UPDATE users SET last_login_at = now() WHERE id = $1")
            .bind(user_id)
            .execute(&mut *tx)
            .await?;
        // Opportunistic cleanup keeps the table small without a cron job.
        sqlx::query("DELETE FROM user_session WHERE expires_at < now()")
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(())
    }

    pub async fn session_user(&self, token_hash: &str) -> Result<Option<SessionUser>> {
        Ok(sqlx::query_as(
            "SELECT u.id, u.email, u.name, u.is_admin
               FROM user_session s JOIN users u ON u.id = s.user_id
              WHERE s.token_hash = $1 AND s.expires_at > now() AND u.is_active",
        )
        .bind(token_hash)
        .fetch_optional(&self.pool)
        .await?)
    }

    pub async fn delete_session(&self, token_hash: &str) -> Result<()> {
        sqlx::query("DELETE FROM user_session WHERE token_hash = $1")
            .bind(token_hash)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    pub async fn user_by_id(&self, id: i64) -> Result<Option<UserRow>> {
        Ok(sqlx::query_as("SELECT * FROM users WHERE id = $1")
            .bind(id)
            .fetch_optional(&self.pool)
            .await?)
    }

    /// Changes a password and ends every other session of the user, so a
    /// stolen session does not outlive the password change.
    pub async fn change_password(
        &self,
        user_id: i64,
        password_hash: &str,
        keep_session_hash: &str,
    ) -> Result<()> {
        let mut tx = self.pool.begin().await?;
        sqlx::query("UPDATE users SET password_hash = $2 WHERE id = $1")
            .bind(user_id)
            .bind(password_hash)
            .execute(&mut *tx)
            .await?;
        sqlx::query("DELETE FROM user_session WHERE user_id = $1 AND token_hash <> $2")
            .bind(user_id)
            .bind(keep_session_hash)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Ends every session of the user except `keep_session_hash`; returns
    /// how many ended.
    pub async fn end_other_sessions(&self, user_id: i64, keep_session_hash: &str) -> Result<u64> {
        Ok(
            sqlx::query("DELETE FROM user_session WHERE user_id = $1 AND token_hash <> $2")
                .bind(user_id)
                .bind(keep_session_hash)
                .execute(&self.pool)
                .await?
                .rows_affected(),
        )
    }

    pub async fn active_session_count(&self, user_id: i64) -> Result<i64> {
        Ok(sqlx::query_scalar(
            "SELECT count(*) FROM user_session WHERE user_id = $1 AND expires_at > now()",
        )
        .bind(user_id)
        .fetch_one(&self.pool)
        .await?)
    }

    /// Disabling a user also ends their sessions at once.
    pub async fn set_user_active(&self, user_id: i64, active: bool) -> Result<()> {
        let mut tx = self.pool.begin().await?;
        let done = sqlx::query("UPDATE users SET is_active = $2 WHERE id = $1")
            .bind(user_id)
            .bind(active)
            .execute(&mut *tx)
            .await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound);
        }
        if !active {
            sqlx::query("DELETE FROM user_session WHERE user_id = $1")
                .bind(user_id)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// Users with their role in the default organization.
    pub async fn list_users_with_roles(&self) -> Result<Vec<(UserRow, String)>> {
        let users = self.list_users().await?;
        let roles: Vec<(i64, String)> = sqlx::query_as(
            "SELECT m.user_id, m.role FROM organization_member m
               JOIN organization o ON o.id = m.organization_id WHERE o.slug = 'default'",
        )
        .fetch_all(&self.pool)
        .await?;
        Ok(users
            .into_iter()
            .map(|u| {
                let role = roles
                    .iter()
                    .find(|(id, _)| *id == u.id)
                    .map(|(_, r)| r.clone())
                    .unwrap_or_else(|| "member".into());
                (u, role)
            })
            .collect())
    }
}
