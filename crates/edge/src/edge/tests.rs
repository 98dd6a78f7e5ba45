//! Tests of the edge: examples on a tiny hand-made world and on the real topology, and
//! property tests against a plain model (linear scan of the bindings + nearest healthy
//! in-region data center).

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::Arc;
use std::time::Duration;

use inregion_model::{GeoPoint, Iata, RegionKey};
use inregion_table::Table;
use ipnet::IpNet;
use proptest::prelude::*;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use super::*;
use crate::flow::Protocol;
use crate::topology::{DcSpec, RegionSpec, RttModel};

// ---- helpers ---------------------------------------------------------------------

fn gp(lat: f64, lon: f64) -> Option<GeoPoint> {
    Some(GeoPoint::new(lat, lon).unwrap())
}

fn dc_spec(i: usize, location: Option<GeoPoint>) -> DcSpec {
    DcSpec {
        code: Iata::parse(&format!("D{i:02}")).unwrap(),
        location,
    }
}

fn key(s: &str) -> RegionKey {
    RegionKey::parse(s).unwrap()
}

fn net(s: &str) -> IpNet {
    s.parse().unwrap()
}

fn tcp(src_port: u16, dst: [u8; 4]) -> FlowKey {
    FlowKey::v4(
        Protocol::TCP,
        Ipv4Addr::new(198, 51, 100, 1),
        src_port,
        dst.into(),
        443,
    )
}

fn table(bindings: &[(IpNet, RegionIndex)]) -> Table<RegionIndex> {
    let mut b = Table::builder();
    for &(n, r) in bindings {
        b.insert(n, r);
    }
    b.build()
}

const T0: SimTime = SimTime::ZERO;

/// Four data centers on the equator at longitudes 0, 10, 20, 40; one without
/// coordinates. Region `a` = {1, 3}, region `b` = {4}.
fn tiny() -> Arc<Topology> {
    let dcs = vec![
        dc_spec(0, gp(0.0, 0.0)),
        dc_spec(1, gp(0.0, 10.0)),
        dc_spec(2, gp(0.0, 20.0)),
        dc_spec(3, gp(0.0, 40.0)),
        dc_spec(4, None),
    ];
    let regions = vec![
        RegionSpec {
            key: key("a"),
            members: vec![DcId(1), DcId(3)],
        },
        RegionSpec {
            key: key("b"),
            members: vec![DcId(4)],
        },
    ];
    Arc::new(Topology::from_parts(dcs, regions, RttModel::default()).unwrap())
}

fn tiny_edge(config: EdgeConfig) -> Edge {
    let mut e = Edge::new(tiny(), config);
    e.install(
        1,
        table(&[
            (net("203.0.113.0/24"), RegionIndex(0)),
            (net("203.0.113.128/25"), RegionIndex(1)),
        ]),
        T0,
    )
    .unwrap();
    e
}

// ---- examples --------------------------------------------------------------------

#[test]
fn the_four_outcomes() {
    let mut e = tiny_edge(EdgeConfig::default());
    let topo = Arc::clone(e.topology());
    let t = SimTime::from_secs(1);

    let global = e.decide(DcId(0), &tcp(1, [192, 0, 2, 1]), t);
    assert_eq!(global.verdict, Verdict::Global);
    assert_eq!(global.processed_at, Some(DcId(0)));
    assert_eq!(
        (global.region, global.added_rtt_us, global.table_version),
        (None, 0, 1)
    );

    let local = e.decide(DcId(1), &tcp(2, [203, 0, 113, 1]), t);
    assert_eq!(local.verdict, Verdict::InRegion);
    assert_eq!(local.processed_at, Some(DcId(1)));
    assert_eq!(local.region, Some(RegionIndex(0)));

    // From DC 2 (lon 20) the nearest member of `a` is DC 1 (lon 10), not DC 3 (lon 40).
    let fwd = e.decide(DcId(2), &tcp(3, [203, 0, 113, 1]), t);
    assert_eq!(fwd.verdict, Verdict::Forwarded);
    assert_eq!(fwd.forwarded_to(), Some(DcId(1)));
    assert_eq!(fwd.added_rtt_us, topo.rtt_us(DcId(2), DcId(1)));
    assert_eq!(fwd.l4_at(), DcId(2));

    // Region `b`'s only member has no coordinates: no RTT, no target: refused.
    let refused = e.decide(DcId(0), &tcp(4, [203, 0, 113, 200]), t);
    assert_eq!(
        refused.verdict,
        Verdict::Refused(RefuseReason::NoHealthyInRegion)
    );
    assert_eq!(refused.processed_at, None);
    assert_eq!(refused.region, Some(RegionIndex(1)));
    // ... but the member itself, given explicitly as ingress, processes it.
    let at_member = e.decide(DcId(4), &tcp(4, [203, 0, 113, 200]), t);
    assert_eq!(at_member.verdict, Verdict::InRegion);

    // Second packets are answered from the pins; the refusal was not pinned.
    assert!(e.decide(DcId(2), &tcp(3, [203, 0, 113, 1]), t).established);
    assert!(
        !e.decide(DcId(0), &tcp(4, [203, 0, 113, 200]), t)
            .established
    );
    let s = e.total_flow_stats();
    assert_eq!((s.live, s.pinned, s.hits), (4, 4, 1));
}

#[test]
fn health_drives_target_choice_and_refusal() {
    let mut e = tiny_edge(EdgeConfig::default());
    let t = SimTime::from_secs(1);
    e.set_healthy(DcId(1), false);
    let d = e.decide(DcId(2), &tcp(1, [203, 0, 113, 1]), t);
    assert_eq!(d.forwarded_to(), Some(DcId(3)));
    e.set_healthy(DcId(3), false);
    let d = e.decide(DcId(2), &tcp(2, [203, 0, 113, 1]), t);
    assert_eq!(d.verdict, Verdict::Refused(RefuseReason::NoHealthyInRegion));
    // The pinned flow to DC 3 is reset at its next packet, then re-decided (refused).
    let d = e.decide(DcId(2), &tcp(1, [203, 0, 113, 1]), t);
    assert_eq!(d.verdict, Verdict::Reset(ResetReason::ProcessingDown));
    assert_eq!(e.flow_stats(DcId(2)).resets, 1);
    let d = e.decide(DcId(2), &tcp(1, [203, 0, 113, 1]), t);
    assert_eq!(d.verdict, Verdict::Refused(RefuseReason::NoHealthyInRegion));
    // An unhealthy ingress refuses everything, bound or not.
    e.set_healthy(DcId(0), false);
    assert_eq!(
        e.decide(DcId(0), &tcp(9, [192, 0, 2, 1]), t).verdict,
        Verdict::Refused(RefuseReason::IngressDown)
    );
    e.set_health(&[(DcId(0), true), (DcId(1), true)]);
    assert_eq!(
        e.decide(DcId(2), &tcp(1, [203, 0, 113, 1]), t)
            .forwarded_to(),
        Some(DcId(1))
    );
}

#[test]
fn ingress_is_the_nearest_healthy_located_dc() {
    let mut e = tiny_edge(EdgeConfig::default());
    let p = GeoPoint::new(1.0, 18.0).unwrap();
    assert_eq!(e.ingress_for(&p), Some(DcId(2)));
    e.set_healthy(DcId(2), false);
    assert_eq!(e.ingress_for(&p), Some(DcId(1)));
    e.set_health(&[(DcId(0), false), (DcId(1), false), (DcId(3), false)]);
    assert_eq!(e.ingress_for(&p), None, "DC 4 has no coordinates");
}

#[test]
fn fin_rst_flow_end_and_idle_expiry() {
    let config = EdgeConfig {
        flows: FlowTableConfig {
            tcp_idle_timeout: Duration::from_secs(10),
            ..FlowTableConfig::default()
        },
        ..EdgeConfig::default()
    };
    let mut e = tiny_edge(config);
    let f = tcp(1, [203, 0, 113, 1]);
    let t = SimTime::from_secs(1);
    assert!(!e.packet(DcId(2), &f, TcpFlags::SYN, t).established);
    assert!(e.packet(DcId(2), &f, TcpFlags::ACK, t).established);
    assert!(
        e.packet(DcId(2), &f, TcpFlags::FIN | TcpFlags::ACK, t)
            .established
    );
    assert_eq!(e.flow_stats(DcId(2)).live, 0);
    // A RST of an unknown flow is decided but pins nothing.
    assert!(!e.packet(DcId(2), &f, TcpFlags::RST, t).established);
    assert_eq!(e.flow_stats(DcId(2)).live, 0);

    e.decide(DcId(2), &f, t);
    assert_eq!(
        e.flow_end(DcId(2), &f, t).map(|d| d.processed_at),
        Some(Some(DcId(1)))
    );
    assert_eq!(e.flow_end(DcId(2), &f, t), None);

    // The last packet of a UDP exchange: the pinned decision, and the pin goes, in one
    // call; an unknown flow's last packet is decided but not pinned.
    let u = FlowKey::v4(
        Protocol::UDP,
        Ipv4Addr::new(198, 51, 100, 1),
        5353,
        [203, 0, 113, 1].into(),
        443,
    );
    let first = e.decide(DcId(2), &u, t);
    assert_eq!(e.flow_stats(DcId(2)).live, 1);
    let last = e.last_packet(DcId(2), &u, t);
    assert!(last.established);
    assert_eq!(last.processed_at, first.processed_at);
    assert_eq!(e.flow_stats(DcId(2)).live, 0);
    assert!(!e.last_packet(DcId(2), &u, t).established);
    assert_eq!(e.flow_stats(DcId(2)).live, 0);

    // Idle expiry, lazily at lookup ...
    e.decide(DcId(2), &f, t);
    assert!(e.decide(DcId(2), &f, SimTime::from_secs(11)).established);
    assert!(!e.decide(DcId(2), &f, SimTime::from_secs(22)).established);
    assert_eq!(e.flow_stats(DcId(2)).expired, 1);
    // ... and by the sweep that tick runs at next_deadline.
    assert!(e.next_deadline().is_some(), "a sweep is scheduled");
    let mut now = SimTime::from_secs(22);
    let mut expired = 0;
    while let Some(d) = e.next_deadline() {
        now = now.max(d);
        expired += e.tick(now).expired;
    }
    assert_eq!(expired, 1);
    assert!(now <= SimTime::from_secs(22 + 10 + 2 * 10));
    assert_eq!(e.total_flow_stats().live, 0);
}

#[test]
fn propagation_activates_at_majority_and_skips_stale() {
    let config = EdgeConfig {
        propagation: DelayDistribution::Uniform {
            min: Duration::from_secs(10),
            max: Duration::from_secs(100),
        },
        ..EdgeConfig::default()
    };
    let mut e = tiny_edge(config);
    let mut rng = ChaCha8Rng::seed_from_u64(3);
    let t = SimTime::from_secs(1);
    e.publish(2, table(&[]), t, &mut rng).unwrap();
    assert_eq!(e.pending_deliveries(), 5);
    assert_eq!(
        e.publish(2, table(&[]), t, &mut rng),
        Err(EdgeError::StaleVersion {
            current: 2,
            offered: 2
        })
    );
    assert!(matches!(
        e.publish(
            3,
            table(&[(net("10.0.0.0/8"), RegionIndex(7))]),
            t,
            &mut rng
        ),
        Err(EdgeError::UnknownRegion { .. })
    ));
    assert_eq!(e.tick(SimTime::from_secs(10)).delivered, 0);
    let mut times = Vec::new();
    while let Some(d) = e.next_deadline() {
        let before = e.version_status(2).unwrap().reached;
        e.tick(d);
        let s = e.version_status(2).unwrap();
        if s.reached > before {
            times.push(d);
        }
        assert_eq!(s.active_at.is_some(), s.reached >= 3, "majority of 5 is 3");
        assert_eq!(e.active_version(), if s.reached >= 3 { 2 } else { 1 });
    }
    let s = e.version_status(2).unwrap();
    assert_eq!(s.reached, 5);
    assert_eq!(s.complete_at, Some(*times.last().unwrap()));
    assert!(s.active_at.unwrap() <= s.complete_at.unwrap());
    assert!(times
        .iter()
        .all(|&x| x >= SimTime::from_secs(11) && x <= SimTime::from_secs(101)));

    // Out-of-order versions: v4 arrives everywhere at once, the later v3 deliveries
    // are stale and skipped, and v3 counts as reached through v4.
    let slow = EdgeConfig {
        propagation: DelayDistribution::Fixed(Duration::from_secs(50)),
        ..config
    };
    let mut e = Edge::new(tiny(), slow);
    e.publish(3, table(&[]), T0, &mut rng).unwrap();
    e.install(4, table(&[]), SimTime::from_secs(1)).unwrap();
    assert_eq!(e.version_status(3).unwrap().reached, 5);
    let r = e.tick(SimTime::from_secs(60));
    assert_eq!((r.delivered, r.stale), (0, 5));
    assert!((0..5).all(|i| e.table_version(DcId(i)) == 4));
}

#[test]
fn pinned_flows_survive_a_change_and_strict_mode_resets_them() {
    for mode in [AffinityMode::Pinned, AffinityMode::ResetOnChange] {
        let mut e = tiny_edge(EdgeConfig {
            affinity: mode,
            ..EdgeConfig::default()
        });
        let bound = tcp(1, [203, 0, 113, 1]);
        let other = tcp(2, [192, 0, 2, 1]);
        let t = SimTime::from_secs(1);
        assert_eq!(e.decide(DcId(2), &bound, t).verdict, Verdict::Forwarded);
        assert_eq!(e.decide(DcId(2), &other, t).verdict, Verdict::Global);
        // v2 unbinds 203.0.113.0/24 (keeps the /25); installed everywhere at once.
        e.install(2, table(&[(net("203.0.113.128/25"), RegionIndex(1))]), t)
            .unwrap();
        let d = e.decide(DcId(2), &bound, t);
        let o = e.decide(DcId(2), &other, t);
        assert!(
            o.established && o.verdict == Verdict::Global,
            "unchanged binding: kept"
        );
        match mode {
            AffinityMode::Pinned => {
                assert!(d.established);
                assert_eq!((d.verdict, d.table_version), (Verdict::Forwarded, 1));
            }
            AffinityMode::ResetOnChange => {
                assert_eq!(d.verdict, Verdict::Reset(ResetReason::BindingChanged));
                let again = e.decide(DcId(2), &bound, t);
                assert_eq!((again.verdict, again.table_version), (Verdict::Global, 2));
            }
        }
    }
}

#[test]
fn decide_many_equals_decide_in_sequence() {
    let with_v6 = |t: Table<RegionIndex>| {
        let mut b = t.to_builder();
        b.insert(net("2001:db8:1::/48"), RegionIndex(1));
        b.build()
    };
    let small = EdgeConfig {
        flows: FlowTableConfig {
            initial_capacity: 8,
            ..FlowTableConfig::default()
        },
        ..EdgeConfig::default()
    };
    let mut a = tiny_edge(small);
    let mut b = tiny_edge(small);
    for e in [&mut a, &mut b] {
        let t = with_v6((*e.table(DcId(2))).table().clone());
        e.install(2, t, T0).unwrap();
    }
    // Repeats within a pipeline group and across groups, both families, bound and not,
    // and a batch long enough for several groups and a flow-table growth in the middle.
    let flows: Vec<FlowKey> = (0..300u16)
        .map(|i| {
            if i % 5 == 0 {
                FlowKey::v6(
                    Protocol::UDP,
                    "2001:db8:ffff::1".parse().unwrap(),
                    i % 41,
                    format!("2001:db8:{}::{}", 1 + i % 3, i % 7)
                        .parse()
                        .unwrap(),
                    53,
                )
            } else {
                tcp(i % 37, [203, 0, 113, (i % 37 * 7) as u8])
            }
        })
        .collect();
    let t = SimTime::from_secs(1);
    let mut out = vec![a.route(DcId(0), "0.0.0.0".parse().unwrap()); flows.len()];
    a.decide_many(DcId(2), &flows, t, &mut out);
    let seq: Vec<Decision> = flows.iter().map(|f| b.decide(DcId(2), f, t)).collect();
    assert_eq!(out, seq);
    assert!(
        out.iter().any(|d| d.established),
        "repeated keys hit their pins"
    );
    assert!(out
        .iter()
        .any(|d| d.region == Some(RegionIndex(1)) && d.table_version == 2));
    assert_eq!(a.total_flow_stats(), b.total_flow_stats());
    assert!(a.total_flow_stats().grows > 0);
}

#[test]
fn explain_lists_the_binding_and_candidates() {
    let mut e = tiny_edge(EdgeConfig::default());
    let f = tcp(1, [203, 0, 113, 1]);
    let t = SimTime::from_secs(1);
    let x = e.explain(DcId(0), &f, t);
    assert_eq!(x.matched, Some((net("203.0.113.0/24"), RegionIndex(0))));
    assert_eq!(x.ingress_in_region, Some(false));
    assert_eq!(
        x.candidates
            .iter()
            .map(|c| (c.dc, c.chosen))
            .collect::<Vec<_>>(),
        vec![(DcId(1), true), (DcId(3), false)]
    );
    assert_eq!(x.pinned, None);
    assert_eq!(x.fresh, e.route(DcId(0), f.dst()));
    let d = e.decide(DcId(0), &f, t);
    assert_eq!(
        e.explain(DcId(0), &f, t).pinned,
        Some(Decision {
            established: true,
            ..d
        })
    );
    let y = e.explain(DcId(0), &tcp(1, [203, 0, 113, 200]), t);
    assert_eq!(y.matched, Some((net("203.0.113.128/25"), RegionIndex(1))));
    assert_eq!(y.candidates[0].rtt_us, None);
}

#[test]
fn shards_share_tables_but_not_flows() {
    let mut a = tiny_edge(EdgeConfig::default());
    let mut b = a.shard();
    let f = tcp(1, [203, 0, 113, 1]);
    let t = SimTime::from_secs(1);
    assert_eq!(b.decide(DcId(2), &f, t).verdict, Verdict::Forwarded);
    a.install(2, table(&[]), t).unwrap();
    assert_eq!(b.table_version(DcId(2)), 2);
    assert!(b.decide(DcId(2), &f, t).established);
    assert_eq!(
        b.decide(DcId(2), &tcp(2, [203, 0, 113, 1]), t).verdict,
        Verdict::Global
    );
    assert_eq!(a.total_flow_stats().live, 0);
    fn is_send<T: Send>(_: &T) {}
    is_send(&a);
}

#[test]
fn full_flow_tables_evict_and_count() {
    let mut e = Edge::new(
        tiny(),
        EdgeConfig {
            flows: FlowTableConfig {
                max_flows: 64,
                initial_capacity: 8,
                ..FlowTableConfig::default()
            },
            ..EdgeConfig::default()
        },
    );
    for i in 0..1000u16 {
        e.decide(
            DcId(0),
            &tcp(i, [192, 0, 2, 1]),
            SimTime::from_secs(u64::from(i)),
        );
    }
    let s = e.flow_stats(DcId(0));
    assert_eq!(s.live, 64);
    assert_eq!(s.evicted, 1000 - 64);
    assert!(s.capacity <= 128);
    // The most recent flow survived.
    assert!(
        e.decide(DcId(0), &tcp(999, [192, 0, 2, 1]), SimTime::from_secs(1000))
            .established
    );
}

#[test]
fn real_topology_forwards_to_the_nearest_eu_member() {
    let refdata = inregion_model::ReferenceData::embedded();
    let mut e = Edge::from_reference(&refdata, EdgeConfig::default()).unwrap();
    let topo = Arc::clone(e.topology());
    let eu = key("eu");
    e.install(
        1,
        region_table(&topo, [(net("203.0.113.0/24"), &eu)]).unwrap(),
        T0,
    )
    .unwrap();
    let code = |s| topo.dc_by_code(Iata::parse(s).unwrap()).unwrap();
    // From London (not in the EU) the nearest EU data center is Amsterdam, Brussels or
    // Paris, a few milliseconds away.
    let d = e.decide(
        code("LHR"),
        &tcp(1, [203, 0, 113, 1]),
        SimTime::from_secs(1),
    );
    assert_eq!(d.verdict, Verdict::Forwarded);
    let to = topo.dc(d.processed_at.unwrap()).code.as_str().to_owned();
    assert!(["AMS", "BRU", "CDG"].contains(&to.as_str()), "{to}");
    assert!(d.added_rtt_us < 10_000, "{}", d.added_rtt_us);
    assert!(matches!(
        region_table(&topo, [(net("10.0.0.0/8"), &key("nope"))]),
        Err(EdgeError::UnknownRegionKey(_))
    ));
}

// ---- the plain model -----------------------------------------------------------

/// The obvious implementation: most specific containing binding by linear scan (the last
/// of equal prefixes wins), then the healthy member with the lowest RTT (ties: lowest
/// index) when the ingress is not a member.
fn model(
    topo: &Topology,
    healthy: &[bool],
    bindings: &[(IpNet, RegionIndex)],
    ingress: DcId,
    dst: IpAddr,
) -> (Verdict, Option<DcId>, Option<RegionIndex>, u32) {
    let mut best: Option<(u8, RegionIndex)> = None;
    for &(n, r) in bindings {
        if n.contains(&dst) && best.is_none_or(|(len, _)| n.prefix_len() >= len) {
            best = Some((n.prefix_len(), r));
        }
    }
    let region = best.map(|(_, r)| r);
    if !healthy[ingress.index()] {
        return (Verdict::Refused(RefuseReason::IngressDown), None, region, 0);
    }
    let Some(r) = region else {
        return (Verdict::Global, Some(ingress), None, 0);
    };
    if topo.region(r).members.contains(&ingress) {
        return (Verdict::InRegion, Some(ingress), region, 0);
    }
    let mut target: Option<(u32, DcId)> = None;
    for dc in 0..topo.dc_count() {
        let dc = DcId(dc as u16);
        let rtt = topo.rtt_us(ingress, dc);
        if topo.region(r).members.contains(&dc)
            && healthy[dc.index()]
            && rtt != RTT_UNREACHABLE
            && target.is_none_or(|(b, _)| rtt < b)
        {
            target = Some((rtt, dc));
        }
    }
    match target {
        Some((rtt, dc)) => (Verdict::Forwarded, Some(dc), region, rtt),
        None => (
            Verdict::Refused(RefuseReason::NoHealthyInRegion),
            None,
            region,
            0,
        ),
    }
}

// ---- random worlds ---------------------------------------------------------------

fn random_topology(rng: &mut ChaCha8Rng) -> Topology {
    let n = rng.gen_range(1..=12);
    let dcs = (0..n)
        .map(|i| {
            let loc = rng.gen_bool(0.85).then(|| {
                GeoPoint::new(rng.gen_range(-60.0..60.0), rng.gen_range(-180.0..180.0)).unwrap()
            });
            dc_spec(i, loc)
        })
        .collect();
    let regions = (0..rng.gen_range(1..=4))
        .map(|r| {
            let mut members: Vec<DcId> = (0..n)
                .filter(|_| rng.gen_bool(0.35))
                .map(|i| DcId(i as u16))
                .collect();
            if members.is_empty() {
                members.push(DcId(rng.gen_range(0..n) as u16));
            }
            RegionSpec {
                key: key(&format!("r{r}")),
                members,
            }
        })
        .collect();
    Topology::from_parts(dcs, regions, RttModel::default()).unwrap()
}

fn random_bindings(rng: &mut ChaCha8Rng, regions: usize) -> Vec<(IpNet, RegionIndex)> {
    let mut out: Vec<(IpNet, RegionIndex)> = Vec::new();
    for _ in 0..rng.gen_range(0..8) {
        let n = if rng.gen_bool(0.8) {
            let a = Ipv4Addr::from_bits(0x0a00_0000 | rng.gen_range(0..0x1_0000u32));
            IpNet::V4(
                ipnet::Ipv4Net::new(a, rng.gen_range(16..=32))
                    .unwrap()
                    .trunc(),
            )
        } else {
            let a =
                Ipv6Addr::from_bits(0x2001_0db8_u128 << 96 | u128::from(rng.gen::<u16>()) << 64);
            IpNet::V6(
                ipnet::Ipv6Net::new(a, rng.gen_range(32..=64))
                    .unwrap()
                    .trunc(),
            )
        };
        let r = RegionIndex(rng.gen_range(0..regions) as u16);
        out.retain(|(m, _)| *m != n);
        out.push((n, r));
    }
    out
}

fn random_dst(rng: &mut ChaCha8Rng, bindings: &[(IpNet, RegionIndex)]) -> IpAddr {
    // Half the time inside a bound prefix, so that long prefixes are hit.
    if !bindings.is_empty() && rng.gen_bool(0.5) {
        let (n, _) = bindings[rng.gen_range(0..bindings.len())];
        return match n {
            IpNet::V4(n) => {
                let host = rng.gen::<u32>() & !u32::from(n.netmask());
                IpAddr::V4(Ipv4Addr::from_bits(u32::from(n.network()) | host))
            }
            IpNet::V6(n) => {
                let host = rng.gen::<u128>() & !u128::from(n.netmask());
                IpAddr::V6(Ipv6Addr::from_bits(u128::from(n.network()) | host))
            }
        };
    }
    if rng.gen_bool(0.8) {
        IpAddr::V4(Ipv4Addr::from_bits(
            0x0a00_0000 | rng.gen_range(0..0x1_0000u32),
        ))
    } else {
        IpAddr::V6(Ipv6Addr::from_bits(
            0x2001_0db8_u128 << 96
                | u128::from(rng.gen::<u16>()) << 64
                | u128::from(rng.gen::<u8>()),
        ))
    }
}

fn random_flow(rng: &mut ChaCha8Rng, dst: IpAddr) -> FlowKey {
    let proto = if rng.gen_bool(0.8) {
        Protocol::TCP
    } else {
        Protocol::UDP
    };
    let src = match dst {
        IpAddr::V4(_) => IpAddr::V4(Ipv4Addr::from_bits(rng.gen())),
        IpAddr::V6(_) => IpAddr::V6(Ipv6Addr::from_bits(rng.gen())),
    };
    FlowKey::new(proto, src, rng.gen(), dst, 443).unwrap()
}

/// Drives a random scenario: new flows, packets of live flows, ends, publishes with
/// random delays, ticks and health changes. Checks on every decision:
///
/// - the region is the plain model's lookup in the bindings of the decision's version;
/// - fail closed: a processed flow bound to R is processed at a member of R;
/// - affinity (Pinned mode): a live flow's packets are established and keep the
///   processing data center and version of its first packet until it ends or is reset.
///
/// Then delivers everything and checks that fresh decisions equal the plain model.
/// Returns every decision made (for the determinism property).
fn scenario(seed: u64, affinity: AffinityMode) -> Vec<Decision> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let topo = Arc::new(random_topology(&mut rng));
    let n = topo.dc_count();
    let nr = topo.region_count();
    let config = EdgeConfig {
        affinity,
        flows: FlowTableConfig {
            // Big enough that nothing is evicted or expires: every pin loss is a bug.
            max_flows: 4096,
            initial_capacity: 8,
            tcp_idle_timeout: Duration::from_secs(1 << 30),
            other_idle_timeout: Duration::from_secs(1 << 30),
            ..FlowTableConfig::default()
        },
        propagation: DelayDistribution::Uniform {
            min: Duration::ZERO,
            max: Duration::from_secs(rng.gen_range(0..200)),
        },
    };
    let mut edge = Edge::new(Arc::clone(&topo), config);
    let mut versions: HashMap<u64, Vec<(IpNet, RegionIndex)>> = HashMap::new();
    versions.insert(0, Vec::new());
    let first = random_bindings(&mut rng, nr);
    edge.install(1, table(&first), T0).unwrap();
    versions.insert(1, first);
    let mut version = 1;
    let mut healthy = vec![true; n];
    let mut now = T0;
    // Live flows: (ingress, key, first decision).
    let mut live: Vec<(DcId, FlowKey, Decision)> = Vec::new();
    let mut all = Vec::new();

    let check = |d: &Decision, dst: IpAddr, versions: &HashMap<u64, Vec<(IpNet, RegionIndex)>>| {
        let (_, _, region, _) = model(
            &topo,
            &vec![true; n],
            &versions[&d.table_version],
            d.ingress,
            dst,
        );
        assert_eq!(d.region, region, "lookup of {dst} in v{}", d.table_version);
        if let (Some(r), Some(at)) = (d.region, d.processed_at) {
            assert!(topo.is_member(at, r), "fail closed: {d:?}");
        }
        assert_eq!(d.processed_at.is_some(), d.verdict.is_processed());
    };

    for _ in 0..rng.gen_range(20..120) {
        now = now + Duration::from_millis(rng.gen_range(0..20_000));
        match rng.gen_range(0..100) {
            0..=34 => {
                let ingress = DcId(rng.gen_range(0..n) as u16);
                let dst = random_dst(&mut rng, &versions[&version]);
                let flow = random_flow(&mut rng, dst);
                let d = edge.decide(ingress, &flow, now);
                check(&d, dst, &versions);
                assert!(!d.established);
                if d.is_processed() {
                    live.push((ingress, flow, d));
                }
                all.push(d);
            }
            35..=64 if !live.is_empty() => {
                let k = rng.gen_range(0..live.len());
                let (ingress, flow, first) = live[k];
                let batch = rng.gen_bool(0.3);
                let d = if batch {
                    let mut out = [first; 1];
                    edge.decide_many(ingress, &[flow], now, &mut out);
                    out[0]
                } else {
                    edge.decide(ingress, &flow, now)
                };
                check(&d, flow.dst(), &versions);
                if let Verdict::Reset(reason) = d.verdict {
                    match reason {
                        ResetReason::ProcessingDown => assert!(
                            !healthy[first.processed_at.unwrap().index()]
                                || !healthy[ingress.index()]
                        ),
                        ResetReason::BindingChanged => {
                            assert_eq!(affinity, AffinityMode::ResetOnChange)
                        }
                    }
                    live.swap_remove(k);
                } else {
                    assert!(d.established, "pin lost: {d:?}");
                    assert_eq!(d.processed_at, first.processed_at, "affinity");
                    assert_eq!(
                        (d.region, d.table_version),
                        (first.region, first.table_version)
                    );
                }
                all.push(d);
            }
            65..=72 if !live.is_empty() => {
                let k = rng.gen_range(0..live.len());
                let (ingress, flow, first) = live.swap_remove(k);
                let d = edge.packet(ingress, &flow, TcpFlags::FIN, now);
                if !matches!(d.verdict, Verdict::Reset(_)) {
                    assert_eq!(d.processed_at, first.processed_at);
                }
                assert_eq!(edge.flow_end(ingress, &flow, now), None);
                all.push(d);
            }
            73..=82 => {
                version += 1;
                let b = random_bindings(&mut rng, nr);
                edge.publish(version, table(&b), now, &mut rng).unwrap();
                versions.insert(version, b);
            }
            83..=92 => {
                edge.tick(now);
            }
            _ => {
                let dc = rng.gen_range(0..n);
                let h = rng.gen_bool(0.6);
                healthy[dc] = h;
                edge.set_healthy(DcId(dc as u16), h);
            }
        }
    }

    // Let everything arrive; then every data center decides like the plain model.
    while edge.pending_deliveries() > 0 {
        now = now.max(edge.next_deadline().unwrap());
        edge.tick(now);
    }
    let status = edge.version_status(version).unwrap();
    assert_eq!((status.reached, status.total), (n, n));
    assert!(status.active_at.is_some() && status.complete_at.is_some());
    assert_eq!(edge.active_version(), version);
    let bindings = &versions[&version];
    for _ in 0..64 {
        let ingress = DcId(rng.gen_range(0..n) as u16);
        assert_eq!(edge.table_version(ingress), version);
        let dst = random_dst(&mut rng, bindings);
        let flow = random_flow(&mut rng, dst);
        let (verdict, at, region, rtt) = model(&topo, &healthy, bindings, ingress, dst);
        let d = edge.decide(ingress, &flow, now);
        assert!(!d.established);
        assert_eq!(
            (
                d.verdict,
                d.processed_at,
                d.region,
                d.added_rtt_us,
                d.table_version
            ),
            (verdict, at, region, rtt, version),
            "converged decision for {dst} at {ingress}"
        );
        assert_eq!(edge.route(ingress, dst), d);
        all.push(d);
    }
    all
}

/// Drives two identical edges through the same random steps (health changes, new
/// table versions, idle gaps past the timeouts, a flow table small enough to evict)
/// and the same packets: one decides each burst with `decide_many`, the other packet by
/// packet with `decide`. Every decision and the flow-table counters must agree.
fn batch_matches_single_calls(seed: u64) {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let topo = Arc::new(random_topology(&mut rng));
    let (n, nr) = (topo.dc_count(), topo.region_count());
    let affinity = if rng.gen_bool(0.5) {
        AffinityMode::Pinned
    } else {
        AffinityMode::ResetOnChange
    };
    let config = EdgeConfig {
        affinity,
        flows: FlowTableConfig {
            max_flows: rng.gen_range(1..200),
            initial_capacity: 8,
            tcp_idle_timeout: Duration::from_secs(rng.gen_range(1..60)),
            other_idle_timeout: Duration::from_secs(rng.gen_range(1..60)),
            ..FlowTableConfig::default()
        },
        propagation: DelayDistribution::Fixed(Duration::ZERO),
    };
    let mut batched = Edge::new(Arc::clone(&topo), config);
    let mut single = Edge::new(Arc::clone(&topo), config);
    let mut bindings = random_bindings(&mut rng, nr);
    let mut version = 1;
    for e in [&mut batched, &mut single] {
        e.install(version, table(&bindings), T0).unwrap();
    }
    let mut now = T0;
    let mut seen: Vec<FlowKey> = Vec::new();
    for _ in 0..rng.gen_range(10..60) {
        now = now + Duration::from_millis(rng.gen_range(0..20_000));
        match rng.gen_range(0..10) {
            0 => {
                let changes: Vec<(DcId, bool)> = (0..rng.gen_range(1..=n))
                    .map(|_| (DcId(rng.gen_range(0..n) as u16), rng.gen_bool(0.6)))
                    .collect();
                batched.set_health(&changes);
                single.set_health(&changes);
            }
            1 => {
                bindings = random_bindings(&mut rng, nr);
                version += 1;
                for e in [&mut batched, &mut single] {
                    e.install(version, table(&bindings), now).unwrap();
                }
            }
            _ => {
                let ingress = DcId(rng.gen_range(0..n) as u16);
                // Up to three pipeline groups; known flows, repeats and new ones mixed.
                let flows: Vec<FlowKey> = (0..rng.gen_range(0..3 * LANES + 5))
                    .map(|_| {
                        if !seen.is_empty() && rng.gen_bool(0.6) {
                            seen[rng.gen_range(0..seen.len())]
                        } else {
                            let dst = random_dst(&mut rng, &bindings);
                            let f = random_flow(&mut rng, dst);
                            seen.push(f);
                            f
                        }
                    })
                    .collect();
                let mut out = vec![
                    batched.route(
                        ingress,
                        flows
                            .first()
                            .map_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED), FlowKey::dst,)
                    );
                    flows.len()
                ];
                batched.decide_many(ingress, &flows, now, &mut out);
                let one: Vec<Decision> = flows
                    .iter()
                    .map(|f| single.decide(ingress, f, now))
                    .collect();
                assert_eq!(out, one, "{affinity:?}, {} flows at {now:?}", flows.len());
                assert_eq!(batched.flow_stats(ingress), single.flow_stats(ingress));
            }
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    /// Fail closed, affinity and convergence in the default mode.
    #[test]
    fn pinned_mode_properties(seed in any::<u64>()) {
        scenario(seed, AffinityMode::Pinned);
    }

    /// Fail closed and convergence in the strict mode (resets allowed).
    #[test]
    fn strict_mode_properties(seed in any::<u64>()) {
        scenario(seed, AffinityMode::ResetOnChange);
    }

    /// `decide_many` decides exactly as `decide` called packet by packet, whatever the
    /// health, versions, timeouts and evictions.
    #[test]
    fn batches_decide_as_single_calls(seed in any::<u64>()) {
        batch_matches_single_calls(seed);
    }

    /// The same seed and inputs give the same decisions.
    #[test]
    fn deterministic(seed in any::<u64>()) {
        prop_assert_eq!(scenario(seed, AffinityMode::Pinned), scenario(seed, AffinityMode::Pinned));
    }
}

#[test]
fn policies_choose_among_in_region_candidates_only() {
    let mut e = tiny_edge(EdgeConfig::default());
    let f = |p| tcp(p, [203, 0, 113, 1]);
    let t = SimTime::from_secs(1);
    assert_eq!(e.decide(DcId(2), &f(1), t).forwarded_to(), Some(DcId(1)));
    // DC 1 is loaded: a penalty larger than the RTT difference moves new flows to DC 3;
    // the established flow stays.
    e.set_policy(Arc::new(PenalizedRtt {
        penalty_us: vec![0, 1_000_000],
    }));
    assert_eq!(e.decide(DcId(2), &f(2), t).forwarded_to(), Some(DcId(3)));
    assert_eq!(e.decide(DcId(2), &f(1), t).forwarded_to(), Some(DcId(1)));

    /// A broken policy: an index past the candidates.
    #[derive(Debug)]
    struct OutOfRange;
    impl TargetPolicy for OutOfRange {
        fn choose(&self, _: DcId, _: RegionIndex, c: &[(DcId, u32)]) -> Option<usize> {
            Some(c.len())
        }
    }
    e.set_policy(Arc::new(OutOfRange));
    assert_eq!(
        e.decide(DcId(2), &f(3), t).verdict,
        Verdict::Refused(RefuseReason::NoHealthyInRegion),
        "fail closed whatever the policy"
    );
    e.set_policy(Arc::new(LowestRtt));
    assert_eq!(e.decide(DcId(2), &f(4), t).forwarded_to(), Some(DcId(1)));
}
