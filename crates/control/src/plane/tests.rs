//! Unit tests for every rule and every error of [`ControlPlane`].

use super::*;
use inregion_model::Role;

const ACCT: &str = "0123456789abcdef0123456789abcdef";
const OTHER: &str = "fedcba9876543210fedcba9876543210";
const BARE: &str = "00000000000000000000000000000001"; // regional_services only
const DEMO: &str = "a1b2c3d4-e5f6-7890-abcd-ef1234567890";
const V6: &str = "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb";
const PENDING: &str = "cccccccccccccccccccccccccccccccc";
const OTHER_PREFIX: &str = "dddddddddddddddddddddddddddddddd";
const RW: &str = "rw-token-000000000000000000000000";
const RO: &str = "ro-token-000000000000000000000000";
const DLSW: &str = "dls-write-only-000000000000000000";

fn t(h: i64) -> Timestamp {
    Timestamp::from_secs(1_800_000_000 + h * 3600)
}

fn seed_doc() -> SeedConfig {
    SeedConfig::from_toml(&format!(
        r#"
[[accounts]]
id = "{ACCT}"
name = "Demo"
entitlements = ["regional_services", "regional_services_byoip"]
[[accounts]]
id = "{OTHER}"
entitlements = ["regional_services", "regional_services_byoip"]
[[accounts]]
id = "{BARE}"
entitlements = ["regional_services"]

[[tokens]]
name = "rw"
secret = "{RW}"
accounts = ["{ACCT}", "{BARE}"]
permissions = ["DLS: Write", "IP Prefixes: Write", "Address Maps Write"]
[[tokens]]
name = "ro"
secret = "{RO}"
accounts = ["{ACCT}"]
permissions = ["DLS: Read", "Address Maps Read", "IP Prefixes: Read"]
[[tokens]]
name = "dls-write"
secret = "{DLSW}"
accounts = ["{ACCT}"]
permissions = ["DLS: Write"]

[[prefixes]]
account = "{ACCT}"
id = "{DEMO}"
cidr = "203.0.113.0/24"
asn = 64496
[[prefixes]]
account = "{ACCT}"
id = "{V6}"
cidr = "2001:db8::/32"
asn = 64496
[[prefixes]]
account = "{ACCT}"
id = "{PENDING}"
cidr = "198.51.100.0/24"
asn = 64496
approved = false
[[prefixes]]
account = "{OTHER}"
id = "{OTHER_PREFIX}"
cidr = "192.0.2.0/24"
asn = 64497

[[regions]]
account = "{ACCT}"
key = "acme"
name = "ACME (EU without FR)"
countries = ["DE", "FR", "NL"]
exclude_countries = ["FR"]
[[regions]]
account = "{OTHER}"
key = "theirs"
name = "Theirs"
countries = ["US"]
"#
    ))
    .unwrap()
}

struct Fx {
    cp: ControlPlane,
    rw: Principal,
    ro: Principal,
    dlsw: Principal,
    store: MemoryStore,
}

fn fx_with(config: ControlConfig) -> Fx {
    let store = MemoryStore::new();
    let cp = ControlPlane::open(Box::new(store.clone()), config).unwrap();
    cp.seed(&seed_doc(), t(-100)).unwrap();
    let auth = |s: &str| {
        cp.authenticate(&Credentials::ApiToken(s.into()), None, t(0))
            .unwrap()
    };
    let (rw, ro, dlsw) = (auth(RW), auth(RO), auth(DLSW));
    Fx {
        cp,
        rw,
        ro,
        dlsw,
        store,
    }
}

fn fx() -> Fx {
    fx_with(ControlConfig::default())
}

impl Fx {
    fn create(
        &self,
        prefix: &str,
        cidr: &str,
        key: &str,
        now: Timestamp,
    ) -> Result<Binding, CreateBindingError> {
        self.cp
            .create_binding(&self.rw, ACCT, CreateBinding::new(prefix, cidr, key), now)
            .map(|c| c.result)
    }
    fn code<E: ApiError>(r: Result<impl std::fmt::Debug, E>) -> (u32, u16) {
        let e = r.expect_err("expected an error");
        (e.code(), e.http_status())
    }
    fn sb_state(&self, id: &BindingId, prefix: &str, now: Timestamp) -> ProvisioningState {
        self.cp
            .get_service_binding(&self.rw, ACCT, prefix, &id.to_string(), now)
            .unwrap()
            .provisioning
            .state
    }
    fn in_force(&self, now: Timestamp) -> Vec<(String, String)> {
        self.cp
            .bindings_in_force(now)
            .entries
            .into_iter()
            .map(|e| (e.cidr.to_string(), e.region_key.to_string()))
            .collect()
    }
}

#[test]
fn create_echoes_canonical_cidr_and_starts_provisioning() {
    let f = fx();
    let b = f.create(DEMO, "203.0.113.0/25", "eu", t(0)).unwrap();
    assert_eq!(b.cidr.to_string(), "203.0.113.0/25");
    assert_eq!(b.prefix_id.as_str(), DEMO);
    let b6 = f
        .create(V6, "2001:0DB8:0000:0001::/64", "us", t(0))
        .unwrap();
    assert_eq!(b6.cidr.to_string(), "2001:db8:0:1::/64");
    assert_eq!(
        f.sb_state(&b.id, DEMO, t(0)),
        ProvisioningState::Provisioning
    );
    assert_eq!(f.sb_state(&b.id, DEMO, t(5)), ProvisioningState::Active);
    assert_eq!(f.cp.get_binding(&f.ro, ACCT, &b.id.to_string()).unwrap(), b);
    // Not in force until active (§10).
    assert!(f.in_force(t(4)).is_empty());
    assert_eq!(f.in_force(t(5)).len(), 2);
}

#[test]
fn create_validation_errors() {
    let f = fx();
    let c = |p: Option<&str>, c: Option<&str>, k: Option<&str>| {
        Fx::code(f.cp.create_binding(
            &f.rw,
            ACCT,
            CreateBinding {
                prefix_id: p.map(String::from),
                cidr: c.map(String::from),
                region_key: k.map(String::from),
            },
            t(0),
        ))
    };
    let ok = Some("203.0.113.0/25");
    // 1101: missing or empty.
    assert_eq!(c(None, ok, Some("eu")), (1101, 400));
    assert_eq!(c(Some(DEMO), None, Some("eu")), (1101, 400));
    assert_eq!(c(Some(DEMO), ok, None), (1101, 400));
    assert_eq!(c(Some(""), ok, Some("eu")), (1101, 400));
    assert_eq!(c(Some(DEMO), Some(""), Some("eu")), (1101, 400));
    // 1107: pattern; not folded.
    assert_eq!(c(Some(DEMO), ok, Some("EU")), (1107, 400));
    assert_eq!(c(Some(DEMO), ok, Some("e u")), (1107, 400));
    // 1102: strict CIDR.
    for bad in [
        "203.0.113.5/24",
        "203.0.113.7",
        "203.000.113.0/25",
        " 203.0.113.0/25",
        "203.0.113.0/25 ",
        "203.0.113.0/025",
        "2001:db8::%eth0/64",
        "2001:db8::1/64",
        "banana",
    ] {
        assert_eq!(c(Some(DEMO), Some(bad), Some("eu")), (1102, 400), "{bad}");
    }
    // 1105: unknown prefix, another account's prefix, too long, malformed.
    assert_eq!(
        c(Some(OTHER_PREFIX), Some("192.0.2.0/25"), Some("eu")),
        (1105, 400)
    );
    assert_eq!(c(Some(&"a".repeat(65)), ok, Some("eu")), (1105, 400));
    assert_eq!(c(Some("nope"), ok, Some("eu")), (1105, 400));
    // 1114: pending prefix.
    assert_eq!(
        c(Some(PENDING), Some("198.51.100.0/25"), Some("eu")),
        (1114, 400)
    );
    // 1103: outside, wider, other family, IPv4-mapped IPv6 against an IPv4 prefix.
    for (prefix, cidr) in [
        (DEMO, "203.0.114.0/25"),
        (DEMO, "203.0.112.0/23"),
        (DEMO, "2001:db8::/48"),
        (DEMO, "::ffff:203.0.113.0/120"),
        (V6, "2001:db9::/48"),
    ] {
        assert_eq!(
            c(Some(prefix), Some(cidr), Some("eu")),
            (1103, 400),
            "{cidr}"
        );
    }
    // 1106: unknown key, another account's custom region.
    assert_eq!(c(Some(DEMO), ok, Some("mars")), (1106, 400));
    assert_eq!(c(Some(DEMO), ok, Some("theirs")), (1106, 400));
    // Nothing above changed anything.
    assert_eq!(f.cp.changes_since(0).unwrap().bindings.len(), 0);
    // Own custom region works.
    assert!(f.create(DEMO, "203.0.113.0/25", "acme", t(0)).is_ok());
}

#[test]
fn conflicts_and_overlaps() {
    let f = fx();
    f.create(DEMO, "203.0.113.0/25", "eu", t(0)).unwrap();
    // Exact duplicate, whatever the region.
    let e = f.create(DEMO, "203.0.113.0/25", "us", t(0)).unwrap_err();
    assert_eq!((e.code(), e.http_status()), (1108, 409));
    assert_eq!(
        e.to_string(),
        "conflict: binding already exists for CIDR 203.0.113.0/25"
    );
    // The whole prefix.
    assert_eq!(
        Fx::code(f.create(DEMO, "203.0.113.0/24", "eu", t(0))),
        (1108, 409)
    );
    assert_eq!(
        Fx::code(f.create(V6, "2001:db8::/32", "eu", t(0))),
        (1108, 409)
    );
    // Same network written differently (IPv6) is the same CIDR.
    f.create(V6, "2001:db8:1::/48", "eu", t(0)).unwrap();
    assert_eq!(
        Fx::code(f.create(V6, "2001:DB8:1:0::/48", "us", t(0))),
        (1108, 409)
    );
    // Different overlapping CIDRs coexist.
    f.create(DEMO, "203.0.113.0/26", "us", t(0)).unwrap();
    f.create(DEMO, "203.0.113.7/32", "ca", t(0)).unwrap();
    // After delete, the CIDR is free again.
    let b = f.create(DEMO, "203.0.113.128/25", "eu", t(0)).unwrap();
    f.cp.delete_binding(&f.rw, ACCT, &b.id.to_string(), t(1))
        .unwrap();
    f.create(DEMO, "203.0.113.128/25", "us", t(1)).unwrap();
}

#[test]
fn per_prefix_cap() {
    let f = fx_with(ControlConfig {
        max_bindings_per_prefix: Some(2),
        ..ControlConfig::default()
    });
    f.create(DEMO, "203.0.113.0/25", "eu", t(0)).unwrap();
    f.create(DEMO, "203.0.113.128/25", "eu", t(0)).unwrap();
    assert_eq!(
        Fx::code(f.create(DEMO, "203.0.113.0/26", "eu", t(0))),
        (1117, 400)
    );
    f.create(V6, "2001:db8::/48", "eu", t(0)).unwrap();
}

#[test]
fn precedence_account_permission_entitlement_validation() {
    let f = fx();
    let body = CreateBinding::new(DEMO, "bad", "eu");
    // Unknown account, malformed account, account not in token scope: all 403/10000.
    for a in [OTHER, "xyz", "99999999999999999999999999999999"] {
        assert_eq!(
            Fx::code(f.cp.create_binding(&f.rw, a, body.clone(), t(0))),
            (10000, 403)
        );
        assert_eq!(
            Fx::code(f.cp.list_regions(&f.rw, a, None, &PageRequest::default())),
            (10000, 403)
        );
    }
    // Read-only token writing: 10000 before validation.
    assert_eq!(
        Fx::code(f.cp.create_binding(&f.ro, ACCT, body.clone(), t(0))),
        (10000, 403)
    );
    // DLS: Write alone can read but not write (§3.1).
    assert!(f
        .cp
        .list_bindings(&f.dlsw, ACCT, &PageRequest::default())
        .is_ok());
    assert_eq!(
        Fx::code(f.cp.create_binding(&f.dlsw, ACCT, body.clone(), t(0))),
        (10000, 403)
    );
    assert_eq!(
        Fx::code(f.cp.delete_binding(&f.dlsw, ACCT, "x", t(0))),
        (10000, 403)
    );
    // Entitlements: regions need regional_services; bindings need both. Before
    // validation.
    assert!(f
        .cp
        .list_regions(&f.rw, BARE, None, &PageRequest::default())
        .is_ok());
    let e =
        f.cp.create_binding(&f.rw, BARE, body.clone(), t(0))
            .unwrap_err();
    assert_eq!((e.code(), e.http_status()), (1115, 403));
    assert_eq!(
        e.to_string(),
        "account is not entitled to regional_services_byoip"
    );
    assert_eq!(
        Fx::code(f.cp.list_bindings(&f.rw, BARE, &PageRequest::default())),
        (1115, 403)
    );
    // Validation before existence: an unknown binding id with a bad body → 1113.
    assert_eq!(
        Fx::code(f.cp.patch_binding(
            &f.rw,
            ACCT,
            "nope",
            UpdateBinding {
                region_key: Some("eu".into()),
                other_fields: vec!["cidr".into()]
            },
            t(0)
        )),
        (1113, 400)
    );
    // Existence before conflict: unknown prefix with a duplicate-looking CIDR → 1105.
    f.create(DEMO, "203.0.113.0/25", "eu", t(0)).unwrap();
    assert_eq!(
        Fx::code(f.create(
            "eeeeeeeeeeeeeeeeeeeeeeeeeeeeeeee",
            "203.0.113.0/25",
            "eu",
            t(0)
        )),
        (1105, 400)
    );
    // Unknown region before conflict.
    assert_eq!(
        Fx::code(f.create(DEMO, "203.0.113.0/25", "mars", t(0))),
        (1106, 400)
    );
}

#[test]
fn global_key_user_with_roles() {
    let f = fx();
    let key = "0123456789abcdef0123456789abcdef01234";
    f.cp.add_user(
        &UserSeed {
            email: "Ops@Example.com".into(),
            key: key.into(),
            roles: [
                (AccountId::parse(ACCT).unwrap(), Role::Administrator),
                (
                    AccountId::parse(OTHER).unwrap(),
                    Role::AdministratorReadOnly,
                ),
            ]
            .into_iter()
            .collect(),
        },
        t(0),
    )
    .unwrap();
    let p =
        f.cp.authenticate(
            &Credentials::GlobalKey {
                email: "ops@example.com".into(),
                key: key.into(),
            },
            None,
            t(0),
        )
        .unwrap();
    f.cp.create_binding(
        &p,
        ACCT,
        CreateBinding::new(DEMO, "203.0.113.0/25", "eu"),
        t(0),
    )
    .unwrap();
    assert_eq!(
        Fx::code(f.cp.create_binding(
            &p,
            OTHER,
            CreateBinding::new(OTHER_PREFIX, "192.0.2.0/25", "eu"),
            t(0)
        )),
        (10000, 403)
    );
    assert!(f
        .cp
        .list_bindings(&p, OTHER, &PageRequest::default())
        .is_ok());
    let e =
        f.cp.authenticate(
            &Credentials::GlobalKey {
                email: "ops@example.com".into(),
                key: "0123456789abcdef0123456789abcdef00000".into(),
            },
            None,
            t(0),
        )
        .unwrap_err();
    assert_eq!((e.code(), e.http_status()), (9103, 403));
    let e =
        f.cp.authenticate(&Credentials::ApiToken("x".repeat(40)), None, t(0))
            .unwrap_err();
    assert_eq!((e.code(), e.http_status()), (9109, 401));
}

#[test]
fn patch_changes_region_and_restarts_propagation() {
    let f = fx();
    let b = f.create(DEMO, "203.0.113.0/25", "eu", t(0)).unwrap();
    let id = b.id.to_string();
    let patch = |k: &str, now| {
        f.cp.patch_binding(&f.rw, ACCT, &id, UpdateBinding::region(k), now)
    };
    // Active in eu at t5. PATCH to us at t6.
    let v0 = f.cp.version();
    assert_eq!(patch("us", t(6)).unwrap().region_key.as_str(), "us");
    assert_eq!(f.cp.version(), v0 + 1);
    assert_eq!(
        f.sb_state(&b.id, DEMO, t(6)),
        ProvisioningState::Provisioning
    );
    // The API shows us at once; the data plane keeps eu until t11.
    assert_eq!(
        f.cp.get_binding(&f.ro, ACCT, &id)
            .unwrap()
            .region_key
            .as_str(),
        "us"
    );
    assert_eq!(
        f.in_force(t(10)),
        vec![("203.0.113.0/25".into(), "eu".into())]
    );
    assert_eq!(
        f.in_force(t(11)),
        vec![("203.0.113.0/25".into(), "us".into())]
    );
    // Same region: a no-op, no version bump, no state reset.
    assert_eq!(patch("us", t(12)).unwrap().region_key.as_str(), "us");
    assert_eq!(f.cp.version(), v0 + 1);
    assert_eq!(f.sb_state(&b.id, DEMO, t(12)), ProvisioningState::Active);
    // PATCH during propagation: the region in force stays the previous one.
    patch("ca", t(13)).unwrap();
    patch("eu", t(14)).unwrap();
    assert_eq!(
        f.in_force(t(15)),
        vec![("203.0.113.0/25".into(), "us".into())]
    );
    assert_eq!(
        f.in_force(t(19)),
        vec![("203.0.113.0/25".into(), "eu".into())]
    );
    // A fresh binding patched before it was ever active is still not in force.
    let n = f.create(DEMO, "203.0.113.128/25", "eu", t(20)).unwrap();
    f.cp.patch_binding(
        &f.rw,
        ACCT,
        &n.id.to_string(),
        UpdateBinding::region("us"),
        t(21),
    )
    .unwrap();
    assert_eq!(f.in_force(t(25)).len(), 1);
    assert_eq!(f.in_force(t(26)).len(), 2);
}

#[test]
fn patch_errors() {
    let f = fx();
    let b = f.create(DEMO, "203.0.113.0/25", "eu", t(0)).unwrap();
    let id = b.id.to_string();
    let p = |u: UpdateBinding, id: &str| Fx::code(f.cp.patch_binding(&f.rw, ACCT, id, u, t(1)));
    assert_eq!(
        p(
            UpdateBinding {
                region_key: Some("us".into()),
                other_fields: vec!["cidr".into()]
            },
            &id
        ),
        (1113, 400)
    );
    assert_eq!(p(UpdateBinding::default(), &id), (1101, 400));
    assert_eq!(p(UpdateBinding::region(""), &id), (1101, 400));
    assert_eq!(p(UpdateBinding::region("US"), &id), (1107, 400));
    assert_eq!(p(UpdateBinding::region("us"), "not-a-uuid"), (1109, 404));
    assert_eq!(
        p(
            UpdateBinding::region("us"),
            &BindingId::random().to_string()
        ),
        (1109, 404)
    );
    assert_eq!(p(UpdateBinding::region("mars"), &id), (1106, 400));
    assert_eq!(p(UpdateBinding::region("theirs"), &id), (1106, 400));
}

#[test]
fn delete_hides_at_once_and_propagates() {
    let f = fx();
    let b = f.create(DEMO, "203.0.113.0/25", "eu", t(0)).unwrap();
    let id = b.id.to_string();
    f.cp.delete_binding(&f.rw, ACCT, &id, t(6)).unwrap();
    assert_eq!(Fx::code(f.cp.get_binding(&f.ro, ACCT, &id)), (1109, 404));
    assert_eq!(
        Fx::code(f.cp.delete_binding(&f.rw, ACCT, &id, t(6))),
        (1109, 404)
    );
    assert_eq!(
        Fx::code(f.cp.get_service_binding(&f.rw, ACCT, DEMO, &id, t(6))),
        (1109, 404)
    );
    assert!(f
        .cp
        .list_bindings(&f.ro, ACCT, &PageRequest::default())
        .unwrap()
        .items
        .is_empty());
    // The data plane keeps it until t11.
    assert_eq!(
        f.in_force(t(10)),
        vec![("203.0.113.0/25".into(), "eu".into())]
    );
    assert!(f.in_force(t(11)).is_empty());
    let c = f.cp.binding_counts(t(10));
    assert_eq!((c.deleting, c.active, c.provisioning), (1, 0, 0));
    assert_eq!(f.cp.binding_counts(t(11)).gone, 1);
    // Another account's binding id: 404.
    let o = f.create(DEMO, "203.0.113.0/26", "eu", t(0)).unwrap();
    let other_rw =
        f.cp.authenticate(&Credentials::ApiToken(RW.into()), None, t(0))
            .unwrap();
    assert_eq!(
        Fx::code(f.cp.delete_binding(&other_rw, BARE, &o.id.to_string(), t(0))),
        (1115, 403)
    );
}

#[test]
fn address_map_gate() {
    let f = fx();
    let b = f.create(DEMO, "203.0.113.0/25", "eu", t(0)).unwrap();
    let map =
        f.cp.create_address_map(&f.rw, ACCT, CreateAddressMap::default(), t(0))
            .unwrap();
    let mid = map.id.to_string();
    let put = |ip: &str, now| f.cp.add_address_map_ip(&f.rw, ACCT, &mid, ip, now);
    // Covered by a provisioning binding: 409/1301.
    let e = put("203.0.113.9", t(1)).unwrap_err();
    assert_eq!((e.code(), e.http_status()), (1301, 409));
    assert_eq!(
        e.to_string(),
        format!("IP 203.0.113.9 is covered by prefix binding {} (203.0.113.0/25) which is not active yet", b.id)
    );
    // Uncovered address in an owned prefix: fine.
    put("203.0.113.200", t(1)).unwrap();
    // Not in an owned prefix: 1302. Invalid: 1305.
    assert_eq!(Fx::code(put("192.0.2.1", t(1))), (1302, 400));
    assert_eq!(Fx::code(put("203.0.113.09", t(1))), (1305, 400));
    // Active: allowed.
    put("203.0.113.9", t(5)).unwrap();
    // A PATCH re-gates: a new IP under it is refused again.
    f.cp.patch_binding(
        &f.rw,
        ACCT,
        &b.id.to_string(),
        UpdateBinding::region("us"),
        t(6),
    )
    .unwrap();
    assert_eq!(Fx::code(put("203.0.113.10", t(7))), (1301, 409));
    // A more specific provisioning binding under an active one also gates.
    f.create(DEMO, "203.0.113.10/32", "eu", t(20)).unwrap();
    assert_eq!(Fx::code(put("203.0.113.10", t(21))), (1301, 409));
    put("203.0.113.11", t(21)).unwrap();
    // Removing IPs and changing enabled are never gated.
    f.cp.remove_address_map_ip(&f.rw, ACCT, &mid, "203.0.113.9", t(21))
        .unwrap();
    f.cp.update_address_map(
        &f.rw,
        ACCT,
        &mid,
        UpdateAddressMap {
            enabled: Some(true),
            ..Default::default()
        },
        t(21),
    )
    .unwrap();
    // IPv6.
    f.create(V6, "2001:db8::/48", "eu", t(30)).unwrap();
    assert_eq!(Fx::code(put("2001:DB8::1", t(31))), (1301, 409));
    put("2001:db8:1::1", t(31)).unwrap();
    // Deleted bindings do not gate.
    let g = f.create(DEMO, "203.0.113.128/26", "eu", t(40)).unwrap();
    f.cp.delete_binding(&f.rw, ACCT, &g.id.to_string(), t(41))
        .unwrap();
    put("203.0.113.130", t(41)).unwrap();
}

#[test]
fn address_map_create_is_atomic_and_points_at_the_ip() {
    let f = fx();
    f.create(DEMO, "203.0.113.0/25", "eu", t(0)).unwrap();
    let v = f.cp.version();
    let body = CreateAddressMap {
        ips: vec!["203.0.113.200".into(), "203.0.113.5".into()],
        ..Default::default()
    };
    let e =
        f.cp.create_address_map(&f.rw, ACCT, body.clone(), t(1))
            .unwrap_err();
    assert_eq!((e.code(), e.http_status()), (1301, 409));
    assert_eq!(e.pointer().as_deref(), Some("/ips/1"));
    assert_eq!(f.cp.version(), v);
    assert!(f.cp.list_address_maps(&f.ro, ACCT).unwrap().is_empty());
    let m = f.cp.create_address_map(&f.rw, ACCT, body, t(5)).unwrap();
    assert_eq!(m.ips.len(), 2);
    // Memberships.
    let bad = CreateAddressMap {
        memberships: vec![MembershipInput {
            identifier: Some(ACCT.into()),
            kind: Some("team".into()),
        }],
        ..Default::default()
    };
    let e = f.cp.create_address_map(&f.rw, ACCT, bad, t(5)).unwrap_err();
    assert_eq!(
        (e.code(), e.pointer().as_deref()),
        (1305, Some("/memberships/0"))
    );
    // A membership without an identifier: 1101 pointing at the field; nothing created.
    let ok = MembershipInput {
        identifier: Some(ACCT.into()),
        kind: Some("account".into()),
    };
    let missing = CreateAddressMap {
        memberships: vec![
            ok.clone(),
            MembershipInput {
                identifier: None,
                kind: Some("zone".into()),
            },
        ],
        ..Default::default()
    };
    let v = f.cp.version();
    let e =
        f.cp.create_address_map(&f.rw, ACCT, missing, t(5))
            .unwrap_err();
    assert_eq!(
        (e.code(), e.http_status(), e.pointer().as_deref()),
        (1101, 400, Some("/memberships/1/identifier"))
    );
    assert_eq!(f.cp.version(), v);
    // Delete needs a disabled map; then 404.
    let mid = m.id.to_string();
    f.cp.update_address_map(
        &f.rw,
        ACCT,
        &mid,
        UpdateAddressMap {
            enabled: Some(true),
            ..Default::default()
        },
        t(6),
    )
    .unwrap();
    assert_eq!(
        Fx::code(f.cp.delete_address_map(&f.rw, ACCT, &mid, t(6))),
        (1304, 400)
    );
    f.cp.update_address_map(
        &f.rw,
        ACCT,
        &mid,
        UpdateAddressMap {
            enabled: Some(false),
            ..Default::default()
        },
        t(6),
    )
    .unwrap();
    f.cp.add_address_map_membership(&f.rw, ACCT, &mid, MembershipKind::Zone, OTHER, t(6))
        .unwrap();
    assert_eq!(
        f.cp.get_address_map(&f.ro, ACCT, &mid)
            .unwrap()
            .memberships
            .len(),
        1
    );
    f.cp.remove_address_map_membership(&f.rw, ACCT, &mid, MembershipKind::Zone, OTHER, t(6))
        .unwrap();
    assert_eq!(
        Fx::code(f.cp.remove_address_map_membership(
            &f.rw,
            ACCT,
            &mid,
            MembershipKind::Zone,
            OTHER,
            t(6)
        )),
        (1303, 404)
    );
    f.cp.delete_address_map(&f.rw, ACCT, &mid, t(6)).unwrap();
    assert_eq!(
        Fx::code(f.cp.get_address_map(&f.ro, ACCT, &mid)),
        (1303, 404)
    );
    // Read-only token cannot write maps.
    assert_eq!(
        Fx::code(f.cp.create_address_map(&f.ro, ACCT, CreateAddressMap::default(), t(6))),
        (10000, 403)
    );
}

#[test]
fn warning_1200_when_cidr_overlaps_mapped_addresses() {
    let f = fx();
    f.cp.create_address_map(
        &f.rw,
        ACCT,
        CreateAddressMap {
            ips: vec!["203.0.113.77".into()],
            ..Default::default()
        },
        t(0),
    )
    .unwrap();
    let c =
        f.cp.create_binding(
            &f.rw,
            ACCT,
            CreateBinding::new(DEMO, "203.0.113.64/26", "eu"),
            t(0),
        )
        .unwrap();
    assert_eq!(c.messages.len(), 1);
    assert_eq!(c.messages[0].code, 1200);
    let c =
        f.cp.create_binding(
            &f.rw,
            ACCT,
            CreateBinding::new(DEMO, "203.0.113.128/26", "eu"),
            t(0),
        )
        .unwrap();
    assert!(c.messages.is_empty());
}

#[test]
fn pagination_is_stable_under_inserts_and_deletes() {
    let f = fx();
    let mut ids = Vec::new();
    for i in 0..7 {
        ids.push(
            f.create(DEMO, &format!("203.0.113.{}/32", i), "eu", t(i))
                .unwrap()
                .id,
        );
    }
    let page = |req: &PageRequest| f.cp.list_bindings(&f.ro, ACCT, req).unwrap();
    let p1 = page(&PageRequest::first(3));
    assert_eq!(p1.items.iter().map(|b| b.id).collect::<Vec<_>>(), ids[..3]);
    assert!(!p1.next_cursor.is_empty());
    // Delete the last item of page 1 and the first of page 2; insert a new (later) one.
    f.cp.delete_binding(&f.rw, ACCT, &ids[2].to_string(), t(8))
        .unwrap();
    f.cp.delete_binding(&f.rw, ACCT, &ids[3].to_string(), t(8))
        .unwrap();
    let late = f.create(DEMO, "203.0.113.100/32", "eu", t(9)).unwrap().id;
    let p2 = page(&PageRequest::after(&p1.next_cursor, 3));
    assert_eq!(p2.items.iter().map(|b| b.id).collect::<Vec<_>>(), ids[4..7]);
    let p3 = page(&PageRequest::after(&p2.next_cursor, 3));
    assert_eq!(
        p3.items.iter().map(|b| b.id).collect::<Vec<_>>(),
        vec![late]
    );
    assert_eq!(p3.next_cursor, "");
    // Exact fit: no dangling empty page.
    let all = page(&PageRequest::first(6));
    assert_eq!((all.items.len(), all.next_cursor.as_str()), (6, ""));
    // Errors.
    let bad = |pp: Option<&str>, c: Option<&str>| {
        Fx::code(f.cp.list_bindings(
            &f.ro,
            ACCT,
            &PageRequest {
                per_page: pp.map(String::from),
                cursor: c.map(String::from),
            },
        ))
    };
    assert_eq!(bad(Some("0"), None), (1111, 400));
    assert_eq!(bad(Some("101"), None), (1111, 400));
    assert_eq!(bad(Some("ten"), None), (1111, 400));
    assert_eq!(bad(None, Some("%%%")), (1111, 400));
    // Empty list.
    let e =
        f.cp.list_regions(&f.rw, ACCT, Some("custom"), &PageRequest::first(1))
            .unwrap();
    assert_eq!(e.items.len(), 1);
    assert_eq!(e.next_cursor, "");
}

#[test]
fn regions_list_filter_and_get() {
    let f = fx();
    let all =
        f.cp.list_regions(&f.ro, ACCT, None, &PageRequest::first(100))
            .unwrap();
    let keys: Vec<_> = all.items.iter().map(|r| r.region_key.to_string()).collect();
    let mut sorted = keys.clone();
    sorted.sort();
    assert_eq!(keys, sorted);
    assert!(keys.contains(&"acme".to_string()) && keys.contains(&"eu".to_string()));
    assert!(!keys.contains(&"theirs".to_string()));
    let custom =
        f.cp.list_regions(&f.ro, ACCT, Some("custom"), &PageRequest::default())
            .unwrap();
    assert_eq!(custom.items.len(), 1);
    let managed =
        f.cp.list_regions(&f.ro, ACCT, Some("managed"), &PageRequest::default())
            .unwrap();
    assert!(managed.items.iter().all(|r| r.kind == RegionKind::Managed));
    assert_eq!(
        Fx::code(f.cp.list_regions(&f.ro, ACCT, Some("Managed"), &PageRequest::default())),
        (1112, 400)
    );
    // Paging through regions one by one visits each once.
    let mut seen = Vec::new();
    let mut req = PageRequest::first(4);
    loop {
        let p = f.cp.list_regions(&f.ro, ACCT, None, &req).unwrap();
        seen.extend(p.items.iter().map(|r| r.region_key.to_string()));
        if p.next_cursor.is_empty() {
            break;
        }
        req = PageRequest::after(&p.next_cursor, 4);
    }
    assert_eq!(seen, keys);
    // Get by key (managed), by id (managed and own custom); custom not by key; theirs not.
    let eu = f.cp.get_region(&f.ro, ACCT, "eu").unwrap();
    assert_eq!(eu.name, "Europe");
    assert_eq!(
        f.cp.get_region(&f.ro, ACCT, &eu.id.to_string()).unwrap(),
        eu
    );
    let acme = custom.items[0].clone();
    assert_eq!(
        f.cp.get_region(&f.ro, ACCT, &acme.id.to_string()).unwrap(),
        acme
    );
    assert_eq!(Fx::code(f.cp.get_region(&f.ro, ACCT, "acme")), (1110, 404));
    let theirs =
        f.cp.region_definition(&RegionKey::parse("theirs").unwrap())
            .unwrap();
    assert_eq!(
        Fx::code(f.cp.get_region(&f.ro, ACCT, &theirs.id.to_string())),
        (1110, 404)
    );
    assert_eq!(Fx::code(f.cp.get_region(&f.ro, ACCT, "mars")), (1110, 404));
}

#[test]
fn custom_region_edits_bump_version_and_seeding_is_idempotent() {
    let f = fx();
    let v = f.cp.version();
    f.cp.seed(&seed_doc(), t(1)).unwrap();
    assert_eq!(f.cp.version(), v, "re-seeding changed something");
    let mut doc = seed_doc();
    doc.regions[0]
        .countries
        .push(inregion_model::CountryCode::parse("BE").unwrap());
    f.cp.seed(&doc, t(2)).unwrap();
    assert_eq!(f.cp.version(), v + 1);
    let r =
        f.cp.list_regions(&f.ro, ACCT, Some("custom"), &PageRequest::default())
            .unwrap()
            .items
            .remove(0);
    assert_eq!(
        (r.version, r.version_created_on, r.created_on),
        (2, t(2), t(-100))
    );
    // Key clashes with managed and with another account's region are refused.
    let mut clash = doc.regions[0].clone();
    clash.key = RegionKey::parse("eu").unwrap();
    assert!(matches!(
        f.cp.add_custom_region(&clash, t(3)),
        Err(AdminError::Conflict(_))
    ));
    let mut clash = doc.regions[0].clone();
    clash.key = RegionKey::parse("theirs").unwrap();
    clash.id = None;
    assert!(matches!(
        f.cp.add_custom_region(&clash, t(3)),
        Err(AdminError::Conflict(_))
    ));
    // A region with no member data center is refused.
    let mut empty = doc.regions[0].clone();
    empty.key = RegionKey::parse("nowhere").unwrap();
    empty.countries = vec![inregion_model::CountryCode::parse("AQ").unwrap()];
    empty.exclude_countries.clear();
    assert!(matches!(
        f.cp.add_custom_region(&empty, t(3)),
        Err(AdminError::Invalid(_))
    ));
}

#[test]
fn authorize_answers_what_the_writes_would_and_writes_nothing() {
    let f = fx();
    let v = f.cp.version();
    for kind in [
        WriteKind::Bindings,
        WriteKind::Prefixes,
        WriteKind::AddressMaps,
    ] {
        assert_eq!(f.cp.authorize(&f.rw, ACCT, kind), Ok(()), "{kind:?}");
        assert_eq!(
            f.cp.authorize(&f.ro, ACCT, kind),
            Err(AccessError::Forbidden),
            "{kind:?}"
        );
        assert_eq!(
            f.cp.authorize(&f.rw, "not-an-account", kind),
            Err(AccessError::Forbidden)
        );
    }
    // DLS: Write alone may not create bindings (IP Prefixes: Write is needed too), and the
    // write itself agrees.
    assert!(f.cp.authorize(&f.dlsw, ACCT, WriteKind::Bindings).is_err());
    let write = f.cp.create_binding(
        &f.dlsw,
        ACCT,
        CreateBinding::new(DEMO, "203.0.113.0/24", "eu"),
        t(0),
    );
    assert_eq!(
        Fx::code(write),
        Fx::code(f.cp.authorize(&f.dlsw, ACCT, WriteKind::Bindings))
    );
    assert_eq!(f.cp.version(), v);
}

#[test]
fn map_patch_refuses_other_keys_after_access_and_before_existence() {
    let f = fx();
    let other = |name: &str| UpdateAddressMap {
        other_fields: vec![name.into()],
        ..Default::default()
    };
    // No write access: 403 first.
    assert_eq!(
        Fx::code(f.cp.update_address_map(
            &f.ro,
            ACCT,
            "ffffffffffffffffffffffffffffffff",
            other("ips"),
            t(1)
        )),
        (10000, 403)
    );
    // A map that does not exist: still the 1113, pointing at the key (RFC 6901 escaped).
    let e =
        f.cp.update_address_map(
            &f.rw,
            ACCT,
            "ffffffffffffffffffffffffffffffff",
            other("a/b~c"),
            t(1),
        )
        .unwrap_err();
    assert_eq!((e.code(), e.http_status()), (1113, 400));
    assert_eq!(e.pointer().as_deref(), Some("/a~1b~0c"));
}

#[test]
fn a_seeding_document_is_one_commit_all_or_nothing() {
    let f = fx();
    let (v, records) = (f.cp.version(), f.cp.dump().records);
    // A new account, then a prefix of an account nobody seeded: refused as a whole.
    let mut doc = seed_doc();
    doc.accounts.push(AccountSeed {
        id: AccountId::parse("abababababababababababababababab").unwrap(),
        name: "new".into(),
        entitlements: Vec::new(),
    });
    let mut orphan = doc.prefixes[0].clone();
    orphan.account = AccountId::parse("ffffffffffffffffffffffffffffffff").unwrap();
    orphan.id = None;
    orphan.cidr = "192.0.2.0/24".into();
    doc.prefixes.push(orphan);
    assert!(f.cp.seed(&doc, t(1)).is_err());
    assert_eq!(f.cp.version(), v, "a refused document committed");
    assert_eq!(
        f.cp.dump().records,
        records,
        "a refused document left records"
    );
    // Accepted, it is one commit however many records it touches.
    doc.prefixes.pop();
    f.cp.seed(&doc, t(1)).unwrap();
    assert_eq!(f.cp.version(), v + 1);
}

#[test]
fn a_document_naming_one_record_twice_is_refused() {
    let f = fx();
    let v = f.cp.version();
    let mut doc = seed_doc();
    let mut twin = doc.prefixes[0].clone();
    twin.description = "the same id, described again".into();
    doc.prefixes.push(twin);
    let e = f.cp.seed(&doc, t(1)).unwrap_err();
    assert!(e.to_string().contains("more than once"), "{e}");
    assert_eq!(f.cp.version(), v);
}

#[test]
fn prefixes_services_and_service_bindings() {
    let f = fx();
    let list = f.cp.list_prefixes(&f.ro, ACCT).unwrap();
    assert_eq!(list.len(), 3);
    assert_eq!(
        f.cp.get_prefix(&f.ro, ACCT, PENDING).unwrap().approved,
        Approval::Pending
    );
    assert_eq!(
        Fx::code(f.cp.get_prefix(&f.ro, ACCT, OTHER_PREFIX)),
        (1105, 404)
    );
    f.cp.approve_prefix(PENDING, t(0)).unwrap();
    f.create(PENDING, "198.51.100.0/25", "eu", t(0)).unwrap();
    // Create prefix: pending, overlap refused, bad ASN.
    let rwp = &f.rw;
    let np =
        f.cp.create_prefix(
            rwp,
            ACCT,
            CreatePrefix {
                cidr: Some("100.64.0.0/22".into()),
                asn: Some(64500),
                description: None,
            },
            t(0),
        )
        .unwrap();
    assert_eq!(np.approved, Approval::Pending);
    assert_eq!(
        Fx::code(f.cp.create_prefix(
            rwp,
            ACCT,
            CreatePrefix {
                cidr: Some("100.64.1.0/24".into()),
                asn: Some(64500),
                description: None
            },
            t(0)
        )),
        (1118, 409)
    );
    assert_eq!(
        Fx::code(f.cp.create_prefix(
            rwp,
            ACCT,
            CreatePrefix {
                cidr: Some("100.65.0.0/24".into()),
                asn: Some(0),
                description: None
            },
            t(0)
        )),
        (1104, 400)
    );
    assert_eq!(
        Fx::code(f.cp.create_prefix(
            rwp,
            ACCT,
            CreatePrefix {
                cidr: None,
                asn: Some(1),
                description: None
            },
            t(0)
        )),
        (1101, 400)
    );
    assert_eq!(f.cp.list_services(&f.ro, ACCT).unwrap().len(), 3);
    // Service bindings: base first, then DLS bindings with the same id.
    let b = f.create(DEMO, "203.0.113.0/25", "eu", t(0)).unwrap();
    let sbs = f.cp.list_service_bindings(&f.ro, ACCT, DEMO, t(1)).unwrap();
    assert_eq!(sbs.len(), 2);
    assert_eq!(sbs[0].cidr.to_string(), "203.0.113.0/24");
    assert_eq!(sbs[0].service_name, "CDN");
    assert_eq!(sbs[1].id, b.id.to_string());
    assert_eq!(sbs[1].provisioning.state, ProvisioningState::Provisioning);
    // The 32-hex form of the id works too.
    let simple = b.id.as_uuid().simple().to_string();
    assert!(f
        .cp
        .get_service_binding(&f.ro, ACCT, DEMO, &simple, t(1))
        .is_ok());
    assert_eq!(
        Fx::code(f.cp.delete_service_binding(&f.rw, ACCT, DEMO, &b.id.to_string())),
        (1116, 400)
    );
    assert_eq!(
        Fx::code(f.cp.delete_service_binding(&f.rw, ACCT, DEMO, &sbs[0].id)),
        (1116, 400)
    );
    assert_eq!(
        Fx::code(f.cp.get_service_binding(&f.ro, ACCT, DEMO, "nope", t(1))),
        (1109, 404)
    );
}

#[test]
fn force_activate_and_change_feed() {
    let f = fx();
    let v0 = f.cp.version();
    let b = f.create(DEMO, "203.0.113.0/25", "eu", t(0)).unwrap();
    assert_eq!(f.cp.version(), v0 + 1);
    assert_eq!(f.cp.next_transition_after(t(0)), Some(t(5)));
    f.cp.force_activate(&b.id.to_string(), t(1)).unwrap();
    assert_eq!(f.sb_state(&b.id, DEMO, t(1)), ProvisioningState::Active);
    assert_eq!(f.in_force(t(1)).len(), 1);
    let cs = f.cp.changes_since(v0).unwrap();
    assert_eq!((cs.version, cs.bindings.len()), (v0 + 2, 1));
    assert_eq!(cs.bindings[0].version, v0 + 2);
    assert!(f.cp.changes_since(v0 + 2).unwrap().bindings.is_empty());
    let snap = f.cp.bindings_in_force(t(1));
    assert_eq!(snap.version, v0 + 2);
    assert!(matches!(
        f.cp.force_activate(&BindingId::random().to_string(), t(1)),
        Err(AdminError::NotFound(_))
    ));
}

#[test]
fn failed_commit_changes_nothing_and_recovers() {
    let f = fx();
    let before = f.cp.dump();
    f.store.fail_next_commits(1);
    let e = f.create(DEMO, "203.0.113.0/25", "eu", t(0)).unwrap_err();
    assert_eq!((e.code(), e.http_status()), (1000, 500));
    assert_eq!(f.cp.dump(), before);
    // The same request now succeeds: the speculative state was rolled back.
    f.create(DEMO, "203.0.113.0/25", "eu", t(0)).unwrap();
    assert_eq!(f.cp.version(), before.version + 1);
}

#[test]
fn reopen_restores_everything() {
    let f = fx();
    f.create(DEMO, "203.0.113.0/25", "eu", t(0)).unwrap();
    let before = f.cp.dump();
    let again = ControlPlane::open(Box::new(f.store.clone()), ControlConfig::default()).unwrap();
    assert_eq!(again.dump(), before);
}

#[test]
fn concurrent_writers_are_serialized_and_group_committed() {
    let f = std::sync::Arc::new(fx());
    let threads: Vec<_> = (0..8)
        .map(|th| {
            let f = f.clone();
            std::thread::spawn(move || {
                (0..32)
                    .map(|i| {
                        f.create(V6, &format!("2001:db8:{th:x}:{i:x}::/64"), "eu", t(0))
                            .unwrap()
                            .id
                    })
                    .collect::<Vec<_>>()
            })
        })
        .collect();
    let mut all: Vec<BindingId> = threads
        .into_iter()
        .flat_map(|h| h.join().unwrap())
        .collect();
    assert_eq!(all.len(), 256);
    all.sort();
    all.dedup();
    assert_eq!(all.len(), 256);
    let cs = f.cp.changes_since(0).unwrap();
    assert_eq!(cs.bindings.len(), 256);
    // Versions are consecutive: one per operation.
    let mut vs: Vec<u64> = cs.bindings.iter().map(|b| b.version).collect();
    vs.sort();
    assert!(vs.windows(2).all(|w| w[1] == w[0] + 1));
    // Concurrent duplicates: exactly one wins.
    let wins: usize = (0..8)
        .map(|_| {
            let f = f.clone();
            std::thread::spawn(move || f.create(DEMO, "203.0.113.0/25", "eu", t(0)).is_ok())
        })
        .collect::<Vec<_>>()
        .into_iter()
        .map(|h| h.join().unwrap() as usize)
        .sum();
    assert_eq!(wins, 1);
}

/// Polls `fut` once with a waker that does nothing.
fn poll_once<F: std::future::Future>(fut: std::pin::Pin<&mut F>) -> std::task::Poll<F::Output> {
    fut.poll(&mut std::task::Context::from_waker(std::task::Waker::noop()))
}

#[test]
fn async_writers_wait_without_threads_and_commit_in_order() {
    // 64 writes driven by one thread: each first poll validates and queues; none blocks.
    let f = fx();
    let mut futs: Vec<_> = (0..64)
        .map(|i| {
            let input = CreateBinding::new(V6, &format!("2001:db8:77:{i:x}::/64"), "eu");
            Box::pin(f.cp.create_binding_async(&f.rw, ACCT, input, t(0)))
        })
        .collect();
    let mut done: Vec<Option<Binding>> = vec![None; futs.len()];
    while done.iter().any(Option::is_none) {
        for (fut, out) in futs.iter_mut().zip(done.iter_mut()) {
            if out.is_none() {
                if let std::task::Poll::Ready(r) = poll_once(fut.as_mut()) {
                    *out = Some(r.unwrap().result);
                }
            }
        }
        std::thread::yield_now();
    }
    // Queued in creation order, so versions follow it, one per write.
    let vs: Vec<u64> = done
        .iter()
        .map(|b| {
            f.cp.binding_record(&b.as_ref().unwrap().id)
                .unwrap()
                .version
        })
        .collect();
    assert!(vs.windows(2).all(|w| w[1] == w[0] + 1), "{vs:?}");
    // A refused write returns at its first poll and queues nothing.
    let before = f.cp.version();
    let dup = CreateBinding::new(V6, "2001:db8:77::/64", "eu");
    let r = poll_once(std::pin::pin!(f.cp.create_binding_async(
        &f.rw,
        ACCT,
        dup,
        t(0)
    )));
    assert!(
        matches!(
            r,
            std::task::Poll::Ready(Err(CreateBindingError::Conflict(_)))
        ),
        "{r:?}"
    );
    assert_eq!(f.cp.version(), before);
}

#[test]
fn a_write_queued_then_abandoned_is_committed_whole() {
    // An HTTP client that disconnects drops its handler's future after the write was
    // queued: the write still lands, and dropping the control plane drains the queue.
    let f = fx();
    let input = CreateBinding::new(V6, "2001:db8:ab::/48", "eu");
    let _ = poll_once(std::pin::pin!(f.cp.create_binding_async(
        &f.rw,
        ACCT,
        input,
        t(0)
    )));
    let Fx { cp, store, .. } = f;
    drop(cp);
    let reopened = ControlPlane::open(Box::new(store), ControlConfig::default()).unwrap();
    let cs = reopened.changes_since(0).unwrap();
    assert!(
        cs.bindings
            .iter()
            .any(|b| b.cidr.to_string() == "2001:db8:ab::/48"),
        "the abandoned write was lost"
    );
}

#[test]
fn seeded_ids_are_reproducible() {
    let cfg = || ControlConfig {
        id_seed: Some(7),
        ..ControlConfig::default()
    };
    let a = fx_with(cfg());
    let b = fx_with(cfg());
    let x = a.create(DEMO, "203.0.113.0/25", "eu", t(0)).unwrap();
    let y = b.create(DEMO, "203.0.113.0/25", "eu", t(0)).unwrap();
    assert_eq!(x.id, y.id);
}

#[test]
fn bulk_create_uses_the_rules() {
    let f = fx();
    let items: Vec<(String, String, String)> = (0..100)
        .map(|i| {
            (
                V6.to_string(),
                format!("2001:db8:{i:x}::/48"),
                "eu".to_string(),
            )
        })
        .collect();
    let v = f.cp.version();
    let ids = f.cp.bulk_create_bindings(ACCT, &items, t(0)).unwrap();
    assert_eq!(ids.len(), 100);
    assert_eq!(f.cp.version(), v + 1);
    let mut dup = items[..2].to_vec();
    dup.push(items[0].clone());
    let (i, e) = f.cp.bulk_create_bindings(ACCT, &dup, t(0)).unwrap_err();
    assert_eq!((i, e.code()), (0, 1108));
    let fresh: Vec<_> = vec![
        (
            V6.to_string(),
            "2001:db8:ffff::/48".to_string(),
            "eu".to_string(),
        ),
        (
            V6.to_string(),
            "2001:db8:ffff::/48".to_string(),
            "eu".to_string(),
        ),
    ];
    let (i, e) = f.cp.bulk_create_bindings(ACCT, &fresh, t(0)).unwrap_err();
    assert_eq!((i, e.code()), (1, 1108));
    assert_eq!(f.cp.version(), v + 1);
}

#[test]
fn plane_is_send_and_sync() {
    fn assert<T: Send + Sync>() {}
    assert::<ControlPlane>();
}

/// Edge activation (`Activation::Edges`): a change is provisioning until a majority of
/// the registered nodes report its version, stopped nodes keep counting, a restart keeps
/// registrations and activations, expiry forgets a node, the address-map gate follows.
#[test]
fn edges_activate_what_a_majority_applied() {
    use inregion_feed::wire::NodeReport;
    let cfg = ControlConfig {
        activation: Activation::Edges,
        ..ControlConfig::default()
    };
    let f = fx_with(cfg.clone());
    let wall = |s: i64| Timestamp::from_secs(1_900_000_000 + s);
    let report = |id: &str, dc: &str, applied: u64, w: i64| {
        let r = NodeReport {
            dc: inregion_model::Iata::parse(dc).unwrap(),
            address: format!("127.0.0.1:{}", 9000 + applied),
            applied_version: applied,
        };
        f.cp.report_edge_node(id, &r, wall(w), t(1))
    };
    let b = f.create(DEMO, "203.0.113.0/25", "eu", t(0)).unwrap();
    let v = f.cp.binding_record(&b.id).unwrap().version;
    let state = |now| f.sb_state(&b.id, DEMO, now);
    // No node: nothing activates, whatever the time.
    assert_eq!(state(t(1000)), ProvisioningState::Provisioning);
    assert_eq!(f.cp.next_transition_after(t(0)), None);
    // Three nodes (their registrations bump the version); one has applied v: 1 of 3.
    // (Alone, the first node to register would have been a majority of one.)
    report("IAD", "IAD", 0, 0).unwrap();
    report("NRT", "NRT", 0, 0).unwrap();
    let (_, view) = report("FRA", "FRA", v, 0).unwrap();
    assert_eq!((view.nodes.len(), view.majority), (3, 2));
    assert_eq!(state(t(1000)), ProvisioningState::Provisioning);
    // Address-map gate: still refused.
    let map =
        f.cp.create_address_map(&f.rw, ACCT, CreateAddressMap::default(), t(1))
            .unwrap();
    let mid = map.id.to_string();
    let e =
        f.cp.add_address_map_ip(&f.rw, ACCT, &mid, "203.0.113.9", t(1))
            .unwrap_err();
    assert_eq!(e.code(), 1301);
    // A second node reaches v: a majority (2 of 3). Active from the report's clock time.
    let (_, view) = report("IAD", "IAD", v, 1).unwrap();
    assert!(view.activated_through >= v);
    assert_eq!(state(t(1)), ProvisioningState::Active);
    f.cp.add_address_map_ip(&f.rw, ACCT, &mid, "203.0.113.9", t(1))
        .unwrap();
    // A delete waits for the majority too: deleting, still in force.
    f.cp.delete_binding(&f.rw, ACCT, &b.id.to_string(), t(2))
        .unwrap();
    let dv = f.cp.binding_record(&b.id).unwrap().version;
    assert!(f.cp.binding_record(&b.id).unwrap().awaits_edges());
    assert_eq!(f.in_force(t(500)).len(), 1);
    // Nodes stop (not live any more) but keep counting: one report is not a majority.
    let (_, view) = report("FRA", "FRA", dv, 100).unwrap();
    assert!(view.nodes.iter().filter(|n| n.live).count() == 1);
    assert!(view.activated_through < dv);
    assert!(f.cp.binding_record(&b.id).unwrap().awaits_edges());
    // A restart forgets what was applied, keeps the registrations and the activation.
    let again = ControlPlane::open(Box::new(f.store.clone()), cfg.clone()).unwrap();
    assert_eq!(again.dump(), f.cp.dump());
    let reg = again.edge_registry(wall(101));
    assert_eq!(reg.nodes.len(), 3);
    assert_eq!(reg.activated_through, 0);
    drop(again);
    // NRT comes back having applied dv: 2 of 3 → gone.
    report("NRT", "NRT", dv, 101).unwrap();
    assert!(!f.cp.binding_record(&b.id).unwrap().awaits_edges());
    assert!(f.in_force(t(3)).is_empty());
    // Expiry: after an hour without a report IAD is forgotten (FRA and NRT report).
    let (_, view) = report("FRA", "FRA", dv, 3700).unwrap();
    assert_eq!(view.nodes.len(), 2, "{view:?}");
    // Deregistration; unknown node; bad input changes nothing.
    f.cp.remove_edge_node("NRT", wall(3701), t(4)).unwrap();
    assert!(matches!(
        f.cp.remove_edge_node("NRT", wall(3701), t(4)),
        Err(EdgeNodeError::NotFound(_))
    ));
    let before = f.cp.version();
    assert!(matches!(
        report("a/b", "FRA", 1, 3702),
        Err(EdgeNodeError::InvalidNodeId(_))
    ));
    assert!(matches!(
        report("X", "ZZZ", 1, 3702),
        Err(EdgeNodeError::UnknownDc(_))
    ));
    assert_eq!(f.cp.version(), before);
}

/// The edge feed: snapshot is the live bindings' intent at one version; changes carry
/// deletions; a reader ahead of the server or behind a purge is refused.
#[test]
fn edge_feed_snapshot_and_changes() {
    let f = fx();
    let s0 = f.cp.edge_snapshot(7);
    assert!(s0.bindings.is_empty());
    assert_eq!(s0.regions.len(), 2, "the seeded custom regions");
    let a = f.create(DEMO, "203.0.113.0/25", "eu", t(0)).unwrap();
    let b = f.create(DEMO, "203.0.113.128/25", "us", t(0)).unwrap();
    f.cp.delete_binding(&f.rw, ACCT, &b.id.to_string(), t(1))
        .unwrap();
    let s = f.cp.edge_snapshot(7);
    assert_eq!(s.version, f.cp.version());
    assert_eq!(s.bindings.len(), 1);
    assert_eq!(s.bindings[0].binding_id, a.id);
    // Provisioning (delay mode): the feed carries the intent, not what is in force.
    assert_eq!(s.bindings[0].region_key.as_str(), "eu");
    let c = f.cp.edge_changes(s0.version, 7).unwrap();
    assert_eq!(c.version, s.version);
    let got: Vec<_> = c
        .changes
        .iter()
        .map(|c| (c.binding_id, c.deleted))
        .collect();
    assert_eq!(got, vec![(a.id, false), (b.id, true)]);
    assert!(matches!(
        f.cp.edge_changes(s.version + 1, 7),
        Err(FeedError::Ahead { .. })
    ));
    assert!(f.cp.edge_changes(s.version, 7).unwrap().changes.is_empty());
}

/// A long-polling reader is woken by the next commit, from another thread.
#[test]
fn version_after_wakes_on_commit() {
    let f = std::sync::Arc::new(fx());
    let v = f.cp.version();
    let f2 = f.clone();
    let h = std::thread::spawn(move || block_on(f2.cp.version_after(v)));
    std::thread::sleep(std::time::Duration::from_millis(50));
    assert!(!h.is_finished());
    f.create(DEMO, "203.0.113.0/25", "eu", t(0)).unwrap();
    assert_eq!(h.join().unwrap(), v + 1);
}
