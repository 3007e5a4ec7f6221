//! Prometheus text exposition, hand-rolled: a handful of counters and one
//! histogram do not justify a metrics framework.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::Mutex;
use std::time::Duration;

const LATENCY_BUCKETS: &[f64] = &[0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0];
/// Requests per group commit; the writer takes up to SNAG_PIPELINE_BATCH.
const BATCH_SIZE_BUCKETS: &[f64] = &[1.0, 2.0, 5.0, 10.0, 25.0, 50.0, 100.0, 250.0, 500.0, 1000.0];

struct Histogram {
    bounds: &'static [f64],
    buckets: Vec<u64>,
    count: u64,
    sum: f64,
}

impl Default for Histogram {
    fn default() -> Self {
        Self::with_bounds(LATENCY_BUCKETS)
    }
}

impl Histogram {
    fn with_bounds(bounds: &'static [f64]) -> Self {
        Self {
            bounds,
            buckets: vec![0; bounds.len()],
            count: 0,
            sum: 0.0,
        }
    }

    fn observe(&mut self, value: f64) {
        for (i, bound) in self.bounds.iter().enumerate() {
            if value <= *bound {
                self.buckets[i] += 1;
            }
        }
        self.count += 1;
        self.sum += value;
    }
}

#[derive(Default)]
struct Inner {
    requests: BTreeMap<(String, String, u16), u64>,
    request_seconds: BTreeMap<String, Histogram>,
    /// (outcome, reason, category) → quantity: accepted/rejected ingest items.
    ingest: BTreeMap<(&'static str, String, &'static str), u64>,
    batches: u64,
    batch_items: u64,
    batch_seconds: Histogram,
    /// (outcome, channel) → alert notifications: sent, failed, retried.
    alerts: BTreeMap<(&'static str, &'static str), u64>,
    batch_sizes: Option<Histogram>,
    /// kind ("expired_events", "capped_events", "attachments", …) → rows.
    purged: BTreeMap<&'static str, u64>,
    purge_passes: u64,
    last_purge_seconds: f64,
}

/// Alert outcomes and channels `/metrics` always lists, zeros included, so
/// dashboards and alerting rules find the series before the first alert.
const ALERT_OUTCOMES: [&str; 3] = ["sent", "failed", "retried"];
const ALERT_CHANNELS: [&str; 2] = ["email", "webhook"];

pub struct Metrics {
    inner: Mutex<Inner>,
    started: std::time::SystemTime,
}

impl Default for Metrics {
    fn default() -> Self {
        Self {
            inner: Mutex::default(),
            started: std::time::SystemTime::now(),
        }
    }
}

fn escape(label: &str) -> String {
    label
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

impl Metrics {
    fn with<R>(&self, f: impl FnOnce(&mut Inner) -> R) -> R {
        let mut guard = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        f(&mut guard)
    }

    pub fn observe_request(&self, method: &str, route: &str, status: u16, elapsed: Duration) {
        self.with(|m| {
            *m.requests
                .entry((method.to_string(), route.to_string(), status))
                .or_default() += 1;
            m.request_seconds
                .entry(route.to_string())
                .or_default()
                .observe(elapsed.as_secs_f64());
        });
    }

    /// `outcome` is "accepted" or "rejected"; `category` a Sentry data
    /// category (error, transaction, attachment, session, …).
    pub fn ingest(&self, outcome: &'static str, reason: &str, category: &'static str, n: u64) {
        self.with(|m| {
            *m.ingest
                .entry((outcome, reason.to_string(), category))
                .or_default() += n
        });
    }

    pub fn observe_batch(&self, items: usize, elapsed: Duration) {
        self.with(|m| {
            m.batches += 1;
            m.batch_items += items as u64;
            m.batch_seconds.observe(elapsed.as_secs_f64());
            m.batch_sizes
                .get_or_insert_with(|| Histogram::with_bounds(BATCH_SIZE_BUCKETS))
                .observe(items as f64);
        });
    }

    pub fn observe_purge(&self, report: &crate::ops::retention::PurgeReport, elapsed: Duration) {
        self.with(|m| {
            m.purge_passes += 1;
            m.last_purge_seconds = elapsed.as_secs_f64();
            for (kind, n) in [
                ("expired_events", report.expired_events),
                ("capped_events", report.capped_events),
                ("attachments", report.attachments),
                ("other", report.side_rows),
                ("issues", report.issues),
            ] {
                *m.purged.entry(kind).or_default() += n;
            }
        });
    }

    /// `outcome`: "sent", "failed" (gave up) or "retried" (an attempt
    /// failed, another follows); `channel`: "email" or "webhook".
    pub fn alert(&self, outcome: &'static str, channel: &'static str, n: u64) {
        self.with(|m| *m.alerts.entry((outcome, channel)).or_default() += n);
    }

    pub fn accepted(&self, category: &'static str) -> u64 {
        self.with(|m| {
            m.ingest
                .iter()
                .filter(|((o, _, c), _)| *o == "accepted" && *c == category)
                .map(|(_, n)| n)
                .sum()
        })
    }

    pub fn render(&self, gauges: &[(&str, &str, f64)]) -> String {
        self.with(|m| {
            let mut out = String::new();
            out.push_str("# HELP snag_http_requests_total HTTP requests by route and status.\n");
            out.push_str("# TYPE snag_http_requests_total counter\n");
            for ((method, route, status), n) in &m.requests {
                let _ = writeln!(
                    out,
                    "snag_http_requests_total{{method=\"{}\",route=\"{}\",status=\"{status}\"}} {n}",
                    escape(method),
                    escape(route)
                );
            }
            out.push_str("# HELP snag_http_request_duration_seconds HTTP request latency by route.\n");
            out.push_str("# TYPE snag_http_request_duration_seconds histogram\n");
            for (route, h) in &m.request_seconds {
                write_histogram(&mut out, "snag_http_request_duration_seconds", &format!("route=\"{}\",", escape(route)), h);
            }
            out.push_str("# HELP snag_ingest_items_total Ingested items by outcome, reason and data category.\n");
            out.push_str("# TYPE snag_ingest_items_total counter\n");
            for ((outcome, reason, category), n) in &m.ingest {
                let _ = writeln!(
                    out,
                    "snag_ingest_items_total{{outcome=\"{outcome}\",reason=\"{}\",category=\"{category}\"}} {n}",
                    escape(reason)
                );
            }
            let _ = writeln!(out, "# HELP snag_events_accepted_total Events acknowledged to SDKs after commit.");
            let _ = writeln!(out, "# TYPE snag_events_accepted_total counter");
            let accepted: u64 =
                m.ingest.iter().filter(|((o, _, c), _)| *o == "accepted" && *c == "error").map(|(_, n)| n).sum();
            let _ = writeln!(out, "snag_events_accepted_total {accepted}");
            let _ = writeln!(out, "# HELP snag_events_rejected_total Events refused (any reason).");
            let _ = writeln!(out, "# TYPE snag_events_rejected_total counter");
            let rejected: u64 = m.ingest.iter().filter(|((o, _, _), _)| *o == "rejected").map(|(_, n)| n).sum();
            let _ = writeln!(out, "snag_events_rejected_total {rejected}");
            let _ = writeln!(out, "# TYPE snag_pipeline_batches_total counter\nsnag_pipeline_batches_total {}", m.batches);
            let _ = writeln!(out, "# TYPE snag_pipeline_batch_items_total counter\nsnag_pipeline_batch_items_total {}", m.batch_items);
            out.push_str("# HELP snag_pipeline_commit_seconds Time to commit one batch (group commit).\n");
            out.push_str("# TYPE snag_pipeline_commit_seconds histogram\n");
            write_histogram(&mut out, "snag_pipeline_commit_seconds", "", &m.batch_seconds);
            for outcome in ALERT_OUTCOMES {
                let name = format!("snag_alerts_{outcome}_total");
                let _ = writeln!(out, "# HELP {name} Alert notifications {outcome}, by channel.\n# TYPE {name} counter");
                for channel in ALERT_CHANNELS {
                    let n = m.alerts.get(&(outcome, channel)).copied().unwrap_or(0);
                    let _ = writeln!(out, "{name}{{channel=\"{channel}\"}} {n}");
                }
            }
            out.push_str("# HELP snag_pipeline_batch_size Requests committed per batch.\n");
            out.push_str("# TYPE snag_pipeline_batch_size histogram\n");
            let empty = Histogram::with_bounds(BATCH_SIZE_BUCKETS);
            write_histogram(&mut out, "snag_pipeline_batch_size", "", m.batch_sizes.as_ref().unwrap_or(&empty));
            out.push_str("# HELP snag_retention_purged_rows_total Rows deleted by retention, by kind.\n");
            out.push_str("# TYPE snag_retention_purged_rows_total counter\n");
            for kind in ["expired_events", "capped_events", "attachments", "other", "issues"] {
                let n = m.purged.get(kind).copied().unwrap_or(0);
                let _ = writeln!(out, "snag_retention_purged_rows_total{{kind=\"{kind}\"}} {n}");
            }
            let _ = writeln!(out, "# HELP snag_retention_passes_total Completed retention passes.\n# TYPE snag_retention_passes_total counter\nsnag_retention_passes_total {}", m.purge_passes);
            let _ = writeln!(out, "# HELP snag_retention_last_pass_seconds Duration of the last retention pass.\n# TYPE snag_retention_last_pass_seconds gauge\nsnag_retention_last_pass_seconds {}", m.last_purge_seconds);
            let started = self.started.duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs_f64()).unwrap_or(0.0);
            let _ = writeln!(out, "# HELP process_start_time_seconds Start time of the process since the Unix epoch.\n# TYPE process_start_time_seconds gauge\nprocess_start_time_seconds {started}");
            let _ = writeln!(out, "# HELP snag_build_info The running version.\n# TYPE snag_build_info gauge\nsnag_build_info{{version=\"{}\"}} 1", env!("CARGO_PKG_VERSION"));
            for (name, help, value) in gauges {
                let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} gauge\n{name} {value}");
            }
            out
        })
    }
}

fn write_histogram(out: &mut String, name: &str, labels: &str, h: &Histogram) {
    for (bound, n) in h.bounds.iter().zip(&h.buckets) {
        let _ = writeln!(out, "{name}_bucket{{{labels}le=\"{bound}\"}} {n}");
    }
    let _ = writeln!(out, "{name}_bucket{{{labels}le=\"+Inf\"}} {}", h.count);
    let trimmed = labels.trim_end_matches(',');
    let braces = if trimmed.is_empty() {
        String::new()
    } else {
        format!("{{{trimmed}}}")
    };
    let _ = writeln!(out, "{name}_sum{braces} {}", h.sum);
    let _ = writeln!(out, "{name}_count{braces} {}", h.count);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_counters_and_histograms() {
        let m = Metrics::default();
        m.observe_request(
            "POST",
            "/api/{project_id}/envelope/",
            200,
            Duration::from_millis(3),
        );
        m.ingest("accepted", "", "error", 2);
        m.ingest("rejected", "rate_limited", "error", 1);
        let text = m.render(&[("snag_pipeline_queue_depth", "Jobs waiting.", 0.0)]);
        assert!(text.contains(
            "snag_http_requests_total{method=\"POST\",route=\"/api/{project_id}/envelope/\",status=\"200\"} 1"
        ));
        assert!(text.contains("snag_events_accepted_total 2"));
        assert!(text.contains("snag_events_rejected_total 1"));
        assert!(text.contains("le=\"0.005\"} 1"));
        assert!(text.contains("snag_pipeline_queue_depth 0"));
        assert!(text.contains("snag_alerts_failed_total{channel=\"webhook\"} 0"));
        m.alert("sent", "email", 3);
        m.alert("retried", "webhook", 1);
        let text = m.render(&[]);
        assert!(text.contains("snag_alerts_sent_total{channel=\"email\"} 3"));
        assert!(text.contains("snag_alerts_retried_total{channel=\"webhook\"} 1"));
        assert!(text.contains("# TYPE snag_alerts_sent_total counter"));
    }
}
