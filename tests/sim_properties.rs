//! Properties of the simulator against the edge and control crates:
//!
//! - the simulated counts agree with the edge's own decisions, flow by flow;
//! - no scenario (random ones included) processes anything out of region, and nothing is
//!   refused while an in-region data center is healthy;
//! - an invalid timeline operation fails with the API's error code.

use inregion_edge::{Edge, EdgeConfig, Topology, Verdict};
use inregion_model::{ReferenceData, RegionKey};
use inregion_sim::workload::FlowGenerator;
use inregion_sim::world::resolve_clients;
use inregion_sim::{Progress, Report, Scenario, SimError, SimTime, Simulation};
use proptest::prelude::*;
use std::sync::Arc;

fn run(s: &Scenario) -> Report {
    let sim = Simulation::new(s.clone(), &ReferenceData::embedded()).unwrap();
    let out = sim.run(&mut |_, _| {}).unwrap();
    Report::new(s, &out)
}

const AGREE: &str = r#"
name = "agree"
duration = "1h"
seed = 99
[propagation]
delay = { dist = "fixed", value = "0s" }
[[prefixes]]
id = "v4"
cidr = "203.0.113.0/24"
[[prefixes]]
id = "v6"
cidr = "2001:db8::/32"
[[timeline]]
at = "0s"
op = "create_binding"
prefix = "v4"
cidr = "203.0.113.0/25"
region = "eu"
[[timeline]]
at = "0s"
op = "create_binding"
prefix = "v4"
cidr = "203.0.113.0/26"
region = "jp"
[[timeline]]
at = "0s"
op = "create_binding"
prefix = "v6"
cidr = "2001:db8::/33"
region = "us"
[[failures]]
country = "JP"
at = "0s"
[[clients]]
country = "DE"
[[clients]]
country = "US"
weight = 2.0
[[clients]]
country = "BR"
[[clients]]
at = "-33.9,18.4"
[workload]
flows = 20000
destinations = [{ cidr = "203.0.113.0/24" }, { cidr = "2001:db8::/32" }]
protocols = { tcp = 0.7, udp = 0.2, dns = 0.1 }
"#;

/// With instantaneous propagation and fixed health, every flow's decision is the edge's
/// decision for (its client's nearest healthy data center, its destination): recompute
/// them one by one with a fresh edge and compare the totals.
#[test]
fn simulated_counts_agree_with_the_edge_decisions() {
    let s = Scenario::from_toml_str("agree.toml", AGREE).unwrap();
    let report = run(&s);
    let refdata = ReferenceData::embedded();
    let topo = Arc::new(Topology::from_reference(&refdata).unwrap());
    let mut edge = Edge::new(Arc::clone(&topo), EdgeConfig::default());
    let keys = |k: &str| RegionKey::parse(k).unwrap();
    let (eu, jp, us) = (keys("eu"), keys("jp"), keys("us"));
    let table = inregion_edge::region_table(
        &topo,
        [
            ("203.0.113.0/25".parse().unwrap(), &eu),
            ("203.0.113.0/26".parse().unwrap(), &jp),
            ("2001:db8::/33".parse().unwrap(), &us),
        ],
    )
    .unwrap();
    edge.install(1, table, inregion_edge::SimTime::ZERO)
        .unwrap();
    let down: Vec<_> = refdata
        .data_centers()
        .iter()
        .enumerate()
        .filter(|(_, d)| d.country.as_str() == "JP")
        .map(|(i, _)| (inregion_edge::DcId(i as u16), false))
        .collect();
    edge.set_health(&down);
    let points = resolve_clients(&refdata, &s.clients).unwrap();
    let weights: Vec<f64> = points.iter().map(|p| p.weight).collect();
    let mut counts = [0u64; 4];
    let mut forwarded_rtt_sum = 0u64;
    for f in FlowGenerator::new(&s.workload, s.workload.flows, s.duration, &weights, s.seed) {
        let ingress = edge
            .ingress_for(&points[f.client as usize].location)
            .unwrap();
        let d = edge.route(ingress, f.dst);
        let i = match d.verdict {
            Verdict::Global => 0,
            Verdict::InRegion => 1,
            Verdict::Forwarded => {
                forwarded_rtt_sum += u64::from(d.added_rtt_us);
                2
            }
            _ => 3,
        };
        counts[i] += 1;
    }
    let o = &report.outcomes;
    assert_eq!([o.unbound, o.in_region, o.forwarded, o.refused], counts);
    assert!(
        o.refused > 0 && o.forwarded > 0 && o.in_region > 0 && o.unbound > 0,
        "{counts:?}"
    );
    let mean_ms = forwarded_rtt_sum as f64 / counts[2] as f64 / 1000.0;
    assert!((report.added_rtt_forwarded.mean_ms - mean_ms).abs() < 0.01 * mean_ms);
    assert_eq!(report.out_of_region_processed, 0);
    assert_eq!(report.wrongly_refused, 0);
}

#[test]
fn shipped_scenarios_never_process_out_of_region() {
    for f in [
        "quickstart",
        "jp-fail-closed",
        "ipv6-nested",
        "strict-reset",
    ] {
        let path = format!("{}/scenarios/{f}.toml", env!("CARGO_MANIFEST_DIR"));
        let mut s = Scenario::from_path(std::path::Path::new(&path)).unwrap();
        s.workload.flows = 20_000;
        let r = run(&s);
        assert_eq!(r.flows, 20_000, "{f}");
        assert_eq!(r.out_of_region_processed, 0, "{f}");
        assert_eq!(r.wrongly_refused, 0, "{f}");
        match f {
            "jp-fail-closed" => assert!(r.outcomes.refused > 0, "jp must fail closed"),
            "strict-reset" => assert!(r.events.reset_binding_changed > 0, "strict mode resets"),
            "quickstart" => {
                assert!(r.outcomes.forwarded > 0);
                assert!(!r.dns.is_empty());
                assert!(r.dns.iter().any(|d| d.answer.starts_with("TXT")));
            }
            _ => {}
        }
    }
}

const REGIONS: [&str; 8] = ["eu", "us", "jp", "uk", "de", "ch", "au", "sg"];
const COUNTRIES: [&str; 8] = ["DE", "US", "JP", "GB", "BR", "IN", "AU", "ZA"];

proptest! {
    #![proptest_config(ProptestConfig { cases: 12, .. ProptestConfig::default() })]

    /// Random bindings, patches, failures and clients: never out of region, never a
    /// refusal while an in-region data center is healthy.
    #[test]
    fn random_scenarios_never_process_out_of_region(
        regions in proptest::collection::vec(0usize..REGIONS.len(), 1..4),
        patch_to in 0usize..REGIONS.len(),
        fail_region in 0usize..REGIONS.len(),
        clients in proptest::collection::vec(0usize..COUNTRIES.len(), 1..4),
        strict in any::<bool>(),
        seed in 0u64..1000,
    ) {
        let mut t = format!(
            "name = \"p\"\nduration = \"4h\"\nseed = {seed}\n[propagation]\nmode = \"{}\"\ndelay = {{ dist = \"uniform\", min = \"1m\", max = \"90m\" }}\n[[prefixes]]\nid = \"p\"\ncidr = \"198.51.100.0/24\"\n",
            if strict { "strict" } else { "default" }
        );
        for (i, r) in regions.iter().enumerate() {
            t += &format!(
                "[[timeline]]\nat = \"{}m\"\nop = \"create_binding\"\nname = \"b{i}\"\nprefix = \"p\"\ncidr = \"198.51.100.0/{}\"\nregion = \"{}\"\n",
                i * 10, 25 + i, REGIONS[*r]
            );
        }
        t += &format!("[[timeline]]\nat = \"2h\"\nop = \"patch_binding\"\nbinding = \"b0\"\nregion = \"{}\"\n", REGIONS[patch_to]);
        t += &format!("[[failures]]\nregion = \"{}\"\nat = \"1h\"\nuntil = \"3h\"\n", REGIONS[fail_region]);
        for c in &clients {
            t += &format!("[[clients]]\ncountry = \"{}\"\n", COUNTRIES[*c]);
        }
        t += "[workload]\nflows = 4000\ndestinations = [{ cidr = \"198.51.100.0/24\" }]\nprotocols = { tcp = 0.8, udp = 0.1, dns = 0.1 }\nflow_duration = { dist = \"exp\", mean = \"5m\" }\n";
        let s = Scenario::from_toml_str("p.toml", &t).unwrap();
        let r = run(&s);
        prop_assert_eq!(r.flows, 4000);
        prop_assert_eq!(r.out_of_region_processed, 0);
        prop_assert_eq!(r.wrongly_refused, 0);
    }
}

fn failing(timeline: &str) -> SimError {
    let text = format!(
        "name = \"bad\"\nduration = \"10h\"\n[[prefixes]]\nid = \"p\"\ncidr = \"203.0.113.0/24\"\n{timeline}\n[[clients]]\ncountry = \"DE\"\n[workload]\nflows = 100\ndestinations = [{{ cidr = \"203.0.113.0/24\" }}]\n"
    );
    let s = Scenario::from_toml_str("bad.toml", &text).unwrap();
    let sim = Simulation::new(s, &ReferenceData::embedded()).unwrap();
    match sim.run(&mut |_, _| {}) {
        Err(e) => e,
        Ok(_) => panic!("the scenario should fail"),
    }
}

fn create(at: &str, cidr: &str, region: &str) -> String {
    format!("[[timeline]]\nat = \"{at}\"\nop = \"create_binding\"\nname = \"{cidr} at {at}\"\nprefix = \"p\"\ncidr = \"{cidr}\"\nregion = \"{region}\"\n")
}

#[test]
fn invalid_operations_fail_with_the_api_error_code() {
    let dup =
        failing(&(create("0s", "203.0.113.0/25", "eu") + &create("1h", "203.0.113.0/25", "us")));
    assert_eq!(dup.api_code(), Some(1108), "{dup}");
    let msg = dup.to_string();
    assert!(
        msg.starts_with("bad.toml: timeline[1] (create binding 203.0.113.0/25 → us): 1108"),
        "{msg}"
    );
    for (cidr, region, code) in [
        ("203.0.113.0/24", "eu", 1108),
        ("198.51.100.0/25", "eu", 1103),
        ("203.0.113.5/25", "eu", 1102),
        ("203.0.113.0/25", "mars", 1106),
    ] {
        let err = failing(&create("0s", cidr, region));
        assert_eq!(err.api_code(), Some(code), "{cidr} → {region}: {err}");
    }
    // The address-map gate (§9): the binding is still provisioning an hour later.
    let gate = failing(
        &(create("0s", "203.0.113.0/25", "eu")
            + "[[timeline]]\nat = \"1h\"\nop = \"create_address_map\"\nmap = \"m\"\nips = [\"203.0.113.7\"]\n"),
    );
    assert_eq!(gate.api_code(), Some(1301), "{gate}");
}

/// Propagation delays past what `Duration` holds (a lognormal tail cap with a large
/// median and sigma, or a huge fixed delay) are "never", not a panic.
#[test]
fn huge_propagation_delays_run() {
    for delay in [
        "{ dist = \"lognormal\", median = \"480h\", sigma = 10.0 }",
        "{ dist = \"fixed\", value = 1e20 }",
        "{ dist = \"uniform\", min = 0, max = 1e25 }",
    ] {
        let text = format!(
            "name = \"d\"\nduration = \"2h\"\n[propagation]\ndelay = {delay}\n[[prefixes]]\nid = \"p\"\ncidr = \"203.0.113.0/24\"\n{}[[clients]]\ncountry = \"DE\"\n[workload]\nflows = 200\ndestinations = [{{ cidr = \"203.0.113.0/24\" }}]\n",
            create("0s", "203.0.113.0/25", "us")
        );
        let s = Scenario::from_toml_str("d.toml", &text).unwrap();
        let r = run(&s);
        assert_eq!(r.flows, 200, "{delay}");
        assert_eq!(r.out_of_region_processed, 0, "{delay}");
    }
}

/// Progress is reported in simulated time as well as flows, and also by a run made of
/// DNS probe rounds with hardly any flows (it used to say nothing until the end).
#[test]
fn probe_heavy_runs_report_progress() {
    let text = format!(
        "name = \"dns\"\nduration = \"2h\"\n[[prefixes]]\nid = \"p\"\ncidr = \"203.0.113.0/24\"\n{}[[clients]]\ncountry = \"DE\"\n[workload]\nflows = 10\ndestinations = [{{ cidr = \"203.0.113.0/24\" }}]\n[dns]\nevery = \"1s\"\nfrom = [\"FRA\"]\ntargets = [\"203.0.113.7\"]\n",
        create("0s", "203.0.113.0/25", "eu")
    );
    let s = Scenario::from_toml_str("dns.toml", &text).unwrap();
    let sim = Simulation::new(s, &ReferenceData::embedded()).unwrap();
    let mut seen: Vec<Progress> = Vec::new();
    sim.run_reporting(&mut |p| seen.push(*p)).unwrap();
    // 7,200 probe rounds: a report every 256, and one at the end.
    assert!(seen.len() >= 28, "{} reports", seen.len());
    assert!(seen.windows(2).all(|w| w[0].at <= w[1].at));
    let last = seen.last().unwrap();
    assert_eq!(last.at, SimTime::from_secs(7200));
    assert_eq!((last.flows_done, last.flows_total), (10, 10));
}
