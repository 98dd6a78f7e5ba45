//! Declarative seeding: accounts, tokens, users, prefixes and custom regions from a
//! TOML (or any serde) document. Seeding is idempotent: applying the same document to a
//! database that already holds it changes nothing (no version bump), so a server can
//! apply its `--config` at every start.
//!
//! ```toml
//! [[accounts]]
//! id = "0123456789abcdef0123456789abcdef"
//! name = "Demo"
//! entitlements = ["regional_services", "regional_services_byoip"]
//!
//! [[tokens]]
//! name = "dls-rw"
//! secret = "local-dev-token-0000000000000000000000"
//! accounts = ["0123456789abcdef0123456789abcdef"]
//! permissions = ["DLS: Write", "IP Prefixes: Write"]
//!
//! [[prefixes]]
//! account = "0123456789abcdef0123456789abcdef"
//! id = "a1b2c3d4-e5f6-7890-abcd-ef1234567890"
//! cidr = "203.0.113.0/24"
//! asn = 64496
//! ```

use inregion_model::{
    AccountId, CountryCode, Entitlement, Iata, Permission, PrefixId, RegionId, RegionKey, Role,
    Timestamp, TokenId,
};
use ipnet::IpNet;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// An account to create or update.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AccountSeed {
    /// Identifier.
    pub id: AccountId,
    /// Display name.
    #[serde(default)]
    pub name: String,
    /// Entitlement flags.
    #[serde(default)]
    pub entitlements: Vec<Entitlement>,
}

/// An API token to create or update (matched by `id`, else by secret).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TokenSeed {
    /// Identifier; derived from the secret's hash when absent.
    #[serde(default)]
    pub id: Option<TokenId>,
    /// Display name.
    #[serde(default)]
    pub name: String,
    /// The secret clients send as `Bearer <secret>`; only its SHA-256 is stored.
    pub secret: String,
    /// Accounts the token is scoped to.
    pub accounts: Vec<AccountId>,
    /// Permission groups.
    pub permissions: Vec<Permission>,
    /// Not valid before.
    #[serde(default)]
    pub not_before: Option<Timestamp>,
    /// Not valid from.
    #[serde(default)]
    pub expires_on: Option<Timestamp>,
    /// Allowed client IP ranges (empty: anywhere).
    #[serde(default)]
    pub allowed_ips: Vec<IpNet>,
    /// Revoked.
    #[serde(default)]
    pub revoked: bool,
}

/// A user with a global API key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UserSeed {
    /// E-mail (case-insensitive).
    pub email: String,
    /// The global API key; only its SHA-256 is stored.
    pub key: String,
    /// Role per account.
    pub roles: BTreeMap<AccountId, Role>,
}

/// A BYOIP prefix (matched by `id`, else by CIDR).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PrefixSeed {
    /// Owner.
    pub account: AccountId,
    /// Identifier; random when absent (a later seed finds the prefix by CIDR).
    #[serde(default)]
    pub id: Option<PrefixId>,
    /// The prefix, strict CIDR text.
    pub cidr: String,
    /// Origin ASN.
    pub asn: u32,
    /// Free text.
    #[serde(default)]
    pub description: String,
    /// Approved (`"V"`) or pending (`"P"`).
    #[serde(default = "yes")]
    pub approved: bool,
    /// The base binding's service: `CDN` (default), `Spectrum` or `Magic Transit`.
    #[serde(default)]
    pub service: Option<String>,
}

fn yes() -> bool {
    true
}

/// A custom region for one account (matched by `id`, else by key). Editing a region's
/// definition bumps its `version`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RegionSeed {
    /// Owner.
    pub account: AccountId,
    /// Key (globally unique: not a managed key, not another account's).
    pub key: RegionKey,
    /// Display name.
    pub name: String,
    /// Identifier; derived from the key when absent.
    #[serde(default)]
    pub id: Option<RegionId>,
    /// Countries whose data centers are members.
    #[serde(default)]
    pub countries: Vec<CountryCode>,
    /// Data centers that are members.
    #[serde(default)]
    pub data_centers: Vec<Iata>,
    /// Countries excluded afterwards.
    #[serde(default)]
    pub exclude_countries: Vec<CountryCode>,
}

/// A whole seeding document.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SeedConfig {
    /// Accounts.
    #[serde(default)]
    pub accounts: Vec<AccountSeed>,
    /// Tokens.
    #[serde(default)]
    pub tokens: Vec<TokenSeed>,
    /// Users.
    #[serde(default)]
    pub users: Vec<UserSeed>,
    /// Prefixes.
    #[serde(default)]
    pub prefixes: Vec<PrefixSeed>,
    /// Custom regions.
    #[serde(default)]
    pub regions: Vec<RegionSeed>,
    /// Fault injection rules the server starts with (and returns to on reset); not
    /// records: the control plane's seeding ignores them ([`crate::FaultSet`]).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub faults: Vec<crate::faults::FaultSpec>,
}

impl SeedConfig {
    /// Parses a TOML document.
    pub fn from_toml(text: &str) -> Result<Self, String> {
        toml::from_str(text).map_err(|e| e.to_string())
    }

    /// Why the document names one record in two entries, if it does: the same account
    /// id, user e-mail, token id or secret, prefix id or account and CIDR text, region
    /// id or account and key. Such a document is refused: which entry wins would be an
    /// accident of order, and applying it again would flip the record back and forth
    /// instead of changing nothing (found by the `config_toml` fuzz target).
    pub fn named_twice(&self) -> Option<String> {
        let mut seen = std::collections::HashSet::new();
        let mut twice = |kind: &str, key: String| {
            (!seen.insert((kind.to_owned(), key.clone())))
                .then(|| format!("the document names {kind} {key} more than once"))
        };
        for a in &self.accounts {
            if let Some(e) = twice("account", a.id.to_string()) {
                return Some(e);
            }
        }
        for u in &self.users {
            if let Some(e) = twice("user", u.email.clone()) {
                return Some(e);
            }
        }
        for (i, t) in self.tokens.iter().enumerate() {
            let by_id = t.id.as_ref().and_then(|id| twice("token", id.to_string()));
            // Never name a secret in a message: the entry's position instead.
            let by_secret = twice("token secret", t.secret.clone()).map(|_| {
                format!(
                    "the document gives token #{} a secret already used above",
                    i + 1
                )
            });
            if let Some(e) = by_id.or(by_secret) {
                return Some(e);
            }
        }
        for p in &self.prefixes {
            let by_id = p.id.as_ref().and_then(|id| twice("prefix", id.to_string()));
            let by_cidr = twice("prefix", format!("{} of account {}", p.cidr, p.account));
            if let Some(e) = by_id.or(by_cidr) {
                return Some(e);
            }
        }
        for r in &self.regions {
            let by_id = r.id.as_ref().and_then(|id| twice("region", id.to_string()));
            let by_key = twice("region", format!("{} of account {}", r.key, r.account));
            if let Some(e) = by_id.or(by_key) {
                return Some(e);
            }
        }
        None
    }
}
