//! Event-time windowing for fleetstream: generic over the grouping key, no I/O.
//!
//! Map of the crate:
//! - [`watermark`]: per-partition bounded out-of-orderness watermarks.
//! - [`spec`]: window kinds (tumbling, hopping, session, stagger, sliding).
//! - [`engine`]: the window engine — every kind, allowed lateness with versions, emission modes,
//!   a state cap and snapshots.
//! - [`aggregate`]: mergeable aggregators — summary statistics, DDSketch quantiles, histograms,
//!   time-weighted averages, HyperLogLog distinct counts.
//!
//! Every operator's state is serde-serializable so the pipeline can checkpoint it and a restart
//! continues with exactly the output of an uninterrupted run.

pub mod aggregate;
pub mod engine;
pub mod spec;
pub mod watermark;

pub use aggregate::{Accumulator, AggregateResult, AggregateSpec, SummaryStats};
pub use engine::{
    EmitMode, EngineConfig, EngineSnapshot, IncompatibleSnapshot, KeyHasher, Rejection,
    WindowEngine, WindowOutput,
};
pub use spec::WindowKind;
pub use watermark::WatermarkTracker;
