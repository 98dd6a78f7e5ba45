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
pub const NAMES: [&str; 4] = ["prefix_trie", "iptrie", "poptrie", "treebitmap"];

/// A longest-prefix-match lookup from one address to its value.
pub trait Lpm<A> {
    /// The value of the longest prefix containing `addr`, if any.
    fn lpm(&self, addr: A) -> Option<u16>;
}

/// One table per peer, built from the same prefix list.
pub struct Peers<P, I, O, T> {
    /// `prefix-trie`'s `PrefixMap`.
    pub prefix_trie: P,
    /// `iptrie`'s LC-trie.
    pub iptrie: I,
    /// `poptrie`'s `Poptrie`.
    pub poptrie: O,
    /// treebitmap's `IpLookupTable`.
    pub treebitmap: T,
}

/// The IPv4 peers.
pub type PeersV4 = Peers<
    PrefixMap<Ipv4Net, u16>,
    LCTrieMap<Ipv4Net, Option<u16>>,
    Poptrie<Ipv4Net, u16>,
    IpLookupTable<Ipv4Addr, u16>,
>;

/// The IPv6 peers.
pub type PeersV6 = Peers<
    PrefixMap<Ipv6Net, u16>,
    LCTrieMap<Ipv6Net, Option<u16>>,
    Poptrie<Ipv6Net, u16>,
    IpLookupTable<Ipv6Addr, u16>,
>;

/// Builds every IPv4 peer from `prefixes` (later duplicates win, as in our builder).
pub fn build_v4(prefixes: &[(Ipv4Net, u16)]) -> PeersV4 {
    build(prefixes)
}

/// Builds every IPv6 peer from `prefixes` (later duplicates win, as in our builder).
pub fn build_v6(prefixes: &[(Ipv6Net, u16)]) -> PeersV6 {
    build(prefixes)
}

/// The peers of the family of `N`.
type FamilyPeers<N> = Peers<
    PrefixMap<N, u16>,
    LCTrieMap<N, Option<u16>>,
    Poptrie<N, u16>,
    IpLookupTable<<N as Net>::Ip, u16>,
>;

/// Builds every peer of one address family from `prefixes`.
fn build<N: Net>(prefixes: &[(N, u16)]) -> FamilyPeers<N> {
    let mut prefix_trie = PrefixMap::new();
    let mut radix = RTrieMap::with_root(None);
    let mut treebitmap = IpLookupTable::new();
    for &(net, value) in prefixes {
        let net = net.truncated();
        prefix_trie.insert(net, value);
        radix.insert(net, Some(value));
        treebitmap.insert(net.network_ip(), u32::from(net.length()), value);
    }
    Peers {
        prefix_trie,
        iptrie: radix.compress(),
        // Built in bulk (`FromIterator`): Poptrie's `insert` rebuilds leaf ranges on every
        // call, which takes minutes for the million prefixes of the real IPv4 table.
        poptrie: prefixes
            .iter()
            .map(|&(net, v)| (net.truncated(), v))
            .collect(),
        treebitmap,
    }
}

/// A prefix of one address family (`Ipv4Net` or `Ipv6Net`), as every peer takes it.
trait Net: Copy + prefix_trie::Prefix + iptrie::IpRootPrefix + poptrie::Prefix {
    /// The family's address type.
    type Ip: ip_network_table_deps_treebitmap::address::Address;
    /// The prefix with its host bits cleared.
    fn truncated(&self) -> Self;
    /// The network address.
    fn network_ip(&self) -> Self::Ip;
    /// The prefix length.
    fn length(&self) -> u8;
}

impl Net for Ipv4Net {
    type Ip = Ipv4Addr;
    fn truncated(&self) -> Self {
        self.trunc()
    }
    fn network_ip(&self) -> Ipv4Addr {
        self.network()
    }
    fn length(&self) -> u8 {
        self.prefix_len()
    }
}

impl Net for Ipv6Net {
    type Ip = Ipv6Addr;
    fn truncated(&self) -> Self {
        self.trunc()
    }
    fn network_ip(&self) -> Ipv6Addr {
        self.network()
    }
    fn length(&self) -> u8 {
        self.prefix_len()
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
    pub fn check<A>(&self, addrs: &[A], ours: impl Fn(A) -> Option<u16>) -> anyhow::Result<()>
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
pub fn pass<A: Copy, L: Lpm<A>>(peer: &L, stream: &[A]) -> u64 {
    stream
        .iter()
        .map(|&a| u64::from(peer.lpm(a).unwrap_or(0)))
        .sum()
}
