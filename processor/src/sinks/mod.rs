//! Sinks: where outputs are written durably.
//!
//! A sink receives every output batch (and ignores kinds it does not store), and on each
//! checkpoint barrier makes everything received so far durable and returns a resume token
//! (for files, their length) that the checkpoint keeps. On restart the sink is restored to its
//! token, so re-processed outputs never duplicate. Sinks run on their own blocking thread.

pub mod build;
pub mod dead_letter;
pub mod delivery;
pub mod influxdb;
pub mod line_file;
pub mod ndjson;
pub mod runner;
pub mod s3_dead_letter;
pub mod series;
pub mod sns;
pub mod sqlite;
pub mod timestream;

use crate::pipeline::output::Output;

/// Why a sink failed; the pipeline stops without committing past the failure.
#[derive(Debug, thiserror::Error)]
pub enum SinkError {
    /// A file could not be written.
    #[error("{sink}: {what}: {source}")]
    Io {
        /// Sink name.
        sink: &'static str,
        /// What was being done.
        what: String,
        /// I/O error.
        source: std::io::Error,
    },
    /// A remote service failed in a way retrying cannot fix (authentication, a missing
    /// database or table, a bad endpoint).
    #[error("{sink}: {message}")]
    Remote {
        /// Sink name.
        sink: &'static str,
        /// What happened.
        message: String,
    },
    /// SQLite refused a statement.
    #[error("{sink}: {what}: {source}")]
    Sqlite {
        /// Sink name.
        sink: &'static str,
        /// What was being done.
        what: String,
        /// SQLite error.
        source: rusqlite::Error,
    },
}

/// A durable output; see the module documentation.
pub trait Sink: Send + 'static {
    /// Short stable name (`sqlite`, `ndjson`, `dead_letter`), also the key of its resume token.
    fn name(&self) -> &'static str;

    /// Where the output goes, for the summary.
    fn describe(&self) -> String;

    /// Returns to the state of the last checkpoint (`None`: no checkpoint yet).
    fn restore(&mut self, token: Option<u64>) -> Result<(), SinkError>;

    /// Writes (or buffers) a batch of outputs.
    fn write(&mut self, outputs: &[Output]) -> Result<(), SinkError>;

    /// Makes everything written so far durable; returns the resume token.
    fn flush(&mut self) -> Result<Option<u64>, SinkError>;
}
