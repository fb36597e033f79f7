//! The InfluxDB line-protocol sink against a real InfluxDB server (Debian's influxdb, started
//! by scripts/test): every rollup read back with InfluxQL equals the SQLite output, rejected
//! lines are isolated and logged with the server's reason, an outage loses nothing and commits
//! no position early, and a replay leaves the same data.

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod common;

use std::collections::BTreeMap;

use common::emulators::{influxdb_url, run_through_outage, unique_name, FaultProxy};
use common::{checkpoints, read_rollups, run_summary, simulate, spawn_run, RollupKey, Workspace};

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
    let summary = run_summary(&config, &["--create-tables"]);
    assert!(summary.contains("0 undelivered"), "{summary}");
    assert_same_as_sqlite(&workspace, &database);
    let alerts = query(&database, "SELECT count(\"status\") FROM \"alert\"");
    assert!(!alerts.is_empty(), "alerts are written too");

    // The same input again from the start: the same points, nothing added.
    let before = influx_rollups(&database);
    run_summary(&config, &["--fresh"]);
    assert_eq!(influx_rollups(&database), before);
    assert!(workspace.undelivered().is_empty());
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
    let text = std::fs::read_to_string(&input).unwrap();
    let first: serde_json::Value = serde_json::from_str(text.lines().next().unwrap()).unwrap();
    let first_ms = first["ts"]
        .as_i64()
        .expect("the simulator writes ts in milliseconds");
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

    let summary = run_summary(&config, &[]);

    let connection = rusqlite::Connection::open(workspace.db()).unwrap();
    let speed_rows: i64 = connection
        .query_row(
            "SELECT count(*) FROM rollups WHERE rollup = 'speed_1m'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert!(speed_rows > 0);
    let logged = workspace.undelivered();
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
    workspace
        .ndjson("outputs.ndjson")
        .iter()
        .filter(|line| line["rollup"] == "speed_1m")
        .count() as i64
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
    run_through_outage(&workspace, &config, &[], &mut proxy);
    assert_same_as_sqlite(&workspace, &database);
    assert!(workspace.undelivered().is_empty());
}

#[test]
fn a_missing_database_stops_the_run_with_a_clear_message() {
    let workspace = Workspace::new();
    let input = workspace.path("fleet.ndjson");
    simulate(&input, 2, 120, 0.0, 1);
    let database = unique_name("missing");
    let config = workspace.config(
        &input,
        &influx_section(&workspace, &influxdb_url(), &database),
    );
    let output = spawn_run(&config, &[]).wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("database not found"), "{stderr}");
    assert_eq!(
        checkpoints(&workspace.path("state.db")),
        0,
        "nothing committed"
    );
}
