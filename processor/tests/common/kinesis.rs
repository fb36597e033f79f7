//! Kinesis test helpers: streams in kinesalite, records put with the vehicle as partition key,
//! the lease table read back from moto, and worker processes with their logs in a file.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use aws_sdk_dynamodb::types::AttributeValue;
use aws_sdk_kinesis::primitives::Blob;
use aws_sdk_kinesis::types::PutRecordsRequestEntry;

use super::emulators::{moto_url, unique_name};
use super::BIN;

/// kinesalite, as scripts/test started it.
pub fn kinesalite_url() -> String {
    std::env::var("FLEETSTREAM_TEST_KINESALITE_URL").unwrap_or_else(|_| {
        panic!(
            "FLEETSTREAM_TEST_KINESALITE_URL is not set: this test needs kinesalite; run the \
             suite with ./scripts/test, which installs and starts it"
        )
    })
}

/// Clients for kinesalite and moto's DynamoDB, with the runtime that drives them.
pub struct Aws {
    pub runtime: tokio::runtime::Runtime,
    pub kinesis: aws_sdk_kinesis::Client,
    pub dynamodb: aws_sdk_dynamodb::Client,
}

impl Aws {
    pub fn new() -> Self {
        let runtime = tokio::runtime::Runtime::new().expect("a Tokio runtime");
        let load = |url: String| {
            runtime.block_on(
                aws_config::defaults(aws_config::BehaviorVersion::latest())
                    .region(aws_config::Region::new("us-east-1"))
                    .endpoint_url(url)
                    .load(),
            )
        };
        let kinesis = aws_sdk_kinesis::Client::new(&load(kinesalite_url()));
        let dynamodb = aws_sdk_dynamodb::Client::new(&load(moto_url()));
        Self {
            runtime,
            kinesis,
            dynamodb,
        }
    }

    /// Creates a stream with `shards` shards and waits until it is active; returns its name.
    pub fn create_stream(&self, shards: i32) -> String {
        let name = unique_name("stream");
        self.runtime.block_on(async {
            self.kinesis
                .create_stream()
                .stream_name(&name)
                .shard_count(shards)
                .send()
                .await
                .expect("CreateStream");
            self.wait_active(&name).await;
        });
        name
    }

    async fn wait_active(&self, name: &str) {
        for _ in 0..200 {
            let described = self
                .kinesis
                .describe_stream_summary()
                .stream_name(name)
                .send()
                .await
                .expect("DescribeStreamSummary");
            let status = described
                .stream_description_summary()
                .map(|s| s.stream_status().clone());
            if status == Some(aws_sdk_kinesis::types::StreamStatus::Active) {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("stream {name} did not become active");
    }

    /// Open shard ids, in order.
    pub fn open_shards(&self, stream: &str) -> Vec<(String, String, String)> {
        self.runtime.block_on(async {
            let listed = self
                .kinesis
                .list_shards()
                .stream_name(stream)
                .send()
                .await
                .expect("ListShards");
            listed
                .shards()
                .iter()
                .filter(|s| {
                    s.sequence_number_range()
                        .and_then(|r| r.ending_sequence_number())
                        .is_none()
                })
                .map(|s| {
                    let range = s.hash_key_range().expect("hash range");
                    (
                        s.shard_id().to_owned(),
                        range.starting_hash_key().to_owned(),
                        range.ending_hash_key().to_owned(),
                    )
                })
                .collect()
        })
    }

    /// Splits `shard` in the middle of its hash range.
    pub fn split(&self, stream: &str, shard: &str) {
        let (_, start, end) = self
            .open_shards(stream)
            .into_iter()
            .find(|(id, _, _)| id == shard)
            .expect("open shard to split");
        let middle = (start.parse::<u128>().unwrap() / 2) + (end.parse::<u128>().unwrap() / 2);
        self.runtime.block_on(async {
            self.kinesis
                .split_shard()
                .stream_name(stream)
                .shard_to_split(shard)
                .new_starting_hash_key(middle.to_string())
                .send()
                .await
                .expect("SplitShard");
            self.wait_active(stream).await;
        });
    }

    /// Merges two adjacent shards.
    pub fn merge(&self, stream: &str, shard: &str, adjacent: &str) {
        self.runtime.block_on(async {
            self.kinesis
                .merge_shards()
                .stream_name(stream)
                .shard_to_merge(shard)
                .adjacent_shard_to_merge(adjacent)
                .send()
                .await
                .expect("MergeShards");
            self.wait_active(stream).await;
        });
    }

    /// Puts payloads (with their partition keys) in order, 500 per `PutRecords`, re-sending
    /// failed entries in order; returns the last sequence number written to each shard.
    pub fn put(&self, stream: &str, records: &[(String, Vec<u8>)]) -> BTreeMap<String, String> {
        let mut last = BTreeMap::new();
        for (shard, sequence) in self.put_all(stream, records) {
            last.insert(shard, sequence);
        }
        last
    }

    /// Like [`Self::put`], returning the (shard, sequence number) of every record, in order.
    pub fn put_all(&self, stream: &str, records: &[(String, Vec<u8>)]) -> Vec<(String, String)> {
        let mut last = Vec::new();
        self.runtime.block_on(async {
            for chunk in records.chunks(500) {
                let mut pending: Vec<&(String, Vec<u8>)> = chunk.iter().collect();
                while !pending.is_empty() {
                    let entries = pending
                        .iter()
                        .map(|(key, data)| {
                            PutRecordsRequestEntry::builder()
                                .partition_key(key)
                                .data(Blob::new(data.clone()))
                                .build()
                                .expect("entry")
                        })
                        .collect::<Vec<_>>();
                    let output = self
                        .kinesis
                        .put_records()
                        .stream_name(stream)
                        .set_records(Some(entries))
                        .send()
                        .await
                        .expect("PutRecords");
                    let mut failed = Vec::new();
                    for (entry, result) in pending.iter().zip(output.records()) {
                        match (result.shard_id(), result.sequence_number()) {
                            (Some(shard), Some(sequence)) if result.error_code().is_none() => {
                                last.push((shard.to_owned(), sequence.to_owned()));
                            }
                            _ => failed.push(*entry),
                        }
                    }
                    // Per-key order: once one entry failed, later ones of the batch were
                    // still written; kinesalite never fails entries, so this only guards.
                    pending = failed;
                }
            }
        });
        last
    }

    /// Every lease-table item as (leaseKey → attribute → value text).
    pub fn leases(&self, table: &str) -> BTreeMap<String, BTreeMap<String, String>> {
        self.runtime.block_on(async {
            let scanned = match self
                .dynamodb
                .scan()
                .table_name(table)
                .consistent_read(true)
                .send()
                .await
            {
                Ok(scanned) => scanned,
                Err(err)
                    if err
                        .as_service_error()
                        .is_some_and(|e| e.is_resource_not_found_exception()) =>
                {
                    // Not created yet (the worker is starting).
                    return BTreeMap::new();
                }
                Err(err) => panic!("Scan: {err:?}"),
            };
            scanned
                .items()
                .iter()
                .map(|item| {
                    let text = |value: &AttributeValue| match value {
                        AttributeValue::S(s) | AttributeValue::N(s) => s.clone(),
                        AttributeValue::Ss(set) => set.join(","),
                        other => format!("{other:?}"),
                    };
                    let key = text(&item["leaseKey"]);
                    (
                        key,
                        item.iter().map(|(k, v)| (k.clone(), text(v))).collect(),
                    )
                })
                .collect()
        })
    }
}

/// The NDJSON lines of `path` with their vehicle ids as partition keys.
pub fn keyed_lines(path: &Path) -> Vec<(String, Vec<u8>)> {
    std::fs::read_to_string(path)
        .expect("read input")
        .lines()
        .map(|line| {
            let value: serde_json::Value = serde_json::from_str(line).expect("JSON line");
            let key = value["vehicle_id"].as_str().expect("vehicle_id").to_owned();
            (key, line.as_bytes().to_vec())
        })
        .collect()
}

/// `[source]` TOML for a Kinesis stream in kinesalite with its lease table in moto, with fast
/// lease timings for tests; `extra` lines go into `[source.kinesis]` and win over the defaults.
pub fn source_toml(stream: &str, table: &str, extra: &str) -> String {
    let defaults = [
        ("take_interval", "\"300ms\""),
        ("idle_time_between_reads", "\"200ms\""),
        ("checkpoint_interval", "\"300ms\""),
        ("endpoint_url", &format!("\"{}\"", kinesalite_url())),
        ("dynamodb_endpoint_url", &format!("\"{}\"", moto_url())),
    ];
    let mut text = format!(
        "\n[source]\nkind = \"kinesis\"\n\n[source.kinesis]\nstream_name = \"{stream}\"\nlease_table = \"{table}\"\n"
    );
    for (key, value) in defaults {
        let overridden = extra
            .lines()
            .any(|line| line.split('=').next().is_some_and(|k| k.trim() == key));
        if !overridden {
            text.push_str(&format!("{key} = {value}\n"));
        }
    }
    text.push_str(extra);
    text.push('\n');
    text
}

/// A worker process; its stderr goes to a log file (a pipe could fill and block it).
pub struct Worker {
    pub child: Child,
    pub log: PathBuf,
    pub stdout: PathBuf,
}

impl Worker {
    pub fn spawn(config: &Path, dir: &Path, name: &str) -> Self {
        let log = dir.join(format!("{name}.log"));
        let stdout = dir.join(format!("{name}.out"));
        let child = Command::new(BIN)
            .args(["run", "--config"])
            .arg(config)
            .arg("--no-progress")
            .env(
                "FLEETSTREAM_LOG",
                std::env::var("FLEETSTREAM_TEST_WORKER_LOG").unwrap_or_else(|_| "info".to_owned()),
            )
            .stdin(Stdio::null())
            .stdout(std::fs::File::create(&stdout).expect("stdout file"))
            .stderr(std::fs::File::create(&log).expect("log file"))
            .spawn()
            .expect("start fleetstream");
        Self { child, log, stdout }
    }

    pub fn signal(&self, signal: &str) {
        let status = Command::new("kill")
            .args([signal, &self.child.id().to_string()])
            .status()
            .expect("kill");
        assert!(status.success());
    }

    /// SIGTERM, then waits for a clean exit; returns the printed summary.
    pub fn terminate(&mut self) -> String {
        self.signal("-TERM");
        let status = self.child.wait().expect("wait");
        let stdout = std::fs::read_to_string(&self.stdout).unwrap_or_default();
        assert!(
            status.success(),
            "worker exited with {status:?}\n{stdout}\n{}",
            self.log_text()
        );
        stdout
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    pub fn assert_running(&mut self) {
        if let Some(status) = self.child.try_wait().expect("try_wait") {
            panic!("worker exited early with {status:?}:\n{}", self.log_text());
        }
    }
}

impl Drop for Worker {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Polls `condition` every 100 ms for up to `limit`, checking the workers are alive; panics with
/// `what` and the workers' logs on timeout.
pub fn wait_until(
    what: &str,
    limit: Duration,
    workers: &mut [&mut Worker],
    mut condition: impl FnMut() -> bool,
) -> Duration {
    let started = Instant::now();
    loop {
        if condition() {
            return started.elapsed();
        }
        for worker in workers.iter_mut() {
            worker.assert_running();
        }
        if started.elapsed() > limit {
            let logs: Vec<String> = workers.iter().map(|w| w.log_text()).collect();
            panic!(
                "timed out after {limit:?} waiting for {what}; logs:\n{}",
                logs.join("\n-----\n")
            );
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Lease owners → number of leases (unowned and finished leases left out).
pub fn owner_counts(
    leases: &BTreeMap<String, BTreeMap<String, String>>,
) -> BTreeMap<String, usize> {
    let mut counts = BTreeMap::new();
    for attributes in leases.values() {
        if attributes.get("checkpoint").map(String::as_str) == Some("SHARD_END") {
            continue;
        }
        if let Some(owner) = attributes.get("leaseOwner") {
            *counts.entry(owner.clone()).or_insert(0) += 1;
        }
    }
    counts
}

/// How many leases each owner holds, smallest first (owners unnamed: `[2, 3, 3]`).
pub fn sorted_owner_counts(leases: &BTreeMap<String, BTreeMap<String, String>>) -> Vec<usize> {
    let mut counts: Vec<usize> = owner_counts(leases).into_values().collect();
    counts.sort_unstable();
    counts
}

/// True when every shard's lease checkpoint is at the last sequence number written to it.
pub fn all_checkpointed(
    leases: &BTreeMap<String, BTreeMap<String, String>>,
    last: &BTreeMap<String, String>,
) -> bool {
    last.iter().all(|(shard, sequence)| {
        leases
            .get(shard)
            .and_then(|attributes| attributes.get("checkpoint"))
            .is_some_and(|checkpoint| checkpoint == sequence || checkpoint == "SHARD_END")
    })
}

/// Waits (up to `limit`, the workers kept alive) until every shard of `table` is checkpointed at
/// its `last` record ([`all_checkpointed`]); returns how long it took.
pub fn wait_checkpointed(
    what: &str,
    limit: Duration,
    workers: &mut [&mut Worker],
    aws: &Aws,
    table: &str,
    last: &BTreeMap<String, String>,
) -> Duration {
    wait_until(what, limit, workers, || {
        all_checkpointed(&aws.leases(table), last)
    })
}

/// True when every shard written to is read and committed: its lease checkpoint is the last
/// sequence number written to it, or `SHARD_END`, or its finished lease was cleaned up after its
/// children started (a lease names it as a parent).
pub fn all_read(
    leases: &BTreeMap<String, BTreeMap<String, String>>,
    last: &BTreeMap<String, String>,
) -> bool {
    last.iter()
        .all(|(shard, sequence)| match leases.get(shard) {
            Some(attributes) => attributes
                .get("checkpoint")
                .is_some_and(|checkpoint| checkpoint == sequence || checkpoint == "SHARD_END"),
            None => leases.values().any(|attributes| {
                attributes
                    .get("parentShardId")
                    .is_some_and(|parents| parents.split(',').any(|p| p == shard))
            }),
        })
}

/// One line of a worker's JSON log.
#[derive(Debug, Clone)]
pub struct LogLine {
    pub timestamp: String,
    pub message: String,
    pub fields: serde_json::Value,
}

/// The lines of a worker log whose message is `message`.
pub fn log_lines(log: &str, message: &str) -> Vec<LogLine> {
    log.lines()
        .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
        .filter(|value| value["fields"]["message"] == message)
        .map(|value| LogLine {
            timestamp: value["timestamp"].as_str().unwrap_or_default().to_owned(),
            message: message.to_owned(),
            fields: value["fields"].clone(),
        })
        .collect()
}

/// Merges the lines of several logs for `message`.
pub fn logged(workers: &[&Worker], message: &str) -> Vec<LogLine> {
    workers
        .iter()
        .flat_map(|worker| log_lines(&worker.log_text(), message))
        .collect()
}

/// The lines `message` of the workers that `keep` keeps, once there is at least one or 10 s
/// have passed. A worker logs what it did right after doing it, so a line can trail the lease
/// table or the stream by a moment on a loaded machine.
pub fn logged_soon(
    workers: &[&Worker],
    message: &str,
    keep: impl Fn(&LogLine) -> bool,
) -> Vec<LogLine> {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let lines: Vec<LogLine> = logged(workers, message).into_iter().filter(&keep).collect();
        if !lines.is_empty() || Instant::now() > deadline {
            return lines;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}
