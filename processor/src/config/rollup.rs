//! `[[rollups]]`: each rollup is a window kind, a grouping, a signal filter and a set of
//! aggregates, computed by its own window engine.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use windows::{AggregateSpec, EmitMode, EngineConfig, WindowKind};

use super::DurationText;

/// Name of the rollup used when the config names none.
pub const DEFAULT_ROLLUP: &str = "signal_1m";

/// One rollup.
///
/// ```toml
/// [[rollups]]
/// name = "fleet_speed_5m"
/// window = { kind = "hopping", size = "5m", slide = "1m" }
/// group_by = ["fleet", "signal"]
/// signals = ["speed_kmh"]
/// aggregates = { quantiles = [0.5, 0.95], distinct = true }
/// allowed_lateness = "2m"
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RollupConfig {
    /// Unique name, stored with every result.
    pub name: String,
    /// Window kind and sizes.
    pub window: WindowConfig,
    /// Grouping dimensions: `vehicle`, `fleet`, `signal`, `attribute:<name>` (1 to 4 of them).
    #[serde(default = "default_group_by")]
    pub group_by: Vec<GroupDimension>,
    /// Signals to aggregate; empty means every signal.
    #[serde(default)]
    pub signals: Vec<String>,
    /// Aggregates beyond count/sum/min/max/mean/stddev/first/last/rate.
    #[serde(default)]
    pub aggregates: AggregateSpec,
    /// How long after closing a window late events still update it (tumbling/hopping).
    #[serde(default = "zero")]
    pub allowed_lateness: DurationText,
    /// When results are emitted.
    #[serde(default)]
    pub emit: EmitConfig,
    /// Largest number of open (window, group) entries; 0 = unlimited.
    #[serde(default)]
    pub max_open_entries: usize,
}

fn zero() -> DurationText {
    DurationText(0)
}

fn default_group_by() -> Vec<GroupDimension> {
    vec![GroupDimension::Vehicle, GroupDimension::Signal]
}

/// The rollups used when the config has no `[[rollups]]`: 1-minute tumbling windows per
/// (vehicle, signal).
pub fn default_rollups() -> Vec<RollupConfig> {
    vec![RollupConfig {
        name: DEFAULT_ROLLUP.to_owned(),
        window: WindowConfig::Tumbling {
            size: DurationText(60_000),
            offset: DurationText(0),
        },
        group_by: default_group_by(),
        signals: Vec::new(),
        aggregates: AggregateSpec::default(),
        allowed_lateness: zero(),
        emit: EmitConfig::default(),
        max_open_entries: 0,
    }]
}

/// `window = { kind = …, … }` with durations as text.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum WindowConfig {
    /// `{ kind = "tumbling", size = "1m", offset = "0s" }`.
    Tumbling {
        /// Window length.
        size: DurationText,
        /// Alignment shift.
        #[serde(default = "zero")]
        offset: DurationText,
    },
    /// `{ kind = "hopping", size = "5m", slide = "1m" }`.
    Hopping {
        /// Window length.
        size: DurationText,
        /// Distance between starts.
        slide: DurationText,
        /// Alignment shift.
        #[serde(default = "zero")]
        offset: DurationText,
    },
    /// `{ kind = "session", gap = "5m", max_length = "8h" }`.
    Session {
        /// Inactivity gap.
        gap: DurationText,
        /// Longest session span (0 = unlimited).
        #[serde(default = "zero")]
        max_length: DurationText,
    },
    /// `{ kind = "stagger", length = "1m" }` (KDA's stagger window).
    Stagger {
        /// Window length from each key's first event.
        length: DurationText,
    },
    /// `{ kind = "sliding", range = "1m" }` or `{ kind = "sliding", rows = 10 }`: one result per
    /// event over the preceding range and/or rows (KDA's sliding window); with `offset = "5s"`
    /// each window ends 5 s before its event.
    Sliding {
        /// Time range (0 = unlimited).
        #[serde(default = "zero")]
        range: DurationText,
        /// Row count (0 = unlimited).
        #[serde(default)]
        rows: u32,
        /// How long before each event its window ends.
        #[serde(default = "zero")]
        offset: DurationText,
    },
}

impl WindowConfig {
    /// The engine's window kind.
    pub fn kind(&self) -> WindowKind {
        match *self {
            WindowConfig::Tumbling { size, offset } => WindowKind::Tumbling {
                size_ms: size.ms(),
                offset_ms: offset.ms(),
            },
            WindowConfig::Hopping {
                size,
                slide,
                offset,
            } => WindowKind::Hopping {
                size_ms: size.ms(),
                slide_ms: slide.ms(),
                offset_ms: offset.ms(),
            },
            WindowConfig::Session { gap, max_length } => WindowKind::Session {
                gap_ms: gap.ms(),
                max_length_ms: max_length.ms(),
            },
            WindowConfig::Stagger { length } => WindowKind::Stagger {
                length_ms: length.ms(),
            },
            WindowConfig::Sliding {
                range,
                rows,
                offset,
            } => WindowKind::Sliding {
                range_ms: range.ms(),
                rows,
                offset_ms: offset.ms(),
            },
        }
    }
}

/// `emit = { mode = "on_close" }`, `{ mode = "early", interval = "10s" }` or `{ mode = "on_update" }`.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
#[serde(tag = "mode", rename_all = "snake_case", deny_unknown_fields)]
pub enum EmitConfig {
    /// When the watermark closes the window (and on late updates).
    #[default]
    OnClose,
    /// Also partial results every `interval` of processing time.
    Early {
        /// Interval between early firings.
        interval: DurationText,
    },
    /// After every batch that changed the window.
    OnUpdate,
}

/// One grouping dimension.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum GroupDimension {
    /// The vehicle id.
    Vehicle,
    /// The fleet (empty when a record has none).
    Fleet,
    /// The signal name.
    Signal,
    /// A record attribute (empty when absent).
    Attribute(String),
}

impl fmt::Display for GroupDimension {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            GroupDimension::Vehicle => f.write_str("vehicle"),
            GroupDimension::Fleet => f.write_str("fleet"),
            GroupDimension::Signal => f.write_str("signal"),
            GroupDimension::Attribute(name) => write!(f, "attribute:{name}"),
        }
    }
}

impl FromStr for GroupDimension {
    type Err = String;
    fn from_str(text: &str) -> Result<Self, String> {
        match text {
            "vehicle" => Ok(GroupDimension::Vehicle),
            "fleet" => Ok(GroupDimension::Fleet),
            "signal" => Ok(GroupDimension::Signal),
            _ => match text.strip_prefix("attribute:") {
                Some(name) if !name.is_empty() => Ok(GroupDimension::Attribute(name.to_owned())),
                _ => Err(format!(
                    "unknown grouping {text:?}: use vehicle, fleet, signal or attribute:<name>"
                )),
            },
        }
    }
}

impl Serialize for GroupDimension {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for GroupDimension {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        String::deserialize(deserializer)?
            .parse()
            .map_err(serde::de::Error::custom)
    }
}

impl RollupConfig {
    /// The window engine configuration.
    pub fn engine_config(&self) -> EngineConfig {
        EngineConfig {
            kind: self.window.kind(),
            aggregates: self.aggregates.clone(),
            allowed_lateness_ms: self.allowed_lateness.ms(),
            emit: match self.emit {
                EmitConfig::OnClose => EmitMode::OnClose,
                EmitConfig::Early { interval } => EmitMode::Early {
                    interval_ms: interval.ms(),
                },
                EmitConfig::OnUpdate => EmitMode::OnUpdate,
            },
            max_open_entries: self.max_open_entries,
        }
    }

    /// Problems with this rollup, as (key below the rollup, message).
    pub fn problems(&self) -> Vec<(String, String)> {
        let mut problems: Vec<(String, String)> = self
            .engine_config()
            .problems()
            .into_iter()
            .map(|message| ("window".to_owned(), message))
            .collect();
        if self.name.trim().is_empty() {
            problems.push(("name".to_owned(), "must not be empty".to_owned()));
        }
        if self.group_by.is_empty() || self.group_by.len() > 4 {
            problems.push(("group_by".to_owned(), "name 1 to 4 dimensions".to_owned()));
        }
        let by_signal = self.group_by.contains(&GroupDimension::Signal);
        if !by_signal && self.signals.len() != 1 {
            problems.push((
                "signals".to_owned(),
                "without `signal` in group_by, name exactly one signal (values of different signals would mix)"
                    .to_owned(),
            ));
        }
        let mut seen = std::collections::HashSet::new();
        if self
            .group_by
            .iter()
            .any(|dimension| !seen.insert(dimension))
        {
            problems.push(("group_by".to_owned(), "a dimension is repeated".to_owned()));
        }
        problems
    }
}
