//! The Sentry-compatible Web API: tokens and scopes, every endpoint, access
//! control, errors, pagination. Every response the suite receives is
//! validated against the served OpenAPI document (see [`Spec`]).

mod common;

use common::*;
use reqwest::Method;
use serde_json::{Value, json};
use snag::api::auth;
use sqlx::PgPool;
use std::sync::LazyLock;

// ---- the OpenAPI document as a test oracle ----

struct Spec {
    doc: Value,
    /// (template, its segments) for every documented path.
    paths: Vec<(String, Vec<String>)>,
}

static SPEC: LazyLock<Spec> = LazyLock::new(|| {
    let doc: Value = serde_json::from_str(snag::api::OPENAPI).expect("openapi.json is JSON");
    let paths = doc["paths"]
        .as_object()
        .unwrap()
        .keys()
        .map(|t| (t.clone(), segments(t)))
        .collect();
    Spec { doc, paths }
});

fn segments(path: &str) -> Vec<String> {
    path.split('/').map(str::to_string).collect()
}

impl Spec {
    /// The documented template a concrete path matches; the one with the
    /// most literal segments wins (`…/events/{id}/json/` over `…/{id}/`).
    fn template(&self, path: &str) -> Option<&str> {
        let given = segments(path);
        self.paths
            .iter()
            .filter(|(_, t)| {
                t.len() == given.len()
                    && t.iter().zip(&given).all(|(t, g)| {
                        if t.starts_with('{') {
                            !g.is_empty()
                        } else {
                            t == g
                        }
                    })
            })
            .max_by_key(|(_, t)| t.iter().filter(|s| !s.starts_with('{')).count())
            .map(|(t, _)| t.as_str())
    }

    fn resolve<'a>(&'a self, v: &'a Value) -> &'a Value {
        match v.get("$ref").and_then(Value::as_str) {
            Some(r) => self
                .doc
                .pointer(r.trim_start_matches('#'))
                .unwrap_or_else(|| panic!("dangling $ref {r}")),
            None => v,
        }
    }

    fn validator(&self, schema: &Value) -> jsonschema::Validator {
        let mut root = schema.clone();
        if !root.is_object() || root.get("$ref").is_some() {
            root = json!({"allOf": [schema]});
        }
        root["components"] = self.doc["components"].clone();
        root["$schema"] = json!("https://json-schema.org/draft/2020-12/schema");
        jsonschema::options()
            .should_validate_formats(true)
            .build(&root)
            .unwrap_or_else(|e| panic!("schema does not compile: {e}\n{schema}"))
    }

    /// Panics unless the response is one the document describes for this
    /// method and path: status, body schema, and a `Link` header where the
    /// document requires one.
    fn check(&self, method: &Method, path: &str, resp: &Resp) {
        let template = self
            .template(path)
            .unwrap_or_else(|| panic!("{method} {path}: path not in openapi.json"));
        let item = &self.doc["paths"][template];
        let status = resp.status.to_string();
        let response = if resp.status == 405 {
            &self.doc["components"]["responses"]["MethodNotAllowed"]
        } else {
            let op = item
                .get(method.as_str().to_ascii_lowercase())
                .unwrap_or_else(|| panic!("{method} {template}: operation not in openapi.json"));
            self.resolve(op["responses"].get(&status).unwrap_or_else(|| {
                panic!(
                    "{method} {template}: status {status} not documented; body {}",
                    resp.body
                )
            }))
        };
        match response.pointer("/content/application~1json/schema") {
            Some(schema) => {
                let validator = self.validator(schema);
                let errors: Vec<String> = validator
                    .iter_errors(&resp.body)
                    .map(|e| format!("{} at {}", e, e.instance_path()))
                    .take(5)
                    .collect();
                assert!(
                    errors.is_empty(),
                    "{method} {path} -> {status}: response does not match openapi.json:\n{}\nbody: {}",
                    errors.join("\n"),
                    serde_json::to_string_pretty(&resp.body).unwrap()
                );
            }
            None => assert!(
                resp.body.is_null(),
                "{method} {path} -> {status}: documented without a body, got {}",
                resp.body
            ),
        }
        if let Some(headers) = response.get("headers").and_then(Value::as_object) {
            for (name, header) in headers {
                let header = self.resolve(header);
                let value = resp
                    .headers
                    .get(name.as_str())
                    .unwrap_or_else(|| panic!("{method} {path}: missing {name} header"))
                    .to_str()
                    .unwrap()
                    .to_string();
                let schema = &header["schema"];
                assert!(
                    self.validator(schema).is_valid(&json!(value)),
                    "{method} {path}: {name} header {value:?} does not match {schema}"
                );
            }
        }
    }
}

// ---- client ----

#[derive(Debug)]
struct Resp {
    status: u16,
    headers: reqwest::header::HeaderMap,
    body: Value,
}

impl Resp {
    fn link(&self) -> String {
        self.headers
            .get("link")
            .map(|v| v.to_str().unwrap().to_string())
            .unwrap_or_default()
    }

    /// The `cursor` of the `rel="next"` link when it has results.
    fn next_cursor(&self) -> Option<String> {
        let link = self.link();
        let next = link.split(", <").find(|l| l.contains("rel=\"next\""))?;
        if !next.contains("results=\"true\"") {
            return None;
        }
        Some(
            next.split("cursor=\"")
                .nth(1)?
                .split('"')
                .next()?
                .to_string(),
        )
    }

    fn detail(&self) -> &str {
        self.body["detail"].as_str().unwrap_or("")
    }
}

struct Api {
    app: TestApp,
}

impl Api {
    async fn raw(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> Resp {
        let mut req = self.app.client.request(method, self.app.url(path));
        if let Some(token) = token {
            req = req.bearer_auth(token);
        }
        if let Some(body) = body {
            req = req.json(&body);
        }
        let r = req.send().await.unwrap();
        let status = r.status().as_u16();
        let headers = r.headers().clone();
        let text = r.text().await.unwrap();
        let body = if text.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text)
                .unwrap_or_else(|_| panic!("{path} -> {status}: not JSON: {text}"))
        };
        if !text.is_empty() {
            let ct = headers
                .get("content-type")
                .map(|v| v.to_str().unwrap().to_string())
                .unwrap_or_default();
            assert!(
                ct.starts_with("application/json"),
                "{path}: content-type {ct}"
            );
        }
        Resp {
            status,
            headers,
            body,
        }
    }

    /// A request whose response must match the OpenAPI document.
    async fn call(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> Resp {
        let resp = self.raw(method.clone(), path, token, body).await;
        let path_only = path.split('?').next().unwrap();
        // Paths without the trailing slash are the same operation.
        let documented = if path_only.ends_with('/') || path_only.ends_with(".json") {
            path_only.to_string()
        } else {
            format!("{path_only}/")
        };
        SPEC.check(&method, &documented, &resp);
        resp
    }

    async fn get(&self, path: &str, token: &str) -> Resp {
        self.call(Method::GET, path, Some(token), None).await
    }

    async fn put(&self, path: &str, token: &str, body: Value) -> Resp {
        self.call(Method::PUT, path, Some(token), Some(body)).await
    }

    async fn post(&self, path: &str, token: &str, body: Value) -> Resp {
        self.call(Method::POST, path, Some(token), Some(body)).await
    }

    async fn delete(&self, path: &str, token: &str) -> Resp {
        self.call(Method::DELETE, path, Some(token), None).await
    }

    async fn user(&self, email: &str, admin: bool) -> i64 {
        let hash = snag::web::auth::hash_password("pw-123456789").unwrap();
        self.app
            .store
            .create_user(email, &hash, admin)
            .await
            .unwrap()
    }

    async fn token(&self, user_id: i64, scopes: &[&str]) -> String {
        let scopes: Vec<String> = scopes.iter().map(|s| s.to_string()).collect();
        auth::create_token(&self.app.store, user_id, "test", &scopes)
            .await
            .unwrap()
            .0
    }

    async fn send(&self, project: &TestProject, n: u32, event: &Value) -> String {
        let id = format!("{n:032x}");
        let r = self
            .app
            .post_envelope(project, event_envelope(&id, event))
            .await;
        assert_eq!(r.status(), 200);
        id
    }

    async fn issue_ids(&self) -> Vec<i64> {
        sqlx::query_scalar("SELECT id FROM issue ORDER BY id")
            .fetch_all(self.app.store.pool())
            .await
            .unwrap()
    }
}

const ALL: [&str; 10] = auth::SCOPES;

/// An admin with an all-scopes token and one project called `shop`.
async fn setup(pool: PgPool) -> (Api, String, TestProject) {
    let api = Api {
        app: start(pool).await,
    };
    let admin = api.user("admin@example.com", true).await;
    let token = api.token(admin, &ALL).await;
    let project = api.app.project("shop").await;
    (api, token, project)
}

fn rich_event(exc: &str, value: &str, function: &str) -> Value {
    let mut e = error_event(exc, value, function);
    e["breadcrumbs"] = json!({"values": [{"timestamp": 1_700_000_000.0, "category": "http", "message": "GET /cart"}]});
    e["request"] = json!({"url": "https://shop.example/cart", "method": "POST",
                          "headers": {"Authorization": "Bearer secret", "Accept": "text/html"}});
    e["contexts"] = json!({"runtime": {"name": "CPython", "version": "3.12.1"}});
    e["sdk"] = json!({"name": "sentry.python", "version": "2.75.0"});
    e["environment"] = json!("production");
    e
}

// ---- document ----

#[sqlx::test]
async fn openapi_document_is_served_and_describes_every_operation(pool: PgPool) {
    let (api, _, _) = setup(pool).await;
    let r = api
        .call(Method::GET, "/api/0/openapi.json", None, None)
        .await;
    assert_eq!(r.status, 200);
    assert_eq!(r.body, SPEC.doc);
    assert_eq!(r.body["openapi"], "3.1.0");
    let mut operations = 0;
    for (template, item) in SPEC.doc["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap() {
            if method == "parameters" {
                continue;
            }
            operations += 1;
            assert!(
                op["x-required-scopes"].is_array(),
                "{method} {template} lacks x-required-scopes"
            );
            for response in op["responses"].as_object().unwrap().values() {
                if let Some(schema) = SPEC
                    .resolve(response)
                    .pointer("/content/application~1json/schema")
                {
                    SPEC.validator(schema);
                }
            }
        }
    }
    assert!(operations >= 40, "{operations} operations");
    for schema in SPEC.doc["components"]["schemas"]
        .as_object()
        .unwrap()
        .values()
    {
        SPEC.validator(schema);
    }
}

// ---- tokens ----

#[sqlx::test]
async fn tokens_authenticate_are_stored_hashed_and_can_be_revoked(pool: PgPool) {
    let (api, _, _) = setup(pool.clone()).await;
    let user = api.user("dev@example.com", false).await;
    let (token, row) = auth::create_token(
        &api.app.store,
        user,
        "ci",
        &["event:read".to_string(), "org:read".to_string()],
    )
    .await
    .unwrap();
    assert!(token.starts_with("sntryu_"));
    let stored: (String, Vec<String>, String) =
        sqlx::query_as("SELECT token_hash, scopes, token_last_chars FROM api_token WHERE id = $1")
            .bind(row.id)
            .fetch_one(&pool)
            .await
            .unwrap();
    assert_eq!(stored.0, auth::token_hash(&token));
    assert_ne!(stored.0, token);
    assert!(!stored.0.contains(&token[7..]));
    assert_eq!(stored.1, ["org:read", "event:read"]);
    assert_eq!(stored.2, &token[token.len() - 4..]);

    let me = api.get("/api/0/", &token).await;
    assert_eq!(me.status, 200);
    assert_eq!(me.body["user"]["email"], "dev@example.com");
    assert_eq!(me.body["auth"]["scopes"], json!(["org:read", "event:read"]));
    let used: Option<chrono::DateTime<chrono::Utc>> =
        sqlx::query_scalar("SELECT last_used_at FROM api_token WHERE id = $1")
            .bind(row.id)
            .fetch_one(&pool)
            .await
            .unwrap();
    assert!(used.is_some());

    let anonymous = api.call(Method::GET, "/api/0/", None, None).await;
    assert_eq!(anonymous.status, 200);
    assert_eq!(anonymous.body["user"], Value::Null);

    let no_token = api
        .call(Method::GET, "/api/0/organizations/default/", None, None)
        .await;
    assert_eq!(no_token.status, 401);
    assert_eq!(
        no_token.detail(),
        "Authentication credentials were not provided."
    );
    assert_eq!(no_token.headers["www-authenticate"], "Bearer");
    for bad in ["sntryu_0000", "", &token[..token.len() - 1]] {
        let r = api.get("/api/0/organizations/default/", bad).await;
        assert_eq!(r.status, 401, "{bad:?}");
    }
    let basic = api
        .app
        .client
        .get(api.app.url("/api/0/organizations/default/"))
        .header("authorization", format!("Basic {token}"))
        .send()
        .await
        .unwrap();
    assert_eq!(basic.status(), 401);
    let bad = api.get("/api/0/", "sntryu_nope").await;
    assert_eq!((bad.status, bad.detail()), (401, "Invalid token"));

    // Disabling the user disables the token; so does revoking it.
    api.app.store.set_user_active(user, false).await.unwrap();
    assert_eq!(api.get("/api/0/organizations/", &token).await.status, 401);
    api.app.store.set_user_active(user, true).await.unwrap();
    assert_eq!(api.get("/api/0/organizations/", &token).await.status, 200);
    assert!(
        api.app
            .store
            .revoke_api_token(user + 1000, row.id)
            .await
            .is_err()
    );
    api.app.store.revoke_api_token(user, row.id).await.unwrap();
    assert_eq!(api.get("/api/0/organizations/", &token).await.status, 401);
}

/// Fills a template's path parameters with fixtures that exist.
fn concrete(template: &str, issue: i64, event: &str) -> String {
    template
        .replace("{org}", "default")
        .replace("{project}", "shop")
        .replace("{issue_id}", &issue.to_string())
        .replace("{event_id}", event)
        .replace("{version}", "app@1.0")
}

/// Every documented operation: 401 without a token, 403 with a token that
/// holds every scope except those that grant what the operation needs.
#[sqlx::test]
async fn every_operation_enforces_its_scopes(pool: PgPool) {
    let (api, _, project) = setup(pool).await;
    let event = api
        .send(&project, 1, &error_event("KeyError", "sku", "price"))
        .await;
    let issue = api.issue_ids().await[0];
    let admin = api
        .app
        .store
        .user_by_email("admin@example.com")
        .await
        .unwrap()
        .unwrap();
    // Write implies read within one area, and only there.
    let writer = api.token(admin.id, &["event:write"]).await;
    assert_eq!(
        api.get(&format!("/api/0/issues/{issue}/"), &writer)
            .await
            .status,
        200
    );
    assert_eq!(
        api.get("/api/0/projects/default/shop/", &writer)
            .await
            .status,
        403
    );
    let admin_token = api.token(admin.id, &["project:admin"]).await;
    assert_eq!(
        api.get("/api/0/projects/default/shop/", &admin_token)
            .await
            .status,
        200
    );
    // Destructive operations run below (with enough scope), so they come last.
    let mut checked = 0;
    for (template, item) in SPEC.doc["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap() {
            let needed: Vec<&str> = match op.get("x-required-scopes").and_then(Value::as_array) {
                Some(list) => list.iter().filter_map(Value::as_str).collect(),
                None => continue,
            };
            if needed.is_empty() {
                continue;
            }
            let path = concrete(template, issue, &event);
            let method = Method::from_bytes(method.to_uppercase().as_bytes()).unwrap();
            let body = matches!(method, Method::POST | Method::PUT).then(|| json!({}));
            let r = api.call(method.clone(), &path, None, body.clone()).await;
            assert_eq!(r.status, 401, "{method} {path} without a token");
            let lacking: Vec<&str> = ALL
                .iter()
                .copied()
                .filter(|held| !needed.iter().any(|n| auth::grants(held, n)))
                .collect();
            let token = api.token(admin.id, &lacking).await;
            let r = api.call(method.clone(), &path, Some(&token), body).await;
            assert_eq!(
                r.status, 403,
                "{method} {path} with {lacking:?}: {}",
                r.body
            );
            assert!(r.detail().contains(needed[0]), "{}", r.detail());
            // And the first listed scope alone is enough.
            let enough = api.token(admin.id, &[needed[0]]).await;
            let body = matches!(method, Method::POST | Method::PUT).then(|| json!({}));
            let r = api.call(method.clone(), &path, Some(&enough), body).await;
            assert!(
                ![401, 403].contains(&r.status),
                "{method} {path} with {needed:?}: {} {}",
                r.status,
                r.body
            );
            checked += 1;
        }
    }
    assert!(checked >= 38, "{checked}");
}

// ---- organizations and projects ----

#[sqlx::test]
async fn organizations_projects_and_keys(pool: PgPool) {
    let (api, token, project) = setup(pool).await;
    let orgs = api.get("/api/0/organizations/", &token).await;
    assert_eq!(orgs.body[0]["slug"], "default");
    let org = api.get("/api/0/organizations/default/", &token).await;
    assert_eq!(
        (org.status, org.body["name"].as_str()),
        (200, Some("Default"))
    );
    assert_eq!(
        api.get("/api/0/organizations/nope/", &token).await.status,
        404
    );

    let projects = api
        .get("/api/0/organizations/default/projects/", &token)
        .await;
    assert_eq!(projects.body.as_array().unwrap().len(), 1);
    assert_eq!(projects.body[0]["slug"], "shop");
    assert_eq!(projects.body[0]["id"], project.id.to_string());

    let by_slug = api.get("/api/0/projects/default/shop/", &token).await;
    assert_eq!(by_slug.body["organization"]["slug"], "default");
    assert_eq!(by_slug.body["platform"], "python");
    let by_id = api
        .get(&format!("/api/0/projects/default/{}/", project.id), &token)
        .await;
    assert_eq!(by_id.body["slug"], "shop");
    assert_eq!(
        api.get("/api/0/projects/default/nope/", &token)
            .await
            .status,
        404
    );
    assert_eq!(
        api.get("/api/0/projects/other/shop/", &token).await.status,
        404
    );
    // Without the trailing slash too.
    assert_eq!(
        api.get("/api/0/projects/default/shop", &token).await.status,
        200
    );

    let updated = api
        .put(
            "/api/0/projects/default/shop/",
            &token,
            json!({"name": "Shop API", "slug": "shop-api", "platform": null}),
        )
        .await;
    assert_eq!(updated.status, 200, "{}", updated.body);
    assert_eq!(updated.body["name"], "Shop API");
    assert_eq!(updated.body["slug"], "shop-api");
    assert_eq!(updated.body["platform"], Value::Null);
    let stored = api.app.store.project(project.id).await.unwrap().unwrap();
    assert_eq!(
        (stored.name.as_str(), stored.slug.as_str()),
        ("Shop API", "shop-api")
    );
    for bad in [
        json!({"slug": "Bad Slug"}),
        json!({"slug": "123"}),
        json!({"name": ""}),
        json!({"isBookmarked": true}),
    ] {
        let r = api
            .put("/api/0/projects/default/shop-api/", &token, bad.clone())
            .await;
        assert_eq!(r.status, 400, "{bad}: {}", r.body);
    }
    api.app.project("taken").await;
    let clash = api
        .put(
            "/api/0/projects/default/shop-api/",
            &token,
            json!({"slug": "taken"}),
        )
        .await;
    assert_eq!(clash.status, 400);
    assert!(
        clash.detail().contains("already exists"),
        "{}",
        clash.detail()
    );

    let keys = api
        .get("/api/0/projects/default/shop-api/keys/", &token)
        .await;
    assert_eq!(keys.body[0]["dsn"]["public"], project.dsn);
    assert_eq!(keys.body[0]["public"], project.key);
    assert_eq!(keys.body[0]["isActive"], true);
    let created = api
        .post(
            "/api/0/projects/default/shop-api/keys/",
            &token,
            json!({"name": "CI", "rateLimit": {"window": 60, "count": 100}}),
        )
        .await;
    assert_eq!(created.status, 201);
    assert_eq!(created.body["name"], "CI");
    assert_eq!(
        created.body["rateLimit"],
        json!({"window": 60, "count": 100})
    );
    let keys = api
        .get("/api/0/projects/default/shop-api/keys/", &token)
        .await;
    assert_eq!(keys.body.as_array().unwrap().len(), 2);
    // The new key really ingests.
    let dsn_key = created.body["public"].as_str().unwrap();
    let r = api
        .app
        .client
        .post(api.app.url(&format!("/api/{}/envelope/", project.id)))
        .header("x-sentry-auth", auth_header(dsn_key))
        .body(event_envelope(
            &format!("{:032x}", 9),
            &error_event("E", "v", "f"),
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let bad_window = api
        .post(
            "/api/0/projects/default/shop-api/keys/",
            &token,
            json!({"rateLimit": {"window": 3600, "count": 5}}),
        )
        .await;
    assert_eq!(bad_window.status, 400);
}

#[sqlx::test]
async fn visibility_and_roles_match_the_dashboard(pool: PgPool) {
    let (api, admin_token, project) = setup(pool).await;
    api.send(&project, 1, &error_event("KeyError", "sku", "price"))
        .await;
    let issue = api.issue_ids().await[0];
    let member = api.user("member@example.com", false).await;
    let member_token = api.token(member, &ALL).await;

    // An unowned project is open to every member; roles still gate changes.
    assert_eq!(
        api.get("/api/0/projects/default/shop/", &member_token)
            .await
            .status,
        200
    );
    let r = api
        .put(
            "/api/0/projects/default/shop/",
            &member_token,
            json!({"name": "x"}),
        )
        .await;
    assert_eq!(r.status, 403);
    assert_eq!(
        api.post(
            "/api/0/projects/default/shop/keys/",
            &member_token,
            json!({})
        )
        .await
        .status,
        403
    );
    assert_eq!(
        api.delete(&format!("/api/0/issues/{issue}/"), &member_token)
            .await
            .status,
        403
    );
    let resolved = api
        .put(
            &format!("/api/0/issues/{issue}/"),
            &member_token,
            json!({"status": "resolved"}),
        )
        .await;
    assert_eq!(resolved.status, 200, "members triage");

    // Once a team owns it, outsiders see nothing: 404 like a missing project.
    let team = api.app.store.create_team("Payments").await.unwrap();
    api.app
        .store
        .set_project_team(project.id, team, true)
        .await
        .unwrap();
    for path in [
        "/api/0/projects/default/shop/".to_string(),
        format!("/api/0/issues/{issue}/"),
        format!("/api/0/issues/{issue}/events/"),
        "/api/0/projects/default/shop/issues/".to_string(),
    ] {
        assert_eq!(api.get(&path, &member_token).await.status, 404, "{path}");
    }
    let listed = api
        .get("/api/0/organizations/default/projects/", &member_token)
        .await;
    assert_eq!(listed.body, json!([]));
    let all = api
        .get("/api/0/organizations/default/issues/?query=", &member_token)
        .await;
    assert_eq!(all.body, json!([]));
    let named = api
        .get(
            &format!(
                "/api/0/organizations/default/issues/?project={}",
                project.id
            ),
            &member_token,
        )
        .await;
    assert_eq!(named.status, 400);
    api.app
        .store
        .set_team_member(team, member, true)
        .await
        .unwrap();
    let owned = api
        .get("/api/0/projects/default/shop/", &member_token)
        .await;
    assert_eq!(owned.body["teams"][0]["slug"], "payments");
    assert_eq!(
        api.get(&format!("/api/0/issues/{issue}/"), &admin_token)
            .await
            .status,
        200
    );

    // A user outside the organization cannot probe it.
    sqlx::query("DELETE FROM organization_member WHERE user_id = $1")
        .bind(member)
        .execute(api.app.store.pool())
        .await
        .unwrap();
    assert_eq!(
        api.get("/api/0/organizations/default/", &member_token)
            .await
            .status,
        404
    );
}

// ---- issues ----

/// Five issues: 3 events of KeyError (web-1), 2 of TimeoutError (warning,
/// staging), 1 each of three more types.
async fn seed_issues(api: &Api, project: &TestProject) -> Vec<i64> {
    let mut n = 0;
    let mut send = |e: Value| {
        n += 1;
        let id = n;
        async move { api.send(project, id, &e).await }
    };
    for _ in 0..3 {
        let mut e = rich_event("KeyError", "sku", "price");
        e["tags"] = json!({"server": "web-9"});
        send(e).await;
    }
    for _ in 0..2 {
        let mut e = error_event("TimeoutError", "gateway slow", "fetch");
        e["level"] = json!("warning");
        e["environment"] = json!("staging");
        e["tags"] = json!({"server": "web-2"});
        send(e).await;
    }
    for (t, f) in [
        ("ValueError", "parse"),
        ("OSError", "read"),
        ("ZeroDivisionError", "ratio"),
    ] {
        send(error_event(t, "x", f)).await;
    }
    api.issue_ids().await
}

#[sqlx::test]
async fn issue_lists_search_sort_and_paginate(pool: PgPool) {
    let (api, token, project) = setup(pool).await;
    let ids = seed_issues(&api, &project).await;
    assert_eq!(ids.len(), 5);
    let list = api
        .get("/api/0/projects/default/shop/issues/", &token)
        .await;
    assert_eq!(list.status, 200);
    let issues = list.body.as_array().unwrap();
    assert_eq!(issues.len(), 5);
    let key_error = issues
        .iter()
        .find(|i| i["title"] == "KeyError: sku")
        .unwrap();
    assert_eq!(key_error["count"], "3");
    assert_eq!(key_error["userCount"], 1);
    assert_eq!(key_error["shortId"], format!("SHOP-{}", 1));
    assert_eq!(key_error["metadata"]["type"], "KeyError");
    assert_eq!(key_error["metadata"]["function"], "price");
    assert_eq!(key_error["project"]["slug"], "shop");
    assert_eq!(key_error["status"], "unresolved");
    assert_eq!(
        key_error["permalink"],
        api.app.url(&format!("/issues/{}", ids[0]))
    );
    let stats = key_error["stats"]["24h"].as_array().unwrap();
    assert_eq!(stats.len(), 24);
    assert_eq!(stats.iter().map(|b| b[1].as_i64().unwrap()).sum::<i64>(), 3);
    assert!(stats[23][0].as_i64().unwrap() <= chrono::Utc::now().timestamp());
    assert!(list.link().contains("results=\"false\""));

    let titles = |r: &Resp| -> Vec<String> {
        r.body
            .as_array()
            .unwrap()
            .iter()
            .map(|i| {
                i["title"]
                    .as_str()
                    .unwrap()
                    .split(':')
                    .next()
                    .unwrap()
                    .to_string()
            })
            .collect()
    };
    let q = |query: &str| {
        format!(
            "/api/0/projects/default/shop/issues/?query={}",
            urlencode(query)
        )
    };
    assert_eq!(
        titles(&api.get(&q("level:warning"), &token).await),
        ["TimeoutError"]
    );
    assert_eq!(
        titles(&api.get(&q("server:web-9"), &token).await),
        ["KeyError"]
    );
    assert_eq!(
        titles(&api.get(&q("gateway"), &token).await),
        ["TimeoutError"]
    );
    assert_eq!(
        api.get(&q("!server:web-2 is:unresolved"), &token)
            .await
            .body
            .as_array()
            .unwrap()
            .len(),
        4
    );
    let staging = api
        .get(
            "/api/0/projects/default/shop/issues/?environment=staging",
            &token,
        )
        .await;
    assert_eq!(titles(&staging), ["TimeoutError"]);
    let freq = api
        .get("/api/0/projects/default/shop/issues/?sort=freq", &token)
        .await;
    assert_eq!(&titles(&freq)[..2], ["KeyError", "TimeoutError"]);
    assert_eq!(
        api.get("/api/0/projects/default/shop/issues/?sort=trends", &token)
            .await
            .status,
        400
    );

    // Pages of two, followed by cursor to the end.
    let mut seen = Vec::new();
    let mut path = "/api/0/projects/default/shop/issues/?per_page=2&statsPeriod=".to_string();
    loop {
        let page = api.get(&path, &token).await;
        assert!(page.body[0].get("stats").is_none());
        seen.extend(titles(&page));
        match page.next_cursor() {
            Some(c) => {
                path = format!(
                    "/api/0/projects/default/shop/issues/?per_page=2&statsPeriod=&cursor={c}"
                )
            }
            None => break,
        }
        assert!(seen.len() < 10);
    }
    assert_eq!(seen.len(), 5);
    seen.sort();
    seen.dedup();
    assert_eq!(seen.len(), 5);
    // Keyset cursors: the second page links back to the first.
    let first = api
        .get("/api/0/projects/default/shop/issues/?per_page=2", &token)
        .await;
    assert!(
        first.link().contains("rel=\"previous\"; results=\"false\""),
        "{}",
        first.link()
    );
    let next = first.next_cursor().unwrap();
    let second = api
        .get(
            &format!("/api/0/projects/default/shop/issues/?per_page=2&cursor={next}"),
            &token,
        )
        .await;
    assert_ne!(titles(&second), titles(&first));
    let link = second.link();
    assert!(
        link.contains("rel=\"previous\"; results=\"true\""),
        "{link}"
    );
    assert!(link.contains(&format!(
        "{}/api/0/projects/default/shop/issues/?per_page=2&cursor=",
        api.app.base
    )));
    let prev = link
        .split(", ")
        .find(|l| l.contains("rel=\"previous\""))
        .and_then(|l| l.split("cursor=\"").nth(1))
        .map(|c| c.trim_end_matches('"').to_string())
        .unwrap();
    assert!(prev.ends_with(":1"), "{prev}");
    let back = api
        .get(
            &format!("/api/0/projects/default/shop/issues/?per_page=2&cursor={prev}"),
            &token,
        )
        .await;
    assert_eq!(titles(&back), titles(&first));
    for bad in [
        "cursor=abc",
        "cursor=0:-5:0",
        "cursor=5:1:2",
        "per_page=0",
        "per_page=101",
        "statsPeriod=1y",
    ] {
        let r = api
            .get(
                &format!("/api/0/projects/default/shop/issues/?{bad}"),
                &token,
            )
            .await;
        assert_eq!(r.status, 400, "{bad}");
    }
    let two_weeks = api
        .get(
            "/api/0/projects/default/shop/issues/?statsPeriod=14d",
            &token,
        )
        .await;
    assert_eq!(
        two_weeks.body[0]["stats"]["14d"].as_array().unwrap().len(),
        14
    );

    // Sentry's default query hides resolved issues; `query=` shows all.
    api.put(
        &format!("/api/0/issues/{}/", ids[4]),
        &token,
        json!({"status": "resolved"}),
    )
    .await;
    assert_eq!(
        api.get("/api/0/projects/default/shop/issues/", &token)
            .await
            .body
            .as_array()
            .unwrap()
            .len(),
        4
    );
    assert_eq!(
        api.get("/api/0/projects/default/shop/issues/?query=", &token)
            .await
            .body
            .as_array()
            .unwrap()
            .len(),
        5
    );
    assert_eq!(
        titles(&api.get(&q("is:resolved"), &token).await),
        ["ZeroDivisionError"]
    );
    let short = api
        .get(
            "/api/0/projects/default/shop/issues/?shortIdLookup=1&query=SHOP-5",
            &token,
        )
        .await;
    assert_eq!(titles(&short), ["ZeroDivisionError"]);

    // Organization-wide, narrowed by project.
    let other = api.app.project("billing").await;
    api.send(&other, 50, &error_event("BillingError", "x", "bill"))
        .await;
    let org_all = api
        .get("/api/0/organizations/default/issues/?query=", &token)
        .await;
    assert_eq!(org_all.body.as_array().unwrap().len(), 6);
    let only_billing = api
        .get(
            &format!("/api/0/organizations/default/issues/?project={}", other.id),
            &token,
        )
        .await;
    assert_eq!(titles(&only_billing), ["BillingError"]);
    let both = api
        .get(
            &format!(
                "/api/0/organizations/default/issues/?query=&project={}&project={}",
                other.id, project.id
            ),
            &token,
        )
        .await;
    assert_eq!(both.body.as_array().unwrap().len(), 6);
    assert_eq!(
        api.get("/api/0/organizations/default/issues/?project=abc", &token)
            .await
            .status,
        400
    );
}

fn urlencode(s: &str) -> String {
    form_urlencoded_encode(s)
}

fn form_urlencoded_encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'-' | b'_' | b'.' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

#[sqlx::test]
async fn issue_status_and_assignment(pool: PgPool) {
    let (api, token, project) = setup(pool.clone()).await;
    api.send(&project, 1, &error_event("KeyError", "sku", "price"))
        .await;
    let issue = api.issue_ids().await[0];
    let path = format!("/api/0/issues/{issue}/");
    let db_status = || async {
        sqlx::query_as::<_, (String, Option<String>, Option<String>)>(
            "SELECT status, resolution_type, resolved_in_release FROM issue WHERE id = $1",
        )
        .bind(issue)
        .fetch_one(&pool)
        .await
        .unwrap()
    };

    let detail = api.get(&path, &token).await;
    assert_eq!(detail.body["statusDetails"], json!({}));
    assert_eq!(detail.body["firstRelease"]["version"], "app@1.0");
    assert_eq!(detail.body["activity"][0]["type"], "first_seen");
    assert_eq!(detail.body["stats"]["30d"].as_array().unwrap().len(), 30);

    let r = api.put(&path, &token, json!({"status": "resolved"})).await;
    assert_eq!(
        (r.status, r.body["status"].as_str()),
        (200, Some("resolved"))
    );
    assert_eq!(db_status().await.0, "resolved");

    let r = api
        .put(&path, &token, json!({"status": "resolvedInNextRelease"}))
        .await;
    assert_eq!(r.body["statusDetails"], json!({"inNextRelease": true}));
    assert_eq!(
        db_status().await,
        (
            "resolved".into(),
            Some("next_release".into()),
            Some("app@1.0".into())
        )
    );

    let r = api
        .put(
            &path,
            &token,
            json!({"status": "resolved", "statusDetails": {"inRelease": "app@2.0"}}),
        )
        .await;
    assert_eq!(r.body["statusDetails"], json!({"inRelease": "app@2.0"}));
    assert_eq!(db_status().await.2.as_deref(), Some("app@2.0"));
    let r = api
        .put(
            &path,
            &token,
            json!({"status": "resolved", "statusDetails": {"inRelease": "latest"}}),
        )
        .await;
    assert_eq!(r.body["statusDetails"], json!({"inRelease": "app@1.0"}));

    let r = api
        .put(
            &path,
            &token,
            json!({"status": "ignored", "statusDetails": {"ignoreDuration": 30}}),
        )
        .await;
    assert_eq!(r.body["status"], "ignored");
    let until = chrono::DateTime::parse_from_rfc3339(
        r.body["statusDetails"]["ignoreUntil"].as_str().unwrap(),
    )
    .unwrap();
    let minutes = (until.with_timezone(&chrono::Utc) - chrono::Utc::now()).num_minutes();
    assert!((28..=30).contains(&minutes), "{minutes}");
    let r = api
        .put(
            &path,
            &token,
            json!({"status": "ignored", "statusDetails": {"ignoreCount": 5}}),
        )
        .await;
    assert_eq!(r.body["statusDetails"], json!({"ignoreCount": 5}));
    let r = api
        .put(&path, &token, json!({"status": "unresolved"}))
        .await;
    assert_eq!(
        (r.body["status"].as_str(), &r.body["statusDetails"]),
        (Some("unresolved"), &json!({}))
    );
    assert_eq!(db_status().await.0, "unresolved");
    let kinds: Vec<String> = r.body["activity"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["type"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(&kinds[..2], ["set_unresolved", "set_ignored"]);

    let r = api
        .put(
            &path,
            &token,
            json!({"status": "ignored", "statusDetails": {"ignoreUserCount": 2}}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["statusDetails"], json!({"ignoreUserCount": 2}));
    let r = api.get(&path, &token).await;
    assert_eq!(r.body["statusDetails"], json!({"ignoreUserCount": 2}));

    for bad in [
        json!({"status": "closed"}),
        json!({"status": "ignored", "statusDetails": {"ignoreUserCount": 2, "ignoreUserWindow": 60}}),
        json!({"status": "resolved", "statusDetails": {"inCommit": {"commit": "abc"}}}),
        json!({"hasSeen": true}),
        json!({"assignedTo": "nobody@example.com"}),
        json!({"assignedTo": "team:1"}),
        json!({"merge": 1}),
    ] {
        let r = api.put(&path, &token, bad.clone()).await;
        assert_eq!(r.status, 400, "{bad}: {}", r.body);
    }
    let not_json = api
        .app
        .client
        .put(api.app.url(&path))
        .bearer_auth(&token)
        .body("{status")
        .send()
        .await
        .unwrap();
    assert_eq!(not_json.status(), 400);
    let body: Value = not_json.json().await.unwrap();
    assert!(body["detail"].as_str().unwrap().contains("invalid JSON"));

    // Assignment by email, by user:id, to me, and back to nobody.
    let dev = api.user("dev@example.com", false).await;
    let r = api
        .put(&path, &token, json!({"assignedTo": "dev@example.com"}))
        .await;
    assert_eq!(r.body["assignedTo"]["email"], "dev@example.com");
    assert_eq!(r.body["assignedTo"]["id"], dev.to_string());
    let mine = api
        .get(
            "/api/0/projects/default/shop/issues/?query=assigned:dev@example.com",
            &token,
        )
        .await;
    assert_eq!(mine.body.as_array().unwrap().len(), 1);
    let r = api
        .put(&path, &token, json!({"assignedTo": format!("user:{dev}")}))
        .await;
    assert_eq!(r.body["assignedTo"]["type"], "user");
    let r = api.put(&path, &token, json!({"assignedTo": "me"})).await;
    assert_eq!(r.body["assignedTo"]["email"], "admin@example.com");
    let r = api.put(&path, &token, json!({"assignedTo": null})).await;
    assert_eq!(r.body["assignedTo"], Value::Null);
    let assignee: Option<i64> = sqlx::query_scalar("SELECT assignee_id FROM issue WHERE id = $1")
        .bind(issue)
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(assignee, None);

    // The organization-scoped path is the same issue.
    let scoped = api
        .get(
            &format!("/api/0/organizations/default/issues/{issue}/"),
            &token,
        )
        .await;
    assert_eq!(scoped.body["id"], issue.to_string());
    assert_eq!(
        api.get(
            &format!("/api/0/organizations/nope/issues/{issue}/"),
            &token
        )
        .await
        .status,
        404
    );
    assert_eq!(api.get("/api/0/issues/999999/", &token).await.status, 404);
    assert_eq!(api.get("/api/0/issues/abc/", &token).await.status, 404);
    let org_put = api
        .put(
            &format!("/api/0/organizations/default/issues/{issue}/"),
            &token,
            json!({"status": "ignored"}),
        )
        .await;
    assert_eq!(org_put.body["status"], "ignored");
}

#[sqlx::test]
async fn bulk_updates_merge_and_delete(pool: PgPool) {
    let (api, token, project) = setup(pool.clone()).await;
    let ids = seed_issues(&api, &project).await;
    let list = "/api/0/projects/default/shop/issues/";

    let r = api
        .put(
            &format!("{list}?id={}&id={}", ids[3], ids[4]),
            &token,
            json!({"status": "resolved"}),
        )
        .await;
    assert_eq!(r.status, 200);
    assert_eq!(r.body, json!({"status": "resolved", "statusDetails": {}}));
    let statuses: Vec<String> = sqlx::query_scalar("SELECT status FROM issue ORDER BY id")
        .fetch_all(&pool)
        .await
        .unwrap();
    assert_eq!(
        statuses,
        [
            "unresolved",
            "unresolved",
            "unresolved",
            "resolved",
            "resolved"
        ]
    );

    // Without ids: what the query (default is:unresolved) matches.
    let r = api
        .put(
            &format!("{list}?query=level:warning"),
            &token,
            json!({"status": "ignored", "ignoreDuration": 60}),
        )
        .await;
    assert_eq!(r.body["status"], "ignored");
    let ignored: Vec<i64> = sqlx::query_scalar("SELECT id FROM issue WHERE status = 'ignored'")
        .fetch_all(&pool)
        .await
        .unwrap();
    assert_eq!(ignored, [ids[1]]);
    // sentry-cli's `issues unresolve --status resolved` form.
    let r = api
        .put(
            &format!("{list}?status=resolved"),
            &token,
            json!({"status": "unresolved", "snoozeDuration": null}),
        )
        .await;
    assert_eq!(r.body["status"], "unresolved");
    let none_match = api
        .put(
            &format!("{list}?query=nothing-matches-this"),
            &token,
            json!({"status": "resolved"}),
        )
        .await;
    assert_eq!(none_match.status, 204);
    let assign = api
        .put(
            &format!("{list}?id={}", ids[0]),
            &token,
            json!({"assignedTo": "admin@example.com"}),
        )
        .await;
    assert_eq!(assign.body["assignedTo"]["email"], "admin@example.com");

    // An id from another project is not found here.
    let other = api.app.project("billing").await;
    api.send(&other, 60, &error_event("BillingError", "x", "bill"))
        .await;
    let foreign = *api.issue_ids().await.last().unwrap();
    assert_eq!(
        api.put(
            &format!("{list}?id={foreign}"),
            &token,
            json!({"status": "resolved"})
        )
        .await
        .status,
        404
    );

    // Merge: the issue with the most events absorbs the others.
    let r = api
        .put(
            &format!("{list}?id={}&id={}&id={}", ids[2], ids[0], ids[1]),
            &token,
            json!({"merge": 1}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["merge"]["parent"], ids[0].to_string());
    let mut children: Vec<String> = r.body["merge"]["children"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c.as_str().unwrap().to_string())
        .collect();
    children.sort();
    assert_eq!(children, [ids[1].to_string(), ids[2].to_string()]);
    let parent = api.get(&format!("/api/0/issues/{}/", ids[0]), &token).await;
    assert_eq!(parent.body["count"], "6");
    assert_eq!(
        api.get(&format!("/api/0/issues/{}/", ids[1]), &token)
            .await
            .status,
        404
    );
    let hashes = api
        .get(&format!("/api/0/issues/{}/hashes/", ids[0]), &token)
        .await;
    assert_eq!(hashes.body.as_array().unwrap().len(), 3);
    let merge_one = api
        .put(
            &format!("{list}?id={}", ids[0]),
            &token,
            json!({"merge": true}),
        )
        .await;
    assert_eq!(merge_one.status, 400);
    let mixed = api
        .put(
            &format!("{list}?id={}&id={}", ids[0], ids[3]),
            &token,
            json!({"merge": 1, "status": "resolved"}),
        )
        .await;
    assert_eq!(mixed.status, 400);

    // Org-level bulk update across projects.
    let r = api
        .put(
            &format!(
                "/api/0/organizations/default/issues/?id={}&id={foreign}",
                ids[3]
            ),
            &token,
            json!({"status": "ignored"}),
        )
        .await;
    assert_eq!(r.body["status"], "ignored");

    // Deleting needs ids, event:admin and an owner or admin.
    assert_eq!(api.delete(list, &token).await.status, 400);
    let member = api.user("member@example.com", false).await;
    let member_token = api.token(member, &ALL).await;
    assert_eq!(
        api.delete(&format!("{list}?id={}", ids[3]), &member_token)
            .await
            .status,
        403
    );
    let r = api
        .delete(&format!("{list}?id={}&id={}", ids[3], ids[4]), &token)
        .await;
    assert_eq!(r.status, 204);
    assert_eq!(
        api.get(&format!("/api/0/issues/{}/", ids[4]), &token)
            .await
            .status,
        404
    );
    let r = api
        .delete(
            &format!("/api/0/organizations/default/issues/?id={foreign}"),
            &token,
        )
        .await;
    assert_eq!(r.status, 204);
    let r = api
        .delete(&format!("/api/0/issues/{}/", ids[0]), &token)
        .await;
    assert_eq!(r.status, 202);
    assert_eq!(api.issue_ids().await, Vec::<i64>::new());
    assert_eq!(
        api.delete(
            &format!("/api/0/organizations/default/issues/{}/", ids[0]),
            &token
        )
        .await
        .status,
        404
    );
}

// ---- events, tags, hashes ----

#[sqlx::test]
async fn events_tags_and_hashes(pool: PgPool) {
    let (api, token, project) = setup(pool).await;
    let mut first = rich_event("KeyError", "sku", "price");
    first["tags"] = json!({"server": "web-1"});
    let mut second = rich_event("KeyError", "sku", "price");
    second["tags"] = json!({"server": "web-2"});
    second["logentry"] = json!({"message": "price of %s", "params": ["book"]});
    let a = api.send(&project, 1, &first).await;
    let b = api.send(&project, 2, &second).await;
    let issue = api.issue_ids().await[0];

    let events = api
        .get(&format!("/api/0/issues/{issue}/events/"), &token)
        .await;
    let list = events.body.as_array().unwrap();
    assert_eq!(list.len(), 2);
    assert_eq!(list[0]["eventID"], b);
    assert_eq!(list[0]["groupID"], issue.to_string());
    assert!(
        list[0]["tags"]
            .as_array()
            .unwrap()
            .contains(&json!({"key": "server", "value": "web-2"}))
    );
    let filtered = api
        .get(
            &format!("/api/0/issues/{issue}/events/?query=server:web-1"),
            &token,
        )
        .await;
    assert_eq!(filtered.body.as_array().unwrap().len(), 1);
    assert_eq!(filtered.body[0]["id"], a);
    let paged = api
        .get(&format!("/api/0/issues/{issue}/events/?per_page=1"), &token)
        .await;
    assert_eq!(paged.body.as_array().unwrap().len(), 1);
    assert!(paged.next_cursor().is_some());
    let full = api
        .get(&format!("/api/0/issues/{issue}/events/?full=true"), &token)
        .await;
    assert!(full.body[0]["entries"].is_array());
    assert_eq!(
        api.get(
            &format!("/api/0/issues/{issue}/events/?query=words"),
            &token
        )
        .await
        .status,
        400
    );

    let latest = api
        .get(&format!("/api/0/issues/{issue}/events/latest/"), &token)
        .await;
    assert_eq!(latest.body["eventID"], b);
    assert_eq!(latest.body["previousEventID"], a);
    assert_eq!(latest.body["nextEventID"], Value::Null);
    let oldest = api
        .get(&format!("/api/0/issues/{issue}/events/oldest/"), &token)
        .await;
    assert_eq!(oldest.body["eventID"], a);
    assert_eq!(oldest.body["nextEventID"], b);
    let by_id = api
        .get(&format!("/api/0/issues/{issue}/events/{a}/"), &token)
        .await;
    assert_eq!(by_id.body["id"], a);
    assert_eq!(
        api.get(
            &format!("/api/0/issues/{issue}/events/{:032x}/", 77),
            &token
        )
        .await
        .status,
        404
    );
    assert_eq!(
        api.get(&format!("/api/0/issues/{issue}/events/nope/"), &token)
            .await
            .status,
        404
    );

    let event = api
        .get(&format!("/api/0/projects/default/shop/events/{b}/"), &token)
        .await;
    assert_eq!(event.status, 200);
    let e = &event.body;
    assert_eq!(e["groupID"], issue.to_string());
    assert_eq!(e["projectID"], project.id.to_string());
    assert_eq!(e["sdk"]["name"], "sentry.python");
    assert_eq!(e["contexts"]["runtime"]["name"], "CPython");
    assert_eq!(e["user"]["id"], "42");
    assert_eq!(e["release"]["version"], "app@1.0");
    assert!(
        e["tags"]
            .as_array()
            .unwrap()
            .contains(&json!({"key": "environment", "value": "production"}))
    );
    let entry = |t: &str| {
        e["entries"]
            .as_array()
            .unwrap()
            .iter()
            .find(|x| x["type"] == t)
            .unwrap_or_else(|| panic!("no {t} entry in {}", e["entries"]))
            .clone()
    };
    let exception = entry("exception");
    assert_eq!(exception["data"]["values"][0]["type"], "KeyError");
    let frames = exception["data"]["values"][0]["stacktrace"]["frames"]
        .as_array()
        .unwrap();
    assert_eq!(frames[1]["function"], "price");
    assert_eq!(frames[1]["lineNo"], 42);
    assert_eq!(frames[1]["inApp"], true);
    assert_eq!(
        frames[1]["context"],
        json!([[41, "def f():"], [42, "    raise Boom()"], [43, ""]])
    );
    assert_eq!(entry("message")["data"]["formatted"], "price of book");
    assert_eq!(
        entry("breadcrumbs")["data"]["values"][0]["message"],
        "GET /cart"
    );
    let request = entry("request")["data"].clone();
    assert_eq!(request["method"], "POST");
    assert!(
        request["headers"]
            .as_array()
            .unwrap()
            .contains(&json!(["Authorization", "[redacted]"]))
    );

    let raw = api
        .get(
            &format!("/api/0/projects/default/shop/events/{b}/json/"),
            &token,
        )
        .await;
    assert_eq!(raw.body["event_id"], b);
    assert_eq!(raw.body["exception"]["values"][0]["type"], "KeyError");
    let project_events = api
        .get("/api/0/projects/default/shop/events/", &token)
        .await;
    assert_eq!(project_events.body.as_array().unwrap().len(), 2);
    let page = api
        .get(
            "/api/0/projects/default/shop/events/?per_page=1&cursor=0:1:0",
            &token,
        )
        .await;
    assert_eq!(page.body[0]["eventID"], a);
    assert_eq!(
        api.get(
            &format!("/api/0/projects/default/shop/events/{:032x}/", 99),
            &token
        )
        .await
        .status,
        404
    );

    let tags = api
        .get(&format!("/api/0/issues/{issue}/tags/"), &token)
        .await;
    let server = tags
        .body
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["key"] == "server")
        .unwrap()
        .clone();
    assert_eq!(server["totalValues"], 2);
    assert_eq!(server["topValues"].as_array().unwrap().len(), 2);

    let hashes = api
        .get(&format!("/api/0/issues/{issue}/hashes/"), &token)
        .await;
    let hashes = hashes.body.as_array().unwrap();
    assert!(!hashes.is_empty());
    let stored: Vec<String> =
        sqlx::query_scalar("SELECT hash FROM issue_hash WHERE issue_id = $1 ORDER BY hash")
            .bind(issue)
            .fetch_all(api.app.store.pool())
            .await
            .unwrap();
    let listed: Vec<&str> = hashes.iter().map(|h| h["id"].as_str().unwrap()).collect();
    assert_eq!(listed, stored);
    assert_eq!(hashes[0]["latestEvent"]["eventID"], b);
}

// ---- releases and deploys ----

#[sqlx::test]
async fn releases_and_deploys(pool: PgPool) {
    let (api, token, project) = setup(pool.clone()).await;
    api.app.project("web").await;
    // An issue first seen in app@1.0 (the event's release).
    api.send(&project, 1, &error_event("KeyError", "sku", "price"))
        .await;

    let created = api
        .post(
            "/api/0/organizations/default/releases/",
            &token,
            json!({"version": "app@2.0", "projects": ["shop", "web"], "dateStarted": "2026-01-02T03:04:05Z", "url": "https://ci/1"}),
        )
        .await;
    assert_eq!(created.status, 201, "{}", created.body);
    assert_eq!(created.body["version"], "app@2.0");
    assert_eq!(created.body["shortVersion"], "2.0");
    assert_eq!(created.body["dateReleased"], Value::Null);
    assert_eq!(created.body["dateStarted"], "2026-01-02T03:04:05.000Z");
    assert_eq!(created.body["projects"].as_array().unwrap().len(), 2);
    let again = api
        .post(
            "/api/0/organizations/default/releases/",
            &token,
            json!({"version": "app@2.0", "projects": ["shop"]}),
        )
        .await;
    assert_eq!(again.status, 208);

    let finalized = api
        .put(
            "/api/0/organizations/default/releases/app@2.0/",
            &token,
            json!({"projects": ["shop"], "dateReleased": "2026-01-02T04:00:00Z"}),
        )
        .await;
    assert_eq!(finalized.status, 200);
    assert_eq!(finalized.body["dateReleased"], "2026-01-02T04:00:00.000Z");
    let stored: Vec<Option<chrono::DateTime<chrono::Utc>>> =
        sqlx::query_scalar("SELECT date_released FROM release WHERE version = 'app@2.0'")
            .fetch_all(&pool)
            .await
            .unwrap();
    assert_eq!(stored.len(), 2);
    assert!(stored.iter().all(Option::is_some));

    // The release ingest created, with its new issue.
    let old = api
        .get("/api/0/organizations/default/releases/app@1.0/", &token)
        .await;
    assert_eq!(old.status, 200);
    assert_eq!(old.body["newGroups"], 1);
    assert_eq!(old.body["projects"][0]["newGroups"], 1);
    assert!(old.body["lastEvent"].is_string());

    let listed = api
        .get("/api/0/projects/default/shop/releases/", &token)
        .await;
    let versions: Vec<&str> = listed
        .body
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["version"].as_str().unwrap())
        .collect();
    assert_eq!(versions, ["app@2.0", "app@1.0"]);
    let web = api
        .get("/api/0/projects/default/web/releases/", &token)
        .await;
    assert_eq!(web.body.as_array().unwrap().len(), 1);
    let searched = api
        .get("/api/0/organizations/default/releases/?query=2.0", &token)
        .await;
    assert_eq!(searched.body.as_array().unwrap().len(), 1);
    let paged = api
        .get("/api/0/organizations/default/releases/?per_page=1", &token)
        .await;
    assert!(paged.next_cursor().is_some());

    let deploy = api
        .post(
            "/api/0/organizations/default/releases/app@2.0/deploys/",
            &token,
            json!({"environment": "prod", "name": null, "url": null, "dateStarted": null, "dateFinished": "2026-01-02T05:00:00Z"}),
        )
        .await;
    assert_eq!(deploy.status, 201);
    assert_eq!(deploy.body["environment"], "prod");
    let deploys = api
        .get(
            "/api/0/organizations/default/releases/app@2.0/deploys/",
            &token,
        )
        .await;
    assert_eq!(deploys.body.as_array().unwrap().len(), 1);
    let detail = api
        .get("/api/0/projects/default/shop/releases/app@2.0/", &token)
        .await;
    assert_eq!(detail.body["deployCount"], 1);
    assert_eq!(detail.body["lastDeploy"]["environment"], "prod");

    // Project-level create and update.
    let p = api
        .post(
            "/api/0/projects/default/web/releases/",
            &token,
            json!({"version": "web@1"}),
        )
        .await;
    assert_eq!(p.status, 201);
    assert_eq!(p.body["projects"][0]["slug"], "web");
    let archived = api
        .put(
            "/api/0/projects/default/web/releases/web@1/",
            &token,
            json!({"status": "archived", "ref": "abc123"}),
        )
        .await;
    assert_eq!(
        (
            archived.body["status"].as_str(),
            archived.body["ref"].as_str()
        ),
        (Some("archived"), Some("abc123"))
    );

    for (path, body) in [
        (
            "/api/0/organizations/default/releases/",
            json!({"version": "latest", "projects": ["shop"]}),
        ),
        (
            "/api/0/organizations/default/releases/",
            json!({"version": "a/b", "projects": ["shop"]}),
        ),
        (
            "/api/0/organizations/default/releases/",
            json!({"version": "x"}),
        ),
        (
            "/api/0/organizations/default/releases/",
            json!({"version": "x", "projects": ["nope"]}),
        ),
        (
            "/api/0/organizations/default/releases/",
            json!({"version": "x", "projects": ["shop"], "commits": [{"id": "a"}]}),
        ),
        (
            "/api/0/organizations/default/releases/",
            json!({"version": "x", "projects": ["shop"], "dateStarted": "yesterday"}),
        ),
        (
            "/api/0/organizations/default/releases/app@2.0/deploys/",
            json!({"environment": ""}),
        ),
        (
            "/api/0/organizations/default/releases/app@2.0/deploys/",
            json!({"environment": "a/b"}),
        ),
    ] {
        let r = api.post(path, &token, body.clone()).await;
        assert_eq!(r.status, 400, "{body}: {}", r.body);
    }
    let bad_status = api
        .put(
            "/api/0/organizations/default/releases/app@2.0/",
            &token,
            json!({"status": "gone"}),
        )
        .await;
    assert_eq!(bad_status.status, 400);
    assert_eq!(
        api.get("/api/0/organizations/default/releases/nope/", &token)
            .await
            .status,
        404
    );
    assert_eq!(
        api.post(
            "/api/0/organizations/default/releases/nope/deploys/",
            &token,
            json!({"environment": "prod"})
        )
        .await
        .status,
        404
    );
    assert_eq!(
        api.put(
            "/api/0/organizations/default/releases/nope/",
            &token,
            json!({"dateReleased": "2026-01-01T00:00:00Z"})
        )
        .await
        .status,
        404
    );

    // Deleting needs a manager; it detaches the release from the project.
    let member = api.user("member@example.com", false).await;
    let member_token = api.token(member, &["project:releases"]).await;
    let mine = api
        .post(
            "/api/0/organizations/default/releases/",
            &member_token,
            json!({"version": "m@1", "projects": ["shop"]}),
        )
        .await;
    assert_eq!(
        mine.status, 201,
        "members with project:releases create releases"
    );
    assert_eq!(
        api.delete("/api/0/organizations/default/releases/m@1/", &member_token)
            .await
            .status,
        403
    );
    assert_eq!(
        api.delete("/api/0/projects/default/web/releases/app@2.0/", &token)
            .await
            .status,
        204
    );
    let shop_only = api
        .get("/api/0/organizations/default/releases/app@2.0/", &token)
        .await;
    assert_eq!(shop_only.body["projects"].as_array().unwrap().len(), 1);
    assert_eq!(
        api.delete("/api/0/organizations/default/releases/app@2.0/", &token)
            .await
            .status,
        204
    );
    assert_eq!(
        api.get("/api/0/organizations/default/releases/app@2.0/", &token)
            .await
            .status,
        404
    );
    let left: i64 = sqlx::query_scalar("SELECT count(*) FROM release_deploy")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(left, 0, "deploys go with the release");
}

// ---- errors ----

#[sqlx::test]
async fn errors_are_json_with_a_detail(pool: PgPool) {
    let (api, token, _) = setup(pool).await;
    for path in [
        "/api/0/nothing/here/",
        "/api/0/organizations/default/chunk-upload/",
    ] {
        let r = api.raw(Method::GET, path, Some(&token), None).await;
        assert_eq!(r.status, 404, "{path}");
        assert_eq!(r.detail(), "The requested resource does not exist");
    }
    let r = api
        .call(
            Method::PATCH,
            "/api/0/projects/default/shop/",
            Some(&token),
            None,
        )
        .await;
    assert_eq!(r.status, 405);
    assert_eq!(r.detail(), "Method not allowed");
    let r = api
        .call(
            Method::POST,
            "/api/0/issues/1/",
            Some(&token),
            Some(json!({})),
        )
        .await;
    assert_eq!(r.status, 405);
    // Ingest routes are unaffected by the API's catch-all.
    let r = api
        .app
        .client
        .get(api.app.url("/api/1/store/"))
        .send()
        .await
        .unwrap();
    assert_ne!(r.status(), 404);
}

// ---- dashboard and CLI ----

#[sqlx::test]
async fn account_page_creates_lists_and_revokes_tokens(pool: PgPool) {
    let (api, _, _) = setup(pool.clone()).await;
    let cookie = api.app.login("owner@example.com", "pw-123456789").await;
    let (status, page) = api.app.get_page("/account", &cookie).await;
    assert_eq!(status, 200);
    assert!(page.contains("API tokens"));
    assert!(
        page.contains("<title>Account · Snag</title>"),
        "the title block is plain text"
    );
    let csrf = page
        .split("name=\"csrf\" value=\"")
        .nth(1)
        .unwrap()
        .split('"')
        .next()
        .unwrap()
        .to_string();
    let post = |body: Vec<(&'static str, String)>| {
        let app = &api.app;
        let cookie = cookie.clone();
        async move {
            let r = app
                .client
                .post(app.url("/account/tokens"))
                .header("cookie", cookie)
                .form(&body)
                .send()
                .await
                .unwrap();
            (r.status().as_u16(), r.text().await.unwrap())
        }
    };
    let (status, page) = post(vec![
        ("csrf", csrf.clone()),
        ("name", "deploy bot".into()),
        ("scope", "project:releases".into()),
        ("scope", "org:read".into()),
    ])
    .await;
    assert_eq!(status, 200);
    let token = page
        .split("id=\"new-token\">")
        .nth(1)
        .unwrap()
        .split('<')
        .next()
        .unwrap()
        .to_string();
    assert!(token.starts_with("sntryu_"));
    assert!(page.contains("deploy bot"));
    assert!(page.contains(&format!("…{}", &token[token.len() - 4..])));
    let me = api.get("/api/0/", &token).await;
    assert_eq!(me.body["user"]["email"], "owner@example.com");
    assert_eq!(
        me.body["auth"]["scopes"],
        json!(["org:read", "project:releases"])
    );
    // Shown once: a later visit lists it without the secret.
    let (_, later) = api.app.get_page("/account", &cookie).await;
    assert!(later.contains("deploy bot") && !later.contains(&token));

    let (status, _) = post(vec![("csrf", csrf.clone()), ("scope", "root:all".into())]).await;
    assert_eq!(status, 400);
    let (status, _) = post(vec![("csrf", csrf.clone())]).await;
    assert_eq!(status, 400, "a token needs a scope");
    let (status, _) = post(vec![
        ("csrf", "forged".into()),
        ("scope", "org:read".into()),
    ])
    .await;
    assert_eq!(status, 403);

    let id: i64 = sqlx::query_scalar("SELECT id FROM api_token WHERE name = 'deploy bot'")
        .fetch_one(&pool)
        .await
        .unwrap();
    let other = api.app.login("other@example.com", "pw-123456789").await;
    let (_, other_page) = api.app.get_page("/account", &other).await;
    let other_csrf = other_page
        .split("name=\"csrf\" value=\"")
        .nth(1)
        .unwrap()
        .split('"')
        .next()
        .unwrap()
        .to_string();
    let revoke = |cookie: String, csrf: String| {
        let app = &api.app;
        async move {
            app.client
                .post(app.url(&format!("/account/tokens/{id}/revoke")))
                .header("cookie", cookie)
                .form(&[("csrf", csrf)])
                .send()
                .await
                .unwrap()
                .status()
                .as_u16()
        }
    };
    assert_eq!(
        revoke(other, other_csrf).await,
        404,
        "only the owner revokes"
    );
    assert_eq!(api.get("/api/0/organizations/", &token).await.status, 200);
    assert_eq!(revoke(cookie.clone(), csrf).await, 303);
    assert_eq!(api.get("/api/0/organizations/", &token).await.status, 401);
}

#[sqlx::test]
async fn cli_creates_tokens(pool: PgPool) {
    let (api, _, _) = setup(pool.clone()).await;
    let url = database_url_of(&pool);
    let snag = |args: &[&str]| {
        std::process::Command::new(env!("CARGO_BIN_EXE_snag"))
            .args(args)
            .env("DATABASE_URL", &url)
            .env("SNAG_DEV", "1")
            .output()
            .unwrap()
    };
    let out = snag(&[
        "token",
        "create",
        "--email",
        "ADMIN@example.com",
        "--scopes",
        "event:read,project:read",
        "--name",
        "ci",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8(out.stdout).unwrap();
    let token = stdout.lines().last().unwrap().trim().to_string();
    let me = api.get("/api/0/", &token).await;
    assert_eq!(
        me.body["auth"]["scopes"],
        json!(["project:read", "event:read"])
    );
    assert_eq!(me.body["user"]["email"], "admin@example.com");

    let default = snag(&["token", "create", "--email", "admin@example.com"]);
    let token = String::from_utf8(default.stdout)
        .unwrap()
        .lines()
        .last()
        .unwrap()
        .to_string();
    let me = api.get("/api/0/", &token).await;
    assert_eq!(
        me.body["auth"]["scopes"].as_array().unwrap().len(),
        auth::DEFAULT_SCOPES.len()
    );

    for bad in [
        vec!["token", "create", "--email", "nobody@example.com"],
        vec![
            "token",
            "create",
            "--email",
            "admin@example.com",
            "--scopes",
            "everything",
        ],
    ] {
        let out = snag(&bad);
        assert!(!out.status.success(), "{bad:?}");
        assert!(!String::from_utf8_lossy(&out.stderr).is_empty());
    }
}
