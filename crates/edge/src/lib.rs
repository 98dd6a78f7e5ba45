//! `inregion-edge`: the sans-IO edge of Regionalized IP Bindings. For every new flow it
//! decides *where* the flow is processed — at the ingress data center, forwarded to an
//! in-region data center, or refused — and it pins that decision for the life of the
//! flow while binding changes propagate data center by data center.
//!
//! ```text
//!  client location ──nearest healthy DC──► ingress (L3/L4 DDoS mitigation, always)
//!                                            │
//!                   flow table (5-tuple) ────┤ known flow → pinned decision
//!                                            │ new flow:
//!   Edge::publish ─► per-DC delay ─► DC's    ▼
//!   (control plane)  (seeded RNG)    table ─► lookup(dst) ─► region?
//!                                            ├─ none ───────────► process at ingress
//!                                            ├─ ingress ∈ R ────► TLS at ingress
//!                                            ├─ best healthy ∈ R ► forward (+RTT)
//!                                            └─ none healthy ───► refuse (fail closed)
//! ```
//!
//! # Invariants
//!
//! - **Fail closed.** A flow whose destination is bound to region `R` (in the table the
//!   decision used) is TLS-terminated only at a member of `R`; when no member is healthy
//!   and reachable it is refused, never processed elsewhere.
//! - **Affinity** (default [`AffinityMode::Pinned`]). The first packet of a flow pins its
//!   decision and table version in the ingress's flow table; later packets get the same
//!   processing data center until FIN/RST, idle timeout, eviction (table full; counted)
//!   or a health failure of the processing data center (the flow is reset). A published
//!   table never moves an established flow. [`AffinityMode::ResetOnChange`] models the
//!   stricter behaviour of Cloudflare's newer documentation (resets on rebinding).
//! - **Convergence.** Once a version has reached every data center, each decides new
//!   flows exactly like a plain model: most specific binding, then the nearest healthy
//!   in-region data center (ties: lowest index).
//! - **Determinism.** No clock, no threads, no globals, no randomness of its own: the
//!   same inputs (times, seeded RNG) give the same decisions.
//!
//! A data center without coordinates can be given explicitly as ingress, but it is never
//! chosen as the nearest ingress or as a forwarding target, and (having no RTT to anyone
//! under the geometric model) it refuses bound traffic of regions it is not in.
//!
//! # Where to start
//!
//! [`Topology`] (data centers, regions, RTT model) → [`Edge`] (health, tables, flows):
//! [`Edge::decide`] / [`Edge::decide_many`] / [`Edge::packet`] per packet,
//! [`Edge::publish`] + [`Edge::tick`] / [`Edge::next_deadline`] for propagation and
//! timers, [`Edge::explain`] for a trace, [`Edge::set_healthy`] and
//! [`Edge::set_policy`] ([`TargetPolicy`], e.g. the load-aware [`PenalizedRtt`]) for the
//! forwarding choice. `examples/event_loop.rs` embeds it in a tiny discrete-event loop.
//!
//! # Cost
//!
//! A new-flow decision is one flow-table probe, one region-table lookup and one read of
//! a dense `(ingress, region) → route` array precomputed on health changes; an
//! established one is one flow-table probe. The flow table (per data center) is a
//! SwissTable-style open-addressing table of 64-byte entries, bounded by
//! [`FlowTableConfig::max_flows`], starting at 16 slots and doubling as flows arrive
//! (a data center's table stays as small as its live flows, so it stays in cache), and
//! backed by transparent huge pages once large ([`inregion_hint::huge_page_vec`]: a
//! million flows are 128 MiB, and 4 KiB pages would cost a TLB miss per probe).
//! [`Edge::decide_many`] runs a three-stage software pipeline over groups of 32 packets
//! (hash and prefetch the control words; prefetch each known flow's entry line, or each
//! new flow's first region-table line; batch-look-up the new flows' regions and decide),
//! so the cache misses of a receive batch overlap. Its last stage skips the probe in
//! the common cases (an established flow whose prefetched entry holds it, live; a new
//! flow whose home group proves it absent), running the very branches of the
//! per-packet core of [`Edge::decide`] that a probe would have led to, and leaves the
//! rest to that core; a property test checks that a batch decides exactly as single
//! calls do. A batch writes new flows' entry lines with streaming stores, which
//! skip reading the line from memory first, through an [`inregion_hint::StreamingWriter`]
//! scope: the writer fences before any entry it wrote is read again in the batch (a
//! duplicate flow, an eviction, a growth) and once at the end, so the crate stays free
//! of `unsafe` and no entry is ever read before its fence. Each shard keeps its own
//! reference to each data center's current snapshot and checks it with one atomic load
//! per call. Nothing on these paths allocates except a flow table's growth.
//!
//! ```
//! use std::sync::Arc;
//! use inregion_edge::{region_table, Edge, EdgeConfig, FlowKey, Protocol, SimTime, Topology, Verdict};
//! use inregion_model::{Iata, ReferenceData, RegionKey};
//! use rand::SeedableRng;
//!
//! let topo = Arc::new(Topology::from_reference(&ReferenceData::embedded()).unwrap());
//! let mut edge = Edge::new(Arc::clone(&topo), EdgeConfig::default());
//! let eu = RegionKey::parse("eu").unwrap();
//! let table = region_table(&topo, [("203.0.113.0/24".parse().unwrap(), &eu)]).unwrap();
//! edge.install(1, table, SimTime::ZERO).unwrap();
//!
//! let iad = topo.dc_by_code(Iata::parse("IAD").unwrap()).unwrap();
//! let fra = topo.dc_by_code(Iata::parse("FRA").unwrap()).unwrap();
//! let flow = FlowKey::v4(Protocol::TCP, [198, 51, 100, 7].into(), 50000, [203, 0, 113, 10].into(), 443);
//!
//! // Arriving in Washington: L3/L4 there, TLS in an EU data center.
//! let d = edge.decide(iad, &flow, SimTime::from_secs(1));
//! assert_eq!(d.verdict, Verdict::Forwarded);
//! assert!(topo.is_member(d.processed_at.unwrap(), topo.region_by_key("eu").unwrap()));
//! assert!(d.added_rtt_us > 50_000);
//! // Arriving in Frankfurt: processed there.
//! assert_eq!(edge.decide(fra, &flow, SimTime::from_secs(1)).verdict, Verdict::InRegion);
//!
//! // Unbind it: the change reaches each data center after its own delay (4-6 h by
//! // default); an open flow keeps its decision meanwhile.
//! let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(1);
//! let mut now = SimTime::from_secs(2);
//! edge.publish(2, inregion_table::Table::empty(), now, &mut rng).unwrap();
//! let again = edge.decide(iad, &flow, SimTime::from_secs(60));
//! assert!(again.established && again.processed_at == d.processed_at);
//! while edge.pending_deliveries() > 0 {
//!     now = edge.next_deadline().unwrap();
//!     edge.tick(now);
//! }
//! assert!(edge.version_status(2).unwrap().complete_at.is_some());
//! let other = FlowKey::v4(Protocol::TCP, [198, 51, 100, 7].into(), 50001, [203, 0, 113, 10].into(), 443);
//! assert_eq!(edge.decide(iad, &other, now).verdict, Verdict::Global);
//! ```

#![warn(missing_docs)]
#![forbid(unsafe_code)]

mod decision;
mod edge;
mod flow;
mod propagation;
mod time;
mod topology;

pub use decision::{Candidate, Decision, Explanation, RefuseReason, ResetReason, Verdict};
pub use edge::{
    region_table, AffinityMode, Edge, EdgeConfig, EdgeError, LowestRtt, PenalizedRtt, TargetPolicy,
    TickReport,
};
pub use flow::{FlowKey, FlowKeyError, FlowStats, FlowTableConfig, Protocol, TcpFlags};
pub use propagation::{DelayDistribution, VersionStatus};
pub use time::SimTime;
pub use topology::{
    DcId, DcInfo, DcSpec, GreatCircleRtt, RegionIndex, RegionInfo, RegionSpec, RttMatrix, RttModel,
    Topology, TopologyError, RTT_UNREACHABLE,
};
