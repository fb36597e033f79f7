//! Event-time watermarks with bounded out-of-orderness per source partition.
//!
//! A partition's watermark is the largest event time it has shown minus the allowed
//! out-of-orderness. The pipeline watermark is the minimum over partitions that are still active,
//! and never moves backwards. A finished partition (end of file, closed shard) stops holding the
//! watermark back, and so does a partition that has shown no event for `idle_timeout_ms` of
//! processing time (when set): a quiet shard must not stall every window. When every partition is
//! idle, the watermark follows the most advanced one. "Event time `t` is late" means
//! `t < watermark`.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
struct Progress {
    max_event_ms: i64,
    last_active_ms: i64,
    /// The source said the partition has no data for now (until its next event).
    #[serde(default)]
    idle: bool,
}

/// Tracks per-partition progress and derives the pipeline watermark.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WatermarkTracker {
    max_out_of_orderness_ms: i64,
    idle_timeout_ms: i64,
    partitions: BTreeMap<String, Progress>,
    current: Option<i64>,
}

impl WatermarkTracker {
    /// A tracker that tolerates events up to `max_out_of_orderness_ms` behind the newest seen.
    pub fn new(max_out_of_orderness_ms: i64) -> Self {
        Self {
            max_out_of_orderness_ms: max_out_of_orderness_ms.max(0),
            idle_timeout_ms: 0,
            partitions: BTreeMap::new(),
            current: None,
        }
    }

    /// Partitions silent for `idle_timeout_ms` of processing time stop holding the watermark
    /// back (0: never).
    pub fn with_idle_timeout(mut self, idle_timeout_ms: i64) -> Self {
        self.idle_timeout_ms = idle_timeout_ms.max(0);
        self
    }

    /// The current pipeline watermark (`None` before any event).
    pub fn current(&self) -> Option<i64> {
        self.current
    }

    /// True while some partition is tracked (announced, active, idle); false once every one
    /// finished (or before the first).
    pub fn has_partitions(&self) -> bool {
        !self.partitions.is_empty()
    }

    /// Moves the watermark forward to `watermark_ms` (never back), for state that follows
    /// another clock while its own partitions are quiet; returns it when it advanced.
    pub fn advance_to(&mut self, watermark_ms: i64) -> Option<i64> {
        if self.current.is_none_or(|current| watermark_ms > current) {
            self.current = Some(watermark_ms);
            return self.current;
        }
        None
    }

    /// True when an event at `time_ms` arrives behind the watermark.
    pub fn is_late(&self, time_ms: i64) -> bool {
        self.current.is_some_and(|watermark| time_ms < watermark)
    }

    /// Records an event of `partition` seen at processing time `now_ms`; returns the new
    /// watermark when it advanced.
    pub fn observe(&mut self, partition: &str, time_ms: i64, now_ms: i64) -> Option<i64> {
        match self.partitions.get_mut(partition) {
            Some(progress) => {
                progress.max_event_ms = progress.max_event_ms.max(time_ms);
                progress.last_active_ms = now_ms;
                progress.idle = false;
            }
            None => {
                self.partitions.insert(
                    partition.to_owned(),
                    Progress {
                        max_event_ms: time_ms,
                        last_active_ms: now_ms,
                        idle: false,
                    },
                );
            }
        }
        self.recompute(now_ms)
    }

    /// Announces a partition before its first event (a newly leased shard): until it shows an
    /// event or goes idle it holds the watermark where it is, so its first records are not late
    /// because other partitions were read first. No effect on a known partition.
    pub fn register(&mut self, partition: &str, now_ms: i64) {
        if !self.partitions.contains_key(partition) {
            self.partitions.insert(
                partition.to_owned(),
                Progress {
                    max_event_ms: i64::MIN,
                    last_active_ms: now_ms,
                    idle: false,
                },
            );
        }
    }

    /// The source says `partition` has no data for now (a Kinesis shard caught up with its
    /// tip): it stops holding the watermark back until its next event.
    pub fn mark_idle(&mut self, partition: &str, now_ms: i64) -> Option<i64> {
        if let Some(progress) = self.partitions.get_mut(partition) {
            progress.idle = true;
        }
        self.recompute(now_ms)
    }

    /// Re-evaluates idleness at processing time `now_ms` (call it when batches arrive without
    /// events); returns the new watermark when it advanced.
    pub fn refresh(&mut self, now_ms: i64) -> Option<i64> {
        self.recompute(now_ms)
    }

    /// Marks `partition` finished: it no longer holds the watermark back.
    pub fn finish_partition(&mut self, partition: &str, now_ms: i64) -> Option<i64> {
        self.partitions.remove(partition);
        self.recompute(now_ms)
    }

    /// Moves the watermark to the end of time (all input consumed).
    pub fn finish_all(&mut self) -> i64 {
        self.partitions.clear();
        self.current = Some(i64::MAX);
        i64::MAX
    }

    fn recompute(&mut self, now_ms: i64) -> Option<i64> {
        let bound = match self.partitions.len() {
            // The only partition (a file, one shard) holds the watermark whether it is active
            // or not: the common case, once per record, without the passes below.
            1 => self.partitions.values().next()?.max_event_ms,
            _ => self.held_back_or_furthest(now_ms)?,
        };
        if bound == i64::MIN {
            // A registered partition has shown no event yet: it holds the watermark.
            return None;
        }
        self.advance_to(bound.saturating_sub(self.max_out_of_orderness_ms))
    }

    /// The newest event of the active partition furthest behind, or of the most advanced one
    /// when none is active.
    fn held_back_or_furthest(&self, now_ms: i64) -> Option<i64> {
        let active = |progress: &&Progress| {
            !progress.idle
                && (self.idle_timeout_ms == 0
                    || now_ms - progress.last_active_ms < self.idle_timeout_ms)
        };
        let held_back = self
            .partitions
            .values()
            .filter(active)
            .map(|p| p.max_event_ms)
            .min();
        let furthest = || self.partitions.values().map(|p| p.max_event_ms).max();
        held_back.or_else(furthest)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::strategy::Strategy as _;

    /// What the tracker does to one partition, for the model test.
    #[derive(Debug, Clone)]
    enum Step {
        Observe(usize, i64),
        Register(usize),
        MarkIdle(usize),
        Finish(usize),
        Refresh,
    }

    /// The documented rule, computed from scratch after every step: the minimum over active
    /// partitions (or the furthest, when none is active) minus the bound, never moving back.
    #[derive(Default)]
    struct Model {
        partitions: BTreeMap<usize, (i64, i64, bool)>,
        current: Option<i64>,
    }

    impl Model {
        fn step(&mut self, step: &Step, now: i64, bound: i64, timeout: i64) -> Option<i64> {
            match *step {
                Step::Observe(p, time) => {
                    let entry = self.partitions.entry(p).or_insert((i64::MIN, now, false));
                    *entry = (entry.0.max(time), now, false);
                }
                Step::Register(p) => {
                    // Announcing is not a recomputation: the next step's is.
                    self.partitions.entry(p).or_insert((i64::MIN, now, false));
                    return None;
                }
                Step::MarkIdle(p) => {
                    if let Some(entry) = self.partitions.get_mut(&p) {
                        entry.2 = true;
                    }
                }
                Step::Finish(p) => {
                    self.partitions.remove(&p);
                }
                Step::Refresh => {}
            }
            let active = self
                .partitions
                .values()
                .filter(|(_, last, idle)| !idle && (timeout == 0 || now - last < timeout))
                .map(|(max, _, _)| *max)
                .min();
            let bound_at =
                active.or_else(|| self.partitions.values().map(|(max, _, _)| *max).max())?;
            if bound_at == i64::MIN {
                return None;
            }
            let candidate = bound_at.saturating_sub(bound);
            if self.current.is_none_or(|current| candidate > current) {
                self.current = Some(candidate);
                return self.current;
            }
            None
        }
    }

    proptest::proptest! {
        /// One partition (a file) takes a shortcut in `recompute`: with any mix of
        /// partitions, steps and idle timeouts, the tracker agrees with the rule at every step.
        #[test]
        fn the_watermark_follows_the_rule_whatever_the_partitions_do(
            steps in proptest::collection::vec(
                proptest::prop_oneof![
                    6 => (0..3usize, 0..1_000i64).prop_map(|(p, t)| Step::Observe(p, t)),
                    1 => (0..3usize).prop_map(Step::Register),
                    1 => (0..3usize).prop_map(Step::MarkIdle),
                    1 => (0..3usize).prop_map(Step::Finish),
                    1 => proptest::strategy::Just(Step::Refresh),
                ],
                1..60,
            ),
            bound in 0..50i64,
            timeout in proptest::prop_oneof![proptest::strategy::Just(0i64), 1..40i64],
        ) {
            let mut tracker = WatermarkTracker::new(bound).with_idle_timeout(timeout);
            let mut model = Model::default();
            for (index, step) in steps.iter().enumerate() {
                let now = index as i64 * 5;
                let name = |p: usize| format!("p{p}");
                let got = match *step {
                    Step::Observe(p, time) => tracker.observe(&name(p), time, now),
                    Step::Register(p) => {
                        tracker.register(&name(p), now);
                        None
                    }
                    Step::MarkIdle(p) => tracker.mark_idle(&name(p), now),
                    Step::Finish(p) => tracker.finish_partition(&name(p), now),
                    Step::Refresh => tracker.refresh(now),
                };
                let expected = model.step(step, now, bound, timeout);
                proptest::prop_assert_eq!(got, expected, "step {}: {:?}", index, step);
                proptest::prop_assert_eq!(tracker.current(), model.current, "step {}: {:?}", index, step);
            }
        }
    }

    #[test]
    fn a_registered_partition_holds_the_watermark_until_it_shows_events_or_idles() {
        let mut tracker = WatermarkTracker::new(10).with_idle_timeout(1_000);
        assert_eq!(tracker.observe("a", 100, 0), Some(90));
        tracker.register("b", 0);
        assert_eq!(
            tracker.observe("a", 500, 10),
            None,
            "b has shown nothing yet"
        );
        tracker.register("a", 20);
        assert_eq!(tracker.observe("b", 300, 20), Some(290));
        tracker.register("c", 30);
        assert_eq!(tracker.observe("a", 900, 40), None);
        assert_eq!(
            tracker.refresh(1_035),
            Some(890),
            "b and c went idle: a alone holds it"
        );
    }

    #[test]
    fn a_partition_marked_idle_stops_holding_until_its_next_event() {
        let mut tracker = WatermarkTracker::new(0);
        tracker.observe("a", 100, 0);
        tracker.observe("b", 500, 0);
        assert_eq!(tracker.current(), Some(100));
        assert_eq!(tracker.mark_idle("a", 0), Some(500));
        assert_eq!(tracker.observe("a", 600, 0), None, "active again");
        assert_eq!(tracker.observe("b", 700, 0), Some(600));
    }

    #[test]
    fn minimum_over_partitions_minus_bound() {
        let mut tracker = WatermarkTracker::new(10);
        assert_eq!(tracker.observe("a", 100, 0), Some(90));
        assert_eq!(tracker.observe("b", 50, 0), None);
        assert_eq!(tracker.current(), Some(90), "never moves backwards");
        assert_eq!(tracker.observe("b", 200, 0), None, "a still holds it at 90");
        assert_eq!(tracker.observe("a", 150, 0), Some(140));
        assert!(tracker.is_late(139));
        assert!(!tracker.is_late(140));
    }

    #[test]
    fn finished_partitions_release_the_watermark() {
        let mut tracker = WatermarkTracker::new(0);
        tracker.observe("a", 10, 0);
        tracker.observe("b", 100, 0);
        assert_eq!(tracker.current(), Some(10));
        assert_eq!(tracker.finish_partition("a", 0), Some(100));
        assert_eq!(tracker.finish_all(), i64::MAX);
    }

    #[test]
    fn idle_partitions_stop_holding_it_back() {
        let mut tracker = WatermarkTracker::new(0).with_idle_timeout(30_000);
        tracker.observe("quiet", 10, 0);
        tracker.observe("busy", 100, 0);
        assert_eq!(tracker.current(), Some(10));
        assert_eq!(
            tracker.observe("busy", 200, 20_000),
            None,
            "quiet is not idle yet"
        );
        assert_eq!(
            tracker.observe("busy", 300, 31_000),
            Some(300),
            "quiet went idle"
        );
        assert_eq!(
            tracker.refresh(100_000),
            None,
            "all idle: follows the furthest, never back"
        );
        tracker.observe("quiet", 400, 100_001);
        assert_eq!(tracker.current(), Some(400));
    }
}
