//! `fleetstream leases --config FILE`: the lease table as an operator reads it — every shard,
//! its owner, counter, checkpoint, lag and lineage, and with `[source.kinesis.handoff]` where
//! each shard's stored state stands.

use std::collections::BTreeMap;
use std::process::ExitCode;
use std::sync::Arc;

use serde::Serialize;

use crate::cli::LeasesArgs;
use crate::sources::kinesis::handoff::{HandoffStore, StoredLaneInfo};
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
    /// The shard's stored state (with `[source.kinesis.handoff]`).
    pub handoff: Option<StoredLaneInfo>,
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
                handoff: None,
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
                handoff: None,
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

/// A stored lane as a table cell: `position (size, age)`.
fn handoff_text(info: &StoredLaneInfo, now_ms: i64) -> String {
    let size = if info.bytes >= 1_000_000 {
        format!("{:.1} MB", info.bytes as f64 / 1e6)
    } else {
        format!("{:.1} KB", info.bytes as f64 / 1e3)
    };
    match info.written_at_ms {
        Some(at) => {
            let age = (now_ms - at).max(0) as f64 / 1000.0;
            let age = if age < 120.0 {
                format!("{age:.0} s")
            } else {
                format!("{:.0} min", age / 60.0)
            };
            format!("{} ({size}, {age} ago)", info.position)
        }
        None => format!("{} ({size})", info.position),
    }
}

/// Renders rows as an aligned table; the `HANDOFF` column appears when any row has a stored
/// lane.
pub fn table(rows: &[LeaseRow]) -> String {
    let dash = || "-".to_owned();
    let with_handoff = rows.iter().any(|row| row.handoff.is_some());
    let now_ms = crate::pipeline::wall_clock_ms();
    let cells: Vec<Vec<String>> = rows
        .iter()
        .map(|row| {
            let mut cells = vec![
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
            ];
            if with_handoff {
                cells.push(
                    row.handoff
                        .as_ref()
                        .map_or_else(dash, |info| handoff_text(info, now_ms)),
                );
            }
            cells
        })
        .collect();
    let mut header = vec![
        "SHARD",
        "STATE",
        "OWNER",
        "COUNTER",
        "CHECKPOINT",
        "BEHIND",
        "PARENTS",
        "CHILDREN",
    ];
    if with_handoff {
        header.push("HANDOFF");
    }
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
    line(header);
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
        if let Some(handoff) = &kinesis_config.handoff {
            let store = HandoffStore::open(
                &config.aws,
                handoff,
                Arc::new(kinesis_config.clone()),
                Arc::clone(&metrics),
            )
            .await;
            for row in rows.iter_mut().filter(|row| row.counter.is_some()) {
                row.handoff = store
                    .describe(&row.shard)
                    .await
                    .map_err(|e| e.to_string())?;
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
        assert!(!text.contains("HANDOFF"), "no column without hand-off");

        let mut with_state = rows.clone();
        with_state[1].handoff = Some(StoredLaneInfo {
            position: "42/3".to_owned(),
            owner: "worker-a".to_owned(),
            bytes: 12_300,
            written_at_ms: Some(crate::pipeline::wall_clock_ms() - 4_000),
        });
        let text = table(&with_state);
        assert!(text.lines().next().unwrap().ends_with("HANDOFF"), "{text}");
        assert!(text.contains("42/3 (12.3 KB, 4 s ago)"), "{text}");
    }
}
