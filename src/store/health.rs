//! Read side of the aggregates SDKs send besides events: release health
//! (`session_hourly`), cron monitors (`monitor`, `monitor_check_in`) and
//! dropped-event outcomes from client reports (`outcome_hourly`).

use super::{Result, Store};
use chrono::{DateTime, Utc};

/// Sessions of one release in one environment over the reporting window.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct ReleaseHealthRow {
    pub release: String,
    pub environment: String,
    pub total: i64,
    pub errored: i64,
    pub crashed: i64,
    pub abnormal: i64,
    pub last_hour: DateTime<Utc>,
}

impl ReleaseHealthRow {
    /// Share of sessions that did not crash, in percent, as Sentry defines
    /// it (crashed / total). None without sessions: a release that only
    /// sent updates for sessions opened before the window has no rate.
    pub fn crash_free_percent(&self) -> Option<f64> {
        if self.total <= 0 {
            return None;
        }
        let crashed = self.crashed.clamp(0, self.total);
        Some(100.0 * (self.total - crashed) as f64 / self.total as f64)
    }
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct MonitorRow {
    pub id: i64,
    pub slug: String,
    pub last_status: Option<String>,
    pub last_check_in: Option<DateTime<Utc>>,
    pub schedule: Option<String>,
    pub check_ins: i64,
    pub failures: i64,
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct CheckInRow {
    pub monitor_slug: String,
    pub check_in_id: uuid::Uuid,
    pub status: String,
    pub duration: Option<f64>,
    pub environment: Option<String>,
    pub created_at: DateTime<Utc>,
}

/// Items of one outcome, reason and data category over the window.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct OutcomeRow {
    pub outcome: String,
    pub reason: String,
    pub category: String,
    pub quantity: i64,
    pub last_hour: DateTime<Utc>,
}

impl Store {
    /// Per release and environment, newest activity first, over the last
    /// `days` days.
    pub async fn release_health(
        &self,
        project_id: i64,
        days: i32,
    ) -> Result<Vec<ReleaseHealthRow>> {
        Ok(sqlx::query_as(
            "SELECT release, environment,
                    sum(total)::BIGINT AS total, sum(errored)::BIGINT AS errored,
                    sum(crashed)::BIGINT AS crashed, sum(abnormal)::BIGINT AS abnormal,
                    max(hour) AS last_hour
               FROM session_hourly
              WHERE project_id = $1 AND hour >= now() - make_interval(days => $2)
              GROUP BY release, environment
              ORDER BY max(hour) DESC, release, environment
              LIMIT 200",
        )
        .bind(project_id)
        .bind(days)
        .fetch_all(&self.pool)
        .await?)
    }

    pub async fn monitors(&self, project_id: i64) -> Result<Vec<MonitorRow>> {
        // The schedule is shown as the SDK sent it: crontab text, or
        // "every N unit" for interval schedules.
        Ok(sqlx::query_as(
            "SELECT m.id, m.slug, m.last_status, m.last_check_in,
                    CASE m.config->'schedule'->>'type'
                      WHEN 'crontab' THEN m.config->'schedule'->>'value'
                      WHEN 'interval' THEN 'every ' || (m.config->'schedule'->>'value') || ' ' ||
                                           coalesce(m.config->'schedule'->>'unit', '')
                      ELSE NULL END AS schedule,
                    (SELECT count(*) FROM monitor_check_in c WHERE c.monitor_id = m.id) AS check_ins,
                    (SELECT count(*) FROM monitor_check_in c
                      WHERE c.monitor_id = m.id AND c.status IN ('error', 'timeout', 'missed')) AS failures
               FROM monitor m
              WHERE m.project_id = $1
              ORDER BY m.slug",
        )
        .bind(project_id)
        .fetch_all(&self.pool)
        .await?)
    }

    /// The latest check-ins of all the project's monitors.
    pub async fn recent_check_ins(&self, project_id: i64, limit: i64) -> Result<Vec<CheckInRow>> {
        Ok(sqlx::query_as(
            "SELECT m.slug AS monitor_slug, c.check_in_id, c.status, c.duration, c.environment, c.created_at
               FROM monitor_check_in c JOIN monitor m ON m.id = c.monitor_id
              WHERE m.project_id = $1
              ORDER BY c.created_at DESC, c.id DESC
              LIMIT $2",
        )
        .bind(project_id)
        .bind(limit)
        .fetch_all(&self.pool)
        .await?)
    }

    /// Dropped and filtered items over the last `days` days, largest first.
    pub async fn outcomes(&self, project_id: i64, days: i32) -> Result<Vec<OutcomeRow>> {
        Ok(sqlx::query_as(
            "SELECT outcome, reason, category, sum(quantity)::BIGINT AS quantity, max(hour) AS last_hour
               FROM outcome_hourly
              WHERE project_id = $1 AND hour >= now() - make_interval(days => $2)
              GROUP BY outcome, reason, category
              ORDER BY sum(quantity) DESC, outcome, reason, category
              LIMIT 500",
        )
        .bind(project_id)
        .bind(days)
        .fetch_all(&self.pool)
        .await?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(total: i64, crashed: i64) -> ReleaseHealthRow {
        ReleaseHealthRow {
            release: "r".into(),
            environment: String::new(),
            total,
            errored: 0,
            crashed,
            abnormal: 0,
            last_hour: Utc::now(),
        }
    }

    #[test]
    fn crash_free_rate() {
        assert_eq!(row(4, 1).crash_free_percent(), Some(75.0));
        assert_eq!(row(3, 0).crash_free_percent(), Some(100.0));
        assert_eq!(row(0, 2).crash_free_percent(), None);
        // More crash updates than sessions counted never goes negative.
        assert_eq!(row(1, 5).crash_free_percent(), Some(0.0));
    }
}
