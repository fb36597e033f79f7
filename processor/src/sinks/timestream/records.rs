//! [`SeriesPoint`]s as Timestream multi-measure records (`MeasureValueType::Multi`, time in
//! milliseconds, the point's version as the record `Version`).

use aws_sdk_timestreamwrite::types::{Dimension, MeasureValue, MeasureValueType, Record};

use crate::sinks::series::{FieldValue, SeriesPoint};

/// A record ready to send, with what the writer needs to handle its rejection.
#[derive(Debug, Clone)]
pub struct PendingRecord {
    /// The row as the layout describes it (logged when undelivered).
    pub point: SeriesPoint,
    /// True when this row is authoritative for its key, so a version conflict is resolved in
    /// its favour: a final rollup, or any non-rollup row. Partial rollups (early firings)
    /// yield to what is stored.
    pub authoritative: bool,
    /// Already re-sent once after an outside-retention rejection.
    pub retention_retried: bool,
}

impl PendingRecord {
    /// Wraps `point`.
    pub fn new(point: SeriesPoint) -> Self {
        let authoritative = point
            .fields
            .iter()
            .find(|(name, _)| name == "is_final")
            .is_none_or(|(_, value)| *value == FieldValue::Boolean(true));
        Self {
            point,
            authoritative,
            retention_retried: false,
        }
    }

    /// The Timestream record: dimensions, the measure name, every selected measure, time and
    /// version. `measures` empty keeps every field.
    pub fn to_record(&self, measures: &[String]) -> Record {
        let point = &self.point;
        let mut builder = Record::builder()
            .measure_name(&point.measurement)
            .time(point.time_ms.to_string())
            .version(point.version);
        for (name, value) in &point.dimensions {
            if let Ok(dimension) = Dimension::builder().name(name).value(value).build() {
                builder = builder.dimensions(dimension);
            }
        }
        for (name, value) in &point.fields {
            if !measures.is_empty() && !measures.iter().any(|m| m == name) {
                continue;
            }
            let (text, kind) = match value {
                FieldValue::Double(v) => (format!("{v:?}"), MeasureValueType::Double),
                FieldValue::BigInt(v) => (v.to_string(), MeasureValueType::Bigint),
                FieldValue::Boolean(v) => (v.to_string(), MeasureValueType::Boolean),
                FieldValue::Text(v) => (v.clone(), MeasureValueType::Varchar),
            };
            if let Ok(measure) = MeasureValue::builder()
                .name(name.as_ref())
                .value(text)
                .r#type(kind)
                .build()
            {
                builder = builder.measure_values(measure);
            }
        }
        builder.build()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn point(is_final: Option<bool>) -> SeriesPoint {
        let mut fields = vec![
            ("count".into(), FieldValue::BigInt(3)),
            ("mean".into(), FieldValue::Double(1.5)),
        ];
        if let Some(is_final) = is_final {
            fields.push(("is_final".into(), FieldValue::Boolean(is_final)));
        }
        SeriesPoint {
            measurement: "signal_1m".to_owned(),
            dimensions: vec![("vehicle".to_owned(), "veh-1".to_owned())],
            time_ms: 60_000,
            version: 2,
            fields,
        }
    }

    #[test]
    fn records_carry_dimensions_measures_time_and_version() {
        let record = PendingRecord::new(point(Some(true))).to_record(&[]);
        assert_eq!(record.measure_name(), Some("signal_1m"));
        assert_eq!(record.time(), Some("60000"));
        assert_eq!(record.version(), Some(2));
        assert_eq!(record.dimensions()[0].value(), "veh-1");
        let measures = record.measure_values();
        assert_eq!(measures.len(), 3);
        assert_eq!(measures[0].r#type(), &MeasureValueType::Bigint);
        assert_eq!(measures[1].value(), "1.5");
        let selected = PendingRecord::new(point(None)).to_record(&["mean".to_owned()]);
        assert_eq!(selected.measure_values().len(), 1);
    }

    #[test]
    fn only_partial_rollups_yield_in_a_version_conflict() {
        assert!(PendingRecord::new(point(Some(true))).authoritative);
        assert!(!PendingRecord::new(point(Some(false))).authoritative);
        assert!(PendingRecord::new(point(None)).authoritative);
    }
}
