//! Scanning and equality of short texts (signal names, vehicle ids, JSON strings) for hot
//! paths: they compare millions of names of 4 to 16 bytes, where a call into `memcmp` costs
//! more than the bytes, and scan string bodies eight bytes at a time.

/// True when `a` and `b` hold the same bytes. Texts of 4 to 16 bytes are compared as two
/// overlapping words (the first and last 4 or 8 bytes), which together cover every byte.
#[inline]
pub fn same_text(a: &str, b: &str) -> bool {
    same_bytes(a.as_bytes(), b.as_bytes())
}

#[inline]
fn same_bytes(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    if let (Some(a_head), Some(a_tail), Some(b_head), Some(b_tail)) = (
        a.first_chunk::<8>(),
        a.last_chunk::<8>(),
        b.first_chunk::<8>(),
        b.last_chunk::<8>(),
    ) {
        if a.len() <= 16 {
            return a_head == b_head && a_tail == b_tail;
        }
        return a == b;
    }
    if let (Some(a_head), Some(a_tail), Some(b_head), Some(b_tail)) = (
        a.first_chunk::<4>(),
        a.last_chunk::<4>(),
        b.first_chunk::<4>(),
        b.last_chunk::<4>(),
    ) {
        return a_head == b_head && a_tail == b_tail;
    }
    a.iter().zip(b).all(|(x, y)| x == y)
}

const ONES: u64 = 0x0101_0101_0101_0101;
const HIGHS: u64 = 0x8080_8080_8080_8080;

/// True when some byte of `word` is zero (the classic SWAR test).
#[inline]
fn has_zero_byte(word: u64) -> bool {
    word.wrapping_sub(ONES) & !word & HIGHS != 0
}

/// Length of a string body up to its closing quote, eight bytes at a time; `None` at a
/// backslash or a control character (left to serde) or when the input ends first.
#[inline]
pub(crate) fn string_body_len(bytes: &[u8]) -> Option<usize> {
    let mut at = 0;
    while let Some(chunk) = bytes.get(at..at + 8) {
        let word = u64::from_le_bytes(chunk.try_into().ok()?);
        let quote = has_zero_byte(word ^ (ONES * u64::from(b'"')));
        let backslash = has_zero_byte(word ^ (ONES * u64::from(b'\\')));
        // A byte below 0x20 has its top three bits clear.
        let control = has_zero_byte(word & (ONES * 0xE0));
        if quote || backslash || control {
            break;
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
    use proptest::prelude::*;

    #[test]
    fn every_length_and_every_differing_byte_is_seen() {
        for len in 0..40 {
            let base: Vec<u8> = (0..len).map(|i| b'a' + (i % 26) as u8).collect();
            let text = std::str::from_utf8(&base).unwrap();
            assert!(same_text(text, text), "{len}");
            let copy = String::from(text);
            assert!(same_text(text, &copy), "{len}: another allocation");
            for at in 0..len {
                let mut other = base.clone();
                other[at] = b'Z';
                let other = std::str::from_utf8(&other).unwrap();
                assert!(!same_text(text, other), "len {len}, byte {at}");
                assert!(!same_text(other, text), "len {len}, byte {at}");
            }
            let longer = format!("{text}a");
            assert!(!same_text(text, &longer));
        }
    }

    proptest! {
        #[test]
        fn agrees_with_string_equality(a in "[a-c_é]{0,20}", b in "[a-c_é]{0,20}") {
            prop_assert_eq!(same_text(&a, &b), a == b);
            prop_assert!(same_text(&a, &a.clone()));
        }
    }
}
