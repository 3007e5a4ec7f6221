//! Admin one-off commands through the real binary: export/import round
//! trips, user and key management, purge, and one-line errors on bad input.

mod common;

use common::*;
use serde_json::{Value, json};
use snag::store::retention::RetentionSettings;
use sqlx::PgPool;
use std::process::{Command, Output};

fn snag(args: &[&str], database_url: &str) -> Output {
    snag_with_input(args, database_url, None)
}

fn snag_with_input(args: &[&str], database_url: &str, input: Option<&[u8]>) -> Output {
    use std::io::Write;
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_snag"));
    cmd.args(args)
        .env("DATABASE_URL", database_url)
        .env("SNAG_BASE_URL", "https://errors.example.com")
        .env_remove("SNAG_RETENTION_DAYS")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    let mut child = cmd.spawn().expect("run snag");
    let mut stdin = child.stdin.take().unwrap();
    if let Some(bytes) = input {
        stdin.write_all(bytes).unwrap();
    }
    drop(stdin);
    child.wait_with_output().unwrap()
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Exit 1 and exactly one `error: …` line mentioning `needle`.
fn assert_one_line_error(o: &Output, needle: &str) {
    assert_eq!(o.status.code(), Some(1), "{}{}", stdout(o), stderr(o));
    let err = stderr(o);
    assert!(err.starts_with("error: "), "{err}");
    assert_eq!(err.trim_end().lines().count(), 1, "{err}");
    assert!(err.contains(needle), "{needle:?} not in {err}");
}

fn id(n: u32) -> String {
    format!("{n:032x}")
}

async fn seed(app: &TestApp) -> (TestProject, TestProject) {
    let shop = app.project("shop").await;
    let jobs = app.project("jobs").await;
    let key = app.store.create_key(shop.id, "ci runner").await.unwrap();
    app.store
        .set_key_rate_limit(shop.id, key.id, Some(120))
        .await
        .unwrap();
    app.store
        .set_retention_settings(
            jobs.id,
            RetentionSettings {
                retention_days: Some(14),
                max_events: Some(1000),
            },
        )
        .await
        .unwrap();
    app.store
        .set_fingerprint_rules(shop.id, "error.type:Timeout -> timeouts")
        .await
        .unwrap();
    let mut tagged = error_event("PaymentDeclined", "card expired", "charge");
    tagged["tags"] = json!({"region": "eu", "server": "web-1"});
    for (n, project, event) in [
        (1, &shop, tagged.clone()),
        (2, &shop, tagged),
        (3, &shop, error_event("Timeout", "upstream", "fetch")),
        (4, &jobs, error_event("KeyError", "'id'", "run_job")),
        (
            5,
            &jobs,
            json!({"type": "transaction", "transaction": "/checkout", "platform": "python",
                   "start_timestamp": 1.0, "timestamp": 2.0, "spans": [],
                   "contexts": {"trace": {"trace_id": "a".repeat(32), "span_id": "b".repeat(16)}}}),
        ),
    ] {
        let r = app
            .post_envelope(project, event_envelope(&id(n), &event))
            .await;
        assert_eq!(r.status(), 200);
    }
    let timeout_issue: i64 = sqlx::query_scalar(
        "SELECT issue_id FROM event WHERE event_id = '00000000000000000000000000000003'",
    )
    .fetch_one(app.store.pool())
    .await
    .unwrap();
    app.store
        .resolve_issue(
            timeout_issue,
            snag::store::Resolution::InRelease("app@2.0".into()),
            None,
        )
        .await
        .unwrap();
    let hash = snag::web::auth::hash_password("pw-123456789").unwrap();
    let owner = app
        .store
        .create_user("owner@example.com", &hash, true)
        .await
        .unwrap();
    let key_error: i64 = sqlx::query_scalar(
        "SELECT issue_id FROM event WHERE event_id = '00000000000000000000000000000004'",
    )
    .fetch_one(app.store.pool())
    .await
    .unwrap();
    app.store
        .assign_issue(key_error, Some(owner), None)
        .await
        .unwrap();
    (shop, jobs)
}

/// Records without the header line (it carries the export time).
fn records(export: &str) -> Vec<Value> {
    export
        .lines()
        .skip(1)
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

#[sqlx::test]
async fn export_then_import_round_trips_and_dsns_keep_working(pool: PgPool) {
    let url = database_url_of(&pool);
    let app = start(pool.clone()).await;
    let (shop, jobs) = seed(&app).await;

    let exported = snag(&["export"], &url);
    assert!(exported.status.success(), "{}", stderr(&exported));
    assert!(
        stderr(&exported).contains("exported 2 project(s), 3 key(s), 3 issue(s), 5 event(s)"),
        "{}",
        stderr(&exported)
    );
    let first = stdout(&exported);
    let header: Value = serde_json::from_str(first.lines().next().unwrap()).unwrap();
    assert_eq!(header["type"], "snag-export");
    assert_eq!(header["version"], 1);
    let recs = records(&first);
    let kinds: Vec<&str> = recs.iter().map(|r| r["type"].as_str().unwrap()).collect();
    assert_eq!(
        kinds,
        [
            "project", "project", "key", "key", "key", "issue", "issue", "issue", "event", "event",
            "event", "event", "event"
        ]
    );
    let payment = recs
        .iter()
        .find(|r| r["type"] == "issue" && r["title"].as_str().unwrap().contains("PaymentDeclined"))
        .unwrap();
    assert_eq!(payment["times_seen"], 2);
    assert!(
        payment["tags"]
            .as_array()
            .unwrap()
            .iter()
            .any(|t| t["key"] == "region" && t["value"] == "eu")
    );
    assert!(!payment["hashes"].as_array().unwrap().is_empty());
    let event = recs
        .iter()
        .find(|r| r["type"] == "event" && r["event_id"] == "00000000-0000-0000-0000-000000000001")
        .unwrap();
    assert_eq!(
        event["data"]["exception"]["values"][0]["type"],
        "PaymentDeclined"
    );

    // Lose everything, then restore it from the export.
    app.server.shutdown().await.unwrap();
    sqlx::query("DELETE FROM project")
        .execute(&pool)
        .await
        .unwrap();
    let imported = snag_with_input(&["import"], &url, Some(first.as_bytes()));
    assert!(imported.status.success(), "{}", stderr(&imported));
    assert_eq!(
        stdout(&imported).trim(),
        "imported 2 project(s), 3 key(s), 3 issue(s), 5 event(s)"
    );

    let dir = tempdir();
    let path = dir.join("again.jsonl");
    let again = snag(&["export", "-o", path.to_str().unwrap()], &url);
    assert!(again.status.success(), "{}", stderr(&again));
    let second = std::fs::read_to_string(&path).unwrap();
    assert_eq!(
        records(&second),
        recs,
        "export → import → export is lossless"
    );

    // The same DSNs reach the same projects; new events join the old issues.
    let app = start(pool.clone()).await;
    let r = app
        .post_envelope(
            &shop,
            event_envelope(
                &id(6),
                &error_event("PaymentDeclined", "card expired", "charge"),
            ),
        )
        .await;
    assert_eq!(r.status(), 200);
    let (times_seen, assignee): (i64, Option<i64>) = sqlx::query_as(
        "SELECT times_seen, assignee_id FROM issue WHERE title LIKE 'PaymentDeclined%'",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!((times_seen, assignee), (3, None));
    let assigned: Option<i64> =
        sqlx::query_scalar("SELECT assignee_id FROM issue WHERE title LIKE 'KeyError%'")
            .fetch_one(&pool)
            .await
            .unwrap();
    assert!(
        assigned.is_some(),
        "assignee restored by email when the user exists"
    );
    // Short ids continue after the imported ones.
    let r = app
        .post_envelope(
            &jobs,
            event_envelope(&id(7), &error_event("ValueError", "new bug", "parse")),
        )
        .await;
    assert_eq!(r.status(), 200);
    let short_ids: Vec<i64> =
        sqlx::query_scalar("SELECT short_id FROM issue WHERE project_id = $1 ORDER BY short_id")
            .bind(jobs.id)
            .fetch_all(&pool)
            .await
            .unwrap();
    assert_eq!(short_ids, vec![1, 2]);
    let created = app.store.create_project("third", None).await.unwrap().0;
    assert!(created.id > jobs.id, "the id sequence moved past imports");

    // A second import conflicts and changes nothing.
    let before: i64 = sqlx::query_scalar("SELECT count(*) FROM event")
        .fetch_one(&pool)
        .await
        .unwrap();
    let twice = snag(&["import", path.to_str().unwrap()], &url);
    assert_one_line_error(&twice, "line 2: project default/shop already exists here");
    assert!(stderr(&twice).contains("nothing was imported"));
    let after: i64 = sqlx::query_scalar("SELECT count(*) FROM event")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(before, after);
    app.server.shutdown().await.unwrap();
}

#[sqlx::test]
async fn import_into_a_busy_instance_moves_ids_and_says_so(pool: PgPool) {
    let url = database_url_of(&pool);
    let app = start(pool.clone()).await;
    let (_, jobs) = seed(&app).await;
    let only_jobs = snag(&["export", "--project", "default/jobs"], &url);
    assert!(only_jobs.status.success(), "{}", stderr(&only_jobs));
    let text = stdout(&only_jobs);
    assert!(stderr(&only_jobs).contains("exported 1 project(s), 1 key(s), 1 issue(s), 2 event(s)"));
    // Move "jobs" away under another name so its slug and id are taken by
    // someone else, as on a different instance.
    sqlx::query("DELETE FROM project WHERE id = $1")
        .bind(jobs.id)
        .execute(&pool)
        .await
        .unwrap();
    sqlx::query("INSERT INTO project (id, organization_id, slug, name) SELECT $1, id, 'squatter', 'Squatter' FROM organization WHERE slug = 'default'")
        .bind(jobs.id)
        .execute(&pool)
        .await
        .unwrap();
    let imported = snag_with_input(&["import", "-"], &url, Some(text.as_bytes()));
    assert!(imported.status.success(), "{}", stderr(&imported));
    assert!(
        stdout(&imported).contains("note: project default/jobs is now id"),
        "{}",
        stdout(&imported)
    );
    let new_id: i64 = sqlx::query_scalar("SELECT id FROM project WHERE slug = 'jobs'")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_ne!(new_id, jobs.id);
    let linked: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM event e JOIN issue i ON i.id = e.issue_id WHERE e.project_id = $1 AND i.project_id = $1",
    )
    .bind(new_id)
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!(linked, 1, "the error event hangs off its imported issue");
    app.server.shutdown().await.unwrap();
}

#[sqlx::test]
async fn bad_imports_are_refused_with_the_line(pool: PgPool) {
    let url = database_url_of(&pool);
    let header = "{\"type\":\"snag-export\",\"version\":1}\n";
    let cases: Vec<(String, &str)> = vec![
        ("not json at all\n".into(), "line 1: not JSON"),
        (
            "{\"type\":\"project\"}\n".into(),
            "line 1: not a snag export",
        ),
        (
            "{\"type\":\"snag-export\",\"version\":7}\n".into(),
            "unsupported export version",
        ),
        (
            format!("{header}{{\"type\":\"gizmo\"}}\n"),
            "line 2: unknown record type \"gizmo\"",
        ),
        (
            format!("{header}{{\"type\":\"project\",\"id\":\"x\"}}\n"),
            "line 2: invalid type",
        ),
        (
            format!(
                "{header}{{\"type\":\"key\",\"project\":9,\"public_key\":\"k\",\"secret_key\":null,\"label\":\"l\",\"is_active\":true,\"rate_limit_per_minute\":null,\"created_at\":\"2024-01-01T00:00:00Z\"}}\n"
            ),
            "line 2: record refers to project 9",
        ),
        ("".into(), "the input is empty"),
        ("[1,2]\n".into(), "line 1: expected an object"),
    ];
    for (input, needle) in cases {
        let o = snag_with_input(&["import"], &url, Some(input.as_bytes()));
        assert_one_line_error(&o, needle);
    }
    let missing = snag(&["import", "/nonexistent/export.jsonl"], &url);
    assert_one_line_error(&missing, "cannot open /nonexistent/export.jsonl");
    let unwritable = snag(&["export", "-o", "/nonexistent/dir/x.jsonl"], &url);
    assert_one_line_error(&unwritable, "cannot create /nonexistent/dir/x.jsonl");
    let unknown = snag(&["export", "--project", "nope"], &url);
    assert_one_line_error(&unknown, "no project \"nope\"");
    let projects: i64 = sqlx::query_scalar("SELECT count(*) FROM project")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(projects, 0, "nothing half-imported");
}

#[sqlx::test]
async fn users_keys_and_purge_from_the_command_line(pool: PgPool) {
    let url = database_url_of(&pool);
    let app = start(pool.clone()).await;
    let (shop, _) = seed(&app).await;
    app.login("member@example.com", "pw-123456789").await;

    let list = snag(&["user", "list"], &url);
    assert!(list.status.success(), "{}", stderr(&list));
    let out = stdout(&list);
    assert!(
        out.lines()
            .any(|l| l.starts_with("member@example.com owner active admin 20")),
        "{out}"
    );
    assert!(
        out.lines()
            .any(|l| l == "owner@example.com owner active admin never"),
        "{out}"
    );

    let sessions = "SELECT count(*) FROM user_session s JOIN users u ON u.id = s.user_id WHERE u.email = 'member@example.com'";
    let before: i64 = sqlx::query_scalar(sessions).fetch_one(&pool).await.unwrap();
    assert_eq!(before, 1);
    let disabled = snag(&["user", "disable", "MEMBER@example.com"], &url);
    assert!(disabled.status.success(), "{}", stderr(&disabled));
    assert_eq!(stdout(&disabled).trim(), "disabled member@example.com");
    let after: i64 = sqlx::query_scalar(sessions).fetch_one(&pool).await.unwrap();
    assert_eq!(after, 0, "disabling ends sessions");
    assert!(stdout(&snag(&["user", "list"], &url)).contains("member@example.com owner disabled"));
    let login = app
        .client
        .post(app.url("/login"))
        .form(&[
            ("email", "member@example.com"),
            ("password", "pw-123456789"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(login.status(), 401, "a disabled user cannot log in");
    assert!(
        snag(&["user", "enable", "member@example.com"], &url)
            .status
            .success()
    );
    assert_one_line_error(
        &snag(&["user", "disable", "ghost@example.com"], &url),
        "no user with email \"ghost@example.com\"",
    );

    let keys = snag(&["project", "keys", "shop"], &url);
    assert!(keys.status.success(), "{}", stderr(&keys));
    let lines: Vec<String> = stdout(&keys).lines().map(str::to_string).collect();
    assert_eq!(lines.len(), 2, "{lines:?}");
    assert!(
        lines[0].contains(" active - Default https://"),
        "{}",
        lines[0]
    );
    assert!(lines[0].ends_with(&format!("@errors.example.com/{}", shop.id)));
    assert!(lines[1].contains(" active 120 ci_runner "), "{}", lines[1]);
    for reference in [shop.id.to_string(), "default/shop".into()] {
        assert_eq!(
            stdout(&snag(&["project", "keys", &reference], &url)),
            lines.join("\n") + "\n"
        );
    }
    assert_one_line_error(
        &snag(&["project", "keys", "nope"], &url),
        "no project \"nope\"",
    );

    sqlx::query("UPDATE event SET received_at = now() - interval '120 days' WHERE event_id = '00000000000000000000000000000001'")
        .execute(&pool)
        .await
        .unwrap();
    let purge = snag(&["purge"], &url);
    assert!(purge.status.success(), "{}", stderr(&purge));
    assert!(
        stdout(&purge).starts_with("purged 1 expired and 0 over-cap event(s)"),
        "{}",
        stdout(&purge)
    );
    let bad_env = Command::new(env!("CARGO_BIN_EXE_snag"))
        .arg("purge")
        .env("DATABASE_URL", &url)
        .env("SNAG_RETENTION_DAYS", "ninety")
        .output()
        .unwrap();
    assert_one_line_error(&bad_env, "SNAG_RETENTION_DAYS is invalid");
    app.server.shutdown().await.unwrap();
}

fn tempdir() -> std::path::PathBuf {
    let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!(
        "admin-{}-{}",
        std::process::id(),
        uuid::Uuid::new_v4().simple()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}
