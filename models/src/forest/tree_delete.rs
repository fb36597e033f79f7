//! Deleting a point from a tree: the leaf's sibling is spliced into the grandparent, and cached
//! boxes above are refitted only while the point lay on their boundary.

use super::point_store::PointStore;
use super::trees::{Scratch, Trees, LEAF, NONE};

impl Trees {
    /// Removes the point in `slot` of `tree` and returns its point-store index.
    pub(super) fn delete(
        &mut self,
        tree: usize,
        slot: u16,
        store: &PointStore,
        scratch: &mut Scratch,
    ) -> u32 {
        let index = self.slot_point(tree, slot);
        let point = store.get(index);
        let mut path = std::mem::take(&mut scratch.path);
        path.clear();
        let mut node = self.headers[tree].root;
        while node & LEAF == 0 {
            path.push(node);
            node = self.child_toward(tree, node, point);
        }
        let leaf = node & !LEAF;
        let mass = self.leaf_mass(tree, leaf);
        let parent = path.last().copied().unwrap_or(NONE);
        if mass > 1 {
            self.set_leaf_mass(tree, leaf, mass - 1);
            if leaf == slot {
                // The leaf's own slot leaves: another slot holding the same point takes over.
                let heir = (0..self.headers[tree].used_slots)
                    .find(|&other| other != slot && self.slot_point(tree, other) == index)
                    .unwrap_or(slot);
                self.set_leaf_mass(tree, slot, 1);
                self.set_leaf_mass(tree, heir, mass - 1);
                self.replace_child(tree, parent, node, heir | LEAF);
            }
            for &ancestor in &path {
                self.shrink_cached(tree, ancestor, None, store, scratch);
            }
        } else {
            if let Some(&parent) = path.last() {
                let (left, right) = self.children(tree, parent);
                let sibling = if left == node { right } else { left };
                let grandparent = path.len().checked_sub(2).map_or(NONE, |i| path[i]);
                self.replace_child(tree, grandparent, parent, sibling);
                self.free_node(tree, parent);
                path.pop();
            } else {
                self.headers[tree].root = NONE;
            }
            // Boxes above change only while the point was on their boundary.
            let mut refit = true;
            for &ancestor in path.iter().rev() {
                refit = self.shrink_cached(tree, ancestor, refit.then_some(point), store, scratch);
            }
        }
        scratch.path = path;
        self.free_slot(tree, slot);
        index
    }

    /// After a removal below `node` (if cached): one less mass; when `removed` is given (a
    /// point left, not just a copy) and lay on the cached box's boundary, the box is refitted
    /// from the children. Returns whether boxes above may still change: not once a cached box
    /// held the point strictly inside, since every box above holds that box. A node that became
    /// light leaves the cache.
    fn shrink_cached(
        &mut self,
        tree: usize,
        node: u16,
        removed: Option<&[f32]>,
        store: &PointStore,
        scratch: &mut Scratch,
    ) -> bool {
        let entry = if self.is_cached(tree, node) {
            self.cache.find(tree, node)
        } else {
            None
        };
        let Some(entry) = entry else {
            return removed.is_some();
        };
        let mass = self.cache.mass(entry) - 1;
        if mass < self.cache.threshold() / 2 {
            self.cache.remove(tree, node);
            self.set_cached(tree, node, false);
            return removed.is_some();
        }
        let Some(point) = removed else {
            self.cache.set_mass(entry, mass);
            return false;
        };
        let (minimums, maximums) = self.cache.bounds(entry);
        let on_boundary = point
            .iter()
            .zip(minimums.iter().zip(maximums))
            .any(|(value, (low, high))| value == low || value == high);
        if !on_boundary {
            self.cache.set_mass(entry, mass);
            return false;
        }
        let d = self.dimensions;
        let mut bounds = std::mem::take(&mut scratch.other);
        bounds.resize(2 * d, 0.0);
        bounds[..d].fill(f32::INFINITY);
        bounds[d..].fill(f32::NEG_INFINITY);
        let (left, right) = self.children(tree, node);
        self.union_box::<false>(tree, left, store, &mut scratch.stack, &mut bounds);
        self.union_box::<false>(tree, right, store, &mut scratch.stack, &mut bounds);
        self.cache.set(entry, mass, &bounds);
        scratch.other = bounds;
        true
    }
}
