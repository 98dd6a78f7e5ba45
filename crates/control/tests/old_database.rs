//! An old database still opens and reads the same.
//!
//! `fixtures/schema-v1.sqlite` was written by the version of inregion whose store kept the
//! API's serde shapes as its row bodies (schema version 1, before storage records of
//! their own), by running [`build_world`] over a `SqliteStore` (the ignored test
//! `write_fixture` below, as it was at that commit). This test opens that file with the
//! current code, which migrates it, and checks that every record reads back exactly as
//! the same world built today over a memory store, and that the token and the global key
//! stored with the old hashing scheme still authenticate.

use inregion_control::*;
use std::path::PathBuf;

const ACCT: &str = "0123456789abcdef0123456789abcdef";
const ACCT_B: &str = "fedcba9876543210fedcba9876543210";
const P4: &str = "0f1e2d3c4b5a69788796a5b4c3d2e1f0";
const P6: &str = "1f1e2d3c4b5a69788796a5b4c3d2e1f0";
const TOKEN: &str = "fixture-token-0000000000000000000000";
const KEY: &str = "0123456789abcdef0123456789abcdef01234";

fn config() -> ControlConfig {
    ControlConfig {
        propagation_delay: std::time::Duration::from_secs(30),
        id_seed: Some(7),
        ..ControlConfig::default()
    }
}

fn t(s: i64) -> Timestamp {
    Timestamp::from_secs(1_800_000_000 + s)
}

fn seed() -> SeedConfig {
    SeedConfig::from_toml(&format!(
        r#"
[[accounts]]
id = "{ACCT}"
name = "Team A"
entitlements = ["regional_services", "regional_services_byoip"]
[[accounts]]
id = "{ACCT_B}"
name = "Team B"
entitlements = ["regional_services"]
[[tokens]]
id = "00112233445566778899aabbccddeeff"
name = "fixture token"
secret = "{TOKEN}"
accounts = ["{ACCT}"]
permissions = ["DLS: Write", "IP Prefixes: Write", "Address Maps Write"]
allowed_ips = ["127.0.0.0/8"]
expires_on = "2030-01-01T00:00:00.000000Z"
[[users]]
email = "ops@example.com"
key = "{KEY}"
roles = {{ "{ACCT}" = "Administrator" }}
[[prefixes]]
account = "{ACCT}"
id = "{P4}"
cidr = "198.51.100.0/24"
asn = 64496
description = "Team A IPv4"
[[prefixes]]
account = "{ACCT}"
id = "{P6}"
cidr = "2001:db8:1000::/44"
asn = 64497
description = "Team A IPv6"
service = "Spectrum"
[[prefixes]]
account = "{ACCT_B}"
cidr = "192.0.2.0/24"
asn = 64498
approved = false
[[regions]]
account = "{ACCT}"
key = "teama-dach"
name = "Team A: DACH"
id = "6b0a3f2e-7c1d-4e5f-8a9b-0c1d2e3f4a5b"
countries = ["DE", "AT", "CH"]
data_centers = ["LHR"]
exclude_countries = []
"#
    ))
    .unwrap()
}

/// The world: accounts, a token, a user, prefixes (one pending), a custom region, live
/// bindings (one re-pointed), a deleted binding (tombstone) and an address map with IPs
/// and memberships.
fn build_world(cp: &ControlPlane) {
    // One commit per item, as `seed` committed when the fixture was written (seeding is
    // one commit now): the same versions, so that the records compare equal.
    let (cfg, now) = (seed(), t(0));
    for a in &cfg.accounts {
        cp.upsert_account(a, now).unwrap();
    }
    for u in &cfg.users {
        cp.add_user(u, now).unwrap();
    }
    for k in &cfg.tokens {
        cp.add_token(k, now).unwrap();
    }
    for p in &cfg.prefixes {
        cp.add_prefix(p, now).unwrap();
    }
    for r in &cfg.regions {
        cp.add_custom_region(r, now).unwrap();
    }
    let p = Principal::system();
    let create = |prefix: &str, cidr: &str, region: &str, at| {
        cp.create_binding(
            &p,
            ACCT,
            CreateBinding {
                prefix_id: Some(prefix.into()),
                cidr: Some(cidr.into()),
                region_key: Some(region.into()),
            },
            t(at),
        )
        .unwrap()
        .result
    };
    let a = create(P4, "198.51.100.0/25", "eu", 1);
    let b = create(P4, "198.51.100.128/26", "us", 2);
    let _c = create(P6, "2001:db8:1000::/48", "teama-dach", 3);
    cp.patch_binding(
        &p,
        ACCT,
        &a.id.to_string(),
        UpdateBinding {
            region_key: Some("us".into()),
            other_fields: Vec::new(),
        },
        t(40),
    )
    .unwrap();
    cp.delete_binding(&p, ACCT, &b.id.to_string(), t(50))
        .unwrap();
    cp.create_address_map(
        &p,
        ACCT,
        CreateAddressMap {
            description: Some("fixture map".into()),
            enabled: Some(true),
            default_sni: None,
            ips: vec!["198.51.100.200".into(), "2001:db8:1001::1".into()],
            memberships: vec![MembershipInput {
                identifier: Some(ACCT.into()),
                kind: Some("account".into()),
            }],
        },
        t(200),
    )
    .unwrap();
}

fn fixture() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/schema-v1.sqlite")
}

/// Writes the fixture (run once, at the commit whose store wrote schema version 1).
#[test]
#[ignore = "writes tests/fixtures/schema-v1.sqlite; kept to show how it was made"]
fn write_fixture() {
    let path = fixture();
    let _ = std::fs::remove_file(&path);
    let cp = ControlPlane::open(Box::new(SqliteStore::open(&path).unwrap()), config()).unwrap();
    build_world(&cp);
    drop(cp);
}

/// The schema-v1 file opens (migrated to the current schema), every record reads back as
/// the same world built today, and the secrets stored with v1's plain SHA-256 still
/// authenticate; a re-seed rewrites the token with the keyed digest.
#[test]
fn a_schema_v1_database_opens_and_reads_the_same() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("old.sqlite");
    std::fs::copy(fixture(), &path).unwrap();
    let old = ControlPlane::open(Box::new(SqliteStore::open(&path).unwrap()), config()).unwrap();
    let today = ControlPlane::open(Box::new(MemoryStore::new()), config()).unwrap();
    build_world(&today);

    let (got, want) = (old.dump(), today.dump());
    assert_eq!(got.version, want.version);
    assert_eq!(got.records.len(), want.records.len());
    for (g, w) in got.records.iter().zip(&want.records) {
        match (g, w) {
            // The digests differ by construction (v1: plain SHA-256; today: keyed).
            (Change::Token(g), Change::Token(w)) => {
                assert_eq!(g.hash_scheme, HashScheme::LegacySha256);
                assert_eq!(w.hash_scheme, HashScheme::HmacSha256);
                let mut g = g.clone();
                g.secret_hash = w.secret_hash;
                g.hash_scheme = w.hash_scheme;
                assert_eq!(&g, w);
            }
            (Change::User(g), Change::User(w)) => {
                assert_eq!(g.key_scheme, HashScheme::LegacySha256);
                let mut g = g.clone();
                g.key_hash = w.key_hash;
                g.key_scheme = w.key_scheme;
                assert_eq!(&g, w);
            }
            _ => assert_eq!(g, w),
        }
    }
    // Derived views agree too: what the data plane would compile.
    let at = t(10_000);
    assert_eq!(old.bindings_in_force(at), today.bindings_in_force(at));

    let now = t(300);
    let ip = Some("127.0.0.1".parse().unwrap());
    let token = Credentials::ApiToken(TOKEN.into());
    assert!(old.authenticate(&token, ip, now).is_ok());
    let user = Credentials::GlobalKey {
        email: "ops@example.com".into(),
        key: KEY.into(),
    };
    assert!(old.authenticate(&user, None, now).is_ok());
    let wrong = Credentials::ApiToken("fixture-token-0000000000000000000001".into());
    assert!(old.authenticate(&wrong, ip, now).is_err());

    // Re-seeding upgrades the token to the keyed digest; it still authenticates, also
    // after a restart.
    old.seed(&seed(), now).unwrap();
    drop(old);
    let again = ControlPlane::open(Box::new(SqliteStore::open(&path).unwrap()), config()).unwrap();
    let schemes: Vec<HashScheme> = again
        .dump()
        .records
        .iter()
        .filter_map(|r| match r {
            Change::Token(t) => Some(t.hash_scheme),
            _ => None,
        })
        .collect();
    assert_eq!(schemes, vec![HashScheme::HmacSha256]);
    assert!(again.authenticate(&token, ip, now).is_ok());
}
