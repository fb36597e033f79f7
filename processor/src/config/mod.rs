//! The configuration: one TOML file, `FLEETSTREAM_…` environment overrides, validated at start-up.
//!
//! Layers, later wins: the embedded default (`config/local.toml`, compiled in) or the file given
//! with `--config` → environment variables → command-line flags. Every key is documented in the
//! README's config reference; `fleetstream validate-config FILE` checks a file.

mod anomaly;
mod aws;
mod duration;
mod influxdb;
mod kinesis;
mod load;
mod rollup;
mod sns;
mod validate;

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

pub use anomaly::{AnomalyConfig, AnomalyOutputMode};
pub use aws::{AwsConfig, S3DeadLetterConfig, S3StateConfig, TimestreamSinkConfig};
pub use duration::DurationText;
pub use influxdb::{InfluxApi, InfluxDbSinkConfig};
pub use kinesis::{HandoffConfig, InitialPosition, KinesisSourceConfig};
pub use load::{
    load, load_embedded_default, load_file, parse, ConfigError, ConfigProblem, EMBEDDED_DEFAULT,
};
pub use rollup::{
    default_rollups, EmitConfig, GroupDimension, RollupConfig, WindowConfig, DEFAULT_ROLLUP,
};
pub use sns::{RateLimit, SnsRoute, SnsSinkConfig};

/// The whole configuration.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Where records come from.
    pub source: SourceConfig,
    /// How payloads are decoded.
    #[serde(default)]
    pub decode: DecodeConfig,
    /// Event-time handling.
    #[serde(default)]
    pub time: TimeConfig,
    /// Windowed rollups (default: 1-minute tumbling windows per vehicle and signal).
    #[serde(default = "default_rollups")]
    pub rollups: Vec<RollupConfig>,
    /// Threshold rules.
    #[serde(default)]
    pub rules: Vec<models::rules::RuleSpec>,
    /// AWS IoT Events detector models, one instance per vehicle.
    #[serde(default)]
    pub detectors: Vec<DetectorConfig>,
    /// AWS IoT Events alarm models, one instance per vehicle (same fields as detectors).
    #[serde(default)]
    pub alarms: Vec<DetectorConfig>,
    /// Random cut forest anomaly models, one forest per vehicle.
    #[serde(default)]
    pub anomaly: Vec<AnomalyConfig>,
    /// Channel capacities between stages.
    #[serde(default)]
    pub pipeline: PipelineConfig,
    /// Checkpoint cadence.
    #[serde(default)]
    pub checkpoint: CheckpointConfig,
    /// Shutdown behaviour.
    #[serde(default)]
    pub shutdown: ShutdownConfig,
    /// Where checkpoints are kept.
    #[serde(default)]
    pub state: StateConfig,
    /// Output sinks.
    #[serde(default)]
    pub sinks: SinksConfig,
    /// Where rejected records go.
    #[serde(default)]
    pub dead_letter: DeadLetterConfig,
    /// AWS region, profile and endpoint for every AWS client.
    #[serde(default)]
    pub aws: AwsConfig,
}

/// `[[detectors]]`: an AWS IoT Events detector model run per vehicle.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DetectorConfig {
    /// The model JSON (`describe-detector-model` output or a `CreateDetectorModel` body);
    /// a relative path is relative to the config file (the working directory for the embedded
    /// default).
    pub model: PathBuf,
    /// Optional `CreateInput` JSON of the input the model was written against (relative like
    /// `model`); its name replaces `input`, and `input_mapping` maps its attribute paths.
    #[serde(default)]
    pub input_definition: Option<PathBuf>,
    /// Input attribute path → record field (`"sensorData.pressure" = "oil_pressure_kpa"`).
    #[serde(default)]
    pub input_mapping: std::collections::BTreeMap<String, String>,
    /// The input name the model's expressions use (`$input.<input>.coolant_temp_c`); the input
    /// message is the record: `vehicle_id`, `fleet`, `ts`, every signal and attribute by name,
    /// and `signals.<name>` / `attributes.<name>`.
    #[serde(default = "default_detector_input")]
    pub input: String,
    /// Clock of `setTimer`: `event` (watermark; deterministic replays) or `processing` (wall).
    #[serde(default)]
    pub timers: models::detector::TimerClock,
    /// Several inputs for a model that reads more than one (`[[detectors.inputs]]`); replaces
    /// `input`/`input_definition`/`input_mapping`. A record is processed once per input whose
    /// mapped fields it carries, in this order.
    #[serde(default)]
    pub inputs: Vec<InputConfig>,
}

/// `[[detectors.inputs]]`: one IoT Events input a model reads.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InputConfig {
    /// Input name (taken from `definition` when that is given).
    #[serde(default)]
    pub name: Option<String>,
    /// `CreateInput` JSON (relative to the config file).
    #[serde(default)]
    pub definition: Option<PathBuf>,
    /// Input attribute path → record field.
    #[serde(default)]
    pub mapping: std::collections::BTreeMap<String, String>,
}

fn default_detector_input() -> String {
    "Telemetry".to_owned()
}

/// Which source to read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SourceKind {
    /// The built-in simulated fleet.
    Simulator,
    /// A file or a directory of files (NDJSON, concatenated JSON, JSON arrays; gzip or not).
    File,
    /// Standard input.
    Stdin,
    /// A Kinesis data stream, with shards leased through a DynamoDB table (`[source.kinesis]`).
    Kinesis,
}

/// `[source]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SourceConfig {
    /// `simulator`, `file`, `stdin` or `kinesis`.
    pub kind: SourceKind,
    /// File or directory to read when `kind = "file"`.
    #[serde(default)]
    pub path: Option<PathBuf>,
    /// Bytes read per batch from files and stdin (a file is cut into pieces of about this size
    /// for the decode workers).
    #[serde(default = "default_read_bytes")]
    pub read_bytes: usize,
    /// `[source.simulator]`: the simulated fleet.
    #[serde(default)]
    pub simulator: SimulatorSourceConfig,
    /// `[source.kinesis]`: the stream and its lease table.
    #[serde(default)]
    pub kinesis: KinesisSourceConfig,
}

fn default_read_bytes() -> usize {
    1 << 20
}

/// `[source.simulator]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SimulatorSourceConfig {
    /// The fleet to simulate.
    #[serde(flatten)]
    pub spec: edge::SimulationSpec,
    /// Pace records at event-time speed instead of as fast as possible.
    #[serde(default)]
    pub realtime: bool,
    /// Records per batch.
    #[serde(default = "default_simulator_batch")]
    pub batch_records: usize,
}

fn default_simulator_batch() -> usize {
    2_000
}

impl Default for SimulatorSourceConfig {
    fn default() -> Self {
        Self {
            spec: edge::SimulationSpec::default(),
            realtime: false,
            batch_records: default_simulator_batch(),
        }
    }
}

/// `[decode]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DecodeConfig {
    /// Wire layout: `{ format = "wide" }`, `{ format = "long", … }`, `{ format = "mapping", … }`.
    pub layout: telemetry::Format,
    /// Unit of numeric timestamps: `auto`, `seconds`, `millis`, `micros`, `nanos`.
    pub time_unit: telemetry::TimeUnit,
    /// Records before this RFC 3339 time are rejected.
    pub min_event_time: String,
    /// Records further than this ahead of the wall clock are rejected.
    pub max_future_skew: DurationText,
    /// Larger signal magnitudes are rejected per field.
    pub max_abs_signal_value: f64,
    /// Larger records are rejected.
    pub max_record_bytes: usize,
    /// Largest decompressed size of one gzip payload or file.
    pub max_decompressed_bytes: u64,
}

impl Default for DecodeConfig {
    fn default() -> Self {
        Self {
            layout: telemetry::Format::Wide,
            time_unit: telemetry::TimeUnit::Auto,
            min_event_time: "2000-01-01T00:00:00Z".to_owned(),
            max_future_skew: DurationText(24 * 3_600_000),
            max_abs_signal_value: 1e12,
            max_record_bytes: 1 << 20,
            max_decompressed_bytes: 4 << 30,
        }
    }
}

/// `[time]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TimeConfig {
    /// Which clock gives event time: `event` (the record's timestamp), `arrival` (processing
    /// time), or `event_or_arrival` (arrival time when the timestamp is missing or unusable).
    pub source: telemetry::TimeSource,
    /// How far behind the newest event of a stream an event may arrive before windows close.
    pub max_out_of_orderness: DurationText,
    /// A stream silent this long (processing time) stops holding the watermark back; 0 = never.
    pub idle_timeout: DurationText,
    /// Events beyond `decode.max_future_skew`: `reject` (dead letter) or `clamp` (to the limit).
    pub future: telemetry::FuturePolicy,
}

impl Default for TimeConfig {
    fn default() -> Self {
        Self {
            source: telemetry::TimeSource::Event,
            max_out_of_orderness: DurationText(10_000),
            idle_timeout: DurationText(0),
            future: telemetry::FuturePolicy::Reject,
        }
    }
}

/// `[pipeline]`: bounded channels between stages (in batches).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PipelineConfig {
    /// Source → decode.
    pub source_channel_capacity: usize,
    /// Decode → windows and rules.
    pub decoded_channel_capacity: usize,
    /// Windows and rules → each sink.
    pub sink_channel_capacity: usize,
    /// Threads decoding batches in parallel (order is kept); 0 (the default) is one per CPU
    /// core the process may use, at most [`MAX_AUTO_DECODE_WORKERS`] (see
    /// [`Self::decode_worker_count`]).
    pub decode_workers: usize,
}

/// The most decode workers `pipeline.decode_workers = 0` starts: the operators and each sink run
/// on one thread apiece, so beyond a few decoders the cores they add only wait.
pub const MAX_AUTO_DECODE_WORKERS: usize = 4;

impl PipelineConfig {
    /// The decode threads to start: `decode_workers`, or for 0 one per core this process may use
    /// (its CPU quota counts, as in a container), between 1 and [`MAX_AUTO_DECODE_WORKERS`].
    /// Decoding is about half of the work of a rollup job, so on two cores one decoder alone
    /// becomes the stage every other waits on (the README's Performance section has the runs).
    pub fn decode_worker_count(&self) -> usize {
        match self.decode_workers {
            0 => std::thread::available_parallelism()
                .map_or(1, std::num::NonZeroUsize::get)
                .clamp(1, MAX_AUTO_DECODE_WORKERS),
            workers => workers,
        }
    }
}

impl Default for PipelineConfig {
    fn default() -> Self {
        Self {
            source_channel_capacity: 8,
            decoded_channel_capacity: 8,
            sink_channel_capacity: 16,
            decode_workers: 0,
        }
    }
}

/// `[checkpoint]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CheckpointConfig {
    /// Time between checkpoints (wall clock).
    pub interval: DurationText,
}

impl Default for CheckpointConfig {
    fn default() -> Self {
        Self {
            interval: DurationText(5_000),
        }
    }
}

/// What to do with open windows on SIGINT/SIGTERM.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OpenWindowsOnShutdown {
    /// Keep them in the checkpoint; the next start continues them.
    Keep,
    /// Also write them as partial results (`is_final = 0`); they are still kept, and the final
    /// result later overwrites the partial one with a higher version.
    EmitPartial,
}

/// `[shutdown]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ShutdownConfig {
    /// Everything (flush, commit) must finish within this after the signal.
    pub deadline: DurationText,
    /// `keep` or `emit_partial`.
    pub open_windows: OpenWindowsOnShutdown,
}

impl Default for ShutdownConfig {
    fn default() -> Self {
        Self {
            deadline: DurationText(20_000),
            open_windows: OpenWindowsOnShutdown::Keep,
        }
    }
}

/// `[state]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct StateConfig {
    /// Where checkpoints live: `sqlite` (the file `path`) or `s3` (`[state.s3]`).
    pub target: StateTarget,
    /// SQLite file holding checkpoints (positions and operator state).
    pub path: PathBuf,
    /// `[state.s3]`, used with `target = "s3"`.
    pub s3: S3StateConfig,
}

impl Default for StateConfig {
    fn default() -> Self {
        Self {
            target: StateTarget::Sqlite,
            path: PathBuf::from("out/fleetstream-state.db"),
            s3: S3StateConfig::default(),
        }
    }
}

/// Where checkpoints are stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum StateTarget {
    /// A local SQLite file (the default).
    #[default]
    Sqlite,
    /// Objects in an S3 bucket (no volume needed on Fargate).
    S3,
}

/// `[sinks]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
pub struct SinksConfig {
    /// `[sinks.sqlite]`.
    pub sqlite: SqliteSinkConfig,
    /// `[sinks.ndjson]`.
    pub ndjson: NdjsonSinkConfig,
    /// `[sinks.influxdb]`.
    pub influxdb: InfluxDbSinkConfig,
    /// `[sinks.timestream]`.
    pub timestream: TimestreamSinkConfig,
    /// `[sinks.sns]`.
    pub sns: SnsSinkConfig,
}

/// `[sinks.sqlite]`: the embedded default store.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SqliteSinkConfig {
    /// Write to SQLite.
    pub enabled: bool,
    /// Database file.
    pub path: PathBuf,
    /// Rows per transaction (a checkpoint also commits).
    pub batch_rows: usize,
    /// Page cache in MiB (allocated as the database grows into it).
    pub cache_mib: u64,
}

impl Default for SqliteSinkConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            path: PathBuf::from("out/fleetstream.db"),
            batch_rows: 20_000,
            cache_mib: crate::sinks::sqlite::DEFAULT_CACHE_MIB,
        }
    }
}

/// `[sinks.ndjson]`: rollups and alerts as JSON lines.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct NdjsonSinkConfig {
    /// Write NDJSON.
    pub enabled: bool,
    /// File path, or `-` for standard output.
    pub path: PathBuf,
}

impl Default for NdjsonSinkConfig {
    fn default() -> Self {
        Self {
            enabled: false,
            path: PathBuf::from("out/outputs.ndjson"),
        }
    }
}

/// Where dead letters go.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum DeadLetterTarget {
    /// The NDJSON file `dead_letter.path` (the default).
    #[default]
    File,
    /// NDJSON objects in the S3 bucket of `[dead_letter.s3]`.
    S3,
}

/// `[dead_letter]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DeadLetterConfig {
    /// `file` or `s3`.
    pub target: DeadLetterTarget,
    /// NDJSON file receiving rejected records (raw payload in base64, position, reason).
    pub path: PathBuf,
    /// `[dead_letter.s3]`, used with `target = "s3"`.
    pub s3: S3DeadLetterConfig,
}

impl Default for DeadLetterConfig {
    fn default() -> Self {
        Self {
            target: DeadLetterTarget::File,
            path: PathBuf::from("out/dead-letters.ndjson"),
            s3: S3DeadLetterConfig::default(),
        }
    }
}
