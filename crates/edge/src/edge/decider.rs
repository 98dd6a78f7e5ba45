//! The per-packet core shared by single and batch decisions: a [`Decider`] over one
//! ingress's flow table and snapshot, and the batch pipeline's stages (hash and
//! prefetch, entry lines, region lookups) over lanes of packets.

use super::*;

#[inline]
pub(super) fn lookup(snap: &Snapshot<RegionIndex>, flow: &FlowKey) -> Option<RegionIndex> {
    let (v6, dst) = flow.dst_bits();
    if v6 {
        snap.lookup_v6(Ipv6Addr::from_bits(dst))
    } else {
        snap.lookup_v4(Ipv4Addr::from_bits(dst as u32))
    }
}

/// Whether a packet keeps its flow pinned or ends it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Pin {
    /// A new processed flow is pinned and a known one's pin refreshed.
    Hold,
    /// The packet ends the flow (FIN/RST): nothing is pinned and a known flow's pin is
    /// released.
    Release,
}

/// What the caller already knows of a packet's destination region.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum RegionHint {
    /// Not looked up: the decision looks it up in the snapshot if it needs it.
    Unknown,
    /// Looked up already (by [`Edge::decide_many`]'s pipeline) in the same snapshot: the
    /// region, or `None` when the destination is unbound.
    Looked(Option<RegionIndex>),
}

impl RegionHint {
    /// The destination region of `flow` in `snap`.
    #[inline(always)]
    pub(super) fn resolve(
        self,
        snap: &Snapshot<RegionIndex>,
        flow: &FlowKey,
    ) -> Option<RegionIndex> {
        match self {
            RegionHint::Looked(region) => region,
            RegionHint::Unknown => lookup(snap, flow),
        }
    }
}

/// What every packet of one call (`decide`, `last_packet`, or a whole `decide_many`
/// batch) at one ingress shares: that ingress's flow table `ft` with its entries `es`
/// (the plain vector, or in `decide_many` the batch's streaming writer: see
/// [`Entries`]), the route plan, the affinity mode and timeouts, the ingress, its table
/// snapshot and the time. The per-packet core is [`decide`](Self::decide); its branches
/// are small functions of their own so that `decide_many`'s fast paths run the same
/// code.
pub(super) struct Decider<'a, E> {
    pub(super) ft: &'a mut FlowIndex,
    pub(super) es: &'a mut E,
    pub(super) plan: &'a Plan,
    pub(super) affinity: AffinityMode,
    pub(super) timeouts: &'a Timeouts,
    pub(super) ingress: DcId,
    /// Whether the ingress is healthy (`plan.healthy[ingress]`, read once per call).
    pub(super) ingress_up: bool,
    pub(super) snap: &'a Snapshot<RegionIndex>,
    /// Nanoseconds.
    pub(super) now: u64,
    /// Established hits not yet added to `ft.stats` (on drop): a counter in a register
    /// rather than a store per packet.
    pub(super) hits: u64,
}

impl<E> Drop for Decider<'_, E> {
    #[inline(always)]
    fn drop(&mut self) {
        self.ft.stats.hits += self.hits;
    }
}

impl<E: Entries> Decider<'_, E> {
    /// The per-packet core, shared by `decide`, `decide_many` and `packet`: decides
    /// `flow` (hashed to `hash`) and pins, refreshes or releases its pin as `pin` says.
    /// `region`: its destination region if the caller looked it up already; `hint`: a
    /// slot that probably holds it (see [`FlowIndex::probe_from`]).
    #[inline(always)]
    pub(super) fn decide(
        &mut self,
        flow: &FlowKey,
        hash: u64,
        pin: Pin,
        region: RegionHint,
        hint: Option<usize>,
    ) -> Decision {
        match self.ft.probe_from(self.es, flow, hash, hint) {
            Probe::Found(slot) if self.es.is_expired(slot, self.now, self.timeouts) => {
                self.renew(slot, flow, pin, region)
            }
            Probe::Found(slot) => self.established(slot, flow, pin),
            Probe::Vacant(slot) => self.new_flow(slot, flow, hash, pin, region),
        }
    }

    /// A known flow in `slot` idle past its timeout: the old pin is gone; this packet
    /// starts anew (pinned again in the same slot, or the slot freed).
    #[inline(always)]
    pub(super) fn renew(
        &mut self,
        slot: usize,
        flow: &FlowKey,
        pin: Pin,
        region: RegionHint,
    ) -> Decision {
        self.ft.stats.expired += 1;
        let d = self.fresh(flow, region);
        if pin == Pin::Hold && d.verdict.is_processed() {
            self.es.repin(slot, &d, self.now);
            self.ft.stats.pinned += 1;
        } else {
            self.ft.remove_at(slot);
        }
        d
    }

    /// A live known flow in `slot` (not idle past its timeout): its pinned decision, or a
    /// reset when its processing data center or the ingress is down, or (under
    /// [`AffinityMode::ResetOnChange`]) its destination's region changed since it was
    /// pinned.
    #[inline(always)]
    pub(super) fn established(&mut self, slot: usize, flow: &FlowKey, pin: Pin) -> Decision {
        let e = self.es.entry(slot);
        if !self.holds(e) {
            if let Some(reason) = self.reset_reason(e, flow) {
                let d = Decision {
                    verdict: Verdict::Reset(reason),
                    ingress: self.ingress,
                    processed_at: None,
                    region: e.region(),
                    added_rtt_us: 0,
                    table_version: e.version,
                    established: true,
                };
                drop_reset_pin(self.ft, slot);
                return d;
            }
        }
        let d = e.decision(self.ingress, true);
        self.hit(slot, pin);
        d
    }

    /// Whether the pin `e` surely holds: both ends are healthy and, under
    /// [`AffinityMode::ResetOnChange`], it was made with the current table. The cheap
    /// test of an established packet (`decide_many` makes it on a prefetched entry);
    /// when it fails, [`reset_reason`](Self::reset_reason) decides.
    #[inline(always)]
    pub(super) fn holds(&self, e: &Entry) -> bool {
        self.ingress_up
            && self.plan.healthy[usize::from(e.target)]
            && (self.affinity != AffinityMode::ResetOnChange || e.version == self.snap.version())
    }

    /// A packet of the established flow in `slot` got its pinned decision: counts the
    /// hit and refreshes the pin ([`Pin::Hold`]) or releases it ([`Pin::Release`]).
    #[inline(always)]
    pub(super) fn hit(&mut self, slot: usize, pin: Pin) {
        self.hits += 1;
        match pin {
            Pin::Hold => self.es.touch_seen(slot, self.now),
            Pin::Release => {
                // The packet ends the flow (FIN/RST): its pin goes with it.
                self.ft.remove_at(slot);
                self.ft.stats.ended += 1;
            }
        }
    }

    /// Why the pin `e` of `flow` must be reset now, if it must: the full test, for a pin
    /// that [`holds`](Self::holds) did not clear (under
    /// [`AffinityMode::ResetOnChange`] a pin made with an older table holds if its
    /// destination's region did not change, which takes a lookup).
    #[inline(always)]
    pub(super) fn reset_reason(&self, e: &Entry, flow: &FlowKey) -> Option<ResetReason> {
        if !self.ingress_up || !self.plan.healthy[usize::from(e.target)] {
            Some(ResetReason::ProcessingDown)
        } else if self.affinity == AffinityMode::ResetOnChange
            && e.version != self.snap.version()
            && lookup(self.snap, flow) != e.region()
        {
            Some(ResetReason::BindingChanged)
        } else {
            None
        }
    }

    /// A new flow, absent from the table (`vacant`: the slot a probe, or in
    /// `decide_many` its home group, found for it): decided fresh and, under
    /// [`Pin::Hold`], pinned unless it is a refusal. Refusals are not pinned, so a
    /// retransmitted SYN is decided again and may succeed once health recovers.
    #[inline(always)]
    pub(super) fn new_flow(
        &mut self,
        vacant: usize,
        flow: &FlowKey,
        hash: u64,
        pin: Pin,
        region: RegionHint,
    ) -> Decision {
        let d = self.fresh(flow, region);
        if pin == Pin::Hold && d.verdict.is_processed() {
            self.ft
                .insert(self.es, flow, hash, vacant, &d, self.now, self.timeouts);
        }
        d
    }

    /// The decision a new flow gets now.
    #[inline(always)]
    pub(super) fn fresh(&self, flow: &FlowKey, region: RegionHint) -> Decision {
        self.plan.decision(
            self.ingress,
            region.resolve(self.snap, flow),
            self.snap.version(),
        )
    }
}

/// Drops the pin in `slot` of a flow that is reset (the next packet starts a new flow).
/// Rare, so out of line; only the side effects, the reset's [`Decision`] being built
/// inline by [`Decider::established`] (returned by an out-of-line call, it would go
/// through memory).
#[cold]
#[inline(never)]
pub(super) fn drop_reset_pin(ft: &mut FlowIndex, slot: usize) {
    ft.remove_at(slot);
    ft.stats.resets += 1;
}

/// Packets per group of [`Edge::decide_many`]'s pipeline.
pub(super) const LANES: usize = 32;

/// One group of [`Edge::decide_many`]'s pipeline: each flow's hash and home group, for
/// flows that are probably known the slot whose tag matched ([`NO_SLOT`] for the
/// others), and for flows that are probably new their region, looked up by stage 2
/// (IPv6) or 3 (IPv4) before the lane is decided ([`RegionHint::Unknown`]: not looked
/// up).
#[derive(Clone, Copy)]
pub(super) struct Lanes {
    pub(super) hashes: [u64; LANES],
    pub(super) homes: [usize; LANES],
    pub(super) slots: [usize; LANES],
    pub(super) regions: [RegionHint; LANES],
    /// The probably-new IPv4 lanes (their destinations in `v4_addr`), looked up by
    /// stage 3.
    pub(super) v4_lane: [u8; LANES],
    pub(super) v4_addr: [Ipv4Addr; LANES],
    pub(super) v4_len: usize,
    /// The flow table's [`layout`](FlowIndex::layout) when stage 1 computed `homes`.
    pub(super) layout: usize,
}

impl Lanes {
    pub(super) const EMPTY: Lanes = Lanes {
        hashes: [0; LANES],
        homes: [0; LANES],
        slots: [NO_SLOT; LANES],
        regions: [RegionHint::Unknown; LANES],
        v4_lane: [0; LANES],
        v4_addr: [Ipv4Addr::UNSPECIFIED; LANES],
        v4_len: 0,
        layout: 0,
    };
}

/// Pipeline stage 1: hashes a group of flows (pure arithmetic) and prefetches each home
/// control word.
#[inline(always)]
pub(super) fn stage_hash(ft: &FlowIndex, flows: &[FlowKey], lanes: &mut Lanes) {
    lanes.layout = ft.layout();
    for ((h, home), f) in lanes.hashes.iter_mut().zip(&mut lanes.homes).zip(flows) {
        *h = ft.hash(f);
        *home = ft.prefetch_home(*h);
    }
}

/// Pipeline stage 2 (a group later, when the control words have arrived): prefetches
/// each flow's entry line, or, for a flow whose home group has no matching tag (almost
/// surely new), the first line of its region lookup, which stage 3 makes a group later
/// (IPv6 ones, rare, are looked up here). Prefetching the region line here rather than
/// in stage 1 spares established flows a line they never read: established +4% (12 of
/// 16 alternating pairs), new flows unchanged (+2.5%, 9 of 16), where prefetching it in
/// stage 1 cost established flows 8% and dropping it cost new flows 8%.
#[inline(always)]
pub(super) fn stage_entry(
    ft: &FlowIndex,
    es: &impl Entries,
    snap: &Snapshot<RegionIndex>,
    flows: &[FlowKey],
    lanes: &mut Lanes,
) {
    lanes.v4_len = 0;
    for (i, ((((&h, &home), slot), r), f)) in lanes
        .hashes
        .iter()
        .zip(&lanes.homes)
        .zip(&mut lanes.slots)
        .zip(&mut lanes.regions)
        .zip(flows)
        .enumerate()
    {
        *r = RegionHint::Unknown;
        *slot = ft.prefetch_entry(es, h, home);
        if *slot != NO_SLOT {
            continue;
        }
        match f.dst_bits() {
            (false, dst) => {
                let dst = Ipv4Addr::from_bits(dst as u32);
                snap.table().prefetch_v4(dst);
                lanes.v4_lane[lanes.v4_len] = i as u8;
                lanes.v4_addr[lanes.v4_len] = dst;
                lanes.v4_len += 1;
            }
            (true, dst) => *r = RegionHint::Looked(snap.lookup_v6(Ipv6Addr::from_bits(dst))),
        }
    }
}

/// Pipeline stage 3, just before a group is decided: looks up the regions of its
/// probably-new IPv4 flows in one batch lookup, whose first lines stage 2 prefetched a
/// group earlier.
#[inline(always)]
pub(super) fn stage_regions(snap: &Snapshot<RegionIndex>, lanes: &mut Lanes) {
    let n = lanes.v4_len;
    let mut found = [None; LANES];
    snap.table()
        .lookup_batch_v4(&lanes.v4_addr[..n], &mut found[..n]);
    for (&lane, &region) in lanes.v4_lane[..n].iter().zip(&found) {
        lanes.regions[usize::from(lane)] = RegionHint::Looked(region);
    }
}
