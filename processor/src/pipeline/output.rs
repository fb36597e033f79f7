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
}
