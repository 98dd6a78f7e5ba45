//! The pure parts of `/v1/decide`: a flow request ([`FlowRequest`]) checked into a
//! [`FlowKey`] and ingress, and a [`Decision`] turned into its JSON answer
//! ([`DecisionView`]).

use std::net::IpAddr;

use inregion_edge::{Decision, FlowKey, Protocol, RefuseReason, ResetReason, Verdict};
use inregion_model::{BindingId, Iata, RegionKey};
use serde::{Deserialize, Serialize};

/// Default protocol of a decide request.
pub const DEFAULT_PROTO: Protocol = Protocol::TCP;
/// Default source port.
pub const DEFAULT_SPORT: u16 = 40000;
/// Default destination port.
pub const DEFAULT_DPORT: u16 = 443;
/// Most flows in one `POST /v1/decide`.
pub const MAX_BATCH: usize = 10_000;

/// One flow as asked (query string of `GET /v1/decide`, or one element of the POST
/// body). Every field is text or a number as sent; [`FlowRequest::check`] validates.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
pub struct FlowRequest {
    /// Source address.
    pub src: Option<String>,
    /// Destination address.
    pub dst: Option<String>,
    /// `tcp`, `udp`, `icmp` or a protocol number 0-255 (default tcp).
    #[serde(default, deserialize_with = "text_or_number")]
    pub proto: Option<String>,
    /// Source port (default 40000).
    #[serde(default, deserialize_with = "text_or_number")]
    pub sport: Option<String>,
    /// Destination port (default 443).
    #[serde(default, deserialize_with = "text_or_number")]
    pub dport: Option<String>,
    /// The ingress data center (default: the process's first one).
    pub dc: Option<String>,
}

fn text_or_number<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum V {
        S(String),
        N(serde_json::Number),
    }
    Ok(Option::<V>::deserialize(d)?.map(|v| match v {
        V::S(s) => s,
        V::N(n) => n.to_string(),
    }))
}

/// A bad parameter, named.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{param}: {message}")]
pub struct BadParam {
    /// The parameter (`src`, `dport`, ...).
    pub param: &'static str,
    /// What is wrong.
    pub message: String,
}

fn bad(param: &'static str, message: impl Into<String>) -> BadParam {
    BadParam {
        param,
        message: message.into(),
    }
}

/// A checked flow: its key and ingress.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CheckedFlow {
    /// The 5-tuple.
    pub key: FlowKey,
    /// The ingress data center (one of the process's).
    pub dc: Iata,
}

fn parse_ip(param: &'static str, v: Option<&str>) -> Result<IpAddr, BadParam> {
    let v = v.ok_or_else(|| bad(param, "required"))?;
    inregion_model::cidr::parse_ip_strict(v)
        .ok_or_else(|| bad(param, format!("{v:?} is not an IPv4 or IPv6 address")))
}

fn parse_port(param: &'static str, v: Option<&str>, default: u16) -> Result<u16, BadParam> {
    match v {
        None => Ok(default),
        Some(t) => t
            .parse::<u16>()
            .map_err(|_| bad(param, format!("{t:?} is not a port number 0-65535"))),
    }
}

/// Parses a protocol: `tcp`, `udp`, `icmp` (ICMPv6 for an IPv6 flow) or 0-255.
pub fn parse_proto(v: Option<&str>, v6: bool) -> Result<Protocol, BadParam> {
    match v.map(str::to_ascii_lowercase).as_deref() {
        None | Some("tcp") => Ok(Protocol::TCP),
        Some("udp") => Ok(Protocol::UDP),
        Some("icmp") if v6 => Ok(Protocol::ICMPV6),
        Some("icmp") => Ok(Protocol::ICMP),
        Some("icmpv6") => Ok(Protocol::ICMPV6),
        Some(t) => t.parse::<u8>().map(Protocol).map_err(|_| {
            bad(
                "proto",
                format!("{t:?}: expected tcp, udp, icmp or a protocol number 0-255"),
            )
        }),
    }
}

impl FlowRequest {
    /// Checks the request: addresses of one family, protocol, ports, and `dc` among
    /// `dcs` (default: the first).
    pub fn check(&self, dcs: &[Iata]) -> Result<CheckedFlow, BadParam> {
        let src = parse_ip("src", self.src.as_deref())?;
        let dst = parse_ip("dst", self.dst.as_deref())?;
        if src.is_ipv6() != dst.is_ipv6() {
            return Err(bad("dst", "src and dst must be both IPv4 or both IPv6"));
        }
        let proto = parse_proto(self.proto.as_deref(), dst.is_ipv6())?;
        let sport = parse_port("sport", self.sport.as_deref(), DEFAULT_SPORT)?;
        let dport = parse_port("dport", self.dport.as_deref(), DEFAULT_DPORT)?;
        let dc = match self.dc.as_deref() {
            None => *dcs.first().ok_or_else(|| bad("dc", "no data center"))?,
            Some(t) => {
                let code = Iata::parse(&t.to_ascii_uppercase())
                    .map_err(|e| bad("dc", format!("{t:?}: {e}")))?;
                if !dcs.contains(&code) {
                    let served: Vec<&str> = dcs.iter().map(Iata::as_str).collect();
                    return Err(bad(
                        "dc",
                        format!("{code} is not served here (served: {})", served.join(",")),
                    ));
                }
                code
            }
        };
        let key =
            FlowKey::new(proto, src, sport, dst, dport).map_err(|e| bad("dst", e.to_string()))?;
        Ok(CheckedFlow { key, dc })
    }
}

/// The binding a decision matched, in a [`DecisionView`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BindingView {
    /// The binding.
    pub binding_id: BindingId,
    /// Its CIDR (the most specific prefix containing the destination).
    pub cidr: String,
    /// The region it is bound to.
    pub region_key: RegionKey,
}

/// The JSON answer for one flow.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DecisionView {
    /// `in_region`, `forwarded`, `global` or `refused`.
    pub verdict: String,
    /// The ingress data center (L3/L4 there).
    pub ingress: String,
    /// Where TLS/L7 happens; `null` when refused.
    pub processed_at: Option<String>,
    /// Extra round trip of the forwarding hop, in milliseconds.
    pub added_rtt_ms: f64,
    /// The table version the decision was made with (pinned for an established flow).
    pub table_version: u64,
    /// The binding matched, `null` when none.
    pub binding: Option<BindingView>,
    /// True when the flow was already known (pinned decision).
    pub established: bool,
    /// Why it was refused, `null` unless refused.
    pub refuse_reason: Option<String>,
    /// True when the node cannot reach its source (the table may be out of date).
    pub stale: bool,
}

/// The verdict string and refuse reason of a verdict. A reset of an established flow
/// is reported as `refused` with a `reset_...` reason (the flow is not processed).
pub fn verdict_strings(v: Verdict) -> (&'static str, Option<&'static str>) {
    match v {
        Verdict::Global => ("global", None),
        Verdict::InRegion => ("in_region", None),
        Verdict::Forwarded => ("forwarded", None),
        Verdict::Refused(RefuseReason::NoHealthyInRegion) => {
            ("refused", Some("no_healthy_in_region"))
        }
        Verdict::Refused(RefuseReason::IngressDown) => ("refused", Some("ingress_down")),
        Verdict::Reset(ResetReason::BindingChanged) => ("refused", Some("reset_binding_changed")),
        Verdict::Reset(ResetReason::ProcessingDown) => ("refused", Some("reset_processing_down")),
    }
}

/// Builds the answer for `d`; `code` names data centers, `binding` is the match.
pub fn decision_view(
    d: &Decision,
    code: impl Fn(inregion_edge::DcId) -> String,
    binding: Option<BindingView>,
    stale: bool,
) -> DecisionView {
    let (verdict, reason) = verdict_strings(d.verdict);
    DecisionView {
        verdict: verdict.into(),
        ingress: code(d.ingress),
        processed_at: d.processed_at.map(&code),
        added_rtt_ms: f64::from(d.added_rtt_us) / 1000.0,
        table_version: d.table_version,
        binding,
        established: d.established,
        refuse_reason: reason.map(str::to_owned),
        stale,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dcs() -> Vec<Iata> {
        vec![Iata::parse("FRA").unwrap(), Iata::parse("IAD").unwrap()]
    }

    fn req(src: &str, dst: &str) -> FlowRequest {
        FlowRequest {
            src: Some(src.into()),
            dst: Some(dst.into()),
            ..FlowRequest::default()
        }
    }

    #[test]
    fn defaults_and_choices() {
        let f = req("198.51.100.7", "203.0.113.10").check(&dcs()).unwrap();
        assert_eq!(f.dc.as_str(), "FRA");
        assert_eq!(f.key.protocol(), Protocol::TCP);
        assert_eq!((f.key.src_port(), f.key.dst_port()), (40000, 443));
        let mut r = req("2001:db8::1", "2001:db8::2");
        r.proto = Some("icmp".into());
        r.dc = Some("iad".into());
        r.sport = Some("1".into());
        r.dport = Some("2".into());
        let f = r.check(&dcs()).unwrap();
        assert_eq!(f.key.protocol(), Protocol::ICMPV6);
        assert_eq!(f.dc.as_str(), "IAD");
        assert_eq!((f.key.src_port(), f.key.dst_port()), (1, 2));
        assert_eq!(parse_proto(Some("UDP"), false).unwrap(), Protocol::UDP);
        assert_eq!(parse_proto(Some("47"), false).unwrap(), Protocol(47));
    }

    #[test]
    fn bad_input_names_the_parameter() {
        let p = |r: FlowRequest| r.check(&dcs()).unwrap_err().param;
        assert_eq!(p(req("1.2.3", "1.2.3.4")), "src");
        assert_eq!(p(req("1.2.3.4", "")), "dst");
        assert_eq!(p(FlowRequest::default()), "src");
        assert_eq!(p(req("1.2.3.4", "2001:db8::1")), "dst");
        let mut r = req("1.2.3.4", "5.6.7.8");
        r.proto = Some("sctp".into());
        assert_eq!(p(r.clone()), "proto");
        r.proto = Some("256".into());
        assert_eq!(p(r.clone()), "proto");
        r.proto = None;
        r.dport = Some("65536".into());
        assert_eq!(p(r.clone()), "dport");
        r.dport = None;
        r.sport = Some("-1".into());
        assert_eq!(p(r.clone()), "sport");
        r.sport = None;
        r.dc = Some("AMS".into());
        assert_eq!(p(r.clone()), "dc");
        r.dc = Some("AMSX".into());
        assert_eq!(p(r), "dc");
    }

    #[test]
    fn json_flows_take_numbers_or_text() {
        let r: FlowRequest = serde_json::from_str(
            r#"{"src":"1.2.3.4","dst":"5.6.7.8","proto":17,"sport":"53","dport":53}"#,
        )
        .unwrap();
        let f = r.check(&dcs()).unwrap();
        assert_eq!(f.key.protocol(), Protocol::UDP);
        assert_eq!((f.key.src_port(), f.key.dst_port()), (53, 53));
    }

    #[test]
    fn verdicts_map_to_strings() {
        assert_eq!(verdict_strings(Verdict::Global), ("global", None));
        assert_eq!(verdict_strings(Verdict::InRegion), ("in_region", None));
        assert_eq!(verdict_strings(Verdict::Forwarded), ("forwarded", None));
        assert_eq!(
            verdict_strings(Verdict::Refused(RefuseReason::NoHealthyInRegion)),
            ("refused", Some("no_healthy_in_region"))
        );
        assert_eq!(
            verdict_strings(Verdict::Refused(RefuseReason::IngressDown)).1,
            Some("ingress_down")
        );
        assert_eq!(
            verdict_strings(Verdict::Reset(ResetReason::ProcessingDown)).0,
            "refused"
        );
    }
}
