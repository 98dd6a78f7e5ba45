#!/usr/bin/env python3
"""Generates crates/api/openapi.json (OpenAPI 3.0.3) for what `inregion serve` serves.

Kept as a generator rather than hand-written JSON so that the many repeated envelopes
and error responses stay consistent. Run: python3 crates/api/gen/openapi.py > crates/api/openapi.json
The api crate's tests check that every served route is documented and vice versa, and
the integration tests check real responses against these schemas' field names.
"""
import json

def ref(name):
    return {"$ref": f"#/components/schemas/{name}"}

def string(desc=None, **kw):
    s = {"type": "string", **kw}
    if desc:
        s["description"] = desc
    return s

TS = string("RFC 3339, UTC, microsecond precision", format="date-time", example="2026-01-13T23:59:45.276558Z")

VALIDATION = string("pending until the prefix is approved, then valid (Cloudflare also reports missing, invalid, mismatch_asn)",
                    enum=["pending", "valid"])

schemas = {
    "Message": {
        "type": "object",
        "required": ["code", "message"],
        "properties": {
            "code": {"type": "integer", "minimum": 1000},
            "message": {"type": "string"},
            "error_chain": {"type": "array", "items": ref("Message")},
            "source": {"type": "object", "properties": {"pointer": {"type": "string"}}},
        },
    },
    "CursorResultInfo": {
        "type": "object",
        "required": ["count", "per_page", "cursor"],
        "additionalProperties": False,
        "properties": {
            "count": {"type": "integer", "description": "items on this page"},
            "per_page": {"type": "integer", "minimum": 1, "maximum": 100},
            "cursor": {"type": "string", "description": "next page's cursor; empty on the last page"},
        },
    },
    "Failure": {
        "type": "object",
        "required": ["success", "errors", "messages", "result"],
        "properties": {
            "success": {"type": "boolean", "enum": [False]},
            "errors": {"type": "array", "minItems": 1, "items": ref("Message")},
            "messages": {"type": "array", "items": ref("Message")},
            "result": {"nullable": True, "enum": [None]},
        },
    },
    "Region": {
        "type": "object",
        "required": ["id", "name", "region_key", "created_on", "modified_on", "version", "version_created_on"],
        "additionalProperties": False,
        "properties": {
            "id": string(format="uuid"),
            "name": string(),
            "region_key": string(pattern="^[a-z0-9_-]+$", minLength=1, maxLength=128),
            "created_on": TS,
            "modified_on": TS,
            "version": {"type": "integer"},
            "version_created_on": TS,
        },
    },
    "PrefixBinding": {
        "type": "object",
        "required": ["id", "prefix_id", "cidr", "region_key"],
        "additionalProperties": False,
        "properties": {
            "id": string(format="uuid"),
            "prefix_id": string(maxLength=64),
            "cidr": string("canonical CIDR (IPv4 dotted quad, IPv6 RFC 5952)"),
            "region_key": string(pattern="^[a-z0-9_-]+$", minLength=1, maxLength=128),
        },
    },
    "CreatePrefixBinding": {
        "type": "object",
        "required": ["prefix_id", "cidr", "region_key"],
        "properties": {
            "prefix_id": string(maxLength=64),
            "cidr": string(),
            "region_key": string(pattern="^[a-z0-9_-]+$", minLength=1, maxLength=128),
        },
    },
    "UpdatePrefixBinding": {
        "type": "object",
        "required": ["region_key"],
        "additionalProperties": False,
        "properties": {"region_key": string(pattern="^[a-z0-9_-]+$", minLength=1, maxLength=128)},
    },
    "Prefix": {
        "type": "object",
        "required": ["id", "account_id", "cidr", "asn", "description", "approved", "loa_document_id",
                     "advertised", "advertised_modified_at", "on_demand_enabled", "on_demand_locked",
                     "delegate_loa_creation", "irr_validation_state", "rpki_validation_state",
                     "ownership_validation_state", "ownership_validation_token",
                     "created_at", "modified_at"],
        "additionalProperties": False,
        "properties": {
            "id": string(maxLength=64),
            "account_id": string(maxLength=32),
            "cidr": string(),
            "asn": {"type": "integer"},
            "description": string(),
            "approved": string("P = pending, V = approved", enum=["P", "V"]),
            "loa_document_id": {"type": "string", "nullable": True},
            "advertised": {"type": "boolean", "deprecated": True},
            "advertised_modified_at": {**TS, "nullable": True, "deprecated": True},
            "on_demand_enabled": {"type": "boolean"},
            "on_demand_locked": {"type": "boolean"},
            "delegate_loa_creation": {"type": "boolean", "description": "LOA documents are not modelled: always false"},
            "irr_validation_state": VALIDATION,
            "rpki_validation_state": VALIDATION,
            "ownership_validation_state": VALIDATION,
            "ownership_validation_token": string("The prefix id in UUID form"),
            "created_at": TS,
            "modified_at": TS,
        },
    },
    "CreatePrefix": {
        "type": "object",
        "required": ["cidr", "asn"],
        "properties": {"cidr": string(), "asn": {"type": "integer"}, "description": string()},
    },
    "Service": {
        "type": "object",
        "required": ["id", "name"],
        "additionalProperties": False,
        "properties": {"id": string(), "name": string()},
    },
    "ServiceBinding": {
        "type": "object",
        "required": ["id", "cidr", "provisioning", "service_id", "service_name"],
        "additionalProperties": False,
        "properties": {
            "id": string(),
            "cidr": string(),
            "provisioning": {
                "type": "object",
                "required": ["state"],
                "properties": {"state": string(enum=["provisioning", "active"])},
            },
            "service_id": string(),
            "service_name": string(),
        },
    },
    "AddressMapIp": {
        "type": "object",
        "required": ["ip", "created_at"],
        "properties": {"ip": string(), "created_at": TS},
    },
    "AddressMapMembership": {
        "type": "object",
        "required": ["identifier", "kind", "can_delete", "created_at"],
        "properties": {
            "identifier": string(),
            "kind": string(enum=["zone", "account"]),
            "can_delete": {"type": "boolean"},
            "created_at": TS,
        },
    },
    "AddressMap": {
        "type": "object",
        "required": ["id", "description", "default_sni", "enabled", "can_delete", "can_modify_ips",
                     "created_at", "modified_at", "ips", "memberships"],
        "additionalProperties": False,
        "properties": {
            "id": string(),
            "description": {"type": "string", "nullable": True},
            "default_sni": {"type": "string", "nullable": True},
            "enabled": {"type": "boolean"},
            "can_delete": {"type": "boolean"},
            "can_modify_ips": {"type": "boolean"},
            "created_at": TS,
            "modified_at": TS,
            "ips": {"type": "array", "items": ref("AddressMapIp")},
            "memberships": {"type": "array", "items": ref("AddressMapMembership")},
        },
    },
    "CreateAddressMap": {
        "type": "object",
        "properties": {
            "description": string(),
            "enabled": {"type": "boolean"},
            "default_sni": string(),
            "ips": {"type": "array", "items": string()},
            "memberships": {
                "type": "array",
                "items": {
                    "type": "object",
                    "required": ["identifier", "kind"],
                    "properties": {"identifier": string(), "kind": string(enum=["zone", "account"])},
                },
            },
        },
    },
    "UpdateAddressMap": {
        "type": "object",
        "properties": {
            "description": {"type": "string", "nullable": True},
            "enabled": {"type": "boolean"},
            "default_sni": {"type": "string", "nullable": True},
        },
    },
}

def success(result_schema, paged=False, nullable=False):
    props = {
        "success": {"type": "boolean", "enum": [True]},
        "errors": {"type": "array", "maxItems": 0, "items": ref("Message")},
        "messages": {"type": "array", "items": ref("Message")},
        "result": result_schema if not nullable else {"nullable": True, "enum": [None]},
    }
    req = ["success", "errors", "messages", "result"]
    if paged:
        props["result_info"] = ref("CursorResultInfo")
        req.append("result_info")
    return {"type": "object", "required": req, "properties": props}

def resp(desc, schema):
    return {"description": desc, "content": {"application/json": {"schema": schema}}}

FAIL = {"$ref": "#/components/responses/Failure"}

def op(op_id, summary, perms, ok_status, ok_schema, errors, params=(), body=None, tags=()):
    o = {
        "operationId": op_id,
        "summary": summary,
        "tags": list(tags),
        "description": "Permissions: " + perms,
        "parameters": [{"$ref": f"#/components/parameters/{p}"} for p in params],
        "responses": {str(ok_status): resp("success", ok_schema)},
    }
    if body:
        o["requestBody"] = {"required": True, "content": {"application/json": {"schema": ref(body)}}}
    for e in sorted(set(errors) | {400, 401, 403, 500}):
        o["responses"][str(e)] = FAIL
    return o

A = "/client/v4/accounts/{account_id}"
DLS_READ = "DLS: Read or DLS: Write; entitlement regional_services"
DLS_BREAD = "DLS: Read or DLS: Write; entitlements regional_services and regional_services_byoip"
DLS_WRITE = "DLS: Write and IP Prefixes: Write; entitlements regional_services and regional_services_byoip"
PFX_READ = "IP Prefixes: Read/Write, Magic Transit Read/Write or IP Prefixes: BGP On Demand Read/Write"
PFX_WRITE = "IP Prefixes: Write"
AM_READ = "Address Maps Read or Address Maps Write"
AM_WRITE = "Address Maps Write"

binding = ref("PrefixBinding")
paths = {
    A + "/dls/regions": {"get": op("publicListRegions", "List DLS regions", DLS_READ, 200,
        success({"type": "array", "items": ref("Region")}, paged=True), [], ["account_id", "type", "per_page", "cursor"], tags=["DLS"])},
    A + "/dls/regions/{region_id}": {"get": op("publicGetRegion", "Get a region by UUID or managed region_key", DLS_READ, 200,
        success(ref("Region")), [404], ["account_id", "region_id"], tags=["DLS"])},
    A + "/dls/regional_services/prefix_bindings": {
        "get": op("publicListPrefixBindings", "List prefix bindings", DLS_BREAD, 200,
            success({"type": "array", "items": binding}, paged=True), [], ["account_id", "per_page", "cursor"], tags=["DLS"]),
        "post": op("publicCreatePrefixBinding", "Create a prefix binding", DLS_WRITE, 201,
            success(binding), [409, 413], ["account_id"], body="CreatePrefixBinding", tags=["DLS"]),
    },
    A + "/dls/regional_services/prefix_bindings/{binding_id}": {
        "get": op("publicGetPrefixBinding", "Get a prefix binding", DLS_BREAD, 200, success(binding), [404],
            ["account_id", "binding_id"], tags=["DLS"]),
        "patch": op("publicPatchPrefixBinding", "Change a binding's region", DLS_WRITE, 200, success(binding), [404, 413],
            ["account_id", "binding_id"], body="UpdatePrefixBinding", tags=["DLS"]),
        "delete": op("publicDeletePrefixBinding", "Delete a prefix binding", DLS_WRITE, 200, success(None, nullable=True), [404],
            ["account_id", "binding_id"], tags=["DLS"]),
    },
    A + "/addressing/prefixes": {
        "get": op("listPrefixes", "List BYOIP prefixes (single page)", PFX_READ, 200,
            success({"type": "array", "items": ref("Prefix")}), [], ["account_id"], tags=["Addressing"]),
        "post": op("createPrefix", "Create a BYOIP prefix (pending approval)", PFX_WRITE, 201, success(ref("Prefix")), [409, 413],
            ["account_id"], body="CreatePrefix", tags=["Addressing"]),
    },
    A + "/addressing/prefixes/{prefix_id}": {"get": op("getPrefix", "Get a BYOIP prefix", PFX_READ, 200, success(ref("Prefix")), [404],
        ["account_id", "prefix_id"], tags=["Addressing"])},
    A + "/addressing/services": {"get": op("listServices", "List services", PFX_READ, 200,
        success({"type": "array", "items": ref("Service")}), [], ["account_id"], tags=["Addressing"])},
    A + "/addressing/prefixes/{prefix_id}/bindings": {"get": op("listServiceBindings", "List service bindings of a prefix",
        "IP Prefixes: Read or IP Prefixes: Write", 200, success({"type": "array", "items": ref("ServiceBinding")}), [404],
        ["account_id", "prefix_id"], tags=["Addressing"])},
    A + "/addressing/prefixes/{prefix_id}/bindings/{binding_id}": {
        "get": op("getServiceBinding", "Get a service binding (a DLS binding's status, same id)",
            "IP Prefixes: Read or IP Prefixes: Write", 200, success(ref("ServiceBinding")), [404],
            ["account_id", "prefix_id", "binding_id"], tags=["Addressing"]),
        "delete": op("deleteServiceBinding", "Delete a service binding (DLS-owned ones: 400/1116)", PFX_WRITE, 200,
            success(None, nullable=True), [404], ["account_id", "prefix_id", "binding_id"], tags=["Addressing"]),
    },
    A + "/addressing/address_maps": {
        "get": op("listAddressMaps", "List address maps (single page)", AM_READ, 200,
            success({"type": "array", "items": ref("AddressMap")}), [], ["account_id"], tags=["Addressing"]),
        "post": op("createAddressMap", "Create an address map (gated by DLS binding activation, 409/1301)", AM_WRITE, 200,
            success(ref("AddressMap")), [409, 413], ["account_id"], body="CreateAddressMap", tags=["Addressing"]),
    },
    A + "/addressing/address_maps/{address_map_id}": {
        "get": op("getAddressMap", "Get an address map", AM_READ, 200, success(ref("AddressMap")), [404],
            ["account_id", "address_map_id"], tags=["Addressing"]),
        "patch": op("updateAddressMap", "Update description, enabled or default_sni", AM_WRITE, 200, success(ref("AddressMap")),
            [404, 413], ["account_id", "address_map_id"], body="UpdateAddressMap", tags=["Addressing"]),
        "delete": op("deleteAddressMap", "Delete a (disabled) address map", AM_WRITE, 200, success(None, nullable=True), [404],
            ["account_id", "address_map_id"], tags=["Addressing"]),
    },
    A + "/addressing/address_maps/{address_map_id}/ips/{ip_address}": {
        "put": op("addAddressMapIp", "Add an IP (gated by DLS binding activation, 409/1301)", AM_WRITE, 200,
            success(None, nullable=True), [404, 409], ["account_id", "address_map_id", "ip_address"], tags=["Addressing"]),
        "delete": op("removeAddressMapIp", "Remove an IP", AM_WRITE, 200, success(None, nullable=True), [404],
            ["account_id", "address_map_id", "ip_address"], tags=["Addressing"]),
    },
    A + "/addressing/address_maps/{address_map_id}/zones/{zone_id}": {
        "put": op("addAddressMapZone", "Add a zone membership", AM_WRITE, 200, success(None, nullable=True), [404],
            ["account_id", "address_map_id", "zone_id"], tags=["Addressing"]),
        "delete": op("removeAddressMapZone", "Remove a zone membership", AM_WRITE, 200, success(None, nullable=True), [404],
            ["account_id", "address_map_id", "zone_id"], tags=["Addressing"]),
    },
    A + "/addressing/address_maps/{address_map_id}/accounts/{member_account_id}": {
        "put": op("addAddressMapAccount", "Add an account membership", AM_WRITE, 200, success(None, nullable=True), [404],
            ["account_id", "address_map_id", "member_account_id"], tags=["Addressing"]),
        "delete": op("removeAddressMapAccount", "Remove an account membership", AM_WRITE, 200, success(None, nullable=True), [404],
            ["account_id", "address_map_id", "member_account_id"], tags=["Addressing"]),
    },
    "/metrics": {"get": {"operationId": "metrics", "summary": "Prometheus metrics (text format 0.0.4)", "tags": ["Operations"],
        "security": [], "responses": {"200": {"description": "metrics", "content": {"text/plain": {"schema": {"type": "string"}}}}}}},
    "/openapi.json": {"get": {"operationId": "openapi", "summary": "This document", "tags": ["Operations"], "security": [],
        "responses": {"200": {"description": "OpenAPI 3 document", "content": {"application/json": {"schema": {"type": "object"}}}}}}},
    "/healthz": {"get": {"operationId": "healthz", "summary": "Liveness", "tags": ["Operations"], "security": [],
        "responses": {"200": {"description": "ok", "content": {"text/plain": {"schema": {"type": "string"}}}}}}},
}

def admin(op_id, summary, body=None, params=()):
    o = {"operationId": op_id, "summary": summary, "tags": ["Admin (inregion only)"],
         "description": "Only when the server runs with --admin; needs the X-Inregion-Admin-Token header. Cloudflare credentials are never accepted here.",
         "security": [{"adminToken": []}],
         "parameters": [{"$ref": f"#/components/parameters/{p}"} for p in params],
         "responses": {"200": resp("success", success({"type": "object"})), "400": FAIL, "401": FAIL, "403": FAIL, "404": FAIL, "409": FAIL, "500": FAIL}}
    if body:
        o["requestBody"] = {"required": True, "content": {"application/json": {"schema": body}}}
    return o

paths["/__inregion/clock"] = {"get": admin("adminGetClock", "The server's current (possibly advanced) time")}
paths["/__inregion/clock/advance"] = {"post": admin("adminAdvanceClock", "Advance the server clock",
    body={"type": "object", "properties": {"seconds": {"type": "number"}, "duration": {"type": "string", "example": "5h"}}})}
paths["/__inregion/bindings/{binding_id}/activate"] = {"post": admin("adminActivateBinding",
    "Force a binding's propagation to complete now", params=["binding_id"])}
paths["/__inregion/prefixes/{prefix_id}/approve"] = {"post": admin("adminApprovePrefix", "Approve a pending prefix", params=["prefix_id"])}
paths["/__inregion/seed"] = {"post": admin("adminSeed", "Apply a seeding document (the --config TOML fields, as JSON); idempotent",
    body={"type": "object", "properties": {k: {"type": "array", "items": {"type": "object"}}
                                           for k in ["accounts", "tokens", "users", "prefixes", "regions", "faults"]}})}

paths["/__inregion/reset"] = {"post": admin("adminReset",
    "Return to the start state (the dev world and --config seeding) in one step: every record, the clock offset and the fault rules")}
paths["/__inregion/accounts"] = {"post": admin("adminCreateAccount",
    "Create a fresh account (both entitlements), a token and an approved prefix: one per test; the token is shown once",
    body={"type": "object", "additionalProperties": False, "properties": {
        "name": {"type": "string"},
        "permissions": {"type": "array", "items": {"type": "string"}, "description": "permission group names (default: all)"},
        "cidr": {"type": "string", "description": "the prefix (default: allocated from a documentation range)"},
        "family": {"type": "string", "enum": ["ipv4", "ipv6"], "description": "without cidr: the family to allocate (default ipv6)"}}})}
paths["/__inregion/snapshot"] = {
    "get": admin("adminSaveSnapshot", "Every record, the token keys and the clock offset, as result (a snapshot file; treat it as a secret)"),
    "post": admin("adminRestoreSnapshot", "Replace every record with a snapshot file's (the body), in one step; adopt its token keys and clock offset",
        body={"type": "object", "required": ["format", "format_version"], "properties": {
            "format": {"type": "string", "enum": ["inregion-snapshot"]}, "format_version": {"type": "integer", "minimum": 1}}}),
}
FAULT = {"type": "object", "additionalProperties": False, "properties": {
    "id": {"type": "string", "pattern": "^[A-Za-z0-9_-]{1,64}$"},
    "method": {"type": "string"}, "path": {"type": "string", "description": "* matches one segment (as the last segment: the rest of the path); a trailing /** any rest"},
    "account": {"type": "string"}, "status": {"type": "integer", "minimum": 400, "maximum": 599},
    "code": {"type": "integer"}, "message": {"type": "string"}, "retry_after": {"type": "integer", "minimum": 0},
    "delay_ms": {"type": "integer", "minimum": 0}, "timeout_ms": {"type": "integer", "minimum": 0},
    "binding": {"type": "string", "description": "a binding id or exact CIDR, with effect"},
    "effect": {"type": "string", "enum": ["stuck", "fail"]},
    "probability": {"type": "number", "minimum": 0, "maximum": 1}, "count": {"type": "integer", "minimum": 1}}}
paths["/__inregion/faults"] = {
    "get": admin("adminListFaults", "The fault injection rules, with how often each was applied"),
    "post": admin("adminAddFault", "Add a fault injection rule: an error status, a delay or a timeout for matching requests, or a binding held in provisioning (stuck) or failing", body=FAULT),
}
paths["/__inregion/faults/{fault_id}"] = {"delete": admin("adminRemoveFault", "Remove a fault injection rule", params=["fault_id"])}

def path_param(name, desc, **kw):
    return {"name": name, "in": "path", "required": True, "description": desc, "schema": {"type": "string", **kw}}

parameters = {
    "account_id": path_param("account_id", "32 lower-case hex characters", maxLength=32),
    "region_id": path_param("region_id", "region UUID, or region_key of a managed region", maxLength=255),
    "binding_id": path_param("binding_id", "binding UUID"),
    "prefix_id": path_param("prefix_id", "BYOIP prefix id"),
    "address_map_id": path_param("address_map_id", "address map id"),
    "ip_address": path_param("ip_address", "IPv4 or IPv6 address"),
    "zone_id": path_param("zone_id", "zone id (32 hex)"),
    "member_account_id": path_param("member_account_id", "account id (32 hex)"),
    "fault_id": path_param("fault_id", "fault rule id"),
    "type": {"name": "type", "in": "query", "required": False, "schema": {"type": "string", "enum": ["managed", "custom"]}},
    "per_page": {"name": "per_page", "in": "query", "required": False,
                 "schema": {"type": "integer", "minimum": 1, "maximum": 100, "default": 25}},
    "cursor": {"name": "cursor", "in": "query", "required": False, "schema": {"type": "string"},
               "description": "opaque; from result_info.cursor of the previous page"},
}

doc = {
    "openapi": "3.0.3",
    "info": {
        "title": "inregion: local emulator of Cloudflare's DLS Regionalized IP Bindings and Addressing API",
        "version": "0.1.0",
        "description": "What `inregion serve` serves. Paths, envelopes and error codes follow "
                       "Cloudflare's v4 API (see docs/api-contract). Errors: 400 validation / malformed, "
                       "401 invalid token (9109), 403 no access (10000) or missing entitlement (1115), "
                       "404 not found, 405 method not allowed (7001, Allow header), 409 conflict (1108) or "
                       "address-map gate (1301), 413 body too large (1100). Unknown paths: 400 with 7003 then 7000.",
    },
    "servers": [{"url": "http://127.0.0.1:8787"}],
    "security": [{"apiToken": []}, {"apiEmail": [], "apiKey": []}],
    "tags": [{"name": "DLS"}, {"name": "Addressing"}, {"name": "Operations"}, {"name": "Admin (inregion only)"}],
    "paths": paths,
    "components": {
        "schemas": schemas,
        "parameters": parameters,
        "responses": {"Failure": resp("failure envelope", ref("Failure"))},
        "securitySchemes": {
            "apiToken": {"type": "http", "scheme": "bearer"},
            "apiEmail": {"type": "apiKey", "in": "header", "name": "X-Auth-Email"},
            "apiKey": {"type": "apiKey", "in": "header", "name": "X-Auth-Key"},
            "adminToken": {"type": "apiKey", "in": "header", "name": "X-Inregion-Admin-Token"},
        },
    },
}

print(json.dumps(doc, indent=2))
