//! What the decoders accept: formats, limits and the per-field policy.

use serde::{Deserialize, Serialize};

use crate::record::EpochMillis;
use crate::timestamp::TimeUnit;

/// 2000-01-01T00:00:00Z: the default earliest accepted event time.
pub const DEFAULT_MIN_EVENT_TIME_MS: EpochMillis = 946_684_800_000;

/// 2099-12-31T23:59:59.999Z: the default latest accepted event time when no clock-relative bound is set.
pub const DEFAULT_MAX_EVENT_TIME_MS: EpochMillis = 4_102_444_799_999;

/// Which clock gives a record its event time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TimeSource {
    /// The record's own timestamp (required).
    #[default]
    Event,
    /// The arrival (processing) time; the record's timestamp is ignored.
    Arrival,
    /// The record's timestamp, or the arrival time when it is missing or unusable (KDA's
    /// "two-window strategy"); the fallback is reported as a field issue.
    EventOrArrival,
}

/// What to do with an event time further in the future than allowed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FuturePolicy {
    /// Reject the record (dead letter).
    #[default]
    Reject,
    /// Keep the record with its time set to the latest accepted time; reported as a field issue.
    Clamp,
}

/// Limits and policies shared by every format.
///
/// **Signal value policy**: a finite number whose magnitude is at most `max_abs_signal_value` is
/// accepted; `true`/`false` become 1/0; `null` means "no reading" and is skipped silently; a string,
/// object, array or too-large number is rejected *for that field only*: the record goes on with
/// its other signals and the field is reported as a [`crate::FieldIssue`]. A record left with
/// no signal at all is rejected as a whole.
#[derive(Debug, Clone, PartialEq)]
pub struct DecodeOptions {
    /// Unit of numeric timestamps.
    pub time_unit: TimeUnit,
    /// Records with an earlier event time are rejected.
    pub min_event_time_ms: EpochMillis,
    /// Records with a later event time are rejected (callers usually set now + allowed skew).
    pub max_event_time_ms: EpochMillis,
    /// Largest accepted signal magnitude; larger values would overflow sums and variances.
    pub max_abs_signal_value: f64,
    /// Largest accepted record (one top-level JSON value) in bytes.
    pub max_record_bytes: usize,
    /// Largest decompressed size of one gzip payload.
    pub max_decompressed_bytes: u64,
    /// Which clock gives the event time.
    pub time_source: TimeSource,
    /// What to do with times after `max_event_time_ms`.
    pub future_policy: FuturePolicy,
    /// Arrival time of the payload being decoded (set per batch by the caller).
    pub arrival_time_ms: EpochMillis,
    /// When set, `max_event_time_ms` follows the clock: each new arrival time moves it to
    /// arrival time + this skew (a long-running service keeps accepting current data).
    pub max_future_skew_ms: Option<i64>,
}

impl Default for DecodeOptions {
    fn default() -> Self {
        Self {
            time_unit: TimeUnit::Auto,
            min_event_time_ms: DEFAULT_MIN_EVENT_TIME_MS,
            max_event_time_ms: DEFAULT_MAX_EVENT_TIME_MS,
            max_abs_signal_value: 1e12,
            max_record_bytes: 1 << 20,
            max_decompressed_bytes: 256 << 20,
            time_source: TimeSource::Event,
            future_policy: FuturePolicy::Reject,
            arrival_time_ms: 0,
            max_future_skew_ms: None,
        }
    }
}

/// Field names of the long (one signal per object) layout, as AWS IoT FleetWise lands data:
/// `{"vehicleName":"veh-1","name":"Vehicle.Speed","time":1767225600000,"value":42.1}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LongFields {
    /// Field holding the vehicle id.
    pub vehicle_id: String,
    /// Field holding the signal name.
    pub signal_name: String,
    /// Field holding the event time.
    pub time: String,
    /// Field holding the signal value.
    pub value: String,
    /// Optional field holding the fleet.
    pub fleet: Option<String>,
    /// Other top-level fields copied as attributes.
    pub attributes: Vec<String>,
}

impl Default for LongFields {
    fn default() -> Self {
        Self {
            vehicle_id: "vehicleName".into(),
            signal_name: "name".into(),
            time: "time".into(),
            value: "value".into(),
            fleet: None,
            attributes: Vec::new(),
        }
    }
}

/// Where each part of a record lives in an arbitrary JSON layout, as JSON pointers (RFC 6901).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FieldMapping {
    /// Pointer to the vehicle id (`/device/id`).
    pub vehicle_id: String,
    /// Pointer to the event time (`/payload/ts`).
    pub time: String,
    /// Optional pointer to the fleet.
    #[serde(default)]
    pub fleet: Option<String>,
    /// Attribute name → pointer.
    #[serde(default)]
    pub attributes: std::collections::BTreeMap<String, String>,
    /// Signal name → pointer, for signals named one by one.
    #[serde(default)]
    pub signals: std::collections::BTreeMap<String, String>,
    /// Pointer to an object whose every member is a signal (`/payload/readings`).
    #[serde(default)]
    pub signals_object: Option<String>,
}

impl FieldMapping {
    /// Problems with the mapping itself (each pointer must be empty or start with `/`).
    pub fn problems(&self) -> Vec<String> {
        let mut problems = Vec::new();
        let mut check = |what: String, pointer: &str| {
            if !pointer.is_empty() && !pointer.starts_with('/') {
                problems.push(format!(
                    "{what}: JSON pointer {pointer:?} must start with '/'"
                ));
            }
        };
        check("vehicle_id".into(), &self.vehicle_id);
        check("time".into(), &self.time);
        if let Some(fleet) = &self.fleet {
            check("fleet".into(), fleet);
        }
        for (name, pointer) in &self.attributes {
            check(format!("attributes.{name}"), pointer);
        }
        for (name, pointer) in &self.signals {
            check(format!("signals.{name}"), pointer);
        }
        if let Some(object) = &self.signals_object {
            check("signals_object".into(), object);
        }
        if self.signals.is_empty() && self.signals_object.is_none() {
            problems.push("name at least one signal (signals) or a signals_object".into());
        }
        problems
    }
}

/// The wire layout of records.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(tag = "format", rename_all = "snake_case", deny_unknown_fields)]
pub enum Format {
    /// One object per vehicle and instant with a `signals` map (the default; see the README).
    #[default]
    Wide,
    /// One object per signal (AWS IoT FleetWise style).
    Long(LongFields),
    /// Any layout, located by JSON pointers.
    Mapping(FieldMapping),
}
