//! The engine's port to the control plane: the operations a scenario's timeline performs,
//! and the bindings to compile into region tables.
//!
//! The engine applies every timeline operation through [`ControlPort`], so that an
//! invalid scenario fails with the code the API would give (1108 for a duplicate binding,
//! 1301 for an address-map add blocked by a propagating binding, ...). [`Control`] is the
//! adapter over the `inregion-control` crate's rules.

use crate::time::SimTime;
use ipnet::IpNet;
use std::net::IpAddr;

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
pub struct LiveBinding {
    /// Canonical CIDR.
    pub cidr: IpNet,
    /// Region key.
    pub region: String,
}

/// What the engine asks of the control plane. Times are simulated.
pub trait ControlPort {
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

pub use interim::Control;

/// The adapter used until `inregion-control` exposes its service API (see the crate's
/// report): the §7/§9 rules the simulator's scenarios exercise, with the contract's codes.
mod interim {
    use super::*;
    use crate::scenario::Scenario;
    use inregion_model::{ReferenceData, RegionKey};

    struct Binding {
        id: String,
        account: usize,
        cidr: IpNet,
        region: String,
        changed_at: SimTime,
        deleted: bool,
    }

    struct AddressMap {
        id: String,
        account: usize,
        ips: Vec<IpAddr>,
    }

    /// The control plane of one simulation run.
    pub struct Control {
        accounts: Vec<(bool, bool)>,
        prefixes: Vec<(usize, IpNet, bool, String)>,
        regions: Vec<RegionKey>,
        bindings: Vec<Binding>,
        maps: Vec<AddressMap>,
        delay: SimTime,
    }

    fn refuse(code: u32, http_status: u16, message: impl Into<String>) -> Refusal {
        Refusal {
            code,
            http_status,
            message: message.into(),
        }
    }

    /// Strict CIDR parsing (§7): no host bits, no leading zeros, a length.
    fn strict_cidr(s: &str) -> Result<IpNet, Refusal> {
        let bad = |why: &str| refuse(1102, 400, format!("invalid cidr {s:?}: {why}"));
        let (addr, len) = s.split_once('/').ok_or_else(|| bad("no prefix length"))?;
        if len.len() > 1 && len.starts_with('0') {
            return Err(bad("leading zero in the length"));
        }
        if !addr.contains(':') && addr.split('.').any(|o| o.len() > 1 && o.starts_with('0')) {
            return Err(bad("leading zeros"));
        }
        let net: IpNet = s.parse().map_err(|_| bad("not a CIDR"))?;
        if net.trunc() != net {
            return Err(bad("host bits set"));
        }
        Ok(net)
    }

    impl Control {
        /// The control plane for `scenario`: its accounts and prefixes, the regions of
        /// `refdata`, and `delay` between a change and its `active` state.
        pub fn new(scenario: &Scenario, refdata: &ReferenceData, delay: SimTime) -> Self {
            Control {
                accounts: scenario
                    .accounts
                    .iter()
                    .map(|a| (a.regional_services, a.regional_services_byoip))
                    .collect(),
                prefixes: scenario
                    .prefixes
                    .iter()
                    .map(|p| (p.account, p.cidr, p.approved, p.id.clone()))
                    .collect(),
                regions: refdata.regions().iter().map(|r| r.key.clone()).collect(),
                bindings: Vec::new(),
                maps: Vec::new(),
                delay,
            }
        }

        fn region(&self, key: &str) -> Result<(), Refusal> {
            if RegionKey::parse(key).is_err() {
                return Err(refuse(
                    1107,
                    400,
                    format!("region_key {key:?} must match ^[a-z0-9_-]+$ (1-128 characters)"),
                ));
            }
            if !self.regions.iter().any(|r| r.as_str() == key) {
                return Err(refuse(
                    1106,
                    400,
                    format!("region_key {key:?} is not available to this account"),
                ));
            }
            Ok(())
        }

        fn entitled(&self, account: usize) -> Result<(), Refusal> {
            let (rs, byoip) = self.accounts[account];
            if !rs || !byoip {
                return Err(refuse(
                    1115,
                    403,
                    "the account lacks the Regional Services (BYOIP) entitlement",
                ));
            }
            Ok(())
        }

        fn live(&mut self, id: &str) -> Result<&mut Binding, Refusal> {
            self.bindings
                .iter_mut()
                .find(|b| b.id == id && !b.deleted)
                .ok_or_else(|| refuse(1109, 404, format!("binding {id:?} not found")))
        }

        fn gate(&self, account: usize, ip: &str, at: SimTime) -> Result<IpAddr, Refusal> {
            let addr: IpAddr = ip
                .parse()
                .map_err(|_| refuse(1305, 400, format!("{ip:?} is not an IP address")))?;
            if !self
                .prefixes
                .iter()
                .any(|p| p.0 == account && p.1.contains(&addr))
            {
                return Err(refuse(1302, 400, format!("IP {ip} is not in a prefix of this account")));
            }
            for b in &self.bindings {
                if !b.deleted
                    && b.account == account
                    && b.cidr.contains(&addr)
                    && at < b.changed_at.saturating_add(self.delay)
                {
                    return Err(refuse(
                        1301,
                        409,
                        format!(
                            "IP {ip} is covered by prefix binding {} ({}) which is not active yet",
                            b.id, b.cidr
                        ),
                    ));
                }
            }
            Ok(addr)
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
            let (account, pnet, approved, pid) = self.prefixes[prefix].clone();
            self.entitled(account)?;
            let net = strict_cidr(cidr)?;
            if !approved {
                return Err(refuse(1114, 400, format!("prefix {pid} is not approved yet")));
            }
            let inside = match (net, pnet) {
                (IpNet::V4(_), IpNet::V4(_)) | (IpNet::V6(_), IpNet::V6(_)) => pnet.contains(&net),
                _ => false,
            };
            if !inside {
                return Err(refuse(1103, 400, format!("cidr {net} is not inside prefix {pnet}")));
            }
            self.region(region)?;
            if net == pnet || self.bindings.iter().any(|b| !b.deleted && b.cidr == net) {
                return Err(refuse(
                    1108,
                    409,
                    format!("conflict: binding already exists for CIDR {net}"),
                ));
            }
            let id = format!("{:032x}", self.bindings.len() + 1);
            self.bindings.push(Binding {
                id: id.clone(),
                account,
                cidr: net,
                region: region.to_owned(),
                changed_at: at,
                deleted: false,
            });
            Ok(id)
        }

        fn patch_binding(&mut self, id: &str, region: &str, at: SimTime) -> Result<(), Refusal> {
            self.region(region)?;
            let b = self.live(id)?;
            if b.region != region {
                b.region = region.to_owned();
                b.changed_at = at;
            }
            Ok(())
        }

        fn delete_binding(&mut self, id: &str, _at: SimTime) -> Result<(), Refusal> {
            self.live(id)?.deleted = true;
            Ok(())
        }

        fn create_address_map(
            &mut self,
            account: usize,
            ips: &[String],
            at: SimTime,
        ) -> Result<String, Refusal> {
            let mut addrs = Vec::new();
            for ip in ips {
                addrs.push(self.gate(account, ip, at)?);
            }
            let id = format!("{:032x}", 0x1000 + self.maps.len() + 1);
            self.maps.push(AddressMap {
                id: id.clone(),
                account,
                ips: addrs,
            });
            Ok(id)
        }

        fn add_address_map_ip(&mut self, map: &str, ip: &str, at: SimTime) -> Result<(), Refusal> {
            let i = self
                .maps
                .iter()
                .position(|m| m.id == map)
                .ok_or_else(|| refuse(1303, 404, format!("address map {map:?} not found")))?;
            let addr = self.gate(self.maps[i].account, ip, at)?;
            if !self.maps[i].ips.contains(&addr) {
                self.maps[i].ips.push(addr);
            }
            Ok(())
        }

        fn remove_address_map_ip(&mut self, map: &str, ip: &str, _at: SimTime) -> Result<(), Refusal> {
            let m = self
                .maps
                .iter_mut()
                .find(|m| m.id == map)
                .ok_or_else(|| refuse(1303, 404, format!("address map {map:?} not found")))?;
            let addr: IpAddr = ip
                .parse()
                .map_err(|_| refuse(1305, 400, format!("{ip:?} is not an IP address")))?;
            let before = m.ips.len();
            m.ips.retain(|a| *a != addr);
            if m.ips.len() == before {
                return Err(refuse(1303, 404, format!("IP {ip} is not on address map {map}")));
            }
            Ok(())
        }

        fn live_bindings(&self) -> Vec<LiveBinding> {
            self.bindings
                .iter()
                .filter(|b| !b.deleted)
                .map(|b| LiveBinding {
                    cidr: b.cidr,
                    region: b.region.clone(),
                })
                .collect()
        }
    }
}
