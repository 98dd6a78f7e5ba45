//! The committed OpenAPI document (crates/api/openapi.json) matches what is served:
//! every documented operation is routed, every route is documented, and the documented
//! object schemas have exactly the fields real responses carry.

mod api_support;

use api_support::*;
use serde_json::{json, Value};
use std::collections::BTreeSet;

fn doc() -> Value {
    serde_json::from_str(&std::fs::read_to_string(repo().join("crates/api/openapi.json")).unwrap())
        .unwrap()
}

/// Route templates registered in the router's source (`.route("...")` and
/// `.route(&format!("{A}..."))`), with methods. The admin routes are nested under
/// `/__inregion` (documented) and `/__sim` (the same operations under the contract's
/// name, served but not documented twice; `tests/api_http.rs` exercises it).
fn routes_in_source() -> BTreeSet<(String, String)> {
    let mut out = BTreeSet::new();
    for (file, nested_under) in [
        ("crates/api/src/app.rs", ""),
        ("crates/api/src/admin.rs", "/__inregion"),
    ] {
        let src = std::fs::read_to_string(repo().join(file)).unwrap();
        let src: String = src.split_whitespace().collect::<Vec<_>>().join(" ");
        for chunk in src.split(".route(").skip(1) {
            let Some(start) = chunk.find('"') else {
                continue;
            };
            let rest = &chunk[start + 1..];
            let end = rest.find('"').unwrap();
            let path = format!("{nested_under}{}", &rest[..end])
                .replace("{A}", "/client/v4/accounts/{account_id}")
                .replace("{{", "{")
                .replace("}}", "}");
            // The handler chain up to the next `.route(`: get(..).post(..) etc.
            let handlers = &rest[end..];
            // The last route of a chain ends where the function does.
            let handlers = &handlers[..handlers.find(['}', ';']).unwrap_or(handlers.len())];
            for m in ["get", "post", "put", "patch", "delete"] {
                let first =
                    handlers.contains(&format!(", {m}(")) || handlers.contains(&format!(",{m}("));
                let chained = handlers.contains(&format!(".{m}("));
                if first || chained {
                    out.insert((path.clone(), m.to_owned()));
                }
            }
        }
    }
    out
}

fn documented() -> BTreeSet<(String, String)> {
    let d = doc();
    let mut out = BTreeSet::new();
    for (path, item) in d["paths"].as_object().unwrap() {
        for m in item.as_object().unwrap().keys() {
            out.insert((path.clone(), m.clone()));
        }
    }
    out
}

#[test]
fn every_route_is_documented_and_every_documented_route_is_served() {
    let src = routes_in_source();
    let docd = documented();
    assert!(
        src.len() >= 30,
        "parsed only {} routes from the source: {src:?}",
        src.len()
    );
    assert_eq!(src, docd, "router source vs openapi.json");

    let s = Server::start();
    for (path, method) in &docd {
        let concrete = path
            .replace("{account_id}", ACCOUNT)
            .replace("{region_id}", "eu")
            .replace("{binding_id}", "00000000-0000-4000-8000-000000000000")
            .replace("{prefix_id}", DEMO_PREFIX)
            .replace("{address_map_id}", "ffffffffffffffffffffffffffffffff")
            .replace("{ip_address}", "203.0.113.1")
            .replace("{zone_id}", "0123456789abcdef0123456789abcdef")
            .replace("{member_account_id}", OTHER_ACCOUNT);
        let mut rb = s
            .raw(&method.to_uppercase(), &format!("{}{concrete}", s.base))
            .bearer_auth(DEV_TOKEN);
        if concrete.starts_with("/__inregion") {
            rb = s
                .raw(&method.to_uppercase(), &format!("{}{concrete}", s.base))
                .header("X-Inregion-Admin-Token", ADMIN_TOKEN);
        }
        if ["post", "patch"].contains(&method.as_str()) {
            rb = rb.json(&json!({}));
        }
        let r = s.send(rb);
        let codes = r.codes();
        assert!(
            !codes.contains(&7003) && !codes.contains(&7001) && r.status != 405,
            "{method} {path} is documented but not routed: {}",
            r.text
        );
        let op = &doc()["paths"][path][method];
        let documented_statuses: BTreeSet<String> = op["responses"]
            .as_object()
            .unwrap()
            .keys()
            .cloned()
            .collect();
        assert!(
            documented_statuses.contains(&r.status.to_string()),
            "{method} {path} answered {} which is not documented ({documented_statuses:?})",
            r.status
        );
    }
}

#[test]
fn documented_schemas_have_the_served_fields() {
    let d = doc();
    let s = Server::start();
    let b = s.create(DEMO_PREFIX, "203.0.113.0/24", "eu");
    let m = s
        .dev("POST", "/addressing/address_maps", Some(json!({"ips": ["203.0.114.1"], "memberships": [{"identifier": ACCOUNT, "kind": "account"}]})))
        .ok(200)
        .clone();
    let samples = [
        (
            "Region",
            s.dev("GET", "/dls/regions/eu", None).ok(200).clone(),
        ),
        ("PrefixBinding", b.clone()),
        (
            "Prefix",
            s.dev("GET", &format!("/addressing/prefixes/{DEMO_PREFIX}"), None)
                .ok(200)
                .clone(),
        ),
        (
            "Service",
            s.dev("GET", "/addressing/services", None).ok(200)[0].clone(),
        ),
        (
            "ServiceBinding",
            s.dev(
                "GET",
                &format!(
                    "/addressing/prefixes/{DEMO_PREFIX}/bindings/{}",
                    b["id"].as_str().unwrap()
                ),
                None,
            )
            .ok(200)
            .clone(),
        ),
        ("AddressMap", m.clone()),
        ("AddressMapIp", m["ips"][0].clone()),
        ("AddressMapMembership", m["memberships"][0].clone()),
        (
            "CursorResultInfo",
            s.dev("GET", "/dls/regions", None).body["result_info"].clone(),
        ),
    ];
    for (name, sample) in samples {
        let schema = &d["components"]["schemas"][name];
        let props: BTreeSet<&str> = schema["properties"]
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        let required: BTreeSet<&str> = schema["required"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_str().unwrap())
            .collect();
        let got: BTreeSet<&str> = sample
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        assert_eq!(got, props, "{name}: served fields vs documented properties");
        assert_eq!(
            got, required,
            "{name}: every served field is documented as required"
        );
        for (field, value) in sample.as_object().unwrap() {
            let p = &schema["properties"][field];
            let ty = p["type"].as_str();
            let ok = match (ty, value) {
                (_, Value::Null) => p["nullable"] == true,
                (Some("string"), Value::String(_)) => true,
                (Some("integer"), Value::Number(n)) => n.is_u64() || n.is_i64(),
                (Some("boolean"), Value::Bool(_)) => true,
                (Some("array"), Value::Array(_)) => true,
                (Some("object"), Value::Object(_)) => true,
                (None, _) => p.get("$ref").is_some(),
                _ => false,
            };
            assert!(ok, "{name}.{field}: {value} does not match {p}");
        }
    }
}
