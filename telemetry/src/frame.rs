//! Splits a byte stream into top-level JSON values ("frames") without parsing them.
//!
//! Payloads arrive as one object, a JSON array, newline-delimited objects, or objects concatenated
//! with no delimiter at all (as Firehose writes them). The scanner tracks only nesting depth and
//! string state, so it runs far faster than a parser and lets one broken record be rejected
//! without losing its neighbours. It is incremental: a file source feeds it chunk by chunk and
//! memory stays bounded by `max_frame_bytes`.
//!
//! Recovery rules for broken input (documented in the README):
//! - a raw newline inside a string ends the record as truncated (JSON strings cannot hold one);
//! - a `{` in the first column of a line while a record is still open ends that record as
//!   truncated and starts a new one (how a cut-off NDJSON line looks);
//! - bytes outside any value run to the next newline or `{`/`[` and are reported as garbage;
//! - a record longer than `max_frame_bytes` is skipped to its end and reported with its prefix.

/// Why a value still open where its input ends is truncated.
const TRUNCATED_AT_INPUT_END: &str = "input ends inside the record";
/// Why a value still open where the next line starts with `{` is truncated.
const TRUNCATED_BY_NEXT_RECORD: &str = "a new record starts on the next line";

/// How the input continues after the bytes a scanner was given (see [`FrameScanner::finish_at`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SegmentEnd {
    /// The input ends there.
    InputEnds,
    /// A line beginning with `{` follows (the input was cut at [`last_record_line_start`]).
    NewRecordFollows,
}

/// How a frame ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FrameKind {
    /// A complete, balanced `{…}` or `[…]` value (not yet known to be valid JSON).
    Value,
    /// A value that never closed; the reason says how its end was detected.
    Truncated(&'static str),
    /// A balanced value longer than the limit; `bytes` holds only its prefix.
    Oversize,
    /// Bytes outside any value.
    Garbage,
}

/// One delimited piece of the stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frame {
    /// Absolute offset of the first byte in the stream.
    pub start: u64,
    /// Absolute offset one past the last byte.
    pub end: u64,
    /// How the frame ended.
    pub kind: FrameKind,
    /// The frame's bytes (at most `max_frame_bytes` of them).
    pub bytes: Vec<u8>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Between,
    Value,
    Garbage,
}

/// The last offset in `bytes` where a line starts with `{` (just after a `\n`), if any. The
/// scanner always starts a new frame there, whatever came before (see the recovery rules), so
/// input cut at such an offset frames exactly as if it had been scanned in one piece: that lets
/// readers hand independent pieces to parallel decoders.
pub fn last_record_line_start(bytes: &[u8]) -> Option<usize> {
    let mut end = bytes.len();
    while let Some(newline) = memchr::memrchr(b'\n', &bytes[..end]) {
        if bytes.get(newline + 1) == Some(&b'{') {
            return Some(newline + 1);
        }
        end = newline;
    }
    None
}

/// Incremental top-level JSON value splitter; see the module documentation.
#[derive(Debug, Clone)]
pub struct FrameScanner {
    max_frame_bytes: usize,
    consumed: u64,
    state: State,
    start: u64,
    depth: u32,
    in_string: bool,
    escape: bool,
    at_line_start: bool,
    oversize: bool,
    bytes: Vec<u8>,
}

impl FrameScanner {
    /// A scanner that keeps at most `max_frame_bytes` of any one frame.
    pub fn new(max_frame_bytes: usize) -> Self {
        Self {
            max_frame_bytes: max_frame_bytes.max(1),
            consumed: 0,
            state: State::Between,
            start: 0,
            depth: 0,
            in_string: false,
            escape: false,
            at_line_start: true,
            oversize: false,
            bytes: Vec::new(),
        }
    }

    /// A scanner positioned at absolute offset `offset` (resuming a stream at a frame boundary).
    pub fn starting_at(max_frame_bytes: usize, offset: u64) -> Self {
        let mut scanner = Self::new(max_frame_bytes);
        scanner.consumed = offset;
        scanner
    }

    /// Absolute offset of the next byte to feed.
    pub fn consumed(&self) -> u64 {
        self.consumed
    }

    /// True when no frame is open, so [`Self::consumed`] is a safe place to resume from.
    pub fn at_boundary(&self) -> bool {
        self.state == State::Between
    }

    /// Absolute offset where the next frame may begin: the start of the open frame, or
    /// [`Self::consumed`] when none is open. Every frame before it has been emitted.
    pub fn safe_resume_offset(&self) -> u64 {
        match self.state {
            State::Between => self.consumed,
            State::Value | State::Garbage => self.start,
        }
    }

    /// Feeds the next bytes of the stream and appends every frame they complete to `out`.
    pub fn feed(&mut self, chunk: &[u8], out: &mut Vec<Frame>) {
        let mut index = 0;
        while index < chunk.len() {
            index = match self.state {
                State::Between => self.scan_between(chunk, index),
                State::Value => self.scan_value(chunk, index, out),
                State::Garbage => self.scan_garbage(chunk, index, out),
            };
        }
    }

    /// Ends the stream: an open value is emitted as truncated, open garbage as garbage.
    pub fn finish(&mut self, out: &mut Vec<Frame>) {
        self.finish_at(SegmentEnd::InputEnds, out);
    }

    /// Ends the bytes given so far, where the input continues as `end` says: before a line
    /// opening with `{`, an open value ends exactly as it would on reading that line.
    pub fn finish_at(&mut self, end: SegmentEnd, out: &mut Vec<Frame>) {
        match self.state {
            State::Between => {}
            State::Value => {
                let kind = match end {
                    SegmentEnd::NewRecordFollows => FrameKind::Truncated(TRUNCATED_BY_NEXT_RECORD),
                    SegmentEnd::InputEnds if self.oversize => FrameKind::Oversize,
                    SegmentEnd::InputEnds => FrameKind::Truncated(TRUNCATED_AT_INPUT_END),
                };
                self.emit(kind, self.consumed, out);
            }
            State::Garbage => self.emit(FrameKind::Garbage, self.consumed, out),
        }
        self.at_line_start = true;
    }

    /// Splits a complete in-memory payload into frames.
    pub fn split(payload: &[u8], max_frame_bytes: usize) -> Vec<Frame> {
        let mut scanner = Self::new(max_frame_bytes);
        let mut frames = Vec::new();
        scanner.feed(payload, &mut frames);
        scanner.finish(&mut frames);
        frames
    }

    /// Delimits the single frame that starts at `start` in an in-memory payload (scanning only
    /// as far as that frame reaches); a frame still open at the payload's end ends as `end`
    /// says.
    pub fn first_frame(
        payload: &[u8],
        start: usize,
        max_frame_bytes: usize,
        end: SegmentEnd,
    ) -> Frame {
        let mut scanner = Self::starting_at(max_frame_bytes, start as u64);
        let mut frames = Vec::with_capacity(1);
        let mut position = start;
        while frames.is_empty() && position < payload.len() {
            let end = (position + 4096).min(payload.len());
            scanner.feed_until_frame(&payload[position..end], &mut frames);
            position = scanner.consumed() as usize;
        }
        if frames.is_empty() {
            scanner.finish_at(end, &mut frames);
        }
        frames.truncate(1);
        frames.pop().unwrap_or(Frame {
            start: start as u64,
            end: payload.len() as u64,
            kind: FrameKind::Garbage,
            bytes: Vec::new(),
        })
    }

    /// Like [`Self::feed`] but stops right after the first completed frame.
    fn feed_until_frame(&mut self, chunk: &[u8], out: &mut Vec<Frame>) {
        let mut index = 0;
        while index < chunk.len() && out.is_empty() {
            index = match self.state {
                State::Between => self.scan_between(chunk, index),
                State::Value => self.scan_value(chunk, index, out),
                State::Garbage => self.scan_garbage(chunk, index, out),
            };
        }
    }

    fn scan_between(&mut self, chunk: &[u8], mut index: usize) -> usize {
        while index < chunk.len() {
            let byte = chunk[index];
            match byte {
                b'\n' => self.at_line_start = true,
                b' ' | b'\t' | b'\r' => {}
                b'{' | b'[' => {
                    self.open(State::Value);
                    return index;
                }
                _ => {
                    self.open(State::Garbage);
                    return index;
                }
            }
            index += 1;
            self.consumed += 1;
        }
        index
    }

    fn open(&mut self, state: State) {
        self.state = state;
        self.start = self.consumed;
        self.depth = 0;
        self.in_string = false;
        self.escape = false;
        self.oversize = false;
        self.bytes.clear();
    }

    fn scan_value(&mut self, chunk: &[u8], mut index: usize, out: &mut Vec<Frame>) -> usize {
        let run_start = index;
        while index < chunk.len() {
            if self.in_string {
                if self.escape {
                    self.escape = false;
                    // An escaped raw newline still ends the line inside the string (JSON
                    // strings hold no raw newline), so a `{` opening the next line always
                    // starts a record: readers may cut the input there.
                    if chunk[index] != b'\n' {
                        index += 1;
                        continue;
                    }
                }
                match memchr::memchr3(b'"', b'\\', b'\n', &chunk[index..]) {
                    None => index = chunk.len(),
                    Some(found) => {
                        index += found;
                        match chunk[index] {
                            b'"' => self.in_string = false,
                            b'\\' => self.escape = true,
                            _ => {
                                self.append(&chunk[run_start..index], index - run_start);
                                self.consumed += (index - run_start) as u64;
                                self.emit(
                                    FrameKind::Truncated("line ends inside a string"),
                                    self.consumed,
                                    out,
                                );
                                return index;
                            }
                        }
                        index += 1;
                    }
                }
                continue;
            }
            let byte = chunk[index];
            if self.at_line_start && byte == b'{' && self.depth > 0 {
                self.append(&chunk[run_start..index], index - run_start);
                self.consumed += (index - run_start) as u64;
                self.emit(
                    FrameKind::Truncated(TRUNCATED_BY_NEXT_RECORD),
                    self.consumed,
                    out,
                );
                self.open(State::Value);
                return index;
            }
            self.at_line_start = false;
            match byte {
                b'"' => self.in_string = true,
                b'{' | b'[' => self.depth += 1,
                b'}' | b']' => {
                    self.depth -= 1;
                    if self.depth == 0 {
                        index += 1;
                        self.append(&chunk[run_start..index], index - run_start);
                        self.consumed += (index - run_start) as u64;
                        let kind = if self.oversize {
                            FrameKind::Oversize
                        } else {
                            FrameKind::Value
                        };
                        self.emit(kind, self.consumed, out);
                        return index;
                    }
                }
                b'\n' => self.at_line_start = true,
                _ => {}
            }
            index += 1;
        }
        self.append(&chunk[run_start..index], index - run_start);
        self.consumed += (index - run_start) as u64;
        index
    }

    fn scan_garbage(&mut self, chunk: &[u8], mut index: usize, out: &mut Vec<Frame>) -> usize {
        let run_start = index;
        while index < chunk.len() {
            let byte = chunk[index];
            if byte == b'\n' || byte == b'{' || byte == b'[' {
                break;
            }
            index += 1;
            if self.bytes.len() + (index - run_start) >= self.max_frame_bytes {
                break;
            }
        }
        self.append(&chunk[run_start..index], index - run_start);
        self.consumed += (index - run_start) as u64;
        let ended = index < chunk.len() || self.bytes.len() >= self.max_frame_bytes;
        if ended {
            self.emit(FrameKind::Garbage, self.consumed, out);
        }
        index
    }

    fn append(&mut self, bytes: &[u8], len: usize) {
        let room = self.max_frame_bytes.saturating_sub(self.bytes.len());
        if len > room {
            self.oversize = true;
        }
        self.bytes.extend_from_slice(&bytes[..len.min(room)]);
    }

    fn emit(&mut self, kind: FrameKind, end: u64, out: &mut Vec<Frame>) {
        out.push(Frame {
            start: self.start,
            end,
            kind,
            bytes: std::mem::take(&mut self.bytes),
        });
        self.state = State::Between;
        self.depth = 0;
        self.in_string = false;
        self.escape = false;
        self.oversize = false;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn kinds(frames: &[Frame]) -> Vec<FrameKind> {
        frames.iter().map(|frame| frame.kind).collect()
    }

    fn texts(frames: &[Frame]) -> Vec<String> {
        frames
            .iter()
            .map(|frame| String::from_utf8_lossy(&frame.bytes).into_owned())
            .collect()
    }

    #[test]
    fn splits_concatenated_ndjson_and_arrays() {
        let payload = br#"{"a":1}{"b":"}{"}
  {"c":[1,{"d":2}]}
[{"e":3},{"f":4}]"#;
        let frames = FrameScanner::split(payload, 1024);
        assert_eq!(
            texts(&frames),
            vec![
                r#"{"a":1}"#,
                r#"{"b":"}{"}"#,
                r#"{"c":[1,{"d":2}]}"#,
                r#"[{"e":3},{"f":4}]"#
            ]
        );
        assert!(frames.iter().all(|frame| frame.kind == FrameKind::Value));
        assert_eq!(frames[1].start, 7);
    }

    #[test]
    fn escaped_quotes_do_not_end_strings() {
        let frames = FrameScanner::split(br#"{"a":"x\"}y\\"}{"b":1}"#, 1024);
        assert_eq!(texts(&frames), vec![r#"{"a":"x\"}y\\"}"#, r#"{"b":1}"#]);
    }

    #[test]
    fn truncated_line_does_not_swallow_the_next() {
        let frames = FrameScanner::split(
            b"{\"a\":1,\n{\"b\":2}\n{\"c\":\"unterminated\n{\"d\":4}",
            1024,
        );
        assert_eq!(
            kinds(&frames),
            vec![
                FrameKind::Truncated("a new record starts on the next line"),
                FrameKind::Value,
                FrameKind::Truncated("line ends inside a string"),
                FrameKind::Value
            ]
        );
        assert_eq!(texts(&frames)[3], r#"{"d":4}"#);
    }

    #[test]
    fn garbage_and_truncated_end() {
        let frames = FrameScanner::split(b"NaN\n{\"a\":1}\n{\"b\":", 1024);
        assert_eq!(
            kinds(&frames),
            vec![
                FrameKind::Garbage,
                FrameKind::Value,
                FrameKind::Truncated("input ends inside the record")
            ]
        );
    }

    #[test]
    fn oversize_keeps_prefix_and_recovers() {
        let big = format!("{{\"a\":\"{}\"}}{{\"b\":1}}", "x".repeat(100));
        let frames = FrameScanner::split(big.as_bytes(), 16);
        assert_eq!(kinds(&frames), vec![FrameKind::Oversize, FrameKind::Value]);
        assert_eq!(frames[0].bytes.len(), 16);
        assert_eq!(frames[0].end, 108);
    }

    #[test]
    fn long_garbage_is_cut_at_the_limit() {
        let frames = FrameScanner::split(&[0u8; 100], 30);
        assert_eq!(frames.len(), 4);
        assert!(frames.iter().all(|frame| frame.kind == FrameKind::Garbage));
        assert_eq!(frames.last().map(|frame| frame.end), Some(100));
    }

    proptest! {
        #[test]
        fn chunking_never_changes_frames(split_points in proptest::collection::vec(0usize..200, 0..6)) {
            let payload = b"{\"a\":\"q\\\"}\"}\n[{\"b\":2}]{\"c\":{\"d\":[1,2]}}\nxx\n{\"e\":\n{\"f\":1}";
            let whole = FrameScanner::split(payload, 64);
            let mut points: Vec<usize> = split_points.into_iter().map(|p| p % payload.len()).collect();
            points.sort_unstable();
            let mut scanner = FrameScanner::new(64);
            let mut frames = Vec::new();
            let mut last = 0;
            for point in points {
                scanner.feed(&payload[last..point], &mut frames);
                last = point;
            }
            scanner.feed(&payload[last..], &mut frames);
            scanner.finish(&mut frames);
            prop_assert_eq!(frames, whole);
        }

        #[test]
        fn never_panics_and_covers_input(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
            let frames = FrameScanner::split(&bytes, 50);
            let mut last_end = 0;
            for frame in &frames {
                prop_assert!(frame.start >= last_end);
                prop_assert!(frame.end > frame.start);
                last_end = frame.end;
            }
        }
    }
}
