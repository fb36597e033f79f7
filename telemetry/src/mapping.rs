//! Any other layout, located by JSON pointers (RFC 6901) configured in a [`FieldMapping`].

use crate::builder::RecordBuilder;
use crate::error::RecordErrorKind;
use crate::options::FieldMapping;
use crate::scalar::Scalar;

/// Decodes one object with `mapping` into `builder`.
pub(crate) fn decode_mapped(
    bytes: &[u8],
    mapping: &FieldMapping,
    builder: &mut RecordBuilder<'_>,
) -> Result<(), RecordErrorKind> {
    let value: serde_json::Value =
        serde_json::from_slice(bytes).map_err(|err| RecordErrorKind::Syntax(err.to_string()))?;
    if !value.is_object() {
        return Err(RecordErrorKind::NotAnObject("another JSON value"));
    }
    let get = |pointer: &str| {
        value
            .pointer(pointer)
            .map(Scalar::from)
            .unwrap_or(Scalar::Null)
    };
    builder.set_vehicle_id(&mapping.vehicle_id, get(&mapping.vehicle_id));
    builder.set_time(&mapping.time, get(&mapping.time));
    if let Some(fleet) = &mapping.fleet {
        builder.set_fleet(fleet, get(fleet));
    }
    for (name, pointer) in &mapping.attributes {
        builder.add_attribute(|| pointer.clone(), name, get(pointer));
    }
    for (name, pointer) in &mapping.signals {
        builder.add_signal(|| pointer.clone(), name, get(pointer));
    }
    if let Some(pointer) = &mapping.signals_object {
        match value.pointer(pointer) {
            Some(serde_json::Value::Object(members)) => {
                for (name, member) in members {
                    builder.add_signal(|| format!("{pointer}/{name}"), name, Scalar::from(member));
                }
            }
            Some(other) => builder.add_issue(crate::FieldIssue::new(
                pointer,
                format!(
                    "expected an object of signals, got {}",
                    Scalar::from(other).type_name()
                ),
            )),
            None => {}
        }
    }
    Ok(())
}
