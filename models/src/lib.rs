//! Per-vehicle models for fleetstream: threshold rules now; the random cut forest and IoT Events
//! detector models will live here too. No I/O, deterministic, so the edge agent can run the same
//! code on the vehicle gateway.
//!
//! Map of the crate:
//! - [`detector`]: AWS IoT Events detector models (the expression language so far).
//! - [`rules`]: the condition language, rule config, the event-time rule engine and alerts.

pub mod detector;
pub mod rules;
