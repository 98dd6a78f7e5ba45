//! Seeding documents: one commit, all or nothing.

use super::*;

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
