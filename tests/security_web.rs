//! Dashboard security: a table-driven authorization test that walks every
//! route as anonymous, member of another team, member and admin (with and
//! without a valid CSRF token, checking security headers on every answer);
//! session fixation; password hashing parameters; login throttling per
//! address; `javascript:` URLs in event data; per-project data scrubbing.

mod common;

use common::*;
use serde_json::json;
use snag::web::auth::{SESSION_COOKIE, csrf_token};
use sqlx::PgPool;

/// Who is asking. The column order of [`Route::expect`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Role {
    Anonymous,
    /// A member of a team that does not own the project.
    Outsider,
    /// A member of the owning team (organization role `member`).
    Member,
    /// An administrator.
    Admin,
}

const ROLES: [Role; 4] = [Role::Anonymous, Role::Outsider, Role::Member, Role::Admin];

/// What a role gets when it sends a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Expect {
    /// This exact status.
    Status(u16),
    /// A redirect to the login page (the anonymous answer for every page).
    Login,
}
use Expect::{Login, Status};

const fn st(code: u16) -> Expect {
    Status(code)
}

/// One row of the table. To cover a new route (the JSON API too), add a row:
/// the method, the path, the form (CSRF is added for POSTs), and what each
/// role must get. A route that is missing from the table fails
/// `every_router_route_is_in_the_table`.
struct Route {
    method: &'static str,
    path: String,
    form: Vec<(&'static str, String)>,
    expect: [Expect; 4],
    /// POSTs need the session's CSRF token (all but the login form, which
    /// checks the Origin instead).
    csrf: bool,
}

fn get(path: impl Into<String>, expect: [Expect; 4]) -> Route {
    Route {
        method: "GET",
        path: path.into(),
        form: Vec::new(),
        expect,
        csrf: false,
    }
}

fn post(path: impl Into<String>, form: &[(&'static str, &str)], expect: [Expect; 4]) -> Route {
    Route {
        method: "POST",
        path: path.into(),
        form: form.iter().map(|(k, v)| (*k, v.to_string())).collect(),
        expect,
        csrf: true,
    }
}

struct Fixture {
    app: TestApp,
    cookies: [Option<String>; 4],
    project_a: TestProject,
    issue_a: i64,
    issue_to_delete: i64,
    event_a: String,
    attachment_a: i64,
    key_a: i64,
    team_beta: i64,
    other_user: i64,
    webhook_a: i64,
    /// An API token of the admin's.
    token_admin: i64,
    invitation: i64,
}

async fn login(app: &TestApp, email: &str, password: &str) -> String {
    let r = app
        .client
        .post(app.url("/login"))
        .form(&[("email", email), ("password", password)])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303, "login of {email}");
    session_of(&r)
}

fn session_of(r: &reqwest::Response) -> String {
    let cookie = r.headers()["set-cookie"].to_str().unwrap();
    cookie.split(';').next().unwrap().to_string()
}

fn token_of(cookie: &str) -> &str {
    cookie.split_once('=').unwrap().1
}

async fn fixture(pool: &PgPool) -> Fixture {
    let app = start(pool.clone()).await;
    let project_a = app.project("alpha").await;
    let project_b = app.project("beta").await;
    let mut body = event_envelope(
        "a0000000000000000000000000000001",
        &error_event("AlphaSecretError", "only alpha may see this", "a"),
    );
    body.extend_from_slice(
        b"{\"type\":\"attachment\",\"length\":5,\"filename\":\"a.txt\"}\nhello\n",
    );
    assert_eq!(app.post_envelope(&project_a, body).await.status(), 200);
    let mut doomed = event_envelope(
        "a0000000000000000000000000000002",
        &error_event("DoomedError", "to be deleted", "d"),
    );
    doomed.extend_from_slice(
        b"{\"type\":\"attachment\",\"length\":4,\"filename\":\"d.txt\"}\ndoom\n",
    );
    doomed.extend_from_slice(
        b"{\"type\":\"user_report\"}\n{\"event_id\":\"a0000000000000000000000000000002\",\"name\":\"n\",\"comments\":\"c\"}\n",
    );
    assert_eq!(app.post_envelope(&project_a, doomed).await.status(), 200);
    let beta = event_envelope(
        "b0000000000000000000000000000001",
        &error_event("BetaError", "beta", "b"),
    );
    assert_eq!(app.post_envelope(&project_b, beta).await.status(), 200);
    let issue = |title: &'static str| {
        let pool = pool.clone();
        async move {
            sqlx::query_scalar::<_, i64>("SELECT id FROM issue WHERE title LIKE $1 || '%'")
                .bind(title)
                .fetch_one(&pool)
                .await
                .unwrap()
        }
    };
    let issue_a = issue("AlphaSecretError").await;
    let issue_to_delete = issue("DoomedError").await;
    let counts: (i64, i64) = sqlx::query_as(
        "SELECT (SELECT count(*) FROM attachment), (SELECT count(*) FROM user_report)",
    )
    .fetch_one(pool)
    .await
    .unwrap();
    assert_eq!(
        counts,
        (2, 1),
        "the doomed issue's attachment and report are stored"
    );
    let attachment_a: i64 = sqlx::query_scalar("SELECT id FROM attachment WHERE name = 'a.txt'")
        .fetch_one(pool)
        .await
        .unwrap();
    let key_a: i64 = sqlx::query_scalar("SELECT id FROM project_key WHERE project_id = $1")
        .bind(project_a.id)
        .fetch_one(pool)
        .await
        .unwrap();

    let admin = app.login("admin@example.com", "pw-123456789").await;
    let hash = snag::web::auth::hash_password("pw-123456789").unwrap();
    let member_id = app
        .store
        .create_user("member@example.com", &hash, false)
        .await
        .unwrap();
    let outsider_id = app
        .store
        .create_user("outsider@example.com", &hash, false)
        .await
        .unwrap();
    let other_user = app
        .store
        .create_user("other@example.com", &hash, false)
        .await
        .unwrap();
    let team_alpha = app.store.create_team("Alpha").await.unwrap();
    let team_beta = app.store.create_team("Beta").await.unwrap();
    app.store
        .set_team_member(team_alpha, member_id, true)
        .await
        .unwrap();
    app.store
        .set_team_member(team_beta, outsider_id, true)
        .await
        .unwrap();
    app.store
        .set_project_team(project_a.id, team_alpha, true)
        .await
        .unwrap();
    app.store
        .set_project_team(project_b.id, team_beta, true)
        .await
        .unwrap();
    let webhook_a = app
        .store
        .create_webhook(project_a.id, "http://127.0.0.1:9/hook")
        .await
        .unwrap();
    let admin_id: i64 =
        sqlx::query_scalar("SELECT id FROM users WHERE email = 'admin@example.com'")
            .fetch_one(pool)
            .await
            .unwrap();
    let (_, token) =
        snag::api::auth::create_token(&app.store, admin_id, "ci", &["project:read".to_string()])
            .await
            .unwrap();
    let invitation = app
        .store
        .create_invitation(
            "new-hire@example.com",
            "member",
            admin_id,
            "0".repeat(64).as_str(),
            3600,
        )
        .await
        .unwrap();
    let member = login(&app, "member@example.com", "pw-123456789").await;
    let outsider = login(&app, "outsider@example.com", "pw-123456789").await;
    Fixture {
        cookies: [None, Some(outsider), Some(member), Some(admin)],
        project_a,
        issue_a,
        issue_to_delete,
        event_a: "a0000000000000000000000000000001".into(),
        attachment_a,
        key_a,
        team_beta,
        other_user,
        webhook_a: webhook_a.id,
        token_admin: token.id,
        invitation,
        app,
    }
}

/// Every dashboard route with what each role gets.
fn table(f: &Fixture) -> Vec<Route> {
    let (p, i, e) = (f.project_a.id, f.issue_a, &f.event_a);
    let all = |s: u16| [st(s); 4];
    vec![
        get("/", [Login, st(303), st(303), st(303)]),
        get("/login", all(200)),
        Route {
            csrf: false,
            ..post(
                "/login",
                &[("email", "nobody@example.com"), ("password", "wrong")],
                all(401),
            )
        },
        get("/static/snag.css", all(200)),
        get("/static/snag.js", all(200)),
        get("/projects", [Login, st(200), st(200), st(200)]),
        get("/projects/new", [Login, st(403), st(403), st(200)]),
        get("/issues", [Login, st(200), st(200), st(200)]),
        get(
            format!("/projects/{p}/issues"),
            [Login, st(404), st(200), st(200)],
        ),
        get(
            format!("/projects/{p}/settings"),
            [Login, st(404), st(200), st(200)],
        ),
        get(format!("/issues/{i}"), [Login, st(404), st(200), st(200)]),
        get(
            format!("/issues/{i}/events"),
            [Login, st(404), st(200), st(200)],
        ),
        get(
            format!("/issues/{i}/events/{e}"),
            [Login, st(404), st(200), st(200)],
        ),
        get(
            format!("/issues/{i}/events/{e}/json"),
            [Login, st(404), st(200), st(200)],
        ),
        get(
            format!("/attachments/{}", f.attachment_a),
            [Login, st(404), st(200), st(200)],
        ),
        get("/issues/999999", [Login, st(404), st(404), st(404)]),
        get("/account", [Login, st(200), st(200), st(200)]),
        get("/users", [Login, st(403), st(403), st(200)]),
        get("/teams", [Login, st(403), st(403), st(200)]),
        post(
            format!("/issues/{i}/status"),
            &[("status", "resolved")],
            [Login, st(404), st(303), st(303)],
        ),
        post(
            format!("/issues/{i}/assign"),
            &[("assignee", "")],
            [Login, st(404), st(303), st(303)],
        ),
        post(
            format!("/issues/{i}/comments"),
            &[("text", "hi")],
            [Login, st(404), st(303), st(303)],
        ),
        post(
            "/issues/bulk",
            &[("action", "unresolve"), ("issue", &i.to_string())],
            [Login, st(404), st(303), st(303)],
        ),
        post(
            format!("/issues/{}/delete", f.issue_to_delete),
            &[],
            [Login, st(404), st(403), st(303)],
        ),
        post(
            "/projects/new",
            &[("name", "gamma")],
            [Login, st(403), st(403), st(303)],
        ),
        post(
            format!("/projects/{p}/settings"),
            &[("name", "alpha")],
            [Login, st(404), st(403), st(200)],
        ),
        post(
            format!("/projects/{p}/keys"),
            &[("label", "ci")],
            [Login, st(404), st(403), st(303)],
        ),
        post(
            format!("/projects/{p}/keys/{}", f.key_a),
            &[("action", "rate_limit"), ("rate_limit", "")],
            [Login, st(404), st(403), st(303)],
        ),
        post(
            format!("/projects/{p}/rules"),
            &[("rules", "")],
            [Login, st(404), st(403), st(200)],
        ),
        get(
            format!("/projects/{p}/alerts"),
            [Login, st(404), st(200), st(200)],
        ),
        post(
            format!("/projects/{p}/alert-rules"),
            &[("new_issue_enabled", "on")],
            [Login, st(404), st(403), st(200)],
        ),
        post(
            format!("/projects/{p}/webhooks"),
            &[("url", "http://127.0.0.1:9/other")],
            [Login, st(404), st(403), st(200)],
        ),
        post(
            format!("/projects/{p}/webhooks/{}", f.webhook_a),
            &[("action", "disable")],
            [Login, st(404), st(403), st(303)],
        ),
        post(
            format!("/projects/{p}/stack-rules"),
            &[("stack_rules", "stack.module:vendor.* -app")],
            [Login, st(404), st(403), st(200)],
        ),
        post(
            format!("/projects/{p}/scrubbing"),
            &[("scrub_data", "on"), ("scrub_defaults", "on")],
            [Login, st(404), st(403), st(200)],
        ),
        post(
            "/account",
            &[
                ("current", "wrong"),
                ("new", "n3w-password"),
                ("confirm", "n3w-password"),
            ],
            [Login, st(400), st(400), st(400)],
        ),
        post("/account/sessions", &[], [Login, st(200), st(200), st(200)]),
        post(
            "/account/alerts",
            &[("alerts_enabled", "on")],
            [Login, st(200), st(200), st(200)],
        ),
        post(
            "/account/tokens",
            &[("name", "mine"), ("scope", "project:read")],
            [Login, st(200), st(200), st(200)],
        ),
        // Only its owner may revoke a token.
        post(
            format!("/account/tokens/{}/revoke", f.token_admin),
            &[],
            [Login, st(404), st(404), st(303)],
        ),
        post(
            "/users",
            &[
                ("email", "new@example.com"),
                ("password", "pw-123456789"),
                ("role", "member"),
            ],
            [Login, st(403), st(403), st(303)],
        ),
        post(
            format!("/users/{}", f.other_user),
            &[("action", "enable")],
            [Login, st(403), st(403), st(303)],
        ),
        post(
            "/teams",
            &[("name", "Gamma")],
            [Login, st(403), st(403), st(303)],
        ),
        post(
            format!("/teams/{}", f.team_beta),
            &[
                ("action", "remove_member"),
                ("user_id", &f.other_user.to_string()),
            ],
            [Login, st(403), st(403), st(303)],
        ),
        get(
            format!("/projects/{p}/health"),
            [Login, st(404), st(200), st(200)],
        ),
        get(
            format!("/projects/{p}/monitors"),
            [Login, st(404), st(200), st(200)],
        ),
        get(
            format!("/projects/{p}/outcomes"),
            [Login, st(404), st(200), st(200)],
        ),
        post(
            format!("/projects/{p}/retention"),
            &[("retention_days", "30"), ("max_events", "")],
            [Login, st(404), st(403), st(303)],
        ),
        get("/password/forgot", all(200)),
        Route {
            csrf: false,
            ..post(
                "/password/forgot",
                &[("email", "nobody@example.com")],
                all(200),
            )
        },
        get("/password/reset/not-a-token", all(404)),
        Route {
            csrf: false,
            ..post(
                "/password/reset/not-a-token",
                &[("password", "pw-123456789"), ("confirm", "pw-123456789")],
                all(404),
            )
        },
        get("/invite/not-a-token", all(404)),
        Route {
            csrf: false,
            ..post(
                "/invite/not-a-token",
                &[("password", "pw-123456789"), ("confirm", "pw-123456789")],
                all(404),
            )
        },
        post(
            format!("/users/{}/reset-link", f.other_user),
            &[],
            [Login, st(403), st(403), st(200)],
        ),
        post(
            "/invitations",
            &[("email", "someone@example.com"), ("role", "member")],
            [Login, st(403), st(403), st(200)],
        ),
        post(
            format!("/invitations/{}/revoke", f.invitation),
            &[],
            [Login, st(403), st(403), st(303)],
        ),
        // Last: it ends the session.
        post("/logout", &[], [Login, st(303), st(303), st(303)]),
    ]
}

fn assert_security_headers(r: &reqwest::Response, what: &str) {
    let h = r.headers();
    let csp = h
        .get("content-security-policy")
        .unwrap_or_else(|| panic!("{what}: no CSP"))
        .to_str()
        .unwrap();
    for directive in [
        "default-src 'self'",
        "script-src 'self'",
        "object-src 'none'",
        "frame-ancestors 'none'",
        "base-uri 'none'",
        "form-action 'self'",
    ] {
        assert!(csp.contains(directive), "{what}: CSP lacks {directive}");
    }
    assert!(
        !csp.contains("unsafe-inline") && !csp.contains("unsafe-eval"),
        "{what}: {csp}"
    );
    assert_eq!(h["x-frame-options"], "DENY", "{what}");
    assert_eq!(h["x-content-type-options"], "nosniff", "{what}");
    assert_eq!(h["referrer-policy"], "same-origin", "{what}");
}

async fn send(
    f: &Fixture,
    route: &Route,
    cookie: Option<&str>,
    csrf: Option<String>,
) -> reqwest::Response {
    let url = f.app.url(&route.path);
    let mut request = match route.method {
        "GET" => f.app.client.get(url),
        _ => {
            let mut form = route.form.clone();
            if let Some(token) = csrf {
                form.push(("csrf", token));
            }
            f.app.client.post(url).form(&form)
        }
    };
    if let Some(c) = cookie {
        request = request.header("cookie", c);
    }
    request.send().await.unwrap()
}

#[sqlx::test]
async fn every_route_enforces_its_roles(pool: PgPool) {
    let f = fixture(&pool).await;
    let key = f.app.server.state.signing_key.clone();
    let routes = table(&f);
    let mut checked = 0;
    for route in &routes {
        let what = format!("{} {}", route.method, route.path);
        if route.csrf {
            // A forged form never gets through, whoever sends it.
            for (role, cookie) in ROLES.iter().zip(&f.cookies) {
                let Some(cookie) = cookie else { continue };
                let r = send(&f, route, Some(cookie), Some("forged".into())).await;
                let status = r.status().as_u16();
                assert_security_headers(&r, &what);
                assert!(
                    matches!(status, 403 | 404),
                    "{what} as {role:?} with a forged CSRF token: {status}"
                );
                let r = send(&f, route, Some(cookie), None).await;
                assert!(
                    r.status().is_client_error(),
                    "{what} as {role:?} without a CSRF token: {}",
                    r.status()
                );
                checked += 2;
            }
        }
        for (n, role) in ROLES.iter().enumerate() {
            let cookie = f.cookies[n].as_deref();
            let csrf = cookie.map(|c| csrf_token(&key, token_of(c)));
            let r = send(&f, route, cookie, csrf).await;
            let status = r.status().as_u16();
            assert_security_headers(&r, &what);
            match route.expect[n] {
                Status(expected) => assert_eq!(status, expected, "{what} as {role:?}"),
                Login => {
                    assert_eq!(status, 303, "{what} as {role:?}");
                    let location = r.headers()["location"].to_str().unwrap();
                    assert!(location.starts_with("/login?next="), "{what}: {location}");
                }
            }
            if *role == Role::Outsider && route.method == "GET" && status == 200 {
                let body = r.text().await.unwrap();
                assert!(
                    !body.contains("AlphaSecretError"),
                    "{what} leaks another team's issue"
                );
            }
            checked += 1;
        }
    }
    // The forbidden actions left no trace.
    let deleted: bool = sqlx::query_scalar("SELECT NOT EXISTS (SELECT 1 FROM issue WHERE id = $1)")
        .bind(f.issue_to_delete)
        .fetch_one(&pool)
        .await
        .unwrap();
    assert!(deleted, "the admin's delete went through");
    // With its events, their attachments and their user reports.
    for (table, sql) in [
        (
            "event",
            "SELECT count(*) FROM event WHERE event_id = 'a0000000-0000-0000-0000-000000000002'",
        ),
        (
            "attachment",
            "SELECT count(*) FROM attachment WHERE event_id = 'a0000000-0000-0000-0000-000000000002'",
        ),
        (
            "user_report",
            "SELECT count(*) FROM user_report WHERE event_id = 'a0000000-0000-0000-0000-000000000002'",
        ),
    ] {
        let left: i64 = sqlx::query_scalar(sql).fetch_one(&pool).await.unwrap();
        assert_eq!(left, 0, "{table} rows of the deleted issue remain");
    }
    let kept: i64 = sqlx::query_scalar("SELECT count(*) FROM attachment")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(kept, 1, "other issues keep their attachments");
    let projects: i64 = sqlx::query_scalar("SELECT count(*) FROM project WHERE name = 'gamma'")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(projects, 1, "only the admin created a project");
    let comments: i64 = sqlx::query_scalar("SELECT count(*) FROM activity WHERE kind = 'note'")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(comments, 2, "member and admin commented, nobody else");
    eprintln!("authorization: {} routes, {checked} requests", routes.len());
}

/// The table must name every route the router serves, so a new route
/// cannot go unchecked.
#[sqlx::test]
async fn every_router_route_is_in_the_table(pool: PgPool) {
    let f = fixture(&pool).await;
    let routes = table(&f);
    let dir = format!("{}/src/web", env!("CARGO_MANIFEST_DIR"));
    let source: String = std::fs::read_dir(&dir)
        .unwrap()
        .map(|entry| std::fs::read_to_string(entry.unwrap().path()).unwrap())
        .collect();
    let ids = [
        ("{project_id}", f.project_a.id.to_string()),
        ("{issue_id}", f.issue_a.to_string()),
        ("{event_id}", f.event_a.clone()),
        ("{attachment_id}", f.attachment_a.to_string()),
        ("{key_id}", f.key_a.to_string()),
        ("{team_id}", f.team_beta.to_string()),
        ("{user_id}", f.other_user.to_string()),
        ("{token_id}", f.token_admin.to_string()),
        ("{webhook_id}", f.webhook_a.to_string()),
        ("{id}", f.invitation.to_string()),
        ("{token}", "not-a-token".to_string()),
    ];
    let mut missing = Vec::new();
    for line in source.lines().filter(|l| l.contains(".route(")) {
        let Some(path) = line.split('"').nth(1) else {
            continue;
        };
        let methods: Vec<&str> = ["get(", "post("]
            .into_iter()
            .filter(|m| line.contains(m))
            .map(|m| if m == "get(" { "GET" } else { "POST" })
            .collect();
        let pattern = |p: &str| {
            let mut p = p.to_string();
            for (name, value) in &ids {
                p = p.replace(name, value);
            }
            p
        };
        for method in methods {
            let concrete = pattern(path);
            let covered = routes.iter().any(|r| {
                r.method == method
                    && (r.path == concrete
                        || (path.contains("{issue_id}")
                            && r.path
                                == concrete.replace(
                                    &f.issue_a.to_string(),
                                    &f.issue_to_delete.to_string(),
                                )))
            });
            if !covered {
                missing.push(format!("{method} {path}"));
            }
        }
    }
    // Multi-line `.route(` calls name the path on the next line.
    for window in source.lines().collect::<Vec<_>>().windows(3) {
        if window[0].trim() == ".route(" {
            let path = window[1].trim().trim_matches(|c| c == '"' || c == ',');
            for method in ["GET", "POST"] {
                let call = if method == "GET" { "get(" } else { "post(" };
                if window[2].contains(call) {
                    let mut concrete = path.to_string();
                    for (name, value) in &ids {
                        concrete = concrete.replace(name, value);
                    }
                    if !routes
                        .iter()
                        .any(|r| r.method == method && r.path == concrete)
                    {
                        missing.push(format!("{method} {path}"));
                    }
                }
            }
        }
    }
    assert!(
        missing.is_empty(),
        "routes missing from the authorization table: {missing:?}"
    );
}

#[sqlx::test]
async fn login_issues_a_fresh_session_and_logout_ends_it(pool: PgPool) {
    let app = start(pool).await;
    let hash = snag::web::auth::hash_password("pw-123456789").unwrap();
    app.store
        .create_user("ann@example.com", &hash, false)
        .await
        .unwrap();
    // An attacker plants a session id in the victim's browser.
    let planted = format!("{SESSION_COOKIE}={}", "f".repeat(64));
    let r = app
        .client
        .post(app.url("/login"))
        .header("cookie", &planted)
        .form(&[("email", "ann@example.com"), ("password", "pw-123456789")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303);
    let set_cookie = r.headers()["set-cookie"].to_str().unwrap().to_string();
    for attribute in ["HttpOnly", "SameSite=Lax", "Path=/"] {
        assert!(set_cookie.contains(attribute), "{set_cookie}");
    }
    let session = session_of(&r);
    assert_ne!(session, planted, "the session id must change at login");
    assert!(token_of(&session).len() >= 64, "session ids carry 256 bits");
    let (status, _) = app.get_page("/projects", &planted).await;
    assert_eq!(status, 303, "the planted id is no session");
    let (status, _) = app.get_page("/projects", &session).await;
    assert_eq!(status, 200);

    // Logging in again gives another id; each login is its own session.
    let again = login(&app, "ann@example.com", "pw-123456789").await;
    assert_ne!(again, session);

    // Logging out ends the session on the server, not just in the browser.
    let csrf = csrf_token(&app.server.state.signing_key, token_of(&session));
    let r = app
        .client
        .post(app.url("/logout"))
        .header("cookie", &session)
        .form(&[("csrf", csrf.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303);
    assert!(
        r.headers()["set-cookie"]
            .to_str()
            .unwrap()
            .contains("Max-Age=0")
    );
    let (status, _) = app.get_page("/projects", &session).await;
    assert_eq!(status, 303, "a logged-out session id still worked");
    let (status, _) = app.get_page("/projects", &again).await;
    assert_eq!(status, 200, "other sessions are unaffected");

    // Behind HTTPS the cookie is Secure.
    let mut config = test_config();
    config.base_url = "https://snag.example".into();
    assert!(config.secure_cookies());
    assert!(snag::web::auth::session_cookie("t", config.secure_cookies(), 60).contains("; Secure"));
}

#[sqlx::test]
async fn passwords_are_stored_as_argon2id_with_owasp_parameters(pool: PgPool) {
    let app = start(pool.clone()).await;
    let admin = app.login("admin@example.com", "pw-123456789").await;
    let (_, page) = app.get_page("/users", &admin).await;
    let csrf = page
        .split("name=\"csrf\" value=\"")
        .nth(1)
        .unwrap()
        .split('"')
        .next()
        .unwrap()
        .to_string();
    for email in ["one@example.com", "two@example.com"] {
        let r = app
            .client
            .post(app.url("/users"))
            .header("cookie", &admin)
            .form(&[
                ("csrf", csrf.as_str()),
                ("email", email),
                ("password", "same-password-1"),
                ("role", "member"),
            ])
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 303);
    }
    let hashes: Vec<String> = sqlx::query_scalar(
        "SELECT password_hash FROM users WHERE email IN ('one@example.com', 'two@example.com')",
    )
    .fetch_all(&pool)
    .await
    .unwrap();
    assert_eq!(hashes.len(), 2);
    assert_ne!(hashes[0], hashes[1], "every hash has its own salt");
    for hash in &hashes {
        assert!(!hash.contains("same-password-1"));
        // $argon2id$v=19$m=19456,t=2,p=1$<salt>$<hash>
        let parts: Vec<&str> = hash.split('$').collect();
        assert_eq!(parts[1], "argon2id", "{hash}");
        assert_eq!(parts[2], "v=19", "{hash}");
        let params: std::collections::HashMap<&str, u32> = parts[3]
            .split(',')
            .map(|kv| {
                let (k, v) = kv.split_once('=').unwrap();
                (k, v.parse().unwrap())
            })
            .collect();
        // OWASP's minimum for argon2id: 19 MiB, 2 iterations, 1 lane.
        assert!(params["m"] >= 19 * 1024, "{hash}");
        assert!(params["t"] >= 2, "{hash}");
        assert!(params["p"] >= 1, "{hash}");
        let b64 = |s: &str| s.len() * 3 / 4;
        assert!(b64(parts[4]) >= 16, "salt of at least 16 bytes: {hash}");
        assert!(b64(parts[5]) >= 32, "32-byte hash: {hash}");
    }
}

#[sqlx::test]
async fn login_is_throttled_per_client_address(pool: PgPool) {
    let mut config = test_config();
    config.trusted_proxies = vec![snag::config::IpNet::parse("127.0.0.1").unwrap()];
    let app = start_with(pool, config).await;
    let hash = snag::web::auth::hash_password("right-password").unwrap();
    app.store
        .create_user("real@example.com", &hash, false)
        .await
        .unwrap();
    let attempt = |from: &'static str, email: String, password: &'static str| {
        let app = &app;
        async move {
            app.client
                .post(app.url("/login"))
                .header("x-forwarded-for", from)
                .form(&[("email", email.as_str()), ("password", password)])
                .send()
                .await
                .unwrap()
                .status()
                .as_u16()
        }
    };
    // Spraying: one guess each for fifty accounts from one address.
    for n in 0..50 {
        assert_eq!(
            attempt("203.0.113.7", format!("user{n}@example.com"), "guess").await,
            401
        );
    }
    assert_eq!(
        attempt("203.0.113.7", "real@example.com".into(), "right-password").await,
        429,
        "the spraying address is throttled"
    );
    assert_eq!(
        attempt("198.51.100.1", "real@example.com".into(), "right-password").await,
        303,
        "other addresses are not"
    );
    // Typing an address's key as the email cannot lock that address out.
    for _ in 0..60 {
        attempt("198.51.100.2", "ip:198.51.100.3".into(), "x").await;
    }
    assert_eq!(
        attempt("198.51.100.3", "real@example.com".into(), "right-password").await,
        303
    );
}

#[sqlx::test]
async fn javascript_urls_in_events_are_never_live_links(pool: PgPool) {
    let app = start(pool.clone()).await;
    let project = app.project("links").await;
    let payloads = [
        "javascript:alert(1)",
        "JaVaScRiPt:alert(2)",
        " javascript:alert(3)",
        "java\tscript:alert(4)",
        "data:text/html,<script>alert(5)</script>",
        "vbscript:msgbox(6)",
    ];
    for (n, url) in payloads.iter().enumerate() {
        let mut event = error_event("LinkError", &format!("case {n}"), "click");
        event["request"] = json!({
            "url": url,
            "method": "GET",
            "headers": [["Referer", url], ["Location", url]],
            "query_string": format!("next={url}"),
        });
        event["user"] = json!({"id": "1", "email": url, "username": url});
        event["breadcrumbs"] = json!({"values": [
            {"category": "navigation", "data": {"from": url, "to": url}},
            {"category": "http", "data": {"url": url, "method": "GET"}}
        ]});
        event["contexts"] = json!({"browser": {"name": url}});
        event["exception"]["values"][0]["stacktrace"]["frames"][1]["abs_path"] = json!(url);
        event["tags"] = json!({"url": url});
        let r = app
            .post_envelope(&project, event_envelope(&format!("{:032x}", n + 1), &event))
            .await;
        assert_eq!(r.status(), 200);
    }
    let cookie = app.login("admin@example.com", "pw-123456789").await;
    let issue: i64 = sqlx::query_scalar("SELECT id FROM issue")
        .fetch_one(&pool)
        .await
        .unwrap();
    let mut pages = vec![
        format!("/issues/{issue}"),
        format!("/issues/{issue}/events"),
        format!("/projects/{}/issues", project.id),
        "/issues".to_string(),
    ];
    for n in 0..payloads.len() {
        pages.push(format!("/issues/{issue}/events/{:032x}", n + 1));
    }
    for path in &pages {
        let (status, page) = app.get_page(path, &cookie).await;
        assert_eq!(status, 200, "{path}");
        let lower = page.to_ascii_lowercase();
        for attr in ["href=", "src=", "action=", "formaction=", "srcdoc="] {
            for value in lower.split(attr).skip(1) {
                let value = value.trim_start_matches(['"', '\'', ' ']);
                let value: String = value
                    .chars()
                    .filter(|c| !c.is_whitespace())
                    .take(16)
                    .collect();
                for scheme in ["javascript", "vbscript", "data:"] {
                    assert!(
                        !value.starts_with(scheme) && !value.starts_with("&#"),
                        "{path}: {attr}{value}"
                    );
                }
            }
        }
        assert!(!page.contains("<script>alert"), "{path}");
    }
    // The text itself is still shown, so the user sees what was sent.
    let (_, page) = app
        .get_page(&format!("/issues/{issue}/events/{:032x}", 1), &cookie)
        .await;
    assert!(page.contains("javascript:alert(1)"));
}

#[sqlx::test]
async fn scrubbing_is_applied_on_ingest_and_configurable_per_project(pool: PgPool) {
    let app = start(pool.clone()).await;
    let project = app.project("scrub").await;
    let admin = app.login("admin@example.com", "pw-123456789").await;
    let csrf = csrf_token(&app.server.state.signing_key, token_of(&admin));
    let sensitive = |n: u32| {
        let mut event = error_event("ScrubError", "card 4111 1111 1111 1111 declined", "pay");
        event["request"] = json!({
            "url": "https://user:hunter2@shop.example/pay?password=pw1&card=1&ok=yes",
            "method": "POST",
            "headers": [["Authorization", "Bearer abc.def"], ["Cookie", "sessionid=s3cr3t; theme=dark"],
                        ["X-Api-Key", "k-123"], ["User-Agent", "curl"]],
            "cookies": {"sessionid": "s3cr3t", "theme": "dark"},
            "data": {"username": "ann", "password": "hunter2", "cc": "5500-0000-0000-0004",
                     "nested": {"api_token": "t0k", "iban": "DE89370400440532013000", "ssn": "078-05-1120"}},
            "env": {"REMOTE_ADDR": "198.51.100.9"},
        });
        event["user"] = json!({"id": "7", "ip_address": "198.51.100.9"});
        event["exception"]["values"][0]["stacktrace"]["frames"][1]["vars"] = json!({"password": "hunter2", "secret_key": "sk", "card_number": "4242424242424242", "amount": 12, "session_id": "abc"});
        event["extra"] = json!({"mysql_pwd": "x", "private_key": "-----BEGIN RSA PRIVATE KEY-----\nMII\n-----END RSA PRIVATE KEY-----"});
        (format!("{n:032x}"), event)
    };
    let stored = |id: String| {
        let store = app.store.clone();
        let project_id = project.id;
        async move {
            let row = store
                .event(project_id, id.parse().unwrap())
                .await
                .unwrap()
                .unwrap();
            serde_json::to_string(&row.data).unwrap()
        }
    };
    let secrets = [
        "hunter2",
        "Bearer abc.def",
        "s3cr3t",
        "k-123",
        "t0k",
        "4111 1111 1111 1111",
        "5500-0000-0000-0004",
        "4242424242424242",
        "pw1",
        "sk\"",
        "BEGIN RSA PRIVATE KEY",
    ];

    // Defaults: every secret is filtered, harmless values stay.
    let (id, event) = sensitive(1);
    assert_eq!(
        app.post_envelope(&project, event_envelope(&id, &event))
            .await
            .status(),
        200
    );
    let text = stored(id).await;
    for secret in secrets {
        assert!(!text.contains(secret), "{secret} survived: {text}");
    }
    assert!(text.contains("[Filtered]"));
    // Cookies are all treated as sensitive (session ids hide under any
    // name); the names stay so the reader sees what was sent.
    assert!(text.contains("[\"theme\",\"[Filtered]\"]"), "{text}");
    for kept in [
        "ann",
        "curl",
        "DE89370400440532013000",
        "198.51.100.9",
        "\"amount\":\"12\"",
    ] {
        assert!(text.contains(kept), "{kept} was scrubbed: {text}");
    }

    // The settings page shows the section and saves it.
    let (_, page) = app
        .get_page(&format!("/projects/{}/settings", project.id), &admin)
        .await;
    assert!(page.contains("Data scrubbing") && page.contains("name=\"sensitive_fields\""));
    let r = app
        .client
        .post(app.url(&format!("/projects/{}/scrubbing", project.id)))
        .header("cookie", &admin)
        .form(&[
            ("csrf", csrf.as_str()),
            ("scrub_data", "on"),
            ("scrub_defaults", "on"),
            ("scrub_ip", "on"),
            ("sensitive_fields", "iban\nssn"),
            ("safe_fields", "session_id"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let page = r.text().await.unwrap();
    assert!(page.contains("Data scrubbing saved"));
    assert!(page.contains("iban\nssn") && page.contains(">session_id</textarea>"));
    let (id, event) = sensitive(2);
    assert_eq!(
        app.post_envelope(&project, event_envelope(&id, &event))
            .await
            .status(),
        200
    );
    let text = stored(id).await;
    for gone in [
        "DE89370400440532013000",
        "078-05-1120",
        "198.51.100.9",
        "hunter2",
    ] {
        assert!(!text.contains(gone), "{gone} survived: {text}");
    }
    assert!(
        text.contains("\"session_id\":\"abc\""),
        "a safe field is kept: {text}"
    );

    // Switched off, the event is stored as sent.
    let r = app
        .client
        .post(app.url(&format!("/projects/{}/scrubbing", project.id)))
        .header("cookie", &admin)
        .form(&[
            ("csrf", csrf.as_str()),
            ("sensitive_fields", ""),
            ("safe_fields", ""),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let (id, event) = sensitive(3);
    assert_eq!(
        app.post_envelope(&project, event_envelope(&id, &event))
            .await
            .status(),
        200
    );
    let text = stored(id).await;
    assert!(
        text.contains("hunter2") && text.contains("s3cr3t"),
        "{text}"
    );

    // Bad lists are refused with a message.
    let r = app
        .client
        .post(app.url(&format!("/projects/{}/scrubbing", project.id)))
        .header("cookie", &admin)
        .form(&[
            ("csrf", csrf.as_str()),
            ("sensitive_fields", "x".repeat(101).as_str()),
            ("safe_fields", ""),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
}

#[sqlx::test]
async fn login_from_a_foreign_page_is_refused(pool: PgPool) {
    let app = start(pool).await;
    let hash = snag::web::auth::hash_password("pw-123456789").unwrap();
    app.store
        .create_user("ann@example.com", &hash, false)
        .await
        .unwrap();
    let attempt = |headers: Vec<(&'static str, String)>| {
        let app = &app;
        async move {
            let mut r = app
                .client
                .post(app.url("/login"))
                .form(&[("email", "ann@example.com"), ("password", "pw-123456789")]);
            for (k, v) in headers {
                r = r.header(k, v);
            }
            let r = r.send().await.unwrap();
            (r.status().as_u16(), r.headers().contains_key("set-cookie"))
        }
    };
    for foreign in [
        vec![("origin", "https://evil.example".to_string())],
        vec![("origin", "null".to_string())],
        vec![("sec-fetch-site", "cross-site".to_string())],
    ] {
        assert_eq!(attempt(foreign).await, (403, false));
    }
    assert_eq!(
        attempt(vec![("origin", app.base.clone())]).await,
        (303, true)
    );
    assert_eq!(
        attempt(vec![("sec-fetch-site", "same-origin".into())]).await,
        (303, true)
    );
}

#[sqlx::test]
async fn login_accepts_the_host_the_browser_used(pool: PgPool) {
    let app = start(pool).await;
    let hash = snag::web::auth::hash_password("pw-123456789").unwrap();
    app.store
        .create_user("ann@example.com", &hash, false)
        .await
        .unwrap();
    let port = app.server.addr.port();
    let r = app
        .client
        .post(app.url("/login"))
        .header("host", format!("localhost:{port}"))
        .header("origin", format!("http://localhost:{port}"))
        .form(&[("email", "ann@example.com"), ("password", "pw-123456789")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303);
    let r = app
        .client
        .post(app.url("/login"))
        .header("host", format!("localhost:{port}"))
        .header("origin", format!("http://evil.example:{port}"))
        .form(&[("email", "ann@example.com"), ("password", "pw-123456789")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
}

/// The other forms anyone may post (no session, so no CSRF token) refuse
/// foreign pages too: an invitation accepted from an attacker's page would
/// log the visitor into the attacker's account.
#[sqlx::test]
async fn anonymous_forms_refuse_foreign_pages(pool: PgPool) {
    let app = start(pool.clone()).await;
    let hash = snag::web::auth::hash_password("pw-123456789").unwrap();
    let admin = app
        .store
        .create_user("admin@example.com", &hash, true)
        .await
        .unwrap();
    let token = "f".repeat(64);
    app.store
        .create_invitation(
            "new@example.com",
            "member",
            admin,
            &snag::web::auth::token_hash(&token),
            3600,
        )
        .await
        .unwrap();
    let invite = format!("/invite/{token}");
    let form = [
        ("password", "pw-123456789"),
        ("confirm", "pw-123456789"),
        ("name", "New"),
    ];
    for path in ["/password/forgot", invite.as_str()] {
        let r = app
            .client
            .post(app.url(path))
            .header("origin", "https://evil.example")
            .form(
                &[("email", "admin@example.com")]
                    .iter()
                    .chain(&form)
                    .collect::<Vec<_>>(),
            )
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 403, "{path}");
    }
    let r = app
        .client
        .post(app.url(&invite))
        .header("origin", app.base.clone())
        .form(&form)
        .send()
        .await
        .unwrap();
    assert_eq!(
        r.status(),
        303,
        "the invitation still works from our own page"
    );
}
