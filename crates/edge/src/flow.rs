//! Flow identity and the per-data-center flow table (connection affinity).
//!
//! The flow table is an open-addressing hash table in the SwissTable style (a control
//! byte per slot holding 7 hash bits, scanned eight at a time; entries of one 64-byte
//! cache line in a separate array), with a fixed maximum size, lazy idle expiry on
//! lookup, a clock-sweep that reclaims idle entries a slice at a time from
//! [`Edge::tick`](crate::Edge::tick), and eviction of the least-recently-seen entry of
//! a small window when full.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::time::Duration;

use inregion_hint::StreamingWriter;

use crate::decision::{Decision, Verdict};
use crate::time::duration_nanos;
use crate::topology::{DcId, RegionIndex};

/// An IP protocol number.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Protocol(pub u8);

impl Protocol {
    /// ICMP (1).
    pub const ICMP: Protocol = Protocol(1);
    /// TCP (6).
    pub const TCP: Protocol = Protocol(6);
    /// UDP (17).
    pub const UDP: Protocol = Protocol(17);
    /// ICMPv6 (58).
    pub const ICMPV6: Protocol = Protocol(58);
}

/// TCP header flags that matter to the flow table.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct TcpFlags(pub u8);

impl TcpFlags {
    /// No flag (a data packet, or not TCP).
    pub const NONE: TcpFlags = TcpFlags(0);
    /// FIN: the flow ends.
    pub const FIN: TcpFlags = TcpFlags(0x01);
    /// SYN: a flow starts.
    pub const SYN: TcpFlags = TcpFlags(0x02);
    /// RST: the flow is aborted.
    pub const RST: TcpFlags = TcpFlags(0x04);
    /// ACK.
    pub const ACK: TcpFlags = TcpFlags(0x10);

    /// Whether any flag of `other` is set in `self`.
    #[inline]
    pub const fn contains(self, other: TcpFlags) -> bool {
        self.0 & other.0 != 0
    }

    /// Whether this packet ends the flow (FIN or RST).
    #[inline]
    pub const fn ends_flow(self) -> bool {
        self.0 & (Self::FIN.0 | Self::RST.0) != 0
    }
}

impl std::ops::BitOr for TcpFlags {
    type Output = TcpFlags;
    fn bitor(self, rhs: TcpFlags) -> TcpFlags {
        TcpFlags(self.0 | rhs.0)
    }
}

/// Why a [`FlowKey`] could not be built.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum FlowKeyError {
    /// Source and destination are of different IP families.
    #[error("source and destination must be both IPv4 or both IPv6")]
    MixedFamilies,
}

/// A flow's 5-tuple, stored packed (addresses as integers) so that hashing and
/// comparing it is a handful of integer operations.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct FlowKey {
    src: u128,
    dst: u128,
    /// Ports, protocol and family packed as the flow table stores them (see
    /// [`FlowKey::pack_tail`]): packed once here, so that neither hashing nor comparing
    /// a key has to pack it again.
    tail: u64,
}

impl FlowKey {
    /// An IPv4 flow.
    #[inline]
    pub const fn v4(
        protocol: Protocol,
        src: Ipv4Addr,
        src_port: u16,
        dst: Ipv4Addr,
        dst_port: u16,
    ) -> Self {
        FlowKey {
            src: src.to_bits() as u128,
            dst: dst.to_bits() as u128,
            tail: Self::pack_tail(src_port, dst_port, protocol, false),
        }
    }

    /// An IPv6 flow.
    #[inline]
    pub const fn v6(
        protocol: Protocol,
        src: Ipv6Addr,
        src_port: u16,
        dst: Ipv6Addr,
        dst_port: u16,
    ) -> Self {
        FlowKey {
            src: src.to_bits(),
            dst: dst.to_bits(),
            tail: Self::pack_tail(src_port, dst_port, protocol, true),
        }
    }

    /// A flow from addresses of either family (both must be of the same family).
    pub fn new(
        protocol: Protocol,
        src: IpAddr,
        src_port: u16,
        dst: IpAddr,
        dst_port: u16,
    ) -> Result<Self, FlowKeyError> {
        match (src, dst) {
            (IpAddr::V4(s), IpAddr::V4(d)) => Ok(Self::v4(protocol, s, src_port, d, dst_port)),
            (IpAddr::V6(s), IpAddr::V6(d)) => Ok(Self::v6(protocol, s, src_port, d, dst_port)),
            _ => Err(FlowKeyError::MixedFamilies),
        }
    }

    /// Source address.
    pub fn src(&self) -> IpAddr {
        if self.is_v6() {
            IpAddr::V6(Ipv6Addr::from_bits(self.src))
        } else {
            IpAddr::V4(Ipv4Addr::from_bits(self.src as u32))
        }
    }

    /// Destination address.
    pub fn dst(&self) -> IpAddr {
        if self.is_v6() {
            IpAddr::V6(Ipv6Addr::from_bits(self.dst))
        } else {
            IpAddr::V4(Ipv4Addr::from_bits(self.dst as u32))
        }
    }

    /// Source port.
    pub fn src_port(&self) -> u16 {
        (self.tail >> 32) as u16
    }

    /// Destination port.
    pub fn dst_port(&self) -> u16 {
        (self.tail >> 16) as u16
    }

    /// Protocol.
    pub fn protocol(&self) -> Protocol {
        Protocol((self.tail >> 8) as u8)
    }

    /// Whether the flow is IPv6.
    pub fn is_v6(&self) -> bool {
        self.tail & 1 != 0
    }

    /// The destination as the integer the region table is keyed by.
    #[inline]
    pub(crate) fn dst_bits(&self) -> (bool, u128) {
        (self.is_v6(), self.dst)
    }

    /// The tail word: source port in bits 32..48, destination port in 16..32, protocol
    /// in 8..16, [`TAIL_OCCUPIED`] and the family (1: IPv6) in bit 0.
    #[inline]
    const fn pack_tail(src_port: u16, dst_port: u16, protocol: Protocol, v6: bool) -> u64 {
        (src_port as u64) << 32
            | (dst_port as u64) << 16
            | (protocol.0 as u64) << 8
            | TAIL_OCCUPIED
            | v6 as u64
    }
}

impl std::fmt::Debug for FlowKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let (s, d) = (self.src(), self.dst());
        write!(
            f,
            "FlowKey({} {}:{} -> {}:{})",
            self.protocol().0,
            s,
            self.src_port(),
            d,
            self.dst_port()
        )
    }
}

/// Sizing and timeouts of the per-data-center flow tables.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FlowTableConfig {
    /// Most live flows one data center pins; beyond it the least recently seen flow of a
    /// small window is evicted (counted in [`FlowStats::evicted`]). Memory per data
    /// center is at most `65 B × next_power_of_two(max_flows × 8 / 7)`. At most 2^40 (larger
    /// values count as 2^40).
    pub max_flows: usize,
    /// Slots allocated at a data center's first flow (grown ×2 up to the maximum).
    pub initial_capacity: usize,
    /// A TCP flow idle for longer is forgotten.
    pub tcp_idle_timeout: Duration,
    /// A non-TCP flow (UDP, ...) idle for longer is forgotten.
    pub other_idle_timeout: Duration,
    /// Seed of the flow hash (keeps runs deterministic; change it to decorrelate shards).
    pub hash_seed: u64,
}

impl Default for FlowTableConfig {
    fn default() -> Self {
        FlowTableConfig {
            max_flows: 1 << 20,
            initial_capacity: 1 << 4,
            tcp_idle_timeout: Duration::from_secs(300),
            other_idle_timeout: Duration::from_secs(60),
            hash_seed: 0x9e37_79b9_7f4a_7c15,
        }
    }
}

/// Counters of one flow table (or the sum over data centers).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FlowStats {
    /// Flows pinned now.
    pub live: u64,
    /// Slots allocated now.
    pub capacity: u64,
    /// Packets answered from a pin.
    pub hits: u64,
    /// Flows pinned.
    pub pinned: u64,
    /// Flows ended by FIN/RST or [`Edge::flow_end`](crate::Edge::flow_end).
    pub ended: u64,
    /// Pins dropped because the flow was idle past its timeout.
    pub expired: u64,
    /// Pins dropped to make room (the table was full).
    pub evicted: u64,
    /// Established flows reset (see [`ResetReason`](crate::ResetReason)).
    pub resets: u64,
    /// Times the table doubled.
    pub grows: u64,
}

impl std::ops::AddAssign for FlowStats {
    fn add_assign(&mut self, o: FlowStats) {
        self.live += o.live;
        self.capacity += o.capacity;
        self.hits += o.hits;
        self.pinned += o.pinned;
        self.ended += o.ended;
        self.expired += o.expired;
        self.evicted += o.evicted;
        self.resets += o.resets;
        self.grows += o.grows;
    }
}

/// Set in every key's tail word, so a never-written entry (all zero) never matches a key
/// (a removed one keeps its bytes; its control byte says it is free).
const TAIL_OCCUPIED: u64 = 0x80;
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

#[cfg(test)]
mod tests {
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
            |t: &FlowTable, i: u32| match t.index.probe(&t.entries, &key(i), t.index.hash(&key(i)))
            {
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
}
