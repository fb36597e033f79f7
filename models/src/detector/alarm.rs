//! AWS IoT Events alarm models, run per vehicle: `alarmRule.simpleRule`, severity, the
//! acknowledge flow and the alarm states.
//!
//! States and transitions (documented in the README):
//! - `NORMAL` → `ACTIVE` when the rule holds (the alarm actions fire);
//! - `ACTIVE` → `NORMAL` when it stops holding, or `LATCHED` instead when the acknowledge flow is
//!   enabled; `ACTIVE` → `ACKNOWLEDGED` on acknowledge;
//! - `ACKNOWLEDGED` → `NORMAL` when the rule stops holding; `LATCHED` → `NORMAL` on acknowledge,
//!   → `ACTIVE` when the rule holds again;
//! - reset: `ACTIVE`/`ACKNOWLEDGED`/`LATCHED` → `NORMAL`; snooze: → `SNOOZE_DISABLED` until the
//!   given event time, then `NORMAL`; disable → `DISABLED` until enable → `NORMAL`.
//!
//! Like detectors, inputs are evaluated per vehicle in event-time order after the watermark.

use std::collections::BTreeMap;
use std::sync::Arc;

use compact_str::CompactString;
use rustc_hash::FxHashMap;
use serde::{Deserialize, Serialize};
use serde_json::Value as Json;
use telemetry::Record;

use super::buffer::EventTimeBuffer;
use super::engine::DetectorOutput;
use super::expression::{
    evaluate, parse_expression, Context, Expr, PathSegment, TriggerType, Value,
};
use super::input::InputBinding;
use super::model::ValidationReport;

/// Alarm states, named as IoT Events names them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum AlarmState {
    /// Not evaluating.
    Disabled,
    /// Rule not holding.
    Normal,
    /// Rule holding, not acknowledged.
    Active,
    /// Rule holding, acknowledged.
    Acknowledged,
    /// Rule stopped holding before anyone acknowledged.
    Latched,
    /// Snoozed until an event time.
    SnoozeDisabled {
        /// Event time the snooze ends.
        until_ms: i64,
    },
}

impl AlarmState {
    /// The IoT Events name.
    pub fn name(&self) -> &'static str {
        match self {
            AlarmState::Disabled => "DISABLED",
            AlarmState::Normal => "NORMAL",
            AlarmState::Active => "ACTIVE",
            AlarmState::Acknowledged => "ACKNOWLEDGED",
            AlarmState::Latched => "LATCHED",
            AlarmState::SnoozeDisabled { .. } => "SNOOZE_DISABLED",
        }
    }
}

/// An operator's command on one vehicle's alarm.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AlarmCommand {
    /// Acknowledge an active or latched alarm.
    Acknowledge,
    /// Stop evaluating until `until_ms` (event time).
    Snooze {
        /// Event time the snooze ends.
        until_ms: i64,
    },
    /// Stop evaluating.
    Disable,
    /// Start evaluating again.
    Enable,
    /// Return to normal.
    Reset,
}

/// A compiled alarm model.
#[derive(Debug, Clone, PartialEq)]
pub struct AlarmModel {
    /// Model name.
    pub name: String,
    /// Severity (IoT Events: an integer, lower is more severe).
    pub severity: i64,
    /// The value the rule reads (`inputProperty`).
    pub input_property: Expr,
    /// Comparison (`GREATER`, …).
    pub comparison: String,
    /// Threshold expression.
    pub threshold: Expr,
    /// Acknowledge flow enabled.
    pub acknowledge_flow: bool,
    /// Instances start `DISABLED`.
    pub disabled_on_initialization: bool,
    /// Targets of the `sns`/`sqs` alarm actions (kind, target).
    pub notify: Vec<(String, String)>,
}

/// Loads an alarm model (`describe-alarm-model` output or a `CreateAlarmModel` body).
pub fn load_alarm_model(json: &str) -> (Option<AlarmModel>, ValidationReport) {
    let (document, mut report) = match ValidationReport::parse(json) {
        Ok(document) => (document, ValidationReport::default()),
        Err(report) => return (None, report),
    };
    let text = |pointer: &str| {
        document
            .pointer(pointer)
            .and_then(Json::as_str)
            .map(str::to_owned)
    };
    let expression = |pointer: &str, report: &mut ValidationReport| match text(pointer) {
        None => {
            report.errors.push(format!("missing {pointer}"));
            None
        }
        Some(source) => parse_expression(&source)
            .map_err(|err| report.errors.push(format!("{pointer}: {err}")))
            .ok(),
    };
    let input_property = expression("/alarmRule/simpleRule/inputProperty", &mut report);
    let threshold = expression("/alarmRule/simpleRule/threshold", &mut report);
    let comparison = text("/alarmRule/simpleRule/comparisonOperator").unwrap_or_default();
    if ![
        "GREATER",
        "GREATER_OR_EQUAL",
        "LESS",
        "LESS_OR_EQUAL",
        "EQUAL",
        "NOT_EQUAL",
    ]
    .contains(&comparison.as_str())
    {
        report.errors.push(format!(
            "comparisonOperator {comparison:?} is not one IoT Events defines"
        ));
    }
    let mut notify = Vec::new();
    if let Some(actions) = document
        .pointer("/alarmEventActions/alarmActions")
        .and_then(Json::as_array)
    {
        for action in actions.iter().filter_map(Json::as_object) {
            for (kind, body) in action {
                let target = ["targetArn", "queueUrl"]
                    .iter()
                    .find_map(|field| body.get(*field).and_then(Json::as_str))
                    .unwrap_or_default()
                    .to_owned();
                match kind.as_str() {
                    "sns" | "sqs" => notify.push((kind.clone(), target)),
                    other => report.skipped_actions.push(format!(
                        "alarm action `{other}` — fleetstream runs sns/sqs alarm actions (as notifications) only"
                    )),
                }
            }
        }
    }
    let (Some(input_property), Some(threshold)) = (input_property, threshold) else {
        return (None, report);
    };
    if !report.errors.is_empty() {
        return (None, report);
    }
    let model = AlarmModel {
        name: text("/alarmModelName").unwrap_or_else(|| "unnamed".to_owned()),
        severity: document.get("severity").and_then(Json::as_i64).unwrap_or(0),
        input_property,
        comparison,
        threshold,
        acknowledge_flow: document
            .pointer("/alarmCapabilities/acknowledgeFlow/enabled")
            .and_then(Json::as_bool)
            .unwrap_or(true),
        disabled_on_initialization: document
            .pointer("/alarmCapabilities/initializationConfiguration/disabledOnInitialization")
            .and_then(Json::as_bool)
            .unwrap_or(false),
        notify,
    };
    (Some(model), report)
}

/// Reads the record through the alarm's input binding (same as detectors).
struct RecordInput<'a> {
    input: &'a InputBinding,
    record: &'a Record,
}

impl Context for RecordInput<'_> {
    fn input(&self, input: &str, path: &[PathSegment]) -> Value {
        self.input.value(input, path, self.record)
    }
    fn variable(&self, _: &str) -> Value {
        Value::Undefined
    }
    fn timeout(&self, _: &str) -> bool {
        false
    }
    fn trigger_type(&self) -> TriggerType {
        TriggerType::Message
    }
    fn current_input(&self) -> Option<&str> {
        Some(&self.input.name)
    }
}

/// What caused an alarm transition.
struct Cause<'a> {
    time_ms: i64,
    trigger: &'a str,
    record: Option<&'a Record>,
}

/// The serializable state of an [`AlarmEngine`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AlarmEngineState {
    states: BTreeMap<CompactString, AlarmState>,
    buffered: EventTimeBuffer,
}

/// An alarm model over every vehicle; see the module documentation.
#[derive(Debug, Clone)]
pub struct AlarmEngine {
    model: AlarmModel,
    input: InputBinding,
    states: FxHashMap<CompactString, AlarmState>,
    buffered: EventTimeBuffer,
}

impl AlarmEngine {
    /// An engine for `model`, reading records as input `input_name`.
    pub fn new(model: AlarmModel, input_name: impl Into<String>) -> Self {
        Self {
            model,
            input: InputBinding::named(input_name),
            states: FxHashMap::default(),
            buffered: EventTimeBuffer::default(),
        }
    }

    /// Reads records through `input` (a `CreateInput` definition with a field mapping).
    pub fn with_input(mut self, input: InputBinding) -> Self {
        self.input = input;
        self
    }

    /// Buffers a record until the watermark passes it.
    pub fn offer_shared(&mut self, record: Arc<Record>) {
        self.buffered.push(record);
    }

    /// Evaluates every buffered record before `watermark_ms`, in event-time order.
    pub fn advance_watermark(&mut self, watermark_ms: i64) -> Vec<DetectorOutput> {
        let mut out = Vec::new();
        while let Some(record) = self.buffered.pop_before(watermark_ms) {
            self.evaluate_record(&record, &mut out);
        }
        out
    }

    fn evaluate_record(&mut self, record: &Record, out: &mut Vec<DetectorOutput>) {
        let context = RecordInput {
            input: &self.input,
            record,
        };
        let value = evaluate(&self.model.input_property, &context);
        let threshold = evaluate(&self.model.threshold, &context);
        let holds = match (value.as_f64(), threshold.as_f64()) {
            (Some(v), Some(t)) => match self.model.comparison.as_str() {
                "GREATER" => v > t,
                "GREATER_OR_EQUAL" => v >= t,
                "LESS" => v < t,
                "LESS_OR_EQUAL" => v <= t,
                "EQUAL" => v == t,
                _ => v != t,
            },
            // Undefined data (the vehicle did not send the property) leaves the alarm as it is.
            _ => return,
        };
        let initial = if self.model.disabled_on_initialization {
            AlarmState::Disabled
        } else {
            AlarmState::Normal
        };
        let current = *self
            .states
            .entry(record.vehicle_id.clone())
            .or_insert(initial);
        let time_ms = record.event_time_ms;
        let current = match current {
            AlarmState::SnoozeDisabled { until_ms } if time_ms >= until_ms => {
                let cause = Cause {
                    time_ms,
                    trigger: "snooze_ended",
                    record: Some(record),
                };
                self.transition(
                    &record.vehicle_id,
                    (current, AlarmState::Normal),
                    cause,
                    out,
                );
                AlarmState::Normal
            }
            state => state,
        };
        let next = match (current, holds) {
            (AlarmState::Normal | AlarmState::Latched, true) => AlarmState::Active,
            (AlarmState::Active, false) if self.model.acknowledge_flow => AlarmState::Latched,
            (AlarmState::Active | AlarmState::Acknowledged, false) => AlarmState::Normal,
            (state, _) => state,
        };
        if next != current {
            let cause = Cause {
                time_ms,
                trigger: "message",
                record: Some(record),
            };
            self.transition(&record.vehicle_id, (current, next), cause, out);
            if next == AlarmState::Active {
                for (kind, target) in &self.model.notify {
                    out.push(DetectorOutput::Notification {
                        vehicle_id: record.vehicle_id.clone(),
                        model: self.model.name.clone(),
                        kind: kind.clone(),
                        target: target.clone(),
                        state: next.name().to_owned(),
                        time_ms,
                        payload: serde_json::json!({
                            "alarmModelName": self.model.name,
                            "keyValue": record.vehicle_id.as_str(),
                            "severity": self.model.severity,
                            "state": next.name(),
                            "inputPropertyValue": value.to_string(),
                            "threshold": threshold.to_string(),
                        })
                        .to_string(),
                        inputs: super::engine::signal_values(Some(record)),
                    });
                }
            }
        }
    }

    fn transition(
        &mut self,
        vehicle: &CompactString,
        (from, to): (AlarmState, AlarmState),
        cause: Cause<'_>,
        out: &mut Vec<DetectorOutput>,
    ) {
        self.states.insert(vehicle.clone(), to);
        out.push(DetectorOutput::StateChange {
            vehicle_id: vehicle.clone(),
            model: self.model.name.clone(),
            from: from.name().to_owned(),
            to: to.name().to_owned(),
            time_ms: cause.time_ms,
            trigger: cause.trigger.to_owned(),
            variables: BTreeMap::new(),
            inputs: super::engine::signal_values(cause.record),
        });
    }

    /// Applies an operator command at event time `time_ms`; returns the state change, if any.
    pub fn command(
        &mut self,
        vehicle: &str,
        command: AlarmCommand,
        time_ms: i64,
    ) -> Vec<DetectorOutput> {
        let vehicle = CompactString::from(vehicle);
        let current = self
            .states
            .get(&vehicle)
            .copied()
            .unwrap_or(AlarmState::Normal);
        let next = match (command, current) {
            (AlarmCommand::Acknowledge, AlarmState::Active) => AlarmState::Acknowledged,
            (AlarmCommand::Acknowledge, AlarmState::Latched) => AlarmState::Normal,
            (
                AlarmCommand::Reset,
                AlarmState::Active | AlarmState::Acknowledged | AlarmState::Latched,
            ) => AlarmState::Normal,
            (AlarmCommand::Snooze { until_ms }, state) if state != AlarmState::Disabled => {
                AlarmState::SnoozeDisabled { until_ms }
            }
            (AlarmCommand::Disable, _) => AlarmState::Disabled,
            (AlarmCommand::Enable, AlarmState::Disabled) => AlarmState::Normal,
            (_, state) => state,
        };
        let mut out = Vec::new();
        if next != current {
            let trigger = match command {
                AlarmCommand::Acknowledge => "acknowledge",
                AlarmCommand::Snooze { .. } => "snooze",
                AlarmCommand::Disable => "disable",
                AlarmCommand::Enable => "enable",
                AlarmCommand::Reset => "reset",
            };
            let cause = Cause {
                time_ms,
                trigger,
                record: None,
            };
            self.transition(&vehicle, (current, next), cause, &mut out);
        }
        out
    }

    /// The model's name.
    pub fn model_name(&self) -> &str {
        &self.model.name
    }

    /// The state of `vehicle`'s alarm.
    pub fn state_of(&self, vehicle: &str) -> Option<AlarmState> {
        self.states.get(vehicle).copied()
    }

    /// The state to checkpoint.
    pub fn snapshot(&self) -> AlarmEngineState {
        AlarmEngineState {
            states: self.states.iter().map(|(v, s)| (v.clone(), *s)).collect(),
            buffered: self.buffered.clone(),
        }
    }

    /// Restores checkpointed state.
    pub fn restore(&mut self, state: AlarmEngineState) {
        self.states = state.states.into_iter().collect();
        self.buffered = state.buffered;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use telemetry::Signal;

    const ALARM: &str = r#"{
      "alarmModelName": "CoolantAlarm", "severity": 1,
      "alarmRule": {"simpleRule": {"inputProperty": "$input.Telemetry.coolant_temp_c",
                                   "comparisonOperator": "GREATER", "threshold": "110"}},
      "alarmEventActions": {"alarmActions": [
        {"sns": {"targetArn": "arn:aws:sns:eu-west-1:123456789012:alarms"}},
        {"iotSiteWise": {"propertyAlias": "x"}}]},
      "alarmCapabilities": {"acknowledgeFlow": {"enabled": true}}
    }"#;

    fn engine() -> AlarmEngine {
        let (model, report) = load_alarm_model(ALARM);
        assert_eq!(report.skipped_actions.len(), 1, "{report}");
        AlarmEngine::new(model.unwrap_or_else(|| panic!("{report}")), "Telemetry")
    }

    fn feed(engine: &mut AlarmEngine, time_ms: i64, coolant: f64) -> Vec<DetectorOutput> {
        engine.offer_shared(Arc::new(Record {
            vehicle_id: "veh-1".into(),
            event_time_ms: time_ms,
            fleet: None,
            attributes: telemetry::Attributes::new(),
            signals: vec![Signal {
                name: "coolant_temp_c".into(),
                value: coolant,
            }],
        }));
        engine.advance_watermark(time_ms + 1)
    }

    fn states(outputs: &[DetectorOutput]) -> Vec<String> {
        outputs
            .iter()
            .filter_map(|o| match o {
                DetectorOutput::StateChange { to, .. } => Some(to.clone()),
                DetectorOutput::Notification { .. } | DetectorOutput::Alert(_) => None,
            })
            .collect()
    }

    #[test]
    fn active_latched_acknowledged_flow() {
        let mut alarm = engine();
        let out = feed(&mut alarm, 0, 120.0);
        assert_eq!(states(&out), vec!["ACTIVE"]);
        assert!(
            matches!(&out[1], DetectorOutput::Notification { payload, .. } if payload.contains("\"severity\":1"))
        );
        assert_eq!(
            states(&feed(&mut alarm, 1000, 90.0)),
            vec!["LATCHED"],
            "not acknowledged: latched"
        );
        assert_eq!(
            states(&alarm.command("veh-1", AlarmCommand::Acknowledge, 2000)),
            vec!["NORMAL"]
        );
        assert_eq!(states(&feed(&mut alarm, 3000, 120.0)), vec!["ACTIVE"]);
        assert_eq!(
            states(&alarm.command("veh-1", AlarmCommand::Acknowledge, 4000)),
            vec!["ACKNOWLEDGED"]
        );
        assert_eq!(states(&feed(&mut alarm, 5000, 90.0)), vec!["NORMAL"]);
    }

    #[test]
    fn snooze_disable_enable_reset() {
        let mut alarm = engine();
        feed(&mut alarm, 0, 120.0);
        assert_eq!(
            states(&alarm.command("veh-1", AlarmCommand::Snooze { until_ms: 60_000 }, 1000)),
            vec!["SNOOZE_DISABLED"]
        );
        assert!(
            feed(&mut alarm, 2000, 130.0).is_empty(),
            "snoozed alarms do not evaluate"
        );
        assert_eq!(
            states(&feed(&mut alarm, 61_000, 130.0)),
            vec!["NORMAL", "ACTIVE"]
        );
        assert_eq!(
            states(&alarm.command("veh-1", AlarmCommand::Reset, 62_000)),
            vec!["NORMAL"]
        );
        assert_eq!(
            states(&alarm.command("veh-1", AlarmCommand::Disable, 63_000)),
            vec!["DISABLED"]
        );
        assert!(feed(&mut alarm, 64_000, 130.0).is_empty());
        assert_eq!(
            states(&alarm.command("veh-1", AlarmCommand::Enable, 65_000)),
            vec!["NORMAL"]
        );
        let bytes = postcard::to_stdvec(&alarm.snapshot()).unwrap();
        let mut restored = engine();
        restored.restore(postcard::from_bytes(&bytes).unwrap());
        assert_eq!(restored.state_of("veh-1"), Some(AlarmState::Normal));
    }

    #[test]
    fn invalid_models_are_reported() {
        let (model, report) = load_alarm_model(&ALARM.replace("GREATER", "BIGGER"));
        assert!(model.is_none());
        assert!(report.errors[0].contains("BIGGER"));
    }
}
