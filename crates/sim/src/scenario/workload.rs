//! `[workload]`: how many flows, when they arrive, where they go, and their shape.

use super::raw::{RawDestination, RawWorkload};
use super::values::Validator;
use super::{Arrival, Dist, ScenarioError, Workload, MAX_FLOWS};
use crate::time::SimTime;
use ipnet::IpNet;
use std::collections::BTreeMap;

impl Validator<'_> {
    /// `[workload]`, over a run of `duration` (a `rate` becomes a flow count).
    pub(super) fn workload(
        &self,
        w: &RawWorkload,
        duration: SimTime,
    ) -> Result<Workload, ScenarioError> {
        let flows = self.flow_count(w, duration)?;
        let arrival = self.arrival(w.arrival.as_deref())?;
        let destinations = self.destinations(&w.destinations)?;
        let protocols = self.protocols(w.protocols.as_ref())?;
        let flow_duration = match &w.flow_duration {
            Some(d) => self.dist("workload.flow_duration", d, true)?,
            None => Dist::LogNormal(2.0, 1.0),
        };
        let flow_size = match &w.flow_size {
            Some(d) => self.dist("workload.flow_size", d, false)?,
            None => Dist::LogNormal(20_000.0, 1.5),
        };
        Ok(Workload {
            flows,
            arrival,
            destinations,
            protocols,
            flow_duration,
            flow_size,
        })
    }

    /// `flows`, or `rate` times the duration: exactly one of them, at most [`MAX_FLOWS`].
    fn flow_count(&self, w: &RawWorkload, duration: SimTime) -> Result<u64, ScenarioError> {
        let flows = match (w.flows, w.rate) {
            (Some(_), Some(_)) => {
                return Err(self.err("workload", "give either flows or rate, not both"))
            }
            (Some(n), None) => n,
            (None, Some(r)) => {
                if !(r > 0.0 && r.is_finite()) {
                    return Err(self.err(
                        "workload.rate",
                        format!("must be a finite number > 0, got {r}"),
                    ));
                }
                (r * duration.as_secs_f64()).round() as u64
            }
            (None, None) => return Err(self.err("workload", "give flows or rate")),
        };
        if flows > MAX_FLOWS {
            return Err(self.err(
                if w.flows.is_some() {
                    "workload.flows"
                } else {
                    "workload.rate"
                },
                format!("at most 10^10 flows per run, got {flows}"),
            ));
        }
        Ok(flows)
    }

    /// `arrival`: `poisson` (the default) or `uniform`.
    fn arrival(&self, arrival: Option<&str>) -> Result<Arrival, ScenarioError> {
        match arrival {
            None | Some("poisson") => Ok(Arrival::Poisson),
            Some("uniform") => Ok(Arrival::Uniform),
            Some(other) => Err(self.err(
                "workload.arrival",
                format!("unknown arrival process {other:?}; expected \"poisson\" or \"uniform\""),
            )),
        }
    }

    /// `destinations`: at least one network CIDR (no host bits) with a positive weight.
    fn destinations(&self, raw: &[RawDestination]) -> Result<Vec<(IpNet, f64)>, ScenarioError> {
        let mut destinations = Vec::new();
        for (i, d) in raw.iter().enumerate() {
            let key = format!("workload.destinations[{i}]");
            let net: IpNet = d.cidr.trim().parse().map_err(|_| {
                self.err(format!("{key}.cidr"), format!("{:?} is not a CIDR", d.cidr))
            })?;
            let weight = self.weight(&key, d.weight)?;
            if net.trunc() != net {
                return Err(self.err(
                    format!("{key}.cidr"),
                    format!(
                        "{:?} has host bits set (did you mean {}?)",
                        d.cidr,
                        net.trunc()
                    ),
                ));
            }
            destinations.push((net, weight));
        }
        if destinations.is_empty() {
            return Err(self.err(
                "workload.destinations",
                "give at least one destination CIDR",
            ));
        }
        Ok(destinations)
    }

    /// `protocols`: weights of tcp, udp and dns (in that order); all TCP when left out,
    /// only the listed ones when given.
    fn protocols(&self, map: Option<&BTreeMap<String, f64>>) -> Result<[f64; 3], ScenarioError> {
        let Some(map) = map else {
            return Ok([1.0, 0.0, 0.0]);
        };
        let mut protocols = [0.0; 3];
        for (k, v) in map {
            let slot = match k.as_str() {
                "tcp" => 0,
                "udp" => 1,
                "dns" => 2,
                other => {
                    return Err(self.err(
                        format!("workload.protocols.{other}"),
                        "unknown protocol; expected tcp, udp or dns",
                    ))
                }
            };
            if !(*v >= 0.0 && v.is_finite()) {
                return Err(self.err(
                    format!("workload.protocols.{k}"),
                    format!("must be >= 0, got {v}"),
                ));
            }
            protocols[slot] = *v;
        }
        if protocols.iter().sum::<f64>() <= 0.0 {
            return Err(self.err("workload.protocols", "at least one weight must be > 0"));
        }
        Ok(protocols)
    }
}
