//! Where the S3 dead-letter sink's objects go, and how the object open at a checkpoint is
//! recorded in the sink's 64-bit resume token.
//!
//! Objects are numbered from 0 and closed by size only, so the same input always gives the same
//! objects: a replay rewrites them with identical content. The key is
//! `<prefix><YYYY>/<MM>/<DD>/<number>.ndjson`, dated by the newest event time of the outputs seen
//! before the object's first line (deterministic too), or `<prefix>undated/<number>.ndjson` before
//! any. One case is not exact: after a crash, the newest event time is learnt again from the
//! replayed outputs, so an object opened before they reach the day the first run had reached can
//! get an earlier date than in the first run, and its lines then stand in both objects.
//!
//! The token packs the open object: its day (16 bits, days since 1970; 0 = undated), its number
//! (22 bits) and its length in bytes at the checkpoint (26 bits, hence the 64 MiB object cap).

/// The object being filled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ObjectId {
    /// Days since 1970-01-01 of its date; 0 = undated.
    pub day: u16,
    /// Sequence number.
    pub number: u32,
}

const NUMBER_BITS: u32 = 22;
const LENGTH_BITS: u32 = 26;

/// Largest object length a token can record.
pub const MAX_OBJECT_BYTES: usize = (1 << LENGTH_BITS) - 1;

impl ObjectId {
    /// The object of `number` dated by `newest_event_ms` (undated when `None`).
    pub fn new(number: u32, newest_event_ms: Option<i64>) -> Self {
        let day = newest_event_ms
            .map(|ms| ms.div_euclid(86_400_000))
            .and_then(|day| u16::try_from(day).ok())
            .unwrap_or(0);
        Self {
            day,
            number: number & ((1 << NUMBER_BITS) - 1),
        }
    }

    /// The key under `prefix`.
    pub fn key(&self, prefix: &str) -> String {
        if self.day == 0 {
            return format!("{prefix}undated/{:07}.ndjson", self.number);
        }
        let date =
            time::Date::from_julian_day(2_440_588 + i32::from(self.day)).unwrap_or(time::Date::MIN);
        format!(
            "{prefix}{:04}/{:02}/{:02}/{:07}.ndjson",
            date.year(),
            u8::from(date.month()),
            date.day(),
            self.number
        )
    }

    /// The resume token for this object holding `length` bytes.
    pub fn token(&self, length: usize) -> u64 {
        (u64::from(self.day) << (NUMBER_BITS + LENGTH_BITS))
            | (u64::from(self.number) << LENGTH_BITS)
            | (length.min(MAX_OBJECT_BYTES) as u64)
    }

    /// The object and length a token records.
    pub fn from_token(token: u64) -> (Self, usize) {
        let length = (token & ((1 << LENGTH_BITS) - 1)) as usize;
        let number = ((token >> LENGTH_BITS) & ((1 << NUMBER_BITS) - 1)) as u32;
        let day = (token >> (NUMBER_BITS + LENGTH_BITS)) as u16;
        (Self { day, number }, length)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_dated_by_event_time_and_tokens_round_trip() {
        let id = ObjectId::new(42, Some(1_767_225_600_000));
        assert_eq!(id.key("dl/"), "dl/2026/01/01/0000042.ndjson");
        assert_eq!(
            ObjectId::new(3, None).key("dl/"),
            "dl/undated/0000003.ndjson"
        );
        let token = id.token(123_456);
        assert_eq!(ObjectId::from_token(token), (id, 123_456));
    }
}
