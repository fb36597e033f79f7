//! The SQLite sink alone: rollup rows upserted per second into a fresh database, flushed
//! (committed with `synchronous=FULL`) at the end, as W1 writes them (one window's rows of
//! 1,000 vehicles × 7–8 signals in group-key order).

#![allow(missing_docs)] // criterion_group! generates undocumented items

/// The allocator the `fleetstream` binary uses, so the figures match it.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

use std::sync::Arc;

use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use processor::pipeline::output::Output;
use processor::sinks::sqlite::SqliteSink;
use processor::sinks::Sink;

const SIGNALS: [&str; 8] = [
    "battery_voltage",
    "coolant_temp_c",
    "engine_rpm",
    "fuel_rate_lph",
    "lat",
    "lon",
    "oil_pressure_kpa",
    "speed_kmh",
];

/// `windows` one-minute windows of 1,000 vehicles × 8 signals, in the order a rollup emits them.
fn rollups(windows: i64) -> Vec<Output> {
    let name: Arc<str> = Arc::from("signal_1m");
    let mut outputs = Vec::new();
    for window in 0..windows {
        let start = 1_767_225_600_000 + window * 60_000;
        for vehicle in 0..1000 {
            for (index, signal) in SIGNALS.iter().enumerate() {
                let mut summary = windows::SummaryStats::of(start, 10.0 + index as f64);
                summary.merge(&windows::SummaryStats::of(
                    start + 59_000,
                    12.5 + vehicle as f64,
                ));
                outputs.push(benches::minute_rollup(
                    &name, vehicle, signal, start, summary,
                ));
            }
        }
    }
    outputs
}

fn write(c: &mut Criterion) {
    let outputs = rollups(3);
    let mut group = c.benchmark_group("sqlite_sink");
    group.sample_size(10);
    group.throughput(Throughput::Elements(outputs.len() as u64));
    group.bench_function("rollup_upserts", |b| {
        b.iter_batched(
            || {
                let dir = tempfile::tempdir().expect("a temporary directory");
                let sink = SqliteSink::open(&dir.path().join("bench.db"), 50_000)
                    .expect("the database opens");
                (dir, sink)
            },
            |(dir, mut sink)| {
                sink.write(&outputs).expect("rows are written");
                sink.flush().expect("rows are committed");
                (dir, sink)
            },
            BatchSize::PerIteration,
        )
    });
    group.finish();
}

criterion_group!(benches, write);
criterion_main!(benches);
