//! Delivering one batch to `WriteRecords`: retries with backoff on throttling, 5xx and network
//! errors, and every `RejectedRecords` entry handled by its reason.
//!
//! - **Version conflict** (`ExistingVersion` set): an authoritative record (a final rollup, or
//!   any non-rollup row) is re-sent with `ExistingVersion + 1`, so the newer result wins over
//!   what an earlier run left; a partial rollup is superseded by what is stored and counted as
//!   such.
//! - **Outside the memory store's retention**: re-sent once when the table accepts
//!   magnetic-store writes (Timestream routes it there), else undelivered with the reason.
//! - **Anything else** (over a limit, a bad value): undelivered with Timestream's reason.
//!
//! Records in the same call that were not rejected are written (Timestream's semantics).

use std::sync::Arc;
use std::time::Instant;

use aws_sdk_timestreamwrite::error::{DisplayErrorContext, SdkError};
use aws_sdk_timestreamwrite::operation::write_records::WriteRecordsError;
use aws_sdk_timestreamwrite::types::{MeasureValueType, Record, TimeUnit};
use aws_sdk_timestreamwrite::Client;
use tokio::sync::OnceCell;

use super::records::PendingRecord;
use crate::sinks::delivery::{DeliveryMetrics, RetryConfig};

/// What one failed call means.
enum Failure {
    /// `(record index, reason, existing version)` per rejected record.
    Rejected(Vec<(usize, String, Option<i64>)>),
    /// Throttling, a 5xx, a timeout or a network error.
    Retryable(String),
    /// Retrying cannot help (missing table, access denied, invalid request).
    Fatal(String),
}

/// Writes batches to one table.
pub struct TimestreamWriter {
    client: Client,
    database: String,
    table: String,
    measures: Arc<[String]>,
    retry: RetryConfig,
    metrics: Arc<DeliveryMetrics>,
    magnetic_writes: OnceCell<bool>,
}

impl TimestreamWriter {
    /// A writer for `database`.`table`.
    pub fn new(
        client: Client,
        database: String,
        table: String,
        measures: Vec<String>,
        retry: RetryConfig,
        metrics: Arc<DeliveryMetrics>,
    ) -> Self {
        Self {
            client,
            database,
            table,
            measures: measures.into(),
            retry,
            metrics,
            magnetic_writes: OnceCell::new(),
        }
    }

    /// `database.table`, for messages.
    pub fn describe(&self) -> String {
        format!("timestream://{}/{}", self.database, self.table)
    }

    /// Delivers `batch` (≤ 100 records); returns the records given up on with their reasons,
    /// or a fatal error.
    pub async fn deliver(
        &self,
        mut batch: Vec<PendingRecord>,
    ) -> Result<Vec<(PendingRecord, String)>, String> {
        let mut undelivered = Vec::new();
        let mut backoff = self.retry.backoff();
        while !batch.is_empty() {
            let records: Vec<Record> = batch.iter().map(|r| r.to_record(&self.measures)).collect();
            let began = Instant::now();
            let result = self
                .client
                .write_records()
                .database_name(&self.database)
                .table_name(&self.table)
                .common_attributes(
                    Record::builder()
                        .time_unit(TimeUnit::Milliseconds)
                        .measure_value_type(MeasureValueType::Multi)
                        .build(),
                )
                .set_records(Some(records))
                .send()
                .await;
            self.metrics.call(began.elapsed());
            let failure = match result {
                Ok(_) => {
                    self.metrics.written(batch.len());
                    break;
                }
                Err(err) => classify(err),
            };
            match failure {
                Failure::Fatal(reason) => return Err(format!("{}: {reason}", self.describe())),
                Failure::Retryable(reason) => {
                    match backoff.retry("timestream", &reason, batch.len(), &self.metrics) {
                        Ok(delay) => tokio::time::sleep(delay).await,
                        Err(reason) => {
                            undelivered.extend(batch.drain(..).map(|r| (r, reason.clone())))
                        }
                    }
                }
                Failure::Rejected(rejected) => {
                    self.metrics
                        .written(batch.len().saturating_sub(rejected.len()));
                    let mut again = Vec::new();
                    let mut last_reason = String::new();
                    for (index, reason, existing) in rejected {
                        let Some(record) = batch.get(index).cloned() else {
                            continue;
                        };
                        self.metrics.rejected(reason_category(&reason, existing));
                        last_reason.clone_from(&reason);
                        match self.resolve(record, reason, existing).await {
                            Resolution::Resend(record) => again.push(record),
                            Resolution::Superseded => self.metrics.superseded(1),
                            Resolution::Undelivered(record, reason) => {
                                undelivered.push((record, reason));
                            }
                        }
                    }
                    if !again.is_empty() {
                        match backoff.retry("timestream", &last_reason, again.len(), &self.metrics)
                        {
                            Ok(delay) => tokio::time::sleep(delay).await,
                            Err(reason) => {
                                undelivered.extend(again.drain(..).map(|r| (r, reason.clone())));
                            }
                        }
                    }
                    batch = again;
                }
            }
        }
        Ok(undelivered)
    }

    async fn resolve(
        &self,
        mut record: PendingRecord,
        reason: String,
        existing: Option<i64>,
    ) -> Resolution {
        if let Some(existing) = existing {
            if record.authoritative {
                record.point.version = record.point.version.max(existing + 1);
                return Resolution::Resend(record);
            }
            return Resolution::Superseded;
        }
        if is_retention(&reason) {
            if record.retention_retried {
                return Resolution::Undelivered(record, reason);
            }
            return match self.magnetic_writes_enabled().await {
                Ok(true) => {
                    record.retention_retried = true;
                    Resolution::Resend(record)
                }
                Ok(false) => Resolution::Undelivered(
                    record,
                    format!(
                        "outside the memory store's retention and {} does not accept magnetic-store writes: {reason}",
                        self.describe()
                    ),
                ),
                Err(err) => Resolution::Undelivered(
                    record,
                    format!("outside the memory store's retention ({reason}); DescribeTable failed: {err}"),
                ),
            };
        }
        Resolution::Undelivered(record, reason)
    }

    /// Whether the table accepts magnetic-store writes (asked once per run).
    async fn magnetic_writes_enabled(&self) -> Result<bool, String> {
        self.magnetic_writes
            .get_or_try_init(|| async {
                let described = self
                    .client
                    .describe_table()
                    .database_name(&self.database)
                    .table_name(&self.table)
                    .send()
                    .await
                    .map_err(|err| DisplayErrorContext(err).to_string())?;
                Ok(described
                    .table()
                    .and_then(|t| t.magnetic_store_write_properties())
                    .is_some_and(|p| p.enable_magnetic_store_writes()))
            })
            .await
            .copied()
    }
}

enum Resolution {
    Resend(PendingRecord),
    Superseded,
    Undelivered(PendingRecord, String),
}

fn classify(err: SdkError<WriteRecordsError>) -> Failure {
    let text = DisplayErrorContext(&err).to_string();
    match err {
        SdkError::ServiceError(service) => {
            let status = service.raw().status().as_u16();
            match service.into_err() {
                WriteRecordsError::RejectedRecordsException(rejected) => Failure::Rejected(
                    rejected
                        .rejected_records()
                        .iter()
                        .filter_map(|r| {
                            Some((
                                usize::try_from(r.record_index()).ok()?,
                                r.reason().unwrap_or("rejected").to_owned(),
                                r.existing_version(),
                            ))
                        })
                        .collect(),
                ),
                WriteRecordsError::ThrottlingException(_)
                | WriteRecordsError::InternalServerException(_)
                | WriteRecordsError::InvalidEndpointException(_) => Failure::Retryable(text),
                _ if status == 429 || status >= 500 => Failure::Retryable(text),
                _ => Failure::Fatal(text),
            }
        }
        SdkError::TimeoutError(_) | SdkError::DispatchFailure(_) | SdkError::ResponseError(_) => {
            Failure::Retryable(text)
        }
        _ => Failure::Fatal(text),
    }
}

fn is_retention(reason: &str) -> bool {
    let lower = reason.to_ascii_lowercase();
    lower.contains("retention") || lower.contains("memory store") || lower.contains("older than")
}

/// A short category of a rejection, for the `rejected` counters.
pub fn reason_category(reason: &str, existing: Option<i64>) -> &'static str {
    if existing.is_some() {
        "version_conflict"
    } else if is_retention(reason) {
        "outside_retention"
    } else {
        "limit_or_value"
    }
}
