//! Inserting a point into a tree.
//!
//! Insertion follows the paper: at each node on the path, draw a cut on the box grown by the
//! new point, choosing a dimension with probability proportional to its range; when the cut falls
//! between the point and the box, the point becomes a new leaf beside that node. Deleting a leaf
//! splices its sibling into the grandparent (`tree_delete`), so insert-then-delete restores the
//! tree.
//!
//! A node's box is read where it lives (a cache entry, the boxes computed bottom-up for the
//! uncached rest of the path, or a leaf's point) and copied only where the point settles.

use rand::Rng;

use super::point_store::PointStore;
use super::tree_score::grown_range;
use super::trees::{point_of, widen, Scratch, Trees, LEAF, NONE};

impl Trees {
    /// Caches `node` with `mass` and `bounds` when it is heavy enough and the table agrees.
    fn consider_caching(&mut self, tree: usize, node: u16, mass: u32, bounds: &[f32]) {
        if mass < u32::from(self.cache.threshold()) {
            return;
        }
        let mass = u16::try_from(mass).unwrap_or(u16::MAX);
        let (cached, evicted) = self.cache.admit(tree, node, mass, bounds);
        if let Some(evicted) = evicted {
            self.set_cached(tree, evicted, false);
        }
        if cached {
            self.set_cached(tree, node, true);
        }
    }

    /// Inserts point `index` of `store` into `tree` and returns the sample slot now holding it and
    /// the point index the slot refers to: `index`, or an equal point the tree already held (the
    /// caller keeps one store reference per slot on it).
    pub(super) fn insert(
        &mut self,
        tree: usize,
        index: u32,
        store: &PointStore,
        rng: &mut impl Rng,
        scratch: &mut Scratch,
    ) -> (u16, u32) {
        let d = self.dimensions;
        let point = store.get(index);
        if self.headers[tree].root == NONE {
            let slot = self.alloc_slot(tree, index);
            self.headers[tree].root = slot | LEAF;
            return (slot, index);
        }
        let mut bounds = std::mem::take(&mut scratch.bounds);
        bounds.resize(2 * d, 0.0);
        let mut parent = NONE;
        let mut node = self.headers[tree].root;
        // Below the cached nodes, the boxes of the rest of the path, computed once bottom-up.
        let mut tail: Option<usize> = None;
        let result = loop {
            let cached = if node & LEAF == 0 && self.is_cached(tree, node) {
                self.cache.find(tree, node)
            } else {
                None
            };
            if node & LEAF == 0 && cached.is_none() && tail.is_none() {
                self.tail_boxes(tree, node, point, store, scratch);
                tail = Some(0);
            }
            // Where this node's box is read from: no copy unless the point settles here.
            let source = match (cached, tail) {
                (_, Some(i)) if node & LEAF == 0 => BoxSource::Tail(i),
                (Some(entry), _) => BoxSource::Cached(entry),
                _ => BoxSource::Leaf(node & !LEAF),
            };
            let (node_mass, cut) = {
                let (minimums, maximums, mass) = match source {
                    BoxSource::Tail(i) => {
                        let bounds = &scratch.tail_boxes[i * 2 * d..(i + 1) * 2 * d];
                        let (minimums, maximums) = bounds.split_at(d);
                        (minimums, maximums, scratch.tail_masses[i])
                    }
                    BoxSource::Cached(entry) => {
                        let (minimums, maximums) = self.cache.bounds(entry);
                        (minimums, maximums, u32::from(self.cache.mass(entry)))
                    }
                    BoxSource::Leaf(slot) => {
                        let leaf_point = point_of(store, self, tree, slot);
                        (leaf_point, leaf_point, self.leaf_mass(tree, slot))
                    }
                };
                let is_leaf = matches!(source, BoxSource::Leaf(_));
                (mass, choose_cut(minimums, maximums, point, is_leaf, rng))
            };
            match cut {
                Cut::Duplicate => {
                    // Only a leaf has an empty box: the point is a copy of it.
                    let leaf = node & !LEAF;
                    let kept = self.slot_point(tree, leaf);
                    self.set_leaf_mass(tree, leaf, self.leaf_mass(tree, leaf) + 1);
                    break (self.alloc_slot(tree, kept), kept);
                }
                Cut::Split {
                    dimension,
                    value,
                    goes_left,
                } => {
                    self.copy_box(source, tree, store, scratch, &mut bounds);
                    let slot = self.alloc_slot(tree, index);
                    let leaf = slot | LEAF;
                    let (left, right) = if goes_left {
                        (leaf, node)
                    } else {
                        (node, leaf)
                    };
                    let internal = self.alloc_node(tree, (dimension, value), left, right);
                    self.replace_child(tree, parent, node, internal);
                    grow(&mut bounds, point);
                    self.consider_caching(tree, internal, node_mass + 1, &bounds);
                    break (slot, index);
                }
                Cut::Inside => {}
            }
            // The cut falls inside the box: the point belongs to the side it cuts to.
            if let Some(entry) = cached {
                self.cache.grow(entry, point);
            } else {
                self.copy_box(source, tree, store, scratch, &mut bounds);
                grow(&mut bounds, point);
                self.consider_caching(tree, node, node_mass + 1, &bounds);
            }
            parent = node;
            node = self.child_toward(tree, node, point);
            tail = tail.map(|i| i + 1);
        };
        scratch.bounds = bounds;
        result
    }

    /// Copies the box `source` names into `bounds` (minimums then maximums).
    fn copy_box(
        &self,
        source: BoxSource,
        tree: usize,
        store: &PointStore,
        scratch: &Scratch,
        bounds: &mut [f32],
    ) {
        let d = self.dimensions;
        match source {
            BoxSource::Tail(i) => {
                bounds.copy_from_slice(&scratch.tail_boxes[i * 2 * d..(i + 1) * 2 * d]);
            }
            BoxSource::Cached(entry) => {
                let (minimums, maximums) = self.cache.bounds(entry);
                bounds[..d].copy_from_slice(minimums);
                bounds[d..].copy_from_slice(maximums);
            }
            BoxSource::Leaf(slot) => {
                let leaf_point = point_of(store, self, tree, slot);
                bounds[..d].copy_from_slice(leaf_point);
                bounds[d..].copy_from_slice(leaf_point);
            }
        }
    }

    /// Fills `scratch.path` with the internal nodes from `node` down to the leaf `point` reaches,
    /// and `scratch.tail_boxes` / `tail_masses` with each one's box and mass, computed bottom-up
    /// in one pass (each box is the one below it grown by the sibling's subtree).
    fn tail_boxes(
        &self,
        tree: usize,
        mut node: u16,
        point: &[f32],
        store: &PointStore,
        scratch: &mut Scratch,
    ) {
        let d = self.dimensions;
        scratch.path.clear();
        while node & LEAF == 0 {
            scratch.path.push(node);
            node = self.child_toward(tree, node, point);
        }
        let length = scratch.path.len();
        scratch.tail_boxes.resize(length * 2 * d, 0.0);
        scratch.tail_masses.resize(length, 0);
        let leaf = node & !LEAF;
        let mut running = std::mem::take(&mut scratch.other);
        running.clear();
        running.extend_from_slice(point_of(store, self, tree, leaf));
        running.extend_from_slice(point_of(store, self, tree, leaf));
        let mut mass = self.leaf_mass(tree, leaf);
        let mut below = node;
        for i in (0..length).rev() {
            let at = scratch.path[i];
            let (left, right) = self.children(tree, at);
            let sibling = if left == below { right } else { left };
            mass += self.union_box::<true>(tree, sibling, store, &mut scratch.stack, &mut running);
            scratch.tail_boxes[i * 2 * d..(i + 1) * 2 * d].copy_from_slice(&running);
            scratch.tail_masses[i] = mass;
            below = at;
        }
        scratch.other = running;
    }
}

/// Where an insertion reads a node's box from.
#[derive(Debug, Clone, Copy)]
enum BoxSource {
    /// The tail boxes computed for this insertion, at this index of the path.
    Tail(usize),
    /// The node's cache entry.
    Cached(usize),
    /// A leaf: the point in this slot.
    Leaf(u16),
}

/// What an insertion does at a node.
#[derive(Debug, Clone, Copy)]
enum Cut {
    /// The point equals the leaf here.
    Duplicate,
    /// A new internal node cuts the point off here.
    Split {
        dimension: usize,
        value: f32,
        goes_left: bool,
    },
    /// The cut fell inside the box: go on down.
    Inside,
}

/// Draws this node's random cut for `point` (box `minimums`..`maximums`; a leaf's box is its
/// point) and says what the insertion does with it.
fn choose_cut(
    minimums: &[f32],
    maximums: &[f32],
    point: &[f32],
    is_leaf: bool,
    rng: &mut impl Rng,
) -> Cut {
    let total = grown_range(minimums, maximums, point);
    if total <= 0.0 {
        return Cut::Duplicate;
    }
    let (dimension, value) = draw_cut(minimums, maximums, point, total, rng);
    let left_of_box = point[dimension] <= value && value < minimums[dimension];
    let right_of_box = maximums[dimension] <= value && value < point[dimension];
    if left_of_box || right_of_box {
        Cut::Split {
            dimension,
            value,
            goes_left: left_of_box,
        }
    } else if is_leaf {
        // Rounding put the cut on the leaf's own value: cut at the lower of the two values of a
        // dimension where they differ, which always separates them.
        let i = (0..point.len())
            .find(|&i| point[i] != minimums[i])
            .unwrap_or(dimension);
        Cut::Split {
            dimension: i,
            value: point[i].min(minimums[i]),
            goes_left: point[i] < minimums[i],
        }
    } else {
        Cut::Inside
    }
}

/// Grows `bounds` (minimums then maximums) by `point`.
fn grow(bounds: &mut [f32], point: &[f32]) {
    let (minimums, maximums) = bounds.split_at_mut(point.len());
    widen(minimums, maximums, point, point);
}

/// A random cut of the box grown by `point`: a dimension with probability proportional to its
/// range, and a uniform value within it. `total` is the sum of the grown ranges (positive).
fn draw_cut(
    minimums: &[f32],
    maximums: &[f32],
    point: &[f32],
    total: f64,
    rng: &mut impl Rng,
) -> (usize, f32) {
    let mut draw = rng.random_range(0.0..total);
    for d in 0..point.len() {
        let low = minimums[d].min(point[d]);
        let range = f64::from(maximums[d].max(point[d]) - low);
        if draw < range {
            return (d, (f64::from(low) + draw) as f32);
        }
        draw -= range;
    }
    let d = (0..point.len())
        .rev()
        .find(|&d| maximums[d].max(point[d]) > minimums[d].min(point[d]))
        .unwrap_or(0);
    (d, minimums[d].min(point[d]))
}
