//! An adaptive threshold on a model's score stream: the anomaly grade and its confidence.
//!
//! A forest's raw score has no fixed scale: it depends on the vehicle, the signals and the
//! parameters, and its distribution has a long right tail. The grader keeps an exponentially
//! weighted mean and deviation of the *logarithm* of the scores it has seen (over about
//! `horizon` scores), where the tail is tamer. Each score is clipped at the statistical threshold
//! `exp(mean + z × deviation)` before it is learned, so a burst of anomalies does not teach the
//! grader to ignore them. The threshold is the larger of that and `min_threshold`. Then:
//! - **grade** = 0 at or below the threshold, else `min(1, (score - threshold) / threshold)`:
//!   a score twice the threshold grades 1;
//! - **confidence** = `1 - exp(-n / horizon)` for `n` scores seen: how settled the threshold is.
//!
//! Warming-up scores (the forest not yet full) grade 0 and teach nothing.

use serde::{Deserialize, Serialize};

/// The grader's parameters.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GraderConfig {
    /// Deviations above the mean score where anomalies start.
    pub z: f64,
    /// Lowest threshold, whatever the statistics say (an ordinary point scores about 1, so the
    /// default 1.5 keeps a quiet vehicle's tiny wobbles from grading).
    pub min_threshold: f64,
    /// Scores remembered (about).
    pub horizon: u64,
}

impl Default for GraderConfig {
    fn default() -> Self {
        Self {
            z: 3.0,
            min_threshold: 1.5,
            horizon: 2560,
        }
    }
}

/// A grade and how far to trust it.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Grade {
    /// 0 for ordinary scores, up to 1 for scores at twice the threshold or more.
    pub grade: f64,
    /// How settled the threshold is, in [0, 1].
    pub confidence: f64,
    /// The threshold the score was graded against.
    pub threshold: f64,
}

/// The adaptive threshold of one model.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ScoreGrader {
    config: GraderConfig,
    count: u64,
    mean: f64,
    variance: f64,
}

impl ScoreGrader {
    /// A grader that has seen nothing.
    pub fn new(config: GraderConfig) -> Self {
        Self {
            config,
            count: 0,
            mean: 0.0,
            variance: 0.0,
        }
    }

    /// The threshold from the statistics alone.
    fn statistical_threshold(&self) -> f64 {
        (self.mean + self.config.z * self.variance.sqrt()).exp()
    }

    /// The current threshold.
    pub fn threshold(&self) -> f64 {
        self.statistical_threshold().max(self.config.min_threshold)
    }

    /// Grades `score`, then learns from it (unless `warming_up`).
    pub fn grade_then_learn(&mut self, score: f64, warming_up: bool) -> Grade {
        let threshold = self.threshold();
        if warming_up || !score.is_finite() {
            return Grade {
                grade: 0.0,
                confidence: 0.0,
                threshold,
            };
        }
        let grade = if score > threshold {
            ((score - threshold) / threshold).min(1.0)
        } else {
            0.0
        };
        let learned = score.min(self.statistical_threshold()).max(1e-9).ln();
        self.count += 1;
        let weight = 1.0 / self.count.min(self.config.horizon.max(1)) as f64;
        let delta = learned - self.mean;
        self.mean += weight * delta;
        self.variance = (1.0 - weight) * (self.variance + weight * delta * delta);
        let confidence = 1.0 - (-(self.count as f64) / self.config.horizon.max(1) as f64).exp();
        Grade {
            grade,
            confidence,
            threshold,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ordinary_scores_grade_zero_and_a_spike_grades_high() {
        let mut grader = ScoreGrader::new(GraderConfig {
            horizon: 500,
            ..GraderConfig::default()
        });
        let mut last = Grade::default();
        for i in 0..2000 {
            let score = 0.9 + 0.1 * (f64::from(i) * 0.7).sin();
            last = grader.grade_then_learn(score, false);
            assert_eq!(last.grade, 0.0, "score {score} at {i}");
        }
        assert!(last.confidence > 0.95);
        let spike = grader.grade_then_learn(3.0, false);
        assert!(spike.grade > 0.9, "{spike:?}");
        let bump = grader.grade_then_learn(1.2, false);
        assert!(bump.grade < 0.25, "a small bump grades low: {bump:?}");
        assert_eq!(grader.grade_then_learn(9.0, true).grade, 0.0, "warming up");
    }
}
