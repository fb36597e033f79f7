//! Injected, labelled anomalies: what a detector or rule should find.

use serde::{Deserialize, Serialize};

/// The shape of an injected anomaly.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AnomalyKind {
    /// One sample far off.
    Spike,
    /// A constant offset for a while.
    LevelShift,
    /// The sensor repeats its last value.
    StuckSensor,
    /// An offset growing linearly over time.
    Drift,
}

/// One injected anomaly, written to the labels side file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AnomalyLabel {
    /// Vehicle affected.
    pub vehicle_id: String,
    /// Signal affected.
    pub signal: String,
    /// Shape.
    pub kind: AnomalyKind,
    /// First affected event time (UTC ms, inclusive).
    pub start_ms: i64,
    /// Last affected event time (UTC ms, inclusive).
    pub end_ms: i64,
    /// Size of the offset (spike height, shift, final drift); 0 for a stuck sensor.
    pub magnitude: f64,
}

impl AnomalyLabel {
    /// Applies the anomaly to `value` at `time_ms`; `stuck` is the value frozen at its start.
    pub(crate) fn apply(&self, time_ms: i64, value: f64, stuck: &mut Option<f64>) -> f64 {
        if time_ms < self.start_ms || time_ms > self.end_ms {
            return value;
        }
        match self.kind {
            AnomalyKind::Spike | AnomalyKind::LevelShift => value + self.magnitude,
            AnomalyKind::StuckSensor => *stuck.get_or_insert(value),
            AnomalyKind::Drift => {
                let span = (self.end_ms - self.start_ms).max(1) as f64;
                value + self.magnitude * (time_ms - self.start_ms) as f64 / span
            }
        }
    }
}
