//! Open flows waiting for their last packet: a slab of flow state and a four-ary
//! min-heap of when each ends.

use inregion_edge::{DcId, FlowKey, Verdict};

/// An open flow waiting for its last packet (kept in a slab; the heap holds only its
/// `(end, id)` key and slot, so that sifting moves little memory).
#[derive(Clone, Copy)]
pub(super) struct Open {
    pub(super) key: FlowKey,
    pub(super) ingress: DcId,
    pub(super) processed_at: Option<DcId>,
    pub(super) verdict: Verdict,
    pub(super) table_version: u64,
    pub(super) epoch: u32,
}

/// Open flows: a slab of [`Open`] and a min-heap of `(end, id, slot)`.
#[derive(Default)]
pub(super) struct OpenFlows {
    slab: Vec<Open>,
    free: Vec<u32>,
    heap: QuadHeap,
}

impl OpenFlows {
    #[inline]
    pub(super) fn push(&mut self, end: u64, id: u64, o: Open) {
        let slot = match self.free.pop() {
            Some(s) => {
                self.slab[s as usize] = o;
                s
            }
            None => {
                self.slab.push(o);
                (self.slab.len() - 1) as u32
            }
        };
        self.heap.push((end, id, slot));
    }
    /// When the next open flow ends (`u64::MAX`: none). Also starts loading that flow's
    /// slab entry, which the event loop reads soon after.
    #[inline]
    pub(super) fn next_end(&self) -> u64 {
        match self.heap.peek() {
            Some((end, _, slot)) => {
                inregion_hint::prefetch(&self.slab, slot as usize);
                end
            }
            None => u64::MAX,
        }
    }
    #[inline]
    pub(super) fn pop(&mut self) -> Option<Open> {
        let (_, _, slot) = self.heap.pop()?;
        self.free.push(slot);
        Some(self.slab[slot as usize])
    }
    pub(super) fn len(&self) -> usize {
        self.heap.len()
    }
}

/// A min-heap of `(end, id, slot)` with four children per node: half the levels of a
/// binary heap, so a pop (the simulator's most frequent heap operation: one per flow)
/// does half the unpredictable steps. `(end, id)` is kept packed in one `u128` so that
/// choosing the least of four children is a run of compare-and-select without branches.
/// Ties on `end` pop in `id` order, as `(end, id)` is unique, which keeps runs
/// deterministic.
#[derive(Default)]
struct QuadHeap {
    items: Vec<(u128, u32)>,
}

impl QuadHeap {
    #[inline]
    fn pack(end: u64, id: u64) -> u128 {
        u128::from(end) << 64 | u128::from(id)
    }

    #[inline]
    fn unpack(&(key, slot): &(u128, u32)) -> (u64, u64, u32) {
        ((key >> 64) as u64, key as u64, slot)
    }

    fn len(&self) -> usize {
        self.items.len()
    }

    #[inline]
    fn peek(&self) -> Option<(u64, u64, u32)> {
        self.items.first().map(Self::unpack)
    }

    #[inline]
    fn push(&mut self, (end, id, slot): (u64, u64, u32)) {
        let item = (Self::pack(end, id), slot);
        let mut i = self.items.len();
        self.items.push(item);
        while i > 0 {
            let parent = (i - 1) / 4;
            if self.items[parent].0 <= item.0 {
                break;
            }
            self.items[i] = self.items[parent];
            i = parent;
        }
        self.items[i] = item;
    }

    #[inline]
    fn pop(&mut self) -> Option<(u64, u64, u32)> {
        let last = self.items.pop()?;
        if self.items.is_empty() {
            return Some(Self::unpack(&last));
        }
        let top = self.items[0];
        let n = self.items.len();
        let mut i = 0;
        loop {
            let first = 4 * i + 1;
            if first >= n {
                break;
            }
            let (mut best, mut best_key) = (first, self.items[first].0);
            for c in first + 1..(first + 4).min(n) {
                let k = self.items[c].0;
                let less = k < best_key;
                best = if less { c } else { best };
                best_key = if less { k } else { best_key };
            }
            if last.0 <= best_key {
                break;
            }
            self.items[i] = self.items[best];
            i = best;
        }
        self.items[i] = last;
        Some(Self::unpack(&top))
    }
}

#[cfg(test)]
mod tests {
    use super::QuadHeap;
    use proptest::prelude::*;
    use std::cmp::Reverse;
    use std::collections::BinaryHeap;

    proptest! {
        /// Any interleaving of pushes and pops gives what `std`'s binary heap gives.
        #[test]
        fn pops_in_the_order_of_a_binary_heap(
            ops in proptest::collection::vec(prop_oneof![
                (0u64..50).prop_map(Some),
                Just(None),
            ], 0..400)
        ) {
            let mut ours = QuadHeap::default();
            let mut model = BinaryHeap::new();
            for (id, op) in ops.into_iter().enumerate() {
                match op {
                    Some(end) => {
                        let item = (end, id as u64, id as u32);
                        ours.push(item);
                        model.push(Reverse(item));
                    }
                    None => prop_assert_eq!(ours.pop(), model.pop().map(|r| r.0)),
                }
                prop_assert_eq!(ours.peek(), model.peek().map(|r| r.0));
                prop_assert_eq!(ours.len(), model.len());
            }
            while let Some(Reverse(want)) = model.pop() {
                prop_assert_eq!(ours.pop(), Some(want));
            }
            prop_assert_eq!(ours.pop(), None);
        }
    }
}
