//! Turning the records of one `GetRecords` call into pipeline frames: KPL aggregates unpacked,
//! sub-records already processed skipped, sub-records of another shard set aside, payloads split
//! into JSON values, each frame named by its `sequence/sub-sequence` id. Pure (no I/O), so its
//! cost per record is benchmarked on its own.

use telemetry::{Frame, FrameScanner};

use super::kpl::{self, Unpacked};
use super::metrics::KinesisMetrics;
use super::reader::StartAt;
use crate::sources::SkippedRecord;

/// What `GetRecords` gave, turned into frames.
#[derive(Debug, Default)]
pub struct Converted {
    /// Frames for the decoder; a frame's offset is its index here.
    pub frames: Vec<Frame>,
    /// The Kinesis record id of each frame.
    pub record_ids: Vec<String>,
    /// Sub-records set aside (dead letters).
    pub skipped: Vec<SkippedRecord>,
    /// Sequence number and last sub-sequence number of the last record.
    pub last: Option<(String, u64)>,
    /// Payload bytes.
    pub bytes: u64,
}

/// Converts the records of one shard.
pub struct RecordConverter<'a> {
    /// Shard id (for reasons and logs).
    pub shard: &'a str,
    /// The shard's hash-key range.
    pub hash_key_range: Option<(u128, u128)>,
    /// Largest value accepted.
    pub max_record_bytes: usize,
    /// Counters.
    pub metrics: &'a KinesisMetrics,
}

impl RecordConverter<'_> {
    /// Unpacks KPL aggregates, drops what the position says was already processed and what lies
    /// outside the shard's hash range, and splits payloads into frames.
    pub fn convert<'r>(
        &self,
        records: impl Iterator<Item = (&'r str, &'r [u8])>,
        position: &StartAt,
    ) -> Converted {
        let mut converted = Converted::default();
        for (sequence, data) in records {
            converted.bytes += data.len() as u64;
            let skip_through = match position {
                StartAt::AtSkipping {
                    sequence_number,
                    sub,
                } if sequence_number == sequence => Some(*sub),
                _ => None,
            };
            match kpl::unpack(data) {
                Unpacked::Aggregate(subs) => {
                    self.metrics.add_aggregates(1);
                    self.metrics.add_sub_records(subs.len() as u64);
                    let last_sub = subs.len().saturating_sub(1) as u64;
                    for (index, sub) in subs.into_iter().enumerate() {
                        let index = index as u64;
                        if skip_through.is_some_and(|through| index <= through) {
                            continue;
                        }
                        if let Some((low, high)) = self.hash_key_range {
                            let hash = sub.hash_key();
                            if hash < low || hash > high {
                                // The producer's shard map was stale (a reshard): this user
                                // record belongs to another shard's range.
                                self.metrics.add_sub_records_outside_shard(1);
                                converted.skipped.push(SkippedRecord {
                                    record_id: format!("{sequence}/{index}"),
                                    reason: format!(
                                        "KPL sub-record with hash key {hash} outside the hash-key range {low}–{high} of shard {}",
                                        self.shard
                                    ),
                                    raw: sub.data,
                                });
                                continue;
                            }
                        }
                        self.push_payload(
                            &mut converted,
                            &sub.data,
                            &format!("{sequence}/{index}"),
                        );
                    }
                    converted.last = Some((sequence.to_owned(), last_sub));
                }
                Unpacked::Plain(damage) => {
                    let whole = damage.is_some();
                    if let Some(reason) = damage {
                        self.metrics.add_corrupt_aggregates(1);
                        tracing::warn!(shard = %self.shard, sequence, %reason, "read as a plain record");
                    }
                    if skip_through.is_none() {
                        if whole {
                            // Binary, not a run of JSON values: one record, one dead letter.
                            self.push_frame(&mut converted, data, sequence);
                        } else {
                            self.push_payload(&mut converted, data, sequence);
                        }
                    }
                    converted.last = Some((sequence.to_owned(), 0));
                }
            }
        }
        converted
    }

    fn push_frame(&self, converted: &mut Converted, payload: &[u8], id: &str) {
        let index = converted.frames.len() as u64;
        converted.frames.push(Frame {
            start: index,
            end: index + 1,
            kind: telemetry::FrameKind::Value,
            bytes: payload[..payload.len().min(self.max_record_bytes)].to_vec(),
        });
        converted.record_ids.push(id.to_owned());
    }

    fn push_payload(&self, converted: &mut Converted, payload: &[u8], id: &str) {
        for mut frame in FrameScanner::split(payload, self.max_record_bytes) {
            // A frame's offset is its index in the batch; its id names the Kinesis record.
            let index = converted.frames.len() as u64;
            frame.start = index;
            frame.end = index + 1;
            converted.frames.push(frame);
            converted.record_ids.push(id.to_owned());
        }
    }
}
