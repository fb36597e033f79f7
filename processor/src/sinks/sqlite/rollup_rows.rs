//! Rollup rows into SQLite: runs of rollups are upserted in multi-row statements, which keep
//! their B-tree cursors open from row to row (see [`schema::upsert_rollups`]).

use rusqlite::Connection;

use super::{begin_if_needed, count_rows, quantiles_json, schema, sqlite_error};
use crate::pipeline::output::Rollup;
use crate::sinks::SinkError;

/// Rows per multi-row rollup upsert, largest first. A run of rollups goes in statements of the
/// largest size that fits both what is left of the run and the room left in the transaction;
/// one row always fits. 512 rows bind 11,776 parameters, below SQLite's limit of 32,766.
/// Measured on the first 300,000 W1 records (callgrind, the sink's instructions): one row per
/// statement 775 M, 32 rows 740 M, 128 rows 660 M, 512 rows 633 M. A multi-row statement keeps
/// a copy of each page it changes, to undo itself should a row fail, so statements of a few
/// rows gain little.
pub(super) const ROLLUP_STATEMENT_ROWS: [usize; 3] = [512, 32, 1];

/// Binds `rollup` as the row whose parameters start after `offset` in `statement` (one of the
/// [`schema::upsert_rollups`] statements), by position: the hot path of the sink, so no
/// per-row statement lookup or parameter slice.
fn bind_rollup(
    statement: &mut rusqlite::CachedStatement<'_>,
    offset: usize,
    rollup: &Rollup,
) -> rusqlite::Result<()> {
    let result = &rollup.result;
    let summary = &result.summary;
    let quantiles = (!result.quantiles.is_empty()).then(|| quantiles_json(&result.quantiles));
    let histogram = (!result.histogram.is_empty())
        .then(|| serde_json::to_string(&result.histogram).unwrap_or_default());
    statement.raw_bind_parameter(offset + 1, &*rollup.rollup)?;
    statement.raw_bind_parameter(offset + 2, &rollup.group_key)?;
    statement.raw_bind_parameter(offset + 3, rollup.window_start_ms)?;
    statement.raw_bind_parameter(offset + 4, rollup.window_end_ms)?;
    statement.raw_bind_parameter(offset + 5, rollup.vehicle_id.as_deref())?;
    statement.raw_bind_parameter(offset + 6, rollup.fleet.as_deref())?;
    statement.raw_bind_parameter(offset + 7, rollup.signal.as_deref())?;
    statement.raw_bind_parameter(offset + 8, summary.count as i64)?;
    statement.raw_bind_parameter(offset + 9, result.sum)?;
    statement.raw_bind_parameter(offset + 10, summary.min)?;
    statement.raw_bind_parameter(offset + 11, summary.max)?;
    statement.raw_bind_parameter(offset + 12, summary.mean)?;
    statement.raw_bind_parameter(offset + 13, result.stddev)?;
    statement.raw_bind_parameter(offset + 14, summary.first.1)?;
    statement.raw_bind_parameter(offset + 15, summary.last.1)?;
    statement.raw_bind_parameter(offset + 16, summary.last.0)?;
    statement.raw_bind_parameter(offset + 17, result.rate_per_second)?;
    statement.raw_bind_parameter(offset + 18, result.time_weighted_mean)?;
    // Text is copied when bound, so the temporary strings may go.
    statement.raw_bind_parameter(offset + 19, &quantiles)?;
    statement.raw_bind_parameter(offset + 20, &histogram)?;
    statement.raw_bind_parameter(offset + 21, result.distinct.map(|count| count as i64))?;
    statement.raw_bind_parameter(offset + 22, rollup.version)?;
    statement.raw_bind_parameter(offset + 23, rollup.is_final)
}

/// Upserts `rollups` with `statement`, the prepared [`schema::upsert_rollups`] of their count.
fn upsert_rollups(
    statement: &mut rusqlite::CachedStatement<'_>,
    rollups: &[&Rollup],
) -> Result<(), SinkError> {
    let bind_and_run = |statement: &mut rusqlite::CachedStatement<'_>| -> rusqlite::Result<usize> {
        for (row, rollup) in rollups.iter().enumerate() {
            bind_rollup(statement, row * schema::ROLLUP_PARAMETERS, rollup)?;
        }
        statement.raw_execute()
    };
    bind_and_run(statement).map_err(sqlite_error("upserting rollups"))?;
    Ok(())
}

/// Upserts a run of rollups in statements of [`ROLLUP_STATEMENT_ROWS`] rows (`statements` holds
/// their SQL, in that order), none crossing a commit every `batch_rows` rows. Each statement is
/// prepared once per run.
pub(super) fn write_rollups(
    connection: &Connection,
    statements: &[String; ROLLUP_STATEMENT_ROWS.len()],
    batch_rows: usize,
    rows_in_transaction: &mut usize,
    run: &[&Rollup],
) -> Result<(), SinkError> {
    let mut prepared: [Option<rusqlite::CachedStatement<'_>>; ROLLUP_STATEMENT_ROWS.len()] =
        std::array::from_fn(|_| None);
    let mut rest = run;
    while !rest.is_empty() {
        begin_if_needed(connection, rows_in_transaction)?;
        let room = batch_rows.saturating_sub(*rows_in_transaction).max(1);
        let fits = rest.len().min(room);
        let size = ROLLUP_STATEMENT_ROWS
            .iter()
            .position(|rows| *rows <= fits)
            .unwrap_or(ROLLUP_STATEMENT_ROWS.len() - 1);
        let rows = ROLLUP_STATEMENT_ROWS[size];
        let statement = match &mut prepared[size] {
            Some(statement) => statement,
            slot => slot.insert(
                connection
                    .prepare_cached(&statements[size])
                    .map_err(sqlite_error("preparing the rollup upsert"))?,
            ),
        };
        upsert_rollups(statement, &rest[..rows])?;
        rest = &rest[rows..];
        count_rows(connection, batch_rows, rows_in_transaction, rows)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::super::SqliteSink;
    use super::*;
    use crate::pipeline::output::{DeadLetter, DeadLetterKind, Output};
    use crate::sinks::Sink;

    /// Rollup `index` of the multi-row test: every column differs from row to row, so a row
    /// bound at the wrong parameter offset shows.
    fn numbered_rollup(index: usize, version: u32) -> crate::pipeline::output::Rollup {
        let value = index as f64;
        let mut summary = windows::SummaryStats::of(60_000 + index as i64, value);
        summary.merge(&windows::SummaryStats::of(
            61_000 + index as i64,
            value + 2.0,
        ));
        crate::pipeline::output::Rollup {
            rollup: std::sync::Arc::from("r"),
            group_key: format!("vehicle=v{index:04}"),
            vehicle_id: Some(format!("v{index:04}").into()),
            fleet: (index % 3 != 0).then(|| format!("fleet-{}", index % 7).into()),
            signal: None,
            window_start_ms: 60_000,
            window_end_ms: 120_000,
            result: windows::AggregateResult {
                sum: summary.sum(),
                stddev: summary.stddev(),
                summary,
                rate_per_second: Some(value / 1000.0),
                time_weighted_mean: None,
                quantiles: if index % 5 == 0 {
                    vec![(0.5, value + 1.0)]
                } else {
                    Vec::new()
                },
                histogram: Vec::new(),
                distinct: Some(index as u64),
            },
            version,
            is_final: index % 2 == 0,
        }
    }

    #[test]
    fn long_runs_of_rollups_are_upserted_row_by_row_in_statements_of_every_size() {
        const ROWS: usize = 1_100;
        // One run of rollups: a second version of row 5 and a stale version of row 7 inside the
        // run, a dead letter that cuts it in two, then more rows.
        let mut outputs: Vec<Output> = (0..600)
            .map(|index| Output::Rollup(numbered_rollup(index, 1)))
            .collect();
        let mut newer = numbered_rollup(5, 2);
        newer.result.summary = windows::SummaryStats::of(70_000, -1.0);
        outputs.push(Output::Rollup(newer));
        outputs.push(Output::Rollup(numbered_rollup(7, 0)));
        outputs.push(Output::DeadLetter(DeadLetter {
            location: crate::position::RecordLocation {
                partition: "p".into(),
                offset: 0,
                record_id: None,
            },
            kind: DeadLetterKind::Rejected,
            reason: "not JSON".into(),
            fields: Vec::new(),
            vehicle_id: None,
            raw: b"x".to_vec(),
        }));
        outputs.extend((600..ROWS).map(|index| Output::Rollup(numbered_rollup(index, 1))));
        let written = outputs.len() - 1;

        type Row = (
            String,
            Option<String>,
            i64,
            f64,
            f64,
            Option<f64>,
            Option<String>,
            Option<i64>,
            u32,
            bool,
        );
        let rows = |sink: &SqliteSink| -> Vec<Row> {
            sink.connection
                .prepare(
                    "SELECT group_key, fleet, count, min, mean, rate_per_second, quantiles,
                            distinct_count, version, is_final
                     FROM rollups ORDER BY group_key",
                )
                .unwrap()
                .query_map([], |row| Row::try_from(row))
                .unwrap()
                .collect::<Result<_, _>>()
                .unwrap()
        };
        let expected: Vec<Row> = (0..ROWS)
            .map(|index| {
                let rollup = match index {
                    5 => match &outputs[600] {
                        Output::Rollup(rollup) => rollup.clone(),
                        _ => unreachable!(),
                    },
                    _ => numbered_rollup(index, 1),
                };
                let result = &rollup.result;
                (
                    rollup.group_key.clone(),
                    rollup.fleet.as_deref().map(str::to_owned),
                    result.summary.count as i64,
                    result.summary.min,
                    result.summary.mean,
                    result.rate_per_second,
                    (!result.quantiles.is_empty()).then(|| quantiles_json(&result.quantiles)),
                    result.distinct.map(|count| count as i64),
                    rollup.version,
                    rollup.is_final,
                )
            })
            .collect();
        // Commits every 100 rows cut the run into statements that fit what the transaction has
        // room for; without that limit the run takes the largest statements.
        for batch_rows in [100, 50_000] {
            let dir = tempfile::tempdir().unwrap();
            let mut sink = SqliteSink::open(&dir.path().join("multi.db"), batch_rows).unwrap();
            sink.write(&outputs).unwrap();
            assert_eq!(
                sink.rows_in_transaction,
                written % batch_rows,
                "a commit every {batch_rows} rows"
            );
            sink.flush().unwrap();
            let stored = rows(&sink);
            assert_eq!(stored.len(), ROWS, "batch_rows {batch_rows}");
            for (stored, expected) in stored.iter().zip(&expected) {
                assert_eq!(stored, expected, "batch_rows {batch_rows}");
            }
        }
    }
}
