//! End-to-end tests of `compute`: the acceptance cases T01–T10 of reference `grouping.md`
//! §13, then the rules they do not pin down.

use serde_json::{Value, json};

use super::*;

fn base(extra: Value) -> Value {
    let mut ev = json!({
        "platform": "python",
        "level": "error",
        "transaction": "/api/orders/{id}",
        "release": "1.0.0"
    });
    merge(&mut ev, extra);
    ev
}

fn merge(into: &mut Value, from: Value) {
    if let (Value::Object(a), Value::Object(b)) = (into, from) {
        for (k, v) in b {
            a.insert(k, v);
        }
    }
}

fn group(ev: &Value) -> GroupingResult {
    let r = compute(ev, &FingerprintRules::default(), &GroupingConfig::default());
    check_invariants(&r);
    r
}

fn group_with(ev: &Value, rules: &str) -> GroupingResult {
    let rules = FingerprintRules::parse(rules).unwrap();
    let r = compute(ev, &rules, &GroupingConfig::default());
    check_invariants(&r);
    r
}

fn check_invariants(r: &GroupingResult) {
    assert!(!r.hashes.is_empty());
    for h in &r.hashes {
        assert_eq!(h.len(), 32);
        assert!(
            h.bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        );
    }
    for v in &r.variants {
        assert_eq!(v.contributes, v.hash.is_some(), "{v:?}");
        if let Some(h) = &v.hash {
            assert!(r.hashes.contains(h));
        }
    }
}

/// Sends events in order to one project and returns the issue index of each, using the
/// any-hash rule: an event joins the first issue owning one of its hashes, and its other
/// hashes are attached to that issue.
fn issues(events: &[&Value]) -> Vec<usize> {
    let mut issue_hashes: Vec<Vec<String>> = Vec::new();
    events
        .iter()
        .map(|ev| {
            let r = group(ev);
            let found = issue_hashes
                .iter()
                .position(|hs| r.hashes.iter().any(|h| hs.contains(h)));
            let idx = found.unwrap_or_else(|| {
                issue_hashes.push(Vec::new());
                issue_hashes.len() - 1
            });
            for h in r.hashes {
                if !issue_hashes[idx].contains(&h) {
                    issue_hashes[idx].push(h);
                }
            }
            idx
        })
        .collect()
}

#[track_caller]
fn assert_same(a: &Value, b: &Value) {
    let i = issues(&[a, b]);
    assert_eq!(
        i[0],
        i[1],
        "expected SAME:\n{a}\n{b}\n{:#?}\n{:#?}",
        group(a).hashes,
        group(b).hashes
    );
}

#[track_caller]
fn assert_different(a: &Value, b: &Value) {
    let i = issues(&[a, b]);
    assert_ne!(i[0], i[1], "expected DIFFERENT:\n{a}\n{b}");
}

fn t01_frames(release: &str, l1: i64, l2: i64) -> Value {
    json!([
        {"module":"shop.views","function":"checkout","filename":"shop/views.py",
         "abs_path":format!("/srv/app-{release}/shop/views.py"),"lineno":l1,
         "context_line":"    total = price(cart)","in_app":true},
        {"module":"shop.pricing","function":"price","filename":"shop/pricing.py",
         "abs_path":format!("/srv/app-{release}/shop/pricing.py"),"lineno":l2,
         "context_line":"    return item['sku']","in_app":true}
    ])
}

fn exc_event(ty: &str, value: &str, frames: Value) -> Value {
    base(json!({"exception":{"values":[{"type":ty,"value":value,"stacktrace":{"frames":frames}}]}}))
}

fn exc_no_stack(ty: &str, value: &str) -> Value {
    base(json!({"exception":{"values":[{"type":ty,"value":value}]}}))
}

// ---- acceptance cases (reference §13) ----

#[test]
fn t01_line_numbers_and_paths_change() {
    let a = exc_event("KeyError", "'sku'", t01_frames("1.0", 40, 12));
    let mut b = exc_event("KeyError", "'sku'", t01_frames("1.1", 55, 19));
    merge(&mut b, json!({"release":"1.1.0"}));
    assert_same(&a, &b);
    assert_eq!(group(&a).hashes, group(&b).hashes);
}

#[test]
fn t02_value_differs_by_numbers() {
    let a = exc_event(
        "ValueError",
        "Order 123 not found",
        t01_frames("1.0", 40, 12),
    );
    let b = exc_event(
        "ValueError",
        "Order 98765 not found",
        t01_frames("1.0", 40, 12),
    );
    assert_same(&a, &b);
}

#[test]
fn t03_value_ignored_when_stack_contributes() {
    let a = exc_event(
        "ValidationError",
        "city location is invalid",
        t01_frames("1.0", 40, 12),
    );
    let b = exc_event(
        "ValidationError",
        "user location is invalid",
        t01_frames("1.0", 40, 12),
    );
    assert_same(&a, &b);
    let r = group(&a);
    let value = r.variants[0].component.find_contributing("value");
    assert!(
        value.is_none(),
        "value must not contribute: {:#?}",
        r.variants[0]
    );
}

#[test]
fn t04_different_exception_type() {
    let a = exc_event("KeyError", "'sku'", t01_frames("1.0", 40, 12));
    let b = exc_event("TypeError", "'sku'", t01_frames("1.0", 40, 12));
    assert_different(&a, &b);
}

#[test]
fn t05_no_stack_parameterized_values() {
    let same = [
        ("User 123 not found", "User 4567 not found"),
        (
            "Order 1f0e9a52-7c3b-4a6e-9d7a-2b1c3d4e5f60 failed",
            "Order a1b2c3d4-0000-4000-8000-123456789abc failed",
        ),
        (
            "connect to 10.0.0.12:5432 failed",
            "connect to 192.168.1.7:6543 failed",
        ),
        (
            "mail bob@example.com bounced",
            "mail alice@corp.org bounced",
        ),
        (
            "GET https://api.x.io/v1/u/42?a=1 -> 500",
            "GET https://api.x.io/v1/u/77 -> 503",
        ),
        ("bad pointer 0x7f3a2c1d", "bad pointer 0xdeadbeef"),
        (
            "deadline 2024-01-02T03:04:05Z passed",
            "deadline 2025-11-30T23:59:59Z passed",
        ),
        ("timeout after 3000ms", "timeout after 250ms"),
        (
            "query failed: id='42' active=true",
            "query failed: id='7' active=false",
        ),
    ];
    for (a, b) in same {
        assert_same(
            &exc_no_stack("RuntimeError", a),
            &exc_no_stack("RuntimeError", b),
        );
    }
    assert_different(
        &exc_no_stack("RuntimeError", "User 123 not found"),
        &exc_no_stack("RuntimeError", "Group 123 not found"),
    );
    assert_different(
        &exc_no_stack("RuntimeError", "user_12345 missing"),
        &exc_no_stack("RuntimeError", "user_99 missing"),
    );
    assert_different(
        &exc_no_stack("RuntimeError", "User 1 not found"),
        &exc_no_stack("LookupError", "User 1 not found"),
    );
}

#[test]
fn t06_first_two_non_empty_lines() {
    let a = exc_no_stack(
        "DBError",
        "deadlock detected\nprocess 412 waits\nDETAIL: query A",
    );
    let b = exc_no_stack(
        "DBError",
        "deadlock detected\n\nprocess 77 waits\nDETAIL: query B",
    );
    assert_same(&a, &b);
}

#[test]
fn t07_message_template_and_parameterization() {
    let a = base(
        json!({"logentry":{"message":"Payment %s failed for user %s","params":["99","alice"],"formatted":"Payment 99 failed for user alice"}}),
    );
    let b = base(
        json!({"logentry":{"message":"Payment %s failed for user %s","params":["100","bob"],"formatted":"Payment 100 failed for user bob"}}),
    );
    let c = base(json!({"logentry":{"formatted":"Payment 99 failed"}}));
    let d = base(json!({"logentry":{"formatted":"Payment 12 failed"}}));
    let e = base(json!({"logentry":{"formatted":"Refund 12 failed"}}));
    let i = issues(&[&a, &b, &c, &d, &e]);
    assert_eq!(i[0], i[1], "A = B");
    assert_eq!(i[2], i[3], "C = D");
    assert_ne!(i[4], i[2], "E != C");
    assert_ne!(i[0], i[2], "A != C");
    let r = group(&a);
    assert_eq!(r.variants[0].name, "default");
    // Titled by the template the events share; each keeps its own formatted message.
    assert_eq!(r.title, "Payment %s failed for user %s");
    assert_eq!(
        r.metadata.value.as_deref(),
        Some("Payment 99 failed for user alice")
    );
    assert_eq!(group(&c).title, "Payment 99 failed");
}

#[test]
fn t08_different_in_app_call_path() {
    let a = exc_event("KeyError", "'sku'", t01_frames("1.0", 40, 12));
    let mut frames = t01_frames("1.0", 40, 12);
    frames[0]["module"] = json!("shop.admin");
    frames[0]["function"] = json!("reprice");
    let b = exc_event("KeyError", "'sku'", frames);
    assert_different(&a, &b);
}

fn with_library_frames(lib: Value) -> Value {
    let mut frames = lib.as_array().unwrap().clone();
    frames.extend(
        t01_frames("1.0", 40, 12)
            .as_array()
            .unwrap()
            .iter()
            .cloned(),
    );
    exc_event("KeyError", "'sku'", Value::Array(frames))
}

#[test]
fn t09_library_frames_differ() {
    let a = with_library_frames(json!([
        {"module":"django.core.handlers.base","function":"_get_response","abs_path":"/venv/lib/python3.12/site-packages/django/core/handlers/base.py","in_app":false}
    ]));
    let b = with_library_frames(json!([
        {"module":"django.core.handlers.base","function":"get_response_async","abs_path":"/venv/lib/python3.13/site-packages/django/core/handlers/base.py","in_app":false},
        {"module":"sentry_sdk.integrations.django","function":"sentry_patched","in_app":false}
    ]));
    assert_same(&a, &b);
    // The system hashes differ; the shared app hash is what joins them.
    let (ra, rb) = (group(&a), group(&b));
    assert_eq!(ra.hashes.len(), 2);
    assert_eq!(ra.hashes[0], rb.hashes[0]);
    assert_ne!(ra.hashes[1], rb.hashes[1]);
}

#[test]
fn t10_in_app_flags_change() {
    let mut frames_a = t01_frames("1.0", 40, 12);
    for f in frames_a.as_array_mut().unwrap() {
        f["in_app"] = json!(false);
    }
    let a = exc_event("KeyError", "'sku'", frames_a);
    let b = exc_event("KeyError", "'sku'", t01_frames("1.0", 40, 12));
    assert_same(&a, &b);
    let ra = group(&a);
    assert_eq!(ra.hashes.len(), 1, "only a system hash");
    let app = ra.variants.iter().find(|v| v.name == "app").unwrap();
    assert!(!app.contributes);
    let rb = group(&b);
    let sys = rb.variants.iter().find(|v| v.name == "system").unwrap();
    assert_eq!(
        sys.hint.as_deref(),
        Some("ignored because hash matches app variant")
    );
    assert_eq!(ra.hashes, rb.hashes);
}

// ---- exceptions, chains, groups ----

#[test]
fn chained_exception_hash_covers_the_whole_chain() {
    let cause = json!({"type":"OSError","value":"disk full"});
    let outer = json!({"type":"RuntimeError","value":"save failed","stacktrace":{"frames":t01_frames("1.0",1,2)}});
    let single = base(json!({"exception":{"values":[outer.clone()]}}));
    let chained = base(json!({"exception":{"values":[cause.clone(), outer.clone()]}}));
    let other_cause = base(
        json!({"exception":{"values":[{"type":"PermissionError","value":"x"}, outer.clone()]}}),
    );
    assert_different(&single, &chained);
    assert_different(&chained, &other_cause);
    let r = group(&chained);
    assert_eq!(r.title, "RuntimeError: save failed");
    let c = &r.variants[0].component;
    assert!(c.find_contributing("chained-exception").is_some());
}

#[test]
fn exception_shapes_are_equivalent() {
    let e = json!({"type":"E","value":"v 1"});
    let a = base(json!({"exception":{"values":[e.clone()]}}));
    let b = base(json!({"exception":[e.clone()]}));
    let c = base(json!({"exception":e.clone()}));
    let d = base(json!({"sentry.interfaces.Exception":{"values":[e]}}));
    let h = group(&a).hashes;
    assert_eq!(group(&b).hashes, h);
    assert_eq!(group(&c).hashes, h);
    assert_eq!(group(&d).hashes, h);
}

#[test]
fn untyped_value_is_split_like_relay() {
    let a = base(json!({"exception":{"values":[{"value":"TypeError: x is undefined"}]}}));
    let b = base(json!({"exception":{"values":[{"type":"TypeError","value":"x is undefined"}]}}));
    assert_eq!(group(&a).hashes, group(&b).hashes);
    assert_eq!(group(&a).title, "TypeError: x is undefined");
}

#[test]
fn top_level_stacktrace_moves_into_single_exception() {
    let a = base(
        json!({"exception":{"values":[{"type":"E","value":"a"}]},"stacktrace":{"frames":t01_frames("1.0",1,2)}}),
    );
    let b = base(
        json!({"exception":{"values":[{"type":"E","value":"b"}]},"stacktrace":{"frames":t01_frames("1.0",1,2)}}),
    );
    assert_eq!(
        group(&a).hashes,
        group(&b).hashes,
        "stack takes precedence over value"
    );
    assert_eq!(group(&a).culprit, "/api/orders/{id}");
}

#[test]
fn synthetic_exception_type_does_not_contribute() {
    let frames = json!([{"function":"crash_here","filename":"main.c","in_app":true}]);
    let a = base(
        json!({"platform":"native","exception":{"values":[{"type":"SIGSEGV","value":"a","mechanism":{"synthetic":true},"stacktrace":{"frames":frames.clone()}}]}}),
    );
    let b = base(
        json!({"platform":"native","exception":{"values":[{"type":"EXC_BAD_ACCESS","value":"b","mechanism":{"synthetic":true},"stacktrace":{"frames":frames}}]}}),
    );
    assert_eq!(group(&a).hashes, group(&b).hashes);
    assert_eq!(group(&a).title, "crash_here");
    assert_eq!(group(&a).metadata.ty, None);
}

#[test]
fn ns_error_replaces_value() {
    let mk = |v: &str, code: i64| {
        base(
            json!({"platform":"cocoa","exception":{"values":[{"type":"NSError","value":v,
            "mechanism":{"meta":{"ns_error":{"domain":"NSURLErrorDomain","code":code}}}}]}}),
        )
    };
    assert_eq!(group(&mk("a", -1001)).hashes, group(&mk("b", -1001)).hashes);
    assert_ne!(group(&mk("a", -1001)).hashes, group(&mk("a", -1009)).hashes);
}

#[test]
fn exception_group_with_one_distinct_error_is_titled_by_it() {
    let leaf = |id: i64| {
        json!({"type":"ValueError","value":format!("bad {id}"),"mechanism":{"exception_id":id,"parent_id":0},
            "stacktrace":{"frames":t01_frames("1.0",1,2)}})
    };
    let group_ev = |n: i64| {
        let mut values = vec![
            json!({"type":"ExceptionGroup","value":"many","mechanism":{"exception_id":0,"is_exception_group":true}}),
        ];
        values.extend((1..=n).map(leaf));
        base(json!({"exception":{"values":values}}))
    };
    let single = base(
        json!({"exception":{"values":[{"type":"ValueError","value":"bad","stacktrace":{"frames":t01_frames("1.0",1,2)}}]}}),
    );
    let r = group(&group_ev(3));
    assert_eq!(r.title, "ValueError: bad 3");
    assert_eq!(r.hashes, group(&group_ev(2)).hashes);
    assert_eq!(r.hashes, group(&single).hashes);

    // Two distinct errors: root group plus one of each. SDKs list the root group last
    // (outermost), so with no single main exception the group titles the issue.
    let values = vec![
        leaf(1),
        json!({"type":"KeyError","value":"k","mechanism":{"exception_id":2,"parent_id":0}}),
        json!({"type":"ExceptionGroup","value":"many","mechanism":{"exception_id":0,"is_exception_group":true}}),
    ];
    let mixed = base(json!({"exception":{"values":values}}));
    let rm = group(&mixed);
    assert_eq!(rm.title, "ExceptionGroup: many");
    assert_ne!(rm.hashes, r.hashes);
}

#[test]
fn broken_exception_group_tree_falls_back_to_list() {
    let ev = base(json!({"exception":{"values":[
        {"type":"ExceptionGroup","value":"g","mechanism":{"exception_id":0,"is_exception_group":true}},
        {"type":"A","value":"a","mechanism":{"exception_id":0,"parent_id":0}}
    ]}}));
    let r = group(&ev);
    assert_eq!(r.title, "A: a");
}

// ---- stack traces ----

#[test]
fn recursion_is_collapsed() {
    let f = json!({"module":"m","function":"recurse","lineno":3,"in_app":true});
    let once = base(
        json!({"exception":{"values":[{"type":"RecursionError","stacktrace":{"frames":[f.clone()]}}]}}),
    );
    let many = base(
        json!({"exception":{"values":[{"type":"RecursionError","stacktrace":{"frames":[f.clone(), f.clone(), f.clone()]}}]}}),
    );
    assert_eq!(group(&once).hashes, group(&many).hashes);
    let r = group(&many);
    let json = serde_json::to_string(&r.variants[0].component).unwrap();
    assert!(json.contains("ignored due to recursion"));
}

#[test]
fn threads_strategy_uses_the_crashed_thread() {
    let frames = json!([{"function":"main","filename":"main.c","in_app":true},{"function":"crash","filename":"crash.c","in_app":true}]);
    let mk = |other: &str| {
        json!({"platform":"native","threads":{"values":[
            {"id":1,"crashed":false,"stacktrace":{"frames":[{"function":other,"in_app":true}]}},
            {"id":2,"crashed":true,"stacktrace":{"frames":frames.clone()}}
        ]}})
    };
    let (a, b) = (group(&mk("idle")), group(&mk("poll")));
    assert_eq!(a.hashes, b.hashes);
    assert_eq!(a.title, "<unlabeled event>");
    let ambiguous = json!({"platform":"native","threads":[
        {"id":1,"stacktrace":{"frames":[{"function":"a"}]}},
        {"id":2,"stacktrace":{"frames":[{"function":"b"}]}}
    ]});
    let r = group(&ambiguous);
    assert_eq!(r.variants.last().unwrap().name, "fallback");
}

#[test]
fn exception_uses_stack_of_its_thread() {
    let ev = json!({"platform":"native",
        "exception":{"values":[{"type":"SIGABRT","value":"x","thread_id":2}]},
        "threads":{"values":[{"id":2,"crashed":true,"stacktrace":{"frames":[{"function":"main","in_app":true},{"function":"boom","in_app":true}]}}]}});
    let r = group(&ev);
    assert!(
        r.variants[0]
            .component
            .find_contributing("stacktrace")
            .is_some()
    );
    assert_eq!(r.metadata.function.as_deref(), Some("boom"));
}

#[test]
fn exception_outranks_threads_and_bare_stacktrace() {
    let ev = base(json!({
        "exception":{"values":[{"type":"E","value":"v","stacktrace":{"frames":t01_frames("1.0",1,2)}}]},
        "threads":{"values":[{"id":1,"crashed":true,"stacktrace":{"frames":[{"function":"x","in_app":true}]}}]},
        "logentry":{"formatted":"hello"}
    }));
    let r = group(&ev);
    let default = r.variants.iter().find(|v| v.name == "default").unwrap();
    assert!(!default.contributes);
    let app = &r.variants[0];
    let threads = app
        .component
        .children()
        .find(|c| c.id == "threads")
        .unwrap();
    assert_eq!(threads.hint.as_deref(), Some("exception takes precedence"));
}

#[test]
fn message_with_attached_stack_groups_by_stack() {
    let a = base(
        json!({"logentry":{"formatted":"first"},"stacktrace":{"frames":t01_frames("1.0",1,2)}}),
    );
    let b = base(
        json!({"logentry":{"formatted":"second"},"stacktrace":{"frames":t01_frames("1.0",1,2)}}),
    );
    assert_eq!(group(&a).hashes, group(&b).hashes);
    assert_eq!(group(&a).title, "first");
}

#[test]
fn native_crash_handler_frames_do_not_group() {
    let mk = |tail: Value| {
        let mut frames = vec![
            json!({"function":"main","filename":"main.cpp","in_app":true}),
            json!({"function":"void app::run(int)","filename":"app.cpp","in_app":true}),
            json!({"function":"abort","package":"libc.so.6"}),
        ];
        frames.extend(tail.as_array().unwrap().iter().cloned());
        json!({"platform":"native","exception":{"values":[{"type":"SIGABRT","stacktrace":{"frames":frames}}]}})
    };
    let a = mk(json!([{"function":"__pthread_kill_implementation"},{"function":"raise"}]));
    let b = mk(json!([{"function":"pthread_kill@@GLIBC_2.34"}]));
    assert_eq!(group(&a).hashes, group(&b).hashes);
    // Only in-app frames remain below the handler, so `system` equals `app` and drops out.
    let r = group(&a);
    assert_eq!(r.hashes.len(), 1);
    let vals = r.variants[0].component.contributing_values();
    assert_eq!(vals, ["SIGABRT", "main.cpp", "main", "app.cpp", "app::run"]);
}

#[test]
fn rust_symbol_hashes_do_not_split() {
    let mk = |h: &str| {
        json!({"platform":"native","exception":{"values":[{"type":"panic","value":"boom","stacktrace":{"frames":[
            {"function":format!("my_app::main::{h}"),"in_app":true},
            {"function":"std::panicking::begin_panic::h1111222233334444"}]}}]}})
    };
    assert_eq!(
        group(&mk("h0123456789abcdef")).hashes,
        group(&mk("hfedcba9876543210")).hashes
    );
}

#[test]
fn javascript_minified_and_cdn_frames() {
    let mk = |func: &str, line: &str| {
        json!({"platform":"javascript","exception":{"values":[{"type":"TypeError","value":"x","stacktrace":{"frames":[
            {"abs_path":"https://cdn.example.com/static/js/main.4f3a2b1c.js","filename":"/static/js/main.4f3a2b1c.js","function":func,"context_line":line,"lineno":1,"colno":12345,"in_app":true}
        ]}}]}})
    };
    let long = "a".repeat(200);
    // The minified line exceeds 120 characters, so only module and function remain.
    assert_eq!(
        group(&mk("n.render", &long)).hashes,
        group(&mk("Object.render", &"b".repeat(300))).hashes
    );
    assert_ne!(
        group(&mk("render", &long)).hashes,
        group(&mk("update", &long)).hashes
    );
    let vals = group(&mk("n.render", &long)).variants[0]
        .component
        .contributing_values();
    assert_eq!(vals, ["TypeError", "main", "render"]);
    // The culprit is Sentry's raw `function(filename)`, not the cleaned grouping values.
    assert_eq!(
        group(&mk("n.render", &long)).culprit,
        "n.render(/static/js/main.4f3a2b1c.js)"
    );
}

#[test]
fn javascript_culprit_format() {
    let ev = json!({"platform":"javascript","exception":{"values":[{"type":"E","value":"v","stacktrace":{"frames":[
        {"filename":"app.js","function":"outer","in_app":true},
        {"filename":"lib.js","function":"inner","in_app":false}
    ]}}]}});
    assert_eq!(group(&ev).culprit, "outer(app.js)");
}

#[test]
fn culprit_rules() {
    let frames = t01_frames("1.0", 1, 2);
    let mut ev = exc_event("E", "v", frames.clone());
    ev.as_object_mut().unwrap().remove("transaction");
    assert_eq!(group(&ev).culprit, "shop.pricing in price");
    merge(&mut ev, json!({"culprit":"legacy culprit"}));
    assert_eq!(group(&ev).culprit, "legacy culprit");

    let req = json!({"platform":"python","message":"hi","request":{"url":"https://x.io/a"}});
    assert_eq!(group(&req).culprit, "https://x.io/a");

    let native = json!({"platform":"native","stacktrace":{"frames":[{"function":"main"},{"function":"crash"}]}});
    assert_eq!(group(&native).culprit, "crash");

    let long = base(json!({"transaction": "t".repeat(300)}));
    assert_eq!(group(&long).culprit.chars().count(), 200);
}

// ---- titles and metadata ----

#[test]
fn titles() {
    let long_value = format!("{}\nsecond line", "x".repeat(150));
    let r = group(&exc_no_stack("ValueError", &long_value));
    assert_eq!(r.title, format!("ValueError: {}...", "x".repeat(97)));
    assert_eq!(r.metadata.ty.as_deref(), Some("ValueError"));
    assert_eq!(r.metadata.value.as_deref(), Some(long_value.as_str()));

    assert_eq!(group(&exc_no_stack("KeyError", "")).title, "KeyError");
    assert_eq!(
        group(&base(
            json!({"exception":{"values":[{"value":"only a value with spaces: x"}]}})
        ))
        .title,
        "Error: only a value with spaces: x"
    );
    assert_eq!(group(&json!({})).title, "<unlabeled event>");
    assert_eq!(group(&json!({"message":"plain\nmore"})).title, "plain");
    assert_eq!(
        group(&json!({"message":{"message":"User %s gone","params":["bob"]}})).title,
        "User %s gone"
    );
    assert_eq!(
        group(&json!({"logentry":{"message":"tpl %s"},"message":"ignored"})).title,
        "tpl %s"
    );
}

#[test]
fn metadata_crash_frame() {
    let ev = exc_event("KeyError", "'sku'", t01_frames("1.0", 40, 12));
    let r = group(&ev);
    assert_eq!(r.title, "KeyError: 'sku'");
    assert_eq!(r.metadata.filename.as_deref(), Some("shop/pricing.py"));
    assert_eq!(r.metadata.function.as_deref(), Some("price"));
    let json = serde_json::to_value(&r.metadata).unwrap();
    assert_eq!(json["type"], "KeyError");
}

// ---- fingerprints ----

#[test]
fn custom_fingerprint_replaces_default_grouping() {
    let mut a = exc_event("KeyError", "x", t01_frames("1.0", 1, 2));
    let mut b = exc_event("TypeError", "y", json!([]));
    merge(&mut a, json!({"fingerprint":["payment-failed"]}));
    merge(&mut b, json!({"fingerprint":["payment-failed"]}));
    let (ra, rb) = (group(&a), group(&b));
    assert_eq!(ra.hashes, rb.hashes);
    assert_eq!(ra.hashes.len(), 1);
    assert_eq!(ra.fingerprint_kind, FingerprintKind::Custom);
    assert_eq!(ra.variants[0].name, "custom-fingerprint");
    assert!(ra.variants[1..].iter().all(|v| !v.contributes));
    assert_eq!(
        ra.title, "KeyError: x",
        "title is unaffected by the fingerprint"
    );
}

#[test]
fn default_fingerprint_spellings_mean_default_grouping() {
    let ev = exc_event("KeyError", "x", t01_frames("1.0", 1, 2));
    let h = group(&ev).hashes;
    for fp in [
        json!(["{{ default }}"]),
        json!(["{{default}}"]),
        json!([]),
        json!(null),
    ] {
        let mut e = ev.clone();
        merge(&mut e, json!({ "fingerprint": fp }));
        let r = group(&e);
        assert_eq!(r.hashes, h);
        assert_eq!(r.fingerprint_kind, FingerprintKind::Default);
    }
}

#[test]
fn hybrid_fingerprint_salts_default_grouping() {
    let ev = exc_event("KeyError", "x", t01_frames("1.0", 1, 2));
    let salted = |s: &str| {
        let mut e = ev.clone();
        merge(&mut e, json!({"fingerprint":["{{ default }}", s]}));
        group(&e)
    };
    let (a, a2, b) = (salted("eu"), salted("eu"), salted("us"));
    assert_eq!(a.hashes, a2.hashes);
    assert_ne!(a.hashes, b.hashes);
    assert_ne!(a.hashes, group(&ev).hashes);
    assert_eq!(a.fingerprint_kind, FingerprintKind::Hybrid);
    assert_eq!(
        a.variants[0].fingerprint.as_deref(),
        Some(&["{{ default }}".to_owned(), "eu".to_owned()][..])
    );

    // Hybrid over an empty event still salts.
    let mut e1 = json!({"fingerprint":["{{ default }}", "a"]});
    let e2 = json!({"fingerprint":["{{ default }}", "b"]});
    assert_ne!(group(&e1).hashes, group(&e2).hashes);
    merge(
        &mut e1,
        json!({"fingerprint":["{{ default }}", "{{ error.value }}"]}),
    );
    assert_eq!(
        group(&e1).variants[0].fingerprint.as_ref().unwrap()[1],
        "<no-value>"
    );
}

#[test]
fn fingerprint_variables() {
    let mut ev = exc_event("KeyError", "Order 12 missing", t01_frames("1.0", 1, 2));
    merge(
        &mut ev,
        json!({
            "logger":"shop","tags":{"region":"eu"},
            "fingerprint":["{{ transaction }}","{{type}}","{{ error.value }}","{{ function }}",
                "{{ module }}","{{ stack.abs_path }}","{{ stack.filename }}","{{ level }}","{{ logger }}",
                "{{ tags.region }}","{{ tags.nope }}","{{ package }}","{{ bogus }}","db-{{ transaction }}",
                "{{ message }}"]
        }),
    );
    let r = group(&ev);
    assert_eq!(
        r.variants[0].fingerprint.as_deref().unwrap(),
        [
            "/api/orders/{id}",
            "KeyError",
            "Order 12 missing",
            "price",
            "shop.pricing",
            "/srv/app-1.0/shop/pricing.py",
            "shop/pricing.py",
            "error",
            "shop",
            "eu",
            "<no-value-for-tag-nope>",
            "<no-package>",
            "<unrecognized-variable-bogus>",
            "db-{{ transaction }}",
            "Order 12 missing"
        ]
    );
    // Variables insert raw values: no parameterization.
    let mut other = ev.clone();
    other["exception"]["values"][0]["value"] = json!("Order 13 missing");
    assert_ne!(group(&other).hashes, r.hashes);
}

#[test]
fn fingerprint_entries_are_not_ambiguous() {
    let mk = |fp: Value| group(&json!({ "fingerprint": fp })).hashes;
    assert_ne!(mk(json!(["ab", "c"])), mk(json!(["a", "bc"])));
    assert_eq!(mk(json!([1, true])), mk(json!(["1", "True"])));
}

#[test]
fn checksum_is_the_only_variant() {
    let md5 = "0123456789abcdef0123456789abcdef";
    let r = group(&json!({"checksum": md5, "message": "x"}));
    assert_eq!(r.hashes, [md5]);
    let r2 = group(&json!({"checksum": "not-a-hash"}));
    assert_eq!(r2.hashes.len(), 1);
    assert_ne!(r2.hashes[0], "not-a-hash");
}

#[test]
fn empty_events_share_one_issue() {
    let a = group(&json!({"platform":"python"}));
    let b = group(&json!({"level":"warning","exception":{"values":[]}}));
    assert_eq!(a.hashes, ["d41d8cd98f00b204e9800998ecf8427e"]);
    assert_eq!(a.hashes, b.hashes);
    assert_eq!(group(&json!("not an object")).hashes, a.hashes);
    assert_eq!(a.variants.last().unwrap().name, "fallback");
}

#[test]
fn message_and_exception_hashes_never_collide() {
    let m = group(&json!({"message":"KeyError"}));
    let e = group(&json!({"exception":[{"type":"KeyError"}]}));
    assert_ne!(m.hashes, e.hashes);
}

// ---- server-side rules ----

#[test]
fn rules_replace_the_fingerprint() {
    let rules = "error.type:DatabaseUnavailable -> system-down\n";
    let a = exc_no_stack("DatabaseUnavailable", "host a");
    let b = exc_event("DatabaseUnavailable", "host b", t01_frames("1.0", 1, 2));
    let (ra, rb) = (group_with(&a, rules), group_with(&b, rules));
    assert_eq!(ra.hashes, rb.hashes);
    assert_eq!(ra.fingerprint_kind, FingerprintKind::Rule);
    assert_eq!(
        ra.matched_rule.as_deref(),
        Some("error.type:DatabaseUnavailable -> system-down")
    );
    let c = group_with(&exc_no_stack("Other", "host a"), rules);
    assert_eq!(c.matched_rule, None);
    assert_eq!(c.fingerprint_kind, FingerprintKind::Default);
}

#[test]
fn rule_overrides_client_fingerprint_and_sets_title() {
    let mut ev = exc_no_stack("ConnectionError", "Connection timed out after 30s");
    merge(&mut ev, json!({"fingerprint":["client"]}));
    let rules = r#"
type:ConnectionError value:"*TIMED OUT*" -> {{ default }}, timeout title="Timeout in {{ transaction }} ({{ level }})"
type:ConnectionError -> never-reached
"#;
    let r = group_with(&ev, rules);
    assert_eq!(r.title, "Timeout in /api/orders/{id} (error)");
    assert!(r.matched_rule.unwrap().contains("timeout"));
    assert_eq!(r.variants[0].fingerprint.as_deref().unwrap()[1], "timeout");
    assert_ne!(r.hashes, group(&ev).hashes);
}

#[test]
fn rule_matchers() {
    let ev = base(json!({
        "logger":"db.pool","tags":{"server_name":"web-3"},"sdk":{"name":"sentry.python"},
        "logentry":{"formatted":"Pool exhausted: 10 connections"},
        "exception":{"values":[{"type":"PoolError","value":"exhausted","stacktrace":{"frames":[
            {"module":"app.db","function":"connect","abs_path":"C:\\srv\\app\\db.py","package":"/venv/pkgs/app","in_app":true},
            {"module":"vendor.pool","function":"get","abs_path":"/venv/vendor/pool.py","in_app":false}
        ]}}]}
    }));
    let hits = [
        "type:PoolError -> x",
        "type:Pool* -> x",
        "value:EXHAUSTED -> x",
        "message:\"pool exhausted:*\" -> x",
        "message:exhausted -> x",
        "logger:db.* -> x",
        "level:ERROR -> x",
        "tags.server_name:web-* -> x",
        "sdk:sentry.* -> x",
        "release:1.* -> x",
        "module:app.db function:connect -> x",
        "path:**/app/db.py -> x",
        "stack.abs_path:c:/srv/** -> x",
        "package:**/app -> x",
        "family:other app:yes function:connect -> x",
        "!type:KeyError -> x",
        "module:vendor.* app:no -> x",
    ];
    for rule in hits {
        assert!(
            group_with(&ev, rule).matched_rule.is_some(),
            "should match: {rule}"
        );
    }
    let misses = [
        "type:poolerror -> x",
        "type:Pool -> x",
        "logger:db -> x",
        "tags.other:* -> x",
        "module:app.db function:get -> x", // not the same frame
        "module:vendor.* app:yes -> x",
        "family:javascript -> x",
        "path:*/db.py -> x",
        "!type:PoolError -> x",
        "type:PoolError level:warning -> x",
    ];
    for rule in misses {
        assert!(
            group_with(&ev, rule).matched_rule.is_none(),
            "should not match: {rule}"
        );
    }
}

#[test]
fn first_matching_rule_wins() {
    let ev = exc_no_stack("E", "v");
    let r = group_with(&ev, "type:X -> a\ntype:E -> b\ntype:* -> c");
    assert_eq!(r.matched_rule.as_deref(), Some("type:E -> b"));
    assert_eq!(r.variants[0].fingerprint.as_deref().unwrap(), ["b"]);
}

// ---- serialisation ----

#[test]
fn result_round_trips_through_json() {
    let mut ev = exc_event("KeyError", "x", t01_frames("1.0", 1, 2));
    merge(&mut ev, json!({"fingerprint":["{{ default }}", "x"]}));
    let r = group(&ev);
    let json = serde_json::to_string(&r).unwrap();
    let back: GroupingResult = serde_json::from_str(&json).unwrap();
    assert_eq!(back, r);
    let v: Value = serde_json::from_str(&json).unwrap();
    assert_eq!(v["fingerprint_kind"], "hybrid");
}

// ---- timing ----

/// `cargo test --release -- --ignored --nocapture grouping_timing`
#[test]
#[ignore]
fn grouping_timing() {
    let mut frames: Vec<Value> = (0..20)
        .map(|i| {
            json!({"module":format!("lib.mod{i}"),"function":format!("func_{i}"),"filename":format!("lib/mod{i}.py"),
                "abs_path":format!("/venv/lib/python3.12/site-packages/lib/mod{i}.py"),"lineno":i*10,
                "context_line":format!("    result = call_{i}(arg, other)  "),"in_app":false})
        })
        .collect();
    frames.extend(t01_frames("1.0", 1, 2).as_array().unwrap().iter().cloned());
    let events = [
        exc_event(
            "ValueError",
            "Order 12345 not found for user bob@example.com",
            Value::Array(frames.clone()),
        ),
        exc_no_stack(
            "RuntimeError",
            "connect to 10.0.0.12:5432 failed after 3000ms",
        ),
        base(
            json!({"logentry":{"message":"Payment %s failed","params":["1"],"formatted":"Payment 1 failed"}}),
        ),
        base(
            json!({"exception":{"values":[{"type":"OSError","value":"disk full"},
            {"type":"RuntimeError","value":"save failed","stacktrace":{"frames":frames}}]}}),
        ),
    ];
    let rules =
        FingerprintRules::parse("type:DatabaseUnavailable -> db\nmodule:nothing.* -> x").unwrap();
    let cfg = std::env::var("SNAG_GROUPING_CONFIG")
        .ok()
        .and_then(|id| GroupingConfig::by_id(&id))
        .unwrap_or_default();
    for ev in &events {
        std::hint::black_box(compute(ev, &rules, &cfg));
    }
    let n = 2000;
    for (i, ev) in events.iter().enumerate() {
        let start = std::time::Instant::now();
        for _ in 0..n {
            std::hint::black_box(compute(std::hint::black_box(ev), &rules, &cfg));
        }
        let us = start.elapsed().as_secs_f64() * 1e6 / n as f64;
        println!("event {i}: {us:.1} µs/event");
    }
}
