//! The undelivered log: one NDJSON line per record a remote sink gave up on, with the sink, the
//! reason and the record as it was sent, so an operator can see why and replay it.

use std::path::Path;

use std::sync::Arc;

use serde::Serialize;

use super::DeliveryMetrics;

use super::super::line_file::LineFile;
use super::super::SinkError;

#[derive(Serialize)]
struct UndeliveredLine<'a, T: Serialize> {
    sink: &'a str,
    reason: &'a str,
    record: &'a T,
}

/// An append-only NDJSON file whose length is the owning sink's resume token: restoring to a
/// checkpoint truncates lines written after it, so a replay does not log a record twice.
pub struct UndeliveredLog {
    sink: &'static str,
    file: LineFile,
    metrics: Arc<DeliveryMetrics>,
}

impl UndeliveredLog {
    /// Opens (creating) the log of `sink` at `path`; every record logged is counted as
    /// undelivered in `metrics`.
    pub fn open(
        sink: &'static str,
        path: &Path,
        metrics: Arc<DeliveryMetrics>,
    ) -> Result<Self, SinkError> {
        Ok(Self {
            sink,
            file: LineFile::open(sink, path)?,
            metrics,
        })
    }

    /// Appends one record with its reason.
    pub fn record<T: Serialize>(&mut self, reason: &str, record: &T) -> Result<(), SinkError> {
        tracing::warn!(sink = self.sink, %reason, "record undelivered");
        self.metrics.undelivered(1);
        self.file.write_line(&UndeliveredLine {
            sink: self.sink,
            reason,
            record,
        })
    }

    /// Truncates to the length at the last checkpoint.
    pub fn restore(&mut self, token: Option<u64>) -> Result<(), SinkError> {
        self.file.restore(token)
    }

    /// Syncs; returns the durable length (the resume token).
    pub fn flush(&mut self) -> Result<Option<u64>, SinkError> {
        self.file.flush()
    }

    /// Where the log is.
    pub fn describe(&self) -> String {
        self.file.describe()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn restoring_drops_what_was_logged_after_the_checkpoint_and_counts_each_record() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("undelivered.ndjson");
        let metrics = Arc::new(DeliveryMetrics::default());
        let mut log = UndeliveredLog::open("test", &path, Arc::clone(&metrics)).expect("open");
        log.record("too big", &"first").expect("record");
        let token = log.flush().expect("flush");
        log.record("too big", &"second").expect("record");
        log.flush().expect("flush");
        assert_eq!(metrics.snapshot().undelivered, 2);

        let mut reopened = UndeliveredLog::open("test", &path, metrics).expect("reopen");
        reopened.restore(token).expect("restore");
        let text = std::fs::read_to_string(&path).expect("read");
        assert_eq!(
            text,
            "{\"sink\":\"test\",\"reason\":\"too big\",\"record\":\"first\"}\n"
        );
    }
}
