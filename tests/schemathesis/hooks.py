"""Schemathesis hooks for inregion (loaded through SCHEMATHESIS_HOOKS by tests/schemathesis.rs).

- The `cidr` string format: strict CIDR text with no host bits (IPv4 and IPv6), the
  rule the OpenAPI document can only describe (inregion_model::schema::cidr_schema).
- A check that narrows `positive_data_acceptance`'s allowance of 400: a schema-valid
  request may be refused only for a rule that no schema can state.
"""
import ipaddress

import schemathesis
from hypothesis import strategies as st


def _cidr(version: int, bits: int, address: int, length: int) -> str:
    net = ipaddress.ip_network((address, length), strict=False)
    return str(net)


_v4 = st.builds(lambda a, l: _cidr(4, 32, a, l), st.integers(0, 2**32 - 1), st.integers(0, 32))
_v6 = st.builds(
    lambda a, l: str(ipaddress.IPv6Network((a, l), strict=False)),
    st.integers(0, 2**128 - 1),
    st.integers(0, 128),
)
# Inside the development account's demo prefix 203.0.112.0/22 half of the time, so that
# binding creates get past "outside the prefix" and reach the other rules.
_demo = st.builds(
    lambda a, l: str(ipaddress.IPv4Network((0xCB007000 | a, l), strict=False)),
    st.integers(0, 1023),
    st.integers(22, 32),
)
schemathesis.openapi.format("cidr", st.one_of(_demo, _v4, _v6))

# 400 codes a schema-valid request may get, each a rule no schema can state.
RULES_NO_SCHEMA_CAN_STATE = {
    1103: "the CIDR lies outside the prefix (depends on the prefix)",
    1105: "no such prefix in the account (existence; the contract answers 400 on create)",
    1106: "the region key names no region (existence)",
    1111: "the cursor is not one the server handed out (cursors are opaque)",
    1114: "the prefix is not approved yet (state)",
    1116: "the service binding is managed by DLS or is the base binding (state)",
    1117: "the prefix holds the maximum number of bindings (state)",
    1302: "the IP is not within the account's prefixes (ownership)",
    1304: "the address map is enabled and must be disabled before a delete (state)",
}


@schemathesis.check
def refused_only_for_rules_the_schema_cannot_state(ctx, response, case):
    meta = case.meta
    if meta is None or not meta.generation.mode.is_positive or response.status_code != 400:
        return None
    try:
        codes = {e["code"] for e in response.json()["errors"]}
    except Exception as e:  # noqa: BLE001 - any unreadable body is a failure here
        raise AssertionError(f"400 without a readable error envelope: {e}") from e
    other = sorted(codes - RULES_NO_SCHEMA_CAN_STATE.keys())
    if other:
        raise AssertionError(
            f"schema-valid request refused with {other}, a rule the schema could state: "
            f"{response.text[:300]}"
        )
    return None
