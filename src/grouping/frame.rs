//! What a single stack frame contributes: module, filename, function and context line, each
//! cleaned per platform so that values which change between builds or runs (line numbers,
//! paths, generated class names, lambda ids, symbol hashes) never reach the hash.

use std::borrow::Cow;
use std::sync::LazyLock;

use regex::Regex;

use super::component::Component;
use super::config::GroupingConfig;
use super::event::Frame;

pub(crate) fn is_js(platform: &str) -> bool {
    matches!(platform, "javascript" | "node")
}

pub(crate) fn is_native(platform: &str) -> bool {
    matches!(
        platform,
        "native" | "c" | "cpp" | "objc" | "cocoa" | "swift" | "rust"
    )
}

/// Sentry's behaviour family, used by fingerprint rules' `family:` matcher.
pub(crate) fn family(platform: &str) -> &'static str {
    if is_js(platform) {
        "javascript"
    } else if is_native(platform) {
        "native"
    } else {
        "other"
    }
}

/// Platforms whose SDKs send real source lines; elsewhere the context line is absent or
/// decompiled noise.
fn uses_context_line(platform: &str) -> bool {
    matches!(platform, "javascript" | "node" | "python" | "php" | "ruby")
}

pub(crate) fn has_url_origin(path: Option<&str>, allow_file: bool) -> bool {
    let Some(p) = path else { return false };
    p.starts_with("http:")
        || p.starts_with("https:")
        || p.starts_with("applewebdata:")
        || p.starts_with("blob:")
        || (allow_file && p.starts_with("file:"))
}

/// Builds the `frame` component. Built-in "don't group" rules that depend on neighbouring
/// frames are applied by the stacktrace strategy, not here.
pub(crate) fn frame_component(f: &Frame, cfg: &GroupingConfig) -> Component {
    let platform = f.platform;
    let js = is_js(platform);
    let mut frame = Component::new("frame");

    // module
    let derived_module;
    let module = match f.module {
        Some(m) => Some(m),
        // Sentry's JS processor derives a module from the bundle URL; without it a CDN frame
        // would contribute only its (often minified) function name.
        None if js && url_like_for_module(f.abs_path) => {
            derived_module = generate_js_module(f.abs_path.unwrap_or(""));
            Some(derived_module.as_str())
        }
        None => None,
    };
    let mut module_contributes = false;
    if let Some(m) = module {
        let mut cleaned = clean_java_module(m);
        if cfg.java_codegen_v2 && platform == "java" {
            cleaned = Cow::Owned(clean_java_module_v2(&cleaned).into_owned());
        }
        if cfg.csharp_generated_names && platform == "csharp" {
            cleaned = Cow::Owned(clean_csharp_generated(&cleaned).into_owned());
        }
        let mut c = Component::leaf("module", cleaned.into_owned());
        // JDK 8-20 name lambda classes `Foo$$Lambda$12/0x…`, JDK 21+ `Foo$$Lambda/0x…`; the
        // numbers change on every run.
        let lambda_marker = if cfg.java_codegen_v2 {
            "$$Lambda"
        } else {
            "$$Lambda$"
        };
        if js && m.contains('/') && f.abs_path.is_some_and(|p| p.ends_with(m)) {
            c.ignore("ignored bad javascript module");
        } else if platform == "java" && m.contains(lambda_marker) {
            c.ignore("ignored java lambda");
        }
        module_contributes = c.contributes;
        frame.push(c);
    }

    // filename
    if let Some(name) = f.filename.or(f.abs_path) {
        let mut c = Component::leaf("filename", clean_filename(name, platform));
        if module_contributes {
            c.ignore("module takes precedence");
        } else if has_url_origin(f.abs_path, false) {
            c.ignore("ignored because frame points to a URL");
        } else if name == "<anonymous>" || name == "[native code]" {
            c.ignore("ignored because filename is anonymous");
        }
        frame.push(c);
    }

    // function
    let func = if platform == "csharp" {
        f.raw_function.or(f.function)
    } else {
        f.function.or(f.raw_function)
    };
    let mut function_index = None;
    if let Some(func) = func {
        let (value, mut ignore) = clean_function(func, platform, cfg);
        if cfg.js_anonymous_after_trim && js {
            // Sentry checks the name as it is hashed, cut to its last segment, so that
            // `Object.<anonymous>` (a Node module's top level) counts as anonymous too.
            ignore = ignore
                .or_else(|| js_unknown_function(f).then_some("ignored unknown function name"));
        }
        let mut c = Component::leaf("function", value.into_owned());
        if let Some(hint) = ignore {
            c.ignore(hint);
        }
        function_index = Some(frame.values.len());
        frame.push(c);
    }

    // context line
    if uses_context_line(platform)
        && let Some(line) = f.context_line
        && let Some(c) = context_line_component(f, line, func.is_none(), cfg)
    {
        if js
            && c.contributes
            && f.sourcemap
            && let Some(i) = function_index
            && let super::component::ComponentValue::Component(func_c) = &mut frame.values[i]
        {
            // With source maps the original line is stable while the function name may be
            // a minifier artifact.
            func_c.ignore("ignored because sourcemap used and context line available");
        }
        frame.push(c);
    }

    let js_function = if cfg.js_anonymous_after_trim {
        js_trimmed_function(f)
    } else {
        f.function
    };
    if js
        && (js_function == Some("eval")
            || matches!(
                f.abs_path,
                Some("[native code]" | "native code" | "eval code" | "<anonymous>")
            ))
    {
        frame.ignore("ignored low quality javascript frame");
    }
    frame.contributes_if_any_child("ignored because no frame component contributes");
    frame
}

fn context_line_component(
    f: &Frame,
    line: &str,
    no_function: bool,
    cfg: &GroupingConfig,
) -> Option<Component> {
    let mut collapsed = collapse_whitespace(line);
    if cfg.skip_blank_context_line && collapsed.is_empty() {
        // A blank line (or source the SDK could not read) says nothing about the error.
        return None;
    }
    if f.platform == "python" && collapsed.contains("spawn_main(") {
        // multiprocessing passes fresh fd numbers on every start
        collapsed = SPAWN_MAIN_RE.replace_all(&collapsed, "=<int>").into_owned();
    }
    let mut c = Component::leaf("context-line", collapsed);
    if line.chars().count() > cfg.max_context_line_len {
        c.ignore("ignored because line exceeds maximum length");
    } else if is_js(f.platform) && no_function && has_url_origin(f.abs_path, true) {
        c.ignore("ignored because of insufficient data");
    }
    Some(c)
}

fn collapse_whitespace(line: &str) -> String {
    let mut out = String::with_capacity(line.len());
    for word in line.split_whitespace() {
        if !out.is_empty() {
            out.push(' ');
        }
        out.push_str(word);
    }
    out
}

static SPAWN_MAIN_RE: LazyLock<Regex> = LazyLock::new(|| Regex::new(r"=\d+").unwrap());

fn url_like_for_module(abs_path: Option<&str>) -> bool {
    abs_path.is_some_and(|p| {
        p.starts_with("http:")
            || p.starts_with("https:")
            || p.starts_with("webpack:")
            || p.starts_with("app:")
    })
}

fn clean_filename(name: &str, platform: &str) -> String {
    let mut name = name;
    if is_js(platform)
        && let Some(i) = name.find(['?', '#'])
    {
        name = &name[..i];
    }
    let base = name.rsplit(['/', '\\']).next().unwrap_or(name);
    let lower = base.to_lowercase();
    if platform == "java" && lower.contains("$$_javassist") {
        return JAVASSIST_RE
            .replace_all(&lower, "$$$$_javassist<auto>")
            .into_owned();
    }
    lower
}

/// The JS function name Sentry checks for noise: `raw_function` or `function`, cut to its
/// last `.` segment.
fn js_trimmed_function<'a>(f: &Frame<'a>) -> Option<&'a str> {
    f.raw_function
        .or(f.function)
        .map(|func| func.rsplit('.').next().unwrap_or(func))
}

fn js_unknown_function(f: &Frame) -> bool {
    match js_trimmed_function(f) {
        None => true,
        Some(func) => {
            matches!(
                func,
                "?" | "<anonymous function>" | "<anonymous>" | "Anonymous function"
            ) || func.ends_with("/<")
                || func.trim().is_empty()
        }
    }
}

/// Returns the cleaned function name and, when it must not contribute, why.
fn clean_function<'a>(
    func: &'a str,
    platform: &str,
    cfg: &GroupingConfig,
) -> (Cow<'a, str>, Option<&'static str>) {
    if is_native(platform) {
        if matches!(func, "<redacted>" | "<unknown>") {
            return (Cow::Borrowed(func), Some("ignored unknown function name"));
        }
        return (
            if cfg.native_trim_v2 {
                trim_native_function_v2(func)
            } else {
                trim_native_function(func)
            },
            None,
        );
    }
    match platform {
        "javascript" | "node" => {
            if matches!(
                func,
                "?" | "<anonymous function>" | "<anonymous>" | "Anonymous function"
            ) || func.ends_with("/<")
                || func.trim().is_empty()
            {
                return (Cow::Borrowed(func), Some("ignored unknown function name"));
            }
            // `Object.foo`, `Foo.foo` and `foo` are the same function called differently.
            let last = func.rsplit('.').next().unwrap_or(func);
            (Cow::Borrowed(last), None)
        }
        "ruby" => {
            if cfg.ruby_block_prefix && func.starts_with("block ") || RUBY_BLOCK_RE.is_match(func) {
                return (Cow::Borrowed("block"), None);
            }
            (RUBY_ERB_RE.replace(func, ""), None)
        }
        "php" => {
            if func.starts_with("[Anonymous") || func.starts_with("class@anonymous\0") {
                return (Cow::Borrowed(func), Some("ignored anonymous function"));
            }
            if func.starts_with("class@anonymous")
                && let Some((_, m)) = func.rsplit_once("::")
            {
                return (Cow::Borrowed(m), None);
            }
            if cfg.php_closure_lines && func.starts_with("{closure:") {
                // PHP 8.4 names closures `{closure:Class::method():12}`: the line moves
                // with every edit above it.
                return (PHP_CLOSURE_LINE_RE.replace(func, "}"), None);
            }
            (Cow::Borrowed(func), None)
        }
        "java" => {
            if func.starts_with("lambda$") {
                return (Cow::Borrowed(func), Some("ignored java lambda"));
            }
            (Cow::Borrowed(func), None)
        }
        "csharp" if cfg.csharp_generated_names => (clean_csharp_generated(func), None),
        _ => (Cow::Borrowed(func), None),
    }
}

static PHP_CLOSURE_LINE_RE: LazyLock<Regex> = LazyLock::new(|| Regex::new(r":\d+\}$").unwrap());

/// More JVM code-generation markers (Sentry's later additions, plus ByteBuddy, Mockito and
/// JDK proxies): each gets a fresh number or hash per run or per build.
static JAVA_MODULE_V2_RES: LazyLock<Vec<(Regex, &'static str)>> = LazyLock::new(|| {
    [
        // Spring 6 `$$SpringCGLIB$$0`, and every `$$…CGLIB$$<hex>` form
        (r"(\$\$\w+?CGLIB\$\$)[a-fA-F0-9]+(?:_\d+)?", "${1}<auto>"),
        // Guice, single or double `$`
        (
            r"(\$\$?EnhancerBy\w+?\$?\$)[a-fA-F0-9]+(?:_\d+)?",
            "${1}<auto>",
        ),
        (
            r"(\$\$?FastClassBy\w+?\$?\$)[a-fA-F0-9]+(?:_\d+)?",
            "${1}<auto>",
        ),
        (r"(\$\$?HibernateProxy\$?\$)\w+?(?:_\d+)?$", "${1}<auto>"),
        (r"(\$\$?ByteBuddy\$?\$)\w+", "${1}<auto>"),
        (r"(\$MockitoMock\$)\w+", "${1}<auto>"),
        // `com.sun.proxy.$Proxy123`, JDK 16+ `jdk.proxy2.$Proxy45`
        (r"^(jdk\.proxy)\d+\.", "${1}<auto>."),
        (r"(\$Proxy)\d+", "${1}<auto>"),
    ]
    .into_iter()
    .map(|(re, rep)| (Regex::new(re).unwrap(), rep))
    .collect()
});

fn replace_all_of<'a>(s: &'a str, res: &[(Regex, &'static str)]) -> Cow<'a, str> {
    let mut out = Cow::Borrowed(s);
    for (re, rep) in res {
        if let Cow::Owned(s) = re.replace_all(&out, *rep) {
            out = Cow::Owned(s);
        }
    }
    out
}

pub(crate) fn clean_java_module_v2(m: &str) -> Cow<'_, str> {
    if !m.contains('$') && !m.starts_with("jdk.proxy") {
        return Cow::Borrowed(m);
    }
    replace_all_of(m, &JAVA_MODULE_V2_RES)
}

/// C# compiler-generated names carry ordinals that shift when code is added elsewhere in
/// the class: async state machines `<ProcessAsync>d__12`, closures `<>c__DisplayClass5_0`,
/// lambdas `<Main>b__0_0`, local functions `<Run>g__Local|3_0`.
static CSHARP_GENERATED_RES: LazyLock<Vec<(Regex, &'static str)>> = LazyLock::new(|| {
    [
        (r"(>d__)\d+", "${1}<auto>"),
        (r"(<>c__DisplayClass)\d+(?:_\d+)?", "${1}<auto>"),
        (r"(>b__)\d+(?:_\d+)?", "${1}<auto>"),
        (r"(>g__\w+\|)\d+(?:_\d+)?", "${1}<auto>"),
    ]
    .into_iter()
    .map(|(re, rep)| (Regex::new(re).unwrap(), rep))
    .collect()
});

pub(crate) fn clean_csharp_generated(s: &str) -> Cow<'_, str> {
    if !s.contains("__") {
        return Cow::Borrowed(s);
    }
    replace_all_of(s, &CSHARP_GENERATED_RES)
}

static RUBY_BLOCK_RE: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"^block\s+(?:\(\d+\s+levels\)\s+)?in\s+").unwrap());
static RUBY_ERB_RE: LazyLock<Regex> = LazyLock::new(|| Regex::new(r"__\d{4,}_\d{4,}$").unwrap());
static JAVASSIST_RE: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"\$\$_javassist(?:_seam)?(?:_\d+)?").unwrap());

/// Generated class-name parts (reflection accessors, CGLIB/Guice/javassist proxies,
/// Hibernate proxies, Clojure fn ids) get a new number per JVM run.
static JAVA_MODULE_RES: LazyLock<Vec<(Regex, &'static str)>> = LazyLock::new(|| {
    [
        (
            r"((?:sun|jdk\.internal)\.reflect\.Generated(?:Serialization)?(?:Method|Constructor)?Accessor)\d+",
            "$1",
        ),
        (
            r"(\$\$(?:EnhancerBy|FastClassBy)(?:Spring)?(?:CGLIB|Guice)\$\$)[a-fA-F0-9]+(?:_\d+)?",
            "$1<auto>",
        ),
        (r"(\$\$_javassist)(?:_seam)?(?:_\d+)?", "$1<auto>"),
        (r"(\$HibernateProxy\$)\w+", "$1<auto>"),
        (r"(\$fn__)\d+", "$1<auto>"),
    ]
    .into_iter()
    .map(|(re, rep)| (Regex::new(re).unwrap(), rep))
    .collect()
});

pub(crate) fn clean_java_module(m: &str) -> Cow<'_, str> {
    if !m.contains('$') && !m.contains(".reflect.Generated") {
        return Cow::Borrowed(m);
    }
    let mut out = Cow::Borrowed(m);
    for (re, rep) in JAVA_MODULE_RES.iter() {
        if let Cow::Owned(s) = re.replace_all(&out, *rep) {
            out = Cow::Owned(s);
        }
    }
    out
}

static JS_VERSION_RE: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"(?i)^[a-f0-9]{32}|[a-f0-9]{40}$").unwrap());
static JS_CLEAN_MODULE_RE: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r"(?i)^(?:/|(?:(?:java)?scripts?|js|build|static|node_modules|bower_components|[_.~].*?|v?(?:\d+\.)*\d+|[a-f0-9]{7,8}|[a-f0-9]{32}|[a-f0-9]{40})/)+|(?:[-.][a-f0-9]{7,}$)",
    )
    .unwrap()
});

/// Sentry's `generate_module`: a stable module name from a bundle URL, without origin,
/// query, extension, `.min`, well-known asset folders, version and hash segments.
pub(crate) fn generate_js_module(url: &str) -> String {
    // path part of the URL
    let after_scheme = url.split_once("://").map_or(url, |(_, rest)| rest);
    let path_start = after_scheme.find('/').unwrap_or(after_scheme.len());
    let mut path = &after_scheme[path_start..];
    if let Some(i) = path.find(['?', '#']) {
        path = &path[..i];
    }
    // extension of the last segment
    let last_slash = path.rfind('/').map_or(0, |i| i + 1);
    if let Some(dot) = path[last_slash..].rfind('.')
        && dot > 0
    {
        path = &path[..last_slash + dot];
    }
    let path = path.strip_suffix(".min").unwrap_or(path);
    let tokens: Vec<&str> = path.split('/').collect();
    for (i, t) in tokens.iter().enumerate() {
        if JS_VERSION_RE.is_match(t) {
            return tokens[i + 1..].join("/");
        }
    }
    let cleaned = JS_CLEAN_MODULE_RE.replace_all(path, "");
    if cleaned.is_empty() {
        "<unknown module>".to_owned()
    } else {
        cleaned.into_owned()
    }
}

/// Sentry's `trim_function_name` for native symbols: drop argument lists, return types and
/// cv/ref qualifiers, collapse generic arguments to `<T>`, name lambdas `lambda`, and strip
/// Rust hash and MSVC `@N` suffixes, so that one function has one name across compilers,
/// builds and instantiations.
pub(crate) fn trim_native_function(func: &str) -> Cow<'_, str> {
    trim_native(func, false)
}

/// [`trim_native_function`] as `snag:2026-12` hashes it, closer to Sentry's: a Rust
/// `<Type as Trait>::method` keeps its `<Type as Trait>` head (otherwise every `Drop`
/// impl would be one function), Swift's `-> Ret` return types and closure names are
/// understood, and fastcall `@name@8` loses its leading `@` too.
pub(crate) fn trim_native_function_v2(func: &str) -> Cow<'_, str> {
    trim_native(func, true)
}

/// Stands in for a space inside a kept Rust `<T as Trait>` head during tokenising.
const HEAD_SPACE: char = '\u{3}';

fn trim_native(func: &str, v2: bool) -> Cow<'_, str> {
    if func.starts_with("-[") || func.starts_with("+[") {
        return Cow::Borrowed(func);
    }
    let mut s = func;
    if let Some(i) = s.rfind("::h")
        && s.len() - i == 19
        && s[i + 3..].bytes().all(|b| b.is_ascii_hexdigit())
    {
        s = &s[..i];
    }
    if let Some(i) = s.rfind('@')
        && i > 0
        && i + 1 < s.len()
        && s[i + 1..].bytes().all(|b| b.is_ascii_digit())
    {
        s = &s[..i];
        if v2 {
            s = s.strip_prefix('@').unwrap_or(s);
        }
    }
    if s.bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b':' || b == b'$')
    {
        return if s.len() == func.len() {
            Cow::Borrowed(func)
        } else {
            Cow::Owned(s.to_owned())
        };
    }

    const ANON_NS: &str = "(anonymous namespace)";
    const ANON_MARK: &str = "\u{1}anon\u{1}";
    const MSVC_ANON_NS: &str = "`anonymous namespace'";
    const MSVC_ANON_MARK: &str = "\u{1}msvc-anon\u{1}";
    let replaced = s
        .replace(ANON_NS, ANON_MARK)
        .replace(MSVC_ANON_NS, MSVC_ANON_MARK);
    let replaced = LAMBDA_RE.replace_all(&replaced, "lambda");

    let chars: Vec<char> = replaced.chars().collect();
    let out = strip_brackets(&chars, v2);
    let mut tokens: Vec<&str> = out.split_whitespace().collect();
    while let Some(last) = tokens.last() {
        if matches!(
            *last,
            "const" | "volatile" | "&" | "&&" | "*" | "noexcept" | "override" | "final"
        ) && tokens.len() > 1
        {
            tokens.pop();
        } else {
            break;
        }
    }
    let swift;
    let name = match tokens.iter().position(|t| *t == "->") {
        Some(arrow) if v2 => {
            swift = swift_name(&tokens, arrow);
            swift.as_str()
        }
        _ => tokens.last().copied().unwrap_or(""),
    };
    let name = name
        .trim_start_matches(['*', '&'])
        .replace(ANON_MARK, ANON_NS)
        .replace(MSVC_ANON_MARK, MSVC_ANON_NS)
        .replace(HEAD_SPACE, " ");
    if name.is_empty() {
        Cow::Borrowed(func)
    } else {
        Cow::Owned(name)
    }
}

/// Swift symbols put the return type after `->`: the name is the token before it, and a
/// closure (`closure #1 () -> () in App.load()`) is named after the function it is in,
/// without its ordinal.
fn swift_name(tokens: &[&str], arrow: usize) -> String {
    let words = |ts: &[&str]| -> Vec<String> {
        ts.iter()
            .filter(|t| !t.starts_with('#') && !matches!(**t, "throws" | "rethrows" | "async"))
            .map(|t| t.to_string())
            .collect()
    };
    let before_arrow = |ts: &[&str]| -> Option<String> {
        match ts.iter().position(|t| *t == "->") {
            Some(a) => words(&ts[..a]).pop(),
            None => ts.last().map(|t| t.to_string()),
        }
    };
    if let Some(p) = tokens.iter().rposition(|t| *t == "in")
        && p > arrow
    {
        let outer = before_arrow(&tokens[p + 1..]).unwrap_or_default();
        let mut head = words(&tokens[..arrow]).join(" ");
        if head.is_empty() {
            head = "closure".to_owned();
        }
        return format!("{head} in {outer}");
    }
    before_arrow(tokens).unwrap_or_default()
}

/// Drops argument lists and turns generic arguments into `<T>`; with `keep_head`, a `<…>`
/// at the very start (Rust's `<Type as Trait>`) is kept, its own generics reduced.
fn strip_brackets(chars: &[char], keep_head: bool) -> String {
    let mut out = String::with_capacity(chars.len());
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if out.ends_with("operator") && !c.is_alphanumeric() && c != '_' && c != ' ' {
            if c == '(' && chars.get(i + 1) == Some(&')') {
                out.push_str("()");
                i += 2;
                continue;
            }
            while i < chars.len() && "<>=!+-*/%^&|~[],".contains(chars[i]) {
                out.push(chars[i]);
                i += 1;
            }
            continue;
        }
        match c {
            '<' | '(' => {
                let close = if c == '<' { '>' } else { ')' };
                let mut depth = 0usize;
                let mut j = i;
                while j < chars.len() {
                    if chars[j] == c {
                        depth += 1;
                    } else if chars[j] == close {
                        depth -= 1;
                        if depth == 0 {
                            break;
                        }
                    }
                    j += 1;
                }
                if c == '<' && keep_head && i == 0 {
                    let inner = strip_brackets(&chars[1..j.min(chars.len())], true);
                    out.push('<');
                    out.extend(inner.chars().map(|c| if c == ' ' { HEAD_SPACE } else { c }));
                    out.push('>');
                } else if c == '<' {
                    out.push_str("<T>");
                }
                i = j + 1;
            }
            _ => {
                out.push(c);
                i += 1;
            }
        }
    }
    out
}

static LAMBDA_RE: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"\{lambda\([^)]*\)#\d+\}|<lambda_[0-9a-fA-F]+>|'lambda\d*'|<lambda\d*>|\$_\d+")
        .unwrap()
});

/// Built-in "never group" rules (the `-group` part of Sentry's enhancement base). Returns
/// why the frame is excluded, and whether the frames above it (towards the crash) go too.
pub(crate) fn builtin_nongroup(f: &Frame) -> Option<(&'static str, bool)> {
    let platform = f.platform;
    if is_js(platform) {
        let path = f.abs_path.or(f.filename).unwrap_or("");
        if ["@babel/", "core-js/", "tslib/", "regenerator-runtime/"]
            .iter()
            .any(|p| path.contains(&format!("node_modules/{p}")))
        {
            return Some((
                "ignored because of built-in rule: transpiler runtime",
                false,
            ));
        }
        if matches!(
            f.function,
            Some(
                "processTicksAndRejections"
                    | "runMicrotasks"
                    | "_tickCallback"
                    | "process._tickCallback"
                    | "processImmediate"
                    | "runNextTicks"
            )
        ) {
            return Some(("ignored because of built-in rule: node internals", false));
        }
    } else if platform == "java" {
        if f.module.is_some_and(|m| m.starts_with("io.sentry.")) {
            return Some(("ignored because of built-in rule: sentry sdk", false));
        }
    } else if is_native(platform)
        && let Some(func) = f.function.or(f.raw_function)
    {
        let func = trim_native_function(func);
        let func = func.as_ref();
        if matches!(
            func,
            "abort"
                | "raise"
                | "__cxa_throw"
                | "_CxxThrowException"
                | "__assert_rtn"
                | "__assert_fail"
                | "_assert"
                | "_wassert"
                | "_sigtramp"
                | "__kill"
                | "pthread_kill"
                | "__pthread_kill"
                | "__GI_raise"
                | "__GI_abort"
                | "objc_exception_throw"
                | "rust_panic"
                | "__rust_start_panic"
                | "rust_begin_unwind"
        ) || func.starts_with("std::panicking::")
            || func.starts_with("core::panicking::")
            || func.starts_with("panic_abort::")
        {
            return Some(("ignored because of built-in rule: crash handler", true));
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(platform: &'static str) -> Frame<'static> {
        Frame {
            function: None,
            raw_function: None,
            module: None,
            filename: None,
            abs_path: None,
            package: None,
            context_line: None,
            lineno: None,
            colno: None,
            in_app: true,
            platform,
            sourcemap: false,
            category: None,
            app_hint: None,
        }
    }

    fn values(f: &Frame) -> Vec<String> {
        frame_component(f, &GroupingConfig::default()).contributing_values()
    }

    #[test]
    fn python_module_function_context() {
        let mut f = frame("python");
        f.module = Some("shop.views");
        f.filename = Some("shop/views.py");
        f.function = Some("checkout");
        f.context_line = Some("    total  =\tprice(cart)  ");
        assert_eq!(
            values(&f),
            ["shop.views", "checkout", "total = price(cart)"]
        );
        f.module = None;
        f.filename = Some("/srv/App/Shop/Views.PY");
        assert_eq!(values(&f), ["views.py", "checkout", "total = price(cart)"]);
        f.context_line = Some(Box::leak("x".repeat(121).into_boxed_str()));
        assert_eq!(values(&f), ["views.py", "checkout"]);
    }

    #[test]
    fn python_multiprocessing_context_line() {
        let mut f = frame("python");
        f.function = Some("<module>");
        f.context_line = Some("spawn_main(tracker_fd=5, pipe_handle=11)");
        assert_eq!(
            values(&f),
            [
                "<module>",
                "spawn_main(tracker_fd=<int>, pipe_handle=<int>)"
            ]
        );
    }

    #[test]
    fn context_line_only_on_some_platforms() {
        let mut f = frame("java");
        f.module = Some("com.x.Foo");
        f.function = Some("bar");
        f.context_line = Some("foo();");
        assert_eq!(values(&f), ["com.x.Foo", "bar"]);
        f.platform = "ruby";
        assert_eq!(values(&f), ["com.x.Foo", "bar", "foo();"]);
    }

    #[test]
    fn javascript_rules() {
        let mut f = frame("javascript");
        f.function = Some("Object.handleClick");
        f.filename = Some("/static/app.js?v=3");
        assert_eq!(values(&f), ["app.js", "handleClick"]);

        f.abs_path = Some("https://cdn.x.io/js/v1.0/foo/bar/baz.min.js");
        f.filename = Some("/js/v1.0/foo/bar/baz.min.js");
        assert_eq!(values(&f), ["foo/bar/baz", "handleClick"]);

        let mut anon = frame("javascript");
        anon.function = Some("<anonymous>");
        anon.filename = Some("app.js");
        assert_eq!(values(&anon), ["app.js"]);

        let mut ev = frame("javascript");
        ev.function = Some("eval");
        ev.filename = Some("app.js");
        assert!(values(&ev).is_empty());

        let mut native = frame("node");
        native.function = Some("foo");
        native.abs_path = Some("[native code]");
        assert!(values(&native).is_empty());
    }

    #[test]
    fn javascript_sourcemap_prefers_context_line() {
        let mut f = frame("javascript");
        f.module = Some("src/app");
        f.function = Some("a");
        f.context_line = Some("throw new Error(x)");
        f.sourcemap = true;
        assert_eq!(values(&f), ["src/app", "throw new Error(x)"]);
        f.sourcemap = false;
        assert_eq!(values(&f), ["src/app", "a", "throw new Error(x)"]);
    }

    #[test]
    fn javascript_url_frame_without_function_drops_context() {
        let mut f = frame("javascript");
        f.abs_path = Some("file:///app/index.js");
        f.filename = Some("index.js");
        f.context_line = Some("foo()");
        assert_eq!(values(&f), ["index.js"]);
    }

    #[test]
    fn bad_javascript_module() {
        let mut f = frame("javascript");
        f.module = Some("app/index");
        f.abs_path = Some("/srv/app/index");
        f.filename = Some("index");
        f.function = Some("f");
        assert_eq!(values(&f), ["index", "f"]);
    }

    #[test]
    fn js_module_generation() {
        let cases = [
            ("http://x/js/v1.0/foo/bar/baz.js", "foo/bar/baz"),
            ("https://x.io/static/js/main.min.js?x=1", "main"),
            ("https://x.io/assets/app-4f3a2b1c9.js", "assets/app"),
            (
                "https://x.io/d41d8cd98f00b204e9800998ecf8427e/lib/a.js",
                "lib/a",
            ),
            ("https://x.io/", "<unknown module>"),
        ];
        for (url, want) in cases {
            assert_eq!(generate_js_module(url), want, "{url}");
        }
    }

    #[test]
    fn java_rules() {
        let mut f = frame("java");
        f.module = Some("com.x.Svc$$EnhancerBySpringCGLIB$$1a2b3c4d");
        f.function = Some("lambda$run$0");
        f.filename = Some("Svc.java");
        assert_eq!(values(&f), ["com.x.Svc$$EnhancerBySpringCGLIB$$<auto>"]);

        let mut r = frame("java");
        r.module = Some("sun.reflect.GeneratedMethodAccessor123");
        r.function = Some("invoke");
        assert_eq!(
            values(&r),
            ["sun.reflect.GeneratedMethodAccessor", "invoke"]
        );

        let mut l = frame("java");
        l.module = Some("com.x.Foo$$Lambda$12/0x0000000801234");
        l.function = Some("apply");
        l.filename = Some("Foo.java");
        assert_eq!(values(&l), ["foo.java", "apply"]);

        assert_eq!(
            clean_java_module("clojure.core$map$fn__4785"),
            "clojure.core$map$fn__<auto>"
        );
        assert_eq!(
            clean_java_module("com.x.User$HibernateProxy$abCD12"),
            "com.x.User$HibernateProxy$<auto>"
        );
    }

    #[test]
    fn ruby_and_php_functions() {
        let mut f = frame("ruby");
        f.function = Some("block (2 levels) in find_user");
        assert_eq!(values(&f), ["block"]);
        f.function = Some("_app_views_users_show_html_erb__1234567_8901234");
        assert_eq!(values(&f), ["_app_views_users_show_html_erb"]);

        let mut p = frame("php");
        p.function = Some("class@anonymous/in/x.php:3$0::handle");
        assert_eq!(values(&p), ["handle"]);
        p.function = Some("[Anonymous function]");
        assert!(values(&p).is_empty());
    }

    #[test]
    fn native_trimming() {
        let cases = [
            ("main", "main"),
            ("my_crate::run::h0123456789abcdef", "my_crate::run"),
            ("_foo@8", "_foo"),
            (
                "std::vector<int, std::allocator<int>>::push_back(int const&)",
                "std::vector<T>::push_back",
            ),
            ("void ns::Foo::bar(int) const", "ns::Foo::bar"),
            ("std::string& ns::get()", "ns::get"),
            ("ns::Foo::operator()(int)", "ns::Foo::operator()"),
            ("ns::operator<<(std::ostream&, X const&)", "ns::operator<<"),
            (
                "ns::run()::{lambda(int)#1}::operator()(int) const",
                "ns::run::lambda::operator()",
            ),
            ("`anonymous namespace'::f", "`anonymous namespace'::f"),
            ("(anonymous namespace)::f(int)", "(anonymous namespace)::f"),
            (
                "-[NSObject doesNotRecognizeSelector:]",
                "-[NSObject doesNotRecognizeSelector:]",
            ),
            (
                "<alloc::vec::Vec<u8> as core::ops::Drop>::drop::h0123456789abcdef",
                "<T>::drop",
            ),
        ];
        for (input, want) in cases {
            assert_eq!(trim_native_function(input), want, "{input}");
        }
        let mut f = frame("native");
        f.function = Some("<unknown>");
        f.filename = Some("crash.c");
        assert_eq!(values(&f), ["crash.c"]);
        let bare = frame("native");
        assert!(values(&bare).is_empty());
    }

    #[test]
    fn csharp_prefers_raw_function() {
        let mut f = frame("csharp");
        f.module = Some("App.Svc");
        f.function = Some("Run");
        f.raw_function = Some("Run(int)");
        assert_eq!(values(&f), ["App.Svc", "Run(int)"]);
    }
}
