//! The emulators scripts/test starts (their addresses come from the environment), and the
//! fault-injecting proxy (tests/fault_proxy.py) a test starts in front of one of them.
//! A missing emulator fails the test with instructions: tests never skip.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};

/// The address scripts/test exported in `var`.
fn emulator(var: &str, what: &str) -> String {
    std::env::var(var).unwrap_or_else(|_| {
        panic!(
            "{var} is not set: this test needs {what}; run the suite with ./scripts/test, which \
             installs and starts it"
        )
    })
}

/// moto server (DynamoDB, S3, Timestream write, SNS, SQS).
pub fn moto_url() -> String {
    emulator("FLEETSTREAM_TEST_MOTO_URL", "moto server")
}

/// A runtime and an AWS SDK configuration pointing at moto (us-east-1), for a test's own
/// clients (creating topics, queues and buckets, reading results back).
pub fn moto_sdk_config() -> (tokio::runtime::Runtime, aws_config::SdkConfig) {
    let runtime = tokio::runtime::Runtime::new().expect("a Tokio runtime");
    let config = runtime.block_on(
        aws_config::defaults(aws_config::BehaviorVersion::latest())
            .region(aws_config::Region::new("us-east-1"))
            .endpoint_url(moto_url())
            .load(),
    );
    (runtime, config)
}

/// InfluxDB 1.x.
pub fn influxdb_url() -> String {
    emulator("FLEETSTREAM_TEST_INFLUXDB_URL", "an InfluxDB server")
}

/// A unique name for a test's own database, table, topic or bucket.
pub fn unique_name(prefix: &str) -> String {
    use std::sync::atomic::{AtomicU32, Ordering};
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    format!(
        "{prefix}{}x{}x{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed),
        nanos % 100_000
    )
}

/// A running fault proxy in front of `upstream`; killed on drop.
pub struct FaultProxy {
    child: Child,
    upstream: String,
    pub port: u16,
}

impl FaultProxy {
    /// Starts a proxy on a free port.
    pub fn start(upstream: &str) -> Self {
        Self::start_on(upstream, 0)
    }

    /// Starts a proxy on `port` (0: any free port).
    pub fn start_on(upstream: &str, port: u16) -> Self {
        Self::try_start_on(upstream, port).unwrap_or_else(|err| panic!("fault proxy: {err}"))
    }

    /// Starts a proxy on `port`, or says why it did not start (the port still taken, …).
    fn try_start_on(upstream: &str, port: u16) -> Result<Self, String> {
        let python = emulator("REFERENCE_PYTHON", "the test virtual environment's python");
        let script = emulator("FLEETSTREAM_FAULT_PROXY", "tests/fault_proxy.py");
        let mut child = Command::new(python)
            .arg(script)
            .args(["--upstream", upstream, "--port", &port.to_string()])
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .map_err(|err| format!("cannot start python: {err}"))?;
        let mut line = String::new();
        if let Some(stdout) = child.stdout.take() {
            let _ = BufReader::new(stdout).read_line(&mut line);
        }
        match line
            .trim()
            .strip_prefix("listening ")
            .and_then(|p| p.parse().ok())
        {
            Some(port) => Ok(Self {
                child,
                upstream: upstream.to_owned(),
                port,
            }),
            None => {
                let _ = child.kill();
                let _ = child.wait();
                Err(format!("it said {line:?} instead of its port"))
            }
        }
    }

    /// The proxy's base URL.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Replaces the fault plan (see tests/fault_proxy.py).
    pub fn set_rules(&self, rules: serde_json::Value) {
        self.set_plan(serde_json::json!({ "rules": rules }));
    }

    /// Replaces the whole plan: rules and the operations whose request bodies are recorded.
    pub fn set_plan(&self, plan: serde_json::Value) {
        let response = reqwest::blocking::Client::new()
            .put(format!("{}/__faults", self.url()))
            .body(plan.to_string())
            .send()
            .expect("set fault rules");
        assert!(response.status().is_success());
    }

    /// Requests seen and faults injected, per operation.
    pub fn stats(&self) -> serde_json::Value {
        let text = reqwest::blocking::get(format!("{}/__faults", self.url()))
            .and_then(|r| r.text())
            .expect("read proxy stats");
        serde_json::from_str(&text).expect("stats JSON")
    }

    /// Stops the proxy (an outage as the client sees it).
    pub fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Starts it again on the same port (retrying while the old socket is released).
    pub fn restart(&mut self) {
        self.stop();
        let mut last_error = String::new();
        for _ in 0..50 {
            match Self::try_start_on(&self.upstream, self.port) {
                Ok(next) => {
                    *self = next;
                    return;
                }
                Err(err) => last_error = err,
            }
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
        panic!(
            "fault proxy did not restart on port {}: {last_error}",
            self.port
        );
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Runs `fleetstream run --config CONFIG EXTRA…` while the service behind `proxy` is down:
/// asserts the run waits and commits no checkpoint during the outage, brings the service back,
/// and returns the summary of the finished run, which must have delivered everything.
pub fn run_through_outage(
    workspace: &super::Workspace,
    config: &std::path::Path,
    extra: &[&str],
    proxy: &mut FaultProxy,
) -> String {
    use std::time::{Duration, Instant};

    let state = workspace.path("state.db");
    proxy.stop();
    let mut child = super::spawn_run(config, extra);
    // Long enough for the pipeline to block on the sink; checkpoints are every 200 ms.
    std::thread::sleep(Duration::from_secs(3));
    let stalled = super::checkpoints(&state);
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(
        super::checkpoints(&state),
        stalled,
        "no checkpoint while the service is down"
    );
    assert!(
        child.try_wait().expect("poll the run").is_none(),
        "the run waits for the sink"
    );
    proxy.restart();
    let started = Instant::now();
    let output = child.wait_with_output().expect("wait for the run");
    let summary = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(
        output.status.success(),
        "{summary}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(summary.contains("0 undelivered"), "{summary}");
    assert!(started.elapsed() < Duration::from_secs(120));
    assert!(super::checkpoints(&state) > stalled);
    summary
}

/// A fresh bucket in moto and an S3 client on it.
pub struct S3Bucket {
    pub runtime: tokio::runtime::Runtime,
    pub client: aws_sdk_s3::Client,
    pub name: String,
}

impl S3Bucket {
    /// Creates a bucket whose name starts with `prefix`.
    pub fn create(prefix: &str) -> Self {
        let (runtime, config) = moto_sdk_config();
        let client = aws_sdk_s3::Client::from_conf(
            aws_sdk_s3::config::Builder::from(&config)
                .force_path_style(true)
                .build(),
        );
        let name = unique_name(prefix).to_ascii_lowercase();
        runtime
            .block_on(client.create_bucket().bucket(&name).send())
            .expect("CreateBucket");
        Self {
            runtime,
            client,
            name,
        }
    }

    /// Every key under `prefix`.
    pub fn keys(&self, prefix: &str) -> Vec<String> {
        let listed = self
            .runtime
            .block_on(
                self.client
                    .list_objects_v2()
                    .bucket(&self.name)
                    .prefix(prefix)
                    .send(),
            )
            .expect("ListObjectsV2");
        listed
            .contents()
            .iter()
            .filter_map(|o| o.key().map(str::to_owned))
            .collect()
    }

    /// The body of `key` as text.
    pub fn text(&self, key: &str) -> String {
        self.runtime.block_on(async {
            let body = self
                .client
                .get_object()
                .bucket(&self.name)
                .key(key)
                .send()
                .await
                .expect("GetObject")
                .body
                .collect()
                .await
                .expect("object body")
                .into_bytes();
            String::from_utf8(body.to_vec()).expect("UTF-8 object")
        })
    }
}
