//! The report's CSV files: the time series, outcomes per category, data-center load,
//! the added-RTT CDF and the DNS observations.

use super::{Outcomes, Report};

/// A CSV writer into memory.
type Writer = csv::Writer<Vec<u8>>;

fn writer() -> Writer {
    csv::Writer::from_writer(Vec::new())
}

/// The written text. Writing to memory cannot fail, and every field is valid UTF-8.
fn finish(w: Writer) -> String {
    let bytes = w.into_inner().unwrap_or_default();
    String::from_utf8(bytes).unwrap_or_default()
}

impl Report {
    /// The CSV files: `(file name, contents)`.
    pub fn csv_files(&self) -> Vec<(String, String)> {
        vec![
            ("timeseries.csv".to_owned(), self.timeseries_csv()),
            (
                "by_bound_region.csv".to_owned(),
                outcomes_csv(
                    "region",
                    self.by_bound_region
                        .iter()
                        .map(|(k, o)| (k.clone(), o))
                        .collect(),
                ),
            ),
            (
                "by_client_continent.csv".to_owned(),
                outcomes_csv(
                    "continent",
                    self.by_client_continent
                        .iter()
                        .map(|(k, o)| (k.clone(), o))
                        .collect(),
                ),
            ),
            (
                "by_population.csv".to_owned(),
                outcomes_csv(
                    "population",
                    self.by_population
                        .iter()
                        .map(|p| (p.name.clone(), &p.outcomes))
                        .collect(),
                ),
            ),
            ("data_centers.csv".to_owned(), self.data_centers_csv()),
            ("added_rtt_cdf.csv".to_owned(), self.added_rtt_cdf_csv()),
            ("dns.csv".to_owned(), self.dns_csv()),
        ]
    }

    /// `timeseries.csv`: outcomes per time bucket.
    fn timeseries_csv(&self) -> String {
        let mut w = writer();
        let _ = w.write_record([
            "start_s",
            "flows",
            "unbound",
            "in_region",
            "forwarded",
            "refused",
            "share_at_ingress",
            "share_forwarded",
            "share_refused",
            "decision_changed",
            "reset",
        ]);
        for r in &self.series {
            let o = &r.outcomes;
            let _ = w.write_record([
                r.start_s.to_string(),
                o.flows.to_string(),
                o.unbound.to_string(),
                o.in_region.to_string(),
                o.forwarded.to_string(),
                o.refused.to_string(),
                o.share_at_ingress.to_string(),
                o.share_forwarded.to_string(),
                o.share_refused.to_string(),
                r.decision_changed.to_string(),
                r.reset.to_string(),
            ]);
        }
        finish(w)
    }

    /// `data_centers.csv`: the load of every data center with any flow.
    fn data_centers_csv(&self) -> String {
        let mut w = writer();
        let _ = w.write_record([
            "code",
            "ingress",
            "processed",
            "forwarded_in",
            "forwarded_out",
            "refused",
            "bytes",
        ]);
        for d in &self.data_centers {
            let _ = w.write_record([
                d.code.clone(),
                d.ingress.to_string(),
                d.processed.to_string(),
                d.forwarded_in.to_string(),
                d.forwarded_out.to_string(),
                d.refused.to_string(),
                d.bytes.to_string(),
            ]);
        }
        finish(w)
    }

    /// `added_rtt_cdf.csv`: the CDF points per client continent.
    fn added_rtt_cdf_csv(&self) -> String {
        let mut w = writer();
        let _ = w.write_record(["continent", "quantile", "added_rtt_ms"]);
        for (k, pts) in &self.added_rtt_cdf {
            for (x, q) in pts {
                let _ = w.write_record([k.clone(), q.to_string(), x.to_string()]);
            }
        }
        finish(w)
    }

    /// `dns.csv`: the DNS observations.
    fn dns_csv(&self) -> String {
        let mut w = writer();
        let _ = w.write_record([
            "at_s",
            "from",
            "target",
            "query",
            "ingress",
            "answered_by",
            "answer",
            "id",
        ]);
        for d in &self.dns {
            let _ = w.write_record([
                d.at_s.to_string(),
                d.from.clone(),
                d.target.clone(),
                d.query.clone(),
                d.ingress.clone().unwrap_or_default(),
                d.answered_by.clone().unwrap_or_default(),
                d.answer.clone(),
                d.id.to_string(),
            ]);
        }
        finish(w)
    }
}

/// Outcome counts per category (`key` names the category's column).
fn outcomes_csv(key: &str, rows: Vec<(String, &Outcomes)>) -> String {
    let mut w = writer();
    let _ = w.write_record([key, "flows", "unbound", "in_region", "forwarded", "refused"]);
    for (k, o) in rows {
        let _ = w.write_record([
            k,
            o.flows.to_string(),
            o.unbound.to_string(),
            o.in_region.to_string(),
            o.forwarded.to_string(),
            o.refused.to_string(),
        ]);
    }
    finish(w)
}
