//! The discrete-event engine.
//!
//! One thread, virtual time, one seeded RNG per component. Flow arrivals come from the
//! [`FlowGenerator`](crate::workload::FlowGenerator) in time order (no event is queued
//! per arrival); every other event sits in a small queue of its own kind, and the loop
//! always runs the earliest (`run.rs` holds the loop's state and one handler per kind):
//!
//! ```text
//!   next event = min( flow ends        (binary heap of open flows: bounded by concurrency)
//!                     timeline ops     (control plane: create / patch / delete / maps)
//!                     failures         (data center down / up)
//!                     edge deadlines   (per-DC table deliveries, flow-table sweeps)
//!                     DNS probe rounds
//!                     next arrival )
//!   ties: flow ends, then timeline, failures, edge, DNS, arrivals (fixed order)
//! ```
//!
//! Each flow is decided by the edge crate ([`inregion_edge::Edge::decide`]) at its
//! ingress (the nearest healthy data center to its client point, cached per health
//! change). A flow has two packets the edge sees: the first (pins the decision) and the
//! last (TCP FIN, or the last UDP datagram), at which the edge reports a reset if the
//! binding changed (strict mode) or the processing data center failed. DNS flows are one
//! exchange and use [`inregion_edge::Edge::route`].
//!
//! Every processed flow is also checked *independently* of the edge: the region its
//! destination is bound to in the control plane's binding list of the table version the
//! decision used (a linear scan, not the edge's table), and whether the processing data
//! center is a member of that region in the reference data. A violation is counted in
//! `out_of_region_processed`; it must stay zero.

mod check;
mod failures;
mod open_flows;
mod replay;
mod run;
mod timeline;

pub(crate) use replay::WorldAt;

use crate::control_port::{Control, Refusal};
use crate::dns;
use crate::metrics::Metrics;
use crate::scenario::{ClientSpec, Dist, DnsQueryKind, PropagationMode, Scenario, ScenarioError};
use crate::time::SimTime;
use crate::world::{filtered_reference, resolve_clients, resolve_place, ClientPoint};
use failures::failure_targets;
use inregion_edge::{AffinityMode, DelayDistribution, Edge, EdgeConfig, FlowTableConfig, Topology};
use inregion_model::{GeoPoint, ReferenceData};
use ipnet::IpNet;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

/// Why a run could not start or stopped.
#[derive(Debug, thiserror::Error)]
pub enum SimError {
    /// The scenario file is invalid.
    #[error(transparent)]
    Scenario(#[from] ScenarioError),
    /// A timeline operation was refused by the control plane: the same code the API
    /// would return.
    #[error("{file}: timeline[{index}] ({what}): {refusal}")]
    Timeline {
        /// The scenario file.
        file: String,
        /// The operation's index in the file's `timeline` array.
        index: usize,
        /// What it tried (`create binding 203.0.113.0/24 → eu`).
        what: String,
        /// The control plane's answer.
        refusal: Refusal,
    },
    /// The edge refused a table or the topology could not be built.
    #[error("{file}: {message}")]
    World {
        /// The scenario file.
        file: String,
        /// What is wrong.
        message: String,
    },
    /// A DNS message could not be built or read (a bug, reported rather than panicking).
    #[error("dns probe: {0}")]
    Dns(#[from] dns::DnsError),
}

impl SimError {
    /// The API error code, for a refused timeline operation.
    pub fn api_code(&self) -> Option<u32> {
        match self {
            SimError::Timeline { refusal, .. } => Some(refusal.code),
            _ => None,
        }
    }
}

/// An applied timeline operation, for the report.
#[derive(Debug, Clone, PartialEq)]
pub struct TimelineEntry {
    /// When.
    pub at: SimTime,
    /// The operation's index in the file.
    pub index: usize,
    /// What (`create binding 203.0.113.0/25 → eu`).
    pub what: String,
    /// The table version published for it (binding operations).
    pub version: Option<u64>,
}

/// A published table version and how it propagated.
#[derive(Debug, Clone, PartialEq)]
pub struct VersionEntry {
    /// The version.
    pub version: u64,
    /// Published at.
    pub published_at: SimTime,
    /// Reached a majority of data centers at.
    pub active_at: Option<SimTime>,
    /// Reached every data center at.
    pub complete_at: Option<SimTime>,
    /// Data centers that had it at the end of the run.
    pub reached: usize,
    /// Data centers in the topology.
    pub total: usize,
    /// The bindings it carries (`cidr → region`).
    pub bindings: Vec<(IpNet, String)>,
}

/// One DNS probe observation (logged when the answer changes).
#[derive(Debug, Clone, PartialEq)]
pub struct DnsObservation {
    /// When.
    pub at: SimTime,
    /// The probe's place.
    pub from: String,
    /// The queried address.
    pub target: IpAddr,
    /// The query.
    pub query: DnsQueryKind,
    /// The ingress data center.
    pub ingress: Option<String>,
    /// The data center that processed (answered) the query; `None` when refused.
    pub answered_by: Option<String>,
    /// The answer as the probe decoded it (`TXT "FRA"`, `A 203.0.113.7`, `NODATA`,
    /// `no answer (refused)`).
    pub answer: String,
    /// The DNS message id (from the seeded stream).
    pub id: u16,
}

/// Counters that are not per flow category.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RunCounters {
    /// Events processed (arrivals, ends, operations, deliveries, ...).
    pub events: u64,
    /// Table deliveries to data centers.
    pub deliveries: u64,
    /// Flows reset because their binding changed (strict mode).
    pub reset_binding_changed: u64,
    /// Flows reset because their processing (or ingress) data center failed.
    pub reset_processing_down: u64,
    /// Flows whose pin was gone at their last packet (expired or evicted).
    pub pin_lost: u64,
    /// Most flows open at once.
    pub peak_open_flows: u64,
    /// DNS probes sent.
    pub dns_probes: u64,
    /// DNS probes answered.
    pub dns_answered: u64,
    /// Flows refused because their ingress data center itself was down (no healthy DC).
    pub refused_no_ingress: u64,
}

/// Everything a run produced.
#[derive(Debug, Clone)]
pub struct RunOutput {
    /// The streamed metrics.
    pub metrics: Metrics,
    /// Decision changes per bucket.
    pub changed_by_bucket: Vec<u64>,
    /// Resets per bucket.
    pub reset_by_bucket: Vec<u64>,
    /// Applied operations.
    pub timeline: Vec<TimelineEntry>,
    /// Published versions.
    pub versions: Vec<VersionEntry>,
    /// Health changes applied: `(time, data center, healthy)`.
    pub health_changes: Vec<(SimTime, String, bool)>,
    /// DNS observations (first answer and every change, per place × target × query).
    pub dns: Vec<DnsObservation>,
    /// Counters.
    pub counters: RunCounters,
}

struct Probe {
    name: String,
    location: GeoPoint,
}

/// A simulation ready to run: the world built, the scenario validated against it.
pub struct Simulation {
    scenario: Scenario,
    refdata: ReferenceData,
    topo: Arc<Topology>,
    edge: Edge,
    control: Control,
    points: Vec<ClientPoint>,
    probes: Vec<Probe>,
    flows: u64,
    horizon: SimTime,
}

/// Maps the scenario's propagation distribution to the edge's.
fn delay_distribution(d: &Dist) -> Result<(DelayDistribution, SimTime), String> {
    // Saturating: a delay past what `Duration` holds (a lognormal tail cap with a large
    // median and sigma) is "never", not a panic.
    let dur = |s: f64| Duration::try_from_secs_f64(s.max(0.0)).unwrap_or(Duration::MAX);
    Ok(match *d {
        Dist::Fixed(v) => (DelayDistribution::Fixed(dur(v)), SimTime::from_secs_f64(v)),
        Dist::Uniform(a, b) => (
            DelayDistribution::Uniform {
                min: dur(a),
                max: dur(b),
            },
            SimTime::from_secs_f64(b),
        ),
        Dist::LogNormal(m, s) => {
            // The edge caps the tail; e^(3σ) covers 99.9 % of draws.
            let cap = m * (3.0 * s).exp();
            (
                DelayDistribution::LogNormal {
                    median: dur(m),
                    sigma: s,
                    max: dur(cap),
                },
                SimTime::from_secs_f64(cap),
            )
        }
        _ => {
            return Err(
                "propagation.delay: the edge supports fixed, uniform and lognormal delays".into(),
            )
        }
    })
}

/// How far a run is, as [`Simulation::run_reporting`] reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Progress {
    /// Flows simulated so far.
    pub flows_done: u64,
    /// Flows in the whole run.
    pub flows_total: u64,
    /// The simulated time reached.
    pub at: SimTime,
    /// The end of the run (its duration).
    pub end: SimTime,
}

impl Simulation {
    /// Builds the world of `scenario` over `refdata` (normally
    /// [`ReferenceData::embedded`]).
    pub fn new(scenario: Scenario, refdata: &ReferenceData) -> Result<Self, SimError> {
        let file = scenario.file.clone();
        let world = |message: String| SimError::World {
            file: file.clone(),
            message,
        };
        let refdata = filtered_reference(refdata, &scenario.exclude)
            .map_err(|m| world(format!("topology.exclude: {m}")))?;
        let topo = Arc::new(Topology::from_reference(&refdata).map_err(|e| world(e.to_string()))?);
        let (propagation, max_delay) =
            delay_distribution(&scenario.propagation.delay).map_err(world)?;
        // Flows are ended explicitly (their last packet); the idle timeout is only a safety
        // net, so it must outlast any flow of the run.
        let idle = Duration::from_secs_f64(scenario.duration.as_secs_f64() + 3600.0);
        let config = EdgeConfig {
            affinity: match scenario.propagation.mode {
                PropagationMode::Default => AffinityMode::Pinned,
                PropagationMode::Strict => AffinityMode::ResetOnChange,
            },
            flows: FlowTableConfig {
                tcp_idle_timeout: idle,
                other_idle_timeout: idle,
                ..FlowTableConfig::default()
            },
            propagation,
        };
        let edge = Edge::new(Arc::clone(&topo), config);
        let control =
            Control::new(&scenario, &refdata, max_delay, scenario.seed).map_err(&world)?;
        let points = resolve_clients(&refdata, &scenario.clients)
            .map_err(|(key, m)| world(format!("{key}: {m}")))?;
        let mut probes = Vec::new();
        if let Some(d) = &scenario.dns {
            let places: Vec<ClientSpec> = if d.from.is_empty() {
                scenario.clients.clone()
            } else {
                d.from.clone()
            };
            for p in &places {
                let pts = resolve_place(&refdata, &p.place, 1.0, 0)
                    .map_err(|m| world(format!("{}: {m}", p.key)))?;
                probes.push(Probe {
                    name: p.name.clone(),
                    location: pts[0].location,
                });
            }
        }
        for f in &scenario.failures {
            if failure_targets(&refdata, &topo, &f.target).is_empty() {
                return Err(world(format!("{}: matches no data center", f.key)));
            }
        }
        Ok(Simulation {
            flows: scenario.workload.flows,
            horizon: scenario.duration,
            scenario,
            refdata,
            topo,
            edge,
            control,
            points,
            probes,
        })
    }

    /// The scenario being run.
    pub fn scenario(&self) -> &Scenario {
        &self.scenario
    }

    /// The topology of the run.
    pub fn topology(&self) -> &Arc<Topology> {
        &self.topo
    }

    /// Runs to the end. `progress(done, total)` (flows) is called every 2^16 flows; see
    /// [`run_reporting`](Self::run_reporting) for progress in simulated time as well.
    pub fn run(self, progress: &mut dyn FnMut(u64, u64)) -> Result<RunOutput, SimError> {
        self.run_reporting(&mut |p: &Progress| progress(p.flows_done, p.flows_total))
    }

    /// Runs to the end, calling `progress` every 2^16 flows, every 256 DNS probe rounds
    /// (a probe-heavy run with few flows still shows progress) and once at the end.
    pub fn run_reporting(self, progress: &mut dyn FnMut(&Progress)) -> Result<RunOutput, SimError> {
        run::Run::new(self, progress).run()
    }
}
