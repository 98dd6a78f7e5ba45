//! Scenarios: the TOML file format, and its validation into a [`Scenario`].
//!
//! A scenario file is parsed in two steps. `serde` reads it into raw tables that reject
//! unknown keys (so a typo such as `sead = 1` is an error, not a silently ignored line);
//! then [`Scenario::from_toml_str`] checks every value and builds typed values. Every
//! error names the offending key as a path, for example
//! `scenario.toml: workload.protocols.tcp: must be >= 0, got -1`.
//!
//! Binding operations are *not* checked here beyond their syntax: they go through the
//! control plane's rules when the engine replays the timeline, so that an invalid
//! scenario fails with the code the API would return (see [`crate::SimError`]).
//!
//! The format, with every key (see `scenarios/*.toml` for complete examples):
//!
//! ```toml
//! name = "quickstart"
//! description = "free text"
//! seed = 42                     # one seed; every component draws from its own stream
//! duration = "12h"              # simulated time
//! bucket = "15m"                # metrics time bucket (default: duration / 48)
//!
//! [topology]                    # default: the real data centers and managed regions
//! exclude = ["KIV"]             # data centers left out
//!
//! [propagation]
//! mode = "default"              # or "strict": flows in use at a swap get a TCP reset
//! delay = { dist = "uniform", min = "4h", max = "6h" }   # per data center
//!
//! [[accounts]]                  # default: one account "acct" with both entitlements
//! id = "acct"
//! entitlements = ["regional_services", "regional_services_byoip"]
//!
//! [[prefixes]]
//! id = "byoip-v4"
//! cidr = "203.0.113.0/24"
//! account = "acct"              # default: the first account
//!
//! [[timeline]]
//! at = "0s"
//! op = "create_binding"         # create_binding | patch_binding | delete_binding |
//! name = "web"                  # create_address_map | add_address_map_ip |
//! prefix = "byoip-v4"           # remove_address_map_ip
//! cidr = "203.0.113.0/25"
//! region = "eu"
//!
//! [[clients]]                   # one of country / city / iata / at; weight default 1
//! country = "BR"
//! weight = 2.0
//!
//! [workload]
//! flows = 200000                # or rate = 5.0 (flows per simulated second)
//! arrival = "poisson"           # or "uniform"
//! destinations = [{ cidr = "203.0.113.0/24", weight = 1.0 }]
//! protocols = { tcp = 0.8, udp = 0.15, dns = 0.05 }
//! flow_duration = { dist = "lognormal", median = "3s", sigma = 1.2 }
//! flow_size = { dist = "lognormal", median = 20000, sigma = 1.5 }   # bytes
//!
//! [[failures]]                  # one of dc / country / region
//! dc = "FRA"
//! at = "3h"
//! until = "5h"                  # optional recovery
//!
//! [dns]                         # optional probe workload
//! every = "30m"
//! from = ["GRU", "US", "35.68,139.69"]
//! targets = ["203.0.113.7"]
//! queries = ["chaos", "a"]      # chaos (TXT id.server, class CH) | a | aaaa
//! ```

mod accounts;
mod basics;
mod clients;
mod dns;
mod failures;
mod raw;
#[cfg(test)]
mod tests;
mod timeline;
mod values;
mod workload;

pub use values::{parse_duration_text, parse_place};

use crate::time::SimTime;
use inregion_model::{CountryCode, GeoPoint, Iata, RegionKey};
use ipnet::IpNet;
use raw::RawScenario;
use std::net::IpAddr;
use values::Validator;

/// Why a scenario was refused: the key path and what is wrong with it.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ScenarioError {
    /// The text is not valid TOML, or a key is unknown or has the wrong type.
    #[error("{file}: {message}")]
    Syntax {
        /// The file name, as given.
        file: String,
        /// The TOML parser's message (it names the line, column and key).
        message: String,
    },
    /// A value is out of range or inconsistent.
    #[error("{file}: {key}: {message}")]
    Invalid {
        /// The file name, as given.
        file: String,
        /// The offending key, as a path (`timeline[2].cidr`).
        key: String,
        /// What is wrong.
        message: String,
    },
}

// ---------------------------------------------------------------------------------------
// Validated scenario
// ---------------------------------------------------------------------------------------

/// A validated scenario: every value typed and in range.
#[derive(Debug, Clone, PartialEq)]
pub struct Scenario {
    /// The file name it came from (for error messages), or `<inline>`.
    pub file: String,
    /// Short name (`quickstart`).
    pub name: String,
    /// Free text shown in the summary.
    pub description: String,
    /// The seed of every random stream.
    pub seed: u64,
    /// Simulated duration.
    pub duration: SimTime,
    /// Width of a metrics time bucket.
    pub bucket: SimTime,
    /// Data centers left out of the topology.
    pub exclude: Vec<Iata>,
    /// Binding propagation.
    pub propagation: Propagation,
    /// Accounts (at least one).
    pub accounts: Vec<Account>,
    /// BYOIP prefixes.
    pub prefixes: Vec<Prefix>,
    /// Control-plane operations, sorted by time (stable: file order for equal times).
    pub timeline: Vec<TimelineOp>,
    /// Client populations (at least one).
    pub clients: Vec<ClientSpec>,
    /// The flow workload.
    pub workload: Workload,
    /// Data-center failures.
    pub failures: Vec<Failure>,
    /// The DNS probe workload, if any.
    pub dns: Option<DnsProbes>,
    /// Whether the file set `bucket` (otherwise it follows the duration, see
    /// [`Scenario::set_duration`]).
    bucket_given: bool,
}

/// Longest simulated run.
pub const MAX_DURATION: SimTime = SimTime::from_secs(365 * 86_400);
/// Most flows in one run.
pub const MAX_FLOWS: u64 = 10_000_000_000;
/// Most metric buckets in one run (memory is per bucket).
pub const MAX_BUCKETS: u64 = 10_000;

/// A duration for messages, in the unit the scenario format uses: `90m`, `8760h`, `2.5s`.
fn span(t: SimTime) -> String {
    let ns = t.as_nanos();
    match ns {
        _ if ns.is_multiple_of(3_600_000_000_000) => format!("{}h", ns / 3_600_000_000_000),
        _ if ns.is_multiple_of(60_000_000_000) => format!("{}m", ns / 60_000_000_000),
        _ => format!("{}s", t.as_secs_f64()),
    }
}

/// The bucket when the file sets none: a 48th of the run, at least a second.
pub fn default_bucket(duration: SimTime) -> SimTime {
    SimTime::from_nanos((duration.as_nanos() / 48).max(1_000_000_000))
}

/// How binding changes reach the data centers.
#[derive(Debug, Clone, PartialEq)]
pub struct Propagation {
    /// What happens to flows in use when a data center swaps its table.
    pub mode: PropagationMode,
    /// Per-data-center delay between a control-plane change and its arrival.
    pub delay: Dist,
}

/// What a data center does to existing flows when a new table arrives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PropagationMode {
    /// Existing traffic keeps being served with its first decision (the seed page).
    Default,
    /// Flows in use whose decision changes get a TCP reset (the revised page).
    Strict,
}

impl PropagationMode {
    /// The mode's name in scenario files and reports.
    pub fn as_str(self) -> &'static str {
        match self {
            PropagationMode::Default => "default",
            PropagationMode::Strict => "strict",
        }
    }
}

/// An account and its entitlements.
#[derive(Debug, Clone, PartialEq)]
pub struct Account {
    /// The scenario's label for it.
    pub id: String,
    /// Has "Regional Services".
    pub regional_services: bool,
    /// Has "Regional Services for BYOIP".
    pub regional_services_byoip: bool,
}

/// A BYOIP prefix owned by an account.
#[derive(Debug, Clone, PartialEq)]
pub struct Prefix {
    /// The scenario's label for it.
    pub id: String,
    /// Its CIDR, as written (strictness is the control plane's business).
    pub cidr: IpNet,
    /// Index into [`Scenario::accounts`].
    pub account: usize,
    /// Whether the prefix is approved.
    pub approved: bool,
}

/// One control-plane operation of the timeline.
#[derive(Debug, Clone, PartialEq)]
pub struct TimelineOp {
    /// Its index in the file's `timeline` array (for error messages).
    pub index: usize,
    /// When it happens.
    pub at: SimTime,
    /// What it does.
    pub op: Op,
}

/// A control-plane operation.
#[derive(Debug, Clone, PartialEq)]
pub enum Op {
    /// `POST /regional_services/prefix_bindings`.
    CreateBinding {
        /// Handle later operations use; defaults to `"#<index>"`.
        name: String,
        /// Index into [`Scenario::prefixes`].
        prefix: usize,
        /// The CIDR text, passed to the control plane's strict parser as is.
        cidr: String,
        /// The region key text, passed as is.
        region: String,
    },
    /// `PATCH …/prefix_bindings/{id}` with a new `region_key`.
    PatchBinding {
        /// The binding's handle.
        binding: String,
        /// The new region key text.
        region: String,
    },
    /// `DELETE …/prefix_bindings/{id}`.
    DeleteBinding {
        /// The binding's handle.
        binding: String,
    },
    /// `POST /address_maps` with IPs.
    CreateAddressMap {
        /// The map's handle.
        map: String,
        /// Account index.
        account: usize,
        /// The IPs, as text.
        ips: Vec<String>,
    },
    /// `PUT /address_maps/{id}/ips/{ip}`.
    AddAddressMapIp {
        /// The map's handle.
        map: String,
        /// The IP, as text.
        ip: String,
    },
    /// `DELETE /address_maps/{id}/ips/{ip}`.
    RemoveAddressMapIp {
        /// The map's handle.
        map: String,
        /// The IP, as text.
        ip: String,
    },
}

impl Op {
    /// A one-line description for messages (`create binding 203.0.113.0/24 → eu`).
    pub fn describe(&self) -> String {
        match self {
            Op::CreateBinding { cidr, region, .. } => format!("create binding {cidr} → {region}"),
            Op::PatchBinding { binding, region } => format!("patch binding {binding} → {region}"),
            Op::DeleteBinding { binding } => format!("delete binding {binding}"),
            Op::CreateAddressMap { map, ips, .. } => {
                format!("create address map {map} with {}", ips.join(", "))
            }
            Op::AddAddressMapIp { map, ip } => format!("add {ip} to address map {map}"),
            Op::RemoveAddressMapIp { map, ip } => format!("remove {ip} from address map {map}"),
        }
    }
}

/// Where a client population is.
#[derive(Debug, Clone, PartialEq)]
pub enum ClientPlace {
    /// Spread evenly over the data-center cities of a country.
    Country(CountryCode),
    /// A city that has a data center (matched case- and accent-insensitively).
    City(String),
    /// The city of one data center.
    Iata(Iata),
    /// A point.
    Point(GeoPoint),
}

/// A weighted client population.
#[derive(Debug, Clone, PartialEq)]
pub struct ClientSpec {
    /// Display label (`BR`, `Sao Paulo`, ...).
    pub name: String,
    /// Where.
    pub place: ClientPlace,
    /// Relative weight (> 0).
    pub weight: f64,
    /// The file key, for errors found later (`clients[3]`).
    pub key: String,
}

/// How flow arrivals are spaced.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Arrival {
    /// Exponential inter-arrival times.
    Poisson,
    /// Evenly spaced.
    Uniform,
}

/// The flow workload.
#[derive(Debug, Clone, PartialEq)]
pub struct Workload {
    /// Number of flows to generate over the duration.
    pub flows: u64,
    /// Arrival process.
    pub arrival: Arrival,
    /// Weighted destination CIDRs; addresses are drawn uniformly inside each.
    pub destinations: Vec<(IpNet, f64)>,
    /// Weights of TCP, UDP and DNS flows.
    pub protocols: [f64; 3],
    /// Flow duration in seconds.
    pub flow_duration: Dist,
    /// Flow size in bytes.
    pub flow_size: Dist,
}

/// A distribution of non-negative values (seconds or bytes).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Dist {
    /// Always `v`.
    Fixed(f64),
    /// Uniform on `[min, max]`.
    Uniform(f64, f64),
    /// Exponential with this mean.
    Exp(f64),
    /// Log-normal with this median and sigma (of the underlying normal).
    LogNormal(f64, f64),
    /// Pareto with this scale (minimum) and shape.
    Pareto(f64, f64),
}

impl Dist {
    /// The distribution's mean (infinite for a Pareto shape <= 1).
    pub fn mean(&self) -> f64 {
        match *self {
            Dist::Fixed(v) => v,
            Dist::Uniform(a, b) => (a + b) / 2.0,
            Dist::Exp(m) => m,
            Dist::LogNormal(med, s) => med * (s * s / 2.0).exp(),
            Dist::Pareto(x, a) if a > 1.0 => a * x / (a - 1.0),
            Dist::Pareto(..) => f64::INFINITY,
        }
    }
}

/// What fails.
#[derive(Debug, Clone, PartialEq)]
pub enum FailureTarget {
    /// One data center.
    DataCenter(Iata),
    /// Every data center of a country.
    Country(CountryCode),
    /// Every member of a region.
    Region(RegionKey),
}

/// A failure (and optional recovery).
#[derive(Debug, Clone, PartialEq)]
pub struct Failure {
    /// What fails.
    pub target: FailureTarget,
    /// When.
    pub at: SimTime,
    /// When it recovers, if it does.
    pub until: Option<SimTime>,
    /// The file key (`failures[0]`).
    pub key: String,
}

/// A DNS query kind of the probe workload.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum DnsQueryKind {
    /// `TXT id.server` in class CHAOS: answered with the processing data center's code.
    Chaos,
    /// `A` over UDP.
    A,
    /// `AAAA` over UDP.
    Aaaa,
}

impl DnsQueryKind {
    /// Name in scenario files and reports.
    pub fn as_str(self) -> &'static str {
        match self {
            DnsQueryKind::Chaos => "chaos",
            DnsQueryKind::A => "a",
            DnsQueryKind::Aaaa => "aaaa",
        }
    }
}

/// The DNS probe workload: every `every`, each place sends each query to each target.
#[derive(Debug, Clone, PartialEq)]
pub struct DnsProbes {
    /// Probe interval.
    pub every: SimTime,
    /// Probe places (empty: one per client population).
    pub from: Vec<ClientSpec>,
    /// Bound addresses to query.
    pub targets: Vec<IpAddr>,
    /// Query kinds.
    pub queries: Vec<DnsQueryKind>,
}

impl Scenario {
    /// Parses and validates a scenario; `file` is only used in messages.
    ///
    /// Sections are checked in file-format order, each by its own validator (see the
    /// submodules), and the first error is returned.
    pub fn from_toml_str(file: &str, text: &str) -> Result<Scenario, ScenarioError> {
        let raw: RawScenario = toml::from_str(text).map_err(|e| ScenarioError::Syntax {
            file: file.to_owned(),
            message: e.to_string().trim_end().to_owned(),
        })?;
        let check = Validator { file };
        check.name(&raw.name)?;
        let duration = check.duration(&raw.duration)?;
        let bucket = check.bucket(raw.bucket.as_ref(), duration)?;
        let exclude = check.topology(&raw.topology)?;
        let propagation = check.propagation(&raw.propagation)?;
        let accounts = check.accounts(&raw.accounts)?;
        let prefixes = check.prefixes(&raw.prefixes, &accounts)?;
        let timeline = check.timeline(&raw.timeline, duration, &accounts, &prefixes)?;
        let clients = check.clients(&raw.clients)?;
        let workload = check.workload(&raw.workload, duration)?;
        let failures = check.failures(&raw.failures, duration)?;
        let dns = check.dns(raw.dns.as_ref())?;
        Ok(Scenario {
            file: file.to_owned(),
            name: raw.name,
            description: raw.description,
            seed: raw.seed,
            duration,
            bucket,
            exclude,
            propagation,
            accounts,
            prefixes,
            timeline,
            clients,
            workload,
            failures,
            dns,
            bucket_given: raw.bucket.is_some(),
        })
    }

    /// Changes the simulated duration (the `--duration` override), within the limits a
    /// file has: at most [`MAX_DURATION`] and [`MAX_BUCKETS`] buckets. Keeps the arrival
    /// rate (the flow count scales), drops timeline operations and failures that would
    /// start after the end, and, when the file set no `bucket`, recomputes the default
    /// one (a 48th of the new duration). `key` names the override in errors.
    pub fn set_duration(&mut self, key: &str, duration: SimTime) -> Result<(), ScenarioError> {
        let err = |message: String| ScenarioError::Invalid {
            file: self.file.clone(),
            key: key.to_owned(),
            message,
        };
        if duration == SimTime::ZERO {
            return Err(err("must be > 0".into()));
        }
        if duration > MAX_DURATION {
            return Err(err(format!(
                "must be at most 365 days (8760h), got {}",
                span(duration)
            )));
        }
        let bucket = if self.bucket_given {
            self.bucket
        } else {
            default_bucket(duration)
        };
        if duration.as_nanos() / bucket.as_nanos() > MAX_BUCKETS {
            return Err(err(format!(
                "{} is more than {MAX_BUCKETS} buckets of {} (the scenario's `bucket`); \
                 set a larger `bucket` in the scenario",
                span(duration),
                span(bucket)
            )));
        }
        let rate = self.workload.flows as f64 / self.duration.as_secs_f64();
        let flows = (rate * duration.as_secs_f64()).round() as u64;
        if flows > MAX_FLOWS {
            return Err(err(format!(
                "{} at the scenario's rate is {flows} flows, more than 10^10",
                span(duration)
            )));
        }
        self.workload.flows = flows;
        self.duration = duration;
        self.bucket = bucket;
        self.timeline.retain(|o| o.at <= duration);
        self.failures.retain(|f| f.at <= duration);
        Ok(())
    }

    /// Changes the number of flows (the `--flows` override), at most [`MAX_FLOWS`].
    pub fn set_flows(&mut self, key: &str, flows: u64) -> Result<(), ScenarioError> {
        if flows > MAX_FLOWS {
            return Err(ScenarioError::Invalid {
                file: self.file.clone(),
                key: key.to_owned(),
                message: format!("at most 10^10 flows per run, got {flows}"),
            });
        }
        self.workload.flows = flows;
        Ok(())
    }

    /// Reads and validates a scenario file.
    pub fn from_path(path: &std::path::Path) -> Result<Scenario, ScenarioError> {
        let file = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|e| ScenarioError::Syntax {
            file: file.clone(),
            message: format!("cannot read: {e}"),
        })?;
        Self::from_toml_str(&file, &text)
    }

    /// The quickstart scenario shipped with the crate (`scenarios/quickstart.toml`).
    pub fn quickstart() -> Scenario {
        Self::from_toml_str("(embedded) scenarios/quickstart.toml", QUICKSTART_TOML)
            .expect("the shipped quickstart scenario is valid (checked by tests)")
    }
}

/// The text of `scenarios/quickstart.toml`, embedded so that `inregion trace` works
/// without the file.
pub const QUICKSTART_TOML: &str = include_str!("../../../../scenarios/quickstart.toml");
