//! The per-tree anomaly score and its attribution to dimensions (formula in [`super`]).
//!
//! The score's recursion runs from the leaf up: `s ← (1 - p) · s + p / (depth + 1)`. Unrolled,
//! each node on the path contributes `p / (depth + 1)` weighted by the chance `∏(1 - p)` that no
//! node above it separated the point. So the walk goes down through cached boxes, adding those
//! contributions, and finishes the uncached bottom of the path from the leaf up, where each box is
//! the box below it grown by the sibling's subtree. Both orders give the same sum.

use wide::f32x8;

use super::point_store::PointStore;
use super::trees::{Scratch, Trees, LEAF, NONE};

impl Trees {
    /// `tree`'s anomaly score of `point`; 0 for an empty tree.
    pub(super) fn score(
        &self,
        tree: usize,
        point: &[f32],
        store: &PointStore,
        scratch: &mut Scratch,
    ) -> f64 {
        let mut node = self.root(tree);
        if node == NONE {
            return 0.0;
        }
        let (mut total, mut reach, mut depth) = (0.0f64, 1.0f64, 0usize);
        while let Some(entry) = self.cached_entry(tree, node) {
            let (minimums, maximums) = self.cache.bounds(entry);
            let probability = separation_probability(minimums, maximums, point);
            total += reach * probability * score_unseen(depth);
            reach *= 1.0 - probability;
            node = self.child_toward(tree, node, point);
            depth += 1;
        }
        total += reach * self.tail_score(tree, node, depth, point, store, scratch);
        total * normalizer(self.mass(tree))
    }

    /// The cache entry of `node` when it is an internal node with a cached box.
    fn cached_entry(&self, tree: usize, node: u16) -> Option<usize> {
        if node & LEAF == 0 && self.is_cached(tree, node) {
            self.cache.find(tree, node)
        } else {
            None
        }
    }

    /// Collects into `scratch.path` the internal nodes from `node` down to the leaf `point`
    /// reaches, and returns that leaf's slot.
    fn path_from(&self, tree: usize, mut node: u16, point: &[f32], scratch: &mut Scratch) -> u16 {
        scratch.path.clear();
        while node & LEAF == 0 {
            scratch.path.push(node);
            node = self.child_toward(tree, node, point);
        }
        node & !LEAF
    }

    /// The unnormalised score of the subtree path from `node` (at `depth`) down, leaf first.
    fn tail_score(
        &self,
        tree: usize,
        node: u16,
        depth: usize,
        point: &[f32],
        store: &PointStore,
        scratch: &mut Scratch,
    ) -> f64 {
        let leaf = self.path_from(tree, node, point, scratch);
        let leaf_point = store.get(self.slot_point(tree, leaf));
        let leaf_depth = depth + scratch.path.len();
        let mut score = if leaf_point == point {
            let mass = self.leaf_mass(tree, leaf);
            damp(mass, self.mass(tree)) * score_seen(leaf_depth, mass)
        } else {
            score_unseen(leaf_depth)
        };
        self.tail_boxes_upward(tree, leaf, store, scratch, |i, minimums, maximums| {
            let probability = separation_probability(minimums, maximums, point);
            score = (1.0 - probability) * score + probability * score_unseen(depth + i);
        });
        score
    }

    /// Walks `scratch.path` (filled by [`Self::path_from`] down to `leaf`) upwards, calling
    /// `visit(index in path, minimums, maximums)` with each node's box, built from the leaf up
    /// by growing it with each sibling's subtree.
    fn tail_boxes_upward(
        &self,
        tree: usize,
        leaf: u16,
        store: &PointStore,
        scratch: &mut Scratch,
        mut visit: impl FnMut(usize, &[f32], &[f32]),
    ) {
        let d = self.dimensions;
        let leaf_point = store.get(self.slot_point(tree, leaf));
        scratch.bounds.clear();
        scratch.bounds.extend_from_slice(leaf_point);
        scratch.bounds.extend_from_slice(leaf_point);
        let mut below = leaf | LEAF;
        for i in (0..scratch.path.len()).rev() {
            let at = scratch.path[i];
            let (left, right) = self.children(tree, at);
            let sibling = if left == below { right } else { left };
            self.union_box::<false>(
                tree,
                sibling,
                store,
                &mut scratch.stack,
                &mut scratch.bounds,
            );
            let (minimums, maximums) = scratch.bounds.split_at(d);
            visit(i, minimums, maximums);
            below = at;
        }
    }

    /// Splits [`Self::score`] over dimensions and directions: adds to `attribution` (length
    /// `2 × dimensions`: how much each dimension being high, then low, contributes), with the
    /// same walk as the score, so the entries sum to the score. At each node the separation
    /// probability is split by how far the point lies above or below the box in each dimension.
    pub(super) fn add_attribution(
        &self,
        tree: usize,
        point: &[f32],
        store: &PointStore,
        scratch: &mut Scratch,
        attribution: &mut [f64],
    ) {
        let d = self.dimensions;
        let mut node = self.root(tree);
        if node == NONE {
            return;
        }
        let mut shares = std::mem::take(&mut scratch.shares);
        let mut local = std::mem::take(&mut scratch.local);
        shares.resize(2 * d, 0.0);
        local.clear();
        local.resize(2 * d, 0.0);
        let normalizer = normalizer(self.mass(tree));
        let (mut reach, mut depth) = (1.0f64, 0usize);
        while let Some(entry) = self.cached_entry(tree, node) {
            let (minimums, maximums) = self.cache.bounds(entry);
            let probability = separation_shares(minimums, maximums, point, &mut shares);
            let weight = reach * score_unseen(depth) * normalizer;
            for (total, share) in attribution.iter_mut().zip(&shares) {
                *total += weight * share;
            }
            reach *= 1.0 - probability;
            node = self.child_toward(tree, node, point);
            depth += 1;
        }
        let leaf = self.path_from(tree, node, point, scratch);
        let leaf_point = store.get(self.slot_point(tree, leaf));
        let leaf_depth = depth + scratch.path.len();
        if leaf_point == point {
            let mass = self.leaf_mass(tree, leaf);
            let share = damp(mass, self.mass(tree)) * score_seen(leaf_depth, mass) / (2 * d) as f64;
            local.fill(share);
        } else {
            separation_shares(leaf_point, leaf_point, point, &mut local);
            let unseen = score_unseen(leaf_depth);
            local.iter_mut().for_each(|value| *value *= unseen);
        }
        self.tail_boxes_upward(tree, leaf, store, scratch, |i, minimums, maximums| {
            let probability = separation_shares(minimums, maximums, point, &mut shares);
            let unseen = score_unseen(depth + i);
            for (value, share) in local.iter_mut().zip(&shares) {
                *value = (1.0 - probability) * *value + share * unseen;
            }
        });
        for (total, value) in attribution.iter_mut().zip(&local) {
            *total += reach * value * normalizer;
        }
        scratch.shares = shares;
        scratch.local = local;
    }
}

/// The factor that makes an ordinary point score about 1: `log2(tree mass + 1)`.
fn normalizer(tree_mass: u32) -> f64 {
    f64::from(tree_mass + 1).log2()
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
#[inline]
fn separation_probability(minimums: &[f32], maximums: &[f32], point: &[f32]) -> f64 {
    let (grown, outside) = grown_and_outside(minimums, maximums, point);
    if grown > 0.0 {
        (f64::from(outside) / f64::from(grown)).min(1.0)
    } else {
        0.0
    }
}

/// The sum over dimensions of the box's ranges once grown by `point`.
#[inline]
pub(super) fn grown_range(minimums: &[f32], maximums: &[f32], point: &[f32]) -> f64 {
    f64::from(grown_and_outside(minimums, maximums, point).0)
}

/// The grown box's summed ranges, and how far `point` lies outside the box, summed over
/// dimensions. The hot loop of scoring and inserting: eight dimensions at a time in SIMD lanes
/// (`wide`; values are finite, so the fast `min`/`max` that ignore NaN rules are exact).
#[inline]
fn grown_and_outside(minimums: &[f32], maximums: &[f32], point: &[f32]) -> (f32, f32) {
    const LANES: usize = 8;
    let lanes = point.len() / LANES * LANES;
    let mut grown_lanes = f32x8::ZERO;
    let mut outside_lanes = f32x8::ZERO;
    for ((low, high), value) in minimums[..lanes]
        .chunks_exact(LANES)
        .zip(maximums[..lanes].chunks_exact(LANES))
        .zip(point[..lanes].chunks_exact(LANES))
    {
        let (low, high, value) = (lanes8(low), lanes8(high), lanes8(value));
        let top = high.fast_max(value);
        let bottom = low.fast_min(value);
        grown_lanes += top - bottom;
        outside_lanes += (top - high) + (low - bottom);
    }
    let mut grown = grown_lanes.reduce_add();
    let mut outside = outside_lanes.reduce_add();
    for ((&l, &h), &v) in minimums[lanes..]
        .iter()
        .zip(&maximums[lanes..])
        .zip(&point[lanes..])
    {
        grown += larger(h, v) - smaller(l, v);
        outside += larger(l - v, 0.0) + larger(v - h, 0.0);
    }
    (grown, outside)
}

/// Eight values as SIMD lanes (`chunk` has exactly eight).
#[inline]
pub(super) fn lanes8(chunk: &[f32]) -> f32x8 {
    let mut values = [0.0f32; 8];
    values.copy_from_slice(chunk);
    f32x8::from(values)
}

/// The larger of two finite values (one compare, unlike NaN-aware `f32::max`).
#[inline]
pub(super) fn larger(a: f32, b: f32) -> f32 {
    if a > b {
        a
    } else {
        b
    }
}

/// The smaller of two finite values.
#[inline]
pub(super) fn smaller(a: f32, b: f32) -> f32 {
    if a < b {
        a
    } else {
        b
    }
}
