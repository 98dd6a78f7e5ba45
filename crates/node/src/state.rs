//! The node's state shared by its tasks: the [`Edge`] with its tables (behind one lock),
//! the per-version binding maps, health, and the feed's status counters.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime};

use inregion_edge::{
    region_table, DcId, DcSpec, DelayDistribution, Edge, EdgeConfig, RegionIndex, RegionSpec,
    RttModel, SimTime, Topology,
};
use inregion_feed::wire::{FeedBinding, NodeView, Snapshot};
use inregion_model::{BindingId, Iata, ReferenceData, RegionDefinition, RegionKey};
use inregion_table::Table;
use ipnet::IpNet;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use tokio::sync::{watch, Notify};

use crate::query::{decision_view, BindingView, CheckedFlow, DecisionView};
use crate::NodeError;

/// How many recent versions keep their table and binding map, to name the binding of a
/// flow pinned to an older table (older than that: the decision's `binding` is `null`).
const KEPT_VERSIONS: usize = 16;

/// One applied version: its table and which binding each prefix comes from.
struct VersionInfo {
    table: Table<RegionIndex>,
    by_cidr: Arc<HashMap<IpNet, (BindingId, RegionKey)>>,
}

/// The set of regions a topology was built with (beyond the managed ones).
#[derive(Clone, Default, PartialEq)]
struct RegionSet {
    custom: Vec<RegionDefinition>,
    /// Keys met in bindings that no definition names: members = the fail-closed data
    /// center only, so traffic bound to them is refused.
    unknown: BTreeSet<RegionKey>,
}

/// What must happen before a version can be applied.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum ApplyOutcome {
    /// Applied (or scheduled, with an apply delay).
    Applied,
    /// Nothing to do (same version, same content).
    Unchanged,
    /// Some region keys are unknown: read the snapshot (custom regions) and retry with
    /// `allow_unknown`.
    NeedRegions(Vec<String>),
}

/// Everything behind the core lock.
pub(crate) struct Core {
    pub(crate) edge: Edge,
    rng: ChaCha8Rng,
    /// The newest version handed to this edge.
    published: Option<u64>,
    versions: BTreeMap<u64, VersionInfo>,
    regions: RegionSet,
    fail_dc: DcId,
    registry_health: HashMap<Iata, bool>,
    override_health: HashMap<Iata, bool>,
    decisions: BTreeMap<&'static str, u64>,
    last_bindings: usize,
    /// The source's version 0 (nothing ever committed) was applied: the initial empty
    /// tables are that version.
    empty_source_applied: bool,
}

/// The feed's status, for `/v1/status` and `/metrics`.
#[derive(Debug, Clone, Default)]
pub(crate) struct FeedStatus {
    pub(crate) source_version: Option<u64>,
    pub(crate) changes_applied: u64,
    pub(crate) relists: u64,
    pub(crate) repairs: u64,
    pub(crate) feed_errors: u64,
    pub(crate) last_error: Option<String>,
    /// Since when feed requests fail (`None`: the last one succeeded).
    pub(crate) feed_failing_since: Option<SystemTime>,
    /// Since when heartbeats cannot reach the source (transport errors only).
    pub(crate) registry_failing_since: Option<SystemTime>,
    /// The table in force came from the cache (`--cache`), not yet from the source.
    pub(crate) cached: Option<Cached>,
}

/// The table cache applied at start, until the first version from the source.
#[derive(Debug, Clone)]
pub(crate) struct Cached {
    /// Its version, bindings and regions.
    pub(crate) snapshot: Arc<Snapshot>,
    /// When it was written: answers made from it are stale since then.
    pub(crate) written_at: SystemTime,
}

impl FeedStatus {
    /// Since when what the node answers from may be out of date, `None` when it is
    /// not: since the source became unreachable (feed or heartbeats), or since the cache
    /// the table came from was written.
    pub(crate) fn stale_since(&self) -> Option<SystemTime> {
        [
            self.feed_failing_since,
            self.registry_failing_since,
            self.cached.as_ref().map(|c| c.written_at),
        ]
        .into_iter()
        .flatten()
        .min()
    }
}

/// Shared by the HTTP handlers, the follow loop, the heartbeat and the timer.
pub(crate) struct Shared {
    pub(crate) dcs: Vec<Iata>,
    pub(crate) node_ids: Vec<String>,
    pub(crate) token: String,
    pub(crate) source_name: String,
    pub(crate) apply_delay: DelayDistribution,
    refdata: ReferenceData,
    start: Instant,
    core: Mutex<Core>,
    feed: Mutex<FeedStatus>,
    has_table: AtomicBool,
    /// Wakes the heartbeat: a version was applied somewhere.
    pub(crate) applied: Notify,
    /// Wakes the timer: the edge's next deadline may have moved.
    pub(crate) timer: Notify,
    /// Where each version applied from the source goes to be written to the cache
    /// (`--cache`; unset without one).
    /// Dropped when the follow loop ends, which tells the writer to write its last.
    cache_tx: Mutex<Option<watch::Sender<Option<Arc<Snapshot>>>>>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// An IATA code that the reference data does not use, for the fail-closed data center.
fn spare_code(refdata: &ReferenceData) -> Iata {
    for a in (b'A'..=b'Z').rev() {
        for b in (b'A'..=b'Z').rev() {
            let s = [b'Z', a, b];
            if let Ok(code) = Iata::parse(std::str::from_utf8(&s).unwrap_or("ZZZ")) {
                if refdata.data_center(code).is_none() {
                    return code;
                }
            }
        }
    }
    // 676 codes all taken: unreachable with real data.
    Iata::parse("ZZZ").unwrap_or_else(|_| refdata.data_centers()[0].code)
}

/// The reference data's data centers plus one fail-closed data center (no location,
/// kept unhealthy) that is the only member of regions that have no real member.
fn build_topology(refdata: &ReferenceData, set: &RegionSet) -> Result<(Topology, DcId), NodeError> {
    let (mut dcs, mut regions) = Topology::reference_parts(refdata);
    let fail = DcId(
        u16::try_from(dcs.len()).map_err(|_| NodeError::Config("too many data centers".into()))?,
    );
    dcs.push(DcSpec {
        code: spare_code(refdata),
        location: None,
    });
    let dc_id = |i: usize| DcId(u16::try_from(i).unwrap_or(u16::MAX));
    for def in &set.custom {
        if regions.iter().any(|r| r.key == def.key) {
            continue;
        }
        let mut members: Vec<DcId> = refdata
            .data_centers()
            .iter()
            .enumerate()
            .filter(|(_, d)| def.contains(d))
            .map(|(i, _)| dc_id(i))
            .collect();
        if members.is_empty() {
            members.push(fail);
        }
        regions.push(RegionSpec {
            key: def.key.clone(),
            members,
        });
    }
    for key in &set.unknown {
        if !regions.iter().any(|r| &r.key == key) {
            regions.push(RegionSpec {
                key: key.clone(),
                members: vec![fail],
            });
        }
    }
    let topo = Topology::from_parts(dcs, regions, RttModel::default())
        .map_err(|e| NodeError::Config(format!("building the topology: {e}")))?;
    Ok((topo, fail))
}

impl Core {
    fn fresh_edge(&mut self, topo: Arc<Topology>) {
        let config = *self.edge.config();
        self.edge = Edge::new(topo, config);
        self.published = None;
        self.empty_source_applied = false;
        self.versions.clear();
        self.edge.set_healthy(self.fail_dc, false);
        self.apply_health();
    }

    fn apply_health(&mut self) {
        let topo = Arc::clone(self.edge.topology());
        let mut changes = Vec::new();
        for (i, info) in topo.dcs().iter().enumerate() {
            let dc = DcId(u16::try_from(i).unwrap_or(u16::MAX));
            let want = if dc == self.fail_dc {
                false
            } else {
                self.override_health
                    .get(&info.code)
                    .or_else(|| self.registry_health.get(&info.code))
                    .copied()
                    .unwrap_or(true)
            };
            if self.edge.is_healthy(dc) != want {
                changes.push((dc, want));
            }
        }
        if !changes.is_empty() {
            self.edge.set_health(&changes);
        }
    }

    /// Whether `dc` holds a table from the source (not just the initial empty one).
    fn ready(&self, dc: DcId) -> bool {
        self.edge.table_version(dc) > 0 || self.empty_source_applied
    }

    fn binding_for(
        &self,
        d: &inregion_edge::Decision,
        dst: std::net::IpAddr,
    ) -> Option<BindingView> {
        d.region?;
        let info = self.versions.get(&d.table_version)?;
        let (net, _) = info.table.longest_match(dst)?;
        let (id, key) = info.by_cidr.get(&net)?;
        Some(BindingView {
            binding_id: *id,
            cidr: net.to_string(),
            region_key: key.clone(),
        })
    }
}

/// A data center's row in `/v1/status`.
#[derive(Debug, Clone, serde::Serialize)]
pub(crate) struct DcStatus {
    pub(crate) dc: String,
    pub(crate) node_id: String,
    pub(crate) applied_version: u64,
    pub(crate) healthy: bool,
}

/// A point-in-time copy of what status and metrics show.
#[derive(Debug, Clone)]
pub(crate) struct StatusCopy {
    pub(crate) dcs: Vec<DcStatus>,
    pub(crate) feed: FeedStatus,
    pub(crate) table_prefixes: usize,
    /// Bindings of the newest version handed to the edge.
    pub(crate) bindings: usize,
    pub(crate) unhealthy: Vec<String>,
    pub(crate) decisions: BTreeMap<&'static str, u64>,
    pub(crate) pending_deliveries: usize,
}

impl StatusCopy {
    /// The lowest applied version over the process's data centers.
    pub(crate) fn applied_version(&self) -> u64 {
        self.dcs
            .iter()
            .map(|d| d.applied_version)
            .min()
            .unwrap_or(0)
    }
}

impl Shared {
    pub(crate) fn new(
        dcs: Vec<Iata>,
        node_ids: Vec<String>,
        token: String,
        source_name: String,
        apply_delay: DelayDistribution,
        seed: u64,
        refdata: ReferenceData,
    ) -> Result<Self, NodeError> {
        let (topo, fail_dc) = build_topology(&refdata, &RegionSet::default())?;
        let config = EdgeConfig {
            propagation: apply_delay,
            ..EdgeConfig::default()
        };
        let mut edge = Edge::new(Arc::new(topo), config);
        edge.set_healthy(fail_dc, false);
        Ok(Shared {
            dcs,
            node_ids,
            token,
            source_name,
            apply_delay,
            refdata,
            start: Instant::now(),
            core: Mutex::new(Core {
                edge,
                rng: ChaCha8Rng::seed_from_u64(seed),
                published: None,
                versions: BTreeMap::new(),
                regions: RegionSet::default(),
                fail_dc,
                registry_health: HashMap::new(),
                override_health: HashMap::new(),
                decisions: BTreeMap::new(),
                last_bindings: 0,
                empty_source_applied: false,
            }),
            feed: Mutex::new(FeedStatus::default()),
            has_table: AtomicBool::new(false),
            applied: Notify::new(),
            timer: Notify::new(),
            cache_tx: Mutex::new(None),
        })
    }

    /// Applies a table cache read at start (see `cache.rs`): the first table, installed at
    /// once at every data center (it was applied before the restart; no apply delay),
    /// marked stale since the cache was written, reported to the registry as nothing
    /// applied.
    pub(crate) fn apply_cache(&self, loaded: crate::cache::Loaded) -> Result<(), NodeError> {
        let s = loaded.snapshot;
        match self.apply(s.version, &s.bindings, &s.regions, true, true, true)? {
            ApplyOutcome::NeedRegions(keys) => {
                return Err(NodeError::Config(format!(
                    "the cache names unknown regions {keys:?}"
                )))
            }
            ApplyOutcome::Applied | ApplyOutcome::Unchanged => {}
        }
        self.feed().cached = Some(Cached {
            snapshot: Arc::new(s),
            written_at: loaded.written_at,
        });
        Ok(())
    }

    /// Called before a version from the source is applied: whether it is the cached
    /// table's own version and content (then nothing needs rebuilding). Ends the cached
    /// state either way, once the version is applied ([`Shared::source_applied`]).
    pub(crate) fn same_as_cache(
        &self,
        version: u64,
        bindings: &[FeedBinding],
        regions: &[RegionDefinition],
    ) -> bool {
        self.feed().cached.as_ref().is_some_and(|c| {
            let s = &c.snapshot;
            s.version == version && s.bindings == bindings && s.regions == regions
        })
    }

    /// A version from the source was applied: the table no longer comes from the cache,
    /// and the version is handed to the cache writer (when there is a cache).
    pub(crate) fn source_applied(&self, snapshot: impl FnOnce() -> Snapshot) {
        if self.feed().cached.take().is_some() {
            tracing::info!("the source's table replaces the cached one");
            self.applied.notify_one();
        }
        if let Some(tx) = lock(&self.cache_tx).as_ref() {
            tx.send_replace(Some(Arc::new(snapshot())));
        }
    }

    /// Where applied versions go to be written to the cache (see `cache::writer`).
    pub(crate) fn open_cache(&self, tx: watch::Sender<Option<Arc<Snapshot>>>) {
        *lock(&self.cache_tx) = Some(tx);
    }

    /// No more versions for the cache: its writer writes the last one and ends.
    pub(crate) fn close_cache(&self) {
        lock(&self.cache_tx).take();
    }

    /// Monotonic time since the process started, as the edge's time.
    pub(crate) fn now(&self) -> SimTime {
        SimTime::from_nanos(u64::try_from(self.start.elapsed().as_nanos()).unwrap_or(u64::MAX))
    }

    /// The instant a [`SimTime`] stands for.
    pub(crate) fn instant_of(&self, t: SimTime) -> Instant {
        self.start + Duration::from_nanos(t.as_nanos())
    }

    pub(crate) fn core(&self) -> MutexGuard<'_, Core> {
        lock(&self.core)
    }

    pub(crate) fn feed(&self) -> MutexGuard<'_, FeedStatus> {
        lock(&self.feed)
    }

    /// Whether a first table was applied (decisions are refused before).
    pub(crate) fn has_table(&self) -> bool {
        self.has_table.load(Ordering::Acquire)
    }

    /// Whether the source is unreachable now.
    pub(crate) fn stale(&self) -> bool {
        self.feed().stale_since().is_some()
    }

    /// Records a successful source answer at `version`.
    pub(crate) fn source_ok(&self, version: u64) {
        let mut f = self.feed();
        f.source_version = Some(version);
        if f.feed_failing_since.take().is_some() {
            tracing::info!(version, "the source answers again");
        }
    }

    /// Records a failed source request.
    pub(crate) fn source_failed(&self, error: String) {
        let mut f = self.feed();
        f.feed_errors += 1;
        if f.feed_failing_since.is_none() {
            f.feed_failing_since = Some(SystemTime::now());
            tracing::warn!(error = %error, "the source fails; answering from the last table");
        } else {
            tracing::debug!(error = %error, "the source still fails");
        }
        f.last_error = Some(error);
    }

    /// Records whether a heartbeat reached the source: `Some(error)` for a transport
    /// error (the source is unreachable), `None` for an answer (any status).
    pub(crate) fn registry_reached(&self, error: Option<String>) {
        let mut f = self.feed();
        match error {
            None => f.registry_failing_since = None,
            Some(e) => {
                if f.registry_failing_since.is_none() {
                    f.registry_failing_since = Some(SystemTime::now());
                }
                f.last_error = Some(e);
            }
        }
    }

    /// Applies `bindings` (at `version`, with custom `regions`) as a new table: at once
    /// at every data center without an apply delay, else scheduled per data center.
    /// `changed`: the bindings or regions may differ from what was applied at the same
    /// version. With `allow_unknown`, unknown region keys become fail-closed regions;
    /// without, they are reported so that the caller re-reads the snapshot first.
    pub(crate) fn apply_version(
        &self,
        version: u64,
        bindings: &[FeedBinding],
        regions: &[RegionDefinition],
        changed: bool,
        allow_unknown: bool,
    ) -> Result<ApplyOutcome, NodeError> {
        self.apply(version, bindings, regions, changed, allow_unknown, false)
    }

    /// [`Shared::apply_version`]; `at_once`: installed at every data center now, whatever
    /// the apply delay (the table cache at start, applied before the restart).
    fn apply(
        &self,
        version: u64,
        bindings: &[FeedBinding],
        regions: &[RegionDefinition],
        changed: bool,
        allow_unknown: bool,
        at_once: bool,
    ) -> Result<ApplyOutcome, NodeError> {
        let (topo, mut set, published, prev_map) = {
            let c = self.core();
            let prev = c
                .versions
                .values()
                .next_back()
                .map(|v| Arc::clone(&v.by_cidr));
            (
                Arc::clone(c.edge.topology()),
                c.regions.clone(),
                c.published,
                prev,
            )
        };
        if published == Some(version) && !changed {
            return Ok(ApplyOutcome::Unchanged);
        }
        let wanted = match self.wanted_regions(&set, regions, bindings, allow_unknown) {
            Ok(w) => w,
            Err(missing) => return Ok(ApplyOutcome::NeedRegions(missing)),
        };
        let mut rebuild = None;
        let topo = if wanted != set {
            let (t, _) = build_topology(&self.refdata, &wanted)?;
            let t = Arc::new(t);
            rebuild = Some(Arc::clone(&t));
            set = wanted;
            t
        } else {
            topo
        };
        // Build the whole table before anything is installed.
        let table = region_table(
            &topo,
            bindings.iter().map(|b| (b.cidr.net(), &b.region_key)),
        )?;
        let map: HashMap<IpNet, (BindingId, RegionKey)> = bindings
            .iter()
            .map(|b| (b.cidr.net(), (b.binding_id, b.region_key.clone())))
            .collect();
        let by_cidr = match prev_map {
            Some(p) if *p == map => p,
            _ => Arc::new(map),
        };
        let now = self.now();
        let mut c = self.core();
        let fresh = rebuild.is_some() || c.published.is_some_and(|p| p >= version);
        if let Some(t) = rebuild {
            tracing::info!(
                version,
                custom = set.custom.len(),
                fail_closed = set.unknown.len(),
                "region definitions changed: new topology, the version is installed at once everywhere (open flows are forgotten)"
            );
            c.regions = set;
            c.fresh_edge(t);
        } else if fresh {
            tracing::warn!(version, "the source went back or repaired a version: the edge is rebuilt and the version installed at once everywhere");
            let t = Arc::clone(c.edge.topology());
            c.fresh_edge(t);
        }
        c.versions.insert(
            version,
            VersionInfo {
                table: table.clone(),
                by_cidr,
            },
        );
        while c.versions.len() > KEPT_VERSIONS {
            c.versions.pop_first();
        }
        let immediate = fresh
            || at_once
            || matches!(self.apply_delay, DelayDistribution::Fixed(d) if d.is_zero());
        if version == 0 {
            // The source never committed anything (a fresh edge is at version 0, and
            // a version-0 source after another one made `fresh` rebuild it): the
            // edge's initial empty tables are exactly that version.
            if !bindings.is_empty() {
                return Err(NodeError::Config(
                    "the source sent bindings at version 0".into(),
                ));
            }
            c.empty_source_applied = true;
        } else if immediate {
            c.edge.install(version, table, now)?;
        } else {
            let Core { edge, rng, .. } = &mut *c;
            edge.publish(version, table, now, rng)?;
        }
        c.published = Some(version);
        c.last_bindings = bindings.len();
        drop(c);
        self.has_table.store(true, Ordering::Release);
        self.timer.notify_one();
        self.applied.notify_one();
        Ok(ApplyOutcome::Applied)
    }

    /// The region definitions the topology must know for `bindings`: `set` with the
    /// snapshot's custom `regions`, and (with `allow_unknown`) every key that no
    /// definition names as a fail-closed region. Without `allow_unknown`, the unknown
    /// keys are returned so that the caller re-reads the snapshot first.
    fn wanted_regions(
        &self,
        set: &RegionSet,
        regions: &[RegionDefinition],
        bindings: &[FeedBinding],
        allow_unknown: bool,
    ) -> Result<RegionSet, Vec<String>> {
        let mut wanted = set.clone();
        wanted.custom = regions.to_vec();
        if wanted.custom != set.custom {
            // Definitions changed: forget fail-closed keys that they now define.
            wanted
                .unknown
                .retain(|k| !regions.iter().any(|r| &r.key == k));
        }
        let known = |k: &RegionKey| {
            self.refdata.region(k).is_some()
                || wanted.custom.iter().any(|r| &r.key == k)
                || wanted.unknown.contains(k)
        };
        let missing: BTreeSet<RegionKey> = bindings
            .iter()
            .map(|b| &b.region_key)
            .filter(|k| !known(k))
            .cloned()
            .collect();
        if !missing.is_empty() {
            if !allow_unknown {
                return Err(missing.iter().map(|k| k.as_str().to_owned()).collect());
            }
            tracing::warn!(keys = ?missing, "bindings name regions that no definition has: traffic bound to them is refused (fail closed)");
            wanted.unknown.extend(missing);
        }
        Ok(wanted)
    }

    /// Decides `flows` (all checked) at their ingress, in order; `None` (nothing
    /// decided) when an ingress has no table from the source yet.
    pub(crate) fn decide(&self, flows: &[CheckedFlow]) -> Option<Vec<DecisionView>> {
        let stale = self.stale();
        let now = self.now();
        let mut c = self.core();
        let topo = Arc::clone(c.edge.topology());
        for f in flows {
            if !topo.dc_by_code(f.dc).is_some_and(|dc| c.ready(dc)) {
                return None;
            }
        }
        let code = |dc: DcId| topo.dc(dc).code.as_str().to_owned();
        let mut out = Vec::with_capacity(flows.len());
        for f in flows {
            let Some(dc) = topo.dc_by_code(f.dc) else {
                continue;
            };
            let d = c.edge.decide(dc, &f.key, now);
            let binding = c.binding_for(&d, f.key.dst());
            let view = decision_view(&d, code, binding, stale);
            *c.decisions.entry(verdict_key(&view.verdict)).or_default() += 1;
            out.push(view);
        }
        Some(out)
    }

    /// The applied version of each of the process's data centers (0 while the table
    /// comes from the cache: nothing from the source is applied yet, and the registry
    /// must not count this node for a version it may not have).
    pub(crate) fn applied_versions(&self) -> Vec<(Iata, u64)> {
        if self.feed().cached.is_some() {
            return self.dcs.iter().map(|&code| (code, 0)).collect();
        }
        let c = self.core();
        let topo = c.edge.topology();
        self.dcs
            .iter()
            .map(|&code| {
                let v = topo
                    .dc_by_code(code)
                    .map_or(0, |dc| c.edge.table_version(dc));
                (code, v)
            })
            .collect()
    }

    /// Takes the registry's view: a data center whose registered nodes are all not live
    /// is unhealthy; one with a live node is healthy; one without a node stays healthy.
    pub(crate) fn set_registry(&self, nodes: &[NodeView]) {
        let mut reg: HashMap<Iata, bool> = HashMap::new();
        for n in nodes {
            *reg.entry(n.dc).or_insert(false) |= n.live;
        }
        let mut c = self.core();
        if c.registry_health != reg {
            for (dc, live) in &reg {
                if c.registry_health.get(dc) != Some(live) && !live {
                    tracing::warn!(dc = %dc, "the registry shows no live node: not forwarding there");
                }
            }
            c.registry_health = reg;
            c.apply_health();
        }
    }

    /// Sets (`Some`) or clears (`None`) a local health override of `dc`. Returns the
    /// effective health, or `None` when `dc` is not a data center of the topology.
    pub(crate) fn set_override(&self, dc: Iata, healthy: Option<bool>) -> Option<bool> {
        let mut c = self.core();
        let id = c.edge.topology().dc_by_code(dc)?;
        if id == c.fail_dc {
            return None;
        }
        match healthy {
            Some(h) => c.override_health.insert(dc, h),
            None => c.override_health.remove(&dc),
        };
        c.apply_health();
        Some(c.edge.is_healthy(id))
    }

    /// A copy of everything status and metrics show.
    pub(crate) fn status(&self) -> StatusCopy {
        let feed = self.feed().clone();
        let c = self.core();
        let topo = Arc::clone(c.edge.topology());
        let dcs = self
            .dcs
            .iter()
            .zip(&self.node_ids)
            .map(|(&code, id)| {
                let dc = topo.dc_by_code(code);
                DcStatus {
                    dc: code.as_str().to_owned(),
                    node_id: id.clone(),
                    applied_version: dc.map_or(0, |d| c.edge.table_version(d)),
                    healthy: dc.is_some_and(|d| c.edge.is_healthy(d)),
                }
            })
            .collect();
        let unhealthy = topo
            .dcs()
            .iter()
            .enumerate()
            .filter(|&(i, _)| {
                let dc = DcId(u16::try_from(i).unwrap_or(u16::MAX));
                dc != c.fail_dc && !c.edge.is_healthy(dc)
            })
            .map(|(_, d)| d.code.as_str().to_owned())
            .collect();
        let table_prefixes = self
            .dcs
            .first()
            .and_then(|&code| topo.dc_by_code(code))
            .map_or(0, |dc| c.edge.table(dc).table().len());
        StatusCopy {
            dcs,
            feed,
            table_prefixes,
            bindings: c.last_bindings,
            unhealthy,
            decisions: c.decisions.clone(),
            pending_deliveries: c.edge.pending_deliveries(),
        }
    }
}

fn verdict_key(v: &str) -> &'static str {
    match v {
        "in_region" => "in_region",
        "forwarded" => "forwarded",
        "global" => "global",
        _ => "refused",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use inregion_edge::{FlowKey, Protocol};
    use inregion_model::Cidr;

    fn shared(delay: DelayDistribution) -> Shared {
        Shared::new(
            vec![Iata::parse("FRA").unwrap(), Iata::parse("IAD").unwrap()],
            vec!["FRA".into(), "IAD".into()],
            "t".into(),
            "test".into(),
            delay,
            1,
            ReferenceData::embedded(),
        )
        .unwrap()
    }

    fn binding(i: u8, cidr: &str, key: &str) -> FeedBinding {
        FeedBinding {
            binding_id: BindingId::parse(&format!("00000000-0000-4000-8000-0000000000{i:02x}"))
                .unwrap(),
            cidr: Cidr::parse_strict(cidr).unwrap(),
            region_key: RegionKey::parse(key).unwrap(),
        }
    }

    fn flow(dc: &str, dst: [u8; 4], sport: u16) -> CheckedFlow {
        CheckedFlow {
            key: FlowKey::v4(
                Protocol::TCP,
                [198, 51, 100, 7].into(),
                sport,
                dst.into(),
                443,
            ),
            dc: Iata::parse(dc).unwrap(),
        }
    }

    #[test]
    fn unknown_regions_fail_closed_and_custom_regions_resolve() {
        let s = shared(DelayDistribution::Fixed(Duration::ZERO));
        let b = [binding(1, "203.0.113.0/24", "mystery")];
        assert_eq!(
            s.apply_version(1, &b, &[], true, false).unwrap(),
            ApplyOutcome::NeedRegions(vec!["mystery".into()])
        );
        assert_eq!(
            s.apply_version(1, &b, &[], true, true).unwrap(),
            ApplyOutcome::Applied
        );
        let d = s.decide(&[flow("FRA", [203, 0, 113, 1], 1)]).unwrap();
        assert_eq!(d[0].verdict, "refused");
        assert_eq!(
            d[0].binding.as_ref().unwrap().region_key.as_str(),
            "mystery"
        );
        // A custom region with FRA as a member.
        let def: RegionDefinition = serde_json::from_value(serde_json::json!({
            "key": "mystery", "name": "M", "id": "5b0e0000-0000-4000-8000-000000000001",
            "countries": [], "data_centers": ["FRA"], "exclude_countries": []
        }))
        .unwrap();
        assert_eq!(
            s.apply_version(2, &b, &[def], true, false).unwrap(),
            ApplyOutcome::Applied
        );
        let d = s
            .decide(&[
                flow("FRA", [203, 0, 113, 1], 2),
                flow("IAD", [203, 0, 113, 1], 3),
            ])
            .unwrap();
        assert_eq!(d[0].verdict, "in_region");
        assert_eq!(d[1].verdict, "forwarded");
        assert_eq!(d[1].processed_at.as_deref(), Some("FRA"));
        assert!(s.status().unhealthy.is_empty());
    }

    #[test]
    fn delayed_versions_reach_data_centers_later() {
        let s = shared(DelayDistribution::Fixed(Duration::from_secs(3600)));
        let b = [binding(1, "203.0.113.0/24", "eu")];
        s.apply_version(5, &b, &[], true, false).unwrap();
        assert_eq!(s.applied_versions()[0].1, 0);
        let at = s.core().edge.next_deadline().unwrap();
        assert!(at >= SimTime::from_secs(3600));
        s.core().edge.tick(at);
        assert_eq!(s.applied_versions()[0].1, 5);
        // The same version again, unchanged: nothing to do; a repair: rebuilt at once.
        assert_eq!(
            s.apply_version(5, &b, &[], false, false).unwrap(),
            ApplyOutcome::Unchanged
        );
        s.apply_version(5, &[], &[], true, false).unwrap();
        assert_eq!(s.applied_versions()[1].1, 5);
        assert_eq!(
            s.decide(&[flow("IAD", [203, 0, 113, 1], 9)]).unwrap()[0].verdict,
            "global"
        );
    }

    #[test]
    fn no_decision_before_a_table_and_version_zero_is_a_table() {
        let s = shared(DelayDistribution::Fixed(Duration::from_secs(3600)));
        assert!(s.decide(&[flow("FRA", [203, 0, 113, 1], 1)]).is_none());
        s.apply_version(0, &[], &[], true, false).unwrap();
        assert_eq!(
            s.decide(&[flow("FRA", [203, 0, 113, 1], 1)]).unwrap()[0].verdict,
            "global"
        );
        // A held-back version does not make the data center ready before it arrives.
        let s = shared(DelayDistribution::Fixed(Duration::from_secs(3600)));
        s.apply_version(3, &[binding(1, "203.0.113.0/24", "eu")], &[], true, false)
            .unwrap();
        assert!(s.decide(&[flow("FRA", [203, 0, 113, 1], 1)]).is_none());
    }

    #[test]
    fn overrides_win_over_the_registry() {
        let s = shared(DelayDistribution::Fixed(Duration::ZERO));
        let ams = Iata::parse("AMS").unwrap();
        assert_eq!(s.set_override(ams, Some(false)), Some(false));
        assert_eq!(s.status().unhealthy, vec!["AMS".to_owned()]);
        assert_eq!(s.set_override(ams, None), Some(true));
        assert!(s.status().unhealthy.is_empty());
    }
}
