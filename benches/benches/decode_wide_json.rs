//! Decoder throughput on wide JSON (target ≥ 300 MB/s per core), plus the frame splitter alone.

#![allow(missing_docs)] // criterion_group! generates undocumented items

/// The allocator the `fleetstream` binary uses, so the figures match it.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use std::hint::black_box;
use telemetry::{DecodeOptions, Decoder, Format, FrameScanner};

fn decode(c: &mut Criterion) {
    let payload = benches::wide_ndjson(20_000);
    let decoder = Decoder::new(Format::Wide, DecodeOptions::default());
    let mut group = c.benchmark_group("decode");
    group.throughput(Throughput::Bytes(payload.len() as u64));
    group.bench_function("wide_json_ndjson", |b| {
        b.iter(|| {
            let outcomes = decoder.decode_payload(black_box(&payload));
            assert_eq!(outcomes.len(), 20_000);
            outcomes
        })
    });
    // As the pipeline decodes: a piece of a file written over the previous batch's records,
    // reusing their places and vectors.
    let mut in_place = decoder.clone();
    let mut records = Vec::new();
    group.bench_function("wide_json_piece_in_place", |b| {
        b.iter(|| {
            in_place.decode_segment_into(
                black_box(&payload),
                0,
                telemetry::SegmentEnd::InputEnds,
                &mut records,
                0,
                |note| panic!("{note:?}"),
            );
            assert_eq!(records.len(), 20_000);
        })
    });
    group.bench_function("frame_split_only", |b| {
        b.iter(|| FrameScanner::split(black_box(&payload), 1 << 20))
    });
    group.bench_function("serde_ignored_any_ceiling", |b| {
        b.iter(|| {
            let stream = serde_json::Deserializer::from_slice(black_box(&payload))
                .into_iter::<serde::de::IgnoredAny>();
            stream.count()
        })
    });
    group.finish();
}

criterion_group!(benches, decode);
criterion_main!(benches);
