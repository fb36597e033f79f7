//! Alert messages: which outputs become SNS messages, their subject, JSON body, filterable
//! attributes, and the deterministic deduplication id FIFO topics use.
//!
//! The deduplication id is the SHA-256 (hex, 64 characters) of the alert's identity — kind,
//! vehicle, rule, status and the event time of the firing or state change — so a replay or a
//! worker taking over a shard publishes the same id, and SNS FIFO drops the second copy within
//! its 5-minute window.

use serde_json::json;
use sha2::{Digest, Sha256};

use crate::pipeline::output::Output;

/// One message to publish.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct AlertMessage {
    /// `alert` (threshold rules), `anomaly` (anomaly grade over the alert level) or `detector`
    /// (an IoT Events detector model's `sns` action).
    pub kind: &'static str,
    /// Vehicle.
    pub vehicle_id: String,
    /// Fleet, when known.
    pub fleet: Option<String>,
    /// Rule, anomaly model or detector model name.
    pub rule: String,
    /// `info`, `warning` or `critical`.
    pub severity: String,
    /// `firing`, `resolved`, or the detector state.
    pub status: String,
    /// Event time the message is about (UTC ms).
    pub time_ms: i64,
    /// Readable subject (≤ 100 characters, one line).
    pub subject: String,
    /// JSON body.
    pub body: String,
    /// Topic named by the source itself (a detector's `sns` action target), used before routes.
    pub target_topic: Option<String>,
}

impl AlertMessage {
    /// The message for an output, or `None` for outputs that are not alerts (resolved alerts
    /// only when `send_resolved`).
    pub fn from_output(output: &Output, send_resolved: bool) -> Option<Self> {
        match output {
            Output::Alert(alert) => Self::from_alert(alert, send_resolved),
            Output::Detector(models::detector::DetectorOutput::Alert(alert)) => {
                Self::from_alert(alert, send_resolved)
            }
            Output::Anomaly(row) => {
                let severity = row.alert?;
                let body = json!({
                    "kind": "anomaly",
                    "vehicle_id": row.vehicle_id.as_str(),
                    "fleet": row.fleet.as_deref(),
                    "model": &*row.model,
                    "severity": severity.as_str(),
                    "time": telemetry::timestamp::format_rfc3339(row.time_ms),
                    "score": row.score,
                    "grade": row.grade,
                    "threshold": row.threshold,
                    "confidence": row.confidence,
                    "explanation": row.explanation.as_deref().and_then(|e| serde_json::from_str::<serde_json::Value>(e).ok()),
                    "message": row.message(),
                });
                Some(Self {
                    kind: "anomaly",
                    vehicle_id: row.vehicle_id.to_string(),
                    fleet: row.fleet.as_ref().map(ToString::to_string),
                    rule: row.model.to_string(),
                    severity: severity.as_str().to_owned(),
                    status: "firing".to_owned(),
                    time_ms: row.time_ms,
                    subject: subject(&format!(
                        "[{}] anomaly {}: vehicle {} grade {:.2}",
                        severity.as_str().to_ascii_uppercase(),
                        row.model,
                        row.vehicle_id,
                        row.grade
                    )),
                    body: body.to_string(),
                    target_topic: None,
                })
            }
            Output::Detector(models::detector::DetectorOutput::Notification {
                vehicle_id,
                model,
                kind,
                target,
                state,
                time_ms,
                payload,
                ..
            }) if kind == "sns" => Some(Self {
                kind: "detector",
                vehicle_id: vehicle_id.to_string(),
                fleet: None,
                rule: model.clone(),
                severity: "warning".to_owned(),
                status: state.clone(),
                time_ms: *time_ms,
                subject: subject(&format!("{model}: vehicle {vehicle_id} in state {state}")),
                body: payload.clone(),
                target_topic: Some(target.clone()).filter(|t| t.starts_with("arn:")),
            }),
            _ => None,
        }
    }

    fn from_alert(alert: &models::rules::Alert, send_resolved: bool) -> Option<Self> {
        let resolved = alert.status == models::rules::AlertStatus::Resolved;
        if resolved && !send_resolved {
            return None;
        }
        let time_ms = if resolved {
            alert.end_time_ms.unwrap_or(alert.fired_time_ms)
        } else {
            alert.fired_time_ms
        };
        let body = json!({
            "kind": "alert",
            "vehicle_id": alert.vehicle_id.as_str(),
            "fleet": alert.fleet.as_deref(),
            "rule": alert.rule,
            "severity": alert.severity.as_str(),
            "status": alert.status.as_str(),
            "signal": alert.signal,
            "condition": alert.condition,
            "start_time": telemetry::timestamp::format_rfc3339(alert.start_time_ms),
            "fired_time": telemetry::timestamp::format_rfc3339(alert.fired_time_ms),
            "end_time": alert.end_time_ms.map(telemetry::timestamp::format_rfc3339),
            "trigger": {
                "first": alert.trigger.first,
                "min": alert.trigger.min,
                "max": alert.trigger.max,
                "last": alert.trigger.last,
                "count": alert.trigger.count,
            },
            "message": alert.message(),
        });
        Some(Self {
            kind: "alert",
            vehicle_id: alert.vehicle_id.to_string(),
            fleet: alert.fleet.as_ref().map(ToString::to_string),
            rule: alert.rule.clone(),
            severity: alert.severity.as_str().to_owned(),
            status: alert.status.as_str().to_owned(),
            time_ms,
            subject: subject(&format!(
                "[{}] {} {}: vehicle {}",
                alert.severity.as_str().to_ascii_uppercase(),
                alert.rule,
                alert.status.as_str(),
                alert.vehicle_id
            )),
            body: body.to_string(),
            target_topic: None,
        })
    }

    /// The FIFO deduplication id (see the module documentation).
    pub fn deduplication_id(&self) -> String {
        let mut hasher = Sha256::new();
        for part in [
            self.kind,
            &self.vehicle_id,
            &self.rule,
            &self.status,
            &self.time_ms.to_string(),
        ] {
            hasher.update(part.as_bytes());
            hasher.update([0]);
        }
        hasher
            .finalize()
            .iter()
            .map(|byte| format!("{byte:02x}"))
            .collect()
    }
}

/// A subject SNS accepts: one line of printable ASCII, at most 100 characters.
pub fn subject(text: &str) -> String {
    let mut out: String = text
        .chars()
        .map(|c| {
            if c.is_ascii_graphic() || c == ' ' {
                c
            } else {
                '?'
            }
        })
        .collect();
    if out.len() > 100 {
        out.truncate(97);
        out.push_str("...");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn alert(status: models::rules::AlertStatus) -> models::rules::Alert {
        models::rules::Alert {
            vehicle_id: "veh-1".into(),
            fleet: Some("north".into()),
            rule: "overheat".to_owned(),
            severity: models::rules::Severity::Critical,
            signal: "coolant_temp_c".to_owned(),
            condition: "coolant_temp_c > 110 for 30s".to_owned(),
            start_time_ms: 1_000,
            fired_time_ms: 31_000,
            end_time_ms: None,
            trigger: models::rules::TriggerValues {
                first: 111.0,
                min: 111.0,
                max: 118.0,
                last: 117.0,
                count: 30,
            },
            status,
        }
    }

    #[test]
    fn alerts_become_messages_with_stable_ids() {
        let output = Output::Alert(alert(models::rules::AlertStatus::Firing));
        let message = AlertMessage::from_output(&output, true).expect("a message");
        assert_eq!(message.subject, "[CRITICAL] overheat firing: vehicle veh-1");
        assert_eq!(message.severity, "critical");
        let body: serde_json::Value = serde_json::from_str(&message.body).expect("JSON");
        assert_eq!(body["trigger"]["max"], 118.0);
        let again = AlertMessage::from_output(&output, true).expect("a message");
        assert_eq!(message.deduplication_id(), again.deduplication_id());
        assert_eq!(message.deduplication_id().len(), 64);
        let resolved = Output::Alert(models::rules::Alert {
            end_time_ms: Some(90_000),
            ..alert(models::rules::AlertStatus::Resolved)
        });
        let resolved_message = AlertMessage::from_output(&resolved, true).expect("a message");
        assert_ne!(
            resolved_message.deduplication_id(),
            message.deduplication_id()
        );
        assert!(AlertMessage::from_output(&resolved, false).is_none());
    }

    #[test]
    fn subjects_are_one_short_printable_line() {
        let long = subject(&format!("héllo\nworld {}", "x".repeat(200)));
        assert_eq!(long.len(), 100);
        assert!(long.starts_with("h?llo?world"));
    }
}
