//! # inregion-model: typed domain values and reference data
//!
//! The values every other inregion crate passes around, each with a checked constructor,
//! so that code past the boundary never re-validates: parse once, then trust the type.
//!
//! ```text
//!  codes      CountryCode, Iata, RegionKey     (short checked strings)
//!  geo        GeoPoint + great-circle distance
//!  reference  DataCenter, RegionDefinition, ReferenceData (embedded data files)
//!  time       Timestamp (UTC, µs, RFC 3339), Clock, SystemClock, ManualClock
//!  ids        AccountId, PrefixId, BindingId, RegionId, AddressMapId, TokenId, ServiceId
//!  cidr       Cidr: strict CIDR parsing, RFC 5952 canonical text
//!  access     Permission, PermissionSet, Entitlement, Role
//! ```
//!
//! Invariants: a value of these types is always valid (constructors check; `serde`
//! deserialization goes through the same checks). Nothing here does I/O at run time: the
//! reference data is embedded with `include_str!` and parsed on demand.
//!
//! Start with [`ReferenceData::embedded`].
//!
//! ```
//! use inregion_model::{ReferenceData, RegionKey};
//! let refdata = ReferenceData::embedded();
//! let eu = RegionKey::parse("eu").unwrap();
//! let members = refdata.members_of(&eu).unwrap();
//! assert!(members.iter().any(|&i| refdata.data_centers()[i].code.as_str() == "FRA"));
//! ```

#![warn(missing_docs)]

pub mod access;
pub mod cidr;
pub mod codes;
pub mod geo;
pub mod ids;
pub mod reference;
pub mod schema;
pub mod time;

pub use codes::{CodeError, CountryCode, Iata, RegionKey};
pub use geo::{GeoPoint, GeoPointError};
pub use reference::{DataCenter, ReferenceData, ReferenceDataError, RegionDefinition, RegionKind};

pub use access::{AccessNameError, Entitlement, Permission, PermissionSet, Role};
pub use cidr::{Cidr, CidrError};
pub use ids::{
    AccountId, AddressMapId, BindingId, IdError, PrefixId, RegionId, ServiceId, TokenId,
};
pub use time::{Clock, ManualClock, SystemClock, Timestamp, TimestampError};
