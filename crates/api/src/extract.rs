//! Request extractors whose rejections are rendered as Cloudflare envelopes.

use crate::body::MALFORMED;
use crate::envelope::{ErrorItem, HttpError};
use axum::body::Bytes;
use axum::extract::{ConnectInfo, FromRequest, FromRequestParts, Path, Request};
use axum::http::request::Parts;
use axum::http::StatusCode;
use std::net::{IpAddr, SocketAddr};

/// The routing error for a path that matches no route (contract §5.8): 400 with 7003
/// ("Could not route to `<path>`, ...") followed by 7000 ("No route for that URI").
pub(crate) fn no_route(path: &str) -> HttpError {
    // Cloudflare names the path below the API prefix.
    let shown = path.strip_prefix("/client/v4").unwrap_or(path);
    HttpError::many(
        StatusCode::BAD_REQUEST,
        vec![
            ErrorItem::new(
                7003,
                format!("Could not route to {shown}, perhaps your object identifier is invalid?"),
            ),
            ErrorItem::new(7000, "No route for that URI"),
        ],
    )
}

/// Path parameters; a parameter that does not decode (invalid percent-encoding or
/// UTF-8) is a routing error, as for an unknown path.
pub(crate) struct PathParams<T>(pub(crate) T);

impl<T, S> FromRequestParts<S> for PathParams<T>
where
    Path<T>: FromRequestParts<S>,
    S: Send + Sync,
{
    type Rejection = HttpError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        match Path::<T>::from_request_parts(parts, state).await {
            Ok(Path(v)) => Ok(Self(v)),
            Err(_) => Err(no_route(parts.uri.path())),
        }
    }
}

/// The client's IP address, when the server was started with connection info (always,
/// in `inregion serve`; in-process tests with `oneshot` may lack it). Used for tokens
/// restricted by client IP.
pub(crate) struct ClientIp(pub(crate) Option<IpAddr>);

impl<S: Send + Sync> FromRequestParts<S> for ClientIp {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(Self(
            parts
                .extensions
                .get::<ConnectInfo<SocketAddr>>()
                .map(|c| c.0.ip()),
        ))
    }
}

/// The raw request body, read up to the configured limit. Too large → 413 with code
/// 1100; too slow (the body-read timeout) → 408 with code 1100; a broken transfer → 400
/// with code 1100. Parsing happens later (see
/// [`crate::body`]), after authorization.
pub(crate) struct RawBody(pub(crate) Bytes);

impl<S: Send + Sync> FromRequest<S> for RawBody {
    type Rejection = HttpError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        match Bytes::from_request(req, state).await {
            Ok(b) => Ok(Self(b)),
            Err(rej) if rej.status() == StatusCode::PAYLOAD_TOO_LARGE => Err(HttpError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                MALFORMED,
                "request body too large",
            )),
            // The body-read timeout (tower-http's `TimeoutBody`) surfaces here as a
            // failed read whose cause names the timeout.
            Err(rej) if rej.body_text().contains("timeout") => Err(HttpError::new(
                StatusCode::REQUEST_TIMEOUT,
                MALFORMED,
                "the request body did not arrive in time",
            )),
            Err(rej) => Err(HttpError::bad_request(
                MALFORMED,
                format!("could not read the request body: {}", rej.body_text()),
            )),
        }
    }
}
