//! Connections as an operator and an attacker see them: a stalled client cannot hold
//! SIGTERM beyond the drain deadline, a second signal exits at once, slow and idle
//! connections are cut off by the timeouts while normal clients are served, and no
//! acknowledged write is lost in any of it.

mod api_support;

use api_support::*;
use serde_json::json;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const BINDINGS: &str = "/dls/regional_services/prefix_bindings";

fn addr(s: &Server) -> String {
    s.base.trim_start_matches("http://").to_owned()
}

fn signal(pid: u32, sig: &str) {
    assert!(Command::new("kill")
        .args([sig, &pid.to_string()])
        .status()
        .unwrap()
        .success());
}

/// A connection that sent a create's head and the start of a 200-byte body, and then
/// nothing more.
fn partial_body(host: &str) -> TcpStream {
    let mut c = TcpStream::connect(host).unwrap();
    c.write_all(
        format!(
            "POST /client/v4/accounts/{ACCOUNT}{BINDINGS} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {DEV_TOKEN}\r\nContent-Type: application/json\r\nContent-Length: 200\r\n\r\n{{\"prefix_id\""
        )
        .as_bytes(),
    )
    .unwrap();
    c
}

/// A server process of our own (the harness's `Server` asserts a clean exit on stop;
/// here the exit itself is under test).
struct Raw {
    child: Child,
    base: String,
}

fn start_raw(data: &Path, extra: &[&str]) -> Raw {
    let mut child = Command::new(env!("CARGO_BIN_EXE_inregion"))
        .args(["serve", "--listen", "127.0.0.1:0", "--data"])
        .arg(data)
        .args(["--dev-token", DEV_TOKEN, "--config"])
        .arg(test_config())
        .args(extra)
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut out = child.stdout.take().unwrap();
    let mut line = Vec::new();
    let mut b = [0u8; 1];
    while out.read(&mut b).unwrap() == 1 && b[0] != b'\n' {
        line.push(b[0]);
    }
    std::thread::spawn(move || std::io::copy(&mut out, &mut std::io::sink()));
    let line = String::from_utf8(line).unwrap();
    let base = line
        .strip_prefix("inregion: listening on ")
        .unwrap_or_else(|| panic!("{line}"))
        .to_owned();
    Raw { child, base }
}

impl Raw {
    fn wait_exit(&mut self, within: Duration) -> (std::process::ExitStatus, Duration) {
        let t = Instant::now();
        loop {
            if let Some(st) = self.child.try_wait().unwrap() {
                return (st, t.elapsed());
            }
            assert!(t.elapsed() < within, "still running after {within:?}");
            std::thread::sleep(Duration::from_millis(20));
        }
    }
    fn create(&self, cidr: &str) -> u16 {
        reqwest::blocking::Client::new()
            .post(format!(
                "{}/client/v4/accounts/{ACCOUNT}{BINDINGS}",
                self.base
            ))
            .bearer_auth(DEV_TOKEN)
            .json(&json!({"prefix_id": DEMO_PREFIX, "cidr": cidr, "region_key": "eu"}))
            .send()
            .unwrap()
            .status()
            .as_u16()
    }
}

#[test]
fn stalled_clients_do_not_hold_sigterm_past_the_drain_deadline() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("d");
    let mut s = start_raw(&data, &["--drain-timeout", "2s", "--header-timeout", "60s"]);
    for i in 0..20 {
        assert_eq!(s.create(&format!("203.0.113.{i}/32")), 201);
    }
    let host = s.base.trim_start_matches("http://").to_owned();
    // A partial request line, and a request whose body never comes.
    let mut line = TcpStream::connect(&host).unwrap();
    line.write_all(b"GET /client/v4/acc").unwrap();
    let body = partial_body(&host);
    std::thread::sleep(Duration::from_millis(200));
    signal(s.child.id(), "-TERM");
    let (st, took) = s.wait_exit(Duration::from_secs(10));
    assert!(st.success(), "{st}");
    assert!(
        took < Duration::from_secs(4),
        "took {took:?} with a 2 s drain deadline"
    );
    drop((line, body));
    // Nothing acknowledged was lost.
    let again = Server::start_with(Opts {
        data: Some(&data),
        ..Opts::default()
    });
    let n = again
        .dev("GET", &format!("{BINDINGS}?per_page=100"), None)
        .ok(200)
        .as_array()
        .unwrap()
        .len();
    assert_eq!(n, 20);
}

#[test]
fn a_second_signal_exits_at_once() {
    let tmp = tempfile::tempdir().unwrap();
    let mut s = start_raw(
        &tmp.path().join("d"),
        &["--drain-timeout", "60s", "--header-timeout", "60s"],
    );
    let host = s.base.trim_start_matches("http://").to_owned();
    let mut stalled = TcpStream::connect(&host).unwrap();
    stalled
        .write_all(b"GET /healthz HTTP/1.1\r\nHost:")
        .unwrap();
    std::thread::sleep(Duration::from_millis(200));
    signal(s.child.id(), "-TERM");
    std::thread::sleep(Duration::from_millis(500));
    assert!(s.child.try_wait().unwrap().is_none(), "draining, still up");
    signal(s.child.id(), "-INT");
    let (st, took) = s.wait_exit(Duration::from_secs(5));
    assert_eq!(st.code(), Some(130), "{st}");
    assert!(took < Duration::from_secs(2), "{took:?}");
    drop(stalled);
}

/// Reads until the peer closes (Ok(0) or a reset); returns how long that took.
fn time_to_close(mut c: TcpStream, limit: Duration) -> Option<Duration> {
    let t = Instant::now();
    c.set_read_timeout(Some(Duration::from_millis(100)))
        .unwrap();
    let mut buf = [0u8; 4096];
    while t.elapsed() < limit {
        match c.read(&mut buf) {
            Ok(0) => return Some(t.elapsed()),
            Ok(_) => {}
            Err(e)
                if e.kind() == std::io::ErrorKind::WouldBlock
                    || e.kind() == std::io::ErrorKind::TimedOut => {}
            Err(_) => return Some(t.elapsed()),
        }
    }
    None
}

#[test]
fn slow_and_idle_connections_are_cut_off_while_others_are_served() {
    let s = Server::start_with(Opts {
        args: vec!["--header-timeout", "1s", "--body-timeout", "1s"],
        ..Opts::default()
    });
    let host = addr(&s);
    // Slow loris: a header byte every 300 ms.
    let loris = std::thread::spawn({
        let host = host.clone();
        move || {
            let mut c = TcpStream::connect(&host).unwrap();
            let t = Instant::now();
            for b in b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: aaaaaaaaaaaaaaaaaaaaaaaa" {
                if c.write_all(&[*b]).is_err() {
                    return Some(t.elapsed());
                }
                std::thread::sleep(Duration::from_millis(300));
                let mut probe = [0u8; 1];
                c.set_nonblocking(true).unwrap();
                let closed = matches!(c.read(&mut probe), Ok(0));
                c.set_nonblocking(false).unwrap();
                if closed {
                    return Some(t.elapsed());
                }
            }
            None
        }
    });
    // Idle after one request on a kept-alive connection.
    let mut idle = TcpStream::connect(&host).unwrap();
    idle.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    let mut first = [0u8; 64];
    assert!(idle.read(&mut first).unwrap() > 0);
    // Normal clients are served meanwhile.
    for i in 0..20 {
        s.create(DEMO_PREFIX, &format!("203.0.113.{i}/32"), "eu");
    }
    let idle_closed = time_to_close(idle, Duration::from_secs(5));
    assert!(
        idle_closed.is_some_and(|d| d < Duration::from_secs(3)),
        "idle connection: {idle_closed:?}"
    );
    let loris = loris.join().unwrap();
    assert!(
        loris.is_some_and(|d| d < Duration::from_secs(4)),
        "slow loris kept its connection: {loris:?}"
    );
    // A body that stops arriving: 408 and nothing created.
    let mut c = partial_body(&host);
    c.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let mut answer = String::new();
    let _ = c.read_to_string(&mut answer);
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    let n = s
        .dev("GET", &format!("{BINDINGS}?per_page=100"), None)
        .ok(200)
        .as_array()
        .unwrap()
        .len();
    assert_eq!(n, 20);
}
