//! Detector models alone: 10 copies of the coolant model per vehicle over W1-style records.
//! Throughput is counted in input evaluations (records × models); target ≥ 2 M/s on one core.

#![allow(missing_docs)] // criterion_group! generates undocumented items

/// The allocator the `fleetstream` binary uses, so the figures match it.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use edge::{FleetSimulator, SimulationSpec};
use models::detector::{load_detector_model, DetectorEngine};
use telemetry::Record;

const MODELS: usize = 10;

fn detectors(c: &mut Criterion) {
    let records: Vec<Record> = FleetSimulator::new(SimulationSpec {
        vehicles: 1000,
        seconds: 60,
        anomalies_per_vehicle_hour: 60.0,
        ..SimulationSpec::default()
    })
    .collect();
    let text = include_str!("../../config/detectors/coolant.json");
    let engines: Vec<DetectorEngine> = (0..MODELS)
        .map(|index| {
            let (model, report) =
                load_detector_model(&text.replace("CoolantMonitor", &format!("Coolant{index}")));
            DetectorEngine::new(model.unwrap_or_else(|| panic!("{report}")), "Telemetry")
        })
        .collect();
    let mut group = c.benchmark_group("detectors");
    group.throughput(Throughput::Elements((records.len() * MODELS) as u64));
    group.sample_size(10);
    group.bench_function("coolant_model_x10_per_vehicle", |b| {
        b.iter(|| {
            let mut engines = engines.clone();
            let mut outputs = 0;
            let mut max_seen = i64::MIN;
            for (index, record) in records.iter().enumerate() {
                max_seen = max_seen.max(record.event_time_ms);
                let shared = std::sync::Arc::new(record.clone());
                for engine in &mut engines {
                    engine.offer_shared(std::sync::Arc::clone(&shared));
                }
                if index % 1000 == 999 {
                    for engine in &mut engines {
                        outputs += engine.advance_watermark(max_seen - 10_000).len();
                    }
                }
            }
            for engine in &mut engines {
                outputs += engine.advance_watermark(i64::MAX).len();
            }
            black_box(outputs)
        })
    });
    group.finish();
}

criterion_group!(benches, detectors);
criterion_main!(benches);
