//! Hash stability: every known grouping config must keep producing exactly the hashes it
//! produced when it shipped, because stored issues are found by them. A change that moves a
//! hash belongs in a new config id; `SNAG_UPDATE_GOLDEN=1` writes the file of a config that
//! has none yet, never over an existing one.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde_json::Value;

use super::{FingerprintRules, GroupingConfig, StackRules, compute_with};

struct Case {
    name: String,
    event: Value,
    rules: String,
    stack_rules: String,
    /// The first config the case applies to: cases added with a config are not
    /// retrofitted onto older ones, whose hashes were frozen without them.
    since: Option<String>,
}

fn corpus() -> Vec<Case> {
    let raw: Value = serde_json::from_str(include_str!("testdata/corpus.json")).unwrap();
    let text = |c: &Value, k: &str| c[k].as_str().unwrap_or("").to_owned();
    raw.as_array()
        .unwrap()
        .iter()
        .map(|c| Case {
            name: text(c, "name"),
            event: c["event"].clone(),
            rules: text(c, "rules"),
            stack_rules: text(c, "stack_rules"),
            since: c["since"].as_str().map(str::to_owned),
        })
        .collect()
}

fn applies(case: &Case, id: &str) -> bool {
    let ids = GroupingConfig::known_ids();
    let pos = |x: &str| ids.iter().position(|k| *k == x).unwrap();
    case.since.as_deref().is_none_or(|s| pos(id) >= pos(s))
}

fn golden_path(id: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("src/grouping/testdata")
        .join(format!("golden-{}.json", id.replace(':', "-")))
}

#[test]
fn every_config_keeps_its_hashes() {
    for id in GroupingConfig::known_ids() {
        let cfg = GroupingConfig::by_id(id).unwrap();
        let mut got: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for case in corpus().into_iter().filter(|c| applies(c, id)) {
            let rules = FingerprintRules::parse(&case.rules).unwrap();
            let stack_rules = StackRules::parse(&case.stack_rules).unwrap();
            let r = compute_with(&case.event, &rules, &stack_rules, &cfg);
            got.insert(case.name, r.hashes);
        }
        let path = golden_path(id);
        match std::fs::read_to_string(&path) {
            Ok(text) => {
                let want: BTreeMap<String, Vec<String>> = serde_json::from_str(&text).unwrap();
                for (name, hashes) in &want {
                    assert_eq!(
                        got.get(name),
                        Some(hashes),
                        "config {id} changed the hashes of corpus event {name:?}"
                    );
                }
                let missing: Vec<&String> = got.keys().filter(|k| !want.contains_key(*k)).collect();
                assert!(
                    missing.is_empty(),
                    "corpus events without golden hashes for {id}: {missing:?} (add them to the file by hand: run with SNAG_UPDATE_GOLDEN=1 on a copy)"
                );
            }
            Err(_) if std::env::var_os("SNAG_UPDATE_GOLDEN").is_some() => {
                std::fs::write(&path, serde_json::to_string_pretty(&got).unwrap() + "\n").unwrap();
            }
            Err(e) => panic!(
                "no golden hashes for config {id} at {}: {e}",
                path.display()
            ),
        }
    }
}
