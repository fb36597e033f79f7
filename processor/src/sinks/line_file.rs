//! [`LineFile`], an append-only NDJSON file whose length is its resume token, and [`LineSink`], a
//! sink that writes some outputs to one through a [`LineEncoder`] (the NDJSON and dead-letter
//! sinks).

use std::fs::{File, OpenOptions};
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use serde::Serialize;

use super::{Sink, SinkError};
use crate::pipeline::output::Output;

enum Target {
    File {
        path: PathBuf,
        writer: BufWriter<File>,
        length: u64,
    },
    Stdout(std::io::Stdout),
}

/// An append-only NDJSON file (or stdout, `-`) whose length is the resume token: restoring
/// truncates whatever was written after the last checkpoint.
pub struct LineFile {
    sink: &'static str,
    target: Target,
    line: Vec<u8>,
}

impl LineFile {
    /// Opens `path` for appending (creating parent directories); `-` means stdout.
    pub fn open(sink: &'static str, path: &Path) -> Result<Self, SinkError> {
        let io = |what: &str, source| SinkError::Io {
            sink,
            what: format!("{what} {}", path.display()),
            source,
        };
        let target = if path == Path::new("-") {
            Target::Stdout(std::io::stdout())
        } else {
            if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
                std::fs::create_dir_all(parent).map_err(|e| io("creating directory for", e))?;
            }
            let file = OpenOptions::new()
                .create(true)
                .append(true)
                .open(path)
                .map_err(|e| io("opening", e))?;
            let length = file
                .metadata()
                .map_err(|e| io("reading metadata of", e))?
                .len();
            Target::File {
                path: path.to_owned(),
                writer: BufWriter::with_capacity(256 * 1024, file),
                length,
            }
        };
        Ok(Self {
            sink,
            target,
            line: Vec::with_capacity(512),
        })
    }

    /// Where the lines go.
    pub fn describe(&self) -> String {
        match &self.target {
            Target::File { path, .. } => path.display().to_string(),
            Target::Stdout(_) => "standard output".to_owned(),
        }
    }

    /// Truncates the file to `token` bytes (the length at the last checkpoint); with no
    /// checkpoint the file starts empty.
    pub fn restore(&mut self, token: Option<u64>) -> Result<(), SinkError> {
        let sink = self.sink;
        if let Target::File {
            path,
            writer,
            length,
        } = &mut self.target
        {
            let keep = token.unwrap_or(0).min(*length);
            let io = |source| SinkError::Io {
                sink,
                what: format!("truncating {}", path.display()),
                source,
            };
            writer.flush().map_err(io)?;
            writer.get_ref().set_len(keep).map_err(io)?;
            *length = keep;
        }
        Ok(())
    }

    /// Appends one JSON line.
    pub fn write_line<T: Serialize>(&mut self, value: &T) -> Result<(), SinkError> {
        self.line.clear();
        if let Err(err) = serde_json::to_writer(&mut self.line, value) {
            unreachable!("serializing an output to memory failed: {err}");
        }
        self.line.push(b'\n');
        let sink = self.sink;
        let result = match &mut self.target {
            Target::File { writer, length, .. } => {
                *length += self.line.len() as u64;
                writer.write_all(&self.line)
            }
            Target::Stdout(stdout) => stdout.write_all(&self.line),
        };
        result.map_err(|source| SinkError::Io {
            sink,
            what: "writing a line".to_owned(),
            source,
        })
    }

    /// Flushes and fsyncs; returns the durable length.
    pub fn flush(&mut self) -> Result<Option<u64>, SinkError> {
        let sink = self.sink;
        match &mut self.target {
            Target::File {
                path,
                writer,
                length,
            } => {
                let io = |source| SinkError::Io {
                    sink,
                    what: format!("syncing {}", path.display()),
                    source,
                };
                writer.flush().map_err(io)?;
                writer.get_ref().sync_data().map_err(io)?;
                Ok(Some(*length))
            }
            Target::Stdout(stdout) => {
                stdout.flush().map_err(|source| SinkError::Io {
                    sink,
                    what: "flushing standard output".to_owned(),
                    source,
                })?;
                Ok(None)
            }
        }
    }
}

/// Chooses which outputs become lines, and how.
pub trait LineEncoder: Send + 'static {
    /// Sink name (also the key of its resume token).
    const NAME: &'static str;

    /// Writes the lines for `output` (possibly none).
    fn encode(&self, output: &Output, file: &mut LineFile) -> Result<(), SinkError>;
}

/// A sink writing outputs as lines of a [`LineFile`].
pub struct LineSink<E: LineEncoder> {
    file: LineFile,
    encoder: E,
}

impl<E: LineEncoder> LineSink<E> {
    /// A sink appending to `path` (`-` for stdout).
    pub fn open(path: &Path, encoder: E) -> Result<Self, SinkError> {
        Ok(Self {
            file: LineFile::open(E::NAME, path)?,
            encoder,
        })
    }
}

impl<E: LineEncoder> Sink for LineSink<E> {
    fn name(&self) -> &'static str {
        E::NAME
    }

    fn describe(&self) -> String {
        self.file.describe()
    }

    fn restore(&mut self, token: Option<u64>) -> Result<(), SinkError> {
        self.file.restore(token)
    }

    fn write(&mut self, outputs: &[Output]) -> Result<(), SinkError> {
        for output in outputs {
            self.encoder.encode(output, &mut self.file)?;
        }
        Ok(())
    }

    fn flush(&mut self) -> Result<Option<u64>, SinkError> {
        self.file.flush()
    }
}
