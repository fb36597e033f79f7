//! The bounding boxes and masses of a tree's heaviest internal nodes, in a small fixed-size
//! open-addressing table per tree.
//!
//! **The trade-off.** Caching every node's box costs `2 × dimensions` floats per node, which is
//! most of a naive forest's memory once points are shingled. A box that is not cached is
//! recomputed by walking the node's subtree. Heavy nodes (near the root) sit on every path and
//! have large subtrees, so they are cached; light nodes are recomputed, which costs about the
//! cache threshold in leaf visits per walk. The table has `slots_per_tree` slots (a power of two,
//! about `sample_size / 4`) and holds at most three quarters of them. A node is cached once its
//! mass reaches the threshold. It leaves the table below half the threshold, or when a heavier
//! node needs the place, so the table always holds the heaviest nodes it has seen. Hits and misses
//! only change speed: a box is exact whether cached or recomputed.

use serde::{Deserialize, Serialize};

/// No entry in a table slot.
const EMPTY: u16 = u16::MAX;

/// The box caches of every tree of a forest, stored flat.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(super) struct BoxCache {
    dimensions: usize,
    slots_per_tree: usize,
    /// Node id per slot, or [`EMPTY`].
    keys: Vec<u16>,
    /// Mass of the cached node per slot.
    masses: Vec<u16>,
    /// Box per slot: minimums then maximums, `2 × dimensions` values.
    boxes: Vec<f32>,
    /// Entries held per tree.
    counts: Vec<u16>,
    /// Mass from which a node is cached.
    threshold: u16,
}

impl BoxCache {
    /// Empty caches for `trees` trees of `sample_size` points of `dimensions` values.
    pub(super) fn new(trees: usize, sample_size: usize, dimensions: usize) -> Self {
        let slots_per_tree = (sample_size / 4).max(8).next_power_of_two();
        let capacity = slots_per_tree * 3 / 4;
        // A tree holds about 2 × sample_size / threshold nodes at or above the threshold.
        let threshold = (2 * sample_size).div_ceil(capacity).max(4);
        Self {
            dimensions,
            slots_per_tree,
            keys: vec![EMPTY; trees * slots_per_tree],
            masses: vec![0; trees * slots_per_tree],
            boxes: vec![0.0; trees * slots_per_tree * 2 * dimensions],
            counts: vec![0; trees],
            threshold: u16::try_from(threshold).unwrap_or(u16::MAX),
        }
    }

    /// Mass from which a node is worth caching.
    pub(super) fn threshold(&self) -> u16 {
        self.threshold
    }

    /// The slot `node` hashes to, relative to its tree's first slot.
    fn home(&self, node: u16) -> usize {
        (u32::from(node).wrapping_mul(0x9E37_79B1) >> 16) as usize & (self.slots_per_tree - 1)
    }

    /// The table slot holding `node`'s entry, if it is cached.
    pub(super) fn find(&self, tree: usize, node: u16) -> Option<usize> {
        let base = tree * self.slots_per_tree;
        let mask = self.slots_per_tree - 1;
        let mut offset = self.home(node);
        for _ in 0..self.slots_per_tree {
            let key = self.keys[base + offset];
            if key == node {
                return Some(base + offset);
            }
            if key == EMPTY {
                return None;
            }
            offset = (offset + 1) & mask;
        }
        None
    }

    /// The mass of the entry in `slot`.
    pub(super) fn mass(&self, slot: usize) -> u16 {
        self.masses[slot]
    }

    /// The box of the entry in `slot` as (minimums, maximums).
    pub(super) fn bounds(&self, slot: usize) -> (&[f32], &[f32]) {
        let start = slot * 2 * self.dimensions;
        self.boxes[start..start + 2 * self.dimensions].split_at(self.dimensions)
    }

    /// Grows the entry in `slot` by `point` and its mass by one.
    pub(super) fn grow(&mut self, slot: usize, point: &[f32]) {
        let d = self.dimensions;
        let start = slot * 2 * d;
        let (minimums, maximums) = self.boxes[start..start + 2 * d].split_at_mut(d);
        super::trees::widen(minimums, maximums, point, point);
        self.masses[slot] += 1;
    }

    /// Replaces the entry in `slot` with `mass` and `bounds` (minimums then maximums).
    pub(super) fn set(&mut self, slot: usize, mass: u16, bounds: &[f32]) {
        let start = slot * 2 * self.dimensions;
        self.boxes[start..start + 2 * self.dimensions].copy_from_slice(bounds);
        self.masses[slot] = mass;
    }

    /// Sets the mass of the entry in `slot` (its box unchanged).
    pub(super) fn set_mass(&mut self, slot: usize, mass: u16) {
        self.masses[slot] = mass;
    }

    /// Caches `node` if the tree's table has room, or evicts its lightest entry when that is
    /// lighter than `mass`. Returns whether `node` is now cached and which node was evicted.
    pub(super) fn admit(
        &mut self,
        tree: usize,
        node: u16,
        mass: u16,
        bounds: &[f32],
    ) -> (bool, Option<u16>) {
        let mut evicted = None;
        if usize::from(self.counts[tree]) >= self.slots_per_tree * 3 / 4 {
            let base = tree * self.slots_per_tree;
            let lightest = (base..base + self.slots_per_tree)
                .filter(|&slot| self.keys[slot] != EMPTY)
                .min_by_key(|&slot| (self.masses[slot], self.keys[slot]));
            match lightest {
                Some(slot) if self.masses[slot] < mass => {
                    evicted = Some(self.keys[slot]);
                    self.remove_slot(tree, slot);
                }
                _ => return (false, None),
            }
        }
        let base = tree * self.slots_per_tree;
        let mut offset = self.home(node);
        while self.keys[base + offset] != EMPTY {
            offset = (offset + 1) & (self.slots_per_tree - 1);
        }
        let slot = base + offset;
        self.keys[slot] = node;
        self.set(slot, mass, bounds);
        self.counts[tree] += 1;
        (true, evicted)
    }

    /// Drops `node`'s entry.
    pub(super) fn remove(&mut self, tree: usize, node: u16) {
        if let Some(slot) = self.find(tree, node) {
            self.remove_slot(tree, slot);
        }
    }

    /// Empties `slot`, shifting later entries of its probe run back so lookups still find them.
    fn remove_slot(&mut self, tree: usize, slot: usize) {
        let base = tree * self.slots_per_tree;
        let mask = self.slots_per_tree - 1;
        let d2 = 2 * self.dimensions;
        let mut hole = slot - base;
        self.keys[base + hole] = EMPTY;
        self.counts[tree] -= 1;
        let mut offset = (hole + 1) & mask;
        while self.keys[base + offset] != EMPTY {
            let home = self.home(self.keys[base + offset]);
            // Move the entry into the hole when the hole lies between its home and its slot.
            if (hole.wrapping_sub(home) & mask) < (offset.wrapping_sub(home) & mask) {
                self.keys[base + hole] = self.keys[base + offset];
                self.masses[base + hole] = self.masses[base + offset];
                self.boxes.copy_within(
                    (base + offset) * d2..(base + offset + 1) * d2,
                    (base + hole) * d2,
                );
                self.keys[base + offset] = EMPTY;
                hole = offset;
            }
            offset = (offset + 1) & mask;
        }
    }

    /// Entries held by `tree`.
    #[cfg(test)]
    pub(super) fn count(&self, tree: usize) -> usize {
        usize::from(self.counts[tree])
    }

    /// Heap bytes held.
    pub(super) fn heap_bytes(&self) -> usize {
        self.keys.capacity() * 2
            + self.masses.capacity() * 2
            + self.boxes.capacity() * 4
            + self.counts.capacity() * 2
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_survive_removals_of_their_neighbours() {
        let mut cache = BoxCache::new(2, 64, 1);
        for node in 0..6 {
            assert_eq!(
                cache.admit(1, node * 8, 100 + node, &[0.0, f32::from(node)]),
                (true, None)
            );
        }
        cache.remove(1, 16);
        for node in [0, 8, 24, 32, 40] {
            let slot = cache.find(1, node).unwrap();
            assert_eq!(cache.bounds(slot).1, &[f32::from(node / 8)]);
        }
        assert_eq!(cache.find(0, 8), None, "trees do not share tables");
        assert_eq!(cache.count(1), 5);
    }

    #[test]
    fn a_full_table_gives_its_lightest_place_to_a_heavier_node() {
        let mut cache = BoxCache::new(1, 64, 1);
        let capacity = cache.slots_per_tree * 3 / 4;
        for node in 0..capacity as u16 {
            assert!(cache.admit(0, node, 50 + node, &[0.0, 1.0]).0);
        }
        assert_eq!(cache.admit(0, 99, 10, &[0.0, 1.0]), (false, None));
        assert_eq!(cache.admit(0, 99, 80, &[0.0, 1.0]), (true, Some(0)));
        assert!(cache.find(0, 0).is_none());
        assert!(cache.find(0, 99).is_some());
    }
}
