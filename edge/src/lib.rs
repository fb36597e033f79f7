//! The edge side of fleetstream.
//!
//! Map of the crate:
//! - [`simulator`]: the simulated vehicle fleet used by `fleetstream simulate`, the embedded
//!   default run and the benchmarks.
//!
//! The gateway agent that runs the same rules and models on the vehicle will live here too.

pub mod simulator;

pub use simulator::{AnomalyKind, AnomalyLabel, FleetSimulator, SimulationSpec};
