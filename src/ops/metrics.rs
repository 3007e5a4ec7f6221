//! Prometheus text exposition, hand-rolled: a handful of counters and one
//! histogram do not justify a metrics framework.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::Mutex;
use std::time::Duration;

const LATENCY_BUCKETS: [f64; 10] = [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0];

#[derive(Default)]
struct Histogram {
    buckets: [u64; LATENCY_BUCKETS.len()],
    count: u64,
    sum: f64,
}

impl Histogram {
    fn observe(&mut self, secs: f64) {
        for (i, bound) in LATENCY_BUCKETS.iter().enumerate() {
            if secs <= *bound {
                self.buckets[i] += 1;
            }
        }
        self.count += 1;
        self.sum += secs;
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
}

/// Alert outcomes and channels `/metrics` always lists, zeros included, so
/// dashboards and alerting rules find the series before the first alert.
const ALERT_OUTCOMES: [&str; 3] = ["sent", "failed", "retried"];
const ALERT_CHANNELS: [&str; 2] = ["email", "webhook"];

#[derive(Default)]
pub struct Metrics {
    inner: Mutex<Inner>,
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
            for (name, help, value) in gauges {
                let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} gauge\n{name} {value}");
            }
            out
        })
    }
}

fn write_histogram(out: &mut String, name: &str, labels: &str, h: &Histogram) {
    for (bound, n) in LATENCY_BUCKETS.iter().zip(h.buckets) {
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
