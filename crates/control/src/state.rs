//! The in-memory state: every record plus the indexes the rules and the reads need.
//!
//! A [`State`] changes only through [`State::apply_commit`], which upserts whole records.
//! The same function rebuilds the state from the store at start-up, so what is in memory
//! is by construction what the store holds.

use crate::auth::{SecretHash, TokenKey, TokenRecord, UserRecord};
use crate::records::{Account, AddressMap, BindingRecord, CustomRegion, EdgeNodeRecord, Prefix};
use inregion_model::{
    AccountId, AddressMapId, BindingId, Cidr, PrefixId, RegionId, RegionKey, Timestamp, TokenId,
};
use ipnet::IpNet;
use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;

/// One record-level change. Every change upserts (or removes) one whole record, which
/// keeps backends simple: a key-value store (etcd) maps each to one key.
#[derive(Debug, Clone, PartialEq)]
pub enum Change {
    /// Upsert an account.
    Account(Account),
    /// Upsert a token (keyed by id).
    Token(TokenRecord),
    /// Upsert a user (keyed by e-mail).
    User(UserRecord),
    /// Upsert a prefix.
    Prefix(Prefix),
    /// Upsert a custom region (keyed by id).
    Region(CustomRegion),
    /// Upsert a binding (live or tombstone).
    Binding(BindingRecord),
    /// Upsert an address map.
    AddressMap(AddressMap),
    /// Remove an address map.
    DeleteAddressMap(AddressMapId),
    /// Forget a binding whose deletion has propagated and whose retention window has
    /// passed ([`crate::ControlPlane::purge_tombstones`]). Raises
    /// [`State::purged_through`] to the record's last version.
    PurgeBinding(BindingId),
    /// Remove every record (adopted keys stay), as the first change of a reset or a
    /// snapshot restore. Raises [`State::purged_through`] to the commit's version: a
    /// change-feed reader from before it must re-read everything.
    Clear,
    /// Accept digests made with this key as well as with the store's own (a restored
    /// snapshot's tokens). Keys are only ever added.
    AdoptTokenKey(TokenKey),
    /// Upsert an edge node's registration (keyed by node id). Not removed by
    /// [`Change::Clear`]: nodes are infrastructure, not records of the emulated world.
    EdgeNode(EdgeNodeRecord),
    /// Forget an edge node's registration (deregistered, or expired).
    RemoveEdgeNode(String),
}

/// One committed operation: its changes and the global version it creates. Versions are
/// consecutive: commit `n` moves the state from version `n - 1` to `n`.
#[derive(Debug, Clone, PartialEq)]
pub struct Commit {
    /// The version after this commit.
    pub version: u64,
    /// The record changes, applied in order.
    pub changes: Vec<Change>,
}

/// Records and indexes. See the module docs. Compare states with [`State::dump`]: the
/// indexes may differ in empty entries between two states with the same records.
#[derive(Debug, Clone, Default)]
pub struct State {
    pub(crate) version: u64,
    /// The highest change-feed version of a purged binding: a feed reader that has not
    /// seen that version cannot be given a correct diff any more.
    pub(crate) purged_through: u64,
    /// Keys adopted from restored snapshots ([`Change::AdoptTokenKey`]).
    pub(crate) adopted_keys: Vec<TokenKey>,
    pub(crate) accounts: BTreeMap<AccountId, Account>,
    pub(crate) tokens: BTreeMap<SecretHash, TokenRecord>,
    pub(crate) token_ids: BTreeMap<TokenId, SecretHash>,
    pub(crate) users: BTreeMap<String, UserRecord>,
    pub(crate) prefixes: BTreeMap<PrefixId, Prefix>,
    pub(crate) prefixes_by_account: BTreeMap<AccountId, BTreeSet<PrefixId>>,
    pub(crate) regions: BTreeMap<RegionId, CustomRegion>,
    pub(crate) region_by_key: BTreeMap<RegionKey, RegionId>,
    /// Every binding, live or tombstone. Ordered maps throughout, for everything that
    /// grows: a `HashMap` doubles its table in one insert, moving every record while the
    /// writer lock is held (measured: 10-27 ms at ~14k and ~28k bindings, twice, once for
    /// the speculative state and once for the read state; and 132 ms at 28,672 per-test
    /// accounts, whose accounts, tokens and prefixes all doubled at once).
    pub(crate) bindings: BTreeMap<BindingId, BindingRecord>,
    /// Live bindings per account in list order `(created_at, id)`.
    pub(crate) live_order: BTreeMap<AccountId, BTreeSet<(Timestamp, BindingId)>>,
    /// Live bindings by exact CIDR within a prefix.
    pub(crate) live_by_cidr: BTreeMap<(PrefixId, Cidr), BindingId>,
    /// Live bindings per prefix, by CIDR.
    pub(crate) live_by_prefix: BTreeMap<PrefixId, BTreeSet<(Cidr, BindingId)>>,
    /// Bindings by the version of their last change (the change feed's index).
    pub(crate) by_version: BTreeSet<(u64, BindingId)>,
    /// Deleted bindings by the time their deletion propagated (the purge's index: a
    /// purge reads only what it removes, not every binding).
    pub(crate) by_gone_at: BTreeSet<(Timestamp, BindingId)>,
    pub(crate) maps: BTreeMap<AddressMapId, AddressMap>,
    pub(crate) maps_by_account: BTreeMap<AccountId, BTreeSet<AddressMapId>>,
    /// Bindings whose last change waits for the edge nodes ([`BindingRecord::awaits_edges`]),
    /// by version: what an activation reads.
    pub(crate) awaiting_edges: BTreeSet<(u64, BindingId)>,
    /// Registered edge nodes, by id.
    pub(crate) edge_nodes: BTreeMap<String, EdgeNodeRecord>,
}

impl State {
    /// The state a store's contents describe.
    pub(crate) fn from_loaded(loaded: crate::store::Loaded) -> Self {
        let mut state = State::default();
        for r in loaded.records {
            state.apply(r);
        }
        state.version = loaded.version;
        state.purged_through = loaded.purged_through;
        state
    }

    /// The version of the last applied commit.
    pub fn version(&self) -> u64 {
        self.version
    }

    /// The highest version of a binding forgotten by a purge (0: none). A change-feed
    /// reader at a version below it must re-read everything.
    pub fn purged_through(&self) -> u64 {
        self.purged_through
    }

    /// Applies a commit (and sets the version).
    pub fn apply_commit(&mut self, c: &Commit) {
        drop(self.apply_commit_deferring_drop(c));
    }

    /// [`Self::apply_commit`], returning what a [`Change::Clear`] removed instead of
    /// dropping it: freeing a large state takes milliseconds, which the commit pipeline
    /// spends after the writers are answered rather than before.
    pub(crate) fn apply_commit_deferring_drop(&mut self, c: &Commit) -> Vec<State> {
        let mut removed = Vec::new();
        for ch in &c.changes {
            if let Change::Clear = ch {
                removed.push(self.clear(c.version));
            } else {
                self.apply(ch.clone());
            }
        }
        self.version = c.version;
        removed
    }

    /// [`Change::Clear`] in the commit of `version`; returns the records it removed.
    fn clear(&mut self, version: u64) -> State {
        let adopted_keys = std::mem::take(&mut self.adopted_keys);
        let edge_nodes = std::mem::take(&mut self.edge_nodes);
        std::mem::replace(
            self,
            State {
                version: self.version,
                // Never lowered: a clear applied outside a commit (at version 0, say)
                // must not forget what an earlier purge removed.
                purged_through: self.purged_through.max(version),
                adopted_keys,
                edge_nodes,
                ..State::default()
            },
        )
    }

    /// Applies one change.
    pub fn apply(&mut self, ch: Change) {
        match ch {
            Change::Account(a) => {
                self.accounts.insert(a.id.clone(), a);
            }
            Change::Token(t) => {
                if let Some(old) = self.token_ids.insert(t.id.clone(), t.secret_hash) {
                    self.tokens.remove(&old);
                }
                self.tokens.insert(t.secret_hash, t);
            }
            Change::User(u) => {
                self.users.insert(u.email.clone(), u);
            }
            Change::Prefix(p) => {
                // A prefix seeded again for another account (allowed while it has no
                // live bindings) leaves its old account's index.
                let old = self.prefixes.get(&p.id).map(|o| &o.account_id);
                file_under(&mut self.prefixes_by_account, old, &p.account_id, &p.id);
                self.prefixes.insert(p.id.clone(), p);
            }
            Change::Region(r) => {
                if let Some(old) = self.regions.get(&RegionId::from_uuid(r.definition.id)) {
                    self.region_by_key.remove(&old.definition.key);
                }
                self.region_by_key.insert(
                    r.definition.key.clone(),
                    RegionId::from_uuid(r.definition.id),
                );
                self.regions.insert(RegionId::from_uuid(r.definition.id), r);
            }
            Change::Binding(b) => {
                if let Some(old) = self.bindings.remove(&b.id) {
                    self.unindex_binding(&old);
                }
                self.index_binding(&b);
                self.bindings.insert(b.id, b);
            }
            Change::AddressMap(m) => {
                // No rule moves a map to another account today; the index must not
                // depend on that.
                let old = self.maps.get(&m.id).map(|o| &o.account_id);
                file_under(&mut self.maps_by_account, old, &m.account_id, &m.id);
                self.maps.insert(m.id.clone(), m);
            }
            Change::DeleteAddressMap(id) => {
                if let Some(m) = self.maps.remove(&id) {
                    if let Some(s) = self.maps_by_account.get_mut(&m.account_id) {
                        s.remove(&id);
                    }
                }
            }
            Change::PurgeBinding(id) => {
                if let Some(old) = self.bindings.remove(&id) {
                    self.unindex_binding(&old);
                    self.purged_through = self.purged_through.max(old.version);
                }
            }
            // Outside a commit (loading a store) nothing follows the clear's version.
            Change::Clear => drop(self.clear(self.version)),
            Change::AdoptTokenKey(k) => {
                if !self.adopted_keys.contains(&k) {
                    self.adopted_keys.push(k);
                }
            }
            Change::EdgeNode(n) => {
                self.edge_nodes.insert(n.node_id.clone(), n);
            }
            Change::RemoveEdgeNode(id) => {
                self.edge_nodes.remove(&id);
            }
        }
    }

    fn index_binding(&mut self, b: &BindingRecord) {
        self.by_version.insert((b.version, b.id));
        if b.awaits_edges() {
            self.awaiting_edges.insert((b.version, b.id));
        }
        if let Some(g) = b.gone_at {
            self.by_gone_at.insert((g, b.id));
        }
        if b.is_live() {
            self.live_order
                .entry(b.account_id.clone())
                .or_default()
                .insert((b.created_at, b.id));
            self.live_by_cidr
                .insert((b.prefix_id.clone(), b.cidr), b.id);
            self.live_by_prefix
                .entry(b.prefix_id.clone())
                .or_default()
                .insert((b.cidr, b.id));
        }
    }

    fn unindex_binding(&mut self, b: &BindingRecord) {
        self.by_version.remove(&(b.version, b.id));
        self.awaiting_edges.remove(&(b.version, b.id));
        if let Some(g) = b.gone_at {
            self.by_gone_at.remove(&(g, b.id));
        }
        if b.is_live() {
            if let Some(s) = self.live_order.get_mut(&b.account_id) {
                s.remove(&(b.created_at, b.id));
            }
            self.live_by_cidr.remove(&(b.prefix_id.clone(), b.cidr));
            if let Some(s) = self.live_by_prefix.get_mut(&b.prefix_id) {
                s.remove(&(b.cidr, b.id));
            }
        }
    }

    /// Every record as a list of upserts, in a deterministic order (adopted keys,
    /// accounts, users, tokens, prefixes, regions, bindings, maps, edge nodes; each sorted by
    /// id). Two states are equal
    /// iff their dumps are.
    pub fn dump(&self) -> Vec<Change> {
        // Keys sorted too: their order means nothing (each is tried), and a store that
        // lists them by name must compare equal.
        let mut keys = self.adopted_keys.clone();
        keys.sort_by_key(TokenKey::to_hex);
        let mut out: Vec<Change> = keys.into_iter().map(Change::AdoptTokenKey).collect();
        let mut a: Vec<_> = self.accounts.values().cloned().collect();
        a.sort_by(|x, y| x.id.cmp(&y.id));
        out.extend(a.into_iter().map(Change::Account));
        let mut u: Vec<_> = self.users.values().cloned().collect();
        u.sort_by(|x, y| x.email.cmp(&y.email));
        out.extend(u.into_iter().map(Change::User));
        let mut t: Vec<_> = self.tokens.values().cloned().collect();
        t.sort_by(|x, y| x.id.cmp(&y.id));
        out.extend(t.into_iter().map(Change::Token));
        let mut p: Vec<_> = self.prefixes.values().cloned().collect();
        p.sort_by(|x, y| x.id.cmp(&y.id));
        out.extend(p.into_iter().map(Change::Prefix));
        let mut r: Vec<_> = self.regions.values().cloned().collect();
        r.sort_by_key(|x| x.definition.id);
        out.extend(r.into_iter().map(Change::Region));
        let mut b: Vec<_> = self.bindings.values().cloned().collect();
        b.sort_by_key(|x| x.id);
        out.extend(b.into_iter().map(Change::Binding));
        let mut m: Vec<_> = self.maps.values().cloned().collect();
        m.sort_by(|x, y| x.id.cmp(&y.id));
        out.extend(m.into_iter().map(Change::AddressMap));
        out.extend(self.edge_nodes.values().cloned().map(Change::EdgeNode));
        out
    }

    /// The account's prefix containing `ip`, if any (prefixes never overlap).
    pub(crate) fn owning_prefix(&self, account: &AccountId, ip: IpAddr) -> Option<&Prefix> {
        self.prefixes_by_account
            .get(account)?
            .iter()
            .filter_map(|id| self.prefixes.get(id))
            .find(|p| p.cidr.contains_ip(ip))
    }

    /// Live bindings of the account whose CIDR contains `ip`: at most one per prefix
    /// length, found by masking `ip` at each length below the owning prefix (≤ 128 hash
    /// lookups, independent of the number of bindings).
    pub(crate) fn live_bindings_covering(
        &self,
        account: &AccountId,
        ip: IpAddr,
    ) -> Vec<&BindingRecord> {
        let Some(prefix) = self.owning_prefix(account, ip) else {
            return Vec::new();
        };
        let max = if ip.is_ipv6() { 128 } else { 32 };
        let mut out = Vec::new();
        for len in prefix.cidr.prefix_len() + 1..=max {
            let Ok(net) = IpNet::new(ip, len) else {
                continue;
            };
            let key = (prefix.id.clone(), Cidr::from_net(net));
            if let Some(b) = self
                .live_by_cidr
                .get(&key)
                .and_then(|id| self.bindings.get(id))
            {
                out.push(b);
            }
        }
        out
    }
}

/// Files `id` under `account` in a per-account index, taking it out of `was` (the
/// account it was filed under before this upsert, if another).
fn file_under<T: Ord + Clone>(
    index: &mut BTreeMap<AccountId, BTreeSet<T>>,
    was: Option<&AccountId>,
    account: &AccountId,
    id: &T,
) {
    if let Some(was) = was.filter(|w| *w != account) {
        if let Some(ids) = index.get_mut(was) {
            ids.remove(id);
        }
    }
    index.entry(account.clone()).or_default().insert(id.clone());
}

#[cfg(test)]
mod tests;
