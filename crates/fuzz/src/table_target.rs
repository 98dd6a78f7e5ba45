//! The `table` target: tables built from arbitrary prefix sets, every lookup method
//! against a linear longest-match scan.

use arbitrary::{Result, Unstructured};
use inregion_table::Table;
use ipnet::{IpNet, Ipv4Net, Ipv6Net};
use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// The plain model: a map of prefixes (host bits cleared, the last insert wins) and the
/// longest containing prefix by a scan of all of them.
#[derive(Default)]
struct Model(BTreeMap<IpNet, u32>);

impl Model {
    fn longest(&self, a: IpAddr) -> Option<(IpNet, u32)> {
        self.0
            .iter()
            .filter(|(p, _)| p.contains(&a))
            .max_by_key(|(p, _)| p.prefix_len())
            .map(|(p, v)| (*p, *v))
    }
}

/// Builds a table from the input's inserts and removes, then checks lookups of
/// addresses chosen at and around the prefixes' edges and at random.
pub fn table(data: &[u8]) {
    let _ = run(&mut Unstructured::new(data));
}

fn prefix(u: &mut Unstructured<'_>, near: &[IpNet]) -> Result<IpNet> {
    // Often a neighbour of an existing prefix (nested, sibling, parent): the cases where
    // layouts differ.
    if !near.is_empty() && u.ratio(2, 3)? {
        let base = *u.choose(near)?;
        let delta: i8 = u.int_in_range(-3..=3)?;
        let len = (i16::from(base.prefix_len()) + i16::from(delta)).clamp(0, 128) as u8;
        let net = match base {
            IpNet::V4(n) => {
                let bits =
                    u32::from(n.network()) ^ (u.arbitrary::<u32>()? & u.arbitrary::<u32>()?);
                IpNet::V4(Ipv4Net::new(Ipv4Addr::from(bits), len.min(32)).expect("len ≤ 32"))
            }
            IpNet::V6(n) => {
                let bits =
                    u128::from(n.network()) ^ (u.arbitrary::<u128>()? & u.arbitrary::<u128>()?);
                IpNet::V6(Ipv6Net::new(Ipv6Addr::from(bits), len).expect("len ≤ 128"))
            }
        };
        return Ok(net.trunc());
    }
    Ok(if u.arbitrary()? {
        let len = u.int_in_range(0..=32)?;
        IpNet::V4(Ipv4Net::new(Ipv4Addr::from(u.arbitrary::<u32>()?), len).expect("len ≤ 32"))
    } else {
        let len = u.int_in_range(0..=128)?;
        IpNet::V6(Ipv6Net::new(Ipv6Addr::from(u.arbitrary::<u128>()?), len).expect("len ≤ 128"))
    }
    .trunc())
}

fn run(u: &mut Unstructured<'_>) -> Result<()> {
    // Few distinct values (regions) or many (one per prefix): the two layout families.
    let distinct: u32 = if u.arbitrary()? { 12 } else { 60_000 };
    let mut builder = Table::builder();
    let mut model = Model::default();
    let mut known: Vec<IpNet> = Vec::new();
    let ops = u.int_in_range(0..=400)?;
    for _ in 0..ops {
        let p = prefix(u, &known)?;
        if u.ratio(1, 8)? {
            assert_eq!(builder.remove(p), model.0.remove(&p), "remove {p}");
        } else {
            let v = u.int_in_range(0..=distinct)?;
            assert_eq!(builder.insert(p, v), model.0.insert(p, v), "insert {p}");
            known.push(p);
        }
    }
    let table = builder.build();
    assert_eq!(table.len(), model.0.len());
    assert!(
        table.iter().eq(model.0.iter().map(|(p, v)| (*p, *v))),
        "iter"
    );

    // Addresses: every prefix's first and last address and their neighbours, then some
    // chosen by the input.
    let mut addrs: Vec<IpAddr> = Vec::new();
    for p in model.0.keys() {
        for a in [p.network(), p.broadcast()] {
            addrs.push(a);
            match a {
                IpAddr::V4(x) => {
                    addrs.push(Ipv4Addr::from(u32::from(x).wrapping_add(1)).into());
                    addrs.push(Ipv4Addr::from(u32::from(x).wrapping_sub(1)).into());
                }
                IpAddr::V6(x) => {
                    addrs.push(Ipv6Addr::from(u128::from(x).wrapping_add(1)).into());
                    addrs.push(Ipv6Addr::from(u128::from(x).wrapping_sub(1)).into());
                }
            }
        }
    }
    while !u.is_empty() && addrs.len() < 4096 {
        addrs.push(if u.arbitrary()? {
            Ipv4Addr::from(u.arbitrary::<u32>()?).into()
        } else {
            Ipv6Addr::from(u.arbitrary::<u128>()?).into()
        });
    }

    let mut batch = vec![None; addrs.len()];
    table.lookup_batch(&addrs, &mut batch);
    let v4: Vec<Ipv4Addr> = addrs
        .iter()
        .filter_map(|a| match a {
            IpAddr::V4(x) => Some(*x),
            IpAddr::V6(_) => None,
        })
        .collect();
    let v6: Vec<Ipv6Addr> = addrs
        .iter()
        .filter_map(|a| match a {
            IpAddr::V6(x) => Some(*x),
            IpAddr::V4(_) => None,
        })
        .collect();
    let mut batch4 = vec![None; v4.len()];
    table.lookup_batch_v4(&v4, &mut batch4);
    let mut batch6 = vec![None; v6.len()];
    table.lookup_batch_v6(&v6, &mut batch6);
    let (mut i4, mut i6) = (0, 0);
    for (a, got_batch) in addrs.iter().zip(&batch) {
        let want = model.longest(*a);
        let value = want.map(|(_, v)| v);
        assert_eq!(table.lookup(*a), value, "lookup {a}: model {want:?}");
        assert_eq!(*got_batch, value, "lookup_batch {a}");
        assert_eq!(table.longest_match(*a), want, "longest_match {a}");
        match a {
            IpAddr::V4(x) => {
                assert_eq!(table.lookup_v4(*x), value, "lookup_v4 {a}");
                assert_eq!(batch4[i4], value, "lookup_batch_v4 {a}");
                i4 += 1;
            }
            IpAddr::V6(x) => {
                assert_eq!(table.lookup_v6(*x), value, "lookup_v6 {a}");
                assert_eq!(batch6[i6], value, "lookup_batch_v6 {a}");
                i6 += 1;
            }
        }
    }
    // A table rebuilt from itself is the same table.
    let again = table.to_builder().build();
    for a in addrs.iter().take(256) {
        assert_eq!(again.lookup(*a), table.lookup(*a), "rebuilt {a}");
    }
    Ok(())
}
