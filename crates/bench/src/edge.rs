//! Edge comparison: inregion's [`Edge`] against a baseline written the obvious way
//! (`ip_network_table` longest match, a `std::collections::HashMap` flow table keyed by
//! the 5-tuple, and a linear scan of the region's members for the nearest healthy one).
//!
//! Both sides get the same topology (the embedded ~340 data centers), the same bindings
//! (2,000 BYOIP-shaped IPv4 prefixes bound to the managed regions), the same RTT matrix
//! and the same packets, and their decisions are checked to agree before anything is
//! timed. Cases (decisions per second, one JSON object per line):
//!
//! - `new-flows`: first packets of flows not yet in the flow table, which holds 1M live
//!   flows (ours through [`Edge::decide_many`] in receive batches of 64);
//! - `new-flows-unbatched`: the same through [`Edge::decide`], one packet per call;
//! - `established-flows`: packets of the 1M live flows in random order;
//! - `*-N-threads`: the same on N threads (N from `INREGION_BENCH_THREADS`, default 2;
//!   counts of 1 are left out, the cases above cover them), each with its own flow table
//!   of 1M live flows (ours: one [`Edge::shard`] per thread) and ingress data center
//!   (Washington and Singapore in turn); the rate is the total over all threads.
//!
//! The timed part of a new-flow pass only decides; the flows it created are ended
//! afterwards, untimed, so that every pass starts from the same 1M live flows. Passes
//! take turns over [`FRESH_SETS`] sets of fresh flows: a set is only seen again once
//! the other sets' passes have moved its slots and buckets out of the caches, as new
//! flows' slots are in real traffic (re-creating the very flows that the untimed
//! clean-up had just touched would hand both sides cache hits no traffic gives).

use std::collections::HashMap;
use std::hint::black_box;
use std::net::{IpAddr, Ipv4Addr};
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

use inregion_edge::{
    AffinityMode, DcId, Decision, DelayDistribution, Edge, EdgeConfig, FlowKey, FlowTableConfig,
    Protocol, RegionIndex, SimTime, Topology, Verdict, RTT_UNREACHABLE,
};
use inregion_model::{Iata, ReferenceData};
use inregion_table::Table;
use ip_network::{IpNetwork, Ipv4Network};
use ip_network_table::IpNetworkTable;
use ipnet::Ipv4Net;
use rand::seq::SliceRandom;
use rand::Rng;

use crate::workload;

/// Live flows per flow table.
pub const LIVE_FLOWS: usize = 1_000_000;
/// New flows decided per timed pass (ended again, untimed, after the pass).
pub const FRESH_PER_PASS: usize = 32_768;
/// Sets of [`FRESH_PER_PASS`] fresh flows that new-flow passes take in turn (16 sets
/// touch 32 MiB of flow-table lines on our side, more than a server's L3 holds).
pub const FRESH_SETS: usize = 16;
/// Established packets decided per timed pass.
pub const ESTABLISHED_PER_PASS: usize = 1 << 18;
/// Packets per [`Edge::decide_many`] call (a receive batch).
pub const BATCH: usize = 64;
/// Bindings in the region table.
pub const BINDINGS: usize = 2_000;
/// The simulated time of every packet (well inside the idle timeouts).
pub const NOW: SimTime = SimTime::from_secs(10);

/// The shared world: topology and bindings.
pub struct World {
    /// The embedded data centers and managed regions.
    pub topology: Arc<Topology>,
    /// `(prefix, region)` bindings: half `eu`, a quarter `us`, the rest other regions.
    pub bindings: Vec<(Ipv4Net, RegionIndex)>,
}

impl World {
    /// Builds the world (deterministic for a seed).
    pub fn new(seed: u64) -> anyhow::Result<World> {
        let topology = Arc::new(Topology::from_reference(&ReferenceData::embedded())?);
        let region = |k: &str| {
            topology
                .region_by_key(k)
                .ok_or_else(|| anyhow::anyhow!("region {k} missing"))
        };
        let (eu, us) = (region("eu")?, region("us")?);
        let mut rng = workload::rng(seed);
        let bindings = workload::synthetic_v4_byoip(BINDINGS, seed)
            .into_iter()
            .map(|n| {
                let r = match rng.gen_range(0..4) {
                    0 | 1 => eu,
                    2 => us,
                    _ => RegionIndex(rng.gen_range(0..topology.region_count()) as u16),
                };
                (n, r)
            })
            .collect();
        Ok(World { topology, bindings })
    }

    /// The data center with this IATA code.
    pub fn dc(&self, code: &str) -> DcId {
        self.topology
            .dc_by_code(Iata::parse(code).expect("valid code"))
            .expect("data center in the embedded list")
    }

    /// The region table for ours.
    pub fn table(&self) -> Table<RegionIndex> {
        let mut b = Table::builder();
        for &(n, r) in &self.bindings {
            b.insert_v4(n, r);
        }
        b.build()
    }

    /// An edge with the bindings installed (version 1) everywhere and flow tables sized
    /// for [`LIVE_FLOWS`] plus a pass of new flows.
    pub fn edge(&self) -> Edge {
        let config = EdgeConfig {
            affinity: AffinityMode::Pinned,
            flows: FlowTableConfig {
                max_flows: 1 << 20,
                initial_capacity: 1 << 21,
                ..FlowTableConfig::default()
            },
            propagation: DelayDistribution::Fixed(Duration::ZERO),
        };
        let mut edge = Edge::new(Arc::clone(&self.topology), config);
        edge.install(1, self.table(), SimTime::ZERO)
            .expect("version 1 on a fresh edge");
        edge
    }

    /// Packets for one ingress: `live` flows (decided once to fill the flow table), the
    /// same flows shuffled (the established stream) and `fresh` flows never seen.
    pub fn traffic(&self, ingress: DcId, live: usize, fresh: usize, seed: u64) -> Traffic {
        let nets: Vec<Ipv4Net> = self.bindings.iter().map(|&(n, _)| n).collect();
        let total = live + fresh;
        let hits = workload::hits_v4(&nets, total, seed ^ 1);
        let random = workload::uniform_v4(total, seed ^ 2);
        let mut rng = workload::rng(seed ^ 3);
        let flows: Vec<FlowKey> = (0..total)
            .map(|i| {
                // 80 % to bound customer addresses, 20 % anywhere (mostly unbound).
                let dst = if rng.gen_ratio(4, 5) {
                    hits[i]
                } else {
                    random[i]
                };
                let proto = if rng.gen_ratio(9, 10) {
                    Protocol::TCP
                } else {
                    Protocol::UDP
                };
                // Distinct by construction: the source encodes the index.
                let src = Ipv4Addr::from(0x6400_0000 | i as u32);
                FlowKey::v4(proto, src, rng.gen_range(1024..=65535), dst, 443)
            })
            .collect();
        let fresh_flows = flows[live..].to_vec();
        let live_flows = flows[..live].to_vec();
        let mut established = live_flows.clone();
        established.shuffle(&mut rng);
        Traffic {
            ingress,
            live: live_flows,
            established,
            fresh: fresh_flows,
        }
    }
}

/// The packets of one ingress.
pub struct Traffic {
    /// Where the packets arrive.
    pub ingress: DcId,
    /// Flows in the flow table before timing.
    pub live: Vec<FlowKey>,
    /// The live flows in random order.
    pub established: Vec<FlowKey>,
    /// Flows never seen: [`FRESH_SETS`] sets of [`FRESH_PER_PASS`], one after another.
    pub fresh: Vec<FlowKey>,
}

// ---- the baseline ----------------------------------------------------------------

/// The baseline's flow key: the 5-tuple as `std` types.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct BaselineKey {
    /// Source address.
    pub src: IpAddr,
    /// Destination address.
    pub dst: IpAddr,
    /// Source port.
    pub src_port: u16,
    /// Destination port.
    pub dst_port: u16,
    /// IP protocol.
    pub protocol: u8,
}

impl From<&FlowKey> for BaselineKey {
    fn from(k: &FlowKey) -> Self {
        BaselineKey {
            src: k.src(),
            dst: k.dst(),
            src_port: k.src_port(),
            dst_port: k.dst_port(),
            protocol: k.protocol().0,
        }
    }
}

/// The baseline's decision.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BaselineDecision {
    /// Processing data center (`None`: refused).
    pub processed_at: Option<usize>,
    /// Bound region.
    pub region: Option<u16>,
    /// Added RTT in µs.
    pub added_rtt_us: u32,
    /// Table version.
    pub version: u64,
    /// From the flow table.
    pub established: bool,
    last_seen: u64,
}

/// The edge decision written the obvious way.
pub struct Baseline {
    ingress: usize,
    n: usize,
    rtt: Vec<u32>,
    members: Vec<Vec<usize>>,
    healthy: Vec<bool>,
    table: IpNetworkTable<u16>,
    version: u64,
    flows: HashMap<BaselineKey, BaselineDecision>,
    idle_timeout_ns: u64,
}

impl Baseline {
    /// The baseline for one ingress, with the same bindings, RTTs and membership.
    pub fn new(world: &World, ingress: DcId) -> Baseline {
        let topo = &world.topology;
        let n = topo.dc_count();
        let mut rtt = vec![0; n * n];
        for a in 0..n {
            for b in 0..n {
                rtt[a * n + b] = topo.rtt_us(DcId(a as u16), DcId(b as u16));
            }
        }
        let mut table = IpNetworkTable::new();
        for &(net, r) in &world.bindings {
            let net = Ipv4Network::new(net.network(), net.prefix_len()).expect("valid prefix");
            table.insert(IpNetwork::V4(net), r.0);
        }
        Baseline {
            ingress: ingress.index(),
            n,
            rtt,
            members: topo
                .regions()
                .iter()
                .map(|r| r.members.iter().map(|m| m.index()).collect())
                .collect(),
            healthy: vec![true; n],
            table,
            version: 1,
            flows: HashMap::new(),
            idle_timeout_ns: 300_000_000_000,
        }
    }

    /// Decides one packet.
    pub fn decide(&mut self, key: &BaselineKey, now: u64) -> BaselineDecision {
        if let Some(e) = self.flows.get_mut(key) {
            if now.saturating_sub(e.last_seen) <= self.idle_timeout_ns {
                e.last_seen = now;
                return BaselineDecision {
                    established: true,
                    ..*e
                };
            }
        }
        let region = self.table.longest_match(key.dst).map(|(_, r)| *r);
        let (processed_at, added_rtt_us) = match region {
            None => (Some(self.ingress), 0),
            Some(r) => {
                let members = &self.members[r as usize];
                if members.contains(&self.ingress) {
                    (Some(self.ingress), 0)
                } else {
                    let mut best: Option<(u32, usize)> = None;
                    for &m in members {
                        let rtt = self.rtt[self.ingress * self.n + m];
                        if self.healthy[m]
                            && rtt != RTT_UNREACHABLE
                            && best.is_none_or(|(b, _)| rtt < b)
                        {
                            best = Some((rtt, m));
                        }
                    }
                    match best {
                        Some((rtt, m)) => (Some(m), rtt),
                        None => (None, 0),
                    }
                }
            }
        };
        let d = BaselineDecision {
            processed_at,
            region,
            added_rtt_us,
            version: self.version,
            established: false,
            last_seen: now,
        };
        if processed_at.is_some() {
            self.flows.insert(*key, d);
        }
        d
    }

    /// Ends a flow.
    pub fn end(&mut self, key: &BaselineKey) {
        self.flows.remove(key);
    }

    /// Live flows.
    pub fn len(&self) -> usize {
        self.flows.len()
    }

    /// Whether no flow is live.
    pub fn is_empty(&self) -> bool {
        self.flows.is_empty()
    }
}

/// Whether ours and the baseline decided the same.
pub fn agree(ours: &Decision, base: &BaselineDecision) -> bool {
    ours.processed_at.map(|d| d.index()) == base.processed_at
        && ours.region.map(|r| r.0) == base.region
        && ours.added_rtt_us == base.added_rtt_us
        && ours.established == base.established
        && ours.table_version == base.version
        && (ours.verdict == Verdict::Forwarded)
            == (base.processed_at.is_some_and(|p| p != ours.ingress.index()))
}

// ---- one thread's contestants --------------------------------------------------

/// Ours and the baseline for one ingress, each with [`LIVE_FLOWS`] live flows.
pub struct Contest {
    /// The packets.
    pub traffic: Traffic,
    /// Ours.
    pub edge: Edge,
    /// The baseline.
    pub baseline: Baseline,
    /// The fresh flows as baseline keys.
    pub fresh_keys: Vec<BaselineKey>,
    /// The set of fresh flows the next new-flow pass decides.
    fresh_set: usize,
    /// The established stream as baseline keys.
    pub established_keys: Vec<BaselineKey>,
    out: Vec<Decision>,
}

impl Contest {
    /// Builds both sides, fills their flow tables and checks that they agree on every
    /// live flow, a sample of established packets and every fresh flow.
    pub fn new(
        world: &World,
        edge: Edge,
        ingress: &str,
        live: usize,
        seed: u64,
    ) -> anyhow::Result<Contest> {
        let ingress = world.dc(ingress);
        let traffic = world.traffic(ingress, live, FRESH_PER_PASS * FRESH_SETS, seed);
        let mut edge = edge;
        let mut baseline = Baseline::new(world, ingress);
        let mut out = vec![edge.route(ingress, IpAddr::V4(Ipv4Addr::UNSPECIFIED)); BATCH];
        for chunk in traffic.live.chunks(BATCH) {
            edge.decide_many(ingress, chunk, NOW, &mut out[..chunk.len()]);
            for (k, d) in chunk.iter().zip(&out) {
                let b = baseline.decide(&BaselineKey::from(k), NOW.as_nanos());
                anyhow::ensure!(
                    agree(d, &b),
                    "ours {d:?} and baseline {b:?} disagree on {k:?}"
                );
            }
        }
        let fresh_keys: Vec<BaselineKey> = traffic.fresh.iter().map(BaselineKey::from).collect();
        let established_keys: Vec<BaselineKey> =
            traffic.established.iter().map(BaselineKey::from).collect();
        let mut c = Contest {
            traffic,
            edge,
            baseline,
            fresh_keys,
            established_keys,
            fresh_set: 0,
            out,
        };
        for (k, b) in c
            .traffic
            .established
            .iter()
            .zip(&c.established_keys)
            .step_by(97)
        {
            let d = c.edge.decide(ingress, k, NOW);
            let e = c.baseline.decide(b, NOW.as_nanos());
            anyhow::ensure!(agree(&d, &e), "established: {d:?} vs {e:?}");
        }
        for (k, b) in c.traffic.fresh.iter().zip(&c.fresh_keys) {
            let d = c.edge.decide(ingress, k, NOW);
            let e = c.baseline.decide(b, NOW.as_nanos());
            anyhow::ensure!(agree(&d, &e), "fresh: {d:?} vs {e:?}");
            // Ended at once: the fresh flows must not fill the flow tables.
            c.edge.flow_end(ingress, k, NOW);
            c.baseline.end(b);
        }
        Ok(c)
    }

    /// The slice of the current fresh set.
    fn fresh_range(&self) -> std::ops::Range<usize> {
        self.fresh_set * FRESH_PER_PASS..(self.fresh_set + 1) * FRESH_PER_PASS
    }

    /// Ends the current set of fresh flows on both sides and moves to the next set
    /// (untimed housekeeping between passes).
    pub fn end_fresh(&mut self) {
        let ingress = self.traffic.ingress;
        let range = self.fresh_range();
        for k in &self.traffic.fresh[range.clone()] {
            self.edge.flow_end(ingress, k, NOW);
        }
        for k in &self.fresh_keys[range] {
            self.baseline.end(k);
        }
        self.fresh_set = (self.fresh_set + 1) % FRESH_SETS;
    }

    /// Ours: decides every flow of the current fresh set in receive batches. Returns
    /// decisions made.
    pub fn ours_new(&mut self) -> usize {
        let ingress = self.traffic.ingress;
        for chunk in self.traffic.fresh[self.fresh_range()].chunks(BATCH) {
            self.edge
                .decide_many(ingress, chunk, NOW, &mut self.out[..chunk.len()]);
            black_box(&self.out);
        }
        FRESH_PER_PASS
    }

    /// Ours: decides every flow of the current fresh set one call per packet.
    pub fn ours_new_unbatched(&mut self) -> usize {
        let ingress = self.traffic.ingress;
        for k in &self.traffic.fresh[self.fresh_range()] {
            black_box(self.edge.decide(ingress, k, NOW));
        }
        FRESH_PER_PASS
    }

    /// Baseline: decides every flow of the current fresh set.
    pub fn baseline_new(&mut self) -> usize {
        for k in &self.fresh_keys[self.fresh_range()] {
            black_box(self.baseline.decide(k, NOW.as_nanos()));
        }
        FRESH_PER_PASS
    }

    /// Ours: `count` established packets (cycling through the stream from `start`).
    pub fn ours_established(&mut self, start: usize, count: usize) -> usize {
        let ingress = self.traffic.ingress;
        let stream = &self.traffic.established;
        let mut i = start % stream.len();
        let mut left = count;
        while left > 0 {
            let n = left.min(BATCH).min(stream.len() - i);
            self.edge
                .decide_many(ingress, &stream[i..i + n], NOW, &mut self.out[..n]);
            black_box(&self.out);
            i = (i + n) % stream.len();
            left -= n;
        }
        count
    }

    /// Ours: `count` established packets, one call per packet.
    pub fn ours_established_unbatched(&mut self, start: usize, count: usize) -> usize {
        let ingress = self.traffic.ingress;
        let stream = &self.traffic.established;
        for j in 0..count {
            let k = &stream[(start + j) % stream.len()];
            black_box(self.edge.decide(ingress, k, NOW));
        }
        count
    }

    /// Baseline: `count` established packets (cycling through the stream from `start`).
    pub fn baseline_established(&mut self, start: usize, count: usize) -> usize {
        let stream = &self.established_keys;
        for j in 0..count {
            let k = &stream[(start + j) % stream.len()];
            black_box(self.baseline.decide(k, NOW.as_nanos()));
        }
        count
    }
}

// ---- the quick comparison ------------------------------------------------------

#[derive(Clone, Copy)]
enum Side {
    Ours,
    OursUnbatched,
    Baseline,
}

#[derive(Clone, Copy)]
enum Kind {
    New,
    Established,
}

/// CPU time consumed by the calling thread. The machine these runs share is often
/// busy: thread CPU time does not count the time the thread waits for a core, so rates
/// are per core even when other processes compete (caches are still shared).
pub fn thread_cpu_time() -> Duration {
    let t = rustix::time::clock_gettime(rustix::time::ClockId::ThreadCPUTime);
    Duration::new(t.tv_sec as u64, t.tv_nsec as u32)
}

/// One timed pass on one contest: returns (decisions, thread CPU seconds).
fn pass(c: &mut Contest, side: Side, kind: Kind, round: usize) -> (usize, f64) {
    let started = thread_cpu_time();
    let n = match (kind, side) {
        (Kind::New, Side::Ours) => c.ours_new(),
        (Kind::New, Side::OursUnbatched) => c.ours_new_unbatched(),
        (Kind::New, Side::Baseline) => c.baseline_new(),
        (Kind::Established, Side::Baseline) => {
            c.baseline_established(round * ESTABLISHED_PER_PASS, ESTABLISHED_PER_PASS)
        }
        (Kind::Established, Side::Ours) => {
            c.ours_established(round * ESTABLISHED_PER_PASS, ESTABLISHED_PER_PASS)
        }
        (Kind::Established, Side::OursUnbatched) => {
            c.ours_established_unbatched(round * ESTABLISHED_PER_PASS, ESTABLISHED_PER_PASS)
        }
    };
    let secs = (thread_cpu_time() - started).as_secs_f64();
    if let Kind::New = kind {
        c.end_fresh();
    }
    (n, secs)
}

/// One round on one thread, or on each contest's own thread at once: the sum of the
/// threads' rates in million decisions per second of thread CPU time.
fn round_rate(contests: &mut [Contest], side: Side, kind: Kind, round: usize) -> f64 {
    if let [c] = contests {
        let (n, s) = pass(c, side, kind, round);
        return n as f64 / s / 1e6;
    }
    let barrier = Barrier::new(contests.len());
    let results: Vec<(usize, f64)> = std::thread::scope(|s| {
        let handles: Vec<_> = contests
            .iter_mut()
            .map(|c| {
                let barrier = &barrier;
                s.spawn(move || {
                    barrier.wait();
                    pass(c, side, kind, round)
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("bench thread"))
            .collect()
    });
    // The threads ran at the same time; each rate is per its own CPU time.
    results.iter().map(|&(n, s)| n as f64 / s / 1e6).sum()
}

/// Ours and the baseline in alternating rounds (so that both see the same machine
/// load), after one warm-up round each: the best rate of each.
fn compare(contests: &mut [Contest], ours: Side, kind: Kind, passes: usize) -> (f64, f64) {
    let (mut best_ours, mut best_base) = (0.0f64, 0.0f64);
    for round in 0..=passes {
        let o = round_rate(contests, ours, kind, round);
        let b = round_rate(contests, Side::Baseline, kind, round);
        if round > 0 {
            best_ours = best_ours.max(o);
            best_base = best_base.max(b);
        }
    }
    (best_ours, best_base)
}

fn emit(case: &str, ours: f64, baseline: f64, extra: serde_json::Value) {
    let mut line = serde_json::json!({
        "case": case,
        "ours_mdps": (ours * 100.0).round() / 100.0,
        "baseline_mdps": (baseline * 100.0).round() / 100.0,
        "speedup": (ours / baseline * 100.0).round() / 100.0,
    });
    if let (Some(obj), serde_json::Value::Object(more)) = (line.as_object_mut(), extra) {
        obj.extend(more);
    }
    println!("{line}");
}

/// Runs the edge comparison and prints JSON lines to stdout.
///
/// `quick`: 6 timed rounds per side and case (else 20; new-flow cases 8 times as many,
/// their passes being 8 times shorter), alternating ours and the baseline; each side's
/// best round counts. A round is short (an established pass is 13 ms), and the shared
/// VMs these runs were tuned on change speed by a third for seconds at a time: with 3
/// rounds, whether a side caught a fast moment moved its figure by ±20% between runs.
/// The quick run takes about half a minute on 2 cores.
pub fn run(quick: bool) -> anyhow::Result<()> {
    let passes = if quick { 6 } else { 20 };
    let started = Instant::now();
    // The scaling cases' thread counts (the single-thread cases always run).
    let scaling: Vec<usize> = crate::thread_counts("2")?
        .into_iter()
        .filter(|&n| n > 1)
        .collect();
    let mut cases: Vec<(String, usize, Side, Kind)> = vec![
        ("new-flows".into(), 1, Side::Ours, Kind::New),
        (
            "new-flows-unbatched".into(),
            1,
            Side::OursUnbatched,
            Kind::New,
        ),
        ("established-flows".into(), 1, Side::Ours, Kind::Established),
        (
            "established-flows-unbatched".into(),
            1,
            Side::OursUnbatched,
            Kind::Established,
        ),
    ];
    for &n in &scaling {
        cases.push((format!("new-flows-{n}-threads"), n, Side::Ours, Kind::New));
        cases.push((
            format!("established-flows-{n}-threads"),
            n,
            Side::Ours,
            Kind::Established,
        ));
    }
    // INREGION_EDGE_CASES=new-flows,established-flows runs only those cases.
    if let Ok(only) = std::env::var("INREGION_EDGE_CASES") {
        let names: Vec<&str> = cases.iter().map(|c| c.0.as_str()).collect();
        if let Some(bad) = only.split(',').find(|c| !names.contains(c)) {
            anyhow::bail!(
                "INREGION_EDGE_CASES: unknown case {bad:?}; the cases are {} \
                 (thread counts from INREGION_BENCH_THREADS)",
                names.join(", ")
            );
        }
        cases.retain(|c| only.split(',').any(|o| o == c.0));
    }
    // Contests (one per thread) for the largest thread count of the cases that run.
    let threads = cases.iter().map(|c| c.1).max().unwrap_or(1);
    // INREGION_EDGE_LIVE=200000 measures another working-set size (the targets are
    // for LIVE_FLOWS).
    let live_flows = match std::env::var("INREGION_EDGE_LIVE") {
        Ok(v) => v
            .parse::<usize>()
            .ok()
            .filter(|&n| (1..=LIVE_FLOWS).contains(&n))
            .ok_or_else(|| {
                anyhow::anyhow!("INREGION_EDGE_LIVE={v:?}: expected a count from 1 to {LIVE_FLOWS}")
            })?,
        Err(_) => LIVE_FLOWS,
    };
    let world = World::new(42)?;
    // One contest per thread, each on its own shard of one edge (shared tables, own flow
    // tables). Washington forwards EU-bound flows across the Atlantic; Singapore is in
    // neither of the two big regions; the threads alternate between them.
    let mut shards = vec![world.edge()];
    while shards.len() < threads {
        let shard = shards[0].shard();
        shards.push(shard);
    }
    let mut contests = Vec::with_capacity(threads);
    for (t, shard) in shards.into_iter().enumerate() {
        let ingress = if t % 2 == 0 { "IAD" } else { "SIN" };
        contests.push(Contest::new(
            &world,
            shard,
            ingress,
            live_flows,
            7 + t as u64,
        )?);
    }
    let setup_s = started.elapsed().as_secs_f64();
    let live = contests[0]
        .edge
        .flow_stats(contests[0].traffic.ingress)
        .live;

    for (case, threads, side, kind) in cases {
        // A new-flow pass is an eighth of an established one: as many times the rounds
        // give both kinds the same timed work, and the short new-flow passes the
        // samples they need to settle on a busy machine.
        let rounds = match kind {
            Kind::New => passes * (ESTABLISHED_PER_PASS / FRESH_PER_PASS),
            Kind::Established => passes,
        };
        let (ours, base) = compare(&mut contests[..threads], side, kind, rounds);
        let extra = serde_json::json!({
            "threads": threads,
            "live_flows_per_thread": live,
            "batch": if matches!(side, Side::Ours) { BATCH } else { 1 },
            "rounds": rounds,
            "bindings": BINDINGS,
            "clock": "thread-cpu",
        });
        emit(&case, ours, base, extra);
    }
    eprintln!(
        "edge comparison: setup {setup_s:.1} s, total {:.1} s",
        started.elapsed().as_secs_f64()
    );
    Ok(())
}
