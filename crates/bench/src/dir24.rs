//! A plain DIR-24-8 (Gupta, Lin & McKeown, 1998), the textbook IPv4 lookup the table is
//! measured against on the real IPv4 table: 2^24 16-bit entries indexed by the first 24
//! bits of the address (32 MiB), and one 256-entry chunk per /24 that holds a longer
//! prefix. A lookup is one read, or two for an address in such a /24. Written the
//! obvious way on purpose: no batching, no prefetching, no compression.

use std::net::Ipv4Addr;

use ipnet::Ipv4Net;

/// Set in an entry of the first level that names a chunk (the low 15 bits are its
/// index); otherwise an entry is `value + 1`, or 0 for no match.
const CHUNK: u16 = 1 << 15;

/// A DIR-24-8 from IPv4 prefixes to `u16` values below 2^15 - 1.
pub(crate) struct Dir24 {
    top: Box<[u16]>,
    /// 256 entries per chunk (`value + 1`, or 0), chunk `c` at `c * 256`.
    chunks: Vec<u16>,
}

impl Dir24 {
    /// Builds the table; `None` when a value or the number of chunks does not fit 15
    /// bits. Later duplicates win, as in the table's builder.
    pub(crate) fn build(prefixes: &[(Ipv4Net, u16)]) -> Option<Self> {
        let mut by_len: Vec<(Ipv4Net, u16)> =
            prefixes.iter().map(|&(n, v)| (n.trunc(), v)).collect();
        // Stable: among duplicates the later one paints last.
        by_len.sort_by_key(|(n, _)| n.prefix_len());
        let mut top = vec![0u16; 1 << 24].into_boxed_slice();
        let mut chunks: Vec<u16> = Vec::new();
        for (net, value) in by_len {
            if value >= CHUNK - 1 {
                return None;
            }
            let entry = value + 1;
            let addr = u32::from(net.network());
            let len = u32::from(net.prefix_len());
            let hi = (addr >> 8) as usize;
            if len <= 24 {
                // Shorter prefixes came first: paint over them, and over the chunks of
                // the /24s inside (no prefix longer than 24 is painted yet).
                top[hi..hi + (1 << (24 - len))].fill(entry);
                continue;
            }
            if top[hi] & CHUNK == 0 {
                let index = u16::try_from(chunks.len() / 256)
                    .ok()
                    .filter(|&c| c < CHUNK)?;
                chunks.extend(std::iter::repeat_n(top[hi], 256));
                top[hi] = CHUNK | index;
            }
            let base = usize::from(top[hi] & !CHUNK) * 256;
            let lo = (addr & 0xFF) as usize;
            chunks[base + lo..base + lo + (1 << (32 - len))].fill(entry);
        }
        Some(Dir24 { top, chunks })
    }

    /// The value of the longest prefix containing `addr`, if any.
    #[inline]
    pub(crate) fn lookup(&self, addr: Ipv4Addr) -> Option<u16> {
        let a = u32::from(addr);
        let mut e = self.top[(a >> 8) as usize];
        if e & CHUNK != 0 {
            e = self.chunks[usize::from(e & !CHUNK) * 256 + (a & 0xFF) as usize];
        }
        e.checked_sub(1)
    }

    /// Heap bytes (both levels).
    pub(crate) fn bytes(&self) -> usize {
        std::mem::size_of_val(&*self.top) + std::mem::size_of_val(&*self.chunks)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn longest_prefix_wins_at_both_levels() {
        let p = |s: &str, v| (s.parse::<Ipv4Net>().unwrap(), v);
        let t = Dir24::build(&[
            p("10.1.2.128/25", 3),
            p("10.0.0.0/8", 1),
            p("10.1.2.0/24", 2),
            p("10.1.2.200/32", 4),
            p("0.0.0.0/0", 0),
        ])
        .unwrap();
        let at = |s: &str| t.lookup(s.parse().unwrap());
        assert_eq!(at("9.9.9.9"), Some(0));
        assert_eq!(at("10.9.9.9"), Some(1));
        assert_eq!(at("10.1.2.1"), Some(2));
        assert_eq!(at("10.1.2.129"), Some(3));
        assert_eq!(at("10.1.2.200"), Some(4));
        assert_eq!(t.bytes(), (1 << 25) + 512);
        assert!(Dir24::build(&[p("10.0.0.0/8", CHUNK)]).is_none());
    }
}
