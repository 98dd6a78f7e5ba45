//! Shared harness of the API tests: runs the real `inregion serve` binary on a loopback
//! port and talks to it over HTTP.
#![allow(dead_code)]
// Each test file includes this module: its items are `pub` for those files, not for a crate.
#![allow(unreachable_pub)]

use reqwest::blocking::{Client, RequestBuilder};
use reqwest::header::HeaderMap;
use reqwest::Method;
use serde_json::Value;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

#[path = "../etcd_support/mod.rs"]
pub mod etcd_support;

pub const ACCOUNT: &str = "023e105f4ecef8ad9ca31a8372d0c353";
pub const DEMO_PREFIX: &str = "a1b2c3d4-e5f6-7890-abcd-ef1234567890";
pub const V6_PREFIX: &str = "6e6e6e6e6e6e6e6e6e6e6e6e6e6e6e6e";
pub const PENDING_PREFIX: &str = "9e9e9e9e9e9e9e9e9e9e9e9e9e9e9e9e";
pub const OTHER_PREFIX: &str = "dededededededededededededededede";
pub const NO_BYOIP_ACCOUNT: &str = "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb";
pub const NO_ENTITLEMENT_ACCOUNT: &str = "cccccccccccccccccccccccccccccccc";
pub const OTHER_ACCOUNT: &str = "dddddddddddddddddddddddddddddddd";
pub const CUSTOM_REGION_ID: &str = "6b0a3f2e-7c1d-4e5f-8a9b-0c1d2e3f4a5b";
pub const OTHER_CUSTOM_REGION_ID: &str = "7b0a3f2e-7c1d-4e5f-8a9b-0c1d2e3f4a5b";
pub const READ_TOKEN: &str = "test-read-token-000000000000000000000";
pub const DLS_WRITE_TOKEN: &str = "test-dlswrite-token-00000000000000000";
pub const DNS_TOKEN: &str = "test-dns-token-0000000000000000000000";
pub const EXPIRED_TOKEN: &str = "test-expired-token-000000000000000000";
pub const REVOKED_TOKEN: &str = "test-revoked-token-000000000000000000";
pub const OFFICE_TOKEN: &str = "test-office-token-0000000000000000000";
pub const OTHERS_TOKEN: &str = "test-others-token-0000000000000000000";
pub const USER_EMAIL: &str = "ops@example.com";
pub const USER_KEY: &str = "0123456789abcdef0123456789abcdef01234";
pub const DEV_TOKEN: &str = "test-dev-token-00000000000000000000000";
pub const ADMIN_TOKEN: &str = "test-admin-token-0000000000000000000";

/// The repository root (the root package's manifest directory).
pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The cargo target directory (the one above `debug/inregion`), where the SDK tests
/// install their packages once for later runs.
pub fn target_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_inregion"))
        .parent()
        .and_then(Path::parent)
        .expect("target dir above the binary")
        .to_owned()
}

/// Runs an SDK compatibility script (`script`, a path under the repository, run by
/// `cmd`) against `server` with the test tokens in its environment, and checks that it
/// exits successfully after at least `min_checks` passed checks and no failed one (its
/// last line is `N passed, 0 failed`).
#[track_caller]
pub fn run_compat_script(mut cmd: Command, script: &str, server: &Server, min_checks: usize) {
    let out = cmd
        .arg(repo().join(script))
        .env("INREGION_BASE", &server.base)
        .env("INREGION_TOKEN", DEV_TOKEN)
        .env("INREGION_READ_TOKEN", READ_TOKEN)
        .env("INREGION_ADMIN_TOKEN", ADMIN_TOKEN)
        .env("NO_PROXY", "*")
        .output()
        .unwrap_or_else(|e| panic!("cannot run {script}: {e}"));
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "{script} failed\n--- stdout\n{stdout}\n--- stderr\n{stderr}"
    );
    let last = stdout.lines().last().unwrap_or("");
    assert!(last.ends_with("passed, 0 failed"), "{stdout}");
    let n: usize = last.split_whitespace().next().unwrap().parse().unwrap();
    assert!(n >= min_checks, "only {n} checks ran:\n{stdout}");
}

/// Whether this test binary runs its servers on etcd: its name starts with `etcd_api_`
/// (tests/etcd_api_*.rs run the SQLite suites unchanged on etcd) or
/// `INREGION_TEST_STORE=etcd` is set. Each server then gets
/// `--store <the process's shared cluster> --etcd-prefix <derived from its data dir>`,
/// so a restart on the same data directory finds the same state.
pub fn on_etcd() -> bool {
    if std::env::var("INREGION_TEST_STORE").is_ok_and(|v| v == "etcd") {
        return true;
    }
    std::env::current_exe()
        .ok()
        .and_then(|p| p.file_stem().map(|s| s.to_string_lossy().into_owned()))
        .is_some_and(|s| s.starts_with("etcd_api_"))
}

/// The etcd key prefix of the server on data directory `data`: `/t-<16 hex digits of
/// SHA-256 of the path>/`.
pub fn etcd_prefix_for(data: &Path) -> String {
    use sha2::Digest;
    let d = sha2::Sha256::digest(data.as_os_str().as_encoded_bytes());
    let hex: String = d[..8].iter().map(|b| format!("{b:02x}")).collect();
    format!("/t-{hex}/")
}

/// The test seeding file.
pub fn test_config() -> PathBuf {
    repo().join("tests/data/api-test.toml")
}

/// Tests of tests/api_http.rs and tests/api_fixture.rs that are about the SQLite data
/// directory itself. In the etcd test binaries they keep running, on SQLite (each says
/// so on stderr); what they check has a counterpart on etcd where one applies (named in
/// the reason).
pub const SQLITE_ONLY: &[(&str, &str)] = &[
    (
        "a_second_server_on_one_data_directory_is_refused",
        "the data directory's lock; on etcd no data directory is used and servers on one \
         prefix are replicas by design (tests/etcd_replicas.rs)",
    ),
    (
        "the_data_directory_is_private_and_holds_no_plain_secret_digest",
        "file modes of the data directory and the SQLite file's bytes; on etcd: \
         etcd_replicas::etcd_holds_no_token_secret_or_plain_digest",
    ),
    (
        "restart_keeps_state_and_dev_token",
        "a generated dev token saved in the data directory and reused, and the admin clock \
         offset kept across a restart; on etcd no data directory is used (tokens are given \
         to every replica) and the clock offset is per replica process (README); state \
         across restarts: etcd_replicas::a_replica_restarted_on_its_prefix_keeps_its_state",
    ),
    (
        "snapshots_round_trip_online_and_offline",
        "its second half restores into and saves from a stopped server's data directory \
         (`inregion snapshot --data`), which has no etcd form; the online half passes on etcd \
         and etcd_replicas::a_snapshot_restored_through_one_replica_is_the_world_of_both \
         covers it across replicas",
    ),
];

/// The entry of [`SQLITE_ONLY`] of the running test (libtest names each test's thread
/// after the test), if any.
fn sqlite_only() -> Option<(&'static str, &'static str)> {
    let thread = std::thread::current();
    let name = thread.name()?;
    let short = name.rsplit("::").next().unwrap_or(name);
    SQLITE_ONLY.iter().copied().find(|(n, _)| *n == short)
}

/// `--store etcd://... --etcd-prefix P --etcd-max-txn-ops 10000` when [`on_etcd`], else
/// nothing.
fn etcd_args(data: &Path, args: &[&str]) -> Vec<String> {
    // A test that names its own store (tests/etcd_replicas.rs) keeps it.
    if !on_etcd() || args.contains(&"--store") {
        return Vec::new();
    }
    if let Some((name, why)) = sqlite_only() {
        // Once per test, past libtest's capture, so that it shows in every run.
        use std::io::Write;
        static SAID: std::sync::Mutex<Vec<&str>> = std::sync::Mutex::new(Vec::new());
        let mut said = SAID.lock().unwrap_or_else(|e| e.into_inner());
        if said.contains(&name) {
            return Vec::new();
        }
        said.push(name);
        let _ = writeln!(
            std::io::stderr(),
            "note: {name} runs on SQLite in this etcd test binary: {why}"
        );
        return Vec::new();
    }
    vec![
        "--store".into(),
        etcd_support::shared_cluster().url(),
        "--etcd-prefix".into(),
        etcd_prefix_for(data),
        // The cluster accepts large transactions (--max-txn-ops 10000): bulk creates,
        // resets and restores of large worlds fit, as the README says to configure.
        "--etcd-max-txn-ops".into(),
        "10000".into(),
    ]
}

/// A running `inregion serve`.
pub struct Server {
    child: Option<Child>,
    /// `http://127.0.0.1:PORT`
    pub base: String,
    /// The banner's lines (stdout).
    pub banner: Vec<String>,
    /// Data directory (kept alive for the test's duration when owned).
    pub data: PathBuf,
    _tmp: Option<tempfile::TempDir>,
    client: Client,
}

/// One response, decoded.
#[derive(Debug)]
pub struct Resp {
    pub status: u16,
    pub headers: HeaderMap,
    pub body: Value,
    pub text: String,
}

impl Resp {
    /// `errors[*].code`.
    pub fn codes(&self) -> Vec<u64> {
        self.body["errors"]
            .as_array()
            .map(|a| a.iter().filter_map(|e| e["code"].as_u64()).collect())
            .unwrap_or_default()
    }

    /// `errors[0].error_chain[*].code`.
    pub fn chain(&self) -> Vec<u64> {
        self.body["errors"][0]["error_chain"]
            .as_array()
            .map(|a| a.iter().filter_map(|e| e["code"].as_u64()).collect())
            .unwrap_or_default()
    }

    /// Asserts a failure envelope with `status` and first code `code`.
    #[track_caller]
    pub fn fails(&self, status: u16, code: u64) -> &Self {
        assert_eq!(
            (self.status, self.codes().first().copied()),
            (status, Some(code)),
            "body: {}",
            self.text
        );
        assert_eq!(self.body["success"], false, "{}", self.text);
        assert_eq!(self.body["result"], Value::Null, "{}", self.text);
        assert!(self.body["messages"].is_array(), "{}", self.text);
        if (400..500).contains(&self.status) {
            assert_eq!(
                self.headers
                    .get("x-should-retry")
                    .map(|v| v.to_str().unwrap()),
                Some("false"),
                "4xx must carry x-should-retry: false"
            );
        }
        self
    }

    /// Asserts a success envelope with `status`; returns `result`.
    #[track_caller]
    pub fn ok(&self, status: u16) -> &Value {
        assert_eq!(self.status, status, "body: {}", self.text);
        assert_eq!(self.body["success"], true, "{}", self.text);
        assert_eq!(self.body["errors"], serde_json::json!([]), "{}", self.text);
        assert!(self.body["messages"].is_array(), "{}", self.text);
        assert!(self.body.get("result").is_some(), "{}", self.text);
        assert_eq!(
            self.headers
                .get("content-type")
                .map(|v| v.to_str().unwrap()),
            Some("application/json")
        );
        &self.body["result"]
    }
}

/// Builder for [`Server::start_with`].
pub struct Opts<'a> {
    pub args: Vec<&'a str>,
    pub data: Option<&'a Path>,
    pub config: bool,
    pub dev_token: Option<&'a str>,
    pub admin: bool,
}

impl Default for Opts<'_> {
    fn default() -> Self {
        Self {
            args: Vec::new(),
            data: None,
            config: true,
            dev_token: Some(DEV_TOKEN),
            admin: true,
        }
    }
}

impl Server {
    /// A fresh server: temp data dir, the test config, the dev token, admin enabled.
    pub fn start() -> Self {
        Self::start_with(Opts::default())
    }

    /// A server with extra options.
    pub fn start_with(o: Opts<'_>) -> Self {
        let (tmp, data) = match o.data {
            Some(d) => (None, d.to_owned()),
            None => {
                let t = tempfile::tempdir().expect("tempdir");
                let p = t.path().join("data");
                (Some(t), p)
            }
        };
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_inregion"));
        cmd.arg("serve")
            .arg("--listen")
            .arg("127.0.0.1:0")
            .arg("--data")
            .arg(&data)
            .args(etcd_args(&data, &o.args))
            .args(&o.args)
            .env_remove("INREGION_DEV_TOKEN")
            .env_remove("INREGION_ADMIN_TOKEN")
            .env_remove("INREGION_CONFIG")
            .env_remove("INREGION_DATA")
            .env_remove("INREGION_LISTEN")
            .env("RUST_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit());
        if o.config {
            cmd.arg("--config").arg(test_config());
        }
        if let Some(t) = o.dev_token {
            cmd.arg("--dev-token").arg(t);
        }
        if o.admin {
            cmd.arg("--admin").arg("--admin-token").arg(ADMIN_TOKEN);
        }
        let mut child = cmd.spawn().expect("spawn inregion serve");
        let stdout = child.stdout.take().unwrap();
        let mut lines = BufReader::new(stdout).lines();
        let first = lines
            .next()
            .expect("server printed nothing (did it fail to start?)")
            .unwrap();
        let base = first
            .strip_prefix("inregion: listening on ")
            .unwrap_or_else(|| panic!("unexpected first line {first:?}"))
            .to_owned();
        let mut banner = vec![first];
        // The banner is short and printed at once; read the rest in the background so a
        // full pipe can never block the server.
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for l in lines.map_while(Result::ok) {
                let _ = tx.send(l);
            }
        });
        let deadline = Instant::now() + Duration::from_secs(2);
        while let Ok(l) = rx.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
            let done = l.contains("metrics / openapi");
            banner.push(l);
            if done {
                break;
            }
        }
        Self {
            child: Some(child),
            base,
            banner,
            data,
            _tmp: tmp,
            client: Client::builder()
                .no_proxy()
                .timeout(Duration::from_secs(60))
                .build()
                .unwrap(),
        }
    }

    /// The dev token printed in the banner.
    pub fn banner_dev_token(&self) -> Option<String> {
        self.banner
            .iter()
            .find_map(|l| l.trim().strip_prefix("dev token"))
            .and_then(|r| r.split_whitespace().next())
            .map(str::to_owned)
    }

    /// `{base}/client/v4/accounts/{account}{path}`
    pub fn url(&self, account: &str, path: &str) -> String {
        format!("{}/client/v4/accounts/{account}{path}", self.base)
    }

    /// A request with no credentials.
    pub fn raw(&self, method: &str, url: &str) -> RequestBuilder {
        self.client
            .request(Method::from_bytes(method.as_bytes()).unwrap(), url)
    }

    /// Sends and decodes.
    pub fn send(&self, rb: RequestBuilder) -> Resp {
        let r = rb.send().expect("request");
        let status = r.status().as_u16();
        let headers = r.headers().clone();
        let text = r.text().unwrap();
        let body = serde_json::from_str(&text).unwrap_or(Value::Null);
        Resp {
            status,
            headers,
            body,
            text,
        }
    }

    /// A request to the dev account's `path` with `token`, optional JSON body.
    pub fn call(
        &self,
        method: &str,
        token: &str,
        account: &str,
        path: &str,
        body: Option<Value>,
    ) -> Resp {
        let mut rb = self
            .raw(method, &self.url(account, path))
            .bearer_auth(token);
        if let Some(b) = body {
            rb = rb.json(&b);
        }
        self.send(rb)
    }

    /// `call` with the dev token on the dev account.
    pub fn dev(&self, method: &str, path: &str, body: Option<Value>) -> Resp {
        self.call(method, DEV_TOKEN, ACCOUNT, path, body)
    }

    /// An admin request.
    pub fn admin(&self, method: &str, path: &str, body: Option<Value>) -> Resp {
        let mut rb = self
            .raw(method, &format!("{}/__inregion{path}", self.base))
            .header("X-Inregion-Admin-Token", ADMIN_TOKEN);
        if let Some(b) = body {
            rb = rb.json(&b);
        }
        self.send(rb)
    }

    /// Creates a binding with the dev token; returns the binding (asserts 201).
    #[track_caller]
    pub fn create(&self, prefix: &str, cidr: &str, region: &str) -> Value {
        let r = self.dev(
            "POST",
            "/dls/regional_services/prefix_bindings",
            Some(serde_json::json!({"prefix_id": prefix, "cidr": cidr, "region_key": region})),
        );
        r.ok(201).clone()
    }

    /// A binding's propagation state as the Addressing service binding shows it
    /// (`provisioning`, `active`, ...), read with the dev token (asserts 200).
    #[track_caller]
    pub fn binding_state(&self, prefix: &str, id: &str) -> String {
        let r = self.dev(
            "GET",
            &format!("/addressing/prefixes/{prefix}/bindings/{id}"),
            None,
        );
        r.ok(200)["provisioning"]["state"]
            .as_str()
            .unwrap()
            .to_owned()
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.as_ref().unwrap().id()
    }

    /// Sends SIGTERM and waits for a clean exit (asserts exit status 0).
    pub fn stop(mut self) {
        let mut child = self.child.take().unwrap();
        let st = Command::new("kill")
            .arg("-TERM")
            .arg(child.id().to_string())
            .status()
            .unwrap();
        assert!(st.success());
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(status) = child.try_wait().unwrap() {
                assert!(status.success(), "server exited with {status}");
                return;
            }
            assert!(
                Instant::now() < deadline,
                "server did not stop after SIGTERM"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}
