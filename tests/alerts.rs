//! Alert rules, recipients, opt-outs, frequency alerts and webhooks against
//! the real worker. A small HTTP server in the test receives the webhooks
//! and checks their signatures. (Email through a real SMTP server is in
//! sdk-compat-tests/test_alerts.py.)

mod common;

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use common::*;
use hmac::{Hmac, KeyInit, Mac};
use serde_json::{Value, json};
use sha2::Sha256;
use sqlx::PgPool;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// A received request: headers and raw body.
type Hit = (HeaderMap, Vec<u8>);

/// Requests a webhook URL received; the first `failures` answer 500.
#[derive(Clone, Default)]
struct Receiver {
    hits: Arc<Mutex<Vec<Hit>>>,
    failures: Arc<AtomicUsize>,
}

impl Receiver {
    async fn start(failures: usize) -> (String, Self) {
        let receiver = Receiver::default();
        receiver.failures.store(failures, Ordering::SeqCst);
        let router = axum::Router::new()
            .route("/hook", axum::routing::post(hook))
            .with_state(receiver.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/hook", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, router).await });
        (url, receiver)
    }

    fn count(&self) -> usize {
        self.hits.lock().unwrap().len()
    }

    fn payloads(&self) -> Vec<(HeaderMap, Value)> {
        self.hits
            .lock()
            .unwrap()
            .iter()
            .map(|(h, b)| (h.clone(), serde_json::from_slice(b).unwrap()))
            .collect()
    }

    /// Every request so far carries a valid signature over its raw body.
    fn verify_all(&self, secret: &str) {
        for (headers, body) in self.hits.lock().unwrap().iter() {
            let timestamp = headers["x-snag-timestamp"].to_str().unwrap();
            let age = chrono::Utc::now().timestamp() - timestamp.parse::<i64>().unwrap();
            assert!((0..120).contains(&age), "a fresh timestamp");
            let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(secret.as_bytes()).unwrap();
            mac.update(timestamp.as_bytes());
            mac.update(b".");
            mac.update(body);
            let hex: String = mac
                .finalize()
                .into_bytes()
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect();
            assert_eq!(
                headers["x-snag-signature"].to_str().unwrap(),
                format!("sha256={hex}")
            );
            assert_eq!(headers["content-type"], "application/json");
        }
    }

    async fn wait_for(&self, n: usize) {
        let deadline = std::time::Instant::now() + Duration::from_secs(15);
        while self.count() < n {
            assert!(
                std::time::Instant::now() < deadline,
                "{} webhook requests, waited for {n}",
                self.count()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

async fn hook(
    State(r): State<Receiver>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> (StatusCode, &'static str) {
    r.hits.lock().unwrap().push((headers, body.to_vec()));
    let failing = r
        .failures
        .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
        .is_ok();
    if failing {
        (StatusCode::INTERNAL_SERVER_ERROR, "receiver down")
    } else {
        (StatusCode::OK, "ok")
    }
}

/// Polls until the query returns true.
async fn wait_until(pool: &PgPool, sql: &str) {
    let deadline = std::time::Instant::now() + Duration::from_secs(15);
    loop {
        let done: bool = sqlx::query_scalar(sqlx::AssertSqlSafe(sql.to_string()))
            .fetch_one(pool)
            .await
            .unwrap();
        if done {
            return;
        }
        assert!(std::time::Instant::now() < deadline, "timed out: {sql}");
        tokio::time::sleep(Duration::from_millis(50)).await;
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

async fn post_form(
    app: &TestApp,
    cookie: &str,
    path: &str,
    form: &[(&str, &str)],
) -> reqwest::Response {
    app.client
        .post(app.url(path))
        .header("cookie", cookie)
        .form(form)
        .send()
        .await
        .unwrap()
}

async fn send(app: &TestApp, project: &TestProject, n: u32, event: &Value) {
    let r = app
        .post_envelope(project, event_envelope(&format!("{n:032x}"), event))
        .await;
    assert_eq!(r.status(), 200);
}

async fn issue_id(pool: &PgPool, title_prefix: &str) -> i64 {
    sqlx::query_scalar("SELECT id FROM issue WHERE title LIKE $1 || '%'")
        .bind(title_prefix)
        .fetch_one(pool)
        .await
        .unwrap()
}

#[sqlx::test]
async fn webhooks_get_signed_alerts_with_retries(pool: PgPool) {
    let app = start(pool.clone()).await;
    let project = app.project("shop").await;
    let cookie = app.login("admin@example.com", "pw-123456789").await;
    let (url, receiver) = Receiver::start(1).await;
    let settings = format!("/projects/{}/settings", project.id);
    let (_, page) = app.get_page(&settings, &cookie).await;
    let csrf = csrf_of(&page);
    let hooks = format!("/projects/{}/webhooks", project.id);
    let r = post_form(
        &app,
        &cookie,
        &hooks,
        &[("csrf", &csrf), ("url", "ftp://nope/")],
    )
    .await;
    assert_eq!(r.status(), 400, "only http(s) URLs");
    let r = post_form(&app, &cookie, &hooks, &[("csrf", &csrf), ("url", &url)]).await;
    assert_eq!(r.status(), 200);
    let page = r.text().await.unwrap();
    let secret: String = sqlx::query_scalar("SELECT secret FROM webhook")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert!(
        page.contains(&url) && page.contains(&secret),
        "owners see the secret to verify with"
    );

    send(
        &app,
        &project,
        1,
        &error_event("PaymentDeclined", "card expired", "charge"),
    )
    .await;
    let issue = issue_id(&pool, "PaymentDeclined").await;
    // The receiver is "down" for the first attempt: the delivery retries,
    // and the deliveries page says why.
    wait_until(
        &pool,
        "SELECT EXISTS (SELECT 1 FROM alert_outbox WHERE channel = 'webhook' AND attempts = 1)",
    )
    .await;
    let (status, deliveries) = app
        .get_page(
            &format!("/projects/{}/alerts?state=retrying", project.id),
            &cookie,
        )
        .await;
    assert_eq!(status, 200);
    assert!(
        deliveries.contains("delivery-retrying") && deliveries.contains("HTTP 500: receiver down")
    );
    assert!(deliveries.contains(&url));
    let (_, all) = app
        .get_page(&format!("/projects/{}/alerts", project.id), &cookie)
        .await;
    assert!(
        all.contains("email is not configured"),
        "the email row is recorded as skipped"
    );
    // Skip the 30-second backoff.
    sqlx::query("UPDATE alert_outbox SET next_attempt_at = now() WHERE channel = 'webhook'")
        .execute(&pool)
        .await
        .unwrap();
    receiver.wait_for(2).await;
    wait_until(
        &pool,
        "SELECT EXISTS (SELECT 1 FROM alert_outbox WHERE channel = 'webhook' AND status = 'sent')",
    )
    .await;
    receiver.verify_all(&secret);
    let payloads = receiver.payloads();
    let (headers, body) = &payloads[1];
    assert_eq!(
        headers["x-snag-delivery"], payloads[0].0["x-snag-delivery"],
        "a retry is the same delivery"
    );
    assert!(
        body["text"]
            .as_str()
            .unwrap()
            .starts_with("*New issue* in shop: <")
    );
    assert!(
        body["text"]
            .as_str()
            .unwrap()
            .contains("PaymentDeclined: card expired")
    );
    assert_eq!(
        body["alerts"][0]["issue"]["url"],
        format!("{}/issues/{issue}", app.base)
    );
    assert_eq!(body["alerts"][0]["issue"]["short_id"], "SHOP-1");
    assert_eq!(body["alerts"][0]["issue"]["release"], "app@1.0");
    assert!(
        body["alerts"][0]["stacktrace"][0]
            .as_str()
            .unwrap()
            .starts_with("app/jobs.py:42 in charge")
    );

    // The same issue again: no alert. Resolved, then seen again: one
    // regression alert.
    send(
        &app,
        &project,
        2,
        &error_event("PaymentDeclined", "card expired", "charge"),
    )
    .await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(receiver.count(), 2);
    app.store
        .resolve_issue(issue, snag::store::Resolution::Now, None)
        .await
        .unwrap();
    send(
        &app,
        &project,
        3,
        &error_event("PaymentDeclined", "card expired", "charge"),
    )
    .await;
    receiver.wait_for(3).await;
    receiver.verify_all(&secret);
    assert_eq!(receiver.payloads()[2].1["kind"], "regression");

    wait_until(
        &pool,
        "SELECT count(*) = 2 FROM alert_outbox WHERE channel = 'webhook' AND status = 'sent'",
    )
    .await;
    let metrics = app
        .client
        .get(app.url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains("snag_alerts_retried_total{channel=\"webhook\"} 1"),
        "{metrics}"
    );
    assert!(metrics.contains("snag_alerts_failed_total{channel=\"webhook\"} 0"));
    assert!(
        metrics.contains("snag_alerts_sent_total{channel=\"webhook\"} 2"),
        "{metrics}"
    );

    // A turned-off webhook gets nothing; a deleted one takes its rows along.
    let id: i64 = sqlx::query_scalar("SELECT id FROM webhook")
        .fetch_one(&pool)
        .await
        .unwrap();
    let r = post_form(
        &app,
        &cookie,
        &format!("{hooks}/{id}"),
        &[("csrf", &csrf), ("action", "disable")],
    )
    .await;
    assert_eq!(r.status(), 303);
    send(
        &app,
        &project,
        4,
        &error_event("TimeoutError", "slow", "fetch"),
    )
    .await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(receiver.count(), 3);
    let r = post_form(
        &app,
        &cookie,
        &format!("{hooks}/{id}"),
        &[("csrf", &csrf), ("action", "delete")],
    )
    .await;
    assert_eq!(r.status(), 303);
    let left: i64 =
        sqlx::query_scalar("SELECT count(*) FROM alert_outbox WHERE channel = 'webhook'")
            .fetch_one(&pool)
            .await
            .unwrap();
    assert_eq!(left, 0);
}

#[sqlx::test]
async fn rules_are_edited_in_settings_and_filter_at_delivery(pool: PgPool) {
    let app = start(pool.clone()).await;
    let project = app.project("shop").await;
    let cookie = app.login("admin@example.com", "pw-123456789").await;
    let (url, receiver) = Receiver::start(0).await;
    app.store.create_webhook(project.id, &url).await.unwrap();
    let settings = format!("/projects/{}/settings", project.id);
    let (_, page) = app.get_page(&settings, &cookie).await;
    let rules_form = page
        .split("/alert-rules\"")
        .nth(1)
        .and_then(|f| f.split("</form>").next())
        .expect("the alert rules form");
    assert_eq!(
        rules_form.matches(" checked>").count(),
        4,
        "every rule is on by default"
    );
    assert!(page.contains("name=\"frequency_threshold\" value=\"100\""));
    let csrf = csrf_of(&page);
    let rules = format!("/projects/{}/alert-rules", project.id);
    // Members see the rules but only owners and admins change them.
    let hash = snag::web::auth::hash_password("pw-123456789").unwrap();
    app.store
        .create_user("dev@example.com", &hash, false)
        .await
        .unwrap();
    let r = post_form(
        &app,
        "",
        "/login",
        &[("email", "dev@example.com"), ("password", "pw-123456789")],
    )
    .await;
    let member = r.headers()["set-cookie"].to_str().unwrap();
    let member = member.split(';').next().unwrap().to_string();
    let (status, member_page) = app.get_page(&settings, &member).await;
    assert_eq!(status, 200);
    let secret: String = sqlx::query_scalar("SELECT secret FROM webhook")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert!(
        page.contains(&secret) && !member_page.contains(&secret),
        "secrets are for owners and admins"
    );
    let r = post_form(&app, &member, &rules, &[("csrf", &csrf_of(&member_page))]).await;
    assert_eq!(r.status(), 403);
    let r = post_form(
        &app,
        &cookie,
        &rules,
        &[("csrf", &csrf), ("frequency_threshold", "0")],
    )
    .await;
    assert_eq!(r.status(), 400);
    assert!(
        r.text()
            .await
            .unwrap()
            .contains("the event count must be a number")
    );
    let r = post_form(
        &app,
        &cookie,
        &rules,
        &[
            ("csrf", &csrf),
            ("new_issue_enabled", "on"),
            ("new_issue_min_level", "error"),
            ("new_issue_environment", "prod"),
            ("escalating_enabled", "on"),
            ("frequency_enabled", "on"),
            ("frequency_threshold", "50"),
            ("frequency_window", "15"),
        ],
    )
    .await;
    assert_eq!(r.status(), 200);
    let page = r.text().await.unwrap();
    assert!(page.contains("Alert rules saved."));
    assert!(page.contains("<option value=\"error\" selected>"));
    assert!(page.contains("name=\"new_issue_environment\" value=\"prod\""));
    assert!(page.contains("name=\"frequency_threshold\" value=\"50\""));
    assert!(!page.contains("name=\"regression_enabled\" aria-label=\"A resolved issue is seen again (regression)\" checked"));
    let stored = app.store.alert_rules(project.id).await.unwrap();
    assert!(!stored[1].enabled && stored[3].window_minutes == 15);

    let mut warning = error_event("LowDiskWarning", "90% full", "check");
    warning["level"] = json!("warning");
    warning["environment"] = json!("prod");
    send(&app, &project, 1, &warning).await;
    let mut staging = error_event("StagingOnly", "x", "f");
    staging["environment"] = json!("staging");
    send(&app, &project, 2, &staging).await;
    let mut prod = error_event("ProdCrash", "x", "g");
    prod["environment"] = json!("prod");
    send(&app, &project, 3, &prod).await;
    receiver.wait_for(1).await;
    wait_until(
        &pool,
        "SELECT count(*) = 4 FROM alert_outbox WHERE status = 'filtered'",
    )
    .await;
    let reasons: Vec<(String, String, String)> = sqlx::query_as(
        "SELECT i.title, o.channel, o.last_error FROM alert_outbox o JOIN issue i ON i.id = o.issue_id
          WHERE o.status = 'filtered' ORDER BY o.id",
    )
    .fetch_all(&pool)
    .await
    .unwrap();
    for (title, _, reason) in &reasons {
        match title.split(':').next().unwrap() {
            "LowDiskWarning" => assert_eq!(reason, "level warning is below error"),
            "StagingOnly" => assert_eq!(reason, "environment staging is not prod"),
            other => panic!("{other} was filtered"),
        }
    }
    assert_eq!(
        reasons.iter().filter(|(_, c, _)| c == "webhook").count(),
        2,
        "webhooks obey the same rules"
    );
    tokio::time::sleep(Duration::from_millis(500)).await;
    let payloads = receiver.payloads();
    assert_eq!(payloads.len(), 1);
    assert!(
        payloads[0].1["text"]
            .as_str()
            .unwrap()
            .contains("ProdCrash")
    );
    assert_eq!(payloads[0].1["alerts"][0]["issue"]["environment"], "prod");

    // The regression rule is off.
    let crash = issue_id(&pool, "ProdCrash").await;
    app.store
        .resolve_issue(crash, snag::store::Resolution::Now, None)
        .await
        .unwrap();
    send(&app, &project, 4, &prod).await;
    wait_until(
        &pool,
        "SELECT count(*) = 2 FROM alert_outbox WHERE kind = 'regression' AND status = 'filtered'
            AND last_error = 'the regression rule is off'",
    )
    .await;
    assert_eq!(receiver.count(), 1);
    let (_, deliveries) = app
        .get_page(
            &format!("/projects/{}/alerts?state=filtered", project.id),
            &cookie,
        )
        .await;
    assert!(
        deliveries.contains("the regression rule is off") && deliveries.contains("StagingOnly")
    );
    assert!(!deliveries.contains("delivery-sent"));
    let (status, _) = app
        .get_page(
            &format!("/projects/{}/alerts?state=bogus", project.id),
            &cookie,
        )
        .await;
    assert_eq!(status, 400);
}

#[sqlx::test]
async fn frequency_rules_raise_one_alert_per_cool_down(pool: PgPool) {
    let app = start(pool.clone()).await;
    let project = app.project("shop").await;
    let quiet = app.project("quiet").await;
    let (url, receiver) = Receiver::start(0).await;
    app.store.create_webhook(project.id, &url).await.unwrap();
    let mut rule = snag::store::alerts::AlertRule::default_for("frequency");
    rule.threshold = 3;
    rule.window_minutes = 10;
    app.store.set_alert_rule(project.id, &rule).await.unwrap();
    rule.enabled = false;
    app.store.set_alert_rule(quiet.id, &rule).await.unwrap();

    let mut n = 0;
    let mut burst = |project: &TestProject, title: &str, count: usize| {
        let events: Vec<(u32, Value)> = (0..count)
            .map(|_| {
                n += 1;
                (n, error_event(title, "x", title))
            })
            .collect();
        let project = TestProject {
            id: project.id,
            key: project.key.clone(),
            dsn: String::new(),
        };
        let app = &app;
        async move {
            for (n, e) in events {
                send(app, &project, n, &e).await;
            }
        }
    };
    burst(&project, "HotLoop", 4).await;
    burst(&project, "Lukewarm", 3).await;
    burst(&project, "Snoozed", 5).await;
    burst(&quiet, "QuietHot", 5).await;
    let snoozed = issue_id(&pool, "Snoozed").await;
    app.store
        .ignore_issue(snoozed, snag::store::IgnoreUntil::Forever, None)
        .await
        .unwrap();

    let raised = || async {
        sqlx::query_scalar::<_, String>(
            "SELECT i.title FROM alert_outbox o JOIN issue i ON i.id = o.issue_id
              WHERE o.kind = 'frequency' AND o.channel = 'email' ORDER BY i.title",
        )
        .fetch_all(&pool)
        .await
        .unwrap()
    };
    // The worker evaluates the rules too (one process at a time), so this
    // retries while it holds the lock.
    for _ in 0..50 {
        app.store.raise_frequency_alerts(1800).await.unwrap();
        if !raised().await.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let raised = raised().await;
    assert_eq!(raised.len(), 1, "{raised:?}");
    assert!(
        raised[0].starts_with("HotLoop"),
        "more than 3 events; not 3, not ignored, not a rule that is off"
    );
    assert_eq!(
        app.store.raise_frequency_alerts(1800).await.unwrap(),
        0,
        "once per cool-down"
    );
    burst(&project, "HotLoop", 2).await;
    assert_eq!(app.store.raise_frequency_alerts(1800).await.unwrap(), 0);

    wait_until(
        &pool,
        "SELECT EXISTS (SELECT 1 FROM alert_outbox WHERE kind = 'frequency' AND channel = 'webhook' AND status = 'sent')",
    )
    .await;
    let texts: Vec<String> = receiver
        .payloads()
        .iter()
        .map(|(_, p)| p["text"].as_str().unwrap().to_string())
        .collect();
    assert!(
        texts.iter().any(|t| t
            .starts_with("*Frequent: seen more than 3 times in 10 minutes* in shop")
            && t.contains("HotLoop")),
        "{texts:?}"
    );
}

#[sqlx::test]
async fn recipients_are_team_members_minus_opt_outs(pool: PgPool) {
    let app = start(pool.clone()).await;
    let project = app.project("shop").await;
    let other = app.project("backend").await;
    let admin = app.login("admin@example.com", "pw-123456789").await;
    let hash = snag::web::auth::hash_password("pw-123456789").unwrap();
    let mut ids = Vec::new();
    for email in ["ana@example.com", "bo@example.com", "cy@example.com"] {
        ids.push(app.store.create_user(email, &hash, false).await.unwrap());
    }
    let recipients = |id: i64| {
        let store = app.store.clone();
        async move { store.alert_recipients(id).await.unwrap() }
    };
    assert_eq!(
        recipients(project.id).await,
        [
            "admin@example.com",
            "ana@example.com",
            "bo@example.com",
            "cy@example.com"
        ],
        "no team owns it: the whole organization"
    );
    let team = app.store.create_team("Payments").await.unwrap();
    app.store.set_team_member(team, ids[0], true).await.unwrap();
    app.store.set_team_member(team, ids[1], true).await.unwrap();
    app.store
        .set_project_team(project.id, team, true)
        .await
        .unwrap();
    assert_eq!(
        recipients(project.id).await,
        ["ana@example.com", "bo@example.com"]
    );
    assert_eq!(recipients(other.id).await.len(), 4);

    // Ana opts out of shop in her account settings.
    let ana = {
        let r = post_form(
            &app,
            "",
            "/login",
            &[("email", "ana@example.com"), ("password", "pw-123456789")],
        )
        .await;
        r.headers()["set-cookie"]
            .to_str()
            .unwrap()
            .split(';')
            .next()
            .unwrap()
            .to_string()
    };
    let (_, page) = app.get_page("/account", &ana).await;
    assert!(page.contains(&format!(
        "name=\"project\" value=\"{}\" checked",
        project.id
    )));
    let csrf = csrf_of(&page);
    let backend = other.id.to_string();
    let r = post_form(
        &app,
        &ana,
        "/account/alerts",
        &[
            ("csrf", &csrf),
            ("alerts_enabled", "on"),
            ("project", &backend),
        ],
    )
    .await;
    assert_eq!(r.status(), 200);
    let page = r.text().await.unwrap();
    assert!(page.contains("Alert settings saved."));
    assert!(
        page.contains(&format!("name=\"project\" value=\"{}\">", project.id)),
        "shop unticked"
    );
    assert_eq!(recipients(project.id).await, ["bo@example.com"]);
    assert!(
        recipients(other.id)
            .await
            .contains(&"ana@example.com".to_string())
    );
    let r = post_form(&app, &ana, "/account/alerts", &[("csrf", "forged")]).await;
    assert_eq!(r.status(), 403);

    // Bo turns alert email off altogether, then on again.
    let bo = {
        let r = post_form(
            &app,
            "",
            "/login",
            &[("email", "bo@example.com"), ("password", "pw-123456789")],
        )
        .await;
        r.headers()["set-cookie"]
            .to_str()
            .unwrap()
            .split(';')
            .next()
            .unwrap()
            .to_string()
    };
    let (_, page) = app.get_page("/account", &bo).await;
    let csrf = csrf_of(&page);
    let shop = project.id.to_string();
    let r = post_form(
        &app,
        &bo,
        "/account/alerts",
        &[("csrf", &csrf), ("project", &shop), ("project", &backend)],
    )
    .await;
    assert_eq!(r.status(), 200);
    assert!(recipients(project.id).await.is_empty());
    assert!(
        !recipients(other.id)
            .await
            .contains(&"bo@example.com".to_string())
    );
    post_form(
        &app,
        &bo,
        "/account/alerts",
        &[
            ("csrf", &csrf),
            ("alerts_enabled", "on"),
            ("project", &shop),
        ],
    )
    .await;
    assert_eq!(recipients(project.id).await, ["bo@example.com"]);
    assert!(
        !recipients(other.id)
            .await
            .contains(&"bo@example.com".to_string()),
        "backend unticked"
    );

    // Disabled users get nothing.
    app.store.set_user_active(ids[1], false).await.unwrap();
    assert!(recipients(project.id).await.is_empty());

    // Cy, outside the team, cannot see the project's deliveries.
    let cy = {
        let r = post_form(
            &app,
            "",
            "/login",
            &[("email", "cy@example.com"), ("password", "pw-123456789")],
        )
        .await;
        r.headers()["set-cookie"]
            .to_str()
            .unwrap()
            .split(';')
            .next()
            .unwrap()
            .to_string()
    };
    let (status, _) = app
        .get_page(&format!("/projects/{}/alerts", project.id), &cy)
        .await;
    assert_eq!(status, 404);
    let (status, _) = app
        .get_page(&format!("/projects/{}/alerts", project.id), &admin)
        .await;
    assert_eq!(status, 200);
}
