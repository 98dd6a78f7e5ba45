//! The route plan: for every (ingress, region) pair, the decision a new flow gets,
//! precomputed on health changes so that a decision is one array read.

use super::*;

/// Precomputed route for one (ingress, region-or-unbound) pair.
#[derive(Clone, Copy, Debug)]
pub(super) struct Route {
    pub(super) verdict: Verdict,
    pub(super) processed_at: Option<DcId>,
    pub(super) added_rtt_us: u32,
}

/// Health and the dense route array derived from it.
#[derive(Clone, Debug)]
pub(super) struct Plan {
    pub(super) policy: Arc<dyn TargetPolicy>,
    pub(super) healthy: Vec<bool>,
    /// `[ingress * cols + col]`, col 0 = unbound, col r+1 = region r.
    pub(super) routes: Vec<Route>,
    pub(super) cols: usize,
}

impl Plan {
    pub(super) fn new(topo: &Topology) -> Self {
        let mut p = Plan {
            policy: Arc::new(LowestRtt),
            healthy: vec![true; topo.dc_count()],
            routes: Vec::new(),
            cols: topo.region_count() + 1,
        };
        p.recompute(topo);
        p
    }

    /// O(data centers × total region membership): microseconds for the real topology.
    pub(super) fn recompute(&mut self, topo: &Topology) {
        let n = topo.dc_count();
        let refuse = |reason| Route {
            verdict: Verdict::Refused(reason),
            processed_at: None,
            added_rtt_us: 0,
        };
        self.routes.clear();
        self.routes.reserve(n * self.cols);
        let mut candidates = Vec::new();
        for i in 0..n {
            let ingress = DcId(i as u16);
            if !self.healthy[i] {
                self.routes
                    .extend((0..self.cols).map(|_| refuse(RefuseReason::IngressDown)));
                continue;
            }
            self.routes.push(Route {
                verdict: Verdict::Global,
                processed_at: Some(ingress),
                added_rtt_us: 0,
            });
            for (r, region) in topo.regions().iter().enumerate() {
                let route = if topo.is_member(ingress, RegionIndex(r as u16)) {
                    Route {
                        verdict: Verdict::InRegion,
                        processed_at: Some(ingress),
                        added_rtt_us: 0,
                    }
                } else {
                    candidates.clear();
                    candidates.extend(
                        region
                            .members
                            .iter()
                            .filter(|m| self.healthy[m.index()])
                            .map(|&m| (m, topo.rtt_us(ingress, m)))
                            .filter(|&(_, rtt)| rtt != RTT_UNREACHABLE),
                    );
                    candidates.sort_unstable_by_key(|&(m, rtt)| (rtt, m));
                    let chosen = self
                        .policy
                        .choose(ingress, RegionIndex(r as u16), &candidates)
                        .and_then(|i| candidates.get(i));
                    chosen.map_or(refuse(RefuseReason::NoHealthyInRegion), |&(dc, rtt)| {
                        Route {
                            verdict: Verdict::Forwarded,
                            processed_at: Some(dc),
                            added_rtt_us: rtt,
                        }
                    })
                };
                self.routes.push(route);
            }
        }
    }

    #[inline]
    pub(super) fn decision(
        &self,
        ingress: DcId,
        region: Option<RegionIndex>,
        version: u64,
    ) -> Decision {
        let col = region.map_or(0, |r| r.index() + 1);
        let r = self.routes[ingress.index() * self.cols + col];
        Decision {
            verdict: r.verdict,
            ingress,
            processed_at: r.processed_at,
            region,
            added_rtt_us: r.added_rtt_us,
            table_version: version,
            established: false,
        }
    }
}
