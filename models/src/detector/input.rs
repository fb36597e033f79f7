//! How a telemetry record becomes an IoT Events input message.
//!
//! By default the input message is the record itself: `vehicle_id`, `fleet`, `ts`, every signal and
//! attribute by name, and `signals.<name>` / `attributes.<name>`. A model written against an IoT
//! Events input (`CreateInput` JSON, e.g. attribute `sensorData.pressure`) gets a mapping from
//! those attribute paths to record fields (`sensorData.pressure` → `oil_pressure_kpa`).

use std::collections::BTreeMap;

use serde_json::Value as Json;
use telemetry::Record;

use super::expression::{PathSegment, Value};

/// The input name a model reads and how its attribute paths map to record fields.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct InputBinding {
    /// Input name (`$input.<name>.…`).
    pub name: String,
    /// Input attribute path (`sensorData.pressure`) → record field (`oil_pressure_kpa`,
    /// `signals.x`, `vehicle_id`).
    pub mapping: BTreeMap<String, String>,
}

impl InputBinding {
    /// A binding with no mapping: the record's own field names.
    pub fn named(name: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            mapping: BTreeMap::new(),
        }
    }

    /// True when `record` can be this input: every mapped field is present (an input without a
    /// mapping takes every record).
    pub fn matches(&self, record: &Record) -> bool {
        self.mapping.values().all(|target| {
            let target: Vec<PathSegment> = target
                .split('.')
                .map(|part| PathSegment::Field(part.to_owned()))
                .collect();
            record_value(record, &target) != Value::Undefined
        })
    }

    /// The value at `path` of input `input` for `record` (undefined for another input).
    pub fn value(&self, input: &str, path: &[PathSegment], record: &Record) -> Value {
        if input != self.name {
            return Value::Undefined;
        }
        if !self.mapping.is_empty() {
            let dotted = dotted(path);
            if let Some(target) = self.mapping.get(&dotted) {
                let target: Vec<PathSegment> = target
                    .split('.')
                    .map(|part| PathSegment::Field(part.to_owned()))
                    .collect();
                return record_value(record, &target);
            }
        }
        record_value(record, path)
    }
}

/// `a.b[2].c` for a path (indexes in brackets), as `CreateInput` attribute paths are written.
fn dotted(path: &[PathSegment]) -> String {
    let mut text = String::new();
    for segment in path {
        match segment {
            PathSegment::Field(name) => {
                if !text.is_empty() {
                    text.push('.');
                }
                text.push_str(name);
            }
            PathSegment::Index(index) => text.push_str(&format!("[{index}]")),
        }
    }
    text
}

/// The value at `path` of a record seen as an input message (see the module documentation).
pub fn record_value(record: &Record, path: &[PathSegment]) -> Value {
    let attribute = |name: &str| record.attribute(name).map(|a| Value::String(a.to_owned()));
    match path {
        [PathSegment::Field(name)] => match name.as_str() {
            "vehicle_id" => Value::String(record.vehicle_id.to_string()),
            "fleet" => record
                .fleet
                .as_ref()
                .map_or(Value::Undefined, |f| Value::String(f.to_string())),
            "ts" => Value::Integer(record.event_time_ms),
            other => record
                .signal(other)
                .map(Value::Decimal)
                .or_else(|| attribute(other))
                .unwrap_or(Value::Undefined),
        },
        [PathSegment::Field(section), PathSegment::Field(name)] if section == "signals" => {
            record.signal(name).map_or(Value::Undefined, Value::Decimal)
        }
        [PathSegment::Field(section), PathSegment::Field(name)] if section == "attributes" => {
            attribute(name).unwrap_or(Value::Undefined)
        }
        _ => Value::Undefined,
    }
}

/// Reads a `CreateInput` body (or `describe-input` output): the input name and its attribute
/// paths.
pub fn load_input_definition(json: &str) -> Result<(String, Vec<String>), String> {
    let document: Json =
        serde_json::from_str(json).map_err(|err| format!("not valid JSON: {err}"))?;
    let root = document.get("input").unwrap_or(&document);
    let configuration = root.get("inputConfiguration").unwrap_or(root);
    let name = configuration
        .get("inputName")
        .and_then(Json::as_str)
        .ok_or("missing inputName")?
        .to_owned();
    let attributes = root
        .pointer("/inputDefinition/attributes")
        .and_then(Json::as_array)
        .ok_or("missing inputDefinition.attributes")?
        .iter()
        .filter_map(|attribute| {
            attribute
                .get("jsonPath")
                .and_then(Json::as_str)
                .map(str::to_owned)
        })
        .collect();
    Ok((name, attributes))
}

/// Builds a binding from an input definition and a mapping; every mapped path must be one of the
/// input's attributes.
pub fn bind_input(
    definition: &str,
    mapping: BTreeMap<String, String>,
) -> Result<InputBinding, String> {
    let (name, attributes) = load_input_definition(definition)?;
    let unknown: Vec<&String> = mapping
        .keys()
        .filter(|path| !attributes.contains(path))
        .collect();
    if !unknown.is_empty() {
        return Err(format!(
            "mapping names {unknown:?}, which input {name:?} does not define (its attributes: {attributes:?})"
        ));
    }
    Ok(InputBinding { name, mapping })
}

#[cfg(test)]
mod tests {
    use super::*;
    use telemetry::Signal;

    const INPUT: &str = r#"{"inputName": "PressureInput", "inputDefinition": {"attributes": [
        {"jsonPath": "sensorData.pressure"}, {"jsonPath": "motorid"}]}}"#;

    #[test]
    fn mapped_paths_read_record_fields() {
        let binding = bind_input(
            INPUT,
            [
                (
                    "sensorData.pressure".to_owned(),
                    "oil_pressure_kpa".to_owned(),
                ),
                ("motorid".to_owned(), "vehicle_id".to_owned()),
            ]
            .into(),
        )
        .unwrap();
        let record = Record {
            vehicle_id: "veh-3".into(),
            event_time_ms: 0,
            fleet: None,
            attributes: telemetry::Attributes::new(),
            signals: vec![Signal {
                name: "oil_pressure_kpa".into(),
                value: 310.0,
            }],
        };
        let path = |text: &str| -> Vec<PathSegment> {
            text.split('.')
                .map(|p| PathSegment::Field(p.to_owned()))
                .collect()
        };
        assert_eq!(
            binding.value("PressureInput", &path("sensorData.pressure"), &record),
            Value::Decimal(310.0)
        );
        assert_eq!(
            binding.value("PressureInput", &path("motorid"), &record),
            Value::String("veh-3".into())
        );
        assert_eq!(
            binding.value("Other", &path("motorid"), &record),
            Value::Undefined
        );
    }

    #[test]
    fn mapping_must_use_defined_attributes() {
        let error = bind_input(
            INPUT,
            [("sensorData.temp".to_owned(), "x".to_owned())].into(),
        )
        .unwrap_err();
        assert!(error.contains("sensorData.temp"), "{error}");
        assert!(load_input_definition("{}").is_err());
    }
}
