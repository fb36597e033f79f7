//! The stateful stage: watermarks, the configured rollups (window engines of the `windows`
//! crate) and threshold rules (the `models` crate), plus the fan-out of outputs to every sink and
//! of checkpoint barriers to the sinks and the committer.

use std::collections::BTreeMap;
use std::sync::Arc;

use compact_str::CompactString;
use models::detector::{AlarmEngine, AlarmEngineState, DetectorEngine, DetectorEngineState};
use models::rules::{RuleEngine, RuleEngineState};
use serde::{Deserialize, Serialize};
use telemetry::encode::write_wide_json;
use telemetry::Record;
use tokio::sync::mpsc;
use windows::{Rejection, WatermarkTracker};

use super::anomalies::{AnomalyCounts, AnomalyOperator, AnomalyState};
use super::committer::PendingCheckpoint;
use super::counters::PipelineCounters;
use super::messages::{DecodedBatch, StageMessage};
use super::output::{DeadLetter, DeadLetterKind, Output};
use super::rollups::{RollupOperator, RollupSnapshot};
use super::PipelineError;
use crate::config::{OpenWindowsOnShutdown, RollupConfig, TimeConfig};
use crate::position::RecordLocation;
use crate::sinks::runner::SinkMessage;

/// Version of [`OperatorSnapshot`]'s layout; bump on any change.
const SNAPSHOT_FORMAT: u32 = 7;

/// Everything the stage must remember across restarts.
#[derive(Serialize, Deserialize)]
struct OperatorSnapshot {
    format: u32,
    watermarks: WatermarkTracker,
    rollups: Vec<(String, RollupSnapshot)>,
    rules: RuleEngineState,
    detectors: Vec<(String, DetectorEngineState)>,
    alarms: Vec<(String, AlarmEngineState)>,
    anomalies: Vec<(String, AnomalyState)>,
    fleets: BTreeMap<CompactString, CompactString>,
}

/// The fleet each vehicle was last seen in, for output rows (looked up once per record, so a
/// hash map; snapshots store it sorted).
pub type FleetOf = rustc_hash::FxHashMap<CompactString, CompactString>;

/// Rollups, rules and watermarks.
pub struct Operators {
    watermarks: WatermarkTracker,
    rollup_configs: Vec<RollupConfig>,
    rollups: Vec<RollupOperator>,
    rules: RuleEngine,
    detectors: Vec<DetectorEngine>,
    alarms: Vec<AlarmEngine>,
    anomalies: Vec<AnomalyOperator>,
    commands: Option<crate::control::CommandQueue>,
    fleets: FleetOf,
    open_windows_on_shutdown: OpenWindowsOnShutdown,
    idle_timeout_ms: i64,
}

impl Operators {
    /// Fresh operators.
    pub fn new(
        rollups: &[RollupConfig],
        time: &TimeConfig,
        rules: RuleEngine,
        detectors: Vec<DetectorEngine>,
        alarms: Vec<AlarmEngine>,
        open_windows_on_shutdown: OpenWindowsOnShutdown,
    ) -> Result<Self, PipelineError> {
        Ok(Self {
            watermarks: WatermarkTracker::new(time.max_out_of_orderness.ms())
                .with_idle_timeout(time.idle_timeout.ms()),
            rollup_configs: rollups.to_vec(),
            rollups: rollups
                .iter()
                .map(|config| RollupOperator::new(config, None))
                .collect::<Result<_, _>>()
                .map_err(PipelineError::IncompatibleState)?,
            rules,
            detectors,
            alarms,
            anomalies: Vec::new(),
            commands: None,
            fleets: FleetOf::default(),
            open_windows_on_shutdown,
            idle_timeout_ms: time.idle_timeout.ms(),
        })
    }

    /// Runs these per-vehicle anomaly models too.
    pub fn with_anomalies(mut self, anomalies: Vec<AnomalyOperator>) -> Self {
        self.anomalies = anomalies;
        self
    }

    /// Resident, evicted and reloaded anomaly models, summed over the `[[anomaly]]` entries.
    pub fn anomaly_counts(&self) -> AnomalyCounts {
        self.anomalies
            .iter()
            .fold(AnomalyCounts::default(), |total, operator| {
                let counts = operator.counts();
                AnomalyCounts {
                    resident: total.resident + counts.resident,
                    evicted: total.evicted + counts.evicted,
                    reloaded: total.reloaded + counts.reloaded,
                }
            })
    }

    /// At a checkpoint barrier: anomaly models used since the last one are snapshotted to be
    /// saved with this checkpoint.
    pub fn on_barrier(&mut self, checkpoint: u64) {
        for anomaly in &mut self.anomalies {
            anomaly.on_barrier(checkpoint);
        }
    }

    /// Streams go idle only when the source says so (Kinesis shards caught up with their tip),
    /// not after `time.idle_timeout` without events: a shard whose reads are slow is not idle.
    pub fn with_source_idleness(mut self) -> Self {
        self.idle_timeout_ms = 0;
        self.watermarks = self.watermarks.clone().with_idle_timeout(0);
        self
    }

    /// Takes alarm commands from `queue` at every batch.
    pub fn with_commands(mut self, queue: crate::control::CommandQueue) -> Self {
        self.commands = Some(queue);
        self
    }

    /// Applies queued alarm commands at the current event time (the watermark).
    fn apply_commands(&mut self, outputs: &mut Vec<Output>) {
        let Some(queue) = &self.commands else { return };
        let commands: Vec<crate::control::QueuedCommand> = match queue.lock() {
            Ok(mut pending) => std::mem::take(&mut *pending),
            Err(_) => return,
        };
        self.apply_queued(commands, outputs);
    }

    /// Applies alarm commands (taken from the queue by the caller) at the current event time.
    pub fn apply_queued(
        &mut self,
        commands: Vec<crate::control::QueuedCommand>,
        outputs: &mut Vec<Output>,
    ) {
        let now = self.watermarks.current().unwrap_or(0).max(0);
        for queued in commands {
            match self
                .alarms
                .iter_mut()
                .find(|alarm| alarm.model_name() == queued.model)
            {
                Some(alarm) => outputs.extend(
                    alarm
                        .command(&queued.vehicle_id, queued.command.at(now), now)
                        .into_iter()
                        .map(Output::Detector),
                ),
                None => {
                    tracing::warn!(model = %queued.model, "alarm command for an unknown alarm model")
                }
            }
        }
    }

    /// Serializes the state (postcard, versioned).
    pub fn snapshot(&self) -> Vec<u8> {
        let snapshot = OperatorSnapshot {
            format: SNAPSHOT_FORMAT,
            watermarks: self.watermarks.clone(),
            rollups: self
                .rollups
                .iter()
                .map(|rollup| (rollup.name().to_owned(), rollup.snapshot()))
                .collect(),
            rules: self.rules.snapshot(),
            detectors: self
                .detectors
                .iter()
                .map(|detector| (detector.model_name().to_owned(), detector.snapshot()))
                .collect(),
            alarms: self
                .alarms
                .iter()
                .map(|alarm| (alarm.model_name().to_owned(), alarm.snapshot()))
                .collect(),
            anomalies: self
                .anomalies
                .iter()
                .map(|anomaly| (anomaly.name().to_owned(), anomaly.snapshot()))
                .collect(),
            fleets: self
                .fleets
                .iter()
                .map(|(vehicle, fleet)| (vehicle.clone(), fleet.clone()))
                .collect(),
        };
        postcard::to_stdvec(&snapshot)
            .unwrap_or_else(|err| unreachable!("snapshot serializes: {err}"))
    }

    /// Restores a snapshot; refuses one that this configuration cannot continue. Rollups are
    /// matched by name: a new rollup starts empty, a removed one is dropped.
    pub fn restore(&mut self, bytes: &[u8]) -> Result<(), PipelineError> {
        let snapshot: OperatorSnapshot = postcard::from_bytes(bytes).map_err(|err| {
            PipelineError::IncompatibleState(format!("operator state is unreadable ({err})"))
        })?;
        if snapshot.format != SNAPSHOT_FORMAT {
            return Err(PipelineError::IncompatibleState(format!(
                "operator state format {} (this build reads {SNAPSHOT_FORMAT})",
                snapshot.format
            )));
        }
        let mut saved: BTreeMap<String, RollupSnapshot> = snapshot.rollups.into_iter().collect();
        self.rollups = self
            .rollup_configs
            .iter()
            .map(|config| RollupOperator::new(config, saved.remove(&config.name)))
            .collect::<Result<_, _>>()
            .map_err(PipelineError::IncompatibleState)?;
        // Time settings come from the current configuration; progress from the snapshot.
        self.watermarks = snapshot.watermarks.with_idle_timeout(self.idle_timeout_ms);
        self.rules.restore(snapshot.rules);
        let mut saved: BTreeMap<String, DetectorEngineState> =
            snapshot.detectors.into_iter().collect();
        for detector in &mut self.detectors {
            if let Some(state) = saved.remove(detector.model_name()) {
                detector.restore(state);
            }
        }
        let mut saved: BTreeMap<String, AlarmEngineState> = snapshot.alarms.into_iter().collect();
        for alarm in &mut self.alarms {
            if let Some(state) = saved.remove(alarm.model_name()) {
                alarm.restore(state);
            }
        }
        let mut saved: BTreeMap<String, AnomalyState> = snapshot.anomalies.into_iter().collect();
        for anomaly in &mut self.anomalies {
            if let Some(state) = saved.remove(anomaly.name()) {
                anomaly.restore(state);
            }
        }
        self.fleets = snapshot.fleets.into_iter().collect();
        Ok(())
    }

    /// Processes one decoded batch into outputs.
    pub fn process(&mut self, batch: DecodedBatch, counters: &PipelineCounters) -> Vec<Output> {
        // Idleness is judged in the source's clock: when batches were read, not processed.
        let now = batch.read_at_ms;
        if !batch.stream.is_empty() && !batch.stream_finished {
            self.watermarks.register(&batch.stream, now);
        }
        self.watermarks.refresh(now);
        let mut outputs: Vec<Output> = batch
            .dead_letters
            .into_iter()
            .map(Output::DeadLetter)
            .collect();
        // The records stay in the batch: it goes back to the decoder, which reuses them.
        for (offset, record) in batch.records.iter() {
            let offset = *offset;
            if let Some(fleet) = &record.fleet {
                if self.fleets.get(&record.vehicle_id) != Some(fleet) {
                    self.fleets.insert(record.vehicle_id.clone(), fleet.clone());
                }
            }
            let mut rejection = None;
            let watermark = self.watermarks.current();
            for rollup in &mut self.rollups {
                if let Some(err) = rollup.add(record, watermark) {
                    rejection.get_or_insert(err);
                }
            }
            if let Some(rejection) = rejection {
                outputs.push(Output::DeadLetter(
                    self.rejected_letter(
                        &batch.partition,
                        offset,
                        usize::try_from(offset)
                            .ok()
                            .and_then(|index| batch.record_ids.get(index))
                            .cloned(),
                        record,
                        rejection,
                    ),
                ));
                let counter = match rejection {
                    Rejection::Late { .. } => &counters.records_late,
                    Rejection::StateCap { .. } => &counters.records_over_state_cap,
                };
                PipelineCounters::add(counter, 1);
            }
            if self.watermarks.is_late(record.event_time_ms) {
                // Rules evaluate each vehicle in event-time order; an event behind the watermark
                // cannot be placed in that order any more.
                PipelineCounters::add(&counters.records_late_for_rules, 1);
            } else {
                self.rules.offer(record);
                if !self.detectors.is_empty()
                    || !self.alarms.is_empty()
                    || !self.anomalies.is_empty()
                {
                    let shared = Arc::new(record.clone());
                    for anomaly in &mut self.anomalies {
                        anomaly.offer_shared(Arc::clone(&shared));
                    }
                    for detector in &mut self.detectors {
                        detector.offer_shared(Arc::clone(&shared));
                    }
                    for alarm in &mut self.alarms {
                        alarm.offer_shared(Arc::clone(&shared));
                    }
                }
            }
            self.watermarks
                .observe(&batch.stream, record.event_time_ms, now);
        }
        self.apply_commands(&mut outputs);
        if batch.stream_finished {
            self.watermarks.finish_partition(&batch.stream, now);
        } else if batch.stream_idle {
            self.watermarks.mark_idle(&batch.stream, now);
        }
        self.advance(self.watermarks.current(), &mut outputs);
        outputs
    }

    /// Open window entries over every rollup.
    pub fn open_entries(&self) -> usize {
        self.rollups.iter().map(RollupOperator::open_entries).sum()
    }

    /// The watermark (`None` before any event).
    pub fn watermark(&self) -> Option<i64> {
        self.watermarks.current()
    }

    /// True while some stream holds this state's watermark (see
    /// [`WatermarkTracker::has_partitions`]).
    pub fn has_streams(&self) -> bool {
        self.watermarks.has_partitions()
    }

    /// Moves the watermark forward to `watermark` (a quiet lane following busier ones) and
    /// emits what closes.
    pub fn follow(&mut self, watermark: i64, outputs: &mut Vec<Output>) {
        if self.watermarks.advance_to(watermark).is_some() {
            self.advance(Some(watermark), outputs);
        }
    }

    /// End of input: the watermark goes to the end of time; everything closes.
    pub fn finish(&mut self) -> Vec<Output> {
        let mut outputs = Vec::new();
        let watermark = self.watermarks.finish_all();
        self.advance(Some(watermark), &mut outputs);
        outputs
    }

    /// Shutdown: emit partial windows if configured (they stay open in the state).
    pub fn on_shutdown(&mut self) -> Vec<Output> {
        let mut rollups = Vec::new();
        if self.open_windows_on_shutdown == OpenWindowsOnShutdown::EmitPartial {
            for rollup in &mut self.rollups {
                rollup.emit_partial(&self.fleets, &mut rollups);
            }
        }
        rollups.into_iter().map(Output::Rollup).collect()
    }

    /// Approximate bytes of window state (logged at checkpoints).
    pub fn state_bytes(&self) -> usize {
        self.rollups.iter().map(RollupOperator::state_bytes).sum()
    }

    fn advance(&mut self, watermark: Option<i64>, outputs: &mut Vec<Output>) {
        let now = super::wall_clock_ms();
        let mut rollups = Vec::new();
        for rollup in &mut self.rollups {
            rollup.advance(watermark, now, &self.fleets, &mut rollups);
        }
        outputs.extend(rollups.into_iter().map(Output::Rollup));
        if let Some(watermark) = watermark {
            outputs.extend(
                self.rules
                    .advance_watermark(watermark)
                    .into_iter()
                    .map(Output::Alert),
            );
            for detector in &mut self.detectors {
                detector.set_processing_time(now);
                outputs.extend(
                    detector
                        .advance_watermark(watermark)
                        .into_iter()
                        .map(Output::Detector),
                );
            }
            for alarm in &mut self.alarms {
                outputs.extend(
                    alarm
                        .advance_watermark(watermark)
                        .into_iter()
                        .map(Output::Detector),
                );
            }
            let mut rows = Vec::new();
            for anomaly in &mut self.anomalies {
                anomaly.advance_watermark(watermark, &self.fleets, &mut rows);
            }
            outputs.extend(rows.into_iter().map(Output::Anomaly));
        }
    }

    fn rejected_letter(
        &self,
        partition: &str,
        offset: u64,
        record_id: Option<String>,
        record: &Record,
        rejection: Rejection,
    ) -> DeadLetter {
        let mut raw = Vec::new();
        write_wide_json(record, &mut raw);
        let (kind, reason) = match rejection {
            Rejection::Late { window_start_ms, window_end_ms, watermark_ms } => (
                DeadLetterKind::Late,
                format!(
                    "late: event time {} belongs to window [{}, {}) which closed for good at watermark {} \
                     (time.max_out_of_orderness + allowed_lateness); raw holds the decoded record as wide JSON",
                    telemetry::timestamp::format_rfc3339(record.event_time_ms),
                    telemetry::timestamp::format_rfc3339(window_start_ms),
                    telemetry::timestamp::format_rfc3339(window_end_ms),
                    telemetry::timestamp::format_rfc3339(watermark_ms),
                ),
            ),
            Rejection::StateCap { limit } => (
                DeadLetterKind::StateCap,
                format!("state cap: {limit} open window entries reached (max_open_entries); raw holds the decoded record as wide JSON"),
            ),
        };
        DeadLetter {
            location: RecordLocation {
                partition: partition.to_owned(),
                offset,
                record_id,
            },
            kind,
            reason,
            fields: Vec::new(),
            vehicle_id: Some(record.vehicle_id.to_string()),
            raw,
        }
    }
}

/// Where the stage sends its results.
pub struct OperatorOutlets {
    /// One channel per sink.
    pub sinks: Vec<mpsc::Sender<SinkMessage>>,
    /// Checkpoints waiting for sink acknowledgements.
    pub pending: mpsc::Sender<PendingCheckpoint>,
}

impl OperatorOutlets {
    fn send_outputs(
        &self,
        outputs: Vec<Output>,
        counters: &PipelineCounters,
    ) -> Result<(), PipelineError> {
        if outputs.is_empty() {
            return Ok(());
        }
        for output in &outputs {
            match output {
                Output::Rollup(_) => PipelineCounters::add(&counters.rollups, 1),
                Output::Alert(_) => PipelineCounters::add(&counters.alerts, 1),
                Output::DeadLetter(_) => PipelineCounters::add(&counters.dead_letters, 1),
                Output::Detector(_) => PipelineCounters::add(&counters.detector_events, 1),
                Output::Anomaly(row) => {
                    PipelineCounters::add(&counters.anomalies, 1);
                    if row.alert.is_some() {
                        PipelineCounters::add(&counters.anomaly_alerts, 1);
                    }
                }
            }
        }
        let shared = Arc::new(outputs);
        for sink in &self.sinks {
            sink.blocking_send(SinkMessage::Outputs(Arc::clone(&shared)))
                .map_err(|_| PipelineError::StageStopped("a sink"))?;
        }
        Ok(())
    }
}

/// Runs the stage until its input closes (on a blocking thread).
pub fn run_operators(
    mut operators: super::lanes::Lanes,
    mut inbox: mpsc::Receiver<StageMessage<DecodedBatch>>,
    outlets: OperatorOutlets,
    counters: Arc<PipelineCounters>,
) -> Result<(), PipelineError> {
    while let Some(message) = inbox.blocking_recv() {
        let outputs = match message {
            StageMessage::Data(batch) => operators.process(batch, &counters)?,
            StageMessage::EndOfInput => operators.finish(),
            StageMessage::Shutdown => operators.on_shutdown(),
            StageMessage::Barrier(barrier) => {
                operators.on_barrier(barrier.id);
                let anomaly_counts = operators.anomaly_counts();
                counters.anomaly_models_resident.store(
                    anomaly_counts.resident as u64,
                    std::sync::atomic::Ordering::Relaxed,
                );
                counters
                    .anomaly_models_evicted
                    .store(anomaly_counts.evicted, std::sync::atomic::Ordering::Relaxed);
                let state_bytes = operators.state_bytes() as u64;
                counters
                    .window_state_bytes
                    .store(state_bytes, std::sync::atomic::Ordering::Relaxed);
                tracing::debug!(
                    checkpoint = barrier.id,
                    window_state_bytes = state_bytes,
                    open_window_entries = operators.open_entries(),
                    "barrier"
                );
                let (operator_state, lanes) = operators.snapshot();
                let pending = PendingCheckpoint {
                    id: barrier.id,
                    positions: barrier.positions,
                    operator_state,
                    lanes,
                };
                outlets
                    .pending
                    .blocking_send(pending)
                    .map_err(|_| PipelineError::StageStopped("the committer"))?;
                for sink in &outlets.sinks {
                    sink.blocking_send(SinkMessage::Barrier(barrier.id))
                        .map_err(|_| PipelineError::StageStopped("a sink"))?;
                }
                continue;
            }
        };
        // Every other message opens or closes windows: the gauge follows.
        counters.open_window_entries.store(
            operators.open_entries() as u64,
            std::sync::atomic::Ordering::Relaxed,
        );
        outlets.send_outputs(outputs, &counters)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pipeline::lanes::Lanes;
    use telemetry::Signal;

    /// Runs the stage over `messages` (a rollup per vehicle and signal) and returns the open
    /// window gauge it leaves.
    fn open_entries_after(messages: Vec<StageMessage<DecodedBatch>>) -> u64 {
        let config = crate::config::parse(
            "[source]\nkind = \"file\"\npath = \"in.ndjson\"\n\n[[rollups]]\nname = \"signal_1m\"\nwindow = { kind = \"tumbling\", size = \"1m\" }\ngroup_by = [\"vehicle\", \"signal\"]\n",
            "test",
            &[],
        )
        .expect("config");
        let operators = super::super::build_operators(
            &config,
            None,
            &crate::state::UnsavedModels::default(),
            1,
        )
        .expect("operators");
        let (batches, inbox) = mpsc::channel(8);
        let (sink, mut sink_inbox) = mpsc::channel(8);
        let (pending, _pending_inbox) = mpsc::channel(8);
        let counters = Arc::new(PipelineCounters::default());
        let stage_counters = Arc::clone(&counters);
        let stage = std::thread::spawn(move || {
            let outlets = OperatorOutlets {
                sinks: vec![sink],
                pending,
            };
            run_operators(Lanes::single(operators), inbox, outlets, stage_counters)
        });
        for message in messages {
            batches.blocking_send(message).expect("stage running");
        }
        drop(batches);
        while sink_inbox.blocking_recv().is_some() {}
        stage.join().expect("stage thread").expect("stage");
        PipelineCounters::get(&counters.open_window_entries)
    }

    fn batch() -> StageMessage<DecodedBatch> {
        let record = |vehicle: &str| Record {
            vehicle_id: vehicle.into(),
            event_time_ms: 1_767_225_600_000,
            fleet: None,
            attributes: telemetry::Attributes::new(),
            signals: vec![Signal::new("speed_kmh", 50.0), Signal::new("rpm", 2000.0)],
        };
        StageMessage::Data(DecodedBatch {
            stream: Arc::from("file"),
            stream_finished: false,
            stream_idle: false,
            partition_finished: false,
            partition: Arc::from("file"),
            records: vec![(0, record("veh-1")), (1, record("veh-2"))].into(),
            dead_letters: Vec::new(),
            read_at_ms: 0,
            record_ids: Vec::new(),
            lane: None,
        })
    }

    #[test]
    fn the_open_window_gauge_follows_batches_and_the_end_of_input() {
        assert_eq!(
            open_entries_after(vec![batch()]),
            4,
            "2 vehicles × 2 signals"
        );
        assert_eq!(
            open_entries_after(vec![batch(), StageMessage::EndOfInput]),
            0,
            "the end of input closes every window"
        );
    }
}
