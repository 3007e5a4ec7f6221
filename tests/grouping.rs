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

// ---- more cases, per platform and per feature ----

/// Posts each pair to a fresh project and checks whether they share an issue.
async fn check_pairs(app: &TestApp, cases: &[(&str, Value, Value, bool)]) {
    for (i, (name, a, b, want_same)) in cases.iter().enumerate() {
        let p = app.project(&format!("case-{i}")).await;
        let got = same(app, &p, a, b).await;
        assert_eq!(
            got,
            *want_same,
            "{name}: expected {}",
            if *want_same { "SAME" } else { "DIFFERENT" }
        );
    }
}

fn stack_event(platform: &str, ty: &str, value: &str, frames: Value) -> Value {
    json!({"platform": platform, "level": "error", "exception": {"values": [
        {"type": ty, "value": value, "stacktrace": {"frames": frames}}]}})
}

#[sqlx::test]
async fn platform_frame_rules(pool: PgPool) {
    let app = start(pool).await;
    let js = |func: &str, line: i64, col: i64| {
        stack_event(
            "node",
            "TypeError",
            "Cannot read properties of undefined (reading 'id')",
            json!([
            {"filename": "/app/index.js", "module": "index", "function": func, "lineno": 1, "colno": 1, "in_app": true},
            {"filename": "/app/src/orders.js", "module": "src:orders", "function": "Object.load", "lineno": line, "colno": col,
             "context_line": "  return order.id;", "in_app": true}]),
        )
    };
    let minified = |func: &str, build: &str| {
        stack_event(
            "javascript",
            "TypeError",
            "x",
            json!([
            {"abs_path": format!("https://cdn.shop.io/static/js/main.{build}.js"), "function": func,
             "lineno": 1, "colno": 4711, "context_line": "a".repeat(500), "in_app": true}]),
        )
    };
    let java = |proxy: &str, lambda: &str| {
        stack_event(
            "java",
            "IllegalStateException",
            "cart empty",
            json!([
            {"module": "org.springframework.web.servlet.DispatcherServlet", "function": "doDispatch", "in_app": false},
            {"module": format!("com.shop.CartService$$SpringCGLIB$${proxy}"), "function": "checkout", "in_app": true},
            {"module": format!("com.shop.CartService$$Lambda/0x{lambda}"), "function": "apply", "filename": "CartService.java", "in_app": true}]),
        )
    };
    let native = |addr: &str, hash: &str| {
        stack_event(
            "native",
            "SIGSEGV",
            "Segfault",
            json!([
            {"function": "main", "filename": "main.rs", "instruction_addr": addr, "in_app": true},
            {"function": format!("shop::checkout::{hash}"), "instruction_addr": addr, "in_app": true},
            {"function": "core::panicking::panic_fmt::h1111222233334444", "in_app": false}]),
        )
    };
    let ruby = |suffix: &str| {
        stack_event(
            "ruby",
            "ActionView::Template::Error",
            "undefined method",
            json!([
            {"filename": "app/views/orders/show.html.erb", "function": format!("_app_views_orders_show_html_erb__{suffix}"), "in_app": true},
            {"filename": "app/models/order.rb", "function": "block (2 levels) in total", "context_line": "items.sum(&:price)", "in_app": true}]),
        )
    };
    let php = |line: i64| {
        stack_event(
            "php",
            "TypeError",
            "x",
            json!([
            {"filename": "/var/www/app/Http/Kernel.php", "function": format!("{{closure:App\\Http\\Kernel::handle():{line}}}"), "in_app": true}]),
        )
    };
    let csharp = |ordinal: i64| {
        stack_event(
            "csharp",
            "System.InvalidOperationException",
            "x",
            json!([
            {"module": format!("Shop.Orders+<PlaceAsync>d__{ordinal}"), "function": "MoveNext", "in_app": true}]),
        )
    };
    let go = |closure: &str| {
        stack_event(
            "go",
            "*errors.errorString",
            "boom",
            json!([
            {"module": "main", "function": closure, "filename": "main.go", "in_app": true}]),
        )
    };
    let python_ctx = |line: &str| {
        stack_event(
            "python",
            "KeyError",
            "'sku'",
            json!([
            {"module": "shop.pricing", "function": "price", "context_line": line, "in_app": true}]),
        )
    };
    check_pairs(
        &app,
        &[
            (
                "js: line, column and `Object.<anonymous>` wrapper",
                js("Object.<anonymous>", 10, 5),
                js("<anonymous>", 12, 9),
                true,
            ),
            (
                "js: a different function is a different path",
                js("Object.<anonymous>", 10, 5),
                js("boot", 10, 5),
                false,
            ),
            (
                "js: same minified build, other column",
                minified("t.render", "4f3a2b1c"),
                minified("t.render", "9e8d7c6b"),
                true,
            ),
            (
                "js: a new build renames the minified function",
                minified("t.render", "4f3a2b1c"),
                minified("t.paint", "4f3a2b1c"),
                false,
            ),
            (
                "java: CGLIB proxy and JDK 21 lambda class ids",
                java("0", "00007f0012345678"),
                java("1", "00007f00abcdef01"),
                true,
            ),
            (
                "native: addresses and Rust symbol hashes",
                native("0x1000", "h0123456789abcdef"),
                native("0x7fff", "hfedcba9876543210"),
                true,
            ),
            (
                "ruby: ERB template suffixes",
                ruby("1234567_8901234"),
                ruby("7654321_4321098"),
                true,
            ),
            ("php: PHP 8.4 closure line numbers", php(42), php(57), true),
            (
                "csharp: async state machine ordinals",
                csharp(3),
                csharp(12),
                true,
            ),
            (
                "go: numbered closures are distinct closures",
                go("main.main.func1"),
                go("main.main.func2"),
                false,
            ),
            (
                "python: reformatted whitespace in a line",
                python_ctx("    return item['sku']"),
                python_ctx("return   item['sku']"),
                true,
            ),
            (
                "python: an edited line is new code",
                python_ctx("return item['sku']"),
                python_ctx("return item[\"sku\"]"),
                false,
            ),
        ],
    )
    .await;
}

#[sqlx::test]
async fn chains_groups_threads_and_messages(pool: PgPool) {
    let app = start(pool.clone()).await;
    let frames = t01_frames(40, 12, "/srv/app", true);
    let outer =
        json!({"type": "RuntimeError", "value": "save failed", "stacktrace": {"frames": frames}});
    let chain = |cause: Option<&str>| {
        let mut values = Vec::new();
        if let Some(c) = cause {
            values.push(json!({"type": c, "value": "disk full"}));
        }
        values.push(outer.clone());
        base(json!({"exception": {"values": values}}))
    };
    let leaf = |id: i64| {
        json!({"type": "ValueError", "value": format!("row {id} is bad"),
        "mechanism": {"type": "chained", "exception_id": id, "parent_id": 0}, "stacktrace": {"frames": t01_frames(1, 2, "/x", true)}})
    };
    let group = |n: i64| {
        let mut values: Vec<Value> = (1..=n).map(leaf).collect();
        values.push(json!({"type": "ExceptionGroup", "value": "import failed", "mechanism": {"type": "chained", "exception_id": 0, "is_exception_group": true}}));
        base(json!({"exception": {"values": values}}))
    };
    let single = base(json!({"exception": {"values": [
        {"type": "ValueError", "value": "row 1 is bad", "stacktrace": {"frames": t01_frames(1, 2, "/x", true)}}]}}));
    let threads = |idle: &str| {
        json!({"platform": "native", "threads": {"values": [
        {"id": 1, "crashed": false, "stacktrace": {"frames": [{"function": idle, "in_app": true}]}},
        {"id": 2, "crashed": true, "stacktrace": {"frames": [
            {"function": "main", "filename": "main.c", "in_app": true},
            {"function": "parse_config", "filename": "config.c", "in_app": true}]}}]}})
    };
    let msg = |logentry: Value| base(json!({"logentry": logentry}));
    check_pairs(&app, &[
        ("chain: the same chain", chain(Some("OSError")), chain(Some("OSError")), true),
        ("chain: a cause added", chain(None), chain(Some("OSError")), false),
        ("chain: another cause", chain(Some("OSError")), chain(Some("PermissionError")), false),
        ("group: N copies of one error", group(3), group(1), true),
        ("group: one error in a group is that error", group(2), single.clone(), true),
        ("threads: other threads do not matter", threads("poll"), threads("epoll_wait"), true),
        ("message: template wins over parameters",
            msg(json!({"message": "Payment %s failed", "params": ["7"], "formatted": "Payment 7 failed"})),
            msg(json!({"message": "Payment %s failed", "params": ["8"], "formatted": "Payment 8 failed"})), true),
        ("message: different templates",
            msg(json!({"message": "Payment %s failed", "params": ["7"], "formatted": "Payment 7 failed"})),
            msg(json!({"message": "Refund %s failed", "params": ["7"], "formatted": "Refund 7 failed"})), false),
        ("message: with an attached stack, the stack decides",
            base(json!({"logentry": {"formatted": "first"}, "stacktrace": {"frames": t01_frames(1, 2, "/x", true)}})),
            base(json!({"logentry": {"formatted": "second"}, "stacktrace": {"frames": t01_frames(3, 4, "/y", true)}})), true),
    ]).await;

    // Titles as shown in the issue list.
    let p = app.project("titles").await;
    let title_of = |issue: i64| {
        let pool = pool.clone();
        async move {
            sqlx::query_scalar::<_, String>("SELECT title FROM issue WHERE id = $1")
                .bind(issue)
                .fetch_one(&pool)
                .await
                .unwrap()
        }
    };
    let i = issue_of(&app, &p, &group(3)).await;
    assert!(
        title_of(i).await.starts_with("ValueError: row "),
        "a group of one error is titled by it"
    );
    let i = issue_of(&app, &p, &msg(json!({"message": "Payment %s failed for %s", "params": ["7", "bob"], "formatted": "Payment 7 failed for bob"}))).await;
    let j = issue_of(&app, &p, &msg(json!({"message": "Payment %s failed for %s", "params": ["8", "eve"], "formatted": "Payment 8 failed for eve"}))).await;
    assert_eq!(i, j);
    assert_eq!(
        title_of(i).await,
        "Payment %s failed for %s",
        "titled by the template"
    );
    let messages: Vec<(String,)> =
        sqlx::query_as("SELECT message FROM event WHERE issue_id = $1 ORDER BY message")
            .bind(i)
            .fetch_all(&pool)
            .await
            .unwrap();
    assert_eq!(
        messages,
        vec![
            ("Payment 7 failed for bob".into(),),
            ("Payment 8 failed for eve".into(),)
        ],
        "each event keeps its own formatted message"
    );
    let k = issue_of(
        &app,
        &p,
        &msg(json!({"formatted": "Cache warmed in 312ms"})),
    )
    .await;
    assert_eq!(title_of(k).await, "Cache warmed in 312ms");
}

#[sqlx::test]
async fn fingerprint_and_stack_rules_apply_before_hashing(pool: PgPool) {
    let app = start(pool.clone()).await;
    let p = app.project("rules").await;
    app.store
        .set_fingerprint_rules(
            p.id,
            "error.type:ConnectionError error.value:\"*timed out*\" -> gateway-timeouts title=\"Gateway timeouts in {{ transaction }}\"\n\
             tags.tenant:acme -> {{ default }}, acme",
        )
        .await
        .unwrap();
    app.store
        .set_stack_rules(
            p.id,
            "stack.function:assert* -group\nstack.module:django.* -app",
        )
        .await
        .unwrap();
    app.server.state.keys.invalidate_all();

    // A fingerprint rule merges across stacks and retitles the issue.
    let a = exc(
        "ConnectionError",
        "Read timed out (30s)",
        Some(t01_frames(1, 2, "/a", true)),
    );
    let mut b = exc("ConnectionError", "connect TIMED OUT", None);
    b["transaction"] = json!("/checkout");
    let ia = issue_of(&app, &p, &a).await;
    assert_eq!(ia, issue_of(&app, &p, &b).await);
    let title: String = sqlx::query_scalar("SELECT title FROM issue WHERE id = $1")
        .bind(ia)
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(title, "Gateway timeouts in /api/orders/{id}");
    // {{ default }} plus a value splits one tenant off.
    let mut acme = exc("KeyError", "'sku'", Some(t01_frames(1, 2, "/a", true)));
    acme["tags"] = json!({"tenant": "acme"});
    let plain = exc("KeyError", "'sku'", Some(t01_frames(1, 2, "/a", true)));
    assert!(!same(&app, &p, &acme, &plain).await);

    // Stack rules: assertion helpers do not split, framework frames are not the app.
    let with_helper = |helper: &str| {
        let mut frames = t01_frames(1, 2, "/a", true).as_array().unwrap().clone();
        frames.push(json!({"module": "shop.checks", "function": helper, "in_app": true}));
        exc("AssertionError", "", Some(Value::Array(frames)))
    };
    assert!(
        same(
            &app,
            &p,
            &with_helper("assert_positive"),
            &with_helper("assert_total")
        )
        .await
    );
    let framework = |mw: &str| {
        let mut frames = vec![
            json!({"module": format!("django.middleware.{mw}"), "function": "__call__", "in_app": true}),
        ];
        frames.extend(
            t01_frames(1, 2, "/a", true)
                .as_array()
                .unwrap()
                .iter()
                .cloned(),
        );
        exc("ValueError", "x", Some(Value::Array(frames)))
    };
    let csrf = framework("csrf");
    assert!(
        same(&app, &p, &csrf, &framework("security")).await,
        "a middleware marked -app no longer splits the in-app hash"
    );
    let issue = issue_of(&app, &p, &csrf).await;
    let latest = app.store.latest_event(issue).await.unwrap().unwrap();
    let info = latest.grouping.unwrap();
    assert!(
        info.to_string()
            .contains("marked out of app by stack trace rule (stack.module:django.* -app)"),
        "{info}"
    );
}

#[sqlx::test]
async fn grouping_configs_keep_issues_across_an_upgrade(pool: PgPool) {
    let app = start(pool.clone()).await;
    let p = app.project("legacy").await;
    let set_config = |id: &'static str| {
        let pool = pool.clone();
        async move {
            sqlx::query("UPDATE project SET grouping_config = $2 WHERE id = $1")
                .bind(p.id)
                .bind(id)
                .execute(&pool)
                .await
                .unwrap();
        }
    };
    let default_config: String =
        sqlx::query_scalar("SELECT grouping_config FROM project WHERE id = $1")
            .bind(p.id)
            .fetch_one(&pool)
            .await
            .unwrap();
    assert_eq!(
        default_config,
        snag::grouping::DEFAULT_CONFIG_ID,
        "new projects get the newest config"
    );

    // An event whose hash the 2026-12 fixes change (a Node module's top level).
    let node = |line: i64| {
        json!({"platform": "node", "exception": {"values": [{"type": "Error", "value": "boom", "stacktrace": {"frames": [
        {"module": "index", "function": "Object.<anonymous>", "lineno": line, "in_app": true},
        {"module": "lib", "function": "run", "lineno": 3, "in_app": true}]}}]}})
    };
    set_config("snag:2026-11").await;
    app.server.state.keys.invalidate_all();
    let old_issue = issue_of(&app, &p, &node(1)).await;
    assert_eq!(
        issue_of(&app, &p, &node(2)).await,
        old_issue,
        "the old config still groups as before"
    );

    // Transition: grouped by the new config, found through the old hash.
    set_config("snag:2026-12+snag:2026-11").await;
    app.server.state.keys.invalidate_all();
    assert_eq!(issue_of(&app, &p, &node(3)).await, old_issue);
    // After the transition the new hashes alone find the issue.
    set_config("snag:2026-12").await;
    app.server.state.keys.invalidate_all();
    assert_eq!(issue_of(&app, &p, &node(4)).await, old_issue);
    let issues: i64 = sqlx::query_scalar("SELECT count(*) FROM issue WHERE project_id = $1")
        .bind(p.id)
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(issues, 1);
}

#[sqlx::test]
async fn stack_rules_are_edited_in_project_settings(pool: PgPool) {
    let app = start(pool.clone()).await;
    let p = app.project("settings").await;
    let cookie = app.login("admin@example.com", "pw-123456789").await;
    let (status, page) = app
        .get_page(&format!("/projects/{}/settings", p.id), &cookie)
        .await;
    assert_eq!(status, 200);
    assert!(page.contains("Stack trace rules") && page.contains("name=\"stack_rules\""));
    assert!(
        page.contains("stack.module:sentry_sdk.* -group"),
        "built-in rules are listed"
    );
    let csrf = page
        .split("name=\"csrf\" value=\"")
        .nth(1)
        .unwrap()
        .split('"')
        .next()
        .unwrap()
        .to_string();
    let post = |rules: &str| {
        let form = vec![("csrf", csrf.clone()), ("stack_rules", rules.to_owned())];
        let req = app
            .client
            .post(app.url(&format!("/projects/{}/stack-rules", p.id)))
            .header("cookie", cookie.clone())
            .form(&form);
        async move { req.send().await.unwrap() }
    };
    let stored = || {
        let pool = pool.clone();
        async move {
            sqlx::query_scalar::<_, String>("SELECT stack_rules FROM project WHERE id = $1")
                .bind(p.id)
                .fetch_one(&pool)
                .await
                .unwrap()
        }
    };
    let bad = post("stack.module:django.* +ap").await;
    assert_eq!(bad.status(), 200);
    let body = bad.text().await.unwrap();
    assert!(
        body.contains("line 1") && body.contains("unknown flag"),
        "the parse error is shown"
    );
    assert!(
        body.contains("stack.module:django.* +ap"),
        "the text is kept for fixing"
    );
    assert_eq!(stored().await, "", "invalid rules are not saved");

    let good =
        post("# framework\r\nstack.module:django.* -app\r\nstack.function:assert* -group").await;
    assert_eq!(good.status(), 200);
    assert_eq!(
        stored().await,
        "# framework\nstack.module:django.* -app\nstack.function:assert* -group"
    );

    // They apply to new events at once.
    let with_helper = |helper: &str| {
        let mut frames = t01_frames(1, 2, "/a", true).as_array().unwrap().clone();
        frames.push(json!({"module": "shop.checks", "function": helper, "in_app": true}));
        exc("AssertionError", "", Some(Value::Array(frames)))
    };
    assert!(same(&app, &p, &with_helper("assert_a"), &with_helper("assert_b")).await);
}
