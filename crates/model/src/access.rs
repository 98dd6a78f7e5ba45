//! Permission groups, account entitlements and user roles (contract §3).

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::fmt;

/// Why a permission, entitlement or role name was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown {kind} {value:?}")]
pub struct AccessNameError {
    /// "permission group", "entitlement" or "role".
    pub kind: &'static str,
    /// The refused text.
    pub value: String,
}

macro_rules! named_enum {
    ($(#[$doc:meta])* $t:ident, $kind:literal, { $($(#[$vdoc:meta])* $v:ident = $name:literal,)* }) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum $t {
            $($(#[$vdoc])* $v,)*
        }

        impl $t {
            /// Every value, in declaration order.
            pub const ALL: &'static [$t] = &[$($t::$v,)*];

            /// Cloudflare's name for it.
            pub fn name(self) -> &'static str {
                match self { $($t::$v => $name,)* }
            }

            /// Parses Cloudflare's name (exact, case-sensitive).
            pub fn parse(s: &str) -> Result<Self, AccessNameError> {
                match s {
                    $($name => Ok($t::$v),)*
                    _ => Err(AccessNameError { kind: $kind, value: s.to_owned() }),
                }
            }
        }

        impl fmt::Display for $t {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.name())
            }
        }
        impl std::str::FromStr for $t {
            type Err = AccessNameError;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                Self::parse(s)
            }
        }
        impl Serialize for $t {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(self.name())
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

named_enum!(
    /// An API token permission group, by Cloudflare's name (§3.1).
    Permission, "permission group", {
        /// `DLS: Read` — list/get regions and bindings.
        DlsRead = "DLS: Read",
        /// `DLS: Write` — also reads; writes need `IP Prefixes: Write` too.
        DlsWrite = "DLS: Write",
        /// `IP Prefixes: Read`.
        IpPrefixesRead = "IP Prefixes: Read",
        /// `IP Prefixes: Write`.
        IpPrefixesWrite = "IP Prefixes: Write",
        /// `IP Prefixes: BGP On Demand Read`.
        IpPrefixesBgpOnDemandRead = "IP Prefixes: BGP On Demand Read",
        /// `IP Prefixes: BGP On Demand Write`.
        IpPrefixesBgpOnDemandWrite = "IP Prefixes: BGP On Demand Write",
        /// `Magic Transit Read`.
        MagicTransitRead = "Magic Transit Read",
        /// `Magic Transit Write`.
        MagicTransitWrite = "Magic Transit Write",
        /// `Address Maps Read`.
        AddressMapsRead = "Address Maps Read",
        /// `Address Maps Write`.
        AddressMapsWrite = "Address Maps Write",
        /// `DNS Read` (regional hostnames).
        DnsRead = "DNS Read",
        /// `DNS Write` (regional hostnames).
        DnsWrite = "DNS Write",
    }
);

named_enum!(
    /// An account entitlement flag (§3.2).
    Entitlement, "entitlement", {
        /// Regional Services: needed by the region endpoints and all binding endpoints.
        RegionalServices = "regional_services",
        /// Regional Services for BYOIP: needed by all binding endpoints.
        RegionalServicesByoip = "regional_services_byoip",
    }
);

named_enum!(
    /// A user's role on an account, used with global-key credentials (§2).
    Role, "role", {
        /// Holds every permission.
        SuperAdministrator = "Super Administrator",
        /// Holds every permission.
        Administrator = "Administrator",
        /// Holds every read permission.
        AdministratorReadOnly = "Administrator Read Only",
    }
);

impl Permission {
    /// The bit of this permission in a [`PermissionSet`].
    const fn bit(self) -> u32 {
        1 << (self as u32)
    }

    /// True for the read-only groups.
    pub fn is_read(self) -> bool {
        matches!(
            self,
            Permission::DlsRead
                | Permission::IpPrefixesRead
                | Permission::IpPrefixesBgpOnDemandRead
                | Permission::MagicTransitRead
                | Permission::AddressMapsRead
                | Permission::DnsRead
        )
    }
}

impl Role {
    /// The permissions the role holds.
    pub fn permissions(self) -> PermissionSet {
        match self {
            Role::SuperAdministrator | Role::Administrator => PermissionSet::all(),
            Role::AdministratorReadOnly => Permission::ALL
                .iter()
                .copied()
                .filter(|p| p.is_read())
                .collect(),
        }
    }
}

/// A set of [`Permission`]s (a bit set: cheap to copy and test).
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct PermissionSet(u32);

impl PermissionSet {
    /// No permission.
    pub const fn empty() -> Self {
        Self(0)
    }

    /// Every permission.
    pub fn all() -> Self {
        Permission::ALL.iter().copied().collect()
    }

    /// Adds one.
    pub fn insert(&mut self, p: Permission) {
        self.0 |= p.bit();
    }

    /// True when `p` is held.
    pub fn contains(&self, p: Permission) -> bool {
        self.0 & p.bit() != 0
    }

    /// True when any of `ps` is held.
    pub fn any(&self, ps: &[Permission]) -> bool {
        ps.iter().any(|&p| self.contains(p))
    }

    /// True when all of `ps` are held.
    pub fn all_of(&self, ps: &[Permission]) -> bool {
        ps.iter().all(|&p| self.contains(p))
    }

    /// The held permissions, in declaration order.
    pub fn iter(&self) -> impl Iterator<Item = Permission> + '_ {
        Permission::ALL
            .iter()
            .copied()
            .filter(|&p| self.contains(p))
    }
}

impl FromIterator<Permission> for PermissionSet {
    fn from_iter<I: IntoIterator<Item = Permission>>(iter: I) -> Self {
        let mut s = Self::empty();
        for p in iter {
            s.insert(p);
        }
        s
    }
}

impl fmt::Debug for PermissionSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_set()
            .entries(self.iter().map(|p| p.name()))
            .finish()
    }
}

impl Serialize for PermissionSet {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(self.iter())
    }
}

impl<'de> Deserialize<'de> for PermissionSet {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Ok(Vec::<Permission>::deserialize(d)?.into_iter().collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for &p in Permission::ALL {
            assert_eq!(Permission::parse(p.name()).unwrap(), p);
        }
        assert!(Permission::parse("dls: read").is_err());
        assert_eq!(
            Entitlement::parse("regional_services_byoip").unwrap(),
            Entitlement::RegionalServicesByoip
        );
        assert_eq!(Role::parse("Administrator").unwrap(), Role::Administrator);
    }

    #[test]
    fn sets_and_roles() {
        let s: PermissionSet = [Permission::DlsWrite, Permission::IpPrefixesWrite]
            .into_iter()
            .collect();
        assert!(s.all_of(&[Permission::DlsWrite, Permission::IpPrefixesWrite]));
        assert!(!s.contains(Permission::DlsRead));
        assert!(s.any(&[Permission::DlsRead, Permission::DlsWrite]));
        assert!(Role::Administrator.permissions().all_of(Permission::ALL));
        let ro = Role::AdministratorReadOnly.permissions();
        assert!(ro.contains(Permission::DlsRead) && !ro.contains(Permission::DlsWrite));
        let j = serde_json::to_string(&s).unwrap();
        assert_eq!(j, r#"["DLS: Write","IP Prefixes: Write"]"#);
        assert_eq!(serde_json::from_str::<PermissionSet>(&j).unwrap(), s);
    }
}
