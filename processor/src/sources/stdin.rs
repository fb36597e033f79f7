//! Standard-input source: reads records as they arrive (NDJSON, concatenated JSON, arrays).
//! Standard input cannot be re-read, so its positions are not resumable: a restart reads what
//! arrives next.

use std::sync::Arc;
use std::time::Duration;

use telemetry::FrameScanner;
use tokio::io::AsyncReadExt;

use super::{Source, SourceBatch, SourceError};
use crate::position::{Offset, Position};

/// How long a read waits for data before returning an empty batch.
const IDLE_RETURN: Duration = Duration::from_millis(500);

/// Reads standard input.
pub struct StdinSource {
    stdin: tokio::io::Stdin,
    buffer: Vec<u8>,
    scanner: FrameScanner,
    partition: Arc<str>,
    finished: bool,
}

impl StdinSource {
    /// A source over this process's standard input.
    pub fn new(read_bytes: usize, max_record_bytes: usize) -> Self {
        Self {
            stdin: tokio::io::stdin(),
            buffer: vec![0; read_bytes],
            scanner: FrameScanner::new(max_record_bytes),
            partition: Arc::from("stdin"),
            finished: false,
        }
    }
}

impl Source for StdinSource {
    fn describe(&self) -> String {
        "standard input".to_owned()
    }

    fn size_hint(&self) -> Option<u64> {
        None
    }

    async fn open(&mut self, _committed: &[Position]) -> Result<(), SourceError> {
        Ok(())
    }

    async fn next_batch(&mut self) -> Result<Option<SourceBatch>, SourceError> {
        if self.finished {
            return Ok(None);
        }
        let mut frames = Vec::new();
        let read = match tokio::time::timeout(IDLE_RETURN, self.stdin.read(&mut self.buffer)).await
        {
            Err(_elapsed) => None,
            Ok(Ok(read)) => Some(read),
            Ok(Err(source)) => {
                return Err(SourceError::Io {
                    what: "standard input".to_owned(),
                    source,
                })
            }
        };
        match read {
            Some(0) => {
                self.scanner.finish(&mut frames);
                self.finished = true;
            }
            Some(read) => self.scanner.feed(&self.buffer[..read], &mut frames),
            None => {}
        }
        Ok(Some(SourceBatch {
            stream_finished: self.finished,
            frames,
            progress_units: read.unwrap_or(0) as u64,
            ..SourceBatch::empty(Arc::clone(&self.partition)).ending_at(
                self.finished,
                Offset::Bytes(self.scanner.safe_resume_offset()),
            )
        }))
    }
}
