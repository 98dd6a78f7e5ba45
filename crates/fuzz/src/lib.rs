//! # inregion-fuzz: the bodies of inregion's fuzz targets
//!
//! Each target is a plain function from bytes to nothing that panics when it finds a
//! bug: a parser that panics, a parse that disagrees with a plain model of the rule, a
//! request that gets a 5xx or changes state although it was refused, a table lookup
//! that disagrees with a linear scan.
//!
//! | target | what it drives | oracle |
//! | --- | --- | --- |
//! | [`ids`] | CIDR, IP, id, code and timestamp parsers of `inregion-model` | plain models of each rule, canonical round trips |
//! | [`api`] | request lines, query strings and bodies through the whole router, in process | no 5xx, JSON envelope, a refused request changes nothing |
//! | [`scenario_toml`] | `Scenario::from_toml_str` | no panic; an accepted scenario is consistent |
//! | [`config_toml`] | `SeedConfig::from_toml` and seeding a fresh control plane | no panic; a refused seed changes nothing |
//! | [`table`] | table builds from arbitrary prefix sets, every lookup method | a linear longest-match scan |
//! | [`snapshot`] | `Snapshot::from_json` and a restore into a fresh control plane | no panic; a refused restore changes nothing; saved again, it restores to the same records |
//!
//! Two runners call them:
//! - `fuzz/` (cargo-fuzz, nightly, coverage-guided; `scripts/fuzz.sh MINUTES`), one
//!   `fuzz_target!` per function, and
//! - this crate's tests (stable, in `cargo test`): every checked-in corpus entry and
//!   every regression input, then a few seconds of seeded random mutations of them, so
//!   that the targets keep compiling and the corpora keep passing in CI.
//!
//! ## Invariants
//! - A target uses no unseeded randomness: the control plane is built with a fixed id
//!   seed and a fixed `now` (the `api` target's server clock is wall time, as in
//!   production; no answer it checks depends on it).
//! - Inputs that are not UTF-8 where text is expected are ignored, not errors.

#![warn(missing_docs)]
#![forbid(unsafe_code)]

mod api_target;
mod ids_target;
mod snapshot_target;
mod table_target;
mod toml_targets;

pub use api_target::api;
pub use ids_target::ids;
pub use snapshot_target::snapshot;
pub use table_target::table;
pub use toml_targets::{config_toml, scenario_toml};

/// The fixed `now` every target passes to the control plane.
const NOW: inregion_model::Timestamp =
    inregion_model::Timestamp::from_micros(1_780_000_000_000_000);

/// A fresh in-memory control plane on the embedded reference data (parsed once per
/// process), with a fixed id seed so that an input takes the same path every time.
fn fresh_control_plane() -> inregion_control::ControlPlane {
    use std::sync::{Arc, OnceLock};
    static REFERENCE: OnceLock<Arc<inregion_model::ReferenceData>> = OnceLock::new();
    let reference = REFERENCE
        .get_or_init(|| Arc::new(inregion_model::ReferenceData::embedded()))
        .clone();
    inregion_control::ControlPlane::in_memory(inregion_control::ControlConfig {
        reference,
        id_seed: Some(7),
        ..inregion_control::ControlConfig::default()
    })
}

/// A fuzz target: bytes in, a panic on a bug.
pub type Target = fn(&[u8]);

/// Every target by name, as the runners and the corpus directories name them.
pub const TARGETS: &[(&str, Target)] = &[
    ("ids", ids),
    ("api", api),
    ("scenario_toml", scenario_toml),
    ("config_toml", config_toml),
    ("table", table),
    ("snapshot", snapshot),
];
