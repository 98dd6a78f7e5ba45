//! Shared workloads for the table benchmarks: the real BGP table, seeded synthetic
//! prefix sets, and address streams. Both the criterion bench (`benches/table.rs`) and
//! the quick comparison ([`crate::table`]) use these, so they measure the same inputs.
//!
//! Everything is deterministic for a given seed ([`rand_chacha::ChaCha8Rng`]).

use std::collections::HashSet;
use std::io::{BufRead, BufReader};
use std::net::{Ipv4Addr, Ipv6Addr};
use std::path::{Path, PathBuf};

use anyhow::Context;
use ip_network::{Ipv4Network, Ipv6Network};
use ip_network_table::IpNetworkTable;
use ipnet::{Ipv4Net, Ipv6Net};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// Number of distinct region ids given to the prefixes of every workload.
pub const REGIONS: u16 = 12;

/// The seeded random number generator used by all workloads.
pub fn rng(seed: u64) -> ChaCha8Rng {
    ChaCha8Rng::seed_from_u64(seed)
}

/// Where the real BGP table lives in the repository (`benches/data/bgpas.lpm.gz`).
pub fn bgp_path() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../benches/data/bgpas.lpm.gz")
}

/// The prefixes of a real BGP table, split by family, in file order.
#[derive(Clone, Debug, Default)]
pub struct BgpTable {
    /// IPv4 prefixes (1,072,529 in `bgpas.lpm.gz`).
    pub v4: Vec<Ipv4Net>,
    /// IPv6 prefixes (176,388 in `bgpas.lpm.gz`).
    pub v6: Vec<Ipv6Net>,
}

/// Loads a gzip-compressed `PREFIX ORIGIN_AS` file (one route per line; the AS is
/// ignored).
pub fn load_bgp(path: &Path) -> anyhow::Result<BgpTable> {
    let file = std::fs::File::open(path).with_context(|| format!("opening {}", path.display()))?;
    let reader = BufReader::new(flate2::read::GzDecoder::new(file));
    let mut table = BgpTable::default();
    for (number, line) in reader.lines().enumerate() {
        let line = line.with_context(|| format!("reading {}", path.display()))?;
        let Some(prefix) = line.split_whitespace().next() else {
            continue;
        };
        let net: ipnet::IpNet = prefix
            .parse()
            .with_context(|| format!("{}:{}: bad prefix {prefix:?}", path.display(), number + 1))?;
        match net {
            ipnet::IpNet::V4(n) => table.v4.push(n),
            ipnet::IpNet::V6(n) => table.v6.push(n),
        }
    }
    Ok(table)
}

/// Gives each prefix one of [`REGIONS`] region ids, uniformly at random.
pub fn with_regions<N: Copy>(prefixes: &[N], seed: u64) -> Vec<(N, u16)> {
    let mut rng = rng(seed);
    prefixes
        .iter()
        .map(|&n| (n, rng.gen_range(0..REGIONS)))
        .collect()
}

/// Region-like values: 24 distinct values given in runs of neighbouring prefixes (in
/// sorted order), so that neighbouring prefixes often share one, as a region's bindings
/// do. A run is `len / 200` prefixes, between 1 and 5,000 (the real IPv4 table: runs of
/// 5,000; 10k prefixes: runs of 50).
pub fn region_runs<N: Copy + Ord>(prefixes: &[N]) -> Vec<(N, u16)> {
    let mut sorted = prefixes.to_vec();
    sorted.sort();
    let run = (prefixes.len() / 200).clamp(1, 5_000);
    sorted
        .into_iter()
        .enumerate()
        .map(|(i, n)| (n, u16::try_from(i / run % 24).expect("< 24")))
        .collect()
}

/// `count` distinct IPv4 prefixes /16-/32 shaped like BYOIP customers: a tenth are
/// roots (/16-/22) at random addresses, the rest are nested inside an earlier prefix
/// (one to eight bits longer, often /24), so nesting runs several levels deep.
pub fn synthetic_v4_byoip(count: usize, seed: u64) -> Vec<Ipv4Net> {
    let mut rng = rng(seed);
    let mut seen = HashSet::with_capacity(count);
    let mut prefixes: Vec<Ipv4Net> = Vec::with_capacity(count);
    while prefixes.len() < count {
        let net = if prefixes.len() < count / 10 || rng.gen_ratio(1, 10) {
            let len = rng.gen_range(16..=22);
            Ipv4Net::new(Ipv4Addr::from(rng.gen::<u32>()), len)
                .expect("len <= 32")
                .trunc()
        } else {
            let parent = prefixes[rng.gen_range(0..prefixes.len())];
            if parent.prefix_len() == 32 {
                continue;
            }
            let len = if rng.gen_bool(0.3) && parent.prefix_len() < 24 {
                24
            } else {
                rng.gen_range(parent.prefix_len() + 1..=(parent.prefix_len() + 8).min(32))
            };
            let host = rng.gen::<u32>() & (u32::MAX >> parent.prefix_len());
            let addr = u32::from(parent.network()) | host;
            Ipv4Net::new(Ipv4Addr::from(addr), len)
                .expect("len <= 32")
                .trunc()
        };
        if seen.insert(net) {
            prefixes.push(net);
        }
    }
    prefixes
}

/// `count` distinct IPv6 prefixes /32-/64, mostly /48 (80 %; then /56 10 %, /64 5 %,
/// /36-/44 5 %), inside 2,000 random /32s of 2000::/3.
pub fn synthetic_v6(count: usize, seed: u64) -> Vec<Ipv6Net> {
    let mut rng = rng(seed);
    let roots: Vec<u128> = (0..2_000)
        .map(|_| (0x2000u128 << 112 | (rng.gen::<u128>() >> 3)) & !(u128::MAX >> 32))
        .collect();
    let mut seen = HashSet::with_capacity(count);
    let mut prefixes = Vec::with_capacity(count);
    for &root in &roots {
        let net = Ipv6Net::new(Ipv6Addr::from(root), 32).expect("len <= 128");
        if seen.insert(net) {
            prefixes.push(net);
        }
    }
    while prefixes.len() < count {
        let root = roots[rng.gen_range(0..roots.len())];
        let len = match rng.gen_range(0..100) {
            0..80 => 48,
            80..90 => 56,
            90..95 => 64,
            _ => rng.gen_range(36..=44),
        };
        let addr = root | (rng.gen::<u128>() >> 32);
        let net = Ipv6Net::new(Ipv6Addr::from(addr), len)
            .expect("len <= 128")
            .trunc();
        if seen.insert(net) {
            prefixes.push(net);
        }
    }
    prefixes
}

/// `count` uniformly random IPv4 addresses.
pub fn uniform_v4(count: usize, seed: u64) -> Vec<Ipv4Addr> {
    let mut rng = rng(seed);
    (0..count)
        .map(|_| Ipv4Addr::from(rng.gen::<u32>()))
        .collect()
}

/// `count` uniformly random IPv6 addresses inside 2000::/3 (global unicast; outside it
/// every lookup misses at the first level).
pub fn uniform_v6(count: usize, seed: u64) -> Vec<Ipv6Addr> {
    let mut rng = rng(seed);
    (0..count)
        .map(|_| Ipv6Addr::from(0x2000u128 << 112 | (rng.gen::<u128>() >> 3)))
        .collect()
}

/// `count` addresses, each uniformly random inside a uniformly chosen prefix of
/// `prefixes` (a hit-heavy stream: every address matches at least that prefix).
pub fn hits_v4(prefixes: &[Ipv4Net], count: usize, seed: u64) -> Vec<Ipv4Addr> {
    let mut rng = rng(seed);
    (0..count)
        .map(|_| {
            let net = prefixes[rng.gen_range(0..prefixes.len())];
            let host = rng
                .gen::<u32>()
                .checked_shr(u32::from(net.prefix_len()))
                .unwrap_or(0);
            Ipv4Addr::from(u32::from(net.network()) | host)
        })
        .collect()
}

/// [`hits_v4`] for IPv6.
pub fn hits_v6(prefixes: &[Ipv6Net], count: usize, seed: u64) -> Vec<Ipv6Addr> {
    let mut rng = rng(seed);
    (0..count)
        .map(|_| {
            let net = prefixes[rng.gen_range(0..prefixes.len())];
            let host = rng
                .gen::<u128>()
                .checked_shr(u32::from(net.prefix_len()))
                .unwrap_or(0);
            Ipv6Addr::from(u128::from(net.network()) | host)
        })
        .collect()
}

/// The next index of a dependent stream: the address looked up next depends on the
/// result of the previous lookup, so lookups cannot overlap (this measures latency).
#[inline(always)]
pub fn dependent_next(position: usize, previous: Option<u16>, len: usize) -> usize {
    (position + 1 + usize::from(previous.unwrap_or(0))) % len
}

/// Builds our table from `(prefix, region)` pairs.
pub fn build_ours_v4(prefixes: &[(Ipv4Net, u16)]) -> inregion_table::Table<u16> {
    let mut builder = inregion_table::TableBuilder::new();
    for &(net, region) in prefixes {
        builder.insert_v4(net, region);
    }
    builder.build()
}

/// Builds our table from IPv6 `(prefix, region)` pairs.
pub fn build_ours_v6(prefixes: &[(Ipv6Net, u16)]) -> inregion_table::Table<u16> {
    let mut builder = inregion_table::TableBuilder::new();
    for &(net, region) in prefixes {
        builder.insert_v6(net, region);
    }
    builder.build()
}

/// Builds the baseline (`ip_network_table` 0.2) from the same pairs.
pub fn build_baseline_v4(prefixes: &[(Ipv4Net, u16)]) -> IpNetworkTable<u16> {
    let mut table = IpNetworkTable::new();
    for &(net, region) in prefixes {
        table.insert(to_network_v4(net), region);
    }
    table
}

/// Builds the baseline from IPv6 pairs.
pub fn build_baseline_v6(prefixes: &[(Ipv6Net, u16)]) -> IpNetworkTable<u16> {
    let mut table = IpNetworkTable::new();
    for &(net, region) in prefixes {
        table.insert(to_network_v6(net), region);
    }
    table
}

/// Converts an `ipnet` prefix to the baseline's type (host bits dropped).
pub fn to_network_v4(net: Ipv4Net) -> Ipv4Network {
    Ipv4Network::new_truncate(net.network(), net.prefix_len()).expect("len <= 32")
}

/// Converts an `ipnet` prefix to the baseline's type (host bits dropped).
pub fn to_network_v6(net: Ipv6Net) -> Ipv6Network {
    Ipv6Network::new_truncate(net.network(), net.prefix_len()).expect("len <= 128")
}

/// Heap bytes of the baseline for these IPv4 pairs, measured on an identical copy of the
/// trie that `ip_network_table` wraps (its own type does not expose the figure):
/// `(nodes, results)` bytes as reported by the trie, summed.
pub fn baseline_bytes_v4(prefixes: &[(Ipv4Net, u16)]) -> usize {
    let mut trie = ip_network_table_deps_treebitmap::IpLookupTable::new();
    for &(net, region) in prefixes {
        trie.insert(net.network(), u32::from(net.prefix_len()), region);
    }
    let (nodes, results) = trie.mem_usage();
    nodes + results
}

/// [`baseline_bytes_v4`] for IPv6.
pub fn baseline_bytes_v6(prefixes: &[(Ipv6Net, u16)]) -> usize {
    let mut trie = ip_network_table_deps_treebitmap::IpLookupTable::new();
    for &(net, region) in prefixes {
        trie.insert(net.network(), u32::from(net.prefix_len()), region);
    }
    let (nodes, results) = trie.mem_usage();
    nodes + results
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn synthetic_sets_have_the_requested_shape() {
        let v4 = synthetic_v4_byoip(2_000, 1);
        assert_eq!(v4.len(), 2_000);
        assert!(v4
            .iter()
            .all(|n| (16..=32).contains(&n.prefix_len()) && n.trunc() == *n));
        let nested = v4
            .iter()
            .filter(|n| v4.iter().any(|m| m != *n && m.contains(*n)))
            .count();
        assert!(nested > 1_000, "only {nested} nested prefixes");
        // 2,000 /32 roots, then 18,000 prefixes of which ~80 % are /48.
        let v6 = synthetic_v6(20_000, 2);
        assert_eq!(v6.len(), 20_000);
        assert!(v6.iter().all(|n| (32..=64).contains(&n.prefix_len())));
        assert!(v6.iter().filter(|n| n.prefix_len() == 48).count() > 13_000);
    }

    #[test]
    fn hit_streams_fall_inside_the_prefixes() {
        let v4 = synthetic_v4_byoip(100, 3);
        for a in hits_v4(&v4, 1_000, 4) {
            assert!(v4.iter().any(|n| n.contains(&a)));
        }
        let v6 = synthetic_v6(2_100, 5);
        for a in hits_v6(&v6, 200, 6) {
            assert!(v6.iter().any(|n| n.contains(&a)));
        }
    }

    #[test]
    fn workloads_are_deterministic() {
        assert_eq!(synthetic_v4_byoip(500, 7), synthetic_v4_byoip(500, 7));
        assert_eq!(uniform_v6(10, 8), uniform_v6(10, 8));
        assert_eq!(with_regions(&[1, 2, 3], 9), with_regions(&[1, 2, 3], 9));
    }
}
