//! Items other than events: attachments, user feedback, release-health
//! sessions, client-report outcomes and cron check-ins. Rare next to
//! events, so one statement each.

use super::{NewItem, SessionCounts, WriteOutcome, hour_of};
use sqlx::PgConnection;
use uuid::Uuid;

/// Writes one item that is not an event (those go through `events`).
pub(super) async fn write_other(
    conn: &mut PgConnection,
    item: &NewItem,
) -> Result<WriteOutcome, sqlx::Error> {
    Ok(match item {
        NewItem::Event(_) => unreachable!("events are written in bulk"),
        NewItem::Attachment(a) => {
            sqlx::query(
                    "INSERT INTO attachment (project_id, event_id, name, content_type, attachment_type, size, data)
                     VALUES ($1, $2, $3, $4, $5, $6, $7)",
                )
                .bind(a.project_id)
                .bind(a.event_id)
                .bind(&a.name)
                .bind(&a.content_type)
                .bind(&a.attachment_type)
                .bind(a.data.len() as i64)
                .bind(&a.data)
                .execute(&mut *conn)
                .await?;
            WriteOutcome::Other
        }
        NewItem::UserReport(r) => {
            sqlx::query(
                "INSERT INTO user_report (project_id, event_id, name, email, comments)
                     VALUES ($1, $2, $3, $4, $5)",
            )
            .bind(r.project_id)
            .bind(r.event_id)
            .bind(&r.name)
            .bind(&r.email)
            .bind(&r.comments)
            .execute(&mut *conn)
            .await?;
            WriteOutcome::Other
        }
        NewItem::Sessions(s) => {
            let counts = match s.sid {
                Some(sid) => dedupe_session(conn, s.project_id, sid, &s.counts).await?,
                None => s.counts.clone(),
            };
            sqlx::query(
                    "INSERT INTO session_hourly (project_id, release, environment, hour, total, errored, crashed, abnormal)
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
                     ON CONFLICT (project_id, release, environment, hour) DO UPDATE SET
                        total = session_hourly.total + EXCLUDED.total,
                        errored = session_hourly.errored + EXCLUDED.errored,
                        crashed = session_hourly.crashed + EXCLUDED.crashed,
                        abnormal = session_hourly.abnormal + EXCLUDED.abnormal",
                )
                .bind(s.project_id)
                .bind(&s.release)
                .bind(&s.environment)
                .bind(hour_of(s.started))
                .bind(counts.total)
                .bind(counts.errored)
                .bind(counts.crashed)
                .bind(counts.abnormal)
                .execute(&mut *conn)
                .await?;
            WriteOutcome::Other
        }
        NewItem::Outcome(o) => {
            sqlx::query(
                "INSERT INTO outcome_hourly (project_id, hour, outcome, reason, category, quantity)
                     VALUES ($1, $2, $3, $4, $5, $6)
                     ON CONFLICT (project_id, hour, outcome, reason, category)
                     DO UPDATE SET quantity = outcome_hourly.quantity + EXCLUDED.quantity",
            )
            .bind(o.project_id)
            .bind(hour_of(o.timestamp))
            .bind(&o.outcome)
            .bind(&o.reason)
            .bind(&o.category)
            .bind(o.quantity)
            .execute(&mut *conn)
            .await?;
            WriteOutcome::Other
        }
        NewItem::CheckIn(c) => {
            let monitor_id: i64 = sqlx::query_scalar(
                "INSERT INTO monitor (project_id, slug, last_status, last_check_in, config)
                     VALUES ($1, $2, $3, $4, $5)
                     ON CONFLICT (project_id, slug) DO UPDATE SET
                        last_status = EXCLUDED.last_status,
                        last_check_in = EXCLUDED.last_check_in,
                        config = COALESCE(EXCLUDED.config, monitor.config)
                     RETURNING id",
            )
            .bind(c.project_id)
            .bind(&c.monitor_slug)
            .bind(&c.status)
            .bind(c.received)
            .bind(&c.monitor_config)
            .fetch_one(&mut *conn)
            .await?;
            sqlx::query(
                    "INSERT INTO monitor_check_in (monitor_id, check_in_id, status, duration, environment, created_at)
                     VALUES ($1, $2, $3, $4, $5, $6)
                     ON CONFLICT (monitor_id, check_in_id) DO UPDATE SET
                        status = EXCLUDED.status,
                        duration = COALESCE(EXCLUDED.duration, monitor_check_in.duration),
                        environment = COALESCE(EXCLUDED.environment, monitor_check_in.environment)",
                )
                .bind(monitor_id)
                .bind(c.check_in_id)
                .bind(&c.status)
                .bind(c.duration)
                .bind(&c.environment)
                .bind(c.received)
                .execute(&mut *conn)
                .await?;
            WriteOutcome::Other
        }
    })
}

/// Counts a session in `total` the first time its id is seen and in
/// `errored` the first time it reports an error, whatever the SDK's `init`
/// flag says on repeats.
async fn dedupe_session(
    conn: &mut PgConnection,
    project_id: i64,
    sid: Uuid,
    counts: &SessionCounts,
) -> std::result::Result<SessionCounts, sqlx::Error> {
    let is_new = sqlx::query(
        "INSERT INTO session_seen (project_id, sid) VALUES ($1, $2) ON CONFLICT DO NOTHING",
    )
    .bind(project_id)
    .bind(sid)
    .execute(&mut *conn)
    .await?
    .rows_affected()
        == 1;
    let newly_errored = counts.errored > 0
        && sqlx::query("UPDATE session_seen SET errored = true WHERE project_id = $1 AND sid = $2 AND NOT errored")
            .bind(project_id)
            .bind(sid)
            .execute(&mut *conn)
            .await?
            .rows_affected()
            == 1;
    Ok(SessionCounts {
        total: i64::from(is_new),
        errored: i64::from(newly_errored),
        crashed: counts.crashed,
        abnormal: counts.abnormal,
    })
}
