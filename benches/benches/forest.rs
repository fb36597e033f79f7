//! The random cut forest alone, score-then-update on one thread after a warm-up, for the four
//! settings of the forest issue: (a) 1 signal, shingle 1, 100 trees × 256; (b) 1 signal, shingle
//! 8, 100 × 256; (c) 6 signals, shingle 4, 50 × 256; (d) 1 signal, shingle 4, 30 × 64. Input: a
//! noisy sine with rare spikes; time decay 1 / (10 × sample size), and each setting again with
//! KDA's default timeDecay of 100,000 (`_kda_decay`). Bytes per forest at steady state (after
//! 10 × sample size inputs) are printed before each measurement.

#![allow(missing_docs)] // criterion_group! generates undocumented items

/// The allocator the `fleetstream` binary uses, so the figures match it.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use models::forest::{ForestConfig, RandomCutForest};

const POINTS: usize = 2000;

/// `length` inputs of `signals` values: phase-shifted noisy sines, a spike every 997 inputs.
fn inputs(length: usize, signals: usize) -> Vec<Vec<f32>> {
    let mut state = 0x9E37_79B9_7F4A_7C15u64;
    let mut noise = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        (state >> 40) as f32 / (1u64 << 24) as f32 - 0.5
    };
    (0..length)
        .map(|i| {
            (0..signals)
                .map(|s| {
                    let spike = if i % 997 == 0 { 30.0 } else { 0.0 };
                    (i as f32 * 0.1 + s as f32).sin() * 10.0 + noise() + spike
                })
                .collect()
        })
        .collect()
}

/// The time decay to use for a sample size.
type DecayFor = fn(usize) -> f64;

fn forest(c: &mut Criterion) {
    let settings = [
        ("a_1sig_sh1_100x256", 1, 1, 100, 256),
        ("b_1sig_sh8_100x256", 1, 8, 100, 256),
        ("c_6sig_sh4_50x256", 6, 4, 50, 256),
        ("d_1sig_sh4_30x64", 1, 4, 30, 64),
    ];
    let mut group = c.benchmark_group("forest");
    group.sample_size(10);
    // The time decay, 1 / (10 × sample size), then KDA's default timeDecay = 100,000
    // (a decay of 1e-5 per input: nearly a uniform sample of the whole stream).
    let decays: [(&str, DecayFor); 2] = [
        ("", |sample| 1.0 / (10.0 * sample as f64)),
        ("_kda_decay", |_| 1e-5),
    ];
    for ((name, signals, shingle, trees, sample), (suffix, decay)) in settings
        .into_iter()
        .flat_map(|setting| decays.map(|decay| (setting, decay)))
    {
        let name = format!("{name}{suffix}");
        let config = ForestConfig {
            input_dimensions: signals,
            num_trees: trees,
            sample_size: sample,
            shingle_size: shingle,
            time_decay: decay(sample),
            seed: 42,
        };
        let warm_up = inputs(10 * sample + shingle, signals);
        let mut warmed = RandomCutForest::new(config);
        for values in &warm_up {
            warmed.process(values);
        }
        eprintln!(
            "forest {name}: {} bytes per forest at steady state ({} stored points)",
            warmed.heap_bytes(),
            warmed.stored_points()
        );
        let measured = inputs(POINTS, signals);
        group.throughput(Throughput::Elements(POINTS as u64));
        group.bench_function(&name, |b| {
            b.iter_batched(
                || warmed.clone(),
                |mut forest| {
                    for values in &measured {
                        black_box(forest.process(values));
                    }
                    forest
                },
                BatchSize::LargeInput,
            );
        });
    }
    group.finish();
}

criterion_group!(benches, forest);
criterion_main!(benches);
