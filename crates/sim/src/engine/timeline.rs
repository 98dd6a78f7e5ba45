//! The replay of the control-plane timeline: each operation through the control plane's
//! rules and, for binding changes, a new table published to the edge.

use super::check::CheckNet;
use super::{SimError, TimelineEntry, VersionEntry};
use crate::control_port::{Control, ControlPort, Refusal};
use crate::rng::SimRng;
use crate::scenario::{Op, Scenario, TimelineOp};
use crate::time::SimTime;
use inregion_edge::{Edge, Topology};
use inregion_model::ReferenceData;
use ipnet::IpNet;
use std::cmp::Reverse;
use std::collections::BTreeMap;
use std::sync::Arc;

/// What the replay of a timeline keeps between operations.
#[derive(Default)]
pub(super) struct OpState {
    /// Scenario binding names → control-plane ids.
    pub(super) handles: BTreeMap<String, String>,
    /// Scenario address-map names → control-plane ids.
    pub(super) maps: BTreeMap<String, String>,
    /// The last published table version.
    pub(super) version: u64,
    /// Per version, the control plane's bindings (most specific first) with the region's
    /// index in the reference data: the independent check's view.
    pub(super) check_versions: Vec<Vec<CheckNet>>,
    /// Published versions.
    pub(super) versions: Vec<VersionEntry>,
}

/// Applies one timeline operation through the control plane and, for binding changes,
/// publishes the new table to the edge.
#[allow(clippy::too_many_arguments)]
pub(super) fn apply_op(
    sc: &Scenario,
    refdata: &ReferenceData,
    topo: &Arc<Topology>,
    edge: &mut Edge,
    control: &mut Control,
    st: &mut OpState,
    op: &TimelineOp,
    now: SimTime,
    rng: &mut SimRng,
) -> Result<TimelineEntry, SimError> {
    if st.check_versions.is_empty() {
        st.check_versions.push(Vec::new());
    }
    let fail = |refusal: Refusal| SimError::Timeline {
        file: sc.file.clone(),
        index: op.index,
        what: op.op.describe(),
        refusal,
    };
    let bindings_changed = apply_to_control(control, st, &op.op, now).map_err(fail)?;
    let mut entry = TimelineEntry {
        at: now,
        index: op.index,
        what: op.op.describe(),
        version: None,
    };
    if bindings_changed {
        let world = |message: String| SimError::World {
            file: sc.file.clone(),
            message,
        };
        publish(refdata, topo, edge, control, st, now, rng).map_err(world)?;
        entry.version = Some(st.version);
    }
    Ok(entry)
}

/// Runs `op` against the control plane, resolving the scenario's binding and map names
/// to the control plane's ids; returns whether the bindings changed (a new table to
/// publish). A name no earlier operation defined is refused as the API would refuse an
/// unknown id.
fn apply_to_control(
    control: &mut Control,
    st: &mut OpState,
    op: &Op,
    now: SimTime,
) -> Result<bool, Refusal> {
    let unknown = |what: &str, name: &str| Refusal {
        code: 1109,
        http_status: 404,
        message: format!("{what} {name:?} is not defined earlier in the timeline"),
    };
    match op {
        Op::CreateBinding {
            name,
            prefix,
            cidr,
            region,
        } => {
            let id = control.create_binding(*prefix, cidr, region, now)?;
            st.handles.insert(name.clone(), id);
            Ok(true)
        }
        Op::PatchBinding { binding, region } => {
            let id = st
                .handles
                .get(binding)
                .ok_or_else(|| unknown("binding", binding))?;
            control.patch_binding(id, region, now)?;
            Ok(true)
        }
        Op::DeleteBinding { binding } => {
            let id = st
                .handles
                .get(binding)
                .ok_or_else(|| unknown("binding", binding))?;
            control.delete_binding(id, now)?;
            Ok(true)
        }
        Op::CreateAddressMap { map, account, ips } => {
            let id = control.create_address_map(*account, ips, now)?;
            st.maps.insert(map.clone(), id);
            Ok(false)
        }
        Op::AddAddressMapIp { map, ip } => {
            let id = st
                .maps
                .get(map)
                .ok_or_else(|| unknown("address map", map))?;
            control.add_address_map_ip(id, ip, now)?;
            Ok(false)
        }
        Op::RemoveAddressMapIp { map, ip } => {
            let id = st
                .maps
                .get(map)
                .ok_or_else(|| unknown("address map", map))?;
            control.remove_address_map_ip(id, ip, now)?;
            Ok(false)
        }
    }
}

/// Publishes the control plane's live bindings as the next table version: to the edge
/// (which propagates it data center by data center) and to the independent check.
/// Errors are about the world (a region without data centers), not the API.
fn publish(
    refdata: &ReferenceData,
    topo: &Arc<Topology>,
    edge: &mut Edge,
    control: &Control,
    st: &mut OpState,
    now: SimTime,
    rng: &mut SimRng,
) -> Result<(), String> {
    st.version += 1;
    let live = control.live_bindings();
    let mut list: Vec<(IpNet, usize)> = Vec::new();
    let mut pairs = Vec::new();
    for b in &live {
        let key = inregion_model::RegionKey::parse(&b.region).map_err(|e| e.to_string())?;
        let r = refdata
            .region_index(&key)
            .ok_or_else(|| format!("region {} has no data center in this topology", b.region))?;
        list.push((b.cidr, r));
        pairs.push((b.cidr, key));
    }
    list.sort_by_key(|(n, _)| Reverse(n.prefix_len()));
    st.check_versions
        .push(list.into_iter().map(|(n, r)| CheckNet::new(n, r)).collect());
    let table = inregion_edge::region_table(topo, pairs.iter().map(|(n, k)| (*n, k)))
        .map_err(|e| e.to_string())?;
    edge.publish(st.version, table, now, rng)
        .map_err(|e| e.to_string())?;
    st.versions.push(VersionEntry {
        version: st.version,
        published_at: now,
        active_at: None,
        complete_at: None,
        reached: 0,
        total: topo.dc_count(),
        bindings: live.iter().map(|b| (b.cidr, b.region.clone())).collect(),
    });
    Ok(())
}
