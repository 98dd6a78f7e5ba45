//! The seed page's curl commands (tests/data/seed.md, a copy of
//! shared/seed/regionalized-ip-bindings.md) run as written against `inregion serve`,
//! with only the host, `{account_id}` and `{binding_id}` substituted and
//! `$CLOUDFLARE_API_TOKEN` set; each response is checked against the documented one:
//! same shape and fields, same values except ids, timestamps and list lengths.

mod api_support;

use api_support::*;
use serde_json::Value;
use std::process::Command;

/// One ```bash block and the documented ```json response that follows it, if any.
struct Example {
    command: String,
    documented: Option<Value>,
}

/// Extracts the examples: each bash block, paired with the first json block after a
/// "**Response**" marker and before the next bash block.
fn examples(md: &str) -> Vec<Example> {
    let mut out: Vec<Example> = Vec::new();
    let mut lines = md.lines();
    let mut response_marker = false;
    while let Some(line) = lines.next() {
        let t = line.trim();
        if t == "```bash" || t == "```json" {
            let mut block = String::new();
            for l in lines.by_ref() {
                if l.trim() == "```" {
                    break;
                }
                block.push_str(l);
                block.push('\n');
            }
            if t == "```bash" {
                out.push(Example {
                    command: block,
                    documented: None,
                });
                response_marker = false;
            } else if response_marker {
                if let Some(last) = out.last_mut() {
                    last.documented = Some(serde_json::from_str(&block).expect("documented JSON"));
                }
                response_marker = false;
            }
        } else if t == "**Response**" {
            response_marker = true;
        }
    }
    out
}

const VOLATILE: &[&str] = &["id", "created_on", "modified_on", "version_created_on"];

/// Same JSON type and, outside volatile keys, the same value (objects: same key set;
/// arrays: each actual item matches the documented item's shape, and the documented
/// items' values appear in an actual item with the same key fields).
fn same_shape(doc: &Value, got: &Value, path: &str, key: Option<&str>) {
    match (doc, got) {
        (Value::Object(d), Value::Object(g)) => {
            let dk: Vec<_> = d.keys().collect();
            let gk: Vec<_> = g.keys().collect();
            assert_eq!(dk, gk, "{path}: fields differ");
            for (k, dv) in d {
                same_shape(dv, &g[k], &format!("{path}.{k}"), Some(k));
            }
        }
        (Value::Array(d), Value::Array(g)) => {
            if d.is_empty() {
                assert!(g.is_empty(), "{path}: expected []");
                return;
            }
            for item in g {
                shape_only(&d[0], item, &format!("{path}[]"));
            }
            for ditem in d {
                let found = g.iter().any(|gi| {
                    ditem
                        .as_object()
                        .unwrap()
                        .iter()
                        .filter(|(k, _)| !VOLATILE.contains(&k.as_str()))
                        .all(|(k, v)| &gi[k] == v)
                });
                assert!(found, "{path}: no item like {ditem} in {got}");
            }
        }
        (d, g) => {
            assert_eq!(kind(d), kind(g), "{path}: type differs ({d} vs {g})");
            let volatile = key.is_some_and(|k| VOLATILE.contains(&k) || k == "count");
            if !volatile {
                assert_eq!(d, g, "{path}: value differs");
            }
        }
    }
}

fn shape_only(doc: &Value, got: &Value, path: &str) {
    assert_eq!(kind(doc), kind(got), "{path}: type differs");
    if let (Value::Object(d), Value::Object(g)) = (doc, got) {
        let dk: Vec<_> = d.keys().collect();
        let gk: Vec<_> = g.keys().collect();
        assert_eq!(dk, gk, "{path}: fields differ");
        for (k, dv) in d {
            shape_only(dv, &g[k], &format!("{path}.{k}"));
        }
    }
}

fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "bool",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

#[test]
fn the_seed_pages_curl_commands_run_as_written() {
    let md = std::fs::read_to_string(repo().join("tests/data/seed.md")).unwrap();
    let ex = examples(&md);
    assert_eq!(
        ex.len(),
        7,
        "list regions, get region, create, list, get, patch, delete"
    );
    assert_eq!(ex.iter().filter(|e| e.documented.is_some()).count(), 5);

    let s = Server::start_with(Opts {
        config: false,
        admin: false,
        ..Opts::default()
    });
    let mut binding_id: Option<String> = None;
    let mut created: Option<Value> = None;
    for (i, e) in ex.iter().enumerate() {
        let mut cmd = e
            .command
            .replace("https://api.cloudflare.com", &s.base)
            .replace("%7Baccount_id%7D", ACCOUNT);
        if cmd.contains("%7Bbinding_id%7D") {
            let id = binding_id.as_deref().expect("a binding was created before");
            cmd = cmd.replace("%7Bbinding_id%7D", id);
        }
        assert!(!cmd.contains("%7B"), "unsubstituted placeholder in {cmd}");
        let out = Command::new("bash")
            .arg("-c")
            .arg(&cmd)
            .env("CLOUDFLARE_API_TOKEN", DEV_TOKEN)
            .env("NO_PROXY", "*")
            .output()
            .expect("bash");
        assert!(
            out.status.success(),
            "example {i} failed: {cmd}\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let got: Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
            panic!(
                "example {i}: not JSON ({e}): {}",
                String::from_utf8_lossy(&out.stdout)
            )
        });
        assert_eq!(got["success"], true, "example {i}: {got}");
        if cmd.contains("--request POST") {
            binding_id = Some(got["result"]["id"].as_str().unwrap().to_owned());
            created = Some(got["result"].clone());
        }
        match &e.documented {
            Some(doc) => same_shape(doc, &got, &format!("example {i}"), None),
            None if cmd.contains("/dls/regions/eu") => {
                assert_eq!(got["result"]["region_key"], "eu", "{got}");
                assert_eq!(got["result"]["name"], "Europe", "{got}");
            }
            None => {
                // "Get a single binding": the binding created above.
                assert_eq!(Some(&got["result"]), created.as_ref(), "example {i}");
            }
        }
    }
}
