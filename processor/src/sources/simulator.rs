//! Simulated-fleet source: records from [`edge::FleetSimulator`], encoded as wide JSON so they
//! take the same decode path as real input. Deterministic, so a restart regenerates and skips
//! the records already committed.

use std::sync::Arc;
use std::time::{Duration, Instant};

use edge::FleetSimulator;
use telemetry::encode::write_wide_json;
use telemetry::{Frame, FrameKind};

use super::{Source, SourceBatch, SourceError};
use crate::config::SimulatorSourceConfig;
use crate::position::{Offset, Position};

/// Produces the simulated fleet's records.
pub struct SimulatorSource {
    config: SimulatorSourceConfig,
    simulator: FleetSimulator,
    partition: Arc<str>,
    produced: u64,
    started: Option<(Instant, i64)>,
    peeked: Option<telemetry::Record>,
    finished: bool,
}

/// Longest a realtime `next_batch` waits before returning (possibly empty).
const MAX_WAIT: Duration = Duration::from_millis(500);

impl SimulatorSource {
    /// A source for the configured fleet.
    pub fn new(config: SimulatorSourceConfig) -> Self {
        let spec = &config.spec;
        let partition = format!(
            "simulator:vehicles={},seconds={},hz={},seed={},late={},start={}",
            spec.vehicles, spec.seconds, spec.hz, spec.seed, spec.late_fraction, spec.start_ms
        );
        Self {
            simulator: FleetSimulator::new(config.spec.clone()),
            config,
            partition: Arc::from(partition),
            produced: 0,
            started: None,
            peeked: None,
            finished: false,
        }
    }
}

impl SimulatorSource {
    fn encode(&mut self, record: telemetry::Record, frames: &mut Vec<Frame>) {
        let mut bytes = Vec::with_capacity(320);
        write_wide_json(&record, &mut bytes);
        frames.push(Frame {
            start: self.produced,
            end: self.produced + 1,
            kind: FrameKind::Value,
            bytes,
        });
        self.produced += 1;
    }
}

impl Source for SimulatorSource {
    fn describe(&self) -> String {
        let spec = &self.config.spec;
        format!(
            "simulated fleet of {} vehicles, {} s at {} Hz (seed {})",
            spec.vehicles, spec.seconds, spec.hz, spec.seed
        )
    }

    fn size_hint(&self) -> Option<u64> {
        Some(self.config.spec.total_records())
    }

    async fn open(&mut self, committed: &[Position]) -> Result<(), SourceError> {
        let resume = committed
            .iter()
            .find(|position| position.partition == *self.partition)
            .map(|position| &position.offset);
        match resume {
            Some(Offset::Finished) => self.finished = true,
            Some(Offset::Records(skip)) => {
                for _ in 0..*skip {
                    if self.simulator.next().is_none() {
                        break;
                    }
                }
                self.produced = *skip;
            }
            _ => {}
        }
        Ok(())
    }

    async fn next_batch(&mut self) -> Result<Option<SourceBatch>, SourceError> {
        if self.finished {
            return Ok(None);
        }
        let mut frames = Vec::with_capacity(self.config.batch_records);
        for _ in 0..self.config.batch_records {
            let Some(record) = self.peeked.take().or_else(|| self.simulator.next()) else {
                self.finished = true;
                break;
            };
            if self.config.realtime {
                let (wall, first) = *self
                    .started
                    .get_or_insert((Instant::now(), record.event_time_ms));
                let due =
                    wall + Duration::from_millis((record.event_time_ms - first).max(0) as u64);
                let now = Instant::now();
                if due > now {
                    // Keep the record before awaiting, so a cancelled call loses nothing.
                    self.peeked = Some(record);
                    if frames.is_empty() {
                        tokio::time::sleep((due - now).min(MAX_WAIT)).await;
                    }
                    if due > Instant::now() {
                        break;
                    }
                    let Some(record) = self.peeked.take() else {
                        break;
                    };
                    self.encode(record, &mut frames);
                    continue;
                }
            }
            self.encode(record, &mut frames);
        }
        Ok(Some(SourceBatch {
            stream_finished: self.finished,
            progress_units: frames.len() as u64,
            frames,
            ..SourceBatch::empty(Arc::clone(&self.partition))
                .ending_at(self.finished, Offset::Records(self.produced))
        }))
    }
}
