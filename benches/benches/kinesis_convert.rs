//! In-process cost per record of the Kinesis source: turning `GetRecords` results into pipeline
//! frames (plain JSON records, and KPL aggregates of 20 user records), and the same followed by
//! decoding every frame — what a shard reader and the decode stage spend per record, without the
//! network.

#![allow(missing_docs)] // criterion_group! generates undocumented items

/// The allocator the `fleetstream` binary uses, so the figures match it.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use processor::sources::kinesis::convert::RecordConverter;
use processor::sources::kinesis::kpl::{aggregate, SubRecord};
use processor::sources::kinesis::metrics::KinesisMetrics;
use processor::sources::kinesis::reader::StartAt;
use telemetry::{DecodeOptions, Decoder, Format};

const RECORDS: usize = 10_000;

fn convert(c: &mut Criterion) {
    let payload = benches::wide_ndjson(RECORDS);
    let lines: Vec<&[u8]> = payload
        .split(|b| *b == b'\n')
        .filter(|l| !l.is_empty())
        .collect();
    assert_eq!(lines.len(), RECORDS);
    let sequences: Vec<String> = (0..lines.len())
        .map(|i| format!("4968061651783779994280423895028648130748043693437{i:07}"))
        .collect();
    let plain: Vec<(&str, &[u8])> = sequences
        .iter()
        .map(String::as_str)
        .zip(lines.iter().copied())
        .collect();
    let aggregates: Vec<Vec<u8>> = lines
        .chunks(20)
        .map(|chunk| {
            let subs: Vec<SubRecord> = chunk
                .iter()
                .enumerate()
                .map(|(i, data)| SubRecord {
                    partition_key: format!("veh-{i:06}"),
                    explicit_hash_key: None,
                    data: data.to_vec(),
                })
                .collect();
            aggregate(&subs)
        })
        .collect();
    let packed: Vec<(&str, &[u8])> = sequences
        .iter()
        .map(String::as_str)
        .zip(aggregates.iter().map(Vec::as_slice))
        .collect();
    let metrics = KinesisMetrics::default();
    let converter = RecordConverter {
        shard: "shardId-000000000000",
        hash_key_range: Some((0, u128::MAX)),
        max_record_bytes: 1 << 20,
        metrics: &metrics,
    };
    let start = StartAt::TrimHorizon;
    let decoder = Decoder::new(Format::Wide, DecodeOptions::default());

    let mut group = c.benchmark_group("kinesis_convert");
    group.throughput(Throughput::Elements(RECORDS as u64));
    group.bench_function("plain_records", |b| {
        b.iter(|| {
            converter
                .convert(plain.iter().copied(), &start)
                .frames
                .len()
        })
    });
    group.bench_function("kpl_aggregates_of_20", |b| {
        b.iter(|| {
            converter
                .convert(packed.iter().copied(), &start)
                .frames
                .len()
        })
    });
    group.bench_function("plain_records_then_decode", |b| {
        let mut outcomes = Vec::with_capacity(RECORDS);
        b.iter(|| {
            outcomes.clear();
            let converted = converter.convert(plain.iter().copied(), &start);
            for frame in &converted.frames {
                decoder.decode_frame(frame, 0, &mut outcomes);
            }
            assert_eq!(outcomes.len(), RECORDS);
            outcomes.len()
        })
    });
    group.finish();
}

criterion_group!(benches, convert);
criterion_main!(benches);
