//! The random cut forest (Guha et al., ICML 2016) that scores each vehicle against its own normal.
//!
//! The parts: [`PointStore`] holds each (shingled) point once for all trees; the trees are
//! stored flat and compact (`trees`, with a box cache for heavy nodes only: `box_cache`);
//! [`RandomCutForest`] does internal shingling, a time-decayed reservoir sample per tree (16-bit
//! keys, one random generator per forest), score-then-update with KDA's warm-up, per-signal
//! attributions by direction that sum to the score, and a versioned snapshot that restores
//! bit-identically. [`AnomalyModel`] wraps a forest with per-signal scaling ([`SignalScaler`])
//! and an adaptive threshold ([`ScoreGrader`]) into a grade; [`kda_explanation`] writes KDA's
//! `ANOMALY_EXPLANATION` JSON.
//!
//! **Score.** A tree scores a point `q` by walking the path `q` would take to a leaf at depth
//! `D`. It starts with `(1 - m / 2M) / (D + log2(m + 1))` when the leaf holds `q` itself with
//! mass `m` (`M` the tree's mass: a value seen often is damped), or `1 / (D + 1)` when it does
//! not. Then, from the leaf's parent up to the root at depth 0, each
//! node `v` at depth `d` has `p = P(a random cut of box(v) ∪ q separates q)`: the sum over
//! dimensions of how far `q` lies outside the box, divided by the sum of the grown box's ranges.
//! The score becomes `(1 - p) · score + p / (d + 1)`. The result is multiplied by
//! `log2(tree mass + 1)`, so an ordinary point scores about 1 and an isolated one much more. This
//! is the displacement-based score that AWS's RCF and KDA's `RANDOM_CUT_FOREST` report; the
//! forest's score is the average over its trees.

mod anomaly_model;
mod box_cache;
mod explanation;
mod point_store;
mod random_cut_forest;
mod sample_weights;
mod score_grader;
mod signal_scaler;
mod tree_audit;
mod tree_delete;
mod tree_insert;
mod tree_score;
mod trees;
mod versioned;

pub use anomaly_model::{
    AnomalyModel, AnomalyModelConfig, AnomalyResult, Explanations, MODEL_SNAPSHOT_VERSION,
};
pub use explanation::kda_explanation;
pub use score_grader::{Grade, GraderConfig, ScoreGrader};
pub use signal_scaler::SignalScaler;

pub use point_store::PointStore;
pub use random_cut_forest::{
    ForestConfig, ForestScore, ForestSnapshotError, RandomCutForest, SignalAttribution,
    FOREST_SNAPSHOT_VERSION,
};
pub use trees::MAX_SAMPLE_SIZE;
