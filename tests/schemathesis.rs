//! Schemathesis (from PyPI, pinned) against a live server with every check: no 5xx, no
//! response that violates the OpenAPI document, no schema-valid request refused for a
//! reason the schema could have said, schema-invalid requests refused, and the rest of
//! its checks. The exceptions, each with its reason, are in one place:
//! `tests/schemathesis/schemathesis.toml` (and the 400 codes of rules no schema can
//! state, in `tests/schemathesis/hooks.py`).
//!
//! The test installs Schemathesis into a virtual environment under the cargo target
//! directory (once; later runs reuse it). It fails, never skips, when Python or PyPI is
//! unavailable. `INREGION_SCHEMATHESIS_EXAMPLES` sets the examples per operation
//! (default: the config file's 25).

mod api_support;

use api_support::*;
use std::path::{Path, PathBuf};
use std::process::Command;

const SCHEMATHESIS: &str = "schemathesis==4.32.5";

fn venv() -> PathBuf {
    target_dir().join("py-venv-schemathesis-4.32.5")
}

fn st(venv: &Path) -> PathBuf {
    venv.join("bin").join("st")
}

fn installed(venv: &Path) -> bool {
    Command::new(st(venv))
        .arg("--version")
        .output()
        .map(|o| o.status.success() && String::from_utf8_lossy(&o.stdout).contains("4.32.5"))
        .unwrap_or(false)
}

fn ensure_schemathesis() -> PathBuf {
    let v = venv();
    if installed(&v) {
        return v;
    }
    let status = Command::new("python3")
        .args(["-m", "venv", "--clear"])
        .arg(&v)
        .status()
        .expect("python3 is required for the Schemathesis test");
    assert!(status.success(), "python3 -m venv failed");
    let status = Command::new(v.join("bin").join("pip"))
        .args([
            "install",
            "--disable-pip-version-check",
            "--quiet",
            SCHEMATHESIS,
        ])
        .status()
        .expect("pip");
    assert!(
        status.success(),
        "pip install {SCHEMATHESIS} failed (is PyPI reachable?)"
    );
    assert!(installed(&v), "{SCHEMATHESIS} not runnable after install");
    v
}

#[test]
fn schemathesis_finds_nothing_outside_the_listed_exceptions() {
    let v = ensure_schemathesis();
    let s = Server::start();
    let dir = repo().join("tests/schemathesis");
    let report = tempfile::tempdir().unwrap();
    let mut cmd = Command::new(st(&v));
    cmd.arg("--config-file")
        .arg(dir.join("schemathesis.toml"))
        .arg("run")
        .arg(format!("{}/openapi.json", s.base))
        .args(["--workers", "2", "--seed", "20261204"])
        .args(["--request-timeout", "10", "--no-color"])
        .arg("--report-dir")
        .arg(report.path())
        // Schemathesis keeps a cache of past failures in its working directory.
        .current_dir(report.path())
        .env("SCHEMATHESIS_HOOKS", "hooks")
        .env("PYTHONPATH", &dir)
        .env("INREGION_TOKEN", DEV_TOKEN)
        .env("INREGION_ADMIN_TOKEN", ADMIN_TOKEN)
        .env("INREGION_ACCOUNT", ACCOUNT);
    if let Ok(n) = std::env::var("INREGION_SCHEMATHESIS_EXAMPLES") {
        cmd.args(["--max-examples", &n]);
    }
    let out = cmd.output().expect("run schemathesis");
    let text = format!(
        "{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    println!("{text}");
    assert!(
        out.status.success(),
        "schemathesis reported failures (above)"
    );
    assert!(
        text.contains("passed") && !text.contains("No operations"),
        "schemathesis ran nothing"
    );
}
