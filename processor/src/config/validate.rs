//! Cross-field validation without I/O: every problem, each with its key path.

use super::load::ConfigProblem;
use super::{Config, SourceKind};

impl Config {
    /// Makes relative detector and alarm file paths relative to `base` (the config file's
    /// directory), so a config works from any working directory.
    pub fn resolve_model_paths(&mut self, base: &std::path::Path) {
        for entry in self.detectors.iter_mut().chain(self.alarms.iter_mut()) {
            if entry.model.is_relative() {
                entry.model = base.join(&entry.model);
            }
            if let Some(definition) = entry.input_definition.as_mut().filter(|p| p.is_relative()) {
                *definition = base.join(&*definition);
            }
            for input in &mut entry.inputs {
                if let Some(definition) = input.definition.as_mut().filter(|p| p.is_relative()) {
                    *definition = base.join(&*definition);
                }
            }
        }
    }

    /// Every problem with this configuration (empty when it is usable).
    pub fn problems(&self) -> Vec<ConfigProblem> {
        let mut problems = Vec::new();
        let mut problem = |path: &str, message: String| {
            problems.push(ConfigProblem {
                path: path.to_owned(),
                message,
            });
        };
        match self.source.kind {
            SourceKind::File if self.source.path.is_none() => {
                problem(
                    "source.path",
                    "required when source.kind = \"file\"".to_owned(),
                );
            }
            SourceKind::Simulator => {
                for message in self.source.simulator.spec.problems() {
                    problem("source.simulator", message);
                }
                if self.source.simulator.batch_records == 0 {
                    problem(
                        "source.simulator.batch_records",
                        "must be at least 1".to_owned(),
                    );
                }
            }
            SourceKind::Kinesis => {
                for (key, message) in self.source.kinesis.problems() {
                    problem(&format!("source.kinesis.{key}"), message);
                }
                if self.time.idle_timeout.ms() == 0 {
                    problem(
                        "time.idle_timeout",
                        "must be set with source.kind = \"kinesis\" (for example \"30s\"): how long a shard caught up with its tip waits before it stops holding windows open".to_owned(),
                    );
                }
            }
            _ => {}
        }
        if self.source.read_bytes < 4096 {
            problem(
                "source.read_bytes",
                format!("must be at least 4096, got {}", self.source.read_bytes),
            );
        }
        if let telemetry::Format::Mapping(mapping) = &self.decode.layout {
            for message in mapping.problems() {
                problem("decode.layout", message);
            }
        }
        if let Err(message) = telemetry::timestamp::parse_rfc3339(&self.decode.min_event_time) {
            problem("decode.min_event_time", message);
        }
        if !(self.decode.max_abs_signal_value > 0.0 && self.decode.max_abs_signal_value.is_finite())
        {
            problem(
                "decode.max_abs_signal_value",
                "must be a positive finite number".to_owned(),
            );
        }
        if self.decode.max_record_bytes < 64 {
            problem("decode.max_record_bytes", "must be at least 64".to_owned());
        }
        if self.decode.max_decompressed_bytes < self.decode.max_record_bytes as u64 {
            problem(
                "decode.max_decompressed_bytes",
                "must be at least decode.max_record_bytes".to_owned(),
            );
        }
        let mut rollup_names = std::collections::BTreeSet::new();
        for (index, rollup) in self.rollups.iter().enumerate() {
            if !rollup_names.insert(rollup.name.as_str()) {
                problem(
                    &format!("rollups[{index}].name"),
                    format!("duplicate rollup name {:?}", rollup.name),
                );
            }
            for (key, message) in rollup.problems() {
                problem(&format!("rollups[{index}].{key}"), message);
            }
        }
        for (path, capacity) in [
            (
                "pipeline.source_channel_capacity",
                self.pipeline.source_channel_capacity,
            ),
            (
                "pipeline.decoded_channel_capacity",
                self.pipeline.decoded_channel_capacity,
            ),
            (
                "pipeline.sink_channel_capacity",
                self.pipeline.sink_channel_capacity,
            ),
        ] {
            if capacity == 0 {
                problem(path, "must be at least 1 (channels are bounded)".to_owned());
            }
        }
        if self.pipeline.decode_workers > 64 {
            problem(
                "pipeline.decode_workers",
                format!(
                    "must be 0 (one per core) or in 1..=64, got {}",
                    self.pipeline.decode_workers
                ),
            );
        }
        if self.checkpoint.interval.ms() < 100 {
            problem("checkpoint.interval", "must be at least 100ms".to_owned());
        }
        if self.shutdown.deadline.ms() < 1_000 {
            problem("shutdown.deadline", "must be at least 1s".to_owned());
        }
        if self.sinks.sqlite.enabled && self.sinks.sqlite.batch_rows == 0 {
            problem("sinks.sqlite.batch_rows", "must be at least 1".to_owned());
        }
        if self.sinks.sqlite.enabled && !(1..=1 << 20).contains(&self.sinks.sqlite.cache_mib) {
            problem(
                "sinks.sqlite.cache_mib",
                format!(
                    "must be in 1..=1048576, got {}",
                    self.sinks.sqlite.cache_mib
                ),
            );
        }
        let stores = [
            self.sinks.sqlite.enabled,
            self.sinks.ndjson.enabled,
            self.sinks.influxdb.enabled,
            self.sinks.timestream.enabled,
        ];
        if !stores.contains(&true) {
            problem(
                "sinks",
                "enable at least one sink for rollups (sinks.sqlite, sinks.ndjson, \
                 sinks.influxdb or sinks.timestream)"
                    .to_owned(),
            );
        }
        if self.sinks.sqlite.enabled && self.sinks.sqlite.path == self.state.path {
            problem(
                "state.path",
                "must differ from sinks.sqlite.path".to_owned(),
            );
        }
        for (section, entries, check) in [
            (
                "alarms",
                &self.alarms,
                check_alarm as fn(&str) -> Vec<String>,
            ),
            ("detectors", &self.detectors, check_detector),
        ] {
            for (index, entry) in entries.iter().enumerate() {
                let errors = match std::fs::read_to_string(&entry.model) {
                    Ok(text) => check(&text),
                    Err(err) => vec![format!("cannot read {}: {err}", entry.model.display())],
                };
                for (input_index, input) in entry.inputs.iter().enumerate() {
                    let path = format!("{section}[{index}].inputs[{input_index}]");
                    match (&input.definition, &input.name) {
                        (Some(definition), _) => {
                            let bound = std::fs::read_to_string(definition)
                                .map_err(|err| {
                                    format!("cannot read {}: {err}", definition.display())
                                })
                                .and_then(|text| {
                                    models::detector::bind_input(&text, input.mapping.clone())
                                });
                            if let Err(error) = bound {
                                problem(&format!("{path}.definition"), error);
                            }
                        }
                        (None, None) => problem(&path, "give a name or a definition".to_owned()),
                        (None, Some(_)) => {}
                    }
                }
                if let Some(definition) = &entry.input_definition {
                    let bound = std::fs::read_to_string(definition)
                        .map_err(|err| format!("cannot read {}: {err}", definition.display()))
                        .and_then(|text| {
                            models::detector::bind_input(&text, entry.input_mapping.clone())
                        });
                    if let Err(error) = bound {
                        problem(&format!("{section}[{index}].input_definition"), error);
                    }
                }
                for error in errors {
                    problem(&format!("{section}[{index}].model"), error);
                }
            }
        }
        let mut anomaly_names = std::collections::BTreeSet::new();
        for (index, entry) in self.anomaly.iter().enumerate() {
            if !anomaly_names.insert(entry.name.as_str()) {
                problem(
                    &format!("anomaly[{index}].name"),
                    format!("duplicate anomaly model name {:?}", entry.name),
                );
            }
            for (key, message) in entry.problems() {
                problem(&format!("anomaly[{index}].{key}"), message);
            }
        }
        for (key, message) in self.sinks.timestream.problems() {
            problem(&format!("sinks.timestream.{key}"), message);
        }
        if self.state.target == super::StateTarget::S3 {
            for (key, message) in self.state.s3.problems() {
                problem(&format!("state.s3.{key}"), message);
            }
        }
        if self.dead_letter.target == super::DeadLetterTarget::S3 {
            for (key, message) in self.dead_letter.s3.problems() {
                problem(&format!("dead_letter.s3.{key}"), message);
            }
        }
        for (key, message) in self.sinks.sns.problems() {
            problem(&format!("sinks.sns.{key}"), message);
        }
        for (key, message) in self.sinks.influxdb.problems() {
            problem(&format!("sinks.influxdb.{key}"), message);
        }
        let mut names = std::collections::BTreeSet::new();
        for (index, rule) in self.rules.iter().enumerate() {
            if !names.insert(rule.name.as_str()) {
                problem(
                    &format!("rules[{index}].name"),
                    format!("duplicate rule name {:?}", rule.name),
                );
            }
            if let Err(rule_problems) = rule.compile() {
                for (key, message) in rule_problems {
                    problem(&format!("rules[{index}].{key}"), message);
                }
            }
        }
        problems
    }
}

/// Errors that stop an alarm model from loading.
fn check_alarm(text: &str) -> Vec<String> {
    let (model, report) = models::detector::load_alarm_model(text);
    if model.is_some() {
        Vec::new()
    } else {
        report.errors
    }
}

/// Errors that stop a detector model from loading.
fn check_detector(text: &str) -> Vec<String> {
    let (model, report) = models::detector::load_detector_model(text);
    if model.is_some() {
        Vec::new()
    } else {
        report.errors
    }
}
