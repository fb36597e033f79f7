//! One vehicle's anomaly model: signal scaling, the random cut forest, and the grader, with one
//! snapshot for all three.

use serde::{Deserialize, Serialize};

use super::random_cut_forest::{
    ForestConfig, ForestSnapshotError, RandomCutForest, SignalAttribution,
};
use super::score_grader::{Grade, GraderConfig, ScoreGrader};
use super::signal_scaler::SignalScaler;

/// Version of the snapshot format written by [`AnomalyModel::snapshot`].
pub const MODEL_SNAPSHOT_VERSION: u16 = 1;

/// Everything that defines a model.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AnomalyModelConfig {
    /// The forest's parameters (`input_dimensions` is the number of signals).
    pub forest: ForestConfig,
    /// Scale each signal by its running mean and deviation before the forest sees it.
    pub normalize: bool,
    /// The adaptive threshold's parameters.
    pub grader: GraderConfig,
}

/// Which records get an explanation (a second walk of the trees, so not free).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Explanations {
    /// None.
    None,
    /// Records graded above 0 (the ones an alert or a dashboard will show).
    #[default]
    Graded,
    /// Every scored record, as KDA's `RANDOM_CUT_FOREST_WITH_EXPLANATION` does.
    All,
}

/// What a model reports for one record.
#[derive(Debug, Clone, PartialEq)]
pub struct AnomalyResult {
    /// The forest's anomaly score (0 while warming up).
    pub score: f64,
    /// The graded score and its confidence.
    pub grade: Grade,
    /// True until the forest holds `sample_size` points: score and grade are 0 then.
    pub warming_up: bool,
    /// Signals of this record that were missing or not finite, and imputed.
    pub imputed: u32,
    /// Per signal, its share of the score by direction (the shares sum to the score), when the
    /// record was explained.
    pub attribution: Option<Vec<SignalAttribution>>,
}

/// Scaling, forest and grader of one vehicle.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AnomalyModel {
    config: AnomalyModelConfig,
    scaler: SignalScaler,
    forest: RandomCutForest,
    grader: ScoreGrader,
    #[serde(skip)]
    scaled: Vec<f32>,
}

impl AnomalyModel {
    /// A fresh model (check [`ForestConfig::problems`] first).
    pub fn new(config: AnomalyModelConfig) -> Self {
        let signals = config.forest.input_dimensions;
        let horizon = (10 * config.forest.sample_size) as u64;
        Self {
            scaler: SignalScaler::new(signals, horizon, config.normalize),
            forest: RandomCutForest::new(config.forest.clone()),
            grader: ScoreGrader::new(config.grader.clone()),
            scaled: vec![0.0; signals],
            config,
        }
    }

    /// The model's configuration.
    pub fn config(&self) -> &AnomalyModelConfig {
        &self.config
    }

    /// Scores one record's signals (in configured order; `None` when missing), explaining the
    /// score as `explain` says, then learns from the record.
    ///
    /// # Panics
    /// When `values` does not have one entry per signal (a caller bug, not input data).
    pub fn process(&mut self, values: &[Option<f64>], explain: Explanations) -> AnomalyResult {
        assert_eq!(values.len(), self.config.forest.input_dimensions, "signals");
        self.scaled.resize(values.len(), 0.0);
        let imputed = self.scaler.scale_then_learn(values, &mut self.scaled);
        let (score, attribution) = match explain {
            Explanations::None => (self.forest.process(&self.scaled), None),
            Explanations::All => {
                let (score, attribution) = self.forest.process_explained(&self.scaled);
                (score, (!score.warming_up).then_some(attribution))
            }
            Explanations::Graded => {
                let threshold = self.grader.threshold();
                self.forest
                    .process_explained_when(&self.scaled, &mut |score| score > threshold)
            }
        };
        let grade = self.grader.grade_then_learn(score.score, score.warming_up);
        AnomalyResult {
            score: score.score,
            grade,
            warming_up: score.warming_up,
            imputed,
            attribution,
        }
    }

    /// The whole model as compact binary (a format version, then postcard); restoring it and
    /// continuing gives bit-identical results to a model that never stopped.
    pub fn snapshot(&self) -> Vec<u8> {
        super::versioned::encode(MODEL_SNAPSHOT_VERSION, self)
    }

    /// A model from [`Self::snapshot`] bytes, checked against its invariants.
    pub fn restore(bytes: &[u8]) -> Result<Self, ForestSnapshotError> {
        let mut model: Self = super::versioned::decode(bytes, MODEL_SNAPSHOT_VERSION)?;
        let problems = model.config.forest.problems();
        if !problems.is_empty() {
            return Err(ForestSnapshotError::Inconsistent(problems.join("; ")));
        }
        if model.forest.config() != &model.config.forest {
            return Err(ForestSnapshotError::Inconsistent(
                "the forest does not match the model's configuration".to_owned(),
            ));
        }
        model
            .forest
            .check_invariants()
            .map_err(ForestSnapshotError::Inconsistent)?;
        model.scaled = vec![0.0; model.config.forest.input_dimensions];
        Ok(model)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> AnomalyModelConfig {
        AnomalyModelConfig {
            forest: ForestConfig {
                input_dimensions: 2,
                num_trees: 30,
                sample_size: 64,
                shingle_size: 2,
                time_decay: 1.0 / 640.0,
                seed: 4,
            },
            normalize: true,
            grader: GraderConfig {
                horizon: 640,
                ..GraderConfig::default()
            },
        }
    }

    fn record(i: usize) -> [Option<f64>; 2] {
        let wave = (i as f64 * 0.25).sin();
        let speed = if i == 1700 { 400.0 } else { 60.0 + 20.0 * wave };
        let missing = i % 97 == 0;
        [
            Some(speed),
            if missing {
                None
            } else {
                Some(2000.0 + 500.0 * wave)
            },
        ]
    }

    #[test]
    fn a_spike_in_one_signal_grades_high_and_is_explained() {
        let mut model = AnomalyModel::new(config());
        let mut graded = Vec::new();
        for i in 0..1800 {
            let result = model.process(&record(i), Explanations::All);
            if i < 64 {
                assert!(result.warming_up && result.grade.grade == 0.0);
            }
            assert_eq!(result.imputed, u32::from(i % 97 == 0));
            graded.push(result);
        }
        let spike = &graded[1700];
        assert!(spike.grade.grade > 0.5, "{spike:?}");
        let attribution = spike.attribution.as_ref().unwrap();
        assert!(attribution[0].total() > attribution[1].total());
        assert_eq!(attribution[0].direction(), "HIGH");
        let total: f64 = attribution.iter().map(SignalAttribution::total).sum();
        assert!((total - spike.score).abs() < 1e-9);
        let alerts = graded[300..].iter().filter(|r| r.grade.grade > 0.5).count();
        assert!(alerts <= 5, "ordinary records rarely grade high: {alerts}");
    }

    #[test]
    fn restore_and_continue_is_bit_identical() {
        let mut uninterrupted = AnomalyModel::new(config());
        let expected: Vec<(u64, u64)> = (0..900)
            .map(|i| {
                let r = uninterrupted.process(&record(i), Explanations::Graded);
                (r.score.to_bits(), r.grade.grade.to_bits())
            })
            .collect();
        let mut first = AnomalyModel::new(config());
        let mut got: Vec<(u64, u64)> = (0..500)
            .map(|i| {
                let r = first.process(&record(i), Explanations::Graded);
                (r.score.to_bits(), r.grade.grade.to_bits())
            })
            .collect();
        let mut restored = AnomalyModel::restore(&first.snapshot()).unwrap();
        got.extend((500..900).map(|i| {
            let r = restored.process(&record(i), Explanations::Graded);
            (r.score.to_bits(), r.grade.grade.to_bits())
        }));
        assert_eq!(got, expected);
        assert!(AnomalyModel::restore(&[1, 0, 3]).is_err());
    }

    #[test]
    fn graded_explanations_cover_exactly_the_graded_records_and_change_nothing_else() {
        let mut explained = AnomalyModel::new(config());
        let mut plain = AnomalyModel::new(config());
        for i in 0..1800 {
            let a = explained.process(&record(i), Explanations::Graded);
            let b = plain.process(&record(i), Explanations::None);
            assert_eq!(a.score.to_bits(), b.score.to_bits(), "record {i}");
            assert_eq!(a.attribution.is_some(), a.grade.grade > 0.0, "record {i}");
            assert!(b.attribution.is_none());
        }
    }
}
