//! Results as a table on stdout and as JSON for scripts.

use crate::CopyResult;
use crate::proc::Resources;
use serde_json::json;
use std::collections::BTreeMap;

pub struct LoadResult {
    pub label: String,
    pub concurrency: usize,
    pub target_rate: f64,
    pub duration: f64,
    pub sent: u64,
    pub acknowledged: u64,
    pub statuses: BTreeMap<String, u64>,
    /// Sorted.
    pub latencies_us: Vec<u32>,
    pub avg_raw_bytes: usize,
    pub avg_wire_bytes: usize,
    pub resources: Resources,
    pub stored: Option<u64>,
    /// Stored by the time the load ended (a queueing server digests later).
    pub stored_at_load_end: Option<u64>,
    pub issues: Option<u64>,
    pub drain_seconds: Option<f64>,
    /// Requests sent again after 429/503/connection failures (`--retry`).
    pub retries: u64,
    /// The prepared bodies ran out before the duration did.
    pub exhausted: bool,
}

/// The `p`th percentile (nearest rank) of sorted microseconds, in ms.
pub fn percentile_ms(sorted_us: &[u32], p: f64) -> f64 {
    if sorted_us.is_empty() {
        return 0.0;
    }
    let rank = ((p / 100.0) * (sorted_us.len() - 1) as f64).round() as usize;
    f64::from(sorted_us[rank.min(sorted_us.len() - 1)]) / 1000.0
}

impl LoadResult {
    pub fn percentile_ms(&self, p: f64) -> f64 {
        percentile_ms(&self.latencies_us, p)
    }

    pub fn ack_rate(&self) -> f64 {
        self.acknowledged as f64 / self.duration.max(1e-9)
    }

    /// Events stored per second from the start of the load until the
    /// server had stored them (load plus drain): the rate it really keeps.
    pub fn end_to_end_rate(&self) -> Option<f64> {
        let stored = self.stored?;
        Some(stored as f64 / (self.duration + self.drain_seconds.unwrap_or(0.0)).max(1e-9))
    }

    /// Events stored per second while the load ran.
    pub fn stored_during_load_rate(&self) -> Option<f64> {
        Some(self.stored_at_load_end? as f64 / self.duration.max(1e-9))
    }

    pub fn to_json(&self) -> serde_json::Value {
        json!({
            "label": self.label,
            "concurrency": self.concurrency,
            "target_rate": self.target_rate,
            "duration_s": self.duration,
            "sent": self.sent,
            "acknowledged": self.acknowledged,
            "acknowledged_per_s": self.ack_rate(),
            "statuses": self.statuses,
            "latency_ms": {"p50": self.percentile_ms(50.0), "p95": self.percentile_ms(95.0),
                           "p99": self.percentile_ms(99.0), "max": self.percentile_ms(100.0)},
            "avg_raw_bytes": self.avg_raw_bytes,
            "avg_wire_bytes": self.avg_wire_bytes,
            "servers": self.resources.trees.iter().map(|(pid, rss, cpu)| json!({
                "pid": pid, "peak_rss_mib": *rss as f64 / 1048576.0, "cpu_s": cpu,
                "cores": cpu / self.duration.max(1e-9)})).collect::<Vec<_>>(),
            "machine_busy": self.resources.machine_busy,
            "stored": self.stored,
            "stored_at_load_end": self.stored_at_load_end,
            "issues": self.issues,
            "lost": self.stored.map(|s| self.acknowledged.saturating_sub(s)),
            "drain_s": self.drain_seconds,
            "end_to_end_per_s": self.end_to_end_rate(),
            "stored_during_load_per_s": self.stored_during_load_rate(),
            "retries": self.retries,
            "bodies_exhausted": self.exhausted,
        })
    }
}

fn row(name: &str, value: String) {
    println!("| {name:<34} | {value:>24} |");
}

pub fn print_load(r: &LoadResult) {
    println!();
    println!("| {:<34} | {:>24} |", format!("run: {}", r.label), "");
    println!("|{}|{}|", "-".repeat(36), "-".repeat(26));
    row("concurrency", r.concurrency.to_string());
    if r.target_rate > 0.0 {
        row("target rate (ev/s)", format!("{:.0}", r.target_rate));
    }
    row("duration (s)", format!("{:.1}", r.duration));
    row(
        "envelope size raw / wire (B)",
        format!("{} / {}", r.avg_raw_bytes, r.avg_wire_bytes),
    );
    row("requests sent", r.sent.to_string());
    row("acknowledged (2xx)", r.acknowledged.to_string());
    row("acknowledged ev/s", format!("{:.0}", r.ack_rate()));
    row(
        "latency p50 / p95 (ms)",
        format!(
            "{:.1} / {:.1}",
            r.percentile_ms(50.0),
            r.percentile_ms(95.0)
        ),
    );
    row(
        "latency p99 / max (ms)",
        format!(
            "{:.1} / {:.1}",
            r.percentile_ms(99.0),
            r.percentile_ms(100.0)
        ),
    );
    let errors: Vec<String> = r
        .statuses
        .iter()
        .filter(|(k, _)| !k.starts_with('2'))
        .map(|(k, v)| format!("{k}: {v}"))
        .collect();
    row(
        "errors by status",
        if errors.is_empty() {
            "none".into()
        } else {
            errors.join(", ")
        },
    );
    for (pid, rss, cpu) in &r.resources.trees {
        row(
            &format!("server {pid}: peak RSS (MiB)"),
            format!("{:.1}", *rss as f64 / 1048576.0),
        );
        row(
            &format!("server {pid}: CPU (cores)"),
            format!("{:.2}", cpu / r.duration.max(1e-9)),
        );
    }
    row(
        "machine busy",
        format!("{:.0} %", r.resources.machine_busy * 100.0),
    );
    if let Some(stored) = r.stored {
        row("events stored (end to end)", stored.to_string());
        row(
            "lost (acknowledged − stored)",
            r.acknowledged.saturating_sub(stored).to_string(),
        );
    }
    if let Some(issues) = r.issues {
        row("issues created", issues.to_string());
    }
    if let Some(drain) = r.drain_seconds {
        row("drain after load (s)", format!("{drain:.1}"));
    }
    if let Some(rate) = r.stored_during_load_rate() {
        row("stored during load ev/s", format!("{rate:.0}"));
    }
    if let Some(rate) = r.end_to_end_rate() {
        row("end-to-end ev/s (load + drain)", format!("{rate:.1}"));
    }
    if r.retries > 0 {
        row("retried requests", r.retries.to_string());
    }
    if r.exhausted {
        row("note", "all bodies sent before the end".into());
    }
    println!();
}

pub fn print_copy(c: &CopyResult) {
    println!();
    println!("| {:<34} | {:>24} |", "PostgreSQL COPY ceiling", "");
    println!("|{}|{}|", "-".repeat(36), "-".repeat(26));
    row("rows", c.events.to_string());
    row(
        "avg compressed payload (B)",
        (c.payload_bytes / c.events.max(1)).to_string(),
    );
    row("seconds (incl. commit)", format!("{:.2}", c.seconds));
    row("rows/s", format!("{:.0}", c.rate()));
    println!();
}

#[cfg(test)]
mod tests {
    use super::*;

    fn result(stored: Option<u64>, at_end: Option<u64>, drain: Option<f64>) -> LoadResult {
        LoadResult {
            label: "t".into(),
            concurrency: 1,
            target_rate: 0.0,
            duration: 10.0,
            sent: 1000,
            acknowledged: 1000,
            statuses: BTreeMap::new(),
            latencies_us: (1..=100).map(|ms| ms * 1000).collect(),
            avg_raw_bytes: 0,
            avg_wire_bytes: 0,
            resources: Resources::default(),
            stored,
            stored_at_load_end: at_end,
            issues: None,
            drain_seconds: drain,
            retries: 0,
            exhausted: false,
        }
    }

    #[test]
    fn percentiles_are_nearest_rank() {
        let r = result(None, None, None);
        assert_eq!(r.percentile_ms(50.0), 51.0);
        assert_eq!(r.percentile_ms(95.0), 95.0);
        assert_eq!(r.percentile_ms(100.0), 100.0);
        assert_eq!(percentile_ms(&[], 50.0), 0.0);
    }

    #[test]
    fn end_to_end_counts_the_drain() {
        // 1,000 acknowledged in 10 s, 400 stored by then, the rest 40 s later.
        let r = result(Some(1000), Some(400), Some(40.0));
        assert_eq!(r.ack_rate(), 100.0);
        assert_eq!(r.stored_during_load_rate(), Some(40.0));
        assert_eq!(r.end_to_end_rate(), Some(20.0));
        assert_eq!(result(None, None, None).end_to_end_rate(), None);
        assert_eq!(r.to_json()["end_to_end_per_s"], 20.0);
    }
}
