//! Event-time windowing for fleetstream: generic over the grouping key, no I/O.
//!
//! Map of the crate:
//! - [`watermark`]: per-partition bounded out-of-orderness watermarks.
//! - [`tumbling`]: tumbling windows with watermark-driven close, versions and partial emission.
//! - [`aggregate`]: mergeable aggregators — summary statistics, DDSketch quantiles, histograms,
//!   time-weighted averages, HyperLogLog distinct counts.
//!
//! Every operator's state is serde-serializable so the pipeline can checkpoint it and a restart
//! continues with exactly the output of an uninterrupted run.

pub mod aggregate;
pub mod tumbling;
pub mod watermark;

pub use aggregate::{Accumulator, AggregateResult, AggregateSpec, SummaryStats};
pub use tumbling::{LateValue, TumblingSpec, TumblingWindows, WindowResult};
pub use watermark::WatermarkTracker;
