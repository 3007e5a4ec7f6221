//! Table-driven tests of what frames contribute per platform (reference §2.2–2.3 plus the
//! cases Sentry users run into), of stack-trace rules, titles, culprits, fingerprint
//! variables and rules, and of config versioning.

use serde_json::{Value, json};

use super::*;

fn cfg(id: &str) -> GroupingConfig {
    GroupingConfig::by_id(id).unwrap()
}

/// Groups `{platform, exception: E with these frames}` and returns what the first
/// contributing variant hashed, without the leading exception type.
fn stack_values_with(config: &GroupingConfig, platform: &str, frames: Value) -> Vec<String> {
    let ev = json!({"platform": platform, "exception": {"values": [
        {"type": "E", "stacktrace": {"frames": frames}}]}});
    let r = compute(&ev, &FingerprintRules::default(), config);
    let v = r.variants.iter().find(|v| v.contributes).unwrap();
    let mut vals = v.component.contributing_values();
    assert_eq!(vals.first().map(String::as_str), Some("E"), "{v:#?}");
    vals.remove(0);
    vals
}

fn stack_values(platform: &str, frames: Value) -> Vec<String> {
    stack_values_with(&GroupingConfig::default(), platform, frames)
}

fn one(platform: &str, frame: Value) -> Vec<String> {
    let mut f = frame;
    if f.get("in_app").is_none() {
        f["in_app"] = json!(true);
    }
    stack_values(platform, json!([f]))
}

#[track_caller]
fn check_table(cases: &[(&str, Value, &[&str])]) {
    for (platform, frame, want) in cases {
        assert_eq!(one(platform, frame.clone()), *want, "{platform}: {frame}");
    }
}

// ---- frames, per platform ----

#[test]
fn python_frames() {
    check_table(&[
        (
            "python",
            json!({"module":"shop.views","function":"checkout","filename":"shop/views.py","abs_path":"/srv/a/shop/views.py","lineno":4,"context_line":"  total  =\tprice(cart) "}),
            &["shop.views", "checkout", "total = price(cart)"],
        ),
        // no module: the lower-cased basename stands in
        (
            "python",
            json!({"function":"run","filename":"Jobs/Nightly.PY","context_line":"run()"}),
            &["nightly.py", "run", "run()"],
        ),
        // only abs_path (Relay fills filename from it)
        (
            "python",
            json!({"function":"run","abs_path":"/srv/app/jobs/nightly.py"}),
            &["nightly.py", "run"],
        ),
        // <module> and <lambda> are stable names and hashed as they are
        (
            "python",
            json!({"module":"__main__","function":"<module>","context_line":"main()"}),
            &["__main__", "<module>", "main()"],
        ),
        (
            "python",
            json!({"module":"app.sort","function":"<lambda>","context_line":"key=lambda r: r.id"}),
            &["app.sort", "<lambda>", "key=lambda r: r.id"],
        ),
        // multiprocessing's fresh fd numbers
        (
            "python",
            json!({"function":"<module>","filename":"<string>","context_line":"from multiprocessing.spawn import spawn_main; spawn_main(tracker_fd=6, pipe_handle=12)"}),
            &[
                "<string>",
                "<module>",
                "from multiprocessing.spawn import spawn_main; spawn_main(tracker_fd=<int>, pipe_handle=<int>)",
            ],
        ),
        // minified or generated lines over 120 characters never count
        (
            "python",
            json!({"module":"gen","function":"f","context_line":"x".repeat(121)}),
            &["gen", "f"],
        ),
        // a blank context line says nothing
        (
            "python",
            json!({"module":"m","function":"f","context_line":"   \t "}),
            &["m", "f"],
        ),
        // lineno, colno, abs_path, vars, pre/post context never count
        (
            "python",
            json!({"module":"m","function":"f","lineno":99,"colno":3,"abs_path":"/x/m.py","vars":{"a":"1"},"pre_context":["a"],"post_context":["b"]}),
            &["m", "f"],
        ),
    ]);
}

#[test]
fn javascript_frames() {
    let long = "a".repeat(300);
    check_table(&[
        // `Object.foo`, `Foo.foo` and `foo` are one function
        (
            "javascript",
            json!({"filename":"/static/app.js?v=3","function":"Object.handleClick"}),
            &["app.js", "handleClick"],
        ),
        // the module takes precedence over the filename
        (
            "node",
            json!({"module":"lib:checkout","filename":"/app/lib/checkout.js","function":"pay","context_line":"throw err"}),
            &["lib:checkout", "pay", "throw err"],
        ),
        // anonymous names, also after cutting to the last segment
        (
            "node",
            json!({"module":"index","function":"Object.<anonymous>","context_line":"main()"}),
            &["index", "main()"],
        ),
        (
            "javascript",
            json!({"filename":"app.js","function":"<anonymous>"}),
            &["app.js"],
        ),
        (
            "javascript",
            json!({"filename":"app.js","function":"?"}),
            &["app.js"],
        ),
        (
            "javascript",
            json!({"filename":"app.js","function":"render/<"}),
            &["app.js"],
        ),
        (
            "javascript",
            json!({"filename":"app.js","function":"Anonymous function"}),
            &["app.js"],
        ),
        // CDN bundle: filename dropped (URL), module derived from the URL, minified line
        // too long, so module and function remain
        (
            "javascript",
            json!({"abs_path":"https://cdn.x.io/static/js/main.4f3a2b1c.js","filename":"/static/js/main.4f3a2b1c.js","function":"n.render","context_line":long}),
            &["main", "render"],
        ),
        // source maps: the original line replaces the (unreliable) function name
        (
            "javascript",
            json!({"abs_path":"webpack:///./src/app.js","filename":"./src/app.js","module":"src/app","function":"a","context_line":"throw new Error(msg)","data":{"sourcemap":"https://x/app.js.map"}}),
            &["src/app", "throw new Error(msg)"],
        ),
        // a URL frame without a function: its context line is not trusted
        (
            "node",
            json!({"abs_path":"file:///app/index.js","filename":"index.js","context_line":"boot()"}),
            &["index.js"],
        ),
        // only a URL filename: treated as the URL it is
        (
            "javascript",
            json!({"filename":"https://example.com/assets/app.js?v=1","function":"go"}),
            &["assets/app", "go"],
        ),
    ]);
    // eval and native-code frames are dropped whole
    assert_eq!(
        stack_values(
            "javascript",
            json!([
                {"function":"eval","filename":"app.js","in_app":true},
                {"function":"forEach","abs_path":"[native code]","in_app":true},
                {"function":"go","filename":"app.js","in_app":true}
            ])
        ),
        ["app.js", "go"]
    );
}

#[test]
fn javascript_minified_builds() {
    // Without source maps a new build renames functions: a new group (sentry#52231), but
    // the same build groups whatever the column.
    let mk = |func: &str, col: i64| json!([{"abs_path":"https://x.io/js/app.min.js","function":func,"colno":col,"lineno":1,"in_app":true}]);
    assert_eq!(
        stack_values("javascript", mk("t.a", 100)),
        stack_values("javascript", mk("t.a", 9000))
    );
    assert_ne!(
        stack_values("javascript", mk("t.a", 1)),
        stack_values("javascript", mk("t.b", 1))
    );
}

#[test]
fn jvm_frames() {
    check_table(&[
        // class + method, no context line, no filename when the class is known
        (
            "java",
            json!({"module":"com.shop.Checkout","function":"pay","filename":"Checkout.java","lineno":3,"context_line":"pay();"}),
            &["com.shop.Checkout", "pay"],
        ),
        // CGLIB (Spring 5 and 6), Guice single and double `$`
        (
            "java",
            json!({"module":"com.x.Svc$$EnhancerBySpringCGLIB$$1a2b3c4d","function":"run"}),
            &["com.x.Svc$$EnhancerBySpringCGLIB$$<auto>", "run"],
        ),
        (
            "java",
            json!({"module":"com.x.Svc$$SpringCGLIB$$0","function":"run"}),
            &["com.x.Svc$$SpringCGLIB$$<auto>", "run"],
        ),
        (
            "java",
            json!({"module":"com.x.Ctl$EnhancerByGuice$ae46b1bf","function":"get"}),
            &["com.x.Ctl$EnhancerByGuice$<auto>", "get"],
        ),
        (
            "java",
            json!({"module":"com.x.Ctl$$EnhancerByGuice$$ae46b1bf$$FastClassByGuice$$caceacd2","function":"get"}),
            &[
                "com.x.Ctl$$EnhancerByGuice$$<auto>$$FastClassByGuice$$<auto>",
                "get",
            ],
        ),
        // Hibernate, ByteBuddy, Mockito, JDK proxies, Clojure fns, javassist
        (
            "java",
            json!({"module":"com.x.User$HibernateProxy$abCD12","function":"getName"}),
            &["com.x.User$HibernateProxy$<auto>", "getName"],
        ),
        (
            "java",
            json!({"module":"com.x.User$ByteBuddy$Xy12ab","function":"getName"}),
            &["com.x.User$ByteBuddy$<auto>", "getName"],
        ),
        (
            "java",
            json!({"module":"com.x.Mailer$MockitoMock$1234567","function":"send"}),
            &["com.x.Mailer$MockitoMock$<auto>", "send"],
        ),
        (
            "java",
            json!({"module":"com.sun.proxy.$Proxy123","function":"save"}),
            &["com.sun.proxy.$Proxy<auto>", "save"],
        ),
        (
            "java",
            json!({"module":"jdk.proxy2.$Proxy45","function":"save"}),
            &["jdk.proxy<auto>.$Proxy<auto>", "save"],
        ),
        (
            "java",
            json!({"module":"myapp.core$handler$fn__4785","function":"invoke"}),
            &["myapp.core$handler$fn__<auto>", "invoke"],
        ),
        (
            "java",
            json!({"function":"get","filename":"Res_$$_javassist_seam_74.java"}),
            &["res_$$_javassist<auto>.java", "get"],
        ),
        // lambda classes (JDK 8-20 and 21+): the class is dropped, the filename stays
        (
            "java",
            json!({"module":"com.x.Foo$$Lambda$12/0x0000000801234","function":"apply","filename":"Foo.java"}),
            &["foo.java", "apply"],
        ),
        (
            "java",
            json!({"module":"com.x.Foo$$Lambda/0x00007f0012345678","function":"apply","filename":"Foo.java"}),
            &["foo.java", "apply"],
        ),
        // synthetic lambda methods
        (
            "java",
            json!({"module":"com.x.Foo","function":"lambda$run$0","filename":"Foo.java"}),
            &["com.x.Foo"],
        ),
        // Kotlin coroutines: the state machine class is a stable name
        (
            "java",
            json!({"module":"com.x.Repo$load$1","function":"invokeSuspend","filename":"Repo.kt"}),
            &["com.x.Repo$load$1", "invokeSuspend"],
        ),
    ]);
    // Reflection frames change with the JDK (GeneratedMethodAccessor123 on JDK 8,
    // DirectMethodHandleAccessor on JDK 18+) and never count.
    let call = |reflection: Value| {
        stack_values(
            "java",
            json!([
                {"module":"com.x.Job","function":"run","in_app":false},
                reflection,
                {"module":"java.lang.reflect.Method","function":"invoke","in_app":false},
                {"module":"com.x.Task","function":"execute","in_app":false}
            ]),
        )
    };
    let jdk8 = call(
        json!({"module":"sun.reflect.GeneratedMethodAccessor123","function":"invoke","in_app":false}),
    );
    let jdk21 = call(
        json!({"module":"jdk.internal.reflect.DirectMethodHandleAccessor","function":"invoke","in_app":false}),
    );
    assert_eq!(jdk8, jdk21);
    assert_eq!(jdk8, ["com.x.Job", "run", "com.x.Task", "execute"]);
    assert_eq!(
        frame::clean_java_module("sun.reflect.GeneratedMethodAccessor123"),
        "sun.reflect.GeneratedMethodAccessor"
    );
}

#[test]
fn native_frames() {
    check_table(&[
        (
            "native",
            json!({"function":"void app::run(int) const","filename":"src/App.cpp","instruction_addr":"0x1000","symbol_addr":"0xff0","image_addr":"0x0"}),
            &["app.cpp", "app::run"],
        ),
        // Rust: the symbol hash and the trait impl
        (
            "native",
            json!({"function":"my_app::main::h0123456789abcdef"}),
            &["my_app::main"],
        ),
        (
            "native",
            json!({"function":"<my_app::Cache as core::ops::drop::Drop>::drop::h0123456789abcdef"}),
            &["<my_app::Cache as core::ops::drop::Drop>::drop"],
        ),
        (
            "native",
            json!({"function":"<alloc::vec::Vec<T,A> as core::ops::drop::Drop>::drop"}),
            &["<alloc::vec::Vec<T> as core::ops::drop::Drop>::drop"],
        ),
        // C++ generics and lambdas (gcc, clang, msvc)
        (
            "native",
            json!({"function":"std::vector<int, std::allocator<int>>::push_back(int const&)"}),
            &["std::vector<T>::push_back"],
        ),
        (
            "native",
            json!({"function":"ns::run()::{lambda(int)#1}::operator()(int) const"}),
            &["ns::run::lambda::operator()"],
        ),
        (
            "native",
            json!({"function":"ns::`anonymous namespace'::<lambda_1a2b3c>::operator()"}),
            &["ns::`anonymous namespace'::lambda::operator()"],
        ),
        // MSVC decorations, with and without fastcall's leading @
        ("native", json!({"function":"_foo@8"}), &["_foo"]),
        ("native", json!({"function":"@fast@12"}), &["fast"]),
        // unsymbolicated: nothing to hash, addresses never count
        (
            "native",
            json!({"function":"<unknown>","filename":"crash.c"}),
            &["crash.c"],
        ),
        (
            "native",
            json!({"function":"<redacted>","filename":"crash.c"}),
            &["crash.c"],
        ),
        // Objective-C and Swift (cocoa)
        (
            "cocoa",
            json!({"function":"-[AppDelegate application:didFinishLaunchingWithOptions:]","package":"/private/var/containers/Bundle/Application/X/App.app/App"}),
            &["-[AppDelegate application:didFinishLaunchingWithOptions:]"],
        ),
        (
            "cocoa",
            json!({"function":"MyApp.ViewController.viewDidLoad() -> ()"}),
            &["MyApp.ViewController.viewDidLoad"],
        ),
        (
            "cocoa",
            json!({"function":"closure #2 (Swift.Result<Foundation.Data, Swift.Error>) -> () in MyApp.Loader.load(url: Foundation.URL) -> ()"}),
            &["closure in MyApp.Loader.load"],
        ),
    ]);
    // A frame of nothing but addresses contributes nothing; with no symbol at all the
    // exception falls back to its type and value.
    let ev = json!({"platform":"native","exception":{"values":[{"type":"EXC_BAD_ACCESS","value":"KERN_INVALID_ADDRESS at 0x10","stacktrace":{"frames":[
        {"instruction_addr":"0x1000","package":"/app/bin","in_app":true},
        {"instruction_addr":"0x2000","package":"/app/bin","in_app":true}]}}]}});
    let r = compute(
        &ev,
        &FingerprintRules::default(),
        &GroupingConfig::default(),
    );
    assert_eq!(
        r.variants[0].component.contributing_values(),
        ["EXC_BAD_ACCESS", "KERN_INVALID_ADDRESS at <hex>"]
    );
}

#[test]
fn ruby_php_go_csharp_elixir_frames() {
    check_table(&[
        // Ruby blocks and ERB templates
        (
            "ruby",
            json!({"filename":"app/models/user.rb","function":"block (2 levels) in find_user","context_line":"users.each do |u|"}),
            &["user.rb", "block", "users.each do |u|"],
        ),
        (
            "ruby",
            json!({"filename":"app/models/user.rb","function":"block in <class:User>"}),
            &["user.rb", "block"],
        ),
        (
            "ruby",
            json!({"filename":"app/views/users/show.html.erb","function":"_app_views_users_show_html_erb__1234567_8901234"}),
            &["show.html.erb", "_app_views_users_show_html_erb"],
        ),
        // PHP closures and anonymous classes
        (
            "php",
            json!({"filename":"/var/www/app/Http/Kernel.php","function":"{closure}","context_line":"return $next($r);"}),
            &["kernel.php", "{closure}", "return $next($r);"],
        ),
        (
            "php",
            json!({"filename":"/var/www/app/Http/Kernel.php","function":"{closure:App\\Http\\Kernel::handle():42}"}),
            &["kernel.php", "{closure:App\\Http\\Kernel::handle()}"],
        ),
        (
            "php",
            json!({"filename":"/var/www/app/Svc.php","function":"class@anonymous/var/www/app/Svc.php:3$0::handle"}),
            &["svc.php", "handle"],
        ),
        (
            "php",
            json!({"filename":"/var/www/app/Svc.php","function":"[Anonymous function]"}),
            &["svc.php"],
        ),
        // Go: package + function; numbered closures are distinct closures
        (
            "go",
            json!({"module":"main","function":"main.func1","filename":"main.go","abs_path":"/src/main.go"}),
            &["main", "main.func1"],
        ),
        (
            "go",
            json!({"module":"github.com/x/api","function":"(*Server).Serve","filename":"server.go"}),
            &["github.com/x/api", "(*Server).Serve"],
        ),
        // C#: raw function preferred; compiler-generated ordinals removed
        (
            "csharp",
            json!({"module":"MyApp.Service","function":"Run","raw_function":"Run(int)"}),
            &["MyApp.Service", "Run(int)"],
        ),
        (
            "csharp",
            json!({"module":"MyApp.Service+<ProcessAsync>d__12","function":"MoveNext"}),
            &["MyApp.Service+<ProcessAsync>d__<auto>", "MoveNext"],
        ),
        (
            "csharp",
            json!({"module":"MyApp.Service+<>c__DisplayClass5_0","function":"<Run>b__0"}),
            &["MyApp.Service+<>c__DisplayClass<auto>", "<Run>b__<auto>"],
        ),
        // Elixir: module + function/arity
        (
            "elixir",
            json!({"module":"MyApp.Worker","function":"handle_info/2","filename":"lib/my_app/worker.ex"}),
            &["MyApp.Worker", "handle_info/2"],
        ),
    ]);
}

#[test]
fn csharp_async_ordinals_do_not_split() {
    let mk = |n: u32| json!([{"module":format!("MyApp.Orders+<PlaceAsync>d__{n}"),"function":"MoveNext","in_app":true}]);
    assert_eq!(
        stack_values("csharp", mk(7)),
        stack_values("csharp", mk(12))
    );
}

#[test]
fn deep_and_mutual_recursion() {
    let f = |func: &str| json!({"module":"m","function":func,"lineno":3,"in_app":true});
    let direct = |n: usize| stack_values("python", Value::Array(vec![f("walk"); n]));
    assert_eq!(direct(1), direct(990));
    assert_eq!(direct(990), ["m", "walk"]);
    // Only a repeat of the frame right before counts as recursion: an alternating pair
    // stays (Sentry does the same).
    let alt = stack_values("python", json!([f("a"), f("b"), f("a"), f("b")]));
    assert_eq!(alt.len(), 8);
}

#[test]
fn legacy_config_keeps_its_frame_rules() {
    let old = cfg(CONFIG_2026_11);
    let node = json!([{"module":"index","function":"Object.<anonymous>","context_line":"main()","in_app":true}]);
    assert_eq!(
        stack_values_with(&old, "node", node.clone()),
        ["index", "<anonymous>", "main()"]
    );
    assert_eq!(stack_values("node", node), ["index", "main()"]);
    let spring = json!([{"module":"com.x.Svc$$SpringCGLIB$$0","function":"run","in_app":true}]);
    assert_eq!(
        stack_values_with(&old, "java", spring),
        ["com.x.Svc$$SpringCGLIB$$0", "run"]
    );
}

// ---- stack-trace rules ----

fn with_rules(ev: &Value, rules: &str) -> GroupingResult {
    let rules = StackRules::parse(rules).unwrap();
    compute_with(
        ev,
        &FingerprintRules::default(),
        &rules,
        &GroupingConfig::default(),
    )
}

fn django_event(view: &str) -> Value {
    json!({"platform":"python","exception":{"values":[{"type":"ValueError","value":"bad","stacktrace":{"frames":[
        {"module":"django.core.handlers.base","function":"_get_response","in_app":true},
        {"module":"django.views.generic.base","function":"dispatch","in_app":true},
        {"module":"shop.views","function":view,"in_app":true},
        {"module":"shop.util","function":"check","in_app":true}
    ]}}]}})
}

#[test]
fn minus_app_removes_frames_from_the_app_variant() {
    let ev = django_event("checkout");
    let plain = compute(
        &ev,
        &FingerprintRules::default(),
        &GroupingConfig::default(),
    );
    let r = with_rules(&ev, "stack.module:django.* -app");
    assert_ne!(plain.hashes, r.hashes);
    assert_eq!(
        r.variants[0].component.contributing_values(),
        ["ValueError", "shop.views", "checkout", "shop.util", "check"]
    );
    // The system variant still has every frame, so the issue found by the old system hash
    // is still found (T10's reasoning).
    assert!(r.hashes.contains(plain.hashes.last().unwrap()));
    let json = serde_json::to_string(&r.variants[0].component).unwrap();
    assert!(
        json.contains("marked out of app by stack trace rule (stack.module:django.* -app)"),
        "{json}"
    );
    // The culprit and crash frame follow the new flags.
    let r = with_rules(&ev, "stack.module:shop.util -app");
    assert_eq!(r.metadata.function.as_deref(), Some("checkout"));
}

#[test]
fn plus_app_and_family_and_path_matchers() {
    let ev = json!({"platform":"node","exception":{"values":[{"type":"Error","value":"x","stacktrace":{"frames":[
        {"filename":"/app/node_modules/mylib/index.js","function":"call","in_app":false},
        {"filename":"/app/src/a.js","function":"main","in_app":false}
    ]}}]}});
    let r = with_rules(
        &ev,
        "family:javascript stack.abs_path:**/src/** +app\nfamily:native stack.abs_path:** +app",
    );
    assert_eq!(
        r.variants[0].component.contributing_values(),
        ["Error", "a.js", "main"]
    );
    assert_eq!(r.culprit, "main(/app/src/a.js)");
}

#[test]
fn minus_group_and_ranges() {
    let ev = |frames: Value| json!({"platform":"python","exception":{"values":[{"type":"AssertionError","stacktrace":{"frames":frames}}]}});
    let frames = json!([
        {"module":"tests.flow","function":"test_pay","in_app":true},
        {"module":"tests.helpers","function":"assert_paid","in_app":true},
        {"module":"tests.helpers","function":"assert_status","in_app":true}
    ]);
    let vals = |r: &GroupingResult| r.variants[0].component.contributing_values();
    let r = with_rules(&ev(frames.clone()), "stack.function:assert* -group");
    assert_eq!(vals(&r), ["AssertionError", "tests.flow", "test_pay"]);
    let r = with_rules(&ev(frames.clone()), "stack.function:assert_paid ^-group");
    assert_eq!(
        vals(&r),
        [
            "AssertionError",
            "tests.flow",
            "test_pay",
            "tests.helpers",
            "assert_paid"
        ]
    );
    let r = with_rules(&ev(frames.clone()), "stack.function:assert_paid v-group");
    assert_eq!(
        vals(&r),
        [
            "AssertionError",
            "tests.helpers",
            "assert_paid",
            "tests.helpers",
            "assert_status"
        ]
    );
    // A later rule wins; `+group` undoes an earlier `-group`.
    let r = with_rules(
        &ev(frames.clone()),
        "stack.module:tests.* -group\nstack.function:test_pay +group",
    );
    assert_eq!(vals(&r), ["AssertionError", "tests.flow", "test_pay"]);
    let json = serde_json::to_string(&r.variants[0].component).unwrap();
    assert!(json.contains("ignored by stack trace rule (stack.module:tests.* -group)"));
}

#[test]
fn caller_and_callee_matchers() {
    let ev = json!({"platform":"python","exception":{"values":[{"type":"E","stacktrace":{"frames":[
        {"module":"app.bus","function":"dispatch","in_app":true},
        {"module":"app.handlers","function":"handle_order","in_app":true},
        {"module":"app.handlers","function":"handle_refund","in_app":true},
        {"module":"app.db","function":"save","in_app":true}
    ]}}]}});
    let vals = |rules| {
        with_rules(&ev, rules).variants[0]
            .component
            .contributing_values()
    };
    // only the handler called directly by dispatch
    assert_eq!(
        vals("[ stack.function:dispatch ] | stack.function:handle* -group"),
        [
            "E",
            "app.bus",
            "dispatch",
            "app.handlers",
            "handle_refund",
            "app.db",
            "save"
        ]
    );
    // only the handler that calls save
    assert_eq!(
        vals("stack.function:handle* | [ stack.module:app.db ] -group"),
        [
            "E",
            "app.bus",
            "dispatch",
            "app.handlers",
            "handle_order",
            "app.db",
            "save"
        ]
    );
}

#[test]
fn categories_and_frame_limits() {
    let frames: Vec<Value> = (0..6)
        .map(|i| json!({"module":format!("app.m{i}"),"function":format!("f{i}"),"in_app":true}))
        .collect();
    let ev = json!({"platform":"python","exception":{"values":[{"type":"E","stacktrace":{"frames":frames}}]}});
    let vals = |rules| {
        with_rules(&ev, rules).variants[0]
            .component
            .contributing_values()
    };
    assert_eq!(
        vals("stack.module:app.* max-frames=2"),
        ["E", "app.m4", "f4", "app.m5", "f5"]
    );
    assert_eq!(
        vals("stack.module:app.m[0-3] category=plumbing\ncategory:plumbing -group"),
        ["E", "app.m4", "f4", "app.m5", "f5"]
    );
    // Fewer contributing frames than min-frames: the stack does not count, the type and
    // value decide.
    assert_eq!(
        vals("stack.module:app.m[0-4] -group\nstack.module:* min-frames=2"),
        ["E"]
    );
}

#[test]
fn exception_matchers_and_negation() {
    let ev = |ty: &str| {
        json!({"platform":"python","exception":{"values":[{"type":ty,"value":"v","mechanism":{"type":"celery"},"stacktrace":{"frames":[
            {"module":"celery.app.trace","function":"trace_task","in_app":true},
            {"module":"tasks","function":"send","in_app":true}]}}]}})
    };
    let vals = |ty, rules| {
        with_rules(&ev(ty), rules).variants[0]
            .component
            .contributing_values()
    };
    let rule = "error.type:Retry error.mechanism:celery stack.module:celery.* -group";
    assert_eq!(vals("Retry", rule), ["Retry", "tasks", "send"]);
    assert_eq!(
        vals("KeyError", rule),
        [
            "KeyError",
            "celery.app.trace",
            "trace_task",
            "tasks",
            "send"
        ]
    );
    assert_eq!(
        vals("KeyError", "!stack.module:tasks -group"),
        ["KeyError", "tasks", "send"]
    );
}

#[test]
fn builtin_rules_and_undoing_them() {
    let ev = json!({"platform":"python","exception":{"values":[{"type":"E","stacktrace":{"frames":[
        {"module":"sentry_sdk.integrations.django","function":"sentry_patched_get_response","in_app":false},
        {"module":"shop.views","function":"checkout","in_app":false}]}}]}});
    let r = compute(
        &ev,
        &FingerprintRules::default(),
        &GroupingConfig::default(),
    );
    let system = r.variants.iter().find(|v| v.name == "system").unwrap();
    assert_eq!(
        system.component.contributing_values(),
        ["E", "shop.views", "checkout"]
    );
    let json = serde_json::to_string(&system.component).unwrap();
    assert!(
        json.contains("ignored by built-in stack trace rule (stack.module:sentry_sdk.* -group)")
    );
    let r = with_rules(&ev, "stack.module:sentry_sdk.* +group");
    let system = r.variants.iter().find(|v| v.name == "system").unwrap();
    assert_eq!(system.component.contributing_values().len(), 5);
    // The legacy config had no such rule.
    let r = compute(&ev, &FingerprintRules::default(), &cfg(CONFIG_2026_11));
    assert_eq!(r.variants[1].component.contributing_values().len(), 5);
    assert!(builtin_stack_rules(&cfg(CONFIG_2026_11)).is_empty());
    assert!(builtin_stack_rules(&GroupingConfig::default()).contains("sentry_sdk"));
}

#[test]
fn sdk_wrapper_frames_do_not_split_system_hashes() {
    // Upgrading sentry-sdk or toggling an integration changes its wrapper frames; the
    // system hash (the one an issue keeps when in-app flags move) stays.
    let mk = |wrapper: Option<&str>| {
        let mut frames = vec![
            json!({"module":"django.core.handlers.base","function":"_get_response","in_app":false}),
        ];
        if let Some(w) = wrapper {
            frames.push(json!({"module":w,"function":"sentry_patched","in_app":false}));
        }
        frames.push(json!({"module":"shop.views","function":"checkout","in_app":false}));
        json!({"platform":"python","exception":{"values":[{"type":"E","stacktrace":{"frames":frames}}]}})
    };
    let h =
        |ev: &Value| compute(ev, &FingerprintRules::default(), &GroupingConfig::default()).hashes;
    assert_eq!(h(&mk(None)), h(&mk(Some("sentry_sdk.integrations.django"))));
    assert_eq!(h(&mk(None)), h(&mk(Some("raven.contrib.django.client"))));
}

#[test]
fn rules_see_native_symbols_trimmed() {
    let ev = json!({"platform":"native","exception":{"values":[{"type":"SIGABRT","stacktrace":{"frames":[
        {"function":"main","in_app":true},
        {"function":"void my::check_invariant(bool)","in_app":true},
        {"function":"abort"}]}}]}});
    let r = with_rules(
        &ev,
        "family:native stack.function:my::check_invariant -group",
    );
    assert_eq!(
        r.variants[0].component.contributing_values(),
        ["SIGABRT", "main"]
    );
}

// ---- config transitions ----

#[test]
fn transition_appends_the_old_configs_hashes() {
    let ev = json!({"platform":"node","exception":{"values":[{"type":"Error","value":"x","stacktrace":{"frames":[
        {"module":"index","function":"Object.<anonymous>","in_app":true}]}}]}});
    let rules = FingerprintRules::default();
    let old = compute(&ev, &rules, &cfg(CONFIG_2026_11)).hashes;
    let new = compute(&ev, &rules, &cfg(CONFIG_2026_12)).hashes;
    assert_ne!(old, new, "the fix changes this event's hash");
    let t = compute(&ev, &rules, &cfg("snag:2026-12+snag:2026-11")).hashes;
    assert_eq!(t[..new.len()], new[..], "primary hashes first");
    assert!(old.iter().all(|h| t.contains(h)), "then the old ones");
    // Nothing changed for this event: no duplicates.
    let plain = json!({"platform":"python","message":"hello"});
    assert_eq!(
        compute(&plain, &rules, &cfg("snag:2026-12+snag:2026-11")).hashes,
        compute(&plain, &rules, &cfg(CONFIG_2026_12)).hashes
    );
}

// ---- titles, culprits, metadata ----

#[test]
fn titles_table() {
    let long = "x".repeat(150);
    let cases: Vec<(Value, &str)> = vec![
        (
            json!({"exception":[{"type":"KeyError","value":"'sku'"}]}),
            "KeyError: 'sku'",
        ),
        (
            json!({"exception":[{"type":"KeyError","value":"   "}]}),
            "KeyError",
        ),
        (json!({"exception":[{"type":"KeyError"}]}), "KeyError"),
        (
            json!({"exception":[{"value":"no type here"}]}),
            "Error: no type here",
        ),
        (
            json!({"exception":[{"type":"E","value":"\n\nsecond\nthird"}]}),
            "E: second",
        ),
        (
            json!({"exception":[{"type":"E","value":long}]}),
            Box::leak(format!("E: {}...", "x".repeat(97)).into_boxed_str()),
        ),
        // synthetic: the crash frame's function, trimmed like Sentry shows it
        (
            json!({"platform":"native","exception":[{"type":"SIGSEGV","mechanism":{"synthetic":true},"stacktrace":{"frames":[
                {"function":"void app::crash(int)","in_app":true},{"function":"<unknown>"}]}}]}),
            "app::crash",
        ),
        (
            json!({"exception":[{"type":"SIGSEGV","mechanism":{"synthetic":true}}]}),
            "<unknown>",
        ),
        // messages: the template when it was filled in, else the text
        (
            json!({"logentry":{"message":"Payment %s failed","params":["5"],"formatted":"Payment 5 failed"}}),
            "Payment %s failed",
        ),
        (
            json!({"logentry":{"message":"Payment %(id)s failed","params":{"id":"5"},"formatted":"Payment 5 failed"}}),
            "Payment %(id)s failed",
        ),
        (
            json!({"logentry":{"message":"Job {} done in {}ms","formatted":"Job 7 done in 30ms"}}),
            "Job {} done in {}ms",
        ),
        (
            json!({"logentry":{"message":"Payment failed","params":[],"formatted":"Payment failed"}}),
            "Payment failed",
        ),
        (
            json!({"logentry":{"message":"100% done","formatted":"100% done"}}),
            "100% done",
        ),
        // a template with no placeholders that differs from its text is not a template
        (
            json!({"logentry":{"message":"Cache warm","formatted":"Cache warmed in 3s"}}),
            "Cache warmed in 3s",
        ),
        (
            json!({"logentry":{"formatted":"Payment 5 failed"}}),
            "Payment 5 failed",
        ),
        (json!({"message":"plain\nsecond line"}), "plain"),
        (json!({"message":"   "}), "<unlabeled event>"),
        (json!({}), "<unlabeled event>"),
    ];
    for (ev, want) in cases {
        let r = compute(
            &ev,
            &FingerprintRules::default(),
            &GroupingConfig::default(),
        );
        assert_eq!(r.title, want, "{ev}");
    }
}

#[test]
fn wrapper_exceptions_title_by_what_they_wrap() {
    let react = json!({"platform":"javascript","exception":{"values":[
        {"type":"TypeError","value":"x is undefined","mechanism":{"type":"generic","source":"cause","exception_id":1,"parent_id":0}},
        {"type":"Error","value":"There was an error while hydrating but React was able to recover by instead client rendering from the nearest Suspense boundary.","mechanism":{"type":"onerror","exception_id":0}}
    ]}});
    let r = compute(
        &react,
        &FingerprintRules::default(),
        &GroupingConfig::default(),
    );
    assert_eq!(r.title, "TypeError: x is undefined");
    let rx = json!({"platform":"java","exception":{"values":[
        {"type":"IllegalStateException","value":"no user","mechanism":{"type":"chained","exception_id":1,"parent_id":0}},
        {"type":"OnErrorNotImplementedException","module":"io.reactivex.rxjava3.exceptions","value":"The exception was not handled","mechanism":{"type":"UncaughtExceptionHandler","exception_id":0}}
    ]}});
    let r = compute(
        &rx,
        &FingerprintRules::default(),
        &GroupingConfig::default(),
    );
    assert_eq!(r.title, "IllegalStateException: no user");
    // The hash still covers the whole chain and fingerprint variables still mean the
    // outermost exception.
    let mut fp = rx.clone();
    fp["fingerprint"] = json!(["{{ type }}"]);
    let r = compute(
        &fp,
        &FingerprintRules::default(),
        &GroupingConfig::default(),
    );
    assert_eq!(
        r.variants[0].fingerprint.as_deref().unwrap(),
        ["OnErrorNotImplementedException"]
    );
}

#[test]
fn culprits_table() {
    let frames = json!([
        {"module":"shop.views","function":"checkout","filename":"shop/views.py","in_app":true},
        {"module":"requests.api","function":"get","filename":"requests/api.py","in_app":false}
    ]);
    let cases: Vec<(Value, &str)> = vec![
        (
            json!({"culprit":"given","transaction":"/t","exception":[{"type":"E"}]}),
            "given",
        ),
        (
            json!({"transaction":"/api/orders/{id}","exception":[{"type":"E"}]}),
            "/api/orders/{id}",
        ),
        (
            json!({"platform":"python","exception":[{"type":"E","stacktrace":{"frames":frames.clone()}}]}),
            "shop.views in checkout",
        ),
        (
            json!({"platform":"node","exception":[{"type":"E","stacktrace":{"frames":frames.clone()}}]}),
            "checkout(shop.views)",
        ),
        (
            json!({"platform":"cocoa","exception":[{"type":"E","stacktrace":{"frames":[{"function":"-[A b]","in_app":true}]}}]}),
            "-[A b]",
        ),
        // no in-app frame: the top frame
        (
            json!({"platform":"python","exception":[{"type":"E","stacktrace":{"frames":[{"module":"a","function":"f"},{"module":"b","function":"g"}]}}]}),
            "b in g",
        ),
        // synthetic exceptions get none
        (
            json!({"platform":"python","exception":[{"type":"E","mechanism":{"synthetic":true},"stacktrace":{"frames":frames}}]}),
            "",
        ),
        // no frames: the request URL
        (
            json!({"platform":"python","message":"m","request":{"url":"https://x.io/a"}}),
            "https://x.io/a",
        ),
        (json!({"message":"m"}), ""),
    ];
    for (ev, want) in cases {
        let r = compute(
            &ev,
            &FingerprintRules::default(),
            &GroupingConfig::default(),
        );
        assert_eq!(r.culprit, want, "{ev}");
    }
}

// ---- fingerprint variables (§7.2) ----

#[test]
fn fingerprint_variables_and_placeholders() {
    let full = json!({"platform":"python","transaction":"/t","level":"warning","logger":"shop",
        "tags":[["region","eu"]],"logentry":{"formatted":"formatted text","message":"template %s"},
        "exception":{"values":[{"type":"KeyError","value":"Order 12","stacktrace":{"frames":[
            {"module":"a","function":"f","filename":"a.py","abs_path":"/s/a.py","package":"/venv/lib/pkg.so","in_app":true}]}}]}});
    let empty = json!({"platform":"python"});
    let cases = [
        ("{{ transaction }}", "/t", "<no-transaction>"),
        ("{{ message }}", "formatted text", "<no-message>"),
        ("{{ type }}", "KeyError", "<no-type>"),
        ("{{ error.type }}", "KeyError", "<no-type>"),
        ("{{ value }}", "Order 12", "<no-value>"),
        ("{{ error.value }}", "Order 12", "<no-value>"),
        ("{{ function }}", "f", "<no-function>"),
        ("{{ stack.function }}", "f", "<no-function>"),
        ("{{ path }}", "/s/a.py", "<no-abs-path>"),
        ("{{ stack.abs_path }}", "/s/a.py", "<no-abs-path>"),
        ("{{ stack.filename }}", "a.py", "<no-filename>"),
        ("{{ module }}", "a", "<no-module>"),
        ("{{ stack.module }}", "a", "<no-module>"),
        ("{{ package }}", "pkg.so", "<no-package>"),
        ("{{ stack.package }}", "pkg.so", "<no-package>"),
        ("{{ level }}", "warning", "<no-level>"),
        ("{{ logger }}", "shop", "<no-logger>"),
        ("{{ tags.region }}", "eu", "<no-value-for-tag-region>"),
        (
            "{{ nope }}",
            "<unrecognized-variable-nope>",
            "<unrecognized-variable-nope>",
        ),
        ("{{transaction}}", "/t", "<no-transaction>"),
        (
            "x-{{ transaction }}",
            "x-{{ transaction }}",
            "x-{{ transaction }}",
        ),
    ];
    let resolved = |ev: &Value, entry: &str| {
        let mut ev = ev.clone();
        ev["fingerprint"] = json!([entry]);
        let r = compute(
            &ev,
            &FingerprintRules::default(),
            &GroupingConfig::default(),
        );
        r.variants[0].fingerprint.clone().unwrap()[0].clone()
    };
    for (entry, with, without) in cases {
        assert_eq!(resolved(&full, entry), with, "{entry}");
        assert_eq!(
            resolved(&empty, entry),
            without,
            "{entry} on an empty event"
        );
    }
    // the exception value stands in for {{ message }} when there is no message
    let exc = json!({"exception":[{"type":"E","value":"v"}],"fingerprint":["{{ message }}"]});
    let r = compute(
        &exc,
        &FingerprintRules::default(),
        &GroupingConfig::default(),
    );
    assert_eq!(r.variants[0].fingerprint.as_deref().unwrap(), ["v"]);
    // 2026-11 keeps unknown variables literal? No: it already flagged them.
    assert_eq!(
        compute(
            &json!({"fingerprint":["{{ nope }}"]}),
            &FingerprintRules::default(),
            &cfg(CONFIG_2026_11)
        )
        .variants[0]
            .fingerprint
            .as_deref()
            .unwrap(),
        ["<unrecognized-variable-nope>"]
    );
}

// ---- server-side fingerprint rules (§7.3) ----

#[test]
fn fingerprint_rule_syntax() {
    let ev = json!({"platform":"python","transaction":"/checkout","level":"error","logger":"payments.gateway",
        "tags":{"server name":"web 1","region":"eu"},
        "exception":{"values":[{"type":"ConnectionError","value":"Timed out talking to gateway [primary]","stacktrace":{"frames":[
            {"module":"payments.client","function":"post","abs_path":"/srv/app/payments/client.py","in_app":true}]}}]}});
    let fp = |rules: &str| {
        let r = compute(
            &ev,
            &FingerprintRules::parse(rules).unwrap(),
            &GroupingConfig::default(),
        );
        (r.variants[0].fingerprint.clone(), r.title)
    };
    // quoting, globs with escapes, negation, values without commas, title attribute
    let (f, title) = fp(
        r#"error.value:"*gateway \[primary\]" !logger:celery.* -> gateway-timeout {{ transaction }} title="Gateway timeout on {{ transaction }}""#,
    );
    assert_eq!(f.unwrap(), ["gateway-timeout", "/checkout"]);
    assert_eq!(title, "Gateway timeout on /checkout");
    let (f, _) = fp(r#"tags.region:eu type:Connection* -> "eu connection", errors"#);
    assert_eq!(f.unwrap(), ["eu connection", "errors"]);
    let (f, _) = fp(r#"message:"*TIMED OUT*" level:ERROR -> timeouts"#);
    assert_eq!(f.unwrap(), ["timeouts"]);
    let (f, _) = fp("stack.abs_path:**/payments/*.py stack.function:post app:yes -> payments");
    assert_eq!(f.unwrap(), ["payments"]);
    let (f, _) = fp("stack.module:payments.* family:other -> {{ default }}, {{ logger }}");
    assert_eq!(f.unwrap(), ["{{ default }}", "payments.gateway"]);
    // case: type is case-sensitive, value is not
    assert!(fp("type:connectionerror -> x").0.is_none());
}

// ---- every payload shape groups alike (normalisation, then grouping) ----

fn normalized(raw: Value) -> Value {
    let received = chrono::DateTime::parse_from_rfc3339("2026-12-01T10:00:00Z")
        .unwrap()
        .with_timezone(&chrono::Utc);
    let mut ctx = crate::event::NormalizeContext::new(received);
    ctx.client_ip = Some("203.0.113.9".parse().unwrap());
    crate::event::normalize(raw, &ctx).unwrap().data
}

fn grouped(raw: Value) -> GroupingResult {
    let rules =
        FingerprintRules::parse(r#"tags.tier:gold -> "gold-{{ tags.tier }}", {{ tags.tier }}"#)
            .unwrap();
    compute(&normalized(raw), &rules, &GroupingConfig::default())
}

#[test]
fn payload_shapes_group_alike() {
    let frames = json!([
        {"module":"shop.views","function":"checkout","filename":"shop/views.py","lineno":"40","in_app":"true","context_line":"total = price(cart)"},
        {"module":"shop.pricing","function":"price","filename":"shop/pricing.py","lineno":12,"in_app":1,"context_line":"return item['sku']"}
    ]);
    let exc = json!({"type":"KeyError","value":"'sku'","stacktrace":{"frames":frames}});
    let modern = json!({"platform":"python","level":"error","timestamp":"2026-12-01T09:59:58.1234567+00:00",
        "exception":{"values":[exc.clone()]}});
    let shapes = [
        json!({"platform":"python","level":40,"timestamp":1796205598.123,"exception":[exc.clone()]}),
        json!({"platform":"python","level":"ERROR","timestamp":"2026-12-01T09:59:58","exception":exc.clone()}),
        json!({"platform":"python","sentry.interfaces.Exception":{"values":[exc.clone()]}}),
        // a bare top-level stack moves into the only exception
        json!({"platform":"python","exception":{"values":[{"type":"KeyError","value":"'sku'"}]},
               "sentry.interfaces.Stacktrace":{"frames":frames.clone()}}),
        // the modern key wins over the alias
        json!({"platform":"python","exception":{"values":[exc.clone()]},
               "sentry.interfaces.Exception":{"values":[{"type":"Other"}]}}),
        // untyped value split like Relay
        json!({"platform":"python","exception":{"values":[{"value":"KeyError: 'sku'","stacktrace":{"frames":frames.clone()}}]}}),
    ];
    let want = grouped(modern.clone());
    for raw in shapes {
        let got = grouped(raw.clone());
        assert_eq!(got.hashes, want.hashes, "{raw}");
        assert_eq!(got.title, "KeyError: 'sku'", "{raw}");
    }
    let data = normalized(modern);
    assert_eq!(data["environment"], "production");
    assert_eq!(data["level"], "error");

    // Messages: raven's interface plus raw text, the logging integration, plain strings.
    let template = [
        json!({"sentry.interfaces.Message":{"message":"charge failed for %s","params":["order-17"]},"message":"charge failed for order-17"}),
        json!({"logentry":{"message":"charge failed for %s","params":["order-99"],"formatted":"charge failed for order-99"}}),
        json!({"message":{"message":"charge failed for %s","params":["order-5"]}}),
    ];
    let first = grouped(template[0].clone());
    for raw in &template {
        let got = grouped(raw.clone());
        assert_eq!(got.hashes, first.hashes, "{raw}");
        assert_eq!(got.title, "charge failed for %s", "{raw}");
    }
    let plain = [
        json!({"message":"disk at 91% on 10.0.0.7"}),
        json!({"logentry":"disk at 95% on 10.0.0.8"}),
        json!({"logentry":{"formatted":"disk at 97% on 10.0.0.9"}}),
    ];
    let first = grouped(plain[0].clone());
    for raw in &plain {
        assert_eq!(grouped(raw.clone()).hashes, first.hashes, "{raw}");
    }

    // Tags as a map or as pairs feed rules and variables the same way.
    let a = grouped(json!({"message":"x","tags":{"tier":"gold"}}));
    let b = grouped(json!({"message":"x","tags":[["tier","gold"]]}));
    assert_eq!(a.hashes, b.hashes);
    assert_eq!(
        a.variants[0].fingerprint.as_deref().unwrap(),
        ["gold-{{ tags.tier }}", "gold"]
    );

    // Non-string values are text by the time they are grouped.
    let n = grouped(json!({"exception":[{"type":"E","value":404}]}));
    assert_eq!(n.title, "E: 404");
    assert_eq!(
        n.hashes,
        grouped(json!({"exception":[{"type":"E","value":"500"}]})).hashes
    );
    let obj = grouped(json!({"exception":[{"type":"E","value":{"code":1}}]}));
    assert_eq!(obj.title, "E: {\"code\":1}");

    // {{auto}} takes the client address; an explicit one is kept.
    let d = normalized(json!({"user":{"ip_address":"{{auto}}"}}));
    assert_eq!(d["user"]["ip_address"], "203.0.113.9");
    let d = normalized(json!({"user":{"ip_address":"198.51.100.1"}}));
    assert_eq!(d["user"]["ip_address"], "198.51.100.1");
}
