//! Kinesis Data Analytics' `ANOMALY_EXPLANATION` JSON, so queries written against
//! `RANDOM_CUT_FOREST_WITH_EXPLANATION` keep working.
//!
//! Per input signal: `ATTRIBUTION_SCORE`, its share of the anomaly score (the shares sum to the
//! score); `DIRECTION`, `HIGH` when the signal is anomalous mostly by being higher than the
//! forest expects, else `LOW`; and `STRENGTH`, how one-sided that is: `|high - low| / (high +
//! low)`, from 0 (as much high as low) to 1 (all one way; 0 when the signal explains nothing).
//! KDA writes the numbers as strings; so do we, with four decimals.

use serde_json::{Map, Value};

use super::random_cut_forest::SignalAttribution;

impl SignalAttribution {
    /// KDA's `DIRECTION`: `"HIGH"` or `"LOW"`.
    pub fn direction(&self) -> &'static str {
        if self.is_high() {
            "HIGH"
        } else {
            "LOW"
        }
    }

    /// KDA's `STRENGTH`: how one-sided the attribution is, in [0, 1].
    pub fn strength(&self) -> f64 {
        let total = self.total();
        if total > 0.0 {
            (self.high - self.low).abs() / total
        } else {
            0.0
        }
    }
}

/// The `ANOMALY_EXPLANATION` object for `attributions`, keyed by the signal `names` in order.
pub fn kda_explanation(names: &[impl AsRef<str>], attributions: &[SignalAttribution]) -> Value {
    let mut object = Map::new();
    for (name, attribution) in names.iter().zip(attributions) {
        let mut entry = Map::new();
        entry.insert("DIRECTION".into(), attribution.direction().into());
        entry.insert(
            "STRENGTH".into(),
            format!("{:.4}", attribution.strength()).into(),
        );
        entry.insert(
            "ATTRIBUTION_SCORE".into(),
            format!("{:.4}", attribution.total()).into(),
        );
        object.insert(name.as_ref().to_owned(), Value::Object(entry));
    }
    Value::Object(object)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_json_has_kda_s_shape() {
        let explanation = kda_explanation(
            &["speed_kmh", "rpm"],
            &[
                SignalAttribution {
                    high: 1.6,
                    low: 0.1,
                },
                SignalAttribution {
                    high: 0.0,
                    low: 0.0,
                },
            ],
        );
        assert_eq!(
            explanation,
            serde_json::json!({
                "speed_kmh": {"DIRECTION": "HIGH", "STRENGTH": "0.8824", "ATTRIBUTION_SCORE": "1.7000"},
                "rpm": {"DIRECTION": "HIGH", "STRENGTH": "0.0000", "ATTRIBUTION_SCORE": "0.0000"},
            })
        );
        let low = SignalAttribution {
            high: 0.2,
            low: 0.6,
        };
        assert_eq!(low.direction(), "LOW");
        assert!((low.strength() - 0.5).abs() < 1e-12);
    }
}
