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

/// The async runtime a command runs on (`multi_thread` for the pipeline), or the exit code
/// after saying why there is none.
pub fn runtime(multi_thread: bool) -> Result<tokio::runtime::Runtime, std::process::ExitCode> {
    let mut builder = if multi_thread {
        tokio::runtime::Builder::new_multi_thread()
    } else {
        tokio::runtime::Builder::new_current_thread()
    };
    builder.enable_all().build().map_err(|err| {
        eprintln!("cannot start the async runtime: {err}");
        std::process::ExitCode::from(EXIT_FAILED)
    })
}

/// Loads a config file whose source is a Kinesis stream (for `leases` and `produce`), or the
/// exit code after printing why it is not usable.
pub fn load_kinesis_config(
    path: &std::path::Path,
) -> Result<crate::config::Config, std::process::ExitCode> {
    let config = crate::config::load_file(path).map_err(|err| {
        eprintln!("{err}");
        std::process::ExitCode::from(EXIT_CONFIG)
    })?;
    if config.source.kind != crate::config::SourceKind::Kinesis {
        eprintln!(
            "{}: source.kind is {:?}, not \"kinesis\"",
            path.display(),
            config.source.kind
        );
        return Err(std::process::ExitCode::from(EXIT_CONFIG));
    }
    Ok(config)
}
