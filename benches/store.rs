//! Control-plane store benchmarks (criterion).
//!
//! - `durable_create/*`: `ControlPlane::create_binding` over the default store in a temp
//!   dir (SQLite, `synchronous=FULL`): every measured create has been fsync'd (its
//!   batch's WAL frames) before it returns.
//!   `single` is one writer; `concurrent_N` is N writer threads sharing one control plane
//!   (group commit batches whatever is queued while the previous fsync runs).
//! - `snapshot/*`: `ControlPlane::bindings_in_force(t)` (the data plane's input) over N
//!   live bindings. 10k is loaded through the API (`create_binding`); 1M is loaded with
//!   `bulk_create_bindings` (same rules, one commit) into the memory store, because
//!   creating 1M bindings through fsync'd single creates would take minutes. The measured
//!   operation is the same in both: only the loading differs.
//! - `reads/*`: `get_binding` and a 25-item `list_bindings` page over 10k bindings.
//! - `growth` (printed, not criterion's: criterion reports means, and this is about the
//!   worst case): 200k creates one at a time into the memory store, each timed; the
//!   slowest against the median of the same run. A structure that grows in one step
//!   while the writer lock is held (a `HashMap` doubling its table: 10-27 ms at 14k and
//!   28k bindings, measured in session 20) shows here as a max thousands of times the
//!   median. Also a per-test account (`create_test_account`, the emulator's fixture call)
//!   beside those bindings against one on an empty server: a copy of the whole state per
//!   call made it 598x (214 ms) in session 21, before the seeding rules read the state in
//!   place. And 30k test accounts in a row on a fresh server, the slowest against the
//!   median (the accounts', tokens' and prefixes' `HashMap`s doubling at 28,672: 132 ms,
//!   36x the median, before they were ordered maps).
//!
//! Run: `cargo bench --bench store` (add `-- snapshot` etc. to filter).

// criterion_group! defines a public, undocumented function per group.
#![allow(missing_docs)]

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use inregion_control::*;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

const ACCT: &str = "0123456789abcdef0123456789abcdef";
const P6: &str = "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb";

fn seed() -> SeedConfig {
    SeedConfig::from_toml(&format!(
        r#"
[[accounts]]
id = "{ACCT}"
entitlements = ["regional_services", "regional_services_byoip"]
[[prefixes]]
account = "{ACCT}"
id = "{P6}"
cidr = "2001:db8::/32"
asn = 64496
"#
    ))
    .unwrap()
}

fn now() -> Timestamp {
    Timestamp::from_secs(1_800_000_000)
}

fn cidr(n: u64) -> String {
    format!("2001:db8:{:x}:{:x}::/64", (n >> 16) & 0xffff, n & 0xffff)
}

fn sqlite_plane(dir: &tempfile::TempDir) -> ControlPlane {
    let cp =
        ControlPlane::open_sqlite(dir.path().join("bench.db"), ControlConfig::default()).unwrap();
    cp.seed(&seed(), now()).unwrap();
    cp
}

fn durable_creates(c: &mut Criterion) {
    let mut g = c.benchmark_group("durable_create");
    g.sample_size(10)
        .measurement_time(Duration::from_secs(6))
        .warm_up_time(Duration::from_secs(1))
        .throughput(Throughput::Elements(1));
    let dir = tempfile::tempdir().unwrap();
    let cp = Arc::new(sqlite_plane(&dir));
    let next = Arc::new(AtomicU64::new(0));
    let p = Principal::system();
    g.bench_function("single", |b| {
        b.iter(|| {
            let n = next.fetch_add(1, Ordering::Relaxed);
            cp.create_binding(&p, ACCT, CreateBinding::new(P6, &cidr(n), "eu"), now())
                .unwrap()
        })
    });
    for threads in [8usize, 32] {
        g.bench_with_input(
            BenchmarkId::new("concurrent", threads),
            &threads,
            |b, &threads| {
                b.iter_custom(|iters| {
                    let per = iters.div_ceil(threads as u64);
                    let start = Instant::now();
                    let hs: Vec<_> = (0..threads)
                        .map(|_| {
                            let cp = cp.clone();
                            let next = next.clone();
                            let p = p.clone();
                            std::thread::spawn(move || {
                                for _ in 0..per {
                                    let n = next.fetch_add(1, Ordering::Relaxed);
                                    cp.create_binding(
                                        &p,
                                        ACCT,
                                        CreateBinding::new(P6, &cidr(n), "eu"),
                                        now(),
                                    )
                                    .unwrap();
                                }
                            })
                        })
                        .collect();
                    for h in hs {
                        h.join().unwrap();
                    }
                    // Scale to the requested count (threads * per >= iters).
                    start
                        .elapsed()
                        .mul_f64(iters as f64 / (per * threads as u64) as f64)
                })
            },
        );
    }
    g.finish();
    let s = cp.commit_stats();
    eprintln!(
        "durable_create: {} operations in {} fsync'd batches (mean batch {:.1})",
        s.commits,
        s.batches,
        s.commits as f64 / s.batches.max(1) as f64
    );
    // The same creates without I/O (memory store): the rules' own cost.
    let mut g = c.benchmark_group("memory_create");
    g.throughput(Throughput::Elements(1));
    let mem = ControlPlane::in_memory(ControlConfig::default());
    mem.seed(&seed(), now()).unwrap();
    let next = AtomicU64::new(0);
    g.bench_function("single", |b| {
        b.iter(|| {
            let n = next.fetch_add(1, Ordering::Relaxed);
            mem.create_binding(&p, ACCT, CreateBinding::new(P6, &cidr(n), "eu"), now())
                .unwrap()
        })
    });
    g.finish();
}

fn load_bulk(cp: &ControlPlane, n: u64) {
    let chunk = 100_000u64;
    let mut i = 0;
    while i < n {
        let items: Vec<(String, String, String)> = (i..(i + chunk).min(n))
            .map(|k| {
                (
                    P6.to_string(),
                    cidr(k),
                    if k % 2 == 0 { "eu" } else { "us" }.to_string(),
                )
            })
            .collect();
        cp.bulk_create_bindings(ACCT, &items, now()).unwrap();
        i += chunk;
    }
}

fn snapshots(c: &mut Criterion) {
    let mut g = c.benchmark_group("snapshot");
    g.sample_size(10).measurement_time(Duration::from_secs(5));
    let active = now().plus(Duration::from_secs(6 * 3600));

    // 10k through the API, durable.
    let dir = tempfile::tempdir().unwrap();
    let cp = sqlite_plane(&dir);
    let p = Principal::system();
    for n in 0..10_000u64 {
        cp.create_binding(&p, ACCT, CreateBinding::new(P6, &cidr(n), "eu"), now())
            .unwrap();
    }
    g.throughput(Throughput::Elements(10_000));
    g.bench_function("bindings_in_force_10k", |b| {
        b.iter(|| {
            let s = cp.bindings_in_force(active);
            assert_eq!(s.entries.len(), 10_000);
            s
        })
    });
    g.finish();

    // Reads over the same 10k.
    let ids: Vec<String> = cp
        .changes_since(0)
        .unwrap()
        .bindings
        .iter()
        .map(|b| b.id.to_string())
        .collect();
    let mut rg = c.benchmark_group("reads");
    rg.throughput(Throughput::Elements(1));
    let mut k = 0usize;
    rg.bench_function("get_binding_10k", |b| {
        b.iter(|| {
            k = (k + 7919) % ids.len();
            cp.get_binding(&p, ACCT, &ids[k]).unwrap()
        })
    });
    let mid = cp
        .list_bindings(&p, ACCT, &PageRequest::first(100))
        .unwrap()
        .next_cursor;
    rg.bench_function("list_bindings_page25_10k", |b| {
        b.iter(|| {
            let p2 = cp
                .list_bindings(&p, ACCT, &PageRequest::after(&mid, 25))
                .unwrap();
            assert_eq!(p2.items.len(), 25);
            p2
        })
    });
    rg.finish();

    // 1M via the bulk path, memory store.
    let mut g = c.benchmark_group("snapshot");
    g.sample_size(10).measurement_time(Duration::from_secs(10));
    let big = ControlPlane::in_memory(ControlConfig::default());
    big.seed(&seed(), now()).unwrap();
    let t0 = Instant::now();
    load_bulk(&big, 1_000_000);
    eprintln!(
        "bulk-loaded 1M bindings (memory store) in {:?}",
        t0.elapsed()
    );
    g.throughput(Throughput::Elements(1_000_000));
    g.bench_function("bindings_in_force_1M", |b| {
        b.iter(|| {
            let s = big.bindings_in_force(active);
            assert_eq!(s.entries.len(), 1_000_000);
            s
        })
    });
    g.finish();
}

/// Whether a group named `name` runs: criterion's filter is the first argument that is not
/// a flag; no filter runs everything.
fn selected(name: &str) -> bool {
    match std::env::args().skip(1).find(|a| !a.starts_with('-')) {
        None => true,
        Some(filter) => name.contains(&filter),
    }
}

fn growth(_c: &mut Criterion) {
    if !selected("growth") {
        return;
    }
    const N: u64 = 200_000;
    const TEST_ACCOUNTS: usize = 200;
    const MANY_ACCOUNTS: usize = 30_000;
    let mem = ControlPlane::in_memory(ControlConfig::default());
    mem.seed(&seed(), now()).unwrap();
    let p = Principal::system();
    // A test suite's per-test account (the emulator's fixture call), timed on an empty
    // server and again once it holds the 200k bindings: its cost should not grow with
    // bindings it never touches.
    let test_accounts = |label: &str| {
        let mut t: Vec<Duration> = (0..TEST_ACCOUNTS)
            .map(|_| {
                let t = Instant::now();
                mem.create_test_account(&TestAccountRequest::default(), now())
                    .unwrap();
                t.elapsed()
            })
            .collect();
        t.sort();
        let median = t[t.len() / 2];
        eprintln!("growth: {TEST_ACCOUNTS} test accounts {label}: median {median:?}");
        median
    };
    let accounts_empty = test_accounts("on an empty server");
    let mut took = Vec::with_capacity(N as usize);
    for n in 0..N {
        let t = Instant::now();
        mem.create_binding(&p, ACCT, CreateBinding::new(P6, &cidr(n), "eu"), now())
            .unwrap();
        took.push(t.elapsed());
        if (n + 1) % 50_000 == 0 {
            eprintln!("growth: {} creates", n + 1);
        }
    }
    // Create `n` found `n` bindings in place.
    let (worst_at, worst) = took
        .iter()
        .copied()
        .enumerate()
        .max_by_key(|&(_, d)| d)
        .unwrap();
    took.sort();
    let at = |q: f64| took[((took.len() - 1) as f64 * q) as usize];
    let (median, p999) = (at(0.5), at(0.999));
    let over = worst.as_secs_f64() / median.as_secs_f64();
    let accounts_full = test_accounts(&format!("beside {N} bindings"));
    let accounts_ratio = accounts_full.as_secs_f64() / accounts_empty.as_secs_f64();
    eprintln!(
        "growth: {N} single creates (memory store): median {median:?}, p99.9 {p999:?}, max \
         {worst:?} at {worst_at} bindings; max / median {over:.0}x; a test account beside \
         them / on an empty server {accounts_ratio:.1}x"
    );
    // Many test accounts in a row (a long suite on one server): the slowest against the
    // median, as for the bindings above.
    let fresh = ControlPlane::in_memory(ControlConfig::default());
    let mut acc: Vec<(usize, Duration)> = (0..MANY_ACCOUNTS)
        .map(|i| {
            let t = Instant::now();
            fresh
                .create_test_account(&TestAccountRequest::default(), now())
                .unwrap();
            (i, t.elapsed())
        })
        .collect();
    let (acc_worst_at, acc_worst) = *acc.iter().max_by_key(|(_, d)| *d).unwrap();
    acc.sort_by_key(|(_, d)| *d);
    let acc_median = acc[acc.len() / 2].1;
    let acc_over = acc_worst.as_secs_f64() / acc_median.as_secs_f64();
    eprintln!(
        "growth: {MANY_ACCOUNTS} test accounts in a row: median {acc_median:?}, max \
         {acc_worst:?} at {acc_worst_at} accounts; max / median {acc_over:.0}x"
    );
    let us = |d: Duration| d.as_secs_f64() * 1e6;
    println!(
        "{}",
        serde_json::json!({
            "bench": "growth", "creates": N, "median_us": us(median), "p999_us": us(p999),
            "max_us": us(worst), "max_at": worst_at, "max_over_median": over,
            "test_account_empty_us": us(accounts_empty), "test_account_full_us": us(accounts_full),
            "test_account_ratio": accounts_ratio, "many_accounts": MANY_ACCOUNTS,
            "many_accounts_median_us": us(acc_median), "many_accounts_max_us": us(acc_worst),
            "many_accounts_max_at": acc_worst_at, "many_accounts_max_over_median": acc_over,
        })
    );
}

criterion_group!(benches, durable_creates, snapshots, growth);
criterion_main!(benches);
