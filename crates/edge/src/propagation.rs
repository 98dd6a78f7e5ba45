//! Binding propagation: each data center receives a published table after its own,
//! randomly drawn delay; a version is *active* once a majority of data centers has it.

use std::cmp::Ordering;
use std::collections::BinaryHeap;
use std::sync::atomic::{AtomicU64, Ordering as AtomicOrdering};
use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwap;
use inregion_table::Snapshot;
use rand::{Rng, RngCore};

use crate::time::{duration_nanos, SimTime};
use crate::topology::RegionIndex;

/// How long a published table takes to reach one data center.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum DelayDistribution {
    /// Always the same delay (`Fixed(Duration::ZERO)`: instantaneous).
    Fixed(Duration),
    /// Uniform between `min` and `max` (inclusive).
    Uniform {
        /// Shortest delay.
        min: Duration,
        /// Longest delay.
        max: Duration,
    },
    /// Log-normal with the given median and shape `sigma` (of the underlying normal),
    /// capped at `max`: most data centers are quick, a long tail is slow.
    LogNormal {
        /// Median delay.
        median: Duration,
        /// Standard deviation of `ln(delay)`.
        sigma: f64,
        /// Cap.
        max: Duration,
    },
}

impl Default for DelayDistribution {
    /// Uniform over 4–6 hours: Cloudflare's documented propagation time, centred on the
    /// control plane's default of 5 h (api-contract §8).
    fn default() -> Self {
        DelayDistribution::Uniform {
            min: Duration::from_secs(4 * 3600),
            max: Duration::from_secs(6 * 3600),
        }
    }
}

impl DelayDistribution {
    /// Draws one delay.
    pub fn sample<R: RngCore + ?Sized>(&self, rng: &mut R) -> Duration {
        match *self {
            DelayDistribution::Fixed(d) => d,
            DelayDistribution::Uniform { min, max } => {
                let (lo, hi) = (duration_nanos(min), duration_nanos(max));
                if hi <= lo {
                    return min;
                }
                Duration::from_nanos(rng.gen_range(lo..=hi))
            }
            DelayDistribution::LogNormal { median, sigma, max } => {
                // Box–Muller: one standard normal from two uniforms.
                let u1: f64 = 1.0 - rng.gen::<f64>(); // (0, 1]
                let u2: f64 = rng.gen::<f64>();
                let z = (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos();
                let ns = duration_nanos(median) as f64 * (sigma * z).exp();
                let cap = duration_nanos(max) as f64;
                Duration::from_nanos(ns.clamp(0.0, cap) as u64)
            }
        }
    }
}

/// Where a published version stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct VersionStatus {
    /// The version.
    pub version: u64,
    /// When it was published.
    pub published_at: SimTime,
    /// Data centers whose table is at this version or newer.
    pub reached: usize,
    /// Data centers in the topology.
    pub total: usize,
    /// When a majority (more than half) of data centers had it: the binding is *active*.
    pub active_at: Option<SimTime>,
    /// When every data center had it.
    pub complete_at: Option<SimTime>,
}

/// One data center's current table: the table crate's snapshot behind an arc-swap, so
/// readers on other threads (shards) see a new version atomically.
///
/// One `Arc<Snapshot>` is shared by every data center at that version (a compiled table
/// is about 1.3 MiB; 340 copies would not be).
pub(crate) struct DcTable {
    current: ArcSwap<Snapshot<RegionIndex>>,
    /// Version of `current`, stored (Release) after `current` is: a reader that sees a
    /// version here finds that snapshot, or a newer one, in `current`. Lets a reader keep
    /// its own `Arc` of the snapshot and check it with one plain load instead of an
    /// `ArcSwap::load` (whose debt bookkeeping costs an atomic read-modify-write).
    version: AtomicU64,
}

impl DcTable {
    pub(crate) fn new(snapshot: Arc<Snapshot<RegionIndex>>) -> Self {
        DcTable {
            version: AtomicU64::new(snapshot.version()),
            current: ArcSwap::new(snapshot),
        }
    }

    #[inline]
    pub(crate) fn load(&self) -> arc_swap::Guard<Arc<Snapshot<RegionIndex>>> {
        self.current.load()
    }

    #[inline]
    pub(crate) fn version(&self) -> u64 {
        self.version.load(AtomicOrdering::Acquire)
    }

    /// Makes `cached` this data center's current snapshot if it is not already (one
    /// atomic load when it is) and returns it.
    #[inline]
    pub(crate) fn refresh<'a>(
        &self,
        cached: &'a mut Arc<Snapshot<RegionIndex>>,
    ) -> &'a Arc<Snapshot<RegionIndex>> {
        if cached.version() != self.version() {
            *cached = self.current.load_full();
        }
        cached
    }

    /// Stores `snapshot` unless the current one is as new or newer. Returns the version
    /// replaced, or `None` when nothing changed.
    pub(crate) fn offer(&self, snapshot: &Arc<Snapshot<RegionIndex>>) -> Option<u64> {
        let mut replaced = None;
        self.current.rcu(|cur| {
            if cur.version() >= snapshot.version() {
                replaced = None;
                Arc::clone(cur)
            } else {
                replaced = Some(cur.version());
                Arc::clone(snapshot)
            }
        });
        if replaced.is_some() {
            self.version
                .fetch_max(snapshot.version(), AtomicOrdering::Release);
        }
        replaced
    }
}

struct Pending {
    at: SimTime,
    seq: u64,
    dc: u16,
    snapshot: Arc<Snapshot<RegionIndex>>,
}

impl PartialEq for Pending {
    fn eq(&self, o: &Self) -> bool {
        (self.at, self.seq) == (o.at, o.seq)
    }
}
impl Eq for Pending {}
impl PartialOrd for Pending {
    fn partial_cmp(&self, o: &Self) -> Option<Ordering> {
        Some(self.cmp(o))
    }
}
impl Ord for Pending {
    /// Reversed: the heap pops the earliest (then first scheduled) delivery.
    fn cmp(&self, o: &Self) -> Ordering {
        (o.at, o.seq).cmp(&(self.at, self.seq))
    }
}

/// Scheduled deliveries and per-version status.
#[derive(Default)]
pub(crate) struct Propagation {
    pending: BinaryHeap<Pending>,
    seq: u64,
    pub(crate) versions: Vec<VersionStatus>,
    pub(crate) last_published: u64,
}

impl Propagation {
    /// Nothing scheduled; versions up to `last_published` are taken.
    pub(crate) fn after(last_published: u64) -> Self {
        Propagation {
            last_published,
            ..Propagation::default()
        }
    }

    pub(crate) fn next_at(&self) -> Option<SimTime> {
        self.pending.peek().map(|p| p.at)
    }

    pub(crate) fn schedule(&mut self, at: SimTime, dc: u16, snapshot: Arc<Snapshot<RegionIndex>>) {
        self.seq += 1;
        self.pending.push(Pending {
            at,
            seq: self.seq,
            dc,
            snapshot,
        });
    }

    /// Pops the next delivery due at or before `now`.
    pub(crate) fn pop_due(
        &mut self,
        now: SimTime,
    ) -> Option<(SimTime, u16, Arc<Snapshot<RegionIndex>>)> {
        if self.pending.peek().is_some_and(|p| p.at <= now) {
            self.pending.pop().map(|p| (p.at, p.dc, p.snapshot))
        } else {
            None
        }
    }

    pub(crate) fn pending_len(&self) -> usize {
        self.pending.len()
    }

    /// A data center moved from version `from` to `to` at `at`: every tracked version in
    /// `(from, to]` reached one more data center.
    pub(crate) fn reached(&mut self, from: u64, to: u64, at: SimTime) -> usize {
        let mut activated = 0;
        for s in self
            .versions
            .iter_mut()
            .filter(|s| from < s.version && s.version <= to)
        {
            s.reached += 1;
            if s.active_at.is_none() && s.reached * 2 > s.total {
                s.active_at = Some(at);
                activated += 1;
            }
            if s.complete_at.is_none() && s.reached == s.total {
                s.complete_at = Some(at);
            }
        }
        activated
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn samples_stay_in_range_and_are_seeded() {
        let mut a = rand_chacha::ChaCha8Rng::seed_from_u64(7);
        let mut b = rand_chacha::ChaCha8Rng::seed_from_u64(7);
        let d = DelayDistribution::default();
        for _ in 0..1000 {
            let x = d.sample(&mut a);
            assert_eq!(x, d.sample(&mut b));
            assert!(x >= Duration::from_secs(4 * 3600) && x <= Duration::from_secs(6 * 3600));
        }
        let ln = DelayDistribution::LogNormal {
            median: Duration::from_secs(100),
            sigma: 1.0,
            max: Duration::from_secs(1000),
        };
        let mut xs: Vec<Duration> = (0..2001).map(|_| ln.sample(&mut a)).collect();
        xs.sort();
        assert!(xs.iter().all(|&x| x <= Duration::from_secs(1000)));
        let median = xs[1000].as_secs_f64();
        assert!((70.0..140.0).contains(&median), "median {median}");
        assert_eq!(
            DelayDistribution::Fixed(Duration::from_secs(3)).sample(&mut a),
            Duration::from_secs(3)
        );
    }

    #[test]
    fn heap_pops_in_time_then_schedule_order() {
        let snap = Arc::new(Snapshot::new(1, inregion_table::Table::empty()));
        let mut p = Propagation::default();
        p.schedule(SimTime::from_secs(5), 0, snap.clone());
        p.schedule(SimTime::from_secs(3), 1, snap.clone());
        p.schedule(SimTime::from_secs(3), 2, snap.clone());
        assert_eq!(p.next_at(), Some(SimTime::from_secs(3)));
        assert!(p.pop_due(SimTime::from_secs(2)).is_none());
        let order: Vec<u16> = std::iter::from_fn(|| p.pop_due(SimTime::from_secs(10)))
            .map(|(_, dc, _)| dc)
            .collect();
        assert_eq!(order, vec![1, 2, 0]);
    }
}
