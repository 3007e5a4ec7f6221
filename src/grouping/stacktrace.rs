//! Stack traces, exceptions (single, chained, groups) and threads as grouping components,
//! each built twice: for the `app` variant (in-app frames only) and the `system` variant
//! (all frames).

use std::collections::HashMap;

use std::borrow::Cow;

use super::component::{Component, ComponentValue};
use super::config::GroupingConfig;
use super::enhancers::{ExceptionData, RuleSet};
use super::event::{Exception, Frame};
use super::frame::{builtin_nongroup, frame_component, has_url_origin, is_js};
use super::message::normalize_lines;

/// What building a stack's components needs besides the frames.
#[derive(Clone, Copy)]
pub(crate) struct StackCtx<'r> {
    pub cfg: &'r GroupingConfig,
    pub rules: RuleSet<'r>,
}

/// A component built for both variants.
#[derive(Debug, Clone)]
pub(crate) struct Pair {
    pub app: Component,
    pub system: Component,
}

fn is_recursion(a: &Frame, b: &Frame) -> bool {
    a.abs_path == b.abs_path
        && a.package == b.package
        && a.module == b.module
        && a.filename == b.filename
        && a.function == b.function
        && a.lineno == b.lineno
        && a.colno == b.colno
}

/// The `stacktrace` component of a frame list, bottom (oldest call) first as sent.
pub(crate) fn stacktrace(frames: &[Frame], ctx: StackCtx, exc: &ExceptionData) -> Pair {
    let cfg = ctx.cfg;
    let decisions = ctx.rules.group_decisions(frames, exc);
    let mut system = Component::new("stacktrace");
    system.values.reserve(frames.len());
    let mut prev: Option<&Frame> = None;
    let mut below_crash_handler = false;
    for (i, f) in frames.iter().enumerate() {
        let mut c = frame_component(f, cfg);
        if prev.is_some_and(|p| is_recursion(f, p)) {
            c.ignore("ignored due to recursion");
        }
        if cfg.legacy_builtin_rules {
            if below_crash_handler {
                c.ignore("ignored because of built-in rule: frame above crash handler");
            } else if let Some((hint, above)) = builtin_nongroup(f) {
                c.ignore(hint);
                below_crash_handler = above;
            }
        }
        if let Some(Some((contributes, hint))) = decisions.frames.get(i) {
            if !contributes {
                c.ignore_with(Cow::Owned(hint.clone()));
            } else if !c.contributes && c.values.iter().any(value_contributes) {
                c.contributes = true;
                c.hint = Some(Cow::Owned(hint.clone()));
            }
        }
        prev = Some(f);
        system.push(c);
    }
    if let [only] = frames
        && is_js(only.platform)
        && only.function.is_none()
        && !has_url_origin(only.abs_path, cfg.js_file_urls_are_urls)
    {
        system.ignore("ignored single non-URL JavaScript frame");
    }

    let mut app = system.clone();
    let mut any_in_app = false;
    for (v, f) in app.values.iter_mut().zip(frames) {
        if let ComponentValue::Component(c) = v {
            if f.in_app {
                any_in_app = true;
            } else {
                match &f.app_hint {
                    Some(h) => c.ignore_with(Cow::Owned(h.clone())),
                    None => c.ignore("non app frame"),
                }
            }
        }
    }
    if !any_in_app {
        app.ignore("ignored because it contains no in-app frames");
    }
    for st in [&mut app, &mut system] {
        apply_frame_limits(st, &decisions);
        st.contributes_if_any_child("ignored because it contains no contributing frames");
    }
    Pair { app, system }
}

fn value_contributes(v: &ComponentValue) -> bool {
    match v {
        ComponentValue::Value(_) => true,
        ComponentValue::Component(c) => c.contributes,
    }
}

/// `max-frames=N`: only the N contributing frames nearest the crash count;
/// `min-frames=N`: a stack with fewer contributing frames does not count at all.
fn apply_frame_limits(st: &mut Component, d: &super::enhancers::GroupDecisions) {
    if let Some((max, rule)) = &d.max_frames {
        let mut kept = 0;
        for v in st.values.iter_mut().rev() {
            if let ComponentValue::Component(c) = v
                && c.contributes
            {
                if kept >= *max {
                    c.ignore_with(Cow::Owned(format!(
                        "ignored because only the {max} frames nearest the crash count (stack trace rule {rule})"
                    )));
                } else {
                    kept += 1;
                }
            }
        }
    }
    if let Some((min, rule)) = &d.min_frames {
        let n = st.values.iter().filter(|v| value_contributes(v)).count();
        if n > 0 && n < *min {
            st.ignore_with(Cow::Owned(format!(
                "ignored because it has {n} contributing frame(s), fewer than {min} (stack trace rule {rule})"
            )));
        }
    }
}

/// One exception: `[type, value, stacktrace]` (the fall-2025 order), where the value only
/// counts when the stack does not.
fn single_exception(e: &Exception, ctx: StackCtx) -> Pair {
    let cfg = ctx.cfg;
    let exc = e.data();
    let st = e.frames.as_deref().map(|f| stacktrace(f, ctx, &exc));
    let mut base = Component::new("exception");
    if let Some(ty) = e.ty {
        let mut c = Component::leaf("type", ty);
        if e.synthetic {
            // Synthetic types are made up by the SDK per platform and mean nothing.
            c.ignore("ignored because exception is synthetic");
        }
        base.push(c);
    }
    if let Some((domain, code)) = &e.ns_error {
        let mut c = Component::new("ns-error");
        c.push(Component::leaf("domain", domain.clone()));
        c.push(Component::leaf("code", code.clone()));
        base.push(c);
    }
    let value = e.value.map(|v| normalize_lines(v, cfg.message_lines));
    let finish = |mut c: Component, st: Option<Component>| {
        let stack_contributes = st.as_ref().is_some_and(|s| s.contributes);
        if let Some(v) = &value {
            let mut vc = Component::leaf("value", v.clone());
            if stack_contributes {
                vc.ignore("stacktrace takes precedence");
            } else if e.ns_error.is_some() {
                vc.ignore("ns-error info takes precedence");
            }
            c.push(vc);
        }
        if let Some(st) = st {
            c.push(st);
        }
        c.contributes_if_any_child("ignored because exception has nothing to group by");
        c
    };
    let (app_st, sys_st) = match st {
        Some(p) => (Some(p.app), Some(p.system)),
        None => (None, None),
    };
    Pair {
        app: finish(base.clone(), app_st),
        system: finish(base, sys_st),
    }
}

/// All exceptions of the event. Returns the component pair and, when exception-group
/// handling reduced the group to one exception, the `exception_id` that should title it.
pub(crate) fn chained_exception(excs: &[Exception], ctx: StackCtx) -> (Pair, Option<i64>) {
    let singles: Vec<Pair> = excs.iter().map(|e| single_exception(e, ctx)).collect();
    let (order, main_id) = match filter_exception_group(excs, &singles) {
        Some((order, main)) => (order, main),
        None => ((0..excs.len()).collect(), None),
    };
    if let [only] = order.as_slice() {
        let mut singles = singles;
        return (singles.swap_remove(*only), main_id);
    }
    let mut app = Component::new("chained-exception");
    let mut system = Component::new("chained-exception");
    // Indices in `order` are distinct, so each tree can be moved out exactly once.
    let mut singles: Vec<Option<Pair>> = singles.into_iter().map(Some).collect();
    for i in order {
        if let Some(p) = singles[i].take() {
            app.push(p.app);
            system.push(p.system);
        }
    }
    app.contributes_if_any_child("ignored because no exception contributes");
    system.contributes_if_any_child("ignored because no exception contributes");
    (Pair { app, system }, main_id)
}

/// Wrappers whose message says nothing, so the issue should be titled by the error they
/// wrap (Sentry's `_maybe_override_main_exception_id`): React 19's "recovered from an error"
/// errors carry the real one as their `cause`, RxJava's framework exceptions wrap the
/// error nobody handled.
pub(crate) fn wrapped_main_exception(excs: &[Exception]) -> Option<i64> {
    const REACT_RECOVERED: &[&str] = &[
        "There was an error during concurrent rendering but React was able to recover by instead synchronously rendering the entire root.",
        "There was an error while hydrating but React was able to recover by instead client rendering from the nearest Suspense boundary.",
    ];
    const RX_WRAPPERS: &[&str] = &[
        "OnErrorNotImplementedException",
        "CompositeException",
        "UndeliverableException",
    ];
    if let Some(react) = excs
        .iter()
        .find(|e| e.ty == Some("Error") && e.value.is_some_and(|v| REACT_RECOVERED.contains(&v)))
    {
        let causes = || excs.iter().filter(|e| e.mechanism_source == Some("cause"));
        let cause = causes()
            .find(|c| c.parent_id.is_some() && c.parent_id == react.exception_id)
            .or_else(|| causes().next());
        if let Some(id) = cause.and_then(|c| c.exception_id) {
            return Some(id);
        }
    }
    let rx = excs.iter().find(|e| {
        e.module == Some("io.reactivex.rxjava3.exceptions")
            && e.ty.is_some_and(|t| RX_WRAPPERS.contains(&t))
            && e.mechanism_type == Some("UncaughtExceptionHandler")
    })?;
    let rx_id = rx.exception_id?;
    excs.iter()
        .find(|e| e.parent_id == Some(rx_id))
        .and_then(|e| e.exception_id)
}

/// Exception groups (RFC 0079): a group wrapping N copies of the same error should be one
/// issue titled by that error, not by the wrapper. Returns indices into `excs` in hashing
/// order, or `None` to use the plain list (not a group, or a broken tree).
///
/// Unlike Sentry this only runs when some exception is marked `is_exception_group`, so plain
/// `__cause__` chains that carry ids keep their list order.
fn filter_exception_group(
    excs: &[Exception],
    singles: &[Pair],
) -> Option<(Vec<usize>, Option<i64>)> {
    if excs.len() <= 1 || !excs.iter().any(|e| e.is_exception_group) {
        return None;
    }
    let mut by_id: HashMap<i64, usize> = HashMap::with_capacity(excs.len());
    let mut children: HashMap<i64, Vec<usize>> = HashMap::new();
    // Reversed like Sentry, so children are listed newest first.
    for (i, e) in excs.iter().enumerate().rev() {
        let id = e.exception_id?;
        if by_id.insert(id, i).is_some() || e.parent_id == Some(id) {
            return None;
        }
        if let Some(p) = e.parent_id {
            children.entry(p).or_default().push(i);
        }
    }
    let root = *by_id.get(&0)?;

    fn top_level(
        i: usize,
        excs: &[Exception],
        children: &HashMap<i64, Vec<usize>>,
        out: &mut Vec<usize>,
        depth: usize,
    ) {
        if depth > excs.len() {
            return; // a cycle
        }
        let e = &excs[i];
        if e.is_exception_group {
            for &c in e
                .exception_id
                .and_then(|id| children.get(&id))
                .map_or(&[][..], Vec::as_slice)
            {
                top_level(c, excs, children, out, depth + 1);
            }
        } else {
            out.push(i);
        }
    }
    let mut tops = Vec::new();
    top_level(root, excs, &children, &mut tops, 0);
    tops.sort_by(|a, b| excs[*b].ty.cmp(&excs[*a].ty));
    let mut distinct: Vec<usize> = Vec::new();
    let mut last_hash = None;
    for i in tops {
        let h = singles[i].system.hash();
        if last_hash.as_ref() != Some(&h) {
            distinct.push(i);
            last_hash = Some(h);
        }
    }
    match distinct.as_slice() {
        [] => None,
        [main] => {
            let mut path = vec![*main];
            let mut cur = *main;
            while let Some(&first) = excs[cur]
                .exception_id
                .and_then(|id| children.get(&id))
                .and_then(|c| c.first())
            {
                if path.contains(&first) {
                    break;
                }
                path.push(first);
                cur = first;
            }
            Some((path, excs[*main].exception_id))
        }
        _ => {
            let mut order = vec![root];
            order.extend(distinct);
            Some((order, None))
        }
    }
}

/// The chosen thread's stack, wrapped in a `threads` component.
pub(crate) fn threads(frames: Option<&[Frame]>, ctx: StackCtx) -> Pair {
    let wrap = |st: Option<Component>| {
        let mut c = Component::new("threads");
        match st {
            Some(st) => c.push(st),
            None => {
                c.ignore("ignored because it does not contain exactly one thread with a stacktrace")
            }
        }
        c.contributes_if_any_child("ignored because the thread has no contributing frames");
        c
    };
    match frames {
        Some(f) => {
            let p = stacktrace(f, ctx, &ExceptionData::default());
            Pair {
                app: wrap(Some(p.app)),
                system: wrap(Some(p.system)),
            }
        }
        None => Pair {
            app: wrap(None),
            system: wrap(None),
        },
    }
}
