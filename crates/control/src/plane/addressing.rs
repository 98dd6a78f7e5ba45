//! The slice of Addressing that DLS touches: BYOIP prefixes, the services, and the
//! service bindings of a prefix (where a DLS binding's provisioning status shows).
//! One module for every `/addressing/prefixes` and `/addressing/services` operation.

use super::access::{WriteKind, PREFIX_READ, SB_READ};
use super::*;

/// The Addressing services (`GET /addressing/services`), with stable ids.
pub const SERVICES: [(&str, &str); 3] = [
    ("969c4bd2a6d04e0a8a2c3b1c6f1b2d3e", "CDN"),
    ("2e0b8f6c1d3a4b5c9e7f0a1b2c3d4e5f", "Spectrum"),
    ("7f3e2d1c0b9a48576e5d4c3b2a190817", "Magic Transit"),
];

pub(super) fn service_by_name(name: &str) -> Option<ServiceId> {
    SERVICES
        .iter()
        .find(|(_, n)| *n == name)
        .and_then(|(id, _)| ServiceId::parse(id).ok())
}

fn service_name(id: &ServiceId) -> String {
    SERVICES
        .iter()
        .find(|(i, _)| *i == id.as_str())
        .map(|(_, n)| (*n).to_owned())
        .unwrap_or_else(|| "unknown".into())
}

/// The base service binding's id: derived from the prefix id, 32 hex (Addressing's cap).
pub fn base_binding_id(prefix: &PrefixId) -> String {
    SecretHash::sha256(&format!("base-binding:{prefix}")).to_hex()[..32].to_owned()
}

impl<'a> Rules<'a> {
    pub(super) fn prefix(&self, account: &AccountId, id: &str) -> Option<&'a Prefix> {
        if id.len() > PrefixId::MAX_INPUT_LEN {
            return None;
        }
        let id = PrefixId::parse(id).ok()?;
        self.st
            .prefixes
            .get(&id)
            .filter(|p| &p.account_id == account)
    }

    fn service_bindings(&self, p: &Prefix, now: Timestamp) -> Vec<ServiceBinding> {
        let mut out = vec![ServiceBinding {
            id: base_binding_id(&p.id),
            cidr: p.cidr,
            provisioning: Provisioning {
                state: ProvisioningState::Active,
            },
            service_id: p.base_service.clone(),
            service_name: service_name(&p.base_service),
        }];
        if let Some(set) = self.st.live_by_prefix.get(&p.id) {
            for (_, id) in set {
                if let Some(b) = self.st.bindings.get(id) {
                    out.push(self.dls_service_binding(p, b, now));
                }
            }
        }
        out
    }

    fn dls_service_binding(&self, p: &Prefix, b: &BindingRecord, now: Timestamp) -> ServiceBinding {
        ServiceBinding {
            id: b.id.to_string(),
            cidr: b.cidr,
            provisioning: Provisioning {
                state: if now >= b.active_at {
                    ProvisioningState::Active
                } else {
                    ProvisioningState::Provisioning
                },
            },
            service_id: p.base_service.clone(),
            service_name: service_name(&p.base_service),
        }
    }
}

impl ControlPlane {
    /// `GET /addressing/prefixes`.
    pub fn list_prefixes(
        &self,
        p: &Principal,
        account: &str,
    ) -> Result<Vec<PrefixView>, AddressingReadError> {
        self.with_rules(|r| {
            let acct = r.access(p, account, PREFIX_READ, &[])?;
            let mut v: Vec<&Prefix> =
                r.st.prefixes_by_account
                    .get(&acct.id)
                    .into_iter()
                    .flatten()
                    .filter_map(|id| r.st.prefixes.get(id))
                    .collect();
            v.sort_by_key(|p| (p.created_at, p.id.clone()));
            Ok(v.into_iter().map(Prefix::view).collect())
        })
    }

    /// `GET /addressing/prefixes/{id}`.
    pub fn get_prefix(
        &self,
        p: &Principal,
        account: &str,
        prefix_id: &str,
    ) -> Result<PrefixView, AddressingReadError> {
        self.with_rules(|r| {
            let acct = r.access(p, account, PREFIX_READ, &[])?;
            r.prefix(&acct.id, prefix_id)
                .map(Prefix::view)
                .ok_or_else(|| AddressingReadError::PrefixNotFound(prefix_id.to_owned()))
        })
    }

    write_op! {
        /// `POST /addressing/prefixes`: creates a prefix pending approval (`"P"`); approval
        /// is an admin step ([`ControlPlane::approve_prefix`]).
        fn create_prefix / create_prefix_async(
            &self,
            p: &Principal,
            account: &str,
            input: CreatePrefix,
            now: Timestamp,
        ) -> Result<PrefixView, CreatePrefixError> {
            self.submit_async(|r, ctx| {
                let acct = r.access_for(p, account, WriteKind::Prefixes)?;
                let cidr = non_empty(&input.cidr).ok_or(CreatePrefixError::MissingField("cidr"))?;
                let asn = input.asn.ok_or(CreatePrefixError::MissingField("asn"))?;
                let cidr = Cidr::parse_strict(cidr)?;
                let asn = u32::try_from(asn)
                    .ok()
                    .filter(|a| *a > 0)
                    .ok_or_else(|| CreatePrefixError::BadAsn(asn.to_string()))?;
                if r.st.prefixes.values().any(|x| x.cidr.overlaps(&cidr)) {
                    return Err(CreatePrefixError::PrefixOverlap(cidr));
                }
                let pr = Prefix {
                    id: PrefixId::parse(&ctx.ids.hex32()).map_err(StoreError::internal)?,
                    account_id: acct.id.clone(),
                    cidr,
                    asn,
                    description: input.description.clone().unwrap_or_default(),
                    approved: Approval::Pending,
                    base_service: service_by_name("CDN").ok_or_else(|| StoreError::internal("no CDN"))?,
                    created_at: now,
                    modified_at: now,
                };
                let v = pr.view();
                Ok((vec![Change::Prefix(pr)], v))
            })
            .await
        }
    }

    /// `GET /addressing/services`.
    pub fn list_services(
        &self,
        p: &Principal,
        account: &str,
    ) -> Result<Vec<Service>, AddressingReadError> {
        self.with_rules(|r| {
            r.access(p, account, PREFIX_READ, &[])?;
            Ok(SERVICES
                .iter()
                .filter_map(|(id, name)| {
                    Some(Service {
                        id: ServiceId::parse(id).ok()?,
                        name: (*name).to_owned(),
                    })
                })
                .collect())
        })
    }

    /// `GET /addressing/prefixes/{id}/bindings`: the base binding, then each live DLS
    /// binding (same id) with its provisioning state at `now`.
    pub fn list_service_bindings(
        &self,
        p: &Principal,
        account: &str,
        prefix_id: &str,
        now: Timestamp,
    ) -> Result<Vec<ServiceBinding>, AddressingReadError> {
        self.with_rules(|r| {
            let acct = r.access(p, account, SB_READ, &[])?;
            let pr = r
                .prefix(&acct.id, prefix_id)
                .ok_or_else(|| AddressingReadError::PrefixNotFound(prefix_id.to_owned()))?;
            Ok(r.service_bindings(pr, now))
        })
    }

    /// `GET /addressing/prefixes/{id}/bindings/{id}`: where a DLS binding's status lives
    /// (`provisioning.state`).
    pub fn get_service_binding(
        &self,
        p: &Principal,
        account: &str,
        prefix_id: &str,
        binding_id: &str,
        now: Timestamp,
    ) -> Result<ServiceBinding, AddressingReadError> {
        self.with_rules(|r| {
            let acct = r.access(p, account, SB_READ, &[])?;
            let pr = r
                .prefix(&acct.id, prefix_id)
                .ok_or_else(|| AddressingReadError::PrefixNotFound(prefix_id.to_owned()))?;
            if binding_id == base_binding_id(&pr.id) {
                return Ok(r.service_bindings(pr, now).remove(0));
            }
            r.live_binding(&acct.id, binding_id)
                .filter(|b| b.prefix_id == pr.id)
                .map(|b| r.dls_service_binding(pr, b, now))
                .ok_or_else(|| AddressingReadError::NotFound(binding_id.to_owned()))
        })
    }

    /// `DELETE /addressing/prefixes/{id}/bindings/{id}`: DLS-owned bindings are refused
    /// (400 / 1116, delete via `/dls`), and so is the base binding. Other service bindings
    /// are not modelled, so this never deletes anything.
    pub fn delete_service_binding(
        &self,
        p: &Principal,
        account: &str,
        prefix_id: &str,
        binding_id: &str,
    ) -> Result<(), DeleteServiceBindingError> {
        self.with_rules(|r| {
            let acct = r.access_for(p, account, WriteKind::Prefixes)?;
            let pr = r
                .prefix(&acct.id, prefix_id)
                .ok_or_else(|| DeleteServiceBindingError::PrefixNotFound(prefix_id.to_owned()))?;
            if binding_id == base_binding_id(&pr.id) {
                return Err(DeleteServiceBindingError::BaseBinding(
                    binding_id.to_owned(),
                ));
            }
            match r
                .live_binding(&acct.id, binding_id)
                .filter(|b| b.prefix_id == pr.id)
            {
                Some(b) => Err(DeleteServiceBindingError::ManagedByDls(b.id)),
                None => Err(DeleteServiceBindingError::NotFound(binding_id.to_owned())),
            }
        })
    }
}
