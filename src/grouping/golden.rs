//! Hash stability: every known grouping config must keep producing exactly the hashes it
//! produced when it shipped, because stored issues are found by them. A change that moves a
//! hash belongs in a new config id; `SNAG_UPDATE_GOLDEN=1` writes the file of a config that
//! has none yet, never over an existing one.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde_json::Value;

use super::{FingerprintRules, GroupingConfig, compute};

fn corpus() -> Vec<(String, Value, String)> {
    let raw: Value = serde_json::from_str(include_str!("testdata/corpus.json")).unwrap();
    raw.as_array()
        .unwrap()
        .iter()
        .map(|c| {
            (
                c["name"].as_str().unwrap().to_owned(),
                c["event"].clone(),
                c["rules"].as_str().unwrap_or("").to_owned(),
            )
        })
        .collect()
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
        for (name, event, rules) in corpus() {
            let rules = FingerprintRules::parse(&rules).unwrap();
            got.insert(name, compute(&event, &rules, &cfg).hashes);
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
