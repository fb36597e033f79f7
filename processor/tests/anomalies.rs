//! Per-vehicle anomaly models end to end: every vehicle scored in event-time order, injected
//! anomalies graded and alerted with an explanation, and the scores bit-identical whether models
//! stay in memory, leave it and come back, or the process is stopped with SIGTERM and restarted.

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod common;

use common::{
    anomaly_section, assert_same_rows, dump_table, run_and_kill, run_and_terminate, run_summary,
    simulate, Workspace,
};

#[test]
fn scores_are_bit_identical_after_eviction_a_restart_and_a_crash() {
    let reference = Workspace::new();
    let input = reference.path("fleet.ndjson");
    simulate(&input, 20, 1200, 0.02, 11);
    run_summary(&reference.config(&input, &anomaly_section("")), &[]);
    let anomalies = dump_table(&reference.db(), "anomalies");
    assert_eq!(anomalies.len(), 20 * 1200, "every record is scored once");
    let alerts = dump_table(&reference.db(), "alerts");
    assert!(!alerts.is_empty());

    // Only 3 models in memory and an idle timeout: models keep leaving and coming back.
    let evicting = Workspace::new();
    let summary = run_summary(
        &evicting.config(
            &input,
            &anomaly_section("max_models = 3\nidle_after = \"20s\""),
        ),
        &[],
    );
    assert!(summary.contains("anomaly models"), "{summary}");
    assert_same_rows(
        &dump_table(&evicting.db(), "anomalies"),
        &anomalies,
        "evicting anomalies",
    );
    assert_same_rows(
        &dump_table(&evicting.db(), "alerts"),
        &alerts,
        "evicting alerts",
    );
    let saved: i64 = rusqlite::Connection::open(evicting.path("state.db"))
        .unwrap()
        .query_row("SELECT COUNT(*) FROM models", [], |row| row.get(0))
        .unwrap();
    assert_eq!(saved, 20, "every vehicle's model is in the state store");

    let interrupted = Workspace::new();
    let config = interrupted.config(&input, &anomaly_section("max_models = 10"));
    run_and_terminate(&interrupted, &config);
    let partial = dump_table(&interrupted.db(), "anomalies").len();
    assert!(partial < anomalies.len(), "the first run stopped early");
    assert!(run_summary(&config, &[]).contains("resumed from"));
    assert_same_rows(
        &dump_table(&interrupted.db(), "anomalies"),
        &anomalies,
        "restarted anomalies",
    );
    assert_same_rows(
        &dump_table(&interrupted.db(), "alerts"),
        &alerts,
        "restarted alerts",
    );

    // Killed without a chance to flush: the restart continues from the last committed
    // checkpoint, whose model snapshots were saved in the same transaction.
    let crashed = Workspace::new();
    let config = crashed.config(&input, &anomaly_section("max_models = 10"));
    run_and_kill(&crashed, &config);
    assert!(run_summary(&config, &[]).contains("resumed from"));
    assert_same_rows(
        &dump_table(&crashed.db(), "anomalies"),
        &anomalies,
        "anomalies after a crash",
    );
    assert_same_rows(
        &dump_table(&crashed.db(), "alerts"),
        &alerts,
        "alerts after a crash",
    );
}

/// Steady vehicles (noisy speed, rpm following speed, coolant near 90 °C) at 1 Hz for
/// `seconds`, with, per vehicle, one speed spike and one 60 s rpm level shift at vehicle-specific
/// times. Returns the NDJSON and the injections as (vehicle, start ms, end ms).
fn steady_fleet(vehicles: u32, seconds: i64) -> (String, Vec<(String, i64, i64)>) {
    let start = 1_767_225_600_000i64;
    let mut noise = 0x9E37_79B9_7F4A_7C15u64;
    let mut next = move || {
        noise ^= noise << 13;
        noise ^= noise >> 7;
        noise ^= noise << 17;
        (noise >> 40) as f64 / (1u64 << 24) as f64 - 0.5
    };
    let mut text = String::new();
    let mut injections = Vec::new();
    let spike_at = |vehicle: u32| 900 + i64::from(vehicle) * 37;
    let shift_at = |vehicle: u32| 1800 + i64::from(vehicle) * 41;
    for vehicle in 0..vehicles {
        let id = format!("veh-{vehicle:06}");
        let (spike, shift) = (spike_at(vehicle), shift_at(vehicle));
        injections.push((id.clone(), start + spike * 1000, start + spike * 1000));
        injections.push((id, start + shift * 1000, start + (shift + 60) * 1000));
    }
    // Interleaved in time, as a fleet sends them.
    for second in 0..seconds {
        for vehicle in 0..vehicles {
            let phase = (second as f64 / 60.0 + f64::from(vehicle)).sin();
            let mut speed = 60.0 + 10.0 * phase + 2.0 * next();
            let mut rpm = 30.0 * speed + 40.0 * next();
            if second == spike_at(vehicle) {
                speed += 80.0;
            }
            if (shift_at(vehicle)..shift_at(vehicle) + 60).contains(&second) {
                rpm += 3000.0;
            }
            let coolant = 90.0 + next();
            text.push_str(&format!(
                "{{\"vehicle_id\":\"veh-{vehicle:06}\",\"fleet\":\"f\",\"ts\":{},\"signals\":{{\"speed_kmh\":{speed:.2},\"engine_rpm\":{rpm:.1},\"coolant_temp_c\":{coolant:.2}}}}}\n",
                start + second * 1000
            ));
        }
    }
    (text, injections)
}

#[test]
fn injected_anomalies_are_graded_and_alerted_with_an_explanation() {
    let workspace = Workspace::new();
    let input = workspace.path("steady.ndjson");
    let (text, injections) = steady_fleet(8, 3000);
    std::fs::write(&input, text).unwrap();
    run_summary(&workspace.config(&input, &anomaly_section("")), &[]);
    let connection = rusqlite::Connection::open(workspace.db()).unwrap();
    let alerts: Vec<(String, i64, String, String)> = connection
        .prepare("SELECT vehicle_id, start_time_ms, message, inputs FROM alerts WHERE source = 'anomaly'")
        .unwrap()
        .query_map([], |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?, row.get(3)?)))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    let near = |vehicle: &str, time: i64| {
        injections
            .iter()
            .any(|(v, start, end)| v == vehicle && (*start..=*end + 5_000).contains(&time))
    };
    for (vehicle, start, _) in &injections {
        let (grade, score): (f64, f64) = connection
            .query_row(
                "SELECT max(grade), max(score) FROM anomalies WHERE vehicle_id = ?1 AND time_ms BETWEEN ?2 AND ?2 + 5000",
                rusqlite::params![vehicle, start],
                |row| Ok((row.get(0)?, row.get(1)?)),
            )
            .unwrap();
        assert!(
            alerts
                .iter()
                .any(|(v, time, _, _)| v == vehicle && (*start..=start + 5_000).contains(time)),
            "no alert for the anomaly of {vehicle} at {start}: best grade {grade}, score {score}"
        );
    }
    let false_alerts = alerts.iter().filter(|(v, t, _, _)| !near(v, *t)).count();
    assert!(
        false_alerts <= 8,
        "{false_alerts} alerts away from the injections (8 vehicles × 50 min)"
    );
    for (vehicle, time, message, inputs) in &alerts {
        let explanation: serde_json::Value = serde_json::from_str(inputs).unwrap();
        for signal in ["speed_kmh", "engine_rpm", "coolant_temp_c"] {
            let direction = explanation[signal]["DIRECTION"].as_str().unwrap();
            assert!(direction == "HIGH" || direction == "LOW");
        }
        assert!(message.contains("drivetrain: vehicle"), "{message}");
        // The rpm shift's first alert blames rpm, going up.
        if injections
            .iter()
            .any(|(v, start, end)| v == vehicle && start != end && time == start)
        {
            let rpm: f64 = explanation["engine_rpm"]["ATTRIBUTION_SCORE"]
                .as_str()
                .unwrap()
                .parse()
                .unwrap();
            let coolant: f64 = explanation["coolant_temp_c"]["ATTRIBUTION_SCORE"]
                .as_str()
                .unwrap()
                .parse()
                .unwrap();
            assert!(
                rpm > coolant && explanation["engine_rpm"]["DIRECTION"] == "HIGH",
                "{explanation}"
            );
        }
    }
}

#[test]
fn window_mode_scores_each_vehicle_s_closed_windows() {
    let workspace = Workspace::new();
    let input = workspace.path("fleet.ndjson");
    simulate(&input, 5, 1200, 0.02, 8);
    let ndjson = workspace.path("out.ndjson");
    let extra = format!(
        "{}\n[sinks.ndjson]\nenabled = true\npath = \"{}\"\n",
        anomaly_section("output = \"window\"\nwindow = \"10s\"\nexplain = \"none\""),
        ndjson.display()
    );
    run_summary(&workspace.config(&input, &extra), &[]);
    let connection = rusqlite::Connection::open(workspace.db()).unwrap();
    let rows: Vec<(String, i64, i64, Option<String>)> = connection
        .prepare("SELECT vehicle_id, time_ms, window_end_ms, explanation FROM anomalies")
        .unwrap()
        .query_map([], |row| {
            Ok((row.get(0)?, row.get(1)?, row.get(2)?, row.get(3)?))
        })
        .unwrap()
        .map(Result::unwrap)
        .collect();
    assert!(rows.iter().all(|(_, start, end, explanation)| {
        end - start == 10_000 && start % 10_000 == 0 && explanation.is_none()
    }));
    let lines = std::fs::read_to_string(&ndjson).unwrap();
    let anomaly_lines = lines
        .lines()
        .filter(|line| line.starts_with("{\"type\":\"anomaly\""))
        .count();
    assert_eq!(
        anomaly_lines,
        rows.len(),
        "the NDJSON sink writes the same rows"
    );
    for vehicle in 0..5 {
        let windows = rows
            .iter()
            .filter(|(v, ..)| v == &format!("veh-{vehicle:06}"))
            .count();
        assert!(
            (120..=121).contains(&windows),
            "vehicle {vehicle}: {windows} windows"
        );
    }
}
