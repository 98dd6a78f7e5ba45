//! The edge: health, the precomputed route plan, per-DC tables and flow tables.
//!
//! Files: this one holds the configuration, the errors and [`Edge`]; `plan.rs` the
//! precomputed route plan; `decider.rs` the per-packet core and the batch pipeline.

mod decider;
mod plan;

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

use decider::*;
use plan::*;

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

    /// Checks `table`, records `version` as published at `now` (reached by no data center
    /// yet) and returns its snapshot and the number of data centers.
    fn start_version(
        &mut self,
        version: u64,
        table: Table<RegionIndex>,
        now: SimTime,
    ) -> Result<(Arc<Snapshot<RegionIndex>>, usize), EdgeError> {
        self.check_table(version, &table)?;
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
        Ok((Arc::new(Snapshot::new(version, table)), n))
    }

    /// Installs `table` as `version` at every data center at once (initial state, or a
    /// world without propagation delay). The version is active and complete at `now`.
    pub fn install(
        &mut self,
        version: u64,
        table: Table<RegionIndex>,
        now: SimTime,
    ) -> Result<(), EdgeError> {
        let (snap, _) = self.start_version(version, table, now)?;
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
        let (snap, n) = self.start_version(version, table, now)?;
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
