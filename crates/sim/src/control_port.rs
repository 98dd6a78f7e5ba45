//! The engine's port to the control plane: the operations a scenario's timeline performs,
//! and the bindings to compile into region tables.
//!
//! The engine applies every timeline operation through [`ControlPort`], so that an
//! invalid scenario fails with the code the API would give (1108 for a duplicate binding,
//! 1301 for an address-map add blocked by a propagating binding, ...). [`Control`] is the
//! adapter over the `inregion-control` crate's rules.

use crate::scenario::Scenario;
use crate::time::SimTime;
use inregion_control::{
    AccountSeed, ApiError, ControlConfig, ControlPlane, CreateAddressMap, CreateBinding,
    PrefixSeed, Principal, UpdateBinding,
};
use inregion_model::{AccountId, Entitlement, ReferenceData, Timestamp};
use ipnet::IpNet;
use std::sync::Arc;

/// An operation the control plane refused: the API's code and message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{code} {message}")]
pub struct Refusal {
    /// The Cloudflare error code the API returns (`1108`).
    pub code: u32,
    /// The HTTP status the API returns (`409`).
    pub http_status: u16,
    /// The API's message.
    pub message: String,
}

/// A binding the data plane should apply, as the API shows it (the latest requested
/// region; propagation to each data center is the edge's business).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct LiveBinding {
    /// Canonical CIDR.
    pub cidr: IpNet,
    /// Region key.
    pub region: String,
}

/// What the engine asks of the control plane. Times are simulated.
pub(crate) trait ControlPort {
    /// `POST …/prefix_bindings` for prefix `prefix` (index into the scenario's prefixes);
    /// returns the binding id.
    fn create_binding(
        &mut self,
        prefix: usize,
        cidr: &str,
        region: &str,
        at: SimTime,
    ) -> Result<String, Refusal>;
    /// `PATCH …/prefix_bindings/{id}` with a new `region_key`.
    fn patch_binding(&mut self, id: &str, region: &str, at: SimTime) -> Result<(), Refusal>;
    /// `DELETE …/prefix_bindings/{id}`.
    fn delete_binding(&mut self, id: &str, at: SimTime) -> Result<(), Refusal>;
    /// `POST /address_maps` listing `ips` for account `account`; returns the map id.
    fn create_address_map(
        &mut self,
        account: usize,
        ips: &[String],
        at: SimTime,
    ) -> Result<String, Refusal>;
    /// `PUT /address_maps/{id}/ips/{ip}`.
    fn add_address_map_ip(&mut self, map: &str, ip: &str, at: SimTime) -> Result<(), Refusal>;
    /// `DELETE /address_maps/{id}/ips/{ip}`.
    fn remove_address_map_ip(&mut self, map: &str, ip: &str, at: SimTime) -> Result<(), Refusal>;
    /// The live bindings (not deleted), in a deterministic order.
    fn live_bindings(&self) -> Vec<LiveBinding>;
}

/// The adapter over `inregion-control`'s [`ControlPlane`]: the scenario's accounts and
/// prefixes are seeded through its admin operations; every timeline operation is the
/// API's own method, called by the trusted [`Principal::system`] (permissions granted,
/// entitlements and every validation rule still applied).
pub(crate) struct Control {
    plane: ControlPlane,
    /// Account ids, by scenario account index.
    accounts: Vec<String>,
    /// Prefix ids and owning account index, by scenario prefix index.
    prefixes: Vec<(String, usize)>,
    /// Address-map id → owning account index.
    maps: Vec<(String, usize)>,
    principal: Principal,
}

/// Simulated time 0 is 2026-01-01T00:00:00Z for the control plane's timestamps.
const EPOCH_SECS: i64 = 1_767_225_600;

fn ts(t: SimTime) -> Timestamp {
    Timestamp::from_secs(EPOCH_SECS).plus(t.as_duration())
}

fn refusal<E: ApiError + ?Sized>(e: &E) -> Refusal {
    Refusal {
        code: e.code(),
        http_status: e.http_status(),
        message: e.to_string(),
    }
}

impl Control {
    /// The control plane of `scenario`: its accounts (with their entitlements) and
    /// prefixes seeded, the regions of `refdata`, and `delay` between a change and its
    /// `active` state (the address-map gate). Ids are seeded from `seed`.
    pub(crate) fn new(
        scenario: &Scenario,
        refdata: &ReferenceData,
        delay: SimTime,
        seed: u64,
    ) -> Result<Self, String> {
        let plane = ControlPlane::in_memory(ControlConfig {
            propagation_delay: delay.as_duration(),
            reference: Arc::new(refdata.clone()),
            id_seed: Some(seed),
            ..ControlConfig::default()
        });
        let now = ts(SimTime::ZERO);
        let mut accounts = Vec::new();
        for (i, a) in scenario.accounts.iter().enumerate() {
            let id = format!("{:032x}", 0xacc0_0000_u64 + i as u64 + 1);
            let mut entitlements = Vec::new();
            if a.regional_services {
                entitlements.push(Entitlement::RegionalServices);
            }
            if a.regional_services_byoip {
                entitlements.push(Entitlement::RegionalServicesByoip);
            }
            let seed = AccountSeed {
                id: AccountId::parse(&id).map_err(|e| e.to_string())?,
                name: a.id.clone(),
                entitlements,
            };
            plane
                .upsert_account(&seed, now)
                .map_err(|e| format!("accounts[{i}]: {e}"))?;
            accounts.push(id);
        }
        let mut prefixes = Vec::new();
        for (i, p) in scenario.prefixes.iter().enumerate() {
            let seed = PrefixSeed {
                account: AccountId::parse(&accounts[p.account]).map_err(|e| e.to_string())?,
                id: None,
                cidr: p.cidr.to_string(),
                asn: 64_512,
                description: p.id.clone(),
                approved: p.approved,
                service: None,
            };
            let id = plane
                .add_prefix(&seed, now)
                .map_err(|e| format!("prefixes[{i}]: {e}"))?;
            prefixes.push((id.to_string(), p.account));
        }
        Ok(Control {
            plane,
            accounts,
            prefixes,
            maps: Vec::new(),
            principal: Principal::system(),
        })
    }

    fn map_account(&self, map: &str) -> &str {
        let i = self.maps.iter().find(|m| m.0 == map).map_or(0, |m| m.1);
        &self.accounts[i]
    }
}

impl ControlPort for Control {
    fn create_binding(
        &mut self,
        prefix: usize,
        cidr: &str,
        region: &str,
        at: SimTime,
    ) -> Result<String, Refusal> {
        let (pid, account) = &self.prefixes[prefix];
        let created = self
            .plane
            .create_binding(
                &self.principal,
                &self.accounts[*account],
                CreateBinding::new(pid, cidr, region),
                ts(at),
            )
            .map_err(|e| refusal(&e))?;
        Ok(created.result.id.to_string())
    }

    fn patch_binding(&mut self, id: &str, region: &str, at: SimTime) -> Result<(), Refusal> {
        // Bindings live in the account of their prefix; scenarios use one account per
        // prefix, so try each account (the API answers 1109 for the wrong one).
        let mut last = None;
        for account in &self.accounts {
            match self.plane.patch_binding(
                &self.principal,
                account,
                id,
                UpdateBinding::region(region),
                ts(at),
            ) {
                Ok(_) => return Ok(()),
                Err(e) => last = Some(refusal(&e)),
            }
        }
        Err(last.expect("a scenario has at least one account"))
    }

    fn delete_binding(&mut self, id: &str, at: SimTime) -> Result<(), Refusal> {
        let mut last = None;
        for account in &self.accounts {
            match self
                .plane
                .delete_binding(&self.principal, account, id, ts(at))
            {
                Ok(()) => return Ok(()),
                Err(e) => last = Some(refusal(&e)),
            }
        }
        Err(last.expect("a scenario has at least one account"))
    }

    fn create_address_map(
        &mut self,
        account: usize,
        ips: &[String],
        at: SimTime,
    ) -> Result<String, Refusal> {
        let input = CreateAddressMap {
            ips: ips.to_vec(),
            ..CreateAddressMap::default()
        };
        let m = self
            .plane
            .create_address_map(&self.principal, &self.accounts[account], input, ts(at))
            .map_err(|e| refusal(&e))?;
        let id = m.id.to_string();
        self.maps.push((id.clone(), account));
        Ok(id)
    }

    fn add_address_map_ip(&mut self, map: &str, ip: &str, at: SimTime) -> Result<(), Refusal> {
        let account = self.map_account(map).to_owned();
        self.plane
            .add_address_map_ip(&self.principal, &account, map, ip, ts(at))
            .map(|_| ())
            .map_err(|e| refusal(&e))
    }

    fn remove_address_map_ip(&mut self, map: &str, ip: &str, at: SimTime) -> Result<(), Refusal> {
        let account = self.map_account(map).to_owned();
        self.plane
            .remove_address_map_ip(&self.principal, &account, map, ip, ts(at))
            .map(|_| ())
            .map_err(|e| refusal(&e))
    }

    fn live_bindings(&self) -> Vec<LiveBinding> {
        let mut live: Vec<LiveBinding> = self
            .plane
            .binding_records()
            .into_iter()
            .filter(|b| b.is_live())
            .map(|b| LiveBinding {
                cidr: b.cidr.net(),
                region: b.region.to_string(),
            })
            .collect();
        live.sort_by(|a, b| (a.cidr, &a.region).cmp(&(b.cidr, &b.region)));
        live
    }
}
