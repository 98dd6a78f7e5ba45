//! Edge nodes: majority activation, the edge feed, `version_after`.

use super::*;

/// Edge activation (`Activation::Edges`): a change is provisioning until a majority of
/// the registered nodes report its version, stopped nodes keep counting, a restart keeps
/// registrations and activations, expiry forgets a node, the address-map gate follows.
#[test]
fn edges_activate_what_a_majority_applied() {
    use inregion_feed::wire::NodeReport;
    let cfg = ControlConfig {
        activation: Activation::Edges,
        ..ControlConfig::default()
    };
    let f = fx_with(cfg.clone());
    let wall = |s: i64| Timestamp::from_secs(1_900_000_000 + s);
    let report = |id: &str, dc: &str, applied: u64, w: i64| {
        let r = NodeReport {
            dc: inregion_model::Iata::parse(dc).unwrap(),
            address: format!("127.0.0.1:{}", 9000 + applied),
            applied_version: applied,
        };
        f.cp.report_edge_node(id, &r, wall(w), t(1))
    };
    let b = f.create(DEMO, "203.0.113.0/25", "eu", t(0)).unwrap();
    let v = f.cp.binding_record(&b.id).unwrap().version;
    let state = |now| f.sb_state(&b.id, DEMO, now);
    // No node: nothing activates, whatever the time.
    assert_eq!(state(t(1000)), ProvisioningState::Provisioning);
    assert_eq!(f.cp.next_transition_after(t(0)), None);
    // Three nodes (their registrations bump the version); one has applied v: 1 of 3.
    // (Alone, the first node to register would have been a majority of one.)
    report("IAD", "IAD", 0, 0).unwrap();
    report("NRT", "NRT", 0, 0).unwrap();
    let (_, view) = report("FRA", "FRA", v, 0).unwrap();
    assert_eq!((view.nodes.len(), view.majority), (3, 2));
    assert_eq!(state(t(1000)), ProvisioningState::Provisioning);
    // Address-map gate: still refused.
    let map =
        f.cp.create_address_map(&f.rw, ACCT, CreateAddressMap::default(), t(1))
            .unwrap();
    let mid = map.id.to_string();
    let e =
        f.cp.add_address_map_ip(&f.rw, ACCT, &mid, "203.0.113.9", t(1))
            .unwrap_err();
    assert_eq!(e.code(), 1301);
    // A second node reaches v: a majority (2 of 3). Active from the report's clock time.
    let (_, view) = report("IAD", "IAD", v, 1).unwrap();
    assert!(view.activated_through >= v);
    assert_eq!(state(t(1)), ProvisioningState::Active);
    f.cp.add_address_map_ip(&f.rw, ACCT, &mid, "203.0.113.9", t(1))
        .unwrap();
    // A delete waits for the majority too: deleting, still in force.
    f.cp.delete_binding(&f.rw, ACCT, &b.id.to_string(), t(2))
        .unwrap();
    let dv = f.cp.binding_record(&b.id).unwrap().version;
    assert!(f.cp.binding_record(&b.id).unwrap().awaits_edges());
    assert_eq!(f.in_force(t(500)).len(), 1);
    // Nodes stop (not live any more) but keep counting: one report is not a majority.
    let (_, view) = report("FRA", "FRA", dv, 100).unwrap();
    assert!(view.nodes.iter().filter(|n| n.live).count() == 1);
    assert!(view.activated_through < dv);
    assert!(f.cp.binding_record(&b.id).unwrap().awaits_edges());
    // A restart forgets what was applied, keeps the registrations and the activation.
    let again = ControlPlane::open(Box::new(f.store.clone()), cfg.clone()).unwrap();
    assert_eq!(again.dump(), f.cp.dump());
    let reg = again.edge_registry(wall(101));
    assert_eq!(reg.nodes.len(), 3);
    assert_eq!(reg.activated_through, 0);
    drop(again);
    // NRT comes back having applied dv: 2 of 3 → gone.
    report("NRT", "NRT", dv, 101).unwrap();
    assert!(!f.cp.binding_record(&b.id).unwrap().awaits_edges());
    assert!(f.in_force(t(3)).is_empty());
    // Expiry: after an hour without a report IAD is forgotten (FRA and NRT report).
    let (_, view) = report("FRA", "FRA", dv, 3700).unwrap();
    assert_eq!(view.nodes.len(), 2, "{view:?}");
    // Deregistration; unknown node; bad input changes nothing.
    f.cp.remove_edge_node("NRT", wall(3701), t(4)).unwrap();
    assert!(matches!(
        f.cp.remove_edge_node("NRT", wall(3701), t(4)),
        Err(EdgeNodeError::NotFound(_))
    ));
    let before = f.cp.version();
    assert!(matches!(
        report("a/b", "FRA", 1, 3702),
        Err(EdgeNodeError::InvalidNodeId(_))
    ));
    assert!(matches!(
        report("X", "ZZZ", 1, 3702),
        Err(EdgeNodeError::UnknownDc(_))
    ));
    assert_eq!(f.cp.version(), before);
}

/// The edge feed: snapshot is the live bindings' intent at one version; changes carry
/// deletions; a reader ahead of the server or behind a purge is refused.
#[test]
fn edge_feed_snapshot_and_changes() {
    let f = fx();
    let s0 = f.cp.edge_snapshot(7);
    assert!(s0.bindings.is_empty());
    assert_eq!(s0.regions.len(), 2, "the seeded custom regions");
    let a = f.create(DEMO, "203.0.113.0/25", "eu", t(0)).unwrap();
    let b = f.create(DEMO, "203.0.113.128/25", "us", t(0)).unwrap();
    f.cp.delete_binding(&f.rw, ACCT, &b.id.to_string(), t(1))
        .unwrap();
    let s = f.cp.edge_snapshot(7);
    assert_eq!(s.version, f.cp.version());
    assert_eq!(s.bindings.len(), 1);
    assert_eq!(s.bindings[0].binding_id, a.id);
    // Provisioning (delay mode): the feed carries the intent, not what is in force.
    assert_eq!(s.bindings[0].region_key.as_str(), "eu");
    let c = f.cp.edge_changes(s0.version, 7).unwrap();
    assert_eq!(c.version, s.version);
    let got: Vec<_> = c
        .changes
        .iter()
        .map(|c| (c.binding_id, c.deleted))
        .collect();
    assert_eq!(got, vec![(a.id, false), (b.id, true)]);
    assert!(matches!(
        f.cp.edge_changes(s.version + 1, 7),
        Err(FeedError::Ahead { .. })
    ));
    assert!(f.cp.edge_changes(s.version, 7).unwrap().changes.is_empty());
}

/// A long-polling reader is woken by the next commit, from another thread.
#[test]
fn version_after_wakes_on_commit() {
    let f = std::sync::Arc::new(fx());
    let v = f.cp.version();
    let f2 = f.clone();
    let h = std::thread::spawn(move || block_on(f2.cp.version_after(v)));
    std::thread::sleep(std::time::Duration::from_millis(50));
    assert!(!h.is_finished());
    f.create(DEMO, "203.0.113.0/25", "eu", t(0)).unwrap();
    assert_eq!(h.join().unwrap(), v + 1);
}

/// A data directory switched from `--activation edges` back to `delay`: the changes left
/// waiting for nodes take effect the propagation delay after they were made, once the
/// server settles them at start; under `edges` the call settles nothing.
#[test]
fn switching_back_to_the_delay_settles_what_waited_for_nodes() {
    let edges = ControlConfig {
        activation: Activation::Edges,
        ..ControlConfig::default()
    };
    let f = fx_with(edges.clone());
    let kept = f.create(DEMO, "203.0.113.0/25", "eu", t(0)).unwrap();
    let gone = f.create(DEMO, "203.0.113.128/25", "us", t(0)).unwrap();
    f.cp.delete_binding(&f.rw, ACCT, &gone.id.to_string(), t(1))
        .unwrap();
    assert_eq!(block_on(f.cp.settle_awaiting_by_delay()).unwrap(), 0);
    assert!(f.cp.binding_record(&kept.id).unwrap().awaits_edges());
    let again = ControlPlane::open(Box::new(f.store.clone()), ControlConfig::default()).unwrap();
    assert_eq!(block_on(again.settle_awaiting_by_delay()).unwrap(), 2);
    let delay = ControlConfig::default().propagation_delay;
    let k = again.binding_record(&kept.id).unwrap();
    assert!(!k.awaits_edges());
    assert_eq!(k.active_at, t(0).plus(delay));
    assert_eq!(k.state_at(t(0).plus(delay)), BindingState::Active);
    let g = again.binding_record(&gone.id).unwrap();
    assert_eq!(g.gone_at, Some(t(1).plus(delay)));
    assert_eq!(g.state_at(t(1).plus(delay)), BindingState::Gone);
    // Nothing left: a second start settles nothing, and the purge can now forget it.
    assert_eq!(block_on(again.settle_awaiting_by_delay()).unwrap(), 0);
}
