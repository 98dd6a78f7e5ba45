//! Every store keeps every record exactly: property tests over arbitrary records.
//!
//! The control plane's own tests write records the rules make, with the few field values
//! those tests choose. Here every field of every record type takes arbitrary values in
//! its whole domain (any Unicode text, times from year 0 to 9999, the awaiting-edges
//! marker, versions up to `i64::MAX`, host bits in allowed IP ranges, empty and repeated
//! lists), in a world whose references hold (what the rules guarantee and the database
//! checks). The model is [`State`] itself: applying the same commits in memory. Each
//! store must load back exactly what the model holds:
//!
//! - the SQLite store, after a reopen (rows, columns and bodies, both durability modes);
//! - a snapshot, through its JSON text;
//! - the etcd layout, through its keys and values (in `etcd/layout.rs`, with the
//!   key-value model there).
//!
//! Two commits are written: the world, then a second version of a random part of it
//! (same ids, new fields: the upsert paths), with address maps deleted and deleted
//! bindings purged.

use crate::auth::{HashScheme, SecretHash, TokenKey, TokenRecord, UserRecord};
use crate::records::{
    Account, AddressMap, AddressMapIp, Approval, BindingRecord, CustomRegion, EdgeNodeRecord,
    Membership, MembershipKind, Prefix, AWAITING_EDGES,
};
use crate::state::{Change, Commit, State};
use inregion_model::{
    AccountId, AddressMapId, BindingId, Cidr, CountryCode, Entitlement, Iata, Permission, PrefixId,
    RegionDefinition, RegionKey, Role, ServiceId, Timestamp, TokenId,
};
use ipnet::IpNet;
use proptest::prelude::*;
use proptest::sample::subsequence;
use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;

/// Any time the model can hold, the ends and the awaiting-edges marker included.
pub(crate) fn time() -> impl Strategy<Value = Timestamp> {
    prop_oneof![
        1 => Just(Timestamp::MIN),
        1 => Just(Timestamp::MAX),
        1 => Just(AWAITING_EDGES),
        1 => Just(Timestamp::EPOCH),
        6 => (Timestamp::MIN.as_micros()..=Timestamp::MAX.as_micros()).prop_map(Timestamp::from_micros),
    ]
}

fn text() -> impl Strategy<Value = String> {
    prop_oneof![
        Just(String::new()),
        any::<String>(),
        "[a-zA-Z0-9 .,'\"\\\\/<>&é€😀\u{0}\n\t-]{0,24}",
    ]
}

fn hex32() -> impl Strategy<Value = String> {
    "[0-9a-f]{32}"
}

fn ip() -> impl Strategy<Value = IpAddr> {
    prop_oneof![
        any::<u32>().prop_map(|a| IpAddr::from(std::net::Ipv4Addr::from(a))),
        any::<u128>().prop_map(|a| IpAddr::from(std::net::Ipv6Addr::from(a))),
    ]
}

/// A network with its host bits kept (`10.1.2.3/8`): what a token's allowed ranges may
/// hold as given.
fn net() -> impl Strategy<Value = IpNet> {
    (ip(), any::<u8>()).prop_map(|(ip, len)| {
        let max = if ip.is_ipv4() { 32 } else { 128 };
        IpNet::new(ip, len % (max + 1)).expect("length in range")
    })
}

fn cidr() -> impl Strategy<Value = Cidr> {
    net().prop_map(|n| Cidr::from_net(n.trunc()))
}

fn region_key() -> impl Strategy<Value = RegionKey> {
    "[a-z0-9_-]{1,12}".prop_map(|k| RegionKey::parse(&k).expect("pattern"))
}

fn country() -> impl Strategy<Value = CountryCode> {
    "[A-Z]{2}".prop_map(|c| CountryCode::parse(&c).expect("pattern"))
}

fn iata() -> impl Strategy<Value = Iata> {
    "[A-Z0-9]{3}".prop_map(|c| Iata::parse(&c).expect("pattern"))
}

fn some_of<T: Clone + std::fmt::Debug + 'static>(
    all: &'static [T],
) -> impl Strategy<Value = Vec<T>> {
    subsequence(all.to_vec(), 0..=all.len())
}

/// Ids, references and unique keys: fixed for both versions of a record.
#[derive(Debug, Clone)]
pub(crate) struct Skeleton {
    accounts: Vec<AccountId>,
    users: Vec<String>,
    tokens: Vec<(TokenId, SecretHash)>,
    /// (id, owner (index into `accounts`), CIDR: unique).
    prefixes: Vec<(PrefixId, usize, Cidr)>,
    /// (id, owner, key: unique).
    regions: Vec<(uuid::Uuid, usize, RegionKey)>,
    /// (id, prefix (index into `prefixes`), CIDR: unique within the prefix).
    bindings: Vec<(BindingId, usize, Cidr)>,
    maps: Vec<(AddressMapId, usize)>,
    nodes: Vec<String>,
}

/// Keeps the first of the items with equal keys.
fn unique_by<T, K: Ord>(items: Vec<T>, key: impl Fn(&T) -> K) -> Vec<T> {
    let mut seen = BTreeSet::new();
    items.into_iter().filter(|i| seen.insert(key(i))).collect()
}

fn skeleton() -> impl Strategy<Value = Skeleton> {
    (
        prop::collection::btree_set(hex32(), 1..4),
        prop::collection::btree_set(text(), 0..3),
        prop::collection::btree_map(hex32(), any::<[u8; 32]>(), 0..4),
        prop::collection::vec((hex32(), any::<usize>(), cidr()), 0..4),
        prop::collection::vec((any::<u128>(), any::<usize>(), region_key()), 0..4),
        prop::collection::vec((any::<u128>(), any::<usize>(), cidr()), 0..8),
        prop::collection::btree_map(hex32(), any::<usize>(), 0..3),
        prop::collection::btree_set("[A-Za-z0-9._-]{1,16}", 0..3),
    )
        .prop_map(
            |(accounts, users, tokens, prefixes, regions, bindings, maps, nodes)| {
                let accounts: Vec<AccountId> = accounts
                    .iter()
                    .map(|a| AccountId::parse(a).expect("hex32"))
                    .collect();
                let n = accounts.len();
                let prefixes = unique_by(unique_by(prefixes, |p| p.0.clone()), |p| p.2)
                    .into_iter()
                    .map(|(id, a, c)| (PrefixId::parse(&id).expect("hex32"), a % n, c))
                    .collect::<Vec<_>>();
                let bindings = if prefixes.is_empty() {
                    Vec::new()
                } else {
                    let b = bindings
                        .into_iter()
                        .map(|(id, p, c)| {
                            (
                                BindingId::from_uuid(uuid::Uuid::from_u128(id)),
                                p % prefixes.len(),
                                c,
                            )
                        })
                        .collect();
                    unique_by(unique_by(b, |b| b.0), |b| (b.1, b.2))
                };
                Skeleton {
                    users: users.into_iter().collect(),
                    tokens: unique_by(
                        tokens
                            .into_iter()
                            .map(|(id, h)| (TokenId::parse(&id).expect("hex32"), SecretHash(h)))
                            .collect(),
                        |t| t.1,
                    ),
                    prefixes,
                    regions: unique_by(unique_by(regions, |r| r.0), |r| r.2.clone())
                        .into_iter()
                        .map(|(id, a, k)| (uuid::Uuid::from_u128(id), a % n, k))
                        .collect(),
                    bindings,
                    maps: maps
                        .into_iter()
                        .map(|(id, a)| (AddressMapId::parse(&id).expect("hex32"), a % n))
                        .collect(),
                    nodes: nodes.into_iter().collect(),
                    accounts,
                }
            },
        )
}

fn account(id: AccountId) -> impl Strategy<Value = Change> {
    (text(), some_of(Entitlement::ALL)).prop_map(move |(name, e)| {
        Change::Account(Account {
            id: id.clone(),
            name,
            entitlements: e.into_iter().collect(),
        })
    })
}

fn scheme() -> impl Strategy<Value = HashScheme> {
    prop_oneof![Just(HashScheme::HmacSha256), Just(HashScheme::LegacySha256)]
}

fn user(email: String, accounts: Vec<AccountId>) -> impl Strategy<Value = Change> {
    (
        any::<[u8; 32]>(),
        scheme(),
        subsequence(accounts.clone(), 0..=accounts.len()),
        prop::collection::vec(prop::sample::select(Role::ALL), accounts.len()),
    )
        .prop_map(move |(key, key_scheme, on, roles)| {
            Change::User(UserRecord {
                email: email.clone(),
                key_hash: SecretHash(key),
                key_scheme,
                roles: on.into_iter().zip(roles).collect::<BTreeMap<_, _>>(),
            })
        })
}

fn token(id: TokenId, hash: SecretHash, accounts: Vec<AccountId>) -> impl Strategy<Value = Change> {
    (
        text(),
        scheme(),
        subsequence(accounts.clone(), 0..=accounts.len()),
        some_of(Permission::ALL),
        proptest::option::of(time()),
        proptest::option::of(time()),
        prop::collection::vec(net(), 0..3),
        any::<bool>(),
    )
        .prop_map(
            move |(
                name,
                hash_scheme,
                accounts,
                permissions,
                not_before,
                expires_on,
                allowed_ips,
                revoked,
            )| {
                Change::Token(TokenRecord {
                    id: id.clone(),
                    name,
                    secret_hash: hash,
                    hash_scheme,
                    accounts,
                    permissions: permissions.into_iter().collect(),
                    not_before,
                    expires_on,
                    allowed_ips,
                    revoked,
                })
            },
        )
}

fn prefix(id: PrefixId, account: AccountId, cidr: Cidr) -> impl Strategy<Value = Change> {
    (any::<u32>(), text(), any::<bool>(), hex32(), time(), time()).prop_map(
        move |(asn, description, approved, service, created_at, modified_at)| {
            Change::Prefix(Prefix {
                id: id.clone(),
                account_id: account.clone(),
                cidr,
                asn,
                description,
                approved: if approved {
                    Approval::Approved
                } else {
                    Approval::Pending
                },
                base_service: ServiceId::parse(&service).expect("hex32"),
                created_at,
                modified_at,
            })
        },
    )
}

fn region(id: uuid::Uuid, account: AccountId, key: RegionKey) -> impl Strategy<Value = Change> {
    (
        (text(), any::<bool>(), text()),
        prop::collection::vec(country(), 0..3),
        prop::collection::vec(iata(), 0..3),
        prop::collection::vec(country(), 0..2),
        any::<u64>(),
        (time(), time(), time()),
    )
        .prop_map(
            move |(
                (name, confirmed, note),
                countries,
                data_centers,
                exclude_countries,
                version,
                (c, m, v),
            )| {
                Change::Region(CustomRegion {
                    account_id: account.clone(),
                    definition: RegionDefinition {
                        key: key.clone(),
                        name,
                        id,
                        confirmed,
                        note,
                        countries,
                        data_centers,
                        exclude_countries,
                    },
                    version,
                    created_at: c,
                    modified_at: m,
                    version_created_at: v,
                })
            },
        )
}

fn binding(
    id: BindingId,
    account: AccountId,
    prefix: PrefixId,
    cidr: Cidr,
) -> impl Strategy<Value = Change> {
    (
        region_key(),
        proptest::option::of(region_key()),
        (time(), time(), time()),
        proptest::option::of((time(), time())),
        // What SQLite's integers hold; larger ones are refused at commit (sqlite/tests.rs).
        0..=i64::MAX as u64,
    )
        .prop_map(
            move |(region, previous_region, (a, b, active_at), deleted, version)| {
                // What the database checks: created <= changed, both tombstone times or none.
                Change::Binding(BindingRecord {
                    id,
                    account_id: account.clone(),
                    prefix_id: prefix.clone(),
                    cidr,
                    region,
                    previous_region,
                    created_at: a.min(b),
                    changed_at: a.max(b),
                    active_at,
                    deleted_at: deleted.map(|d| d.0),
                    gone_at: deleted.map(|d| d.1),
                    version,
                })
            },
        )
}

fn map(id: AddressMapId, account: AccountId) -> impl Strategy<Value = Change> {
    (
        (proptest::option::of(text()), proptest::option::of(text())),
        (any::<bool>(), any::<bool>(), any::<bool>()),
        (time(), time()),
        prop::collection::vec((ip(), time()), 0..4),
        prop::collection::vec((hex32(), any::<bool>(), any::<bool>(), time()), 0..3),
    )
        .prop_map(
            move |(
                (description, default_sni),
                (enabled, can_delete, can_modify_ips),
                (c, m),
                ips,
                members,
            )| {
                Change::AddressMap(AddressMap {
                    id: id.clone(),
                    account_id: account.clone(),
                    description,
                    default_sni,
                    enabled,
                    can_delete,
                    can_modify_ips,
                    created_at: c,
                    modified_at: m,
                    // One row per IP in a map (its primary key), in the order kept.
                    ips: unique_by(ips, |i| i.0)
                        .into_iter()
                        .map(|(ip, created_at)| AddressMapIp { ip, created_at })
                        .collect(),
                    memberships: members
                        .into_iter()
                        .map(|(identifier, zone, can_delete, created_at)| Membership {
                            identifier,
                            kind: if zone {
                                MembershipKind::Zone
                            } else {
                                MembershipKind::Account
                            },
                            can_delete,
                            created_at,
                        })
                        .collect(),
                })
            },
        )
}

fn node(id: String) -> impl Strategy<Value = Change> {
    (iata(), text(), time()).prop_map(move |(dc, address, registered_at)| {
        Change::EdgeNode(EdgeNodeRecord {
            node_id: id.clone(),
            dc,
            address,
            registered_at,
        })
    })
}

/// Every record of the skeleton, with arbitrary fields, in an order whose references
/// resolve (accounts first).
fn records(sk: &Skeleton) -> BoxedStrategy<Vec<Change>> {
    let a = &sk.accounts;
    let mut parts: Vec<BoxedStrategy<Change>> = Vec::new();
    parts.extend(a.iter().map(|id| account(id.clone()).boxed()));
    parts.extend(sk.users.iter().map(|e| user(e.clone(), a.clone()).boxed()));
    parts.extend(
        sk.tokens
            .iter()
            .map(|(id, h)| token(id.clone(), *h, a.clone()).boxed()),
    );
    parts.extend(
        sk.prefixes
            .iter()
            .map(|(id, o, c)| prefix(id.clone(), a[*o].clone(), *c).boxed()),
    );
    parts.extend(
        sk.regions
            .iter()
            .map(|(id, o, k)| region(*id, a[*o].clone(), k.clone()).boxed()),
    );
    parts.extend(sk.bindings.iter().map(|(id, p, c)| {
        let (pid, owner, _) = &sk.prefixes[*p];
        binding(*id, a[*owner].clone(), pid.clone(), *c).boxed()
    }));
    parts.extend(
        sk.maps
            .iter()
            .map(|(id, o)| map(id.clone(), a[*o].clone()).boxed()),
    );
    parts.extend(sk.nodes.iter().map(|id| node(id.clone()).boxed()));
    parts.boxed()
}

/// Two commits over one skeleton: the world (version 1), then new versions of a random
/// part of it, address maps deleted, deleted bindings purged, and a key adopted
/// (version 2).
#[derive(Debug, Clone)]
pub(crate) struct History {
    pub(crate) commits: Vec<Commit>,
}

pub(crate) fn history() -> impl Strategy<Value = History> {
    skeleton()
        .prop_flat_map(|sk| {
            let n = sk.accounts.len()
                + sk.users.len()
                + sk.tokens.len()
                + sk.prefixes.len()
                + sk.regions.len()
                + sk.bindings.len()
                + sk.maps.len()
                + sk.nodes.len();
            (
                records(&sk),
                records(&sk),
                prop::collection::vec(any::<bool>(), n),
                prop::collection::vec(any::<bool>(), sk.maps.len()),
                prop::collection::vec(any::<bool>(), sk.bindings.len()),
                any::<bool>(),
            )
        })
        .prop_map(|(first, second, keep, drop_maps, purge, adopt)| {
            let mut changes: Vec<Change> = second
                .into_iter()
                .zip(keep)
                .filter_map(|(c, k)| k.then_some(c))
                .collect();
            let mut st = State::default();
            for c in &first {
                st.apply(c.clone());
            }
            for c in &changes {
                st.apply(c.clone());
            }
            let maps: Vec<_> = st.maps.keys().cloned().collect();
            for (id, d) in maps.into_iter().zip(drop_maps) {
                if d {
                    changes.push(Change::DeleteAddressMap(id));
                }
            }
            let bindings: Vec<_> = st.bindings.values().map(|b| (b.id, b.is_live())).collect();
            for ((id, live), p) in bindings.into_iter().zip(purge) {
                if p && !live {
                    changes.push(Change::PurgeBinding(id));
                }
            }
            if adopt {
                changes.push(Change::AdoptTokenKey(TokenKey::random()));
            }
            History {
                commits: vec![
                    Commit {
                        version: 1,
                        changes: first,
                    },
                    Commit {
                        version: 2,
                        changes,
                    },
                ],
            }
        })
}

impl History {
    /// What the commits leave in memory: the model.
    pub(crate) fn model(&self) -> State {
        let mut st = State::default();
        for c in &self.commits {
            st.apply_commit(c);
        }
        st
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{Durability, Snapshot, SqliteStore, Store};

    fn sqlite_round_trip(h: &History, durability: Durability) -> Result<(), TestCaseError> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.db");
        let want = h.model();
        {
            let mut s = SqliteStore::open_with(&path, durability).unwrap();
            // One commit at a time, then both again as one batch on a fresh file below.
            for c in &h.commits {
                s.commit(&[c])
                    .map_err(|e| TestCaseError::fail(format!("commit: {e}")))?;
            }
        }
        let mut s = SqliteStore::open_with(&path, durability).unwrap();
        let got = State::from_loaded(s.load().unwrap());
        prop_assert_eq!(got.dump(), want.dump());
        prop_assert_eq!(got.version(), want.version());
        prop_assert_eq!(got.purged_through(), want.purged_through());

        let path = dir.path().join("batch.db");
        let mut s = SqliteStore::open_with(&path, durability).unwrap();
        let batch: Vec<&Commit> = h.commits.iter().collect();
        s.commit(&batch)
            .map_err(|e| TestCaseError::fail(format!("batch: {e}")))?;
        drop(s);
        let mut s = SqliteStore::open_with(&path, durability).unwrap();
        let got = State::from_loaded(s.load().unwrap());
        prop_assert_eq!(got.dump(), want.dump());
        Ok(())
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(96))]

        #[test]
        fn sqlite_loads_back_every_record_exactly(h in history()) {
            sqlite_round_trip(&h, Durability::Process)?;
        }

        #[test]
        fn a_snapshot_restores_every_record_exactly(h in history()) {
            let st = h.model();
            let keys = st.adopted_keys.clone();
            let text = Snapshot::of(&st, &keys, Timestamp::EPOCH, 0).to_json();
            let changes = Snapshot::from_json(&text)
                .map_err(|e| TestCaseError::fail(format!("{e}")))?
                .into_changes()
                .map_err(|e| TestCaseError::fail(format!("{e}")))?;
            let mut got = State::default();
            for c in changes {
                got.apply(c);
            }
            // Edge nodes are infrastructure: a snapshot neither saves nor restores them.
            let mut want = st.clone();
            want.edge_nodes.clear();
            prop_assert_eq!(got.dump(), want.dump());
        }
    }

    /// The full durability mode writes through the same code; a few cases suffice.
    #[test]
    fn sqlite_with_full_durability_loads_back_every_record_exactly() {
        let mut runner = proptest::test_runner::TestRunner::new(ProptestConfig::with_cases(8));
        runner
            .run(&history(), |h| sqlite_round_trip(&h, Durability::Full))
            .unwrap();
    }
}
