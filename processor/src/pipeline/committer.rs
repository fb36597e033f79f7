//! The committer: waits until every sink has acknowledged a checkpoint, then stores positions,
//! operator state, sink tokens and the model snapshots that belong to it in one transaction and
//! hands the positions to the source.

use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;

use tokio::sync::{mpsc, watch};

use super::counters::PipelineCounters;
use super::PipelineError;
use crate::position::Position;
use crate::sinks::runner::SinkAck;
use crate::sources::LaneStates;
use crate::state::{Checkpoint, StateStore, UnsavedModels};

/// A checkpoint whose state is snapshotted and whose outputs are on their way to the sinks.
#[derive(Debug, Clone, PartialEq)]
pub struct PendingCheckpoint {
    /// Checkpoint number.
    pub id: u64,
    /// Positions the checkpoint covers.
    pub positions: Vec<Position>,
    /// Operator snapshot at the barrier.
    pub operator_state: Vec<u8>,
    /// Per-stream lane states at the barrier (Kinesis with `handoff`; empty otherwise).
    pub lanes: LaneStates,
}

/// What the source learns at a commit: positions whose outputs are durable, and the lane states
/// that go with them.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Committed {
    /// Cumulative positions.
    pub positions: Vec<Position>,
    /// Lane states at those positions.
    pub lanes: LaneStates,
}

/// Commits checkpoints in order as their acknowledgements complete.
pub async fn run_committer<S: StateStore>(
    mut store: S,
    sink_names: Vec<&'static str>,
    mut pending_inbox: mpsc::Receiver<PendingCheckpoint>,
    mut acks: mpsc::Receiver<SinkAck>,
    commits: watch::Sender<Committed>,
    unsaved_models: UnsavedModels,
    counters: Arc<PipelineCounters>,
) -> Result<S, PipelineError> {
    let mut waiting: VecDeque<PendingCheckpoint> = VecDeque::new();
    let mut received: BTreeMap<u64, BTreeMap<&'static str, Option<u64>>> = BTreeMap::new();
    let mut pending_open = true;
    let mut acks_open = true;
    while pending_open || !waiting.is_empty() {
        tokio::select! {
            pending = pending_inbox.recv(), if pending_open => match pending {
                Some(pending) => waiting.push_back(pending),
                None => pending_open = false,
            },
            ack = acks.recv(), if acks_open => match ack {
                Some(ack) => {
                    received.entry(ack.checkpoint_id).or_default().insert(ack.sink, ack.token);
                }
                None => acks_open = false,
            },
            else => break,
        }
        while let Some(front) = waiting.front() {
            let complete = received
                .get(&front.id)
                .is_some_and(|tokens| sink_names.iter().all(|name| tokens.contains_key(name)));
            if !complete {
                break;
            }
            let Some(pending) = waiting.pop_front() else {
                break;
            };
            let tokens = received.remove(&pending.id).unwrap_or_default();
            let checkpoint = Checkpoint {
                id: pending.id,
                created_at_ms: super::wall_clock_ms(),
                positions: pending.positions,
                operator_state: pending.operator_state,
                sink_tokens: tokens
                    .into_iter()
                    .map(|(name, token)| (name.to_owned(), token))
                    .collect(),
                models: unsaved_models.through(pending.id),
            };
            tokio::task::block_in_place(|| store.save(&checkpoint))?;
            // Only now may the operator stage find these models in the store instead.
            unsaved_models.forget_through(checkpoint.id);
            PipelineCounters::add(&counters.checkpoints, 1);
            tracing::debug!(
                checkpoint = checkpoint.id,
                state_bytes = checkpoint.operator_state.len(),
                "checkpoint committed"
            );
            // Only the newest positions matter (they are cumulative), so a watch channel never
            // blocks the committer; the source may already be gone, the checkpoint is stored.
            commits.send_replace(Committed {
                positions: checkpoint.positions,
                lanes: pending.lanes,
            });
        }
        if !acks_open && !waiting.is_empty() {
            return Err(PipelineError::StageStopped(
                "a sink (before acknowledging a checkpoint)",
            ));
        }
    }
    Ok(store)
}
