use chrono::{DateTime, NaiveDateTime, TimeZone, Utc};
use serde_json::Value;

/// Above this a numeric timestamp cannot be seconds (it would be past the
/// year 5000), so it is read as milliseconds, which some hand-rolled
/// clients send (`Date.now()`).
const MILLIS_THRESHOLD: f64 = 1e11;

/// Reads every timestamp shape SDKs send: unix seconds as number or numeric
/// string, milliseconds, RFC 3339 with any fraction length and offset, and
/// naive ISO strings (taken as UTC, as Relay does).
pub fn parse_timestamp(v: &Value) -> Option<DateTime<Utc>> {
    match v {
        Value::Number(n) => from_secs_f64(n.as_f64()?),
        Value::String(s) => parse_timestamp_str(s),
        _ => None,
    }
}

pub fn parse_timestamp_str(s: &str) -> Option<DateTime<Utc>> {
    let s = s.trim();
    if s.is_empty() || s.len() > 64 {
        return None;
    }
    if s.bytes()
        .all(|b| b.is_ascii_digit() || b == b'.' || b == b'-')
        && !s.contains("--")
        && let Ok(f) = s.parse::<f64>()
    {
        return from_secs_f64(f);
    }
    if let Ok(dt) = DateTime::parse_from_rfc3339(s) {
        return Some(dt.with_timezone(&Utc));
    }
    // Offsets written without a colon (`+0000`) and a space instead of `T`.
    for fmt in ["%Y-%m-%dT%H:%M:%S%.f%z", "%Y-%m-%d %H:%M:%S%.f%z"] {
        if let Ok(dt) = DateTime::parse_from_str(s, fmt) {
            return Some(dt.with_timezone(&Utc));
        }
    }
    let naive = s
        .strip_suffix('Z')
        .or_else(|| s.strip_suffix('z'))
        .unwrap_or(s);
    for fmt in [
        "%Y-%m-%dT%H:%M:%S%.f",
        "%Y-%m-%d %H:%M:%S%.f",
        "%Y-%m-%dT%H:%M",
    ] {
        if let Ok(dt) = NaiveDateTime::parse_from_str(naive, fmt) {
            return Some(Utc.from_utc_datetime(&dt));
        }
    }
    None
}

fn from_secs_f64(f: f64) -> Option<DateTime<Utc>> {
    if !f.is_finite() {
        return None;
    }
    let secs = if f.abs() >= MILLIS_THRESHOLD {
        f / 1000.0
    } else {
        f
    };
    // Outside chrono's range `from_timestamp` returns None; the bound keeps
    // the float→int cast meaningful.
    if secs.abs() > 1e13 {
        return None;
    }
    // Microseconds are all an f64 carries faithfully for present-day
    // dates; rounding to them makes parse → to_float → parse stable.
    let mut whole = secs.floor();
    let mut micros = ((secs - whole) * 1e6).round();
    if micros >= 1e6 {
        whole += 1.0;
        micros = 0.0;
    }
    DateTime::from_timestamp(whole as i64, (micros.max(0.0) as u32) * 1000)
}

/// Canonical numeric form: seconds with microsecond precision (what an f64
/// can faithfully carry for present-day dates).
pub fn to_float(dt: DateTime<Utc>) -> f64 {
    let micros = (f64::from(dt.timestamp_subsec_nanos()) / 1e3).round();
    dt.timestamp() as f64 + micros / 1e6
}

pub fn to_value(dt: DateTime<Utc>) -> Value {
    serde_json::Number::from_f64(to_float(dt))
        .map(Value::Number)
        .unwrap_or(Value::Null)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn relay_equivalent_forms() {
        let want = Utc.with_ymd_and_hms(2011, 5, 2, 17, 41, 36).unwrap();
        for v in [
            json!("2011-05-02T17:41:36Z"),
            json!("2011-05-02T17:41:36"),
            json!("2011-05-02T17:41:36.000"),
            json!("2011-05-02T17:41:36+00:00"),
            json!("2011-05-02T19:41:36+02:00"),
            json!("2011-05-02T17:41:36.0000000+00:00"),
            json!("2011-05-02 17:41:36"),
            json!("2011-05-02T17:41:36+0000"),
            json!(1304358096.0),
            json!(1304358096),
            json!("1304358096"),
            json!(1304358096000u64),
        ] {
            assert_eq!(parse_timestamp(&v), Some(want), "{v}");
        }
    }

    #[test]
    fn fractions_and_garbage() {
        let t = parse_timestamp(&json!("2025-07-31T23:05:37.0926585+00:00")).unwrap();
        assert_eq!(t.timestamp_subsec_micros(), 92658);
        let t = parse_timestamp(&json!(1795842834.9629264)).unwrap();
        assert!((to_float(t) - 1795842834.962926).abs() < 1e-5);
        for v in [
            json!(null),
            json!("yesterday"),
            json!(""),
            json!(true),
            json!({}),
            json!(1e300),
            json!(-1e300),
            json!("--1"),
            json!("2011-13-45T00:00:00Z"),
        ] {
            assert_eq!(parse_timestamp(&v), None, "{v}");
        }
    }
}
