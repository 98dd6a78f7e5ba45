//! The edge: health, the precomputed route plan, per-DC tables and flow tables.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::Arc;
use std::time::Duration;

use inregion_model::{GeoPoint, ReferenceData, RegionKey};
use inregion_table::{Snapshot, Table};
use ipnet::IpNet;
use rand::RngCore;

use crate::decision::{Candidate, Decision, Explanation, RefuseReason, ResetReason, Verdict};
use crate::flow::{
    Entries, Entry, FlowIndex, FlowKey, FlowStats, FlowTable, FlowTableConfig, Probe, TcpFlags,
    Timeouts, NO_SLOT,
};
use crate::propagation::{DcTable, DelayDistribution, Propagation, VersionStatus};
use crate::time::SimTime;
use crate::topology::{DcId, RegionIndex, Topology, TopologyError, RTT_UNREACHABLE};

/// What happens to established flows when the binding of their destination changes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum AffinityMode {
    /// A flow keeps the decision (and table version) of its first packet until FIN/RST or
    /// idle timeout, whatever is published meanwhile: "existing traffic keeps being
    /// served" (Cloudflare's original documentation). The default.
    #[default]
    Pinned,
    /// Stricter behaviour from Cloudflare's newer documentation: addresses in use see
    /// TCP resets while a binding propagates. When the ingress's table version differs
    /// from a flow's pinned version and the destination's region changed, the next
    /// packet gets [`Verdict::Reset`] and the pin is dropped (the next packet starts a new
    /// flow).
    ResetOnChange,
}

/// Chooses the forwarding target for traffic bound to a region the ingress is not in
/// (pluggable, for load-aware choices). Fail closed by construction: it can only pick
/// one of the candidates, which are the region's healthy members with a known RTT from
/// the ingress; `None` (or an index out of range) refuses the traffic.
///
/// Choices are precomputed per (ingress, region) whenever health changes or
/// [`Edge::refresh_routes`] is called, so a policy driven by load should be refreshed
/// when its inputs change; a decision then stays one array read.
pub trait TargetPolicy: Send + Sync + std::fmt::Debug {
    /// Index into `candidates` (`(data center, RTT µs)`, sorted by RTT, then index) of
    /// the target for traffic arriving at `ingress` bound to `region`.
    fn choose(
        &self,
        ingress: DcId,
        region: RegionIndex,
        candidates: &[(DcId, u32)],
    ) -> Option<usize>;
}

/// The default policy: the candidate with the lowest RTT from the ingress (ties: lowest
/// index), the simulator's reading of Cloudflare's "free connections, latency and load"
/// score (api-contract §10).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LowestRtt;

impl TargetPolicy for LowestRtt {
    fn choose(&self, _: DcId, _: RegionIndex, candidates: &[(DcId, u32)]) -> Option<usize> {
        (!candidates.is_empty()).then_some(0)
    }
}

/// A load-aware policy: the candidate with the lowest RTT plus a per-data-center penalty
/// in microseconds (for example derived from its load; missing entries count 0).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PenalizedRtt {
    /// Penalty per data center, indexed by [`DcId`].
    pub penalty_us: Vec<u32>,
}

impl TargetPolicy for PenalizedRtt {
    fn choose(&self, _: DcId, _: RegionIndex, candidates: &[(DcId, u32)]) -> Option<usize> {
        let cost = |&(dc, rtt): &(DcId, u32)| {
            u64::from(rtt) + u64::from(self.penalty_us.get(dc.index()).copied().unwrap_or(0))
        };
        (0..candidates.len()).min_by_key(|&i| (cost(&candidates[i]), i))
    }
}

/// Configuration of an [`Edge`].
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct EdgeConfig {
    /// Behaviour of established flows across table changes.
    pub affinity: AffinityMode,
    /// Flow-table sizing and idle timeouts (per data center).
    pub flows: FlowTableConfig,
    /// Per-data-center delay of [`Edge::publish`].
    pub propagation: DelayDistribution,
}

/// Why an edge operation was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EdgeError {
    /// Versions must increase.
    #[error("version {offered} is not newer than version {current}")]
    StaleVersion {
        /// The newest version already published or installed.
        current: u64,
        /// The version offered.
        offered: u64,
    },
    /// A table value is not a region of the topology.
    #[error("table maps {prefix} to {region}, but the topology has {regions} regions")]
    UnknownRegion {
        /// The prefix.
        prefix: IpNet,
        /// The bad value.
        region: RegionIndex,
        /// Number of regions.
        regions: usize,
    },
    /// A region key that the topology does not have.
    #[error("unknown region key {0}")]
    UnknownRegionKey(String),
    /// Could not build the topology.
    #[error(transparent)]
    Topology(#[from] TopologyError),
}

/// What [`Edge::tick`] did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TickReport {
    /// Table deliveries applied (one per data center per version).
    pub delivered: u32,
    /// Deliveries skipped because the data center already had a newer version.
    pub stale: u32,
    /// Versions that became active (majority reached) in this tick.
    pub activated: u32,
    /// Idle flows reclaimed by the sweep.
    pub expired: u64,
}

/// Precomputed route for one (ingress, region-or-unbound) pair.
#[derive(Clone, Copy, Debug)]
struct Route {
    verdict: Verdict,
    processed_at: Option<DcId>,
    added_rtt_us: u32,
}

/// Health and the dense route array derived from it.
#[derive(Clone, Debug)]
struct Plan {
    policy: Arc<dyn TargetPolicy>,
    healthy: Vec<bool>,
    /// `[ingress * cols + col]`, col 0 = unbound, col r+1 = region r.
    routes: Vec<Route>,
    cols: usize,
}

impl Plan {
    fn new(topo: &Topology) -> Self {
        let mut p = Plan {
            policy: Arc::new(LowestRtt),
            healthy: vec![true; topo.dc_count()],
            routes: Vec::new(),
            cols: topo.region_count() + 1,
        };
        p.recompute(topo);
        p
    }

    /// O(data centers × total region membership): microseconds for the real topology.
    fn recompute(&mut self, topo: &Topology) {
        let n = topo.dc_count();
        let refuse = |reason| Route {
            verdict: Verdict::Refused(reason),
            processed_at: None,
            added_rtt_us: 0,
        };
        self.routes.clear();
        self.routes.reserve(n * self.cols);
        let mut candidates = Vec::new();
        for i in 0..n {
            let ingress = DcId(i as u16);
            if !self.healthy[i] {
                self.routes
                    .extend((0..self.cols).map(|_| refuse(RefuseReason::IngressDown)));
                continue;
            }
            self.routes.push(Route {
                verdict: Verdict::Global,
                processed_at: Some(ingress),
                added_rtt_us: 0,
            });
            for (r, region) in topo.regions().iter().enumerate() {
                let route = if topo.is_member(ingress, RegionIndex(r as u16)) {
                    Route {
                        verdict: Verdict::InRegion,
                        processed_at: Some(ingress),
                        added_rtt_us: 0,
                    }
                } else {
                    candidates.clear();
                    candidates.extend(
                        region
                            .members
                            .iter()
                            .filter(|m| self.healthy[m.index()])
                            .map(|&m| (m, topo.rtt_us(ingress, m)))
                            .filter(|&(_, rtt)| rtt != RTT_UNREACHABLE),
                    );
                    candidates.sort_unstable_by_key(|&(m, rtt)| (rtt, m));
                    let chosen = self
                        .policy
                        .choose(ingress, RegionIndex(r as u16), &candidates)
                        .and_then(|i| candidates.get(i));
                    chosen.map_or(refuse(RefuseReason::NoHealthyInRegion), |&(dc, rtt)| {
                        Route {
                            verdict: Verdict::Forwarded,
                            processed_at: Some(dc),
                            added_rtt_us: rtt,
                        }
                    })
                };
                self.routes.push(route);
            }
        }
    }

    #[inline]
    fn decision(&self, ingress: DcId, region: Option<RegionIndex>, version: u64) -> Decision {
        let col = region.map_or(0, |r| r.index() + 1);
        let r = self.routes[ingress.index() * self.cols + col];
        Decision {
            verdict: r.verdict,
            ingress,
            processed_at: r.processed_at,
            region,
            added_rtt_us: r.added_rtt_us,
            table_version: version,
            established: false,
        }
    }
}

#[inline]
fn lookup(snap: &Snapshot<RegionIndex>, flow: &FlowKey) -> Option<RegionIndex> {
    let (v6, dst) = flow.dst_bits();
    if v6 {
        snap.lookup_v6(Ipv6Addr::from_bits(dst))
    } else {
        snap.lookup_v4(Ipv4Addr::from_bits(dst as u32))
    }
}

/// Whether a packet keeps its flow pinned or ends it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Pin {
    /// A new processed flow is pinned and a known one's pin refreshed.
    Hold,
    /// The packet ends the flow (FIN/RST): nothing is pinned and a known flow's pin is
    /// released.
    Release,
}

/// What the caller already knows of a packet's destination region.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum RegionHint {
    /// Not looked up: the decision looks it up in the snapshot if it needs it.
    Unknown,
    /// Looked up already (by [`Edge::decide_many`]'s pipeline) in the same snapshot: the
    /// region, or `None` when the destination is unbound.
    Looked(Option<RegionIndex>),
}

impl RegionHint {
    /// The destination region of `flow` in `snap`.
    #[inline(always)]
    fn resolve(self, snap: &Snapshot<RegionIndex>, flow: &FlowKey) -> Option<RegionIndex> {
        match self {
            RegionHint::Looked(region) => region,
            RegionHint::Unknown => lookup(snap, flow),
        }
    }
}

/// What every packet of one call (`decide`, `last_packet`, or a whole `decide_many`
/// batch) at one ingress shares: that ingress's flow table `ft` with its entries `es`
/// (the plain vector, or in `decide_many` the batch's streaming writer: see
/// [`Entries`]), the route plan, the affinity mode and timeouts, the ingress, its table
/// snapshot and the time. The per-packet core is [`decide`](Self::decide); its branches
/// are small functions of their own so that `decide_many`'s fast paths run the same
/// code.
struct Decider<'a, E> {
    ft: &'a mut FlowIndex,
    es: &'a mut E,
    plan: &'a Plan,
    affinity: AffinityMode,
    timeouts: &'a Timeouts,
    ingress: DcId,
    /// Whether the ingress is healthy (`plan.healthy[ingress]`, read once per call).
    ingress_up: bool,
    snap: &'a Snapshot<RegionIndex>,
    /// Nanoseconds.
    now: u64,
    /// Established hits not yet added to `ft.stats` (on drop): a counter in a register
    /// rather than a store per packet.
    hits: u64,
}

impl<E> Drop for Decider<'_, E> {
    #[inline(always)]
    fn drop(&mut self) {
        self.ft.stats.hits += self.hits;
    }
}

impl<E: Entries> Decider<'_, E> {
    /// The per-packet core, shared by `decide`, `decide_many` and `packet`: decides
    /// `flow` (hashed to `hash`) and pins, refreshes or releases its pin as `pin` says.
    /// `region`: its destination region if the caller looked it up already; `hint`: a
    /// slot that probably holds it (see [`FlowIndex::probe_from`]).
    #[inline(always)]
    fn decide(
        &mut self,
        flow: &FlowKey,
        hash: u64,
        pin: Pin,
        region: RegionHint,
        hint: Option<usize>,
    ) -> Decision {
        match self.ft.probe_from(self.es, flow, hash, hint) {
            Probe::Found(slot) if self.es.is_expired(slot, self.now, self.timeouts) => {
                self.renew(slot, flow, pin, region)
            }
            Probe::Found(slot) => self.established(slot, flow, pin),
            Probe::Vacant(slot) => self.new_flow(slot, flow, hash, pin, region),
        }
    }

    /// A known flow in `slot` idle past its timeout: the old pin is gone; this packet
    /// starts anew (pinned again in the same slot, or the slot freed).
    #[inline(always)]
    fn renew(&mut self, slot: usize, flow: &FlowKey, pin: Pin, region: RegionHint) -> Decision {
        self.ft.stats.expired += 1;
        let d = self.fresh(flow, region);
        if pin == Pin::Hold && d.verdict.is_processed() {
            self.es.repin(slot, &d, self.now);
            self.ft.stats.pinned += 1;
        } else {
            self.ft.remove_at(slot);
        }
        d
    }

    /// A live known flow in `slot` (not idle past its timeout): its pinned decision, or a
    /// reset when its processing data center or the ingress is down, or (under
    /// [`AffinityMode::ResetOnChange`]) its destination's region changed since it was
    /// pinned.
    #[inline(always)]
    fn established(&mut self, slot: usize, flow: &FlowKey, pin: Pin) -> Decision {
        let e = self.es.entry(slot);
        if !self.holds(e) {
            if let Some(reason) = self.reset_reason(e, flow) {
                let d = Decision {
                    verdict: Verdict::Reset(reason),
                    ingress: self.ingress,
                    processed_at: None,
                    region: e.region(),
                    added_rtt_us: 0,
                    table_version: e.version,
                    established: true,
                };
                drop_reset_pin(self.ft, slot);
                return d;
            }
        }
        let d = e.decision(self.ingress, true);
        self.hit(slot, pin);
        d
    }

    /// Whether the pin `e` surely holds: both ends are healthy and, under
    /// [`AffinityMode::ResetOnChange`], it was made with the current table. The cheap
    /// test of an established packet (`decide_many` makes it on a prefetched entry);
    /// when it fails, [`reset_reason`](Self::reset_reason) decides.
    #[inline(always)]
    fn holds(&self, e: &Entry) -> bool {
        self.ingress_up
            && self.plan.healthy[usize::from(e.target)]
            && (self.affinity != AffinityMode::ResetOnChange || e.version == self.snap.version())
    }

    /// A packet of the established flow in `slot` got its pinned decision: counts the
    /// hit and refreshes the pin ([`Pin::Hold`]) or releases it ([`Pin::Release`]).
    #[inline(always)]
    fn hit(&mut self, slot: usize, pin: Pin) {
        self.hits += 1;
        match pin {
            Pin::Hold => self.es.touch_seen(slot, self.now),
            Pin::Release => {
                // The packet ends the flow (FIN/RST): its pin goes with it.
                self.ft.remove_at(slot);
                self.ft.stats.ended += 1;
            }
        }
    }

    /// Why the pin `e` of `flow` must be reset now, if it must: the full test, for a pin
    /// that [`holds`](Self::holds) did not clear (under
    /// [`AffinityMode::ResetOnChange`] a pin made with an older table holds if its
    /// destination's region did not change, which takes a lookup).
    #[inline(always)]
    fn reset_reason(&self, e: &Entry, flow: &FlowKey) -> Option<ResetReason> {
        if !self.ingress_up || !self.plan.healthy[usize::from(e.target)] {
            Some(ResetReason::ProcessingDown)
        } else if self.affinity == AffinityMode::ResetOnChange
            && e.version != self.snap.version()
            && lookup(self.snap, flow) != e.region()
        {
            Some(ResetReason::BindingChanged)
        } else {
            None
        }
    }

    /// A new flow, absent from the table (`vacant`: the slot a probe, or in
    /// `decide_many` its home group, found for it): decided fresh and, under
    /// [`Pin::Hold`], pinned unless it is a refusal. Refusals are not pinned, so a
    /// retransmitted SYN is decided again and may succeed once health recovers.
    #[inline(always)]
    fn new_flow(
        &mut self,
        vacant: usize,
        flow: &FlowKey,
        hash: u64,
        pin: Pin,
        region: RegionHint,
    ) -> Decision {
        let d = self.fresh(flow, region);
        if pin == Pin::Hold && d.verdict.is_processed() {
            self.ft
                .insert(self.es, flow, hash, vacant, &d, self.now, self.timeouts);
        }
        d
    }

    /// The decision a new flow gets now.
    #[inline(always)]
    fn fresh(&self, flow: &FlowKey, region: RegionHint) -> Decision {
        self.plan.decision(
            self.ingress,
            region.resolve(self.snap, flow),
            self.snap.version(),
        )
    }
}

/// Drops the pin in `slot` of a flow that is reset (the next packet starts a new flow).
/// Rare, so out of line; only the side effects, the reset's [`Decision`] being built
/// inline by [`Decider::established`] (returned by an out-of-line call, it would go
/// through memory).
#[cold]
#[inline(never)]
fn drop_reset_pin(ft: &mut FlowIndex, slot: usize) {
    ft.remove_at(slot);
    ft.stats.resets += 1;
}

/// Packets per group of [`Edge::decide_many`]'s pipeline.
const LANES: usize = 32;

/// One group of [`Edge::decide_many`]'s pipeline: each flow's hash and home group, for
/// flows that are probably known the slot whose tag matched ([`NO_SLOT`] for the
/// others), and for flows that are probably new their region, looked up by stage 2
/// (IPv6) or 3 (IPv4) before the lane is decided ([`RegionHint::Unknown`]: not looked
/// up).
#[derive(Clone, Copy)]
struct Lanes {
    hashes: [u64; LANES],
    homes: [usize; LANES],
    slots: [usize; LANES],
    regions: [RegionHint; LANES],
    /// The probably-new IPv4 lanes (their destinations in `v4_addr`), looked up by
    /// stage 3.
    v4_lane: [u8; LANES],
    v4_addr: [Ipv4Addr; LANES],
    v4_len: usize,
    /// The flow table's [`layout`](FlowIndex::layout) when stage 1 computed `homes`.
    layout: usize,
}

impl Lanes {
    const EMPTY: Lanes = Lanes {
        hashes: [0; LANES],
        homes: [0; LANES],
        slots: [NO_SLOT; LANES],
        regions: [RegionHint::Unknown; LANES],
        v4_lane: [0; LANES],
        v4_addr: [Ipv4Addr::UNSPECIFIED; LANES],
        v4_len: 0,
        layout: 0,
    };
}

/// Pipeline stage 1: hashes a group of flows (pure arithmetic) and prefetches each home
/// control word.
#[inline(always)]
fn stage_hash(ft: &FlowIndex, flows: &[FlowKey], lanes: &mut Lanes) {
    lanes.layout = ft.layout();
    for ((h, home), f) in lanes.hashes.iter_mut().zip(&mut lanes.homes).zip(flows) {
        *h = ft.hash(f);
        *home = ft.prefetch_home(*h);
    }
}

/// Pipeline stage 2 (a group later, when the control words have arrived): prefetches
/// each flow's entry line, or, for a flow whose home group has no matching tag (almost
/// surely new), the first line of its region lookup, which stage 3 makes a group later
/// (IPv6 ones, rare, are looked up here). Prefetching the region line here rather than
/// in stage 1 spares established flows a line they never read: established +4% (12 of
/// 16 alternating pairs), new flows unchanged (+2.5%, 9 of 16), where prefetching it in
/// stage 1 cost established flows 8% and dropping it cost new flows 8%.
#[inline(always)]
fn stage_entry(
    ft: &FlowIndex,
    es: &impl Entries,
    snap: &Snapshot<RegionIndex>,
    flows: &[FlowKey],
    lanes: &mut Lanes,
) {
    lanes.v4_len = 0;
    for (i, ((((&h, &home), slot), r), f)) in lanes
        .hashes
        .iter()
        .zip(&lanes.homes)
        .zip(&mut lanes.slots)
        .zip(&mut lanes.regions)
        .zip(flows)
        .enumerate()
    {
        *r = RegionHint::Unknown;
        *slot = ft.prefetch_entry(es, h, home);
        if *slot != NO_SLOT {
            continue;
        }
        match f.dst_bits() {
            (false, dst) => {
                let dst = Ipv4Addr::from_bits(dst as u32);
                snap.table().prefetch_v4(dst);
                lanes.v4_lane[lanes.v4_len] = i as u8;
                lanes.v4_addr[lanes.v4_len] = dst;
                lanes.v4_len += 1;
            }
            (true, dst) => *r = RegionHint::Looked(snap.lookup_v6(Ipv6Addr::from_bits(dst))),
        }
    }
}

/// Pipeline stage 3, just before a group is decided: looks up the regions of its
/// probably-new IPv4 flows in one batch lookup, whose first lines stage 2 prefetched a
/// group earlier.
#[inline(always)]
fn stage_regions(snap: &Snapshot<RegionIndex>, lanes: &mut Lanes) {
    let n = lanes.v4_len;
    let mut found = [None; LANES];
    snap.table()
        .lookup_batch_v4(&lanes.v4_addr[..n], &mut found[..n]);
    for (&lane, &region) in lanes.v4_lane[..n].iter().zip(&found) {
        lanes.regions[usize::from(lane)] = RegionHint::Looked(region);
    }
}

/// Builds a region table from `(prefix, region key)` pairs, resolving keys against
/// `topology` (the last value given for a prefix wins).
pub fn region_table<'a>(
    topology: &Topology,
    bindings: impl IntoIterator<Item = (IpNet, &'a RegionKey)>,
) -> Result<Table<RegionIndex>, EdgeError> {
    let mut b = Table::builder();
    for (net, key) in bindings {
        let r = topology
            .region_by_key(key.as_str())
            .ok_or_else(|| EdgeError::UnknownRegionKey(key.as_str().to_owned()))?;
        b.insert(net, r);
    }
    Ok(b.build())
}

/// Sweeps per idle timeout (a slice of each flow table per sweep).
const SWEEPS_PER_TIMEOUT: u64 = 8;

/// The edge of one simulated network: every data center's region table, health and
/// flow table, and the propagation of published tables.
///
/// Sans-IO: no threads, no clock (time is an argument), no randomness of its own (an RNG
/// is an argument). `Send`: shard by data center with [`Edge::shard`].
///
/// Methods taking a [`DcId`] panic if it is not a data center of the topology.
pub struct Edge {
    topo: Arc<Topology>,
    config: EdgeConfig,
    timeouts: Timeouts,
    plan: Plan,
    tables: Arc<[DcTable]>,
    /// This shard's own reference to each data center's current snapshot (see
    /// [`DcTable::refresh`]); holds an old version at most until that data center's next
    /// decision or delivery.
    snapshots: Vec<Arc<Snapshot<RegionIndex>>>,
    flows: Vec<FlowTable>,
    propagation: Propagation,
    next_sweep: SimTime,
    sweep_interval: u64,
    /// [`Edge::decide_many`]'s pipeline lanes, kept between calls so that a batch does
    /// not first clear 3 KiB of them.
    lanes: Box<[Lanes; 3]>,
}

impl std::fmt::Debug for Edge {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Edge")
            .field("data_centers", &self.topo.dc_count())
            .field("regions", &self.topo.region_count())
            .field("config", &self.config)
            .field("pending_deliveries", &self.propagation.pending_len())
            .finish_non_exhaustive()
    }
}

impl Edge {
    /// Every data center healthy, every table empty at version 0, no flows.
    pub fn new(topology: Arc<Topology>, config: EdgeConfig) -> Self {
        let empty = Arc::new(Snapshot::new(0, Table::empty()));
        let tables: Arc<[DcTable]> = (0..topology.dc_count())
            .map(|_| DcTable::new(Arc::clone(&empty)))
            .collect();
        let timeouts = Timeouts::new(&config.flows);
        Edge {
            snapshots: vec![empty; topology.dc_count()],
            plan: Plan::new(&topology),
            flows: (0..topology.dc_count())
                .map(|_| FlowTable::new(&config.flows))
                .collect(),
            tables,
            timeouts,
            propagation: Propagation::default(),
            next_sweep: SimTime::MAX,
            sweep_interval: (timeouts.min() / SWEEPS_PER_TIMEOUT).max(1),
            lanes: Box::new([Lanes::EMPTY; 3]),
            topo: topology,
            config,
        }
    }

    /// An edge over the reference data's data centers and managed regions (geometric RTT
    /// model with default parameters).
    pub fn from_reference(refdata: &ReferenceData, config: EdgeConfig) -> Result<Self, EdgeError> {
        Ok(Self::new(
            Arc::new(Topology::from_reference(refdata)?),
            config,
        ))
    }

    /// Another edge sharing this one's topology and per-data-center table handles (a
    /// version delivered by either is seen by both), with a copy of the health state,
    /// empty flow tables and no pending deliveries. Give each thread a shard and route
    /// each data center's packets to one shard; publish and tick deliveries on one.
    pub fn shard(&self) -> Edge {
        Edge {
            topo: Arc::clone(&self.topo),
            config: self.config,
            timeouts: self.timeouts,
            plan: self.plan.clone(),
            tables: Arc::clone(&self.tables),
            snapshots: self
                .tables
                .iter()
                .map(|t| arc_swap::Guard::into_inner(t.load()))
                .collect(),
            flows: (0..self.topo.dc_count())
                .map(|_| FlowTable::new(&self.config.flows))
                .collect(),
            propagation: Propagation::after(self.propagation.last_published),
            next_sweep: SimTime::MAX,
            sweep_interval: self.sweep_interval,
            lanes: Box::new([Lanes::EMPTY; 3]),
        }
    }

    /// The topology.
    pub fn topology(&self) -> &Arc<Topology> {
        &self.topo
    }

    /// The configuration.
    pub fn config(&self) -> &EdgeConfig {
        &self.config
    }

    // ---- health -------------------------------------------------------------------

    /// Whether `dc` is healthy.
    pub fn is_healthy(&self, dc: DcId) -> bool {
        self.plan.healthy[dc.index()]
    }

    /// Marks one data center healthy or not and recomputes the route plan.
    pub fn set_healthy(&mut self, dc: DcId, healthy: bool) {
        self.set_health(&[(dc, healthy)]);
    }

    /// Applies several health changes, then recomputes the route plan once. Established
    /// flows whose processing data center (or ingress) is now unhealthy are reset at
    /// their next packet.
    pub fn set_health(&mut self, changes: &[(DcId, bool)]) {
        let mut changed = false;
        for &(dc, h) in changes {
            changed |= std::mem::replace(&mut self.plan.healthy[dc.index()], h) != h;
        }
        if changed {
            self.plan.recompute(&self.topo);
        }
    }

    /// Replaces the forwarding policy (default [`LowestRtt`]) and recomputes the routes.
    pub fn set_policy(&mut self, policy: Arc<dyn TargetPolicy>) {
        self.plan.policy = policy;
        self.plan.recompute(&self.topo);
    }

    /// Recomputes the routes (after the inputs of a load-aware policy changed).
    /// O(data centers × total region membership).
    pub fn refresh_routes(&mut self) {
        self.plan.recompute(&self.topo);
    }

    // ---- ingress ------------------------------------------------------------------

    /// The anycast ingress of a client at `location`: the nearest healthy data center
    /// with coordinates (lowest RTT under the geometric model), or `None` when none is.
    pub fn ingress_for(&self, location: &GeoPoint) -> Option<DcId> {
        self.topo
            .nearest(location, |dc| self.plan.healthy[dc.index()])
    }

    // ---- decisions ----------------------------------------------------------------

    /// Decides one packet of `flow` arriving at `ingress` at `now`.
    ///
    /// A known flow gets its pinned decision (`established: true`); an unknown one a
    /// fresh decision from the ingress's current table, pinned if it is processed.
    /// Allocation-free except when the ingress's flow table grows.
    #[inline]
    pub fn decide(&mut self, ingress: DcId, flow: &FlowKey, now: SimTime) -> Decision {
        let i = ingress.index();
        let snap = self.tables[i].refresh(&mut self.snapshots[i]);
        let FlowTable { index: ft, entries } = &mut self.flows[i];
        let hash = ft.hash(flow);
        let d = Decider {
            ft,
            es: entries,
            plan: &self.plan,
            affinity: self.config.affinity,
            timeouts: &self.timeouts,
            ingress,
            ingress_up: self.plan.healthy[i],
            snap,
            now: now.as_nanos(),
            hits: 0,
        }
        .decide(flow, hash, Pin::Hold, RegionHint::Unknown, None);
        if self.next_sweep == SimTime::MAX && ft.len() > 0 {
            self.next_sweep = now.saturating_add(Duration::from_nanos(self.sweep_interval));
        }
        d
    }

    /// Decides a batch of packets that arrived at `ingress` at `now` into `out` (same
    /// length), as [`decide`](Self::decide) on each in order, but on one table snapshot
    /// and with the flow-table reads of each group of packets overlapped.
    ///
    /// # Panics
    /// If `flows` and `out` differ in length.
    pub fn decide_many(
        &mut self,
        ingress: DcId,
        flows: &[FlowKey],
        now: SimTime,
        out: &mut [Decision],
    ) {
        assert_eq!(
            flows.len(),
            out.len(),
            "decide_many: flows and out differ in length"
        );
        let i = ingress.index();
        let snap = self.tables[i].refresh(&mut self.snapshots[i]);
        let FlowTable { index: ft, entries } = &mut self.flows[i];
        let now_ns = now.as_nanos();
        // Software pipeline over groups of LANES flows: while group g is decided from
        // lines already fetched, the entry lines (or, for new flows, the region-table
        // lines) of group g+1 and the control words of group g+2 are in flight, so their
        // cache misses overlap.
        let lanes = &mut *self.lanes;
        let groups = flows.len().div_ceil(LANES);
        let group = |g: usize| g * LANES..((g + 1) * LANES).min(flows.len());
        let (plan, timeouts, affinity) = (&self.plan, &self.timeouts, self.config.affinity);
        // The entries are reached only through the batch's streaming writer: new pins
        // are written with streaming stores, an entry pinned earlier in the batch and
        // reached again (a duplicate flow, an eviction, a growth) is fenced first, and
        // the scope fences whatever is left before it returns: once per batch.
        inregion_hint::with_streaming(entries, |es| {
            let mut cx = Decider {
                ft: &mut *ft,
                es,
                plan,
                affinity,
                timeouts,
                ingress,
                ingress_up: plan.healthy[i],
                snap,
                now: now_ns,
                hits: 0,
            };
            for g in 0..groups.min(2) {
                stage_hash(cx.ft, &flows[group(g)], &mut lanes[g]);
            }
            if groups > 0 {
                stage_entry(cx.ft, cx.es, snap, &flows[group(0)], &mut lanes[0]);
            }
            for g in 0..groups {
                if g + 2 < groups {
                    stage_hash(cx.ft, &flows[group(g + 2)], &mut lanes[(g + 2) % 3]);
                }
                if g + 1 < groups {
                    let next = &mut lanes[(g + 1) % 3];
                    stage_entry(cx.ft, cx.es, snap, &flows[group(g + 1)], next);
                }
                let r = group(g);
                stage_regions(snap, &mut lanes[g % 3]);
                let l = &lanes[g % 3];
                for (j, (f, o)) in flows[r.clone()].iter().zip(&mut out[r]).enumerate() {
                    let (slot, hash, region) = (l.slots[j], l.hashes[j], l.regions[j]);
                    // An established flow whose prefetched entry holds it, live, skips
                    // the probe: one compare of a line already fetched, then
                    // `established`'s own test and bookkeeping (`holds`, `hit`). A pin
                    // that may need a reset takes `decide`. (Calling `established`
                    // itself here measured 5-10% slower on established batches in
                    // `inregion-bench edge`, its reset branch out of line or not.)
                    if cx.ft.live_hit(cx.es, f, slot, now_ns, timeouts) {
                        let e = cx.es.entry(slot);
                        if cx.holds(e) {
                            *o = e.decision(ingress, true);
                            cx.hit(slot, Pin::Hold);
                            continue;
                        }
                    }
                    // A new flow whose home group proves it absent (and whose region
                    // stage 3 looked up) skips the probe too.
                    if let (NO_SLOT, RegionHint::Looked(_)) = (slot, region) {
                        let vacant = cx.ft.vacant_at_home(hash, l.homes[j], l.layout);
                        if vacant != NO_SLOT {
                            *o = cx.new_flow(vacant, f, hash, Pin::Hold, region);
                            continue;
                        }
                    }
                    // Anything else (a miss of the tag, an expired pin, a table that
                    // grew) takes the full probe.
                    let hint = (slot != NO_SLOT).then_some(slot);
                    *o = cx.decide(f, hash, Pin::Hold, region, hint);
                }
            }
        });
        if self.next_sweep == SimTime::MAX && ft.len() > 0 {
            self.next_sweep = now.saturating_add(Duration::from_nanos(self.sweep_interval));
        }
    }

    /// Decides a packet with its TCP flags: like [`decide`](Self::decide), and a FIN or
    /// RST then ends the flow (an unknown flow's FIN/RST is decided without pinning).
    pub fn packet(
        &mut self,
        ingress: DcId,
        flow: &FlowKey,
        flags: TcpFlags,
        now: SimTime,
    ) -> Decision {
        if flags.ends_flow() {
            self.last_packet(ingress, flow, now)
        } else {
            self.decide(ingress, flow, now)
        }
    }

    /// Decides the last packet of `flow` (a TCP FIN/RST, or the end of a UDP exchange
    /// as the caller knows it) and ends the flow, in one flow-table probe: a pinned flow
    /// gets its pinned decision and loses its pin; an unknown one is decided fresh and
    /// not pinned.
    pub fn last_packet(&mut self, ingress: DcId, flow: &FlowKey, now: SimTime) -> Decision {
        let i = ingress.index();
        let snap = self.tables[i].refresh(&mut self.snapshots[i]);
        let FlowTable { index: ft, entries } = &mut self.flows[i];
        let hash = ft.hash(flow);
        Decider {
            ft,
            es: entries,
            plan: &self.plan,
            affinity: self.config.affinity,
            timeouts: &self.timeouts,
            ingress,
            ingress_up: self.plan.healthy[i],
            snap,
            now: now.as_nanos(),
            hits: 0,
        }
        .decide(flow, hash, Pin::Release, RegionHint::Unknown, None)
    }

    /// Ends `flow` at `ingress` (FIN/RST seen, or the caller's own bookkeeping): drops its
    /// pin and returns the pinned decision, or `None` when it was not pinned.
    pub fn flow_end(&mut self, ingress: DcId, flow: &FlowKey, _now: SimTime) -> Option<Decision> {
        let FlowTable { index: ft, entries } = &mut self.flows[ingress.index()];
        let hash = ft.hash(flow);
        match ft.probe(entries, flow, hash) {
            Probe::Found(slot) => {
                let d = entries.entry(slot).decision(ingress, true);
                ft.remove_at(slot);
                ft.stats.ended += 1;
                Some(d)
            }
            Probe::Vacant(_) => None,
        }
    }

    /// The decision a new flow to `dst` arriving at `ingress` would get now, without
    /// touching any flow table (for one-shot traffic such as DNS, and for what-ifs).
    pub fn route(&self, ingress: DcId, dst: IpAddr) -> Decision {
        let snap = self.tables[ingress.index()].load();
        self.plan
            .decision(ingress, snap.lookup(dst), snap.version())
    }

    /// A step-by-step account of how `flow` arriving at `ingress` is decided now: the
    /// matched binding (prefix and region), the in-region candidates with their RTTs,
    /// the fresh decision and the pinned one if the flow is live. Changes nothing.
    pub fn explain(&self, ingress: DcId, flow: &FlowKey, now: SimTime) -> Explanation {
        let i = ingress.index();
        let snap = self.tables[i].load();
        let matched = snap.longest_match(flow.dst());
        let region = matched.map(|(_, r)| r);
        let fresh = self.plan.decision(ingress, region, snap.version());
        let ingress_in_region = region.map(|r| self.topo.is_member(ingress, r));
        let mut candidates = Vec::new();
        if let (Some(r), Some(false)) = (region, ingress_in_region) {
            for &m in &self.topo.region(r).members {
                let rtt = self.topo.rtt_us(ingress, m);
                candidates.push(Candidate {
                    dc: m,
                    healthy: self.plan.healthy[m.index()],
                    rtt_us: (rtt != RTT_UNREACHABLE).then_some(rtt),
                    chosen: fresh.processed_at == Some(m),
                });
            }
            candidates.sort_by_key(|c| (c.rtt_us.is_none(), c.rtt_us, c.dc));
        }
        let FlowTable { index: ft, entries } = &self.flows[i];
        let pinned = match ft.probe(entries, flow, ft.hash(flow)) {
            Probe::Found(slot) if !entries.is_expired(slot, now.as_nanos(), &self.timeouts) => {
                Some(entries.entry(slot).decision(ingress, true))
            }
            _ => None,
        };
        Explanation {
            at: now,
            ingress,
            ingress_healthy: self.plan.healthy[i],
            table_version: snap.version(),
            matched,
            ingress_in_region,
            candidates,
            fresh,
            pinned,
        }
    }

    // ---- tables and propagation ---------------------------------------------------

    fn check_table(&self, version: u64, table: &Table<RegionIndex>) -> Result<(), EdgeError> {
        let current = self.propagation.last_published;
        if version <= current {
            return Err(EdgeError::StaleVersion {
                current,
                offered: version,
            });
        }
        let regions = self.topo.region_count();
        if let Some((prefix, region)) = table.iter().find(|(_, r)| r.index() >= regions) {
            return Err(EdgeError::UnknownRegion {
                prefix,
                region,
                regions,
            });
        }
        Ok(())
    }

    /// Installs `table` as `version` at every data center at once (initial state, or a
    /// world without propagation delay). The version is active and complete at `now`.
    pub fn install(
        &mut self,
        version: u64,
        table: Table<RegionIndex>,
        now: SimTime,
    ) -> Result<(), EdgeError> {
        self.check_table(version, &table)?;
        let snap = Arc::new(Snapshot::new(version, table));
        let n = self.topo.dc_count();
        self.propagation.last_published = version;
        self.propagation.versions.push(VersionStatus {
            version,
            published_at: now,
            reached: 0,
            total: n,
            active_at: None,
            complete_at: None,
        });
        for dc in self.tables.iter() {
            if let Some(from) = dc.offer(&snap) {
                self.propagation.reached(from, version, now);
            }
        }
        Ok(())
    }

    /// Publishes `table` as `version` from the control plane at `now`: each data center
    /// receives it after its own delay drawn from the configured distribution (drawn in
    /// data-center order from `rng`, so a seeded RNG gives a reproducible schedule).
    /// Deliveries happen in [`tick`](Self::tick); zero delays are delivered at once.
    pub fn publish<R: RngCore + ?Sized>(
        &mut self,
        version: u64,
        table: Table<RegionIndex>,
        now: SimTime,
        rng: &mut R,
    ) -> Result<(), EdgeError> {
        self.check_table(version, &table)?;
        let snap = Arc::new(Snapshot::new(version, table));
        let n = self.topo.dc_count();
        self.propagation.last_published = version;
        self.propagation.versions.push(VersionStatus {
            version,
            published_at: now,
            reached: 0,
            total: n,
            active_at: None,
            complete_at: None,
        });
        for dc in 0..n {
            let delay = self.config.propagation.sample(rng);
            self.propagation
                .schedule(now.saturating_add(delay), dc as u16, Arc::clone(&snap));
        }
        self.deliver_due(now);
        Ok(())
    }

    fn deliver_due(&mut self, now: SimTime) -> TickReport {
        let mut report = TickReport::default();
        while let Some((at, dc, snap)) = self.propagation.pop_due(now) {
            let i = usize::from(dc);
            match self.tables[i].offer(&snap) {
                Some(from) => {
                    self.tables[i].refresh(&mut self.snapshots[i]);
                    report.delivered += 1;
                    report.activated += self.propagation.reached(from, snap.version(), at) as u32;
                }
                None => report.stale += 1,
            }
        }
        report
    }

    /// Advances timers to `now`: applies the table deliveries due (in time order) and, when
    /// due, sweeps a slice of every flow table for idle flows.
    pub fn tick(&mut self, now: SimTime) -> TickReport {
        let mut report = self.deliver_due(now);
        if now >= self.next_sweep {
            let late = now.as_nanos() - self.next_sweep.as_nanos();
            let slices = (1 + late / self.sweep_interval).min(SWEEPS_PER_TIMEOUT);
            let mut live = 0;
            for ft in &mut self.flows {
                if ft.len() > 0 {
                    let budget = (ft.capacity() as u64 * slices).div_ceil(SWEEPS_PER_TIMEOUT);
                    report.expired += ft.sweep(now.as_nanos(), budget as usize, &self.timeouts);
                }
                live += ft.len();
            }
            self.next_sweep = if live > 0 {
                now.saturating_add(Duration::from_nanos(self.sweep_interval))
            } else {
                SimTime::MAX
            };
        }
        report
    }

    /// The next time [`tick`](Self::tick) has work: a pending delivery or a flow-table
    /// sweep; `None` when there is none.
    pub fn next_deadline(&self) -> Option<SimTime> {
        let sweep = (self.next_sweep != SimTime::MAX).then_some(self.next_sweep);
        match (self.propagation.next_at(), sweep) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Version of `dc`'s current table.
    pub fn table_version(&self, dc: DcId) -> u64 {
        self.tables[dc.index()].version()
    }

    /// `dc`'s current table snapshot (the table crate's type).
    pub fn table(&self, dc: DcId) -> Arc<Snapshot<RegionIndex>> {
        arc_swap::Guard::into_inner(self.tables[dc.index()].load())
    }

    /// Status of a version published or installed by this edge.
    pub fn version_status(&self, version: u64) -> Option<VersionStatus> {
        self.propagation
            .versions
            .iter()
            .find(|s| s.version == version)
            .copied()
    }

    /// The newest version that is active (held by a majority of data centers), or 0.
    pub fn active_version(&self) -> u64 {
        self.propagation
            .versions
            .iter()
            .rev()
            .find(|s| s.active_at.is_some())
            .map_or(0, |s| s.version)
    }

    /// Table deliveries scheduled but not yet applied.
    pub fn pending_deliveries(&self) -> usize {
        self.propagation.pending_len()
    }

    // ---- flow tables --------------------------------------------------------------

    /// Counters of `dc`'s flow table.
    pub fn flow_stats(&self, dc: DcId) -> FlowStats {
        self.flows[dc.index()].stats()
    }

    /// Counters summed over all data centers.
    pub fn total_flow_stats(&self) -> FlowStats {
        let mut s = FlowStats::default();
        for ft in &self.flows {
            s += ft.stats();
        }
        s
    }
}

#[cfg(test)]
pub(crate) mod tests;
