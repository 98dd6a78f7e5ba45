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
//! | `P want/<replica>` | when (Unix seconds) a replica last lost a commit race and asked for a turn (see the pipeline); keys older than an hour are deleted by the next replica to start |
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
use super::client::{Kv, Op};
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
    /// A replica that lost a commit race asks for a turn (its id, hex).
    Want(u64),
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

    /// Where replica `replica` asks for a turn (the value: when, in Unix seconds).
    pub(crate) fn want(&self, replica: u64) -> Vec<u8> {
        self.key(&format!("want/{replica:016x}"))
    }

    /// Every replica's `want/` key starts with this.
    pub(crate) fn wants(&self) -> Vec<u8> {
        self.key("want/")
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
        if let Some(id) = rest.strip_prefix("want/") {
            return u64::from_str_radix(id, 16).map_or(KeyKind::Unknown, KeyKind::Want);
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
            KeyKind::Meta | KeyKind::TokenKey | KeyKind::Want(_) | KeyKind::Unknown => {
                return Ok(None)
            }
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

/// The layout against a plain model: commits applied to a [`crate::State`] directly must
/// give the same records as (a) their transactions applied to a key-value map and the
/// map listed and decoded (a replica starting, or re-reading), and (b) the same
/// transactions replayed as watch events into a second state (a replica following).
#[cfg(test)]
mod tests {
    use super::super::client::Event;
    use super::super::follow::decode_group;
    use super::super::Remote;
    use super::*;
    use crate::records::{AddressMap, EdgeNodeRecord};
    use crate::state::State;
    use crate::store::fixtures::{account, binding, prefix};
    use inregion_model::{AddressMapId, Iata, Timestamp};
    use proptest::prelude::*;

    #[derive(Debug, Clone)]
    enum Step {
        Create(u8),
        Delete(u8),
        Purge(u8),
        Map(u8),
        DropMap(u8),
        Node(u8),
        DropNode(u8),
        AdoptKey,
        Clear,
    }

    fn step() -> impl Strategy<Value = Step> {
        prop_oneof![
            4 => (0u8..12).prop_map(Step::Create),
            2 => (0u8..12).prop_map(Step::Delete),
            1 => (0u8..12).prop_map(Step::Purge),
            1 => (0u8..4).prop_map(Step::Map),
            1 => (0u8..4).prop_map(Step::DropMap),
            1 => (0u8..3).prop_map(Step::Node),
            1 => (0u8..3).prop_map(Step::DropNode),
            1 => Just(Step::AdoptKey),
            1 => Just(Step::Clear),
        ]
    }

    /// The changes of one step against `st` (the model state before it).
    fn changes(st: &State, s: &Step, version: u64) -> Vec<Change> {
        let a = account();
        let p = prefix(&a);
        let bid =
            |n: u8| inregion_model::BindingId::from_uuid(uuid::Uuid::from_u128(n as u128 + 1));
        let mid = |n: u8| AddressMapId::parse(&format!("{:032x}", n as u128 + 7)).unwrap();
        match s {
            Step::Create(n) => {
                let mut b = binding(&a, &p, &format!("203.0.113.{}/32", n), version);
                b.id = bid(*n);
                vec![Change::Account(a), Change::Prefix(p), Change::Binding(b)]
            }
            Step::Delete(n) => match st.bindings.get(&bid(*n)) {
                Some(b) => {
                    let mut b = b.clone();
                    b.deleted_at = Some(Timestamp::from_secs(10));
                    b.gone_at = Some(Timestamp::from_secs(20));
                    b.version = version;
                    vec![Change::Binding(b)]
                }
                None => vec![],
            },
            Step::Purge(n) => match st.bindings.get(&bid(*n)) {
                Some(b) if b.gone_at.is_some() => vec![Change::PurgeBinding(b.id)],
                _ => vec![],
            },
            Step::Map(n) => vec![
                Change::Account(a.clone()),
                Change::AddressMap(AddressMap {
                    id: mid(*n),
                    account_id: a.id.clone(),
                    description: Some(format!("m{version}")),
                    default_sni: None,
                    enabled: version.is_multiple_of(2),
                    can_delete: true,
                    can_modify_ips: true,
                    created_at: Timestamp::from_secs(1),
                    modified_at: Timestamp::from_secs(version as i64),
                    ips: Vec::new(),
                    memberships: Vec::new(),
                }),
            ],
            Step::DropMap(n) => {
                if st.maps.contains_key(&mid(*n)) {
                    vec![Change::DeleteAddressMap(mid(*n))]
                } else {
                    vec![]
                }
            }
            Step::Node(n) => vec![Change::EdgeNode(EdgeNodeRecord {
                node_id: format!("N{n}"),
                dc: Iata::parse("FRA").unwrap(),
                address: format!("127.0.0.1:{version}"),
                registered_at: Timestamp::from_secs(version as i64),
            })],
            Step::DropNode(n) => vec![Change::RemoveEdgeNode(format!("N{n}"))],
            Step::AdoptKey => vec![Change::AdoptTokenKey(TokenKey::random())],
            Step::Clear => vec![Change::Clear],
        }
    }

    /// Applies a transaction's operations to the key-value model at `revision`, and
    /// returns the events a watch would deliver for it.
    fn apply_ops(kv: &mut BTreeMap<Vec<u8>, Vec<u8>>, ops: &[Op], revision: u64) -> Vec<Event> {
        let mut events = Vec::new();
        let del = |kv: &mut BTreeMap<Vec<u8>, Vec<u8>>, k: &[u8], events: &mut Vec<Event>| {
            if kv.remove(k).is_some() {
                events.push(Event {
                    deleted: true,
                    kv: Kv {
                        key: k.to_vec(),
                        value: Vec::new(),
                        mod_revision: revision,
                    },
                });
            }
        };
        for op in ops {
            match op {
                Op::Put(k, v) => {
                    kv.insert(k.clone(), v.clone());
                    events.push(Event {
                        deleted: false,
                        kv: Kv {
                            key: k.clone(),
                            value: v.clone(),
                            mod_revision: revision,
                        },
                    });
                }
                Op::Delete(k) => del(kv, k, &mut events),
                Op::DeletePrefix(p) => {
                    let keys: Vec<_> = kv.keys().filter(|k| k.starts_with(p)).cloned().collect();
                    for k in keys {
                        del(kv, &k, &mut events);
                    }
                }
                Op::Get(_) => {}
            }
        }
        events
    }

    /// Writes each group of commits as one transaction (with its `meta`) into the
    /// key-value model; a follower applies the watch events of each, and must equal the
    /// model after every group; at the end a listing of the keys must too, with nothing of
    /// an older generation left behind.
    fn check_layout(groups: &[Vec<Commit>]) -> Result<(), TestCaseError> {
        let layout = Layout::new("/t/");
        let mut model = State::default();
        let mut kv: BTreeMap<Vec<u8>, Vec<u8>> = BTreeMap::new();
        let mut follower = State::default();
        let (mut generation, mut follower_gen) = (0, 0);
        for (i, commits) in groups.iter().enumerate() {
            let refs: Vec<&Commit> = commits.iter().collect();
            let (mut ops, g) = layout.batch_ops(&refs, generation).unwrap();
            generation = g;
            for c in commits {
                model.apply_commit(c);
            }
            let meta = Meta {
                format: FORMAT,
                version: model.version,
                purged_through: model.purged_through,
                generation,
                nonce: i as u64,
            };
            ops.push(Op::Put(layout.meta(), serde_json::to_vec(&meta).unwrap()));
            let events = apply_ops(&mut kv, &ops, i as u64 + 1);

            // (b) the follower, from the watch events.
            match decode_group(&layout, &events, follower_gen, 0).unwrap() {
                Some(Remote::Batch {
                    commit,
                    purged_through,
                    generation: g,
                    ..
                }) => {
                    follower.apply_commit(&commit);
                    follower.purged_through = purged_through;
                    follower_gen = g;
                }
                other => panic!("{other:?}"),
            }
            prop_assert_eq!(follower.dump(), model.dump());
            prop_assert_eq!(follower.purged_through, model.purged_through);
        }
        // (a) a listing of the key-value model.
        let mut records = Vec::new();
        for (k, v) in &kv {
            let kv = Kv {
                key: k.clone(),
                value: v.clone(),
                mod_revision: 1,
            };
            records.extend(layout.decode_put(&kv, generation).unwrap());
        }
        let mut listed = State::default();
        for r in records {
            listed.apply(r);
        }
        prop_assert_eq!(listed.dump(), model.dump());
        // Nothing of an older generation is left behind.
        let current = layout.generation(generation);
        prop_assert!(kv
            .keys()
            .all(|k| !k.starts_with(b"/t/g") || k.starts_with(&current)));
        Ok(())
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(200))]
        #[test]
        fn transactions_listings_and_watch_events_rebuild_the_same_state(
            batches in proptest::collection::vec(proptest::collection::vec(step(), 1..5), 1..25)
        ) {
            let mut model = State::default();
            let mut version = 0;
            let mut groups = Vec::new();
            for batch in &batches {
                // One group commit: each step one commit, validated on the model so far.
                let mut commits = Vec::new();
                for s in batch {
                    let ch = changes(&model, s, version + 1);
                    if ch.is_empty() {
                        continue;
                    }
                    version += 1;
                    let c = Commit { version, changes: ch };
                    model.apply_commit(&c);
                    commits.push(c);
                }
                if !commits.is_empty() {
                    groups.push(commits);
                }
            }
            check_layout(&groups)?;
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(96))]
        /// Arbitrary field values of every record type (`store/round_trip.rs`), one
        /// commit per transaction.
        #[test]
        fn arbitrary_records_survive_transactions_listings_and_watch_events(
            h in crate::store::round_trip::history()
        ) {
            let groups: Vec<Vec<Commit>> = h.commits.iter().map(|c| vec![c.clone()]).collect();
            check_layout(&groups)?;
        }
    }

    #[test]
    fn keys_are_classified() {
        let l = Layout::new("/p/");
        assert_eq!(l.kind(b"/p/meta"), KeyKind::Meta);
        assert_eq!(l.kind(b"/p/token-key"), KeyKind::TokenKey);
        assert_eq!(l.kind(b"/p/nodes/FRA"), KeyKind::Node("FRA"));
        assert_eq!(
            l.kind(&l.record(3, 'b', "x")),
            KeyKind::Record {
                generation: 3,
                kind: b'b',
                id: "x"
            }
        );
        assert_eq!(l.kind(b"/q/meta"), KeyKind::Unknown);
        assert_eq!(l.kind(&l.want(0xab)), KeyKind::Want(0xab));
        assert_eq!(l.kind(b"/p/want/zz"), KeyKind::Unknown);
        assert_eq!(l.kind(b"/p/g/zz"), KeyKind::Unknown);
    }
}
