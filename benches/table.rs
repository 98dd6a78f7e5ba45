//! Criterion benchmarks of the region table against `ip_network_table` 0.2 (the
//! baseline) and the peer LPM crates (`prefix-trie`, `iptrie`'s LC-trie, `poptrie` and
//! treebitmap, built by `inregion_bench::peers` exactly as the quick comparison builds
//! them): the same prefixes and the same address streams in the same run (workloads from
//! `inregion_bench::workload`).
//!
//! ```text
//! cargo bench --bench table                  # everything (several minutes on 2 cores)
//! cargo bench --bench table -- --quick       # the same, stopping each at significance
//! cargo bench --bench table -- v4-real/hit   # one group
//! ```
//!
//! Groups, each with `ours-batch` / `ours-single` / `baseline` / `peer-<name>` (one per
//! peer crate; they have no batch API) on one stream: `v4-10k/{hit,uniform,dependent}`,
//! `v4-real/{hit,uniform,dependent}`, `v6-real/{hit,uniform,dependent}`,
//! `v6-200k/{hit,uniform,dependent}` (one of 12 values per prefix at random), and the
//! same prefixes with region-like values (24 values in runs of neighbouring prefixes,
//! `workload::region_runs`): `v4-real-regions/{hit,uniform}`,
//! `v6-real-regions/{hit,uniform}`, `v6-200k-regions/{hit,uniform}`; plus `build/*`
//! (compile time), `publish-1000hz/*` (reader throughput while a writer publishes every
//! millisecond) and the compiled sizes printed to stderr. Every peer is checked against
//! our table on the first 10,000 addresses of each stream before anything is timed.

// criterion_group! defines a public, undocumented function per group.
#![allow(missing_docs)]

use std::fmt::Display;
use std::hint::black_box;
use std::net::{Ipv4Addr, Ipv6Addr};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use inregion_bench::peers::{self, Lpm, Peers};
use inregion_bench::workload;
use inregion_table::{SharedTable, Table};
use ipnet::{Ipv4Net, Ipv6Net};

/// Addresses per measured iteration (and per stream).
const STREAM: usize = 1 << 16;
/// Addresses per batch call.
const BATCH: usize = 256;
/// Addresses of each stream on which every peer must agree with our table.
const CHECKED: usize = 10_000;

/// A batch lookup: addresses in, regions out.
type BatchFn<'a, A> = &'a dyn Fn(&[A], &mut [Option<u16>]);

/// One table's lookups, whatever the family: ours (batch and single), the baseline's
/// and the peers'.
struct Contenders<'a, A, P, I, O, T> {
    batch: BatchFn<'a, A>,
    single: &'a dyn Fn(A) -> Option<u16>,
    baseline: &'a dyn Fn(A) -> Option<u16>,
    peers: &'a Peers<P, I, O, T>,
}

/// The groups of one table: `{name}/{stream}` for each stream (hit, uniform) and, with
/// `dependent`, `{name}/dependent` on the first (hit) stream. The peers are called
/// through their own types (no dynamic dispatch in their timed loops); ours and the
/// baseline's through the closures, one call per batch or per address.
fn groups<A, P, I, O, T>(
    c: &mut Criterion,
    name: &str,
    streams: &[(&str, Vec<A>)],
    who: &Contenders<'_, A, P, I, O, T>,
    dependent: bool,
) where
    A: Copy + Display,
    P: Lpm<A>,
    I: Lpm<A>,
    O: Lpm<A>,
    T: Lpm<A>,
{
    for (_, stream) in streams {
        let checked = &stream[..stream.len().min(CHECKED)];
        who.peers
            .check(checked, who.single)
            .unwrap_or_else(|e| panic!("{name}: {e}"));
    }
    for (stream_name, stream) in streams {
        let mut group = c.benchmark_group(format!("{name}/{stream_name}"));
        group.throughput(Throughput::Elements(stream.len() as u64));
        group.bench_function("ours-batch", |b| {
            let mut out = [None; BATCH];
            b.iter(|| {
                for chunk in stream.chunks_exact(BATCH) {
                    (who.batch)(chunk, &mut out);
                    black_box(&out);
                }
            })
        });
        for (id, lookup) in [("ours-single", who.single), ("baseline", who.baseline)] {
            group.bench_function(id, |b| {
                b.iter(|| {
                    for &a in stream {
                        black_box(lookup(a));
                    }
                })
            });
        }
        let [n0, n1, n2, n3] = peers::NAMES;
        group.bench_function(format!("peer-{n0}"), |b| {
            b.iter(|| peers::pass(&who.peers.prefix_trie, stream))
        });
        group.bench_function(format!("peer-{n1}"), |b| {
            b.iter(|| peers::pass(&who.peers.iptrie, stream))
        });
        group.bench_function(format!("peer-{n2}"), |b| {
            b.iter(|| peers::pass(&who.peers.poptrie, stream))
        });
        group.bench_function(format!("peer-{n3}"), |b| {
            b.iter(|| peers::pass(&who.peers.treebitmap, stream))
        });
        group.finish();
    }
    if !dependent {
        return;
    }
    let hits = &streams[0].1;
    let mut group = c.benchmark_group(format!("{name}/dependent"));
    group.throughput(Throughput::Elements(hits.len() as u64));
    let dep = |lookup: &dyn Fn(A) -> Option<u16>| dependent_pass(hits.len(), |i| lookup(hits[i]));
    group.bench_function("ours-single", |b| b.iter(|| dep(who.single)));
    group.bench_function("baseline", |b| b.iter(|| dep(who.baseline)));
    let [n0, n1, n2, n3] = peers::NAMES;
    group.bench_function(format!("peer-{n0}"), |b| {
        b.iter(|| dependent_pass(hits.len(), |i| who.peers.prefix_trie.lpm(hits[i])))
    });
    group.bench_function(format!("peer-{n1}"), |b| {
        b.iter(|| dependent_pass(hits.len(), |i| who.peers.iptrie.lpm(hits[i])))
    });
    group.bench_function(format!("peer-{n2}"), |b| {
        b.iter(|| dependent_pass(hits.len(), |i| who.peers.poptrie.lpm(hits[i])))
    });
    group.bench_function(format!("peer-{n3}"), |b| {
        b.iter(|| dependent_pass(hits.len(), |i| who.peers.treebitmap.lpm(hits[i])))
    });
    group.finish();
}

/// The IPv4 groups of one table (see [`groups`]).
fn v4_group(c: &mut Criterion, name: &str, prefixes: &[(Ipv4Net, u16)], dependent: bool) {
    let ours = workload::build_ours_v4(prefixes);
    let baseline = workload::build_baseline_v4(prefixes);
    let peers = peers::build_v4(prefixes);
    eprintln!(
        "{name}: ours {} bytes ({} on the lookup path), baseline {} bytes, {:?}",
        ours.size_bytes(),
        ours.lookup_size_bytes(),
        workload::baseline_bytes_v4(prefixes),
        ours.stats()
    );
    let nets: Vec<Ipv4Net> = prefixes.iter().map(|&(n, _)| n).collect();
    let streams = [
        ("hit", workload::hits_v4(&nets, STREAM, 21)),
        ("uniform", workload::uniform_v4(STREAM, 22)),
    ];
    let who = Contenders {
        batch: &|chunk: &[Ipv4Addr], out: &mut [Option<u16>]| ours.lookup_batch_v4(chunk, out),
        single: &|a| ours.lookup_v4(a),
        baseline: &|a| baseline.longest_match_ipv4(a).map(|(_, &v)| v),
        peers: &peers,
    };
    groups(c, name, &streams, &who, dependent);
}

/// The IPv6 groups of one table (see [`groups`]).
fn v6_group(c: &mut Criterion, name: &str, prefixes: &[(Ipv6Net, u16)], dependent: bool) {
    let ours = workload::build_ours_v6(prefixes);
    let baseline = workload::build_baseline_v6(prefixes);
    let peers = peers::build_v6(prefixes);
    eprintln!(
        "{name}: ours {} bytes ({} on the lookup path), baseline {} bytes, {:?}",
        ours.size_bytes(),
        ours.lookup_size_bytes(),
        workload::baseline_bytes_v6(prefixes),
        ours.stats()
    );
    let nets: Vec<Ipv6Net> = prefixes.iter().map(|&(n, _)| n).collect();
    let streams = [
        ("hit", workload::hits_v6(&nets, STREAM, 31)),
        ("uniform", workload::uniform_v6(STREAM, 32)),
    ];
    let who = Contenders {
        batch: &|chunk: &[Ipv6Addr], out: &mut [Option<u16>]| ours.lookup_batch_v6(chunk, out),
        single: &|a| ours.lookup_v6(a),
        baseline: &|a| baseline.longest_match_ipv6(a).map(|(_, &v)| v),
        peers: &peers,
    };
    groups(c, name, &streams, &who, dependent);
}

/// `len` lookups, each address chosen by the previous result (latency, not throughput).
fn dependent_pass(len: usize, lookup: impl Fn(usize) -> Option<u16>) -> Option<u16> {
    let (mut position, mut previous) = (0, None);
    for _ in 0..len {
        position = workload::dependent_next(position, previous, len);
        previous = lookup(position);
    }
    previous
}

fn build_group(c: &mut Criterion, v4_10k: &[(Ipv4Net, u16)], v4_real: &[(Ipv4Net, u16)]) {
    let mut group = c.benchmark_group("build");
    group.sample_size(10);
    for (name, prefixes) in [("v4-10k", v4_10k), ("v4-real", v4_real)] {
        let builder = workload::build_ours_v4(prefixes).to_builder();
        group.bench_function(format!("{name}/ours-compile"), |b| {
            b.iter(|| builder.build())
        });
        group.bench_function(format!("{name}/baseline-insert-all"), |b| {
            b.iter(|| workload::build_baseline_v4(prefixes))
        });
    }
    group.bench_function("publish", |b| {
        let shared = SharedTable::new(0, workload::build_ours_v4(&v4_10k[..100]));
        let mut version = 0;
        b.iter_batched(
            Table::empty,
            |table| {
                version += 1;
                shared.publish(version, table).expect("newer")
            },
            BatchSize::SmallInput,
        )
    });
    group.finish();
}

/// Reader throughput (batch lookups, one snapshot per batch) with and without a writer
/// thread publishing a new snapshot every millisecond.
fn publish_group(c: &mut Criterion, name: &str, table: &Table<u16>, stream: &[Ipv4Addr]) {
    let mut group = c.benchmark_group(format!("publish-1000hz/{name}"));
    group.throughput(Throughput::Elements(stream.len() as u64));
    for writer_on in [false, true] {
        let id = if writer_on {
            "reader-with-writer"
        } else {
            "reader-alone"
        };
        group.bench_function(id, |b| {
            b.iter_custom(|iters| {
                let shared = SharedTable::new(1, table.clone());
                let stop = AtomicBool::new(false);
                std::thread::scope(|scope| {
                    if writer_on {
                        scope.spawn(|| {
                            let mut version = 1;
                            while !stop.load(Ordering::Relaxed) {
                                std::thread::sleep(Duration::from_millis(1));
                                version += 1;
                                // O(1): clones share the compiled data.
                                shared.publish(version, table.clone()).expect("newer");
                            }
                        });
                    }
                    let mut out = [None; BATCH];
                    let started = Instant::now();
                    for _ in 0..iters {
                        for chunk in stream.chunks_exact(BATCH) {
                            let snapshot = shared.load();
                            snapshot.lookup_batch_v4(chunk, &mut out);
                            black_box(&out);
                        }
                    }
                    let elapsed = started.elapsed();
                    stop.store(true, Ordering::Relaxed);
                    elapsed
                })
            })
        });
    }
    group.finish();
}

fn benches(c: &mut Criterion) {
    let v4_10k = workload::with_regions(&workload::synthetic_v4_byoip(10_000, 1), 11);
    v4_group(c, "v4-10k", &v4_10k, true);
    let bgp = workload::load_bgp(&workload::bgp_path()).expect("benches/data/bgpas.lpm.gz");
    let v4_real = workload::with_regions(&bgp.v4, 12);
    v4_group(c, "v4-real", &v4_real, true);
    v4_group(c, "v4-real-regions", &workload::region_runs(&bgp.v4), false);
    v6_group(c, "v6-real", &workload::with_regions(&bgp.v6, 13), true);
    v6_group(c, "v6-real-regions", &workload::region_runs(&bgp.v6), false);
    let v6_200k = workload::synthetic_v6(200_000, 2);
    v6_group(c, "v6-200k", &workload::with_regions(&v6_200k, 14), true);
    v6_group(
        c,
        "v6-200k-regions",
        &workload::region_runs(&v6_200k),
        false,
    );
    build_group(c, &v4_10k, &v4_real);
    let nets: Vec<Ipv4Net> = v4_10k.iter().map(|&(n, _)| n).collect();
    publish_group(
        c,
        "v4-10k",
        &workload::build_ours_v4(&v4_10k),
        &workload::hits_v4(&nets, STREAM, 21),
    );
}

criterion_group! {
    name = table;
    // Short warm-up and measurement (the peers multiply the functions by three); the
    // streams are 65,536 lookups, so 20 samples of 1 s still cover millions of lookups.
    config = Criterion::default()
        .warm_up_time(Duration::from_millis(300))
        .measurement_time(Duration::from_secs(1))
        .sample_size(20);
    targets = benches
}
criterion_main!(table);
