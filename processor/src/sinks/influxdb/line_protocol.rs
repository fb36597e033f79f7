//! Encoding [`SeriesPoint`]s as InfluxDB line protocol (`measurement,tag=v field=1.5,n=3i 1700000000000`),
//! with the escaping rules of the InfluxDB documentation, at millisecond precision.

use std::fmt::Write;

use crate::sinks::series::{FieldValue, SeriesPoint};

/// Appends one line (with its trailing newline) for `point`; the version becomes the integer
/// field `version`. A point with no fields gets `version` alone, so every line is valid.
pub fn encode_line(point: &SeriesPoint, out: &mut String) {
    escape(&point.measurement, &[',', ' '], out);
    for (name, value) in &point.dimensions {
        out.push(',');
        escape(name, &[',', '=', ' '], out);
        out.push('=');
        escape(value, &[',', '=', ' '], out);
    }
    out.push(' ');
    for (name, value) in &point.fields {
        escape(name, &[',', '=', ' '], out);
        out.push('=');
        match value {
            FieldValue::Double(v) => {
                let _ = write!(out, "{v:?}");
            }
            FieldValue::BigInt(v) => {
                let _ = write!(out, "{v}i");
            }
            FieldValue::Boolean(v) => out.push_str(if *v { "true" } else { "false" }),
            FieldValue::Text(text) => {
                out.push('"');
                for c in text.chars() {
                    match c {
                        '"' => out.push_str("\\\""),
                        '\\' => out.push_str("\\\\"),
                        '\n' => out.push_str("\\n"),
                        '\r' => {}
                        c => out.push(c),
                    }
                }
                out.push('"');
            }
        }
        out.push(',');
    }
    let _ = write!(out, "version={}i {}", point.version, point.time_ms);
    out.push('\n');
}

/// Escapes `special` characters and backslashes with a backslash; newlines become `\n` text
/// (line protocol cannot carry them in names or tags).
fn escape(text: &str, special: &[char], out: &mut String) {
    for c in text.chars() {
        if c == '\n' {
            out.push_str("\\n");
            continue;
        }
        if special.contains(&c) {
            out.push('\\');
        }
        out.push(c);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn point() -> SeriesPoint {
        SeriesPoint {
            measurement: "signal 1m,x".to_owned(),
            dimensions: vec![
                ("signal".to_owned(), "speed_kmh".to_owned()),
                ("vehicle".to_owned(), "veh 1,a=b".to_owned()),
            ],
            time_ms: 1_700_000_000_000,
            version: 3,
            fields: vec![
                ("count".into(), FieldValue::BigInt(12)),
                ("mean".into(), FieldValue::Double(50.0)),
                ("is_final".into(), FieldValue::Boolean(true)),
                (
                    "explanation".into(),
                    FieldValue::Text("{\"a\":\"b\\c\"}\nx".to_owned()),
                ),
            ],
        }
    }

    #[test]
    fn escapes_names_tags_and_strings() {
        let mut line = String::new();
        encode_line(&point(), &mut line);
        assert_eq!(
            line,
            "signal\\ 1m\\,x,signal=speed_kmh,vehicle=veh\\ 1\\,a\\=b \
             count=12i,mean=50.0,is_final=true,explanation=\"{\\\"a\\\":\\\"b\\\\c\\\"}\\nx\",\
             version=3i 1700000000000\n"
        );
    }

    #[test]
    fn doubles_round_trip() {
        let mut p = point();
        p.measurement = "m".to_owned();
        p.dimensions.clear();
        p.fields = vec![("v".into(), FieldValue::Double(0.1 + 0.2))];
        let mut line = String::new();
        encode_line(&p, &mut line);
        let text = line.split(' ').nth(1).expect("fields");
        let value: f64 = text
            .trim_start_matches("v=")
            .split(',')
            .next()
            .expect("value")
            .parse()
            .expect("float");
        assert_eq!(value, 0.1 + 0.2);
    }
}
