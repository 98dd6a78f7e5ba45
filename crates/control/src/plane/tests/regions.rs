//! DLS regions: list, filter, get, custom-region edits.

use super::*;

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
