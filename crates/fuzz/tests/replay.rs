//! Every fuzz target on stable: each checked-in corpus entry and regression input, then
//! seeded random mutations of them for a short, fixed budget per target.
//!
//! This is not the fuzzing (that is `scripts/fuzz.sh`, coverage-guided, on nightly); it
//! keeps the targets compiling, the corpora passing and every crash once found fixed.
//! `INREGION_FUZZ_MUTATIONS` sets the number of mutated inputs per target (default 300).

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use std::path::{Path, PathBuf};

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn inputs(dir: &str, target: &str) -> Vec<(PathBuf, Vec<u8>)> {
    let dir = repo().join("fuzz").join(dir).join(target);
    let Ok(entries) = std::fs::read_dir(&dir) else {
        return Vec::new();
    };
    let mut out: Vec<_> = entries
        .map(|e| e.expect("a readable directory entry").path())
        .filter(|p| p.is_file())
        .map(|p| {
            let bytes = std::fs::read(&p).expect("a readable corpus file");
            (p, bytes)
        })
        .collect();
    out.sort();
    out
}

/// A small byte-level mutator: flips, inserts, deletes, splices with another input.
fn mutate(rng: &mut ChaCha8Rng, base: &[u8], other: &[u8]) -> Vec<u8> {
    let mut v = base.to_vec();
    for _ in 0..rng.gen_range(1..=4) {
        match rng.gen_range(0..5) {
            0 if !v.is_empty() => {
                let i = rng.gen_range(0..v.len());
                v[i] ^= 1 << rng.gen_range(0..8);
            }
            1 => {
                let i = rng.gen_range(0..=v.len());
                const INTERESTING: &[u8] = b"0123456789abcdef:./-{}[]\",\n ";
                v.insert(i, INTERESTING[rng.gen_range(0..INTERESTING.len())]);
            }
            2 if !v.is_empty() => {
                let i = rng.gen_range(0..v.len());
                let n = rng.gen_range(1..=8).min(v.len() - i);
                v.drain(i..i + n);
            }
            3 if !other.is_empty() => {
                let i = rng.gen_range(0..=v.len());
                let j = rng.gen_range(0..other.len());
                let n = rng.gen_range(1..=32).min(other.len() - j);
                v.splice(i..i, other[j..j + n].iter().copied());
            }
            _ => {
                let i = rng.gen_range(0..=v.len());
                v.insert(i, rng.gen());
            }
        }
    }
    v
}

fn check(target: &str) {
    let (_, run) = inregion_fuzz::TARGETS
        .iter()
        .find(|(n, _)| *n == target)
        .expect("a known target");
    let corpus = inputs("corpus", target);
    assert!(!corpus.is_empty(), "fuzz/corpus/{target} is empty");
    for (path, bytes) in corpus.iter().chain(&inputs("regressions", target)) {
        // A panic names the input (the test harness prints the panic message after this).
        eprintln!("replaying {}", path.display());
        run(bytes);
    }
    let n: usize = std::env::var("INREGION_FUZZ_MUTATIONS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(300);
    let mut rng = ChaCha8Rng::seed_from_u64(0x1f_u64 ^ target.len() as u64);
    for i in 0..n {
        let base = &corpus[rng.gen_range(0..corpus.len())].1;
        let other = &corpus[rng.gen_range(0..corpus.len())].1;
        let input = mutate(&mut rng, base, other);
        let result = std::panic::catch_unwind(|| run(&input));
        if result.is_err() {
            let out = std::env::temp_dir().join(format!("inregion-fuzz-{target}-{i}"));
            std::fs::write(&out, &input).expect("write the failing input");
            panic!(
                "mutation {i} of {target} failed; input saved to {} (add it under fuzz/regressions/{target}/)",
                out.display()
            );
        }
    }
}

#[test]
fn ids() {
    check("ids");
}

#[test]
fn api() {
    check("api");
}

#[test]
fn scenario_toml() {
    check("scenario_toml");
}

#[test]
fn config_toml() {
    check("config_toml");
}

#[test]
fn table() {
    check("table");
}

#[test]
fn snapshot() {
    check("snapshot");
}

#[test]
fn every_target_has_a_test_and_a_cargo_fuzz_wrapper() {
    let src = include_str!("replay.rs");
    for (name, _) in inregion_fuzz::TARGETS {
        assert!(src.contains(&format!("fn {name}()")), "no test for {name}");
        let wrapper = repo().join("fuzz/fuzz_targets").join(format!("{name}.rs"));
        let text = std::fs::read_to_string(&wrapper)
            .unwrap_or_else(|e| panic!("{}: {e}", wrapper.display()));
        assert!(
            text.contains(&format!("inregion_fuzz::{name}(")),
            "{}",
            wrapper.display()
        );
    }
}
