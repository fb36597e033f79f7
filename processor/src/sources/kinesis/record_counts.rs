//! How many records of each shard were committed since its last lease-checkpoint write, for
//! `checkpoint_records`: batches handed to the pipeline are counted with their end positions,
//! and a committed position is turned back into the count of records up to it.

use std::collections::{BTreeMap, VecDeque};
use std::sync::{Arc, Mutex};

use crate::position::Offset;

#[derive(Debug, Default)]
struct ShardCount {
    /// Records handed out so far.
    handed_out: u64,
    /// End positions of batches not yet committed, with the count up to each.
    pending: VecDeque<(Offset, u64)>,
    /// Count up to the last committed position seen.
    committed: u64,
    /// Count up to the position of the last checkpoint write.
    written: u64,
}

/// Shared between the source (which hands batches out) and the coordinator (which commits).
#[derive(Debug, Clone, Default)]
pub struct RecordCounts(Arc<Mutex<BTreeMap<String, ShardCount>>>);

impl RecordCounts {
    /// A batch of `records` records ending at `end` was handed to the pipeline.
    pub fn handed_out(&self, shard: &str, end: &Offset, records: u64) {
        if let Ok(mut shards) = self.0.lock() {
            let count = shards.entry(shard.to_owned()).or_default();
            count.handed_out += records;
            let total = count.handed_out;
            count.pending.push_back((end.clone(), total));
        }
    }

    /// `end` of `shard` is committed; returns the records committed since the last write.
    pub fn committed(&self, shard: &str, end: &Offset) -> u64 {
        let Ok(mut shards) = self.0.lock() else {
            return 0;
        };
        let Some(count) = shards.get_mut(shard) else {
            return 0;
        };
        if let Some(index) = count.pending.iter().position(|(offset, _)| offset == end) {
            for _ in 0..=index {
                if let Some((_, total)) = count.pending.pop_front() {
                    count.committed = total;
                }
            }
        }
        count.committed - count.written
    }

    /// The checkpoint of `shard` was written at its last committed position.
    pub fn written(&self, shard: &str) {
        if let Ok(mut shards) = self.0.lock() {
            if let Some(count) = shards.get_mut(shard) {
                count.written = count.committed;
            }
        }
    }

    /// Forgets a shard this worker no longer reads.
    pub fn forget(&self, shard: &str) {
        if let Ok(mut shards) = self.0.lock() {
            shards.remove(shard);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(n: u64) -> Offset {
        Offset::Sequence {
            sequence_number: n.to_string(),
            sub_sequence_number: 0,
        }
    }

    #[test]
    fn only_committed_records_count_and_a_write_resets_them() {
        let counts = RecordCounts::default();
        counts.handed_out("s", &at(1), 300);
        counts.handed_out("s", &at(2), 300);
        counts.handed_out("s", &at(3), 300);
        assert_eq!(
            counts.committed("s", &at(1)),
            300,
            "batch 2 and 3 are not committed"
        );
        counts.written("s");
        assert_eq!(counts.committed("s", &at(3)), 600);
        counts.written("s");
        assert_eq!(counts.committed("s", &at(3)), 0);
        assert_eq!(counts.committed("other", &at(3)), 0);
    }
}
