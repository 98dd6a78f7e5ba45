//! The state's indexes against the records they index.
//!
//! [`State::apply`] keeps a dozen indexes up to date change by change; a restart rebuilds
//! them from the records alone. An index that drifts (an entry left behind when a record
//! moves to another account, say) answers reads wrongly until the next restart, and no
//! restart-equality check sees it, since the rebuilt state is simply right. So random
//! sequences of changes, over small pools of ids so that records are often replaced, are
//! applied one at a time, and after each the indexes must equal what plain scans of the
//! records give (the model below shares no code with `apply`).
//!
//! Changes that break an invariant the rules keep (two live bindings on one CIDR of a
//! prefix, two tokens with one secret, two regions with one key) are left out: the
//! indexes are not meant to describe such states, and the rules never produce them.

use super::*;
use crate::auth::{HashScheme, SecretHash, TokenRecord};
use crate::records::{Account, AddressMap, Approval, BindingRecord, CustomRegion, Prefix};
use crate::records::{EdgeNodeRecord, AWAITING_EDGES};
use inregion_model::{
    AccountId, AddressMapId, BindingId, Cidr, Iata, PermissionSet, PrefixId, RegionDefinition,
    RegionId, RegionKey, ServiceId, Timestamp, TokenId,
};
use proptest::prelude::*;
use std::collections::{BTreeMap, BTreeSet};

fn account_id(n: u8) -> AccountId {
    AccountId::parse(&format!("{n:032x}")).unwrap()
}

fn prefix_id(n: u8) -> PrefixId {
    PrefixId::parse(&format!("{:032x}", 0x100 + n as u32)).unwrap()
}

fn binding_id(n: u8) -> BindingId {
    BindingId::from_uuid(uuid::Uuid::from_u128(0x200 + n as u128))
}

fn region_id(n: u8) -> RegionId {
    RegionId::from_uuid(uuid::Uuid::from_u128(0x300 + n as u128))
}

fn cidr(n: u8) -> Cidr {
    Cidr::parse_strict(&format!("203.0.113.{}/32", n)).unwrap()
}

fn at(secs: u8) -> Timestamp {
    Timestamp::from_secs(secs as i64)
}

/// One generated change, over small pools (ids 0..4 or so).
#[derive(Debug, Clone)]
enum Op {
    Account(u8),
    Token {
        id: u8,
        secret: u8,
    },
    Prefix {
        id: u8,
        account: u8,
    },
    Region {
        id: u8,
        key: u8,
        account: u8,
    },
    Binding {
        id: u8,
        account: u8,
        prefix: u8,
        cidr: u8,
        created: u8,
        version: u8,
        /// 0: live; 1: deleting; 2: deleted, its deletion awaiting the edge nodes.
        deleted: u8,
        awaits_edges: bool,
    },
    Purge(u8),
    Map {
        id: u8,
        account: u8,
    },
    DeleteMap(u8),
    EdgeNode(u8),
    RemoveEdgeNode(u8),
    Clear,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        1 => (0..3u8).prop_map(Op::Account),
        1 => (0..4u8, 0..5u8).prop_map(|(id, secret)| Op::Token { id, secret }),
        1 => (0..4u8, 0..3u8).prop_map(|(id, account)| Op::Prefix { id, account }),
        1 => (0..3u8, 0..4u8, 0..3u8).prop_map(|(id, key, account)| Op::Region { id, key, account }),
        4 => (
            0..6u8,
            0..3u8,
            0..4u8,
            0..3u8,
            0..4u8,
            0..20u8,
            0..3u8,
            any::<bool>()
        )
            .prop_map(
                |(id, account, prefix, cidr, created, version, deleted, awaits_edges)| {
                    Op::Binding {
                        id,
                        account,
                        prefix,
                        cidr,
                        created,
                        version,
                        deleted,
                        awaits_edges,
                    }
                }
            ),
        1 => (0..6u8).prop_map(Op::Purge),
        1 => (0..3u8, 0..3u8).prop_map(|(id, account)| Op::Map { id, account }),
        1 => (0..3u8).prop_map(Op::DeleteMap),
        1 => (0..3u8).prop_map(Op::EdgeNode),
        1 => (0..3u8).prop_map(Op::RemoveEdgeNode),
        1 => Just(Op::Clear),
    ]
}

/// The change `op` stands for, or `None` when it would break an invariant of the rules
/// in `st` (checked by scanning the records).
fn change(st: &State, op: &Op) -> Option<Change> {
    Some(match *op {
        Op::Account(n) => Change::Account(Account {
            id: account_id(n),
            name: format!("account {n}"),
            entitlements: Default::default(),
        }),
        Op::Token { id, secret } => {
            let secret_hash = SecretHash::sha256(&format!("secret {secret}"));
            let id = TokenId::parse(&format!("{:032x}", 0x400 + id as u32)).unwrap();
            if st
                .tokens
                .values()
                .any(|t| t.secret_hash == secret_hash && t.id != id)
            {
                return None;
            }
            Change::Token(TokenRecord {
                id,
                name: String::new(),
                secret_hash,
                hash_scheme: HashScheme::HmacSha256,
                accounts: vec![account_id(0)],
                permissions: PermissionSet::default(),
                not_before: None,
                expires_on: None,
                allowed_ips: Vec::new(),
                revoked: false,
            })
        }
        Op::Prefix { id, account } => Change::Prefix(Prefix {
            id: prefix_id(id),
            account_id: account_id(account),
            cidr: Cidr::parse_strict(&format!("198.51.{id}.0/24")).unwrap(),
            asn: 64496,
            description: String::new(),
            approved: Approval::Approved,
            base_service: ServiceId::parse(&"5".repeat(32)).unwrap(),
            created_at: at(0),
            modified_at: at(0),
        }),
        Op::Region { id, key, account } => {
            let key = RegionKey::parse(&format!("r{key}")).unwrap();
            if st
                .regions
                .values()
                .any(|r| r.definition.key == key && r.definition.id != region_id(id).as_uuid())
            {
                return None;
            }
            Change::Region(CustomRegion {
                account_id: account_id(account),
                definition: RegionDefinition {
                    key,
                    name: String::new(),
                    id: region_id(id).as_uuid(),
                    confirmed: false,
                    note: String::new(),
                    countries: Vec::new(),
                    data_centers: Vec::new(),
                    exclude_countries: Vec::new(),
                },
                version: 1,
                created_at: at(0),
                modified_at: at(0),
                version_created_at: at(0),
            })
        }
        Op::Binding {
            id,
            account,
            prefix,
            cidr: c,
            created,
            version,
            deleted,
            awaits_edges,
        } => {
            let (id, prefix_id, cidr) = (binding_id(id), prefix_id(prefix), cidr(c));
            let (deleted_at, gone_at) = match deleted {
                0 => (None, None),
                1 => (Some(at(50)), Some(at(60))),
                _ => (Some(at(50)), Some(AWAITING_EDGES)),
            };
            if deleted_at.is_none()
                && st.bindings.values().any(|b| {
                    b.id != id && b.is_live() && b.prefix_id == prefix_id && b.cidr == cidr
                })
            {
                return None;
            }
            Change::Binding(BindingRecord {
                id,
                account_id: account_id(account),
                prefix_id,
                cidr,
                region: RegionKey::parse("eu").unwrap(),
                previous_region: None,
                created_at: at(created),
                changed_at: at(created),
                active_at: if awaits_edges && deleted == 0 {
                    AWAITING_EDGES
                } else {
                    at(created + 5)
                },
                deleted_at,
                gone_at,
                version: version as u64,
            })
        }
        Op::Purge(n) => Change::PurgeBinding(binding_id(n)),
        Op::Map { id, account } => Change::AddressMap(AddressMap {
            id: AddressMapId::parse(&format!("{:032x}", 0x500 + id as u32)).unwrap(),
            account_id: account_id(account),
            description: None,
            default_sni: None,
            enabled: true,
            can_delete: true,
            can_modify_ips: true,
            created_at: at(0),
            modified_at: at(0),
            ips: Vec::new(),
            memberships: Vec::new(),
        }),
        Op::DeleteMap(n) => Change::DeleteAddressMap(
            AddressMapId::parse(&format!("{:032x}", 0x500 + n as u32)).unwrap(),
        ),
        Op::EdgeNode(n) => Change::EdgeNode(EdgeNodeRecord {
            node_id: format!("node-{n}"),
            dc: Iata::parse("AMS").unwrap(),
            address: "127.0.0.1:1".into(),
            registered_at: at(0),
        }),
        Op::RemoveEdgeNode(n) => Change::RemoveEdgeNode(format!("node-{n}")),
        Op::Clear => Change::Clear,
    })
}

/// Drops the empty sets a map of sets may keep after removals (they mean nothing).
fn non_empty<K: Ord + Clone, V: Ord + Clone>(
    m: &BTreeMap<K, BTreeSet<V>>,
) -> BTreeMap<K, BTreeSet<V>> {
    m.iter()
        .filter(|(_, s)| !s.is_empty())
        .map(|(k, s)| (k.clone(), s.clone()))
        .collect()
}

fn group<K: Ord, V: Ord>(items: impl Iterator<Item = (K, V)>) -> BTreeMap<K, BTreeSet<V>> {
    let mut out: BTreeMap<K, BTreeSet<V>> = BTreeMap::new();
    for (k, v) in items {
        out.entry(k).or_default().insert(v);
    }
    out
}

/// Every index of `st` equals what scanning its records gives.
fn check_indexes(st: &State) -> Result<(), TestCaseError> {
    for (h, t) in &st.tokens {
        prop_assert_eq!(&t.secret_hash, h, "a token is filed under another secret");
    }
    let token_ids: BTreeMap<_, _> = st
        .tokens
        .values()
        .map(|t| (t.id.clone(), t.secret_hash))
        .collect();
    prop_assert_eq!(&st.token_ids, &token_ids, "token_ids");

    let by_account = group(
        st.prefixes
            .values()
            .map(|p| (p.account_id.clone(), p.id.clone())),
    );
    prop_assert_eq!(
        non_empty(&st.prefixes_by_account),
        by_account,
        "prefixes_by_account"
    );

    let by_key: BTreeMap<_, _> = st
        .regions
        .iter()
        .map(|(id, r)| (r.definition.key.clone(), *id))
        .collect();
    prop_assert_eq!(&st.region_by_key, &by_key, "region_by_key");
    for (id, r) in &st.regions {
        prop_assert_eq!(*id, RegionId::from_uuid(r.definition.id));
    }

    let live = || st.bindings.values().filter(|b| b.is_live());
    prop_assert_eq!(
        non_empty(&st.live_order),
        group(live().map(|b| (b.account_id.clone(), (b.created_at, b.id)))),
        "live_order"
    );
    let by_cidr: BTreeMap<_, _> = live()
        .map(|b| ((b.prefix_id.clone(), b.cidr), b.id))
        .collect();
    prop_assert_eq!(&st.live_by_cidr, &by_cidr, "live_by_cidr");
    prop_assert_eq!(
        non_empty(&st.live_by_prefix),
        group(live().map(|b| (b.prefix_id.clone(), (b.cidr, b.id)))),
        "live_by_prefix"
    );
    let by_version: BTreeSet<_> = st.bindings.values().map(|b| (b.version, b.id)).collect();
    prop_assert_eq!(&st.by_version, &by_version, "by_version");
    let by_gone: BTreeSet<_> = st
        .bindings
        .values()
        .filter_map(|b| b.gone_at.map(|g| (g, b.id)))
        .collect();
    prop_assert_eq!(&st.by_gone_at, &by_gone, "by_gone_at");
    let awaiting: BTreeSet<_> = st
        .bindings
        .values()
        .filter(|b| b.awaits_edges())
        .map(|b| (b.version, b.id))
        .collect();
    prop_assert_eq!(&st.awaiting_edges, &awaiting, "awaiting_edges");

    prop_assert_eq!(
        non_empty(&st.maps_by_account),
        group(
            st.maps
                .values()
                .map(|m| (m.account_id.clone(), m.id.clone()))
        ),
        "maps_by_account"
    );
    for (id, m) in &st.maps {
        prop_assert_eq!(id, &m.id);
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    /// After every change the indexes describe the records, and a state rebuilt from
    /// the records alone (as at a restart) has the same records and indexes.
    #[test]
    fn every_index_matches_the_records_after_every_change(
        ops in prop::collection::vec(op(), 1..80)
    ) {
        let mut st = State::default();
        let mut purged_through = 0;
        for op in &ops {
            let Some(ch) = change(&st, op) else { continue };
            match &ch {
                Change::PurgeBinding(id) => {
                    if let Some(b) = st.bindings.get(id) {
                        purged_through = purged_through.max(b.version);
                    }
                }
                Change::Clear => purged_through = purged_through.max(st.version),
                _ => {}
            }
            st.apply(ch);
            check_indexes(&st)?;
            prop_assert_eq!(st.purged_through, purged_through);
        }
        let mut rebuilt = State::default();
        for ch in st.dump() {
            rebuilt.apply(ch);
        }
        prop_assert_eq!(rebuilt.dump(), st.dump());
        check_indexes(&rebuilt)?;
    }
}

/// The first thing the property found: an address map upserted with another account
/// stayed in the old account's index (no rule moves a map today; the index must not rely
/// on it).
#[test]
fn an_address_map_moved_to_another_account_leaves_the_first_ones_index() {
    let mut st = State::default();
    for account in [0, 1] {
        let ch = change(&st, &Op::Map { id: 0, account }).unwrap();
        st.apply(ch);
    }
    check_indexes(&st).unwrap();
    assert!(!non_empty(&st.maps_by_account).contains_key(&account_id(0)));
}

/// The second: a clear outside a commit (version 0, as a store load applies changes) set
/// `purged_through` back to 0, telling a feed reader behind the purge that its diff was
/// still complete.
#[test]
fn a_clear_never_lowers_purged_through() {
    let mut st = State::default();
    let b = Op::Binding {
        id: 0,
        account: 0,
        prefix: 0,
        cidr: 0,
        created: 0,
        version: 7,
        deleted: 1,
        awaits_edges: false,
    };
    for op in [b, Op::Purge(0), Op::Clear] {
        let ch = change(&st, &op).unwrap();
        st.apply(ch);
    }
    assert_eq!(st.purged_through(), 7);
}
