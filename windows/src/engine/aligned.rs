//! Tumbling and hopping windows: mergeable accumulators per (window start, key), closed by the
//! watermark, kept for the allowed lateness.

use std::collections::{BTreeMap, BTreeSet};
use std::hash::Hash;

use hashbrown::HashTable;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use super::{EngineConfig, KeyHasher, Rejection, WindowOutput};
use crate::aggregate::Accumulator;
use crate::spec::aligned_starts;

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Slot {
    accumulator: Accumulator,
    /// Versions emitted so far.
    emitted: u32,
    /// Changed since the last emission.
    dirty: bool,
    /// The final (closed-window) result of the current content has been emitted.
    final_emitted: bool,
}

/// The slots of one window, hashed with the engine's [`KeyHasher`] (which may place related
/// keys next to each other). Serialized as a map from key to slot; a deserialized table is
/// hashed with the default hasher, which a restored engine starts with.
#[derive(Debug, Clone)]
struct SlotTable<K> {
    table: HashTable<(K, Slot)>,
}

impl<K> SlotTable<K> {
    /// A table of `entries` hashed with `hasher`.
    fn of(entries: impl ExactSizeIterator<Item = (K, Slot)>, hasher: &KeyHasher<K>) -> Self {
        let mut table = HashTable::with_capacity(entries.len());
        for entry in entries {
            table.insert_unique(hasher.hash(&entry.0), entry, |(key, _)| hasher.hash(key));
        }
        Self { table }
    }
}

impl<K> Default for SlotTable<K> {
    fn default() -> Self {
        Self {
            table: HashTable::new(),
        }
    }
}

impl<K: Serialize> Serialize for SlotTable<K> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_map(self.table.iter().map(|(key, slot)| (key, slot)))
    }
}

impl<'de, K: DeserializeOwned + Eq + Hash> Deserialize<'de> for SlotTable<K> {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let entries = rustc_hash::FxHashMap::<K, Slot>::deserialize(deserializer)?;
        Ok(Self::of(entries.into_iter(), &KeyHasher::default()))
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(bound(
    serialize = "K: Serialize + Eq + Hash",
    deserialize = "K: DeserializeOwned + Eq + Hash"
))]
pub(super) struct AlignedState<K: Eq + Hash> {
    windows: BTreeMap<i64, SlotTable<K>>,
    /// Starts of windows holding at least one dirty slot.
    dirty: BTreeSet<i64>,
    entries: usize,
    /// The emptied table of the last window dropped, for the next window to open: windows of
    /// one rollup hold about as many keys each, so it opens at its size with no growing.
    #[serde(skip)]
    spare: Option<HashTable<(K, Slot)>>,
}

impl<K: Eq + Hash> Default for AlignedState<K> {
    fn default() -> Self {
        Self {
            windows: BTreeMap::new(),
            dirty: BTreeSet::new(),
            entries: 0,
            spare: None,
        }
    }
}

impl<K: Clone + Eq + Hash + Ord> AlignedState<K> {
    /// Re-hashes every table with `hasher` (when the engine's hasher changes).
    pub(super) fn rehash(&mut self, hasher: &KeyHasher<K>) {
        for window in self.windows.values_mut() {
            *window = SlotTable::of(std::mem::take(&mut window.table).into_iter(), hasher);
        }
    }

    /// Adds every `(key, value)` of one event at `time_ms`: the same as adding them one by one
    /// in order, with one window lookup per window instead of one per value. Returns the
    /// rejection adding them one by one would have met first.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn add_many(
        &mut self,
        config: &EngineConfig,
        hasher: &KeyHasher<K>,
        watermark: Option<i64>,
        time_ms: i64,
        item: Option<&[u8]>,
        entries: &[(K, f64)],
    ) -> Result<(), Rejection> {
        let Some((size, slide, offset)) = config.kind.aligned() else {
            return Ok(());
        };
        if entries.is_empty() {
            return Ok(());
        }
        if entries.len() > 1 && size > slide && config.max_open_entries > 0 {
            // Overlapping windows under a state cap: which entries still fit depends on the
            // order the (window, key) entries open in, so keep the one-by-one order.
            let mut first = None;
            for entry in entries {
                let added = self.add_many(
                    config,
                    hasher,
                    watermark,
                    time_ms,
                    item,
                    std::slice::from_ref(entry),
                );
                if let Err(rejection) = added {
                    first.get_or_insert(rejection);
                }
            }
            return first.map_or(Ok(()), Err);
        }
        // (entry, window) of the first rejection in entry-major order, as one-by-one adds meet it.
        let mut first: Option<(usize, usize, Rejection)> = None;
        let mut note = |entry: usize, window: usize, rejection: Rejection| {
            if first
                .as_ref()
                .is_none_or(|(e, w, _)| (entry, window) < (*e, *w))
            {
                first = Some((entry, window, rejection));
            }
        };
        for (window_index, start) in aligned_starts(time_ms, size, slide, offset).enumerate() {
            let end = start + size;
            if let Some(watermark_ms) = watermark {
                if end + config.allowed_lateness_ms <= watermark_ms {
                    // Every entry misses this window; the first entry meets it first.
                    note(
                        0,
                        window_index,
                        Rejection::Late {
                            window_start_ms: start,
                            window_end_ms: end,
                            watermark_ms,
                        },
                    );
                    continue;
                }
            }
            let window = &mut self
                .windows
                .entry(start)
                .or_insert_with(|| SlotTable {
                    table: self.spare.take().unwrap_or_default(),
                })
                .table;
            for (entry_index, (key, value)) in entries.iter().enumerate() {
                let hash = hasher.hash(key);
                let slot = match window.find_mut(hash, |(candidate, _)| candidate == key) {
                    Some((_, slot)) => slot,
                    None => {
                        if config.max_open_entries > 0 && self.entries >= config.max_open_entries {
                            note(
                                entry_index,
                                window_index,
                                Rejection::StateCap {
                                    limit: config.max_open_entries,
                                },
                            );
                            continue;
                        }
                        self.entries += 1;
                        let slot = Slot {
                            accumulator: Accumulator::new(&config.aggregates),
                            emitted: 0,
                            dirty: false,
                            final_emitted: false,
                        };
                        &mut window
                            .insert_unique(hash, (key.clone(), slot), |(key, _)| hasher.hash(key))
                            .into_mut()
                            .1
                    }
                };
                slot.accumulator
                    .add(&config.aggregates, time_ms, *value, item);
                if !slot.dirty {
                    slot.dirty = true;
                    self.dirty.insert(start);
                }
                slot.final_emitted = false;
            }
            if window.is_empty() {
                if let Some(unused) = self.windows.remove(&start) {
                    self.spare = Some(unused.table);
                }
            }
        }
        first.map_or(Ok(()), |(_, _, rejection)| Err(rejection))
    }

    pub(super) fn advance(
        &mut self,
        config: &EngineConfig,
        watermark_ms: i64,
        out: &mut Vec<WindowOutput<K>>,
    ) {
        let Some((size, _, _)) = config.kind.aligned() else {
            return;
        };
        let closed: Vec<i64> = self.dirty.range(..=watermark_ms - size).copied().collect();
        for start in closed {
            self.dirty.remove(&start);
            if let Some(window) = self.windows.get_mut(&start) {
                emit_window(
                    config,
                    start,
                    start + size,
                    &mut window.table,
                    true,
                    false,
                    out,
                );
            }
        }
        while let Some((&start, _)) = self.windows.first_key_value() {
            if start + size + config.allowed_lateness_ms > watermark_ms {
                break;
            }
            if let Some((_, window)) = self.windows.pop_first() {
                let mut table = window.table;
                self.entries -= table.len();
                table.clear();
                self.spare = Some(table);
            }
        }
    }

    pub(super) fn partial(
        &mut self,
        config: &EngineConfig,
        watermark: Option<i64>,
        only_changed: bool,
        out: &mut Vec<WindowOutput<K>>,
    ) {
        let Some((size, _, _)) = config.kind.aligned() else {
            return;
        };
        let open_from = watermark.map_or(i64::MIN, |w| w - size + 1);
        for (&start, window) in self.windows.range_mut(open_from..) {
            emit_window(
                config,
                start,
                start + size,
                &mut window.table,
                false,
                only_changed,
                out,
            );
        }
    }

    pub(super) fn entries(&self) -> usize {
        self.entries
    }

    pub(super) fn state_bytes(&self) -> usize {
        self.windows
            .values()
            .flat_map(|window| window.table.iter())
            .map(|(_, slot)| slot.accumulator.state_bytes() + std::mem::size_of::<(K, Slot)>())
            .sum()
    }
}

/// Emits the slots of one window that need it, in key order.
fn emit_window<K: Clone + Ord>(
    config: &EngineConfig,
    start: i64,
    end: i64,
    window: &mut HashTable<(K, Slot)>,
    closed: bool,
    only_changed: bool,
    out: &mut Vec<WindowOutput<K>>,
) {
    let mut due: Vec<&mut (K, Slot)> = window
        .iter_mut()
        .filter(|(_, slot)| {
            if closed {
                slot.dirty || !slot.final_emitted
            } else {
                slot.dirty || !only_changed
            }
        })
        .collect();
    due.sort_unstable_by(|a, b| a.0.cmp(&b.0));
    for (key, slot) in due {
        let Some(result) = slot.accumulator.result(&config.aggregates, end) else {
            continue;
        };
        slot.emitted += 1;
        slot.dirty = false;
        slot.final_emitted = closed;
        out.push(WindowOutput {
            key: key.clone(),
            start_ms: start,
            end_ms: end,
            result,
            version: slot.emitted,
            is_final: closed,
        });
    }
}
