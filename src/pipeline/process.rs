//! From a raw payload to a row ready for the writer: normalise, group,
//! title. Pure CPU work, run on the request's task so it scales with cores.

use crate::event::{self, EventError, NormalizeContext};
use crate::grouping::{self, FingerprintRules, GroupingConfig, StackRules};
use crate::store::KeyInfo;
use crate::store::write::NewEvent;
use serde_json::{Value, json};

/// A project's ingest settings with its fingerprint rules parsed once.
#[derive(Debug)]
pub struct ProjectContext {
    pub info: KeyInfo,
    pub rules: FingerprintRules,
    pub stack_rules: StackRules,
    pub grouping: GroupingConfig,
}

impl ProjectContext {
    pub fn new(info: KeyInfo) -> Self {
        // Rules were validated when saved; a rule set that no longer parses
        // (older syntax) must not stop ingest, so it degrades to none.
        let rules = FingerprintRules::parse(&info.fingerprint_rules).unwrap_or_else(|e| {
            tracing::warn!(project_id = info.project_id, error = %e, "ignoring unparsable fingerprint rules");
            FingerprintRules::default()
        });
        let stack_rules = StackRules::parse(&info.stack_rules).unwrap_or_else(|e| {
            tracing::warn!(project_id = info.project_id, error = %e, "ignoring unparsable stack trace rules");
            StackRules::default()
        });
        let grouping = GroupingConfig::by_id(&info.grouping_config).unwrap_or_default();
        Self {
            info,
            rules,
            stack_rules,
            grouping,
        }
    }
}

pub fn build_event(
    project: &ProjectContext,
    mut raw: Value,
    ctx: &NormalizeContext,
) -> Result<NewEvent, EventError> {
    // PostgreSQL TEXT refuses U+0000. The columns derived from the payload
    // (message, title, tags…) would otherwise fail the write on every retry,
    // so it is replaced before anything is derived.
    strip_nul(&mut raw);
    let normalized = event::normalize(raw, ctx)?;
    let mut data = normalized.data;
    let summary = normalized.summary;

    let is_transaction = summary.event_type == "transaction";
    let (hashes, title, culprit, metadata, grouping_info) = if is_transaction {
        let name = summary
            .transaction
            .clone()
            .unwrap_or_else(|| "<unlabeled transaction>".into());
        (Vec::new(), name.clone(), name, json!({}), None)
    } else {
        let result = grouping::compute_with(
            &data,
            &project.rules,
            &project.stack_rules,
            &project.grouping,
        );
        let info = json!({
            "config": project.grouping.spec(),
            "hashes": result.hashes,
            "variants": result.variants,
            "matched_rule": result.matched_rule,
            "fingerprint_kind": result.fingerprint_kind,
        });
        let metadata = serde_json::to_value(&result.metadata).unwrap_or_else(|_| json!({}));
        (
            result.hashes,
            result.title,
            result.culprit,
            metadata,
            Some(info),
        )
    };
    if let Some(obj) = data.as_object_mut() {
        obj.insert("title".into(), Value::String(title.clone()));
        obj.insert("culprit".into(), Value::String(culprit.clone()));
        obj.insert("metadata".into(), metadata.clone());
    }

    Ok(NewEvent {
        project_id: project.info.project_id,
        event_id: summary.event_id,
        event_type: summary.event_type,
        timestamp: summary.timestamp,
        received: summary.received,
        level: summary.level.as_str().to_string(),
        platform: summary.platform,
        release: summary.release,
        environment: summary.environment,
        transaction: summary.transaction,
        message: summary.message,
        title,
        culprit,
        metadata,
        user_key: summary.user_key,
        tags: summary.tags,
        payload: crate::store::payload::encode(&data),
        grouping: grouping_info.as_ref().map(crate::store::payload::encode),
        hashes,
    })
}

/// PostgreSQL's JSONB rejects U+0000 inside strings; SDKs do send it (binary
/// data in messages), so it is replaced rather than failing the event.
pub fn strip_nul(value: &mut Value) {
    match value {
        Value::String(s) if s.contains('\0') => *s = s.replace('\0', "\u{FFFD}"),
        Value::Array(items) => items.iter_mut().for_each(strip_nul),
        Value::Object(map) => {
            if map.keys().any(|k| k.contains('\0')) {
                let entries: Vec<_> = std::mem::take(map).into_iter().collect();
                for (k, v) in entries {
                    map.insert(k.replace('\0', "\u{FFFD}"), v);
                }
            }
            map.values_mut().for_each(strip_nul);
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::strip_nul;
    use serde_json::json;

    #[test]
    fn nul_bytes_are_replaced_everywhere() {
        let mut v = json!({"a\u{0}": ["x\u{0}y", {"k": "\u{0}"}], "n": 1});
        strip_nul(&mut v);
        assert_eq!(
            v,
            json!({"a\u{FFFD}": ["x\u{FFFD}y", {"k": "\u{FFFD}"}], "n": 1})
        );
    }
}
