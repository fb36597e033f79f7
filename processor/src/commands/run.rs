//! `fleetstream run`: load config, start the pipeline, handle SIGINT/SIGTERM within the
//! shutdown deadline, print the summary.

use std::process::ExitCode;

use tokio_util::sync::CancellationToken;

use crate::cli::RunArgs;
use crate::config::{self, Config, SourceKind};
use crate::pipeline::{self, RunOptions};

/// Applies the command-line overrides (the last config layer) and re-validates.
pub fn effective_config(args: &RunArgs) -> Result<Config, config::ConfigError> {
    let mut config = config::load(args.config.as_deref())?;
    if let Some(input) = &args.input {
        if input.as_os_str() == "-" {
            config.source.kind = SourceKind::Stdin;
        } else {
            config.source.kind = SourceKind::File;
            config.source.path = Some(input.clone());
        }
    }
    if let Some(db) = &args.db {
        config.sinks.sqlite.path = db.clone();
        config.sinks.sqlite.enabled = true;
    }
    let problems = config.problems();
    if problems.is_empty() {
        Ok(config)
    } else {
        Err(config::ConfigError::Invalid {
            origin: "command-line overrides".to_owned(),
            problems,
        })
    }
}

/// Runs the pipeline on a multi-threaded runtime.
pub fn run(args: &RunArgs) -> ExitCode {
    let config = match effective_config(args) {
        Ok(config) => config,
        Err(err) => {
            eprintln!("{err}");
            return ExitCode::from(super::EXIT_CONFIG);
        }
    };
    let runtime = match super::runtime(true) {
        Ok(runtime) => runtime,
        Err(code) => return code,
    };
    let options = RunOptions {
        fresh: args.fresh,
        progress: !args.no_progress,
        create_tables: args.create_tables,
    };
    let code = runtime.block_on(run_with_signals(config, options));
    // After a missed deadline, stages may still be blocked; do not wait for them.
    runtime.shutdown_timeout(std::time::Duration::from_millis(500));
    code
}

async fn run_with_signals(config: Config, options: RunOptions) -> ExitCode {
    let shutdown = CancellationToken::new();
    tokio::spawn(cancel_on_signal(shutdown.clone()));
    let deadline = config.shutdown.deadline.std();
    let pipeline = pipeline::run(&config, options, shutdown.clone());
    tokio::pin!(pipeline);
    let result = tokio::select! {
        result = &mut pipeline => result,
        () = async {
            shutdown.cancelled().await;
            tokio::time::sleep(deadline).await;
        } => {
            tracing::error!(deadline_ms = deadline.as_millis() as u64, "shutdown did not finish within shutdown.deadline; positions stay at the last committed checkpoint");
            return ExitCode::from(super::EXIT_DEADLINE);
        }
    };
    match result {
        Ok(report) => {
            println!("{report}");
            ExitCode::SUCCESS
        }
        Err(err) => {
            tracing::error!(error = %err, "run failed");
            eprintln!("error: {err}");
            ExitCode::from(super::EXIT_FAILED)
        }
    }
}

/// Cancels `shutdown` on SIGINT or SIGTERM.
async fn cancel_on_signal(shutdown: CancellationToken) {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        let Ok(mut terminate) = signal(SignalKind::terminate()) else {
            tracing::warn!("cannot listen for SIGTERM");
            return;
        };
        tokio::select! {
            _ = tokio::signal::ctrl_c() => tracing::info!(signal = "SIGINT", "signal received"),
            _ = terminate.recv() => tracing::info!(signal = "SIGTERM", "signal received"),
        }
    }
    #[cfg(not(unix))]
    {
        if tokio::signal::ctrl_c().await.is_ok() {
            tracing::info!(signal = "ctrl-c", "signal received");
        }
    }
    shutdown.cancel();
}
