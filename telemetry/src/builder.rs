//! Assembles a [`Record`] from field values while applying the per-field policy of
//! [`DecodeOptions`]; shared by every format so they all behave the same.

use compact_str::CompactString;

use crate::attributes::{AttributeStorage, Attributes, ObjectMembers};
use crate::entries::Entries;
use crate::error::{FieldIssue, RecordErrorKind};
use crate::options::{DecodeOptions, FuturePolicy, TimeSource};
use crate::record::{EpochMillis, Record, Signal};
use crate::scalar::Scalar;
use crate::spares::RecordSpares;
use crate::timestamp::{format_rfc3339, millis_from_float, millis_from_int, millis_from_str};

/// A record that decoded, possibly with some fields rejected.
#[derive(Debug, Clone, PartialEq)]
pub struct Decoded {
    /// The usable part of the record.
    pub record: Record,
    /// Fields that were rejected (the record goes on without them).
    pub issues: Vec<FieldIssue>,
}

/// Collects the parts of one record.
pub(crate) struct RecordBuilder<'o> {
    options: &'o DecodeOptions,
    vehicle_id: Option<CompactString>,
    event_time_ms: Option<EpochMillis>,
    fleet: Option<CompactString>,
    attributes: Entries<(CompactString, CompactString)>,
    /// The attributes as one plain object's text (see [`Self::set_attributes_object`]).
    attributes_object: Option<String>,
    /// A text buffer of a recycled record, for the next object.
    spare_object: Option<String>,
    signals: Entries<Signal>,
    signal_fingerprint: u64,
    issues: Vec<FieldIssue>,
    error: Option<RecordErrorKind>,
}

impl<'o> RecordBuilder<'o> {
    pub(crate) fn new(options: &'o DecodeOptions) -> Self {
        Self::with_vectors(options, AttributeStorage::Pairs(Vec::new()), Vec::new())
    }

    /// A builder that fills the vectors of a used-up record (see [`RecordSpares`]).
    pub(crate) fn reusing(options: &'o DecodeOptions, spares: &mut RecordSpares) -> Self {
        Self::with_vectors(options, spares.attributes(), spares.signals())
    }

    /// A builder that fills the vectors of `record`, a record its consumer is done with and that
    /// the new one is about to be written over: they are taken out of it.
    pub(crate) fn over_record(options: &'o DecodeOptions, record: &mut Record) -> Self {
        Self::with_vectors(
            options,
            record.attributes.take_storage(),
            std::mem::take(&mut record.signals),
        )
    }

    fn with_vectors(
        options: &'o DecodeOptions,
        attributes: AttributeStorage,
        signals: Vec<Signal>,
    ) -> Self {
        let (pairs, spare_object) = match attributes {
            AttributeStorage::Pairs(pairs) => (pairs, None),
            AttributeStorage::Object(text) => (Vec::new(), Some(text)),
        };
        Self {
            options,
            vehicle_id: None,
            event_time_ms: None,
            fleet: None,
            attributes: Entries::over(pairs),
            attributes_object: None,
            spare_object,
            signals: Entries::over(signals),
            signal_fingerprint: 0,
            issues: Vec::new(),
            error: None,
        }
    }

    /// An empty builder with the same options.
    pub(crate) fn fresh(&self) -> RecordBuilder<'o> {
        RecordBuilder::new(self.options)
    }

    /// The vehicle id read so far, for error messages.
    pub(crate) fn vehicle_id(&self) -> Option<&str> {
        self.vehicle_id.as_deref()
    }

    fn fail(&mut self, kind: RecordErrorKind) {
        if self.error.is_none() {
            self.error = Some(kind);
        }
    }

    pub(crate) fn set_vehicle_id(&mut self, field: &str, value: Scalar<'_>) {
        match value {
            Scalar::Str(text) if !text.trim().is_empty() => {
                self.vehicle_id = Some(CompactString::from(text.as_ref()));
            }
            Scalar::Str(_) => self.fail(RecordErrorKind::InvalidField(FieldIssue::new(
                field,
                "vehicle id is empty",
            ))),
            Scalar::Null => {}
            other => self.fail(RecordErrorKind::InvalidField(FieldIssue::new(
                field,
                format!("expected a string vehicle id, got {}", other.type_name()),
            ))),
        }
    }

    pub(crate) fn set_fleet(&mut self, field: &str, value: Scalar<'_>) {
        match value {
            Scalar::Str(text) => self.fleet = Some(CompactString::from(text.as_ref())),
            Scalar::Null => {}
            other => self.issues.push(FieldIssue::new(
                field,
                format!("expected a string fleet, got {}", other.type_name()),
            )),
        }
    }

    pub(crate) fn set_time(&mut self, field: &str, value: Scalar<'_>) {
        if self.options.time_source == TimeSource::Arrival {
            return;
        }
        let unit = self.options.time_unit;
        let parsed = match value {
            Scalar::Int(int) => millis_from_int(int, unit),
            Scalar::Float(float) => millis_from_float(float, unit),
            Scalar::Str(text) => millis_from_str(&text, unit),
            Scalar::Null => return,
            other => Err(format!(
                "expected an epoch number or RFC 3339 string, got {}",
                other.type_name()
            )),
        };
        let problem = match parsed {
            Ok(ms) if ms < self.options.min_event_time_ms => format!(
                "event time {} is before the earliest accepted time {}",
                format_rfc3339(ms),
                format_rfc3339(self.options.min_event_time_ms)
            ),
            Ok(ms) if ms > self.options.max_event_time_ms => {
                let reason = format!(
                    "event time {} is after the latest accepted time {}",
                    format_rfc3339(ms),
                    format_rfc3339(self.options.max_event_time_ms)
                );
                if self.options.future_policy == FuturePolicy::Clamp {
                    self.issues
                        .push(FieldIssue::new(field, format!("{reason}; clamped to it")));
                    self.event_time_ms = Some(self.options.max_event_time_ms);
                    return;
                }
                reason
            }
            Ok(ms) => {
                self.event_time_ms = Some(ms);
                return;
            }
            Err(reason) => reason,
        };
        if self.options.time_source == TimeSource::EventOrArrival {
            self.issues.push(FieldIssue::new(
                field,
                format!("{problem}; arrival time used"),
            ));
            return;
        }
        self.fail(RecordErrorKind::InvalidField(FieldIssue::new(
            field, problem,
        )));
    }

    /// `field` names the attribute in messages; it is only built when needed.
    pub(crate) fn add_attribute(
        &mut self,
        field: impl FnOnce() -> String,
        name: &str,
        value: Scalar<'_>,
    ) {
        let text = match value {
            Scalar::Str(text) => return self.add_attribute_text(name, &text),
            Scalar::Int(int) => CompactString::from(int.to_string()),
            Scalar::Float(float) => CompactString::from(float.to_string()),
            Scalar::Bool(flag) => CompactString::from(if flag { "true" } else { "false" }),
            Scalar::Null => return,
            Scalar::Nested(kind) => {
                self.issues.push(FieldIssue::new(
                    field(),
                    format!("attributes must be strings, got {kind}"),
                ));
                return;
            }
        };
        self.set_attribute(name, text);
    }

    /// [`Self::add_attribute`] of a string value (the common case, kept out of [`Scalar`] so
    /// the value is not copied through memory on the hot path).
    pub(crate) fn add_attribute_text(&mut self, name: &str, text: &str) {
        self.set_attribute(name, CompactString::from(text));
    }

    /// Takes the attributes as the text of a plain object (one that
    /// [`ObjectMembers::plain`] accepted), read only when something asks for them.
    pub(crate) fn set_attributes_object(&mut self, object: &str) {
        let mut text = self.spare_object.take().unwrap_or_default();
        text.clear();
        text.push_str(object);
        self.attributes_object = Some(text);
    }

    fn set_attribute(&mut self, name: &str, text: CompactString) {
        if let Some(object) = self.attributes_object.take() {
            // Pairs from here on: the object's members first, in their order.
            for (name, value) in ObjectMembers::new(&object) {
                self.attributes.append(name, CompactString::from(value));
            }
        }
        match self.attributes.find_mut(name) {
            Some(slot) => slot.1 = text,
            None => self.attributes.append(name, text),
        }
    }

    /// Applies the signal value policy documented on [`DecodeOptions`]; `field` names the signal
    /// in messages and is only built when needed.
    pub(crate) fn add_signal(
        &mut self,
        field: impl FnOnce() -> String,
        name: &str,
        value: Scalar<'_>,
    ) {
        let number = match value {
            Scalar::Int(int) => int as f64,
            Scalar::Float(float) => float,
            Scalar::Bool(flag) => f64::from(u8::from(flag)),
            Scalar::Null => return,
            Scalar::Str(text) => {
                let shown: String = text.chars().take(40).collect();
                self.issues.push(FieldIssue::new(
                    field(),
                    format!("non-numeric value {shown:?}"),
                ));
                return;
            }
            Scalar::Nested(kind) => {
                self.issues.push(FieldIssue::new(
                    field(),
                    format!("expected a number, got {kind}"),
                ));
                return;
            }
        };
        self.add_signal_number(field, name, number);
    }

    /// [`Self::add_signal`] of a number (the common case, kept out of [`Scalar`] so the value
    /// travels in a register on the hot path).
    pub(crate) fn add_signal_number(
        &mut self,
        field: impl FnOnce() -> String,
        name: &str,
        number: f64,
    ) {
        if !number.is_finite() || number.abs() > self.options.max_abs_signal_value {
            self.issues.push(FieldIssue::new(
                field(),
                format!(
                    "value {number:e} is outside ±{:e} (max_abs_signal_value)",
                    self.options.max_abs_signal_value
                ),
            ));
            return;
        }
        if name.is_empty() {
            self.issues
                .push(FieldIssue::new(field(), "signal name is empty"));
            return;
        }
        // A cheap fingerprint of the names seen rules out most duplicate scans.
        let last_byte = name.as_bytes().last().copied().unwrap_or(0);
        let bit = 1u64 << ((name.len() as u64 * 31 + u64::from(last_byte)) % 64);
        let maybe_seen = self.signal_fingerprint & bit != 0;
        self.signal_fingerprint |= bit;
        if maybe_seen {
            if let Some(signal) = self.signals.find_mut(name) {
                signal.value = number;
                return;
            }
        }
        self.signals.append(name, number);
    }

    /// Makes room for `count` more signals.
    pub(crate) fn reserve_signals(&mut self, count: usize) {
        self.signals.reserve(count);
    }

    pub(crate) fn add_issue(&mut self, issue: FieldIssue) {
        self.issues.push(issue);
    }

    pub(crate) fn fail_with(&mut self, kind: RecordErrorKind) {
        self.fail(kind);
    }

    /// Finishes the record (required fields present, at least one usable signal), or says why
    /// it is rejected, with the vehicle id when it was read (for the message). Takes what the
    /// builder holds, so the builder is not moved (it is large, and a move copies it).
    pub(crate) fn finish(
        &mut self,
        vehicle_field: &str,
        time_field: &str,
    ) -> Result<Decoded, (RecordErrorKind, Option<String>)> {
        let mut record = Record::empty();
        let issues = self.finish_into(vehicle_field, time_field, &mut record)?;
        Ok(Decoded { record, issues })
    }

    /// [`Self::finish`], writing the record over `record` field by field instead of returning
    /// it (a record is large, and every move copies it); returns the rejected fields. When the
    /// record is rejected, `record` gets the signal vector back for the next one.
    pub(crate) fn finish_into(
        &mut self,
        vehicle_field: &str,
        time_field: &str,
        record: &mut Record,
    ) -> Result<Vec<FieldIssue>, (RecordErrorKind, Option<String>)> {
        let (vehicle_id, event_time_ms) = match self.complete(vehicle_field, time_field) {
            Ok(parts) => parts,
            Err(rejection) => {
                record.signals = self.signals.finish();
                return Err(rejection);
            }
        };
        record.vehicle_id = vehicle_id;
        record.event_time_ms = event_time_ms;
        record.fleet = self.fleet.take();
        record.attributes = self.take_attributes();
        record.signals = self.signals.finish();
        Ok(std::mem::take(&mut self.issues))
    }

    /// The attributes set: one plain object's text, or pairs.
    fn take_attributes(&mut self) -> Attributes {
        match self.attributes_object.take() {
            Some(object) => Attributes::from_plain_object(object),
            None => Attributes::from(self.attributes.finish()),
        }
    }

    /// The vehicle id and event time of a record that can be finished, or why it is rejected
    /// (with the vehicle id read, if any).
    fn complete(
        &mut self,
        vehicle_field: &str,
        time_field: &str,
    ) -> Result<(CompactString, EpochMillis), (RecordErrorKind, Option<String>)> {
        let vehicle = |builder: &Self| builder.vehicle_id.as_deref().map(str::to_owned);
        if let Some(error) = self.error.clone() {
            return Err((error, vehicle(self)));
        }
        let event_time_ms = match (self.event_time_ms, self.options.time_source) {
            (_, TimeSource::Arrival) | (None, TimeSource::EventOrArrival) => {
                self.options.arrival_time_ms
            }
            (Some(ms), _) => ms,
            (None, TimeSource::Event) => {
                return Err((
                    RecordErrorKind::MissingField(time_field.to_owned()),
                    vehicle(self),
                ));
            }
        };
        if self.signals.is_empty() {
            let issues = std::mem::take(&mut self.issues);
            return Err((RecordErrorKind::NoUsableSignals(issues), vehicle(self)));
        }
        let Some(vehicle_id) = self.vehicle_id.take() else {
            return Err((
                RecordErrorKind::MissingField(vehicle_field.to_owned()),
                None,
            ));
        };
        Ok((vehicle_id, event_time_ms))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_attribute_object_reuses_the_text_buffer_of_a_recycled_record() {
        let options = DecodeOptions::default();
        let mut spares = RecordSpares::default();
        let text = String::from(r#"{"model":"sedan","vin":"FS0001"}"#);
        let address = text.as_ptr();
        spares.recycle(Record {
            vehicle_id: "v".into(),
            event_time_ms: 0,
            fleet: None,
            attributes: Attributes::from_plain_object(text),
            signals: vec![Signal::new("s", 1.0)],
        });
        let mut builder = RecordBuilder::reusing(&options, &mut spares);
        builder.set_attributes_object(r#"{"model":"e-van"}"#);
        let object = builder.attributes_object.as_ref().unwrap();
        assert_eq!(object, r#"{"model":"e-van"}"#);
        assert_eq!(object.as_ptr(), address);
    }

    #[test]
    fn an_attribute_set_after_an_object_joins_its_members_as_pairs() {
        let options = DecodeOptions::default();
        let mut builder = RecordBuilder::new(&options);
        builder.set_attributes_object(r#"{"model":"e-van","vin":"FS0001"}"#);
        builder.add_attribute_text("model", "truck");
        builder.add_attribute_text("region", "eu");
        assert!(builder.attributes_object.is_none());
        let pairs: Vec<(String, String)> = Attributes::from(builder.attributes.finish())
            .iter()
            .map(|(name, value)| (name.to_owned(), value.to_owned()))
            .collect();
        assert_eq!(
            pairs,
            [("model", "truck"), ("vin", "FS0001"), ("region", "eu")]
                .map(|(name, value)| (name.to_owned(), value.to_owned()))
        );
    }
}
