//! Compatibility with Cloudflare's official TypeScript SDK, npm `cloudflare@7.3.0`.
//!
//! The test installs the SDK with npm under the cargo target directory (once; later runs
//! reuse it) and runs `tests/ts/sdk_compat.mjs` with Node.js against a real server. On
//! a machine without Node.js it first installs Debian's `nodejs` and `npm`. It fails,
//! never skips, when none of that is possible.

mod api_support;

use api_support::*;
use std::path::{Path, PathBuf};
use std::process::Command;

const VERSION: &str = "7.3.0";

/// `<target dir>/npm-cloudflare-7.3.0`, next to `debug/`.
fn install_dir() -> PathBuf {
    target_dir().join(format!("npm-cloudflare-{VERSION}"))
}

fn package_dir(install: &Path) -> PathBuf {
    install.join("node_modules").join("cloudflare")
}

fn sdk_installed(install: &Path) -> bool {
    std::fs::read_to_string(package_dir(install).join("package.json"))
        .ok()
        .and_then(|t| serde_json::from_str::<serde_json::Value>(&t).ok())
        .is_some_and(|v| v["version"] == VERSION)
}

fn runs(cmd: &str) -> bool {
    Command::new(cmd)
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success())
}

/// Node.js and npm, from Debian's packages when the machine has none.
fn ensure_node() {
    if runs("node") && runs("npm") {
        return;
    }
    let apt = |args: &[&str]| {
        Command::new("apt-get")
            .args(args)
            .status()
            .is_ok_and(|s| s.success())
    };
    let installed = apt(&["update", "-qq"]) && apt(&["install", "-y", "-qq", "nodejs", "npm"]);
    assert!(
        installed && runs("node") && runs("npm"),
        "Node.js and npm are required for the TypeScript SDK compatibility test, and \
         `apt-get install nodejs npm` did not provide them"
    );
}

fn ensure_sdk() -> PathBuf {
    ensure_node();
    let install = install_dir();
    if !sdk_installed(&install) {
        std::fs::create_dir_all(&install).expect("create the npm install directory");
        let st = Command::new("npm")
            .args(["install", "--no-audit", "--no-fund", "--silent", "--prefix"])
            .arg(&install)
            .arg(format!("cloudflare@{VERSION}"))
            .status()
            .expect("npm is required for the TypeScript SDK compatibility test");
        assert!(
            st.success(),
            "npm install cloudflare@{VERSION} failed (is the npm registry reachable?)"
        );
        assert!(
            sdk_installed(&install),
            "cloudflare@{VERSION} not found after install"
        );
    }
    package_dir(&install)
}

#[test]
fn official_typescript_sdk_drives_the_server() {
    let sdk = ensure_sdk();
    let s = Server::start();
    let mut node = Command::new("node");
    node.env("INREGION_SDK", &sdk);
    run_compat_script(node, "tests/ts/sdk_compat.mjs", &s, 50);
}
