//! Checkpoints and model snapshots in S3 (moto server): a run killed with SIGKILL resumes from
//! the checkpoint object and ends with exactly what an uninterrupted run writes; superseded
//! model versions are deleted; `--fresh` empties the prefix.

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod common;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use common::emulators::{moto_url, S3Bucket};
use common::{
    anomaly_section, assert_same_rows, dump_table, run_summary, simulate, spawn_run, Workspace,
};

/// The workspace's config with `[state]` in S3.
fn s3_config(workspace: &Workspace, input: &std::path::Path, bucket: &str) -> std::path::PathBuf {
    let config = workspace.config(input, &anomaly_section("max_models = 10"));
    let text = std::fs::read_to_string(&config).unwrap();
    let local = format!(
        "[state]\npath = \"{}\"\n",
        workspace.path("state.db").display()
    );
    assert!(text.contains(&local));
    let remote = format!(
        "[state]\ntarget = \"s3\"\ns3 = {{ bucket = \"{bucket}\", prefix = \"fleet/\", endpoint_url = \"{}\" }}\n[aws]\nregion = \"us-east-1\"\n",
        moto_url()
    );
    std::fs::write(&config, text.replace(&local, &remote)).unwrap();
    config
}

#[test]
fn a_run_killed_mid_file_resumes_from_s3_and_ends_like_an_uninterrupted_run() {
    let reference = Workspace::new();
    let input = reference.path("fleet.ndjson");
    simulate(&input, 20, 1200, 0.02, 11);
    run_summary(
        &reference.config(&input, &anomaly_section("max_models = 10")),
        &[],
    );
    let tables = ["rollups", "alerts", "anomalies"];
    let expected: Vec<Vec<String>> = tables
        .iter()
        .map(|t| dump_table(&reference.db(), t))
        .collect();
    assert!(expected.iter().all(|rows| !rows.is_empty()));

    let bucket = S3Bucket::create("state-");
    let crashed = Workspace::new();
    let config = s3_config(&crashed, &input, &bucket.name);
    let mut child = spawn_run(&config, &[]);
    let started = Instant::now();
    while !bucket
        .keys("fleet/checkpoint")
        .contains(&"fleet/checkpoint".to_owned())
    {
        if let Some(status) = child.try_wait().unwrap() {
            panic!("the run ended before its first checkpoint: {status:?}");
        }
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "no checkpoint in S3 within 60 s"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    child.kill().unwrap();
    let status = child.wait().unwrap();
    assert_eq!(
        status.code(),
        None,
        "killed mid-file, not finished: {status:?}"
    );
    assert!(
        !crashed.path("state.db").exists(),
        "no local state file with target = \"s3\""
    );

    let summary = run_summary(&config, &[]);
    assert!(summary.contains("resumed from"), "{summary}");
    assert!(
        summary.contains(&format!("s3://{}/fleet/", bucket.name)),
        "{summary}"
    );
    for (table, rows) in tables.iter().zip(&expected) {
        assert_same_rows(&dump_table(&crashed.db(), table), rows, table);
    }

    // One committed version per model is kept; superseded ones were deleted.
    let mut versions: BTreeMap<String, usize> = BTreeMap::new();
    for key in bucket.keys("fleet/models/") {
        let (model, _) = key.rsplit_once('/').unwrap();
        *versions.entry(model.to_owned()).or_default() += 1;
    }
    assert_eq!(versions.len(), 20, "a model per vehicle: {versions:?}");
    assert!(versions.values().all(|n| *n <= 2), "{versions:?}");

    // --fresh starts over: the prefix is emptied first, and the result is the same.
    let summary = run_summary(&config, &["--fresh"]);
    assert!(!summary.contains("resumed from"), "{summary}");
    for (table, rows) in tables.iter().zip(&expected) {
        assert_same_rows(&dump_table(&crashed.db(), table), rows, table);
    }
}
