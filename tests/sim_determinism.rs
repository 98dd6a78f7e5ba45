//! Determinism of the simulator: the same scenario and seed give a byte-identical
//! `report.json`; another seed gives another one.

use inregion_model::ReferenceData;
use inregion_sim::{Report, Scenario, Simulation};

fn quickstart(flows: u64, seed: u64) -> Scenario {
    let mut s = Scenario::quickstart();
    s.workload.flows = flows;
    s.seed = seed;
    s
}

fn json(s: &Scenario) -> String {
    let sim = Simulation::new(s.clone(), &ReferenceData::embedded()).unwrap();
    let out = sim.run(&mut |_, _| {}).unwrap();
    Report::new(s, &out).to_json()
}

#[test]
fn same_seed_same_bytes_other_seed_other_bytes() {
    let a = json(&quickstart(40_000, 42));
    let b = json(&quickstart(40_000, 42));
    assert_eq!(a, b, "report.json must be byte-identical for the same seed");
    let c = json(&quickstart(40_000, 43));
    assert_ne!(a, c, "another seed must change the report");
    // No wall-clock figure leaks into the JSON.
    for word in ["elapsed", "wall", "per_sec", "duration_ms"] {
        assert!(!a.contains(word), "report.json mentions {word}");
    }
    let v: serde_json::Value = serde_json::from_str(&a).unwrap();
    assert_eq!(v["seed"], 42);
    assert_eq!(v["flows"], 40_000);
    assert_eq!(v["out_of_region_processed"], 0);
}
