//! Strict CIDR text (contract §7) and its canonical form (§7.3).
//!
//! `ipnet` alone is too lenient for the API (it keeps host bits, reads `010.0.0.0/8` as
//! decimal), so [`Cidr::parse_strict`] checks the text itself before building the value:
//!
//! - no whitespace anywhere, a `/len` is required, `len` is decimal without leading zeros;
//! - IPv4: four decimal octets, no leading zeros, no shorthand;
//! - IPv6: any RFC 4291 text (upper case, `::`, embedded IPv4 in the last 32 bits), no
//!   zone id;
//! - no host bits.
//!
//! [`Cidr`]'s `Display` is the canonical form: dotted decimal for IPv4, RFC 5952 for IPv6
//! (lower case, no leading zeros, the longest run of ≥ 2 zero groups as `::`, leftmost on
//! ties, never embedded-IPv4 notation).

use ipnet::{IpNet, Ipv4Net, Ipv6Net};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// Why CIDR text was refused. Every variant is the API's `1102`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CidrError {
    /// Empty text.
    #[error("cidr is empty")]
    Empty,
    /// Whitespace somewhere (nothing is trimmed).
    #[error("cidr {0:?} contains whitespace")]
    Whitespace(String),
    /// A bare address without `/len`.
    #[error("cidr {0:?} has no prefix length")]
    MissingLength(String),
    /// The address part does not parse strictly.
    #[error("cidr {0:?}: invalid address")]
    BadAddress(String),
    /// The length is not a plain decimal within the family's range.
    #[error("cidr {0:?}: invalid prefix length")]
    BadLength(String),
    /// Bits set after the prefix length (`203.0.113.5/24`).
    #[error("cidr {0:?} has host bits set")]
    HostBits(String),
}

/// A network in canonical form: no host bits, checked on construction.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Cidr(IpNet);

/// Parses a strict dotted quad: four decimal octets 0..=255 without leading zeros.
pub fn parse_ipv4_strict(s: &str) -> Option<Ipv4Addr> {
    let mut octets = [0u8; 4];
    let mut parts = s.split('.');
    for o in octets.iter_mut() {
        let p = parts.next()?;
        if p.is_empty() || p.len() > 3 || !p.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        if p.len() > 1 && p.starts_with('0') {
            return None;
        }
        *o = p.parse().ok()?;
    }
    if parts.next().is_some() {
        return None;
    }
    Some(Ipv4Addr::from(octets))
}

/// Parses IPv6 text (RFC 4291 forms, any case). Zone ids are refused; an embedded IPv4
/// tail must itself be a strict dotted quad.
pub fn parse_ipv6_strict(s: &str) -> Option<Ipv6Addr> {
    if s.contains('%') || s.is_empty() {
        return None;
    }
    if let Some(idx) = s.rfind(':') {
        let tail = &s[idx + 1..];
        if tail.contains('.') {
            parse_ipv4_strict(tail)?;
        }
    }
    s.parse().ok()
}

/// Parses a single address strictly (the forms above), IPv4 or IPv6.
pub fn parse_ip_strict(s: &str) -> Option<IpAddr> {
    if s.contains(':') {
        parse_ipv6_strict(s).map(IpAddr::V6)
    } else {
        parse_ipv4_strict(s).map(IpAddr::V4)
    }
}

/// Writes an IPv6 address in RFC 5952 form (never with embedded IPv4).
pub fn write_ipv6_canonical(a: &Ipv6Addr, f: &mut impl fmt::Write) -> fmt::Result {
    let g = a.segments();
    // Longest run of zero groups, length >= 2, leftmost on ties.
    let (mut best, mut best_len) = (9usize, 1usize); // 9: no run
    let mut i = 0;
    while i < 8 {
        if g[i] == 0 {
            let start = i;
            while i < 8 && g[i] == 0 {
                i += 1;
            }
            if i - start > best_len {
                best = start;
                best_len = i - start;
            }
        } else {
            i += 1;
        }
    }
    let mut i = 0;
    while i < 8 {
        if i == best {
            f.write_str("::")?;
            i += best_len;
            continue;
        }
        if i > 0 && (best == 9 || i != best + best_len) {
            f.write_char(':')?;
        }
        write!(f, "{:x}", g[i])?;
        i += 1;
    }
    Ok(())
}

/// The canonical text of an address: dotted decimal or RFC 5952.
pub fn canonical_ip(ip: IpAddr) -> String {
    match ip {
        IpAddr::V4(a) => a.to_string(),
        IpAddr::V6(a) => {
            let mut s = String::with_capacity(39);
            let _ = write_ipv6_canonical(&a, &mut s);
            s
        }
    }
}

impl Cidr {
    /// Parses CIDR text under the API's strict rules (module docs).
    pub fn parse_strict(s: &str) -> Result<Self, CidrError> {
        if s.is_empty() {
            return Err(CidrError::Empty);
        }
        if s.chars().any(char::is_whitespace) {
            return Err(CidrError::Whitespace(s.to_owned()));
        }
        let Some((addr, len)) = s.split_once('/') else {
            return Err(CidrError::MissingLength(s.to_owned()));
        };
        let len_ok = !len.is_empty()
            && len.len() <= 3
            && len.bytes().all(|b| b.is_ascii_digit())
            && !(len.len() > 1 && len.starts_with('0'));
        let len: u8 = match len_ok.then(|| len.parse::<u8>().ok()).flatten() {
            Some(l) => l,
            None => return Err(CidrError::BadLength(s.to_owned())),
        };
        let net = if addr.contains(':') {
            let a = parse_ipv6_strict(addr).ok_or_else(|| CidrError::BadAddress(s.to_owned()))?;
            IpNet::V6(Ipv6Net::new(a, len).map_err(|_| CidrError::BadLength(s.to_owned()))?)
        } else {
            let a = parse_ipv4_strict(addr).ok_or_else(|| CidrError::BadAddress(s.to_owned()))?;
            IpNet::V4(Ipv4Net::new(a, len).map_err(|_| CidrError::BadLength(s.to_owned()))?)
        };
        if net.trunc() != net {
            return Err(CidrError::HostBits(s.to_owned()));
        }
        Ok(Self(net))
    }

    /// Wraps a network, masking host bits (for values that did not come from API text).
    pub fn from_net(net: IpNet) -> Self {
        Self(net.trunc())
    }

    /// The network.
    pub fn net(&self) -> IpNet {
        self.0
    }

    /// The prefix length.
    pub fn prefix_len(&self) -> u8 {
        self.0.prefix_len()
    }

    /// True for IPv6.
    pub fn is_ipv6(&self) -> bool {
        matches!(self.0, IpNet::V6(_))
    }

    /// True when `ip` lies in this network (same family only).
    pub fn contains_ip(&self, ip: IpAddr) -> bool {
        self.0.contains(&ip)
    }

    /// True when `other` has the same family, a longer prefix, and lies inside `self`:
    /// "strictly more specific" (§7.1 rule 2).
    pub fn strictly_contains(&self, other: &Cidr) -> bool {
        self.is_ipv6() == other.is_ipv6()
            && other.prefix_len() > self.prefix_len()
            && self.0.contains(&other.0.network())
    }

    /// True when the two networks share at least one address.
    pub fn overlaps(&self, other: &Cidr) -> bool {
        self.is_ipv6() == other.is_ipv6()
            && (self.0.contains(&other.0.network()) || other.0.contains(&self.0.network()))
    }
}

impl fmt::Display for Cidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            IpNet::V4(n) => write!(f, "{}/{}", n.network(), n.prefix_len()),
            IpNet::V6(n) => {
                write_ipv6_canonical(&n.network(), f)?;
                write!(f, "/{}", n.prefix_len())
            }
        }
    }
}

impl fmt::Debug for Cidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Cidr({self})")
    }
}

impl std::str::FromStr for Cidr {
    type Err = CidrError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse_strict(s)
    }
}

impl Serialize for Cidr {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Cidr {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Self::parse_strict(&s).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(s: &str) -> String {
        Cidr::parse_strict(s)
            .unwrap_or_else(|e| panic!("{s}: {e}"))
            .to_string()
    }

    #[test]
    fn ipv4_strict() {
        assert_eq!(ok("203.0.113.0/24"), "203.0.113.0/24");
        assert_eq!(ok("0.0.0.0/0"), "0.0.0.0/0");
        assert_eq!(ok("203.0.113.7/32"), "203.0.113.7/32");
        use CidrError::*;
        type Make = fn(String) -> CidrError;
        let cases: &[(&str, Make)] = &[
            ("203.0.113.5/24", HostBits),
            ("203.0.113.7", MissingLength),
            ("010.0.0.0/8", BadAddress),
            ("203.000.113.0/24", BadAddress),
            ("203.0.113/24", BadAddress),
            ("203.0.113.0.0/24", BadAddress),
            ("256.0.0.0/8", BadAddress),
            ("0x1.0.0.0/8", BadAddress),
            ("203.0.113.0/024", BadLength),
            ("203.0.113.0/33", BadLength),
            ("203.0.113.0/", BadLength),
            ("203.0.113.0/+4", BadLength),
        ];
        for (s, e) in cases {
            assert_eq!(Cidr::parse_strict(s).unwrap_err(), e(s.to_string()), "{s}");
        }
        assert_eq!(
            Cidr::parse_strict(" 203.0.113.0/24").unwrap_err(),
            Whitespace(" 203.0.113.0/24".into())
        );
        assert_eq!(
            Cidr::parse_strict("203.0.113.0/24\n").unwrap_err(),
            Whitespace("203.0.113.0/24\n".into())
        );
        assert_eq!(Cidr::parse_strict("").unwrap_err(), Empty);
    }

    #[test]
    fn ipv6_strict_and_canonical() {
        assert_eq!(ok("2001:DB8::/32"), "2001:db8::/32");
        assert_eq!(
            ok("2001:0db8:0000:0000:0000:0000:0000:0000/48"),
            "2001:db8::/48"
        );
        assert_eq!(ok("2001:db8:0:1:0:0:0:0/64"), "2001:db8:0:1::/64");
        // Leftmost of two equal runs.
        assert_eq!(ok("2001:db8:0:0:1:0:0:1/128"), "2001:db8::1:0:0:1/128");
        assert_eq!(ok("2001:db8:0:0:1:0:0:0/128"), "2001:db8:0:0:1::/128");
        // A single zero group is not compressed.
        assert_eq!(ok("2001:db8:0:1:1:1:1:0/127"), "2001:db8:0:1:1:1:1:0/127");
        // Longest run wins even when not leftmost.
        assert_eq!(ok("2001:0:0:1:0:0:0:0/128"), "2001:0:0:1::/128");
        // Embedded IPv4 accepted on input, never shown on output.
        assert_eq!(ok("::ffff:203.0.113.0/120"), "::ffff:cb00:7100/120");
        assert_eq!(ok("::/0"), "::/0");
        assert!(Cidr::parse_strict("::ffff:203.0.113.0/120")
            .unwrap()
            .is_ipv6());
        use CidrError::*;
        for (s, want) in [
            ("fe80::%eth0/64", BadAddress("fe80::%eth0/64".into())),
            ("fe80::1%1/128", BadAddress("fe80::1%1/128".into())),
            ("2001:db8::1/64", HostBits("2001:db8::1/64".into())),
            ("2001:db8::", MissingLength("2001:db8::".into())),
            ("2001:db8::/129", BadLength("2001:db8::/129".into())),
            ("2001:db8:::/48", BadAddress("2001:db8:::/48".into())),
            (
                "::ffff:010.0.0.0/104",
                BadAddress("::ffff:010.0.0.0/104".into()),
            ),
            ("[2001:db8::]/32", BadAddress("[2001:db8::]/32".into())),
        ] {
            assert_eq!(Cidr::parse_strict(s).unwrap_err(), want, "{s}");
        }
    }

    #[test]
    fn canonical_matches_a_reference_formatter_for_zero_patterns() {
        // Exhaustive over which groups are zero (256 patterns), checked against an
        // independent rule: the output re-parses to the same address, and `::` appears
        // iff a zero run of length >= 2 exists, covering the longest/leftmost run.
        for mask in 0u16..256 {
            let segs: Vec<u16> = (0..8)
                .map(|i| if mask & (1 << i) != 0 { 0 } else { 0xab0 + i })
                .collect();
            let a = Ipv6Addr::new(
                segs[0], segs[1], segs[2], segs[3], segs[4], segs[5], segs[6], segs[7],
            );
            let text = canonical_ip(IpAddr::V6(a));
            assert_eq!(text.parse::<Ipv6Addr>().unwrap(), a, "{text}");
            let mut runs = vec![];
            let mut i = 0;
            while i < 8 {
                if segs[i] == 0 {
                    let s = i;
                    while i < 8 && segs[i] == 0 {
                        i += 1;
                    }
                    runs.push((s, i - s));
                } else {
                    i += 1;
                }
            }
            let longest = runs.iter().map(|r| r.1).max().unwrap_or(0);
            assert_eq!(text.contains("::"), longest >= 2, "{text}");
            if longest >= 2 {
                let (start, len) = *runs.iter().find(|r| r.1 == longest).unwrap();
                let groups_before = text.split("::").next().unwrap();
                let n_before = if groups_before.is_empty() {
                    0
                } else {
                    groups_before.split(':').count()
                };
                assert_eq!(n_before, start, "{text}");
                assert_eq!(text.matches("::").count(), 1);
                let _ = len;
            }
            assert!(!text.contains('.'));
            assert_eq!(text, text.to_lowercase());
        }
    }

    #[test]
    fn containment() {
        let p = Cidr::parse_strict("203.0.113.0/24").unwrap();
        let c = Cidr::parse_strict("203.0.113.128/25").unwrap();
        let other = Cidr::parse_strict("198.51.100.0/25").unwrap();
        let v6 = Cidr::parse_strict("::ffff:203.0.113.0/120").unwrap();
        assert!(p.strictly_contains(&c));
        assert!(!p.strictly_contains(&p));
        assert!(!c.strictly_contains(&p));
        assert!(!p.strictly_contains(&other));
        assert!(!p.strictly_contains(&v6));
        assert!(p.overlaps(&c) && c.overlaps(&p) && !p.overlaps(&other) && !p.overlaps(&v6));
        assert!(p.contains_ip("203.0.113.9".parse().unwrap()));
    }

    #[test]
    fn strict_ip() {
        assert!(parse_ip_strict("203.0.113.9").is_some());
        assert!(parse_ip_strict("203.0.113.09").is_none());
        assert!(parse_ip_strict("2001:DB8::1").is_some());
        assert!(parse_ip_strict("2001:db8::1%2").is_none());
        assert!(parse_ip_strict("203.0.113.0/24").is_none());
    }
}
