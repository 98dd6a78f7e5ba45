//! Model-based property tests: random sequences of operations (valid and invalid) are
//! applied to the real control plane over the real store (SQLite in a temp dir, and the
//! memory store) and to a plain model written here with simple `Vec` scans. After every
//! step, results (success or error code) and the observable state (bindings listed page by
//! page, provisioning states, the data plane's bindings in force, the version) must
//! agree. At the end, a control plane reopened from the store must equal the one before.
//!
//! Over the memory store, some operations run with a commit failure armed: a failure
//! (`fail_next_commits`) must change nothing, and the same operation must then succeed as
//! the model says; a disk failure (`fail_next_commit_as_disk`) must change nothing and
//! halt writes until the control plane is reopened, after which the operation succeeds.
//!
//! The model shares no rule code with the crate: the CIDR inputs come from a table with
//! hand-written expectations (canonical text or "invalid"), containment uses `ipnet`.

use inregion_control::*;
use ipnet::IpNet;
use proptest::prelude::*;
use std::time::Duration;

const ACCT: &str = "0123456789abcdef0123456789abcdef";
const P4: &str = "a1b2c3d4-e5f6-7890-abcd-ef1234567890";
const P6: &str = "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb";
const TOKEN: &str = "model-token-00000000000000000000";
const HOUR: i64 = 3600;
const DELAY_H: i64 = 5;
/// Tombstones are kept this long after their deletion propagated.
const RETENTION_H: i64 = 1;

/// Prefix choices: (input, Some(cidr) if the account owns it).
const PREFIXES: &[(&str, Option<&str>)] = &[
    (P4, Some("203.0.113.0/24")),
    (P6, Some("2001:db8::/32")),
    ("eeeeeeeeeeeeeeeeeeeeeeeeeeeeeeee", None),
];

/// CIDR choices: (input, Some(canonical) when it parses strictly).
const CIDRS: &[(&str, Option<&str>)] = &[
    ("203.0.113.0/24", Some("203.0.113.0/24")),
    ("203.0.113.0/25", Some("203.0.113.0/25")),
    ("203.0.113.128/25", Some("203.0.113.128/25")),
    ("203.0.113.0/26", Some("203.0.113.0/26")),
    ("203.0.113.64/26", Some("203.0.113.64/26")),
    ("203.0.113.5/32", Some("203.0.113.5/32")),
    ("203.0.113.5/24", None),
    ("203.0.113.05/32", None),
    ("203.0.114.0/25", Some("203.0.114.0/25")),
    ("2001:db8::/32", Some("2001:db8::/32")),
    ("2001:db8::/48", Some("2001:db8::/48")),
    ("2001:DB8:0::/48", Some("2001:db8::/48")),
    ("2001:db8:0:1::/64", Some("2001:db8:0:1::/64")),
    ("2001:db8::1/64", None),
    ("::ffff:203.0.113.0/120", Some("::ffff:cb00:7100/120")),
    ("2001:db8::%eth0/48", None),
    ("", None),
];

/// Region choices: (input, pattern ok, available).
const REGIONS: &[(&str, bool, bool)] = &[
    ("eu", true, true),
    ("us", true, true),
    ("acme", true, true),
    ("EU", false, false),
    ("mars", true, false),
];

/// IP choices for address-map writes: (input, valid text, in an owned prefix).
const IPS: &[(&str, bool, bool)] = &[
    ("203.0.113.1", true, true),
    ("203.0.113.70", true, true),
    ("203.0.113.5", true, true),
    ("203.0.113.200", true, true),
    ("2001:db8::1", true, true),
    ("2001:db8:0:1::9", true, true),
    ("192.0.2.1", true, false),
    ("203.0.113.01", false, false),
];

#[derive(Debug, Clone)]
enum Op {
    Create {
        prefix: usize,
        cidr: usize,
        region: usize,
    },
    Patch {
        target: usize,
        region: usize,
        extra_field: bool,
    },
    Delete {
        target: usize,
    },
    AddIp {
        ip: usize,
    },
    CreateMap {
        ips: Vec<usize>,
    },
    Advance {
        minutes: u32,
    },
    /// Purge tombstones past the retention window.
    Purge,
    /// An edge node reports (registers) or is deregistered.
    Node {
        node: usize,
        register: bool,
    },
}

/// Edge node choices: (node id, data center).
const NODES: &[(&str, &str)] = &[("FRA", "FRA"), ("IAD", "IAD"), ("nrt-2", "NRT")];
/// A node not heard from for this long is forgotten (the default expiry).
const EXPIRY_S: i64 = 3600;

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        6 => (0..PREFIXES.len(), 0..CIDRS.len(), 0..REGIONS.len())
            .prop_map(|(prefix, cidr, region)| Op::Create { prefix, cidr, region }),
        2 => (0..12usize, 0..REGIONS.len(), prop::bool::weighted(0.1))
            .prop_map(|(target, region, extra_field)| Op::Patch { target, region, extra_field }),
        3 => (0..4usize).prop_map(|target| Op::Delete { target }),
        2 => (0..IPS.len()).prop_map(|ip| Op::AddIp { ip }),
        1 => prop::collection::vec(0..IPS.len(), 0..4).prop_map(|ips| Op::CreateMap { ips }),
        3 => (0u32..600).prop_map(|minutes| Op::Advance { minutes }),
        2 => Just(Op::Purge),
        2 => (0..NODES.len(), prop::bool::weighted(0.7))
            .prop_map(|(node, register)| Op::Node { node, register }),
    ]
}

/// The plain model of one binding.
#[derive(Debug, Clone)]
struct MB {
    id: BindingId,
    prefix: String,
    cidr: String,
    net: IpNet,
    region: String,
    prev: Option<String>,
    created: i64,
    active: i64,
    deleted: Option<i64>,
}

impl MB {
    fn live(&self) -> bool {
        self.deleted.is_none()
    }
    /// Region in force at `now` (contract §10, our §8 choices), written independently.
    fn in_force(&self, now: i64) -> Option<String> {
        let mut at = now;
        if let Some(d) = self.deleted {
            if now >= d + DELAY_H * HOUR {
                return None;
            }
            if now > d {
                at = d;
            }
        }
        if at >= self.active {
            Some(self.region.clone())
        } else {
            self.prev.clone()
        }
    }
}

#[derive(Default, Clone)]
struct Model {
    now: i64,
    bindings: Vec<MB>,
    map_ips: Vec<String>,
    maps: usize,
    version: u64,
    /// Registered edge nodes and when each last reported.
    nodes: std::collections::BTreeMap<String, i64>,
    /// When this run of the control plane first looked at its nodes: a node registered
    /// before a restart counts as last heard from then (when it reported is not durable).
    registry_started: Option<i64>,
}

impl Model {
    fn gated(&self, ip: std::net::IpAddr) -> bool {
        self.bindings
            .iter()
            .any(|b| b.live() && b.net.contains(&ip) && self.now < b.active)
    }
    fn check_ip(&self, i: usize) -> Result<(), u32> {
        let (text, valid, owned) = IPS[i];
        if !valid {
            return Err(1305);
        }
        if !owned {
            return Err(1302);
        }
        if self.gated(text.parse().unwrap()) {
            return Err(1301);
        }
        Ok(())
    }
}

fn secs(t: Timestamp) -> i64 {
    t.as_micros() / 1_000_000
}

struct Harness {
    cp: ControlPlane,
    p: Principal,
    map: String,
    base: i64,
}

fn open(store: Box<dyn Store>) -> ControlPlane {
    open_with_ids(store, Some(1))
}

/// [`open`] with another id seed (`None`: random), for a restart: the first run's seed
/// would hand out its ids again.
fn open_with_ids(store: Box<dyn Store>, id_seed: Option<u64>) -> ControlPlane {
    ControlPlane::open(
        store,
        ControlConfig {
            propagation_delay: Duration::from_secs((DELAY_H * HOUR) as u64),
            id_seed,
            tombstone_retention: Duration::from_secs((RETENTION_H * HOUR) as u64),
            ..ControlConfig::default()
        },
    )
    .unwrap()
}

fn setup(cp: ControlPlane, m: &mut Model) -> Harness {
    let base = 1_800_000_000;
    let now = Timestamp::from_secs(base);
    let seed = SeedConfig::from_toml(&format!(
        r#"
[[accounts]]
id = "{ACCT}"
entitlements = ["regional_services", "regional_services_byoip"]
[[tokens]]
secret = "{TOKEN}"
accounts = ["{ACCT}"]
permissions = ["DLS: Write", "IP Prefixes: Write", "Address Maps Write"]
[[prefixes]]
account = "{ACCT}"
id = "{P4}"
cidr = "203.0.113.0/24"
asn = 64496
[[prefixes]]
account = "{ACCT}"
id = "{P6}"
cidr = "2001:db8::/32"
asn = 64496
[[regions]]
account = "{ACCT}"
key = "acme"
name = "ACME"
countries = ["DE"]
"#
    ))
    .unwrap();
    cp.seed(&seed, now).unwrap();
    let p = cp
        .authenticate(&Credentials::ApiToken(TOKEN.into()), None, now)
        .unwrap();
    let map = cp
        .create_address_map(&p, ACCT, CreateAddressMap::default(), now)
        .unwrap()
        .id
        .to_string();
    m.now = base;
    m.version = cp.version();
    m.maps = 1;
    Harness { cp, p, map, base }
}

fn target_id(m: &Model, t: usize) -> String {
    match m.bindings.get(t) {
        Some(b) => b.id.to_string(),
        None => format!("00000000-0000-4000-8000-{t:012}"),
    }
}

fn code<T, E: ApiError>(r: &Result<T, E>) -> Result<(), u32> {
    match r {
        Ok(_) => Ok(()),
        Err(e) => Err(e.code()),
    }
}

fn step(h: &Harness, m: &mut Model, op: &Op) -> Result<(), TestCaseError> {
    let now = Timestamp::from_secs(m.now);
    match op {
        Op::Create {
            prefix,
            cidr,
            region,
        } => {
            let (pin, powned) = PREFIXES[*prefix];
            let (cin, canon) = CIDRS[*cidr];
            let (rin, rpat, ravail) = REGIONS[*region];
            let real =
                h.cp.create_binding(&h.p, ACCT, CreateBinding::new(pin, cin, rin), now);
            let expect: Result<(), u32> = (|| {
                if cin.is_empty() {
                    return Err(1101);
                }
                if !rpat {
                    return Err(1107);
                }
                let canon = canon.ok_or(1102u32)?;
                let pcidr: IpNet = powned.ok_or(1105u32)?.parse().unwrap();
                let net: IpNet = canon.parse().unwrap();
                let whole = net == pcidr;
                let inside = pcidr.contains(&net)
                    && net.prefix_len() > pcidr.prefix_len()
                    && (net.addr().is_ipv4() == pcidr.addr().is_ipv4());
                if !whole && !inside {
                    return Err(1103);
                }
                if !ravail {
                    return Err(1106);
                }
                if whole
                    || m.bindings
                        .iter()
                        .any(|b| b.live() && b.prefix == pin && b.cidr == canon)
                {
                    return Err(1108);
                }
                Ok(())
            })();
            prop_assert_eq!(code(&real), expect, "create {:?}", op);
            if let Ok(c) = real {
                prop_assert_eq!(c.result.cidr.to_string(), canon.unwrap());
                m.bindings.push(MB {
                    id: c.result.id,
                    prefix: pin.into(),
                    cidr: canon.unwrap().into(),
                    net: canon.unwrap().parse().unwrap(),
                    region: rin.into(),
                    prev: None,
                    created: m.now,
                    active: m.now + DELAY_H * HOUR,
                    deleted: None,
                });
                m.version += 1;
            }
        }
        Op::Patch {
            target,
            region,
            extra_field,
        } => {
            let (rin, rpat, ravail) = REGIONS[*region];
            let id = target_id(m, *target);
            let input = UpdateBinding {
                region_key: Some(rin.into()),
                other_fields: if *extra_field {
                    vec!["cidr".into()]
                } else {
                    vec![]
                },
            };
            let real = h.cp.patch_binding(&h.p, ACCT, &id, input, now);
            let idx = m
                .bindings
                .iter()
                .position(|b| b.id.to_string() == id && b.live());
            let expect = if *extra_field {
                Err(1113)
            } else if !rpat {
                Err(1107)
            } else if idx.is_none() {
                Err(1109)
            } else if !ravail {
                Err(1106)
            } else {
                Ok(())
            };
            prop_assert_eq!(code(&real), expect, "patch {:?}", op);
            if let (Ok(v), Some(i)) = (real, idx) {
                prop_assert_eq!(v.region_key.as_str(), rin);
                let now_s = m.now;
                let b = &mut m.bindings[i];
                if b.region != rin {
                    b.prev = b.in_force(now_s);
                    b.region = rin.into();
                    b.active = now_s + DELAY_H * HOUR;
                    m.version += 1;
                }
            }
        }
        Op::Delete { target } => {
            let id = target_id(m, *target);
            let real = h.cp.delete_binding(&h.p, ACCT, &id, now);
            let idx = m
                .bindings
                .iter()
                .position(|b| b.id.to_string() == id && b.live());
            prop_assert_eq!(code(&real), if idx.is_some() { Ok(()) } else { Err(1109) });
            if let Some(i) = idx {
                m.bindings[i].deleted = Some(m.now);
                m.version += 1;
            }
        }
        Op::AddIp { ip } => {
            let real = h.cp.add_address_map_ip(&h.p, ACCT, &h.map, IPS[*ip].0, now);
            let expect = m.check_ip(*ip);
            prop_assert_eq!(code(&real), expect, "add ip {:?}", op);
            let canon = IPS[*ip].0.to_string();
            if expect.is_ok() && !m.map_ips.contains(&canon) {
                m.map_ips.push(canon);
                m.version += 1;
            }
            if let Ok(map) = real {
                prop_assert_eq!(map.ips.len(), m.map_ips.len());
            }
        }
        Op::CreateMap { ips } => {
            let input = CreateAddressMap {
                ips: ips.iter().map(|i| IPS[*i].0.to_string()).collect(),
                ..Default::default()
            };
            let real = h.cp.create_address_map(&h.p, ACCT, input, now);
            let first_bad = ips
                .iter()
                .enumerate()
                .find_map(|(n, i)| m.check_ip(*i).err().map(|c| (n, c)));
            match (&real, first_bad) {
                (Ok(_), None) => {
                    m.maps += 1;
                    m.version += 1;
                }
                (Err(e), Some((n, c))) => {
                    prop_assert_eq!(e.code(), c);
                    prop_assert_eq!(e.pointer(), Some(format!("/ips/{n}")));
                }
                (r, want) => prop_assert!(
                    false,
                    "create map: got {:?}, want {:?}",
                    r.as_ref().map(|_| ()),
                    want
                ),
            }
        }
        Op::Advance { minutes } => m.now += i64::from(*minutes) * 60,
        Op::Node { node, register } => {
            let (id, dc) = NODES[*node];
            // Any call on the registry starts its run's liveness baseline.
            let started = *m.registry_started.get_or_insert(m.now);
            // The registry runs on the wall clock; here the same as the emulated one.
            let accepted = if *register {
                let report = inregion_feed::wire::NodeReport {
                    dc: inregion_model::Iata::parse(dc).unwrap(),
                    address: "127.0.0.1:9000".into(),
                    applied_version: m.version,
                };
                let real = h.cp.report_edge_node(id, &report, now, now);
                prop_assert!(real.is_ok(), "{:?}", real);
                if m.nodes.insert(id.to_owned(), m.now).is_none() {
                    m.version += 1;
                }
                true
            } else {
                let existed = m.nodes.remove(id).is_some();
                let real = h.cp.remove_edge_node(id, now, now);
                prop_assert_eq!(real.is_ok(), existed);
                if existed {
                    m.version += 1;
                }
                existed
            };
            // Then, unless refused (which changes nothing), the nodes silent for the
            // expiry are forgotten, in one commit.
            if accepted {
                let before = m.nodes.len();
                let now_s = m.now;
                m.nodes
                    .retain(|_, seen| (*seen).max(started) + EXPIRY_S > now_s);
                if m.nodes.len() < before {
                    m.version += 1;
                }
            }
            let reg = h.cp.edge_registry(now);
            let ids: Vec<&str> = reg
                .nodes
                .iter()
                .map(|n| n.record.node_id.as_str())
                .collect();
            prop_assert_eq!(ids, m.nodes.keys().map(String::as_str).collect::<Vec<_>>());
        }
        Op::Purge => {
            let n =
                h.cp.purge_tombstones(now)
                    .map_err(|e| TestCaseError::fail(format!("purge: {e}")))?;
            let before = m.bindings.len();
            let horizon = m.now - (DELAY_H + RETENTION_H) * HOUR;
            m.bindings.retain(|b| b.deleted.is_none_or(|d| d > horizon));
            prop_assert_eq!(n, before - m.bindings.len());
            if n > 0 {
                m.version += 1;
                // A reader from the start would miss those deletions: refused.
                prop_assert!(h.cp.changes_since(0).is_err());
                prop_assert!(h.cp.changes_since(h.cp.purged_through()).is_ok());
            }
        }
    }
    Ok(())
}

fn check_state(h: &Harness, m: &Model) -> Result<(), TestCaseError> {
    let now = Timestamp::from_secs(m.now);
    prop_assert_eq!(h.cp.version(), m.version);
    // Live bindings, through the paginated API, in (created, id) order.
    let mut got = Vec::new();
    let mut req = PageRequest::first(3);
    loop {
        let page = h.cp.list_bindings(&h.p, ACCT, &req).unwrap();
        got.extend(page.items);
        if page.next_cursor.is_empty() {
            break;
        }
        req = PageRequest::after(&page.next_cursor, 3);
    }
    let mut want: Vec<&MB> = m.bindings.iter().filter(|b| b.live()).collect();
    want.sort_by_key(|b| (b.created, b.id));
    prop_assert_eq!(got.len(), want.len());
    for (g, w) in got.iter().zip(&want) {
        prop_assert_eq!(g.id, w.id);
        prop_assert_eq!(g.prefix_id.as_str(), w.prefix.as_str());
        prop_assert_eq!(g.cidr.to_string(), w.cidr.clone());
        prop_assert_eq!(g.region_key.as_str(), w.region.as_str());
    }
    // Provisioning states through Addressing.
    for w in &want {
        let sb =
            h.cp.get_service_binding(&h.p, ACCT, &w.prefix, &w.id.to_string(), now)
                .unwrap();
        let active = m.now >= w.active;
        prop_assert_eq!(
            sb.provisioning.state,
            if active {
                ProvisioningState::Active
            } else {
                ProvisioningState::Provisioning
            }
        );
    }
    // The data plane's view.
    let snap = h.cp.bindings_in_force(now);
    let mut got: Vec<(BindingId, String, String)> = snap
        .entries
        .into_iter()
        .map(|e| (e.binding_id, e.cidr.to_string(), e.region_key.to_string()))
        .collect();
    got.sort();
    let mut want: Vec<(BindingId, String, String)> = m
        .bindings
        .iter()
        .filter_map(|b| b.in_force(m.now).map(|r| (b.id, b.cidr.clone(), r)))
        .collect();
    want.sort();
    prop_assert_eq!(got, want);
    prop_assert_eq!(h.cp.list_address_maps(&h.p, ACCT).unwrap().len(), m.maps);
    let _ = h.base;
    Ok(())
}

fn run(
    ops: &[Op],
    store: Box<dyn Store>,
    reopen: impl FnOnce() -> Box<dyn Store>,
) -> Result<(), TestCaseError> {
    let mut m = Model::default();
    let h = setup(open(store), &mut m);
    check_state(&h, &m)?;
    for op in ops {
        step(&h, &mut m, op)?;
        check_state(&h, &m)?;
    }
    let before = h.cp.dump();
    drop(h);
    let again = open(reopen());
    prop_assert_eq!(again.dump(), before);
    let _ = secs;
    Ok(())
}

/// A commit failure armed for one operation.
#[derive(Debug, Clone, Copy)]
enum Fault {
    None,
    /// `fail_next_commits(1)`.
    Commit,
    /// `fail_next_commit_as_disk()`.
    Disk,
}

fn fault() -> impl Strategy<Value = Fault> {
    prop_oneof![16 => Just(Fault::None), 3 => Just(Fault::Commit), 1 => Just(Fault::Disk)]
}

/// [`run`] over a memory store, each operation with its [`Fault`].
fn run_with_faults(ops: &[(Op, Fault)]) -> Result<(), TestCaseError> {
    let store = MemoryStore::new();
    let mut m = Model::default();
    let mut h = setup(open(Box::new(store.clone())), &mut m);
    check_state(&h, &m)?;
    for (op, fault) in ops {
        match fault {
            Fault::None => step(&h, &mut m, op)?,
            Fault::Commit | Fault::Disk => {
                let before = h.cp.dump();
                match fault {
                    Fault::Disk => store.fail_next_commit_as_disk(),
                    _ => store.fail_next_commits(1),
                }
                let mut trial = m.clone();
                // As the model says: then the operation did not commit (a refusal, a
                // read, the clock), and the failure is still armed.
                let as_modelled = step(&h, &mut trial, op).is_ok();
                store.fail_next_commits(0);
                if as_modelled {
                    prop_assert!(h.cp.halted().is_none());
                    m = trial;
                } else {
                    // It tried to commit, and failed: nothing changed.
                    prop_assert_eq!(&h.cp.dump(), &before, "a failed commit changed {:?}", op);
                    prop_assert_eq!(h.cp.halted().is_some(), matches!(fault, Fault::Disk));
                    if matches!(fault, Fault::Disk) {
                        // Halted: writes fail without reaching the store. A restart lifts it.
                        let again = h.cp.create_binding(
                            &h.p,
                            ACCT,
                            CreateBinding::new(P6, "2001:db8:ffff::/48", "eu"),
                            Timestamp::from_secs(m.now),
                        );
                        prop_assert!(
                            matches!(
                                again,
                                Err(CreateBindingError::Store(StoreError::DiskFailed { .. }))
                            ),
                            "{:?}",
                            again
                        );
                        prop_assert_eq!(&h.cp.dump(), &before);
                        h = restart(h, &store);
                        m.registry_started = None;
                        prop_assert!(h.cp.halted().is_none());
                        prop_assert_eq!(h.cp.dump(), before);
                    }
                    step(&h, &mut m, op)?;
                }
            }
        }
        check_state(&h, &m)?;
    }
    let before = h.cp.dump();
    drop(h);
    prop_assert_eq!(open(Box::new(store)).dump(), before);
    Ok(())
}

/// Reopens the control plane on `store`, as a restart of the server would.
fn restart(h: Harness, store: &MemoryStore) -> Harness {
    let Harness { cp, map, base, .. } = h;
    drop(cp);
    let cp = open_with_ids(Box::new(store.clone()), None);
    let p = cp
        .authenticate(
            &Credentials::ApiToken(TOKEN.into()),
            None,
            Timestamp::from_secs(base),
        )
        .unwrap();
    Harness { cp, p, map, base }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 96, ..ProptestConfig::default() })]

    #[test]
    fn memory_store_matches_the_model(ops in prop::collection::vec(op(), 1..60)) {
        let store = MemoryStore::new();
        let s2 = store.clone();
        run(&ops, Box::new(store), move || Box::new(s2))?;
    }

    /// Commit failures and disk failures at random operations.
    #[test]
    fn failed_commits_change_nothing_and_a_disk_failure_halts_until_a_restart(
        ops in prop::collection::vec((op(), fault()), 1..60)
    ) {
        run_with_faults(&ops)?;
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    #[test]
    fn sqlite_store_matches_the_model(ops in prop::collection::vec(op(), 1..60)) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("model.db");
        let p2 = path.clone();
        run(&ops, Box::new(SqliteStore::open(&path).unwrap()), move || {
            let s = SqliteStore::open(&p2).unwrap();
            assert_eq!(s.integrity_check().unwrap(), vec!["ok".to_string()]);
            Box::new(s)
        })?;
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 16, ..ProptestConfig::default() })]

    /// The default store with `--durability process` (`synchronous=NORMAL`): the same
    /// records and the same reopened state.
    #[test]
    fn sqlite_store_with_process_durability_matches_the_model(ops in prop::collection::vec(op(), 1..60)) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("model.db");
        let p2 = path.clone();
        run(&ops, Box::new(SqliteStore::open_with(&path, Durability::Process).unwrap()), move || {
            Box::new(SqliteStore::open_with(&p2, Durability::Process).unwrap())
        })?;
    }
}
