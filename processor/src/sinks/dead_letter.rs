//! The dead-letter sink: every rejected record or field as one NDJSON line with its position,
//! reason and raw payload (base64), so nothing is lost and it can be replayed.

use base64::Engine;
use serde::Serialize;

use super::line_file::{LineEncoder, LineFile, LineSink};
use super::SinkError;
use crate::pipeline::output::{DeadLetter, Output};

#[derive(Serialize)]
struct DeadLetterLine<'a> {
    position: String,
    partition: &'a str,
    offset: u64,
    kind: &'a str,
    reason: &'a str,
    #[serde(skip_serializing_if = "<[String]>::is_empty")]
    fields: &'a [String],
    #[serde(skip_serializing_if = "Option::is_none")]
    vehicle_id: Option<&'a str>,
    raw_base64: String,
}

impl<'a> From<&'a DeadLetter> for DeadLetterLine<'a> {
    fn from(letter: &'a DeadLetter) -> Self {
        Self {
            position: letter.location.to_string(),
            partition: &letter.location.partition,
            offset: letter.location.offset,
            kind: letter.kind.as_str(),
            reason: &letter.reason,
            fields: &letter.fields,
            vehicle_id: letter.vehicle_id.as_deref(),
            raw_base64: base64::engine::general_purpose::STANDARD.encode(&letter.raw),
        }
    }
}

/// Appends `letter` as one JSON line (with its newline) to `out`: the format of every dead-letter
/// destination, file or S3.
pub fn append_line(letter: &DeadLetter, out: &mut Vec<u8>) {
    if let Err(err) = serde_json::to_writer(&mut *out, &DeadLetterLine::from(letter)) {
        unreachable!("serializing a dead letter to memory failed: {err}");
    }
    out.push(b'\n');
}

/// Dead letters as JSON lines.
pub struct DeadLetterLines;

impl LineEncoder for DeadLetterLines {
    const NAME: &'static str = "dead_letter";

    fn encode(&self, output: &Output, file: &mut LineFile) -> Result<(), SinkError> {
        match output {
            Output::DeadLetter(letter) => file.write_line(&DeadLetterLine::from(letter)),
            _ => Ok(()),
        }
    }
}

/// The dead-letter sink.
pub type DeadLetterSink = LineSink<DeadLetterLines>;
