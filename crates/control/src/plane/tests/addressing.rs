//! Prefixes, services and service bindings.

use super::*;

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
fn a_prefix_seeded_again_for_another_account_leaves_the_first_one() {
    // PENDING has no bindings, so a seeding document may give it to another account:
    // the first account no longer lists it or finds addresses in it, here and after a
    // restart alike.
    let f = fx();
    let ids = |f: &Fx| -> Vec<String> {
        f.cp.list_prefixes(&f.ro, ACCT)
            .unwrap()
            .into_iter()
            .map(|p| p.id.to_string())
            .collect()
    };
    assert!(ids(&f).contains(&PENDING.to_string()));
    let doc = SeedConfig::from_toml(&format!(
        "[[prefixes]]\naccount = \"{OTHER}\"\nid = \"{PENDING}\"\ncidr = \"198.51.100.0/24\"\nasn = 64496\n"
    ))
    .unwrap();
    f.cp.seed(&doc, t(1)).unwrap();
    assert!(!ids(&f).contains(&PENDING.to_string()), "{:?}", ids(&f));
    assert_eq!(ids(&f).len(), 2);
    assert_eq!(Fx::code(f.cp.get_prefix(&f.ro, ACCT, PENDING)), (1105, 404));
    let ip: IpAddr = "198.51.100.7".parse().unwrap();
    let acct = AccountId::parse(ACCT).unwrap();
    let other = AccountId::parse(OTHER).unwrap();
    let read = f.cp.pipe.shared().read_state();
    assert!(read.owning_prefix(&acct, ip).is_none());
    assert_eq!(
        read.owning_prefix(&other, ip).map(|p| p.id.to_string()),
        Some(PENDING.to_string())
    );
    drop(read);
    // The same after a restart (the index is rebuilt from the records).
    let again = ControlPlane::open(Box::new(f.store.clone()), ControlConfig::default()).unwrap();
    assert_eq!(again.dump(), f.cp.dump());
    let ro = again
        .authenticate(&Credentials::ApiToken(RO.into()), None, t(2))
        .unwrap();
    let after: Vec<String> = again
        .list_prefixes(&ro, ACCT)
        .unwrap()
        .into_iter()
        .map(|p| p.id.to_string())
        .collect();
    assert_eq!(after, ids(&f));
}
