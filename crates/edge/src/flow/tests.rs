use super::*;
use std::collections::HashMap;

fn key(i: u32) -> FlowKey {
    FlowKey::v4(
        Protocol::TCP,
        Ipv4Addr::from_bits(0x0a00_0000 | i),
        (i % 60_000) as u16,
        Ipv4Addr::new(203, 0, 113, 1),
        443,
    )
}

fn dec(i: u32) -> Decision {
    Decision {
        verdict: Verdict::Forwarded,
        ingress: DcId(0),
        processed_at: Some(DcId((i % 7) as u16 + 1)),
        region: Some(RegionIndex(1)),
        added_rtt_us: i,
        table_version: u64::from(i),
        established: false,
    }
}

fn config(max: usize) -> FlowTableConfig {
    FlowTableConfig {
        max_flows: max,
        initial_capacity: 8,
        ..FlowTableConfig::default()
    }
}

fn get(t: &FlowTable, k: &FlowKey) -> Option<Decision> {
    match t.index.probe(&t.entries, k, t.index.hash(k)) {
        Probe::Found(s) => Some(t.entries.entry(s).decision(DcId(0), false)),
        Probe::Vacant(_) => None,
    }
}

fn put(t: &mut FlowTable, k: &FlowKey, d: &Decision, now: u64, to: &Timeouts) {
    put_in(&mut t.index, &mut t.entries, k, d, now, to);
}

/// `put` through any entry storage (the plain vector or a batch's writer).
fn put_in(
    ix: &mut FlowIndex,
    es: &mut impl Entries,
    k: &FlowKey,
    d: &Decision,
    now: u64,
    to: &Timeouts,
) {
    let h = ix.hash(k);
    match ix.probe(es, k, h) {
        Probe::Found(_) => panic!("already there"),
        Probe::Vacant(s) => ix.insert(es, k, h, s, d, now, to),
    }
}

#[test]
fn huge_limits_do_not_overflow() {
    let to = Timeouts::new(&FlowTableConfig::default());
    let mut t = FlowTable::new(&FlowTableConfig {
        max_flows: usize::MAX,
        ..config(usize::MAX)
    });
    let d = Decision {
        verdict: Verdict::Global,
        ingress: DcId(0),
        processed_at: Some(DcId(0)),
        region: None,
        added_rtt_us: 0,
        table_version: 1,
        established: false,
    };
    for i in 0..100 {
        put(&mut t, &key(i), &d, 0, &to);
    }
    assert_eq!(t.len(), 100);
}

#[test]
fn key_round_trips() {
    let k = FlowKey::new(
        Protocol::UDP,
        "2001:db8::1".parse().unwrap(),
        5353,
        "2001:db8::2".parse().unwrap(),
        53,
    )
    .unwrap();
    let e = Entry {
        src: k.src,
        dst: k.dst,
        tail: k.tail,
        ..Entry::default()
    };
    assert_eq!(e.key(), k);
    assert!(e.matches(&k));
    assert_eq!(k.dst(), "2001:db8::2".parse::<IpAddr>().unwrap());
    assert_eq!(
        FlowKey::new(
            Protocol::TCP,
            "10.0.0.1".parse().unwrap(),
            1,
            "::1".parse().unwrap(),
            2
        ),
        Err(FlowKeyError::MixedFamilies)
    );
    // The two families never collide, even with the same integer values.
    let a = FlowKey::v4(
        Protocol::TCP,
        Ipv4Addr::from_bits(1),
        1,
        Ipv4Addr::from_bits(2),
        2,
    );
    let b = FlowKey::v6(
        Protocol::TCP,
        Ipv6Addr::from_bits(1),
        1,
        Ipv6Addr::from_bits(2),
        2,
    );
    assert_ne!(a, b);
    assert_ne!(a.tail, b.tail);
}

/// Random inserts and removes against a `HashMap` model, through growth.
#[test]
fn matches_a_hashmap_model() {
    let to = Timeouts::new(&FlowTableConfig::default());
    let mut t = FlowTable::new(&config(10_000));
    let mut model = HashMap::new();
    let mut x: u64 = 12345;
    for step in 0..40_000u32 {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let i = (x % 3000) as u32;
        let k = key(i);
        if x.is_multiple_of(3) {
            let h = t.index.hash(&k);
            if let Probe::Found(s) = t.index.probe(&t.entries, &k, h) {
                t.index.remove_at(s);
                assert!(model.remove(&k).is_some());
            } else {
                assert!(!model.contains_key(&k));
            }
        } else if let std::collections::hash_map::Entry::Vacant(v) = model.entry(k) {
            put(&mut t, &k, &dec(step), 0, &to);
            v.insert(dec(step));
        }
        if step % 997 == 0 {
            for (k, d) in &model {
                assert_eq!(get(&t, k), Some(*d));
            }
        }
    }
    assert_eq!(t.len(), model.len());
    assert_eq!(t.index.count_live(), model.len());
    for i in 0..3000 {
        assert_eq!(get(&t, &key(i)), model.get(&key(i)).copied());
    }
    assert!(t.stats().grows > 0);
}

/// A hint is only a shortcut: a stale, wrong or out-of-range one gives the same
/// answer as a plain probe.
#[test]
fn probe_from_checks_its_hint() {
    let to = Timeouts::new(&FlowTableConfig::default());
    let mut t = FlowTable::new(&config(1000));
    for i in 0..100 {
        put(&mut t, &key(i), &dec(i), 0, &to);
    }
    let slot_of =
        |t: &FlowTable, i: u32| match t.index.probe(&t.entries, &key(i), t.index.hash(&key(i))) {
            Probe::Found(s) => s,
            Probe::Vacant(_) => panic!("key {i} missing"),
        };
    let (s1, s2) = (slot_of(&t, 1), slot_of(&t, 2));
    let found = |p: Probe| match p {
        Probe::Found(s) => Some(s),
        Probe::Vacant(_) => None,
    };
    for hint in [Some(s1), Some(s2), Some(usize::MAX), None] {
        let h = t.index.hash(&key(1));
        let p = t.index.probe_from(&t.entries, &key(1), h, hint);
        assert_eq!(found(p), Some(s1), "{hint:?}");
        let h = t.index.hash(&key(500));
        let p = t.index.probe_from(&t.entries, &key(500), h, hint);
        assert_eq!(found(p), None, "{hint:?}");
    }
    // The hinted slot emptied, the key put back elsewhere or nowhere. Removal leaves
    // the entry's bytes in place: the control byte alone says the slot is free.
    t.index.remove_at(s1);
    assert!(t.entries.entry(s1).matches(&key(1)));
    let h = t.index.hash(&key(1));
    let p = t.index.probe_from(&t.entries, &key(1), h, Some(s1));
    assert_eq!(found(p), None);
    assert_eq!(found(t.index.probe(&t.entries, &key(1), h)), None);
}

/// The same operations (pins with growth and eviction, lookups of flows pinned a
/// moment before, refreshes, removals) give the same table whether the entries are
/// the plain vector or a batch's streaming writer, across scopes of any length.
#[test]
fn streaming_batches_change_the_table_as_plain_stores_do() {
    let to = Timeouts::new(&FlowTableConfig::default());
    let mut plain = FlowTable::new(&config(700));
    let mut batched = FlowTable::new(&config(700));
    let mut x: u64 = 99;
    let mut rng = move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    // One operation on a table, through either storage; returns what a lookup saw.
    fn op(
        ix: &mut FlowIndex,
        es: &mut impl Entries,
        r: u64,
        now: u64,
        to: &Timeouts,
    ) -> Option<Decision> {
        let i = (r % 2000) as u32;
        let k = key(i);
        let h = ix.hash(&k);
        match (ix.probe(es, &k, h), r % 10) {
            (Probe::Found(s), 0) => {
                ix.remove_at(s);
                None
            }
            (Probe::Found(s), _) => {
                es.touch_seen(s, now);
                Some(es.entry(s).decision(DcId(0), true))
            }
            (Probe::Vacant(s), _) => {
                ix.insert(es, &k, h, s, &dec(i), now, to);
                None
            }
        }
    }
    let mut now = 0;
    let (mut seen, mut fenced_early, mut streams) = (0, 0, false);
    while now < 20_000 {
        let ops: Vec<u64> = (0..rng() % 100 + 1).map(|_| rng()).collect();
        let want: Vec<_> = ops
            .iter()
            .enumerate()
            .map(|(j, &r)| op(&mut plain.index, &mut plain.entries, r, now + j as u64, &to))
            .collect();
        let FlowTable { index, entries } = &mut batched;
        let got: Vec<_> = inregion_hint::with_streaming(entries, |w| {
            streams = w.streams();
            ops.iter()
                .enumerate()
                .map(|(j, &r)| {
                    let before = w.pending();
                    let got = op(index, w, r, now + j as u64, &to);
                    // Fewer pending stores: this operation fenced them (it
                    // reached an entry written earlier in the scope, or grew the
                    // table) before the scope's end.
                    fenced_early += usize::from(w.pending() < before);
                    got
                })
                .collect()
        });
        assert_eq!(got, want, "at {now}");
        seen += got.iter().flatten().count();
        now += ops.len() as u64;
    }
    assert!(seen > 1000, "{seen} lookups found their flow");
    // The early fences were exercised (there are none without streaming stores).
    assert!(!streams || fenced_early > 10, "{fenced_early} early fences");
    let (a, b) = (plain.stats(), batched.stats());
    assert_eq!(a, b);
    assert!(a.grows > 0 && a.evicted > 0, "{a:?}");
    let image = |e: &Entry| {
        (
            e.key(),
            e.version,
            e.last_seen,
            e.added_rtt_us,
            e.target,
            e.region,
        )
    };
    assert_eq!(plain.entries.len(), batched.entries.len());
    for (slot, (p, q)) in plain.entries.iter().zip(&batched.entries).enumerate() {
        assert!(image(p) == image(q), "slot {slot}");
    }
}

#[test]
fn full_table_evicts_least_recently_seen() {
    let to = Timeouts::new(&FlowTableConfig::default());
    let mut t = FlowTable::new(&config(16));
    for i in 0..16 {
        put(&mut t, &key(i), &dec(i), u64::from(i) + 1, &to);
    }
    assert_eq!(t.len(), 16);
    // Refresh everything but key 5: it is the least recently seen.
    for i in (0..16).filter(|&i| i != 5) {
        let h = t.index.hash(&key(i));
        let Probe::Found(s) = t.index.probe(&t.entries, &key(i), h) else {
            panic!()
        };
        t.entries.touch_seen(s, 100);
    }
    put(&mut t, &key(99), &dec(99), 101, &to);
    assert_eq!(t.len(), 16);
    assert_eq!(t.stats().evicted, 1);
    assert_eq!(get(&t, &key(5)), None);
    assert!(get(&t, &key(99)).is_some());
    assert!(t.capacity() <= 32);
}

#[test]
fn sweep_drops_only_idle_entries() {
    let c = FlowTableConfig {
        tcp_idle_timeout: Duration::from_nanos(100),
        ..config(1000)
    };
    let to = Timeouts::new(&c);
    let mut t = FlowTable::new(&c);
    for i in 0..200 {
        put(
            &mut t,
            &key(i),
            &dec(i),
            if i % 2 == 0 { 0 } else { 500 },
            &to,
        );
    }
    let dropped = t.sweep(550, usize::MAX, &to);
    assert_eq!(dropped, 100);
    assert_eq!(t.len(), 100);
    for i in 0..200 {
        assert_eq!(get(&t, &key(i)).is_some(), i % 2 == 1, "{i}");
    }
    assert_eq!(t.stats().expired, 100);
}
