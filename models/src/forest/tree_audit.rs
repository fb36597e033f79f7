//! Invariant checks of the trees (used after restoring a snapshot and by the property tests).

use super::point_store::PointStore;
use super::trees::{Trees, LEAF, NONE};

impl Trees {
    /// Checks `tree`: cuts that separate the children, exact cached boxes and masses, leaf masses
    /// that add up to the tree's, and leaves that hold stored points. Returns the first violation.
    pub(super) fn check_invariants(&self, tree: usize, store: &PointStore) -> Result<(), String> {
        let root = self.root(tree);
        if root == NONE {
            return if self.mass(tree) == 0 {
                Ok(())
            } else {
                Err(format!(
                    "tree {tree} is empty but holds {}",
                    self.mass(tree)
                ))
            };
        }
        let (mass, _) = self.check_node(tree, root, store, 0)?;
        if mass != self.mass(tree) {
            return Err(format!(
                "tree {tree}'s leaves hold {mass} points, its count says {}",
                self.mass(tree)
            ));
        }
        Ok(())
    }

    /// Returns the node's mass and box after checking it and its subtree.
    fn check_node(
        &self,
        tree: usize,
        node: u16,
        store: &PointStore,
        depth: usize,
    ) -> Result<(u32, Vec<f32>), String> {
        if depth > self.sample_size {
            return Err(format!("tree {tree} has a cycle"));
        }
        if node & LEAF != 0 {
            let slot = node & !LEAF;
            if usize::from(slot) >= self.sample_size {
                return Err(format!("tree {tree} has a leaf in slot {slot}"));
            }
            let index = self.slot_point(tree, slot);
            if !store.holds(index) {
                return Err(format!("tree {tree}'s slot {slot} holds no stored point"));
            }
            let point = store.get(index);
            let mut bounds = point.to_vec();
            bounds.extend_from_slice(point);
            return Ok((self.leaf_mass(tree, slot), bounds));
        }
        if usize::from(node) + 1 >= self.sample_size.max(2) {
            return Err(format!("tree {tree} refers to node {node}"));
        }
        let (left, right) = self.children(tree, node);
        let (left_mass, left_box) = self.check_node(tree, left, store, depth + 1)?;
        let (right_mass, right_box) = self.check_node(tree, right, store, depth + 1)?;
        let d = self.dimensions;
        let (dimension, value) = self.cut(tree, node);
        if dimension >= d || left_box[d + dimension] > value || right_box[dimension] <= value {
            return Err(format!(
                "the cut of node {node} of tree {tree} does not separate its children"
            ));
        }
        let mut bounds = vec![0.0; 2 * d];
        for i in 0..d {
            bounds[i] = left_box[i].min(right_box[i]);
            bounds[d + i] = left_box[d + i].max(right_box[d + i]);
        }
        let mass = left_mass + right_mass;
        if self.is_cached(tree, node) {
            let entry = self
                .cache
                .find(tree, node)
                .ok_or_else(|| format!("node {node} of tree {tree} is cached without an entry"))?;
            let (minimums, maximums) = self.cache.bounds(entry);
            if minimums != &bounds[..d] || maximums != &bounds[d..] {
                return Err(format!(
                    "node {node} of tree {tree} caches a box that is not its subtree's"
                ));
            }
            if u32::from(self.cache.mass(entry)) != mass {
                return Err(format!(
                    "node {node} of tree {tree} caches mass {}, not {mass}",
                    self.cache.mass(entry)
                ));
            }
        }
        Ok((mass, bounds))
    }

    /// Every point index `tree` holds, with its copies, sorted (for tests).
    #[cfg(test)]
    pub(super) fn leaf_points(&self, tree: usize) -> Vec<(u32, u32)> {
        let mut points = Vec::new();
        let mut stack = Vec::new();
        if self.root(tree) != NONE {
            stack.push(self.root(tree));
        }
        while let Some(node) = stack.pop() {
            if node & LEAF != 0 {
                let slot = node & !LEAF;
                points.push((self.slot_point(tree, slot), self.leaf_mass(tree, slot)));
            } else {
                let (left, right) = self.children(tree, node);
                stack.push(left);
                stack.push(right);
            }
        }
        points.sort_unstable();
        points
    }
}

#[cfg(test)]
mod tests {
    use super::super::trees::Scratch;
    use super::*;
    use proptest::prelude::*;
    use rand::{Rng, SeedableRng};
    use rand_chacha::ChaCha8Rng;

    /// The tree's shape with point values instead of slots, to compare two trees.
    fn shape(trees: &Trees, store: &PointStore) -> String {
        fn node(trees: &Trees, store: &PointStore, at: u16, out: &mut String) {
            if at & LEAF != 0 {
                let slot = at & !LEAF;
                let point = store.get(trees.slot_point(0, slot));
                out.push_str(&format!("{point:?}x{}", trees.leaf_mass(0, slot)));
            } else {
                let (dimension, value) = trees.cut(0, at);
                let (left, right) = trees.children(0, at);
                out.push_str(&format!("[{dimension}<={value} "));
                node(trees, store, left, out);
                out.push(' ');
                node(trees, store, right, out);
                out.push(']');
            }
        }
        let mut out = String::new();
        if trees.root(0) != NONE {
            node(trees, store, trees.root(0), &mut out);
        }
        out
    }

    fn points() -> impl Strategy<Value = Vec<Vec<f32>>> {
        // Few distinct values per dimension, so duplicates and shared coordinates are common.
        prop::collection::vec(
            prop::collection::vec((0u8..6).prop_map(f32::from), 3),
            1..120,
        )
    }

    /// One tree holding every point (capacity 128, so its box cache is exercised), with the
    /// store's references kept as a forest keeps them. Returns the slots in insertion order.
    fn build(points: &[Vec<f32>], seed: u64) -> (Trees, PointStore, Vec<u16>, Scratch) {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let mut store = PointStore::new(3);
        let mut trees = Trees::new(1, 128, 3, 1024);
        let mut scratch = Scratch::default();
        let mut slots = Vec::new();
        for point in points {
            let index = store.add(point);
            let (slot, kept) = trees.insert(0, index, &store, &mut rng, &mut scratch);
            if kept != index {
                store.retain(kept);
                store.release(index);
            }
            slots.push(slot);
        }
        (trees, store, slots, scratch)
    }

    proptest! {
        #[test]
        fn every_point_is_in_exactly_one_leaf_and_boxes_hold_their_subtrees(
            points in points(),
            seed in any::<u64>(),
        ) {
            let (trees, store, _, _) = build(&points, seed);
            trees.check_invariants(0, &store).map_err(TestCaseError::fail)?;
            prop_assert_eq!(trees.mass(0) as usize, points.len());
            let mut leaves: Vec<Vec<f32>> = trees
                .leaf_points(0)
                .into_iter()
                .flat_map(|(index, mass)| std::iter::repeat_n(store.get(index).to_vec(), mass as usize))
                .collect();
            let mut expected = points.clone();
            leaves.sort_by(|a, b| a.partial_cmp(b).unwrap());
            expected.sort_by(|a, b| a.partial_cmp(b).unwrap());
            prop_assert_eq!(leaves, expected);
            let distinct = trees.leaf_points(0).len();
            prop_assert_eq!(store.live_points(), distinct, "one stored copy per distinct point");
        }

        #[test]
        fn insert_then_delete_restores_the_tree(
            points in points(),
            extra in prop::collection::vec((0u8..8).prop_map(f32::from), 3),
            seed in any::<u64>(),
        ) {
            let (mut trees, mut store, _, mut scratch) = build(&points, seed);
            let before = shape(&trees, &store);
            let mut rng = ChaCha8Rng::seed_from_u64(seed ^ 1);
            let index = store.add(&extra);
            let (slot, _) = trees.insert(0, index, &store, &mut rng, &mut scratch);
            trees.check_invariants(0, &store).map_err(TestCaseError::fail)?;
            trees.delete(0, slot, &store, &mut scratch);
            trees.check_invariants(0, &store).map_err(TestCaseError::fail)?;
            prop_assert_eq!(shape(&trees, &store), before);
        }

        #[test]
        fn deleting_everything_in_any_order_keeps_the_invariants(
            points in points(),
            seed in any::<u64>(),
        ) {
            let (mut trees, store, slots, mut scratch) = build(&points, seed);
            let mut order: Vec<usize> = (0..slots.len()).collect();
            let mut rng = ChaCha8Rng::seed_from_u64(seed);
            for i in (1..order.len()).rev() {
                order.swap(i, rng.random_range(0..=i));
            }
            for (done, &i) in order.iter().enumerate() {
                trees.delete(0, slots[i], &store, &mut scratch);
                trees.check_invariants(0, &store).map_err(TestCaseError::fail)?;
                prop_assert_eq!(trees.mass(0) as usize, slots.len() - done - 1);
            }
            prop_assert_eq!(trees.root(0), NONE);
        }

        #[test]
        fn cached_and_recomputed_boxes_give_the_same_score(
            points in points(),
            query in prop::collection::vec((0u8..9).prop_map(f32::from), 3),
            seed in any::<u64>(),
        ) {
            let (trees, store, _, mut scratch) = build(&points, seed);
            let mut uncached = trees.clone();
            uncached.cache = super::super::box_cache::BoxCache::new(1, 128, 3);
            for node in 0..127u16 {
                if uncached.is_cached(0, node) {
                    uncached.set_cached(0, node, false);
                }
            }
            let cached = trees.score(0, &query, &store, &mut scratch);
            let recomputed = uncached.score(0, &query, &store, &mut scratch);
            prop_assert!((cached - recomputed).abs() <= 1e-9 * cached.abs().max(1.0), "{} vs {}", cached, recomputed);
        }
    }

    #[test]
    fn an_isolated_point_scores_far_above_an_ordinary_one() {
        let mut rng = ChaCha8Rng::seed_from_u64(7);
        let mut store = PointStore::new(2);
        let mut trees = Trees::new(1, 256, 2, 1024);
        let mut scratch = Scratch::default();
        for i in 0..256 {
            let x = (i % 16) as f32 / 16.0;
            let y = (i / 16) as f32 / 16.0;
            let index = store.add(&[x, y]);
            trees.insert(0, index, &store, &mut rng, &mut scratch);
        }
        trees.check_invariants(0, &store).unwrap();
        assert!(trees.cache.count(0) > 0, "heavy nodes are cached");
        let ordinary = trees.score(0, &[0.5, 0.5], &store, &mut scratch);
        let isolated = trees.score(0, &[8.0, -8.0], &store, &mut scratch);
        assert!(
            (0.3..3.0).contains(&ordinary),
            "an ordinary point scores about 1: {ordinary}"
        );
        assert!(isolated > 3.0 * ordinary, "{isolated} vs {ordinary}");
        let empty = Trees::new(1, 16, 2, 64);
        assert_eq!(empty.score(0, &[0.0, 0.0], &store, &mut scratch), 0.0);
    }

    #[test]
    fn attributions_sum_to_the_score_and_point_the_right_way() {
        let (trees, store, _, mut scratch) = build(
            &(0..120)
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
            trees.add_attribution(0, &query, &store, &mut scratch, &mut attribution);
            let score = trees.score(0, &query, &store, &mut scratch);
            let total: f64 = attribution.iter().sum();
            assert!((total - score).abs() < 1e-9, "{total} vs {score}");
        }
        let mut high_y = vec![0.0; 6];
        trees.add_attribution(0, &[4.0, 40.0, 3.0], &store, &mut scratch, &mut high_y);
        let largest = (0..6)
            .max_by(|&a, &b| high_y[a].total_cmp(&high_y[b]))
            .unwrap();
        assert_eq!(largest, 1, "dimension 1, high: {high_y:?}");
        let mut low_z = vec![0.0; 6];
        trees.add_attribution(0, &[4.0, 4.0, -30.0], &store, &mut scratch, &mut low_z);
        let largest = (0..6)
            .max_by(|&a, &b| low_z[a].total_cmp(&low_z[b]))
            .unwrap();
        assert_eq!(largest, 3 + 2, "dimension 2, low: {low_z:?}");
    }
}
