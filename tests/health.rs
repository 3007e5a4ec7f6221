//! Project pages fed by non-event items: release health from sessions, cron
//! monitors from check-ins, dropped events from client reports. Each test
//! sends the items through the real ingest endpoint and reads the page.

mod common;

use common::*;
use serde_json::json;
use sqlx::PgPool;

fn json_bytes(v: serde_json::Value) -> Vec<u8> {
    serde_json::to_vec(&v).unwrap()
}

fn session(sid: &str, release: &str, status: &str, init: bool, errors: i64) -> Vec<u8> {
    json_bytes(json!({
        "sid": sid,
        "did": "user-1",
        "init": init,
        "started": chrono::Utc::now().to_rfc3339(),
        "timestamp": chrono::Utc::now().to_rfc3339(),
        "status": status,
        "errors": errors,
        "attrs": {"release": release, "environment": "production"}
    }))
}

/// The table row of `needle` (a release, monitor slug…), for assertions
/// that must not be satisfied by another row.
fn row_of<'a>(page: &'a str, needle: &str) -> &'a str {
    let at = page
        .find(needle)
        .unwrap_or_else(|| panic!("{needle} not on page"));
    let start = page[..at].rfind("<tr").unwrap();
    let end = at + page[at..].find("</tr>").unwrap();
    &page[start..end]
}

#[sqlx::test]
async fn release_health_shows_crash_free_rate_per_release(pool: PgPool) {
    let app = start(pool).await;
    let project = app.project("shop").await;
    // shop@2.0: four sessions, one crashes (first opened, then updated).
    let sids: Vec<String> = (1..=4)
        .map(|i| format!("{i:08x}-0000-4000-8000-000000000000"))
        .collect();
    for sid in &sids {
        let r = app
            .post_envelope(
                &project,
                envelope(
                    None,
                    &[("session", session(sid, "shop@2.0", "ok", true, 0))],
                ),
            )
            .await;
        assert_eq!(r.status(), 200);
    }
    let crash = session(&sids[0], "shop@2.0", "crashed", false, 1);
    let exited = session(&sids[1], "shop@2.0", "exited", false, 0);
    assert_eq!(
        app.post_envelope(
            &project,
            envelope(None, &[("session", crash), ("session", exited)])
        )
        .await
        .status(),
        200
    );
    // shop@1.0 from server-mode aggregates: 10 sessions, none crashed.
    let aggregates = json_bytes(json!({
        "attrs": {"release": "shop@1.0", "environment": "production"},
        "aggregates": [{"started": chrono::Utc::now().to_rfc3339(), "exited": 8, "errored": 2}]
    }));
    assert_eq!(
        app.post_envelope(&project, envelope(None, &[("sessions", aggregates)]))
            .await
            .status(),
        200
    );

    let cookie = app.login("admin@example.com", "pw-123456789").await;
    let (status, page) = app
        .get_page(&format!("/projects/{}/health", project.id), &cookie)
        .await;
    assert_eq!(status, 200);
    let v2 = row_of(&page, "shop@2.0");
    assert!(v2.contains(">75%<"), "{v2}");
    assert!(v2.contains("class=\"count total\">4<"), "{v2}");
    assert!(v2.contains("class=\"count crashed\">1<"), "{v2}");
    assert!(v2.contains("production"));
    let v1 = row_of(&page, "shop@1.0");
    assert!(v1.contains(">100%<"), "{v1}");
    assert!(
        v1.contains("class=\"count total\">10<") && v1.contains("class=\"count errored\">2<"),
        "{v1}"
    );
    // The release links to its issues.
    assert!(v2.contains("query=release%3A%22shop%402.0%22"), "{v2}");
}

#[sqlx::test]
async fn monitors_show_last_check_in_status(pool: PgPool) {
    let app = start(pool).await;
    let project = app.project("jobs").await;
    let check_in = |id: &str, slug: &str, status: &str, duration: Option<f64>| {
        let mut v = json!({
            "check_in_id": id,
            "monitor_slug": slug,
            "status": status,
            "environment": "production",
            "monitor_config": {"schedule": {"type": "crontab", "value": "0 3 * * *"}}
        });
        if let Some(d) = duration {
            v["duration"] = json!(d);
        }
        envelope(None, &[("check_in", json_bytes(v))])
    };
    let a = "aaaaaaaa00000000aaaaaaaa00000000";
    let b = "bbbbbbbb00000000bbbbbbbb00000000";
    for body in [
        check_in(a, "nightly-report", "in_progress", None),
        check_in(a, "nightly-report", "ok", Some(2.5)),
        check_in(b, "sync-stock", "in_progress", None),
        check_in(b, "sync-stock", "error", Some(0.2)),
    ] {
        assert_eq!(app.post_envelope(&project, body).await.status(), 200);
    }
    let cookie = app.login("admin@example.com", "pw-123456789").await;
    let (status, page) = app
        .get_page(&format!("/projects/{}/monitors", project.id), &cookie)
        .await;
    assert_eq!(status, 200);
    let nightly = row_of(&page, "monitor-slug\">nightly-report");
    assert!(
        nightly.contains("monitor-status badge new\">ok<"),
        "{nightly}"
    );
    assert!(nightly.contains("0 3 * * *"), "{nightly}");
    assert!(nightly.contains("class=\"count failures\">0<"), "{nightly}");
    let sync = row_of(&page, "monitor-slug\">sync-stock");
    assert!(sync.contains("level-error\">error<"), "{sync}");
    assert!(sync.contains("class=\"count failures\">1<"), "{sync}");
    // Opening and closing a check-in is one row in the recent list.
    assert_eq!(page.matches("<tr class=\"check-in\">").count(), 2, "{page}");
    assert!(page.contains("2.5 s") && page.contains("200 ms"));
}

#[sqlx::test]
async fn dropped_events_come_from_client_reports(pool: PgPool) {
    let app = start(pool).await;
    let project = app.project("api").await;
    let cookie = app.login("admin@example.com", "pw-123456789").await;
    let (_, empty) = app
        .get_page(&format!("/projects/{}/outcomes", project.id), &cookie)
        .await;
    assert!(empty.contains("Nothing dropped"));
    for _ in 0..2 {
        let report = json_bytes(json!({
            "timestamp": chrono::Utc::now().timestamp(),
            "discarded_events": [
                {"reason": "before_send", "category": "error", "quantity": 3},
                {"reason": "sample_rate", "category": "transaction", "quantity": 5}
            ],
            "rate_limited_events": [{"reason": "ratelimit_backoff", "category": "error", "quantity": 1}]
        }));
        assert_eq!(
            app.post_envelope(&project, envelope(None, &[("client_report", report)]))
                .await
                .status(),
            200
        );
    }
    let (status, page) = app
        .get_page(&format!("/projects/{}/outcomes", project.id), &cookie)
        .await;
    assert_eq!(status, 200);
    let before_send = row_of(&page, "reason\"><code>before_send");
    assert!(
        before_send.contains("discarded by the SDK") && before_send.contains("quantity\">6<"),
        "{before_send}"
    );
    let sampled = row_of(&page, "reason\"><code>sample_rate");
    assert!(
        sampled.contains("transaction") && sampled.contains("quantity\">10<"),
        "{sampled}"
    );
    let limited = row_of(&page, "reason\"><code>ratelimit_backoff");
    assert!(
        limited.contains("rate limited") && limited.contains("quantity\">2<"),
        "{limited}"
    );
    assert!(page.contains("dropped-total\">18<"), "{page}");
}

#[sqlx::test]
async fn pages_are_linked_escaped_and_private(pool: PgPool) {
    let app = start(pool).await;
    let project = app.project("shop").await;
    let hidden = app.project("hidden").await;
    let hostile = "<script>alert(1)</script>";
    let body = envelope(
        None,
        &[
            (
                "session",
                session(
                    "11111111-0000-4000-8000-000000000000",
                    hostile,
                    "ok",
                    true,
                    0,
                ),
            ),
            (
                "check_in",
                json_bytes(json!({"monitor_slug": hostile, "status": "ok"})),
            ),
            (
                "client_report",
                json_bytes(
                    json!({"discarded_events": [{"reason": hostile, "category": "error", "quantity": 1}]}),
                ),
            ),
        ],
    );
    assert_eq!(app.post_envelope(&project, body).await.status(), 200);
    let admin = app.login("admin@example.com", "pw-123456789").await;
    let (_, settings) = app
        .get_page(&format!("/projects/{}/settings", project.id), &admin)
        .await;
    for page in ["health", "monitors", "outcomes"] {
        let path = format!("/projects/{}/{page}", project.id);
        assert!(
            settings.contains(&format!("href=\"{path}\"")),
            "settings links {path}"
        );
        let (status, html) = app.get_page(&path, &admin).await;
        assert_eq!(status, 200, "{path}");
        assert!(!html.contains(hostile), "{path} escapes event data");
        assert!(
            html.contains("&#60;script&#62;") || html.contains("&lt;script&gt;"),
            "{path} shows the hostile value as text"
        );
    }

    // A member outside the team that owns a project sees 404, as for issues.
    let team = app.store.create_team("Payments").await.unwrap();
    app.store
        .set_project_team(hidden.id, team, true)
        .await
        .unwrap();
    let hash = snag::web::auth::hash_password("pw-123456789").unwrap();
    let member_id = app
        .store
        .create_user("member@example.com", &hash, false)
        .await
        .unwrap();
    app.store.set_org_role(member_id, "member").await.unwrap();
    let r = app
        .client
        .post(app.url("/login"))
        .form(&[
            ("email", "member@example.com"),
            ("password", "pw-123456789"),
        ])
        .send()
        .await
        .unwrap();
    let member = r.headers()["set-cookie"]
        .to_str()
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_string();
    for page in ["health", "monitors", "outcomes"] {
        let (status, _) = app
            .get_page(&format!("/projects/{}/{page}", hidden.id), &member)
            .await;
        assert_eq!(status, 404, "{page} of a hidden project");
        let (status, _) = app
            .get_page(&format!("/projects/{}/{page}", project.id), &member)
            .await;
        assert_eq!(status, 200, "{page} of an open project");
        let (status, _) = app
            .get_page(&format!("/projects/{}/{page}", project.id), "")
            .await;
        assert_ne!(status, 200, "{page} needs a login");
    }
}
