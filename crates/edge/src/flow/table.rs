//! The flow table's storage: one 64-byte entry per pinned flow, the SwissTable-style
//! control bytes that find it, expiry, the clock-sweep and eviction.

use super::*;

/// Set in every key's tail word, so a never-written entry (all zero) never matches a key
/// (a removed one keeps its bytes; its control byte says it is free).
pub(super) const TAIL_OCCUPIED: u64 = 0x80;
/// Load ceiling (live entries and tombstones) 7/8, as in SwissTable: a probe reads one
/// control word almost always.
const LOAD_NUM: usize = 7;
const LOAD_DEN: usize = 8;
/// Entries examined when choosing an eviction victim.
const EVICT_WINDOW: usize = 32;
const NO_REGION: u16 = u16::MAX;
/// "No slot" in a pipeline lane (out of range of every table).
pub(crate) const NO_SLOT: usize = usize::MAX;

/// One pinned flow: exactly one cache line. Only processed decisions are pinned, so the
/// verdict is implied: `target != ingress` → forwarded, else in-region when bound, else
/// global. No padding (`IntoBytes` checks it at compile time), as streaming stores of
/// it require (see `inregion_hint::StreamingWriter`).
#[derive(Clone, Copy, Default, zerocopy::IntoBytes)]
#[repr(C, align(64))]
pub(crate) struct Entry {
    src: u128,
    dst: u128,
    /// Ports, protocol, family and [`TAIL_OCCUPIED`]; 0 in a slot never written.
    tail: u64,
    pub(crate) version: u64,
    last_seen: u64,
    pub(crate) added_rtt_us: u32,
    pub(crate) target: u16,
    pub(crate) region: u16,
}

const _: () = assert!(std::mem::size_of::<Entry>() == 64);

impl Entry {
    #[inline]
    fn matches(&self, k: &FlowKey) -> bool {
        self.tail == k.tail && self.src == k.src && self.dst == k.dst
    }

    pub(crate) fn key(&self) -> FlowKey {
        FlowKey {
            src: self.src,
            dst: self.dst,
            tail: self.tail,
        }
    }

    #[inline]
    pub(crate) fn decision(&self, ingress: DcId, established: bool) -> Decision {
        let region = self.region();
        let verdict = if self.target != ingress.0 {
            Verdict::Forwarded
        } else if region.is_some() {
            Verdict::InRegion
        } else {
            Verdict::Global
        };
        Decision {
            verdict,
            ingress,
            processed_at: Some(DcId(self.target)),
            region,
            added_rtt_us: self.added_rtt_us,
            table_version: self.version,
            established,
        }
    }

    #[inline]
    pub(crate) fn region(&self) -> Option<RegionIndex> {
        (self.region != NO_REGION).then_some(RegionIndex(self.region))
    }
}

/// Where a key is, or where it would go.
pub(crate) enum Probe {
    Found(usize),
    Vacant(usize),
}

/// Idle timeouts in nanoseconds.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Timeouts {
    tcp: u64,
    other: u64,
}

impl Timeouts {
    pub(crate) fn new(c: &FlowTableConfig) -> Self {
        Timeouts {
            tcp: duration_nanos(c.tcp_idle_timeout),
            other: duration_nanos(c.other_idle_timeout),
        }
    }

    #[inline]
    fn expired(&self, e: &Entry, now: u64) -> bool {
        let proto = (e.tail >> 8) as u8;
        let t = if proto == Protocol::TCP.0 {
            self.tcp
        } else {
            self.other
        };
        now.saturating_sub(e.last_seen) > t
    }

    pub(crate) fn min(&self) -> u64 {
        self.tcp.min(self.other)
    }
}

/// Control byte of a slot that was never used since the last rebuild.
const EMPTY: u8 = 0xFF;
/// Control byte of a slot whose flow was removed from a group that has been full (a
/// tombstone: probes must continue past it).
const DELETED: u8 = 0x80;
/// Slots per group: one `u64` of control bytes.
const GROUP: usize = 8;
const LO: u64 = 0x0101_0101_0101_0101;
const HI: u64 = 0x8080_8080_8080_8080;

/// Bit 7 of byte `i` set where the byte may equal `tag` (false positives possible above
/// a true match; entries are compared by key anyway).
#[inline(always)]
fn match_tag(group: u64, tag: u8) -> u64 {
    let x = group ^ LO.wrapping_mul(u64::from(tag));
    x.wrapping_sub(LO) & !x & HI
}

/// Bit 7 of byte `i` set exactly where the byte is [`EMPTY`].
#[inline(always)]
fn match_empty(group: u64) -> u64 {
    group & (group << 1) & HI
}

/// Bit 7 of byte `i` set exactly where the byte is [`EMPTY`] or [`DELETED`].
#[inline(always)]
fn match_free(group: u64) -> u64 {
    group & HI
}

/// Index in its group of the lowest slot marked in `mask`.
#[inline(always)]
fn lowest(mask: u64) -> usize {
    (mask.trailing_zeros() / 8) as usize
}

/// The flow table of one data center: its [`FlowIndex`] (control bytes, counters) and
/// its entries, kept apart so that a batch can lend the entries to a streaming writer
/// (see [`Entries`]) while it uses the index.
///
/// Layout as in SwissTable: a control byte per slot (7 bits of the hash, or EMPTY /
/// DELETED), eight per `u64` group, and the entries in a separate array. A lookup reads
/// one control word (a 2 MiB array for 2M slots, mostly cache-resident) and only then
/// the one entry line whose tag matches, so a new flow costs no entry read at all and an
/// established one a single line. Probing is linear over groups and stops at a group
/// with an EMPTY slot; a removal leaves a tombstone only in a group that has been full
/// (a group holding an EMPTY slot has never been full, so no probe passed through it);
/// tombstones are cleared by rebuilding in place.
#[derive(Clone)]
pub(crate) struct FlowTable {
    pub(crate) index: FlowIndex,
    /// As many entries as the index has slots ([`FlowIndex::capacity`]).
    pub(crate) entries: Vec<Entry>,
}

impl FlowTable {
    pub(crate) fn new(c: &FlowTableConfig) -> Self {
        FlowTable {
            index: FlowIndex::new(c),
            entries: Vec::new(),
        }
    }

    pub(crate) fn len(&self) -> usize {
        self.index.len
    }

    pub(crate) fn capacity(&self) -> usize {
        self.index.capacity()
    }

    pub(crate) fn stats(&self) -> FlowStats {
        self.index.stats()
    }

    /// See [`FlowIndex::sweep`].
    pub(crate) fn sweep(&mut self, now: u64, budget: usize, t: &Timeouts) -> u64 {
        self.index.sweep(&self.entries, now, budget, t)
    }
}

/// A flow table's entry array as the table's operations see it: the plain vector
/// (single decisions, sweeps, explanations), or, inside
/// [`Edge::decide_many`](crate::Edge::decide_many), the [`StreamingWriter`] over it,
/// which writes new entries with streaming stores and fences before any entry with a
/// pending store is read or written again (a duplicate flow in the batch, an eviction,
/// a growth). The table's logic is written once over this trait, so both paths decide
/// alike; the soundness of the streaming path is `inregion_hint`'s, not this crate's
/// (it has no `unsafe`).
pub(crate) trait Entries {
    /// Number of slots.
    fn slots(&self) -> usize;
    /// The entry in `slot`, or `None` out of range.
    fn get_entry(&self, slot: usize) -> Option<&Entry>;
    /// The entry in `slot`, to change it in place. Panics out of range.
    fn entry_mut(&mut self, slot: usize) -> &mut Entry;
    /// Writes a new flow's entry to `slot` (streaming stores in a batch: a new flow's
    /// line is almost never cached, and a plain store would read it from memory first).
    /// Panics out of range.
    fn put_new(&mut self, slot: usize, e: Entry);
    /// Hints the CPU to fetch the entry in `slot` (out of range: nothing).
    fn prefetch(&self, slot: usize);
    /// The whole vector (with nothing pending), to rebuild it.
    fn vec_mut(&mut self) -> &mut Vec<Entry>;

    /// The entry in `slot`. Panics out of range, as indexing does.
    #[inline(always)]
    fn entry(&self, slot: usize) -> &Entry {
        match self.get_entry(slot) {
            Some(e) => e,
            None => slot_out_of_range(slot, self.slots()),
        }
    }

    #[inline]
    fn is_expired(&self, slot: usize, now: u64, t: &Timeouts) -> bool {
        t.expired(self.entry(slot), now)
    }

    #[inline]
    fn touch_seen(&mut self, slot: usize, now: u64) {
        let e = self.entry_mut(slot);
        e.last_seen = e.last_seen.max(now);
    }

    /// Overwrites the decision of an existing slot (an expired pin reused by its key).
    #[inline]
    fn repin(&mut self, slot: usize, d: &Decision, now: u64) {
        fill(self.entry_mut(slot), d, now);
    }
}

#[cold]
#[track_caller]
fn slot_out_of_range(slot: usize, slots: usize) -> ! {
    panic!("flow table slot {slot} out of range ({slots} slots)")
}

/// Plain loads and stores.
impl Entries for Vec<Entry> {
    #[inline(always)]
    fn slots(&self) -> usize {
        self.len()
    }

    #[inline(always)]
    fn get_entry(&self, slot: usize) -> Option<&Entry> {
        self.as_slice().get(slot)
    }

    #[inline(always)]
    fn entry_mut(&mut self, slot: usize) -> &mut Entry {
        &mut self[slot]
    }

    #[inline(always)]
    fn put_new(&mut self, slot: usize, e: Entry) {
        self[slot] = e;
    }

    #[inline(always)]
    fn prefetch(&self, slot: usize) {
        inregion_hint::prefetch(self, slot);
    }

    #[inline(always)]
    fn vec_mut(&mut self) -> &mut Vec<Entry> {
        self
    }
}

/// A batch's entries: new ones written with streaming stores (new flows +15% in the
/// median of 7 alternating runs when they were introduced), the whole batch fenced once
/// at the end of its scope, and earlier whenever an entry with a pending store is
/// reached again.
impl Entries for StreamingWriter<'_, Entry> {
    #[inline(always)]
    fn slots(&self) -> usize {
        self.len()
    }

    #[inline(always)]
    fn get_entry(&self, slot: usize) -> Option<&Entry> {
        self.get(slot)
    }

    #[inline(always)]
    fn entry_mut(&mut self, slot: usize) -> &mut Entry {
        let slots = self.len();
        match self.get_mut(slot) {
            Some(e) => e,
            None => slot_out_of_range(slot, slots),
        }
    }

    #[inline(always)]
    fn put_new(&mut self, slot: usize, e: Entry) {
        self.write(slot, e);
    }

    #[inline(always)]
    fn prefetch(&self, slot: usize) {
        StreamingWriter::prefetch(self, slot);
    }

    #[inline(always)]
    fn vec_mut(&mut self) -> &mut Vec<Entry> {
        StreamingWriter::vec_mut(self)
    }
}

/// A flow table's control bytes and counters: everything but the entries, which each
/// operation that needs them is given as an [`Entries`].
#[derive(Clone)]
pub(crate) struct FlowIndex {
    ctrl: Vec<u64>,
    group_mask: usize,
    len: usize,
    deleted: usize,
    max_len: usize,
    max_capacity: usize,
    initial_capacity: usize,
    seed: u64,
    hand: usize,
    pub(crate) stats: FlowStats,
}

impl FlowIndex {
    fn new(c: &FlowTableConfig) -> Self {
        // Capped at 2^40 flows (64 TiB of entries): beyond that the sizes below would
        // overflow, and no machine holds such a table anyway.
        let max_len = c.max_flows.clamp(1, 1 << 40);
        let max_capacity = (max_len * LOAD_DEN)
            .div_ceil(LOAD_NUM)
            .next_power_of_two()
            .max(GROUP);
        FlowIndex {
            ctrl: Vec::new(),
            group_mask: 0,
            len: 0,
            deleted: 0,
            max_len,
            max_capacity,
            initial_capacity: c
                .initial_capacity
                .min(max_capacity)
                .next_power_of_two()
                .clamp(GROUP, max_capacity),
            seed: c.hash_seed,
            hand: 0,
            stats: FlowStats::default(),
        }
    }

    pub(crate) fn len(&self) -> usize {
        self.len
    }

    /// Slots allocated (the length of the entry array).
    #[inline(always)]
    pub(crate) fn capacity(&self) -> usize {
        self.ctrl.len() * GROUP
    }

    /// FxHash-style multiply-rotate over the key's words, finished with a xor-shift so
    /// that both ends of the word depend on every input word.
    #[inline]
    pub(crate) fn hash(&self, k: &FlowKey) -> u64 {
        const K: u64 = 0xf135_7aea_2e62_a9c5;
        let mut h = self.seed;
        for w in [
            k.src as u64,
            (k.src >> 64) as u64,
            k.dst as u64,
            (k.dst >> 64) as u64,
            k.tail,
        ] {
            h = (h.rotate_left(26) ^ w).wrapping_mul(K);
        }
        h ^ (h >> 32)
    }

    /// The home group: the high bits after one more multiply, scaled to the group
    /// count (a multiply-high range reduction; works for a single group too).
    #[inline(always)]
    fn home(&self, hash: u64) -> usize {
        let mixed = hash.wrapping_mul(0x9e37_79b9_7f4a_7c15);
        ((u128::from(mixed) * (self.group_mask as u128 + 1)) >> 64) as usize
    }

    /// The 7-bit tag stored in the control byte (top bit clear = full).
    #[inline(always)]
    fn tag(hash: u64) -> u8 {
        (hash & 0x7F) as u8
    }

    #[inline(always)]
    fn ctrl_byte(&self, slot: usize) -> u8 {
        (self.ctrl[slot / GROUP] >> ((slot % GROUP) * 8)) as u8
    }

    #[inline(always)]
    fn set_ctrl(&mut self, slot: usize, byte: u8) {
        let shift = (slot % GROUP) * 8;
        let w = &mut self.ctrl[slot / GROUP];
        *w = (*w & !(0xFFu64 << shift)) | (u64::from(byte) << shift);
    }

    #[inline(always)]
    fn occupied(&self, slot: usize) -> bool {
        self.ctrl_byte(slot) & 0x80 == 0
    }

    /// First stage of a pipelined lookup of `hash`: a prefetch of its home control word.
    /// Returns the home group, for [`prefetch_entry`](Self::prefetch_entry).
    #[inline(always)]
    pub(crate) fn prefetch_home(&self, hash: u64) -> usize {
        let g = self.home(hash);
        if !self.ctrl.is_empty() {
            inregion_hint::prefetch(&self.ctrl, g);
        }
        g
    }

    /// Second stage, once the home control word of `hash` (group `home`, as
    /// [`prefetch_home`](Self::prefetch_home) returned it) has arrived: a prefetch of
    /// the entry line whose tag matches. Returns that slot when a tag matched (the flow
    /// is probably known; [`live_hit`](Self::live_hit) and
    /// [`probe_from`](Self::probe_from) check it first), else [`NO_SLOT`].
    /// It does not block, so the misses of a whole group of flows overlap instead of
    /// being paid one after another.
    #[inline(always)]
    pub(crate) fn prefetch_entry(&self, es: &impl Entries, hash: u64, home: usize) -> usize {
        let Some(&w) = self.ctrl.get(home) else {
            return NO_SLOT;
        };
        let m = match_tag(w, Self::tag(hash));
        if m != 0 {
            let slot = home * GROUP + lowest(m);
            es.prefetch(slot);
            return slot;
        }
        // A new flow's entry line is written whole with streaming stores (`insert` in a
        // batch), which need no ownership of the line: nothing to fetch for it.
        // A full home group means probing on: fetch its first line.
        if match_free(w) == 0 {
            es.prefetch(home * GROUP);
        }
        NO_SLOT
    }

    /// The table's current layout (its group mask): the home groups that
    /// [`prefetch_home`](Self::prefetch_home) returns stay valid while it is unchanged
    /// (a growth changes it).
    #[inline(always)]
    pub(crate) fn layout(&self) -> usize {
        self.group_mask
    }

    /// Where a key hashed to `hash` would be inserted, when its home group alone proves
    /// it absent: no tag in it matches and it has an EMPTY slot (a probe stops there).
    /// That is the slot [`probe`](Self::probe) returns as vacant. [`NO_SLOT`] when only a
    /// full probe can tell. `home` and `layout` are what
    /// [`prefetch_home`](Self::prefetch_home) and [`layout`](Self::layout) returned in
    /// the pipeline's stage 1: `home` is used as is while the layout is unchanged, and
    /// computed anew after a growth (which moves it; a stale one would prove nothing).
    #[inline(always)]
    pub(crate) fn vacant_at_home(&self, hash: u64, home: usize, layout: usize) -> usize {
        let home = if layout == self.group_mask {
            home
        } else {
            self.home(hash)
        };
        match self.ctrl.get(home) {
            Some(&w) if match_tag(w, Self::tag(hash)) == 0 && match_empty(w) != 0 => {
                home * GROUP + lowest(match_free(w))
            }
            _ => NO_SLOT,
        }
    }

    /// Whether `slot` (a hint from [`prefetch_entry`](Self::prefetch_entry), possibly
    /// [`NO_SLOT`] or stale) holds `k`, live and not idle past its timeout at `now`: the
    /// established packet's fast path, a compare of a line already fetched. `false`
    /// says nothing (the key may still be elsewhere): probe then.
    #[inline(always)]
    pub(crate) fn live_hit(
        &self,
        es: &impl Entries,
        k: &FlowKey,
        slot: usize,
        now: u64,
        t: &Timeouts,
    ) -> bool {
        match es.get_entry(slot) {
            Some(e) => e.matches(k) && self.occupied(slot) && !t.expired(e, now),
            None => false,
        }
    }

    /// [`probe`](Self::probe), trying `hint` (a slot [`prefetch_entry`](Self::prefetch_entry)
    /// returned for this hash) first: when it holds `k` the probe is one compare of a
    /// line already fetched. A stale hint (the batch changed the table since) only
    /// costs the full probe.
    #[inline]
    pub(crate) fn probe_from(
        &self,
        es: &impl Entries,
        k: &FlowKey,
        hash: u64,
        hint: Option<usize>,
    ) -> Probe {
        if let Some(slot) = hint {
            if es.get_entry(slot).is_some_and(|e| e.matches(k)) && self.occupied(slot) {
                return Probe::Found(slot);
            }
        }
        self.probe(es, k, hash)
    }

    /// Finds `k`, or the slot where it would be inserted (the first free slot on its
    /// probe sequence; `usize::MAX` when the table has no storage yet).
    #[inline]
    pub(crate) fn probe(&self, es: &impl Entries, k: &FlowKey, hash: u64) -> Probe {
        if self.ctrl.is_empty() {
            return Probe::Vacant(usize::MAX);
        }
        let tag = Self::tag(hash);
        let mut g = self.home(hash);
        let mut free = usize::MAX;
        loop {
            let w = self.ctrl[g];
            let mut m = match_tag(w, tag);
            while m != 0 {
                let slot = g * GROUP + lowest(m);
                if es.entry(slot).matches(k) && self.occupied(slot) {
                    return Probe::Found(slot);
                }
                m &= m - 1;
            }
            if free == usize::MAX {
                let f = match_free(w);
                if f != 0 {
                    free = g * GROUP + lowest(f);
                }
            }
            if match_empty(w) != 0 {
                return Probe::Vacant(free);
            }
            g = (g + 1) & self.group_mask;
        }
    }

    /// Pins `d` for `k` (absent from the table; `vacant` is the slot `probe` returned).
    /// Grows, rebuilds or evicts first when needed (then probes again).
    ///
    /// The entry line is written by [`Entries::put_new`]: with plain stores for single
    /// decisions (so as not to pay a fence each), with streaming stores in a batch,
    /// whose [`StreamingWriter`] fences them (once per batch, or earlier when the line
    /// is reached again). A new flow's line is almost never cached (a million flows are
    /// 128 MiB), and a plain store first reads it from memory (read-for-ownership),
    /// which was half the cost of a new flow; a streaming store skips that read.
    /// Always inlined, as it was before the streaming writer's bookkeeping made it too
    /// large for the inliner's taste (its growth, eviction and rebuild are out of line).
    #[inline(always)]
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn insert(
        &mut self,
        es: &mut impl Entries,
        k: &FlowKey,
        hash: u64,
        mut vacant: usize,
        d: &Decision,
        now: u64,
        t: &Timeouts,
    ) {
        if self.len >= self.max_len || self.ctrl.is_empty() || self.over_load() {
            self.make_room(es, now, t);
            vacant = match self.probe(es, k, hash) {
                Probe::Vacant(i) | Probe::Found(i) => i,
            };
        }
        debug_assert_eq!(es.slots(), self.capacity());
        if self.ctrl_byte(vacant) == DELETED {
            self.deleted -= 1;
        }
        self.set_ctrl(vacant, Self::tag(hash));
        let mut e = Entry {
            src: k.src,
            dst: k.dst,
            tail: k.tail,
            ..Entry::default()
        };
        fill(&mut e, d, now);
        es.put_new(vacant, e);
        self.len += 1;
        self.stats.pinned += 1;
    }

    /// Whether one more entry would put live entries plus tombstones over the load limit.
    #[inline(always)]
    fn over_load(&self) -> bool {
        (self.len + self.deleted + 1) * LOAD_DEN > self.capacity() * LOAD_NUM
    }

    #[cold]
    fn make_room(&mut self, es: &mut impl Entries, now: u64, t: &Timeouts) {
        if self.ctrl.is_empty() {
            self.rebuild(es.vec_mut(), self.initial_capacity);
            return;
        }
        if self.len >= self.max_len {
            self.evict_one(es, now, t);
        }
        if self.over_load() {
            let cap = self.capacity();
            // Mostly live: double (up to the maximum); mostly tombstones: rebuild in place.
            if (self.len + 1) * LOAD_DEN * 2 > cap * LOAD_NUM && cap < self.max_capacity {
                self.rebuild(es.vec_mut(), cap * 2);
                self.stats.grows += 1;
            } else {
                self.rebuild(es.vec_mut(), cap);
            }
        }
    }

    /// Reallocates with `capacity` slots and reinserts every live entry of `entries` (no
    /// tombstones), replacing it.
    fn rebuild(&mut self, entries: &mut Vec<Entry>, capacity: usize) {
        let old_ctrl = std::mem::replace(
            &mut self.ctrl,
            inregion_hint::huge_page_vec(capacity / GROUP, u64::MAX),
        );
        let old = std::mem::replace(
            entries,
            inregion_hint::huge_page_vec(capacity, Entry::default()),
        );
        self.group_mask = capacity / GROUP - 1;
        self.hand = 0;
        self.deleted = 0;
        for (slot, e) in old.into_iter().enumerate() {
            let byte = (old_ctrl[slot / GROUP] >> ((slot % GROUP) * 8)) as u8;
            if byte & 0x80 != 0 {
                continue;
            }
            let hash = self.hash(&e.key());
            let mut g = self.home(hash);
            loop {
                let f = match_free(self.ctrl[g]);
                if f != 0 {
                    let to = g * GROUP + lowest(f);
                    self.set_ctrl(to, Self::tag(hash));
                    entries[to] = e;
                    break;
                }
                g = (g + 1) & self.group_mask;
            }
        }
    }

    /// Removes the entry in `slot`.
    pub(crate) fn remove_at(&mut self, slot: usize) {
        debug_assert!(self.occupied(slot));
        self.len -= 1;
        // A group that still has an EMPTY slot was never full: no probe sequence runs
        // through it, so the slot can become EMPTY too; otherwise leave a tombstone.
        if match_empty(self.ctrl[slot / GROUP]) != 0 {
            self.set_ctrl(slot, EMPTY);
        } else {
            self.set_ctrl(slot, DELETED);
            self.deleted += 1;
        }
        // The entry itself is left as it is: every read of an entry checks its control
        // byte first or with it, and not writing saves dirtying the line (an ended
        // flow's line would otherwise be written back to memory for nothing).
    }

    /// Removes the least recently seen of the next [`EVICT_WINDOW`] live entries after
    /// the hand (an expired one first).
    fn evict_one(&mut self, es: &impl Entries, now: u64, t: &Timeouts) {
        let cap = self.capacity();
        let mask = cap - 1;
        // (last_seen, slot, expired)
        let mut best: Option<(u64, usize, bool)> = None;
        let mut seen = 0;
        let mut i = self.hand;
        for _ in 0..cap {
            if self.occupied(i) {
                let e = es.entry(i);
                if t.expired(e, now) {
                    best = Some((e.last_seen, i, true));
                    break;
                }
                if best.is_none_or(|(s, _, _)| e.last_seen < s) {
                    best = Some((e.last_seen, i, false));
                }
                seen += 1;
                if seen == EVICT_WINDOW {
                    break;
                }
            }
            i = (i + 1) & mask;
        }
        if let Some((_, slot, expired)) = best {
            self.remove_at(slot);
            if expired {
                self.stats.expired += 1;
            } else {
                self.stats.evicted += 1;
            }
            self.hand = (i + 1) & mask;
        }
    }

    /// Examines up to `budget` slots from the hand and drops the expired entries.
    /// Returns how many were dropped.
    pub(crate) fn sweep(
        &mut self,
        es: &impl Entries,
        now: u64,
        budget: usize,
        t: &Timeouts,
    ) -> u64 {
        if self.len == 0 {
            return 0;
        }
        let cap = self.capacity();
        let mask = cap - 1;
        let mut dropped = 0;
        for _ in 0..budget.min(cap) {
            let i = self.hand;
            if self.occupied(i) && t.expired(es.entry(i), now) {
                self.remove_at(i);
                dropped += 1;
            }
            self.hand = (i + 1) & mask;
        }
        self.stats.expired += dropped;
        dropped
    }

    pub(crate) fn stats(&self) -> FlowStats {
        FlowStats {
            live: self.len as u64,
            capacity: self.capacity() as u64,
            ..self.stats
        }
    }

    /// Number of live entries found by scanning (for tests).
    #[cfg(test)]
    pub(crate) fn count_live(&self) -> usize {
        (0..self.capacity()).filter(|&i| self.occupied(i)).count()
    }
}

#[inline]
fn fill(e: &mut Entry, d: &Decision, now: u64) {
    e.version = d.table_version;
    e.last_seen = now;
    e.added_rtt_us = d.added_rtt_us;
    e.target = d.processed_at.map_or(d.ingress.0, |t| t.0);
    e.region = d.region.map_or(NO_REGION, |r| r.0);
}

// The tests read the table's private fields and methods.
#[cfg(test)]
#[path = "tests.rs"]
mod tests;
