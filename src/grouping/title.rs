//! Issue title, culprit and metadata (Sentry's `ErrorEvent`/`DefaultEvent` metadata and
//! `get_culprit`). None of this feeds the hash: titles and culprits are display only, and
//! the issue shows the latest event's.

use std::borrow::Cow;
use std::sync::LazyLock;

use regex::Regex;

use super::IssueMetadata;
use super::config::GroupingConfig;
use super::event::{EventView, Exception, Frame};
use super::frame::{is_js, is_native, trim_native_function_v2};
use super::message::format_params;

const MAX_TYPE_LEN: usize = 128;
const MAX_VALUE_LEN: usize = 1024;
const MAX_CULPRIT_LEN: usize = 200;
const MAX_MESSAGE_TITLE_LEN: usize = 100;

/// Cuts to at most `n` characters, ending in `...` when anything was cut.
pub(crate) fn truncatechars(s: &str, n: usize) -> String {
    if s.chars().count() <= n {
        return s.to_owned();
    }
    let mut out: String = s.chars().take(n.saturating_sub(3)).collect();
    out.push_str("...");
    out
}

fn trim_chars(s: &str, n: usize) -> &str {
    match s.char_indices().nth(n) {
        Some((i, _)) => &s[..i],
        None => s,
    }
}

fn first_line(s: &str) -> &str {
    s.lines()
        .map(str::trim)
        .find(|l| !l.is_empty())
        .unwrap_or("")
}

/// Sentry's `get_function_name_for_frame`: the function as sent, native symbols trimmed
/// (`void app::run(int)` → `app::run`) unless the SDK sent the raw symbol separately.
pub(crate) fn display_function<'a>(f: &Frame<'a>) -> Option<Cow<'a, str>> {
    let func = f.function?;
    if f.raw_function.is_none() && is_native(f.platform) {
        Some(trim_native_function_v2(func))
    } else {
        Some(Cow::Borrowed(func))
    }
}

fn usable_function(f: &Frame) -> bool {
    !matches!(f.function, None | Some("<redacted>" | "<unknown>"))
}

/// The frame an issue points at: the top-most in-app frame of the main exception's stack,
/// else of the top-level stack, else of the only thread; else the top-most frame. With
/// `need_function`, frames without a usable function name are skipped.
pub(crate) fn crash_frame<'v, 'a>(
    view: &'v EventView<'a>,
    need_function: bool,
) -> Option<&'v Frame<'a>> {
    crash_frame_in(view, view.main_exception(), need_function)
}

fn crash_frame_in<'v, 'a>(
    view: &'v EventView<'a>,
    exception: Option<&'v Exception<'a>>,
    need_function: bool,
) -> Option<&'v Frame<'a>> {
    let frames = exception
        .and_then(|e| e.frames.as_deref())
        .filter(|f| !f.is_empty())
        .or(view.stacktrace.as_deref().filter(|f| !f.is_empty()))
        .or(match view.threads.as_slice() {
            [t] => t.frames.as_deref(),
            _ => None,
        })?;
    let mut default = None;
    for f in frames.iter().rev() {
        if need_function && !usable_function(f) {
            continue;
        }
        if f.in_app {
            return Some(f);
        }
        default = default.or(Some(f));
    }
    default
}

/// The text that names a message issue: the template (`Payment %s failed`) when the SDK
/// sent one that was really filled in (it has params or placeholders and differs from the
/// formatted text), so that an issue whose events differ only by their parameters is
/// titled by what they share; else the formatted message. Each event keeps its own
/// formatted message; only the title is the template.
pub(crate) fn message_title_text(view: &EventView) -> Option<String> {
    let formatted = formatted_message(view);
    if let Some(t) = view.message_template
        && formatted.as_deref().is_some_and(|f| f != t)
        && (has_params(view.message_params) || has_placeholders(t))
        && !first_line(t).is_empty()
    {
        return Some(t.to_owned());
    }
    formatted
}

fn has_params(p: Option<&serde_json::Value>) -> bool {
    match p {
        Some(serde_json::Value::Array(a)) => !a.is_empty(),
        Some(serde_json::Value::Object(o)) => !o.is_empty(),
        Some(serde_json::Value::Null) | None => false,
        Some(_) => true,
    }
}

/// printf-style (`%s`, `%(name)s`, `%05.2f`), and `{}`/`{0}`/`{name}` placeholders.
static PLACEHOLDER_RE: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"%(?:\([^)]*\))?[-#0 +]*\d*(?:\.\d+)?[sdifrxXeEgGcoOuj]|\{[\w.:!]*\}").unwrap()
});

fn has_placeholders(t: &str) -> bool {
    PLACEHOLDER_RE.is_match(t)
}

/// The message as a user would read it: `formatted`, else the template with its params.
pub(crate) fn formatted_message(view: &EventView) -> Option<String> {
    if let Some(f) = view.message_formatted {
        return Some(f.to_owned());
    }
    let t = view.message_template?;
    Some(
        view.message_params
            .and_then(|p| format_params(t, p))
            .unwrap_or_else(|| t.to_owned()),
    )
}

pub(crate) fn metadata_and_title(
    view: &EventView,
    cfg: &GroupingConfig,
) -> (IssueMetadata, String) {
    let mut md = IssueMetadata::default();
    if let Some(e) = view.title_exception() {
        md.value = Some(trim_chars(e.value.unwrap_or(""), MAX_VALUE_LEN).to_owned());
        if !e.synthetic {
            md.ty = Some(trim_chars(e.ty.unwrap_or("Error"), MAX_TYPE_LEN).to_owned());
        }
        if let Some(f) = crash_frame_in(view, Some(e), true) {
            md.filename = f.filename.or(f.abs_path).map(str::to_owned);
            md.function = display_function(f).map(Cow::into_owned);
        }
        let title = match (&md.ty, md.value.as_deref()) {
            (None, _) => md
                .function
                .clone()
                .unwrap_or_else(|| "<unknown>".to_owned()),
            (Some(ty), None) => ty.clone(),
            (Some(ty), Some(v)) if first_line(v).is_empty() => ty.clone(),
            (Some(ty), Some(v)) => {
                format!(
                    "{ty}: {}",
                    truncatechars(first_line(v), cfg.title_value_len)
                )
            }
        };
        return (md, title);
    }
    let formatted = formatted_message(view);
    match message_title_text(view) {
        Some(text) if !first_line(&text).is_empty() => {
            let title = truncatechars(first_line(&text), MAX_MESSAGE_TITLE_LEN);
            let msg = formatted.unwrap_or(text);
            md.value = Some(trim_chars(&msg, MAX_VALUE_LEN).to_owned());
            (md, title)
        }
        _ => (md, "<unlabeled event>".to_owned()),
    }
}

/// `culprit` sent by the client, else the transaction, else "where it happened" from the
/// stack, else the request URL.
pub(crate) fn culprit(view: &EventView) -> String {
    let c = view
        .culprit
        .map(str::to_owned)
        .or_else(|| view.transaction.map(str::to_owned))
        .unwrap_or_else(|| generated_culprit(view));
    truncatechars(&c, MAX_CULPRIT_LEN)
}

fn generated_culprit(view: &EventView) -> String {
    let frames = if !view.exceptions.is_empty() {
        if view.exceptions.last().is_some_and(|e| e.synthetic) {
            return String::new();
        }
        view.exceptions
            .iter()
            .rev()
            .find_map(|e| e.frames.as_deref().filter(|f| !f.is_empty()))
    } else {
        view.stacktrace.as_deref().filter(|f| !f.is_empty())
    };
    let from_stack = frames.and_then(|frames| {
        let mut default = None;
        for f in frames.iter().rev() {
            if f.in_app {
                let c = frame_culprit(f);
                if !c.is_empty() {
                    return Some(c);
                }
            } else if default.is_none() {
                default = Some(frame_culprit(f));
            }
        }
        default
    });
    from_stack
        .filter(|c| !c.is_empty())
        .or_else(|| view.request_url.map(str::to_owned))
        .unwrap_or_default()
}

fn frame_culprit(f: &Frame) -> String {
    let function = f.function.unwrap_or("?");
    if matches!(f.platform, "objc" | "cocoa" | "native") {
        return function.to_owned();
    }
    let Some(loc) = f.module.or(f.filename) else {
        return String::new();
    };
    if is_js(f.platform) {
        format!("{function}({loc})")
    } else {
        format!("{loc} in {function}")
    }
}
