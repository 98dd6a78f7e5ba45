//! Where each record lives in etcd, and how a batch of commits becomes one transaction's
//! operations (and a watch event or a listing becomes changes again).
//!
//! Under the prefix `P` (`--etcd-prefix`, default `/inregion/`):
//!
//! | key | value |
//! | --- | --- |
//! | `P meta` | [`Meta`]: the version, the purge horizon, the generation; written by every transaction, whose condition is this key's `mod_revision` |
//! | `P token-key` | the [`TokenKey`] secrets are hashed with (64 hex), created once |
//! | `P keys/<hex>` | a key adopted from a restored snapshot |
//! | `P nodes/<id>` | an edge node's registration |
//! | `P g<generation>/a/<id>` | an account (`u/` users by e-mail, `t/` tokens, `p/` prefixes, `r/` custom regions, `b/` bindings, `m/` address maps) |
//!
//! Values are the store's own row bodies (`rows.rs`), the same JSON the SQLite store
//! keeps, never the API's shapes. A reset ([`Change::Clear`]) cannot delete a range and
//! write keys inside it in one etcd transaction, so the records live under a generation:
//! a clear moves the records to the next generation and deletes the old one's range in
//! the same transaction.

use super::super::rows::{
    AccountRow, BindingRow, EdgeNodeRow, OwnedMapRow, PrefixRow, RegionRow, TokenRow, UserRow,
};
use super::gateway::{Kv, Op};
use crate::auth::TokenKey;
use crate::records::AddressMap;
use crate::state::{Change, Commit};
use inregion_model::{AddressMapId, BindingId};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// The value of `P meta`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Meta {
    /// The layout's format (1).
    pub(crate) format: u32,
    /// The version of the last commit.
    pub(crate) version: u64,
    /// [`crate::State::purged_through`] after the last commit.
    pub(crate) purged_through: u64,
    /// The generation the records live under.
    pub(crate) generation: u64,
    /// Random per transaction: tells its writer, after an answer was lost, whether the
    /// transaction that followed a revision was its own.
    pub(crate) nonce: u64,
}

/// The layout's format.
pub(crate) const FORMAT: u32 = 1;

/// Why a stored key or value does not decode.
pub(crate) type LayoutError = String;

/// What a key under the prefix holds.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum KeyKind<'a> {
    Meta,
    TokenKey,
    Adopted,
    Node(&'a str),
    /// A record of `generation`: its kind letter and id.
    Record {
        generation: u64,
        kind: u8,
        id: &'a str,
    },
    Unknown,
}

/// The keys of one prefix.
#[derive(Debug, Clone)]
pub(crate) struct Layout {
    prefix: Vec<u8>,
}

impl Layout {
    pub(crate) fn new(prefix: &str) -> Self {
        Self {
            prefix: prefix.as_bytes().to_vec(),
        }
    }

    pub(crate) fn prefix(&self) -> &[u8] {
        &self.prefix
    }

    fn key(&self, rest: &str) -> Vec<u8> {
        let mut k = self.prefix.clone();
        k.extend_from_slice(rest.as_bytes());
        k
    }

    pub(crate) fn meta(&self) -> Vec<u8> {
        self.key("meta")
    }

    pub(crate) fn token_key(&self) -> Vec<u8> {
        self.key("token-key")
    }

    /// The range of a generation's records.
    pub(crate) fn generation(&self, g: u64) -> Vec<u8> {
        self.key(&format!("g{g:016x}/"))
    }

    fn record(&self, g: u64, kind: char, id: &str) -> Vec<u8> {
        self.key(&format!("g{g:016x}/{kind}/{id}"))
    }

    /// What `key` (a key under the prefix) holds.
    pub(crate) fn kind<'a>(&self, key: &'a [u8]) -> KeyKind<'a> {
        let Some(rest) = key
            .strip_prefix(self.prefix.as_slice())
            .and_then(|r| std::str::from_utf8(r).ok())
        else {
            return KeyKind::Unknown;
        };
        match rest {
            "meta" => return KeyKind::Meta,
            "token-key" => return KeyKind::TokenKey,
            _ => {}
        }
        if rest.starts_with("keys/") {
            return KeyKind::Adopted;
        }
        if let Some(id) = rest.strip_prefix("nodes/") {
            return KeyKind::Node(id);
        }
        let parsed = (|| {
            let rest = rest.strip_prefix('g')?;
            let (g, rest) = rest.split_once('/')?;
            let generation = u64::from_str_radix(g, 16).ok()?;
            let (kind, id) = rest.split_once('/')?;
            let [kind] = kind.as_bytes() else {
                return None;
            };
            Some(KeyKind::Record {
                generation,
                kind: *kind,
                id,
            })
        })();
        parsed.unwrap_or(KeyKind::Unknown)
    }

    /// The operations of one transaction that applies `commits` on top of `generation`,
    /// and the generation after them. Later changes of a key replace earlier ones (etcd
    /// refuses a transaction that writes a key twice), and a clear drops what came
    /// before it and deletes the old generation's range.
    pub(crate) fn batch_ops(
        &self,
        commits: &[&Commit],
        generation: u64,
    ) -> Result<(Vec<Op>, u64), LayoutError> {
        let mut g = generation;
        let mut ops: BTreeMap<Vec<u8>, Option<Vec<u8>>> = BTreeMap::new();
        let json = |v: &dyn erased::Json| v.json();
        for c in commits {
            for ch in &c.changes {
                let (key, value) = match ch {
                    Change::Account(a) => (
                        self.record(g, 'a', a.id.as_str()),
                        Some(json(&AccountRow::of(a))?),
                    ),
                    Change::User(u) => {
                        (self.record(g, 'u', &u.email), Some(json(&UserRow::of(u))?))
                    }
                    Change::Token(t) => (
                        self.record(g, 't', t.id.as_str()),
                        Some(json(&TokenRow::of(t))?),
                    ),
                    Change::Prefix(p) => (
                        self.record(g, 'p', p.id.as_str()),
                        Some(json(&PrefixRow::of(p))?),
                    ),
                    Change::Region(r) => (
                        self.record(g, 'r', &r.definition.id.to_string()),
                        Some(json(&RegionRow::of(r))?),
                    ),
                    Change::Binding(b) => (
                        self.record(g, 'b', &b.id.to_string()),
                        Some(json(&BindingRow::of(b))?),
                    ),
                    Change::AddressMap(m) => (
                        self.record(g, 'm', m.id.as_str()),
                        Some(json(&owned_map(m))?),
                    ),
                    Change::DeleteAddressMap(id) => (self.record(g, 'm', id.as_str()), None),
                    Change::PurgeBinding(id) => (self.record(g, 'b', &id.to_string()), None),
                    Change::AdoptTokenKey(k) => (
                        self.key(&format!("keys/{}", k.to_hex())),
                        Some(k.to_hex().into_bytes()),
                    ),
                    Change::EdgeNode(n) => (
                        self.key(&format!("nodes/{}", n.node_id)),
                        Some(json(&EdgeNodeRow::of(n))?),
                    ),
                    Change::RemoveEdgeNode(id) => (self.key(&format!("nodes/{id}")), None),
                    Change::Clear => {
                        g += 1;
                        let records = self.key("g");
                        ops.retain(|k, _| !k.starts_with(&records));
                        continue;
                    }
                };
                ops.insert(key, value);
            }
        }
        let mut out = Vec::with_capacity(ops.len() + 1);
        if g != generation {
            out.push(Op::DeletePrefix(self.generation(generation)));
        }
        for (k, v) in ops {
            out.push(match v {
                Some(v) => Op::Put(k, v),
                None => Op::Delete(k),
            });
        }
        Ok((out, g))
    }

    /// A stored record of `generation` (or a key outside the generations) as the change
    /// that upserts it; `None` for the meta keys and records of other generations.
    pub(crate) fn decode_put(
        &self,
        kv: &Kv,
        generation: u64,
    ) -> Result<Option<Change>, LayoutError> {
        let bad = |e: String| format!("{}: {e}", String::from_utf8_lossy(&kv.key));
        fn row<T: for<'de> Deserialize<'de>>(v: &[u8]) -> Result<T, String> {
            serde_json::from_slice(v).map_err(|e| e.to_string())
        }
        Ok(Some(match self.kind(&kv.key) {
            KeyKind::Meta | KeyKind::TokenKey | KeyKind::Unknown => return Ok(None),
            KeyKind::Adopted => {
                let text = std::str::from_utf8(&kv.value).map_err(|e| bad(e.to_string()))?;
                Change::AdoptTokenKey(
                    TokenKey::from_hex(text).ok_or_else(|| bad("not 64 hex digits".into()))?,
                )
            }
            KeyKind::Node(_) => Change::EdgeNode(
                row::<EdgeNodeRow>(&kv.value)
                    .and_then(EdgeNodeRow::get)
                    .map_err(bad)?,
            ),
            KeyKind::Record { generation: g, .. } if g != generation => return Ok(None),
            KeyKind::Record { kind, .. } => {
                let v = &kv.value;
                match kind {
                    b'a' => Change::Account(
                        row::<AccountRow>(v)
                            .and_then(AccountRow::get)
                            .map_err(bad)?,
                    ),
                    b'u' => Change::User(row::<UserRow>(v).and_then(UserRow::get).map_err(bad)?),
                    b't' => Change::Token(row::<TokenRow>(v).and_then(TokenRow::get).map_err(bad)?),
                    b'p' => {
                        Change::Prefix(row::<PrefixRow>(v).and_then(PrefixRow::get).map_err(bad)?)
                    }
                    b'r' => {
                        Change::Region(row::<RegionRow>(v).and_then(RegionRow::get).map_err(bad)?)
                    }
                    b'b' => Change::Binding(
                        row::<BindingRow>(v)
                            .and_then(BindingRow::get)
                            .map_err(bad)?,
                    ),
                    b'm' => {
                        let o = row::<OwnedMapRow>(v).map_err(bad)?;
                        Change::AddressMap(o.map.get(&o.account_id).map_err(bad)?)
                    }
                    _ => return Err(bad("unknown record kind".into())),
                }
            }
        }))
    }

    /// A deleted key of `generation` as the change that removes its record; `None` for
    /// keys a deletion of which changes nothing in memory (another generation's range).
    pub(crate) fn decode_delete(
        &self,
        key: &[u8],
        generation: u64,
    ) -> Result<Option<Change>, LayoutError> {
        let bad = |e: &str| format!("{}: {e}", String::from_utf8_lossy(key));
        Ok(match self.kind(key) {
            KeyKind::Node(id) => Some(Change::RemoveEdgeNode(id.to_owned())),
            KeyKind::Record {
                generation: g,
                kind,
                id,
            } if g == generation => match kind {
                b'b' => Some(Change::PurgeBinding(
                    BindingId::parse(id).map_err(|e| bad(&e.to_string()))?,
                )),
                b'm' => Some(Change::DeleteAddressMap(
                    AddressMapId::parse(id).map_err(|e| bad(&e.to_string()))?,
                )),
                _ => return Err(bad("records of this kind are never deleted")),
            },
            _ => None,
        })
    }
}

fn owned_map(m: &AddressMap) -> OwnedMapRow {
    OwnedMapRow {
        account_id: m.account_id.as_str().to_owned(),
        map: super::super::rows::AddressMapRow::of(m),
    }
}

/// Encoding a row body without naming its type at each call.
mod erased {
    pub(super) trait Json {
        fn json(&self) -> Result<Vec<u8>, String>;
    }
    impl<T: serde::Serialize> Json for T {
        fn json(&self) -> Result<Vec<u8>, String> {
            serde_json::to_vec(self).map_err(|e| format!("encoding a row: {e}"))
        }
    }
}
