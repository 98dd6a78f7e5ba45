//! Criterion benchmarks of the region table against `ip_network_table` 0.2: the same
//! prefixes and the same address streams in the same run (workloads from
//! `inregion_bench::workload`).
//!
//! ```text
//! cargo bench --bench table                  # everything (~10 minutes on 2 cores)
//! cargo bench --bench table -- v4-real/hit   # one group
//! ```
//!
//! Groups, each with `ours-batch` / `ours-single` / `baseline` on one stream:
//! `v4-10k/{hit,uniform,dependent}`, `v4-real/{hit,uniform,dependent}`,
//! `v6-real/{hit,uniform,dependent}`, `v6-200k/{hit,uniform,dependent}`; plus
//! `build/*` (compile time), `publish-1000hz/*` (reader throughput while a writer
//! publishes every millisecond) and the compiled sizes printed to stderr.

// criterion_group! defines a public, undocumented function per group.
#![allow(missing_docs)]

use std::hint::black_box;
use std::net::{Ipv4Addr, Ipv6Addr};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use inregion_bench::workload;
use inregion_table::{SharedTable, Table};
use ip_network_table::IpNetworkTable;
use ipnet::{Ipv4Net, Ipv6Net};

/// Addresses per measured iteration (and per stream).
const STREAM: usize = 1 << 16;
/// Addresses per batch call.
const BATCH: usize = 256;

fn v4_group(c: &mut Criterion, name: &str, prefixes: &[(Ipv4Net, u16)]) {
    let ours = workload::build_ours_v4(prefixes);
    let baseline = workload::build_baseline_v4(prefixes);
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
    for (stream_name, stream) in &streams {
        let mut group = c.benchmark_group(format!("{name}/{stream_name}"));
        group.throughput(Throughput::Elements(stream.len() as u64));
        group.bench_function("ours-batch", |b| {
            let mut out = [None; BATCH];
            b.iter(|| {
                for chunk in stream.chunks_exact(BATCH) {
                    ours.lookup_batch_v4(chunk, &mut out);
                    black_box(&out);
                }
            })
        });
        group.bench_function("ours-single", |b| {
            b.iter(|| {
                for &a in stream {
                    black_box(ours.lookup_v4(a));
                }
            })
        });
        group.bench_function("baseline", |b| {
            b.iter(|| {
                for &a in stream {
                    black_box(baseline.longest_match_ipv4(a).map(|(_, &v)| v));
                }
            })
        });
        group.finish();
    }
    let hits = &streams[0].1;
    let mut group = c.benchmark_group(format!("{name}/dependent"));
    group.throughput(Throughput::Elements(hits.len() as u64));
    group.bench_function("ours-single", |b| {
        b.iter(|| dependent(hits.len(), |i| ours.lookup_v4(hits[i])))
    });
    group.bench_function("baseline", |b| {
        b.iter(|| {
            dependent(hits.len(), |i| {
                baseline.longest_match_ipv4(hits[i]).map(|(_, &v)| v)
            })
        })
    });
    group.finish();
}

fn v6_group(c: &mut Criterion, name: &str, prefixes: &[(Ipv6Net, u16)]) {
    let ours = workload::build_ours_v6(prefixes);
    let baseline: IpNetworkTable<u16> = workload::build_baseline_v6(prefixes);
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
    for (stream_name, stream) in &streams {
        let mut group = c.benchmark_group(format!("{name}/{stream_name}"));
        group.throughput(Throughput::Elements(stream.len() as u64));
        group.bench_function("ours-batch", |b| {
            let mut out = [None; BATCH];
            b.iter(|| {
                for chunk in stream.chunks_exact(BATCH) {
                    ours.lookup_batch_v6(chunk, &mut out);
                    black_box(&out);
                }
            })
        });
        group.bench_function("ours-single", |b| {
            b.iter(|| {
                for &a in stream {
                    black_box(ours.lookup_v6(a));
                }
            })
        });
        group.bench_function("baseline", |b| {
            b.iter(|| {
                for &a in stream {
                    black_box(baseline.longest_match_ipv6(a).map(|(_, &v)| v));
                }
            })
        });
        group.finish();
    }
    let hits: &Vec<Ipv6Addr> = &streams[0].1;
    let mut group = c.benchmark_group(format!("{name}/dependent"));
    group.throughput(Throughput::Elements(hits.len() as u64));
    group.bench_function("ours-single", |b| {
        b.iter(|| dependent(hits.len(), |i| ours.lookup_v6(hits[i])))
    });
    group.bench_function("baseline", |b| {
        b.iter(|| {
            dependent(hits.len(), |i| {
                baseline.longest_match_ipv6(hits[i]).map(|(_, &v)| v)
            })
        })
    });
    group.finish();
}

/// `len` lookups, each address chosen by the previous result (latency, not throughput).
fn dependent(len: usize, lookup: impl Fn(usize) -> Option<u16>) -> Option<u16> {
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
    v4_group(c, "v4-10k", &v4_10k);
    let bgp = workload::load_bgp(&workload::bgp_path()).expect("benches/data/bgpas.lpm.gz");
    let v4_real = workload::with_regions(&bgp.v4, 12);
    v4_group(c, "v4-real", &v4_real);
    let v6_real = workload::with_regions(&bgp.v6, 13);
    v6_group(c, "v6-real", &v6_real);
    let v6_200k = workload::with_regions(&workload::synthetic_v6(200_000, 2), 14);
    v6_group(c, "v6-200k", &v6_200k);
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
    config = Criterion::default()
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2))
        .sample_size(20);
    targets = benches
}
criterion_main!(table);
