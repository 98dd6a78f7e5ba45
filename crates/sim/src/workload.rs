//! Workloads: the flows a scenario generates, in time order, from seeded streams.
//!
//! [`FlowGenerator`] is an iterator of [`FlowSpec`]s with non-decreasing arrival times;
//! it keeps O(1) state whatever the flow count (no list of flows is ever built). Each
//! attribute draws from its own stream (`rng.rs`).

use crate::rng::{stream, SimRng, Stream};
use crate::scenario::{Arrival, Dist, Workload};
use crate::time::SimTime;
use ipnet::IpNet;
use rand::Rng;
use rand_distr::{Distribution, Exp1, StandardNormal};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// Transport of a flow.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Protocol {
    /// A TCP connection.
    Tcp,
    /// A UDP flow.
    Udp,
    /// One DNS exchange over UDP port 53.
    Dns,
}

impl Protocol {
    /// All protocols, in index order.
    pub const ALL: [Protocol; 3] = [Protocol::Tcp, Protocol::Udp, Protocol::Dns];

    /// Name in reports.
    pub fn as_str(self) -> &'static str {
        match self {
            Protocol::Tcp => "tcp",
            Protocol::Udp => "udp",
            Protocol::Dns => "dns",
        }
    }
}

/// One generated flow.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct FlowSpec {
    /// Sequence number (0-based, in arrival order).
    pub id: u64,
    /// Arrival time of its first packet.
    pub at: SimTime,
    /// Index of the client point it comes from (the engine's client table).
    pub client: u32,
    /// Destination address.
    pub dst: IpAddr,
    /// Source port (for the 5-tuple).
    pub src_port: u16,
    /// Transport.
    pub protocol: Protocol,
    /// How long it lasts.
    pub duration: SimTime,
    /// Bytes carried.
    pub bytes: u64,
}

/// Walker/Vose alias table: O(1) weighted choice.
#[derive(Debug, Clone)]
pub struct AliasTable {
    prob: Vec<f64>,
    alias: Vec<u32>,
}

impl AliasTable {
    /// Builds a table from positive weights (at least one).
    ///
    /// # Panics
    /// If `weights` is empty; callers validate that first.
    pub fn new(weights: &[f64]) -> Self {
        assert!(!weights.is_empty(), "alias table needs at least one weight");
        let n = weights.len();
        let total: f64 = weights.iter().sum();
        let mut scaled: Vec<f64> = weights.iter().map(|w| w * n as f64 / total).collect();
        let mut prob = vec![1.0; n];
        let mut alias: Vec<u32> = (0..n as u32).collect();
        let (mut small, mut large): (Vec<usize>, Vec<usize>) =
            (0..n).partition(|&i| scaled[i] < 1.0);
        while let (Some(s), Some(&l)) = (small.pop(), large.last()) {
            prob[s] = scaled[s];
            alias[s] = l as u32;
            scaled[l] -= 1.0 - scaled[s];
            if scaled[l] < 1.0 {
                large.pop();
                small.push(l);
            }
        }
        Self { prob, alias }
    }

    /// Draws an index.
    #[inline]
    pub fn sample(&self, rng: &mut SimRng) -> usize {
        let n = self.prob.len();
        if n == 1 {
            return 0;
        }
        // One draw: the high 32 bits pick the column (multiply-shift, bias < 2^-32 × n),
        // the low 32 bits toss the coin.
        let x: u64 = rng.gen();
        let i = (((x >> 32) * n as u64) >> 32) as usize;
        let coin = (x & 0xFFFF_FFFF) as f64 / 4_294_967_296.0;
        if coin < self.prob[i] {
            i
        } else {
            self.alias[i] as usize
        }
    }

    /// Number of entries.
    pub fn len(&self) -> usize {
        self.prob.len()
    }

    /// True when empty (never, by construction).
    pub fn is_empty(&self) -> bool {
        self.prob.is_empty()
    }
}

impl Dist {
    /// Draws one value.
    #[inline]
    pub fn sample(&self, rng: &mut SimRng) -> f64 {
        match *self {
            Dist::Fixed(v) => v,
            Dist::Uniform(a, b) => a + (b - a) * rng.gen::<f64>(),
            Dist::Exp(m) => m * <Exp1 as Distribution<f64>>::sample(&Exp1, rng),
            Dist::LogNormal(med, s) => {
                let z: f64 = StandardNormal.sample(rng);
                med * (s * z).exp()
            }
            Dist::Pareto(x, a) => {
                let u: f64 = 1.0 - rng.gen::<f64>(); // (0, 1]
                x * u.powf(-1.0 / a)
            }
        }
    }
}

/// A destination CIDR, pre-split for fast draws.
#[derive(Debug, Clone, Copy)]
enum DstNet {
    V4 { base: u32, mask: u32 },
    V6 { base: u128, mask: u128 },
}

impl DstNet {
    fn new(net: IpNet) -> Self {
        match net {
            IpNet::V4(n) => DstNet::V4 {
                base: u32::from(n.network()),
                mask: u32::from(n.hostmask()),
            },
            IpNet::V6(n) => DstNet::V6 {
                base: u128::from(n.network()),
                mask: u128::from(n.hostmask()),
            },
        }
    }

    #[inline]
    fn draw(&self, rng: &mut SimRng) -> IpAddr {
        match *self {
            DstNet::V4 { base, mask } => {
                IpAddr::V4(Ipv4Addr::from(base | (rng.gen::<u32>() & mask)))
            }
            DstNet::V6 { base, mask } => {
                IpAddr::V6(Ipv6Addr::from(base | (rng.gen::<u128>() & mask)))
            }
        }
    }
}

/// Generates the flows of a workload in arrival order.
#[derive(Debug, Clone)]
pub struct FlowGenerator {
    remaining: u64,
    next_id: u64,
    now: f64,
    mean_gap: f64,
    arrival: Arrival,
    clients: AliasTable,
    dsts: Vec<DstNet>,
    dst_table: AliasTable,
    protocols: AliasTable,
    duration: Dist,
    size: Dist,
    r_arrival: SimRng,
    r_client: SimRng,
    r_dst: SimRng,
    r_proto: SimRng,
    r_duration: SimRng,
    r_size: SimRng,
    r_port: SimRng,
}

impl FlowGenerator {
    /// A generator of `flows` flows over `horizon`, from client points with weights
    /// `client_weights` (one per point).
    pub fn new(
        w: &Workload,
        flows: u64,
        horizon: SimTime,
        client_weights: &[f64],
        seed: u64,
    ) -> Self {
        let weights: Vec<f64> = w.destinations.iter().map(|d| d.1).collect();
        // Protocol weights may contain zeros; the alias table copes (prob 0 → alias).
        Self {
            remaining: flows,
            next_id: 0,
            now: 0.0,
            mean_gap: if flows == 0 {
                0.0
            } else {
                horizon.as_secs_f64() / flows as f64
            },
            arrival: w.arrival,
            clients: AliasTable::new(client_weights),
            dsts: w.destinations.iter().map(|d| DstNet::new(d.0)).collect(),
            dst_table: AliasTable::new(&weights),
            protocols: AliasTable::new(&w.protocols),
            duration: w.flow_duration,
            size: w.flow_size,
            r_arrival: stream(seed, Stream::Arrivals),
            r_client: stream(seed, Stream::Clients),
            r_dst: stream(seed, Stream::Destinations),
            r_proto: stream(seed, Stream::Protocols),
            r_duration: stream(seed, Stream::Durations),
            r_size: stream(seed, Stream::Sizes),
            r_port: stream(seed, Stream::Ports),
        }
    }

    /// Flows not generated yet.
    pub fn remaining(&self) -> u64 {
        self.remaining
    }
}

impl Iterator for FlowGenerator {
    type Item = FlowSpec;

    #[inline]
    fn next(&mut self) -> Option<FlowSpec> {
        if self.remaining == 0 {
            return None;
        }
        self.remaining -= 1;
        let gap = match self.arrival {
            Arrival::Poisson => {
                self.mean_gap * <Exp1 as Distribution<f64>>::sample(&Exp1, &mut self.r_arrival)
            }
            Arrival::Uniform => self.mean_gap,
        };
        // The first uniform arrival is at 0; Poisson starts after one gap.
        let at = if self.arrival == Arrival::Uniform {
            let t = self.now;
            self.now += gap;
            t
        } else {
            self.now += gap;
            self.now
        };
        let id = self.next_id;
        self.next_id += 1;
        let client = self.clients.sample(&mut self.r_client) as u32;
        let d = self.dst_table.sample(&mut self.r_dst);
        let dst = self.dsts[d].draw(&mut self.r_dst);
        let protocol = Protocol::ALL[self.protocols.sample(&mut self.r_proto)];
        let duration = match protocol {
            // One exchange: a query and its answer.
            Protocol::Dns => SimTime::ZERO,
            _ => SimTime::from_secs_f64(self.duration.sample(&mut self.r_duration)),
        };
        let bytes = match protocol {
            Protocol::Dns => 128,
            _ => self.size.sample(&mut self.r_size).max(40.0) as u64,
        };
        let src_port = self.r_port.gen_range(1024..=65535);
        Some(FlowSpec {
            id,
            at: SimTime::from_secs_f64(at),
            client,
            dst,
            src_port,
            protocol,
            duration,
            bytes,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::stream;

    fn workload() -> Workload {
        Workload {
            flows: 1000,
            arrival: Arrival::Poisson,
            destinations: vec![
                ("203.0.113.0/24".parse().unwrap(), 3.0),
                ("2001:db8::/64".parse().unwrap(), 1.0),
            ],
            protocols: [0.8, 0.0, 0.2],
            flow_duration: Dist::Exp(2.0),
            flow_size: Dist::Fixed(1000.0),
        }
    }

    #[test]
    fn alias_table_follows_weights() {
        let t = AliasTable::new(&[1.0, 0.0, 3.0]);
        let mut r = stream(1, Stream::Clients);
        let mut n = [0u32; 3];
        for _ in 0..40_000 {
            n[t.sample(&mut r)] += 1;
        }
        assert_eq!(n[1], 0);
        let share = n[2] as f64 / 40_000.0;
        assert!((share - 0.75).abs() < 0.02, "{share}");
    }

    #[test]
    fn flows_are_in_time_order_inside_their_cidrs_and_reproducible() {
        let w = workload();
        let a: Vec<_> =
            FlowGenerator::new(&w, 1000, SimTime::from_secs(100), &[1.0, 2.0], 9).collect();
        let b: Vec<_> =
            FlowGenerator::new(&w, 1000, SimTime::from_secs(100), &[1.0, 2.0], 9).collect();
        assert_eq!(a, b);
        assert_eq!(a.len(), 1000);
        assert!(a.windows(2).all(|p| p[0].at <= p[1].at));
        let nets: Vec<IpNet> = w.destinations.iter().map(|d| d.0).collect();
        assert!(a.iter().all(|f| nets.iter().any(|n| n.contains(&f.dst))));
        assert!(a.iter().all(|f| f.protocol != Protocol::Udp));
        assert!(a
            .iter()
            .filter(|f| f.protocol == Protocol::Dns)
            .all(|f| f.duration == SimTime::ZERO));
        let c: Vec<_> =
            FlowGenerator::new(&w, 1000, SimTime::from_secs(100), &[1.0, 2.0], 10).collect();
        assert_ne!(a, c);
        // Mean arrival rate ≈ 10/s.
        let last = a.last().unwrap().at.as_secs_f64();
        assert!((80.0..120.0).contains(&last), "{last}");
    }

    #[test]
    fn distributions_have_their_means() {
        let mut r = stream(3, Stream::Durations);
        for d in [
            Dist::Exp(2.0),
            Dist::LogNormal(1.0, 0.5),
            Dist::Uniform(1.0, 3.0),
            Dist::Pareto(1.0, 3.0),
        ] {
            let n = 100_000;
            let m: f64 = (0..n).map(|_| d.sample(&mut r)).sum::<f64>() / n as f64;
            assert!((m / d.mean() - 1.0).abs() < 0.05, "{d:?}: {m}");
        }
    }
}
