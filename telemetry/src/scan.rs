//! A cursor over JSON text for the hand-written fast paths (the wide-record parser, the plain
//! attribute objects): it skips whitespace and reads strings without escapes, whose bodies are
//! scanned eight bytes at a time.

const ONES: u64 = 0x0101_0101_0101_0101;
const HIGHS: u64 = 0x8080_8080_8080_8080;

/// The high bit of every zero byte of `word` set, and possibly of bytes above the lowest zero
/// byte (the classic SWAR test): the lowest set bit always marks the first zero byte.
#[inline]
fn zero_bytes(word: u64) -> u64 {
    word.wrapping_sub(ONES) & !word & HIGHS
}

/// Length of a string body up to its closing quote, eight bytes at a time; `None` at a
/// backslash or a control character (left to serde) or when the input ends first. The first
/// byte of a word that ends the body is found from the masks, without a byte loop.
#[inline]
fn string_body_len(bytes: &[u8]) -> Option<usize> {
    let mut at = 0;
    while let Some(chunk) = bytes.get(at..at + 8) {
        let word = u64::from_le_bytes(chunk.try_into().ok()?);
        let quote = zero_bytes(word ^ (ONES * u64::from(b'"')));
        let backslash = zero_bytes(word ^ (ONES * u64::from(b'\\')));
        // A byte below 0x20 has its top three bits clear.
        let control = zero_bytes(word & (ONES * 0xE0));
        let stops = quote | backslash | control;
        if stops != 0 {
            // The first stop ends the body when it is a quote; bit 7 of byte i is bit 8i + 7.
            let first = stops & stops.wrapping_neg();
            return (quote & first != 0).then(|| at + (first.trailing_zeros() / 8) as usize);
        }
        at += 8;
    }
    loop {
        match *bytes.get(at)? {
            b'"' => return Some(at),
            b'\\' | 0..=0x1f => return None,
            _ => at += 1,
        }
    }
}

/// A position in JSON text (already validated UTF-8). The fast paths extend it with what they
/// read; everything here returns `None` where serde must decide instead.
pub(crate) struct Scanner<'a> {
    pub(crate) text: &'a str,
    pub(crate) bytes: &'a [u8],
    pub(crate) at: usize,
}

impl<'a> Scanner<'a> {
    /// A scanner at the start of `text`.
    pub(crate) fn new(text: &'a str) -> Self {
        Scanner {
            text,
            bytes: text.as_bytes(),
            at: 0,
        }
    }

    #[inline]
    pub(crate) fn skip_whitespace(&mut self) {
        while let Some(b' ' | b'\n' | b'\r' | b'\t') = self.bytes.get(self.at) {
            self.at += 1;
        }
    }

    #[inline]
    pub(crate) fn peek(&self) -> Option<u8> {
        self.bytes.get(self.at).copied()
    }

    /// The next byte that is not whitespace, looking for whitespace only when `expected` turns
    /// down the byte at the cursor (compact JSON has none, so the usual case is one test).
    #[inline(always)]
    pub(crate) fn peek_expecting(&mut self, expected: impl Fn(u8) -> bool) -> Option<u8> {
        match self.bytes.get(self.at) {
            Some(&byte) if expected(byte) => Some(byte),
            _ => {
                self.skip_whitespace();
                self.peek()
            }
        }
    }

    /// True when `byte` is next (after whitespace). The same as [`Self::peek_expecting`] with
    /// `byte` expected, written out: through the closure and the `Option` it compiled to 60 M
    /// more instructions on the first 300,000 W1 records.
    #[inline(always)]
    pub(crate) fn at_byte(&mut self, byte: u8) -> bool {
        if self.bytes.get(self.at) == Some(&byte) {
            return true;
        }
        self.skip_whitespace();
        self.bytes.get(self.at) == Some(&byte)
    }

    /// After an object member: `Some(true)` past a comma (another member follows),
    /// `Some(false)` past the closing brace, `None` at anything else.
    #[inline(always)]
    pub(crate) fn after_member(&mut self) -> Option<bool> {
        if self.at_byte(b',') {
            self.at += 1;
            return Some(true);
        }
        self.eat(b'}').map(|()| false)
    }

    /// `byte` after whitespace, consumed.
    #[inline]
    pub(crate) fn eat(&mut self, byte: u8) -> Option<()> {
        self.at_byte(byte).then(|| self.at += 1)
    }

    /// A string (after whitespace) without escapes or control characters, without its quotes.
    #[inline(always)]
    pub(crate) fn string(&mut self) -> Option<&'a str> {
        if !self.at_byte(b'"') {
            return None;
        }
        let start = self.at + 1;
        let end = start + string_body_len(self.bytes.get(start..)?)?;
        self.at = end + 1;
        // Quotes are ASCII, so both ends are character boundaries of the validated text.
        self.text.get(start..end)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn string_scanning_finds_the_first_special_byte_wherever_it_lies() {
        // Reference: byte by byte.
        let reference = |bytes: &[u8]| {
            for (at, byte) in bytes.iter().enumerate() {
                match byte {
                    b'"' => return Some(at),
                    b'\\' | 0..=0x1f => return None,
                    _ => {}
                }
            }
            None
        };
        for len in 0..24 {
            for special in [b'"', b'\\', 0x1f, 0x00, 0x01] {
                for after in [b'"', 0x01, 0x00, b'\\', 0x80] {
                    let mut bytes = vec![b'a'; len];
                    bytes.extend([special, after, b'"', 0x01, b'"', b'a', 0xE9]);
                    assert_eq!(string_body_len(&bytes), reference(&bytes), "{bytes:?}");
                }
            }
        }
    }

    proptest::proptest! {
        /// Bytes next to the special ones (`!` and `#` around the quote, `[` and `]` around the
        /// backslash, 0x20 above the controls) turn into 0x01 in the masked words, where a
        /// borrow from a zero byte below flags them too: the scan must still stop at the first
        /// special byte, with any mix of them and of UTF-8 bytes around.
        #[test]
        fn string_scanning_equals_a_byte_by_byte_scan(bytes in proptest::collection::vec(
            proptest::sample::select(vec![
                b'"', b'\\', 0x00, 0x01, 0x1f, 0x20, b'!', b'#', b'[', b']', b'a', 0x7f, 0x80,
                0xc3, 0xa9, 0xff,
            ]),
            0..40,
        )) {
            let reference = bytes
                .iter()
                .position(|byte| matches!(byte, b'"' | b'\\' | 0..=0x1f))
                .filter(|at| bytes[*at] == b'"');
            proptest::prop_assert_eq!(string_body_len(&bytes), reference);
        }
    }

    #[test]
    fn string_scanning_finds_the_quote_and_stops_at_escapes() {
        assert_eq!(string_body_len(b"\""), Some(0));
        assert_eq!(string_body_len(b"abcdefghijklmnop\"x"), Some(16));
        assert_eq!(
            string_body_len("héllo wörld, long enough\"".as_bytes()),
            Some(26)
        );
        assert_eq!(string_body_len(b"abcdefgh\\\"ijk\""), None);
        assert_eq!(string_body_len(b"abcdefghij\nk\""), None);
        assert_eq!(string_body_len(b"abcdefghijklmn"), None);
    }

    #[test]
    fn strings_are_read_after_whitespace_up_to_their_closing_quote() {
        let mut scanner = Scanner::new(" \t\"model\" :\"a\\\"b\"");
        assert_eq!(scanner.string(), Some("model"));
        assert_eq!(scanner.eat(b':'), Some(()));
        assert_eq!(scanner.string(), None, "escapes are left to serde");
        assert_eq!(Scanner::new("x").string(), None);
    }
}
