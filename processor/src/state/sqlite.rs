//! [`StateStore`] in a local SQLite file (WAL, `synchronous=FULL`); keeps the last few checkpoints.

use std::path::Path;

use rusqlite::{params, Connection, OptionalExtension};

use super::{Checkpoint, StateError, StateStore};

/// Checkpoints kept besides the newest (for inspection).
const KEEP_CHECKPOINTS: u64 = 3;

/// Format of the stored columns.
const FORMAT_VERSION: i64 = 1;

/// SQLite-backed checkpoint store.
pub struct SqliteStateStore {
    path: String,
    connection: Connection,
}

impl SqliteStateStore {
    /// Opens (creating) the store at `path`.
    pub fn open(path: &Path) -> Result<Self, StateError> {
        let display = path.display().to_string();
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent).map_err(|source| StateError::Io {
                path: parent.display().to_string(),
                source,
            })?;
        }
        let sqlite = |what: &'static str| {
            let path = display.clone();
            move |source| StateError::Sqlite { path, what, source }
        };
        let connection = Connection::open(path).map_err(sqlite("opening"))?;
        connection
            .execute_batch(
                "PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL;
                 CREATE TABLE IF NOT EXISTS checkpoints (
                     id              INTEGER PRIMARY KEY,
                     format_version  INTEGER NOT NULL,
                     created_at_ms   INTEGER NOT NULL,
                     positions       TEXT    NOT NULL,
                     sink_tokens     TEXT    NOT NULL,
                     operator_state  BLOB    NOT NULL
                 );
                 CREATE TABLE IF NOT EXISTS models (
                     key            TEXT    PRIMARY KEY,
                     snapshot       BLOB    NOT NULL,
                     checkpoint_id  INTEGER NOT NULL
                 );",
            )
            .map_err(sqlite("creating the schema"))?;
        Ok(Self {
            path: display,
            connection,
        })
    }
}

/// Reads model snapshots saved with checkpoints, on its own connection so the operator thread
/// can load a returning vehicle's model while the committer writes.
pub struct SqliteModelReader {
    path: String,
    connection: Connection,
}

impl SqliteModelReader {
    /// Another reader on the same file.
    pub fn reopen(&self) -> Result<Self, StateError> {
        Self::open(Path::new(&self.path))
    }

    /// Opens a reader on the store at `path` (open the store first: it creates the schema).
    pub fn open(path: &Path) -> Result<Self, StateError> {
        let display = path.display().to_string();
        let connection = Connection::open(path).map_err(|source| StateError::Sqlite {
            path: display.clone(),
            what: "opening a model reader",
            source,
        })?;
        Ok(Self {
            path: display,
            connection,
        })
    }

    /// The snapshot saved for `key`, if any.
    pub fn load(&self, key: &str) -> Result<Option<Vec<u8>>, StateError> {
        self.connection
            .query_row(
                "SELECT snapshot FROM models WHERE key = ?1",
                params![key],
                |row| row.get(0),
            )
            .optional()
            .map_err(|source| StateError::Sqlite {
                path: self.path.clone(),
                what: "loading a model",
                source,
            })
    }
}

impl StateStore for SqliteStateStore {
    fn latest(&self) -> Result<Option<Checkpoint>, StateError> {
        let row = self
            .connection
            .query_row(
                "SELECT id, format_version, created_at_ms, positions, sink_tokens, operator_state
                 FROM checkpoints ORDER BY id DESC LIMIT 1",
                [],
                |row| {
                    Ok((
                        row.get::<_, i64>(0)?,
                        row.get::<_, i64>(1)?,
                        row.get::<_, i64>(2)?,
                        row.get::<_, String>(3)?,
                        row.get::<_, String>(4)?,
                        row.get::<_, Vec<u8>>(5)?,
                    ))
                },
            )
            .optional()
            .map_err(|source| StateError::Sqlite {
                path: self.path.clone(),
                what: "reading the latest checkpoint",
                source,
            })?;
        let Some((id, format, created_at_ms, positions, tokens, operator_state)) = row else {
            return Ok(None);
        };
        let corrupt = |reason: String| StateError::Corrupt {
            path: self.path.clone(),
            id: id as u64,
            reason,
        };
        if format != FORMAT_VERSION {
            return Err(corrupt(format!(
                "format version {format}, this build reads {FORMAT_VERSION}"
            )));
        }
        Ok(Some(Checkpoint {
            id: id as u64,
            created_at_ms,
            positions: serde_json::from_str(&positions).map_err(|e| corrupt(e.to_string()))?,
            operator_state,
            sink_tokens: serde_json::from_str(&tokens).map_err(|e| corrupt(e.to_string()))?,
            models: Vec::new(),
        }))
    }

    fn save(&mut self, checkpoint: &Checkpoint) -> Result<(), StateError> {
        let path = self.path.clone();
        let sqlite = |what: &'static str| {
            let path = path.clone();
            move |source| StateError::Sqlite { path, what, source }
        };
        let positions = serde_json::to_string(&checkpoint.positions)
            .unwrap_or_else(|err| unreachable!("positions serialize: {err}"));
        let tokens = serde_json::to_string(&checkpoint.sink_tokens)
            .unwrap_or_else(|err| unreachable!("sink tokens serialize: {err}"));
        let transaction = self
            .connection
            .transaction()
            .map_err(sqlite("beginning a transaction"))?;
        transaction
            .execute(
                "INSERT OR REPLACE INTO checkpoints
                 (id, format_version, created_at_ms, positions, sink_tokens, operator_state)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                params![
                    checkpoint.id as i64,
                    FORMAT_VERSION,
                    checkpoint.created_at_ms,
                    positions,
                    tokens,
                    checkpoint.operator_state
                ],
            )
            .map_err(sqlite("saving a checkpoint"))?;
        {
            let mut statement = transaction
                .prepare_cached(
                    "INSERT OR REPLACE INTO models (key, snapshot, checkpoint_id) VALUES (?1, ?2, ?3)",
                )
                .map_err(sqlite("preparing the model upsert"))?;
            for (key, snapshot) in &checkpoint.models {
                statement
                    .execute(params![key, snapshot.as_slice(), checkpoint.id as i64])
                    .map_err(sqlite("saving a model"))?;
            }
        }
        transaction
            .execute(
                "DELETE FROM checkpoints WHERE id < ?1",
                params![checkpoint.id.saturating_sub(KEEP_CHECKPOINTS) as i64],
            )
            .map_err(sqlite("pruning old checkpoints"))?;
        transaction
            .commit()
            .map_err(sqlite("committing a checkpoint"))?;
        Ok(())
    }

    fn clear(&mut self) -> Result<(), StateError> {
        self.connection
            .execute_batch("DELETE FROM checkpoints; DELETE FROM models;")
            .map_err(|source| StateError::Sqlite {
                path: self.path.clone(),
                what: "clearing checkpoints",
                source,
            })?;
        Ok(())
    }

    fn describe(&self) -> String {
        self.path.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::position::{Offset, Position};

    #[test]
    fn saves_and_reads_back_the_latest() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = SqliteStateStore::open(&dir.path().join("s/state.db")).unwrap();
        assert!(store.latest().unwrap().is_none());
        for id in 1..=6 {
            store
                .save(&Checkpoint {
                    id,
                    created_at_ms: 5,
                    positions: vec![Position {
                        partition: "a".into(),
                        offset: Offset::Bytes(id * 10),
                    }],
                    operator_state: vec![1, 2, id as u8],
                    sink_tokens: [("ndjson".to_owned(), Some(id))].into(),
                    models: vec![(format!("m/{}", id % 2), std::sync::Arc::new(vec![id as u8]))],
                })
                .unwrap();
        }
        let latest = store.latest().unwrap().unwrap();
        assert_eq!(latest.id, 6);
        assert_eq!(latest.positions[0].offset, Offset::Bytes(60));
        assert_eq!(latest.operator_state, vec![1, 2, 6]);
        let kept: i64 = store
            .connection
            .query_row("SELECT COUNT(*) FROM checkpoints", [], |r| r.get(0))
            .unwrap();
        assert_eq!(kept, 4);
        let reader = SqliteModelReader::open(&dir.path().join("s/state.db")).unwrap();
        assert_eq!(
            reader.load("m/0").unwrap(),
            Some(vec![6]),
            "the newest snapshot wins"
        );
        assert_eq!(reader.load("m/1").unwrap(), Some(vec![5]));
        assert_eq!(reader.load("m/2").unwrap(), None);
        store.clear().unwrap();
        assert_eq!(
            reader.load("m/0").unwrap(),
            None,
            "a fresh start forgets models too"
        );
    }
}
