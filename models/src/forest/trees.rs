//! The random cut trees (Guha et al., ICML 2016) of one forest, stored flat and compact.
//!
//! **Layout.** All trees share fixed-capacity arrays, so a forest is a handful of allocations
//! however many trees it has. A tree of sample size `s` owns `s - 1` internal nodes (a cut value
//! `f32`, and left, right and cut dimension as `u16`, packed in 10 bytes) and `s` sample slots. A child
//! reference with the top bit set is a leaf: the sample slot it holds. A slot records the index of
//! its point in the forest's shared [`PointStore`] (`u16` when the store fits, else `u32`).
//! Equal points share one leaf; its mass (copies held) lives in a sparse map, since most leaves
//! hold one copy. Boxes are cached only for heavy nodes ([`BoxCache`]); the top bit of a node's
//! cut-dimension field says whether it is cached. Free nodes and slots form intrusive lists.
//!
//! **Insertion** follows the paper: at each node on the path, draw a cut on the box grown by the
//! new point, choosing a dimension with probability proportional to its range; when the cut falls
//! between the point and the box, the point becomes a new leaf beside that node. Deleting a leaf
//! splices its sibling into the grandparent, so insert-then-delete restores the tree.

use std::collections::BTreeMap;

use rand::Rng;
use serde::{Deserialize, Serialize};

use super::box_cache::BoxCache;
use super::point_store::PointStore;
use super::tree_score::{grown_range, lanes8, larger, smaller};

/// No node (an empty tree's root, the end of a free list).
pub(super) const NONE: u16 = u16::MAX;
/// The top bit of a child reference marks a leaf (a sample slot).
pub(super) const LEAF: u16 = 1 << 15;
/// The top bit of a node's cut-dimension field marks a cached box.
const CACHED: u16 = 1 << 15;
/// Largest sample size: node and slot ids must stay below [`LEAF`] and [`NONE`].
pub const MAX_SAMPLE_SIZE: usize = (1 << 15) - 1;

/// Point-store indices of sample slots, as narrow as the store allows.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
enum PointRefs {
    Narrow(Vec<u16>),
    Wide(Vec<u32>),
}

impl PointRefs {
    fn get(&self, slot: usize) -> u32 {
        match self {
            Self::Narrow(refs) => u32::from(refs[slot]),
            Self::Wide(refs) => refs[slot],
        }
    }

    fn set(&mut self, slot: usize, point: u32) {
        match self {
            Self::Narrow(refs) => refs[slot] = u16::try_from(point).unwrap_or(u16::MAX),
            Self::Wide(refs) => refs[slot] = point,
        }
    }

    fn heap_bytes(&self) -> usize {
        match self {
            Self::Narrow(refs) => refs.capacity() * 2,
            Self::Wide(refs) => refs.capacity() * 4,
        }
    }
}

/// One internal node: its cut and children, packed into 10 bytes so a visit touches one place.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[repr(C, packed(2))]
struct Node {
    cut: f32,
    left: u16,
    right: u16,
    /// The cut dimension, with [`CACHED`] set when the node's box is in the cache.
    dimension: u16,
}

impl Node {
    /// An unused node.
    const FREE: Self = Self {
        cut: 0.0,
        left: NONE,
        right: NONE,
        dimension: 0,
    };
}

/// Per-tree bookkeeping.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
struct TreeHeader {
    root: u16,
    /// Occupied sample slots (points held, counting copies).
    mass: u16,
    free_node: u16,
    free_slot: u16,
    /// Nodes and slots ever handed out (the rest of the capacity is untouched).
    used_nodes: u16,
    used_slots: u16,
}

/// Reusable buffers for walks, so scoring and updating allocate nothing once warm.
#[derive(Debug, Clone, Default)]
pub(super) struct Scratch {
    pub(super) path: Vec<u16>,
    pub(super) stack: Vec<u16>,
    pub(super) bounds: Vec<f32>,
    pub(super) other: Vec<f32>,
    pub(super) shares: Vec<f64>,
    pub(super) local: Vec<f64>,
    pub(super) tail_boxes: Vec<f32>,
    pub(super) tail_masses: Vec<u32>,
}

/// The trees of one forest.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(super) struct Trees {
    pub(super) dimensions: usize,
    pub(super) sample_size: usize,
    headers: Vec<TreeHeader>,
    /// Internal nodes, 10 bytes each; a free node's `left` links the free list.
    links: Vec<Node>,
    /// Point-store index per slot; a free slot's entry links the free list.
    slot_points: PointRefs,
    /// Copies held by leaves that hold more than one, by `tree << 16 | slot`.
    duplicates: BTreeMap<u32, u16>,
    pub(super) cache: BoxCache,
}

impl Trees {
    /// `count` empty trees of `sample_size` points of `dimensions` values, whose points live in a
    /// store of at most `store_capacity` slots.
    pub(super) fn new(
        count: usize,
        sample_size: usize,
        dimensions: usize,
        store_capacity: usize,
    ) -> Self {
        let nodes = sample_size.saturating_sub(1).max(1);
        let header = TreeHeader {
            root: NONE,
            mass: 0,
            free_node: NONE,
            free_slot: NONE,
            used_nodes: 0,
            used_slots: 0,
        };
        Self {
            dimensions,
            sample_size,
            headers: vec![header; count],
            links: vec![Node::FREE; count * nodes],
            slot_points: if store_capacity < usize::from(u16::MAX) {
                PointRefs::Narrow(vec![0; count * sample_size])
            } else {
                PointRefs::Wide(vec![0; count * sample_size])
            },
            duplicates: BTreeMap::new(),
            cache: BoxCache::new(count, sample_size, dimensions),
        }
    }

    /// Number of trees.
    pub(super) fn count(&self) -> usize {
        self.headers.len()
    }

    fn node_base(&self, tree: usize) -> usize {
        tree * self.sample_size.saturating_sub(1).max(1)
    }

    pub(super) fn root(&self, tree: usize) -> u16 {
        self.headers[tree].root
    }

    /// Points held by `tree`, counting copies.
    pub(super) fn mass(&self, tree: usize) -> u32 {
        u32::from(self.headers[tree].mass)
    }

    /// The point-store index held in `slot` of `tree`.
    pub(super) fn slot_point(&self, tree: usize, slot: u16) -> u32 {
        self.slot_points
            .get(tree * self.sample_size + usize::from(slot))
    }

    /// The links of internal `node`: left child, right child, cut dimension (flag cleared).
    pub(super) fn children(&self, tree: usize, node: u16) -> (u16, u16) {
        let links = self.links[self.node_base(tree) + usize::from(node)];
        (links.left, links.right)
    }

    /// The cut of internal `node`: (dimension, value).
    pub(super) fn cut(&self, tree: usize, node: u16) -> (usize, f32) {
        let index = self.node_base(tree) + usize::from(node);
        let links = self.links[index];
        (usize::from(links.dimension & !CACHED), links.cut)
    }

    /// Whether internal `node`'s box is cached.
    pub(super) fn is_cached(&self, tree: usize, node: u16) -> bool {
        self.links[self.node_base(tree) + usize::from(node)].dimension & CACHED != 0
    }

    pub(super) fn set_cached(&mut self, tree: usize, node: u16, cached: bool) {
        let index = self.node_base(tree) + usize::from(node);
        if cached {
            self.links[index].dimension |= CACHED;
        } else {
            self.links[index].dimension &= !CACHED;
        }
    }

    /// The child of internal `node` on `point`'s side of its cut.
    pub(super) fn child_toward(&self, tree: usize, node: u16, point: &[f32]) -> u16 {
        let (dimension, value) = self.cut(tree, node);
        let (left, right) = self.children(tree, node);
        if point[dimension] <= value {
            left
        } else {
            right
        }
    }

    /// Copies held by the leaf in `slot`.
    pub(super) fn leaf_mass(&self, tree: usize, slot: u16) -> u32 {
        if self.duplicates.is_empty() {
            return 1;
        }
        let key = (tree as u32) << 16 | u32::from(slot);
        u32::from(self.duplicates.get(&key).copied().unwrap_or(1))
    }

    fn set_leaf_mass(&mut self, tree: usize, slot: u16, mass: u32) {
        let key = (tree as u32) << 16 | u32::from(slot);
        if mass > 1 {
            self.duplicates
                .insert(key, u16::try_from(mass).unwrap_or(u16::MAX));
        } else {
            self.duplicates.remove(&key);
        }
    }

    /// Grows `bounds` by the box of `node`: a leaf's point, a cached entry, or the union over the
    /// subtree (stopping at cached nodes); returns `node`'s mass when
    /// `MASS` is set (finding a leaf's copies costs a lookup), else 0.
    pub(super) fn union_box<const MASS: bool>(
        &self,
        tree: usize,
        node: u16,
        store: &PointStore,
        stack: &mut Vec<u16>,
        bounds: &mut [f32],
    ) -> u32 {
        let d = self.dimensions;
        let nodes = self.node_base(tree);
        let slots = tree * self.sample_size;
        let (low, high) = bounds.split_at_mut(d);
        let mut mass = 0;
        stack.clear();
        let mut next = node;
        loop {
            if next & LEAF != 0 {
                let slot = next & !LEAF;
                let point = store.get(self.slot_points.get(slots + usize::from(slot)));
                widen(low, high, point, point);
                if MASS {
                    mass += self.leaf_mass(tree, slot);
                }
            } else {
                let links = self.links[nodes + usize::from(next)];
                let entry = if links.dimension & CACHED != 0 {
                    self.cache.find(tree, next)
                } else {
                    None
                };
                if let Some(entry) = entry {
                    let (minimums, maximums) = self.cache.bounds(entry);
                    widen(low, high, minimums, maximums);
                    if MASS {
                        mass += u32::from(self.cache.mass(entry));
                    }
                } else {
                    stack.push(links.right);
                    next = links.left;
                    continue;
                }
            }
            match stack.pop() {
                Some(node) => next = node,
                None => break,
            }
        }
        mass
    }

    fn alloc_slot(&mut self, tree: usize, point: u32) -> u16 {
        let header = &mut self.headers[tree];
        let slot = if header.free_slot != NONE {
            let slot = header.free_slot;
            let next = self
                .slot_points
                .get(tree * self.sample_size + usize::from(slot));
            header.free_slot = u16::try_from(next).unwrap_or(NONE);
            slot
        } else {
            header.used_slots += 1;
            header.used_slots - 1
        };
        header.mass += 1;
        self.slot_points
            .set(tree * self.sample_size + usize::from(slot), point);
        slot
    }

    fn free_slot(&mut self, tree: usize, slot: u16) {
        let header = &mut self.headers[tree];
        let next = header.free_slot;
        header.free_slot = slot;
        header.mass -= 1;
        self.slot_points
            .set(tree * self.sample_size + usize::from(slot), u32::from(next));
    }

    fn alloc_node(&mut self, tree: usize, cut: (usize, f32), left: u16, right: u16) -> u16 {
        let base = self.node_base(tree);
        let header = &mut self.headers[tree];
        let node = if header.free_node != NONE {
            let node = header.free_node;
            header.free_node = self.links[base + usize::from(node)].left;
            node
        } else {
            header.used_nodes += 1;
            header.used_nodes - 1
        };
        let dimension = u16::try_from(cut.0).unwrap_or(0);
        self.links[base + usize::from(node)] = Node {
            cut: cut.1,
            left,
            right,
            dimension,
        };
        node
    }

    fn free_node(&mut self, tree: usize, node: u16) {
        if self.is_cached(tree, node) {
            self.cache.remove(tree, node);
        }
        let base = self.node_base(tree);
        let header = &mut self.headers[tree];
        self.links[base + usize::from(node)] = Node {
            left: header.free_node,
            ..Node::FREE
        };
        header.free_node = node;
    }

    /// Points `parent`'s link to `old` at `new` (or the root, when `parent` is NONE).
    fn replace_child(&mut self, tree: usize, parent: u16, old: u16, new: u16) {
        if parent == NONE {
            self.headers[tree].root = new;
        } else {
            let index = self.node_base(tree) + usize::from(parent);
            if self.links[index].left == old {
                self.links[index].left = new;
            } else {
                self.links[index].right = new;
            }
        }
    }

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

    /// Heap bytes held by all trees (not the shared points).
    pub(super) fn heap_bytes(&self) -> usize {
        self.headers.capacity() * std::mem::size_of::<TreeHeader>()
            + self.links.capacity() * std::mem::size_of::<Node>()
            + self.slot_points.heap_bytes()
            + self.duplicates.len() * 16
            + self.cache.heap_bytes()
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

/// The point held in `slot` of `tree`.
fn point_of<'a>(store: &'a PointStore, trees: &Trees, tree: usize, slot: u16) -> &'a [f32] {
    store.get(trees.slot_point(tree, slot))
}

/// Grows `bounds` (minimums then maximums) by `point`.
fn grow(bounds: &mut [f32], point: &[f32]) {
    let (minimums, maximums) = bounds.split_at_mut(point.len());
    widen(minimums, maximums, point, point);
}

/// Widens the box (`low`, `high`) to contain the box (`minimums`, `maximums`), eight dimensions
/// at a time in SIMD lanes (values are finite, so the fast `min`/`max` are exact).
#[inline]
pub(super) fn widen(low: &mut [f32], high: &mut [f32], minimums: &[f32], maximums: &[f32]) {
    const LANES: usize = 8;
    let lanes = low.len() / LANES * LANES;
    for (l, m) in low[..lanes]
        .chunks_exact_mut(LANES)
        .zip(minimums[..lanes].chunks_exact(LANES))
    {
        l.copy_from_slice(&lanes8(l).fast_min(lanes8(m)).to_array());
    }
    for (h, m) in high[..lanes]
        .chunks_exact_mut(LANES)
        .zip(maximums[..lanes].chunks_exact(LANES))
    {
        h.copy_from_slice(&lanes8(h).fast_max(lanes8(m)).to_array());
    }
    for (l, &m) in low[lanes..].iter_mut().zip(&minimums[lanes..]) {
        *l = smaller(*l, m);
    }
    for (h, &m) in high[lanes..].iter_mut().zip(&maximums[lanes..]) {
        *h = larger(*h, m);
    }
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
