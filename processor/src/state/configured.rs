//! The state store `[state]` names, and the matching model-snapshot reader.

use super::{
    Checkpoint, S3ModelReader, S3StateStore, SqliteModelReader, SqliteStateStore, StateError,
    StateStore,
};
use crate::config::{AwsConfig, StateConfig, StateTarget};

/// `target = "sqlite"` or `"s3"`.
pub enum ConfiguredStateStore {
    /// A local SQLite file.
    Sqlite(SqliteStateStore),
    /// An S3 prefix.
    S3(Box<S3StateStore>),
}

/// Reads per-vehicle model snapshots from the configured store.
pub enum ModelReader {
    /// From the SQLite file.
    Sqlite(SqliteModelReader),
    /// From S3.
    S3(S3ModelReader),
}

impl ConfiguredStateStore {
    /// Opens the configured store (S3: builds the client only).
    pub async fn open(config: &StateConfig, aws: &AwsConfig) -> Result<Self, StateError> {
        Ok(match config.target {
            StateTarget::Sqlite => Self::Sqlite(SqliteStateStore::open(&config.path)?),
            StateTarget::S3 => Self::S3(Box::new(S3StateStore::open(&config.s3, aws).await)),
        })
    }

    /// A model reader on the same store.
    pub fn model_reader(&self, config: &StateConfig) -> Result<ModelReader, StateError> {
        Ok(match self {
            Self::Sqlite(_) => ModelReader::Sqlite(SqliteModelReader::open(&config.path)?),
            Self::S3(store) => ModelReader::S3(store.model_reader()),
        })
    }
}

impl ModelReader {
    /// Another reader on the same store (each lane of the operator stage has its own).
    pub fn try_clone(&self) -> Result<Self, StateError> {
        Ok(match self {
            Self::Sqlite(reader) => Self::Sqlite(reader.reopen()?),
            Self::S3(reader) => Self::S3(reader.clone()),
        })
    }

    /// The newest committed snapshot for `key`, if any.
    pub fn load(&self, key: &str) -> Result<Option<Vec<u8>>, StateError> {
        match self {
            Self::Sqlite(reader) => reader.load(key),
            Self::S3(reader) => reader.load(key),
        }
    }
}

impl StateStore for ConfiguredStateStore {
    fn latest(&self) -> Result<Option<Checkpoint>, StateError> {
        match self {
            Self::Sqlite(store) => store.latest(),
            Self::S3(store) => store.latest(),
        }
    }

    fn save(&mut self, checkpoint: &Checkpoint) -> Result<(), StateError> {
        match self {
            Self::Sqlite(store) => store.save(checkpoint),
            Self::S3(store) => store.save(checkpoint),
        }
    }

    fn clear(&mut self) -> Result<(), StateError> {
        match self {
            Self::Sqlite(store) => store.clear(),
            Self::S3(store) => store.clear(),
        }
    }

    fn describe(&self) -> String {
        match self {
            Self::Sqlite(store) => store.describe(),
            Self::S3(store) => store.describe(),
        }
    }
}
