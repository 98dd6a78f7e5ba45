//! Propagation figure: how long from a write's acknowledgement by `inregion serve` until
//! every data center of an `inregion edge` process has applied it.
//!
//! Driven by `scripts/bench-edge-propagation.sh` (which starts the server and the node);
//! run by hand as
//!
//! ```text
//! cargo run --release --example edge_propagation -- CONTROL_URL NODE_URL EDGE_TOKEN DEV_TOKEN [WRITES]
//! ```
//!
//! For each write (a binding create, then its delete, alternately) it records the time
//! the API answered, reads the version that write made from the feed, then polls the
//! node's `/v1/status` until the lowest applied version over all its data centers
//! reaches it. Prints p50/p99/max in milliseconds, one JSON line.

use reqwest::blocking::Client;
use serde_json::Value;
use std::time::{Duration, Instant};

const ACCOUNT: &str = "023e105f4ecef8ad9ca31a8372d0c353";
const PREFIX: &str = "a1b2c3d4-e5f6-7890-abcd-ef1234567890";

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.len() < 4 {
        eprintln!(
            "usage: edge_propagation CONTROL_URL NODE_URL EDGE_TOKEN DEV_TOKEN [WRITES=1000]"
        );
        std::process::exit(2);
    }
    let (control, node, edge_token, dev_token) = (&args[0], &args[1], &args[2], &args[3]);
    let writes: usize = args.get(4).map_or(1000, |w| w.parse().expect("WRITES"));
    let http = Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap();
    let get = |url: &str, token: &str| -> Value {
        http.get(url)
            .bearer_auth(token)
            .send()
            .unwrap()
            .json()
            .unwrap()
    };
    let status = |n: &str| get(&format!("{n}/v1/status"), edge_token);
    let dcs = status(node)["dcs"].as_array().map_or(0, Vec::len);
    let mut version = get(&format!("{control}/edge/v1/snapshot"), edge_token)["version"]
        .as_u64()
        .unwrap();
    let bindings =
        format!("{control}/client/v4/accounts/{ACCOUNT}/dls/regional_services/prefix_bindings");
    let mut lat_ms = Vec::with_capacity(writes);
    let mut live: Option<String> = None;
    for i in 0..writes {
        let acked = match live.take() {
            None => {
                let body = serde_json::json!({
                    "prefix_id": PREFIX,
                    "cidr": format!("203.0.113.{}/32", (i / 2) % 256),
                    "region_key": (["eu", "us", "jp"][i % 3]),
                });
                let r: Value = http
                    .post(&bindings)
                    .bearer_auth(dev_token)
                    .json(&body)
                    .send()
                    .unwrap()
                    .json()
                    .unwrap();
                let t = Instant::now();
                assert_eq!(r["success"], true, "{r}");
                live = Some(r["result"]["id"].as_str().unwrap().to_owned());
                t
            }
            Some(id) => {
                let r = http
                    .delete(format!("{bindings}/{id}"))
                    .bearer_auth(dev_token)
                    .send()
                    .unwrap();
                let t = Instant::now();
                assert!(r.status().is_success());
                t
            }
        };
        // The version this write made (the feed's current version: this write's, or a
        // later registration's, never an earlier one).
        version = get(
            &format!("{control}/edge/v1/changes?since={version}"),
            edge_token,
        )["version"]
            .as_u64()
            .unwrap();
        loop {
            if status(node)["applied_version"].as_u64().unwrap_or(0) >= version {
                break;
            }
            assert!(
                acked.elapsed() < Duration::from_secs(30),
                "write {i} never applied"
            );
            std::thread::sleep(Duration::from_micros(200));
        }
        lat_ms.push(acked.elapsed().as_secs_f64() * 1000.0);
    }
    lat_ms.sort_by(f64::total_cmp);
    let q = |p: f64| lat_ms[((lat_ms.len() as f64 * p) as usize).min(lat_ms.len() - 1)];
    println!(
        "{}",
        serde_json::json!({
            "bench": "edge_propagation",
            "writes": writes,
            "data_centers": dcs,
            "p50_ms": q(0.50),
            "p99_ms": q(0.99),
            "max_ms": lat_ms[lat_ms.len() - 1],
        })
    );
}
