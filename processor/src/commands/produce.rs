//! `fleetstream produce`: puts an NDJSON file into the configured Kinesis stream, one record per
//! line (or KPL aggregates), keyed by vehicle so per-vehicle order holds.

use std::collections::BTreeMap;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use aws_sdk_kinesis::primitives::Blob;
use aws_sdk_kinesis::types::{PutRecordsRequestEntry, StreamStatus};
use aws_sdk_kinesis::Client;
use serde::Serialize;

use crate::cli::ProduceArgs;
use crate::sinks::delivery::RetryConfig;
use crate::sources::kinesis::calls::{classify, with_retries};
use crate::sources::kinesis::kpl::aggregate_by_shard;
use crate::sources::kinesis::metrics::KinesisMetrics;
use crate::sources::kinesis::shards::list_shards;

/// Kinesis accepts at most 500 records per `PutRecords`.
const PUT_RECORDS_MAX: usize = 500;
/// …and 5 MiB per call.
const PUT_RECORDS_MAX_BYTES: usize = 5 << 20;

/// What `produce` prints.
#[derive(Debug, Serialize)]
pub struct ProduceSummary {
    /// Input lines put (inside aggregates or not).
    pub records: u64,
    /// Kinesis records written (aggregates count once).
    pub kinesis_records: u64,
    /// `PutRecords` calls.
    pub calls: u64,
    /// Entries re-sent after the stream refused them.
    pub retried: u64,
    /// Wall time.
    pub seconds: f64,
    /// Last sequence number written to each shard.
    pub last_sequence_numbers: BTreeMap<String, String>,
}

/// Reads the partition key of one NDJSON line.
fn partition_key(line: &[u8], field: &str) -> Result<String, String> {
    let value: serde_json::Value =
        serde_json::from_slice(line).map_err(|err| format!("not JSON: {err}"))?;
    match value.get(field) {
        Some(serde_json::Value::String(key)) if !key.is_empty() => Ok(key.clone()),
        Some(other) if !other.is_null() => Ok(other.to_string()),
        _ => Err(format!("no {field:?} field")),
    }
}

async fn create_stream(client: &Client, stream: &str, shards: i32) -> Result<(), String> {
    client
        .create_stream()
        .stream_name(stream)
        .shard_count(shards)
        .send()
        .await
        .map_err(|err| {
            format!(
                "CreateStream: {}",
                aws_sdk_kinesis::error::DisplayErrorContext(&err)
            )
        })?;
    for _ in 0..600 {
        let described = client
            .describe_stream_summary()
            .stream_name(stream)
            .send()
            .await
            .map_err(|err| {
                format!(
                    "DescribeStreamSummary: {}",
                    aws_sdk_kinesis::error::DisplayErrorContext(&err)
                )
            })?;
        if described
            .stream_description_summary()
            .is_some_and(|s| *s.stream_status() == StreamStatus::Active)
        {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Err(format!("stream {stream} did not become active within 60 s"))
}

/// Puts `entries` with `PutRecords` (500 records / 5 MiB per call). Failed calls (throttling,
/// 5xx) and failed records are retried within `retry`'s budget, with its backoff.
async fn put_all(
    client: &Client,
    stream: &str,
    entries: Vec<(String, Vec<u8>, usize)>,
    retry: &RetryConfig,
    summary: &mut ProduceSummary,
) -> Result<(), String> {
    let metrics = KinesisMetrics::default();
    let mut index = 0;
    while index < entries.len() {
        let mut end = index;
        let mut bytes = 0;
        while end < entries.len()
            && end - index < PUT_RECORDS_MAX
            && bytes + entries[end].1.len() + entries[end].0.len() <= PUT_RECORDS_MAX_BYTES
        {
            bytes += entries[end].1.len() + entries[end].0.len();
            end += 1;
        }
        let mut pending: Vec<usize> = (index..end).collect();
        let mut backoff = retry.backoff();
        while !pending.is_empty() {
            let request: Vec<PutRecordsRequestEntry> = pending
                .iter()
                .map(|&i| {
                    PutRecordsRequestEntry::builder()
                        .partition_key(&entries[i].0)
                        .data(Blob::new(entries[i].1.clone()))
                        .build()
                        .map_err(|err| err.to_string())
                })
                .collect::<Result<_, _>>()?;
            summary.calls += 1;
            let output = with_retries(retry, "PutRecords", &metrics, || {
                let call = client
                    .put_records()
                    .stream_name(stream)
                    .set_records(Some(request.clone()));
                async move { call.send().await.map_err(classify) }
            })
            .await
            .map_err(|err| format!("PutRecords: {err}"))?;
            let mut failed = Vec::new();
            for (&i, result) in pending.iter().zip(output.records()) {
                match (
                    result.shard_id(),
                    result.sequence_number(),
                    result.error_code(),
                ) {
                    (Some(shard), Some(sequence), None) => {
                        summary.kinesis_records += 1;
                        summary.records += entries[i].2 as u64;
                        summary
                            .last_sequence_numbers
                            .insert(shard.to_owned(), sequence.to_owned());
                    }
                    _ => failed.push(i),
                }
            }
            if !failed.is_empty() {
                summary.retried += failed.len() as u64;
                let delay = backoff.next_delay().ok_or_else(|| {
                    format!(
                        "PutRecords: {} records still failing after the retry budget",
                        failed.len()
                    )
                })?;
                tokio::time::sleep(delay).await;
            }
            pending = failed;
        }
        index = end;
    }
    Ok(())
}

/// Loads the config and input, puts everything, prints the summary.
pub fn produce(args: &ProduceArgs) -> ExitCode {
    let config = match super::load_kinesis_config(&args.config) {
        Ok(config) => config,
        Err(code) => return code,
    };
    let text = match std::fs::read(&args.input) {
        Ok(text) => text,
        Err(err) => {
            eprintln!("cannot read {}: {err}", args.input.display());
            return ExitCode::from(super::EXIT_FAILED);
        }
    };
    let mut records = Vec::new();
    for (number, line) in text.split(|b| *b == b'\n').enumerate() {
        if line.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        match partition_key(line, &args.partition_key_field) {
            Ok(key) => records.push((key, line.to_vec())),
            Err(reason) => {
                eprintln!("{}:{}: {reason}", args.input.display(), number + 1);
                return ExitCode::from(super::EXIT_FAILED);
            }
        }
    }
    let runtime = match super::runtime(false) {
        Ok(runtime) => runtime,
        Err(code) => return code,
    };
    let kinesis = &config.source.kinesis;
    let started = Instant::now();
    let result = runtime.block_on(async {
        let (client, _) = crate::sources::kinesis::clients(&config.aws, kinesis).await;
        if let Some(shards) = args.create_stream {
            create_stream(&client, &kinesis.stream_name, shards).await?;
        }
        let entries: Vec<(String, Vec<u8>, usize)> = match args.aggregate {
            Some(per) if per > 1 => {
                let shards = list_shards(
                    &client,
                    &kinesis.stream_name,
                    &kinesis.retry,
                    &KinesisMetrics::default(),
                )
                .await
                .map_err(|err| err.to_string())?;
                let ranges: Vec<(u128, u128)> = shards
                    .iter()
                    .filter(|s| !s.closed)
                    .map(|s| s.hash_key_range)
                    .collect();
                aggregate_by_shard(records, &ranges, per)
            }
            _ => records.into_iter().map(|(k, d)| (k, d, 1)).collect(),
        };
        let mut summary = ProduceSummary {
            records: 0,
            kinesis_records: 0,
            calls: 0,
            retried: 0,
            seconds: 0.0,
            last_sequence_numbers: BTreeMap::new(),
        };
        put_all(
            &client,
            &kinesis.stream_name,
            entries,
            &kinesis.retry,
            &mut summary,
        )
        .await?;
        Ok::<_, String>(summary)
    });
    match result {
        Ok(mut summary) => {
            summary.seconds = started.elapsed().as_secs_f64();
            println!("{}", serde_json::to_string(&summary).unwrap_or_default());
            ExitCode::SUCCESS
        }
        Err(err) => {
            eprintln!("error: {err}");
            ExitCode::from(super::EXIT_FAILED)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_come_from_the_field() {
        assert_eq!(
            partition_key(br#"{"vehicle_id":"v1"}"#, "vehicle_id"),
            Ok("v1".to_owned())
        );
        assert_eq!(partition_key(br#"{"vin":7}"#, "vin"), Ok("7".to_owned()));
        assert!(partition_key(br#"{"x":1}"#, "vehicle_id").is_err());
    }
}
