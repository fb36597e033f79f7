//! The long layout: one signal per object, as AWS IoT FleetWise lands data
//! (`{"vehicleName":"veh-1","name":"Vehicle.Speed","time":1767225600000,"value":42.1}`), with
//! configurable field names. Each object becomes a record with one signal.

use crate::builder::RecordBuilder;
use crate::error::{FieldIssue, RecordErrorKind};
use crate::options::LongFields;
use crate::scalar::Scalar;

/// Decodes one long-layout object into `builder`.
pub(crate) fn decode_long(
    bytes: &[u8],
    fields: &LongFields,
    builder: &mut RecordBuilder<'_>,
) -> Result<(), RecordErrorKind> {
    let value: serde_json::Value =
        serde_json::from_slice(bytes).map_err(|err| RecordErrorKind::Syntax(err.to_string()))?;
    let object = value
        .as_object()
        .ok_or(RecordErrorKind::NotAnObject("another JSON value"))?;
    let get = |name: &str| object.get(name).map(Scalar::from).unwrap_or(Scalar::Null);
    builder.set_vehicle_id(&fields.vehicle_id, get(&fields.vehicle_id));
    builder.set_time(&fields.time, get(&fields.time));
    if let Some(fleet) = &fields.fleet {
        builder.set_fleet(fleet, get(fleet));
    }
    for attribute in &fields.attributes {
        builder.add_attribute(|| attribute.clone(), attribute, get(attribute));
    }
    match get(&fields.signal_name) {
        Scalar::Str(name) => {
            let value = object.get(&fields.value).map(Scalar::from);
            match value {
                Some(value) => builder.add_signal(|| fields.value.clone(), &name, value),
                None => return Err(RecordErrorKind::MissingField(fields.value.clone())),
            }
        }
        Scalar::Null => return Err(RecordErrorKind::MissingField(fields.signal_name.clone())),
        other => {
            return Err(RecordErrorKind::InvalidField(FieldIssue::new(
                &fields.signal_name,
                format!("expected a string signal name, got {}", other.type_name()),
            )))
        }
    }
    Ok(())
}
