//! The batch writer: a batch written at once must leave exactly what the
//! same requests leave written one at a time, including issue assignment
//! through secondary hashes, duplicates, regressions and wake-ups in the
//! middle of a batch, and a request PostgreSQL refuses failing alone.

use chrono::{DateTime, TimeDelta, Utc};
use serde_json::json;
use snag::store::write::{NewEvent, NewItem, WriteOutcome};
use snag::store::{IgnoreUntil, Resolution, Store};
use sqlx::PgPool;
use uuid::Uuid;

struct Ev<'a> {
    n: u128,
    hashes: &'a [&'a str],
    user: Option<&'a str>,
    release: Option<&'a str>,
    tags: &'a [(&'a str, &'a str)],
    level: &'a str,
}

impl<'a> Ev<'a> {
    fn new(n: u128, hashes: &'a [&'a str]) -> Self {
        Self {
            n,
            hashes,
            user: None,
            release: None,
            tags: &[],
            level: "error",
        }
    }
    fn user(mut self, u: &'a str) -> Self {
        self.user = Some(u);
        self
    }
    fn release(mut self, r: &'a str) -> Self {
        self.release = Some(r);
        self
    }
    fn tags(mut self, t: &'a [(&'a str, &'a str)]) -> Self {
        self.tags = t;
        self
    }
    fn level(mut self, l: &'a str) -> Self {
        self.level = l;
        self
    }

    fn item(&self, project_id: i64) -> NewItem {
        let base: DateTime<Utc> = "2026-11-30T10:00:00Z".parse().unwrap();
        let at = base + TimeDelta::minutes(self.n as i64 * 7);
        NewItem::Event(Box::new(NewEvent {
            project_id,
            event_id: Uuid::from_u128(self.n),
            event_type: if self.hashes.is_empty() {
                "transaction"
            } else {
                "error"
            }
            .into(),
            timestamp: at,
            received: at,
            level: self.level.into(),
            platform: "python".into(),
            release: self.release.map(str::to_string),
            environment: Some("production".into()),
            transaction: None,
            message: Some(format!("message {}", self.n)),
            title: format!("Error {}", self.hashes.first().unwrap_or(&"none")),
            culprit: "app in handler".into(),
            metadata: json!({"type": "Error"}),
            user_key: self.user.map(str::to_string),
            tags: self
                .tags
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            payload: snag::store::payload::encode(&json!({"n": self.n as u64})),
            grouping: None,
            hashes: self.hashes.iter().map(|h| h.to_string()).collect(),
        }))
    }
}

/// Requests (each a list of events) covering every way an event can meet
/// an issue.
fn requests() -> Vec<Vec<Ev<'static>>> {
    vec![
        vec![
            Ev::new(1, &["a1"])
                .user("u1")
                .tags(&[("browser", "firefox"), ("os", "linux")]),
        ],
        vec![
            Ev::new(2, &["a1"])
                .user("u2")
                .tags(&[("browser", "chrome"), ("browser", "chrome")]),
            Ev::new(3, &["b1", "b2"]).user("u1").release("1.0"),
        ],
        // Joins b through its secondary hash, which it then keeps.
        vec![Ev::new(4, &["b3", "b2"]).release("1.1").level("warning")],
        vec![Ev::new(5, &["b3"]).user("u3")],
        // The same event again (an SDK retry), in its own request.
        vec![Ev::new(2, &["a1"]).user("u2")],
        // A transaction: stored, no issue.
        vec![Ev::new(6, &[])],
        vec![
            Ev::new(7, &["c1", "a1"])
                .user("u1")
                .tags(&[("browser", "firefox")]),
        ],
        vec![
            Ev::new(8, &["d1"]).release("2.0"),
            Ev::new(9, &["d1"]).user("u9"),
        ],
        vec![Ev::new(10, &["a1"]).user("u4").release("1.1")],
        vec![Ev::new(8, &["d1"]).release("2.0")],
    ]
}

async fn project(store: &Store, name: &str) -> i64 {
    store
        .create_project(name, Some("python"))
        .await
        .unwrap()
        .0
        .id
}

/// Everything the writer derives, keyed by values both projects share,
/// one text row per fact.
async fn snapshot(pool: &PgPool, project: i64) -> Vec<String> {
    const FACTS: &[&str] = &[
        "SELECT 'issue ' || (short_id, title, times_seen, user_count, first_seen, last_seen, level,
                first_release, last_release, last_event_id, status, substatus)::text
           FROM issue WHERE project_id = $1 ORDER BY short_id",
        "SELECT 'hash ' || (h.hash, i.short_id)::text FROM issue_hash h JOIN issue i ON i.id = h.issue_id
          WHERE h.project_id = $1 ORDER BY h.hash",
        "SELECT 'tag ' || (i.short_id, t.key, t.value, t.times_seen, t.first_seen, t.last_seen)::text
           FROM issue_tag t JOIN issue i ON i.id = t.issue_id
          WHERE i.project_id = $1 ORDER BY i.short_id, t.key, t.value",
        "SELECT 'hourly ' || (i.short_id, h.hour, h.count)::text FROM issue_hourly h
           JOIN issue i ON i.id = h.issue_id WHERE i.project_id = $1 ORDER BY i.short_id, h.hour",
        "SELECT 'user ' || (i.short_id, u.user_key)::text FROM issue_user u JOIN issue i ON i.id = u.issue_id
          WHERE i.project_id = $1 ORDER BY i.short_id, u.user_key",
        "SELECT 'event ' || (e.event_id, i.short_id, e.level)::text FROM event e
           LEFT JOIN issue i ON i.id = e.issue_id WHERE e.project_id = $1 ORDER BY e.event_id",
        "SELECT 'activity ' || (i.short_id, a.kind)::text FROM activity a JOIN issue i ON i.id = a.issue_id
          WHERE i.project_id = $1 ORDER BY i.short_id, a.kind",
        "SELECT 'alert ' || (i.short_id, o.kind)::text FROM alert_outbox o JOIN issue i ON i.id = o.issue_id
          WHERE o.project_id = $1 ORDER BY i.short_id, o.kind",
        "SELECT 'release ' || version FROM release WHERE project_id = $1 ORDER BY version",
    ];
    let mut out = Vec::new();
    for sql in FACTS {
        let rows: Vec<String> = sqlx::query_scalar(sqlx::AssertSqlSafe(*sql))
            .bind(project)
            .fetch_all(pool)
            .await
            .unwrap();
        out.extend(rows);
    }
    out
}

/// Outcomes with issue ids replaced by short ids, comparable across
/// projects.
async fn comparable(pool: &PgPool, outcomes: Vec<Vec<WriteOutcome>>) -> Vec<String> {
    let mut out = Vec::new();
    for o in outcomes.into_iter().flatten() {
        out.push(match o {
            WriteOutcome::Event {
                issue_id,
                new_issue,
                regression,
            } => {
                let short: Option<i64> = match issue_id {
                    Some(id) => sqlx::query_scalar("SELECT short_id FROM issue WHERE id = $1")
                        .bind(id)
                        .fetch_optional(pool)
                        .await
                        .unwrap(),
                    None => None,
                };
                format!("event issue={short:?} new={new_issue} regression={regression}")
            }
            other => format!("{other:?}"),
        });
    }
    out
}

#[sqlx::test]
async fn one_batch_leaves_what_one_request_at_a_time_leaves(pool: PgPool) {
    let store = Store::from_pool(pool.clone());
    let batched = project(&store, "batched").await;
    let sequential = project(&store, "sequential").await;

    let batch: Vec<Vec<NewItem>> = requests()
        .iter()
        .map(|r| r.iter().map(|e| e.item(batched)).collect())
        .collect();
    let batch_outcomes: Vec<Vec<WriteOutcome>> = store
        .write_batch(&batch)
        .await
        .unwrap()
        .into_iter()
        .map(Result::unwrap)
        .collect();

    let mut one_by_one = Vec::new();
    for r in requests() {
        let items: Vec<NewItem> = r.iter().map(|e| e.item(sequential)).collect();
        let mut result = store.write_batch(&[items]).await.unwrap();
        one_by_one.push(result.remove(0).unwrap());
    }

    assert_eq!(
        comparable(&pool, batch_outcomes).await,
        comparable(&pool, one_by_one).await
    );
    let expected = snapshot(&pool, sequential).await;
    assert!(expected.len() > 40, "{expected:#?}");
    assert_eq!(snapshot(&pool, batched).await, expected);

    // And what that is, spelled out for the cases that matter.
    let (times_seen, users): (i64, i64) = sqlx::query_as(
        "SELECT times_seen, user_count FROM issue WHERE project_id = $1 AND title = 'Error a1'",
    )
    .bind(batched)
    .fetch_one(&pool)
    .await
    .unwrap();
    // Events 1, 2, 7 (its primary hash c1 is new, its a1 decides) and 10,
    // from users u1, u2, u1 and u4; the retry of 2 is not counted.
    assert_eq!((times_seen, users), (4, 3));
    let b_issue: i64 = sqlx::query_scalar(
        "SELECT count(DISTINCT issue_id) FROM event WHERE project_id = $1 AND event_id = ANY($2)",
    )
    .bind(batched)
    .bind(vec![
        Uuid::from_u128(3),
        Uuid::from_u128(4),
        Uuid::from_u128(5),
    ])
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!(
        b_issue, 1,
        "b2 and then b3 carry events 4 and 5 into b's issue"
    );
    let stored: i64 = sqlx::query_scalar("SELECT count(*) FROM event WHERE project_id = $1")
        .bind(batched)
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(stored, 10);
    let chrome: i64 = sqlx::query_scalar(
        "SELECT t.times_seen FROM issue_tag t JOIN issue i ON i.id = t.issue_id
          WHERE i.project_id = $1 AND t.key = 'browser' AND t.value = 'chrome'",
    )
    .bind(batched)
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!(chrome, 1, "a tag repeated within one event counts once");
}

async fn issue_of(pool: &PgPool, project: i64, hash: &str) -> i64 {
    sqlx::query_scalar("SELECT issue_id FROM issue_hash WHERE project_id = $1 AND hash = $2")
        .bind(project)
        .bind(hash)
        .fetch_one(pool)
        .await
        .unwrap()
}

async fn write(store: &Store, project: i64, events: &[Ev<'_>]) -> Vec<WriteOutcome> {
    let items = events
        .iter()
        .map(|e| vec![e.item(project)])
        .collect::<Vec<_>>();
    store
        .write_batch(&items)
        .await
        .unwrap()
        .into_iter()
        .map(|r| r.unwrap().remove(0))
        .collect()
}

fn regressions(outcomes: &[WriteOutcome]) -> Vec<bool> {
    outcomes
        .iter()
        .map(|o| {
            matches!(
                o,
                WriteOutcome::Event {
                    regression: true,
                    ..
                }
            )
        })
        .collect()
}

#[sqlx::test]
async fn only_the_first_event_of_a_batch_regresses_a_resolved_issue(pool: PgPool) {
    let store = Store::from_pool(pool.clone());
    let p = project(&store, "p").await;
    write(&store, p, &[Ev::new(1, &["x"])]).await;
    let issue = issue_of(&pool, p, "x").await;
    store
        .resolve_issue(issue, Resolution::Now, None)
        .await
        .unwrap();

    let outcomes = write(
        &store,
        p,
        &[Ev::new(2, &["x"]), Ev::new(3, &["x"]), Ev::new(4, &["x"])],
    )
    .await;
    assert_eq!(regressions(&outcomes), [true, false, false]);
    let row: (String, Option<String>, i64) =
        sqlx::query_as("SELECT status, substatus, times_seen FROM issue WHERE id = $1")
            .bind(issue)
            .fetch_one(&pool)
            .await
            .unwrap();
    assert_eq!(row, ("unresolved".into(), Some("regressed".into()), 4));
    let alerts: Vec<String> =
        sqlx::query_scalar("SELECT kind FROM alert_outbox WHERE issue_id = $1 ORDER BY id")
            .bind(issue)
            .fetch_all(&pool)
            .await
            .unwrap();
    assert_eq!(alerts, ["new_issue", "regression"]);
}

#[sqlx::test]
async fn resolved_in_next_release_regresses_only_on_a_later_release(pool: PgPool) {
    let store = Store::from_pool(pool.clone());
    let p = project(&store, "p").await;
    write(&store, p, &[Ev::new(1, &["x"]).release("1.0")]).await;
    let issue = issue_of(&pool, p, "x").await;
    store
        .resolve_issue(issue, Resolution::NextRelease, None)
        .await
        .unwrap();
    let outcomes = write(
        &store,
        p,
        &[
            Ev::new(2, &["x"]).release("1.0"),
            Ev::new(3, &["x"]),
            Ev::new(4, &["x"]).release("1.1"),
            Ev::new(5, &["x"]).release("1.0"),
        ],
    )
    .await;
    assert_eq!(regressions(&outcomes), [false, false, true, false]);

    // Releases that are not versions order by first sight, including
    // releases first seen earlier in the same batch.
    write(&store, p, &[Ev::new(10, &["y"]).release("abc")]).await;
    let issue = issue_of(&pool, p, "y").await;
    store
        .resolve_issue(issue, Resolution::NextRelease, None)
        .await
        .unwrap();
    let outcomes = write(
        &store,
        p,
        &[
            Ev::new(11, &["y"]).release("abc"),
            Ev::new(12, &["y"]).release("def"),
        ],
    )
    .await;
    assert_eq!(regressions(&outcomes), [false, true]);
}

#[sqlx::test]
async fn an_issue_ignored_until_more_users_wakes_inside_a_batch(pool: PgPool) {
    let store = Store::from_pool(pool.clone());
    let p = project(&store, "p").await;
    write(&store, p, &[Ev::new(1, &["x"]).user("old")]).await;
    let issue = issue_of(&pool, p, "x").await;
    store
        .ignore_issue(issue, IgnoreUntil::MoreUsers(2), None)
        .await
        .unwrap();
    write(
        &store,
        p,
        &[
            Ev::new(2, &["x"]).user("old"),
            Ev::new(3, &["x"]).user("new-1"),
            Ev::new(4, &["x"]).user("new-1"),
        ],
    )
    .await;
    let status: String = sqlx::query_scalar("SELECT status FROM issue WHERE id = $1")
        .bind(issue)
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(status, "ignored", "one new user of two");
    write(
        &store,
        p,
        &[Ev::new(5, &["x"]).user("new-2"), Ev::new(6, &["x"])],
    )
    .await;
    let row: (String, Option<String>, i64) =
        sqlx::query_as("SELECT status, substatus, user_count FROM issue WHERE id = $1")
            .bind(issue)
            .fetch_one(&pool)
            .await
            .unwrap();
    assert_eq!(row, ("unresolved".into(), Some("escalating".into()), 3));
    let alerts: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM alert_outbox WHERE issue_id = $1 AND kind = 'escalating'",
    )
    .bind(issue)
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!(alerts, 1);
}

#[sqlx::test]
async fn a_request_the_database_refuses_fails_alone(pool: PgPool) {
    let store = Store::from_pool(pool.clone());
    let p = project(&store, "p").await;
    // Too long for the (issue, key, value) index even compressed:
    // PostgreSQL refuses it.
    let mut x = 0x2545_f491_u64;
    let noise: String = (0..10_000)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            char::from(b'!' + (x % 90) as u8)
        })
        .collect();
    let huge: &'static str = Box::leak(noise.into_boxed_str());
    let tags: &'static [(&str, &str)] = Box::leak(vec![("k", huge)].into_boxed_slice());
    let batch = vec![
        vec![Ev::new(1, &["x"]).item(p)],
        vec![Ev::new(2, &["y"]).tags(tags).item(p)],
        vec![Ev::new(3, &["x"]).item(p)],
    ];
    let results = store.write_batch(&batch).await.unwrap();
    assert!(results[0].is_ok() && results[2].is_ok(), "{results:?}");
    let refused = results[1].as_ref().unwrap_err();
    assert!(refused.contains("index row"), "{refused}");
    let stored: Vec<Uuid> = sqlx::query_scalar("SELECT event_id FROM event ORDER BY event_id")
        .fetch_all(&pool)
        .await
        .unwrap();
    assert_eq!(stored, [Uuid::from_u128(1), Uuid::from_u128(3)]);
    let times_seen: i64 =
        sqlx::query_scalar("SELECT times_seen FROM issue WHERE title = 'Error x'")
            .fetch_one(&pool)
            .await
            .unwrap();
    assert_eq!(times_seen, 2);
}
