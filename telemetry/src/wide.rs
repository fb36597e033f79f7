//! The wide JSON layout (the default):
//! `{"vehicle_id":"veh-000123","fleet":"fleet-07","ts":1767225600000,
//!   "attributes":{"model":"e-van"},"signals":{"speed_kmh":42.1,"engine_rpm":1800}}`.
//!
//! This is the hot path, so it walks the JSON once with a hand-written serde visitor, borrows
//! strings from the input and never builds an intermediate tree. Unknown top-level fields are
//! ignored.

use std::fmt;

use serde::de::{DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};

use crate::builder::RecordBuilder;
use crate::error::{FieldIssue, RecordErrorKind};
use crate::scalar::{Key, Scalar};

/// Field holding the vehicle id in the wide layout.
pub const VEHICLE_ID_FIELD: &str = "vehicle_id";
/// Field holding the event time in the wide layout.
pub const TIME_FIELD: &str = "ts";

/// Decodes one wide JSON object into `builder`; syntax errors come back as [`RecordErrorKind::Syntax`].
pub(crate) fn decode_wide(
    bytes: &[u8],
    builder: &mut RecordBuilder<'_>,
) -> Result<(), RecordErrorKind> {
    let mut deserializer = serde_json::Deserializer::from_slice(bytes);
    WideSeed {
        builder: &mut *builder,
    }
    .deserialize(&mut deserializer)
    .and_then(|()| deserializer.end())
    .map_err(|err| RecordErrorKind::Syntax(err.to_string()))
}

struct WideSeed<'b, 'o> {
    builder: &'b mut RecordBuilder<'o>,
}

impl<'de> DeserializeSeed<'de> for WideSeed<'_, '_> {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for WideSeed<'_, '_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a wide telemetry object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        while let Some(Key(key)) = map.next_key::<Key<'de>>()? {
            match key.as_ref() {
                VEHICLE_ID_FIELD => self
                    .builder
                    .set_vehicle_id(VEHICLE_ID_FIELD, map.next_value()?),
                TIME_FIELD => self.builder.set_time(TIME_FIELD, map.next_value()?),
                "fleet" => self.builder.set_fleet("fleet", map.next_value()?),
                "attributes" => map.next_value_seed(MembersSeed {
                    builder: &mut *self.builder,
                    section: Section::Attributes,
                })?,
                "signals" => map.next_value_seed(MembersSeed {
                    builder: &mut *self.builder,
                    section: Section::Signals,
                })?,
                _ => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(())
    }
}

#[derive(Clone, Copy)]
enum Section {
    Attributes,
    Signals,
}

impl Section {
    fn name(self) -> &'static str {
        match self {
            Section::Attributes => "attributes",
            Section::Signals => "signals",
        }
    }
}

/// Reads the `attributes` or `signals` object member by member.
struct MembersSeed<'b, 'o> {
    builder: &'b mut RecordBuilder<'o>,
    section: Section,
}

impl MembersSeed<'_, '_> {
    fn not_an_object(self, found: &str) {
        let reason = format!("expected an object, got {found}");
        match self.section {
            Section::Signals => {
                self.builder
                    .fail_with(RecordErrorKind::InvalidField(FieldIssue::new(
                        "signals", reason,
                    )))
            }
            Section::Attributes => self
                .builder
                .add_issue(FieldIssue::new("attributes", reason)),
        }
    }
}

impl<'de> DeserializeSeed<'de> for MembersSeed<'_, '_> {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for MembersSeed<'_, '_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let mut field = String::new();
        while let Some(Key(name)) = map.next_key::<Key<'de>>()? {
            let value: Scalar<'de> = map.next_value()?;
            field.clear();
            field.push_str(self.section.name());
            field.push('.');
            field.push_str(&name);
            match self.section {
                Section::Signals => self.builder.add_signal(&field, &name, value),
                Section::Attributes => self.builder.add_attribute(&field, &name, value),
            }
        }
        Ok(())
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        self.not_an_object("array");
        Ok(())
    }
    fn visit_unit<E>(self) -> Result<(), E> {
        Ok(())
    }
    fn visit_bool<E>(self, _: bool) -> Result<(), E> {
        self.not_an_object("boolean");
        Ok(())
    }
    fn visit_i64<E>(self, _: i64) -> Result<(), E> {
        self.not_an_object("number");
        Ok(())
    }
    fn visit_u64<E>(self, _: u64) -> Result<(), E> {
        self.not_an_object("number");
        Ok(())
    }
    fn visit_f64<E>(self, _: f64) -> Result<(), E> {
        self.not_an_object("number");
        Ok(())
    }
    fn visit_str<E>(self, _: &str) -> Result<(), E> {
        self.not_an_object("string");
        Ok(())
    }
}
