"""The pytest-inregion example suite (run by the project's tests with two xdist workers).

Each test gets its own account from the shared server, so they run in parallel without
seeing each other; `cloudflare_client()` is the official SDK pointed at the server.
"""

import cloudflare
import pytest


def test_create_get_list(inregion_account, cloudflare_client):
    cf = cloudflare_client()
    pb = cf.dls.regional_services.prefix_bindings
    acct = inregion_account.account_id
    b = pb.create(account_id=acct, prefix_id=inregion_account.prefix_id,
                  cidr=inregion_account.subnet(56), region_key="eu")
    assert pb.get(b.id, account_id=acct).region_key == "eu"
    assert [x.id for x in pb.list(account_id=acct)] == [b.id]


@pytest.mark.parametrize("region", ["eu", "us", "ca", "au", "jp", "in"])
def test_each_test_sees_only_its_own_bindings(inregion_account, cloudflare_client, region):
    cf = cloudflare_client()
    pb = cf.dls.regional_services.prefix_bindings
    acct = inregion_account.account_id
    for i in range(3):
        pb.create(account_id=acct, prefix_id=inregion_account.prefix_id,
                  cidr=inregion_account.subnet(64, i), region_key=region)
    listed = list(pb.list(account_id=acct))
    assert len(listed) == 3 and {x.region_key for x in listed} == {region}


def test_other_accounts_are_out_of_reach(inregion, inregion_account, cloudflare_client):
    other = inregion.create_account()
    cf = cloudflare_client()
    with pytest.raises(cloudflare.PermissionDeniedError):
        list(cf.dls.regional_services.prefix_bindings.list(account_id=other.account_id))


def test_the_sdk_retries_an_injected_429(inregion, inregion_account, cloudflare_client):
    fault = inregion.add_fault(
        method="POST",
        path="/client/v4/accounts/*/dls/regional_services/prefix_bindings",
        account=inregion_account.account_id,
        status=429,
        count=1,
    )
    cf = cloudflare_client()
    b = cf.dls.regional_services.prefix_bindings.create(
        account_id=inregion_account.account_id, prefix_id=inregion_account.prefix_id,
        cidr=inregion_account.subnet(56), region_key="eu")
    assert b.cidr == inregion_account.subnet(56)
    rule = next(f for f in inregion.faults() if f["id"] == fault)
    assert rule["applied"] == 1, rule
    inregion.remove_fault(fault)


def test_without_retries_the_429_reaches_the_caller(inregion, inregion_account, cloudflare_client):
    inregion.add_fault(
        method="GET", path="/client/v4/accounts/*/dls/regions",
        account=inregion_account.account_id, status=429, count=1,
    )
    cf = cloudflare_client(max_retries=0)
    with pytest.raises(cloudflare.RateLimitError):
        cf.dls.regions.list(account_id=inregion_account.account_id)
    assert list(cf.dls.regions.list(account_id=inregion_account.account_id))
