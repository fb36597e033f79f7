//! The hand-off store: each shard's operator state (its lane, serialized by the pipeline) in one
//! S3 object, `<prefix><stream>/<shard id>`, written just before the lease checkpoint it goes
//! with. The worker that takes the lease next reads it and continues the shard's open windows,
//! rules and detectors from there; a child shard starts from its parents' final objects.
//!
//! The object's position is never behind the lease checkpoint (it is written first). It may be
//! ahead when a worker stopped between the two writes: the next owner then resumes after the
//! object's position, since the state holds everything up to it and its outputs were durable
//! before it was written.

use std::sync::Arc;

use aws_sdk_s3::primitives::ByteStream;
use serde::{Deserialize, Serialize};

use super::calls::{with_retries, CallError};
use super::lease::{compare_with_checkpoint, LeaseCheckpoint};
use super::metrics::KinesisMetrics;
use crate::config::{AwsConfig, HandoffConfig, KinesisSourceConfig};
use crate::position::Offset;

/// Layout of the stored object; bump on any change.
const FORMAT: u32 = 1;

/// One shard's stored state.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StoredLane {
    /// Layout version.
    pub format: u32,
    /// The shard.
    pub shard: String,
    /// The position the state includes: every record up to and including it.
    pub position: Offset,
    /// The worker that wrote it (for operators reading the bucket).
    pub owner: String,
    /// When it was written (milliseconds since the epoch).
    pub written_at_ms: i64,
    /// The lane, serialized by the pipeline.
    pub state: Vec<u8>,
}

impl StoredLane {
    /// True when the object's position is at or past the lease `checkpoint`, so reading may
    /// resume after it with its state.
    pub fn covers(&self, checkpoint: &LeaseCheckpoint) -> bool {
        compare_with_checkpoint(&self.position, checkpoint).is_some_and(std::cmp::Ordering::is_ge)
    }
}

/// What `fleetstream leases` shows of a stored lane (from its metadata, without reading it).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct StoredLaneInfo {
    /// The position the state includes (`seq/sub`, or `end`).
    pub position: String,
    /// The worker that wrote it.
    pub owner: String,
    /// Object size in bytes.
    pub bytes: i64,
    /// When it was written (milliseconds since the epoch).
    pub written_at_ms: Option<i64>,
}

/// Reads and writes the stored lanes of one stream.
#[derive(Clone)]
pub struct HandoffStore {
    client: aws_sdk_s3::Client,
    bucket: String,
    prefix: String,
    config: Arc<KinesisSourceConfig>,
    metrics: Arc<KinesisMetrics>,
}

impl HandoffStore {
    /// A store for `handoff` (builds the client only).
    pub async fn open(
        aws: &AwsConfig,
        handoff: &HandoffConfig,
        config: Arc<KinesisSourceConfig>,
        metrics: Arc<KinesisMetrics>,
    ) -> Self {
        let client = crate::aws::s3_client(
            aws,
            handoff.endpoint_url.as_deref(),
            config.request_timeout.std(),
        )
        .await;
        Self {
            client,
            bucket: handoff.bucket.clone(),
            prefix: format!("{}{}/", handoff.prefix, config.stream_name),
            config,
            metrics,
        }
    }

    fn key(&self, shard: &str) -> String {
        format!("{}{shard}", self.prefix)
    }

    /// Where `shard`'s object lives, for messages.
    pub fn url(&self, shard: &str) -> String {
        format!("s3://{}/{}", self.bucket, self.key(shard))
    }

    /// Stores `state` as `shard`'s lane at `position` (retrying throttling and 5xx).
    pub async fn put(
        &self,
        shard: &str,
        position: &Offset,
        owner: &str,
        state: &[u8],
    ) -> Result<(), CallError> {
        let stored = StoredLane {
            format: FORMAT,
            shard: shard.to_owned(),
            position: position.clone(),
            owner: owner.to_owned(),
            written_at_ms: crate::pipeline::wall_clock_ms(),
            state: state.to_vec(),
        };
        let body = postcard::to_stdvec(&stored)
            .map_err(|err| CallError::Fatal(format!("encoding the lane of {shard}: {err}")))?;
        let key = self.key(shard);
        with_retries(&self.config.retry, "PutObject", &self.metrics, || {
            let request = self
                .client
                .put_object()
                .bucket(&self.bucket)
                .key(&key)
                .metadata("position", position_text(position))
                .metadata("owner", owner)
                .body(ByteStream::from(body.clone()));
            async move { request.send().await.map(|_| ()).map_err(s3_error) }
        })
        .await
        .map_err(|err| self.failed(shard, "storing", err))
    }

    /// `shard`'s stored lane, if any. An object this build cannot read is reported, not used.
    pub async fn get(&self, shard: &str) -> Result<Option<StoredLane>, CallError> {
        let key = self.key(shard);
        let body = with_retries(&self.config.retry, "GetObject", &self.metrics, || {
            let request = self.client.get_object().bucket(&self.bucket).key(&key);
            async move {
                match request.send().await {
                    Ok(output) => output
                        .body
                        .collect()
                        .await
                        .map(|bytes| Some(bytes.into_bytes().to_vec()))
                        .map_err(|err| CallError::Transient(err.to_string())),
                    Err(err)
                        if err
                            .as_service_error()
                            .is_some_and(|service| service.is_no_such_key()) =>
                    {
                        Ok(None)
                    }
                    Err(err) => Err(s3_error(err)),
                }
            }
        })
        .await
        .map_err(|err| self.failed(shard, "reading", err))?;
        let Some(body) = body else {
            return Ok(None);
        };
        match postcard::from_bytes::<StoredLane>(&body) {
            Ok(stored) if stored.format == FORMAT && stored.shard == shard => Ok(Some(stored)),
            Ok(stored) => {
                tracing::warn!(object = %self.url(shard), format = stored.format, "stored lane has another format or shard; the shard's state starts empty");
                Ok(None)
            }
            Err(err) => {
                tracing::warn!(object = %self.url(shard), error = %err, "stored lane is unreadable; the shard's state starts empty");
                Ok(None)
            }
        }
    }

    /// `shard`'s stored lane as its metadata describes it (one `HeadObject`), if any.
    pub async fn describe(&self, shard: &str) -> Result<Option<StoredLaneInfo>, CallError> {
        let key = self.key(shard);
        with_retries(&self.config.retry, "HeadObject", &self.metrics, || {
            let request = self.client.head_object().bucket(&self.bucket).key(&key);
            async move {
                match request.send().await {
                    Ok(head) => {
                        let meta = head.metadata().cloned().unwrap_or_default();
                        Ok(Some(StoredLaneInfo {
                            position: meta.get("position").cloned().unwrap_or_default(),
                            owner: meta.get("owner").cloned().unwrap_or_default(),
                            bytes: head.content_length().unwrap_or(0),
                            written_at_ms: head.last_modified().and_then(|at| at.to_millis().ok()),
                        }))
                    }
                    Err(err)
                        if err
                            .as_service_error()
                            .is_some_and(|service| service.is_not_found()) =>
                    {
                        Ok(None)
                    }
                    Err(err) => Err(s3_error(err)),
                }
            }
        })
        .await
        .map_err(|err| self.failed(shard, "describing", err))
    }

    fn failed(&self, shard: &str, what: &str, err: CallError) -> CallError {
        let context = format!("{what} the lane {}", self.url(shard));
        match err {
            CallError::Fatal(reason) => CallError::Fatal(format!("{context}: {reason}")),
            other => CallError::Fatal(format!("{context}: {other}")),
        }
    }
}

/// An S3 failure as a [`CallError`]: retryable by the rule the other S3 clients follow
/// ([`crate::aws::s3_retryable`]), fatal otherwise.
fn s3_error<E>(
    err: aws_sdk_s3::error::SdkError<E, aws_sdk_s3::config::http::HttpResponse>,
) -> CallError
where
    E: aws_sdk_s3::error::ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    let text = aws_sdk_s3::error::DisplayErrorContext(&err).to_string();
    if crate::aws::s3_retryable(&err) {
        CallError::Transient(text)
    } else {
        CallError::Fatal(text)
    }
}

/// A position as `fleetstream leases` writes checkpoints: `seq/sub`, or `end`.
fn position_text(position: &Offset) -> String {
    match position {
        Offset::Sequence {
            sequence_number,
            sub_sequence_number,
        } => format!("{sequence_number}/{sub_sequence_number}"),
        Offset::Finished => "end".to_owned(),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stored(position: Offset) -> StoredLane {
        StoredLane {
            format: FORMAT,
            shard: "shardId-000000000000".to_owned(),
            position,
            owner: "w".to_owned(),
            written_at_ms: 0,
            state: Vec::new(),
        }
    }

    fn seq(n: &str, sub: u64) -> Offset {
        Offset::Sequence {
            sequence_number: n.to_owned(),
            sub_sequence_number: sub,
        }
    }

    fn checkpoint(n: &str, sub: u64) -> LeaseCheckpoint {
        LeaseCheckpoint::Sequence {
            sequence_number: n.to_owned(),
            sub_sequence_number: sub,
        }
    }

    #[test]
    fn a_stored_lane_covers_checkpoints_at_or_behind_its_position() {
        let lane = stored(seq("200", 3));
        assert!(lane.covers(&checkpoint("200", 3)));
        assert!(lane.covers(&checkpoint("200", 2)));
        assert!(
            lane.covers(&checkpoint("99", 9)),
            "numeric, not text, order"
        );
        let long = "49680618652175220658574588009825280700336649637527027714";
        let longer = "49680618652175220658574588009825280700336649637527027715";
        assert!(
            stored(seq(longer, 0)).covers(&checkpoint(long, 0)),
            "56 digits"
        );
        assert!(!stored(seq(long, 0)).covers(&checkpoint(longer, 0)));
        assert!(!lane.covers(&checkpoint("200", 4)));
        assert!(!lane.covers(&checkpoint("1000", 0)));
        assert!(lane.covers(&LeaseCheckpoint::TrimHorizon));
        assert!(!lane.covers(&LeaseCheckpoint::ShardEnd));
        assert!(stored(Offset::Finished).covers(&LeaseCheckpoint::ShardEnd));
    }
}
