//! `[source.kinesis]`: the Kinesis data stream, its lease table and how shards are read and
//! shared between workers (the Kinesis Client Library's settings, with its defaults).

use serde::{Deserialize, Serialize};

use super::DurationText;
use crate::sinks::delivery::RetryConfig;

/// Where a shard with no checkpoint starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum InitialPosition {
    /// The oldest record still in the stream (KCL's default).
    #[default]
    TrimHorizon,
    /// Only records written after the lease is first read.
    Latest,
    /// Records from `initial_timestamp` on.
    AtTimestamp,
}

/// `[source.kinesis]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct KinesisSourceConfig {
    /// Stream name.
    pub stream_name: String,
    /// DynamoDB lease table (KCL: the application name). Created with on-demand billing when
    /// missing.
    pub lease_table: String,
    /// This worker's id in `leaseOwner`; default: host name, process id and a random suffix, so
    /// a restarted task never mistakes an old lease for its own.
    pub worker_id: Option<String>,
    /// Where shards without a checkpoint start.
    pub initial_position: InitialPosition,
    /// RFC 3339 time for `initial_position = "at_timestamp"`.
    pub initial_timestamp: Option<String>,
    /// A lease whose counter has not moved for this long is expired and may be taken
    /// (KCL `failoverTimeMillis`).
    pub failover_time: DurationText,
    /// How often owned leases are renewed (default: a third of `failover_time`).
    pub renew_interval: Option<DurationText>,
    /// How often the lease table is scanned to take expired or released leases and balance.
    pub take_interval: DurationText,
    /// How often `ListShards` runs to find new shards (after resharding).
    pub shard_sync_interval: DurationText,
    /// Most leases this worker holds; 0 = no limit.
    pub max_leases_per_worker: usize,
    /// Most leases stolen from busier workers in one take cycle.
    pub max_leases_to_steal: usize,
    /// Records per `GetRecords` call (Kinesis allows 10,000).
    pub max_records: i32,
    /// Sleep between `GetRecords` calls when a shard is caught up (`MillisBehindLatest` = 0).
    pub idle_time_between_reads: DurationText,
    /// Least time between lease-table checkpoint writes of one shard; shard ends and shutdown
    /// checkpoint at once.
    pub checkpoint_interval: DurationText,
    /// Also write a shard's checkpoint once this many of its records were read since the last
    /// write (when they are committed, before `checkpoint_interval` passes); 0 = time only.
    pub checkpoint_records: u64,
    /// Batches buffered between the shard readers and the pipeline (backpressure).
    pub buffered_batches: usize,
    /// Endpoint override for Kinesis (an emulator).
    pub endpoint_url: Option<String>,
    /// Endpoint override for the DynamoDB lease table (an emulator).
    pub dynamodb_endpoint_url: Option<String>,
    /// Per-call timeout.
    pub request_timeout: DurationText,
    /// Backoff for throttling, 5xx and network errors; the budget bounds how long one call
    /// keeps failing before the run stops.
    pub retry: RetryConfig,
    /// `[source.kinesis.handoff]`: operator state that moves with a lease (off when unset).
    pub handoff: Option<HandoffConfig>,
}

/// `[source.kinesis.handoff]`: where each shard's window, rule and detector state is stored
/// with its checkpoint, so the worker that takes the lease next (after a failover, a hand-off at
/// shutdown, a steal, or for a child shard after resharding) continues it instead of starting
/// the shard's open windows over.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct HandoffConfig {
    /// S3 bucket shared by every worker of the application.
    pub bucket: String,
    /// Key prefix; objects are `<prefix><stream>/<shard id>`.
    pub prefix: String,
    /// Endpoint override for this client (an emulator); path-style addressing is used then.
    pub endpoint_url: Option<String>,
}

impl Default for HandoffConfig {
    fn default() -> Self {
        Self {
            bucket: String::new(),
            prefix: "fleetstream/lanes/".to_owned(),
            endpoint_url: None,
        }
    }
}

impl Default for KinesisSourceConfig {
    fn default() -> Self {
        Self {
            stream_name: String::new(),
            lease_table: String::new(),
            worker_id: None,
            initial_position: InitialPosition::TrimHorizon,
            initial_timestamp: None,
            failover_time: DurationText(10_000),
            renew_interval: None,
            take_interval: DurationText(5_000),
            shard_sync_interval: DurationText(60_000),
            max_leases_per_worker: 0,
            max_leases_to_steal: 1,
            max_records: 10_000,
            idle_time_between_reads: DurationText(1_000),
            checkpoint_interval: DurationText(5_000),
            checkpoint_records: 0,
            buffered_batches: 16,
            endpoint_url: None,
            dynamodb_endpoint_url: None,
            request_timeout: DurationText(10_000),
            retry: RetryConfig {
                initial_backoff: DurationText(100),
                max_backoff: DurationText(10_000),
                budget: DurationText(5 * 60_000),
            },
            handoff: None,
        }
    }
}

impl KinesisSourceConfig {
    /// The lease table name: `lease_table`, or `fleetstream-<stream>` when unset.
    pub fn lease_table_name(&self) -> String {
        if self.lease_table.is_empty() {
            format!("fleetstream-{}", self.stream_name)
        } else {
            self.lease_table.clone()
        }
    }

    /// The renewal period: `renew_interval`, or a third of `failover_time`.
    pub fn renew_every(&self) -> DurationText {
        self.renew_interval
            .unwrap_or(DurationText((self.failover_time.ms() / 3).max(1)))
    }

    /// Problems with the values as (key under `source.kinesis`, message).
    pub fn problems(&self) -> Vec<(String, String)> {
        let mut problems = Vec::new();
        let mut problem = |key: &str, message: String| problems.push((key.to_owned(), message));
        if self.stream_name.is_empty() {
            problem(
                "stream_name",
                "required when source.kind = \"kinesis\"".to_owned(),
            );
        }
        if self.failover_time.ms() < 1_000 {
            problem(
                "failover_time",
                format!("must be at least 1s, got {}", self.failover_time),
            );
        }
        if self.renew_every() >= self.failover_time {
            problem(
                "renew_interval",
                format!(
                    "must be shorter than failover_time ({}), or leases expire while owned",
                    self.failover_time
                ),
            );
        }
        if self.take_interval.ms() <= 0 {
            problem("take_interval", "must be more than 0".to_owned());
        }
        if self.shard_sync_interval.ms() <= 0 {
            problem("shard_sync_interval", "must be more than 0".to_owned());
        }
        if !(1..=10_000).contains(&self.max_records) {
            problem(
                "max_records",
                format!("must be 1–10000, got {}", self.max_records),
            );
        }
        if self.buffered_batches == 0 {
            problem("buffered_batches", "must be at least 1".to_owned());
        }
        match (&self.initial_position, &self.initial_timestamp) {
            (InitialPosition::AtTimestamp, None) => problem(
                "initial_timestamp",
                "required when initial_position = \"at_timestamp\"".to_owned(),
            ),
            (_, Some(text)) => {
                if let Err(message) = telemetry::timestamp::parse_rfc3339(text) {
                    problem("initial_timestamp", message);
                }
            }
            _ => {}
        }
        for (key, message) in self.retry.problems() {
            problem(&key, message);
        }
        if self.handoff.as_ref().is_some_and(|h| h.bucket.is_empty()) {
            problem(
                "handoff.bucket",
                "required in [source.kinesis.handoff]".to_owned(),
            );
        }
        problems
    }
}
