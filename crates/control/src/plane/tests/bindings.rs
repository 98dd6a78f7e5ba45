//! DLS prefix bindings: create, patch, delete, conflicts, caps, pagination, the 1200
//! notice.

use super::*;

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
