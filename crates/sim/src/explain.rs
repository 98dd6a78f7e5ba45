//! `inregion trace`: one decision, step by step.
//!
//! Replays a scenario's timeline up to an instant ([`Simulation::replay_until`]), then
//! asks the edge to explain how a new flow from a place to an address is handled:
//! ingress, the ingress's table version, the matched binding and region, the in-region
//! candidates with their RTTs, the chosen data center and the added RTT.

use crate::engine::{SimError, Simulation, WorldAt};
use crate::scenario::{ClientPlace, Scenario};
use crate::time::SimTime;
use crate::world::resolve_place;
use inregion_edge::{
    DcId, Decision, Explanation, FlowKey, Protocol, RefuseReason, Topology, Verdict,
};
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

/// The IATA code of a data center, as steps print it.
fn code(topo: &Topology, dc: DcId) -> String {
    topo.dc(dc).code.to_string()
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
        code(topo, ingress),
        ms(client_rtt)
    ));
    let ex = w.edge.explain(ingress, &traced_flow(req.dst), at);
    steps.push(table_step(&w, ingress, ex.table_version));
    let region_key = ex.matched.map(|(_, r)| topo.region(r).key.to_string());
    steps.push(match ex.matched {
        None => format!(
            "3. longest-prefix match: no binding covers {} → not regionalized",
            req.dst
        ),
        Some((net, r)) => format!(
            "3. longest-prefix match: {net} → region {}",
            topo.region(r).key
        ),
    });
    steps.push(in_region_step(topo, &ex, ingress, region_key.as_deref()));
    let d = ex.fresh;
    steps.push(format!("5. decision: {}", verdict_text(topo, &d, ingress)));
    Ok(Trace {
        steps,
        ingress: Some(code(topo, ingress)),
        processed_at: d.processed_at.map(|dc| code(topo, dc)),
        region: region_key,
        added_rtt_ms: ms(d.added_rtt_us),
    })
}

/// The traced flow: a new HTTPS connection to `dst` from a fixed client address.
fn traced_flow(dst: IpAddr) -> FlowKey {
    match dst {
        IpAddr::V4(d) => FlowKey::v4(Protocol::TCP, Ipv4Addr::new(100, 64, 0, 1), 50000, d, 443),
        IpAddr::V6(d) => FlowKey::v6(
            Protocol::TCP,
            Ipv6Addr::new(0xfd00, 0, 0, 0, 0, 0, 0, 1),
            50000,
            d,
            443,
        ),
    }
}

/// Step 2: the ingress's table version `v`, and a newer version still on its way.
fn table_step(w: &WorldAt, ingress: DcId, v: u64) -> String {
    let at_ingress = code(&w.topology, ingress);
    let latest = w.versions.last().map_or(0, |x| x.version);
    let mut table = if v == 0 {
        format!("2. {at_ingress}'s table: empty (no binding has reached it)")
    } else {
        format!(
            "2. {at_ingress}'s table: version {v} (arrived {})",
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
    table
}

/// Step 4: whether the ingress may process a bound flow itself, and otherwise the
/// in-region candidates it may forward to.
fn in_region_step(
    topo: &Topology,
    ex: &Explanation,
    ingress: DcId,
    region_key: Option<&str>,
) -> String {
    let at_ingress = code(topo, ingress);
    match (ex.matched, ex.ingress_in_region) {
        (Some(_), Some(true)) => format!(
            "4. {at_ingress} is a member of {}: TLS is terminated and the request processed there",
            region_key.unwrap_or("?")
        ),
        (Some(_), _) => {
            let mut s = format!(
                "4. {at_ingress} is not in {}: in-region candidates by RTT from {at_ingress} (healthy ones only can be chosen):",
                region_key.unwrap_or("?"),
            );
            for c in ex.candidates.iter().take(6) {
                let _ = write!(
                    s,
                    "\n     {} {:>8} {}{}",
                    code(topo, c.dc),
                    c.rtt_us
                        .map_or("no path".to_string(), |r| format!("{:.1} ms", ms(r))),
                    if c.healthy { "healthy" } else { "DOWN" },
                    if c.chosen { "  ← chosen" } else { "" }
                );
            }
            if ex.candidates.len() > 6 {
                let _ = write!(s, "\n     … {} more", ex.candidates.len() - 6);
            }
            s
        }
        (None, _) => format!("4. processed at the ingress {at_ingress} (normal global behaviour)"),
    }
}

/// Step 5: the decision in words.
fn verdict_text(topo: &Topology, d: &Decision, ingress: DcId) -> String {
    match d.verdict {
        Verdict::Global => format!("processed at {} (not regionalized)", code(topo, ingress)),
        Verdict::InRegion => format!("processed at {} (in region)", code(topo, ingress)),
        Verdict::Forwarded => format!(
            "forwarded over the backbone, still encrypted, to {}; added RTT {:.1} ms",
            d.processed_at.map(|dc| code(topo, dc)).unwrap_or_default(),
            ms(d.added_rtt_us)
        ),
        Verdict::Refused(RefuseReason::NoHealthyInRegion) => {
            "refused: no healthy in-region data center (fail closed, never processed out of region)"
                .into()
        }
        Verdict::Refused(RefuseReason::IngressDown) => "refused: the ingress is down".into(),
        Verdict::Reset(_) => "reset".into(),
    }
}
