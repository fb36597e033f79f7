//! One `[[anomaly]]` model run per vehicle: records wait in event-time order until the watermark
//! passes them, then each vehicle's [`AnomalyModel`] scores them (or the means of a closed
//! window), in the same order on every replay.
//!
//! **Memory.** A vehicle's model is created on its first record. At most `max_models` stay in
//! memory; beyond that, and for vehicles idle longer than `idle_after` (event time), the least
//! recently active leave memory. Their snapshot waits in [`UnsavedModels`] and is saved with the
//! next checkpoint; a returning vehicle's model is loaded from there or from the state store.
//! Every model used since the last barrier is snapshotted at the barrier too, so the state store
//! always holds each model as of the newest committed checkpoint and a restart continues
//! bit-identically. The cost is one snapshot per active vehicle per checkpoint.

use std::collections::BTreeMap;
use std::sync::Arc;

use compact_str::CompactString;
use models::detector::EventTimeBuffer;
use models::forest::{kda_explanation, AnomalyModel};
use rustc_hash::FxHashMap;
use serde::{Deserialize, Serialize};
use telemetry::Record;

use super::output::AnomalyRow;
use crate::config::{AnomalyConfig, AnomalyOutputMode};
use crate::state::{ModelReader, UnsavedModels};

/// Where models that left memory are found again.
pub struct ModelSource {
    /// Snapshots not yet saved with a committed checkpoint (looked at first).
    pub unsaved: UnsavedModels,
    /// The state store's saved snapshots.
    pub reader: Option<ModelReader>,
}

impl ModelSource {
    fn load(&self, key: &str) -> Option<Arc<Vec<u8>>> {
        if let Some(bytes) = self.unsaved.newest(key) {
            return Some(bytes);
        }
        let reader = self.reader.as_ref()?;
        match reader.load(key) {
            Ok(bytes) => bytes.map(Arc::new),
            Err(err) => {
                tracing::error!(%err, key, "cannot load a saved anomaly model; starting it afresh");
                None
            }
        }
    }
}

/// A model in memory.
struct Resident {
    model: AnomalyModel,
    last_event_ms: i64,
    /// Used since the last barrier (its saved snapshot is out of date).
    dirty: bool,
}

/// Per-signal sums of a vehicle's open window (`output = "window"`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct WindowSums {
    start_ms: i64,
    sums: Vec<f64>,
    counts: Vec<u32>,
}

/// What the operator must remember across restarts besides the models themselves.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct AnomalyState {
    buffer: EventTimeBuffer,
    windows: BTreeMap<CompactString, WindowSums>,
}

/// Counts for the run summary.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct AnomalyCounts {
    /// Models in memory.
    pub resident: usize,
    /// Models that left memory so far.
    pub evicted: u64,
    /// Models loaded back from a snapshot.
    pub reloaded: u64,
}

/// One `[[anomaly]]` entry at work.
pub struct AnomalyOperator {
    config: AnomalyConfig,
    name: Arc<str>,
    state: AnomalyState,
    resident: FxHashMap<CompactString, Resident>,
    source: ModelSource,
    /// The barrier the snapshots taken now belong to.
    next_checkpoint: u64,
    /// Event time of the next scan for idle models.
    next_idle_scan_ms: i64,
    counts: AnomalyCounts,
    values: Vec<Option<f64>>,
}

impl AnomalyOperator {
    /// An operator for `config` whose evicted models go to (and come back from) `source`;
    /// `next_checkpoint` is the id of the next barrier.
    pub fn new(config: AnomalyConfig, source: ModelSource, next_checkpoint: u64) -> Self {
        Self {
            name: Arc::from(config.name.as_str()),
            values: vec![None; config.signals.len()],
            config,
            state: AnomalyState::default(),
            resident: FxHashMap::default(),
            source,
            next_checkpoint,
            next_idle_scan_ms: i64::MIN,
            counts: AnomalyCounts::default(),
        }
    }

    /// The model name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Counts for the summary.
    pub fn counts(&self) -> AnomalyCounts {
        AnomalyCounts {
            resident: self.resident.len(),
            ..self.counts
        }
    }

    /// Holds `record` until the watermark passes it (when it carries any of the signals).
    pub fn offer_shared(&mut self, record: Arc<Record>) {
        if self
            .config
            .signals
            .iter()
            .any(|signal| record.signal(signal).is_some())
        {
            self.state.buffer.push(record);
        }
    }

    /// Scores every record before `watermark_ms` in event-time order, closes finished windows
    /// and lets idle or surplus models leave memory.
    pub fn advance_watermark(
        &mut self,
        watermark_ms: i64,
        fleets: &super::operators::FleetOf,
        rows: &mut Vec<AnomalyRow>,
    ) {
        while let Some(record) = self.state.buffer.pop_before(watermark_ms) {
            match self.config.output {
                AnomalyOutputMode::Record => {
                    for (value, signal) in self.values.iter_mut().zip(&self.config.signals) {
                        *value = record.signal(signal);
                    }
                    let values = std::mem::take(&mut self.values);
                    let row = self.score(&record.vehicle_id, record.event_time_ms, None, &values);
                    self.values = values;
                    self.push_row(row, fleets, rows);
                }
                AnomalyOutputMode::Window => self.add_to_window(&record, fleets, rows),
            }
        }
        if self.config.output == AnomalyOutputMode::Window {
            let window = self.config.window.ms();
            let closed: Vec<CompactString> = self
                .state
                .windows
                .iter()
                .filter(|(_, sums)| sums.start_ms.saturating_add(window) <= watermark_ms)
                .map(|(vehicle, _)| vehicle.clone())
                .collect();
            for vehicle in closed {
                if let Some(sums) = self.state.windows.remove(&vehicle) {
                    self.score_window(&vehicle, &sums, fleets, rows);
                }
            }
        }
        self.evict(watermark_ms);
    }

    fn add_to_window(
        &mut self,
        record: &Record,
        fleets: &super::operators::FleetOf,
        rows: &mut Vec<AnomalyRow>,
    ) {
        let window = self.config.window.ms();
        let start = record.event_time_ms.div_euclid(window) * window;
        let signals = self.config.signals.len();
        let open = self
            .state
            .windows
            .get(&record.vehicle_id)
            .map(|s| s.start_ms);
        if open.is_some_and(|open| open != start) {
            if let Some(sums) = self.state.windows.remove(&record.vehicle_id) {
                self.score_window(&record.vehicle_id, &sums, fleets, rows);
            }
        }
        let sums = self
            .state
            .windows
            .entry(record.vehicle_id.clone())
            .or_insert_with(|| WindowSums {
                start_ms: start,
                sums: vec![0.0; signals],
                counts: vec![0; signals],
            });
        for (index, signal) in self.config.signals.iter().enumerate() {
            if let Some(value) = record.signal(signal).filter(|v| v.is_finite()) {
                sums.sums[index] += value;
                sums.counts[index] += 1;
            }
        }
    }

    fn score_window(
        &mut self,
        vehicle: &CompactString,
        sums: &WindowSums,
        fleets: &super::operators::FleetOf,
        rows: &mut Vec<AnomalyRow>,
    ) {
        let means: Vec<Option<f64>> = sums
            .sums
            .iter()
            .zip(&sums.counts)
            .map(|(sum, &count)| (count > 0).then(|| sum / f64::from(count)))
            .collect();
        let end = sums.start_ms.saturating_add(self.config.window.ms());
        let row = self.score(vehicle, sums.start_ms, Some(end), &means);
        self.push_row(row, fleets, rows);
    }

    fn push_row(
        &self,
        mut row: AnomalyRow,
        fleets: &super::operators::FleetOf,
        rows: &mut Vec<AnomalyRow>,
    ) {
        if row.grade >= self.config.write_min_grade || row.alert.is_some() {
            row.fleet = fleets.get(&row.vehicle_id).cloned();
            rows.push(row);
        }
    }

    fn score(
        &mut self,
        vehicle: &CompactString,
        time_ms: i64,
        window_end_ms: Option<i64>,
        values: &[Option<f64>],
    ) -> AnomalyRow {
        let explain = self.config.explain;
        let alert_grade = self.config.alert_grade;
        let severity = self.config.severity;
        let resident = self.resident_model(vehicle);
        resident.last_event_ms = resident.last_event_ms.max(time_ms);
        resident.dirty = true;
        let result = resident.model.process(values, explain);
        let explanation = result
            .attribution
            .as_ref()
            .map(|attribution| kda_explanation(&self.config.signals, attribution).to_string());
        AnomalyRow {
            model: Arc::clone(&self.name),
            vehicle_id: vehicle.clone(),
            fleet: None,
            time_ms,
            window_end_ms,
            score: result.score,
            grade: result.grade.grade,
            confidence: result.grade.confidence,
            threshold: result.grade.threshold,
            warming_up: result.warming_up,
            imputed: result.imputed,
            explanation,
            alert: (result.grade.grade >= alert_grade).then_some(severity),
        }
    }

    /// The vehicle's model: in memory, loaded back, or new.
    fn resident_model(&mut self, vehicle: &CompactString) -> &mut Resident {
        if !self.resident.contains_key(vehicle) {
            let key = self.key(vehicle);
            let config = self.config.model_config(vehicle);
            let model = match self
                .source
                .load(&key)
                .map(|bytes| AnomalyModel::restore(&bytes))
            {
                Some(Ok(model)) if model.config() == &config => {
                    self.counts.reloaded += 1;
                    model
                }
                Some(Ok(_)) => {
                    tracing::warn!(key, "the saved anomaly model has other parameters than the config; starting afresh");
                    AnomalyModel::new(config)
                }
                Some(Err(err)) => {
                    tracing::error!(%err, key, "a saved anomaly model is unreadable; starting afresh");
                    AnomalyModel::new(config)
                }
                None => AnomalyModel::new(config),
            };
            self.resident.insert(
                vehicle.clone(),
                Resident {
                    model,
                    last_event_ms: i64::MIN,
                    dirty: false,
                },
            );
        }
        self.resident
            .get_mut(vehicle)
            .unwrap_or_else(|| unreachable!("inserted above"))
    }

    fn key(&self, vehicle: &str) -> String {
        format!("{}/{vehicle}", self.name)
    }

    /// Idle models, then the least recently active beyond `max_models`, leave memory. The scan
    /// over every resident model runs only when there are too many, or once per quarter of
    /// `idle_after` of event time (so an idle model may stay up to that much longer), not on
    /// every batch.
    fn evict(&mut self, watermark_ms: i64) {
        let over_cap = self.resident.len() > self.config.max_models;
        if !over_cap && watermark_ms < self.next_idle_scan_ms {
            return;
        }
        let idle_after = self.config.idle_after.ms();
        self.next_idle_scan_ms = watermark_ms.saturating_add((idle_after / 4).max(1));
        let idle_before = watermark_ms.saturating_sub(idle_after);
        let mut leaving: Vec<(i64, CompactString)> = self
            .resident
            .iter()
            .filter(|(_, resident)| resident.last_event_ms < idle_before)
            .map(|(vehicle, resident)| (resident.last_event_ms, vehicle.clone()))
            .collect();
        let surplus = self
            .resident
            .len()
            .saturating_sub(leaving.len())
            .saturating_sub(self.config.max_models);
        if surplus > 0 {
            let mut active: Vec<(i64, CompactString)> = self
                .resident
                .iter()
                .filter(|(_, resident)| resident.last_event_ms >= idle_before)
                .map(|(vehicle, resident)| (resident.last_event_ms, vehicle.clone()))
                .collect();
            active.sort_unstable();
            leaving.extend(active.into_iter().take(surplus));
        }
        for (_, vehicle) in leaving {
            if let Some(resident) = self.resident.remove(&vehicle) {
                if resident.dirty {
                    self.source.unsaved.put(
                        &self.key(&vehicle),
                        self.next_checkpoint,
                        Arc::new(resident.model.snapshot()),
                    );
                }
                self.counts.evicted += 1;
            }
        }
    }

    /// At barrier `checkpoint`: snapshots every model used since the last one into the unsaved
    /// models (saved with this checkpoint).
    pub fn on_barrier(&mut self, checkpoint: u64) {
        let keys: Vec<CompactString> = self
            .resident
            .iter()
            .filter(|(_, resident)| resident.dirty)
            .map(|(vehicle, _)| vehicle.clone())
            .collect();
        for vehicle in keys {
            let key = self.key(&vehicle);
            if let Some(resident) = self.resident.get_mut(&vehicle) {
                self.source
                    .unsaved
                    .put(&key, checkpoint, Arc::new(resident.model.snapshot()));
                resident.dirty = false;
            }
        }
        self.next_checkpoint = checkpoint + 1;
    }

    /// The buffered records and open windows (models are saved on their own).
    pub fn snapshot(&self) -> AnomalyState {
        self.state.clone()
    }

    /// Continues from `state`; models load from the state store as their vehicles show up.
    pub fn restore(&mut self, state: AnomalyState) {
        self.state = state;
        self.resident.clear();
    }
}
