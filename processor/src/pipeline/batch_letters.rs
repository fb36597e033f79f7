//! The dead letters of one decoded batch: rejected records, records that lost fields, records
//! the source set aside and input problems, each counted and located in its partition.

use telemetry::{FieldIssue, Record, RejectedRecord};

use super::counters::PipelineCounters;
use super::output::{DeadLetter, DeadLetterKind};
use crate::position::RecordLocation;
use crate::sources::{PartitionProblem, SkippedRecord};

/// Rejections logged at `warn` before the rest go to `debug` (all are dead-lettered and counted).
const LOGGED_REJECTIONS: u64 = 10;

/// Collects the dead letters of a batch of `partition`, in the order they are found.
pub(super) struct BatchLetters<'b> {
    partition: &'b str,
    /// Ids of records addressed by index rather than offset (Kinesis), by index.
    record_ids: &'b [String],
    counters: &'b PipelineCounters,
    /// Rejections logged so far by this decode worker.
    logged: &'b mut u64,
    letters: Vec<DeadLetter>,
}

impl<'b> BatchLetters<'b> {
    /// No letters yet.
    pub(super) fn new(
        partition: &'b str,
        record_ids: &'b [String],
        counters: &'b PipelineCounters,
        logged: &'b mut u64,
    ) -> Self {
        Self {
            partition,
            record_ids,
            counters,
            logged,
            letters: Vec::new(),
        }
    }

    /// Where the record at `offset` of the partition is.
    fn location(&self, offset: u64) -> RecordLocation {
        RecordLocation {
            partition: self.partition.to_owned(),
            offset,
            record_id: usize::try_from(offset)
                .ok()
                .and_then(|index| self.record_ids.get(index))
                .cloned(),
        }
    }

    /// A record that could not be decoded.
    pub(super) fn rejected(&mut self, rejected: RejectedRecord) {
        PipelineCounters::add(&self.counters.records_rejected, 1);
        let at = self.location(rejected.error.offset);
        let reason = rejected.error.kind.to_string();
        if *self.logged < LOGGED_REJECTIONS {
            tracing::warn!(position = %at, vehicle = ?rejected.error.vehicle_id, %reason, "record rejected");
            *self.logged += 1;
        } else {
            tracing::debug!(position = %at, %reason, "record rejected");
        }
        self.letters.push(DeadLetter {
            location: at,
            kind: DeadLetterKind::Rejected,
            reason,
            fields: Vec::new(),
            vehicle_id: rejected.error.vehicle_id,
            raw: rejected.raw,
        });
    }

    /// `record`, found at `offset`, goes on without the fields in `issues`; `raw` is its text.
    pub(super) fn fields_rejected(
        &mut self,
        offset: u64,
        record: &Record,
        issues: &[FieldIssue],
        raw: Vec<u8>,
    ) {
        PipelineCounters::add(&self.counters.records_with_field_issues, 1);
        self.letters.push(DeadLetter {
            location: self.location(offset),
            kind: DeadLetterKind::FieldsRejected,
            reason: issues
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join("; "),
            fields: issues.iter().map(|issue| issue.field.clone()).collect(),
            vehicle_id: Some(record.vehicle_id.to_string()),
            raw,
        });
    }

    /// A record the source set aside.
    pub(super) fn skipped(&mut self, skipped: SkippedRecord) {
        PipelineCounters::add(&self.counters.records_rejected, 1);
        tracing::warn!(partition = %self.partition, record = %skipped.record_id, reason = %skipped.reason, "record set aside by the source");
        self.letters.push(DeadLetter {
            location: RecordLocation {
                partition: self.partition.to_owned(),
                offset: 0,
                record_id: Some(skipped.record_id),
            },
            kind: DeadLetterKind::Rejected,
            reason: skipped.reason,
            fields: Vec::new(),
            vehicle_id: None,
            raw: skipped.raw,
        });
    }

    /// Reading the partition stopped at a problem.
    pub(super) fn problem(&mut self, problem: PartitionProblem) {
        PipelineCounters::add(&self.counters.input_problems, 1);
        tracing::warn!(partition = %self.partition, offset = problem.offset, reason = %problem.reason, "input problem");
        self.letters.push(DeadLetter {
            location: self.location(problem.offset),
            kind: DeadLetterKind::Input,
            reason: problem.reason,
            fields: Vec::new(),
            vehicle_id: None,
            raw: Vec::new(),
        });
    }

    /// The letters, in order.
    pub(super) fn into_letters(self) -> Vec<DeadLetter> {
        self.letters
    }
}
