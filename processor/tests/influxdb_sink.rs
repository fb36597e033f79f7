//! The InfluxDB line-protocol sink against a real InfluxDB server (Debian's influxdb, started
//! by scripts/test): every rollup read back with InfluxQL equals the SQLite output, rejected
//! lines are isolated and logged with the server's reason, an outage loses nothing and commits
//! no position early, and a replay leaves the same data.

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod common;

use std::collections::BTreeMap;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::emulators::{influxdb_url, unique_name, FaultProxy};
use common::{checkpoints, fleetstream, read_rollups, simulate, RollupKey, Workspace, BIN};

/// `[sinks.influxdb]` writing to `url`/`database`, logging undelivered lines in the workspace.
fn influx_section(workspace: &Workspace, url: &str, database: &str) -> String {
    format!(
        r#"
[sinks.influxdb]
enabled = true
url = "{url}"
database = "{database}"
batch_lines = 700
undelivered_path = "{undelivered}"
retry = {{ initial_backoff = "50ms", max_backoff = "500ms", budget = "2m" }}
"#,
        undelivered = workspace.path("undelivered.ndjson").display()
    )
}

/// One InfluxQL series: its tags and rows.
type Series = (BTreeMap<String, String>, Vec<Vec<serde_json::Value>>);

/// InfluxQL `query` on `database`, returning every series as (tags, rows).
fn query(database: &str, query: &str) -> Vec<Series> {
    let url = reqwest::Url::parse_with_params(
        &format!("{}/query", influxdb_url()),
        [("db", database), ("q", query), ("epoch", "ms")],
    )
    .unwrap();
    let text = reqwest::blocking::get(url)
        .and_then(|r| r.text())
        .expect("query");
    let value: serde_json::Value = serde_json::from_str(&text).expect("query JSON");
    let result = &value["results"][0];
    assert!(result.get("error").is_none(), "{text}");
    let mut out = Vec::new();
    for series in result["series"].as_array().cloned().unwrap_or_default() {
        let tags = series["tags"]
            .as_object()
            .map(|t| {
                t.iter()
                    .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_owned()))
                    .collect()
            })
            .unwrap_or_default();
        let rows = series["values"]
            .as_array()
            .unwrap()
            .iter()
            .map(|row| row.as_array().unwrap().clone())
            .collect();
        out.push((tags, rows));
    }
    out
}

/// (count, min, max, mean, version) of every `signal_1m` point.
fn influx_rollups(database: &str) -> BTreeMap<RollupKey, (i64, f64, f64, f64, i64)> {
    let mut rollups = BTreeMap::new();
    for (tags, rows) in query(
        database,
        "SELECT \"count\", \"min\", \"max\", \"mean\", \"version\" FROM \"signal_1m\" GROUP BY \"vehicle\", \"signal\"",
    ) {
        for row in rows {
            let key = (
                tags["vehicle"].clone(),
                tags["signal"].clone(),
                row[0].as_i64().unwrap(),
            );
            rollups.insert(
                key,
                (
                    row[1].as_i64().unwrap(),
                    row[2].as_f64().unwrap(),
                    row[3].as_f64().unwrap(),
                    row[4].as_f64().unwrap(),
                    row[5].as_i64().unwrap(),
                ),
            );
        }
    }
    rollups
}

fn assert_same_as_sqlite(workspace: &Workspace, database: &str) {
    let expected = read_rollups(&workspace.db());
    let actual = influx_rollups(database);
    assert_eq!(actual.len(), expected.len(), "rollup count");
    for (key, row) in &expected {
        let got = actual
            .get(key)
            .unwrap_or_else(|| panic!("{key:?} missing in InfluxDB"));
        assert_eq!(
            *got,
            (row.count, row.min, row.max, row.mean, row.version),
            "{key:?}"
        );
    }
}

fn undelivered(workspace: &Workspace) -> Vec<serde_json::Value> {
    std::fs::read_to_string(workspace.path("undelivered.ndjson"))
        .unwrap_or_default()
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect()
}

#[test]
fn rollups_read_back_equal_sqlite_and_a_replay_changes_nothing() {
    let workspace = Workspace::new();
    let input = workspace.path("fleet.ndjson");
    simulate(&input, 12, 600, 0.02, 5);
    let database = unique_name("fleet");
    let config = workspace.config(
        &input,
        &influx_section(&workspace, &influxdb_url(), &database),
    );
    let config = config.to_str().unwrap();
    let output = fleetstream(&[
        "run",
        "--config",
        config,
        "--no-progress",
        "--create-tables",
    ]);
    let summary = String::from_utf8_lossy(&output.stdout);
    assert!(summary.contains("0 undelivered"), "{summary}");
    assert_same_as_sqlite(&workspace, &database);
    let alerts = query(&database, "SELECT count(\"status\") FROM \"alert\"");
    assert!(!alerts.is_empty(), "alerts are written too");

    // The same input again from the start: the same points, nothing added.
    let before = influx_rollups(&database);
    fleetstream(&["run", "--config", config, "--no-progress", "--fresh"]);
    assert_eq!(influx_rollups(&database), before);
    assert!(undelivered(&workspace).is_empty());
}

#[test]
fn rejected_lines_are_isolated_and_logged_with_the_servers_reason() {
    let workspace = Workspace::new();
    let input = workspace.path("fleet.ndjson");
    simulate(&input, 8, 300, 0.0, 9);
    let database = unique_name("conflict");
    let url = influxdb_url();
    // `speed_1m.mean` already exists as a string in every shard the run writes to, so InfluxDB
    // rejects each speed_1m point (a partial write naming no line) and keeps the others.
    let extra = format!(
        "{}\n[sinks.ndjson]\nenabled = true\npath = \"{}\"\n\n[[rollups]]\nname = \"speed_1m\"\nwindow = {{ kind = \"tumbling\", size = \"1m\" }}\nsignals = [\"speed_kmh\"]\n",
        influx_section(&workspace, &url, &database),
        workspace.path("outputs.ndjson").display()
    );
    let config = workspace.config(&input, &extra);
    create_database(&database);
    let client = reqwest::blocking::Client::new();
    let first_ms: i64 = {
        let text = std::fs::read_to_string(&input).unwrap();
        let first: serde_json::Value = serde_json::from_str(text.lines().next().unwrap()).unwrap();
        telemetry_time(&first)
    };
    let poison = format!("speed_1m,vehicle=x mean=\"text\" {first_ms}\n");
    let write = reqwest::Url::parse_with_params(
        &format!("{url}/write"),
        [("db", database.as_str()), ("precision", "ms")],
    )
    .unwrap();
    assert!(client
        .post(write)
        .body(poison)
        .send()
        .unwrap()
        .status()
        .is_success());

    let output = fleetstream(&["run", "--config", config.to_str().unwrap(), "--no-progress"]);
    let summary = String::from_utf8_lossy(&output.stdout);

    let connection = rusqlite::Connection::open(workspace.db()).unwrap();
    let speed_rows: i64 = connection
        .query_row(
            "SELECT count(*) FROM rollups WHERE rollup = 'speed_1m'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    let emitted: u64 = summary_rollups(&summary);
    assert!(speed_rows > 0 && emitted > 0);
    let logged = undelivered(&workspace);
    let speed_lines = logged
        .iter()
        .filter(|entry| {
            entry["record"]["line"]
                .as_str()
                .unwrap()
                .starts_with("speed_1m,")
        })
        .count();
    assert_eq!(
        speed_lines,
        logged.len(),
        "only the conflicting lines are undelivered"
    );
    // Every speed_1m emission (all versions) was rejected and logged, one line each.
    assert_eq!(logged.len() as i64, speed_versions(&workspace));
    for entry in &logged {
        assert_eq!(entry["sink"], "influxdb");
        assert!(
            entry["reason"]
                .as_str()
                .unwrap()
                .contains("field type conflict"),
            "{entry}"
        );
    }
    assert!(summary.contains("field_type_conflict"), "{summary}");
    assert_same_as_sqlite(&workspace, &database);
}

fn create_database(database: &str) {
    let create = reqwest::Url::parse_with_params(
        &format!("{}/query", influxdb_url()),
        [("q", format!("CREATE DATABASE \"{database}\""))],
    )
    .unwrap();
    let response = reqwest::blocking::Client::new()
        .post(create)
        .send()
        .unwrap();
    assert!(response.status().is_success());
}

/// Rollup emissions of `speed_1m`, every version, from the NDJSON output.
fn speed_versions(workspace: &Workspace) -> i64 {
    let text = std::fs::read_to_string(workspace.path("outputs.ndjson")).unwrap();
    text.lines()
        .filter(|line| line.contains("\"rollup\":\"speed_1m\""))
        .count() as i64
}

fn summary_rollups(summary: &str) -> u64 {
    summary
        .split_whitespace()
        .collect::<Vec<_>>()
        .windows(2)
        .find(|pair| pair[1] == "rollups,")
        .map_or(0, |pair| pair[0].parse().unwrap_or(0))
}

fn telemetry_time(record: &serde_json::Value) -> i64 {
    let ts = &record["ts"];
    if let Some(ms) = ts.as_i64() {
        return ms;
    }
    let text = ts.as_str().expect("ts");
    let parsed = time::OffsetDateTime::parse(text, &time::format_description::well_known::Rfc3339)
        .expect("rfc3339");
    (parsed.unix_timestamp_nanos() / 1_000_000) as i64
}

#[test]
fn an_outage_loses_nothing_and_commits_no_position_early() {
    let workspace = Workspace::new();
    let input = workspace.path("fleet.ndjson");
    simulate(&input, 10, 900, 0.0, 21);
    let database = unique_name("outage");
    create_database(&database);
    let mut proxy = FaultProxy::start(&influxdb_url());
    let config = workspace.config(&input, &influx_section(&workspace, &proxy.url(), &database));
    // The server goes away before the run starts writing.
    proxy.stop();
    let mut child = Command::new(BIN)
        .args(["run", "--config", config.to_str().unwrap(), "--no-progress"])
        .env("FLEETSTREAM_LOG", "error")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    // Wait until the pipeline is blocked on the sink: checkpoints stop advancing.
    std::thread::sleep(Duration::from_secs(3));
    let stalled = checkpoints(&workspace.path("state.db"));
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(
        checkpoints(&workspace.path("state.db")),
        stalled,
        "no checkpoint while InfluxDB is down"
    );
    assert!(
        child.try_wait().unwrap().is_none(),
        "the run waits for the sink"
    );

    proxy.restart();
    let started = Instant::now();
    let output = child.wait_with_output().unwrap();
    let summary = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{summary}");
    assert!(summary.contains("0 undelivered"), "{summary}");
    assert!(started.elapsed() < Duration::from_secs(120));
    assert!(checkpoints(&workspace.path("state.db")) > stalled);
    assert_same_as_sqlite(&workspace, &database);
    assert!(undelivered(&workspace).is_empty());
}
