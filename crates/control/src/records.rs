//! Stored records (what the store persists) and the API views built from them.
//!
//! Records carry everything the rules need (timestamps, tombstones, previous regions);
//! views carry exactly the fields Cloudflare returns and serialize with its field names,
//! so the HTTP layer can put them in the envelope as they are.

use inregion_model::{
    AccountId, AddressMapId, BindingId, Cidr, Entitlement, PrefixId, RegionDefinition, RegionId,
    RegionKey, RegionKind, ServiceId, Timestamp,
};
use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;
use std::net::IpAddr;
use utoipa::ToSchema;

/// An account and its entitlement flags.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Account {
    /// Identifier.
    pub id: AccountId,
    /// Display name.
    pub name: String,
    /// Entitlement flags.
    pub entitlements: BTreeSet<Entitlement>,
}

/// A BYOIP prefix's approval state (`approved` field: `"P"` pending, `"V"` active).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
pub enum Approval {
    /// `"P"`: onboarding; bindings are refused (400 / 1114).
    #[serde(rename = "P")]
    Pending,
    /// `"V"`: approved.
    #[serde(rename = "V")]
    Approved,
}

/// A BYOIP prefix owned by an account.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Prefix {
    /// Identifier.
    pub id: PrefixId,
    /// Owner.
    pub account_id: AccountId,
    /// The prefix.
    pub cidr: Cidr,
    /// Origin ASN.
    pub asn: u32,
    /// Free text.
    pub description: String,
    /// Approval state.
    pub approved: Approval,
    /// The service of the prefix's base service binding (CDN, Spectrum, Magic Transit).
    pub base_service: ServiceId,
    /// Creation time.
    pub created_at: Timestamp,
    /// Last change.
    pub modified_at: Timestamp,
}

/// An edge node's registration (`PUT /edge/v1/nodes/{id}`): durable, so that a restart
/// of the control plane cannot shrink the majority that activation waits for. What the
/// node has applied and when it was last seen are not stored (see
/// [`crate::ControlPlane::report_edge_node`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EdgeNodeRecord {
    /// The node's id (by default its data center's code).
    pub node_id: String,
    /// The data center it serves.
    pub dc: inregion_model::Iata,
    /// Where it answers decisions (`host:port`), for operators.
    pub address: String,
    /// When it first registered (wall-clock time of the server).
    pub registered_at: Timestamp,
}

/// A custom region, defined for one account (§11.1).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CustomRegion {
    /// The account it belongs to.
    pub account_id: AccountId,
    /// Key, name, id and membership (countries / data centers / exclusions).
    pub definition: RegionDefinition,
    /// Bumped on every edit, starting at 1.
    pub version: u64,
    /// Creation time.
    pub created_at: Timestamp,
    /// Last change.
    pub modified_at: Timestamp,
    /// When the current version was created.
    pub version_created_at: Timestamp,
}

/// A binding's lifecycle state at some time (derived from its timestamps).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum BindingState {
    /// Created or re-pointed, still propagating.
    Provisioning,
    /// Propagated.
    Active,
    /// Deleted through the API; the deletion is still propagating, so the data plane
    /// still applies it.
    Deleting,
    /// Deleted and the deletion has propagated.
    Gone,
}

/// A prefix binding as stored, with the timestamps its lifecycle is derived from.
///
/// Invariants: `created_at <= changed_at <= active_at` unless force-activated
/// (then `active_at` may be earlier than `changed_at + delay`, never before `changed_at`);
/// `deleted_at` and `gone_at` are both set or both unset, `deleted_at <= gone_at`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BindingRecord {
    /// Identifier, shared with the Addressing service binding.
    pub id: BindingId,
    /// Owner.
    pub account_id: AccountId,
    /// The prefix it is cut from.
    pub prefix_id: PrefixId,
    /// Canonical CIDR, strictly inside the prefix.
    pub cidr: Cidr,
    /// The region the API shows (the latest requested).
    pub region: RegionKey,
    /// The region the data plane applies until `active_at` (the region that was in force
    /// when the last change was made); `None` for a fresh binding.
    pub previous_region: Option<RegionKey>,
    /// Creation time (also the list order, §4.3).
    pub created_at: Timestamp,
    /// When `region` was last set (creation or a PATCH to another region).
    pub changed_at: Timestamp,
    /// When the last change has propagated (`changed_at + delay`, or earlier if forced).
    pub active_at: Timestamp,
    /// When it was deleted through the API.
    pub deleted_at: Option<Timestamp>,
    /// When the deletion has propagated.
    pub gone_at: Option<Timestamp>,
    /// The change-feed version of the last change to this record.
    pub version: u64,
}

/// The time that stands for "until a majority of edge nodes has applied this change"
/// (`active_at` of a created or changed binding, `gone_at` of a deleted one) under
/// [`crate::Activation::Edges`]. The activation commit replaces it with the moment the
/// majority was reached.
pub const AWAITING_EDGES: Timestamp = Timestamp::MAX;

impl BindingRecord {
    /// Whether this record's last change waits for the edge nodes
    /// ([`AWAITING_EDGES`]).
    pub fn awaits_edges(&self) -> bool {
        match self.gone_at {
            Some(g) => g == AWAITING_EDGES,
            None => self.active_at == AWAITING_EDGES,
        }
    }

    /// True until deleted through the API.
    pub fn is_live(&self) -> bool {
        self.deleted_at.is_none()
    }

    /// The lifecycle state at `t`.
    pub fn state_at(&self, t: Timestamp) -> BindingState {
        match (self.deleted_at, self.gone_at) {
            (Some(_), Some(g)) if t >= g => BindingState::Gone,
            (Some(d), _) if t >= d => BindingState::Deleting,
            _ if t >= self.active_at => BindingState::Active,
            _ => BindingState::Provisioning,
        }
    }

    /// The region the data plane applies at `t` (§10), or `None` when the binding is not
    /// in force:
    ///
    /// - before `active_at`: the previous region (a fresh binding is not in force);
    /// - from `active_at`: the current region;
    /// - once deleted: what was in force at the deletion, until `gone_at`; a change still
    ///   propagating at the deletion is cancelled by it.
    pub fn region_in_force(&self, t: Timestamp) -> Option<&RegionKey> {
        let t = match (self.deleted_at, self.gone_at) {
            (Some(_), Some(g)) if t >= g => return None,
            (Some(d), _) if t > d => d,
            _ => t,
        };
        if t >= self.active_at {
            Some(&self.region)
        } else {
            self.previous_region.as_ref()
        }
    }

    /// The DLS view.
    pub fn view(&self) -> Binding {
        Binding {
            id: self.id,
            prefix_id: self.prefix_id.clone(),
            cidr: self.cidr,
            region_key: self.region.clone(),
        }
    }
}

/// A prefix binding as the DLS API returns it: `{id, prefix_id, cidr, region_key}`
/// (no status field, §5.3).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[schema(as = PrefixBinding)]
pub struct Binding {
    /// Identifier.
    pub id: BindingId,
    /// The prefix.
    pub prefix_id: PrefixId,
    /// Canonical CIDR.
    pub cidr: Cidr,
    /// The region (the latest requested, even while it propagates).
    pub region_key: RegionKey,
}

/// A region as the DLS API returns it (§5.1). The kind is not a response field; it is
/// kept here (skipped by serde) for filtering and callers that want it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Region {
    /// UUID.
    pub id: RegionId,
    /// Display name.
    pub name: String,
    /// Key.
    pub region_key: RegionKey,
    /// Creation time.
    pub created_on: Timestamp,
    /// Last change.
    pub modified_on: Timestamp,
    /// Definition version.
    pub version: u64,
    /// When this version was created.
    pub version_created_on: Timestamp,
    /// Managed or custom (not serialized).
    #[serde(skip, default = "managed")]
    pub kind: RegionKind,
}

fn managed() -> RegionKind {
    RegionKind::Managed
}

/// An Addressing service (`GET /addressing/services`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Service {
    /// Stable identifier.
    pub id: ServiceId,
    /// `CDN`, `Spectrum` or `Magic Transit`.
    pub name: String,
}

/// `provisioning.state` of a service binding.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum ProvisioningState {
    /// Still propagating.
    Provisioning,
    /// Deployed.
    Active,
}

/// `{state}` object of a service binding.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Provisioning {
    /// The state.
    pub state: ProvisioningState,
}

/// An Addressing service binding (§6.3): the prefix's base binding, or a DLS binding seen
/// through Addressing (same id).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ServiceBinding {
    /// The binding id: a DLS binding's UUID, or the base binding's 32-hex id.
    #[schema(value_type = BindingId)]
    pub id: String,
    /// CIDR.
    pub cidr: Cidr,
    /// Provisioning state at the time of the read.
    pub provisioning: Provisioning,
    /// The service.
    pub service_id: ServiceId,
    /// The service's name.
    pub service_name: String,
}

/// A prefix as Addressing returns it (§6.1).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[schema(as = Prefix)]
pub struct PrefixView {
    /// Identifier.
    pub id: PrefixId,
    /// Owner.
    pub account_id: AccountId,
    /// The prefix.
    pub cidr: Cidr,
    /// Origin ASN.
    #[schema(value_type = i64, minimum = 1, maximum = 4_294_967_295_u64)]
    pub asn: u32,
    /// Free text.
    pub description: String,
    /// `"P"` or `"V"`.
    pub approved: Approval,
    /// Always null here.
    #[schema(required = true)]
    pub loa_document_id: Option<String>,
    /// Deprecated field; true once approved.
    pub advertised: bool,
    /// Deprecated field.
    #[schema(required = true)]
    pub advertised_modified_at: Option<Timestamp>,
    /// BGP on demand (not modelled).
    pub on_demand_enabled: bool,
    /// BGP on demand (not modelled).
    pub on_demand_locked: bool,
    /// Whether Cloudflare may write the LOA document (LOA documents are not modelled:
    /// always false, as `loa_document_id` is always null).
    pub delegate_loa_creation: bool,
    /// IRR check: `"pending"` until the prefix is approved, then `"valid"` (Cloudflare
    /// also reports `missing`, `invalid`, `mismatch_asn`; the emulator checks nothing).
    #[schema(schema_with = crate::schema::validation_state)]
    pub irr_validation_state: String,
    /// RPKI check, as `irr_validation_state`.
    #[schema(schema_with = crate::schema::validation_state)]
    pub rpki_validation_state: String,
    /// Ownership check, as `irr_validation_state`.
    #[schema(schema_with = crate::schema::validation_state)]
    pub ownership_validation_state: String,
    /// The token a customer would publish to prove ownership: the prefix id in UUID
    /// form (stable, unique per prefix).
    pub ownership_validation_token: String,
    /// Creation time.
    pub created_at: Timestamp,
    /// Last change.
    pub modified_at: Timestamp,
}

impl Prefix {
    /// The Addressing view.
    pub fn view(&self) -> PrefixView {
        let validation = match self.approved {
            Approval::Approved => "valid",
            Approval::Pending => "pending",
        };
        PrefixView {
            id: self.id.clone(),
            account_id: self.account_id.clone(),
            cidr: self.cidr,
            asn: self.asn,
            description: self.description.clone(),
            approved: self.approved,
            loa_document_id: None,
            advertised: self.approved == Approval::Approved,
            advertised_modified_at: (self.approved == Approval::Approved)
                .then_some(self.modified_at),
            on_demand_enabled: false,
            on_demand_locked: false,
            delegate_loa_creation: false,
            irr_validation_state: validation.into(),
            rpki_validation_state: validation.into(),
            ownership_validation_state: validation.into(),
            ownership_validation_token: uuid_form(self.id.as_str()),
            created_at: self.created_at,
            modified_at: self.modified_at,
        }
    }
}

/// `id` as a UUID: already one (the demo prefix), or 32 hex digits grouped 8-4-4-4-12.
fn uuid_form(id: &str) -> String {
    if id.len() != 32 {
        return id.to_owned();
    }
    let (a, rest) = id.split_at(8);
    let (b, rest) = rest.split_at(4);
    let (c, rest) = rest.split_at(4);
    let (d, e) = rest.split_at(4);
    format!("{a}-{b}-{c}-{d}-{e}")
}

/// `zone` or `account` membership of an address map.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, ToSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum MembershipKind {
    /// A zone (takes priority over an account membership).
    Zone,
    /// An account.
    Account,
}

impl MembershipKind {
    /// Parses `zone` / `account`.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "zone" => Some(Self::Zone),
            "account" => Some(Self::Account),
            _ => None,
        }
    }
}

/// An IP on an address map.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct AddressMapIp {
    /// The address (canonical text when serialized: RFC 5952 for IPv6).
    #[serde(serialize_with = "canonical_ip_ser")]
    #[schema(schema_with = crate::schema::ip_address)]
    pub ip: IpAddr,
    /// When it was added.
    pub created_at: Timestamp,
}

fn canonical_ip_ser<S: serde::Serializer>(ip: &IpAddr, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&inregion_model::cidr::canonical_ip(*ip))
}

/// A membership of an address map.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Membership {
    /// Zone or account id (32 hex).
    #[schema(pattern = "^[0-9a-f]{32}$")]
    pub identifier: String,
    /// Zone or account.
    pub kind: MembershipKind,
    /// Always true here.
    pub can_delete: bool,
    /// When it was added.
    pub created_at: Timestamp,
}

/// An address map (§6.4).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct AddressMap {
    /// Identifier.
    pub id: AddressMapId,
    /// Owner (not serialized; implied by the path).
    #[serde(skip_serializing)]
    pub account_id: AccountId,
    /// Free text.
    #[schema(required = true)]
    pub description: Option<String>,
    /// SNI used when the client sends none.
    #[schema(schema_with = crate::schema::sni, required = true)]
    pub default_sni: Option<String>,
    /// Whether the map is applied.
    pub enabled: bool,
    /// False for Cloudflare-managed maps (never, here).
    pub can_delete: bool,
    /// False for Cloudflare-managed maps (never, here).
    pub can_modify_ips: bool,
    /// Creation time.
    pub created_at: Timestamp,
    /// Last change.
    pub modified_at: Timestamp,
    /// IPs, in insertion order.
    pub ips: Vec<AddressMapIp>,
    /// Memberships, in insertion order.
    pub memberships: Vec<Membership>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(active: i64, prev: Option<&str>, deleted: Option<(i64, i64)>) -> BindingRecord {
        BindingRecord {
            id: BindingId::random(),
            account_id: AccountId::random(),
            prefix_id: PrefixId::random(),
            cidr: Cidr::parse_strict("203.0.113.0/25").unwrap(),
            region: RegionKey::parse("eu").unwrap(),
            previous_region: prev.map(|p| RegionKey::parse(p).unwrap()),
            created_at: Timestamp::from_secs(0),
            changed_at: Timestamp::from_secs(5),
            active_at: Timestamp::from_secs(active),
            deleted_at: deleted.map(|d| Timestamp::from_secs(d.0)),
            gone_at: deleted.map(|d| Timestamp::from_secs(d.1)),
            version: 1,
        }
    }

    #[test]
    fn lifecycle_is_derived_from_timestamps() {
        let t = Timestamp::from_secs;
        let fresh = rec(10, None, None);
        assert_eq!(fresh.state_at(t(9)), BindingState::Provisioning);
        assert_eq!(fresh.region_in_force(t(9)), None);
        assert_eq!(fresh.state_at(t(10)), BindingState::Active);
        assert_eq!(fresh.region_in_force(t(10)).unwrap().as_str(), "eu");

        let patched = rec(10, Some("us"), None);
        assert_eq!(patched.region_in_force(t(9)).unwrap().as_str(), "us");
        assert_eq!(patched.region_in_force(t(10)).unwrap().as_str(), "eu");

        // Deleted while active: stays in force until the deletion has propagated.
        let del = rec(10, None, Some((20, 30)));
        assert_eq!(del.state_at(t(25)), BindingState::Deleting);
        assert_eq!(del.region_in_force(t(29)).unwrap().as_str(), "eu");
        assert_eq!(del.state_at(t(30)), BindingState::Gone);
        assert_eq!(del.region_in_force(t(30)), None);

        // Deleted while a PATCH propagated: the PATCH is cancelled, the old region stays.
        let del = rec(10, Some("us"), Some((7, 17)));
        assert_eq!(del.region_in_force(t(12)).unwrap().as_str(), "us");
        assert_eq!(del.region_in_force(t(17)), None);

        // Deleted before it ever became active: never in force.
        let del = rec(10, None, Some((7, 17)));
        assert_eq!(del.region_in_force(t(12)), None);
    }

    #[test]
    fn views_serialize_with_cloudflare_names() {
        let b = rec(10, None, None).view();
        let v = serde_json::to_value(&b).unwrap();
        let keys: BTreeSet<_> = v.as_object().unwrap().keys().cloned().collect();
        assert_eq!(
            keys,
            ["cidr", "id", "prefix_id", "region_key"]
                .into_iter()
                .map(String::from)
                .collect()
        );
        let r = Region {
            id: RegionId::random(),
            name: "Europe".into(),
            region_key: RegionKey::parse("eu").unwrap(),
            created_on: Timestamp::EPOCH,
            modified_on: Timestamp::EPOCH,
            version: 1,
            version_created_on: Timestamp::EPOCH,
            kind: RegionKind::Custom,
        };
        let v = serde_json::to_value(&r).unwrap();
        assert_eq!(v.as_object().unwrap().len(), 7);
        assert!(v.get("kind").is_none());
        let s = serde_json::to_value(ServiceBinding {
            id: "x".into(),
            cidr: Cidr::parse_strict("2001:db8::/48").unwrap(),
            provisioning: Provisioning {
                state: ProvisioningState::Provisioning,
            },
            service_id: ServiceId::random(),
            service_name: "CDN".into(),
        })
        .unwrap();
        assert_eq!(s["provisioning"]["state"], "provisioning");
        assert_eq!(s["cidr"], "2001:db8::/48");
    }
}
