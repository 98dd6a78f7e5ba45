//! Flow identity and the per-data-center flow table (connection affinity).
//!
//! The flow table is an open-addressing hash table in the SwissTable style (a control
//! byte per slot holding 7 hash bits, scanned eight at a time; entries of one 64-byte
//! cache line in a separate array), with a fixed maximum size, lazy idle expiry on
//! lookup, a clock-sweep that reclaims idle entries a slice at a time from
//! [`Edge::tick`](crate::Edge::tick), and eviction of the least-recently-seen entry of
//! a small window when full.
//!
//! This file holds the flow's identity and the table's public knobs and counters;
//! `table.rs` holds the table itself.

mod table;

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::time::Duration;

use inregion_hint::StreamingWriter;

use crate::decision::{Decision, Verdict};
use crate::time::duration_nanos;
use crate::topology::{DcId, RegionIndex};

pub(crate) use table::*;

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
