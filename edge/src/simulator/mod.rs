//! The simulated fleet: N vehicles with plausible, correlated signals, deterministic for a seed,
//! with labelled injected anomalies and a configurable share of late deliveries.
//!
//! Records come out in *delivery* order: tick by tick, every vehicle once per tick, except that a
//! `late_fraction` of records is held back and delivered up to `max_delay_ms` later, as a flaky
//! cellular link would. Labels of the injected anomalies are available up front.

mod anomaly;
mod spec;
mod vehicle;

use std::collections::{BTreeMap, VecDeque};

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use telemetry::record::{Record, Signal};

pub use anomaly::{AnomalyKind, AnomalyLabel};
pub use spec::{SimulationSpec, DEFAULT_START_MS};
pub use vehicle::Powertrain;
use vehicle::VehicleModel;

struct SimulatedVehicle {
    id: String,
    fleet: String,
    vin: String,
    model: VehicleModel,
    rng: ChaCha8Rng,
    phase_ms: i64,
    anomalies: Vec<AnomalyLabel>,
    stuck: Vec<Option<f64>>,
}

/// Iterator over the records of a simulated run; see the module documentation.
pub struct FleetSimulator {
    spec: SimulationSpec,
    vehicles: Vec<SimulatedVehicle>,
    delivery_rng: ChaCha8Rng,
    next_tick: u64,
    ready: VecDeque<Record>,
    delayed: BTreeMap<(i64, u64), Record>,
    delayed_sequence: u64,
}

/// Signals an anomaly may hit, with the size of the offset for that signal.
fn anomaly_scale(signal: &str) -> Option<f64> {
    Some(match signal {
        "coolant_temp_c" => 32.0,
        "speed_kmh" => 70.0,
        "battery_voltage" => -2.8,
        "oil_pressure_kpa" => -170.0,
        "battery_soc_pct" => -25.0,
        "battery_temp_c" => 30.0,
        "engine_rpm" => 2500.0,
        "fuel_rate_lph" => 18.0,
        _ => return None,
    })
}

impl FleetSimulator {
    /// A simulator for `spec` (call [`SimulationSpec::problems`] first to validate it).
    pub fn new(spec: SimulationSpec) -> Self {
        let period_ms = spec.period_ms();
        let vehicles = (0..spec.vehicles)
            .map(|index| {
                let mut rng =
                    ChaCha8Rng::seed_from_u64(spec.seed ^ (u64::from(index) << 20) ^ 0x5EED);
                let model = VehicleModel::new(&mut rng);
                let id = format!("veh-{index:06}");
                let phase_ms = (i64::from(index) * 97) % period_ms;
                let mut planning_rng =
                    ChaCha8Rng::seed_from_u64(spec.seed ^ (u64::from(index) << 20) ^ 0xA40_4A1E);
                let anomalies =
                    plan_anomalies(&spec, &id, model.powertrain, phase_ms, &mut planning_rng);
                SimulatedVehicle {
                    fleet: format!("fleet-{:02}", index % spec.fleets.max(1)),
                    vin: format!("FS{:015}", u64::from(index) * 7919 + spec.seed % 1000),
                    stuck: vec![None; anomalies.len()],
                    id,
                    model,
                    rng,
                    phase_ms,
                    anomalies,
                }
            })
            .collect();
        Self {
            delivery_rng: ChaCha8Rng::seed_from_u64(spec.seed.wrapping_mul(0x9E37_79B9_7F4A_7C15)),
            spec,
            vehicles,
            next_tick: 0,
            ready: VecDeque::new(),
            delayed: BTreeMap::new(),
            delayed_sequence: 0,
        }
    }

    /// The spec being simulated.
    pub fn spec(&self) -> &SimulationSpec {
        &self.spec
    }

    /// Number of records held back for late delivery so far.
    pub fn delayed_records(&self) -> u64 {
        self.delayed_sequence
    }

    /// Every injected anomaly, ordered by vehicle then start time.
    pub fn labels(&self) -> Vec<AnomalyLabel> {
        self.vehicles
            .iter()
            .flat_map(|vehicle| vehicle.anomalies.iter().cloned())
            .collect()
    }

    fn generate_tick(&mut self) {
        let tick = self.next_tick;
        self.next_tick += 1;
        let period_ms = self.spec.period_ms();
        let tick_ms = self.spec.start_ms + tick as i64 * period_ms;
        while let Some(entry) = self.delayed.first_entry() {
            if entry.key().0 > tick_ms {
                break;
            }
            self.ready.push_back(entry.remove());
        }
        let dt_s = period_ms as f64 / 1000.0;
        for vehicle in &mut self.vehicles {
            let time_ms = tick_ms + vehicle.phase_ms;
            let sample = vehicle.model.step(dt_s, &mut vehicle.rng);
            let signals = sample
                .into_iter()
                .map(|(name, mut value)| {
                    for (label, stuck) in vehicle.anomalies.iter().zip(vehicle.stuck.iter_mut()) {
                        if label.signal == name {
                            value = label.apply(time_ms, value, stuck);
                        }
                    }
                    // GPS keeps its 6 decimals (~0.1 m); other sensors report 2.
                    let scale = if matches!(name, "lat" | "lon") {
                        1e6
                    } else {
                        100.0
                    };
                    Signal {
                        name: name.into(),
                        value: (value * scale).round() / scale,
                    }
                })
                .collect();
            let record = Record {
                vehicle_id: vehicle.id.as_str().into(),
                event_time_ms: time_ms,
                fleet: Some(vehicle.fleet.as_str().into()),
                attributes: vec![
                    ("model".into(), vehicle.model.powertrain.model().into()),
                    ("vin".into(), vehicle.vin.as_str().into()),
                ]
                .into(),
                signals,
            };
            if self.spec.late_fraction > 0.0
                && self.spec.max_delay_ms > 0
                && self.delivery_rng.random_bool(self.spec.late_fraction)
            {
                let delay = self.delivery_rng.random_range(1..=self.spec.max_delay_ms);
                self.delayed
                    .insert((time_ms + delay, self.delayed_sequence), record);
                self.delayed_sequence += 1;
            } else {
                self.ready.push_back(record);
            }
        }
    }
}

impl Iterator for FleetSimulator {
    type Item = Record;

    fn next(&mut self) -> Option<Record> {
        loop {
            if let Some(record) = self.ready.pop_front() {
                return Some(record);
            }
            if self.next_tick < self.spec.ticks() {
                self.generate_tick();
                continue;
            }
            return self.delayed.pop_first().map(|(_, record)| record);
        }
    }
}

fn plan_anomalies(
    spec: &SimulationSpec,
    vehicle_id: &str,
    powertrain: Powertrain,
    phase_ms: i64,
    rng: &mut ChaCha8Rng,
) -> Vec<AnomalyLabel> {
    let ticks = spec.ticks();
    if ticks == 0 {
        return Vec::new();
    }
    let expected = spec.anomalies_per_vehicle_hour * f64::from(spec.seconds) / 3600.0;
    let mut count = expected.floor() as u32;
    if rng.random_bool((expected - expected.floor()).clamp(0.0, 1.0)) {
        count += 1;
    }
    let signals: &[&str] = match powertrain {
        Powertrain::Electric => &[
            "speed_kmh",
            "battery_soc_pct",
            "battery_temp_c",
            "battery_voltage",
        ],
        _ => &[
            "speed_kmh",
            "engine_rpm",
            "coolant_temp_c",
            "oil_pressure_kpa",
            "fuel_rate_lph",
            "battery_voltage",
        ],
    };
    let period_ms = spec.period_ms();
    let mut labels: Vec<AnomalyLabel> = (0..count)
        .map(|_| {
            let signal = signals[rng.random_range(0..signals.len())];
            let scale = anomaly_scale(signal).unwrap_or(1.0);
            let start_tick = rng.random_range(0..ticks);
            let start_ms = spec.start_ms + start_tick as i64 * period_ms + phase_ms;
            let (kind, seconds, magnitude) = match rng.random_range(0..4) {
                0 => (AnomalyKind::Spike, 0, scale * 1.5),
                1 => (AnomalyKind::LevelShift, rng.random_range(60..300), scale),
                2 => (AnomalyKind::StuckSensor, rng.random_range(120..600), 0.0),
                _ => (AnomalyKind::Drift, rng.random_range(300..900), scale * 1.2),
            };
            AnomalyLabel {
                vehicle_id: vehicle_id.to_owned(),
                signal: signal.to_owned(),
                kind,
                start_ms,
                end_ms: start_ms + i64::from(seconds) * 1000,
                magnitude,
            }
        })
        .collect();
    labels.sort_by_key(|label| label.start_ms);
    labels
}

#[cfg(test)]
mod tests {
    use super::*;

    fn small() -> SimulationSpec {
        SimulationSpec {
            vehicles: 20,
            seconds: 300,
            anomalies_per_vehicle_hour: 12.0,
            late_fraction: 0.1,
            ..SimulationSpec::default()
        }
    }

    #[test]
    fn deterministic_for_a_seed() {
        let a: Vec<Record> = FleetSimulator::new(small()).collect();
        let b: Vec<Record> = FleetSimulator::new(small()).collect();
        assert_eq!(a, b);
        let other: Vec<Record> =
            FleetSimulator::new(SimulationSpec { seed: 7, ..small() }).collect();
        assert_ne!(a, other);
    }

    #[test]
    fn produces_every_record_once_with_bounded_delay() {
        let spec = small();
        let mut simulator = FleetSimulator::new(spec.clone());
        let records: Vec<Record> = simulator.by_ref().collect();
        assert_eq!(records.len() as u64, spec.total_records());
        let mut unique: Vec<(&str, i64)> = records
            .iter()
            .map(|r| (r.vehicle_id.as_str(), r.event_time_ms))
            .collect();
        unique.sort_unstable();
        unique.dedup();
        assert_eq!(unique.len(), records.len());
        let mut max_seen = spec.start_ms;
        for record in &records {
            assert!(max_seen - record.event_time_ms <= spec.max_delay_ms + spec.period_ms());
            max_seen = max_seen.max(record.event_time_ms);
        }
        let share = simulator.delayed_records() as f64 / records.len() as f64;
        assert!(share > 0.07 && share < 0.13, "late share {share}");
    }

    #[test]
    fn signals_are_plausible_and_correlated() {
        let records: Vec<Record> = FleetSimulator::new(SimulationSpec {
            anomalies_per_vehicle_hour: 0.0,
            ..small()
        })
        .collect();
        for record in &records {
            let speed = record.signal("speed_kmh").unwrap();
            assert!((0.0..=140.0).contains(&speed), "speed {speed}");
            if let Some(rpm) = record.signal("engine_rpm") {
                assert!((0.0..=5000.0).contains(&rpm), "rpm {rpm}");
                if rpm == 0.0 {
                    assert_eq!(record.signal("oil_pressure_kpa"), Some(0.0));
                }
            }
            if let Some(soc) = record.signal("battery_soc_pct") {
                assert!((0.0..=100.5).contains(&soc));
                assert!(record.signal("engine_rpm").is_none());
            }
        }
    }

    #[test]
    fn labelled_anomalies_are_visible_in_the_data() {
        let spec = SimulationSpec {
            late_fraction: 0.0,
            ..small()
        };
        let simulator = FleetSimulator::new(spec.clone());
        let labels = simulator.labels();
        assert!(!labels.is_empty());
        let clean: Vec<Record> = FleetSimulator::new(SimulationSpec {
            anomalies_per_vehicle_hour: 0.0,
            ..spec
        })
        .collect();
        let dirty: Vec<Record> = simulator.collect();
        let spike = labels
            .iter()
            .find(|label| label.kind == AnomalyKind::Spike)
            .expect("a spike among the labels");
        let at = |records: &[Record]| {
            records
                .iter()
                .find(|r| r.vehicle_id == spike.vehicle_id && r.event_time_ms == spike.start_ms)
                .and_then(|r| r.signal(&spike.signal))
                .unwrap()
        };
        assert!((at(&dirty) - at(&clean) - spike.magnitude).abs() < 0.02);
    }
}
