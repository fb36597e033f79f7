//! `PublishBatch` with per-entry failure handling: batches of at most 10 entries and 256 KiB,
//! failed entries re-sent with backoff unless SNS says the sender is at fault (then they are
//! undelivered with SNS's code and message), whole-call failures retried within the budget.

use std::sync::Arc;
use std::time::Instant;

use aws_sdk_sns::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
use aws_sdk_sns::operation::publish_batch::PublishBatchError;
use aws_sdk_sns::types::{MessageAttributeValue, PublishBatchRequestEntry};
use aws_sdk_sns::Client;

use super::message::AlertMessage;
use crate::sinks::delivery::{DeliveryMetrics, RetryConfig};

/// SNS's limit on entries per `PublishBatch`.
const MAX_ENTRIES: usize = 10;
/// SNS's limit on a whole batch's payload, with room for attributes and ids.
const MAX_BATCH_BYTES: usize = 256 * 1024 - 16 * 1024;

/// Publishes messages to topics.
pub struct Publisher {
    client: Client,
    retry: RetryConfig,
    metrics: Arc<DeliveryMetrics>,
}

enum Failure {
    Retryable(String),
    Fatal(String),
}

impl Publisher {
    /// A publisher with `client`.
    pub fn new(client: Client, retry: RetryConfig, metrics: Arc<DeliveryMetrics>) -> Self {
        Self {
            client,
            retry,
            metrics,
        }
    }

    /// The delivery counters.
    pub fn metrics(&self) -> &DeliveryMetrics {
        &self.metrics
    }

    /// Publishes `messages` to `topic` in order; returns the messages given up on with their
    /// reasons, or a fatal error.
    pub async fn publish(
        &self,
        topic: &str,
        messages: Vec<AlertMessage>,
    ) -> Result<Vec<(AlertMessage, String)>, String> {
        let mut undelivered = Vec::new();
        for batch in batches(messages) {
            undelivered.extend(self.publish_batch(topic, batch).await?);
        }
        Ok(undelivered)
    }

    async fn publish_batch(
        &self,
        topic: &str,
        mut batch: Vec<AlertMessage>,
    ) -> Result<Vec<(AlertMessage, String)>, String> {
        let fifo = topic.ends_with(".fifo");
        let mut undelivered = Vec::new();
        let mut backoff = self.retry.backoff();
        while !batch.is_empty() {
            let entries = batch
                .iter()
                .enumerate()
                .map(|(index, message)| entry(index, message, fifo))
                .collect::<Result<Vec<_>, _>>()?;
            let began = Instant::now();
            let result = self
                .client
                .publish_batch()
                .topic_arn(topic)
                .set_publish_batch_request_entries(Some(entries))
                .send()
                .await;
            self.metrics.call(began.elapsed());
            let reason = match result {
                Ok(output) => {
                    let mut again = Vec::new();
                    let failed = output.failed();
                    self.metrics
                        .written(batch.len().saturating_sub(failed.len()));
                    for failure in failed {
                        let Some(index) = failure
                            .id()
                            .strip_prefix('m')
                            .and_then(|i| i.parse::<usize>().ok())
                        else {
                            continue;
                        };
                        let Some(message) = batch.get(index).cloned() else {
                            continue;
                        };
                        let reason = format!(
                            "{}: {}",
                            failure.code(),
                            failure.message().unwrap_or("no message")
                        );
                        self.metrics.rejected(failure.code());
                        if failure.sender_fault() {
                            undelivered.push((message, reason));
                        } else {
                            again.push((message, reason));
                        }
                    }
                    if again.is_empty() {
                        break;
                    }
                    let reason = again[0].1.clone();
                    batch = again.into_iter().map(|(message, _)| message).collect();
                    reason
                }
                Err(err) => match classify(err) {
                    Failure::Fatal(reason) => return Err(format!("{topic}: {reason}")),
                    Failure::Retryable(reason) => reason,
                },
            };
            match backoff.retry("sns", &reason, batch.len(), &self.metrics) {
                Ok(delay) => tokio::time::sleep(delay).await,
                Err(reason) => undelivered.extend(batch.drain(..).map(|m| (m, reason.clone()))),
            }
        }
        Ok(undelivered)
    }
}

/// Splits `messages`, in order, into batches SNS accepts: at most [`MAX_ENTRIES`] entries and
/// [`MAX_BATCH_BYTES`] of subjects and bodies (a larger single message gets a batch of its own).
fn batches(messages: Vec<AlertMessage>) -> Vec<Vec<AlertMessage>> {
    let mut batches: Vec<Vec<AlertMessage>> = Vec::new();
    let mut bytes = 0;
    for message in messages {
        let size = message.body.len() + message.subject.len();
        match batches.last_mut() {
            Some(batch) if batch.len() < MAX_ENTRIES && bytes + size <= MAX_BATCH_BYTES => {
                bytes += size;
                batch.push(message);
            }
            _ => {
                bytes = size;
                batches.push(vec![message]);
            }
        }
    }
    batches
}

fn entry(
    index: usize,
    message: &AlertMessage,
    fifo: bool,
) -> Result<PublishBatchRequestEntry, String> {
    let attribute = |value: &str| {
        MessageAttributeValue::builder()
            .data_type("String")
            .string_value(value)
            .build()
            .map_err(|err| err.to_string())
    };
    let mut builder = PublishBatchRequestEntry::builder()
        .id(format!("m{index}"))
        .message(&message.body)
        .subject(&message.subject)
        .message_attributes("vehicle_id", attribute(&message.vehicle_id)?)
        .message_attributes("rule", attribute(&message.rule)?)
        .message_attributes("severity", attribute(&message.severity)?)
        .message_attributes("kind", attribute(message.kind)?)
        .message_attributes("status", attribute(&message.status)?);
    if let Some(fleet) = &message.fleet {
        builder = builder.message_attributes("fleet", attribute(fleet)?);
    }
    if fifo {
        builder = builder
            .message_group_id(&message.vehicle_id)
            .message_deduplication_id(message.deduplication_id());
    }
    builder.build().map_err(|err| err.to_string())
}

fn classify(err: SdkError<PublishBatchError>) -> Failure {
    let text = DisplayErrorContext(&err).to_string();
    match &err {
        SdkError::ServiceError(service) => {
            let status = service.raw().status().as_u16();
            let code = service.err().code().unwrap_or_default();
            if status == 429
                || status >= 500
                || code.contains("Throttl")
                || matches!(service.err(), PublishBatchError::InternalErrorException(_))
            {
                Failure::Retryable(text)
            } else {
                Failure::Fatal(text)
            }
        }
        SdkError::TimeoutError(_) | SdkError::DispatchFailure(_) | SdkError::ResponseError(_) => {
            Failure::Retryable(text)
        }
        _ => Failure::Fatal(text),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(body_bytes: usize, n: usize) -> AlertMessage {
        AlertMessage {
            kind: "alert",
            vehicle_id: format!("veh-{n}"),
            fleet: None,
            rule: "r".to_owned(),
            severity: "info".to_owned(),
            status: "firing".to_owned(),
            time_ms: n as i64,
            subject: String::new(),
            body: "x".repeat(body_bytes),
            target_topic: None,
        }
    }

    #[test]
    fn batches_keep_order_and_sns_limits() {
        let small: Vec<_> = (0..23).map(|n| message(100, n)).collect();
        let sizes: Vec<usize> = batches(small).iter().map(Vec::len).collect();
        assert_eq!(sizes, [10, 10, 3]);

        let big: Vec<_> = (0..5).map(|n| message(100 * 1024, n)).collect();
        let split = batches(big);
        assert_eq!(split.iter().map(Vec::len).collect::<Vec<_>>(), [2, 2, 1]);
        for batch in &split {
            let bytes: usize = batch.iter().map(|m| m.body.len()).sum();
            assert!(bytes <= MAX_BATCH_BYTES);
        }
        let order: Vec<i64> = split.iter().flatten().map(|m| m.time_ms).collect();
        assert_eq!(order, [0, 1, 2, 3, 4]);
    }
}
