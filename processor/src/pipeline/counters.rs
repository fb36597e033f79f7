//! Pipeline counters: read by the progress bar and the final summary, and logged at each
//! checkpoint.

use std::sync::atomic::{AtomicU64, Ordering};

/// Monotonic counters shared by the stages.
#[derive(Debug, Default)]
pub struct PipelineCounters {
    /// Input consumed, in the source's progress unit.
    pub progress_units: AtomicU64,
    /// Records that decoded (possibly with dropped fields).
    pub records_decoded: AtomicU64,
    /// Records rejected while decoding.
    pub records_rejected: AtomicU64,
    /// Records with at least one dropped field.
    pub records_with_field_issues: AtomicU64,
    /// Records dead-lettered because a window they belong to had closed for good.
    pub records_late: AtomicU64,
    /// Records behind the watermark, which rules skip (they may still count in rollups).
    pub records_late_for_rules: AtomicU64,
    /// Records dead-lettered because of a rollup's `max_open_entries`.
    pub records_over_state_cap: AtomicU64,
    /// Partitions cut short by an input error.
    pub input_problems: AtomicU64,
    /// Rollups emitted (all versions).
    pub rollups: AtomicU64,
    /// Alert updates emitted (firing and resolved).
    pub alerts: AtomicU64,
    /// Dead letters emitted.
    pub dead_letters: AtomicU64,
    /// Detector state changes and notifications emitted.
    pub detector_events: AtomicU64,
    /// Anomaly rows emitted (scored records or windows written).
    pub anomalies: AtomicU64,
    /// Anomaly rows whose grade reached the model's alert level.
    pub anomaly_alerts: AtomicU64,
    /// Anomaly models in memory at the last checkpoint.
    pub anomaly_models_resident: AtomicU64,
    /// Anomaly models that left memory so far (saved, reloaded on return).
    pub anomaly_models_evicted: AtomicU64,
    /// Checkpoints committed.
    pub checkpoints: AtomicU64,
    /// Open (window, key) entries after the last batch, end of input or shutdown.
    pub open_window_entries: AtomicU64,
    /// Approximate bytes of window state at the last checkpoint.
    pub window_state_bytes: AtomicU64,
}

impl PipelineCounters {
    /// Adds `amount` to `counter`.
    pub fn add(counter: &AtomicU64, amount: u64) {
        counter.fetch_add(amount, Ordering::Relaxed);
    }

    /// Reads `counter`.
    pub fn get(counter: &AtomicU64) -> u64 {
        counter.load(Ordering::Relaxed)
    }
}
