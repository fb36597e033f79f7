//! Event-time parsing: epoch numbers in s / ms / µs / ns, or RFC 3339 strings.
//!
//! **Inference rule** (when [`TimeUnit::Auto`] is configured), on the magnitude of the number:
//! below 10¹¹ it is seconds (10¹¹ s is the year 5138), below 10¹⁴ milliseconds, below 10¹⁷
//! microseconds, otherwise nanoseconds. So any time between 1973 and 5138 is read right in every
//! unit. Fractional numbers are allowed and truncated toward negative infinity at the millisecond.

use serde::{Deserialize, Serialize};
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

use crate::record::EpochMillis;

/// Unit of numeric timestamps in the payload.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TimeUnit {
    /// Infer from the magnitude (see the module documentation).
    #[default]
    Auto,
    /// Seconds since the epoch.
    Seconds,
    /// Milliseconds since the epoch.
    Millis,
    /// Microseconds since the epoch.
    Micros,
    /// Nanoseconds since the epoch.
    Nanos,
}

impl TimeUnit {
    fn resolve(self, magnitude: f64) -> TimeUnit {
        match self {
            TimeUnit::Auto if magnitude < 1e11 => TimeUnit::Seconds,
            TimeUnit::Auto if magnitude < 1e14 => TimeUnit::Millis,
            TimeUnit::Auto if magnitude < 1e17 => TimeUnit::Micros,
            TimeUnit::Auto => TimeUnit::Nanos,
            unit => unit,
        }
    }
}

/// Converts an integer epoch timestamp to milliseconds.
pub fn millis_from_int(value: i128, unit: TimeUnit) -> Result<EpochMillis, String> {
    let millis = match unit.resolve(value.unsigned_abs() as f64) {
        TimeUnit::Seconds => value.checked_mul(1000),
        TimeUnit::Millis | TimeUnit::Auto => Some(value),
        TimeUnit::Micros => Some(value.div_euclid(1000)),
        TimeUnit::Nanos => Some(value.div_euclid(1_000_000)),
    };
    millis
        .and_then(|ms| EpochMillis::try_from(ms).ok())
        .ok_or_else(|| format!("timestamp {value} is out of range"))
}

/// Converts a fractional epoch timestamp to milliseconds.
pub fn millis_from_float(value: f64, unit: TimeUnit) -> Result<EpochMillis, String> {
    if !value.is_finite() {
        return Err(format!("timestamp {value} is not a finite number"));
    }
    let millis = match unit.resolve(value.abs()) {
        TimeUnit::Seconds => value * 1000.0,
        TimeUnit::Millis | TimeUnit::Auto => value,
        TimeUnit::Micros => value / 1000.0,
        TimeUnit::Nanos => value / 1_000_000.0,
    }
    .floor();
    if millis.abs() > 9.0e15 {
        return Err(format!("timestamp {value} is out of range"));
    }
    Ok(millis as EpochMillis)
}

/// Parses a timestamp string: RFC 3339 (`2026-01-01T00:00:00.250Z`), or a number in a string.
pub fn millis_from_str(text: &str, unit: TimeUnit) -> Result<EpochMillis, String> {
    let trimmed = text.trim();
    if let Ok(int) = trimmed.parse::<i128>() {
        return millis_from_int(int, unit);
    }
    if let Ok(float) = trimmed.parse::<f64>() {
        if float.is_finite() {
            return millis_from_float(float, unit);
        }
    }
    let parsed = OffsetDateTime::parse(trimmed, &Rfc3339)
        .map_err(|err| format!("{text:?} is neither an epoch number nor RFC 3339 ({err})"))?;
    EpochMillis::try_from(parsed.unix_timestamp_nanos().div_euclid(1_000_000))
        .map_err(|_| format!("timestamp {text:?} is out of range"))
}

/// Formats epoch milliseconds as RFC 3339 (UTC), for messages and outputs.
pub fn format_rfc3339(millis: EpochMillis) -> String {
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(millis) * 1_000_000)
        .ok()
        .and_then(|time| time.format(&Rfc3339).ok())
        .unwrap_or_else(|| format!("{millis} ms"))
}

/// Parses an RFC 3339 string to epoch milliseconds (for configuration values).
pub fn parse_rfc3339(text: &str) -> Result<EpochMillis, String> {
    let parsed = OffsetDateTime::parse(text, &Rfc3339)
        .map_err(|err| format!("{text:?} is not an RFC 3339 time ({err})"))?;
    EpochMillis::try_from(parsed.unix_timestamp_nanos().div_euclid(1_000_000))
        .map_err(|_| format!("{text:?} is out of range"))
}

#[cfg(test)]
mod tests {
    use super::*;

    const JAN_2026_MS: i64 = 1_767_225_600_000;

    #[test]
    fn auto_infers_every_unit() {
        assert_eq!(
            millis_from_int(1_767_225_600, TimeUnit::Auto),
            Ok(JAN_2026_MS)
        );
        assert_eq!(
            millis_from_int(JAN_2026_MS.into(), TimeUnit::Auto),
            Ok(JAN_2026_MS)
        );
        assert_eq!(
            millis_from_int(1_767_225_600_000_123, TimeUnit::Auto),
            Ok(JAN_2026_MS)
        );
        assert_eq!(
            millis_from_int(1_767_225_600_000_123_456, TimeUnit::Auto),
            Ok(JAN_2026_MS)
        );
    }

    #[test]
    fn explicit_unit_wins_over_inference() {
        assert_eq!(millis_from_int(5, TimeUnit::Millis), Ok(5));
        assert_eq!(millis_from_int(5, TimeUnit::Seconds), Ok(5000));
    }

    #[test]
    fn fractional_seconds() {
        assert_eq!(
            millis_from_float(1_767_225_600.25, TimeUnit::Auto),
            Ok(JAN_2026_MS + 250)
        );
    }

    #[test]
    fn rfc3339_and_numeric_strings() {
        assert_eq!(
            millis_from_str("2026-01-01T00:00:00.250Z", TimeUnit::Auto),
            Ok(JAN_2026_MS + 250)
        );
        assert_eq!(
            millis_from_str("2026-01-01T01:00:00+01:00", TimeUnit::Auto),
            Ok(JAN_2026_MS)
        );
        assert_eq!(
            millis_from_str("1767225600", TimeUnit::Auto),
            Ok(JAN_2026_MS)
        );
        assert!(millis_from_str("yesterday", TimeUnit::Auto).is_err());
    }

    #[test]
    fn overflow_is_an_error_not_a_panic() {
        assert!(millis_from_int(i128::MAX, TimeUnit::Seconds).is_err());
        assert!(millis_from_float(1e300, TimeUnit::Millis).is_err());
        assert!(millis_from_float(f64::NAN, TimeUnit::Millis).is_err());
    }

    #[test]
    fn formats_round_trip() {
        let text = format_rfc3339(JAN_2026_MS + 250);
        assert_eq!(parse_rfc3339(&text), Ok(JAN_2026_MS + 250));
    }
}
