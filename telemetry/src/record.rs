//! The canonical telemetry record every decoder produces and every stage consumes.

use compact_str::CompactString;
use serde::{Deserialize, Serialize};

use crate::attributes::Attributes;

/// Milliseconds since the Unix epoch, UTC. The event time of a record, a window bound or a watermark.
pub type EpochMillis = i64;

/// One named numeric reading of a vehicle at an instant (`speed_kmh = 42.1`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Signal {
    /// Signal name as sent by the vehicle (`speed_kmh`, `Vehicle.Speed`).
    pub name: CompactString,
    /// Finite value; decoders never put NaN or infinity here.
    pub value: f64,
}

impl Signal {
    /// A reading named `name`.
    pub fn new(name: &str, value: f64) -> Self {
        Signal {
            name: CompactString::from(name),
            value,
        }
    }
}

/// One vehicle's readings at one event time, whatever wire format they arrived in.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Record {
    /// Stable vehicle identifier (never empty).
    pub vehicle_id: CompactString,
    /// When the readings were taken, per the vehicle's clock (UTC ms).
    pub event_time_ms: EpochMillis,
    /// Fleet the vehicle belongs to, when the payload says.
    pub fleet: Option<CompactString>,
    /// Descriptive string attributes (model, vin, region…), in payload order, names unique;
    /// kept as the payload's JSON text until read (see [`Attributes`]).
    pub attributes: Attributes,
    /// Numeric signals, in payload order, names unique.
    pub signals: Vec<Signal>,
}

impl Record {
    /// A record with nothing in it, for a decoder to write one over (not a valid record: its
    /// vehicle id is empty and it has no signals).
    pub(crate) fn empty() -> Self {
        Record {
            vehicle_id: CompactString::default(),
            event_time_ms: 0,
            fleet: None,
            attributes: Attributes::new(),
            signals: Vec::new(),
        }
    }

    /// The value of signal `name`, if this record carries it.
    pub fn signal(&self, name: &str) -> Option<f64> {
        self.signals
            .iter()
            .find(|signal| signal.name == name)
            .map(|signal| signal.value)
    }

    /// The value of attribute `name`, if this record carries it.
    pub fn attribute(&self, name: &str) -> Option<&str> {
        self.attributes.get(name)
    }
}
