//! One configured rollup: picks the values a record contributes, groups them, feeds its window
//! engine and turns window results into [`Rollup`] outputs.

use std::collections::BTreeMap;
use std::sync::Arc;

use compact_str::CompactString;
use rustc_hash::FxHashSet;
use telemetry::Record;
use windows::{EngineSnapshot, Rejection, WindowEngine, WindowOutput};

use super::output::Rollup;
use crate::config::{GroupDimension, RollupConfig};

/// Grouping key: one value per configured dimension (unused slots empty).
pub type GroupKey = [CompactString; 4];

/// A rollup and its window state.
pub struct RollupOperator {
    name: Arc<str>,
    dimensions: Vec<GroupDimension>,
    signals: Option<FxHashSet<CompactString>>,
    /// The one signal a rollup without a `signal` dimension aggregates.
    single_signal: Option<CompactString>,
    engine: WindowEngine<GroupKey>,
}

impl RollupOperator {
    /// A fresh rollup (or one restored from `snapshot`).
    pub fn new(
        config: &RollupConfig,
        snapshot: Option<EngineSnapshot<GroupKey>>,
    ) -> Result<Self, String> {
        let engine = match snapshot {
            Some(snapshot) => WindowEngine::restore(config.engine_config(), snapshot)
                .map_err(|err| format!("rollup {:?}: {err}", config.name))?,
            None => WindowEngine::new(config.engine_config()),
        };
        Ok(Self {
            name: Arc::from(config.name.as_str()),
            dimensions: config.group_by.clone(),
            signals: (!config.signals.is_empty())
                .then(|| config.signals.iter().map(CompactString::from).collect()),
            single_signal: match config.signals.as_slice() {
                [only] => Some(CompactString::from(only.as_str())),
                _ => None,
            },
            engine,
        })
    }

    /// Rollup name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The engine state to checkpoint.
    pub fn snapshot(&self) -> EngineSnapshot<GroupKey> {
        self.engine.snapshot()
    }

    /// Feeds every selected signal of `record`, deciding lateness against `watermark_ms` (the
    /// pipeline watermark when the record arrived); returns the first rejection, if any.
    pub fn add(&mut self, record: &Record, watermark_ms: Option<i64>) -> Option<Rejection> {
        if let Some(watermark) = watermark_ms {
            self.engine.observe_watermark(watermark);
        }
        let mut rejection = None;
        for signal in &record.signals {
            if self
                .signals
                .as_ref()
                .is_some_and(|wanted| !wanted.contains(&signal.name))
            {
                continue;
            }
            let mut key: GroupKey = Default::default();
            for (slot, dimension) in key.iter_mut().zip(&self.dimensions) {
                *slot = match dimension {
                    GroupDimension::Vehicle => record.vehicle_id.clone(),
                    GroupDimension::Fleet => record.fleet.clone().unwrap_or_default(),
                    GroupDimension::Signal => signal.name.clone(),
                    GroupDimension::Attribute(name) => record
                        .attribute(name)
                        .map(CompactString::from)
                        .unwrap_or_default(),
                };
            }
            let item = Some(record.vehicle_id.as_bytes());
            if let Err(err) = self
                .engine
                .add(&key, record.event_time_ms, signal.value, item)
            {
                rejection.get_or_insert(err);
            }
        }
        rejection
    }

    /// Results closed (or re-emitted) by `watermark_ms`, then emission-mode firings at `now_ms`.
    pub fn advance(
        &mut self,
        watermark_ms: Option<i64>,
        now_ms: i64,
        fleets: &BTreeMap<CompactString, CompactString>,
        out: &mut Vec<Rollup>,
    ) {
        let mut results = match watermark_ms {
            Some(watermark) => self.engine.advance_watermark(watermark),
            None => Vec::new(),
        };
        results.extend(self.engine.poll(now_ms));
        out.extend(
            results
                .into_iter()
                .map(|result| self.rollup(result, fleets)),
        );
    }

    /// Partial results of every open window (shutdown with `emit_partial`).
    pub fn emit_partial(
        &mut self,
        fleets: &BTreeMap<CompactString, CompactString>,
        out: &mut Vec<Rollup>,
    ) {
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

    fn rollup(
        &self,
        output: WindowOutput<GroupKey>,
        fleets: &BTreeMap<CompactString, CompactString>,
    ) -> Rollup {
        let mut vehicle_id = None;
        let mut fleet = None;
        let mut signal = None;
        let mut group_key = String::new();
        for (value, dimension) in output.key.iter().zip(&self.dimensions) {
            if !group_key.is_empty() {
                group_key.push(',');
            }
            group_key.push_str(&format!("{dimension}={value}"));
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
