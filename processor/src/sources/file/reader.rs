//! Reads one file (one partition) chunk by chunk and delimits its records.

use std::fs::File;
use std::io::{self, BufReader, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use telemetry::gzip::{is_gzip, CappedGzipReader};
use telemetry::{last_record_line_start, Frame, FrameScanner, SegmentEnd};

use crate::buffers::{BufferPool, Pooled};
use crate::sources::{PartitionProblem, Segment};

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

/// What one chunk read produced: frames, or a piece of raw input for the decode stage to frame.
pub(crate) struct Chunk {
    pub(crate) frames: Vec<Frame>,
    pub(crate) segment: Option<Segment>,
    pub(crate) resume_offset: u64,
    pub(crate) finished: bool,
    pub(crate) problem: Option<PartitionProblem>,
    pub(crate) disk_bytes: u64,
}

/// How a partition's bytes are delimited.
enum Framing {
    /// Pieces cut where a line opens a record ([`last_record_line_start`]): the decode workers
    /// frame them in parallel, without a copy per record. The first `pending_len` bytes of
    /// `pending` are the bytes from offset `pending_start` that no piece has taken yet; bytes
    /// after them are stale, kept so the next read can go straight into them (see
    /// [`Input::read_more`]).
    Pieces {
        pending: Pooled<u8>,
        pending_len: usize,
        pending_start: u64,
    },
    /// The incremental scanner, here in the reader: for input where no line opens a record
    /// within reach (a pretty-printed array, one huge value), so memory stays bounded.
    Scanner(FrameScanner),
}

/// An open file positioned at a frame boundary.
pub(crate) struct PartitionReader {
    input: Input,
    framing: Framing,
    disk_bytes: Arc<AtomicU64>,
    reported_disk_bytes: u64,
}

/// The decompressed byte stream of a file and how much to read at a time.
struct Input {
    path: PathBuf,
    reader: Box<dyn Read + Send>,
    gzip: bool,
    buffers: Arc<BufferPool<u8>>,
    read_bytes: usize,
    max_record_bytes: usize,
    scanner_buffer: Vec<u8>,
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
        // Pieces in flight are bounded by the pipeline's channels; a few spares suffice.
        let buffers = BufferPool::new(8);
        Ok(Self {
            framing: Framing::Pieces {
                pending: buffers.take(read_bytes),
                pending_len: 0,
                pending_start: start,
            },
            input: Input {
                path: path.to_owned(),
                reader,
                gzip,
                buffers,
                read_bytes: read_bytes.max(1),
                max_record_bytes,
                scanner_buffer: Vec::new(),
            },
            disk_bytes,
            reported_disk_bytes,
        })
    }

    /// Reads up to one chunk and returns the frames or the piece it completed.
    pub(crate) fn read_chunk(&mut self) -> Chunk {
        let mut chunk = match &mut self.framing {
            Framing::Pieces {
                pending,
                pending_len,
                pending_start,
            } => {
                let (chunk, scanner) = self.input.read_piece(pending, pending_len, pending_start);
                if let Some(scanner) = scanner {
                    self.framing = Framing::Scanner(scanner);
                }
                chunk
            }
            Framing::Scanner(scanner) => self.input.read_frames(scanner),
        };
        let total_disk = self.disk_bytes.load(Ordering::Relaxed);
        chunk.disk_bytes = total_disk - self.reported_disk_bytes;
        self.reported_disk_bytes = total_disk;
        chunk
    }
}

impl Input {
    /// Reads into `pending` and hands out what precedes its last record line start; returns
    /// the scanner to use from now on when no such line start is within reach.
    fn read_piece(
        &mut self,
        pending: &mut Pooled<u8>,
        pending_len: &mut usize,
        pending_start: &mut u64,
    ) -> (Chunk, Option<FrameScanner>) {
        let (read, error) = self.read_more(pending, *pending_len);
        *pending_len = pending.len();
        let (finished, problem) = match error {
            Some(err) => {
                let offset = *pending_start + pending.len() as u64;
                (true, Some(self.problem(&err, offset)))
            }
            None => (read == 0, None),
        };
        let mut chunk = Chunk {
            frames: Vec::new(),
            segment: None,
            resume_offset: *pending_start,
            finished,
            problem,
            disk_bytes: 0,
        };
        if finished {
            if !pending.is_empty() {
                chunk.segment = Some(Segment {
                    start: *pending_start,
                    bytes: std::mem::take(pending),
                    end: SegmentEnd::InputEnds,
                });
            }
            return (chunk, None);
        }
        match last_record_line_start(pending) {
            Some(cut) => {
                // The rest goes to the front of a buffer an earlier piece left, over its stale
                // bytes, which stay for the next read to overwrite.
                let carried = pending.len() - cut;
                let mut rest = self.buffers.take_as_left();
                if rest.len() < carried {
                    rest.resize(carried, 0);
                }
                rest[..carried].copy_from_slice(&pending[cut..]);
                *pending_len = carried;
                pending.truncate(cut);
                chunk.segment = Some(Segment {
                    start: *pending_start,
                    bytes: std::mem::replace(pending, rest),
                    end: SegmentEnd::NewRecordFollows,
                });
                *pending_start += cut as u64;
                chunk.resume_offset = *pending_start;
                (chunk, None)
            }
            None if pending.len() > self.read_bytes + self.max_record_bytes => {
                // No line opens a record within reach: the scanner takes over for the rest
                // of the file, starting with what is pending.
                let mut scanner = FrameScanner::starting_at(self.max_record_bytes, *pending_start);
                scanner.feed(pending, &mut chunk.frames);
                chunk.resume_offset = scanner.safe_resume_offset();
                (chunk, Some(scanner))
            }
            None => (chunk, None),
        }
    }

    /// Reads up to `read_bytes` more into `buffer` after its first `len` bytes, then cuts it to
    /// what it holds; returns how many bytes were read, and the error that stopped reading, if
    /// any. The bytes are read straight into the buffer's stale bytes (left there by an earlier
    /// piece), which need no zeroing first, unlike the spare room `read_to_end` fills; only
    /// room never written before is zeroed.
    fn read_more(&mut self, buffer: &mut Vec<u8>, len: usize) -> (usize, Option<io::Error>) {
        let want = len + self.read_bytes;
        if buffer.len() < want {
            buffer.resize(want, 0);
        }
        let mut filled = len;
        let mut error = None;
        while filled < want {
            match self.reader.read(&mut buffer[filled..want]) {
                Ok(0) => break,
                Ok(read) => filled += read,
                Err(err) if err.kind() == io::ErrorKind::Interrupted => {}
                Err(err) => {
                    error = Some(err);
                    break;
                }
            }
        }
        buffer.truncate(filled);
        (filled - len, error)
    }

    /// Reads one chunk through the incremental scanner.
    fn read_frames(&mut self, scanner: &mut FrameScanner) -> Chunk {
        if self.scanner_buffer.len() != self.read_bytes {
            self.scanner_buffer = vec![0; self.read_bytes];
        }
        let mut chunk = Chunk {
            frames: Vec::new(),
            segment: None,
            resume_offset: 0,
            finished: false,
            problem: None,
            disk_bytes: 0,
        };
        chunk.finished = match self.reader.read(&mut self.scanner_buffer) {
            Ok(0) => {
                scanner.finish(&mut chunk.frames);
                true
            }
            Ok(read) => {
                scanner.feed(&self.scanner_buffer[..read], &mut chunk.frames);
                false
            }
            Err(err) if err.kind() == io::ErrorKind::Interrupted => false,
            Err(err) => {
                scanner.finish(&mut chunk.frames);
                chunk.problem = Some(self.problem(&err, scanner.consumed()));
                true
            }
        };
        chunk.resume_offset = scanner.safe_resume_offset();
        chunk
    }

    /// The problem that ends the partition when reading fails at `offset`.
    fn problem(&self, err: &io::Error, offset: u64) -> PartitionProblem {
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
        PartitionProblem { offset, reason }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use telemetry::{DecodeOptions, Decoder, Format, Outcome};

    const RECORD: &str = r#"{"vehicle_id":"v1","ts":1767225600000,"signals":{"x":1.5}}"#;

    fn decoder() -> Decoder {
        Decoder::new(
            Format::Wide,
            DecodeOptions {
                max_record_bytes: 200,
                ..DecodeOptions::default()
            },
        )
    }

    fn summary(outcome: &Outcome) -> String {
        match outcome {
            Ok(decoded) => format!("{} {:?}", decoded.offset, decoded.decoded),
            Err(rejected) => format!("{} {:?}", rejected.error.offset, rejected.error.kind),
        }
    }

    /// Every chunk of the file from `start`, decoded; with the resume offset after each chunk.
    fn read_all(path: &Path, start: u64, read_bytes: usize) -> (Vec<String>, Vec<u64>, bool) {
        let mut reader = PartitionReader::open(path, start, read_bytes, 200, u64::MAX).unwrap();
        let mut decoder = decoder();
        let (mut outcomes, mut resumes, mut used_pieces) = (Vec::new(), Vec::new(), false);
        loop {
            let chunk = reader.read_chunk();
            for frame in &chunk.frames {
                decoder.decode_frame(frame, 0, &mut outcomes);
            }
            if let Some(segment) = &chunk.segment {
                used_pieces = true;
                decoder.decode_segment(&segment.bytes, segment.start, segment.end, |outcome| {
                    outcomes.push(outcome)
                });
            }
            if chunk.finished {
                break;
            }
            resumes.push(chunk.resume_offset);
        }
        (outcomes.iter().map(summary).collect(), resumes, used_pieces)
    }

    /// The whole file through the scanner in one piece, decoded.
    fn scanned(bytes: &[u8]) -> Vec<String> {
        let decoder = decoder();
        let mut outcomes = Vec::new();
        for frame in FrameScanner::split(bytes, 200) {
            decoder.decode_frame(&frame, 0, &mut outcomes);
        }
        outcomes.iter().map(summary).collect()
    }

    #[test]
    fn pieces_decode_like_the_scanner_and_every_resume_offset_continues_exactly() {
        let mut text = String::new();
        for i in 0..40 {
            match i % 7 {
                3 => text.push_str("{\"vehicle_id\":\"cut\",\"ts\":\n"),
                5 => text.push_str("garbage\n"),
                _ => text.push_str(&format!("{}\n", RECORD.replace("v1", &format!("v{i}")))),
            }
        }
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("input.ndjson");
        std::fs::write(&path, &text).unwrap();
        let whole = scanned(text.as_bytes());
        let (outcomes, resumes, used_pieces) = read_all(&path, 0, 97);
        assert!(used_pieces);
        assert_eq!(outcomes, whole);
        for resume in resumes {
            let (rest, _, _) = read_all(&path, resume, 97);
            let expected: Vec<String> = whole
                .iter()
                .filter(|outcome| {
                    let offset: u64 = outcome.split(' ').next().unwrap().parse().unwrap();
                    offset >= resume
                })
                .cloned()
                .collect();
            assert_eq!(rest, expected, "resuming at {resume}");
        }
    }

    #[test]
    fn input_where_no_line_opens_a_record_falls_back_to_the_scanner() {
        // A pretty-printed array: no line starts with `{`, so no piece can be cut; the reader
        // hands over to the scanner once more than a chunk and a record are pending.
        let mut text = String::from("[\n");
        for _ in 0..30 {
            text.push_str(&format!("  {RECORD},\n"));
        }
        text.push_str(&format!("  {RECORD}\n]\n{RECORD}\n"));
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("pretty.json");
        std::fs::write(&path, &text).unwrap();
        let (outcomes, resumes, used_pieces) = read_all(&path, 0, 64);
        assert!(!used_pieces, "the scanner framed the file");
        assert_eq!(outcomes, scanned(text.as_bytes()));
        assert!(outcomes[0].contains("TooLarge"), "{}", outcomes[0]);
        assert!(outcomes[1].contains("v1"), "{}", outcomes[1]);
        assert!(resumes.iter().all(|resume| *resume <= text.len() as u64));
    }

    #[test]
    fn a_gzip_file_reads_in_pieces_like_the_same_text_uncompressed() {
        // Gzip goes through the same reads into reused buffers (the decompressor may hand back
        // fewer bytes than asked), and through the decompression cap.
        let text: String = (0..60)
            .map(|i| format!("{}\n", RECORD.replace("v1", &format!("vehicle-{i}"))))
            .collect();
        let dir = tempfile::tempdir().unwrap();
        let plain = dir.path().join("input.ndjson");
        std::fs::write(&plain, &text).unwrap();
        let compressed = dir.path().join("input.ndjson.gz");
        let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        std::io::Write::write_all(&mut encoder, text.as_bytes()).unwrap();
        std::fs::write(&compressed, encoder.finish().unwrap()).unwrap();
        let (outcomes, resumes, used_pieces) = read_all(&compressed, 0, 113);
        assert!(used_pieces);
        assert_eq!(outcomes.len(), 60);
        assert_eq!(
            (outcomes.clone(), resumes.clone(), used_pieces),
            read_all(&plain, 0, 113)
        );
        let middle = resumes[resumes.len() / 2];
        assert_eq!(
            read_all(&compressed, middle, 113).0,
            read_all(&plain, middle, 113).0
        );
    }
}
