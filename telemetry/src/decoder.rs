//! Turns payloads and frames into records or typed errors, one outcome per record, in order.

use serde_json::value::RawValue;

use crate::builder::{Decoded, RecordBuilder};
use crate::error::{RecordError, RecordErrorKind};
use crate::frame::{Frame, FrameKind, FrameScanner};
use crate::gzip::{decompress_capped, is_gzip};
use crate::long::decode_long;
use crate::mapping::decode_mapped;
use crate::options::{DecodeOptions, Format};
use crate::wide::{decode_wide, TIME_FIELD, VEHICLE_ID_FIELD};

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
pub type Outcome = Result<DecodedRecord, RejectedRecord>;

/// Decodes one configured [`Format`] under one set of [`DecodeOptions`].
#[derive(Debug, Clone)]
pub struct Decoder {
    format: Format,
    options: DecodeOptions,
}

impl Decoder {
    /// A decoder for `format`.
    pub fn new(format: Format, options: DecodeOptions) -> Self {
        Self { format, options }
    }

    /// The limits in force.
    pub fn options(&self) -> &DecodeOptions {
        &self.options
    }

    /// Decodes a whole payload (a Kinesis record, an S3 object, a message): gzip is detected by
    /// its magic bytes and decompressed under the cap; then every top-level value is decoded.
    /// Offsets in the outcomes are within the decompressed payload.
    pub fn decode_payload(&self, payload: &[u8]) -> Vec<Outcome> {
        if is_gzip(payload) {
            return match decompress_capped(payload, self.options.max_decompressed_bytes) {
                Ok(plain) => self.decode_payload_plain(&plain),
                Err(err) => vec![Err(RejectedRecord {
                    error: RecordError {
                        offset: 0,
                        len: payload.len() as u64,
                        index: 0,
                        vehicle_id: None,
                        kind: RecordErrorKind::Gzip(err.to_string()),
                    },
                    raw: payload[..payload.len().min(self.options.max_record_bytes)].to_vec(),
                })],
            };
        }
        self.decode_payload_plain(payload)
    }

    fn decode_payload_plain(&self, payload: &[u8]) -> Vec<Outcome> {
        let mut outcomes = Vec::new();
        for frame in FrameScanner::split(payload, self.options.max_record_bytes) {
            let next_index = outcomes.len();
            self.decode_frame(&frame, next_index, &mut outcomes);
        }
        outcomes
    }

    /// Decodes one frame found by a [`FrameScanner`]: an object is one record, an array holds
    /// several. Record indexes start at `first_index`; returns how many outcomes were appended.
    pub fn decode_frame(&self, frame: &Frame, first_index: usize, out: &mut Vec<Outcome>) -> usize {
        let before = out.len();
        let reject = |kind: RecordErrorKind| RejectedRecord {
            error: RecordError {
                offset: frame.start,
                len: frame.end - frame.start,
                index: first_index,
                vehicle_id: None,
                kind,
            },
            raw: frame.bytes.clone(),
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
            Err(err) => out.push(Err(RejectedRecord {
                error: RecordError {
                    offset: frame.start,
                    len: frame.end - frame.start,
                    index: first_index,
                    vehicle_id: None,
                    kind: RecordErrorKind::Syntax(err.to_string()),
                },
                raw: frame.bytes.clone(),
            })),
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
        let (vehicle_field, time_field) = match &self.format {
            Format::Wide => (VEHICLE_ID_FIELD, TIME_FIELD),
            Format::Long(fields) => (fields.vehicle_id.as_str(), fields.time.as_str()),
            Format::Mapping(mapping) => (mapping.vehicle_id.as_str(), mapping.time.as_str()),
        };
        let vehicle_id = builder.vehicle_id().map(str::to_owned);
        let result = parsed.and_then(|()| builder.finish(vehicle_field, time_field));
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
            Err(kind) => Err(RejectedRecord {
                error: RecordError {
                    offset,
                    len: bytes.len() as u64,
                    index,
                    vehicle_id,
                    kind,
                },
                raw: bytes.to_vec(),
            }),
        }
    }
}
