//! One configured rollup: picks the values a record contributes, groups them, feeds its window
//! engine and turns window results into [`Rollup`] outputs.

use std::hash::BuildHasher as _;
use std::sync::Arc;

use compact_str::CompactString;
use hashbrown::HashTable;
use rustc_hash::FxHashSet;
use telemetry::text::same_text;
use telemetry::Record;
use windows::{EngineSnapshot, KeyHasher, Rejection, WindowEngine, WindowOutput};

use super::output::Rollup;
use crate::config::{GroupDimension, RollupConfig};

/// Grouping key: one interned value per configured dimension (unused slots 0). Small integer
/// keys make hashing and comparing cheap on the hot path.
pub type GroupKey = [u32; 4];

/// Interns grouping values (vehicle ids, fleets, signal names, attribute values) as small ids.
/// Id 0 is the empty string. Kept in the checkpoint with the window state.
#[derive(Debug, Clone, Default, serde::Serialize, serde::Deserialize)]
pub struct Interner {
    values: Vec<CompactString>,
    /// Ids by value, compared with [`same_text`]: a lookup per record, mostly of a vehicle id,
    /// is cheaper without a call into `memcmp`.
    #[serde(skip)]
    ids: HashTable<u32>,
}

impl Interner {
    /// Files every value under its id (ids are not checkpointed) and makes id 0 the empty
    /// string; [`RollupOperator::new`] calls it on every interner it starts from, so lookups
    /// need not check.
    fn rebuild(&mut self) {
        if self.values.is_empty() {
            self.values.push(CompactString::default());
        }
        self.ids.clear();
        for (id, value) in self.values.iter().enumerate() {
            self.ids.insert_unique(text_hash(value), id as u32, |id| {
                text_hash(&self.values[*id as usize])
            });
        }
    }

    fn intern(&mut self, value: &str) -> u32 {
        debug_assert!(!self.values.is_empty(), "interner used before rebuild");
        let hash = text_hash(value);
        let values = &self.values;
        if let Some(&id) = self
            .ids
            .find(hash, |id| same_text(&values[*id as usize], value))
        {
            return id;
        }
        let id = self.values.len() as u32;
        self.values.push(CompactString::from(value));
        let values = &self.values;
        self.ids
            .insert_unique(hash, id, |id| text_hash(&values[*id as usize]));
        id
    }

    fn value(&self, id: u32) -> &CompactString {
        static EMPTY: CompactString = CompactString::const_new("");
        self.values.get(id as usize).unwrap_or(&EMPTY)
    }
}

/// The hash an [`Interner`] files a value under.
fn text_hash(value: &str) -> u64 {
    rustc_hash::FxBuildHasher.hash_one(value)
}

/// Hashes a key so that the keys of one record (one vehicle's signals, which differ only in
/// `signal_slot`) land in neighbouring buckets, with distinct control bytes: a record then
/// touches a few adjacent cache lines of the window's table instead of one random line per
/// signal. Signal ids are interned early, so they are small and close together.
fn signals_side_by_side(signal_slot: Option<usize>) -> KeyHasher<GroupKey> {
    // One function per slot, so the slot is a constant on the hot path (a key per signal).
    match signal_slot {
        Some(0) => KeyHasher::new(side_by_side::<0>),
        Some(1) => KeyHasher::new(side_by_side::<1>),
        Some(2) => KeyHasher::new(side_by_side::<2>),
        Some(3) => KeyHasher::new(side_by_side::<3>),
        _ => KeyHasher::new(side_by_side::<NO_SIGNAL_SLOT>),
    }
}

/// The `SIGNAL_SLOT` of [`side_by_side`] for keys without a signal.
const NO_SIGNAL_SLOT: usize = usize::MAX;

/// The hash of [`signals_side_by_side`], for keys whose signal id is in `SIGNAL_SLOT`.
fn side_by_side<const SIGNAL_SLOT: usize>(key: &GroupKey) -> u64 {
    // Each slot read on its own (a copy of the key with the signal slot cleared would be read
    // back across that narrower store, which stalls the CPU).
    let part = |slot: usize| {
        if slot == SIGNAL_SLOT {
            0
        } else {
            u64::from(key[slot])
        }
    };
    let signal = key.get(SIGNAL_SLOT).map_or(0, |id| u64::from(*id));
    // Two independent multiplications mix each half into the high bits; folding them down
    // spreads every input bit over the low bits, which pick the bucket.
    let low = part(0) | part(1) << 32;
    let high = part(2) | part(3) << 32;
    let mixed = low.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ high.wrapping_mul(0xC2B2_AE3D_27D4_EB4F);
    let base = mixed ^ (mixed >> 32);
    base.wrapping_add(signal) ^ (signal << 57)
}

/// Puts rollups in the stores' key order (window, then group key), so a window's rows append
/// to the table's B-tree instead of landing all over it. Stable: one key's versions stay in
/// order. Rollups are large, so their positions are sorted and each is then moved once.
fn sort_in_store_order(rollups: &mut [Rollup]) {
    fn key(rollup: &Rollup) -> (i64, &str) {
        (rollup.window_start_ms, &rollup.group_key)
    }
    if rollups.len() < 2 {
        return;
    }
    let mut order: Vec<usize> = (0..rollups.len()).collect();
    order.sort_by(|&a, &b| key(&rollups[a]).cmp(&key(&rollups[b])));
    // Position `i` takes the rollup at `order[i]`: follow each cycle of the permutation,
    // swapping the next rollup in and marking positions done.
    for start in 0..order.len() {
        let mut current = start;
        while order[current] != current {
            let next = std::mem::replace(&mut order[current], current);
            if next == start {
                break;
            }
            rollups.swap(current, next);
            current = next;
        }
    }
}

/// How many signal names [`RecentSignals`] keeps per position: records of a fleet with up to
/// this many vehicle models, interleaved, still find their signals there.
const RECENT_SIGNAL_NAMES: usize = 4;

/// The last signal names seen at one position of a record, with their interned ids; the oldest
/// is replaced first. Unused entries have an empty name, which no signal has.
#[derive(Debug, Default)]
struct RecentSignals {
    names: [(CompactString, u32); RECENT_SIGNAL_NAMES],
    next: usize,
}

impl RecentSignals {
    /// The id kept for `name`, if any.
    #[inline]
    fn find(&self, name: &str) -> Option<u32> {
        self.names
            .iter()
            .find(|(kept, _)| same_text(kept, name))
            .map(|(_, id)| *id)
    }

    /// Keeps `name` and its id in place of the oldest entry.
    fn remember(&mut self, name: &CompactString, id: u32) {
        self.names[self.next] = (name.clone(), id);
        self.next = (self.next + 1) % RECENT_SIGNAL_NAMES;
    }
}

/// What a rollup checkpoints: its window engine and the interned values its keys refer to.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct RollupSnapshot {
    engine: EngineSnapshot<GroupKey>,
    interner: Interner,
}

/// A rollup and its window state.
pub struct RollupOperator {
    name: Arc<str>,
    dimensions: Vec<GroupDimension>,
    /// `dimension=` of each dimension, as group keys spell it.
    key_labels: Vec<String>,
    signals: Option<FxHashSet<CompactString>>,
    /// The one signal a rollup without a `signal` dimension aggregates.
    single_signal: Option<CompactString>,
    engine: WindowEngine<GroupKey>,
    interner: Interner,
    /// With a `signal` dimension, all ones in its slot of the key and zero elsewhere: a key is
    /// the record's template (0 in that slot) with the signal id masked in, computed whole. A
    /// narrow store into a copy of the template, read back whole right after, would stall the
    /// CPU.
    signal_mask: Option<GroupKey>,
    /// Signal ids of recent records, by position (see [`Self::signal_id`]).
    signal_cache: Vec<RecentSignals>,
    /// The (key, value) pairs of the record being added, kept to reuse the allocation.
    entries: Vec<(GroupKey, f64)>,
}

impl RollupOperator {
    /// A fresh rollup (or one restored from `snapshot`).
    pub fn new(config: &RollupConfig, snapshot: Option<RollupSnapshot>) -> Result<Self, String> {
        let (engine, mut interner) = match snapshot {
            Some(snapshot) => (
                WindowEngine::restore(config.engine_config(), snapshot.engine)
                    .map_err(|err| format!("rollup {:?}: {err}", config.name))?,
                snapshot.interner,
            ),
            None => (
                WindowEngine::new(config.engine_config()),
                Interner::default(),
            ),
        };
        interner.rebuild();
        let signal_slot = config
            .group_by
            .iter()
            .position(|dimension| *dimension == GroupDimension::Signal)
            .filter(|slot| *slot < GroupKey::default().len());
        let engine = engine.with_key_hasher(signals_side_by_side(signal_slot));
        let signal_mask = signal_slot
            .map(|signal| std::array::from_fn(|slot| if slot == signal { u32::MAX } else { 0 }));
        Ok(Self {
            name: Arc::from(config.name.as_str()),
            dimensions: config.group_by.clone(),
            key_labels: config
                .group_by
                .iter()
                .map(|dimension| format!("{dimension}="))
                .collect(),
            signals: (!config.signals.is_empty())
                .then(|| config.signals.iter().map(CompactString::from).collect()),
            single_signal: match config.signals.as_slice() {
                [only] => Some(CompactString::from(only.as_str())),
                _ => None,
            },
            engine,
            interner,
            signal_mask,
            signal_cache: Vec::new(),
            entries: Vec::new(),
        })
    }

    /// Rollup name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The state to checkpoint.
    pub fn snapshot(&self) -> RollupSnapshot {
        RollupSnapshot {
            engine: self.engine.snapshot(),
            interner: self.interner.clone(),
        }
    }

    /// Feeds every selected signal of `record`, deciding lateness against `watermark_ms` (the
    /// pipeline watermark when the record arrived); returns the first rejection, if any.
    pub fn add(&mut self, record: &Record, watermark_ms: Option<i64>) -> Option<Rejection> {
        if let Some(watermark) = watermark_ms {
            self.engine.observe_watermark(watermark);
        }
        // The key's record-wide part once per record (a rollup without a vehicle dimension
        // interns no vehicle id), then one key per selected signal.
        let mut template: GroupKey = [0; 4];
        for (slot, dimension) in template.iter_mut().zip(&self.dimensions) {
            *slot = match dimension {
                GroupDimension::Vehicle => self.interner.intern(&record.vehicle_id),
                GroupDimension::Fleet => {
                    self.interner.intern(record.fleet.as_deref().unwrap_or(""))
                }
                GroupDimension::Signal => 0,
                GroupDimension::Attribute(name) => {
                    self.interner.intern(record.attribute(name).unwrap_or(""))
                }
            };
        }
        let mut entries = std::mem::take(&mut self.entries);
        entries.clear();
        for (position, signal) in record.signals.iter().enumerate() {
            if self
                .signals
                .as_ref()
                .is_some_and(|wanted| !wanted.contains(&signal.name))
            {
                continue;
            }
            let key: GroupKey = match self.signal_mask {
                Some(mask) => {
                    let signal_id = self.signal_id(position, &signal.name);
                    std::array::from_fn(|slot| template[slot] | (signal_id & mask[slot]))
                }
                None => template,
            };
            entries.push((key, signal.value));
        }
        let item = Some(record.vehicle_id.as_bytes());
        let rejection = self
            .engine
            .add_many(record.event_time_ms, item, &entries)
            .err();
        self.entries = entries;
        rejection
    }

    /// The interned id of the signal at `position` of a record: vehicles of one model list their
    /// signals in the same order, and a fleet mixes a few models, so most lookups are a string
    /// comparison or two instead of a hash.
    fn signal_id(&mut self, position: usize, name: &CompactString) -> u32 {
        if let Some(id) = self
            .signal_cache
            .get(position)
            .and_then(|recent| recent.find(name))
        {
            return id;
        }
        let id = self.interner.intern(name);
        if let Some(recent) = self.signal_cache.get_mut(position) {
            recent.remember(name, id);
        } else if position == self.signal_cache.len() {
            let mut recent = RecentSignals::default();
            recent.remember(name, id);
            self.signal_cache.push(recent);
        }
        id
    }

    /// Results closed (or re-emitted) by `watermark_ms`, then emission-mode firings at `now_ms`.
    pub fn advance(
        &mut self,
        watermark_ms: Option<i64>,
        now_ms: i64,
        fleets: &super::operators::FleetOf,
        out: &mut Vec<Rollup>,
    ) {
        let mut results = match watermark_ms {
            Some(watermark) => self.engine.advance_watermark(watermark),
            None => Vec::new(),
        };
        results.extend(self.engine.poll(now_ms));
        let first = out.len();
        out.extend(
            results
                .into_iter()
                .map(|result| self.rollup(result, fleets)),
        );
        sort_in_store_order(&mut out[first..]);
    }

    /// Partial results of every open window (shutdown with `emit_partial`).
    pub fn emit_partial(&mut self, fleets: &super::operators::FleetOf, out: &mut Vec<Rollup>) {
        let results = self.engine.emit_partial();
        out.extend(
            results
                .into_iter()
                .map(|result| self.rollup(result, fleets)),
        );
    }

    /// Open window entries.
    pub fn open_entries(&self) -> usize {
        self.engine.open_entries()
    }

    /// Approximate state bytes.
    pub fn state_bytes(&self) -> usize {
        self.engine.state_bytes()
    }

    fn rollup(&self, output: WindowOutput<GroupKey>, fleets: &super::operators::FleetOf) -> Rollup {
        let mut vehicle_id = None;
        let mut fleet = None;
        let mut signal = None;
        // One (value, label) per dimension; the key holds unused slots after them.
        let parts = || {
            output
                .key
                .iter()
                .map(|id| self.interner.value(*id))
                .zip(&self.key_labels)
        };
        let length = parts()
            .map(|(value, label)| label.len() + value.len() + 1)
            .sum();
        let mut group_key = String::with_capacity(length);
        for ((value, label), dimension) in parts().zip(&self.dimensions) {
            if !group_key.is_empty() {
                group_key.push(',');
            }
            group_key.push_str(label);
            group_key.push_str(value);
            match dimension {
                GroupDimension::Vehicle => vehicle_id = Some(value.clone()),
                GroupDimension::Fleet => fleet = Some(value.clone()),
                GroupDimension::Signal => signal = Some(value.clone()),
                GroupDimension::Attribute(_) => {}
            }
        }
        if signal.is_none() {
            signal = self.single_signal.clone();
        }
        if fleet.is_none() {
            fleet = vehicle_id
                .as_ref()
                .and_then(|vehicle| fleets.get(vehicle).cloned());
        }
        Rollup {
            rollup: Arc::clone(&self.name),
            group_key,
            vehicle_id,
            fleet,
            signal,
            window_start_ms: output.start_ms,
            window_end_ms: output.end_ms,
            result: output.result,
            version: output.version,
            is_final: output.is_final,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use telemetry::Signal;

    fn record(
        vehicle: &str,
        fleet: &str,
        model: &str,
        time_ms: i64,
        signals: &[(&str, f64)],
    ) -> Record {
        Record {
            vehicle_id: vehicle.into(),
            event_time_ms: time_ms,
            fleet: Some(fleet.into()),
            attributes: vec![("model".into(), model.into())].into(),
            signals: signals
                .iter()
                .map(|(name, value)| Signal::new(name, *value))
                .collect(),
        }
    }

    fn closed(config: &str, records: &[Record]) -> Vec<Rollup> {
        let config: RollupConfig = toml::from_str(config).unwrap();
        let mut operator = RollupOperator::new(&config, None).unwrap();
        for record in records {
            assert!(operator.add(record, None).is_none());
        }
        let mut out = Vec::new();
        operator.advance(
            Some(i64::MAX / 2),
            0,
            &crate::pipeline::operators::FleetOf::default(),
            &mut out,
        );
        out
    }

    fn rollup_at(window_start_ms: i64, group_key: &str, version: u32) -> Rollup {
        let mut rollup = closed(
            r#"name = "r"
               window = { kind = "tumbling", size = "1m" }"#,
            &[record("v", "f", "m", window_start_ms, &[("s", 1.0)])],
        )
        .pop()
        .unwrap();
        rollup.group_key = group_key.to_owned();
        rollup.version = version;
        rollup
    }

    #[test]
    fn rollups_sort_into_store_order_keeping_versions_in_order() {
        proptest::proptest!(|(rows in proptest::collection::vec((0i64..3, 0u8..4), 0..40))| {
            let mut rollups: Vec<Rollup> = rows
                .iter()
                .enumerate()
                .map(|(index, (window, key))| {
                    rollup_at(window * 60_000, &format!("k{key}"), index as u32)
                })
                .collect();
            let mut expected: Vec<(i64, String, u32)> = rollups
                .iter()
                .map(|r| (r.window_start_ms, r.group_key.clone(), r.version))
                .collect();
            // A stable sort by (window, key): versions (the input order) break ties.
            expected.sort_by(|a, b| (a.0, &a.1).cmp(&(b.0, &b.1)));
            sort_in_store_order(&mut rollups);
            let sorted: Vec<(i64, String, u32)> = rollups
                .iter()
                .map(|r| (r.window_start_ms, r.group_key.clone(), r.version))
                .collect();
            proptest::prop_assert_eq!(sorted, expected);
        });
    }

    #[test]
    fn the_signals_of_one_key_hash_to_neighbouring_buckets() {
        // The low 57 bits (which pick the bucket) of keys that differ only in the signal slot
        // are one apart per signal id; any other slot mixes the whole hash.
        const LOW: u64 = (1 << 57) - 1;
        let key = [7, 11, 13, 17];
        for signal_slot in 0..4 {
            let hasher = signals_side_by_side(Some(signal_slot));
            let with = |slot: usize, value: u32| {
                let mut key = key;
                key[slot] = value;
                hasher.hash(&key)
            };
            for value in [0, 1, 40, 1_000] {
                let step = with(signal_slot, value + 1).wrapping_sub(with(signal_slot, value));
                assert_eq!(step & LOW, 1, "slot {signal_slot}, id {value}");
                for other in (0..4).filter(|slot| *slot != signal_slot) {
                    let step = with(other, value + 1).wrapping_sub(with(other, value));
                    assert!(
                        step & LOW > 1 << 20,
                        "slot {other} of {signal_slot}: {step:#x}"
                    );
                }
            }
        }
        let hasher = signals_side_by_side(None);
        for slot in 0..4 {
            let mut next = key;
            next[slot] += 1;
            let step = hasher.hash(&next).wrapping_sub(hasher.hash(&key));
            assert!(
                step & LOW > 1 << 20,
                "slot {slot} without a signal: {step:#x}"
            );
        }
    }

    #[test]
    fn signals_keep_their_names_whatever_the_mix_of_signal_orders() {
        use proptest::strategy::Strategy as _;
        // Records list up to 8 signals in any order, so a position sees more names than the
        // per-position cache keeps: each value must still land under its own signal.
        const NAMES: [&str; 8] = [
            "speed_kmh",
            "engine_rpm",
            "soc",
            "lat",
            "lon",
            "coolant_temp_c",
            "battery_temp_c",
            "rpm",
        ];
        let orders = proptest::collection::vec(
            (
                0u8..3,
                proptest::sample::subsequence((0..NAMES.len()).collect::<Vec<_>>(), 1..8)
                    .prop_shuffle(),
            ),
            1..60,
        );
        proptest::proptest!(|(records in orders)| {
            let mut expected: std::collections::BTreeMap<String, (u64, f64, f64)> = Default::default();
            let records: Vec<Record> = records
                .iter()
                .enumerate()
                .map(|(index, (vehicle, names))| {
                    let vehicle = format!("veh-{vehicle}");
                    let signals: Vec<(&str, f64)> = names
                        .iter()
                        .map(|name| (NAMES[*name], (index * 10 + name) as f64))
                        .collect();
                    for (name, value) in &signals {
                        let entry = expected
                            .entry(format!("vehicle={vehicle},signal={name}"))
                            .or_insert((0, f64::INFINITY, f64::NEG_INFINITY));
                        entry.0 += 1;
                        entry.1 = entry.1.min(*value);
                        entry.2 = entry.2.max(*value);
                    }
                    record(&vehicle, "f", "m", 1_000 + index as i64, &signals)
                })
                .collect();
            let rows = closed(
                r#"name = "r"
                   window = { kind = "tumbling", size = "1m" }
                   group_by = ["vehicle", "signal"]"#,
                &records,
            );
            let got: std::collections::BTreeMap<String, (u64, f64, f64)> = rows
                .iter()
                .map(|row| (row.group_key.clone(), (row.result.summary.count, row.result.summary.min, row.result.summary.max)))
                .collect();
            proptest::prop_assert_eq!(got, expected);
        });
    }

    #[test]
    fn group_keys_spell_every_dimension_in_configured_order() {
        let records = [
            record(
                "veh-1",
                "north",
                "e-van",
                1_000,
                &[("speed_kmh", 10.0), ("soc", 80.0)],
            ),
            record("veh-2", "south", "truck", 2_000, &[("speed_kmh", 30.0)]),
            record(
                "veh-1",
                "north",
                "e-van",
                3_000,
                &[("soc", 79.0), ("speed_kmh", 20.0)],
            ),
        ];
        let rows = closed(
            r#"name = "by_everything"
               window = { kind = "tumbling", size = "1m" }
               group_by = ["fleet", "attribute:model", "vehicle", "signal"]"#,
            &records,
        );
        let mut keys: Vec<_> = rows
            .iter()
            .map(|row| (row.group_key.as_str(), row.result.summary.count))
            .collect();
        keys.sort_unstable();
        assert_eq!(
            keys,
            [
                (
                    "fleet=north,attribute:model=e-van,vehicle=veh-1,signal=soc",
                    2
                ),
                (
                    "fleet=north,attribute:model=e-van,vehicle=veh-1,signal=speed_kmh",
                    2
                ),
                (
                    "fleet=south,attribute:model=truck,vehicle=veh-2,signal=speed_kmh",
                    1
                ),
            ]
        );
        let first = rows
            .iter()
            .find(|row| row.group_key.ends_with("veh-1,signal=soc"))
            .unwrap();
        assert_eq!(first.vehicle_id.as_deref(), Some("veh-1"));
        assert_eq!(first.fleet.as_deref(), Some("north"));
        assert_eq!(first.signal.as_deref(), Some("soc"));

        let rows = closed(
            r#"name = "per_fleet"
               window = { kind = "tumbling", size = "1m" }
               group_by = ["fleet"]
               signals = ["speed_kmh"]"#,
            &records,
        );
        let mut keys: Vec<_> = rows.iter().map(|row| row.group_key.as_str()).collect();
        keys.sort_unstable();
        assert_eq!(keys, ["fleet=north", "fleet=south"]);
        assert!(rows
            .iter()
            .all(|row| row.signal.as_deref() == Some("speed_kmh")));
    }
}
