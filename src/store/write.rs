//! The ingest write path: one transaction per batch (group commit), one
//! savepoint per item so a single bad item cannot fail its neighbours.

use super::{Result, Store};
use chrono::{DateTime, DurationRound, TimeDelta, Utc};
use serde_json::Value;
use sqlx::{Postgres, Transaction};
use uuid::Uuid;

#[derive(Debug, Clone)]
pub struct NewEvent {
    pub project_id: i64,
    pub event_id: Uuid,
    pub event_type: String,
    pub timestamp: DateTime<Utc>,
    pub received: DateTime<Utc>,
    pub level: String,
    pub platform: String,
    pub release: Option<String>,
    pub environment: Option<String>,
    pub transaction: Option<String>,
    pub message: Option<String>,
    pub title: String,
    pub culprit: String,
    pub metadata: Value,
    pub user_key: Option<String>,
    pub tags: Vec<(String, String)>,
    pub data: Value,
    pub grouping: Option<Value>,
    /// Grouping hashes, primary first. Empty for events that never form
    /// issues (transactions).
    pub hashes: Vec<String>,
}

#[derive(Debug, Clone)]
pub struct NewAttachment {
    pub project_id: i64,
    pub event_id: Uuid,
    pub name: String,
    pub content_type: Option<String>,
    pub attachment_type: String,
    pub data: Vec<u8>,
}

#[derive(Debug, Clone)]
pub struct NewUserReport {
    pub project_id: i64,
    pub event_id: Uuid,
    pub name: String,
    pub email: String,
    pub comments: String,
}

#[derive(Debug, Clone, Default)]
pub struct SessionCounts {
    pub total: i64,
    pub errored: i64,
    pub crashed: i64,
    pub abnormal: i64,
}

#[derive(Debug, Clone)]
pub struct NewSessions {
    pub project_id: i64,
    /// Set for single session updates, so repeats are counted once;
    /// aggregates carry no id.
    pub sid: Option<Uuid>,
    pub release: String,
    pub environment: String,
    pub started: DateTime<Utc>,
    pub counts: SessionCounts,
}

#[derive(Debug, Clone)]
pub struct NewOutcome {
    pub project_id: i64,
    pub timestamp: DateTime<Utc>,
    pub outcome: String,
    pub reason: String,
    pub category: String,
    pub quantity: i64,
}

#[derive(Debug, Clone)]
pub struct NewCheckIn {
    pub project_id: i64,
    pub check_in_id: Uuid,
    pub monitor_slug: String,
    pub status: String,
    pub duration: Option<f64>,
    pub environment: Option<String>,
    pub monitor_config: Option<Value>,
    pub received: DateTime<Utc>,
}

/// Everything ingest persists. Items from one request are written together.
#[derive(Debug, Clone)]
pub enum NewItem {
    Event(Box<NewEvent>),
    Attachment(NewAttachment),
    UserReport(NewUserReport),
    Sessions(NewSessions),
    Outcome(NewOutcome),
    CheckIn(NewCheckIn),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WriteOutcome {
    Event {
        issue_id: Option<i64>,
        new_issue: bool,
        regression: bool,
    },
    /// The event id was already stored (an SDK retry); nothing changed.
    DuplicateEvent,
    Other,
}

fn hour_of(t: DateTime<Utc>) -> DateTime<Utc> {
    t.duration_trunc(TimeDelta::hours(1)).unwrap_or(t)
}

impl Store {
    /// Writes a batch of requests' items in one transaction. Returns, per
    /// request, either its outcomes or the error that rolled it back.
    pub async fn write_batch(
        &self,
        batch: &[Vec<NewItem>],
    ) -> Result<Vec<std::result::Result<Vec<WriteOutcome>, String>>> {
        let mut tx = self.pool.begin().await?;
        lock_fingerprints(&mut tx, batch).await?;
        let mut results = Vec::with_capacity(batch.len());
        for items in batch {
            sqlx::query("SAVEPOINT item").execute(&mut *tx).await?;
            match write_items(&mut tx, items).await {
                Ok(outcomes) => {
                    sqlx::query("RELEASE SAVEPOINT item")
                        .execute(&mut *tx)
                        .await?;
                    results.push(Ok(outcomes));
                }
                Err(e) => {
                    sqlx::query("ROLLBACK TO SAVEPOINT item")
                        .execute(&mut *tx)
                        .await?;
                    results.push(Err(e.to_string()));
                }
            }
        }
        tx.commit().await?;
        Ok(results)
    }
}

/// Several `snag serve` processes may see the same new fingerprint at the
/// same moment; without serialising them each would create its own issue.
/// Transaction-scoped advisory locks on the primary hashes do that, taken in
/// sorted order so two batches can never deadlock on each other.
async fn lock_fingerprints(
    tx: &mut Transaction<'static, Postgres>,
    batch: &[Vec<NewItem>],
) -> Result<()> {
    let mut keys: Vec<String> = batch
        .iter()
        .flatten()
        .filter_map(|item| match item {
            NewItem::Event(e) => e.hashes.first().map(|h| format!("{}:{h}", e.project_id)),
            _ => None,
        })
        .collect();
    if keys.is_empty() {
        return Ok(());
    }
    keys.sort_unstable();
    keys.dedup();
    sqlx::query(
        "SELECT pg_advisory_xact_lock(hashtextextended(k, 0)) FROM UNNEST($1::text[]) WITH ORDINALITY AS t(k, n) ORDER BY n",
    )
    .bind(&keys)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

async fn write_items(
    tx: &mut Transaction<'static, Postgres>,
    items: &[NewItem],
) -> std::result::Result<Vec<WriteOutcome>, sqlx::Error> {
    let mut outcomes = Vec::with_capacity(items.len());
    for item in items {
        let outcome = match item {
            NewItem::Event(event) => write_event(tx, event).await?,
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
                .execute(&mut **tx)
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
                .execute(&mut **tx)
                .await?;
                WriteOutcome::Other
            }
            NewItem::Sessions(s) => {
                let counts = match s.sid {
                    Some(sid) => dedupe_session(tx, s.project_id, sid, &s.counts).await?,
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
                .execute(&mut **tx)
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
                .execute(&mut **tx)
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
                .fetch_one(&mut **tx)
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
                .execute(&mut **tx)
                .await?;
                WriteOutcome::Other
            }
        };
        outcomes.push(outcome);
    }
    Ok(outcomes)
}

/// Counts a session in `total` the first time its id is seen and in
/// `errored` the first time it reports an error, whatever the SDK's `init`
/// flag says on repeats.
async fn dedupe_session(
    tx: &mut Transaction<'static, Postgres>,
    project_id: i64,
    sid: Uuid,
    counts: &SessionCounts,
) -> std::result::Result<SessionCounts, sqlx::Error> {
    let is_new = sqlx::query(
        "INSERT INTO session_seen (project_id, sid) VALUES ($1, $2) ON CONFLICT DO NOTHING",
    )
    .bind(project_id)
    .bind(sid)
    .execute(&mut **tx)
    .await?
    .rows_affected()
        == 1;
    let newly_errored = counts.errored > 0
        && sqlx::query("UPDATE session_seen SET errored = true WHERE project_id = $1 AND sid = $2 AND NOT errored")
            .bind(project_id)
            .bind(sid)
            .execute(&mut **tx)
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

async fn write_event(
    tx: &mut Transaction<'static, Postgres>,
    e: &NewEvent,
) -> std::result::Result<WriteOutcome, sqlx::Error> {
    let exists: bool = sqlx::query_scalar(
        "SELECT EXISTS (SELECT 1 FROM event WHERE project_id = $1 AND event_id = $2)",
    )
    .bind(e.project_id)
    .bind(e.event_id)
    .fetch_one(&mut **tx)
    .await?;
    if exists {
        return Ok(WriteOutcome::DuplicateEvent);
    }

    let mut issue_id = None;
    let mut new_issue = false;
    let mut regression = false;
    let mut escalating = false;
    if !e.hashes.is_empty() {
        let (id, created, regressed, woke) = upsert_issue(tx, e).await?;
        issue_id = Some(id);
        new_issue = created;
        regression = regressed;
        escalating = woke;
    }

    let tags_json = Value::Array(
        e.tags
            .iter()
            .map(|(k, v)| Value::Array(vec![Value::String(k.clone()), Value::String(v.clone())]))
            .collect(),
    );
    sqlx::query(
        "INSERT INTO event (event_id, project_id, issue_id, event_type, \"timestamp\", received_at, level,
                            platform, release, environment, transaction, message, title, user_key, tags,
                            data, grouping)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17)",
    )
    .bind(e.event_id)
    .bind(e.project_id)
    .bind(issue_id)
    .bind(&e.event_type)
    .bind(e.timestamp)
    .bind(e.received)
    .bind(&e.level)
    .bind(&e.platform)
    .bind(&e.release)
    .bind(&e.environment)
    .bind(&e.transaction)
    .bind(&e.message)
    .bind(&e.title)
    .bind(&e.user_key)
    .bind(tags_json)
    .bind(&e.data)
    .bind(&e.grouping)
    .execute(&mut **tx)
    .await?;

    if let Some(release) = &e.release {
        sqlx::query(
            "INSERT INTO release (project_id, version) VALUES ($1, $2) ON CONFLICT DO NOTHING",
        )
        .bind(e.project_id)
        .bind(release)
        .execute(&mut **tx)
        .await?;
    }

    if let Some(issue_id) = issue_id {
        record_issue_facets(tx, issue_id, e).await?;
        let alert = if new_issue {
            Some("new_issue")
        } else if regression {
            Some("regression")
        } else if escalating {
            Some("escalating")
        } else {
            None
        };
        if let Some(kind) = alert {
            sqlx::query(
                "INSERT INTO alert_outbox (project_id, issue_id, kind) VALUES ($1, $2, $3)",
            )
            .bind(e.project_id)
            .bind(issue_id)
            .bind(kind)
            .execute(&mut **tx)
            .await?;
        }
    }
    Ok(WriteOutcome::Event {
        issue_id,
        new_issue,
        regression,
    })
}

/// What decides an existing issue's transition when a new event arrives.
#[derive(sqlx::FromRow)]
struct IssueState {
    status: String,
    resolution: Option<String>,
    resolved_in: Option<String>,
    ignored_until: Option<DateTime<Utc>>,
    ignored_until_count: Option<i64>,
    times_seen: i64,
}

/// Finds the issue owning any of the event's hashes (primary hash wins) or
/// creates one. Returns (issue id, created, regressed, woke from ignore).
async fn upsert_issue(
    tx: &mut Transaction<'static, Postgres>,
    e: &NewEvent,
) -> std::result::Result<(i64, bool, bool, bool), sqlx::Error> {
    let found: Vec<(String, i64)> = sqlx::query_as(
        "SELECT hash, issue_id FROM issue_hash WHERE project_id = $1 AND hash = ANY($2)",
    )
    .bind(e.project_id)
    .bind(&e.hashes)
    .fetch_all(&mut **tx)
    .await?;
    let existing = e
        .hashes
        .iter()
        .find_map(|h| found.iter().find(|(fh, _)| fh == h).map(|(_, id)| *id));

    let (issue_id, created, regressed, woke) = match existing {
        Some(issue_id) => {
            let IssueState { status, resolution, resolved_in, ignored_until, ignored_until_count, times_seen } =
                sqlx::query_as(
                    "SELECT status, resolution_type AS resolution, resolved_in_release AS resolved_in, ignored_until,
                            ignored_until_count, times_seen
                       FROM issue WHERE id = $1 FOR UPDATE",
                )
                .bind(issue_id)
                .fetch_one(&mut **tx)
                .await?;
            let regressed = status == "resolved"
                && match (resolution.as_deref(), &e.release, &resolved_in) {
                    (None, _, _) => true,
                    // A resolution exists but the event names no release.
                    (Some(_), None, _) => false,
                    (Some(kind), Some(release), Some(reference)) => {
                        release_is_after(tx, e.project_id, release, reference, kind == "in_release")
                            .await?
                    }
                    (Some(_), Some(_), None) => true,
                };
            // An ignored issue wakes up when its snooze ends or it reached
            // the event count it was ignored until.
            let woke = status == "ignored"
                && (ignored_until.is_some_and(|t| t <= Utc::now())
                    || ignored_until_count.is_some_and(|n| times_seen + 1 >= n));
            let (new_status, new_substatus) = if regressed {
                ("unresolved", Some("regressed"))
            } else if woke {
                ("unresolved", Some("escalating"))
            } else {
                (status.as_str(), None)
            };
            sqlx::query(
                "UPDATE issue SET
                    times_seen = times_seen + 1,
                    last_seen = GREATEST(last_seen, $2),
                    level = $3,
                    last_release = COALESCE($4, last_release),
                    last_event_id = $5,
                    status = $6,
                    substatus = COALESCE($7, substatus),
                    resolved_at = CASE WHEN $6 = 'resolved' THEN resolved_at ELSE NULL END,
                    resolution_type = CASE WHEN $6 = 'resolved' THEN resolution_type ELSE NULL END,
                    resolved_in_release = CASE WHEN $6 = 'resolved' THEN resolved_in_release ELSE NULL END,
                    ignored_until = CASE WHEN $6 = 'ignored' THEN ignored_until ELSE NULL END,
                    ignored_until_count = CASE WHEN $6 = 'ignored' THEN ignored_until_count ELSE NULL END
                  WHERE id = $1",
            )
            .bind(issue_id)
            .bind(e.timestamp.max(e.received))
            .bind(&e.level)
            .bind(&e.release)
            .bind(e.event_id)
            .bind(new_status)
            .bind(new_substatus)
            .execute(&mut **tx)
            .await?;
            if regressed || woke {
                sqlx::query("INSERT INTO activity (issue_id, kind, data) VALUES ($1, $2, $3)")
                    .bind(issue_id)
                    .bind(if regressed { "set_regression" } else { "set_escalating" })
                    .bind(serde_json::json!({ "event_id": e.event_id.simple().to_string(), "release": e.release }))
                    .execute(&mut **tx)
                    .await?;
            }
            (issue_id, false, regressed, woke)
        }
        None => {
            let short_id: i64 = sqlx::query_scalar(
                "INSERT INTO project_counter (project_id, next_short_id) VALUES ($1, 2)
                 ON CONFLICT (project_id) DO UPDATE SET next_short_id = project_counter.next_short_id + 1
                 RETURNING next_short_id - 1",
            )
            .bind(e.project_id)
            .fetch_one(&mut **tx)
            .await?;
            let seen = e.timestamp.max(e.received);
            let issue_id: i64 = sqlx::query_scalar(
                "INSERT INTO issue (project_id, short_id, title, culprit, event_type, metadata, level, platform,
                                    status, substatus, first_seen, last_seen, times_seen, first_release,
                                    last_release, last_event_id)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, 'unresolved', 'new', $9, $9, 1, $10, $10, $11)
                 RETURNING id",
            )
            .bind(e.project_id)
            .bind(short_id)
            .bind(&e.title)
            .bind(&e.culprit)
            .bind(&e.event_type)
            .bind(&e.metadata)
            .bind(&e.level)
            .bind(&e.platform)
            .bind(seen)
            .bind(&e.release)
            .bind(e.event_id)
            .fetch_one(&mut **tx)
            .await?;
            sqlx::query("INSERT INTO activity (issue_id, kind) VALUES ($1, 'first_seen')")
                .bind(issue_id)
                .execute(&mut **tx)
                .await?;
            (issue_id, true, false, false)
        }
    };

    // Secondary hashes join the issue so later events matching only them
    // land here too.
    sqlx::query(
        "INSERT INTO issue_hash (project_id, hash, issue_id)
         SELECT $1, h, $3 FROM UNNEST($2::text[]) AS h
         ON CONFLICT (project_id, hash) DO NOTHING",
    )
    .bind(e.project_id)
    .bind(&e.hashes)
    .bind(issue_id)
    .execute(&mut **tx)
    .await?;
    Ok((issue_id, created, regressed, woke))
}

/// Whether `release` comes after `reference` (or is it, when `inclusive`):
/// by semantic version when both parse as one, else by when Snag first saw
/// each release. A release not seen before is the newest; a reference not
/// seen yet (resolved in a future release) is newer than everything.
async fn release_is_after(
    tx: &mut Transaction<'static, Postgres>,
    project_id: i64,
    release: &str,
    reference: &str,
    inclusive: bool,
) -> std::result::Result<bool, sqlx::Error> {
    if release == reference {
        return Ok(inclusive);
    }
    if let (Some(a), Some(b)) = (semver_key(release), semver_key(reference)) {
        return Ok(a > b);
    }
    let seen: Vec<(String, DateTime<Utc>)> = sqlx::query_as(
        "SELECT version, created_at FROM release WHERE project_id = $1 AND version IN ($2, $3)",
    )
    .bind(project_id)
    .bind(release)
    .bind(reference)
    .fetch_all(&mut **tx)
    .await?;
    let when = |v: &str| {
        seen.iter()
            .find(|(version, _)| version == v)
            .map(|(_, t)| *t)
    };
    Ok(match (when(release), when(reference)) {
        (_, None) => false,
        (None, Some(_)) => true,
        (Some(a), Some(b)) => a > b,
    })
}

/// `pkg@1.2.3`, `v1.2`, `1.2.3-rc1` → comparable numbers; None when the
/// release is not a version (a commit hash, a date).
pub(crate) fn semver_key(release: &str) -> Option<(u64, u64, u64, bool)> {
    let version = release.rsplit('@').next()?.trim_start_matches(['v', 'V']);
    let (core, pre) = match version.split_once(['-', '+']) {
        Some((core, _)) => (core, true),
        None => (version, false),
    };
    let mut parts = core.split('.');
    let major = parts.next()?.parse().ok()?;
    let minor = parts.next().map_or(Some(0), |p| p.parse().ok())?;
    let patch = parts.next().map_or(Some(0), |p| p.parse().ok())?;
    if parts.next().is_some() {
        return None;
    }
    // A pre-release sorts before its release.
    Some((major, minor, patch, !pre))
}

async fn record_issue_facets(
    tx: &mut Transaction<'static, Postgres>,
    issue_id: i64,
    e: &NewEvent,
) -> std::result::Result<(), sqlx::Error> {
    let seen = e.timestamp.max(e.received);
    let mut keys = Vec::new();
    let mut values = Vec::new();
    for (k, v) in &e.tags {
        // ON CONFLICT cannot touch one row twice in a statement.
        if !keys.iter().zip(&values).any(|(ek, ev)| ek == k && ev == v) {
            keys.push(k.clone());
            values.push(v.clone());
        }
    }
    if !keys.is_empty() {
        sqlx::query(
            "INSERT INTO issue_tag (issue_id, key, value, times_seen, first_seen, last_seen)
             SELECT $1, k, v, 1, $4, $4 FROM UNNEST($2::text[], $3::text[]) AS t(k, v)
             ON CONFLICT (issue_id, key, value) DO UPDATE SET
                times_seen = issue_tag.times_seen + 1,
                last_seen = GREATEST(issue_tag.last_seen, EXCLUDED.last_seen)",
        )
        .bind(issue_id)
        .bind(&keys)
        .bind(&values)
        .bind(seen)
        .execute(&mut **tx)
        .await?;
    }
    sqlx::query(
        "INSERT INTO issue_hourly (issue_id, hour, count) VALUES ($1, $2, 1)
         ON CONFLICT (issue_id, hour) DO UPDATE SET count = issue_hourly.count + 1",
    )
    .bind(issue_id)
    .bind(hour_of(e.received))
    .execute(&mut **tx)
    .await?;
    if let Some(user_key) = &e.user_key {
        let inserted = sqlx::query(
            "INSERT INTO issue_user (issue_id, user_key) VALUES ($1, $2) ON CONFLICT DO NOTHING",
        )
        .bind(issue_id)
        .bind(user_key)
        .execute(&mut **tx)
        .await?;
        if inserted.rows_affected() == 1 {
            sqlx::query("UPDATE issue SET user_count = user_count + 1 WHERE id = $1")
                .bind(issue_id)
                .execute(&mut **tx)
                .await?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::semver_key;

    #[test]
    fn versions_compare_like_semver() {
        assert!(semver_key("shop@1.10.0") > semver_key("shop@1.9.3"));
        assert!(semver_key("1.2.0") > semver_key("1.2.0-rc1"));
        assert_eq!(semver_key("v2"), Some((2, 0, 0, true)));
        assert_eq!(semver_key("4f2a9c1"), None);
        assert_eq!(semver_key("2024.01.02.3"), None);
    }
}
