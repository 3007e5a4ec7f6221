//! Dashboard pages and actions: search syntax, triage, settings, escaping,
//! CSRF and security headers.

mod common;

use common::*;
use serde_json::json;
use sqlx::PgPool;

async fn seed(app: &TestApp, project: &TestProject) {
    let mut a = error_event("PaymentDeclined", "card expired", "charge");
    a["tags"] = json!({"server": "web-1", "region": "eu"});
    let mut b = error_event("TimeoutError", "gateway slow", "fetch");
    b["tags"] = json!({"server": "web-2"});
    b["level"] = json!("warning");
    b["environment"] = json!("staging");
    for (i, e) in [a, b].iter().enumerate() {
        let r = app
            .post_envelope(project, event_envelope(&format!("{:032x}", i + 1), e))
            .await;
        assert_eq!(r.status(), 200);
    }
}

fn titles(page: &str) -> Vec<&'static str> {
    ["PaymentDeclined", "TimeoutError"]
        .into_iter()
        .filter(|t| page.contains(t))
        .collect()
}

#[sqlx::test]
async fn issue_search_understands_sentry_syntax(pool: PgPool) {
    let app = start(pool).await;
    let project = app.project("shop").await;
    seed(&app, &project).await;
    let cookie = app.login("admin@example.com", "pw-123456789").await;
    let search = |q: &str| {
        let encoded: String = form_urlencoded::byte_serialize(q.as_bytes()).collect();
        format!("/projects/{}/issues?status=all&query={encoded}", project.id)
    };
    let cases: &[(&str, &[&str])] = &[
        ("", &["PaymentDeclined", "TimeoutError"]),
        ("server:web-1", &["PaymentDeclined"]),
        ("!server:web-1", &["TimeoutError"]),
        ("region:eu server:web-1", &["PaymentDeclined"]),
        ("level:warning", &["TimeoutError"]),
        ("environment:staging", &["TimeoutError"]),
        ("\"card expired\"", &["PaymentDeclined"]),
        ("gateway", &["TimeoutError"]),
        ("has:user", &["PaymentDeclined", "TimeoutError"]),
        ("is:resolved", &[]),
        ("' OR 1=1 --", &[]),
        ("server:\"x' OR '1'='1\"", &[]),
    ];
    for (q, expected) in cases {
        let (status, page) = app.get_page(&search(q), &cookie).await;
        assert_eq!(status, 200, "{q}");
        assert_eq!(titles(&page), *expected, "query {q:?}");
    }
    let (status, _) = app
        .get_page(
            &format!("/projects/{}/issues?sort=freq%27%3B--", project.id),
            &cookie,
        )
        .await;
    assert_eq!(
        status, 400,
        "unknown sort values are refused, not interpolated"
    );
}

#[sqlx::test]
async fn event_fields_are_escaped_and_headers_set(pool: PgPool) {
    let app = start(pool).await;
    let project = app.project("shop").await;
    let mut e = error_event(
        "<script>alert(1)</script>",
        "\"><img src=x onerror=alert(2)>",
        "f",
    );
    e["request"] = json!({"url": "javascript:alert(3)", "method": "GET"});
    e["tags"] = json!({"k": "<b>bold</b>"});
    app.post_envelope(&project, event_envelope(&format!("{:032x}", 9), &e))
        .await;
    let cookie = app.login("admin@example.com", "pw-123456789").await;
    let issue_id: i64 = sqlx::query_scalar("SELECT id FROM issue")
        .fetch_one(app.store.pool())
        .await
        .unwrap();
    for path in [
        format!("/projects/{}/issues", project.id),
        format!("/issues/{issue_id}"),
    ] {
        let r = app
            .client
            .get(app.url(&path))
            .header("cookie", &cookie)
            .send()
            .await
            .unwrap();
        let headers = r.headers().clone();
        let page = r.text().await.unwrap();
        assert!(!page.contains("<script>alert(1)"), "{path}");
        assert!(!page.contains("<img src=x"), "{path}");
        assert!(!page.contains("<b>bold</b>"), "{path}");
        assert!(!page.contains("href=\"javascript:"), "{path}");
        assert!(
            page.contains("&#60;script&#62;alert(1)"),
            "{path}: the text is shown, escaped"
        );
        assert_eq!(headers["x-frame-options"], "DENY");
        assert!(
            headers["content-security-policy"]
                .to_str()
                .unwrap()
                .contains("script-src 'self'")
        );
        assert_eq!(headers["x-content-type-options"], "nosniff");
    }
}

#[sqlx::test]
async fn triage_actions_require_csrf_and_work(pool: PgPool) {
    let app = start(pool.clone()).await;
    let project = app.project("shop").await;
    seed(&app, &project).await;
    let cookie = app.login("admin@example.com", "pw-123456789").await;
    let issue_id: i64 = sqlx::query_scalar("SELECT id FROM issue WHERE title LIKE 'Payment%'")
        .fetch_one(&pool)
        .await
        .unwrap();
    let post = |path: String, form: Vec<(&'static str, String)>| {
        let client = app.client.clone();
        let url = app.url(&path);
        let cookie = cookie.clone();
        async move {
            client
                .post(url)
                .header("cookie", cookie)
                .form(&form)
                .send()
                .await
                .unwrap()
        }
    };
    let forged = post(
        format!("/issues/{issue_id}/status"),
        vec![("csrf", "forged".into()), ("status", "resolved".into())],
    )
    .await;
    assert_eq!(forged.status(), 403);

    let (_, page) = app.get_page(&format!("/issues/{issue_id}"), &cookie).await;
    let csrf = page
        .split("name=\"csrf\" value=\"")
        .nth(1)
        .unwrap()
        .split('"')
        .next()
        .unwrap()
        .to_string();
    let ok = post(
        format!("/issues/{issue_id}/status"),
        vec![("csrf", csrf.clone()), ("status", "resolved".into())],
    )
    .await;
    assert_eq!(ok.status(), 303);
    let status: String = sqlx::query_scalar("SELECT status FROM issue WHERE id = $1")
        .bind(issue_id)
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(status, "resolved");
    let activity: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM activity WHERE issue_id = $1 AND kind = 'set_resolved'",
    )
    .bind(issue_id)
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!(activity, 1);

    let deleted = post(format!("/issues/{issue_id}/delete"), vec![("csrf", csrf)]).await;
    assert_eq!(deleted.status(), 303);
    let left: i64 = sqlx::query_scalar("SELECT count(*) FROM event WHERE issue_id = $1")
        .bind(issue_id)
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(left, 0, "deleting an issue deletes its events");
}

#[sqlx::test]
async fn login_redirect_is_never_open(pool: PgPool) {
    let app = start(pool).await;
    let hash = snag::web::auth::hash_password("pw-123456789").unwrap();
    app.store
        .create_user("u@example.com", &hash, false)
        .await
        .unwrap();
    for (next, expected) in [
        ("/projects/1/issues", "/projects/1/issues"),
        ("//evil.example", "/projects"),
        ("https://evil.example", "/projects"),
    ] {
        let r = app
            .client
            .post(app.url("/login"))
            .form(&[
                ("email", "u@example.com"),
                ("password", "pw-123456789"),
                ("next", next),
            ])
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 303);
        assert_eq!(r.headers()["location"], expected, "next={next}");
    }
}

fn csrf_of(page: &str) -> String {
    page.split("name=\"csrf\" value=\"")
        .nth(1)
        .unwrap()
        .split('"')
        .next()
        .unwrap()
        .to_string()
}

#[sqlx::test]
async fn settings_manage_keys_and_fingerprint_rules(pool: PgPool) {
    let app = start(pool.clone()).await;
    let cookie = app.login("admin@example.com", "pw-123456789").await;
    let (_, page) = app.get_page("/projects/new", &cookie).await;
    let csrf = csrf_of(&page);
    let post = |path: String, form: Vec<(&'static str, String)>| {
        let client = app.client.clone();
        let url = app.url(&path);
        let cookie = cookie.clone();
        async move {
            client
                .post(url)
                .header("cookie", cookie)
                .form(&form)
                .send()
                .await
                .unwrap()
        }
    };
    let created = post(
        "/projects/new".into(),
        vec![
            ("csrf", csrf.clone()),
            ("name", "Billing API".into()),
            ("platform", "python".into()),
        ],
    )
    .await;
    assert_eq!(created.status(), 303);
    let location = created.headers()["location"].to_str().unwrap().to_string();
    let project_id: i64 = location
        .trim_start_matches("/projects/")
        .trim_end_matches("/settings")
        .parse()
        .unwrap();
    let (status, settings) = app.get_page(&location, &cookie).await;
    assert_eq!(status, 200);
    assert!(settings.contains("sentry_sdk.init(") && settings.contains(&format!("/{project_id}")));

    let (key_id, public_key): (i64, String) =
        sqlx::query_as("SELECT id, public_key FROM project_key WHERE project_id = $1")
            .bind(project_id)
            .fetch_one(&pool)
            .await
            .unwrap();
    let project = TestProject {
        id: project_id,
        key: public_key.clone(),
        dsn: String::new(),
    };
    let send = |n: u32| {
        app.post_envelope(
            &project,
            event_envelope(&format!("{n:032x}"), &error_event("E", "v", "f")),
        )
    };
    assert_eq!(send(1).await.status(), 200, "warms the key cache");

    // Rate limit of 1/min: the next event is refused with 429.
    let r = post(
        format!("/projects/{project_id}/keys/{key_id}"),
        vec![
            ("csrf", csrf.clone()),
            ("action", "rate_limit".into()),
            ("rate_limit", "1".into()),
        ],
    )
    .await;
    assert_eq!(r.status(), 303);
    assert_eq!(send(2).await.status(), 200);
    assert_eq!(send(3).await.status(), 429);

    // Revoking takes effect at once despite the cache.
    let r = post(
        format!("/projects/{project_id}/keys/{key_id}"),
        vec![("csrf", csrf.clone()), ("action", "revoke".into())],
    )
    .await;
    assert_eq!(r.status(), 303);
    assert_eq!(send(4).await.status(), 403);

    let r = post(
        format!("/projects/{project_id}/keys"),
        vec![("csrf", csrf.clone()), ("label", "ci".into())],
    )
    .await;
    assert_eq!(r.status(), 303);
    let keys: i64 =
        sqlx::query_scalar("SELECT count(*) FROM project_key WHERE project_id = $1 AND is_active")
            .bind(project_id)
            .fetch_one(&pool)
            .await
            .unwrap();
    assert_eq!(keys, 1);

    let bad = post(
        format!("/projects/{project_id}/rules"),
        vec![
            ("csrf", csrf.clone()),
            ("rules", "this is not a rule".into()),
        ],
    )
    .await;
    let bad_page = bad.text().await.unwrap();
    assert!(bad_page.contains("line 1"), "the parse error is shown");
    let stored: String = sqlx::query_scalar("SELECT fingerprint_rules FROM project WHERE id = $1")
        .bind(project_id)
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(stored, "", "invalid rules are not saved");

    let good = post(
        format!("/projects/{project_id}/rules"),
        vec![
            ("csrf", csrf),
            (
                "rules",
                "error.type:DatabaseUnavailable -> system-down".into(),
            ),
        ],
    )
    .await;
    assert_eq!(good.status(), 200);
    let stored: String = sqlx::query_scalar("SELECT fingerprint_rules FROM project WHERE id = $1")
        .bind(project_id)
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(stored, "error.type:DatabaseUnavailable -> system-down");
}

#[sqlx::test]
async fn fingerprint_rules_group_matching_events_together(pool: PgPool) {
    let app = start(pool.clone()).await;
    let project = app.project("rules").await;
    app.store
        .set_fingerprint_rules(project.id, "error.type:DatabaseUnavailable -> system-down")
        .await
        .unwrap();
    app.server.state.keys.invalidate_all();
    let a = error_event("DatabaseUnavailable", "primary down", "query");
    let mut b = error_event("DatabaseUnavailable", "replica down", "connect");
    b["exception"]["values"][0]["stacktrace"]["frames"][1]["module"] = json!("other.module");
    for (i, e) in [a, b].iter().enumerate() {
        assert_eq!(
            app.post_envelope(&project, event_envelope(&format!("{:032x}", 100 + i), e))
                .await
                .status(),
            200
        );
    }
    let issues: Vec<(i64,)> = sqlx::query_as("SELECT times_seen FROM issue")
        .fetch_all(&pool)
        .await
        .unwrap();
    assert_eq!(issues, vec![(2,)]);
}

#[sqlx::test]
async fn event_navigation_raw_json_attachments_and_feedback(pool: PgPool) {
    let app = start(pool.clone()).await;
    let project = app.project("shop").await;
    let ids = [
        "e0000000000000000000000000000001",
        "e0000000000000000000000000000002",
        "e0000000000000000000000000000003",
    ];
    for id in ids {
        let event = serde_json::to_vec(&error_event("KeyError", "'x'", "f")).unwrap();
        let items: Vec<(&str, Vec<u8>)> = vec![("event", event)];
        let mut body = envelope(Some(id), &items);
        if id == ids[1] {
            body.extend_from_slice(b"{\"type\":\"attachment\",\"length\":23,\"filename\":\"<x>.html\",\"content_type\":\"text/html\"}\n<script>evil()</script>\n");
            let report = json!({"event_id": id, "name": "Ann", "email": "ann@example.com", "comments": "It broke <b>again</b>"});
            body.extend_from_slice(format!("{{\"type\":\"user_report\"}}\n{report}\n").as_bytes());
        }
        assert_eq!(app.post_envelope(&project, body).await.status(), 200);
    }
    let issue_id: i64 = sqlx::query_scalar("SELECT id FROM issue")
        .fetch_one(&pool)
        .await
        .unwrap();
    let cookie = app.login("admin@example.com", "pw-123456789").await;

    let (status, page) = app
        .get_page(&format!("/issues/{issue_id}/events/{}", ids[1]), &cookie)
        .await;
    assert_eq!(status, 200);
    for target in [ids[0], ids[2]] {
        assert!(
            page.contains(&format!("/issues/{issue_id}/events/{target}\">")),
            "navigation links to {target}"
        );
    }
    assert!(
        page.contains("It broke &#60;b&#62;again&#60;/b&#62;"),
        "feedback shown, escaped"
    );
    let attachment_id: i64 = sqlx::query_scalar("SELECT id FROM attachment")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert!(page.contains(&format!("/attachments/{attachment_id}")));

    let r = app
        .client
        .get(app.url(&format!("/attachments/{attachment_id}")))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(
        r.headers()["content-type"],
        "application/octet-stream",
        "never rendered as HTML"
    );
    assert_eq!(
        r.headers()["content-disposition"],
        "attachment; filename=\"_x_.html\""
    );
    assert_eq!(
        r.bytes().await.unwrap().as_ref(),
        b"<script>evil()</script>"
    );

    let r = app
        .client
        .get(app.url(&format!("/issues/{issue_id}/events/{}/json", ids[2])))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let data: serde_json::Value = r.json().await.unwrap();
    assert_eq!(data["event_id"], ids[2]);

    let (status, _) = app
        .get_page(
            &format!("/issues/{issue_id}/events/ffffffffffffffffffffffffffffffff"),
            &cookie,
        )
        .await;
    assert_eq!(status, 404);
    let anonymous = app
        .client
        .get(app.url(&format!("/attachments/{attachment_id}")))
        .send()
        .await
        .unwrap();
    assert_eq!(anonymous.status(), 303, "downloads need a login");
}
