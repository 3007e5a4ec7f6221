//! Grouping acceptance cases T01–T10 and R1 from the grouping reference
//! (§13), posted over HTTP, plus concurrent ingest of one new fingerprint by
//! two servers.

mod common;

use common::*;
use serde_json::{Value, json};
use sqlx::PgPool;
use std::sync::atomic::{AtomicU32, Ordering};

static NEXT_ID: AtomicU32 = AtomicU32::new(1);

fn next_event_id() -> String {
    format!("{:032x}", NEXT_ID.fetch_add(1, Ordering::Relaxed))
}

fn base(mut event: Value) -> Value {
    let defaults = json!({"platform": "python", "level": "error", "transaction": "/api/orders/{id}", "release": "1.0.0"});
    for (k, v) in defaults.as_object().unwrap() {
        event
            .as_object_mut()
            .unwrap()
            .entry(k.clone())
            .or_insert(v.clone());
    }
    event
}

fn t01_frames(line_a: i64, line_b: i64, root: &str, in_app: bool) -> Value {
    json!([
        {"module": "shop.views", "function": "checkout", "filename": "shop/views.py",
         "abs_path": format!("{root}/shop/views.py"), "lineno": line_a, "context_line": "    total = price(cart)", "in_app": in_app},
        {"module": "shop.pricing", "function": "price", "filename": "shop/pricing.py",
         "abs_path": format!("{root}/shop/pricing.py"), "lineno": line_b, "context_line": "    return item['sku']", "in_app": in_app}
    ])
}

fn exc(ty: &str, value: &str, frames: Option<Value>) -> Value {
    let mut e = json!({"type": ty, "value": value});
    if let Some(frames) = frames {
        e["stacktrace"] = json!({"frames": frames});
    }
    base(json!({"exception": {"values": [e]}}))
}

/// Posts the event and returns the id of the issue it joined.
async fn issue_of(app: &TestApp, project: &TestProject, event: &Value) -> i64 {
    let event_id = next_event_id();
    let r = app
        .post_envelope(project, event_envelope(&event_id, event))
        .await;
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
    sqlx::query_scalar("SELECT issue_id FROM event WHERE event_id = $1")
        .bind(uuid::Uuid::parse_str(&event_id).unwrap())
        .fetch_one(app.store.pool())
        .await
        .unwrap()
}

async fn same(app: &TestApp, project: &TestProject, a: &Value, b: &Value) -> bool {
    issue_of(app, project, a).await == issue_of(app, project, b).await
}

#[sqlx::test]
async fn t01_to_t04_stack_based_cases(pool: PgPool) {
    let app = start(pool).await;
    let p = app.project("t").await;
    let frames_a = t01_frames(40, 12, "/srv/app-1.0", true);
    let frames_b = t01_frames(55, 19, "/srv/app-1.1", true);

    let a = exc("KeyError", "'sku'", Some(frames_a.clone()));
    let mut b = exc("KeyError", "'sku'", Some(frames_b));
    b["release"] = json!("1.1.0");
    assert!(
        same(&app, &p, &a, &b).await,
        "T01: line numbers and deploy paths must not split"
    );

    let a = exc("ValueError", "Order 123 not found", Some(frames_a.clone()));
    let b = exc(
        "ValueError",
        "Order 98765 not found",
        Some(frames_a.clone()),
    );
    assert!(same(&app, &p, &a, &b).await, "T02");

    let a = exc(
        "ValidationError",
        "city location is invalid",
        Some(frames_a.clone()),
    );
    let b = exc(
        "ValidationError",
        "user location is invalid",
        Some(frames_a.clone()),
    );
    assert!(
        same(&app, &p, &a, &b).await,
        "T03: the value is ignored when the stack contributes"
    );

    let a = exc("KeyError", "'sku'", Some(frames_a.clone()));
    let b = exc("TypeError", "'sku'", Some(frames_a));
    assert!(
        !same(&app, &p, &a, &b).await,
        "T04: a different type is a different issue"
    );
}

#[sqlx::test]
async fn t05_parameterised_values_without_stack(pool: PgPool) {
    let app = start(pool).await;
    let p = app.project("t").await;
    let pairs = [
        ("User 123 not found", "User 4567 not found"),
        (
            "Order 1f0e9a52-7c3b-4a6e-9d7a-2b1c3d4e5f60 failed",
            "Order a1b2c3d4-0000-4000-8000-123456789abc failed",
        ),
        (
            "connect to 10.0.0.12:5432 failed",
            "connect to 192.168.1.7:6543 failed",
        ),
        (
            "mail bob@example.com bounced",
            "mail alice@corp.org bounced",
        ),
        (
            "GET https://api.x.io/v1/u/42?a=1 -> 500",
            "GET https://api.x.io/v1/u/77 -> 503",
        ),
        ("bad pointer 0x7f3a2c1d", "bad pointer 0xdeadbeef"),
        (
            "deadline 2024-01-02T03:04:05Z passed",
            "deadline 2025-11-30T23:59:59Z passed",
        ),
        ("timeout after 3000ms", "timeout after 250ms"),
        (
            "query failed: id='42' active=true",
            "query failed: id='7' active=false",
        ),
    ];
    for (a, b) in pairs {
        assert!(
            same(
                &app,
                &p,
                &exc("RuntimeError", a, None),
                &exc("RuntimeError", b, None)
            )
            .await,
            "{a:?} vs {b:?}"
        );
    }
    let different = [
        (
            exc("RuntimeError", "User 123 not found", None),
            exc("RuntimeError", "Group 123 not found", None),
        ),
        (
            exc("RuntimeError", "user_12345 missing", None),
            exc("RuntimeError", "user_99 missing", None),
        ),
        (
            exc("RuntimeError", "User 1 not found", None),
            exc("LookupError", "User 1 not found", None),
        ),
    ];
    for (a, b) in &different {
        assert!(!same(&app, &p, a, b).await, "{a} vs {b} must differ");
    }
}

#[sqlx::test]
async fn t06_t07_multiline_values_and_message_templates(pool: PgPool) {
    let app = start(pool).await;
    let p = app.project("t").await;
    let a = exc(
        "DBError",
        "deadlock detected\nprocess 412 waits\nDETAIL: query A",
        None,
    );
    let b = exc(
        "DBError",
        "deadlock detected\n\nprocess 77 waits\nDETAIL: query B",
        None,
    );
    assert!(same(&app, &p, &a, &b).await, "T06");

    let msg = |logentry: Value| base(json!({ "logentry": logentry }));
    let a = msg(
        json!({"message": "Payment %s failed for user %s", "params": ["99", "alice"], "formatted": "Payment 99 failed for user alice"}),
    );
    let b = msg(
        json!({"message": "Payment %s failed for user %s", "params": ["100", "bob"], "formatted": "Payment 100 failed for user bob"}),
    );
    let c = msg(json!({"formatted": "Payment 99 failed"}));
    let d = msg(json!({"formatted": "Payment 12 failed"}));
    let e = msg(json!({"formatted": "Refund 12 failed"}));
    let (ia, ib, ic, id, ie) = (
        issue_of(&app, &p, &a).await,
        issue_of(&app, &p, &b).await,
        issue_of(&app, &p, &c).await,
        issue_of(&app, &p, &d).await,
        issue_of(&app, &p, &e).await,
    );
    assert_eq!(ia, ib, "T07: same template");
    assert_eq!(ic, id, "T07: parameterised text");
    assert_ne!(ie, ic);
    assert_ne!(ia, ic);
}

#[sqlx::test]
async fn t08_t09_t10_in_app_paths_library_frames_and_flags(pool: PgPool) {
    let app = start(pool).await;
    let p = app.project("t").await;
    let pricing = json!({"module": "shop.pricing", "function": "price", "filename": "shop/pricing.py", "lineno": 12,
                         "context_line": "    return item['sku']", "in_app": true});
    let a = exc(
        "KeyError",
        "'sku'",
        Some(json!([
        {"module": "shop.views", "function": "checkout", "filename": "shop/views.py", "lineno": 40, "in_app": true}, pricing.clone()])),
    );
    let b = exc(
        "KeyError",
        "'sku'",
        Some(json!([
        {"module": "shop.admin", "function": "reprice", "filename": "shop/admin.py", "lineno": 7, "in_app": true}, pricing])),
    );
    assert!(
        !same(&app, &p, &a, &b).await,
        "T08: a different in-app call path is a different issue"
    );

    let mut frames_a = vec![
        json!({"module": "django.core.handlers.base", "function": "_get_response",
        "abs_path": "/venv/lib/python3.12/site-packages/django/core/handlers/base.py", "in_app": false}),
    ];
    frames_a.extend(
        t01_frames(40, 12, "/srv/app", true)
            .as_array()
            .unwrap()
            .iter()
            .cloned(),
    );
    let mut frames_b = vec![
        json!({"module": "django.core.handlers.base", "function": "get_response_async",
               "abs_path": "/venv/lib/python3.13/site-packages/django/core/handlers/base.py", "in_app": false}),
        json!({"module": "sentry_sdk.integrations.django", "function": "sentry_patched", "in_app": false}),
    ];
    frames_b.extend(
        t01_frames(40, 12, "/srv/app", true)
            .as_array()
            .unwrap()
            .iter()
            .cloned(),
    );
    let a = exc("OSError", "disk", Some(Value::Array(frames_a)));
    let b = exc("OSError", "disk", Some(Value::Array(frames_b)));
    assert!(
        same(&app, &p, &a, &b).await,
        "T09: library frames must not split"
    );

    let a = exc(
        "IndexError",
        "list index out of range",
        Some(t01_frames(40, 12, "/srv/app", false)),
    );
    let b = exc(
        "IndexError",
        "list index out of range",
        Some(t01_frames(40, 12, "/srv/app", true)),
    );
    assert!(
        same(&app, &p, &a, &b).await,
        "T10: a changed in_app flag must not split"
    );
}

#[sqlx::test]
async fn r1_resolved_issue_regresses_once_and_others_are_untouched(pool: PgPool) {
    let app = start(pool.clone()).await;
    let p = app.project("t").await;
    let a = exc(
        "KeyError",
        "'sku'",
        Some(t01_frames(40, 12, "/srv/app-1.0", true)),
    );
    let issue = issue_of(&app, &p, &a).await;
    app.store
        .set_issue_status(issue, snag::store::IssueStatus::Resolved, None)
        .await
        .unwrap();

    let other = issue_of(
        &app,
        &p,
        &exc(
            "TypeError",
            "'sku'",
            Some(t01_frames(40, 12, "/srv/app-1.0", true)),
        ),
    )
    .await;
    assert_ne!(other, issue);
    let status: String = sqlx::query_scalar("SELECT status FROM issue WHERE id = $1")
        .bind(issue)
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(
        status, "resolved",
        "an event of another group must not touch the resolved issue"
    );

    let mut b = exc(
        "KeyError",
        "'sku'",
        Some(t01_frames(55, 19, "/srv/app-1.1", true)),
    );
    b["release"] = json!("1.1.0");
    assert_eq!(issue_of(&app, &p, &b).await, issue);
    let (status, substatus): (String, Option<String>) =
        sqlx::query_as("SELECT status, substatus FROM issue WHERE id = $1")
            .bind(issue)
            .fetch_one(&pool)
            .await
            .unwrap();
    assert_eq!(
        (status.as_str(), substatus.as_deref()),
        ("unresolved", Some("regressed"))
    );
    let regressions: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM alert_outbox WHERE issue_id = $1 AND kind = 'regression'",
    )
    .bind(issue)
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!(regressions, 1);

    // Further events on the reopened issue raise no more regression signals.
    issue_of(&app, &p, &b).await;
    let regressions: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM alert_outbox WHERE issue_id = $1 AND kind = 'regression'",
    )
    .bind(issue)
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!(regressions, 1);
}

#[sqlx::test]
async fn custom_fingerprint_overrides_the_stack(pool: PgPool) {
    let app = start(pool).await;
    let p = app.project("t").await;
    let mut a = exc("KeyError", "'a'", Some(t01_frames(1, 2, "/x", true)));
    let mut b = exc("TypeError", "'b'", None);
    a["fingerprint"] = json!(["payment-gateway-down"]);
    b["fingerprint"] = json!(["payment-gateway-down"]);
    assert!(same(&app, &p, &a, &b).await);
    let mut c = exc("KeyError", "'a'", Some(t01_frames(1, 2, "/x", true)));
    c["fingerprint"] = json!(["{{ default }}", "tenant-7"]);
    let plain = exc("KeyError", "'a'", Some(t01_frames(1, 2, "/x", true)));
    assert!(
        !same(&app, &p, &c, &plain).await,
        "{{{{ default }}}} plus a value splits from the default group"
    );
}

#[sqlx::test]
async fn two_servers_ingesting_one_new_fingerprint_make_one_issue_with_exact_counts(pool: PgPool) {
    let first = start(pool.clone()).await;
    let second = start(pool.clone()).await;
    let p = first.project("t").await;
    let event = exc(
        "ConnectionError",
        "pool exhausted",
        Some(t01_frames(3, 4, "/srv", true)),
    );
    let mut tasks = Vec::new();
    for i in 0..40 {
        let (client, base) = if i % 2 == 0 {
            (first.client.clone(), first.base.clone())
        } else {
            (second.client.clone(), second.base.clone())
        };
        let body = event_envelope(&next_event_id(), &event);
        let url = format!("{base}/api/{}/envelope/", p.id);
        let auth = auth_header(&p.key);
        tasks.push(tokio::spawn(async move {
            client
                .post(url)
                .header("x-sentry-auth", auth)
                .body(body)
                .send()
                .await
                .unwrap()
                .status()
                .as_u16()
        }));
    }
    for t in tasks {
        assert_eq!(t.await.unwrap(), 200);
    }
    let issues: Vec<(i64,)> = sqlx::query_as("SELECT times_seen FROM issue")
        .fetch_all(&pool)
        .await
        .unwrap();
    assert_eq!(issues, vec![(40,)], "one issue counting every event");
}

async fn status_of(pool: &PgPool, issue: i64) -> (String, Option<String>) {
    sqlx::query_as("SELECT status, substatus FROM issue WHERE id = $1")
        .bind(issue)
        .fetch_one(pool)
        .await
        .unwrap()
}

fn in_release(release: &str) -> Value {
    let mut e = exc(
        "KeyError",
        "'sku'",
        Some(t01_frames(40, 12, "/srv/app", true)),
    );
    e["release"] = json!(release);
    e
}

#[sqlx::test]
async fn resolved_in_next_release_ignores_the_old_release_and_regresses_on_a_newer_one(
    pool: PgPool,
) {
    use snag::store::Resolution;
    let app = start(pool.clone()).await;
    let p = app.project("t").await;
    let issue = issue_of(&app, &p, &in_release("shop@1.0.0")).await;
    app.store
        .resolve_issue(issue, Resolution::NextRelease, None)
        .await
        .unwrap();
    issue_of(&app, &p, &in_release("shop@1.0.0")).await;
    assert_eq!(
        status_of(&pool, issue).await.0,
        "resolved",
        "the release still running when resolved"
    );
    issue_of(&app, &p, &in_release("shop@1.1.0")).await;
    assert_eq!(
        status_of(&pool, issue).await,
        ("unresolved".into(), Some("regressed".into()))
    );
}

#[sqlx::test]
async fn resolved_in_release_regresses_only_from_that_release_on(pool: PgPool) {
    use snag::store::Resolution;
    let app = start(pool.clone()).await;
    let p = app.project("t").await;
    let issue = issue_of(&app, &p, &in_release("shop@1.4.0")).await;
    app.store
        .resolve_issue(issue, Resolution::InRelease("shop@2.0.0".into()), None)
        .await
        .unwrap();
    issue_of(&app, &p, &in_release("shop@1.5.0")).await;
    let mut no_release = in_release("x");
    no_release.as_object_mut().unwrap().remove("release");
    issue_of(&app, &p, &no_release).await;
    assert_eq!(
        status_of(&pool, issue).await.0,
        "resolved",
        "older releases and release-less events do not regress"
    );
    issue_of(&app, &p, &in_release("shop@2.0.0")).await;
    assert_eq!(
        status_of(&pool, issue).await,
        ("unresolved".into(), Some("regressed".into()))
    );
}

#[sqlx::test]
async fn ignored_until_more_events_wakes_up_as_escalating(pool: PgPool) {
    use snag::store::IgnoreUntil;
    let app = start(pool.clone()).await;
    let p = app.project("t").await;
    let issue = issue_of(&app, &p, &in_release("1.0")).await;
    app.store
        .ignore_issue(issue, IgnoreUntil::MoreEvents(2), None)
        .await
        .unwrap();
    issue_of(&app, &p, &in_release("1.0")).await;
    assert_eq!(status_of(&pool, issue).await.0, "ignored");
    issue_of(&app, &p, &in_release("1.0")).await;
    assert_eq!(
        status_of(&pool, issue).await,
        ("unresolved".into(), Some("escalating".into()))
    );
    let woke_alerts: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM alert_outbox WHERE issue_id = $1 AND kind = 'escalating'",
    )
    .bind(issue)
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!(
        woke_alerts, 1,
        "an ignored issue that wakes up raises an alert"
    );

    app.store
        .ignore_issue(issue, IgnoreUntil::Forever, None)
        .await
        .unwrap();
    for _ in 0..3 {
        issue_of(&app, &p, &in_release("1.0")).await;
    }
    assert_eq!(
        status_of(&pool, issue).await.0,
        "ignored",
        "ignored forever stays ignored"
    );
}

#[sqlx::test]
async fn issue_page_explains_the_grouping(pool: PgPool) {
    let app = start(pool).await;
    let p = app.project("t").await;
    let issue = issue_of(
        &app,
        &p,
        &exc(
            "KeyError",
            "'sku'",
            Some(t01_frames(40, 12, "/srv/app", true)),
        ),
    )
    .await;
    let cookie = app.login("admin@example.com", "pw-123456789").await;
    let (status, page) = app.get_page(&format!("/issues/{issue}"), &cookie).await;
    assert_eq!(status, 200);
    let section = page
        .split("Grouping info")
        .nth(1)
        .expect("grouping section");
    assert!(
        section.contains("app") && section.contains("shop.pricing") && section.contains("KeyError"),
        "{section}"
    );
}
