//! The `ids` target: every text parser of `inregion-model` against a plain model.

use inregion_model::cidr::{canonical_ip, parse_ip_strict, parse_ipv4_strict, parse_ipv6_strict};
use inregion_model::{
    AccountId, BindingId, Cidr, CountryCode, Iata, PrefixId, RegionId, RegionKey, Timestamp,
};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// Parses the input (UTF-8 text) with each parser and checks each answer.
pub fn ids(data: &[u8]) {
    let Ok(s) = std::str::from_utf8(data) else {
        return;
    };
    ipv4(s);
    ipv6(s);
    cidr(s);
    hex_and_uuid_ids(s);
    codes(s);
    timestamp(s);
    schema_patterns(s);
}

/// The OpenAPI document's patterns (`inregion_model::schema`) accept exactly what the
/// parsers accept, so that the schema neither admits text the server refuses nor refuses
/// text it accepts.
fn schema_patterns(s: &str) {
    use inregion_model::schema as p;
    use regex::Regex;
    use std::sync::OnceLock;
    /// A pattern's name, the compiled pattern, and its parser as a predicate.
    type Check = (&'static str, Regex, fn(&str) -> bool);
    static RES: OnceLock<Vec<Check>> = OnceLock::new();
    let res = RES.get_or_init(|| {
        let re = |pattern: &str| Regex::new(pattern).expect("a valid pattern");
        vec![
            ("account id", re(p::HEX32_PATTERN), |s| {
                AccountId::parse(s).is_ok()
            }),
            ("prefix id", re(p::PREFIX_ID_PATTERN), |s| {
                PrefixId::parse(s).is_ok()
            }),
            ("binding id", re(p::BINDING_ID_PATTERN), |s| {
                s.parse::<BindingId>().is_ok()
            }),
            ("region id", re(p::REGION_ID_PATTERN), |s| {
                s.parse::<RegionId>().is_ok()
            }),
            ("region key", re(p::REGION_KEY_PATTERN), |s| {
                RegionKey::parse(s).is_ok()
            }),
            ("country", re(p::COUNTRY_PATTERN), |s| {
                CountryCode::parse(s).is_ok()
            }),
            ("iata", re(p::IATA_PATTERN), |s| Iata::parse(s).is_ok()),
            (
                "default_sni",
                re(inregion_control::SNI_PATTERN),
                inregion_control::is_sni,
            ),
        ]
    });
    for (name, re, parses) in res {
        assert_eq!(
            re.is_match(s),
            parses(s),
            "{name} pattern vs parser on {s:?}"
        );
    }
}

/// Strict dotted quad: accepted exactly when the text is the canonical form of the
/// address std reads from it (four decimal octets, no leading zeros, nothing else).
fn ipv4(s: &str) {
    let model = s.parse::<Ipv4Addr>().ok().filter(|a| a.to_string() == s);
    assert_eq!(parse_ipv4_strict(s), model, "ipv4 {s:?}");
}

/// IPv6: whatever strict parsing accepts, std reads the same address; the canonical text
/// is RFC 5952 (std's own form except for IPv4-mapped addresses, which std prints with an
/// embedded quad and the canonical form never does) and reads back.
fn ipv6(s: &str) {
    let Some(a) = parse_ipv6_strict(s) else {
        return;
    };
    assert!(!s.contains('%'), "zone id accepted: {s:?}");
    assert_eq!(s.parse::<Ipv6Addr>().ok(), Some(a), "ipv6 {s:?}");
    let canon = canonical_ip(IpAddr::V6(a));
    assert!(
        !canon.contains('.'),
        "embedded quad in canonical text {canon:?}"
    );
    assert_eq!(canon, canon.to_lowercase());
    assert_eq!(
        parse_ipv6_strict(&canon),
        Some(a),
        "canonical {canon:?} of {s:?}"
    );
    if a.to_ipv4_mapped().is_none() {
        assert_eq!(canon, a.to_string(), "RFC 5952 form of {s:?}");
    }
    assert_eq!(parse_ip_strict(s), Some(IpAddr::V6(a)));
}

/// CIDR: an accepted text has a strict address, a length in range and no host bits; its
/// canonical text parses back to the same value and is a fixed point.
fn cidr(s: &str) {
    let Ok(c) = Cidr::parse_strict(s) else {
        return;
    };
    let (addr, len) = s.split_once('/').expect("accepted CIDR without '/'");
    let len: u8 = len.parse().expect("accepted CIDR with a bad length");
    let ip = parse_ip_strict(addr).expect("accepted CIDR with a bad address");
    assert_eq!(c.prefix_len(), len);
    assert_eq!(c.net().network(), ip, "host bits accepted in {s:?}");
    assert!(len <= if ip.is_ipv6() { 128 } else { 32 });
    let canon = c.to_string();
    let again = Cidr::parse_strict(&canon).expect("canonical text refused");
    assert_eq!(again, c);
    assert_eq!(again.to_string(), canon);
}

fn is_hex32(s: &str) -> bool {
    s.len() == 32 && s.chars().all(|c| matches!(c, '0'..='9' | 'a'..='f'))
}

fn is_uuid_text(s: &str, lower_only: bool) -> bool {
    s.len() == 36
        && s.chars().enumerate().all(|(i, c)| match i {
            8 | 13 | 18 | 23 => c == '-',
            _ if lower_only => matches!(c, '0'..='9' | 'a'..='f'),
            _ => c.is_ascii_hexdigit(),
        })
}

/// Ids: accepted exactly when the text has the documented form; displayed as given
/// (hex ids, prefix ids) or as the lower-case hyphenated UUID (binding ids).
fn hex_and_uuid_ids(s: &str) {
    assert_eq!(AccountId::parse(s).is_ok(), is_hex32(s), "account id {s:?}");
    if let Ok(id) = AccountId::parse(s) {
        assert_eq!(id.as_str(), s);
    }
    let prefix_ok = is_hex32(s) || is_uuid_text(s, true);
    assert_eq!(PrefixId::parse(s).is_ok(), prefix_ok, "prefix id {s:?}");
    let binding_ok =
        is_uuid_text(s, false) || (s.len() == 32 && s.chars().all(|c| c.is_ascii_hexdigit()));
    match s.parse::<BindingId>() {
        Ok(id) => {
            assert!(binding_ok, "binding id {s:?} accepted");
            let shown = id.to_string();
            assert!(is_uuid_text(&shown, true), "binding id shown as {shown:?}");
            assert_eq!(shown.replace('-', ""), s.replace('-', "").to_lowercase());
        }
        Err(_) => assert!(!binding_ok, "binding id {s:?} refused"),
    }
}

/// Codes: two upper-case letters, three upper-case letters or digits, and region keys of
/// 1–128 characters from `a-z0-9_-`.
fn codes(s: &str) {
    let b = s.as_bytes();
    let country = b.len() == 2 && b.iter().all(u8::is_ascii_uppercase);
    assert_eq!(CountryCode::parse(s).is_ok(), country, "country {s:?}");
    let iata = b.len() == 3
        && b.iter()
            .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit());
    assert_eq!(Iata::parse(s).is_ok(), iata, "iata {s:?}");
    let key = (1..=128).contains(&b.len())
        && b.iter()
            .all(|c| matches!(c, b'a'..=b'z' | b'0'..=b'9' | b'_' | b'-'));
    assert_eq!(RegionKey::parse(s).is_ok(), key, "region key {s:?}");
}

/// Timestamps: an accepted text displays as RFC 3339 with six fractional digits and a
/// `Z`, which reads back to the same instant (the store relies on this).
fn timestamp(s: &str) {
    let Ok(t) = Timestamp::parse(s) else {
        return;
    };
    let shown = t.to_string();
    assert!(
        shown.ends_with('Z') && shown.len() == 27,
        "shown as {shown:?}"
    );
    assert_eq!(Timestamp::parse(&shown), Ok(t), "{shown:?} of {s:?}");
}
