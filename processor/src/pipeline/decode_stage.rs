//! Decode stage: raw frames → records and dead letters.

use std::sync::Arc;

use telemetry::{DecodeOptions, Decoder, Frame, Outcome, SegmentNote};
use tokio::sync::mpsc;

use super::batch_letters::BatchLetters;
use super::counters::PipelineCounters;
use super::messages::{DecodedBatch, StageMessage};
use crate::buffers::BufferPool;
use crate::sources::{Segment, SourceBatch};
use telemetry::Record;

/// Decodes with `workers` threads until the input channel closes, keeping the order: message
/// `i` goes to worker `i mod workers` and results are collected in the same rotation, so
/// batches, barriers and end markers leave in exactly the order they arrived.
pub fn run_decode_parallel(
    decoder: Decoder,
    mut inbox: mpsc::Receiver<StageMessage<SourceBatch>>,
    outbox: mpsc::Sender<StageMessage<DecodedBatch>>,
    counters: Arc<PipelineCounters>,
    workers: usize,
) {
    let workers = workers.max(1);
    if workers == 1 {
        run_decode(decoder, inbox, outbox, counters);
        return;
    }
    let mut to_workers = Vec::with_capacity(workers);
    let mut from_workers = Vec::with_capacity(workers);
    let mut handles = Vec::with_capacity(workers);
    for _ in 0..workers {
        let (job_tx, job_rx) = mpsc::channel(2);
        let (done_tx, done_rx) = mpsc::channel(2);
        to_workers.push(job_tx);
        from_workers.push(done_rx);
        let decoder = decoder.clone();
        let counters = Arc::clone(&counters);
        handles.push(std::thread::spawn(move || {
            run_decode(decoder, job_rx, done_tx, counters)
        }));
    }
    let collector = std::thread::spawn(move || {
        let mut next = 0;
        loop {
            let Some(message) = from_workers[next].blocking_recv() else {
                return;
            };
            if outbox.blocking_send(message).is_err() {
                return;
            }
            next = (next + 1) % from_workers.len();
        }
    });
    let mut next = 0;
    while let Some(message) = inbox.blocking_recv() {
        if to_workers[next].blocking_send(message).is_err() {
            break;
        }
        next = (next + 1) % to_workers.len();
    }
    drop(to_workers);
    for handle in handles {
        if handle.join().is_err() {
            tracing::error!("a decode worker panicked");
        }
    }
    if collector.join().is_err() {
        tracing::error!("the decode collector panicked");
    }
}

/// Decodes until the input channel closes (runs on a blocking thread).
pub fn run_decode(
    mut decoder: Decoder,
    mut inbox: mpsc::Receiver<StageMessage<SourceBatch>>,
    outbox: mpsc::Sender<StageMessage<DecodedBatch>>,
    counters: Arc<PipelineCounters>,
) {
    let mut logged = 0;
    // Batches in flight are bounded by the pipeline's channels; a few spares suffice.
    let buffers = BufferPool::new(8);
    while let Some(message) = inbox.blocking_recv() {
        let forwarded = match message {
            StageMessage::Data(batch) => {
                PipelineCounters::add(&counters.progress_units, batch.progress_units);
                decoder.set_arrival_time_ms(super::wall_clock_ms());
                StageMessage::Data(decode_batch(
                    &mut decoder,
                    batch,
                    &counters,
                    &mut logged,
                    &buffers,
                ))
            }
            StageMessage::Barrier(barrier) => StageMessage::Barrier(barrier),
            StageMessage::EndOfInput => StageMessage::EndOfInput,
            StageMessage::Shutdown => StageMessage::Shutdown,
        };
        if outbox.blocking_send(forwarded).is_err() {
            return;
        }
    }
}

fn decode_batch(
    decoder: &mut Decoder,
    batch: SourceBatch,
    counters: &PipelineCounters,
    logged: &mut u64,
    buffers: &Arc<BufferPool<(u64, Record)>>,
) -> DecodedBatch {
    // Pooled vectors keep the room earlier batches grew them to, and the records they held: a
    // piece of a file is decoded over those records in place, reusing their vectors. Records
    // framed one by one (Kinesis, S3) are built fresh, so the old ones are simply dropped.
    let mut records = buffers.take_as_left();
    let mut letters = BatchLetters::new(&batch.partition, &batch.record_ids, counters, logged);
    let mut kept = 0;
    if !batch.frames.is_empty() || batch.segment.is_none() {
        records.clear();
        decode_frames(decoder, &batch.frames, &mut records, &mut letters);
        kept = records.len();
    }
    if let Some(segment) = &batch.segment {
        decode_piece(decoder, segment, &mut records, kept, &mut letters);
    }
    for skipped in batch.skipped {
        letters.skipped(skipped);
    }
    for problem in batch.problems {
        letters.problem(problem);
    }
    let dead_letters = letters.into_letters();
    PipelineCounters::add(&counters.records_decoded, records.len() as u64);
    DecodedBatch {
        stream: batch.stream,
        stream_finished: batch.stream_finished,
        stream_idle: batch.stream_idle,
        partition_finished: batch.partition_finished,
        partition: batch.partition,
        records,
        dead_letters,
        record_ids: batch.record_ids,
        read_at_ms: batch.read_at_ms,
        lane: batch.lane,
    }
}

/// Decodes records framed one by one, appending them to `records`.
fn decode_frames(
    decoder: &Decoder,
    frames: &[Frame],
    records: &mut Vec<(u64, Record)>,
    letters: &mut BatchLetters<'_>,
) {
    records.reserve(frames.len());
    let mut outcomes: Vec<Outcome> = Vec::new();
    for frame in frames {
        decoder.decode_frame(frame, 0, &mut outcomes);
        for outcome in outcomes.drain(..) {
            match outcome {
                Ok(decoded) => {
                    let (record, issues) = (decoded.decoded.record, decoded.decoded.issues);
                    if !issues.is_empty() {
                        let raw = decoded.raw.unwrap_or_default();
                        letters.fields_rejected(decoded.offset, &record, &issues, raw);
                    }
                    records.push((decoded.offset, record));
                }
                Err(rejected) => letters.rejected(*rejected),
            }
        }
    }
}

/// Decodes a piece of a file over the records of `records` after the first `kept`.
fn decode_piece(
    decoder: &mut Decoder,
    segment: &Segment,
    records: &mut Vec<(u64, Record)>,
    kept: usize,
    letters: &mut BatchLetters<'_>,
) {
    let mut notes = Vec::new();
    decoder.decode_segment_into(
        &segment.bytes,
        segment.start,
        segment.end,
        records,
        kept,
        |note| notes.push(note),
    );
    for note in notes {
        match note {
            SegmentNote::Rejected(rejected) => letters.rejected(*rejected),
            SegmentNote::FieldsRejected {
                position,
                issues,
                raw,
            } => {
                if let Some((offset, record)) = records.get(position) {
                    letters.fields_rejected(*offset, record, &issues, raw);
                }
            }
        }
    }
}

/// Decode options from the config; the future bound is relative to the wall clock now.
pub fn decode_options(
    config: &crate::config::DecodeConfig,
    time: &crate::config::TimeConfig,
) -> DecodeOptions {
    let now_ms = super::wall_clock_ms();
    DecodeOptions {
        time_unit: config.time_unit,
        min_event_time_ms: telemetry::timestamp::parse_rfc3339(&config.min_event_time)
            .unwrap_or(telemetry::options::DEFAULT_MIN_EVENT_TIME_MS),
        max_event_time_ms: now_ms.saturating_add(config.max_future_skew.ms()),
        max_abs_signal_value: config.max_abs_signal_value,
        max_record_bytes: config.max_record_bytes,
        max_decompressed_bytes: config.max_decompressed_bytes,
        time_source: time.source,
        future_policy: time.future,
        arrival_time_ms: now_ms,
        max_future_skew_ms: Some(config.max_future_skew.ms()),
    }
}
