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

/// A final one-minute rollup of `signal` for vehicle number `vehicle` (fleet `vehicle % 50`),
/// as a rollup operator emits it: the sink benchmarks' input.
pub fn minute_rollup(
    name: &std::sync::Arc<str>,
    vehicle: usize,
    signal: &str,
    window_start_ms: i64,
    summary: windows::SummaryStats,
) -> processor::pipeline::output::Output {
    processor::pipeline::output::Output::Rollup(processor::pipeline::output::Rollup {
        rollup: std::sync::Arc::clone(name),
        group_key: format!("vehicle=veh-{vehicle:06},signal={signal}"),
        vehicle_id: Some(format!("veh-{vehicle:06}").into()),
        fleet: Some(format!("fleet-{:02}", vehicle % 50).into()),
        signal: Some(signal.into()),
        window_start_ms,
        window_end_ms: window_start_ms + 60_000,
        result: windows::AggregateResult {
            summary,
            sum: summary.sum(),
            stddev: summary.stddev(),
            rate_per_second: Some(0.04),
            time_weighted_mean: None,
            quantiles: Vec::new(),
            histogram: Vec::new(),
            distinct: None,
        },
        version: 1,
        is_final: true,
    })
}
