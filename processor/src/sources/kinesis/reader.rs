//! Reading one shard: `GetShardIterator` from the lease's checkpoint, then a `GetRecords` loop
//! within the shard's read limits (5 calls/s, 2 MiB/s), with backoff on throttling, a new
//! iterator when one expires, KPL de-aggregation, and a final batch at the end of a closed shard.

use std::sync::Arc;
use std::time::{Duration, Instant};

use aws_sdk_kinesis::primitives::DateTime;
use aws_sdk_kinesis::types::ShardIteratorType;
use aws_sdk_kinesis::Client;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::calls::{classify, with_retries, CallError};
use super::convert::RecordConverter;
use super::metrics::KinesisMetrics;
use crate::config::KinesisSourceConfig;
use crate::position::Offset;
use crate::sources::{SourceBatch, SourceError};

/// Kinesis allows 5 `GetRecords` calls per second per shard.
const MIN_CALL_SPACING: Duration = Duration::from_millis(200);
/// …and 2 MiB per second per shard.
const READ_BYTES_PER_SECOND: f64 = 2.0 * 1024.0 * 1024.0;

/// An empty batch that moves no position, naming a shard's event-time stream: a new one the
/// watermark waits for, or (`finished`) one that stops holding it; with an empty name, a
/// heartbeat.
pub fn stream_marker(shard: &str, finished: bool) -> SourceBatch {
    SourceBatch {
        stream_finished: finished,
        ..SourceBatch::empty(Arc::from(shard))
    }
}

/// Where a reader starts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StartAt {
    /// The oldest record.
    TrimHorizon,
    /// After the newest record.
    Latest,
    /// At a time (milliseconds since the epoch).
    AtTimestamp(i64),
    /// After a fully processed record.
    After(String),
    /// At an aggregated record, skipping its sub-records up to and including `sub`.
    AtSkipping {
        /// Sequence number of the aggregate.
        sequence_number: String,
        /// Last processed sub-record.
        sub: u64,
    },
}

impl StartAt {
    /// Where to resume after the record at `offset` was handed over.
    pub fn after(offset: &Offset) -> Option<Self> {
        match offset {
            Offset::Sequence {
                sequence_number,
                sub_sequence_number: 0,
            } => Some(StartAt::After(sequence_number.clone())),
            Offset::Sequence {
                sequence_number,
                sub_sequence_number,
            } => Some(StartAt::AtSkipping {
                sequence_number: sequence_number.clone(),
                sub: *sub_sequence_number,
            }),
            _ => None,
        }
    }
}

/// One shard's reader task.
pub struct ShardReader {
    /// Kinesis client.
    pub client: Client,
    /// Source settings.
    pub config: Arc<KinesisSourceConfig>,
    /// Counters.
    pub metrics: Arc<KinesisMetrics>,
    /// Shard id.
    pub shard: Arc<str>,
    /// The shard's hash-key range: KPL sub-records outside it are dropped.
    pub hash_key_range: Option<(u128, u128)>,
    /// Largest record (or value inside a record) accepted.
    pub max_record_bytes: usize,
    /// Where batches go (bounded: a slow pipeline slows reading).
    pub outbox: mpsc::Sender<Result<SourceBatch, SourceError>>,
    /// Cancelled when the lease is lost or the run ends.
    pub stop: CancellationToken,
    /// A shard caught up with its tip this long is reported idle; a closed shard stops
    /// holding the watermark this long after its end if no child took its place.
    pub idle_after: Duration,
}

impl ShardReader {
    /// Reads from `start` until the shard ends, the lease is lost or a call fails for good.
    pub async fn run(self, start: StartAt) {
        let shard = Arc::clone(&self.shard);
        if let Err(err) = self.read(start).await {
            tracing::error!(shard = %shard, "shard reader failed: {err}");
        }
    }

    async fn read(&self, start: StartAt) -> Result<(), CallError> {
        let mut position = start;
        let mut iterator = self.iterator(&position).await?;
        let mut next_call = Instant::now();
        let mut backoff_after_expiry = false;
        let mut caught_up_since: Option<Instant> = None;
        loop {
            tokio::select! {
                () = self.stop.cancelled() => return Ok(()),
                () = tokio::time::sleep_until(next_call.into()) => {}
            }
            let call_started = Instant::now();
            let response =
                with_retries(&self.config.retry, "GetRecords", &self.metrics, || async {
                    self.client
                        .get_records()
                        .shard_iterator(&iterator)
                        .limit(self.config.max_records)
                        .send()
                        .await
                        .map_err(classify)
                })
                .await;
            self.metrics.add_get_records_calls(1);
            let response = match response {
                Ok(response) => response,
                Err(CallError::ExpiredIterator) => {
                    self.metrics.add_expired_iterators(1);
                    tracing::info!(shard = %self.shard, "shard iterator expired; getting a new one");
                    if backoff_after_expiry {
                        tokio::time::sleep(MIN_CALL_SPACING).await;
                    }
                    backoff_after_expiry = true;
                    iterator = self.iterator(&position).await?;
                    continue;
                }
                Err(err) => {
                    let _ = self
                        .outbox
                        .send(Err(SourceError::Unusable(format!(
                            "reading shard {}: {err}",
                            self.shard
                        ))))
                        .await;
                    return Err(err);
                }
            };
            backoff_after_expiry = false;
            let behind = response.millis_behind_latest().unwrap_or(0);
            self.metrics.set_millis_behind(&self.shard, behind);
            let converted = RecordConverter {
                shard: &self.shard,
                hash_key_range: self.hash_key_range,
                max_record_bytes: self.max_record_bytes,
                metrics: &self.metrics,
            }
            .convert(
                response
                    .records()
                    .iter()
                    .map(|r| (r.sequence_number(), r.data().as_ref())),
                &position,
            );
            self.metrics.add_records(response.records().len() as u64);
            self.metrics.add_bytes(converted.bytes);
            let closed = response.next_shard_iterator().is_none();
            if let Some((sequence_number, sub)) = &converted.last {
                position = if *sub > 0 {
                    StartAt::AtSkipping {
                        sequence_number: sequence_number.clone(),
                        sub: *sub,
                    }
                } else {
                    StartAt::After(sequence_number.clone())
                };
            }
            let end = match (&converted.last, closed) {
                (_, true) => Some(Offset::Finished),
                (Some((sequence_number, sub)), false) => Some(Offset::Sequence {
                    sequence_number: sequence_number.clone(),
                    sub_sequence_number: *sub,
                }),
                (None, false) => None,
            };
            let idle = if response.records().is_empty() && behind == 0 && !closed {
                let since = *caught_up_since.get_or_insert(call_started);
                since.elapsed() >= self.idle_after
            } else {
                caught_up_since = None;
                false
            };
            // A closed shard's event time lives on in its children: it keeps holding the
            // watermark until they are announced (or it goes idle), so their first records are
            // not late because sibling shards ran ahead meanwhile (`stream_finished` stays false).
            let batch = SourceBatch {
                stream_idle: idle,
                frames: converted.frames,
                // `None` when nothing was read: a heartbeat that moves no position.
                end,
                partition_finished: closed,
                record_ids: converted.record_ids,
                skipped: converted.skipped,
                progress_units: converted.bytes,
                ..SourceBatch::empty(Arc::clone(&self.shard))
            };
            tokio::select! {
                () = self.stop.cancelled() => return Ok(()),
                sent = self.outbox.send(Ok(batch)) => if sent.is_err() { return Ok(()) },
            }
            if closed {
                tracing::info!(shard = %self.shard, "shard end reached");
                // Normally a child is announced in this shard's place first (then this is a
                // no-op); if another worker took the children, stop holding after a while.
                let outbox = self.outbox.clone();
                let marker = stream_marker(&self.shard, true);
                let after = self.idle_after;
                tokio::spawn(async move {
                    tokio::time::sleep(after).await;
                    let _ = outbox.send(Ok(marker)).await;
                });
                return Ok(());
            }
            iterator = response
                .next_shard_iterator()
                .unwrap_or_default()
                .to_owned();
            // Stay within 5 calls/s and 2 MiB/s; sleep longer only when caught up.
            let byte_spacing =
                Duration::from_secs_f64(converted.bytes as f64 / READ_BYTES_PER_SECOND);
            let mut spacing = MIN_CALL_SPACING.max(byte_spacing);
            if response.records().is_empty() && behind == 0 {
                spacing = spacing.max(self.config.idle_time_between_reads.std());
            }
            next_call = call_started + spacing;
        }
    }

    async fn iterator(&self, position: &StartAt) -> Result<String, CallError> {
        let config = &self.config;
        let output = with_retries(&config.retry, "GetShardIterator", &self.metrics, || {
            let request = self
                .client
                .get_shard_iterator()
                .stream_name(&config.stream_name)
                .shard_id(self.shard.as_ref());
            let request = match position {
                StartAt::TrimHorizon => request.shard_iterator_type(ShardIteratorType::TrimHorizon),
                StartAt::Latest => request.shard_iterator_type(ShardIteratorType::Latest),
                StartAt::AtTimestamp(ms) => request
                    .shard_iterator_type(ShardIteratorType::AtTimestamp)
                    .timestamp(DateTime::from_millis(*ms)),
                StartAt::After(sequence) => request
                    .shard_iterator_type(ShardIteratorType::AfterSequenceNumber)
                    .starting_sequence_number(sequence),
                StartAt::AtSkipping {
                    sequence_number, ..
                } => request
                    .shard_iterator_type(ShardIteratorType::AtSequenceNumber)
                    .starting_sequence_number(sequence_number),
            };
            async move { request.send().await.map_err(classify) }
        })
        .await?;
        output
            .shard_iterator()
            .map(str::to_owned)
            .ok_or_else(|| CallError::Fatal(format!("no shard iterator for {}", self.shard)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resume_points_follow_sub_sequence_numbers() {
        let plain = Offset::Sequence {
            sequence_number: "42".to_owned(),
            sub_sequence_number: 0,
        };
        assert_eq!(
            StartAt::after(&plain),
            Some(StartAt::After("42".to_owned()))
        );
        let aggregate = Offset::Sequence {
            sequence_number: "43".to_owned(),
            sub_sequence_number: 4,
        };
        assert_eq!(
            StartAt::after(&aggregate),
            Some(StartAt::AtSkipping {
                sequence_number: "43".to_owned(),
                sub: 4
            })
        );
        assert_eq!(StartAt::after(&Offset::Finished), None);
    }
}
