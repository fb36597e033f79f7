//! `fleetstream validate-config FILE`.

use std::process::ExitCode;

use crate::cli::ValidateArgs;
use crate::config;

/// Prints `ok` with a short description, or every problem; exit 2 when invalid.
pub fn validate(args: &ValidateArgs) -> ExitCode {
    match config::load_file(&args.file) {
        Ok(config) => {
            let rollups: Vec<&str> = config
                .rollups
                .iter()
                .map(|rollup| rollup.name.as_str())
                .collect();
            println!(
                "ok: {} — source {:?}, rollups [{}], {} rules",
                args.file.display(),
                config.source.kind,
                rollups.join(", "),
                config.rules.len()
            );
            ExitCode::SUCCESS
        }
        Err(err) => {
            eprintln!("{err}");
            ExitCode::from(super::EXIT_CONFIG)
        }
    }
}

/// `fleetstream detectors validate FILE`: the model's validation report; exit 2 on errors.
pub fn validate_detector(args: &ValidateArgs) -> ExitCode {
    let text = match std::fs::read_to_string(&args.file) {
        Ok(text) => text,
        Err(err) => {
            eprintln!("cannot read {}: {err}", args.file.display());
            return ExitCode::from(super::EXIT_CONFIG);
        }
    };
    let (model, report) = models::detector::load_detector_model(&text);
    match model {
        Some(model) => {
            println!(
                "detector model {:?} ({:?} evaluation, {} states) from {}",
                model.name,
                model.evaluation,
                model.states.len(),
                args.file.display()
            );
            println!("{report}");
            ExitCode::SUCCESS
        }
        None => {
            eprintln!("{}: the model cannot run", args.file.display());
            eprint!("{report}");
            ExitCode::from(super::EXIT_CONFIG)
        }
    }
}
