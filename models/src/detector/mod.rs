//! AWS IoT Events detector models, run per vehicle. So far: the expression language; the model
//! import, state machine, timers and alarm models build on it.

pub mod expression;
