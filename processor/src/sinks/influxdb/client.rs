//! The HTTP side of the InfluxDB sink: one write request, and what its answer means.

use std::io::Write;
use std::time::Duration;

use flate2::write::GzEncoder;
use reqwest::header::{HeaderMap, HeaderValue, AUTHORIZATION, CONTENT_ENCODING, CONTENT_TYPE};

use crate::config::{InfluxApi, InfluxDbSinkConfig};

/// What one write request achieved.
#[derive(Debug, PartialEq)]
pub enum WriteOutcome {
    /// Every line was written.
    Written,
    /// The server named the lines it rejected (InfluxDB 3): `(line index in the body, reason)`;
    /// every other line was written.
    LinesRejected(Vec<(usize, String)>),
    /// Some or all lines were rejected, without saying which (InfluxDB 1.x and 2.x partial
    /// writes, parse errors, a body too large); the caller narrows it down by halving.
    Unidentified(String),
    /// Worth retrying: throttling, a 5xx, a timeout or a network error.
    Retryable {
        /// What happened.
        reason: String,
        /// The server's `Retry-After`, when it sent one.
        retry_after: Option<Duration>,
    },
    /// Retrying cannot help (authentication, a missing database): stop the pipeline.
    Fatal(String),
}

/// A client for one InfluxDB write endpoint.
#[derive(Debug, Clone)]
pub struct InfluxClient {
    http: reqwest::Client,
    base: String,
    write_url: reqwest::Url,
    api: InfluxApi,
    database: String,
    gzip: bool,
}

/// The client could not be built from the config.
#[derive(Debug, thiserror::Error)]
#[error("sinks.influxdb: {0}")]
pub struct ClientError(String);

impl InfluxClient {
    /// A client for `config`; reads the token from `config.token_env`.
    pub fn new(config: &InfluxDbSinkConfig) -> Result<Self, ClientError> {
        let base = config.url.trim_end_matches('/').to_owned();
        let (path, query): (&str, Vec<(&str, &str)>) = match config.api {
            InfluxApi::V1 => (
                "/write",
                vec![("db", &config.database), ("precision", "ms")],
            ),
            InfluxApi::V2 => (
                "/api/v2/write",
                vec![
                    ("org", &config.org),
                    ("bucket", &config.database),
                    ("precision", "ms"),
                ],
            ),
            InfluxApi::V3 => (
                "/api/v3/write_lp",
                vec![
                    ("db", &config.database),
                    ("precision", "millisecond"),
                    ("accept_partial", "true"),
                ],
            ),
        };
        let write_url = reqwest::Url::parse_with_params(&format!("{base}{path}"), &query)
            .map_err(|err| ClientError(format!("url {:?}: {err}", config.url)))?;
        let mut headers = HeaderMap::new();
        headers.insert(
            CONTENT_TYPE,
            HeaderValue::from_static("text/plain; charset=utf-8"),
        );
        if !config.token_env.is_empty() {
            let token = std::env::var(&config.token_env)
                .map_err(|_| ClientError(format!("{} is not set", config.token_env)))?;
            let scheme = if config.api == InfluxApi::V3 {
                "Bearer"
            } else {
                "Token"
            };
            let mut value = HeaderValue::from_str(&format!("{scheme} {token}"))
                .map_err(|_| ClientError(format!("{} holds an invalid token", config.token_env)))?;
            value.set_sensitive(true);
            headers.insert(AUTHORIZATION, value);
        }
        let http = reqwest::Client::builder()
            .default_headers(headers)
            .timeout(config.request_timeout.std())
            .build()
            .map_err(|err| ClientError(format!("HTTP client: {err}")))?;
        Ok(Self {
            http,
            base,
            write_url,
            api: config.api,
            database: config.database.clone(),
            gzip: config.gzip,
        })
    }

    /// The write endpoint, for the summary.
    pub fn describe(&self) -> String {
        self.write_url.to_string()
    }

    /// Creates the database (InfluxDB 1.x `CREATE DATABASE`, which is idempotent); InfluxDB 3
    /// creates databases on first write and 2.x buckets are created by an administrator.
    pub async fn create_database(&self) -> Result<(), String> {
        if self.api != InfluxApi::V1 {
            return Ok(());
        }
        let statement = format!("CREATE DATABASE \"{}\"", self.database.replace('"', "\\\""));
        let url = reqwest::Url::parse_with_params(
            &format!("{}/query", self.base),
            [("q", statement.as_str())],
        )
        .map_err(|err| format!("query url: {err}"))?;
        let response = self
            .http
            .post(url)
            .send()
            .await
            .map_err(|err| format!("creating database {}: {err}", self.database))?;
        if response.status().is_success() {
            Ok(())
        } else {
            let status = response.status();
            let body = response.text().await.unwrap_or_default();
            Err(format!(
                "creating database {}: HTTP {status}: {body}",
                self.database
            ))
        }
    }

    /// Sends `body` (newline-terminated lines) once.
    pub async fn write(&self, body: &str) -> WriteOutcome {
        let mut request = self.http.post(self.write_url.clone());
        if self.gzip {
            let mut encoder = GzEncoder::new(Vec::new(), flate2::Compression::fast());
            let compressed = encoder
                .write_all(body.as_bytes())
                .and_then(|()| encoder.finish());
            match compressed {
                Ok(bytes) => {
                    request = request.header(CONTENT_ENCODING, "gzip").body(bytes);
                }
                Err(err) => return WriteOutcome::Fatal(format!("gzip: {err}")),
            }
        } else {
            request = request.body(body.to_owned());
        }
        let response = match request.send().await {
            Ok(response) => response,
            Err(err) => {
                return WriteOutcome::Retryable {
                    reason: format!("request failed: {}", error_chain(&err)),
                    retry_after: None,
                }
            }
        };
        let status = response.status();
        if status.is_success() {
            return WriteOutcome::Written;
        }
        let retry_after = response
            .headers()
            .get(reqwest::header::RETRY_AFTER)
            .and_then(|value| value.to_str().ok())
            .and_then(|text| text.trim().parse::<u64>().ok())
            .map(Duration::from_secs);
        let text = response.text().await.unwrap_or_default();
        classify(status.as_u16(), &text, retry_after)
    }
}

/// What an error answer means (see [`WriteOutcome`]).
pub fn classify(status: u16, body: &str, retry_after: Option<Duration>) -> WriteOutcome {
    let message = error_message(body);
    match status {
        429 | 500..=599 => WriteOutcome::Retryable {
            reason: format!("HTTP {status}: {message}"),
            retry_after,
        },
        400 | 413 | 422 => match rejected_lines(body) {
            Some(lines) if !lines.is_empty() => WriteOutcome::LinesRejected(lines),
            _ => WriteOutcome::Unidentified(format!("HTTP {status}: {message}")),
        },
        _ => WriteOutcome::Fatal(format!("HTTP {status}: {message}")),
    }
}

/// The `error` or `message` of a JSON error body, else the body itself.
fn error_message(body: &str) -> String {
    let parsed: Option<serde_json::Value> = serde_json::from_str(body).ok();
    parsed
        .as_ref()
        .and_then(|value| value.get("error").or_else(|| value.get("message")))
        .and_then(|value| value.as_str())
        .map_or_else(|| body.trim().to_owned(), str::to_owned)
}

/// InfluxDB 3's per-line errors: `{"error": …, "data": [{"line_number": 2, "error_message": …}]}`
/// (line numbers count from 1).
fn rejected_lines(body: &str) -> Option<Vec<(usize, String)>> {
    let parsed: serde_json::Value = serde_json::from_str(body).ok()?;
    let data = parsed.get("data")?.as_array()?;
    data.iter()
        .map(|entry| {
            let line = entry.get("line_number")?.as_u64()?;
            let reason = entry
                .get("error_message")
                .and_then(|m| m.as_str())
                .unwrap_or("rejected");
            Some((
                usize::try_from(line.checked_sub(1)?).ok()?,
                reason.to_owned(),
            ))
        })
        .collect()
}

/// A short category of a rejection reason, for the `rejected` counters.
pub fn reason_category(reason: &str) -> &'static str {
    let lower = reason.to_ascii_lowercase();
    if lower.contains("field type conflict") {
        "field_type_conflict"
    } else if lower.contains("retention") {
        "outside_retention"
    } else if lower.contains("unable to parse") || lower.contains("parse") {
        "parse_error"
    } else if lower.contains("too large") || lower.contains("413") {
        "too_large"
    } else {
        "rejected"
    }
}

fn error_chain(err: &dyn std::error::Error) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_are_classified() {
        assert!(matches!(
            classify(503, "busy", None),
            WriteOutcome::Retryable { .. }
        ));
        assert!(matches!(
            classify(429, "{\"message\":\"slow down\"}", Some(Duration::from_secs(2))),
            WriteOutcome::Retryable { retry_after: Some(d), .. } if d == Duration::from_secs(2)
        ));
        assert_eq!(
            classify(
                400,
                r#"{"error":"partial write: field type conflict: dropped=1"}"#,
                None
            ),
            WriteOutcome::Unidentified(
                "HTTP 400: partial write: field type conflict: dropped=1".to_owned()
            )
        );
        assert_eq!(
            classify(
                400,
                r#"{"error":"partial write of line protocol occurred","data":[{"original_line":"x","line_number":2,"error_message":"bad"}]}"#,
                None
            ),
            WriteOutcome::LinesRejected(vec![(1, "bad".to_owned())])
        );
        assert!(matches!(
            classify(404, r#"{"error":"database not found: \"x\""}"#, None),
            WriteOutcome::Fatal(message) if message.contains("database not found")
        ));
        assert_eq!(
            reason_category("partial write: field type conflict: input field"),
            "field_type_conflict"
        );
    }
}
