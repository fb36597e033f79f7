//! [`StateStore`] in an S3 bucket, so a Fargate task needs no volume: the newest checkpoint is one
//! object (`<prefix>checkpoint`, overwritten atomically), and each per-vehicle model snapshot is an
//! object per checkpoint (`<prefix>models/<key>/<checkpoint id>`), written before the checkpoint
//! that refers to it. A reader loads the newest model version not newer than the last committed
//! checkpoint, so a crash between the two writes leaves nothing inconsistent; superseded versions
//! are deleted after the next commit.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use aws_sdk_s3::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{Delete, ObjectIdentifier};
use aws_sdk_s3::Client;
use serde::{Deserialize, Serialize};

use super::{Checkpoint, StateError, StateStore};
use crate::config::{AwsConfig, S3StateConfig};
use crate::sinks::delivery::RetryConfig;

/// Format of the checkpoint object.
const FORMAT_VERSION: u32 = 1;

/// The stored checkpoint object.
#[derive(Serialize, Deserialize)]
struct Stored {
    format: u32,
    checkpoint: Checkpoint,
}

/// What the store and its model readers share.
#[derive(Clone)]
struct Bucket {
    client: Client,
    runtime: tokio::runtime::Handle,
    bucket: String,
    prefix: String,
    retry: RetryConfig,
    /// Id of the last committed checkpoint (model versions above it are not committed yet).
    committed: Arc<AtomicU64>,
}

impl Bucket {
    fn url(&self, key: &str) -> String {
        format!("s3://{}/{key}", self.bucket)
    }

    fn error(&self, key: &str, what: &'static str, reason: String) -> StateError {
        StateError::Remote {
            location: self.url(key),
            what,
            reason,
        }
    }

    /// Runs an S3 call with retries on throttling, 5xx and network errors.
    fn call<T, E, F, Fut>(
        &self,
        key: &str,
        what: &'static str,
        mut call: F,
    ) -> Result<T, StateError>
    where
        E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = Result<T, SdkError<E>>>,
    {
        let mut backoff = self.retry.backoff();
        loop {
            let err = match self.runtime.block_on(call()) {
                Ok(value) => return Ok(value),
                Err(err) => err,
            };
            let retryable = crate::aws::s3_retryable(&err);
            let reason = DisplayErrorContext(&err).to_string();
            match backoff.next_delay() {
                Some(delay) if retryable => {
                    tracing::warn!(object = %self.url(key), %reason, ?delay, "state store call failed; retrying");
                    std::thread::sleep(delay);
                }
                _ => return Err(self.error(key, what, reason)),
            }
        }
    }

    /// The object's bytes, or `None` when it does not exist.
    fn get(&self, key: &str) -> Result<Option<Vec<u8>>, StateError> {
        let got = self.call(key, "GetObject", || {
            let request = self.client.get_object().bucket(&self.bucket).key(key);
            async move {
                match request.send().await {
                    Ok(output) => Ok(Some(output.body)),
                    Err(err)
                        if err.as_service_error().is_some_and(
                            aws_sdk_s3::operation::get_object::GetObjectError::is_no_such_key,
                        ) =>
                    {
                        Ok(None)
                    }
                    Err(err) => Err(err),
                }
            }
        })?;
        let Some(body) = got else {
            return Ok(None);
        };
        self.runtime
            .block_on(body.collect())
            .map(|bytes| Some(bytes.to_vec()))
            .map_err(|err| self.error(key, "reading an object", err.to_string()))
    }

    fn put(&self, key: &str, bytes: &[u8]) -> Result<(), StateError> {
        self.call(key, "PutObject", || {
            self.client
                .put_object()
                .bucket(&self.bucket)
                .key(key)
                .body(ByteStream::from(bytes.to_vec()))
                .send()
        })
        .map(|_| ())
    }

    /// Every key under `prefix`.
    fn list(&self, prefix: &str) -> Result<Vec<String>, StateError> {
        let mut keys = Vec::new();
        let mut token: Option<String> = None;
        loop {
            let page = self.call(prefix, "ListObjectsV2", || {
                self.client
                    .list_objects_v2()
                    .bucket(&self.bucket)
                    .prefix(prefix)
                    .set_continuation_token(token.clone())
                    .send()
            })?;
            keys.extend(
                page.contents()
                    .iter()
                    .filter_map(|o| o.key().map(str::to_owned)),
            );
            match page.next_continuation_token() {
                Some(next) if page.is_truncated().unwrap_or(false) => token = Some(next.to_owned()),
                _ => return Ok(keys),
            }
        }
    }

    fn delete(&self, keys: &[String]) -> Result<(), StateError> {
        for chunk in keys.chunks(1000) {
            let objects = chunk
                .iter()
                .map(|key| ObjectIdentifier::builder().key(key).build())
                .collect::<Result<Vec<_>, _>>()
                .map_err(|err| self.error(&self.prefix, "DeleteObjects", err.to_string()))?;
            let delete = Delete::builder()
                .set_objects(Some(objects))
                .quiet(true)
                .build()
                .map_err(|err| self.error(&self.prefix, "DeleteObjects", err.to_string()))?;
            self.call(&self.prefix, "DeleteObjects", || {
                self.client
                    .delete_objects()
                    .bucket(&self.bucket)
                    .delete(delete.clone())
                    .send()
            })?;
        }
        Ok(())
    }

    fn checkpoint_key(&self) -> String {
        format!("{}checkpoint", self.prefix)
    }

    fn model_prefix(&self, key: &str) -> String {
        format!("{}models/{key}/", self.prefix)
    }
}

/// Checkpoints in S3.
pub struct S3StateStore {
    bucket: Bucket,
    /// Model key → checkpoint id of its newest committed version, to delete it once replaced.
    saved_models: HashMap<String, u64>,
}

impl S3StateStore {
    /// Builds the client (path-style addressing with an endpoint override). No call is made.
    pub async fn open(config: &S3StateConfig, aws: &AwsConfig) -> Self {
        let client = crate::aws::s3_client(
            aws,
            config.endpoint_url.as_deref(),
            config.request_timeout.std(),
        )
        .await;
        Self {
            bucket: Bucket {
                client,
                runtime: tokio::runtime::Handle::current(),
                bucket: config.bucket.clone(),
                prefix: config.prefix.clone(),
                retry: config.retry.clone(),
                committed: Arc::new(AtomicU64::new(0)),
            },
            saved_models: HashMap::new(),
        }
    }

    /// A reader of this store's model snapshots (for the operator thread).
    pub fn model_reader(&self) -> S3ModelReader {
        S3ModelReader {
            bucket: self.bucket.clone(),
        }
    }
}

impl StateStore for S3StateStore {
    fn latest(&self) -> Result<Option<Checkpoint>, StateError> {
        let key = self.bucket.checkpoint_key();
        let Some(bytes) = self.bucket.get(&key)? else {
            return Ok(None);
        };
        let stored: Stored = postcard::from_bytes(&bytes).map_err(|err| StateError::Corrupt {
            path: self.bucket.url(&key),
            id: 0,
            reason: err.to_string(),
        })?;
        if stored.format != FORMAT_VERSION {
            return Err(StateError::Corrupt {
                path: self.bucket.url(&key),
                id: stored.checkpoint.id,
                reason: format!(
                    "format version {}, this build reads {FORMAT_VERSION}",
                    stored.format
                ),
            });
        }
        self.bucket
            .committed
            .store(stored.checkpoint.id, Ordering::SeqCst);
        Ok(Some(stored.checkpoint))
    }

    fn save(&mut self, checkpoint: &Checkpoint) -> Result<(), StateError> {
        for (key, snapshot) in &checkpoint.models {
            let object = format!("{}{}", self.bucket.model_prefix(key), checkpoint.id);
            self.bucket.put(&object, snapshot)?;
        }
        let stored = Stored {
            format: FORMAT_VERSION,
            checkpoint: checkpoint.clone(),
        };
        let bytes = postcard::to_stdvec(&stored)
            .unwrap_or_else(|err| unreachable!("checkpoints serialize: {err}"));
        self.bucket.put(&self.bucket.checkpoint_key(), &bytes)?;
        self.bucket.committed.store(checkpoint.id, Ordering::SeqCst);
        // Committed: the versions these models replace are garbage now.
        let mut superseded = Vec::new();
        for (key, _) in &checkpoint.models {
            if let Some(previous) = self.saved_models.insert(key.clone(), checkpoint.id) {
                if previous != checkpoint.id {
                    superseded.push(format!("{}{previous}", self.bucket.model_prefix(key)));
                }
            }
        }
        if !superseded.is_empty() {
            self.bucket.delete(&superseded)?;
        }
        Ok(())
    }

    fn clear(&mut self) -> Result<(), StateError> {
        let keys = self.bucket.list(&self.bucket.prefix)?;
        self.bucket.delete(&keys)?;
        self.saved_models.clear();
        self.bucket.committed.store(0, Ordering::SeqCst);
        Ok(())
    }

    fn describe(&self) -> String {
        self.bucket.url(&self.bucket.prefix)
    }
}

/// Loads model snapshots from the S3 state store.
#[derive(Clone)]
pub struct S3ModelReader {
    bucket: Bucket,
}

impl S3ModelReader {
    /// The newest committed snapshot saved for `key`, if any.
    pub fn load(&self, key: &str) -> Result<Option<Vec<u8>>, StateError> {
        let prefix = self.bucket.model_prefix(key);
        let committed = self.bucket.committed.load(Ordering::SeqCst);
        let newest = self
            .bucket
            .list(&prefix)?
            .into_iter()
            .filter_map(|object| {
                let id: u64 = object.strip_prefix(&prefix)?.parse().ok()?;
                (id <= committed).then_some((id, object))
            })
            .max();
        match newest {
            Some((_, object)) => self.bucket.get(&object),
            None => Ok(None),
        }
    }
}
