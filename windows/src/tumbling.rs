//! Tumbling event-time windows: fixed-size, non-overlapping `[start, start + size)` intervals
//! aligned to the epoch plus an optional offset. State exists only for open windows; a window
//! closes (and is emitted) once the watermark reaches its end.

use std::collections::BTreeMap;
use std::hash::Hash;

use rustc_hash::FxHashMap;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::aggregate::SummaryStats;

/// Size and alignment of tumbling windows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct TumblingSpec {
    /// Window length in milliseconds (> 0).
    pub size_ms: i64,
    /// Shift of window starts from the epoch, in milliseconds (0 ≤ offset < size).
    pub offset_ms: i64,
}

impl TumblingSpec {
    /// Start of the window that holds `time_ms`.
    pub fn window_start(&self, time_ms: i64) -> i64 {
        (time_ms - self.offset_ms).div_euclid(self.size_ms) * self.size_ms + self.offset_ms
    }

    /// Problems with the spec, for config validation.
    pub fn problems(&self) -> Vec<String> {
        let mut problems = Vec::new();
        if self.size_ms <= 0 {
            problems.push(format!(
                "window size must be positive, got {} ms",
                self.size_ms
            ));
        } else if self.offset_ms < 0 || self.offset_ms >= self.size_ms {
            problems.push(format!(
                "window offset must be in [0, size), got {} ms for a {} ms window",
                self.offset_ms, self.size_ms
            ));
        }
        problems
    }
}

/// One emitted window result.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WindowResult<K> {
    /// Grouping key (vehicle and signal, for instance).
    pub key: K,
    /// Inclusive window start (UTC ms).
    pub window_start_ms: i64,
    /// Exclusive window end (UTC ms).
    pub window_end_ms: i64,
    /// Statistics of the values in the window.
    pub stats: SummaryStats,
    /// 1 for the first emission of this window, higher for each re-emission; sinks keep the
    /// highest version (upsert).
    pub version: u32,
    /// False for a partial result emitted before the window closed (at shutdown, on request).
    pub is_final: bool,
}

/// Rejection of a value whose window has already closed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("window [{window_start_ms}, {window_end_ms}) already closed at watermark {watermark_ms}")]
pub struct LateValue {
    /// Start of the window the value belongs to.
    pub window_start_ms: i64,
    /// End of that window.
    pub window_end_ms: i64,
    /// Watermark when the value arrived.
    pub watermark_ms: i64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct OpenWindow<K: Eq + Hash> {
    entries: FxHashMap<K, (SummaryStats, u32)>,
}

impl<K: Eq + Hash> Default for OpenWindow<K> {
    fn default() -> Self {
        Self {
            entries: FxHashMap::default(),
        }
    }
}

/// Tumbling windows of [`SummaryStats`] per key.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(bound(
    serialize = "K: Serialize + Eq + Hash",
    deserialize = "K: DeserializeOwned + Eq + Hash"
))]
pub struct TumblingWindows<K: Eq + Hash> {
    spec: TumblingSpec,
    watermark_ms: Option<i64>,
    open: BTreeMap<i64, OpenWindow<K>>,
}

impl<K: Clone + Eq + Hash + Ord> TumblingWindows<K> {
    /// Empty windows for `spec`.
    pub fn new(spec: TumblingSpec) -> Self {
        Self {
            spec,
            watermark_ms: None,
            open: BTreeMap::new(),
        }
    }

    /// The window spec.
    pub fn spec(&self) -> TumblingSpec {
        self.spec
    }

    /// Adds `value` at `time_ms` under `key`; a value whose window already closed is returned as
    /// [`LateValue`] for the caller to dead-letter.
    pub fn add(&mut self, key: &K, time_ms: i64, value: f64) -> Result<(), LateValue> {
        let start = self.spec.window_start(time_ms);
        let end = start.saturating_add(self.spec.size_ms);
        if let Some(watermark_ms) = self.watermark_ms {
            if end <= watermark_ms {
                return Err(LateValue {
                    window_start_ms: start,
                    window_end_ms: end,
                    watermark_ms,
                });
            }
        }
        let window = self.open.entry(start).or_default();
        match window.entries.get_mut(key) {
            Some((stats, _)) => stats.add(time_ms, value),
            None => {
                window
                    .entries
                    .insert(key.clone(), (SummaryStats::of(time_ms, value), 0));
            }
        }
        Ok(())
    }

    /// Advances the watermark and returns every window that closed, ordered by window start
    /// then key (deterministic whatever the arrival order).
    pub fn advance_watermark(&mut self, watermark_ms: i64) -> Vec<WindowResult<K>> {
        if self
            .watermark_ms
            .is_some_and(|current| watermark_ms <= current)
        {
            return Vec::new();
        }
        self.watermark_ms = Some(watermark_ms);
        let mut closed = Vec::new();
        while let Some((&start, _)) = self.open.first_key_value() {
            if start.saturating_add(self.spec.size_ms) > watermark_ms {
                break;
            }
            if let Some((start, window)) = self.open.pop_first() {
                self.emit(start, window.entries, true, &mut closed);
            }
        }
        closed
    }

    /// Emits every open window as a partial result without closing it; the windows keep their
    /// state, and a later emission of the same window carries a higher version.
    pub fn emit_partial(&mut self) -> Vec<WindowResult<K>> {
        let mut partial = Vec::new();
        let size_ms = self.spec.size_ms;
        for (&start, window) in &mut self.open {
            let mut keys: Vec<&K> = window.entries.keys().collect();
            keys.sort_unstable();
            let keys: Vec<K> = keys.into_iter().cloned().collect();
            for key in keys {
                if let Some((stats, emitted)) = window.entries.get_mut(&key) {
                    *emitted += 1;
                    partial.push(WindowResult {
                        key,
                        window_start_ms: start,
                        window_end_ms: start.saturating_add(size_ms),
                        stats: *stats,
                        version: *emitted,
                        is_final: false,
                    });
                }
            }
        }
        partial
    }

    fn emit(
        &self,
        start: i64,
        entries: FxHashMap<K, (SummaryStats, u32)>,
        is_final: bool,
        out: &mut Vec<WindowResult<K>>,
    ) {
        let mut entries: Vec<(K, (SummaryStats, u32))> = entries.into_iter().collect();
        entries.sort_unstable_by(|a, b| a.0.cmp(&b.0));
        out.extend(
            entries
                .into_iter()
                .map(|(key, (stats, emitted))| WindowResult {
                    key,
                    window_start_ms: start,
                    window_end_ms: start.saturating_add(self.spec.size_ms),
                    stats,
                    version: emitted + 1,
                    is_final,
                }),
        );
    }

    /// Number of open (window, key) entries, for the open-state metric.
    pub fn open_entries(&self) -> usize {
        self.open.values().map(|window| window.entries.len()).sum()
    }

    /// The watermark the windows have seen.
    pub fn watermark_ms(&self) -> Option<i64> {
        self.watermark_ms
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const MINUTE: i64 = 60_000;

    fn windows() -> TumblingWindows<String> {
        TumblingWindows::new(TumblingSpec {
            size_ms: MINUTE,
            offset_ms: 0,
        })
    }

    #[test]
    fn window_start_handles_offsets_and_negatives() {
        let spec = TumblingSpec {
            size_ms: 10,
            offset_ms: 3,
        };
        assert_eq!(spec.window_start(3), 3);
        assert_eq!(spec.window_start(12), 3);
        assert_eq!(spec.window_start(13), 13);
        assert_eq!(spec.window_start(2), -7);
        assert!(spec.problems().is_empty());
        assert_eq!(
            TumblingSpec {
                size_ms: 0,
                offset_ms: 0
            }
            .problems()
            .len(),
            1
        );
    }

    #[test]
    fn closes_on_watermark_in_key_order() {
        let mut w = windows();
        w.add(&"b".to_owned(), 1_000, 1.0).unwrap();
        w.add(&"a".to_owned(), 2_000, 2.0).unwrap();
        w.add(&"a".to_owned(), MINUTE + 1, 3.0).unwrap();
        assert!(w.advance_watermark(MINUTE - 1).is_empty());
        let closed = w.advance_watermark(MINUTE);
        let keys: Vec<&str> = closed.iter().map(|r| r.key.as_str()).collect();
        assert_eq!(keys, vec!["a", "b"]);
        assert_eq!(closed[0].window_end_ms, MINUTE);
        assert_eq!(closed[0].version, 1);
        assert_eq!(w.open_entries(), 1);
    }

    #[test]
    fn late_values_are_returned_not_dropped() {
        let mut w = windows();
        w.add(&"a".to_owned(), 1_000, 1.0).unwrap();
        w.advance_watermark(MINUTE);
        let late = w.add(&"a".to_owned(), 59_999, 1.0).unwrap_err();
        assert_eq!(late.window_start_ms, 0);
        assert!(w.add(&"a".to_owned(), MINUTE, 1.0).is_ok());
    }

    #[test]
    fn partial_then_final_gets_a_higher_version() {
        let mut w = windows();
        w.add(&"a".to_owned(), 1_000, 1.0).unwrap();
        let partial = w.emit_partial();
        assert_eq!((partial[0].version, partial[0].is_final), (1, false));
        w.add(&"a".to_owned(), 2_000, 5.0).unwrap();
        let closed = w.advance_watermark(i64::MAX);
        assert_eq!((closed[0].version, closed[0].is_final), (2, true));
        assert_eq!(closed[0].stats.count, 2);
    }

    proptest! {
        #[test]
        fn snapshot_restore_continues_identically(
            events in proptest::collection::vec((0u8..4, 0i64..300_000, -100.0f64..100.0), 1..80),
            cut in 0usize..80,
        ) {
            let cut = cut.min(events.len());
            let run = |w: &mut TumblingWindows<String>, slice: &[(u8, i64, f64)], out: &mut Vec<WindowResult<String>>| {
                for (k, t, v) in slice {
                    let _ = w.add(&format!("k{k}"), *t, *v);
                    out.extend(w.advance_watermark(*t - 30_000));
                }
            };
            let mut straight = windows();
            let mut expected = Vec::new();
            run(&mut straight, &events, &mut expected);
            expected.extend(straight.advance_watermark(i64::MAX));

            let mut first = windows();
            let mut actual = Vec::new();
            run(&mut first, &events[..cut], &mut actual);
            let bytes = postcard::to_stdvec(&first).unwrap();
            let mut restored: TumblingWindows<String> = postcard::from_bytes(&bytes).unwrap();
            run(&mut restored, &events[cut..], &mut actual);
            actual.extend(restored.advance_watermark(i64::MAX));
            prop_assert_eq!(actual, expected);
        }
    }
}
