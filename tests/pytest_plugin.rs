//! The pytest plugin (`python/`): builds its wheel from this repository with maturin,
//! installs it with pytest, pytest-xdist and the official `cloudflare` SDK into a virtual
//! environment under the target directory, and runs the example suite
//! (`python/examples/`) on two xdist workers sharing one server, each test with its own
//! account, one of them injecting a 429 that the SDK retries.
//!
//! The wheel is built from the dev profile in this target directory (the binary the
//! other tests use), so it costs a link, not a rebuild. It fails, never skips, when
//! Python or PyPI is unavailable.

mod api_support;

use api_support::{repo, target_dir};
use std::path::{Path, PathBuf};
use std::process::Command;

const PACKAGES: &[&str] = &[
    "maturin==1.9.6",
    "pytest==8.3.4",
    "pytest-xdist==3.6.1",
    "cloudflare==5.9.0",
];

fn venv() -> PathBuf {
    target_dir().join("py-venv-pytest-inregion")
}

fn bin(venv: &Path, name: &str) -> PathBuf {
    venv.join("bin").join(name)
}

fn ensure_venv() -> PathBuf {
    let v = venv();
    let stamp = v.join("inregion-packages.txt");
    let want = PACKAGES.join("\n");
    if std::fs::read_to_string(&stamp).is_ok_and(|s| s == want) {
        return v;
    }
    let st = Command::new("python3")
        .args(["-m", "venv", "--clear"])
        .arg(&v)
        .status()
        .expect("python3 is required for the pytest plugin test");
    assert!(st.success(), "python3 -m venv failed");
    let st = Command::new(bin(&v, "pip"))
        .args(["install", "--disable-pip-version-check", "--quiet"])
        .args(PACKAGES)
        .status()
        .expect("pip");
    assert!(
        st.success(),
        "pip install {PACKAGES:?} failed (is PyPI reachable?)"
    );
    std::fs::write(&stamp, want).unwrap();
    v
}

#[test]
fn the_pytest_plugin_runs_its_example_suite_on_two_workers() {
    let v = ensure_venv();
    let wheels = target_dir().join("wheels-test");
    let _ = std::fs::remove_dir_all(&wheels);
    let out = Command::new(bin(&v, "maturin"))
        .args(["build", "--profile", "dev", "--quiet", "--out"])
        .arg(&wheels)
        .current_dir(repo().join("python"))
        .env("CARGO_TARGET_DIR", target_dir())
        .output()
        .expect("maturin");
    assert!(
        out.status.success(),
        "maturin build failed:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let wheel = std::fs::read_dir(&wheels)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.extension().is_some_and(|e| e == "whl"))
        .expect("a wheel");
    let st = Command::new(bin(&v, "pip"))
        .args([
            "install",
            "--disable-pip-version-check",
            "--quiet",
            "--force-reinstall",
            "--no-deps",
        ])
        .arg(&wheel)
        .status()
        .unwrap();
    assert!(st.success(), "installing {} failed", wheel.display());
    // The packaged binary is the one the plugin starts.
    assert!(
        bin(&v, "inregion").exists(),
        "the wheel did not install the binary"
    );

    let out = Command::new(bin(&v, "python"))
        .args(["-m", "pytest", "-n", "2", "-p", "no:cacheprovider", "-rA"])
        .arg(repo().join("python/examples"))
        .current_dir(repo().join("python"))
        .env("NO_PROXY", "*")
        .env_remove("INREGION_URL")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "the example suite failed\n--- stdout\n{stdout}\n--- stderr\n{stderr}"
    );
    // Two workers ran it, and every test passed (10: 4 + 6 parametrized).
    assert!(stdout.contains("2 workers"), "{stdout}");
    let passed = stdout
        .lines()
        .rev()
        .filter(|l| l.contains(" passed"))
        .find_map(|l| {
            l.split(" passed")
                .next()?
                .rsplit(' ')
                .next()?
                .parse::<u32>()
                .ok()
        })
        .unwrap_or(0);
    assert_eq!(passed, 10, "{stdout}");
}
