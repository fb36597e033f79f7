//! Threshold rules: `signal op value for duration`, with an optional clear condition.

pub mod alert;
pub mod compile;
pub mod condition;
pub mod engine;
pub mod rule;

pub use alert::{Alert, AlertStatus, TriggerValues};
pub use condition::{parse_condition, parse_duration, Comparison, Condition, ParseError};
pub use engine::{RuleEngine, RuleEngineState};
pub use rule::{RuleSpec, Severity, ThresholdRule};

#[cfg(test)]
mod tests;
