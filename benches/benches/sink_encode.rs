//! Encode cost per record of the remote sinks, in-process: an output rollup to an InfluxDB line,
//! and to a Timestream multi-measure record (no I/O).

#![allow(missing_docs)]

use std::sync::Arc;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use processor::pipeline::output::Output;
use processor::sinks::influxdb::encode_line;
use processor::sinks::series::point_of;
use processor::sinks::timestream::PendingRecord;

fn rollups(n: usize) -> Vec<Output> {
    let name: Arc<str> = Arc::from("signal_1m");
    (0..n)
        .map(|i| {
            let mut summary = windows::SummaryStats::of(0, 10.0 + i as f64);
            summary.merge(&windows::SummaryStats::of(59_000, 12.5));
            let start = 1_767_225_600_000 + (i as i64 / 1000) * 60_000;
            benches::minute_rollup(&name, i % 1000, "speed_kmh", start, summary)
        })
        .collect()
}

fn encode(c: &mut Criterion) {
    let outputs = rollups(10_000);
    let mut group = c.benchmark_group("sink_encode");
    group.throughput(Throughput::Elements(outputs.len() as u64));
    group.bench_function("influxdb_line", |b| {
        let mut text = String::with_capacity(4 << 20);
        b.iter(|| {
            text.clear();
            for output in &outputs {
                if let Some(point) = point_of(output) {
                    encode_line(&point, &mut text);
                }
            }
            text.len()
        });
    });
    group.bench_function("timestream_record", |b| {
        b.iter(|| {
            let records: Vec<_> = outputs
                .iter()
                .filter_map(point_of)
                .map(|point| PendingRecord::new(point).to_record(&[]))
                .collect();
            records.len()
        });
    });
    group.finish();
}

criterion_group!(benches, encode);
criterion_main!(benches);
