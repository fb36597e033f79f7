//! How far a lease's checkpoint is behind its shard's tip, for `fleetstream leases`: one
//! `GetRecords` of at most one record from the checkpoint, whose `MillisBehindLatest` is the lag.

use aws_sdk_kinesis::types::ShardIteratorType;
use aws_sdk_kinesis::Client;

use super::calls::{classify, CallError};
use super::lease::LeaseCheckpoint;

/// Milliseconds between the record after `checkpoint` and the tip of `shard` (0: caught up),
/// or `None` for a finished shard.
pub async fn millis_behind(
    client: &Client,
    stream: &str,
    shard: &str,
    checkpoint: &LeaseCheckpoint,
) -> Result<Option<i64>, CallError> {
    let request = client
        .get_shard_iterator()
        .stream_name(stream)
        .shard_id(shard);
    let request = match checkpoint {
        LeaseCheckpoint::ShardEnd => return Ok(None),
        LeaseCheckpoint::Sequence {
            sequence_number, ..
        } => request
            .shard_iterator_type(ShardIteratorType::AtSequenceNumber)
            .starting_sequence_number(sequence_number),
        LeaseCheckpoint::Latest => request.shard_iterator_type(ShardIteratorType::Latest),
        LeaseCheckpoint::TrimHorizon | LeaseCheckpoint::AtTimestamp => {
            request.shard_iterator_type(ShardIteratorType::TrimHorizon)
        }
    };
    let iterator = request.send().await.map_err(classify)?;
    let Some(iterator) = iterator.shard_iterator() else {
        return Ok(None);
    };
    let records = client
        .get_records()
        .shard_iterator(iterator)
        .limit(1)
        .send()
        .await
        .map_err(classify)?;
    Ok(records.millis_behind_latest())
}
