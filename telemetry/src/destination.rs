//! Where a decoder puts the records of a payload: outcomes handed to a callback one by one
//! ([`EachOutcome`]), or records written over the records of a vector its consumer handed back
//! ([`Slots`]). The second is the pipeline's: a record is large, and writing it in place, field
//! by field, spares the copies of building it, handing it over and pushing it into a batch.

use crate::builder::RecordBuilder;
use crate::decoder::{rejection, Decoder, Outcome, Place, RejectedRecord};
use crate::error::FieldIssue;
use crate::options::DecodeOptions;
use crate::record::Record;
use crate::spares::RecordSpares;

/// What [`Decoder::decode_segment_into`] reports besides the records it writes, in input order.
#[derive(Debug, Clone, PartialEq)]
pub enum SegmentNote {
    /// A record that could not be decoded; nothing was written for it.
    Rejected(Box<RejectedRecord>),
    /// The record written at `records[position]` lost the fields in `issues` (it goes on
    /// without them); `raw` is its text, for the dead letter.
    FieldsRejected {
        /// Its place in the records vector.
        position: usize,
        /// The fields dropped and why.
        issues: Vec<FieldIssue>,
        /// The record's raw bytes.
        raw: Vec<u8>,
    },
}

/// Where [`Decoder`] puts what it decodes.
pub(crate) trait Destination {
    /// A builder for the next wide record, over vectors worth reusing.
    fn builder<'o>(&mut self, options: &'o DecodeOptions) -> RecordBuilder<'o>;

    /// Takes the record of the filled builder of the wide record in `bytes`, found at `place`
    /// (the builder is passed by reference: it is large, and a move copies it).
    fn parsed(
        &mut self,
        decoder: &Decoder,
        builder: &mut RecordBuilder<'_>,
        bytes: &[u8],
        place: Place,
    );

    /// Takes an outcome of the general path (the frame scanner and serde).
    fn outcome(&mut self, outcome: Outcome);
}

/// Hands every outcome to `each`; records are built in the vectors of `spares`.
pub(crate) struct EachOutcome<'s, F> {
    pub(crate) spares: &'s mut RecordSpares,
    pub(crate) each: F,
}

impl<F: FnMut(Outcome)> Destination for EachOutcome<'_, F> {
    fn builder<'o>(&mut self, options: &'o DecodeOptions) -> RecordBuilder<'o> {
        RecordBuilder::reusing(options, self.spares)
    }

    #[inline]
    fn parsed(
        &mut self,
        decoder: &Decoder,
        builder: &mut RecordBuilder<'_>,
        bytes: &[u8],
        place: Place,
    ) {
        // Built where it is handed over: an outcome is large, and every move copies it.
        (self.each)(decoder.finish_object(builder, Ok(()), bytes, place.offset, place.index));
    }

    fn outcome(&mut self, outcome: Outcome) {
        (self.each)(outcome);
    }
}

/// Writes records over the old records of `records`: the first `filled` are kept or new, the
/// rest are old ones still to overwrite. [`Self::finish`] moves the old ones left into
/// `spares`.
pub(crate) struct Slots<'r, F> {
    records: &'r mut Vec<(u64, Record)>,
    filled: usize,
    spares: &'r mut RecordSpares,
    note: F,
}

impl<'r, F: FnMut(SegmentNote)> Slots<'r, F> {
    /// Slots over the records of `records` after the first `kept` (at most all of them).
    pub(crate) fn over(
        records: &'r mut Vec<(u64, Record)>,
        kept: usize,
        spares: &'r mut RecordSpares,
        note: F,
    ) -> Self {
        Slots {
            filled: kept.min(records.len()),
            records,
            spares,
            note,
        }
    }

    /// The slot for the next record: the next old record, or a new empty one.
    fn next_slot(&mut self) -> &mut (u64, Record) {
        if self.filled == self.records.len() {
            self.records.push((0, Record::empty()));
        }
        &mut self.records[self.filled]
    }

    /// Counts the slot just written as this piece's, with `offset`, and reports lost fields.
    fn keep(&mut self, offset: u64, issues: Vec<FieldIssue>, raw: impl FnOnce() -> Vec<u8>) {
        let position = self.filled;
        self.records[position].0 = offset;
        self.filled += 1;
        if !issues.is_empty() {
            (self.note)(SegmentNote::FieldsRejected {
                position,
                issues,
                raw: raw(),
            });
        }
    }

    /// Leaves exactly the new records in the vector; the vectors of the old ones left go to the
    /// spares.
    pub(crate) fn finish(self) {
        for (_, record) in self.records.drain(self.filled..) {
            self.spares.recycle(record);
        }
    }
}

impl<F: FnMut(SegmentNote)> Destination for Slots<'_, F> {
    fn builder<'o>(&mut self, options: &'o DecodeOptions) -> RecordBuilder<'o> {
        match self.records.get_mut(self.filled) {
            Some((_, old)) => RecordBuilder::over_record(options, old),
            None => RecordBuilder::reusing(options, self.spares),
        }
    }

    #[inline]
    fn parsed(
        &mut self,
        decoder: &Decoder,
        builder: &mut RecordBuilder<'_>,
        bytes: &[u8],
        place: Place,
    ) {
        let (vehicle_field, time_field) = decoder.identity_fields();
        let (_, slot) = self.next_slot();
        match builder.finish_into(vehicle_field, time_field, slot) {
            Ok(issues) => self.keep(place.offset, issues, || bytes.to_vec()),
            Err((kind, vehicle_id)) => (self.note)(SegmentNote::Rejected(rejection(
                kind,
                vehicle_id,
                bytes,
                place.offset,
                place.index,
            ))),
        }
    }

    fn outcome(&mut self, outcome: Outcome) {
        match outcome {
            Ok(decoded) => {
                let slot = self.next_slot();
                let old = std::mem::replace(&mut slot.1, decoded.decoded.record);
                self.spares.recycle(old);
                self.keep(decoded.offset, decoded.decoded.issues, || {
                    decoded.raw.unwrap_or_default()
                });
            }
            Err(rejected) => (self.note)(SegmentNote::Rejected(rejected)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::frame::SegmentEnd;

    fn line(vehicle: &str, signals: &str) -> String {
        format!(
            r#"{{"vehicle_id":"{vehicle}","fleet":"f","ts":1767225600000,"attributes":{{"model":"van"}},"signals":{{{signals}}}}}"#
        ) + "\n"
    }

    #[test]
    fn records_are_written_over_the_old_ones_after_the_kept_ones_and_leftovers_are_reused() {
        let mut decoder = Decoder::new(crate::options::Format::Wide, DecodeOptions::default());
        let first = [
            line("a", r#""x":1,"y":2"#),
            line("b", r#""x":3"#),
            line("c", r#""x":4"#),
        ]
        .concat();
        let mut records = Vec::new();
        decoder.decode_segment_into(
            first.as_bytes(),
            0,
            SegmentEnd::InputEnds,
            &mut records,
            0,
            |note| panic!("{note:?}"),
        );
        let names: Vec<&str> = records.iter().map(|(_, r)| r.vehicle_id.as_str()).collect();
        assert_eq!(names, ["a", "b", "c"]);
        let kept_signals = records[0].1.signals.as_ptr();
        let reused_signals = records[1].1.signals.as_ptr();
        let leftover_signals = records[2].1.signals.as_ptr();

        // Keep the first record; one new record goes over the second; the third is left over.
        let second = line("d", r#""z":5"#);
        decoder.decode_segment_into(
            second.as_bytes(),
            100,
            SegmentEnd::InputEnds,
            &mut records,
            1,
            |note| panic!("{note:?}"),
        );
        assert_eq!(records.len(), 2);
        assert_eq!(records[0].1.vehicle_id, "a");
        assert_eq!(
            records[0].1.signals.as_ptr(),
            kept_signals,
            "kept as it was"
        );
        assert_eq!(records[1].0, 100);
        assert_eq!(records[1].1.vehicle_id, "d");
        assert_eq!(records[1].1.signals, [crate::record::Signal::new("z", 5.0)]);
        assert_eq!(
            records[1].1.signals.as_ptr(),
            reused_signals,
            "written in place"
        );

        // The left-over record's vectors serve the next record with no old one under it.
        let third = line("e", r#""w":6"#);
        decoder.decode_segment_into(
            third.as_bytes(),
            200,
            SegmentEnd::InputEnds,
            &mut records,
            2,
            |note| panic!("{note:?}"),
        );
        assert_eq!(records[2].1.vehicle_id, "e");
        assert_eq!(records[2].1.signals.as_ptr(), leftover_signals);
    }

    #[test]
    fn notes_name_the_rejected_records_and_the_position_of_records_that_lost_fields() {
        let mut decoder = Decoder::new(crate::options::Format::Wide, DecodeOptions::default());
        let text = [
            line("a", r#""x":1"#),
            "{\"vehicle_id\":\"broken\n".to_owned(),
            line("b", r#""x":2,"label":"text""#),
        ]
        .concat();
        let mut records = vec![(7, Record::empty()); 5];
        let mut notes = Vec::new();
        decoder.decode_segment_into(
            text.as_bytes(),
            0,
            SegmentEnd::InputEnds,
            &mut records,
            0,
            |note| notes.push(note),
        );
        let names: Vec<&str> = records.iter().map(|(_, r)| r.vehicle_id.as_str()).collect();
        assert_eq!(names, ["a", "b"]);
        assert_eq!(notes.len(), 2, "{notes:?}");
        assert!(
            matches!(&notes[0], SegmentNote::Rejected(rejected) if rejected.raw.starts_with(b"{\"vehicle_id\":\"broken"))
        );
        match &notes[1] {
            SegmentNote::FieldsRejected {
                position,
                issues,
                raw,
            } => {
                assert_eq!(*position, 1);
                assert_eq!(issues[0].field, "signals.label");
                assert_eq!(
                    raw,
                    line("b", r#""x":2,"label":"text""#).trim_end().as_bytes()
                );
            }
            other => panic!("{other:?}"),
        }
    }
}
