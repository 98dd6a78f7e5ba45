//! OpenAPI schemas of the view and input fields that are not a model type of their own
//! (`inregion-model`'s `schema` module has those); the derives on the records
//! and inputs refer here with `#[schema(schema_with = ...)]`.

use utoipa::openapi::schema::{
    ArrayBuilder, KnownFormat, ObjectBuilder, OneOfBuilder, Schema, SchemaFormat, Type,
};

/// An IP address in strict text: a dotted quad without leading zeros or any RFC 4291
/// IPv6 text without a zone id (answers show RFC 5952).
pub fn ip_address() -> Schema {
    OneOfBuilder::new()
        .item(
            ObjectBuilder::new()
                .schema_type(Type::String)
                .format(Some(SchemaFormat::KnownFormat(KnownFormat::Ipv4))),
        )
        .item(
            ObjectBuilder::new()
                .schema_type(Type::String)
                .format(Some(SchemaFormat::KnownFormat(KnownFormat::Ipv6))),
        )
        .description(Some("an IPv4 or IPv6 address"))
        .into()
}

/// `ips` of an address map create: addresses, each as [`ip_address`].
pub fn ip_list() -> Schema {
    ArrayBuilder::new()
        .items(utoipa::openapi::RefOr::T(ip_address()))
        .into()
}

/// `irr_validation_state` and its siblings: `pending` until the prefix is approved, then
/// `valid` (Cloudflare also reports `missing`, `invalid`, `mismatch_asn`; the emulator
/// checks nothing, so it never does).
pub fn validation_state() -> Schema {
    ObjectBuilder::new()
        .schema_type(Type::String)
        .enum_values(Some(["pending", "valid"]))
        .into()
}

/// `default_sni`: null, or text without whitespace ([`crate::inputs::is_sni`]).
pub fn sni() -> Schema {
    ObjectBuilder::new()
        .schema_type(utoipa::openapi::schema::SchemaType::from_iter([
            Type::String,
            Type::Null,
        ]))
        .pattern(Some(crate::inputs::SNI_PATTERN))
        .description(Some(
            "SNI used when the client sends none: a hostname (no whitespace)",
        ))
        .into()
}
