//! `[sinks.influxdb]`: rollups, anomaly scores, detector states and alerts as InfluxDB line
//! protocol (InfluxDB 1.x, 2.x, 3.x and Amazon Timestream for InfluxDB).

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::sinks::delivery::RetryConfig;

/// Which write endpoint to call.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum InfluxApi {
    /// InfluxDB 1.x `POST /write?db=…&precision=ms`.
    V1,
    /// InfluxDB 2.x `POST /api/v2/write?org=…&bucket=…&precision=ms`.
    V2,
    /// InfluxDB 3 `POST /api/v3/write_lp?db=…&precision=millisecond` (partial writes accepted;
    /// rejected lines are reported one by one).
    V3,
}

/// `[sinks.influxdb]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct InfluxDbSinkConfig {
    /// Write to InfluxDB.
    pub enabled: bool,
    /// Base URL of the server (`https://…:8086`).
    pub url: String,
    /// `v1`, `v2` or `v3`.
    pub api: InfluxApi,
    /// Database (v1, v3) or bucket (v2).
    pub database: String,
    /// Organisation (v2 only).
    pub org: String,
    /// Environment variable holding the API token (sent as `Authorization: Token …`); empty
    /// for none. The token itself never goes in the config file.
    pub token_env: String,
    /// Gzip request bodies.
    pub gzip: bool,
    /// Lines per request at most.
    pub batch_lines: usize,
    /// Uncompressed bytes per request at most.
    pub batch_bytes: usize,
    /// Per-request timeout.
    pub request_timeout: crate::config::DurationText,
    /// Retry policy for throttling, 5xx and network errors.
    pub retry: RetryConfig,
    /// NDJSON file of lines the server rejected for good, with its reason.
    pub undelivered_path: PathBuf,
}

impl Default for InfluxDbSinkConfig {
    fn default() -> Self {
        Self {
            enabled: false,
            url: "http://127.0.0.1:8086".to_owned(),
            api: InfluxApi::V1,
            database: "fleetstream".to_owned(),
            org: String::new(),
            token_env: String::new(),
            gzip: true,
            batch_lines: 5_000,
            batch_bytes: 1 << 20,
            request_timeout: crate::config::DurationText(30_000),
            retry: RetryConfig::default(),
            undelivered_path: PathBuf::from("out/undelivered-influxdb.ndjson"),
        }
    }
}

impl InfluxDbSinkConfig {
    /// Problems with the values as (key, message), for config validation.
    pub fn problems(&self) -> Vec<(String, String)> {
        let mut problems = self.retry.problems();
        if !self.enabled {
            return problems;
        }
        let mut problem = |key: &str, message: String| problems.push((key.to_owned(), message));
        if !(self.url.starts_with("http://") || self.url.starts_with("https://")) {
            problem(
                "url",
                format!("must start with http:// or https://, got {:?}", self.url),
            );
        }
        if self.database.is_empty() {
            problem("database", "must not be empty".to_owned());
        }
        if self.api == InfluxApi::V2 && self.org.is_empty() {
            problem("org", "is required with api = \"v2\"".to_owned());
        }
        if self.batch_lines == 0 {
            problem("batch_lines", "must be at least 1".to_owned());
        }
        if self.batch_bytes < 1024 {
            problem("batch_bytes", "must be at least 1024".to_owned());
        }
        if !self.token_env.is_empty() && std::env::var_os(&self.token_env).is_none() {
            problem(
                "token_env",
                format!("names {}, which is not set", self.token_env),
            );
        }
        problems
    }
}
