//! Vectors of records that were used up, kept for the next records a decoder builds. A busy
//! pipeline decodes millions of records a second on one thread and drops them on another; built
//! from fresh vectors, every record would cost two allocations, a free on the wrong thread, and
//! in time fresh pages from the kernel. Recycled vectors keep their room and their thread.
//!
//! They also keep their contents: emptying them would read every old entry, from memory the
//! consumer's core last touched, only for the builder to write the same lines again. The
//! builder overwrites entries in place instead (an old signal of the same name is kept as is)
//! and cuts the vector to its record's length when it finishes.

use std::collections::VecDeque;

use crate::attributes::AttributeStorage;
use crate::record::{Record, Signal};

/// Spare record vectors beyond this many are freed: enough for the records in flight between a
/// decoder and its consumers, little enough to stay a few megabytes.
const MAX_SPARE_RECORDS: usize = 1 << 14;

/// A signal vector with room for more than this many is freed, not kept: one unusually wide
/// record must not leave its memory in every spare it passes through.
const MAX_SPARE_SIGNALS: usize = 64;

/// The same bound for attributes, in bytes: 32 attribute pairs (an object's text is bounded by
/// the same room).
const MAX_SPARE_ATTRIBUTE_BYTES: usize = 32 * PAIR_BYTES;

/// Bytes of one attribute pair.
const PAIR_BYTES: usize =
    std::mem::size_of::<(compact_str::CompactString, compact_str::CompactString)>();

/// Signal and attribute vectors of records that were handed back, reused first in first out:
/// a batch's records then lie in memory in the order of the batch before, an ascending stream
/// the consumer's prefetchers follow (last in first out measured slower end to end).
#[derive(Default)]
pub(crate) struct RecordSpares {
    signals: VecDeque<Vec<Signal>>,
    attributes: VecDeque<AttributeStorage>,
}

impl RecordSpares {
    /// Keeps `record`'s vectors, contents and all, for a later record while there is room
    /// (vectors of an unusually wide record are freed).
    pub(crate) fn recycle(&mut self, record: Record) {
        let Record {
            signals,
            attributes,
            ..
        } = record;
        if (1..=MAX_SPARE_SIGNALS).contains(&signals.capacity())
            && self.signals.len() < MAX_SPARE_RECORDS
        {
            self.signals.push_back(signals);
        }
        if (1..=MAX_SPARE_ATTRIBUTE_BYTES).contains(&attributes.capacity_bytes())
            && self.attributes.len() < MAX_SPARE_RECORDS
        {
            self.attributes.push_back(attributes.into_storage());
        }
    }

    /// A signal vector to overwrite from its start (stale entries after it are the builder's
    /// to replace or cut), or a new one when no spare is left.
    pub(crate) fn signals(&mut self) -> Vec<Signal> {
        self.signals.pop_front().unwrap_or_default()
    }

    /// Attribute storage to overwrite, as with [`Self::signals`]: a pair vector or an object
    /// text buffer.
    pub(crate) fn attributes(&mut self) -> AttributeStorage {
        self.attributes
            .pop_front()
            .unwrap_or(AttributeStorage::Pairs(Vec::new()))
    }

    /// How many records' worth of vectors are kept.
    pub(crate) fn len(&self) -> usize {
        self.signals.len().max(self.attributes.len())
    }
}

/// A copy starts with no spares: they are worth nothing to another thread.
impl Clone for RecordSpares {
    fn clone(&self) -> Self {
        Self::default()
    }
}

impl std::fmt::Debug for RecordSpares {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "RecordSpares({})", self.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(signals: usize) -> Record {
        Record {
            vehicle_id: "veh-1".into(),
            event_time_ms: 0,
            fleet: None,
            attributes: vec![("model".into(), "sedan".into())].into(),
            signals: (0..signals)
                .map(|i| Signal {
                    name: format!("s{i}").into(),
                    value: i as f64,
                })
                .collect(),
        }
    }

    #[test]
    fn recycled_vectors_come_back_with_their_room_and_the_stash_is_bounded() {
        let mut spares = RecordSpares::default();
        let used = record(8);
        let address = used.signals.as_ptr();
        spares.recycle(used);
        let signals = spares.signals();
        assert_eq!(
            signals.len(),
            8,
            "contents are left for the builder to overwrite"
        );
        assert_eq!(signals.as_ptr(), address);
        assert!(matches!(spares.attributes(), AttributeStorage::Pairs(pairs) if pairs.len() == 1));
        assert_eq!(spares.signals().capacity(), 0, "none left: a fresh vector");
        for _ in 0..MAX_SPARE_RECORDS + 10 {
            spares.recycle(record(1));
        }
        assert_eq!(spares.len(), MAX_SPARE_RECORDS);
        assert_eq!(spares.clone().len(), 0);
    }

    #[test]
    fn the_vectors_of_an_unusually_wide_record_are_freed_not_kept() {
        let mut spares = RecordSpares::default();
        let mut wide = record(MAX_SPARE_SIGNALS + 1);
        wide.attributes = (0..=MAX_SPARE_ATTRIBUTE_BYTES / PAIR_BYTES)
            .map(|i| (format!("a{i}").into(), "x".into()))
            .collect::<Vec<_>>()
            .into();
        spares.recycle(wide);
        assert_eq!(spares.len(), 0);
        spares.recycle(record(MAX_SPARE_SIGNALS));
        assert_eq!(spares.signals().len(), MAX_SPARE_SIGNALS);
    }
}
