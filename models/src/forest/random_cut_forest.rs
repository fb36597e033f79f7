//! The forest: shingling, time-decayed reservoir sampling per tree, and the averaged score.

use std::collections::VecDeque;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use super::point_store::PointStore;
use super::sample_weights::SampleWeights;
use super::trees::{Scratch, Trees, MAX_SAMPLE_SIZE};

/// A forest's parameters (KDA's names; its defaults are 100 trees of 256 points, shingle 1).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ForestConfig {
    /// Values per input record (signals scored together).
    pub input_dimensions: usize,
    /// Trees in the forest.
    pub num_trees: usize,
    /// Points each tree samples.
    pub sample_size: usize,
    /// Consecutive inputs concatenated into one point.
    pub shingle_size: usize,
    /// Recency bias of the sampling: a point's weight falls by `time_decay` per later input
    /// (0: a uniform reservoir sample of the whole stream).
    pub time_decay: f64,
    /// Seed of the forest's random generator.
    pub seed: u64,
}

impl ForestConfig {
    /// Problems with the parameters, as readable sentences (empty when valid).
    pub fn problems(&self) -> Vec<String> {
        let mut problems = Vec::new();
        if !(1..=30).contains(&self.input_dimensions) {
            problems.push("input_dimensions must be 1 to 30".to_owned());
        }
        if self.num_trees == 0 || self.num_trees > 1000 {
            problems.push("num_trees must be 1 to 1000".to_owned());
        }
        if self.sample_size < 2 || self.sample_size > MAX_SAMPLE_SIZE {
            problems.push(format!("sample_size must be 2 to {MAX_SAMPLE_SIZE}"));
        }
        if self.shingle_size == 0 || self.input_dimensions * self.shingle_size > 1 << 15 {
            problems.push(
                "shingle_size must be at least 1 and keep points under 32768 values".to_owned(),
            );
        }
        if !(self.time_decay.is_finite() && self.time_decay >= 0.0) {
            problems.push("time_decay must be a finite number ≥ 0".to_owned());
        }
        problems
    }
}

/// What [`RandomCutForest::process`] reports for one input.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ForestScore {
    /// The average tree score (0 while warming up).
    pub score: f64,
    /// True until the trees hold `sample_size` points: the score is 0 then, as in KDA.
    pub warming_up: bool,
}

/// How much of a score one input signal explains, by direction.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct SignalAttribution {
    /// Part of the score from the signal being higher than the forest expects.
    pub high: f64,
    /// Part of the score from the signal being lower than the forest expects.
    pub low: f64,
}

impl SignalAttribution {
    /// The signal's share of the score (KDA's `ATTRIBUTION_SCORE`).
    pub fn total(&self) -> f64 {
        self.high + self.low
    }

    /// True when the signal is anomalous mostly by being high (KDA's `DIRECTION` `HIGH`).
    pub fn is_high(&self) -> bool {
        self.high >= self.low
    }
}

/// When a call explains its score.
enum Explain<'a> {
    Never,
    Always,
    When(&'a mut dyn FnMut(f64) -> bool),
}

/// Version of the snapshot format written by [`RandomCutForest::snapshot`].
pub const FOREST_SNAPSHOT_VERSION: u16 = 2;

/// Why a forest snapshot could not be restored.
#[derive(Debug, thiserror::Error)]
pub enum ForestSnapshotError {
    /// The bytes are not a forest snapshot of a known layout.
    #[error("forest snapshot is unreadable: {0}")]
    Unreadable(#[from] postcard::Error),
    /// The snapshot was written by another format version.
    #[error("snapshot has format version {found}; this build reads version {expected}")]
    UnsupportedVersion {
        /// The version found in the snapshot.
        found: u16,
        /// The version this build writes and reads.
        expected: u16,
    },
    /// The snapshot decodes but breaks the forest's invariants (corrupt or edited).
    #[error("forest snapshot is inconsistent: {0}")]
    Inconsistent(String),
}

/// A random cut forest over a stream of records of `input_dimensions` values.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RandomCutForest {
    config: ForestConfig,
    store: PointStore,
    trees: Trees,
    /// Reservoir keys of every tree's sample.
    weights: SampleWeights,
    shingle: VecDeque<f32>,
    inputs_seen: u64,
    rng: ChaCha8Rng,
    #[serde(skip)]
    scratch: Scratch,
    /// The current shingled point (reused, so processing allocates nothing once warm).
    #[serde(skip)]
    point: Vec<f32>,
}

impl RandomCutForest {
    /// A forest with `config` (check [`ForestConfig::problems`] first).
    pub fn new(config: ForestConfig) -> Self {
        let dimensions = config.input_dimensions * config.shingle_size;
        let store_capacity = config.num_trees * config.sample_size + 1;
        Self {
            store: PointStore::new(dimensions),
            trees: Trees::new(
                config.num_trees,
                config.sample_size,
                dimensions,
                store_capacity,
            ),
            weights: SampleWeights::new(config.num_trees, config.sample_size, config.time_decay),
            shingle: VecDeque::with_capacity(dimensions),
            inputs_seen: 0,
            rng: ChaCha8Rng::seed_from_u64(config.seed),
            scratch: Scratch::default(),
            point: Vec::with_capacity(dimensions),
            config,
        }
    }

    /// The forest's parameters.
    pub fn config(&self) -> &ForestConfig {
        &self.config
    }

    /// Scores `values` (one record's signals, in configured order) against the forest, then
    /// adds it: score-then-update, as KDA does.
    ///
    /// # Panics
    /// When `values` does not have `input_dimensions` values (a caller bug, not input data).
    pub fn process(&mut self, values: &[f32]) -> ForestScore {
        self.process_inner(values, Explain::Never).0
    }

    /// [`Self::process`], also explaining the score: per input signal, how much of it comes from
    /// the signal being high and being low (summed over the shingle's positions). The entries
    /// sum to the score; all zero while warming up.
    pub fn process_explained(&mut self, values: &[f32]) -> (ForestScore, Vec<SignalAttribution>) {
        let (score, explanation) = self.process_inner(values, Explain::Always);
        let explanation = explanation
            .unwrap_or_else(|| vec![SignalAttribution::default(); self.config.input_dimensions]);
        (score, explanation)
    }

    /// [`Self::process`], explaining the score only when `wanted(score)` says so (a second walk
    /// of the trees, before the update): the cheap way to explain only what will be looked at.
    pub fn process_explained_when(
        &mut self,
        values: &[f32],
        wanted: &mut dyn FnMut(f64) -> bool,
    ) -> (ForestScore, Option<Vec<SignalAttribution>>) {
        self.process_inner(values, Explain::When(wanted))
    }

    fn process_inner(
        &mut self,
        values: &[f32],
        explain: Explain<'_>,
    ) -> (ForestScore, Option<Vec<SignalAttribution>>) {
        assert_eq!(values.len(), self.config.input_dimensions, "input width");
        if self.shingle.len() == self.config.input_dimensions * self.config.shingle_size {
            self.shingle.drain(..self.config.input_dimensions);
        }
        // A non-finite value would poison every box it entered: it counts as 0 (callers that
        // care, like `AnomalyModel`, impute before).
        self.shingle
            .extend(values.iter().map(|v| if v.is_finite() { *v } else { 0.0 }));
        self.inputs_seen += 1;
        if self.shingle.len() < self.config.input_dimensions * self.config.shingle_size {
            let score = ForestScore {
                score: 0.0,
                warming_up: true,
            };
            return (score, None);
        }
        let mut point = std::mem::take(&mut self.point);
        point.clear();
        point.extend(self.shingle.iter().copied());
        let warming_up = self.trees.mass(0) < self.config.sample_size as u32;
        let (score, explanation) = if warming_up {
            (0.0, None)
        } else {
            match explain {
                Explain::Never => (self.score_point(&point), None),
                Explain::Always => {
                    let attribution = self.attribute_point(&point);
                    (attribution.iter().sum(), Some(attribution))
                }
                Explain::When(wanted) => {
                    let score = self.score_point(&point);
                    let attribution = wanted(score).then(|| self.attribute_point(&point));
                    (score, attribution)
                }
            }
        };
        self.update(&point);
        self.point = point;
        let explanation = explanation.map(|per_dimension| self.per_signal(&per_dimension));
        (ForestScore { score, warming_up }, explanation)
    }

    /// The average tree score of `point`.
    fn score_point(&mut self, point: &[f32]) -> f64 {
        let trees = self.trees.count();
        (0..trees)
            .map(|tree| {
                self.trees
                    .score(tree, point, &self.store, &mut self.scratch)
            })
            .sum::<f64>()
            / trees as f64
    }

    /// The average tree attribution of `point`: high per dimension, then low per dimension.
    fn attribute_point(&mut self, point: &[f32]) -> Vec<f64> {
        let trees = self.trees.count();
        let mut attribution = vec![0.0; 2 * self.store.dimensions()];
        for tree in 0..trees {
            self.trees.add_attribution(
                tree,
                point,
                &self.store,
                &mut self.scratch,
                &mut attribution,
            );
        }
        attribution
            .iter_mut()
            .for_each(|value| *value /= trees as f64);
        attribution
    }

    /// Per-dimension attribution summed per input signal over the shingle's positions.
    fn per_signal(&self, per_dimension: &[f64]) -> Vec<SignalAttribution> {
        let inputs = self.config.input_dimensions;
        let dimensions = self.store.dimensions();
        (0..inputs)
            .map(|signal| {
                let positions = (signal..dimensions).step_by(inputs);
                let high = positions.clone().map(|d| per_dimension[d]).sum();
                let low = positions.map(|d| per_dimension[dimensions + d]).sum();
                SignalAttribution { high, low }
            })
            .collect()
    }

    /// Offers `point` to every tree's time-decayed reservoir.
    fn update(&mut self, point: &[f32]) {
        let index = self.store.add(point);
        let sample_size = self.config.sample_size;
        let drift = self.weights.drift(self.inputs_seen);
        for tree in 0..self.trees.count() {
            let uniform: f64 = self.rng.random_range(f64::MIN_POSITIVE..1.0);
            let full = self.trees.mass(tree) as usize >= sample_size;
            let Some(key) = self.weights.key_for(tree, full, -uniform.ln(), drift) else {
                continue;
            };
            if full {
                let leaving = self.weights.heaviest(tree);
                let evicted = self
                    .trees
                    .delete(tree, leaving, &self.store, &mut self.scratch);
                self.store.release(evicted);
            }
            let (slot, kept) =
                self.trees
                    .insert(tree, index, &self.store, &mut self.rng, &mut self.scratch);
            self.store.retain(kept);
            self.weights
                .record(tree, slot, key, self.trees.mass(tree) as usize);
        }
        self.store.release(index);
    }

    /// The forest's whole state (points, trees, samples, shingle, random generator) as compact
    /// binary: a format version, then postcard. Restoring it and continuing gives bit-identical
    /// scores to a forest that never stopped.
    pub fn snapshot(&self) -> Vec<u8> {
        super::versioned::encode(FOREST_SNAPSHOT_VERSION, self)
    }

    /// A forest from [`Self::snapshot`] bytes, checked against its invariants.
    pub fn restore(bytes: &[u8]) -> Result<Self, ForestSnapshotError> {
        let forest: Self = super::versioned::decode(bytes, FOREST_SNAPSHOT_VERSION)?;
        let problems = forest.config.problems();
        if !problems.is_empty() {
            return Err(ForestSnapshotError::Inconsistent(problems.join("; ")));
        }
        forest
            .check_invariants()
            .map_err(ForestSnapshotError::Inconsistent)?;
        Ok(forest)
    }

    /// Points stored once for all trees.
    pub fn stored_points(&self) -> usize {
        self.store.live_points()
    }

    /// Heap bytes of the forest: shared points, trees, box caches and sampling weights.
    pub fn heap_bytes(&self) -> usize {
        self.store.heap_bytes()
            + self.trees.heap_bytes()
            + self.weights.heap_bytes()
            + self.shingle.capacity() * 4
    }

    /// Checks that the parts fit together and every tree's invariants hold.
    pub fn check_invariants(&self) -> Result<(), String> {
        let config = &self.config;
        let dimensions = config.input_dimensions * config.shingle_size;
        if self.trees.count() != config.num_trees
            || self.trees.sample_size != config.sample_size
            || self.trees.dimensions != dimensions
            || self.store.dimensions() != dimensions
            || self.shingle.len() > dimensions
            || !self.weights.fits(
                config.num_trees,
                config.sample_size,
                &(0..config.num_trees)
                    .map(|tree| self.trees.mass(tree) as usize)
                    .collect::<Vec<_>>(),
            )
        {
            return Err("the forest's parts do not match its configuration".to_owned());
        }
        for tree in 0..self.trees.count() {
            self.trees.check_invariants(tree, &self.store)?;
            if self.trees.mass(tree) as usize > config.sample_size {
                return Err(format!("tree {tree}'s sample is inconsistent"));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(seed: u64) -> ForestConfig {
        ForestConfig {
            input_dimensions: 1,
            num_trees: 30,
            sample_size: 64,
            shingle_size: 4,
            time_decay: 1.0 / 640.0,
            seed,
        }
    }

    /// A noisy sine (deterministic noise) with spikes at the given positions.
    fn series(length: usize, spikes: &[usize]) -> Vec<f32> {
        let mut noise = ChaCha8Rng::seed_from_u64(99);
        (0..length)
            .map(|i| {
                let base = (i as f32 * 0.2).sin() * 10.0 + noise.random_range(-0.5..0.5);
                if spikes.contains(&i) {
                    base + 40.0
                } else {
                    base
                }
            })
            .collect()
    }

    #[test]
    fn parameters_are_validated_readably() {
        let bad = ForestConfig {
            input_dimensions: 0,
            num_trees: 0,
            sample_size: 1,
            shingle_size: 0,
            time_decay: -1.0,
            seed: 0,
        };
        assert_eq!(bad.problems().len(), 5, "{:?}", bad.problems());
        assert!(config(1).problems().is_empty());
    }

    #[test]
    fn warms_up_then_ranks_injected_spikes_at_the_top() {
        let spikes = [1500, 2200, 2900];
        let values = series(3000, &spikes);
        let mut forest = RandomCutForest::new(config(5));
        let scores: Vec<ForestScore> = values.iter().map(|v| forest.process(&[*v])).collect();
        assert!(scores[..64].iter().all(|s| s.warming_up && s.score == 0.0));
        assert!(scores[200..].iter().all(|s| !s.warming_up && s.score > 0.0));
        forest.check_invariants().unwrap();
        // The top 1 % of the scored points after warm-up holds every spike.
        let mut ranked: Vec<(usize, f64)> = scores
            .iter()
            .enumerate()
            .skip(200)
            .map(|(i, s)| (i, s.score))
            .collect();
        ranked.sort_by(|a, b| b.1.total_cmp(&a.1));
        let top: Vec<usize> = ranked[..ranked.len() / 100].iter().map(|r| r.0).collect();
        for spike in spikes {
            assert!(
                top.contains(&spike),
                "spike {spike} not in the top 1 %: {top:?}"
            );
        }
        assert!(
            forest.stored_points() <= 30 * 64,
            "points are stored once: {}",
            forest.stored_points()
        );
    }

    #[test]
    fn snapshot_restore_and_continue_gives_bit_identical_scores() {
        let values = series(1500, &[900, 1300]);
        let mut uninterrupted = RandomCutForest::new(config(11));
        let expected: Vec<u64> = values
            .iter()
            .map(|v| uninterrupted.process(&[*v]).score.to_bits())
            .collect();
        for cut in [3, 64, 700] {
            let mut first = RandomCutForest::new(config(11));
            let mut scores: Vec<u64> = values[..cut]
                .iter()
                .map(|v| first.process(&[*v]).score.to_bits())
                .collect();
            let mut restored = RandomCutForest::restore(&first.snapshot()).unwrap();
            scores.extend(
                values[cut..]
                    .iter()
                    .map(|v| restored.process(&[*v]).score.to_bits()),
            );
            assert_eq!(scores, expected, "snapshot after {cut} inputs");
        }
    }

    #[test]
    fn a_bad_snapshot_is_refused_with_a_reason() {
        let mut forest = RandomCutForest::new(config(2));
        for v in series(100, &[]) {
            forest.process(&[v]);
        }
        let mut bytes = forest.snapshot();
        bytes[0] = 9;
        assert!(matches!(
            RandomCutForest::restore(&bytes),
            Err(ForestSnapshotError::UnsupportedVersion {
                found: 9,
                expected: FOREST_SNAPSHOT_VERSION
            })
        ));
        let bytes = forest.snapshot();
        let error = RandomCutForest::restore(&bytes[..bytes.len() / 2]).unwrap_err();
        assert!(error.to_string().contains("unreadable"), "{error}");
    }

    #[test]
    fn the_spiking_signal_explains_the_score_in_the_right_direction() {
        let mut forest = RandomCutForest::new(ForestConfig {
            input_dimensions: 3,
            ..config(8)
        });
        let speed = series(1200, &[1000]);
        let rpm = series(1200, &[]);
        let coolant = series(1200, &[]);
        let mut at_spike = None;
        for i in 0..1200 {
            let (score, explanation) =
                forest.process_explained(&[speed[i], rpm[i] * 2.0, -coolant[i]]);
            let total: f64 = explanation.iter().map(SignalAttribution::total).sum();
            assert!(
                (total - score.score).abs() < 1e-9,
                "{total} vs {}",
                score.score
            );
            if i == 1000 {
                at_spike = Some((score, explanation));
            }
        }
        let (score, explanation) = at_spike.unwrap();
        assert!(score.score > 0.0);
        let largest = (0..3)
            .max_by(|&a, &b| explanation[a].total().total_cmp(&explanation[b].total()))
            .unwrap();
        assert_eq!(largest, 0, "speed spiked: {explanation:?}");
        assert!(explanation[0].is_high(), "{explanation:?}");
        assert!(
            explanation[0].total() > 0.5 * score.score,
            "{explanation:?}"
        );
    }

    #[test]
    fn the_same_seed_gives_the_same_scores() {
        let values = series(800, &[600]);
        let run = |seed| {
            let mut forest = RandomCutForest::new(config(seed));
            values
                .iter()
                .map(|v| forest.process(&[*v]).score.to_bits())
                .collect::<Vec<_>>()
        };
        assert_eq!(run(3), run(3));
        assert_ne!(run(3), run(4));
    }
}
