//! The etcd client the store uses: the maintained [`etcd_client`] crate (gRPC over
//! tonic), behind the few blocking calls the store makes (a paged range read at one
//! revision, a conditional transaction, a prefix watch).
//!
//! Why blocking: the store runs on the commit pipeline's own thread and the follower's
//! threads (`follow.rs`), never on an async runtime. The client owns a small runtime
//! (one worker thread, `inregion-etcd`) that runs every request; a caller hands it the
//! request and waits on a channel, so a call is sound from any thread, inside another
//! runtime or not.
//!
//! Why one connection per endpoint, tried in order, rather than the crate's balanced
//! channel: the store must know whether a failed transaction *may* have been applied
//! (its ambiguous-outcome handling waits for the watch to tell). A request that could
//! not reach an endpoint (connection refused) certainly was not applied and moves on to
//! the next endpoint at once; a transaction that was sent and got no answer is not
//! retried here (a read is: reading twice changes nothing, and the connection to a member
//! killed a moment ago breaks under the first request), and the next request starts with
//! the next endpoint (a hung member costs one timeout).
//! A balancer hides which of the two happened, and waits out its timeout while every
//! endpoint is down.
//!
//! Building it needs `protoc` (the crate compiles etcd's `.proto` files): the
//! repository's `.cargo/config.toml` points `PROTOC` at `scripts/protoc`, which runs the
//! binary shipped in the `protoc-bin-vendored` crate (a build dependency of this crate,
//! so cargo has it unpacked before any build script runs).

use etcd_client::{
    Compare, CompareOp, DeleteOptions, EventType, GetOptions, KvClient, Txn, TxnOp, TxnOpResponse,
    WatchClient, WatchOptions,
};
use std::future::Future;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;
use tonic::Code;

/// Why a request to etcd failed.
#[derive(Debug, Clone, thiserror::Error)]
pub(crate) enum ClientError {
    /// No endpoint accepted the connection: the request was not sent anywhere.
    #[error("no etcd endpoint reachable ({0})")]
    Unreachable(String),
    /// The request was sent, but no complete answer came back (timeout, reset): it may
    /// or may not have taken effect.
    #[error("etcd did not answer ({0})")]
    NoAnswer(String),
    /// etcd answered with an error (request too large, ...): nothing was applied.
    #[error("etcd refused the request: {0}")]
    Refused(String),
    /// etcd refused a transaction for having more operations than its `--max-txn-ops`.
    #[error("etcd refused the transaction: {0}")]
    TooManyOperations(String),
    /// etcd's database reached its space quota (its NOSPACE alarm): it refuses every
    /// write until an operator compacts, defragments and disarms the alarm. The
    /// transaction that crossed the quota was applied all the same (etcd's quota applier
    /// applies, then answers this error): its outcome is unknown.
    #[error(
        "etcd is out of space ({0}); compact its history, defragment it and disarm its \
         NOSPACE alarm, and run etcd with --auto-compaction-retention so that it does not \
         fill again"
    )]
    NoSpace(String),
}

impl ClientError {
    /// Whether a transaction that failed this way certainly did not take effect.
    pub(crate) fn certainly_not_applied(&self) -> bool {
        !matches!(self, ClientError::NoAnswer(_) | ClientError::NoSpace(_))
    }

    /// Sorts a failure of the crate by what it says about the request's fate.
    fn from_etcd(endpoint: &str, e: etcd_client::Error) -> Self {
        match e {
            etcd_client::Error::GRpcStatus(status) => {
                let what = format!("{endpoint}: {}", status_text(&status));
                match status.code() {
                    // tonic answers Unavailable both for a connection it could not make and
                    // for one that broke under the request: only the first is certain.
                    Code::Unavailable if not_connected(&what) => ClientError::Unreachable(what),
                    Code::Unavailable
                    | Code::DeadlineExceeded
                    | Code::Cancelled
                    | Code::Unknown
                    | Code::Internal
                    | Code::Aborted
                    | Code::DataLoss => ClientError::NoAnswer(what),
                    // etcd says this one only by its text (the code is InvalidArgument).
                    Code::InvalidArgument if status.message().contains("too many operations") => {
                        ClientError::TooManyOperations(what)
                    }
                    // The same: ResourceExhausted with this text (etcd's ErrNoSpace).
                    Code::ResourceExhausted
                        if status.message().contains("database space exceeded") =>
                    {
                        ClientError::NoSpace(what)
                    }
                    // etcd checked the request and refused it before applying anything.
                    _ => ClientError::Refused(what),
                }
            }
            etcd_client::Error::TransportError(_) | etcd_client::Error::IoError(_) => {
                ClientError::NoAnswer(format!("{endpoint}: {e}"))
            }
            _ => ClientError::Refused(format!("{endpoint}: {e}")),
        }
    }
}

/// A status as a person reads it: its message, then each cause in turn ("tcp connect
/// error: Connection refused (os error 111)"), without the debug dump of the status.
fn status_text(status: &tonic::Status) -> String {
    let mut text = status.message().to_string();
    let mut source = std::error::Error::source(status);
    while let Some(s) = source {
        let cause = s.to_string();
        if !text.contains(&cause) {
            text = format!("{text}: {cause}");
        }
        source = s.source();
    }
    text
}

/// Whether an `Unavailable` status's text says the connection was never made.
fn not_connected(text: &str) -> bool {
    let text = text.to_ascii_lowercase();
    text.contains("connection refused") || text.contains("tcp connect error")
}

/// Whether a request may be sent to the next endpoint after one that did not answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Resend {
    /// A read: sending it again changes nothing.
    Read,
    /// A write: only when the connection was refused (it certainly was not sent).
    OnlyIfRefused,
}

/// A key-value pair.
#[derive(Debug, Clone, Default)]
pub(crate) struct Kv {
    pub(crate) key: Vec<u8>,
    pub(crate) value: Vec<u8>,
    pub(crate) mod_revision: u64,
}

impl From<&etcd_client::KeyValue> for Kv {
    fn from(kv: &etcd_client::KeyValue) -> Self {
        Kv {
            key: kv.key().to_vec(),
            value: kv.value().to_vec(),
            mod_revision: revision(kv.mod_revision()),
        }
    }
}

/// etcd's revisions are `int64` on the wire and never negative.
fn revision(r: i64) -> u64 {
    u64::try_from(r).unwrap_or(0)
}

/// The keys read by [`Client::range`], at one revision.
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

impl Op {
    fn to_txn_op(&self) -> TxnOp {
        match self {
            Op::Put(k, v) => TxnOp::put(k.clone(), v.clone(), None),
            Op::Delete(k) => TxnOp::delete(k.clone(), None),
            Op::DeletePrefix(p) => TxnOp::delete(
                p.clone(),
                Some(DeleteOptions::new().with_range(prefix_end(p))),
            ),
            Op::Get(k) => TxnOp::get(k.clone(), None),
        }
    }
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

impl WatchMessage {
    fn from_response(r: &etcd_client::WatchResponse) -> Self {
        if r.compact_revision() > 0 {
            return WatchMessage::Compacted(revision(r.compact_revision()));
        }
        if r.canceled() {
            return WatchMessage::Canceled(r.cancel_reason().to_string());
        }
        if r.created() && r.events().is_empty() {
            return WatchMessage::Created;
        }
        WatchMessage::Events(
            r.events()
                .iter()
                .map(|e| Event {
                    deleted: e.event_type() == EventType::Delete,
                    kv: e.kv().map(Kv::from).unwrap_or_default(),
                })
                .collect(),
        )
    }
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

/// The largest answer accepted from etcd. gRPC's default, 4 MiB, is too small: a watch
/// that resumes after a drop receives up to 1,000 revisions in one message, and each can
/// carry a transaction of 128 records; a message refused for its size would fail the
/// same way on every retry, and the replica would never catch up.
const MAX_MESSAGE: usize = 1 << 30;

/// One endpoint: a connection for requests (bounded by the request timeout) and one for
/// watches (no overall timeout: the stream stays open; HTTP/2 pings notice a dead peer).
struct Endpoint {
    name: String,
    requests: KvClient,
    watches: WatchClient,
}

/// The client. Cheap to share between threads (`&self` methods).
pub(crate) struct Client {
    endpoints: Vec<Endpoint>,
    /// The endpoint that answered last.
    current: AtomicUsize,
    /// Runs every request; `None` only while dropping.
    runtime: Option<tokio::runtime::Runtime>,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let names: Vec<&str> = self.endpoints.iter().map(|e| e.name.as_str()).collect();
        f.debug_struct("Client").field("endpoints", &names).finish()
    }
}

impl Drop for Client {
    fn drop(&mut self) {
        // Without waiting: a drop inside an async context must not block it.
        if let Some(rt) = self.runtime.take() {
            rt.shutdown_background();
        }
    }
}

impl Client {
    /// A client of `endpoints` (`host:port`), each request bounded by `timeout`.
    /// Connections are made on first use: an endpoint that is down now is no error.
    pub(crate) fn new(endpoints: Vec<String>, timeout: Duration) -> Result<Self, ClientError> {
        if endpoints.is_empty() {
            return Err(ClientError::Refused("no etcd endpoints given".into()));
        }
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("inregion-etcd")
            .enable_all()
            .build()
            .map_err(|e| ClientError::Refused(format!("cannot start the etcd client: {e}")))?;
        let connect = |name: &str, timeout: Option<Duration>| {
            let url = format!("http://{name}");
            let mut endpoint = tonic::transport::Endpoint::from_shared(url.clone())
                .map_err(|e| ClientError::Refused(format!("{url}: not a valid endpoint ({e})")))?
                .connect_timeout(Duration::from_secs(1))
                .tcp_nodelay(true)
                .http2_keep_alive_interval(Duration::from_secs(5))
                .keep_alive_timeout(Duration::from_secs(5))
                .keep_alive_while_idle(true);
            if let Some(t) = timeout {
                endpoint = endpoint.timeout(t);
            }
            // `connect_lazy` needs the runtime's context (it spawns the connection's task).
            let channel = {
                let _in_runtime = runtime.enter();
                endpoint.connect_lazy()
            };
            let client =
                etcd_client::Client::from_channel(etcd_client::Channel::Tonic(channel), None);
            run_on(&runtime, client)
                .ok_or_else(|| ClientError::Refused(format!("{name}: the client did not start")))?
                .map_err(|e| ClientError::from_etcd(name, e))
        };
        let endpoints = endpoints
            .iter()
            .map(|name| {
                Ok(Endpoint {
                    name: name.clone(),
                    requests: connect(name, Some(timeout))?
                        .kv_client()
                        .max_decoding_message_size(MAX_MESSAGE),
                    watches: connect(name, None)?
                        .watch_client()
                        .max_decoding_message_size(MAX_MESSAGE),
                })
            })
            .collect::<Result<_, ClientError>>()?;
        Ok(Self {
            endpoints,
            current: AtomicUsize::new(0),
            runtime: Some(runtime),
        })
    }

    /// The runtime (present from `new` until `drop`).
    fn runtime(&self) -> &tokio::runtime::Runtime {
        self.runtime.as_ref().expect("the runtime lives until drop")
    }

    /// Runs `request` on the client's runtime and waits for its answer; `None` if the
    /// task ended without one (it panicked).
    fn run<T: Send + 'static>(
        &self,
        request: impl Future<Output = T> + Send + 'static,
    ) -> Option<T> {
        run_on(self.runtime(), request)
    }

    /// Every endpoint once, starting with the one that answered last, with its index.
    fn in_order(&self) -> impl Iterator<Item = (usize, &Endpoint)> {
        let (n, first) = (self.endpoints.len(), self.current.load(Ordering::Relaxed));
        (0..n).map(move |i| {
            let at = (first + i) % n;
            (at, &self.endpoints[at])
        })
    }

    /// Says that endpoint `at` failed with `e`. After no answer (a member that hangs, or
    /// lost its leader) the *next* request starts with the next endpoint, so that no later
    /// request waits on that member first (whether this one goes on is `send`'s call).
    fn failed_at(&self, at: usize, e: ClientError) -> ClientError {
        if let ClientError::NoAnswer(_) = e {
            let next = (at + 1) % self.endpoints.len();
            // Only if no other request has moved on already.
            let _ = self
                .current
                .compare_exchange(at, next, Ordering::Relaxed, Ordering::Relaxed);
        }
        e
    }

    /// Sends `request` to the first endpoint that takes the connection, starting with the
    /// one that answered last. A request that may have been applied is not sent again
    /// elsewhere unless `resend` says it is safe ([`Resend::Read`]).
    fn send<T, F, Fut>(&self, resend: Resend, request: F) -> Result<T, ClientError>
    where
        T: Send + 'static,
        F: Fn(KvClient) -> Fut,
        Fut: Future<Output = Result<T, etcd_client::Error>> + Send + 'static,
    {
        let mut refused = Vec::new();
        let mut unanswered = Vec::new();
        for (at, endpoint) in self.in_order() {
            let error = match self.run(request(endpoint.requests.clone())) {
                Some(Ok(answer)) => {
                    self.current.store(at, Ordering::Relaxed);
                    return Ok(answer);
                }
                Some(Err(e)) => ClientError::from_etcd(&endpoint.name, e),
                None => ClientError::NoAnswer(format!(
                    "{}: the request ended without an answer",
                    endpoint.name
                )),
            };
            match self.failed_at(at, error) {
                ClientError::Unreachable(why) => refused.push(why),
                // A read changes nothing: the next member may answer it (the connection
                // to a member that was just killed breaks under the first request).
                ClientError::NoAnswer(why) if resend == Resend::Read => unanswered.push(why),
                other => return Err(other),
            }
        }
        if unanswered.is_empty() {
            Err(ClientError::Unreachable(refused.join("; ")))
        } else {
            unanswered.extend(refused);
            Err(ClientError::NoAnswer(unanswered.join("; ")))
        }
    }

    /// Reads every key starting with `prefix` (or the one key `prefix` when `exact`), at
    /// one revision, in pages.
    pub(crate) fn range(&self, prefix: &[u8], exact: bool) -> Result<Range, ClientError> {
        const PAGE: i64 = 2000;
        let end = (!exact).then(|| prefix_end(prefix));
        let mut out = Range::default();
        let mut from = prefix.to_vec();
        loop {
            let mut options = GetOptions::new();
            if let Some(end) = &end {
                options = options.with_range(end.clone()).with_limit(PAGE);
            }
            if out.revision > 0 {
                // Later pages at the first page's revision: one consistent snapshot.
                options = options.with_revision(i64::try_from(out.revision).unwrap_or(i64::MAX));
            }
            let key = from.clone();
            let r = self.send(Resend::Read, move |mut c| {
                let (key, options) = (key.clone(), options.clone());
                async move { c.get(key, Some(options)).await }
            })?;
            if out.revision == 0 {
                out.revision = r.header().map_or(0, |h| revision(h.revision()));
            }
            let last = r.kvs().last().map(|kv| kv.key().to_vec());
            out.kvs.extend(r.kvs().iter().map(Kv::from));
            match (r.more(), last) {
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
    ) -> Result<TxnOutcome, ClientError> {
        let txn = Txn::new()
            .when(
                compare
                    .iter()
                    .map(|c| {
                        let at = i64::try_from(c.revision).unwrap_or(i64::MAX);
                        Compare::mod_revision(c.key.clone(), CompareOp::Equal, at)
                    })
                    .collect::<Vec<_>>(),
            )
            .and_then(success.iter().map(Op::to_txn_op).collect::<Vec<_>>())
            .or_else(failure.iter().map(Op::to_txn_op).collect::<Vec<_>>());
        // A transaction whose answer was lost may have been applied: the store settles it
        // (its nonce) rather than this client sending it twice.
        let r = self.send(Resend::OnlyIfRefused, move |mut c| {
            let txn = txn.clone();
            async move { c.txn(txn).await }
        })?;
        let reads = r
            .op_responses()
            .iter()
            .filter_map(|op| match op {
                TxnOpResponse::Get(g) => Some(g.kvs().first().map(Kv::from)),
                _ => None,
            })
            .collect();
        Ok(TxnOutcome {
            succeeded: r.succeeded(),
            revision: r.header().map_or(0, |h| revision(h.revision())),
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
    ) -> Result<(), ClientError> {
        let options = WatchOptions::new()
            .with_range(prefix_end(prefix))
            .with_start_revision(i64::try_from(start_revision).unwrap_or(i64::MAX))
            // Progress notifications keep an idle stream from looking dead.
            .with_progress_notify();
        let mut refused = Vec::new();
        for (at, endpoint) in self.in_order() {
            // The stream's messages come through a bounded channel: the runtime's task
            // reads the stream, this thread handles them (and stops the task by
            // dropping the receiver).
            let (tx, rx) = std::sync::mpsc::sync_channel(64);
            let (mut client, key, options) =
                (endpoint.watches.clone(), prefix.to_vec(), options.clone());
            // Ended with this call (the reader), not at the stream's next message.
            let _task = AbortOnDrop(self.runtime().spawn(async move {
                let mut stream = match client.watch(key, Some(options)).await {
                    Ok(stream) => stream,
                    Err(e) => {
                        let _ = tx.send(Err(e));
                        return;
                    }
                };
                loop {
                    let next = stream.message().await;
                    let end = !matches!(next, Ok(Some(_)));
                    if tx.send(next).is_err() || end {
                        return; // the reader is gone, or the stream ended
                    }
                }
            }));
            let mut first_message = true;
            loop {
                let next = rx.recv().unwrap_or(Ok(None));
                match next {
                    Ok(Some(response)) => {
                        first_message = false;
                        self.current.store(at, Ordering::Relaxed);
                        if !on_message(WatchMessage::from_response(&response)) {
                            return Ok(());
                        }
                    }
                    Ok(None) => {
                        let why = format!("{}: the watch stream ended", endpoint.name);
                        return Err(self.failed_at(at, ClientError::NoAnswer(why)));
                    }
                    Err(e) => match ClientError::from_etcd(&endpoint.name, e) {
                        ClientError::Unreachable(why) if first_message => {
                            refused.push(why);
                            break; // the next endpoint
                        }
                        ClientError::Unreachable(why) => {
                            return Err(self.failed_at(at, ClientError::NoAnswer(why)))
                        }
                        other => return Err(self.failed_at(at, other)),
                    },
                }
            }
        }
        Err(ClientError::Unreachable(refused.join("; ")))
    }
}

/// Runs `request` on `runtime` and waits for its answer on a channel (not `block_on`,
/// which panics when the caller is itself inside a runtime); `None` if the task ended
/// without one.
fn run_on<T: Send + 'static>(
    runtime: &tokio::runtime::Runtime,
    request: impl Future<Output = T> + Send + 'static,
) -> Option<T> {
    let (tx, rx) = std::sync::mpsc::sync_channel(1);
    runtime.spawn(async move {
        let _ = tx.send(request.await);
    });
    rx.recv().ok()
}

/// Stops a task of the client's runtime when dropped (a watch whose reader returned).
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[test]
    fn prefix_end_is_the_next_key_after_every_key_with_the_prefix() {
        assert_eq!(prefix_end(b"/a/"), b"/a0".to_vec());
        assert_eq!(prefix_end(b"a\xff"), b"b".to_vec());
        assert_eq!(prefix_end(b"\xff\xff"), vec![0]);
    }

    #[test]
    fn an_endpoint_that_refuses_the_connection_is_unreachable_and_nothing_was_sent() {
        // A port nothing listens on: bind one, note it, close it.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let c = Client::new(vec![format!("127.0.0.1:{port}")], Duration::from_secs(2)).unwrap();
        let e = c.range(b"/x/", false).unwrap_err();
        assert!(matches!(e, ClientError::Unreachable(_)), "{e:?}");
        assert!(e.certainly_not_applied());
        // Said as a person reads it: the endpoint and the cause, no debug dump.
        let text = e.to_string();
        assert!(text.contains(&format!("127.0.0.1:{port}: ")), "{text}");
        assert!(text.to_lowercase().contains("connection refused"), "{text}");
        assert!(!text.contains("source:"), "{text}");
        let e = c.txn(&[], &[Op::Put(b"/x/a".to_vec(), b"1".to_vec())], &[]);
        assert!(matches!(e, Err(ClientError::Unreachable(_))), "{e:?}");
        let e = c.watch(b"/x/", 1, |_| true).unwrap_err();
        assert!(matches!(e, ClientError::Unreachable(_)), "{e:?}");
        // Made, used and dropped inside another runtime (an async caller): no panic.
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        rt.block_on(async move {
            let inner = Client::new(vec![format!("127.0.0.1:{port}")], Duration::from_secs(2));
            let e = inner.unwrap().range(b"/x/", true).unwrap_err();
            assert!(matches!(e, ClientError::Unreachable(_)), "{e:?}");
            drop(c);
        });
    }

    #[test]
    fn etcd_refusals_are_sorted_by_what_they_say_about_the_request() {
        let sort = |status: tonic::Status| {
            ClientError::from_etcd("m0", etcd_client::Error::GRpcStatus(status))
        };
        // etcd's own text for a transaction over its --max-txn-ops.
        let e = sort(tonic::Status::invalid_argument(
            "etcdserver: too many operations in txn request",
        ));
        assert!(matches!(e, ClientError::TooManyOperations(_)), "{e:?}");
        assert!(e.certainly_not_applied());
        let e = sort(tonic::Status::invalid_argument(
            "etcdserver: duplicate key given in txn request",
        ));
        assert!(matches!(e, ClientError::Refused(_)), "{e:?}");
        // etcd's own text once its space quota is reached.
        let e = sort(tonic::Status::resource_exhausted(
            "etcdserver: mvcc: database space exceeded",
        ));
        assert!(matches!(e, ClientError::NoSpace(_)), "{e:?}");
        assert!(
            !e.certainly_not_applied(),
            "etcd applies the txn that crosses the quota"
        );
        let e = sort(tonic::Status::deadline_exceeded("timeout"));
        assert!(matches!(e, ClientError::NoAnswer(_)), "{e:?}");
        assert!(!e.certainly_not_applied());
        let e = sort(tonic::Status::unavailable(
            "tcp connect error: Connection refused",
        ));
        assert!(matches!(e, ClientError::Unreachable(_)), "{e:?}");
        let e = sort(tonic::Status::unavailable(
            "error reading a body from connection",
        ));
        assert!(matches!(e, ClientError::NoAnswer(_)), "{e:?}");
    }

    /// A member that takes connections and hangs up on each (one killed under a request
    /// looks so): counts the connections it took.
    fn hang_up_endpoint() -> (String, Arc<AtomicUsize>) {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let name = listener.local_addr().unwrap().to_string();
        let taken = Arc::new(AtomicUsize::new(0));
        let count = taken.clone();
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                count.fetch_add(1, Ordering::SeqCst);
                drop(conn);
            }
        });
        (name, taken)
    }

    #[test]
    fn a_read_without_an_answer_goes_on_to_the_next_member_and_a_transaction_does_not() {
        let (first, first_taken) = hang_up_endpoint();
        let (second, second_taken) = hang_up_endpoint();
        let c = Client::new(vec![first.clone(), second.clone()], Duration::from_secs(2)).unwrap();
        let e = c.range(b"/x/", false).unwrap_err();
        assert!(matches!(e, ClientError::NoAnswer(_)), "{e:?}");
        let text = e.to_string();
        assert!(text.contains(&first) && text.contains(&second), "{text}");
        assert!(first_taken.load(Ordering::SeqCst) > 0);
        assert!(
            second_taken.load(Ordering::SeqCst) > 0,
            "the read was not tried on the second member"
        );
        // Each failure moved the start on by one: back to the first. A transaction that
        // got no answer there is not sent on to the second.
        let before = second_taken.load(Ordering::SeqCst);
        let e = c.txn(&[], &[Op::Put(b"/x/a".to_vec(), b"1".to_vec())], &[]);
        let e = e.unwrap_err();
        assert!(matches!(e, ClientError::NoAnswer(_)), "{e:?}");
        assert!(!e.certainly_not_applied());
        assert!(
            e.to_string().contains(&first) && !e.to_string().contains(&second),
            "{e}"
        );
        std::thread::sleep(Duration::from_millis(200));
        assert_eq!(
            second_taken.load(Ordering::SeqCst),
            before,
            "the transaction was sent on"
        );
    }

    #[test]
    fn an_endpoint_that_is_not_a_host_and_port_is_refused_at_construction() {
        let e = Client::new(vec!["not a host".into()], Duration::from_secs(1)).unwrap_err();
        assert!(matches!(e, ClientError::Refused(_)), "{e:?}");
        let e = Client::new(vec![], Duration::from_secs(1)).unwrap_err();
        assert!(matches!(e, ClientError::Refused(_)), "{e:?}");
    }
}
