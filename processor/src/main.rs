//! The `fleetstream` binary: parses the command line and hands over to `processor::commands`.

use std::process::ExitCode;

use clap::Parser;
use processor::cli::{Cli, Command, DetectorsCommand};
use processor::commands;

/// mimalloc: faster than the system allocator for the many small, short-lived allocations of
/// decoding, and it does not return memory to the OS after every batch. Built without
/// transparent huge pages (see the workspace `Cargo.toml`).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    let cli = Cli::parse();
    processor::logging::init(cli.log_format);
    match &cli.command {
        Command::Run(args) => commands::run::run(args),
        Command::Simulate(args) => commands::simulate::simulate(args),
        Command::ValidateConfig(args) => commands::validate::validate(args),
        Command::Detectors(DetectorsCommand::Validate(args)) => {
            commands::validate::validate_detector(args)
        }
        Command::Alarms(args) => commands::alarms::alarms(args),
        Command::Score(args) => commands::score::score(args),
        Command::Leases(args) => commands::leases::leases(args),
        Command::Produce(args) => commands::produce::produce(args),
    }
}
