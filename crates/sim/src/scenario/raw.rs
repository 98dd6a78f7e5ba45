//! The scenario file as `serde` reads it: raw tables that reject unknown keys, so that a
//! typo such as `sead = 1` is an error rather than a silently ignored line. Values are
//! checked and typed afterwards, section by section (see the sibling modules).

use serde::Deserialize;
use std::collections::BTreeMap;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawScenario {
    pub(super) name: String,
    #[serde(default)]
    pub(super) description: String,
    #[serde(default = "default_seed")]
    pub(super) seed: u64,
    pub(super) duration: toml::Value,
    #[serde(default)]
    pub(super) bucket: Option<toml::Value>,
    #[serde(default)]
    pub(super) topology: RawTopology,
    #[serde(default)]
    pub(super) propagation: RawPropagation,
    #[serde(default)]
    pub(super) accounts: Vec<RawAccount>,
    #[serde(default)]
    pub(super) prefixes: Vec<RawPrefix>,
    #[serde(default)]
    pub(super) timeline: Vec<RawOp>,
    #[serde(default)]
    pub(super) clients: Vec<RawClient>,
    pub(super) workload: RawWorkload,
    #[serde(default)]
    pub(super) failures: Vec<RawFailure>,
    #[serde(default)]
    pub(super) dns: Option<RawDns>,
}

fn default_seed() -> u64 {
    1
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct RawTopology {
    #[serde(default)]
    pub(super) exclude: Vec<String>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct RawPropagation {
    #[serde(default)]
    pub(super) mode: Option<String>,
    #[serde(default)]
    pub(super) delay: Option<RawDist>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawAccount {
    pub(super) id: String,
    #[serde(default)]
    pub(super) entitlements: Option<Vec<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawPrefix {
    pub(super) id: String,
    pub(super) cidr: String,
    #[serde(default)]
    pub(super) account: Option<String>,
    #[serde(default = "yes")]
    pub(super) approved: bool,
}

fn yes() -> bool {
    true
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawOp {
    pub(super) at: toml::Value,
    pub(super) op: String,
    #[serde(default)]
    pub(super) name: Option<String>,
    #[serde(default)]
    pub(super) prefix: Option<String>,
    #[serde(default)]
    pub(super) cidr: Option<String>,
    #[serde(default)]
    pub(super) region: Option<String>,
    #[serde(default)]
    pub(super) binding: Option<String>,
    #[serde(default)]
    pub(super) map: Option<String>,
    #[serde(default)]
    pub(super) ips: Option<Vec<String>>,
    #[serde(default)]
    pub(super) ip: Option<String>,
    #[serde(default)]
    pub(super) account: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawClient {
    #[serde(default)]
    pub(super) name: Option<String>,
    #[serde(default)]
    pub(super) country: Option<String>,
    #[serde(default)]
    pub(super) city: Option<String>,
    #[serde(default)]
    pub(super) iata: Option<String>,
    #[serde(default)]
    pub(super) at: Option<String>,
    #[serde(default)]
    pub(super) weight: Option<f64>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawDestination {
    pub(super) cidr: String,
    #[serde(default)]
    pub(super) weight: Option<f64>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawWorkload {
    #[serde(default)]
    pub(super) flows: Option<u64>,
    #[serde(default)]
    pub(super) rate: Option<f64>,
    #[serde(default)]
    pub(super) arrival: Option<String>,
    pub(super) destinations: Vec<RawDestination>,
    #[serde(default)]
    pub(super) protocols: Option<BTreeMap<String, f64>>,
    #[serde(default)]
    pub(super) flow_duration: Option<RawDist>,
    #[serde(default)]
    pub(super) flow_size: Option<RawDist>,
}

#[derive(Deserialize, Clone)]
#[serde(deny_unknown_fields)]
pub(super) struct RawDist {
    pub(super) dist: String,
    #[serde(default)]
    pub(super) value: Option<toml::Value>,
    #[serde(default)]
    pub(super) mean: Option<toml::Value>,
    #[serde(default)]
    pub(super) median: Option<toml::Value>,
    #[serde(default)]
    pub(super) sigma: Option<f64>,
    #[serde(default)]
    pub(super) min: Option<toml::Value>,
    #[serde(default)]
    pub(super) max: Option<toml::Value>,
    #[serde(default)]
    pub(super) scale: Option<toml::Value>,
    #[serde(default)]
    pub(super) shape: Option<f64>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawFailure {
    #[serde(default)]
    pub(super) dc: Option<String>,
    #[serde(default)]
    pub(super) country: Option<String>,
    #[serde(default)]
    pub(super) region: Option<String>,
    pub(super) at: toml::Value,
    #[serde(default)]
    pub(super) until: Option<toml::Value>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawDns {
    #[serde(default)]
    pub(super) every: Option<toml::Value>,
    #[serde(default)]
    pub(super) from: Option<Vec<String>>,
    pub(super) targets: Vec<String>,
    #[serde(default)]
    pub(super) queries: Option<Vec<String>>,
}
