//! Table comparison: our compiled table against `ip_network_table` 0.2 (the baseline) and
//! the Rust LPM crates people compare against (the peers: `prefix-trie`'s `PrefixMap`,
//! `iptrie`'s LC-trie, `poptrie` and treebitmap; see `peers.rs` for versions and why
//! treebitmap is the copy that `ip_network_table` publishes), same prefixes, same values
//! (one per prefix), same address streams, same process. One JSON object per line per
//! case on stdout:
//!
//! ```text
//! {"case":"v4-real-hit-batch","ours_mlps":..,"baseline_mlps":..,"speedup":..,
//!  "ours_bytes":..,"baseline_bytes":..,"build_ms":.., ...,
//!  "peers_mlps":{"prefix_trie":..,"iptrie":..,"poptrie":..,"treebitmap":..},
//!  "best_peer":"poptrie","best_peer_mlps":..,"vs_best_peer":..}
//! ```
//!
//! - `ours_mlps` / `baseline_mlps`: million lookups per second, median of several timed
//!   passes over the stream. The baseline has no batch API: its "batch" cases are the
//!   same single lookups in a loop.
//! - `ours_bytes`: [`Table::size_bytes`] (tries + the sorted prefix list kept for
//!   `longest_match`); `ours_lookup_bytes`: what lookups touch (tries + values).
//! - `baseline_bytes`: measured, not estimated: the allocated capacity reported by an
//!   identical copy of the trie inside `ip_network_table` (`treebitmap`'s `mem_usage`).
//! - `build_ms`: compiling our table from a filled builder (median of several builds);
//!   `baseline_build_ms`: inserting all prefixes into `ip_network_table`.
//! - `peers_mlps`, `best_peer`, `best_peer_mlps`, `vs_best_peer`: on the hit, uniform
//!   and dependent lines. Like the baseline, the peers have no batch API: their rates are
//!   single lookups, the same on a case's `-batch` and `-single` lines, and
//!   `vs_best_peer` is that line's `ours_mlps` divided by the fastest peer's rate. Before
//!   timing, every peer must return our table's value on 10,000 addresses of each stream
//!   (the run fails otherwise). The peers' build time is not measured; the publish and
//!   thread cases have no peers.
//! - Two value regimes per table: `v4-10k`, `v4-real`, `v6-real`, `v6-10k`, `v6-200k`
//!   give each prefix one of 12 region ids at random (one value per prefix, neighbours
//!   unrelated); the `-regions` tables (`v4-real-regions-hit-batch`, ...) are the same
//!   prefixes with region-like values (24 values in runs of neighbouring prefixes in
//!   sorted order, `workload::region_runs`: runs of 5,000 on the real IPv4 table),
//!   baseline and peers alike. The `-regions` tables have the hit and uniform lines only.
//! - `distinct_values`, `layout`: our table's distinct values and the layout its
//!   chooser picked for the family.
//! - `dir24_mlps`, `dir24_bytes`, `vs_dir24` (IPv4 hit and uniform lines): a plain
//!   DIR-24-8 (`dir24.rs`: 2^24 16-bit entries and 256-entry chunks, single lookups in
//!   a loop) on the same stream, checked against our table on 10,000 addresses of each
//!   stream before timing; `vs_dir24` is the line's `ours_mlps` divided by its rate.
//! - `*-publish-1000hz`: `ours_mlps` is reader throughput while a writer publishes a new
//!   snapshot every millisecond, `baseline_mlps` the same reader without the writer.
//! - `*-threads-N`: N reader threads; thread counts from `INREGION_BENCH_THREADS`
//!   (comma-separated, default `1,2`).
//!
//! Progress goes to stderr.

use std::hint::black_box;
use std::net::{Ipv4Addr, Ipv6Addr};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use inregion_table::{SharedTable, Table, TableStats};
use ip_network_table::IpNetworkTable;
use ipnet::{Ipv4Net, Ipv6Net};
use rand::seq::SliceRandom;
use serde_json::json;

use crate::dir24::Dir24;
use crate::peers::{self, Lpm, PeersV4};
use crate::workload;

/// Addresses per batch call: a typical receive batch.
const BATCH: usize = 256;

/// Addresses per stream in the quick comparison (`--quick`).
pub const QUICK_STREAM_LEN: usize = 1 << 20;

/// The synthetic IPv6 tables: name, prefixes, and the seed of
/// [`workload::synthetic_v6`].
pub const V6_SYNTHETIC: [(&str, usize, u64); 2] = [("v6-10k", 10_000, 3), ("v6-200k", 200_000, 2)];

/// The seed of [`workload::with_regions`] for the real IPv6 table's values.
pub const V6_REAL_VALUE_SEED: u64 = 13;

/// The seed of [`workload::with_regions`] for the synthetic IPv6 tables' values.
pub const V6_SYNTHETIC_VALUE_SEED: u64 = 14;

/// The seeds of the IPv6 hit-heavy ([`workload::hits_v6`]) and uniform
/// ([`workload::uniform_v6`]) streams.
pub const V6_STREAM_SEEDS: (u64, u64) = (31, 32);

/// Timing settings for one run.
#[derive(Clone, Copy, Debug)]
struct Budget {
    /// Addresses per stream.
    stream_len: usize,
    /// Wall time spent measuring one side of one case.
    per_side: Duration,
    /// Builds timed for `build_ms`.
    builds: usize,
}

/// Runs the table comparison and prints JSON lines to stdout.
pub fn run(quick: bool) -> anyhow::Result<()> {
    let budget = if quick {
        Budget {
            stream_len: QUICK_STREAM_LEN,
            per_side: Duration::from_millis(1000),
            builds: 3,
        }
    } else {
        Budget {
            stream_len: 1 << 22,
            per_side: Duration::from_secs(3),
            builds: 7,
        }
    };
    let threads = crate::thread_counts("1,2")?;
    eprintln!(
        "table: budget {budget:?}, threads {threads:?}, cpu features {}",
        cpu_features()
    );

    // INREGION_BENCH_ONLY=v4-real,v6-200k runs only those tables (all by default).
    const TABLES: [&str; 5] = ["v4-10k", "v4-real", "v6-real", "v6-10k", "v6-200k"];
    let only = std::env::var("INREGION_BENCH_ONLY").unwrap_or_default();
    // A case name from the output (`v4-10k-hit-batch`) selects its table.
    let selects = |o: &str, name: &str| o == name || o.starts_with(&format!("{name}-"));
    for o in only.split(',').map(str::trim).filter(|o| !o.is_empty()) {
        anyhow::ensure!(
            TABLES.iter().any(|t| selects(o, t)),
            "INREGION_BENCH_ONLY: unknown table {o:?}; the tables are {}",
            TABLES.join(", ")
        );
    }
    let wanted =
        |name: &str| only.trim().is_empty() || only.split(',').any(|o| selects(o.trim(), name));

    // --- IPv4, BYOIP-sized synthetic (10k) ---
    if wanted("v4-10k") {
        let nets = workload::synthetic_v4_byoip(10_000, 1);
        v4_cases(
            "v4-10k",
            &workload::with_regions(&nets, 11),
            budget,
            &[],
            true,
        )?;
        v4_cases(
            "v4-10k-regions",
            &workload::region_runs(&nets),
            budget,
            &[],
            false,
        )?;
    }

    // --- IPv4 and IPv6, real BGP table ---
    if wanted("v4-real") || wanted("v6-real") {
        eprintln!("table: loading {}", workload::bgp_path().display());
        let bgp = workload::load_bgp(&workload::bgp_path())?;
        eprintln!(
            "table: {} IPv4 and {} IPv6 prefixes",
            bgp.v4.len(),
            bgp.v6.len()
        );
        if wanted("v4-real") {
            let v4_real = workload::with_regions(&bgp.v4, 12);
            v4_cases("v4-real", &v4_real, budget, &threads, true)?;
            let regions = workload::region_runs(&bgp.v4);
            v4_cases("v4-real-regions", &regions, budget, &[], false)?;
        }
        if wanted("v6-real") {
            v6_cases(
                "v6-real",
                &workload::with_regions(&bgp.v6, V6_REAL_VALUE_SEED),
                budget,
                true,
            )?;
            let regions = workload::region_runs(&bgp.v6);
            v6_cases("v6-real-regions", &regions, budget, false)?;
        }
    }

    // --- IPv6 synthetic (10k and 200k, mostly /48) ---
    for (name, count, seed) in V6_SYNTHETIC {
        if wanted(name) {
            let nets = workload::synthetic_v6(count, seed);
            let prefixes = workload::with_regions(&nets, V6_SYNTHETIC_VALUE_SEED);
            v6_cases(name, &prefixes, budget, true)?;
            v6_cases(
                &format!("{name}-regions"),
                &workload::region_runs(&nets),
                budget,
                false,
            )?;
        }
    }
    Ok(())
}

/// What every case line of one table shares.
struct Common {
    ours_bytes: usize,
    ours_lookup_bytes: usize,
    baseline_bytes: usize,
    build_ms: f64,
    baseline_build_ms: f64,
    prefixes: usize,
    stats: TableStats,
}

fn emit(case: &str, ours_mlps: f64, baseline_mlps: f64, common: &Common, extra: serde_json::Value) {
    let mut line = json!({
        "case": case,
        "ours_mlps": round2(ours_mlps),
        "baseline_mlps": round2(baseline_mlps),
        "speedup": round2(ours_mlps / baseline_mlps),
        "ours_bytes": common.ours_bytes,
        "baseline_bytes": common.baseline_bytes,
        "build_ms": round2(common.build_ms),
        "ours_lookup_bytes": common.ours_lookup_bytes,
        "baseline_build_ms": round2(common.baseline_build_ms),
        "prefixes": common.prefixes,
        "distinct_values": common.stats.distinct_values,
        "layout": if common.stats.v4_prefixes > 0 {
            common.stats.v4_layout.name()
        } else {
            common.stats.v6_layout.name()
        },
    });
    if let (Some(line), serde_json::Value::Object(extra)) = (line.as_object_mut(), extra) {
        line.extend(extra);
    }
    println!("{line}");
}

/// The lines of one IPv4 table: hit and uniform streams (batch and single, beside the
/// baseline, every peer and the plain DIR-24-8); with `extras`, also the dependent
/// stream, the publish case and the thread cases in `threads`.
fn v4_cases(
    name: &str,
    prefixes: &[(Ipv4Net, u16)],
    budget: Budget,
    threads: &[usize],
    extras: bool,
) -> anyhow::Result<()> {
    eprintln!("table: {name}: building");
    let (ours, build_ms) = timed_build(budget.builds, || workload::build_ours_v4(prefixes));
    let started = Instant::now();
    let baseline = workload::build_baseline_v4(prefixes);
    let baseline_build_ms = started.elapsed().as_secs_f64() * 1e3;
    let peers = peers::build_v4(prefixes);
    let dir24 = Dir24::build(prefixes)
        .ok_or_else(|| anyhow::anyhow!("{name}: too many values or chunks for DIR-24-8"))?;
    let common = Common {
        ours_bytes: ours.size_bytes(),
        ours_lookup_bytes: ours.lookup_size_bytes(),
        baseline_bytes: workload::baseline_bytes_v4(prefixes),
        build_ms,
        baseline_build_ms,
        prefixes: prefixes.len(),
        stats: ours.stats(),
    };
    eprintln!("table: {name}: {:?}", ours.stats());
    let nets: Vec<Ipv4Net> = prefixes.iter().map(|&(n, _)| n).collect();
    let hits = workload::hits_v4(&nets, budget.stream_len, 21);
    let uniform = workload::uniform_v4(budget.stream_len, 22);
    check_v4(&ours, &baseline, &hits[..10_000])?;
    check_v4(&ours, &baseline, &uniform[..10_000])?;

    peers.check(&hits[..10_000], |a| ours.lookup_v4(a))?;
    peers.check(&uniform[..10_000], |a| ours.lookup_v4(a))?;
    for &a in hits[..10_000].iter().chain(&uniform[..10_000]) {
        anyhow::ensure!(
            dir24.lookup(a) == ours.lookup_v4(a),
            "DIR-24-8 disagrees with our table at {a}"
        );
    }

    for (stream_name, stream) in [("hit", &hits), ("uniform", &uniform)] {
        stream_cases_v4(
            &format!("{name}-{stream_name}"),
            stream,
            (&ours, &baseline, &peers, &dir24),
            budget,
            &common,
        );
    }
    if !extras {
        return Ok(());
    }

    let steps = budget.stream_len / 4;
    let dep = |lookup: &dyn Fn(Ipv4Addr) -> Option<u16>| {
        dependent_pass(steps, hits.len(), |i| lookup(hits[i]))
    };
    let [ours_dep, base_dep, p0, p1, p2, p3] = measure(
        budget,
        steps,
        [
            &mut || dependent_pass(steps, hits.len(), |i| ours.lookup_v4(hits[i])),
            &mut || {
                dependent_pass(steps, hits.len(), |i| {
                    baseline.longest_match_ipv4(hits[i]).map(|(_, &v)| v)
                })
            },
            &mut || dep(&|a| peers.prefix_trie.lpm(a)),
            &mut || dep(&|a| peers.iptrie.lpm(a)),
            &mut || dep(&|a| peers.poptrie.lpm(a)),
            &mut || dep(&|a| peers.treebitmap.lpm(a)),
        ],
    );
    emit(
        &format!("{name}-hit-dependent"),
        ours_dep,
        base_dep,
        &common,
        peer_fields(ours_dep, [p0, p1, p2, p3]),
    );

    publish_case(name, &ours, &hits, budget, &common);
    for &n in threads {
        eprintln!("table: {name}-hit-batch-threads-{n}");
        let ours_mt = threaded(n, budget, &hits, |s| batch_pass_v4(&ours, s));
        let base_mt = threaded(n, budget, &hits, |s| baseline_pass_v4(&baseline, s));
        emit(
            &format!("{name}-hit-batch-threads-{n}"),
            ours_mt,
            base_mt,
            &common,
            json!({ "threads": n }),
        );
    }
    Ok(())
}

/// The lines of one IPv6 table: hit and uniform streams (batch and single, beside the
/// baseline and every peer); with `extras`, also the dependent stream.
fn v6_cases(
    name: &str,
    prefixes: &[(Ipv6Net, u16)],
    budget: Budget,
    extras: bool,
) -> anyhow::Result<()> {
    eprintln!("table: {name}: building");
    let (ours, build_ms) = timed_build(budget.builds, || workload::build_ours_v6(prefixes));
    let started = Instant::now();
    let baseline = workload::build_baseline_v6(prefixes);
    let baseline_build_ms = started.elapsed().as_secs_f64() * 1e3;
    let peers = peers::build_v6(prefixes);
    let common = Common {
        ours_bytes: ours.size_bytes(),
        ours_lookup_bytes: ours.lookup_size_bytes(),
        baseline_bytes: workload::baseline_bytes_v6(prefixes),
        build_ms,
        baseline_build_ms,
        prefixes: prefixes.len(),
        stats: ours.stats(),
    };
    eprintln!("table: {name}: {:?}", ours.stats());
    let nets: Vec<Ipv6Net> = prefixes.iter().map(|&(n, _)| n).collect();
    let hits = workload::hits_v6(&nets, budget.stream_len, V6_STREAM_SEEDS.0);
    let uniform = workload::uniform_v6(budget.stream_len, V6_STREAM_SEEDS.1);
    check_v6(&ours, &baseline, &hits[..10_000])?;
    check_v6(&ours, &baseline, &uniform[..10_000])?;

    peers.check(&hits[..10_000], |a| ours.lookup_v6(a))?;
    peers.check(&uniform[..10_000], |a| ours.lookup_v6(a))?;

    for (stream_name, stream) in [("hit", &hits), ("uniform", &uniform)] {
        let case = format!("{name}-{stream_name}");
        eprintln!("table: {case}");
        let [batch, single, base, p0, p1, p2, p3] = measure(
            budget,
            stream.len(),
            [
                &mut || batch_pass_v6(&ours, stream),
                &mut || single_pass_v6(&ours, stream),
                &mut || baseline_pass_v6(&baseline, stream),
                &mut || peers::pass(&peers.prefix_trie, stream),
                &mut || peers::pass(&peers.iptrie, stream),
                &mut || peers::pass(&peers.poptrie, stream),
                &mut || peers::pass(&peers.treebitmap, stream),
            ],
        );
        let rates = [p0, p1, p2, p3];
        emit(
            &format!("{case}-batch"),
            batch,
            base,
            &common,
            peer_fields(batch, rates),
        );
        emit(
            &format!("{case}-single"),
            single,
            base,
            &common,
            peer_fields(single, rates),
        );
    }
    if !extras {
        return Ok(());
    }
    let steps = budget.stream_len / 4;
    let dep = |lookup: &dyn Fn(Ipv6Addr) -> Option<u16>| {
        dependent_pass(steps, hits.len(), |i| lookup(hits[i]))
    };
    let [ours_dep, base_dep, p0, p1, p2, p3] = measure(
        budget,
        steps,
        [
            &mut || dependent_pass(steps, hits.len(), |i| ours.lookup_v6(hits[i])),
            &mut || {
                dependent_pass(steps, hits.len(), |i| {
                    baseline.longest_match_ipv6(hits[i]).map(|(_, &v)| v)
                })
            },
            &mut || dep(&|a| peers.prefix_trie.lpm(a)),
            &mut || dep(&|a| peers.iptrie.lpm(a)),
            &mut || dep(&|a| peers.poptrie.lpm(a)),
            &mut || dep(&|a| peers.treebitmap.lpm(a)),
        ],
    );
    emit(
        &format!("{name}-hit-dependent"),
        ours_dep,
        base_dep,
        &common,
        peer_fields(ours_dep, [p0, p1, p2, p3]),
    );
    Ok(())
}

/// The hit or uniform IPv4 lines of one stream: ours batch and single, the baseline and
/// every peer, measured together.
fn stream_cases_v4(
    case: &str,
    stream: &[Ipv4Addr],
    (ours, baseline, peers, dir24): (&Table<u16>, &IpNetworkTable<u16>, &PeersV4, &Dir24),
    budget: Budget,
    common: &Common,
) {
    eprintln!("table: {case}");
    let [batch, single, base, p0, p1, p2, p3, plain] = measure(
        budget,
        stream.len(),
        [
            &mut || batch_pass_v4(ours, stream),
            &mut || single_pass_v4(ours, stream),
            &mut || baseline_pass_v4(baseline, stream),
            &mut || peers::pass(&peers.prefix_trie, stream),
            &mut || peers::pass(&peers.iptrie, stream),
            &mut || peers::pass(&peers.poptrie, stream),
            &mut || peers::pass(&peers.treebitmap, stream),
            &mut || {
                stream
                    .iter()
                    .map(|&a| u64::from(dir24.lookup(a).unwrap_or(0)))
                    .sum()
            },
        ],
    );
    let rates = [p0, p1, p2, p3];
    let with_dir24 = |ours: f64| {
        let mut fields = peer_fields(ours, rates);
        if let Some(f) = fields.as_object_mut() {
            f.insert("dir24_mlps".into(), json!(round2(plain)));
            f.insert("dir24_bytes".into(), json!(dir24.bytes()));
            f.insert("vs_dir24".into(), json!(round2(ours / plain)));
        }
        fields
    };
    emit(
        &format!("{case}-batch"),
        batch,
        base,
        common,
        with_dir24(batch),
    );
    emit(
        &format!("{case}-single"),
        single,
        base,
        common,
        with_dir24(single),
    );
}

/// The peer fields of one line: every peer's rate (`peers_mlps`, in
/// [`peers::NAMES`] order), the fastest (`best_peer`, `best_peer_mlps`) and `ours`
/// divided by it (`vs_best_peer`).
fn peer_fields(ours: f64, rates: [f64; 4]) -> serde_json::Value {
    let (best, best_rate) = peers::NAMES
        .iter()
        .zip(rates)
        .max_by(|a, b| a.1.total_cmp(&b.1))
        .expect("four peers");
    let peers_mlps: serde_json::Map<String, serde_json::Value> = peers::NAMES
        .iter()
        .zip(rates)
        .map(|(name, rate)| ((*name).to_owned(), json!(round2(rate))))
        .collect();
    json!({
        "peers_mlps": peers_mlps,
        "best_peer": best,
        "best_peer_mlps": round2(best_rate),
        "vs_best_peer": round2(ours / best_rate),
    })
}

/// Reader throughput with and without a writer publishing every millisecond. The writer
/// publishes clones of the table (O(1): clones share the compiled data), so the case
/// measures what publishing costs readers (swaps, reclamation of old snapshots), not the
/// cost of building tables on a shared core.
fn publish_case(
    name: &str,
    table: &Table<u16>,
    stream: &[Ipv4Addr],
    budget: Budget,
    common: &Common,
) {
    eprintln!("table: {name}-publish-1000hz");
    let shared = SharedTable::new(1, table.clone());
    let reader = |stop: &AtomicBool| {
        let mut out = [None; BATCH];
        let mut lookups = 0u64;
        let started = Instant::now();
        while !stop.load(Ordering::Relaxed) {
            for group in stream.chunks_exact(BATCH) {
                let snapshot = shared.load();
                snapshot.lookup_batch_v4(group, &mut out);
                black_box(&out);
            }
            lookups += (stream.len() / BATCH * BATCH) as u64;
        }
        lookups as f64 / started.elapsed().as_secs_f64() / 1e6
    };
    let quiet = {
        let stop = AtomicBool::new(false);
        std::thread::scope(|scope| {
            let handle = scope.spawn(|| reader(&stop));
            std::thread::sleep(budget.per_side);
            stop.store(true, Ordering::Relaxed);
            handle.join().expect("reader")
        })
    };
    let published = AtomicU64::new(0);
    let started = Instant::now();
    let busy = {
        let stop = AtomicBool::new(false);
        std::thread::scope(|scope| {
            let handle = scope.spawn(|| reader(&stop));
            let writer = scope.spawn(|| {
                let mut version = 1;
                let mut due = Instant::now();
                while !stop.load(Ordering::Relaxed) {
                    due += Duration::from_millis(1);
                    if let Some(wait) = due.checked_duration_since(Instant::now()) {
                        std::thread::sleep(wait);
                    }
                    version += 1;
                    shared.publish(version, table.clone()).expect("newer");
                    published.fetch_add(1, Ordering::Relaxed);
                }
            });
            std::thread::sleep(budget.per_side);
            stop.store(true, Ordering::Relaxed);
            writer.join().expect("writer");
            handle.join().expect("reader")
        })
    };
    let rate = published.load(Ordering::Relaxed) as f64 / started.elapsed().as_secs_f64();
    emit(
        &format!("{name}-publish-1000hz"),
        busy,
        quiet,
        common,
        json!({
            "publishes_per_s": round2(rate),
            "note": "ours_mlps: one reader (batch) while a writer publishes; baseline_mlps: the same reader without the writer",
        }),
    );
}

fn timed_build(builds: usize, build: impl Fn() -> Table<u16>) -> (Table<u16>, f64) {
    let mut times = Vec::with_capacity(builds);
    let mut table = None;
    for _ in 0..builds {
        let started = Instant::now();
        let t = build();
        times.push(started.elapsed().as_secs_f64());
        table = Some(t);
    }
    // `build` includes filling the builder; time the compile step alone too.
    let builder = table.as_ref().expect("builds >= 1").to_builder();
    let mut compile = Vec::with_capacity(builds);
    for _ in 0..builds {
        let started = Instant::now();
        black_box(builder.build());
        compile.push(started.elapsed().as_secs_f64());
    }
    (table.expect("builds >= 1"), median(&mut compile) * 1e3)
}

/// Million lookups per second of each contender: the median of timed passes (one pass =
/// `lookups`). The contenders' passes alternate, so a change in machine load (other
/// processes, frequency) hits all of them alike, in a shuffled order each round: a pass
/// starts with the caches its predecessor left (in a fixed order, our single lookups
/// always followed our batch over the same trie and stream and started warm, while the
/// batch followed a peer and started cold; a 4.5 MiB trie takes ~9 % of a pass to bring
/// back from memory).
fn measure<const N: usize>(
    budget: Budget,
    lookups: usize,
    mut passes: [&mut dyn FnMut() -> u64; N],
) -> [f64; N] {
    for pass in passes.iter_mut() {
        black_box(pass()); // warm caches and page tables
    }
    let mut rates: [Vec<f64>; N] = std::array::from_fn(|_| Vec::new());
    let mut order: [usize; N] = std::array::from_fn(|i| i);
    let mut rng = workload::rng(N as u64);
    let started = Instant::now();
    while rates[0].len() < 3 || started.elapsed() < budget.per_side * N as u32 {
        order.shuffle(&mut rng);
        for &i in &order {
            let t = Instant::now();
            black_box(passes[i]());
            rates[i].push(lookups as f64 / t.elapsed().as_secs_f64() / 1e6);
        }
    }
    rates.map(|mut r| median(&mut r))
}

fn threaded<A: Sync>(
    n: usize,
    budget: Budget,
    stream: &[A],
    pass: impl Fn(&[A]) -> u64 + Sync,
) -> f64 {
    let stop = AtomicBool::new(false);
    let started = Instant::now();
    let total: u64 = std::thread::scope(|scope| {
        let workers: Vec<_> = (0..n)
            .map(|i| {
                let (stop, pass) = (&stop, &pass);
                scope.spawn(move || {
                    // Each thread walks its own part of the stream, in slices small enough
                    // (16 Ki addresses) that it notices the stop signal promptly.
                    let slice_len = stream.len() / n.max(1);
                    let mine = &stream[i * slice_len..(i + 1) * slice_len];
                    let mut lookups = 0u64;
                    'outer: loop {
                        for slice in mine.chunks(1 << 14) {
                            if stop.load(Ordering::Relaxed) {
                                break 'outer;
                            }
                            black_box(pass(slice));
                            lookups += slice.len() as u64;
                        }
                    }
                    lookups
                })
            })
            .collect();
        std::thread::sleep(budget.per_side);
        stop.store(true, Ordering::Relaxed);
        workers.into_iter().map(|w| w.join().expect("worker")).sum()
    });
    total as f64 / started.elapsed().as_secs_f64() / 1e6
}

fn batch_pass_v4(table: &Table<u16>, stream: &[Ipv4Addr]) -> u64 {
    let mut out = [None; BATCH];
    let mut sum = 0u64;
    for group in stream.chunks_exact(BATCH) {
        table.lookup_batch_v4(group, &mut out);
        sum += out.iter().map(|v| u64::from(v.unwrap_or(0))).sum::<u64>();
    }
    sum
}

fn single_pass_v4(table: &Table<u16>, stream: &[Ipv4Addr]) -> u64 {
    stream
        .iter()
        .map(|&a| u64::from(table.lookup_v4(a).unwrap_or(0)))
        .sum()
}

fn baseline_pass_v4(table: &IpNetworkTable<u16>, stream: &[Ipv4Addr]) -> u64 {
    stream
        .iter()
        .map(|&a| u64::from(table.longest_match_ipv4(a).map_or(0, |(_, &v)| v)))
        .sum()
}

/// One timed pass of our batch lookups over `stream`, 256 addresses a call; returns the
/// sum of the values found (so that the work cannot be optimized away).
pub fn batch_pass_v6(table: &Table<u16>, stream: &[Ipv6Addr]) -> u64 {
    let mut out = [None; BATCH];
    let mut sum = 0u64;
    for group in stream.chunks_exact(BATCH) {
        table.lookup_batch_v6(group, &mut out);
        sum += out.iter().map(|v| u64::from(v.unwrap_or(0))).sum::<u64>();
    }
    sum
}

/// [`batch_pass_v6`] with one lookup at a time.
pub fn single_pass_v6(table: &Table<u16>, stream: &[Ipv6Addr]) -> u64 {
    stream
        .iter()
        .map(|&a| u64::from(table.lookup_v6(a).unwrap_or(0)))
        .sum()
}

fn baseline_pass_v6(table: &IpNetworkTable<u16>, stream: &[Ipv6Addr]) -> u64 {
    stream
        .iter()
        .map(|&a| u64::from(table.longest_match_ipv6(a).map_or(0, |(_, &v)| v)))
        .sum()
}

/// `steps` lookups where each address index depends on the previous result.
fn dependent_pass(steps: usize, len: usize, lookup: impl Fn(usize) -> Option<u16>) -> u64 {
    let mut position = 0;
    let mut previous = None;
    let mut sum = 0u64;
    for _ in 0..steps {
        position = workload::dependent_next(position, previous, len);
        previous = lookup(position);
        sum += u64::from(previous.unwrap_or(0));
    }
    sum
}

fn check_v4(
    ours: &Table<u16>,
    baseline: &IpNetworkTable<u16>,
    addrs: &[Ipv4Addr],
) -> anyhow::Result<()> {
    for &a in addrs {
        let want = baseline.longest_match_ipv4(a).map(|(_, &v)| v);
        anyhow::ensure!(
            ours.lookup_v4(a) == want,
            "table disagrees with ip_network_table at {a}"
        );
    }
    Ok(())
}

fn check_v6(
    ours: &Table<u16>,
    baseline: &IpNetworkTable<u16>,
    addrs: &[Ipv6Addr],
) -> anyhow::Result<()> {
    for &a in addrs {
        let want = baseline.longest_match_ipv6(a).map(|(_, &v)| v);
        anyhow::ensure!(
            ours.lookup_v6(a) == want,
            "table disagrees with ip_network_table at {a}"
        );
    }
    Ok(())
}

/// CPU features the build was compiled to assume (every contender), and whether our
/// batches run their `popcnt` copy (picked at run time by what the CPU has; see
/// `inregion_hint::with_popcnt`).
fn cpu_features() -> String {
    let features = [
        ("popcnt", cfg!(target_feature = "popcnt")),
        ("bmi2", cfg!(target_feature = "bmi2")),
        ("avx2", cfg!(target_feature = "avx2")),
    ];
    let on: Vec<&str> = features.iter().filter(|f| f.1).map(|f| f.0).collect();
    let build = if on.is_empty() {
        "baseline x86-64 (no popcnt)".to_owned()
    } else {
        on.join("+")
    };
    #[cfg(target_arch = "x86_64")]
    let batches = if std::arch::is_x86_feature_detected!("popcnt") {
        "popcnt copy"
    } else {
        "baseline copy (the CPU has no popcnt)"
    };
    #[cfg(not(target_arch = "x86_64"))]
    let batches = "one copy";
    format!("build {build}; our batches: {batches}")
}

fn median(values: &mut [f64]) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

fn round2(x: f64) -> f64 {
    (x * 100.0).round() / 100.0
}
