//! The mutable side: collect `(prefix, value)` pairs, then compile a [`Table`].

use std::collections::BTreeMap;
use std::hash::Hash;
use std::net::{Ipv4Addr, Ipv6Addr};

use ipnet::{IpNet, Ipv4Net, Ipv6Net};

use crate::table::{Layout, LayoutError, Table};

/// Collects `(prefix, value)` pairs for IPv4 and IPv6 and compiles them into an
/// immutable [`Table`] with [`build`](Self::build).
///
/// - **Host bits are truncated**: inserting `10.1.2.3/8` stores `10.0.0.0/8`
///   ([`Ipv4Net::trunc`]); `remove` and lookups of the prefix set use the truncated
///   prefix too.
/// - **The same prefix twice: the last insert wins** and `insert` returns the value it
///   replaced.
/// - `/0` and host routes (`/32`, `/128`) are ordinary prefixes.
///
/// The builder keeps its prefixes in sorted maps, so `build` can be called repeatedly
/// (for example after each change) without consuming it.
///
/// `V` is a small copyable id (a region index); `Hash` lets the compiler map each
/// distinct value to a dense internal index.
#[derive(Clone, Debug)]
pub struct TableBuilder<V> {
    v4: BTreeMap<(Ipv4Addr, u8), V>,
    v6: BTreeMap<(Ipv6Addr, u8), V>,
}

impl<V> Default for TableBuilder<V> {
    fn default() -> Self {
        TableBuilder {
            v4: BTreeMap::new(),
            v6: BTreeMap::new(),
        }
    }
}

impl<V: Copy + Eq + Hash> TableBuilder<V> {
    /// An empty builder.
    pub fn new() -> Self {
        Self::default()
    }

    /// Inserts `prefix` (host bits truncated) with `value`; returns the value it had
    /// before, if any (the new value replaces it).
    pub fn insert(&mut self, prefix: IpNet, value: V) -> Option<V> {
        match prefix {
            IpNet::V4(net) => self.insert_v4(net, value),
            IpNet::V6(net) => self.insert_v6(net, value),
        }
    }

    /// [`insert`](Self::insert) for an IPv4 prefix.
    pub fn insert_v4(&mut self, prefix: Ipv4Net, value: V) -> Option<V> {
        let net = prefix.trunc();
        self.v4.insert((net.network(), net.prefix_len()), value)
    }

    /// [`insert`](Self::insert) for an IPv6 prefix.
    pub fn insert_v6(&mut self, prefix: Ipv6Net, value: V) -> Option<V> {
        let net = prefix.trunc();
        self.v6.insert((net.network(), net.prefix_len()), value)
    }

    /// Removes `prefix` (host bits truncated); returns its value if it was present.
    pub fn remove(&mut self, prefix: IpNet) -> Option<V> {
        match prefix {
            IpNet::V4(net) => self.remove_v4(net),
            IpNet::V6(net) => self.remove_v6(net),
        }
    }

    /// [`remove`](Self::remove) for an IPv4 prefix.
    pub fn remove_v4(&mut self, prefix: Ipv4Net) -> Option<V> {
        let net = prefix.trunc();
        self.v4.remove(&(net.network(), net.prefix_len()))
    }

    /// [`remove`](Self::remove) for an IPv6 prefix.
    pub fn remove_v6(&mut self, prefix: Ipv6Net) -> Option<V> {
        let net = prefix.trunc();
        self.v6.remove(&(net.network(), net.prefix_len()))
    }

    /// The value stored for exactly `prefix` (host bits truncated), if any.
    pub fn get(&self, prefix: IpNet) -> Option<V> {
        match prefix {
            IpNet::V4(net) => self.get_v4(net),
            IpNet::V6(net) => self.get_v6(net),
        }
    }

    /// [`get`](Self::get) for an IPv4 prefix.
    pub fn get_v4(&self, prefix: Ipv4Net) -> Option<V> {
        let net = prefix.trunc();
        self.v4.get(&(net.network(), net.prefix_len())).copied()
    }

    /// [`get`](Self::get) for an IPv6 prefix.
    pub fn get_v6(&self, prefix: Ipv6Net) -> Option<V> {
        let net = prefix.trunc();
        self.v6.get(&(net.network(), net.prefix_len())).copied()
    }

    /// Number of prefixes (IPv4 and IPv6).
    pub fn len(&self) -> usize {
        self.v4.len() + self.v6.len()
    }

    /// Whether no prefix has been inserted.
    pub fn is_empty(&self) -> bool {
        self.v4.is_empty() && self.v6.is_empty()
    }

    /// Removes every prefix.
    pub fn clear(&mut self) {
        self.v4.clear();
        self.v6.clear();
    }

    /// The prefixes in order (IPv4 first, then IPv6; each by address, then length).
    pub fn iter(&self) -> impl Iterator<Item = (IpNet, V)> + '_ {
        let v4 = self
            .v4
            .iter()
            .map(|(&(addr, len), &v)| (IpNet::V4(net4(addr, len)), v));
        let v6 = self
            .v6
            .iter()
            .map(|(&(addr, len), &v)| (IpNet::V6(net6(addr, len)), v));
        v4.chain(v6)
    }

    /// Compiles the current prefixes into an immutable, read-optimized [`Table`].
    ///
    /// Takes time roughly linear in the number of prefixes (about 0.1-0.3 s for a full
    /// BGP table in a release build); the builder is left unchanged.
    pub fn build(&self) -> Table<V> {
        self.build_with(true)
    }

    /// [`build`](Self::build), with each family's trie in the layout given instead of the
    /// one the table would choose: for benchmarks and tests that compare layouts. Fails
    /// when a family's prefixes cannot take it (more than 15 distinct values for
    /// [`Layout::Nibble`], IPv6 for [`Layout::Dir16_8_8`], prefixes for
    /// [`Layout::Empty`], ...).
    pub fn build_with_layouts(&self, v4: Layout, v6: Layout) -> Result<Table<V>, LayoutError> {
        self.compile_in(true, Some((v4, v6)))
    }

    /// [`build`](Self::build), with the DIR-16-8-8 IPv4 layout allowed or not (tests
    /// reach the Poptrie layouts through the table API this way).
    pub(crate) fn build_with(&self, dir: bool) -> Table<V> {
        self.compile_in(dir, None)
            .expect("the layouts the table chooses always fit")
    }

    fn compile_in(
        &self,
        dir: bool,
        force: Option<(Layout, Layout)>,
    ) -> Result<Table<V>, LayoutError> {
        Table::compile_in(
            self.v4
                .iter()
                .map(|(&(addr, len), &v)| (net4(addr, len), v)),
            self.v6
                .iter()
                .map(|(&(addr, len), &v)| (net6(addr, len), v)),
            dir,
            force,
        )
    }
}

impl<V: Copy + Eq + Hash> Extend<(IpNet, V)> for TableBuilder<V> {
    fn extend<I: IntoIterator<Item = (IpNet, V)>>(&mut self, iter: I) {
        for (prefix, value) in iter {
            self.insert(prefix, value);
        }
    }
}

impl<V: Copy + Eq + Hash> FromIterator<(IpNet, V)> for TableBuilder<V> {
    fn from_iter<I: IntoIterator<Item = (IpNet, V)>>(iter: I) -> Self {
        let mut builder = TableBuilder::new();
        builder.extend(iter);
        builder
    }
}

pub(crate) fn net4(addr: Ipv4Addr, len: u8) -> Ipv4Net {
    Ipv4Net::new(addr, len).expect("stored IPv4 prefix length <= 32")
}

pub(crate) fn net6(addr: Ipv6Addr, len: u8) -> Ipv6Net {
    Ipv6Net::new(addr, len).expect("stored IPv6 prefix length <= 128")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> IpNet {
        s.parse().unwrap()
    }

    #[test]
    fn insert_truncates_host_bits() {
        let mut b = TableBuilder::new();
        assert_eq!(b.insert(p("10.1.2.3/8"), 1u16), None);
        assert_eq!(b.get(p("10.0.0.0/8")), Some(1));
        assert_eq!(b.iter().next(), Some((p("10.0.0.0/8"), 1)));
        assert_eq!(b.insert(p("2001:db8::1/32"), 2u16), None);
        assert_eq!(b.get(p("2001:db8::/32")), Some(2));
    }

    #[test]
    fn the_last_insert_wins_and_returns_the_previous_value() {
        let mut b = TableBuilder::new();
        assert_eq!(b.insert(p("10.0.0.0/8"), 1u16), None);
        assert_eq!(b.insert(p("10.0.0.0/8"), 2), Some(1));
        assert_eq!(b.insert(p("10.9.9.9/8"), 3), Some(2));
        assert_eq!(b.len(), 1);
        assert_eq!(b.build().lookup("10.0.0.1".parse().unwrap()), Some(3));
    }

    #[test]
    fn remove_returns_the_value_and_forgets_the_prefix() {
        let mut b: TableBuilder<u16> = [(p("10.0.0.0/8"), 1), (p("::/0"), 2)].into_iter().collect();
        assert_eq!(b.remove(p("10.0.0.0/9")), None);
        assert_eq!(b.remove(p("10.2.0.0/8")), Some(1));
        assert_eq!(b.remove(p("10.0.0.0/8")), None);
        assert_eq!(b.len(), 1);
        b.clear();
        assert!(b.is_empty());
    }
}
