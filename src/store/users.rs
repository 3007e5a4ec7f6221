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

/// An invitation waiting to be accepted.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct InvitationRow {
    pub id: i64,
    pub email: String,
    pub role: String,
    pub invited_by_email: Option<String>,
    pub created_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
}

/// Password reset and invitation links. Tokens arrive hashed
/// (`auth::token_hash`); only hashes are stored.
impl Store {
    pub async fn create_password_reset(
        &self,
        user_id: i64,
        token_hash: &str,
        ttl_secs: i64,
    ) -> Result<()> {
        sqlx::query(
            "INSERT INTO password_reset (token_hash, user_id, expires_at)
             VALUES ($1, $2, now() + make_interval(secs => $3))",
        )
        .bind(token_hash)
        .bind(user_id)
        .bind(ttl_secs as f64)
        .execute(&self.pool)
        .await?;
        // Old links are useless; trimming here avoids a cleanup job.
        sqlx::query("DELETE FROM password_reset WHERE expires_at < now() - interval '7 days'")
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Reset links made for the user within the window, to throttle the
    /// "forgot password" form.
    pub async fn recent_password_resets(&self, user_id: i64, window_secs: i64) -> Result<i64> {
        Ok(sqlx::query_scalar(
            "SELECT count(*) FROM password_reset
              WHERE user_id = $1 AND created_at > now() - make_interval(secs => $2)",
        )
        .bind(user_id)
        .bind(window_secs as f64)
        .fetch_one(&self.pool)
        .await?)
    }

    /// The active user a reset link is for, if the link is unused and
    /// unexpired.
    pub async fn password_reset_user(&self, token_hash: &str) -> Result<Option<UserRow>> {
        Ok(sqlx::query_as(
            "SELECT u.* FROM password_reset r JOIN users u ON u.id = r.user_id
              WHERE r.token_hash = $1 AND r.used_at IS NULL AND r.expires_at > now() AND u.is_active",
        )
        .bind(token_hash)
        .fetch_optional(&self.pool)
        .await?)
    }

    /// Sets the password through a reset link. The link and every other
    /// open link of the user stop working, all sessions end (whoever knew
    /// the old password is logged out) and failed logins are forgotten.
    pub async fn reset_password(&self, token_hash: &str, password_hash: &str) -> Result<UserRow> {
        let mut tx = self.pool.begin().await?;
        let user: UserRow = sqlx::query_as(
            "SELECT u.* FROM password_reset r JOIN users u ON u.id = r.user_id
              WHERE r.token_hash = $1 AND r.used_at IS NULL AND r.expires_at > now() AND u.is_active
              FOR UPDATE OF r",
        )
        .bind(token_hash)
        .fetch_optional(&mut *tx)
        .await?
        .ok_or(StoreError::NotFound)?;
        sqlx::query("UPDATE users SET password_hash = $2 WHERE id = $1")
            .bind(user.id)
            .bind(password_hash)
            .execute(&mut *tx)
            .await?;
        for sql in [
            "UPDATE password_reset SET used_at = now() WHERE user_id = $1 AND used_at IS NULL",
            "DELETE FROM user_session WHERE user_id = $1",
        ] {
            sqlx::query(sql).bind(user.id).execute(&mut *tx).await?;
        }
        sqlx::query("DELETE FROM login_failure WHERE lower(email) = lower($1)")
            .bind(&user.email)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(user)
    }

    /// Invites an email address with a role. An address that already has
    /// an account is a `Conflict`.
    pub async fn create_invitation(
        &self,
        email: &str,
        role: &str,
        invited_by: i64,
        token_hash: &str,
        ttl_secs: i64,
    ) -> Result<i64> {
        if !super::ROLES.contains(&role) {
            return Err(StoreError::Conflict(format!("unknown role {role:?}")));
        }
        if self.user_by_email(email).await?.is_some() {
            return Err(StoreError::Conflict(format!(
                "{email} already has an account"
            )));
        }
        Ok(sqlx::query_scalar(
            "INSERT INTO invitation (token_hash, email, role, invited_by, expires_at)
             VALUES ($1, $2, $3, $4, now() + make_interval(secs => $5)) RETURNING id",
        )
        .bind(token_hash)
        .bind(email)
        .bind(role)
        .bind(invited_by)
        .bind(ttl_secs as f64)
        .fetch_one(&self.pool)
        .await?)
    }

    pub async fn invitation(&self, token_hash: &str) -> Result<Option<InvitationRow>> {
        Ok(sqlx::query_as(
            "SELECT i.id, i.email, i.role, u.email AS invited_by_email, i.created_at, i.expires_at
               FROM invitation i LEFT JOIN users u ON u.id = i.invited_by
              WHERE i.token_hash = $1 AND i.accepted_at IS NULL AND i.revoked_at IS NULL
                AND i.expires_at > now()",
        )
        .bind(token_hash)
        .fetch_optional(&self.pool)
        .await?)
    }

    pub async fn pending_invitations(&self) -> Result<Vec<InvitationRow>> {
        Ok(sqlx::query_as(
            "SELECT i.id, i.email, i.role, u.email AS invited_by_email, i.created_at, i.expires_at
               FROM invitation i LEFT JOIN users u ON u.id = i.invited_by
              WHERE i.accepted_at IS NULL AND i.revoked_at IS NULL AND i.expires_at > now()
              ORDER BY i.created_at DESC, i.id DESC",
        )
        .fetch_all(&self.pool)
        .await?)
    }

    pub async fn revoke_invitation(&self, id: i64) -> Result<()> {
        let done = sqlx::query(
            "UPDATE invitation SET revoked_at = now()
              WHERE id = $1 AND accepted_at IS NULL AND revoked_at IS NULL",
        )
        .bind(id)
        .execute(&self.pool)
        .await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound);
        }
        Ok(())
    }

    /// Creates the invited user (with the invitation's email and role) and
    /// uses up the invitation, atomically: a link works once.
    pub async fn accept_invitation(
        &self,
        token_hash: &str,
        name: &str,
        password_hash: &str,
    ) -> Result<i64> {
        let mut tx = self.pool.begin().await?;
        let (invitation_id, email, role): (i64, String, String) = sqlx::query_as(
            "SELECT id, email, role FROM invitation
              WHERE token_hash = $1 AND accepted_at IS NULL AND revoked_at IS NULL AND expires_at > now()
              FOR UPDATE",
        )
        .bind(token_hash)
        .fetch_optional(&mut *tx)
        .await?
        .ok_or(StoreError::NotFound)?;
        let user_id: i64 = sqlx::query_scalar(
            "INSERT INTO users (email, name, password_hash) VALUES ($1, $2, $3) RETURNING id",
        )
        .bind(&email)
        .bind(name)
        .bind(password_hash)
        .fetch_one(&mut *tx)
        .await
        .map_err(|e| {
            if is_unique_violation(&e) {
                StoreError::Conflict(format!("{email} already has an account"))
            } else {
                e.into()
            }
        })?;
        sqlx::query(
            "INSERT INTO organization_member (organization_id, user_id, role)
             SELECT id, $1, $2 FROM organization WHERE slug = 'default'",
        )
        .bind(user_id)
        .bind(&role)
        .execute(&mut *tx)
        .await?;
        sqlx::query("UPDATE invitation SET accepted_at = now() WHERE id = $1")
            .bind(invitation_id)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(user_id)
    }
}
