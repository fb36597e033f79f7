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
//! Insertion and deletion live in `tree_insert` and `tree_delete`, scoring in `tree_score`.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::box_cache::BoxCache;
use super::point_store::PointStore;
use super::tree_score::{lanes8, larger, smaller};

/// No node (an empty tree's root, the end of a free list).
pub(super) const NONE: u16 = u16::MAX;
/// The top bit of a child reference marks a leaf (a sample slot).
pub(super) const LEAF: u16 = 1 << 15;
/// The top bit of a node's cut-dimension field marks a cached box.
const CACHED: u16 = 1 << 15;
/// Largest sample size: node and slot ids must stay below `LEAF` and `NONE`.
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
pub(super) struct TreeHeader {
    pub(super) root: u16,
    /// Occupied sample slots (points held, counting copies).
    mass: u16,
    free_node: u16,
    free_slot: u16,
    /// Nodes and slots ever handed out (the rest of the capacity is untouched).
    used_nodes: u16,
    pub(super) used_slots: u16,
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
    pub(super) headers: Vec<TreeHeader>,
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

    pub(super) fn set_leaf_mass(&mut self, tree: usize, slot: u16, mass: u32) {
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

    pub(super) fn alloc_slot(&mut self, tree: usize, point: u32) -> u16 {
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

    pub(super) fn free_slot(&mut self, tree: usize, slot: u16) {
        let header = &mut self.headers[tree];
        let next = header.free_slot;
        header.free_slot = slot;
        header.mass -= 1;
        self.slot_points
            .set(tree * self.sample_size + usize::from(slot), u32::from(next));
    }

    pub(super) fn alloc_node(
        &mut self,
        tree: usize,
        cut: (usize, f32),
        left: u16,
        right: u16,
    ) -> u16 {
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

    pub(super) fn free_node(&mut self, tree: usize, node: u16) {
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
    pub(super) fn replace_child(&mut self, tree: usize, parent: u16, old: u16, new: u16) {
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

    /// Heap bytes held by all trees (not the shared points).
    pub(super) fn heap_bytes(&self) -> usize {
        self.headers.capacity() * std::mem::size_of::<TreeHeader>()
            + self.links.capacity() * std::mem::size_of::<Node>()
            + self.slot_points.heap_bytes()
            + self.duplicates.len() * 16
            + self.cache.heap_bytes()
    }
}

/// The point held in `slot` of `tree`.
pub(super) fn point_of<'a>(
    store: &'a PointStore,
    trees: &Trees,
    tree: usize,
    slot: u16,
) -> &'a [f32] {
    store.get(trees.slot_point(tree, slot))
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
