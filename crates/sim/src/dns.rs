//! DNS probes with real messages (hickory-proto, std only, no I/O).
//!
//! Operators check which data center handles an anycast address with a CHAOS-class
//! `TXT id.server` query: the answer names the server, here the data center that
//! *processed* the query (after any in-region forwarding). Plain `A`/`AAAA` queries over
//! UDP check that the address answers at all. This module builds and parses the wire
//! messages; the engine routes them through the edge's decision like any UDP flow.
//!
//! Message ids come from the caller (the engine's seeded DNS stream), never from
//! `Message::query()`'s random id, so runs are reproducible byte for byte.

use hickory_proto::op::{Message, MessageType, OpCode, Query, ResponseCode};
use hickory_proto::rr::rdata::{A, AAAA, TXT};
use hickory_proto::rr::{DNSClass, Name, RData, Record, RecordType};
use std::net::IpAddr;

use crate::scenario::DnsQueryKind;

/// The name the probes' `A`/`AAAA` queries ask for.
pub const PROBE_NAME: &str = "probe.inregion.test.";

/// Why a DNS message could not be built or read.
#[derive(Debug, thiserror::Error)]
pub enum DnsError {
    /// hickory-proto could not encode a message.
    #[error("DNS encode: {0}")]
    Encode(String),
    /// The bytes are not a DNS message.
    #[error("DNS decode: {0}")]
    Decode(String),
    /// A well-formed message that is not the expected answer.
    #[error("DNS answer: {0}")]
    Unexpected(String),
}

/// A decoded answer, as the probe sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DnsAnswer {
    /// The message id (equal to the query's).
    pub id: u16,
    /// The response code.
    pub rcode: String,
    /// TXT strings (CHAOS `id.server`: the answering data center).
    pub txt: Vec<String>,
    /// Addresses of A/AAAA answers.
    pub addrs: Vec<IpAddr>,
}

fn name(s: &str) -> Result<Name, DnsError> {
    Name::from_ascii(s).map_err(|e| DnsError::Encode(e.to_string()))
}

/// Encodes a probe query with message id `id`.
pub fn encode_query(id: u16, kind: DnsQueryKind) -> Result<Vec<u8>, DnsError> {
    let mut msg = Message::new(id, MessageType::Query, OpCode::Query);
    let query = match kind {
        DnsQueryKind::Chaos => {
            let mut q = Query::query(name("id.server.")?, RecordType::TXT);
            q.set_query_class(DNSClass::CH);
            q
        }
        DnsQueryKind::A => Query::query(name(PROBE_NAME)?, RecordType::A),
        DnsQueryKind::Aaaa => Query::query(name(PROBE_NAME)?, RecordType::AAAA),
    };
    msg.metadata.recursion_desired = false;
    msg.add_query(query);
    msg.to_vec().map_err(|e| DnsError::Encode(e.to_string()))
}

/// The server side at data center `dc` (IATA code), reached at `served`: decodes the
/// query and encodes the answer. `id.server` in class CHAOS is answered with the data
/// center's code; `A`/`AAAA` for [`PROBE_NAME`] with `served` when its family matches
/// (NODATA otherwise); anything else gets REFUSED.
pub fn answer(query: &[u8], dc: &str, served: IpAddr) -> Result<Vec<u8>, DnsError> {
    let q = Message::from_vec(query).map_err(|e| DnsError::Decode(e.to_string()))?;
    if q.metadata.message_type != MessageType::Query {
        return Err(DnsError::Unexpected("not a query".into()));
    }
    let mut resp = Message::new(q.metadata.id, MessageType::Response, OpCode::Query);
    resp.metadata.authoritative = true;
    let Some(question) = q.queries.first().cloned() else {
        resp.metadata.response_code = ResponseCode::FormErr;
        return resp.to_vec().map_err(|e| DnsError::Encode(e.to_string()));
    };
    resp.add_query(question.clone());
    let qname = question.name().to_ascii().to_ascii_lowercase();
    match (question.query_class(), question.query_type()) {
        (DNSClass::CH, RecordType::TXT) if qname == "id.server." => {
            let mut rec = Record::from_rdata(
                question.name().clone(),
                0,
                RData::TXT(TXT::new(vec![dc.to_owned()])),
            );
            rec.dns_class = DNSClass::CH;
            resp.add_answer(rec);
        }
        (DNSClass::IN, t @ (RecordType::A | RecordType::AAAA)) if qname == PROBE_NAME => {
            match (t, served) {
                (RecordType::A, IpAddr::V4(a)) => {
                    resp.add_answer(Record::from_rdata(
                        question.name().clone(),
                        300,
                        RData::A(A(a)),
                    ));
                }
                (RecordType::AAAA, IpAddr::V6(a)) => {
                    resp.add_answer(Record::from_rdata(
                        question.name().clone(),
                        300,
                        RData::AAAA(AAAA(a)),
                    ));
                }
                _ => {} // NODATA
            }
        }
        _ => resp.metadata.response_code = ResponseCode::Refused,
    }
    resp.to_vec().map_err(|e| DnsError::Encode(e.to_string()))
}

/// Decodes an answer and checks it matches query id `id`.
pub fn read_answer(bytes: &[u8], id: u16) -> Result<DnsAnswer, DnsError> {
    let m = Message::from_vec(bytes).map_err(|e| DnsError::Decode(e.to_string()))?;
    if m.metadata.message_type != MessageType::Response {
        return Err(DnsError::Unexpected("not a response".into()));
    }
    if m.metadata.id != id {
        return Err(DnsError::Unexpected(format!(
            "id {} does not match query id {id}",
            m.metadata.id
        )));
    }
    let mut txt = Vec::new();
    let mut addrs = Vec::new();
    for r in &m.answers {
        match &r.data {
            RData::TXT(t) => {
                for part in t.txt_data.iter() {
                    txt.push(String::from_utf8_lossy(part).into_owned());
                }
            }
            RData::A(a) => addrs.push(IpAddr::V4(a.0)),
            RData::AAAA(a) => addrs.push(IpAddr::V6(a.0)),
            _ => {}
        }
    }
    Ok(DnsAnswer {
        id,
        rcode: format!("{:?}", m.metadata.response_code).to_uppercase(),
        txt,
        addrs,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chaos_id_server_round_trip_names_the_data_center() {
        let q = encode_query(4242, DnsQueryKind::Chaos).unwrap();
        let parsed = Message::from_vec(&q).unwrap();
        assert_eq!(parsed.metadata.id, 4242);
        assert_eq!(parsed.queries[0].query_class(), DNSClass::CH);
        let a = answer(&q, "FRA", "203.0.113.7".parse().unwrap()).unwrap();
        let got = read_answer(&a, 4242).unwrap();
        assert_eq!(got.txt, vec!["FRA".to_string()]);
        assert_eq!(got.rcode, "NOERROR");
        assert!(read_answer(&a, 4243).is_err());
    }

    #[test]
    fn a_and_aaaa_answer_with_the_served_address_or_nodata() {
        let v4: IpAddr = "203.0.113.7".parse().unwrap();
        let v6: IpAddr = "2001:db8::7".parse().unwrap();
        let q = encode_query(1, DnsQueryKind::A).unwrap();
        assert_eq!(
            read_answer(&answer(&q, "GRU", v4).unwrap(), 1)
                .unwrap()
                .addrs,
            vec![v4]
        );
        assert!(read_answer(&answer(&q, "GRU", v6).unwrap(), 1)
            .unwrap()
            .addrs
            .is_empty());
        let q = encode_query(2, DnsQueryKind::Aaaa).unwrap();
        assert_eq!(
            read_answer(&answer(&q, "GRU", v6).unwrap(), 2)
                .unwrap()
                .addrs,
            vec![v6]
        );
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        assert!(answer(&[1, 2, 3], "FRA", "192.0.2.1".parse().unwrap()).is_err());
        assert!(read_answer(&[], 0).is_err());
        let q = encode_query(7, DnsQueryKind::A).unwrap();
        // A query is not an answer.
        assert!(read_answer(&q, 7).is_err());
    }
}
