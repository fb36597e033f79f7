//! The pipeline: source → decode → operators (windows, rules) → sinks, as tasks joined by
//! bounded channels, with checkpoint barriers flowing through the same channels (see
//! [`crate::position`] for the contract).
//!
//! ```text
//!  source task ──batches/barriers──▶ decode ──▶ operators ──outputs/barriers──▶ sink 1..n
//!      ▲                                           │                               │
//!      └──── committed positions ◀── committer ◀───┴── pending checkpoints    acks ◀┘
//! ```
//!
//! Every channel is bounded (capacities in `[pipeline]`), so a slow sink slows the source instead
//! of growing memory.

pub mod anomalies;
mod batch_letters;
pub mod committer;
pub mod counters;
pub mod decode_stage;
pub mod lanes;
pub mod messages;
pub mod operators;
pub mod output;
pub mod rollups;
pub mod source_task;
pub mod summary;

use std::sync::Arc;
use std::time::Instant;

use tokio::sync::{mpsc, watch};
use tokio_util::sync::CancellationToken;

use crate::config::Config;
use crate::sinks::build::{open_sinks, OpenedSinks};
use crate::sinks::runner::{run_sink, SinkAck, SinkMessage};
use crate::sinks::SinkError;
use crate::sources::{ConfiguredSource, Source, SourceError};
use crate::state::{ConfiguredStateStore, ModelReader, StateError, StateStore};
use counters::PipelineCounters;
pub use messages::{Barrier, StageMessage};
use operators::{OperatorOutlets, Operators};
pub use source_task::SourceEnd;
pub use summary::RunReport;

/// Why a run failed.
#[derive(Debug, thiserror::Error)]
pub enum PipelineError {
    /// The source failed.
    #[error("source: {0}")]
    Source(#[from] SourceError),
    /// A sink failed.
    #[error("sink {0}")]
    Sink(#[from] SinkError),
    /// The state store failed.
    #[error("{0}")]
    State(#[from] StateError),
    /// The stored state cannot be continued with this configuration.
    #[error("cannot resume from the saved state: {0}; run with --fresh to start over (or use another state.path)")]
    IncompatibleState(String),
    /// A stage ended early because another one failed (the other error is the cause).
    #[error("{0} stopped unexpectedly")]
    StageStopped(&'static str),
    /// A detector model could not be loaded.
    #[error("detector model: {0}")]
    Detector(String),
    /// A task panicked or was cancelled.
    #[error("a pipeline task failed: {0}")]
    Task(String),
}

impl PipelineError {
    /// Knock-on errors rank below the errors that caused them.
    fn is_knock_on(&self) -> bool {
        matches!(self, PipelineError::StageStopped(_))
    }
}

/// Choices of the `run` command that are not configuration.
#[derive(Debug, Clone, Copy, Default)]
pub struct RunOptions {
    /// Ignore and delete saved checkpoints.
    pub fresh: bool,
    /// Show a progress bar (when stderr is a terminal).
    pub progress: bool,
    /// Create the remote databases and tables the sinks write to (`--create-tables`).
    pub create_tables: bool,
}

/// Reads and compiles one detector or alarm model file, logging the actions that will not run.
fn load_model<T>(
    entry: &crate::config::DetectorConfig,
    load: fn(&str) -> (Option<T>, models::detector::ValidationReport),
) -> Result<T, PipelineError> {
    let path = entry.model.display();
    let text = std::fs::read_to_string(&entry.model)
        .map_err(|source| PipelineError::Detector(format!("cannot read {path}: {source}")))?;
    let (model, report) = load(&text);
    for skipped in &report.skipped_actions {
        tracing::warn!(model = %path, "{skipped}");
    }
    model.ok_or_else(|| PipelineError::Detector(format!("{path}: {report}")))
}

/// The input a detector or alarm reads: its `CreateInput` definition with the field mapping, or
/// the configured input name over the record's own fields.
fn input_binding(
    entry: &crate::config::DetectorConfig,
) -> Result<models::detector::InputBinding, PipelineError> {
    let Some(definition) = &entry.input_definition else {
        return Ok(models::detector::InputBinding {
            name: entry.input.clone(),
            mapping: entry.input_mapping.clone(),
        });
    };
    let text = std::fs::read_to_string(definition).map_err(|source| {
        PipelineError::Detector(format!("cannot read {}: {source}", definition.display()))
    })?;
    models::detector::bind_input(&text, entry.input_mapping.clone())
        .map_err(|err| PipelineError::Detector(format!("{}: {err}", definition.display())))
}

/// One of several inputs of a detector.
fn named_input_binding(
    input: &crate::config::InputConfig,
) -> Result<models::detector::InputBinding, PipelineError> {
    match &input.definition {
        Some(definition) => {
            let text = std::fs::read_to_string(definition).map_err(|source| {
                PipelineError::Detector(format!("cannot read {}: {source}", definition.display()))
            })?;
            models::detector::bind_input(&text, input.mapping.clone())
                .map_err(|err| PipelineError::Detector(format!("{}: {err}", definition.display())))
        }
        None => Ok(models::detector::InputBinding {
            name: input.name.clone().unwrap_or_default(),
            mapping: input.mapping.clone(),
        }),
    }
}

/// Builds the operator stage's state for `config`: rollups, rules, detectors, alarms and
/// anomaly models (one lane's worth; see [`lanes`]). `next_barrier` is the id of the next
/// checkpoint barrier (anomaly model versions).
fn build_operators(
    config: &Config,
    model_reader: Option<&crate::state::ModelReader>,
    unsaved_models: &crate::state::UnsavedModels,
    next_barrier: u64,
) -> Result<Operators, PipelineError> {
    let rules = config
        .rules
        .iter()
        .filter_map(|rule| rule.compile().ok())
        .collect::<Vec<_>>();
    let mut detectors = Vec::new();
    for entry in &config.detectors {
        let model = load_model(entry, models::detector::load_detector_model)?;
        let mut inputs = Vec::new();
        for input in &entry.inputs {
            inputs.push(named_input_binding(input)?);
        }
        detectors.push(
            models::detector::DetectorEngine::new(model, entry.input.clone())
                .with_timer_clock(entry.timers)
                .with_input(input_binding(entry)?)
                .with_inputs(inputs),
        );
    }
    let mut alarms = Vec::new();
    for entry in &config.alarms {
        let model = load_model(entry, models::detector::load_alarm_model)?;
        alarms.push(
            models::detector::AlarmEngine::new(model, entry.input.clone())
                .with_input(input_binding(entry)?),
        );
    }
    let mut operators = Operators::new(
        &config.rollups,
        &config.time,
        models::rules::RuleEngine::new(rules),
        detectors,
        alarms,
        config.shutdown.open_windows,
    )?;
    if config.source.kind == crate::config::SourceKind::Kinesis {
        operators = operators.with_source_idleness();
    }
    if !config.anomaly.is_empty() {
        let mut anomalies = Vec::new();
        for entry in &config.anomaly {
            let source = anomalies::ModelSource {
                unsaved: unsaved_models.clone(),
                reader: model_reader.map(ModelReader::try_clone).transpose()?,
            };
            anomalies.push(anomalies::AnomalyOperator::new(
                entry.clone(),
                source,
                next_barrier,
            ));
        }
        operators = operators.with_anomalies(anomalies);
    }
    Ok(operators)
}

/// Wall-clock milliseconds since the epoch: arrival times, early firings, checkpoint stamps.
pub fn wall_clock_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|elapsed| elapsed.as_millis() as i64)
        .unwrap_or(0)
}

/// Runs the configured pipeline until end of input or `shutdown`.
pub async fn run(
    config: &Config,
    options: RunOptions,
    shutdown: CancellationToken,
) -> Result<RunReport, PipelineError> {
    let started = Instant::now();
    let counters = Arc::new(PipelineCounters::default());

    let mut store = ConfiguredStateStore::open(&config.state, &config.aws).await?;
    // Remote stores block on their calls: off the async worker's hot path.
    if options.fresh {
        tokio::task::block_in_place(|| store.clear())?;
    }
    let checkpoint = tokio::task::block_in_place(|| store.latest())?;
    let unsaved_models = crate::state::UnsavedModels::default();
    let first_barrier_id = checkpoint.as_ref().map_or(1, |c| c.id + 1);
    let model_reader = if config.anomaly.is_empty() {
        None
    } else {
        Some(store.model_reader(&config.state)?)
    };
    let has_alarms = !config.alarms.is_empty();
    let handoff = config.source.kind == crate::config::SourceKind::Kinesis
        && config.source.kinesis.handoff.is_some();
    let mut operators = if handoff {
        let config = config.clone();
        let unsaved = unsaved_models.clone();
        let factory: lanes::OperatorsFactory = Box::new(move |next_barrier| {
            build_operators(&config, model_reader.as_ref(), &unsaved, next_barrier)
        });
        lanes::Lanes::per_stream(factory, first_barrier_id)
    } else {
        lanes::Lanes::single(build_operators(
            config,
            model_reader.as_ref(),
            &unsaved_models,
            first_barrier_id,
        )?)
    };
    if handoff && config.shutdown.open_windows == crate::config::OpenWindowsOnShutdown::EmitPartial
    {
        tracing::warn!("shutdown.open_windows = \"emit_partial\" has no effect with [source.kinesis.handoff]: open windows continue on the worker that takes each lease next");
    }
    if config.source.kind == crate::config::SourceKind::Kinesis {
        for rollup in &config.rollups {
            if !rollup
                .group_by
                .contains(&crate::config::GroupDimension::Vehicle)
            {
                tracing::warn!(
                    rollup = %rollup.name,
                    "this rollup groups several vehicles: with several tasks sharing the stream, \
                     each task computes it over its own shards only, and the tasks' results for \
                     one window overwrite each other; run one task, or aggregate per-vehicle \
                     rollups downstream"
                );
            }
        }
    }
    let control = (has_alarms && config.sinks.sqlite.enabled).then(|| {
        let queue = crate::control::CommandQueue::default();
        let task = tokio::spawn(crate::control::run_control(
            config.sinks.sqlite.path.clone(),
            std::sync::Arc::clone(&queue),
            std::time::Duration::from_secs(1),
        ));
        (queue, task)
    });
    if let Some((queue, _)) = &control {
        operators = operators.with_commands(std::sync::Arc::clone(queue));
    }
    if let Some(checkpoint) = &checkpoint {
        operators.restore(&checkpoint.operator_state)?;
        tracing::info!(checkpoint = checkpoint.id, state = %store.describe(), "resuming from checkpoint");
    }

    let OpenedSinks {
        mut sinks,
        delivery,
    } = open_sinks(config, options.create_tables).await?;
    // Sinks block (files, SQLite, remote calls), so they are restored off the async threads.
    let tokens: Vec<Option<u64>> = sinks
        .iter()
        .map(|sink| {
            checkpoint
                .as_ref()
                .and_then(|checkpoint| checkpoint.sink_tokens.get(sink.name()).copied().flatten())
        })
        .collect();
    let sinks = tokio::task::spawn_blocking(move || {
        for (sink, token) in sinks.iter_mut().zip(tokens) {
            sink.restore(token)?;
        }
        Ok::<_, SinkError>(sinks)
    })
    .await
    .map_err(|err| PipelineError::Task(err.to_string()))??;
    let sink_names: Vec<&'static str> = sinks.iter().map(|sink| sink.name()).collect();
    let outputs: Vec<(String, String)> = sinks
        .iter()
        .map(|sink| (sink.name().to_owned(), sink.describe()))
        .collect();

    let mut source = ConfiguredSource::from_config(config)?;
    let restored_positions = checkpoint
        .as_ref()
        .map(|c| c.positions.clone())
        .unwrap_or_default();
    source.open(&restored_positions).await?;
    let source_description = source.describe();
    let kinesis_metrics = source.kinesis_metrics();
    let size_hint = source.size_hint();
    let decode_workers = config.pipeline.decode_worker_count();
    tracing::info!(source = %source_description, decode_workers, "pipeline starting");

    let capacities = &config.pipeline;
    let (source_tx, source_rx) = mpsc::channel(capacities.source_channel_capacity);
    let (decoded_tx, decoded_rx) = mpsc::channel(capacities.decoded_channel_capacity);
    let (pending_tx, pending_rx) = mpsc::channel(64);
    let (ack_tx, ack_rx) = mpsc::channel::<SinkAck>(64 * sinks.len().max(1));
    let (commit_tx, commit_rx) = watch::channel(committer::Committed {
        positions: restored_positions.clone(),
        lanes: Default::default(),
    });

    let progress = options
        .progress
        .then(|| summary::spawn_progress(size_hint, Arc::clone(&counters)));

    let mut sink_inboxes = Vec::new();
    let mut sink_tasks = Vec::new();
    for sink in sinks {
        let (tx, rx) = mpsc::channel::<SinkMessage>(capacities.sink_channel_capacity);
        sink_inboxes.push(tx);
        let acks = ack_tx.clone();
        sink_tasks.push(tokio::task::spawn_blocking(move || {
            run_sink(sink, rx, acks)
        }));
    }
    drop(ack_tx);

    let decoder = telemetry::Decoder::new(
        config.decode.layout.clone(),
        decode_stage::decode_options(&config.decode, &config.time),
    );
    let decode_counters = Arc::clone(&counters);
    let decode_task = tokio::task::spawn_blocking(move || {
        decode_stage::run_decode_parallel(
            decoder,
            source_rx,
            decoded_tx,
            decode_counters,
            decode_workers,
        );
    });
    let operator_counters = Arc::clone(&counters);
    let outlets = OperatorOutlets {
        sinks: sink_inboxes,
        pending: pending_tx,
    };
    let operator_task = tokio::task::spawn_blocking(move || {
        operators::run_operators(operators, decoded_rx, outlets, operator_counters)
    });
    let committer_task = tokio::spawn(committer::run_committer(
        store,
        sink_names,
        pending_rx,
        ack_rx,
        commit_tx,
        unsaved_models,
        Arc::clone(&counters),
    ));
    let source_task = tokio::spawn(source_task::run_source(
        source,
        restored_positions,
        first_barrier_id,
        config.checkpoint.interval.std(),
        source_tx,
        commit_rx,
        shutdown,
    ));

    let mut errors: Vec<PipelineError> = Vec::new();
    let task_error = |err: tokio::task::JoinError| PipelineError::Task(err.to_string());
    let source_end = match source_task.await.map_err(task_error) {
        Ok(Ok(end)) => Some(end),
        Ok(Err(err)) | Err(err) => {
            errors.push(err);
            None
        }
    };
    if let Err(err) = decode_task.await {
        errors.push(task_error(err));
    }
    match operator_task.await.map_err(task_error) {
        Ok(Ok(())) => {}
        Ok(Err(err)) | Err(err) => errors.push(err),
    }
    for task in sink_tasks {
        match task.await.map_err(task_error) {
            Ok(Ok(())) => {}
            Ok(Err(err)) => errors.push(err.into()),
            Err(err) => errors.push(err),
        }
    }
    let store = match committer_task.await.map_err(task_error) {
        Ok(Ok(store)) => Some(store),
        Ok(Err(err)) | Err(err) => {
            errors.push(err);
            None
        }
    };
    if let Some(progress) = progress {
        progress.finish();
    }
    if let Some((_, task)) = control {
        task.abort();
    }
    errors.sort_by_key(PipelineError::is_knock_on);
    if let Some(first) = errors.into_iter().next() {
        return Err(first);
    }
    Ok(RunReport {
        end: source_end.unwrap_or(SourceEnd::EndOfInput),
        resumed_from: checkpoint.map(|c| c.id),
        source: source_description,
        outputs,
        delivery: delivery
            .iter()
            .map(|(name, metrics)| (name.clone(), metrics.snapshot()))
            .collect(),
        kinesis: kinesis_metrics.map(|metrics| metrics.snapshot()),
        state: store.map(|s| s.describe()).unwrap_or_default(),
        counters,
        elapsed: started.elapsed(),
    })
}
