//! Shared inputs for fleetstream's criterion benchmarks.

use edge::{FleetSimulator, SimulationSpec};
use telemetry::encode::write_wide_json;

/// `records` simulated wide-JSON records as one NDJSON payload (deterministic).
pub fn wide_ndjson(records: usize) -> Vec<u8> {
    let spec = SimulationSpec {
        vehicles: 200,
        seconds: (records / 200 + 1) as u32,
        ..SimulationSpec::default()
    };
    let mut out = Vec::with_capacity(records * 330);
    for record in FleetSimulator::new(spec).take(records) {
        write_wide_json(&record, &mut out);
        out.push(b'\n');
    }
    out
}
