//! The NDJSON sink: rollups and alerts as JSON lines, to a file or stdout.

use serde::Serialize;
use telemetry::timestamp::format_rfc3339;

use super::line_file::{LineEncoder, LineFile, LineSink};
use super::SinkError;
use crate::pipeline::output::{Output, Rollup};

#[derive(Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
#[allow(clippy::large_enum_variant)] // short-lived, built per line on the stack
enum Line<'a> {
    Rollup(RollupLine<'a>),
    Alert(&'a models::rules::Alert),
    Detector(&'a models::detector::DetectorOutput),
    Anomaly(&'a crate::pipeline::output::AnomalyRow),
}

#[derive(Serialize)]
struct RollupLine<'a> {
    rollup: &'a str,
    group_key: &'a str,
    vehicle_id: Option<&'a str>,
    fleet: Option<&'a str>,
    signal: Option<&'a str>,
    window_start: String,
    window_start_ms: i64,
    window_end_ms: i64,
    count: u64,
    sum: f64,
    min: f64,
    max: f64,
    mean: f64,
    stddev: Option<f64>,
    first: f64,
    last: f64,
    #[serde(skip_serializing_if = "Option::is_none")]
    rate_per_second: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    time_weighted_mean: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    quantiles: Option<serde_json::Value>,
    #[serde(skip_serializing_if = "<[u64]>::is_empty")]
    histogram: &'a [u64],
    #[serde(skip_serializing_if = "Option::is_none")]
    distinct_count: Option<u64>,
    version: u32,
    is_final: bool,
}

impl<'a> From<&'a Rollup> for RollupLine<'a> {
    fn from(rollup: &'a Rollup) -> Self {
        let result = &rollup.result;
        Self {
            rollup: &rollup.rollup,
            group_key: &rollup.group_key,
            vehicle_id: rollup.vehicle_id.as_deref(),
            fleet: rollup.fleet.as_deref(),
            signal: rollup.signal.as_deref(),
            window_start: format_rfc3339(rollup.window_start_ms),
            window_start_ms: rollup.window_start_ms,
            window_end_ms: rollup.window_end_ms,
            count: result.summary.count,
            sum: result.sum,
            min: result.summary.min,
            max: result.summary.max,
            mean: result.summary.mean,
            stddev: result.stddev,
            first: result.summary.first.1,
            last: result.summary.last.1,
            rate_per_second: result.rate_per_second,
            time_weighted_mean: result.time_weighted_mean,
            quantiles: (!result.quantiles.is_empty()).then(|| {
                serde_json::from_str(&super::sqlite::quantiles_json(&result.quantiles))
                    .unwrap_or_default()
            }),
            histogram: &result.histogram,
            distinct_count: result.distinct,
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
            Output::Detector(event) => file.write_line(&Line::Detector(event)),
            Output::Anomaly(row) => file.write_line(&Line::Anomaly(row)),
            Output::DeadLetter(_) => Ok(()),
        }
    }
}

/// The NDJSON sink for rollups and alerts.
pub type NdjsonSink = LineSink<OutputLines>;
