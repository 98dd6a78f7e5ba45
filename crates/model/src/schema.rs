//! OpenAPI schemas of the model's text types, written beside their parsers so that the
//! served document says what the parsers enforce.
//!
//! Each pattern here is the parser's rule as a regular expression; the `ids` fuzz target
//! (`crates/fuzz`) checks every pattern against its parser on arbitrary text, in both
//! directions. Where a rule is not a regular language in practice (CIDR text: strict
//! IPv6 forms and "no host bits"), the schema names a `format` and spells the rule out
//! in its description instead of carrying a looser pattern that would admit refused text.

use crate::{
    AccountId, AddressMapId, BindingId, Cidr, CountryCode, Entitlement, Iata, Permission, PrefixId,
    RegionId, RegionKey, Role, ServiceId, Timestamp, TokenId,
};
use utoipa::openapi::schema::{KnownFormat, ObjectBuilder, Schema, SchemaFormat, Type};
use utoipa::openapi::RefOr;
use utoipa::{PartialSchema, ToSchema};

/// 32 lower-case hex characters: account, address map, token, service, zone ids.
pub const HEX32_PATTERN: &str = "^[0-9a-f]{32}$";
/// A binding id: a UUID, hyphenated or as 32 hex characters, either case.
pub const BINDING_ID_PATTERN: &str = "^([0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}|[0-9a-fA-F]{32})$";
/// A region id: a UUID (as [`BINDING_ID_PATTERN`]).
pub const REGION_ID_PATTERN: &str = BINDING_ID_PATTERN;
/// A prefix id: 32 lower-case hex characters or a lower-case hyphenated UUID.
pub const PREFIX_ID_PATTERN: &str =
    "^([0-9a-f]{32}|[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})$";
/// A region key: 1–128 characters of `a-z`, `0-9`, `_`, `-`.
pub const REGION_KEY_PATTERN: &str = "^[a-z0-9_-]{1,128}$";
/// An ISO 3166-1 alpha-2 country code.
pub const COUNTRY_PATTERN: &str = "^[A-Z]{2}$";
/// A data center's IATA code.
pub const IATA_PATTERN: &str = "^[A-Z0-9]{3}$";
/// The custom `format` of CIDR text (no JSON Schema format covers it).
pub const CIDR_FORMAT: &str = "cidr";

/// A string schema with a pattern and a description.
pub fn pattern_string(pattern: &str, description: &str) -> Schema {
    ObjectBuilder::new()
        .schema_type(Type::String)
        .pattern(Some(pattern))
        .description(Some(description))
        .into()
}

fn text(pattern: &str, description: &str) -> RefOr<Schema> {
    pattern_string(pattern, description).into()
}

macro_rules! schema {
    ($t:ty, $body:expr) => {
        impl PartialSchema for $t {
            fn schema() -> RefOr<Schema> {
                $body
            }
        }
        impl ToSchema for $t {}
    };
}

schema!(
    AccountId,
    text(HEX32_PATTERN, "account id: 32 lower-case hex characters")
);
schema!(
    AddressMapId,
    text(
        HEX32_PATTERN,
        "address map id: 32 lower-case hex characters"
    )
);
schema!(
    TokenId,
    text(HEX32_PATTERN, "token id: 32 lower-case hex characters")
);
schema!(
    ServiceId,
    text(HEX32_PATTERN, "service id: 32 lower-case hex characters")
);
schema!(
    PrefixId,
    text(
        PREFIX_ID_PATTERN,
        "prefix id: 32 lower-case hex characters, or a lower-case hyphenated UUID"
    )
);
schema!(
    BindingId,
    ObjectBuilder::new()
        .schema_type(Type::String)
        .pattern(Some(BINDING_ID_PATTERN))
        .description(Some(
            "binding id: a UUID (answers always show it hyphenated, lower case)"
        ))
        .into()
);
schema!(
    RegionId,
    ObjectBuilder::new()
        .schema_type(Type::String)
        .pattern(Some(REGION_ID_PATTERN))
        .description(Some("region id: a UUID"))
        .into()
);
schema!(
    RegionKey,
    ObjectBuilder::new()
        .schema_type(Type::String)
        .pattern(Some(REGION_KEY_PATTERN))
        .min_length(Some(1))
        .max_length(Some(128))
        .description(Some("region key: 1-128 characters of a-z, 0-9, '_' or '-'"))
        .examples(["eu"])
        .into()
);
schema!(
    CountryCode,
    text(COUNTRY_PATTERN, "ISO 3166-1 alpha-2 country code")
);
schema!(Iata, text(IATA_PATTERN, "IATA code of a data center"));
schema!(
    Timestamp,
    ObjectBuilder::new()
        .schema_type(Type::String)
        .format(Some(SchemaFormat::KnownFormat(KnownFormat::DateTime)))
        .description(Some("RFC 3339, UTC, microsecond precision"))
        .examples(["2026-01-13T23:59:45.276558Z"])
        .into()
);
schema!(Cidr, cidr_schema());

/// CIDR text (contract §7): the rules of [`Cidr::parse_strict`], which no regular
/// expression of reasonable size states exactly.
pub fn cidr_schema() -> RefOr<Schema> {
    ObjectBuilder::new()
        .schema_type(Type::String)
        .format(Some(SchemaFormat::Custom(CIDR_FORMAT.into())))
        .min_length(Some(4))
        .max_length(Some(64))
        .description(Some(
            "CIDR: an address, '/', a decimal length without leading zeros. IPv4: four decimal \
             octets without leading zeros, length 0-32. IPv6: any RFC 4291 text (either case, \
             '::', an embedded dotted quad), no zone id, length 0-128. No whitespace, no host \
             bits. Answers show the canonical form (RFC 5952 for IPv6).",
        ))
        .examples(["203.0.113.0/24"])
        .into()
}

/// A closed set of Cloudflare names (permission groups, entitlements, roles).
fn names(names: impl IntoIterator<Item = &'static str>, description: &str) -> RefOr<Schema> {
    ObjectBuilder::new()
        .schema_type(Type::String)
        .enum_values(Some(names))
        .description(Some(description))
        .into()
}

schema!(
    Permission,
    names(
        Permission::ALL.iter().map(|p| p.name()),
        "a permission group, by Cloudflare's name"
    )
);
schema!(
    Entitlement,
    names(
        Entitlement::ALL.iter().map(|p| p.name()),
        "an account entitlement"
    )
);
schema!(
    Role,
    names(
        Role::ALL.iter().map(|p| p.name()),
        "an account role of a user"
    )
);
