//! Dead letters to S3: the same NDJSON lines as the file sink (position, kind, reason, raw
//! payload in base64), in objects under a date-based key layout (`object_key`).
//!
//! The object being filled is uploaded again at every checkpoint that added lines to it (a PUT
//! replaces it), so everything acknowledged is durable in S3; it is closed once it reaches
//! `max_object_bytes`. Object boundaries depend on content only, and the resume token records the
//! open object and its length at the checkpoint: after a crash the sink reads that object back,
//! cuts it to the recorded length and continues, so the replayed lines are neither lost nor
//! written twice, and a replay of the same input rewrites the same objects with the same bytes.
//! When the retry budget is spent the run stops without committing: dead letters have no
//! further fallback.

mod object_key;

use std::sync::Arc;

use aws_sdk_s3::error::DisplayErrorContext;
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::Client;

pub use object_key::{ObjectId, MAX_OBJECT_BYTES};

use super::dead_letter::append_line;
use super::delivery::{DeliveryMetrics, RetryConfig};
use super::series::point_of;
use super::{Sink, SinkError};
use crate::config::{AwsConfig, S3DeadLetterConfig};
use crate::pipeline::output::Output;

const NAME: &str = "dead_letter_s3";

/// The sink; see the module documentation.
pub struct S3DeadLetterSink {
    client: Client,
    runtime: tokio::runtime::Handle,
    bucket: String,
    prefix: String,
    max_object_bytes: usize,
    retry: RetryConfig,
    metrics: Arc<DeliveryMetrics>,
    /// Newest event time of the outputs seen so far (dates new objects).
    newest_event_ms: Option<i64>,
    open: ObjectId,
    body: Vec<u8>,
    /// Lines in `body` since its last upload.
    unsent_lines: usize,
}

impl S3DeadLetterSink {
    /// Builds the client (path-style addressing with an endpoint override).
    pub async fn open(
        config: &S3DeadLetterConfig,
        aws: &AwsConfig,
        metrics: Arc<DeliveryMetrics>,
    ) -> Result<Self, SinkError> {
        let client = crate::aws::s3_client(
            aws,
            config.endpoint_url.as_deref(),
            config.request_timeout.std(),
        )
        .await;
        Ok(Self {
            client,
            runtime: tokio::runtime::Handle::current(),
            bucket: config.bucket.clone(),
            prefix: config.prefix.clone(),
            max_object_bytes: config.max_object_bytes.min(MAX_OBJECT_BYTES),
            retry: config.retry.clone(),
            metrics,
            newest_event_ms: None,
            open: ObjectId::new(0, None),
            body: Vec::new(),
            unsent_lines: 0,
        })
    }

    fn remote(&self, what: &str, err: impl std::fmt::Display) -> SinkError {
        SinkError::Remote {
            sink: NAME,
            message: format!(
                "s3://{}/{}: {what}: {err}",
                self.bucket,
                self.open.key(&self.prefix)
            ),
        }
    }

    /// Uploads the open object as it is now, retrying within the budget.
    fn upload(&mut self) -> Result<(), SinkError> {
        let key = self.open.key(&self.prefix);
        let mut backoff = self.retry.backoff();
        loop {
            let began = std::time::Instant::now();
            let result = self.runtime.block_on(
                self.client
                    .put_object()
                    .bucket(&self.bucket)
                    .key(&key)
                    .content_type("application/x-ndjson")
                    .body(ByteStream::from(self.body.clone()))
                    .send(),
            );
            self.metrics.call(began.elapsed());
            let err = match result {
                Ok(_) => {
                    self.metrics.written(self.unsent_lines);
                    self.unsent_lines = 0;
                    return Ok(());
                }
                Err(err) => err,
            };
            let retryable = crate::aws::s3_retryable(&err);
            let reason = DisplayErrorContext(&err).to_string();
            if !retryable {
                return Err(self.remote("PutObject", reason));
            }
            match backoff.retry(NAME, &reason, self.unsent_lines, &self.metrics) {
                Ok(delay) => std::thread::sleep(delay),
                Err(reason) => return Err(self.remote("PutObject", reason)),
            }
        }
    }

    /// Reads back the object a checkpoint left open, cut to its length then.
    fn reopen(&mut self, open: ObjectId, length: usize) -> Result<(), SinkError> {
        self.open = open;
        self.body.clear();
        self.unsent_lines = 0;
        if length == 0 {
            return Ok(());
        }
        let key = open.key(&self.prefix);
        let body = self
            .runtime
            .block_on(async {
                let object = self
                    .client
                    .get_object()
                    .bucket(&self.bucket)
                    .key(&key)
                    .send()
                    .await
                    .map_err(|err| DisplayErrorContext(err).to_string())?;
                object
                    .body
                    .collect()
                    .await
                    .map(|data| data.into_bytes())
                    .map_err(|err| err.to_string())
            })
            .map_err(|err| self.remote("reading back the object open at the checkpoint", err))?;
        if body.len() < length {
            return Err(self.remote(
                "reading back the object open at the checkpoint",
                format!(
                    "it holds {} bytes, the checkpoint recorded {length}",
                    body.len()
                ),
            ));
        }
        self.body.extend_from_slice(&body[..length]);
        Ok(())
    }
}

impl Sink for S3DeadLetterSink {
    fn name(&self) -> &'static str {
        NAME
    }

    fn describe(&self) -> String {
        format!("s3://{}/{}", self.bucket, self.prefix)
    }

    fn restore(&mut self, token: Option<u64>) -> Result<(), SinkError> {
        let (open, length) = token.map_or((ObjectId::new(0, None), 0), ObjectId::from_token);
        self.reopen(open, length)
    }

    fn write(&mut self, outputs: &[Output]) -> Result<(), SinkError> {
        for output in outputs {
            let Output::DeadLetter(letter) = output else {
                if let Some(point) = point_of(output) {
                    self.newest_event_ms = self.newest_event_ms.max(Some(point.time_ms));
                }
                continue;
            };
            let start = self.body.len();
            append_line(letter, &mut self.body);
            if start == 0 {
                // The object's first line dates it.
                self.open = ObjectId::new(self.open.number, self.newest_event_ms);
            } else if self.body.len() > self.max_object_bytes {
                let line = self.body.split_off(start);
                self.upload()?;
                self.open = ObjectId::new(self.open.number + 1, self.newest_event_ms);
                self.body = line;
            }
            self.unsent_lines += 1;
        }
        Ok(())
    }

    fn flush(&mut self) -> Result<Option<u64>, SinkError> {
        if self.body.len() > MAX_OBJECT_BYTES {
            return Err(self.remote(
                "checkpointing",
                format!("one dead letter is larger than {MAX_OBJECT_BYTES} bytes"),
            ));
        }
        if self.unsent_lines > 0 {
            self.upload()?;
        }
        Ok(Some(self.open.token(self.body.len())))
    }
}
