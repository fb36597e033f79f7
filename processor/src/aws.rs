//! Building AWS SDK configuration from `[aws]`: region, profile and endpoint override on top of
//! the SDK's default credential and region chains. The SDK's own retries are turned off for the
//! sinks, which retry with their own bounded budget and count every retry.

use std::time::Duration;

use aws_config::{BehaviorVersion, SdkConfig};

use crate::config::AwsConfig;

/// The SDK configuration of one client: `aws`, with the client's own endpoint override (which
/// wins over `aws.endpoint_url`) and a per-attempt timeout.
pub async fn sdk_config(
    aws: &AwsConfig,
    endpoint_url: Option<&str>,
    attempt_timeout: Duration,
) -> SdkConfig {
    let mut loader = aws_config::defaults(BehaviorVersion::latest())
        .retry_config(aws_config::retry::RetryConfig::disabled())
        .timeout_config(
            aws_config::timeout::TimeoutConfig::builder()
                .operation_attempt_timeout(attempt_timeout)
                .build(),
        );
    if let Some(region) = &aws.region {
        loader = loader.region(aws_config::Region::new(region.clone()));
    }
    if let Some(profile) = &aws.profile {
        loader = loader.profile_name(profile);
    }
    if let Some(endpoint) = endpoint_url.or(aws.endpoint_url.as_deref()) {
        loader = loader.endpoint_url(endpoint);
    }
    loader.load().await
}

/// True when an endpoint override applies to `service_env` (`TIMESTREAM_WRITE`, `SNS`, …):
/// set in the config (`[aws]` or the client's own), by `AWS_ENDPOINT_URL` or by
/// `AWS_ENDPOINT_URL_<service_env>`.
pub fn endpoint_overridden(sdk: &SdkConfig, service_env: &str) -> bool {
    sdk.endpoint_url().is_some()
        || std::env::var_os(format!("AWS_ENDPOINT_URL_{service_env}")).is_some()
}

/// An S3 client for `aws` with the client's own endpoint override, using path-style addressing
/// whenever an endpoint is overridden (an emulator on `localhost` has no bucket subdomains).
pub async fn s3_client(
    aws: &AwsConfig,
    endpoint_url: Option<&str>,
    attempt_timeout: Duration,
) -> aws_sdk_s3::Client {
    let sdk = sdk_config(aws, endpoint_url, attempt_timeout).await;
    let path_style = endpoint_overridden(&sdk, "S3");
    aws_sdk_s3::Client::from_conf(
        aws_sdk_s3::config::Builder::from(&sdk)
            .force_path_style(path_style)
            .build(),
    )
}

/// True for an S3 failure worth retrying: no response (network, timeout), 408, 429, 5xx, or a
/// `SlowDown`/throttling code.
pub fn s3_retryable<E: aws_sdk_s3::error::ProvideErrorMetadata>(
    err: &aws_sdk_s3::error::SdkError<E, aws_sdk_s3::config::http::HttpResponse>,
) -> bool {
    let status = err.raw_response().map(|r| r.status().as_u16());
    status.is_none_or(|s| s == 429 || s >= 500 || s == 408)
        || err
            .as_service_error()
            .and_then(aws_sdk_s3::error::ProvideErrorMetadata::code)
            .is_some_and(|code| code.contains("SlowDown") || code.contains("Throttl"))
}
