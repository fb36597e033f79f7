//! One random cut tree (Guha et al., ICML 2016) over points of a [`PointStore`].
//!
//! Internal nodes and leaves live in two arenas addressed by `u32`; a node reference with the top
//! bit set is a leaf. A leaf holds a point index and a mass (how many copies of that point the
//! tree sampled). Every internal node caches its bounding box (`2 × dimensions` `f32`): insertion
//! needs the box of each node on its path, and recomputing boxes would make an insert cost the
//! size of the subtree instead of its depth. That cache is the trade-off: the memory of
//! `sample_size - 1` boxes per tree buys O(depth) updates and scores.
//!
//! Insertion follows the paper: at each node on the path, draw a cut on the box grown by the new
//! point, choosing a dimension with probability proportional to its range; when the cut falls
//! between the point and the box, the point becomes a new leaf beside that node. Deleting a leaf
//! splices its sibling into the grandparent, so insert-then-delete restores the tree.

use rand::Rng;
use serde::{Deserialize, Serialize};

use super::point_store::PointStore;

/// No node (an empty tree's root, the root's parent).
const NONE: u32 = u32::MAX;
/// The top bit of a node reference marks a leaf.
const LEAF: u32 = 1 << 31;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Internal {
    cut_dimension: u16,
    cut_value: f32,
    left: u32,
    right: u32,
    parent: u32,
    mass: u32,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Leaf {
    point: u32,
    parent: u32,
    mass: u32,
}

/// A random cut tree holding point indices of a shared [`PointStore`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RandomCutTree {
    dimensions: usize,
    root: u32,
    internals: Vec<Internal>,
    /// `internals[i]`'s box: minimums then maximums, `2 × dimensions` values from `i × 2d`.
    boxes: Vec<f32>,
    leaves: Vec<Leaf>,
    free_internals: Vec<u32>,
    free_leaves: Vec<u32>,
}

/// Where a point would land: the nodes from the root, and the leaf reached.
struct Path {
    internals: Vec<u32>,
    leaf: u32,
}

impl RandomCutTree {
    /// An empty tree for points of `dimensions` values.
    pub fn new(dimensions: usize) -> Self {
        Self {
            dimensions,
            root: NONE,
            internals: Vec::new(),
            boxes: Vec::new(),
            leaves: Vec::new(),
            free_internals: Vec::new(),
            free_leaves: Vec::new(),
        }
    }

    /// Points held, counting duplicates.
    pub fn mass(&self) -> u32 {
        self.node_mass(self.root)
    }

    /// Heap bytes held by the tree's arenas (not the shared points).
    pub fn heap_bytes(&self) -> usize {
        self.internals.capacity() * std::mem::size_of::<Internal>()
            + self.boxes.capacity() * 4
            + self.leaves.capacity() * std::mem::size_of::<Leaf>()
            + (self.free_internals.capacity() + self.free_leaves.capacity()) * 4
    }

    fn node_mass(&self, node: u32) -> u32 {
        if node == NONE {
            0
        } else if node & LEAF != 0 {
            self.leaves[(node & !LEAF) as usize].mass
        } else {
            self.internals[node as usize].mass
        }
    }

    fn parent(&self, node: u32) -> u32 {
        if node & LEAF != 0 {
            self.leaves[(node & !LEAF) as usize].parent
        } else {
            self.internals[node as usize].parent
        }
    }

    fn set_parent(&mut self, node: u32, parent: u32) {
        if node & LEAF != 0 {
            self.leaves[(node & !LEAF) as usize].parent = parent;
        } else {
            self.internals[node as usize].parent = parent;
        }
    }

    fn box_of(&self, internal: u32) -> (&[f32], &[f32]) {
        let start = internal as usize * 2 * self.dimensions;
        let (minimums, rest) =
            self.boxes[start..start + 2 * self.dimensions].split_at(self.dimensions);
        (minimums, rest)
    }

    /// The bounding box of `node` (a leaf's box is its point) as (minimums, maximums).
    fn bounds<'a>(&'a self, node: u32, store: &'a PointStore) -> (&'a [f32], &'a [f32]) {
        if node & LEAF != 0 {
            let point = store.get(self.leaves[(node & !LEAF) as usize].point);
            (point, point)
        } else {
            self.box_of(node)
        }
    }

    /// Inserts point `index` of `store` and returns the index the tree now holds for it: `index`,
    /// or the index of an equal point it already held (whose leaf mass grows). The caller keeps
    /// one store reference per insert on the returned index.
    pub fn insert(&mut self, index: u32, store: &PointStore, rng: &mut impl Rng) -> u32 {
        let point = store.get(index);
        if self.root == NONE {
            self.root = self.new_leaf(index, NONE);
            return index;
        }
        let mut node = self.root;
        loop {
            let (minimums, maximums) = self.bounds(node, store);
            let mut total = 0.0f64;
            for d in 0..self.dimensions {
                total += f64::from(maximums[d].max(point[d]) - minimums[d].min(point[d]));
            }
            if total <= 0.0 {
                // Only a leaf has an empty box: the point is a copy of it.
                return self.add_duplicate(node);
            }
            let mut draw = rng.random_range(0.0..total);
            let mut cut = None;
            for d in 0..self.dimensions {
                let low = minimums[d].min(point[d]);
                let range = f64::from(maximums[d].max(point[d]) - low);
                if draw < range {
                    let value = (f64::from(low) + draw) as f32;
                    cut = Some((d, value));
                    break;
                }
                draw -= range;
            }
            let (dimension, value) = cut.unwrap_or_else(|| {
                let d = (0..self.dimensions)
                    .rev()
                    .find(|&d| maximums[d].max(point[d]) > minimums[d].min(point[d]))
                    .unwrap_or(0);
                (d, minimums[d].min(point[d]))
            });
            let point_left_of_box = point[dimension] <= value && value < minimums[dimension];
            let point_right_of_box = maximums[dimension] <= value && value < point[dimension];
            if point_left_of_box || point_right_of_box {
                self.split(node, index, store, dimension, value, point_left_of_box);
                return index;
            }
            if node & LEAF != 0 {
                // Rounding put the cut on the leaf's own value: cut at the lower of the two
                // values of a dimension where they differ, which always separates them.
                let d = (0..self.dimensions)
                    .find(|&d| point[d] != minimums[d])
                    .unwrap_or(dimension);
                let goes_left = point[d] < minimums[d];
                let value = point[d].min(minimums[d]);
                self.split(node, index, store, d, value, goes_left);
                return index;
            }
            // The cut falls inside the box: the point belongs to the side it cuts to.
            let internal = &self.internals[node as usize];
            let next = if point[internal.cut_dimension as usize] <= internal.cut_value {
                internal.left
            } else {
                internal.right
            };
            self.grow(node, point);
            node = next;
        }
    }

    /// Grows internal `node`'s box by `point` and its mass by one.
    fn grow(&mut self, node: u32, point: &[f32]) {
        let d = self.dimensions;
        let start = node as usize * 2 * d;
        for (i, &value) in point.iter().enumerate() {
            let minimum = &mut self.boxes[start + i];
            *minimum = minimum.min(value);
            let maximum = &mut self.boxes[start + d + i];
            *maximum = maximum.max(value);
        }
        self.internals[node as usize].mass += 1;
    }

    /// Counts one more copy at `leaf` (its ancestors grew on the way down); returns the leaf's
    /// point index.
    fn add_duplicate(&mut self, leaf: u32) -> u32 {
        let slot = (leaf & !LEAF) as usize;
        self.leaves[slot].mass += 1;
        self.leaves[slot].point
    }

    /// Puts a new leaf for `index` beside `node`, under a new internal node cutting at `value`.
    fn split(
        &mut self,
        node: u32,
        index: u32,
        store: &PointStore,
        dimension: usize,
        value: f32,
        point_goes_left: bool,
    ) {
        let parent = self.parent(node);
        let point = store.get(index);
        let (minimums, maximums) = self.bounds(node, store);
        let mut grown: Vec<f32> = minimums.iter().zip(point).map(|(a, b)| a.min(*b)).collect();
        grown.extend(maximums.iter().zip(point).map(|(a, b)| a.max(*b)));
        let mass = self.node_mass(node) + 1;
        let internal = self.new_internal(parent, &grown);
        let leaf = self.new_leaf(index, internal);
        let (left, right) = if point_goes_left {
            (leaf, node)
        } else {
            (node, leaf)
        };
        let slot = &mut self.internals[internal as usize];
        slot.cut_dimension = u16::try_from(dimension).unwrap_or(u16::MAX);
        slot.cut_value = value;
        slot.left = left;
        slot.right = right;
        slot.mass = mass;
        self.set_parent(node, internal);
        self.replace_child(parent, node, internal);
    }

    /// Points `parent`'s link to `old` at `new` (or the root, when `parent` is NONE).
    fn replace_child(&mut self, parent: u32, old: u32, new: u32) {
        if parent == NONE {
            self.root = new;
        } else {
            let slot = &mut self.internals[parent as usize];
            if slot.left == old {
                slot.left = new;
            } else {
                slot.right = new;
            }
        }
    }

    fn new_leaf(&mut self, point: u32, parent: u32) -> u32 {
        let leaf = Leaf {
            point,
            parent,
            mass: 1,
        };
        let slot = if let Some(slot) = self.free_leaves.pop() {
            self.leaves[slot as usize] = leaf;
            slot
        } else {
            self.leaves.push(leaf);
            u32::try_from(self.leaves.len() - 1).unwrap_or(u32::MAX)
        };
        slot | LEAF
    }

    fn new_internal(&mut self, parent: u32, bounds: &[f32]) -> u32 {
        let internal = Internal {
            cut_dimension: 0,
            cut_value: 0.0,
            left: NONE,
            right: NONE,
            parent,
            mass: 0,
        };
        if let Some(slot) = self.free_internals.pop() {
            self.internals[slot as usize] = internal;
            let start = slot as usize * 2 * self.dimensions;
            self.boxes[start..start + 2 * self.dimensions].copy_from_slice(bounds);
            slot
        } else {
            self.internals.push(internal);
            self.boxes.extend_from_slice(bounds);
            u32::try_from(self.internals.len() - 1).unwrap_or(u32::MAX)
        }
    }

    /// The path `point` takes from the root (None for an empty tree).
    fn path(&self, point: &[f32]) -> Option<Path> {
        if self.root == NONE {
            return None;
        }
        let mut internals = Vec::new();
        let mut node = self.root;
        while node & LEAF == 0 {
            internals.push(node);
            let internal = &self.internals[node as usize];
            node = if point[internal.cut_dimension as usize] <= internal.cut_value {
                internal.left
            } else {
                internal.right
            };
        }
        Some(Path {
            internals,
            leaf: node,
        })
    }

    /// Removes one copy of point `index` of `store`; false when the tree does not hold it.
    pub fn delete(&mut self, index: u32, store: &PointStore) -> bool {
        let point = store.get(index);
        let Some(path) = self.path(point) else {
            return false;
        };
        let slot = (path.leaf & !LEAF) as usize;
        if self.leaves[slot].point != index && store.get(self.leaves[slot].point) != point {
            return false;
        }
        if self.leaves[slot].mass > 1 {
            self.leaves[slot].mass -= 1;
            for &node in &path.internals {
                self.internals[node as usize].mass -= 1;
            }
            return true;
        }
        self.free_leaves.push(slot as u32);
        let Some(&parent) = path.internals.last() else {
            self.root = NONE;
            return true;
        };
        let parent_slot = &self.internals[parent as usize];
        let sibling = if parent_slot.left == path.leaf {
            parent_slot.right
        } else {
            parent_slot.left
        };
        let grandparent = parent_slot.parent;
        self.set_parent(sibling, grandparent);
        self.replace_child(grandparent, parent, sibling);
        self.free_internals.push(parent);
        for &node in path.internals[..path.internals.len() - 1].iter().rev() {
            self.internals[node as usize].mass -= 1;
            self.refit(node, store);
        }
        true
    }

    /// Recomputes internal `node`'s box from its children's.
    fn refit(&mut self, node: u32, store: &PointStore) {
        let d = self.dimensions;
        let (left, right) = {
            let internal = &self.internals[node as usize];
            (internal.left, internal.right)
        };
        let mut bounds = vec![0.0f32; 2 * d];
        {
            let (left_min, left_max) = self.bounds(left, store);
            let (right_min, right_max) = self.bounds(right, store);
            for i in 0..d {
                bounds[i] = left_min[i].min(right_min[i]);
                bounds[d + i] = left_max[i].max(right_max[i]);
            }
        }
        let start = node as usize * 2 * d;
        self.boxes[start..start + 2 * d].copy_from_slice(&bounds);
    }

    /// This tree's anomaly score of `point` (see [`super`] for the formula); 0 for an empty tree.
    pub fn score(&self, point: &[f32], store: &PointStore) -> f64 {
        let Some(path) = self.path(point) else {
            return 0.0;
        };
        let leaf = &self.leaves[(path.leaf & !LEAF) as usize];
        let depth = path.internals.len();
        let mut score = if store.get(leaf.point) == point {
            damp(leaf.mass, self.mass()) * score_seen(depth, leaf.mass)
        } else {
            score_unseen(depth)
        };
        for (depth, &node) in path.internals.iter().enumerate().rev() {
            let (minimums, maximums) = self.box_of(node);
            let probability = separation_probability(minimums, maximums, point);
            if probability > 0.0 {
                score = (1.0 - probability) * score + probability * score_unseen(depth);
            }
        }
        score * f64::from(self.mass() + 1).log2()
    }

    /// Splits [`Self::score`] over dimensions and directions: adds to `attribution` (length
    /// `2 × dimensions`: how much each dimension being high, then low, contributes), with the
    /// same walk as the score, so the entries sum to the score. At each node the separation
    /// probability is split by how far the point lies above or below the box in each dimension.
    pub fn add_attribution(&self, point: &[f32], store: &PointStore, attribution: &mut [f64]) {
        let d = self.dimensions;
        let Some(path) = self.path(point) else {
            return;
        };
        let leaf = &self.leaves[(path.leaf & !LEAF) as usize];
        let depth = path.internals.len();
        let leaf_point = store.get(leaf.point);
        let mut local = vec![0.0f64; 2 * d];
        if leaf_point == point {
            let share =
                damp(leaf.mass, self.mass()) * score_seen(depth, leaf.mass) / (2 * d) as f64;
            local.fill(share);
        } else {
            separation_shares(leaf_point, leaf_point, point, &mut local);
            let unseen = score_unseen(depth);
            local.iter_mut().for_each(|value| *value *= unseen);
        }
        let mut shares = vec![0.0f64; 2 * d];
        for (depth, &node) in path.internals.iter().enumerate().rev() {
            let (minimums, maximums) = self.box_of(node);
            let probability = separation_shares(minimums, maximums, point, &mut shares);
            if probability > 0.0 {
                let unseen = score_unseen(depth);
                for (value, share) in local.iter_mut().zip(&shares) {
                    *value = (1.0 - probability) * *value + share * unseen;
                }
            }
        }
        let normalizer = f64::from(self.mass() + 1).log2();
        for (total, value) in attribution.iter_mut().zip(&local) {
            *total += value * normalizer;
        }
    }

    /// Every point index held, with its mass (for tests and audits).
    pub fn leaf_points(&self) -> Vec<(u32, u32)> {
        let mut points = Vec::new();
        let mut stack = Vec::new();
        if self.root != NONE {
            stack.push(self.root);
        }
        while let Some(node) = stack.pop() {
            if node & LEAF != 0 {
                let leaf = &self.leaves[(node & !LEAF) as usize];
                points.push((leaf.point, leaf.mass));
            } else {
                let internal = &self.internals[node as usize];
                stack.push(internal.left);
                stack.push(internal.right);
            }
        }
        points.sort_unstable();
        points
    }

    /// Checks the tree's invariants: parent links, masses, tight boxes that contain their
    /// subtree, and cuts that separate the children. Returns the first violation found.
    pub fn check_invariants(&self, store: &PointStore) -> Result<(), String> {
        if self.root == NONE {
            return Ok(());
        }
        if self.parent(self.root) != NONE {
            return Err("the root has a parent".to_owned());
        }
        self.check_node(self.root, store).map(|_| ())
    }

    /// Returns the node's mass and box after checking it and its subtree.
    fn check_node(&self, node: u32, store: &PointStore) -> Result<(u32, Vec<f32>), String> {
        if node & LEAF != 0 {
            let leaf = &self.leaves[(node & !LEAF) as usize];
            if leaf.mass == 0 {
                return Err(format!("leaf {node:#x} has no mass"));
            }
            let point = store.get(leaf.point);
            let mut bounds = point.to_vec();
            bounds.extend_from_slice(point);
            return Ok((leaf.mass, bounds));
        }
        let internal = &self.internals[node as usize];
        for child in [internal.left, internal.right] {
            if self.parent(child) != node {
                return Err(format!("child {child:#x} of {node} does not point back"));
            }
        }
        let (left_mass, left_box) = self.check_node(internal.left, store)?;
        let (right_mass, right_box) = self.check_node(internal.right, store)?;
        let d = self.dimensions;
        let dimension = internal.cut_dimension as usize;
        if left_box[d + dimension] > internal.cut_value
            || right_box[dimension] <= internal.cut_value
        {
            return Err(format!(
                "the cut of node {node} does not separate its children"
            ));
        }
        if internal.mass != left_mass + right_mass {
            return Err(format!("node {node} has mass {}", internal.mass));
        }
        let mut bounds = vec![0.0; 2 * d];
        for i in 0..d {
            bounds[i] = left_box[i].min(right_box[i]);
            bounds[d + i] = left_box[d + i].max(right_box[d + i]);
        }
        let (minimums, maximums) = self.box_of(node);
        if minimums != &bounds[..d] || maximums != &bounds[d..] {
            return Err(format!("node {node}'s box is not its subtree's"));
        }
        Ok((internal.mass, bounds))
    }
}

/// Score of a point found at a leaf of the same value at `depth` with `mass` copies.
fn score_seen(depth: usize, mass: u32) -> f64 {
    1.0 / (depth as f64 + f64::from(mass + 1).log2())
}

/// Discount for a point that equals a leaf holding `leaf_mass` of the tree's `tree_mass` points:
/// a value the tree has seen often is less surprising.
fn damp(leaf_mass: u32, tree_mass: u32) -> f64 {
    if tree_mass == 0 {
        1.0
    } else {
        1.0 - f64::from(leaf_mass) / (2.0 * f64::from(tree_mass))
    }
}

/// Score of a point isolated at `depth`.
fn score_unseen(depth: usize) -> f64 {
    1.0 / (depth as f64 + 1.0)
}

/// [`separation_probability`] split into `shares` (high per dimension, then low per dimension);
/// returns their sum, the probability.
fn separation_shares(minimums: &[f32], maximums: &[f32], point: &[f32], shares: &mut [f64]) -> f64 {
    let d = point.len();
    let mut grown = 0.0f64;
    for (i, ((&low, &high), &value)) in minimums.iter().zip(maximums).zip(point).enumerate() {
        let (low, high, value) = (f64::from(low), f64::from(high), f64::from(value));
        grown += high.max(value) - low.min(value);
        shares[i] = (value - high).max(0.0);
        shares[d + i] = (low - value).max(0.0);
    }
    if grown > 0.0 {
        shares.iter_mut().for_each(|share| *share /= grown);
        shares.iter().sum()
    } else {
        shares.fill(0.0);
        0.0
    }
}

/// Probability that a random cut of the box grown by `point` separates `point` from the box.
fn separation_probability(minimums: &[f32], maximums: &[f32], point: &[f32]) -> f64 {
    let mut grown = 0.0f64;
    let mut outside = 0.0f64;
    for ((&low, &high), &value) in minimums.iter().zip(maximums).zip(point) {
        let (low, high, value) = (f64::from(low), f64::from(high), f64::from(value));
        grown += high.max(value) - low.min(value);
        outside += (low - value).max(0.0) + (value - high).max(0.0);
    }
    if grown > 0.0 {
        outside / grown
    } else {
        0.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use rand::{Rng, SeedableRng};
    use rand_chacha::ChaCha8Rng;

    /// The tree's shape with point values instead of arena slots, to compare two trees.
    fn shape(tree: &RandomCutTree, store: &PointStore) -> String {
        fn node(tree: &RandomCutTree, store: &PointStore, at: u32, out: &mut String) {
            if at & LEAF != 0 {
                let leaf = &tree.leaves[(at & !LEAF) as usize];
                out.push_str(&format!("{:?}x{}", store.get(leaf.point), leaf.mass));
            } else {
                let internal = &tree.internals[at as usize];
                out.push_str(&format!(
                    "[{}<={} ",
                    internal.cut_dimension, internal.cut_value
                ));
                node(tree, store, internal.left, out);
                out.push(' ');
                node(tree, store, internal.right, out);
                out.push(']');
            }
        }
        let mut out = String::new();
        if tree.root != NONE {
            node(tree, store, tree.root, &mut out);
        }
        out
    }

    fn points() -> impl Strategy<Value = Vec<Vec<f32>>> {
        // Few distinct values per dimension, so duplicates and shared coordinates are common.
        prop::collection::vec(
            prop::collection::vec((0u8..6).prop_map(f32::from), 3),
            1..80,
        )
    }

    /// Inserts every point, keeping the store's references as a forest would.
    fn build(points: &[Vec<f32>], seed: u64) -> (RandomCutTree, PointStore, Vec<u32>) {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let mut store = PointStore::new(3);
        let mut tree = RandomCutTree::new(3);
        let mut held = Vec::new();
        for point in points {
            let index = store.add(point);
            let kept = tree.insert(index, &store, &mut rng);
            if kept != index {
                store.retain(kept);
                store.release(index);
            }
            held.push(kept);
        }
        (tree, store, held)
    }

    proptest! {
        #[test]
        fn every_point_is_in_exactly_one_leaf_and_boxes_hold_their_subtrees(
            points in points(),
            seed in any::<u64>(),
        ) {
            let (tree, store, held) = build(&points, seed);
            tree.check_invariants(&store).map_err(TestCaseError::fail)?;
            prop_assert_eq!(tree.mass() as usize, points.len());
            let mut leaves: Vec<Vec<f32>> = tree
                .leaf_points()
                .into_iter()
                .flat_map(|(index, mass)| std::iter::repeat_n(store.get(index).to_vec(), mass as usize))
                .collect();
            let mut expected = points.clone();
            leaves.sort_by(|a, b| a.partial_cmp(b).unwrap());
            expected.sort_by(|a, b| a.partial_cmp(b).unwrap());
            prop_assert_eq!(leaves, expected);
            let distinct: std::collections::BTreeSet<u32> = held.into_iter().collect();
            prop_assert_eq!(store.live_points(), distinct.len(), "one stored copy per distinct point");
        }

        #[test]
        fn insert_then_delete_restores_the_tree(
            points in points(),
            extra in prop::collection::vec((0u8..8).prop_map(f32::from), 3),
            seed in any::<u64>(),
        ) {
            let (mut tree, mut store, _) = build(&points, seed);
            let before = shape(&tree, &store);
            let mut rng = ChaCha8Rng::seed_from_u64(seed ^ 1);
            let index = store.add(&extra);
            let kept = tree.insert(index, &store, &mut rng);
            tree.check_invariants(&store).map_err(TestCaseError::fail)?;
            prop_assert!(tree.delete(kept, &store));
            tree.check_invariants(&store).map_err(TestCaseError::fail)?;
            prop_assert_eq!(shape(&tree, &store), before);
        }

        #[test]
        fn deleting_everything_in_any_order_keeps_the_invariants(
            points in points(),
            seed in any::<u64>(),
        ) {
            let (mut tree, store, held) = build(&points, seed);
            let mut order: Vec<usize> = (0..held.len()).collect();
            let mut rng = ChaCha8Rng::seed_from_u64(seed);
            for i in (1..order.len()).rev() {
                order.swap(i, rng.random_range(0..=i));
            }
            for (done, &i) in order.iter().enumerate() {
                prop_assert!(tree.delete(held[i], &store));
                tree.check_invariants(&store).map_err(TestCaseError::fail)?;
                prop_assert_eq!(tree.mass() as usize, held.len() - done - 1);
            }
            prop_assert_eq!(tree.root, NONE);
        }
    }

    #[test]
    fn an_isolated_point_scores_far_above_an_ordinary_one() {
        let mut rng = ChaCha8Rng::seed_from_u64(7);
        let mut store = PointStore::new(2);
        let mut tree = RandomCutTree::new(2);
        for i in 0..256 {
            let x = (i % 16) as f32 / 16.0;
            let y = (i / 16) as f32 / 16.0;
            let index = store.add(&[x, y]);
            tree.insert(index, &store, &mut rng);
        }
        let ordinary = tree.score(&[0.5, 0.5], &store);
        let isolated = tree.score(&[8.0, -8.0], &store);
        assert!(
            (0.3..3.0).contains(&ordinary),
            "an ordinary point scores about 1: {ordinary}"
        );
        assert!(isolated > 3.0 * ordinary, "{isolated} vs {ordinary}");
        assert_eq!(RandomCutTree::new(2).score(&[0.0, 0.0], &store), 0.0);
    }

    #[test]
    fn attributions_sum_to_the_score_and_point_the_right_way() {
        let (tree, store, _) = build(
            &(0..200)
                .map(|i| vec![(i % 10) as f32, (i / 10 % 10) as f32, (i % 7) as f32])
                .collect::<Vec<_>>(),
            3,
        );
        for query in [
            [4.0, 4.0, 3.0],
            [4.0, 40.0, 3.0],
            [4.0, 4.0, -30.0],
            [1.0, 2.0, 3.0],
        ] {
            let mut attribution = vec![0.0; 6];
            tree.add_attribution(&query, &store, &mut attribution);
            let score = tree.score(&query, &store);
            let total: f64 = attribution.iter().sum();
            assert!((total - score).abs() < 1e-9, "{total} vs {score}");
        }
        let mut high_y = vec![0.0; 6];
        tree.add_attribution(&[4.0, 40.0, 3.0], &store, &mut high_y);
        let largest = (0..6)
            .max_by(|&a, &b| high_y[a].total_cmp(&high_y[b]))
            .unwrap();
        assert_eq!(largest, 1, "dimension 1, high: {high_y:?}");
        let mut low_z = vec![0.0; 6];
        tree.add_attribution(&[4.0, 4.0, -30.0], &store, &mut low_z);
        let largest = (0..6)
            .max_by(|&a, &b| low_z[a].total_cmp(&low_z[b]))
            .unwrap();
        assert_eq!(largest, 3 + 2, "dimension 2, low: {low_z:?}");
    }

    #[test]
    fn deleting_a_point_the_tree_does_not_hold_is_refused() {
        let (mut tree, mut store, _) = build(&[vec![1.0, 2.0, 3.0]], 1);
        let other = store.add(&[4.0, 5.0, 6.0]);
        assert!(!tree.delete(other, &store));
        assert_eq!(tree.mass(), 1);
    }
}
