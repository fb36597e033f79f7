//! `[sinks.sns]`: alerts to Amazon SNS topics, routed by severity, rule and kind, rate limited
//! per vehicle and per rule.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use super::DurationText;
use crate::sinks::delivery::RetryConfig;

/// `[[sinks.sns.routes]]`: alerts matching every given filter go to `topic_arn`. Routes are
/// tried in order; the first match wins; unmatched alerts go to `sinks.sns.topic_arn`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SnsRoute {
    /// Destination topic.
    pub topic_arn: String,
    /// Severities (`info`, `warning`, `critical`); empty: any.
    #[serde(default)]
    pub severities: Vec<String>,
    /// Rule, detector-model or anomaly-model names; empty: any.
    #[serde(default)]
    pub rules: Vec<String>,
    /// Kinds (`alert`, `anomaly`, `detector`); empty: any.
    #[serde(default)]
    pub kinds: Vec<String>,
}

/// At most `max` messages per `per` of event time for one key; the rest are suppressed and
/// counted, and one summary message per key and interval says how many.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RateLimit {
    /// Messages allowed per interval.
    pub max: u32,
    /// Interval length (event time, aligned to the epoch).
    pub per: DurationText,
}

/// `[sinks.sns]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SnsSinkConfig {
    /// Publish alerts to SNS.
    pub enabled: bool,
    /// Topic for alerts no route matches (empty: such alerts are not sent, and counted as
    /// `unrouted`). A `.fifo` topic gets `MessageGroupId` = vehicle and a deterministic
    /// `MessageDeduplicationId`.
    pub topic_arn: String,
    /// Routes tried before `topic_arn`.
    pub routes: Vec<SnsRoute>,
    /// Endpoint override for this sink (an emulator).
    pub endpoint_url: Option<String>,
    /// Send resolved alerts too (not only firing ones).
    pub send_resolved: bool,
    /// Limit per vehicle.
    pub per_vehicle_limit: Option<RateLimit>,
    /// Limit per rule (over all vehicles).
    pub per_rule_limit: Option<RateLimit>,
    /// Per-call timeout.
    pub request_timeout: DurationText,
    /// Retry policy for throttling, 5xx, network errors and failed entries.
    pub retry: RetryConfig,
    /// NDJSON file of messages SNS refused for good, with the reason.
    pub undelivered_path: PathBuf,
}

impl Default for SnsSinkConfig {
    fn default() -> Self {
        Self {
            enabled: false,
            topic_arn: String::new(),
            routes: Vec::new(),
            endpoint_url: None,
            send_resolved: true,
            per_vehicle_limit: None,
            per_rule_limit: None,
            request_timeout: DurationText(30_000),
            retry: RetryConfig::default(),
            undelivered_path: PathBuf::from("out/undelivered-sns.ndjson"),
        }
    }
}

impl SnsSinkConfig {
    /// Problems with the values as (key, message), for config validation.
    pub fn problems(&self) -> Vec<(String, String)> {
        let mut problems = self.retry.problems();
        if !self.enabled {
            return problems;
        }
        let mut problem = |key: String, message: String| problems.push((key, message));
        let arn_ok = |arn: &str| arn.starts_with("arn:") && arn.split(':').count() == 6;
        if self.topic_arn.is_empty() && self.routes.is_empty() {
            problem(
                "topic_arn".to_owned(),
                "set a topic ARN or at least one [[sinks.sns.routes]]".to_owned(),
            );
        }
        if !self.topic_arn.is_empty() && !arn_ok(&self.topic_arn) {
            problem(
                "topic_arn".to_owned(),
                format!("is not a topic ARN: {:?}", self.topic_arn),
            );
        }
        for (index, route) in self.routes.iter().enumerate() {
            if !arn_ok(&route.topic_arn) {
                problem(
                    format!("routes[{index}].topic_arn"),
                    format!("is not a topic ARN: {:?}", route.topic_arn),
                );
            }
            for severity in &route.severities {
                if !matches!(severity.as_str(), "info" | "warning" | "critical") {
                    problem(
                        format!("routes[{index}].severities"),
                        format!("unknown severity {severity:?} (info, warning, critical)"),
                    );
                }
            }
            for kind in &route.kinds {
                if !matches!(kind.as_str(), "alert" | "anomaly" | "detector") {
                    problem(
                        format!("routes[{index}].kinds"),
                        format!("unknown kind {kind:?} (alert, anomaly, detector)"),
                    );
                }
            }
        }
        for (key, limit) in [
            ("per_vehicle_limit", &self.per_vehicle_limit),
            ("per_rule_limit", &self.per_rule_limit),
        ] {
            if let Some(limit) = limit {
                if limit.max == 0 || limit.per.0 == 0 {
                    problem(key.to_owned(), "max and per must be more than 0".to_owned());
                }
            }
        }
        problems
    }
}
