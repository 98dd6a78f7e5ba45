//! Prometheus metrics: requests by route, method and status, a latency histogram per
//! route, and (filled in at scrape time by the caller) gauges such as bindings by state.
//!
//! Hand-rolled rather than a metrics crate: the text format is small, and the hot path
//! here is one read-locked map lookup plus a few relaxed atomic increments (the server
//! has to do 30k requests/s on 2 cores).

use std::collections::HashMap;
use std::fmt::Write as _;
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

/// Upper bounds of the latency buckets, in seconds (the control plane's, which its commit
/// histogram uses too).
pub(crate) use inregion_control::LATENCY_BUCKETS;

/// Label used for requests that matched no route.
pub(crate) const UNMATCHED: &str = "unmatched";

#[derive(Default)]
struct RouteStats {
    /// `(method, status) -> count`; a handful of entries per route, so a vector scan.
    counts: Mutex<Vec<(String, u16, u64)>>,
    latency: inregion_control::AtomicHistogram,
}

/// Request counters and latency histograms, shared by all connections.
#[derive(Default)]
pub struct Metrics {
    routes: RwLock<HashMap<String, Arc<RouteStats>>>,
    /// Injected faults by rule id and kind.
    faults: Mutex<std::collections::BTreeMap<(String, &'static str), u64>>,
}

impl Metrics {
    /// A fresh, empty registry.
    pub fn new() -> Self {
        Self::default()
    }

    fn route(&self, route: &str) -> Arc<RouteStats> {
        if let Some(r) = self
            .routes
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(route)
        {
            return r.clone();
        }
        self.routes
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .entry(route.to_owned())
            .or_default()
            .clone()
    }

    /// Records one finished request. `route` is the matched route template (such as
    /// `/client/v4/accounts/{account_id}/dls/regions`), never the raw path, so that ids
    /// do not explode the label set.
    pub fn record(&self, route: &str, method: &str, status: u16, elapsed: Duration) {
        let stats = self.route(route);
        {
            let mut counts = stats.counts.lock().unwrap_or_else(|p| p.into_inner());
            match counts
                .iter_mut()
                .find(|(m, s, _)| *s == status && m == method)
            {
                Some(entry) => entry.2 += 1,
                None => counts.push((method.to_owned(), status, 1)),
            }
        }
        stats.latency.record(elapsed);
    }

    /// Counts one injected fault.
    pub fn record_fault(&self, rule: &str, kind: &'static str) {
        *self
            .faults
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .entry((rule.to_owned(), kind))
            .or_default() += 1;
    }

    /// Appends the injected-fault counters in the Prometheus text format.
    fn render_faults(&self, out: &mut String) {
        out.push_str("# HELP inregion_faults_injected_total Requests that an injected fault rule acted on, by rule id and kind.\n");
        out.push_str("# TYPE inregion_faults_injected_total counter\n");
        for ((rule, kind), n) in self.faults.lock().unwrap_or_else(|p| p.into_inner()).iter() {
            let _ = writeln!(
                out,
                "inregion_faults_injected_total{{rule=\"{}\",kind=\"{}\"}} {}",
                escape(rule),
                kind,
                n
            );
        }
    }

    /// Renders the request and injected-fault metrics in the Prometheus text exposition
    /// format (0.0.4).
    pub fn render(&self, out: &mut String) {
        self.render_faults(out);
        let routes = self.routes.read().unwrap_or_else(|p| p.into_inner());
        let mut names: Vec<&String> = routes.keys().collect();
        names.sort();
        out.push_str("# HELP inregion_http_requests_total HTTP requests served, by route template, method and status.\n");
        out.push_str("# TYPE inregion_http_requests_total counter\n");
        for name in &names {
            let mut counts = routes[*name]
                .counts
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .clone();
            counts.sort();
            for (method, status, n) in counts {
                let _ = writeln!(
                    out,
                    "inregion_http_requests_total{{route=\"{}\",method=\"{}\",status=\"{}\"}} {}",
                    escape(name),
                    escape(&method),
                    status,
                    n
                );
            }
        }
        out.push_str("# HELP inregion_http_request_duration_seconds Time from request head to response head, by route template.\n");
        out.push_str("# TYPE inregion_http_request_duration_seconds histogram\n");
        for name in &names {
            let s = &routes[*name];
            let (counts, sum) = s.latency.snapshot();
            write_histogram(
                out,
                "inregion_http_request_duration_seconds",
                &format!("route=\"{}\"", escape(name)),
                &LATENCY_BUCKETS,
                &counts,
                sum.as_secs_f64(),
            );
        }
    }
}

/// Writes the `_bucket`, `_sum` and `_count` lines of one histogram. `counts` holds one
/// (non-cumulative) count per bound plus a last one for `+Inf`; `labels` is either empty
/// or `name="value",...` without braces.
pub(crate) fn write_histogram(
    out: &mut String,
    name: &str,
    labels: &str,
    bounds: &[f64],
    counts: &[u64],
    sum: f64,
) {
    debug_assert_eq!(counts.len(), bounds.len() + 1);
    let sep = if labels.is_empty() { "" } else { "," };
    let mut cumulative = 0;
    for (bound, n) in bounds
        .iter()
        .map(|b| b.to_string())
        .chain(["+Inf".to_owned()])
        .zip(counts)
    {
        cumulative += n;
        let _ = writeln!(
            out,
            "{name}_bucket{{{labels}{sep}le=\"{bound}\"}} {cumulative}"
        );
    }
    let braces = if labels.is_empty() {
        String::new()
    } else {
        format!("{{{labels}}}")
    };
    let _ = writeln!(out, "{name}_sum{braces} {sum}");
    let _ = writeln!(out, "{name}_count{braces} {cumulative}");
}

/// Escapes a label value (backslash, double quote, newline).
pub(crate) fn escape(s: &str) -> String {
    s.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_counters_and_cumulative_buckets() {
        let m = Metrics::new();
        m.record("/a", "GET", 200, Duration::from_micros(50));
        m.record("/a", "GET", 200, Duration::from_millis(3));
        m.record("/a", "POST", 409, Duration::from_secs(10));
        let mut out = String::new();
        m.render(&mut out);
        assert!(out.contains(
            "inregion_http_requests_total{route=\"/a\",method=\"GET\",status=\"200\"} 2"
        ));
        assert!(out.contains(
            "inregion_http_requests_total{route=\"/a\",method=\"POST\",status=\"409\"} 1"
        ));
        assert!(out.contains(
            "inregion_http_request_duration_seconds_bucket{route=\"/a\",le=\"0.0001\"} 1"
        ));
        assert!(out.contains(
            "inregion_http_request_duration_seconds_bucket{route=\"/a\",le=\"0.005\"} 2"
        ));
        assert!(out
            .contains("inregion_http_request_duration_seconds_bucket{route=\"/a\",le=\"2.5\"} 2"));
        assert!(out
            .contains("inregion_http_request_duration_seconds_bucket{route=\"/a\",le=\"+Inf\"} 3"));
        assert!(out.contains("inregion_http_request_duration_seconds_count{route=\"/a\"} 3"));
    }

    #[test]
    fn unlabelled_histogram_has_no_braces_on_sum_and_count() {
        let mut out = String::new();
        write_histogram(&mut out, "h", "", &[0.5, 1.0], &[1, 0, 2], 3.5);
        assert_eq!(
            out,
            "h_bucket{le=\"0.5\"} 1\nh_bucket{le=\"1\"} 1\nh_bucket{le=\"+Inf\"} 3\nh_sum 3.5\nh_count 3\n"
        );
    }

    #[test]
    fn escapes_labels() {
        assert_eq!(escape("a\"b\\c\nd"), "a\\\"b\\\\c\\nd");
    }
}
