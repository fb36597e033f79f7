//! What each CLI command does; `main` only parses arguments and maps errors to exit codes.

pub mod alarms;
pub mod leases;
pub mod produce;
pub mod run;
pub mod score;
pub mod simulate;
pub mod validate;

/// Exit code for an invalid configuration or arguments.
pub const EXIT_CONFIG: u8 = 2;
/// Exit code for a failed run.
pub const EXIT_FAILED: u8 = 1;
/// Exit code when shutdown did not finish within `shutdown.deadline`.
pub const EXIT_DEADLINE: u8 = 3;
