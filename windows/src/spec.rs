//! Window kinds and how events map to windows.

use serde::{Deserialize, Serialize};

/// The shape of a rollup's windows (all times in milliseconds of event time).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum WindowKind {
    /// Fixed, non-overlapping `[start, start + size)`, starts at `offset + k·size`.
    Tumbling {
        /// Window length.
        size_ms: i64,
        /// Alignment shift (0 ≤ offset < size).
        #[serde(default)]
        offset_ms: i64,
    },
    /// Fixed windows of `size` starting every `slide` (overlapping when slide < size).
    Hopping {
        /// Window length.
        size_ms: i64,
        /// Distance between window starts.
        slide_ms: i64,
        /// Alignment shift (0 ≤ offset < slide).
        #[serde(default)]
        offset_ms: i64,
    },
    /// Per key, events closer than `gap` belong to one session; a session never spans more than
    /// `max_length` (the event that would exceed it starts a new one). The window is
    /// `[first event, last event + gap)`.
    Session {
        /// Inactivity gap that ends a session.
        gap_ms: i64,
        /// Longest span from the first event; 0 = unlimited.
        #[serde(default)]
        max_length_ms: i64,
    },
    /// KDA's stagger window: per key a window opens at the key's first event and covers
    /// `[first, first + length)`; the next event after it opens the next window.
    Stagger {
        /// Window length.
        length_ms: i64,
    },
    /// KDA's sliding window: one output per event, aggregating that key's events in
    /// `(t − offset − range, t − offset]` (when `range_ms > 0`) and at most the last `rows` of
    /// them (when `rows > 0`). With an offset the window ends that long before each event (an
    /// "offset window", e.g. the minute ending 5 s before each reading).
    Sliding {
        /// Time range; 0 = unlimited.
        #[serde(default)]
        range_ms: i64,
        /// Row count; 0 = unlimited.
        #[serde(default)]
        rows: u32,
        /// How long before each event its window ends.
        #[serde(default)]
        offset_ms: i64,
    },
}

impl WindowKind {
    /// Problems with the spec, for config validation.
    pub fn problems(&self) -> Vec<String> {
        let mut problems = Vec::new();
        let mut positive = |name: &str, value: i64| {
            if value <= 0 {
                problems.push(format!("{name} must be positive, got {value} ms"));
            }
        };
        match *self {
            WindowKind::Tumbling { size_ms, offset_ms } => {
                positive("size", size_ms);
                if size_ms > 0 && !(0..size_ms).contains(&offset_ms) {
                    problems.push(format!("offset must be in [0, size), got {offset_ms} ms"));
                }
            }
            WindowKind::Hopping {
                size_ms,
                slide_ms,
                offset_ms,
            } => {
                positive("size", size_ms);
                positive("slide", slide_ms);
                if slide_ms > 0 && !(0..slide_ms).contains(&offset_ms) {
                    problems.push(format!("offset must be in [0, slide), got {offset_ms} ms"));
                }
                if slide_ms > 0 && size_ms > 0 && size_ms / slide_ms > 1000 {
                    problems.push("size / slide must be at most 1000 windows per event".to_owned());
                }
            }
            WindowKind::Session {
                gap_ms,
                max_length_ms,
            } => {
                positive("gap", gap_ms);
                if max_length_ms < 0 {
                    problems.push("max_length must not be negative".to_owned());
                }
            }
            WindowKind::Stagger { length_ms } => positive("length", length_ms),
            WindowKind::Sliding {
                range_ms,
                rows,
                offset_ms,
            } => {
                if range_ms < 0 {
                    problems.push("range must not be negative".to_owned());
                }
                if offset_ms < 0 {
                    problems.push("offset must not be negative".to_owned());
                }
                if range_ms == 0 && rows == 0 {
                    problems.push("a sliding window needs a range or a row count".to_owned());
                }
            }
        }
        problems
    }

    /// True for the kinds whose windows are fixed in time (tumbling, hopping): their state merges
    /// in any arrival order and accepts late events. The other kinds process each key's events in
    /// event-time order once the watermark passes them.
    pub fn is_aligned(&self) -> bool {
        matches!(
            self,
            WindowKind::Tumbling { .. } | WindowKind::Hopping { .. }
        )
    }

    /// `(size, slide, offset)` of an aligned kind.
    pub(crate) fn aligned(&self) -> Option<(i64, i64, i64)> {
        match *self {
            WindowKind::Tumbling { size_ms, offset_ms } => Some((size_ms, size_ms, offset_ms)),
            WindowKind::Hopping {
                size_ms,
                slide_ms,
                offset_ms,
            } => Some((size_ms, slide_ms, offset_ms)),
            _ => None,
        }
    }
}

/// Starts of every aligned window `[s, s + size)` that holds `time_ms`, latest first.
pub(crate) fn aligned_starts(
    time_ms: i64,
    size_ms: i64,
    slide_ms: i64,
    offset_ms: i64,
) -> impl Iterator<Item = i64> {
    let last = (time_ms - offset_ms).div_euclid(slide_ms) * slide_ms + offset_ms;
    (0..)
        .map(move |k: i64| last - k * slide_ms)
        .take_while(move |start| start + size_ms > time_ms)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hopping_assigns_every_covering_window() {
        let starts: Vec<i64> = aligned_starts(25, 30, 10, 0).collect();
        assert_eq!(starts, vec![20, 10, 0]);
        let starts: Vec<i64> = aligned_starts(30, 30, 10, 0).collect();
        assert_eq!(starts, vec![30, 20, 10]);
        let starts: Vec<i64> = aligned_starts(-5, 10, 10, 0).collect();
        assert_eq!(starts, vec![-10]);
        let starts: Vec<i64> = aligned_starts(12, 5, 10, 0).collect();
        assert_eq!(starts, vec![10]);
        let starts: Vec<i64> = aligned_starts(17, 5, 10, 0).collect();
        assert!(
            starts.is_empty(),
            "gaps between hopping windows hold nothing"
        );
    }

    #[test]
    fn validation() {
        assert!(
            WindowKind::Tumbling {
                size_ms: 0,
                offset_ms: 0
            }
            .problems()
            .len()
                == 1
        );
        assert!(
            WindowKind::Hopping {
                size_ms: 60,
                slide_ms: 10,
                offset_ms: 10
            }
            .problems()
            .len()
                == 1
        );
        assert!(
            WindowKind::Sliding {
                range_ms: 0,
                rows: 0,
                offset_ms: 0
            }
            .problems()
            .len()
                == 1
        );
        assert!(WindowKind::Session {
            gap_ms: 5,
            max_length_ms: 0
        }
        .problems()
        .is_empty());
    }
}
