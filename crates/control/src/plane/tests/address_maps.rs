//! Address maps: the §9 gate, atomic create, PATCH precedence.

use super::*;

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
