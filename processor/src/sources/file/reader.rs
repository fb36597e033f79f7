//! Reads one file (one partition) chunk by chunk and delimits its records.

use std::fs::File;
use std::io::{self, BufReader, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use telemetry::gzip::{is_gzip, CappedGzipReader};
use telemetry::{Frame, FrameScanner};

use crate::sources::PartitionProblem;

/// Counts bytes read from the underlying file, compressed or not (for progress).
struct CountingReader<R> {
    inner: R,
    count: Arc<AtomicU64>,
}

impl<R: Read> Read for CountingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let read = self.inner.read(buf)?;
        self.count.fetch_add(read as u64, Ordering::Relaxed);
        Ok(read)
    }
}

/// What one chunk read produced.
pub(crate) struct Chunk {
    pub(crate) frames: Vec<Frame>,
    pub(crate) resume_offset: u64,
    pub(crate) finished: bool,
    pub(crate) problem: Option<PartitionProblem>,
    pub(crate) disk_bytes: u64,
}

/// An open file positioned at a frame boundary.
pub(crate) struct PartitionReader {
    path: PathBuf,
    reader: Box<dyn Read + Send>,
    gzip: bool,
    scanner: FrameScanner,
    buffer: Vec<u8>,
    disk_bytes: Arc<AtomicU64>,
    reported_disk_bytes: u64,
}

impl PartitionReader {
    /// Opens `path` and positions it at decompressed offset `start` (a frame boundary).
    pub(crate) fn open(
        path: &Path,
        start: u64,
        read_bytes: usize,
        max_record_bytes: usize,
        max_decompressed_bytes: u64,
    ) -> io::Result<Self> {
        let mut file = File::open(path)?;
        let mut magic = [0u8; 2];
        let magic_len = file.read(&mut magic)?;
        file.seek(SeekFrom::Start(0))?;
        let gzip = is_gzip(&magic[..magic_len]);
        let disk_bytes = Arc::new(AtomicU64::new(0));
        let counted = CountingReader {
            inner: BufReader::with_capacity(256 * 1024, file),
            count: Arc::clone(&disk_bytes),
        };
        let mut reader: Box<dyn Read + Send> = if gzip {
            Box::new(CappedGzipReader::new(counted, max_decompressed_bytes))
        } else {
            Box::new(counted)
        };
        if start > 0 {
            if gzip {
                io::copy(&mut (&mut reader).take(start), &mut io::sink())?;
            } else {
                drop(reader);
                let mut file = File::open(path)?;
                file.seek(SeekFrom::Start(start))?;
                disk_bytes.store(start, Ordering::Relaxed);
                reader = Box::new(CountingReader {
                    inner: BufReader::with_capacity(256 * 1024, file),
                    count: Arc::clone(&disk_bytes),
                });
            }
        }
        let reported_disk_bytes = disk_bytes.load(Ordering::Relaxed);
        Ok(Self {
            path: path.to_owned(),
            reader,
            gzip,
            scanner: FrameScanner::starting_at(max_record_bytes, start),
            buffer: vec![0; read_bytes],
            disk_bytes,
            reported_disk_bytes,
        })
    }

    /// Reads up to one chunk and returns the frames it completed.
    pub(crate) fn read_chunk(&mut self) -> Chunk {
        let mut frames = Vec::new();
        let mut problem = None;
        let finished = match self.reader.read(&mut self.buffer) {
            Ok(0) => {
                self.scanner.finish(&mut frames);
                true
            }
            Ok(read) => {
                self.scanner.feed(&self.buffer[..read], &mut frames);
                false
            }
            Err(err) if err.kind() == io::ErrorKind::Interrupted => false,
            Err(err) => {
                self.scanner.finish(&mut frames);
                let reason = if self.gzip && err.to_string().contains("cap exceeded") {
                    format!(
                        "gzip file {} decompresses to more than decode.max_decompressed_bytes; \
                         the rest of the file is skipped",
                        self.path.display()
                    )
                } else {
                    format!(
                        "reading {} failed: {err}; the rest of the file is skipped",
                        self.path.display()
                    )
                };
                problem = Some(PartitionProblem {
                    offset: self.scanner.consumed(),
                    reason,
                });
                true
            }
        };
        let total_disk = self.disk_bytes.load(Ordering::Relaxed);
        let disk_bytes = total_disk - self.reported_disk_bytes;
        self.reported_disk_bytes = total_disk;
        Chunk {
            frames,
            resume_offset: self.scanner.safe_resume_offset(),
            finished,
            problem,
            disk_bytes,
        }
    }
}
