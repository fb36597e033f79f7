//! Per-vehicle models for fleetstream: threshold rules, AWS IoT Events detector and alarm models,
//! and the random cut forest. No I/O, deterministic, so the edge agent can run the same code on
//! the vehicle gateway.
//!
//! Map of the crate:
//! - [`detector`]: AWS IoT Events detector and alarm models: import, expression language, engine.
//! - [`forest`]: the random cut forest and the per-vehicle anomaly model (scaling, grade, KDA explanations).
//! - [`rules`]: the condition language, rule config, and threshold rules compiled to detectors.

pub mod detector;
pub mod forest;
pub mod rules;
