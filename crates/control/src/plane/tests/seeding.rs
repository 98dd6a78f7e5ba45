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

mod over_the_view {
    //! A document validated over [`SeedView`] (the state read in place, the document's
    //! earlier items on top) gives exactly what it gives over a copy of the state with
    //! each earlier item applied (how it was done before the view, and the plain model
    //! of what the rules mean): the same changes, or the same refusal.
    use super::*;
    use crate::plane::seeding::SeedView;
    use proptest::prelude::*;

    const NEW_ACCOUNT: &str = "abababababababababababababababab";
    const MISSING_ACCOUNT: &str = "ffffffffffffffffffffffffffffffff";
    const NEW_PREFIX: &str = "eeeeeeeeeeeeeeeeeeeeeeeeeeeeeeee";
    const TOKEN_A: &str = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
    const TOKEN_B: &str = "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb";

    /// One item of a document, as TOML, drawn from small pools so that items collide:
    /// the same ids, secrets, CIDRs and region keys, existing or not, and references to
    /// accounts that do not exist.
    fn item() -> impl Strategy<Value = String> {
        // A reference to a missing account refuses the whole document: rarely drawn.
        let account = prop::sample::select(
            [
                [ACCT, OTHER].repeat(5),
                vec![NEW_ACCOUNT, NEW_ACCOUNT, MISSING_ACCOUNT],
            ]
            .concat(),
        );
        let seeded = prop::sample::select(vec![ACCT, OTHER, NEW_ACCOUNT]);
        prop_oneof![
            (seeded, any::<bool>()).prop_map(|(id, ent)| format!(
                "[[accounts]]\nid = \"{id}\"\nname = \"n\"\nentitlements = [{}]\n",
                if ent { "\"regional_services\"" } else { "" }
            )),
            (
                prop::sample::select(
                    [["u@example.com", "v@example.com"].repeat(4), vec!["nobody"]].concat(),
                ),
                account.clone(),
            )
                .prop_map(|(email, a)| format!(
                    "[[users]]\nemail = \"{email}\"\nkey = \"global-key-000000000000000000\"\n\
                     roles = {{ \"{a}\" = \"Administrator\" }}\n"
                )),
            (
                prop::sample::select(vec!["", TOKEN_A, TOKEN_B, TOKEN_A, TOKEN_B]),
                prop::sample::select(vec![
                    RW,
                    "new-secret-0000000000000000",
                    "two-secret-0000000000000000"
                ]),
                account.clone(),
            )
                .prop_map(|(id, secret, a)| format!(
                    "[[tokens]]\n{}name = \"t\"\nsecret = \"{secret}\"\naccounts = [\"{a}\"]\n\
                     permissions = [\"DLS: Read\"]\n",
                    if id.is_empty() {
                        String::new()
                    } else {
                        format!("id = \"{id}\"\n")
                    }
                )),
            (
                prop::sample::select(vec!["", DEMO, NEW_PREFIX, NEW_PREFIX]),
                prop::sample::select(vec![
                    "203.0.113.0/24",
                    "203.0.113.0/25",
                    "198.18.0.0/24",
                    "198.18.1.0/24",
                ]),
                account.clone(),
                any::<bool>(),
            )
                .prop_map(|(id, cidr, a, approved)| format!(
                    "[[prefixes]]\naccount = \"{a}\"\n{}cidr = \"{cidr}\"\nasn = 64496\n\
                     approved = {approved}\n",
                    if id.is_empty() {
                        String::new()
                    } else {
                        format!("id = \"{id}\"\n")
                    }
                )),
            (
                prop::sample::select(vec!["acme", "zeta", "acme", "zeta", "theirs", "eu"]),
                // No id (found by key, else derived from it), acme's, or another.
                prop::sample::select(vec![
                    String::new(),
                    RegionId::from_uuid(derived_uuid("custom-region:acme")).to_string(),
                    RegionId::from_uuid(derived_uuid("custom-region:zeta")).to_string(),
                ]),
                prop::sample::select(vec!["DE", "US"]),
                account,
            )
                .prop_map(|(key, id, country, a)| format!(
                    "[[regions]]\naccount = \"{a}\"\nkey = \"{key}\"\nname = \"r\"\n{}\
                     countries = [\"{country}\"]\n",
                    if id.is_empty() {
                        String::new()
                    } else {
                        format!("id = \"{id}\"\n")
                    }
                )),
        ]
    }

    /// The plain model: each item validated over a full copy of the state with every
    /// earlier item applied.
    fn over_copies(
        r: &Rules<'_>,
        ctx: &mut Ctx<'_>,
        cfg: &SeedConfig,
        ring: crate::auth::KeyRing<'_>,
        now: Timestamp,
    ) -> Result<Vec<Change>, AdminError> {
        let mut st = r.st.clone();
        let mut out = Vec::new();
        let mut take = |st: &mut State, changes: Vec<Change>| {
            for c in changes {
                st.apply(c.clone());
                out.push(c);
            }
        };
        for a in &cfg.accounts {
            let (c, ()) = r.seed_account(&SeedView::new(&st.clone()), a)?;
            take(&mut st, c);
        }
        for u in &cfg.users {
            let (c, ()) = r.seed_user(&SeedView::new(&st.clone()), u, ring.primary.hash(&u.key))?;
            take(&mut st, c);
        }
        for t in &cfg.tokens {
            let (c, _) = r.seed_token(&SeedView::new(&st.clone()), ctx, t, ring)?;
            take(&mut st, c);
        }
        for p in &cfg.prefixes {
            let (c, _) = r.seed_prefix(&SeedView::new(&st.clone()), ctx, p, now)?;
            take(&mut st, c);
        }
        for g in &cfg.regions {
            let (c, _) = r.seed_region(&SeedView::new(&st.clone()), g, now)?;
            take(&mut st, c);
        }
        Ok(out)
    }

    type Outcome = Result<Vec<Change>, AdminError>;

    /// `doc` over the view and over copies, on the fixture's state with one binding (a
    /// prefix with live ones cannot move) and whatever of `before` the rules accept, one
    /// item at a time. `None` when `doc` is not a document.
    fn both(before: &[String], doc: &str) -> Option<(Outcome, Outcome)> {
        let f = fx();
        f.create(DEMO, "203.0.113.0/26", "eu", t(0)).unwrap();
        for item in before {
            if let Ok(b) = SeedConfig::from_toml(item) {
                let _ = f.cp.seed(&b, t(1));
            }
        }
        let cfg = SeedConfig::from_toml(doc).ok()?;
        let st = f.cp.pipe.shared().read_state().clone();
        let rules = Rules {
            cfg: &f.cp.config,
            managed: &f.cp.managed,
            st: &st,
        };
        let ids = || IdGen::Seeded(Box::new(rand_chacha::ChaCha8Rng::seed_from_u64(7)));
        let (mut a, mut b) = (ids(), ids());
        let ring = f.cp.ring(&st);
        let view = rules.seed_document(
            &mut Ctx {
                version: 99,
                ids: &mut a,
            },
            &st,
            &cfg,
            ring,
            t(2),
        );
        let model = over_copies(
            &rules,
            &mut Ctx {
                version: 99,
                ids: &mut b,
            },
            &cfg,
            ring,
            t(2),
        );
        Some((view, model))
    }

    /// `doc` is accepted, and the same over the view as over copies.
    fn accepted_alike(before: &[String], doc: &str) {
        let (view, model) = both(before, doc).expect("a document");
        assert!(model.is_ok(), "{model:?}");
        assert_eq!(view, model);
    }

    #[test]
    fn a_secret_a_token_gave_up_earlier_in_the_document_is_free() {
        let token = |id: &str, secret: &str| {
            format!(
                "[[tokens]]\nid = \"{id}\"\nname = \"t\"\nsecret = \"{secret}\"\n\
                 accounts = [\"{ACCT}\"]\npermissions = [\"DLS: Read\"]\n"
            )
        };
        let (one, two) = (
            "first-secret-000000000000000",
            "second-secret-00000000000000",
        );
        accepted_alike(
            &[token(TOKEN_A, one)],
            &[token(TOKEN_A, two), token(TOKEN_B, one)].concat(),
        );
    }

    #[test]
    fn a_key_a_region_gave_up_earlier_in_the_document_is_free() {
        let acme = RegionId::from_uuid(derived_uuid("custom-region:acme"));
        let region = |key: &str, id: Option<RegionId>| {
            format!(
                "[[regions]]\naccount = \"{ACCT}\"\nkey = \"{key}\"\nname = \"r\"\n{}\
                 countries = [\"DE\"]\n",
                id.map_or(String::new(), |id| format!("id = \"{id}\"\n"))
            )
        };
        // Before: acme's region (id derived from "acme") keyed "zeta"; the document keys
        // it back to "acme", then asks for "zeta" without an id: a new region.
        accepted_alike(
            &[region("zeta", Some(acme))],
            &[region("acme", Some(acme)), region("zeta", None)].concat(),
        );
    }

    #[test]
    fn a_range_a_prefix_left_earlier_in_the_document_is_free() {
        let prefix = |id: Option<&str>, cidr: &str| {
            format!(
                "[[prefixes]]\naccount = \"{ACCT}\"\n{}cidr = \"{cidr}\"\nasn = 64496\n",
                id.map_or(String::new(), |id| format!("id = \"{id}\"\n"))
            )
        };
        accepted_alike(
            &[prefix(Some(NEW_PREFIX), "198.18.0.0/24")],
            &[
                prefix(Some(NEW_PREFIX), "198.18.1.0/24"),
                prefix(None, "198.18.0.0/24"),
            ]
            .concat(),
        );
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]
        #[test]
        fn a_document_over_the_view_is_the_document_over_copies(
            before in prop::collection::vec(item(), 0..10),
            doc in prop::collection::vec(item(), 1..10),
        ) {
            let Some((view, model)) = both(&before, &doc.concat()) else {
                return Err(TestCaseError::reject("not a document"));
            };
            prop_assert_eq!(view, model);
        }
    }
}
