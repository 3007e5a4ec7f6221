//! `snag export` / `snag import`: JSON lines, one record per line, each
//! with a `type` (`snag-export` header, then `project`, `key`, `issue`,
//! `event`, in that order, so an import can stream).

use crate::store::backup::{EventRecord, ImportedProject, IssueRecord, KeyRecord, ProjectRecord};
use crate::store::{Store, StoreError};
use serde::Serialize;
use serde_json::Value;
use std::io::{BufRead, Write};

pub const FORMAT_VERSION: u64 = 1;
const PAGE: i64 = 500;

#[derive(Debug, thiserror::Error)]
pub enum BackupError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("cannot write the export: {0}")]
    Write(std::io::Error),
    #[error("line {line}: {message}")]
    Input { line: usize, message: String },
    #[error("the input is empty (expected a `snag export` file)")]
    Empty,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Counts {
    pub projects: u64,
    pub keys: u64,
    pub issues: u64,
    pub events: u64,
}

impl std::fmt::Display for Counts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} project(s), {} key(s), {} issue(s), {} event(s)",
            self.projects, self.keys, self.issues, self.events
        )
    }
}

#[derive(Serialize)]
struct Tagged<'a, T: Serialize> {
    #[serde(rename = "type")]
    kind: &'a str,
    #[serde(flatten)]
    record: &'a T,
}

fn line<T: Serialize>(out: &mut impl Write, kind: &str, record: &T) -> Result<(), BackupError> {
    serde_json::to_writer(&mut *out, &Tagged { kind, record })
        .map_err(|e| BackupError::Write(e.into()))?;
    out.write_all(b"\n").map_err(BackupError::Write)
}

/// Writes every project (or those in `only`, by id) with its keys, issues
/// and events.
pub async fn export(
    store: &Store,
    only: &[i64],
    out: &mut impl Write,
) -> Result<Counts, BackupError> {
    let mut counts = Counts::default();
    line(
        out,
        "snag-export",
        &serde_json::json!({
            "version": FORMAT_VERSION,
            "snag": env!("CARGO_PKG_VERSION"),
            "exported_at": chrono::Utc::now(),
        }),
    )?;
    let projects = store.export_projects(only).await?;
    for project in &projects {
        line(out, "project", project)?;
        counts.projects += 1;
    }
    for project in &projects {
        for key in store.export_keys(project.id).await? {
            line(out, "key", &key)?;
            counts.keys += 1;
        }
    }
    for project in &projects {
        let mut after = 0;
        loop {
            let page = store.export_issues(project.id, after, PAGE).await?;
            let Some(last) = page.last() else { break };
            after = last.id;
            for issue in &page {
                line(out, "issue", issue)?;
                counts.issues += 1;
            }
        }
    }
    for project in &projects {
        let mut after = 0;
        loop {
            let page = store.export_events(project.id, after, PAGE).await?;
            let Some(last) = page.last() else { break };
            after = last.id;
            for event in &page {
                line(out, "event", event)?;
                counts.events += 1;
            }
        }
    }
    out.flush().map_err(BackupError::Write)?;
    Ok(counts)
}

fn parse<T: serde::de::DeserializeOwned>(value: Value, line: usize) -> Result<T, BackupError> {
    serde_json::from_value(value).map_err(|e| BackupError::Input {
        line,
        message: e.to_string(),
    })
}

/// Loads an export in one transaction: everything or, on the first bad or
/// conflicting record, nothing.
pub async fn import(
    store: &Store,
    input: impl BufRead,
) -> Result<(Counts, Vec<ImportedProject>), BackupError> {
    let mut counts = Counts::default();
    let mut import = store.begin_import().await?;
    let mut saw_header = false;
    for (n, text) in input.lines().enumerate() {
        let number = n + 1;
        let text = text.map_err(|e| BackupError::Input {
            line: number,
            message: format!("cannot read: {e}"),
        })?;
        if text.trim().is_empty() {
            continue;
        }
        let input_error = |message: String| BackupError::Input {
            line: number,
            message,
        };
        let mut value: Value =
            serde_json::from_str(&text).map_err(|e| input_error(format!("not JSON: {e}")))?;
        let kind = value
            .as_object_mut()
            .and_then(|o| o.remove("type"))
            .and_then(|t| t.as_str().map(str::to_string))
            .ok_or_else(|| input_error("expected an object with a \"type\"".into()))?;
        if !saw_header && kind != "snag-export" {
            return Err(input_error(
                "not a snag export (the first line must be the snag-export header)".into(),
            ));
        }
        let located = |e: StoreError| match e {
            StoreError::Conflict(message) => input_error(message),
            other => input_error(other.to_string()),
        };
        match kind.as_str() {
            "snag-export" => {
                let version = value.get("version").and_then(Value::as_u64);
                if version != Some(FORMAT_VERSION) {
                    return Err(input_error(format!(
                        "unsupported export version {version:?} (this snag reads version {FORMAT_VERSION})"
                    )));
                }
                saw_header = true;
            }
            "project" => {
                let record: ProjectRecord = parse(value, number)?;
                import.project(&record).await.map_err(located)?;
                counts.projects += 1;
            }
            "key" => {
                let record: KeyRecord = parse(value, number)?;
                import.key(&record).await.map_err(located)?;
                counts.keys += 1;
            }
            "issue" => {
                let record: IssueRecord = parse(value, number)?;
                import.issue(&record).await.map_err(located)?;
                counts.issues += 1;
            }
            "event" => {
                let record: EventRecord = parse(value, number)?;
                import.event(&record).await.map_err(located)?;
                counts.events += 1;
            }
            other => return Err(input_error(format!("unknown record type {other:?}"))),
        }
    }
    if !saw_header {
        return Err(BackupError::Empty);
    }
    let imported = import.commit().await?;
    Ok((counts, imported))
}
