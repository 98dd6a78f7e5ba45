//! [`ControlPlane`]: the operations, the commit pipeline and the read side.
//!
//! ## Write path (serialized, durable, group-committed)
//!
//! ```text
//!  caller ──► lock writer ─► rule(spec state) ─► Err: nothing changed, return
//!                              │ Ok(changes)
//!                              ▼
//!             version = next; apply to spec state; queue it; unlock writer
//!                              │
//!             wait for the ticket: `block_on` (sync methods) or `.await` (`*_async`)
//!                              ▲
//!  committer thread: take the whole queue ─► store.commit(batch)  (one transaction,
//!             one fsync) ─► apply batch to read state ─► complete every ticket
//! ```
//!
//! The committer is in `pipeline.rs`. Every write has a blocking method for threads and
//! tests; the ones the HTTP layer serves also have an `_async` twin, so that a request
//! waits for its commit without holding a thread.
//!
//! Two copies of the state exist: the writer's *speculative* state, which includes
//! queued (validated, not yet durable) commits so that the next writer validates against
//! them, and the *read* state, which only ever contains durable commits. Readers never see
//! a write before it is durable. If the store fails, the batch and everything queued
//! behind it fail, and the speculative state is rebuilt from the read state.
//!
//! ## Layout
//!
//! This file holds what every operation shares: the configuration, the [`ControlPlane`]
//! struct, opening it, the write path (`submit`, `enqueue`, the `write_op!` macro) and
//! the [`Rules`] a rule runs over, with its [`Ctx`] (version, ids) and the [`Writer`]. Each
//! resource's operations and the `Rules` helpers only it needs live in a file of their
//! own, each an `impl ControlPlane` block:
//!
//! | module | holds |
//! |---|---|
//! | `access.rs` | authentication, [`ControlPlane::authorize`], [`WriteKind`], the access check |
//! | `regions.rs` | `/dls/regions` |
//! | `bindings.rs` | `/dls/regional_services/prefix_bindings` |
//! | `addressing.rs` | BYOIP prefixes, services, service bindings |
//! | `address_maps.rs` | address maps, their IPs and memberships (the §9 gate) |
//! | `admin.rs` | force-activation, bulk creation |
//! | `seeding.rs` | the seeding rules and entry points |
//! | `fixture.rs` | reset, per-test accounts, snapshots |
//! | `edges.rs` | the edge-node registry and its feed |
//! | `feed.rs` | the version, bindings in force, the change feed, purge, dumps |
//!
//! The unit tests are in `tests/`, one module per resource over a shared fixture.

use crate::auth::{
    self, AuthError, Credentials, HashScheme, Principal, SecretHash, TokenKey, TokenRecord,
    UserRecord,
};
use crate::error::*;
use crate::feed::{BindingCounts, BindingSnapshot, ChangeSet, FeedError, InForce};
use crate::inputs::*;
use crate::page::{self, Page, PageRequest};
use crate::pipeline::{block_on, lock, CommitStats, Committer, Queue, Ticket};
use crate::records::*;
use crate::seed::*;
use crate::state::{Change, Commit, State};
use crate::store::{Durability, Loaded, MemoryStore, SqliteStore, Store};
use inregion_model::cidr::{canonical_ip, parse_ip_strict};
use inregion_model::{
    AccountId, AddressMapId, BindingId, Cidr, Entitlement, Permission, PrefixId, ReferenceData,
    RegionDefinition, RegionId, RegionKey, RegionKind, ServiceId, Timestamp, TokenId,
};
use rand::{RngCore, SeedableRng};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::net::IpAddr;
use std::ops::Bound;
use std::path::Path;
use std::sync::{Arc, Mutex, RwLockReadGuard};
use std::time::Duration;

/// Configuration of a [`ControlPlane`].
#[derive(Debug, Clone)]
pub struct ControlConfig {
    /// How long a created, changed or deleted binding takes to propagate. Cloudflare
    /// documents 4–6 hours; the default is 5 h (contract §8).
    pub propagation_delay: Duration,
    /// Data centers and managed regions.
    pub reference: Arc<ReferenceData>,
    /// Optional cap on live bindings per prefix (400 / 1117); off by default.
    pub max_bindings_per_prefix: Option<usize>,
    /// Seed for generated ids (binding, prefix, address-map, token ids); `None` = random.
    /// Simulations set it for reproducible runs.
    pub id_seed: Option<u64>,
    /// `created_on` / `modified_on` / `version_created_on` of the managed regions.
    pub managed_regions_created_on: Timestamp,
    /// How long a deleted binding is kept once its deletion has propagated (`gone_at`),
    /// before [`ControlPlane::purge_tombstones`] forgets it. Change-feed readers that
    /// fall further behind than this are told to re-read everything
    /// ([`FeedError::TooFarBehind`]). Default 1 h.
    pub tombstone_retention: Duration,
    /// What makes a change of a binding take effect: a delay, or the edge nodes.
    pub activation: Activation,
    /// The edge nodes' registry (heartbeats, liveness, expiry).
    pub edges: EdgeRegistryConfig,
}

/// What makes a created, changed or deleted binding active (or gone).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Activation {
    /// [`ControlConfig::propagation_delay`] after the change, whatever the edge nodes
    /// report (the default; a model of Cloudflare's documented 4–6 hours).
    #[default]
    Delay,
    /// Once a majority of the registered edge nodes report having applied the change's
    /// version ([`ControlPlane::report_edge_node`]): Cloudflare's "propagated to a
    /// majority of data centers", measured on real processes. Until then the change
    /// waits ([`AWAITING_EDGES`]); with no registered node nothing activates.
    Edges,
}

/// Timing of the edge nodes' registry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EdgeRegistryConfig {
    /// How often a node should report (told to nodes in every answer). Default 1 s.
    pub heartbeat: Duration,
    /// A node not heard from for this long is not live: other nodes stop forwarding to
    /// its data center (it still counts toward the majority). Default 3 s.
    pub live_timeout: Duration,
    /// A node not heard from for this long is deregistered. Default 1 h.
    pub expiry: Duration,
}

impl Default for EdgeRegistryConfig {
    fn default() -> Self {
        Self {
            heartbeat: Duration::from_secs(1),
            live_timeout: Duration::from_secs(3),
            expiry: Duration::from_secs(3600),
        }
    }
}

impl ControlConfig {
    /// When a change made at `t` takes effect: after the propagation delay, or when the
    /// edge nodes say so.
    pub(crate) fn settles_at(&self, t: Timestamp) -> Timestamp {
        match self.activation {
            Activation::Delay => t.plus(self.propagation_delay),
            Activation::Edges => AWAITING_EDGES,
        }
    }
}

impl Default for ControlConfig {
    fn default() -> Self {
        Self {
            propagation_delay: Duration::from_secs(5 * 3600),
            reference: Arc::new(ReferenceData::embedded()),
            max_bindings_per_prefix: None,
            id_seed: None,
            // The timestamp of the docs' example region (seed page).
            managed_regions_created_on: Timestamp::from_micros(1_768_348_785_276_558),
            tombstone_retention: Duration::from_secs(3600),
            activation: Activation::Delay,
            edges: EdgeRegistryConfig::default(),
        }
    }
}

/// What a replica knows of the shared store ([`ControlPlane::replica_stats`]), for
/// `/metrics` and the staleness of reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReplicaStats {
    /// The store position (etcd: revision) this replica's state is at.
    pub position: u64,
    /// The newest position seen from the store (watch, listing, reads, own commits).
    pub latest_seen: u64,
    /// Watch streams re-opened after a drop, and re-lists.
    pub reconnects: u64,
    /// Transactions that lost the race to another replica (each ran its rule again).
    pub conflicts: u64,
    /// Differences the periodic re-read found and repaired.
    pub repairs: u64,
    /// How long ago the store last answered anything.
    pub since_contact: Option<Duration>,
}

impl ReplicaStats {
    /// Revisions the replica's state is behind the newest it has seen.
    pub fn watch_lag(&self) -> u64 {
        self.latest_seen - self.position
    }
}

/// A non-fatal notice returned with a successful write (`messages[]`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notice {
    /// Code (1200: the CIDR overlaps addresses already on an address map).
    pub code: u32,
    /// Text.
    pub message: String,
}

/// A successful create with its non-fatal notices.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Created<T> {
    /// The created object (`result`).
    pub result: T,
    /// Notices (`messages`).
    pub messages: Vec<Notice>,
}

fn derived_uuid(label: &str) -> uuid::Uuid {
    let h = SecretHash::sha256(label).0;
    let mut b = [0u8; 16];
    b.copy_from_slice(&h[..16]);
    uuid::Builder::from_random_bytes(b).into_uuid()
}

/// Generates ids: random, or from a seeded stream for reproducible simulations.
enum IdGen {
    Random,
    Seeded(Box<rand_chacha::ChaCha8Rng>),
}

impl IdGen {
    fn bytes(&mut self) -> [u8; 16] {
        match self {
            IdGen::Random => *uuid::Uuid::new_v4().as_bytes(),
            IdGen::Seeded(r) => {
                let mut b = [0u8; 16];
                r.fill_bytes(&mut b);
                b
            }
        }
    }
    fn uuid(&mut self) -> uuid::Uuid {
        uuid::Builder::from_random_bytes(self.bytes()).into_uuid()
    }
    fn hex32(&mut self) -> String {
        hex::encode(self.bytes())
    }
}

/// What a rule gets besides the state: the version its commit will create and the id
/// generator.
pub(crate) struct Ctx<'a> {
    version: u64,
    ids: &'a mut IdGen,
}

/// The writer's side of the pipeline: everything a rule validates against, under one
/// mutex with the queue so that validating and queueing are one critical section.
pub(crate) struct Writer {
    spec: State,
    pub(crate) queue: Queue,
    next_version: u64,
    ids: IdGen,
}

impl Writer {
    /// Called with the writer locked when a batch failed: everything queued behind it
    /// was validated against it, so the speculative state is rebuilt from `durable`.
    pub(crate) fn reset_to(&mut self, durable: &State) {
        self.spec = durable.clone();
        self.next_version = durable.version + 1;
    }

    /// The speculative state, for the pipeline to apply another replica's commits to
    /// when nothing is queued (it then equals the read state).
    pub(crate) fn spec_mut(&mut self) -> &mut State {
        &mut self.spec
    }

    /// The next commit follows `version` (another replica's last).
    pub(crate) fn reset_version(&mut self, version: u64) {
        self.next_version = version + 1;
    }
}

/// Managed regions, resolved once.
struct Managed {
    by_key: BTreeMap<RegionKey, Region>,
    key_by_id: HashMap<RegionId, RegionKey>,
}

/// The control plane. `Send + Sync`: share it with `Arc`. See the module docs for the
/// write path; reads take a shared lock on the durable in-memory state. Dropping it
/// commits whatever is still queued, then stops the committer thread.
pub struct ControlPlane {
    config: ControlConfig,
    /// What the edge nodes reported since this process started (not durable).
    edges: Mutex<edges::EdgeRuntime>,
    managed: Managed,
    pipe: Committer,
    store_kind: &'static str,
    /// The store's key for hashing secrets (see [`crate::auth`]).
    token_key: TokenKey,
}

impl std::fmt::Debug for ControlPlane {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ControlPlane")
            .field("store", &self.store_kind)
            .field("version", &self.version())
            .finish()
    }
}

/// The rules, over one state (the read state for reads, the speculative state for
/// writes). Pure: time comes in as `now`; nothing here does I/O.
pub(crate) struct Rules<'a> {
    cfg: &'a ControlConfig,
    managed: &'a Managed,
    st: &'a State,
}

fn non_empty(v: &Option<String>) -> Option<&str> {
    v.as_deref().filter(|s| !s.is_empty())
}

/// Defines a write operation twice from one signature and body: `$name`, which blocks
/// the calling thread until the write is durable, and `$async_name`, which returns a
/// future that waits for it without holding a thread (what the HTTP server uses). The
/// body is the async one; the blocking form runs it with [`block_on`].
macro_rules! write_op {
    (
        $(#[$doc:meta])*
        fn $name:ident / $async_name:ident (
            &$self:ident,
            $($arg:ident : $ty:ty),* $(,)?
        ) -> $ret:ty $body:block
    ) => {
        $(#[$doc])*
        pub fn $name(&$self, $($arg: $ty),*) -> $ret {
            block_on($self.$async_name($($arg),*))
        }

        #[doc = concat!(
            "[`Self::", stringify!($name), "`] for async callers: validates and queues ",
            "the write at the first poll, then waits for the committer without holding a ",
            "thread."
        )]
        pub async fn $async_name(&$self, $($arg: $ty),*) -> $ret $body
    };
}

impl ControlPlane {
    /// Opens a control plane over `store`, loading everything it holds.
    pub fn open(mut store: Box<dyn Store>, config: ControlConfig) -> Result<Self, StoreError> {
        let state = State::from_loaded(store.load()?);
        let version = state.version;
        let mut by_key = BTreeMap::new();
        let mut key_by_id = HashMap::new();
        let t = config.managed_regions_created_on;
        for def in config.reference.regions() {
            let id = RegionId::from_uuid(def.id);
            key_by_id.insert(id, def.key.clone());
            by_key.insert(
                def.key.clone(),
                Region {
                    id,
                    name: def.name.clone(),
                    region_key: def.key.clone(),
                    created_on: t,
                    modified_on: t,
                    version: 1,
                    version_created_on: t,
                    kind: RegionKind::Managed,
                },
            );
        }
        let ids = match config.id_seed {
            Some(s) => IdGen::Seeded(Box::new(rand_chacha::ChaCha8Rng::seed_from_u64(s))),
            None => IdGen::Random,
        };
        let store_kind = store.kind();
        let token_key = store.token_key();
        let writer = Writer {
            spec: state.clone(),
            queue: Queue::default(),
            next_version: version + 1,
            ids,
        };
        Ok(Self {
            store_kind,
            token_key,
            managed: Managed { by_key, key_by_id },
            pipe: Committer::start(store, state, writer)?,
            edges: Mutex::new(edges::EdgeRuntime::default()),
            config,
        })
    }

    /// A control plane over a fresh [`MemoryStore`].
    pub fn in_memory(config: ControlConfig) -> Self {
        Self::open(Box::new(MemoryStore::new()), config)
            .expect("an empty memory store always loads")
    }

    /// A control plane over the SQLite database at `path` (created if missing), every
    /// write fsynced before it is acknowledged ([`Durability::Full`]).
    pub fn open_sqlite(path: impl AsRef<Path>, config: ControlConfig) -> Result<Self, StoreError> {
        Self::open_sqlite_with(path, Durability::Full, config)
    }

    /// As [`open_sqlite`](Self::open_sqlite), with the given durability of writes.
    pub fn open_sqlite_with(
        path: impl AsRef<Path>,
        durability: Durability,
        config: ControlConfig,
    ) -> Result<Self, StoreError> {
        Self::open(Box::new(SqliteStore::open_with(path, durability)?), config)
    }

    /// A control plane over an etcd cluster shared with other replicas (see
    /// [`EtcdStore`](crate::EtcdStore)): loads everything under the prefix, then follows
    /// what other replicas commit.
    pub fn open_etcd(etcd: crate::EtcdConfig, config: ControlConfig) -> Result<Self, StoreError> {
        Self::open(Box::new(crate::EtcdStore::open(etcd)?), config)
    }

    /// Whether the state is shared with other replicas (etcd).
    pub fn is_replica(&self) -> bool {
        self.pipe.shared().replica.is_some()
    }

    /// On a replica, resolves once this replica's state holds every write acknowledged
    /// (by any replica) before the call: asks the shared store for its newest position
    /// (one read shared by the requests that arrived before it started) and waits until
    /// the state has reached it. At once for a store of this process alone. Fails when
    /// the store cannot answer.
    pub async fn wait_fresh(&self) -> Result<(), StoreError> {
        let Some(r) = &self.pipe.shared().replica else {
            return Ok(());
        };
        let latest = r.rounds.next().await?;
        r.stats.contact();
        r.stats.seen(latest);
        self.wait_store_position(latest).await;
        Ok(())
    }

    /// Resolves once this replica's state has reached `position` of the shared store.
    pub async fn wait_store_position(&self, position: u64) {
        crate::pipeline::PositionAfter {
            shared: self.pipe.shared(),
            at: position,
        }
        .await
    }

    /// A replica's view of the shared store (`None` when the store is not shared).
    pub fn replica_stats(&self) -> Option<ReplicaStats> {
        let shared = self.pipe.shared();
        let r = shared.replica.as_ref()?;
        let position = shared.position();
        let latest = r
            .stats
            .latest_seen
            .load(std::sync::atomic::Ordering::Relaxed);
        let load = |a: &std::sync::atomic::AtomicU64| a.load(std::sync::atomic::Ordering::Relaxed);
        Some(ReplicaStats {
            position,
            latest_seen: latest.max(position),
            reconnects: load(&r.stats.reconnects),
            conflicts: load(&r.stats.conflicts),
            repairs: load(&r.stats.repairs),
            since_contact: lock(&r.stats.last_contact).map(|t| t.elapsed()),
        })
    }

    /// The configuration.
    pub fn config(&self) -> &ControlConfig {
        &self.config
    }

    /// Group-commit counters (batches and operations committed).
    pub fn commit_stats(&self) -> CommitStats {
        self.pipe.shared().stats()
    }

    /// Why writes are halted, if they are: the disk failed a commit
    /// ([`StoreError::DiskFailed`]), and every write is refused with that error until
    /// the process restarts. Reads go on. `/healthz` answers 503 with it, so that a
    /// supervisor restarts the server.
    pub fn halted(&self) -> Option<StoreError> {
        self.pipe.shared().halted()
    }

    /// The store's kind (`sqlite`, `memory`).
    pub fn store_kind(&self) -> &'static str {
        self.store_kind
    }

    fn read_state(&self) -> RwLockReadGuard<'_, State> {
        self.pipe.shared().read_state()
    }

    fn with_rules<R>(&self, f: impl FnOnce(&Rules<'_>) -> R) -> R {
        let st = self.read_state();
        f(&Rules {
            cfg: &self.config,
            managed: &self.managed,
            st: &st,
        })
    }

    /// Runs a rule against the speculative state and, if it yields changes, commits them
    /// durably (group commit). Returns once the commit is durable, or with the rule's
    /// error having changed nothing. Blocks the calling thread; async callers use
    /// [`Self::submit_async`].
    fn submit<R, E: From<StoreError>>(
        &self,
        rule: impl FnMut(&Rules<'_>, &mut Ctx<'_>) -> Result<(Vec<Change>, R), E>,
    ) -> Result<R, E> {
        block_on(self.submit_async(rule))
    }

    /// [`Self::submit`] without blocking: the rule runs at the first poll, and the
    /// future then waits for the committer thread.
    ///
    /// With a shared store (etcd) another replica may commit first: the pipeline then
    /// catches up and fails this operation with [`StoreError::Conflict`], and the rule
    /// runs again on the newer state (so a duplicate create answers 409 as on one
    /// server). Rules are pure, so running one again is safe.
    async fn submit_async<R, E: From<StoreError>>(
        &self,
        mut rule: impl FnMut(&Rules<'_>, &mut Ctx<'_>) -> Result<(Vec<Change>, R), E>,
    ) -> Result<R, E> {
        let started = std::time::Instant::now();
        loop {
            let (out, ticket) = self.enqueue(&mut rule)?;
            match ticket {
                None => return Ok(out),
                Some(t) => match t.await {
                    Ok(()) => return Ok(out),
                    Err(StoreError::Conflict { .. })
                        if started.elapsed() < MAX_CONFLICT_RETRY_TIME => {}
                    Err(e) => return Err(e.into()),
                },
            }
        }
    }

    /// Validates and queues: the rule runs against the speculative state, its changes are
    /// applied to it and queued for the committer. `None` when there is nothing to wait
    /// for (a no-op with nothing queued before it).
    fn enqueue<R, E>(
        &self,
        rule: impl FnOnce(&Rules<'_>, &mut Ctx<'_>) -> Result<(Vec<Change>, R), E>,
    ) -> Result<(R, Option<Ticket>), E> {
        let shared = self.pipe.shared();
        let mut w = lock(&shared.writer);
        let w = &mut *w;
        let version = w.next_version;
        let (changes, out) = rule(
            &Rules {
                cfg: &self.config,
                managed: &self.managed,
                st: &w.spec,
            },
            &mut Ctx {
                version,
                ids: &mut w.ids,
            },
        )?;
        let mut garbage = Vec::new();
        let commit = if changes.is_empty() {
            // A no-op still waits for everything queued before it, so that what it
            // returned (read from the speculative state) is durable.
            if w.queue.is_empty() {
                return Ok((out, None));
            }
            None
        } else {
            let c = Commit { version, changes };
            garbage = w.spec.apply_commit_deferring_drop(&c);
            w.next_version += 1;
            Some(c)
        };
        Ok((out, Some(shared.push(w, commit, garbage))))
    }
}

/// How long an operation keeps running again after losing races to other replicas
/// before it answers 503.
const MAX_CONFLICT_RETRY_TIME: Duration = Duration::from_secs(10);

/// Turns `per_page + 1` fetched items into a page: the extra item only signals that a
/// next page exists.
fn paginate<T>(mut items: Vec<T>, per_page: u32, key: impl Fn(&T) -> String) -> Page<T> {
    let more = items.len() > per_page as usize;
    items.truncate(per_page as usize);
    let next_cursor = match (more, items.last()) {
        (true, Some(last)) => key(last),
        _ => String::new(),
    };
    Page {
        items,
        per_page,
        next_cursor,
    }
}

mod access;
mod address_maps;
mod addressing;
mod admin;
mod bindings;
mod edges;
mod feed;
mod fixture;
mod regions;
mod seeding;

pub use access::WriteKind;
pub use addressing::{base_binding_id, SERVICES};
pub use edges::{EdgeNodeError, EdgeNodeStatus, EdgeRegistryView};
pub use fixture::{RestoreError, TestAccount, TestAccountRequest};

#[cfg(test)]
mod tests;
