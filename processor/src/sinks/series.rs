//! The time-series layout shared by the Timestream and InfluxDB sinks, so both databases hold
//! the same rows: a [`SeriesPoint`] is what Timestream calls a multi-measure record and InfluxDB
//! a point.
//!
//! | output | measurement (Timestream `MeasureName`) | dimensions (InfluxDB tags) | time | fields (measures) | version |
//! |---|---|---|---|---|---|
//! | rollup | the rollup's name | the group's dimensions (`vehicle`, `fleet`, `signal`, attributes) and `fleet` when known | window start | `count`, `sum`, `min`, `max`, `mean`, `stddev`, `first`, `last`, `rate_per_second`, `time_weighted_mean`, `p50`/`p95`/`p99_9`…, `distinct`, `window_end_ms`, `is_final` | the window's emission version |
//! | anomaly row | `anomaly` | `vehicle`, `fleet`, `model` | record time or window start | `score`, `grade`, `confidence`, `threshold`, `warming_up`, `imputed`, `explanation`, `window_end_ms` | 1 |
//! | detector state change | `detector_state` | `vehicle`, `model`, `state` | event time | `previous_state`, `trigger` | 1 |
//! | alert | `alert` | `vehicle`, `fleet`, `rule`, `severity` | firing time | `status`, `signal`, `condition`, `start_time_ms`, `end_time_ms`, `trigger_first`/`min`/`max`/`last`/`count` | 1 firing, 2 resolved |
//!
//! Absent optional values are left out (Timestream multi-measure records and InfluxDB points
//! may carry different field sets). InfluxDB points also carry the version as an integer field
//! `version`: InfluxDB overwrites a point with the same measurement, tags and time, and the
//! pipeline emits versions in increasing order, so the last write is the highest version.

use std::borrow::Cow;

use crate::pipeline::output::{AnomalyRow, Output, Rollup};

/// A field (measure) value, typed as both databases type it.
#[derive(Debug, Clone, PartialEq)]
pub enum FieldValue {
    /// Timestream `DOUBLE`, InfluxDB float.
    Double(f64),
    /// Timestream `BIGINT`, InfluxDB integer (`i` suffix).
    BigInt(i64),
    /// Timestream `BOOLEAN`, InfluxDB boolean.
    Boolean(bool),
    /// Timestream `VARCHAR`, InfluxDB string.
    Text(String),
}

/// One row of the layout in the module documentation.
#[derive(Debug, Clone, PartialEq)]
pub struct SeriesPoint {
    /// Measurement: the rollup name, `anomaly`, `detector_state` or `alert`.
    pub measurement: String,
    /// Dimension name and value pairs, sorted by name.
    pub dimensions: Vec<(String, String)>,
    /// UTC milliseconds.
    pub time_ms: i64,
    /// Upsert version: a higher version replaces a row with the same key.
    pub version: i64,
    /// Measures in a stable order; non-finite doubles are left out. Names are mostly static,
    /// so encoding a point allocates no name.
    pub fields: Vec<(Cow<'static, str>, FieldValue)>,
}

impl SeriesPoint {
    fn new(measurement: &str, time_ms: i64, version: i64) -> Self {
        Self {
            measurement: measurement.to_owned(),
            dimensions: Vec::new(),
            time_ms,
            version,
            fields: Vec::new(),
        }
    }

    fn dimension(&mut self, name: &str, value: Option<&str>) {
        if let Some(value) = value.filter(|v| !v.is_empty()) {
            if !self.dimensions.iter().any(|(existing, _)| existing == name) {
                self.dimensions.push((name.to_owned(), value.to_owned()));
            }
        }
    }

    fn double(&mut self, name: impl Into<Cow<'static, str>>, value: Option<f64>) {
        if let Some(value) = value.filter(|v| v.is_finite()) {
            self.fields.push((name.into(), FieldValue::Double(value)));
        }
    }

    fn bigint(&mut self, name: impl Into<Cow<'static, str>>, value: Option<i64>) {
        if let Some(value) = value {
            self.fields.push((name.into(), FieldValue::BigInt(value)));
        }
    }

    fn boolean(&mut self, name: impl Into<Cow<'static, str>>, value: bool) {
        self.fields.push((name.into(), FieldValue::Boolean(value)));
    }

    fn text(&mut self, name: impl Into<Cow<'static, str>>, value: Option<&str>) {
        if let Some(value) = value {
            self.fields
                .push((name.into(), FieldValue::Text(value.to_owned())));
        }
    }

    fn finish(mut self) -> Self {
        self.dimensions.sort();
        self
    }

    /// A key identifying the row: measurement, dimensions and time (what an upsert replaces).
    pub fn key(&self) -> String {
        let mut key = self.measurement.clone();
        for (name, value) in &self.dimensions {
            key.push(',');
            key.push_str(name);
            key.push('=');
            key.push_str(value);
        }
        key.push('@');
        key.push_str(&self.time_ms.to_string());
        key
    }
}

/// Field name of a quantile: `p50`, `p95`, `p99_9`.
pub fn quantile_field(q: f64) -> String {
    let percent = format!("{}", (q * 1000.0).round() / 10.0);
    format!("p{}", percent.replace('.', "_"))
}

/// The row of an output, or `None` for outputs the time-series sinks do not store (dead
/// letters, detector notifications, which go to SNS).
pub fn point_of(output: &Output) -> Option<SeriesPoint> {
    match output {
        Output::Rollup(rollup) => Some(rollup_point(rollup)),
        Output::Anomaly(row) => Some(anomaly_point(row)),
        Output::Alert(alert) => Some(alert_point(alert)),
        Output::Detector(models::detector::DetectorOutput::Alert(alert)) => {
            Some(alert_point(alert))
        }
        Output::Detector(models::detector::DetectorOutput::StateChange {
            vehicle_id,
            model,
            from,
            to,
            time_ms,
            trigger,
            ..
        }) => {
            let mut point = SeriesPoint::new("detector_state", *time_ms, 1);
            point.dimension("vehicle", Some(vehicle_id));
            point.dimension("model", Some(model));
            point.dimension("state", Some(to));
            point.text("previous_state", Some(from));
            point.text("trigger", Some(trigger));
            Some(point.finish())
        }
        Output::Detector(models::detector::DetectorOutput::Notification { .. })
        | Output::DeadLetter(_) => None,
    }
}

fn rollup_point(rollup: &Rollup) -> SeriesPoint {
    let mut point = SeriesPoint::new(
        &rollup.rollup,
        rollup.window_start_ms,
        i64::from(rollup.version),
    );
    for pair in rollup.group_key.split(',') {
        if let Some((name, value)) = pair.split_once('=') {
            point.dimension(name, Some(value));
        }
    }
    point.dimension("vehicle", rollup.vehicle_id.as_deref());
    point.dimension("fleet", rollup.fleet.as_deref());
    point.dimension("signal", rollup.signal.as_deref());
    let result = &rollup.result;
    let summary = &result.summary;
    point.bigint("count", i64::try_from(summary.count).ok());
    point.double("sum", Some(result.sum));
    point.double("min", Some(summary.min));
    point.double("max", Some(summary.max));
    point.double("mean", Some(summary.mean));
    point.double("stddev", result.stddev);
    point.double("first", Some(summary.first.1));
    point.double("last", Some(summary.last.1));
    point.double("rate_per_second", result.rate_per_second);
    point.double("time_weighted_mean", result.time_weighted_mean);
    for (q, value) in &result.quantiles {
        point.double(quantile_field(*q), Some(*value));
    }
    point.bigint(
        "distinct",
        result.distinct.and_then(|d| i64::try_from(d).ok()),
    );
    point.bigint("window_end_ms", Some(rollup.window_end_ms));
    point.boolean("is_final", rollup.is_final);
    point.finish()
}

fn anomaly_point(row: &AnomalyRow) -> SeriesPoint {
    let mut point = SeriesPoint::new("anomaly", row.time_ms, 1);
    point.dimension("vehicle", Some(&row.vehicle_id));
    point.dimension("fleet", row.fleet.as_deref());
    point.dimension("model", Some(&row.model));
    point.double("score", Some(row.score));
    point.double("grade", Some(row.grade));
    point.double("confidence", Some(row.confidence));
    point.double("threshold", Some(row.threshold));
    point.boolean("warming_up", row.warming_up);
    point.bigint("imputed", Some(i64::from(row.imputed)));
    point.text("explanation", row.explanation.as_deref());
    point.bigint("window_end_ms", row.window_end_ms);
    point.finish()
}

fn alert_point(alert: &models::rules::Alert) -> SeriesPoint {
    let version = match alert.status {
        models::rules::AlertStatus::Firing => 1,
        models::rules::AlertStatus::Resolved => 2,
    };
    let mut point = SeriesPoint::new("alert", alert.fired_time_ms, version);
    point.dimension("vehicle", Some(&alert.vehicle_id));
    point.dimension("fleet", alert.fleet.as_deref());
    point.dimension("rule", Some(&alert.rule));
    point.dimension("severity", Some(alert.severity.as_str()));
    point.text("status", Some(alert.status.as_str()));
    point.text("signal", Some(&alert.signal));
    point.text("condition", Some(&alert.condition));
    point.bigint("start_time_ms", Some(alert.start_time_ms));
    point.bigint("end_time_ms", alert.end_time_ms);
    point.double("trigger_first", Some(alert.trigger.first));
    point.double("trigger_min", Some(alert.trigger.min));
    point.double("trigger_max", Some(alert.trigger.max));
    point.double("trigger_last", Some(alert.trigger.last));
    point.bigint("trigger_count", i64::try_from(alert.trigger.count).ok());
    point.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantile_fields_are_readable_names() {
        assert_eq!(quantile_field(0.5), "p50");
        assert_eq!(quantile_field(0.95), "p95");
        assert_eq!(quantile_field(0.999), "p99_9");
    }
}
