//! `[aws]` and `[sinks.timestream]`: where the AWS SDK clients point and how the Timestream sink
//! writes. Credentials always come from the SDK's default chain (environment, profile, ECS task
//! role), never from this file.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use super::DurationText;
use crate::sinks::delivery::RetryConfig;

/// `[aws]`: shared by every AWS client.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
pub struct AwsConfig {
    /// Region (default: `AWS_REGION` or the profile's).
    pub region: Option<String>,
    /// Named profile from `~/.aws/config` (default: `AWS_PROFILE` or `default`).
    pub profile: Option<String>,
    /// Endpoint for every AWS service (an emulator); `AWS_ENDPOINT_URL` and the per-service
    /// `AWS_ENDPOINT_URL_<SERVICE>` variables work too.
    pub endpoint_url: Option<String>,
}

/// `[sinks.timestream]`: Amazon Timestream for LiveAnalytics.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TimestreamSinkConfig {
    /// Write to Timestream.
    pub enabled: bool,
    /// Database name.
    pub database: String,
    /// Table name.
    pub table: String,
    /// Endpoint override for this sink (an emulator). Endpoint discovery, which real
    /// Timestream requires, is used only when no override is set here, in `[aws]` or in the
    /// environment.
    pub endpoint_url: Option<String>,
    /// Records per `WriteRecords` call (Timestream allows at most 100).
    pub batch_records: usize,
    /// `WriteRecords` calls in flight at once.
    pub concurrency: usize,
    /// Records buffered before they are sent without waiting for a checkpoint.
    pub max_buffered_records: usize,
    /// Measures to write (field names of the layout in the README); empty: all of them.
    pub measures: Vec<String>,
    /// Memory-store retention of a table created by `--create-tables`, in hours (1–8766).
    pub memory_retention_hours: i64,
    /// Magnetic-store retention of a created table, in days (1–73000).
    pub magnetic_retention_days: i64,
    /// Enable magnetic-store writes on a created table, so records older than the memory
    /// retention are still accepted.
    pub magnetic_store_writes: bool,
    /// Per-call timeout.
    pub request_timeout: DurationText,
    /// Retry policy for throttling, 5xx and network errors.
    pub retry: RetryConfig,
    /// NDJSON file of records Timestream rejected for good, with the reason.
    pub undelivered_path: PathBuf,
}

impl Default for TimestreamSinkConfig {
    fn default() -> Self {
        Self {
            enabled: false,
            database: "fleetstream".to_owned(),
            table: "rollups".to_owned(),
            endpoint_url: None,
            batch_records: 100,
            concurrency: 4,
            max_buffered_records: 10_000,
            measures: Vec::new(),
            memory_retention_hours: 24,
            magnetic_retention_days: 365,
            magnetic_store_writes: true,
            request_timeout: DurationText(30_000),
            retry: RetryConfig::default(),
            undelivered_path: PathBuf::from("out/undelivered-timestream.ndjson"),
        }
    }
}

impl TimestreamSinkConfig {
    /// Problems with the values as (key, message), for config validation.
    pub fn problems(&self) -> Vec<(String, String)> {
        let mut problems = self.retry.problems();
        if !self.enabled {
            return problems;
        }
        let mut problem = |key: &str, message: String| problems.push((key.to_owned(), message));
        let name_ok = |name: &str| {
            (3..=256).contains(&name.len())
                && name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
        };
        if !name_ok(&self.database) {
            problem(
                "database",
                format!(
                    "must be 3–256 characters of a-z, A-Z, 0-9, _ - . (got {:?})",
                    self.database
                ),
            );
        }
        if !name_ok(&self.table) {
            problem(
                "table",
                format!(
                    "must be 3–256 characters of a-z, A-Z, 0-9, _ - . (got {:?})",
                    self.table
                ),
            );
        }
        if !(1..=100).contains(&self.batch_records) {
            problem(
                "batch_records",
                format!(
                    "must be 1–100 (Timestream's limit), got {}",
                    self.batch_records
                ),
            );
        }
        if !(1..=64).contains(&self.concurrency) {
            problem(
                "concurrency",
                format!("must be 1–64, got {}", self.concurrency),
            );
        }
        if self.max_buffered_records < self.batch_records {
            problem(
                "max_buffered_records",
                "must be at least batch_records".to_owned(),
            );
        }
        if !(1..=8766).contains(&self.memory_retention_hours) {
            problem(
                "memory_retention_hours",
                format!("must be 1–8766, got {}", self.memory_retention_hours),
            );
        }
        if !(1..=73_000).contains(&self.magnetic_retention_days) {
            problem(
                "magnetic_retention_days",
                format!("must be 1–73000, got {}", self.magnetic_retention_days),
            );
        }
        problems
    }
}

/// `[dead_letter.s3]`: dead letters as NDJSON objects in S3 (`dead_letter.target = "s3"`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct S3DeadLetterConfig {
    /// Bucket name.
    pub bucket: String,
    /// Key prefix (one writer per prefix: give each deployment its own).
    pub prefix: String,
    /// Endpoint override for this client (an emulator); path-style addressing is used then.
    pub endpoint_url: Option<String>,
    /// An object is closed once it holds this many bytes (at most 64 MiB); until then it is
    /// rewritten at every checkpoint with what it holds so far.
    pub max_object_bytes: usize,
    /// Per-call timeout.
    pub request_timeout: DurationText,
    /// Retry policy; when it is spent the run stops without committing (dead letters have no
    /// further fallback).
    pub retry: RetryConfig,
}

impl Default for S3DeadLetterConfig {
    fn default() -> Self {
        Self {
            bucket: String::new(),
            prefix: "dead-letters/".to_owned(),
            endpoint_url: None,
            max_object_bytes: 8 << 20,
            request_timeout: DurationText(60_000),
            retry: RetryConfig::default(),
        }
    }
}

/// `[state.s3]`: checkpoints as S3 objects.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct S3StateConfig {
    /// Bucket name.
    pub bucket: String,
    /// Key prefix (one pipeline per prefix: give each deployment its own).
    pub prefix: String,
    /// Endpoint override for this client (an emulator); path-style addressing is used then.
    pub endpoint_url: Option<String>,
    /// Per-call timeout.
    pub request_timeout: DurationText,
    /// Retry policy; when it is spent the run stops (nothing is committed without the state).
    pub retry: RetryConfig,
}

impl Default for S3StateConfig {
    fn default() -> Self {
        Self {
            bucket: String::new(),
            prefix: "state/".to_owned(),
            endpoint_url: None,
            request_timeout: DurationText(60_000),
            retry: RetryConfig {
                budget: DurationText(5 * 60_000),
                ..RetryConfig::default()
            },
        }
    }
}

impl S3StateConfig {
    /// Problems with the values as (key, message), when S3 holds the state.
    pub fn problems(&self) -> Vec<(String, String)> {
        let mut problems = self.retry.problems();
        if !bucket_name_ok(&self.bucket) {
            problems.push((
                "bucket".to_owned(),
                format!(
                    "must be an S3 bucket name (3–63 characters of a-z, 0-9, - and .), got {:?}",
                    self.bucket
                ),
            ));
        }
        problems
    }
}

/// True for a valid S3 bucket name.
fn bucket_name_ok(bucket: &str) -> bool {
    (3..=63).contains(&bucket.len())
        && bucket
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '-' | '.'))
}

impl S3DeadLetterConfig {
    /// Problems with the values as (key, message), for config validation, when S3 is the
    /// dead-letter target.
    pub fn problems(&self) -> Vec<(String, String)> {
        let mut problems = self.retry.problems();
        let mut problem = |key: &str, message: String| problems.push((key.to_owned(), message));
        if !bucket_name_ok(&self.bucket) {
            problem(
                "bucket",
                format!(
                    "must be an S3 bucket name (3–63 characters of a-z, 0-9, - and .), got {:?}",
                    self.bucket
                ),
            );
        }
        if !(1024..=64 << 20).contains(&self.max_object_bytes) {
            problem(
                "max_object_bytes",
                format!("must be 1 KiB–64 MiB, got {}", self.max_object_bytes),
            );
        }
        problems
    }
}
