//! File source: one file or every file of a directory (sorted by name), each file a partition.
//! Files may be NDJSON, concatenated JSON, JSON arrays, gzip or not (detected per file).
//! Positions are byte offsets into the decompressed content; resuming a gzip file re-reads and
//! skips its prefix.

mod reader;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use reader::PartitionReader;

use super::{Source, SourceBatch, SourceError};
use crate::position::{Offset, Position};

/// Reads files; see the module documentation.
pub struct FileSource {
    root: PathBuf,
    files: Vec<(PathBuf, Arc<str>)>,
    next_file: usize,
    resume: BTreeMap<String, Offset>,
    current: Option<(Arc<str>, PartitionReader)>,
    read_bytes: usize,
    max_record_bytes: usize,
    max_decompressed_bytes: u64,
    total_bytes: u64,
    stream: Arc<str>,
    announced_end: bool,
}

impl FileSource {
    /// Lists the input (a file, or the regular non-hidden files of a directory).
    pub fn new(
        path: &Path,
        read_bytes: usize,
        max_record_bytes: usize,
        max_decompressed_bytes: u64,
    ) -> Result<Self, SourceError> {
        let io_error = |source| SourceError::Io {
            what: path.display().to_string(),
            source,
        };
        let metadata = std::fs::metadata(path).map_err(io_error)?;
        let mut paths = Vec::new();
        if metadata.is_dir() {
            for entry in std::fs::read_dir(path).map_err(io_error)? {
                let entry = entry.map_err(io_error)?;
                let hidden = entry.file_name().to_string_lossy().starts_with('.');
                if !hidden && entry.file_type().map_err(io_error)?.is_file() {
                    paths.push(entry.path());
                }
            }
            paths.sort();
        } else {
            paths.push(path.to_owned());
        }
        let mut files = Vec::with_capacity(paths.len());
        let mut total_bytes = 0;
        for file in paths {
            total_bytes += std::fs::metadata(&file).map(|m| m.len()).unwrap_or(0);
            let canonical = std::fs::canonicalize(&file).unwrap_or_else(|_| file.clone());
            files.push((file, Arc::from(canonical.display().to_string())));
        }
        Ok(Self {
            root: path.to_owned(),
            files,
            next_file: 0,
            resume: BTreeMap::new(),
            current: None,
            read_bytes,
            max_record_bytes,
            max_decompressed_bytes,
            total_bytes,
            stream: Arc::from(format!("files:{}", path.display())),
            announced_end: false,
        })
    }

    fn open_next(&mut self) -> Result<bool, SourceError> {
        while self.next_file < self.files.len() {
            let (path, partition) = self.files[self.next_file].clone();
            self.next_file += 1;
            let start = match self.resume.get(partition.as_ref()) {
                Some(Offset::Finished) => continue,
                Some(Offset::Bytes(offset)) => *offset,
                _ => 0,
            };
            let reader = PartitionReader::open(
                &path,
                start,
                self.read_bytes,
                self.max_record_bytes,
                self.max_decompressed_bytes,
            )
            .map_err(|source| SourceError::Io {
                what: path.display().to_string(),
                source,
            })?;
            tracing::info!(file = %path.display(), start_offset = start, "reading file");
            self.current = Some((partition, reader));
            return Ok(true);
        }
        Ok(false)
    }
}

impl Source for FileSource {
    fn describe(&self) -> String {
        if self.files.len() == 1 {
            format!("file {}", self.root.display())
        } else {
            format!("{} files in {}", self.files.len(), self.root.display())
        }
    }

    fn size_hint(&self) -> Option<u64> {
        Some(self.total_bytes)
    }

    async fn open(&mut self, committed: &[Position]) -> Result<(), SourceError> {
        self.resume = committed
            .iter()
            .map(|position| (position.partition.clone(), position.offset.clone()))
            .collect();
        Ok(())
    }

    async fn next_batch(&mut self) -> Result<Option<SourceBatch>, SourceError> {
        if self.current.is_none() && !self.open_next()? {
            if !self.announced_end {
                self.announced_end = true;
                return Ok(Some(SourceBatch {
                    stream_finished: true,
                    end: Some(Offset::Finished),
                    partition_finished: true,
                    ..SourceBatch::empty(Arc::clone(&self.stream))
                }));
            }
            return Ok(None);
        }
        let Some((partition, reader)) = self.current.as_mut() else {
            return Ok(None);
        };
        let chunk = tokio::task::block_in_place(|| reader.read_chunk());
        let partition = Arc::clone(partition);
        if chunk.finished {
            self.current = None;
        }
        let stream_finished = chunk.finished && self.next_file >= self.files.len();
        self.announced_end |= stream_finished;
        Ok(Some(SourceBatch {
            partition,
            stream_finished,
            frames: chunk.frames,
            segment: chunk.segment,
            problems: chunk.problem.into_iter().collect(),
            progress_units: chunk.disk_bytes,
            ..SourceBatch::empty(Arc::clone(&self.stream))
                .ending_at(chunk.finished, Offset::Bytes(chunk.resume_offset))
        }))
    }
}
