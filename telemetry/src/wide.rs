//! The wide JSON layout (the default):
//! `{"vehicle_id":"veh-000123","fleet":"fleet-07","ts":1767225600000,
//!   "attributes":{"model":"e-van"},"signals":{"speed_kmh":42.1,"engine_rpm":1800}}`.
//!
//! This is the hot path, so it walks the JSON once with a hand-written serde visitor, borrows
//! strings from the input and never builds a `serde_json::Value` tree. Unknown top-level fields
//! are ignored.

use std::borrow::Cow;
use std::fmt;

use serde::de::{Deserialize, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};

use crate::builder::RecordBuilder;
use crate::error::{FieldIssue, RecordErrorKind};
use crate::scalar::{Key, Scalar};

/// Field holding the vehicle id in the wide layout.
pub const VEHICLE_ID_FIELD: &str = "vehicle_id";
/// Field holding the event time in the wide layout.
pub const TIME_FIELD: &str = "ts";

/// Decodes one complete wide JSON object (nothing may follow it) into `builder`.
pub(crate) fn decode_wide(
    bytes: &[u8],
    builder: &mut RecordBuilder<'_>,
) -> Result<(), RecordErrorKind> {
    if let Ok(text) = std::str::from_utf8(bytes) {
        match crate::wide_fast::parse_wide_fast(text, builder) {
            Some(used) if text[used..].trim_start().is_empty() => return Ok(()),
            // The fast path may have filled part of the record: start over for serde.
            _ => *builder = builder.fresh(),
        }
    }
    let raw: WideRaw<'_> =
        serde_json::from_slice(bytes).map_err(|err| RecordErrorKind::Syntax(err.to_string()))?;
    raw.apply(builder);
    Ok(())
}

/// Decodes the wide JSON object at the start of `bytes` into `builder` and returns how many
/// bytes it spans; whatever follows is left alone (the next record of a payload).
/// `text` is the same bytes when the caller has validated them as UTF-8 (enables the fast path).
pub(crate) fn decode_wide_prefix(
    bytes: &[u8],
    text: Option<&str>,
    builder: &mut RecordBuilder<'_>,
) -> Result<usize, RecordErrorKind> {
    if let Some(text) = text {
        if let Some(used) = crate::wide_fast::parse_wide_fast(text, builder) {
            return Ok(used);
        }
        // The fast path may have filled part of the record: start over for serde.
        *builder = builder.fresh();
    }
    let mut stream = serde_json::Deserializer::from_slice(bytes).into_iter::<WideRaw<'_>>();
    match stream.next() {
        Some(Ok(raw)) => {
            raw.apply(builder);
            Ok(stream.byte_offset())
        }
        Some(Err(err)) => Err(RecordErrorKind::Syntax(err.to_string())),
        None => Err(RecordErrorKind::Truncated("no record")),
    }
}

/// The members of `attributes` or `signals`, as read.
#[derive(Debug, Default)]
pub(crate) enum Members<'a> {
    #[default]
    Absent,
    Object(Vec<(Cow<'a, str>, Scalar<'a>)>),
    NotAnObject(&'static str),
}

/// One wide object, borrowed from the input; types are checked when applied.
#[derive(Debug, Default)]
pub(crate) struct WideRaw<'a> {
    pub(crate) vehicle_id: Option<Scalar<'a>>,
    pub(crate) ts: Option<Scalar<'a>>,
    pub(crate) fleet: Option<Scalar<'a>>,
    pub(crate) attributes: Members<'a>,
    pub(crate) signals: Members<'a>,
}

impl WideRaw<'_> {
    pub(crate) fn apply(self, builder: &mut RecordBuilder<'_>) {
        if let Some(value) = self.vehicle_id {
            builder.set_vehicle_id(VEHICLE_ID_FIELD, value);
        }
        if let Some(value) = self.ts {
            builder.set_time(TIME_FIELD, value);
        }
        if let Some(value) = self.fleet {
            builder.set_fleet("fleet", value);
        }
        match self.attributes {
            Members::Absent => {}
            Members::Object(members) => {
                for (name, value) in members {
                    builder.add_attribute(|| format!("attributes.{name}"), &name, value);
                }
            }
            Members::NotAnObject(kind) => builder.add_issue(FieldIssue::new(
                "attributes",
                format!("expected an object, got {kind}"),
            )),
        }
        match self.signals {
            Members::Absent => {}
            Members::Object(members) => {
                builder.reserve_signals(members.len());
                for (name, value) in members {
                    builder.add_signal(|| format!("signals.{name}"), &name, value);
                }
            }
            Members::NotAnObject(kind) => builder.fail_with(RecordErrorKind::InvalidField(
                FieldIssue::new("signals", format!("expected an object, got {kind}")),
            )),
        }
    }
}

impl<'de> Deserialize<'de> for WideRaw<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_map(WideVisitor)
    }
}

struct WideVisitor;

impl<'de> Visitor<'de> for WideVisitor {
    type Value = WideRaw<'de>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a wide telemetry object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<WideRaw<'de>, A::Error> {
        let mut raw = WideRaw::default();
        while let Some(Key(key)) = map.next_key::<Key<'de>>()? {
            match key.as_ref() {
                VEHICLE_ID_FIELD => raw.vehicle_id = Some(map.next_value()?),
                TIME_FIELD => raw.ts = Some(map.next_value()?),
                "fleet" => raw.fleet = Some(map.next_value()?),
                "attributes" => raw.attributes = map.next_value()?,
                "signals" => raw.signals = map.next_value()?,
                _ => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(raw)
    }
}

impl<'de> Deserialize<'de> for Members<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(MembersVisitor)
    }
}

struct MembersVisitor;

impl<'de> Visitor<'de> for MembersVisitor {
    type Value = Members<'de>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Members<'de>, A::Error> {
        let mut members = Vec::with_capacity(map.size_hint().unwrap_or(16));
        while let Some(Key(name)) = map.next_key::<Key<'de>>()? {
            members.push((name, map.next_value::<Scalar<'de>>()?));
        }
        Ok(Members::Object(members))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Members<'de>, A::Error> {
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok(Members::NotAnObject("array"))
    }
    fn visit_unit<E>(self) -> Result<Members<'de>, E> {
        Ok(Members::Absent)
    }
    fn visit_bool<E>(self, _: bool) -> Result<Members<'de>, E> {
        Ok(Members::NotAnObject("boolean"))
    }
    fn visit_i64<E>(self, _: i64) -> Result<Members<'de>, E> {
        Ok(Members::NotAnObject("number"))
    }
    fn visit_u64<E>(self, _: u64) -> Result<Members<'de>, E> {
        Ok(Members::NotAnObject("number"))
    }
    fn visit_f64<E>(self, _: f64) -> Result<Members<'de>, E> {
        Ok(Members::NotAnObject("number"))
    }
    fn visit_str<E>(self, _: &str) -> Result<Members<'de>, E> {
        Ok(Members::NotAnObject("string"))
    }
}
