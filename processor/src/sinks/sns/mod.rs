//! The SNS alert sink: alerts (threshold rules, anomaly grades over the alert level, detector
//! `sns` actions) as messages with a readable subject, a JSON body and filterable attributes
//! (`vehicle_id`, `fleet`, `rule`, `severity`, `kind`, `status`); routed to topics by severity,
//! rule and kind; rate limited per vehicle and per rule with a summary of what was held back;
//! FIFO topics get `MessageGroupId` = vehicle and a deterministic `MessageDeduplicationId`
//! (`message`). Messages to one topic are published in order.

mod message;
mod publisher;
mod rate_limit;

use std::sync::Arc;

use aws_sdk_sns::Client;

pub use message::{subject, AlertMessage};
pub use publisher::Publisher;
pub use rate_limit::{RateLimiter, Suppressed};

use super::delivery::{DeliveryMetrics, UndeliveredLog};
use super::{Sink, SinkError};
use crate::config::{AwsConfig, SnsSinkConfig};
use crate::pipeline::output::Output;

const NAME: &str = "sns";
/// Messages buffered before they are published without waiting for a checkpoint.
const MAX_PENDING: usize = 100;

/// The sink; see the module documentation.
pub struct SnsSink {
    publisher: Arc<Publisher>,
    runtime: tokio::runtime::Handle,
    config: SnsSinkConfig,
    per_vehicle: Option<RateLimiter>,
    per_rule: Option<RateLimiter>,
    latest_ms: i64,
    pending: Vec<(String, AlertMessage)>,
    undelivered: UndeliveredLog,
}

impl SnsSink {
    /// Builds the client and opens the undelivered log.
    pub async fn open(
        config: &SnsSinkConfig,
        aws: &AwsConfig,
        metrics: Arc<DeliveryMetrics>,
    ) -> Result<Self, SinkError> {
        let sdk = crate::aws::sdk_config(
            aws,
            config.endpoint_url.as_deref(),
            config.request_timeout.std(),
        )
        .await;
        let client = Client::new(&sdk);
        Ok(Self {
            undelivered: UndeliveredLog::open(
                NAME,
                &config.undelivered_path,
                Arc::clone(&metrics),
            )?,
            publisher: Arc::new(Publisher::new(client, config.retry.clone(), metrics)),
            runtime: tokio::runtime::Handle::current(),
            per_vehicle: config.per_vehicle_limit.as_ref().map(RateLimiter::new),
            per_rule: config.per_rule_limit.as_ref().map(RateLimiter::new),
            config: config.clone(),
            latest_ms: i64::MIN,
            pending: Vec::new(),
        })
    }

    /// The topic for `message`: its own target, the first matching route, or the default.
    fn route(&self, message: &AlertMessage) -> Option<String> {
        if let Some(topic) = &message.target_topic {
            return Some(topic.clone());
        }
        let matches =
            |wanted: &[String], value: &str| wanted.is_empty() || wanted.iter().any(|w| w == value);
        self.config
            .routes
            .iter()
            .find(|route| {
                matches(&route.severities, &message.severity)
                    && matches(&route.rules, &message.rule)
                    && matches(&route.kinds, message.kind)
            })
            .map(|route| route.topic_arn.clone())
            .or_else(|| Some(self.config.topic_arn.clone()).filter(|t| !t.is_empty()))
    }

    fn accept(&mut self, message: AlertMessage) {
        let Some(topic) = self.route(&message) else {
            self.publisher.metrics().held_back("unrouted");
            return;
        };
        self.latest_ms = self.latest_ms.max(message.time_ms);
        let mut admitted = true;
        let limits = [
            (
                &mut self.per_vehicle,
                "vehicle",
                message.vehicle_id.as_str(),
            ),
            (&mut self.per_rule, "rule", message.rule.as_str()),
        ];
        for (limiter, kind, name) in limits {
            if let Some(limiter) = limiter {
                let key = format!("{kind} {name}");
                let (ok, summary) = limiter.admit(&key, message.time_ms, &topic);
                admitted &= ok;
                self.pending.extend(summary.map(summary_entry));
            }
        }
        if admitted {
            self.pending.push((topic, message));
        } else {
            self.publisher.metrics().held_back("rate_limited");
        }
    }

    /// Queues the summaries of every limit interval that event time has passed.
    fn summarise_ended(&mut self) {
        for limiter in [&mut self.per_vehicle, &mut self.per_rule]
            .into_iter()
            .flatten()
        {
            self.pending
                .extend(limiter.ended(self.latest_ms).into_iter().map(summary_entry));
        }
    }

    /// Publishes everything pending, topic by topic, each in order.
    fn send_pending(&mut self) -> Result<(), SinkError> {
        if self.pending.is_empty() {
            return Ok(());
        }
        let mut by_topic: Vec<(String, Vec<AlertMessage>)> = Vec::new();
        for (topic, message) in self.pending.drain(..) {
            match by_topic.iter_mut().find(|(t, _)| *t == topic) {
                Some((_, messages)) => messages.push(message),
                None => by_topic.push((topic, vec![message])),
            }
        }
        let publisher = Arc::clone(&self.publisher);
        let outcome = self.runtime.block_on(async move {
            let mut undelivered = Vec::new();
            for (topic, messages) in by_topic {
                undelivered.extend(publisher.publish(&topic, messages).await?);
            }
            Ok::<_, String>(undelivered)
        });
        let undelivered = outcome.map_err(|message| SinkError::Remote {
            sink: NAME,
            message,
        })?;
        for (message, reason) in &undelivered {
            self.undelivered.record(reason, message)?;
        }
        Ok(())
    }
}

/// A summary message with its topic.
fn summary_entry(summary: Suppressed) -> (String, AlertMessage) {
    let message = summary_message(&summary);
    (summary.topic, message)
}

/// The message telling subscribers how many messages a limit held back.
fn summary_message(summary: &Suppressed) -> AlertMessage {
    let start = telemetry::timestamp::format_rfc3339(summary.start_ms);
    let end = telemetry::timestamp::format_rfc3339(summary.end_ms);
    let vehicle = summary
        .key
        .strip_prefix("vehicle ")
        .unwrap_or("*")
        .to_owned();
    let text = format!(
        "{} messages for {} were suppressed by the rate limit between {start} and {end}",
        summary.count, summary.key
    );
    AlertMessage {
        kind: "summary",
        vehicle_id: vehicle,
        fleet: None,
        rule: "rate_limit".to_owned(),
        severity: "info".to_owned(),
        status: "suppressed".to_owned(),
        time_ms: summary.end_ms,
        subject: subject(&format!(
            "{} messages suppressed for {}",
            summary.count, summary.key
        )),
        body: serde_json::json!({
            "kind": "summary",
            "limited": summary.key,
            "suppressed": summary.count,
            "from": start,
            "to": end,
            "message": text,
        })
        .to_string(),
        target_topic: None,
    }
}

impl Sink for SnsSink {
    fn name(&self) -> &'static str {
        NAME
    }

    fn describe(&self) -> String {
        let mut topics: Vec<&str> = self
            .config
            .routes
            .iter()
            .map(|r| r.topic_arn.as_str())
            .collect();
        if !self.config.topic_arn.is_empty() {
            topics.push(&self.config.topic_arn);
        }
        format!(
            "{} (undelivered messages: {})",
            topics.join(", "),
            self.undelivered.describe()
        )
    }

    fn restore(&mut self, token: Option<u64>) -> Result<(), SinkError> {
        self.pending.clear();
        self.undelivered.restore(token)
    }

    fn write(&mut self, outputs: &[Output]) -> Result<(), SinkError> {
        for output in outputs {
            if let Some(message) = AlertMessage::from_output(output, self.config.send_resolved) {
                self.accept(message);
            }
        }
        self.summarise_ended();
        if self.pending.len() >= MAX_PENDING {
            self.send_pending()?;
        }
        Ok(())
    }

    fn flush(&mut self) -> Result<Option<u64>, SinkError> {
        self.send_pending()?;
        self.undelivered.flush()
    }
}
