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
