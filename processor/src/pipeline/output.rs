//! What the operators produce and the sinks write.

use compact_str::CompactString;
use serde::Serialize;
use std::sync::Arc;

use windows::AggregateResult;

use crate::position::RecordLocation;

/// One window result of one rollup and group.
#[derive(Debug, Clone, PartialEq)]
pub struct Rollup {
    /// Rollup name (from `[[rollups]]`).
    pub rollup: Arc<str>,
    /// Canonical group, `dimension=value` pairs joined by commas (`vehicle=veh-1,signal=speed_kmh`).
    pub group_key: String,
    /// Vehicle, when grouped by vehicle.
    pub vehicle_id: Option<CompactString>,
    /// Fleet (grouped by fleet, or the vehicle's last seen fleet).
    pub fleet: Option<CompactString>,
    /// Signal, when grouped by signal or filtered to one.
    pub signal: Option<CompactString>,
    /// Inclusive window start (UTC ms).
    pub window_start_ms: i64,
    /// Exclusive window end (UTC ms).
    pub window_end_ms: i64,
    /// The aggregates.
    pub result: AggregateResult,
    /// Emission version (sinks keep the highest).
    pub version: u32,
    /// False for partial results (early firings, per-update results, shutdown).
    pub is_final: bool,
}

/// Why a record (or part of it) went to the dead-letter output.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum DeadLetterKind {
    /// The whole record was rejected while decoding.
    Rejected,
    /// The record was processed but some fields were dropped.
    FieldsRejected,
    /// The record arrived after a window it belongs to had closed for good.
    Late,
    /// The record would have opened more window state than `max_open_entries` allows.
    StateCap,
    /// The input itself failed (corrupt gzip, read error); the rest of the partition is skipped.
    Input,
}

impl DeadLetterKind {
    /// Snake-case name.
    pub fn as_str(self) -> &'static str {
        match self {
            DeadLetterKind::Rejected => "rejected",
            DeadLetterKind::FieldsRejected => "fields_rejected",
            DeadLetterKind::Late => "late",
            DeadLetterKind::StateCap => "state_cap",
            DeadLetterKind::Input => "input",
        }
    }
}

/// A record, or part of one, that could not be used, with everything needed to replay it.
#[derive(Debug, Clone, PartialEq)]
pub struct DeadLetter {
    /// Where it was read.
    pub location: RecordLocation,
    /// Category.
    pub kind: DeadLetterKind,
    /// Full reason: which record, which field, why.
    pub reason: String,
    /// Rejected fields (for `fields_rejected`).
    pub fields: Vec<String>,
    /// Vehicle, when known.
    pub vehicle_id: Option<String>,
    /// Raw bytes (original payload; for late records the record re-encoded as wide JSON).
    pub raw: Vec<u8>,
}

/// One output of the operators.
#[derive(Debug, Clone, PartialEq)]
pub enum Output {
    /// A window result.
    Rollup(Rollup),
    /// An alert that fired or resolved.
    Alert(models::rules::Alert),
    /// A rejected record or field.
    DeadLetter(DeadLetter),
    /// A detector model's state change or notification.
    Detector(models::detector::DetectorOutput),
    /// A record (or window) scored by a vehicle's anomaly model.
    Anomaly(AnomalyRow),
}

/// One scored record or window of one vehicle's anomaly model.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AnomalyRow {
    /// Model name (`[[anomaly]] name`).
    pub model: Arc<str>,
    /// Vehicle.
    pub vehicle_id: CompactString,
    /// The vehicle's last seen fleet.
    pub fleet: Option<CompactString>,
    /// Event time of the record, or the window start (UTC ms).
    pub time_ms: i64,
    /// Window end for per-window scoring (UTC ms).
    pub window_end_ms: Option<i64>,
    /// The forest's anomaly score (0 while warming up).
    pub score: f64,
    /// Graded score in [0, 1].
    pub grade: f64,
    /// How settled the grading threshold is, in [0, 1].
    pub confidence: f64,
    /// The threshold the score was graded against.
    pub threshold: f64,
    /// True until the vehicle's forest is full: score and grade are 0.
    pub warming_up: bool,
    /// Signals that were missing and imputed.
    pub imputed: u32,
    /// KDA's `ANOMALY_EXPLANATION` JSON, when explanations are on and the forest is warm.
    pub explanation: Option<String>,
    /// Set when the grade reached the model's `alert_grade`: the alert's severity.
    pub alert: Option<models::rules::Severity>,
}

impl AnomalyRow {
    /// One readable line for alert messages.
    pub fn message(&self) -> String {
        let mut text = format!(
            "{}: vehicle {} scored {:.3} (grade {:.2}, threshold {:.3}, confidence {:.2}) at {}",
            self.model,
            self.vehicle_id,
            self.score,
            self.grade,
            self.threshold,
            self.confidence,
            telemetry::timestamp::format_rfc3339(self.time_ms)
        );
        if let Some(explanation) = &self.explanation {
            text.push_str("; explanation ");
            text.push_str(explanation);
        }
        text
    }
}
