//! Retries with exponential backoff, full jitter and a bounded budget per batch.

use std::time::{Duration, Instant};

use rand::Rng;
use serde::{Deserialize, Serialize};

use super::DeliveryMetrics;
use crate::config::DurationText;

/// `retry = { … }` of a remote sink: how long a batch is retried before its records go to the
/// undelivered log. While a batch is retried the sink does not acknowledge checkpoints, so the
/// pipeline stops reading (bounded channels) and commits no position past it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RetryConfig {
    /// First backoff.
    pub initial_backoff: DurationText,
    /// Largest backoff.
    pub max_backoff: DurationText,
    /// Total time a batch may be retried (outages shorter than this lose nothing and write
    /// nothing to the undelivered log).
    pub budget: DurationText,
}

impl Default for RetryConfig {
    fn default() -> Self {
        Self {
            initial_backoff: DurationText(100),
            max_backoff: DurationText(20_000),
            budget: DurationText(15 * 60_000),
        }
    }
}

impl RetryConfig {
    /// Problems with the values as (key, message), for config validation.
    pub fn problems(&self) -> Vec<(String, String)> {
        let mut problems = Vec::new();
        if self.initial_backoff.0 == 0 {
            problems.push((
                "retry.initial_backoff".to_owned(),
                "must be more than 0".to_owned(),
            ));
        }
        if self.max_backoff.0 < self.initial_backoff.0 {
            problems.push((
                "retry.max_backoff".to_owned(),
                "must be at least retry.initial_backoff".to_owned(),
            ));
        }
        problems
    }

    /// A fresh backoff sequence for one batch.
    pub fn backoff(&self) -> Backoff {
        Backoff {
            next: self.initial_backoff.std(),
            max: self.max_backoff.std(),
            deadline: Instant::now() + self.budget.std(),
            attempts: 0,
        }
    }
}

/// The backoff state of one batch.
#[derive(Debug)]
pub struct Backoff {
    next: Duration,
    max: Duration,
    deadline: Instant,
    attempts: u32,
}

impl Backoff {
    /// The delay before the next attempt (full jitter: uniform in [0, current step]), or `None`
    /// when the budget is spent.
    pub fn next_delay(&mut self) -> Option<Duration> {
        let now = Instant::now();
        if now >= self.deadline {
            return None;
        }
        self.attempts += 1;
        let step = self.next;
        self.next = (self.next * 2).min(self.max);
        let jittered = rand::rng().random_range(Duration::ZERO..=step);
        Some(jittered.min(self.deadline - now))
    }

    /// Before re-sending `records` records that failed with `reason`: logs, counts them as
    /// retried, and returns the delay to wait; or, once the budget is spent, the reason to give
    /// them up with (the attempts made and the last error).
    pub fn retry(
        &mut self,
        sink: &'static str,
        reason: &str,
        records: usize,
        metrics: &DeliveryMetrics,
    ) -> Result<Duration, String> {
        match self.next_delay() {
            Some(delay) => {
                tracing::warn!(sink, %reason, ?delay, records, "delivery failed; retrying");
                metrics.retried(records);
                Ok(delay)
            }
            None => Err(format!(
                "retry budget spent after {} attempts; last error: {reason}",
                self.attempts + 1
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_grow_to_the_cap_and_stop_at_the_budget() {
        let config = RetryConfig {
            initial_backoff: DurationText(10),
            max_backoff: DurationText(40),
            budget: DurationText(60_000),
        };
        let mut backoff = config.backoff();
        for expected_cap in [10, 20, 40, 40] {
            let delay = backoff.next_delay().expect("within budget");
            assert!(delay <= Duration::from_millis(expected_cap));
        }
        let metrics = DeliveryMetrics::default();
        assert!(backoff.retry("test", "busy", 3, &metrics).is_ok());
        assert_eq!(metrics.snapshot().retried, 3);
        let spent = RetryConfig {
            budget: DurationText(0),
            ..config
        };
        assert_eq!(spent.backoff().next_delay(), None);
        assert_eq!(
            spent.backoff().retry("test", "busy", 3, &metrics),
            Err("retry budget spent after 1 attempts; last error: busy".to_owned())
        );
    }
}
