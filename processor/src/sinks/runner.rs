//! Runs one sink on its own blocking thread: outputs in, acknowledgements of barriers out.

use std::sync::Arc;

use tokio::sync::mpsc;

use super::{Sink, SinkError};
use crate::pipeline::output::Output;

/// What a sink receives.
#[derive(Debug, Clone)]
pub enum SinkMessage {
    /// Outputs to write.
    Outputs(Arc<Vec<Output>>),
    /// Make everything so far durable and acknowledge checkpoint `id`.
    Barrier(u64),
}

/// A sink's acknowledgement that everything before barrier `checkpoint_id` is durable.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SinkAck {
    /// Sink name.
    pub sink: &'static str,
    /// Checkpoint acknowledged.
    pub checkpoint_id: u64,
    /// Resume token to store with the checkpoint.
    pub token: Option<u64>,
}

/// Receives messages until the channel closes; stops at the first error.
pub fn run_sink(
    mut sink: Box<dyn Sink>,
    mut inbox: mpsc::Receiver<SinkMessage>,
    acks: mpsc::Sender<SinkAck>,
) -> Result<(), SinkError> {
    while let Some(message) = inbox.blocking_recv() {
        match message {
            SinkMessage::Outputs(outputs) => sink.write(&outputs)?,
            SinkMessage::Barrier(checkpoint_id) => {
                let token = sink.flush()?;
                let ack = SinkAck {
                    sink: sink.name(),
                    checkpoint_id,
                    token,
                };
                if acks.blocking_send(ack).is_err() {
                    break;
                }
            }
        }
    }
    sink.flush()?;
    Ok(())
}
