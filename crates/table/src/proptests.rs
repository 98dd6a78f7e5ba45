//! Property tests: the compiled table against a linear-scan model and against
//! `ip_network_table` (the baseline), on random nested prefix sets and on addresses at
//! and around every prefix boundary.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use ip_network::{Ipv4Network, Ipv6Network};
use ip_network_table::IpNetworkTable;
use ipnet::{IpNet, Ipv4Net, Ipv6Net};
use proptest::prelude::*;

use crate::compile::{compile, CompileEntry};
use crate::dir::DirTrie;
use crate::nibble::NibbleTrie;
use crate::poptrie::{BatchWalk, Poptrie, BATCH_LANES};
use crate::table::with_portable_batches;
use crate::{Table, TableBuilder};

/// The obvious implementation: scan every prefix, keep the longest that contains `addr`.
/// Inserts in order, so a later duplicate replaces the earlier one (the builder's rule).
struct LinearModel {
    prefixes: Vec<(IpNet, u16)>,
}

impl LinearModel {
    fn new(inserts: &[(IpNet, u16)]) -> Self {
        let mut prefixes: Vec<(IpNet, u16)> = Vec::new();
        for &(net, value) in inserts {
            let net = net.trunc();
            match prefixes.iter_mut().find(|(n, _)| *n == net) {
                Some(slot) => slot.1 = value,
                None => prefixes.push((net, value)),
            }
        }
        LinearModel { prefixes }
    }

    fn longest_match(&self, addr: IpAddr) -> Option<(IpNet, u16)> {
        self.prefixes
            .iter()
            .filter(|(net, _)| net.contains(&addr))
            .max_by_key(|(net, _)| net.prefix_len())
            .copied()
    }
}

fn baseline(inserts: &[(IpNet, u16)]) -> IpNetworkTable<u16> {
    let mut table = IpNetworkTable::new();
    for &(net, value) in inserts {
        match net.trunc() {
            IpNet::V4(n) => {
                table.insert(
                    Ipv4Network::new(n.network(), n.prefix_len()).unwrap(),
                    value,
                );
            }
            IpNet::V6(n) => {
                table.insert(
                    Ipv6Network::new(n.network(), n.prefix_len()).unwrap(),
                    value,
                );
            }
        }
    }
    table
}

fn baseline_match(table: &IpNetworkTable<u16>, addr: IpAddr) -> Option<(IpNet, u16)> {
    table.longest_match(addr).map(|(net, &v)| {
        let net = match net {
            ip_network::IpNetwork::V4(n) => {
                IpNet::V4(Ipv4Net::new(n.network_address(), n.netmask()).unwrap())
            }
            ip_network::IpNetwork::V6(n) => {
                IpNet::V6(Ipv6Net::new(n.network_address(), n.netmask()).unwrap())
            }
        };
        (net, v)
    })
}

/// Addresses that exercise every boundary: first and last address of each prefix and
/// their neighbours, the extremes of both families, plus the random `extra` ones.
fn probe_addresses(inserts: &[(IpNet, u16)], extra: &[IpAddr]) -> Vec<IpAddr> {
    let mut addrs = vec![
        IpAddr::V4(Ipv4Addr::UNSPECIFIED),
        IpAddr::V4(Ipv4Addr::BROADCAST),
        IpAddr::V6(Ipv6Addr::UNSPECIFIED),
        IpAddr::V6(Ipv6Addr::from(u128::MAX)),
    ];
    for (net, _) in inserts {
        match net.trunc() {
            IpNet::V4(n) => {
                let (first, last) = (u32::from(n.network()), u32::from(n.broadcast()));
                for a in [first.wrapping_sub(1), first, first.wrapping_add(1)] {
                    addrs.push(IpAddr::V4(a.into()));
                }
                for a in [last.wrapping_sub(1), last, last.wrapping_add(1)] {
                    addrs.push(IpAddr::V4(a.into()));
                }
            }
            IpNet::V6(n) => {
                let (first, last) = (u128::from(n.network()), u128::from(n.broadcast()));
                for a in [first.wrapping_sub(1), first, first.wrapping_add(1)] {
                    addrs.push(IpAddr::V6(a.into()));
                }
                for a in [last.wrapping_sub(1), last, last.wrapping_add(1)] {
                    addrs.push(IpAddr::V6(a.into()));
                }
            }
        }
    }
    addrs.extend_from_slice(extra);
    addrs
}

/// IPv4 prefixes clustered under a few roots so that they nest often; lengths cover
/// /0, short, chunk boundaries (18, 24, 30) and /32. Host bits are left random on
/// purpose (the builder truncates).
fn v4_prefix() -> impl Strategy<Value = IpNet> {
    let root = prop_oneof![
        Just(0x0A00_0000u32),
        Just(0xC0A8_0000),
        Just(0xFFFF_FF00),
        any::<u32>()
    ];
    let len = prop_oneof![
        Just(0u8),
        1u8..=17,
        Just(18),
        19u8..=24,
        25u8..=31,
        Just(32),
        Just(30),
        Just(24)
    ];
    (root, any::<u32>(), len).prop_map(|(root, noise, len)| {
        // Keep the root's top 16 bits most of the time so prefixes overlap.
        let addr = if noise % 4 == 0 {
            noise
        } else {
            (root & 0xFFFF_0000) | (noise & 0xFFFF)
        };
        IpNet::V4(Ipv4Net::new(addr.into(), len).unwrap())
    })
}

fn v6_prefix() -> impl Strategy<Value = IpNet> {
    let root = prop_oneof![
        Just(0x2001_0db8u128 << 96),
        Just(0x2a00u128 << 112),
        Just(u128::MAX),
        any::<u128>()
    ];
    let len = prop_oneof![
        Just(0u8),
        1u8..=16,
        17u8..=32,
        Just(48),
        33u8..=64,
        65u8..=127,
        Just(124),
        Just(128)
    ];
    (root, any::<u128>(), len).prop_map(|(root, noise, len)| {
        let addr = if noise % 4 == 0 {
            noise
        } else {
            (root & !(u128::MAX >> 40)) | (noise >> 40)
        };
        IpNet::V6(Ipv6Net::new(addr.into(), len).unwrap())
    })
}

fn inserts() -> impl Strategy<Value = Vec<(IpNet, u16)>> {
    // Few distinct values (like region ids) so that leaf aggregation is exercised, or up
    // to 40 so that tables with more than 15 values (the leaf-array layout) are covered
    // too; and duplicates of earlier prefixes with new values.
    prop_oneof![Just(6u16), Just(40u16)].prop_flat_map(inserts_with_values_below)
}

fn inserts_with_values_below(max_value: u16) -> impl Strategy<Value = Vec<(IpNet, u16)>> {
    let one = (prop_oneof![v4_prefix(), v6_prefix()], 1u16..max_value);
    prop::collection::vec(one, 0..60).prop_flat_map(move |list| {
        let len = list.len();
        let dups = prop::collection::vec((0..len.max(1), 1u16..max_value), 0..4);
        // Splits: an existing prefix's sibling with the same value (two halves of one
        // block in one region) and a longer prefix inside the sibling with another: the
        // shape that once made path compression answer no region in the first half.
        let splits = prop::collection::vec(
            (0..len.max(1), 1u8..=12, 1u16..max_value, any::<u128>()),
            0..4,
        );
        (dups, splits).prop_map(move |(dups, splits)| {
            let mut list = list.clone();
            for (i, value) in dups {
                if let Some(&(net, _)) = list.get(i) {
                    list.push((net, value));
                }
            }
            for (i, deeper, value, noise) in splits {
                if let Some(&(net, same)) = list.get(i) {
                    if let Some((sibling, inner)) = sibling_and_inner(net.trunc(), deeper, noise) {
                        list.push((sibling, same));
                        list.push((inner, value));
                    }
                }
            }
            list
        })
    })
}

/// The other half of `net`'s parent, and a prefix `deeper` bits longer inside that
/// sibling (host bits from `noise`). `None` for a /0 (no sibling).
fn sibling_and_inner(net: IpNet, deeper: u8, noise: u128) -> Option<(IpNet, IpNet)> {
    let len = net.prefix_len();
    if len == 0 {
        return None;
    }
    Some(match net {
        IpNet::V4(n) => {
            let flip = 1u32 << (32 - u32::from(len));
            let sib = u32::from(n.network()) ^ flip;
            let inner_len = (len + deeper).min(32);
            let inner = sib | (noise as u32 & (flip - 1));
            (
                IpNet::V4(Ipv4Net::new(sib.into(), len).unwrap()),
                IpNet::V4(Ipv4Net::new(inner.into(), inner_len).unwrap().trunc()),
            )
        }
        IpNet::V6(n) => {
            let flip = 1u128 << (128 - u32::from(len));
            let sib = u128::from(n.network()) ^ flip;
            let inner_len = (len + deeper).min(128);
            let inner = sib | (noise & (flip - 1));
            (
                IpNet::V6(Ipv6Net::new(sib.into(), len).unwrap()),
                IpNet::V6(Ipv6Net::new(inner.into(), inner_len).unwrap().trunc()),
            )
        }
    })
}

/// Prefixes that share long paths, as compressed nodes meet them: under one random
/// root, each prefix keeps the root's first `shared` bits (0 to 128) and takes random
/// bits after them, with a length anywhere from 1 to 128; IPv4 or IPv6 (with the IPv4
/// root in the top 32 bits of the same draw). Few values, so the nibble layout takes
/// them.
fn deep_cluster() -> impl Strategy<Value = Vec<(IpNet, u16)>> {
    let one = (0u32..=128, any::<u128>(), 1u8..=128, 1u16..6);
    (
        any::<u128>(),
        any::<bool>(),
        prop::collection::vec(one, 1..40),
    )
        .prop_map(|(root, v4, list)| {
            list.into_iter()
                .map(|(shared, noise, len, value)| {
                    let keep = u128::MAX.checked_shl(128 - shared).unwrap_or(0);
                    let addr = (root & keep) | (noise & !keep);
                    let net = if v4 {
                        let len = (len % 33).max(1);
                        IpNet::V4(Ipv4Net::new(((addr >> 96) as u32).into(), len).unwrap())
                    } else {
                        IpNet::V6(Ipv6Net::new(addr.into(), len).unwrap())
                    };
                    (net, value)
                })
                .collect()
        })
}

/// The network address of each prefix with each one of its bits flipped in turn
/// (keys that leave its path at every depth, where compressed nodes answer their
/// fallback), plus [`probe_addresses`].
fn path_probes(inserts: &[(IpNet, u16)]) -> Vec<IpAddr> {
    let mut addrs = probe_addresses(inserts, &[]);
    for (net, _) in inserts {
        match net.trunc() {
            IpNet::V4(n) => {
                let a = u32::from(n.network());
                addrs.extend((0..n.prefix_len()).map(|b| IpAddr::V4((a ^ 1 << (31 - b)).into())));
            }
            IpNet::V6(n) => {
                let a = u128::from(n.network());
                addrs.extend((0..n.prefix_len()).map(|b| IpAddr::V6((a ^ 1 << (127 - b)).into())));
            }
        }
    }
    addrs
}

fn random_addrs() -> impl Strategy<Value = Vec<IpAddr>> {
    prop::collection::vec(
        prop_oneof![
            any::<u32>().prop_map(|a| IpAddr::V4(a.into())),
            any::<u128>().prop_map(|a| IpAddr::V6(a.into())),
            // Near the clustered roots, where the prefixes are.
            any::<u16>().prop_map(|a| IpAddr::V4((0x0A00_0000 | u32::from(a)).into())),
            any::<u64>().prop_map(|a| IpAddr::V6(((0x2001_0db8u128 << 96) | u128::from(a)).into())),
        ],
        0..40,
    )
}

fn build(inserts: &[(IpNet, u16)]) -> (Table<u16>, Vec<Option<u16>>) {
    let (builder, previous) = builder(inserts);
    (builder.build(), previous)
}

fn builder(inserts: &[(IpNet, u16)]) -> (TableBuilder<u16>, Vec<Option<u16>>) {
    let mut builder = TableBuilder::new();
    let mut previous = Vec::new();
    for &(net, value) in inserts {
        previous.push(builder.insert(net, value));
    }
    (builder, previous)
}

/// The table as built (small IPv4 families take the DIR-16-8-8 layout) and as built
/// without that layout (the Poptrie layouts), so that the API is checked on both.
fn both_builds(inserts: &[(IpNet, u16)]) -> [Table<u16>; 2] {
    let (builder, _) = builder(inserts);
    [builder.build(), builder.build_with(false)]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 128, ..ProptestConfig::default() })]

    #[test]
    fn table_agrees_with_linear_model_and_ip_network_table(
        inserts in inserts(),
        extra in random_addrs(),
    ) {
        let model = LinearModel::new(&inserts);
        let base = baseline(&inserts);
        for table in both_builds(&inserts) {
        prop_assert_eq!(table.len(), model.prefixes.len());
        for addr in probe_addresses(&inserts, &extra) {
            let want = model.longest_match(addr);
            prop_assert_eq!(baseline_match(&base, addr), want, "baseline disagrees at {}", addr);
            prop_assert_eq!(table.lookup(addr), want.map(|(_, v)| v), "lookup at {}", addr);
            prop_assert_eq!(table.longest_match(addr), want, "longest_match at {}", addr);
            match addr {
                IpAddr::V4(a) => prop_assert_eq!(table.lookup_v4(a), want.map(|(_, v)| v)),
                IpAddr::V6(a) => prop_assert_eq!(table.lookup_v6(a), want.map(|(_, v)| v)),
            }
        }
        }
    }

    /// The Poptrie layouts at several direct-pointing widths, and the DIR-16-8-8 layout
    /// (fixed widths) on the same prefixes (the table picks 8 bits for an
    /// empty family, 16 for IPv6, 18 for IPv4): chunk boundaries fall elsewhere relative
    /// to the prefix lengths, so every width must give the linear model's answer.
    #[test]
    fn every_layout_agrees_with_linear_model_at_every_top_width(
        inserts in inserts_with_values_below(15),
        extra in random_addrs(),
        top in prop::sample::select(vec![8u32, 12, 16, 18, 20]),
    ) {
        let model = LinearModel::new(&inserts);
        let mut sorted: Vec<(Ipv4Net, u16)> = model
            .prefixes
            .iter()
            .filter_map(|&(net, v)| match net { IpNet::V4(n) => Some((n, v)), _ => None })
            .collect();
        sorted.sort_by_key(|&(n, _)| (n.network(), n.prefix_len()));
        let entries: Vec<CompileEntry> = sorted
            .iter()
            .map(|&(n, v)| CompileEntry {
                key: u128::from(u32::from(n.network())) << 96,
                len: n.prefix_len(),
                leaf: u32::from(v),
            })
            .collect();
        let poptrie = Poptrie::<u16>::build(&entries, top);
        let compressed = compile(&entries, top, true);
        let nibble = NibbleTrie::from_compiled(&compressed).expect("values < 15");
        let poptrie_c = Poptrie::<u16>::from_compiled(&compressed);
        let dir = DirTrie::build(&entries);
        prop_assert_eq!(dir.node_count(), DirTrie::chunks_for(&entries));
        let keys: Vec<u32> = probe_addresses(&inserts, &extra)
            .into_iter()
            .filter_map(|a| match a { IpAddr::V4(a) => Some(u32::from(a)), _ => None })
            .collect();
        for &key in &keys {
            let want = model.longest_match(IpAddr::V4(key.into())).map_or(0, |(_, v)| u32::from(v));
            prop_assert_eq!(poptrie.lookup(key), want, "poptrie, top {}, key {:#x}", top, key);
            prop_assert_eq!(nibble.lookup(key), want, "nibble, top {}, key {:#x}", top, key);
            prop_assert_eq!(poptrie_c.lookup(key), want, "compressed, top {}, key {:#x}", top, key);
            prop_assert_eq!(dir.lookup(key), want, "dir, key {:#x}", key);
        }
        for group in keys.chunks_exact(BATCH_LANES) {
            let group: &[u32; BATCH_LANES] = group.try_into().unwrap();
            let (mut a, mut b, mut c) =
                ([u32::MAX; BATCH_LANES], [u32::MAX; BATCH_LANES], [u32::MAX; BATCH_LANES]);
            poptrie.lookup_lanes(group, &mut a);
            nibble.lookup_lanes(group, &mut b);
            dir.lookup_lanes(group, &mut c);
            for (((&key, got_a), got_b), got_c) in group.iter().zip(a).zip(b).zip(c) {
                prop_assert_eq!(got_a, poptrie.lookup(key));
                prop_assert_eq!(got_b, poptrie.lookup(key));
                prop_assert_eq!(got_c, poptrie.lookup(key));
            }
        }
    }

    #[test]
    fn batch_lookup_equals_single_lookup(inserts in inserts(), extra in random_addrs()) {
        for table in both_builds(&inserts) {
        let addrs = probe_addresses(&inserts, &extra);
        let single: Vec<Option<u16>> = addrs.iter().map(|&a| table.lookup(a)).collect();
        let mut mixed = vec![Some(u16::MAX); addrs.len()];
        table.lookup_batch(&addrs, &mut mixed);
        prop_assert_eq!(&mixed, &single);

        let v4: Vec<Ipv4Addr> = addrs.iter().filter_map(|a| match a { IpAddr::V4(a) => Some(*a), _ => None }).collect();
        let mut out4 = vec![Some(u16::MAX); v4.len()];
        table.lookup_batch_v4(&v4, &mut out4);
        prop_assert_eq!(out4, v4.iter().map(|&a| table.lookup_v4(a)).collect::<Vec<_>>());

        let v6: Vec<Ipv6Addr> = addrs.iter().filter_map(|a| match a { IpAddr::V6(a) => Some(*a), _ => None }).collect();
        let mut out6 = vec![Some(u16::MAX); v6.len()];
        table.lookup_batch_v6(&v6, &mut out6);
        prop_assert_eq!(out6, v6.iter().map(|&a| table.lookup_v6(a)).collect::<Vec<_>>());
        }
    }

    /// Every layout the chooser can pick, forced per family (IPv4: DIR-16-8-8, nibble,
    /// Poptrie u16 and u32; IPv6: nibble, Poptrie u16 and u32), in every combination:
    /// single and batch lookups give the linear model's answer. Layouts a family cannot
    /// take (nibble with more than 15 values, DIR-16-8-8 without IPv4 prefixes) are
    /// refused, never built wrong.
    #[test]
    fn every_layout_the_chooser_can_pick_agrees_with_linear_model_per_family(
        inserts in inserts(),
        extra in random_addrs(),
    ) {
        use crate::Layout;
        let model = LinearModel::new(&inserts);
        let (builder, _) = builder(&inserts);
        let addrs = probe_addresses(&inserts, &extra);
        let want: Vec<Option<u16>> =
            addrs.iter().map(|&a| model.longest_match(a).map(|(_, v)| v)).collect();
        let v4_layouts = [Layout::Dir16_8_8, Layout::Nibble, Layout::PoptrieU16, Layout::PoptrieU32];
        let v6_layouts = [Layout::Nibble, Layout::PoptrieU16, Layout::PoptrieU32];
        let mut built = 0;
        for l4 in v4_layouts {
            for l6 in v6_layouts {
                let Ok(table) = builder.build_with_layouts(l4, l6) else { continue };
                built += 1;
                let stats = table.stats();
                prop_assert!(stats.v4_prefixes == 0 || stats.v4_layout == l4);
                prop_assert!(stats.v6_prefixes == 0 || stats.v6_layout == l6);
                let single: Vec<Option<u16>> = addrs.iter().map(|&a| table.lookup(a)).collect();
                prop_assert_eq!(&single, &want, "{} {}", l4, l6);
                let mut batch = vec![Some(u16::MAX); addrs.len()];
                table.lookup_batch(&addrs, &mut batch);
                prop_assert_eq!(&batch, &want, "batch {} {}", l4, l6);
                // The copy compiled for the x86-64 baseline (the CPU picks one of two).
                let mut portable = vec![Some(u16::MAX); addrs.len()];
                with_portable_batches(|| table.lookup_batch(&addrs, &mut portable));
                prop_assert_eq!(&portable, &want, "portable batch {} {}", l4, l6);
            }
        }
        // The Poptrie layouts fit every family.
        prop_assert!(built >= 4);
    }

    /// Compressed nodes start where their prefixes diverge (or the shortest ends), at
    /// most `MAX_JUMP` bits past their parent: on clusters of prefixes sharing long
    /// paths, the two layouts that compress (nibble and Poptrie u16), forced for the
    /// cluster's family, and the table the chooser builds give the linear model's
    /// answer, single and batch, at every prefix's boundaries and at its network
    /// address with each of its bits flipped.
    #[test]
    fn compressed_paths_agree_with_linear_model_on_deep_clusters(inserts in deep_cluster()) {
        use crate::Layout;
        let model = LinearModel::new(&inserts);
        let (builder, _) = builder(&inserts);
        let v4 = matches!(inserts[0].0, IpNet::V4(_));
        let forced = |layout| if v4 {
            builder.build_with_layouts(layout, Layout::Empty)
        } else {
            builder.build_with_layouts(Layout::Empty, layout)
        };
        let addrs = path_probes(&inserts);
        let want: Vec<Option<u16>> =
            addrs.iter().map(|&a| model.longest_match(a).map(|(_, v)| v)).collect();
        let nibble = forced(Layout::Nibble).expect("fewer than 15 values");
        let poptrie = forced(Layout::PoptrieU16).expect("fewer than 2^16 values");
        for table in [nibble, poptrie, builder.build()] {
            let single: Vec<Option<u16>> = addrs.iter().map(|&a| table.lookup(a)).collect();
            prop_assert_eq!(&single, &want, "{:?}", table.stats());
            let mut batch = vec![Some(u16::MAX); addrs.len()];
            table.lookup_batch(&addrs, &mut batch);
            prop_assert_eq!(&batch, &want, "batch {:?}", table.stats());
            let mut portable = vec![Some(u16::MAX); addrs.len()];
            with_portable_batches(|| table.lookup_batch(&addrs, &mut portable));
            prop_assert_eq!(&portable, &want, "portable batch {:?}", table.stats());
        }
        // The lane walk itself (the table batches small tries one address at a time),
        // at two direct-pointing widths, on the family's keys left-aligned in a u128.
        let mut sorted: Vec<(u128, u8, u16)> = model
            .prefixes
            .iter()
            .map(|&(net, v)| match net {
                IpNet::V4(n) => (u128::from(u32::from(n.network())) << 96, n.prefix_len(), v),
                IpNet::V6(n) => (u128::from(n.network()), n.prefix_len(), v),
            })
            .collect();
        sorted.sort_unstable();
        let entries: Vec<CompileEntry> = sorted
            .iter()
            .map(|&(key, len, v)| CompileEntry { key, len, leaf: u32::from(v) })
            .collect();
        let keys: Vec<(u128, u32)> = addrs
            .iter()
            .zip(&want)
            .filter(|(a, _)| a.is_ipv4() == v4)
            .map(|(a, w)| {
                let key = match a {
                    IpAddr::V4(a) => u128::from(u32::from(*a)) << 96,
                    IpAddr::V6(a) => u128::from(*a),
                };
                (key, w.map_or(0, u32::from))
            })
            .collect();
        for top in [8, 16] {
            let compiled = compile(&entries, top, true);
            let nibble = NibbleTrie::from_compiled(&compiled).expect("values < 15");
            let poptrie = Poptrie::<u16>::from_compiled(&compiled);
            for group in keys.chunks_exact(BATCH_LANES) {
                let lanes: [u128; BATCH_LANES] = std::array::from_fn(|i| group[i].0);
                let (mut out, mut out_p) = ([u32::MAX; BATCH_LANES], [u32::MAX; BATCH_LANES]);
                nibble.lookup_lanes(&lanes, &mut out);
                poptrie.lookup_lanes(&lanes, &mut out_p);
                for ((&(key, want), got), got_p) in group.iter().zip(out).zip(out_p) {
                    prop_assert_eq!(nibble.lookup(key), want, "top {} key {:#x}", top, key);
                    prop_assert_eq!(got, want, "lanes, top {} key {:#x}", top, key);
                    prop_assert_eq!(poptrie.lookup(key), want, "poptrie, top {} key {:#x}", top, key);
                    prop_assert_eq!(got_p, want, "poptrie lanes, top {} key {:#x}", top, key);
                }
            }
        }
    }

    #[test]
    fn insert_returns_the_previous_value_and_iter_lists_the_last_one(inserts in inserts()) {
        let (table, previous) = build(&inserts);
        for (i, &(net, _)) in inserts.iter().enumerate() {
            let earlier = inserts[..i].iter().rev().find(|(n, _)| n.trunc() == net.trunc());
            prop_assert_eq!(previous[i], earlier.map(|&(_, v)| v));
        }
        let model = LinearModel::new(&inserts);
        let mut want = model.prefixes.clone();
        want.sort_by_key(|&(net, _)| (matches!(net, IpNet::V6(_)), net));
        prop_assert_eq!(table.iter().collect::<Vec<_>>(), want);
    }
}
