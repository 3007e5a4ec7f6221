use super::*;
use serde_json::json;

fn scrubbed(mut v: Value) -> Value {
    scrub(&mut v, &ScrubConfig::default());
    v
}

#[test]
fn sensitive_keys_anywhere_in_user_data() {
    let v = scrubbed(json!({
        "extra": {"password": "hunter2", "db": {"mysql_pwd": "x", "host": "db1"}, "author": "ann",
                  "SessionId": "s", "csrftoken": "t", "empty": "", "nothing": null, "password2": null},
        "contexts": {"app": {"api_key": "k", "name": "shop"}},
        "user": {"id": "1", "data": {"secret_answer": "blue"}},
        "breadcrumbs": {"values": [{"data": {"Authorization": "Bearer abc"}, "message": "ok"}]},
    }));
    let extra = &v["extra"];
    assert_eq!(extra["password"], FILTERED);
    assert_eq!(extra["db"]["mysql_pwd"], FILTERED);
    assert_eq!(extra["db"]["host"], "db1");
    // Substring matching, as in Sentry: "author" contains "auth".
    assert_eq!(extra["author"], FILTERED);
    assert_eq!(extra["SessionId"], FILTERED);
    assert_eq!(extra["csrftoken"], FILTERED);
    assert_eq!(extra["empty"], "");
    assert!(extra["password2"].is_null());
    assert_eq!(v["contexts"]["app"]["api_key"], FILTERED);
    assert_eq!(v["contexts"]["app"]["name"], "shop");
    assert_eq!(v["user"]["data"]["secret_answer"], FILTERED);
    assert_eq!(v["user"]["id"], "1");
    assert_eq!(
        v["breadcrumbs"]["values"][0]["data"]["Authorization"],
        FILTERED
    );
    assert_eq!(v["breadcrumbs"]["values"][0]["message"], "ok");
}

#[test]
fn headers_cookies_query_and_tags_pairs() {
    let v = scrubbed(json!({
        "request": {
            "headers": [["Authorization", "Basic eDp5"], ["Cookie", "sessionid=abc"], ["X-Api-Key", "k"],
                        ["Accept", "text/html"], ["Set-Cookie", "a=b"]],
            "cookies": [["sessionid", "abc"], ["theme", "dark"]],
            "query_string": [["token", "t"], ["page", "2"]],
            "data": {"user": {"password": "p", "name": "n"}},
            "env": {"SECRET_KEY": "django"},
        },
        "tags": [["session_id", "s"], ["browser", "Firefox"]],
    }));
    let r = &v["request"];
    assert_eq!(
        r["headers"],
        json!([
            ["Authorization", FILTERED],
            ["Cookie", FILTERED],
            ["X-Api-Key", FILTERED],
            ["Accept", "text/html"],
            ["Set-Cookie", FILTERED]
        ])
    );
    // The shape survives so the dashboard can still render the list.
    assert_eq!(
        r["cookies"],
        json!([["sessionid", FILTERED], ["theme", FILTERED]])
    );
    assert_eq!(
        r["query_string"],
        json!([["token", FILTERED], ["page", "2"]])
    );
    assert_eq!(
        r["data"],
        json!({"user": {"password": FILTERED, "name": "n"}})
    );
    assert_eq!(r["env"]["SECRET_KEY"], FILTERED);
    assert_eq!(
        v["tags"],
        json!([["session_id", FILTERED], ["browser", "Firefox"]])
    );
}

#[test]
fn frame_vars_and_values_patterns() {
    let v = scrubbed(json!({
        "exception": {"values": [{"type": "E", "value": "card 4111 1111 1111 1111 declined",
            "stacktrace": {"frames": [{"function": "pay", "vars": {
                "card": "4111111111111111", "n": 4111111111111111u64, "order": "1234567890123",
                "ts": 1795842834962u64, "cfg": {"token": {"nested": "x"}},
                "pem": "-----BEGIN RSA PRIVATE KEY-----\nMIIE\n-----END RSA PRIVATE KEY-----",
                "dsn": "postgres://app:s3cret@db:5432/shop",
                "plain_url": "https://example.com/a@b"
            }}]}}]},
        "logentry": {"formatted": "charged 5500-0000-0000-0004 ok"},
    }));
    let exc = &v["exception"]["values"][0];
    assert_eq!(exc["value"], "card [Filtered] declined");
    let vars = &exc["stacktrace"]["frames"][0]["vars"];
    assert_eq!(vars["card"], FILTERED);
    assert_eq!(vars["n"], FILTERED);
    // Not Luhn-valid, and a millisecond timestamp: left alone.
    assert_eq!(vars["order"], "1234567890123");
    assert_eq!(vars["ts"], 1795842834962u64);
    assert_eq!(vars["cfg"]["token"], json!({"nested": FILTERED}));
    assert_eq!(vars["pem"], FILTERED);
    assert_eq!(vars["dsn"], "postgres://app:[Filtered]@db:5432/shop");
    assert_eq!(vars["plain_url"], "https://example.com/a@b");
    assert_eq!(v["logentry"]["formatted"], "charged [Filtered] ok");
    assert_eq!(exc["stacktrace"]["frames"][0]["function"], "pay");
}

#[test]
fn structural_fields_are_left_alone() {
    let v = scrubbed(json!({
        "event_id": "b161b680df1b4dffaa1d4d6d16968dcb",
        "timestamp": 4111111111111111u64,
        "sdk": {"name": "sentry.python", "integrations": ["auth"]},
        "fingerprint": ["token-handler"],
        "release": "4111111111111111",
        "modules": {"django-auth": "1.0"},
    }));
    assert_eq!(v["timestamp"], 4111111111111111u64);
    assert_eq!(v["sdk"]["integrations"], json!(["auth"]));
    assert_eq!(v["fingerprint"], json!(["token-handler"]));
    assert_eq!(v["release"], "4111111111111111");
    assert_eq!(v["modules"]["django-auth"], "1.0");
}

#[test]
fn configuration() {
    let base = json!({"extra": {"password": "p", "order_ref": "r", "card": "4111111111111111"}});

    let mut v = base.clone();
    scrub(
        &mut v,
        &ScrubConfig {
            enabled: false,
            ..Default::default()
        },
    );
    assert_eq!(v, base);

    let mut v = base.clone();
    let cfg = ScrubConfig {
        scrub_defaults: false,
        extra_fields: vec!["Order_Ref".into()],
        ..Default::default()
    };
    scrub(&mut v, &cfg);
    assert_eq!(
        v["extra"],
        json!({"password": "p", "order_ref": FILTERED, "card": "4111111111111111"})
    );

    let mut v = base.clone();
    let cfg = ScrubConfig {
        safe_fields: vec!["PASSWORD".into()],
        ..Default::default()
    };
    scrub(&mut v, &cfg);
    assert_eq!(v["extra"]["password"], "p");
    assert_eq!(v["extra"]["card"], FILTERED);

    let cfg: ScrubConfig = serde_json::from_value(json!({"scrub_ip": true})).unwrap();
    assert!(cfg.enabled && cfg.scrub_defaults && cfg.scrub_ip);
}

#[test]
fn ip_scrubbing() {
    let mut v = json!({
        "user": {"id": "1", "ip_address": "203.0.113.9", "geo": {"city": "Oslo"}},
        "request": {"env": {"REMOTE_ADDR": "203.0.113.9", "SERVER_NAME": "web"},
                    "headers": [["X-Forwarded-For", "203.0.113.9"], ["Accept", "*/*"]]},
    });
    scrub(
        &mut v,
        &ScrubConfig {
            scrub_ip: true,
            ..Default::default()
        },
    );
    assert_eq!(v["user"], json!({"id": "1", "geo": {"city": FILTERED}}));
    assert_eq!(v["request"]["env"], json!({"SERVER_NAME": "web"}));
    assert_eq!(
        v["request"]["headers"],
        json!([["X-Forwarded-For", FILTERED], ["Accept", "*/*"]])
    );

    let mut v = json!({"user": {"ip_address": "203.0.113.9"}});
    scrub(&mut v, &ScrubConfig::default());
    assert_eq!(v["user"]["ip_address"], "203.0.113.9");
}

#[test]
fn odd_inputs_and_deep_values() {
    for mut v in [
        json!(null),
        json!("4111111111111111"),
        json!([1, [2]]),
        json!(5),
    ] {
        scrub(&mut v, &ScrubConfig::default());
    }
    let mut v = json!("4111111111111111");
    scrub(&mut v, &ScrubConfig::default());
    assert_eq!(v, FILTERED);

    // Deeper than the scrubber walks: replaced rather than passed through.
    let mut deep = json!({"password": "p"});
    for _ in 0..200 {
        deep = Value::Array(vec![deep]);
    }
    let mut v = Value::Object(serde_json::Map::from_iter([("extra".to_owned(), deep)]));
    scrub(&mut v, &ScrubConfig::default());
    let text = v.to_string();
    assert!(!text.contains("\"p\""));
    assert!(text.contains(FILTERED));
}

#[test]
fn luhn() {
    assert!(luhn_candidate("4111 1111 1111 1111"));
    assert!(luhn_candidate("378282246310005"));
    assert!(!luhn_candidate("4111 1111 1111 1112"));
    assert!(!luhn_candidate("0000000000000000"));
    assert!(!luhn_candidate("411111111111"));
}
