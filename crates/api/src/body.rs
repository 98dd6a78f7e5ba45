//! Request bodies and query strings: syntax only (contract §1, §4.3).
//!
//! The body is read as bytes by the handler and parsed here only *after* the caller has
//! been authenticated and authorized, so that the contract's precedence holds
//! (authentication → permission → entitlement → validation): a caller without access
//! learns nothing from a malformed body.

use crate::envelope::{ErrorItem, HttpError};
use axum::http::StatusCode;
use serde::de::DeserializeOwned;
use serde_json::{Map, Value};

/// 1100: the body is not JSON, or not a JSON object, or a field has the wrong JSON type.
pub(crate) const MALFORMED: u32 = 1100;

/// Parses a body that must be a JSON object. An empty body counts as `{}`, so that a
/// missing field is reported as missing (1101 downstream) rather than as malformed.
pub(crate) fn json_object(bytes: &[u8]) -> Result<Map<String, Value>, HttpError> {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Ok(Map::new());
    }
    if let Some(key) = duplicate_key(bytes) {
        return Err(HttpError::bad_request(
            MALFORMED,
            format!("malformed request body: the key {key:?} appears twice in one object"),
        ));
    }
    match serde_json::from_slice::<Value>(bytes) {
        Ok(Value::Object(map)) => Ok(map),
        Ok(other) => Err(HttpError::bad_request(
            MALFORMED,
            format!(
                "malformed request body: expected a JSON object, got {}",
                json_type(&other)
            ),
        )),
        Err(e) => Err(HttpError::bad_request(
            MALFORMED,
            format!("malformed request body: not valid JSON ({e})"),
        )),
    }
}

/// The first key that appears twice in one JSON object of `bytes`, at any depth.
///
/// Refused rather than "last one wins" (serde_json's choice): a body such as
/// `{"region_key": "eu", "region_key": "us"}` is ambiguous, and proxies or other parsers
/// in front of the server may pick the other value. Syntax errors are left to the parse
/// that follows (`None` here).
fn duplicate_key(bytes: &[u8]) -> Option<String> {
    use serde::de::{Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
    struct Check(Option<String>);
    struct V<'a>(&'a mut Option<String>);
    impl<'de> Visitor<'de> for V<'_> {
        type Value = ();
        fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("any JSON value")
        }
        fn visit_map<A: MapAccess<'de>>(self, mut m: A) -> Result<(), A::Error> {
            let mut seen = std::collections::HashSet::new();
            while let Some(k) = m.next_key::<String>()? {
                m.next_value_seed(Seed(self.0))?;
                if self.0.is_none() && !seen.insert(k.clone()) {
                    *self.0 = Some(k);
                }
            }
            Ok(())
        }
        fn visit_seq<A: SeqAccess<'de>>(self, mut s: A) -> Result<(), A::Error> {
            while s.next_element_seed(Seed(self.0))?.is_some() {}
            Ok(())
        }
        fn visit_bool<E>(self, _: bool) -> Result<(), E> {
            Ok(())
        }
        fn visit_i64<E>(self, _: i64) -> Result<(), E> {
            Ok(())
        }
        fn visit_u64<E>(self, _: u64) -> Result<(), E> {
            Ok(())
        }
        fn visit_f64<E>(self, _: f64) -> Result<(), E> {
            Ok(())
        }
        fn visit_str<E>(self, _: &str) -> Result<(), E> {
            Ok(())
        }
        fn visit_unit<E>(self) -> Result<(), E> {
            Ok(())
        }
    }
    struct Seed<'a>(&'a mut Option<String>);
    impl<'de> serde::de::DeserializeSeed<'de> for Seed<'_> {
        type Value = ();
        fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
            d.deserialize_any(V(self.0))
        }
    }
    let _ = IgnoredAny;
    let mut found = Check(None);
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let _ = serde::de::DeserializeSeed::deserialize(Seed(&mut found.0), &mut de);
    found.0
}

/// Deserializes a JSON object into `T` (whose fields are usually `Option<...>` so that
/// presence is checked by the control plane). A field of the wrong JSON type → 1100 with
/// `source.pointer` naming it. Unknown fields are ignored unless `T` denies them.
pub(crate) fn typed<T: DeserializeOwned>(map: Map<String, Value>) -> Result<T, HttpError> {
    serde_json::from_value(Value::Object(map)).map_err(|e| {
        let text = e.to_string();
        let mut item = ErrorItem::new(MALFORMED, format!("malformed request body: {text}"));
        if let Some(field) = field_in_message(&text) {
            item = item.with_pointer(format!("/{field}"));
        }
        HttpError::from_item(StatusCode::BAD_REQUEST, item)
    })
}

/// Checks that a field, if present and not `null`, is a string; returns it.
pub(crate) fn opt_string(
    map: &Map<String, Value>,
    field: &str,
) -> Result<Option<String>, HttpError> {
    match map.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(other) => Err(wrong_type(field, "a string", other)),
    }
}

/// Checks that a field, if present and not `null`, is a boolean; returns it.
pub(crate) fn opt_bool(map: &Map<String, Value>, field: &str) -> Result<Option<bool>, HttpError> {
    match map.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Bool(b)) => Ok(Some(*b)),
        Some(other) => Err(wrong_type(field, "a boolean", other)),
    }
}

/// 400/1100 naming the field and the expected type.
pub(crate) fn wrong_type(field: &str, expected: &str, got: &Value) -> HttpError {
    HttpError::from_item(
        StatusCode::BAD_REQUEST,
        ErrorItem::new(
            MALFORMED,
            format!(
                "malformed request body: `{field}` must be {expected}, got {}",
                json_type(got)
            ),
        )
        .with_pointer(format!("/{field}")),
    )
}

/// The JSON type name of a value, for messages.
pub(crate) fn json_type(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// serde's messages look like "invalid type: integer `5`, expected a string" without the
/// field; the custom ones we produce name it in backticks. Best effort only.
fn field_in_message(text: &str) -> Option<&str> {
    let start = text.find("field `")? + "field `".len();
    let len = text[start..].find('`')?;
    Some(&text[start..start + len])
}

/// The query string as ordered `(name, value)` pairs, percent-decoded. A repeated name
/// keeps its last value when looked up with [`QueryParams::get`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct QueryParams(Vec<(String, String)>);

impl QueryParams {
    /// Parses `a=1&b=2` (without the leading `?`); `None` is an empty query.
    pub(crate) fn parse(raw: Option<&str>) -> Self {
        let pairs = raw
            .map(|q| {
                q.split('&')
                    .filter(|p| !p.is_empty())
                    .map(|p| {
                        let (k, v) = p.split_once('=').unwrap_or((p, ""));
                        (decode(k), decode(v))
                    })
                    .collect()
            })
            .unwrap_or_default();
        Self(pairs)
    }

    /// The last value given for `name`.
    pub(crate) fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .rev()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

/// `application/x-www-form-urlencoded` decoding: `+` is a space, `%XX` a byte; invalid
/// escapes are kept literally and invalid UTF-8 is replaced (the value is then simply
/// refused by whoever validates it).
fn decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => match (hex(bytes[i + 1]), hex(bytes[i + 2])) {
                (Some(h), Some(l)) => {
                    out.push(h * 16 + l);
                    i += 2;
                }
                _ => out.push(b'%'),
            },
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn hex(b: u8) -> Option<u8> {
    (b as char).to_digit(16).map(|d| d as u8)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn objects_only() {
        assert!(json_object(b"").unwrap().is_empty());
        assert!(json_object(b"  \n").unwrap().is_empty());
        assert_eq!(json_object(br#"{"a":1}"#).unwrap().len(), 1);
        for bad in [
            &b"[]"[..],
            b"1",
            b"\"x\"",
            b"null",
            b"{",
            b"{\"a\":}",
            b"\xff",
        ] {
            let e = json_object(bad).unwrap_err();
            assert_eq!((e.status.as_u16(), e.code()), (400, 1100));
        }
    }

    #[test]
    fn typed_fields() {
        let m = json_object(br#"{"a": 5, "b": true}"#).unwrap();
        assert!(opt_string(&m, "a").is_err());
        assert_eq!(opt_bool(&m, "b").unwrap(), Some(true));
        assert_eq!(opt_string(&m, "zzz").unwrap(), None);
        let e = opt_string(&m, "a").unwrap_err();
        assert_eq!(e.errors[0].source.as_ref().unwrap().pointer, "/a");
    }

    #[test]
    fn query_decoding() {
        let q = QueryParams::parse(Some(
            "per_page=10&cursor=a%3D%3D&type=man+aged&x&per_page=5",
        ));
        assert_eq!(q.get("per_page"), Some("5"));
        assert_eq!(q.get("cursor"), Some("a=="));
        assert_eq!(q.get("type"), Some("man aged"));
        assert_eq!(q.get("x"), Some(""));
        assert_eq!(q.get("nope"), None);
        assert_eq!(QueryParams::parse(Some("a=%zz%4")).get("a"), Some("%zz%4"));
        assert_eq!(QueryParams::parse(None), QueryParams::default());
    }

    #[test]
    fn duplicate_keys_are_refused_at_any_depth() {
        assert_eq!(duplicate_key(br#"{"a": 1, "a": 2}"#).as_deref(), Some("a"));
        assert_eq!(
            duplicate_key(br#"{"a": [{"b": 1, "b": 2}]}"#).as_deref(),
            Some("b")
        );
        assert_eq!(duplicate_key(br#"{"a": {"b": 1}, "b": {"a": 2}}"#), None);
        assert_eq!(duplicate_key(br#"not json"#), None);
        let e = json_object(br#"{"region_key": "eu", "region_key": "us"}"#).unwrap_err();
        assert_eq!(e.status, axum::http::StatusCode::BAD_REQUEST);
    }
}
