//! Turns payloads and frames into records or typed errors, one outcome per record, in order;
//! pieces of a file can also be written straight over the records of an earlier batch
//! ([`Decoder::decode_segment_into`]).

use serde_json::value::RawValue;

use crate::builder::{Decoded, RecordBuilder};
use crate::destination::{Destination, EachOutcome, SegmentNote, Slots};
use crate::error::{RecordError, RecordErrorKind};
use crate::frame::{Frame, FrameKind, FrameScanner, SegmentEnd};
use crate::gzip::{decompress_capped, is_gzip};
use crate::long::decode_long;
use crate::mapping::decode_mapped;
use crate::options::{DecodeOptions, Format};
use crate::record::{EpochMillis, Record};
use crate::spares::RecordSpares;
use crate::wide::{decode_wide, decode_wide_prefix, TIME_FIELD, VEHICLE_ID_FIELD};

/// A record that decoded, with where it was found.
#[derive(Debug, Clone, PartialEq)]
pub struct DecodedRecord {
    /// The record and any rejected fields.
    pub decoded: Decoded,
    /// Byte offset of the record within its payload or stream.
    pub offset: u64,
    /// Zero-based index of the record within its payload or stream.
    pub index: usize,
    /// The record's raw bytes, kept only when some field was rejected (for the dead letter).
    pub raw: Option<Vec<u8>>,
}

/// A rejected record with its raw bytes (for the dead letter).
#[derive(Debug, Clone, PartialEq)]
pub struct RejectedRecord {
    /// What and where.
    pub error: RecordError,
    /// The raw bytes as far as they were kept (at most `max_record_bytes`).
    pub raw: Vec<u8>,
}

/// One decoded or rejected record.
pub type Outcome = Result<DecodedRecord, Box<RejectedRecord>>;

/// Decodes one configured [`Format`] under one set of [`DecodeOptions`].
#[derive(Debug, Clone)]
pub struct Decoder {
    format: Format,
    options: DecodeOptions,
    spares: RecordSpares,
}

impl Decoder {
    /// A decoder for `format`.
    pub fn new(format: Format, options: DecodeOptions) -> Self {
        Self {
            format,
            options,
            spares: RecordSpares::default(),
        }
    }

    /// The limits in force.
    pub fn options(&self) -> &DecodeOptions {
        &self.options
    }

    /// Sets the arrival time used by [`crate::TimeSource::Arrival`] and the fallback of
    /// [`crate::TimeSource::EventOrArrival`] (callers set it per batch from their clock).
    pub fn set_arrival_time_ms(&mut self, arrival_time_ms: EpochMillis) {
        self.options.arrival_time_ms = arrival_time_ms;
        if let Some(skew) = self.options.max_future_skew_ms {
            self.options.max_event_time_ms = arrival_time_ms.saturating_add(skew);
        }
    }

    /// Decodes a whole payload (a Kinesis record, an S3 object, a message): gzip is detected by
    /// its magic bytes and decompressed under the cap; then every top-level value is decoded.
    /// Offsets in the outcomes are within the decompressed payload.
    pub fn decode_payload(&self, payload: &[u8]) -> Vec<Outcome> {
        if is_gzip(payload) {
            return match decompress_capped(payload, self.options.max_decompressed_bytes) {
                Ok(plain) => self.decode_payload_plain(&plain),
                Err(err) => vec![Err(Box::new(RejectedRecord {
                    error: RecordError {
                        offset: 0,
                        len: payload.len() as u64,
                        index: 0,
                        vehicle_id: None,
                        kind: RecordErrorKind::Gzip(err.to_string()),
                    },
                    raw: payload[..payload.len().min(self.options.max_record_bytes)].to_vec(),
                }))],
            };
        }
        self.decode_payload_plain(payload)
    }

    /// Decodes an uncompressed payload (see [`Self::decode_plain_each`]).
    fn decode_payload_plain(&self, payload: &[u8]) -> Vec<Outcome> {
        // Newlines count NDJSON records exactly and cost little to count; growing a vector of
        // outcomes instead would copy it.
        let mut outcomes = Vec::with_capacity(memchr::memchr_iter(b'\n', payload).count() + 1);
        let mut spares = RecordSpares::default();
        self.decode_plain_each(
            payload,
            0,
            SegmentEnd::InputEnds,
            &mut EachOutcome {
                spares: &mut spares,
                each: |outcome| outcomes.push(outcome),
            },
        );
        outcomes
    }

    /// Decodes one piece of a stream that starts at stream offset `start` on a frame boundary,
    /// handing each outcome (offsets in the stream) to `each` as it is decoded. A reader cuts
    /// pieces where a line starts with `{` ([`crate::frame::last_record_line_start`]) or at the
    /// end of its input, as `end` says; the outcomes are then exactly those of scanning the
    /// whole stream with a [`FrameScanner`] and decoding every frame, so pieces can be decoded
    /// in parallel. Records are built in the vectors of old records that
    /// [`Self::decode_segment_into`] had left over.
    pub fn decode_segment(
        &mut self,
        bytes: &[u8],
        start: u64,
        end: SegmentEnd,
        mut each: impl FnMut(Outcome),
    ) {
        let mut spares = std::mem::take(&mut self.spares);
        self.decode_plain_each(
            bytes,
            start,
            end,
            &mut EachOutcome {
                spares: &mut spares,
                each: &mut each,
            },
        );
        self.spares = spares;
    }

    /// [`Self::decode_segment`] for a consumer that keeps records in a vector and hands the
    /// vector back when done with them. `records[..kept]` stay as they are; the records after
    /// them are old ones (of an earlier batch) that this piece's records, with their offsets in
    /// the stream, are written over: each reuses an old record's vectors and its place, so no
    /// record is moved. On return `records` holds the kept records and this piece's; old records
    /// left over are kept for later. Rejected records and records that lost fields are
    /// reported to `note`, in order.
    pub fn decode_segment_into(
        &mut self,
        bytes: &[u8],
        start: u64,
        end: SegmentEnd,
        records: &mut Vec<(u64, Record)>,
        kept: usize,
        note: impl FnMut(SegmentNote),
    ) {
        let mut spares = std::mem::take(&mut self.spares);
        let mut slots = Slots::over(records, kept, &mut spares, note);
        self.decode_plain_each(bytes, start, end, &mut slots);
        slots.finish();
        self.spares = spares;
    }

    /// Decodes an uncompressed payload that continues as `end` says, handing each outcome to
    /// `destination` in order, located at `base` plus its place in `payload`. Wide-layout objects are
    /// parsed in place in one pass (the common case); anything else, and any object that fails
    /// to parse, is delimited by the [`FrameScanner`] so one broken record never takes its
    /// neighbours with it.
    fn decode_plain_each(
        &self,
        payload: &[u8],
        base: u64,
        end: SegmentEnd,
        destination: &mut impl Destination,
    ) {
        // One validation pass lets the fast path borrow strings without re-checking each.
        let text = std::str::from_utf8(payload).ok();
        let mut index = 0;
        let mut framed = Vec::new();
        let mut position = skip_whitespace(payload, 0);
        while position < payload.len() {
            if payload[position] == b'{' && self.format == Format::Wide {
                let rest_text = text.and_then(|text| text.get(position..));
                let place = Place {
                    start: position,
                    offset: base + position as u64,
                    index,
                };
                if let Some(after) =
                    self.decode_wide_in_place(payload, rest_text, place, destination)
                {
                    index += 1;
                    position = skip_whitespace(payload, after);
                    continue;
                }
            }
            let frame =
                FrameScanner::first_frame(payload, position, self.options.max_record_bytes, end);
            position = skip_whitespace(payload, frame.end as usize);
            index += self.decode_frame(&frame, index, &mut framed);
            for mut outcome in framed.drain(..) {
                match &mut outcome {
                    Ok(decoded) => decoded.offset += base,
                    Err(rejected) => rejected.error.offset += base,
                }
                destination.outcome(outcome);
            }
        }
    }

    /// Parses one wide object at `place` and hands it to `destination`, which supplies the
    /// builder; returns where the object ends, or `None` when it is not syntactically valid or
    /// not followed by a record boundary (the caller then delimits it with the scanner).
    fn decode_wide_in_place(
        &self,
        payload: &[u8],
        rest_text: Option<&str>,
        place: Place,
        destination: &mut impl Destination,
    ) -> Option<usize> {
        let start = place.start;
        let rest = &payload[start..];
        let mut builder = destination.builder(&self.options);
        let consumed = decode_wide_prefix(rest, rest_text, &mut builder).ok()?;
        if consumed > self.options.max_record_bytes {
            return None;
        }
        let follows_cleanly = match rest.get(consumed) {
            None => true,
            Some(byte) => byte.is_ascii_whitespace() || *byte == b'{' || *byte == b'[',
        };
        if !follows_cleanly || opens_a_line_with_a_brace(&rest[..consumed]) {
            return None;
        }
        destination.parsed(self, &mut builder, &rest[..consumed], place);
        Some(start + consumed)
    }

    /// Decodes one frame found by a [`FrameScanner`]: an object is one record, an array holds
    /// several. Record indexes start at `first_index`; returns how many outcomes were appended.
    pub fn decode_frame(&self, frame: &Frame, first_index: usize, out: &mut Vec<Outcome>) -> usize {
        let before = out.len();
        let reject = |kind: RecordErrorKind| {
            Box::new(RejectedRecord {
                error: RecordError {
                    offset: frame.start,
                    len: frame.end - frame.start,
                    index: first_index,
                    vehicle_id: None,
                    kind,
                },
                raw: frame.bytes.clone(),
            })
        };
        match frame.kind {
            FrameKind::Value if frame.bytes.first() == Some(&b'[') => {
                self.decode_array(frame, first_index, out);
            }
            FrameKind::Value => {
                out.push(self.decode_object(&frame.bytes, frame.start, first_index))
            }
            FrameKind::Truncated(why) => out.push(Err(reject(RecordErrorKind::Truncated(why)))),
            FrameKind::Oversize => out.push(Err(reject(RecordErrorKind::TooLarge {
                size: frame.end - frame.start,
                limit: self.options.max_record_bytes as u64,
            }))),
            FrameKind::Garbage => {
                let shown: String = String::from_utf8_lossy(&frame.bytes)
                    .chars()
                    .take(24)
                    .collect();
                out.push(Err(reject(RecordErrorKind::Garbage(shown))));
            }
        }
        out.len() - before
    }

    fn decode_array(&self, frame: &Frame, first_index: usize, out: &mut Vec<Outcome>) {
        match serde_json::from_slice::<Vec<&RawValue>>(&frame.bytes) {
            Ok(elements) => {
                let base = frame.bytes.as_ptr() as usize;
                for (position, element) in elements.iter().enumerate() {
                    let text = element.get();
                    let within = (text.as_ptr() as usize).saturating_sub(base) as u64;
                    out.push(self.decode_object(
                        text.as_bytes(),
                        frame.start + within,
                        first_index + position,
                    ));
                }
            }
            Err(err) => out.push(Err(Box::new(RejectedRecord {
                error: RecordError {
                    offset: frame.start,
                    len: frame.end - frame.start,
                    index: first_index,
                    vehicle_id: None,
                    kind: RecordErrorKind::Syntax(err.to_string()),
                },
                raw: frame.bytes.clone(),
            }))),
        }
    }

    /// Decodes one JSON object (its bytes) found at `offset`.
    fn decode_object(&self, bytes: &[u8], offset: u64, index: usize) -> Outcome {
        let mut builder = RecordBuilder::new(&self.options);
        let first = bytes
            .iter()
            .find(|byte| !byte.is_ascii_whitespace())
            .copied();
        let parsed = if first != Some(b'{') {
            Err(RecordErrorKind::NotAnObject(match first {
                Some(b'[') => "an array",
                Some(b'"') => "a string",
                Some(b't' | b'f') => "a boolean",
                Some(b'n') => "null",
                _ => "a number or invalid JSON",
            }))
        } else {
            match &self.format {
                Format::Wide => decode_wide(bytes, &mut builder),
                Format::Long(fields) => decode_long(bytes, fields, &mut builder),
                Format::Mapping(mapping) => decode_mapped(bytes, mapping, &mut builder),
            }
        };
        self.finish_object(&mut builder, parsed, bytes, offset, index)
    }

    /// Turns a filled builder into an outcome located at `offset`.
    #[inline]
    pub(crate) fn finish_object(
        &self,
        builder: &mut RecordBuilder<'_>,
        parsed: Result<(), RecordErrorKind>,
        bytes: &[u8],
        offset: u64,
        index: usize,
    ) -> Outcome {
        let (vehicle_field, time_field) = self.identity_fields();
        let result = match parsed {
            Ok(()) => builder.finish(vehicle_field, time_field),
            Err(kind) => Err((kind, builder.vehicle_id().map(str::to_owned))),
        };
        match result {
            Ok(decoded) => {
                let raw = (!decoded.issues.is_empty()).then(|| bytes.to_vec());
                Ok(DecodedRecord {
                    decoded,
                    offset,
                    index,
                    raw,
                })
            }
            Err((kind, vehicle_id)) => Err(rejection(kind, vehicle_id, bytes, offset, index)),
        }
    }

    /// The fields that name a record's vehicle and event time in this format.
    pub(crate) fn identity_fields(&self) -> (&str, &str) {
        match &self.format {
            Format::Wide => (VEHICLE_ID_FIELD, TIME_FIELD),
            Format::Long(fields) => (fields.vehicle_id.as_str(), fields.time.as_str()),
            Format::Mapping(mapping) => (mapping.vehicle_id.as_str(), mapping.time.as_str()),
        }
    }
}

/// The record in `bytes`, at `offset`, rejected for `kind`.
pub(crate) fn rejection(
    kind: RecordErrorKind,
    vehicle_id: Option<String>,
    bytes: &[u8],
    offset: u64,
    index: usize,
) -> Box<RejectedRecord> {
    Box::new(RejectedRecord {
        error: RecordError {
            offset,
            len: bytes.len() as u64,
            index,
            vehicle_id,
            kind,
        },
        raw: bytes.to_vec(),
    })
}

/// Where an object starts: in the payload, in the stream, and as the payload's n-th record.
#[derive(Clone, Copy)]
pub(crate) struct Place {
    pub(crate) start: usize,
    pub(crate) offset: u64,
    pub(crate) index: usize,
}

/// True when a line inside `bytes` starts with `{`: the scanner ends a record there (a cut-off
/// NDJSON line), so such an object is left to it even when it parses.
fn opens_a_line_with_a_brace(bytes: &[u8]) -> bool {
    memchr::memchr_iter(b'\n', bytes).any(|newline| bytes.get(newline + 1) == Some(&b'{'))
}

/// The first index at or after `from` that is not JSON whitespace.
fn skip_whitespace(bytes: &[u8], mut from: usize) -> usize {
    while from < bytes.len() && matches!(bytes[from], b' ' | b'\t' | b'\r' | b'\n') {
        from += 1;
    }
    from
}
