//! Per-key "events per minute" limiting and the `X-Sentry-Rate-Limits` header format.
//!
//! The limiter is a sliding-window counter: the previous minute's count weighted by how much
//! of it still overlaps the trailing 60 s, plus the current minute's count. It needs two
//! counters per key instead of a timestamp log, and does not allow the 2× burst that a plain
//! fixed window permits at a window boundary.

use std::collections::HashMap;
use std::collections::hash_map::DefaultHasher;
use std::hash::{Hash, Hasher};
use std::sync::Mutex;
use std::time::{Duration, Instant};

const WINDOW: Duration = Duration::from_secs(60);
const SHARDS: usize = 16;
const DEFAULT_MAX_KEYS: usize = 100_000;

#[derive(Debug, Clone, Copy)]
struct Window {
    start: Instant,
    prev: u64,
    curr: u64,
}

impl Window {
    fn advance(&mut self, now: Instant) {
        let elapsed = now.saturating_duration_since(self.start);
        if elapsed < WINDOW {
            return;
        }
        if elapsed < 2 * WINDOW {
            self.prev = self.curr;
            self.start += WINDOW;
        } else {
            self.prev = 0;
            self.start = now;
        }
        self.curr = 0;
    }

    fn is_stale(&self, now: Instant) -> bool {
        now.saturating_duration_since(self.start) >= 2 * WINDOW
    }
}

/// Thread-safe; memory is bounded by `max_keys` entries.
#[derive(Debug)]
pub struct KeyRateLimiter {
    shards: Vec<Mutex<HashMap<String, Window>>>,
    max_per_shard: usize,
}

impl Default for KeyRateLimiter {
    fn default() -> Self {
        Self::new()
    }
}

impl KeyRateLimiter {
    /// Tracks up to 100 000 keys.
    pub fn new() -> Self {
        Self::with_capacity(DEFAULT_MAX_KEYS)
    }

    pub fn with_capacity(max_keys: usize) -> Self {
        KeyRateLimiter {
            shards: (0..SHARDS).map(|_| Mutex::new(HashMap::new())).collect(),
            max_per_shard: max_keys.div_ceil(SHARDS).max(1),
        }
    }

    /// Admit `n` events for `key` under `limit_per_minute`, or return the whole seconds to wait.
    ///
    /// `limit_per_minute == 0` means unlimited. A rejected call consumes nothing, so a client
    /// hammering a limited key does not extend its own ban. A batch larger than the limit can
    /// never pass and gets the full window as its retry time.
    pub fn check(&self, key: &str, limit_per_minute: u32, n: u32, now: Instant) -> Result<(), u64> {
        if limit_per_minute == 0 {
            return Ok(());
        }
        let limit = u64::from(limit_per_minute);
        let n = u64::from(n);
        if n > limit {
            return Err(WINDOW.as_secs());
        }
        let shard = &self.shards[shard_of(key)];
        let mut map = shard.lock().unwrap_or_else(|p| p.into_inner());
        if !map.contains_key(key) && map.len() >= self.max_per_shard {
            evict(&mut map, now);
        }
        let w = map.entry(key.to_owned()).or_insert(Window {
            start: now,
            prev: 0,
            curr: 0,
        });
        w.advance(now);

        let elapsed = now.saturating_duration_since(w.start).as_secs_f64();
        let overlap = (1.0 - elapsed / WINDOW.as_secs_f64()).max(0.0);
        let estimate = w.prev as f64 * overlap + w.curr as f64;
        // The epsilon keeps float rounding from rejecting a request at exactly the advertised
        // retry time.
        if estimate + n as f64 <= limit as f64 + 1e-9 {
            w.curr += n;
            return Ok(());
        }
        Err(retry_after(w, elapsed, limit, n))
    }

    /// Number of keys currently tracked (for metrics and tests).
    pub fn len(&self) -> usize {
        self.shards
            .iter()
            .map(|s| s.lock().unwrap_or_else(|p| p.into_inner()).len())
            .sum()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

fn shard_of(key: &str) -> usize {
    let mut h = DefaultHasher::new();
    key.hash(&mut h);
    (h.finish() as usize) % SHARDS
}

/// Drop stale windows; if none are stale, drop the oldest one. Evicting a live key only
/// forgets its count (fails open), which is the right trade for a bounded map.
fn evict(map: &mut HashMap<String, Window>, now: Instant) {
    let before = map.len();
    map.retain(|_, w| !w.is_stale(now));
    if map.len() < before {
        return;
    }
    if let Some(oldest) = map
        .iter()
        .min_by_key(|(_, w)| w.start)
        .map(|(k, _)| k.clone())
    {
        map.remove(&oldest);
    }
}

/// Seconds until `prev * overlap(t) + curr + n <= limit` holds, rounded up, at least 1.
fn retry_after(w: &Window, elapsed: f64, limit: u64, n: u64) -> u64 {
    let window = WINDOW.as_secs_f64();
    let wait = if w.curr + n > limit {
        // Only the next window's start can free enough room: then `curr` becomes `prev` and
        // decays linearly. Solve curr * (1 - t/60) + n <= limit for t into the next window.
        let until_next = window - elapsed;
        let room = (limit - n) as f64;
        let t = if w.curr == 0 {
            0.0
        } else {
            (window * (1.0 - room / w.curr as f64)).max(0.0)
        };
        until_next + t
    } else {
        let room = (limit - w.curr - n) as f64;
        if w.prev == 0 {
            0.0
        } else {
            (window * (1.0 - room / w.prev as f64) - elapsed).max(0.0)
        }
    };
    (wait.ceil() as u64).clamp(1, 2 * WINDOW.as_secs())
}

/// One entry of Relay's `X-Sentry-Rate-Limits`:
/// `{retry_after}:{cat1;cat2…}:{scope}[:{reason_code}]`. Empty `categories` means all
/// categories. Join several entries with `", "`.
pub fn format_rate_limits(
    retry_after: u64,
    categories: &[&str],
    scope: &str,
    reason: Option<&str>,
) -> String {
    let mut s = format!("{retry_after}:{}:{scope}", categories.join(";"));
    if let Some(reason) = reason.filter(|r| !r.is_empty()) {
        s.push(':');
        s.push_str(reason);
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_format_matches_relay() {
        assert_eq!(
            format_rate_limits(60, &["transaction"], "key", None),
            "60:transaction:key"
        );
        assert_eq!(
            format_rate_limits(
                2700,
                &["default", "error", "security"],
                "organization",
                Some("quota_exceeded")
            ),
            "2700:default;error;security:organization:quota_exceeded"
        );
        assert_eq!(
            format_rate_limits(60, &[], "organization", None),
            "60::organization"
        );
        assert_eq!(format_rate_limits(1, &[], "key", Some("")), "1::key");
    }

    #[test]
    fn header_parses_like_sentry_python() {
        // sentry-python: limit.strip().split(":"), int(retry_after), categories split on ';'.
        let h = format_rate_limits(42, &["error", "default"], "key", Some("rate"));
        let parts: Vec<&str> = h.split(':').collect();
        assert_eq!(parts[0].parse::<u64>().unwrap(), 42);
        assert_eq!(
            parts[1].split(';').collect::<Vec<_>>(),
            ["error", "default"]
        );
    }

    #[test]
    fn zero_means_unlimited() {
        let rl = KeyRateLimiter::default();
        let t = Instant::now();
        for _ in 0..10_000 {
            assert!(rl.check("k", 0, 1, t).is_ok());
        }
        assert!(rl.is_empty());
    }

    #[test]
    fn limits_within_a_minute_and_recovers() {
        let rl = KeyRateLimiter::default();
        let t0 = Instant::now();
        for i in 0..10 {
            assert!(rl.check("k", 10, 1, t0 + Duration::from_secs(i)).is_ok());
        }
        let retry = rl
            .check("k", 10, 1, t0 + Duration::from_secs(10))
            .unwrap_err();
        assert!((1..=120).contains(&retry), "{retry}");
        // Other keys are independent.
        assert!(
            rl.check("other", 10, 1, t0 + Duration::from_secs(10))
                .is_ok()
        );
        // Rejections consume nothing; after the advertised wait the request passes.
        let later = t0 + Duration::from_secs(10 + retry);
        assert!(
            rl.check("k", 10, 1, later).is_ok(),
            "retry {retry} too short"
        );
        // Two idle minutes reset everything.
        let much_later = t0 + Duration::from_secs(400);
        for _ in 0..10 {
            assert!(rl.check("k", 10, 1, much_later).is_ok());
        }
    }

    #[test]
    fn retry_after_is_not_too_short() {
        let rl = KeyRateLimiter::default();
        let t0 = Instant::now();
        // Fill the first window, then spread traffic into the second.
        assert!(rl.check("k", 100, 100, t0).is_ok());
        let mut now = t0 + Duration::from_secs(61);
        let mut rejected = 0;
        for _ in 0..200 {
            match rl.check("k", 100, 1, now) {
                Ok(()) => {}
                Err(secs) => {
                    rejected += 1;
                    // A client that waits exactly the advertised time gets through.
                    now += Duration::from_secs(secs);
                    assert!(rl.check("k", 100, 1, now).is_ok(), "retry {secs}");
                }
            }
            now += Duration::from_millis(300);
        }
        assert!(rejected > 0);
    }

    #[test]
    fn sliding_window_blocks_boundary_burst() {
        let rl = KeyRateLimiter::default();
        let t0 = Instant::now();
        assert!(rl.check("k", 60, 60, t0 + Duration::from_secs(59)).is_ok());
        // A fixed window would admit another 60 at t=60s.
        assert!(rl.check("k", 60, 30, t0 + Duration::from_secs(61)).is_err());
    }

    #[test]
    fn oversized_batch_never_passes() {
        let rl = KeyRateLimiter::default();
        assert_eq!(rl.check("k", 5, 6, Instant::now()), Err(60));
    }

    #[test]
    fn time_going_backwards_is_harmless() {
        let rl = KeyRateLimiter::default();
        let t0 = Instant::now() + Duration::from_secs(100);
        assert!(rl.check("k", 2, 1, t0).is_ok());
        assert!(rl.check("k", 2, 1, t0 - Duration::from_secs(50)).is_ok());
        assert!(rl.check("k", 2, 1, t0 - Duration::from_secs(90)).is_err());
    }

    #[test]
    fn memory_is_bounded() {
        let rl = KeyRateLimiter::with_capacity(64);
        let t = Instant::now();
        for i in 0..10_000 {
            let _ = rl.check(&format!("key-{i}"), 10, 1, t);
        }
        assert!(rl.len() <= 64 + SHARDS, "{}", rl.len());
    }

    #[test]
    fn concurrent_use() {
        let rl = std::sync::Arc::new(KeyRateLimiter::default());
        let t = Instant::now();
        let ok = std::sync::Arc::new(std::sync::atomic::AtomicU32::new(0));
        let threads: Vec<_> = (0..4)
            .map(|_| {
                let rl = rl.clone();
                let ok = ok.clone();
                std::thread::spawn(move || {
                    for _ in 0..100 {
                        if rl.check("shared", 50, 1, t).is_ok() {
                            ok.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                        }
                    }
                })
            })
            .collect();
        for th in threads {
            th.join().unwrap();
        }
        assert_eq!(ok.load(std::sync::atomic::Ordering::Relaxed), 50);
    }
}
