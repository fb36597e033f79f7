//! Rate limiting by event time: at most `max` messages per key in each `per` interval (aligned
//! to the epoch), so a replay makes the same decisions. Suppressed messages are counted, and
//! once event time passes the interval's end, one summary message per key and interval says
//! how many were held back.

use std::collections::BTreeMap;

use crate::config::RateLimit;

/// Messages sent and suppressed for one key in one interval.
#[derive(Debug, Clone)]
struct Interval {
    start_ms: i64,
    sent: u32,
    suppressed: u64,
    topic: String,
}

/// What to tell subscribers about an interval with suppressed messages.
#[derive(Debug, Clone, PartialEq)]
pub struct Suppressed {
    /// The limited key (`vehicle veh-1`, `rule overheat`).
    pub key: String,
    /// Interval start (UTC ms).
    pub start_ms: i64,
    /// Interval end (UTC ms).
    pub end_ms: i64,
    /// Messages held back.
    pub count: u64,
    /// Topic of the first suppressed message.
    pub topic: String,
}

/// One limit over many keys.
#[derive(Debug)]
pub struct RateLimiter {
    max: u32,
    per_ms: i64,
    intervals: BTreeMap<String, Interval>,
}

impl RateLimiter {
    /// A limiter for `limit`.
    pub fn new(limit: &RateLimit) -> Self {
        Self {
            max: limit.max,
            per_ms: limit.per.0.max(1),
            intervals: BTreeMap::new(),
        }
    }

    /// Whether a message for `key` at `time_ms` may be sent; when it opens a new interval, the
    /// previous interval's summary (if any was suppressed) is returned too.
    pub fn admit(&mut self, key: &str, time_ms: i64, topic: &str) -> (bool, Option<Suppressed>) {
        let start_ms = time_ms.div_euclid(self.per_ms) * self.per_ms;
        let mut summary = None;
        let interval = self
            .intervals
            .entry(key.to_owned())
            .or_insert_with(|| Interval {
                start_ms,
                sent: 0,
                suppressed: 0,
                topic: topic.to_owned(),
            });
        if start_ms > interval.start_ms {
            summary = Self::summary(key, interval, self.per_ms);
            *interval = Interval {
                start_ms,
                sent: 0,
                suppressed: 0,
                topic: topic.to_owned(),
            };
        }
        if interval.sent < self.max {
            interval.sent += 1;
            (true, summary)
        } else {
            if interval.suppressed == 0 {
                interval.topic = topic.to_owned();
            }
            interval.suppressed += 1;
            (false, summary)
        }
    }

    /// Summaries of intervals that ended at or before `now_ms` (event time), removing them.
    pub fn ended(&mut self, now_ms: i64) -> Vec<Suppressed> {
        let per_ms = self.per_ms;
        let mut out = Vec::new();
        self.intervals.retain(|key, interval| {
            if interval.start_ms + per_ms > now_ms {
                return true;
            }
            out.extend(Self::summary(key, interval, per_ms));
            false
        });
        out
    }

    fn summary(key: &str, interval: &Interval, per_ms: i64) -> Option<Suppressed> {
        (interval.suppressed > 0).then(|| Suppressed {
            key: key.to_owned(),
            start_ms: interval.start_ms,
            end_ms: interval.start_ms + per_ms,
            count: interval.suppressed,
            topic: interval.topic.clone(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::DurationText;

    #[test]
    fn at_most_max_per_interval_then_one_summary() {
        let mut limiter = RateLimiter::new(&RateLimit {
            max: 2,
            per: DurationText(60_000),
        });
        let decisions: Vec<bool> = (0..5)
            .map(|i| limiter.admit("vehicle v", i * 1_000, "t").0)
            .collect();
        assert_eq!(decisions, [true, true, false, false, false]);
        assert!(limiter.ended(59_999).is_empty());
        let (admitted, summary) = limiter.admit("vehicle v", 61_000, "t");
        assert!(admitted);
        let summary = summary.expect("a summary of the first minute");
        assert_eq!(
            (summary.count, summary.start_ms, summary.end_ms),
            (3, 0, 60_000)
        );
        assert!(
            limiter.ended(200_000).is_empty(),
            "nothing suppressed in the second minute"
        );
    }
}
