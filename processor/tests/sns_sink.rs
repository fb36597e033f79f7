//! The SNS sink against moto server: topics subscribed by SQS queues, messages read back from
//! the queues to prove delivery and attributes; partial `PublishBatch` failures injected by the
//! fault proxy; FIFO deduplication ids compared across a replay and a crash-and-restart (moto
//! does not deduplicate, so the ids themselves are compared, as sent in the requests).

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod common;

use std::collections::{BTreeMap, BTreeSet};

use common::emulators::{moto_sdk_config, moto_url, unique_name, FaultProxy};
use common::{run_summary, simulate, spawn_run, Workspace};
use serde_json::{json, Value};

/// SNS and SQS clients on moto.
struct Moto {
    runtime: tokio::runtime::Runtime,
    sns: aws_sdk_sns::Client,
    sqs: aws_sdk_sqs::Client,
}

impl Moto {
    fn new() -> Self {
        let (runtime, config) = moto_sdk_config();
        Self {
            sns: aws_sdk_sns::Client::new(&config),
            sqs: aws_sdk_sqs::Client::new(&config),
            runtime,
        }
    }

    /// A topic with a queue subscribed to it: (topic ARN, queue URL).
    fn topic_with_queue(&self, fifo: bool) -> (String, String) {
        let suffix = if fifo { ".fifo" } else { "" };
        let name = unique_name("alerts");
        self.runtime.block_on(async {
            let mut topic = self.sns.create_topic().name(format!("{name}{suffix}"));
            let mut queue = self
                .sqs
                .create_queue()
                .queue_name(format!("{name}{suffix}"));
            if fifo {
                topic = topic.attributes("FifoTopic", "true");
                queue = queue.attributes(aws_sdk_sqs::types::QueueAttributeName::FifoQueue, "true");
            }
            let topic_arn = topic.send().await.unwrap().topic_arn.unwrap();
            let queue_url = queue.send().await.unwrap().queue_url.unwrap();
            let queue_arn = self
                .sqs
                .get_queue_attributes()
                .queue_url(&queue_url)
                .attribute_names(aws_sdk_sqs::types::QueueAttributeName::QueueArn)
                .send()
                .await
                .unwrap()
                .attributes
                .unwrap()[&aws_sdk_sqs::types::QueueAttributeName::QueueArn]
                .clone();
            self.sns
                .subscribe()
                .topic_arn(&topic_arn)
                .protocol("sqs")
                .endpoint(queue_arn)
                .send()
                .await
                .unwrap();
            (topic_arn, queue_url)
        })
    }

    /// Every SNS envelope waiting in the queue.
    fn drain(&self, queue_url: &str) -> Vec<Value> {
        self.runtime.block_on(async {
            let mut out = Vec::new();
            loop {
                let received = self
                    .sqs
                    .receive_message()
                    .queue_url(queue_url)
                    .max_number_of_messages(10)
                    .send()
                    .await
                    .unwrap();
                let messages = received.messages.unwrap_or_default();
                if messages.is_empty() {
                    return out;
                }
                for message in messages {
                    out.push(serde_json::from_str(message.body().unwrap()).unwrap());
                    self.sqs
                        .delete_message()
                        .queue_url(queue_url)
                        .receipt_handle(message.receipt_handle().unwrap())
                        .send()
                        .await
                        .unwrap();
                }
            }
        })
    }
}

fn sns_section(workspace: &Workspace, endpoint: &str, topic: &str, extra: &str) -> String {
    format!(
        r#"
[aws]
region = "us-east-1"

[sinks.sns]
enabled = true
endpoint_url = "{endpoint}"
topic_arn = "{topic}"
undelivered_path = "{undelivered}"
retry = {{ initial_backoff = "20ms", max_backoff = "200ms", budget = "1m" }}
{extra}
"#,
        undelivered = workspace.path("undelivered.ndjson").display()
    )
}

/// (vehicle, rule, status) of every alert in the SQLite output.
fn sqlite_alerts(workspace: &Workspace) -> Vec<(String, String, String)> {
    let connection = rusqlite::Connection::open(workspace.db()).unwrap();
    let mut statement = connection
        .prepare(
            "SELECT vehicle_id, rule, status FROM alerts ORDER BY vehicle_id, rule, start_time_ms",
        )
        .unwrap();
    let rows = statement
        .query_map([], |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?)))
        .unwrap();
    rows.map(Result::unwrap).collect()
}

fn attribute(envelope: &Value, name: &str) -> String {
    envelope["MessageAttributes"][name]["Value"]
        .as_str()
        .unwrap_or_default()
        .to_owned()
}

/// A generated fleet and the alerts it produces, found by a plain SQLite run.
fn fleet_with_alerts(workspace: &Workspace) -> (std::path::PathBuf, Vec<(String, String, String)>) {
    let input = workspace.path("fleet.ndjson");
    simulate(&input, 12, 900, 0.0, 5);
    let config = workspace.config(&input, "");
    run_summary(&config, &[]);
    let alerts = sqlite_alerts(workspace);
    assert!(alerts.len() >= 4, "the fleet raises alerts: {alerts:?}");
    (input, alerts)
}

#[test]
fn alerts_arrive_with_attributes_and_partial_failures_are_retried_or_logged() {
    let moto = Moto::new();
    let workspace = Workspace::new();
    let (input, alerts) = fleet_with_alerts(&workspace);
    let vehicles: BTreeSet<&String> = alerts.iter().map(|a| &a.0).collect();
    let mut vehicles = vehicles.into_iter();
    let retried = vehicles.next().unwrap().clone();
    let refused = vehicles.next().unwrap_or(&retried).clone();
    assert_ne!(retried, refused, "two vehicles raise alerts");

    let (topic, queue) = moto.topic_with_queue(false);
    let proxy = FaultProxy::start(&moto_url());
    proxy.set_rules(json!([
        {"operation": "PublishBatch", "times": 2, "respond": {"status": 500, "content_type": "text/xml",
            "body": "<ErrorResponse><Error><Type>Receiver</Type><Code>InternalError</Code><Message>boom</Message></Error></ErrorResponse>"}},
        {"operation": "PublishBatch", "times": 1, "sns_fail": {"message_contains": format!("\"{retried}\""), "code": "InternalError", "sender_fault": false}},
        {"operation": "PublishBatch", "times": -1, "sns_fail": {"message_contains": format!("\"{refused}\""), "code": "InvalidParameter", "sender_fault": true}},
    ]));
    let config = workspace.config(&input, &sns_section(&workspace, &proxy.url(), &topic, ""));
    let summary = run_summary(&config, &["--fresh"]);
    assert!(!summary.contains(" 0 retried"), "{summary}");

    let received = moto.drain(&queue);
    let mut got: Vec<(String, String, String)> = received
        .iter()
        .map(|envelope| {
            assert_eq!(attribute(envelope, "kind"), "alert");
            assert!(!attribute(envelope, "severity").is_empty());
            assert!(envelope["Subject"]
                .as_str()
                .unwrap()
                .contains(&attribute(envelope, "rule")));
            let body: Value = serde_json::from_str(envelope["Message"].as_str().unwrap()).unwrap();
            assert_eq!(
                body["vehicle_id"].as_str().unwrap(),
                attribute(envelope, "vehicle_id")
            );
            (
                attribute(envelope, "vehicle_id"),
                attribute(envelope, "rule"),
                attribute(envelope, "status"),
            )
        })
        .collect();
    got.sort();
    let mut expected: Vec<_> = alerts.iter().filter(|a| a.0 != refused).cloned().collect();
    let expected_refused = alerts.len() - expected.len();
    expected.sort();
    // One message per alert update (firing, and resolved when it cleared).
    let firing_and_resolved: Vec<_> = expected
        .iter()
        .flat_map(|(v, r, s)| {
            let mut updates = vec![(v.clone(), r.clone(), "firing".to_owned())];
            if s == "resolved" {
                updates.push((v.clone(), r.clone(), "resolved".to_owned()));
            }
            updates
        })
        .collect::<Vec<_>>();
    let mut firing_and_resolved = firing_and_resolved;
    firing_and_resolved.sort();
    assert_eq!(got, firing_and_resolved);

    let logged = workspace.undelivered();
    assert!(logged.len() >= expected_refused);
    for entry in &logged {
        assert_eq!(entry["record"]["vehicle_id"], refused.as_str());
        assert!(
            entry["reason"]
                .as_str()
                .unwrap()
                .starts_with("InvalidParameter"),
            "{entry}"
        );
    }
}

/// Every (deduplication id, group id) a FIFO publish carried, per recorded PublishBatch body.
fn fifo_ids(proxy: &FaultProxy) -> Vec<(String, String)> {
    let stats = proxy.stats();
    let mut ids = Vec::new();
    for body in stats["recorded"]["PublishBatch"]
        .as_array()
        .cloned()
        .unwrap_or_default()
    {
        let form: BTreeMap<String, String> = url_decode(body.as_str().unwrap());
        for n in 1..=10 {
            let key = |field: &str| format!("PublishBatchRequestEntries.member.{n}.{field}");
            if let Some(dedup) = form.get(&key("MessageDeduplicationId")) {
                let group = form
                    .get(&key("MessageGroupId"))
                    .cloned()
                    .unwrap_or_default();
                ids.push((dedup.clone(), group));
            }
        }
    }
    ids
}

fn url_decode(body: &str) -> BTreeMap<String, String> {
    reqwest::Url::parse(&format!("http://x/?{body}"))
        .unwrap()
        .query_pairs()
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect()
}

#[test]
fn fifo_deduplication_ids_are_identical_across_a_replay_and_a_crash_restart() {
    let moto = Moto::new();
    let workspace = Workspace::new();
    let (input, alerts) = fleet_with_alerts(&workspace);
    let (topic, queue) = moto.topic_with_queue(true);
    let proxy = FaultProxy::start(&moto_url());
    proxy.set_plan(json!({"rules": [], "record": ["PublishBatch"]}));
    let config = workspace.config(&input, &sns_section(&workspace, &proxy.url(), &topic, ""));
    run_summary(&config, &["--fresh"]);
    let first = fifo_ids(&proxy);
    assert!(first.len() >= alerts.len());
    for (dedup, group) in &first {
        assert_eq!(dedup.len(), 64);
        assert!(
            group.starts_with("veh-"),
            "group id is the vehicle: {group}"
        );
    }
    let first_set: BTreeSet<_> = first.iter().cloned().collect();
    assert_eq!(first_set.len(), first.len(), "one id per alert update");
    assert_eq!(
        moto.drain(&queue).len(),
        first.len(),
        "every message delivered"
    );

    // A replay publishes the same ids.
    proxy.set_plan(json!({"rules": [], "record": ["PublishBatch"]}));
    run_summary(&config, &["--fresh"]);
    let replay: BTreeSet<_> = fifo_ids(&proxy).into_iter().collect();
    assert_eq!(replay, first_set);

    // SIGKILL while publishing, then a restart from the last checkpoint: what is published
    // again carries the same ids (so SNS FIFO drops the copies), and nothing is missing.
    proxy.set_plan(json!({"rules": [{"operation": "PublishBatch", "times": -1, "delay_ms": 400}], "record": ["PublishBatch"]}));
    let mut child = spawn_run(&config, &["--fresh"]);
    let started = std::time::Instant::now();
    while fifo_ids(&proxy).is_empty() {
        assert!(
            started.elapsed() < std::time::Duration::from_secs(60),
            "no publish within 60 s"
        );
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    child.kill().unwrap();
    assert!(child.wait().unwrap().code().is_none(), "killed mid-run");
    let before_crash: BTreeSet<_> = fifo_ids(&proxy).into_iter().collect();
    proxy.set_plan(json!({"rules": [], "record": ["PublishBatch"]}));
    run_summary(&config, &[]);
    let after_restart: BTreeSet<_> = fifo_ids(&proxy).into_iter().collect();
    assert!(
        after_restart.is_subset(&first_set),
        "restart ids are ids of the first run"
    );
    let union: BTreeSet<_> = before_crash.union(&after_restart).cloned().collect();
    assert_eq!(
        union, first_set,
        "every alert was published across the crash"
    );
}

#[test]
fn routes_by_severity_and_rate_limits_with_a_summary() {
    let moto = Moto::new();
    let workspace = Workspace::new();
    let (input, alerts) = fleet_with_alerts(&workspace);
    let (critical_topic, critical_queue) = moto.topic_with_queue(false);
    let (other_topic, other_queue) = moto.topic_with_queue(false);
    let extra = format!(
        "per_vehicle_limit = {{ max = 1, per = \"2m\" }}\n\n[[sinks.sns.routes]]\ntopic_arn = \"{critical_topic}\"\nseverities = [\"critical\"]\n"
    );
    let config = workspace.config(
        &input,
        &sns_section(&workspace, &moto_url(), &other_topic, &extra),
    );
    let summary = run_summary(&config, &["--fresh"]);
    let critical = moto.drain(&critical_queue);
    let other = moto.drain(&other_queue);
    for envelope in &critical {
        assert!(matches!(
            attribute(envelope, "severity").as_str(),
            "critical" | "info"
        ));
    }
    for envelope in &other {
        assert_ne!(attribute(envelope, "severity"), "critical");
    }
    let summaries: Vec<&Value> = critical
        .iter()
        .chain(&other)
        .filter(|envelope| attribute(envelope, "kind") == "summary")
        .collect();
    let sent_alerts = critical.len() + other.len() - summaries.len();
    let held: u64 = summary
        .split("\"rate_limited\": ")
        .nth(1)
        .and_then(|rest| rest.split('}').next())
        .and_then(|n| n.trim().parse().ok())
        .unwrap_or(0);
    assert!(held > 0, "the limit held some back: {summary}");
    assert!(sent_alerts < alerts.len() * 2);
    let summarised: u64 = summaries
        .iter()
        .map(|envelope| {
            let body: Value = serde_json::from_str(envelope["Message"].as_str().unwrap()).unwrap();
            body["suppressed"].as_u64().unwrap()
        })
        .sum();
    assert!(
        summarised > 0 && summarised <= held,
        "summaries ({summarised}) report held-back messages ({held})"
    );
}
