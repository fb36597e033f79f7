//! Dead letters to S3 against moto server: the objects hold exactly the lines the file sink
//! writes, in order; a replay rewrites the same objects with the same bytes; a crash and restart
//! leaves exactly what an uninterrupted run leaves; an outage loses nothing and commits no
//! position early.

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod common;

use common::emulators::{moto_url, run_through_outage, FaultProxy, S3Bucket};
use common::{run_and_kill, run_summary, simulate_with_broken_lines, Workspace};

/// (key without `prefix`, body) of every object under `prefix`, in object-number order.
fn objects_under(bucket: &S3Bucket, prefix: &str) -> Vec<(String, String)> {
    let mut objects: Vec<(String, String)> = bucket
        .keys(prefix)
        .into_iter()
        .map(|key| {
            let body = bucket.text(&key);
            (key.strip_prefix(prefix).unwrap().to_owned(), body)
        })
        .collect();
    objects.sort_by_key(|(key, _)| key.rsplit('/').next().unwrap().to_owned());
    objects
}

/// Keys continuing the workspace config's `[dead_letter]` table, then `[aws]`.
fn s3_section(endpoint: &str, bucket: &str, prefix: &str) -> String {
    format!(
        r#"target = "s3"
s3 = {{ bucket = "{bucket}", prefix = "{prefix}", endpoint_url = "{endpoint}", max_object_bytes = 4096, retry = {{ initial_backoff = "20ms", max_backoff = "200ms", budget = "2m" }} }}

[aws]
region = "us-east-1"
"#
    )
}

/// The dead-letter file an uninterrupted run with the file target writes for `input`.
fn expected_lines(input: &std::path::Path) -> String {
    let workspace = Workspace::new();
    let config = workspace.config(input, "");
    run_summary(&config, &[]);
    std::fs::read_to_string(workspace.path("dead.ndjson")).unwrap()
}

fn concatenated(objects: &[(String, String)]) -> String {
    objects.iter().map(|(_, body)| body.as_str()).collect()
}

#[test]
fn objects_hold_the_file_sinks_lines_and_a_replay_or_a_crash_changes_nothing() {
    let bucket = S3Bucket::create("dead-letters-");
    let workspace = Workspace::new();
    let input = workspace.path("fleet.ndjson");
    simulate_with_broken_lines(&input, 150, 1800, 2_000);
    let expected = expected_lines(&input);
    assert!(expected.lines().count() > 100);

    let config = workspace.config(&input, &s3_section(&moto_url(), &bucket.name, "run/"));
    let summary = run_summary(&config, &[]);
    assert!(summary.contains("dead_letter_s3"), "{summary}");
    let objects = objects_under(&bucket, "run/");
    assert!(objects.len() > 3, "objects close at max_object_bytes");
    for (key, body) in &objects {
        assert!(body.len() <= 4096 || body.lines().count() == 1, "{key}");
        let dated = key.len() == "2026/01/01/0000000.ndjson".len()
            && key.chars().filter(|c| *c == '/').count() == 3;
        assert!(dated || key.starts_with("undated/"), "{key}");
    }
    assert_eq!(concatenated(&objects), expected);

    // The same input again from the start: the same objects with the same bytes.
    run_summary(&config, &["--fresh"]);
    assert_eq!(objects_under(&bucket, "run/"), objects);

    // Killed after a checkpoint and restarted: the object open at the checkpoint is read back
    // and cut, so the result is exactly the uninterrupted run's.
    let crashed = Workspace::new();
    let config = crashed.config(&input, &s3_section(&moto_url(), &bucket.name, "crash/"));
    run_and_kill(&crashed, &config);
    assert!(run_summary(&config, &[]).contains("resumed from"));
    assert_eq!(objects_under(&bucket, "crash/"), objects);
}

#[test]
fn an_outage_loses_nothing_and_commits_no_position_early() {
    let bucket = S3Bucket::create("dead-letters-");
    let workspace = Workspace::new();
    let input = workspace.path("fleet.ndjson");
    simulate_with_broken_lines(&input, 20, 900, 300);
    let expected = expected_lines(&input);
    let mut proxy = FaultProxy::start(&moto_url());
    let config = workspace.config(&input, &s3_section(&proxy.url(), &bucket.name, "outage/"));
    run_through_outage(&workspace, &config, &[], &mut proxy);
    assert_eq!(concatenated(&objects_under(&bucket, "outage/")), expected);
}
