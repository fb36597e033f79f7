//! Telemetry records and their codecs; no I/O.
//!
//! Map of the crate:
//! - [`record`]: the canonical [`Record`] (vehicle id, event time, fleet, attributes, signals).
//! - [`attributes`]: a record's attributes, kept as JSON text until something reads them.
//! - [`frame`]: splits byte streams into top-level JSON values without parsing them.
//! - [`gzip`]: gzip detection and capped multi-member decompression.
//! - [`timestamp`]: epoch s/ms/µs/ns and RFC 3339 parsing, with the unit inference rule.
//! - [`options`]: formats ([`Format`]: wide, long, mapping) and decode limits/policy.
//! - [`decoder`]: payload/frame → records or typed, located errors.
//! - [`encode`]: writes records back as wide JSON.
//! - [`error`]: the typed errors.
//! - [`text`]: fast equality of short texts (names, ids) for hot paths.
//!
//! Decoding never panics on input: every problem is a [`RecordError`] (the whole record is
//! rejected) or a [`FieldIssue`] (one field is dropped, the record goes on).

pub mod attributes;
pub mod decoder;
pub mod encode;
pub mod error;
pub mod frame;
pub mod gzip;
pub mod options;
pub mod record;
pub mod text;
pub mod timestamp;

mod builder;
mod destination;
mod entries;
mod long;
mod mapping;
mod scalar;
mod scan;
mod spares;
mod wide;
mod wide_fast;

pub use attributes::Attributes;
pub use builder::Decoded;
pub use decoder::{DecodedRecord, Decoder, Outcome, RejectedRecord};
pub use destination::SegmentNote;
pub use error::{FieldIssue, RecordError, RecordErrorKind};
pub use frame::{last_record_line_start, Frame, FrameKind, FrameScanner, SegmentEnd};
pub use options::{DecodeOptions, FieldMapping, Format, FuturePolicy, LongFields, TimeSource};
pub use record::{EpochMillis, Record, Signal};
pub use timestamp::TimeUnit;
