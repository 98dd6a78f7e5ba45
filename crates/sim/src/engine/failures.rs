//! The scenario's failures as health changes over time.

use crate::scenario::{Failure, FailureTarget};
use crate::time::SimTime;
use inregion_edge::{DcId, Topology};
use inregion_model::ReferenceData;

/// The scenario's failures as health changes over time. A data center is down while at
/// least one failure covering it is in force: overlapping failures (a data center inside
/// a failed region, or a short outage inside a longer one) keep it down until the last
/// of them ends, instead of the first recovery bringing it back early.
pub(super) struct FailureSchedule {
    /// `(time, data centers, starts)`, sorted (stable) by time.
    events: Vec<(SimTime, Vec<DcId>, bool)>,
    next: usize,
    /// Failures in force per data center.
    depth: Vec<u32>,
}

impl FailureSchedule {
    /// Recoveries after `horizon` (the end of the run) do not happen within it.
    pub(super) fn new(
        refdata: &ReferenceData,
        topo: &Topology,
        failures: &[Failure],
        horizon: SimTime,
    ) -> Self {
        let mut events = Vec::new();
        for f in failures.iter().filter(|f| f.at <= horizon) {
            let dcs = failure_targets(refdata, topo, &f.target);
            if let Some(u) = f.until.filter(|&u| u <= horizon) {
                events.push((u, dcs.clone(), false));
            }
            events.push((f.at, dcs, true));
        }
        events.sort_by_key(|e| e.0);
        Self {
            events,
            next: 0,
            depth: vec![0; topo.dc_count()],
        }
    }

    /// When the next failure starts or ends.
    pub(super) fn next_at(&self) -> Option<SimTime> {
        self.events.get(self.next).map(|e| e.0)
    }

    /// Applies every start and end due at `now`; returns each touched data center once
    /// with its resulting health (healthy when no failure covers it any more).
    pub(super) fn apply_due(&mut self, now: SimTime) -> Vec<(DcId, bool)> {
        let mut touched: Vec<DcId> = Vec::new();
        while let Some((at, dcs, starts)) = self.events.get(self.next) {
            if *at != now {
                break;
            }
            self.next += 1;
            for &dc in dcs {
                let d = &mut self.depth[dc.index()];
                *d = if *starts { *d + 1 } else { d.saturating_sub(1) };
                if !touched.contains(&dc) {
                    touched.push(dc);
                }
            }
        }
        touched
            .into_iter()
            .map(|dc| (dc, self.depth[dc.index()] == 0))
            .collect()
    }
}

/// The data centers a failure takes down.
pub(super) fn failure_targets(
    refdata: &ReferenceData,
    topo: &Topology,
    target: &FailureTarget,
) -> Vec<DcId> {
    match target {
        FailureTarget::DataCenter(code) => topo.dc_by_code(*code).into_iter().collect(),
        FailureTarget::Country(cc) => refdata
            .data_centers()
            .iter()
            .enumerate()
            .filter(|(_, d)| d.country == *cc)
            .map(|(i, _)| DcId(i as u16))
            .collect(),
        FailureTarget::Region(key) => refdata
            .members_of(key)
            .map(|m| m.iter().map(|&i| DcId(i as u16)).collect())
            .unwrap_or_default(),
    }
}
