//! Per-sink delivery counters: written, rejected by reason, retried, undelivered, latency.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use serde::Serialize;

/// Counters one remote sink updates; logged at each checkpoint and in the run summary.
#[derive(Debug, Default)]
pub struct DeliveryMetrics {
    written: AtomicU64,
    retried: AtomicU64,
    undelivered: AtomicU64,
    superseded: AtomicU64,
    calls: AtomicU64,
    call_micros: AtomicU64,
    max_call_micros: AtomicU64,
    rejected: Mutex<BTreeMap<String, u64>>,
    held_back: Mutex<BTreeMap<String, u64>>,
}

/// A copy of the counters.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct MetricsSnapshot {
    /// Records (points, messages, lines) the service accepted.
    pub written: u64,
    /// Records sent again after a throttle, 5xx, network error or per-record failure.
    pub retried: u64,
    /// Records written to the undelivered log.
    pub undelivered: u64,
    /// Records a newer version already in the service made unnecessary.
    pub superseded: u64,
    /// Records the service rejected, by reason (some were then retried).
    pub rejected: BTreeMap<String, u64>,
    /// Records deliberately not sent, by reason (`rate_limited`, `unrouted`).
    pub held_back: BTreeMap<String, u64>,
    /// Calls made.
    pub calls: u64,
    /// Mean call latency in milliseconds.
    pub mean_call_ms: f64,
    /// Slowest call in milliseconds.
    pub max_call_ms: f64,
}

impl DeliveryMetrics {
    /// Counts records accepted.
    pub fn written(&self, records: usize) {
        self.written.fetch_add(records as u64, Ordering::Relaxed);
    }

    /// Counts records sent again.
    pub fn retried(&self, records: usize) {
        self.retried.fetch_add(records as u64, Ordering::Relaxed);
    }

    /// Counts records given up on.
    pub fn undelivered(&self, records: usize) {
        self.undelivered
            .fetch_add(records as u64, Ordering::Relaxed);
    }

    /// Counts records made unnecessary by a newer version.
    pub fn superseded(&self, records: usize) {
        self.superseded.fetch_add(records as u64, Ordering::Relaxed);
    }

    /// Counts one rejected record under `reason`.
    pub fn rejected(&self, reason: &str) {
        bump(&self.rejected, reason);
    }

    /// Counts one record deliberately not sent under `reason`.
    pub fn held_back(&self, reason: &str) {
        bump(&self.held_back, reason);
    }

    /// Records one call's latency.
    pub fn call(&self, elapsed: Duration) {
        let micros = elapsed.as_micros() as u64;
        self.calls.fetch_add(1, Ordering::Relaxed);
        self.call_micros.fetch_add(micros, Ordering::Relaxed);
        self.max_call_micros.fetch_max(micros, Ordering::Relaxed);
    }

    /// The counters now.
    pub fn snapshot(&self) -> MetricsSnapshot {
        let calls = self.calls.load(Ordering::Relaxed);
        let total = self.call_micros.load(Ordering::Relaxed);
        MetricsSnapshot {
            written: self.written.load(Ordering::Relaxed),
            retried: self.retried.load(Ordering::Relaxed),
            undelivered: self.undelivered.load(Ordering::Relaxed),
            superseded: self.superseded.load(Ordering::Relaxed),
            rejected: copy(&self.rejected),
            held_back: copy(&self.held_back),
            calls,
            mean_call_ms: if calls == 0 {
                0.0
            } else {
                total as f64 / calls as f64 / 1000.0
            },
            max_call_ms: self.max_call_micros.load(Ordering::Relaxed) as f64 / 1000.0,
        }
    }
}

/// Counts one more `reason` (a poisoned lock still counts: the map is always consistent).
fn bump(counts: &Mutex<BTreeMap<String, u64>>, reason: &str) {
    let mut counts = counts.lock().unwrap_or_else(|e| e.into_inner());
    *counts.entry(reason.to_owned()).or_default() += 1;
}

fn copy(counts: &Mutex<BTreeMap<String, u64>>) -> BTreeMap<String, u64> {
    counts.lock().unwrap_or_else(|e| e.into_inner()).clone()
}
