//! AWS IoT Events detector and alarm models, run per vehicle: the expression language, model
//! import with a validation report, the event-time detector engine and alarm models.

pub mod alarm;
mod buffer;
pub use buffer::EventTimeBuffer;
pub mod engine;
pub mod expression;
pub mod input;
pub mod model;

pub use alarm::{
    load_alarm_model, AlarmCommand, AlarmEngine, AlarmEngineState, AlarmModel, AlarmState,
};
pub use engine::{DetectorEngine, DetectorEngineState, DetectorOutput, TimerClock};
pub use input::{bind_input, load_input_definition, InputBinding};
pub use model::{load_detector_model, DetectorModel, EvaluationMethod, ValidationReport};

#[cfg(test)]
mod tests;
