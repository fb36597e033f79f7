//! The window engine alone (decode excluded): W1-style records through the default rollup
//! (1-minute tumbling windows per vehicle and signal), and through a rollup with quantile
//! sketches on. Target: ≥ 1 M records/s on one core.

#![allow(missing_docs)] // criterion_group! generates undocumented items

/// The allocator the `fleetstream` binary uses, so the figures match it.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use edge::{FleetSimulator, SimulationSpec};
use processor::config::{default_rollups, RollupConfig};
use processor::pipeline::rollups::RollupOperator;
use telemetry::Record;

fn records() -> Vec<Record> {
    let spec = SimulationSpec {
        vehicles: 1000,
        seconds: 120,
        ..SimulationSpec::default()
    };
    FleetSimulator::new(spec).collect()
}

fn run(config: &RollupConfig, records: &[Record]) -> usize {
    let mut rollup = RollupOperator::new(config, None).expect("valid rollup");
    let fleets = processor::pipeline::operators::FleetOf::default();
    let mut out = Vec::new();
    let mut max_seen = i64::MIN;
    for (index, record) in records.iter().enumerate() {
        max_seen = max_seen.max(record.event_time_ms);
        let watermark = Some(max_seen - 10_000);
        black_box(rollup.add(record, watermark));
        if index % 1000 == 999 {
            rollup.advance(watermark, 0, &fleets, &mut out);
        }
    }
    rollup.advance(Some(i64::MAX / 2), 0, &fleets, &mut out);
    out.len()
}

/// Prints the state held per open (vehicle, signal) window, measured mid-stream.
fn report_memory(config: &RollupConfig, records: &[Record]) {
    let mut rollup = RollupOperator::new(config, None).expect("valid rollup");
    let half = &records[..records.len() / 2];
    let mut max_seen = i64::MIN;
    for record in half {
        max_seen = max_seen.max(record.event_time_ms);
        rollup.add(record, Some(max_seen - 10_000));
    }
    let entries = rollup.open_entries().max(1);
    eprintln!(
        "window_engine/{}: {} open windows, {} bytes of state each",
        config.name,
        entries,
        rollup.state_bytes() / entries
    );
}

fn engine(c: &mut Criterion) {
    let records = records();
    let mut group = c.benchmark_group("window_engine");
    group.throughput(Throughput::Elements(records.len() as u64));
    group.sample_size(10);
    let plain = default_rollups().remove(0);
    report_memory(&plain, &records);
    group.bench_function("tumbling_1m_vehicle_signal", |b| {
        b.iter(|| run(&plain, &records))
    });
    let mut sketches = plain.clone();
    sketches.aggregates.quantiles = vec![0.5, 0.9, 0.95, 0.99];
    sketches.name = "signal_1m_quantiles".to_owned();
    report_memory(&sketches, &records);
    group.bench_function("tumbling_1m_vehicle_signal_quantiles", |b| {
        b.iter(|| run(&sketches, &records))
    });
    group.finish();
}

criterion_group!(benches, engine);
criterion_main!(benches);
