//! The Kinesis data stream source, sharing shards between workers through a KCL-compatible
//! DynamoDB lease table.
//!
//! ```text
//!             ┌──────────── coordinator (renew · take/balance · shard sync · checkpoints) ──┐
//!  DynamoDB ◀─┤                                                                              │
//!             └─ starts/stops ─▶ shard reader × held leases ──batches──▶ next_batch ──▶ pipeline
//!  Kinesis  ◀──────────────────── GetShardIterator / GetRecords ◀──┘
//! ```
//!
//! - `lease`, `lease_table`: the table's items and conditional writes.
//! - `shards`, `balance`: which leases exist and which one worker takes (pure logic).
//! - `coordinator`: the lease lifecycle of this worker.
//! - `reader`: one shard's `GetRecords` loop; `kpl`: aggregated records.
//! - `calls`, `metrics`: retries and counters.
//!
//! Positions follow [`crate::position`]: a batch's end is the sequence/sub-sequence number of its
//! last record (`Finished` at a shard's end); [`Source::commit`] receives positions only once
//! everything derived from them is durable, and only then does the lease table's checkpoint
//! move (at most every `checkpoint_interval`, at once for `SHARD_END`, and at shutdown).

pub mod balance;
pub mod calls;
pub mod convert;
pub mod coordinator;
pub mod handoff;
pub mod kpl;
pub mod lag;
pub mod lease;
pub mod lease_table;
pub mod metrics;
pub mod reader;
pub mod record_counts;
pub mod shards;

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::config::{AwsConfig, KinesisSourceConfig};
use crate::position::Position;
use crate::sources::{LaneStates, Source, SourceBatch, SourceError};
use coordinator::{CommitRequest, Coordinator, Shared};
use handoff::HandoffStore;
use lease_table::LeaseTable;
use metrics::KinesisMetrics;

/// How long `next_batch` waits before returning an empty batch.
const IDLE_RETURN: Duration = Duration::from_secs(1);
/// How often the coordinator looks for due work.
const TICK: Duration = Duration::from_millis(100);
/// Longest a shutdown waits for the last lease checkpoints and releases.
const RELEASE_BUDGET: Duration = Duration::from_secs(5);

/// The Kinesis source.
pub struct KinesisSource {
    config: Arc<KinesisSourceConfig>,
    aws: AwsConfig,
    max_record_bytes: usize,
    idle_after: Duration,
    worker_id: String,
    shared: Shared,
    inbox: Option<mpsc::Receiver<Result<SourceBatch, SourceError>>>,
    coordinator: Option<Arc<tokio::sync::Mutex<Coordinator>>>,
    ticker_stop: CancellationToken,
    dropped_batches: u64,
}

/// A worker id unique to this process: host, process id and a random suffix.
pub fn default_worker_id() -> String {
    let host = std::env::var("HOSTNAME")
        .ok()
        .filter(|h| !h.is_empty())
        .or_else(|| {
            std::fs::read_to_string("/etc/hostname")
                .ok()
                .map(|h| h.trim().to_owned())
        })
        .unwrap_or_else(|| "worker".to_owned());
    format!(
        "{host}:{}:{:08x}",
        std::process::id(),
        rand::random::<u32>()
    )
}

/// The Kinesis and DynamoDB clients `config` asks for.
pub async fn clients(
    aws: &AwsConfig,
    config: &KinesisSourceConfig,
) -> (aws_sdk_kinesis::Client, aws_sdk_dynamodb::Client) {
    let timeout = config.request_timeout.std();
    let kinesis = crate::aws::sdk_config(aws, config.endpoint_url.as_deref(), timeout).await;
    let dynamodb =
        crate::aws::sdk_config(aws, config.dynamodb_endpoint_url.as_deref(), timeout).await;
    (
        aws_sdk_kinesis::Client::new(&kinesis),
        aws_sdk_dynamodb::Client::new(&dynamodb),
    )
}

impl KinesisSource {
    /// A source for `config` (no I/O until `open`); a shard caught up for `idle_after`
    /// (`time.idle_timeout`) stops holding the watermark back.
    pub fn new(
        config: KinesisSourceConfig,
        aws: AwsConfig,
        max_record_bytes: usize,
        idle_after: Duration,
    ) -> Self {
        let worker_id = config.worker_id.clone().unwrap_or_else(default_worker_id);
        Self {
            config: Arc::new(config),
            aws,
            max_record_bytes,
            idle_after,
            worker_id,
            shared: Shared::default(),
            inbox: None,
            coordinator: None,
            ticker_stop: CancellationToken::new(),
            dropped_batches: 0,
        }
    }

    /// The source's counters.
    pub fn metrics(&self) -> Arc<KinesisMetrics> {
        Arc::clone(&self.shared.metrics)
    }

    fn unusable(what: &str, err: impl std::fmt::Display) -> SourceError {
        SourceError::Unusable(format!("{what}: {err}"))
    }
}

impl Source for KinesisSource {
    fn describe(&self) -> String {
        format!(
            "Kinesis stream {} (lease table {}, worker {})",
            self.config.stream_name,
            self.config.lease_table_name(),
            self.worker_id
        )
    }

    fn size_hint(&self) -> Option<u64> {
        None
    }

    async fn open(&mut self, committed: &[Position]) -> Result<(), SourceError> {
        let (kinesis, dynamodb) = clients(&self.aws, &self.config).await;
        let table = LeaseTable::new(
            dynamodb,
            self.config.lease_table_name(),
            self.config.retry.clone(),
            Arc::clone(&self.shared.metrics),
        );
        table
            .ensure_exists()
            .await
            .map_err(|err| Self::unusable(&format!("lease table {}", table.name()), err))?;
        let (outbox, inbox) = mpsc::channel(self.config.buffered_batches);
        let mut coordinator = Coordinator::new(
            table,
            kinesis,
            Arc::clone(&self.config),
            self.worker_id.clone(),
            self.shared.clone(),
            outbox,
            self.max_record_bytes,
            self.idle_after,
            committed,
        );
        if let Some(handoff) = &self.config.handoff {
            let store = HandoffStore::open(
                &self.aws,
                handoff,
                Arc::clone(&self.config),
                Arc::clone(&self.shared.metrics),
            )
            .await;
            coordinator = coordinator.with_handoff(store);
        }
        coordinator
            .tick()
            .await
            .map_err(|err| Self::unusable(&format!("stream {}", self.config.stream_name), err))?;
        tracing::info!(worker = %self.worker_id, leases = ?coordinator.held_shards(), "Kinesis source open");
        let coordinator = Arc::new(tokio::sync::Mutex::new(coordinator));
        let ticking = Arc::clone(&coordinator);
        let stop = self.ticker_stop.clone();
        tokio::spawn(async move {
            loop {
                tokio::select! {
                    () = stop.cancelled() => return,
                    () = tokio::time::sleep(TICK) => {}
                }
                let mut coordinator = ticking.lock().await;
                if let Err(err) = coordinator.tick().await {
                    coordinator.stop_readers();
                    coordinator.report(err).await;
                    return;
                }
            }
        });
        self.coordinator = Some(coordinator);
        self.inbox = Some(inbox);
        Ok(())
    }

    async fn next_batch(&mut self) -> Result<Option<SourceBatch>, SourceError> {
        let Some(inbox) = self.inbox.as_mut() else {
            return Err(SourceError::Unusable(
                "the Kinesis source is not open".to_owned(),
            ));
        };
        let deadline = tokio::time::Instant::now() + IDLE_RETURN;
        loop {
            let received = tokio::time::timeout_at(deadline, inbox.recv()).await;
            let batch = match received {
                Err(_elapsed) => return Ok(Some(reader::stream_marker("", false))),
                Ok(None) => {
                    return Err(SourceError::Unusable(
                        "every Kinesis reader stopped".to_owned(),
                    ))
                }
                Ok(Some(result)) => result?,
            };
            // Batches that move no position (markers, heartbeats) always pass.
            let owned = batch.end.is_none()
                || self
                    .shared
                    .owned
                    .lock()
                    .map(|owned| owned.contains(batch.partition.as_ref()))
                    .unwrap_or(false);
            if owned {
                if let Some(end) = &batch.end {
                    self.shared.record_counts.handed_out(
                        &batch.partition,
                        end,
                        batch.frames.len() as u64,
                    );
                }
                return Ok(Some(batch));
            }
            // Read before the lease was lost: another worker processes these records now.
            self.dropped_batches += 1;
        }
    }

    async fn commit(
        &mut self,
        positions: &[Position],
        lanes: &LaneStates,
    ) -> Result<(), SourceError> {
        // The coordinator writes lease checkpoints on its next cycle (within 100 ms): the
        // pipeline never waits for the lease table. Positions are cumulative, so the newest
        // replaces any not yet applied.
        if let Ok(mut pending) = self.shared.pending_commit.lock() {
            let mut lanes = lanes.clone();
            // A shard's last lane (at its end) comes with one commit only: keep it when a newer
            // commit replaces that one before the coordinator applied it.
            if let Some(replaced) = pending.take() {
                for (shard, state) in replaced.lanes {
                    lanes.entry(shard).or_insert(state);
                }
            }
            *pending = Some(CommitRequest {
                positions: positions.to_vec(),
                lanes,
            });
        }
        Ok(())
    }

    async fn close(&mut self) -> Result<(), SourceError> {
        self.ticker_stop.cancel();
        let Some(coordinator) = self.coordinator.take() else {
            return Ok(());
        };
        // Everything is committed in the state store already: a lease table that does not answer
        // now only delays the hand-off (the leases expire after failover_time), so shutdown does
        // not wait for the full retry budget (nor for a lease cycle stuck in its retries).
        let release = async {
            let mut coordinator = coordinator.lock().await;
            coordinator.release_all().await
        };
        match tokio::time::timeout(RELEASE_BUDGET, release).await {
            Ok(Ok(())) => {}
            Ok(Err(err)) => tracing::warn!(
                "could not write the last checkpoints and release the leases ({err}); other workers take them after failover_time"
            ),
            Err(_) => tracing::warn!(
                budget = ?RELEASE_BUDGET,
                "releasing the leases took too long; other workers take them after failover_time"
            ),
        }
        tracing::info!(
            worker = %self.worker_id,
            metrics = ?self.shared.metrics.snapshot(),
            dropped_batches = self.dropped_batches,
            "Kinesis source closed"
        );
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::position::Offset;

    fn position(shard: &str, offset: Offset) -> Position {
        Position {
            partition: shard.to_owned(),
            offset,
        }
    }

    #[tokio::test]
    async fn a_replaced_commit_keeps_lanes_the_newer_one_lacks() {
        let mut source = KinesisSource::new(
            KinesisSourceConfig::default(),
            AwsConfig::default(),
            1 << 20,
            Duration::from_secs(1),
        );
        let lane = |byte: u8| Arc::new(vec![byte]);
        let ended = [position("ended", Offset::Finished)];
        let first = LaneStates::from([("ended".to_owned(), lane(1)), ("open".to_owned(), lane(2))]);
        source.commit(&ended, &first).await.unwrap();
        // The ended shard's lane was dropped after that barrier; the coordinator has not run.
        let second = LaneStates::from([("open".to_owned(), lane(3))]);
        source.commit(&ended, &second).await.unwrap();
        let pending = source
            .shared
            .pending_commit
            .lock()
            .unwrap()
            .clone()
            .unwrap();
        assert_eq!(pending.lanes["ended"], lane(1), "the final lane survives");
        assert_eq!(pending.lanes["open"], lane(3), "the newer state wins");
    }
}
