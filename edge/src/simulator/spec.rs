//! What to simulate.

use serde::{Deserialize, Serialize};

/// 2026-01-01T00:00:00Z, the default start of simulated time.
pub const DEFAULT_START_MS: i64 = 1_767_225_600_000;

/// Parameters of a simulated fleet run. The same spec and seed always give the same records in
/// the same order.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SimulationSpec {
    /// Number of vehicles.
    pub vehicles: u32,
    /// Simulated duration in seconds.
    pub seconds: u32,
    /// Samples per second per vehicle.
    pub hz: f64,
    /// Fraction of records delivered late (moved later in file order).
    pub late_fraction: f64,
    /// Largest delivery delay of a late record, in milliseconds.
    pub max_delay_ms: i64,
    /// Random seed.
    pub seed: u64,
    /// Event time of the first sample (UTC ms).
    pub start_ms: i64,
    /// Number of fleets the vehicles are spread over.
    pub fleets: u32,
    /// Expected injected anomalies per vehicle per simulated hour.
    pub anomalies_per_vehicle_hour: f64,
}

impl Default for SimulationSpec {
    fn default() -> Self {
        Self {
            vehicles: 100,
            seconds: 600,
            hz: 1.0,
            late_fraction: 0.02,
            max_delay_ms: 5_000,
            seed: 42,
            start_ms: DEFAULT_START_MS,
            fleets: 10,
            anomalies_per_vehicle_hour: 2.0,
        }
    }
}

impl SimulationSpec {
    /// Milliseconds between two samples of one vehicle.
    pub fn period_ms(&self) -> i64 {
        (1000.0 / self.hz).round().max(1.0) as i64
    }

    /// Number of sampling ticks.
    pub fn ticks(&self) -> u64 {
        (f64::from(self.seconds) * self.hz).floor() as u64
    }

    /// Total number of records the run produces.
    pub fn total_records(&self) -> u64 {
        self.ticks() * u64::from(self.vehicles)
    }

    /// Problems with the spec, each naming its field.
    pub fn problems(&self) -> Vec<String> {
        let mut problems = Vec::new();
        if self.vehicles == 0 {
            problems.push("vehicles: must be at least 1".to_owned());
        }
        if !(self.hz > 0.0 && self.hz <= 1000.0) {
            problems.push(format!("hz: must be in (0, 1000], got {}", self.hz));
        }
        if !(0.0..=1.0).contains(&self.late_fraction) {
            problems.push(format!(
                "late_fraction: must be in [0, 1], got {}",
                self.late_fraction
            ));
        }
        if self.max_delay_ms < 0 {
            problems.push("max_delay_ms: must not be negative".to_owned());
        }
        if self.fleets == 0 {
            problems.push("fleets: must be at least 1".to_owned());
        }
        if self.anomalies_per_vehicle_hour.is_nan() || self.anomalies_per_vehicle_hour < 0.0 {
            problems.push("anomalies_per_vehicle_hour: must not be negative".to_owned());
        }
        problems
    }
}
