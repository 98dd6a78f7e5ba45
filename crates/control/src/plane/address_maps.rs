//! Address maps (`/addressing/address_maps`): create, read, change, delete, and their
//! IPs and memberships. One module for the maps and the §9 gate that refuses an IP
//! while a binding covering it is still propagating.

use super::access::{WriteKind, MAP_READ};
use super::*;

/// Adds the `kind` membership of `identifier` (an account or zone id: 32 hex characters)
/// to a map's list; `Ok(false)` when it is there already. One rule for map create and
/// `PUT …/zones|accounts/{id}`; the error is the reason, for each caller's error type.
fn add_membership(
    list: &mut Vec<Membership>,
    kind: MembershipKind,
    identifier: &str,
    now: Timestamp,
) -> Result<bool, String> {
    if AccountId::parse(identifier).is_err() {
        return Err(format!(
            "identifier {identifier:?} must be 32 hex characters"
        ));
    }
    if list
        .iter()
        .any(|x| x.kind == kind && x.identifier == identifier)
    {
        return Ok(false);
    }
    list.push(Membership {
        identifier: identifier.to_owned(),
        kind,
        can_delete: true,
        created_at: now,
    });
    Ok(true)
}

impl<'a> Rules<'a> {
    /// The §9 gate for one IP being added to an address map.
    fn check_ip(
        &self,
        account: &AccountId,
        raw: &str,
        now: Timestamp,
    ) -> Result<IpAddr, IpRefusal> {
        let ip = parse_ip_strict(raw).ok_or_else(|| IpRefusal::InvalidIp(raw.to_owned()))?;
        if self.st.owning_prefix(account, ip).is_none() {
            return Err(IpRefusal::IpNotOwned(ip));
        }
        if let Some(b) = self
            .st
            .live_bindings_covering(account, ip)
            .into_iter()
            .find(|b| now < b.active_at)
        {
            return Err(IpRefusal::Gated {
                ip,
                binding: b.id,
                cidr: b.cidr,
            });
        }
        Ok(ip)
    }

    fn map(&self, account: &AccountId, id: &str) -> Option<&'a AddressMap> {
        let id = AddressMapId::parse(id).ok()?;
        self.st.maps.get(&id).filter(|m| &m.account_id == account)
    }
}

impl ControlPlane {
    write_op! {
        /// `POST /addressing/address_maps`. Atomic: if any IP is refused (invalid 1305, not
        /// owned 1302, gated 1301 — §9), nothing is created and the error names the index.
        fn create_address_map / create_address_map_async(
            &self,
            p: &Principal,
            account: &str,
            input: CreateAddressMap,
            now: Timestamp,
        ) -> Result<AddressMap, CreateAddressMapError> {
            self.submit_async(|r, ctx| {
                let acct = r.access_for(p, account, WriteKind::AddressMaps)?;
                if !input.default_sni.as_deref().is_none_or(crate::inputs::is_sni) {
                    return Err(CreateAddressMapError::DefaultSni);
                }
                let mut ips: Vec<AddressMapIp> = Vec::new();
                for (index, raw) in input.ips.iter().enumerate() {
                    let ip = r
                        .check_ip(&acct.id, raw, now)
                        .map_err(|refusal| CreateAddressMapError::Ip { index, refusal })?;
                    if !ips.iter().any(|x| x.ip == ip) {
                        ips.push(AddressMapIp {
                            ip,
                            created_at: now,
                        });
                    }
                }
                let mut memberships: Vec<Membership> = Vec::new();
                for (index, m) in input.memberships.iter().enumerate() {
                    let missing = |field: &'static str| {
                        CreateAddressMapError::MembershipFieldMissing { index, field }
                    };
                    let kind = non_empty(&m.kind).ok_or_else(|| missing("kind"))?;
                    let identifier =
                        non_empty(&m.identifier).ok_or_else(|| missing("identifier"))?;
                    let kind = MembershipKind::parse(kind).ok_or_else(|| {
                        CreateAddressMapError::Membership {
                            index,
                            reason: format!("kind must be \"zone\" or \"account\", got {kind:?}"),
                        }
                    })?;
                    add_membership(&mut memberships, kind, identifier, now)
                        .map_err(|reason| CreateAddressMapError::Membership { index, reason })?;
                }
                let map = AddressMap {
                    id: AddressMapId::parse(&ctx.ids.hex32()).map_err(StoreError::internal)?,
                    account_id: acct.id.clone(),
                    description: input.description.clone(),
                    default_sni: input.default_sni.clone(),
                    enabled: input.enabled.unwrap_or(false),
                    can_delete: true,
                    can_modify_ips: true,
                    created_at: now,
                    modified_at: now,
                    ips,
                    memberships,
                };
                Ok((vec![Change::AddressMap(map.clone())], map))
            })
            .await
        }
    }

    /// `GET /addressing/address_maps` (by creation time).
    pub fn list_address_maps(
        &self,
        p: &Principal,
        account: &str,
    ) -> Result<Vec<AddressMap>, AddressMapError> {
        self.with_rules(|r| {
            let acct = r.access(p, account, MAP_READ, &[])?;
            let mut v: Vec<AddressMap> =
                r.st.maps_by_account
                    .get(&acct.id)
                    .into_iter()
                    .flatten()
                    .filter_map(|id| r.st.maps.get(id).cloned())
                    .collect();
            v.sort_by(|a, b| (a.created_at, &a.id).cmp(&(b.created_at, &b.id)));
            Ok(v)
        })
    }

    /// `GET /addressing/address_maps/{id}`.
    pub fn get_address_map(
        &self,
        p: &Principal,
        account: &str,
        map_id: &str,
    ) -> Result<AddressMap, AddressMapError> {
        self.with_rules(|r| {
            let acct = r.access(p, account, MAP_READ, &[])?;
            r.map(&acct.id, map_id)
                .cloned()
                .ok_or_else(|| AddressMapError::MapNotFound(map_id.to_owned()))
        })
    }

    /// Loads an address map (`not_found` when the account has no such map), lets `edit`
    /// change it and commits it if it changed.
    async fn map_write_async<E: From<AccessError> + From<StoreError>>(
        &self,
        p: &Principal,
        account: &str,
        map_id: &str,
        now: Timestamp,
        not_found: fn(String) -> E,
        edit: impl FnMut(&Rules<'_>, &mut AddressMap) -> Result<bool, E>,
    ) -> Result<AddressMap, E> {
        self.map_write_checked_async(p, account, map_id, now, None, not_found, edit)
            .await
    }

    /// [`Self::map_write_async`] with a validation error found in the input alone, which
    /// the contract reports after access and before existence.
    #[allow(clippy::too_many_arguments)]
    async fn map_write_checked_async<E: From<AccessError> + From<StoreError>>(
        &self,
        p: &Principal,
        account: &str,
        map_id: &str,
        now: Timestamp,
        invalid: Option<E>,
        not_found: fn(String) -> E,
        mut edit: impl FnMut(&Rules<'_>, &mut AddressMap) -> Result<bool, E>,
    ) -> Result<AddressMap, E> {
        let mut invalid = invalid;
        self.submit_async(|r, _ctx| {
            let acct = r.access_for(p, account, WriteKind::AddressMaps)?;
            if let Some(e) = invalid.take() {
                return Err(e);
            }
            let mut m = r
                .map(&acct.id, map_id)
                .cloned()
                .ok_or_else(|| not_found(map_id.to_owned()))?;
            if !edit(r, &mut m)? {
                return Ok((Vec::new(), m));
            }
            m.modified_at = now;
            Ok((vec![Change::AddressMap(m.clone())], m))
        })
        .await
    }

    write_op! {
        /// `PATCH /addressing/address_maps/{id}` (description, enabled, default_sni). Never
        /// gated.
        fn update_address_map / update_address_map_async(
            &self,
            p: &Principal,
            account: &str,
            map_id: &str,
            input: UpdateAddressMap,
            now: Timestamp,
        ) -> Result<AddressMap, AddressMapError> {
            // Another key than the three: after access, before existence (contract §6.4,
            // as the binding PATCH's 1113).
            let invalid = input
                .other_fields
                .first()
                .map(|f| AddressMapError::UnexpectedField(f.clone()));
            self.map_write_checked_async(p, account, map_id, now, invalid, AddressMapError::MapNotFound, |_, m| {
                let before = m.clone();
                if let Some(d) = input.description.clone() {
                    m.description = d;
                }
                if let Some(e) = input.enabled {
                    m.enabled = e;
                }
                if let Some(s) = input.default_sni.clone() {
                    if !s.as_deref().is_none_or(crate::inputs::is_sni) {
                        return Err(AddressMapError::Invalid(
                            "default_sni must be a hostname".into(),
                        ));
                    }
                    m.default_sni = s;
                }
                Ok(*m != before)
            })
            .await
        }
    }

    write_op! {
        /// `DELETE /addressing/address_maps/{id}`: the map must be disabled (400 / 1304).
        fn delete_address_map / delete_address_map_async(
            &self,
            p: &Principal,
            account: &str,
            map_id: &str,
            _now: Timestamp,
        ) -> Result<(), AddressMapError> {
            self.submit_async(|r, _ctx| {
                let acct = r.access_for(p, account, WriteKind::AddressMaps)?;
                let m = r
                    .map(&acct.id, map_id)
                    .ok_or_else(|| AddressMapError::MapNotFound(map_id.to_owned()))?;
                if !m.can_delete {
                    return Err(AddressMapError::Managed(map_id.to_owned()));
                }
                if m.enabled {
                    return Err(AddressMapError::StillEnabled(map_id.to_owned()));
                }
                Ok((vec![Change::DeleteAddressMap(m.id.clone())], ()))
            })
            .await
        }
    }

    write_op! {
        /// `PUT /addressing/address_maps/{id}/ips/{ip}`: gated (§9, 409 / 1301); the IP must
        /// be in an owned prefix (400 / 1302). Adding an IP already on the map is a no-op.
        fn add_address_map_ip / add_address_map_ip_async(
            &self,
            p: &Principal,
            account: &str,
            map_id: &str,
            ip: &str,
            now: Timestamp,
        ) -> Result<AddressMap, AddIpError> {
            self.map_write_async(p, account, map_id, now, AddIpError::MapNotFound, |r, m| {
                let ip = r.check_ip(&m.account_id, ip, now)?;
                if m.ips.iter().any(|x| x.ip == ip) {
                    return Ok(false);
                }
                m.ips.push(AddressMapIp {
                    ip,
                    created_at: now,
                });
                Ok(true)
            })
            .await
        }
    }

    write_op! {
        /// `DELETE /addressing/address_maps/{id}/ips/{ip}` (never gated).
        fn remove_address_map_ip / remove_address_map_ip_async(
            &self,
            p: &Principal,
            account: &str,
            map_id: &str,
            ip: &str,
            now: Timestamp,
        ) -> Result<AddressMap, AddressMapError> {
            self.map_write_async(p, account, map_id, now, AddressMapError::MapNotFound, |_, m| {
                let addr = parse_ip_strict(ip).ok_or_else(|| {
                    AddressMapError::Invalid(format!("{ip:?} is not a valid IP address"))
                })?;
                let n = m.ips.len();
                m.ips.retain(|x| x.ip != addr);
                if m.ips.len() == n {
                    return Err(AddressMapError::IpNotFound(ip.to_owned()));
                }
                Ok(true)
            })
            .await
        }
    }

    write_op! {
        /// `PUT /addressing/address_maps/{id}/zones/{zone}` or `.../accounts/{account}`.
        fn add_address_map_membership / add_address_map_membership_async(
            &self,
            p: &Principal,
            account: &str,
            map_id: &str,
            kind: MembershipKind,
            identifier: &str,
            now: Timestamp,
        ) -> Result<AddressMap, AddressMapError> {
            self.map_write_async(p, account, map_id, now, AddressMapError::MapNotFound, |_, m| {
                add_membership(&mut m.memberships, kind, identifier, now)
                    .map_err(AddressMapError::Invalid)
            })
            .await
        }
    }

    write_op! {
        /// `DELETE /addressing/address_maps/{id}/zones/{zone}` or `.../accounts/{account}`.
        fn remove_address_map_membership / remove_address_map_membership_async(
            &self,
            p: &Principal,
            account: &str,
            map_id: &str,
            kind: MembershipKind,
            identifier: &str,
            now: Timestamp,
        ) -> Result<AddressMap, AddressMapError> {
            self.map_write_async(p, account, map_id, now, AddressMapError::MapNotFound, |_, m| {
                let n = m.memberships.len();
                m.memberships
                    .retain(|x| !(x.kind == kind && x.identifier == identifier));
                if m.memberships.len() == n {
                    return Err(AddressMapError::MembershipNotFound(identifier.to_owned()));
                }
                Ok(true)
            })
            .await
        }
    }
}
