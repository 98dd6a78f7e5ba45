//! Replaying a run up to one instant, without flows (`inregion trace`).

use super::failures::FailureSchedule;
use super::timeline::{apply_op, OpState};
use super::{SimError, Simulation, TimelineEntry, VersionEntry};
use crate::rng::{stream, SimRng, Stream};
use crate::time::SimTime;
use inregion_edge::{DcId, Edge, Topology};
use inregion_model::ReferenceData;
use std::sync::Arc;

/// The world at one instant: the edge after replaying the timeline, the failures and the
/// table deliveries up to that time (no flows). Used by `inregion trace`.
pub struct WorldAt {
    /// The edge at `at`.
    pub edge: Edge,
    /// The topology.
    pub topology: Arc<Topology>,
    /// The reference data of the run (less excluded data centers).
    pub refdata: ReferenceData,
    /// The instant.
    pub at: SimTime,
    /// Operations applied up to `at`.
    pub timeline: Vec<TimelineEntry>,
    /// Versions published up to `at`.
    pub versions: Vec<VersionEntry>,
    /// Per data center, when its current table version arrived.
    pub arrived_at: Vec<SimTime>,
    /// Health changes applied up to `at`.
    pub health_changes: Vec<(SimTime, String, bool)>,
}

impl Simulation {
    /// Replays the control-plane timeline, failures and propagation up to `at` (flows
    /// and DNS probes are not simulated).
    pub fn replay_until(mut self, at: SimTime) -> Result<WorldAt, SimError> {
        let sc = &self.scenario;
        let mut r_prop: SimRng = stream(sc.seed, Stream::Propagation);
        let mut ops = OpState::default();
        let mut timeline = Vec::new();
        let mut health_changes = Vec::new();
        let mut failures =
            FailureSchedule::new(&self.refdata, &self.topo, &sc.failures, self.horizon);
        let ndc = self.topo.dc_count();
        let mut arrived_at = vec![SimTime::ZERO; ndc];
        let mut known: Vec<u64> = vec![0; ndc];
        let mut ti = 0usize;
        loop {
            let op_t = sc.timeline.get(ti).map_or(SimTime::MAX, |o| o.at);
            let h_t = failures.next_at().unwrap_or(SimTime::MAX);
            let edge_t = self.edge.next_deadline().unwrap_or(SimTime::MAX);
            let t = op_t.min(h_t).min(edge_t);
            if t > at || t == SimTime::MAX {
                break;
            }
            if op_t == t {
                let op = &sc.timeline[ti];
                ti += 1;
                timeline.push(apply_op(
                    sc,
                    &self.refdata,
                    &self.topo,
                    &mut self.edge,
                    &mut self.control,
                    &mut ops,
                    op,
                    t,
                    &mut r_prop,
                )?);
            } else if h_t == t {
                let changes = failures.apply_due(t);
                for &(dc, h) in &changes {
                    if self.edge.is_healthy(dc) != h {
                        health_changes.push((t, self.topo.dc(dc).code.to_string(), h));
                    }
                }
                self.edge.set_health(&changes);
            } else {
                self.edge.tick(t);
            }
            for (i, k) in known.iter_mut().enumerate() {
                let v = self.edge.table_version(DcId(i as u16));
                if v != *k {
                    *k = v;
                    arrived_at[i] = t;
                }
            }
        }
        let mut versions = ops.versions;
        for v in &mut versions {
            if let Some(s) = self.edge.version_status(v.version) {
                v.active_at = s.active_at.filter(|&x| x <= at);
                v.complete_at = s.complete_at.filter(|&x| x <= at);
                v.reached = s.reached;
            }
        }
        Ok(WorldAt {
            edge: self.edge,
            topology: self.topo,
            refdata: self.refdata,
            at,
            timeline,
            versions,
            arrived_at,
            health_changes,
        })
    }
}
