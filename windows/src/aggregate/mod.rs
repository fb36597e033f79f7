//! Aggregators. [`Accumulator`] holds what one window of one key needs for the aggregates an
//! [`AggregateSpec`] asks for, and nothing more: the summary (count, sum, min, max, mean,
//! variance/stddev, first/last by event time, rate of change) always; a quantile sketch, histogram
//! counts, time-weighted samples and a distinct counter only when requested. Everything merges
//! (two accumulators of disjoint event sets combine into the accumulator of their union).

pub mod distinct;
pub mod sketch;
pub mod summary;
pub mod time_weighted;

use serde::{Deserialize, Serialize};

pub use distinct::DistinctCounter;
pub use sketch::QuantileSketch;
pub use summary::SummaryStats;
pub use time_weighted::TimeWeighted;

/// Which aggregates a rollup computes beyond the always-on summary.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AggregateSpec {
    /// Quantiles to report (each in [0, 1]); enables the sketch.
    pub quantiles: Vec<f64>,
    /// Relative accuracy of the quantile sketch.
    pub quantile_accuracy: f64,
    /// Ascending histogram bucket upper bounds; counts are per `(-∞, b0], (b0, b1], …, (bn, ∞)`.
    pub histogram_bounds: Vec<f64>,
    /// Compute the time-weighted average (keeps the window's samples).
    pub time_weighted: bool,
    /// Count distinct items (the vehicles of a fleet rollup, for instance).
    pub distinct: bool,
    /// HyperLogLog index bits for the distinct count (4–16).
    pub distinct_precision: u8,
}

impl Default for AggregateSpec {
    fn default() -> Self {
        Self {
            quantiles: Vec::new(),
            quantile_accuracy: sketch::DEFAULT_RELATIVE_ACCURACY,
            histogram_bounds: Vec::new(),
            time_weighted: false,
            distinct: false,
            distinct_precision: distinct::DEFAULT_PRECISION,
        }
    }
}

impl AggregateSpec {
    /// Problems with the spec, for config validation.
    pub fn problems(&self) -> Vec<String> {
        let mut problems = Vec::new();
        if let Some(q) = self.quantiles.iter().find(|q| !(0.0..=1.0).contains(*q)) {
            problems.push(format!("quantile {q} is outside [0, 1]"));
        }
        if !(self.quantile_accuracy > 0.0 && self.quantile_accuracy < 0.5) {
            problems.push(format!(
                "quantile_accuracy must be in (0, 0.5), got {}",
                self.quantile_accuracy
            ));
        }
        if self
            .histogram_bounds
            .windows(2)
            .any(|pair| pair[0].partial_cmp(&pair[1]) != Some(std::cmp::Ordering::Less))
        {
            problems.push("histogram_bounds must be strictly ascending".to_owned());
        }
        if !(4..=16).contains(&self.distinct_precision) {
            problems.push(format!(
                "distinct_precision must be in 4..=16, got {}",
                self.distinct_precision
            ));
        }
        problems
    }
}

/// What one window of one key accumulates. The optional aggregates live behind one box, so a
/// summary-only accumulator (the common case) stays small.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Accumulator {
    summary: Option<SummaryStats>,
    extras: Option<Box<Extras>>,
}

/// The optional aggregates of an [`Accumulator`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Extras {
    sketch: Option<QuantileSketch>,
    histogram: Vec<u64>,
    time_weighted: Option<TimeWeighted>,
    distinct: Option<DistinctCounter>,
}

impl Extras {
    /// [`Accumulator::add`] for the optional aggregates, kept out of line: most rollups have
    /// none.
    #[inline(never)]
    fn add(&mut self, spec: &AggregateSpec, time_ms: i64, value: f64, item: Option<&[u8]>) {
        if let Some(sketch) = &mut self.sketch {
            sketch.add(value);
        }
        if !self.histogram.is_empty() {
            let bucket = spec
                .histogram_bounds
                .partition_point(|bound| *bound < value);
            if let Some(count) = self.histogram.get_mut(bucket) {
                *count += 1;
            }
        }
        if let Some(samples) = &mut self.time_weighted {
            samples.add(time_ms, value);
        }
        if let (Some(distinct), Some(item)) = (&mut self.distinct, item) {
            distinct.add(item);
        }
    }
}

/// The aggregates of one window, as emitted.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AggregateResult {
    /// Count, min, max, mean, variance, first and last.
    pub summary: SummaryStats,
    /// Sum of the values.
    pub sum: f64,
    /// Sample standard deviation (`None` for one value).
    pub stddev: Option<f64>,
    /// (last − first) / elapsed seconds, by event time; `None` when all values share one time.
    pub rate_per_second: Option<f64>,
    /// Time-weighted average to the window end, when requested.
    pub time_weighted_mean: Option<f64>,
    /// `(q, value)` per requested quantile.
    pub quantiles: Vec<(f64, f64)>,
    /// Histogram counts (one more than the bounds), when requested.
    pub histogram: Vec<u64>,
    /// Estimated distinct count, when requested.
    pub distinct: Option<u64>,
}

impl Accumulator {
    /// An empty accumulator for `spec`.
    pub fn new(spec: &AggregateSpec) -> Self {
        let wants_extras = !spec.quantiles.is_empty()
            || !spec.histogram_bounds.is_empty()
            || spec.time_weighted
            || spec.distinct;
        Self {
            summary: None,
            extras: wants_extras.then(|| {
                Box::new(Extras {
                    sketch: (!spec.quantiles.is_empty()).then(|| {
                        QuantileSketch::new(spec.quantile_accuracy, sketch::DEFAULT_MAX_BUCKETS)
                    }),
                    histogram: if spec.histogram_bounds.is_empty() {
                        Vec::new()
                    } else {
                        vec![0; spec.histogram_bounds.len() + 1]
                    },
                    time_weighted: spec.time_weighted.then(TimeWeighted::default),
                    distinct: spec
                        .distinct
                        .then(|| DistinctCounter::new(spec.distinct_precision)),
                })
            }),
        }
    }

    /// Adds `value` seen at `time_ms`; `item` feeds the distinct count (ignored unless enabled).
    /// Inlined into the engines of other crates: it runs once per value, and as a call its
    /// register saving cost about a third of the summary's own work.
    #[inline]
    pub fn add(&mut self, spec: &AggregateSpec, time_ms: i64, value: f64, item: Option<&[u8]>) {
        match &mut self.summary {
            Some(summary) => summary.add(time_ms, value),
            None => self.summary = Some(SummaryStats::of(time_ms, value)),
        }
        if let Some(extras) = &mut self.extras {
            extras.add(spec, time_ms, value, item);
        }
    }

    /// Combines the accumulator of a disjoint set of events into this one.
    pub fn merge(&mut self, other: &Accumulator) {
        match (&mut self.summary, &other.summary) {
            (Some(mine), Some(theirs)) => mine.merge(theirs),
            (None, Some(theirs)) => self.summary = Some(*theirs),
            _ => {}
        }
        let (Some(mine), Some(theirs)) = (&mut self.extras, &other.extras) else {
            return;
        };
        if let (Some(a), Some(b)) = (&mut mine.sketch, &theirs.sketch) {
            a.merge(b);
        }
        for (a, b) in mine.histogram.iter_mut().zip(&theirs.histogram) {
            *a += b;
        }
        if let (Some(a), Some(b)) = (&mut mine.time_weighted, &theirs.time_weighted) {
            a.merge(b);
        }
        if let (Some(a), Some(b)) = (&mut mine.distinct, &theirs.distinct) {
            a.merge(b);
        }
    }

    /// Number of values added.
    pub fn count(&self) -> u64 {
        self.summary.map_or(0, |summary| summary.count)
    }

    /// The aggregates, for a window ending (exclusively) at `window_end_ms`; `None` when empty.
    pub fn result(&self, spec: &AggregateSpec, window_end_ms: i64) -> Option<AggregateResult> {
        let summary = self.summary?;
        let elapsed_ms = summary.last.0 - summary.first.0;
        let extras = self.extras.as_deref();
        Some(AggregateResult {
            summary,
            sum: summary.sum(),
            stddev: summary.stddev(),
            rate_per_second: (elapsed_ms > 0)
                .then(|| (summary.last.1 - summary.first.1) * 1000.0 / elapsed_ms as f64),
            time_weighted_mean: extras
                .and_then(|extras| extras.time_weighted.as_ref())
                .and_then(|samples| samples.average(window_end_ms)),
            quantiles: match extras.and_then(|extras| extras.sketch.as_ref()) {
                Some(sketch) => spec
                    .quantiles
                    .iter()
                    .filter_map(|q| sketch.quantile(*q).map(|value| (*q, value)))
                    .collect(),
                None => Vec::new(),
            },
            histogram: extras
                .map(|extras| extras.histogram.clone())
                .unwrap_or_default(),
            distinct: extras
                .and_then(|extras| extras.distinct.as_ref())
                .map(DistinctCounter::estimate),
        })
    }

    /// Approximate heap and inline bytes of this accumulator (for the state-bytes metric).
    pub fn state_bytes(&self) -> usize {
        std::mem::size_of::<Self>()
            + self.extras.as_deref().map_or(0, |extras| {
                std::mem::size_of::<Extras>()
                    + extras
                        .sketch
                        .as_ref()
                        .map_or(0, |sketch| sketch.bucket_count() * 40)
                    + extras.histogram.len() * 8
                    + extras
                        .time_weighted
                        .as_ref()
                        .map_or(0, TimeWeighted::state_bytes)
                    + extras
                        .distinct
                        .as_ref()
                        .map_or(0, DistinctCounter::state_bytes)
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn full_spec() -> AggregateSpec {
        AggregateSpec {
            quantiles: vec![0.5, 0.95],
            histogram_bounds: vec![10.0, 20.0],
            time_weighted: true,
            distinct: true,
            ..AggregateSpec::default()
        }
    }

    #[test]
    fn every_aggregate_against_exact_values() {
        let spec = full_spec();
        let mut acc = Accumulator::new(&spec);
        let samples = [
            (0, 5.0, "a"),
            (10_000, 15.0, "b"),
            (20_000, 25.0, "a"),
            (30_000, 10.0, "c"),
        ];
        for (t, v, item) in samples {
            acc.add(&spec, t, v, Some(item.as_bytes()));
        }
        let result = acc.result(&spec, 60_000).unwrap();
        assert_eq!(result.summary.count, 4);
        assert_eq!(result.sum, 55.0);
        assert_eq!(result.rate_per_second, Some((10.0 - 5.0) / 30.0));
        assert_eq!(result.histogram, vec![2, 1, 1]);
        assert_eq!(result.distinct, Some(3));
        let twa = (5.0 * 10.0 + 15.0 * 10.0 + 25.0 * 10.0 + 10.0 * 30.0) / 60.0;
        assert!((result.time_weighted_mean.unwrap() - twa).abs() < 1e-12);
        let median = result.quantiles[0].1;
        assert!((median - 10.0).abs() <= 0.1, "{median}");
        assert!(acc.state_bytes() > 4096);
    }

    #[test]
    fn merge_of_halves_equals_whole() {
        let spec = full_spec();
        let mut whole = Accumulator::new(&spec);
        let mut left = Accumulator::new(&spec);
        let mut right = Accumulator::new(&spec);
        for i in 0..100 {
            let (t, v) = (i * 1000, (i * 7 % 31) as f64);
            let item = format!("veh-{}", i % 13);
            whole.add(&spec, t, v, Some(item.as_bytes()));
            if i % 3 == 0 {
                left.add(&spec, t, v, Some(item.as_bytes()));
            } else {
                right.add(&spec, t, v, Some(item.as_bytes()));
            }
        }
        left.merge(&right);
        let (a, b) = (
            left.result(&spec, 100_000).unwrap(),
            whole.result(&spec, 100_000).unwrap(),
        );
        assert_eq!(a.summary.count, b.summary.count);
        assert!((a.summary.mean - b.summary.mean).abs() < 1e-9);
        assert_eq!(
            (a.histogram, a.distinct, a.quantiles),
            (b.histogram, b.distinct, b.quantiles)
        );
        assert_eq!(a.time_weighted_mean, b.time_weighted_mean);
    }

    #[test]
    fn a_summary_only_accumulator_stays_small() {
        let spec = AggregateSpec::default();
        let mut acc = Accumulator::new(&spec);
        acc.add(&spec, 0, 1.0, None);
        assert!(acc.state_bytes() <= 96, "{}", acc.state_bytes());
    }

    #[test]
    fn spec_problems() {
        let spec = AggregateSpec {
            quantiles: vec![1.5],
            histogram_bounds: vec![2.0, 1.0],
            distinct_precision: 30,
            ..AggregateSpec::default()
        };
        assert_eq!(spec.problems().len(), 3);
    }
}
