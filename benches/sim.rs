//! Criterion benchmark of the simulator: simulated flows per second of wall time.
//!
//! ```text
//! cargo bench --bench sim
//! ```
//!
//! `sim/quickstart-200k` runs the quickstart scenario (real data centers, an `eu`
//! binding propagating, a failure, a PATCH, DNS probes) with 200,000 flows; throughput is
//! reported in flows (elements) per second. For the 10M-flow figure and peak memory, run
//! the shipped scale scenario through the release binary:
//!
//! ```text
//! cargo build --release
//! /usr/bin/time -v target/release/inregion simulate scenarios/scale-10m.toml --out out/scale
//! ```

// criterion_group! defines a public, undocumented function per group.
#![allow(missing_docs)]

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use inregion_model::ReferenceData;
use inregion_sim::{Scenario, Simulation};

fn bench(c: &mut Criterion) {
    let refdata = ReferenceData::embedded();
    let mut g = c.benchmark_group("sim");
    g.sample_size(10);
    let flows = 200_000u64;
    let mut s = Scenario::quickstart();
    s.workload.flows = flows;
    g.throughput(Throughput::Elements(flows));
    g.bench_function("quickstart-200k", |b| {
        b.iter(|| {
            let sim = Simulation::new(s.clone(), &refdata).expect("valid scenario");
            let out = sim.run(&mut |_, _| {}).expect("runs");
            assert_eq!(out.metrics.flows, flows);
            out.metrics.out_of_region_processed
        })
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
