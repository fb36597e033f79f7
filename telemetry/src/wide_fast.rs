//! A specialised single-pass parser for the common shape of wide records (string keys, scalar
//! values, flat `attributes`/`signals` objects, no escapes). It accepts a strict subset of JSON
//! and returns `None` for anything else — escapes, nested values, unknown top-level fields,
//! invalid input — so the serde-based parser in [`crate::wide`] handles those and produces the
//! error messages. Both make the same builder calls, so accepted records decode identically.

use std::borrow::Cow;

use crate::attributes::ObjectMembers;
use crate::builder::RecordBuilder;
use crate::scalar::Scalar;
use crate::scan::Scanner as Cursor;
use crate::text::same_bytes;
use crate::wide::{TIME_FIELD, VEHICLE_ID_FIELD};

/// 10⁰ … 10²², every one exactly representable as a double.
const POWERS_OF_TEN: [f64; 23] = [
    1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15, 1e16,
    1e17, 1e18, 1e19, 1e20, 1e21, 1e22,
];

/// A JSON number as parsed: sixteen bytes, so it comes back in registers (a [`Scalar`] is
/// returned through memory, then read back on the hot path).
#[derive(Debug, Clone, Copy, PartialEq)]
enum Number {
    Int(i64),
    UInt(u64),
    Float(f64),
}

#[cfg(test)]
impl Number {
    /// The value as a signal takes it: integers rounded to the nearest double, as
    /// `RecordBuilder::add_signal` does with a [`Scalar`] ([`Cursor::signal_value`] must read
    /// every number this way).
    fn as_f64(self) -> f64 {
        match self {
            Number::Int(int) => int as f64,
            Number::UInt(int) => int as f64,
            Number::Float(float) => float,
        }
    }
}

impl From<Number> for Scalar<'_> {
    fn from(number: Number) -> Self {
        match number {
            Number::Int(int) => Scalar::Int(int.into()),
            Number::UInt(int) => Scalar::Int(int.into()),
            Number::Float(float) => Scalar::Float(float),
        }
    }
}

/// The value of `bytes` when all eight are ASCII digits (first digit most significant).
#[inline(always)]
fn eight_digits(bytes: &[u8]) -> Option<u64> {
    let word = u64::from_le_bytes(bytes.try_into().ok()?);
    // Each byte minus '0' is below 10 exactly when adding 0x76 leaves its top bit clear, and
    // no byte of a digit borrows or carries into the next.
    let digits = word.wrapping_sub(0x3030_3030_3030_3030);
    let not_digit = (digits | digits.wrapping_add(0x7676_7676_7676_7676)) & 0x8080_8080_8080_8080;
    if not_digit != 0 {
        return None;
    }
    let pairs = (digits.wrapping_mul(10 << 8 | 1) >> 8) & 0x00FF_00FF_00FF_00FF;
    let quads = (pairs.wrapping_mul(100 << 16 | 1) >> 16) & 0x0000_FFFF_0000_FFFF;
    Some(quads.wrapping_mul(10_000 << 32 | 1) >> 32)
}

/// A number as [`Cursor::scan_number`] found it: where it lies, its sign, and its digits
/// without the point (the mantissa wraps past 19 digits).
#[derive(Debug, Clone, Copy)]
struct ScannedNumber {
    start: usize,
    end: usize,
    negative: bool,
    mantissa: u64,
    int_digits: usize,
    fraction_digits: usize,
    exponent: bool,
}

impl ScannedNumber {
    /// The value, when one division gives it exactly rounded: no exponent, and either an
    /// integer of at most 18 digits (its mantissa is exact, and one conversion rounds it) or a
    /// decimal of at most 19 digits, 15 of them significant (Clinger's fast path: mantissa and
    /// power of ten are both exact doubles). A negative zero stays negative.
    #[inline(always)]
    fn exact_value(&self) -> Option<f64> {
        let exact = !self.exponent
            && if self.fraction_digits == 0 {
                self.int_digits <= 18
            } else {
                self.int_digits + self.fraction_digits <= 19
                    && self.mantissa < 1_000_000_000_000_000
            };
        if !exact {
            return None;
        }
        // Below 10¹⁸ here, so the mantissa converts as a signed integer: one instruction,
        // where an unsigned one takes four.
        let magnitude = self.mantissa as i64 as f64 / POWERS_OF_TEN[self.fraction_digits];
        Some(if self.negative { -magnitude } else { magnitude })
    }
}

/// A top-level scalar as the fast path reads it: small and free of the 16-byte alignment of a
/// [`Scalar`], which the compiler copies with wide loads that stall on the narrow stores just
/// made.
#[derive(Debug, Clone, Copy)]
enum TopValue<'a> {
    Text(&'a str),
    Number(Number),
    Bool(bool),
    Null,
}

impl<'a> TopValue<'a> {
    fn scalar(self) -> Scalar<'a> {
        match self {
            TopValue::Text(text) => Scalar::Str(Cow::Borrowed(text)),
            TopValue::Number(number) => number.into(),
            TopValue::Bool(flag) => Scalar::Bool(flag),
            TopValue::Null => Scalar::Null,
        }
    }
}

/// The top-level fields the fast path reads.
#[derive(Debug, Clone, Copy, PartialEq)]
enum TopField {
    VehicleId,
    Time,
    Fleet,
    Signals,
    Attributes,
}

/// Each top-level field as it opens in the usual layout (quoted name and colon), in the
/// usual order: when the input follows it, a field is recognised by one comparison.
const USUAL_FIELDS: [(&[u8], TopField); 5] = [
    (b"\"vehicle_id\":", TopField::VehicleId),
    (b"\"fleet\":", TopField::Fleet),
    (b"\"ts\":", TopField::Time),
    (b"\"attributes\":", TopField::Attributes),
    (b"\"signals\":", TopField::Signals),
];

impl TopField {
    /// The field named `key` (the name inside a [`USUAL_FIELDS`] opening); `None` for a field
    /// the fast path does not read.
    fn named(key: &str) -> Option<Self> {
        USUAL_FIELDS
            .iter()
            .find(|(opening, _)| opening.get(1..opening.len() - 2) == Some(key.as_bytes()))
            .map(|(_, field)| *field)
    }
}

/// What the wide-record parser reads beyond the scanner's whitespace and strings.
impl<'a> Cursor<'a> {
    /// The field at the cursor when it is the `*next` of [`USUAL_FIELDS`], written as usual
    /// (no whitespace inside); the cursor then stands after its colon and `*next` moves on.
    #[inline]
    fn expected_field(&mut self, next: &mut usize) -> Option<TopField> {
        let (opening, field) = USUAL_FIELDS.get(*next)?;
        self.skip_whitespace();
        // Compared as words: the opening's length is not known at compile time, so `starts_with`
        // would call `memcmp`, once per field of every record.
        if !same_bytes(self.bytes.get(self.at..self.at + opening.len())?, opening) {
            return None;
        }
        self.at += opening.len();
        *next += 1;
        Some(*field)
    }

    /// The end of the run of digits from `at`, and `mantissa` with them appended (wrapping).
    #[inline(always)]
    fn digits(&self, mut at: usize, mut mantissa: u64) -> (usize, u64) {
        while let Some(digit) = self.bytes.get(at).map(|byte| byte.wrapping_sub(b'0')) {
            if digit >= 10 {
                break;
            }
            mantissa = mantissa.wrapping_mul(10).wrapping_add(u64::from(digit));
            at += 1;
        }
        (at, mantissa)
    }

    /// The JSON number at the cursor (strict grammar), scanned up to its end, which the cursor
    /// then stands after. With `LONG_INTEGER`, eight digits are first tried at once, which pays
    /// for numbers with a long integer part (epoch milliseconds have 13 digits) and is wasted
    /// work for the short ones of signal values.
    #[inline(always)]
    fn scan_number<const LONG_INTEGER: bool>(&mut self) -> Option<ScannedNumber> {
        let start = self.at;
        let mut end = start;
        let negative = self.bytes.get(end) == Some(&b'-');
        if negative {
            end += 1;
        }
        // Digits accumulate with wrapping arithmetic: the mantissa is only used when there are
        // at most 19 digits in all, which always fit a u64.
        let digits_start = end;
        let mut mantissa: u64 = 0;
        if LONG_INTEGER {
            if let Some(value) = self.bytes.get(end..end + 8).and_then(eight_digits) {
                mantissa = value;
                end += 8;
            }
        }
        (end, mantissa) = self.digits(end, mantissa);
        let int_digits = end - digits_start;
        if int_digits == 0 || (int_digits > 1 && self.bytes[digits_start] == b'0') {
            return None;
        }
        let mut fraction_digits = 0;
        if self.bytes.get(end) == Some(&b'.') {
            let fraction_start = end + 1;
            (end, mantissa) = self.digits(fraction_start, mantissa);
            fraction_digits = end - fraction_start;
            if fraction_digits == 0 {
                return None;
            }
        }
        let mut exponent = false;
        if let Some(b'e' | b'E') = self.bytes.get(end) {
            exponent = true;
            end += 1;
            if let Some(b'+' | b'-') = self.bytes.get(end) {
                end += 1;
            }
            let exponent_start = end;
            while matches!(self.bytes.get(end), Some(b'0'..=b'9')) {
                end += 1;
            }
            if end == exponent_start {
                return None;
            }
        }
        self.at = end;
        Some(ScannedNumber {
            start,
            end,
            negative,
            mantissa,
            int_digits,
            fraction_digits,
            exponent,
        })
    }

    /// A JSON number (strict grammar); integers that fit are kept exact, decimals as
    /// [`ScannedNumber::exact_value`] or the standard library's correctly rounded parser read
    /// them.
    #[inline]
    fn number(&mut self) -> Option<Number> {
        let scanned = self.scan_number::<true>()?;
        if scanned.fraction_digits == 0 && !scanned.exponent {
            if scanned.negative && scanned.mantissa == 0 {
                return Some(Number::Float(-0.0));
            }
            if scanned.int_digits <= 18 {
                // At most 18 digits: the accumulated mantissa is exact and fits an i64.
                let value = scanned.mantissa as i64;
                return Some(Number::Int(if scanned.negative { -value } else { value }));
            }
            let text = self.text.get(scanned.start..scanned.end)?;
            if let Ok(value) = text.parse::<i64>() {
                return Some(Number::Int(value));
            }
            if let Ok(value) = text.parse::<u64>() {
                return Some(Number::UInt(value));
            }
        }
        scanned
            .exact_value()
            .or_else(|| self.parsed_float(&scanned))
            .map(Number::Float)
    }

    /// A signal's value: the number [`Self::number`] reads, integers rounded to the nearest
    /// double, without the integer/decimal distinction (a branch per value that the mix of both
    /// in telemetry makes hard to predict).
    #[inline]
    fn signal_value(&mut self) -> Option<f64> {
        let scanned = self.scan_number::<false>()?;
        scanned
            .exact_value()
            .or_else(|| self.parsed_float(&scanned))
    }

    /// The scanned number through the standard library's correctly rounded parser; `None` when
    /// it is out of the range of a double.
    #[cold]
    fn parsed_float(&self, scanned: &ScannedNumber) -> Option<f64> {
        let value = self
            .text
            .get(scanned.start..scanned.end)?
            .parse::<f64>()
            .ok()?;
        value.is_finite().then_some(value)
    }

    /// A scalar value; `None` for objects, arrays and anything invalid.
    #[inline]
    fn scalar(&mut self) -> Option<Scalar<'a>> {
        self.skip_whitespace();
        match self.peek()? {
            b'"' => self.string().map(|text| Scalar::Str(Cow::Borrowed(text))),
            b'-' | b'0'..=b'9' => self.number().map(Scalar::from),
            b't' => self.literal(b"true", Scalar::Bool(true)),
            b'f' => self.literal(b"false", Scalar::Bool(false)),
            b'n' => self.literal(b"null", Scalar::Null),
            _ => None,
        }
    }

    /// A top-level scalar, kept as a [`TopValue`] until the record is complete.
    #[inline]
    fn top_value(&mut self) -> Option<TopValue<'a>> {
        self.skip_whitespace();
        match self.peek()? {
            b'"' => self.string().map(TopValue::Text),
            b'-' | b'0'..=b'9' => self.number().map(TopValue::Number),
            b't' => self.literal(b"true", TopValue::Bool(true)),
            b'f' => self.literal(b"false", TopValue::Bool(false)),
            b'n' => self.literal(b"null", TopValue::Null),
            _ => None,
        }
    }

    fn literal<T>(&mut self, word: &[u8], value: T) -> Option<T> {
        self.bytes[self.at..].starts_with(word).then(|| {
            self.at += word.len();
            value
        })
    }

    /// A flat object of scalars (or `null`): `read` reads each member's value after its name.
    fn members(&mut self, mut read: impl FnMut(&mut Self, &'a str) -> Option<()>) -> Option<()> {
        self.skip_whitespace();
        if self.peek()? == b'n' {
            return self.literal(b"null", Scalar::Null).map(|_| ());
        }
        self.eat(b'{')?;
        self.skip_whitespace();
        if self.peek()? == b'}' {
            self.at += 1;
            return Some(());
        }
        loop {
            let name = self.string()?;
            self.eat(b':')?;
            read(self, name)?;
            if !self.after_member()? {
                return Some(());
            }
        }
    }
}

/// Parses the wide object at the start of `text` (already validated UTF-8) straight into
/// `builder` and returns the bytes it spans, or `None` when the serde parser must decide (the
/// builder is then partly filled and must be discarded). A top-level field that repeats is left to
/// serde, so the result always equals [`WideRaw::apply`] of the serde parse.
pub(crate) fn parse_wide_fast(text: &str, builder: &mut RecordBuilder<'_>) -> Option<usize> {
    let mut cursor = Cursor::new(text);
    cursor.eat(b'{')?;
    builder.reserve_signals(12);
    let (mut vehicle_id, mut time, mut fleet) = (None, None, None);
    let mut seen = [false; 5];
    let mut first_time = |slot: usize| !std::mem::replace(&mut seen[slot], true);
    cursor.skip_whitespace();
    let mut expected = 0;
    let end = if cursor.peek()? == b'}' {
        cursor.at + 1
    } else {
        loop {
            let field = match cursor.expected_field(&mut expected) {
                Some(field) => field,
                None => {
                    let key = cursor.string()?;
                    cursor.eat(b':')?;
                    TopField::named(key)?
                }
            };
            match field {
                TopField::VehicleId if first_time(0) => vehicle_id = Some(cursor.top_value()?),
                TopField::Time if first_time(1) => time = Some(cursor.top_value()?),
                TopField::Fleet if first_time(2) => fleet = Some(cursor.top_value()?),
                TopField::Signals if first_time(3) => cursor.members(|cursor, name| {
                    let field = || format!("signals.{name}");
                    let number = |byte| matches!(byte, b'-' | b'0'..=b'9');
                    if number(cursor.peek_expecting(number)?) {
                        builder.add_signal_number(field, name, cursor.signal_value()?);
                    } else {
                        builder.add_signal(field, name, cursor.scalar()?);
                    }
                    Some(())
                })?,
                TopField::Attributes if first_time(4) => {
                    cursor.skip_whitespace();
                    let rest = cursor.text.get(cursor.at..)?;
                    match ObjectMembers::plain(rest) {
                        Some(len) => {
                            builder.set_attributes_object(rest.get(..len)?);
                            cursor.at += len;
                        }
                        None => cursor.members(|cursor, name| {
                            cursor.skip_whitespace();
                            if cursor.peek()? == b'"' {
                                builder.add_attribute_text(name, cursor.string()?);
                            } else {
                                let value = cursor.scalar()?;
                                builder.add_attribute(|| format!("attributes.{name}"), name, value);
                            }
                            Some(())
                        })?,
                    }
                }
                _ => return None,
            }
            if !cursor.after_member()? {
                break cursor.at;
            }
        }
    };
    // In the order and with the calls of `WideRaw::apply`.
    if let Some(value) = vehicle_id {
        builder.set_vehicle_id(VEHICLE_ID_FIELD, value.scalar());
    }
    if let Some(value) = time {
        builder.set_time(TIME_FIELD, value.scalar());
    }
    if let Some(value) = fleet {
        builder.set_fleet("fleet", value.scalar());
    }
    Some(end)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::options::DecodeOptions;
    use crate::wide::WideRaw;
    use proptest::prelude::*;

    fn fast(text: &str) -> Option<String> {
        let options = DecodeOptions::default();
        let mut builder = RecordBuilder::new(&options);
        let used = parse_wide_fast(text, &mut builder)?;
        assert_eq!(used, text.len());
        Some(format!("{:?}", builder.finish("vehicle_id", "ts")))
    }

    fn serde(text: &str) -> Option<String> {
        let options = DecodeOptions::default();
        let mut builder = RecordBuilder::new(&options);
        serde_json::from_str::<WideRaw<'_>>(text)
            .ok()?
            .apply(&mut builder);
        Some(format!("{:?}", builder.finish("vehicle_id", "ts")))
    }

    #[test]
    fn accepts_the_common_shape() {
        let text = r#"{"vehicle_id":"veh-1","fleet":"f","ts":1767225600000,"attributes":{"model":"e-van"},"signals":{"a":42.1,"b":-3,"c":1e3,"d":true,"e":null,"f":"x"}}"#;
        assert!(fast(text).is_some());
        assert_eq!(fast(text), serde(text));
    }

    #[test]
    fn eight_digits_are_read_only_when_all_eight_are_digits() {
        assert_eq!(eight_digits(b"12345678"), Some(12_345_678));
        assert_eq!(eight_digits(b"00000000"), Some(0));
        assert_eq!(eight_digits(b"99999999"), Some(99_999_999));
        assert_eq!(eight_digits(b"1234567"), None, "too short");
        for position in 0..8 {
            for byte in 0..=255u8 {
                let mut bytes = *b"17672256";
                bytes[position] = byte;
                let expected = bytes
                    .iter()
                    .all(u8::is_ascii_digit)
                    .then(|| std::str::from_utf8(&bytes).unwrap().parse::<u64>().unwrap());
                assert_eq!(eight_digits(&bytes), expected, "{bytes:?}");
            }
        }
    }

    #[test]
    fn numbers_match_the_standard_parser() {
        for text in [
            "0",
            "-0",
            "0.1",
            "42.125",
            "-3.75",
            "123456789012345",
            "0.000001",
            "1.7976931348623157",
            "12345678901234567890",
            "-9223372036854775808",
            "9007199254740993",
            "1.5e3",
            "2E-2",
            "0.1000000000000000055511151231257827",
            "0.00000000000000000001234",
            "123456789012345.5",
            "1234567890123456.5",
            "99999999999999999999.25",
            "999999999999999",
            "0.999999999999999",
            "1000000000000000.0",
        ] {
            let mut cursor = Cursor::new(text);
            let parsed = Scalar::from(cursor.number().unwrap());
            let expected = serde_json::from_str::<Scalar<'_>>(text).unwrap();
            assert_eq!(parsed, expected, "{text}");
        }
    }

    #[test]
    fn attributes_in_every_shape_read_as_serde_reads_them() {
        for attributes in [
            r#"{"model":"e-van","vin":"FS0001"}"#,
            r#"{ "model" : "e-van" , "vin" : "FS0001" }"#,
            r#"{"model":"e-van","doors":5,"electric":true,"trim":null}"#,
            r#"{"vin":"X","model":"van","vin":"Y"}"#,
            r#"{}"#,
            "null",
        ] {
            let text = format!(
                r#"{{"vehicle_id":"v","ts":1767225600000,"attributes":{attributes},"signals":{{"a":1}}}}"#
            );
            assert!(fast(&text).is_some(), "{text}");
            assert_eq!(fast(&text), serde(&text), "{text}");
        }
        let options = DecodeOptions::default();
        let mut builder = RecordBuilder::new(&options);
        let text = r#"{"vehicle_id":"v","ts":1767225600000,"attributes":{"model":"e-van","vin":"FS1"},"signals":{"a":1}}"#;
        parse_wide_fast(text, &mut builder).unwrap();
        let record = builder.finish("vehicle_id", "ts").unwrap().record;
        assert_eq!(record.attribute("vin"), Some("FS1"));
        assert_eq!(record.attribute("model"), Some("e-van"));
        assert_eq!(record.attributes.len(), 2);
    }

    #[test]
    fn declines_what_it_does_not_handle() {
        for text in [
            r#"{"vehicle_id":"v\"1","ts":1}"#,
            r#"{"vehicle_id":"v","extra":1}"#,
            r#"{"vehicle_id":"v","vehicle_id":"w"}"#,
            r#"{"signals":{"a":{"b":1}}}"#,
            r#"{"signals":{"a":01}}"#,
            r#"{"signals":{"a":1e999}}"#,
            r#"{"signals":{"a":NaN}}"#,
            r#"{"signals":{"a":1,}}"#,
            r#"{"vehicle_id":"v""#,
            r#"{"attributes":{"a":"x"{"b":"y"},"signals":{"s":1}}"#,
        ] {
            assert!(fast(text).is_none(), "{text}");
        }
    }

    proptest! {
        #[test]
        fn numbers_of_any_length_read_as_serde_reads_them(
            text in prop_oneof![
                "-?(0|[1-9][0-9]{0,22})(\\.[0-9]{1,22})?([eE][+-]?[0-9]{1,3})?",
                // Integers around the i64 and u64 limits, where the exact paths end.
                "-?[1-9][0-9]{17,20}",
                any::<i64>().prop_map(|int| int.to_string()),
                any::<u64>().prop_map(|int| int.to_string()),
            ],
            after in "[,} ]?",
        ) {
            let expected = serde_json::from_str::<Scalar<'_>>(&text).ok();
            let input = format!("{text}{after}");
            let mut cursor = Cursor::new(&input);
            let parsed = cursor.number().map(Scalar::from);
            if parsed.is_some() {
                prop_assert_eq!(cursor.at, text.len(), "the number ends where it should");
            }
            // Exponents out of range are rejected by both.
            prop_assert_eq!(parsed, expected, "{}", input);
            let as_signal = Cursor::new(&input).signal_value().map(f64::to_bits);
            let number = Cursor::new(&input).number().map(|number| number.as_f64().to_bits());
            prop_assert_eq!(as_signal, number, "a signal reads {} as the number it is", input);
        }

        #[test]
        fn fields_in_any_order_and_spacing_read_as_serde_reads_them(
            order in Just((0..5usize).collect::<Vec<_>>()).prop_shuffle(),
            spaced in proptest::collection::vec(proptest::bool::ANY, 5),
            repeated in proptest::option::of(0..5usize),
        ) {
            let fields = [
                r#""vehicle_id":"veh-7""#,
                r#""fleet":"north""#,
                r#""ts":1767225600000"#,
                r#""attributes":{"model":"e-van"}"#,
                r#""signals":{"speed_kmh":12.5,"soc":80}"#,
            ];
            let mut members: Vec<String> = order
                .iter()
                .zip(&spaced)
                .map(|(field, spaced)| {
                    if *spaced {
                        // Whitespace inside the opening leaves it to the general path.
                        fields[*field].replacen("\":", "\" :", 1)
                    } else {
                        fields[*field].to_owned()
                    }
                })
                .collect();
            if let Some(field) = repeated {
                members.push(fields[field].to_owned());
            }
            let text = format!("{{{}}}", members.join(","));
            let decoded = fast(&text);
            if repeated.is_some() {
                prop_assert!(decoded.is_none(), "a repeated field is left to serde: {}", text);
            } else {
                prop_assert!(decoded.is_some(), "{}", text);
                prop_assert_eq!(decoded, serde(&text));
            }
        }

        #[test]
        fn whitespace_between_any_tokens_reads_as_serde_reads_it(
            gaps in proptest::collection::vec(
                proptest::sample::select(vec!["", "", " ", "\n", "\t ", "\r\n  "]),
                40,
            ),
        ) {
            // The scanner expects compact JSON and looks for whitespace only where the byte it
            // expects is not next: every gap must still read as serde reads it.
            let tokens = [
                "{", r#""vehicle_id""#, ":", r#""veh-7""#, ",", r#""attributes""#, ":", "{",
                r#""model""#, ":", r#""e-van""#, ",", r#""vin""#, ":", r#""V1""#, "}", ",",
                r#""ts""#, ":", "1767225600000", ",", r#""signals""#, ":", "{", r#""speed_kmh""#,
                ":", "12.5", ",", r#""soc""#, ":", "80", ",", r#""on""#, ":", "true", "}", "}",
            ];
            let mut text = String::new();
            for (index, (token, gap)) in tokens.iter().zip(&gaps).enumerate() {
                text.push_str(token);
                if index + 1 < tokens.len() {
                    text.push_str(gap);
                }
            }
            let decoded = fast(&text);
            prop_assert!(decoded.is_some(), "{:?}", text);
            prop_assert_eq!(decoded, serde(&text), "{:?}", text);
        }

        #[test]
        fn whatever_it_accepts_serde_reads_the_same(
            id in "[a-z0-9\\-é]{0,8}",
            ts in proptest::num::i64::ANY,
            values in proptest::collection::vec((-1e13f64..1e13, "[a-z_]{1,3}"), 0..6),
            rounded in proptest::collection::vec((-100_000i64..100_000, 0u32..6), 0..4),
            big in proptest::num::i64::ANY,
            flag in proptest::bool::ANY,
        ) {
            let mut signals: Vec<String> = values.iter().map(|(v, k)| format!("\"{k}\":{v}")).collect();
            for (index, (units, decimals)) in rounded.iter().enumerate() {
                let value = *units as f64 / 10f64.powi(*decimals as i32);
                signals.push(format!("\"r{index}\":{value:.prec$}", prec = *decimals as usize));
            }
            let text = format!(
                r#"{{ "vehicle_id" : "{id}", "ts":{ts},"signals":{{{}, "big": {big}, "flag": {flag} }} }}"#,
                signals.join(",")
            ).replace("{, ", "{");
            if let Some(decoded) = fast(&text) {
                prop_assert_eq!(Some(decoded), serde(&text));
            }
        }
    }
}
