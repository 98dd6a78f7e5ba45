//! A small blocking client of etcd's v3 JSON gateway (`/v3/kv/range`, `/v3/kv/txn`,
//! `/v3/watch`): the HTTP face that every etcd server has, so the project needs no
//! protobuf compiler to talk to it (the gRPC client crates compile `.proto` files at
//! build time, with `protoc`).
//!
//! The gateway speaks the gRPC messages as JSON: keys and values are base64, 64-bit
//! integers are strings, fields at their default value are left out. Only what the store
//! needs is modelled here.
//!
//! Endpoints are tried in order, starting with the last one that answered; a request that
//! could not be *sent* (connection refused) moves on to the next. A request that was sent
//! and got no answer is not retried here: the caller decides, since a transaction may
//! have been applied (see the store's ambiguous-outcome handling).

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use serde::{Deserialize, Deserializer};
use std::io::{BufRead, BufReader};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

/// Why a gateway request failed.
#[derive(Debug, Clone, thiserror::Error)]
pub(crate) enum GatewayError {
    /// No endpoint accepted the connection: the request was not sent anywhere.
    #[error("no etcd endpoint reachable ({0})")]
    Unreachable(String),
    /// The request was sent, but no complete answer came back (timeout, reset): it may
    /// or may not have taken effect.
    #[error("etcd did not answer ({0})")]
    NoAnswer(String),
    /// etcd answered with an error (no leader, request too large, compacted, ...).
    #[error("etcd refused the request: {0}")]
    Refused(String),
}

impl GatewayError {
    /// Whether a transaction that failed this way certainly did not take effect.
    pub(crate) fn certainly_not_applied(&self) -> bool {
        !matches!(self, GatewayError::NoAnswer(_))
    }
}

fn de_u64<'de, D: Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum N {
        S(String),
        N(u64),
    }
    match N::deserialize(d)? {
        N::S(s) => s.parse().map_err(serde::de::Error::custom),
        N::N(n) => Ok(n),
    }
}

fn de_b64<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
    let s = String::deserialize(d)?;
    B64.decode(s).map_err(serde::de::Error::custom)
}

/// A response header.
#[derive(Debug, Clone, Default, Deserialize)]
pub(crate) struct Header {
    /// The store's revision when the request was served.
    #[serde(default, deserialize_with = "de_u64")]
    pub(crate) revision: u64,
}

/// A key-value pair.
#[derive(Debug, Clone, Default, Deserialize)]
pub(crate) struct Kv {
    #[serde(default, deserialize_with = "de_b64")]
    pub(crate) key: Vec<u8>,
    #[serde(default, deserialize_with = "de_b64")]
    pub(crate) value: Vec<u8>,
    #[serde(default, deserialize_with = "de_u64")]
    pub(crate) mod_revision: u64,
}

#[derive(Debug, Default, Deserialize)]
struct RangeResponse {
    #[serde(default)]
    header: Header,
    #[serde(default)]
    kvs: Vec<Kv>,
    #[serde(default)]
    more: bool,
}

/// The keys read by [`Gateway::range`], at one revision.
#[derive(Debug, Default)]
pub(crate) struct Range {
    /// The revision the read was served at.
    pub(crate) revision: u64,
    /// The pairs, in key order.
    pub(crate) kvs: Vec<Kv>,
}

/// One operation of a transaction.
#[derive(Debug, Clone)]
pub(crate) enum Op {
    /// Write a key.
    Put(Vec<u8>, Vec<u8>),
    /// Delete one key.
    Delete(Vec<u8>),
    /// Delete every key with this prefix.
    DeletePrefix(Vec<u8>),
    /// Read one key.
    Get(Vec<u8>),
}

/// A transaction's condition: `mod_revision(key) == revision` (0: the key is absent).
#[derive(Debug, Clone)]
pub(crate) struct ModRevisionIs {
    pub(crate) key: Vec<u8>,
    pub(crate) revision: u64,
}

/// What a transaction did.
#[derive(Debug)]
pub(crate) struct TxnOutcome {
    /// Whether the condition held (the success operations were applied).
    pub(crate) succeeded: bool,
    /// The revision after the transaction (its own revision when it wrote).
    pub(crate) revision: u64,
    /// The pairs read by the `Get` operations of the branch that ran, in order.
    pub(crate) reads: Vec<Option<Kv>>,
}

#[derive(Debug, Deserialize)]
struct TxnResponse {
    #[serde(default)]
    header: Header,
    #[serde(default)]
    succeeded: bool,
    #[serde(default)]
    responses: Vec<serde_json::Value>,
}

/// One event of a watch.
#[derive(Debug, Clone)]
pub(crate) struct Event {
    /// Whether the key was deleted (otherwise put).
    pub(crate) deleted: bool,
    /// The pair (for a deletion: the key and the deletion's revision).
    pub(crate) kv: Kv,
}

/// One message of a watch stream.
#[derive(Debug)]
pub(crate) enum WatchMessage {
    /// The watch is set up.
    Created,
    /// Events, in revision order.
    Events(Vec<Event>),
    /// The revision asked for was compacted away: list again.
    Compacted(u64),
    /// The server cancelled the watch for another reason.
    Canceled(String),
}

fn b64(k: &[u8]) -> String {
    B64.encode(k)
}

/// The end of the range of keys starting with `prefix` (etcd's `range_end`).
pub(crate) fn prefix_end(prefix: &[u8]) -> Vec<u8> {
    let mut end = prefix.to_vec();
    while let Some(last) = end.pop() {
        if last < 0xff {
            end.push(last + 1);
            return end;
        }
    }
    vec![0] // every key
}

/// The client. Cheap to share between threads (`&self` methods).
pub(crate) struct Gateway {
    endpoints: Vec<String>,
    /// The endpoint that answered last.
    current: AtomicUsize,
    client: reqwest::blocking::Client,
    /// For watches: no overall timeout (the stream stays open).
    streaming: reqwest::blocking::Client,
}

impl std::fmt::Debug for Gateway {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Gateway")
            .field("endpoints", &self.endpoints)
            .finish()
    }
}

impl Gateway {
    /// A client of `endpoints` (`host:port`), each request bounded by `timeout`.
    pub(crate) fn new(endpoints: Vec<String>, timeout: Duration) -> Result<Self, GatewayError> {
        let build = |t: Option<Duration>| {
            let mut b = reqwest::blocking::Client::builder()
                .connect_timeout(Duration::from_secs(1))
                .no_proxy()
                .tcp_nodelay(true);
            b = b.timeout(t);
            b.build()
                .map_err(|e| GatewayError::Refused(format!("cannot build the HTTP client: {e}")))
        };
        Ok(Self {
            endpoints,
            current: AtomicUsize::new(0),
            client: build(Some(timeout))?,
            streaming: build(None)?,
        })
    }

    /// Sends `body` to `path` on the first endpoint that takes the connection.
    fn send(
        &self,
        client: &reqwest::blocking::Client,
        path: &str,
        body: &serde_json::Value,
    ) -> Result<reqwest::blocking::Response, GatewayError> {
        let n = self.endpoints.len();
        let first = self.current.load(Ordering::Relaxed);
        let mut last_error = String::from("no endpoints");
        for i in 0..n {
            let at = (first + i) % n;
            let url = format!("http://{}{path}", self.endpoints[at]);
            match client.post(&url).json(body).send() {
                Ok(r) => {
                    self.current.store(at, Ordering::Relaxed);
                    return Ok(r);
                }
                Err(e) if e.is_connect() => last_error = format!("{}: {e}", self.endpoints[at]),
                Err(e) => return Err(GatewayError::NoAnswer(format!("{url}: {e}"))),
            }
        }
        Err(GatewayError::Unreachable(last_error))
    }

    fn call<T: for<'de> Deserialize<'de>>(
        &self,
        path: &str,
        body: &serde_json::Value,
    ) -> Result<T, GatewayError> {
        let r = self.send(&self.client, path, body)?;
        let status = r.status();
        let text = r
            .text()
            .map_err(|e| GatewayError::NoAnswer(format!("{path}: {e}")))?;
        if !status.is_success() {
            return Err(GatewayError::Refused(format!("{path}: {status}: {text}")));
        }
        serde_json::from_str(&text)
            .map_err(|e| GatewayError::Refused(format!("{path}: unexpected answer ({e}): {text}")))
    }

    /// Reads every key starting with `prefix` (or the one key `prefix` when `exact`), at
    /// one revision, in pages of `page` keys.
    pub(crate) fn range(&self, prefix: &[u8], exact: bool) -> Result<Range, GatewayError> {
        const PAGE: usize = 2000;
        let end = if exact {
            None
        } else {
            Some(prefix_end(prefix))
        };
        let mut out = Range::default();
        let mut from = prefix.to_vec();
        loop {
            let mut body = serde_json::json!({ "key": b64(&from) });
            if let Some(end) = &end {
                body["range_end"] = b64(end).into();
                body["limit"] = PAGE.to_string().into();
            }
            if out.revision > 0 {
                // Later pages at the first page's revision: one consistent snapshot.
                body["revision"] = out.revision.to_string().into();
            }
            let r: RangeResponse = self.call("/v3/kv/range", &body)?;
            if out.revision == 0 {
                out.revision = r.header.revision;
            }
            let last = r.kvs.last().map(|kv| kv.key.clone());
            out.kvs.extend(r.kvs);
            match (r.more, last) {
                (true, Some(mut k)) => {
                    k.push(0); // the next key after `k`
                    from = k;
                }
                _ => return Ok(out),
            }
        }
    }

    /// Runs a transaction: if every condition holds, `success`, else `failure`.
    pub(crate) fn txn(
        &self,
        compare: &[ModRevisionIs],
        success: &[Op],
        failure: &[Op],
    ) -> Result<TxnOutcome, GatewayError> {
        let ops = |ops: &[Op]| -> Vec<serde_json::Value> {
            ops.iter()
                .map(|op| match op {
                    Op::Put(k, v) => {
                        serde_json::json!({"request_put": {"key": b64(k), "value": b64(v)}})
                    }
                    Op::Delete(k) => serde_json::json!({"request_delete_range": {"key": b64(k)}}),
                    Op::DeletePrefix(p) => serde_json::json!({"request_delete_range": {
                        "key": b64(p), "range_end": b64(&prefix_end(p))}}),
                    Op::Get(k) => serde_json::json!({"request_range": {"key": b64(k)}}),
                })
                .collect()
        };
        let compare: Vec<serde_json::Value> = compare
            .iter()
            .map(|c| {
                serde_json::json!({"key": b64(&c.key), "target": "MOD", "result": "EQUAL",
                    "mod_revision": c.revision.to_string()})
            })
            .collect();
        let body = serde_json::json!({
            "compare": compare, "success": ops(success), "failure": ops(failure)
        });
        let r: TxnResponse = self.call("/v3/kv/txn", &body)?;
        let mut reads = Vec::new();
        for resp in &r.responses {
            if let Some(range) = resp.get("response_range") {
                let rr: RangeResponse = serde_json::from_value(range.clone()).map_err(|e| {
                    GatewayError::Refused(format!("/v3/kv/txn: unexpected range answer ({e})"))
                })?;
                reads.push(rr.kvs.into_iter().next());
            }
        }
        Ok(TxnOutcome {
            succeeded: r.succeeded,
            revision: r.header.revision,
            reads,
        })
    }

    /// Opens a watch of every key starting with `prefix`, from `start_revision`, and
    /// calls `on_message` for each message until it returns `false`, the stream ends or
    /// fails (the error says why).
    pub(crate) fn watch(
        &self,
        prefix: &[u8],
        start_revision: u64,
        mut on_message: impl FnMut(WatchMessage) -> bool,
    ) -> Result<(), GatewayError> {
        let body = serde_json::json!({"create_request": {
            "key": b64(prefix), "range_end": b64(&prefix_end(prefix)),
            "start_revision": start_revision.to_string(),
            // Progress notifications keep an idle stream from looking dead.
            "progress_notify": true,
        }});
        let r = self.send(&self.streaming, "/v3/watch", &body)?;
        if !r.status().is_success() {
            return Err(GatewayError::Refused(format!("/v3/watch: {}", r.status())));
        }
        for line in BufReader::new(r).lines() {
            let line = line.map_err(|e| GatewayError::NoAnswer(format!("watch stream: {e}")))?;
            if line.trim().is_empty() {
                continue;
            }
            let msg = parse_watch_line(&line)?;
            if !on_message(msg) {
                return Ok(());
            }
        }
        Err(GatewayError::NoAnswer("the watch stream ended".into()))
    }
}

#[derive(Debug, Deserialize)]
struct WatchLine {
    result: Option<WatchResult>,
    error: Option<serde_json::Value>,
}

#[derive(Debug, Deserialize)]
struct WatchResult {
    #[serde(default)]
    created: bool,
    #[serde(default)]
    canceled: bool,
    #[serde(default, deserialize_with = "de_u64")]
    compact_revision: u64,
    #[serde(default)]
    cancel_reason: String,
    #[serde(default)]
    events: Vec<RawEvent>,
}

#[derive(Debug, Deserialize)]
struct RawEvent {
    #[serde(default, rename = "type")]
    kind: Option<String>,
    #[serde(default)]
    kv: Kv,
}

fn parse_watch_line(line: &str) -> Result<WatchMessage, GatewayError> {
    let w: WatchLine = serde_json::from_str(line)
        .map_err(|e| GatewayError::Refused(format!("watch: unexpected message ({e}): {line}")))?;
    if let Some(e) = w.error {
        return Err(GatewayError::Refused(format!("watch: {e}")));
    }
    let Some(r) = w.result else {
        return Err(GatewayError::Refused(format!("watch: no result: {line}")));
    };
    if r.compact_revision > 0 {
        return Ok(WatchMessage::Compacted(r.compact_revision));
    }
    if r.canceled {
        return Ok(WatchMessage::Canceled(r.cancel_reason));
    }
    if r.created && r.events.is_empty() {
        return Ok(WatchMessage::Created);
    }
    Ok(WatchMessage::Events(
        r.events
            .into_iter()
            .map(|e| Event {
                deleted: e.kind.as_deref() == Some("DELETE"),
                kv: e.kv,
            })
            .collect(),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefix_end_is_the_next_key_after_every_key_with_the_prefix() {
        assert_eq!(prefix_end(b"/a/"), b"/a0".to_vec());
        assert_eq!(prefix_end(b"a\xff"), b"b".to_vec());
        assert_eq!(prefix_end(b"\xff\xff"), vec![0]);
    }

    #[test]
    fn watch_lines_decode() {
        let put = r#"{"result":{"header":{"revision":"3"},"events":[{"kv":{"key":"L3gvYQ==","create_revision":"2","mod_revision":"3","version":"2","value":"eA=="}}]}}"#;
        match parse_watch_line(put).unwrap() {
            WatchMessage::Events(ev) => {
                assert_eq!(ev.len(), 1);
                assert!(!ev[0].deleted);
                assert_eq!(ev[0].kv.key, b"/x/a");
                assert_eq!(ev[0].kv.value, b"x");
                assert_eq!(ev[0].kv.mod_revision, 3);
            }
            m => panic!("{m:?}"),
        }
        let del = r#"{"result":{"header":{"revision":"4"},"events":[{"type":"DELETE","kv":{"key":"L3gvYQ==","mod_revision":"4"}}]}}"#;
        assert!(matches!(parse_watch_line(del).unwrap(), WatchMessage::Events(e) if e[0].deleted));
        let created = r#"{"result":{"header":{"revision":"2"},"created":true}}"#;
        assert!(matches!(
            parse_watch_line(created).unwrap(),
            WatchMessage::Created
        ));
        let compacted =
            r#"{"result":{"header":{"revision":"9"},"canceled":true,"compact_revision":"7"}}"#;
        assert!(matches!(
            parse_watch_line(compacted).unwrap(),
            WatchMessage::Compacted(7)
        ));
        assert!(parse_watch_line("not json").is_err());
    }
}
