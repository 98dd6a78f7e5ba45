"""Drives `inregion serve` with Cloudflare's official Python SDK (cloudflare==5.9.0).

Run by tests/sdk_python.rs with:
  INREGION_BASE   http://127.0.0.1:PORT
  INREGION_TOKEN  the dev token (every permission on the dev account)
  INREGION_READ_TOKEN  a token with DLS: Read only
  INREGION_ADMIN_TOKEN the admin token (/__inregion)
Exits non-zero on the first failed check; prints "N passed, 0 failed" at the end.
"""
import json
import os
import re
import sys
import urllib.request

import cloudflare
from cloudflare import Cloudflare

BASE = os.environ["INREGION_BASE"]
TOKEN = os.environ["INREGION_TOKEN"]
READ_TOKEN = os.environ["INREGION_READ_TOKEN"]
ADMIN = os.environ["INREGION_ADMIN_TOKEN"]
ACCOUNT = "023e105f4ecef8ad9ca31a8372d0c353"
PREFIX = "a1b2c3d4-e5f6-7890-abcd-ef1234567890"
V6_PREFIX = "6e6e6e6e6e6e6e6e6e6e6e6e6e6e6e6e"

assert cloudflare.__version__ == "5.9.0", cloudflare.__version__

# Default retry settings on purpose: the server's `x-should-retry: false` must stop the
# SDK from retrying 409s (checked through /metrics below).
cf = Cloudflare(api_token=TOKEN, base_url=f"{BASE}/client/v4")
reader = Cloudflare(api_token=READ_TOKEN, base_url=f"{BASE}/client/v4")
legacy = Cloudflare(api_email="ops@example.com", api_key="0123456789abcdef0123456789abcdef01234",
                    base_url=f"{BASE}/client/v4")
passed = 0


def check(name, cond, detail=""):
    global passed
    if not cond:
        print(f"FAILED: {name} {detail}", file=sys.stderr)
        print(f"{passed} passed, 1 failed")
        sys.exit(1)
    passed += 1
    print(f"ok - {name}")


def expect_error(name, exc_type, status, code, fn):
    try:
        fn()
    except exc_type as e:
        body = e.response.json()
        check(f"{name}: status", e.status_code == status, f"{e.status_code}")
        check(f"{name}: code", body["errors"][0]["code"] == code, json.dumps(body))
        check(f"{name}: envelope", body["success"] is False and body["result"] is None, json.dumps(body))
        return body
    except Exception as e:  # noqa: BLE001
        check(f"{name}: raised {exc_type.__name__}", False, repr(e))
    check(f"{name}: raised {exc_type.__name__}", False, "no exception")


def admin(path, body=None):
    req = urllib.request.Request(f"{BASE}/__inregion{path}", method="POST",
                                 data=json.dumps(body or {}).encode(),
                                 headers={"X-Inregion-Admin-Token": ADMIN, "Content-Type": "application/json"})
    with urllib.request.urlopen(req) as r:
        return json.load(r)


def metric(pattern):
    with urllib.request.urlopen(f"{BASE}/metrics") as r:
        text = r.read().decode()
    m = re.search(re.escape(pattern) + r" (\d+)", text)
    return int(m.group(1)) if m else 0


# ------------------------------------------------------------------ regions
regions = list(cf.dls.regions.list(account_id=ACCOUNT, per_page=4))  # auto-pagination
keys = [r.region_key for r in regions]
check("regions: auto-pagination walks every page", len(keys) > 4 and keys == sorted(keys), str(keys))
check("regions: eu listed", "eu" in keys)
first = cf.dls.regions.list(account_id=ACCOUNT, per_page=4)
check("regions: page has result_info.cursor", bool(first.result_info.cursor) and first.has_next_page())
custom = list(cf.dls.regions.list(account_id=ACCOUNT, type="custom"))
check("regions: type=custom", [r.region_key for r in custom] == ["test-dach"], str(custom))
eu = cf.dls.regions.get("eu", account_id=ACCOUNT)
check("regions: get by key", eu.region_key == "eu" and eu.name == "Europe", repr(eu))
check("regions: typed timestamps", eu.created_on.year >= 2026 and eu.version == 1, repr(eu))
by_id = cf.dls.regions.get(eu.id, account_id=ACCOUNT)
check("regions: get by id", by_id.region_key == "eu")
expect_error("regions: unknown", cloudflare.NotFoundError, 404, 1110,
             lambda: cf.dls.regions.get("atlantis", account_id=ACCOUNT))
expect_error("regions: bad type", cloudflare.BadRequestError, 400, 1112,
             lambda: cf.dls.regions.list(account_id=ACCOUNT, type="bogus"))

# ------------------------------------------------------------------ bindings
pb = cf.dls.regional_services.prefix_bindings
b = pb.create(account_id=ACCOUNT, prefix_id=PREFIX, cidr="203.0.113.0/24", region_key="eu")
check("bindings: create", b.cidr == "203.0.113.0/24" and b.region_key == "eu" and b.prefix_id == PREFIX, repr(b))
b6 = pb.create(account_id=ACCOUNT, prefix_id=V6_PREFIX, cidr="2001:DB8:1000:0::/48", region_key="us")
check("bindings: IPv6 canonical echo", b6.cidr == "2001:db8:1000::/48", b6.cidr)
got = pb.get(b.id, account_id=ACCOUNT)
check("bindings: get", got.id == b.id and got.cidr == b.cidr)
edited = pb.edit(b.id, account_id=ACCOUNT, region_key="us")
check("bindings: edit", edited.region_key == "us" and edited.id == b.id)

created = [b.id, b6.id]
for i in range(23):
    created.append(pb.create(account_id=ACCOUNT, prefix_id=PREFIX, cidr=f"203.0.114.{i}/32", region_key="ca").id)
listed = [x.id for x in pb.list(account_id=ACCOUNT, per_page=7)]
check("bindings: auto-pagination (25 items, pages of 7)", listed == created, f"{len(listed)} vs {len(created)}")

# Manual paging with changes between pages.
page1 = pb.list(account_id=ACCOUNT, per_page=10)
ids1 = [x.id for x in page1.result]
check("bindings: page 1", ids1 == created[:10] and page1.result_info.count == 10 and page1.result_info.per_page == 10)
pb.delete(created[10], account_id=ACCOUNT)
new = pb.create(account_id=ACCOUNT, prefix_id=PREFIX, cidr="203.0.114.200/32", region_key="eu").id
page2 = page1.get_next_page()
ids2 = [x.id for x in page2.result]
check("bindings: page 2 after delete+add", ids2 == created[11:21], str(ids2))
page3 = page2.get_next_page()
ids3 = [x.id for x in page3.result]
check("bindings: last page", ids3 == created[21:] + [new] and not page3.has_next_page()
      and page3.result_info.cursor == "", str(ids3))

deleted = pb.delete(b.id, account_id=ACCOUNT)
check("bindings: delete", deleted.success is True and deleted.errors == [])
expect_error("bindings: get deleted", cloudflare.NotFoundError, 404, 1109,
             lambda: pb.get(b.id, account_id=ACCOUNT))
expect_error("bindings: bad cidr", cloudflare.BadRequestError, 400, 1102,
             lambda: pb.create(account_id=ACCOUNT, prefix_id=PREFIX, cidr="203.0.113.5/24", region_key="eu"))
expect_error("bindings: bad region key", cloudflare.BadRequestError, 400, 1107,
             lambda: pb.create(account_id=ACCOUNT, prefix_id=PREFIX, cidr="203.0.113.0/25", region_key="EU"))
expect_error("bindings: read-only token", cloudflare.PermissionDeniedError, 403, 10000,
             lambda: reader.dls.regional_services.prefix_bindings.create(
                 account_id=ACCOUNT, prefix_id=PREFIX, cidr="203.0.113.0/25", region_key="eu"))
expect_error("bindings: other account", cloudflare.PermissionDeniedError, 403, 10000,
             lambda: cf.dls.regional_services.prefix_bindings.list(account_id="d" * 32))
expect_error("bindings: token not scoped to the account", cloudflare.PermissionDeniedError, 403, 10000,
             lambda: reader.dls.regional_services.prefix_bindings.list(account_id="b" * 32))
others = Cloudflare(api_token="test-others-token-0000000000000000000", base_url=f"{BASE}/client/v4")
expect_error("bindings: no BYOIP entitlement", cloudflare.PermissionDeniedError, 403, 1115,
             lambda: others.dls.regional_services.prefix_bindings.list(account_id="b" * 32))
before = metric('route="/client/v4/accounts/{account_id}/dls/regional_services/prefix_bindings",method="POST",status="409"}')
expect_error("bindings: duplicate", cloudflare.ConflictError, 409, 1108,
             lambda: pb.create(account_id=ACCOUNT, prefix_id=V6_PREFIX, cidr="2001:db8:1000::/48", region_key="eu"))
after = metric('route="/client/v4/accounts/{account_id}/dls/regional_services/prefix_bindings",method="POST",status="409"}')
check("bindings: the SDK did not retry the 409 (x-should-retry: false)", after - before == 1, f"{before}->{after}")
expect_error("bindings: whole prefix", cloudflare.ConflictError, 409, 1108,
             lambda: pb.create(account_id=ACCOUNT, prefix_id=PREFIX, cidr="203.0.112.0/22", region_key="eu"))
legacy_list = list(legacy.dls.regional_services.prefix_bindings.list(account_id=ACCOUNT))
check("bindings: legacy X-Auth-Email/X-Auth-Key",
      [x.id for x in legacy_list] == [x.id for x in pb.list(account_id=ACCOUNT)] and len(legacy_list) == 24)

# ------------------------------------------------------------------ addressing
prefixes = list(cf.addressing.prefixes.list(account_id=ACCOUNT))
check("prefixes: list", PREFIX in [p.id for p in prefixes])
p = cf.addressing.prefixes.get(PREFIX, account_id=ACCOUNT)
check("prefixes: get", p.cidr == "203.0.112.0/22" and p.approved == "V" and p.account_id == ACCOUNT, repr(p))
check("prefixes: validation states (typed fields)",
      (p.irr_validation_state, p.rpki_validation_state, p.ownership_validation_state) == ("valid",) * 3
      and p.delegate_loa_creation is False and p.ownership_validation_token == PREFIX, repr(p))
expect_error("prefixes: unknown", cloudflare.NotFoundError, 404, 1105,
             lambda: cf.addressing.prefixes.get("f" * 32, account_id=ACCOUNT))
services = [s.name for s in cf.addressing.services.list(account_id=ACCOUNT)]
check("services: list", set(services) == {"CDN", "Spectrum", "Magic Transit"}, str(services))
sbs = list(cf.addressing.prefixes.service_bindings.list(PREFIX, account_id=ACCOUNT))
check("service bindings: list has DLS bindings under their ids", created[2] in [s.id for s in sbs])
sb = cf.addressing.prefixes.service_bindings.get(b6.id, account_id=ACCOUNT, prefix_id=V6_PREFIX)
check("service bindings: provisioning", sb.provisioning.state == "provisioning" and sb.cidr == "2001:db8:1000::/48", repr(sb))

maps = cf.addressing.address_maps
expect_error("address maps: gated create", cloudflare.ConflictError, 409, 1301,
             lambda: maps.create(account_id=ACCOUNT, ips=["2001:db8:1000::1"], description="x"))
check("address maps: nothing created", list(maps.list(account_id=ACCOUNT)) == [])
m = maps.create(account_id=ACCOUNT, description="sdk", ips=["203.0.115.1"])
check("address maps: create", m.description == "sdk" and m.ips[0].ip == "203.0.115.1", repr(m))
expect_error("address maps: gated PUT ip", cloudflare.ConflictError, 409, 1301,
             lambda: maps.ips.update("2001:db8:1000::1", account_id=ACCOUNT, address_map_id=m.id))
admin(f"/bindings/{b6.id}/activate")
sb = cf.addressing.prefixes.service_bindings.get(b6.id, account_id=ACCOUNT, prefix_id=V6_PREFIX)
check("service bindings: active after activation", sb.provisioning.state == "active")
r = maps.ips.update("2001:db8:1000::1", account_id=ACCOUNT, address_map_id=m.id)
check("address maps: PUT ip after activation", r.success is True)
got = maps.get(m.id, account_id=ACCOUNT)
check("address maps: get", sorted(i.ip for i in got.ips) == ["2001:db8:1000::1", "203.0.115.1"], repr(got.ips))
edited = maps.edit(m.id, account_id=ACCOUNT, enabled=True, description="sdk2")
check("address maps: edit", edited.enabled is True and edited.description == "sdk2")
expect_error("address maps: delete while enabled", cloudflare.BadRequestError, 400, 1304,
             lambda: maps.delete(m.id, account_id=ACCOUNT))
maps.edit(m.id, account_id=ACCOUNT, enabled=False)
maps.ips.delete("2001:db8:1000::1", account_id=ACCOUNT, address_map_id=m.id)
d = maps.delete(m.id, account_id=ACCOUNT)
check("address maps: delete", d.success is True)
expect_error("address maps: get deleted", cloudflare.NotFoundError, 404, 1303,
             lambda: maps.get(m.id, account_id=ACCOUNT))

# ------------------------------------------------------------------ injected faults
# The SDK retries 429 and 5xx by default (the server marks them x-should-retry: true).
for status in (429, 500, 503):
    rule = admin("/faults", {"method": "GET", "path": "/client/v4/accounts/*/dls/regions/*",
                             "status": status, "count": 1, "retry_after": 0})["result"]
    eu = cf.dls.regions.get("eu", account_id=ACCOUNT)
    listed = json.load(urllib.request.urlopen(urllib.request.Request(
        f"{BASE}/__inregion/faults", headers={"X-Inregion-Admin-Token": ADMIN})))["result"]
    applied = next(r["applied"] for r in listed if r["id"] == rule["id"])
    check(f"faults: injected {status} retried by the SDK", eu.region_key == "eu" and applied == 1, str(applied))
no_retry = Cloudflare(api_token=TOKEN, base_url=f"{BASE}/client/v4", max_retries=0)
admin("/faults", {"method": "GET", "path": "/client/v4/accounts/*/dls/regions/*", "status": 429, "count": 1})
expect_error("faults: 429 reaches a client without retries", cloudflare.RateLimitError, 429, 971,
             lambda: no_retry.dls.regions.get("eu", account_id=ACCOUNT))

print(f"{passed} passed, 0 failed")
