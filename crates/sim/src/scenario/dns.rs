//! `[dns]`: the optional DNS probe workload.

use super::raw::RawDns;
use super::values::Validator;
use super::{ClientSpec, DnsProbes, DnsQueryKind, ScenarioError};
use crate::time::SimTime;
use std::net::IpAddr;

impl Validator<'_> {
    /// `[dns]`, if the file has it.
    pub(super) fn dns(&self, raw: Option<&RawDns>) -> Result<Option<DnsProbes>, ScenarioError> {
        raw.map(|d| self.dns_probes(d)).transpose()
    }

    /// The probe workload: a round every `every` (at least 1 s, default 30 minutes) from
    /// each place to each target with each query. A list that is given must not be empty:
    /// leaving it out is how a file asks for the default.
    fn dns_probes(&self, d: &RawDns) -> Result<DnsProbes, ScenarioError> {
        let every = match &d.every {
            Some(v) => self.time("dns.every", v)?,
            None => SimTime::from_secs(1800),
        };
        if every < SimTime::from_secs(1) {
            return Err(self.err("dns.every", "must be at least 1s"));
        }
        let from = self.dns_from(d.from.as_deref().unwrap_or_default())?;
        if d.from.as_ref().is_some_and(Vec::is_empty) {
            return Err(self.err(
                "dns.from",
                "give at least one place, or leave it out to probe from the clients",
            ));
        }
        if d.queries.as_ref().is_some_and(Vec::is_empty) {
            return Err(self.err(
                "dns.queries",
                "give at least one query, or leave it out for chaos",
            ));
        }
        let targets = self.dns_targets(&d.targets)?;
        let queries = match &d.queries {
            Some(list) => self.dns_queries(list)?,
            None => self.dns_queries(&["chaos".to_owned()])?,
        };
        Ok(DnsProbes {
            every,
            from,
            targets,
            queries,
        })
    }

    /// `from`: places the probes are sent from (an empty list: the clients).
    fn dns_from(&self, places: &[String]) -> Result<Vec<ClientSpec>, ScenarioError> {
        let mut from = Vec::new();
        for (i, t) in places.iter().enumerate() {
            let key = format!("dns.from[{i}]");
            let (name, place) = self.place(&key, t)?;
            from.push(ClientSpec {
                name,
                place,
                weight: 1.0,
                key,
            });
        }
        Ok(from)
    }

    /// `targets`: at least one IP address.
    fn dns_targets(&self, targets: &[String]) -> Result<Vec<IpAddr>, ScenarioError> {
        let mut addrs = Vec::new();
        for (i, t) in targets.iter().enumerate() {
            addrs.push(t.trim().parse::<IpAddr>().map_err(|_| {
                self.err(
                    format!("dns.targets[{i}]"),
                    format!("{t:?} is not an IP address"),
                )
            })?);
        }
        if addrs.is_empty() {
            return Err(self.err("dns.targets", "give at least one address"));
        }
        Ok(addrs)
    }

    /// `queries`: chaos, a or aaaa, in any case.
    fn dns_queries(&self, queries: &[String]) -> Result<Vec<DnsQueryKind>, ScenarioError> {
        queries
            .iter()
            .enumerate()
            .map(|(i, q)| match q.to_ascii_lowercase().as_str() {
                "chaos" => Ok(DnsQueryKind::Chaos),
                "a" => Ok(DnsQueryKind::A),
                "aaaa" => Ok(DnsQueryKind::Aaaa),
                other => Err(self.err(
                    format!("dns.queries[{i}]"),
                    format!("unknown query {other:?}; expected chaos, a or aaaa"),
                )),
            })
            .collect()
    }
}
