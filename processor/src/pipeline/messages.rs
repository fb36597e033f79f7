//! Messages between pipeline stages. Data and barriers share one ordered channel per hop, so a
//! barrier always follows every batch that preceded it.

use std::sync::Arc;

use telemetry::Record;

use crate::pipeline::output::DeadLetter;
use crate::position::Position;

/// A checkpoint barrier: everything before it belongs to checkpoint `id`.
#[derive(Debug, Clone, PartialEq)]
pub struct Barrier {
    /// Checkpoint number.
    pub id: u64,
    /// Latest end position of every partition, as of this barrier.
    pub positions: Vec<Position>,
}

/// Control and data flowing down the pipeline.
#[derive(Debug, Clone, PartialEq)]
pub enum StageMessage<T> {
    /// A batch of data.
    Data(T),
    /// Snapshot state and make outputs durable (see [`crate::position`]).
    Barrier(Barrier),
    /// The input is exhausted: close every window (watermark to the end of time).
    EndOfInput,
    /// A shutdown was requested: handle open windows as configured; a final barrier follows.
    Shutdown,
}

/// Decoded records of one source batch.
#[derive(Debug, Clone, PartialEq)]
pub struct DecodedBatch {
    /// Event-time stream the records belong to.
    pub stream: Arc<str>,
    /// True when the stream has no more data.
    pub stream_finished: bool,
    /// True when the stream has no data for now.
    pub stream_idle: bool,
    /// True when this is the partition's last batch (a Kinesis shard's end).
    pub partition_finished: bool,
    /// Partition, for the location of late records.
    pub partition: Arc<str>,
    /// Usable records with their offset in the partition, in partition order (the vector goes
    /// back to the decode stage's pool when the batch is dropped).
    pub records: crate::buffers::Pooled<(u64, Record)>,
    /// Rejected records and fields.
    pub dead_letters: Vec<DeadLetter>,
    /// When the source read the batch (see [`crate::sources::SourceBatch::read_at_ms`]).
    pub read_at_ms: i64,
    /// Record ids by offset (see [`crate::sources::SourceBatch::record_ids`]).
    pub record_ids: Vec<String>,
    /// Per-stream state change (see [`crate::sources::SourceBatch::lane`]).
    pub lane: Option<crate::sources::LaneEvent>,
}
