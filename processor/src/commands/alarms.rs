//! `fleetstream alarms ACTION`: queues an alarm command for the running service.

use std::process::ExitCode;

use crate::cli::{AlarmAction, AlarmArgs};
use crate::config;
use crate::control::{submit, CommandKind};

/// Queues the command; exit 2 on bad arguments, 1 when the database cannot be written.
pub fn alarms(args: &AlarmArgs) -> ExitCode {
    let command = match (args.action, &args.snooze_for) {
        (AlarmAction::Snooze, Some(text)) => match models::rules::parse_duration(text) {
            Ok(ms) => CommandKind::Snooze(ms),
            Err(err) => {
                eprintln!("--for: {err}");
                return ExitCode::from(super::EXIT_CONFIG);
            }
        },
        (AlarmAction::Snooze, None) => {
            eprintln!("snooze needs --for DURATION (for example --for 30m)");
            return ExitCode::from(super::EXIT_CONFIG);
        }
        (AlarmAction::Acknowledge, _) => CommandKind::Acknowledge,
        (AlarmAction::Disable, _) => CommandKind::Disable,
        (AlarmAction::Enable, _) => CommandKind::Enable,
        (AlarmAction::Reset, _) => CommandKind::Reset,
    };
    let db = match &args.db {
        Some(db) => db.clone(),
        None => match config::load(args.config.as_deref()) {
            Ok(config) => config.sinks.sqlite.path,
            Err(err) => {
                eprintln!("{err}");
                return ExitCode::from(super::EXIT_CONFIG);
            }
        },
    };
    match submit(&db, &args.model, &args.vehicle, command) {
        Ok(id) => {
            println!(
                "queued command #{id}: {} {} for {} in {}",
                command.name(),
                args.model,
                args.vehicle,
                db.display()
            );
            ExitCode::SUCCESS
        }
        Err(err) => {
            eprintln!("cannot queue the command in {}: {err}", db.display());
            ExitCode::from(super::EXIT_FAILED)
        }
    }
}
