//! Who may do what: authentication, and the access check every operation runs first
//! (account reachable → permission → entitlement, contract §3.2). One module so that
//! the permission and entitlement requirements of every resource are read in one place.

use super::*;

/// The permission requirement of an operation.
#[derive(Clone, Copy)]
pub(super) enum Need {
    Any(&'static [Permission]),
    All(&'static [Permission]),
}

pub(super) const DLS_READ: Need = Need::Any(&[Permission::DlsRead, Permission::DlsWrite]);
pub(super) const DLS_WRITE: Need = Need::All(&[Permission::DlsWrite, Permission::IpPrefixesWrite]);
pub(super) const PREFIX_READ: Need = Need::Any(&[
    Permission::IpPrefixesRead,
    Permission::IpPrefixesWrite,
    Permission::MagicTransitRead,
    Permission::MagicTransitWrite,
    Permission::IpPrefixesBgpOnDemandRead,
    Permission::IpPrefixesBgpOnDemandWrite,
]);
pub(super) const PREFIX_WRITE: Need = Need::All(&[Permission::IpPrefixesWrite]);
pub(super) const SB_READ: Need =
    Need::Any(&[Permission::IpPrefixesRead, Permission::IpPrefixesWrite]);
pub(super) const MAP_READ: Need =
    Need::Any(&[Permission::AddressMapsRead, Permission::AddressMapsWrite]);
pub(super) const MAP_WRITE: Need = Need::All(&[Permission::AddressMapsWrite]);
pub(super) const ENT_REGIONS: &[Entitlement] = &[Entitlement::RegionalServices];
pub(super) const ENT_BINDINGS: &[Entitlement] = &[
    Entitlement::RegionalServices,
    Entitlement::RegionalServicesByoip,
];

/// A kind of write, for [`ControlPlane::authorize`]: what the operations of one resource
/// need from their caller (permissions and entitlements, contract §3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WriteKind {
    /// Creating, changing or deleting a DLS prefix binding.
    Bindings,
    /// Creating a BYOIP prefix or deleting a service binding.
    Prefixes,
    /// Creating or changing an address map.
    AddressMaps,
}

impl WriteKind {
    fn needs(self) -> (Need, &'static [Entitlement]) {
        match self {
            WriteKind::Bindings => (DLS_WRITE, ENT_BINDINGS),
            WriteKind::Prefixes => (PREFIX_WRITE, &[]),
            WriteKind::AddressMaps => (MAP_WRITE, &[]),
        }
    }
}

impl<'a> Rules<'a> {
    /// [`Self::access`] with what writes of `kind` need ([`ControlPlane::authorize`]
    /// asks the same).
    pub(super) fn access_for(
        &self,
        p: &Principal,
        account: &str,
        kind: WriteKind,
    ) -> Result<&'a Account, AccessError> {
        let (need, ents) = kind.needs();
        self.access(p, account, need, ents)
    }

    /// §3.2: account reachable → permission → entitlement.
    pub(super) fn access(
        &self,
        p: &Principal,
        account: &str,
        need: Need,
        ents: &[Entitlement],
    ) -> Result<&'a Account, AccessError> {
        let id = AccountId::parse(account).map_err(|_| AccessError::Forbidden)?;
        let perms = p.permissions_on(&id).ok_or(AccessError::Forbidden)?;
        let acct = self.st.accounts.get(&id).ok_or(AccessError::Forbidden)?;
        let ok = match need {
            Need::Any(ps) => perms.any(ps),
            Need::All(ps) => perms.all_of(ps),
        };
        if !ok {
            return Err(AccessError::Forbidden);
        }
        if let Some(e) = ents.iter().find(|e| !acct.entitlements.contains(e)) {
            return Err(AccessError::NotEntitled(*e));
        }
        Ok(acct)
    }
}

impl ControlPlane {
    /// Whether `p` may make writes of `kind` on `account`: the access check those writes
    /// run first (account reachable → permission → entitlement), reading only. The HTTP
    /// layer asks it before reporting a malformed body, so that a caller without access
    /// learns nothing from the body's syntax (contract precedence) without any write
    /// being attempted.
    pub fn authorize(
        &self,
        p: &Principal,
        account: &str,
        kind: WriteKind,
    ) -> Result<(), AccessError> {
        let (need, ents) = kind.needs();
        self.with_rules(|r| r.access(p, account, need, ents).map(drop))
    }

    /// Authenticates a credential (§2). `client_ip` is checked against a token's allowed
    /// ranges.
    pub fn authenticate(
        &self,
        creds: &Credentials,
        client_ip: Option<IpAddr>,
        now: Timestamp,
    ) -> Result<Principal, AuthError> {
        let st = self.read_state();
        auth::authenticate(&st.tokens, &st.users, self.ring(&st), creds, client_ip, now)
    }
}
