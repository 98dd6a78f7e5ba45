//! The event loop of a run: the run's state in one struct, and one handler per kind of
//! event. Each iteration picks the earliest pending event (ties broken in the fixed
//! order of [`Event`]) and hands it to its handler.

use super::check::Check;
use super::failures::FailureSchedule;
use super::open_flows::{Open, OpenFlows};
use super::timeline::{apply_op, OpState};
use super::{DnsObservation, Progress, RunCounters, RunOutput, SimError, Simulation};
use crate::dns;
use crate::metrics::{Categories, FlowRecord, Metrics, Outcome};
use crate::rng::{stream, SimRng, Stream};
use crate::scenario::DnsQueryKind;
use crate::time::SimTime;
use crate::workload::{FlowGenerator, FlowSpec, Protocol};
use inregion_edge::{DcId, Decision, Edge, FlowKey, ResetReason, Topology, Verdict};
use rand::Rng;
use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// The kinds of events, in the order that breaks ties between events at one instant.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Event {
    /// An open flow's last packet.
    FlowEnd,
    /// The next control-plane operation of the timeline.
    TimelineOp,
    /// Failures starting or ending.
    Failures,
    /// An edge deadline: table deliveries, flow-table sweeps.
    EdgeDeadline,
    /// A DNS probe round.
    DnsRound,
    /// The next flow arrival.
    Arrival,
}

/// Everything a run keeps between events.
pub(super) struct Run<'p> {
    sim: Simulation,
    progress: &'p mut dyn FnMut(&Progress),
    /// Number of metric buckets, and the width of one.
    buckets: usize,
    bucket_ns: u64,
    /// The end of the run, in nanoseconds.
    horizon: u64,
    metrics: Metrics,
    changed_by_bucket: Vec<u64>,
    reset_by_bucket: Vec<u64>,
    /// Per client point, its continent's and population's index in the metrics.
    point_continent: Vec<u16>,
    point_population: Vec<u16>,
    check: Check,
    gen: FlowGenerator,
    /// The next arrival, drawn ahead so that its time competes with the other events.
    pending: Option<FlowSpec>,
    r_prop: SimRng,
    r_dns: SimRng,
    failures: FailureSchedule,
    /// Per client point, its ingress data center, recomputed at each health change.
    ingress_cache: Vec<Option<DcId>>,
    /// Health changes so far: an open flow from an older epoch may see another decision.
    epoch: u32,
    /// Per region, its healthy member data centers with coordinates (for the check of
    /// wrong refusals).
    healthy_members: Vec<u32>,
    open: OpenFlows,
    out: RunOutput,
    counters: RunCounters,
    ops: OpState,
    /// The index of the next timeline operation.
    next_op: usize,
    dns_every: Option<u64>,
    /// When the next DNS probe round is due (`u64::MAX`: never).
    next_dns: u64,
    /// The last answer per (probe, target, query), to report only changes.
    dns_last: BTreeMap<(usize, usize, DnsQueryKind), String>,
    flows_done: u64,
    dns_rounds: u64,
}

impl<'p> Run<'p> {
    /// Prepares a run of `sim`: metrics, the independent check, the generators.
    pub(super) fn new(sim: Simulation, progress: &'p mut dyn FnMut(&Progress)) -> Self {
        let sc = &sim.scenario;
        let buckets = (sc.duration.as_nanos().div_ceil(sc.bucket.as_nanos())).max(1) as usize;
        let mut continents: Vec<String> = sim.points.iter().map(|p| p.continent.clone()).collect();
        continents.sort();
        continents.dedup();
        let point_continent: Vec<u16> = sim
            .points
            .iter()
            .map(|p| {
                continents
                    .iter()
                    .position(|c| *c == p.continent)
                    .unwrap_or(0) as u16
            })
            .collect();
        let metrics = Metrics::new(categories(&sim, continents), buckets);
        let weights: Vec<f64> = sim.points.iter().map(|p| p.weight).collect();
        let check = independent_check(&sim);
        let mut gen = FlowGenerator::new(&sc.workload, sim.flows, sim.horizon, &weights, sc.seed);
        let ingress_cache = sim
            .points
            .iter()
            .map(|p| sim.edge.ingress_for(&p.location))
            .collect();
        let healthy_members = (0..sim.refdata.regions().len())
            .map(|r| {
                sim.refdata
                    .members(r)
                    .iter()
                    .filter(|&&d| check.located[d])
                    .count() as u32
            })
            .collect();
        let dns_every = sc.dns.as_ref().map(|d| d.every.as_nanos());
        let next_dns = if dns_every.is_some() && !sim.probes.is_empty() {
            0
        } else {
            u64::MAX
        };
        let pending = gen.next();
        Run {
            progress,
            buckets,
            bucket_ns: sc.bucket.as_nanos(),
            horizon: sim.horizon.as_nanos(),
            metrics,
            changed_by_bucket: vec![0; buckets],
            reset_by_bucket: vec![0; buckets],
            point_continent,
            point_population: sim.points.iter().map(|p| p.population as u16).collect(),
            check,
            gen,
            pending,
            r_prop: stream(sc.seed, Stream::Propagation),
            r_dns: stream(sc.seed, Stream::Dns),
            failures: FailureSchedule::new(&sim.refdata, &sim.topo, &sc.failures, sim.horizon),
            ingress_cache,
            epoch: 0,
            healthy_members,
            open: OpenFlows::default(),
            out: RunOutput {
                metrics: Metrics::new(Categories::default(), 1),
                changed_by_bucket: Vec::new(),
                reset_by_bucket: Vec::new(),
                timeline: Vec::new(),
                versions: Vec::new(),
                health_changes: Vec::new(),
                dns: Vec::new(),
                counters: RunCounters::default(),
            },
            counters: RunCounters::default(),
            ops: OpState::default(),
            next_op: 0,
            dns_every,
            next_dns,
            dns_last: BTreeMap::new(),
            flows_done: 0,
            dns_rounds: 0,
            sim,
        }
    }

    /// Runs every event to the end and returns what the run observed.
    pub(super) fn run(mut self) -> Result<RunOutput, SimError> {
        while let Some((event, t)) = self.next_event() {
            self.counters.events += 1;
            let now = SimTime::from_nanos(t);
            match event {
                Event::FlowEnd => self.on_flow_end(t, now),
                Event::TimelineOp => self.on_timeline_op(now)?,
                Event::Failures => self.on_failures(now),
                Event::EdgeDeadline => self.on_edge_deadline(now),
                Event::DnsRound => self.on_dns_round(now)?,
                Event::Arrival => self.on_arrival(t, now),
            }
        }
        self.report_progress(self.sim.horizon);
        Ok(self.finish())
    }

    /// The earliest pending event and its time in nanoseconds, or `None` at the end.
    fn next_event(&self) -> Option<(Event, u64)> {
        let arrival = self.pending.as_ref().map_or(u64::MAX, |f| f.at.as_nanos());
        let end_t = self.open.next_end();
        let op_t = self
            .sim
            .scenario
            .timeline
            .get(self.next_op)
            .map_or(u64::MAX, |o| o.at.as_nanos());
        let h_t = self.failures.next_at().map_or(u64::MAX, SimTime::as_nanos);
        let edge_t = self
            .sim
            .edge
            .next_deadline()
            .map_or(u64::MAX, |t| t.as_nanos());
        // Edge deadlines past the horizon only matter while flows are still open.
        let edge_t = if edge_t > self.horizon && end_t == u64::MAX && arrival == u64::MAX {
            u64::MAX
        } else {
            edge_t
        };
        let dns_t = if self.next_dns <= self.horizon {
            self.next_dns
        } else {
            u64::MAX
        };
        let t = arrival.min(end_t).min(op_t).min(h_t).min(edge_t).min(dns_t);
        let event = if t == u64::MAX {
            return None;
        } else if end_t == t {
            Event::FlowEnd
        } else if op_t == t {
            Event::TimelineOp
        } else if h_t == t {
            Event::Failures
        } else if edge_t == t {
            Event::EdgeDeadline
        } else if dns_t == t {
            Event::DnsRound
        } else {
            Event::Arrival
        };
        Some((event, t))
    }

    /// The metrics bucket of time `t` (ns); the last bucket takes the run's final instant.
    fn bucket_of(&self, t: u64) -> usize {
        ((t / self.bucket_ns) as usize).min(self.buckets - 1)
    }

    /// Calls the progress callback with the flows done so far, at `at`.
    fn report_progress(&mut self, at: SimTime) {
        (self.progress)(&Progress {
            flows_done: self.flows_done,
            flows_total: self.sim.flows,
            at,
            end: self.sim.horizon,
        });
    }

    /// A flow's last packet: counts resets and lost pins, and whether its decision would
    /// have changed while it was open.
    fn on_flow_end(&mut self, t: u64, now: SimTime) {
        let o = self.open.pop().expect("peeked");
        // A TCP flow ends with its FIN, a UDP flow with its last packet: either way the
        // edge decides it and drops the pin in one call.
        let d_end = self.sim.edge.last_packet(o.ingress, &o.key, now);
        let b = self.bucket_of(t);
        match d_end.verdict {
            Verdict::Reset(ResetReason::BindingChanged) => {
                self.counters.reset_binding_changed += 1;
                self.reset_by_bucket[b] += 1;
            }
            Verdict::Reset(ResetReason::ProcessingDown) => {
                self.counters.reset_processing_down += 1;
                self.reset_by_bucket[b] += 1;
            }
            _ if !d_end.established => self.counters.pin_lost += 1,
            _ => {}
        }
        if o.epoch != self.epoch || self.sim.edge.table_version(o.ingress) != o.table_version {
            let fresh = self.sim.edge.route(o.ingress, o.key.dst());
            if fresh.verdict != o.verdict || fresh.processed_at != o.processed_at {
                self.metrics.decision_changed += 1;
                self.changed_by_bucket[b] += 1;
            }
        }
    }

    /// The next control-plane operation, through the control plane's rules.
    fn on_timeline_op(&mut self, now: SimTime) -> Result<(), SimError> {
        let sim = &mut self.sim;
        let op = &sim.scenario.timeline[self.next_op];
        self.next_op += 1;
        let entry = apply_op(
            &sim.scenario,
            &sim.refdata,
            &sim.topo,
            &mut sim.edge,
            &mut sim.control,
            &mut self.ops,
            op,
            now,
            &mut self.r_prop,
        )?;
        self.out.timeline.push(entry);
        Ok(())
    }

    /// Failures and recoveries due now: the edge's health, the check's count of healthy
    /// members per region, and every client point's ingress.
    fn on_failures(&mut self, now: SimTime) {
        let changes = self.failures.apply_due(now);
        for &(dc, healthy) in &changes {
            if self.sim.edge.is_healthy(dc) != healthy {
                self.out
                    .health_changes
                    .push((now, self.sim.topo.dc(dc).code.to_string(), healthy));
                self.count_healthy_member(dc, healthy);
            }
        }
        self.sim.edge.set_health(&changes);
        self.epoch += 1;
        for (slot, p) in self.ingress_cache.iter_mut().zip(&self.sim.points) {
            *slot = self.sim.edge.ingress_for(&p.location);
        }
    }

    /// Counts `dc` in or out of the healthy members of each region it belongs to.
    fn count_healthy_member(&mut self, dc: DcId, healthy: bool) {
        for (r, count) in self.healthy_members.iter_mut().enumerate() {
            if self.check.located[dc.index()] && self.check.is_member(r, dc.index()) {
                if healthy {
                    *count += 1
                } else {
                    *count -= 1
                }
            }
        }
    }

    /// Table deliveries and flow-table sweeps due now.
    fn on_edge_deadline(&mut self, now: SimTime) {
        let r = self.sim.edge.tick(now);
        self.counters.deliveries += u64::from(r.delivered);
    }

    /// A DNS probe round: every probe place asks every target every query, and the first
    /// answer and every change are recorded.
    fn on_dns_round(&mut self, now: SimTime) -> Result<(), SimError> {
        let sim = &self.sim;
        let d = sim
            .scenario
            .dns
            .as_ref()
            .expect("probe rounds only with [dns]");
        for (pi, p) in sim.probes.iter().enumerate() {
            let ingress = sim.edge.ingress_for(&p.location);
            for (ti, target) in d.targets.iter().enumerate() {
                for &q in &d.queries {
                    let id: u16 = self.r_dns.gen();
                    let (answered_by, answer) = dns_exchange(
                        &sim.edge,
                        &sim.topo,
                        ingress,
                        *target,
                        q,
                        id,
                        &mut self.counters,
                    )?;
                    let key = (pi, ti, q);
                    let summary = format!("{answered_by:?}|{answer}");
                    if self.dns_last.get(&key) != Some(&summary) {
                        self.dns_last.insert(key, summary);
                        self.out.dns.push(DnsObservation {
                            at: now,
                            from: p.name.clone(),
                            target: *target,
                            query: q,
                            ingress: ingress.map(|i| sim.topo.dc(i).code.to_string()),
                            answered_by,
                            answer,
                            id,
                        });
                    }
                }
            }
        }
        self.next_dns = self
            .next_dns
            .saturating_add(self.dns_every.unwrap_or(u64::MAX));
        self.dns_rounds += 1;
        if self.dns_rounds.is_multiple_of(256) {
            self.report_progress(now);
        }
        Ok(())
    }

    /// A flow arrival: decided at its client's ingress, checked independently, recorded,
    /// and, when processed (and not a one-exchange DNS flow), kept open until its end.
    fn on_arrival(&mut self, t: u64, now: SimTime) {
        let f = self.pending.take().expect("arrival");
        self.pending = self.gen.next();
        self.flows_done += 1;
        if self.flows_done & 0xFFFF == 0 {
            self.report_progress(now);
        }
        let record = FlowRecord {
            bucket: self.bucket_of(t) as u32,
            continent: self.point_continent[f.client as usize],
            population: self.point_population[f.client as usize],
            region: 0,
            outcome: Outcome::Refused,
            ingress: 0,
            processed_at: None,
            added_rtt_us: 0,
            bytes: 0,
        };
        let Some(ingress) = self.ingress_cache[f.client as usize] else {
            // No healthy data center with coordinates anywhere.
            self.counters.refused_no_ingress += 1;
            self.metrics.record(&record);
            return;
        };
        let key = flow_key(&f);
        let d: Decision = if f.protocol == Protocol::Dns {
            self.sim.edge.route(ingress, f.dst)
        } else {
            self.sim.edge.decide(ingress, &key, now)
        };
        self.check_region(&f, &d, ingress);
        self.metrics.record(&FlowRecord {
            region: d.region.map_or(0, |r| r.0 + 1),
            outcome: outcome_of(d.verdict),
            ingress: ingress.0,
            processed_at: d.processed_at.map(|p| p.0),
            added_rtt_us: d.added_rtt_us,
            bytes: f.bytes,
            ..record
        });
        if d.is_processed() && f.protocol != Protocol::Dns {
            self.open.push(
                t.saturating_add(f.duration.as_nanos()),
                f.id,
                Open {
                    key,
                    ingress,
                    processed_at: d.processed_at,
                    verdict: d.verdict,
                    table_version: d.table_version,
                    epoch: self.epoch,
                },
            );
            self.counters.peak_open_flows =
                self.counters.peak_open_flows.max(self.open.len() as u64);
        }
    }

    /// The independent check of one decision against the control plane's bindings of
    /// the table version it used: processed outside the bound region, or refused while
    /// an in-region data center was healthy.
    fn check_region(&mut self, f: &FlowSpec, d: &Decision, ingress: DcId) {
        let Some(r) = Check::region_for(&self.ops.check_versions, d.table_version, f.dst) else {
            return;
        };
        match d.processed_at {
            Some(dc) if !self.check.is_member(r, dc.index()) => {
                self.metrics.out_of_region_processed += 1
            }
            None if self.healthy_members[r] > 0 && self.sim.edge.is_healthy(ingress) => {
                self.metrics.wrongly_refused += 1
            }
            _ => {}
        }
    }

    /// The run's output: published versions with how far each propagated, the metrics
    /// and the counters.
    fn finish(mut self) -> RunOutput {
        let mut out = self.out;
        out.versions = std::mem::take(&mut self.ops.versions);
        for v in &mut out.versions {
            if let Some(s) = self.sim.edge.version_status(v.version) {
                v.active_at = s.active_at;
                v.complete_at = s.complete_at;
                v.reached = s.reached;
                v.total = s.total;
            }
        }
        self.metrics.finish();
        out.metrics = self.metrics;
        out.changed_by_bucket = self.changed_by_bucket;
        out.reset_by_bucket = self.reset_by_bucket;
        out.counters = self.counters;
        out
    }
}

/// The metric categories of a run: client continents (sorted), populations, regions
/// (`none` first, for unbound destinations) and data centers.
fn categories(sim: &Simulation, continents: Vec<String>) -> Categories {
    Categories {
        continents,
        populations: sim
            .scenario
            .clients
            .iter()
            .map(|c| c.name.clone())
            .collect(),
        regions: std::iter::once("none".to_owned())
            .chain(sim.topo.regions().iter().map(|r| r.key.to_string()))
            .collect(),
        data_centers: sim.topo.dcs().iter().map(|d| d.code.to_string()).collect(),
    }
}

/// The independent check's data, from the reference data rather than the edge's
/// topology: region membership and which data centers have coordinates.
fn independent_check(sim: &Simulation) -> Check {
    let ndc = sim.topo.dc_count();
    let nreg = sim.refdata.regions().len();
    let mut member = vec![false; nreg * ndc];
    for r in 0..nreg {
        for &dc in sim.refdata.members(r) {
            member[r * ndc + dc] = true;
        }
    }
    let located = sim
        .refdata
        .data_centers()
        .iter()
        .map(|d| d.location.is_some())
        .collect();
    Check {
        member,
        located,
        ndc,
    }
}

/// The edge's key of a flow. Sources are unique among open flows: the flow id in a
/// client range.
fn flow_key(f: &FlowSpec) -> FlowKey {
    let (proto, dport) = match f.protocol {
        Protocol::Tcp => (inregion_edge::Protocol::TCP, 443),
        Protocol::Udp => (inregion_edge::Protocol::UDP, 443),
        Protocol::Dns => (inregion_edge::Protocol::UDP, 53),
    };
    match f.dst {
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
    }
}

/// The metrics outcome of an edge verdict.
fn outcome_of(verdict: Verdict) -> Outcome {
    match verdict {
        Verdict::Global => Outcome::Unbound,
        Verdict::InRegion => Outcome::InRegion,
        Verdict::Forwarded => Outcome::Forwarded,
        Verdict::Refused(_) | Verdict::Reset(_) => Outcome::Refused,
    }
}

/// One DNS probe: a real query message (id `id`) to `target` through the ingress's
/// routing decision, answered by the processing data center, if any. Returns that data
/// center's code and the answer as text.
fn dns_exchange(
    edge: &Edge,
    topo: &Topology,
    ingress: Option<DcId>,
    target: IpAddr,
    q: DnsQueryKind,
    id: u16,
    counters: &mut RunCounters,
) -> Result<(Option<String>, String), SimError> {
    let query = dns::encode_query(id, q)?;
    counters.dns_probes += 1;
    let decision = ingress.map(|i| edge.route(i, target));
    let answered_by = decision
        .and_then(|d| d.processed_at)
        .map(|dc| topo.dc(dc).code.to_string());
    let answer = match &answered_by {
        Some(code) => {
            let bytes = dns::answer(&query, code, target)?;
            let a = dns::read_answer(&bytes, id)?;
            counters.dns_answered += 1;
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
    Ok((answered_by, answer))
}
