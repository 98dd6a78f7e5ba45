//! Admin writes and the change feed: force-activation, bulk creation, `changes_since`.

use super::*;

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
