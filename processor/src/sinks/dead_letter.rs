//! The dead-letter sink: every rejected record or field as one NDJSON line with its position,
//! reason and raw payload (base64), so nothing is lost and it can be replayed.

use std::path::Path;

use base64::Engine;
use serde::Serialize;

use super::ndjson::LineFile;
use super::{Sink, SinkError};
use crate::pipeline::output::{DeadLetter, Output};

const NAME: &str = "dead_letter";

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

/// Writes dead letters to an NDJSON file.
pub struct DeadLetterSink {
    file: LineFile,
}

impl DeadLetterSink {
    /// A sink appending to `path` (created with its directory).
    pub fn open(path: &Path) -> Result<Self, SinkError> {
        Ok(Self {
            file: LineFile::open(NAME, path)?,
        })
    }
}

impl Sink for DeadLetterSink {
    fn name(&self) -> &'static str {
        NAME
    }

    fn describe(&self) -> String {
        self.file.describe()
    }

    fn restore(&mut self, token: Option<u64>) -> Result<(), SinkError> {
        self.file.restore(token)
    }

    fn write(&mut self, outputs: &[Output]) -> Result<(), SinkError> {
        for output in outputs {
            if let Output::DeadLetter(letter) = output {
                self.file.write_line(&DeadLetterLine::from(letter))?;
            }
        }
        Ok(())
    }

    fn flush(&mut self) -> Result<Option<u64>, SinkError> {
        self.file.flush()
    }
}
