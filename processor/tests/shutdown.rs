//! SIGTERM mid-file, restart, and the final output equals an uninterrupted run.

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod common;

use std::path::Path;

use common::{
    dump_table, read_rollups, run_and_terminate, run_summary, simulate_with_broken_lines, Workspace,
};

/// Input with a few broken lines so dead letters are part of the comparison.
fn make_input(path: &Path) {
    simulate_with_broken_lines(path, 150, 1800, 50_000);
}

/// An uninterrupted run over a fresh input; returns its workspace and the input path.
fn reference_run() -> (Workspace, std::path::PathBuf) {
    let reference = Workspace::new();
    let input = reference.path("fleet.ndjson");
    make_input(&input);
    let config = reference.config(&input, "");
    run_summary(&config, &[]);
    (reference, input)
}

#[test]
fn sigterm_then_restart_equals_an_uninterrupted_run() {
    let (reference, input) = reference_run();

    let interrupted = Workspace::new();
    let config = interrupted.config(&input, "");
    run_and_terminate(&interrupted, &config);
    let partial_rollups = read_rollups(&interrupted.db()).len();
    assert!(run_summary(&config, &[]).contains("resumed from"));

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
    run_summary(&config, &[]);

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
