//! Strategy selection and variant assembly (Sentry's `_get_variants_from_strategies`).
//!
//! Strategies run in priority order: exception (chained), threads, bare stacktrace,
//! message. The first with a contributing component wins; the others stay in the tree,
//! marked with why they lost, for the grouping-info view.

use std::borrow::Cow;

use super::component::{Component, ComponentValue};
use super::config::GroupingConfig;
use super::enhancers::{ExceptionData, RuleSet};
use super::event::EventView;
use super::message::normalize_lines;
use super::stacktrace::{
    Pair, StackCtx, chained_exception, stacktrace, threads, wrapped_main_exception,
};

/// A strategy variant before fingerprinting.
#[derive(Debug, Clone)]
pub(crate) struct RawVariant {
    pub name: &'static str,
    pub description: String,
    pub component: Component,
    pub hash: Option<String>,
}

impl RawVariant {
    pub fn contributes(&self) -> bool {
        self.component.contributes && self.hash.is_some()
    }
}

struct Strategy {
    /// Short name used in "... takes precedence" hints.
    label: &'static str,
    pair: Option<Pair>,
    default: Option<Component>,
}

impl Strategy {
    fn contributes(&self) -> bool {
        self.pair
            .as_ref()
            .is_some_and(|p| p.app.contributes || p.system.contributes)
            || self.default.as_ref().is_some_and(|c| c.contributes)
    }
}

/// Runs every applicable strategy and returns the `app`, `system` and `default` variants
/// (only those some strategy produced). May set `view.main_exception_id` from
/// exception-group handling, which later decides the title.
pub(crate) fn strategy_variants(
    view: &mut EventView,
    cfg: &GroupingConfig,
    rules: &RuleSet,
) -> Vec<RawVariant> {
    let ctx = StackCtx { cfg, rules: *rules };
    let mut strategies: Vec<Strategy> = Vec::with_capacity(4);
    if !view.exceptions.is_empty() {
        let (pair, main_id) = chained_exception(&view.exceptions, ctx);
        if main_id.is_some() {
            view.main_exception_id = main_id;
        } else if view.exceptions.len() > 1 {
            view.title_exception_id = wrapped_main_exception(&view.exceptions);
        }
        strategies.push(Strategy {
            label: "exception",
            pair: Some(pair),
            default: None,
        });
    }
    if !view.threads.is_empty() {
        let frames = view.grouping_thread().and_then(|t| t.frames.as_deref());
        strategies.push(Strategy {
            label: "thread stacktrace",
            pair: Some(threads(frames, ctx)),
            default: None,
        });
    }
    if let Some(frames) = view.stacktrace.as_deref() {
        strategies.push(Strategy {
            label: "stacktrace",
            pair: Some(stacktrace(frames, ctx, &ExceptionData::default())),
            default: None,
        });
    }
    if let Some(msg) = view.message_template.or(view.message_formatted) {
        let mut c = Component::new("message");
        c.values.push(ComponentValue::Value(normalize_lines(
            msg,
            cfg.message_lines,
        )));
        strategies.push(Strategy {
            label: "message",
            pair: None,
            default: Some(c),
        });
    }

    // Later strategies lose to the first contributing one.
    let mut winner: Option<&'static str> = None;
    let mut winner_desc = "";
    for s in &mut strategies {
        match winner {
            None if s.contributes() => {
                winner = Some(s.label);
                winner_desc = s.label;
            }
            None => {}
            Some(w) => {
                let hint = precedence_hint(w);
                if let Some(p) = &mut s.pair {
                    p.app.ignore(hint);
                    p.system.ignore(hint);
                }
                if let Some(c) = &mut s.default {
                    c.ignore(hint);
                }
            }
        }
    }

    let mut app = Component::new("app");
    let mut system = Component::new("system");
    let mut default = Component::new("default");
    let (mut has_pair, mut has_default) = (false, false);
    for s in strategies {
        if let Some(p) = s.pair {
            app.push(p.app);
            system.push(p.system);
            has_pair = true;
        }
        if let Some(c) = s.default {
            default.push(c);
            has_default = true;
        }
    }
    let mut out = Vec::with_capacity(3);
    if has_pair {
        app.contributes_if_any_child("ignored because no in-app component contributes");
        system.contributes_if_any_child("ignored because no component contributes");
        // When a stack contributes somewhere, a variant that fell back to type+value (an
        // app variant without in-app frames) must not create its own issue.
        let app_stack = app.find_contributing("stacktrace").is_some();
        let sys_stack = system.find_contributing("stacktrace").is_some();
        if sys_stack && !app_stack {
            app.ignore("ignored because this variant does not have a contributing stacktrace, but other variants do");
        }
        if app_stack && !sys_stack {
            system.ignore("ignored because this variant does not have a contributing stacktrace, but other variants do");
        }
        let app_hash = app.hash();
        let mut sys_hash = system.hash();
        if app_hash.is_some() && sys_hash == app_hash {
            system.ignore("ignored because hash matches app variant");
            sys_hash = None;
        }
        out.push(RawVariant {
            name: "app",
            description: describe("in-app", &app, winner_desc),
            component: app,
            hash: app_hash,
        });
        out.push(RawVariant {
            name: "system",
            description: describe("system", &system, winner_desc),
            component: system,
            hash: sys_hash,
        });
    }
    if has_default {
        default.contributes_if_any_child("ignored because no component contributes");
        let hash = default.hash();
        out.push(RawVariant {
            name: "default",
            description: "message".to_owned(),
            component: default,
            hash,
        });
    }
    out
}

fn precedence_hint(winner: &str) -> &'static str {
    match winner {
        "exception" => "exception takes precedence",
        "thread stacktrace" => "thread stacktrace takes precedence",
        "stacktrace" => "stacktrace takes precedence",
        _ => "other strategy takes precedence",
    }
}

fn describe(prefix: &str, c: &Component, winner: &str) -> String {
    let what = match winner {
        "exception" if c.find_contributing("stacktrace").is_some() => "exception stacktrace",
        "exception" => "exception (type and value)",
        "thread stacktrace" => "thread stacktrace",
        "stacktrace" => "stacktrace",
        _ => "nothing",
    };
    format!("{prefix} {what}")
}

/// The variant every event without anything to group by gets: one issue per project.
pub(crate) fn fallback() -> RawVariant {
    let mut c = Component::new("fallback");
    c.hint = Some(Cow::Borrowed("nothing to group by"));
    RawVariant {
        name: "fallback",
        description: "fallback: no exception, stacktrace or message".to_owned(),
        component: c,
        hash: Some(super::component::empty_hash()),
    }
}
