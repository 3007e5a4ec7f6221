//! Bounded operations on untrusted JSON. Every function here has a fixed
//! recursion depth, so an attacker-controlled payload can neither overflow
//! the stack nor make a string or list grow without limit.

use serde_json::{Map, Value};

/// Deepest nesting kept anywhere in a stored event. Legitimate payloads stay
/// well below (an exception frame's variable sits at depth ~9; Relay's
/// largest data bags allow 16 levels below their root).
pub const MAX_EVENT_DEPTH: usize = 32;
/// Longest string kept anywhere in a stored event unless a field has a
/// tighter limit.
pub const MAX_STRING_BYTES: usize = 16 * 1024;
/// Longest object key kept anywhere: keys are names, and a 1 MB key would
/// otherwise pass every string limit, which only looks at values.
pub const MAX_KEY_BYTES: usize = 256;
/// Longest array kept anywhere: a 1 MiB event cannot legitimately need more
/// and a cap keeps per-element work bounded.
pub const MAX_ARRAY_LEN: usize = 10_000;

/// Drops a value of any depth without recursion (serde_json's own drop
/// recurses once per nesting level).
pub fn drop_deep(v: Value) {
    let mut stack = vec![v];
    while let Some(v) = stack.pop() {
        match v {
            Value::Array(a) => stack.extend(a),
            Value::Object(m) => stack.extend(m.into_iter().map(|(_, v)| v)),
            _ => {}
        }
    }
}

/// Replaces `slot` and disposes of the old value safely.
pub fn replace(slot: &mut Value, new: Value) {
    drop_deep(std::mem::replace(slot, new));
}

/// Enforces the global limits on depth, string length and array length.
/// Containers below the depth limit become a short JSON preview string, so
/// the reader still sees what was there.
pub fn cap_depth(v: &mut Value, depth_left: usize) {
    match v {
        Value::String(s) => {
            truncate_bytes(s, MAX_STRING_BYTES);
        }
        Value::Array(_) | Value::Object(_) if depth_left == 0 => {
            let p = preview(v, 256);
            replace(v, Value::String(p));
        }
        Value::Array(a) => {
            if a.len() > MAX_ARRAY_LEN {
                for x in a.drain(MAX_ARRAY_LEN..) {
                    drop_deep(x);
                }
            }
            for x in a.iter_mut() {
                cap_depth(x, depth_left - 1);
            }
        }
        Value::Object(m) => {
            cap_keys(m);
            for x in m.values_mut() {
                cap_depth(x, depth_left - 1);
            }
        }
        _ => {}
    }
}

/// Cuts keys longer than [`MAX_KEY_BYTES`]; of keys that then collide the
/// first wins.
pub fn cap_keys(m: &mut Map<String, Value>) {
    if !m.keys().any(|k| k.len() > MAX_KEY_BYTES) {
        return;
    }
    for (mut k, x) in std::mem::take(m) {
        truncate_bytes(&mut k, MAX_KEY_BYTES);
        if m.contains_key(&k) {
            drop_deep(x);
        } else {
            m.insert(k, x);
        }
    }
}

/// Compact JSON rendering of at most `max_bytes` (plus an ellipsis), never
/// descending more than a few levels.
pub fn preview(v: &Value, max_bytes: usize) -> String {
    let mut out = String::new();
    write_preview(&mut out, v, 6, max_bytes);
    if out.len() > max_bytes {
        truncate_bytes(&mut out, max_bytes);
    }
    out
}

fn write_preview(out: &mut String, v: &Value, depth: usize, max: usize) {
    if out.len() > max {
        return;
    }
    match v {
        Value::Array(a) => {
            if depth == 0 {
                out.push_str("[...]");
                return;
            }
            out.push('[');
            for (i, x) in a.iter().enumerate() {
                if out.len() > max {
                    break;
                }
                if i > 0 {
                    out.push(',');
                }
                write_preview(out, x, depth - 1, max);
            }
            out.push(']');
        }
        Value::Object(m) => {
            if depth == 0 {
                out.push_str("{...}");
                return;
            }
            out.push('{');
            for (i, (k, x)) in m.iter().enumerate() {
                if out.len() > max {
                    break;
                }
                if i > 0 {
                    out.push(',');
                }
                out.push_str(&Value::String(k.clone()).to_string());
                out.push(':');
                write_preview(out, x, depth - 1, max);
            }
            out.push('}');
        }
        Value::String(s) => {
            let mut s = s.clone();
            truncate_bytes(&mut s, max.saturating_sub(out.len()).max(8));
            out.push_str(&Value::String(s).to_string());
        }
        other => out.push_str(&other.to_string()),
    }
}

/// Largest char boundary not after `max`.
fn floor_boundary(s: &str, max: usize) -> usize {
    let mut i = max.min(s.len());
    while !s.is_char_boundary(i) {
        i -= 1;
    }
    i
}

/// Cuts `s` to at most `max` bytes, marking the cut with "..." the way
/// Relay does. Returns whether anything was cut.
pub fn truncate_bytes(s: &mut String, max: usize) -> bool {
    if s.len() <= max {
        return false;
    }
    let keep = floor_boundary(s, max.saturating_sub(3));
    s.truncate(keep);
    s.push_str("...");
    true
}

/// Cuts `s` to at most `max` characters (Relay's limits count chars).
pub fn truncate_chars(s: &mut String, max: usize) -> bool {
    if s.len() <= max {
        return false;
    }
    match s.char_indices().nth(max) {
        None => false,
        Some(_) => {
            let keep = s
                .char_indices()
                .nth(max.saturating_sub(3))
                .map_or(s.len(), |(i, _)| i);
            s.truncate(keep);
            s.push_str("...");
            true
        }
    }
}

/// Relay's `JsonLenientString`: scalars become their text, containers are
/// not strings.
pub fn lenient_string(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

/// Trims a free-form data bag to a depth and a total size, like Relay's
/// `bag_size`: once the byte budget is spent, remaining entries are
/// dropped, and containers at the depth limit collapse to a preview.
pub fn trim_bag(v: &mut Value, max_depth: usize, max_bytes: usize) {
    let mut budget = max_bytes;
    trim_bag_inner(v, max_depth, &mut budget);
}

fn trim_bag_inner(v: &mut Value, depth: usize, budget: &mut usize) {
    match v {
        Value::String(s) => {
            truncate_bytes(s, (*budget).max(3));
            *budget = budget.saturating_sub(s.len());
        }
        Value::Array(_) | Value::Object(_) if depth == 0 => {
            let p = preview(v, (*budget).clamp(16, 512));
            *budget = budget.saturating_sub(p.len());
            replace(v, Value::String(p));
        }
        Value::Array(a) => {
            let mut keep = 0;
            for x in a.iter_mut() {
                if *budget == 0 {
                    break;
                }
                trim_bag_inner(x, depth - 1, budget);
                keep += 1;
            }
            for x in a.drain(keep..) {
                drop_deep(x);
            }
        }
        Value::Object(m) => {
            let mut cut = Vec::new();
            for (k, x) in m.iter_mut() {
                if *budget == 0 {
                    cut.push(k.clone());
                    continue;
                }
                *budget = budget.saturating_sub(k.len());
                trim_bag_inner(x, depth - 1, budget);
            }
            for k in cut {
                if let Some(x) = m.remove(&k) {
                    drop_deep(x);
                }
            }
        }
        Value::Number(n) => *budget = budget.saturating_sub(n.to_string().len()),
        Value::Bool(_) | Value::Null => *budget = budget.saturating_sub(4),
    }
}

/// Object form of a key/value list: `{"a":1}` stays, `[["a",1]]` becomes
/// `{"a":1}`; anything else is None.
pub fn pairs_to_object(v: Value) -> Option<Map<String, Value>> {
    match v {
        Value::Object(m) => Some(m),
        Value::Array(a) => {
            let mut m = Map::new();
            for item in a {
                if let Value::Array(mut pair) = item
                    && pair.len() == 2
                {
                    let val = pair.pop().unwrap_or(Value::Null);
                    if let Some(k) = pair.pop().as_ref().and_then(lenient_string) {
                        m.insert(k, val);
                    }
                }
            }
            Some(m)
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn truncation_respects_char_boundaries() {
        let mut s = "ééééé".to_owned();
        assert!(truncate_bytes(&mut s, 6));
        assert_eq!(s, "é...");
        let mut s = "ééééé".to_owned();
        assert!(truncate_chars(&mut s, 4));
        assert_eq!(s, "é...");
        let mut s = "éééé".to_owned();
        assert!(!truncate_chars(&mut s, 4));
    }

    #[test]
    fn long_keys_are_cut_and_collisions_dropped() {
        let long_a = format!("{}a", "k".repeat(1000));
        let long_b = format!("{}b", "k".repeat(1000));
        let mut v = json!({"outer": {long_a.clone(): 1, long_b: 2, "short": 3}});
        cap_depth(&mut v, 8);
        let inner = v["outer"].as_object().unwrap();
        assert_eq!(inner.len(), 2, "{inner:?}");
        assert!(inner.keys().all(|k| k.len() <= MAX_KEY_BYTES));
        assert_eq!(inner["short"], 3);
        assert!(!inner.contains_key(&long_a));
    }

    #[test]
    fn bag_budget_and_depth() {
        let mut v = json!({"a": "x".repeat(100), "b": {"c": {"d": {"e": 1}}}, "z": "late"});
        trim_bag(&mut v, 2, 60);
        let a = v["a"].as_str().unwrap();
        assert!(a.len() <= 60 && a.ends_with("..."));
        assert!(v.get("z").is_none(), "{v}");

        let mut v = json!({"b": {"c": {"d": {"e": 1}}}});
        trim_bag(&mut v, 2, 1000);
        assert_eq!(v["b"]["c"], json!("{\"d\":{\"e\":1}}"));
    }

    #[test]
    fn deep_values_are_capped_without_recursion() {
        let mut v = Value::Null;
        for _ in 0..50_000 {
            v = Value::Array(vec![v]);
        }
        cap_depth(&mut v, 4);
        let mut d = 0;
        let mut cur = &v;
        while let Value::Array(a) = cur {
            d += 1;
            cur = &a[0];
        }
        assert_eq!(d, 4);
        assert!(cur.as_str().unwrap().starts_with("[[[["));
        drop_deep(v);
    }

    #[test]
    fn pair_lists() {
        let m = pairs_to_object(json!([["a", 1], ["b"], 3, [2, "x"]])).unwrap();
        assert_eq!(Value::Object(m), json!({"a": 1, "2": "x"}));
        assert!(pairs_to_object(json!("nope")).is_none());
    }
}
