//! Session, stagger and sliding windows: each key's events are processed in event-time order
//! once the watermark passes them, which makes these order-dependent windows exact and
//! deterministic whatever the arrival order.
//!
//! Allowed lateness works by waiting: events are accepted down to `watermark − allowed_lateness`
//! and processed (and windows closed) only once that later point passes them. A late event can
//! merge two sessions or move a window's start, which an already written result could not undo
//! without retractions most sinks cannot apply (Timestream, InfluxDB); waiting instead keeps
//! every final result exact and written once. Early and per-update firings still report open
//! windows meanwhile (`is_final = false`).

use std::collections::{BTreeMap, VecDeque};
use std::hash::Hash;

use rustc_hash::FxHashMap;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use super::{EngineConfig, Rejection, WindowOutput};
use crate::aggregate::Accumulator;
use crate::spec::WindowKind;

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Pending<K> {
    key: K,
    value: f64,
    item: Option<Vec<u8>>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
enum KeyWindow {
    /// The open session or stagger window of a key.
    Open {
        start_ms: i64,
        last_ms: i64,
        accumulator: Box<Accumulator>,
        emitted: u32,
        dirty: bool,
    },
    /// The events a sliding window may still need.
    Rows(VecDeque<(i64, f64, Option<Vec<u8>>)>),
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(bound(
    serialize = "K: Serialize + Eq + Hash",
    deserialize = "K: DeserializeOwned + Eq + Hash"
))]
pub(super) struct OrderedState<K: Eq + Hash> {
    pending: BTreeMap<(i64, u64), Pending<K>>,
    next_sequence: u64,
    keys: FxHashMap<K, KeyWindow>,
}

impl<K: Eq + Hash> Default for OrderedState<K> {
    fn default() -> Self {
        Self {
            pending: BTreeMap::new(),
            next_sequence: 0,
            keys: FxHashMap::default(),
        }
    }
}

/// Exclusive end of an open session or stagger window.
fn open_end(kind: &WindowKind, start_ms: i64, last_ms: i64) -> i64 {
    match *kind {
        WindowKind::Session { gap_ms, .. } => last_ms + gap_ms,
        WindowKind::Stagger { length_ms } => start_ms + length_ms,
        _ => last_ms + 1,
    }
}

impl<K: Clone + Eq + Hash + Ord> OrderedState<K> {
    pub(super) fn add(
        &mut self,
        config: &EngineConfig,
        watermark: Option<i64>,
        key: &K,
        time_ms: i64,
        value: f64,
        item: Option<&[u8]>,
    ) -> Result<(), Rejection> {
        if let Some(watermark_ms) = watermark {
            if time_ms < watermark_ms.saturating_sub(config.allowed_lateness_ms) {
                return Err(Rejection::Late {
                    window_start_ms: time_ms,
                    window_end_ms: time_ms + 1,
                    watermark_ms,
                });
            }
        }
        if config.max_open_entries > 0 && self.entries() >= config.max_open_entries {
            return Err(Rejection::StateCap {
                limit: config.max_open_entries,
            });
        }
        self.pending.insert(
            (time_ms, self.next_sequence),
            Pending {
                key: key.clone(),
                value,
                item: item.map(<[u8]>::to_vec),
            },
        );
        self.next_sequence += 1;
        Ok(())
    }

    pub(super) fn advance(
        &mut self,
        config: &EngineConfig,
        watermark_ms: i64,
        out: &mut Vec<WindowOutput<K>>,
    ) {
        // Events down to `watermark − allowed_lateness` may still arrive: only what lies before
        // that point is settled.
        let watermark_ms = watermark_ms.saturating_sub(config.allowed_lateness_ms);
        while let Some(entry) = self.pending.first_entry() {
            if entry.key().0 >= watermark_ms {
                break;
            }
            let ((time_ms, _), pending) = entry.remove_entry();
            self.process(config, time_ms, pending, out);
        }
        self.close(config, watermark_ms, out);
    }

    fn process(
        &mut self,
        config: &EngineConfig,
        time_ms: i64,
        pending: Pending<K>,
        out: &mut Vec<WindowOutput<K>>,
    ) {
        let spec = &config.aggregates;
        let item = pending.item.as_deref();
        match config.kind {
            WindowKind::Sliding {
                range_ms,
                rows,
                offset_ms,
            } => {
                let window = self
                    .keys
                    .entry(pending.key.clone())
                    .or_insert_with(|| KeyWindow::Rows(VecDeque::new()));
                let KeyWindow::Rows(events) = window else {
                    return;
                };
                events.push_back((time_ms, pending.value, pending.item.clone()));
                // This event's window ends at `end` (inclusive); later events' windows end later,
                // so what falls out of this one is never needed again.
                let end = time_ms - offset_ms;
                if range_ms > 0 {
                    while events
                        .front()
                        .is_some_and(|front| front.0 <= end - range_ms)
                    {
                        events.pop_front();
                    }
                }
                let mut in_window = events.iter().take_while(|e| e.0 <= end).count();
                if rows > 0 {
                    while in_window > rows as usize {
                        events.pop_front();
                        in_window -= 1;
                    }
                }
                let mut accumulator = Accumulator::new(spec);
                for (t, v, event_item) in events.iter().take(in_window) {
                    accumulator.add(spec, *t, *v, event_item.as_deref());
                }
                let start_ms = if range_ms > 0 {
                    end - range_ms + 1
                } else {
                    events
                        .front()
                        .filter(|_| in_window > 0)
                        .map_or(end, |front| front.0)
                };
                if in_window > 0 {
                    if let Some(result) = accumulator.result(spec, end + 1) {
                        out.push(WindowOutput {
                            key: pending.key,
                            start_ms,
                            end_ms: end + 1,
                            result,
                            version: 1,
                            is_final: true,
                        });
                    }
                }
            }
            kind => {
                let joins = match (self.keys.get(&pending.key), kind) {
                    (
                        Some(KeyWindow::Open {
                            start_ms, last_ms, ..
                        }),
                        WindowKind::Session {
                            gap_ms,
                            max_length_ms,
                        },
                    ) => {
                        time_ms - last_ms <= gap_ms
                            && (max_length_ms == 0 || time_ms - start_ms <= max_length_ms)
                    }
                    (Some(KeyWindow::Open { start_ms, .. }), WindowKind::Stagger { length_ms }) => {
                        time_ms < start_ms + length_ms
                    }
                    _ => false,
                };
                if !joins {
                    if let Some(previous) = self.keys.remove(&pending.key) {
                        emit_open(config, pending.key.clone(), previous, true, out);
                    }
                    self.keys.insert(
                        pending.key.clone(),
                        KeyWindow::Open {
                            start_ms: time_ms,
                            last_ms: time_ms,
                            accumulator: Box::new(Accumulator::new(spec)),
                            emitted: 0,
                            dirty: false,
                        },
                    );
                }
                if let Some(KeyWindow::Open {
                    last_ms,
                    accumulator,
                    dirty,
                    ..
                }) = self.keys.get_mut(&pending.key)
                {
                    accumulator.add(spec, time_ms, pending.value, item);
                    *last_ms = time_ms;
                    *dirty = true;
                }
            }
        }
    }

    /// Emits and drops the windows no future event can change (future events have
    /// `t ≥ watermark`).
    fn close(&mut self, config: &EngineConfig, watermark_ms: i64, out: &mut Vec<WindowOutput<K>>) {
        let mut done: Vec<K> =
            self.keys
                .iter_mut()
                .filter_map(|(key, window)| {
                    let finished = match (window, config.kind) {
                        (KeyWindow::Open { last_ms, .. }, WindowKind::Session { gap_ms, .. }) => {
                            *last_ms + gap_ms < watermark_ms
                        }
                        (KeyWindow::Open { start_ms, .. }, WindowKind::Stagger { length_ms }) => {
                            *start_ms + length_ms <= watermark_ms
                        }
                        (
                            KeyWindow::Rows(events),
                            WindowKind::Sliding {
                                range_ms,
                                offset_ms,
                                ..
                            },
                        ) => {
                            // Future events have t ≥ watermark: their windows start after
                            // `watermark − offset − range`.
                            if range_ms > 0 {
                                while events.front().is_some_and(|front| {
                                    front.0 <= watermark_ms - offset_ms - range_ms
                                }) {
                                    events.pop_front();
                                }
                            }
                            events.is_empty()
                        }
                        _ => false,
                    };
                    finished.then(|| key.clone())
                })
                .collect();
        done.sort_unstable();
        for key in done {
            if let Some(window) = self.keys.remove(&key) {
                emit_open(config, key, window, true, out);
            }
        }
    }

    pub(super) fn partial(
        &mut self,
        config: &EngineConfig,
        only_changed: bool,
        out: &mut Vec<WindowOutput<K>>,
    ) {
        let mut keys: Vec<K> = self.keys.keys().cloned().collect();
        keys.sort_unstable();
        for key in keys {
            let Some(KeyWindow::Open {
                start_ms,
                last_ms,
                accumulator,
                emitted,
                dirty,
            }) = self.keys.get_mut(&key)
            else {
                continue;
            };
            if only_changed && !*dirty {
                continue;
            }
            let end_ms = open_end(&config.kind, *start_ms, *last_ms);
            if let Some(result) = accumulator.result(&config.aggregates, end_ms) {
                *emitted += 1;
                *dirty = false;
                out.push(WindowOutput {
                    key,
                    start_ms: *start_ms,
                    end_ms,
                    result,
                    version: *emitted,
                    is_final: false,
                });
            }
        }
    }

    pub(super) fn entries(&self) -> usize {
        self.keys.len() + self.pending.len()
    }

    pub(super) fn state_bytes(&self) -> usize {
        let windows: usize = self
            .keys
            .values()
            .map(|window| match window {
                KeyWindow::Open { accumulator, .. } => accumulator.state_bytes(),
                KeyWindow::Rows(events) => events.len() * 40,
            })
            .sum();
        windows + self.pending.len() * std::mem::size_of::<(i64, u64, Pending<K>)>()
    }
}

/// Emits a session or stagger window (sliding windows emit per event instead).
fn emit_open<K>(
    config: &EngineConfig,
    key: K,
    window: KeyWindow,
    is_final: bool,
    out: &mut Vec<WindowOutput<K>>,
) {
    let KeyWindow::Open {
        start_ms,
        last_ms,
        accumulator,
        emitted,
        ..
    } = window
    else {
        return;
    };
    let end_ms = open_end(&config.kind, start_ms, last_ms);
    if let Some(result) = accumulator.result(&config.aggregates, end_ms) {
        out.push(WindowOutput {
            key,
            start_ms,
            end_ms,
            result,
            version: emitted + 1,
            is_final,
        });
    }
}
