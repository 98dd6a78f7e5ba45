//! Typed errors, one enum per operation, each variant mapped 1:1 to a row of the
//! contract's error table (§12) through [`ApiError`].
//!
//! | code | HTTP | variants |
//! | --- | --- | --- |
//! | 1000 | 500 / 503 | `Store(_)` (any operation) — internal; 503 when a shared store (etcd) is unavailable; 500 with `x-should-retry: false` once the disk failed a commit ([`StoreError::DiskFailed`]) |
//! | 1101 | 400 | `MissingField`, `MembershipFieldMissing` (address-map create) |
//! | 1102 | 400 | `Cidr(_)` |
//! | 1103 | 400 | `OutsidePrefix` |
//! | 1104 | 400 | `BadAsn` (prefix create; ours, §12 leaves 1104 free) |
//! | 1105 | 400 / 404 | `UnknownPrefix` (400 on binding create), `PrefixNotFound` (404 on Addressing paths) |
//! | 1106 | 400 | `UnknownRegion` |
//! | 1107 | 400 | `BadRegionKey` |
//! | 1108 | 409 | `Conflict` |
//! | 1109 | 404 | `NotFound` (bindings, service bindings) |
//! | 1110 | 404 | `NotFound` (regions) |
//! | 1111 | 400 | `Page(_)` |
//! | 1112 | 400 | `BadType` |
//! | 1113 | 400 | `UnexpectedField`; also the HTTP layer's address-map PATCH with a key other than `description`/`enabled`/`default_sni` |
//! | 1114 | 400 | `PrefixNotApproved` |
//! | 1115 | 403 | `Access(AccessError::NotEntitled)` |
//! | 1116 | 400 | `ManagedByDls`, `BaseBinding` |
//! | 1117 | 400 | `TooManyBindings` |
//! | 1118 | 409 | `PrefixOverlap` (prefix create; ours) |
//! | 1301 | 409 | `Gated` |
//! | 1302 | 400 | `IpNotOwned` |
//! | 1303 | 404 | `MapNotFound`, `IpNotFound`, `MembershipNotFound` (ours) |
//! | 1304 | 400 | `StillEnabled` (ours: a map must be disabled before delete) |
//! | 1305 | 400 | `InvalidIp`, `Invalid` (address-map input; ours) |
//! | 9103/9106/9109/6003 | 400–403 | [`crate::AuthError`] |
//! | 10000 | 403 | `Access(AccessError::Forbidden)` |

use inregion_model::{BindingId, Cidr, CidrError, Entitlement};
use std::net::IpAddr;

/// What every error of this crate tells the HTTP layer: the Cloudflare error code, the
/// HTTP status, and optionally a JSON Pointer to the offending input (`source.pointer`)
/// and nested causes (`error_chain`).
pub trait ApiError: std::error::Error {
    /// The Cloudflare error code (`errors[].code`).
    fn code(&self) -> u32;
    /// The HTTP status.
    fn http_status(&self) -> u16;
    /// A JSON Pointer into the request body (`/ips/3`), where one applies.
    fn pointer(&self) -> Option<String> {
        None
    }
    /// Whether the same request may succeed if sent again (`x-should-retry`), where the
    /// error says so; `None` leaves it to the status (4xx: no, 503: yes, 500: unsaid,
    /// which the official SDKs retry).
    fn should_retry(&self) -> Option<bool> {
        None
    }
    /// Nested causes (`errors[].error_chain`), as `(code, message)` pairs.
    fn error_chain(&self) -> Vec<(u32, String)> {
        Vec::new()
    }
}

/// The code used for internal (500) failures.
pub const INTERNAL_CODE: u32 = 1000;

/// The durable store failed; the operation did not take effect (500 / 1000 when it
/// reaches the API), unless the variant says its outcome is unknown
/// ([`StoreError::DiskFailed`], [`StoreError::Indeterminate`]). Each variant carries its cause as a typed source, so callers and
/// tests match on the kind rather than on text.
///
/// Causes are behind `Arc` so that the error stays `Clone` (a failed batch fails every
/// operation queued in it with the same error).
#[derive(Debug, Clone, thiserror::Error)]
pub enum StoreError {
    /// A file of the store could not be read, written or created.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file or directory.
        path: std::path::PathBuf,
        /// The cause.
        #[source]
        source: std::sync::Arc<std::io::Error>,
    },
    /// The database engine failed (I/O error inside SQLite, disk full, locked, ...).
    #[error("sqlite: {0}")]
    Sqlite(#[source] std::sync::Arc<rusqlite::Error>),
    /// A uniqueness, foreign-key or check constraint refused the batch: the rules let
    /// through something the store's second line of defence did not (a bug, or two
    /// writers on one database). Nothing of the batch was written.
    #[error("constraint violated: {0}")]
    Constraint(#[source] std::sync::Arc<rusqlite::Error>),
    /// The stored data is damaged or not what this program wrote: a failed integrity
    /// check, a row that does not decode, a key file that does not match the database.
    #[error("{}: {what}", path.display())]
    Corrupt {
        /// The file.
        path: std::path::PathBuf,
        /// What is wrong, for a person.
        what: String,
    },
    /// The database was written by a newer version of this program.
    #[error(
        "{}: schema version {found} is newer than this program supports ({supported}); \
         upgrade inregion or use another data directory",
        path.display()
    )]
    NewerSchema {
        /// The database file.
        path: std::path::PathBuf,
        /// The schema version found.
        found: i64,
        /// The newest version this program knows.
        supported: i64,
    },
    /// The disk failed while a commit was being made durable (an I/O error from a write
    /// or an fsync inside SQLite). Whether the commit reached the disk is unknown: its
    /// WAL frames may have been written, and SQLite's recovery replays them after a crash
    /// even though the commit reported failure (and on Linux a failed fsync may have
    /// dropped the pages it could not write, so trying again proves nothing). The commit
    /// pipeline therefore halts writes after this error ([`crate::ControlPlane::halted`]):
    /// every later write gets it too, until a restart lets SQLite's recovery settle what
    /// is on disk. Reads go on. 500, `x-should-retry: false`.
    #[error(
        "{}: the disk failed while making a write durable ({source}); a write answered \
         with this error may or may not have taken effect, and no write is accepted until \
         the server restarts (SQLite's recovery then settles what is on disk)",
        path.display()
    )]
    DiskFailed {
        /// The database file.
        path: std::path::PathBuf,
        /// SQLite's error (an `SQLITE_IOERR_*` code).
        #[source]
        source: std::sync::Arc<rusqlite::Error>,
    },
    /// A failure made on purpose ([`crate::MemoryStore::fail_next_commits`]).
    #[error("injected commit failure")]
    Injected,
    /// A shared store (etcd) cannot be reached or has no quorum: the operation did not
    /// take effect (503; the SDKs retry it).
    #[error("the store is unavailable: {0}")]
    Unavailable(String),
    /// Another replica committed first, at `position`: the state this operation was
    /// validated against is stale. The control plane catches up and runs the rule again;
    /// callers only see this when that keeps failing (503).
    #[error("another replica kept committing first; try again")]
    Conflict {
        /// The shared store's position (etcd: `meta`'s revision) that won.
        position: u64,
    },
    /// A shared store's transaction was sent but its answer was lost, or was an error
    /// that does not say whether it took effect: it may or may not have. The commit
    /// pipeline settles this from the store's watch; callers only see it when the store
    /// stays unreachable (503, outcome unknown).
    #[error("the store did not answer; the outcome is unknown: {what}")]
    Indeterminate {
        /// The position the transaction was conditional on.
        base: u64,
        /// The transaction's nonce (`meta.nonce`).
        nonce: u64,
        /// What failed.
        what: String,
        /// Whether the operation runs again at once when the transaction turns out not to
        /// have happened (its answer was lost); `false`: `what` is the answer then (etcd
        /// out of space refuses every write until an operator steps in).
        retry: bool,
    },
    /// An invariant of the store or the commit pipeline broke (a panic during a
    /// commit, a thread that could not start).
    #[error("internal error: {0}")]
    Internal(String),
}

impl StoreError {
    /// An [`StoreError::Internal`] error.
    pub fn internal(what: impl std::fmt::Display) -> Self {
        StoreError::Internal(what.to_string())
    }

    /// An I/O error on `path`.
    pub fn io(path: impl Into<std::path::PathBuf>, source: std::io::Error) -> Self {
        StoreError::Io {
            path: path.into(),
            source: std::sync::Arc::new(source),
        }
    }
}

impl From<rusqlite::Error> for StoreError {
    /// Constraint violations become [`StoreError::Constraint`], the rest
    /// [`StoreError::Sqlite`].
    fn from(e: rusqlite::Error) -> Self {
        let constraint = matches!(
            e.sqlite_error_code(),
            Some(rusqlite::ErrorCode::ConstraintViolation)
        );
        if constraint {
            StoreError::Constraint(std::sync::Arc::new(e))
        } else {
            StoreError::Sqlite(std::sync::Arc::new(e))
        }
    }
}

/// Two store errors are equal when they are of the same kind and say the same thing
/// (the causes themselves are not comparable). Lets the operation errors that wrap a
/// `StoreError` keep deriving `PartialEq`/`Eq`.
impl PartialEq for StoreError {
    fn eq(&self, other: &Self) -> bool {
        std::mem::discriminant(self) == std::mem::discriminant(other)
            && self.to_string() == other.to_string()
    }
}
impl Eq for StoreError {}

impl ApiError for StoreError {
    fn code(&self) -> u32 {
        INTERNAL_CODE
    }
    /// 503 when a shared store is unreachable or keeps losing races (the operation can be
    /// retried as it is), 500 otherwise.
    fn http_status(&self) -> u16 {
        match self {
            StoreError::Unavailable(_)
            | StoreError::Conflict { .. }
            | StoreError::Indeterminate { .. } => 503,
            _ => 500,
        }
    }
    /// A halted store refuses every write until a restart: sending it again is futile.
    fn should_retry(&self) -> Option<bool> {
        matches!(self, StoreError::DiskFailed { .. }).then_some(false)
    }
}

/// The first three checks of every operation (§3.2 precedence): the account is reachable
/// by the principal, the principal holds the permission, the account holds the
/// entitlements.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AccessError {
    /// 403 / 10000: the account is unknown, not reachable by this credential, or the
    /// credential lacks a permission. Deliberately the same answer for all three, so that
    /// nobody learns which accounts exist.
    #[error("Authentication error")]
    Forbidden,
    /// 403 / 1115: the account lacks an entitlement.
    #[error("account is not entitled to {}", .0.name())]
    NotEntitled(Entitlement),
}

impl ApiError for AccessError {
    fn code(&self) -> u32 {
        match self {
            AccessError::Forbidden => 10000,
            AccessError::NotEntitled(_) => 1115,
        }
    }
    fn http_status(&self) -> u16 {
        403
    }
}

/// A bad `per_page` or `cursor` (400 / 1111).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PageError {
    /// `per_page` is not an integer in 1..=100.
    #[error("per_page must be an integer between 1 and 100, got {0:?}")]
    PerPage(String),
    /// The cursor does not decode.
    #[error("invalid cursor")]
    Cursor,
}

impl ApiError for PageError {
    fn code(&self) -> u32 {
        1111
    }
    fn http_status(&self) -> u16 {
        400
    }
}

/// Implements [`ApiError`] for an operation's enum: `Access`, `Store` and `Page` variants
/// delegate; the others are listed with their code and status.
macro_rules! api_error {
    ($t:ident { $($v:ident $( ( $($p:tt)* ) )? $( { $($f:tt)* } )? => ($code:expr, $status:expr)),* $(,)? }
     $(delegate: [$($d:ident),*])? $(pointer: $ptr:expr)?) => {
        impl ApiError for $t {
            #[allow(unused_variables)]
            fn code(&self) -> u32 {
                match self {
                    $($t::$v $( ( $($p)* ) )? $( { $($f)* } )? => $code,)*
                    $($($t::$d(e) => e.code(),)*)?
                }
            }
            #[allow(unused_variables)]
            fn http_status(&self) -> u16 {
                match self {
                    $($t::$v $( ( $($p)* ) )? $( { $($f)* } )? => $status,)*
                    $($($t::$d(e) => e.http_status(),)*)?
                }
            }
            #[allow(unused_variables)]
            fn should_retry(&self) -> Option<bool> {
                match self {
                    $($t::$v $( ( $($p)* ) )? $( { $($f)* } )? => None,)*
                    $($($t::$d(e) => e.should_retry(),)*)?
                }
            }
            $(fn pointer(&self) -> Option<String> {
                let f: fn(&$t) -> Option<String> = $ptr;
                f(self)
            })?
        }
    };
}

/// `GET /dls/regions`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ListRegionsError {
    /// 403 / 10000 or 1115.
    #[error(transparent)]
    Access(#[from] AccessError),
    /// 400 / 1111.
    #[error(transparent)]
    Page(#[from] PageError),
    /// 400 / 1112: `type` is neither `managed` nor `custom`.
    #[error("type must be \"managed\" or \"custom\", got {0:?}")]
    BadType(String),
}
api_error!(ListRegionsError { BadType(_) => (1112, 400) } delegate: [Access, Page]);

/// `GET /dls/regions/{id}`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GetRegionError {
    /// 403 / 10000 or 1115.
    #[error(transparent)]
    Access(#[from] AccessError),
    /// 404 / 1110: no region with this id (or managed key) for this account.
    #[error("region {0:?} not found")]
    NotFound(String),
}
api_error!(GetRegionError { NotFound(_) => (1110, 404) } delegate: [Access]);

/// `GET /dls/regional_services/prefix_bindings`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ListBindingsError {
    /// 403 / 10000 or 1115.
    #[error(transparent)]
    Access(#[from] AccessError),
    /// 400 / 1111.
    #[error(transparent)]
    Page(#[from] PageError),
}
api_error!(ListBindingsError {} delegate: [Access, Page]);

/// `GET /dls/regional_services/prefix_bindings/{id}`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GetBindingError {
    /// 403 / 10000 or 1115.
    #[error(transparent)]
    Access(#[from] AccessError),
    /// 404 / 1109 (also for ids that are not UUIDs, and for deleted bindings).
    #[error("binding {0:?} not found")]
    NotFound(String),
}
api_error!(GetBindingError { NotFound(_) => (1109, 404) } delegate: [Access]);

/// `POST /dls/regional_services/prefix_bindings`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CreateBindingError {
    /// 403 / 10000 or 1115.
    #[error(transparent)]
    Access(#[from] AccessError),
    /// 400 / 1101: a required field is missing or empty.
    #[error("required field {0} is missing or empty")]
    MissingField(&'static str),
    /// 400 / 1107: `region_key` fails `^[a-z0-9_-]{1,128}$`.
    #[error("region_key {0:?} must match ^[a-z0-9_-]+$ (1-128 characters)")]
    BadRegionKey(String),
    /// 400 / 1102: `cidr` does not parse strictly (§7).
    #[error(transparent)]
    Cidr(#[from] CidrError),
    /// 400 / 1105: no such prefix in this account.
    #[error("prefix {0:?} not found in this account")]
    UnknownPrefix(String),
    /// 400 / 1114: the prefix is not approved yet.
    #[error("prefix {0} is not approved yet")]
    PrefixNotApproved(String),
    /// 400 / 1103: the CIDR is not strictly inside the prefix, or has the other family.
    #[error("cidr {cidr} is not inside prefix {prefix}")]
    OutsidePrefix {
        /// The requested CIDR.
        cidr: Cidr,
        /// The prefix's CIDR.
        prefix: Cidr,
    },
    /// 400 / 1106: no region with this key is available to the account.
    #[error("region_key {0:?} is not available to this account")]
    UnknownRegion(String),
    /// 409 / 1108: the exact CIDR is already bound, or it is the whole prefix.
    #[error("conflict: binding already exists for CIDR {0}")]
    Conflict(Cidr),
    /// 400 / 1117: the optional per-prefix cap is reached.
    #[error("prefix {prefix} already has {limit} bindings")]
    TooManyBindings {
        /// The prefix id.
        prefix: String,
        /// The configured cap.
        limit: usize,
    },
    /// 500.
    #[error(transparent)]
    Store(#[from] StoreError),
}
api_error!(CreateBindingError {
    MissingField(_) => (1101, 400),
    BadRegionKey(_) => (1107, 400),
    Cidr(_) => (1102, 400),
    UnknownPrefix(_) => (1105, 400),
    PrefixNotApproved(_) => (1114, 400),
    OutsidePrefix { .. } => (1103, 400),
    UnknownRegion(_) => (1106, 400),
    Conflict(_) => (1108, 409),
    TooManyBindings { .. } => (1117, 400),
} delegate: [Access, Store]);

/// `PATCH /dls/regional_services/prefix_bindings/{id}`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PatchBindingError {
    /// 403 / 10000 or 1115.
    #[error(transparent)]
    Access(#[from] AccessError),
    /// 400 / 1113: the body carries a key other than `region_key`.
    #[error("only region_key can be updated; got {0:?}")]
    UnexpectedField(String),
    /// 400 / 1101: `region_key` is missing or empty.
    #[error("required field {0} is missing or empty")]
    MissingField(&'static str),
    /// 400 / 1107.
    #[error("region_key {0:?} must match ^[a-z0-9_-]+$ (1-128 characters)")]
    BadRegionKey(String),
    /// 404 / 1109.
    #[error("binding {0:?} not found")]
    NotFound(String),
    /// 400 / 1106.
    #[error("region_key {0:?} is not available to this account")]
    UnknownRegion(String),
    /// 500.
    #[error(transparent)]
    Store(#[from] StoreError),
}
api_error!(PatchBindingError {
    UnexpectedField(_) => (1113, 400),
    MissingField(_) => (1101, 400),
    BadRegionKey(_) => (1107, 400),
    NotFound(_) => (1109, 404),
    UnknownRegion(_) => (1106, 400),
} delegate: [Access, Store]);

/// `DELETE /dls/regional_services/prefix_bindings/{id}`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DeleteBindingError {
    /// 403 / 10000 or 1115.
    #[error(transparent)]
    Access(#[from] AccessError),
    /// 404 / 1109.
    #[error("binding {0:?} not found")]
    NotFound(String),
    /// 500.
    #[error(transparent)]
    Store(#[from] StoreError),
}
api_error!(DeleteBindingError { NotFound(_) => (1109, 404) } delegate: [Access, Store]);

/// Addressing reads: `GET /prefixes`, `/prefixes/{id}`, `/services`,
/// `/prefixes/{id}/bindings[/{id}]`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AddressingReadError {
    /// 403 / 10000.
    #[error(transparent)]
    Access(#[from] AccessError),
    /// 404 / 1105: no such prefix in this account.
    #[error("prefix {0:?} not found")]
    PrefixNotFound(String),
    /// 404 / 1109: no such service binding on this prefix.
    #[error("service binding {0:?} not found")]
    NotFound(String),
}
api_error!(AddressingReadError {
    PrefixNotFound(_) => (1105, 404),
    NotFound(_) => (1109, 404),
} delegate: [Access]);

/// `POST /addressing/prefixes`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CreatePrefixError {
    /// 403 / 10000.
    #[error(transparent)]
    Access(#[from] AccessError),
    /// 400 / 1101.
    #[error("required field {0} is missing or empty")]
    MissingField(&'static str),
    /// 400 / 1102.
    #[error(transparent)]
    Cidr(#[from] CidrError),
    /// 400 / 1104: `asn` is not an integer in 1..=4294967295.
    #[error("asn {0:?} must be an integer between 1 and 4294967295")]
    BadAsn(String),
    /// 409 / 1118: the CIDR overlaps a prefix already onboarded (by any account).
    #[error("prefix {0} overlaps an existing prefix")]
    PrefixOverlap(Cidr),
    /// 500.
    #[error(transparent)]
    Store(#[from] StoreError),
}
api_error!(CreatePrefixError {
    MissingField(_) => (1101, 400),
    Cidr(_) => (1102, 400),
    BadAsn(_) => (1104, 400),
    PrefixOverlap(_) => (1118, 409),
} delegate: [Access, Store]);

/// `DELETE /addressing/prefixes/{id}/bindings/{id}`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DeleteServiceBindingError {
    /// 403 / 10000.
    #[error(transparent)]
    Access(#[from] AccessError),
    /// 404 / 1105.
    #[error("prefix {0:?} not found")]
    PrefixNotFound(String),
    /// 404 / 1109.
    #[error("service binding {0:?} not found")]
    NotFound(String),
    /// 400 / 1116: the binding was created by DLS; delete it via `/dls`.
    #[error("service binding {0} is managed by DLS, delete via /dls")]
    ManagedByDls(BindingId),
    /// 400 / 1116: the prefix's base binding cannot be deleted here.
    #[error("service binding {0} is the prefix's base binding and cannot be deleted")]
    BaseBinding(String),
}
api_error!(DeleteServiceBindingError {
    PrefixNotFound(_) => (1105, 404),
    NotFound(_) => (1109, 404),
    ManagedByDls(_) => (1116, 400),
    BaseBinding(_) => (1116, 400),
} delegate: [Access]);

/// A refused IP on an address-map write (shared by create and PUT ip).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IpRefusal {
    /// 400 / 1305: not a strict IPv4/IPv6 address.
    #[error("{0:?} is not a valid IP address")]
    InvalidIp(String),
    /// 400 / 1302: the IP is not inside a prefix the account owns.
    #[error("IP {0} is not in a prefix owned by this account")]
    IpNotOwned(IpAddr),
    /// 409 / 1301: the §9 gate.
    #[error("IP {ip} is covered by prefix binding {binding} ({cidr}) which is not active yet")]
    Gated {
        /// The refused IP.
        ip: IpAddr,
        /// A covering binding that is still provisioning.
        binding: BindingId,
        /// Its CIDR.
        cidr: Cidr,
    },
}

impl ApiError for IpRefusal {
    fn code(&self) -> u32 {
        match self {
            IpRefusal::InvalidIp(_) => 1305,
            IpRefusal::IpNotOwned(_) => 1302,
            IpRefusal::Gated { .. } => 1301,
        }
    }
    fn http_status(&self) -> u16 {
        match self {
            IpRefusal::Gated { .. } => 409,
            _ => 400,
        }
    }
}

/// `POST /addressing/address_maps`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CreateAddressMapError {
    /// 403 / 10000.
    #[error(transparent)]
    Access(#[from] AccessError),
    /// 400 / 1305, 400 / 1302 or 409 / 1301 for element `index` of `ips`; nothing was
    /// created.
    #[error("{refusal}")]
    Ip {
        /// Index into `ips`.
        index: usize,
        /// Why.
        refusal: IpRefusal,
    },
    /// 400 / 1101: a membership without `identifier` or `kind` (or with an empty one).
    #[error("memberships[{index}]: missing required field {field}")]
    MembershipFieldMissing {
        /// Index into `memberships`.
        index: usize,
        /// `identifier` or `kind`.
        field: &'static str,
    },
    /// 400 / 1305: a bad membership (`kind` not `zone`/`account`, bad identifier).
    #[error("memberships[{index}]: {reason}")]
    Membership {
        /// Index into `memberships`.
        index: usize,
        /// Why.
        reason: String,
    },
    /// 400 / 1305: `default_sni` is not a hostname (it contains whitespace), as on PATCH.
    #[error("default_sni must be a hostname")]
    DefaultSni,
    /// 500.
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl ApiError for CreateAddressMapError {
    fn code(&self) -> u32 {
        match self {
            Self::Access(e) => e.code(),
            Self::Ip { refusal, .. } => refusal.code(),
            Self::MembershipFieldMissing { .. } => 1101,
            Self::Membership { .. } | Self::DefaultSni => 1305,
            Self::Store(e) => e.code(),
        }
    }
    fn http_status(&self) -> u16 {
        match self {
            Self::Access(e) => e.http_status(),
            Self::Ip { refusal, .. } => refusal.http_status(),
            Self::MembershipFieldMissing { .. } | Self::Membership { .. } | Self::DefaultSni => 400,
            Self::Store(e) => e.http_status(),
        }
    }
    fn should_retry(&self) -> Option<bool> {
        match self {
            Self::Store(e) => e.should_retry(),
            _ => None,
        }
    }
    fn pointer(&self) -> Option<String> {
        match self {
            Self::Ip { index, .. } => Some(format!("/ips/{index}")),
            Self::Membership { index, .. } => Some(format!("/memberships/{index}")),
            Self::MembershipFieldMissing { index, field } => {
                Some(format!("/memberships/{index}/{field}"))
            }
            Self::DefaultSni => Some("/default_sni".into()),
            _ => None,
        }
    }
}

/// Address-map reads and writes other than create and PUT ip.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AddressMapError {
    /// 403 / 10000.
    #[error(transparent)]
    Access(#[from] AccessError),
    /// 404 / 1303.
    #[error("address map {0:?} not found")]
    MapNotFound(String),
    /// 404 / 1303: the IP is not on the map.
    #[error("IP {0:?} is not on this address map")]
    IpNotFound(String),
    /// 404 / 1303: no such membership on the map.
    #[error("membership {0:?} not found on this address map")]
    MembershipNotFound(String),
    /// 400 / 1305: a bad field value.
    #[error("{0}")]
    Invalid(String),
    /// 400 / 1304: delete needs a disabled map.
    #[error("address map {0} must be disabled before it can be deleted")]
    StillEnabled(String),
    /// 400 / 1305: `can_delete`/`can_modify_ips` is false (Cloudflare-managed map).
    #[error("address map {0} is managed by Cloudflare")]
    Managed(String),
    /// 400 / 1113: PATCH carries a key other than description, enabled and default_sni
    /// (IPs and memberships have their own routes); `source.pointer` names it.
    #[error(
        "`{0}` cannot be changed here: PATCH accepts only description, enabled and \
         default_sni (IPs and memberships have their own routes)"
    )]
    UnexpectedField(String),
    /// 500.
    #[error(transparent)]
    Store(#[from] StoreError),
}
api_error!(AddressMapError {
    MapNotFound(_) => (1303, 404),
    IpNotFound(_) => (1303, 404),
    MembershipNotFound(_) => (1303, 404),
    Invalid(_) => (1305, 400),
    StillEnabled(_) => (1304, 400),
    Managed(_) => (1305, 400),
    UnexpectedField(_) => (1113, 400),
} delegate: [Access, Store]
  pointer: |e| match e {
      // JSON Pointer escaping (RFC 6901): `~` → `~0`, `/` → `~1`.
      AddressMapError::UnexpectedField(f) => {
          Some(format!("/{}", f.replace('~', "~0").replace('/', "~1")))
      }
      _ => None,
  });

/// `PUT /addressing/address_maps/{id}/ips/{ip}`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AddIpError {
    /// 403 / 10000.
    #[error(transparent)]
    Access(#[from] AccessError),
    /// 404 / 1303.
    #[error("address map {0:?} not found")]
    MapNotFound(String),
    /// 400 / 1305, 400 / 1302 or 409 / 1301.
    #[error(transparent)]
    Ip(#[from] IpRefusal),
    /// 500.
    #[error(transparent)]
    Store(#[from] StoreError),
}
api_error!(AddIpError { MapNotFound(_) => (1303, 404) } delegate: [Access, Ip, Store]);

/// Simulator admin operations (`/__sim/...`, seeding). Not Cloudflare API.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AdminError {
    /// 404 / 1904: the named object does not exist.
    #[error("{0} not found")]
    NotFound(String),
    /// 400 / 1905: a bad value.
    #[error("invalid: {0}")]
    Invalid(String),
    /// 409 / 1906: clashes with existing state.
    #[error("conflict: {0}")]
    Conflict(String),
    /// 500.
    #[error(transparent)]
    Store(#[from] StoreError),
}
api_error!(AdminError {
    NotFound(_) => (1904, 404),
    Invalid(_) => (1905, 400),
    Conflict(_) => (1906, 409),
} delegate: [Store]);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_follow_the_contract_table() {
        let c = Cidr::parse_strict("203.0.113.0/24").unwrap();
        let cases: Vec<(Box<dyn ApiError>, u32, u16)> = vec![
            (Box::new(AccessError::Forbidden), 10000, 403),
            (
                Box::new(AccessError::NotEntitled(Entitlement::RegionalServices)),
                1115,
                403,
            ),
            (
                Box::new(CreateBindingError::MissingField("cidr")),
                1101,
                400,
            ),
            (
                Box::new(CreateBindingError::Cidr(CidrError::Empty)),
                1102,
                400,
            ),
            (
                Box::new(CreateBindingError::OutsidePrefix { cidr: c, prefix: c }),
                1103,
                400,
            ),
            (
                Box::new(CreateBindingError::UnknownPrefix("x".into())),
                1105,
                400,
            ),
            (
                Box::new(CreateBindingError::UnknownRegion("x".into())),
                1106,
                400,
            ),
            (
                Box::new(CreateBindingError::BadRegionKey("X".into())),
                1107,
                400,
            ),
            (Box::new(CreateBindingError::Conflict(c)), 1108, 409),
            (Box::new(GetBindingError::NotFound("x".into())), 1109, 404),
            (Box::new(GetRegionError::NotFound("x".into())), 1110, 404),
            (
                Box::new(ListBindingsError::Page(PageError::Cursor)),
                1111,
                400,
            ),
            (Box::new(ListRegionsError::BadType("x".into())), 1112, 400),
            (
                Box::new(PatchBindingError::UnexpectedField("cidr".into())),
                1113,
                400,
            ),
            (
                Box::new(CreateBindingError::PrefixNotApproved("x".into())),
                1114,
                400,
            ),
            (
                Box::new(DeleteServiceBindingError::ManagedByDls(BindingId::random())),
                1116,
                400,
            ),
            (
                Box::new(CreateBindingError::TooManyBindings {
                    prefix: "p".into(),
                    limit: 1,
                }),
                1117,
                400,
            ),
            (
                Box::new(AddIpError::Ip(IpRefusal::Gated {
                    ip: "203.0.113.1".parse().unwrap(),
                    binding: BindingId::random(),
                    cidr: c,
                })),
                1301,
                409,
            ),
            (
                Box::new(AddIpError::Ip(IpRefusal::IpNotOwned(
                    "203.0.113.1".parse().unwrap(),
                ))),
                1302,
                400,
            ),
            (
                Box::new(CreateBindingError::Store(StoreError::Injected)),
                1000,
                500,
            ),
        ];
        for (e, code, status) in cases {
            assert_eq!((e.code(), e.http_status()), (code, status), "{e}");
        }
        let e = CreateAddressMapError::Ip {
            index: 3,
            refusal: IpRefusal::InvalidIp("x".into()),
        };
        assert_eq!(e.pointer().as_deref(), Some("/ips/3"));
        assert_eq!(
            CreateBindingError::Conflict(c).to_string(),
            "conflict: binding already exists for CIDR 203.0.113.0/24"
        );
    }
}
