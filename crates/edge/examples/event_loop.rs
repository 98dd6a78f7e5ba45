//! Embeds the edge in a tiny discrete-event loop.
//!
//! Clients in four cities open TCP connections to a customer prefix bound to `eu`; each
//! connection sends a few packets and closes. At t = 60 s the prefix is rebound to `us`
//! (the change reaches each data center after its own delay of 30-300 s), and at
//! t = 400 s Frankfurt fails. The loop interleaves its own events with the edge's
//! timers (`next_deadline` / `tick`) and counts where connections were processed.
//!
//! ```text
//! cargo run -p inregion-edge --example event_loop
//! ```

use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap};
use std::sync::Arc;
use std::time::Duration;

use inregion_edge::{
    region_table, DcId, DelayDistribution, Edge, EdgeConfig, FlowKey, Protocol, SimTime, TcpFlags,
    Topology, Verdict,
};
use inregion_model::{GeoPoint, Iata, ReferenceData, RegionKey};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Event {
    /// Packet `n` (0 = SYN) of connection `id`.
    Packet {
        id: u32,
        n: u8,
    },
    Rebind,
    Fail,
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let topo = Arc::new(Topology::from_reference(&ReferenceData::embedded())?);
    let config = EdgeConfig {
        propagation: DelayDistribution::Uniform {
            min: Duration::from_secs(30),
            max: Duration::from_secs(300),
        },
        ..EdgeConfig::default()
    };
    let mut edge = Edge::new(Arc::clone(&topo), config);
    let (eu, us) = (RegionKey::parse("eu")?, RegionKey::parse("us")?);
    let prefix = "203.0.113.0/24".parse()?;
    edge.install(1, region_table(&topo, [(prefix, &eu)])?, SimTime::ZERO)?;

    let cities = [
        ("London", GeoPoint::new(51.5, -0.1)?),
        ("New York", GeoPoint::new(40.7, -74.0)?),
        ("Singapore", GeoPoint::new(1.35, 103.8)?),
        ("Frankfurt", GeoPoint::new(50.1, 8.7)?),
    ];
    let mut rng = ChaCha8Rng::seed_from_u64(2026);
    let mut queue: BinaryHeap<Reverse<(SimTime, Event)>> = BinaryHeap::new();
    // 400 connections spread over 10 minutes.
    let mut conns = Vec::new();
    for id in 0..400u32 {
        let (_, at) = cities[rng.gen_range(0..cities.len())];
        let flow = FlowKey::v4(
            Protocol::TCP,
            [198, 51, 100, rng.gen()].into(),
            rng.gen_range(1024..65535),
            [203, 0, 113, rng.gen()].into(),
            443,
        );
        conns.push((at, flow, None::<DcId>));
        let start = SimTime::from_millis(rng.gen_range(0..600_000));
        queue.push(Reverse((start, Event::Packet { id, n: 0 })));
    }
    queue.push(Reverse((SimTime::from_secs(60), Event::Rebind)));
    queue.push(Reverse((SimTime::from_secs(400), Event::Fail)));

    let mut processed_at: BTreeMap<String, u32> = BTreeMap::new();
    let (mut refused, mut resets, mut moved) = (0, 0, 0);
    loop {
        // The next thing to happen: our own event or one of the edge's timers.
        let ours = queue.peek().map(|Reverse((t, _))| *t);
        let now = match (ours, edge.next_deadline()) {
            (None, None) => break,
            (Some(a), Some(b)) if b < a => {
                edge.tick(b);
                continue;
            }
            (None, Some(b)) if edge.pending_deliveries() > 0 => {
                edge.tick(b);
                continue;
            }
            (None, Some(_)) => break,
            (Some(a), _) => a,
        };
        let Some(Reverse((_, event))) = queue.pop() else {
            break;
        };
        match event {
            Event::Rebind => {
                let table = region_table(&topo, [(prefix, &us)])?;
                edge.publish(2, table, now, &mut rng)?;
            }
            Event::Fail => {
                let fra = topo.dc_by_code(Iata::parse("FRA")?).expect("FRA exists");
                edge.set_healthy(fra, false);
            }
            Event::Packet { id, n } => {
                let (at, flow, first) = conns[id as usize];
                let Some(ingress) = edge.ingress_for(&at) else {
                    refused += 1;
                    continue;
                };
                let flags = match n {
                    0 => TcpFlags::SYN,
                    4 => TcpFlags::FIN,
                    _ => TcpFlags::ACK,
                };
                let d = edge.packet(ingress, &flow, flags, now);
                match d.verdict {
                    Verdict::Refused(_) => refused += 1,
                    Verdict::Reset(_) => resets += 1,
                    _ => {
                        let dc = d.processed_at.expect("processed");
                        if n == 0 {
                            conns[id as usize].2 = Some(dc);
                            *processed_at
                                .entry(topo.dc(dc).code.as_str().to_owned())
                                .or_default() += 1;
                        } else if first != Some(dc) {
                            moved += 1;
                        }
                        if n < 4 {
                            let gap = Duration::from_millis(rng.gen_range(10..2_000));
                            queue.push(Reverse((now + gap, Event::Packet { id, n: n + 1 })));
                        }
                    }
                }
            }
        }
    }

    let v2 = edge.version_status(2).expect("published");
    println!("connections processed per data center: {processed_at:?}");
    println!("refused: {refused}, reset: {resets}, moved mid-connection: {moved}");
    println!(
        "v2 published at {}, active (majority) at {}, everywhere at {}",
        v2.published_at,
        v2.active_at.map_or("-".into(), |t| t.to_string()),
        v2.complete_at.map_or("-".into(), |t| t.to_string()),
    );
    println!("flow tables: {:?}", edge.total_flow_stats());
    assert_eq!(moved, 0, "affinity: no connection changes data center");
    Ok(())
}
