//! The discrete-event engine.
//!
//! One thread, virtual time, one seeded RNG per component. Flow arrivals come from the
//! [`FlowGenerator`] in time order (no event is queued per arrival); every other event
//! sits in a small queue of its own kind, and the loop always runs the earliest:
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

use crate::control_port::{Control, ControlPort, Refusal};
use crate::dns;
use crate::metrics::{Categories, FlowRecord, Metrics, Outcome};
use crate::rng::{stream, SimRng, Stream};
use crate::scenario::{
    ClientSpec, Dist, DnsQueryKind, Failure, FailureTarget, Op, PropagationMode, Scenario,
    ScenarioError,
};
use crate::time::SimTime;
use crate::workload::{FlowGenerator, Protocol};
use crate::world::{filtered_reference, resolve_clients, resolve_place, ClientPoint};
use inregion_edge::{
    AffinityMode, DcId, Decision, DelayDistribution, Edge, EdgeConfig, FlowKey, FlowTableConfig,
    ResetReason, Topology, Verdict,
};
use inregion_model::{GeoPoint, ReferenceData};
use ipnet::IpNet;
use rand::Rng;
use std::cmp::Reverse;
use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
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

fn et(t: SimTime) -> inregion_edge::SimTime {
    inregion_edge::SimTime::from_nanos(t.as_nanos())
}

fn st(t: inregion_edge::SimTime) -> SimTime {
    SimTime::from_nanos(t.as_nanos())
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

/// An open flow waiting for its last packet (kept in a slab; the heap holds only its
/// `(end, id)` key and slot, so that sifting moves little memory).
#[derive(Clone, Copy)]
struct Open {
    key: FlowKey,
    ingress: DcId,
    processed_at: Option<DcId>,
    verdict: Verdict,
    table_version: u64,
    epoch: u32,
}

/// Open flows: a slab of [`Open`] and a min-heap of `(end, id, slot)`.
#[derive(Default)]
struct OpenFlows {
    slab: Vec<Open>,
    free: Vec<u32>,
    heap: QuadHeap,
}

impl OpenFlows {
    #[inline]
    fn push(&mut self, end: u64, id: u64, o: Open) {
        let slot = match self.free.pop() {
            Some(s) => {
                self.slab[s as usize] = o;
                s
            }
            None => {
                self.slab.push(o);
                (self.slab.len() - 1) as u32
            }
        };
        self.heap.push((end, id, slot));
    }
    /// When the next open flow ends (`u64::MAX`: none). Also starts loading that flow's
    /// slab entry, which the event loop reads soon after.
    #[inline]
    fn next_end(&self) -> u64 {
        match self.heap.peek() {
            Some((end, _, slot)) => {
                inregion_hint::prefetch(&self.slab, slot as usize);
                end
            }
            None => u64::MAX,
        }
    }
    #[inline]
    fn pop(&mut self) -> Option<Open> {
        let (_, _, slot) = self.heap.pop()?;
        self.free.push(slot);
        Some(self.slab[slot as usize])
    }
    fn len(&self) -> usize {
        self.heap.len()
    }
}

/// A min-heap of `(end, id, slot)` with four children per node: half the levels of a
/// binary heap, so a pop (the simulator's most frequent heap operation: one per flow)
/// does half the unpredictable steps. `(end, id)` is kept packed in one `u128` so that
/// choosing the least of four children is a run of compare-and-select without branches.
/// Ties on `end` pop in `id` order, as `(end, id)` is unique, which keeps runs
/// deterministic.
#[derive(Default)]
struct QuadHeap {
    items: Vec<(u128, u32)>,
}

impl QuadHeap {
    #[inline]
    fn pack(end: u64, id: u64) -> u128 {
        u128::from(end) << 64 | u128::from(id)
    }

    #[inline]
    fn unpack(&(key, slot): &(u128, u32)) -> (u64, u64, u32) {
        ((key >> 64) as u64, key as u64, slot)
    }

    fn len(&self) -> usize {
        self.items.len()
    }

    #[inline]
    fn peek(&self) -> Option<(u64, u64, u32)> {
        self.items.first().map(Self::unpack)
    }

    #[inline]
    fn push(&mut self, (end, id, slot): (u64, u64, u32)) {
        let item = (Self::pack(end, id), slot);
        let mut i = self.items.len();
        self.items.push(item);
        while i > 0 {
            let parent = (i - 1) / 4;
            if self.items[parent].0 <= item.0 {
                break;
            }
            self.items[i] = self.items[parent];
            i = parent;
        }
        self.items[i] = item;
    }

    #[inline]
    fn pop(&mut self) -> Option<(u64, u64, u32)> {
        let last = self.items.pop()?;
        if self.items.is_empty() {
            return Some(Self::unpack(&last));
        }
        let top = self.items[0];
        let n = self.items.len();
        let mut i = 0;
        loop {
            let first = 4 * i + 1;
            if first >= n {
                break;
            }
            let (mut best, mut best_key) = (first, self.items[first].0);
            for c in first + 1..(first + 4).min(n) {
                let k = self.items[c].0;
                let less = k < best_key;
                best = if less { c } else { best };
                best_key = if less { k } else { best_key };
            }
            if last.0 <= best_key {
                break;
            }
            self.items[i] = self.items[best];
            i = best;
        }
        self.items[i] = last;
        Some(Self::unpack(&top))
    }
}

/// The independent region check: per table version, the control plane's bindings
/// (most specific first), and region membership from the reference data.
struct Check {
    member: Vec<bool>,
    located: Vec<bool>,
    ndc: usize,
}

/// One binding of the independent check, as plain integers: `addr & mask == net` (both
/// families in one `u128`, the family compared too), so that checking a flow against a
/// version's bindings is a short scan of integer compares.
#[derive(Clone, Copy, Debug)]
struct CheckNet {
    v6: bool,
    net: u128,
    mask: u128,
    region: usize,
}

impl CheckNet {
    fn new(net: IpNet, region: usize) -> Self {
        let (v6, net, mask) = match net {
            IpNet::V4(n) => (
                false,
                u128::from(n.network().to_bits()),
                u128::from(n.netmask().to_bits()),
            ),
            IpNet::V6(n) => (true, n.network().to_bits(), n.netmask().to_bits()),
        };
        CheckNet {
            v6,
            net,
            mask,
            region,
        }
    }
}

fn addr_bits(a: IpAddr) -> (bool, u128) {
    match a {
        IpAddr::V4(a) => (false, u128::from(a.to_bits())),
        IpAddr::V6(a) => (true, a.to_bits()),
    }
}

impl Check {
    /// The region the control plane's bindings of `version` give `dst` (most specific
    /// first), or `None`.
    #[inline]
    fn region_for(versions: &[Vec<CheckNet>], version: u64, dst: IpAddr) -> Option<usize> {
        let (v6, a) = addr_bits(dst);
        versions
            .get(version as usize)?
            .iter()
            .find(|n| n.v6 == v6 && a & n.mask == n.net)
            .map(|n| n.region)
    }
    #[inline]
    fn is_member(&self, region: usize, dc: usize) -> bool {
        self.member[region * self.ndc + dc]
    }
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
    pub fn run_reporting(
        mut self,
        progress: &mut dyn FnMut(&Progress),
    ) -> Result<RunOutput, SimError> {
        let sc = &self.scenario;
        let ndc = self.topo.dc_count();
        let buckets = (sc.duration.as_nanos().div_ceil(sc.bucket.as_nanos())).max(1) as usize;
        let bucket_ns = sc.bucket.as_nanos();
        let mut continents: Vec<String> = self.points.iter().map(|p| p.continent.clone()).collect();
        continents.sort();
        continents.dedup();
        let cats = Categories {
            continents: continents.clone(),
            populations: sc.clients.iter().map(|c| c.name.clone()).collect(),
            regions: std::iter::once("none".to_owned())
                .chain(self.topo.regions().iter().map(|r| r.key.to_string()))
                .collect(),
            data_centers: self.topo.dcs().iter().map(|d| d.code.to_string()).collect(),
        };
        let mut metrics = Metrics::new(cats, buckets);
        let mut changed_by_bucket = vec![0u64; buckets];
        let mut reset_by_bucket = vec![0u64; buckets];
        let point_continent: Vec<u16> = self
            .points
            .iter()
            .map(|p| {
                continents
                    .iter()
                    .position(|c| *c == p.continent)
                    .unwrap_or(0) as u16
            })
            .collect();
        let point_population: Vec<u16> = self.points.iter().map(|p| p.population as u16).collect();
        let weights: Vec<f64> = self.points.iter().map(|p| p.weight).collect();

        // Independent check data (reference data, not the edge's topology).
        let nreg = self.refdata.regions().len();
        let mut member = vec![false; nreg * ndc];
        for r in 0..nreg {
            for &dc in self.refdata.members(r) {
                member[r * ndc + dc] = true;
            }
        }
        let located: Vec<bool> = self
            .refdata
            .data_centers()
            .iter()
            .map(|d| d.location.is_some())
            .collect();
        let check = Check {
            member,
            located,
            ndc,
        };

        let mut gen = FlowGenerator::new(&sc.workload, self.flows, self.horizon, &weights, sc.seed);
        let mut r_prop: SimRng = stream(sc.seed, Stream::Propagation);
        let mut r_dns: SimRng = stream(sc.seed, Stream::Dns);

        let mut failures =
            FailureSchedule::new(&self.refdata, &self.topo, &sc.failures, self.horizon);

        let mut ingress_cache: Vec<Option<DcId>> = self
            .points
            .iter()
            .map(|p| self.edge.ingress_for(&p.location))
            .collect();
        let mut epoch: u32 = 0;
        let mut healthy_members: Vec<u32> = (0..nreg)
            .map(|r| {
                self.refdata
                    .members(r)
                    .iter()
                    .filter(|&&d| check.located[d])
                    .count() as u32
            })
            .collect();

        let mut open = OpenFlows::default();
        let mut out = RunOutput {
            metrics: Metrics::new(Categories::default(), 1),
            changed_by_bucket: Vec::new(),
            reset_by_bucket: Vec::new(),
            timeline: Vec::new(),
            versions: Vec::new(),
            health_changes: Vec::new(),
            dns: Vec::new(),
            counters: RunCounters::default(),
        };
        let mut c = RunCounters::default();
        let mut ops = OpState::default();
        let mut ti = 0usize;
        let dns_every = sc.dns.as_ref().map(|d| d.every.as_nanos());
        let mut next_dns: u64 = if dns_every.is_some() && !self.probes.is_empty() {
            0
        } else {
            u64::MAX
        };
        let mut dns_last: BTreeMap<(usize, usize, DnsQueryKind), String> = BTreeMap::new();
        let horizon = self.horizon.as_nanos();
        let total = self.flows;
        let mut done: u64 = 0;
        let mut dns_rounds: u64 = 0;
        let mut pending = gen.next();

        loop {
            let arrival = pending.as_ref().map_or(u64::MAX, |f| f.at.as_nanos());
            let end_t = open.next_end();
            let op_t = sc.timeline.get(ti).map_or(u64::MAX, |o| o.at.as_nanos());
            let h_t = failures.next_at().map_or(u64::MAX, SimTime::as_nanos);
            let edge_t = self.edge.next_deadline().map_or(u64::MAX, |t| t.as_nanos());
            // Edge deadlines past the horizon only matter while flows are still open.
            let edge_t = if edge_t > horizon && end_t == u64::MAX && arrival == u64::MAX {
                u64::MAX
            } else {
                edge_t
            };
            let dns_t = if next_dns <= horizon {
                next_dns
            } else {
                u64::MAX
            };
            let t = arrival.min(end_t).min(op_t).min(h_t).min(edge_t).min(dns_t);
            if t == u64::MAX {
                break;
            }
            c.events += 1;
            let now = SimTime::from_nanos(t);
            if end_t == t {
                // ---- a flow's last packet ----------------------------------------------
                let o = open.pop().expect("peeked");
                // A TCP flow ends with its FIN, a UDP flow with its last packet: either
                // way the edge decides it and drops the pin in one call.
                let d_end = self.edge.last_packet(o.ingress, &o.key, et(now));
                let b = ((t / bucket_ns) as usize).min(buckets - 1);
                match d_end.verdict {
                    Verdict::Reset(ResetReason::BindingChanged) => {
                        c.reset_binding_changed += 1;
                        reset_by_bucket[b] += 1;
                    }
                    Verdict::Reset(ResetReason::ProcessingDown) => {
                        c.reset_processing_down += 1;
                        reset_by_bucket[b] += 1;
                    }
                    _ if !d_end.established => c.pin_lost += 1,
                    _ => {}
                }
                if o.epoch != epoch || self.edge.table_version(o.ingress) != o.table_version {
                    let fresh = self.edge.route(o.ingress, o.key.dst());
                    if fresh.verdict != o.verdict || fresh.processed_at != o.processed_at {
                        metrics.decision_changed += 1;
                        changed_by_bucket[b] += 1;
                    }
                }
            } else if op_t == t {
                // ---- a control-plane operation -----------------------------------------
                let op = &sc.timeline[ti];
                ti += 1;
                let entry = apply_op(
                    sc,
                    &self.refdata,
                    &self.topo,
                    &mut self.edge,
                    &mut self.control,
                    &mut ops,
                    op,
                    now,
                    &mut r_prop,
                )?;
                out.timeline.push(entry);
            } else if h_t == t {
                // ---- failures and recoveries -------------------------------------------
                let changes = failures.apply_due(now);
                for &(dc, healthy) in &changes {
                    if self.edge.is_healthy(dc) != healthy {
                        out.health_changes
                            .push((now, self.topo.dc(dc).code.to_string(), healthy));
                        for (r, count) in healthy_members.iter_mut().enumerate() {
                            if check.located[dc.index()] && check.is_member(r, dc.index()) {
                                if healthy {
                                    *count += 1
                                } else {
                                    *count -= 1
                                }
                            }
                        }
                    }
                }
                self.edge.set_health(&changes);
                epoch += 1;
                for (slot, p) in ingress_cache.iter_mut().zip(&self.points) {
                    *slot = self.edge.ingress_for(&p.location);
                }
            } else if edge_t == t {
                // ---- table deliveries, flow-table sweeps -------------------------------
                let r = self.edge.tick(et(now));
                c.deliveries += u64::from(r.delivered);
            } else if dns_t == t {
                // ---- a DNS probe round -------------------------------------------------
                let d = sc.dns.as_ref().expect("probe rounds only with [dns]");
                for (pi, p) in self.probes.iter().enumerate() {
                    let ingress = self.edge.ingress_for(&p.location);
                    for (ti2, target) in d.targets.iter().enumerate() {
                        for &q in &d.queries {
                            let id: u16 = r_dns.gen();
                            let query = dns::encode_query(id, q)?;
                            c.dns_probes += 1;
                            let decision = ingress.map(|i| self.edge.route(i, *target));
                            let answered_by = decision
                                .and_then(|d| d.processed_at)
                                .map(|dc| self.topo.dc(dc).code.to_string());
                            let answer = match &answered_by {
                                Some(code) => {
                                    let bytes = dns::answer(&query, code, *target)?;
                                    let a = dns::read_answer(&bytes, id)?;
                                    c.dns_answered += 1;
                                    if let Some(txt) = a.txt.first() {
                                        format!("TXT \"{txt}\"")
                                    } else if let Some(addr) = a.addrs.first() {
                                        match addr {
                                            IpAddr::V4(_) => format!("A {addr}"),
                                            IpAddr::V6(_) => format!("AAAA {addr}"),
                                        }
                                    } else {
                                        format!("{} (no records)", a.rcode)
                                    }
                                }
                                None => "no answer (refused)".to_owned(),
                            };
                            let key = (pi, ti2, q);
                            let summary = format!("{answered_by:?}|{answer}");
                            if dns_last.get(&key) != Some(&summary) {
                                dns_last.insert(key, summary);
                                out.dns.push(DnsObservation {
                                    at: now,
                                    from: p.name.clone(),
                                    target: *target,
                                    query: q,
                                    ingress: ingress.map(|i| self.topo.dc(i).code.to_string()),
                                    answered_by,
                                    answer,
                                    id,
                                });
                            }
                        }
                    }
                }
                next_dns = next_dns.saturating_add(dns_every.unwrap_or(u64::MAX));
                dns_rounds += 1;
                if dns_rounds.is_multiple_of(256) {
                    progress(&Progress {
                        flows_done: done,
                        flows_total: total,
                        at: now,
                        end: self.horizon,
                    });
                }
            } else {
                // ---- a flow arrival ----------------------------------------------------
                let f = pending.take().expect("arrival");
                pending = gen.next();
                done += 1;
                if done & 0xFFFF == 0 {
                    progress(&Progress {
                        flows_done: done,
                        flows_total: total,
                        at: now,
                        end: self.horizon,
                    });
                }
                let b = ((t / bucket_ns) as usize).min(buckets - 1);
                let continent = point_continent[f.client as usize];
                let population = point_population[f.client as usize];
                let Some(ingress) = ingress_cache[f.client as usize] else {
                    // No healthy data center with coordinates anywhere.
                    c.refused_no_ingress += 1;
                    metrics.record(&FlowRecord {
                        bucket: b as u32,
                        continent,
                        population,
                        region: 0,
                        outcome: Outcome::Refused,
                        ingress: 0,
                        processed_at: None,
                        added_rtt_us: 0,
                        bytes: 0,
                    });
                    continue;
                };
                let (proto, dport) = match f.protocol {
                    Protocol::Tcp => (inregion_edge::Protocol::TCP, 443),
                    Protocol::Udp => (inregion_edge::Protocol::UDP, 443),
                    Protocol::Dns => (inregion_edge::Protocol::UDP, 53),
                };
                // Sources are unique among open flows: the flow id in a client range.
                let key = match f.dst {
                    IpAddr::V4(d) => FlowKey::v4(
                        proto,
                        Ipv4Addr::from(0x6440_0000 | (f.id as u32 & 0x003F_FFFF)),
                        f.src_port,
                        d,
                        dport,
                    ),
                    IpAddr::V6(d) => FlowKey::v6(
                        proto,
                        Ipv6Addr::from(0xfd00_u128 << 112 | u128::from(f.id)),
                        f.src_port,
                        d,
                        dport,
                    ),
                };
                let d: Decision = if f.protocol == Protocol::Dns {
                    self.edge.route(ingress, f.dst)
                } else {
                    self.edge.decide(ingress, &key, et(now))
                };
                let outcome = match d.verdict {
                    Verdict::Global => Outcome::Unbound,
                    Verdict::InRegion => Outcome::InRegion,
                    Verdict::Forwarded => Outcome::Forwarded,
                    Verdict::Refused(_) | Verdict::Reset(_) => Outcome::Refused,
                };
                // Independent check against the control plane's bindings of that version.
                if let Some(r) = Check::region_for(&ops.check_versions, d.table_version, f.dst) {
                    match d.processed_at {
                        Some(dc) if !check.is_member(r, dc.index()) => {
                            metrics.out_of_region_processed += 1
                        }
                        None if healthy_members[r] > 0 && self.edge.is_healthy(ingress) => {
                            metrics.wrongly_refused += 1
                        }
                        _ => {}
                    }
                }
                metrics.record(&FlowRecord {
                    bucket: b as u32,
                    continent,
                    population,
                    region: d.region.map_or(0, |r| r.0 + 1),
                    outcome,
                    ingress: ingress.0,
                    processed_at: d.processed_at.map(|p| p.0),
                    added_rtt_us: d.added_rtt_us,
                    bytes: f.bytes,
                });
                if d.is_processed() && f.protocol != Protocol::Dns {
                    open.push(
                        t.saturating_add(f.duration.as_nanos()),
                        f.id,
                        Open {
                            key,
                            ingress,
                            processed_at: d.processed_at,
                            verdict: d.verdict,
                            table_version: d.table_version,
                            epoch,
                        },
                    );
                    c.peak_open_flows = c.peak_open_flows.max(open.len() as u64);
                }
            }
        }
        progress(&Progress {
            flows_done: done,
            flows_total: total,
            at: self.horizon,
            end: self.horizon,
        });

        out.versions = std::mem::take(&mut ops.versions);
        for v in &mut out.versions {
            if let Some(s) = self.edge.version_status(v.version) {
                v.active_at = s.active_at.map(st);
                v.complete_at = s.complete_at.map(st);
                v.reached = s.reached;
                v.total = s.total;
            }
        }
        metrics.finish();
        out.metrics = metrics;
        out.changed_by_bucket = changed_by_bucket;
        out.reset_by_bucket = reset_by_bucket;
        out.counters = c;
        Ok(out)
    }
}

/// The data centers a failure takes down.
/// The scenario's failures as health changes over time. A data center is down while at
/// least one failure covering it is in force: overlapping failures (a data center inside
/// a failed region, or a short outage inside a longer one) keep it down until the last
/// of them ends, instead of the first recovery bringing it back early.
struct FailureSchedule {
    /// `(time, data centers, starts)`, sorted (stable) by time.
    events: Vec<(SimTime, Vec<DcId>, bool)>,
    next: usize,
    /// Failures in force per data center.
    depth: Vec<u32>,
}

impl FailureSchedule {
    /// Recoveries after `horizon` (the end of the run) do not happen within it.
    fn new(
        refdata: &ReferenceData,
        topo: &Topology,
        failures: &[Failure],
        horizon: SimTime,
    ) -> Self {
        let mut events = Vec::new();
        for f in failures.iter().filter(|f| f.at <= horizon) {
            let dcs = failure_targets(refdata, topo, &f.target);
            if let Some(u) = f.until.filter(|&u| u <= horizon) {
                events.push((u, dcs.clone(), false));
            }
            events.push((f.at, dcs, true));
        }
        events.sort_by_key(|e| e.0);
        Self {
            events,
            next: 0,
            depth: vec![0; topo.dc_count()],
        }
    }

    /// When the next failure starts or ends.
    fn next_at(&self) -> Option<SimTime> {
        self.events.get(self.next).map(|e| e.0)
    }

    /// Applies every start and end due at `now`; returns each touched data center once
    /// with its resulting health (healthy when no failure covers it any more).
    fn apply_due(&mut self, now: SimTime) -> Vec<(DcId, bool)> {
        let mut touched: Vec<DcId> = Vec::new();
        while let Some((at, dcs, starts)) = self.events.get(self.next) {
            if *at != now {
                break;
            }
            self.next += 1;
            for &dc in dcs {
                let d = &mut self.depth[dc.index()];
                *d = if *starts { *d + 1 } else { d.saturating_sub(1) };
                if !touched.contains(&dc) {
                    touched.push(dc);
                }
            }
        }
        touched
            .into_iter()
            .map(|dc| (dc, self.depth[dc.index()] == 0))
            .collect()
    }
}

fn failure_targets(refdata: &ReferenceData, topo: &Topology, target: &FailureTarget) -> Vec<DcId> {
    match target {
        FailureTarget::DataCenter(code) => topo.dc_by_code(*code).into_iter().collect(),
        FailureTarget::Country(cc) => refdata
            .data_centers()
            .iter()
            .enumerate()
            .filter(|(_, d)| d.country == *cc)
            .map(|(i, _)| DcId(i as u16))
            .collect(),
        FailureTarget::Region(key) => refdata
            .members_of(key)
            .map(|m| m.iter().map(|&i| DcId(i as u16)).collect())
            .unwrap_or_default(),
    }
}

/// What the replay of a timeline keeps between operations.
#[derive(Default)]
struct OpState {
    /// Scenario binding names → control-plane ids.
    handles: BTreeMap<String, String>,
    /// Scenario address-map names → control-plane ids.
    maps: BTreeMap<String, String>,
    /// The last published table version.
    version: u64,
    /// Per version, the control plane's bindings (most specific first) with the region's
    /// index in the reference data: the independent check's view.
    check_versions: Vec<Vec<CheckNet>>,
    /// Published versions.
    versions: Vec<VersionEntry>,
}

/// Applies one timeline operation through the control plane and, for binding changes,
/// publishes the new table to the edge.
#[allow(clippy::too_many_arguments)]
fn apply_op(
    sc: &Scenario,
    refdata: &ReferenceData,
    topo: &Arc<Topology>,
    edge: &mut Edge,
    control: &mut Control,
    st: &mut OpState,
    op: &crate::scenario::TimelineOp,
    now: SimTime,
    rng: &mut SimRng,
) -> Result<TimelineEntry, SimError> {
    if st.check_versions.is_empty() {
        st.check_versions.push(Vec::new());
    }
    let fail = |refusal: Refusal| SimError::Timeline {
        file: sc.file.clone(),
        index: op.index,
        what: op.op.describe(),
        refusal,
    };
    let world = |message: String| SimError::World {
        file: sc.file.clone(),
        message,
    };
    let unknown = |what: &str, name: &str| Refusal {
        code: 1109,
        http_status: 404,
        message: format!("{what} {name:?} is not defined earlier in the timeline"),
    };
    let mut publish = false;
    match &op.op {
        Op::CreateBinding {
            name,
            prefix,
            cidr,
            region,
        } => {
            let id = control
                .create_binding(*prefix, cidr, region, now)
                .map_err(fail)?;
            st.handles.insert(name.clone(), id);
            publish = true;
        }
        Op::PatchBinding { binding, region } => {
            let id = st
                .handles
                .get(binding)
                .ok_or_else(|| fail(unknown("binding", binding)))?;
            control.patch_binding(id, region, now).map_err(fail)?;
            publish = true;
        }
        Op::DeleteBinding { binding } => {
            let id = st
                .handles
                .get(binding)
                .ok_or_else(|| fail(unknown("binding", binding)))?;
            control.delete_binding(id, now).map_err(fail)?;
            publish = true;
        }
        Op::CreateAddressMap { map, account, ips } => {
            let id = control
                .create_address_map(*account, ips, now)
                .map_err(fail)?;
            st.maps.insert(map.clone(), id);
        }
        Op::AddAddressMapIp { map, ip } => {
            let id = st
                .maps
                .get(map)
                .ok_or_else(|| fail(unknown("address map", map)))?;
            control.add_address_map_ip(id, ip, now).map_err(fail)?;
        }
        Op::RemoveAddressMapIp { map, ip } => {
            let id = st
                .maps
                .get(map)
                .ok_or_else(|| fail(unknown("address map", map)))?;
            control.remove_address_map_ip(id, ip, now).map_err(fail)?;
        }
    }
    let mut entry = TimelineEntry {
        at: now,
        index: op.index,
        what: op.op.describe(),
        version: None,
    };
    if publish {
        st.version += 1;
        let live = control.live_bindings();
        let mut list: Vec<(IpNet, usize)> = Vec::new();
        let mut pairs = Vec::new();
        for b in &live {
            let key =
                inregion_model::RegionKey::parse(&b.region).map_err(|e| world(e.to_string()))?;
            let r = refdata.region_index(&key).ok_or_else(|| {
                world(format!(
                    "region {} has no data center in this topology",
                    b.region
                ))
            })?;
            list.push((b.cidr, r));
            pairs.push((b.cidr, key));
        }
        list.sort_by_key(|(n, _)| Reverse(n.prefix_len()));
        st.check_versions
            .push(list.into_iter().map(|(n, r)| CheckNet::new(n, r)).collect());
        let table = inregion_edge::region_table(topo, pairs.iter().map(|(n, k)| (*n, k)))
            .map_err(|e| world(e.to_string()))?;
        edge.publish(st.version, table, et(now), rng)
            .map_err(|e| world(e.to_string()))?;
        st.versions.push(VersionEntry {
            version: st.version,
            published_at: now,
            active_at: None,
            complete_at: None,
            reached: 0,
            total: topo.dc_count(),
            bindings: live.iter().map(|b| (b.cidr, b.region.clone())).collect(),
        });
        entry.version = Some(st.version);
    }
    Ok(entry)
}

/// The world at one instant: the edge after replaying the timeline, the failures and the
/// table deliveries up to that time (no flows). Used by `inregion trace`.
pub struct WorldAt {
    /// The edge at `at`.
    pub edge: Edge,
    /// The topology.
    pub topology: Arc<Topology>,
    /// The reference data of the run (less excluded data centers).
    pub refdata: ReferenceData,
    /// The instant.
    pub at: SimTime,
    /// Operations applied up to `at`.
    pub timeline: Vec<TimelineEntry>,
    /// Versions published up to `at`.
    pub versions: Vec<VersionEntry>,
    /// Per data center, when its current table version arrived.
    pub arrived_at: Vec<SimTime>,
    /// Health changes applied up to `at`.
    pub health_changes: Vec<(SimTime, String, bool)>,
}

impl Simulation {
    /// Replays the control-plane timeline, failures and propagation up to `at` (flows
    /// and DNS probes are not simulated).
    pub fn replay_until(mut self, at: SimTime) -> Result<WorldAt, SimError> {
        let sc = &self.scenario;
        let mut r_prop: SimRng = stream(sc.seed, Stream::Propagation);
        let mut ops = OpState::default();
        let mut timeline = Vec::new();
        let mut health_changes = Vec::new();
        let mut failures =
            FailureSchedule::new(&self.refdata, &self.topo, &sc.failures, self.horizon);
        let ndc = self.topo.dc_count();
        let mut arrived_at = vec![SimTime::ZERO; ndc];
        let mut known: Vec<u64> = vec![0; ndc];
        let mut ti = 0usize;
        loop {
            let op_t = sc.timeline.get(ti).map_or(SimTime::MAX, |o| o.at);
            let h_t = failures.next_at().unwrap_or(SimTime::MAX);
            let edge_t = self.edge.next_deadline().map_or(SimTime::MAX, st);
            let t = op_t.min(h_t).min(edge_t);
            if t > at || t == SimTime::MAX {
                break;
            }
            if op_t == t {
                let op = &sc.timeline[ti];
                ti += 1;
                timeline.push(apply_op(
                    sc,
                    &self.refdata,
                    &self.topo,
                    &mut self.edge,
                    &mut self.control,
                    &mut ops,
                    op,
                    t,
                    &mut r_prop,
                )?);
            } else if h_t == t {
                let changes = failures.apply_due(t);
                for &(dc, h) in &changes {
                    if self.edge.is_healthy(dc) != h {
                        health_changes.push((t, self.topo.dc(dc).code.to_string(), h));
                    }
                }
                self.edge.set_health(&changes);
            } else {
                self.edge.tick(et(t));
            }
            for (i, k) in known.iter_mut().enumerate() {
                let v = self.edge.table_version(DcId(i as u16));
                if v != *k {
                    *k = v;
                    arrived_at[i] = t;
                }
            }
        }
        let mut versions = ops.versions;
        for v in &mut versions {
            if let Some(s) = self.edge.version_status(v.version) {
                v.active_at = s.active_at.map(st).filter(|&x| x <= at);
                v.complete_at = s.complete_at.map(st).filter(|&x| x <= at);
                v.reached = s.reached;
            }
        }
        Ok(WorldAt {
            edge: self.edge,
            topology: self.topo,
            refdata: self.refdata,
            at,
            timeline,
            versions,
            arrived_at,
            health_changes,
        })
    }
}

#[cfg(test)]
mod check_net_tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        /// The integer form agrees with `ipnet`'s `contains` for any prefix and address
        /// of either family (including /0, /32, /128 and mixed families).
        #[test]
        fn agrees_with_ipnet(
            v6_net in any::<bool>(), v6_addr in any::<bool>(),
            net_bits in any::<u128>(), addr_bits_in in any::<u128>(), len in 0u8..=128,
            share in 0u32..=128,
        ) {
            let net: IpNet = if v6_net {
                ipnet::Ipv6Net::new(std::net::Ipv6Addr::from_bits(net_bits), len).unwrap().into()
            } else {
                ipnet::Ipv4Net::new(std::net::Ipv4Addr::from_bits(net_bits as u32), len % 33)
                    .unwrap()
                    .into()
            };
            // Half the time, an address sharing a prefix of `share` bits with the net.
            let raw = if share % 2 == 0 {
                let keep = if share == 0 { 0 } else { u128::MAX << (128 - share) };
                (net_bits & keep) | (addr_bits_in & !keep)
            } else {
                addr_bits_in
            };
            let addr: IpAddr = if v6_addr {
                std::net::Ipv6Addr::from_bits(raw).into()
            } else {
                std::net::Ipv4Addr::from_bits(if v6_net { raw as u32 } else {
                    let keep = if share == 0 { 0 } else { u32::MAX.checked_shl(32 - share.min(32)).unwrap_or(0) };
                    ((net_bits as u32) & keep) | ((addr_bits_in as u32) & !keep)
                }).into()
            };
            let c = CheckNet::new(net, 7);
            let got = Check::region_for(&[vec![c]], 0, addr);
            prop_assert_eq!(got, net.contains(&addr).then_some(7));
        }
    }
}

#[cfg(test)]
mod quad_heap_tests {
    use super::QuadHeap;
    use proptest::prelude::*;
    use std::cmp::Reverse;
    use std::collections::BinaryHeap;

    proptest! {
        /// Any interleaving of pushes and pops gives what `std`'s binary heap gives.
        #[test]
        fn pops_in_the_order_of_a_binary_heap(
            ops in proptest::collection::vec(prop_oneof![
                (0u64..50).prop_map(Some),
                Just(None),
            ], 0..400)
        ) {
            let mut ours = QuadHeap::default();
            let mut model = BinaryHeap::new();
            for (id, op) in ops.into_iter().enumerate() {
                match op {
                    Some(end) => {
                        let item = (end, id as u64, id as u32);
                        ours.push(item);
                        model.push(Reverse(item));
                    }
                    None => prop_assert_eq!(ours.pop(), model.pop().map(|r| r.0)),
                }
                prop_assert_eq!(ours.peek(), model.peek().map(|r| r.0));
                prop_assert_eq!(ours.len(), model.len());
            }
            while let Some(Reverse(want)) = model.pop() {
                prop_assert_eq!(ours.pop(), Some(want));
            }
            prop_assert_eq!(ours.pop(), None);
        }
    }
}
