//! Values of the IoT Events expression language.

use std::fmt;

/// A runtime value. `Undefined` is what a reference to missing data yields (`$input.x.nope`);
/// it differs from JSON `null` (`isNull` vs `isUndefined`).
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub enum Value {
    /// A whole number.
    Integer(i64),
    /// A number with a fraction (or from a decimal literal).
    Decimal(f64),
    /// Text.
    String(String),
    /// True or false.
    Boolean(bool),
    /// JSON null.
    Null,
    /// Missing data, or the result of an operation on incompatible operands.
    Undefined,
}

impl Value {
    /// The value as a number, if it is one.
    pub fn as_f64(&self) -> Option<f64> {
        match self {
            Value::Integer(i) => Some(*i as f64),
            Value::Decimal(d) => Some(*d),
            _ => None,
        }
    }

    /// True only for `Boolean(true)`: conditions that are not Boolean count as false.
    pub fn is_true(&self) -> bool {
        matches!(self, Value::Boolean(true))
    }

    /// Converts a JSON value (from an input message).
    pub fn from_json(value: &serde_json::Value) -> Value {
        match value {
            serde_json::Value::Null => Value::Null,
            serde_json::Value::Bool(b) => Value::Boolean(*b),
            serde_json::Value::Number(n) => match n.as_i64() {
                Some(i) => Value::Integer(i),
                None => n.as_f64().map_or(Value::Undefined, Value::Decimal),
            },
            serde_json::Value::String(s) => Value::String(s.clone()),
            // Objects and arrays are reached through paths, not used as values.
            _ => Value::Undefined,
        }
    }

    /// The value as JSON (for payloads); undefined becomes null.
    pub fn to_json(&self) -> serde_json::Value {
        match self {
            Value::Integer(i) => serde_json::Value::from(*i),
            Value::Decimal(d) => serde_json::Number::from_f64(*d)
                .map_or(serde_json::Value::Null, serde_json::Value::Number),
            Value::String(s) => serde_json::Value::String(s.clone()),
            Value::Boolean(b) => serde_json::Value::Bool(*b),
            Value::Null | Value::Undefined => serde_json::Value::Null,
        }
    }

    /// Type name for messages and `convert`.
    pub fn type_name(&self) -> &'static str {
        match self {
            Value::Integer(_) => "Integer",
            Value::Decimal(_) => "Decimal",
            Value::String(_) => "String",
            Value::Boolean(_) => "Boolean",
            Value::Null => "null",
            Value::Undefined => "undefined",
        }
    }
}

impl fmt::Display for Value {
    /// The text a value takes in `${…}` templates and `convert(String, …)`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Value::Integer(i) => write!(f, "{i}"),
            Value::Decimal(d) => write!(f, "{d}"),
            Value::String(s) => f.write_str(s),
            Value::Boolean(b) => write!(f, "{b}"),
            Value::Null => f.write_str("null"),
            Value::Undefined => f.write_str("undefined"),
        }
    }
}
