//! What the control plane's integration tests share: one account with both entitlements
//! and one approved IPv6 prefix.
#![allow(dead_code)]

use inregion_control::{ControlPlane, SeedConfig};
use std::collections::BTreeSet;

/// The account.
pub(crate) const ACCT: &str = "0123456789abcdef0123456789abcdef";
/// Its prefix, `2001:db8::/32`.
pub(crate) const PREFIX: &str = "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb";

/// The account and its prefix, plus `extra` seeding TOML (tokens, users, ...).
pub(crate) fn seed_with(extra: &str) -> SeedConfig {
    SeedConfig::from_toml(&format!(
        r#"
[[accounts]]
id = "{ACCT}"
entitlements = ["regional_services", "regional_services_byoip"]
[[prefixes]]
account = "{ACCT}"
id = "{PREFIX}"
cidr = "2001:db8::/32"
asn = 64496
{extra}"#
    ))
    .unwrap()
}

/// The account and its prefix.
pub(crate) fn seed() -> SeedConfig {
    seed_with("")
}

/// The version of every binding in the change feed (live and deleted): after a restart,
/// one per committed binding operation, the newest the control plane's version.
pub(crate) fn feed_versions(cp: &ControlPlane) -> BTreeSet<u64> {
    cp.changes_since(0)
        .unwrap()
        .bindings
        .iter()
        .map(|b| b.version)
        .collect()
}
