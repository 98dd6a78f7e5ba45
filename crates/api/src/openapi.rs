//! The OpenAPI document of everything [`crate::router`] serves, generated from the code.
//!
//! - **Component schemas** are derived (`utoipa::ToSchema`) from the types the handlers
//!   serialize and the inputs the control plane reads: the control plane's views,
//!   its inputs, [`crate::envelope`]'s error item and `result_info`, the
//!   fault rule. Field names, optional fields and `additionalProperties: false` come from
//!   the same serde attributes that shape the JSON; patterns and lengths come from
//!   `inregion_model::schema`, written beside the parsers (and fuzzed against them).
//! - **Operations** are the table below: one row per route, with its permissions, its
//!   success status and result type, its parameters and the error statuses it can answer.
//!   `tests/api_openapi.rs` checks the rows against the router in both directions, and
//!   real responses against the schemas.
//!
//! The document is built once ([`document`]) and served at `GET /openapi.json`;
//! `crates/api/openapi.json` is the same text, committed for readers and tools
//! (`cargo run -- openapi > crates/api/openapi.json` rewrites it; a test fails when the
//! two differ).

use crate::envelope::{ErrorItem, ResultInfo};
use inregion_control::FaultSpec;
use inregion_control::{
    AddressMap, Binding, PrefixView, Region, Service, ServiceBinding, DEFAULT_PER_PAGE,
    MAX_PER_PAGE,
};
use inregion_control::{
    CreateAddressMap, CreateBinding, CreatePrefix, UpdateAddressMap, UpdateBinding,
};
use inregion_model::schema::{HEX32_PATTERN, PREFIX_ID_PATTERN};
use inregion_model::{AccountId, AddressMapId, BindingId, RegionId, RegionKey};
use serde_json::{json, Map, Value};
use std::collections::BTreeMap;
use std::sync::OnceLock;
use utoipa::openapi::schema::Schema;
use utoipa::openapi::RefOr;
use utoipa::ToSchema;

/// The document as JSON text (pretty-printed, with a trailing newline).
pub fn document() -> &'static str {
    static DOC: OnceLock<String> = OnceLock::new();
    DOC.get_or_init(|| {
        let mut text = serde_json::to_string_pretty(&document_value())
            .expect("a JSON value always serializes");
        text.push('\n');
        text
    })
}

/// The document as a JSON value.
pub fn document_value() -> Value {
    json!({
        "openapi": "3.1.0",
        "info": {
            "title": "inregion: local emulator of Cloudflare's DLS Regionalized IP Bindings and Addressing API",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "What `inregion serve` serves. Paths, envelopes and error codes follow \
                Cloudflare's v4 API (see docs/api-contract). Errors: 400 validation / malformed, \
                400 missing credentials (9106), 401 invalid token (9109), 403 no access (10000) or \
                missing entitlement (1115), 404 not found, 405 method not allowed (7001, Allow \
                header), 409 conflict (1108) or address-map gate (1301), 413 body too large \
                (1100). Unknown paths: 400 with 7003 then 7000. Generated from the server's \
                code (crates/api/src/openapi.rs)."
        },
        "servers": [{"url": "http://127.0.0.1:8787"}],
        "security": [{"apiToken": []}, {"apiEmail": [], "apiKey": []}],
        "tags": [{"name": "DLS"}, {"name": "Addressing"}, {"name": "Operations"}, {"name": ADMIN_TAG}],
        "paths": paths(),
        "components": {
            "schemas": component_schemas(),
            "parameters": parameters(),
            "responses": {"Failure": response("failure envelope", reference("Failure"))},
            "securitySchemes": {
                "apiToken": {"type": "http", "scheme": "bearer"},
                "apiEmail": {"type": "apiKey", "in": "header", "name": "X-Auth-Email"},
                "apiKey": {"type": "apiKey", "in": "header", "name": "X-Auth-Key"},
                "adminToken": {"type": "apiKey", "in": "header", "name": crate::admin::ADMIN_TOKEN_HEADER},
            },
        },
    })
}

const ADMIN_TAG: &str = "Admin (inregion only)";

fn reference(name: &str) -> Value {
    json!({"$ref": format!("#/components/schemas/{name}")})
}

fn to_value<T: serde::Serialize>(t: &T) -> Value {
    serde_json::to_value(t).expect("utoipa's schema types always serialize")
}

/// Adds `T` and every schema it refers to.
fn collect<T: ToSchema>(out: &mut BTreeMap<String, Value>) {
    let mut deps: Vec<(String, RefOr<Schema>)> = vec![(T::name().into_owned(), T::schema())];
    T::schemas(&mut deps);
    for (name, schema) in deps {
        out.insert(name, to_value(&schema));
    }
}

fn component_schemas() -> BTreeMap<String, Value> {
    let mut s = BTreeMap::new();
    collect::<ErrorItem>(&mut s);
    collect::<ResultInfo>(&mut s);
    collect::<Region>(&mut s);
    collect::<Binding>(&mut s);
    collect::<CreateBinding>(&mut s);
    collect::<UpdateBinding>(&mut s);
    collect::<PrefixView>(&mut s);
    collect::<CreatePrefix>(&mut s);
    collect::<Service>(&mut s);
    collect::<ServiceBinding>(&mut s);
    collect::<AddressMap>(&mut s);
    collect::<CreateAddressMap>(&mut s);
    collect::<UpdateAddressMap>(&mut s);
    collect::<FaultSpec>(&mut s);
    collect::<crate::faults::RuleView>(&mut s);
    collect::<crate::admin::ClockView>(&mut s);
    collect::<crate::admin::IdView>(&mut s);
    collect::<crate::admin::VersionView>(&mut s);
    collect::<crate::admin::ResetView>(&mut s);
    collect::<crate::admin::TestAccountInput>(&mut s);
    collect::<crate::admin::AccountView>(&mut s);
    s.insert(
        "Failure".into(),
        json!({
            "type": "object",
            "required": ["success", "errors", "messages", "result"],
            "properties": {
                "success": {"type": "boolean", "enum": [false]},
                "errors": {"type": "array", "minItems": 1, "items": reference("Message")},
                "messages": {"type": "array", "items": reference("Message")},
                "result": {"type": "null"},
            },
        }),
    );
    s
}

/// The success envelope around `result` (`null` for deletes); `paged` adds the
/// required `result_info`.
fn success(result: Value, paged: bool) -> Value {
    let mut props = Map::new();
    props.insert("success".into(), json!({"type": "boolean", "enum": [true]}));
    props.insert(
        "errors".into(),
        json!({"type": "array", "maxItems": 0, "items": reference("Message")}),
    );
    props.insert(
        "messages".into(),
        json!({"type": "array", "items": reference("Message")}),
    );
    props.insert("result".into(), result);
    let mut required = vec!["success", "errors", "messages", "result"];
    if paged {
        props.insert("result_info".into(), reference("CursorResultInfo"));
        required.push("result_info");
    }
    json!({"type": "object", "required": required, "properties": props})
}

fn response(description: &str, schema: Value) -> Value {
    json!({"description": description, "content": {"application/json": {"schema": schema}}})
}

fn list_of(name: &str) -> Value {
    json!({"type": "array", "items": reference(name)})
}

/// What an operation answers on success.
enum Answer {
    /// One object of this schema.
    One(&'static str),
    /// A list of this schema, in one page.
    List(&'static str),
    /// A cursor-paginated list (with `result_info`).
    Page(&'static str),
    /// `result: null`.
    Null,
}

/// One documented operation of the Cloudflare surface.
struct Op {
    method: &'static str,
    path: &'static str,
    id: &'static str,
    summary: &'static str,
    permissions: &'static str,
    tag: &'static str,
    status: u16,
    answer: Answer,
    /// Error statuses besides 400, 401, 403 and 500, which every operation can answer.
    errors: &'static [u16],
    params: &'static [&'static str],
    body: Option<&'static str>,
}

/// Operations whose body may be left out (it then counts as `{}`): an address map can be
/// created with nothing, and a PATCH without fields changes nothing.
const BODY_OPTIONAL: &[&str] = &["createAddressMap", "updateAddressMap"];

const A: &str = "/client/v4/accounts/{account_id}";
const DLS_READ: &str = "DLS: Read or DLS: Write; entitlement regional_services";
const DLS_BREAD: &str =
    "DLS: Read or DLS: Write; entitlements regional_services and regional_services_byoip";
const DLS_WRITE: &str =
    "DLS: Write and IP Prefixes: Write; entitlements regional_services and regional_services_byoip";
const PFX_READ: &str =
    "IP Prefixes: Read/Write, Magic Transit Read/Write or IP Prefixes: BGP On Demand Read/Write";
const PFX_SB_READ: &str = "IP Prefixes: Read or IP Prefixes: Write";
const PFX_WRITE: &str = "IP Prefixes: Write";
const AM_READ: &str = "Address Maps Read or Address Maps Write";
const AM_WRITE: &str = "Address Maps Write";

/// Every operation of the Cloudflare surface, in the router's order. Paths are relative
/// to `/client/v4/accounts/{account_id}`.
const OPS: &[Op] = &[
    Op {
        method: "get",
        path: "/dls/regions",
        id: "publicListRegions",
        summary: "List DLS regions",
        permissions: DLS_READ,
        tag: "DLS",
        status: 200,
        answer: Answer::Page("Region"),
        errors: &[],
        params: &["account_id", "type", "per_page", "cursor"],
        body: None,
    },
    Op {
        method: "get",
        path: "/dls/regions/{region_id}",
        id: "publicGetRegion",
        summary: "Get a region by UUID or managed region_key",
        permissions: DLS_READ,
        tag: "DLS",
        status: 200,
        answer: Answer::One("Region"),
        errors: &[404],
        params: &["account_id", "region_id"],
        body: None,
    },
    Op {
        method: "get",
        path: "/dls/regional_services/prefix_bindings",
        id: "publicListPrefixBindings",
        summary: "List prefix bindings",
        permissions: DLS_BREAD,
        tag: "DLS",
        status: 200,
        answer: Answer::Page("PrefixBinding"),
        errors: &[],
        params: &["account_id", "per_page", "cursor"],
        body: None,
    },
    Op {
        method: "post",
        path: "/dls/regional_services/prefix_bindings",
        id: "publicCreatePrefixBinding",
        summary: "Create a prefix binding",
        permissions: DLS_WRITE,
        tag: "DLS",
        status: 201,
        answer: Answer::One("PrefixBinding"),
        errors: &[409, 413],
        params: &["account_id"],
        body: Some("CreatePrefixBinding"),
    },
    Op {
        method: "get",
        path: "/dls/regional_services/prefix_bindings/{binding_id}",
        id: "publicGetPrefixBinding",
        summary: "Get a prefix binding",
        permissions: DLS_BREAD,
        tag: "DLS",
        status: 200,
        answer: Answer::One("PrefixBinding"),
        errors: &[404],
        params: &["account_id", "binding_id"],
        body: None,
    },
    Op {
        method: "patch",
        path: "/dls/regional_services/prefix_bindings/{binding_id}",
        id: "publicPatchPrefixBinding",
        summary: "Change a binding's region",
        permissions: DLS_WRITE,
        tag: "DLS",
        status: 200,
        answer: Answer::One("PrefixBinding"),
        errors: &[404, 413],
        params: &["account_id", "binding_id"],
        body: Some("UpdatePrefixBinding"),
    },
    Op {
        method: "delete",
        path: "/dls/regional_services/prefix_bindings/{binding_id}",
        id: "publicDeletePrefixBinding",
        summary: "Delete a prefix binding",
        permissions: DLS_WRITE,
        tag: "DLS",
        status: 200,
        answer: Answer::Null,
        errors: &[404],
        params: &["account_id", "binding_id"],
        body: None,
    },
    Op {
        method: "get",
        path: "/addressing/prefixes",
        id: "listPrefixes",
        summary: "List BYOIP prefixes (single page)",
        permissions: PFX_READ,
        tag: "Addressing",
        status: 200,
        answer: Answer::List("Prefix"),
        errors: &[],
        params: &["account_id"],
        body: None,
    },
    Op {
        method: "post",
        path: "/addressing/prefixes",
        id: "createPrefix",
        summary: "Create a BYOIP prefix (pending approval)",
        permissions: PFX_WRITE,
        tag: "Addressing",
        status: 201,
        answer: Answer::One("Prefix"),
        errors: &[409, 413],
        params: &["account_id"],
        body: Some("CreatePrefix"),
    },
    Op {
        method: "get",
        path: "/addressing/prefixes/{prefix_id}",
        id: "getPrefix",
        summary: "Get a BYOIP prefix",
        permissions: PFX_READ,
        tag: "Addressing",
        status: 200,
        answer: Answer::One("Prefix"),
        errors: &[404],
        params: &["account_id", "prefix_id"],
        body: None,
    },
    Op {
        method: "get",
        path: "/addressing/services",
        id: "listServices",
        summary: "List services",
        permissions: PFX_READ,
        tag: "Addressing",
        status: 200,
        answer: Answer::List("Service"),
        errors: &[],
        params: &["account_id"],
        body: None,
    },
    Op {
        method: "get",
        path: "/addressing/prefixes/{prefix_id}/bindings",
        id: "listServiceBindings",
        summary: "List service bindings of a prefix",
        permissions: PFX_SB_READ,
        tag: "Addressing",
        status: 200,
        answer: Answer::List("ServiceBinding"),
        errors: &[404],
        params: &["account_id", "prefix_id"],
        body: None,
    },
    Op {
        method: "get",
        path: "/addressing/prefixes/{prefix_id}/bindings/{binding_id}",
        id: "getServiceBinding",
        summary: "Get a service binding (a DLS binding's status, same id)",
        permissions: PFX_SB_READ,
        tag: "Addressing",
        status: 200,
        answer: Answer::One("ServiceBinding"),
        errors: &[404],
        params: &["account_id", "prefix_id", "binding_id"],
        body: None,
    },
    Op {
        method: "delete",
        path: "/addressing/prefixes/{prefix_id}/bindings/{binding_id}",
        id: "deleteServiceBinding",
        summary: "Delete a service binding (DLS-owned ones: 400/1116)",
        permissions: PFX_WRITE,
        tag: "Addressing",
        status: 200,
        answer: Answer::Null,
        errors: &[404],
        params: &["account_id", "prefix_id", "binding_id"],
        body: None,
    },
    Op {
        method: "get",
        path: "/addressing/address_maps",
        id: "listAddressMaps",
        summary: "List address maps (single page)",
        permissions: AM_READ,
        tag: "Addressing",
        status: 200,
        answer: Answer::List("AddressMap"),
        errors: &[],
        params: &["account_id"],
        body: None,
    },
    Op {
        method: "post",
        path: "/addressing/address_maps",
        id: "createAddressMap",
        summary: "Create an address map (gated by DLS binding activation, 409/1301)",
        permissions: AM_WRITE,
        tag: "Addressing",
        status: 200,
        answer: Answer::One("AddressMap"),
        errors: &[409, 413],
        params: &["account_id"],
        body: Some("CreateAddressMap"),
    },
    Op {
        method: "get",
        path: "/addressing/address_maps/{address_map_id}",
        id: "getAddressMap",
        summary: "Get an address map",
        permissions: AM_READ,
        tag: "Addressing",
        status: 200,
        answer: Answer::One("AddressMap"),
        errors: &[404],
        params: &["account_id", "address_map_id"],
        body: None,
    },
    Op {
        method: "patch",
        path: "/addressing/address_maps/{address_map_id}",
        id: "updateAddressMap",
        summary: "Update description, enabled or default_sni",
        permissions: AM_WRITE,
        tag: "Addressing",
        status: 200,
        answer: Answer::One("AddressMap"),
        errors: &[404, 413],
        params: &["account_id", "address_map_id"],
        body: Some("UpdateAddressMap"),
    },
    Op {
        method: "delete",
        path: "/addressing/address_maps/{address_map_id}",
        id: "deleteAddressMap",
        summary: "Delete a (disabled) address map",
        permissions: AM_WRITE,
        tag: "Addressing",
        status: 200,
        answer: Answer::Null,
        errors: &[404],
        params: &["account_id", "address_map_id"],
        body: None,
    },
    Op {
        method: "put",
        path: "/addressing/address_maps/{address_map_id}/ips/{ip_address}",
        id: "addAddressMapIp",
        summary: "Add an IP (gated by DLS binding activation, 409/1301)",
        permissions: AM_WRITE,
        tag: "Addressing",
        status: 200,
        answer: Answer::Null,
        errors: &[404, 409],
        params: &["account_id", "address_map_id", "ip_address"],
        body: None,
    },
    Op {
        method: "delete",
        path: "/addressing/address_maps/{address_map_id}/ips/{ip_address}",
        id: "removeAddressMapIp",
        summary: "Remove an IP",
        permissions: AM_WRITE,
        tag: "Addressing",
        status: 200,
        answer: Answer::Null,
        errors: &[404],
        params: &["account_id", "address_map_id", "ip_address"],
        body: None,
    },
    Op {
        method: "put",
        path: "/addressing/address_maps/{address_map_id}/zones/{zone_id}",
        id: "addAddressMapZone",
        summary: "Add a zone membership",
        permissions: AM_WRITE,
        tag: "Addressing",
        status: 200,
        answer: Answer::Null,
        errors: &[404],
        params: &["account_id", "address_map_id", "zone_id"],
        body: None,
    },
    Op {
        method: "delete",
        path: "/addressing/address_maps/{address_map_id}/zones/{zone_id}",
        id: "removeAddressMapZone",
        summary: "Remove a zone membership",
        permissions: AM_WRITE,
        tag: "Addressing",
        status: 200,
        answer: Answer::Null,
        errors: &[404],
        params: &["account_id", "address_map_id", "zone_id"],
        body: None,
    },
    Op {
        method: "put",
        path: "/addressing/address_maps/{address_map_id}/accounts/{member_account_id}",
        id: "addAddressMapAccount",
        summary: "Add an account membership",
        permissions: AM_WRITE,
        tag: "Addressing",
        status: 200,
        answer: Answer::Null,
        errors: &[404],
        params: &["account_id", "address_map_id", "member_account_id"],
        body: None,
    },
    Op {
        method: "delete",
        path: "/addressing/address_maps/{address_map_id}/accounts/{member_account_id}",
        id: "removeAddressMapAccount",
        summary: "Remove an account membership",
        permissions: AM_WRITE,
        tag: "Addressing",
        status: 200,
        answer: Answer::Null,
        errors: &[404],
        params: &["account_id", "address_map_id", "member_account_id"],
        body: None,
    },
];

fn param_refs(params: &[&str]) -> Value {
    params
        .iter()
        .map(|p| json!({"$ref": format!("#/components/parameters/{p}")}))
        .collect()
}

fn request_body(schema: Value, required: bool) -> Value {
    json!({"required": required, "content": {"application/json": {"schema": schema}}})
}

fn operation(op: &Op) -> Value {
    let result = match op.answer {
        Answer::One(name) => success(reference(name), false),
        Answer::List(name) => success(list_of(name), false),
        Answer::Page(name) => success(list_of(name), true),
        Answer::Null => success(json!({"type": "null"}), false),
    };
    let mut responses = Map::new();
    responses.insert(op.status.to_string(), response("success", result));
    let mut errors: Vec<u16> = op
        .errors
        .iter()
        .copied()
        .chain([400, 401, 403, 500])
        .collect();
    errors.sort_unstable();
    errors.dedup();
    for e in errors {
        responses.insert(
            e.to_string(),
            json!({"$ref": "#/components/responses/Failure"}),
        );
    }
    let mut o = json!({
        "operationId": op.id,
        "summary": op.summary,
        "tags": [op.tag],
        "description": format!("Permissions: {}", op.permissions),
        "parameters": param_refs(op.params),
        "responses": responses,
    });
    if let Some(body) = op.body {
        o["requestBody"] = request_body(reference(body), !BODY_OPTIONAL.contains(&op.id));
    }
    o
}

/// One operation of the admin surface (`/__inregion/...`): its `result` schema, and its
/// body (with whether an empty body is refused).
fn admin(
    id: &str,
    summary: &str,
    result: Value,
    body: Option<(Value, bool)>,
    params: &[&str],
) -> Value {
    let failure = json!({"$ref": "#/components/responses/Failure"});
    let mut o = json!({
        "operationId": id,
        "summary": summary,
        "tags": [ADMIN_TAG],
        "description": "Only when the server runs with --admin; needs the X-Inregion-Admin-Token \
            header. Cloudflare credentials are never accepted here.",
        "security": [{"adminToken": []}],
        "parameters": param_refs(params),
        "responses": {
            "200": response("success", success(result, false)),
            "400": failure, "401": failure, "403": failure, "404": failure, "409": failure, "500": failure,
        },
    });
    if let Some((schema, required)) = body {
        o["requestBody"] = request_body(schema, required);
    }
    o
}

fn paths() -> BTreeMap<String, Map<String, Value>> {
    let mut p: BTreeMap<String, Map<String, Value>> = BTreeMap::new();
    let mut add = |path: String, method: &str, op: Value| {
        p.entry(path).or_default().insert(method.to_owned(), op);
    };
    for op in OPS {
        add(format!("{A}{}", op.path), op.method, operation(op));
    }
    let text = |description: &str| json!({"description": description, "content": {"text/plain": {"schema": {"type": "string"}}}});
    add(
        "/metrics".into(),
        "get",
        json!({"operationId": "metrics", "summary": "Prometheus metrics (text format 0.0.4)",
        "tags": ["Operations"], "security": [], "responses": {"200": text("metrics")}}),
    );
    add(
        "/openapi.json".into(),
        "get",
        json!({"operationId": "openapi", "summary": "This document",
        "tags": ["Operations"], "security": [], "responses": {"200": response("OpenAPI 3.1 document", json!({"type": "object"}))}}),
    );
    add(
        "/healthz".into(),
        "get",
        json!({"operationId": "healthz", "summary": "Liveness",
        "description": "`ok`, or 503 once writes are halted: the disk failed a commit, whose \
outcome only a restart settles (every write answers 500 with `x-should-retry: false` until \
then; reads go on). A supervisor's liveness check on this restarts the server.",
        "tags": ["Operations"], "security": [],
        "responses": {"200": text("ok"), "503": text("halted: the reason")}}),
    );

    let ad = "/__inregion";
    let seed_lists: Map<String, Value> = [
        "accounts", "tokens", "users", "prefixes", "regions", "faults",
    ]
    .iter()
    .map(|k| {
        (
            k.to_string(),
            json!({"type": "array", "items": {"type": "object"}}),
        )
    })
    .collect();
    let admin_ops = [
        ("/clock", "get", admin("adminGetClock", "The server's current (possibly advanced) time",
            reference("ClockView"), None, &[])),
        ("/clock/advance", "post", admin("adminAdvanceClock",
            "Advance the server clock by `seconds` or by a `duration` such as \"5h\"; never past 9000-01-01T00:00:00Z (400 / 1100, the clock unchanged)",
            reference("ClockView"),
            Some((json!({"type": "object", "additionalProperties": false, "properties": {
                "seconds": {"type": ["number", "null"], "minimum": 0},
                "duration": {"type": ["string", "null"], "examples": ["5h"]}}}), true)), &[])),
        ("/bindings/{binding_id}/activate", "post", admin("adminActivateBinding",
            "Force a binding's propagation to complete now", reference("IdView"), None, &["binding_id"])),
        ("/prefixes/{prefix_id}/approve", "post", admin("adminApprovePrefix",
            "Approve a pending prefix", reference("IdView"), None, &["prefix_id"])),
        ("/seed", "post", admin("adminSeed",
            "Apply a seeding document (the --config TOML fields, as JSON) in one step; idempotent",
            reference("VersionView"), Some((json!({"type": "object", "properties": seed_lists}), false)), &[])),
        ("/reset", "post", admin("adminReset",
            "Return to the start state (the dev world and --config seeding) in one step: every \
             record, the clock offset and the fault rules", reference("ResetView"), None, &[])),
        ("/accounts", "post", admin("adminCreateAccount",
            "Create a fresh account (both entitlements), a token and an approved prefix: one per \
             test; the token is shown once",
            reference("AccountView"), Some((reference("TestAccountInput"), false)), &[])),
        ("/snapshot", "get", admin("adminSaveSnapshot",
            "Every record, the token keys and the clock offset, as result (a snapshot file; treat \
             it as a secret)",
            json!({"type": "object", "required": ["format", "format_version"]}), None, &[])),
        ("/snapshot", "post", admin("adminRestoreSnapshot",
            "Replace every record with a snapshot file's (the body), in one step; adopt its token \
             keys and clock offset",
            reference("VersionView"),
            Some((json!({"type": "object", "required": ["format", "format_version"], "properties": {
                "format": {"type": "string", "enum": ["inregion-snapshot"]},
                "format_version": {"type": "integer", "minimum": 1}}}), true)), &[])),
        ("/faults", "get", admin("adminListFaults",
            "The fault injection rules, with how often each was applied", list_of("RuleView"), None, &[])),
        ("/faults", "post", admin("adminAddFault",
            "Add a fault injection rule: an error status, a delay or a timeout for matching \
             requests, or a binding held in provisioning (stuck) or failing",
            reference("RuleView"), Some((reference("FaultSpec"), true)), &[])),
        ("/faults/{fault_id}", "delete", admin("adminRemoveFault",
            "Remove a fault injection rule", reference("IdView"), None, &["fault_id"])),
    ];
    for (path, method, op) in admin_ops {
        add(format!("{ad}{path}"), method, op);
    }
    p
}

fn path_param(name: &str, description: &str, schema: Value) -> Value {
    json!({"name": name, "in": "path", "required": true, "description": description, "schema": schema})
}

fn schema_of<T: ToSchema>() -> Value {
    to_value(&T::schema())
}

fn parameters() -> BTreeMap<&'static str, Value> {
    let hex32 = json!({"type": "string", "pattern": HEX32_PATTERN});
    BTreeMap::from([
        (
            "account_id",
            path_param(
                "account_id",
                "32 lower-case hex characters",
                schema_of::<AccountId>(),
            ),
        ),
        (
            "region_id",
            path_param(
                "region_id",
                "region UUID, or region_key of a managed region",
                json!({"anyOf": [schema_of::<RegionId>(), schema_of::<RegionKey>()]}),
            ),
        ),
        (
            "binding_id",
            path_param(
                "binding_id",
                "binding UUID (a service binding may also have the \
            prefix's 32-hex base binding id)",
                schema_of::<BindingId>(),
            ),
        ),
        (
            "prefix_id",
            path_param(
                "prefix_id",
                "BYOIP prefix id",
                json!({"type": "string", "pattern": PREFIX_ID_PATTERN}),
            ),
        ),
        (
            "address_map_id",
            path_param(
                "address_map_id",
                "address map id",
                schema_of::<AddressMapId>(),
            ),
        ),
        (
            "ip_address",
            path_param(
                "ip_address",
                "IPv4 or IPv6 address",
                to_value(&inregion_control::schema::ip_address()),
            ),
        ),
        (
            "zone_id",
            path_param("zone_id", "zone id (32 hex)", hex32.clone()),
        ),
        (
            "member_account_id",
            path_param("member_account_id", "account id (32 hex)", hex32),
        ),
        (
            "fault_id",
            path_param(
                "fault_id",
                "fault rule id",
                json!({"type": "string", "pattern": inregion_control::FAULT_ID_PATTERN}),
            ),
        ),
        (
            "type",
            json!({"name": "type", "in": "query", "required": false,
            "schema": {"type": "string", "enum": ["managed", "custom"]}}),
        ),
        (
            "per_page",
            json!({"name": "per_page", "in": "query", "required": false,
            "schema": {"type": "integer", "minimum": 1, "maximum": MAX_PER_PAGE, "default": DEFAULT_PER_PAGE}}),
        ),
        (
            "cursor",
            json!({"name": "cursor", "in": "query", "required": false, "schema": {"type": "string"},
            "description": "opaque; from result_info.cursor of the previous page (empty: the first page)"}),
        ),
    ])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_document_refers_only_to_what_it_defines() {
        // (Schemathesis, in tests/schemathesis.rs, validates it as OpenAPI 3.1.)
        let doc = document_value();
        let text = document();
        for (prefix, section) in [
            ("#/components/schemas/", "schemas"),
            ("#/components/parameters/", "parameters"),
            ("#/components/responses/", "responses"),
        ] {
            for part in text.split(prefix).skip(1) {
                let name = &part[..part.find('"').unwrap()];
                assert!(
                    doc["components"][section].get(name).is_some(),
                    "{prefix}{name} is referred to but not defined"
                );
            }
        }
    }

    #[test]
    fn views_are_closed_and_request_rules_are_stated() {
        let doc = document_value();
        let s = &doc["components"]["schemas"];
        for view in [
            "PrefixBinding",
            "Region",
            "Prefix",
            "AddressMap",
            "ServiceBinding",
        ] {
            assert!(s[view]["properties"].is_object(), "{view}: {}", s[view]);
        }
        assert_eq!(
            s["UpdatePrefixBinding"]["additionalProperties"],
            json!(false)
        );
        assert_eq!(s["UpdateAddressMap"]["additionalProperties"], json!(false));
        let keys: Vec<&str> = s["UpdateAddressMap"]["properties"]
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        let mut fields = UpdateAddressMap::FIELDS.to_vec();
        fields.sort_unstable();
        assert_eq!(keys, fields);
        assert_eq!(
            s["CreatePrefixBinding"]["required"],
            json!(["prefix_id", "cidr", "region_key"])
        );
        assert_eq!(s["CreatePrefix"]["properties"]["asn"]["minimum"], json!(1));
    }
}
