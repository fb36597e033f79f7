//! The Kinesis source against kinesalite (the stream) and moto (the DynamoDB lease table):
//! reading every shard, leases shared between worker processes, hand-off at shutdown,
//! resharding while producing, KPL aggregates, and faults injected by our proxy.

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use common::emulators::{moto_url, unique_name, S3Bucket};
use common::kinesis::{
    all_read, keyed_lines, logged, logged_soon, sorted_owner_counts, source_toml,
    wait_checkpointed, wait_until, Aws, LogLine, Worker,
};
use common::{read_rollups, simulate, RollupKey, RollupRow, Workspace};

/// The config of `workspace` with the file source replaced by `source` and a zero
/// out-of-orderness bound, so any record read out of order is counted late.
fn kinesis_config(workspace: &Workspace, source: &str, extra: &str) -> PathBuf {
    let placeholder = Path::new("/kinesis-placeholder");
    let path = workspace.config(placeholder, extra);
    let text = std::fs::read_to_string(&path).expect("config");
    let file_source =
        "[source]\nkind = \"file\"\npath = \"/kinesis-placeholder\"\nread_bytes = 65536\n";
    assert!(text.contains(file_source));
    let time = "[time]\nmax_out_of_orderness = \"10s\"\n";
    assert!(text.contains(time));
    let text = text.replace(file_source, source).replace(
        time,
        "[time]\nmax_out_of_orderness = \"0s\"\nidle_timeout = \"3s\"\n",
    );
    std::fs::write(&path, text).expect("write config");
    path
}

/// Rollups without version and finality (a stopped stream ends with partial windows emitted).
fn rollup_values(db: &Path) -> BTreeMap<RollupKey, RollupRow> {
    without_versions(read_rollups(db))
}

/// `rollups` with every version 1 and final, to compare values only.
fn without_versions(rollups: BTreeMap<RollupKey, RollupRow>) -> BTreeMap<RollupKey, RollupRow> {
    rollups
        .into_iter()
        .map(|(key, mut row)| {
            row.version = 1;
            row.is_final = true;
            (key, row)
        })
        .collect()
}

/// A simulated input, as records keyed by vehicle id, and the rollups of a plain file run over it.
fn reference(vehicles: u32, seconds: u32) -> (Records, BTreeMap<RollupKey, RollupRow>) {
    let workspace = Workspace::new();
    let input = workspace.path("input.ndjson");
    simulate(&input, vehicles, seconds, 0.0, 11);
    let config = workspace.config(&input, "");
    common::run_summary(&config, &[]);
    let rollups = rollup_values(&workspace.db());
    assert!(!rollups.is_empty());
    (keyed_lines(&input), rollups)
}

/// Records to put: (partition key, data).
type Records = Vec<(String, Vec<u8>)>;

const EMIT_ON_STOP: &str = "[shutdown]\nopen_windows = \"emit_partial\"\n";

/// The `handoff` line of `[source.kinesis]`: shard state in `bucket`.
fn handoff_toml(bucket: &S3Bucket) -> String {
    format!(
        "\nhandoff = {{ bucket = \"{}\", endpoint_url = \"{}\" }}\n",
        bucket.name,
        moto_url()
    )
}

/// `rollups` of windows before the last minute of the input. A stream never ends: with hand-off
/// the last windows stay open (and continue on the next owner of each lease) when workers stop.
fn closed_windows(rollups: &BTreeMap<RollupKey, RollupRow>) -> BTreeMap<RollupKey, RollupRow> {
    let last_start = rollups
        .keys()
        .map(|(_, _, start)| *start)
        .max()
        .unwrap_or(0);
    rollups
        .iter()
        .filter(|((_, _, start), _)| *start < last_start)
        .map(|(key, row)| (key.clone(), row.clone()))
        .collect()
}

/// Asserts that `union` holds exactly the closed windows of `expected`, and nothing of the
/// last minute.
fn assert_same_closed_windows(
    union: &BTreeMap<RollupKey, RollupRow>,
    expected: &BTreeMap<RollupKey, RollupRow>,
) {
    let expected = closed_windows(expected);
    let last_start = expected
        .keys()
        .map(|(_, _, start)| *start)
        .max()
        .unwrap_or(0)
        + 60_000;
    let open: Vec<&RollupKey> = union.keys().filter(|(_, _, s)| *s >= last_start).collect();
    assert!(open.is_empty(), "the last minute stays open: {open:?}");
    let differing: Vec<&RollupKey> = expected
        .iter()
        .filter(|(key, row)| union.get(*key) != Some(*row))
        .map(|(key, _)| key)
        .collect();
    assert!(
        differing.is_empty() && union.len() == expected.len(),
        "{} of {} closed windows differ from a single run ({} written), e.g. {:?}",
        differing.len(),
        expected.len(),
        union.len(),
        differing
            .first()
            .map(|key| (key, union.get(*key), expected.get(*key)))
    );
}

/// Worker processes sharing `stream` with their state handed over through a fresh bucket, each
/// in its own workspace (`extra`: more `[source.kinesis]` lines), started and waited for until
/// the leases are shared as `balanced` (sorted owner counts); also returns how long that took.
fn spawn_handoff_workers(
    aws: &Aws,
    stream: &str,
    table: &str,
    extra: &str,
    balanced: &[usize],
) -> (S3Bucket, Vec<Workspace>, Vec<Worker>, Duration) {
    let bucket = S3Bucket::create("handoff");
    let source = source_toml(stream, table, &format!("{extra}{}", handoff_toml(&bucket)));
    let workspaces: Vec<Workspace> = balanced.iter().map(|_| Workspace::new()).collect();
    let mut workers: Vec<Worker> = workspaces
        .iter()
        .enumerate()
        .map(|(i, ws)| {
            let config = kinesis_config(ws, &source, "");
            Worker::spawn(&config, ws.dir.path(), &format!("worker{i}"))
        })
        .collect();
    let mut refs: Vec<&mut Worker> = workers.iter_mut().collect();
    let took = wait_until(
        &format!("leases shared {balanced:?}"),
        Duration::from_secs(30),
        &mut refs,
        || sorted_owner_counts(&aws.leases(table)) == balanced,
    );
    (bucket, workspaces, workers, took)
}

/// The rollups of several workers' databases as one table: the highest version of each key. A
/// key two workers wrote with one version must carry identical values.
fn union_of_rollups(dbs: &[PathBuf]) -> BTreeMap<RollupKey, RollupRow> {
    let mut union: BTreeMap<RollupKey, RollupRow> = BTreeMap::new();
    for db in dbs {
        for (key, row) in read_rollups(db) {
            match union.get(&key) {
                Some(kept) if kept.version > row.version => {}
                Some(kept) if kept.version == row.version => {
                    assert_eq!(kept, &row, "{key:?}: one version, two different results");
                }
                _ => {
                    union.insert(key, row);
                }
            }
        }
    }
    without_versions(union)
}

/// Runs one worker (`name`) with `config` until every shard is checkpointed at `last`, then
/// stops it with SIGTERM; returns it (for its log) and its summary.
fn read_all(
    aws: &Aws,
    config: &Path,
    workspace: &Workspace,
    table: &str,
    last: &BTreeMap<String, String>,
    name: &str,
) -> (Worker, String) {
    let mut worker = Worker::spawn(config, workspace.dir.path(), name);
    wait_checkpointed(
        &format!("{name}: every shard checkpointed at its last record"),
        Duration::from_secs(120),
        &mut [&mut worker],
        aws,
        table,
        last,
    );
    let summary = worker.terminate();
    (worker, summary)
}

#[test]
fn one_worker_reads_every_record_of_four_shards_in_order() {
    let (records, expected) = reference(100, 500);
    assert_eq!(records.len(), 50_000);
    let aws = Aws::new();
    let stream = aws.create_stream(4);
    let last = aws.put(&stream, &records);
    assert_eq!(last.len(), 4, "every shard got records");

    let workspace = Workspace::new();
    let table = unique_name("leases");
    let config = kinesis_config(&workspace, &source_toml(&stream, &table, ""), EMIT_ON_STOP);
    let (_, summary) = read_all(&aws, &config, &workspace, &table, &last, "worker");

    assert_eq!(
        workspace.dead_letters(),
        Vec::<serde_json::Value>::new(),
        "no record late (out of order) or rejected\n{summary}"
    );
    assert_eq!(rollup_values(&workspace.db()), expected);
    // The source's counters, MillisBehindLatest included, are in the summary.
    let counters = summary
        .lines()
        .find(|line| line.trim_start().starts_with("kinesis "))
        .unwrap_or_else(|| panic!("no kinesis line in\n{summary}"));
    assert!(counters.contains("50000 records"), "{counters}");
    assert!(
        counters.contains("0 ms behind the tip"),
        "caught up at the end: {counters}"
    );
    let leases = aws.leases(&table);
    assert_eq!(leases.len(), 4);
    for (shard, attributes) in &leases {
        assert_eq!(attributes.get("checkpoint"), last.get(shard), "{shard}");
        assert_eq!(
            attributes.get("leaseOwner"),
            None,
            "released at shutdown: {shard}"
        );
        assert_eq!(attributes["checkpointSubSequenceNumber"], "0");
    }
}

#[test]
fn produce_puts_every_record_plain_and_as_kpl_aggregates() {
    let (records, expected) = reference(20, 300);
    let aws = Aws::new();
    for (variant, extra_args) in [("plain", vec![]), ("kpl", vec!["--aggregate", "20"])] {
        let workspace = Workspace::new();
        let input = workspace.path("input.ndjson");
        let lines: Vec<&[u8]> = records.iter().map(|(_, data)| data.as_slice()).collect();
        std::fs::write(&input, lines.join(&b'\n')).unwrap();
        let stream = unique_name("produced");
        let table = unique_name("leases");
        let config = kinesis_config(&workspace, &source_toml(&stream, &table, ""), EMIT_ON_STOP);
        let mut args = vec![
            "produce",
            "--config",
            config.to_str().unwrap(),
            "--input",
            input.to_str().unwrap(),
            "--create-stream",
            "2",
        ];
        args.extend(extra_args);
        let output = common::fleetstream(&args);
        let produced: serde_json::Value =
            serde_json::from_slice(&output.stdout).expect("a JSON summary");
        assert_eq!(produced["records"], records.len(), "{variant}: {produced}");
        let last: BTreeMap<String, String> =
            serde_json::from_value(produced["last_sequence_numbers"].clone()).unwrap();
        assert_eq!(last.len(), 2, "{variant}: both shards got records");
        let (_, summary) = read_all(&aws, &config, &workspace, &table, &last, variant);
        assert_eq!(
            decoded(&summary),
            records.len() as u64,
            "{variant}: {summary}"
        );
        assert_eq!(rollup_values(&workspace.db()), expected, "{variant}");
    }
}

#[test]
fn sigterm_hands_leases_to_another_worker_in_under_two_seconds() {
    let (records, expected) = reference(40, 300);
    let aws = Aws::new();
    let stream = aws.create_stream(4);
    let table = unique_name("leases");
    let bucket = S3Bucket::create("handoff");
    // Failover takes 10 s: only a release can move leases faster.
    let source = source_toml(
        &stream,
        &table,
        &format!(
            "failover_time = \"10s\"\ntake_interval = \"200ms\"{}",
            handoff_toml(&bucket)
        ),
    );
    let first_ws = Workspace::new();
    let first_config = kinesis_config(&first_ws, &source, "");
    let mut first = Worker::spawn(&first_config, first_ws.dir.path(), "first");
    wait_until(
        "the first worker holds all 4 leases",
        Duration::from_secs(60),
        &mut [&mut first],
        || sorted_owner_counts(&aws.leases(&table)) == [4],
    );
    let half = records.len() / 2;
    let mut last = aws.put(&stream, &records[..half]);
    wait_checkpointed(
        "the first half read",
        Duration::from_secs(60),
        &mut [&mut first],
        &aws,
        &table,
        &last,
    );
    let second_ws = Workspace::new();
    let second_config = kinesis_config(&second_ws, &source, "");
    let mut second = Worker::spawn(&second_config, second_ws.dir.path(), "second");
    wait_until(
        "balanced 2/2",
        Duration::from_secs(60),
        &mut [&mut first, &mut second],
        || sorted_owner_counts(&aws.leases(&table)) == [2, 2],
    );
    let started = std::time::Instant::now();
    first.terminate();
    let stopped = started.elapsed();
    let handed_over = wait_until(
        "the second worker holds all 4 leases",
        Duration::from_secs(9),
        &mut [&mut second],
        || sorted_owner_counts(&aws.leases(&table)) == [4],
    );
    assert!(
        handed_over < Duration::from_secs(2),
        "hand-off took {handed_over:?} after a {stopped:?} shutdown"
    );
    // The second worker continues the first one's open windows: together they wrote exactly
    // the rollups of one run.
    last.extend(aws.put(&stream, &records[half..]));
    wait_checkpointed(
        "the second half read",
        Duration::from_secs(60),
        &mut [&mut second],
        &aws,
        &table,
        &last,
    );
    second.terminate();
    let union = union_of_rollups(&[first_ws.db(), second_ws.db()]);
    assert_same_closed_windows(&union, &expected);
}

/// The shards the resharding tests close: shard 0 is split, shards 1 and 2 are merged.
const PARENTS: [&str; 3] = [
    "shardId-000000000000",
    "shardId-000000000001",
    "shardId-000000000002",
];

/// Puts a third of `records` into a 3-shard `stream`, splits shard 0, puts the next third, merges
/// shards 1 and 2, and puts the rest; returns the last sequence number written to each shard.
fn reshard_while_producing(
    aws: &Aws,
    stream: &str,
    records: &[(String, Vec<u8>)],
) -> BTreeMap<String, String> {
    let third = records.len() / 3;
    let mut last = aws.put(stream, &records[..third]);
    std::thread::sleep(Duration::from_millis(500));
    aws.split(stream, PARENTS[0]);
    last.extend(aws.put(stream, &records[third..2 * third]));
    std::thread::sleep(Duration::from_millis(500));
    aws.merge(stream, PARENTS[1], PARENTS[2]);
    last.extend(aws.put(stream, &records[2 * third..]));
    last
}

#[test]
fn split_and_merge_while_producing_lose_nothing_and_children_wait_for_their_parents() {
    let (records, expected) = reference(60, 600);
    let aws = Aws::new();
    let stream = aws.create_stream(3);
    let workspace = Workspace::new();
    let table = unique_name("leases");
    let source = source_toml(&stream, &table, "shard_sync_interval = \"1s\"");
    let config = kinesis_config(&workspace, &source, EMIT_ON_STOP);
    let mut worker = Worker::spawn(&config, workspace.dir.path(), "worker");

    let last = reshard_while_producing(&aws, &stream, &records);
    assert!(
        last.len() >= 5,
        "records landed in parents and children: {last:?}"
    );

    wait_until(
        "every shard read and the finished parents cleaned up",
        Duration::from_secs(120),
        &mut [&mut worker],
        || {
            let leases = aws.leases(&table);
            all_read(&leases, &last) && PARENTS.iter().all(|p| !leases.contains_key(*p))
        },
    );
    let leases = aws.leases(&table);
    assert_eq!(
        leases.keys().cloned().collect::<Vec<_>>(),
        [
            "shardId-000000000003",
            "shardId-000000000004",
            "shardId-000000000005"
        ]
    );
    assert_eq!(
        leases["shardId-000000000005"]["parentShardId"],
        "shardId-000000000001,shardId-000000000002"
    );
    let summary = worker.terminate();

    assert_eq!(
        workspace.dead_letters(),
        Vec::<serde_json::Value>::new(),
        "{summary}"
    );
    assert_eq!(rollup_values(&workspace.db()), expected);
    // `fleetstream leases` shows the lineage, the cleaned-up parents and caught-up children.
    let listing = common::fleetstream(&["leases", "--config", config.to_str().unwrap(), "--json"]);
    let rows: Vec<serde_json::Value> = String::from_utf8_lossy(&listing.stdout)
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect();
    assert_eq!(rows.len(), 6, "{rows:?}");
    for row in &rows {
        let shard = row["shard"].as_str().unwrap();
        if PARENTS.contains(&shard) {
            assert_eq!(row["state"], "closed", "{row}");
            assert_eq!(row["checkpoint"], "(read and cleaned up)", "{row}");
            assert!(!row["children"].as_array().unwrap().is_empty(), "{row}");
        } else {
            assert_eq!(row["state"], "open", "{row}");
            assert_eq!(row["checkpoint"], format!("{}/0", last[shard]), "{row}");
            assert_eq!(row["behind_ms"], 0, "{row}");
            assert!(row["owner"].is_null(), "released: {row}");
        }
    }
    let table_text = common::fleetstream(&["leases", "--config", config.to_str().unwrap()]);
    let table_text = String::from_utf8_lossy(&table_text.stdout).into_owned();
    assert!(
        table_text.contains("shardId-000000000001,shardId-000000000002"),
        "{table_text}"
    );
    eprintln!("{table_text}");
    // Per-vehicle order across parent → child: no child was taken before each of its parents
    // was read to its end and checkpointed SHARD_END (after its outputs were durable).
    let ended = logged(&[&worker], "SHARD_END checkpointed");
    let taken = logged(&[&worker], "lease taken");
    for (child, its_parents) in [
        ("shardId-000000000003", vec!["shardId-000000000000"]),
        ("shardId-000000000004", vec!["shardId-000000000000"]),
        (
            "shardId-000000000005",
            vec!["shardId-000000000001", "shardId-000000000002"],
        ),
    ] {
        let child_taken = taken
            .iter()
            .find(|line| line.fields["shard"] == child)
            .unwrap_or_else(|| panic!("{child} was taken"));
        for parent in its_parents {
            let parent_ended = ended
                .iter()
                .find(|line| line.fields["shard"] == parent)
                .unwrap_or_else(|| panic!("{parent} ended"));
            assert!(
                parent_ended.timestamp < child_taken.timestamp,
                "{child} taken at {} before {parent} ended at {}",
                child_taken.timestamp,
                parent_ended.timestamp
            );
        }
    }
}

#[test]
fn with_handoff_two_workers_resharding_while_producing_match_a_single_run() {
    let (records, expected) = reference(60, 600);
    let aws = Aws::new();
    let stream = aws.create_stream(3);
    let table = unique_name("leases");
    let (_bucket, workspaces, mut workers, _) = spawn_handoff_workers(
        &aws,
        &stream,
        &table,
        "shard_sync_interval = \"1s\"",
        &[1, 2],
    );
    let last = reshard_while_producing(&aws, &stream, &records);
    {
        let mut refs: Vec<&mut Worker> = workers.iter_mut().collect();
        wait_until(
            "every shard read and the finished parents cleaned up",
            Duration::from_secs(120),
            &mut refs,
            || {
                let leases = aws.leases(&table);
                all_read(&leases, &last) && PARENTS.iter().all(|p| !leases.contains_key(*p))
            },
        );
    }
    for worker in &mut workers {
        worker.terminate();
    }
    for workspace in &workspaces {
        assert_eq!(
            workspace.dead_letters(),
            Vec::<serde_json::Value>::new(),
            "no record late or rejected"
        );
    }
    // Each child continued the final state of every one of its parents, whichever worker had
    // read them: the two databases together hold exactly the rollups of one file run.
    let survivors: Vec<&Worker> = workers.iter().collect();
    let inherited = logged(&survivors, "child shard continues its parents' state");
    for (child, parent_count) in [
        ("shardId-000000000003", 1),
        ("shardId-000000000004", 1),
        ("shardId-000000000005", 2),
    ] {
        let line = inherited
            .iter()
            .find(|line| line.fields["shard"] == child)
            .unwrap_or_else(|| panic!("{child} inherited its parents' state: {inherited:?}"));
        assert_eq!(line.fields["inherited"], parent_count, "{child}");
    }
    let dbs: Vec<PathBuf> = workspaces.iter().map(Workspace::db).collect();
    assert_same_closed_windows(&union_of_rollups(&dbs), &expected);
    // `fleetstream leases` shows where each child's stored state stands: at its checkpoint.
    let config = workspaces[0].path("config.toml");
    let listing = common::fleetstream(&["leases", "--config", config.to_str().unwrap(), "--json"]);
    let rows: Vec<serde_json::Value> = String::from_utf8_lossy(&listing.stdout)
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect();
    let children: Vec<&serde_json::Value> = rows.iter().filter(|r| r["state"] == "open").collect();
    assert_eq!(children.len(), 3, "{rows:?}");
    for row in children {
        assert_eq!(row["handoff"]["position"], row["checkpoint"], "{row}");
        assert!(row["handoff"]["bytes"].as_i64().unwrap() > 0, "{row}");
    }
}

/// KPL-style aggregates of `per_aggregate` records grouped by the shard each vehicle hashes to.
fn aggregate_by_shard(
    records: &[(String, Vec<u8>)],
    shards: &[(String, String, String)],
    per_aggregate: usize,
) -> Vec<(String, Vec<u8>)> {
    let ranges: Vec<(u128, u128)> = shards
        .iter()
        .map(|(_, start, end)| (start.parse().unwrap(), end.parse().unwrap()))
        .collect();
    processor::sources::kinesis::kpl::aggregate_by_shard(records.to_vec(), &ranges, per_aggregate)
        .into_iter()
        .map(|(key, data, _)| (key, data))
        .collect()
}

#[test]
fn kpl_aggregates_are_unpacked_and_checkpointed_by_sub_sequence_number() {
    use processor::sources::kinesis::kpl::{aggregate, SubRecord, MAGIC};
    let (records, expected) = reference(40, 300);
    let aws = Aws::new();
    let stream = aws.create_stream(2);
    let shards = aws.open_shards(&stream);
    let half = records.len() / 2;
    // 7 user records per aggregate.
    let mut first = aggregate_by_shard(&records[..half], &shards, 7);
    let second = aggregate_by_shard(&records[half..], &shards, 7);
    // Two damaged aggregates (wrong MD5) are read as plain records, which are not JSON.
    let mut damaged = aggregate(&[SubRecord {
        partition_key: "veh-x".to_owned(),
        explicit_hash_key: None,
        data: b"{}".to_vec(),
    }]);
    let last_byte = damaged.len() - 1;
    damaged[last_byte] ^= 0xFF;
    first.insert(10, ("veh-x".to_owned(), damaged.clone()));
    first.insert(20, ("veh-y".to_owned(), damaged));
    // An aggregate whose second user record names a hash key in the other shard's range: it
    // is set aside (it would be a duplicate of the first record otherwise).
    let (other_start, _) = (shards[1].1.clone(), ());
    let (key, data) = records[0].clone();
    let marker = String::from_utf8(data.clone())
        .unwrap()
        .replace(&format!("\"{key}\""), "\"veh-stray\"");
    assert!(marker.contains("veh-stray"));
    let stray = aggregate(&[
        SubRecord {
            partition_key: key.clone(),
            explicit_hash_key: Some("0".to_owned()),
            data: marker.into_bytes(),
        },
        SubRecord {
            partition_key: key,
            explicit_hash_key: Some(other_start),
            data,
        },
    ]);
    first.insert(30, ("stray".to_owned(), stray));
    assert!(first.iter().all(|(_, data)| data.starts_with(&MAGIC)));

    let last = aws.put(&stream, &first);
    let workspace = Workspace::new();
    let table = unique_name("leases");
    let config = kinesis_config(&workspace, &source_toml(&stream, &table, ""), EMIT_ON_STOP);
    read_all(&aws, &config, &workspace, &table, &last, "first");
    let leases = aws.leases(&table);
    for attributes in leases.values() {
        // The last record of each shard is an aggregate of several user records (a
        // remainder group has fewer than 7): the checkpoint names its last sub-record.
        let sub: u64 = attributes["checkpointSubSequenceNumber"].parse().unwrap();
        assert!((1..=6).contains(&sub), "{attributes:?}");
    }

    let last = aws.put(&stream, &second);
    read_all(&aws, &config, &workspace, &table, &last, "second");

    let dead = workspace.dead_letters();
    let reasons: Vec<&str> = dead.iter().map(|d| d["reason"].as_str().unwrap()).collect();
    assert_eq!(dead.len(), 3, "{reasons:?}");
    assert_eq!(
        reasons
            .iter()
            .filter(|r| r.contains("outside the hash-key range"))
            .count(),
        1,
        "{reasons:?}"
    );
    assert!(
        dead.iter()
            .all(|d| d["position"].as_str().unwrap().contains(":4")),
        "{dead:?}"
    );
    // The stray aggregate's in-range record (a test marker vehicle) is the only extra output.
    let mut actual = rollup_values(&workspace.db());
    actual.retain(|(vehicle, _, _), _| vehicle != "veh-stray");
    assert_eq!(
        actual, expected,
        "no sub-record lost or read twice across the restart"
    );
}

/// An AWS JSON-protocol error answer for the fault proxy.
fn aws_error(status: u16, code: &str, content_type: &str) -> serde_json::Value {
    serde_json::json!({
        "status": status,
        "body": serde_json::json!({"__type": code, "message": format!("injected {code}")}).to_string(),
        "content_type": content_type,
    })
}

#[test]
fn throttling_server_errors_and_expired_iterators_lose_nothing() {
    use common::emulators::{moto_url, FaultProxy};
    use common::kinesis::kinesalite_url;
    let (records, expected) = reference(40, 300);
    let aws = Aws::new();
    let stream = aws.create_stream(2);
    let last = aws.put(&stream, &records);

    let kinesis_json = "application/x-amz-json-1.1";
    let dynamodb_json = "application/x-amz-json-1.0";
    let kinesis_proxy = FaultProxy::start(&kinesalite_url());
    kinesis_proxy.set_rules(serde_json::json!([
        {"operation": "GetRecords", "skip": 1, "times": 4,
         "respond": aws_error(400, "ProvisionedThroughputExceededException", kinesis_json)},
        {"operation": "GetRecords", "skip": 3, "times": 2,
         "respond": aws_error(500, "InternalFailure", kinesis_json)},
        {"operation": "GetRecords", "skip": 4, "times": 2,
         "respond": aws_error(400, "ExpiredIteratorException", kinesis_json)},
        {"operation": "GetShardIterator", "skip": 1, "times": 1,
         "respond": aws_error(503, "ServiceUnavailable", kinesis_json)},
    ]));
    let dynamodb_proxy = FaultProxy::start(&moto_url());
    dynamodb_proxy.set_rules(serde_json::json!([
        {"operation": "UpdateItem", "skip": 3, "times": 3,
         "respond": aws_error(400, "ProvisionedThroughputExceededException", dynamodb_json)},
        {"operation": "Scan", "skip": 2, "times": 1,
         "respond": aws_error(500, "InternalServerError", dynamodb_json)},
    ]));

    let workspace = Workspace::new();
    let table = unique_name("leases");
    let source = source_toml(
        &stream,
        &table,
        &format!(
            "endpoint_url = \"{}\"\ndynamodb_endpoint_url = \"{}\"\nmax_records = 500",
            kinesis_proxy.url(),
            dynamodb_proxy.url()
        ),
    );
    let config = kinesis_config(&workspace, &source, EMIT_ON_STOP);
    let (worker, _) = read_all(&aws, &config, &workspace, &table, &last, "worker");

    let injected = |proxy: &FaultProxy, operation: &str| {
        proxy.stats()["injected"][operation].as_u64().unwrap_or(0)
    };
    assert_eq!(injected(&kinesis_proxy, "GetRecords"), 8);
    assert_eq!(injected(&kinesis_proxy, "GetShardIterator"), 1);
    assert_eq!(injected(&dynamodb_proxy, "UpdateItem"), 3);
    assert_eq!(injected(&dynamodb_proxy, "Scan"), 1);
    let closed = logged(&[&worker], "Kinesis source closed");
    let metrics = closed
        .last()
        .expect("the source logged its counters")
        .fields["metrics"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(metrics.contains("expired_iterators: 2"), "{metrics}");
    assert!(metrics.contains("throttled: 7"), "{metrics}");
    assert_eq!(workspace.dead_letters(), Vec::<serde_json::Value>::new());
    assert_eq!(rollup_values(&workspace.db()), expected);
}

/// Record ids (`shard:sequence`) of the `fields_rejected` dead letters in a workspace (one per
/// record decoded), with how often each occurs.
fn dead_letter_ids(workspace: &Workspace) -> BTreeMap<String, usize> {
    let mut ids = BTreeMap::new();
    for letter in workspace.dead_letters() {
        if letter["kind"] == "fields_rejected" {
            *ids.entry(letter["position"].as_str().unwrap().to_owned())
                .or_insert(0) += 1;
        }
    }
    ids
}

#[test]
fn three_worker_processes_balance_and_take_over_from_a_killed_one() {
    let (records, expected_rollups) = reference(80, 400);
    // Every record carries one field beyond decode.max_abs_signal_value (1e12), so every record
    // read leaves exactly one dead letter naming its shard and sequence number: a record-level
    // trace of who read what.
    let records: Records = records
        .into_iter()
        .map(|(key, data)| {
            let text = String::from_utf8(data).unwrap();
            assert!(text.contains("\"signals\":{"));
            let text = text.replacen("\"signals\":{", "\"signals\":{\"marker\":1e15,", 1);
            (key, text.into_bytes())
        })
        .collect();
    let aws = Aws::new();
    let stream = aws.create_stream(8);
    let table = unique_name("leases");
    let half = records.len() / 2;
    let (_bucket, workspaces, mut workers, took) =
        spawn_handoff_workers(&aws, &stream, &table, "failover_time = \"3s\"", &[2, 3, 3]);
    eprintln!("balanced in {took:?}");
    // Balanced means stable: no lease changes hands for a while (no ping-pong).
    let owners = |leases: &BTreeMap<String, BTreeMap<String, String>>| -> BTreeMap<String, String> {
        leases
            .iter()
            .map(|(k, v)| (k.clone(), v.get("leaseOwner").cloned().unwrap_or_default()))
            .collect()
    };
    let settled = owners(&aws.leases(&table));
    std::thread::sleep(Duration::from_secs(2));
    // Records flow only once the leases have settled: balancing steals leases, and a stolen
    // shard is legitimately re-read from its checkpoint, which would blur the check below.
    let mut written = aws.put_all(&stream, &records[..half]);
    let mut last: BTreeMap<String, String> = written.iter().cloned().collect();
    {
        let mut refs: Vec<&mut Worker> = workers.iter_mut().collect();
        wait_checkpointed(
            "the first half read",
            Duration::from_secs(60),
            &mut refs,
            &aws,
            &table,
            &last,
        );
    }
    assert_eq!(
        owners(&aws.leases(&table)),
        settled,
        "leases moved after balancing"
    );

    // kill -9 a worker holding three leases while the second half is being written.
    let producer = {
        let stream = stream.clone();
        let rest = records[half..].to_vec();
        std::thread::spawn(move || Aws::new().put_all(&stream, &rest))
    };
    std::thread::sleep(Duration::from_millis(700));
    let victim = workers
        .iter()
        .position(|w| {
            let pid = format!(":{}:", w.child.id());
            settled
                .values()
                .filter(|owner| owner.contains(&pid))
                .count()
                == 3
        })
        .expect("a worker with three leases");
    let victim_pid = format!(":{}:", workers[victim].child.id());
    let victim_workspace = victim;
    let mut dead = workers.remove(victim);
    dead.signal("-KILL");
    let _ = dead.child.wait();
    let killed_at = std::time::Instant::now();
    let at_death = aws.leases(&table);
    let orphans: BTreeMap<String, String> = at_death
        .iter()
        .filter(|(_, a)| a.get("leaseOwner").is_some_and(|o| o.contains(&victim_pid)))
        .map(|(k, a)| (k.clone(), a["checkpoint"].clone()))
        .collect();
    assert_eq!(orphans.len(), 3);

    let more = producer.join().expect("the producer");
    last.extend(more.iter().cloned());
    written.extend(more);
    {
        let mut refs: Vec<&mut Worker> = workers.iter_mut().collect();
        wait_until(
            "the survivors hold 4 leases each",
            Duration::from_secs(30),
            &mut refs,
            || sorted_owner_counts(&aws.leases(&table)) == [4, 4],
        );
    }
    let taken_after = killed_at.elapsed();
    // Renewals come every second (a third of 3 s), so the last one was at most ~1 s before
    // the kill: nobody may take the leases before they expire.
    assert!(
        taken_after >= Duration::from_millis(1_900),
        "leases taken {taken_after:?} after the kill, before they expired"
    );
    let survivors: Vec<&Worker> = workers.iter().collect();
    for (shard, checkpoint) in &orphans {
        // The taker logs the take right after its write to the lease table.
        let takes = logged_soon(&survivors, "lease taken", |line| {
            line.fields["shard"] == shard.as_str()
                && line.fields["previous"]
                    .as_str()
                    .is_some_and(|p| p.contains(&victim_pid))
        });
        assert_eq!(
            takes.len(),
            1,
            "{shard} taken once from the dead worker ({victim_pid}): {:?}",
            logged(&survivors, "lease taken")
                .into_iter()
                .filter(|line| line.fields["shard"] == shard.as_str())
                .collect::<Vec<_>>()
        );
        assert_eq!(
            takes[0].fields["checkpoint"],
            checkpoint.as_str(),
            "{shard} resumed from the dead worker's last checkpoint"
        );
        // The taker logs the hand-off after it took the lease and read the stored state from
        // S3, a moment after the lease table shows the take.
        let continued = logged_soon(
            &survivors,
            "continuing the shard's handed-over state",
            |line| line.fields["shard"] == shard.as_str(),
        )
        .len();
        assert!(
            continued >= 1,
            "{shard}: the taker continued the dead worker's stored state; logs:\n{}",
            workers
                .iter()
                .chain([&dead])
                .flat_map(|w| w.log_text().lines().map(str::to_owned).collect::<Vec<_>>())
                .filter(|l| l.contains(shard.as_str()) && !l.contains("\"DEBUG\""))
                .collect::<Vec<_>>()
                .join("\n")
        );
    }
    {
        let mut refs: Vec<&mut Worker> = workers.iter_mut().collect();
        wait_checkpointed(
            "every shard read to its last record",
            Duration::from_secs(120),
            &mut refs,
            &aws,
            &table,
            &last,
        );
    }
    for worker in &mut workers {
        worker.terminate();
    }
    let leases = aws.leases(&table);
    assert!(
        leases.values().all(|a| !a.contains_key("leaseOwner")),
        "all released"
    );

    // Every record was read and its outputs committed by some worker (none lost). A record read
    // twice was read by the dead worker after its shard's last checkpoint and again by the
    // worker that took the shard over; or, on a loaded machine, a survivor missed renewals for
    // the failover time and the other survivor took its lease (as the KCL does), re-reading
    // past the checkpoint that take resumed from. Nothing else is read twice.
    let per_worker: Vec<BTreeMap<String, usize>> = workspaces.iter().map(dead_letter_ids).collect();
    let mut seen: BTreeMap<String, usize> = BTreeMap::new();
    for ids in &per_worker {
        for (id, n) in ids {
            *seen.entry(id.clone()).or_insert(0) += n;
        }
    }
    let expected: std::collections::BTreeSet<String> = written
        .iter()
        .map(|(shard, seq)| format!("{shard}:{seq}"))
        .collect();
    let missing: Vec<&String> = expected
        .iter()
        .filter(|id| !seen.contains_key(*id))
        .collect();
    assert!(
        missing.is_empty(),
        "{} records never read, e.g. {:?}",
        missing.len(),
        &missing[..missing.len().min(3)]
    );
    assert_eq!(
        seen.len(),
        expected.len(),
        "nothing read that was not written"
    );
    let twice: Vec<&String> = seen
        .iter()
        .filter(|(_, n)| **n > 1)
        .map(|(id, _)| id)
        .collect();
    let survivors: Vec<&Worker> = workers.iter().collect();
    let takes = logged(&survivors, "lease taken");
    let taken_from = |line: &LogLine| {
        line.fields["previous"]
            .as_str()
            .unwrap_or_default()
            .to_owned()
    };
    // Takes between survivors count only from the first take of a dead worker's lease on: the
    // balancing before the records flowed re-read nothing.
    let first_orphan_take = takes
        .iter()
        .filter(|line| taken_from(line).contains(&victim_pid))
        .map(|line| line.timestamp.clone())
        .min()
        .expect("the dead worker's leases were taken");
    // Sequence numbers are 56-digit decimals: longer is larger, then digit by digit.
    let after = |seq: &str, checkpoint: &str| (seq.len(), seq) > (checkpoint.len(), checkpoint);
    for id in &twice {
        let (shard, seq) = id.split_once(':').unwrap();
        if per_worker[victim_workspace].contains_key(*id) {
            let checkpoint = orphans.get(shard).unwrap_or_else(|| {
                panic!("{id} read by the dead worker on a shard it did not hold")
            });
            assert!(
                after(seq, checkpoint),
                "{id} read twice but at or before the last checkpoint {checkpoint}"
            );
            continue;
        }
        let takes_of_shard: Vec<&LogLine> = takes
            .iter()
            .filter(|line| line.fields["shard"] == shard)
            .collect();
        let retaken_past = takes_of_shard.iter().any(|line| {
            let previous = taken_from(line);
            let from_survivor = previous.starts_with("Some") && !previous.contains(&victim_pid);
            from_survivor
                && line.timestamp >= first_orphan_take
                && after(seq, line.fields["checkpoint"].as_str().unwrap_or_default())
        });
        assert!(
            retaken_past,
            "{id}: a duplicate that neither the dead worker's read nor a later change of owner explains; takes of the shard: {takes_of_shard:?}"
        );
    }
    eprintln!(
        "{} records, {} read twice (after the dead worker's last checkpoints)",
        expected.len(),
        twice.len()
    );

    // The shards' state moved with their leases, so the three databases together hold exactly
    // the rollups of one uninterrupted run.
    let dbs: Vec<PathBuf> = workspaces.iter().map(Workspace::db).collect();
    assert_same_closed_windows(&union_of_rollups(&dbs), &expected_rollups);
}

/// Records decoded, from a run summary.
fn decoded(summary: &str) -> u64 {
    summary
        .lines()
        .find_map(|line| line.trim().strip_prefix("records"))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no records line in {summary}"))
}

#[test]
fn latest_and_at_timestamp_start_where_they_say() {
    let (records, _) = reference(10, 100);
    let (before, after) = records.split_at(records.len() / 2);
    let aws = Aws::new();

    // LATEST: records put before the lease is first read are skipped.
    let stream = aws.create_stream(1);
    aws.put(&stream, before);
    let table = unique_name("leases");
    let workspace = Workspace::new();
    let source = source_toml(&stream, &table, "initial_position = \"latest\"");
    let config = kinesis_config(&workspace, &source, "");
    let mut worker = Worker::spawn(&config, workspace.dir.path(), "latest");
    let log = worker.log.clone();
    wait_until(
        "the LATEST lease is read",
        Duration::from_secs(60),
        &mut [&mut worker],
        || {
            let text = std::fs::read_to_string(&log).unwrap_or_default();
            !common::kinesis::log_lines(&text, "Kinesis source open").is_empty()
        },
    );
    // The reader asks for its LATEST iterator right after taking the lease.
    std::thread::sleep(Duration::from_secs(1));
    let last = aws.put(&stream, after);
    wait_checkpointed(
        "the new records checkpointed",
        Duration::from_secs(60),
        &mut [&mut worker],
        &aws,
        &table,
        &last,
    );
    let summary = worker.terminate();
    assert_eq!(decoded(&summary), after.len() as u64, "{summary}");

    // AT_TIMESTAMP: only records that arrived from that time on.
    let stream = aws.create_stream(1);
    aws.put(&stream, before);
    std::thread::sleep(Duration::from_millis(1500));
    let from = time::OffsetDateTime::now_utc() - time::Duration::milliseconds(500);
    std::thread::sleep(Duration::from_millis(500));
    let last = aws.put(&stream, after);
    let table = unique_name("leases");
    let workspace = Workspace::new();
    let source = source_toml(
        &stream,
        &table,
        &format!(
            "initial_position = \"at_timestamp\"\ninitial_timestamp = \"{}\"",
            from.format(&time::format_description::well_known::Rfc3339)
                .unwrap()
        ),
    );
    let config = kinesis_config(&workspace, &source, "");
    let (_, summary) = read_all(&aws, &config, &workspace, &table, &last, "at_timestamp");
    assert_eq!(decoded(&summary), after.len() as u64, "{summary}");
}

#[test]
fn checkpoints_follow_the_record_count_when_the_interval_is_long() {
    let (records, _) = reference(10, 500);
    let aws = Aws::new();
    let stream = aws.create_stream(1);
    let last = aws.put(&stream, &records);
    let table = unique_name("leases");
    let workspace = Workspace::new();
    // An hour between time-based writes: only the record count can move the checkpoint after
    // the first write.
    let source = source_toml(
        &stream,
        &table,
        "checkpoint_interval = \"1h\"\ncheckpoint_records = 500\nmax_records = 500",
    );
    // A rollup across vehicles: the start-up warning about several tasks must appear.
    let fleet_rollup = "[[rollups]]\nname = \"fleet_speed\"\nwindow = { kind = \"tumbling\", size = \"1m\" }\ngroup_by = [\"fleet\"]\nsignals = [\"speed_kmh\"]\n";
    let config = kinesis_config(&workspace, &source, fleet_rollup);
    let (worker, _) = read_all(&aws, &config, &workspace, &table, &last, "worker");
    assert!(
        worker
            .log_text()
            .contains("this rollup groups several vehicles"),
        "the fleet rollup is warned about"
    );
    let closed = logged(&[&worker], "Kinesis source closed");
    let metrics = closed.last().unwrap().fields["metrics"]
        .as_str()
        .unwrap()
        .to_owned();
    let writes: u64 = metrics
        .split("checkpoints_written: ")
        .nth(1)
        .and_then(|rest| rest.split(|c: char| !c.is_ascii_digit()).next())
        .and_then(|n| n.parse().ok())
        .unwrap();
    assert!(writes >= 5, "about one write per 500 records: {metrics}");
}

#[test]
fn shutdown_does_not_hang_when_the_lease_table_is_gone() {
    use common::emulators::{moto_url, FaultProxy};
    let (records, _) = reference(10, 100);
    let aws = Aws::new();
    let stream = aws.create_stream(2);
    let last = aws.put(&stream, &records);
    let mut dynamodb_proxy = FaultProxy::start(&moto_url());
    let table = unique_name("leases");
    let workspace = Workspace::new();
    let source = source_toml(
        &stream,
        &table,
        &format!(
            "dynamodb_endpoint_url = \"{}\"\nrequest_timeout = \"1s\"",
            dynamodb_proxy.url()
        ),
    );
    let config = kinesis_config(&workspace, &source, "");
    let mut worker = Worker::spawn(&config, workspace.dir.path(), "worker");
    wait_checkpointed(
        "every shard checkpointed",
        Duration::from_secs(60),
        &mut [&mut worker],
        &aws,
        &table,
        &last,
    );
    // The lease table becomes unreachable: renewals start failing and retrying.
    dynamodb_proxy.stop();
    std::thread::sleep(Duration::from_secs(1));
    let started = std::time::Instant::now();
    let summary = worker.terminate();
    let took = started.elapsed();
    assert!(
        took < Duration::from_secs(15),
        "shutdown took {took:?} (the release is bounded to 5 s)"
    );
    assert!(summary.contains("shutdown requested"), "{summary}");
    assert!(
        worker
            .log_text()
            .contains("other workers take them after failover_time"),
        "the failed release is reported"
    );
}
