//! Retention: events past their project's age limit or beyond its event cap
//! are deleted with their attachments and feedback, in bounded statements
//! that skip rows ingest holds; deleting an issue takes its events,
//! attachments and feedback along; the settings form and the background job.

mod common;

use common::*;
use serde_json::json;
use snag::config::RetentionPolicy;
use snag::ops::retention::{Never, purge_once};
use snag::store::retention::RetentionSettings;
use sqlx::PgPool;
use std::time::{Duration, Instant};
use uuid::Uuid;

fn id(n: u32) -> String {
    format!("{n:032x}")
}

fn policy(days: Option<i64>, batch: i64) -> RetentionPolicy {
    RetentionPolicy {
        days,
        max_events: None,
        interval: Duration::ZERO,
        batch,
        pause: Duration::ZERO,
    }
}

/// An error event of one fingerprint (per `function`) with an attachment
/// and a user report stored under its id.
async fn send_with_attachment(app: &TestApp, p: &TestProject, n: u32, function: &str) {
    let event_id = id(n);
    let body = envelope(
        Some(&event_id),
        &[
            (
                "event",
                serde_json::to_vec(&error_event("OSError", "disk full", function)).unwrap(),
            ),
            ("attachment", format!("log of {n}").into_bytes()),
            (
                "user_report",
                json!({"event_id": event_id, "name": "Ann", "email": "a@example.com", "comments": "broke"})
                    .to_string()
                    .into_bytes(),
            ),
        ],
    );
    let r = app.post_envelope(p, body).await;
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
}

async fn backdate(pool: &PgPool, n: u32, days: i64) {
    let event_id = Uuid::parse_str(&id(n)).unwrap();
    for sql in [
        "UPDATE event SET received_at = now() - make_interval(days => $2::int), \"timestamp\" = now() - make_interval(days => $2::int) WHERE event_id = $1",
        "UPDATE attachment SET created_at = now() - make_interval(days => $2::int) WHERE event_id = $1",
        "UPDATE user_report SET created_at = now() - make_interval(days => $2::int) WHERE event_id = $1",
    ] {
        sqlx::query(sql)
            .bind(event_id)
            .bind(days as i32)
            .execute(pool)
            .await
            .unwrap();
    }
}

async fn count(pool: &PgPool, sql: &str, project_id: i64) -> i64 {
    sqlx::query_scalar(sqlx::AssertSqlSafe(sql.to_string()))
        .bind(project_id)
        .fetch_one(pool)
        .await
        .unwrap()
}

async fn stored_ids(pool: &PgPool, project_id: i64) -> Vec<String> {
    let ids: Vec<Uuid> =
        sqlx::query_scalar("SELECT event_id FROM event WHERE project_id = $1 ORDER BY event_id")
            .bind(project_id)
            .fetch_all(pool)
            .await
            .unwrap();
    ids.into_iter().map(|u| u.simple().to_string()).collect()
}

#[sqlx::test]
async fn expired_events_go_with_attachments_and_feedback_in_bounded_batches(pool: PgPool) {
    let app = start(pool.clone()).await;
    let default = app.project("default-retention").await;
    let forever = app.project("keep-forever").await;
    let short = app.project("short-retention").await;
    app.store
        .set_retention_settings(
            forever.id,
            RetentionSettings {
                retention_days: Some(0),
                max_events: None,
            },
        )
        .await
        .unwrap();
    app.store
        .set_retention_settings(
            short.id,
            RetentionSettings {
                retention_days: Some(5),
                max_events: None,
            },
        )
        .await
        .unwrap();
    for n in 1..=30 {
        send_with_attachment(&app, &default, n, "save").await;
        if n <= 20 {
            backdate(&pool, n, 100).await;
        }
    }
    for n in 101..=103 {
        send_with_attachment(&app, &forever, n, "save").await;
        backdate(&pool, n, 400).await;
    }
    for n in 201..=202 {
        send_with_attachment(&app, &short, n, "save").await;
    }
    backdate(&pool, 201, 10).await;
    // An attachment whose event never arrived ages out on its own.
    let orphan = envelope(
        Some(&id(999)),
        &[("attachment", b"crash dump without event".to_vec())],
    );
    assert_eq!(app.post_envelope(&default, orphan).await.status(), 200);
    backdate(&pool, 999, 100).await;

    let report = purge_once(&app.store, &policy(Some(90), 7), &Never)
        .await
        .unwrap();
    assert_eq!(report.expired_events, 21, "{report:?}");
    assert_eq!(report.attachments, 21, "{report:?}");
    assert!(report.side_rows >= 1, "the orphan attachment: {report:?}");
    // 20 rows in batches of 7 take at least three deleting statements.
    assert!(report.statements >= 4, "{report:?}");

    let expected: Vec<String> = (21..=30).map(id).collect();
    assert_eq!(stored_ids(&pool, default.id).await, expected);
    let attachments = "SELECT count(*) FROM attachment WHERE project_id = $1";
    let reports = "SELECT count(*) FROM user_report WHERE project_id = $1";
    assert_eq!(count(&pool, attachments, default.id).await, 10);
    assert_eq!(count(&pool, reports, default.id).await, 10);
    assert_eq!(
        stored_ids(&pool, forever.id).await.len(),
        3,
        "0 = keep forever"
    );
    assert_eq!(count(&pool, attachments, forever.id).await, 3);
    assert_eq!(stored_ids(&pool, short.id).await, vec![id(202)]);
    let issues = "SELECT count(*) FROM issue WHERE project_id = $1";
    assert_eq!(
        count(&pool, issues, default.id).await,
        1,
        "the issue still has events"
    );

    let again = purge_once(&app.store, &policy(Some(90), 7), &Never)
        .await
        .unwrap();
    assert_eq!(
        again.expired_events + again.attachments + again.side_rows,
        0
    );
    app.server.shutdown().await.unwrap();
}

#[sqlx::test]
async fn the_event_cap_keeps_the_newest_events(pool: PgPool) {
    let app = start(pool.clone()).await;
    let p = app.project("capped").await;
    let other = app.project("uncapped").await;
    app.store
        .set_retention_settings(
            p.id,
            RetentionSettings {
                retention_days: None,
                max_events: Some(5),
            },
        )
        .await
        .unwrap();
    for n in 1..=12 {
        send_with_attachment(&app, &p, n, if n % 2 == 0 { "even" } else { "odd" }).await;
        // Older numbers are older events.
        sqlx::query(
            "UPDATE event SET received_at = now() - make_interval(mins => $2::int) WHERE event_id = $1",
        )
        .bind(Uuid::parse_str(&id(n)).unwrap())
        .bind(100 - n as i32)
        .execute(&pool)
        .await
        .unwrap();
    }
    for n in 51..=58 {
        send_with_attachment(&app, &other, n, "save").await;
    }
    let report = purge_once(&app.store, &policy(Some(90), 3), &Never)
        .await
        .unwrap();
    assert_eq!(report.capped_events, 7, "{report:?}");
    assert_eq!(report.attachments, 7, "{report:?}");
    let expected: Vec<String> = (8..=12).map(id).collect();
    assert_eq!(stored_ids(&pool, p.id).await, expected);
    assert_eq!(
        count(
            &pool,
            "SELECT count(*) FROM attachment WHERE project_id = $1",
            p.id
        )
        .await,
        5
    );
    assert_eq!(
        stored_ids(&pool, other.id).await.len(),
        8,
        "no cap by default"
    );

    // The instance default applies to projects without their own cap.
    let mut capped_default = policy(Some(90), 100);
    capped_default.max_events = Some(2);
    let report = purge_once(&app.store, &capped_default, &Never)
        .await
        .unwrap();
    assert_eq!(report.capped_events, 6, "{report:?}");
    assert_eq!(stored_ids(&pool, other.id).await.len(), 2);
    assert_eq!(stored_ids(&pool, p.id).await.len(), 5, "own cap wins");
    app.server.shutdown().await.unwrap();
}

#[sqlx::test]
async fn an_issue_whose_events_all_expired_is_removed_and_can_come_back(pool: PgPool) {
    let app = start(pool.clone()).await;
    let p = app.project("stale").await;
    send_with_attachment(&app, &p, 1, "old_bug").await;
    send_with_attachment(&app, &p, 2, "live_bug").await;
    backdate(&pool, 1, 200).await;
    sqlx::query(
        "UPDATE issue SET last_seen = now() - interval '200 days', first_seen = now() - interval '200 days'
          WHERE id = (SELECT issue_id FROM event WHERE event_id = $1)",
    )
    .bind(Uuid::parse_str(&id(1)).unwrap())
    .execute(&pool)
    .await
    .unwrap();
    let report = purge_once(&app.store, &policy(Some(90), 10), &Never)
        .await
        .unwrap();
    assert_eq!((report.expired_events, report.issues), (1, 1), "{report:?}");
    let titles: Vec<String> =
        sqlx::query_scalar("SELECT culprit FROM issue WHERE project_id = $1 ORDER BY id")
            .bind(p.id)
            .fetch_all(&pool)
            .await
            .unwrap();
    assert_eq!(titles.len(), 1, "{titles:?}");
    let hashes = "SELECT count(*) FROM issue_hash WHERE project_id = $1";
    assert_eq!(count(&pool, hashes, p.id).await, 1);

    // The same bug again is a new issue, accepted like any other event.
    send_with_attachment(&app, &p, 3, "old_bug").await;
    assert_eq!(
        count(
            &pool,
            "SELECT count(*) FROM issue WHERE project_id = $1",
            p.id
        )
        .await,
        2
    );
    app.server.shutdown().await.unwrap();
}

#[sqlx::test]
async fn purging_skips_rows_a_writer_holds_and_never_blocks_ingest(pool: PgPool) {
    let app = start(pool.clone()).await;
    let p = app.project("busy").await;
    let total = 600u32;
    use futures_util::StreamExt;
    futures_util::stream::iter(1..=total)
        .map(|n| {
            let app = &app;
            let p = &p;
            async move {
                let body = event_envelope(&id(n), &error_event("OSError", "x", "busy"));
                assert_eq!(app.post_envelope(p, body).await.status(), 200);
            }
        })
        .buffer_unordered(24)
        .collect::<Vec<()>>()
        .await;
    sqlx::query("UPDATE event SET received_at = now() - interval '100 days' WHERE project_id = $1")
        .bind(p.id)
        .execute(&pool)
        .await
        .unwrap();

    // A transaction holding one old event (as a slow writer would) must
    // not make the purge wait: that row is skipped until the next pass.
    let mut holder = pool.begin().await.unwrap();
    let held = Uuid::parse_str(&id(1)).unwrap();
    sqlx::query("SELECT 1 FROM event WHERE event_id = $1 FOR UPDATE")
        .bind(held)
        .execute(&mut *holder)
        .await
        .unwrap();

    let mut paced = policy(Some(90), 50);
    paced.pause = Duration::from_millis(15);
    let store = app.store.clone();
    let purge_started = Instant::now();
    let purge = tokio::spawn(async move {
        let report = purge_once(&store, &paced, &Never).await.unwrap();
        (report, Instant::now())
    });
    // Ingest while the purge works through its batches.
    let mut latencies = Vec::new();
    let mut during = 0;
    for n in 0..40u32 {
        let started = Instant::now();
        let body = event_envelope(&id(10_000 + n), &error_event("OSError", "x", "busy"));
        assert_eq!(app.post_envelope(&p, body).await.status(), 200);
        latencies.push(started.elapsed());
        if !purge.is_finished() {
            during += 1;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let (report, purge_done) = tokio::time::timeout(Duration::from_secs(30), purge)
        .await
        .expect("the purge did not wait for the held row")
        .unwrap();
    assert!(
        during >= 5,
        "ingest ran alongside the purge ({during} requests)"
    );
    let slowest = latencies.iter().max().unwrap();
    assert!(
        *slowest < Duration::from_secs(2),
        "ingest waited {slowest:?} during the purge"
    );
    assert_eq!(report.expired_events, u64::from(total) - 1, "{report:?}");
    assert!(
        report.statements >= 12,
        "600 rows in batches of 50: {report:?}"
    );
    assert!(purge_done > purge_started);
    let left = stored_ids(&pool, p.id).await;
    assert_eq!(left.len(), 41, "40 fresh events and the held one");
    assert!(left.contains(&id(1)));
    holder.commit().await.unwrap();
    let report = purge_once(&app.store, &policy(Some(90), 50), &Never)
        .await
        .unwrap();
    assert_eq!(report.expired_events, 1);
    app.server.shutdown().await.unwrap();
}

#[sqlx::test]
async fn deleting_an_issue_deletes_its_events_attachments_and_feedback(pool: PgPool) {
    let app = start(pool.clone()).await;
    let p = app.project("deletions").await;
    for n in 1..=3 {
        send_with_attachment(&app, &p, n, "doomed").await;
    }
    send_with_attachment(&app, &p, 4, "survivor").await;
    let issue_id: i64 = sqlx::query_scalar("SELECT issue_id FROM event WHERE event_id = $1")
        .bind(Uuid::parse_str(&id(1)).unwrap())
        .fetch_one(&pool)
        .await
        .unwrap();
    let cookie = app.login("admin@example.com", "pw-123456789").await;
    let (_, page) = app.get_page(&format!("/issues/{issue_id}"), &cookie).await;
    let csrf = page
        .split("name=\"csrf\" value=\"")
        .nth(1)
        .unwrap()
        .split('"')
        .next()
        .unwrap()
        .to_string();
    let r = app
        .client
        .post(app.url(&format!("/issues/{issue_id}/delete")))
        .header("cookie", &cookie)
        .form(&[("csrf", csrf.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303);
    assert_eq!(stored_ids(&pool, p.id).await, vec![id(4)]);
    let attachments: Vec<Uuid> =
        sqlx::query_scalar("SELECT event_id FROM attachment WHERE project_id = $1")
            .bind(p.id)
            .fetch_all(&pool)
            .await
            .unwrap();
    assert_eq!(attachments, vec![Uuid::parse_str(&id(4)).unwrap()]);
    assert_eq!(
        count(
            &pool,
            "SELECT count(*) FROM user_report WHERE project_id = $1",
            p.id
        )
        .await,
        1
    );
    assert!(matches!(
        app.store.delete_issue(issue_id).await,
        Err(snag::store::StoreError::NotFound)
    ));
    // The fingerprint is free again: the same bug opens a new issue.
    send_with_attachment(&app, &p, 5, "doomed").await;
    let new_issue: i64 = sqlx::query_scalar("SELECT issue_id FROM event WHERE event_id = $1")
        .bind(Uuid::parse_str(&id(5)).unwrap())
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_ne!(new_issue, issue_id);
    app.server.shutdown().await.unwrap();
}

#[sqlx::test]
async fn settings_page_edits_retention(pool: PgPool) {
    let app = start(pool.clone()).await;
    let p = app.project("settings").await;
    let cookie = app.login("admin@example.com", "pw-123456789").await;
    let settings = format!("/projects/{}/settings", p.id);
    let (status, page) = app.get_page(&settings, &cookie).await;
    assert_eq!(status, 200);
    assert!(page.contains("Data retention"), "{page}");
    assert!(page.contains("90 days"), "the instance default is shown");
    let csrf = page
        .split("name=\"csrf\" value=\"")
        .nth(1)
        .unwrap()
        .split('"')
        .next()
        .unwrap()
        .to_string();
    let post = |fields: Vec<(&'static str, String)>| {
        app.client
            .post(app.url(&format!("/projects/{}/retention", p.id)))
            .header("cookie", &cookie)
            .form(&fields)
            .send()
    };
    let r = post(vec![
        ("csrf", csrf.clone()),
        ("retention_days", "30".into()),
        ("max_events", " 5000 ".into()),
    ])
    .await
    .unwrap();
    assert_eq!(r.status(), 303);
    assert_eq!(
        app.store.retention_settings(p.id).await.unwrap(),
        RetentionSettings {
            retention_days: Some(30),
            max_events: Some(5000)
        }
    );
    let (_, page) = app.get_page(&settings, &cookie).await;
    assert!(page.contains("name=\"retention_days\" inputmode=\"numeric\" size=\"6\" value=\"30\""));
    assert!(page.contains("value=\"5000\""));

    for (days, cap) in [("-1", ""), ("ten", ""), ("", "1.5"), ("99999999", "")] {
        let r = post(vec![
            ("csrf", csrf.clone()),
            ("retention_days", days.into()),
            ("max_events", cap.into()),
        ])
        .await
        .unwrap();
        assert_eq!(r.status(), 400, "{days:?} {cap:?}");
        assert!(r.text().await.unwrap().contains("whole number"));
    }
    let forged = post(vec![
        ("csrf", "forged".into()),
        ("retention_days", "1".into()),
        ("max_events", "".into()),
    ])
    .await
    .unwrap();
    assert_eq!(forged.status(), 403);
    // Empty fields fall back to the instance defaults.
    let r = post(vec![
        ("csrf", csrf),
        ("retention_days", "".into()),
        ("max_events", "".into()),
    ])
    .await
    .unwrap();
    assert_eq!(r.status(), 303);
    assert_eq!(
        app.store.retention_settings(p.id).await.unwrap(),
        RetentionSettings::default()
    );
    app.server.shutdown().await.unwrap();
}

#[sqlx::test]
async fn the_background_job_purges_and_reports_metrics(pool: PgPool) {
    let mut config = test_config();
    config.retention = RetentionPolicy {
        interval: Duration::from_millis(300),
        ..policy(Some(90), 100)
    };
    let app = start_with(pool.clone(), config).await;
    let p = app.project("background").await;
    send_with_attachment(&app, &p, 1, "old").await;
    send_with_attachment(&app, &p, 2, "new").await;
    backdate(&pool, 1, 120).await;
    let deadline = Instant::now() + Duration::from_secs(20);
    while stored_ids(&pool, p.id).await.len() > 1 {
        assert!(Instant::now() < deadline, "the retention job never ran");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(stored_ids(&pool, p.id).await, vec![id(2)]);
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let metrics = app
            .client
            .get(app.url("/metrics"))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        if metrics.contains("snag_retention_purged_rows_total{kind=\"expired_events\"} 1") {
            assert!(metrics.contains("snag_retention_purged_rows_total{kind=\"attachments\"} 1"));
            break;
        }
        assert!(Instant::now() < deadline, "{metrics}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    app.server.shutdown().await.unwrap();
}
