//! Every example file in `config/` loads and validates, so the documentation cannot rot.

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::path::Path;

#[test]
fn every_example_config_is_valid() {
    let dir = Path::new(&manifest_dir()).join("../config");
    let mut checked = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|ext| ext == "toml") {
            if let Err(err) = processor::config::load_file(&path) {
                panic!("{}: {err}", path.display());
            }
            checked += 1;
        }
    }
    assert!(
        checked >= 4,
        "expected the example configs, found {checked}"
    );
}

#[test]
fn the_embedded_default_is_config_local_toml() {
    let dir = Path::new(&manifest_dir()).join("../config/local.toml");
    assert_eq!(
        std::fs::read_to_string(dir).unwrap(),
        processor::config::EMBEDDED_DEFAULT
    );
}

/// Every dashboard in deploy/grafana parses, and every query reads a measurement of the
/// documented layout within the dashboard's time range.
#[test]
fn grafana_dashboards_query_the_documented_layout() {
    let dir = Path::new(&manifest_dir()).join("../deploy/grafana");
    let measurements = ["signal_1m", "anomaly", "alert", "detector_state"];
    let mut queries = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        let text = std::fs::read_to_string(&path).unwrap();
        let board: serde_json::Value =
            serde_json::from_str(&text).unwrap_or_else(|err| panic!("{}: {err}", path.display()));
        let mut found = Vec::new();
        collect_queries(&board, &mut found);
        for query in found {
            queries += 1;
            if query.starts_with("SHOW TAG VALUES") {
                continue;
            }
            assert!(
                query.contains("$__timeFilter") || query.contains("$timeFilter"),
                "{}: no time filter in {query}",
                path.display()
            );
            assert!(
                measurements
                    .iter()
                    .any(|m| query.contains(&format!("'{m}'"))
                        || query.contains(&format!("\"{m}\""))),
                "{}: {query} reads no measurement of the layout",
                path.display()
            );
        }
    }
    assert!(queries >= 10, "found {queries} queries");
}

fn collect_queries(value: &serde_json::Value, out: &mut Vec<String>) {
    match value {
        serde_json::Value::Object(map) => {
            for (key, value) in map {
                match (key.as_str(), value) {
                    ("rawQuery" | "query", serde_json::Value::String(query))
                        if query.contains("SELECT") || query.starts_with("SHOW") =>
                    {
                        out.push(query.clone());
                    }
                    _ => collect_queries(value, out),
                }
            }
        }
        serde_json::Value::Array(items) => {
            for item in items {
                collect_queries(item, out);
            }
        }
        _ => {}
    }
}

#[test]
fn the_iam_policy_grants_what_config_aws_toml_uses() {
    let root = Path::new(&manifest_dir()).join("..");
    let config = processor::config::load_file(&root.join("config/aws.toml")).unwrap();
    let policy: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(root.join("deploy/iam-policy.json")).unwrap(),
    )
    .unwrap();
    let grants = |action: &str, resource_suffix: &str| {
        policy["Statement"]
            .as_array()
            .unwrap()
            .iter()
            .any(|statement| {
                let listed = |value: &serde_json::Value, wanted: &dyn Fn(&str) -> bool| match value
                {
                    serde_json::Value::String(one) => wanted(one),
                    serde_json::Value::Array(many) => {
                        many.iter().any(|v| v.as_str().is_some_and(wanted))
                    }
                    _ => false,
                };
                statement["Effect"] == "Allow"
                    && listed(&statement["Action"], &|a| a == action)
                    && listed(&statement["Resource"], &|r| r.ends_with(resource_suffix))
            })
    };
    let stream = format!(":stream/{}", config.source.kinesis.stream_name);
    for action in [
        "kinesis:ListShards",
        "kinesis:GetShardIterator",
        "kinesis:GetRecords",
    ] {
        assert!(grants(action, &stream), "{action} on {stream}");
    }
    let table = format!(":table/{}", config.source.kinesis.lease_table_name());
    for action in [
        "dynamodb:CreateTable",
        "dynamodb:DescribeTable",
        "dynamodb:Scan",
        "dynamodb:PutItem",
        "dynamodb:UpdateItem",
        "dynamodb:DeleteItem",
    ] {
        assert!(grants(action, &table), "{action} on {table}");
    }
    let timestream = format!(
        "database/{}/table/{}",
        config.sinks.timestream.database, config.sinks.timestream.table
    );
    assert!(grants("timestream:WriteRecords", &timestream));
    let state = format!("{}/{}", config.state.s3.bucket, config.state.s3.prefix);
    for action in ["s3:GetObject", "s3:PutObject", "s3:DeleteObject"] {
        assert!(grants(action, &format!("{state}*")), "{action} on {state}*");
    }
    assert!(grants(
        "s3:ListBucket",
        &format!(":::{}", config.state.s3.bucket)
    ));
    // The hand-off objects: a resource `…/prefix*` covers every key under that prefix.
    let handoff = config
        .source
        .kinesis
        .handoff
        .clone()
        .expect("hand-off configured");
    let object = format!("arn:aws:s3:::{}/{}", handoff.bucket, handoff.prefix);
    let covers = |action: &str| {
        policy["Statement"]
            .as_array()
            .unwrap()
            .iter()
            .any(|statement| {
                let resources: Vec<&str> = match &statement["Resource"] {
                    serde_json::Value::String(one) => vec![one.as_str()],
                    serde_json::Value::Array(many) => {
                        many.iter().filter_map(|v| v.as_str()).collect()
                    }
                    _ => Vec::new(),
                };
                let actions = statement["Action"].to_string();
                statement["Effect"] == "Allow"
                    && actions.contains(&format!("\"{action}\""))
                    && resources.iter().any(|r| {
                        r.strip_suffix('*')
                            .is_some_and(|prefix| object.starts_with(prefix))
                    })
            })
    };
    for action in ["s3:GetObject", "s3:PutObject"] {
        assert!(covers(action), "{action} on {object}*");
    }
    let dead_letters = format!(
        "{}/{}*",
        config.dead_letter.s3.bucket, config.dead_letter.s3.prefix
    );
    assert!(grants("s3:PutObject", &dead_letters), "{dead_letters}");
    let topic = config.sinks.sns.topic_arn.clone();
    assert!(grants("sns:Publish", &topic));
    for route in &config.sinks.sns.routes {
        assert!(
            grants("sns:Publish", &route.topic_arn),
            "{}",
            route.topic_arn
        );
    }
}

/// The crate's directory at run time (cargo sets it for test runs), not at build time: a test
/// binary reused from another checkout must read this checkout's files.
fn manifest_dir() -> String {
    std::env::var("CARGO_MANIFEST_DIR").expect("CARGO_MANIFEST_DIR is set by cargo test")
}
