//! Importing detector models: the JSON `aws iotevents describe-detector-model` returns, or the
//! `CreateDetectorModel` request body, compiled into parsed expressions and checked. Everything
//! that will not run here is listed in the [`ValidationReport`], never silently dropped.

use serde::Deserialize;
use serde_json::Value as Json;

use super::expression::{check, parse_expression, Expr};

/// How conditions in one event group see variable updates.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, serde::Serialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum EvaluationMethod {
    /// Every condition and value of the group is evaluated first; variable updates apply after.
    #[default]
    Batch,
    /// Events run in order; each sees the updates of the ones before it.
    Serial,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawEvent {
    event_name: String,
    #[serde(default)]
    condition: Option<String>,
    #[serde(default)]
    actions: Vec<serde_json::Map<String, Json>>,
    #[serde(default)]
    next_state: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawLifecycle {
    #[serde(default)]
    events: Vec<RawEvent>,
    #[serde(default)]
    transition_events: Vec<RawEvent>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawState {
    state_name: String,
    #[serde(default)]
    on_input: Option<RawLifecycle>,
    #[serde(default)]
    on_enter: Option<RawLifecycle>,
    #[serde(default)]
    on_exit: Option<RawLifecycle>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawDefinition {
    states: Vec<RawState>,
    initial_state_name: String,
}

/// An action the engine performs.
#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    /// `setVariable`.
    SetVariable {
        /// Variable name.
        name: String,
        /// Value expression.
        value: Expr,
    },
    /// `setTimer` (seconds or a duration expression in seconds).
    SetTimer {
        /// Timer name.
        name: String,
        /// Duration in seconds.
        seconds: Expr,
    },
    /// `resetTimer`: re-arm with the previously evaluated duration.
    ResetTimer {
        /// Timer name.
        name: String,
    },
    /// `clearTimer`.
    ClearTimer {
        /// Timer name.
        name: String,
    },
    /// Emits a threshold-rule alert built from the detector's variables (`since`, `first`,
    /// `min`, `max`, `last`, `count`); only rules compiled by [`crate::rules`] use it.
    RuleAlert {
        /// What the alert is about.
        rule: std::sync::Arc<crate::rules::ThresholdRule>,
        /// Firing or resolved.
        status: crate::rules::AlertStatus,
    },
    /// `sns` / `sqs`: becomes an alert with the evaluated payload.
    Notify {
        /// `sns` or `sqs`.
        kind: &'static str,
        /// Topic ARN or queue URL, kept for routing.
        target: String,
        /// Payload expression (the default payload when absent).
        payload: Option<Expr>,
    },
}

/// An event: optional condition and actions (and a next state for transitions).
#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    /// Event name.
    pub name: String,
    /// Condition (none: always true).
    pub condition: Option<Expr>,
    /// Actions in order.
    pub actions: Vec<Action>,
    /// Target state index, for transition events.
    pub next_state: Option<usize>,
}

/// A state with its event groups.
#[derive(Debug, Clone, PartialEq)]
pub struct State {
    /// State name.
    pub name: String,
    /// `onEnter.events`.
    pub on_enter: Vec<Event>,
    /// `onInput.events`.
    pub on_input: Vec<Event>,
    /// `onInput.transitionEvents`.
    pub transitions: Vec<Event>,
    /// `onExit.events`.
    pub on_exit: Vec<Event>,
}

/// A compiled detector model.
#[derive(Debug, Clone, PartialEq)]
pub struct DetectorModel {
    /// Model name.
    pub name: String,
    /// BATCH or SERIAL.
    pub evaluation: EvaluationMethod,
    /// The model's `key` (documentation: instances here are keyed by vehicle id).
    pub key: Option<String>,
    /// States; the initial one is `states[initial]`.
    pub states: Vec<State>,
    /// Index of the initial state.
    pub initial: usize,
}

/// What loading a model found: problems that stop it, and actions that will not run.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ValidationReport {
    /// Errors: the model cannot run.
    pub errors: Vec<String>,
    /// Actions that are skipped, with where and why.
    pub skipped_actions: Vec<String>,
}

impl ValidationReport {
    /// The JSON document a model file holds, or a report whose only error says why it is not
    /// valid JSON.
    pub(crate) fn parse(json: &str) -> Result<Json, Self> {
        serde_json::from_str(json).map_err(|err| Self {
            errors: vec![format!("not valid JSON: {err}")],
            skipped_actions: Vec::new(),
        })
    }
}

impl std::fmt::Display for ValidationReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.errors.is_empty() && self.skipped_actions.is_empty() {
            return f.write_str("ok: every event and action will run");
        }
        for error in &self.errors {
            writeln!(f, "error: {error}")?;
        }
        for skipped in &self.skipped_actions {
            writeln!(f, "will not run: {skipped}")?;
        }
        Ok(())
    }
}

/// Loads a model from `describe-detector-model` output or a `CreateDetectorModel` body.
pub fn load_detector_model(json: &str) -> (Option<DetectorModel>, ValidationReport) {
    let (document, mut report) = match ValidationReport::parse(json) {
        Ok(document) => (document, ValidationReport::default()),
        Err(report) => return (None, report),
    };
    let root = document.get("detectorModel").unwrap_or(&document);
    let configuration = root.get("detectorModelConfiguration").unwrap_or(root);
    let name = configuration
        .get("detectorModelName")
        .and_then(Json::as_str)
        .unwrap_or("unnamed")
        .to_owned();
    let evaluation = match configuration.get("evaluationMethod").and_then(Json::as_str) {
        None | Some("BATCH") => EvaluationMethod::Batch,
        Some("SERIAL") => EvaluationMethod::Serial,
        Some(other) => {
            report.errors.push(format!(
                "evaluationMethod {other:?} is neither BATCH nor SERIAL"
            ));
            EvaluationMethod::Batch
        }
    };
    let key = configuration
        .get("key")
        .and_then(Json::as_str)
        .map(str::to_owned);
    let Some(definition) = root.get("detectorModelDefinition") else {
        report
            .errors
            .push("missing detectorModelDefinition".to_owned());
        return (None, report);
    };
    let definition: RawDefinition = match serde_json::from_value(definition.clone()) {
        Ok(definition) => definition,
        Err(err) => {
            report
                .errors
                .push(format!("detectorModelDefinition: {err}"));
            return (None, report);
        }
    };
    let names: Vec<String> = definition
        .states
        .iter()
        .map(|s| s.state_name.clone())
        .collect();
    let Some(initial) = names
        .iter()
        .position(|n| *n == definition.initial_state_name)
    else {
        report.errors.push(format!(
            "initialStateName {:?} is not one of the states",
            definition.initial_state_name
        ));
        return (None, report);
    };
    let mut compiler = Compiler {
        names: &names,
        report: &mut report,
    };
    let states = definition
        .states
        .iter()
        .map(|raw| compiler.state(raw))
        .collect();
    let model = DetectorModel {
        name,
        evaluation,
        key,
        states,
        initial,
    };
    let ok = report.errors.is_empty();
    (ok.then_some(model), report)
}

struct Compiler<'a> {
    names: &'a [String],
    report: &'a mut ValidationReport,
}

impl Compiler<'_> {
    fn state(&mut self, raw: &RawState) -> State {
        let place = |group: &str| format!("state {:?} {group}", raw.state_name);
        let empty = RawLifecycle::default();
        let on_input = raw.on_input.as_ref().unwrap_or(&empty);
        State {
            name: raw.state_name.clone(),
            on_enter: self.events(
                &raw.on_enter.as_ref().unwrap_or(&empty).events,
                &place("onEnter"),
            ),
            on_input: self.events(&on_input.events, &place("onInput")),
            transitions: self.events(&on_input.transition_events, &place("transitionEvents")),
            on_exit: self.events(
                &raw.on_exit.as_ref().unwrap_or(&empty).events,
                &place("onExit"),
            ),
        }
    }

    fn events(&mut self, raw: &[RawEvent], place: &str) -> Vec<Event> {
        raw.iter().map(|event| self.event(event, place)).collect()
    }

    fn expression(&mut self, text: &str, place: &str) -> Option<Expr> {
        match parse_expression(text) {
            Ok(expr) => {
                for problem in check(&expr) {
                    self.report.errors.push(format!("{place}: {problem}"));
                }
                Some(expr)
            }
            Err(err) => {
                self.report.errors.push(format!("{place}: {err}"));
                None
            }
        }
    }

    fn event(&mut self, raw: &RawEvent, place: &str) -> Event {
        let place = format!("{place} event {:?}", raw.event_name);
        let condition = raw
            .condition
            .as_deref()
            .filter(|text| !text.trim().is_empty())
            .and_then(|text| self.expression(text, &format!("{place} condition")));
        let next_state = raw.next_state.as_ref().and_then(|next| {
            let index = self.names.iter().position(|name| name == next);
            if index.is_none() {
                self.report
                    .errors
                    .push(format!("{place}: nextState {next:?} is not a state"));
            }
            index
        });
        let actions = raw
            .actions
            .iter()
            .filter_map(|action| self.action(action, &place))
            .collect();
        Event {
            name: raw.event_name.clone(),
            condition,
            actions,
            next_state,
        }
    }

    fn action(&mut self, raw: &serde_json::Map<String, Json>, place: &str) -> Option<Action> {
        let (kind, body) = raw.iter().next()?;
        let text = |field: &str| body.get(field).and_then(Json::as_str).map(str::to_owned);
        let timer = || text("timerName").unwrap_or_default();
        match kind.as_str() {
            "setVariable" => {
                let value = self.expression(
                    &text("value").unwrap_or_default(),
                    &format!("{place} setVariable"),
                )?;
                Some(Action::SetVariable {
                    name: text("variableName").unwrap_or_default(),
                    value,
                })
            }
            "setTimer" => {
                let seconds = match (body.get("seconds"), text("durationExpression")) {
                    (Some(Json::Number(n)), _) => n.to_string(),
                    (_, Some(expression)) => expression,
                    _ => {
                        self.report.errors.push(format!(
                            "{place}: setTimer needs seconds or durationExpression"
                        ));
                        return None;
                    }
                };
                let seconds = self.expression(&seconds, &format!("{place} setTimer"))?;
                Some(Action::SetTimer {
                    name: timer(),
                    seconds,
                })
            }
            "resetTimer" => Some(Action::ResetTimer { name: timer() }),
            "clearTimer" => Some(Action::ClearTimer { name: timer() }),
            "sns" | "sqs" => {
                let payload = body
                    .get("payload")
                    .and_then(|payload| payload.get("contentExpression"))
                    .and_then(Json::as_str)
                    .and_then(|content| {
                        self.expression(content, &format!("{place} {kind} payload"))
                    });
                Some(Action::Notify {
                    kind: if kind == "sns" { "sns" } else { "sqs" },
                    target: text("targetArn")
                        .or_else(|| text("queueUrl"))
                        .unwrap_or_default(),
                    payload,
                })
            }
            other => {
                self.report.skipped_actions.push(format!(
                    "{place}: action `{other}` — fleetstream runs setVariable, setTimer, resetTimer, \
                     clearTimer, and sns/sqs (as alerts); `{other}` would need its AWS service"
                ));
                None
            }
        }
    }
}
