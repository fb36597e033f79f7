//! The NDJSON sink: rollups and alerts as JSON lines, to a file or stdout.

use serde::Serialize;
use telemetry::timestamp::format_rfc3339;

use super::line_file::{LineEncoder, LineFile, LineSink};
use super::SinkError;
use crate::pipeline::output::{Output, Rollup};

#[derive(Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum Line<'a> {
    Rollup(RollupLine<'a>),
    Alert(&'a models::rules::Alert),
}

#[derive(Serialize)]
struct RollupLine<'a> {
    vehicle_id: &'a str,
    fleet: Option<&'a str>,
    signal: &'a str,
    window_start: String,
    window_start_ms: i64,
    window_end_ms: i64,
    count: u64,
    min: f64,
    max: f64,
    mean: f64,
    stddev: Option<f64>,
    first: f64,
    last: f64,
    version: u32,
    is_final: bool,
}

impl<'a> From<&'a Rollup> for RollupLine<'a> {
    fn from(rollup: &'a Rollup) -> Self {
        Self {
            vehicle_id: &rollup.vehicle_id,
            fleet: rollup.fleet.as_deref(),
            signal: &rollup.signal,
            window_start: format_rfc3339(rollup.window_start_ms),
            window_start_ms: rollup.window_start_ms,
            window_end_ms: rollup.window_end_ms,
            count: rollup.stats.count,
            min: rollup.stats.min,
            max: rollup.stats.max,
            mean: rollup.stats.mean,
            stddev: rollup.stats.stddev(),
            first: rollup.stats.first.1,
            last: rollup.stats.last.1,
            version: rollup.version,
            is_final: rollup.is_final,
        }
    }
}

/// Rollups and alerts as JSON lines (`{"type":"rollup",…}`, `{"type":"alert",…}`).
pub struct OutputLines;

impl LineEncoder for OutputLines {
    const NAME: &'static str = "ndjson";

    fn encode(&self, output: &Output, file: &mut LineFile) -> Result<(), SinkError> {
        match output {
            Output::Rollup(rollup) => file.write_line(&Line::Rollup(rollup.into())),
            Output::Alert(alert) => file.write_line(&Line::Alert(alert)),
            Output::DeadLetter(_) => Ok(()),
        }
    }
}

/// The NDJSON sink for rollups and alerts.
pub type NdjsonSink = LineSink<OutputLines>;
