//! `inregion trace`: one decision, step by step.
//!
//! Replays a scenario's timeline up to an instant ([`Simulation::replay_until`]), then
//! asks the edge to explain how a new flow from a place to an address is handled:
//! ingress, the ingress's table version, the matched binding and region, the in-region
//! candidates with their RTTs, the chosen data center and the added RTT.

use crate::engine::{SimError, Simulation};
use crate::scenario::{ClientPlace, Scenario};
use crate::time::SimTime;
use crate::world::resolve_place;
use inregion_edge::{FlowKey, Protocol, RefuseReason, Verdict};
use inregion_model::ReferenceData;
use std::fmt::Write as _;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// What to trace.
#[derive(Debug, Clone)]
pub struct TraceRequest {
    /// Destination address.
    pub dst: IpAddr,
    /// Label of the place (`GRU`, `BR`, `-23.5,-46.6`).
    pub from_name: String,
    /// Where the client is.
    pub from: ClientPlace,
    /// When (default: the end of the scenario, every change propagated or not).
    pub at: Option<SimTime>,
}

/// The outcome of a trace: numbered steps and the final decision's key figures.
#[derive(Debug, Clone, PartialEq)]
pub struct Trace {
    /// Human-readable steps.
    pub steps: Vec<String>,
    /// Ingress data center.
    pub ingress: Option<String>,
    /// Data center that processes the flow (`None`: refused).
    pub processed_at: Option<String>,
    /// Bound region, if any.
    pub region: Option<String>,
    /// Added RTT in ms.
    pub added_rtt_ms: f64,
}

impl Trace {
    /// The steps as text, one per line.
    pub fn to_text(&self) -> String {
        let mut s = String::new();
        for l in &self.steps {
            let _ = writeln!(s, "{l}");
        }
        s
    }
}

fn ms(us: u32) -> f64 {
    f64::from(us) / 1000.0
}

/// Explains how a new TCP flow from `req.from` to `req.dst` is handled at `req.at` in
/// `scenario`.
pub fn trace(
    scenario: Scenario,
    refdata: &ReferenceData,
    req: &TraceRequest,
) -> Result<Trace, SimError> {
    let file = scenario.file.clone();
    let at = req.at.unwrap_or(scenario.duration);
    let name = scenario.name.clone();
    let world_err = |message: String| SimError::World {
        file: file.clone(),
        message,
    };
    let sim = Simulation::new(scenario, refdata)?;
    let w = sim.replay_until(at)?;
    let points = resolve_place(&w.refdata, &req.from, 1.0, 0)
        .map_err(|m| world_err(format!("--from: {m}")))?;
    let point = points[0].location;
    let topo = &w.topology;
    let code = |dc: inregion_edge::DcId| topo.dc(dc).code.to_string();
    let mut steps = vec![format!(
        "trace {} from {} ({:.2},{:.2}) at {} in scenario {name}",
        req.dst, req.from_name, point.lat, point.lon, at
    )];
    let Some(ingress) = w.edge.ingress_for(&point) else {
        steps.push(
            "1. no healthy data center with coordinates: nothing can receive the flow".into(),
        );
        return Ok(Trace {
            steps,
            ingress: None,
            processed_at: None,
            region: None,
            added_rtt_ms: 0.0,
        });
    };
    let client_rtt = topo.client_rtt_us(&point, ingress).unwrap_or(0);
    steps.push(format!(
        "1. ingress: anycast lands on {} (nearest healthy data center, client RTT {:.1} ms); L3/L4 DDoS mitigation happens there, whatever the binding",
        code(ingress),
        ms(client_rtt)
    ));
    let flow = match req.dst {
        IpAddr::V4(d) => FlowKey::v4(Protocol::TCP, Ipv4Addr::new(100, 64, 0, 1), 50000, d, 443),
        IpAddr::V6(d) => FlowKey::v6(
            Protocol::TCP,
            Ipv6Addr::new(0xfd00, 0, 0, 0, 0, 0, 0, 1),
            50000,
            d,
            443,
        ),
    };
    let ex = w.edge.explain(
        ingress,
        &flow,
        inregion_edge::SimTime::from_nanos(at.as_nanos()),
    );
    let v = ex.table_version;
    let latest = w.versions.last().map_or(0, |x| x.version);
    let mut table = if v == 0 {
        format!(
            "2. {}'s table: empty (no binding has reached it)",
            code(ingress)
        )
    } else {
        format!(
            "2. {}'s table: version {v} (arrived {})",
            code(ingress),
            w.arrived_at[ingress.index()]
        )
    };
    if latest > v {
        let pending = &w.versions[(latest - 1) as usize];
        let _ = write!(
            table,
            "; version {latest} (published {}) has not reached it yet",
            pending.published_at
        );
    }
    steps.push(table);
    let region_key = ex.matched.map(|(_, r)| topo.region(r).key.to_string());
    match ex.matched {
        None => steps.push(format!(
            "3. longest-prefix match: no binding covers {} → not regionalized",
            req.dst
        )),
        Some((net, r)) => steps.push(format!(
            "3. longest-prefix match: {net} → region {}",
            topo.region(r).key
        )),
    }
    match (ex.matched, ex.ingress_in_region) {
        (Some(_), Some(true)) => steps.push(format!(
            "4. {} is a member of {}: TLS is terminated and the request processed there",
            code(ingress),
            region_key.as_deref().unwrap_or("?")
        )),
        (Some(_), _) => {
            let mut s = format!(
                "4. {} is not in {}: in-region candidates by RTT from {} (healthy ones only can be chosen):",
                code(ingress),
                region_key.as_deref().unwrap_or("?"),
                code(ingress)
            );
            for c in ex.candidates.iter().take(6) {
                let _ = write!(
                    s,
                    "\n     {} {:>8} {}{}",
                    code(c.dc),
                    c.rtt_us
                        .map_or("no path".to_string(), |r| format!("{:.1} ms", ms(r))),
                    if c.healthy { "healthy" } else { "DOWN" },
                    if c.chosen { "  ← chosen" } else { "" }
                );
            }
            if ex.candidates.len() > 6 {
                let _ = write!(s, "\n     … {} more", ex.candidates.len() - 6);
            }
            steps.push(s);
        }
        (None, _) => steps.push(format!(
            "4. processed at the ingress {} (normal global behaviour)",
            code(ingress)
        )),
    }
    let d = ex.fresh;
    let verdict = match d.verdict {
        Verdict::Global => format!("processed at {} (not regionalized)", code(ingress)),
        Verdict::InRegion => format!("processed at {} (in region)", code(ingress)),
        Verdict::Forwarded => format!(
            "forwarded over the backbone, still encrypted, to {}; added RTT {:.1} ms",
            d.processed_at.map(code).unwrap_or_default(),
            ms(d.added_rtt_us)
        ),
        Verdict::Refused(RefuseReason::NoHealthyInRegion) => {
            "refused: no healthy in-region data center (fail closed, never processed out of region)"
                .into()
        }
        Verdict::Refused(RefuseReason::IngressDown) => "refused: the ingress is down".into(),
        Verdict::Reset(_) => "reset".into(),
    };
    steps.push(format!("5. decision: {verdict}"));
    Ok(Trace {
        steps,
        ingress: Some(code(ingress)),
        processed_at: d.processed_at.map(code),
        region: region_key,
        added_rtt_ms: ms(d.added_rtt_us),
    })
}
