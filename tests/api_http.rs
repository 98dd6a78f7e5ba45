//! `inregion serve` over real HTTP on loopback: every endpoint of api-contract.md §5 and
//! §6.1–6.4, every row of the error table that HTTP can reach, IPv4 and IPv6, cursor
//! pagination with concurrent changes, and the address-map gate.

mod api_support;

use api_support::*;
use serde_json::{json, Value};
use std::collections::BTreeSet;

const BINDINGS: &str = "/dls/regional_services/prefix_bindings";

fn keys(v: &Value) -> BTreeSet<String> {
    v.as_object()
        .unwrap_or_else(|| panic!("not an object: {v}"))
        .keys()
        .cloned()
        .collect()
}

fn set(names: &[&str]) -> BTreeSet<String> {
    names.iter().map(|s| s.to_string()).collect()
}

/// RFC 3339, UTC, `Z`, exactly six fractional digits.
#[track_caller]
fn assert_timestamp(v: &Value) {
    let s = v.as_str().unwrap_or_else(|| panic!("not a string: {v}"));
    let b = s.as_bytes();
    assert_eq!(b.len(), 27, "{s}");
    assert!(s.ends_with('Z') && b[10] == b'T' && b[19] == b'.', "{s}");
    assert!(s[20..26].bytes().all(|c| c.is_ascii_digit()), "{s}");
}

#[test]
fn regions_list_filter_get_and_paginate() {
    let s = Server::start();
    let r = s.dev("GET", "/dls/regions", None);
    let all = r.ok(200).as_array().unwrap().clone();
    let info = &r.body["result_info"];
    assert_eq!(keys(info), set(&["count", "per_page", "cursor"]));
    assert_eq!(info["per_page"], 25);
    assert_eq!(info["count"].as_u64().unwrap() as usize, all.len());
    for region in &all {
        assert_eq!(
            keys(region),
            set(&[
                "id",
                "name",
                "region_key",
                "created_on",
                "modified_on",
                "version",
                "version_created_on"
            ])
        );
        assert_timestamp(&region["created_on"]);
        assert_timestamp(&region["version_created_on"]);
    }
    let key_list: Vec<&str> = all
        .iter()
        .map(|r| r["region_key"].as_str().unwrap())
        .collect();
    let mut sorted = key_list.clone();
    sorted.sort();
    assert_eq!(key_list, sorted, "regions are ordered by region_key");
    for k in ["eu", "us", "ca", "test-dach"] {
        assert!(key_list.contains(&k), "{k} missing from {key_list:?}");
    }
    assert!(
        !key_list.contains(&"other-custom"),
        "another account's custom region leaked"
    );

    let custom = s.dev("GET", "/dls/regions?type=custom", None);
    let custom = custom.ok(200).as_array().unwrap().clone();
    assert_eq!(custom.len(), 1);
    assert_eq!(custom[0]["id"], CUSTOM_REGION_ID);
    let managed = s.dev("GET", "/dls/regions?type=managed", None);
    assert_eq!(managed.ok(200).as_array().unwrap().len(), all.len() - 1);
    s.dev("GET", "/dls/regions?type=Managed", None)
        .fails(400, 1112);
    s.dev("GET", "/dls/regions?type=", None).fails(400, 1112);

    // Pages of 5 cover the whole list exactly once; the last page has cursor "".
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let path = match &cursor {
            None => "/dls/regions?per_page=5".to_owned(),
            Some(c) => format!("/dls/regions?per_page=5&cursor={c}"),
        };
        let r = s.dev("GET", &path, None);
        let items = r.ok(200).as_array().unwrap().clone();
        assert_eq!(
            r.body["result_info"]["count"].as_u64().unwrap() as usize,
            items.len()
        );
        assert_eq!(r.body["result_info"]["per_page"], 5);
        seen.extend(
            items
                .iter()
                .map(|i| i["region_key"].as_str().unwrap().to_owned()),
        );
        let c = r.body["result_info"]["cursor"].as_str().unwrap().to_owned();
        if c.is_empty() {
            break;
        }
        assert!(items.len() == 5);
        cursor = Some(c);
    }
    assert_eq!(seen, key_list);

    // Get by managed key, by id; custom only by id.
    let eu = s.dev("GET", "/dls/regions/eu", None);
    let eu = eu.ok(200).clone();
    assert_eq!(eu["name"], "Europe");
    let by_id = s.dev(
        "GET",
        &format!("/dls/regions/{}", eu["id"].as_str().unwrap()),
        None,
    );
    assert_eq!(by_id.ok(200), &eu);
    let c = s.dev("GET", &format!("/dls/regions/{CUSTOM_REGION_ID}"), None);
    assert_eq!(c.ok(200)["region_key"], "test-dach");
    s.dev("GET", "/dls/regions/test-dach", None)
        .fails(404, 1110);
    s.dev("GET", "/dls/regions/nowhere", None).fails(404, 1110);
    s.dev("GET", "/dls/regions/EU", None).fails(404, 1110);
    s.dev(
        "GET",
        &format!("/dls/regions/{OTHER_CUSTOM_REGION_ID}"),
        None,
    )
    .fails(404, 1110);
}

#[test]
fn pagination_parameters_are_validated() {
    let s = Server::start();
    for path in ["/dls/regions", BINDINGS] {
        for bad in ["0", "101", "-1", "abc", "2.5", "", "1e2"] {
            s.dev("GET", &format!("{path}?per_page={bad}"), None)
                .fails(400, 1111);
        }
        for bad in ["!!!", "not-a-cursor", "Zm9v"] {
            s.dev("GET", &format!("{path}?cursor={bad}"), None)
                .fails(400, 1111);
        }
        for good in ["1", "100"] {
            let r = s.dev("GET", &format!("{path}?per_page={good}"), None);
            r.ok(200);
            assert_eq!(r.body["result_info"]["per_page"].to_string(), good);
        }
    }
    // The empty list: count 0, cursor "".
    let r = s.dev("GET", BINDINGS, None);
    assert_eq!(r.ok(200), &json!([]));
    assert_eq!(
        r.body["result_info"],
        json!({"count": 0, "per_page": 25, "cursor": ""})
    );
}

#[test]
fn binding_lifecycle_ipv4_and_ipv6() {
    let s = Server::start();
    // IPv4, the seed's example.
    let b = s.create(DEMO_PREFIX, "203.0.113.0/24", "eu");
    assert_eq!(keys(&b), set(&["id", "prefix_id", "cidr", "region_key"]));
    assert_eq!(b["prefix_id"], DEMO_PREFIX);
    assert_eq!(b["cidr"], "203.0.113.0/24");
    let id = b["id"].as_str().unwrap().to_owned();
    assert_eq!(id.len(), 36, "binding ids are UUIDs");
    // IPv6, echoed in RFC 5952 form.
    let b6 = s.create(V6_PREFIX, "2001:DB8:1000:00ab:0:0::/64", "us");
    assert_eq!(b6["cidr"], "2001:db8:1000:ab::/64");
    let id6 = b6["id"].as_str().unwrap().to_owned();
    // A /32 and a /128, and an IPv6 with embedded IPv4 text.
    s.create(DEMO_PREFIX, "203.0.113.7/32", "us");
    let h = s.create(V6_PREFIX, "2001:db8:1000::c000:201/128", "ca");
    assert_eq!(h["cidr"], "2001:db8:1000::c000:201/128");
    let e4 = s.create(V6_PREFIX, "2001:db8:1000::192.0.2.2/128", "ca");
    assert_eq!(e4["cidr"], "2001:db8:1000::c000:202/128");
    // Overlapping different CIDRs coexist.
    s.create(DEMO_PREFIX, "203.0.113.0/25", "ca");

    let got = s.dev("GET", &format!("{BINDINGS}/{id}"), None);
    assert_eq!(got.ok(200), &b);
    let list = s.dev("GET", BINDINGS, None);
    let items = list.ok(200).as_array().unwrap().clone();
    assert_eq!(items.len(), 6);
    assert_eq!(items[0], b, "bindings are listed in creation order");
    assert_eq!(items[1], b6);

    // PATCH: only the region changes.
    let p = s.dev(
        "PATCH",
        &format!("{BINDINGS}/{id}"),
        Some(json!({"region_key": "us"})),
    );
    let p = p.ok(200).clone();
    assert_eq!(p["region_key"], "us");
    assert_eq!(
        (&p["id"], &p["cidr"], &p["prefix_id"]),
        (&b["id"], &b["cidr"], &b["prefix_id"])
    );
    let p2 = s.dev(
        "PATCH",
        &format!("{BINDINGS}/{id}"),
        Some(json!({"region_key": "us"})),
    );
    assert_eq!(p2.ok(200), &p, "same region: no-op");
    s.dev(
        "PATCH",
        &format!("{BINDINGS}/{id6}"),
        Some(json!({"region_key": "test-dach"})),
    )
    .ok(200);

    // DELETE: result null, then 404 everywhere.
    let d = s.dev("DELETE", &format!("{BINDINGS}/{id}"), None);
    assert_eq!(d.ok(200), &Value::Null);
    s.dev("GET", &format!("{BINDINGS}/{id}"), None)
        .fails(404, 1109);
    s.dev("DELETE", &format!("{BINDINGS}/{id}"), None)
        .fails(404, 1109);
    s.dev(
        "PATCH",
        &format!("{BINDINGS}/{id}"),
        Some(json!({"region_key": "eu"})),
    )
    .fails(404, 1109);
    // The same CIDR can be bound again after the delete.
    s.create(DEMO_PREFIX, "203.0.113.0/24", "eu");
}

#[test]
fn create_validation_error_table() {
    let s = Server::start();
    let post = |body: Value| s.dev("POST", BINDINGS, Some(body));
    let b = |p: &str, c: &str, r: &str| json!({"prefix_id": p, "cidr": c, "region_key": r});
    // 1100: not JSON, not an object, wrong JSON types.
    let raw = |text: &'static str| {
        s.send(
            s.raw("POST", &s.url(ACCOUNT, BINDINGS))
                .bearer_auth(DEV_TOKEN)
                .header("content-type", "application/json")
                .body(text),
        )
    };
    raw("{not json").fails(400, 1100);
    raw("[]").fails(400, 1100);
    raw("\"x\"").fails(400, 1100);
    post(json!({"prefix_id": DEMO_PREFIX, "cidr": 5, "region_key": "eu"})).fails(400, 1100);
    post(json!({"prefix_id": [DEMO_PREFIX], "cidr": "203.0.113.0/24", "region_key": "eu"}))
        .fails(400, 1100);
    // 1101: missing or empty field.
    raw("").fails(400, 1101);
    post(json!({"cidr": "203.0.113.0/24", "region_key": "eu"})).fails(400, 1101);
    post(b(DEMO_PREFIX, "", "eu")).fails(400, 1101);
    post(b(DEMO_PREFIX, "203.0.113.0/24", "")).fails(400, 1101);
    // 1102: unparsable, host bits, no length, leading zeros, whitespace, zone id.
    for bad in [
        "203.0.113.5/24",
        "203.0.113.7",
        "203.000.113.0/24",
        " 203.0.113.0/24",
        "203.0.113.0/24 ",
        "203.0.113.0/33",
        "nonsense",
        "2001:db8:1000::1/64",
        "2001:db8:1000::%eth0/64",
    ] {
        post(b(DEMO_PREFIX, bad, "eu")).fails(400, 1102);
    }
    // 1103: outside the prefix, or the other family (IPv4-mapped IPv6 too).
    post(b(DEMO_PREFIX, "198.51.100.0/24", "eu")).fails(400, 1103);
    post(b(DEMO_PREFIX, "203.0.112.0/21", "eu")).fails(400, 1103);
    post(b(DEMO_PREFIX, "2001:db8:1000::/48", "eu")).fails(400, 1103);
    post(b(DEMO_PREFIX, "::ffff:203.0.113.0/120", "eu")).fails(400, 1103);
    post(b(V6_PREFIX, "203.0.113.0/24", "eu")).fails(400, 1103);
    // 1105: unknown prefix, or another account's.
    post(b(
        "ffffffffffffffffffffffffffffffff",
        "203.0.113.0/24",
        "eu",
    ))
    .fails(400, 1105);
    post(b(OTHER_PREFIX, "198.51.100.0/25", "eu")).fails(400, 1105);
    // 1106: unknown region, or another account's custom region.
    post(b(DEMO_PREFIX, "203.0.113.0/24", "atlantis")).fails(400, 1106);
    post(b(DEMO_PREFIX, "203.0.113.0/24", "other-custom")).fails(400, 1106);
    // 1107: region_key pattern.
    post(b(DEMO_PREFIX, "203.0.113.0/24", "EU")).fails(400, 1107);
    post(b(DEMO_PREFIX, "203.0.113.0/24", "e u")).fails(400, 1107);
    // 1114: prefix not approved.
    post(b(PENDING_PREFIX, "192.0.2.0/25", "eu")).fails(400, 1114);
    // 1108: the whole prefix, then an exact duplicate in any region.
    let r = post(b(DEMO_PREFIX, "203.0.112.0/22", "eu"));
    r.fails(409, 1108);
    assert_eq!(
        r.body["errors"][0]["message"],
        "conflict: binding already exists for CIDR 203.0.112.0/22"
    );
    s.create(DEMO_PREFIX, "203.0.113.0/24", "eu");
    post(b(DEMO_PREFIX, "203.0.113.0/24", "us")).fails(409, 1108);
    s.create(V6_PREFIX, "2001:db8:1000::/48", "eu");
    post(b(V6_PREFIX, "2001:0db8:1000:0000::/48", "eu")).fails(409, 1108);
    // Unknown fields in POST bodies are ignored.
    let r = post(
        json!({"prefix_id": DEMO_PREFIX, "cidr": "203.0.114.0/24", "region_key": "eu", "comment": 1}),
    );
    assert!(!keys(r.ok(201)).contains("comment"));
    // PATCH: 1113 (other keys), 1101, 1107, 1106, 1100.
    let id = r.body["result"]["id"].as_str().unwrap().to_owned();
    let patch = |body: Value| s.dev("PATCH", &format!("{BINDINGS}/{id}"), Some(body));
    patch(json!({"region_key": "us", "cidr": "203.0.114.0/25"})).fails(400, 1113);
    patch(json!({"prefix_id": DEMO_PREFIX})).fails(400, 1113);
    patch(json!({})).fails(400, 1101);
    patch(json!({"region_key": ""})).fails(400, 1101);
    patch(json!({"region_key": "US"})).fails(400, 1107);
    patch(json!({"region_key": "atlantis"})).fails(400, 1106);
    // A wrong JSON type names the field, in the same words on POST and PATCH, and a DLS
    // error item carries no `source` (dls_coded_message has none, §4.2).
    for r in [
        patch(json!({"region_key": 7})),
        post(json!({"prefix_id": DEMO_PREFIX, "cidr": "203.0.114.0/25", "region_key": 7})),
    ] {
        r.fails(400, 1100);
        let item = &r.body["errors"][0];
        assert_eq!(
            item["message"],
            "malformed request body: `region_key` must be a string, got a number"
        );
        assert!(item.get("source").is_none(), "{item}");
    }
    patch(json!(["us"])).fails(400, 1100);
    // Not-a-UUID binding ids are simply not found.
    s.dev("GET", &format!("{BINDINGS}/nope"), None)
        .fails(404, 1109);
}

#[test]
fn optional_per_prefix_cap() {
    let s = Server::start_with(Opts {
        args: vec!["--max-bindings-per-prefix", "2"],
        ..Opts::default()
    });
    s.create(DEMO_PREFIX, "203.0.113.0/25", "eu");
    s.create(DEMO_PREFIX, "203.0.113.128/25", "eu");
    s.dev(
        "POST",
        BINDINGS,
        Some(json!({"prefix_id": DEMO_PREFIX, "cidr": "203.0.114.0/24", "region_key": "eu"})),
    )
    .fails(400, 1117);
    // The cap is per prefix.
    s.create(V6_PREFIX, "2001:db8:1000::/48", "eu");
}

#[test]
fn authentication_error_table() {
    let s = Server::start();
    let url = s.url(ACCOUNT, "/dls/regions");
    let get =
        |f: &dyn Fn(reqwest::blocking::RequestBuilder) -> reqwest::blocking::RequestBuilder| {
            s.send(f(s.raw("GET", &url)))
        };
    // 9106: nothing.
    let r = get(&|r| r);
    r.fails(400, 9106);
    assert_eq!(
        r.body["errors"][0]["message"],
        "Missing X-Auth-Key, X-Auth-Email or Authorization headers"
    );
    // 6003 + 6111.
    for bad in [
        "Basic dXNlcjpwYXNz",
        "Bearer",
        "Bearer short",
        "Bearer bad!token!!!!!!!!!!!!!!!!",
    ] {
        let r = get(&|r| r.header("Authorization", bad));
        r.fails(400, 6003);
        assert_eq!(r.chain(), vec![6111], "{bad}");
    }
    // 6003 + 6102 / 6103.
    let r = get(&|r| {
        r.header("X-Auth-Email", "not-an-email")
            .header("X-Auth-Key", USER_KEY)
    });
    r.fails(400, 6003);
    assert_eq!(r.chain(), vec![6102]);
    let r = get(&|r| {
        r.header("X-Auth-Email", USER_EMAIL)
            .header("X-Auth-Key", "short")
    });
    r.fails(400, 6003);
    assert_eq!(r.chain(), vec![6103]);
    let r = get(&|r| r.header("X-Auth-Email", "x").header("X-Auth-Key", "y"));
    assert_eq!(r.chain(), vec![6102, 6103]);
    let r = get(&|r| r.header("X-Auth-Key", USER_KEY));
    r.fails(400, 6003);
    assert_eq!(r.chain(), vec![6102]);
    // 9109 / 401: unknown, expired, revoked.
    for t in [
        "unknown-token-000000000000000000000000",
        EXPIRED_TOKEN,
        REVOKED_TOKEN,
    ] {
        get(&|r| r.bearer_auth(t)).fails(401, 9109);
    }
    // 9109 / 403: restricted to other client IPs.
    let r = get(&|r| r.bearer_auth(OFFICE_TOKEN));
    r.fails(403, 9109);
    assert_eq!(
        r.body["errors"][0]["message"],
        "Cannot use the access token from location: 127.0.0.1"
    );
    // 9103: wrong email/key pair.
    get(&|r| {
        r.header("X-Auth-Email", USER_EMAIL)
            .header("X-Auth-Key", "0123456789abcdef0123456789abcdef00000")
    })
    .fails(403, 9103);
    // The legacy pair works (Administrator role: every permission), reads and writes.
    let r = get(&|r| {
        r.header("X-Auth-Email", USER_EMAIL)
            .header("X-Auth-Key", USER_KEY)
    });
    r.ok(200);
    let r = s.send(
        s.raw("POST", &s.url(ACCOUNT, BINDINGS))
            .header("X-Auth-Email", "OPS@example.com")
            .header("X-Auth-Key", USER_KEY)
            .json(&json!({"prefix_id": DEMO_PREFIX, "cidr": "203.0.113.0/24", "region_key": "eu"})),
    );
    r.ok(201);
    // Authorization wins when both schemes are sent.
    get(&|r| {
        r.bearer_auth(DEV_TOKEN)
            .header("X-Auth-Email", "x")
            .header("X-Auth-Key", "y")
    })
    .ok(200);
}

#[test]
fn permissions_entitlements_and_account_reach() {
    let s = Server::start();
    let body = json!({"prefix_id": DEMO_PREFIX, "cidr": "203.0.113.0/24", "region_key": "eu"});
    // Read token: reads yes, writes 403/10000.
    s.call("GET", READ_TOKEN, ACCOUNT, "/dls/regions", None)
        .ok(200);
    s.call("GET", READ_TOKEN, ACCOUNT, BINDINGS, None).ok(200);
    let r = s.call("POST", READ_TOKEN, ACCOUNT, BINDINGS, Some(body.clone()));
    r.fails(403, 10000);
    assert_eq!(r.body["errors"][0]["message"], "Authentication error");
    // DLS: Write alone reads but cannot write (needs IP Prefixes: Write too).
    s.call("GET", DLS_WRITE_TOKEN, ACCOUNT, BINDINGS, None)
        .ok(200);
    s.call(
        "POST",
        DLS_WRITE_TOKEN,
        ACCOUNT,
        BINDINGS,
        Some(body.clone()),
    )
    .fails(403, 10000);
    let id = s.create(DEMO_PREFIX, "203.0.113.0/24", "eu")["id"]
        .as_str()
        .unwrap()
        .to_owned();
    for (m, b) in [
        ("PATCH", Some(json!({"region_key": "us"}))),
        ("DELETE", None),
    ] {
        s.call(
            m,
            DLS_WRITE_TOKEN,
            ACCOUNT,
            &format!("{BINDINGS}/{id}"),
            b.clone(),
        )
        .fails(403, 10000);
        s.call(m, READ_TOKEN, ACCOUNT, &format!("{BINDINGS}/{id}"), b)
            .fails(403, 10000);
    }
    s.call(
        "GET",
        READ_TOKEN,
        ACCOUNT,
        &format!("{BINDINGS}/{id}"),
        None,
    )
    .ok(200);
    // A token without DLS permissions: 403 on every DLS route, Addressing too.
    for path in [
        "/dls/regions",
        "/dls/regions/eu",
        BINDINGS,
        "/addressing/prefixes",
        "/addressing/address_maps",
    ] {
        s.call("GET", DNS_TOKEN, ACCOUNT, path, None)
            .fails(403, 10000);
    }
    // Precedence: permission before validation, even for a malformed body.
    let r = s.send(
        s.raw("POST", &s.url(ACCOUNT, BINDINGS))
            .bearer_auth(READ_TOKEN)
            .body("{not json"),
    );
    r.fails(403, 10000);
    let r = s.send(
        s.raw("PATCH", &s.url(ACCOUNT, &format!("{BINDINGS}/{id}")))
            .bearer_auth(READ_TOKEN)
            .body("[]"),
    );
    r.fails(403, 10000);
    let r = s.send(
        s.raw("POST", &s.url(ACCOUNT, "/addressing/address_maps"))
            .bearer_auth(READ_TOKEN)
            .body("nope"),
    );
    r.fails(403, 10000);
    // Precedence: authentication before everything.
    s.send(s.raw("POST", &s.url(ACCOUNT, BINDINGS)).body("{not json"))
        .fails(400, 9106);
    // Another existing account, an unknown account and a malformed id all answer the
    // same 403/10000: nothing tells which accounts exist.
    for acct in [
        OTHER_ACCOUNT,
        "ffffffffffffffffffffffffffffffff",
        "not-an-account",
        "%7Baccount_id%7D",
    ] {
        let r = s.call("GET", DEV_TOKEN, acct, "/dls/regions", None);
        r.fails(403, 10000);
        let r2 = s.call("POST", DEV_TOKEN, acct, BINDINGS, Some(body.clone()));
        r2.fails(403, 10000);
        assert_eq!(r.body, r2.body);
    }
    // Entitlements: 1115, after permission, before validation.
    let r = s.call("GET", OTHERS_TOKEN, NO_BYOIP_ACCOUNT, BINDINGS, None);
    r.fails(403, 1115);
    assert_eq!(
        r.body["errors"][0]["message"],
        "account is not entitled to regional_services_byoip"
    );
    s.call("GET", OTHERS_TOKEN, NO_BYOIP_ACCOUNT, "/dls/regions", None)
        .ok(200);
    s.call(
        "POST",
        OTHERS_TOKEN,
        NO_BYOIP_ACCOUNT,
        BINDINGS,
        Some(json!({})),
    )
    .fails(403, 1115);
    let r = s.call(
        "GET",
        OTHERS_TOKEN,
        NO_ENTITLEMENT_ACCOUNT,
        "/dls/regions",
        None,
    );
    r.fails(403, 1115);
    assert_eq!(
        r.body["errors"][0]["message"],
        "account is not entitled to regional_services"
    );
    s.call(
        "GET",
        OTHERS_TOKEN,
        NO_ENTITLEMENT_ACCOUNT,
        "/dls/regions/eu",
        None,
    )
    .fails(403, 1115);
    // A token scoped to other accounts does not reach the dev account's bindings.
    s.call(
        "GET",
        OTHERS_TOKEN,
        ACCOUNT,
        &format!("{BINDINGS}/{id}"),
        None,
    )
    .fails(403, 10000);
}

#[test]
fn routing_errors() {
    let s = Server::start();
    for path in [
        "/client/v4/nothing",
        "/client/v4/accounts/023e105f4ecef8ad9ca31a8372d0c353/dls/nothing",
        "/client/v4/accounts/023e105f4ecef8ad9ca31a8372d0c353/dls/regions/eu/extra",
        "/client/v4/accounts/023e105f4ecef8ad9ca31a8372d0c353/dls/regions/",
        "/",
    ] {
        let r = s.send(
            s.raw("GET", &format!("{}{path}", s.base))
                .bearer_auth(DEV_TOKEN),
        );
        r.fails(400, 7003);
        assert_eq!(r.codes(), vec![7003, 7000], "{path}");
        assert_eq!(r.body["errors"][1]["message"], "No route for that URI");
        let shown = path.strip_prefix("/client/v4").unwrap_or(path);
        assert_eq!(
            r.body["errors"][0]["message"],
            format!("Could not route to {shown}, perhaps your object identifier is invalid?")
        );
    }
    // Unknown path without credentials: still a routing error.
    s.send(s.raw("GET", &format!("{}/client/v4/zzz", s.base)))
        .fails(400, 7003);
    // Wrong method: 405, Allow, 7001.
    for (m, path, allow) in [
        ("PUT", "/dls/regions", "GET,HEAD"),
        ("POST", "/dls/regions/eu", "GET,HEAD"),
        ("DELETE", BINDINGS, "GET,HEAD,POST"),
        (
            "POST",
            &format!("{BINDINGS}/x") as &str,
            "GET,HEAD,PATCH,DELETE",
        ),
        (
            "GET",
            "/addressing/address_maps/x/ips/1.2.3.4",
            "PUT,DELETE",
        ),
    ] {
        let r = s.dev(m, path, None);
        r.fails(405, 7001);
        let got: BTreeSet<&str> = r.headers["allow"].to_str().unwrap().split(',').collect();
        let want: BTreeSet<&str> = allow.split(',').collect();
        assert_eq!(got, want, "{m} {path}");
    }
}

#[test]
fn body_size_limit() {
    let s = Server::start_with(Opts {
        args: vec!["--max-body-bytes", "1024"],
        ..Opts::default()
    });
    let big = json!({"prefix_id": DEMO_PREFIX, "cidr": "203.0.113.0/24", "region_key": "eu", "pad": "x".repeat(2000)});
    s.dev("POST", BINDINGS, Some(big)).fails(413, 1100);
    s.create(DEMO_PREFIX, "203.0.113.0/24", "eu");
}

#[test]
fn pagination_with_changes_between_pages() {
    let s = Server::start();
    let mut ids = Vec::new();
    for i in 0..30 {
        let b = s.create(DEMO_PREFIX, &format!("203.0.113.{i}/32"), "eu");
        ids.push(b["id"].as_str().unwrap().to_owned());
    }
    let page = |cursor: Option<&str>| {
        let path = match cursor {
            None => format!("{BINDINGS}?per_page=10"),
            Some(c) => format!("{BINDINGS}?per_page=10&cursor={c}"),
        };
        let r = s.dev("GET", &path, None);
        let items: Vec<String> = r
            .ok(200)
            .as_array()
            .unwrap()
            .iter()
            .map(|b| b["id"].as_str().unwrap().to_owned())
            .collect();
        let info = r.body["result_info"].clone();
        assert_eq!(info["count"].as_u64().unwrap() as usize, items.len());
        (items, info["cursor"].as_str().unwrap().to_owned())
    };
    let (p1, c1) = page(None);
    assert_eq!(p1, ids[0..10]);
    assert!(!c1.is_empty());
    // Between pages: delete the last item of page 1 (the cursor's own item), an item of
    // page 2, and add 3 new bindings.
    s.dev("DELETE", &format!("{BINDINGS}/{}", ids[9]), None)
        .ok(200);
    s.dev("DELETE", &format!("{BINDINGS}/{}", ids[12]), None)
        .ok(200);
    let mut added = Vec::new();
    for i in 100..103 {
        added.push(
            s.create(DEMO_PREFIX, &format!("203.0.113.{i}/32"), "us")["id"]
                .as_str()
                .unwrap()
                .to_owned(),
        );
    }
    let (p2, c2) = page(Some(&c1));
    let mut want: Vec<String> = ids[10..]
        .iter()
        .filter(|i| **i != ids[12])
        .cloned()
        .collect();
    want.extend(added.iter().cloned());
    assert_eq!(p2, want[0..10]);
    let (p3, c3) = page(Some(&c2));
    assert_eq!(p3, want[10..20]);
    assert!(!c3.is_empty(), "page 3 is full, so a cursor follows");
    // Delete everything left after page 3: the next page is empty and last.
    for id in &want[20..] {
        s.dev("DELETE", &format!("{BINDINGS}/{id}"), None).ok(200);
    }
    let (p4, c4) = page(Some(&c3));
    assert!(p4.is_empty());
    assert_eq!(c4, "");
    // No item was seen twice, none skipped that existed throughout.
    let all: Vec<String> = p1.iter().chain(&p2).chain(&p3).cloned().collect();
    let uniq: BTreeSet<&String> = all.iter().collect();
    assert_eq!(uniq.len(), all.len());
}

#[test]
fn addressing_prefixes_services_and_service_bindings() {
    let s = Server::start();
    let r = s.dev("GET", "/addressing/prefixes", None);
    let prefixes = r.ok(200).as_array().unwrap().clone();
    assert!(
        r.body.get("result_info").is_none(),
        "Addressing lists are single-page"
    );
    let ids: BTreeSet<&str> = prefixes.iter().map(|p| p["id"].as_str().unwrap()).collect();
    assert_eq!(
        ids,
        [DEMO_PREFIX, V6_PREFIX, PENDING_PREFIX]
            .into_iter()
            .collect()
    );
    let demo = s.dev("GET", &format!("/addressing/prefixes/{DEMO_PREFIX}"), None);
    let demo = demo.ok(200).clone();
    assert_eq!(
        keys(&demo),
        set(&[
            "id",
            "account_id",
            "cidr",
            "asn",
            "description",
            "approved",
            "loa_document_id",
            "advertised",
            "advertised_modified_at",
            "on_demand_enabled",
            "on_demand_locked",
            "delegate_loa_creation",
            "irr_validation_state",
            "rpki_validation_state",
            "ownership_validation_state",
            "ownership_validation_token",
            "created_at",
            "modified_at"
        ])
    );
    assert_eq!(demo["cidr"], "203.0.112.0/22");
    assert_eq!(demo["account_id"], ACCOUNT);
    assert_eq!(demo["approved"], "V");
    for state in [
        "irr_validation_state",
        "rpki_validation_state",
        "ownership_validation_state",
    ] {
        assert_eq!(demo[state], "valid");
    }
    assert_eq!(demo["ownership_validation_token"], DEMO_PREFIX);
    assert_eq!(demo["delegate_loa_creation"], false);
    assert_timestamp(&demo["created_at"]);
    let pending = s.dev(
        "GET",
        &format!("/addressing/prefixes/{PENDING_PREFIX}"),
        None,
    );
    assert_eq!(pending.ok(200)["approved"], "P");
    s.dev("GET", &format!("/addressing/prefixes/{OTHER_PREFIX}"), None)
        .fails(404, 1105);
    s.dev(
        "GET",
        "/addressing/prefixes/ffffffffffffffffffffffffffffffff",
        None,
    )
    .fails(404, 1105);

    // Prefix create: pending; admin approval; then bindable.
    let r = s.dev(
        "POST",
        "/addressing/prefixes",
        Some(json!({"cidr": "2001:db8:2000::/48", "asn": 64496, "description": "new"})),
    );
    let created = r.ok(201).clone();
    assert_eq!(created["approved"], "P");
    assert_eq!(created["irr_validation_state"], "pending");
    let new_id = created["id"].as_str().unwrap().to_owned();
    assert_eq!(new_id.len(), 32);
    s.dev(
        "POST",
        "/addressing/prefixes",
        Some(json!({"cidr": "2001:db8:2000::/48", "asn": 64496})),
    )
    .fails(409, 1118);
    s.dev(
        "POST",
        "/addressing/prefixes",
        Some(json!({"cidr": "2001:db8:3000::/48"})),
    )
    .fails(400, 1101);
    s.dev(
        "POST",
        "/addressing/prefixes",
        Some(json!({"cidr": "2001:db8:3000::/48", "asn": "x"})),
    )
    .fails(400, 1100);
    s.dev(
        "POST",
        "/addressing/prefixes",
        Some(json!({"cidr": "2001:db8:3000::/48", "asn": -1})),
    )
    .fails(400, 1104);
    s.dev(
        "POST",
        "/addressing/prefixes",
        Some(json!({"cidr": "2001:db8:3000::1/48", "asn": 1})),
    )
    .fails(400, 1102);
    s.dev(
        "POST",
        BINDINGS,
        Some(json!({"prefix_id": new_id, "cidr": "2001:db8:2000::/64", "region_key": "eu"})),
    )
    .fails(400, 1114);
    s.admin("POST", &format!("/prefixes/{new_id}/approve"), None)
        .ok(200);
    s.create(&new_id, "2001:db8:2000::/64", "eu");

    // Services.
    let r = s.dev("GET", "/addressing/services", None);
    let names: BTreeSet<&str> = r
        .ok(200)
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        ["CDN", "Spectrum", "Magic Transit"].into_iter().collect()
    );

    // Service bindings: the base binding plus each DLS binding under the same id.
    let b = s.create(DEMO_PREFIX, "203.0.113.0/24", "eu");
    let id = b["id"].as_str().unwrap();
    let r = s.dev(
        "GET",
        &format!("/addressing/prefixes/{DEMO_PREFIX}/bindings"),
        None,
    );
    let sbs = r.ok(200).as_array().unwrap().clone();
    assert_eq!(sbs.len(), 2);
    let base = sbs
        .iter()
        .find(|x| x["cidr"] == "203.0.112.0/22")
        .expect("base binding");
    assert_eq!(base["provisioning"]["state"], "active");
    let dls = sbs
        .iter()
        .find(|x| x["id"] == id)
        .expect("DLS binding under its own id");
    assert_eq!(
        keys(dls),
        set(&["id", "cidr", "provisioning", "service_id", "service_name"])
    );
    assert_eq!(dls["cidr"], "203.0.113.0/24");
    assert_eq!(dls["provisioning"]["state"], "provisioning");
    assert_eq!(dls["service_name"], "CDN");
    let one = s.dev(
        "GET",
        &format!("/addressing/prefixes/{DEMO_PREFIX}/bindings/{id}"),
        None,
    );
    assert_eq!(one.ok(200), dls);
    s.dev(
        "GET",
        &format!("/addressing/prefixes/{V6_PREFIX}/bindings/{id}"),
        None,
    )
    .fails(404, 1109);
    s.dev(
        "GET",
        &format!("/addressing/prefixes/{OTHER_PREFIX}/bindings"),
        None,
    )
    .fails(404, 1105);
    // 1116: DLS-owned bindings and the base binding cannot be deleted through Addressing.
    s.dev(
        "DELETE",
        &format!("/addressing/prefixes/{DEMO_PREFIX}/bindings/{id}"),
        None,
    )
    .fails(400, 1116);
    let base_id = base["id"].as_str().unwrap();
    s.dev(
        "DELETE",
        &format!("/addressing/prefixes/{DEMO_PREFIX}/bindings/{base_id}"),
        None,
    )
    .fails(400, 1116);
    s.dev(
        "DELETE",
        &format!("/addressing/prefixes/{DEMO_PREFIX}/bindings/ffffffffffffffffffffffffffffffff"),
        None,
    )
    .fails(404, 1109);
    // Activation is visible through Addressing once forced.
    s.admin("POST", &format!("/bindings/{id}/activate"), None)
        .ok(200);
    let one = s.dev(
        "GET",
        &format!("/addressing/prefixes/{DEMO_PREFIX}/bindings/{id}"),
        None,
    );
    assert_eq!(one.ok(200)["provisioning"]["state"], "active");
    // Deleting through DLS removes it from Addressing at once.
    s.dev("DELETE", &format!("{BINDINGS}/{id}"), None).ok(200);
    s.dev(
        "GET",
        &format!("/addressing/prefixes/{DEMO_PREFIX}/bindings/{id}"),
        None,
    )
    .fails(404, 1109);
}

#[test]
fn address_maps_crud_and_the_gate() {
    let s = Server::start();
    const MAPS: &str = "/addressing/address_maps";
    // A map with an un-bound address: fine.
    let r = s.dev("POST", MAPS, Some(json!({"description": "m1", "ips": ["203.0.114.1"], "memberships": [{"identifier": ACCOUNT, "kind": "account"}]})));
    let m1 = r.ok(200).clone();
    assert_eq!(
        keys(&m1),
        set(&[
            "id",
            "description",
            "default_sni",
            "enabled",
            "can_delete",
            "can_modify_ips",
            "created_at",
            "modified_at",
            "ips",
            "memberships"
        ])
    );
    assert_eq!(m1["ips"][0]["ip"], "203.0.114.1");
    assert_timestamp(&m1["ips"][0]["created_at"]);
    assert_eq!(m1["memberships"][0]["kind"], "account");
    let m1id = m1["id"].as_str().unwrap().to_owned();
    let list = s.dev("GET", MAPS, None);
    assert_eq!(list.ok(200).as_array().unwrap().len(), 1);
    assert!(list.body.get("result_info").is_none());
    assert_eq!(
        s.dev("GET", &format!("{MAPS}/{m1id}"), None).ok(200)["description"],
        "m1"
    );

    // Bind 203.0.113.0/24 (IPv4) and 2001:db8:1000::/48 (IPv6): provisioning.
    let b4 = s.create(DEMO_PREFIX, "203.0.113.0/24", "eu");
    let b6 = s.create(V6_PREFIX, "2001:db8:1000::/48", "eu");
    let id4 = b4["id"].as_str().unwrap().to_owned();
    let id6 = b6["id"].as_str().unwrap().to_owned();
    // Gate on create: the whole request is refused, nothing is created, the pointer
    // names the element.
    let r = s.dev(
        "POST",
        MAPS,
        Some(json!({"ips": ["203.0.114.9", "203.0.113.10"]})),
    );
    r.fails(409, 1301);
    assert_eq!(r.body["errors"][0]["source"]["pointer"], "/ips/1");
    // The contract's wording; the element's index is in `source.pointer` only.
    let msg = r.body["errors"][0]["message"].as_str().unwrap();
    assert_eq!(
        msg,
        format!(
            "IP 203.0.113.10 is covered by prefix binding {id4} (203.0.113.0/24) which is not active yet"
        )
    );
    let r = s.dev("POST", MAPS, Some(json!({"ips": ["2001:db8:1000::5"]})));
    r.fails(409, 1301);
    assert_eq!(r.body["errors"][0]["source"]["pointer"], "/ips/0");
    assert_eq!(
        s.dev("GET", MAPS, None).ok(200).as_array().unwrap().len(),
        1,
        "atomic: nothing created"
    );
    // Gate on PUT ip.
    s.dev("PUT", &format!("{MAPS}/{m1id}/ips/203.0.113.10"), None)
        .fails(409, 1301);
    s.dev("PUT", &format!("{MAPS}/{m1id}/ips/2001:db8:1000::5"), None)
        .fails(409, 1301);
    // 1302: not in an owned prefix; 1305: not an IP; 1303: unknown map.
    s.dev("PUT", &format!("{MAPS}/{m1id}/ips/198.51.100.1"), None)
        .fails(400, 1302);
    s.dev("POST", MAPS, Some(json!({"ips": ["198.51.100.1"]})))
        .fails(400, 1302);
    s.dev("PUT", &format!("{MAPS}/{m1id}/ips/not-an-ip"), None)
        .fails(400, 1305);
    s.dev(
        "PUT",
        &format!("{MAPS}/ffffffffffffffffffffffffffffffff/ips/203.0.114.2"),
        None,
    )
    .fails(404, 1303);
    // Never gated: removing IPs, memberships, enabled.
    s.dev(
        "PATCH",
        &format!("{MAPS}/{m1id}"),
        Some(json!({"enabled": true, "description": "m1b", "default_sni": "example.com"})),
    )
    .ok(200);
    s.dev(
        "PUT",
        &format!("{MAPS}/{m1id}/zones/0123456789abcdef0123456789abcdef"),
        None,
    )
    .ok(200);
    s.dev(
        "PUT",
        &format!("{MAPS}/{m1id}/accounts/{OTHER_ACCOUNT}"),
        None,
    )
    .ok(200);
    let got = s
        .dev("GET", &format!("{MAPS}/{m1id}"), None)
        .ok(200)
        .clone();
    assert_eq!(got["enabled"], true);
    assert_eq!(got["default_sni"], "example.com");
    assert_eq!(got["memberships"].as_array().unwrap().len(), 3);
    s.dev(
        "DELETE",
        &format!("{MAPS}/{m1id}/zones/0123456789abcdef0123456789abcdef"),
        None,
    )
    .ok(200);
    s.dev(
        "DELETE",
        &format!("{MAPS}/{m1id}/accounts/{OTHER_ACCOUNT}"),
        None,
    )
    .ok(200);
    s.dev(
        "DELETE",
        &format!("{MAPS}/{m1id}/accounts/{OTHER_ACCOUNT}"),
        None,
    )
    .fails(404, 1303);
    s.dev(
        "PATCH",
        &format!("{MAPS}/{m1id}"),
        Some(json!({"enabled": "yes"})),
    )
    .fails(400, 1100);
    // PATCH changes only description, enabled and default_sni: `ips` is refused, not
    // silently ignored, and nothing changes.
    let before = s
        .dev("GET", &format!("{MAPS}/{m1id}"), None)
        .ok(200)
        .clone();
    let r = s.dev(
        "PATCH",
        &format!("{MAPS}/{m1id}"),
        Some(json!({"description": "renamed", "ips": ["203.0.113.99"]})),
    );
    r.fails(400, 1113);
    assert_eq!(r.body["errors"][0]["source"]["pointer"], "/ips");
    assert_eq!(
        s.dev("GET", &format!("{MAPS}/{m1id}"), None).ok(200),
        &before
    );
    // A membership without its identifier: 1101, pointing at the field; nothing created.
    let maps_before = s.dev("GET", MAPS, None).ok(200).as_array().unwrap().len();
    let r = s.dev(
        "POST",
        MAPS,
        Some(
            json!({"memberships": [{"identifier": ACCOUNT, "kind": "account"}, {"kind": "zone"}]}),
        ),
    );
    r.fails(400, 1101);
    assert_eq!(
        r.body["errors"][0]["source"]["pointer"],
        "/memberships/1/identifier"
    );
    assert_eq!(
        s.dev("GET", MAPS, None).ok(200).as_array().unwrap().len(),
        maps_before
    );

    // Activate: the IPv4 binding by force, the IPv6 one by moving the clock.
    s.admin("POST", &format!("/bindings/{id4}/activate"), None)
        .ok(200);
    s.dev("PUT", &format!("{MAPS}/{m1id}/ips/203.0.113.10"), None)
        .ok(200);
    s.dev("PUT", &format!("{MAPS}/{m1id}/ips/2001:db8:1000::5"), None)
        .fails(409, 1301);
    s.admin("POST", "/clock/advance", Some(json!({"duration": "31s"})))
        .ok(200);
    s.dev("PUT", &format!("{MAPS}/{m1id}/ips/2001:db8:1000::5"), None)
        .ok(200);
    let r = s.dev(
        "POST",
        MAPS,
        Some(json!({"ips": ["203.0.113.20", "2001:db8:1000::6"]})),
    );
    let m2id = r.ok(200)["id"].as_str().unwrap().to_owned();
    let got = s.dev("GET", &format!("{MAPS}/{m1id}"), None);
    let ips: Vec<&str> = got.ok(200)["ips"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["ip"].as_str().unwrap())
        .collect();
    assert!(
        ips.contains(&"203.0.113.10") && ips.contains(&"2001:db8:1000::5"),
        "{ips:?}"
    );

    // A PATCH to another region re-opens the gate (re-propagating); the same region does not.
    s.dev(
        "PATCH",
        &format!("{BINDINGS}/{id4}"),
        Some(json!({"region_key": "eu"})),
    )
    .ok(200);
    s.dev("PUT", &format!("{MAPS}/{m1id}/ips/203.0.113.11"), None)
        .ok(200);
    s.dev(
        "PATCH",
        &format!("{BINDINGS}/{id4}"),
        Some(json!({"region_key": "us"})),
    )
    .ok(200);
    s.dev("PUT", &format!("{MAPS}/{m1id}/ips/203.0.113.12"), None)
        .fails(409, 1301);
    let sb = s.dev(
        "GET",
        &format!("/addressing/prefixes/{DEMO_PREFIX}/bindings/{id4}"),
        None,
    );
    assert_eq!(sb.ok(200)["provisioning"]["state"], "provisioning");
    // A more specific binding that is provisioning gates its addresses only.
    s.admin("POST", &format!("/bindings/{id4}/activate"), None)
        .ok(200);
    let inner = s.create(DEMO_PREFIX, "203.0.113.128/25", "ca");
    s.dev("PUT", &format!("{MAPS}/{m1id}/ips/203.0.113.13"), None)
        .ok(200);
    s.dev("PUT", &format!("{MAPS}/{m1id}/ips/203.0.113.200"), None)
        .fails(409, 1301);
    // 1200 notice: binding addresses already on a map succeeds with a message.
    let r = s.dev(
        "POST",
        BINDINGS,
        Some(json!({"prefix_id": DEMO_PREFIX, "cidr": "203.0.113.0/28", "region_key": "eu"})),
    );
    r.ok(201);
    assert_eq!(r.body["messages"][0]["code"], 1200, "{}", r.text);
    // Deleting a binding whose addresses are on a map is allowed.
    s.dev(
        "DELETE",
        &format!("{BINDINGS}/{}", inner["id"].as_str().unwrap()),
        None,
    )
    .ok(200);

    // Removing IPs; deleting maps (must be disabled first).
    s.dev("DELETE", &format!("{MAPS}/{m1id}/ips/203.0.113.10"), None)
        .ok(200);
    s.dev("DELETE", &format!("{MAPS}/{m1id}/ips/203.0.113.10"), None)
        .fails(404, 1303);
    s.dev("DELETE", &format!("{MAPS}/{m1id}"), None)
        .fails(400, 1304);
    s.dev(
        "PATCH",
        &format!("{MAPS}/{m1id}"),
        Some(json!({"enabled": false})),
    )
    .ok(200);
    assert_eq!(
        s.dev("DELETE", &format!("{MAPS}/{m1id}"), None).ok(200),
        &Value::Null
    );
    s.dev("GET", &format!("{MAPS}/{m1id}"), None)
        .fails(404, 1303);
    s.dev("DELETE", &format!("{MAPS}/{m2id}"), None).ok(200);
    // Address-map permissions.
    s.call("POST", READ_TOKEN, ACCOUNT, MAPS, Some(json!({})))
        .fails(403, 10000);
    s.call("GET", READ_TOKEN, ACCOUNT, MAPS, None).ok(200);
    s.call("GET", DLS_WRITE_TOKEN, ACCOUNT, MAPS, None)
        .fails(403, 10000);
    let _ = id6;
}

#[test]
fn admin_surface_is_guarded() {
    let s = Server::start();
    let url = format!("{}/__inregion/clock", s.base);
    s.send(s.raw("GET", &url)).fails(401, 1902);
    s.send(s.raw("GET", &url).header("X-Inregion-Admin-Token", "wrong"))
        .fails(401, 1902);
    // Cloudflare credentials never reach it, not even next to the right admin token.
    s.send(s.raw("GET", &url).bearer_auth(DEV_TOKEN))
        .fails(401, 1903);
    s.send(
        s.raw("GET", &url)
            .bearer_auth(DEV_TOKEN)
            .header("X-Inregion-Admin-Token", ADMIN_TOKEN),
    )
    .fails(401, 1903);
    let c = s.admin("GET", "/clock", None);
    assert_timestamp(&c.ok(200)["now"]);
    assert_eq!(c.body["result"]["offset_seconds"], 0.0);
    let c = s.admin("POST", "/clock/advance", Some(json!({"seconds": 7200})));
    assert_eq!(c.ok(200)["offset_seconds"], 7200.0);
    s.admin("POST", "/clock/advance", Some(json!({})))
        .fails(400, 1101);
    s.admin("POST", "/clock/advance", Some(json!({"duration": "soon"})))
        .fails(400, 1100);
    s.admin(
        "POST",
        "/bindings/00000000-0000-4000-8000-000000000000/activate",
        None,
    )
    .fails(404, 1904);
    s.admin(
        "POST",
        "/prefixes/ffffffffffffffffffffffffffffffff/approve",
        None,
    )
    .fails(404, 1904);
    // Seeding over the admin surface (JSON form of the --config file).
    s.admin("POST", "/seed", Some(json!({"tokens": [{"name": "late", "secret": "late-token-0000000000000000000000", "accounts": [ACCOUNT], "permissions": ["DLS: Read"]}]})))
        .ok(200);
    s.call(
        "GET",
        "late-token-0000000000000000000000",
        ACCOUNT,
        "/dls/regions",
        None,
    )
    .ok(200);
    // The contract's name for the same surface, behind the same guard.
    let sim = format!("{}/__sim/clock/advance", s.base);
    s.send(s.raw("POST", &sim).json(&json!({"seconds": 60})))
        .fails(401, 1902);
    let r = s.send(
        s.raw("POST", &sim)
            .header("X-Inregion-Admin-Token", ADMIN_TOKEN)
            .json(&json!({"seconds": 60})),
    );
    assert_eq!(r.ok(200)["offset_seconds"], 7260.0);

    // Without --admin: refused with 1901 whatever the token.
    let off = Server::start_with(Opts {
        admin: false,
        ..Opts::default()
    });
    let r = off.send(
        off.raw("POST", &format!("{}/__inregion/clock/advance", off.base))
            .header("X-Inregion-Admin-Token", ADMIN_TOKEN)
            .json(&json!({"seconds": 1})),
    );
    r.fails(403, 1901);
}

#[test]
fn metrics_openapi_and_health() {
    let s = Server::start();
    s.create(DEMO_PREFIX, "203.0.113.0/24", "eu");
    s.dev("GET", "/dls/regions", None).ok(200);
    s.dev("GET", "/nope", None);
    let m = s.send(s.raw("GET", &format!("{}/metrics", s.base)));
    assert_eq!(m.status, 200);
    assert!(m.headers["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/plain; version=0.0.4"));
    let t = &m.text;
    assert!(t.contains("inregion_http_requests_total{route=\"/client/v4/accounts/{account_id}/dls/regions\",method=\"GET\",status=\"200\"} 1"), "{t}");
    assert!(t.contains("inregion_http_requests_total{route=\"/client/v4/accounts/{account_id}/dls/regional_services/prefix_bindings\",method=\"POST\",status=\"201\"} 1"), "{t}");
    assert!(
        t.contains(
            "inregion_http_requests_total{route=\"unmatched\",method=\"GET\",status=\"400\"} 1"
        ),
        "{t}"
    );
    assert!(t.contains("# TYPE inregion_http_request_duration_seconds histogram"));
    assert!(t.contains("inregion_http_request_duration_seconds_bucket{route=\"/client/v4/accounts/{account_id}/dls/regions\",le=\"+Inf\"} 1"));
    assert!(
        t.contains("inregion_bindings{state=\"provisioning\"} 1"),
        "{t}"
    );
    assert!(t.contains("inregion_bindings{state=\"active\"} 0"), "{t}");
    // The create above is one committed operation (the seed's own commits come first, so
    // the totals are at least one) and each store transaction is in the histogram.
    let value = |name: &str| -> f64 {
        t.lines()
            .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
            .unwrap_or_else(|| panic!("{name} missing: {t}"))
    };
    let batches = value("inregion_store_commit_batches_total");
    assert!(
        batches >= 1.0 && value("inregion_store_commits_total") >= batches,
        "{t}"
    );
    assert_eq!(
        value("inregion_store_commit_duration_seconds_count"),
        batches,
        "{t}"
    );
    assert_eq!(
        value("inregion_store_commit_duration_seconds_bucket{le=\"+Inf\"}"),
        batches,
        "{t}"
    );
    // One queue wait per committed operation.
    assert_eq!(
        value("inregion_store_commit_wait_seconds_count"),
        value("inregion_store_commits_total"),
        "{t}"
    );
    assert!(
        t.contains("# TYPE inregion_store_commit_wait_seconds histogram"),
        "{t}"
    );
    // Every line is a comment or `name{labels} value`.
    for line in t.lines().filter(|l| !l.starts_with('#')) {
        let (_, v) = line.rsplit_once(' ').unwrap();
        assert!(v.parse::<f64>().is_ok() || v == "+Inf", "{line}");
    }

    let h = s.send(s.raw("GET", &format!("{}/healthz", s.base)));
    assert_eq!((h.status, h.text.as_str()), (200, "ok\n"));

    let o = s.send(s.raw("GET", &format!("{}/openapi.json", s.base)));
    assert_eq!(o.status, 200);
    let committed: Value = serde_json::from_str(
        &std::fs::read_to_string(repo().join("crates/api/openapi.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(o.body, committed, "served document == committed file");
    assert_eq!(o.body["openapi"], "3.1.0");
}

#[test]
fn restart_keeps_state_and_dev_token() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("d");
    // First start with a random dev token.
    let s = Server::start_with(Opts {
        data: Some(&data),
        dev_token: None,
        ..Opts::default()
    });
    let token = s.banner_dev_token().expect("dev token in banner");
    assert!(
        s.banner.iter().any(|l| l.contains("generated")),
        "{:?}",
        s.banner
    );
    let r = s.call(
        "POST",
        &token,
        ACCOUNT,
        BINDINGS,
        Some(json!({"prefix_id": DEMO_PREFIX, "cidr": "203.0.113.0/24", "region_key": "eu"})),
    );
    let b = r.ok(201).clone();
    s.admin("POST", "/clock/advance", Some(json!({"duration": "1h"})))
        .ok(200);
    s.stop();
    // Second start without a token: the same token is reused, the binding is there,
    // and the clock offset survived (the binding is active).
    let s = Server::start_with(Opts {
        data: Some(&data),
        dev_token: None,
        ..Opts::default()
    });
    assert_eq!(s.banner_dev_token().as_deref(), Some(token.as_str()));
    assert!(
        s.banner.iter().any(|l| l.contains("reused")),
        "{:?}",
        s.banner
    );
    let got = s.call(
        "GET",
        &token,
        ACCOUNT,
        &format!("{BINDINGS}/{}", b["id"].as_str().unwrap()),
        None,
    );
    assert_eq!(got.ok(200), &b);
    let sb = s.call(
        "GET",
        &token,
        ACCOUNT,
        &format!(
            "/addressing/prefixes/{DEMO_PREFIX}/bindings/{}",
            b["id"].as_str().unwrap()
        ),
        None,
    );
    assert_eq!(sb.ok(200)["provisioning"]["state"], "active");
    s.stop();
    // Third start with an explicit token: it replaces the previous one.
    let s = Server::start_with(Opts {
        data: Some(&data),
        dev_token: Some(DEV_TOKEN),
        ..Opts::default()
    });
    s.dev("GET", BINDINGS, None).ok(200);
    s.call("GET", &token, ACCOUNT, BINDINGS, None)
        .fails(401, 9109);
    assert_eq!(
        s.dev("GET", BINDINGS, None).body["result"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
    s.stop();
}

#[test]
fn sigterm_loses_no_acknowledged_write() {
    no_acknowledged_write_lost(&[], Server::stop);
}

/// `--durability process` skips the per-write fsync: an acknowledged write must still
/// survive the server being killed outright (SIGKILL: no drain, no clean close).
#[test]
fn process_durability_survives_sigkill() {
    no_acknowledged_write_lost(&["--durability", "process"], drop);
}

/// Four writers create bindings as fast as they can; `stop` ends the server mid-stream;
/// a restart on the same data directory must hold every write that was acknowledged.
fn no_acknowledged_write_lost(args: &[&str], stop: fn(Server)) {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("d");
    let s = Server::start_with(Opts {
        data: Some(&data),
        args: args.to_vec(),
        ..Opts::default()
    });
    let url = s.url(ACCOUNT, BINDINGS);
    let pid = s.pid();
    // 4 writers create bindings as fast as they can; SIGTERM arrives mid-stream.
    let acked = std::sync::Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
    let mut writers = Vec::new();
    for w in 0..4u32 {
        let (url, acked) = (url.clone(), acked.clone());
        writers.push(std::thread::spawn(move || {
            let c = reqwest::blocking::Client::builder()
                .no_proxy()
                .build()
                .unwrap();
            for i in 0..500u32 {
                let cidr = format!("2001:db8:1000:{w:x}:{i:x}::/80");
                let r = c
                    .post(&url)
                    .bearer_auth(DEV_TOKEN)
                    .json(&json!({"prefix_id": V6_PREFIX, "cidr": cidr, "region_key": "eu"}))
                    .send();
                match r {
                    Ok(r) if r.status().as_u16() == 201 => {
                        let v: Value = r.json().unwrap();
                        acked
                            .lock()
                            .unwrap()
                            .push(v["result"]["id"].as_str().unwrap().to_owned());
                    }
                    _ => return,
                }
            }
        }));
    }
    std::thread::sleep(std::time::Duration::from_millis(400));
    let _ = pid;
    stop(s);
    for w in writers {
        w.join().unwrap();
    }
    let acked = acked.lock().unwrap().clone();
    assert!(
        !acked.is_empty(),
        "some writes were acknowledged before the stop"
    );
    let s = Server::start_with(Opts {
        data: Some(&data),
        ..Opts::default()
    });
    let mut found = BTreeSet::new();
    let mut cursor = String::new();
    loop {
        let path = if cursor.is_empty() {
            format!("{BINDINGS}?per_page=100")
        } else {
            format!("{BINDINGS}?per_page=100&cursor={cursor}")
        };
        let r = s.dev("GET", &path, None);
        for b in r.ok(200).as_array().unwrap() {
            found.insert(b["id"].as_str().unwrap().to_owned());
        }
        cursor = r.body["result_info"]["cursor"].as_str().unwrap().to_owned();
        if cursor.is_empty() {
            break;
        }
    }
    for id in &acked {
        assert!(found.contains(id), "acknowledged binding {id} lost");
    }
}

/// A second server on a data directory in use exits with a clear error instead of
/// writing the same database with a state of its own; once the first stops, it starts.
#[test]
fn a_second_server_on_one_data_directory_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("d");
    let first = Server::start_with(Opts {
        data: Some(&data),
        ..Opts::default()
    });
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_inregion"))
        .args(["serve", "--listen", "127.0.0.1:0", "--data"])
        .arg(&data)
        .env("RUST_LOG", "warn")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "the second server started");
    assert!(
        stderr.contains("in use by another process"),
        "unclear error: {stderr}"
    );
    assert_eq!(
        stderr.matches("in use by another process").count(),
        1,
        "the cause is printed twice: {stderr}"
    );
    first.dev("GET", BINDINGS, None).ok(200);
    drop(first);
    let again = Server::start_with(Opts {
        data: Some(&data),
        ..Opts::default()
    });
    again.dev("GET", BINDINGS, None).ok(200);
}

/// Secrets at rest: the data directory the server creates is 0700 and every file in it
/// 0600 (the database and its WAL hold token digests; the key file hashes them; the dev
/// token is a secret), and the database holds no token secret or plain SHA-256 of one.
#[cfg(unix)]
#[test]
fn the_data_directory_is_private_and_holds_no_plain_secret_digest() {
    use std::os::unix::fs::PermissionsExt;
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("nested").join("d");
    let s = Server::start_with(Opts {
        data: Some(&data),
        ..Opts::default()
    });
    s.admin("POST", "/clock/advance", Some(json!({"seconds": 5})))
        .ok(200);
    s.dev("GET", BINDINGS, None).ok(200);
    let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&data), 0o700);
    let mut files = 0;
    for e in std::fs::read_dir(&data).unwrap() {
        let p = e.unwrap().path();
        assert_eq!(mode(&p), 0o600, "{}", p.display());
        files += 1;
    }
    assert!(
        files >= 4,
        "database, key, dev token, clock offset: {files}"
    );
    drop(s);
    let db = std::fs::read(data.join("inregion.sqlite3")).unwrap();
    let text = String::from_utf8_lossy(&db);
    assert!(
        !text.contains(DEV_TOKEN),
        "the dev token's secret is in the database"
    );
    let plain = hex_sha256(DEV_TOKEN);
    assert!(
        !text.contains(&plain),
        "a plain SHA-256 of the dev token is in the database"
    );
}

fn hex_sha256(s: &str) -> String {
    use sha2::Digest;
    sha2::Sha256::digest(s.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// `cursor=` (what the last page hands out) is the first page, not a 400; a body with a
/// key twice is refused with 400 / 1100 naming the key, and changes nothing.
#[test]
fn empty_cursor_is_the_first_page_and_duplicate_keys_are_refused() {
    let s = Server::start();
    s.create(DEMO_PREFIX, "203.0.113.0/25", "eu");
    let first = s
        .dev("GET", &format!("{BINDINGS}?per_page=5"), None)
        .ok(200)
        .clone();
    let empty = s.dev("GET", &format!("{BINDINGS}?per_page=5&cursor="), None);
    assert_eq!(empty.ok(200), &first);
    let r = s.send(
        s.raw("POST", &s.url(ACCOUNT, BINDINGS))
            .bearer_auth(DEV_TOKEN)
            .header("Content-Type", "application/json")
            .body(format!(
                r#"{{"prefix_id": "{DEMO_PREFIX}", "cidr": "203.0.113.128/25", "region_key": "eu", "region_key": "us"}}"#
            )),
    );
    r.fails(400, 1100);
    assert!(r.text.contains("region_key"), "{}", r.text);
    assert_eq!(
        s.dev("GET", BINDINGS, None)
            .ok(200)
            .as_array()
            .unwrap()
            .len(),
        1
    );
}

/// A malformed PATCH body changes nothing, even where the default input (no field at all)
/// would validate: the HTTP layer checks the caller's access with a read
/// (`ControlPlane::authorize`), never with a write, before reporting the body. A caller
/// without write access still gets 403 first.
#[test]
fn a_malformed_patch_body_writes_nothing_and_access_comes_first() {
    let s = Server::start();
    let m = s
        .dev(
            "POST",
            "/addressing/address_maps",
            Some(json!({"description": "m"})),
        )
        .ok(200)
        .clone();
    let path = format!("/addressing/address_maps/{}", m["id"].as_str().unwrap());
    // Every record, as the admin snapshot lists them (its `created_at` aside).
    let records = |s: &Server| {
        let r = s.send(
            s.raw("GET", &format!("{}/__inregion/snapshot", s.base))
                .header("X-Inregion-Admin-Token", ADMIN_TOKEN),
        );
        let mut v = r.body["result"].clone();
        v.as_object_mut().unwrap().remove("created_at");
        v
    };
    let before = records(&s);
    for bad in ["{\"enabled\": tru", "[]", "{\"enabled\": \"yes\"}"] {
        let r = s.send(
            s.raw("PATCH", &s.url(ACCOUNT, &path))
                .bearer_auth(DEV_TOKEN)
                .body(bad),
        );
        r.fails(400, 1100);
        let r = s.send(
            s.raw("PATCH", &s.url(ACCOUNT, &path))
                .bearer_auth(READ_TOKEN)
                .body(bad),
        );
        r.fails(403, 10000);
    }
    assert_eq!(records(&s), before, "a refused PATCH changed a record");
    assert_eq!(s.dev("GET", &path, None).ok(200), &m, "the map changed");
    // The API source calls no control-plane write to find out about access.
    let src = std::fs::read_to_string(repo().join("crates/api/src/app.rs")).unwrap();
    assert!(!src.contains("probe"), "a probe is back in app.rs");
}
