//! # inregion-model: typed domain values and reference data
//!
//! The values every other inregion crate passes around, each with a checked constructor,
//! so that code past the boundary never re-validates: parse once, then trust the type.
//!
//! ```text
//!  codes      CountryCode, Iata, RegionKey     (short checked strings)
//!  geo        GeoPoint + great-circle distance
//!  reference  DataCenter, RegionDefinition, ReferenceData (embedded data files)
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

pub mod codes;
pub mod geo;
pub mod reference;

pub use codes::{CodeError, CountryCode, Iata, RegionKey};
pub use geo::{GeoPoint, GeoPointError};
pub use reference::{DataCenter, ReferenceData, ReferenceDataError, RegionDefinition, RegionKind};
