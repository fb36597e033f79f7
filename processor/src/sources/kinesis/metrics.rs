//! Counters of the Kinesis source: records and bytes read, throttles, retries, expired
//! iterators, KPL sub-records, lease changes, and `MillisBehindLatest` per shard. Logged with
//! each lease cycle and printed in the run summary.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

use serde::Serialize;

/// Shared counters (readers, coordinator and source update them).
#[derive(Debug, Default)]
pub struct KinesisMetrics {
    records: AtomicU64,
    bytes: AtomicU64,
    get_records_calls: AtomicU64,
    throttled: AtomicU64,
    transient_errors: AtomicU64,
    expired_iterators: AtomicU64,
    aggregates: AtomicU64,
    sub_records: AtomicU64,
    sub_records_outside_shard: AtomicU64,
    corrupt_aggregates: AtomicU64,
    leases_taken: AtomicU64,
    leases_stolen: AtomicU64,
    leases_lost: AtomicU64,
    leases_released: AtomicU64,
    checkpoints_written: AtomicU64,
    millis_behind_latest: Mutex<BTreeMap<String, i64>>,
}

/// A copy of the counters.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct KinesisMetricsSnapshot {
    /// Kinesis records read (aggregates count once).
    pub records: u64,
    /// Payload bytes read.
    pub bytes: u64,
    /// `GetRecords` calls.
    pub get_records_calls: u64,
    /// Calls answered with a throttling error (then retried).
    pub throttled: u64,
    /// Calls that failed with a 5xx, timeout or connection error (then retried).
    pub transient_errors: u64,
    /// Shard iterators that expired and were replaced.
    pub expired_iterators: u64,
    /// KPL aggregated records unpacked.
    pub aggregates: u64,
    /// User records taken out of aggregates.
    pub sub_records: u64,
    /// Sub-records dropped because their hash key belongs to another shard (after a reshard).
    pub sub_records_outside_shard: u64,
    /// Records that looked like aggregates but were damaged, read as plain records.
    pub corrupt_aggregates: u64,
    /// Expired or released leases this worker took.
    pub leases_taken: u64,
    /// Leases this worker took from busier workers.
    pub leases_stolen: u64,
    /// Leases this worker lost to another worker.
    pub leases_lost: u64,
    /// Leases this worker released at shutdown.
    pub leases_released: u64,
    /// Lease-table checkpoint writes.
    pub checkpoints_written: u64,
    /// Latest `MillisBehindLatest` of each shard this worker read.
    pub millis_behind_latest: BTreeMap<String, i64>,
}

impl std::fmt::Display for KinesisMetricsSnapshot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let behind = self
            .millis_behind_latest
            .values()
            .copied()
            .max()
            .unwrap_or(0);
        write!(
            f,
            "{} records ({} KPL aggregates → {} user records, {} set aside, {} damaged), {} GetRecords calls, {} throttled, {} transient errors, {} expired iterators; leases {} taken, {} stolen, {} lost, {} released; {} checkpoints written; at most {} ms behind the tip at the end",
            self.records,
            self.aggregates,
            self.sub_records,
            self.sub_records_outside_shard,
            self.corrupt_aggregates,
            self.get_records_calls,
            self.throttled,
            self.transient_errors,
            self.expired_iterators,
            self.leases_taken,
            self.leases_stolen,
            self.leases_lost,
            self.leases_released,
            self.checkpoints_written,
            behind
        )
    }
}

macro_rules! counter {
    ($($(#[$doc:meta])* $name:ident => $field:ident;)*) => {
        $( $(#[$doc])* pub fn $name(&self, n: u64) { self.$field.fetch_add(n, Ordering::Relaxed); } )*
    };
}

impl KinesisMetrics {
    counter! {
        /// Counts records read.
        add_records => records;
        /// Counts bytes read.
        add_bytes => bytes;
        /// Counts `GetRecords` calls.
        add_get_records_calls => get_records_calls;
        /// Counts expired iterators.
        add_expired_iterators => expired_iterators;
        /// Counts unpacked aggregates.
        add_aggregates => aggregates;
        /// Counts sub-records.
        add_sub_records => sub_records;
        /// Counts sub-records dropped as outside the shard.
        add_sub_records_outside_shard => sub_records_outside_shard;
        /// Counts damaged aggregates.
        add_corrupt_aggregates => corrupt_aggregates;
        /// Counts leases taken.
        add_leases_taken => leases_taken;
        /// Counts leases stolen.
        add_leases_stolen => leases_stolen;
        /// Counts leases lost.
        add_leases_lost => leases_lost;
        /// Counts leases released.
        add_leases_released => leases_released;
        /// Counts checkpoint writes.
        add_checkpoints_written => checkpoints_written;
    }

    /// Counts a throttled call.
    pub fn throttled(&self) {
        self.throttled.fetch_add(1, Ordering::Relaxed);
    }

    /// Counts a transient failure.
    pub fn transient_error(&self) {
        self.transient_errors.fetch_add(1, Ordering::Relaxed);
    }

    /// Records how far a shard's reader is behind the stream's tip.
    pub fn set_millis_behind(&self, shard: &str, millis: i64) {
        if let Ok(mut map) = self.millis_behind_latest.lock() {
            map.insert(shard.to_owned(), millis);
        }
    }

    /// A copy of every counter.
    pub fn snapshot(&self) -> KinesisMetricsSnapshot {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        KinesisMetricsSnapshot {
            records: get(&self.records),
            bytes: get(&self.bytes),
            get_records_calls: get(&self.get_records_calls),
            throttled: get(&self.throttled),
            transient_errors: get(&self.transient_errors),
            expired_iterators: get(&self.expired_iterators),
            aggregates: get(&self.aggregates),
            sub_records: get(&self.sub_records),
            sub_records_outside_shard: get(&self.sub_records_outside_shard),
            corrupt_aggregates: get(&self.corrupt_aggregates),
            leases_taken: get(&self.leases_taken),
            leases_stolen: get(&self.leases_stolen),
            leases_lost: get(&self.leases_lost),
            leases_released: get(&self.leases_released),
            checkpoints_written: get(&self.checkpoints_written),
            millis_behind_latest: self
                .millis_behind_latest
                .lock()
                .map(|map| map.clone())
                .unwrap_or_default(),
        }
    }
}
