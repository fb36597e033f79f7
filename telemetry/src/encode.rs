//! Encodes records in the wide JSON layout (the simulator's and the NDJSON sink's output format).

use serde::ser::{SerializeMap, Serializer};
use serde::Serialize;

use crate::attributes::Attributes;
use crate::record::Record;

struct WideView<'a>(&'a Record);

struct AttributeMap<'a>(&'a Attributes);

impl Serialize for AttributeMap<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_map(self.0.iter())
    }
}

struct SignalMap<'a>(&'a Record);

impl Serialize for SignalMap<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(self.0.signals.len()))?;
        for signal in &self.0.signals {
            map.serialize_entry(&signal.name, &signal.value)?;
        }
        map.end()
    }
}

impl Serialize for WideView<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let record = self.0;
        let mut map = serializer.serialize_map(None)?;
        map.serialize_entry("vehicle_id", &record.vehicle_id)?;
        if let Some(fleet) = &record.fleet {
            map.serialize_entry("fleet", fleet)?;
        }
        map.serialize_entry("ts", &record.event_time_ms)?;
        if !record.attributes.is_empty() {
            map.serialize_entry("attributes", &AttributeMap(&record.attributes))?;
        }
        map.serialize_entry("signals", &SignalMap(record))?;
        map.end()
    }
}

/// Appends `record` as one wide JSON object (no newline) to `out`.
pub fn write_wide_json(record: &Record, out: &mut Vec<u8>) {
    // Writing to a Vec cannot fail and every value is a finite number or a string.
    if let Err(err) = serde_json::to_writer(&mut *out, &WideView(record)) {
        unreachable!("serializing a record to memory failed: {err}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{DecodeOptions, Decoder, Format, Signal};

    #[test]
    fn round_trips_through_the_decoder() {
        let record = Record {
            vehicle_id: "veh-1".into(),
            event_time_ms: 1_767_225_600_123,
            fleet: Some("f\"1".into()),
            attributes: vec![("model".into(), "e-van".into())].into(),
            signals: vec![
                Signal {
                    name: "speed_kmh".into(),
                    value: 42.1,
                },
                Signal {
                    name: "odd name".into(),
                    value: -0.5,
                },
            ],
        };
        let mut bytes = Vec::new();
        write_wide_json(&record, &mut bytes);
        let outcomes = Decoder::new(Format::Wide, DecodeOptions::default()).decode_payload(&bytes);
        match &outcomes[0] {
            Ok(decoded) => assert_eq!(decoded.decoded.record, record),
            Err(rejected) => panic!("{}", rejected.error),
        }
    }
}
