//! Request inputs as the HTTP layer hands them over: raw, optional strings.
//!
//! The HTTP layer decodes the JSON body and reports 400 / 1100 for a body that is not an
//! object or a field of the wrong JSON type; everything else (missing or empty fields,
//! patterns, CIDR syntax, ...) is checked here, so that the rules have one home.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// `POST /dls/regional_services/prefix_bindings` body (`None`: the field is absent or
/// null; the control plane reports it missing).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[schema(as = CreatePrefixBinding)]
pub struct CreateBinding {
    /// `prefix_id`: the BYOIP prefix the CIDR belongs to.
    #[schema(value_type = inregion_model::PrefixId, required = true)]
    pub prefix_id: Option<String>,
    /// `cidr`: the prefix itself or a more specific CIDR inside it.
    #[schema(value_type = inregion_model::Cidr, required = true)]
    pub cidr: Option<String>,
    /// `region_key`: a managed region's key or one of the account's custom regions.
    #[schema(value_type = inregion_model::RegionKey, required = true)]
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

/// `PATCH /dls/regional_services/prefix_bindings/{id}` body: `region_key` and nothing
/// else.
#[derive(Debug, Clone, Default, PartialEq, Eq, ToSchema)]
#[schema(as = UpdatePrefixBinding)]
#[serde(deny_unknown_fields)]
pub struct UpdateBinding {
    /// `region_key`: the binding's new region.
    #[schema(value_type = inregion_model::RegionKey, required = true)]
    pub region_key: Option<String>,
    /// Names of any other keys present in the body (→ 400 / 1113).
    #[schema(ignore)]
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
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct CreatePrefix {
    /// `cidr`.
    #[schema(value_type = inregion_model::Cidr, required = true)]
    pub cidr: Option<String>,
    /// `asn` (the JSON number, as received; range-checked here: 1 to 2^32 - 1). A
    /// number with a zero fraction (`64496.0`) is that integer: JSON Schema's `integer`
    /// admits it, and so do JSON parsers that read every number as a double.
    #[schema(value_type = i64, required = true, minimum = 1, maximum = 4_294_967_295_u64)]
    #[serde(default, deserialize_with = "integral")]
    pub asn: Option<i64>,
    /// `description` (null is the same as absent).
    pub description: Option<String>,
}

/// An optional integer that may be written with a zero fraction; any other fraction, or
/// a value beyond `i64`, is the wrong JSON type (400 / 1100).
fn integral<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<i64>, D::Error> {
    use serde::de::Error;
    match Option::<serde_json::Number>::deserialize(d)? {
        None => Ok(None),
        Some(n) => n
            .as_i64()
            .or_else(|| {
                n.as_f64()
                    .filter(|f| f.fract() == 0.0 && f.abs() < 9.0e18)
                    .map(|f| f as i64)
            })
            .map(Some)
            .ok_or_else(|| {
                D::Error::custom(format!("invalid type: number {n}, expected an integer"))
            }),
    }
}

/// One element of `memberships` on address-map create.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct MembershipInput {
    /// Zone or account id (required: missing → 400 / 1101 naming
    /// `/memberships/{n}/identifier`).
    #[serde(default)]
    #[schema(value_type = String, required = true, pattern = "^[0-9a-f]{32}$")]
    pub identifier: Option<String>,
    /// `zone` or `account` (required, like `identifier`).
    #[serde(default)]
    #[schema(value_type = crate::MembershipKind, required = true)]
    pub kind: Option<String>,
}

/// `POST /addressing/address_maps` body.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct CreateAddressMap {
    /// `description` (null is the same as absent).
    pub description: Option<String>,
    /// `enabled` (default false; null is the same as absent).
    pub enabled: Option<bool>,
    /// `default_sni` (null is the same as absent).
    #[schema(schema_with = crate::schema::sni)]
    pub default_sni: Option<String>,
    /// `ips`, as received.
    #[serde(default)]
    #[schema(schema_with = crate::schema::ip_list)]
    pub ips: Vec<String>,
    /// `memberships`.
    #[serde(default)]
    pub memberships: Vec<MembershipInput>,
}

/// `PATCH /addressing/address_maps/{id}` body. Outer `None` = key absent; inner `None` =
/// JSON null (clears the field). Any other key is refused (400 / 1113): IPs and
/// memberships have their own routes.
#[derive(Debug, Clone, Default, PartialEq, Eq, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateAddressMap {
    /// `description` (null clears it).
    #[schema(value_type = Option<String>, required = false)]
    pub description: Option<Option<String>>,
    /// `enabled` (null is the same as absent).
    pub enabled: Option<bool>,
    /// `default_sni` (null clears it).
    #[schema(schema_with = crate::schema::sni, required = false)]
    pub default_sni: Option<Option<String>>,
    /// Names of any other keys present in the body (→ 400 / 1113, like the binding
    /// PATCH's `other_fields`).
    #[schema(ignore)]
    pub other_fields: Vec<String>,
}

impl UpdateAddressMap {
    /// The only keys the body may carry.
    pub const FIELDS: [&'static str; 3] = ["description", "enabled", "default_sni"];
}

/// The `default_sni` rule (create and PATCH of an address map): a hostname-like text,
/// here "no whitespace" (Unicode `White_Space`, as `char::is_whitespace`), the one
/// thing the emulator checks. [`SNI_PATTERN`] states it for the OpenAPI document.
pub fn is_sni(s: &str) -> bool {
    !s.chars().any(char::is_whitespace)
}

/// [`is_sni`] as a regular expression: none of the Unicode `White_Space` characters.
pub const SNI_PATTERN: &str =
    "^[^\\t\\n\\u000b\\f\\r \\u0085\\u00a0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000]*$";

/// A JSON field of the wrong type (the HTTP layer answers 400 / 1100).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("field {0} has the wrong JSON type")]
pub struct WrongType(pub String);

type JsonObject = serde_json::Map<String, serde_json::Value>;

/// A string field: absent or `null` → `None`; a string → `Some`; anything else → error.
fn str_field(obj: &JsonObject, key: &str) -> Result<Option<String>, WrongType> {
    match obj.get(key) {
        None | Some(serde_json::Value::Null) => Ok(None),
        Some(serde_json::Value::String(s)) => Ok(Some(s.clone())),
        Some(_) => Err(WrongType(key.to_owned())),
    }
}

impl CreateBinding {
    /// From a decoded JSON object (unknown keys ignored, §1). A non-string value for one
    /// of the three fields is a [`WrongType`] (1100).
    pub fn from_json_object(obj: &JsonObject) -> Result<Self, WrongType> {
        Ok(Self {
            prefix_id: str_field(obj, "prefix_id")?,
            cidr: str_field(obj, "cidr")?,
            region_key: str_field(obj, "region_key")?,
        })
    }
}

impl UpdateBinding {
    /// From a decoded JSON object: `region_key` must be a string when present; every
    /// other key is recorded in `other_fields` (→ 1113).
    pub fn from_json_object(obj: &JsonObject) -> Result<Self, WrongType> {
        Ok(Self {
            region_key: str_field(obj, "region_key")?,
            other_fields: obj.keys().filter(|k| *k != "region_key").cloned().collect(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn obj(s: &str) -> JsonObject {
        serde_json::from_str(s).unwrap()
    }

    #[test]
    fn json_objects() {
        let c = CreateBinding::from_json_object(&obj(
            r#"{"prefix_id":"p","cidr":"c","region_key":"eu","extra":1}"#,
        ))
        .unwrap();
        assert_eq!(c, CreateBinding::new("p", "c", "eu"));
        assert_eq!(
            CreateBinding::from_json_object(&obj(r#"{"cidr":24}"#)),
            Err(WrongType("cidr".into()))
        );
        assert_eq!(
            CreateBinding::from_json_object(&obj(r#"{}"#)).unwrap(),
            CreateBinding::default()
        );
        let u = UpdateBinding::from_json_object(&obj(r#"{"region_key":"us","cidr":"x"}"#)).unwrap();
        assert_eq!(u.region_key.as_deref(), Some("us"));
        assert_eq!(u.other_fields, vec!["cidr".to_string()]);
    }
}
