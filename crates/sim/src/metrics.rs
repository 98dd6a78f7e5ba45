//! Streamed metrics: counters and histograms sized by the scenario, never by the flow
//! count.
//!
//! [`Metrics::record`] takes one [`FlowRecord`] and updates fixed-size arrays: per time
//! bucket × outcome, per client continent / population / bound region × outcome, per
//! data center load, and HDR histograms of the added round-trip time per client
//! continent. Memory is `O(buckets × categories + data centers)`, whatever the number of
//! flows.

use hdrhistogram::Histogram;

/// What happened to a flow, from the edge's decision.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Outcome {
    /// No binding covers the destination: processed at the ingress (global behaviour).
    Unbound,
    /// Bound, and the ingress is in the region: processed at the ingress.
    InRegion,
    /// Bound, ingress outside the region: forwarded to an in-region data center.
    Forwarded,
    /// Bound, and no in-region data center is healthy: refused (fail closed).
    Refused,
}

impl Outcome {
    /// All outcomes, in index order.
    pub const ALL: [Outcome; 4] = [
        Outcome::Unbound,
        Outcome::InRegion,
        Outcome::Forwarded,
        Outcome::Refused,
    ];

    /// Name in reports and CSV headers.
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Unbound => "unbound",
            Outcome::InRegion => "in_region",
            Outcome::Forwarded => "forwarded",
            Outcome::Refused => "refused",
        }
    }

    /// Index into [`Outcome::ALL`].
    #[inline]
    pub fn index(self) -> usize {
        self as usize
    }
}

/// One flow's contribution to the metrics; indexes refer to [`Categories`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct FlowRecord {
    /// Time bucket.
    pub bucket: u32,
    /// Client continent index.
    pub continent: u16,
    /// Client population index.
    pub population: u16,
    /// Bound region index (0 = unbound).
    pub region: u16,
    /// Decision.
    pub outcome: Outcome,
    /// Ingress data center index.
    pub ingress: u16,
    /// Data center that processed it (ingress or forward target); `None` when refused.
    pub processed_at: Option<u16>,
    /// Round-trip time added by forwarding, in microseconds (0 when processed at ingress).
    pub added_rtt_us: u32,
    /// Bytes carried.
    pub bytes: u64,
}

/// The names behind the indexes of a [`FlowRecord`].
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Categories {
    /// Client continents (`Europe`, ...).
    pub continents: Vec<String>,
    /// Client populations (scenario labels).
    pub populations: Vec<String>,
    /// Bound regions; index 0 is `none` (unbound).
    pub regions: Vec<String>,
    /// Data centers (IATA codes).
    pub data_centers: Vec<String>,
}

/// Per data center load.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DcLoad {
    /// Flows that entered here.
    pub ingress: u64,
    /// Flows processed here (entered here, or forwarded here).
    pub processed: u64,
    /// Flows forwarded here from elsewhere.
    pub forwarded_in: u64,
    /// Flows this data center forwarded elsewhere.
    pub forwarded_out: u64,
    /// Flows refused here (entered here, no in-region data center healthy).
    pub refused: u64,
    /// Bytes processed here.
    pub bytes: u64,
}

/// Counts by outcome.
pub(crate) type OutcomeCounts = [u64; 4];

/// Added-RTT histograms are in microseconds, up to 10 s, 3 significant digits.
const RTT_HIGH_US: u64 = 10_000_000;

/// The streamed metrics of one run.
#[derive(Debug, Clone)]
pub struct Metrics {
    /// Names of the categories.
    pub cats: Categories,
    /// Number of time buckets.
    pub buckets: usize,
    /// Per bucket, outcome counts.
    pub by_bucket: Vec<OutcomeCounts>,
    /// Per bucket × bound region, outcome counts (`[bucket * regions + region]`).
    pub by_bucket_region: Vec<OutcomeCounts>,
    /// Per continent, outcome counts.
    pub by_continent: Vec<OutcomeCounts>,
    /// Per population, outcome counts.
    pub by_population: Vec<OutcomeCounts>,
    /// Per population, sum of added RTT in µs (processed flows only).
    pub population_rtt_sum_us: Vec<u64>,
    /// Per bound region, outcome counts.
    pub by_region: Vec<OutcomeCounts>,
    /// Per data center load.
    pub load: Vec<DcLoad>,
    /// Added RTT of all processed flows (µs); filled by [`Metrics::finish`].
    pub rtt_all: Histogram<u64>,
    /// Added RTT of processed flows per client continent (µs).
    pub rtt_by_continent: Vec<Histogram<u64>>,
    /// Added RTT of forwarded flows only (µs).
    pub rtt_forwarded: Histogram<u64>,
    /// Flows recorded.
    pub flows: u64,
    /// Bytes recorded.
    pub bytes: u64,
    /// Flows whose decision would have changed during their lifetime.
    pub decision_changed: u64,
    /// Flows reset by a table swap (strict propagation mode).
    pub reset: u64,
    /// Flows processed outside their bound region, by the independent check.
    pub out_of_region_processed: u64,
    /// Refused flows that had a healthy in-region data center, by the independent check.
    pub wrongly_refused: u64,
}

fn histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, RTT_HIGH_US, 3).expect("static histogram bounds are valid")
}

impl Metrics {
    /// Empty metrics for these categories and `buckets` time buckets.
    pub fn new(cats: Categories, buckets: usize) -> Self {
        let (nc, np, nr, nd) = (
            cats.continents.len(),
            cats.populations.len(),
            cats.regions.len(),
            cats.data_centers.len(),
        );
        Self {
            buckets,
            by_bucket: vec![[0; 4]; buckets],
            by_bucket_region: vec![[0; 4]; buckets * nr],
            by_continent: vec![[0; 4]; nc],
            by_population: vec![[0; 4]; np],
            population_rtt_sum_us: vec![0; np],
            by_region: vec![[0; 4]; nr],
            load: vec![DcLoad::default(); nd],
            rtt_all: histogram(),
            rtt_by_continent: (0..nc).map(|_| histogram()).collect(),
            rtt_forwarded: histogram(),
            flows: 0,
            bytes: 0,
            decision_changed: 0,
            reset: 0,
            out_of_region_processed: 0,
            wrongly_refused: 0,
            cats,
        }
    }

    /// Adds one flow.
    #[inline]
    pub fn record(&mut self, r: &FlowRecord) {
        let o = r.outcome.index();
        let b = (r.bucket as usize).min(self.buckets - 1);
        let nr = self.cats.regions.len();
        self.flows += 1;
        // Saturating: heavy-tailed sizes over 10^10 flows can exceed u64.
        self.bytes = self.bytes.saturating_add(r.bytes);
        self.by_bucket[b][o] += 1;
        self.by_bucket_region[b * nr + r.region as usize][o] += 1;
        self.by_continent[r.continent as usize][o] += 1;
        self.by_population[r.population as usize][o] += 1;
        self.by_region[r.region as usize][o] += 1;
        let ingress = &mut self.load[r.ingress as usize];
        ingress.ingress += 1;
        match r.processed_at {
            Some(dc) => {
                let rtt = u64::from(r.added_rtt_us);
                self.rtt_by_continent[r.continent as usize].saturating_record(rtt);
                self.population_rtt_sum_us[r.population as usize] += rtt;
                if r.outcome == Outcome::Forwarded {
                    self.rtt_forwarded.saturating_record(rtt);
                    self.load[r.ingress as usize].forwarded_out += 1;
                    self.load[dc as usize].forwarded_in += 1;
                }
                let p = &mut self.load[dc as usize];
                p.processed += 1;
                p.bytes = p.bytes.saturating_add(r.bytes);
            }
            None => ingress.refused += 1,
        }
    }

    /// Folds the per-continent histograms into [`Metrics::rtt_all`] (once, after the
    /// last record: recording each flow once instead of twice halves the histogram cost).
    pub fn finish(&mut self) {
        for h in &self.rtt_by_continent {
            // Same bounds and precision: addition cannot fail.
            let _ = self.rtt_all.add(h);
        }
    }

    /// Totals by outcome.
    pub fn totals(&self) -> OutcomeCounts {
        let mut t = [0; 4];
        for c in &self.by_region {
            for i in 0..4 {
                t[i] += c[i];
            }
        }
        t
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cats() -> Categories {
        Categories {
            continents: vec!["Europe".into(), "South America".into()],
            populations: vec!["DE".into(), "BR".into()],
            regions: vec!["none".into(), "eu".into()],
            data_centers: vec!["FRA".into(), "GRU".into()],
        }
    }

    #[test]
    fn records_land_in_their_cells_and_memory_is_fixed() {
        let mut m = Metrics::new(cats(), 4);
        let fwd = FlowRecord {
            bucket: 2,
            continent: 1,
            population: 1,
            region: 1,
            outcome: Outcome::Forwarded,
            ingress: 1,
            processed_at: Some(0),
            added_rtt_us: 190_000,
            bytes: 100,
        };
        let local = FlowRecord {
            continent: 0,
            population: 0,
            outcome: Outcome::InRegion,
            ingress: 0,
            added_rtt_us: 0,
            ..fwd
        };
        let refused = FlowRecord {
            outcome: Outcome::Refused,
            processed_at: None,
            bucket: 99, // clamped into the last bucket
            ..fwd
        };
        for _ in 0..1000 {
            m.record(&fwd);
            m.record(&local);
            m.record(&refused);
        }
        assert_eq!(m.flows, 3000);
        assert_eq!(m.by_bucket[2], [0, 1000, 1000, 0]);
        assert_eq!(m.by_bucket[3], [0, 0, 0, 1000]);
        assert_eq!(m.totals(), [0, 1000, 1000, 1000]);
        assert_eq!(m.load[0].processed, 2000);
        assert_eq!(m.load[0].forwarded_in, 1000);
        assert_eq!(m.load[1].forwarded_out, 1000);
        assert_eq!(m.load[1].refused, 1000);
        assert_eq!(m.rtt_by_continent[0].max(), 0);
        m.finish();
        assert_eq!(m.rtt_all.len(), 2000);
        let p50 = m.rtt_by_continent[1].value_at_quantile(0.5);
        assert!((189_000..=191_000).contains(&p50), "{p50}");
        assert_eq!(m.by_bucket.len(), 4);
    }
}
