//! The event-time input buffer shared by the detector, alarm and anomaly engines: records wait here until
//! the watermark passes them, then leave in (event time, arrival) order, so a replay evaluates
//! them in the same order whatever order they arrived in.

use std::collections::BTreeMap;
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use telemetry::Record;

/// Records ordered by (event time, arrival sequence).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct EventTimeBuffer {
    records: BTreeMap<(i64, u64), Arc<Record>>,
    next_sequence: u64,
}

impl EventTimeBuffer {
    /// Holds `record` until the watermark passes it.
    pub fn push(&mut self, record: Arc<Record>) {
        self.records
            .insert((record.event_time_ms, self.next_sequence), record);
        self.next_sequence += 1;
    }

    /// Event time of the earliest record, when it is before `watermark_ms`.
    pub fn next_time_before(&self, watermark_ms: i64) -> Option<i64> {
        self.records
            .keys()
            .next()
            .map(|(time, _)| *time)
            .filter(|time| *time < watermark_ms)
    }

    /// Removes and returns the earliest record when it is before `watermark_ms`.
    pub fn pop_before(&mut self, watermark_ms: i64) -> Option<Arc<Record>> {
        self.next_time_before(watermark_ms)?;
        self.records.pop_first().map(|(_, record)| record)
    }

    /// Records waiting.
    pub fn len(&self) -> usize {
        self.records.len()
    }

    /// True when no record is waiting.
    pub fn is_empty(&self) -> bool {
        self.records.is_empty()
    }
}
