//! The source task: reads batches, injects checkpoint barriers, reacts to shutdown, and passes
//! committed positions back to the source.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use tokio::sync::{mpsc, watch};
use tokio_util::sync::CancellationToken;

use super::committer::Committed;
use super::messages::{Barrier, StageMessage};
use super::PipelineError;
use crate::position::{Offset, Position};
use crate::sources::{Source, SourceBatch};

/// How the run ended at the source.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SourceEnd {
    /// The input was exhausted.
    EndOfInput,
    /// A shutdown signal stopped reading.
    Shutdown,
}

/// Runs until end of input or shutdown, then drains commit requests until the committer ends.
#[allow(clippy::too_many_arguments)]
pub async fn run_source<S: Source>(
    mut source: S,
    restored: Vec<Position>,
    first_barrier_id: u64,
    checkpoint_interval: Duration,
    outbox: mpsc::Sender<StageMessage<SourceBatch>>,
    mut commits: watch::Receiver<Committed>,
    shutdown: CancellationToken,
) -> Result<SourceEnd, PipelineError> {
    let mut positions: BTreeMap<String, Offset> = restored
        .into_iter()
        .map(|position| (position.partition, position.offset))
        .collect();
    let mut next_barrier_id = first_barrier_id;
    let mut last_barrier = Instant::now();
    let barrier = |id: &mut u64, positions: &BTreeMap<String, Offset>| {
        let message = StageMessage::Barrier(Barrier {
            id: *id,
            positions: positions
                .iter()
                .map(|(partition, offset)| Position {
                    partition: partition.clone(),
                    offset: offset.clone(),
                })
                .collect(),
        });
        *id += 1;
        message
    };
    let send = |message| {
        let outbox = outbox.clone();
        async move {
            outbox
                .send(message)
                .await
                .map_err(|_| PipelineError::StageStopped("the decode stage"))
        }
    };
    let end = loop {
        tokio::select! {
            biased;
            () = shutdown.cancelled() => {
                tracing::info!("shutdown requested: stopping reads");
                send(StageMessage::Shutdown).await?;
                send(barrier(&mut next_barrier_id, &positions)).await?;
                break SourceEnd::Shutdown;
            }
            batch = source.next_batch() => match batch? {
                Some(batch) => {
                    if let Some(end) = &batch.end {
                        positions.insert(batch.partition.to_string(), end.clone());
                    }
                    send(StageMessage::Data(batch)).await?;
                    if last_barrier.elapsed() >= checkpoint_interval {
                        send(barrier(&mut next_barrier_id, &positions)).await?;
                        last_barrier = Instant::now();
                    }
                    // Commits are applied between batches so `next_batch` is never cancelled
                    // except at shutdown.
                    apply_commit(&mut source, &mut commits).await?;
                }
                None => {
                    apply_commit(&mut source, &mut commits).await?;
                    send(StageMessage::EndOfInput).await?;
                    send(barrier(&mut next_barrier_id, &positions)).await?;
                    break SourceEnd::EndOfInput;
                }
            },
        }
    };
    drop(outbox);
    // `changed` marks the newest value seen: deliver it as is.
    while commits.changed().await.is_ok() {
        let committed = commits.borrow_and_update().clone();
        deliver(&mut source, &committed).await?;
    }
    source.close().await?;
    Ok(end)
}

/// Passes the newest committed positions (if new) to the source.
async fn apply_commit<S: Source>(
    source: &mut S,
    commits: &mut watch::Receiver<Committed>,
) -> Result<(), PipelineError> {
    if commits.has_changed().unwrap_or(false) {
        let committed = commits.borrow_and_update().clone();
        deliver(source, &committed).await?;
    }
    Ok(())
}

/// Hands a commit to the source.
async fn deliver<S: Source>(source: &mut S, committed: &Committed) -> Result<(), PipelineError> {
    source
        .commit(&committed.positions, &committed.lanes)
        .await?;
    Ok(())
}
