//! What the edge decided for a packet: small, `Copy`, allocation-free.

use ipnet::IpNet;

use crate::time::SimTime;
use crate::topology::{DcId, RegionIndex};

/// Why a flow was refused (fail closed).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum RefuseReason {
    /// The destination is bound to a region, the ingress is outside it, and no in-region
    /// data center is healthy and reachable in the RTT model: regionalized traffic is
    /// never processed out of its region.
    NoHealthyInRegion,
    /// The ingress data center itself is unhealthy (it was given explicitly; anycast
    /// would not have sent the packet there).
    IngressDown,
}

/// Why an established flow was reset (its pinned decision dropped).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ResetReason {
    /// [`AffinityMode::ResetOnChange`](crate::AffinityMode::ResetOnChange): the binding
    /// of the destination changed at the ingress while the flow was open.
    BindingChanged,
    /// The data center processing the flow (or the ingress) became unhealthy.
    ProcessingDown,
}

/// The outcome for one packet.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Verdict {
    /// No binding: processed at the ingress (global behaviour).
    Global,
    /// Bound to a region that contains the ingress: TLS terminated at the ingress.
    InRegion,
    /// Bound to a region without the ingress: L3/L4 at the ingress, the encrypted
    /// connection forwarded to an in-region data center that terminates TLS.
    Forwarded,
    /// Not processed anywhere.
    Refused(RefuseReason),
    /// An established flow was cut: the client sees a TCP reset; the pin is gone.
    Reset(ResetReason),
}

impl Verdict {
    /// Whether the flow is processed (TLS/L7 happens somewhere).
    #[inline]
    pub const fn is_processed(self) -> bool {
        matches!(
            self,
            Verdict::Global | Verdict::InRegion | Verdict::Forwarded
        )
    }
}

/// The decision for one packet of a flow.
///
/// - L3/L4 (DDoS mitigation) always happens at [`ingress`](Self::ingress).
/// - TLS/L7 happens at [`processed_at`](Self::processed_at) (`None` when refused/reset).
/// - The path is `ingress` → `processed_at`; [`added_rtt_us`](Self::added_rtt_us) is the
///   round trip of that backbone hop (0 when processed at the ingress).
/// - [`region`](Self::region) and [`table_version`](Self::table_version) are the binding
///   and the table snapshot the decision was made with (for an established flow: the ones
///   pinned at its first packet).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Decision {
    /// What happens to the packet.
    pub verdict: Verdict,
    /// Where the packet arrived (anycast) and L3/L4 happened.
    pub ingress: DcId,
    /// Where TLS is terminated and L7 runs; `None` when refused or reset.
    pub processed_at: Option<DcId>,
    /// The region the destination is bound to, `None` when unbound.
    pub region: Option<RegionIndex>,
    /// Extra round-trip time of the forwarding hop in microseconds (0 unless forwarded).
    pub added_rtt_us: u32,
    /// Version of the region table used.
    pub table_version: u64,
    /// True when the decision came from the flow table (a packet of a known flow).
    pub established: bool,
}

impl Decision {
    /// Where L3/L4 happened: always the ingress.
    #[inline]
    pub const fn l4_at(&self) -> DcId {
        self.ingress
    }

    /// Where TLS/L7 happens, if anywhere.
    #[inline]
    pub const fn tls_at(&self) -> Option<DcId> {
        self.processed_at
    }

    /// The data center the connection is forwarded to, when it is.
    #[inline]
    pub fn forwarded_to(&self) -> Option<DcId> {
        match self.verdict {
            Verdict::Forwarded => self.processed_at,
            _ => None,
        }
    }

    /// Whether the packet is processed somewhere.
    #[inline]
    pub const fn is_processed(&self) -> bool {
        self.verdict.is_processed()
    }
}

/// One in-region candidate considered for forwarding, in [`Explanation::candidates`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Candidate {
    /// The data center.
    pub dc: DcId,
    /// Whether it is healthy now.
    pub healthy: bool,
    /// RTT from the ingress in microseconds, `None` when unknown (no coordinates).
    pub rtt_us: Option<u32>,
    /// Whether it is the one chosen.
    pub chosen: bool,
}

/// A step-by-step account of a decision, for `inregion trace` (slow path: allocates).
#[derive(Clone, Debug, PartialEq)]
pub struct Explanation {
    /// When it was asked.
    pub at: SimTime,
    /// The ingress data center.
    pub ingress: DcId,
    /// Whether the ingress is healthy.
    pub ingress_healthy: bool,
    /// Version of the ingress's current table.
    pub table_version: u64,
    /// The most specific binding containing the destination, from the current table.
    pub matched: Option<(IpNet, RegionIndex)>,
    /// Whether the ingress is a member of the matched region.
    pub ingress_in_region: Option<bool>,
    /// The in-region data centers and their RTTs, best first (empty unless the ingress
    /// would forward).
    pub candidates: Vec<Candidate>,
    /// What a new flow would get now (nothing is pinned by explaining).
    pub fresh: Decision,
    /// The decision pinned for this flow in the ingress's flow table, if it is live.
    pub pinned: Option<Decision>,
}
