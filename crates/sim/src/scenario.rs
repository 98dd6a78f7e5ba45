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
//! scenario fails with the code the API would return (see [`crate::engine`]).
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

use crate::time::SimTime;
use inregion_model::{CountryCode, GeoPoint, Iata, RegionKey};
use ipnet::IpNet;
use serde::Deserialize;
use std::collections::BTreeMap;
use std::net::IpAddr;

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
// Raw file (serde)
// ---------------------------------------------------------------------------------------

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawScenario {
    name: String,
    #[serde(default)]
    description: String,
    #[serde(default = "default_seed")]
    seed: u64,
    duration: toml::Value,
    #[serde(default)]
    bucket: Option<toml::Value>,
    #[serde(default)]
    topology: RawTopology,
    #[serde(default)]
    propagation: RawPropagation,
    #[serde(default)]
    accounts: Vec<RawAccount>,
    #[serde(default)]
    prefixes: Vec<RawPrefix>,
    #[serde(default)]
    timeline: Vec<RawOp>,
    #[serde(default)]
    clients: Vec<RawClient>,
    workload: RawWorkload,
    #[serde(default)]
    failures: Vec<RawFailure>,
    #[serde(default)]
    dns: Option<RawDns>,
}

fn default_seed() -> u64 {
    1
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawTopology {
    #[serde(default)]
    exclude: Vec<String>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawPropagation {
    #[serde(default)]
    mode: Option<String>,
    #[serde(default)]
    delay: Option<RawDist>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawAccount {
    id: String,
    #[serde(default)]
    entitlements: Option<Vec<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPrefix {
    id: String,
    cidr: String,
    #[serde(default)]
    account: Option<String>,
    #[serde(default = "yes")]
    approved: bool,
}

fn yes() -> bool {
    true
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawOp {
    at: toml::Value,
    op: String,
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    prefix: Option<String>,
    #[serde(default)]
    cidr: Option<String>,
    #[serde(default)]
    region: Option<String>,
    #[serde(default)]
    binding: Option<String>,
    #[serde(default)]
    map: Option<String>,
    #[serde(default)]
    ips: Option<Vec<String>>,
    #[serde(default)]
    ip: Option<String>,
    #[serde(default)]
    account: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawClient {
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    country: Option<String>,
    #[serde(default)]
    city: Option<String>,
    #[serde(default)]
    iata: Option<String>,
    #[serde(default)]
    at: Option<String>,
    #[serde(default)]
    weight: Option<f64>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawDestination {
    cidr: String,
    #[serde(default)]
    weight: Option<f64>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawWorkload {
    #[serde(default)]
    flows: Option<u64>,
    #[serde(default)]
    rate: Option<f64>,
    #[serde(default)]
    arrival: Option<String>,
    destinations: Vec<RawDestination>,
    #[serde(default)]
    protocols: Option<BTreeMap<String, f64>>,
    #[serde(default)]
    flow_duration: Option<RawDist>,
    #[serde(default)]
    flow_size: Option<RawDist>,
}

#[derive(Deserialize, Clone)]
#[serde(deny_unknown_fields)]
struct RawDist {
    dist: String,
    #[serde(default)]
    value: Option<toml::Value>,
    #[serde(default)]
    mean: Option<toml::Value>,
    #[serde(default)]
    median: Option<toml::Value>,
    #[serde(default)]
    sigma: Option<f64>,
    #[serde(default)]
    min: Option<toml::Value>,
    #[serde(default)]
    max: Option<toml::Value>,
    #[serde(default)]
    scale: Option<toml::Value>,
    #[serde(default)]
    shape: Option<f64>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFailure {
    #[serde(default)]
    dc: Option<String>,
    #[serde(default)]
    country: Option<String>,
    #[serde(default)]
    region: Option<String>,
    at: toml::Value,
    #[serde(default)]
    until: Option<toml::Value>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawDns {
    #[serde(default)]
    every: Option<toml::Value>,
    #[serde(default)]
    from: Option<Vec<String>>,
    targets: Vec<String>,
    #[serde(default)]
    queries: Option<Vec<String>>,
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

// ---------------------------------------------------------------------------------------
// Validation
// ---------------------------------------------------------------------------------------

struct Ctx<'a> {
    file: &'a str,
}

impl Ctx<'_> {
    fn err(&self, key: impl Into<String>, message: impl Into<String>) -> ScenarioError {
        ScenarioError::Invalid {
            file: self.file.to_owned(),
            key: key.into(),
            message: message.into(),
        }
    }

    fn time(&self, key: &str, v: &toml::Value) -> Result<SimTime, ScenarioError> {
        parse_time_value(v).map_err(|m| self.err(key, m))
    }

    fn quantity(&self, key: &str, v: &toml::Value, seconds: bool) -> Result<f64, ScenarioError> {
        let x = match v {
            toml::Value::Integer(i) => *i as f64,
            toml::Value::Float(f) => *f,
            toml::Value::String(s) if seconds => parse_duration_text(s)
                .map_err(|m| self.err(key, m))?
                .as_secs_f64(),
            other => {
                return Err(self.err(
                    key,
                    if seconds {
                        format!("expected a duration such as \"3s\", got {other}")
                    } else {
                        format!("expected a number, got {other}")
                    },
                ))
            }
        };
        if !x.is_finite() || x < 0.0 {
            return Err(self.err(key, format!("must be a finite number >= 0, got {x}")));
        }
        Ok(x)
    }

    fn dist(&self, key: &str, d: &RawDist, seconds: bool) -> Result<Dist, ScenarioError> {
        let need = |name: &str, v: &Option<toml::Value>| -> Result<f64, ScenarioError> {
            match v {
                Some(v) => self.quantity(&format!("{key}.{name}"), v, seconds),
                None => Err(self.err(
                    format!("{key}.{name}"),
                    format!("required for dist = {:?}", d.dist),
                )),
            }
        };
        let positive = |name: &str, x: f64| -> Result<f64, ScenarioError> {
            if x > 0.0 && x.is_finite() {
                Ok(x)
            } else {
                Err(self.err(
                    format!("{key}.{name}"),
                    format!("must be a finite number > 0, got {x}"),
                ))
            }
        };
        let given = [
            ("value", d.value.is_some()),
            ("min", d.min.is_some()),
            ("max", d.max.is_some()),
            ("mean", d.mean.is_some()),
            ("median", d.median.is_some()),
            ("sigma", d.sigma.is_some()),
            ("scale", d.scale.is_some()),
            ("shape", d.shape.is_some()),
        ];
        let applies: &[&str] = match d.dist.as_str() {
            "fixed" => &["value"],
            "uniform" => &["min", "max"],
            "exp" | "exponential" => &["mean"],
            "lognormal" => &["median", "sigma"],
            "pareto" => &["scale", "shape"],
            _ => &[
                "value", "min", "max", "mean", "median", "sigma", "scale", "shape",
            ],
        };
        self.only_applicable(key, "dist", &d.dist, &given, applies)?;
        Ok(match d.dist.as_str() {
            "fixed" => Dist::Fixed(need("value", &d.value)?),
            "uniform" => {
                let (a, b) = (need("min", &d.min)?, need("max", &d.max)?);
                if a > b {
                    return Err(self.err(format!("{key}.max"), "must be >= min"));
                }
                Dist::Uniform(a, b)
            }
            "exp" | "exponential" => Dist::Exp(positive("mean", need("mean", &d.mean)?)?),
            "lognormal" => {
                let m = positive("median", need("median", &d.median)?)?;
                let s = d.sigma.ok_or_else(|| {
                    self.err(format!("{key}.sigma"), "required for dist = \"lognormal\"")
                })?;
                if !(0.0..=10.0).contains(&s) {
                    return Err(self.err(format!("{key}.sigma"), "must be in 0..=10"));
                }
                Dist::LogNormal(m, s)
            }
            "pareto" => {
                let x = positive("scale", need("scale", &d.scale)?)?;
                let a = d.shape.ok_or_else(|| {
                    self.err(format!("{key}.shape"), "required for dist = \"pareto\"")
                })?;
                positive("shape", a)?;
                Dist::Pareto(x, a)
            }
            other => {
                return Err(self.err(
                    format!("{key}.dist"),
                    format!(
                        "unknown distribution {other:?}; expected fixed, uniform, exp, lognormal or pareto"
                    ),
                ))
            }
        })
    }

    /// Refuses the first parameter `given` (name, present) that `kind` (the value of its
    /// `selector` key, e.g. `dist = "fixed"`) does not take: a parameter of another kind
    /// is a typo or a leftover from an edit, not something to ignore.
    fn only_applicable(
        &self,
        key: &str,
        selector: &str,
        kind: &str,
        given: &[(&str, bool)],
        applies: &[&str],
    ) -> Result<(), ScenarioError> {
        match given
            .iter()
            .find(|(name, set)| *set && !applies.contains(name))
        {
            Some((name, _)) => Err(self.err(
                format!("{key}.{name}"),
                format!(
                    "does not apply to {selector} = {kind:?} (it takes {})",
                    applies.join(", ")
                ),
            )),
            None => Ok(()),
        }
    }

    fn place(&self, key: &str, text: &str) -> Result<(String, ClientPlace), ScenarioError> {
        parse_place(text).map_err(|m| self.err(key, m))
    }
}

/// Parses a place as the CLI and `dns.from` accept it: an IATA code (`GRU`), a country
/// code (`BR`), or `lat,lon`.
pub fn parse_place(text: &str) -> Result<(String, ClientPlace), String> {
    let t = text.trim();
    if t.contains(',') {
        let p: GeoPoint = t.parse()?;
        return Ok((t.to_owned(), ClientPlace::Point(p)));
    }
    if t.len() == 3 {
        if let Ok(i) = Iata::parse(&t.to_ascii_uppercase()) {
            return Ok((i.to_string(), ClientPlace::Iata(i)));
        }
    }
    if t.len() == 2 {
        if let Ok(c) = CountryCode::parse(&t.to_ascii_uppercase()) {
            return Ok((c.to_string(), ClientPlace::Country(c)));
        }
    }
    Err(format!(
        "{t:?} is not a place: expected an IATA code (GRU), a country code (BR) or \"lat,lon\""
    ))
}

/// Parses a time or duration value: a string such as `"90m"`, `"4h 30m"`, `"0s"`, or an
/// integer number of seconds.
fn parse_time_value(v: &toml::Value) -> Result<SimTime, String> {
    match v {
        toml::Value::String(s) => parse_duration_text(s).map(SimTime::from_duration),
        toml::Value::Integer(i) if *i >= 0 => Ok(SimTime::from_secs(*i as u64)),
        other => Err(format!(
            "expected a duration such as \"90m\" or a number of seconds, got {other}"
        )),
    }
}

/// Parses `"90m"`, `"1h 30m"`, `"0s"`, `"250ms"` (humantime syntax).
pub fn parse_duration_text(s: &str) -> Result<std::time::Duration, String> {
    humantime::parse_duration(s.trim())
        .map_err(|e| format!("{s:?} is not a duration ({e}); write e.g. \"90m\" or \"4h 30m\""))
}

impl Scenario {
    /// Parses and validates a scenario; `file` is only used in messages.
    pub fn from_toml_str(file: &str, text: &str) -> Result<Scenario, ScenarioError> {
        let raw: RawScenario = toml::from_str(text).map_err(|e| ScenarioError::Syntax {
            file: file.to_owned(),
            message: e.to_string().trim_end().to_owned(),
        })?;
        let cx = Ctx { file };

        if raw.name.trim().is_empty() {
            return Err(cx.err("name", "must not be empty"));
        }
        let duration = cx.time("duration", &raw.duration)?;
        if duration == SimTime::ZERO {
            return Err(cx.err("duration", "must be > 0"));
        }
        if duration > MAX_DURATION {
            return Err(cx.err(
                "duration",
                format!("must be at most 365 days (8760h), got {}", span(duration)),
            ));
        }
        let bucket = match &raw.bucket {
            Some(v) => cx.time("bucket", v)?,
            None => default_bucket(duration),
        };
        if bucket == SimTime::ZERO {
            return Err(cx.err("bucket", "must be > 0"));
        }
        if duration.as_nanos() / bucket.as_nanos() > MAX_BUCKETS {
            return Err(cx.err(
                "bucket",
                "too small: at most 10000 buckets per run (memory is per bucket)",
            ));
        }

        let mut exclude = Vec::new();
        for (i, code) in raw.topology.exclude.iter().enumerate() {
            exclude.push(
                Iata::parse(code)
                    .map_err(|e| cx.err(format!("topology.exclude[{i}]"), e.to_string()))?,
            );
        }

        let mode = match raw.propagation.mode.as_deref() {
            None | Some("default") => PropagationMode::Default,
            Some("strict") => PropagationMode::Strict,
            Some(other) => {
                return Err(cx.err(
                    "propagation.mode",
                    format!("unknown mode {other:?}; expected \"default\" or \"strict\""),
                ))
            }
        };
        let delay = match &raw.propagation.delay {
            Some(d) => cx.dist("propagation.delay", d, true)?,
            None => Dist::Uniform(4.0 * 3600.0, 6.0 * 3600.0),
        };

        let mut accounts = Vec::new();
        for (i, a) in raw.accounts.iter().enumerate() {
            let key = format!("accounts[{i}]");
            if a.id.trim().is_empty() {
                return Err(cx.err(format!("{key}.id"), "must not be empty"));
            }
            if accounts.iter().any(|x: &Account| x.id == a.id) {
                return Err(cx.err(format!("{key}.id"), format!("duplicate account {:?}", a.id)));
            }
            let (mut rs, mut byoip) = (true, true);
            if let Some(list) = &a.entitlements {
                rs = false;
                byoip = false;
                for (j, e) in list.iter().enumerate() {
                    match e.as_str() {
                        "regional_services" => rs = true,
                        "regional_services_byoip" => byoip = true,
                        other => {
                            return Err(cx.err(
                                format!("{key}.entitlements[{j}]"),
                                format!("unknown entitlement {other:?}; expected regional_services or regional_services_byoip"),
                            ))
                        }
                    }
                }
            }
            accounts.push(Account {
                id: a.id.clone(),
                regional_services: rs,
                regional_services_byoip: byoip,
            });
        }
        if accounts.is_empty() {
            accounts.push(Account {
                id: "acct".into(),
                regional_services: true,
                regional_services_byoip: true,
            });
        }
        let account_index = |key: &str, id: &Option<String>| -> Result<usize, ScenarioError> {
            match id {
                None => Ok(0),
                Some(id) => accounts
                    .iter()
                    .position(|a| &a.id == id)
                    .ok_or_else(|| cx.err(key, format!("unknown account {id:?}"))),
            }
        };

        let mut prefixes: Vec<Prefix> = Vec::new();
        for (i, p) in raw.prefixes.iter().enumerate() {
            let key = format!("prefixes[{i}]");
            if prefixes.iter().any(|x| x.id == p.id) {
                return Err(cx.err(format!("{key}.id"), format!("duplicate prefix {:?}", p.id)));
            }
            let cidr: IpNet = p.cidr.trim().parse().map_err(|_| {
                cx.err(format!("{key}.cidr"), format!("{:?} is not a CIDR", p.cidr))
            })?;
            prefixes.push(Prefix {
                id: p.id.clone(),
                cidr,
                account: account_index(&format!("{key}.account"), &p.account)?,
                approved: p.approved,
            });
        }

        let mut timeline = Vec::new();
        for (i, o) in raw.timeline.iter().enumerate() {
            let key = format!("timeline[{i}]");
            let at = cx.time(&format!("{key}.at"), &o.at)?;
            if at > duration {
                return Err(cx.err(format!("{key}.at"), "is after the scenario's duration"));
            }
            let need = |name: &str, v: &Option<String>| -> Result<String, ScenarioError> {
                v.clone().ok_or_else(|| {
                    cx.err(
                        format!("{key}.{name}"),
                        format!("required for op = {:?}", o.op),
                    )
                })
            };
            let applies: &[&str] = match o.op.as_str() {
                "create_binding" => &["name", "prefix", "cidr", "region"],
                "patch_binding" => &["binding", "region"],
                "delete_binding" => &["binding"],
                "create_address_map" => &["map", "account", "ips"],
                "add_address_map_ip" | "remove_address_map_ip" => &["map", "ip"],
                _ => &[
                    "name", "prefix", "cidr", "region", "binding", "map", "ips", "ip", "account",
                ],
            };
            let given = [
                ("name", o.name.is_some()),
                ("prefix", o.prefix.is_some()),
                ("cidr", o.cidr.is_some()),
                ("region", o.region.is_some()),
                ("binding", o.binding.is_some()),
                ("map", o.map.is_some()),
                ("ips", o.ips.is_some()),
                ("ip", o.ip.is_some()),
                ("account", o.account.is_some()),
            ];
            cx.only_applicable(&key, "op", &o.op, &given, applies)?;
            let op = match o.op.as_str() {
                "create_binding" => {
                    let pname = need("prefix", &o.prefix)?;
                    let prefix = prefixes.iter().position(|p| p.id == pname).ok_or_else(|| {
                        cx.err(format!("{key}.prefix"), format!("unknown prefix {pname:?}"))
                    })?;
                    Op::CreateBinding {
                        name: o.name.clone().unwrap_or_else(|| format!("#{i}")),
                        prefix,
                        cidr: need("cidr", &o.cidr)?,
                        region: need("region", &o.region)?,
                    }
                }
                "patch_binding" => Op::PatchBinding {
                    binding: need("binding", &o.binding)?,
                    region: need("region", &o.region)?,
                },
                "delete_binding" => Op::DeleteBinding {
                    binding: need("binding", &o.binding)?,
                },
                "create_address_map" => Op::CreateAddressMap {
                    map: need("map", &o.map)?,
                    account: account_index(&format!("{key}.account"), &o.account)?,
                    ips: o.ips.clone().unwrap_or_default(),
                },
                "add_address_map_ip" => Op::AddAddressMapIp {
                    map: need("map", &o.map)?,
                    ip: need("ip", &o.ip)?,
                },
                "remove_address_map_ip" => Op::RemoveAddressMapIp {
                    map: need("map", &o.map)?,
                    ip: need("ip", &o.ip)?,
                },
                other => {
                    return Err(cx.err(
                        format!("{key}.op"),
                        format!("unknown operation {other:?}; expected create_binding, patch_binding, delete_binding, create_address_map, add_address_map_ip or remove_address_map_ip"),
                    ))
                }
            };
            timeline.push(TimelineOp { index: i, at, op });
        }
        // Stable: equal times keep file order.
        timeline.sort_by_key(|o| o.at);
        // Later operations refer to bindings and maps by name: two live ones with one
        // name would make those references ambiguous (a name is free again once its
        // binding is deleted).
        let mut live_bindings: std::collections::HashMap<&str, usize> = Default::default();
        let mut maps: std::collections::HashMap<&str, usize> = Default::default();
        for t in &timeline {
            let (names, name, field, what) = match &t.op {
                Op::CreateBinding { name, .. } => (&mut live_bindings, name, "name", "binding"),
                Op::CreateAddressMap { map, .. } => (&mut maps, map, "map", "address map"),
                Op::DeleteBinding { binding } => {
                    live_bindings.remove(binding.as_str());
                    continue;
                }
                _ => continue,
            };
            if let Some(first) = names.insert(name, t.index) {
                return Err(cx.err(
                    format!("timeline[{}].{field}", t.index),
                    format!("{what} name {name:?} is already used by timeline[{first}]"),
                ));
            }
        }

        let mut clients = Vec::new();
        for (i, c) in raw.clients.iter().enumerate() {
            let key = format!("clients[{i}]");
            let given = [&c.country, &c.city, &c.iata, &c.at]
                .iter()
                .filter(|v| v.is_some())
                .count();
            if given != 1 {
                return Err(cx.err(&key, "give exactly one of country, city, iata or at"));
            }
            let (name, place) = if let Some(cc) = &c.country {
                let code = CountryCode::parse(&cc.to_ascii_uppercase())
                    .map_err(|e| cx.err(format!("{key}.country"), e.to_string()))?;
                (code.to_string(), ClientPlace::Country(code))
            } else if let Some(city) = &c.city {
                (city.clone(), ClientPlace::City(city.clone()))
            } else if let Some(code) = &c.iata {
                let code = Iata::parse(&code.to_ascii_uppercase())
                    .map_err(|e| cx.err(format!("{key}.iata"), e.to_string()))?;
                (code.to_string(), ClientPlace::Iata(code))
            } else {
                let text = c.at.as_deref().unwrap_or_default();
                let p: GeoPoint = text
                    .parse()
                    .map_err(|m: String| cx.err(format!("{key}.at"), m))?;
                (text.to_owned(), ClientPlace::Point(p))
            };
            let weight = c.weight.unwrap_or(1.0);
            if !(weight > 0.0 && weight.is_finite()) {
                return Err(cx.err(
                    format!("{key}.weight"),
                    format!("must be a finite number > 0, got {weight}"),
                ));
            }
            clients.push(ClientSpec {
                name: c.name.clone().unwrap_or(name),
                place,
                weight,
                key,
            });
        }
        if clients.is_empty() {
            return Err(cx.err("clients", "give at least one [[clients]] population"));
        }

        let w = &raw.workload;
        let flows = match (w.flows, w.rate) {
            (Some(_), Some(_)) => {
                return Err(cx.err("workload", "give either flows or rate, not both"))
            }
            (Some(n), None) => n,
            (None, Some(r)) => {
                if !(r > 0.0 && r.is_finite()) {
                    return Err(cx.err(
                        "workload.rate",
                        format!("must be a finite number > 0, got {r}"),
                    ));
                }
                (r * duration.as_secs_f64()).round() as u64
            }
            (None, None) => return Err(cx.err("workload", "give flows or rate")),
        };
        if flows > MAX_FLOWS {
            return Err(cx.err(
                if w.flows.is_some() {
                    "workload.flows"
                } else {
                    "workload.rate"
                },
                format!("at most 10^10 flows per run, got {flows}"),
            ));
        }
        let arrival = match w.arrival.as_deref() {
            None | Some("poisson") => Arrival::Poisson,
            Some("uniform") => Arrival::Uniform,
            Some(other) => {
                return Err(cx.err(
                    "workload.arrival",
                    format!(
                        "unknown arrival process {other:?}; expected \"poisson\" or \"uniform\""
                    ),
                ))
            }
        };
        let mut destinations = Vec::new();
        for (i, d) in w.destinations.iter().enumerate() {
            let key = format!("workload.destinations[{i}]");
            let net: IpNet = d.cidr.trim().parse().map_err(|_| {
                cx.err(format!("{key}.cidr"), format!("{:?} is not a CIDR", d.cidr))
            })?;
            let weight = d.weight.unwrap_or(1.0);
            if !(weight > 0.0 && weight.is_finite()) {
                return Err(cx.err(
                    format!("{key}.weight"),
                    format!("must be a finite number > 0, got {weight}"),
                ));
            }
            if net.trunc() != net {
                return Err(cx.err(
                    format!("{key}.cidr"),
                    format!(
                        "{:?} has host bits set (did you mean {}?)",
                        d.cidr,
                        net.trunc()
                    ),
                ));
            }
            destinations.push((net, weight));
        }
        if destinations.is_empty() {
            return Err(cx.err(
                "workload.destinations",
                "give at least one destination CIDR",
            ));
        }
        let mut protocols = [1.0, 0.0, 0.0];
        if let Some(map) = &w.protocols {
            protocols = [0.0; 3];
            for (k, v) in map {
                let slot = match k.as_str() {
                    "tcp" => 0,
                    "udp" => 1,
                    "dns" => 2,
                    other => {
                        return Err(cx.err(
                            format!("workload.protocols.{other}"),
                            "unknown protocol; expected tcp, udp or dns",
                        ))
                    }
                };
                if !(*v >= 0.0 && v.is_finite()) {
                    return Err(cx.err(
                        format!("workload.protocols.{k}"),
                        format!("must be >= 0, got {v}"),
                    ));
                }
                protocols[slot] = *v;
            }
            if protocols.iter().sum::<f64>() <= 0.0 {
                return Err(cx.err("workload.protocols", "at least one weight must be > 0"));
            }
        }
        let flow_duration = match &w.flow_duration {
            Some(d) => cx.dist("workload.flow_duration", d, true)?,
            None => Dist::LogNormal(2.0, 1.0),
        };
        let flow_size = match &w.flow_size {
            Some(d) => cx.dist("workload.flow_size", d, false)?,
            None => Dist::LogNormal(20_000.0, 1.5),
        };

        let mut failures = Vec::new();
        for (i, f) in raw.failures.iter().enumerate() {
            let key = format!("failures[{i}]");
            let given = [&f.dc, &f.country, &f.region]
                .iter()
                .filter(|v| v.is_some())
                .count();
            if given != 1 {
                return Err(cx.err(&key, "give exactly one of dc, country or region"));
            }
            let target = if let Some(dc) = &f.dc {
                FailureTarget::DataCenter(
                    Iata::parse(&dc.to_ascii_uppercase())
                        .map_err(|e| cx.err(format!("{key}.dc"), e.to_string()))?,
                )
            } else if let Some(c) = &f.country {
                FailureTarget::Country(
                    CountryCode::parse(&c.to_ascii_uppercase())
                        .map_err(|e| cx.err(format!("{key}.country"), e.to_string()))?,
                )
            } else {
                let r = f.region.as_deref().unwrap_or_default();
                FailureTarget::Region(
                    RegionKey::parse(r)
                        .map_err(|e| cx.err(format!("{key}.region"), e.to_string()))?,
                )
            };
            let at = cx.time(&format!("{key}.at"), &f.at)?;
            if at > duration {
                return Err(cx.err(format!("{key}.at"), "is after the scenario's duration"));
            }
            let until = match &f.until {
                Some(v) => {
                    let u = cx.time(&format!("{key}.until"), v)?;
                    if u <= at {
                        return Err(cx.err(format!("{key}.until"), "must be after at"));
                    }
                    Some(u)
                }
                None => None,
            };
            failures.push(Failure {
                target,
                at,
                until,
                key,
            });
        }

        let dns = match &raw.dns {
            None => None,
            Some(d) => {
                let every = match &d.every {
                    Some(v) => cx.time("dns.every", v)?,
                    None => SimTime::from_secs(1800),
                };
                if every < SimTime::from_secs(1) {
                    return Err(cx.err("dns.every", "must be at least 1s"));
                }
                let mut from = Vec::new();
                for (i, t) in d.from.iter().flatten().enumerate() {
                    let key = format!("dns.from[{i}]");
                    let (name, place) = cx.place(&key, t)?;
                    from.push(ClientSpec {
                        name,
                        place,
                        weight: 1.0,
                        key,
                    });
                }
                if d.from.as_ref().is_some_and(Vec::is_empty) {
                    return Err(cx.err(
                        "dns.from",
                        "give at least one place, or leave it out to probe from the clients",
                    ));
                }
                if d.queries.as_ref().is_some_and(Vec::is_empty) {
                    return Err(cx.err(
                        "dns.queries",
                        "give at least one query, or leave it out for chaos",
                    ));
                }
                let mut targets = Vec::new();
                for (i, t) in d.targets.iter().enumerate() {
                    targets.push(t.trim().parse::<IpAddr>().map_err(|_| {
                        cx.err(
                            format!("dns.targets[{i}]"),
                            format!("{t:?} is not an IP address"),
                        )
                    })?);
                }
                if targets.is_empty() {
                    return Err(cx.err("dns.targets", "give at least one address"));
                }
                let mut queries = Vec::new();
                for (i, q) in d
                    .queries
                    .clone()
                    .unwrap_or_else(|| vec!["chaos".into()])
                    .iter()
                    .enumerate()
                {
                    queries.push(match q.to_ascii_lowercase().as_str() {
                        "chaos" => DnsQueryKind::Chaos,
                        "a" => DnsQueryKind::A,
                        "aaaa" => DnsQueryKind::Aaaa,
                        other => {
                            return Err(cx.err(
                                format!("dns.queries[{i}]"),
                                format!("unknown query {other:?}; expected chaos, a or aaaa"),
                            ))
                        }
                    });
                }
                Some(DnsProbes {
                    every,
                    from,
                    targets,
                    queries,
                })
            }
        };

        Ok(Scenario {
            file: file.to_owned(),
            name: raw.name,
            description: raw.description,
            seed: raw.seed,
            duration,
            bucket,
            exclude,
            propagation: Propagation { mode, delay },
            accounts,
            prefixes,
            timeline,
            clients,
            workload: Workload {
                flows,
                arrival,
                destinations,
                protocols,
                flow_duration,
                flow_size,
            },
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
pub const QUICKSTART_TOML: &str = include_str!("../../../scenarios/quickstart.toml");

#[cfg(test)]
mod tests {
    use super::*;

    const MINIMAL: &str = r#"
name = "t"
duration = "1h"
[[prefixes]]
id = "p"
cidr = "203.0.113.0/24"
[[clients]]
country = "DE"
[workload]
flows = 10
destinations = [{ cidr = "203.0.113.0/24" }]
"#;

    #[test]
    fn keys_of_another_distribution_or_op_and_ambiguous_names_are_errors() {
        let with = |extra: &str| Scenario::from_toml_str("t", &format!("{MINIMAL}{extra}"));
        let e = with("flow_size = { dist = \"fixed\", value = 100, min = 5 }\n").unwrap_err();
        assert!(
            e.to_string()
                .contains("workload.flow_size.min: does not apply"),
            "{e}"
        );
        with("flow_size = { dist = \"fixed\", value = 100 }\n").unwrap();
        let op = |at: &str, body: &str| format!("[[timeline]]\nat = \"{at}\"\n{body}\n");
        let create = |at: &str| {
            op(
                at,
                "op = \"create_binding\"\nname = \"w\"\nprefix = \"p\"\ncidr = \"203.0.113.0/25\"\nregion = \"eu\"",
            )
        };
        let delete = |at: &str| op(at, "op = \"delete_binding\"\nbinding = \"w\"");
        let e = with(&op(
            "1m",
            "op = \"delete_binding\"\nbinding = \"w\"\nregion = \"us\"",
        ))
        .unwrap_err();
        assert!(
            e.to_string().contains("timeline[0].region: does not apply"),
            "{e}"
        );
        let e = with(&format!("{}{}", create("1m"), create("2m"))).unwrap_err();
        assert!(e.to_string().contains("already used by timeline[0]"), "{e}");
        // Deleted, the name is free again (timeline order is by time, not file order).
        with(&format!("{}{}{}", create("1m"), create("3m"), delete("2m"))).unwrap();
    }

    #[test]
    fn empty_lists_host_bits_and_empty_ids_are_errors() {
        let bad = [
            (
                MINIMAL.replace("203.0.113.0/24\" }]", "203.0.113.5/24\" }]"),
                "host bits set (did you mean 203.0.113.0/24?)",
            ),
            (
                format!("{MINIMAL}[dns]\ntargets = [\"203.0.113.7\"]\nfrom = []\n"),
                "dns.from: give at least one place",
            ),
            (
                format!("{MINIMAL}[dns]\ntargets = [\"203.0.113.7\"]\nqueries = []\n"),
                "dns.queries: give at least one query",
            ),
            (
                format!("{MINIMAL}[[accounts]]\nid = \"\"\n"),
                "accounts[0].id: must not be empty",
            ),
            (
                MINIMAL.replace("flows = 10", "rate = inf"),
                "must be a finite number > 0, got inf",
            ),
        ];
        for (text, says) in bad {
            let e = Scenario::from_toml_str("t", &text).unwrap_err().to_string();
            assert!(e.contains(says), "{e}");
        }
    }

    #[test]
    fn duration_override_keeps_the_rate_and_the_file_limits() {
        let mut s = Scenario::from_toml_str("t", MINIMAL).unwrap();
        // No `bucket` in the file: it follows the duration (a 48th of it).
        s.set_duration("--duration", SimTime::from_secs(48 * 3600))
            .unwrap();
        assert_eq!(s.bucket, SimTime::from_secs(3600));
        assert_eq!(s.workload.flows, 480, "10 flows per hour, kept");
        assert!(s.set_duration("--duration", SimTime::ZERO).is_err());
        let e = s
            .set_duration("--duration", SimTime::from_secs(400 * 86_400))
            .unwrap_err();
        assert!(e.to_string().contains("--duration"), "{e}");
        assert_eq!(
            s.duration,
            SimTime::from_secs(48 * 3600),
            "unchanged on error"
        );
        // A `bucket` from the file is kept, and bounds the duration.
        let text = MINIMAL.replace("duration = \"1h\"", "duration = \"1h\"\nbucket = \"1s\"");
        let mut s = Scenario::from_toml_str("t", &text).unwrap();
        s.set_duration("--duration", SimTime::from_secs(2 * 3600))
            .unwrap();
        assert_eq!(s.bucket, SimTime::from_secs(1));
        let e = s
            .set_duration("--duration", SimTime::from_secs(3 * 3600))
            .unwrap_err();
        assert!(e.to_string().contains("larger `bucket`"), "{e}");
        assert!(s.set_flows("--flows", MAX_FLOWS + 1).is_err());
        s.set_flows("--flows", 7).unwrap();
        assert_eq!(s.workload.flows, 7);
    }

    #[test]
    fn minimal_scenario_gets_defaults() {
        let s = Scenario::from_toml_str("t.toml", MINIMAL).unwrap();
        assert_eq!(s.seed, 1);
        assert_eq!(s.duration, SimTime::from_secs(3600));
        assert_eq!(s.bucket, SimTime::from_secs(75));
        assert_eq!(s.accounts.len(), 1);
        assert_eq!(s.propagation.mode, PropagationMode::Default);
        assert_eq!(s.workload.protocols, [1.0, 0.0, 0.0]);
    }

    #[test]
    fn unknown_keys_are_rejected_with_their_name() {
        let e = Scenario::from_toml_str("t.toml", &format!("sead = 3\n{MINIMAL}")).unwrap_err();
        assert!(e.to_string().contains("sead"), "{e}");
    }

    #[test]
    fn bad_values_name_their_key() {
        let cases = [
            ("duration = \"1h\"", "duration = \"soon\"", "duration"),
            (
                "flows = 10",
                "flows = 10\nprotocols = { tcp = -1 }",
                "workload.protocols.tcp",
            ),
            (
                "country = \"DE\"",
                "country = \"DE\"\nweight = 0",
                "clients[0].weight",
            ),
            (
                "country = \"DE\"",
                "city = \"X\"\ncountry = \"DE\"",
                "clients[0]",
            ),
            (
                "flows = 10",
                "flows = 10\nflow_duration = { dist = \"lognormal\", median = \"2s\" }",
                "workload.flow_duration.sigma",
            ),
        ];
        for (from, to, key) in cases {
            let text = MINIMAL.replace(from, to);
            let e = Scenario::from_toml_str("t.toml", &text).unwrap_err();
            match &e {
                ScenarioError::Invalid { key: k, .. } => assert_eq!(k, key, "{e}"),
                other => panic!("{other}"),
            }
        }
    }

    #[test]
    fn timeline_is_sorted_stably_and_checks_references() {
        let text = format!(
            "{MINIMAL}\n[[timeline]]\nat = \"2h\"\nop = \"delete_binding\"\nbinding = \"a\"\n[[timeline]]\nat = \"0s\"\nop = \"create_binding\"\nprefix = \"p\"\ncidr = \"203.0.113.0/25\"\nregion = \"eu\"\nname = \"a\"\n"
        );
        // 2h is after the 1h duration.
        let e = Scenario::from_toml_str("t.toml", &text).unwrap_err();
        assert!(e.to_string().contains("timeline[0].at"), "{e}");
        let s = Scenario::from_toml_str("t.toml", &text.replace("1h", "3h")).unwrap();
        assert_eq!(s.timeline[0].index, 1);
        assert_eq!(s.timeline[1].index, 0);
        let bad = text.replace("prefix = \"p\"", "prefix = \"q\"");
        let e = Scenario::from_toml_str("t.toml", &bad.replace("1h", "3h")).unwrap_err();
        assert!(e.to_string().contains("timeline[1].prefix"), "{e}");
    }

    #[test]
    fn places_parse() {
        assert!(matches!(
            parse_place("gru").unwrap().1,
            ClientPlace::Iata(_)
        ));
        assert!(matches!(
            parse_place("BR").unwrap().1,
            ClientPlace::Country(_)
        ));
        assert!(matches!(
            parse_place("-23.5,-46.6").unwrap().1,
            ClientPlace::Point(_)
        ));
        assert!(parse_place("Atlantis").is_err());
    }

    #[test]
    fn shipped_scenarios_are_valid() {
        Scenario::quickstart();
        for f in [
            "jp-fail-closed.toml",
            "ipv6-nested.toml",
            "strict-reset.toml",
            "scale-10m.toml",
        ] {
            let path = format!("{}/../../scenarios/{f}", env!("CARGO_MANIFEST_DIR"));
            Scenario::from_path(std::path::Path::new(&path)).unwrap();
        }
    }
}
