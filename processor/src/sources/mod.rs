//! Sources: where batches of raw records come from.
//!
//! Every source implements [`Source`] and follows the position/acknowledgement contract of
//! [`crate::position`]. Sources here: [`file::FileSource`] (a file or a directory; NDJSON,
//! concatenated JSON, arrays; gzip), [`stdin::StdinSource`] and [`simulator::SimulatorSource`]. The
//! Kinesis and S3-replay sources will implement the same trait.

pub mod file;
pub mod kinesis;
pub mod simulator;
pub mod stdin;

use std::future::Future;
use std::sync::Arc;

use telemetry::Frame;

use crate::config::{Config, SourceKind};
use crate::position::{Offset, Position};

/// A problem with a partition that is not one record's fault (a corrupt gzip file, an
/// unreadable file); it becomes a dead letter and the partition is finished.
#[derive(Debug, Clone, PartialEq)]
pub struct PartitionProblem {
    /// Offset where reading stopped.
    pub offset: u64,
    /// What went wrong.
    pub reason: String,
}

/// A record the source itself set aside (a KPL sub-record that belongs to another shard); it
/// becomes a dead letter.
#[derive(Debug, Clone, PartialEq)]
pub struct SkippedRecord {
    /// The record's id (Kinesis `sequence/sub-sequence`).
    pub record_id: String,
    /// Why it was set aside.
    pub reason: String,
    /// Its payload.
    pub raw: Vec<u8>,
}

/// Operator state of one stream (a Kinesis shard's lane), serialized by the pipeline; sources
/// move it between workers without reading it.
pub type LaneState = Arc<Vec<u8>>;

/// Lane states at a committed checkpoint, by stream.
pub type LaneStates = std::collections::BTreeMap<String, LaneState>;

/// A shard's hash-key range (inclusive bounds of the 128-bit MD5 space).
pub type HashRange = (u128, u128);

/// Where a stream's operator state starts when this worker begins reading it.
#[derive(Debug, Clone, PartialEq)]
pub enum LaneSeed {
    /// Empty: nobody read the stream before (or no state was handed over).
    Fresh,
    /// The state the previous reader stored with the position reading resumes after.
    Resume(LaneState),
    /// A child shard: the final states of its parents, in parent order.
    Inherit(Vec<LaneState>),
}

/// A change in which streams this worker reads, for per-stream operator state.
#[derive(Debug, Clone, PartialEq)]
pub enum LaneEvent {
    /// The stream (its first batch follows) starts here with this state.
    Open {
        /// The shard's hash-key range.
        range: HashRange,
        /// Its state.
        seed: LaneSeed,
    },
    /// Another worker reads the stream now: drop its state without emitting anything.
    Close,
}

/// A batch of raw frames from one partition.
#[derive(Debug, Clone, PartialEq)]
pub struct SourceBatch {
    /// Partition the frames came from (the key of its position: a file, a shard).
    pub partition: Arc<str>,
    /// Event-time stream the frames belong to, for watermarks: a shard, or a whole file source
    /// (whose files are read in name order as one stream, as Firehose names them by time).
    pub stream: Arc<str>,
    /// True when the stream has no more data (its watermark stops holding the pipeline back).
    pub stream_finished: bool,
    /// True when the stream has no data for now (a Kinesis shard caught up with its tip): it
    /// stops holding the watermark back until its next record.
    pub stream_idle: bool,
    /// Delimited raw records, in partition order.
    pub frames: Vec<Frame>,
    /// Raw input after the frames, for the decode stage to delimit (see [`Segment`]).
    pub segment: Option<Segment>,
    /// Position just past the last frame (exclusive); resuming here reads the next batch.
    /// `None` for a batch that moves no position (a heartbeat, a stream marker, a read that
    /// returned nothing).
    pub end: Option<Offset>,
    /// True when this is the partition's last batch.
    pub partition_finished: bool,
    /// Problems that ended the partition early.
    pub problems: Vec<PartitionProblem>,
    /// Per-frame record ids (Kinesis `sequence/sub-sequence`), for dead letters; empty when
    /// a frame's offset locates it.
    pub record_ids: Vec<String>,
    /// Records the source set aside, for the dead-letter output.
    pub skipped: Vec<SkippedRecord>,
    /// Wall-clock time the batch was read. Watermark idleness is measured in this clock, so a
    /// stream whose batches wait behind others' in the pipeline does not look idle.
    pub read_at_ms: i64,
    /// Input consumed for this batch, in the unit of [`Source::size_hint`] (bytes read from disk,
    /// or records for the simulator), for the progress bar.
    pub progress_units: u64,
    /// Per-stream state changes (Kinesis with `handoff`): set on stream markers only.
    pub lane: Option<LaneEvent>,
}

/// Raw input starting on a frame boundary, delimited and decoded by the decode stage rather
/// than by the source, so framing runs on the decode workers and costs no copy per record
/// (see [`telemetry::Decoder::decode_segment_into`]).
#[derive(Debug, Clone, PartialEq)]
pub struct Segment {
    /// Offset of the first byte in the partition.
    pub start: u64,
    /// The bytes (returned to the reader's pool when the decode stage drops them).
    pub bytes: crate::buffers::Pooled<u8>,
    /// How the partition continues after the bytes.
    pub end: telemetry::SegmentEnd,
}

impl SourceBatch {
    /// A batch of `stream` (its own partition) read now, with nothing in it: the base the
    /// sources fill in (`..SourceBatch::empty(stream)`), and as is a heartbeat or marker.
    pub fn empty(stream: Arc<str>) -> Self {
        Self {
            partition: Arc::clone(&stream),
            stream,
            stream_finished: false,
            stream_idle: false,
            frames: Vec::new(),
            segment: None,
            end: None,
            partition_finished: false,
            problems: Vec::new(),
            record_ids: Vec::new(),
            skipped: Vec::new(),
            read_at_ms: crate::pipeline::wall_clock_ms(),
            progress_units: 0,
            lane: None,
        }
    }

    /// This batch as one that moves its partition to `next`, or to the partition's end when
    /// `finished` (the partition is then finished too).
    pub fn ending_at(mut self, finished: bool, next: Offset) -> Self {
        self.end = Some(if finished { Offset::Finished } else { next });
        self.partition_finished = finished;
        self
    }
}

/// Why a source failed (not a record's fault: those become dead letters).
#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    /// Reading failed.
    #[error("reading {what}: {source}")]
    Io {
        /// What was being read.
        what: String,
        /// I/O error.
        source: std::io::Error,
    },
    /// The input does not exist or is not usable.
    #[error("{0}")]
    Unusable(String),
}

/// A source of raw records; see the module and [`crate::position`] documentation.
pub trait Source: Send + 'static {
    /// Human description for logs and the summary ("file w1.ndjson", "simulated fleet of 200").
    fn describe(&self) -> String;

    /// Total amount of input (bytes or records) when finite and known, for the progress bar.
    fn size_hint(&self) -> Option<u64>;

    /// Prepares reading, resuming after `committed` positions (from the last checkpoint).
    fn open(
        &mut self,
        committed: &[Position],
    ) -> impl Future<Output = Result<(), SourceError>> + Send;

    /// The next batch, or `None` at the end of a finite input. Returns within about a second
    /// even when no data arrives (with an empty batch) so checkpoints keep flowing. May be
    /// cancelled only at shutdown, after which only [`Source::commit`] is called.
    fn next_batch(
        &mut self,
    ) -> impl Future<Output = Result<Option<SourceBatch>, SourceError>> + Send;

    /// Called with positions whose derived outputs and state are durable (and already stored in
    /// the state store), and the per-stream operator states at those positions (empty unless
    /// the stage keeps a lane per stream). Sources with their own checkpoint (Kinesis leases)
    /// write it here; a source that moves streams between workers stores the lanes with it.
    /// Sources whose positions live only in the state store (files, stdin, the simulator) keep
    /// this default, which does nothing.
    fn commit(
        &mut self,
        positions: &[Position],
        lanes: &LaneStates,
    ) -> impl Future<Output = Result<(), SourceError>> + Send {
        let _ = (positions, lanes);
        async { Ok(()) }
    }

    /// Called once after the last commit of a run: hand shared resources back (Kinesis
    /// releases its leases so other workers take them at once).
    fn close(&mut self) -> impl Future<Output = Result<(), SourceError>> + Send {
        async { Ok(()) }
    }
}

/// The configured source.
pub enum ConfiguredSource {
    /// `kind = "file"`.
    File(file::FileSource),
    /// `kind = "stdin"`.
    Stdin(stdin::StdinSource),
    /// `kind = "simulator"`.
    Simulator(Box<simulator::SimulatorSource>),
    /// `kind = "kinesis"`.
    Kinesis(Box<kinesis::KinesisSource>),
}

impl ConfiguredSource {
    /// The Kinesis source's counters, for the run summary.
    pub fn kinesis_metrics(&self) -> Option<Arc<kinesis::metrics::KinesisMetrics>> {
        match self {
            ConfiguredSource::Kinesis(source) => Some(source.metrics()),
            _ => None,
        }
    }

    /// Builds the source the config names (no I/O yet).
    pub fn from_config(config: &Config) -> Result<Self, SourceError> {
        let max_record_bytes = config.decode.max_record_bytes;
        Ok(match config.source.kind {
            SourceKind::File => {
                let path =
                    config.source.path.clone().ok_or_else(|| {
                        SourceError::Unusable("source.path is not set".to_owned())
                    })?;
                ConfiguredSource::File(file::FileSource::new(
                    &path,
                    config.source.read_bytes,
                    max_record_bytes,
                    config.decode.max_decompressed_bytes,
                )?)
            }
            SourceKind::Stdin => ConfiguredSource::Stdin(stdin::StdinSource::new(
                config.source.read_bytes,
                max_record_bytes,
            )),
            SourceKind::Simulator => ConfiguredSource::Simulator(Box::new(
                simulator::SimulatorSource::new(config.source.simulator.clone()),
            )),
            SourceKind::Kinesis => {
                ConfiguredSource::Kinesis(Box::new(kinesis::KinesisSource::new(
                    config.source.kinesis.clone(),
                    config.aws.clone(),
                    max_record_bytes,
                    config.time.idle_timeout.std(),
                )))
            }
        })
    }
}

impl Source for ConfiguredSource {
    fn describe(&self) -> String {
        match self {
            ConfiguredSource::File(source) => source.describe(),
            ConfiguredSource::Stdin(source) => source.describe(),
            ConfiguredSource::Simulator(source) => source.describe(),
            ConfiguredSource::Kinesis(source) => source.describe(),
        }
    }

    fn size_hint(&self) -> Option<u64> {
        match self {
            ConfiguredSource::File(source) => source.size_hint(),
            ConfiguredSource::Stdin(source) => source.size_hint(),
            ConfiguredSource::Simulator(source) => source.size_hint(),
            ConfiguredSource::Kinesis(source) => source.size_hint(),
        }
    }

    async fn open(&mut self, committed: &[Position]) -> Result<(), SourceError> {
        match self {
            ConfiguredSource::File(source) => source.open(committed).await,
            ConfiguredSource::Stdin(source) => source.open(committed).await,
            ConfiguredSource::Simulator(source) => source.open(committed).await,
            ConfiguredSource::Kinesis(source) => source.open(committed).await,
        }
    }

    async fn next_batch(&mut self) -> Result<Option<SourceBatch>, SourceError> {
        match self {
            ConfiguredSource::File(source) => source.next_batch().await,
            ConfiguredSource::Stdin(source) => source.next_batch().await,
            ConfiguredSource::Simulator(source) => source.next_batch().await,
            ConfiguredSource::Kinesis(source) => source.next_batch().await,
        }
    }

    async fn commit(
        &mut self,
        positions: &[Position],
        lanes: &LaneStates,
    ) -> Result<(), SourceError> {
        match self {
            ConfiguredSource::Kinesis(source) => source.commit(positions, lanes).await,
            _ => Ok(()),
        }
    }

    async fn close(&mut self) -> Result<(), SourceError> {
        match self {
            ConfiguredSource::Kinesis(source) => source.close().await,
            _ => Ok(()),
        }
    }
}
