//! `fleetstream leases --config FILE`: the lease table as an operator reads it — every shard,
//! its owner, counter, checkpoint, lag and lineage.

use std::collections::BTreeMap;
use std::process::ExitCode;
use std::sync::Arc;

use serde::Serialize;

use crate::cli::LeasesArgs;
use crate::sources::kinesis::lease::{Lease, LeaseCheckpoint};
use crate::sources::kinesis::lease_table::LeaseTable;
use crate::sources::kinesis::metrics::KinesisMetrics;
use crate::sources::kinesis::shards::{children_of, list_shards, ShardInfo};
use crate::sources::kinesis::{clients, lag};

/// One row of the listing.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LeaseRow {
    /// Shard id.
    pub shard: String,
    /// `open` or `closed` (from `ListShards`), or `gone` (trimmed from the stream).
    pub state: &'static str,
    /// Lease owner; empty when free or when there is no lease.
    pub owner: Option<String>,
    /// `leaseCounter`.
    pub counter: Option<u64>,
    /// Checkpoint as written (`seq/sub`, `TRIM_HORIZON`, `SHARD_END`), or what the missing
    /// lease means.
    pub checkpoint: String,
    /// Milliseconds the checkpoint is behind the tip, when measured.
    pub behind_ms: Option<i64>,
    /// Parent shards.
    pub parents: Vec<String>,
    /// Child shards.
    pub children: Vec<String>,
}

/// Joins the stream's shards with the lease table (pure; lag filled in later).
pub fn rows(shards: &[ShardInfo], leases: &[Lease]) -> Vec<LeaseRow> {
    let by_key: BTreeMap<&str, &Lease> = leases.iter().map(|l| (l.key.as_str(), l)).collect();
    let children = children_of(shards);
    let mut rows: Vec<LeaseRow> = shards
        .iter()
        .map(|shard| {
            let lease = by_key.get(shard.id.as_str());
            let kids = children.get(&shard.id).cloned().unwrap_or_default();
            let checkpoint = match lease {
                Some(lease) => checkpoint_text(&lease.checkpoint),
                None if kids.iter().any(|k| by_key.contains_key(k.as_str())) => {
                    "(read and cleaned up)".to_owned()
                }
                None => "(no lease yet)".to_owned(),
            };
            LeaseRow {
                shard: shard.id.clone(),
                state: if shard.closed { "closed" } else { "open" },
                owner: lease.and_then(|l| l.owner.clone()),
                counter: lease.map(|l| l.counter),
                checkpoint,
                behind_ms: None,
                parents: shard.parents.clone(),
                children: kids,
            }
        })
        .collect();
    for lease in leases {
        if !shards.iter().any(|s| s.id == lease.key) {
            rows.push(LeaseRow {
                shard: lease.key.clone(),
                state: "gone",
                owner: lease.owner.clone(),
                counter: Some(lease.counter),
                checkpoint: checkpoint_text(&lease.checkpoint),
                behind_ms: None,
                parents: lease.parents.clone(),
                children: lease.children.clone(),
            });
        }
    }
    rows
}

fn checkpoint_text(checkpoint: &LeaseCheckpoint) -> String {
    match checkpoint {
        LeaseCheckpoint::Sequence {
            sequence_number,
            sub_sequence_number,
        } => format!("{sequence_number}/{sub_sequence_number}"),
        other => other.as_attribute().to_owned(),
    }
}

/// Renders rows as an aligned table.
pub fn table(rows: &[LeaseRow]) -> String {
    let dash = || "-".to_owned();
    let cells: Vec<[String; 8]> = rows
        .iter()
        .map(|row| {
            [
                row.shard.clone(),
                row.state.to_owned(),
                row.owner.clone().unwrap_or_else(dash),
                row.counter.map_or_else(dash, |c| c.to_string()),
                row.checkpoint.clone(),
                row.behind_ms.map_or_else(dash, format_lag),
                if row.parents.is_empty() {
                    dash()
                } else {
                    row.parents.join(",")
                },
                if row.children.is_empty() {
                    dash()
                } else {
                    row.children.join(",")
                },
            ]
        })
        .collect();
    let header = [
        "SHARD",
        "STATE",
        "OWNER",
        "COUNTER",
        "CHECKPOINT",
        "BEHIND",
        "PARENTS",
        "CHILDREN",
    ];
    let mut widths: Vec<usize> = header.iter().map(|h| h.len()).collect();
    for row in &cells {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    let mut line = |values: Vec<&str>| {
        let padded: Vec<String> = values
            .iter()
            .zip(&widths)
            .map(|(value, width)| format!("{value:<width$}"))
            .collect();
        out.push_str(padded.join("  ").trim_end());
        out.push('\n');
    };
    line(header.to_vec());
    for row in &cells {
        line(row.iter().map(String::as_str).collect());
    }
    out
}

fn format_lag(ms: i64) -> String {
    match ms {
        0 => "0 (caught up)".to_owned(),
        ms if ms < 60_000 => format!("{:.1} s", ms as f64 / 1000.0),
        ms if ms < 3_600_000 => format!("{:.1} min", ms as f64 / 60_000.0),
        ms => format!("{:.1} h", ms as f64 / 3_600_000.0),
    }
}

/// Loads the config, reads the stream and the table, prints the listing.
pub fn leases(args: &LeasesArgs) -> ExitCode {
    let config = match super::load_kinesis_config(&args.config) {
        Ok(config) => config,
        Err(code) => return code,
    };
    let runtime = match super::runtime(false) {
        Ok(runtime) => runtime,
        Err(code) => return code,
    };
    let kinesis_config = &config.source.kinesis;
    let result = runtime.block_on(async {
        let (kinesis, dynamodb) = clients(&config.aws, kinesis_config).await;
        let metrics = Arc::new(KinesisMetrics::default());
        let table = LeaseTable::new(
            dynamodb,
            kinesis_config.lease_table_name(),
            kinesis_config.retry.clone(),
            Arc::clone(&metrics),
        );
        if table.status().await.map_err(|e| e.to_string())?.is_none() {
            return Err(format!(
                "lease table {} does not exist (no worker has started yet)",
                table.name()
            ));
        }
        let shards = list_shards(
            &kinesis,
            &kinesis_config.stream_name,
            &kinesis_config.retry,
            &metrics,
        )
        .await
        .map_err(|e| e.to_string())?;
        let leases = table.scan().await.map_err(|e| e.to_string())?;
        let mut rows = rows(&shards, &leases);
        if !args.no_lag {
            for row in &mut rows {
                let lease = leases.iter().find(|l| l.key == row.shard);
                if let (Some(lease), "open" | "closed") = (lease, row.state) {
                    row.behind_ms = lag::millis_behind(
                        &kinesis,
                        &kinesis_config.stream_name,
                        &row.shard,
                        &lease.checkpoint,
                    )
                    .await
                    .unwrap_or_else(|err| {
                        tracing::warn!(shard = %row.shard, "lag unknown: {err}");
                        None
                    });
                }
            }
        }
        Ok::<_, String>((table.name().to_owned(), rows))
    });
    match result {
        Ok((name, rows)) => {
            if args.json {
                for row in &rows {
                    println!("{}", serde_json::to_string(row).unwrap_or_default());
                }
            } else {
                println!(
                    "stream {} · lease table {name} · {} shards, {} leases\n",
                    kinesis_config.stream_name,
                    rows.len(),
                    rows.iter().filter(|r| r.counter.is_some()).count()
                );
                print!("{}", table(&rows));
            }
            ExitCode::SUCCESS
        }
        Err(err) => {
            eprintln!("error: {err}");
            ExitCode::from(super::EXIT_FAILED)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sources::kinesis::shards::tests::shard;

    #[test]
    fn rows_join_shards_and_leases_with_lineage() {
        let shards = vec![
            shard("s0", &[], true),
            shard("s1", &["s0"], false),
            shard("s2", &["s0"], false),
        ];
        let mut s1 = Lease::new(
            "s1",
            LeaseCheckpoint::Sequence {
                sequence_number: "42".to_owned(),
                sub_sequence_number: 3,
            },
            vec!["s0".to_owned()],
            None,
        );
        s1.owner = Some("worker-a".to_owned());
        s1.counter = 9;
        let rows = rows(&shards, &[s1]);
        assert_eq!(rows[0].checkpoint, "(read and cleaned up)");
        assert_eq!(rows[0].children, ["s1", "s2"]);
        assert_eq!(rows[1].checkpoint, "42/3");
        assert_eq!(rows[1].owner.as_deref(), Some("worker-a"));
        assert_eq!(rows[2].checkpoint, "(no lease yet)");
        let text = table(&rows);
        assert!(text.starts_with("SHARD"), "{text}");
        assert!(text.contains("s1     open    worker-a  9"), "{text}");
    }
}
