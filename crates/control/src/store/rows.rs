//! Storage records: the on-disk shape of every row body, owned by the store.
//!
//! The domain records ([`crate::records`], [`crate::auth`]) and the API views are free
//! to change their fields and their serde attributes: nothing here derives from them.
//! Each row type below names its fields itself and converts explicitly, value by value,
//! into text or numbers whose form the store fixes:
//!
//! - ids, CIDRs, IPs, region keys and country / data-center codes: their canonical text
//!   (the model's `as_str` / `Display`, checked again by the model's parsers on read);
//! - entitlements, permissions and roles: Cloudflare's names (fixed by the contract);
//! - times: microseconds since the Unix epoch (schema version 1 wrote RFC 3339 text;
//!   both are read, see [`Time`]);
//! - secret digests: 64 lower-case hex characters, with the scheme that made them.
//!
//! Schema version 2 reads the bodies version 1 wrote unchanged (same field names; a
//! missing `scheme` means the plain SHA-256 of version 1), which the old-database
//! fixture test (`tests/old_database.rs`) checks against a file version 1 wrote. A
//! change to a row's shape needs a new schema version and a migration in `sqlite.rs`.

use crate::auth::{HashScheme, SecretHash, TokenRecord, UserRecord};
use crate::records::{
    Account, AddressMap, AddressMapIp, Approval, BindingRecord, CustomRegion, Membership,
    MembershipKind, Prefix,
};
use inregion_model::{
    AccountId, AddressMapId, BindingId, Cidr, CountryCode, Entitlement, Iata, Permission,
    PermissionSet, PrefixId, RegionDefinition, RegionKey, Role, ServiceId, Timestamp, TokenId,
};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Why a stored row does not decode (the caller adds the file and the row's key).
pub(super) type DecodeError = String;

fn parse<T, E: std::fmt::Display>(what: &str, r: Result<T, E>) -> Result<T, DecodeError> {
    r.map_err(|e| format!("{what}: {e}"))
}

/// A stored time: written as microseconds; schema version 1 wrote RFC 3339 text.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub(super) enum Time {
    /// Microseconds since the Unix epoch (what this version writes).
    Micros(i64),
    /// RFC 3339 with microseconds (schema version 1).
    Text(String),
}

impl Time {
    fn of(t: Timestamp) -> Self {
        Time::Micros(t.as_micros())
    }
    fn get(&self) -> Result<Timestamp, DecodeError> {
        match self {
            Time::Micros(us) => Ok(Timestamp::from_micros(*us)),
            Time::Text(s) => parse("time", Timestamp::parse(s)),
        }
    }
}

fn opt_time(t: Option<Timestamp>) -> Option<Time> {
    t.map(Time::of)
}

fn get_opt_time(t: &Option<Time>) -> Result<Option<Timestamp>, DecodeError> {
    t.as_ref().map(Time::get).transpose()
}

/// The scheme of a stored digest. Absent in version 1 rows: plain SHA-256.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub(super) enum Scheme {
    #[serde(rename = "hmac-sha256")]
    HmacSha256,
    #[default]
    #[serde(rename = "sha256")]
    Sha256,
}

impl Scheme {
    fn of(s: HashScheme) -> Self {
        match s {
            HashScheme::HmacSha256 => Scheme::HmacSha256,
            HashScheme::LegacySha256 => Scheme::Sha256,
        }
    }
    fn get(self) -> HashScheme {
        match self {
            Scheme::HmacSha256 => HashScheme::HmacSha256,
            Scheme::Sha256 => HashScheme::LegacySha256,
        }
    }
}

fn digest(s: &str) -> Result<SecretHash, DecodeError> {
    SecretHash::from_hex(s).ok_or_else(|| "digest: expected 64 hex characters".to_owned())
}

/// `accounts.body`.
#[derive(Debug, Serialize, Deserialize)]
pub(super) struct AccountRow {
    id: String,
    name: String,
    entitlements: Vec<String>,
}

impl AccountRow {
    pub(super) fn of(a: &Account) -> Self {
        Self {
            id: a.id.as_str().to_owned(),
            name: a.name.clone(),
            entitlements: a.entitlements.iter().map(|e| e.name().to_owned()).collect(),
        }
    }
    pub(super) fn get(self) -> Result<Account, DecodeError> {
        Ok(Account {
            id: parse("id", AccountId::parse(&self.id))?,
            name: self.name,
            entitlements: self
                .entitlements
                .iter()
                .map(|e| parse("entitlement", Entitlement::parse(e)))
                .collect::<Result<_, _>>()?,
        })
    }
}

/// `users.body`.
#[derive(Debug, Serialize, Deserialize)]
pub(super) struct UserRow {
    email: String,
    key_hash: String,
    #[serde(default)]
    key_scheme: Scheme,
    roles: BTreeMap<String, String>,
}

impl UserRow {
    pub(super) fn of(u: &UserRecord) -> Self {
        Self {
            email: u.email.clone(),
            key_hash: u.key_hash.to_hex(),
            key_scheme: Scheme::of(u.key_scheme),
            roles: u
                .roles
                .iter()
                .map(|(a, r)| (a.as_str().to_owned(), r.name().to_owned()))
                .collect(),
        }
    }
    pub(super) fn get(self) -> Result<UserRecord, DecodeError> {
        Ok(UserRecord {
            email: self.email,
            key_hash: digest(&self.key_hash)?,
            key_scheme: self.key_scheme.get(),
            roles: self
                .roles
                .iter()
                .map(|(a, r)| {
                    Ok((
                        parse("account", AccountId::parse(a))?,
                        parse("role", Role::parse(r))?,
                    ))
                })
                .collect::<Result<_, DecodeError>>()?,
        })
    }
}

/// `tokens.body`.
#[derive(Debug, Serialize, Deserialize)]
pub(super) struct TokenRow {
    id: String,
    name: String,
    secret_hash: String,
    #[serde(default)]
    hash_scheme: Scheme,
    accounts: Vec<String>,
    permissions: Vec<String>,
    not_before: Option<Time>,
    expires_on: Option<Time>,
    allowed_ips: Vec<String>,
    revoked: bool,
}

impl TokenRow {
    pub(super) fn of(t: &TokenRecord) -> Self {
        Self {
            id: t.id.as_str().to_owned(),
            name: t.name.clone(),
            secret_hash: t.secret_hash.to_hex(),
            hash_scheme: Scheme::of(t.hash_scheme),
            accounts: t.accounts.iter().map(|a| a.as_str().to_owned()).collect(),
            permissions: Permission::ALL
                .iter()
                .filter(|p| t.permissions.contains(**p))
                .map(|p| p.name().to_owned())
                .collect(),
            not_before: opt_time(t.not_before),
            expires_on: opt_time(t.expires_on),
            allowed_ips: t.allowed_ips.iter().map(|n| n.to_string()).collect(),
            revoked: t.revoked,
        }
    }
    pub(super) fn get(self) -> Result<TokenRecord, DecodeError> {
        let mut permissions = PermissionSet::default();
        for p in &self.permissions {
            permissions.insert(parse("permission", Permission::parse(p))?);
        }
        Ok(TokenRecord {
            id: parse("id", TokenId::parse(&self.id))?,
            name: self.name,
            secret_hash: digest(&self.secret_hash)?,
            hash_scheme: self.hash_scheme.get(),
            accounts: self
                .accounts
                .iter()
                .map(|a| parse("account", AccountId::parse(a)))
                .collect::<Result<_, _>>()?,
            permissions,
            not_before: get_opt_time(&self.not_before)?,
            expires_on: get_opt_time(&self.expires_on)?,
            allowed_ips: self
                .allowed_ips
                .iter()
                .map(|n| parse("allowed_ips", n.parse()))
                .collect::<Result<_, _>>()?,
            revoked: self.revoked,
        })
    }
}

/// `prefixes.body`.
#[derive(Debug, Serialize, Deserialize)]
pub(super) struct PrefixRow {
    id: String,
    account_id: String,
    cidr: String,
    asn: u32,
    description: String,
    /// `"P"` pending, `"V"` approved.
    approved: String,
    base_service: String,
    created_at: Time,
    modified_at: Time,
}

impl PrefixRow {
    pub(super) fn of(p: &Prefix) -> Self {
        Self {
            id: p.id.as_str().to_owned(),
            account_id: p.account_id.as_str().to_owned(),
            cidr: p.cidr.to_string(),
            asn: p.asn,
            description: p.description.clone(),
            approved: match p.approved {
                Approval::Pending => "P",
                Approval::Approved => "V",
            }
            .to_owned(),
            base_service: p.base_service.as_str().to_owned(),
            created_at: Time::of(p.created_at),
            modified_at: Time::of(p.modified_at),
        }
    }
    pub(super) fn get(self) -> Result<Prefix, DecodeError> {
        Ok(Prefix {
            id: parse("id", PrefixId::parse(&self.id))?,
            account_id: parse("account_id", AccountId::parse(&self.account_id))?,
            cidr: parse("cidr", Cidr::parse_strict(&self.cidr))?,
            asn: self.asn,
            description: self.description,
            approved: match self.approved.as_str() {
                "P" => Approval::Pending,
                "V" => Approval::Approved,
                other => return Err(format!("approved: {other:?} is neither \"P\" nor \"V\"")),
            },
            base_service: parse("base_service", ServiceId::parse(&self.base_service))?,
            created_at: self.created_at.get()?,
            modified_at: self.modified_at.get()?,
        })
    }
}

/// A region definition inside [`RegionRow`].
#[derive(Debug, Serialize, Deserialize)]
struct DefinitionRow {
    key: String,
    name: String,
    id: String,
    confirmed: bool,
    note: String,
    countries: Vec<String>,
    data_centers: Vec<String>,
    exclude_countries: Vec<String>,
}

fn codes<T, E: std::fmt::Display>(
    what: &str,
    v: &[String],
    f: impl Fn(&str) -> Result<T, E>,
) -> Result<Vec<T>, DecodeError> {
    v.iter().map(|c| parse(what, f(c))).collect()
}

/// `regions.body`.
#[derive(Debug, Serialize, Deserialize)]
pub(super) struct RegionRow {
    account_id: String,
    definition: DefinitionRow,
    version: u64,
    created_at: Time,
    modified_at: Time,
    version_created_at: Time,
}

impl RegionRow {
    pub(super) fn of(r: &CustomRegion) -> Self {
        let d = &r.definition;
        let text = |v: &[CountryCode]| v.iter().map(|c| c.as_str().to_owned()).collect();
        Self {
            account_id: r.account_id.as_str().to_owned(),
            definition: DefinitionRow {
                key: d.key.as_str().to_owned(),
                name: d.name.clone(),
                id: d.id.to_string(),
                confirmed: d.confirmed,
                note: d.note.clone(),
                countries: text(&d.countries),
                data_centers: d
                    .data_centers
                    .iter()
                    .map(|c| c.as_str().to_owned())
                    .collect(),
                exclude_countries: text(&d.exclude_countries),
            },
            version: r.version,
            created_at: Time::of(r.created_at),
            modified_at: Time::of(r.modified_at),
            version_created_at: Time::of(r.version_created_at),
        }
    }
    pub(super) fn get(self) -> Result<CustomRegion, DecodeError> {
        let d = self.definition;
        Ok(CustomRegion {
            account_id: parse("account_id", AccountId::parse(&self.account_id))?,
            definition: RegionDefinition {
                key: parse("key", RegionKey::parse(&d.key))?,
                name: d.name,
                id: parse("id", uuid::Uuid::parse_str(&d.id))?,
                confirmed: d.confirmed,
                note: d.note,
                countries: codes("countries", &d.countries, CountryCode::parse)?,
                data_centers: codes("data_centers", &d.data_centers, Iata::parse)?,
                exclude_countries: codes(
                    "exclude_countries",
                    &d.exclude_countries,
                    CountryCode::parse,
                )?,
            },
            version: self.version,
            created_at: self.created_at.get()?,
            modified_at: self.modified_at.get()?,
            version_created_at: self.version_created_at.get()?,
        })
    }
}

#[derive(Debug, Serialize, Deserialize)]
struct MapIpRow {
    ip: String,
    created_at: Time,
}

#[derive(Debug, Serialize, Deserialize)]
struct MembershipRow {
    identifier: String,
    /// `zone` or `account`.
    kind: String,
    can_delete: bool,
    created_at: Time,
}

/// `address_maps.body` (the account id has a column of its own).
#[derive(Debug, Serialize, Deserialize)]
pub(super) struct AddressMapRow {
    id: String,
    description: Option<String>,
    default_sni: Option<String>,
    enabled: bool,
    can_delete: bool,
    can_modify_ips: bool,
    created_at: Time,
    modified_at: Time,
    ips: Vec<MapIpRow>,
    memberships: Vec<MembershipRow>,
}

impl AddressMapRow {
    pub(super) fn of(m: &AddressMap) -> Self {
        Self {
            id: m.id.as_str().to_owned(),
            description: m.description.clone(),
            default_sni: m.default_sni.clone(),
            enabled: m.enabled,
            can_delete: m.can_delete,
            can_modify_ips: m.can_modify_ips,
            created_at: Time::of(m.created_at),
            modified_at: Time::of(m.modified_at),
            ips: m
                .ips
                .iter()
                .map(|i| MapIpRow {
                    ip: inregion_model::cidr::canonical_ip(i.ip),
                    created_at: Time::of(i.created_at),
                })
                .collect(),
            memberships: m
                .memberships
                .iter()
                .map(|x| MembershipRow {
                    identifier: x.identifier.clone(),
                    kind: match x.kind {
                        MembershipKind::Zone => "zone",
                        MembershipKind::Account => "account",
                    }
                    .to_owned(),
                    can_delete: x.can_delete,
                    created_at: Time::of(x.created_at),
                })
                .collect(),
        }
    }
    pub(super) fn get(self, account_id: &str) -> Result<AddressMap, DecodeError> {
        Ok(AddressMap {
            id: parse("id", AddressMapId::parse(&self.id))?,
            account_id: parse("account_id", AccountId::parse(account_id))?,
            description: self.description,
            default_sni: self.default_sni,
            enabled: self.enabled,
            can_delete: self.can_delete,
            can_modify_ips: self.can_modify_ips,
            created_at: self.created_at.get()?,
            modified_at: self.modified_at.get()?,
            ips: self
                .ips
                .iter()
                .map(|i| {
                    Ok(AddressMapIp {
                        ip: inregion_model::cidr::parse_ip_strict(&i.ip)
                            .ok_or_else(|| format!("ip: {:?} is not an address", i.ip))?,
                        created_at: i.created_at.get()?,
                    })
                })
                .collect::<Result<_, DecodeError>>()?,
            memberships: self
                .memberships
                .iter()
                .map(|x| {
                    Ok(Membership {
                        identifier: x.identifier.clone(),
                        kind: MembershipKind::parse(&x.kind)
                            .ok_or_else(|| format!("membership kind {:?}", x.kind))?,
                        can_delete: x.can_delete,
                        created_at: x.created_at.get()?,
                    })
                })
                .collect::<Result<_, DecodeError>>()?,
        })
    }
}

/// A binding in a snapshot (the database keeps bindings in columns of their own, with
/// the same names).
#[derive(Debug, Serialize, Deserialize)]
pub(super) struct BindingRow {
    id: String,
    account_id: String,
    prefix_id: String,
    cidr: String,
    region: String,
    previous_region: Option<String>,
    created_at: Time,
    changed_at: Time,
    active_at: Time,
    deleted_at: Option<Time>,
    gone_at: Option<Time>,
    version: u64,
}

impl BindingRow {
    pub(super) fn of(b: &BindingRecord) -> Self {
        Self {
            id: b.id.to_string(),
            account_id: b.account_id.as_str().to_owned(),
            prefix_id: b.prefix_id.as_str().to_owned(),
            cidr: b.cidr.to_string(),
            region: b.region.as_str().to_owned(),
            previous_region: b.previous_region.as_ref().map(|r| r.as_str().to_owned()),
            created_at: Time::of(b.created_at),
            changed_at: Time::of(b.changed_at),
            active_at: Time::of(b.active_at),
            deleted_at: opt_time(b.deleted_at),
            gone_at: opt_time(b.gone_at),
            version: b.version,
        }
    }
    pub(super) fn get(self) -> Result<BindingRecord, DecodeError> {
        Ok(BindingRecord {
            id: parse("id", BindingId::parse(&self.id))?,
            account_id: parse("account_id", AccountId::parse(&self.account_id))?,
            prefix_id: parse("prefix_id", PrefixId::parse(&self.prefix_id))?,
            cidr: parse("cidr", Cidr::parse_strict(&self.cidr))?,
            region: parse("region", RegionKey::parse(&self.region))?,
            previous_region: self
                .previous_region
                .map(|r| parse("previous_region", RegionKey::parse(&r)))
                .transpose()?,
            created_at: self.created_at.get()?,
            changed_at: self.changed_at.get()?,
            active_at: self.active_at.get()?,
            deleted_at: get_opt_time(&self.deleted_at)?,
            gone_at: get_opt_time(&self.gone_at)?,
            version: self.version,
        })
    }
}

/// An edge node's registration (etcd's value; SQLite keeps these as columns).
#[derive(Debug, Serialize, Deserialize)]
pub(super) struct EdgeNodeRow {
    node_id: String,
    dc: String,
    address: String,
    registered_at: Time,
}

impl EdgeNodeRow {
    pub(super) fn of(n: &crate::records::EdgeNodeRecord) -> Self {
        Self {
            node_id: n.node_id.clone(),
            dc: n.dc.as_str().to_owned(),
            address: n.address.clone(),
            registered_at: Time::of(n.registered_at),
        }
    }
    pub(super) fn get(self) -> Result<crate::records::EdgeNodeRecord, DecodeError> {
        Ok(crate::records::EdgeNodeRecord {
            node_id: self.node_id,
            dc: parse("dc", Iata::parse(&self.dc))?,
            address: self.address,
            registered_at: self.registered_at.get()?,
        })
    }
}

/// An address map in a snapshot, with its account (a column of its own in the database).
#[derive(Debug, Serialize, Deserialize)]
pub(super) struct OwnedMapRow {
    pub(super) account_id: String,
    pub(super) map: AddressMapRow,
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The bodies schema version 1 wrote (copied from the fixture file) decode, and a
    /// decoded record written again decodes to the same record.
    #[test]
    fn version_1_bodies_decode_and_round_trip() {
        let token = r#"{"id":"00112233445566778899aabbccddeeff","name":"fixture token","secret_hash":"2e330827ae2d3e5e061b8990045c5d5692917387a65881d1ed685dcba014cec4","accounts":["0123456789abcdef0123456789abcdef"],"permissions":["DLS: Write","IP Prefixes: Write","Address Maps Write"],"not_before":null,"expires_on":"2030-01-01T00:00:00.000000Z","allowed_ips":["127.0.0.0/8"],"revoked":false}"#;
        let t = serde_json::from_str::<TokenRow>(token)
            .unwrap()
            .get()
            .unwrap();
        assert_eq!(t.hash_scheme, HashScheme::LegacySha256);
        assert_eq!(
            t.expires_on,
            Some(Timestamp::parse("2030-01-01T00:00:00Z").unwrap())
        );
        let again = serde_json::to_string(&TokenRow::of(&t)).unwrap();
        assert!(
            again.contains(r#""expires_on":1893456000000000"#),
            "{again}"
        );
        let back = serde_json::from_str::<TokenRow>(&again)
            .unwrap()
            .get()
            .unwrap();
        assert_eq!(back, t);

        let prefix = r#"{"id":"0f1e2d3c4b5a69788796a5b4c3d2e1f0","account_id":"0123456789abcdef0123456789abcdef","cidr":"198.51.100.0/24","asn":64496,"description":"Team A IPv4","approved":"V","base_service":"969c4bd2a6d04e0a8a2c3b1c6f1b2d3e","created_at":"2027-01-15T08:00:00.000000Z","modified_at":"2027-01-15T08:00:00.000000Z"}"#;
        let p = serde_json::from_str::<PrefixRow>(prefix)
            .unwrap()
            .get()
            .unwrap();
        let back =
            serde_json::from_str::<PrefixRow>(&serde_json::to_string(&PrefixRow::of(&p)).unwrap())
                .unwrap()
                .get()
                .unwrap();
        assert_eq!(back, p);
    }

    #[test]
    fn damaged_bodies_are_refused_with_the_field_named() {
        let bad = r#"{"id":"0f1e2d3c4b5a69788796a5b4c3d2e1f0","account_id":"0123456789abcdef0123456789abcdef","cidr":"198.51.100.1/24","asn":1,"description":"","approved":"X","base_service":"969c4bd2a6d04e0a8a2c3b1c6f1b2d3e","created_at":0,"modified_at":0}"#;
        let e = serde_json::from_str::<PrefixRow>(bad)
            .unwrap()
            .get()
            .unwrap_err();
        assert!(e.starts_with("cidr:"), "{e}");
    }
}
