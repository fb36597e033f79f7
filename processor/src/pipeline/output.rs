//! What the operators produce and the sinks write.

use compact_str::CompactString;
use serde::Serialize;
use windows::SummaryStats;

use crate::position::RecordLocation;

/// One closed (or partial) window of one signal of one vehicle.
#[derive(Debug, Clone, PartialEq)]
pub struct Rollup {
    /// Vehicle.
    pub vehicle_id: CompactString,
    /// Fleet of the vehicle (last seen), when known.
    pub fleet: Option<CompactString>,
    /// Signal name.
    pub signal: CompactString,
    /// Inclusive window start (UTC ms).
    pub window_start_ms: i64,
    /// Exclusive window end (UTC ms).
    pub window_end_ms: i64,
    /// The statistics.
    pub stats: SummaryStats,
    /// Emission version (sinks keep the highest).
    pub version: u32,
    /// False for partial results written at shutdown.
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
    /// The record arrived behind the watermark (its window had closed).
    Late,
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
}
