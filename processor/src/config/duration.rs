//! Durations written as text in the config (`"10s"`, `"1m30s"`, `"250ms"`).

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A non-negative duration in milliseconds, written as text such as `"1m"` in TOML.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct DurationText(pub i64);

impl DurationText {
    /// Milliseconds.
    pub fn ms(self) -> i64 {
        self.0
    }

    /// As a std duration.
    pub fn std(self) -> std::time::Duration {
        std::time::Duration::from_millis(self.0.max(0) as u64)
    }
}

impl fmt::Display for DurationText {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&models::rules::condition::format_duration(self.0))
    }
}

impl Serialize for DurationText {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.to_string())
    }
}

impl<'de> Deserialize<'de> for DurationText {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        models::rules::parse_duration(&text)
            .map(DurationText)
            .map_err(|err| {
                serde::de::Error::custom(format!("invalid duration {text:?}: {}", err.message))
            })
    }
}
