//! `[[anomaly]]`: a random cut forest per vehicle over a set of signals (KDA's
//! `RANDOM_CUT_FOREST_WITH_EXPLANATION`, one model per vehicle instead of one per stream).

use models::forest::{AnomalyModelConfig, Explanations, ForestConfig, GraderConfig};
use models::rules::Severity;
use serde::{Deserialize, Serialize};

use super::DurationText;

/// What one scored row stands for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AnomalyOutputMode {
    /// Every record carrying at least one of the signals is scored (missing ones imputed).
    #[default]
    Record,
    /// Per vehicle, the mean of each signal over a tumbling `window` is scored once the window
    /// closes (for long-format input, where a record carries one signal).
    Window,
}

/// `[[anomaly]]` in the config file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AnomalyConfig {
    /// Model name (the `model` column of `anomalies`, the `rule` of its alerts).
    pub name: String,
    /// Signals scored together, in this order (1 to 30).
    pub signals: Vec<String>,
    /// Trees per forest (KDA's numberOfTrees; per-vehicle default 30).
    #[serde(default = "default_trees")]
    pub trees: usize,
    /// Points each tree samples (KDA's subSampleSize; per-vehicle default 64).
    #[serde(default = "default_sample_size")]
    pub sample_size: usize,
    /// Consecutive inputs per point (KDA's shingleSize; default 4).
    #[serde(default = "default_shingle_size")]
    pub shingle_size: usize,
    /// Sampling-weight decay per input (default 1 / (10 × sample_size); KDA's timeDecay N is
    /// 1/N).
    #[serde(default)]
    pub time_decay: Option<f64>,
    /// Scale each signal by its running mean and deviation (default true).
    #[serde(default = "default_true")]
    pub normalize: bool,
    /// Deviations above the mean (log) score where grades start (default 3).
    #[serde(default = "default_z")]
    pub z: f64,
    /// Lowest grading threshold on the raw score (default 1.5).
    #[serde(default = "default_min_threshold")]
    pub min_threshold: f64,
    /// Alert when the grade reaches this (default 0.5; above 1 never alerts).
    #[serde(default = "default_alert_grade")]
    pub alert_grade: f64,
    /// Severity of its alerts (default warning).
    #[serde(default = "default_severity")]
    pub severity: Severity,
    /// Score every record or per-window means.
    #[serde(default)]
    pub output: AnomalyOutputMode,
    /// Window length for `output = "window"` (default 1m).
    #[serde(default = "default_window")]
    pub window: DurationText,
    /// Which rows carry KDA's `ANOMALY_EXPLANATION` JSON: `graded` (default: rows graded above
    /// 0, every alert among them), `all` (every scored row, at about twice the cost) or `none`.
    #[serde(default)]
    pub explain: Explanations,
    /// Write only rows graded at least this (default 0: every scored row).
    #[serde(default)]
    pub write_min_grade: f64,
    /// Models kept in memory; beyond, the least recently active are saved to the state store
    /// and reloaded when their vehicle returns (default 10000).
    #[serde(default = "default_max_models")]
    pub max_models: usize,
    /// A model whose vehicle sent nothing for this long (event time) leaves memory too
    /// (default 30m).
    #[serde(default = "default_idle_after")]
    pub idle_after: DurationText,
    /// Base seed; each vehicle's forest is seeded from it and the vehicle id.
    #[serde(default)]
    pub seed: u64,
}

fn default_trees() -> usize {
    30
}
fn default_sample_size() -> usize {
    64
}
fn default_shingle_size() -> usize {
    4
}
fn default_true() -> bool {
    true
}
fn default_z() -> f64 {
    3.0
}
fn default_min_threshold() -> f64 {
    1.5
}
fn default_alert_grade() -> f64 {
    0.5
}
fn default_severity() -> Severity {
    Severity::Warning
}
fn default_window() -> DurationText {
    DurationText(60_000)
}
fn default_max_models() -> usize {
    10_000
}
fn default_idle_after() -> DurationText {
    DurationText(30 * 60_000)
}

impl AnomalyConfig {
    /// The model of one vehicle, seeded from `seed` and `vehicle`.
    pub fn model_config(&self, vehicle: &str) -> AnomalyModelConfig {
        AnomalyModelConfig {
            forest: ForestConfig {
                input_dimensions: self.signals.len(),
                num_trees: self.trees,
                sample_size: self.sample_size,
                shingle_size: self.shingle_size,
                time_decay: self
                    .time_decay
                    .unwrap_or(1.0 / (10.0 * self.sample_size.max(1) as f64)),
                seed: self.seed ^ stable_hash(vehicle),
            },
            normalize: self.normalize,
            grader: GraderConfig {
                z: self.z,
                min_threshold: self.min_threshold,
                horizon: 10 * self.sample_size as u64,
            },
        }
    }

    /// Problems with this entry as (key, message) pairs, keys relative to the entry.
    pub fn problems(&self) -> Vec<(&'static str, String)> {
        let mut problems = Vec::new();
        if self.name.trim().is_empty() {
            problems.push(("name", "must not be empty".to_owned()));
        }
        let mut seen = std::collections::BTreeSet::new();
        for signal in &self.signals {
            if !seen.insert(signal.as_str()) {
                problems.push(("signals", format!("{signal:?} is listed twice")));
            }
        }
        for problem in self.model_config("").forest.problems() {
            let key = if problem.starts_with("input_dimensions") {
                "signals"
            } else if problem.starts_with("num_trees") {
                "trees"
            } else if problem.starts_with("sample_size") {
                "sample_size"
            } else if problem.starts_with("shingle_size") {
                "shingle_size"
            } else {
                "time_decay"
            };
            problems.push((
                key,
                problem.replace("input_dimensions", "the number of signals"),
            ));
        }
        if !(self.z.is_finite() && self.z >= 0.0) {
            problems.push(("z", "must be a finite number ≥ 0".to_owned()));
        }
        if !(self.min_threshold.is_finite() && self.min_threshold > 0.0) {
            problems.push(("min_threshold", "must be a finite number > 0".to_owned()));
        }
        if !self.alert_grade.is_finite() || self.alert_grade <= 0.0 {
            problems.push(("alert_grade", "must be a number > 0".to_owned()));
        }
        if self.output == AnomalyOutputMode::Window && self.window.ms() < 1 {
            problems.push(("window", "must be at least 1ms".to_owned()));
        }
        if self.max_models == 0 {
            problems.push(("max_models", "must be at least 1".to_owned()));
        }
        problems
    }
}

/// FNV-1a over the bytes: a seed that is the same on every machine and every release.
fn stable_hash(text: &str) -> u64 {
    text.bytes().fold(0xcbf2_9ce4_8422_2325, |hash, byte| {
        (hash ^ u64::from(byte)).wrapping_mul(0x0100_0000_01b3)
    })
}
