//! Classifying and retrying Kinesis and DynamoDB calls: throttling, 5xx and network errors are
//! retried with exponential backoff and full jitter within a time budget; the answers the lease
//! logic acts on (a failed condition, an expired iterator, a missing resource) are returned as
//! such; everything else is fatal.

use std::future::Future;

use aws_sdk_dynamodb::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};

use super::metrics::KinesisMetrics;
use crate::sinks::delivery::RetryConfig;

/// What a failed call means to the caller.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CallError {
    /// A conditional write found the item changed (the lease moved on).
    #[error("condition failed")]
    ConditionFailed,
    /// The shard iterator is older than 5 minutes.
    #[error("shard iterator expired")]
    ExpiredIterator,
    /// The stream, shard or table does not exist.
    #[error("not found: {0}")]
    NotFound(String),
    /// Throttled (`ProvisionedThroughputExceededException`, `LimitExceededException`…).
    #[error("throttled: {0}")]
    Throttled(String),
    /// A 5xx, timeout or connection failure.
    #[error("transient: {0}")]
    Transient(String),
    /// Anything else, or a retryable error after the retry budget.
    #[error("{0}")]
    Fatal(String),
}

impl CallError {
    fn is_retryable(&self) -> bool {
        matches!(self, CallError::Throttled(_) | CallError::Transient(_))
    }
}

const THROTTLING_CODES: &[&str] = &[
    "ProvisionedThroughputExceededException",
    "ThrottlingException",
    "LimitExceededException",
    "RequestLimitExceeded",
    "TooManyRequestsException",
];

/// Classifies an SDK error of any Kinesis or DynamoDB operation.
pub fn classify<E>(err: SdkError<E, aws_sdk_dynamodb::config::http::HttpResponse>) -> CallError
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    let text = DisplayErrorContext(&err).to_string();
    match &err {
        SdkError::ServiceError(service) => {
            let status = service.raw().status().as_u16();
            let code = service.err().code().unwrap_or_default();
            match code {
                "ConditionalCheckFailedException" => CallError::ConditionFailed,
                "ExpiredIteratorException" => CallError::ExpiredIterator,
                "ResourceNotFoundException" => CallError::NotFound(text),
                code if THROTTLING_CODES.contains(&code) => CallError::Throttled(text),
                _ if status == 429 => CallError::Throttled(text),
                _ if status >= 500 => CallError::Transient(text),
                _ => CallError::Fatal(text),
            }
        }
        SdkError::TimeoutError(_) | SdkError::DispatchFailure(_) | SdkError::ResponseError(_) => {
            CallError::Transient(text)
        }
        _ => CallError::Fatal(text),
    }
}

/// Runs `call` until it succeeds, fails with a non-retryable error, or the retry budget is
/// spent (then [`CallError::Fatal`] with the attempts and the last error).
pub async fn with_retries<T, F, Fut>(
    retry: &RetryConfig,
    what: &str,
    metrics: &KinesisMetrics,
    mut call: F,
) -> Result<T, CallError>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, CallError>>,
{
    let mut backoff = retry.backoff();
    let mut attempts = 0u32;
    loop {
        attempts += 1;
        match call().await {
            Ok(value) => return Ok(value),
            Err(err) if err.is_retryable() => {
                if matches!(err, CallError::Throttled(_)) {
                    metrics.throttled();
                } else {
                    metrics.transient_error();
                }
                let Some(delay) = backoff.next_delay() else {
                    return Err(CallError::Fatal(format!(
                        "{what}: gave up after {attempts} attempts; last error: {err}"
                    )));
                };
                tracing::warn!(call = what, error = %err, ?delay, "retrying");
                tokio::time::sleep(delay).await;
            }
            Err(err) => return Err(err),
        }
    }
}
