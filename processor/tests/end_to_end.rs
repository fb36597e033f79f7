//! End to end: the real binary on a generated file; rollups checked against an independent
//! brute-force computation over the input, alerts checked against the raw samples.

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod common;

use std::collections::BTreeMap;

use common::{
    assert_rollups_match, brute_force_rollups, read_rollups, run_summary, simulate, Workspace,
};

#[test]
fn generated_fleet_rollups_match_brute_force() {
    let workspace = Workspace::new();
    let input = workspace.path("fleet.ndjson");
    simulate(&input, 40, 900, 0.02, 7);
    // Two decode workers: their results must come back in the original order.
    let config = workspace.config(&input, "[pipeline]\ndecode_workers = 2\n");
    let summary = run_summary(&config, &[]);
    assert!(
        summary.contains("36000 decoded, 0 rejected, 0 late"),
        "{summary}"
    );
    assert!(summary.contains("sqlite3 -header -column"), "{summary}");

    let expected = brute_force_rollups(&input, 60_000);
    let actual = read_rollups(&workspace.db());
    assert_rollups_match(&actual, &expected);
    assert!(workspace.dead_letters().is_empty());
}

#[test]
fn alerts_agree_with_the_samples_that_triggered_them() {
    let workspace = Workspace::new();
    let input = workspace.path("fleet.ndjson");
    simulate(&input, 60, 1200, 0.02, 11);
    // One decode worker (the default on a one-core machine), a path of its own.
    let config = workspace.config(&input, "[pipeline]\ndecode_workers = 1\n");
    run_summary(&config, &[]);

    // Independent view of the samples: (vehicle, signal) → time-ordered values.
    let text = std::fs::read_to_string(&input).unwrap();
    let mut series: BTreeMap<(String, String), Vec<(i64, f64)>> = BTreeMap::new();
    for line in text.lines() {
        let value: serde_json::Value = serde_json::from_str(line).unwrap();
        for (name, number) in value["signals"].as_object().unwrap() {
            series
                .entry((
                    value["vehicle_id"].as_str().unwrap().to_owned(),
                    name.clone(),
                ))
                .or_default()
                .push((value["ts"].as_i64().unwrap(), number.as_f64().unwrap()));
        }
    }
    for values in series.values_mut() {
        values.sort_by_key(|v| v.0);
    }

    let connection = rusqlite::Connection::open(workspace.db()).unwrap();
    let mut statement = connection
        .prepare("SELECT vehicle_id, rule, signal, start_time_ms, fired_time_ms, end_time_ms, trigger_max, trigger_count FROM alerts")
        .unwrap();
    type AlertRow = (String, String, String, i64, i64, Option<i64>, f64, i64);
    let alerts: Vec<AlertRow> = statement
        .query_map([], |r| {
            Ok((
                r.get(0)?,
                r.get(1)?,
                r.get(2)?,
                r.get(3)?,
                r.get(4)?,
                r.get(5)?,
                r.get(6)?,
                r.get(7)?,
            ))
        })
        .unwrap()
        .map(Result::unwrap)
        .collect();
    assert!(
        alerts.len() >= 3,
        "the injected anomalies should trigger alerts: {alerts:?}"
    );
    for (vehicle, rule, signal, start, fired, end, max, count) in alerts {
        let (threshold, for_ms) = match rule.as_str() {
            "coolant_overheat" => (110.0, 30_000),
            "overspeed" => (140.0, 5_000),
            other => panic!("unexpected rule {other}"),
        };
        let values = &series[&(vehicle.clone(), signal)];
        let episode: Vec<f64> = values
            .iter()
            .filter(|(t, _)| (start..=fired).contains(t))
            .map(|v| v.1)
            .collect();
        assert!(
            fired - start >= for_ms,
            "{vehicle} {rule}: fired before the duration"
        );
        assert!(
            episode.iter().all(|v| *v > threshold),
            "{vehicle} {rule}: a sample in the episode is below the threshold"
        );
        assert_eq!(
            episode.len() as i64,
            count,
            "{vehicle} {rule}: trigger count"
        );
        assert_eq!(episode.iter().copied().fold(f64::MIN, f64::max), max);
        let before = values.iter().rev().find(|(t, _)| *t < start);
        assert!(
            before.is_none_or(|(_, v)| *v <= threshold),
            "{vehicle} {rule}: episode started late"
        );
        if let Some(end) = end {
            assert!(end > fired);
        }
    }
}

/// Five minutes of one vehicle at 1 Hz, in order.
fn steady_speed_lines() -> Vec<String> {
    (0..300_i64)
        .map(|second| {
            format!(
                r#"{{"vehicle_id":"veh-1","ts":{},"signals":{{"speed_kmh":{second}}}}}"#,
                1_767_225_600_000_i64 + second * 1000
            )
        })
        .collect()
}

#[test]
fn late_records_go_to_dead_letters_and_out_of_the_rollups() {
    let workspace = Workspace::new();
    let input = workspace.path("late.ndjson");
    let mut lines = steady_speed_lines();
    // 2 minutes behind the newest record: beyond the 10 s out-of-orderness bound.
    lines.push(
        r#"{"vehicle_id":"veh-1","ts":1767225780000,"signals":{"speed_kmh":999}}"#.to_owned(),
    );
    lines.push(r#"{"vehicle_id":"veh-1","ts":1767225900000,"signals":{"speed_kmh":1}}"#.to_owned());
    std::fs::write(&input, lines.join("\n")).unwrap();
    let config = workspace.config(&input, "");
    run_summary(&config, &[]);

    let dead = workspace.dead_letters();
    assert_eq!(dead.len(), 1, "{dead:?}");
    assert_eq!(dead[0]["kind"], "late");
    assert!(dead[0]["reason"]
        .as_str()
        .unwrap()
        .contains("closed for good"));
    let rollups = read_rollups(&workspace.db());
    assert!(
        rollups.values().all(|row| row.max < 999.0),
        "the late value is not in any rollup"
    );
    assert_eq!(rollups.values().map(|row| row.count).sum::<i64>(), 301);
}

#[test]
fn allowed_lateness_updates_the_closed_window_with_a_higher_version() {
    let workspace = Workspace::new();
    let input = workspace.path("late.ndjson");
    let mut lines = steady_speed_lines();
    lines.push(
        r#"{"vehicle_id":"veh-1","ts":1767225780000,"signals":{"speed_kmh":999}}"#.to_owned(),
    );
    std::fs::write(&input, lines.join("\n")).unwrap();
    let config = workspace.config(&input, "");
    let text = std::fs::read_to_string(&config).unwrap().replace(
        "window = { kind = \"tumbling\", size = \"1m\" }",
        "window = { kind = \"tumbling\", size = \"1m\" }\nallowed_lateness = \"5m\"",
    );
    std::fs::write(&config, text).unwrap();
    run_summary(&config, &[]);

    assert!(workspace.dead_letters().is_empty());
    let rollups = read_rollups(&workspace.db());
    let minute_3 = &rollups[&(
        "veh-1".to_owned(),
        "speed_kmh".to_owned(),
        1_767_225_780_000,
    )];
    assert_eq!((minute_3.count, minute_3.max), (61, 999.0));
    assert_eq!(rollups.values().map(|row| row.count).sum::<i64>(), 301);
}

#[test]
fn a_late_event_within_allowed_lateness_joins_two_sessions_into_one() {
    let workspace = Workspace::new();
    let input = workspace.path("sessions.ndjson");
    let line = |second: i64, speed: f64| {
        format!(
            r#"{{"vehicle_id":"veh-1","ts":{},"signals":{{"speed_kmh":{speed}}}}}"#,
            1_767_225_600_000_i64 + second * 1000
        )
    };
    // Two bursts 60 s apart, then the reading from between them, late by 90 s.
    let mut lines: Vec<String> = (0..=60).chain(120..=180).map(|s| line(s, 50.0)).collect();
    lines.push(line(90, 999.0));
    std::fs::write(&input, lines.join("\n")).unwrap();
    let run = |lateness: &str| {
        let workspace = Workspace::new();
        let config = workspace.config(&input, "");
        let text = std::fs::read_to_string(&config).unwrap().replace(
            "window = { kind = \"tumbling\", size = \"1m\" }",
            &format!("window = {{ kind = \"session\", gap = \"30s\" }}\nallowed_lateness = \"{lateness}\""),
        );
        std::fs::write(&config, text).unwrap();
        run_summary(&config, &[]);
        (read_rollups(&workspace.db()), workspace.dead_letters())
    };

    let (sessions, dead) = run("2m");
    assert!(dead.is_empty(), "{dead:?}");
    let speed: Vec<_> = sessions
        .iter()
        .filter(|(k, _)| k.1 == "speed_kmh")
        .collect();
    assert_eq!(speed.len(), 1, "one session: {speed:?}");
    let (key, row) = speed[0];
    assert_eq!(key.2, 1_767_225_600_000);
    assert_eq!(
        (row.count, row.max, row.version, row.is_final),
        (123, 999.0, 1, true)
    );

    let (sessions, dead) = run("0s");
    assert_eq!(sessions.keys().filter(|k| k.1 == "speed_kmh").count(), 2);
    assert_eq!(
        dead.len(),
        1,
        "without lateness the bridging reading is late"
    );
    assert_eq!(dead[0]["kind"], "late");
}

#[test]
fn iot_events_detector_model_runs_per_vehicle() {
    let workspace = Workspace::new();
    let input = workspace.path("coolant.ndjson");
    let mut lines = Vec::new();
    for vehicle in ["veh-1", "veh-2"] {
        for i in 0..60_i64 {
            let coolant = match (vehicle, i) {
                ("veh-2", _) => 90.0,
                (_, 0..=17) => 112.0 + (i % 3) as f64,
                (_, 18..=23) => 100.0,
                _ => 90.0,
            };
            lines.push((
                i * 10_000,
                format!(
                    r#"{{"vehicle_id":"{vehicle}","ts":{},"signals":{{"coolant_temp_c":{coolant},"speed_kmh":50}}}}"#,
                    1_767_225_600_000_i64 + i * 10_000
                ),
            ));
        }
    }
    lines.sort_by_key(|line| line.0);
    let text: Vec<String> = lines.into_iter().map(|line| line.1).collect();
    std::fs::write(&input, text.join("\n")).unwrap();
    let model = &format!(
        "{}/../config/detectors/coolant.json",
        common::manifest_dir()
    );
    let alarm = &format!(
        "{}/../config/detectors/coolant-alarm.json",
        common::manifest_dir()
    );
    let config = workspace.config(
        &input,
        &format!(
            "[[detectors]]\nmodel = \"{model}\"\ninput = \"Telemetry\"\n[[alarms]]\nmodel = \"{alarm}\"\n"
        ),
    );
    let summary = run_summary(&config, &[]);
    assert!(summary.contains("8 detector events"), "{summary}");

    let connection = rusqlite::Connection::open(workspace.db()).unwrap();
    let mut statement = connection
        .prepare("SELECT vehicle_id, kind, from_state, to_state, time_ms - 1767225600000, trigger, payload FROM detector_events WHERE model = 'CoolantMonitor' ORDER BY time_ms, kind DESC")
        .unwrap();
    type Row = (
        String,
        String,
        Option<String>,
        String,
        i64,
        Option<String>,
        Option<String>,
    );
    let rows: Vec<Row> = statement
        .query_map([], |r| {
            Ok((
                r.get(0)?,
                r.get(1)?,
                r.get(2)?,
                r.get(3)?,
                r.get(4)?,
                r.get(5)?,
                r.get(6)?,
            ))
        })
        .unwrap()
        .map(Result::unwrap)
        .collect();
    let summary: Vec<(&str, &str, i64)> = rows
        .iter()
        .map(|r| (r.1.as_str(), r.3.as_str(), r.4))
        .collect();
    assert_eq!(
        summary,
        vec![
            ("state_change", "Overheating", 0),
            ("state_change", "Alarm", 120_000),
            ("notification", "Alarm", 120_000),
            ("state_change", "Cooling", 240_000),
            ("state_change", "Normal", 540_000),
        ]
    );
    assert!(rows.iter().all(|r| r.0 == "veh-1"), "veh-2 never overheats");
    let inputs: String = connection
        .query_row(
            "SELECT inputs FROM detector_events WHERE model = 'CoolantMonitor' AND to_state = 'Overheating'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(
        inputs, r#"{"coolant_temp_c":112.0,"speed_kmh":50.0}"#,
        "the triggering values"
    );
    assert_eq!(rows[2].6.as_deref(), Some("coolant alarm, peak 114"));

    let alarm_states: Vec<(String, String, i64)> = connection
        .prepare(
            "SELECT kind, to_state, time_ms - 1767225600000 FROM detector_events \
             WHERE model = 'CoolantAlarm' ORDER BY time_ms, kind DESC",
        )
        .unwrap()
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    let alarm_states: Vec<(&str, &str, i64)> = alarm_states
        .iter()
        .map(|(k, s, t)| (k.as_str(), s.as_str(), *t))
        .collect();
    assert_eq!(
        alarm_states,
        vec![
            ("state_change", "ACTIVE", 0),
            ("notification", "ACTIVE", 0),
            ("state_change", "LATCHED", 180_000),
        ],
        "unacknowledged alarms latch"
    );
    let notification_alerts: Vec<(String, String, String)> = connection
        .prepare("SELECT rule, source, target FROM alerts WHERE source = 'detector' ORDER BY start_time_ms, rule")
        .unwrap()
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    assert_eq!(notification_alerts.len(), 2, "{notification_alerts:?}");
    assert!(notification_alerts
        .iter()
        .any(|a| a.0 == "CoolantMonitor → sns"));
    assert!(notification_alerts
        .iter()
        .any(|a| a.0 == "CoolantAlarm → sns"));
    let alarm_inputs: String = connection
        .query_row(
            "SELECT inputs FROM alerts WHERE rule = 'CoolantAlarm → sns'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    let alarm_inputs: serde_json::Value = serde_json::from_str(&alarm_inputs).unwrap();
    assert!(
        alarm_inputs["coolant_temp_c"].as_f64().unwrap() > 110.0,
        "the alarm's alert carries the reading that raised it: {alarm_inputs}"
    );
}

#[test]
fn ndjson_sink_and_stdin_source() {
    let workspace = Workspace::new();
    let input = workspace.path("fleet.ndjson");
    simulate(&input, 5, 180, 0.0, 3);
    let config = workspace.config(
        &input,
        &format!(
            "[sinks.ndjson]\nenabled = true\npath = \"{}\"\n",
            workspace.path("out.ndjson").display()
        ),
    );
    let mut child = common::spawn_run_on_stdin(&config);
    {
        use std::io::Write;
        let mut stdin = child.stdin.take().unwrap();
        stdin.write_all(&std::fs::read(&input).unwrap()).unwrap();
    }
    let output = child.wait_with_output().unwrap();
    assert!(output.status.success());
    let lines = std::fs::read_to_string(workspace.path("out.ndjson")).unwrap();
    let rollups = lines
        .lines()
        .filter(|l| l.contains(r#""type":"rollup""#))
        .count();
    assert_eq!(rollups, read_rollups(&workspace.db()).len());
    assert!(rollups > 0);
}

#[test]
fn alarm_commands_reach_a_running_service() {
    use std::io::Write;
    use std::time::{Duration, Instant};

    let workspace = Workspace::new();
    let alarm = &format!(
        "{}/../config/detectors/coolant-alarm.json",
        common::manifest_dir()
    );
    let config = workspace.config(
        &workspace.path("unused.ndjson"),
        &format!("[[alarms]]\nmodel = \"{alarm}\"\n"),
    );
    let mut child = common::spawn_run_on_stdin(&config);
    let mut stdin = child.stdin.take().unwrap();
    for second in 0..40_i64 {
        writeln!(
            stdin,
            r#"{{"vehicle_id":"veh-1","ts":{},"signals":{{"coolant_temp_c":120}}}}"#,
            1_767_225_600_000_i64 + second * 1000
        )
        .unwrap();
    }
    stdin.flush().unwrap();

    let states = |db: &std::path::Path| -> Vec<String> {
        let Ok(connection) = rusqlite::Connection::open(db) else {
            return Vec::new();
        };
        let Ok(mut statement) = connection.prepare(
            "SELECT to_state FROM detector_events WHERE model = 'CoolantAlarm' AND kind = 'state_change' ORDER BY time_ms",
        ) else {
            return Vec::new();
        };
        statement
            .query_map([], |row| row.get(0))
            .map(|rows| rows.filter_map(Result::ok).collect())
            .unwrap_or_default()
    };
    let wait_for = |wanted: &str| {
        let started = Instant::now();
        while !states(&workspace.db()).iter().any(|state| state == wanted) {
            assert!(
                started.elapsed() < Duration::from_secs(30),
                "no {wanted} within 30 s"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    };
    wait_for("ACTIVE");
    let output = std::process::Command::new(common::BIN)
        .args([
            "alarms",
            "acknowledge",
            "--model",
            "CoolantAlarm",
            "--vehicle",
            "veh-1",
        ])
        .args(["--db", workspace.db().to_str().unwrap()])
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    wait_for("ACKNOWLEDGED");
    drop(stdin);
    let output = child.wait_with_output().unwrap();
    assert!(output.status.success());
    assert_eq!(states(&workspace.db()), vec!["ACTIVE", "ACKNOWLEDGED"]);
}

#[test]
fn a_detector_reads_several_inputs_mapped_onto_records() {
    let workspace = Workspace::new();
    let model = workspace.path("thermostat.json");
    std::fs::copy(
        format!(
            "{}/../models/tests/thermostat-detector-model.json",
            common::manifest_dir()
        ),
        &model,
    )
    .unwrap();
    let input = workspace.path("cabin.ndjson");
    let lines: Vec<String> = [
        ("limit_c", 25.0),
        ("cabin_temp_c", 24.0),
        ("cabin_temp_c", 26.0),
    ]
    .iter()
    .enumerate()
    .map(|(i, (name, value))| {
        format!(
            r#"{{"vehicle_id":"bus-1","ts":{},"signals":{{"{name}":{value}}}}}"#,
            1_767_225_600_000_i64 + i as i64 * 1000
        )
    })
    .collect();
    std::fs::write(&input, lines.join("\n")).unwrap();
    let extra = format!(
        "[[detectors]]\nmodel = \"{}\"\n[[detectors.inputs]]\nname = \"SeedInput\"\nmapping = {{ \"config.limit\" = \"limit_c\" }}\n[[detectors.inputs]]\nname = \"TempInput\"\nmapping = {{ \"reading.value\" = \"cabin_temp_c\" }}\n",
        model.display()
    );
    let config = workspace.config(&input, &extra);
    run_summary(&config, &[]);
    let connection = rusqlite::Connection::open(workspace.db()).unwrap();
    let (from, to, at): (String, String, i64) = connection
        .query_row(
            "SELECT from_state, to_state, time_ms - 1767225600000 FROM detector_events WHERE model = 'Thermostat'",
            [],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )
        .unwrap();
    assert_eq!((from.as_str(), to.as_str(), at), ("Idle", "Hot", 2000));
}
