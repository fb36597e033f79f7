//! Operator state per stream ("lanes"), so a Kinesis shard's state can move to another worker
//! with its lease.
//!
//! Without hand-off the stage has one lane: one [`Operators`] for every stream, with the
//! watermark the minimum over them (files, stdin, the simulator, Kinesis without `handoff`).
//! With `[source.kinesis.handoff]` each shard is a lane of its own: its windows, rules and
//! detectors see only its records and its own watermark, so what it emits depends only on the
//! shard's records, whichever worker reads them. Re-emissions after a takeover are then identical
//! and the idempotent sinks absorb them.
//!
//! - A lane opens when the source announces the shard ([`LaneEvent::Open`]) with the state the
//!   previous owner stored, or empty; it closes without emitting when the lease is lost.
//! - A shard read to its end keeps its lane until the next barrier has snapshotted its final
//!   state (for the children), then drops it: its open windows continue in the children.
//! - **Resharding.** A lane is a list of segments, each an [`Operators`] with the hash-key
//!   range it answers for. A child shard starts with its parents' segments clipped to its own
//!   range (a merge has two). Records go to the segment whose range holds `MD5(vehicle id)`,
//!   which assumes the vehicle id is the partition key (as `fleetstream produce` writes, and as
//!   per-vehicle order requires). After a split both children hold a copy of the parent's
//!   windows; a segment drops outputs of vehicles outside its range, so only the child that owns
//!   a vehicle writes it.
//! - **Quiet lanes.** A lane's watermark moves only with its own records. A lane whose shard is
//!   caught up (idle) follows the most advanced lane of the worker, and a segment that no longer
//!   gets records follows its lane, so their last windows still close.

use std::collections::BTreeMap;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use super::anomalies::AnomalyCounts;
use super::counters::PipelineCounters;
use super::messages::DecodedBatch;
use super::operators::Operators;
use super::output::Output;
use super::PipelineError;
use crate::control::{CommandQueue, QueuedCommand};
use crate::sources::kinesis::kpl::partition_key_hash;
use crate::sources::{HashRange, LaneEvent, LaneSeed, LaneStates};

/// Builds empty operators for a new lane or segment, given the id of the next barrier.
pub type OperatorsFactory = Box<dyn FnMut(u64) -> Result<Operators, PipelineError> + Send>;

/// Layout of a stored lane; bump on any change.
const LANE_FORMAT: u32 = 1;

/// A lane as stored with its shard's checkpoint.
#[derive(Serialize, Deserialize)]
struct LaneSnapshot {
    format: u32,
    range: HashRange,
    segments: Vec<SegmentSnapshot>,
}

#[derive(Serialize, Deserialize)]
struct SegmentSnapshot {
    /// `None`: the lane's whole range, no filtering.
    range: Option<HashRange>,
    operators: Vec<u8>,
}

fn contains(range: HashRange, hash: u128) -> bool {
    range.0 <= hash && hash <= range.1
}

fn intersect(a: HashRange, b: HashRange) -> Option<HashRange> {
    let range = (a.0.max(b.0), a.1.min(b.1));
    (range.0 <= range.1).then_some(range)
}

/// The vehicle an output belongs to, if it belongs to one.
fn output_vehicle(output: &Output) -> Option<&str> {
    use models::detector::DetectorOutput;
    match output {
        Output::Rollup(rollup) => rollup.vehicle_id.as_deref(),
        Output::Alert(alert) => Some(&alert.vehicle_id),
        Output::Anomaly(row) => Some(&row.vehicle_id),
        Output::Detector(DetectorOutput::Alert(alert)) => Some(&alert.vehicle_id),
        Output::Detector(DetectorOutput::StateChange { vehicle_id, .. })
        | Output::Detector(DetectorOutput::Notification { vehicle_id, .. }) => Some(vehicle_id),
        Output::DeadLetter(_) => None,
    }
}

/// One part of a lane's state.
struct Segment {
    range: Option<HashRange>,
    operators: Operators,
}

impl Segment {
    /// Runs `produce` on this segment's operators and appends what it emits for vehicles in
    /// the segment's range to `outputs`.
    fn emit(
        &mut self,
        produce: impl FnOnce(&mut Operators) -> Vec<Output>,
        outputs: &mut Vec<Output>,
    ) {
        let mut produced = produce(&mut self.operators);
        if let Some(range) = self.range {
            produced.retain(|output| {
                output_vehicle(output)
                    .is_none_or(|vehicle| contains(range, partition_key_hash(vehicle)))
            });
        }
        outputs.append(&mut produced);
    }

    /// Moves the watermark forward to `watermark` (see [`Operators::follow`]).
    fn follow(&mut self, watermark: i64, outputs: &mut Vec<Output>) {
        self.emit(
            |operators| {
                let mut produced = Vec::new();
                operators.follow(watermark, &mut produced);
                produced
            },
            outputs,
        );
    }
}

/// The state of one stream.
struct Lane {
    range: HashRange,
    segments: Vec<Segment>,
    idle: bool,
}

impl Lane {
    fn fresh(
        range: HashRange,
        factory: &mut dyn FnMut() -> Result<Operators, PipelineError>,
    ) -> Result<Self, PipelineError> {
        Ok(Self {
            range,
            segments: vec![Segment {
                range: None,
                operators: factory()?,
            }],
            idle: false,
        })
    }

    fn decode(bytes: &[u8]) -> Result<LaneSnapshot, PipelineError> {
        let snapshot: LaneSnapshot = postcard::from_bytes(bytes).map_err(|err| {
            PipelineError::IncompatibleState(format!("a handed-over lane is unreadable ({err})"))
        })?;
        if snapshot.format != LANE_FORMAT {
            return Err(PipelineError::IncompatibleState(format!(
                "a handed-over lane has format {} (this build reads {LANE_FORMAT})",
                snapshot.format
            )));
        }
        Ok(snapshot)
    }

    fn restore_segment(
        range: Option<HashRange>,
        bytes: &[u8],
        factory: &mut dyn FnMut() -> Result<Operators, PipelineError>,
    ) -> Result<Segment, PipelineError> {
        let mut operators = factory()?;
        operators.restore(bytes)?;
        Ok(Segment { range, operators })
    }

    /// The lane `seed` describes: a resumed lane keeps its segments as they were; a child takes
    /// its parents' segments clipped to its own range.
    fn open(
        range: HashRange,
        seed: &LaneSeed,
        factory: &mut dyn FnMut() -> Result<Operators, PipelineError>,
    ) -> Result<Self, PipelineError> {
        let (stored, clip) = match seed {
            LaneSeed::Fresh => return Self::fresh(range, factory),
            LaneSeed::Resume(bytes) => (std::slice::from_ref(bytes), false),
            LaneSeed::Inherit(parents) => (parents.as_slice(), true),
        };
        let mut segments = Vec::new();
        for bytes in stored {
            let snapshot = Self::decode(bytes)?;
            for segment in &snapshot.segments {
                let answers_for = if clip {
                    match intersect(segment.range.unwrap_or(snapshot.range), range) {
                        Some(clipped) => Some(clipped),
                        None => continue,
                    }
                } else {
                    segment.range
                };
                segments.push(Self::restore_segment(
                    answers_for,
                    &segment.operators,
                    factory,
                )?);
            }
        }
        if segments.is_empty() {
            return Self::fresh(range, factory);
        }
        Ok(Self {
            range,
            segments,
            idle: false,
        })
    }

    fn snapshot(&self) -> Vec<u8> {
        let snapshot = LaneSnapshot {
            format: LANE_FORMAT,
            range: self.range,
            segments: self
                .segments
                .iter()
                .map(|segment| SegmentSnapshot {
                    range: segment.range,
                    operators: segment.operators.snapshot(),
                })
                .collect(),
        };
        postcard::to_stdvec(&snapshot)
            .unwrap_or_else(|err| unreachable!("a lane serializes: {err}"))
    }

    /// Index of the segment answering for `vehicle_id` (the first when none does: a partition
    /// key that is not the vehicle id).
    fn segment_of(&self, vehicle_id: &str) -> usize {
        if self.segments.len() == 1 {
            return 0;
        }
        let hash = partition_key_hash(vehicle_id);
        self.segments
            .iter()
            .position(|segment| segment.range.is_none_or(|range| contains(range, hash)))
            .unwrap_or(0)
    }

    fn process(&mut self, batch: DecodedBatch, counters: &PipelineCounters) -> Vec<Output> {
        if !batch.records.is_empty() {
            self.idle = false;
        }
        if batch.stream_idle {
            self.idle = true;
        }
        let mut outputs = Vec::new();
        if self.segments.len() == 1 {
            self.segments[0].emit(|operators| operators.process(batch, counters), &mut outputs);
            return outputs;
        }
        // Several segments: each gets its vehicles' records; dead letters carry no vehicle state.
        let mut parts: Vec<Vec<(u64, telemetry::Record)>> = vec![Vec::new(); self.segments.len()];
        let DecodedBatch {
            stream,
            stream_finished,
            stream_idle,
            partition_finished,
            partition,
            mut records,
            dead_letters,
            read_at_ms,
            record_ids,
            lane: _,
        } = batch;
        for (offset, record) in records.drain(..) {
            let index = self.segment_of(&record.vehicle_id);
            parts[index].push((offset, record));
        }
        outputs.extend(dead_letters.into_iter().map(Output::DeadLetter));
        for (segment, records) in self.segments.iter_mut().zip(parts) {
            if records.is_empty() && !stream_idle && !stream_finished {
                continue;
            }
            let part = DecodedBatch {
                stream: Arc::clone(&stream),
                stream_finished,
                stream_idle,
                partition_finished,
                partition: Arc::clone(&partition),
                records: records.into(),
                dead_letters: Vec::new(),
                read_at_ms,
                record_ids: record_ids.clone(),
                lane: None,
            };
            segment.emit(|operators| operators.process(part, counters), &mut outputs);
        }
        // Segments no record reaches any more follow the lane.
        if let Some(lead) = self.watermark() {
            for segment in &mut self.segments {
                if !segment.operators.has_streams() {
                    segment.follow(lead, &mut outputs);
                }
            }
        }
        outputs
    }

    /// The most advanced segment's watermark.
    fn watermark(&self) -> Option<i64> {
        self.segments
            .iter()
            .filter_map(|segment| segment.operators.watermark())
            .max()
    }

    fn follow(&mut self, watermark: i64, outputs: &mut Vec<Output>) {
        for segment in &mut self.segments {
            segment.follow(watermark, outputs);
        }
    }
}

/// Lanes keyed by stream (one per Kinesis shard read here).
struct PerStream {
    factory: OperatorsFactory,
    /// Id of the next barrier (for new lanes' anomaly models).
    next_barrier: u64,
    lanes: BTreeMap<Arc<str>, Lane>,
    /// Shards read to their end: snapshotted at the next barrier (for their children), then
    /// dropped.
    finished: BTreeMap<Arc<str>, Lane>,
}

enum Mode {
    Single(Box<Operators>),
    PerStream(PerStream),
}

/// The operator stage's state: one lane, or one per stream (see the module documentation).
pub struct Lanes {
    mode: Mode,
    commands: Option<CommandQueue>,
}

impl Lanes {
    /// One lane for every stream.
    pub fn single(operators: Operators) -> Self {
        Self {
            mode: Mode::Single(Box::new(operators)),
            commands: None,
        }
    }

    /// A lane per stream, each built by `factory` (or from a handed-over state).
    pub fn per_stream(factory: OperatorsFactory, next_barrier: u64) -> Self {
        Self {
            mode: Mode::PerStream(PerStream {
                factory,
                next_barrier,
                lanes: BTreeMap::new(),
                finished: BTreeMap::new(),
            }),
            commands: None,
        }
    }

    /// Takes alarm commands from `queue`: per stream, each goes to the lane whose range holds
    /// the vehicle (and waits while no lane here does).
    pub fn with_commands(mut self, queue: CommandQueue) -> Self {
        match self.mode {
            Mode::Single(operators) => {
                self.mode = Mode::Single(Box::new(operators.with_commands(queue)));
            }
            Mode::PerStream(_) => self.commands = Some(queue),
        }
        self
    }

    /// Restores the state a task stored for itself. Per-stream lanes come from the hand-off
    /// store with each lease instead, so their task state is not used.
    pub fn restore(&mut self, bytes: &[u8]) -> Result<(), PipelineError> {
        match &mut self.mode {
            Mode::Single(operators) => operators.restore(bytes),
            Mode::PerStream(_) => {
                tracing::info!("shard state comes from the hand-off store with each lease; the task's own checkpoint state is not used");
                Ok(())
            }
        }
    }

    fn take_commands(&self) -> Vec<QueuedCommand> {
        self.commands
            .as_ref()
            .and_then(|queue| {
                queue
                    .lock()
                    .ok()
                    .map(|mut pending| std::mem::take(&mut *pending))
            })
            .unwrap_or_default()
    }

    /// Processes one decoded batch into outputs.
    pub fn process(
        &mut self,
        mut batch: DecodedBatch,
        counters: &PipelineCounters,
    ) -> Result<Vec<Output>, PipelineError> {
        let commands = self.take_commands();
        let outputs = match &mut self.mode {
            Mode::Single(operators) => operators.process(batch, counters),
            Mode::PerStream(per_stream) => {
                let key = Arc::clone(&batch.stream);
                match batch.lane.take() {
                    Some(LaneEvent::Close) => {
                        per_stream.lanes.remove(&key);
                        tracing::info!(stream = %key, "lease lost: the shard's state is dropped here");
                    }
                    Some(LaneEvent::Open { range, seed }) => {
                        let next = per_stream.next_barrier;
                        let mut make = || (per_stream.factory)(next);
                        let lane = match Lane::open(range, &seed, &mut make) {
                            Ok(lane) => lane,
                            // A lane written by another version (during a rolling deploy) must
                            // not stop every task that takes the shard: it starts over, loudly.
                            Err(PipelineError::IncompatibleState(reason)) => {
                                tracing::error!(stream = %key, %reason, "cannot continue the shard's handed-over state; its open windows start over");
                                Lane::fresh(range, &mut make)?
                            }
                            Err(err) => return Err(err),
                        };
                        per_stream.lanes.insert(Arc::clone(&key), lane);
                    }
                    None => {}
                }
                let finished = batch.partition_finished;
                // A shard's end: its state stops tracking it, so children that inherit the state
                // are not held back by a stream that will never move again.
                batch.stream_finished |= finished;
                let mut outputs = Vec::new();
                if !per_stream.lanes.contains_key(&key) && !batch.records.is_empty() {
                    tracing::warn!(stream = %key, "records of a stream that was not announced; its state starts empty");
                    let next = per_stream.next_barrier;
                    let lane = Lane::fresh((0, u128::MAX), &mut || (per_stream.factory)(next))?;
                    per_stream.lanes.insert(Arc::clone(&key), lane);
                }
                match per_stream.lanes.get_mut(&key) {
                    Some(lane) => outputs = lane.process(batch, counters),
                    // A marker of a stream not read here (a parent read elsewhere).
                    None => outputs.extend(batch.dead_letters.into_iter().map(Output::DeadLetter)),
                }
                if finished {
                    if let Some(lane) = per_stream.lanes.remove(&key) {
                        per_stream.finished.insert(key, lane);
                    }
                }
                per_stream.apply_commands(commands, &mut outputs, self.commands.as_ref());
                per_stream.follow_idle(&mut outputs);
                outputs
            }
        };
        Ok(outputs)
    }

    /// End of input: everything closes.
    pub fn finish(&mut self) -> Vec<Output> {
        match &mut self.mode {
            Mode::Single(operators) => operators.finish(),
            Mode::PerStream(per_stream) => {
                let mut outputs = Vec::new();
                for lane in per_stream.lanes.values_mut() {
                    for segment in &mut lane.segments {
                        segment.emit(Operators::finish, &mut outputs);
                    }
                }
                outputs
            }
        }
    }

    /// Shutdown: partial windows if configured. Per-stream lanes emit nothing: their open
    /// windows continue on the worker that takes each lease next, and a partial result from a
    /// worker that has just lost a lease (before it noticed) would tie in version with the new
    /// owner's result.
    pub fn on_shutdown(&mut self) -> Vec<Output> {
        match &mut self.mode {
            Mode::Single(operators) => operators.on_shutdown(),
            Mode::PerStream(_) => Vec::new(),
        }
    }

    /// Folds `step` over every lane's operators (finished lanes included), without allocating:
    /// it runs for every batch.
    fn fold_operators<T>(&self, init: T, mut step: impl FnMut(T, &Operators) -> T) -> T {
        match &self.mode {
            Mode::Single(operators) => step(init, operators),
            Mode::PerStream(per_stream) => per_stream
                .lanes
                .values()
                .chain(per_stream.finished.values())
                .flat_map(|lane| lane.segments.iter())
                .fold(init, |acc, segment| step(acc, &segment.operators)),
        }
    }

    /// At a checkpoint barrier (anomaly models to save with it).
    pub fn on_barrier(&mut self, checkpoint: u64) {
        match &mut self.mode {
            Mode::Single(operators) => operators.on_barrier(checkpoint),
            Mode::PerStream(per_stream) => {
                per_stream.next_barrier = checkpoint + 1;
                for lane in per_stream
                    .lanes
                    .values_mut()
                    .chain(per_stream.finished.values_mut())
                {
                    for segment in &mut lane.segments {
                        segment.operators.on_barrier(checkpoint);
                    }
                }
            }
        }
    }

    /// Anomaly model counts over every lane.
    pub fn anomaly_counts(&self) -> AnomalyCounts {
        self.fold_operators(AnomalyCounts::default(), |total, operators| {
            let counts = operators.anomaly_counts();
            AnomalyCounts {
                resident: total.resident + counts.resident,
                evicted: total.evicted + counts.evicted,
                reloaded: total.reloaded + counts.reloaded,
            }
        })
    }

    /// Approximate bytes of window state over every lane.
    pub fn state_bytes(&self) -> usize {
        self.fold_operators(0, |total, operators| total + operators.state_bytes())
    }

    /// Open window entries over every lane.
    pub fn open_entries(&self) -> usize {
        self.fold_operators(0, |total, operators| total + operators.open_entries())
    }

    /// The state to store at a barrier: the task's own snapshot (one lane), or each stream's
    /// lane for the hand-off store (finished shards for the last time).
    pub fn snapshot(&mut self) -> (Vec<u8>, LaneStates) {
        match &mut self.mode {
            Mode::Single(operators) => (operators.snapshot(), LaneStates::new()),
            Mode::PerStream(per_stream) => {
                let lanes = per_stream
                    .lanes
                    .iter()
                    .chain(per_stream.finished.iter())
                    .map(|(stream, lane)| (stream.to_string(), Arc::new(lane.snapshot())))
                    .collect();
                per_stream.finished.clear();
                (Vec::new(), lanes)
            }
        }
    }
}

impl PerStream {
    /// Routes alarm commands to the lane answering for their vehicle; the rest wait.
    fn apply_commands(
        &mut self,
        commands: Vec<QueuedCommand>,
        outputs: &mut Vec<Output>,
        queue: Option<&CommandQueue>,
    ) {
        let mut waiting = Vec::new();
        for command in commands {
            let hash = partition_key_hash(&command.vehicle_id);
            let target = self
                .lanes
                .values_mut()
                .filter(|lane| contains(lane.range, hash))
                .find_map(|lane| {
                    let index = lane.segment_of(&command.vehicle_id);
                    lane.segments.get_mut(index)
                });
            match target {
                Some(segment) => segment.operators.apply_queued(vec![command], outputs),
                None => waiting.push(command),
            }
        }
        if let (Some(queue), false) = (queue, waiting.is_empty()) {
            if let Ok(mut pending) = queue.lock() {
                pending.extend(waiting);
            }
        }
    }

    /// Idle lanes follow the most advanced lane, so their last windows close.
    fn follow_idle(&mut self, outputs: &mut Vec<Output>) {
        let Some(lead) = self.lanes.values().filter_map(Lane::watermark).max() else {
            return;
        };
        for lane in self.lanes.values_mut().filter(|lane| lane.idle) {
            lane.follow(lead, outputs);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{OpenWindowsOnShutdown, RollupConfig, TimeConfig};
    use crate::pipeline::output::Rollup;
    use telemetry::{Record, Signal};

    const HALF: u128 = 1 << 127;

    fn factory() -> OperatorsFactory {
        Box::new(|_| {
            let rollup: RollupConfig =
                toml::from_str("name = \"r\"\nwindow = { kind = \"tumbling\", size = \"1m\" }")
                    .expect("rollup");
            let time = TimeConfig {
                max_out_of_orderness: crate::config::DurationText(0),
                ..TimeConfig::default()
            };
            Ok(Operators::new(
                &[rollup],
                &time,
                models::rules::RuleEngine::new(Vec::new()),
                Vec::new(),
                Vec::new(),
                OpenWindowsOnShutdown::EmitPartial,
            )?
            .with_source_idleness())
        })
    }

    /// A vehicle id whose hash lies in the lower (or upper) half of the key space.
    fn vehicle_in(upper: bool) -> String {
        (0..)
            .map(|i| format!("veh-{i}"))
            .find(|id| (partition_key_hash(id) >= HALF) == upper)
            .expect("some id")
    }

    fn record(vehicle: &str, seconds: i64) -> Record {
        Record {
            vehicle_id: vehicle.into(),
            event_time_ms: seconds * 1_000,
            fleet: None,
            attributes: telemetry::Attributes::new(),
            signals: vec![Signal {
                name: "speed".into(),
                value: seconds as f64,
            }],
        }
    }

    fn batch(stream: &str, records: Vec<Record>) -> DecodedBatch {
        DecodedBatch {
            stream: Arc::from(stream),
            stream_finished: false,
            stream_idle: false,
            partition_finished: false,
            partition: Arc::from(stream),
            records: records
                .into_iter()
                .enumerate()
                .map(|(i, r)| (i as u64, r))
                .collect::<Vec<_>>()
                .into(),
            dead_letters: Vec::new(),
            read_at_ms: 0,
            record_ids: Vec::new(),
            lane: None,
        }
    }

    fn open(stream: &str, range: HashRange, seed: LaneSeed) -> DecodedBatch {
        let mut marker = batch(stream, Vec::new());
        marker.lane = Some(LaneEvent::Open { range, seed });
        marker
    }

    fn seconds(vehicle: &str, range: std::ops::Range<i64>) -> Vec<Record> {
        range.map(|s| record(vehicle, s)).collect()
    }

    /// (vehicle, window start, count) of the rollups among `outputs`.
    fn counts(outputs: &[Output]) -> Vec<(String, i64, u64)> {
        outputs
            .iter()
            .filter_map(|output| match output {
                Output::Rollup(Rollup {
                    vehicle_id: Some(vehicle),
                    window_start_ms,
                    result,
                    ..
                }) => Some((vehicle.to_string(), *window_start_ms, result.summary.count)),
                _ => None,
            })
            .collect()
    }

    fn run(lanes: &mut Lanes, batch: DecodedBatch) -> Vec<Output> {
        lanes
            .process(batch, &PipelineCounters::default())
            .expect("process")
    }

    #[test]
    fn a_resumed_lane_continues_where_the_stored_one_stopped() {
        let v = vehicle_in(false);
        let mut first = Lanes::per_stream(factory(), 1);
        run(&mut first, open("s", (0, u128::MAX), LaneSeed::Fresh));
        assert!(counts(&run(&mut first, batch("s", seconds(&v, 0..30)))).is_empty());
        let (task_state, lanes) = first.snapshot();
        assert!(
            task_state.is_empty(),
            "per-stream state goes to the hand-off store"
        );
        let stored = Arc::clone(&lanes["s"]);

        let mut second = Lanes::per_stream(factory(), 1);
        run(
            &mut second,
            open("s", (0, u128::MAX), LaneSeed::Resume(stored)),
        );
        let outputs = run(&mut second, batch("s", seconds(&v, 30..61)));
        assert_eq!(
            counts(&outputs),
            [(v.clone(), 0, 60)],
            "both halves in one window"
        );
    }

    #[test]
    fn split_children_continue_the_parent_and_write_only_their_own_vehicles() {
        let (low, high) = (vehicle_in(false), vehicle_in(true));
        let mut parent = Lanes::per_stream(factory(), 1);
        run(&mut parent, open("p", (0, u128::MAX), LaneSeed::Fresh));
        let mut both = seconds(&low, 0..20);
        both.extend(seconds(&high, 0..20));
        let mut last = batch("p", both);
        last.partition_finished = true;
        assert!(counts(&run(&mut parent, last)).is_empty());
        let (_, lanes) = parent.snapshot();
        let final_state = Arc::clone(&lanes["p"]);
        assert!(
            !parent.snapshot().1.contains_key("p"),
            "a finished lane is snapshotted once, then dropped"
        );

        let mut children = Lanes::per_stream(factory(), 1);
        for (child, range, vehicle) in [
            ("c1", (0, HALF - 1), &low),
            ("c2", (HALF, u128::MAX), &high),
        ] {
            let seed = LaneSeed::Inherit(vec![Arc::clone(&final_state)]);
            run(&mut children, open(child, range, seed));
            let outputs = run(&mut children, batch(child, seconds(vehicle, 20..61)));
            assert_eq!(
                counts(&outputs),
                [(vehicle.to_string(), 0, 60)],
                "{child} writes its own vehicle's whole window, and only that"
            );
        }
        // The children hold copies of the other vehicle's first window too, but never write
        // it: closing everything yields each vehicle's second window once.
        let mut rest = counts(&children.finish());
        rest.sort();
        let mut expected = vec![(low.clone(), 60_000, 1), (high.clone(), 60_000, 1)];
        expected.sort();
        assert_eq!(rest, expected);
    }

    #[test]
    fn a_merged_child_continues_both_parents() {
        let (low, high) = (vehicle_in(false), vehicle_in(true));
        let mut states = Vec::new();
        for (parent, range, vehicle) in [
            ("p1", (0, HALF - 1), &low),
            ("p2", (HALF, u128::MAX), &high),
        ] {
            let mut lanes = Lanes::per_stream(factory(), 1);
            run(&mut lanes, open(parent, range, LaneSeed::Fresh));
            let mut last = batch(parent, seconds(vehicle, 0..10));
            last.partition_finished = true;
            run(&mut lanes, last);
            states.push(Arc::clone(&lanes.snapshot().1[parent]));
        }
        let mut child = Lanes::per_stream(factory(), 1);
        run(
            &mut child,
            open("c", (0, u128::MAX), LaneSeed::Inherit(states)),
        );
        let mut records = seconds(&low, 10..61);
        records.extend(seconds(&high, 10..61));
        records.sort_by_key(|r| r.event_time_ms);
        let mut outputs = counts(&run(&mut child, batch("c", records)));
        outputs.sort();
        let mut expected = vec![(low.clone(), 0, 60), (high.clone(), 0, 60)];
        expected.sort();
        assert_eq!(outputs, expected);
    }

    #[test]
    fn an_unreadable_handed_over_lane_starts_over_instead_of_failing() {
        let v = vehicle_in(false);
        let mut lanes = Lanes::per_stream(factory(), 1);
        let garbage = LaneSeed::Resume(Arc::new(vec![0xff; 7]));
        run(&mut lanes, open("s", (0, u128::MAX), garbage));
        let outputs = run(&mut lanes, batch("s", seconds(&v, 0..61)));
        assert_eq!(counts(&outputs), [(v.clone(), 0, 60)]);
    }

    #[test]
    fn an_idle_lane_follows_the_most_advanced_lane_and_a_lost_one_is_dropped() {
        let v = vehicle_in(false);
        let w = vehicle_in(true);
        let mut lanes = Lanes::per_stream(factory(), 1);
        run(&mut lanes, open("a", (0, HALF - 1), LaneSeed::Fresh));
        run(&mut lanes, open("b", (HALF, u128::MAX), LaneSeed::Fresh));
        run(&mut lanes, open("c", (0, u128::MAX), LaneSeed::Fresh));
        assert!(counts(&run(&mut lanes, batch("a", seconds(&v, 0..30)))).is_empty());
        run(&mut lanes, batch("c", seconds(&v, 0..30)));
        let mut lost = batch("c", Vec::new());
        lost.lane = Some(LaneEvent::Close);
        run(&mut lanes, lost);
        let held: Vec<String> = lanes.snapshot().1.into_keys().collect();
        assert_eq!(held, ["a", "b"], "the lost lane is gone");
        assert!(counts(&run(&mut lanes, batch("b", seconds(&w, 0..200)))).len() >= 3);
        let mut idle = batch("a", Vec::new());
        idle.stream_idle = true;
        assert_eq!(
            counts(&run(&mut lanes, idle)),
            [(v.clone(), 0, 30)],
            "the quiet lane's window closes at the busy lane's watermark"
        );
        assert!(
            lanes.on_shutdown().is_empty(),
            "lanes emit no partial results"
        );
        assert!(!lanes.snapshot().1.contains_key("c"));
    }

    #[test]
    fn ranges_intersect_inclusively() {
        assert_eq!(intersect((0, 10), (10, 20)), Some((10, 10)));
        assert_eq!(intersect((0, 9), (10, 20)), None);
        assert_eq!(intersect((0, u128::MAX), (5, 6)), Some((5, 6)));
        assert!(contains((5, 6), 6));
        assert!(!contains((5, 6), 7));
    }
}
