//! Credentials: from the request headers to a [`Principal`] (contract §2).
//!
//! The header syntax rules (9106, 6003 + 6102/6103/6111) and the credential checks
//! (9109, 9103) both live in [`inregion_control`]: this module only reads the three
//! headers, hands them over with the client address, and renders the typed error.

use crate::envelope::HttpError;
use axum::http::HeaderMap;
use inregion_control::{ControlPlane, Credentials, Principal, Timestamp};
use std::net::IpAddr;

/// The value of header `name` as text. A value that is not visible ASCII is passed on as
/// the empty string, which every credential check then refuses as malformed.
fn header<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).map(|v| v.to_str().unwrap_or(""))
}

/// Reads the credential headers (`Authorization`, `X-Auth-Email`, `X-Auth-Key`).
pub(crate) fn credentials(headers: &HeaderMap) -> Result<Credentials, HttpError> {
    Credentials::from_headers(
        header(headers, "authorization"),
        header(headers, "x-auth-email"),
        header(headers, "x-auth-key"),
    )
    .map_err(|e| HttpError::from_control(&e))
}

/// Authenticates the request: header syntax, then the credential itself (validity,
/// expiry, client-IP restriction).
pub(crate) fn authenticate(
    control: &ControlPlane,
    headers: &HeaderMap,
    client_ip: Option<IpAddr>,
    now: Timestamp,
) -> Result<Principal, HttpError> {
    let creds = credentials(headers)?;
    control
        .authenticate(&creds, client_ip, now)
        .map_err(|e| HttpError::from_control(&e))
}

/// True when the request carries any Cloudflare credential header (the admin surface
/// refuses those outright, so that a Cloudflare token can never reach it).
pub(crate) fn has_cloudflare_credentials(headers: &HeaderMap) -> bool {
    ["authorization", "x-auth-email", "x-auth-key"]
        .iter()
        .any(|h| headers.contains_key(*h))
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn h(pairs: &[(&'static str, &[u8])]) -> HeaderMap {
        let mut m = HeaderMap::new();
        for (k, v) in pairs {
            m.insert(*k, HeaderValue::from_bytes(v).unwrap());
        }
        m
    }

    fn chain(e: &HttpError) -> Vec<u32> {
        e.errors[0]
            .error_chain
            .as_ref()
            .map(|c| c.iter().map(|i| i.code).collect())
            .unwrap_or_default()
    }

    #[test]
    fn header_errors_render_with_chains() {
        let e = credentials(&HeaderMap::new()).unwrap_err();
        assert_eq!((e.status.as_u16(), e.code()), (400, 9106));
        let e = credentials(&h(&[("authorization", b"Basic abc")])).unwrap_err();
        assert_eq!(
            (e.status.as_u16(), e.code(), chain(&e)),
            (400, 6003, vec![6111])
        );
        // Non-ASCII bytes in the header: malformed, not a panic and not "missing".
        let e = credentials(&h(&[("authorization", b"Bearer \xff\xfe")])).unwrap_err();
        assert_eq!(chain(&e), vec![6111]);
        let e = credentials(&h(&[("x-auth-email", b"nope"), ("x-auth-key", b"k")])).unwrap_err();
        assert_eq!((e.code(), chain(&e)), (6003, vec![6102, 6103]));
        assert!(credentials(&h(&[(
            "authorization",
            b"Bearer abcdefghijklmnopqrstuvwxyz"
        )]))
        .is_ok());
    }

    #[test]
    fn detects_cloudflare_headers() {
        assert!(!has_cloudflare_credentials(&HeaderMap::new()));
        assert!(has_cloudflare_credentials(&h(&[("x-auth-key", b"x")])));
    }
}
