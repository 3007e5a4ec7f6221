//! The binary as an operator meets it: version, migration checks, refusing
//! to run as root or against a newer schema, clear one-line errors.

mod common;

use common::*;
use sqlx::PgPool;
use std::process::{Command, Output};

fn snag(args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_snag"));
    cmd.args(args)
        .env_remove("SNAG_ALLOW_ROOT")
        .env("SNAG_SECRET_KEY", "ops-test-secret-key-0123456789");
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().expect("run snag")
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

#[test]
fn version_and_bad_arguments() {
    let v = snag(&["--version"], &[]);
    assert!(v.status.success());
    assert!(String::from_utf8_lossy(&v.stdout).starts_with("snag "));
    let bad = snag(
        &["project", "create"],
        &[("DATABASE_URL", "postgres://x@127.0.0.1:1/x")],
    );
    assert_eq!(bad.status.code(), Some(2));
    assert!(!stderr(&bad).contains("panicked"));
}

#[test]
fn unreachable_database_is_one_clear_line() {
    for args in [&["check"][..], &["migrate"], &["project", "list"]] {
        let o = snag(
            args,
            &[("DATABASE_URL", "postgres://snag@127.0.0.1:1/none")],
        );
        assert_eq!(o.status.code(), Some(1), "{args:?}");
        let err = stderr(&o);
        assert!(
            err.starts_with("error: cannot connect to the database"),
            "{args:?}: {err}"
        );
        assert_eq!(err.trim_end().lines().count(), 1, "{err}");
    }
}

#[sqlx::test(migrations = false)]
async fn migrate_check_serve_and_newer_schema(pool: PgPool) {
    let url = database_url_of(&pool);
    let env = [("DATABASE_URL", url.as_str()), ("SNAG_ALLOW_ROOT", "1")];
    let pending = snag(&["migrate", "--check"], &env);
    assert_eq!(
        pending.status.code(),
        Some(1),
        "fresh database has pending migrations"
    );
    let serve = snag(&["serve"], &env);
    assert_eq!(serve.status.code(), Some(1));
    assert!(stderr(&serve).contains("pending"), "{}", stderr(&serve));

    assert!(snag(&["migrate"], &env).status.success());
    assert!(
        snag(&["migrate"], &env).status.success(),
        "migrate is idempotent"
    );
    assert!(snag(&["migrate", "--check"], &env).status.success());
    let check = snag(&["check"], &env);
    assert!(check.status.success(), "{}", stderr(&check));

    // A newer release's additive migration: this binary keeps serving
    // (side-by-side deploys and rollbacks rely on it).
    sqlx::query(
        "INSERT INTO _sqlx_migrations (version, description, success, checksum, execution_time)
         VALUES (99990101000000, 'add future column', true, '\\x00', 0)",
    )
    .execute(&pool)
    .await
    .unwrap();
    let serving = SnagProcess::spawn(&url, free_port(), &[]).await;
    let log = std::fs::read_to_string(&serving.log_path).unwrap();
    assert!(
        log.contains("additive migrations from a newer release"),
        "{log}"
    );
    drop(serving);
    // A contract migration removed something: refuse.
    sqlx::query(
        "INSERT INTO _sqlx_migrations (version, description, success, checksum, execution_time)
         VALUES (99990102000000, 'contract drop issue culprit', true, '\\x00', 0)",
    )
    .execute(&pool)
    .await
    .unwrap();
    let serve = snag(&["serve"], &env);
    assert_eq!(serve.status.code(), Some(1));
    let err = stderr(&serve);
    assert!(err.contains("newer than this binary"), "{err}");
    assert!(
        err.contains("99990102000000_contract drop issue culprit"),
        "{err}"
    );
    assert!(!err.contains("future column"), "{err}");
}

#[sqlx::test]
async fn serve_refuses_root_unless_allowed(pool: PgPool) {
    let is_root = std::fs::read_to_string("/proc/self/status")
        .unwrap()
        .lines()
        .any(|l| l.starts_with("Uid:") && l.split_whitespace().nth(2) == Some("0"));
    if !is_root {
        return; // Only meaningful where the suite runs as root (CI).
    }
    let url = database_url_of(&pool);
    let o = snag(&["serve"], &[("DATABASE_URL", url.as_str())]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stderr(&o).contains("refusing to serve as root"),
        "{}",
        stderr(&o)
    );
}
