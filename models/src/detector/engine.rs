//! Runs a detector model per vehicle in event time.
//!
//! Inputs are buffered until the watermark passes them and processed per vehicle in (event time,
//! arrival) order; timers expire in event time, interleaved with the inputs (a timer expiring at
//! the same instant as an input fires first), so a replay produces the same state sequence.
//! A vehicle's detector is created on its first input, in the initial state, whose `onEnter`
//! events run then. For an input the current state's `onInput` events run, then the first
//! transition event whose condition holds: its actions, the state's `onExit` events, the new
//! state's `onEnter` events. With BATCH evaluation every condition and value of the `onInput`
//! group sees the variables as they were when the input arrived; with SERIAL each event sees the
//! updates of the ones before it.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use rustc_hash::FxHashMap;

use compact_str::CompactString;
use serde::{Deserialize, Serialize};
use telemetry::Record;

use super::buffer::EventTimeBuffer;
use super::expression::{evaluate, Context, Expr, PathSegment, TriggerType, Value};
use super::input::InputBinding;
use super::model::{Action, DetectorModel, EvaluationMethod, Event};

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
struct Timer {
    expires_ms: i64,
    duration_ms: i64,
}

/// Which clock timers run on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TimerClock {
    /// Event time: a timer set by an input at `t` for `d` expires when the watermark passes
    /// `t + d`, interleaved with the inputs (deterministic replays).
    #[default]
    Event,
    /// Processing time: expires when the wall clock (given with
    /// [`DetectorEngine::set_processing_time`]) passes `now + d`, before pending inputs.
    Processing,
}

/// One vehicle's detector.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Instance {
    state: String,
    variables: BTreeMap<String, Value>,
    timers: BTreeMap<String, Timer>,
}

/// What a detector reports.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum DetectorOutput {
    /// A threshold-rule alert (from rules compiled to detector models).
    Alert(Box<crate::rules::Alert>),
    /// The detector moved between states.
    StateChange {
        /// Vehicle.
        vehicle_id: CompactString,
        /// Model name.
        model: String,
        /// Previous state.
        from: String,
        /// New state.
        to: String,
        /// Event time of the input or timer that caused it.
        time_ms: i64,
        /// `message` or `timer:<name>`.
        trigger: String,
        /// The variables after the change.
        variables: BTreeMap<String, Value>,
        /// Signal values of the record that caused it (empty for timers and commands).
        inputs: BTreeMap<String, f64>,
    },
    /// An `sns`/`sqs` action: an alert with its evaluated payload.
    Notification {
        /// Vehicle.
        vehicle_id: CompactString,
        /// Model name.
        model: String,
        /// `sns` or `sqs`.
        kind: String,
        /// Topic ARN or queue URL.
        target: String,
        /// State the detector was in.
        state: String,
        /// Event time.
        time_ms: i64,
        /// Evaluated payload (or the default detector description).
        payload: String,
        /// Signal values of the record that caused it (empty for timers).
        inputs: BTreeMap<String, f64>,
    },
}

/// The serializable state of a [`DetectorEngine`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DetectorEngineState {
    instances: BTreeMap<CompactString, Instance>,
    buffered: EventTimeBuffer,
}

/// A detector model over every vehicle; see the module documentation.
#[derive(Debug, Clone)]
pub struct DetectorEngine {
    model: DetectorModel,
    inputs: Vec<InputBinding>,
    /// Index in `inputs` of the input being processed.
    current_input: usize,
    instances: FxHashMap<CompactString, Instance>,
    buffered: EventTimeBuffer,
    /// Every armed timer as (expiry, vehicle, name): the next one to fire is the first.
    timer_index: BTreeSet<(i64, CompactString, String)>,
    timer_clock: TimerClock,
    processing_now_ms: i64,
    evict_idle: bool,
}

/// Where expressions read from while one input or timer is processed.
struct Frame<'a> {
    input: &'a InputBinding,
    record: Option<&'a Record>,
    variables: &'a BTreeMap<String, Value>,
    expired: Option<&'a str>,
}

impl Context for Frame<'_> {
    fn input(&self, input: &str, path: &[PathSegment]) -> Value {
        match self.record {
            Some(record) => self.input.value(input, path, record),
            None => Value::Undefined,
        }
    }
    fn variable(&self, name: &str) -> Value {
        self.variables
            .get(name)
            .cloned()
            .unwrap_or(Value::Undefined)
    }
    fn timeout(&self, name: &str) -> bool {
        self.expired == Some(name)
    }
    fn trigger_type(&self) -> TriggerType {
        if self.expired.is_some() {
            TriggerType::Timer
        } else {
            TriggerType::Message
        }
    }
    fn current_input(&self) -> Option<&str> {
        self.record.map(|_| self.input.name.as_str())
    }
}

/// An action whose expressions have been evaluated.
enum Effect {
    RuleAlert(Box<crate::rules::Alert>),
    Set(String, Value),
    SetTimer(String, Value),
    ResetTimer(String),
    ClearTimer(String),
    Notify {
        kind: &'static str,
        target: String,
        payload: Option<String>,
        event: String,
        timer: Option<String>,
        inputs: BTreeMap<String, f64>,
    },
}

impl DetectorEngine {
    /// An engine for `model`, reading telemetry records as input `input_name` (the record's own
    /// field names; see [`Self::with_input`] for a mapped `CreateInput` definition).
    pub fn new(model: DetectorModel, input_name: impl Into<String>) -> Self {
        Self {
            model,
            inputs: vec![InputBinding::named(input_name)],
            current_input: 0,
            instances: FxHashMap::default(),
            buffered: EventTimeBuffer::default(),
            timer_index: BTreeSet::new(),
            timer_clock: TimerClock::Event,
            processing_now_ms: 0,
            evict_idle: false,
        }
    }

    /// Forgets a vehicle whenever its detector is back in the initial state with no timer, so
    /// quiet vehicles hold no state. Only for models whose initial state needs no memory (the
    /// compiled threshold rules); a user model keeps its instances as IoT Events does.
    pub fn with_idle_eviction(mut self) -> Self {
        self.evict_idle = true;
        self
    }

    /// Reads records through `input` (a `CreateInput` definition with a field mapping).
    pub fn with_input(mut self, input: InputBinding) -> Self {
        self.inputs = vec![input];
        self
    }

    /// Reads records as several inputs: a record is processed once for each input whose mapped
    /// fields it all carries (an input without a mapping takes every record), in this order —
    /// as IoT Events processes one message per input. Empty: keeps the current input.
    pub fn with_inputs(mut self, inputs: Vec<InputBinding>) -> Self {
        if !inputs.is_empty() {
            self.inputs = inputs;
        }
        self
    }

    /// The input being processed.
    fn input(&self) -> &InputBinding {
        &self.inputs[self.current_input.min(self.inputs.len() - 1)]
    }

    /// The expression context: the current input over `variables`.
    fn frame<'a>(
        &'a self,
        record: Option<&'a Record>,
        variables: &'a BTreeMap<String, Value>,
        expired: Option<&'a str>,
    ) -> Frame<'a> {
        Frame {
            input: self.input(),
            record,
            variables,
            expired,
        }
    }

    /// Runs timers on `clock`.
    pub fn with_timer_clock(mut self, clock: TimerClock) -> Self {
        self.timer_clock = clock;
        self
    }

    /// The wall clock for [`TimerClock::Processing`] (call before each advance).
    pub fn set_processing_time(&mut self, now_ms: i64) {
        self.processing_now_ms = now_ms;
    }

    fn index_timers(&mut self, vehicle: &CompactString, instance: &Instance, armed: bool) {
        for (name, timer) in &instance.timers {
            let entry = (timer.expires_ms, vehicle.clone(), name.clone());
            if armed {
                self.timer_index.insert(entry);
            } else {
                self.timer_index.remove(&entry);
            }
        }
    }

    /// Buffers `record` until the watermark passes it.
    pub fn offer(&mut self, record: &Record) {
        self.offer_shared(Arc::new(record.clone()));
    }

    /// Buffers a shared record (several models can hold the same one without copying it).
    pub fn offer_shared(&mut self, record: Arc<Record>) {
        self.buffered.push(record);
    }

    /// Processes every input and timer before `watermark_ms`, in event-time order.
    pub fn advance_watermark(&mut self, watermark_ms: i64) -> Vec<DetectorOutput> {
        let mut out = Vec::new();
        loop {
            let next_input = self.buffered.next_time_before(watermark_ms);
            let processing = self.timer_clock == TimerClock::Processing;
            let next_timer = self.next_timer().filter(|(t, _, _)| {
                if processing {
                    *t <= self.processing_now_ms
                } else {
                    *t < watermark_ms
                }
            });
            match (next_input, next_timer) {
                (Some(input_time), Some((timer_time, vehicle, timer)))
                    if processing || timer_time <= input_time =>
                {
                    self.fire_timer(&vehicle, &timer, timer_time, &mut out);
                }
                (Some(_), _) => {
                    if let Some(record) = self.buffered.pop_before(watermark_ms) {
                        self.process_input(&record, &mut out);
                    }
                }
                (None, Some((timer_time, vehicle, timer))) => {
                    self.fire_timer(&vehicle, &timer, timer_time, &mut out)
                }
                (None, None) => return out,
            }
        }
    }

    /// The earliest armed timer over all vehicles.
    fn next_timer(&self) -> Option<(i64, CompactString, String)> {
        self.timer_index.first().cloned()
    }

    fn process_input(&mut self, record: &Record, out: &mut Vec<DetectorOutput>) {
        let model = &self.model;
        if !self.inputs.iter().any(|input| input.matches(record)) {
            return;
        }
        if !self.instances.contains_key(&record.vehicle_id) {
            self.current_input = self
                .inputs
                .iter()
                .position(|input| input.matches(record))
                .unwrap_or(0);
            let mut instance = Instance {
                state: model.states[model.initial].name.clone(),
                variables: BTreeMap::new(),
                timers: BTreeMap::new(),
            };
            let on_enter = &model.states[model.initial].on_enter;
            self.run_events(
                on_enter,
                &mut instance,
                Some(record),
                None,
                record.event_time_ms,
                &record.vehicle_id,
                out,
            );
            self.instances.insert(record.vehicle_id.clone(), instance);
        }
        for index in 0..self.inputs.len() {
            if self.inputs[index].matches(record) {
                self.current_input = index;
                self.step(
                    &record.vehicle_id.clone(),
                    Some(record),
                    None,
                    record.event_time_ms,
                    out,
                );
            }
        }
    }

    fn fire_timer(
        &mut self,
        vehicle: &CompactString,
        timer: &str,
        time_ms: i64,
        out: &mut Vec<DetectorOutput>,
    ) {
        self.timer_index
            .remove(&(time_ms, vehicle.clone(), timer.to_owned()));
        if let Some(instance) = self.instances.get_mut(vehicle) {
            instance.timers.remove(timer);
        }
        self.step(vehicle, None, Some(timer), time_ms, out);
    }

    /// Runs the current state's `onInput` group for one input or expired timer.
    fn step(
        &mut self,
        vehicle: &CompactString,
        record: Option<&Record>,
        expired: Option<&str>,
        time_ms: i64,
        out: &mut Vec<DetectorOutput>,
    ) {
        let Some(mut instance) = self.instances.remove(vehicle) else {
            return;
        };
        self.index_timers(vehicle, &instance, false);
        let Some(state_index) = self
            .model
            .states
            .iter()
            .position(|s| s.name == instance.state)
        else {
            self.index_timers(vehicle, &instance, true);
            self.instances.insert(vehicle.clone(), instance);
            return;
        };
        let state = &self.model.states[state_index];
        let batch = self.model.evaluation == EvaluationMethod::Batch;
        // Which transition fires is decided on the variables as the input found them (BATCH) or
        // after the onInput events (SERIAL).
        let mut chosen = None;
        let mut arrival_variables = None;
        if batch {
            // Conditions see the variables as the input found them: decide before the events run.
            chosen =
                self.first_transition(&state.transitions, record, &instance.variables, expired);
            if chosen.is_some() {
                arrival_variables = Some(instance.variables.clone());
            }
        }
        self.run_events(
            &state.on_input,
            &mut instance,
            record,
            expired,
            time_ms,
            vehicle,
            out,
        );
        if !batch {
            chosen =
                self.first_transition(&state.transitions, record, &instance.variables, expired);
        }
        if let Some(transition) = chosen.and_then(|index| state.transitions.get(index)) {
            if let Some(arrival_variables) = &arrival_variables {
                // BATCH: the transition's values are computed on the variables as the input found
                // them too (the onInput events' updates are applied, then overwritten by these).
                let effects = self.effects(
                    transition,
                    &transition.actions,
                    record,
                    arrival_variables,
                    expired,
                );
                self.apply(effects, &mut instance, time_ms, vehicle, out);
            } else {
                // SERIAL: each action sees the updates of the ones before it.
                for action in &transition.actions {
                    let effects = self.effects(
                        transition,
                        std::slice::from_ref(action),
                        record,
                        &instance.variables,
                        expired,
                    );
                    self.apply(effects, &mut instance, time_ms, vehicle, out);
                }
            }
            if let Some(next) = transition.next_state {
                self.run_events(
                    &state.on_exit,
                    &mut instance,
                    record,
                    expired,
                    time_ms,
                    vehicle,
                    out,
                );
                let from =
                    std::mem::replace(&mut instance.state, self.model.states[next].name.clone());
                let on_enter = &self.model.states[next].on_enter;
                self.run_events(
                    on_enter,
                    &mut instance,
                    record,
                    expired,
                    time_ms,
                    vehicle,
                    out,
                );
                out.push(DetectorOutput::StateChange {
                    vehicle_id: vehicle.clone(),
                    model: self.model.name.clone(),
                    from,
                    to: instance.state.clone(),
                    time_ms,
                    trigger: expired.map_or_else(|| "message".to_owned(), |t| format!("timer:{t}")),
                    variables: instance.variables.clone(),
                    inputs: signal_values(record),
                });
            }
        }
        let idle = self.evict_idle
            && instance.timers.is_empty()
            && instance.state == self.model.states[self.model.initial].name;
        if !idle {
            self.index_timers(vehicle, &instance, true);
            self.instances.insert(vehicle.clone(), instance);
        }
    }

    fn first_transition(
        &self,
        transitions: &[Event],
        record: Option<&Record>,
        variables: &BTreeMap<String, Value>,
        expired: Option<&str>,
    ) -> Option<usize> {
        let frame = self.frame(record, variables, expired);
        transitions
            .iter()
            .position(|event| holds(event.condition.as_ref(), &frame))
    }

    /// Runs an event group under the model's evaluation method.
    #[allow(clippy::too_many_arguments)]
    fn run_events(
        &self,
        events: &[Event],
        instance: &mut Instance,
        record: Option<&Record>,
        expired: Option<&str>,
        time_ms: i64,
        vehicle: &CompactString,
        out: &mut Vec<DetectorOutput>,
    ) {
        if self.model.evaluation == EvaluationMethod::Batch {
            let snapshot = instance.variables.clone();
            let mut effects = Vec::new();
            for event in events {
                let frame = self.frame(record, &snapshot, expired);
                if holds(event.condition.as_ref(), &frame) {
                    effects.extend(self.effects(event, &event.actions, record, &snapshot, expired));
                }
            }
            self.apply(effects, instance, time_ms, vehicle, out);
        } else {
            for event in events {
                let frame = self.frame(record, &instance.variables, expired);
                if holds(event.condition.as_ref(), &frame) {
                    for action in &event.actions {
                        let effects = self.effects(
                            event,
                            std::slice::from_ref(action),
                            record,
                            &instance.variables,
                            expired,
                        );
                        self.apply(effects, instance, time_ms, vehicle, out);
                    }
                }
            }
        }
    }

    fn effects(
        &self,
        event: &Event,
        actions: &[Action],
        record: Option<&Record>,
        variables: &BTreeMap<String, Value>,
        expired: Option<&str>,
    ) -> Vec<Effect> {
        let frame = self.frame(record, variables, expired);
        actions
            .iter()
            .map(|action| match action {
                Action::SetVariable { name, value } => {
                    Effect::Set(name.clone(), evaluate(value, &frame))
                }
                Action::SetTimer { name, seconds } => {
                    Effect::SetTimer(name.clone(), evaluate(seconds, &frame))
                }
                Action::ResetTimer { name } => Effect::ResetTimer(name.clone()),
                Action::RuleAlert { rule, status } => {
                    Effect::RuleAlert(Box::new(rule_alert(rule, *status, record, variables)))
                }
                Action::ClearTimer { name } => Effect::ClearTimer(name.clone()),
                Action::Notify {
                    kind,
                    target,
                    payload,
                } => Effect::Notify {
                    kind,
                    target: target.clone(),
                    payload: payload
                        .as_ref()
                        .map(|payload| evaluate(payload, &frame).to_string()),
                    event: event.name.clone(),
                    timer: expired.map(str::to_owned),
                    inputs: signal_values(record),
                },
            })
            .collect()
    }

    fn apply(
        &self,
        effects: Vec<Effect>,
        instance: &mut Instance,
        time_ms: i64,
        vehicle: &CompactString,
        out: &mut Vec<DetectorOutput>,
    ) {
        for effect in effects {
            match effect {
                Effect::RuleAlert(mut alert) => {
                    if alert.status == crate::rules::AlertStatus::Firing {
                        alert.fired_time_ms = time_ms;
                    } else {
                        alert.end_time_ms = Some(time_ms);
                    }
                    out.push(DetectorOutput::Alert(alert));
                }
                Effect::Set(name, value) => {
                    instance.variables.insert(name, value);
                }
                Effect::SetTimer(name, seconds) => {
                    if let Some(seconds) = seconds.as_f64().filter(|s| s.is_finite() && *s >= 0.0) {
                        let duration_ms = (seconds * 1000.0).round() as i64;
                        instance.timers.insert(
                            name,
                            Timer {
                                expires_ms: self.timer_base(time_ms).saturating_add(duration_ms),
                                duration_ms,
                            },
                        );
                    }
                }
                Effect::ResetTimer(name) => {
                    if let Some(timer) = instance.timers.get_mut(&name) {
                        timer.expires_ms =
                            self.timer_base(time_ms).saturating_add(timer.duration_ms);
                    }
                }
                Effect::ClearTimer(name) => {
                    instance.timers.remove(&name);
                }
                Effect::Notify {
                    kind,
                    target,
                    payload,
                    event,
                    timer,
                    inputs,
                } => {
                    let payload = payload.unwrap_or_else(|| {
                        self.default_payload(vehicle, instance, &event, timer.as_deref(), time_ms)
                    });
                    out.push(DetectorOutput::Notification {
                        vehicle_id: vehicle.clone(),
                        model: self.model.name.clone(),
                        kind: kind.to_owned(),
                        target,
                        state: instance.state.clone(),
                        time_ms,
                        payload,
                        inputs,
                    });
                }
            }
        }
    }

    /// When a timer set now starts counting: the event time, or the wall clock.
    fn timer_base(&self, event_time_ms: i64) -> i64 {
        match self.timer_clock {
            TimerClock::Event => event_time_ms,
            TimerClock::Processing => self.processing_now_ms,
        }
    }

    /// The payload IoT Events sends when an action has none: the detector and its state.
    fn default_payload(
        &self,
        vehicle: &CompactString,
        instance: &Instance,
        event: &str,
        timer: Option<&str>,
        time_ms: i64,
    ) -> String {
        let variables: serde_json::Map<String, serde_json::Value> = instance
            .variables
            .iter()
            .map(|(name, value)| (name.clone(), value.to_json()))
            .collect();
        let timers: serde_json::Map<String, serde_json::Value> = instance
            .timers
            .iter()
            .map(|(name, timer)| {
                (
                    name.clone(),
                    serde_json::json!({"timestamp": timer.expires_ms}),
                )
            })
            .collect();
        let trigger = match timer {
            Some(timer) => serde_json::json!({"triggerType": "Timer", "timerName": timer}),
            None => serde_json::json!({"triggerType": "Message", "inputName": self.input().name}),
        };
        serde_json::json!({
            "eventTime": time_ms,
            "payload": {
                "detector": {"detectorModelName": self.model.name, "keyValue": vehicle.as_str()},
                "eventTriggerDetails": trigger,
                "state": {"stateName": instance.state, "variables": variables, "timers": timers},
            },
            "eventName": event,
        })
        .to_string()
    }

    /// The state to checkpoint.
    pub fn snapshot(&self) -> DetectorEngineState {
        DetectorEngineState {
            instances: self
                .instances
                .iter()
                .map(|(vehicle, instance)| (vehicle.clone(), instance.clone()))
                .collect(),
            buffered: self.buffered.clone(),
        }
    }

    /// Restores checkpointed state. A model update keeps each vehicle's state, variables and
    /// timers when its state name still exists in the new model; otherwise that vehicle starts
    /// over in the initial state.
    pub fn restore(&mut self, state: DetectorEngineState) {
        let names: Vec<&str> = self.model.states.iter().map(|s| s.name.as_str()).collect();
        self.instances = state
            .instances
            .into_iter()
            .filter(|(_, instance)| names.contains(&instance.state.as_str()))
            .collect();
        self.buffered = state.buffered;
        self.timer_index.clear();
        let instances = std::mem::take(&mut self.instances);
        for (vehicle, instance) in &instances {
            self.index_timers(vehicle, instance, true);
        }
        self.instances = instances;
    }

    /// The model's name.
    pub fn model_name(&self) -> &str {
        &self.model.name
    }

    /// Records waiting for the watermark.
    pub fn buffered_len(&self) -> usize {
        self.buffered.len()
    }

    /// Vehicles with a detector.
    pub fn instances(&self) -> usize {
        self.instances.len()
    }

    /// Current state of `vehicle`'s detector.
    pub fn state_of(&self, vehicle: &str) -> Option<&str> {
        self.instances
            .get(vehicle)
            .map(|instance| instance.state.as_str())
    }
}

/// A rule alert from the variables a compiled rule keeps (see `crate::rules::compile`). The
/// fired/end time is the event time of the input that completes it, set when applied.
fn rule_alert(
    rule: &crate::rules::ThresholdRule,
    status: crate::rules::AlertStatus,
    record: Option<&Record>,
    variables: &BTreeMap<String, Value>,
) -> crate::rules::Alert {
    let number = |name: &str| {
        variables
            .get(name)
            .and_then(Value::as_f64)
            .unwrap_or(f64::NAN)
    };
    let integer = |name: &str| match variables.get(name) {
        Some(Value::Integer(i)) => *i,
        other => other.and_then(Value::as_f64).map_or(0, |f| f as i64),
    };
    crate::rules::Alert {
        vehicle_id: record.map(|r| r.vehicle_id.clone()).unwrap_or_default(),
        fleet: record.and_then(|r| r.fleet.clone()),
        rule: rule.name.clone(),
        severity: rule.severity,
        signal: rule.when.signal.clone(),
        condition: rule.when.to_string(),
        start_time_ms: integer("since"),
        fired_time_ms: integer("firedAt"),
        end_time_ms: None,
        trigger: crate::rules::TriggerValues {
            first: number("first"),
            min: number("min"),
            max: number("max"),
            last: number("last"),
            count: integer("count").max(0) as u64,
        },
        status,
    }
}

/// The record's signals by name (what triggered a state change).
pub(crate) fn signal_values(record: Option<&Record>) -> BTreeMap<String, f64> {
    record
        .map(|record| {
            record
                .signals
                .iter()
                .map(|signal| (signal.name.to_string(), signal.value))
                .collect()
        })
        .unwrap_or_default()
}

fn holds(condition: Option<&Expr>, frame: &Frame<'_>) -> bool {
    condition.is_none_or(|condition| evaluate(condition, frame).is_true())
}
