//! Equality of short texts (signal names, vehicle ids) without a call into `memcmp`: the hot
//! paths compare millions of names of 4 to 16 bytes, where the call costs more than the bytes.

/// True when `a` and `b` hold the same bytes. Texts of 4 to 16 bytes are compared as two
/// overlapping words (the first and last 4 or 8 bytes), which together cover every byte.
#[inline]
pub fn same_text(a: &str, b: &str) -> bool {
    same_bytes(a.as_bytes(), b.as_bytes())
}

/// [`same_text`] for bytes.
#[inline]
pub(crate) fn same_bytes(a: &[u8], b: &[u8]) -> bool {
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

#[cfg(test)]
mod tests {
    use super::*;
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
