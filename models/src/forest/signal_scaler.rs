//! Per-signal normalisation, so signals of different units weigh alike in the forest's cuts.
//!
//! Each signal keeps an exponentially weighted mean and variance over about `horizon` recent
//! values (a plain average until then). A value is fed to the forest as `(x - mean) / scale`,
//! using the statistics from *before* it (score, then learn). Documented edge cases:
//! - **Missing, NaN or infinite**: replaced by the signal's last valid value (its mean, so 0
//!   after scaling, when it has none yet) and counted as imputed in the result.
//! - **Constant signal**: the scale has a floor of `0.001 × max(1, |mean|)`, so a signal that
//!   never moved scores 0 while it stays put, and a change away from it stands out strongly.
//! - **Extremes**: scaled values are clamped to ±1000, keeping the forest's `f32` boxes finite.

use serde::{Deserialize, Serialize};

/// Largest scaled magnitude fed to the forest.
const CLAMP: f64 = 1000.0;

/// Running statistics of one signal.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
struct SignalStats {
    count: u64,
    mean: f64,
    variance: f64,
    last: Option<f64>,
}

/// Normalisation of every input signal of one model.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SignalScaler {
    horizon: u64,
    enabled: bool,
    signals: Vec<SignalStats>,
}

impl SignalScaler {
    /// A scaler for `signals` signals remembering about `horizon` values; when not `enabled`,
    /// values pass through unscaled (missing ones still imputed).
    pub fn new(signals: usize, horizon: u64, enabled: bool) -> Self {
        Self {
            horizon: horizon.max(1),
            enabled,
            signals: vec![SignalStats::default(); signals],
        }
    }

    /// Writes the forest's input for `raw` into `scaled` and learns from `raw`; returns how many
    /// values were imputed.
    pub fn scale_then_learn(&mut self, raw: &[Option<f64>], scaled: &mut [f32]) -> u32 {
        let mut imputed = 0;
        for ((stats, value), out) in self.signals.iter_mut().zip(raw).zip(scaled) {
            let valid = value.filter(|v| v.is_finite());
            let x = match valid.or(stats.last) {
                Some(x) => x,
                None => stats.mean,
            };
            if valid.is_none() {
                imputed += 1;
            }
            *out = if self.enabled {
                let scale = stats.variance.sqrt().max(0.001 * stats.mean.abs().max(1.0));
                let z = if stats.count == 0 {
                    0.0
                } else {
                    (x - stats.mean) / scale
                };
                z.clamp(-CLAMP, CLAMP) as f32
            } else {
                x.clamp(f64::from(f32::MIN), f64::from(f32::MAX)) as f32
            };
            if let Some(x) = valid {
                stats.count += 1;
                let weight = 1.0 / stats.count.min(self.horizon) as f64;
                let delta = x - stats.mean;
                stats.mean += weight * delta;
                stats.variance = (1.0 - weight) * (stats.variance + weight * delta * delta);
                stats.last = Some(x);
            }
        }
        imputed
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signals_of_different_units_come_out_alike() {
        let mut scaler = SignalScaler::new(2, 1000, true);
        let mut out = [0.0f32; 2];
        for i in 0..2000 {
            let wave = (f64::from(i) * 0.3).sin();
            scaler.scale_then_learn(
                &[Some(50.0 + 10.0 * wave), Some(3000.0 + 800.0 * wave)],
                &mut out,
            );
        }
        assert!((out[0] - out[1]).abs() < 1e-3, "{out:?}");
        assert!(out[0].abs() < 2.0);
    }

    #[test]
    fn missing_values_are_imputed_and_constant_signals_stay_finite() {
        let mut scaler = SignalScaler::new(2, 100, true);
        let mut out = [0.0f32; 2];
        assert_eq!(
            scaler.scale_then_learn(&[None, Some(f64::NAN)], &mut out),
            2
        );
        assert_eq!(out, [0.0, 0.0]);
        for _ in 0..50 {
            scaler.scale_then_learn(&[Some(7.0), Some(0.0)], &mut out);
        }
        assert_eq!(out, [0.0, 0.0], "a constant signal scores nothing");
        assert_eq!(
            scaler.scale_then_learn(&[None, Some(f64::INFINITY)], &mut out),
            2
        );
        assert_eq!(out, [0.0, 0.0], "imputed by the last value");
        scaler.scale_then_learn(&[Some(7.5), Some(1.0)], &mut out);
        assert!(out[0] > 10.0 && out[1] == 1000.0, "{out:?}");
    }
}
