//! A DDSketch-style quantile sketch (Masson, Rim & Lee, VLDB 2019): values fall into
//! logarithmic buckets `γ^(i-1) < |x| ≤ γ^i` with `γ = (1 + α) / (1 − α)`, so any quantile is
//! returned within relative error `α` of a true sample value of that rank. Sketches merge by
//! adding bucket counts, so window panes and partitions combine exactly.
//!
//! Memory is bounded: beyond `max_buckets` per sign the lowest-magnitude buckets collapse into
//! one (only quantiles in that collapsed range lose the guarantee; with the defaults that takes a
//! dynamic range above 10⁸ within one window).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// Default relative accuracy: 1 %.
pub const DEFAULT_RELATIVE_ACCURACY: f64 = 0.01;

/// Default bucket cap per sign.
pub const DEFAULT_MAX_BUCKETS: usize = 2048;

/// Magnitudes below this count as zero.
const MIN_INDEXABLE: f64 = 1e-9;

/// Mergeable quantile sketch; see the module documentation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct QuantileSketch {
    relative_accuracy: f64,
    max_buckets: usize,
    positive: BTreeMap<i32, u64>,
    negative: BTreeMap<i32, u64>,
    zeros: u64,
    count: u64,
}

impl QuantileSketch {
    /// A sketch with relative accuracy `relative_accuracy` (0 < α < 1).
    pub fn new(relative_accuracy: f64, max_buckets: usize) -> Self {
        Self {
            relative_accuracy: relative_accuracy.clamp(1e-6, 0.5),
            max_buckets: max_buckets.max(16),
            positive: BTreeMap::new(),
            negative: BTreeMap::new(),
            zeros: 0,
            count: 0,
        }
    }

    fn gamma(&self) -> f64 {
        (1.0 + self.relative_accuracy) / (1.0 - self.relative_accuracy)
    }

    fn index(&self, magnitude: f64) -> i32 {
        (magnitude.ln() / self.gamma().ln()).ceil() as i32
    }

    fn value(&self, index: i32) -> f64 {
        let gamma = self.gamma();
        2.0 * gamma.powi(index) / (gamma + 1.0)
    }

    /// Adds one finite value (non-finite values are ignored).
    pub fn add(&mut self, value: f64) {
        if !value.is_finite() {
            return;
        }
        self.count += 1;
        if value.abs() < MIN_INDEXABLE {
            self.zeros += 1;
            return;
        }
        let index = self.index(value.abs());
        let store = if value > 0.0 {
            &mut self.positive
        } else {
            &mut self.negative
        };
        *store.entry(index).or_insert(0) += 1;
        if store.len() > self.max_buckets {
            collapse_lowest(store, self.max_buckets);
        }
    }

    /// Adds every value of `other` (same accuracy expected; otherwise its buckets are re-read at
    /// their representative values).
    pub fn merge(&mut self, other: &QuantileSketch) {
        if other.relative_accuracy.to_bits() != self.relative_accuracy.to_bits() {
            for (sign, store) in [(1.0, &other.positive), (-1.0, &other.negative)] {
                for (&index, &count) in store {
                    let value = sign * other.value(index);
                    for _ in 0..count {
                        self.add(value);
                    }
                }
            }
            for _ in 0..other.zeros {
                self.add(0.0);
            }
            return;
        }
        for (&index, &count) in &other.positive {
            *self.positive.entry(index).or_insert(0) += count;
        }
        for (&index, &count) in &other.negative {
            *self.negative.entry(index).or_insert(0) += count;
        }
        self.zeros += other.zeros;
        self.count += other.count;
        collapse_lowest(&mut self.positive, self.max_buckets);
        collapse_lowest(&mut self.negative, self.max_buckets);
    }

    /// Number of values added.
    pub fn count(&self) -> u64 {
        self.count
    }

    /// The `q`-quantile (0 ≤ q ≤ 1), lower rank convention (`rank = ⌊q·(n−1)⌋`); `None` when empty.
    pub fn quantile(&self, q: f64) -> Option<f64> {
        if self.count == 0 || !(0.0..=1.0).contains(&q) {
            return None;
        }
        let rank = (q * (self.count - 1) as f64).floor() as u64;
        let mut seen = 0;
        for (&index, &count) in self.negative.iter().rev() {
            seen += count;
            if seen > rank {
                return Some(-self.value(index));
            }
        }
        seen += self.zeros;
        if seen > rank {
            return Some(0.0);
        }
        for (&index, &count) in &self.positive {
            seen += count;
            if seen > rank {
                return Some(self.value(index));
            }
        }
        self.positive
            .keys()
            .next_back()
            .map(|&index| self.value(index))
    }

    /// Buckets in use (for the state-size metric).
    pub fn bucket_count(&self) -> usize {
        self.positive.len() + self.negative.len()
    }
}

/// Folds the lowest-magnitude buckets into one until at most `max` remain.
fn collapse_lowest(store: &mut BTreeMap<i32, u64>, max: usize) {
    while store.len() > max {
        let Some((_, lowest)) = store.pop_first() else {
            return;
        };
        if let Some(mut next) = store.first_entry() {
            *next.get_mut() += lowest;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn exact(values: &mut [f64], q: f64) -> f64 {
        values.sort_by(f64::total_cmp);
        values[(q * (values.len() - 1) as f64).floor() as usize]
    }

    #[test]
    fn quantiles_within_one_percent() {
        let mut sketch = QuantileSketch::new(DEFAULT_RELATIVE_ACCURACY, DEFAULT_MAX_BUCKETS);
        let mut values: Vec<f64> = (1..=10_000).map(|i| (i as f64).powf(1.7) / 13.0).collect();
        for value in &values {
            sketch.add(*value);
        }
        for q in [0.0, 0.5, 0.9, 0.95, 0.99, 1.0] {
            let want = exact(&mut values, q);
            let got = sketch.quantile(q).unwrap();
            assert!(
                (got - want).abs() <= 0.01 * want.abs(),
                "q{q}: {got} vs {want}"
            );
        }
    }

    #[test]
    fn negative_zero_and_empty() {
        let mut sketch = QuantileSketch::new(0.01, 2048);
        assert_eq!(sketch.quantile(0.5), None);
        for value in [-5.0, -1.0, 0.0, 0.0, 2.0] {
            sketch.add(value);
        }
        assert!((sketch.quantile(0.0).unwrap() + 5.0).abs() <= 0.05);
        assert_eq!(sketch.quantile(0.5), Some(0.0));
        assert!((sketch.quantile(1.0).unwrap() - 2.0).abs() <= 0.02);
    }

    #[test]
    fn bucket_cap_holds() {
        let mut sketch = QuantileSketch::new(0.01, 64);
        for exponent in 0..2000 {
            sketch.add(1.01f64.powi(exponent));
        }
        assert!(sketch.bucket_count() <= 64);
        let top = 1.01f64.powi(1999);
        assert!((sketch.quantile(1.0).unwrap() - top).abs() <= 0.01 * top);
    }

    proptest! {
        #[test]
        fn merged_sketches_equal_one_sketch(
            values in proptest::collection::vec(-1e6f64..1e6, 1..300),
            split in 0usize..300,
        ) {
            let split = split.min(values.len());
            let mut whole = QuantileSketch::new(0.01, 2048);
            let mut left = QuantileSketch::new(0.01, 2048);
            let mut right = QuantileSketch::new(0.01, 2048);
            for (index, value) in values.iter().enumerate() {
                whole.add(*value);
                if index < split { left.add(*value) } else { right.add(*value) }
            }
            left.merge(&right);
            prop_assert_eq!(&left, &whole);
            let mut sorted = values.clone();
            for q in [0.5, 0.9, 0.99] {
                let want = exact(&mut sorted, q);
                let got = whole.quantile(q).unwrap();
                prop_assert!((got - want).abs() <= 0.01 * want.abs() + 1e-9, "q{} {} vs {}", q, got, want);
            }
        }
    }
}
