//! The report: every figure of a run, as JSON (`report.json`), CSV files and a terminal
//! summary.
//!
//! [`Report::new`] condenses a [`RunOutput`]; it holds no wall-clock figure, so
//! [`Report::to_json`] is byte-identical for the same scenario and seed. The terminal
//! summary ([`Report::summary`]) prints figures of the report only; the CLI adds the run
//! time after it.

mod csv_files;
mod summary;

use crate::engine::{DnsObservation, RunCounters, RunOutput, TimelineEntry, VersionEntry};
use crate::metrics::{Metrics, OutcomeCounts};
use crate::scenario::Scenario;
use crate::time::SimTime;
use hdrhistogram::Histogram;
use serde::Serialize;
use std::collections::BTreeMap;

/// Quantiles of added round-trip time, in milliseconds.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct RttSummary {
    /// Flows counted.
    pub flows: u64,
    /// Mean.
    pub mean_ms: f64,
    /// Median.
    pub p50_ms: f64,
    /// 90th percentile.
    pub p90_ms: f64,
    /// 99th percentile.
    pub p99_ms: f64,
    /// Maximum.
    pub max_ms: f64,
}

fn ms(us: u64) -> f64 {
    (us as f64 / 1000.0 * 1000.0).round() / 1000.0
}

fn round3(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}

impl RttSummary {
    fn of(h: &Histogram<u64>) -> Self {
        if h.is_empty() {
            return RttSummary {
                flows: 0,
                mean_ms: 0.0,
                p50_ms: 0.0,
                p90_ms: 0.0,
                p99_ms: 0.0,
                max_ms: 0.0,
            };
        }
        RttSummary {
            flows: h.len(),
            mean_ms: round3(h.mean() / 1000.0),
            p50_ms: ms(h.value_at_quantile(0.5)),
            p90_ms: ms(h.value_at_quantile(0.9)),
            p99_ms: ms(h.value_at_quantile(0.99)),
            max_ms: ms(h.max()),
        }
    }
}

/// Flow counts by outcome, with shares.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Outcomes {
    /// All flows.
    pub flows: u64,
    /// No binding: processed at ingress.
    pub unbound: u64,
    /// Bound, processed at an in-region ingress.
    pub in_region: u64,
    /// Bound, forwarded to an in-region data center.
    pub forwarded: u64,
    /// Bound, refused (no healthy in-region data center).
    pub refused: u64,
    /// Share processed where they entered (`unbound + in_region`).
    pub share_at_ingress: f64,
    /// Share forwarded.
    pub share_forwarded: f64,
    /// Share refused.
    pub share_refused: f64,
}

impl Outcomes {
    fn of(c: &OutcomeCounts) -> Self {
        let flows: u64 = c.iter().sum();
        let share = |n: u64| {
            if flows == 0 {
                0.0
            } else {
                round3(n as f64 / flows as f64 * 100.0) / 100.0
            }
        };
        Outcomes {
            flows,
            unbound: c[0],
            in_region: c[1],
            forwarded: c[2],
            refused: c[3],
            share_at_ingress: share(c[0] + c[1]),
            share_forwarded: share(c[2]),
            share_refused: share(c[3]),
        }
    }
}

/// One time bucket of the series.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct BucketRow {
    /// Start of the bucket, seconds.
    pub start_s: u64,
    /// Counts.
    #[serde(flatten)]
    pub outcomes: Outcomes,
    /// Flows ending in this bucket whose decision would have changed.
    pub decision_changed: u64,
    /// Flows reset in this bucket.
    pub reset: u64,
}

/// One client population's figures.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct PopulationRow {
    /// Label.
    pub name: String,
    /// Counts.
    #[serde(flatten)]
    pub outcomes: Outcomes,
    /// Mean added RTT of its processed flows, ms.
    pub mean_added_rtt_ms: f64,
}

/// One data center's load.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct DcRow {
    /// IATA code.
    pub code: String,
    /// Flows that entered here.
    pub ingress: u64,
    /// Flows processed here.
    pub processed: u64,
    /// Flows forwarded here from elsewhere.
    pub forwarded_in: u64,
    /// Flows forwarded from here.
    pub forwarded_out: u64,
    /// Flows refused here.
    pub refused: u64,
    /// Bytes processed here.
    pub bytes: u64,
}

/// An applied operation.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct OpRow {
    /// When, seconds.
    pub at_s: f64,
    /// When, readable.
    pub at: String,
    /// Index in the file's timeline.
    pub index: usize,
    /// What.
    pub op: String,
    /// Table version published.
    pub version: Option<u64>,
}

/// A published version.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct VersionRow {
    /// Version.
    pub version: u64,
    /// Published, seconds.
    pub published_at_s: f64,
    /// Majority reached, seconds.
    pub active_at_s: Option<f64>,
    /// Every data center reached, seconds.
    pub complete_at_s: Option<f64>,
    /// Data centers reached by the end.
    pub reached: usize,
    /// Data centers.
    pub total: usize,
    /// Bindings carried (`cidr → region`).
    pub bindings: Vec<String>,
}

/// A health change.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct HealthRow {
    /// When, seconds.
    pub at_s: f64,
    /// Data center.
    pub dc: String,
    /// Healthy after the change.
    pub healthy: bool,
}

/// A DNS observation.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct DnsRow {
    /// When, seconds.
    pub at_s: f64,
    /// When, readable.
    pub at: String,
    /// Probe place.
    pub from: String,
    /// Queried address.
    pub target: String,
    /// `chaos`, `a`, `aaaa`.
    pub query: String,
    /// Ingress data center.
    pub ingress: Option<String>,
    /// Answering (processing) data center.
    pub answered_by: Option<String>,
    /// Decoded answer.
    pub answer: String,
    /// Message id.
    pub id: u16,
}

/// Scenario identification.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct ScenarioInfo {
    /// Name.
    pub name: String,
    /// Description.
    pub description: String,
    /// Seed.
    pub seed: u64,
    /// Simulated duration, seconds.
    pub duration_s: f64,
    /// Bucket width, seconds.
    pub bucket_s: f64,
    /// `default` or `strict`.
    pub propagation_mode: String,
    /// Flows requested.
    pub flows_requested: u64,
}

/// Flow outcomes that are not decisions.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Events {
    /// Events processed.
    pub events: u64,
    /// Table deliveries to data centers.
    pub deliveries: u64,
    /// Open flows whose decision would have changed before they ended.
    pub decision_changed: u64,
    /// Resets because the binding changed (strict mode).
    pub reset_binding_changed: u64,
    /// Resets because the processing or ingress data center failed.
    pub reset_processing_down: u64,
    /// Flows whose pin was gone at their last packet.
    pub pin_lost: u64,
    /// Most flows open at once.
    pub peak_open_flows: u64,
    /// DNS probes sent.
    pub dns_probes: u64,
    /// DNS probes answered.
    pub dns_answered: u64,
}

/// Everything a run reports. Serialized as `report.json`.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Report {
    /// Format version of this JSON.
    pub format: u32,
    /// The scenario.
    pub scenario: ScenarioInfo,
    /// The seed (also in `scenario`; top level for scripts).
    pub seed: u64,
    /// Flows simulated.
    pub flows: u64,
    /// Bytes carried.
    pub bytes: u64,
    /// Flows processed outside their bound region, by the independent check. Always 0.
    pub out_of_region_processed: u64,
    /// Refusals while an in-region data center was healthy, by the independent check.
    pub wrongly_refused: u64,
    /// Totals.
    pub outcomes: Outcomes,
    /// Event counters.
    pub events: Events,
    /// Added RTT of all processed flows.
    pub added_rtt: RttSummary,
    /// Added RTT of forwarded flows.
    pub added_rtt_forwarded: RttSummary,
    /// Added RTT per client continent (processed flows).
    pub added_rtt_by_continent: BTreeMap<String, RttSummary>,
    /// CDF points per client continent: `(added ms, cumulative share)`.
    pub added_rtt_cdf: BTreeMap<String, Vec<(f64, f64)>>,
    /// Outcomes per client continent.
    pub by_client_continent: BTreeMap<String, Outcomes>,
    /// Outcomes per client population.
    pub by_population: Vec<PopulationRow>,
    /// Outcomes per bound region (`none` = unbound).
    pub by_bound_region: BTreeMap<String, Outcomes>,
    /// Data centers with any flow, by forwarded-in load then ingress.
    pub data_centers: Vec<DcRow>,
    /// The time series.
    pub series: Vec<BucketRow>,
    /// Outcomes per bucket × bound region (regions with flows only).
    pub series_by_region: BTreeMap<String, Vec<[u64; 4]>>,
    /// Applied operations.
    pub timeline: Vec<OpRow>,
    /// Published versions.
    pub propagation: Vec<VersionRow>,
    /// Health changes.
    pub health: Vec<HealthRow>,
    /// DNS observations.
    pub dns: Vec<DnsRow>,
}

/// CDF points: every percentile, plus 99.9 %.
fn cdf(h: &Histogram<u64>) -> Vec<(f64, f64)> {
    if h.is_empty() {
        return Vec::new();
    }
    let mut qs: Vec<f64> = (0..=100).map(|i| f64::from(i) / 100.0).collect();
    qs.insert(100, 0.999);
    qs.iter()
        .map(|&q| (ms(h.value_at_quantile(q)), q))
        .collect()
}

impl Report {
    /// Condenses a run of `scenario`.
    pub fn new(scenario: &Scenario, out: &RunOutput) -> Self {
        let m: &Metrics = &out.metrics;
        let c = &m.cats;
        Report {
            format: 1,
            scenario: ScenarioInfo::of(scenario),
            seed: scenario.seed,
            flows: m.flows,
            bytes: m.bytes,
            out_of_region_processed: m.out_of_region_processed,
            wrongly_refused: m.wrongly_refused,
            outcomes: Outcomes::of(&m.totals()),
            events: Events::of(m, &out.counters),
            added_rtt: RttSummary::of(&m.rtt_all),
            added_rtt_forwarded: RttSummary::of(&m.rtt_forwarded),
            added_rtt_by_continent: per_continent_rtt(m, RttSummary::of),
            added_rtt_cdf: per_continent_rtt(m, cdf),
            by_client_continent: c
                .continents
                .iter()
                .zip(&m.by_continent)
                .map(|(n, o)| (n.clone(), Outcomes::of(o)))
                .collect(),
            by_population: population_rows(m),
            by_bound_region: c
                .regions
                .iter()
                .zip(&m.by_region)
                .filter(|(_, o)| o.iter().sum::<u64>() > 0)
                .map(|(n, o)| (n.clone(), Outcomes::of(o)))
                .collect(),
            data_centers: dc_rows(m),
            series: bucket_rows(scenario, out),
            series_by_region: series_by_region(m),
            timeline: out.timeline.iter().map(OpRow::of).collect(),
            propagation: out.versions.iter().map(VersionRow::of).collect(),
            health: out
                .health_changes
                .iter()
                .map(|(t, dc, h)| HealthRow {
                    at_s: t.as_secs_f64(),
                    dc: dc.clone(),
                    healthy: *h,
                })
                .collect(),
            dns: out.dns.iter().map(DnsRow::of).collect(),
        }
    }

    /// `report.json`: pretty-printed, key order fixed, no wall-clock figure.
    pub fn to_json(&self) -> String {
        let mut s = serde_json::to_string_pretty(self).expect("a report always serializes");
        s.push('\n');
        s
    }
}

impl ScenarioInfo {
    fn of(scenario: &Scenario) -> Self {
        ScenarioInfo {
            name: scenario.name.clone(),
            description: scenario.description.clone(),
            seed: scenario.seed,
            duration_s: scenario.duration.as_secs_f64(),
            bucket_s: scenario.bucket.as_secs_f64(),
            propagation_mode: scenario.propagation.mode.as_str().to_owned(),
            flows_requested: scenario.workload.flows,
        }
    }
}

impl Events {
    fn of(m: &Metrics, cnt: &RunCounters) -> Self {
        Events {
            events: cnt.events,
            deliveries: cnt.deliveries,
            decision_changed: m.decision_changed,
            reset_binding_changed: cnt.reset_binding_changed,
            reset_processing_down: cnt.reset_processing_down,
            pin_lost: cnt.pin_lost,
            peak_open_flows: cnt.peak_open_flows,
            dns_probes: cnt.dns_probes,
            dns_answered: cnt.dns_answered,
        }
    }
}

impl OpRow {
    fn of(e: &TimelineEntry) -> Self {
        OpRow {
            at_s: e.at.as_secs_f64(),
            at: e.at.to_string(),
            index: e.index,
            op: e.what.clone(),
            version: e.version,
        }
    }
}

impl VersionRow {
    fn of(v: &VersionEntry) -> Self {
        VersionRow {
            version: v.version,
            published_at_s: v.published_at.as_secs_f64(),
            active_at_s: v.active_at.map(SimTime::as_secs_f64),
            complete_at_s: v.complete_at.map(SimTime::as_secs_f64),
            reached: v.reached,
            total: v.total,
            bindings: v
                .bindings
                .iter()
                .map(|(n, r)| format!("{n} → {r}"))
                .collect(),
        }
    }
}

impl DnsRow {
    fn of(d: &DnsObservation) -> Self {
        DnsRow {
            at_s: d.at.as_secs_f64(),
            at: d.at.to_string(),
            from: d.from.clone(),
            target: d.target.to_string(),
            query: d.query.as_str().to_owned(),
            ingress: d.ingress.clone(),
            answered_by: d.answered_by.clone(),
            answer: d.answer.clone(),
            id: d.id,
        }
    }
}

/// `summarize` of the added-RTT histogram of every client continent with processed flows.
fn per_continent_rtt<T>(
    m: &Metrics,
    summarize: impl Fn(&Histogram<u64>) -> T,
) -> BTreeMap<String, T> {
    m.cats
        .continents
        .iter()
        .zip(&m.rtt_by_continent)
        .filter(|(_, h)| !h.is_empty())
        .map(|(n, h)| (n.clone(), summarize(h)))
        .collect()
}

/// Outcomes and mean added RTT per client population.
fn population_rows(m: &Metrics) -> Vec<PopulationRow> {
    m.cats
        .populations
        .iter()
        .enumerate()
        .map(|(i, n)| {
            let o = &m.by_population[i];
            let processed = o[0] + o[1] + o[2];
            PopulationRow {
                name: n.clone(),
                outcomes: Outcomes::of(o),
                mean_added_rtt_ms: if processed == 0 {
                    0.0
                } else {
                    round3(m.population_rtt_sum_us[i] as f64 / processed as f64 / 1000.0)
                },
            }
        })
        .collect()
}

/// The data centers with any flow, by forwarded-in load, then processed flows, then code.
fn dc_rows(m: &Metrics) -> Vec<DcRow> {
    let mut rows: Vec<DcRow> = m
        .load
        .iter()
        .enumerate()
        .filter(|(_, l)| l.ingress + l.processed > 0)
        .map(|(i, l)| DcRow {
            code: m.cats.data_centers[i].clone(),
            ingress: l.ingress,
            processed: l.processed,
            forwarded_in: l.forwarded_in,
            forwarded_out: l.forwarded_out,
            refused: l.refused,
            bytes: l.bytes,
        })
        .collect();
    rows.sort_by(|a, b| {
        (b.forwarded_in, b.processed, &a.code).cmp(&(a.forwarded_in, a.processed, &b.code))
    });
    rows
}

/// The time series: outcomes, changed decisions and resets per bucket.
fn bucket_rows(scenario: &Scenario, out: &RunOutput) -> Vec<BucketRow> {
    let m = &out.metrics;
    let bucket_s = scenario.bucket.as_nanos() / 1_000_000_000;
    (0..m.buckets)
        .map(|b| BucketRow {
            start_s: b as u64 * bucket_s,
            outcomes: Outcomes::of(&m.by_bucket[b]),
            decision_changed: out.changed_by_bucket[b],
            reset: out.reset_by_bucket[b],
        })
        .collect()
}

/// Outcomes per bucket for each bound region with any flow.
fn series_by_region(m: &Metrics) -> BTreeMap<String, Vec<[u64; 4]>> {
    let nr = m.cats.regions.len();
    m.cats
        .regions
        .iter()
        .enumerate()
        .filter(|&(r, _)| m.by_region[r].iter().sum::<u64>() != 0)
        .map(|(r, name)| {
            let series = (0..m.buckets)
                .map(|b| m.by_bucket_region[b * nr + r])
                .collect();
            (name.clone(), series)
        })
        .collect()
}
