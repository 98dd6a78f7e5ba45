//! # inregion-control: the control plane
//!
//! The DLS API's rules (regions, prefix bindings) and the slice of Addressing they touch
//! (BYOIP prefixes, service-binding status, address maps), with authentication,
//! permissions, entitlements, pagination, a durable store and a change feed for the data
//! plane. The HTTP layer (`inregion-api`) only parses requests, calls a
//! [`ControlPlane`] method and maps the typed error through [`ApiError`] (`code()`,
//! `http_status()`); the simulator calls the same methods with a [`ManualClock`]'s time.
//!
//! ```text
//!   inregion-api (HTTP)      simulator / library users
//!          │ Credentials, raw inputs (Option<String>), now
//!          ▼
//!   ControlPlane ── authenticate ─► Principal
//!     │  reads:  Rules over the durable State (RwLock, in memory)
//!     │  writes: Rules over the speculative State ─► Commit (record upserts, version n)
//!     │          ─► group commit ─► Store::commit (one transaction, one fsync)
//!     │          ─► applied to the durable State ─► acknowledged
//!     ▼
//!   Store trait ── SqliteStore (default: WAL, a transaction and an fsync per batch,
//!               │    storage rows of its own, migrations, constraints)
//!               ├─ EtcdStore (replicas sharing one etcd cluster; a watch keeps each
//!               │    replica's state current)
//!               └─ MemoryStore (tests, simulations)
//!     │
//!     ▼ change feed: version(), bindings_in_force(t), changes_since(v)
//!   data plane (inregion-edge): compiles a region table per data center
//! ```
//!
//! ## Invariants
//!
//! - Values are parsed once, at this crate's boundary, into checked types
//!   ([`inregion_model`]: [`Cidr`], [`RegionKey`], ids, [`Timestamp`]).
//! - Every check runs in the contract's order (§3.2): account reachable by the principal
//!   → permission → entitlement → input validation → existence → conflict. A refused
//!   request changes nothing.
//! - Writes are serialized; an acknowledged write is durable (the store's commit
//!   returned) and only then visible to readers.
//! - Time is an argument. A binding's lifecycle (provisioning → active; deleting → gone)
//!   is derived from its timestamps ([`BindingRecord::state_at`],
//!   [`BindingRecord::region_in_force`]); nothing runs in the background.
//! - Each committed operation bumps the global version by one.
//! - Only keyed digests (HMAC-SHA256, the store's [`TokenKey`]) of token secrets and
//!   global keys are stored.
//! - Deleted bindings are kept [`ControlConfig::tombstone_retention`] after their
//!   deletion propagated, then purged ([`ControlPlane::purge_tombstones`]); a change-feed
//!   reader further behind is told to re-read everything, never given a wrong diff.
//!
//! ## Where to start reading
//!
//! [`ControlPlane`] (`plane/`): every operation and its rules. `pipeline.rs`: the
//! committer thread and the tickets writers wait on (blocking or `.await`). Then
//! `records.rs` (the domain records and API views), `error.rs` (the code table),
//! `store/` (`sqlite/`; `rows.rs` for what is on disk).
//!
//! How it is checked, besides the unit tests beside each rule: `tests/model.rs` runs
//! random operations against a plain model over both local stores (and, over the memory
//! store, with commit and disk failures injected at random operations);
//! `state/tests.rs` checks every index of the [`State`] against scans of its records
//! after every change; `store/round_trip.rs` requires every store (SQLite, a snapshot,
//! the etcd layout) to load back records with arbitrary field values exactly;
//! `tests/crash.rs` kills a writing process and counts what was acknowledged;
//! `tests/disk_full.rs` fills a real (tmpfs) disk; `tests/fsync_error.rs` makes the
//! disk fail an fsync at a commit (an `LD_PRELOAD` shim) and checks that writes halt
//! until a restart settles it ([`ControlPlane::halted`]).
//!
//! ## Public surface
//!
//! Modules are private; what the crate offers is re-exported here by name: the
//! [`ControlPlane`] and its configuration ([`ControlConfig`], [`Activation`],
//! [`EdgeRegistryConfig`]); the raw inputs of its operations ([`CreateBinding`], ...);
//! the records and the API views they serialize to ([`BindingRecord`], [`Binding`], ...);
//! one error enum per operation, each an [`ApiError`]; authentication ([`Credentials`],
//! [`Principal`], [`TokenKey`]); seeding documents ([`SeedConfig`]); fault injection
//! rules ([`FaultSet`]); the store trait and its backends ([`Store`], [`SqliteStore`],
//! [`EtcdStore`], [`MemoryStore`]) and snapshots ([`Snapshot`]); the change feed
//! ([`BindingSnapshot`], [`ChangeSet`]); and the model's checked values it takes and
//! returns. [`schema`] holds the OpenAPI schemas of the inputs that the HTTP layer
//! documents.

#![warn(missing_docs)]
#![forbid(unsafe_code)]

mod auth;
mod error;
mod faults;
mod feed;
mod inputs;
mod page;
mod pipeline;
mod plane;
mod records;
pub mod schema;
mod seed;
mod state;
mod store;

pub use auth::{
    is_token_syntax, AuthError, Credentials, HashScheme, Principal, SecretHash, Subject, TokenKey,
    TokenRecord, UserRecord,
};
pub use error::{
    AccessError, AddIpError, AddressMapError, AddressingReadError, AdminError, ApiError,
    CreateAddressMapError, CreateBindingError, CreatePrefixError, DeleteBindingError,
    DeleteServiceBindingError, GetBindingError, GetRegionError, IpRefusal, ListBindingsError,
    ListRegionsError, PageError, PatchBindingError, StoreError, INTERNAL_CODE,
};
pub use faults::{FaultAction, FaultError, FaultRule, FaultSet, FaultSpec, FAULT_ID_PATTERN};
pub use feed::{BindingCounts, BindingSnapshot, ChangeSet, FeedError, InForce};
pub use inputs::{
    is_sni, CreateAddressMap, CreateBinding, CreatePrefix, MembershipInput, UpdateAddressMap,
    UpdateBinding, WrongType, SNI_PATTERN,
};
pub use page::{Page, PageRequest, DEFAULT_PER_PAGE, MAX_PER_PAGE};
pub use pipeline::{latency_bucket, AtomicHistogram, CommitStats, LATENCY_BUCKETS};
pub use plane::{
    base_binding_id, Activation, ControlConfig, ControlPlane, Created, EdgeNodeError,
    EdgeNodeStatus, EdgeRegistryConfig, EdgeRegistryView, Notice, ReplicaStats, RestoreError,
    TestAccount, TestAccountRequest, WriteKind, SERVICES,
};
pub use records::{
    Account, AddressMap, AddressMapIp, Approval, Binding, BindingRecord, BindingState,
    CustomRegion, EdgeNodeRecord, Membership, MembershipKind, Prefix, PrefixView, Provisioning,
    ProvisioningState, Region, Service, ServiceBinding, AWAITING_EDGES,
};
pub use seed::{AccountSeed, PrefixSeed, RegionSeed, SeedConfig, TokenSeed, UserSeed};
pub use state::{Change, Commit, State};
pub use store::{
    Durability, EtcdConfig, EtcdStore, EtcdUrlError, Loaded, MemoryStore, Snapshot, SnapshotError,
    SqliteStore, Store, DEFAULT_ETCD_PREFIX, SNAPSHOT_FORMAT, SNAPSHOT_FORMAT_VERSION,
};

pub use inregion_model::{
    AccountId, AddressMapId, BindingId, Cidr, CidrError, Clock, Entitlement, ManualClock,
    Permission, PermissionSet, PrefixId, RegionId, RegionKey, RegionKind, Role, ServiceId,
    SystemClock, Timestamp, TokenId,
};
