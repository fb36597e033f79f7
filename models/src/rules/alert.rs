//! Alerts produced by rules.

use compact_str::CompactString;
use serde::{Deserialize, Serialize};
use telemetry::timestamp::format_rfc3339;

use super::rule::Severity;

/// Whether an alert's condition still holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AlertStatus {
    /// The condition held for its duration and has not cleared.
    Firing,
    /// The clear condition held for its duration.
    Resolved,
}

impl AlertStatus {
    /// Lower-case name as stored and sent.
    pub fn as_str(self) -> &'static str {
        match self {
            AlertStatus::Firing => "firing",
            AlertStatus::Resolved => "resolved",
        }
    }
}

/// Summary of the signal values from the first matching sample up to the firing one.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct TriggerValues {
    /// Value of the first matching sample.
    pub first: f64,
    /// Smallest matching value.
    pub min: f64,
    /// Largest matching value.
    pub max: f64,
    /// Value of the sample that made the alert fire.
    pub last: f64,
    /// Number of matching samples.
    pub count: u64,
}

/// One alert episode of one rule on one vehicle. Emitted when it fires and again when it
/// resolves; `(vehicle_id, rule, start_time_ms)` identifies the episode, so sinks upsert.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Alert {
    /// Vehicle the alert is about.
    pub vehicle_id: CompactString,
    /// Fleet of the vehicle, when known.
    pub fleet: Option<CompactString>,
    /// Rule name.
    pub rule: String,
    /// Rule severity.
    pub severity: Severity,
    /// Signal the rule reads.
    pub signal: String,
    /// The trigger condition as text.
    pub condition: String,
    /// Event time of the first matching sample.
    pub start_time_ms: i64,
    /// Event time of the sample that completed the duration.
    pub fired_time_ms: i64,
    /// Event time of the sample that completed the clear condition.
    pub end_time_ms: Option<i64>,
    /// Values that triggered the alert.
    pub trigger: TriggerValues,
    /// Firing or resolved.
    pub status: AlertStatus,
}

impl Alert {
    /// One readable line for logs, SNS subjects and e-mails.
    pub fn message(&self) -> String {
        let mut text = format!(
            "{} ({}): vehicle {} matched `{}` from {}; last {}, min {}, max {} over {} samples",
            self.rule,
            self.severity.as_str(),
            self.vehicle_id,
            self.condition,
            format_rfc3339(self.start_time_ms),
            self.trigger.last,
            self.trigger.min,
            self.trigger.max,
            self.trigger.count,
        );
        if let Some(end) = self.end_time_ms {
            text.push_str(&format!("; resolved at {}", format_rfc3339(end)));
        }
        text
    }
}
