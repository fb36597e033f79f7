//! The threshold condition language: `signal op number [for duration]`.
//!
//! Examples: `coolant_temp_c > 110 for 2m`, `battery_voltage <= 11.8 for 30s`,
//! ``` `Vehicle.Speed` >= 130 ```. Signal names are `[A-Za-z_][A-Za-z0-9_.]*` or any text in
//! backticks; operators `> >= < <= == !=`; durations are sums of `<number><unit>` with units
//! `ms s m h d` (`1m30s`). Parse errors point at the position with a caret.

use std::fmt;

use serde::{Deserialize, Serialize};

/// Comparison operator of a condition.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Comparison {
    /// `>`
    Greater,
    /// `>=`
    GreaterOrEqual,
    /// `<`
    Less,
    /// `<=`
    LessOrEqual,
    /// `==`
    Equal,
    /// `!=`
    NotEqual,
}

impl Comparison {
    /// Applies the operator.
    pub fn holds(self, left: f64, right: f64) -> bool {
        match self {
            Comparison::Greater => left > right,
            Comparison::GreaterOrEqual => left >= right,
            Comparison::Less => left < right,
            Comparison::LessOrEqual => left <= right,
            Comparison::Equal => left == right,
            Comparison::NotEqual => left != right,
        }
    }

    /// The operator as written (`>=`).
    pub fn symbol(self) -> &'static str {
        match self {
            Comparison::Greater => ">",
            Comparison::GreaterOrEqual => ">=",
            Comparison::Less => "<",
            Comparison::LessOrEqual => "<=",
            Comparison::Equal => "==",
            Comparison::NotEqual => "!=",
        }
    }
}

/// A parsed condition: `signal op threshold`, held for at least `for_ms`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Condition {
    /// Signal the condition reads.
    pub signal: String,
    /// Operator.
    pub comparison: Comparison,
    /// Right-hand side.
    pub threshold: f64,
    /// How long (event time) the comparison must hold before the condition is met; 0 = at once.
    pub for_ms: i64,
}

impl Condition {
    /// True when `value` satisfies the comparison (ignoring duration).
    pub fn holds(&self, value: f64) -> bool {
        self.comparison.holds(value, self.threshold)
    }
}

impl fmt::Display for Condition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let plain = !self.signal.is_empty()
            && self
                .signal
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '.');
        if plain {
            write!(f, "{}", self.signal)?;
        } else {
            write!(f, "`{}`", self.signal)?;
        }
        write!(f, " {} {}", self.comparison.symbol(), self.threshold)?;
        if self.for_ms > 0 {
            write!(f, " for {}", format_duration(self.for_ms))?;
        }
        Ok(())
    }
}

/// Formats milliseconds as the shortest duration text the parser accepts (`2m`, `1m30s`, `250ms`).
pub fn format_duration(mut ms: i64) -> String {
    let mut text = String::new();
    for (unit, size) in [
        ("d", 86_400_000),
        ("h", 3_600_000),
        ("m", 60_000),
        ("s", 1_000),
        ("ms", 1),
    ] {
        if ms >= size {
            text.push_str(&format!("{}{unit}", ms / size));
            ms %= size;
        }
    }
    if text.is_empty() {
        text.push_str("0s");
    }
    text
}

/// A parse error with its position, rendered with a caret under the input.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message} at column {}\n  {input}\n  {caret}^", column + 1, caret = " ".repeat(*column))]
pub struct ParseError {
    /// What was expected or wrong.
    pub message: String,
    /// Zero-based character column.
    pub column: usize,
    /// The input text.
    pub input: String,
}

struct Cursor<'a> {
    input: &'a str,
    position: usize,
}

impl<'a> Cursor<'a> {
    fn rest(&self) -> &'a str {
        &self.input[self.position..]
    }

    fn skip_spaces(&mut self) {
        let trimmed = self.rest().trim_start();
        self.position = self.input.len() - trimmed.len();
    }

    fn error(&self, message: impl Into<String>) -> ParseError {
        ParseError {
            message: message.into(),
            column: self.input[..self.position].chars().count(),
            input: self.input.to_owned(),
        }
    }

    fn take_while(&mut self, keep: impl Fn(char) -> bool) -> &'a str {
        let rest = self.rest();
        let end = rest.find(|c: char| !keep(c)).unwrap_or(rest.len());
        self.position += end;
        &rest[..end]
    }
}

/// Parses a duration such as `90s`, `2m`, `1m30s`, `500ms`, `1h`.
pub fn parse_duration(text: &str) -> Result<i64, ParseError> {
    let mut cursor = Cursor {
        input: text,
        position: 0,
    };
    let ms = duration(&mut cursor)?;
    cursor.skip_spaces();
    if !cursor.rest().is_empty() {
        return Err(cursor.error("unexpected text after the duration"));
    }
    Ok(ms)
}

fn duration(cursor: &mut Cursor<'_>) -> Result<i64, ParseError> {
    cursor.skip_spaces();
    let mut total: i64 = 0;
    let mut parts = 0;
    loop {
        let digits = cursor.take_while(|c| c.is_ascii_digit());
        if digits.is_empty() {
            if parts == 0 {
                return Err(cursor.error("expected a duration such as 30s, 2m or 1h"));
            }
            return Ok(total);
        }
        let amount: i64 = digits
            .parse()
            .map_err(|_| cursor.error("duration number is too large"))?;
        let unit = cursor.take_while(|c| c.is_ascii_alphabetic());
        let size = match unit {
            "ms" => 1,
            "s" => 1_000,
            "m" => 60_000,
            "h" => 3_600_000,
            "d" => 86_400_000,
            "" => return Err(cursor.error("duration needs a unit: ms, s, m, h or d")),
            _ => {
                return Err(cursor.error(format!(
                    "unknown duration unit {unit:?} (use ms, s, m, h or d)"
                )))
            }
        };
        total = amount
            .checked_mul(size)
            .and_then(|part| total.checked_add(part))
            .ok_or_else(|| cursor.error("duration is too large"))?;
        parts += 1;
    }
}

/// Parses `signal op number [for duration]`.
pub fn parse_condition(text: &str) -> Result<Condition, ParseError> {
    let mut cursor = Cursor {
        input: text,
        position: 0,
    };
    cursor.skip_spaces();
    let signal = if cursor.rest().starts_with('`') {
        cursor.position += 1;
        let name = cursor.take_while(|c| c != '`');
        if !cursor.rest().starts_with('`') {
            return Err(cursor.error("missing closing backtick"));
        }
        cursor.position += 1;
        name.to_owned()
    } else {
        let first_ok = cursor
            .rest()
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_alphabetic() || c == '_');
        if !first_ok {
            return Err(cursor.error("expected a signal name"));
        }
        cursor
            .take_while(|c| c.is_ascii_alphanumeric() || c == '_' || c == '.')
            .to_owned()
    };
    if signal.is_empty() {
        return Err(cursor.error("signal name is empty"));
    }
    cursor.skip_spaces();
    let comparison = [
        (">=", Comparison::GreaterOrEqual),
        ("<=", Comparison::LessOrEqual),
        ("==", Comparison::Equal),
        ("!=", Comparison::NotEqual),
        (">", Comparison::Greater),
        ("<", Comparison::Less),
    ]
    .into_iter()
    .find(|(symbol, _)| cursor.rest().starts_with(symbol))
    .map(|(symbol, comparison)| {
        cursor.position += symbol.len();
        comparison
    })
    .ok_or_else(|| cursor.error("expected a comparison operator (> >= < <= == !=)"))?;
    cursor.skip_spaces();
    let number_text =
        cursor.take_while(|c| c.is_ascii_digit() || matches!(c, '.' | '-' | '+' | 'e' | 'E'));
    let threshold: f64 = match number_text.parse::<f64>() {
        Ok(value) if value.is_finite() => value,
        _ => {
            cursor.position -= number_text.len();
            return Err(cursor.error("expected a number"));
        }
    };
    cursor.skip_spaces();
    let mut for_ms = 0;
    if !cursor.rest().is_empty() {
        if !cursor.rest().starts_with("for") {
            return Err(cursor.error("expected `for <duration>` or the end of the condition"));
        }
        cursor.position += 3;
        for_ms = duration(&mut cursor)?;
        cursor.skip_spaces();
        if !cursor.rest().is_empty() {
            return Err(cursor.error("unexpected text after the condition"));
        }
    }
    Ok(Condition {
        signal,
        comparison,
        threshold,
        for_ms,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_conditions() {
        let condition = parse_condition("coolant_temp_c > 110 for 2m").unwrap();
        assert_eq!(condition.signal, "coolant_temp_c");
        assert_eq!(condition.comparison, Comparison::Greater);
        assert_eq!(condition.threshold, 110.0);
        assert_eq!(condition.for_ms, 120_000);
        assert_eq!(condition.to_string(), "coolant_temp_c > 110 for 2m");

        let quoted = parse_condition("`Vehicle Speed` >= -1.5e1").unwrap();
        assert_eq!(quoted.signal, "Vehicle Speed");
        assert_eq!(quoted.threshold, -15.0);
        assert_eq!(quoted.for_ms, 0);
        assert_eq!(quoted.to_string(), "`Vehicle Speed` >= -15");
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("1m30s"), Ok(90_000));
        assert_eq!(parse_duration("250ms"), Ok(250));
        assert_eq!(parse_duration("1h"), Ok(3_600_000));
        assert_eq!(format_duration(90_000), "1m30s");
        assert!(parse_duration("5").is_err());
        assert_eq!(parse_duration("1d"), Ok(86_400_000));
        assert!(parse_duration("5w").is_err());
    }

    #[test]
    fn errors_point_at_the_problem() {
        let error = parse_condition("coolant_temp_c > hot").unwrap_err();
        assert_eq!(error.column, 17);
        assert_eq!(
            error.to_string(),
            "expected a number at column 18\n  coolant_temp_c > hot\n                   ^"
        );
        let error = parse_condition("speed ~ 3").unwrap_err();
        assert!(error.message.contains("comparison operator"));
        assert_eq!(error.column, 6);
        let error = parse_condition("speed > 3 during 2m").unwrap_err();
        assert!(error.message.contains("for <duration>"));
        assert!(parse_condition("speed > 3 for 2x").is_err());
        assert!(parse_condition("> 3").is_err());
    }
}
