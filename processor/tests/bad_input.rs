//! The bad-input suite: every malformed case becomes one dead letter with a clear reason, the run
//! continues, and every good record is processed.

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod common;

use std::io::Write;

use common::{read_rollups, run_summary, Workspace};

const T0: i64 = 1_767_225_600_000;

fn good(second: i64) -> String {
    format!(
        r#"{{"vehicle_id":"veh-good","fleet":"f1","ts":{},"signals":{{"speed_kmh":{}.5,"engine_rpm":900}}}}"#,
        T0 + second * 1000,
        second % 90
    )
}

#[test]
fn every_bad_record_is_dead_lettered_with_its_reason() {
    let workspace = Workspace::new();
    let dir = workspace.path("input");
    std::fs::create_dir(&dir).unwrap();

    let ts = |second: i64| T0 + second * 1000;
    let big_blob = "x".repeat(2 << 20);
    let cases: Vec<(Vec<u8>, &str, &str)> = vec![
        (format!(r#"{{"vehicle_id":"veh-bad","ts":{},"signals":{{"speed_kmh":1"#, ts(3)).into_bytes(), "rejected", "truncated"),
        (format!(r#"{{"vehicle_id":123,"ts":{},"signals":{{"speed_kmh":1}}}}"#, ts(6)).into_bytes(), "rejected", "field `vehicle_id`: expected a string"),
        (br#"{"vehicle_id":"veh-bad","ts":true,"signals":{"speed_kmh":1}}"#.to_vec(), "rejected", "field `ts`"),
        (format!(r#"{{"vehicle_id":"veh-bad","ts":{},"signals":{{"speed_kmh":"fast"}}}}"#, ts(9)).into_bytes(), "rejected", "signals.speed_kmh`: non-numeric value \"fast\""),
        (format!(r#"{{"vehicle_id":"veh-bad","ts":{},"signals":{{"speed_kmh":NaN}}}}"#, ts(12)).into_bytes(), "rejected", "invalid JSON"),
        (format!(r#"{{"vehicle_id":"veh-bad","ts":{},"signals":{{"speed_kmh":1e999}}}}"#, ts(15)).into_bytes(), "rejected", "invalid JSON"),
        (format!(r#"{{"vehicle_id":"veh-half","ts":{},"signals":{{"speed_kmh":1e308,"engine_rpm":800}}}}"#, ts(18)).into_bytes(), "fields_rejected", "signals.speed_kmh`: value 1e308 is outside"),
        (format!(r#"{{"vehicle_id":"veh-half","ts":{},"signals":{{"speed_kmh":"Infinity","engine_rpm":801}}}}"#, ts(19)).into_bytes(), "fields_rejected", "non-numeric value \"Infinity\""),
        (format!(r#"{{"ts":{},"signals":{{"speed_kmh":1}}}}"#, ts(21)).into_bytes(), "rejected", "missing required field `vehicle_id`"),
        (br#"{"vehicle_id":"veh-bad","ts":1000,"signals":{"speed_kmh":1}}"#.to_vec(), "rejected", "before the earliest accepted time"),
        (br#"{"vehicle_id":"veh-bad","ts":"2100-01-01T00:00:00Z","signals":{"speed_kmh":1}}"#.to_vec(), "rejected", "after the latest accepted time"),
        (format!(r#"{{"vehicle_id":"veh-bad","ts":{},"attributes":{{"blob":"{big_blob}"}},"signals":{{"speed_kmh":1}}}}"#, ts(24)).into_bytes(), "rejected", "exceeds max_record_bytes"),
        ([b"{\"vehicle_id\":\"veh-\xff\xfe\",\"ts\":".to_vec(), ts(27).to_string().into_bytes(), b",\"signals\":{\"speed_kmh\":1}}".to_vec()].concat(), "rejected", "invalid JSON"),
    ];

    let mut file = Vec::new();
    let mut good_records = 0;
    for (index, (bytes, _, _)) in cases.iter().enumerate() {
        for second in (index as i64 * 3)..(index as i64 * 3 + 3) {
            file.extend_from_slice(good(second).as_bytes());
            file.push(b'\n');
            good_records += 1;
        }
        file.extend_from_slice(bytes);
        file.push(b'\n');
    }
    for second in 60..200 {
        file.extend_from_slice(good(second).as_bytes());
        file.push(b'\n');
        good_records += 1;
    }
    std::fs::write(dir.join("a-records.ndjson"), &file).unwrap();

    // A gzip bomb: 64 MiB of zeros in a few KiB, decompression capped at 4 MiB.
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    encoder.write_all(&vec![0u8; 64 << 20]).unwrap();
    std::fs::write(dir.join("b-bomb.ndjson.gz"), encoder.finish().unwrap()).unwrap();

    let config = workspace.config(&dir, "");
    let text = std::fs::read_to_string(&config).unwrap().replace(
        "max_record_bytes = 1048576",
        "max_record_bytes = 1048576\nmax_decompressed_bytes = 4194304",
    );
    std::fs::write(&config, text).unwrap();
    let summary = run_summary(&config, &[]);

    let dead = workspace.dead_letters();
    let record_letters: Vec<&serde_json::Value> = dead
        .iter()
        .filter(|letter| {
            letter["partition"]
                .as_str()
                .unwrap()
                .ends_with("a-records.ndjson")
        })
        .collect();
    assert_eq!(record_letters.len(), cases.len(), "{record_letters:#?}");
    for ((_, kind, reason), letter) in cases.iter().zip(&record_letters) {
        assert_eq!(letter["kind"], *kind, "{letter}");
        let text = letter["reason"].as_str().unwrap();
        assert!(text.contains(reason), "expected {reason:?} in {text:?}");
        assert!(letter["position"]
            .as_str()
            .unwrap()
            .contains("a-records.ndjson:"));
        assert!(
            !letter["raw_base64"].as_str().unwrap().is_empty(),
            "raw payload kept: {letter}"
        );
    }
    let bomb: Vec<&serde_json::Value> = dead
        .iter()
        .filter(|letter| letter["kind"] == "input")
        .collect();
    assert_eq!(bomb.len(), 1, "{dead:#?}");
    assert!(bomb[0]["reason"]
        .as_str()
        .unwrap()
        .contains("max_decompressed_bytes"));

    let rollups = read_rollups(&workspace.db());
    let good_count: i64 = rollups
        .iter()
        .filter(|((vehicle, signal, _), _)| vehicle == "veh-good" && signal == "speed_kmh")
        .map(|(_, row)| row.count)
        .sum();
    assert_eq!(good_count, good_records);
    let half: i64 = rollups
        .iter()
        .filter(|((vehicle, _, _), _)| vehicle == "veh-half")
        .map(|(_, row)| row.count)
        .sum();
    assert_eq!(
        half, 2,
        "records with a dropped field still count their other signals"
    );
    assert!(summary.contains("rejected"), "{summary}");
}

#[test]
fn invalid_config_lists_every_problem_and_exits_2() {
    let workspace = Workspace::new();
    let path = workspace.path("bad.toml");
    std::fs::write(
        &path,
        "[source]\nkind = \"file\"\n[[rollups]]\nname = \"r\"\nwindow = { kind = \"tumbling\", size = \"0s\" }\n[[rules]]\nname = \"x\"\nseverity = \"warning\"\nwhen = \"speed >\"\n",
    )
    .unwrap();
    let output = std::process::Command::new(common::BIN)
        .args(["validate-config", path.to_str().unwrap()])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    let text = String::from_utf8_lossy(&output.stderr);
    for expected in [
        "`source.path`",
        "`rollups[0].window`",
        "`rules[0].when`",
        "expected a number at column 8",
    ] {
        assert!(text.contains(expected), "{expected} in {text}");
    }
}

#[test]
fn detectors_validate_reports_actions_that_will_not_run() {
    let model = &format!(
        "{}/../config/detectors/coolant.json",
        common::manifest_dir()
    );
    let output = std::process::Command::new(common::BIN)
        .args(["detectors", "validate", model])
        .output()
        .unwrap();
    assert!(output.status.success());
    let text = String::from_utf8_lossy(&output.stdout);
    assert!(text.contains("\"CoolantMonitor\""), "{text}");
    assert!(
        text.contains("will not run") && text.contains("`lambda`"),
        "{text}"
    );

    let workspace = Workspace::new();
    let broken = workspace.path("broken.json");
    std::fs::write(
        &broken,
        r#"{"detectorModelDefinition": {"initialStateName": "X", "states": []}}"#,
    )
    .unwrap();
    let output = std::process::Command::new(common::BIN)
        .args(["detectors", "validate", broken.to_str().unwrap()])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&output.stderr).contains("initialStateName"));
}
