//! Command-line interface.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

use crate::logging::LogFormat;

/// fleetstream: real-time telemetry processing for connected-vehicle fleets.
///
/// Reads vehicle telemetry (a simulated fleet, files, stdin, a Kinesis stream), computes event-time
/// rollups per vehicle and signal, evaluates alert rules, and writes everything to SQLite
/// (and other sinks), checkpointing so a restart loses and duplicates nothing.
#[derive(Debug, Parser)]
#[command(name = "fleetstream", version, propagate_version = true)]
pub struct Cli {
    /// Log format on stderr.
    #[arg(long, value_enum, global = true, default_value_t = LogFormat::Auto)]
    pub log_format: LogFormat,

    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the pipeline (the embedded default config when no --config is given).
    Run(RunArgs),
    /// Write a simulated fleet's telemetry as NDJSON (e.g. the W1 benchmark workload).
    Simulate(SimulateArgs),
    /// Check a config file and print every problem with its key path.
    ValidateConfig(ValidateArgs),
    /// Work with AWS IoT Events detector models.
    #[command(subcommand)]
    Detectors(DetectorsCommand),
    /// Acknowledge, snooze, disable, enable or reset a vehicle's alarm in a running service.
    Alarms(AlarmArgs),
    /// Score a CSV time series offline with a random cut forest (to tune its parameters).
    Score(ScoreArgs),
    /// Show the Kinesis lease table: shards, owners, checkpoints, lag and lineage.
    Leases(LeasesArgs),
    /// Put the records of an NDJSON file into the configured Kinesis stream (replays, load tests).
    Produce(ProduceArgs),
}

/// `fleetstream produce --config aws.toml --input w1.ndjson`.
#[derive(Debug, Args)]
#[command(
    after_help = "Puts every line of the input as one Kinesis record (or packs them into KPL aggregates with --aggregate), with the vehicle id as partition key so each vehicle's records stay in order in one shard. Uses PutRecords (500 records per call, one call at a time so per-vehicle order holds); entries the stream refuses (throttling) are sent again. Prints a JSON summary with the last sequence number written to each shard.\n\nExamples:\n  fleetstream produce --config config/aws.toml --input w1.ndjson\n  fleetstream produce --config local-kinesis.toml --input w1.ndjson --create-stream 4 --aggregate 20"
)]
pub struct ProduceArgs {
    /// Config file with `[source] kind = "kinesis"` (stream name, endpoint).
    #[arg(long, short)]
    pub config: PathBuf,
    /// NDJSON file, one record per line.
    #[arg(long, short)]
    pub input: PathBuf,
    /// JSON field holding the partition key.
    #[arg(long, default_value = "vehicle_id")]
    pub partition_key_field: String,
    /// Pack up to this many records bound for the same shard into one KPL aggregate.
    #[arg(long)]
    pub aggregate: Option<usize>,
    /// Create the stream with this many shards first (for emulators and tests).
    #[arg(long)]
    pub create_stream: Option<i32>,
}

/// `fleetstream leases --config aws.toml`.
#[derive(Debug, Args)]
#[command(
    after_help = "Reads the lease table named by [source.kinesis] and lists every shard of the stream: whether it is open or closed, who holds its lease, the lease counter, the checkpoint (sequence/sub-sequence, TRIM_HORIZON, SHARD_END), how far the checkpoint is behind the tip (one GetRecords of one record per unfinished shard), and parent/child lineage. Shards without a lease were either not reached yet (children waiting for their parents) or read to the end and cleaned up.\n\nExamples:\n  fleetstream leases --config config/aws.toml\n  fleetstream leases --config config/aws.toml --json"
)]
pub struct LeasesArgs {
    /// Config file with `[source] kind = "kinesis"`.
    #[arg(long, short)]
    pub config: PathBuf,
    /// Print JSON lines instead of a table.
    #[arg(long)]
    pub json: bool,
    /// Skip the lag column (no GetRecords calls).
    #[arg(long)]
    pub no_lag: bool,
}

/// `fleetstream score --input series.csv --output scores.csv`.
#[derive(Debug, Args)]
#[command(
    after_help = "Writes one row per input row, in order: the time value, anomaly_score, grade, confidence, warming_up and the explanation (KDA's ANOMALY_EXPLANATION JSON). Values that are empty or not numbers are imputed (the signal's last value) and counted.\n\nExamples:\n  fleetstream score --input speed.csv --output scores.csv\n  fleetstream score --input trip.csv --output - --value-columns speed_kmh,rpm --shingle-size 4"
)]
pub struct ScoreArgs {
    /// CSV file with a header row (`-` for stdin).
    #[arg(long, short)]
    pub input: PathBuf,
    /// Where to write the scores as CSV (`-` for stdout).
    #[arg(long, short)]
    pub output: PathBuf,
    /// Column holding the time (default: `timestamp`, `time` or `ts`, else the first column).
    #[arg(long)]
    pub time_column: Option<String>,
    /// Comma-separated columns to score together (default: every other column).
    #[arg(long, value_delimiter = ',')]
    pub value_columns: Vec<String>,
    /// Trees in the forest (KDA's numberOfTrees).
    #[arg(long, default_value_t = 100)]
    pub trees: usize,
    /// Points each tree samples (KDA's subSampleSize).
    #[arg(long, default_value_t = 256)]
    pub sample_size: usize,
    /// Consecutive rows concatenated into one point (KDA's shingleSize).
    #[arg(long, default_value_t = 1)]
    pub shingle_size: usize,
    /// Decay of a point's sampling weight per later row (default 1 / (10 × sample size); KDA's
    /// timeDecay N corresponds to 1/N).
    #[arg(long)]
    pub time_decay: Option<f64>,
    /// Seed of the forest's random generator.
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    /// Feed raw values instead of scaling each column by its running mean and deviation.
    #[arg(long)]
    pub no_normalize: bool,
    /// Deviations above the mean score where the grade starts rising.
    #[arg(long, default_value_t = 3.0)]
    pub z: f64,
    /// Omit the explanation column (faster).
    #[arg(long)]
    pub no_explanation: bool,
}

/// What to do with an alarm.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum AlarmAction {
    /// ACTIVE → ACKNOWLEDGED; LATCHED → NORMAL.
    Acknowledge,
    /// Stop evaluating for `--for` (event time).
    Snooze,
    /// Stop evaluating.
    Disable,
    /// Start evaluating again.
    Enable,
    /// Back to NORMAL.
    Reset,
}

/// `fleetstream alarms ACTION --model M --vehicle V`.
#[derive(Debug, Args)]
#[command(
    after_help = "The command is queued in the SQLite output (table alarm_commands); the running \
service applies it within about a second, at its current event time.\n\nExample:\n  \
fleetstream alarms acknowledge --model CoolantAlarm --vehicle veh-000123"
)]
pub struct AlarmArgs {
    /// What to do.
    #[arg(value_enum)]
    pub action: AlarmAction,
    /// Alarm model name (`alarmModelName`).
    #[arg(long)]
    pub model: String,
    /// Vehicle id.
    #[arg(long)]
    pub vehicle: String,
    /// Snooze length (`10m`, `1h`).
    #[arg(long = "for", value_name = "DURATION")]
    pub snooze_for: Option<String>,
    /// The service's SQLite output (default: sinks.sqlite.path of --config or the embedded default).
    #[arg(long)]
    pub db: Option<PathBuf>,
    /// Config file of the service.
    #[arg(long, short)]
    pub config: Option<PathBuf>,
}

/// `fleetstream detectors …`.
#[derive(Debug, Subcommand)]
pub enum DetectorsCommand {
    /// Load a detector model (describe-detector-model output or a CreateDetectorModel body) and
    /// report what will not run and why.
    Validate(ValidateArgs),
}

/// `fleetstream run`.
#[derive(Debug, Args)]
#[command(after_help = "Examples:\n  \
    fleetstream run                                  # simulated fleet → out/fleetstream.db\n  \
    fleetstream run --input w1.ndjson                # a file (NDJSON, concatenated JSON, gzip)\n  \
    fleetstream run --config config/files.toml --fresh\n  \
    cat data.ndjson | fleetstream run --input -      # standard input")]
pub struct RunArgs {
    /// Config file (TOML); default: the embedded config/local.toml.
    #[arg(long, short, env = "FLEETSTREAM_CONFIG")]
    pub config: Option<PathBuf>,

    /// Read this file or directory instead of the configured source (`-` for stdin).
    #[arg(long, short)]
    pub input: Option<PathBuf>,

    /// Write the SQLite output here (overrides sinks.sqlite.path).
    #[arg(long)]
    pub db: Option<PathBuf>,

    /// Forget saved checkpoints and start from the beginning of the input.
    #[arg(long)]
    pub fresh: bool,

    /// Do not draw a progress bar.
    #[arg(long)]
    pub no_progress: bool,

    /// Create the databases and tables the remote sinks write to (Timestream database and
    /// table with the configured retention, InfluxDB 1.x database) before starting.
    #[arg(long)]
    pub create_tables: bool,
}

/// `fleetstream simulate`.
#[derive(Debug, Args)]
#[command(
    after_help = "W1, the standard benchmark workload (1.8 M records):\n  \
    fleetstream simulate --vehicles 1000 --seconds 1800 --hz 1 --late-fraction 0.02 --seed 42 --out w1.ndjson"
)]
pub struct SimulateArgs {
    /// Number of vehicles.
    #[arg(long, default_value_t = 100)]
    pub vehicles: u32,
    /// Simulated seconds.
    #[arg(long, default_value_t = 600)]
    pub seconds: u32,
    /// Samples per second per vehicle.
    #[arg(long, default_value_t = 1.0)]
    pub hz: f64,
    /// Fraction of records delivered late (later in file order).
    #[arg(long, default_value_t = 0.02)]
    pub late_fraction: f64,
    /// Largest delivery delay of a late record, in milliseconds.
    #[arg(long, default_value_t = 5_000)]
    pub max_delay_ms: i64,
    /// Random seed (same seed, same file).
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    /// Fleets the vehicles are spread over.
    #[arg(long, default_value_t = 10)]
    pub fleets: u32,
    /// Expected injected anomalies per vehicle per simulated hour.
    #[arg(long, default_value_t = 2.0)]
    pub anomalies_per_vehicle_hour: f64,
    /// Event time of the first sample (RFC 3339).
    #[arg(long, default_value = "2026-01-01T00:00:00Z")]
    pub start: String,
    /// Output file (`-` for stdout); a name ending in `.gz` is gzip-compressed.
    #[arg(long, short)]
    pub out: PathBuf,
    /// Anomaly labels file (NDJSON); default: next to --out as `<name>.labels.ndjson`.
    #[arg(long)]
    pub labels: Option<PathBuf>,
    /// Write at event-time speed instead of as fast as possible.
    #[arg(long)]
    pub realtime: bool,
}

/// `fleetstream validate-config`.
#[derive(Debug, Args)]
pub struct ValidateArgs {
    /// The config file to check.
    pub file: PathBuf,
}
