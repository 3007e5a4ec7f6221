//! Events of a whole batch in a fixed number of statements.
//!
//! The batch is resolved in memory first: duplicates, which issue each
//! event joins (any known hash, primary first), new issues, and every
//! status transition, replayed event by event in arrival order exactly as
//! one-at-a-time processing would. Then each table gets one multi-row
//! statement, with facets (tags, hourly counts, users) aggregated per issue,
//! so a hot issue costs one row update per batch rather than per event.
//!
//! Rows are written in sorted key order so two processes writing the same
//! keys cannot deadlock; existing issues are locked (`FOR UPDATE`, by id)
//! before their state is read, which with the fingerprint advisory locks
//! makes concurrent writers exact.

use super::issue_state::{IssueState, Transition, release_is_after};
use super::{NewEvent, WriteOutcome, hour_of};
use chrono::{DateTime, Utc};
use serde_json::{Value, json};
use sqlx::PgConnection;
use std::collections::{BTreeMap, HashMap, HashSet, hash_map::Entry};
use uuid::Uuid;

/// Which issue an event joins: one that exists, or the n-th created by this
/// batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum IssueRef {
    Existing(i64),
    New(usize),
}

/// A new issue, built from the events of this batch that create and join it.
struct NewIssue<'a> {
    first: &'a NewEvent,
    last: &'a NewEvent,
    first_seen: DateTime<Utc>,
    last_seen: DateTime<Utc>,
    times_seen: i64,
    users: HashSet<&'a str>,
    last_release: Option<&'a str>,
}

/// What this batch adds to an existing issue besides its state.
#[derive(Default)]
struct ExistingDelta<'a> {
    events: i64,
    last_seen: Option<DateTime<Utc>>,
    last: Option<&'a NewEvent>,
    last_release: Option<&'a str>,
}

fn distinct(values: impl Iterator<Item = i64>) -> Vec<i64> {
    let mut v: Vec<i64> = values.collect();
    v.sort_unstable();
    v.dedup();
    v
}

fn seen_at(e: &NewEvent) -> DateTime<Utc> {
    e.timestamp.max(e.received)
}

/// Writes `events` (in arrival order) and returns one outcome each.
pub(super) async fn write_events(
    conn: &mut PgConnection,
    events: &[&NewEvent],
) -> Result<Vec<WriteOutcome>, sqlx::Error> {
    let now = Utc::now();
    let mut outcomes: Vec<Option<WriteOutcome>> = vec![None; events.len()];

    // Duplicates: SDK retries of stored events, and repeats inside the batch.
    // Lookups take `= ANY` on each key column: one index scan whatever plan
    // the prepared statement settles on (a join on UNNEST can turn into a
    // sequential scan); pairs that only match across columns are harmless,
    // the sets below only answer membership.
    let stored: HashSet<(i64, Uuid)> = sqlx::query_as(
        "SELECT project_id, event_id FROM event WHERE project_id = ANY($1) AND event_id = ANY($2)",
    )
    .bind(distinct(events.iter().map(|e| e.project_id)))
    .bind(events.iter().map(|e| e.event_id).collect::<Vec<_>>())
    .fetch_all(&mut *conn)
    .await?
    .into_iter()
    .collect();
    let mut fresh: Vec<usize> = Vec::with_capacity(events.len());
    let mut batch_ids = HashSet::with_capacity(events.len());
    for (i, e) in events.iter().enumerate() {
        let key = (e.project_id, e.event_id);
        if stored.contains(&key) || !batch_ids.insert(key) {
            outcomes[i] = Some(WriteOutcome::DuplicateEvent);
        } else {
            fresh.push(i);
        }
    }

    // Issue assignment.
    let (hash_projects, hash_values): (Vec<i64>, Vec<&str>) = fresh
        .iter()
        .flat_map(|&i| {
            events[i]
                .hashes
                .iter()
                .map(move |h| (events[i].project_id, h.as_str()))
        })
        .unzip();
    let mut owner: HashMap<(i64, String), IssueRef> = HashMap::new();
    if !hash_values.is_empty() {
        let known: Vec<(i64, String, i64)> = sqlx::query_as(
            "SELECT project_id, hash, issue_id FROM issue_hash WHERE project_id = ANY($1) AND hash = ANY($2)",
        )
        .bind(distinct(hash_projects.iter().copied()))
        .bind(&hash_values)
        .fetch_all(&mut *conn)
        .await?;
        owner.extend(
            known
                .into_iter()
                .map(|(p, h, id)| ((p, h), IssueRef::Existing(id))),
        );
    }
    let mut issue_of: Vec<Option<IssueRef>> = vec![None; events.len()];
    let mut new_issues: Vec<NewIssue> = Vec::new();
    let mut new_hashes: BTreeMap<(i64, &str), IssueRef> = BTreeMap::new();
    for &i in &fresh {
        let e = events[i];
        if e.hashes.is_empty() {
            continue;
        }
        let found = e
            .hashes
            .iter()
            .find_map(|h| owner.get(&(e.project_id, h.clone())).copied());
        let issue = found.unwrap_or_else(|| {
            new_issues.push(NewIssue {
                first: e,
                last: e,
                first_seen: seen_at(e),
                last_seen: seen_at(e),
                times_seen: 0,
                users: HashSet::new(),
                last_release: None,
            });
            IssueRef::New(new_issues.len() - 1)
        });
        // The event's other hashes join its issue, so later events that
        // match only them land here too.
        for h in &e.hashes {
            if let Entry::Vacant(slot) = owner.entry((e.project_id, h.clone())) {
                slot.insert(issue);
                new_hashes.insert((e.project_id, h.as_str()), issue);
            }
        }
        issue_of[i] = Some(issue);
    }

    // Existing issues: lock, then read their state.
    let mut existing_ids: Vec<i64> = issue_of
        .iter()
        .filter_map(|r| match r {
            Some(IssueRef::Existing(id)) => Some(*id),
            _ => None,
        })
        .collect();
    existing_ids.sort_unstable();
    existing_ids.dedup();
    let mut states: HashMap<i64, IssueState> = HashMap::new();
    if !existing_ids.is_empty() {
        let rows: Vec<IssueState> = sqlx::query_as(
            "SELECT id, project_id, status, substatus, resolution_type AS resolution, resolved_in_release AS resolved_in,
                    ignored_until, ignored_until_count, ignored_until_user_count AS ignored_until_users,
                    times_seen, user_count
               FROM issue WHERE id = ANY($1) ORDER BY id FOR UPDATE",
        )
        .bind(&existing_ids)
        .fetch_all(&mut *conn)
        .await?;
        states.extend(rows.into_iter().map(|s| (s.id, s)));
        if states.len() != existing_ids.len() {
            // Deleted between the hash lookup and the lock: the pipeline
            // retries the batch, which then opens new issues.
            return Err(sqlx::Error::RowNotFound);
        }
    }

    // Users already counted on those issues.
    let (user_issues, user_keys): (Vec<i64>, Vec<&str>) = fresh
        .iter()
        .filter_map(|&i| match (issue_of[i], &events[i].user_key) {
            (Some(IssueRef::Existing(id)), Some(user)) => Some((id, user.as_str())),
            _ => None,
        })
        .unzip();
    let mut known_users: HashSet<(IssueRef, String)> = HashSet::new();
    if !user_keys.is_empty() {
        let rows: Vec<(i64, String)> = sqlx::query_as(
            "SELECT issue_id, user_key FROM issue_user WHERE issue_id = ANY($1) AND user_key = ANY($2)",
        )
        .bind(distinct(user_issues.iter().copied()))
        .bind(&user_keys)
        .fetch_all(&mut *conn)
        .await?;
        known_users.extend(rows.into_iter().map(|(i, k)| (IssueRef::Existing(i), k)));
    }

    // When each release was first seen, for release-based resolutions.
    let mut release_seen: HashMap<(i64, String), DateTime<Utc>> = HashMap::new();
    let resolved_in_release: Vec<&IssueState> = states
        .values()
        .filter(|s| s.status == "resolved" && s.resolution.is_some())
        .collect();
    if !resolved_in_release.is_empty() {
        let (projects, versions): (Vec<i64>, Vec<&str>) = fresh
            .iter()
            .filter_map(|&i| Some((events[i].project_id, events[i].release.as_deref()?)))
            .chain(
                resolved_in_release
                    .iter()
                    .filter_map(|s| Some((s.project_id, s.resolved_in.as_deref()?))),
            )
            .unzip();
        let rows: Vec<(i64, String, DateTime<Utc>)> = sqlx::query_as(
            "SELECT r.project_id, r.version, r.created_at FROM release r
               JOIN UNNEST($1::int8[], $2::text[]) AS t(p, v) ON r.project_id = t.p AND r.version = t.v",
        )
        .bind(&projects)
        .bind(&versions)
        .fetch_all(&mut *conn)
        .await?;
        release_seen.extend(rows.into_iter().map(|(p, v, t)| ((p, v), t)));
    }

    // Replay the batch in order.
    let mut deltas: HashMap<i64, ExistingDelta> = HashMap::new();
    let mut new_users: Vec<(IssueRef, &str)> = Vec::new();
    let mut transitions: Vec<(usize, i64, Transition)> = Vec::new();
    for &i in &fresh {
        let e = events[i];
        if let Some(issue) = issue_of[i] {
            let new_user = e.user_key.as_deref().is_some_and(|u| {
                let key = (issue, u.to_string());
                !known_users.contains(&key) && {
                    known_users.insert(key);
                    new_users.push((issue, u));
                    true
                }
            });
            match issue {
                IssueRef::New(n) => {
                    let agg = &mut new_issues[n];
                    agg.times_seen += 1;
                    agg.last = e;
                    agg.first_seen = agg.first_seen.min(seen_at(e));
                    agg.last_seen = agg.last_seen.max(seen_at(e));
                    agg.last_release = e.release.as_deref().or(agg.last_release);
                    if let Some(u) = e.user_key.as_deref() {
                        agg.users.insert(u);
                    }
                    outcomes[i] = Some(WriteOutcome::Event {
                        issue_id: None,
                        new_issue: std::ptr::eq(agg.first, e),
                        regression: false,
                    });
                }
                IssueRef::Existing(id) => {
                    let state = states.get_mut(&id).expect("locked above");
                    let project = e.project_id;
                    let transition =
                        state.apply(e.release.as_deref(), new_user, now, |r, b, inc| {
                            release_is_after(r, b, inc, |v| {
                                release_seen.get(&(project, v.to_string())).copied()
                            })
                        });
                    if let Some(t) = transition {
                        transitions.push((i, id, t));
                    }
                    let delta = deltas.entry(id).or_default();
                    delta.events += 1;
                    delta.last_seen = delta.last_seen.max(Some(seen_at(e)));
                    delta.last = Some(e);
                    delta.last_release = e.release.as_deref().or(delta.last_release);
                    outcomes[i] = Some(WriteOutcome::Event {
                        issue_id: Some(id),
                        new_issue: false,
                        regression: transition == Some(Transition::Regressed),
                    });
                }
            }
        } else {
            outcomes[i] = Some(WriteOutcome::Event {
                issue_id: None,
                new_issue: false,
                regression: false,
            });
        }
        // Later events of the batch see this release as known, first seen
        // now (after every committed release).
        if let Some(release) = &e.release {
            release_seen
                .entry((e.project_id, release.clone()))
                .or_insert(DateTime::<Utc>::MAX_UTC);
        }
    }

    let new_ids = insert_new_issues(conn, &new_issues).await?;
    let id_of = |r: IssueRef| match r {
        IssueRef::Existing(id) => id,
        IssueRef::New(n) => new_ids[n],
    };
    for (i, outcome) in outcomes.iter_mut().enumerate() {
        if let (
            Some(WriteOutcome::Event {
                issue_id: slot @ None,
                ..
            }),
            Some(issue),
        ) = (outcome.as_mut(), issue_of[i])
        {
            *slot = Some(id_of(issue));
        }
    }
    update_existing_issues(conn, &states, &deltas).await?;
    insert_event_rows(conn, events, &fresh, &issue_of, &id_of).await?;
    insert_facets(conn, events, &fresh, &issue_of, &id_of, &new_users).await?;

    // Hashes, activity and alerts.
    if !new_hashes.is_empty() {
        let (projects, hashes, issues): (Vec<i64>, Vec<&str>, Vec<i64>) = new_hashes
            .iter()
            .map(|((p, h), r)| (*p, *h, id_of(*r)))
            .collect();
        sqlx::query(
            "INSERT INTO issue_hash (project_id, hash, issue_id)
             SELECT * FROM UNNEST($1::int8[], $2::text[], $3::int8[])
             ON CONFLICT (project_id, hash) DO NOTHING",
        )
        .bind(&projects)
        .bind(&hashes)
        .bind(&issues)
        .execute(&mut *conn)
        .await?;
    }
    let mut activity: Vec<(i64, &str, Value)> = new_ids
        .iter()
        .map(|id| (*id, "first_seen", json!({})))
        .collect();
    let mut alerts: Vec<(i64, i64, &str)> = new_issues
        .iter()
        .zip(&new_ids)
        .map(|(n, id)| (n.first.project_id, *id, "new_issue"))
        .collect();
    for (i, id, t) in &transitions {
        let e = events[*i];
        activity.push((
            *id,
            t.activity_kind(),
            json!({ "event_id": e.event_id.simple().to_string(), "release": e.release }),
        ));
        alerts.push((e.project_id, *id, t.alert_kind()));
    }
    if !activity.is_empty() {
        let (issues, kinds, data): (Vec<i64>, Vec<&str>, Vec<Value>) =
            activity.into_iter().collect();
        sqlx::query(
            "INSERT INTO activity (issue_id, kind, data)
             SELECT * FROM UNNEST($1::int8[], $2::text[], $3::jsonb[])",
        )
        .bind(&issues)
        .bind(&kinds)
        .bind(&data)
        .execute(&mut *conn)
        .await?;
    }
    if !alerts.is_empty() {
        let (projects, issues, kinds): (Vec<i64>, Vec<i64>, Vec<&str>) =
            alerts.into_iter().collect();
        sqlx::query(
            "INSERT INTO alert_outbox (project_id, issue_id, kind)
             SELECT * FROM UNNEST($1::int8[], $2::int8[], $3::text[])",
        )
        .bind(&projects)
        .bind(&issues)
        .bind(&kinds)
        .execute(&mut *conn)
        .await?;
    }
    Ok(outcomes
        .into_iter()
        .map(|o| o.expect("every event has an outcome"))
        .collect())
}

/// Creates the batch's new issues with consecutive per-project short ids;
/// returns their ids in order.
async fn insert_new_issues(
    conn: &mut PgConnection,
    issues: &[NewIssue<'_>],
) -> Result<Vec<i64>, sqlx::Error> {
    if issues.is_empty() {
        return Ok(Vec::new());
    }
    let mut per_project: BTreeMap<i64, i64> = BTreeMap::new();
    for n in issues {
        *per_project.entry(n.first.project_id).or_default() += 1;
    }
    let (projects, counts): (Vec<i64>, Vec<i64>) =
        per_project.iter().map(|(p, n)| (*p, *n)).unzip();
    let next: Vec<(i64, i64)> = sqlx::query_as(
        "INSERT INTO project_counter (project_id, next_short_id)
         SELECT p, n + 1 FROM UNNEST($1::int8[], $2::int8[]) AS t(p, n)
         ON CONFLICT (project_id) DO UPDATE SET next_short_id = project_counter.next_short_id + EXCLUDED.next_short_id - 1
         RETURNING project_id, next_short_id",
    )
    .bind(&projects)
    .bind(&counts)
    .fetch_all(&mut *conn)
    .await?;
    let mut short_ids: HashMap<i64, i64> = next
        .into_iter()
        .map(|(p, next)| (p, next - per_project[&p]))
        .collect();
    let short: Vec<i64> = issues
        .iter()
        .map(|n| {
            let id = short_ids.get_mut(&n.first.project_id).expect("counted");
            *id += 1;
            *id - 1
        })
        .collect();
    let rows: Vec<(i64, i64, i64)> = sqlx::query_as(
        "INSERT INTO issue (project_id, short_id, title, culprit, event_type, metadata, level, platform,
                            status, substatus, first_seen, last_seen, times_seen, user_count,
                            first_release, last_release, last_event_id)
         SELECT p, s, title, culprit, et, md, lvl, pf, 'unresolved', 'new', fs, ls, n, u, fr, lr, le
           FROM UNNEST($1::int8[], $2::int8[], $3::text[], $4::text[], $5::text[], $6::jsonb[], $7::text[],
                       $8::text[], $9::timestamptz[], $10::timestamptz[], $11::int8[], $12::int8[],
                       $13::text[], $14::text[], $15::uuid[])
                AS t(p, s, title, culprit, et, md, lvl, pf, fs, ls, n, u, fr, lr, le)
         RETURNING project_id, short_id, id",
    )
    .bind(issues.iter().map(|n| n.first.project_id).collect::<Vec<_>>())
    .bind(&short)
    .bind(issues.iter().map(|n| n.first.title.as_str()).collect::<Vec<_>>())
    .bind(issues.iter().map(|n| n.first.culprit.as_str()).collect::<Vec<_>>())
    .bind(issues.iter().map(|n| n.first.event_type.as_str()).collect::<Vec<_>>())
    .bind(issues.iter().map(|n| n.first.metadata.clone()).collect::<Vec<_>>())
    .bind(issues.iter().map(|n| n.last.level.as_str()).collect::<Vec<_>>())
    .bind(issues.iter().map(|n| n.first.platform.as_str()).collect::<Vec<_>>())
    .bind(issues.iter().map(|n| n.first_seen).collect::<Vec<_>>())
    .bind(issues.iter().map(|n| n.last_seen).collect::<Vec<_>>())
    .bind(issues.iter().map(|n| n.times_seen).collect::<Vec<_>>())
    .bind(issues.iter().map(|n| n.users.len() as i64).collect::<Vec<_>>())
    .bind(issues.iter().map(|n| n.first.release.as_deref()).collect::<Vec<_>>())
    .bind(issues.iter().map(|n| n.last_release).collect::<Vec<_>>())
    .bind(issues.iter().map(|n| n.last.event_id).collect::<Vec<_>>())
    .fetch_all(&mut *conn)
    .await?;
    let by_short: HashMap<(i64, i64), i64> =
        rows.into_iter().map(|(p, s, id)| ((p, s), id)).collect();
    Ok(issues
        .iter()
        .zip(&short)
        .map(|(n, s)| by_short[&(n.first.project_id, *s)])
        .collect())
}

async fn update_existing_issues(
    conn: &mut PgConnection,
    states: &HashMap<i64, IssueState>,
    deltas: &HashMap<i64, ExistingDelta<'_>>,
) -> Result<(), sqlx::Error> {
    if deltas.is_empty() {
        return Ok(());
    }
    let mut ids: Vec<i64> = deltas.keys().copied().collect();
    ids.sort_unstable();
    let state = |id: &i64| &states[id];
    let delta = |id: &i64| &deltas[id];
    let last = |id: &i64| delta(id).last.expect("a delta has an event");
    sqlx::query(
        "UPDATE issue SET
            times_seen = issue.times_seen + u.n,
            last_seen = GREATEST(issue.last_seen, u.ls),
            level = u.lvl,
            last_release = COALESCE(u.lr, issue.last_release),
            last_event_id = u.le,
            status = u.status,
            substatus = COALESCE(u.substatus, issue.substatus),
            resolved_at = CASE WHEN u.status = 'resolved' THEN issue.resolved_at END,
            resolution_type = CASE WHEN u.status = 'resolved' THEN issue.resolution_type END,
            resolved_in_release = CASE WHEN u.status = 'resolved' THEN issue.resolved_in_release END,
            ignored_until = CASE WHEN u.status = 'ignored' THEN issue.ignored_until END,
            ignored_until_count = CASE WHEN u.status = 'ignored' THEN issue.ignored_until_count END,
            ignored_until_user_count = CASE WHEN u.status = 'ignored' THEN issue.ignored_until_user_count END,
            user_count = u.users
           FROM UNNEST($1::int8[], $2::int8[], $3::timestamptz[], $4::text[], $5::text[], $6::uuid[],
                       $7::text[], $8::text[], $9::int8[])
                AS u(id, n, ls, lvl, lr, le, status, substatus, users)
          WHERE issue.id = u.id",
    )
    .bind(&ids)
    .bind(ids.iter().map(|id| delta(id).events).collect::<Vec<_>>())
    .bind(ids.iter().map(|id| delta(id).last_seen).collect::<Vec<_>>())
    .bind(ids.iter().map(|id| last(id).level.as_str()).collect::<Vec<_>>())
    .bind(ids.iter().map(|id| delta(id).last_release).collect::<Vec<_>>())
    .bind(ids.iter().map(|id| last(id).event_id).collect::<Vec<_>>())
    .bind(ids.iter().map(|id| state(id).status.as_str()).collect::<Vec<_>>())
    // Only a transition in this batch changes the substatus.
    .bind(
        ids.iter()
            .map(|id| {
                matches!(state(id).substatus.as_deref(), Some("regressed" | "escalating"))
                    .then(|| state(id).substatus.clone())
                    .flatten()
            })
            .collect::<Vec<_>>(),
    )
    .bind(ids.iter().map(|id| state(id).user_count).collect::<Vec<_>>())
    .execute(&mut *conn)
    .await?;
    Ok(())
}

async fn insert_event_rows(
    conn: &mut PgConnection,
    events: &[&NewEvent],
    fresh: &[usize],
    issue_of: &[Option<IssueRef>],
    id_of: &impl Fn(IssueRef) -> i64,
) -> Result<(), sqlx::Error> {
    if fresh.is_empty() {
        return Ok(());
    }
    let rows: Vec<&NewEvent> = fresh.iter().map(|&i| events[i]).collect();
    let tags: Vec<Value> = rows
        .iter()
        .map(|e| Value::Array(e.tags.iter().map(|(k, v)| json!([k, v])).collect()))
        .collect();
    sqlx::query(
        "INSERT INTO event (event_id, project_id, issue_id, event_type, \"timestamp\", received_at, level,
                            platform, release, environment, transaction, message, title, user_key, tags,
                            payload, grouping_z, hashes)
         SELECT id, p, i, et, ts, ra, lvl, pf, rel, env, tx, msg, title, uk, tags, payload, gz,
                string_to_array(NULLIF(h, ''), ',')
           FROM UNNEST($1::uuid[], $2::int8[], $3::int8[], $4::text[], $5::timestamptz[],
                       $6::timestamptz[], $7::text[], $8::text[], $9::text[], $10::text[], $11::text[],
                       $12::text[], $13::text[], $14::text[], $15::jsonb[], $16::bytea[], $17::bytea[],
                       $18::text[])
                AS t(id, p, i, et, ts, ra, lvl, pf, rel, env, tx, msg, title, uk, tags, payload, gz, h)",
    )
    .bind(rows.iter().map(|e| e.event_id).collect::<Vec<_>>())
    .bind(rows.iter().map(|e| e.project_id).collect::<Vec<_>>())
    .bind(
        fresh
            .iter()
            .map(|&i| issue_of[i].map(id_of))
            .collect::<Vec<_>>(),
    )
    .bind(rows.iter().map(|e| e.event_type.as_str()).collect::<Vec<_>>())
    .bind(rows.iter().map(|e| e.timestamp).collect::<Vec<_>>())
    .bind(rows.iter().map(|e| e.received).collect::<Vec<_>>())
    .bind(rows.iter().map(|e| e.level.as_str()).collect::<Vec<_>>())
    .bind(rows.iter().map(|e| e.platform.as_str()).collect::<Vec<_>>())
    .bind(rows.iter().map(|e| e.release.as_deref()).collect::<Vec<_>>())
    .bind(rows.iter().map(|e| e.environment.as_deref()).collect::<Vec<_>>())
    .bind(rows.iter().map(|e| e.transaction.as_deref()).collect::<Vec<_>>())
    .bind(rows.iter().map(|e| e.message.as_deref()).collect::<Vec<_>>())
    .bind(rows.iter().map(|e| e.title.as_str()).collect::<Vec<_>>())
    .bind(rows.iter().map(|e| e.user_key.as_deref()).collect::<Vec<_>>())
    .bind(&tags)
    .bind(rows.iter().map(|e| e.payload.as_slice()).collect::<Vec<_>>())
    .bind(rows.iter().map(|e| e.grouping.as_deref()).collect::<Vec<_>>())
    // Hashes are hex digests: a comma cannot occur in them.
    .bind(rows.iter().map(|e| e.hashes.join(",")).collect::<Vec<_>>())
    .execute(&mut *conn)
    .await?;

    let mut releases: Vec<(i64, &str)> = rows
        .iter()
        .filter_map(|e| Some((e.project_id, e.release.as_deref()?)))
        .collect();
    releases.sort_unstable();
    releases.dedup();
    if !releases.is_empty() {
        let (projects, versions): (Vec<i64>, Vec<&str>) = releases.into_iter().unzip();
        sqlx::query(
            "INSERT INTO release (project_id, version)
             SELECT * FROM UNNEST($1::int8[], $2::text[]) ON CONFLICT DO NOTHING",
        )
        .bind(&projects)
        .bind(&versions)
        .execute(&mut *conn)
        .await?;
    }
    Ok(())
}

/// One tag value of one issue, over the batch.
struct TagSeen {
    events: i64,
    first: DateTime<Utc>,
    last: DateTime<Utc>,
}

/// Tag values, hourly counts and distinct users per issue, one statement
/// each for the whole batch.
async fn insert_facets(
    conn: &mut PgConnection,
    events: &[&NewEvent],
    fresh: &[usize],
    issue_of: &[Option<IssueRef>],
    id_of: &impl Fn(IssueRef) -> i64,
    new_users: &[(IssueRef, &str)],
) -> Result<(), sqlx::Error> {
    let mut tags: BTreeMap<(i64, &str, &str), TagSeen> = BTreeMap::new();
    let mut hourly: BTreeMap<(i64, DateTime<Utc>), i64> = BTreeMap::new();
    for &i in fresh {
        let Some(issue) = issue_of[i] else { continue };
        let e = events[i];
        let id = id_of(issue);
        let seen = seen_at(e);
        let mut own: HashSet<(&str, &str)> = HashSet::new();
        for (k, v) in &e.tags {
            // An event counts once per value even if it repeats a tag.
            if own.insert((k, v)) {
                let slot = tags.entry((id, k, v)).or_insert(TagSeen {
                    events: 0,
                    first: seen,
                    last: seen,
                });
                slot.events += 1;
                slot.first = slot.first.min(seen);
                slot.last = slot.last.max(seen);
            }
        }
        *hourly.entry((id, hour_of(e.received))).or_default() += 1;
    }
    if !tags.is_empty() {
        let (keys, seen): (Vec<_>, Vec<TagSeen>) = tags.into_iter().unzip();
        sqlx::query(
            "INSERT INTO issue_tag (issue_id, key, value, times_seen, first_seen, last_seen)
             SELECT * FROM UNNEST($1::int8[], $2::text[], $3::text[], $4::int8[], $5::timestamptz[], $6::timestamptz[])
             ON CONFLICT (issue_id, key, value) DO UPDATE SET
                times_seen = issue_tag.times_seen + EXCLUDED.times_seen,
                last_seen = GREATEST(issue_tag.last_seen, EXCLUDED.last_seen)",
        )
        .bind(keys.iter().map(|k| k.0).collect::<Vec<_>>())
        .bind(keys.iter().map(|k| k.1).collect::<Vec<_>>())
        .bind(keys.iter().map(|k| k.2).collect::<Vec<_>>())
        .bind(seen.iter().map(|s| s.events).collect::<Vec<_>>())
        .bind(seen.iter().map(|s| s.first).collect::<Vec<_>>())
        .bind(seen.iter().map(|s| s.last).collect::<Vec<_>>())
        .execute(&mut *conn)
        .await?;
    }
    if !hourly.is_empty() {
        let (keys, counts): (Vec<(i64, DateTime<Utc>)>, Vec<i64>) = hourly.into_iter().unzip();
        let (issues, hours): (Vec<i64>, Vec<DateTime<Utc>>) = keys.into_iter().unzip();
        sqlx::query(
            "INSERT INTO issue_hourly (issue_id, hour, count)
             SELECT * FROM UNNEST($1::int8[], $2::timestamptz[], $3::int8[])
             ON CONFLICT (issue_id, hour) DO UPDATE SET count = issue_hourly.count + EXCLUDED.count",
        )
        .bind(&issues)
        .bind(&hours)
        .bind(&counts)
        .execute(&mut *conn)
        .await?;
    }
    if !new_users.is_empty() {
        let mut pairs: Vec<(i64, &str)> = new_users.iter().map(|(r, u)| (id_of(*r), *u)).collect();
        pairs.sort_unstable();
        let (issues, users): (Vec<i64>, Vec<&str>) = pairs.into_iter().unzip();
        sqlx::query(
            "INSERT INTO issue_user (issue_id, user_key)
             SELECT * FROM UNNEST($1::int8[], $2::text[]) ON CONFLICT DO NOTHING",
        )
        .bind(&issues)
        .bind(&users)
        .execute(&mut *conn)
        .await?;
    }
    Ok(())
}
