//! Snapshots: every record of a control plane in one documented, versioned JSON file, to
//! save a prepared state and restore it later (`inregion snapshot save|restore`, the
//! admin surface's `/__inregion/snapshot`).
//!
//! ```json
//! {
//!   "format": "inregion-snapshot",
//!   "format_version": 2,
//!   "created_at": "2026-12-04T10:00:00.000000Z",
//!   "clock_offset_us": 0,
//!   "token_keys": ["<64 hex>", ...],
//!   "accounts": [...], "users": [...], "tokens": [...], "prefixes": [...],
//!   "regions": [...], "bindings": [...], "address_maps": [{"account_id": ..., "map": ...}]
//! }
//! ```
//!
//! - The records are the store's own row format (`rows.rs`), never the API's shapes, so
//!   a snapshot outlives changes to the API. Format 1 is format 2 without `token_keys`,
//!   with times as RFC 3339 text and secrets as plain SHA-256 digests (the row shapes of
//!   schema version 1); both restore. A snapshot of a newer format is refused.
//! - `token_keys` are the keys the token and global-key digests were made with. The
//!   restoring server adopts them, so the snapshot's tokens keep working. **A snapshot
//!   is as secret as a data directory**: with its keys, its digests can be tested
//!   against guesses.
//! - `clock_offset_us` is how far the admin surface had moved the clock. Restoring sets
//!   it again; wall time is not rewound.

use super::rows::{AccountRow, BindingRow, OwnedMapRow, PrefixRow, RegionRow, TokenRow, UserRow};
use crate::auth::TokenKey;
use crate::state::{Change, State};
use inregion_model::Timestamp;
use serde::{Deserialize, Serialize};

/// The `format` field of every snapshot.
pub const SNAPSHOT_FORMAT: &str = "inregion-snapshot";
/// The format version this program writes (it reads this one and every older one).
pub const SNAPSHOT_FORMAT_VERSION: u32 = 2;

/// Why a snapshot cannot be read or restored.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SnapshotError {
    /// Not JSON, or not a snapshot's shape.
    #[error("not an inregion snapshot: {0}")]
    Malformed(String),
    /// Written by a newer inregion.
    #[error("snapshot format version {found} is newer than this program reads ({supported})")]
    NewerFormat {
        /// The version found.
        found: u32,
        /// The newest version this program reads.
        supported: u32,
    },
    /// A record does not decode, or refers to one that is not in the snapshot.
    #[error("snapshot record {what}")]
    Invalid {
        /// Which record and why.
        what: String,
    },
}

/// A snapshot file. See the module docs for the format.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Snapshot {
    format: String,
    format_version: u32,
    /// When it was taken (server time).
    pub created_at: String,
    /// How far the server's clock was ahead of wall time, in microseconds.
    #[serde(default)]
    pub clock_offset_us: i64,
    #[serde(default)]
    token_keys: Vec<String>,
    #[serde(default)]
    accounts: Vec<AccountRow>,
    #[serde(default)]
    users: Vec<UserRow>,
    #[serde(default)]
    tokens: Vec<TokenRow>,
    #[serde(default)]
    prefixes: Vec<PrefixRow>,
    #[serde(default)]
    regions: Vec<RegionRow>,
    #[serde(default)]
    bindings: Vec<BindingRow>,
    #[serde(default)]
    address_maps: Vec<OwnedMapRow>,
}

impl Snapshot {
    /// A snapshot of `state`, whose digests were made with `keys`.
    pub(crate) fn of(
        state: &State,
        keys: &[TokenKey],
        now: Timestamp,
        clock_offset_us: i64,
    ) -> Self {
        let mut s = Snapshot {
            format: SNAPSHOT_FORMAT.into(),
            format_version: SNAPSHOT_FORMAT_VERSION,
            created_at: now.to_string(),
            clock_offset_us,
            token_keys: keys.iter().map(TokenKey::to_hex).collect(),
            accounts: Vec::new(),
            users: Vec::new(),
            tokens: Vec::new(),
            prefixes: Vec::new(),
            regions: Vec::new(),
            bindings: Vec::new(),
            address_maps: Vec::new(),
        };
        for r in state.dump() {
            match r {
                Change::Account(a) => s.accounts.push(AccountRow::of(&a)),
                Change::User(u) => s.users.push(UserRow::of(&u)),
                Change::Token(t) => s.tokens.push(TokenRow::of(&t)),
                Change::Prefix(p) => s.prefixes.push(PrefixRow::of(&p)),
                Change::Region(g) => s.regions.push(RegionRow::of(&g)),
                Change::Binding(b) => s.bindings.push(BindingRow::of(&b)),
                Change::AddressMap(m) => s.address_maps.push(OwnedMapRow {
                    account_id: m.account_id.as_str().to_owned(),
                    map: super::rows::AddressMapRow::of(&m),
                }),
                // Keys are listed above; the rest never appears in a dump.
                // Edge nodes are the running infrastructure, not the emulated world: a
                // snapshot neither saves nor restores them.
                Change::EdgeNode(_) | Change::RemoveEdgeNode(_) => {}
                Change::AdoptTokenKey(_)
                | Change::DeleteAddressMap(_)
                | Change::PurgeBinding(_)
                | Change::Clear => {}
            }
        }
        s
    }

    /// Parses a snapshot file's text, refusing newer formats.
    pub fn from_json(text: &str) -> Result<Self, SnapshotError> {
        let s: Snapshot =
            serde_json::from_str(text).map_err(|e| SnapshotError::Malformed(e.to_string()))?;
        if s.format != SNAPSHOT_FORMAT {
            return Err(SnapshotError::Malformed(format!(
                "format is {:?}, expected {SNAPSHOT_FORMAT:?}",
                s.format
            )));
        }
        if s.format_version > SNAPSHOT_FORMAT_VERSION || s.format_version == 0 {
            return Err(SnapshotError::NewerFormat {
                found: s.format_version,
                supported: SNAPSHOT_FORMAT_VERSION,
            });
        }
        Ok(s)
    }

    /// The snapshot as pretty JSON (what `inregion snapshot save` writes).
    pub fn to_json(&self) -> String {
        // Every field is a plain string, number, bool or list of them: cannot fail.
        serde_json::to_string_pretty(self).unwrap_or_else(|e| unreachable!("{e}"))
    }

    /// The format version of this snapshot.
    pub fn format_version(&self) -> u32 {
        self.format_version
    }

    /// The records as changes (keys first, then accounts, users, tokens, prefixes,
    /// regions, bindings, maps), checked for references to records the snapshot lacks.
    pub(crate) fn into_changes(self) -> Result<Vec<Change>, SnapshotError> {
        let bad = |kind: &str, e: String| SnapshotError::Invalid {
            what: format!("{kind}: {e}"),
        };
        let mut out = Vec::new();
        for k in &self.token_keys {
            let key =
                TokenKey::from_hex(k).ok_or_else(|| bad("token_keys", "not 64 hex".into()))?;
            out.push(Change::AdoptTokenKey(key));
        }
        let mut st = State::default();
        let mut push = |st: &mut State, c: Change| {
            st.apply(c.clone());
            out.push(c);
        };
        for a in self.accounts {
            push(
                &mut st,
                Change::Account(a.get().map_err(|e| bad("account", e))?),
            );
        }
        for u in self.users {
            let u = u.get().map_err(|e| bad("user", e))?;
            if let Some(a) = u.roles.keys().find(|a| !st.accounts.contains_key(*a)) {
                return Err(bad("user", format!("{}: unknown account {a}", u.email)));
            }
            push(&mut st, Change::User(u));
        }
        for t in self.tokens {
            let t = t.get().map_err(|e| bad("token", e))?;
            if let Some(a) = t.accounts.iter().find(|a| !st.accounts.contains_key(*a)) {
                return Err(bad("token", format!("{}: unknown account {a}", t.id)));
            }
            push(&mut st, Change::Token(t));
        }
        for p in self.prefixes {
            let p = p.get().map_err(|e| bad("prefix", e))?;
            if !st.accounts.contains_key(&p.account_id) {
                return Err(bad("prefix", format!("{}: unknown account", p.id)));
            }
            push(&mut st, Change::Prefix(p));
        }
        for g in self.regions {
            let g = g.get().map_err(|e| bad("region", e))?;
            if !st.accounts.contains_key(&g.account_id) {
                return Err(bad(
                    "region",
                    format!("{}: unknown account", g.definition.key),
                ));
            }
            push(&mut st, Change::Region(g));
        }
        for b in self.bindings {
            let b = b.get().map_err(|e| bad("binding", e))?;
            if !st.prefixes.contains_key(&b.prefix_id) || !st.accounts.contains_key(&b.account_id) {
                return Err(bad(
                    "binding",
                    format!("{}: unknown prefix or account", b.id),
                ));
            }
            if b.is_live() && st.live_by_cidr.contains_key(&(b.prefix_id.clone(), b.cidr)) {
                return Err(bad(
                    "binding",
                    format!("{}: a second live binding for {}", b.id, b.cidr),
                ));
            }
            push(&mut st, Change::Binding(b));
        }
        for m in self.address_maps {
            let map = m
                .map
                .get(&m.account_id)
                .map_err(|e| bad("address map", e))?;
            if !st.accounts.contains_key(&map.account_id) {
                return Err(bad("address map", format!("{}: unknown account", map.id)));
            }
            push(&mut st, Change::AddressMap(map));
        }
        Ok(out)
    }
}
