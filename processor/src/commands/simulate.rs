//! `fleetstream simulate`: writes a simulated fleet as wide-JSON NDJSON, plus anomaly labels.

use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use edge::{FleetSimulator, SimulationSpec};
use flate2::write::GzEncoder;
use telemetry::encode::write_wide_json;

use crate::cli::SimulateArgs;

/// Runs the simulation; exit 2 on bad arguments, 1 on I/O errors.
pub fn simulate(args: &SimulateArgs) -> ExitCode {
    let start_ms = match telemetry::timestamp::parse_rfc3339(&args.start) {
        Ok(ms) => ms,
        Err(err) => {
            eprintln!("--start: {err}");
            return ExitCode::from(super::EXIT_CONFIG);
        }
    };
    let spec = SimulationSpec {
        vehicles: args.vehicles,
        seconds: args.seconds,
        hz: args.hz,
        late_fraction: args.late_fraction,
        max_delay_ms: args.max_delay_ms,
        seed: args.seed,
        start_ms,
        fleets: args.fleets,
        anomalies_per_vehicle_hour: args.anomalies_per_vehicle_hour,
    };
    let problems = spec.problems();
    if !problems.is_empty() {
        for problem in problems {
            eprintln!("invalid simulation: {problem}");
        }
        return ExitCode::from(super::EXIT_CONFIG);
    }
    match write_simulation(spec, args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {err}");
            ExitCode::from(super::EXIT_FAILED)
        }
    }
}

fn labels_path(args: &SimulateArgs) -> Option<PathBuf> {
    if let Some(labels) = &args.labels {
        return Some(labels.clone());
    }
    if args.out.as_os_str() == "-" {
        return None;
    }
    let name = args.out.file_name()?.to_string_lossy().into_owned();
    let stem = name
        .trim_end_matches(".gz")
        .trim_end_matches(".ndjson")
        .trim_end_matches(".json")
        .to_owned();
    Some(args.out.with_file_name(format!("{stem}.labels.ndjson")))
}

fn create(path: &Path) -> io::Result<File> {
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent)?;
    }
    File::create(path)
}

fn write_simulation(spec: SimulationSpec, args: &SimulateArgs) -> io::Result<()> {
    let started = Instant::now();
    let simulator = FleetSimulator::new(spec.clone());
    let labels = simulator.labels();
    let mut out: Box<dyn Write> = if args.out.as_os_str() == "-" {
        Box::new(BufWriter::with_capacity(1 << 20, io::stdout()))
    } else if args.out.extension().is_some_and(|ext| ext == "gz") {
        Box::new(GzEncoder::new(
            BufWriter::with_capacity(1 << 20, create(&args.out)?),
            flate2::Compression::fast(),
        ))
    } else {
        Box::new(BufWriter::with_capacity(1 << 20, create(&args.out)?))
    };
    let mut line = Vec::with_capacity(512);
    let mut written: u64 = 0;
    let mut first_time = None;
    for record in simulator {
        if args.realtime {
            let first = *first_time.get_or_insert((Instant::now(), record.event_time_ms));
            let due =
                first.0 + Duration::from_millis((record.event_time_ms - first.1).max(0) as u64);
            if let Some(wait) = due.checked_duration_since(Instant::now()) {
                out.flush()?;
                std::thread::sleep(wait);
            }
        }
        line.clear();
        write_wide_json(&record, &mut line);
        line.push(b'\n');
        out.write_all(&line)?;
        written += 1;
    }
    out.flush()?;
    drop(out);
    if let Some(path) = labels_path(args) {
        let mut file = BufWriter::new(create(&path)?);
        for label in &labels {
            serde_json::to_writer(&mut file, label)?;
            file.write_all(b"\n")?;
        }
        file.flush()?;
        eprintln!("labels: {} anomalies → {}", labels.len(), path.display());
    }
    eprintln!(
        "simulated {written} records ({} vehicles × {} s at {} Hz, {:.0} % late) → {} in {:.1} s",
        spec.vehicles,
        spec.seconds,
        spec.hz,
        spec.late_fraction * 100.0,
        args.out.display(),
        started.elapsed().as_secs_f64()
    );
    Ok(())
}
