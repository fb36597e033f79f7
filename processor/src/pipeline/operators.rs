//! The stateful stage: watermarks, lateness, 1-minute rollups (the `windows` crate) and threshold
//! rules (the `models` crate), plus the fan-out of outputs to every sink and of checkpoint
//! barriers to the sinks and the committer.

use std::collections::BTreeMap;
use std::sync::Arc;

use compact_str::CompactString;
use models::rules::{RuleEngine, RuleEngineState};
use serde::{Deserialize, Serialize};
use telemetry::encode::write_wide_json;
use telemetry::Record;
use tokio::sync::mpsc;
use windows::{TumblingSpec, TumblingWindows, WatermarkTracker, WindowResult};

use super::committer::PendingCheckpoint;
use super::counters::PipelineCounters;
use super::messages::{DecodedBatch, StageMessage};
use super::output::{DeadLetter, DeadLetterKind, Output, Rollup};
use super::PipelineError;
use crate::config::OpenWindowsOnShutdown;
use crate::position::RecordLocation;
use crate::sinks::runner::SinkMessage;

/// Rollup grouping key: (vehicle id, signal name).
type RollupKey = (CompactString, CompactString);

/// Version of [`OperatorSnapshot`]'s layout; bump on any change.
const SNAPSHOT_FORMAT: u32 = 1;

/// Everything the stage must remember across restarts.
#[derive(Serialize, Deserialize)]
struct OperatorSnapshot {
    format: u32,
    window_spec: TumblingSpec,
    watermarks: WatermarkTracker,
    windows: TumblingWindows<RollupKey>,
    rules: RuleEngineState,
    fleets: BTreeMap<CompactString, CompactString>,
}

/// Windows, rules and watermarks.
pub struct Operators {
    watermarks: WatermarkTracker,
    windows: TumblingWindows<RollupKey>,
    rules: RuleEngine,
    fleets: BTreeMap<CompactString, CompactString>,
    open_windows_on_shutdown: OpenWindowsOnShutdown,
}

impl Operators {
    /// Fresh operators.
    pub fn new(
        window_spec: TumblingSpec,
        max_out_of_orderness_ms: i64,
        rules: RuleEngine,
        open_windows_on_shutdown: OpenWindowsOnShutdown,
    ) -> Self {
        Self {
            watermarks: WatermarkTracker::new(max_out_of_orderness_ms),
            windows: TumblingWindows::new(window_spec),
            rules,
            fleets: BTreeMap::new(),
            open_windows_on_shutdown,
        }
    }

    /// Serializes the state (postcard, versioned).
    pub fn snapshot(&self) -> Vec<u8> {
        let snapshot = OperatorSnapshot {
            format: SNAPSHOT_FORMAT,
            window_spec: self.windows.spec(),
            watermarks: self.watermarks.clone(),
            windows: self.windows.clone(),
            rules: self.rules.snapshot(),
            fleets: self.fleets.clone(),
        };
        postcard::to_stdvec(&snapshot)
            .unwrap_or_else(|err| unreachable!("snapshot serializes: {err}"))
    }

    /// Restores a snapshot; refuses one that this configuration cannot continue.
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
        if snapshot.window_spec != self.windows.spec() {
            return Err(PipelineError::IncompatibleState(format!(
                "the state holds {} ms windows (offset {} ms) but rollups.window is {} ms (offset {} ms)",
                snapshot.window_spec.size_ms,
                snapshot.window_spec.offset_ms,
                self.windows.spec().size_ms,
                self.windows.spec().offset_ms
            )));
        }
        self.watermarks = snapshot.watermarks;
        self.windows = snapshot.windows;
        self.rules.restore(snapshot.rules);
        self.fleets = snapshot.fleets;
        Ok(())
    }

    /// Processes one decoded batch into outputs.
    pub fn process(&mut self, batch: DecodedBatch, counters: &PipelineCounters) -> Vec<Output> {
        let mut outputs: Vec<Output> = batch
            .dead_letters
            .into_iter()
            .map(Output::DeadLetter)
            .collect();
        for (offset, record) in batch.records {
            if self.watermarks.is_late(record.event_time_ms) {
                outputs.push(Output::DeadLetter(self.late_letter(
                    &batch.partition,
                    offset,
                    &record,
                )));
                PipelineCounters::add(&counters.records_late, 1);
                continue;
            }
            if let Some(fleet) = &record.fleet {
                if self.fleets.get(&record.vehicle_id) != Some(fleet) {
                    self.fleets.insert(record.vehicle_id.clone(), fleet.clone());
                }
            }
            for signal in &record.signals {
                let key = (record.vehicle_id.clone(), signal.name.clone());
                if let Err(late) = self.windows.add(&key, record.event_time_ms, signal.value) {
                    tracing::debug!(%late, "value behind a closed window");
                }
            }
            self.rules.offer(&record);
            self.watermarks.observe(&batch.stream, record.event_time_ms);
        }
        if batch.stream_finished {
            self.watermarks.finish_partition(&batch.stream);
        }
        if let Some(watermark) = self.watermarks.current() {
            self.advance(watermark, &mut outputs);
        }
        counters.open_window_entries.store(
            self.windows.open_entries() as u64,
            std::sync::atomic::Ordering::Relaxed,
        );
        outputs
    }

    /// End of input: the watermark goes to the end of time; everything closes.
    pub fn finish(&mut self) -> Vec<Output> {
        let mut outputs = Vec::new();
        let watermark = self.watermarks.finish_all();
        self.advance(watermark, &mut outputs);
        outputs
    }

    /// Shutdown: emit partial windows if configured (they stay open in the state).
    pub fn on_shutdown(&mut self) -> Vec<Output> {
        match self.open_windows_on_shutdown {
            OpenWindowsOnShutdown::Keep => Vec::new(),
            OpenWindowsOnShutdown::EmitPartial => {
                let partial = self.windows.emit_partial();
                partial
                    .into_iter()
                    .map(|result| Output::Rollup(self.rollup(result)))
                    .collect()
            }
        }
    }

    fn advance(&mut self, watermark: i64, outputs: &mut Vec<Output>) {
        for result in self.windows.advance_watermark(watermark) {
            outputs.push(Output::Rollup(self.rollup(result)));
        }
        outputs.extend(
            self.rules
                .advance_watermark(watermark)
                .into_iter()
                .map(Output::Alert),
        );
    }

    fn rollup(&self, result: WindowResult<RollupKey>) -> Rollup {
        let (vehicle_id, signal) = result.key;
        Rollup {
            fleet: self.fleets.get(&vehicle_id).cloned(),
            vehicle_id,
            signal,
            window_start_ms: result.window_start_ms,
            window_end_ms: result.window_end_ms,
            stats: result.stats,
            version: result.version,
            is_final: result.is_final,
        }
    }

    fn late_letter(&self, partition: &str, offset: u64, record: &Record) -> DeadLetter {
        let watermark = self.watermarks.current().unwrap_or(i64::MIN);
        let mut raw = Vec::new();
        write_wide_json(record, &mut raw);
        DeadLetter {
            location: RecordLocation {
                partition: partition.to_owned(),
                offset,
            },
            kind: DeadLetterKind::Late,
            reason: format!(
                "late: event time {} is {} ms behind the watermark {} (time.max_out_of_orderness); \
                 raw holds the decoded record as wide JSON",
                telemetry::timestamp::format_rfc3339(record.event_time_ms),
                watermark.saturating_sub(record.event_time_ms),
                telemetry::timestamp::format_rfc3339(watermark)
            ),
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
    mut operators: Operators,
    mut inbox: mpsc::Receiver<StageMessage<DecodedBatch>>,
    outlets: OperatorOutlets,
    counters: Arc<PipelineCounters>,
) -> Result<(), PipelineError> {
    while let Some(message) = inbox.blocking_recv() {
        match message {
            StageMessage::Data(batch) => {
                let outputs = operators.process(batch, &counters);
                outlets.send_outputs(outputs, &counters)?;
            }
            StageMessage::EndOfInput => outlets.send_outputs(operators.finish(), &counters)?,
            StageMessage::Shutdown => outlets.send_outputs(operators.on_shutdown(), &counters)?,
            StageMessage::Barrier(barrier) => {
                let pending = PendingCheckpoint {
                    id: barrier.id,
                    positions: barrier.positions,
                    operator_state: operators.snapshot(),
                };
                outlets
                    .pending
                    .blocking_send(pending)
                    .map_err(|_| PipelineError::StageStopped("the committer"))?;
                for sink in &outlets.sinks {
                    sink.blocking_send(SinkMessage::Barrier(barrier.id))
                        .map_err(|_| PipelineError::StageStopped("a sink"))?;
                }
            }
        }
    }
    Ok(())
}
