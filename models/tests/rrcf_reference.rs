//! Our forest against `rrcf`, the paper's reference implementation (Python, installed by
//! `scripts/test`): on a fixed series with injected anomalies, both run as a sliding window with
//! the same tree count, sample size and shingle, every anomaly is in the top 1 % of both score
//! series, and ours agree with rrcf's in rank as much as two seeds of rrcf agree with each other.
//!
//! Ordinary points are noisy in any random cut forest, and two noisy estimates cannot correlate
//! more than the geometric mean of their self-correlations. Our forest is the steadier of the two
//! (two seeds of ours correlate more than two seeds of rrcf), so the bound on ours-vs-rrcf is
//! set by rrcf's own noise; the test prints all three figures.
//!
//! The test fails, it does not skip, when Python or rrcf is missing: run it through
//! `scripts/test`, or set `REFERENCE_PYTHON` to an interpreter that has `tests/requirements.txt`.

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::io::Write;
use std::process::{Command, Stdio};

use models::forest::{ForestConfig, RandomCutForest};

const TREES: usize = 30;
const SAMPLE: usize = 64;
const SHINGLE: usize = 4;
const LENGTH: usize = 2000;
const SPIKES: [usize; 3] = [700, 1200, 1700];

/// A sine with heavy-tailed deterministic noise (so ordinary points differ in how unusual they
/// are, which both forests should rank alike) and spikes.
fn series() -> Vec<f32> {
    let mut state = 0x9E37_79B9_7F4A_7C15u64;
    (0..LENGTH)
        .map(|i| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            let uniform = (state >> 40) as f32 / (1u64 << 24) as f32 - 0.5;
            let noise = 4.0 * (2.0 * uniform).powi(3);
            let spike = if SPIKES.contains(&i) { 20.0 } else { 0.0 };
            (i as f32 * 0.15).sin() * 10.0 + noise + spike
        })
        .collect()
}

/// Our scores; `time_decay` 0.5 keeps each tree's sample to about the last `SAMPLE` points, the
/// sliding window rrcf runs.
fn ours(values: &[f32], seed: u64) -> Vec<f64> {
    let mut forest = RandomCutForest::new(ForestConfig {
        input_dimensions: 1,
        num_trees: TREES,
        sample_size: SAMPLE,
        shingle_size: SHINGLE,
        time_decay: 0.5,
        seed,
    });
    values.iter().map(|v| forest.process(&[*v]).score).collect()
}

fn rrcf(values: &[f32], seed: u64) -> Vec<f64> {
    let python = std::env::var("REFERENCE_PYTHON").unwrap_or_else(|_| "python3".to_owned());
    let script = &format!("{}/../tests/rrcf_reference.py", manifest_dir());
    let mut child = Command::new(&python)
        .arg(script)
        .args([
            "--trees",
            &TREES.to_string(),
            "--tree-size",
            &SAMPLE.to_string(),
        ])
        .args([
            "--shingle",
            &SHINGLE.to_string(),
            "--seed",
            &seed.to_string(),
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| {
            panic!("cannot run {python}: {e}; run scripts/test, which installs rrcf")
        });
    let input: String = values.iter().map(|v| format!("{v}\n")).collect();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(input.as_bytes())
        .unwrap();
    let output = child.wait_with_output().unwrap();
    assert!(
        output.status.success(),
        "rrcf reference failed (is rrcf installed for {python}? scripts/test installs it): {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout)
        .unwrap()
        .lines()
        .map(|line| line.parse().unwrap())
        .collect()
}

/// Ranks with ties averaged.
fn ranks(values: &[f64]) -> Vec<f64> {
    let mut order: Vec<usize> = (0..values.len()).collect();
    order.sort_by(|&a, &b| values[a].total_cmp(&values[b]));
    let mut ranks = vec![0.0; values.len()];
    let mut start = 0;
    while start < order.len() {
        let mut end = start;
        while end + 1 < order.len() && values[order[end + 1]] == values[order[start]] {
            end += 1;
        }
        for &i in &order[start..=end] {
            ranks[i] = (start + end) as f64 / 2.0;
        }
        start = end + 1;
    }
    ranks
}

/// Spearman's rank correlation.
fn spearman(a: &[f64], b: &[f64]) -> f64 {
    let (ra, rb) = (ranks(a), ranks(b));
    let n = ra.len() as f64;
    let (ma, mb) = (ra.iter().sum::<f64>() / n, rb.iter().sum::<f64>() / n);
    let covariance: f64 = ra.iter().zip(&rb).map(|(x, y)| (x - ma) * (y - mb)).sum();
    let va: f64 = ra.iter().map(|x| (x - ma).powi(2)).sum();
    let vb: f64 = rb.iter().map(|y| (y - mb).powi(2)).sum();
    covariance / (va * vb).sqrt()
}

/// The indices of the top 1 % of `scores`.
fn top_percent(scores: &[f64]) -> Vec<usize> {
    let mut order: Vec<usize> = (0..scores.len()).collect();
    order.sort_by(|&a, &b| scores[b].total_cmp(&scores[a]));
    order.truncate(scores.len() / 100);
    order
}

#[test]
fn scores_agree_with_the_rrcf_reference_implementation() {
    let values = series();
    let reference = rrcf(&values, 7);
    let reference_again = rrcf(&values, 8);
    assert_eq!(reference.len(), values.len());
    let first = ours(&values, 1);
    let second = ours(&values, 2);
    // Compare once both have a full window.
    let scored = 4 * SAMPLE..LENGTH;
    let ours_vs_ours = spearman(&first[scored.clone()], &second[scored.clone()]);
    let rrcf_vs_rrcf = spearman(&reference[scored.clone()], &reference_again[scored.clone()]);
    let ours_vs_rrcf = spearman(&first[scored.clone()], &reference[scored.clone()]);
    eprintln!(
        "rank correlation: ours seed 1 vs 2 = {ours_vs_ours:.3}, rrcf seed 7 vs 8 = \
         {rrcf_vs_rrcf:.3}, ours vs rrcf = {ours_vs_rrcf:.3}"
    );
    for (name, scores) in [("ours", &first), ("rrcf", &reference)] {
        let top = top_percent(&scores[scored.clone()]);
        for spike in SPIKES {
            // The anomaly is found when a point whose shingle holds it ranks in the top 1 %.
            assert!(
                (spike..spike + SHINGLE).any(|i| top.contains(&(i - scored.start))),
                "{name}: the anomaly at {spike} is not in the top 1 %"
            );
        }
    }
    assert!(
        ours_vs_ours >= rrcf_vs_rrcf,
        "ours is the noisier forest: {ours_vs_ours:.3} < {rrcf_vs_rrcf:.3}"
    );
    assert!(
        ours_vs_rrcf >= rrcf_vs_rrcf - 0.03,
        "ours vs rrcf {ours_vs_rrcf:.3} is well below rrcf vs itself {rrcf_vs_rrcf:.3}"
    );
}

/// The crate's directory at run time (cargo sets it for test runs), not at build time: a test
/// binary reused from another checkout must read this checkout's files.
fn manifest_dir() -> String {
    std::env::var("CARGO_MANIFEST_DIR").expect("CARGO_MANIFEST_DIR is set by cargo test")
}
