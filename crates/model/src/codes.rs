//! Short, checked codes: ISO country codes, IATA data-center codes and region keys.

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::fmt;

/// Why a code was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CodeError {
    /// Not two ASCII upper-case letters.
    #[error("country code {0:?} must be two upper-case letters (ISO 3166-1 alpha-2)")]
    Country(String),
    /// Not three ASCII upper-case letters or digits.
    #[error("data-center code {0:?} must be three upper-case letters (IATA)")]
    Iata(String),
    /// Fails `^[a-z0-9_-]{1,128}$`.
    #[error("region key {0:?} must be 1-128 characters of a-z, 0-9, '_' or '-'")]
    RegionKey(String),
}

/// An ISO 3166-1 alpha-2 country code, such as `DE`. Always upper case.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct CountryCode([u8; 2]);

impl CountryCode {
    /// Parses exactly two ASCII upper-case letters.
    pub fn parse(s: &str) -> Result<Self, CodeError> {
        match s.as_bytes() {
            [a, b] if a.is_ascii_uppercase() && b.is_ascii_uppercase() => Ok(Self([*a, *b])),
            _ => Err(CodeError::Country(s.to_owned())),
        }
    }

    /// The code as text.
    pub fn as_str(&self) -> &str {
        // Invariant: both bytes are ASCII upper-case letters.
        std::str::from_utf8(&self.0).unwrap_or("??")
    }
}

/// A data center's IATA code, such as `FRA`. Always upper case, three characters.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Iata([u8; 3]);

impl Iata {
    /// Parses exactly three ASCII upper-case letters or digits.
    pub fn parse(s: &str) -> Result<Self, CodeError> {
        match s.as_bytes() {
            [a, b, c]
                if [a, b, c]
                    .iter()
                    .all(|x| x.is_ascii_uppercase() || x.is_ascii_digit()) =>
            {
                Ok(Self([*a, *b, *c]))
            }
            _ => Err(CodeError::Iata(s.to_owned())),
        }
    }

    /// The code as text.
    pub fn as_str(&self) -> &str {
        // Invariant: all bytes are ASCII.
        std::str::from_utf8(&self.0).unwrap_or("???")
    }
}

/// A region key, such as `eu`: 1–128 characters matching `^[a-z0-9_-]+$`
/// (Cloudflare's OpenAPI pattern). Case-sensitive: `EU` is refused, not folded.
///
/// Shared text (`Arc<str>`): a key is cloned into every binding and every data-plane
/// snapshot entry, so a clone is a reference-count increment, not an allocation.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RegionKey(std::sync::Arc<str>);

impl RegionKey {
    /// Checks the pattern and the length.
    pub fn parse(s: &str) -> Result<Self, CodeError> {
        let ok = (1..=128).contains(&s.len())
            && s.bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-');
        if ok {
            Ok(Self(s.into()))
        } else {
            Err(CodeError::RegionKey(s.to_owned()))
        }
    }

    /// The key as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

macro_rules! text_code {
    ($t:ty) => {
        impl fmt::Display for $t {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }
        impl fmt::Debug for $t {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{:?}", self.as_str())
            }
        }
        impl std::str::FromStr for $t {
            type Err = CodeError;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                Self::parse(s)
            }
        }
        impl Serialize for $t {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(self.as_str())
            }
        }
        impl<'de> Deserialize<'de> for $t {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let s = String::deserialize(d)?;
                Self::parse(&s).map_err(serde::de::Error::custom)
            }
        }
    };
}
text_code!(CountryCode);
text_code!(Iata);
text_code!(RegionKey);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn country_codes() {
        assert_eq!(CountryCode::parse("DE").unwrap().as_str(), "DE");
        for bad in ["de", "D", "DEU", "", "D1"] {
            assert!(CountryCode::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn iata_codes() {
        assert_eq!(Iata::parse("FRA").unwrap().to_string(), "FRA");
        for bad in ["fra", "FR", "FRAA", "", "F-A"] {
            assert!(Iata::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn region_keys() {
        for good in ["eu", "us", "isoeu", "a", "x_y-1", &"a".repeat(128)] {
            assert!(RegionKey::parse(good).is_ok(), "{good}");
        }
        for bad in ["", "EU", "e u", "eu!", "é", &"a".repeat(129)] {
            assert!(RegionKey::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn serde_round_trip_checks_on_the_way_in() {
        let k: RegionKey =
            toml::from_str::<std::collections::BTreeMap<String, RegionKey>>("k = \"eu\"")
                .unwrap()
                .remove("k")
                .unwrap();
        assert_eq!(k.as_str(), "eu");
        assert!(
            toml::from_str::<std::collections::BTreeMap<String, RegionKey>>("k = \"EU\"").is_err()
        );
    }
}
