//! Time-weighted average for gauges sampled irregularly (speed, state of charge): each sample's
//! value holds until the next sample (last observation carried forward), and the last one holds
//! until the window end. The average runs from the first sample to the window end, so it does not
//! depend on how often a vehicle happened to report. Samples are kept (16 bytes each) because
//! out-of-order arrival makes the step function unknown until the window closes.

use serde::{Deserialize, Serialize};

/// The samples of one window, in event-time order.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct TimeWeighted {
    samples: Vec<(i64, f64)>,
}

impl TimeWeighted {
    /// Adds a sample (any arrival order; ties keep arrival order).
    pub fn add(&mut self, time_ms: i64, value: f64) {
        let at = self.samples.partition_point(|(t, _)| *t <= time_ms);
        self.samples.insert(at, (time_ms, value));
    }

    /// Adds every sample of `other`.
    pub fn merge(&mut self, other: &TimeWeighted) {
        for (time_ms, value) in &other.samples {
            self.add(*time_ms, *value);
        }
    }

    /// Average from the first sample to `end_ms`; the single sample's value when the span is
    /// empty; `None` without samples.
    pub fn average(&self, end_ms: i64) -> Option<f64> {
        let (first_time, first_value) = *self.samples.first()?;
        let span = end_ms.saturating_sub(first_time);
        if span <= 0 {
            return Some(self.samples.last().map_or(first_value, |s| s.1));
        }
        let mut integral = 0.0;
        for pair in self.samples.windows(2) {
            integral += pair[0].1 * (pair[1].0 - pair[0].0) as f64;
        }
        if let Some((last_time, last_value)) = self.samples.last() {
            integral += last_value * (end_ms - last_time).max(0) as f64;
        }
        Some(integral / span as f64)
    }

    /// Bytes of sample state.
    pub fn state_bytes(&self) -> usize {
        self.samples.capacity() * 16
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn steps_are_weighted_by_how_long_they_hold() {
        let mut twa = TimeWeighted::default();
        twa.add(30_000, 100.0);
        twa.add(0, 0.0);
        // 0 for 30 s, then 100 for 30 s up to the window end at 60 s.
        assert_eq!(twa.average(60_000), Some(50.0));
        twa.add(50_000, 40.0);
        // 0 for 30 s, 100 for 20 s, 40 for 10 s.
        assert!((twa.average(60_000).unwrap() - (2000.0 + 400.0) / 60.0).abs() < 1e-12);
        assert_eq!(TimeWeighted::default().average(10), None);
    }

    #[test]
    fn merge_equals_adding_all() {
        let mut a = TimeWeighted::default();
        let mut b = TimeWeighted::default();
        a.add(0, 1.0);
        b.add(10, 3.0);
        a.add(20, 5.0);
        a.merge(&b);
        assert_eq!(a.average(30), Some((10.0 + 30.0 + 50.0) / 30.0));
    }
}
