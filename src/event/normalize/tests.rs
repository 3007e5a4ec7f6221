use super::super::*;
use chrono::{TimeZone, Utc};
use serde_json::{Value, json};

fn received() -> DateTime<Utc> {
    // Just after the captured fixtures were sent.
    Utc.with_ymd_and_hms(2026, 11, 28, 5, 14, 0).unwrap()
}

fn ctx() -> NormalizeContext {
    NormalizeContext::new(received())
}

fn norm(v: Value) -> NormalizedEvent {
    normalize(v, &ctx()).expect("normalizes")
}

fn fixture(name: &str) -> Value {
    let text = match name {
        "raven_exception" => include_str!("../testdata/raven_exception.json"),
        "raven_message" => include_str!("../testdata/raven_message.json"),
        "raven_logging" => include_str!("../testdata/raven_logging.json"),
        "node_exception" => include_str!("../testdata/node_exception.json"),
        "node_message" => include_str!("../testdata/node_message.json"),
        "python_keyerror" => include_str!("../testdata/python_keyerror.json"),
        "python_zerodivision" => include_str!("../testdata/python_zerodivision.json"),
        "python_message" => include_str!("../testdata/python_message.json"),
        "python_logging" => include_str!("../testdata/python_logging.json"),
        "python_transaction" => include_str!("../testdata/python_transaction.json"),
        other => panic!("no fixture {other}"),
    };
    serde_json::from_str(text).unwrap()
}

const FIXTURES: &[&str] = &[
    "raven_exception",
    "raven_message",
    "raven_logging",
    "node_exception",
    "node_message",
    "python_keyerror",
    "python_zerodivision",
    "python_message",
    "python_logging",
    "python_transaction",
];

fn tag<'a>(data: &'a Value, key: &str) -> Option<&'a str> {
    data["tags"]
        .as_array()?
        .iter()
        .find(|p| p[0] == key)
        .and_then(|p| p[1].as_str())
}

fn error_types(data: &Value) -> Vec<String> {
    data["errors"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|e| e["type"].as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

fn assert_canonical(d: &Value) {
    let id = d["event_id"].as_str().unwrap();
    assert_eq!(id.len(), 32);
    assert!(
        id.chars()
            .all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase())
    );
    assert!(d["timestamp"].is_f64(), "{}", d["timestamp"]);
    assert!(d["received"].is_f64());
    assert!(d["level"].as_str().unwrap().parse::<Level>().is_ok());
    assert!(d["platform"].is_string());
    assert!(d["type"].is_string());
    for key in ["exception", "threads", "breadcrumbs"] {
        if let Some(v) = d.get(key) {
            assert!(v["values"].is_array(), "{key}: {v}");
        }
    }
    if let Some(tags) = d.get("tags") {
        for p in tags.as_array().unwrap() {
            assert!(p[0].is_string() && p[1].is_string() && p.as_array().unwrap().len() == 2);
        }
    }
    for legacy in [
        "sentry.interfaces.Exception",
        "sentry.interfaces.Message",
        "sentry.interfaces.Http",
        "sentry.interfaces.User",
        "sentry.interfaces.Stacktrace",
        "sentry.interfaces.Template",
        "sentry.interfaces.Query",
    ] {
        assert!(d.get(legacy).is_none(), "{legacy} left in place");
    }
}

// ---------------------------------------------------------------- fixtures

#[test]
fn every_fixture_normalizes_to_canonical_form() {
    for name in FIXTURES {
        let kind = if name.contains("transaction") {
            ItemKind::Transaction
        } else {
            ItemKind::Event
        };
        let mut c = ctx();
        c.item_type = kind;
        let ev = normalize(fixture(name), &c).unwrap();
        assert_canonical(&ev.data);
        assert!(
            ev.data.get("errors").is_none(),
            "{name}: {}",
            ev.data["errors"]
        );
        assert_eq!(summarize(&ev.data), ev.summary, "{name}");
        assert_eq!(ev.summary.received, received());
    }
}

#[test]
fn raven_exception_event() {
    let mut c = ctx();
    c.client_sdk = Some("raven-python/6.10.0".into());
    let ev = normalize(fixture("raven_exception"), &c).unwrap();
    let d = &ev.data;
    assert_eq!(d["event_id"], "b161b680df1b4dffaa1d4d6d16968dcb");
    assert_eq!(d["level"], "error");
    assert_eq!(d["type"], "error");
    assert_eq!(d["platform"], "python");
    assert_eq!(d["logentry"]["formatted"], "KeyError: 'sku'");
    assert_eq!(d["message"], "KeyError: 'sku'");
    assert!(d.get("project").is_none() && d.get("time_spent").is_none());
    assert!(d.get("tags").is_none());
    let ts = Utc.with_ymd_and_hms(2026, 11, 28, 5, 13, 54).unwrap();
    assert_eq!(d["timestamp"].as_f64().unwrap(), ts.timestamp() as f64);
    let exc = &d["exception"]["values"][0];
    assert_eq!(exc["type"], "KeyError");
    let frames = exc["stacktrace"]["frames"].as_array().unwrap();
    assert_eq!(frames.len(), 2);
    assert_eq!(frames[1]["function"], "lookup");
    assert_eq!(frames[1]["lineno"], 6);
    assert_eq!(frames[1]["context_line"], "    return cart[\"sku\"]");
    assert_eq!(frames[1]["pre_context"].as_array().unwrap().len(), 5);
    assert_eq!(frames[0]["vars"]["__name__"], "'__main__'");
    assert!(frames[0]["vars"]["__doc__"].is_null());

    let s = &ev.summary;
    assert_eq!(s.event_type, "error");
    assert_eq!(s.level, Level::Error);
    assert_eq!(s.release.as_deref(), Some("shop@1.4.2"));
    assert_eq!(s.environment.as_deref(), Some("production"));
    assert_eq!(s.server_name.as_deref(), Some("web-1"));
    assert_eq!(s.sdk_name.as_deref(), Some("raven-python"));
    assert_eq!(s.sdk_version.as_deref(), Some("6.10.0"));
    assert_eq!(s.timestamp, ts);
    assert!(s.tags.contains(&("level".into(), "error".into())));
}

#[test]
fn raven_message_interface_is_formatted() {
    let d = norm(fixture("raven_message")).data;
    assert_eq!(
        d["logentry"],
        json!({"formatted": "Payment 9912 failed", "message": "Payment %s failed", "params": ["9912"]})
    );
    assert_eq!(d["message"], "Payment 9912 failed");
    assert_eq!(d["type"], "default");
    let crumb = &d["breadcrumbs"]["values"][0];
    assert_eq!(crumb["level"], "debug");
    assert!(crumb["timestamp"].is_f64());

    let d = norm(fixture("raven_logging")).data;
    assert_eq!(d["logentry"]["formatted"], "Payment 7777 failed");
    assert_eq!(d["logger"], "shop");
    assert_eq!(d["breadcrumbs"]["values"].as_array().unwrap().len(), 3);
}

#[test]
fn sentry_python_events() {
    let ev = norm(fixture("python_keyerror"));
    let exc = &ev.data["exception"]["values"][0];
    assert_eq!(
        exc["mechanism"],
        json!({"type": "generic", "handled": true})
    );
    assert!(exc.get("module").is_none(), "null module dropped");
    assert!(ev.summary.tags.contains(&("handled".into(), "yes".into())));
    assert!(
        ev.summary
            .tags
            .contains(&("mechanism".into(), "generic".into()))
    );
    assert_eq!(ev.data["contexts"]["runtime"]["type"], "runtime");
    assert!(ev.summary.tags.iter().any(|(k, _)| k == "runtime.name"));

    let ev = norm(fixture("python_message"));
    assert_eq!(
        ev.data["logentry"],
        json!({"formatted": "Payment 9912 failed"})
    );
    assert_eq!(ev.summary.level, Level::Warning);
    assert_eq!(ev.summary.message.as_deref(), Some("Payment 9912 failed"));

    let ev = norm(fixture("python_logging"));
    assert_eq!(
        ev.data["logentry"],
        json!({"formatted": "Payment 7777 failed", "message": "Payment %s failed", "params": [7777]})
    );
    assert_eq!(ev.summary.logger.as_deref(), Some("shop"));
}

#[test]
fn sentry_python_transaction() {
    let mut c = ctx();
    c.item_type = ItemKind::Transaction;
    let ev = normalize(fixture("python_transaction"), &c).unwrap();
    let d = &ev.data;
    assert_eq!(d["type"], "transaction");
    assert_eq!(d["level"], "info");
    assert!(d["start_timestamp"].as_f64().unwrap() < d["timestamp"].as_f64().unwrap());
    assert_eq!(d["spans"], json!([]));
    assert_eq!(ev.summary.transaction.as_deref(), Some("nightly-report"));
    assert_eq!(tag(d, "customer"), Some("acme"));
    assert_eq!(ev.summary.user_key.as_deref(), Some("id:42"));
}

#[test]
fn node_events() {
    let ev = norm(fixture("node_exception"));
    assert_eq!(ev.summary.platform, "node");
    assert_eq!(ev.summary.event_type, "error");
    assert!(ev.data["exception"]["values"][0]["stacktrace"]["frames"].is_array());

    let ev = norm(fixture("node_message"));
    assert_eq!(ev.summary.level, Level::Warning);
    assert_eq!(ev.summary.message.as_deref(), Some("Payment 9912 failed"));
    assert_eq!(
        ev.summary.event_type, "error",
        "synthetic exception present"
    );
}

#[test]
fn canonical_output_is_a_fixed_point() {
    for name in FIXTURES {
        let first = norm(fixture(name)).data;
        let second = norm(first.clone()).data;
        assert_eq!(first, second, "{name}");
    }
}

// ---------------------------------------------------------- legacy shapes

#[test]
fn legacy_interfaces_are_renamed() {
    let mut c = ctx();
    c.client_ip = Some("203.0.113.9".parse().unwrap());
    let raw = json!({
        "sentry.interfaces.Exception": {"type": "ValueError", "value": "bad"},
        "sentry.interfaces.Stacktrace": {"frames": [{"function": "main", "lineno": "12"}]},
        "sentry.interfaces.Http": {
            "url": "https://shop.example/cart?id=7#top",
            "method": "post",
            "headers": {"content-type": "application/x-www-form-urlencoded", "x-api-key": "k"},
            "cookies": "sessionid=abc; theme=dark",
            "data": "a=1&b=two+words"
        },
        "sentry.interfaces.User": {"id": 42, "ip_address": "{{auto}}"},
        "sentry.interfaces.Template": {"filename": "x.html", "lineno": 3},
        "sentry.interfaces.Query": {"query": "SELECT 1", "engine": "psycopg2"},
        "timestamp": "2026-11-28T05:13:00",
    });
    let ev = normalize(raw, &c).unwrap();
    let d = &ev.data;
    assert_canonical(d);
    assert_eq!(d["exception"]["values"][0]["type"], "ValueError");
    assert_eq!(d["stacktrace"]["frames"][0]["lineno"], 12);
    let req = &d["request"];
    assert_eq!(req["url"], "https://shop.example/cart");
    assert_eq!(req["method"], "POST");
    assert_eq!(req["fragment"], "top");
    assert_eq!(req["query_string"], json!([["id", "7"]]));
    assert_eq!(
        req["cookies"],
        json!([["sessionid", "abc"], ["theme", "dark"]])
    );
    assert_eq!(
        req["headers"],
        json!([
            ["Content-Type", "application/x-www-form-urlencoded"],
            ["X-Api-Key", "k"]
        ])
    );
    assert_eq!(req["data"], json!({"a": "1", "b": "two words"}));
    assert_eq!(
        req["inferred_content_type"],
        "application/x-www-form-urlencoded"
    );
    assert_eq!(d["user"], json!({"id": "42", "ip_address": "203.0.113.9"}));
    assert_eq!(d["template"]["filename"], "x.html");
    assert_eq!(d["query"]["engine"], "psycopg2");
    assert_eq!(d["logentry"]["formatted"], "SELECT 1");
    assert_eq!(ev.summary.user_key.as_deref(), Some("id:42"));
    assert_eq!(
        ev.summary.timestamp,
        Utc.with_ymd_and_hms(2026, 11, 28, 5, 13, 0).unwrap()
    );
    assert!(
        ev.summary
            .tags
            .contains(&("url".into(), "https://shop.example/cart".into()))
    );
}

#[test]
fn modern_key_wins_over_alias() {
    let d = norm(json!({
        "user": {"id": "modern"},
        "sentry.interfaces.User": {"id": "legacy"},
        "exception": null,
        "sentry.interfaces.Exception": {"values": [{"type": "Legacy"}]},
    }))
    .data;
    assert_eq!(d["user"]["id"], "modern");
    // A null modern key does not shadow a real legacy value.
    assert_eq!(d["exception"]["values"][0]["type"], "Legacy");
}

#[test]
fn message_and_logentry_variants() {
    let cases = [
        (json!({"message": "plain"}), json!({"formatted": "plain"})),
        (json!({"logentry": "bare"}), json!({"formatted": "bare"})),
        (json!({"message": 42}), json!({"formatted": "42"})),
        (
            json!({"logentry": {"message": "%s + %s", "params": [1, 2]}}),
            json!({"formatted": "1 + 2", "message": "%s + %s", "params": [1, 2]}),
        ),
        (
            json!({"logentry": {"message": "hi %(who)s", "params": {"who": "bo"}}}),
            json!({"formatted": "hi bo", "message": "hi %(who)s", "params": {"who": "bo"}}),
        ),
        (
            json!({"logentry": {"message": "same"}}),
            json!({"formatted": "same"}),
        ),
        // GH-3248: the raw message is the formatted text of the interface.
        (
            json!({"sentry.interfaces.Message": {"message": "Got %s"}, "message": "Got 3"}),
            json!({"formatted": "Got 3", "message": "Got %s"}),
        ),
        (
            json!({"logentry": {"message": "m", "formatted": "f"}, "message": "ignored"}),
            json!({"formatted": "f", "message": "m"}),
        ),
    ];
    for (raw, want) in cases {
        let d = norm(raw.clone()).data;
        assert_eq!(d["logentry"], want, "{raw}");
        assert_eq!(d["message"], want["formatted"], "{raw}");
    }
    let d = norm(json!({"message": [1]})).data;
    assert!(d.get("logentry").is_none());
    assert_eq!(error_types(&d), ["invalid_data"]);
}

#[test]
fn long_messages_are_truncated_with_meta() {
    let d = norm(json!({"message": "x".repeat(10_000)})).data;
    let f = d["logentry"]["formatted"].as_str().unwrap();
    assert_eq!(f.chars().count(), 8192);
    assert!(f.ends_with("..."));
    assert_eq!(d["_meta"]["logentry"]["formatted"][""]["len"], 10_000);
}

// -------------------------------------------------------------- event id

#[test]
fn event_id_sources() {
    let d = norm(json!({"event_id": "B161B680-DF1B-4DFF-AA1D-4D6D16968DCB"})).data;
    assert_eq!(d["event_id"], "b161b680df1b4dffaa1d4d6d16968dcb");

    let mut c = ctx();
    c.event_id = Some("22d00b3f-d1b1-4b5d-8d20-49d138cd8a9c".parse().unwrap());
    let ev = normalize(json!({"event_id": "not even close"}), &c).unwrap();
    assert_eq!(ev.data["event_id"], "22d00b3fd1b14b5d8d2049d138cd8a9c");
    assert_eq!(ev.summary.event_id, c.event_id.unwrap());

    for raw in [
        json!({}),
        json!({"event_id": null}),
        json!({"event_id": ""}),
    ] {
        let a = norm(raw.clone()).summary.event_id;
        let b = norm(raw).summary.event_id;
        assert_ne!(a, b);
        assert_eq!(a.get_version_num(), 4);
    }
    for bad in [json!("xyz"), json!(12), json!(["a"]), json!("g".repeat(32))] {
        assert!(matches!(
            normalize(json!({"event_id": bad}), &ctx()),
            Err(EventError::InvalidEventId(_))
        ));
    }
}

// ------------------------------------------------------------ timestamps

#[test]
fn timestamps_are_floats_and_clamped() {
    let r = received();
    let d = norm(json!({"timestamp": "2026-11-28T05:13:59.5+00:00"})).data;
    assert_eq!(d["timestamp"].as_f64().unwrap(), r.timestamp() as f64 - 0.5);
    assert!(d.get("errors").is_none());

    let d = norm(json!({})).data;
    assert_eq!(d["timestamp"].as_f64().unwrap(), r.timestamp() as f64);

    let future = (r + chrono::Duration::hours(2)).timestamp();
    let d = norm(json!({"timestamp": future})).data;
    assert_eq!(d["timestamp"].as_f64().unwrap(), r.timestamp() as f64);
    assert_eq!(error_types(&d), ["future_timestamp"]);
    assert!(d["errors"][0]["sdk_time"].is_string());

    let d = norm(json!({"timestamp": "2001-01-01T00:00:00Z"})).data;
    assert_eq!(d["timestamp"].as_f64().unwrap(), r.timestamp() as f64);
    assert_eq!(error_types(&d), ["past_timestamp"]);

    // Within the 60 s allowance nothing happens.
    let d = norm(json!({"timestamp": r.timestamp() + 30})).data;
    assert!(d.get("errors").is_none());

    let d = norm(json!({"timestamp": "soon"})).data;
    assert_eq!(error_types(&d), ["invalid_data"]);
    assert_eq!(d["timestamp"].as_f64().unwrap(), r.timestamp() as f64);

    // A clamped transaction keeps its duration.
    let mut c = ctx();
    c.item_type = ItemKind::Transaction;
    let ev = normalize(
        json!({"timestamp": "2001-01-01T00:00:02Z", "start_timestamp": "2001-01-01T00:00:00Z"}),
        &c,
    )
    .unwrap();
    let dur = ev.data["timestamp"].as_f64().unwrap() - ev.data["start_timestamp"].as_f64().unwrap();
    assert!((dur - 2.0).abs() < 1e-6);
}

#[test]
fn clock_drift_is_corrected_from_sent_at() {
    let r = received();
    let mut c = ctx();
    // The device clock is three hours behind.
    c.sent_at = Some(r - chrono::Duration::hours(3));
    let device_ts = r - chrono::Duration::hours(3) - chrono::Duration::seconds(5);
    let ev = normalize(
        json!({
            "timestamp": device_ts.to_rfc3339(),
            "breadcrumbs": [{"timestamp": device_ts.timestamp(), "message": "m"}]
        }),
        &c,
    )
    .unwrap();
    assert_eq!(ev.summary.timestamp, r - chrono::Duration::seconds(5));
    assert_eq!(error_types(&ev.data), ["clock_drift"]);
    let crumb_ts = ev.data["breadcrumbs"]["values"][0]["timestamp"]
        .as_f64()
        .unwrap();
    assert_eq!(
        crumb_ts,
        (r - chrono::Duration::seconds(5)).timestamp() as f64
    );

    // Ordinary latency is not drift.
    c.sent_at = Some(r - chrono::Duration::seconds(20));
    let ev = normalize(json!({"timestamp": r.timestamp() - 21}), &c).unwrap();
    assert!(ev.data.get("errors").is_none());
}

// ---------------------------------------------------------------- fields

#[test]
fn levels() {
    for (raw, want) in [
        (json!(10), "debug"),
        (json!(50), "fatal"),
        (json!("warn"), "warning"),
        (json!("CRITICAL"), "fatal"),
        (json!("log"), "info"),
    ] {
        assert_eq!(norm(json!({"level": raw})).data["level"], want);
    }
    let d = norm(json!({"level": "loud"})).data;
    assert_eq!(d["level"], "error");
    assert_eq!(error_types(&d), ["invalid_data"]);
    assert_eq!(norm(json!({})).summary.level, Level::Error);
}

#[test]
fn platform_defaults() {
    assert_eq!(norm(json!({})).data["platform"], "other");
    assert_eq!(
        norm(json!({"platform": "brainfuck"})).data["platform"],
        "other"
    );
    assert_eq!(
        norm(json!({"platform": "Python"})).data["platform"],
        "python"
    );
    let mut c = ctx();
    c.default_platform = Some("python-django".into());
    assert_eq!(normalize(json!({}), &c).unwrap().data["platform"], "python");
    assert_eq!(
        normalize(json!({"platform": "node"}), &c).unwrap().data["platform"],
        "node"
    );
}

#[test]
fn string_attributes() {
    let d = norm(json!({
        "release": "  shop@1.0 ", "dist": 7, "environment": "", "logger": "l".repeat(100),
        "transaction": {"no": 1}, "server_name": true, "culprit": "app in fn", "site": "eu"
    }))
    .data;
    assert_eq!(d["release"], "shop@1.0");
    assert_eq!(d["dist"], "7");
    assert_eq!(d["environment"], "production");
    assert_eq!(d["logger"].as_str().unwrap().chars().count(), 64);
    assert!(d.get("transaction").is_none());
    assert_eq!(d["server_name"], "true");
    assert_eq!(d["culprit"], "app in fn");
    assert_eq!(tag(&d, "site"), Some("eu"));
    assert!(d.get("site").is_none());

    for bad in ["latest", "..", "a/b", "line\nbreak"] {
        let d = norm(json!({"release": bad})).data;
        assert!(d.get("release").is_none(), "{bad}");
    }
    assert_eq!(
        norm(json!({"environment": "staging"})).data["environment"],
        "staging"
    );
}

#[test]
fn tags_from_every_shape() {
    let d = norm(
        json!({"tags": {"a": "1", "n": 2, "b": true, "null": null, "obj": {}, " sp ": " v "}}),
    )
    .data;
    assert_eq!(
        d["tags"],
        json!([["sp", "v"], ["a", "1"], ["b", "true"], ["n", "2"]])
    );
    let d = norm(
        json!({"tags": [["a", "1"], ["a", "dup"], ["x"], 5, "k:v", {"key": "o", "value": 3}]}),
    )
    .data;
    assert_eq!(d["tags"], json!([["a", "1"], ["k", "v"], ["o", "3"]]));
    let d = norm(json!({"tags": {"k".repeat(300): "v".repeat(300)}})).data;
    assert_eq!(d["tags"][0][0].as_str().unwrap().chars().count(), 200);
    assert_eq!(d["tags"][0][1].as_str().unwrap().chars().count(), 200);
    let d = norm(json!({"tags": "nope"})).data;
    assert!(d.get("tags").is_none());

    let ev = norm(json!({"tags": {"level": "custom"}, "release": "r1"}));
    assert!(ev.summary.tags.contains(&("level".into(), "custom".into())));
    assert!(!ev.summary.tags.contains(&("level".into(), "error".into())));
    assert!(ev.summary.tags.contains(&("release".into(), "r1".into())));
}

// ------------------------------------------------------------ interfaces

#[test]
fn exception_shapes() {
    for raw in [
        json!([{"type": "E", "value": "v"}]),
        json!({"values": [{"type": "E", "value": "v"}]}),
        json!({"type": "E", "value": "v"}),
        json!({"values": {"type": "E", "value": "v"}}),
    ] {
        let d = norm(json!({"exception": raw.clone()})).data;
        assert_eq!(
            d["exception"],
            json!({"values": [{"type": "E", "value": "v"}]}),
            "{raw}"
        );
        assert_eq!(d["type"], "error");
    }
    let d = norm(
        json!({"exception": {"values": [{"value": "ValueError: bad input"}, 3, null, "plain"]}}),
    )
    .data;
    let vals = d["exception"]["values"].as_array().unwrap();
    assert_eq!(vals.len(), 2);
    assert_eq!(vals[0]["type"], "ValueError");
    assert_eq!(vals[0]["value"], "bad input");
    assert_eq!(vals[1]["value"], "plain");

    let d = norm(json!({"exception": {"values": []}})).data;
    assert!(d.get("exception").is_none());
    assert_eq!(d["type"], "default");

    let d =
        norm(json!({"exception": [{"type": "E", "value": {"detail": 1}, "mechanism": "onerror"}]}))
            .data;
    assert_eq!(d["exception"]["values"][0]["value"], "{\"detail\":1}");
    assert_eq!(
        d["exception"]["values"][0]["mechanism"],
        json!({"type": "onerror"})
    );
}

#[test]
fn frames_are_cleaned() {
    let d = norm(
        json!({"exception": [{"type": "E", "stacktrace": {"frames": [
            {"function": "f", "lineno": "10", "colno": -3, "in_app": "true",
             "vars": [1, true, "s", null, {"deep": {"deeper": {"deepest": {"x": {"y": 1}}}}}],
             "pre_context": ["a", null, 5], "post_context": "nope",
             "instruction_addr": 4096, "context_line": "c".repeat(5000)},
            "junk",
            {"filename": ["odd"], "lineno": 1.5}
        ]}}]}),
    )
    .data;
    let frames = d["exception"]["values"][0]["stacktrace"]["frames"]
        .as_array()
        .unwrap();
    assert_eq!(frames.len(), 2);
    let f = &frames[0];
    assert_eq!(f["lineno"], 10);
    assert!(f.get("colno").is_none());
    assert_eq!(f["in_app"], true);
    assert_eq!(f["vars"]["0"], "1");
    assert_eq!(f["vars"]["1"], "true");
    assert!(f["vars"]["3"].is_null());
    assert!(f["vars"]["4"]["deep"]["deeper"]["deepest"]["x"].is_string());
    assert_eq!(f["pre_context"], json!(["a", "", "5"]));
    assert!(f.get("post_context").is_none());
    assert_eq!(f["instruction_addr"], "0x1000");
    assert!(f["context_line"].as_str().unwrap().len() <= 1024);
    assert_eq!(frames[1]["filename"], "[\"odd\"]");
    assert_eq!(frames[1]["lineno"], 1);
}

#[test]
fn huge_stacktraces_keep_both_ends() {
    let frames: Vec<Value> = (0..10_000)
        .map(|i| json!({"function": format!("f{i}")}))
        .collect();
    let d = norm(json!({"stacktrace": {"frames": frames}})).data;
    let st = &d["stacktrace"];
    let kept = st["frames"].as_array().unwrap();
    assert_eq!(kept.len(), 250);
    assert_eq!(kept[0]["function"], "f0");
    assert_eq!(kept[49]["function"], "f49");
    assert_eq!(kept[50]["function"], "f9800");
    assert_eq!(kept[249]["function"], "f9999");
    assert_eq!(st["frames_omitted"], json!([50, 9800]));
}

#[test]
fn threads_and_bare_stacktrace() {
    let d = norm(json!({
        "threads": [{"id": 1, "crashed": 1, "name": "main", "stacktrace": {"frames": [{"function": "run"}]}}, "x"],
        "stacktrace": [{"function": "top"}]
    }))
    .data;
    assert_eq!(d["threads"]["values"][0]["crashed"], true);
    assert_eq!(d["threads"]["values"].as_array().unwrap().len(), 1);
    assert_eq!(d["stacktrace"]["frames"][0]["function"], "top");
}

#[test]
fn breadcrumbs_are_capped_to_latest() {
    let crumbs: Vec<Value> = (0..150)
        .map(|i| json!({"message": format!("c{i}"), "timestamp": 1795842000 + i, "level": "warn"}))
        .collect();
    let d = norm(json!({"breadcrumbs": crumbs})).data;
    let v = d["breadcrumbs"]["values"].as_array().unwrap();
    assert_eq!(v.len(), 100);
    assert_eq!(v[0]["message"], "c50");
    assert_eq!(v[99]["message"], "c149");
    assert_eq!(v[0]["level"], "warning");
    assert_eq!(v[0]["type"], "default");

    let d = norm(
        json!({"breadcrumbs": {"values": [{"timestamp": "2026-11-28T05:13:00Z", "data": 5}, 7]}}),
    )
    .data;
    let v = d["breadcrumbs"]["values"].as_array().unwrap();
    assert_eq!(v.len(), 1);
    assert!(v[0]["timestamp"].is_f64());
    assert!(v[0].get("data").is_none());
    assert_eq!(v[0]["level"], "info");
}

#[test]
fn request_normalization() {
    let d = norm(json!({"request": {
        "url": "https://a.example/p?x=1&y=%20z",
        "headers": [["cookie", "a=1"], ["user-agent", "UA"], ["bad"], ["X-Multi", ["1", "2"]]],
        "data": "{\"user\": \"ann\", \"n\": 1}",
        "env": {"REMOTE_ADDR": "198.51.100.2"}
    }}))
    .data;
    let req = &d["request"];
    assert_eq!(req["query_string"], json!([["x", "1"], ["y", " z"]]));
    assert_eq!(
        req["headers"],
        json!([["Cookie", "a=1"], ["User-Agent", "UA"], ["X-Multi", "1, 2"]])
    );
    assert_eq!(req["cookies"], json!([["a", "1"]]));
    assert_eq!(req["data"], json!({"user": "ann", "n": 1}));
    assert_eq!(req["inferred_content_type"], "application/json");
    assert_eq!(d["user"]["ip_address"], "198.51.100.2");

    let d = norm(
        json!({"request": {"query_string": {"a": 1}, "cookies": [["k", "v"]], "data": "raw text"}}),
    )
    .data;
    assert_eq!(d["request"]["query_string"], json!([["a", "1"]]));
    assert_eq!(d["request"]["cookies"], json!([["k", "v"]]));
    assert_eq!(d["request"]["data"], "raw text");

    let d = norm(json!({"request": "GET /"})).data;
    assert!(d.get("request").is_none());
    assert_eq!(error_types(&d), ["invalid_data"]);
}

#[test]
fn user_and_ip_handling() {
    let ip: std::net::IpAddr = "2001:db8::1".parse().unwrap();
    let mut c = ctx();
    c.client_ip = Some(ip);

    // `{{auto}}` without a known peer address is dropped.
    let d = norm(json!({"user": {"ip_address": "{{auto}}", "email": "a@b.c"}})).data;
    assert_eq!(d["user"], json!({"email": "a@b.c"}));

    let d = normalize(json!({"user": {"ip_address": "{{auto}}"}}), &c)
        .unwrap()
        .data;
    assert_eq!(d["user"]["ip_address"], "2001:db8::1");

    // Browser events get the peer address even without asking.
    let ev = normalize(json!({"platform": "javascript"}), &c).unwrap();
    assert_eq!(ev.summary.user_key.as_deref(), Some("ip:2001:db8::1"));
    // Server events do not: the peer is the server itself.
    let d = normalize(json!({"platform": "python"}), &c).unwrap().data;
    assert!(d.get("user").is_none());

    let d = norm(json!({"user": {"ip_address": "not-an-ip", "username": "ann", "id": null}})).data;
    assert_eq!(d["user"], json!({"username": "ann"}));
    assert_eq!(error_types(&d), ["invalid_data"]);
    let s = norm(json!({"user": {"username": "ann", "email": "a@b.c"}})).summary;
    assert_eq!(s.user_key.as_deref(), Some("email:a@b.c"));
    assert_eq!(norm(json!({"user": "bob"})).summary.user, None);
}

#[test]
fn sdk_from_auth_header() {
    let mut c = ctx();
    c.client_sdk = Some("sentry.javascript.node/11.12.0".into());
    let s = normalize(json!({}), &c).unwrap().summary;
    assert_eq!(s.sdk_name.as_deref(), Some("sentry.javascript.node"));
    assert_eq!(s.sdk_version.as_deref(), Some("11.12.0"));
    let s = normalize(json!({"sdk": {"name": "own", "version": 1}}), &c)
        .unwrap()
        .summary;
    assert_eq!(s.sdk_name.as_deref(), Some("own"));
    assert_eq!(s.sdk_version.as_deref(), Some("1"));
}

#[test]
fn bags_contexts_fingerprint_and_unknown_keys() {
    let d = norm(json!({
        "extra": {"big": "x".repeat(300_000), "n": 1},
        "contexts": {"os": {"name": "Linux", "version": "6.1"}, "bad": 5, "custom": {"type": "app", "k": 1}},
        "fingerprint": ["{{ default }}", 42, null, {"x": 1}],
        "my_custom_key": {"kept": [1, 2, 3]},
        "modules": {"django": "4.2", "weird": {}},
    }))
    .data;
    assert!(d["extra"]["big"].as_str().unwrap().len() <= 256 * 1024);
    assert_eq!(d["contexts"]["os"]["type"], "os");
    assert_eq!(d["contexts"]["custom"]["type"], "app");
    assert!(d["contexts"].get("bad").is_none());
    assert_eq!(d["fingerprint"], json!(["{{ default }}", "42"]));
    assert_eq!(d["my_custom_key"], json!({"kept": [1, 2, 3]}));
    assert_eq!(d["modules"], json!({"django": "4.2"}));
    let s = summarize(&d);
    assert_eq!(
        s.fingerprint,
        Some(vec!["{{ default }}".into(), "42".into()])
    );
    assert!(s.tags.contains(&("os".into(), "Linux 6.1".into())));
    assert!(s.tags.contains(&("os.name".into(), "Linux".into())));

    assert!(
        norm(json!({"fingerprint": []}))
            .data
            .get("fingerprint")
            .is_none()
    );
    assert_eq!(
        norm(json!({"fingerprint": "one"})).data["fingerprint"],
        json!(["one"])
    );
}

#[test]
fn event_types_follow_item_kind() {
    let mut c = ctx();
    c.item_type = ItemKind::Feedback;
    let ev = normalize(json!({"contexts": {"feedback": {"message": "hi"}}}), &c).unwrap();
    assert_eq!(ev.summary.event_type, "feedback");
    assert_eq!(ev.summary.level, Level::Info);
    assert_eq!(ev.summary.message.as_deref(), Some("hi"));
    assert_eq!(feedback_from_event(&ev.data).unwrap().comments, "hi");
    assert_eq!(
        ItemKind::from_item_type("feedback"),
        Some(ItemKind::Feedback)
    );
    assert_eq!(ItemKind::from_item_type("attachment"), None);

    c.item_type = ItemKind::Security;
    let report = security_report_to_event(&json!({"csp-report": {
        "document-uri": "https://shop.example/", "violated-directive": "script-src 'self'",
        "blocked-uri": "https://evil.example/x.js"
    }}))
    .unwrap();
    let ev = normalize(report, &c).unwrap();
    assert_eq!(ev.summary.event_type, "csp");
    assert_eq!(
        ev.summary.message.as_deref(),
        Some("Blocked 'script' from 'evil.example'")
    );

    // An explicit `error` type without an exception is inferred back.
    assert_eq!(norm(json!({"type": "error"})).summary.event_type, "default");
    assert_eq!(
        norm(json!({"type": "transaction"})).summary.event_type,
        "transaction"
    );
}

#[test]
fn scrubbing_runs_when_configured() {
    let raw = json!({"extra": {"password": "hunter2"}, "request": {"headers": {"Authorization": "Bearer x"}}});
    let d = norm(raw.clone()).data;
    assert_eq!(d["extra"]["password"], "hunter2");

    let mut c = ctx();
    c.scrub = Some(ScrubConfig::default());
    let d = normalize(raw.clone(), &c).unwrap().data;
    assert_eq!(d["extra"]["password"], FILTERED);
    assert_eq!(
        d["request"]["headers"],
        json!([["Authorization", FILTERED]])
    );

    c.scrub = Some(ScrubConfig {
        enabled: false,
        ..ScrubConfig::default()
    });
    let d = normalize(raw, &c).unwrap().data;
    assert_eq!(d["extra"]["password"], "hunter2");
}

// ------------------------------------------------------------ robustness

#[test]
fn non_objects_are_rejected_cleanly() {
    for raw in [
        json!(null),
        json!(1),
        json!("event"),
        json!([{"event_id": "x"}]),
        json!(true),
    ] {
        assert_eq!(normalize(raw, &ctx()).unwrap_err(), EventError::NotAnObject);
    }
    assert!(!EventError::NotAnObject.to_string().is_empty());
}

#[test]
fn odd_shapes_in_every_field_never_panic() {
    let fields = [
        "event_id",
        "timestamp",
        "start_timestamp",
        "level",
        "platform",
        "logger",
        "transaction",
        "server_name",
        "release",
        "dist",
        "environment",
        "message",
        "logentry",
        "exception",
        "threads",
        "breadcrumbs",
        "stacktrace",
        "tags",
        "user",
        "request",
        "contexts",
        "extra",
        "sdk",
        "fingerprint",
        "modules",
        "spans",
        "type",
        "errors",
        "_meta",
        "template",
        "sentry.interfaces.Exception",
        "sentry.interfaces.Message",
        "sentry.interfaces.Http",
        "sentry.interfaces.User",
        "sentry.interfaces.Stacktrace",
        "sentry.interfaces.Query",
        "culprit",
        "site",
        "measurements",
        "project",
        "time_spent",
    ];
    let odd = [
        json!(null),
        json!(0),
        json!(-1),
        json!(1e308),
        json!(-1e308),
        json!(u64::MAX),
        json!(i64::MIN),
        json!(true),
        json!(""),
        json!("\u{0}\u{FFFF}"),
        json!("x".repeat(100_000)),
        json!([]),
        json!({}),
        json!([null, 1, "s", [], {}]),
        json!({"values": 3}),
        json!({"values": [1, [2], {"stacktrace": 5, "mechanism": [], "type": {}}]}),
        json!({"frames": [{"vars": 3, "lineno": {}, "pre_context": [[]]}]}),
        json!([["k"], ["k", null], [1, 2, 3]]),
        json!({"headers": 5, "cookies": 5, "query_string": 5, "data": 5, "env": 5, "url": []}),
        json!({"message": [], "params": 5, "formatted": {}}),
        json!({"ip_address": 5, "id": [], "data": 5}),
    ];
    for field in fields {
        for v in &odd {
            let raw = json!({ field: v.clone() });
            match normalize(raw, &ctx()) {
                Ok(ev) => {
                    assert_canonical(&ev.data);
                    assert_eq!(summarize(&ev.data), ev.summary, "{field}");
                    serde_json::to_vec(&ev.data).unwrap();
                }
                Err(e) => assert!(
                    matches!(e, EventError::InvalidEventId(_)),
                    "{field}: {v} -> {e}"
                ),
            }
        }
    }
}

#[test]
fn deep_nesting_is_bounded() {
    // Built by hand: `json!` would serialise (and so recurse into) `deep`.
    let obj = |k: &str, v: Value| Value::Object(serde_json::Map::from_iter([(k.to_owned(), v)]));
    let mut deep = json!("bottom");
    for _ in 0..10_000 {
        deep = obj("a", Value::Array(vec![deep]));
    }
    let mut raw = obj("extra", obj("deep", deep));
    raw["message"] = json!("m");
    let ev = normalize(raw, &ctx()).unwrap();
    // Serialising recurses, so it only works because the depth was capped.
    let text = serde_json::to_string(&ev.data).unwrap();
    assert!(text.len() < 100_000);

    let mut deep = Value::Null;
    for _ in 0..10_000 {
        deep = Value::Array(vec![deep]);
    }
    assert_eq!(
        normalize(deep, &ctx()).unwrap_err(),
        EventError::NotAnObject
    );

    let mut deep = json!(1);
    for i in 0..10_000 {
        let key = ["exception", "values", "stacktrace", "frames", "vars"][i % 5];
        deep = obj(key, deep);
    }
    let ev = normalize(deep, &ctx()).unwrap();
    serde_json::to_string(&ev.data).unwrap();
    super::super::values::drop_deep(ev.data);
}

/// A small deterministic generator of arbitrary JSON, biased towards the
/// keys the normaliser looks at, so odd combinations get exercised.
struct Gen(u64);

impl Gen {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn value(&mut self, depth: u32) -> Value {
        const KEYS: &[&str] = &[
            "values",
            "frames",
            "stacktrace",
            "type",
            "value",
            "message",
            "params",
            "formatted",
            "vars",
            "lineno",
            "in_app",
            "timestamp",
            "level",
            "headers",
            "url",
            "data",
            "id",
            "ip_address",
            "name",
            "version",
            "mechanism",
            "handled",
            "event_id",
            "tags",
            "query_string",
            "cookies",
            "user",
            "request",
            "exception",
            "breadcrumbs",
            "logentry",
            "contexts",
            "extra",
            "fingerprint",
            "sdk",
            "spans",
            "threads",
            "platform",
            "release",
        ];
        let pick = self.next() % if depth == 0 { 6 } else { 9 };
        match pick {
            0 => Value::Null,
            1 => json!(self.next().is_multiple_of(3)),
            2 => json!((self.next() % 100_000) as i64 - 50_000),
            3 => json!(f64::from_bits(self.next() >> 2).clamp(-1e300, 1e300)),
            4 => {
                let choices = [
                    "",
                    "{{auto}}",
                    "%s %d %(x)s {} {0}",
                    "2026-11-28T05:13:00Z",
                    "40",
                    "warn",
                    "a=1&b=2",
                    "4111 1111 1111 1111",
                    "TypeError: x",
                    "é\u{0}",
                ];
                json!(choices[(self.next() % choices.len() as u64) as usize])
            }
            5 => json!(KEYS[(self.next() % KEYS.len() as u64) as usize]),
            6 | 7 => {
                let n = self.next() % 5;
                let mut m = serde_json::Map::new();
                for _ in 0..n {
                    let k = KEYS[(self.next() % KEYS.len() as u64) as usize];
                    m.insert(k.into(), self.value(depth - 1));
                }
                Value::Object(m)
            }
            _ => {
                let n = self.next() % 4;
                Value::Array((0..n).map(|_| self.value(depth - 1)).collect())
            }
        }
    }
}

#[test]
fn generated_payloads_never_panic() {
    let mut g = Gen(0x9E37_79B9_7F4A_7C15);
    let mut c = ctx();
    c.scrub = Some(ScrubConfig::default());
    c.client_ip = Some("192.0.2.1".parse().unwrap());
    for i in 0..3000 {
        let mut raw = g.value(6);
        if let Value::Object(m) = &mut raw {
            // Keep the id valid most of the time so the rest gets exercised.
            if i % 7 != 0 {
                m.remove("event_id");
            }
        }
        if let Ok(ev) = normalize(raw, &c) {
            assert_canonical(&ev.data);
            assert_eq!(summarize(&ev.data), ev.summary);
        }
    }
}
