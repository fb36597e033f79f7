//! The SQLite sink: the embedded default store. WAL mode, batched transactions, idempotent
//! upserts (see [`schema`]). A checkpoint commits the open transaction with `synchronous=FULL`,
//! so acknowledged rows survive a crash.

mod rollup_rows;
pub mod schema;

use std::path::{Path, PathBuf};

use rusqlite::{params, Connection};

use super::{Sink, SinkError};
use crate::pipeline::output::{AnomalyRow, Output, Rollup};
use models::detector::DetectorOutput;
use models::rules::Alert;

const NAME: &str = "sqlite";

/// The page cache's default size (`sinks.sqlite.cache_mib`), in MiB. With 1,000 vehicles, a
/// 16 MiB cache made the W10 replay (a 600 MB database) 11 % slower; on W1 (60 MB) it was ~3 %
/// faster, because a larger cache there fills with pages written once, each in fresh memory
/// the kernel must fault in.
pub const DEFAULT_CACHE_MIB: u64 = 128;

/// Writes rollups and alerts to SQLite.
pub struct SqliteSink {
    path: PathBuf,
    connection: Connection,
    batch_rows: usize,
    rows_in_transaction: usize,
    /// The SQL of the rollup upserts, one per size of [`rollup_rows::ROLLUP_STATEMENT_ROWS`].
    rollup_upserts: [String; rollup_rows::ROLLUP_STATEMENT_ROWS.len()],
}

fn sqlite_error(what: &str) -> impl FnOnce(rusqlite::Error) -> SinkError + '_ {
    move |source| SinkError::Sqlite {
        sink: NAME,
        what: what.to_owned(),
        source,
    }
}

/// Opens a transaction unless one is open; a new one counts its rows from zero.
fn begin_if_needed(
    connection: &Connection,
    rows_in_transaction: &mut usize,
) -> Result<(), SinkError> {
    if connection.is_autocommit() {
        connection
            .execute_batch("BEGIN")
            .map_err(sqlite_error("beginning a transaction"))?;
        *rows_in_transaction = 0;
    }
    Ok(())
}

/// Commits the open transaction, if any.
fn commit(connection: &Connection, rows_in_transaction: &mut usize) -> Result<(), SinkError> {
    if !connection.is_autocommit() {
        connection
            .execute_batch("COMMIT")
            .map_err(sqlite_error("committing"))?;
    }
    *rows_in_transaction = 0;
    Ok(())
}

/// Counts `rows` written into the open transaction and commits it once it holds `batch_rows`.
fn count_rows(
    connection: &Connection,
    batch_rows: usize,
    rows_in_transaction: &mut usize,
    rows: usize,
) -> Result<(), SinkError> {
    *rows_in_transaction += rows;
    if *rows_in_transaction >= batch_rows {
        commit(connection, rows_in_transaction)?;
    }
    Ok(())
}

impl SqliteSink {
    /// Opens (creating) the database and its schema, with the default page cache.
    pub fn open(path: &Path, batch_rows: usize) -> Result<Self, SinkError> {
        Self::open_with_cache(path, batch_rows, DEFAULT_CACHE_MIB)
    }

    /// [`Self::open`] with a page cache of `cache_mib` (`sinks.sqlite.cache_mib`). A replay of a
    /// long archive needs one that holds the leaf of the vehicle index every vehicle's next row
    /// goes to, beside the pages of the open transaction; memory the cache never fills is not
    /// allocated.
    pub fn open_with_cache(
        path: &Path,
        batch_rows: usize,
        cache_mib: u64,
    ) -> Result<Self, SinkError> {
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent).map_err(|source| SinkError::Io {
                sink: NAME,
                what: format!("creating directory {}", parent.display()),
                source,
            })?;
        }
        let what = format!("opening {}", path.display());
        let connection = Connection::open(path).map_err(sqlite_error(&what))?;
        // Pages of 32 KiB (new files only; the size must be set before WAL): rollups append in
        // key order, and large pages cut the B-tree work per row (see the sqlite_sink bench).
        connection
            .execute_batch(
                "PRAGMA page_size = 32768; PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL; PRAGMA busy_timeout = 10000;
                 PRAGMA temp_store = MEMORY;",
            )
            .map_err(sqlite_error("setting pragmas"))?;
        if table_lacks_column(&connection, "rollups", "rollup")? {
            tracing::warn!(db = %path.display(), "moving the schema-1 rollups table aside as rollups_v1");
            connection
                .execute_batch(schema::MIGRATE_FROM_V1)
                .map_err(sqlite_error("migrating the schema"))?;
        }
        let old_rollups_key = rollups_clustered_by_key(&connection)?;
        if old_rollups_key {
            tracing::info!(db = %path.display(), "rebuilding the rollups table as a rowid table with a unique key (schema 8); this copies every row once");
            connection
                .execute_batch(schema::MIGRATE_ROLLUPS_ASIDE)
                .map_err(sqlite_error("migrating rollups"))?;
        }
        let old_alerts = table_lacks_column(&connection, "alerts", "source")?;
        if old_alerts {
            connection
                .execute_batch(schema::MIGRATE_ALERTS_ASIDE)
                .map_err(sqlite_error("migrating alerts"))?;
        }
        // One transaction: on a new file, each statement would otherwise commit (and sync) alone.
        connection
            .execute_batch(&format!("BEGIN; {} COMMIT;", schema::CREATE))
            .map_err(sqlite_error("creating the schema"))?;
        if old_alerts {
            connection
                .execute_batch(schema::MIGRATE_ALERTS_COPY)
                .map_err(sqlite_error("migrating alerts"))?;
        }
        if old_rollups_key {
            connection
                .execute_batch(&format!("BEGIN; {} COMMIT;", schema::MIGRATE_ROLLUPS_COPY))
                .map_err(sqlite_error("migrating rollups"))?;
        }
        // Columns added after their table first shipped.
        for &(table, column, kind) in schema::LATE_COLUMNS {
            if table_lacks_column(&connection, table, column)? {
                connection
                    .execute_batch(&format!("ALTER TABLE {table} ADD COLUMN {column} {kind}"))
                    .map_err(sqlite_error("adding a column"))?;
            }
        }
        connection
            .execute(
                "INSERT INTO fleetstream_meta (key, value) VALUES ('schema_version', ?1)
                 ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                params![schema::SCHEMA_VERSION.to_string()],
            )
            .map_err(sqlite_error("recording the schema version"))?;
        // A negative size is in KiB.
        connection
            .execute_batch(&format!(
                "PRAGMA cache_size = -{}",
                cache_mib.saturating_mul(1024)
            ))
            .map_err(sqlite_error("sizing the page cache"))?;
        Ok(Self {
            path: path.to_owned(),
            connection,
            batch_rows: batch_rows.max(1),
            rows_in_transaction: 0,
            rollup_upserts: rollup_rows::ROLLUP_STATEMENT_ROWS.map(schema::upsert_rollups),
        })
    }

    fn upsert_alert(&self, alert: &Alert) -> Result<(), SinkError> {
        let mut statement = self
            .connection
            .prepare_cached(schema::UPSERT_ALERT)
            .map_err(sqlite_error("preparing the alert upsert"))?;
        statement
            .execute(params![
                alert.vehicle_id.as_str(),
                alert.rule,
                alert.start_time_ms,
                alert.fleet.as_deref(),
                alert.severity.as_str(),
                alert.status.as_str(),
                alert.signal,
                alert.condition,
                alert.fired_time_ms,
                alert.end_time_ms,
                alert.trigger.first,
                alert.trigger.min,
                alert.trigger.max,
                alert.trigger.last,
                alert.trigger.count as i64,
                alert.message(),
            ])
            .map_err(sqlite_error("upserting an alert"))?;
        Ok(())
    }
}

impl SqliteSink {
    /// The `anomalies` row, and an `alerts` row (source `anomaly`) when the grade reached the
    /// model's alert level.
    fn upsert_anomaly(&self, row: &AnomalyRow) -> Result<(), SinkError> {
        let mut statement = self
            .connection
            .prepare_cached(schema::UPSERT_ANOMALY)
            .map_err(sqlite_error("preparing the anomaly upsert"))?;
        statement
            .execute(params![
                row.vehicle_id.as_str(),
                row.time_ms,
                &*row.model,
                row.score,
                row.grade,
                row.explanation,
                row.fleet.as_deref(),
                row.window_end_ms,
                row.confidence,
                row.threshold,
                row.warming_up,
                row.imputed,
            ])
            .map_err(sqlite_error("upserting an anomaly"))?;
        if let Some(severity) = row.alert {
            let mut statement = self
                .connection
                .prepare_cached(schema::UPSERT_ANOMALY_ALERT)
                .map_err(sqlite_error("preparing the anomaly alert upsert"))?;
            statement
                .execute(params![
                    row.vehicle_id.as_str(),
                    &*row.model,
                    row.time_ms,
                    row.fleet.as_deref(),
                    severity.as_str(),
                    row.message(),
                    row.explanation,
                ])
                .map_err(sqlite_error("upserting an anomaly alert"))?;
        }
        Ok(())
    }

    fn upsert_detector_event(&self, event: &DetectorOutput) -> Result<(), SinkError> {
        let mut statement = self
            .connection
            .prepare_cached(schema::UPSERT_DETECTOR_EVENT)
            .map_err(sqlite_error("preparing the detector event upsert"))?;
        match event {
            DetectorOutput::Alert(alert) => return self.upsert_alert(alert),
            DetectorOutput::StateChange {
                vehicle_id,
                model,
                from,
                to,
                time_ms,
                trigger,
                variables,
                inputs,
            } => {
                let variables: serde_json::Map<String, serde_json::Value> = variables
                    .iter()
                    .map(|(name, value)| {
                        (name.clone(), serde_json::Value::String(value.to_string()))
                    })
                    .collect();
                statement.execute(params![
                    model,
                    vehicle_id.as_str(),
                    time_ms,
                    "state_change",
                    to,
                    from,
                    trigger,
                    Option::<String>::None,
                    Option::<String>::None,
                    serde_json::Value::Object(variables).to_string(),
                    serde_json::to_string(inputs).unwrap_or_default(),
                ])
            }
            DetectorOutput::Notification {
                vehicle_id,
                model,
                kind,
                target,
                state,
                time_ms,
                payload,
                inputs,
            } => {
                let inputs = serde_json::to_string(inputs).unwrap_or_default();
                // Also an alert, so alert consumers (SQL, SNS) see every notification.
                let mut alert = self
                    .connection
                    .prepare_cached(schema::UPSERT_NOTIFICATION_ALERT)
                    .map_err(sqlite_error("preparing the notification alert upsert"))?;
                alert
                    .execute(params![
                        vehicle_id.as_str(),
                        format!("{model} → {kind}"),
                        time_ms,
                        payload,
                        target,
                        inputs,
                    ])
                    .map_err(sqlite_error("upserting a notification alert"))?;
                statement.execute(params![
                    model,
                    vehicle_id.as_str(),
                    time_ms,
                    "notification",
                    state,
                    Option::<String>::None,
                    kind,
                    target,
                    payload,
                    Option::<String>::None,
                    inputs,
                ])
            }
        }
        .map_err(sqlite_error("upserting a detector event"))?;
        Ok(())
    }
}

/// True when `table` exists without `column`: it was written by an older schema and needs
/// migrating.
fn table_lacks_column(
    connection: &Connection,
    table: &str,
    column: &str,
) -> Result<bool, SinkError> {
    connection
        .query_row(
            "SELECT COUNT(*) > 0 FROM sqlite_master WHERE type = 'table' AND name = ?1
             AND NOT EXISTS (SELECT 1 FROM pragma_table_info(?1) WHERE name = ?2)",
            params![table, column],
            |row| row.get(0),
        )
        .map_err(sqlite_error("inspecting the schema"))
}

/// True when the `rollups` table exists clustered on a primary key (`WITHOUT ROWID`, schemas
/// 2–7), not yet a schema-8 rowid table with a unique key.
fn rollups_clustered_by_key(connection: &Connection) -> Result<bool, SinkError> {
    connection
        .query_row(
            "SELECT COUNT(*) > 0 FROM pragma_index_list('rollups') WHERE origin = 'pk'",
            [],
            |row| row.get(0),
        )
        .map_err(sqlite_error("inspecting the schema"))
}

/// `{"p50": 12.3, "p95": 40.1}` (keys are the quantile in percent).
pub fn quantiles_json(quantiles: &[(f64, f64)]) -> String {
    let map: serde_json::Map<String, serde_json::Value> = quantiles
        .iter()
        .map(|(q, value)| (format!("p{}", q * 100.0), serde_json::json!(value)))
        .collect();
    serde_json::Value::Object(map).to_string()
}

impl Sink for SqliteSink {
    fn name(&self) -> &'static str {
        NAME
    }

    fn describe(&self) -> String {
        self.path.display().to_string()
    }

    fn restore(&mut self, _token: Option<u64>) -> Result<(), SinkError> {
        // Upserts make re-written rows harmless; nothing to undo.
        Ok(())
    }

    fn write(&mut self, outputs: &[Output]) -> Result<(), SinkError> {
        let mut rest = outputs;
        while let Some((first, tail)) = rest.split_first() {
            let rows = match first {
                Output::Rollup(_) => {
                    let run: Vec<&Rollup> = rest
                        .iter()
                        .map_while(|output| match output {
                            Output::Rollup(rollup) => Some(rollup),
                            _ => None,
                        })
                        .collect();
                    rest = &rest[run.len()..];
                    rollup_rows::write_rollups(
                        &self.connection,
                        &self.rollup_upserts,
                        self.batch_rows,
                        &mut self.rows_in_transaction,
                        &run,
                    )?;
                    continue;
                }
                Output::Alert(alert) => {
                    begin_if_needed(&self.connection, &mut self.rows_in_transaction)?;
                    self.upsert_alert(alert)?;
                    1
                }
                Output::Detector(event) => {
                    begin_if_needed(&self.connection, &mut self.rows_in_transaction)?;
                    self.upsert_detector_event(event)?;
                    1
                }
                Output::Anomaly(row) => {
                    begin_if_needed(&self.connection, &mut self.rows_in_transaction)?;
                    self.upsert_anomaly(row)?;
                    1
                }
                Output::DeadLetter(_) => 0,
            };
            rest = tail;
            if rows > 0 {
                count_rows(
                    &self.connection,
                    self.batch_rows,
                    &mut self.rows_in_transaction,
                    rows,
                )?;
            }
        }
        Ok(())
    }

    fn flush(&mut self) -> Result<Option<u64>, SinkError> {
        commit(&self.connection, &mut self.rows_in_transaction)?;
        Ok(None)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The first column of every row `sql` returns, as text.
    fn texts(connection: &Connection, sql: &str) -> Vec<String> {
        connection
            .prepare(sql)
            .unwrap()
            .query_map([], |row| row.get(0))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap()
    }

    #[test]
    fn the_bundled_sqlite_keeps_no_memory_statistics() {
        // Set by LIBSQLITE3_FLAGS in .cargo/config.toml (see there why).
        let connection = Connection::open_in_memory().unwrap();
        let options = texts(&connection, "PRAGMA compile_options");
        assert!(
            options.iter().any(|option| option == "DEFAULT_MEMSTATUS=0"),
            "{options:?}"
        );
    }

    #[test]
    fn the_page_cache_has_its_configured_size() {
        let dir = tempfile::tempdir().unwrap();
        let cache_kib = |sink: &SqliteSink| -> i64 {
            sink.connection
                .query_row("PRAGMA cache_size", [], |row| row.get(0))
                .unwrap()
        };
        let default = SqliteSink::open(&dir.path().join("default.db"), 10).unwrap();
        assert_eq!(cache_kib(&default), -(DEFAULT_CACHE_MIB as i64) * 1024);
        let small = SqliteSink::open_with_cache(&dir.path().join("small.db"), 10, 16).unwrap();
        assert_eq!(cache_kib(&small), -16 * 1024);
    }

    #[test]
    fn new_databases_use_large_pages_and_existing_ones_keep_theirs() {
        let dir = tempfile::tempdir().unwrap();
        let page_size = |path: &Path| -> i64 {
            Connection::open(path)
                .unwrap()
                .query_row("PRAGMA page_size", [], |row| row.get(0))
                .unwrap()
        };
        let fresh = dir.path().join("fresh.db");
        drop(SqliteSink::open(&fresh, 10).unwrap());
        assert_eq!(page_size(&fresh), 32768);

        let existing = dir.path().join("existing.db");
        Connection::open(&existing)
            .unwrap()
            .execute_batch("PRAGMA page_size = 4096; CREATE TABLE t (x)")
            .unwrap();
        let mut sink = SqliteSink::open(&existing, 10).unwrap();
        sink.flush().unwrap();
        drop(sink);
        assert_eq!(page_size(&existing), 4096);
    }

    #[test]
    fn an_older_alerts_table_is_migrated_with_its_rows() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("old.db");
        {
            let connection = Connection::open(&path).unwrap();
            connection
                .execute_batch(
                    "CREATE TABLE alerts (vehicle_id TEXT NOT NULL, rule TEXT NOT NULL,
                     start_time_ms INTEGER NOT NULL, fleet TEXT, severity TEXT NOT NULL,
                     status TEXT NOT NULL, signal TEXT NOT NULL, condition TEXT NOT NULL,
                     fired_time_ms INTEGER NOT NULL, end_time_ms INTEGER,
                     trigger_first REAL NOT NULL, trigger_min REAL NOT NULL,
                     trigger_max REAL NOT NULL, trigger_last REAL NOT NULL,
                     trigger_count INTEGER NOT NULL, message TEXT NOT NULL,
                     PRIMARY KEY (vehicle_id, rule, start_time_ms)) WITHOUT ROWID;
                     CREATE INDEX alerts_by_time ON alerts (start_time_ms);
                     INSERT INTO alerts VALUES ('v', 'hot', 1, NULL, 'critical', 'firing', 's', 'c',
                       2, NULL, 1.0, 1.0, 1.0, 1.0, 1, 'm');",
                )
                .unwrap();
        }
        let sink = SqliteSink::open(&path, 10).unwrap();
        let (source, max): (String, f64) = sink
            .connection
            .query_row(
                "SELECT source, trigger_max FROM alerts WHERE rule = 'hot'",
                [],
                |row| Ok((row.get(0)?, row.get(1)?)),
            )
            .unwrap();
        assert_eq!((source.as_str(), max), ("rule", 1.0));
        let indexes: i64 = sink
            .connection
            .query_row(
                "SELECT COUNT(*) FROM sqlite_master WHERE type = 'index' AND tbl_name = 'alerts'",
                [],
                |row| row.get(0),
            )
            .unwrap();
        assert_eq!(indexes, 2, "the new table has its indexes");
    }

    #[test]
    fn rollups_tables_clustered_on_their_key_are_rebuilt_with_their_rows() {
        // Schema 6 (keyed by group first, with a time index) and schema 7 (keyed by time).
        for (schema, key, extra_index) in [
            (
                6,
                "rollup, group_key, window_start_ms",
                "CREATE INDEX rollups_by_time ON rollups (window_start_ms);",
            ),
            (7, "rollup, window_start_ms, group_key", ""),
        ] {
            let dir = tempfile::tempdir().unwrap();
            let path = dir.path().join(format!("v{schema}.db"));
            drop(SqliteSink::open(&path, 10).unwrap());
            {
                // Turn the fresh table back into the old layout, with one row.
                let connection = Connection::open(&path).unwrap();
                let create: String = connection
                    .query_row(
                        "SELECT sql FROM sqlite_master WHERE name = 'rollups'",
                        [],
                        |row| row.get(0),
                    )
                    .unwrap();
                let old = create.replace(
                    "UNIQUE (rollup, window_start_ms, group_key)\n)",
                    &format!("PRIMARY KEY ({key})\n) WITHOUT ROWID"),
                );
                assert_ne!(old, create);
                connection
                    .execute_batch(&format!(
                        "DROP TABLE rollups; {old}; {extra_index}
                         INSERT INTO rollups (rollup, group_key, window_start_ms, window_end_ms,
                           count, sum, min, max, mean, first, last, last_time_ms, version, is_final)
                         VALUES ('r', 'vehicle=v', 60000, 120000, 2, 3.0, 1.0, 2.0, 1.5, 1.0, 2.0,
                           61000, 1, 0);"
                    ))
                    .unwrap();
                assert!(rollups_clustered_by_key(&connection).unwrap());
            }
            let mut sink = SqliteSink::open(&path, 10).unwrap();
            assert!(
                !rollups_clustered_by_key(&sink.connection).unwrap(),
                "schema {schema}"
            );
            let row = |sink: &SqliteSink| -> (i64, f64, i64) {
                sink.connection
                    .query_row(
                        "SELECT count, mean, version FROM rollups WHERE group_key = 'vehicle=v'",
                        [],
                        |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?)),
                    )
                    .unwrap()
            };
            assert_eq!(row(&sink), (2, 1.5, 1), "schema {schema}");
            let indexes = texts(
                &sink.connection,
                "SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = 'rollups' AND sql IS NOT NULL ORDER BY name",
            );
            assert_eq!(indexes, ["rollups_by_vehicle_time"]);
            // The migrated row is upserted by its key: a higher version replaces it, a lower
            // one does not.
            let mut rollup = crate::pipeline::output::Rollup {
                rollup: std::sync::Arc::from("r"),
                group_key: "vehicle=v".into(),
                vehicle_id: Some("v".into()),
                fleet: None,
                signal: None,
                window_start_ms: 60_000,
                window_end_ms: 120_000,
                result: windows::AggregateResult {
                    summary: windows::SummaryStats::of(61_000, 4.0),
                    sum: 4.0,
                    stddev: None,
                    rate_per_second: None,
                    time_weighted_mean: None,
                    quantiles: Vec::new(),
                    histogram: Vec::new(),
                    distinct: None,
                },
                version: 2,
                is_final: true,
            };
            sink.write(&[Output::Rollup(rollup.clone())]).unwrap();
            sink.flush().unwrap();
            assert_eq!(row(&sink), (1, 4.0, 2), "schema {schema}");
            rollup.version = 1;
            sink.write(&[Output::Rollup(rollup)]).unwrap();
            sink.flush().unwrap();
            assert_eq!(row(&sink), (1, 4.0, 2), "schema {schema}");
            let rows: i64 = sink
                .connection
                .query_row("SELECT COUNT(*) FROM rollups", [], |row| row.get(0))
                .unwrap();
            assert_eq!(rows, 1);
        }
    }

    #[test]
    fn columns_added_later_are_added_to_existing_tables() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("v5-early.db");
        drop(SqliteSink::open(&path, 10).unwrap());
        {
            let connection = Connection::open(&path).unwrap();
            for &(table, column, _) in schema::LATE_COLUMNS {
                connection
                    .execute_batch(&format!("ALTER TABLE {table} DROP COLUMN {column}"))
                    .unwrap();
                assert!(table_lacks_column(&connection, table, column).unwrap());
            }
        }
        let sink = SqliteSink::open(&path, 10).unwrap();
        for &(table, column, _) in schema::LATE_COLUMNS {
            assert!(
                !table_lacks_column(&sink.connection, table, column).unwrap(),
                "{table} gets its {column} column back"
            );
        }
    }
}
