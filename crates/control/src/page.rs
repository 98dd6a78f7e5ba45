//! Cursor pagination (contract §4.3).
//!
//! The cursor is base64url (no padding) of the last returned item's sort key, so a page
//! boundary stays put when items are added or deleted between calls: the next page
//! starts strictly after that key, whether or not the item still exists.

use crate::error::PageError;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use inregion_model::{BindingId, RegionKey, Timestamp};

/// Default page size.
pub const DEFAULT_PER_PAGE: u32 = 25;
/// Largest page size.
pub const MAX_PER_PAGE: u32 = 100;

/// The raw `per_page` and `cursor` query parameters, as received (`None` when absent).
/// Parsing and range checks happen in this crate (400 / 1111).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PageRequest {
    /// `per_page` text.
    pub per_page: Option<String>,
    /// `cursor` text. Empty is the same as absent (the first page): the last page
    /// hands out `cursor: ""`, and a client that passes it back must not get a 400.
    pub cursor: Option<String>,
}

impl PageRequest {
    /// The first page with `per_page` items.
    pub fn first(per_page: u32) -> Self {
        Self {
            per_page: Some(per_page.to_string()),
            cursor: None,
        }
    }

    /// The page after `cursor` (from a previous [`Page::next_cursor`]).
    pub fn after(cursor: &str, per_page: u32) -> Self {
        Self {
            per_page: Some(per_page.to_string()),
            cursor: Some(cursor.to_owned()),
        }
    }

    /// The effective page size.
    pub fn per_page(&self) -> Result<u32, PageError> {
        match &self.per_page {
            None => Ok(DEFAULT_PER_PAGE),
            Some(s) => {
                let ok = !s.is_empty() && s.len() <= 4 && s.bytes().all(|b| b.is_ascii_digit());
                match ok.then(|| s.parse::<u32>().ok()).flatten() {
                    Some(n) if (1..=MAX_PER_PAGE).contains(&n) => Ok(n),
                    _ => Err(PageError::PerPage(s.clone())),
                }
            }
        }
    }
}

/// One page of a list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Page<T> {
    /// The items (`result`).
    pub items: Vec<T>,
    /// The effective page size (`result_info.per_page`).
    pub per_page: u32,
    /// The cursor for the next page; empty on the last page (`result_info.cursor`).
    pub next_cursor: String,
}

impl<T> Page<T> {
    /// `result_info.count`.
    pub fn count(&self) -> usize {
        self.items.len()
    }
}

/// The bindings' sort key: `(created_at, id)` ascending.
pub(crate) fn binding_cursor(created_at: Timestamp, id: BindingId) -> String {
    URL_SAFE_NO_PAD.encode(format!("b:{}:{}", created_at.as_micros(), id))
}

pub(crate) fn decode_binding_cursor(c: &str) -> Result<(Timestamp, BindingId), PageError> {
    let raw = URL_SAFE_NO_PAD.decode(c).map_err(|_| PageError::Cursor)?;
    let s = String::from_utf8(raw).map_err(|_| PageError::Cursor)?;
    let rest = s.strip_prefix("b:").ok_or(PageError::Cursor)?;
    let (t, id) = rest.split_once(':').ok_or(PageError::Cursor)?;
    let t: i64 = t.parse().map_err(|_| PageError::Cursor)?;
    let id = BindingId::parse(id).map_err(|_| PageError::Cursor)?;
    Ok((Timestamp::from_micros(t), id))
}

/// The regions' sort key: `region_key` ascending.
pub(crate) fn region_cursor(key: &RegionKey) -> String {
    URL_SAFE_NO_PAD.encode(format!("r:{key}"))
}

pub(crate) fn decode_region_cursor(c: &str) -> Result<RegionKey, PageError> {
    let raw = URL_SAFE_NO_PAD.decode(c).map_err(|_| PageError::Cursor)?;
    let s = String::from_utf8(raw).map_err(|_| PageError::Cursor)?;
    let k = s.strip_prefix("r:").ok_or(PageError::Cursor)?;
    RegionKey::parse(k).map_err(|_| PageError::Cursor)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn per_page_bounds() {
        let p = |s: Option<&str>| {
            PageRequest {
                per_page: s.map(String::from),
                cursor: None,
            }
            .per_page()
        };
        assert_eq!(p(None), Ok(25));
        assert_eq!(p(Some("1")), Ok(1));
        assert_eq!(p(Some("100")), Ok(100));
        for bad in ["0", "101", "", "-1", "1.5", "abc", " 5", "99999999999"] {
            assert!(p(Some(bad)).is_err(), "{bad}");
        }
    }

    #[test]
    fn cursors_round_trip_and_reject_garbage() {
        let id = BindingId::random();
        let t = Timestamp::from_micros(1_234_567);
        assert_eq!(
            decode_binding_cursor(&binding_cursor(t, id)).unwrap(),
            (t, id)
        );
        let k = RegionKey::parse("eu").unwrap();
        assert_eq!(decode_region_cursor(&region_cursor(&k)).unwrap(), k);
        for bad in ["", "!!", "Zm9v", &region_cursor(&k)] {
            assert_eq!(decode_binding_cursor(bad), Err(PageError::Cursor), "{bad}");
        }
        assert!(decode_region_cursor(&binding_cursor(t, id)).is_err());
    }
}
