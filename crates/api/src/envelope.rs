//! Cloudflare's v4 response envelope (contract §4.1–4.3) and the HTTP error type.
//!
//! Every response this crate writes, success or failure, goes through here, so the shape
//! is decided in one place: `{success, errors, messages, result}` plus `result_info` on
//! cursor-paginated lists, `result: null` on failures and on deletes.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use utoipa::ToSchema;

/// One item of `errors` or `messages`: `{code, message, error_chain?, source?}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
#[schema(as = Message)]
pub struct ErrorItem {
    /// Cloudflare-style numeric code (≥ 1000).
    #[schema(minimum = 1000)]
    pub code: u32,
    /// Human-readable text.
    pub message: String,
    /// Nested causes (DLS `dls_coded_message.error_chain`), omitted when empty.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(no_recursion)]
    pub error_chain: Option<Vec<ErrorItem>>,
    /// Where in the request the problem is (Addressing `ResponseInfo.source`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub source: Option<ErrorSource>,
}

impl ErrorItem {
    /// An item with a code and a message only.
    pub fn new(code: u32, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
            error_chain: None,
            source: None,
        }
    }

    /// Adds nested causes.
    pub fn with_chain(mut self, chain: Vec<ErrorItem>) -> Self {
        self.error_chain = Some(chain);
        self
    }

    /// Adds a JSON Pointer to the offending request field.
    pub fn with_pointer(mut self, pointer: impl Into<String>) -> Self {
        self.source = Some(ErrorSource {
            pointer: pointer.into(),
        });
        self
    }
}

/// `source` of an error item: a JSON Pointer into the request body.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct ErrorSource {
    /// JSON Pointer (RFC 6901), such as `/ips/0`.
    pub pointer: String,
}

/// `result_info` of a cursor-paginated list: exactly these three fields (§4.3).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
#[schema(as = CursorResultInfo)]
#[serde(deny_unknown_fields)]
pub struct ResultInfo {
    /// Items on this page.
    pub count: usize,
    /// The effective page size.
    #[schema(minimum = 1, maximum = 100)]
    pub per_page: u32,
    /// Cursor for the next page; the empty string on the last page.
    pub cursor: String,
}

/// The envelope as serialized. `result` is always present (`null` when `None`).
#[derive(Serialize)]
struct Envelope<'a, T: Serialize> {
    success: bool,
    errors: &'a [ErrorItem],
    messages: &'a [ErrorItem],
    result: Option<&'a T>,
    #[serde(skip_serializing_if = "Option::is_none")]
    result_info: Option<&'a ResultInfo>,
}

const JSON: HeaderValue = HeaderValue::from_static("application/json");

/// Builds a JSON response with the given status and already-serialized body.
fn json_response(status: StatusCode, body: Vec<u8>) -> Response {
    let mut resp = (status, body).into_response();
    resp.headers_mut().insert(header::CONTENT_TYPE, JSON);
    resp
}

fn serialize<T: Serialize>(env: &Envelope<'_, T>) -> Vec<u8> {
    // Serializing our own plain structs cannot fail (no maps with non-string keys, no
    // custom serializers that error); fall back to a fixed 500 body just in case.
    serde_json::to_vec(env).unwrap_or_else(|_| {
        br#"{"success":false,"errors":[{"code":1000,"message":"internal error: response serialization failed"}],"messages":[],"result":null}"#.to_vec()
    })
}

/// A successful response: `{success: true, errors: [], messages, result, result_info?}`.
pub struct Success<T: Serialize> {
    status: StatusCode,
    result: Option<T>,
    messages: Vec<ErrorItem>,
    result_info: Option<ResultInfo>,
}

impl<T: Serialize> Success<T> {
    /// 200 with `result`.
    pub fn ok(result: T) -> Self {
        Self {
            status: StatusCode::OK,
            result: Some(result),
            messages: Vec::new(),
            result_info: None,
        }
    }

    /// 201 with `result`.
    pub fn created(result: T) -> Self {
        Self {
            status: StatusCode::CREATED,
            ..Self::ok(result)
        }
    }

    /// 200 with a page of items and its `result_info`.
    pub fn page(result: T, info: ResultInfo) -> Self {
        Self {
            result_info: Some(info),
            ..Self::ok(result)
        }
    }

    /// Adds non-fatal notices to `messages`.
    pub fn with_messages(mut self, messages: Vec<ErrorItem>) -> Self {
        self.messages = messages;
        self
    }
}

impl Success<()> {
    /// 200 with `result: null` (deletes).
    pub fn null() -> Self {
        Self {
            status: StatusCode::OK,
            result: None,
            messages: Vec::new(),
            result_info: None,
        }
    }
}

impl<T: Serialize> IntoResponse for Success<T> {
    fn into_response(self) -> Response {
        let body = serialize(&Envelope {
            success: true,
            errors: &[],
            messages: &self.messages,
            result: self.result.as_ref(),
            result_info: self.result_info.as_ref(),
        });
        json_response(self.status, body)
    }
}

/// A failed request, rendered as the failure envelope (§4.2).
///
/// 4xx responses carry `x-should-retry: false`: the official SDKs otherwise retry 409
/// (and would turn a conflict into a slow, repeated one); none of our 4xx is transient.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("HTTP {status}: {errors:?}")]
pub struct HttpError {
    /// HTTP status.
    pub status: StatusCode,
    /// At least one item.
    pub errors: Vec<ErrorItem>,
    /// Non-fatal notices sent along with the errors (usually empty).
    pub messages: Vec<ErrorItem>,
    /// `x-should-retry`, where the error decides it rather than the status (see
    /// [`inregion_control::ApiError::should_retry`]).
    pub should_retry: Option<bool>,
}

impl HttpError {
    /// One error item with `status`.
    pub fn new(status: StatusCode, code: u32, message: impl Into<String>) -> Self {
        Self::from_item(status, ErrorItem::new(code, message))
    }

    /// One prepared error item with `status`.
    pub fn from_item(status: StatusCode, item: ErrorItem) -> Self {
        Self {
            status,
            errors: vec![item],
            messages: Vec::new(),
            should_retry: None,
        }
    }

    /// Several error items with `status`.
    pub fn many(status: StatusCode, errors: Vec<ErrorItem>) -> Self {
        Self {
            status,
            errors,
            messages: Vec::new(),
            should_retry: None,
        }
    }

    /// The same error without `source` on any item: the DLS error schema
    /// (`dls_coded_message`) has no `source`, only Addressing's `ResponseInfo` has
    /// (contract §4.2), so DLS routes drop the pointer their body checks attach.
    pub fn without_source(mut self) -> Self {
        for item in self.errors.iter_mut().chain(self.messages.iter_mut()) {
            item.source = None;
        }
        self
    }

    /// 400 with one item.
    pub fn bad_request(code: u32, message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, code, message)
    }

    /// 500 with code 1000: a bug or a storage failure, never a client mistake.
    pub fn internal(message: impl Into<String>) -> Self {
        Self::new(StatusCode::INTERNAL_SERVER_ERROR, 1000, message)
    }

    /// Renders a control-plane error: its code, status, message, `error_chain` and
    /// `source.pointer`. 5xx errors are logged here, since their text is all the
    /// operator will get.
    pub fn from_control<E: inregion_control::ApiError + ?Sized>(e: &E) -> Self {
        let mut item = ErrorItem::new(e.code(), e.to_string());
        let chain = e.error_chain();
        if !chain.is_empty() {
            item = item.with_chain(
                chain
                    .into_iter()
                    .map(|(code, message)| ErrorItem::new(code, message))
                    .collect(),
            );
        }
        if let Some(p) = e.pointer() {
            item = item.with_pointer(p);
        }
        let status =
            StatusCode::from_u16(e.http_status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        if status.is_server_error() {
            tracing::error!(code = e.code(), error = %e, "control plane failure");
        }
        Self {
            should_retry: e.should_retry(),
            ..Self::from_item(status, item)
        }
    }

    /// The first error code (tests and logs).
    pub fn code(&self) -> u32 {
        self.errors.first().map(|e| e.code).unwrap_or(0)
    }
}

impl IntoResponse for HttpError {
    fn into_response(self) -> Response {
        let body = serialize::<()>(&Envelope {
            success: false,
            errors: &self.errors,
            messages: &self.messages,
            result: None,
            result_info: None,
        });
        let mut resp = json_response(self.status, body);
        if let Some(retry) = self.should_retry {
            let v = if retry { "true" } else { "false" };
            resp.headers_mut()
                .insert("x-should-retry", HeaderValue::from_static(v));
        } else if self.status.is_client_error() {
            resp.headers_mut()
                .insert("x-should-retry", HeaderValue::from_static("false"));
        } else if self.status == StatusCode::SERVICE_UNAVAILABLE {
            // The store is unavailable (etcd without quorum): nothing happened, and the
            // same request can succeed later.
            resp.headers_mut()
                .insert("x-should-retry", HeaderValue::from_static("true"));
        }
        resp
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn body_json(resp: Response) -> serde_json::Value {
        let bytes = axum::body::to_bytes(resp.into_body(), usize::MAX)
            .await
            .unwrap();
        serde_json::from_slice(&bytes).unwrap()
    }

    #[tokio::test]
    async fn success_envelope_has_all_fields() {
        let resp = Success::ok(serde_json::json!({"a": 1})).into_response();
        assert_eq!(resp.status(), StatusCode::OK);
        assert_eq!(resp.headers()[header::CONTENT_TYPE], "application/json");
        let v = body_json(resp).await;
        assert_eq!(
            v,
            serde_json::json!({"success": true, "errors": [], "messages": [], "result": {"a": 1}})
        );
    }

    #[tokio::test]
    async fn null_result_and_page() {
        let v = body_json(Success::null().into_response()).await;
        assert_eq!(v["result"], serde_json::Value::Null);
        assert!(v.get("result_info").is_none());
        let info = ResultInfo {
            count: 0,
            per_page: 25,
            cursor: String::new(),
        };
        let v = body_json(Success::page(Vec::<u8>::new(), info).into_response()).await;
        assert_eq!(
            v["result_info"],
            serde_json::json!({"count": 0, "per_page": 25, "cursor": ""})
        );
    }

    #[tokio::test]
    async fn failure_envelope_and_retry_header() {
        let err = HttpError::from_item(
            StatusCode::BAD_REQUEST,
            ErrorItem::new(6003, "Invalid request headers").with_chain(vec![ErrorItem::new(
                6111,
                "Invalid format for Authorization header",
            )]),
        );
        let resp = err.into_response();
        assert_eq!(resp.headers()["x-should-retry"], "false");
        let v = body_json(resp).await;
        assert_eq!(v["success"], false);
        assert_eq!(v["result"], serde_json::Value::Null);
        assert_eq!(v["errors"][0]["code"], 6003);
        assert_eq!(v["errors"][0]["error_chain"][0]["code"], 6111);
        assert!(v["errors"][0].get("source").is_none());
        let resp = HttpError::internal("boom").into_response();
        assert!(resp.headers().get("x-should-retry").is_none());
    }
}
