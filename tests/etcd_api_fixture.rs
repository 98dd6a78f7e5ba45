//! tests/api_fixture.rs (the test-fixture surface: reset, per-test accounts, snapshots,
//! faults), unchanged, against servers whose state is in etcd: the test binary's name
//! starts with `etcd_api_`, so tests/api_support starts every server with
//! `--store <a 3-member cluster of this process> --etcd-prefix <one per data directory>`.

#[path = "api_fixture.rs"]
mod api_fixture;
