//! The fleetstream service: sources, the pipeline, sinks, checkpoint state and the CLI.
//!
//! Map of the crate:
//! - [`config`]: the TOML configuration, environment overrides and validation.
//! - [`position`]: the position/acknowledgement contract every source follows.
//! - [`sources`]: file/directory, stdin and the simulated fleet.
//! - [`pipeline`]: stages, channels, barriers, the committer and the run summary.
//! - [`sinks`]: SQLite (default store), NDJSON, dead letters.
//! - [`state`]: checkpoint storage.
//! - [`control`]: operator commands (alarm acknowledge/snooze/…) into a running service.
//! - [`cli`]: command-line interface; [`commands`]: what each command does.

pub mod aws;
pub mod buffers;
pub mod cli;
pub mod commands;
pub mod config;
pub mod control;
pub mod logging;
pub mod pipeline;
pub mod position;
pub mod sinks;
pub mod sources;
pub mod state;
