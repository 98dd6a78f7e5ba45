//! The Rust LPM crates the table comparison measures beside `ip_network_table`, each
//! built from the same `(prefix, value)` list and storing one value per prefix:
//!
//! - `prefix_trie`: `prefix-trie` 0.10, [`PrefixMap`] (`get_lpm` with a host prefix).
//! - `iptrie`: `iptrie` 0.11, its LC-trie [`LCTrieMap`] (a radix trie compressed after
//!   the inserts). Its maps always hold the root prefix (`0/0`) with a default value, so
//!   the peer stores `Option<u16>` with `None` at the root: "no match" stays `None`.
//! - `poptrie`: `poptrie` 0.2, [`Poptrie`], built in bulk (`collect`).
//! - `treebitmap`: the `treebitmap` crate itself is not in this build's registry (cargo
//!   cannot resolve it), so the peer is `ip_network_table-deps-treebitmap` 0.5, the
//!   published copy of treebitmap that `ip_network_table` wraps: the same trie called
//!   directly, without the baseline's wrapper.

use std::net::{Ipv4Addr, Ipv6Addr};

use ip_network_table_deps_treebitmap::IpLookupTable;
use ipnet::{Ipv4Net, Ipv6Net};
use iptrie::map::{LCTrieMap, RTrieMap};
use poptrie::Poptrie;
use prefix_trie::PrefixMap;

/// Peer names in the order of [`Peers`]' fields (and of the JSON object).
pub(crate) const NAMES: [&str; 4] = ["prefix_trie", "iptrie", "poptrie", "treebitmap"];

/// A longest-prefix-match lookup from one address to its value.
pub(crate) trait Lpm<A> {
    /// The value of the longest prefix containing `addr`, if any.
    fn lpm(&self, addr: A) -> Option<u16>;
}

/// One table per peer, built from the same prefix list.
pub(crate) struct Peers<P, I, O, T> {
    /// `prefix-trie`'s `PrefixMap`.
    pub(crate) prefix_trie: P,
    /// `iptrie`'s LC-trie.
    pub(crate) iptrie: I,
    /// `poptrie`'s `Poptrie`.
    pub(crate) poptrie: O,
    /// treebitmap's `IpLookupTable`.
    pub(crate) treebitmap: T,
}

/// The IPv4 peers.
pub(crate) type PeersV4 = Peers<
    PrefixMap<Ipv4Net, u16>,
    LCTrieMap<Ipv4Net, Option<u16>>,
    Poptrie<Ipv4Net, u16>,
    IpLookupTable<Ipv4Addr, u16>,
>;

/// The IPv6 peers.
pub(crate) type PeersV6 = Peers<
    PrefixMap<Ipv6Net, u16>,
    LCTrieMap<Ipv6Net, Option<u16>>,
    Poptrie<Ipv6Net, u16>,
    IpLookupTable<Ipv6Addr, u16>,
>;

/// Builds every IPv4 peer from `prefixes` (later duplicates win, as in our builder).
pub(crate) fn build_v4(prefixes: &[(Ipv4Net, u16)]) -> PeersV4 {
    let mut prefix_trie = PrefixMap::new();
    let mut radix = RTrieMap::with_root(None);
    let mut treebitmap = IpLookupTable::new();
    for &(net, value) in prefixes {
        let net = net.trunc();
        prefix_trie.insert(net, value);
        radix.insert(net, Some(value));
        treebitmap.insert(net.network(), u32::from(net.prefix_len()), value);
    }
    Peers {
        prefix_trie,
        iptrie: radix.compress(),
        poptrie: poptrie_from(prefixes),
        treebitmap,
    }
}

/// Builds every IPv6 peer from `prefixes` (later duplicates win, as in our builder).
pub(crate) fn build_v6(prefixes: &[(Ipv6Net, u16)]) -> PeersV6 {
    let mut prefix_trie = PrefixMap::new();
    let mut radix = RTrieMap::with_root(None);
    let mut treebitmap = IpLookupTable::new();
    for &(net, value) in prefixes {
        let net = net.trunc();
        prefix_trie.insert(net, value);
        radix.insert(net, Some(value));
        treebitmap.insert(net.network(), u32::from(net.prefix_len()), value);
    }
    Peers {
        prefix_trie,
        iptrie: radix.compress(),
        poptrie: poptrie_from(prefixes),
        treebitmap,
    }
}

/// Poptrie's bulk construction (`FromIterator`): its `insert` rebuilds leaf ranges on
/// every call, which takes minutes for the million prefixes of the real IPv4 table.
fn poptrie_from<N>(prefixes: &[(N, u16)]) -> Poptrie<N, u16>
where
    N: poptrie::Prefix + Trunc,
{
    prefixes.iter().map(|&(net, v)| (net.trunc(), v)).collect()
}

/// `ipnet`'s `trunc` for either family.
trait Trunc {
    /// The prefix with its host bits cleared.
    fn trunc(&self) -> Self;
}

impl Trunc for Ipv4Net {
    fn trunc(&self) -> Self {
        Ipv4Net::trunc(self)
    }
}

impl Trunc for Ipv6Net {
    fn trunc(&self) -> Self {
        Ipv6Net::trunc(self)
    }
}

impl Lpm<Ipv4Addr> for PrefixMap<Ipv4Net, u16> {
    #[inline]
    fn lpm(&self, addr: Ipv4Addr) -> Option<u16> {
        self.get_lpm(&Ipv4Net::from(addr)).map(|(_, &v)| v)
    }
}

impl Lpm<Ipv6Addr> for PrefixMap<Ipv6Net, u16> {
    #[inline]
    fn lpm(&self, addr: Ipv6Addr) -> Option<u16> {
        self.get_lpm(&Ipv6Net::from(addr)).map(|(_, &v)| v)
    }
}

impl Lpm<Ipv4Addr> for LCTrieMap<Ipv4Net, Option<u16>> {
    #[inline]
    fn lpm(&self, addr: Ipv4Addr) -> Option<u16> {
        *self.lookup(&addr).1
    }
}

impl Lpm<Ipv6Addr> for LCTrieMap<Ipv6Net, Option<u16>> {
    #[inline]
    fn lpm(&self, addr: Ipv6Addr) -> Option<u16> {
        *self.lookup(&addr).1
    }
}

impl Lpm<Ipv4Addr> for Poptrie<Ipv4Net, u16> {
    #[inline]
    fn lpm(&self, addr: Ipv4Addr) -> Option<u16> {
        self.lookup(addr).copied()
    }
}

impl Lpm<Ipv6Addr> for Poptrie<Ipv6Net, u16> {
    #[inline]
    fn lpm(&self, addr: Ipv6Addr) -> Option<u16> {
        self.lookup(addr).copied()
    }
}

impl Lpm<Ipv4Addr> for IpLookupTable<Ipv4Addr, u16> {
    #[inline]
    fn lpm(&self, addr: Ipv4Addr) -> Option<u16> {
        self.longest_match(addr).map(|(_, _, &v)| v)
    }
}

impl Lpm<Ipv6Addr> for IpLookupTable<Ipv6Addr, u16> {
    #[inline]
    fn lpm(&self, addr: Ipv6Addr) -> Option<u16> {
        self.longest_match(addr).map(|(_, _, &v)| v)
    }
}

impl<P, I, O, T> Peers<P, I, O, T> {
    /// Fails loudly (an error naming the peer and the address) unless every peer returns
    /// `ours(a)` for every address of `addrs`: a peer that disagrees is misused.
    pub(crate) fn check<A>(
        &self,
        addrs: &[A],
        ours: impl Fn(A) -> Option<u16>,
    ) -> anyhow::Result<()>
    where
        A: Copy + std::fmt::Display,
        P: Lpm<A>,
        I: Lpm<A>,
        O: Lpm<A>,
        T: Lpm<A>,
    {
        for &a in addrs {
            let want = ours(a);
            let got = [
                self.prefix_trie.lpm(a),
                self.iptrie.lpm(a),
                self.poptrie.lpm(a),
                self.treebitmap.lpm(a),
            ];
            for (name, got) in NAMES.iter().zip(got) {
                anyhow::ensure!(
                    got == want,
                    "peer {name} disagrees with our table at {a}: {got:?}, ours {want:?}"
                );
            }
        }
        Ok(())
    }
}

/// Sum of the values one peer finds for `stream` (one timed pass).
pub(crate) fn pass<A: Copy, L: Lpm<A>>(peer: &L, stream: &[A]) -> u64 {
    stream
        .iter()
        .map(|&a| u64::from(peer.lpm(a).unwrap_or(0)))
        .sum()
}
