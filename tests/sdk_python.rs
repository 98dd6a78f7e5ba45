//! Compatibility with Cloudflare's official Python SDK, `cloudflare==5.9.0` from PyPI.
//!
//! The test installs the SDK into a virtual environment under the cargo target directory
//! (once; later runs reuse it) and runs `tests/py/sdk_compat.py` against a real server.
//! It fails, never skips, when Python or PyPI is unavailable.

mod api_support;

use api_support::*;
use std::path::{Path, PathBuf};
use std::process::Command;

const SDK: &str = "cloudflare==5.9.0";

/// `<target dir>/py-venv-cloudflare-5.9.0`, next to `debug/`.
fn venv_dir() -> PathBuf {
    target_dir().join("py-venv-cloudflare-5.9.0")
}

fn python(venv: &Path) -> PathBuf {
    venv.join("bin").join("python")
}

fn sdk_installed(venv: &Path) -> bool {
    Command::new(python(venv))
        .args([
            "-c",
            "import cloudflare, sys; sys.exit(cloudflare.__version__ != '5.9.0')",
        ])
        .status()
        .map(|s| s.success())
        .unwrap_or(false)
}

fn ensure_sdk() -> PathBuf {
    let venv = venv_dir();
    if sdk_installed(&venv) {
        return venv;
    }
    let st = Command::new("python3")
        .args(["-m", "venv", "--clear"])
        .arg(&venv)
        .status()
        .expect("python3 is required for the SDK compatibility test");
    assert!(st.success(), "python3 -m venv failed");
    let st = Command::new(venv.join("bin").join("pip"))
        .args(["install", "--disable-pip-version-check", "--quiet", SDK])
        .status()
        .expect("pip");
    assert!(
        st.success(),
        "pip install {SDK} failed (is PyPI reachable?)"
    );
    assert!(sdk_installed(&venv), "{SDK} not importable after install");
    venv
}

#[test]
fn official_python_sdk_drives_the_server() {
    let venv = ensure_sdk();
    let s = Server::start();
    run_compat_script(
        Command::new(python(&venv)),
        "tests/py/sdk_compat.py",
        &s,
        60,
    );
}
