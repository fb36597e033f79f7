//! `fleetstream score` on CSV files: every row scored in order, spikes graded, bad values imputed
//! and counted, bad arguments refused with exit code 2.

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod common;

use std::fmt::Write as _;
use std::process::Command;

/// A two-signal series (noisy sines) with spikes in `speed` at the given rows, and a few bad
/// values in `rpm`.
fn series(rows: usize, spikes: &[usize]) -> String {
    let mut text = String::from("ts,speed,rpm\n");
    let mut noise = 0x2545_F491_4F6C_DD1Du64;
    for i in 0..rows {
        noise ^= noise << 13;
        noise ^= noise >> 7;
        noise ^= noise << 17;
        let jitter = (noise >> 40) as f64 / (1u64 << 24) as f64 - 0.5;
        let wave = (i as f64 * 0.1).sin();
        let speed = 60.0 + 20.0 * wave + jitter + if spikes.contains(&i) { 90.0 } else { 0.0 };
        let rpm = match i {
            1000 => "n/a".to_owned(),
            1001 => String::new(),
            _ => format!("{:.1}", 2000.0 + 600.0 * wave + 10.0 * jitter),
        };
        writeln!(text, "{},{speed:.3},{rpm}", 1_700_000_000 + i).unwrap();
    }
    text
}

#[test]
fn every_row_is_scored_in_order_and_only_spikes_grade_high() {
    let workspace = common::Workspace::new();
    let input = workspace.path("series.csv");
    let output = workspace.path("scores.csv");
    let spikes = [2500, 3500];
    std::fs::write(&input, series(4000, &spikes)).unwrap();
    let run = Command::new(common::BIN)
        .args([
            "score",
            "--trees",
            "40",
            "--sample-size",
            "128",
            "--shingle-size",
            "2",
        ])
        .arg("--input")
        .arg(&input)
        .arg("--output")
        .arg(&output)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert!(run.status.success(), "{stderr}");
    assert!(
        stderr.contains("scored 4000 rows") && stderr.contains("2 values imputed"),
        "{stderr}"
    );

    let mut reader = csv::Reader::from_path(&output).unwrap();
    assert_eq!(
        reader.headers().unwrap().iter().collect::<Vec<_>>(),
        [
            "ts",
            "anomaly_score",
            "grade",
            "confidence",
            "warming_up",
            "explanation"
        ]
    );
    let rows: Vec<csv::StringRecord> = reader.records().map(Result::unwrap).collect();
    assert_eq!(rows.len(), 4000);
    for (i, row) in rows.iter().enumerate() {
        assert_eq!(
            row[0],
            (1_700_000_000 + i).to_string(),
            "rows stay in input order"
        );
        let grade: f64 = row[2].parse().unwrap();
        assert!((0.0..=1.0).contains(&grade));
    }
    assert!(rows[..128]
        .iter()
        .all(|r| &r[4] == "true" && &r[1] == "0.000000" && r[5].is_empty()));
    for spike in spikes {
        let grade: f64 = rows[spike][2].parse().unwrap();
        assert!(grade > 0.5, "spike at {spike} grades {grade}");
        let explanation: serde_json::Value = serde_json::from_str(&rows[spike][5]).unwrap();
        assert_eq!(explanation["speed"]["DIRECTION"], "HIGH", "{explanation}");
        let speed: f64 = explanation["speed"]["ATTRIBUTION_SCORE"]
            .as_str()
            .unwrap()
            .parse()
            .unwrap();
        let rpm: f64 = explanation["rpm"]["ATTRIBUTION_SCORE"]
            .as_str()
            .unwrap()
            .parse()
            .unwrap();
        assert!(speed > rpm, "{explanation}");
    }
    let high = rows[300..]
        .iter()
        .filter(|r| r[2].parse::<f64>().unwrap() > 0.5)
        .count();
    assert!(
        high <= 6,
        "only the spikes and their shingles grade high: {high}"
    );
}

#[test]
fn bad_arguments_exit_2_with_the_reason() {
    let workspace = common::Workspace::new();
    let input = workspace.path("series.csv");
    std::fs::write(&input, series(10, &[])).unwrap();
    for (args, expected) in [
        (
            vec!["--value-columns", "speed,coolant"],
            "no column named \"coolant\"",
        ),
        (vec!["--sample-size", "1"], "sample_size must be"),
    ] {
        let run = Command::new(common::BIN)
            .arg("score")
            .arg("--input")
            .arg(&input)
            .args(["--output", "-"])
            .args(&args)
            .output()
            .unwrap();
        assert_eq!(run.status.code(), Some(2), "{args:?}");
        let stderr = String::from_utf8_lossy(&run.stderr);
        assert!(stderr.contains(expected), "{args:?}: {stderr}");
    }
}
