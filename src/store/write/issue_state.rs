//! What one new event does to an existing issue: Sentry's regression rules
//! for resolved issues (reference §10.1) and the wake-up rules for ignored
//! ones. Pure, so the batch writer can replay a whole batch in memory.

use chrono::{DateTime, Utc};

#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct IssueState {
    pub id: i64,
    pub project_id: i64,
    pub status: String,
    pub substatus: Option<String>,
    /// None (plain resolve), `next_release` or `in_release`.
    pub resolution: Option<String>,
    pub resolved_in: Option<String>,
    pub ignored_until: Option<DateTime<Utc>>,
    /// Absolute `times_seen` at which an ignored issue wakes.
    pub ignored_until_count: Option<i64>,
    /// Absolute `user_count` at which an ignored issue wakes.
    pub ignored_until_users: Option<i64>,
    pub times_seen: i64,
    pub user_count: i64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transition {
    /// A resolved issue was seen again: unresolved, substatus `regressed`.
    Regressed,
    /// An ignored issue's snooze ended: unresolved, substatus `escalating`.
    Woke,
}

impl Transition {
    pub fn activity_kind(self) -> &'static str {
        match self {
            Transition::Regressed => "set_regression",
            Transition::Woke => "set_escalating",
        }
    }

    pub fn alert_kind(self) -> &'static str {
        match self {
            Transition::Regressed => "regression",
            Transition::Woke => "escalating",
        }
    }
}

impl IssueState {
    /// Counts one event and returns the status change it caused, if any.
    /// `new_user`: the event's user had not been seen on this issue.
    /// `release_after(release, reference, inclusive)` orders releases.
    pub fn apply(
        &mut self,
        release: Option<&str>,
        new_user: bool,
        now: DateTime<Utc>,
        release_after: impl FnOnce(&str, &str, bool) -> bool,
    ) -> Option<Transition> {
        self.times_seen += 1;
        self.user_count += i64::from(new_user);
        let regressed = self.status == "resolved"
            && match (
                self.resolution.as_deref(),
                release,
                self.resolved_in.as_deref(),
            ) {
                (None, _, _) => true,
                // A resolution in a release, but the event names none.
                (Some(_), None, _) => false,
                (Some(kind), Some(release), Some(reference)) => {
                    release_after(release, reference, kind == "in_release")
                }
                (Some(_), Some(_), None) => true,
            };
        let woke = self.status == "ignored"
            && (self.ignored_until.is_some_and(|t| t <= now)
                || self
                    .ignored_until_count
                    .is_some_and(|n| self.times_seen >= n)
                || self
                    .ignored_until_users
                    .is_some_and(|n| self.user_count >= n));
        let transition = if regressed {
            Transition::Regressed
        } else if woke {
            Transition::Woke
        } else {
            return None;
        };
        self.status = "unresolved".into();
        self.substatus = Some(
            match transition {
                Transition::Regressed => "regressed",
                Transition::Woke => "escalating",
            }
            .into(),
        );
        self.resolution = None;
        self.resolved_in = None;
        self.ignored_until = None;
        self.ignored_until_count = None;
        self.ignored_until_users = None;
        Some(transition)
    }
}

/// Whether `release` comes after `reference` (or is it, when `inclusive`):
/// by semantic version when both parse as one, else by when Snag first saw
/// each release (`first_seen`). A release never seen is the newest; a
/// reference never seen (resolved in a future release) is newer than
/// everything.
pub fn release_is_after(
    release: &str,
    reference: &str,
    inclusive: bool,
    first_seen: impl Fn(&str) -> Option<DateTime<Utc>>,
) -> bool {
    if release == reference {
        return inclusive;
    }
    if let (Some(a), Some(b)) = (semver_key(release), semver_key(reference)) {
        return a > b;
    }
    match (first_seen(release), first_seen(reference)) {
        (_, None) => false,
        (None, Some(_)) => true,
        (Some(a), Some(b)) => a > b,
    }
}

/// `pkg@1.2.3`, `v1.2`, `1.2.3-rc1` → comparable numbers; None when the
/// release is not a version (a commit hash, a date).
pub(crate) fn semver_key(release: &str) -> Option<(u64, u64, u64, bool)> {
    let version = release.rsplit('@').next()?.trim_start_matches(['v', 'V']);
    let (core, pre) = match version.split_once(['-', '+']) {
        Some((core, _)) => (core, true),
        None => (version, false),
    };
    let mut parts = core.split('.');
    let major = parts.next()?.parse().ok()?;
    let minor = parts.next().map_or(Some(0), |p| p.parse().ok())?;
    let patch = parts.next().map_or(Some(0), |p| p.parse().ok())?;
    if parts.next().is_some() {
        return None;
    }
    // A pre-release sorts before its release.
    Some((major, minor, patch, !pre))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn state(status: &str) -> IssueState {
        IssueState {
            id: 1,
            project_id: 1,
            status: status.into(),
            substatus: None,
            resolution: None,
            resolved_in: None,
            ignored_until: None,
            ignored_until_count: None,
            ignored_until_users: None,
            times_seen: 10,
            user_count: 2,
        }
    }

    fn never(_: &str, _: &str, _: bool) -> bool {
        panic!("releases need not be compared")
    }

    #[test]
    fn versions_compare_like_semver() {
        assert!(semver_key("shop@1.10.0") > semver_key("shop@1.9.3"));
        assert!(semver_key("1.2.0") > semver_key("1.2.0-rc1"));
        assert_eq!(semver_key("v2"), Some((2, 0, 0, true)));
        assert_eq!(semver_key("4f2a9c1"), None);
        assert_eq!(semver_key("2024.01.02.3"), None);
    }

    #[test]
    fn releases_without_versions_order_by_first_seen() {
        let t = |s: i64| DateTime::from_timestamp(s, 0);
        let seen = |v: &str| match v {
            "abc" => t(100),
            "def" => t(200),
            _ => None,
        };
        assert!(release_is_after("def", "abc", false, seen));
        assert!(!release_is_after("abc", "def", false, seen));
        assert!(release_is_after("new-one", "abc", false, seen));
        assert!(!release_is_after("abc", "future", false, seen));
        assert!(release_is_after("abc", "abc", true, seen));
        assert!(!release_is_after("abc", "abc", false, seen));
    }

    #[test]
    fn plain_resolution_regresses_on_any_event() {
        let mut s = state("resolved");
        assert_eq!(
            s.apply(None, false, Utc::now(), never),
            Some(Transition::Regressed)
        );
        assert_eq!(
            (s.status.as_str(), s.substatus.as_deref()),
            ("unresolved", Some("regressed"))
        );
        assert_eq!(s.times_seen, 11);
        // Only the first event regresses.
        assert_eq!(s.apply(None, false, Utc::now(), never), None);
    }

    #[test]
    fn release_resolutions_need_a_later_release() {
        let mut s = state("resolved");
        s.resolution = Some("next_release".into());
        s.resolved_in = Some("1.0".into());
        assert_eq!(s.apply(None, false, Utc::now(), never), None);
        assert_eq!(
            s.apply(Some("1.0"), false, Utc::now(), |r, b, inc| {
                release_is_after(r, b, inc, |_| None)
            }),
            None
        );
        assert_eq!(
            s.apply(Some("1.1"), false, Utc::now(), |r, b, inc| {
                release_is_after(r, b, inc, |_| None)
            }),
            Some(Transition::Regressed)
        );

        let mut s = state("resolved");
        s.resolution = Some("in_release".into());
        s.resolved_in = Some("2.0".into());
        let after = |r: &str, b: &str, inc| release_is_after(r, b, inc, |_| None);
        assert_eq!(s.clone().apply(Some("1.9"), false, Utc::now(), after), None);
        assert_eq!(
            s.apply(Some("2.0"), false, Utc::now(), after),
            Some(Transition::Regressed)
        );
    }

    #[test]
    fn ignored_issues_wake_on_time_count_or_users() {
        let now = Utc::now();
        let mut s = state("ignored");
        assert_eq!(s.apply(None, true, now, never), None);

        let mut s = state("ignored");
        s.ignored_until = Some(now - chrono::TimeDelta::seconds(1));
        assert_eq!(s.apply(None, false, now, never), Some(Transition::Woke));
        assert_eq!(s.ignored_until, None);

        let mut s = state("ignored");
        s.ignored_until_count = Some(12);
        assert_eq!(s.apply(None, false, now, never), None);
        assert_eq!(s.apply(None, false, now, never), Some(Transition::Woke));

        let mut s = state("ignored");
        s.ignored_until_users = Some(4);
        assert_eq!(s.apply(None, true, now, never), None);
        assert_eq!(s.apply(None, false, now, never), None);
        assert_eq!(s.apply(None, true, now, never), Some(Transition::Woke));
        assert_eq!(s.substatus.as_deref(), Some("escalating"));
    }
}
