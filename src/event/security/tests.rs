use super::*;
use crate::event::{ItemKind, NormalizeContext, normalize};
use serde_json::json;

fn tag<'a>(e: &'a Value, key: &str) -> Option<&'a str> {
    e["tags"]
        .as_array()?
        .iter()
        .find(|p| p[0] == key)
        .and_then(|p| p[1].as_str())
}

#[test]
fn csp_report_uri_form() {
    let e = security_report_to_event(&json!({"csp-report": {
        "document-uri": "https://shop.example/checkout",
        "referrer": "https://shop.example/",
        "violated-directive": "script-src 'self' https://shop.example https://cdn.example",
        "effective-directive": "script-src",
        "original-policy": "default-src 'self'; script-src 'self' https://cdn.example",
        "blocked-uri": "https://evil.example:8443/x.js?token=secret",
        "status-code": 200,
        "line-number": 12,
        "source-file": "https://shop.example/app.js"
    }}))
    .unwrap();
    assert_eq!(e["type"], "csp");
    assert_eq!(
        e["logentry"]["formatted"],
        "Blocked 'script' from 'evil.example:8443'"
    );
    assert_eq!(e["culprit"], "script-src 'self' 'self' cdn.example");
    assert_eq!(tag(&e, "effective-directive"), Some("script-src"));
    assert_eq!(
        tag(&e, "blocked-uri"),
        Some("https://evil.example:8443/x.js")
    );
    assert_eq!(e["csp"]["document_uri"], "https://shop.example/checkout");
    assert_eq!(e["csp"]["line_number"], 12);
    assert_eq!(e["request"]["url"], "https://shop.example/checkout");
    assert_eq!(
        e["request"]["headers"],
        json!([["Referer", "https://shop.example/"]])
    );
}

#[test]
fn csp_messages_follow_sentry() {
    let cases = [
        (
            "img-src",
            "data:image/png;base64,AAA",
            "Blocked 'image' from 'data:'",
        ),
        ("img-src", "data", "Blocked 'image' from 'data:'"),
        ("style-src", "inline", "Blocked inline 'style'"),
        ("style-src-elem", "", "Blocked inline 'style'"),
        ("script-src", "eval", "Blocked unsafe eval() 'script'"),
        (
            "script-src-elem",
            "inline",
            "Blocked unsafe inline 'script'",
        ),
        ("script-src", "self", "Blocked unsafe inline 'script'"),
        (
            "connect-src",
            "wss://rt.example/socket",
            "Blocked 'connect' from 'rt.example'",
        ),
        (
            "font-src",
            "https://fonts.example/a.woff",
            "Blocked 'font' from 'fonts.example'",
        ),
        (
            "form-action",
            "https://phish.example/post",
            "Blocked 'form' action to 'phish.example'",
        ),
        (
            "frame-src",
            "https://ads.example/",
            "Blocked 'frame-src' from 'ads.example'",
        ),
        (
            "worker-src",
            "blob:https://x/1",
            "Blocked 'worker-src' from 'blob:'",
        ),
        ("object-src", "", "Blocked inline 'object'"),
    ];
    for (directive, blocked, want) in cases {
        let e = security_report_to_event(&json!({"csp-report": {
            "document-uri": "https://shop.example/", "effective-directive": directive,
            "blocked-uri": blocked
        }}))
        .unwrap();
        assert_eq!(e["logentry"]["formatted"], want, "{directive} {blocked}");
    }
}

#[test]
fn csp_without_effective_directive_uses_violated() {
    let e = security_report_to_event(&json!({"csp-report": {
        "document-uri": "http://a.example/", "violated-directive": "IMG-SRC 'none'",
        "blocked-uri": "http://b.example/i.png"
    }}))
    .unwrap();
    assert_eq!(e["csp"]["effective_directive"], "img-src");
    assert_eq!(
        e["logentry"]["formatted"],
        "Blocked 'image' from 'b.example'"
    );
    assert_eq!(e["culprit"], "IMG-SRC 'none'");
}

#[test]
fn reporting_api_array() {
    let body = json!([
        {"type": "deprecation", "body": {"id": "x"}},
        {"type": "csp-violation", "age": 10, "url": "https://shop.example/", "user_agent": "Mozilla/5.0",
         "body": {"documentURL": "https://shop.example/", "blockedURL": "https://evil.example/a.js",
                  "effectiveDirective": "script-src-elem", "originalPolicy": "script-src 'self'",
                  "disposition": "enforce", "statusCode": 200, "lineNumber": 3, "sample": ""}},
        {"type": "csp-violation", "url": "https://shop.example/2",
         "body": {"blockedURL": "inline", "effectiveDirective": "style-src-elem"}}
    ]);
    let all = security_reports_to_events(&body).unwrap();
    assert_eq!(all.len(), 2);
    let e = &all[0];
    assert_eq!(
        e["logentry"]["formatted"],
        "Blocked 'script' from 'evil.example'"
    );
    assert_eq!(e["csp"]["line_number"], 3);
    assert_eq!(e["csp"]["status_code"], 200);
    assert_eq!(e["csp"]["original_policy"], "script-src 'self'");
    assert_eq!(
        e["request"]["headers"],
        json!([["User-Agent", "Mozilla/5.0"]])
    );
    assert_eq!(all[1]["request"]["url"], "https://shop.example/2");
    assert_eq!(all[1]["logentry"]["formatted"], "Blocked inline 'style'");
    assert_eq!(security_report_to_event(&body).unwrap(), all[0]);
}

#[test]
fn certificate_reports() {
    let e = security_report_to_event(&json!({
        "date-time": "2014-04-06T13:00:50Z", "hostname": "www.example.com", "port": 443,
        "effective-expiration-date": "2014-05-01T12:40:50Z", "include-subdomains": false,
        "served-certificate-chain": ["-----BEGIN CERTIFICATE-----\n-----END CERTIFICATE-----"],
        "validated-certificate-chain": [], "known-pins": ["pin-sha256=\"d6qzRu9z\""]
    }))
    .unwrap();
    assert_eq!(e["type"], "hpkp");
    assert_eq!(
        e["logentry"]["formatted"],
        "Public key pinning validation failed for 'www.example.com'"
    );
    assert_eq!(tag(&e, "port"), Some("443"));
    assert_eq!(tag(&e, "include-subdomains"), Some("false"));
    assert_eq!(e["hpkp"]["known_pins"][0], "pin-sha256=\"d6qzRu9z\"");

    let e = security_report_to_event(&json!({"expect-ct-report": {
        "date-time": "2014-04-06T13:00:50Z", "hostname": "ct.example.com", "port": 443,
        "scts": [{"version": 1, "status": "invalid", "source": "embedded"}]
    }}))
    .unwrap();
    assert_eq!(e["type"], "expectct");
    assert_eq!(
        e["logentry"]["formatted"],
        "Expect-CT failed for 'ct.example.com'"
    );
    assert_eq!(e["culprit"], "ct.example.com");
    assert_eq!(e["expectct"]["scts"][0]["status"], "invalid");

    let e = security_report_to_event(&json!({"expect-staple-report": {
        "hostname": "staple.example.com", "port": 443, "response-status": "ERROR_RESPONSE",
        "cert-status": "REVOKED"
    }}))
    .unwrap();
    assert_eq!(e["type"], "expectstaple");
    assert_eq!(
        e["logentry"]["formatted"],
        "Expect-Staple failed for 'staple.example.com'"
    );
    assert_eq!(tag(&e, "response_status"), Some("ERROR_RESPONSE"));
    assert_eq!(tag(&e, "cert_status"), Some("REVOKED"));
}

#[test]
fn rejects_what_is_not_a_report() {
    for body in [
        json!(null),
        json!(3),
        json!("csp"),
        json!([]),
        json!([1, 2]),
        json!({}),
        json!({"csp-report": "x"}),
        json!({"csp-report": {"blocked-uri": "x"}}),
        json!({"expect-ct-report": {"port": 1}}),
        json!({"known-pins": [], "hostname": ""}),
        json!({"type": "network-error", "body": {}}),
        json!({"type": "csp-violation"}),
    ] {
        let err = security_report_to_event(&body).unwrap_err();
        assert!(
            matches!(
                err,
                EventError::InvalidSecurityReport(_) | EventError::UnsupportedSecurityReport(_)
            ),
            "{body}"
        );
        assert!(!err.to_string().is_empty());
    }
}

#[test]
fn converted_reports_normalize() {
    let e = security_report_to_event(&json!({"csp-report": {
        "document-uri": "https://shop.example/", "effective-directive": "img-src",
        "blocked-uri": "https://t.example/p.gif"
    }}))
    .unwrap();
    let mut ctx = NormalizeContext::new(chrono::Utc::now());
    ctx.item_type = ItemKind::Security;
    let ev = normalize(e, &ctx).unwrap();
    assert_eq!(ev.summary.event_type, "csp");
    assert_eq!(ev.summary.platform, "javascript");
    assert_eq!(ev.summary.logger.as_deref(), Some("csp"));
    assert!(
        ev.summary
            .tags
            .contains(&("blocked-uri".into(), "https://t.example/p.gif".into()))
    );
    assert_eq!(ev.data["csp"]["effective_directive"], "img-src");
}
