//! The Timestream sink against moto server (started by scripts/test), through the
//! fault-injecting proxy for what moto does not do: Timestream's 100-record limit, throttling,
//! 5xx, and `RejectedRecords` (version conflicts, retention, limits). moto stores the raw
//! records it receives, so the tests read them back from `/moto-api/data.json` and resolve
//! versions as Timestream would (the highest version per measure name, dimensions and time).

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod common;

use std::collections::BTreeMap;

use common::emulators::{moto_url, run_through_outage, unique_name, FaultProxy};
use common::{checkpoints, read_rollups, run_summary, simulate, spawn_run, Workspace};
use serde_json::{json, Value};

/// A stored record's key: measure name, sorted dimensions, time.
type RecordKey = (String, Vec<(String, String)>, i64);

fn timestream_section(
    workspace: &Workspace,
    endpoint: &str,
    database: &str,
    magnetic: bool,
) -> String {
    format!(
        r#"
[aws]
region = "us-east-1"

[sinks.timestream]
enabled = true
endpoint_url = "{endpoint}"
database = "{database}"
table = "rollups"
concurrency = 3
max_buffered_records = 450
magnetic_store_writes = {magnetic}
undelivered_path = "{undelivered}"
retry = {{ initial_backoff = "20ms", max_backoff = "200ms", budget = "2m" }}
"#,
        undelivered = workspace.path("undelivered.ndjson").display()
    )
}

/// Every raw record moto stored in `database`.rollups.
fn stored_records(database: &str) -> Vec<Value> {
    let text = reqwest::blocking::get(format!("{}/moto-api/data.json", moto_url()))
        .and_then(|r| r.text())
        .unwrap();
    let data: Value = serde_json::from_str(&text).unwrap();
    data["timestreamwrite"]["TimestreamTable"]
        .as_array()
        .unwrap()
        .iter()
        .find(|table| table["db_name"] == database && table["name"] == "rollups")
        .map(|table| table["records"].as_array().unwrap().clone())
        .unwrap_or_default()
}

fn key_of(record: &Value) -> RecordKey {
    let mut dims: Vec<(String, String)> = record["Dimensions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| {
            (
                d["Name"].as_str().unwrap().to_owned(),
                d["Value"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    dims.sort();
    (
        record["MeasureName"].as_str().unwrap().to_owned(),
        dims,
        record["Time"].as_str().unwrap().parse().unwrap(),
    )
}

/// The table as Timestream would hold it: the highest version of each key.
fn resolved(records: &[Value]) -> BTreeMap<RecordKey, Value> {
    let mut table: BTreeMap<RecordKey, Value> = BTreeMap::new();
    for record in records {
        let key = key_of(record);
        let newer = table
            .get(&key)
            .is_none_or(|old| old["Version"].as_i64() < record["Version"].as_i64());
        if newer {
            table.insert(key, record.clone());
        }
    }
    table
}

fn measure(record: &Value, name: &str) -> Option<f64> {
    record["MeasureValues"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["Name"] == name)
        .map(|m| m["Value"].as_str().unwrap().parse().unwrap())
}

fn dimension<'a>(key: &'a RecordKey, name: &str) -> Option<&'a str> {
    key.1
        .iter()
        .find(|(n, _)| n == name)
        .map(|(_, v)| v.as_str())
}

/// Asserts every SQLite rollup is in the table with the same values, skipping `except` vehicle.
fn assert_rollups_stored(workspace: &Workspace, database: &str, except: Option<&str>) {
    let table = resolved(&stored_records(database));
    let mut found = BTreeMap::new();
    for (key, record) in &table {
        if key.0 == "signal_1m" {
            let vehicle = dimension(key, "vehicle").unwrap().to_owned();
            let signal = dimension(key, "signal").unwrap().to_owned();
            found.insert((vehicle, signal, key.2), record.clone());
        }
    }
    let expected = read_rollups(&workspace.db());
    let mut checked = 0;
    for (key, row) in &expected {
        if Some(key.0.as_str()) == except {
            continue;
        }
        let record = found
            .get(key)
            .unwrap_or_else(|| panic!("{key:?} not in Timestream"));
        assert_eq!(measure(record, "count"), Some(row.count as f64), "{key:?}");
        assert_eq!(measure(record, "min"), Some(row.min), "{key:?}");
        assert_eq!(measure(record, "max"), Some(row.max), "{key:?}");
        assert_eq!(measure(record, "mean"), Some(row.mean), "{key:?}");
        checked += 1;
    }
    assert!(checked > 100, "{checked} rollups checked");
}

#[test]
fn rollups_arrive_in_batches_of_at_most_100_and_a_replay_is_idempotent() {
    let workspace = Workspace::new();
    let input = workspace.path("fleet.ndjson");
    simulate(&input, 12, 600, 0.02, 5);
    let database = unique_name("fleet");
    let proxy = FaultProxy::start(&moto_url());
    let config = workspace.config(
        &input,
        &timestream_section(&workspace, &proxy.url(), &database, true),
    );
    let summary = run_summary(&config, &["--create-tables"]);
    assert!(summary.contains("0 undelivered"), "{summary}");
    assert!(
        proxy.stats()["injected"].get("WriteRecords>100").is_none(),
        "no call over 100 records"
    );
    assert_rollups_stored(&workspace, &database, None);
    let alerts = resolved(&stored_records(&database))
        .keys()
        .filter(|key| key.0 == "alert")
        .count();
    assert!(alerts > 0, "alerts are written too");

    // A replay sends identical records with identical versions: Timestream keeps the table
    // as it was (an identical record is accepted and changes nothing).
    let first: std::collections::BTreeSet<String> = stored_records(&database)
        .iter()
        .map(Value::to_string)
        .collect();
    run_summary(&config, &["--fresh"]);
    let second: std::collections::BTreeSet<String> = stored_records(&database)
        .iter()
        .map(Value::to_string)
        .collect();
    assert_eq!(
        first, second,
        "the replay wrote only records identical to stored ones"
    );
}

#[test]
fn throttling_5xx_and_rejected_records_are_retried_or_logged_by_reason() {
    let workspace = Workspace::new();
    let input = workspace.path("fleet.ndjson");
    simulate(&input, 10, 600, 0.0, 4);
    let database = unique_name("faults");
    let proxy = FaultProxy::start(&moto_url());
    let throttle = json!({"status": 400, "body": json!({
        "__type": "com.amazonaws.timestream.v20181101#ThrottlingException",
        "message": "Rate exceeded"}).to_string()});
    let internal = json!({"status": 500, "body": json!({
        "__type": "com.amazonaws.timestream.v20181101#InternalServerException",
        "message": "Internal error"}).to_string()});
    proxy.set_rules(json!([
        {"operation": "WriteRecords", "times": 3, "respond": throttle},
        {"operation": "WriteRecords", "times": 2, "respond": internal},
        // An earlier writer left version 5: final rollups must win with version 6.
        {"operation": "WriteRecords", "times": 1, "timestream_reject": {
            "dimension_value": "veh-000001", "existing_version": 5,
            "reason": "A record with the same dimensions, time and measure name already exists with a higher version."}},
        // Older than the memory store: the table accepts magnetic writes, so it is re-sent.
        {"operation": "WriteRecords", "times": 1, "timestream_reject": {
            "dimension_value": "veh-000002",
            "reason": "The record timestamp is outside the time range of the data ingestion window (memory store retention)."}},
        // Over a limit: never accepted, so logged with Timestream's reason.
        {"operation": "WriteRecords", "times": -1, "timestream_reject": {
            "dimension_value": "veh-000003",
            "reason": "Measure value exceeds the maximum allowed size."}},
    ]));
    let config = workspace.config(
        &input,
        &timestream_section(&workspace, &proxy.url(), &database, true),
    );
    let summary = run_summary(&config, &["--create-tables"]);
    assert!(summary.contains("\"version_conflict\""), "{summary}");
    assert!(summary.contains("\"outside_retention\""), "{summary}");
    assert!(summary.contains("\"limit_or_value\""), "{summary}");
    assert!(!summary.contains(" 0 retried"), "{summary}");

    let table = resolved(&stored_records(&database));
    let bumped = table
        .iter()
        .filter(|(key, record)| {
            dimension(key, "vehicle") == Some("veh-000001") && record["Version"] == 6
        })
        .count();
    assert!(
        bumped > 0,
        "the conflicting records were re-sent with ExistingVersion + 1"
    );
    assert_rollups_stored(&workspace, &database, Some("veh-000003"));

    let logged = workspace.undelivered();
    assert!(!logged.is_empty());
    for entry in &logged {
        assert_eq!(entry["sink"], "timestream");
        assert_eq!(
            entry["record"]["dimensions"]["vehicle"], "veh-000003",
            "{entry}"
        );
        assert!(
            entry["reason"]
                .as_str()
                .unwrap()
                .contains("exceeds the maximum"),
            "{entry}"
        );
    }
    let veh3_outputs = table
        .keys()
        .filter(|key| dimension(key, "vehicle") == Some("veh-000003"))
        .count();
    assert_eq!(veh3_outputs, 0, "every veh-000003 record was rejected");
}

#[test]
fn records_outside_retention_are_logged_when_the_table_refuses_magnetic_writes() {
    let workspace = Workspace::new();
    let input = workspace.path("fleet.ndjson");
    simulate(&input, 4, 300, 0.0, 6);
    let database = unique_name("retention");
    let proxy = FaultProxy::start(&moto_url());
    proxy.set_rules(json!([
        {"operation": "WriteRecords", "times": -1, "timestream_reject": {
            "dimension_value": "veh-000000",
            "reason": "The record timestamp is outside the time range of the memory store retention."}},
    ]));
    let config = workspace.config(
        &input,
        &timestream_section(&workspace, &proxy.url(), &database, false),
    );
    run_summary(&config, &["--create-tables"]);
    let logged = workspace.undelivered();
    assert!(!logged.is_empty());
    for entry in &logged {
        assert!(
            entry["reason"]
                .as_str()
                .unwrap()
                .contains("does not accept magnetic-store writes"),
            "{entry}"
        );
    }
    assert_rollups_stored(&workspace, &database, Some("veh-000000"));
}

#[test]
fn an_outage_loses_nothing_and_commits_no_position_early() {
    let workspace = Workspace::new();
    let input = workspace.path("fleet.ndjson");
    simulate(&input, 10, 900, 0.0, 22);
    let database = unique_name("outage");
    let mut proxy = FaultProxy::start(&moto_url());
    let section = timestream_section(&workspace, &proxy.url(), &database, true);
    // The tables first (a run over an empty file), then the service goes away.
    let empty = workspace.path("empty.ndjson");
    std::fs::write(&empty, "").unwrap();
    run_summary(&workspace.config(&empty, &section), &["--create-tables"]);
    let config = workspace.config(&input, &section);
    run_through_outage(&workspace, &config, &["--fresh"], &mut proxy);
    assert_rollups_stored(&workspace, &database, None);
}

#[test]
fn a_missing_table_stops_the_run_with_a_clear_message() {
    let workspace = Workspace::new();
    let input = workspace.path("fleet.ndjson");
    simulate(&input, 2, 120, 0.0, 1);
    let database = unique_name("missing");
    let section = timestream_section(&workspace, &moto_url(), &database, true);
    let config = workspace.config(&input, &section);
    let output = spawn_run(&config, &[]).wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains(&database) && stderr.contains("ResourceNotFound"),
        "{stderr}"
    );
    assert_eq!(
        checkpoints(&workspace.path("state.db")),
        0,
        "nothing committed"
    );
}
