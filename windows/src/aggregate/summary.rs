//! Summary statistics of one window: count, min, max, mean, sample standard deviation, first and
//! last value by event time. Mean and variance use Welford's update and Chan's parallel merge, so
//! they stay exact to rounding for long windows and large offsets, and partial results merge.

use serde::{Deserialize, Serialize};

/// Running summary of the values that fell into one window.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct SummaryStats {
    /// Number of values.
    pub count: u64,
    /// Smallest value.
    pub min: f64,
    /// Largest value.
    pub max: f64,
    /// Arithmetic mean.
    pub mean: f64,
    /// Sum of squared deviations from the mean (Welford's M2).
    m2: f64,
    /// Event time and value of the earliest value (ties: the first added).
    pub first: (i64, f64),
    /// Event time and value of the latest value (ties: the last added).
    pub last: (i64, f64),
}

impl SummaryStats {
    /// Statistics of a single value seen at `time_ms`.
    pub fn of(time_ms: i64, value: f64) -> Self {
        Self {
            count: 1,
            min: value,
            max: value,
            mean: value,
            m2: 0.0,
            first: (time_ms, value),
            last: (time_ms, value),
        }
    }

    /// Adds one value seen at `time_ms` (any order of arrival).
    #[inline]
    pub fn add(&mut self, time_ms: i64, value: f64) {
        self.count += 1;
        self.min = self.min.min(value);
        self.max = self.max.max(value);
        let delta = value - self.mean;
        // Converted as a signed integer (a count never reaches 2⁶³): one instruction on the
        // chain every value waits on, where an unsigned conversion takes four.
        self.mean += delta / self.count as i64 as f64;
        self.m2 += delta * (value - self.mean);
        if time_ms < self.first.0 {
            self.first = (time_ms, value);
        }
        if time_ms >= self.last.0 {
            self.last = (time_ms, value);
        }
    }

    /// Merges another summary into this one (Chan et al.'s pairwise update).
    pub fn merge(&mut self, other: &SummaryStats) {
        let total = self.count + other.count;
        let delta = other.mean - self.mean;
        self.mean += delta * other.count as f64 / total as f64;
        self.m2 +=
            other.m2 + delta * delta * (self.count as f64 * other.count as f64) / total as f64;
        self.count = total;
        self.min = self.min.min(other.min);
        self.max = self.max.max(other.max);
        if other.first.0 < self.first.0 {
            self.first = other.first;
        }
        if other.last.0 >= self.last.0 {
            self.last = other.last;
        }
    }

    /// Sample variance (n − 1 in the denominator); `None` for fewer than two values.
    pub fn variance(&self) -> Option<f64> {
        (self.count > 1).then(|| (self.m2 / (self.count - 1) as f64).max(0.0))
    }

    /// Sample standard deviation; `None` for fewer than two values.
    pub fn stddev(&self) -> Option<f64> {
        self.variance().map(f64::sqrt)
    }

    /// Sum of the values.
    pub fn sum(&self) -> f64 {
        self.mean * self.count as f64
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn naive(values: &[f64]) -> (f64, f64) {
        let n = values.len() as f64;
        let mean = values.iter().sum::<f64>() / n;
        let var = values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (n - 1.0);
        (mean, var)
    }

    #[test]
    fn matches_textbook_values() {
        let mut stats = SummaryStats::of(0, 2.0);
        for (t, v) in [
            (1, 4.0),
            (2, 4.0),
            (3, 4.0),
            (4, 5.0),
            (5, 5.0),
            (6, 7.0),
            (7, 9.0),
        ] {
            stats.add(t, v);
        }
        assert_eq!(stats.count, 8);
        assert_eq!(stats.mean, 5.0);
        assert!((stats.variance().unwrap() - 32.0 / 7.0).abs() < 1e-12);
        assert_eq!((stats.min, stats.max), (2.0, 9.0));
        assert_eq!(stats.first, (0, 2.0));
        assert_eq!(stats.last, (7, 9.0));
    }

    #[test]
    fn first_and_last_follow_event_time_not_arrival() {
        let mut stats = SummaryStats::of(10, 1.0);
        stats.add(5, 2.0);
        stats.add(7, 3.0);
        assert_eq!(stats.first, (5, 2.0));
        assert_eq!(stats.last, (10, 1.0));
    }

    #[test]
    fn single_value_has_no_stddev() {
        assert_eq!(SummaryStats::of(0, 3.0).stddev(), None);
    }

    #[test]
    fn stable_with_a_large_offset() {
        let mut stats = SummaryStats::of(0, 1e9 + 4.0);
        for (t, v) in [(1, 1e9 + 7.0), (2, 1e9 + 13.0), (3, 1e9 + 16.0)] {
            stats.add(t, v);
        }
        assert!((stats.variance().unwrap() - 30.0).abs() < 1e-6);
    }

    proptest! {
        #[test]
        fn merge_equals_sequential(values in proptest::collection::vec(-1e6f64..1e6, 2..60), split in 1usize..59) {
            let split = split.min(values.len() - 1);
            let mut whole = SummaryStats::of(0, values[0]);
            for (t, v) in values.iter().enumerate().skip(1) { whole.add(t as i64, *v); }
            let mut left = SummaryStats::of(0, values[0]);
            for (t, v) in values.iter().enumerate().take(split).skip(1) { left.add(t as i64, *v); }
            let mut right = SummaryStats::of(split as i64, values[split]);
            for (t, v) in values.iter().enumerate().skip(split + 1) { right.add(t as i64, *v); }
            left.merge(&right);
            let (mean, var) = naive(&values);
            prop_assert!((left.mean - mean).abs() <= 1e-6 * (1.0 + mean.abs()));
            prop_assert!((left.variance().unwrap() - var).abs() <= 1e-6 * (1.0 + var));
            prop_assert!((whole.variance().unwrap() - var).abs() <= 1e-6 * (1.0 + var));
            prop_assert_eq!(left.count, whole.count);
            prop_assert_eq!(left.last, whole.last);
            prop_assert_eq!(left.first, whole.first);
        }
    }
}
