//! AWS IoT Events detector models, run per vehicle: the expression language, model import with a
//! validation report, and the event-time detector engine.

pub mod engine;
pub mod expression;
pub mod model;

pub use engine::{DetectorEngine, DetectorEngineState, DetectorOutput};
pub use model::{load_detector_model, DetectorModel, EvaluationMethod, ValidationReport};

#[cfg(test)]
mod tests;
