//! The readable terminal summary, one section per helper.

use super::{DnsRow, Report};
use crate::time::SimTime;
use std::fmt::Write as _;

/// A share as a right-aligned percentage (`" 42.0 %"`).
fn pct(x: f64) -> String {
    format!("{:5.1} %", x * 100.0)
}

/// A time of the report (seconds) as the simulator prints times (`T+1h 30m`).
fn at(seconds: f64) -> String {
    SimTime::from_secs_f64(seconds).to_string()
}

/// At most this many DNS observations are listed; the rest are in the files.
const MAX_DNS_LINES: usize = 30;

// Writing to a `String` cannot fail: the `fmt::Result`s below are ignored on purpose.
impl Report {
    /// The readable terminal summary (figures of the report only).
    pub fn summary(&self) -> String {
        let mut s = String::new();
        self.write_heading(&mut s);
        self.write_outcomes(&mut s);
        self.write_added_rtt(&mut s);
        self.write_by_bound_region(&mut s);
        self.write_by_population(&mut s);
        self.write_top_data_centers(&mut s);
        self.write_timeline(&mut s);
        self.write_health(&mut s);
        self.write_dns(&mut s);
        self.write_plots_note(&mut s);
        s
    }

    /// The scenario: name, seed, simulated time, propagation mode, description.
    fn write_heading(&self, s: &mut String) {
        let _ = writeln!(
            s,
            "scenario {} (seed {}, {} simulated, propagation {})",
            self.scenario.name,
            self.seed,
            at(self.scenario.duration_s).trim_start_matches("T+"),
            self.scenario.propagation_mode
        );
        if !self.scenario.description.is_empty() {
            let _ = writeln!(s, "  {}", self.scenario.description);
        }
    }

    /// Flow outcomes, the independent check, and what happened to open flows.
    fn write_outcomes(&self, s: &mut String) {
        let o = &self.outcomes;
        let _ = writeln!(s, "\nflows {}  ({} bytes)", o.flows, self.bytes);
        let _ = writeln!(
            s,
            "  processed at ingress {}   (unbound {}, in region {})",
            pct(o.share_at_ingress),
            o.unbound,
            o.in_region
        );
        let _ = writeln!(
            s,
            "  forwarded in region  {}   ({})",
            pct(o.share_forwarded),
            o.forwarded
        );
        let _ = writeln!(
            s,
            "  refused (fail closed){}   ({})",
            pct(o.share_refused),
            o.refused
        );
        let _ = writeln!(
            s,
            "  out-of-region processed: {}   wrongly refused: {}",
            self.out_of_region_processed, self.wrongly_refused
        );
        let e = &self.events;
        let _ = writeln!(
            s,
            "  decision changed while open: {}   resets: {} (binding changed) + {} (data center down)",
            e.decision_changed, e.reset_binding_changed, e.reset_processing_down
        );
    }

    /// Added RTT of forwarded flows, and of all processed flows per client continent.
    fn write_added_rtt(&self, s: &mut String) {
        let a = &self.added_rtt_forwarded;
        let _ = writeln!(
            s,
            "\nadded RTT of forwarded flows: p50 {:.1} ms, p90 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
            a.p50_ms, a.p90_ms, a.p99_ms, a.max_ms
        );
        let _ = writeln!(s, "  by client continent (all processed flows):");
        for (k, r) in &self.added_rtt_by_continent {
            let _ = writeln!(
                s,
                "    {k:<14} flows {:>9}  mean {:>6.1} ms  p50 {:>6.1}  p90 {:>6.1}  p99 {:>6.1}",
                r.flows, r.mean_ms, r.p50_ms, r.p90_ms, r.p99_ms
            );
        }
    }

    /// Outcome shares per bound region.
    fn write_by_bound_region(&self, s: &mut String) {
        let _ = writeln!(s, "\nby bound region:");
        for (k, r) in &self.by_bound_region {
            let _ = writeln!(
                s,
                "    {k:<8} flows {:>9}  at ingress {}  forwarded {}  refused {}",
                r.flows,
                pct(r.share_at_ingress),
                pct(r.share_forwarded),
                pct(r.share_refused)
            );
        }
    }

    /// Outcome shares and mean added RTT per client population.
    fn write_by_population(&self, s: &mut String) {
        let _ = writeln!(s, "\nby client population:");
        for p in &self.by_population {
            let r = &p.outcomes;
            let _ = writeln!(
                s,
                "    {:<14} flows {:>9}  forwarded {}  refused {}  mean added RTT {:>6.1} ms",
                p.name,
                r.flows,
                pct(r.share_forwarded),
                pct(r.share_refused),
                p.mean_added_rtt_ms
            );
        }
    }

    /// The eight data centers that received the most forwarded flows.
    fn write_top_data_centers(&self, s: &mut String) {
        let _ = writeln!(s, "\ntop data centers by forwarded load:");
        for d in self
            .data_centers
            .iter()
            .filter(|d| d.forwarded_in > 0)
            .take(8)
        {
            let _ = writeln!(
                s,
                "    {}  forwarded in {:>9}  processed {:>9}  ingress {:>9}",
                d.code, d.forwarded_in, d.processed, d.ingress
            );
        }
    }

    /// The applied operations, each with how far its table version propagated.
    fn write_timeline(&self, s: &mut String) {
        if self.timeline.is_empty() {
            return;
        }
        let _ = writeln!(s, "\ntimeline:");
        for t in &self.timeline {
            let v = self
                .propagation
                .iter()
                .find(|v| Some(v.version) == t.version);
            let prop = match v {
                Some(v) => format!(
                    "  → v{}: majority {}, all {} ({} of {} data centers)",
                    v.version,
                    v.active_at_s.map(at).unwrap_or_else(|| "not yet".into()),
                    v.complete_at_s.map(at).unwrap_or_else(|| "not yet".into()),
                    v.reached,
                    v.total
                ),
                None => String::new(),
            };
            let _ = writeln!(s, "    {:<11} {}{prop}", t.at, t.op);
        }
    }

    /// Data-center failures and recoveries.
    fn write_health(&self, s: &mut String) {
        if self.health.is_empty() {
            return;
        }
        let _ = writeln!(s, "\nhealth:");
        for h in &self.health {
            let _ = writeln!(
                s,
                "    {:<11} {} {}",
                at(h.at_s),
                h.dc,
                if h.healthy { "recovers" } else { "fails" }
            );
        }
    }

    /// The DNS probes' first answers and changes.
    fn write_dns(&self, s: &mut String) {
        if self.dns.is_empty() {
            return;
        }
        // CHAOS answers name the processing data center; the other queries are in
        // report.json and dns.csv.
        let chaos: Vec<&DnsRow> = self.dns.iter().filter(|d| d.query == "chaos").collect();
        let shown: Vec<&DnsRow> = if chaos.is_empty() {
            self.dns.iter().collect()
        } else {
            chaos
        };
        let e = &self.events;
        let _ = writeln!(
            s,
            "\nDNS probes ({} sent, {} answered; first answer and changes{}):",
            e.dns_probes,
            e.dns_answered,
            if shown.len() < self.dns.len() {
                ", CHAOS id.server only"
            } else {
                ""
            }
        );
        for d in shown.iter().take(MAX_DNS_LINES) {
            let by = match &d.answered_by {
                Some(dc) => format!("answered by {dc} ({})", d.answer),
                None => "not answered (refused: fail closed)".to_owned(),
            };
            let _ = writeln!(
                s,
                "    {:<11} from {}, {} {} is {by}",
                d.at,
                d.from,
                d.target,
                d.query.to_uppercase()
            );
        }
        if shown.len() > MAX_DNS_LINES {
            let _ = writeln!(
                s,
                "    … {} more in report.json and dns.csv",
                shown.len() - MAX_DNS_LINES
            );
        }
    }

    /// Without the `plots` feature, says that no plot was drawn (nothing otherwise).
    fn write_plots_note(&self, s: &mut String) {
        if let Some(note) = crate::plots::NOT_BUILT {
            let _ = writeln!(s, "\n{note}");
        }
    }
}
