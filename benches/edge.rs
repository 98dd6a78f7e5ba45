//! Criterion benchmarks of the edge decision, side by side with the obvious baseline
//! (`ip_network_table` + `std::collections::HashMap` flow table + linear scan for the
//! nearest in-region data center). Workload and baseline: `inregion_bench::edge`.
//!
//! ```text
//! cargo bench --bench edge
//! ```
//!
//! Groups (throughput in decisions, each flow table holding 1M live flows):
//! - `edge/new-flows`: first packets of unseen flows (ours batched, ours one call per
//!   packet, baseline); the flows are ended again between iterations, untimed, and
//!   iterations take turns over the sets of fresh flows (`inregion_bench::edge::FRESH_SETS`);
//! - `edge/established-flows`: packets of live flows in random order;
//! - `edge/2-threads`: both, on two threads with one ingress and flow table each.

// criterion_group! defines a public, undocumented function per group.
#![allow(missing_docs)]

use std::sync::Barrier;
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use inregion_bench::edge::{Contest, World, FRESH_PER_PASS, LIVE_FLOWS};

/// Established packets per iteration.
const PACKETS: usize = 1 << 14;

#[derive(Clone, Copy)]
enum Who {
    Ours,
    OursUnbatched,
    Baseline,
}

impl Who {
    fn name(self) -> &'static str {
        match self {
            Who::Ours => "ours",
            Who::OursUnbatched => "ours-unbatched",
            Who::Baseline => "baseline",
        }
    }
}

fn new_pass(c: &mut Contest, who: Who) -> Duration {
    let started = Instant::now();
    match who {
        Who::Ours => c.ours_new(),
        Who::OursUnbatched => c.ours_new_unbatched(),
        Who::Baseline => c.baseline_new(),
    };
    let took = started.elapsed();
    c.end_fresh();
    took
}

fn established_pass(c: &mut Contest, who: Who, round: usize) -> Duration {
    let started = Instant::now();
    match who {
        Who::Ours => c.ours_established(round * PACKETS, PACKETS),
        Who::OursUnbatched => c.ours_established_unbatched(round * PACKETS, PACKETS),
        Who::Baseline => c.baseline_established(round * PACKETS, PACKETS),
    };
    started.elapsed()
}

/// Runs `pass` on every contest at once, one thread each; returns the slowest's time.
fn together(contests: &mut [Contest], pass: impl Fn(&mut Contest) -> Duration + Sync) -> Duration {
    let barrier = Barrier::new(contests.len());
    std::thread::scope(|s| {
        let handles: Vec<_> = contests
            .iter_mut()
            .map(|c| {
                let (barrier, pass) = (&barrier, &pass);
                s.spawn(move || {
                    barrier.wait();
                    pass(c)
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("bench thread"))
            .max()
            .unwrap_or_default()
    })
}

fn bench(c: &mut Criterion) {
    let world = World::new(42).expect("world");
    let edge = world.edge();
    let second = edge.shard();
    let mut contests = vec![
        Contest::new(&world, edge, "IAD", LIVE_FLOWS, 7).expect("contest IAD"),
        Contest::new(&world, second, "SIN", LIVE_FLOWS, 8).expect("contest SIN"),
    ];

    let mut g = c.benchmark_group("edge/new-flows");
    g.sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(4))
        .throughput(Throughput::Elements(FRESH_PER_PASS as u64));
    for who in [Who::Ours, Who::OursUnbatched, Who::Baseline] {
        g.bench_function(who.name(), |b| {
            b.iter_custom(|iters| (0..iters).map(|_| new_pass(&mut contests[0], who)).sum())
        });
    }
    g.finish();

    let mut g = c.benchmark_group("edge/established-flows");
    g.sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(4))
        .throughput(Throughput::Elements(PACKETS as u64));
    for who in [Who::Ours, Who::OursUnbatched, Who::Baseline] {
        let mut round = 0;
        g.bench_function(who.name(), |b| {
            b.iter_custom(|iters| {
                (0..iters)
                    .map(|_| {
                        round += 1;
                        established_pass(&mut contests[0], who, round)
                    })
                    .sum()
            })
        });
    }
    g.finish();

    let mut g = c.benchmark_group("edge/2-threads");
    g.sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(4));
    for who in [Who::Ours, Who::Baseline] {
        g.throughput(Throughput::Elements(2 * FRESH_PER_PASS as u64));
        g.bench_function(BenchmarkId::new("new-flows", who.name()), |b| {
            b.iter_custom(|iters| {
                (0..iters)
                    .map(|_| together(&mut contests, |c| new_pass(c, who)))
                    .sum()
            })
        });
        g.throughput(Throughput::Elements(2 * PACKETS as u64));
        let mut round = 0;
        g.bench_function(BenchmarkId::new("established-flows", who.name()), |b| {
            b.iter_custom(|iters| {
                (0..iters)
                    .map(|_| {
                        round += 1;
                        together(&mut contests, |c| established_pass(c, who, round))
                    })
                    .sum()
            })
        });
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
