//! The control plane as a test fixture: reset, per-test accounts, snapshots.

use inregion_control::*;
use std::time::Duration;

mod common;

use common::{ACCT, PREFIX};
const TOKEN: &str = "fixture-token-00000000000000000000000";

fn seed() -> SeedConfig {
    common::seed_with(&format!(
        r#"
[[tokens]]
id = "00112233445566778899aabbccddeeff"
secret = "{TOKEN}"
accounts = ["{ACCT}"]
permissions = ["DLS: Write", "IP Prefixes: Write"]
"#
    ))
}

fn config() -> ControlConfig {
    ControlConfig {
        propagation_delay: Duration::from_secs(60),
        ..ControlConfig::default()
    }
}

fn t0() -> Timestamp {
    Timestamp::from_secs(1_800_000_000)
}

fn fill(cp: &ControlPlane, n: u32) {
    let items: Vec<(String, String, String)> = (0..n)
        .map(|i| (PREFIX.into(), format!("2001:db8:{i:x}::/48"), "eu".into()))
        .collect();
    cp.bulk_create_bindings(ACCT, &items, t0()).unwrap();
}

/// Records only (versions differ between a reset server and a fresh one).
fn records(cp: &ControlPlane) -> Vec<Change> {
    cp.dump().records
}

#[test]
fn reset_equals_a_fresh_start_and_readers_from_before_re_read() {
    let dir = tempfile::tempdir().unwrap();
    let cp = ControlPlane::open_sqlite(dir.path().join("r.db"), config()).unwrap();
    cp.seed(&seed(), t0()).unwrap();
    let fresh = records(&cp);
    fill(&cp, 500);
    let p = Principal::system();
    cp.create_address_map(&p, ACCT, CreateAddressMap::default(), t0())
        .unwrap();
    let before = cp.version();
    cp.reset(&[seed()], t0()).unwrap();
    assert_eq!(records(&cp), fresh);
    assert_eq!(cp.version(), before + 1, "one commit");
    assert!(cp.changes_since(before).is_err());
    assert!(cp.changes_since(cp.version()).is_ok());
    let creds = Credentials::ApiToken(TOKEN.into());
    assert!(cp.authenticate(&creds, None, t0()).is_ok());
    // Durable: a reopened store holds the reset world.
    drop(cp);
    let again = ControlPlane::open_sqlite(dir.path().join("r.db"), config()).unwrap();
    assert_eq!(records(&again), fresh);
    // A reset with a seed that fails changes nothing.
    let mut bad = seed();
    bad.prefixes[0].cidr = "not a cidr".into();
    fill(&again, 3);
    let kept = again.dump();
    assert!(again.reset(&[bad], t0()).is_err());
    assert_eq!(again.dump(), kept);
}

#[test]
fn test_accounts_are_isolated_and_allocated_without_overlap() {
    let cp = ControlPlane::in_memory(config());
    cp.seed(&seed(), t0()).unwrap();
    let a = cp
        .create_test_account(&TestAccountRequest::default(), t0())
        .unwrap();
    let b = cp
        .create_test_account(
            &TestAccountRequest {
                ipv4: true,
                ..TestAccountRequest::default()
            },
            t0(),
        )
        .unwrap();
    let c = cp
        .create_test_account(&TestAccountRequest::default(), t0())
        .unwrap();
    assert!(!a.cidr.overlaps(&c.cidr) && a.cidr.is_ipv6() && !b.cidr.is_ipv6());
    assert_ne!(a.account_id, c.account_id);
    let pa = cp
        .authenticate(&Credentials::ApiToken(a.token.clone()), None, t0())
        .unwrap();
    // a's token reaches a's account only.
    assert!(cp
        .list_bindings(&pa, a.account_id.as_str(), &PageRequest::first(10))
        .is_ok());
    let e = cp
        .list_bindings(&pa, c.account_id.as_str(), &PageRequest::first(10))
        .unwrap_err();
    assert_eq!(e.code(), 10000);
    let e = cp
        .list_bindings(&pa, ACCT, &PageRequest::first(10))
        .unwrap_err();
    assert_eq!(e.code(), 10000);
    // A binding in a's prefix.
    let inner = a.cidr.to_string().replace("/48", "/64");
    cp.create_binding(
        &pa,
        a.account_id.as_str(),
        CreateBinding::new(a.prefix_id.as_str(), &inner, "eu"),
        t0(),
    )
    .unwrap();
    // A chosen CIDR that overlaps an existing prefix is refused.
    let e = cp
        .create_test_account(
            &TestAccountRequest {
                cidr: Some("2001:db8:1::/48".into()),
                ..TestAccountRequest::default()
            },
            t0(),
        )
        .unwrap_err();
    assert_eq!(e.code(), 1906);
}

#[test]
fn snapshots_round_trip_into_another_store_with_its_tokens() {
    let cp = ControlPlane::in_memory(config());
    cp.seed(&seed(), t0()).unwrap();
    fill(&cp, 50);
    let acct = cp
        .create_test_account(&TestAccountRequest::default(), t0())
        .unwrap();
    let snap = cp.snapshot(t0(), 42);
    let text = snap.to_json();
    let want = records(&cp);

    // Into a store with another key: every record back, the tokens authenticate.
    let dir = tempfile::tempdir().unwrap();
    let other = ControlPlane::open_sqlite(dir.path().join("o.db"), config()).unwrap();
    other.seed(&seed(), t0()).unwrap();
    fill(&other, 7);
    let parsed = Snapshot::from_json(&text).unwrap();
    assert_eq!(parsed.clock_offset_us, 42);
    let v = other.version();
    other.restore(parsed).unwrap();
    let strip = |v: Vec<Change>| -> Vec<Change> {
        v.into_iter()
            .filter(|c| !matches!(c, Change::AdoptTokenKey(_)))
            .map(|c| match c {
                Change::Binding(mut b) => {
                    b.version = 0;
                    Change::Binding(b)
                }
                c => c,
            })
            .collect()
    };
    assert_eq!(strip(records(&other)), strip(want.clone()));
    assert!(other.changes_since(v).is_err());
    for token in [TOKEN.to_owned(), acct.token.clone()] {
        assert!(other
            .authenticate(&Credentials::ApiToken(token), None, t0())
            .is_ok());
    }
    // The adopted key survives a restart.
    drop(other);
    let again = ControlPlane::open_sqlite(dir.path().join("o.db"), config()).unwrap();
    assert!(again
        .authenticate(&Credentials::ApiToken(acct.token.clone()), None, t0())
        .is_ok());
    assert_eq!(strip(records(&again)), strip(want));
}

#[test]
fn bad_snapshots_change_nothing() {
    let cp = ControlPlane::in_memory(config());
    cp.seed(&seed(), t0()).unwrap();
    fill(&cp, 5);
    let before = cp.dump();
    let good = cp.snapshot(t0(), 0).to_json();
    let newer = good.replace("\"format_version\": 2", "\"format_version\": 99");
    assert!(matches!(
        Snapshot::from_json(&newer),
        Err(SnapshotError::NewerFormat { found: 99, .. })
    ));
    assert!(matches!(
        Snapshot::from_json("{\"format\": \"x\"}"),
        Err(SnapshotError::Malformed(_))
    ));
    // A binding whose prefix is not in the snapshot.
    let orphan = good.replace(PREFIX, "cccccccccccccccccccccccccccccccc");
    let orphan = orphan.replacen(
        "\"cccccccccccccccccccccccccccccccc\"",
        &format!("\"{PREFIX}\""),
        1,
    );
    let snap = Snapshot::from_json(&orphan).unwrap();
    assert!(cp.restore(snap).is_err());
    assert_eq!(cp.dump(), before);
}
