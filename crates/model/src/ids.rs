//! Identifiers, each with a checked constructor.
//!
//! | type | form | source |
//! | --- | --- | --- |
//! | [`AccountId`] | 32 lower-case hex | contract §1 |
//! | [`PrefixId`] | 32 lower-case hex, or a UUID (the seed's demo prefix) | §1 |
//! | [`BindingId`] | UUID (also accepted as 32 hex, the Addressing form) | §1 |
//! | [`RegionId`] | UUID | §1 |
//! | [`AddressMapId`], [`TokenId`], [`ServiceId`] | 32 lower-case hex | Addressing/our choice |

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::fmt;

/// Why an identifier was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{kind} {value:?} is not a valid identifier ({expected})")]
pub struct IdError {
    /// Which kind of identifier.
    pub kind: &'static str,
    /// The refused text (cut to 80 characters).
    pub value: String,
    /// The expected form.
    pub expected: &'static str,
}

fn is_hex32(s: &str) -> bool {
    s.len() == 32
        && s.bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

fn is_lower_uuid(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() == 36
        && b.iter().enumerate().all(|(i, &c)| match i {
            8 | 13 | 18 | 23 => c == b'-',
            _ => c.is_ascii_digit() || (b'a'..=b'f').contains(&c),
        })
}

fn cut(s: &str) -> String {
    s.chars().take(80).collect()
}

/// Fresh random 32-hex text (a v4 UUID without hyphens).
fn random_hex32() -> String {
    uuid::Uuid::new_v4().simple().to_string()
}

macro_rules! hex32_id {
    ($(#[$doc:meta])* $t:ident, $kind:literal) => {
        $(#[$doc])*
        #[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $t(String);

        impl $t {
            /// Parses exactly 32 lower-case hex characters.
            pub fn parse(s: &str) -> Result<Self, IdError> {
                if is_hex32(s) {
                    Ok(Self(s.to_owned()))
                } else {
                    Err(IdError { kind: $kind, value: cut(s), expected: "32 lower-case hex characters" })
                }
            }

            /// A fresh random identifier.
            pub fn random() -> Self {
                Self(random_hex32())
            }

            /// The identifier as text.
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }
        id_traits!($t);
    };
}

macro_rules! id_traits {
    ($t:ident) => {
        impl fmt::Display for $t {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }
        impl fmt::Debug for $t {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}({:?})", stringify!($t), self.as_str())
            }
        }
        impl std::str::FromStr for $t {
            type Err = IdError;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                Self::parse(s)
            }
        }
        impl AsRef<str> for $t {
            fn as_ref(&self) -> &str {
                self.as_str()
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

hex32_id!(
    /// A Cloudflare account identifier: 32 lower-case hex characters.
    AccountId,
    "account id"
);
hex32_id!(
    /// An address map identifier: 32 lower-case hex characters.
    AddressMapId,
    "address map id"
);
hex32_id!(
    /// An API token's identifier (not its secret): 32 lower-case hex characters.
    TokenId,
    "token id"
);
hex32_id!(
    /// An Addressing service identifier (CDN, Spectrum, Magic Transit): 32 hex.
    ServiceId,
    "service id"
);

/// A BYOIP prefix identifier: 32 lower-case hex characters (Addressing's form), or a
/// lower-case hyphenated UUID (the seed's demo prefix `a1b2c3d4-e5f6-7890-abcd-ef1234567890`).
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PrefixId(String);

impl PrefixId {
    /// The longest text accepted on input (the DLS create body's limit, §5.5).
    pub const MAX_INPUT_LEN: usize = 64;

    /// Parses 32 lower-case hex characters or a lower-case hyphenated UUID.
    pub fn parse(s: &str) -> Result<Self, IdError> {
        if is_hex32(s) || is_lower_uuid(s) {
            Ok(Self(s.to_owned()))
        } else {
            Err(IdError {
                kind: "prefix id",
                value: cut(s),
                expected: "32 lower-case hex characters or a UUID",
            })
        }
    }

    /// A fresh random 32-hex identifier.
    pub fn random() -> Self {
        Self(random_hex32())
    }

    /// The identifier as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}
id_traits!(PrefixId);

macro_rules! uuid_id {
    ($(#[$doc:meta])* $t:ident, $kind:literal) => {
        $(#[$doc])*
        #[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $t(uuid::Uuid);

        impl $t {
            /// Parses a UUID, hyphenated (`8-4-4-4-12`) or as 32 hex characters; either
            /// case. Displayed hyphenated and lower case.
            pub fn parse(s: &str) -> Result<Self, IdError> {
                let ok = s.len() == 36 || s.len() == 32;
                match uuid::Uuid::try_parse(s) {
                    Ok(u) if ok => Ok(Self(u)),
                    _ => Err(IdError { kind: $kind, value: cut(s), expected: "a UUID" }),
                }
            }

            /// A fresh random (v4) identifier.
            pub fn random() -> Self {
                Self(uuid::Uuid::new_v4())
            }

            /// Wraps a UUID.
            pub const fn from_uuid(u: uuid::Uuid) -> Self {
                Self(u)
            }

            /// The UUID.
            pub const fn as_uuid(&self) -> uuid::Uuid {
                self.0
            }

            /// The hyphenated lower-case text.
            pub fn as_str(&self) -> String {
                self.0.hyphenated().to_string()
            }
        }

        impl fmt::Display for $t {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                fmt::Display::fmt(&self.0.hyphenated(), f)
            }
        }
        impl fmt::Debug for $t {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}({})", stringify!($t), self.0.hyphenated())
            }
        }
        impl std::str::FromStr for $t {
            type Err = IdError;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                Self::parse(s)
            }
        }
        impl Serialize for $t {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.collect_str(self)
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

uuid_id!(
    /// A prefix binding's identifier (UUID). The DLS binding and its Addressing service
    /// binding share it (contract §1).
    BindingId,
    "binding id"
);
uuid_id!(
    /// A region's identifier (UUID).
    RegionId,
    "region id"
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_ids() {
        let s = "0123456789abcdef0123456789abcdef";
        assert_eq!(AccountId::parse(s).unwrap().as_str(), s);
        for bad in [
            "",
            "0123456789ABCDEF0123456789ABCDEF",
            "0123456789abcdef0123456789abcde",
            "0123456789abcdef0123456789abcdef0",
            "0123456789abcdef0123456789abcdeg",
        ] {
            assert!(AccountId::parse(bad).is_err(), "{bad}");
        }
        assert_eq!(AccountId::random().as_str().len(), 32);
        assert!(AccountId::parse(AccountId::random().as_str()).is_ok());
    }

    #[test]
    fn prefix_ids_accept_both_forms() {
        assert!(PrefixId::parse("a1b2c3d4-e5f6-7890-abcd-ef1234567890").is_ok());
        assert!(PrefixId::parse("a1b2c3d4e5f67890abcdef1234567890").is_ok());
        assert!(PrefixId::parse("A1B2C3D4-E5F6-7890-ABCD-EF1234567890").is_err());
        assert!(PrefixId::parse("a1b2c3d4-e5f6-7890-abcd-ef123456789").is_err());
        assert!(PrefixId::parse("nope").is_err());
    }

    #[test]
    fn uuid_ids() {
        let b = BindingId::parse("F0E1D2C3-B4A5-6789-0ABC-DEF123456789").unwrap();
        assert_eq!(b.to_string(), "f0e1d2c3-b4a5-6789-0abc-def123456789");
        assert_eq!(
            BindingId::parse("f0e1d2c3b4a567890abcdef123456789").unwrap(),
            b
        );
        for bad in [
            "",
            "{f0e1d2c3-b4a5-6789-0abc-def123456789}",
            "urn:uuid:f0e1d2c3-b4a5-6789-0abc-def123456789",
            "f0e1d2c3-b4a5-6789-0abc-def12345678",
        ] {
            assert!(BindingId::parse(bad).is_err(), "{bad}");
        }
        let j = serde_json::to_string(&b).unwrap();
        assert_eq!(serde_json::from_str::<BindingId>(&j).unwrap(), b);
    }
}
