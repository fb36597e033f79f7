//! Typed decode errors: which record, which field, and why.

use std::fmt;

/// Why one field of a record could not be used. The record itself may still be accepted
/// (signals are rejected one by one; see [`crate::DecodeOptions`] for the policy).
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("field `{field}`: {reason}")]
pub struct FieldIssue {
    /// Field name or JSON pointer (`signals.speed_kmh`, `/payload/ts`).
    pub field: String,
    /// Human-readable reason.
    pub reason: String,
}

impl FieldIssue {
    /// Builds an issue for `field`.
    pub fn new(field: impl Into<String>, reason: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            reason: reason.into(),
        }
    }
}

/// What was wrong with a record that had to be rejected as a whole.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum RecordErrorKind {
    /// The bytes are not valid JSON (syntax error, invalid UTF-8, truncated).
    #[error("invalid JSON: {0}")]
    Syntax(String),
    /// Valid JSON, but not an object where a record was expected.
    #[error("expected a JSON object, found {0}")]
    NotAnObject(&'static str),
    /// A required field is absent (or null).
    #[error("missing required field `{0}`")]
    MissingField(String),
    /// A field is present but unusable (wrong type, out of range, unparseable time).
    #[error("{0}")]
    InvalidField(FieldIssue),
    /// Every signal of the record was rejected (or it had none), so nothing is left to process.
    #[error("no usable signals{}", format_issues(.0))]
    NoUsableSignals(Vec<FieldIssue>),
    /// The record is larger than the configured maximum.
    #[error("record of {size} bytes exceeds max_record_bytes ({limit})")]
    TooLarge {
        /// Size seen so far (at least `limit + 1`).
        size: u64,
        /// Configured limit.
        limit: u64,
    },
    /// The payload ended in the middle of a record.
    #[error("truncated record: {0}")]
    Truncated(&'static str),
    /// Bytes between records that are not JSON at all.
    #[error("unexpected bytes outside any JSON value (starting with {0:?})")]
    Garbage(String),
    /// The payload is gzip but could not be decompressed, or decompresses to more than the cap.
    #[error("gzip: {0}")]
    Gzip(String),
}

fn format_issues(issues: &[FieldIssue]) -> String {
    if issues.is_empty() {
        return String::new();
    }
    let listed: Vec<String> = issues.iter().map(ToString::to_string).collect();
    format!(": {}", listed.join("; "))
}

/// A record rejected as a whole, located inside its payload.
#[derive(Debug, Clone, PartialEq)]
pub struct RecordError {
    /// Byte offset of the record's first byte within the (decompressed) payload.
    pub offset: u64,
    /// Length of the record in bytes (as far as it could be delimited).
    pub len: u64,
    /// Zero-based index of the record within the payload.
    pub index: usize,
    /// Vehicle id, when it could be read before the error.
    pub vehicle_id: Option<String>,
    /// What was wrong.
    pub kind: RecordErrorKind,
}

impl fmt::Display for RecordError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "record #{} at byte {}", self.index, self.offset)?;
        if let Some(vehicle) = &self.vehicle_id {
            write!(f, " (vehicle {vehicle})")?;
        }
        write!(f, ": {}", self.kind)
    }
}

impl std::error::Error for RecordError {}
