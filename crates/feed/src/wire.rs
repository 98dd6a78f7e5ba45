//! The JSON documents of `serve`'s `/edge/v1/` endpoints (see `docs/edge-protocol.md`).
//!
//! Field names are the protocol: renaming one is a protocol change. Every document
//! deserializes with unknown fields ignored, so a newer server can add fields.

use inregion_model::{BindingId, Cidr, Iata, RegionDefinition, RegionKey, Timestamp};
use serde::{Deserialize, Serialize};

/// The path prefix of every feed endpoint.
pub const PATH_PREFIX: &str = "/edge/v1";

/// The longest a `changes` request may wait for a commit (`wait_ms` is capped to it).
pub const MAX_WAIT_MS: u64 = 30_000;

/// The longest node id.
pub const MAX_NODE_ID_LEN: usize = 64;

/// `GET /edge/v1/snapshot`: every live binding with the region it is bound to, at one
/// version.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Snapshot {
    /// The source's generation: random per start of `serve`. A change set from another
    /// epoch than the reader's snapshot must not be applied (re-read everything).
    pub epoch: u64,
    /// The global version the snapshot was taken at; follow on with `since = version`.
    pub version: u64,
    /// The newest version among purged tombstones: `changes` from below it is refused.
    pub purged_through: u64,
    /// Live bindings, sorted by CIDR, then binding id.
    pub bindings: Vec<FeedBinding>,
    /// Every account-defined region (managed regions come from the reference data).
    #[serde(default)]
    pub regions: Vec<RegionDefinition>,
}

/// One live binding: traffic to `cidr` is processed in `region_key`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FeedBinding {
    /// The binding.
    pub binding_id: BindingId,
    /// Its CIDR.
    pub cidr: Cidr,
    /// The region it is bound to.
    pub region_key: RegionKey,
}

/// `GET /edge/v1/changes?since=V&wait_ms=W`: bindings changed after `V`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Changes {
    /// The source's generation (see [`Snapshot::epoch`]).
    pub epoch: u64,
    /// The current version: the reader's next `since`.
    pub version: u64,
    /// The latest state of each binding changed after `since`, by ascending version.
    pub changes: Vec<FeedChange>,
}

/// One binding's latest state in a [`Changes`] answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FeedChange {
    /// The binding.
    pub binding_id: BindingId,
    /// Its CIDR.
    pub cidr: Cidr,
    /// The region it is (or was, when deleted) bound to.
    pub region_key: RegionKey,
    /// Deleted: remove it from the table.
    pub deleted: bool,
    /// The version of this record's last change.
    pub version: u64,
}

/// `PUT /edge/v1/nodes/{node_id}`: a node's registration and heartbeat.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeReport {
    /// The data center the node serves.
    pub dc: Iata,
    /// Where the node answers decisions (`host:port`), for operators.
    #[serde(default)]
    pub address: String,
    /// The newest version the node's table has applied.
    pub applied_version: u64,
}

/// One registered node, as the registry shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeView {
    /// The node's id (by default its data center's code).
    pub node_id: String,
    /// Its data center.
    pub dc: Iata,
    /// Where it answers decisions.
    pub address: String,
    /// The newest version it reported applied (0 until it reports, and after a
    /// restart of `serve`).
    pub applied_version: u64,
    /// Seen within the live timeout.
    pub live: bool,
    /// When it first registered.
    pub registered_at: Timestamp,
    /// Milliseconds since its last report (`null` when not seen since `serve` started).
    pub last_seen_ms_ago: Option<u64>,
}

/// The answer to a heartbeat.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HeartbeatAnswer {
    /// The node as registered now.
    pub node: NodeView,
    /// Every registered node (live or not).
    pub nodes: Vec<NodeView>,
    /// The highest version a majority of registered nodes have applied.
    pub activated_through: u64,
    /// How often a node should report.
    pub heartbeat_ms: u64,
    /// A node not seen for this long is not live.
    pub live_timeout_ms: u64,
}

/// `GET /edge/v1/nodes`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Registry {
    /// Every registered node.
    pub nodes: Vec<NodeView>,
    /// The highest version a majority of registered nodes have applied.
    pub activated_through: u64,
    /// How many nodes make a majority now (⌊registered/2⌋ + 1).
    pub majority: usize,
    /// How many nodes are registered.
    pub registered: usize,
}

/// The body of every error answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorBody {
    /// What went wrong.
    pub error: ErrorDetail,
}

/// What went wrong, in an [`ErrorBody`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorDetail {
    /// Machine-readable kind.
    pub code: ErrorCode,
    /// For people.
    pub message: String,
}

/// The kinds of feed errors, with their HTTP status.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    /// 401: missing or wrong edge token.
    Unauthorized,
    /// 400: malformed request.
    BadRequest,
    /// 404: unknown node.
    NotFound,
    /// 410: `since` is too far behind (or ahead of) the server: re-read the snapshot.
    TooFarBehind,
    /// 503: the server cannot answer now.
    Unavailable,
}

impl ErrorCode {
    /// The HTTP status this code is sent with.
    pub fn status(self) -> u16 {
        match self {
            ErrorCode::Unauthorized => 401,
            ErrorCode::BadRequest => 400,
            ErrorCode::NotFound => 404,
            ErrorCode::TooFarBehind => 410,
            ErrorCode::Unavailable => 503,
        }
    }
}

/// Whether `id` is a valid node id: 1–64 characters of `[A-Za-z0-9._-]`.
pub fn is_node_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= MAX_NODE_ID_LEN
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn node_ids() {
        assert!(is_node_id("FRA"));
        assert!(is_node_id("fra-2.a_b"));
        assert!(!is_node_id(""));
        assert!(!is_node_id("a/b"));
        assert!(!is_node_id("é"));
        assert!(!is_node_id(&"a".repeat(65)));
        assert!(is_node_id(&"a".repeat(64)));
    }

    #[test]
    fn documents_read_back_and_tolerate_new_fields() {
        let c = Changes {
            epoch: 7,
            version: 45,
            changes: vec![FeedChange {
                binding_id: BindingId::parse("0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0").unwrap(),
                cidr: Cidr::parse_strict("203.0.113.0/24").unwrap(),
                region_key: RegionKey::parse("eu").unwrap(),
                deleted: false,
                version: 43,
            }],
        };
        let mut v = serde_json::to_value(&c).unwrap();
        assert_eq!(v["changes"][0]["cidr"], "203.0.113.0/24");
        v["future"] = serde_json::json!(1);
        let back: Changes = serde_json::from_value(v).unwrap();
        assert_eq!(back, c);
        let e: ErrorBody =
            serde_json::from_str(r#"{"error":{"code":"too_far_behind","message":"x"}}"#).unwrap();
        assert_eq!(e.error.code.status(), 410);
    }
}
