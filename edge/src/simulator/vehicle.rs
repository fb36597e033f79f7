//! One simulated vehicle: a small drive-cycle model whose signals move together the way real
//! ones do (rpm follows speed and gear, coolant warms with load, oil pressure follows rpm, state of
//! charge falls with distance), plus sensor noise.

use rand::Rng;
use rand_chacha::ChaCha8Rng;
use rand_distr::StandardNormal;

/// Powertrain of a simulated vehicle.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Powertrain {
    /// Battery electric (no rpm, fuel or oil signals).
    Electric,
    /// Diesel truck.
    Diesel,
    /// Petrol car.
    Petrol,
}

impl Powertrain {
    /// The `model` attribute written with each record.
    pub fn model(self) -> &'static str {
        match self {
            Powertrain::Electric => "e-van",
            Powertrain::Diesel => "truck",
            Powertrain::Petrol => "sedan",
        }
    }
}

/// Physical state of one vehicle between samples.
#[derive(Debug, Clone)]
pub(crate) struct VehicleModel {
    pub(crate) powertrain: Powertrain,
    speed_kmh: f64,
    target_kmh: f64,
    segment_left_s: f64,
    parked: bool,
    coolant_c: f64,
    battery_temp_c: f64,
    soc_pct: f64,
    lat: f64,
    lon: f64,
    heading_rad: f64,
    ambient_c: f64,
}

/// Signal values of one sample, in a fixed order, before anomalies.
pub(crate) type Sample = Vec<(&'static str, f64)>;

impl VehicleModel {
    pub(crate) fn new(rng: &mut ChaCha8Rng) -> Self {
        let powertrain = match rng.random_range(0..10) {
            0..=2 => Powertrain::Electric,
            3..=5 => Powertrain::Diesel,
            _ => Powertrain::Petrol,
        };
        let ambient_c = rng.random_range(5.0..25.0);
        Self {
            powertrain,
            speed_kmh: 0.0,
            target_kmh: 0.0,
            segment_left_s: rng.random_range(0.0..120.0),
            parked: rng.random_bool(0.3),
            coolant_c: ambient_c + rng.random_range(0.0..60.0),
            battery_temp_c: ambient_c + 5.0,
            soc_pct: rng.random_range(40.0..100.0),
            lat: rng.random_range(47.0..53.0),
            lon: rng.random_range(5.0..15.0),
            heading_rad: rng.random_range(0.0..std::f64::consts::TAU),
            ambient_c,
        }
    }

    /// Advances the model by `dt_s` seconds and returns the sensor readings.
    pub(crate) fn step(&mut self, dt_s: f64, rng: &mut ChaCha8Rng) -> Sample {
        self.segment_left_s -= dt_s;
        if self.segment_left_s <= 0.0 {
            self.parked = rng.random_bool(0.15);
            self.target_kmh = if self.parked {
                0.0
            } else if rng.random_bool(0.4) {
                rng.random_range(80.0..115.0)
            } else {
                rng.random_range(20.0..60.0)
            };
            self.segment_left_s = rng.random_range(30.0..240.0);
        }
        let max_change = 7.0 * dt_s;
        let wanted = self.target_kmh - self.speed_kmh;
        self.speed_kmh =
            (self.speed_kmh + wanted.clamp(-max_change, max_change) + gauss(rng, 0.4)).max(0.0);
        if self.parked && self.speed_kmh < 0.5 {
            self.speed_kmh = 0.0;
        }
        let moving = self.speed_kmh > 0.0;
        let engine_on = !self.parked || moving;
        let load = self.speed_kmh / 120.0;

        let distance_km = self.speed_kmh * dt_s / 3600.0;
        self.heading_rad += gauss(rng, 0.02);
        self.lat += distance_km * self.heading_rad.cos() / 111.32;
        self.lon += distance_km * self.heading_rad.sin() / (111.32 * self.lat.to_radians().cos());

        let mut sample: Sample = vec![("speed_kmh", round2(self.speed_kmh))];
        match self.powertrain {
            Powertrain::Electric => {
                self.soc_pct = (self.soc_pct - distance_km * 0.25).max(3.0);
                if self.parked && self.soc_pct < 30.0 {
                    self.soc_pct = (self.soc_pct + 0.02 * dt_s).min(100.0);
                }
                let heat_target = self.ambient_c + 8.0 + 18.0 * load;
                self.battery_temp_c +=
                    (heat_target - self.battery_temp_c) * (dt_s / 600.0).min(1.0);
                sample.push(("battery_soc_pct", round2(self.soc_pct + gauss(rng, 0.05))));
                sample.push((
                    "battery_temp_c",
                    round2(self.battery_temp_c + gauss(rng, 0.1)),
                ));
                sample.push(("battery_voltage", round2(13.6 + gauss(rng, 0.05))));
            }
            Powertrain::Diesel | Powertrain::Petrol => {
                let (idle, top) = match self.powertrain {
                    Powertrain::Diesel => (650.0, 2200.0),
                    _ => (800.0, 3800.0),
                };
                let gear_band = 22.0;
                let within_gear = (self.speed_kmh % gear_band) / gear_band;
                let rpm = if !engine_on {
                    0.0
                } else if !moving {
                    idle + gauss(rng, 15.0)
                } else {
                    idle + 300.0
                        + within_gear * (top - idle - 300.0) * 0.8
                        + load * 300.0
                        + gauss(rng, 25.0)
                };
                let coolant_target = if engine_on {
                    88.0 + 6.0 * load
                } else {
                    self.ambient_c
                };
                self.coolant_c += (coolant_target - self.coolant_c) * (dt_s / 240.0).min(1.0);
                let oil_kpa = if engine_on {
                    120.0 + 0.09 * rpm + gauss(rng, 3.0)
                } else {
                    0.0
                };
                let fuel_lph = if engine_on {
                    0.7 + rpm * load * 0.004 + gauss(rng, 0.05).abs()
                } else {
                    0.0
                };
                let volts = if engine_on {
                    14.1 + gauss(rng, 0.05)
                } else {
                    12.6 + gauss(rng, 0.03)
                };
                sample.push(("engine_rpm", round2(rpm.max(0.0))));
                sample.push(("coolant_temp_c", round2(self.coolant_c + gauss(rng, 0.2))));
                sample.push(("oil_pressure_kpa", round2(oil_kpa.max(0.0))));
                sample.push(("fuel_rate_lph", round2(fuel_lph)));
                sample.push(("battery_voltage", round2(volts)));
            }
        }
        sample.push(("lat", round6(self.lat)));
        sample.push(("lon", round6(self.lon)));
        sample
    }
}

/// Normally distributed noise with standard deviation `scale`.
fn gauss(rng: &mut ChaCha8Rng, scale: f64) -> f64 {
    rng.sample::<f64, _>(StandardNormal) * scale
}

fn round2(value: f64) -> f64 {
    (value * 100.0).round() / 100.0
}

fn round6(value: f64) -> f64 {
    (value * 1e6).round() / 1e6
}
