//! Helpers shared by the end-to-end tests: run the real `fleetstream` binary, read its SQLite
//! output, and compute expected rollups independently by brute force over the input file.

#![allow(dead_code, missing_docs)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

pub mod emulators;
pub mod kinesis;

pub const BIN: &str = env!("CARGO_BIN_EXE_fleetstream");

/// The crate's directory at run time (cargo sets it for test runs), not at build time: a test
/// binary reused from another checkout must read this checkout's files.
pub fn manifest_dir() -> String {
    std::env::var("CARGO_MANIFEST_DIR").expect("CARGO_MANIFEST_DIR is set by cargo test")
}

/// A scratch directory with a config whose outputs all live inside it.
pub struct Workspace {
    pub dir: tempfile::TempDir,
}

impl Workspace {
    pub fn new() -> Self {
        Self {
            dir: tempfile::tempdir().expect("temp dir"),
        }
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// Writes a config reading `input`, with `extra` TOML appended, and returns its path.
    pub fn config(&self, input: &Path, extra: &str) -> PathBuf {
        let text = format!(
            r#"
[source]
kind = "file"
path = "{input}"
read_bytes = 65536

[decode]
max_record_bytes = 1048576

[time]
max_out_of_orderness = "10s"

[[rollups]]
name = "signal_1m"
window = {{ kind = "tumbling", size = "1m" }}

[[rules]]
name = "coolant_overheat"
severity = "critical"
when = "coolant_temp_c > 110 for 30s"
clear_when = "coolant_temp_c < 100 for 1m"

[[rules]]
name = "overspeed"
severity = "warning"
when = "speed_kmh > 140 for 5s"

[checkpoint]
interval = "200ms"

[state]
path = "{state}"

[sinks.sqlite]
path = "{db}"
batch_rows = 5000

[dead_letter]
path = "{dead}"
{extra}
"#,
            input = input.display(),
            state = self.path("state.db").display(),
            db = self.path("out.db").display(),
            dead = self.path("dead.ndjson").display(),
        );
        let path = self.path("config.toml");
        std::fs::write(&path, text).expect("write config");
        path
    }

    pub fn db(&self) -> PathBuf {
        self.path("out.db")
    }

    pub fn dead_letters(&self) -> Vec<serde_json::Value> {
        self.ndjson("dead.ndjson")
    }

    /// The undelivered log of the remote sink the test configured (`undelivered.ndjson`).
    pub fn undelivered(&self) -> Vec<serde_json::Value> {
        self.ndjson("undelivered.ndjson")
    }

    /// The lines of an NDJSON file in the workspace (none when it does not exist).
    pub fn ndjson(&self, name: &str) -> Vec<serde_json::Value> {
        let text = std::fs::read_to_string(self.path(name)).unwrap_or_default();
        text.lines()
            .map(|line| serde_json::from_str(line).expect("an NDJSON line is JSON"))
            .collect()
    }
}

/// Runs `fleetstream` with `args` to completion and asserts success.
pub fn fleetstream(args: &[&str]) -> Output {
    let output = Command::new(BIN)
        .args(args)
        .env("FLEETSTREAM_LOG", "warn")
        .stdin(Stdio::null())
        .output()
        .expect("run fleetstream");
    assert!(
        output.status.success(),
        "fleetstream {args:?} failed: {}\n{}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    output
}

/// `fleetstream run --config CONFIG --no-progress EXTRA…` to completion; asserts success and
/// returns the summary it printed.
pub fn run_summary(config: &Path, extra: &[&str]) -> String {
    let mut args = vec![
        "run",
        "--config",
        config.to_str().expect("utf-8 path"),
        "--no-progress",
    ];
    args.extend_from_slice(extra);
    String::from_utf8_lossy(&fleetstream(&args).stdout).into_owned()
}

/// Starts `fleetstream run --config CONFIG --no-progress EXTRA…` with stdout piped.
pub fn spawn_run(config: &Path, extra: &[&str]) -> std::process::Child {
    Command::new(BIN)
        .args(["run", "--config"])
        .arg(config)
        .arg("--no-progress")
        .args(extra)
        .env("FLEETSTREAM_LOG", "warn")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start fleetstream")
}

/// Starts `fleetstream run --config CONFIG --input -` reading records from a piped stdin (the
/// caller writes them and closes it) with stdout piped.
pub fn spawn_run_on_stdin(config: &Path) -> std::process::Child {
    Command::new(BIN)
        .args(["run", "--config"])
        .arg(config)
        .args(["--input", "-", "--no-progress"])
        .env("FLEETSTREAM_LOG", "warn")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("start fleetstream")
}

/// Writes a simulated workload with `fleetstream simulate`.
pub fn simulate(out: &Path, vehicles: u32, seconds: u32, late_fraction: f64, seed: u64) {
    fleetstream(&[
        "simulate",
        "--vehicles",
        &vehicles.to_string(),
        "--seconds",
        &seconds.to_string(),
        "--late-fraction",
        &late_fraction.to_string(),
        "--seed",
        &seed.to_string(),
        "--anomalies-per-vehicle-hour",
        "6",
        "--out",
        out.to_str().expect("utf-8 path"),
    ]);
}

/// A simulated workload (`vehicles` × `seconds`, seed 5, 2 % late) with a truncated record
/// after every `every`-th line from line `every / 2` on, so runs produce dead letters.
pub fn simulate_with_broken_lines(path: &Path, vehicles: u32, seconds: u32, every: usize) {
    simulate(path, vehicles, seconds, 0.02, 5);
    let text = std::fs::read_to_string(path).expect("read input");
    let mut out = String::with_capacity(text.len() + 1024);
    for (index, line) in text.lines().enumerate() {
        out.push_str(line);
        out.push('\n');
        if index % every == every / 2 {
            out.push_str("{\"vehicle_id\":\"broken\",\"ts\":\n");
        }
    }
    std::fs::write(path, out).expect("write input");
}

/// One rollup row: count, min, max, mean, stddev, first, last, version, is_final.
#[derive(Debug, Clone, PartialEq)]
pub struct RollupRow {
    pub count: i64,
    pub min: f64,
    pub max: f64,
    pub mean: f64,
    pub stddev: Option<f64>,
    pub first: f64,
    pub last: f64,
    pub version: i64,
    pub is_final: bool,
}

pub type RollupKey = (String, String, i64);

pub fn read_rollups(db: &Path) -> BTreeMap<RollupKey, RollupRow> {
    let connection = rusqlite::Connection::open(db).expect("open output db");
    let mut statement = connection
        .prepare(
            "SELECT vehicle_id, signal, window_start_ms, count, min, max, mean, stddev, first, last, \
             version, is_final FROM rollups WHERE rollup = 'signal_1m'",
        )
        .expect("prepare");
    let rows = statement
        .query_map([], |row| {
            Ok((
                (row.get(0)?, row.get(1)?, row.get(2)?),
                RollupRow {
                    count: row.get(3)?,
                    min: row.get(4)?,
                    max: row.get(5)?,
                    mean: row.get(6)?,
                    stddev: row.get(7)?,
                    first: row.get(8)?,
                    last: row.get(9)?,
                    version: row.get(10)?,
                    is_final: row.get(11)?,
                },
            ))
        })
        .expect("query");
    rows.map(|row| row.expect("row")).collect()
}

/// Every column of every alert, as text, sorted (for equality checks).
pub fn dump_table(db: &Path, table: &str) -> Vec<String> {
    let connection = rusqlite::Connection::open(db).expect("open output db");
    let mut statement = connection
        .prepare(&format!("SELECT * FROM {table}"))
        .expect("prepare");
    let columns = statement.column_count();
    let mut rows: Vec<String> = statement
        .query_map([], |row| {
            let mut values = Vec::new();
            for index in 0..columns {
                let value: rusqlite::types::Value = row.get(index)?;
                values.push(format!("{value:?}"));
            }
            Ok(values.join("|"))
        })
        .expect("query")
        .map(|row| row.expect("row"))
        .collect();
    rows.sort();
    rows
}

/// Brute-force rollups over a wide-JSON NDJSON file: every record counted, no streaming logic.
/// `exclude(line_offset)` skips records the caller knows are rejected.
pub fn brute_force_rollups(path: &Path, window_ms: i64) -> BTreeMap<RollupKey, RollupRow> {
    let text = std::fs::read_to_string(path).expect("read input");
    let mut samples: BTreeMap<RollupKey, Vec<(i64, usize, f64)>> = BTreeMap::new();
    for (line_number, line) in text.lines().enumerate() {
        let Ok(value) = serde_json::from_str::<serde_json::Value>(line) else {
            continue;
        };
        let (Some(vehicle), Some(ts), Some(signals)) = (
            value["vehicle_id"].as_str(),
            value["ts"].as_i64(),
            value["signals"].as_object(),
        ) else {
            continue;
        };
        let window = ts.div_euclid(window_ms) * window_ms;
        for (name, signal) in signals {
            if let Some(number) = signal.as_f64() {
                samples
                    .entry((vehicle.to_owned(), name.clone(), window))
                    .or_default()
                    .push((ts, line_number, number));
            }
        }
    }
    samples
        .into_iter()
        .map(|(key, mut values)| {
            let n = values.len() as f64;
            let mean = values.iter().map(|v| v.2).sum::<f64>() / n;
            let stddev = (values.len() > 1).then(|| {
                (values.iter().map(|v| (v.2 - mean).powi(2)).sum::<f64>() / (n - 1.0)).sqrt()
            });
            values.sort_by_key(|v| (v.0, v.1));
            let first_time = values[0].0;
            let first = values
                .iter()
                .find(|v| v.0 == first_time)
                .map(|v| v.2)
                .unwrap_or(f64::NAN);
            let last = values.last().map(|v| v.2).unwrap_or(f64::NAN);
            let row = RollupRow {
                count: values.len() as i64,
                min: values.iter().map(|v| v.2).fold(f64::INFINITY, f64::min),
                max: values.iter().map(|v| v.2).fold(f64::NEG_INFINITY, f64::max),
                mean,
                stddev,
                first,
                last,
                version: 1,
                is_final: true,
            };
            (key, row)
        })
        .collect()
}

/// Asserts that two rollup sets agree (floating point within 1e-9 relative).
pub fn assert_rollups_match(
    actual: &BTreeMap<RollupKey, RollupRow>,
    expected: &BTreeMap<RollupKey, RollupRow>,
) {
    let close = |a: f64, b: f64| (a - b).abs() <= 1e-9 * (1.0 + a.abs().max(b.abs()));
    assert_eq!(actual.len(), expected.len(), "number of rollups");
    for (key, want) in expected {
        let got = actual
            .get(key)
            .unwrap_or_else(|| panic!("missing rollup {key:?}"));
        assert_eq!(got.count, want.count, "{key:?} count");
        assert_eq!((got.min, got.max), (want.min, want.max), "{key:?} min/max");
        assert!(
            close(got.mean, want.mean),
            "{key:?} mean {} vs {}",
            got.mean,
            want.mean
        );
        match (got.stddev, want.stddev) {
            (Some(a), Some(b)) => assert!(
                close(a, b) || (a - b).abs() < 1e-7,
                "{key:?} stddev {a} vs {b}"
            ),
            (a, b) => assert_eq!(a, b, "{key:?} stddev"),
        }
        assert_eq!(
            (got.first, got.last),
            (want.first, want.last),
            "{key:?} first/last"
        );
        assert!(got.is_final, "{key:?} is final");
    }
}

/// Checkpoints committed in the state store at `state` (0 before it exists).
pub fn checkpoints(state: &Path) -> i64 {
    let Ok(connection) = rusqlite::Connection::open(state) else {
        return 0;
    };
    connection
        .query_row("SELECT COUNT(*) FROM checkpoints", [], |row| row.get(0))
        .unwrap_or(0)
}

/// Starts `fleetstream run --config CONFIG` and returns once its first checkpoint is committed.
fn spawn_until_first_checkpoint(workspace: &Workspace, config: &Path) -> std::process::Child {
    let child = spawn_run(config, &[]);
    let started = Instant::now();
    while checkpoints(&workspace.path("state.db")) == 0 {
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "no checkpoint within 60 s"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    child
}

/// Sends `signal` (`-TERM`, `-KILL`) to `child`.
fn signal(child: &std::process::Child, signal: &str) {
    let status = Command::new("kill")
        .args([signal, &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
}

/// Starts a run, sends SIGTERM once the first checkpoint is committed, waits for a clean exit.
pub fn run_and_terminate(workspace: &Workspace, config: &Path) -> String {
    let child = spawn_until_first_checkpoint(workspace, config);
    signal(&child, "-TERM");
    let output = child.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(
        output.status.success(),
        "exit {:?}\n{stdout}\n{}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        stdout.contains("shutdown requested"),
        "the run must stop mid-file:\n{stdout}"
    );
    stdout
}

/// Starts a run and kills it (SIGKILL: no flush, no final checkpoint) once the first checkpoint
/// is committed; asserts it died of the signal rather than finishing first.
pub fn run_and_kill(workspace: &Workspace, config: &Path) {
    let child = spawn_until_first_checkpoint(workspace, config);
    signal(&child, "-KILL");
    let output = child.wait_with_output().unwrap();
    assert_eq!(
        output.status.code(),
        None,
        "the run must die of SIGKILL mid-file: {:?}",
        output.status
    );
}

/// An `[[anomaly]]` section for tests (a small forest over three drivetrain signals); `extra`
/// adds keys.
pub fn anomaly_section(extra: &str) -> String {
    format!(
        r#"
[[anomaly]]
name = "drivetrain"
signals = ["speed_kmh", "engine_rpm", "coolant_temp_c"]
trees = 15
sample_size = 32
shingle_size = 2
{extra}
"#
    )
}

/// Asserts two table dumps are equal, naming the first difference instead of printing both.
pub fn assert_same_rows(actual: &[String], expected: &[String], what: &str) {
    if let Some(index) = (0..actual.len().min(expected.len())).find(|&i| actual[i] != expected[i]) {
        panic!(
            "{what}: row {index} differs\n  got      {}\n  expected {}",
            actual[index], expected[index]
        );
    }
    assert_eq!(actual.len(), expected.len(), "{what}: row count");
}
