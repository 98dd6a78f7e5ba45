//! A real etcd cluster for the tests of the etcd store: finds (or installs, without root
//! where possible) an etcd server of a known version, runs members on free loopback
//! ports with data directories of their own, and talks to them over etcd's v3 JSON
//! gateway.
//!
//! Members never outlive the test process: each one is started by a small shell that
//! reads its stdin (a pipe from this process) to the end and then kills the member with
//! SIGKILL; the pipe closes when this process exits for any reason, a panic, `kill -9`
//! or a normal end, and [`Cluster`]'s `Drop` kills the members by pid as well.
#![allow(dead_code)]
// Each test file includes this module: its items are `pub` for those files, not for a crate.
#![allow(unreachable_pub)]

use reqwest::blocking::Client;
use serde_json::{json, Value};
use std::io::{BufRead, BufReader, Read, Seek, SeekFrom};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

/// The version the install step fetches from Debian (`etcd-server`), and the directory
/// under `<target dir>/tools` it lands in.
pub const ETCD_DIR: &str = "etcd-3.4.23";

/// The cargo target directory (the one above `debug/inregion`).
pub fn target_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_inregion"))
        .parent()
        .and_then(Path::parent)
        .expect("target dir above the binary")
        .to_owned()
}

/// `etcd --version`'s `etcd Version: X.Y.Z`, if `bin` runs at all.
pub fn etcd_version(bin: &Path) -> Option<String> {
    let out = Command::new(bin).arg("--version").output().ok()?;
    let text = String::from_utf8_lossy(&out.stdout);
    text.lines()
        .find_map(|l| l.strip_prefix("etcd Version:"))
        .map(|v| v.trim().to_owned())
}

fn supported(version: &str) -> bool {
    version.starts_with("3.4.") || version.starts_with("3.5.")
}

const HOW_TO_INSTALL: &str = "install an etcd server 3.4 or 3.5 yourself and point \
INREGION_ETCD at its binary (e.g. `apt-get install etcd-server` then \
INREGION_ETCD=/usr/bin/etcd, or a release tarball from https://github.com/etcd-io/etcd/releases), \
or make `apt-get download etcd-server` work (Debian/Ubuntu package lists present: `apt-get update`)";

/// The etcd server binary the tests run: `$INREGION_ETCD` if set; else the one installed
/// earlier under `<target dir>/tools/etcd-3.4.23`; else `apt-get download etcd-server`
/// (no root needed when the package lists exist) extracted there with `dpkg -x`. The
/// version must be 3.4.x or 3.5.x. Safe when several test binaries call it at once: each
/// installs into a directory of its own and renames it into place; the first rename
/// wins and the others use the winner's.
pub fn etcd_binary() -> PathBuf {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(find_or_install).clone()
}

fn find_or_install() -> PathBuf {
    if let Some(p) = std::env::var_os("INREGION_ETCD") {
        let p = PathBuf::from(p);
        match etcd_version(&p) {
            Some(v) if supported(&v) => return p,
            Some(v) => panic!(
                "INREGION_ETCD={} is etcd {v}; the tests need 3.4.x or 3.5.x",
                p.display()
            ),
            None => panic!(
                "INREGION_ETCD={} does not run as `etcd --version`; {HOW_TO_INSTALL}",
                p.display()
            ),
        }
    }
    let tools = target_dir().join("tools");
    let installed = tools.join(ETCD_DIR).join("usr/bin/etcd");
    if let Some(v) = etcd_version(&installed) {
        if supported(&v) {
            return installed;
        }
    }
    std::fs::create_dir_all(&tools).expect("create <target>/tools");
    let staging = tempfile::Builder::new()
        .prefix(".etcd-install-")
        .tempdir_in(&tools)
        .expect("staging dir under <target>/tools");
    let download = |dir: &Path| {
        Command::new("apt-get")
            .args(["download", "-q", "etcd-server"])
            .current_dir(dir)
            .output()
    };
    let mut out = download(staging.path()).unwrap_or_else(|e| {
        panic!("no etcd server found and `apt-get` cannot run ({e}); {HOW_TO_INSTALL}")
    });
    if !out.status.success() && is_root() {
        // A fresh container without package lists: as root, fetch them once and retry.
        let _ = Command::new("apt-get").args(["update", "-qq"]).status();
        out = download(staging.path()).expect("apt-get download");
    }
    let deb = std::fs::read_dir(staging.path())
        .expect("read staging dir")
        .filter_map(Result::ok)
        .map(|e| e.path())
        .find(|p| p.extension().is_some_and(|x| x == "deb"));
    let Some(deb) = deb else {
        panic!(
            "no etcd server found and `apt-get download etcd-server` failed:\n{}\n{}\n{HOW_TO_INSTALL}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    };
    let root = staging.path().join("root");
    let st = Command::new("dpkg")
        .arg("-x")
        .arg(&deb)
        .arg(&root)
        .status()
        .unwrap_or_else(|e| panic!("dpkg -x {}: {e}; {HOW_TO_INSTALL}", deb.display()));
    assert!(
        st.success(),
        "dpkg -x {} failed; {HOW_TO_INSTALL}",
        deb.display()
    );
    let bin = root.join("usr/bin/etcd");
    let version = etcd_version(&bin).unwrap_or_else(|| {
        panic!(
            "{} (from {}) does not run; {HOW_TO_INSTALL}",
            bin.display(),
            deb.display()
        )
    });
    assert!(
        supported(&version),
        "apt-get download etcd-server gave etcd {version}; the tests need 3.4.x or 3.5.x; {HOW_TO_INSTALL}"
    );
    let dir = tools.join(format!("etcd-{version}"));
    // The first rename wins; a loser finds the winner's complete directory in place.
    if std::fs::rename(&root, &dir).is_err() && etcd_version(&dir.join("usr/bin/etcd")).is_none() {
        panic!("cannot install etcd into {}", dir.display());
    }
    dir.join("usr/bin/etcd")
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false)
}

/// `/t-<16 random hex digits>/`: an etcd key prefix no other test uses.
pub fn unique_prefix() -> String {
    format!("/t-{:016x}/", rand::random::<u64>())
}

/// Standard base64 (the JSON gateway's encoding of keys and values).
pub fn b64(data: &[u8]) -> String {
    const A: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut s = String::with_capacity(data.len().div_ceil(3) * 4);
    for c in data.chunks(3) {
        let n = (u32::from(c[0]) << 16)
            | (u32::from(*c.get(1).unwrap_or(&0)) << 8)
            | u32::from(*c.get(2).unwrap_or(&0));
        for (i, shift) in [18, 12, 6, 0].into_iter().enumerate() {
            if i <= c.len() {
                s.push(A[(n >> shift) as usize & 63] as char);
            } else {
                s.push('=');
            }
        }
    }
    s
}

/// Decodes standard base64 (panics on anything else).
pub fn unb64(s: &str) -> Vec<u8> {
    let val = |c: u8| -> u32 {
        match c {
            b'A'..=b'Z' => u32::from(c - b'A'),
            b'a'..=b'z' => u32::from(c - b'a') + 26,
            b'0'..=b'9' => u32::from(c - b'0') + 52,
            b'+' => 62,
            b'/' => 63,
            _ => panic!("not base64: {s:?}"),
        }
    };
    let bytes: Vec<u8> = s.bytes().filter(|&c| c != b'=').collect();
    let mut out = Vec::with_capacity(bytes.len() * 3 / 4);
    for c in bytes.chunks(4) {
        let mut n = 0u32;
        for (i, &b) in c.iter().enumerate() {
            n |= val(b) << (18 - 6 * i);
        }
        for i in 0..c.len().saturating_sub(1) {
            out.push((n >> (16 - 8 * i)) as u8);
        }
    }
    out
}

/// The key just after every key starting with `prefix` (etcd's `range_end` for a prefix).
pub fn prefix_end(prefix: &[u8]) -> Vec<u8> {
    let mut end = prefix.to_vec();
    while let Some(last) = end.pop() {
        if last < 0xff {
            end.push(last + 1);
            return end;
        }
    }
    vec![0]
}

/// One member's process: the guard shell (`sh`) and the pid of the etcd it started.
struct Proc {
    guard: Child,
    stdin: Option<ChildStdin>,
    pid: u32,
}

impl Proc {
    /// Closes the guard's stdin (it then kills etcd with SIGKILL, harmless if it is dead
    /// already) and reaps the guard.
    fn release(mut self) {
        drop(self.stdin.take());
        let _ = self.guard.wait();
    }
}

/// One member's fixed identity: ports and directories.
struct MemberSpec {
    name: String,
    client_port: u16,
    peer_port: u16,
    data_dir: PathBuf,
    log: PathBuf,
}

/// A running etcd cluster of its own members on loopback.
pub struct Cluster {
    specs: Vec<MemberSpec>,
    initial_cluster: String,
    token: String,
    /// The running process of each member (None while stopped or killed).
    procs: Mutex<Vec<Option<Proc>>>,
    /// Guards of killed members, released on drop.
    retired: Mutex<Vec<Proc>>,
    http: Client,
    _tmp: Option<tempfile::TempDir>,
    /// Remove the data directories when the guard shells end (the shared cluster, which
    /// is never dropped).
    cleanup_dir: Option<PathBuf>,
    /// Flags every member starts with besides the harness's own.
    extra: Vec<String>,
}

fn alive(pid: u32) -> bool {
    // A zombie (killed, not yet reaped by its guard shell) holds no sockets or files.
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(s) => s
            .rsplit_once(')')
            .map(|(_, rest)| !rest.trim_start().starts_with(['Z', 'X']))
            .unwrap_or(false),
        Err(_) => false,
    }
}

/// Sends signal `sig` (`KILL`, `STOP`, ...) to process `pid`; whether `kill` succeeded
/// (it fails for a process that has already exited).
pub fn signal(pid: u32, sig: &str) -> bool {
    Command::new("kill")
        .arg(format!("-{sig}"))
        .arg(pid.to_string())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

fn free_port_pair() -> (u16, u16) {
    // Below Linux's ephemeral range (32768-60999), so a client connection's source port
    // never takes one between the check and etcd's bind.
    loop {
        let base = 20000 + (rand::random::<u16>() % 12000);
        let a = TcpListener::bind(("127.0.0.1", base));
        let b = TcpListener::bind(("127.0.0.1", base + 1));
        if a.is_ok() && b.is_ok() {
            return (base, base + 1);
        }
    }
}

/// The last `n` bytes of a file, as text.
pub fn tail(path: &Path, n: u64) -> String {
    let Ok(mut f) = std::fs::File::open(path) else {
        return format!("({} missing)", path.display());
    };
    let len = f.metadata().map(|m| m.len()).unwrap_or(0);
    let _ = f.seek(SeekFrom::Start(len.saturating_sub(n)));
    let mut s = String::new();
    let _ = f.read_to_string(&mut s);
    s
}

impl Cluster {
    /// `n` members (3 for quorum tests) in a fresh temporary directory, healthy.
    pub fn start(n: usize) -> Cluster {
        let tmp = tempfile::Builder::new()
            .prefix("inregion-etcd-")
            .tempdir()
            .expect("tempdir");
        let dir = tmp.path().to_owned();
        Self::start_in(n, &dir, Some(tmp), None, &[])
    }

    /// [`Cluster::start`] with more flags for every member (`--quota-backend-bytes`, ...).
    pub fn start_with(n: usize, extra: &[&str]) -> Cluster {
        let tmp = tempfile::Builder::new()
            .prefix("inregion-etcd-")
            .tempdir()
            .expect("tempdir");
        let dir = tmp.path().to_owned();
        Self::start_in(n, &dir, Some(tmp), None, extra)
    }

    fn start_in(
        n: usize,
        dir: &Path,
        tmp: Option<tempfile::TempDir>,
        cleanup_dir: Option<PathBuf>,
        extra: &[&str],
    ) -> Cluster {
        let bin = etcd_binary();
        let mut tmp = tmp;
        let mut last_err = String::new();
        for attempt in 0..4 {
            let run = dir.join(format!("try{attempt}"));
            std::fs::create_dir_all(&run).expect("cluster dir");
            let specs: Vec<MemberSpec> = (0..n)
                .map(|i| {
                    let (client_port, peer_port) = free_port_pair();
                    MemberSpec {
                        name: format!("m{i}"),
                        client_port,
                        peer_port,
                        data_dir: run.join(format!("m{i}")),
                        log: run.join(format!("m{i}.log")),
                    }
                })
                .collect();
            let initial_cluster = specs
                .iter()
                .map(|s| format!("{}=http://127.0.0.1:{}", s.name, s.peer_port))
                .collect::<Vec<_>>()
                .join(",");
            let c = Cluster {
                specs,
                initial_cluster,
                token: format!("inregion-test-{:016x}", rand::random::<u64>()),
                procs: Mutex::new((0..n).map(|_| None).collect()),
                retired: Mutex::new(Vec::new()),
                http: Client::builder()
                    .no_proxy()
                    .timeout(Duration::from_secs(5))
                    .build()
                    .unwrap(),
                _tmp: None,
                cleanup_dir: cleanup_dir.clone(),
                extra: extra.iter().map(|s| s.to_string()).collect(),
            };
            for i in 0..n {
                c.spawn(&bin, i, "new");
            }
            match c.wait_healthy_all(Duration::from_secs(30)) {
                Ok(()) => {
                    let mut c = c;
                    c._tmp = tmp.take();
                    return c;
                }
                Err(e) => {
                    // Most likely a port taken between the check and the bind: new ports.
                    last_err = e;
                    drop(c);
                    let _ = std::fs::remove_dir_all(&run);
                }
            }
        }
        panic!("etcd cluster of {n} did not become healthy (4 attempts); last: {last_err}");
    }

    fn spawn(&self, bin: &Path, i: usize, state: &str) {
        let s = &self.specs[i];
        let client = format!("http://127.0.0.1:{}", s.client_port);
        let peer = format!("http://127.0.0.1:{}", s.peer_port);
        // The guard: start etcd, print its pid, wait for stdin's end (this process gone or
        // done with the member), then kill it. A signal to the guard (Ctrl-C, `timeout`
        // signalling the process group) kills it too.
        let script = "\"$@\" >>\"$LOG\" 2>&1 & pid=$!; \
            end() { kill -9 $pid 2>/dev/null; wait $pid; [ -n \"$CLEANUP\" ] && rm -rf \"$CLEANUP\"; exit 0; }; \
            trap end INT TERM HUP; echo $pid; cat >/dev/null; end";
        let mut cmd = Command::new("sh");
        cmd.arg("-c")
            .arg(script)
            .arg("sh")
            .arg(bin)
            .args(["--name", &s.name])
            .arg("--data-dir")
            .arg(&s.data_dir)
            .args(["--listen-client-urls", &client])
            .args(["--advertise-client-urls", &client])
            .args(["--listen-peer-urls", &peer])
            .args(["--initial-advertise-peer-urls", &peer])
            .args(["--initial-cluster", &self.initial_cluster])
            .args(["--initial-cluster-token", &self.token])
            .args(["--initial-cluster-state", state])
            .args(["--max-txn-ops", "10000"])
            .args(["--max-request-bytes", "33554432"])
            .args(["--logger", "zap", "--log-outputs", "stderr"])
            .args(&self.extra)
            .env("LOG", &s.log)
            .env(
                "CLEANUP",
                self.cleanup_dir.as_deref().unwrap_or(Path::new("")),
            )
            .env_remove("ETCDCTL_API")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null());
        // etcd reads ETCD_* variables as flags: none from the environment.
        for (k, _) in std::env::vars_os() {
            if k.to_string_lossy().starts_with("ETCD_") {
                cmd.env_remove(k);
            }
        }
        let mut guard = cmd.spawn().expect("spawn sh for etcd");
        let stdin = guard.stdin.take();
        let mut line = String::new();
        BufReader::new(guard.stdout.take().unwrap())
            .read_line(&mut line)
            .expect("etcd pid from the guard shell");
        let pid: u32 = line
            .trim()
            .parse()
            .unwrap_or_else(|_| panic!("guard shell printed {line:?}, not a pid"));
        let old = self.procs.lock().unwrap()[i].replace(Proc { guard, stdin, pid });
        if let Some(old) = old {
            self.retired.lock().unwrap().push(old);
        }
    }

    /// The number of members.
    pub fn len(&self) -> usize {
        self.specs.len()
    }

    /// `127.0.0.1:P1,127.0.0.1:P2,...` (client ports).
    pub fn endpoints(&self) -> String {
        self.specs
            .iter()
            .map(|s| format!("127.0.0.1:{}", s.client_port))
            .collect::<Vec<_>>()
            .join(",")
    }

    /// `etcd://` + [`Cluster::endpoints`]: the value of `inregion serve --store`.
    pub fn url(&self) -> String {
        format!("etcd://{}", self.endpoints())
    }

    /// `http://127.0.0.1:P` of member `i`.
    pub fn client_url(&self, i: usize) -> String {
        format!("http://127.0.0.1:{}", self.specs[i].client_port)
    }

    /// Member `i`'s data directory.
    pub fn data_dir(&self, i: usize) -> &Path {
        &self.specs[i].data_dir
    }

    /// The last 4 KiB of member `i`'s log.
    pub fn log_tail(&self, i: usize) -> String {
        tail(&self.specs[i].log, 4096)
    }

    /// The pid of member `i`'s etcd (None while it is stopped or killed).
    pub fn pid(&self, i: usize) -> Option<u32> {
        self.procs.lock().unwrap()[i]
            .as_ref()
            .map(|p| p.pid)
            .filter(|&p| alive(p))
    }

    /// Kills member `i` with SIGKILL and waits until it is gone.
    pub fn kill9(&self, i: usize) {
        self.end(i, "KILL", Duration::from_secs(10));
    }

    /// Stops member `i` with SIGTERM and waits until it has exited.
    pub fn stop(&self, i: usize) {
        self.end(i, "TERM", Duration::from_secs(20));
    }

    fn end(&self, i: usize, sig: &str, wait: Duration) {
        let p = self.procs.lock().unwrap()[i]
            .take()
            .unwrap_or_else(|| panic!("member {i} is not running"));
        // It may have exited already (killed by a test): what follows waits either way.
        let _ = signal(p.pid, sig);
        let deadline = Instant::now() + wait;
        while alive(p.pid) {
            if Instant::now() > deadline {
                signal(p.pid, "KILL");
                assert!(
                    Instant::now() < deadline + Duration::from_secs(5),
                    "member {i} (pid {}) did not exit after SIG{sig}",
                    p.pid
                );
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        self.retired.lock().unwrap().push(p);
    }

    /// Freezes member `i` (SIGSTOP), as a hung process or host: its connections stay
    /// open and nothing answers on them. [`Cluster::resume`] thaws it; dropping the
    /// cluster kills it either way.
    pub fn pause(&self, i: usize) {
        let pid = self.pid(i).expect("the member is running");
        assert!(signal(pid, "STOP"), "kill -STOP {pid}");
    }

    /// Thaws a member frozen by [`Cluster::pause`] (SIGCONT).
    pub fn resume(&self, i: usize) {
        let pid = self.pid(i).expect("the member is running");
        assert!(signal(pid, "CONT"), "kill -CONT {pid}");
    }

    /// Starts member `i` again on its data directory (`--initial-cluster-state existing`)
    /// and waits until it reports healthy.
    pub fn restart(&self, i: usize) {
        assert!(self.pid(i).is_none(), "member {i} is still running");
        self.spawn(&etcd_binary(), i, "existing");
        if let Err(e) = self.wait_healthy(i, Duration::from_secs(30)) {
            panic!("member {i} did not come back: {e}");
        }
    }

    /// GET /health of member `i`: `Ok` once it answers `{"health":"true"}`.
    pub fn health(&self, i: usize) -> Result<(), String> {
        let r = self
            .http
            .get(format!("{}/health", self.client_url(i)))
            .send()
            .map_err(|e| e.to_string())?;
        let v: Value = r.json().map_err(|e| e.to_string())?;
        if v["health"] == "true" {
            Ok(())
        } else {
            Err(v.to_string())
        }
    }

    /// Waits until member `i` is healthy; the error has its last answer and log tail.
    pub fn wait_healthy(&self, i: usize, timeout: Duration) -> Result<(), String> {
        let deadline = Instant::now() + timeout;
        loop {
            let r = self.health(i);
            if r.is_ok() {
                return Ok(());
            }
            let dead = self.pid(i).is_none();
            if dead || Instant::now() > deadline {
                return Err(format!(
                    "member {i} ({}) {}: last /health: {:?}\n--- log tail ({})\n{}",
                    self.client_url(i),
                    if dead {
                        "exited"
                    } else {
                        "not healthy in time"
                    },
                    r.err(),
                    self.specs[i].log.display(),
                    self.log_tail(i)
                ));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn wait_healthy_all(&self, timeout: Duration) -> Result<(), String> {
        (0..self.len()).try_for_each(|i| self.wait_healthy(i, timeout))
    }

    /// POST `path` of the v3 JSON gateway on member `i`.
    pub fn gateway(&self, i: usize, path: &str, body: &Value) -> Result<Value, String> {
        let r = self
            .http
            .post(format!("{}{path}", self.client_url(i)))
            .json(body)
            .send()
            .map_err(|e| e.to_string())?;
        let status = r.status();
        let v: Value = r.json().map_err(|e| e.to_string())?;
        if status.is_success() {
            Ok(v)
        } else {
            Err(format!("{status}: {v}"))
        }
    }

    /// Puts `key` = `value` through member `i`; returns the revision of the write.
    pub fn put(&self, i: usize, key: &str, value: &str) -> Result<u64, String> {
        let v = self.gateway(
            i,
            "/v3/kv/put",
            &json!({"key": b64(key.as_bytes()), "value": b64(value.as_bytes())}),
        )?;
        revision(&v)
    }

    /// Reads `key` through member `i` (a linearizable read).
    pub fn get(&self, i: usize, key: &str) -> Result<Option<String>, String> {
        let v = self.gateway(i, "/v3/kv/range", &json!({"key": b64(key.as_bytes())}))?;
        Ok(v["kvs"]
            .as_array()
            .and_then(|a| a.first())
            .and_then(|kv| kv["value"].as_str())
            .map(|s| String::from_utf8_lossy(&unb64(s)).into_owned()))
    }

    /// Every key and value under `prefix`, through member `i`.
    pub fn range_prefix(&self, i: usize, prefix: &str) -> Result<Vec<(String, Vec<u8>)>, String> {
        let v = self.gateway(
            i,
            "/v3/kv/range",
            &json!({"key": b64(prefix.as_bytes()), "range_end": b64(&prefix_end(prefix.as_bytes()))}),
        )?;
        Ok(v["kvs"]
            .as_array()
            .map(|a| {
                a.iter()
                    .map(|kv| {
                        (
                            String::from_utf8_lossy(&unb64(kv["key"].as_str().unwrap_or("")))
                                .into_owned(),
                            kv["value"].as_str().map(unb64).unwrap_or_default(),
                        )
                    })
                    .collect()
            })
            .unwrap_or_default())
    }

    /// The index of the member that is the leader, as member `i` sees it.
    pub fn leader(&self) -> Option<usize> {
        for i in 0..self.len() {
            if self.pid(i).is_none() {
                continue;
            }
            let Ok(v) = self.gateway(i, "/v3/maintenance/status", &json!({})) else {
                continue;
            };
            let (Some(me), Some(leader)) =
                (v["header"]["member_id"].as_str(), v["leader"].as_str())
            else {
                continue;
            };
            if me == leader {
                return Some(i);
            }
            // Another member is the leader: find its index by asking each one its id.
            for j in 0..self.len() {
                if j == i || self.pid(j).is_none() {
                    continue;
                }
                if let Ok(w) = self.gateway(j, "/v3/maintenance/status", &json!({})) {
                    if w["header"]["member_id"].as_str() == Some(leader) {
                        return Some(j);
                    }
                }
            }
        }
        None
    }

    /// Makes member `i` the leader (etcd's leadership transfer, asked of the current
    /// leader) and waits until [`Cluster::leader`] names it, or fails after 20 s.
    pub fn make_leader(&self, i: usize) -> Result<(), String> {
        let deadline = Instant::now() + Duration::from_secs(20);
        let id = self.gateway(i, "/v3/maintenance/status", &json!({}))?["header"]["member_id"]
            .as_str()
            .ok_or("no member_id in the status")?
            .to_owned();
        loop {
            match self.leader() {
                Some(l) if l == i => return Ok(()),
                Some(l) => {
                    // Answers once the transfer is done, or with an error to try again.
                    let _ = self.gateway(
                        l,
                        "/v3/maintenance/transfer-leadership",
                        &json!({ "targetID": id }),
                    );
                }
                None => {}
            }
            if Instant::now() > deadline {
                return Err(format!("member {i} did not become the leader in 20 s"));
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

/// The gateway's `header.revision` (a string in JSON, as int64 values are).
fn revision(v: &Value) -> Result<u64, String> {
    v["header"]["revision"]
        .as_str()
        .and_then(|s| s.parse().ok())
        .or_else(|| v["header"]["revision"].as_u64())
        .ok_or_else(|| format!("no header.revision in {v}"))
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let procs: Vec<Proc> = self
            .procs
            .get_mut()
            .map(|v| v.drain(..).flatten().collect())
            .unwrap_or_default();
        for p in &procs {
            signal(p.pid, "KILL");
        }
        for p in procs {
            p.release();
        }
        if let Ok(r) = self.retired.get_mut() {
            for p in r.drain(..) {
                p.release();
            }
        }
    }
}

/// One 3-member cluster per test process, for test binaries that start many servers
/// (each on a [`unique_prefix`]). Never dropped: its members die with the process (their
/// guard shells see stdin close) and the guards remove its data directories.
pub fn shared_cluster() -> &'static Cluster {
    static SHARED: OnceLock<Cluster> = OnceLock::new();
    SHARED.get_or_init(|| {
        let dir = std::env::temp_dir().join(format!(
            "inregion-etcd-shared-{}-{:08x}",
            std::process::id(),
            rand::random::<u32>()
        ));
        Cluster::start_in(3, &dir, None, Some(dir.clone()), &[])
    })
}
