//! Checkpoint storage: source positions, operator state and sink resume tokens, saved together
//! in one transaction so a restart resumes from a consistent cut.

mod configured;
mod s3;
mod sqlite;
mod unsaved_models;

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::position::Position;

pub use configured::{ConfiguredStateStore, ModelReader};
pub use s3::{S3ModelReader, S3StateStore};
pub use sqlite::{SqliteModelReader, SqliteStateStore};
pub use unsaved_models::UnsavedModels;

/// One consistent cut of the pipeline.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Checkpoint {
    /// Increasing checkpoint number.
    pub id: u64,
    /// Wall-clock time it was saved (UTC ms).
    pub created_at_ms: i64,
    /// Committed position of every partition seen so far.
    pub positions: Vec<Position>,
    /// Serialized operator state (windows, watermarks, rules; see `pipeline::operators`).
    pub operator_state: Vec<u8>,
    /// Resume token of each sink, by sink name.
    pub sink_tokens: BTreeMap<String, Option<u64>>,
    /// Per-vehicle model snapshots that belong to this cut (saved with it, not read back with
    /// it: models are loaded one by one when their vehicle shows up).
    #[serde(skip)]
    pub models: Vec<(String, std::sync::Arc<Vec<u8>>)>,
}

/// Why the state store failed.
#[derive(Debug, thiserror::Error)]
pub enum StateError {
    /// SQLite failed.
    #[error("state store {path}: {what}: {source}")]
    Sqlite {
        /// Database path.
        path: String,
        /// What was being done.
        what: &'static str,
        /// SQLite error.
        source: rusqlite::Error,
    },
    /// Stored data could not be read back.
    #[error("state store {path}: checkpoint {id} is unreadable: {reason}")]
    Corrupt {
        /// Database path.
        path: String,
        /// Checkpoint id.
        id: u64,
        /// Why.
        reason: String,
    },
    /// A remote store (S3) failed after its retries.
    #[error("state store {location}: {what}: {reason}")]
    Remote {
        /// Object or bucket.
        location: String,
        /// The call.
        what: &'static str,
        /// Why.
        reason: String,
    },
    /// The directory could not be created.
    #[error("state store: creating {path}: {source}")]
    Io {
        /// Directory path.
        path: String,
        /// I/O error.
        source: std::io::Error,
    },
}

/// Durable checkpoint storage.
pub trait StateStore: Send + 'static {
    /// The newest checkpoint, if any.
    fn latest(&self) -> Result<Option<Checkpoint>, StateError>;
    /// Saves a checkpoint atomically (and prunes old ones).
    fn save(&mut self, checkpoint: &Checkpoint) -> Result<(), StateError>;
    /// Deletes every checkpoint (a fresh start).
    fn clear(&mut self) -> Result<(), StateError>;
    /// Where the state lives, for messages.
    fn describe(&self) -> String;
}
