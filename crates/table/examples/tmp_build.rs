use std::net::Ipv4Addr;
use std::time::Instant;
use ipnet::Ipv4Net;
use inregion_table::Table;
fn main() {
    let mut s: u64 = 1;
    let mut next = || { s ^= s << 13; s ^= s >> 7; s ^= s << 17; s };
    let mut prefixes: Vec<Ipv4Net> = Vec::new();
    let mut seen = std::collections::HashSet::new();
    while prefixes.len() < 10_000 {
        let net = if prefixes.len() < 1000 || next() % 10 == 0 {
            let len = 16 + (next() % 7) as u8;
            Ipv4Net::new(Ipv4Addr::from(next() as u32), len).unwrap().trunc()
        } else {
            let p = prefixes[(next() % prefixes.len() as u64) as usize];
            if p.prefix_len() == 32 { continue; }
            let len = if next() % 10 < 3 && p.prefix_len() < 24 { 24 } else { p.prefix_len() + 1 + (next() % ((p.prefix_len() as u64 + 8).min(32) - p.prefix_len() as u64)) as u8 };
            let host = (next() as u32) & (u32::MAX >> p.prefix_len());
            Ipv4Net::new(Ipv4Addr::from(u32::from(p.network()) | host), len).unwrap().trunc()
        };
        if seen.insert(net) { prefixes.push(net); }
    }
    let mut b = Table::builder();
    for (i, p) in prefixes.iter().enumerate() { b.insert((*p).into(), (i % 12) as u16); }
    let n: usize = std::env::args().nth(1).map(|a| a.parse().unwrap()).unwrap_or(200);
    let mut times = Vec::new();
    for _ in 0..n { let t = Instant::now(); let x = b.build(); times.push(t.elapsed().as_secs_f64() * 1e3); std::hint::black_box(x); }
    times.sort_by(|a, b| a.partial_cmp(b).unwrap());
    println!("build min {:.2} ms median {:.2} ms", times[0], times[n / 2]);
}
