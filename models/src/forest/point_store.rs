//! Every point the trees of one forest sample, stored once: trees hold `u32` indices into this
//! store, so a point kept by all 100 trees costs its values once plus a reference count.

use serde::{Deserialize, Serialize};

/// Shared, reference-counted storage of fixed-width points.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct PointStore {
    dimensions: usize,
    values: Vec<f32>,
    references: Vec<u32>,
    free: Vec<u32>,
}

impl PointStore {
    /// An empty store for points of `dimensions` values.
    pub fn new(dimensions: usize) -> Self {
        Self {
            dimensions,
            ..Self::default()
        }
    }

    /// Values per point.
    pub fn dimensions(&self) -> usize {
        self.dimensions
    }

    /// Stores `point` with one reference and returns its index (reusing a freed slot).
    ///
    /// # Panics
    /// When `point` does not have [`Self::dimensions`] values (a caller bug, not input data).
    pub fn add(&mut self, point: &[f32]) -> u32 {
        assert_eq!(point.len(), self.dimensions, "point width");
        if let Some(index) = self.free.pop() {
            let start = index as usize * self.dimensions;
            self.values[start..start + self.dimensions].copy_from_slice(point);
            self.references[index as usize] = 1;
            index
        } else {
            self.values.extend_from_slice(point);
            self.references.push(1);
            u32::try_from(self.references.len() - 1).unwrap_or(u32::MAX)
        }
    }

    /// The values of point `index`.
    pub fn get(&self, index: u32) -> &[f32] {
        let start = index as usize * self.dimensions;
        &self.values[start..start + self.dimensions]
    }

    /// Whether `index` is a slot holding a referenced point.
    pub fn holds(&self, index: u32) -> bool {
        self.references
            .get(index as usize)
            .is_some_and(|&references| references > 0)
    }

    /// Adds a reference to point `index` (another tree samples it).
    pub fn retain(&mut self, index: u32) {
        self.references[index as usize] += 1;
    }

    /// Drops a reference to point `index`; the slot is reused once no tree holds it.
    pub fn release(&mut self, index: u32) {
        let references = &mut self.references[index as usize];
        *references = references.saturating_sub(1);
        if *references == 0 {
            self.free.push(index);
        }
    }

    /// Points currently referenced by some tree.
    pub fn live_points(&self) -> usize {
        self.references.len() - self.free.len()
    }

    /// Heap bytes held (values, reference counts, free list).
    pub fn heap_bytes(&self) -> usize {
        self.values.capacity() * 4 + self.references.capacity() * 4 + self.free.capacity() * 4
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn freed_slots_are_reused_once_unreferenced() {
        let mut store = PointStore::new(2);
        let a = store.add(&[1.0, 2.0]);
        let b = store.add(&[3.0, 4.0]);
        store.retain(a);
        store.release(a);
        assert_eq!(store.live_points(), 2, "a is still held once");
        store.release(a);
        assert_eq!(store.live_points(), 1);
        let c = store.add(&[5.0, 6.0]);
        assert_eq!(c, a, "the freed slot is reused");
        assert_eq!(store.get(c), &[5.0, 6.0]);
        assert_eq!(store.get(b), &[3.0, 4.0]);
    }
}
