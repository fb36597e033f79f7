//! The time-decayed reservoir keys of every tree's sample, stored in 16 bits each.
//!
//! Each tree keeps the `sample_size` points with the smallest keys
//! `ln(-ln u) - time_decay × t` (Efraimidis–Spirakis with exponential decay: `u` uniform, `t`
//! the input's sequence number), so newer points are favoured and `time_decay = 0` is a uniform
//! reservoir over the whole stream. Keys are stored relative to a moving offset, quantised to
//! 1/512 on [-64, 64) and saturated at the top: sampled keys lie within a few units of each
//! other, so the quantum is far below the spread that decides which point leaves, and a key
//! saturated at the top belongs to a point so old that it leaves next anyway.

use serde::{Deserialize, Serialize};

/// Quanta per unit of key.
const SCALE: f64 = 512.0;
/// Key value of quantum 0.
const LOWEST: f64 = -64.0;
/// How far the decay term may drift from the offset before stored keys are shifted.
const REBASE_AFTER: f64 = 16.0;

/// Keys per tree and slot, and per tree the slot whose key is largest (the next to leave).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(super) struct SampleWeights {
    sample_size: usize,
    time_decay: f64,
    keys: Vec<u16>,
    heaviest: Vec<u16>,
    /// The decay term (`time_decay × t`) that stored keys are measured from.
    offset: f64,
    /// Per tree, `exp` of the lower edge of its heaviest key's quantum: a draw is refused without
    /// a second logarithm when it is clearly above (derived data, rebuilt after a restore).
    #[serde(skip)]
    limits: Vec<f32>,
}

/// One input's decay term, shared by every tree's draw for it.
#[derive(Debug, Clone, Copy)]
pub(super) struct Drift {
    /// `time_decay × t` measured from the offset.
    drift: f64,
    /// `exp(drift)`.
    growth: f64,
}

impl SampleWeights {
    /// Keys for `trees` samples of `sample_size` points.
    pub(super) fn new(trees: usize, sample_size: usize, time_decay: f64) -> Self {
        Self {
            sample_size,
            time_decay,
            keys: vec![0; trees * sample_size],
            heaviest: vec![0; trees],
            offset: 0.0,
            limits: Vec::new(),
        }
    }

    /// The decay term of the input with sequence number `sequence`. Shifts the stored keys first
    /// when it has drifted far from the offset.
    pub(super) fn drift(&mut self, sequence: u64) -> Drift {
        let decay = self.time_decay * sequence as f64;
        if decay - self.offset > REBASE_AFTER {
            let quanta = ((decay - self.offset) * SCALE).floor();
            self.offset += quanta / SCALE;
            let shift = quanta as u16;
            for key in &mut self.keys {
                *key = key.saturating_add(shift);
            }
            self.limits.clear();
        }
        if self.limits.len() != self.heaviest.len() {
            self.limits = (0..self.heaviest.len())
                .map(|tree| self.limit_of(tree))
                .collect();
        }
        let drift = decay - self.offset;
        Drift {
            drift,
            growth: drift.exp(),
        }
    }

    /// `exp` of the lower edge of the quantum of `tree`'s heaviest key.
    fn limit_of(&self, tree: usize) -> f32 {
        let heaviest = self.keys[tree * self.sample_size + usize::from(self.heaviest[tree])];
        (f64::from(heaviest) / SCALE + LOWEST).exp() as f32
    }

    /// The key of the draw `exponential = -ln u` (`u` uniform in (0, 1)) for `tree`, or `None`
    /// when the tree is `full` and refuses it (its key is not below the heaviest). Most refusals
    /// are decided from `exponential` alone, sparing a logarithm; the exact rule decides the rest.
    pub(super) fn key_for(
        &self,
        tree: usize,
        full: bool,
        exponential: f64,
        drift: Drift,
    ) -> Option<u16> {
        // Accepted ⟺ ln(e) - drift < edge ⟺ e < exp(edge) × exp(drift); the margin covers the
        // rounding of the cached limit, so this never refuses what the exact rule accepts.
        if full && exponential >= f64::from(self.limits[tree]) * drift.growth * (1.0 + 1e-3) {
            return None;
        }
        let key = exponential.ln() - drift.drift;
        let key = ((key - LOWEST) * SCALE).clamp(0.0, f64::from(u16::MAX)) as u16;
        (!full || self.accepts(tree, key)).then_some(key)
    }

    /// The key of the input with sequence number `sequence`, from a uniform draw in (0, 1).
    #[cfg(test)]
    fn key(&mut self, uniform: f64, sequence: u64) -> u16 {
        let drift = self.drift(sequence);
        self.key_for(0, false, -uniform.ln(), drift).unwrap_or(0)
    }

    /// Whether a full tree takes a point with `key` (it is lighter than the heaviest).
    pub(super) fn accepts(&self, tree: usize, key: u16) -> bool {
        key < self.keys[tree * self.sample_size + usize::from(self.heaviest[tree])]
    }

    /// The slot whose key is largest in `tree`.
    pub(super) fn heaviest(&self, tree: usize) -> u16 {
        self.heaviest[tree]
    }

    /// Records `key` for `slot` of `tree`, whose sample now holds `mass` points (filled from slot
    /// 0 up while warming, then each new point takes the slot that left).
    pub(super) fn record(&mut self, tree: usize, slot: u16, key: u16, mass: usize) {
        let base = tree * self.sample_size;
        self.keys[base + usize::from(slot)] = key;
        if mass >= self.sample_size {
            // Two passes (a vectorised maximum, then its first position) beat one branchy pass.
            let keys = &self.keys[base..base + self.sample_size];
            let largest = keys.iter().copied().max().unwrap_or(0);
            let best = keys.iter().position(|&key| key == largest).unwrap_or(0);
            self.heaviest[tree] = u16::try_from(best).unwrap_or(0);
        } else if mass == 1 || key > self.keys[base + usize::from(self.heaviest[tree])] {
            self.heaviest[tree] = slot;
        }
        if tree < self.limits.len() {
            self.limits[tree] = self.limit_of(tree);
        }
    }

    /// Whether the shape matches `trees` samples of `sample_size` and every heaviest slot is
    /// below the tree's mass (from `masses`).
    pub(super) fn fits(&self, trees: usize, sample_size: usize, masses: &[usize]) -> bool {
        self.sample_size == sample_size
            && self.keys.len() == trees * sample_size
            && self.heaviest.len() == trees
            && self.offset.is_finite()
            && masses
                .iter()
                .zip(&self.heaviest)
                .all(|(&mass, &heaviest)| mass == 0 || usize::from(heaviest) < mass)
    }

    /// Heap bytes held.
    pub(super) fn heap_bytes(&self) -> usize {
        self.keys.capacity() * 2 + self.heaviest.capacity() * 2 + self.limits.capacity() * 4
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn newer_inputs_get_smaller_keys_and_rebasing_keeps_the_order() {
        let mut weights = SampleWeights::new(1, 2, 0.01);
        let old = weights.key(0.5, 10);
        weights.record(0, 0, old, 1);
        let newer = weights.key(0.5, 500);
        assert!(newer < old, "{newer} vs {old}");
        weights.record(0, 1, newer, 2);
        // Far later: the stored keys are shifted, the order and the heaviest stay.
        let latest = weights.key(0.5, 5000);
        assert!(latest < weights.keys[1] && weights.keys[1] < weights.keys[0]);
        assert_eq!(weights.heaviest(0), 0);
        assert!(weights.accepts(0, latest));
        assert!(!weights.accepts(0, u16::MAX));
    }
}
