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

/// The Addressing services (`GET /addressing/services`), with stable ids.
pub const SERVICES: [(&str, &str); 3] = [
    ("969c4bd2a6d04e0a8a2c3b1c6f1b2d3e", "CDN"),
    ("2e0b8f6c1d3a4b5c9e7f0a1b2c3d4e5f", "Spectrum"),
    ("7f3e2d1c0b9a48576e5d4c3b2a190817", "Magic Transit"),
];

fn service_by_name(name: &str) -> Option<ServiceId> {
    SERVICES
        .iter()
        .find(|(_, n)| *n == name)
        .and_then(|(id, _)| ServiceId::parse(id).ok())
}

fn service_name(id: &ServiceId) -> String {
    SERVICES
        .iter()
        .find(|(i, _)| *i == id.as_str())
        .map(|(_, n)| (*n).to_owned())
        .unwrap_or_else(|| "unknown".into())
}

/// The base service binding's id: derived from the prefix id, 32 hex (Addressing's cap).
pub fn base_binding_id(prefix: &PrefixId) -> String {
    SecretHash::sha256(&format!("base-binding:{prefix}")).to_hex()[..32].to_owned()
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

/// The permission requirement of an operation.
#[derive(Clone, Copy)]
enum Need {
    Any(&'static [Permission]),
    All(&'static [Permission]),
}

const DLS_READ: Need = Need::Any(&[Permission::DlsRead, Permission::DlsWrite]);
const DLS_WRITE: Need = Need::All(&[Permission::DlsWrite, Permission::IpPrefixesWrite]);
const PREFIX_READ: Need = Need::Any(&[
    Permission::IpPrefixesRead,
    Permission::IpPrefixesWrite,
    Permission::MagicTransitRead,
    Permission::MagicTransitWrite,
    Permission::IpPrefixesBgpOnDemandRead,
    Permission::IpPrefixesBgpOnDemandWrite,
]);
const PREFIX_WRITE: Need = Need::All(&[Permission::IpPrefixesWrite]);
const SB_READ: Need = Need::Any(&[Permission::IpPrefixesRead, Permission::IpPrefixesWrite]);
const MAP_READ: Need = Need::Any(&[Permission::AddressMapsRead, Permission::AddressMapsWrite]);
const MAP_WRITE: Need = Need::All(&[Permission::AddressMapsWrite]);
const ENT_REGIONS: &[Entitlement] = &[Entitlement::RegionalServices];
const ENT_BINDINGS: &[Entitlement] = &[
    Entitlement::RegionalServices,
    Entitlement::RegionalServicesByoip,
];

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

/// Adds the `kind` membership of `identifier` (an account or zone id: 32 hex characters)
/// to a map's list; `Ok(false)` when it is there already. One rule for map create and
/// `PUT …/zones|accounts/{id}`; the error is the reason, for each caller's error type.
fn add_membership(
    list: &mut Vec<Membership>,
    kind: MembershipKind,
    identifier: &str,
    now: Timestamp,
) -> Result<bool, String> {
    if AccountId::parse(identifier).is_err() {
        return Err(format!(
            "identifier {identifier:?} must be 32 hex characters"
        ));
    }
    if list
        .iter()
        .any(|x| x.kind == kind && x.identifier == identifier)
    {
        return Ok(false);
    }
    list.push(Membership {
        identifier: identifier.to_owned(),
        kind,
        can_delete: true,
        created_at: now,
    });
    Ok(true)
}

impl<'a> Rules<'a> {
    /// [`Self::access`] with what writes of `kind` need ([`ControlPlane::authorize`]
    /// asks the same).
    fn access_for(
        &self,
        p: &Principal,
        account: &str,
        kind: WriteKind,
    ) -> Result<&'a Account, AccessError> {
        let (need, ents) = kind.needs();
        self.access(p, account, need, ents)
    }

    /// §3.2: account reachable → permission → entitlement.
    fn access(
        &self,
        p: &Principal,
        account: &str,
        need: Need,
        ents: &[Entitlement],
    ) -> Result<&'a Account, AccessError> {
        let id = AccountId::parse(account).map_err(|_| AccessError::Forbidden)?;
        let perms = p.permissions_on(&id).ok_or(AccessError::Forbidden)?;
        let acct = self.st.accounts.get(&id).ok_or(AccessError::Forbidden)?;
        let ok = match need {
            Need::Any(ps) => perms.any(ps),
            Need::All(ps) => perms.all_of(ps),
        };
        if !ok {
            return Err(AccessError::Forbidden);
        }
        if let Some(e) = ents.iter().find(|e| !acct.entitlements.contains(e)) {
            return Err(AccessError::NotEntitled(*e));
        }
        Ok(acct)
    }

    fn custom_view(r: &CustomRegion) -> Region {
        Region {
            id: RegionId::from_uuid(r.definition.id),
            name: r.definition.name.clone(),
            region_key: r.definition.key.clone(),
            created_on: r.created_at,
            modified_on: r.modified_at,
            version: r.version,
            version_created_on: r.version_created_at,
            kind: RegionKind::Custom,
        }
    }

    /// True when `key` is a managed region or one of the account's custom regions.
    fn region_available(&self, account: &AccountId, key: &RegionKey) -> bool {
        self.managed.by_key.contains_key(key)
            || self
                .st
                .region_by_key
                .get(key)
                .and_then(|id| self.st.regions.get(id))
                .is_some_and(|r| &r.account_id == account)
    }

    fn live_binding(&self, account: &AccountId, id: &str) -> Option<&'a BindingRecord> {
        let id = BindingId::parse(id).ok()?;
        self.st
            .bindings
            .get(&id)
            .filter(|b| b.is_live() && &b.account_id == account)
    }

    /// The §9 gate for one IP being added to an address map.
    fn check_ip(
        &self,
        account: &AccountId,
        raw: &str,
        now: Timestamp,
    ) -> Result<IpAddr, IpRefusal> {
        let ip = parse_ip_strict(raw).ok_or_else(|| IpRefusal::InvalidIp(raw.to_owned()))?;
        if self.st.owning_prefix(account, ip).is_none() {
            return Err(IpRefusal::IpNotOwned(ip));
        }
        if let Some(b) = self
            .st
            .live_bindings_covering(account, ip)
            .into_iter()
            .find(|b| now < b.active_at)
        {
            return Err(IpRefusal::Gated {
                ip,
                binding: b.id,
                cidr: b.cidr,
            });
        }
        Ok(ip)
    }

    fn map(&self, account: &AccountId, id: &str) -> Option<&'a AddressMap> {
        let id = AddressMapId::parse(id).ok()?;
        self.st.maps.get(&id).filter(|m| &m.account_id == account)
    }

    fn prefix(&self, account: &AccountId, id: &str) -> Option<&'a Prefix> {
        if id.len() > PrefixId::MAX_INPUT_LEN {
            return None;
        }
        let id = PrefixId::parse(id).ok()?;
        self.st
            .prefixes
            .get(&id)
            .filter(|p| &p.account_id == account)
    }

    fn service_bindings(&self, p: &Prefix, now: Timestamp) -> Vec<ServiceBinding> {
        let mut out = vec![ServiceBinding {
            id: base_binding_id(&p.id),
            cidr: p.cidr,
            provisioning: Provisioning {
                state: ProvisioningState::Active,
            },
            service_id: p.base_service.clone(),
            service_name: service_name(&p.base_service),
        }];
        if let Some(set) = self.st.live_by_prefix.get(&p.id) {
            for (_, id) in set {
                if let Some(b) = self.st.bindings.get(id) {
                    out.push(self.dls_service_binding(p, b, now));
                }
            }
        }
        out
    }

    fn dls_service_binding(&self, p: &Prefix, b: &BindingRecord, now: Timestamp) -> ServiceBinding {
        ServiceBinding {
            id: b.id.to_string(),
            cidr: b.cidr,
            provisioning: Provisioning {
                state: if now >= b.active_at {
                    ProvisioningState::Active
                } else {
                    ProvisioningState::Provisioning
                },
            },
            service_id: p.base_service.clone(),
            service_name: service_name(&p.base_service),
        }
    }
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

/// A kind of write, for [`ControlPlane::authorize`]: what the operations of one resource
/// need from their caller (permissions and entitlements, contract §3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WriteKind {
    /// Creating, changing or deleting a DLS prefix binding.
    Bindings,
    /// Creating a BYOIP prefix or deleting a service binding.
    Prefixes,
    /// Creating or changing an address map.
    AddressMaps,
}

impl WriteKind {
    fn needs(self) -> (Need, &'static [Entitlement]) {
        match self {
            WriteKind::Bindings => (DLS_WRITE, ENT_BINDINGS),
            WriteKind::Prefixes => (PREFIX_WRITE, &[]),
            WriteKind::AddressMaps => (MAP_WRITE, &[]),
        }
    }
}

impl ControlPlane {
    /// Opens a control plane over `store`, loading everything it holds.
    pub fn open(mut store: Box<dyn Store>, config: ControlConfig) -> Result<Self, StoreError> {
        let Loaded {
            version,
            purged_through,
            records,
        } = store.load()?;
        let mut state = State::default();
        for r in records {
            state.apply(r);
        }
        state.version = version;
        state.purged_through = purged_through;
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

    /// The configuration.
    pub fn config(&self) -> &ControlConfig {
        &self.config
    }

    /// Group-commit counters (batches and operations committed).
    pub fn commit_stats(&self) -> CommitStats {
        self.pipe.shared().stats()
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
        rule: impl FnOnce(&Rules<'_>, &mut Ctx<'_>) -> Result<(Vec<Change>, R), E>,
    ) -> Result<R, E> {
        block_on(self.submit_async(rule))
    }

    /// [`Self::submit`] without blocking: the rule runs at the first poll, and the
    /// future then waits for the committer thread.
    async fn submit_async<R, E: From<StoreError>>(
        &self,
        rule: impl FnOnce(&Rules<'_>, &mut Ctx<'_>) -> Result<(Vec<Change>, R), E>,
    ) -> Result<R, E> {
        let (out, ticket) = self.enqueue(rule)?;
        if let Some(t) = ticket {
            t.await?;
        }
        Ok(out)
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

    // ------------------------------------------------------------------ auth

    /// Whether `p` may make writes of `kind` on `account`: the access check those writes
    /// run first (account reachable → permission → entitlement), reading only. The HTTP
    /// layer asks it before reporting a malformed body, so that a caller without access
    /// learns nothing from the body's syntax (contract precedence) without any write
    /// being attempted.
    pub fn authorize(
        &self,
        p: &Principal,
        account: &str,
        kind: WriteKind,
    ) -> Result<(), AccessError> {
        let (need, ents) = kind.needs();
        self.with_rules(|r| r.access(p, account, need, ents).map(drop))
    }

    /// Authenticates a credential (§2). `client_ip` is checked against a token's allowed
    /// ranges.
    pub fn authenticate(
        &self,
        creds: &Credentials,
        client_ip: Option<IpAddr>,
        now: Timestamp,
    ) -> Result<Principal, AuthError> {
        let st = self.read_state();
        auth::authenticate(&st.tokens, &st.users, self.ring(&st), creds, client_ip, now)
    }

    // ------------------------------------------------------------------ DLS regions

    /// `GET /dls/regions`: managed regions plus the account's custom ones, by
    /// `region_key`, optionally filtered by `type` (`managed` / `custom`).
    pub fn list_regions(
        &self,
        p: &Principal,
        account: &str,
        kind: Option<&str>,
        page: &PageRequest,
    ) -> Result<Page<Region>, ListRegionsError> {
        self.with_rules(|r| {
            let acct = r.access(p, account, DLS_READ, ENT_REGIONS)?;
            let kind = match kind {
                None => None,
                Some("managed") => Some(RegionKind::Managed),
                Some("custom") => Some(RegionKind::Custom),
                Some(other) => return Err(ListRegionsError::BadType(other.to_owned())),
            };
            let per_page = page.per_page()?;
            let after = match page.cursor.as_deref().filter(|c| !c.is_empty()) {
                None => None,
                Some(c) => Some(page::decode_region_cursor(c)?),
            };
            let mut all: Vec<Region> = Vec::new();
            if kind != Some(RegionKind::Custom) {
                all.extend(r.managed.by_key.values().cloned());
            }
            if kind != Some(RegionKind::Managed) {
                all.extend(
                    r.st.regions
                        .values()
                        .filter(|c| c.account_id == acct.id)
                        .map(Rules::custom_view),
                );
            }
            all.sort_by(|a, b| a.region_key.cmp(&b.region_key));
            let items: Vec<Region> = all
                .into_iter()
                .filter(|x| after.as_ref().is_none_or(|k| &x.region_key > k))
                .take(per_page as usize + 1)
                .collect();
            Ok(paginate(items, per_page, |x| {
                page::region_cursor(&x.region_key)
            }))
        })
    }

    /// `GET /dls/regions/{id}`: by UUID (any region available to the account) or by a
    /// managed region's key (custom regions are fetchable by UUID only, §5.2).
    pub fn get_region(
        &self,
        p: &Principal,
        account: &str,
        id_or_key: &str,
    ) -> Result<Region, GetRegionError> {
        self.with_rules(|r| {
            let acct = r.access(p, account, DLS_READ, ENT_REGIONS)?;
            let nf = || GetRegionError::NotFound(id_or_key.chars().take(255).collect());
            if let Ok(id) = RegionId::parse(id_or_key) {
                if let Some(k) = r.managed.key_by_id.get(&id) {
                    return Ok(r.managed.by_key[k].clone());
                }
                return r
                    .st
                    .regions
                    .get(&id)
                    .filter(|c| c.account_id == acct.id)
                    .map(Rules::custom_view)
                    .ok_or_else(nf);
            }
            RegionKey::parse(id_or_key)
                .ok()
                .and_then(|k| r.managed.by_key.get(&k).cloned())
                .ok_or_else(nf)
        })
    }

    // ------------------------------------------------------------------ DLS bindings

    /// `GET /dls/regional_services/prefix_bindings`, ordered by `(created_on, id)`.
    pub fn list_bindings(
        &self,
        p: &Principal,
        account: &str,
        page: &PageRequest,
    ) -> Result<Page<Binding>, ListBindingsError> {
        self.with_rules(|r| {
            let acct = r.access(p, account, DLS_READ, ENT_BINDINGS)?;
            let per_page = page.per_page()?;
            let start = match page.cursor.as_deref().filter(|c| !c.is_empty()) {
                None => Bound::Unbounded,
                Some(c) => Bound::Excluded(page::decode_binding_cursor(c)?),
            };
            let items: Vec<&BindingRecord> = match r.st.live_order.get(&acct.id) {
                None => Vec::new(),
                Some(set) => set
                    .range((start, Bound::Unbounded))
                    .take(per_page as usize + 1)
                    .filter_map(|(_, id)| r.st.bindings.get(id))
                    .collect(),
            };
            let page = paginate(items, per_page, |b| {
                page::binding_cursor(b.created_at, b.id)
            });
            Ok(Page {
                items: page.items.into_iter().map(BindingRecord::view).collect(),
                per_page: page.per_page,
                next_cursor: page.next_cursor,
            })
        })
    }

    /// `GET /dls/regional_services/prefix_bindings/{id}`.
    pub fn get_binding(
        &self,
        p: &Principal,
        account: &str,
        id: &str,
    ) -> Result<Binding, GetBindingError> {
        self.with_rules(|r| {
            let acct = r.access(p, account, DLS_READ, ENT_BINDINGS)?;
            r.live_binding(&acct.id, id)
                .map(BindingRecord::view)
                .ok_or_else(|| GetBindingError::NotFound(id.to_owned()))
        })
    }

    write_op! {
        /// `POST /dls/regional_services/prefix_bindings` (§5.5, §7). The binding starts
        /// `provisioning` and becomes active after the propagation delay. A `1200` notice is
        /// added when addresses in the CIDR are already on an address map.
        fn create_binding / create_binding_async(
            &self,
            p: &Principal,
            account: &str,
            input: CreateBinding,
            now: Timestamp,
        ) -> Result<Created<Binding>, CreateBindingError> {
            self.submit_async(|r, ctx| {
                let acct = r.access_for(p, account, WriteKind::Bindings)?;
                // Input validation: presence, then syntax.
                let prefix_id = non_empty(&input.prefix_id)
                    .ok_or(CreateBindingError::MissingField("prefix_id"))?;
                let cidr_text =
                    non_empty(&input.cidr).ok_or(CreateBindingError::MissingField("cidr"))?;
                let key_text = non_empty(&input.region_key)
                    .ok_or(CreateBindingError::MissingField("region_key"))?;
                let key = RegionKey::parse(key_text)
                    .map_err(|_| CreateBindingError::BadRegionKey(key_text.to_owned()))?;
                let cidr = Cidr::parse_strict(cidr_text)?;
                // Existence.
                let prefix = r
                    .prefix(&acct.id, prefix_id)
                    .ok_or_else(|| CreateBindingError::UnknownPrefix(prefix_id.to_owned()))?;
                if prefix.approved != Approval::Approved {
                    return Err(CreateBindingError::PrefixNotApproved(prefix.id.to_string()));
                }
                let whole_prefix = cidr == prefix.cidr;
                if !whole_prefix && !prefix.cidr.strictly_contains(&cidr) {
                    return Err(CreateBindingError::OutsidePrefix {
                        cidr,
                        prefix: prefix.cidr,
                    });
                }
                if !r.region_available(&acct.id, &key) {
                    return Err(CreateBindingError::UnknownRegion(key_text.to_owned()));
                }
                // Conflicts.
                if whole_prefix || r.st.live_by_cidr.contains_key(&(prefix.id.clone(), cidr)) {
                    return Err(CreateBindingError::Conflict(cidr));
                }
                if let Some(limit) = r.cfg.max_bindings_per_prefix {
                    let n = r.st.live_by_prefix.get(&prefix.id).map_or(0, |s| s.len());
                    if n >= limit {
                        return Err(CreateBindingError::TooManyBindings {
                            prefix: prefix.id.to_string(),
                            limit,
                        });
                    }
                }
                let rec = BindingRecord {
                    id: BindingId::from_uuid(ctx.ids.uuid()),
                    account_id: acct.id.clone(),
                    prefix_id: prefix.id.clone(),
                    cidr,
                    region: key,
                    previous_region: None,
                    created_at: now,
                    changed_at: now,
                    active_at: r.cfg.settles_at(now),
                    deleted_at: None,
                    gone_at: None,
                    version: ctx.version,
                };
                let mut messages = Vec::new();
                let in_use =
                    r.st.maps_by_account
                        .get(&acct.id)
                        .into_iter()
                        .flatten()
                        .filter_map(|id| r.st.maps.get(id))
                        .flat_map(|m| m.ips.iter())
                        .find(|ip| cidr.contains_ip(ip.ip));
                if let Some(ip) = in_use {
                    messages.push(Notice {
                        code: 1200,
                        message: format!(
                            "addresses in {cidr} (e.g. {}) are already on an address map; \
                             traffic to them may be reset while the binding propagates",
                            canonical_ip(ip.ip)
                        ),
                    });
                }
                let view = rec.view();
                Ok((
                    vec![Change::Binding(rec)],
                    Created {
                        result: view,
                        messages,
                    },
                ))
            })
            .await
        }
    }

    write_op! {
        /// `PATCH /dls/regional_services/prefix_bindings/{id}` (§5.6). A different region
        /// restarts propagation; the data plane keeps the region in force now until the new
        /// one has propagated. The same region is a no-op.
        fn patch_binding / patch_binding_async(
            &self,
            p: &Principal,
            account: &str,
            id: &str,
            input: UpdateBinding,
            now: Timestamp,
        ) -> Result<Binding, PatchBindingError> {
            self.submit_async(|r, ctx| {
                let acct = r.access_for(p, account, WriteKind::Bindings)?;
                if let Some(f) = input.other_fields.first() {
                    return Err(PatchBindingError::UnexpectedField(f.clone()));
                }
                let key_text = non_empty(&input.region_key)
                    .ok_or(PatchBindingError::MissingField("region_key"))?;
                let key = RegionKey::parse(key_text)
                    .map_err(|_| PatchBindingError::BadRegionKey(key_text.to_owned()))?;
                let b = r
                    .live_binding(&acct.id, id)
                    .ok_or_else(|| PatchBindingError::NotFound(id.to_owned()))?;
                if !r.region_available(&acct.id, &key) {
                    return Err(PatchBindingError::UnknownRegion(key_text.to_owned()));
                }
                if b.region == key {
                    return Ok((Vec::new(), b.view()));
                }
                let mut nb = b.clone();
                nb.previous_region = b.region_in_force(now).cloned();
                nb.region = key;
                nb.changed_at = now.max(b.created_at);
                nb.active_at = r.cfg.settles_at(nb.changed_at);
                nb.version = ctx.version;
                let view = nb.view();
                Ok((vec![Change::Binding(nb)], view))
            })
            .await
        }
    }

    write_op! {
        /// `DELETE /dls/regional_services/prefix_bindings/{id}` (§5.7). Gone from the API at
        /// once; the data plane keeps what was in force until the deletion has propagated.
        fn delete_binding / delete_binding_async(
            &self,
            p: &Principal,
            account: &str,
            id: &str,
            now: Timestamp,
        ) -> Result<(), DeleteBindingError> {
            self.submit_async(|r, ctx| {
                let acct = r.access_for(p, account, WriteKind::Bindings)?;
                let b = r
                    .live_binding(&acct.id, id)
                    .ok_or_else(|| DeleteBindingError::NotFound(id.to_owned()))?;
                let mut nb = b.clone();
                let at = now.max(b.changed_at);
                nb.deleted_at = Some(at);
                nb.gone_at = Some(r.cfg.settles_at(at));
                nb.version = ctx.version;
                Ok((vec![Change::Binding(nb)], ()))
            })
            .await
        }
    }

    // ------------------------------------------------------------------ Addressing

    /// `GET /addressing/prefixes`.
    pub fn list_prefixes(
        &self,
        p: &Principal,
        account: &str,
    ) -> Result<Vec<PrefixView>, AddressingReadError> {
        self.with_rules(|r| {
            let acct = r.access(p, account, PREFIX_READ, &[])?;
            let mut v: Vec<&Prefix> =
                r.st.prefixes_by_account
                    .get(&acct.id)
                    .into_iter()
                    .flatten()
                    .filter_map(|id| r.st.prefixes.get(id))
                    .collect();
            v.sort_by_key(|p| (p.created_at, p.id.clone()));
            Ok(v.into_iter().map(Prefix::view).collect())
        })
    }

    /// `GET /addressing/prefixes/{id}`.
    pub fn get_prefix(
        &self,
        p: &Principal,
        account: &str,
        prefix_id: &str,
    ) -> Result<PrefixView, AddressingReadError> {
        self.with_rules(|r| {
            let acct = r.access(p, account, PREFIX_READ, &[])?;
            r.prefix(&acct.id, prefix_id)
                .map(Prefix::view)
                .ok_or_else(|| AddressingReadError::PrefixNotFound(prefix_id.to_owned()))
        })
    }

    write_op! {
        /// `POST /addressing/prefixes`: creates a prefix pending approval (`"P"`); approval
        /// is an admin step ([`ControlPlane::approve_prefix`]).
        fn create_prefix / create_prefix_async(
            &self,
            p: &Principal,
            account: &str,
            input: CreatePrefix,
            now: Timestamp,
        ) -> Result<PrefixView, CreatePrefixError> {
            self.submit_async(|r, ctx| {
                let acct = r.access_for(p, account, WriteKind::Prefixes)?;
                let cidr = non_empty(&input.cidr).ok_or(CreatePrefixError::MissingField("cidr"))?;
                let asn = input.asn.ok_or(CreatePrefixError::MissingField("asn"))?;
                let cidr = Cidr::parse_strict(cidr)?;
                let asn = u32::try_from(asn)
                    .ok()
                    .filter(|a| *a > 0)
                    .ok_or_else(|| CreatePrefixError::BadAsn(asn.to_string()))?;
                if r.st.prefixes.values().any(|x| x.cidr.overlaps(&cidr)) {
                    return Err(CreatePrefixError::PrefixOverlap(cidr));
                }
                let pr = Prefix {
                    id: PrefixId::parse(&ctx.ids.hex32()).map_err(StoreError::internal)?,
                    account_id: acct.id.clone(),
                    cidr,
                    asn,
                    description: input.description.clone().unwrap_or_default(),
                    approved: Approval::Pending,
                    base_service: service_by_name("CDN").ok_or_else(|| StoreError::internal("no CDN"))?,
                    created_at: now,
                    modified_at: now,
                };
                let v = pr.view();
                Ok((vec![Change::Prefix(pr)], v))
            })
            .await
        }
    }

    /// `GET /addressing/services`.
    pub fn list_services(
        &self,
        p: &Principal,
        account: &str,
    ) -> Result<Vec<Service>, AddressingReadError> {
        self.with_rules(|r| {
            r.access(p, account, PREFIX_READ, &[])?;
            Ok(SERVICES
                .iter()
                .filter_map(|(id, name)| {
                    Some(Service {
                        id: ServiceId::parse(id).ok()?,
                        name: (*name).to_owned(),
                    })
                })
                .collect())
        })
    }

    /// `GET /addressing/prefixes/{id}/bindings`: the base binding, then each live DLS
    /// binding (same id) with its provisioning state at `now`.
    pub fn list_service_bindings(
        &self,
        p: &Principal,
        account: &str,
        prefix_id: &str,
        now: Timestamp,
    ) -> Result<Vec<ServiceBinding>, AddressingReadError> {
        self.with_rules(|r| {
            let acct = r.access(p, account, SB_READ, &[])?;
            let pr = r
                .prefix(&acct.id, prefix_id)
                .ok_or_else(|| AddressingReadError::PrefixNotFound(prefix_id.to_owned()))?;
            Ok(r.service_bindings(pr, now))
        })
    }

    /// `GET /addressing/prefixes/{id}/bindings/{id}`: where a DLS binding's status lives
    /// (`provisioning.state`).
    pub fn get_service_binding(
        &self,
        p: &Principal,
        account: &str,
        prefix_id: &str,
        binding_id: &str,
        now: Timestamp,
    ) -> Result<ServiceBinding, AddressingReadError> {
        self.with_rules(|r| {
            let acct = r.access(p, account, SB_READ, &[])?;
            let pr = r
                .prefix(&acct.id, prefix_id)
                .ok_or_else(|| AddressingReadError::PrefixNotFound(prefix_id.to_owned()))?;
            if binding_id == base_binding_id(&pr.id) {
                return Ok(r.service_bindings(pr, now).remove(0));
            }
            r.live_binding(&acct.id, binding_id)
                .filter(|b| b.prefix_id == pr.id)
                .map(|b| r.dls_service_binding(pr, b, now))
                .ok_or_else(|| AddressingReadError::NotFound(binding_id.to_owned()))
        })
    }

    /// `DELETE /addressing/prefixes/{id}/bindings/{id}`: DLS-owned bindings are refused
    /// (400 / 1116, delete via `/dls`), and so is the base binding. Other service bindings
    /// are not modelled, so this never deletes anything.
    pub fn delete_service_binding(
        &self,
        p: &Principal,
        account: &str,
        prefix_id: &str,
        binding_id: &str,
    ) -> Result<(), DeleteServiceBindingError> {
        self.with_rules(|r| {
            let acct = r.access_for(p, account, WriteKind::Prefixes)?;
            let pr = r
                .prefix(&acct.id, prefix_id)
                .ok_or_else(|| DeleteServiceBindingError::PrefixNotFound(prefix_id.to_owned()))?;
            if binding_id == base_binding_id(&pr.id) {
                return Err(DeleteServiceBindingError::BaseBinding(
                    binding_id.to_owned(),
                ));
            }
            match r
                .live_binding(&acct.id, binding_id)
                .filter(|b| b.prefix_id == pr.id)
            {
                Some(b) => Err(DeleteServiceBindingError::ManagedByDls(b.id)),
                None => Err(DeleteServiceBindingError::NotFound(binding_id.to_owned())),
            }
        })
    }

    // ------------------------------------------------------------------ address maps

    write_op! {
        /// `POST /addressing/address_maps`. Atomic: if any IP is refused (invalid 1305, not
        /// owned 1302, gated 1301 — §9), nothing is created and the error names the index.
        fn create_address_map / create_address_map_async(
            &self,
            p: &Principal,
            account: &str,
            input: CreateAddressMap,
            now: Timestamp,
        ) -> Result<AddressMap, CreateAddressMapError> {
            self.submit_async(|r, ctx| {
                let acct = r.access_for(p, account, WriteKind::AddressMaps)?;
                if !input.default_sni.as_deref().is_none_or(crate::inputs::is_sni) {
                    return Err(CreateAddressMapError::DefaultSni);
                }
                let mut ips: Vec<AddressMapIp> = Vec::new();
                for (index, raw) in input.ips.iter().enumerate() {
                    let ip = r
                        .check_ip(&acct.id, raw, now)
                        .map_err(|refusal| CreateAddressMapError::Ip { index, refusal })?;
                    if !ips.iter().any(|x| x.ip == ip) {
                        ips.push(AddressMapIp {
                            ip,
                            created_at: now,
                        });
                    }
                }
                let mut memberships: Vec<Membership> = Vec::new();
                for (index, m) in input.memberships.iter().enumerate() {
                    let missing = |field: &'static str| {
                        CreateAddressMapError::MembershipFieldMissing { index, field }
                    };
                    let kind = non_empty(&m.kind).ok_or_else(|| missing("kind"))?;
                    let identifier =
                        non_empty(&m.identifier).ok_or_else(|| missing("identifier"))?;
                    let kind = MembershipKind::parse(kind).ok_or_else(|| {
                        CreateAddressMapError::Membership {
                            index,
                            reason: format!("kind must be \"zone\" or \"account\", got {kind:?}"),
                        }
                    })?;
                    add_membership(&mut memberships, kind, identifier, now)
                        .map_err(|reason| CreateAddressMapError::Membership { index, reason })?;
                }
                let map = AddressMap {
                    id: AddressMapId::parse(&ctx.ids.hex32()).map_err(StoreError::internal)?,
                    account_id: acct.id.clone(),
                    description: input.description.clone(),
                    default_sni: input.default_sni.clone(),
                    enabled: input.enabled.unwrap_or(false),
                    can_delete: true,
                    can_modify_ips: true,
                    created_at: now,
                    modified_at: now,
                    ips,
                    memberships,
                };
                Ok((vec![Change::AddressMap(map.clone())], map))
            })
            .await
        }
    }

    /// `GET /addressing/address_maps` (by creation time).
    pub fn list_address_maps(
        &self,
        p: &Principal,
        account: &str,
    ) -> Result<Vec<AddressMap>, AddressMapError> {
        self.with_rules(|r| {
            let acct = r.access(p, account, MAP_READ, &[])?;
            let mut v: Vec<AddressMap> =
                r.st.maps_by_account
                    .get(&acct.id)
                    .into_iter()
                    .flatten()
                    .filter_map(|id| r.st.maps.get(id).cloned())
                    .collect();
            v.sort_by(|a, b| (a.created_at, &a.id).cmp(&(b.created_at, &b.id)));
            Ok(v)
        })
    }

    /// `GET /addressing/address_maps/{id}`.
    pub fn get_address_map(
        &self,
        p: &Principal,
        account: &str,
        map_id: &str,
    ) -> Result<AddressMap, AddressMapError> {
        self.with_rules(|r| {
            let acct = r.access(p, account, MAP_READ, &[])?;
            r.map(&acct.id, map_id)
                .cloned()
                .ok_or_else(|| AddressMapError::MapNotFound(map_id.to_owned()))
        })
    }

    /// Loads an address map (`not_found` when the account has no such map), lets `edit`
    /// change it and commits it if it changed.
    async fn map_write_async<E: From<AccessError> + From<StoreError>>(
        &self,
        p: &Principal,
        account: &str,
        map_id: &str,
        now: Timestamp,
        not_found: fn(String) -> E,
        edit: impl FnOnce(&Rules<'_>, &mut AddressMap) -> Result<bool, E>,
    ) -> Result<AddressMap, E> {
        self.map_write_checked_async(p, account, map_id, now, None, not_found, edit)
            .await
    }

    /// [`Self::map_write_async`] with a validation error found in the input alone, which
    /// the contract reports after access and before existence.
    #[allow(clippy::too_many_arguments)]
    async fn map_write_checked_async<E: From<AccessError> + From<StoreError>>(
        &self,
        p: &Principal,
        account: &str,
        map_id: &str,
        now: Timestamp,
        invalid: Option<E>,
        not_found: fn(String) -> E,
        edit: impl FnOnce(&Rules<'_>, &mut AddressMap) -> Result<bool, E>,
    ) -> Result<AddressMap, E> {
        self.submit_async(|r, _ctx| {
            let acct = r.access_for(p, account, WriteKind::AddressMaps)?;
            if let Some(e) = invalid {
                return Err(e);
            }
            let mut m = r
                .map(&acct.id, map_id)
                .cloned()
                .ok_or_else(|| not_found(map_id.to_owned()))?;
            if !edit(r, &mut m)? {
                return Ok((Vec::new(), m));
            }
            m.modified_at = now;
            Ok((vec![Change::AddressMap(m.clone())], m))
        })
        .await
    }

    write_op! {
        /// `PATCH /addressing/address_maps/{id}` (description, enabled, default_sni). Never
        /// gated.
        fn update_address_map / update_address_map_async(
            &self,
            p: &Principal,
            account: &str,
            map_id: &str,
            input: UpdateAddressMap,
            now: Timestamp,
        ) -> Result<AddressMap, AddressMapError> {
            // Another key than the three: after access, before existence (contract §6.4,
            // as the binding PATCH's 1113).
            let invalid = input
                .other_fields
                .first()
                .map(|f| AddressMapError::UnexpectedField(f.clone()));
            self.map_write_checked_async(p, account, map_id, now, invalid, AddressMapError::MapNotFound, |_, m| {
                let before = m.clone();
                if let Some(d) = input.description {
                    m.description = d;
                }
                if let Some(e) = input.enabled {
                    m.enabled = e;
                }
                if let Some(s) = input.default_sni {
                    if !s.as_deref().is_none_or(crate::inputs::is_sni) {
                        return Err(AddressMapError::Invalid(
                            "default_sni must be a hostname".into(),
                        ));
                    }
                    m.default_sni = s;
                }
                Ok(*m != before)
            })
            .await
        }
    }

    write_op! {
        /// `DELETE /addressing/address_maps/{id}`: the map must be disabled (400 / 1304).
        fn delete_address_map / delete_address_map_async(
            &self,
            p: &Principal,
            account: &str,
            map_id: &str,
            _now: Timestamp,
        ) -> Result<(), AddressMapError> {
            self.submit_async(|r, _ctx| {
                let acct = r.access_for(p, account, WriteKind::AddressMaps)?;
                let m = r
                    .map(&acct.id, map_id)
                    .ok_or_else(|| AddressMapError::MapNotFound(map_id.to_owned()))?;
                if !m.can_delete {
                    return Err(AddressMapError::Managed(map_id.to_owned()));
                }
                if m.enabled {
                    return Err(AddressMapError::StillEnabled(map_id.to_owned()));
                }
                Ok((vec![Change::DeleteAddressMap(m.id.clone())], ()))
            })
            .await
        }
    }

    write_op! {
        /// `PUT /addressing/address_maps/{id}/ips/{ip}`: gated (§9, 409 / 1301); the IP must
        /// be in an owned prefix (400 / 1302). Adding an IP already on the map is a no-op.
        fn add_address_map_ip / add_address_map_ip_async(
            &self,
            p: &Principal,
            account: &str,
            map_id: &str,
            ip: &str,
            now: Timestamp,
        ) -> Result<AddressMap, AddIpError> {
            self.map_write_async(p, account, map_id, now, AddIpError::MapNotFound, |r, m| {
                let ip = r.check_ip(&m.account_id, ip, now)?;
                if m.ips.iter().any(|x| x.ip == ip) {
                    return Ok(false);
                }
                m.ips.push(AddressMapIp {
                    ip,
                    created_at: now,
                });
                Ok(true)
            })
            .await
        }
    }

    write_op! {
        /// `DELETE /addressing/address_maps/{id}/ips/{ip}` (never gated).
        fn remove_address_map_ip / remove_address_map_ip_async(
            &self,
            p: &Principal,
            account: &str,
            map_id: &str,
            ip: &str,
            now: Timestamp,
        ) -> Result<AddressMap, AddressMapError> {
            self.map_write_async(p, account, map_id, now, AddressMapError::MapNotFound, |_, m| {
                let addr = parse_ip_strict(ip).ok_or_else(|| {
                    AddressMapError::Invalid(format!("{ip:?} is not a valid IP address"))
                })?;
                let n = m.ips.len();
                m.ips.retain(|x| x.ip != addr);
                if m.ips.len() == n {
                    return Err(AddressMapError::IpNotFound(ip.to_owned()));
                }
                Ok(true)
            })
            .await
        }
    }

    write_op! {
        /// `PUT /addressing/address_maps/{id}/zones/{zone}` or `.../accounts/{account}`.
        fn add_address_map_membership / add_address_map_membership_async(
            &self,
            p: &Principal,
            account: &str,
            map_id: &str,
            kind: MembershipKind,
            identifier: &str,
            now: Timestamp,
        ) -> Result<AddressMap, AddressMapError> {
            self.map_write_async(p, account, map_id, now, AddressMapError::MapNotFound, |_, m| {
                add_membership(&mut m.memberships, kind, identifier, now)
                    .map_err(AddressMapError::Invalid)
            })
            .await
        }
    }

    write_op! {
        /// `DELETE /addressing/address_maps/{id}/zones/{zone}` or `.../accounts/{account}`.
        fn remove_address_map_membership / remove_address_map_membership_async(
            &self,
            p: &Principal,
            account: &str,
            map_id: &str,
            kind: MembershipKind,
            identifier: &str,
            now: Timestamp,
        ) -> Result<AddressMap, AddressMapError> {
            self.map_write_async(p, account, map_id, now, AddressMapError::MapNotFound, |_, m| {
                let n = m.memberships.len();
                m.memberships
                    .retain(|x| !(x.kind == kind && x.identifier == identifier));
                if m.memberships.len() == n {
                    return Err(AddressMapError::MembershipNotFound(identifier.to_owned()));
                }
                Ok(true)
            })
            .await
        }
    }

    // ------------------------------------------------------------------ admin / seeding

    /// Finishes a live binding's propagation now (`/__sim/bindings/{id}/activate`).
    /// Already active: no-op.
    pub fn force_activate(&self, binding_id: &str, now: Timestamp) -> Result<(), AdminError> {
        self.submit(|r, ctx| {
            let b = BindingId::parse(binding_id)
                .ok()
                .and_then(|id| r.st.bindings.get(&id))
                .filter(|b| b.is_live())
                .ok_or_else(|| AdminError::NotFound(format!("binding {binding_id}")))?;
            if now >= b.active_at {
                return Ok((Vec::new(), ()));
            }
            let mut nb = b.clone();
            nb.active_at = now.max(b.changed_at);
            nb.version = ctx.version;
            Ok((vec![Change::Binding(nb)], ()))
        })
    }

    /// Creates live bindings in bulk through the same rules as [`Self::create_binding`]
    /// (system principal), in one commit. For benchmarks and simulations that need many
    /// bindings fast. Stops at the first refused item (nothing is committed then).
    pub fn bulk_create_bindings(
        &self,
        account: &str,
        items: &[(String, String, String)],
        now: Timestamp,
    ) -> Result<Vec<BindingId>, (usize, CreateBindingError)> {
        let p = Principal::system();
        let res = self.submit(|r, ctx| -> Result<_, BulkError> {
            let mut st_extra: Vec<BindingRecord> = Vec::with_capacity(items.len());
            let mut seen: std::collections::HashSet<(PrefixId, Cidr)> = Default::default();
            let acct = r
                .access(&p, account, DLS_WRITE, ENT_BINDINGS)
                .map_err(|e| BulkError((0, e.into())))?;
            for (i, (prefix_id, cidr, key)) in items.iter().enumerate() {
                let err = |e: CreateBindingError| BulkError((i, e));
                let key = RegionKey::parse(key)
                    .map_err(|_| err(CreateBindingError::BadRegionKey(key.clone())))?;
                let cidr = Cidr::parse_strict(cidr).map_err(|e| err(e.into()))?;
                let prefix = r
                    .prefix(&acct.id, prefix_id)
                    .ok_or_else(|| err(CreateBindingError::UnknownPrefix(prefix_id.clone())))?;
                if prefix.approved != Approval::Approved {
                    return Err(err(CreateBindingError::PrefixNotApproved(
                        prefix_id.clone(),
                    )));
                }
                if !prefix.cidr.strictly_contains(&cidr) {
                    return Err(err(if cidr == prefix.cidr {
                        CreateBindingError::Conflict(cidr)
                    } else {
                        CreateBindingError::OutsidePrefix {
                            cidr,
                            prefix: prefix.cidr,
                        }
                    }));
                }
                if !r.region_available(&acct.id, &key) {
                    return Err(err(CreateBindingError::UnknownRegion(key.to_string())));
                }
                let k = (prefix.id.clone(), cidr);
                if r.st.live_by_cidr.contains_key(&k) || !seen.insert(k) {
                    return Err(err(CreateBindingError::Conflict(cidr)));
                }
                st_extra.push(BindingRecord {
                    id: BindingId::from_uuid(ctx.ids.uuid()),
                    account_id: acct.id.clone(),
                    prefix_id: prefix.id.clone(),
                    cidr,
                    region: key,
                    previous_region: None,
                    created_at: now,
                    changed_at: now,
                    active_at: r.cfg.settles_at(now),
                    deleted_at: None,
                    gone_at: None,
                    version: ctx.version,
                });
            }
            let ids = st_extra.iter().map(|b| b.id).collect();
            Ok((st_extra.into_iter().map(Change::Binding).collect(), ids))
        });
        res.map_err(|e| e.0)
    }

    // ------------------------------------------------------------------ change feed

    /// The global version: bumped by every committed change.
    pub fn version(&self) -> u64 {
        self.read_state().version
    }

    /// The bindings in force at time `at` in the current version (§10): for each binding,
    /// the region the data plane applies at `at`. A fresh binding is not in force until
    /// active; a re-pointed one keeps its previous region until the change has
    /// propagated; a deleted one keeps what was in force at its deletion until the
    /// deletion has propagated. Sorted by CIDR, then id.
    pub fn bindings_in_force(&self, at: Timestamp) -> BindingSnapshot {
        let st = self.read_state();
        let mut entries: Vec<InForce> = st
            .bindings
            .values()
            .filter_map(|b| {
                b.region_in_force(at).map(|k| InForce {
                    binding_id: b.id,
                    cidr: b.cidr,
                    region_key: k.clone(),
                })
            })
            .collect();
        let version = st.version;
        drop(st);
        entries.sort_unstable_by_key(|e| (e.cidr, e.binding_id));
        BindingSnapshot {
            version,
            at,
            entries,
        }
    }

    /// The earliest time after `t` at which [`Self::bindings_in_force`] can change
    /// without a new commit (a propagation completing), if any.
    pub fn next_transition_after(&self, t: Timestamp) -> Option<Timestamp> {
        let st = self.read_state();
        st.bindings
            .values()
            .flat_map(|b| [Some(b.active_at), b.gone_at])
            .flatten()
            .filter(|x| *x > t && *x != AWAITING_EDGES)
            .min()
    }

    /// Bindings whose record changed after `version` (latest state each; tombstones
    /// included), and the current version.
    ///
    /// A reader whose `version` is older than the newest purged tombstone
    /// ([`Self::purge_tombstones`]) gets [`FeedError::TooFarBehind`]: a diff would miss
    /// that deletion, so it must re-read everything ([`Self::bindings_in_force`]) and
    /// follow on from that snapshot's version.
    pub fn changes_since(&self, version: u64) -> Result<ChangeSet, FeedError> {
        let st = self.read_state();
        if version < st.purged_through {
            return Err(FeedError::TooFarBehind {
                since: version,
                purged_through: st.purged_through,
            });
        }
        let bindings = st
            .by_version
            .range((
                Bound::Excluded((version, BindingId::from_uuid(uuid::Uuid::max()))),
                Bound::Unbounded,
            ))
            .filter_map(|(_, id)| st.bindings.get(id).cloned())
            .collect();
        Ok(ChangeSet {
            version: st.version,
            bindings,
        })
    }

    /// Forgets the deleted bindings whose deletion propagated (`gone_at`) at least
    /// [`ControlConfig::tombstone_retention`] before `now`, in memory and in the store,
    /// in one commit. Returns how many were purged. The server calls it periodically;
    /// without it tombstones would accumulate with every delete.
    pub fn purge_tombstones(&self, now: Timestamp) -> Result<usize, StoreError> {
        block_on(self.purge_tombstones_async(now))
    }

    /// [`Self::purge_tombstones`] for async callers.
    pub async fn purge_tombstones_async(&self, now: Timestamp) -> Result<usize, StoreError> {
        let retention = self.config.tombstone_retention;
        self.submit_async(|r, _ctx| {
            let changes: Vec<Change> =
                r.st.by_gone_at
                    .iter()
                    .take_while(|(gone, _)| gone.plus(retention) <= now)
                    .map(|(_, id)| Change::PurgeBinding(*id))
                    .collect();
            let n = changes.len();
            Ok::<_, StoreError>((changes, n))
        })
        .await
    }

    /// The highest version of a purged binding (0: none): [`Self::changes_since`] from a
    /// version below it is refused.
    pub fn purged_through(&self) -> u64 {
        self.read_state().purged_through
    }

    /// Every stored binding record (live, and deleted ones not yet purged), by
    /// ascending version: for in-process readers that want all of them.
    pub fn binding_records(&self) -> Vec<BindingRecord> {
        let st = self.read_state();
        st.by_version
            .iter()
            .filter_map(|(_, id)| st.bindings.get(id).cloned())
            .collect()
    }

    /// Binding counts by lifecycle state at `at` (metrics).
    pub fn binding_counts(&self, at: Timestamp) -> BindingCounts {
        let st = self.read_state();
        let mut c = BindingCounts::default();
        for b in st.bindings.values() {
            c.add(b.state_at(at));
        }
        c
    }

    /// One binding's stored record (live or tombstone), for the simulator and the admin
    /// API.
    pub fn binding_record(&self, id: &BindingId) -> Option<BindingRecord> {
        self.read_state().bindings.get(id).cloned()
    }

    /// A region's definition by key: managed, or any account's custom region (keys are
    /// globally unique). What the data plane needs to resolve members.
    pub fn region_definition(&self, key: &RegionKey) -> Option<RegionDefinition> {
        if let Some(d) = self.config.reference.region(key) {
            return Some(d.clone());
        }
        let st = self.read_state();
        st.region_by_key
            .get(key)
            .and_then(|id| st.regions.get(id))
            .map(|r| r.definition.clone())
    }

    /// Every region definition: managed ones, then custom ones by key.
    pub fn region_definitions(&self) -> Vec<RegionDefinition> {
        let mut v: Vec<RegionDefinition> = self.config.reference.regions().to_vec();
        let st = self.read_state();
        let mut custom: Vec<RegionDefinition> =
            st.regions.values().map(|r| r.definition.clone()).collect();
        custom.sort_by(|a, b| a.key.cmp(&b.key));
        v.extend(custom);
        v
    }

    /// Every durable record (deterministic order) and the version: two control planes
    /// hold the same state iff their dumps are equal.
    pub fn dump(&self) -> Loaded {
        let st = self.read_state();
        Loaded {
            version: st.version,
            purged_through: st.purged_through,
            records: st.dump(),
        }
    }

    /// The ids of the accounts in the store (sorted).
    pub fn account_ids(&self) -> Vec<AccountId> {
        let st = self.read_state();
        let s: BTreeSet<AccountId> = st.accounts.keys().cloned().collect();
        s.into_iter().collect()
    }
}

/// Error plumbing for [`ControlPlane::bulk_create_bindings`].
struct BulkError((usize, CreateBindingError));

impl From<StoreError> for BulkError {
    fn from(e: StoreError) -> Self {
        BulkError((usize::MAX, CreateBindingError::Store(e)))
    }
}

impl From<(usize, CreateBindingError)> for BulkError {
    fn from(e: (usize, CreateBindingError)) -> Self {
        BulkError(e)
    }
}

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

mod edges;
mod fixture;
mod seeding;

pub use edges::{EdgeNodeError, EdgeNodeStatus, EdgeRegistryView};

pub use fixture::{RestoreError, TestAccount, TestAccountRequest};

#[cfg(test)]
mod tests;
