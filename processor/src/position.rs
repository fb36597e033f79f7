//! The position/acknowledgement contract shared by every source.
//!
//! Every batch a source emits carries the partition it came from and the [`Offset`] *just past*
//! its last byte/record (`end` is exclusive: resuming at `end` reads the next batch). The
//! pipeline commits a position only when everything derived from every batch up to it — rollups,
//! alerts, dead letters, and the operator state that will produce later outputs — has been
//! durably written:
//!
//! 1. the source emits batches, and now and then a [`crate::pipeline::Barrier`] carrying the latest
//!    end position of each partition;
//! 2. each stateful stage snapshots its state when the barrier reaches it, then forwards it;
//! 3. each sink makes everything it received before the barrier durable and acknowledges it;
//! 4. once every sink has acknowledged, the committer stores the positions and the snapshots in
//!    one transaction of the state store, and only then calls [`crate::sources::Source::commit`]
//!    (Kinesis writes its lease-table checkpoint there; file sources need nothing more).
//!
//! After a crash, a restart restores the last committed checkpoint and re-reads from its
//! positions. Outputs written after that checkpoint are written again with the same keys and
//! versions, which the sinks absorb (SQLite upserts; NDJSON files are truncated to the length
//! they had at the checkpoint), so the final output equals that of an uninterrupted run.

use std::fmt;

use serde::{Deserialize, Serialize};

/// Where a partition's reading stands.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Offset {
    /// Byte offset into a (decompressed) file or object; exclusive end.
    Bytes(u64),
    /// Number of records already produced (simulator); exclusive end.
    Records(u64),
    /// Kinesis sequence number and KPL sub-sequence number of the last record included.
    Sequence {
        /// Kinesis sequence number (decimal string, up to 128 bits).
        sequence_number: String,
        /// Index of the last included sub-record of an aggregated record.
        sub_sequence_number: u64,
    },
    /// The partition is fully read (end of file, closed shard).
    Finished,
}

/// A partition and its offset.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Position {
    /// Partition name: a file path, a shard id, `simulator:<spec>`.
    pub partition: String,
    /// How far the partition has been read.
    pub offset: Offset,
}

impl fmt::Display for Offset {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Offset::Bytes(bytes) => write!(f, "byte {bytes}"),
            Offset::Records(records) => write!(f, "record {records}"),
            Offset::Sequence {
                sequence_number,
                sub_sequence_number,
            } => write!(f, "sequence {sequence_number}/{sub_sequence_number}"),
            Offset::Finished => f.write_str("end"),
        }
    }
}

impl fmt::Display for Position {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} @ {}", self.partition, self.offset)
    }
}

/// Where one record was read from, for dead letters and error messages (`w1.ndjson:1834`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecordLocation {
    /// Partition the record came from.
    pub partition: String,
    /// Offset of the record's first byte (or its index, for record-addressed partitions).
    pub offset: u64,
    /// The record's id where offsets are not how it is found again (Kinesis: sequence
    /// number/sub-sequence number).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub record_id: Option<String>,
}

impl fmt::Display for RecordLocation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.record_id {
            Some(id) => write!(f, "{}:{id}", self.partition),
            None => write!(f, "{}:{}", self.partition, self.offset),
        }
    }
}
