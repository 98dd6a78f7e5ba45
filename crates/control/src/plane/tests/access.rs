//! The access check (§3.2 precedence), global-key users and [`ControlPlane::authorize`].

use super::*;

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
