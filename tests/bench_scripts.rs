//! The benchmark scripts' own logic, checked where it computes a figure (the scripts
//! themselves run only as benchmarks: `scripts/bench-*.sh`).

use std::path::Path;
use std::process::Command;

/// `scripts/group_commit_model.py` (the ideal group commit bench-durable.sh compares
/// against) against cases worked out by hand: no queueing when writes are far apart, a
/// write waits for at most the commit in flight and its own, a batch shares one commit.
#[test]
fn the_group_commit_model_passes_its_hand_worked_cases() {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/group_commit_model.py");
    let out = Command::new("python3")
        .arg(&script)
        .arg("--check")
        .output()
        .expect("python3 runs (it is on every machine the project supports)");
    assert!(
        out.status.success(),
        "{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("checks pass"));
}
