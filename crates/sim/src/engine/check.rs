//! The independent region check: every processed flow is checked against the control
//! plane's bindings of the table version its decision used and the reference data's
//! region membership, not against the edge's own table.

use ipnet::IpNet;
use std::net::IpAddr;

/// The independent region check: per table version, the control plane's bindings
/// (most specific first), and region membership from the reference data.
pub(super) struct Check {
    pub(super) member: Vec<bool>,
    pub(super) located: Vec<bool>,
    pub(super) ndc: usize,
}

/// One binding of the independent check, as plain integers: `addr & mask == net` (both
/// families in one `u128`, the family compared too), so that checking a flow against a
/// version's bindings is a short scan of integer compares.
#[derive(Clone, Copy, Debug)]
pub(super) struct CheckNet {
    v6: bool,
    net: u128,
    mask: u128,
    region: usize,
}

impl CheckNet {
    pub(super) fn new(net: IpNet, region: usize) -> Self {
        let (v6, net, mask) = match net {
            IpNet::V4(n) => (
                false,
                u128::from(n.network().to_bits()),
                u128::from(n.netmask().to_bits()),
            ),
            IpNet::V6(n) => (true, n.network().to_bits(), n.netmask().to_bits()),
        };
        CheckNet {
            v6,
            net,
            mask,
            region,
        }
    }
}

fn addr_bits(a: IpAddr) -> (bool, u128) {
    match a {
        IpAddr::V4(a) => (false, u128::from(a.to_bits())),
        IpAddr::V6(a) => (true, a.to_bits()),
    }
}

impl Check {
    /// The region the control plane's bindings of `version` give `dst` (most specific
    /// first), or `None`.
    #[inline]
    pub(super) fn region_for(
        versions: &[Vec<CheckNet>],
        version: u64,
        dst: IpAddr,
    ) -> Option<usize> {
        let (v6, a) = addr_bits(dst);
        versions
            .get(version as usize)?
            .iter()
            .find(|n| n.v6 == v6 && a & n.mask == n.net)
            .map(|n| n.region)
    }
    #[inline]
    pub(super) fn is_member(&self, region: usize, dc: usize) -> bool {
        self.member[region * self.ndc + dc]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        /// The integer form agrees with `ipnet`'s `contains` for any prefix and address
        /// of either family (including /0, /32, /128 and mixed families).
        #[test]
        fn agrees_with_ipnet(
            v6_net in any::<bool>(), v6_addr in any::<bool>(),
            net_bits in any::<u128>(), addr_bits_in in any::<u128>(), len in 0u8..=128,
            share in 0u32..=128,
        ) {
            let net: IpNet = if v6_net {
                ipnet::Ipv6Net::new(std::net::Ipv6Addr::from_bits(net_bits), len).unwrap().into()
            } else {
                ipnet::Ipv4Net::new(std::net::Ipv4Addr::from_bits(net_bits as u32), len % 33)
                    .unwrap()
                    .into()
            };
            // Half the time, an address sharing a prefix of `share` bits with the net.
            let raw = if share % 2 == 0 {
                let keep = if share == 0 { 0 } else { u128::MAX << (128 - share) };
                (net_bits & keep) | (addr_bits_in & !keep)
            } else {
                addr_bits_in
            };
            let addr: IpAddr = if v6_addr {
                std::net::Ipv6Addr::from_bits(raw).into()
            } else {
                std::net::Ipv4Addr::from_bits(if v6_net { raw as u32 } else {
                    let keep = if share == 0 { 0 } else { u32::MAX.checked_shl(32 - share.min(32)).unwrap_or(0) };
                    ((net_bits as u32) & keep) | ((addr_bits_in as u32) & !keep)
                }).into()
            };
            let c = CheckNet::new(net, 7);
            let got = Check::region_for(&[vec![c]], 0, addr);
            prop_assert_eq!(got, net.contains(&addr).then_some(7));
        }
    }
}
