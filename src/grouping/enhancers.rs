//! Stack-trace rules (Sentry's "grouping enhancements"): per-project lines such as
//!
//! ```text
//! # Django's own frames are never application code
//! stack.module:django.* -app
//! family:javascript stack.abs_path:**/node_modules/** -app
//! stack.function:assert* -group
//! [ stack.function:dispatch ] | stack.function:handle* -group
//! family:native stack.function:my_panic_hook ^-group
//! stack.module:myapp.retry.* category=retry
//! category:retry max-frames=3
//! ```
//!
//! A rule is one or more matchers, all of which must hit the same frame (optionally with a
//! `[ … ] |` matcher for its caller and `| [ … ]` for its callee), followed by actions:
//! `+app`/`-app` (in-app flag), `+group`/`-group` (whether the frame feeds the hash), each
//! optionally prefixed with `^` (every frame above, towards the crash) or `v` (every frame
//! below), `category=NAME` (matched later by `category:`), `max-frames=N` (only the N frames
//! nearest the crash count) and `min-frames=N` (a stack with fewer contributing frames does
//! not count). Rules run top to bottom over every frame; a later rule overrides an earlier
//! one. In-app and category actions run first (so `app:` and `category:` see their result),
//! grouping actions second.
//!
//! The built-in base rules of the config run before the project's own rules, so a project
//! can undo any of them (`… +group`).

use std::borrow::Cow;
use std::fmt;
use std::sync::LazyLock;

use serde::{Deserialize, Serialize};

use super::config::GroupingConfig;
use super::event::Frame;
use super::frame::{family, is_native, trim_native_function_v2};
use super::glob::{Glob, LeadingGlobstar, needs_lowercase};

/// A parsed set of stack-trace rules. Serialises as its source text, so project settings
/// store the text and get it back unchanged.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct StackRules {
    source: String,
    rules: Vec<Rule>,
}

/// A rule file failed to parse.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StackRuleParseError {
    /// 1-based line number.
    pub line: usize,
    pub message: String,
}

impl fmt::Display for StackRuleParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "stack trace rules, line {}: {}", self.line, self.message)
    }
}

impl std::error::Error for StackRuleParseError {}

#[derive(Debug, Clone)]
struct Rule {
    text: String,
    builtin: bool,
    caller: Vec<Matcher>,
    matchers: Vec<Matcher>,
    callee: Vec<Matcher>,
    actions: Vec<Action>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Key {
    Family,
    Path,
    Module,
    Function,
    Package,
    App,
    Category,
    // the exception whose stack this is
    Type,
    Value,
    Mechanism,
}

impl Key {
    fn parse(key: &str) -> Option<Key> {
        Some(match key {
            "family" => Key::Family,
            "path" | "stack.abs_path" => Key::Path,
            "module" | "stack.module" => Key::Module,
            "function" | "stack.function" => Key::Function,
            "package" | "stack.package" => Key::Package,
            "app" | "stack.app" => Key::App,
            "category" => Key::Category,
            "type" | "error.type" => Key::Type,
            "value" | "error.value" => Key::Value,
            "mechanism" | "error.mechanism" => Key::Mechanism,
            _ => return None,
        })
    }
}

#[derive(Debug, Clone)]
enum Pattern {
    Glob(Glob),
    Families(Vec<String>),
    App(bool),
}

#[derive(Debug, Clone)]
struct Matcher {
    key: Key,
    negated: bool,
    pattern: Pattern,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Range {
    /// `^`: the frames after this one in the list, i.e. the ones it called.
    Up,
    /// `v`: the frames before it, its callers.
    Down,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Flag {
    App,
    Group,
}

#[derive(Debug, Clone)]
enum Action {
    Flag {
        range: Option<Range>,
        flag: Flag,
        value: bool,
    },
    Category(String),
    MaxFrames(usize),
    MinFrames(usize),
}

impl Action {
    fn is_modifier(&self) -> bool {
        matches!(
            self,
            Action::Flag {
                flag: Flag::App,
                ..
            } | Action::Category(_)
        )
    }
}

impl StackRules {
    pub fn parse(text: &str) -> Result<Self, StackRuleParseError> {
        let rules = parse_rules(text, false)?;
        Ok(StackRules {
            source: text.to_owned(),
            rules,
        })
    }

    pub fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }

    pub fn len(&self) -> usize {
        self.rules.len()
    }

    /// The source text this was parsed from.
    pub fn as_str(&self) -> &str {
        &self.source
    }
}

impl TryFrom<String> for StackRules {
    type Error = StackRuleParseError;

    fn try_from(s: String) -> Result<Self, StackRuleParseError> {
        StackRules::parse(&s)
    }
}

impl From<StackRules> for String {
    fn from(r: StackRules) -> String {
        r.source
    }
}

fn parse_rules(text: &str, builtin: bool) -> Result<Vec<Rule>, StackRuleParseError> {
    let mut rules = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let mut rule = parse_rule(line).map_err(|message| StackRuleParseError {
            line: i + 1,
            message,
        })?;
        rule.builtin = builtin;
        rules.push(rule);
    }
    Ok(rules)
}

/// Splits a rule line into tokens: quoted strings stay whole (quotes kept, for the matcher
/// parser to strip), `[`, `]` and `|` are tokens of their own.
fn tokenize(line: &str) -> Result<Vec<String>, String> {
    let mut tokens = Vec::new();
    let mut cur = String::new();
    let mut chars = line.chars().peekable();
    let flush = |cur: &mut String, tokens: &mut Vec<String>| {
        if !cur.is_empty() {
            tokens.push(std::mem::take(cur));
        }
    };
    while let Some(c) = chars.next() {
        match c {
            '"' => {
                cur.push('"');
                let mut closed = false;
                while let Some(c) = chars.next() {
                    cur.push(c);
                    if c == '\\' {
                        if let Some(n) = chars.next() {
                            cur.push(n);
                        }
                    } else if c == '"' {
                        closed = true;
                        break;
                    }
                }
                if !closed {
                    return Err("unterminated quoted string".to_owned());
                }
            }
            c if c.is_whitespace() => flush(&mut cur, &mut tokens),
            // a comment after the rule, as in `… category=ui  # auto-layout engine`
            '#' if cur.is_empty() => break,
            '[' | '|' if cur.is_empty() => tokens.push(c.to_string()),
            // A `]` closing a glob class inside a value (`module:app.m[0-3]`) is the value's.
            ']' if cur.matches('[').count() > cur.matches(']').count() => cur.push(c),
            ']' => {
                flush(&mut cur, &mut tokens);
                tokens.push("]".to_owned());
            }
            '|' => {
                flush(&mut cur, &mut tokens);
                tokens.push("|".to_owned());
            }
            c => cur.push(c),
        }
    }
    flush(&mut cur, &mut tokens);
    Ok(tokens)
}

fn unquote(value: &str) -> String {
    let Some(inner) = value.strip_prefix('"').and_then(|v| v.strip_suffix('"')) else {
        return value.to_owned();
    };
    let mut out = String::with_capacity(inner.len());
    let mut chars = inner.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => match chars.next() {
                Some(n @ ('"' | '\\')) => out.push(n),
                // keep other escapes for the glob (`\*` is a literal star)
                Some(n) => {
                    out.push('\\');
                    out.push(n);
                }
                None => {}
            },
            c => out.push(c),
        }
    }
    out
}

fn parse_matcher(token: &str) -> Result<Matcher, String> {
    let (negated, rest) = match token.strip_prefix('!') {
        Some(r) => (true, r),
        None => (false, token),
    };
    let (key_text, value) = rest
        .split_once(':')
        .ok_or_else(|| format!("expected `matcher:value` or an action, got {token:?}"))?;
    let key = Key::parse(key_text).ok_or_else(|| {
        format!(
            "unknown matcher {key_text:?} (use family, stack.abs_path, stack.module, \
             stack.function, stack.package, app, category, error.type, error.value or \
             error.mechanism)"
        )
    })?;
    let value = unquote(value);
    if value.is_empty() {
        return Err(format!("empty value for matcher {key_text:?}"));
    }
    let pattern = match key {
        Key::Family => {
            let fams: Vec<String> = value.split(',').map(|f| f.trim().to_owned()).collect();
            if let Some(bad) = fams
                .iter()
                .find(|f| !matches!(f.as_str(), "javascript" | "native" | "other" | "all"))
            {
                return Err(format!(
                    "unknown family {bad:?} (use javascript, native, other or all)"
                ));
            }
            Pattern::Families(fams)
        }
        Key::App => Pattern::App(match value.to_ascii_lowercase().as_str() {
            "yes" | "true" | "1" => true,
            "no" | "false" | "0" => false,
            _ => return Err(format!("app: expects yes or no, got {value:?}")),
        }),
        Key::Path | Key::Package => Pattern::Glob(Glob::with_leading(
            &value,
            true,
            true,
            LeadingGlobstar::MayBeEmpty,
        )?),
        Key::Value => Pattern::Glob(Glob::new(&value, false, true)?),
        _ => Pattern::Glob(Glob::new(&value, false, false)?),
    };
    Ok(Matcher {
        key,
        negated,
        pattern,
    })
}

fn parse_action(token: &str) -> Result<Option<Action>, String> {
    if let Some((name, value)) = token.split_once('=')
        && !name.contains(':')
    {
        let value = unquote(value);
        let number = || {
            value
                .parse::<usize>()
                .map_err(|_| format!("{name} expects a number, got {value:?}"))
        };
        return Ok(Some(match name {
            "category" if !value.is_empty() => Action::Category(value),
            "category" => return Err("empty category".to_owned()),
            "max-frames" => Action::MaxFrames(number()?),
            "min-frames" => Action::MinFrames(number()?),
            "invert-stacktrace" => {
                return Err(
                    "invert-stacktrace changes the display only and is not supported".to_owned(),
                );
            }
            other => {
                return Err(format!(
                    "unknown action {other:?} (use category=, max-frames= or min-frames=)"
                ));
            }
        }));
    }
    let (range, rest) = match token.chars().next() {
        Some('^') => (Some(Range::Up), &token[1..]),
        Some('v') if token[1..].starts_with(['+', '-']) => (Some(Range::Down), &token[1..]),
        _ => (None, token),
    };
    let (value, flag) = match rest.split_at_checked(1) {
        Some(("+", f)) => (true, f),
        Some(("-", f)) => (false, f),
        _ if range.is_some() => {
            return Err(format!(
                "expected +app, -app, +group or -group after the range in {token:?}"
            ));
        }
        _ => return Ok(None),
    };
    let flag = match flag {
        "app" => Flag::App,
        "group" => Flag::Group,
        other => {
            return Err(format!(
                "unknown flag {other:?} in {token:?} (use app or group)"
            ));
        }
    };
    Ok(Some(Action::Flag { range, flag, value }))
}

fn parse_rule(line: &str) -> Result<Rule, String> {
    let tokens = tokenize(line)?;
    let mut caller = Vec::new();
    let mut matchers = Vec::new();
    let mut callee = Vec::new();
    let mut actions = Vec::new();
    let mut i = 0;

    let bracket = |i: &mut usize, out: &mut Vec<Matcher>| -> Result<(), String> {
        *i += 1; // `[`
        while *i < tokens.len() && tokens[*i] != "]" {
            if parse_action(&tokens[*i])?.is_some() {
                return Err("unterminated [ ... ] (missing `]` before the actions)".to_owned());
            }
            out.push(parse_matcher(&tokens[*i])?);
            *i += 1;
        }
        if *i == tokens.len() {
            return Err("unterminated [ ... ]".to_owned());
        }
        *i += 1; // `]`
        if out.is_empty() {
            return Err("empty [ ] frame matcher".to_owned());
        }
        Ok(())
    };

    if tokens.first().map(String::as_str) == Some("[") {
        bracket(&mut i, &mut caller)?;
        if tokens.get(i).map(String::as_str) != Some("|") {
            return Err("expected `|` after the caller's `[ ... ]`".to_owned());
        }
        i += 1;
    }
    while i < tokens.len() {
        let t = tokens[i].as_str();
        match t {
            "|" => {
                if matchers.is_empty() {
                    return Err("`|` must come between frame matchers".to_owned());
                }
                i += 1;
                if tokens.get(i).map(String::as_str) != Some("[") {
                    return Err("expected `[ ... ]` for the callee after `|`".to_owned());
                }
                bracket(&mut i, &mut callee)?;
                break;
            }
            "[" | "]" => return Err(format!("unexpected `{t}`")),
            _ => {
                if let Some(a) = parse_action(t)? {
                    // Actions end the matchers.
                    actions.push(a);
                    i += 1;
                    break;
                }
                matchers.push(parse_matcher(t)?);
                i += 1;
            }
        }
    }
    while i < tokens.len() {
        let t = tokens[i].as_str();
        match parse_action(t)? {
            Some(a) => actions.push(a),
            None if t.contains(':') => {
                return Err(format!("matcher {t:?} must come before the actions"));
            }
            None => {
                return Err(format!(
                    "unknown action {t:?} (use +app, -app, +group, -group, ^/v prefixes, category=, max-frames=, min-frames=)"
                ));
            }
        }
        i += 1;
    }
    if matchers.is_empty() {
        return Err("a rule needs at least one matcher".to_owned());
    }
    if actions.is_empty() {
        return Err(
            "a rule needs at least one action (+app, -app, +group, -group, category=…)".to_owned(),
        );
    }
    Ok(Rule {
        text: line.to_owned(),
        builtin: false,
        caller,
        matchers,
        callee,
        actions,
    })
}

/// What the rules see of a frame, computed once per pass.
struct MatchFrame<'a, 'r> {
    family: &'static str,
    function: Option<Cow<'a, str>>,
    module: Option<&'a str>,
    /// Lower-cased, `\` read as `/`.
    paths: [Option<Cow<'a, str>>; 2],
    package: Option<Cow<'a, str>>,
    in_app: bool,
    category: Option<&'r str>,
}

fn fold_path(p: Option<&str>) -> Option<Cow<'_, str>> {
    p.map(|p| {
        if p.contains('\\') || needs_lowercase(p) {
            Cow::Owned(p.replace('\\', "/").to_lowercase())
        } else {
            Cow::Borrowed(p)
        }
    })
}

fn match_frames<'a, 'r>(frames: &[Frame<'a>]) -> Vec<MatchFrame<'a, 'r>> {
    frames
        .iter()
        .map(|f| MatchFrame {
            family: family(f.platform),
            // Native symbols are matched trimmed (`std::vector<T>::push_back`), as shown.
            function: f.function.or(f.raw_function).map(|func| {
                if is_native(f.platform) {
                    trim_native_function_v2(func)
                } else {
                    Cow::Borrowed(func)
                }
            }),
            module: f.module,
            paths: [fold_path(f.abs_path), fold_path(f.filename)],
            package: fold_path(f.package),
            in_app: f.in_app,
            category: None,
        })
        .collect()
}

/// The exception a stack belongs to, for `error.*` matchers.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct ExceptionData<'a> {
    pub ty: Option<&'a str>,
    pub value: Option<&'a str>,
    pub mechanism: Option<&'a str>,
}

impl Matcher {
    fn matches(&self, f: &MatchFrame, exc: &ExceptionData) -> bool {
        let glob = |v: Option<&str>| match &self.pattern {
            Pattern::Glob(g) => v.is_some_and(|v| g.is_match(v)),
            _ => false,
        };
        let folded = |v: Option<&str>| match &self.pattern {
            Pattern::Glob(g) => v.is_some_and(|v| g.is_match_folded(v)),
            _ => false,
        };
        let hit = match (&self.pattern, self.key) {
            (Pattern::Families(fams), _) => fams.iter().any(|x| x == "all" || x == f.family),
            (Pattern::App(want), _) => f.in_app == *want,
            (_, Key::Path) => f.paths.iter().flatten().any(|p| folded(Some(p.as_ref()))),
            (_, Key::Package) => folded(f.package.as_deref()),
            (_, Key::Module) => glob(f.module),
            (_, Key::Function) => glob(f.function.as_deref()),
            (_, Key::Category) => glob(f.category),
            (_, Key::Type) => glob(exc.ty),
            (_, Key::Value) => glob(exc.value),
            (_, Key::Mechanism) => glob(exc.mechanism),
            _ => false,
        };
        hit != self.negated
    }
}

impl Rule {
    /// The families a rule can match at all (from a plain `family:` matcher), so most
    /// built-in rules are skipped with one comparison per frame.
    fn family_allows(&self, family: &str) -> bool {
        self.matchers.iter().all(|m| match (&m.pattern, m.negated) {
            (Pattern::Families(f), false) => f.iter().any(|x| x == "all" || x == family),
            _ => true,
        })
    }

    fn matches(&self, frames: &[MatchFrame], idx: usize, exc: &ExceptionData) -> bool {
        let all = |ms: &[Matcher], f: &MatchFrame| ms.iter().all(|m| m.matches(f, exc));
        all(&self.matchers, &frames[idx])
            && (self.caller.is_empty() || idx > 0 && all(&self.caller, &frames[idx - 1]))
            && (self.callee.is_empty() || frames.get(idx + 1).is_some_and(|f| all(&self.callee, f)))
    }

    fn hint(&self, what: &str) -> String {
        let source = if self.builtin { "built-in " } else { "" };
        format!("{what} by {source}stack trace rule ({})", self.text)
    }
}

fn range(range: Option<Range>, idx: usize, len: usize) -> std::ops::Range<usize> {
    match range {
        None => idx..idx + 1,
        Some(Range::Up) => idx + 1..len,
        Some(Range::Down) => 0..idx,
    }
}

/// The built-in rules of a config plus the project's, in the order they run.
#[derive(Clone, Copy)]
pub(crate) struct RuleSet<'r> {
    base: &'r [Rule],
    project: &'r [Rule],
}

impl<'r> RuleSet<'r> {
    pub fn new(cfg: &GroupingConfig, project: &'r StackRules) -> RuleSet<'r> {
        let base: &'static [Rule] = if cfg.legacy_builtin_rules {
            &[]
        } else {
            &BASE_2026_12
        };
        RuleSet {
            base,
            project: &project.rules,
        }
    }

    fn iter(&self) -> impl Iterator<Item = &'r Rule> {
        self.base.iter().chain(self.project)
    }

    pub fn is_empty(&self) -> bool {
        self.base.is_empty() && self.project.is_empty()
    }

    /// First pass: in-app flags and categories, written onto the frames so that titles,
    /// culprits, fingerprint rules and the app variant all see them.
    pub fn apply_modifiers(&self, frames: &mut [Frame], exc: &ExceptionData) {
        if !self
            .iter()
            .any(|r| r.actions.iter().any(Action::is_modifier))
            || frames.is_empty()
        {
            return;
        }
        let mut mf = match_frames(frames);
        for rule in self.iter() {
            if !rule.actions.iter().any(Action::is_modifier) {
                continue;
            }
            for idx in 0..frames.len() {
                if !rule.family_allows(mf[idx].family) || !rule.matches(&mf, idx, exc) {
                    continue;
                }
                for action in &rule.actions {
                    match action {
                        Action::Flag {
                            range: r,
                            flag: Flag::App,
                            value,
                        } => {
                            for j in range(*r, idx, frames.len()) {
                                mf[j].in_app = *value;
                                if frames[j].in_app != *value {
                                    frames[j].in_app = *value;
                                    frames[j].app_hint = Some(rule.hint(if *value {
                                        "marked in-app"
                                    } else {
                                        "marked out of app"
                                    }));
                                }
                            }
                        }
                        Action::Category(c) => mf[idx].category = Some(c),
                        _ => {}
                    }
                }
            }
        }
        for (f, m) in frames.iter_mut().zip(mf) {
            f.category = m.category.map(str::to_owned);
        }
    }

    /// Second pass: which frames feed the hash, and the stack's frame limits.
    pub fn group_decisions(&self, frames: &[Frame], exc: &ExceptionData) -> GroupDecisions {
        let mut d = GroupDecisions {
            frames: vec![None; frames.len()],
            max_frames: None,
            min_frames: None,
        };
        if self.is_empty() || frames.is_empty() {
            return d;
        }
        let mut mf = match_frames(frames);
        for (m, f) in mf.iter_mut().zip(frames) {
            m.category = f.category.as_deref();
        }
        // Most built-in rules are for one family; a stack of other frames skips them whole.
        let mut families: Vec<&str> = mf.iter().map(|m| m.family).collect();
        families.sort_unstable();
        families.dedup();
        for rule in self.iter() {
            if rule.actions.iter().all(Action::is_modifier)
                || !families.iter().any(|f| rule.family_allows(f))
            {
                continue;
            }
            for idx in 0..frames.len() {
                if !rule.family_allows(mf[idx].family) || !rule.matches(&mf, idx, exc) {
                    continue;
                }
                for action in &rule.actions {
                    match action {
                        Action::Flag {
                            range: r,
                            flag: Flag::Group,
                            value,
                        } => {
                            let hint = rule.hint(if *value { "un-ignored" } else { "ignored" });
                            for j in range(*r, idx, frames.len()) {
                                d.frames[j] = Some((*value, hint.clone()));
                            }
                        }
                        Action::MaxFrames(n) => d.max_frames = Some((*n, rule.text.clone())),
                        Action::MinFrames(n) => d.min_frames = Some((*n, rule.text.clone())),
                        _ => {}
                    }
                }
            }
        }
        d
    }
}

/// The result of the grouping pass over one stack.
#[derive(Debug, Default)]
pub(crate) struct GroupDecisions {
    /// Per frame: forced to contribute (`+group`) or not (`-group`), with the hint.
    pub frames: Vec<Option<(bool, String)>>,
    pub max_frames: Option<(usize, String)>,
    pub min_frames: Option<(usize, String)>,
}

/// Built-in rules of `snag:2026-12`: frames that are the same in every crash, or that vary
/// with tool versions rather than with the bug, do not feed the hash. They do not touch the
/// in-app flag: an SDK's explicit `in_app` is the user's own choice (sentry-python's
/// `in_app_include` for a package installed in site-packages, say), and an unset flag
/// already counts as not in-app.
const BASE_2026_12_TEXT: &str = r#"
# Transpiler runtimes and polyfills wrap the real code wherever it is.
family:javascript stack.abs_path:**/node_modules/@babel/** -group
family:javascript stack.abs_path:**/node_modules/core-js/** -group
family:javascript stack.abs_path:**/node_modules/tslib/** -group
family:javascript stack.abs_path:**/node_modules/regenerator-runtime/** -group
family:javascript stack.module:@babel/** -group
family:javascript stack.module:core-js/** -group
family:javascript stack.module:tslib/** -group
family:javascript stack.module:regenerator-runtime/** -group
family:javascript stack.function:_callSuper -group

# Node's event loop and task queues: present under every async error.
family:javascript stack.function:processTicksAndRejections -group
family:javascript stack.function:runMicrotasks -group
family:javascript stack.function:queueMicrotask -group
family:javascript stack.function:runNextTicks -group
family:javascript stack.function:nextTick -group
family:javascript stack.function:_tickCallback -group
family:javascript stack.function:process._tickCallback -group
family:javascript stack.function:processImmediate -group
family:javascript stack.function:listOnTimeout -group
family:javascript stack.function:processTimers -group

# Error-reporting SDKs wrap calls to report them; their frames change with the SDK
# version and its integrations, not with the bug.
stack.module:sentry_sdk.* -group
stack.module:raven.* -group
family:javascript stack.abs_path:**/node_modules/@sentry/** -group
family:javascript stack.abs_path:**/node_modules/@sentry-internal/** -group
stack.module:io.sentry.* -group
stack.module:Sentry.* -group
stack.abs_path:**/vendor/sentry/** -group
stack.abs_path:**/gems/sentry-ruby-*/** -group
stack.abs_path:**/gems/sentry-rails-*/** -group
stack.module:github.com/getsentry/sentry-go* -group

# JVM reflection frames differ between JDK versions (GeneratedMethodAccessor,
# DirectMethodHandleAccessor, NativeMethodAccessorImpl) for the same call.
stack.module:java.lang.reflect.* -group
stack.module:jdk.internal.reflect.* -group
stack.module:sun.reflect.* -group

# Native crash machinery: the throw, abort, assert and signal-handler frames are the same
# in every crash, and everything they call on the way down is noise.
family:native stack.function:abort ^-group -group
family:native stack.function:raise ^-group -group
family:native stack.function:__cxa_throw ^-group -group
family:native stack.function:__cxa_rethrow ^-group -group
family:native stack.function:_CxxThrowException ^-group -group
family:native stack.function:RaiseException ^-group -group
family:native stack.function:std::terminate ^-group -group
family:native stack.function:__assert_rtn ^-group -group
family:native stack.function:__assert_fail ^-group -group
family:native stack.function:_assert ^-group -group
family:native stack.function:_wassert ^-group -group
family:native stack.function:_sigtramp ^-group -group
family:native stack.function:__kill ^-group -group
family:native stack.function:pthread_kill ^-group -group
family:native stack.function:__pthread_kill ^-group -group
family:native stack.function:__GI_raise ^-group -group
family:native stack.function:__GI_abort ^-group -group
family:native stack.function:objc_exception_throw ^-group -group
family:native stack.function:objc_exception_rethrow ^-group -group
family:native stack.function:_NSRaiseError ^-group -group
family:native stack.function:google_breakpad::ExceptionHandler::* ^-group -group
family:native stack.function:rust_panic ^-group -group
family:native stack.function:__rust_start_panic ^-group -group
family:native stack.function:rust_begin_unwind ^-group -group
family:native stack.function:std::panicking::* ^-group -group
family:native stack.function:core::panicking::* ^-group -group
family:native stack.function:panic_abort::* ^-group -group
"#;

static BASE_2026_12: LazyLock<Vec<Rule>> =
    LazyLock::new(|| parse_rules(BASE_2026_12_TEXT, true).expect("built-in stack rules parse"));

/// The built-in rules of a config, as text, for display next to a project's own.
pub fn builtin_stack_rules(cfg: &GroupingConfig) -> &'static str {
    if cfg.legacy_builtin_rules {
        ""
    } else {
        BASE_2026_12_TEXT.trim()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base_rules_parse() {
        assert!(BASE_2026_12.len() > 50);
        assert!(BASE_2026_12.iter().all(|r| r.builtin));
    }

    #[test]
    fn parses_documented_forms() {
        let rules = StackRules::parse(
            r#"
# comment
stack.module:django.* -app
family:javascript stack.abs_path:**/node_modules/** -app
stack.function:assert* -group
family:native,javascript function:"my func" +app +group
[ stack.function:dispatch ] | stack.function:handle* -group
stack.function:inner | [ stack.function:leaf ] ^-group v+app
[category:throw] | category:throw category=internals
!app:yes error.type:KeyError error.value:"*sku*" error.mechanism:generic -group
stack.package:**/libfoo.so min-frames=2 max-frames=5  # trailing comment
"#,
        )
        .unwrap();
        assert_eq!(rules.len(), 9);
        let r = &rules.rules[4];
        assert_eq!(r.caller.len(), 1);
        assert_eq!(r.matchers.len(), 1);
        assert!(r.callee.is_empty());
        let r = &rules.rules[5];
        assert_eq!(r.callee.len(), 1);
        assert_eq!(r.actions.len(), 2);
        assert!(rules.rules[7].matchers[0].negated);
        assert_eq!(rules.rules[6].caller.len(), 1);
        assert!(StackRules::default().is_empty());
    }

    #[test]
    fn parse_errors_are_clear() {
        let cases = [
            ("\nstack.module:x", 2, "at least one action"),
            ("bogus:X -app", 1, "unknown matcher"),
            ("-app", 1, "at least one matcher"),
            ("module:x +apps", 1, "unknown flag"),
            ("module:x ^app", 1, "after the range"),
            ("module:x -app module:y", 1, "before the actions"),
            ("module:x -app frobnicate", 1, "unknown action"),
            ("module:x foo=bar", 1, "unknown action"),
            ("module:x max-frames=many", 1, "expects a number"),
            ("module:x invert-stacktrace=1", 1, "not supported"),
            ("module:\"x -app", 1, "unterminated"),
            ("module: -app", 1, "empty value"),
            ("family:rust -app", 1, "unknown family"),
            ("app:maybe -app", 1, "yes or no"),
            ("[ module:x -app", 1, "unterminated ["),
            ("[ module:x ] module:y -app", 1, "expected `|`"),
            ("module:y | module:x -app", 1, "expected `[ ... ]`"),
            ("[ ] | module:x -app", 1, "empty [ ]"),
            ("module:[x -app", 1, "unterminated [ in pattern"),
            ("module:x category= -app", 1, "empty category"),
        ];
        for (text, line, msg) in cases {
            let err = StackRules::parse(text).unwrap_err();
            assert_eq!(err.line, line, "{text:?}: {err}");
            assert!(err.message.contains(msg), "{text:?}: {}", err.message);
            assert!(err.to_string().contains(&format!("line {line}")));
        }
    }

    #[test]
    fn serde_as_text() {
        let rules = StackRules::parse("module:x -app").unwrap();
        let json = serde_json::to_string(&rules).unwrap();
        assert_eq!(json, "\"module:x -app\"");
        let back: StackRules = serde_json::from_str(&json).unwrap();
        assert_eq!(back.len(), 1);
        assert!(serde_json::from_str::<StackRules>("\"nope\"").is_err());
    }
}
