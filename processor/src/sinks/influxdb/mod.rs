//! The InfluxDB line-protocol sink: the [`series`](crate::sinks::series) layout as lines,
//! batched by lines and bytes, gzip, token auth, retries with a bounded budget, and rejected
//! lines (partial writes) isolated and written to the undelivered log with the server's reason.
//!
//! Writes are upserts (InfluxDB keeps the last point per measurement, tags and time), and the
//! pipeline sends versions in order, so replaying the same input leaves the same data.

mod client;
mod line_protocol;

use std::sync::Arc;

use serde::Serialize;

pub use client::{classify, reason_category, InfluxClient, WriteOutcome};
pub use line_protocol::encode_line;

use super::delivery::{DeliveryMetrics, RetryConfig, UndeliveredLog};
use super::series::point_of;
use super::{Sink, SinkError};
use crate::config::InfluxDbSinkConfig;
use crate::pipeline::output::Output;

const NAME: &str = "influxdb";

/// The sink; see the module documentation.
pub struct InfluxDbSink {
    client: InfluxClient,
    runtime: tokio::runtime::Handle,
    retry: RetryConfig,
    batch_lines: usize,
    batch_bytes: usize,
    /// Lines waiting to be sent, each with its newline.
    buffer: Vec<String>,
    buffer_bytes: usize,
    undelivered: UndeliveredLog,
    metrics: Arc<DeliveryMetrics>,
}

#[derive(Serialize)]
struct UndeliveredLine<'a> {
    line: &'a str,
}

impl InfluxDbSink {
    /// A sink for `config`, doing its I/O on the current Tokio runtime (the sink itself runs on
    /// a blocking thread).
    pub fn open(
        config: &InfluxDbSinkConfig,
        metrics: Arc<DeliveryMetrics>,
    ) -> Result<Self, SinkError> {
        let client = InfluxClient::new(config).map_err(|err| SinkError::Remote {
            sink: NAME,
            message: err.to_string(),
        })?;
        Ok(Self {
            client,
            runtime: tokio::runtime::Handle::current(),
            retry: config.retry.clone(),
            batch_lines: config.batch_lines,
            batch_bytes: config.batch_bytes,
            buffer: Vec::new(),
            buffer_bytes: 0,
            undelivered: UndeliveredLog::open(
                NAME,
                &config.undelivered_path,
                Arc::clone(&metrics),
            )?,
            metrics,
        })
    }

    /// Creates the database where the API allows (see [`InfluxClient::create_database`]).
    pub async fn create_database(&self) -> Result<(), SinkError> {
        self.client
            .create_database()
            .await
            .map_err(|message| SinkError::Remote {
                sink: NAME,
                message,
            })
    }

    /// Sends the buffered lines in batches of at most `batch_lines` lines and `batch_bytes`
    /// bytes, in order.
    fn send_buffer(&mut self) -> Result<(), SinkError> {
        let lines = std::mem::take(&mut self.buffer);
        self.buffer_bytes = 0;
        let mut start = 0;
        while start < lines.len() {
            let mut end = start;
            let mut bytes = 0;
            while end < lines.len()
                && end - start < self.batch_lines
                && (end == start || bytes + lines[end].len() <= self.batch_bytes)
            {
                bytes += lines[end].len();
                end += 1;
            }
            self.deliver(&lines[start..end])?;
            start = end;
        }
        Ok(())
    }

    /// Delivers `lines`: every line ends written or in the undelivered log. Lines a server
    /// rejects without naming them are found by halving the request (re-sending written
    /// points is harmless: they are upserts).
    fn deliver(&mut self, lines: &[String]) -> Result<(), SinkError> {
        let mut ranges = vec![(0, lines.len())];
        while let Some((start, end)) = ranges.pop() {
            let part = &lines[start..end];
            let body: String = part.concat();
            let mut backoff = self.retry.backoff();
            loop {
                let began = std::time::Instant::now();
                let outcome = self.runtime.block_on(self.client.write(&body));
                self.metrics.call(began.elapsed());
                match outcome {
                    WriteOutcome::Written => {
                        self.metrics.written(part.len());
                        break;
                    }
                    WriteOutcome::LinesRejected(rejected) => {
                        self.metrics
                            .written(part.len().saturating_sub(rejected.len()));
                        for (index, reason) in rejected {
                            let line = part.get(index).map_or("", |l| l.trim_end());
                            self.reject(line, &reason)?;
                        }
                        break;
                    }
                    WriteOutcome::Unidentified(reason) => {
                        if part.len() == 1 {
                            self.reject(part[0].trim_end(), &reason)?;
                        } else {
                            let middle = start + part.len() / 2;
                            ranges.push((middle, end));
                            ranges.push((start, middle));
                        }
                        break;
                    }
                    WriteOutcome::Retryable {
                        reason,
                        retry_after,
                    } => match backoff.retry(NAME, &reason, part.len(), &self.metrics) {
                        Ok(delay) => {
                            std::thread::sleep(retry_after.map_or(delay, |after| after.max(delay)));
                        }
                        Err(reason) => {
                            for line in part {
                                self.reject(line.trim_end(), &reason)?;
                            }
                            break;
                        }
                    },
                    WriteOutcome::Fatal(message) => {
                        return Err(SinkError::Remote {
                            sink: NAME,
                            message: format!("{}: {message}", self.client.describe()),
                        })
                    }
                }
            }
        }
        Ok(())
    }

    fn reject(&mut self, line: &str, reason: &str) -> Result<(), SinkError> {
        self.metrics.rejected(reason_category(reason));
        self.undelivered.record(reason, &UndeliveredLine { line })
    }
}

impl Sink for InfluxDbSink {
    fn name(&self) -> &'static str {
        NAME
    }

    fn describe(&self) -> String {
        format!(
            "{} (undelivered lines: {})",
            self.client.describe(),
            self.undelivered.describe()
        )
    }

    fn restore(&mut self, token: Option<u64>) -> Result<(), SinkError> {
        self.buffer.clear();
        self.buffer_bytes = 0;
        self.undelivered.restore(token)
    }

    fn write(&mut self, outputs: &[Output]) -> Result<(), SinkError> {
        for output in outputs {
            if let Some(point) = point_of(output) {
                let mut line = String::with_capacity(256);
                encode_line(&point, &mut line);
                self.buffer_bytes += line.len();
                self.buffer.push(line);
            }
        }
        if self.buffer.len() >= self.batch_lines || self.buffer_bytes >= self.batch_bytes {
            self.send_buffer()?;
        }
        Ok(())
    }

    fn flush(&mut self) -> Result<Option<u64>, SinkError> {
        self.send_buffer()?;
        self.undelivered.flush()
    }
}
