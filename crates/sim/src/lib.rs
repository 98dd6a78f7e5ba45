//! # inregion-sim: a deterministic simulator of Regionalized IP Bindings
//!
//! Clients all over the world open flows (TCP, UDP, DNS) to addresses of a BYOIP prefix
//! while bindings of that prefix to regions are created, changed and deleted, propagate
//! data center by data center, and data centers fail. The simulator answers: which share
//! of traffic is processed where it enters, forwarded in-region or refused; how much
//! round-trip time forwarding adds per client location; which data centers take the
//! forwarded load; what a DNS measurement probe sees; and, checked independently, that
//! nothing is ever processed out of region.
//!
//! ```text
//!  scenario.toml ──► scenario   (validated, typed; errors name the offending key)
//!                       │
//!                       ▼
//!  workload ─────► engine ◄──── control_port ──► inregion-control rules (API error codes)
//!  (seeded,        │  virtual time, one event loop, sans-IO
//!   time-ordered)  │  decisions by inregion-edge (ingress, propagation, affinity)
//!                  │  dns: real DNS messages (hickory-proto) through the same decisions
//!                  ▼
//!               metrics (streamed: fixed-size counters + HDR histograms)
//!                  ▼
//!               report ──► report.json, CSV, terminal summary
//!                  └─────► plots (PNG + SVG, embedded font)
//! ```
//!
//! ## Invariants
//!
//! - **Determinism.** No wall clock, no thread, no global state: the same scenario and
//!   seed give the same [`Report`], and [`Report::to_json`] is byte-identical. Each
//!   component draws from its own stream of the seed (`rng.rs`).
//! - **Bounded memory.** Flows are generated in time order and never stored; open flows
//!   wait in a heap bounded by the number of concurrent flows; metrics are fixed-size
//!   per scenario (buckets × categories), whatever the flow count.
//! - **Never out of region.** Every processed flow is checked against the control
//!   plane's bindings of the table version its decision used and the reference data's
//!   region membership; violations are counted in `out_of_region_processed`, which the
//!   tests require to be zero.
//!
//! ## Where to start
//!
//! [`Scenario::from_toml_str`] (the format is documented in [`scenario`]), then
//! [`Simulation::new`] and [`Simulation::run`] (`engine/`), then [`Report::new`].
//! `inregion trace` uses [`trace`].
//!
//! ## Public surface
//!
//! The types above and [`SimTime`] (the edge's time type) at the root; the modules an
//! embedder may use on their own: [`scenario`] (the file format and its validation),
//! [`workload`] (the seeded, time-ordered flow generator), [`world`] (client places),
//! [`dns`] (real DNS probe messages) and [`plots`]. The engine, metrics, report
//! internals, the control-plane port and the random streams are private.
//!
//! ## Features
//!
//! - `plots` (default): [`plots::render_all`] draws PNG and SVG plots with plotters. An
//!   embedder that needs only the figures can build with `default-features = false`:
//!   the report, its JSON and CSV are the same, [`plots::render_all`] returns no plot
//!   and the summary ends with [`plots::NOT_BUILT`].
//!
//! ## Embedding
//!
//! ```
//! use inregion_model::ReferenceData;
//! use inregion_sim::{Report, Scenario, Simulation};
//!
//! let text = r#"
//! name = "tiny"
//! duration = "2h"
//! seed = 5
//! [propagation]
//! delay = { dist = "fixed", value = "10m" }
//! [[prefixes]]
//! id = "p"
//! cidr = "203.0.113.0/24"
//! [[timeline]]
//! at = "0s"
//! op = "create_binding"
//! prefix = "p"
//! cidr = "203.0.113.0/25"
//! region = "eu"
//! [[clients]]
//! country = "US"
//! [workload]
//! flows = 2000
//! destinations = [{ cidr = "203.0.113.0/25" }]
//! "#;
//! let scenario = Scenario::from_toml_str("tiny.toml", text).unwrap();
//! let sim = Simulation::new(scenario.clone(), &ReferenceData::embedded()).unwrap();
//! let out = sim.run(&mut |_done, _total| {}).unwrap();
//! let report = Report::new(&scenario, &out);
//! assert_eq!(report.flows, 2000);
//! assert_eq!(report.out_of_region_processed, 0);
//! // US clients reach a bound-to-eu address: after the first 10 minutes, forwarded.
//! assert!(report.outcomes.forwarded > 1500);
//! ```

#![warn(missing_docs)]
#![forbid(unsafe_code)]

mod control_port;
pub mod dns;
mod engine;
mod explain;
mod metrics;
pub mod plots;
mod report;
mod rng;
pub mod scenario;
mod time;
pub mod workload;
pub mod world;

pub use engine::{Progress, RunOutput, SimError, Simulation};
pub use explain::{trace, Trace, TraceRequest};
pub use report::Report;
pub use scenario::{Scenario, ScenarioError};
pub use time::SimTime;
