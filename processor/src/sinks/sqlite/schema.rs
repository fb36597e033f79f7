//! The SQLite output schema (documented in the README). Times are UTC epoch milliseconds;
//! primary (or, for `rollups`, unique) keys make every write an idempotent upsert, so a
//! re-processed position never duplicates rows, and a higher `version` replaces a lower one.

/// Version of the schema below, stored in `fleetstream_meta`.
pub const SCHEMA_VERSION: i64 = 8;

/// Columns added after their table first shipped, as (table, column, type): `open` adds each
/// one an existing database lacks.
pub const LATE_COLUMNS: &[(&str, &str, &str)] = &[
    ("detector_events", "inputs", "TEXT"),
    ("alerts", "inputs", "TEXT"),
    ("anomalies", "fleet", "TEXT"),
    ("anomalies", "window_end_ms", "INTEGER"),
    ("anomalies", "confidence", "REAL"),
    ("anomalies", "threshold", "REAL"),
    ("anomalies", "warming_up", "INTEGER"),
    ("anomalies", "imputed", "INTEGER"),
];

/// Creates the tables and indexes if missing.
pub const CREATE: &str = r#"
CREATE TABLE IF NOT EXISTS fleetstream_meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);

CREATE TABLE IF NOT EXISTS rollups (
    rollup             TEXT    NOT NULL,
    group_key          TEXT    NOT NULL,
    window_start_ms    INTEGER NOT NULL,
    window_end_ms      INTEGER NOT NULL,
    vehicle_id         TEXT,
    fleet              TEXT,
    signal             TEXT,
    count              INTEGER NOT NULL,
    sum                REAL    NOT NULL,
    min                REAL    NOT NULL,
    max                REAL    NOT NULL,
    mean               REAL    NOT NULL,
    stddev             REAL,
    first              REAL    NOT NULL,
    last               REAL    NOT NULL,
    last_time_ms       INTEGER NOT NULL,
    rate_per_second    REAL,
    time_weighted_mean REAL,
    quantiles          TEXT,
    histogram          TEXT,
    distinct_count     INTEGER,
    version            INTEGER NOT NULL,
    is_final           INTEGER NOT NULL,
    UNIQUE (rollup, window_start_ms, group_key)
);
CREATE INDEX IF NOT EXISTS rollups_by_vehicle_time ON rollups (vehicle_id, window_start_ms);
-- Per-fleet queries read a time range by the unique key and filter it: an index on a column
-- of a few values cost as much to maintain as the vehicle index.
DROP INDEX IF EXISTS rollups_by_fleet;

CREATE TABLE IF NOT EXISTS alerts (
    vehicle_id     TEXT    NOT NULL,
    rule           TEXT    NOT NULL,
    start_time_ms  INTEGER NOT NULL,
    fleet          TEXT,
    severity       TEXT    NOT NULL,
    status         TEXT    NOT NULL,
    signal         TEXT,
    condition      TEXT,
    fired_time_ms  INTEGER NOT NULL,
    end_time_ms    INTEGER,
    trigger_first  REAL,
    trigger_min    REAL,
    trigger_max    REAL,
    trigger_last   REAL,
    trigger_count  INTEGER,
    message        TEXT    NOT NULL,
    source         TEXT    NOT NULL DEFAULT 'rule',
    target         TEXT,
    inputs         TEXT,
    PRIMARY KEY (vehicle_id, rule, start_time_ms)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS alerts_by_vehicle_time ON alerts (vehicle_id, start_time_ms);
CREATE INDEX IF NOT EXISTS alerts_by_time ON alerts (start_time_ms);

CREATE TABLE IF NOT EXISTS detector_events (
    model        TEXT    NOT NULL,
    vehicle_id   TEXT    NOT NULL,
    time_ms      INTEGER NOT NULL,
    kind         TEXT    NOT NULL,
    to_state     TEXT    NOT NULL,
    from_state   TEXT,
    trigger      TEXT,
    target       TEXT,
    payload      TEXT,
    variables    TEXT,
    inputs       TEXT,
    PRIMARY KEY (model, vehicle_id, time_ms, kind, to_state)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS detector_events_by_vehicle_time ON detector_events (vehicle_id, time_ms);

CREATE TABLE IF NOT EXISTS alarm_commands (
    id             INTEGER PRIMARY KEY,
    model          TEXT    NOT NULL,
    vehicle_id     TEXT    NOT NULL,
    command        TEXT    NOT NULL,
    snooze_ms      INTEGER,
    created_at_ms  INTEGER NOT NULL,
    applied_at_ms  INTEGER
);

CREATE TABLE IF NOT EXISTS anomalies (
    vehicle_id     TEXT    NOT NULL,
    time_ms        INTEGER NOT NULL,
    model          TEXT    NOT NULL,
    score          REAL    NOT NULL,
    grade          REAL    NOT NULL,
    explanation    TEXT,
    fleet          TEXT,
    window_end_ms  INTEGER,
    confidence     REAL,
    threshold      REAL,
    warming_up     INTEGER,
    imputed        INTEGER,
    PRIMARY KEY (vehicle_id, time_ms, model)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS anomalies_by_time ON anomalies (time_ms);
"#;

/// Moves a schema-1 `rollups` table (one rollup per vehicle and signal, no `rollup` column)
/// aside as `rollups_v1`, so the new table can be created; nothing is deleted.
pub const MIGRATE_FROM_V1: &str = r#"
ALTER TABLE rollups RENAME TO rollups_v1;
"#;

/// Moves a pre-schema-8 `rollups` table (clustered on its key: by group first up to schema 6,
/// by time in 7) aside, so the schema-8 table can be created; [`MIGRATE_ROLLUPS_COPY`] then
/// copies its rows over. Schema 8 stores rows by rowid, in the order they are written, with the
/// key `(rollup, window_start_ms, group_key)` as a unique index: closed windows then append to
/// the table and to the key, which is ordered by time, and entries of the vehicle index hold a
/// rowid instead of the whole key.
pub const MIGRATE_ROLLUPS_ASIDE: &str = r#"
DROP INDEX IF EXISTS rollups_by_vehicle_time;
DROP INDEX IF EXISTS rollups_by_time;
DROP INDEX IF EXISTS rollups_by_fleet;
ALTER TABLE rollups RENAME TO rollups_before_v8;
"#;

/// Copies the rows of the moved-aside rollups table into the new one.
pub const MIGRATE_ROLLUPS_COPY: &str = r#"
INSERT OR REPLACE INTO rollups (rollup, group_key, window_start_ms, window_end_ms, vehicle_id,
    fleet, signal, count, sum, min, max, mean, stddev, first, last, last_time_ms, rate_per_second,
    time_weighted_mean, quantiles, histogram, distinct_count, version, is_final)
SELECT rollup, group_key, window_start_ms, window_end_ms, vehicle_id, fleet, signal, count, sum,
    min, max, mean, stddev, first, last, last_time_ms, rate_per_second, time_weighted_mean,
    quantiles, histogram, distinct_count, version, is_final
FROM rollups_before_v8
ORDER BY rollup, window_start_ms, group_key;
DROP TABLE rollups_before_v8;
"#;

/// Moves a pre-schema-5 `alerts` table (rule alerts only, no `source`) aside so the general
/// table can be created; [`MIGRATE_ALERTS_COPY`] then copies its rows over.
pub const MIGRATE_ALERTS_ASIDE: &str = r#"
DROP INDEX IF EXISTS alerts_by_vehicle_time;
DROP INDEX IF EXISTS alerts_by_time;
ALTER TABLE alerts RENAME TO alerts_before_v5;
"#;

/// Copies the rows of the moved-aside alerts table into the general one.
pub const MIGRATE_ALERTS_COPY: &str = r#"
INSERT OR REPLACE INTO alerts (vehicle_id, rule, start_time_ms, fleet, severity, status, signal,
    condition, fired_time_ms, end_time_ms, trigger_first, trigger_min, trigger_max, trigger_last,
    trigger_count, message, source)
SELECT vehicle_id, rule, start_time_ms, fleet, severity, status, signal, condition, fired_time_ms,
    end_time_ms, trigger_first, trigger_min, trigger_max, trigger_last, trigger_count, message,
    'rule'
FROM alerts_before_v5;
DROP TABLE alerts_before_v5;
"#;

/// Upserts a detector or alarm notification (an sns/sqs action) as an alert.
pub const UPSERT_NOTIFICATION_ALERT: &str = r#"
INSERT INTO alerts (vehicle_id, rule, start_time_ms, severity, status, fired_time_ms, message,
                    source, target, inputs)
VALUES (?1, ?2, ?3, 'info', 'firing', ?3, ?4, 'detector', ?5, ?6)
ON CONFLICT (vehicle_id, rule, start_time_ms) DO UPDATE SET
    message = excluded.message, target = excluded.target, inputs = excluded.inputs
"#;

/// Upserts a scored record or window (a replay writes the same row again).
pub const UPSERT_ANOMALY: &str = r#"
INSERT INTO anomalies (vehicle_id, time_ms, model, score, grade, explanation, fleet, window_end_ms,
                       confidence, threshold, warming_up, imputed)
VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)
ON CONFLICT (vehicle_id, time_ms, model) DO UPDATE SET
    score = excluded.score, grade = excluded.grade, explanation = excluded.explanation,
    fleet = excluded.fleet, window_end_ms = excluded.window_end_ms,
    confidence = excluded.confidence, threshold = excluded.threshold,
    warming_up = excluded.warming_up, imputed = excluded.imputed
"#;

/// Upserts the alert of an anomaly graded at or above its model's `alert_grade`.
pub const UPSERT_ANOMALY_ALERT: &str = r#"
INSERT INTO alerts (vehicle_id, rule, start_time_ms, fleet, severity, status, fired_time_ms,
                    message, source, inputs)
VALUES (?1, ?2, ?3, ?4, ?5, 'firing', ?3, ?6, 'anomaly', ?7)
ON CONFLICT (vehicle_id, rule, start_time_ms) DO UPDATE SET
    fleet = excluded.fleet, severity = excluded.severity, message = excluded.message,
    inputs = excluded.inputs
"#;

/// Parameters one rollup row binds, in the column order of [`upsert_rollups`].
pub const ROLLUP_PARAMETERS: usize = 23;

/// What a rollup upsert does with a key already stored: a row replaces it unless the stored
/// version is higher.
const ROLLUP_CONFLICT: &str = r#"
ON CONFLICT (rollup, group_key, window_start_ms) DO UPDATE SET
    window_end_ms = excluded.window_end_ms, vehicle_id = excluded.vehicle_id,
    fleet = excluded.fleet, signal = excluded.signal, count = excluded.count, sum = excluded.sum,
    min = excluded.min, max = excluded.max, mean = excluded.mean, stddev = excluded.stddev,
    first = excluded.first, last = excluded.last, last_time_ms = excluded.last_time_ms,
    rate_per_second = excluded.rate_per_second, time_weighted_mean = excluded.time_weighted_mean,
    quantiles = excluded.quantiles, histogram = excluded.histogram,
    distinct_count = excluded.distinct_count, version = excluded.version,
    is_final = excluded.is_final
WHERE excluded.version >= rollups.version
"#;

/// Upserts `rows` rollups in one statement: row `i` binds parameters
/// `ROLLUP_PARAMETERS * i + 1 ..= ROLLUP_PARAMETERS * (i + 1)`. SQLite inserts the rows one by
/// one, in order, so a later row with the key of an earlier one updates it; one statement keeps
/// its B-tree cursors open from row to row, which spares a descent from the root for the rows
/// that append to the unique key.
pub fn upsert_rollups(rows: usize) -> String {
    let values = (0..rows)
        .map(|row| {
            let first = row * ROLLUP_PARAMETERS;
            let parameters = (1..=ROLLUP_PARAMETERS)
                .map(|column| format!("?{}", first + column))
                .collect::<Vec<_>>();
            format!("({})", parameters.join(", "))
        })
        .collect::<Vec<_>>()
        .join(",\n       ");
    format!(
        "INSERT INTO rollups (rollup, group_key, window_start_ms, window_end_ms, vehicle_id, fleet,
                     signal, count, sum, min, max, mean, stddev, first, last, last_time_ms,
                     rate_per_second, time_weighted_mean, quantiles, histogram, distinct_count,
                     version, is_final)
VALUES {values}{ROLLUP_CONFLICT}"
    )
}

/// Upserts an alert episode (firing, then resolved).
pub const UPSERT_ALERT: &str = r#"
INSERT INTO alerts (vehicle_id, rule, start_time_ms, fleet, severity, status, signal, condition,
                    fired_time_ms, end_time_ms, trigger_first, trigger_min, trigger_max,
                    trigger_last, trigger_count, message)
VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16)
ON CONFLICT (vehicle_id, rule, start_time_ms) DO UPDATE SET
    fleet = excluded.fleet, severity = excluded.severity, status = excluded.status,
    signal = excluded.signal, condition = excluded.condition,
    fired_time_ms = excluded.fired_time_ms, end_time_ms = excluded.end_time_ms,
    trigger_first = excluded.trigger_first, trigger_min = excluded.trigger_min,
    trigger_max = excluded.trigger_max, trigger_last = excluded.trigger_last,
    trigger_count = excluded.trigger_count, message = excluded.message
"#;

/// Upserts a detector state change (`kind = 'state_change'`) or notification
/// (`kind = 'notification'`, `to_state` = the state it was sent from).
pub const UPSERT_DETECTOR_EVENT: &str = r#"
INSERT INTO detector_events (model, vehicle_id, time_ms, kind, to_state, from_state, trigger,
                             target, payload, variables, inputs)
VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)
ON CONFLICT (model, vehicle_id, time_ms, kind, to_state) DO UPDATE SET
    from_state = excluded.from_state, trigger = excluded.trigger, target = excluded.target,
    payload = excluded.payload, variables = excluded.variables, inputs = excluded.inputs
"#;
