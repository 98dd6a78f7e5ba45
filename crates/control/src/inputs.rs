//! Request inputs as the HTTP layer hands them over: raw, optional strings.
//!
//! The HTTP layer decodes the JSON body and reports 400 / 1100 for a body that is not an
//! object or a field of the wrong JSON type; everything else (missing or empty fields,
//! patterns, CIDR syntax, ...) is checked here, so that the rules have one home.

use serde::{Deserialize, Serialize};

/// `POST /dls/regional_services/prefix_bindings` body. `None` = field absent.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CreateBinding {
    /// `prefix_id`.
    pub prefix_id: Option<String>,
    /// `cidr`.
    pub cidr: Option<String>,
    /// `region_key`.
    pub region_key: Option<String>,
}

impl CreateBinding {
    /// All three fields present.
    pub fn new(prefix_id: &str, cidr: &str, region_key: &str) -> Self {
        Self {
            prefix_id: Some(prefix_id.to_owned()),
            cidr: Some(cidr.to_owned()),
            region_key: Some(region_key.to_owned()),
        }
    }
}

/// `PATCH /dls/regional_services/prefix_bindings/{id}` body.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UpdateBinding {
    /// `region_key` (`None` = absent).
    pub region_key: Option<String>,
    /// Names of any other keys present in the body (→ 400 / 1113).
    pub other_fields: Vec<String>,
}

impl UpdateBinding {
    /// A body with just `region_key`.
    pub fn region(region_key: &str) -> Self {
        Self {
            region_key: Some(region_key.to_owned()),
            other_fields: Vec::new(),
        }
    }
}

/// `POST /addressing/prefixes` body.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CreatePrefix {
    /// `cidr`.
    pub cidr: Option<String>,
    /// `asn` (the JSON number, as received; range-checked here).
    pub asn: Option<i64>,
    /// `description`.
    pub description: Option<String>,
}

/// One element of `memberships` on address-map create.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MembershipInput {
    /// Zone or account id.
    pub identifier: String,
    /// `zone` or `account`.
    pub kind: String,
}

/// `POST /addressing/address_maps` body.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CreateAddressMap {
    /// `description`.
    pub description: Option<String>,
    /// `enabled` (default false).
    pub enabled: Option<bool>,
    /// `default_sni`.
    pub default_sni: Option<String>,
    /// `ips`, as received.
    #[serde(default)]
    pub ips: Vec<String>,
    /// `memberships`.
    #[serde(default)]
    pub memberships: Vec<MembershipInput>,
}

/// `PATCH /addressing/address_maps/{id}` body. Outer `None` = key absent; inner `None` =
/// JSON null (clears the field).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UpdateAddressMap {
    /// `description`.
    pub description: Option<Option<String>>,
    /// `enabled`.
    pub enabled: Option<bool>,
    /// `default_sni`.
    pub default_sni: Option<Option<String>>,
}
