//! Where the feed comes from: the [`FeedSource`] trait and its HTTP implementation
//! ([`HttpSource`], `inregion serve`'s `/edge/v1/` endpoints).

use std::future::Future;
use std::time::Duration;

use inregion_feed::wire::{Changes, ErrorBody, ErrorCode, HeartbeatAnswer, NodeReport, Snapshot};

/// Why a source request failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SourceError {
    /// The request did not complete (connection refused or cut, timeout).
    #[error("transport: {0}")]
    Transport(String),
    /// The answer was not the expected JSON document (for example cut mid-body).
    #[error("unparsable answer: {0}")]
    Unparsable(String),
    /// `410 too_far_behind`: read the snapshot again.
    #[error("too far behind: {0}")]
    TooFarBehind(String),
    /// `401`: the edge token was refused.
    #[error("unauthorized: the source refused the edge token ({0})")]
    Unauthorized(String),
    /// `404` (an unknown node on `DELETE`).
    #[error("not found: {0}")]
    NotFound(String),
    /// Any other non-2xx answer.
    #[error("HTTP {status}: {message}")]
    Status {
        /// The HTTP status.
        status: u16,
        /// The error message (or the body's start).
        message: String,
    },
}

/// A binding feed and node registry. Implemented over HTTP by [`HttpSource`]; another
/// transport (etcd) implements the same four operations.
pub trait FeedSource: Send + Sync + 'static {
    /// Every live binding and custom region at one version.
    fn snapshot(&self) -> impl Future<Output = Result<Snapshot, SourceError>> + Send;
    /// The bindings changed after `since`, waiting up to `wait` for one.
    fn changes(
        &self,
        since: u64,
        wait: Duration,
    ) -> impl Future<Output = Result<Changes, SourceError>> + Send;
    /// Registers or refreshes `node_id` (a heartbeat).
    fn report(
        &self,
        node_id: &str,
        report: &NodeReport,
    ) -> impl Future<Output = Result<HeartbeatAnswer, SourceError>> + Send;
    /// Deregisters `node_id`.
    fn deregister(&self, node_id: &str) -> impl Future<Output = Result<(), SourceError>> + Send;
    /// A description for status and logs (`http://HOST:PORT`).
    fn describe(&self) -> String;
}

/// `inregion serve`'s `/edge/v1/` endpoints over HTTP/1.1, with the edge token.
#[derive(Debug, Clone)]
pub struct HttpSource {
    base: String,
    token: String,
    client: reqwest::Client,
}

impl HttpSource {
    /// A source at `base` (`http://HOST:PORT`, no trailing slash) sending `token`.
    pub fn new(base: &str, token: &str) -> Result<Self, SourceError> {
        let client = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(5))
            .build()
            .map_err(|e| SourceError::Transport(e.to_string()))?;
        Ok(HttpSource {
            base: base.trim_end_matches('/').to_owned(),
            token: token.to_owned(),
            client,
        })
    }

    async fn send<T: serde::de::DeserializeOwned>(
        &self,
        req: reqwest::RequestBuilder,
    ) -> Result<T, SourceError> {
        let resp = req
            .bearer_auth(&self.token)
            .send()
            .await
            .map_err(|e| SourceError::Transport(error_chain(&e)))?;
        let status = resp.status().as_u16();
        let body = resp
            .bytes()
            .await
            .map_err(|e| SourceError::Transport(error_chain(&e)))?;
        if (200..300).contains(&status) {
            return serde_json::from_slice(&body)
                .map_err(|e| SourceError::Unparsable(e.to_string()));
        }
        Err(status_error(status, &body))
    }
}

/// The error for a non-2xx answer: by the body's `code` when it parses, else by status.
fn status_error(status: u16, body: &[u8]) -> SourceError {
    let (code, message) = match serde_json::from_slice::<ErrorBody>(body) {
        Ok(b) => (Some(b.error.code), b.error.message),
        Err(_) => (
            None,
            String::from_utf8_lossy(&body[..body.len().min(200)]).into_owned(),
        ),
    };
    match (code, status) {
        (Some(ErrorCode::TooFarBehind), _) | (None, 410) => SourceError::TooFarBehind(message),
        (Some(ErrorCode::Unauthorized), _) | (None, 401) => SourceError::Unauthorized(message),
        (Some(ErrorCode::NotFound), _) | (None, 404) => SourceError::NotFound(message),
        _ => SourceError::Status { status, message },
    }
}

fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        s.push_str(": ");
        s.push_str(&c.to_string());
        cur = c.source();
    }
    s
}

impl FeedSource for HttpSource {
    async fn snapshot(&self) -> Result<Snapshot, SourceError> {
        let url = format!("{}/edge/v1/snapshot", self.base);
        self.send(self.client.get(url).timeout(Duration::from_secs(30)))
            .await
    }

    async fn changes(&self, since: u64, wait: Duration) -> Result<Changes, SourceError> {
        let wait_ms = u64::try_from(wait.as_millis()).unwrap_or(u64::MAX);
        let url = format!(
            "{}/edge/v1/changes?since={since}&wait_ms={wait_ms}",
            self.base
        );
        self.send(self.client.get(url).timeout(wait + Duration::from_secs(10)))
            .await
    }

    async fn report(
        &self,
        node_id: &str,
        report: &NodeReport,
    ) -> Result<HeartbeatAnswer, SourceError> {
        let url = format!("{}/edge/v1/nodes/{node_id}", self.base);
        self.send(
            self.client
                .put(url)
                .json(report)
                .timeout(Duration::from_secs(10)),
        )
        .await
    }

    async fn deregister(&self, node_id: &str) -> Result<(), SourceError> {
        let url = format!("{}/edge/v1/nodes/{node_id}", self.base);
        self.send::<serde_json::Value>(self.client.delete(url).timeout(Duration::from_secs(5)))
            .await
            .map(|_| ())
    }

    fn describe(&self) -> String {
        self.base.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_answers_map_to_kinds() {
        let b = br#"{"error":{"code":"too_far_behind","message":"v 3"}}"#;
        assert_eq!(
            status_error(410, b),
            SourceError::TooFarBehind("v 3".into())
        );
        assert!(matches!(
            status_error(401, b"nope"),
            SourceError::Unauthorized(_)
        ));
        assert!(matches!(status_error(404, b""), SourceError::NotFound(_)));
        assert!(matches!(
            status_error(503, b"x"),
            SourceError::Status { status: 503, .. }
        ));
    }
}
