//! SIGTERM mid-file, restart, and the final output equals an uninterrupted run.

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod common;

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{dump_table, fleetstream, read_rollups, simulate, Workspace};

/// Input with a few broken lines so dead letters are part of the comparison.
fn make_input(path: &Path) {
    simulate(path, 150, 1800, 0.02, 5);
    let text = std::fs::read_to_string(path).unwrap();
    let mut out = String::with_capacity(text.len() + 1024);
    for (index, line) in text.lines().enumerate() {
        out.push_str(line);
        out.push('\n');
        if index % 50_000 == 25_000 {
            out.push_str("{\"vehicle_id\":\"broken\",\"ts\":\n");
        }
    }
    std::fs::write(path, out).unwrap();
}

fn checkpoints(state: &Path) -> i64 {
    let Ok(connection) = rusqlite::Connection::open(state) else {
        return 0;
    };
    connection
        .query_row("SELECT COUNT(*) FROM checkpoints", [], |row| row.get(0))
        .unwrap_or(0)
}

/// Starts a run, sends SIGTERM once the first checkpoint is committed, waits for a clean exit.
fn run_and_terminate(workspace: &Workspace, config: &Path) -> String {
    let child = Command::new(common::BIN)
        .args(["run", "--config", config.to_str().unwrap(), "--no-progress"])
        .env("FLEETSTREAM_LOG", "warn")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let started = Instant::now();
    while checkpoints(&workspace.path("state.db")) == 0 {
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "no checkpoint within 60 s"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
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

/// An uninterrupted run over a fresh input; returns its workspace and the input path.
fn reference_run() -> (Workspace, std::path::PathBuf) {
    let reference = Workspace::new();
    let input = reference.path("fleet.ndjson");
    make_input(&input);
    let config = reference.config(&input, "");
    fleetstream(&["run", "--config", config.to_str().unwrap(), "--no-progress"]);
    (reference, input)
}

#[test]
fn sigterm_then_restart_equals_an_uninterrupted_run() {
    let (reference, input) = reference_run();

    let interrupted = Workspace::new();
    let config = interrupted.config(&input, "");
    run_and_terminate(&interrupted, &config);
    let partial_rollups = read_rollups(&interrupted.db()).len();
    let output = fleetstream(&["run", "--config", config.to_str().unwrap(), "--no-progress"]);
    assert!(String::from_utf8_lossy(&output.stdout).contains("resumed from"));

    let complete_rollups = dump_table(&reference.db(), "rollups");
    assert!(
        partial_rollups < complete_rollups.len(),
        "the first run stopped early"
    );
    assert_eq!(dump_table(&interrupted.db(), "rollups"), complete_rollups);
    assert_eq!(
        dump_table(&interrupted.db(), "alerts"),
        dump_table(&reference.db(), "alerts")
    );
    let dead = std::fs::read(interrupted.path("dead.ndjson")).unwrap();
    assert_eq!(dead, std::fs::read(reference.path("dead.ndjson")).unwrap());
    assert_eq!(reference.dead_letters().len(), 5);
}

#[test]
fn emit_partial_writes_partial_windows_that_the_restart_completes() {
    let (reference, input) = reference_run();

    let interrupted = Workspace::new();
    let config = interrupted.config(&input, "[shutdown]\nopen_windows = \"emit_partial\"\n");
    run_and_terminate(&interrupted, &config);
    let after_stop = read_rollups(&interrupted.db());
    assert!(
        after_stop.values().any(|row| !row.is_final),
        "partial windows were written"
    );
    fleetstream(&["run", "--config", config.to_str().unwrap(), "--no-progress"]);

    let expected = read_rollups(&reference.db());
    let mut actual = read_rollups(&interrupted.db());
    assert!(actual.values().all(|row| row.is_final));
    assert!(
        actual.values().any(|row| row.version > 1),
        "completed windows carry a higher version"
    );
    for row in actual.values_mut() {
        row.version = 1;
    }
    assert_eq!(actual, expected);
}
