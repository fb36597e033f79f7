//! The Amazon Timestream sink: the [`series`](crate::sinks::series) layout as multi-measure
//! records, batches of at most 100 with `CommonAttributes`, a bounded number of calls in
//! flight, retries with a bounded budget, and per-record rejections handled by reason
//! (`writer`). Versions come from the window engine, so replays and duplicates are
//! idempotent: an identical record with the same version is accepted again without change.
//!
//! Against real AWS the client uses endpoint discovery (Timestream requires it); with an
//! endpoint override (an emulator) it does not, because discovery would return the AWS host.

mod records;
mod tables;
mod writer;

use std::sync::Arc;

use aws_sdk_timestreamwrite::Client;
use serde::Serialize;

pub use records::PendingRecord;
pub use writer::{reason_category, TimestreamWriter};

use super::delivery::{DeliveryMetrics, UndeliveredLog};
use super::series::{point_of, FieldValue, SeriesPoint};
use super::{Sink, SinkError};
use crate::config::{AwsConfig, TimestreamSinkConfig};
use crate::pipeline::output::Output;

const NAME: &str = "timestream";

/// The sink; see the module documentation.
pub struct TimestreamSink {
    writer: Arc<TimestreamWriter>,
    runtime: tokio::runtime::Handle,
    batch_records: usize,
    concurrency: usize,
    max_buffered_records: usize,
    buffer: Vec<PendingRecord>,
    undelivered: UndeliveredLog,
}

/// How an undelivered record is logged.
#[derive(Serialize)]
struct UndeliveredRecord<'a> {
    measure_name: &'a str,
    dimensions: std::collections::BTreeMap<&'a str, &'a str>,
    time_ms: i64,
    version: i64,
    measures: serde_json::Map<String, serde_json::Value>,
}

impl<'a> From<&'a SeriesPoint> for UndeliveredRecord<'a> {
    fn from(point: &'a SeriesPoint) -> Self {
        let measures = point
            .fields
            .iter()
            .map(|(name, value)| {
                let value = match value {
                    FieldValue::Double(v) => serde_json::json!(v),
                    FieldValue::BigInt(v) => serde_json::json!(v),
                    FieldValue::Boolean(v) => serde_json::json!(v),
                    FieldValue::Text(v) => serde_json::json!(v),
                };
                (name.to_string(), value)
            })
            .collect();
        Self {
            measure_name: &point.measurement,
            dimensions: point
                .dimensions
                .iter()
                .map(|(k, v)| (k.as_str(), v.as_str()))
                .collect(),
            time_ms: point.time_ms,
            version: point.version,
            measures,
        }
    }
}

impl TimestreamSink {
    /// Builds the client (with endpoint discovery unless an endpoint is overridden), creates
    /// the database and table when `create_tables`, and opens the undelivered log.
    pub async fn open(
        config: &TimestreamSinkConfig,
        aws: &AwsConfig,
        create_tables: bool,
        metrics: Arc<DeliveryMetrics>,
    ) -> Result<Self, SinkError> {
        let remote = |message: String| SinkError::Remote {
            sink: NAME,
            message,
        };
        let sdk = crate::aws::sdk_config(
            aws,
            config.endpoint_url.as_deref(),
            config.request_timeout.std(),
        )
        .await;
        let mut client = Client::new(&sdk);
        if !crate::aws::endpoint_overridden(&sdk, "TIMESTREAM_WRITE") {
            let (discovering, reload) = client
                .with_endpoint_discovery_enabled()
                .await
                .map_err(|err| remote(format!("endpoint discovery: {err}")))?;
            tokio::spawn(reload.reload_task());
            client = discovering;
        }
        if create_tables {
            tables::create_tables(&client, config)
                .await
                .map_err(remote)?;
        }
        let writer = TimestreamWriter::new(
            client,
            config.database.clone(),
            config.table.clone(),
            config.measures.clone(),
            config.retry.clone(),
            Arc::clone(&metrics),
        );
        Ok(Self {
            writer: Arc::new(writer),
            runtime: tokio::runtime::Handle::current(),
            batch_records: config.batch_records,
            concurrency: config.concurrency,
            max_buffered_records: config.max_buffered_records,
            buffer: Vec::new(),
            undelivered: UndeliveredLog::open(NAME, &config.undelivered_path, metrics)?,
        })
    }

    /// Sends everything buffered, at most `concurrency` calls at once; versions make the
    /// order of calls irrelevant.
    fn send_buffer(&mut self) -> Result<(), SinkError> {
        if self.buffer.is_empty() {
            return Ok(());
        }
        let records = std::mem::take(&mut self.buffer);
        let mut batches: Vec<Vec<PendingRecord>> = Vec::new();
        let mut records = records.into_iter().peekable();
        while records.peek().is_some() {
            batches.push(records.by_ref().take(self.batch_records).collect());
        }
        let writer = Arc::clone(&self.writer);
        let concurrency = self.concurrency;
        let outcome = self.runtime.block_on(async move {
            let mut running = tokio::task::JoinSet::new();
            let mut undelivered = Vec::new();
            let mut fatal = None;
            let mut batches = batches.into_iter();
            loop {
                while running.len() < concurrency && fatal.is_none() {
                    let Some(batch) = batches.next() else { break };
                    let writer = Arc::clone(&writer);
                    running.spawn(async move { writer.deliver(batch).await });
                }
                let Some(joined) = running.join_next().await else {
                    break;
                };
                match joined {
                    Ok(Ok(given_up)) => undelivered.extend(given_up),
                    Ok(Err(message)) => fatal = fatal.or(Some(message)),
                    Err(err) => fatal = fatal.or(Some(format!("writer task failed: {err}"))),
                }
            }
            match fatal {
                Some(message) => Err(message),
                None => Ok(undelivered),
            }
        });
        let undelivered = outcome.map_err(|message| SinkError::Remote {
            sink: NAME,
            message,
        })?;
        for (record, reason) in &undelivered {
            self.undelivered
                .record(reason, &UndeliveredRecord::from(&record.point))?;
        }
        Ok(())
    }
}

impl Sink for TimestreamSink {
    fn name(&self) -> &'static str {
        NAME
    }

    fn describe(&self) -> String {
        format!(
            "{} (undelivered records: {})",
            self.writer.describe(),
            self.undelivered.describe()
        )
    }

    fn restore(&mut self, token: Option<u64>) -> Result<(), SinkError> {
        self.buffer.clear();
        self.undelivered.restore(token)
    }

    fn write(&mut self, outputs: &[Output]) -> Result<(), SinkError> {
        self.buffer
            .extend(outputs.iter().filter_map(point_of).map(PendingRecord::new));
        if self.buffer.len() >= self.max_buffered_records {
            self.send_buffer()?;
        }
        Ok(())
    }

    fn flush(&mut self) -> Result<Option<u64>, SinkError> {
        self.send_buffer()?;
        self.undelivered.flush()
    }
}
