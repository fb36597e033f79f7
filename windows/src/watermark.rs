//! Event-time watermarks with bounded out-of-orderness per source partition.
//!
//! A partition's watermark is the largest event time it has shown minus the allowed
//! out-of-orderness. The pipeline watermark is the minimum over partitions that are still active,
//! and never moves backwards. A finished partition (end of file, closed shard) stops holding the
//! watermark back. "Event time `t` is late" means `t < watermark`.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// Tracks per-partition progress and derives the pipeline watermark.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WatermarkTracker {
    max_out_of_orderness_ms: i64,
    partitions: BTreeMap<String, i64>,
    current: Option<i64>,
}

impl WatermarkTracker {
    /// A tracker that tolerates events up to `max_out_of_orderness_ms` behind the newest seen.
    pub fn new(max_out_of_orderness_ms: i64) -> Self {
        Self {
            max_out_of_orderness_ms: max_out_of_orderness_ms.max(0),
            partitions: BTreeMap::new(),
            current: None,
        }
    }

    /// The current pipeline watermark (`None` before any event).
    pub fn current(&self) -> Option<i64> {
        self.current
    }

    /// True when an event at `time_ms` arrives behind the watermark.
    pub fn is_late(&self, time_ms: i64) -> bool {
        self.current.is_some_and(|watermark| time_ms < watermark)
    }

    /// Records an event of `partition`; returns the new watermark when it advanced.
    pub fn observe(&mut self, partition: &str, time_ms: i64) -> Option<i64> {
        match self.partitions.get_mut(partition) {
            Some(max) => *max = (*max).max(time_ms),
            None => {
                self.partitions.insert(partition.to_owned(), time_ms);
            }
        }
        self.recompute()
    }

    /// Marks `partition` finished: it no longer holds the watermark back.
    pub fn finish_partition(&mut self, partition: &str) -> Option<i64> {
        self.partitions.remove(partition);
        self.recompute()
    }

    /// Moves the watermark to the end of time (all input consumed).
    pub fn finish_all(&mut self) -> i64 {
        self.partitions.clear();
        self.current = Some(i64::MAX);
        i64::MAX
    }

    fn recompute(&mut self) -> Option<i64> {
        let candidate = self
            .partitions
            .values()
            .min()
            .map(|max| max.saturating_sub(self.max_out_of_orderness_ms))?;
        if self.current.is_none_or(|current| candidate > current) {
            self.current = Some(candidate);
            return self.current;
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn minimum_over_partitions_minus_bound() {
        let mut tracker = WatermarkTracker::new(10);
        assert_eq!(tracker.observe("a", 100), Some(90));
        assert_eq!(tracker.observe("b", 50), None);
        assert_eq!(tracker.current(), Some(90), "never moves backwards");
        assert_eq!(tracker.observe("b", 200), None, "a still holds it at 90");
        assert_eq!(tracker.observe("a", 150), Some(140));
        assert!(tracker.is_late(139));
        assert!(!tracker.is_late(140));
    }

    #[test]
    fn finished_partitions_release_the_watermark() {
        let mut tracker = WatermarkTracker::new(0);
        tracker.observe("a", 10);
        tracker.observe("b", 100);
        assert_eq!(tracker.current(), Some(10));
        assert_eq!(tracker.finish_partition("a"), Some(100));
        assert_eq!(tracker.finish_all(), i64::MAX);
    }
}
