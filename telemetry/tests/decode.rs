//! Decoder behaviour per format and the bad-input policy, through the public API.

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use telemetry::{
    DecodeOptions, Decoder, FieldMapping, Format, LongFields, Outcome, RecordErrorKind,
    SegmentNote, TimeUnit,
};

const WIDE: &str = r#"{"vehicle_id":"veh-000123","fleet":"fleet-07","ts":1767225600000,"attributes":{"model":"e-van"},"signals":{"speed_kmh":42.1,"engine_rpm":1800}}"#;

fn wide() -> Decoder {
    Decoder::new(Format::Wide, DecodeOptions::default())
}

fn ok(outcome: &Outcome) -> &telemetry::DecodedRecord {
    match outcome {
        Ok(record) => record,
        Err(rejected) => panic!("expected a record, got {}", rejected.error),
    }
}

fn err(outcome: &Outcome) -> &telemetry::RecordError {
    match outcome {
        Ok(record) => panic!("expected an error, got {:?}", record.decoded.record),
        Err(rejected) => &rejected.error,
    }
}

#[test]
fn wide_record_decodes_every_part() {
    let outcomes = wide().decode_payload(WIDE.as_bytes());
    assert_eq!(outcomes.len(), 1);
    let record = &ok(&outcomes[0]).decoded.record;
    assert_eq!(record.vehicle_id, "veh-000123");
    assert_eq!(record.fleet.as_deref(), Some("fleet-07"));
    assert_eq!(record.event_time_ms, 1_767_225_600_000);
    assert_eq!(record.attribute("model"), Some("e-van"));
    assert_eq!(record.signal("speed_kmh"), Some(42.1));
    assert_eq!(record.signal("engine_rpm"), Some(1800.0));
    assert!(ok(&outcomes[0]).decoded.issues.is_empty());
}

#[test]
fn every_payload_framing_gives_the_same_records() {
    let single = WIDE.to_owned();
    let array = format!("[{WIDE},{WIDE}]");
    let ndjson = format!("{WIDE}\n{WIDE}\n");
    let concatenated = format!("{WIDE}{WIDE}");
    for (payload, expected) in [(single, 1), (array, 2), (ndjson, 2), (concatenated, 2)] {
        let outcomes = wide().decode_payload(payload.as_bytes());
        assert_eq!(outcomes.len(), expected, "{payload}");
        for (index, outcome) in outcomes.iter().enumerate() {
            assert_eq!(ok(outcome).index, index);
            assert_eq!(ok(outcome).decoded.record.vehicle_id, "veh-000123");
        }
    }
}

#[test]
fn gzip_multi_member_payloads_decode_fully() {
    use flate2::{write::GzEncoder, Compression};
    use std::io::Write;
    let mut payload = Vec::new();
    for _ in 0..3 {
        let mut encoder = GzEncoder::new(Vec::new(), Compression::fast());
        encoder.write_all(WIDE.as_bytes()).unwrap();
        payload.extend(encoder.finish().unwrap());
    }
    let outcomes = wide().decode_payload(&payload);
    assert_eq!(outcomes.len(), 3);
    assert!(outcomes.iter().all(Result::is_ok));
}

#[test]
fn gzip_bomb_is_rejected_with_a_reason() {
    use flate2::{write::GzEncoder, Compression};
    use std::io::Write;
    let mut encoder = GzEncoder::new(Vec::new(), Compression::best());
    encoder.write_all(&vec![b' '; 8 << 20]).unwrap();
    let payload = encoder.finish().unwrap();
    let options = DecodeOptions {
        max_decompressed_bytes: 1 << 20,
        ..DecodeOptions::default()
    };
    let outcomes = Decoder::new(Format::Wide, options).decode_payload(&payload);
    let error = err(&outcomes[0]);
    assert!(matches!(error.kind, RecordErrorKind::Gzip(_)));
    assert!(
        error.to_string().contains("max_decompressed_bytes"),
        "{error}"
    );
}

#[test]
fn timestamps_in_every_unit_and_rfc3339() {
    for ts in [
        "1767225600",
        "1767225600000",
        "1767225600000000",
        "1767225600000000000",
        "\"2026-01-01T00:00:00Z\"",
        "1767225600.0",
    ] {
        let payload = format!(r#"{{"vehicle_id":"v","ts":{ts},"signals":{{"x":1}}}}"#);
        let outcomes = wide().decode_payload(payload.as_bytes());
        assert_eq!(
            ok(&outcomes[0]).decoded.record.event_time_ms,
            1_767_225_600_000,
            "{ts}"
        );
    }
    let options = DecodeOptions {
        time_unit: TimeUnit::Seconds,
        ..DecodeOptions::default()
    };
    let payload = br#"{"vehicle_id":"v","ts":1767225600000,"signals":{"x":1}}"#;
    let outcomes = Decoder::new(Format::Wide, options).decode_payload(payload);
    let error = err(&outcomes[0]);
    assert!(error.to_string().contains("field `ts`"), "{error}");
}

#[test]
fn bad_signal_values_are_rejected_per_field() {
    let payload = br#"{"vehicle_id":"v","ts":1767225600000,"signals":{"a":1.5,"b":"NaN","c":1e308,"d":{"x":1},"e":true,"f":null}}"#;
    let outcomes = wide().decode_payload(payload);
    let decoded = ok(&outcomes[0]);
    assert_eq!(decoded.decoded.record.signal("a"), Some(1.5));
    assert_eq!(decoded.decoded.record.signal("e"), Some(1.0));
    assert_eq!(decoded.decoded.record.signals.len(), 2);
    let fields: Vec<&str> = decoded
        .decoded
        .issues
        .iter()
        .map(|i| i.field.as_str())
        .collect();
    assert_eq!(fields, vec!["signals.b", "signals.c", "signals.d"]);
    assert!(decoded.raw.is_some(), "raw bytes kept for the dead letter");
}

#[test]
fn a_record_without_usable_signals_is_rejected_with_the_reasons() {
    let payload = br#"{"vehicle_id":"v","ts":1767225600000,"signals":{"b":"high"}}"#;
    let outcomes = wide().decode_payload(payload);
    let error = err(&outcomes[0]);
    assert!(matches!(error.kind, RecordErrorKind::NoUsableSignals(_)));
    assert!(error.to_string().contains("signals.b"), "{error}");
    assert!(error.to_string().contains("(vehicle v)"), "{error}");
}

#[test]
fn bad_records_name_record_field_and_reason() {
    let cases: Vec<(&str, &str)> = vec![
        (
            r#"{"ts":1767225600000,"signals":{"x":1}}"#,
            "missing required field `vehicle_id`",
        ),
        (
            r#"{"vehicle_id":7,"ts":1767225600000,"signals":{"x":1}}"#,
            "field `vehicle_id`",
        ),
        (
            r#"{"vehicle_id":"v","ts":true,"signals":{"x":1}}"#,
            "field `ts`",
        ),
        (
            r#"{"vehicle_id":"v","ts":1000,"signals":{"x":1}}"#,
            "before the earliest accepted time",
        ),
        (
            r#"{"vehicle_id":"v","signals":{"x":1}}"#,
            "missing required field `ts`",
        ),
        (
            r#"{"vehicle_id":"v","ts":1767225600000,"signals":[1]}"#,
            "field `signals`",
        ),
        (
            r#"{"vehicle_id":"v","ts":1767225600000,"signals":{"x":NaN}}"#,
            "invalid JSON",
        ),
        (
            r#"{"vehicle_id":"v","ts":1767225600000,"signals":{"x":1e999}}"#,
            "invalid JSON",
        ),
        (
            r#"{"vehicle_id":"v","ts":1767225600000,"signals":{"x":1},}"#,
            "invalid JSON",
        ),
        ("42", "unexpected bytes"),
    ];
    for (payload, expected) in cases {
        let outcomes = wide().decode_payload(payload.as_bytes());
        assert_eq!(outcomes.len(), 1, "{payload}");
        let message = err(&outcomes[0]).to_string();
        assert!(message.starts_with("record #0 at byte 0"), "{message}");
        assert!(message.contains(expected), "{payload}: {message}");
    }
}

#[test]
fn far_future_is_rejected() {
    let options = DecodeOptions {
        max_event_time_ms: 1_800_000_000_000,
        ..DecodeOptions::default()
    };
    let payload = br#"{"vehicle_id":"v","ts":"2100-01-01T00:00:00Z","signals":{"x":1}}"#;
    let outcomes = Decoder::new(Format::Wide, options).decode_payload(payload);
    assert!(err(&outcomes[0])
        .to_string()
        .contains("after the latest accepted time"));
}

#[test]
fn invalid_utf8_and_truncation_do_not_lose_neighbours() {
    let mut payload = WIDE.as_bytes().to_vec();
    payload.push(b'\n');
    payload.extend_from_slice(
        b"{\"vehicle_id\":\"v\xff\xfe\",\"ts\":1767225600000,\"signals\":{\"x\":1}}\n",
    );
    payload.extend_from_slice(&WIDE.as_bytes()[..40]);
    payload.push(b'\n');
    payload.extend_from_slice(WIDE.as_bytes());
    let outcomes = wide().decode_payload(&payload);
    assert_eq!(outcomes.len(), 4);
    assert!(outcomes[0].is_ok());
    assert!(err(&outcomes[1]).to_string().contains("invalid JSON"));
    assert!(matches!(
        err(&outcomes[2]).kind,
        RecordErrorKind::Truncated(_)
    ));
    assert!(outcomes[3].is_ok());
}

#[test]
fn oversize_record_is_rejected_and_skipped() {
    let options = DecodeOptions {
        max_record_bytes: 1024,
        ..DecodeOptions::default()
    };
    let big = format!(
        r#"{{"vehicle_id":"v","ts":1767225600000,"attributes":{{"blob":"{}"}},"signals":{{"x":1}}}}"#,
        "y".repeat(4096)
    );
    let payload = format!("{big}\n{WIDE}");
    let outcomes = Decoder::new(Format::Wide, options).decode_payload(payload.as_bytes());
    assert!(matches!(
        err(&outcomes[0]).kind,
        RecordErrorKind::TooLarge { .. }
    ));
    assert!(outcomes[1].is_ok());
}

#[test]
fn long_fleetwise_layout() {
    let decoder = Decoder::new(
        Format::Long(LongFields::default()),
        DecodeOptions::default(),
    );
    let payload =
        br#"{"vehicleName":"veh-1","name":"Vehicle.Speed","time":1767225600000,"value":42.5}
{"vehicleName":"veh-1","name":"Vehicle.Speed","time":1767225600000}"#;
    let outcomes = decoder.decode_payload(payload);
    let record = &ok(&outcomes[0]).decoded.record;
    assert_eq!(record.vehicle_id, "veh-1");
    assert_eq!(record.signal("Vehicle.Speed"), Some(42.5));
    assert!(err(&outcomes[1])
        .to_string()
        .contains("missing required field `value`"));

    let renamed = LongFields {
        vehicle_id: "vin".into(),
        signal_name: "signal".into(),
        time: "t".into(),
        value: "v".into(),
        fleet: Some("fleet".into()),
        attributes: vec!["model".into()],
    };
    let decoder = Decoder::new(Format::Long(renamed), DecodeOptions::default());
    let payload = br#"{"vin":"V1","signal":"rpm","t":"2026-01-01T00:00:00Z","v":900,"fleet":"f","model":"truck"}"#;
    let outcomes = decoder.decode_payload(payload);
    let record = &ok(&outcomes[0]).decoded.record;
    assert_eq!(record.signal("rpm"), Some(900.0));
    assert_eq!(record.fleet.as_deref(), Some("f"));
    assert_eq!(record.attribute("model"), Some("truck"));
}

#[test]
fn json_pointer_mapping() {
    let mapping = FieldMapping {
        vehicle_id: "/device/id".into(),
        time: "/payload/timestamp".into(),
        fleet: Some("/meta/fleet".into()),
        attributes: [("model".to_owned(), "/meta/model".to_owned())].into(),
        signals: [("speed_kmh".to_owned(), "/payload/speed".to_owned())].into(),
        signals_object: Some("/payload/readings".into()),
    };
    assert!(mapping.problems().is_empty());
    let decoder = Decoder::new(Format::Mapping(mapping), DecodeOptions::default());
    let payload = br#"{"device":{"id":"veh-9"},"meta":{"fleet":"f1","model":"bus"},
        "payload":{"timestamp":1767225600,"speed":61.5,"readings":{"soc":0.8,"cell_temp":"hot"}}}"#;
    let outcomes = decoder.decode_payload(payload);
    let decoded = ok(&outcomes[0]);
    let record = &decoded.decoded.record;
    assert_eq!(record.vehicle_id, "veh-9");
    assert_eq!(record.event_time_ms, 1_767_225_600_000);
    assert_eq!(record.signal("speed_kmh"), Some(61.5));
    assert_eq!(record.signal("soc"), Some(0.8));
    assert_eq!(
        decoded.decoded.issues[0].field,
        "/payload/readings/cell_temp"
    );
    assert_eq!(record.attribute("model"), Some("bus"));
}

#[test]
fn mapping_problems_are_reported() {
    let mapping = FieldMapping {
        vehicle_id: "device.id".into(),
        ..FieldMapping::default()
    };
    let problems = mapping.problems();
    assert_eq!(problems.len(), 2, "{problems:?}");
}

proptest::proptest! {
    #[test]
    fn decoding_never_panics(bytes in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..400)) {
        let _ = wide().decode_payload(&bytes);
    }

    #[test]
    fn mutated_records_never_panic(position in 0usize..140, byte in proptest::prelude::any::<u8>()) {
        let mut payload = WIDE.as_bytes().to_vec();
        let index = position % payload.len();
        payload[index] = byte;
        let _ = wide().decode_payload(&payload);
    }
}

#[test]
fn future_times_can_be_clamped_and_missing_times_fall_back_to_arrival() {
    let options = DecodeOptions {
        max_event_time_ms: 1_800_000_000_000,
        future_policy: telemetry::FuturePolicy::Clamp,
        time_source: telemetry::TimeSource::EventOrArrival,
        arrival_time_ms: 1_767_225_999_000,
        ..DecodeOptions::default()
    };
    let decoder = Decoder::new(Format::Wide, options);
    let payload = br#"{"vehicle_id":"v","ts":"2100-01-01T00:00:00Z","signals":{"x":1}}
{"vehicle_id":"v","signals":{"x":2}}
{"vehicle_id":"v","ts":"soon","signals":{"x":3}}
{"vehicle_id":"v","ts":1767225600000,"signals":{"x":4}}"#;
    let outcomes = decoder.decode_payload(payload);
    let clamped = ok(&outcomes[0]);
    assert_eq!(clamped.decoded.record.event_time_ms, 1_800_000_000_000);
    assert!(clamped.decoded.issues[0].reason.contains("clamped"));
    assert_eq!(
        ok(&outcomes[1]).decoded.record.event_time_ms,
        1_767_225_999_000
    );
    assert!(ok(&outcomes[1]).decoded.issues.is_empty());
    let fallback = ok(&outcomes[2]);
    assert_eq!(fallback.decoded.record.event_time_ms, 1_767_225_999_000);
    assert!(fallback.decoded.issues[0]
        .reason
        .contains("arrival time used"));
    assert_eq!(
        ok(&outcomes[3]).decoded.record.event_time_ms,
        1_767_225_600_000
    );

    let mut following = Decoder::new(
        Format::Wide,
        DecodeOptions {
            max_future_skew_ms: Some(60_000),
            ..DecodeOptions::default()
        },
    );
    following.set_arrival_time_ms(1_767_225_600_000);
    let soon = br#"{"vehicle_id":"v","ts":1767225630000,"signals":{"x":1}}"#;
    let later = br#"{"vehicle_id":"v","ts":1767225700000,"signals":{"x":1}}"#;
    assert!(following.decode_payload(soon)[0].is_ok());
    assert!(
        following.decode_payload(later)[0].is_err(),
        "100 s ahead of the clock"
    );
    following.set_arrival_time_ms(1_767_225_660_000);
    assert!(
        following.decode_payload(later)[0].is_ok(),
        "the bound follows the clock"
    );

    let arrival = Decoder::new(
        Format::Wide,
        DecodeOptions {
            time_source: telemetry::TimeSource::Arrival,
            arrival_time_ms: 42_000_000_000_000,
            max_event_time_ms: i64::MAX,
            ..DecodeOptions::default()
        },
    );
    let outcomes =
        arrival.decode_payload(br#"{"vehicle_id":"v","ts":"not a time","signals":{"x":1}}"#);
    assert_eq!(
        ok(&outcomes[0]).decoded.record.event_time_ms,
        42_000_000_000_000
    );
}

/// Input made of valid records, broken records, multi-line and concatenated values, garbage and
/// stray brackets and escapes, so cuts land in every scanner state.
fn stream_pieces() -> impl proptest::strategy::Strategy<Value = Vec<u8>> {
    use proptest::prelude::*;
    let piece = prop_oneof![
        Just(WIDE.to_owned()),
        Just("\n".to_owned()),
        Just(" ".to_owned()),
        Just("{".to_owned()),
        Just("}".to_owned()),
        Just("[".to_owned()),
        Just("]".to_owned()),
        Just("\"".to_owned()),
        Just("\\".to_owned()),
        Just("garbage".to_owned()),
        Just(r#"{"vehicle_id":"a\"#.to_owned()),
        Just(r#"{"vehicle_id":"v","ts":1767225600000,"signals":"#.to_owned()),
        Just("{\"vehicle_id\":\"v\",\n\"ts\":1767225600000,\"signals\":{\"x\":1}}".to_owned()),
        Just("{\"vehicle_id\":\"v\",\"ts\":1767225600000,\"signals\":\n{\"x\":1}}".to_owned()),
        Just(format!("[{WIDE},{WIDE}]")),
        // Other shapes, repeated names and long names, so records built in recycled vectors
        // meet entries of other names, counts and sizes.
        Just(r#"{"vehicle_id":"w","ts":1767225600001,"attributes":{"vin":"X","model":"van","vin":"Y"},"signals":{"rpm":2,"speed":3,"rpm":4}}"#.to_owned()),
        Just(r#"{"vehicle_id":"u","ts":1767225600002,"attributes":{"region_of_registration_x":"eu"},"signals":{"a_signal_name_longer_than_24_bytes":1.5}}"#.to_owned()),
        Just(format!(
            r#"{{"vehicle_id":"v","ts":1767225600000,"signals":{{"x":"{}"}}}}"#,
            "y".repeat(300)
        )),
    ];
    proptest::collection::vec(piece, 0..24).prop_map(|pieces| pieces.concat().into_bytes())
}

/// What matters of an outcome: where it is, and the record or the error (indexes count within
/// a payload, which a file does not have).
fn summary(outcome: &Outcome) -> String {
    match outcome {
        Ok(decoded) => format!(
            "{} ok {:?} {:?}",
            decoded.offset, decoded.decoded, decoded.raw
        ),
        Err(rejected) => {
            let error = &rejected.error;
            format!(
                "{} {} {:?} {:?} {:?}",
                error.offset, error.len, error.vehicle_id, error.kind, rejected.raw
            )
        }
    }
}

/// The outcomes a piece decoded in place stands for: its records (with the fields each lost)
/// and its rejections, in stream order.
fn in_place_summaries(
    records: &[(u64, telemetry::Record)],
    notes: Vec<SegmentNote>,
) -> Vec<String> {
    let mut lost = std::collections::HashMap::new();
    let mut summaries = Vec::new();
    for note in notes {
        match note {
            SegmentNote::Rejected(rejected) => {
                summaries.push((rejected.error.offset, summary(&Err(rejected))));
            }
            SegmentNote::FieldsRejected {
                position,
                issues,
                raw,
            } => {
                lost.insert(position, (issues, raw));
            }
        }
    }
    for (position, (offset, record)) in records.iter().enumerate() {
        let (issues, raw) = match lost.remove(&position) {
            Some((issues, raw)) => (issues, Some(raw)),
            None => (Vec::new(), None),
        };
        let decoded = telemetry::DecodedRecord {
            decoded: telemetry::Decoded {
                record: record.clone(),
                issues,
            },
            offset: *offset,
            index: 0,
            raw,
        };
        summaries.push((*offset, summary(&Ok(decoded))));
    }
    assert!(lost.is_empty(), "a note names a position with no record");
    summaries.sort_by_key(|(offset, _)| *offset);
    summaries.into_iter().map(|(_, summary)| summary).collect()
}

proptest::proptest! {
    #[test]
    fn pieces_cut_where_a_line_opens_a_record_decode_like_the_whole_stream(
        stream in stream_pieces(),
        cuts in proptest::collection::vec(0usize..2000, 0..4),
    ) {
        let options = DecodeOptions { max_record_bytes: 256, ..DecodeOptions::default() };
        let mut decoder = Decoder::new(Format::Wide, options);
        let mut frames = Vec::new();
        let mut scanner = telemetry::FrameScanner::new(256);
        scanner.feed(&stream, &mut frames);
        scanner.finish(&mut frames);
        let mut whole = Vec::new();
        for frame in &frames {
            decoder.decode_frame(frame, 0, &mut whole);
        }
        let whole: Vec<String> = whole.iter().map(summary).collect();

        // Cut at the last record line start before each random point, as a reader would.
        let mut boundaries: Vec<usize> = cuts
            .into_iter()
            .filter_map(|cut| telemetry::last_record_line_start(&stream[..cut.min(stream.len())]))
            .collect();
        boundaries.sort_unstable();
        boundaries.dedup();
        // Each piece both ways, with one decoder and one records vector, as the pipeline's
        // pooled batches: in place, each piece is written over the records of the one before;
        // the old records left over go to the spares that `decode_segment` builds in.
        let mut records = Vec::new();
        let (mut each, mut in_place) = (Vec::new(), Vec::new());
        let mut start = 0;
        let ends = boundaries
            .into_iter()
            .map(|boundary| (boundary, telemetry::SegmentEnd::NewRecordFollows))
            .chain([(stream.len(), telemetry::SegmentEnd::InputEnds)]);
        for (boundary, end) in ends {
            let piece = &stream[start..boundary];
            decoder.decode_segment(piece, start as u64, end, |outcome| each.push(summary(&outcome)));
            let mut notes = Vec::new();
            decoder.decode_segment_into(piece, start as u64, end, &mut records, 0, |note| notes.push(note));
            in_place.extend(in_place_summaries(&records, notes));
            start = boundary;
        }
        proptest::prop_assert_eq!(&each, &whole);
        proptest::prop_assert_eq!(in_place, whole);
    }
}
