//! Evaluates threshold rules per vehicle in event-time order.
//!
//! Records are buffered until the watermark passes them and then evaluated in (event time,
//! arrival) order, so the result does not depend on how the network reordered them. A record
//! behind the watermark must not be offered (the pipeline dead-letters it as late). Only vehicles
//! with a pending or firing rule hold state.

use std::collections::BTreeMap;

use compact_str::CompactString;
use rustc_hash::FxHashMap;
use serde::{Deserialize, Serialize};
use telemetry::Record;

use super::alert::{Alert, AlertStatus, TriggerValues};
use super::condition::{Comparison, Condition};
use super::rule::ThresholdRule;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
enum RuleState {
    Idle,
    Pending {
        since_ms: i64,
        trigger: TriggerValues,
    },
    Firing {
        start_ms: i64,
        fired_ms: i64,
        trigger: TriggerValues,
        clearing_since_ms: Option<i64>,
    },
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct BufferedEvent {
    vehicle_id: CompactString,
    fleet: Option<CompactString>,
    /// One value per rule (the rule's signal in this record), `None` when absent.
    values: Vec<Option<f64>>,
}

/// The serializable state of a [`RuleEngine`], versioned with the rules it was built for.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RuleEngineState {
    rules: Vec<ThresholdRule>,
    buffered: BTreeMap<(i64, u64), BufferedEvent>,
    next_sequence: u64,
    vehicles: BTreeMap<CompactString, Vec<RuleState>>,
}

/// Threshold rules over every vehicle; see the module documentation.
#[derive(Debug, Clone)]
pub struct RuleEngine {
    rules: Vec<ThresholdRule>,
    buffered: BTreeMap<(i64, u64), BufferedEvent>,
    next_sequence: u64,
    vehicles: FxHashMap<CompactString, Vec<RuleState>>,
}

impl RuleEngine {
    /// An engine for `rules`.
    pub fn new(rules: Vec<ThresholdRule>) -> Self {
        Self {
            rules,
            buffered: BTreeMap::new(),
            next_sequence: 0,
            vehicles: FxHashMap::default(),
        }
    }

    /// True when there are no rules (the pipeline then skips this stage).
    pub fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }

    /// Buffers `record` for evaluation once the watermark passes it.
    pub fn offer(&mut self, record: &Record) {
        let values: Vec<Option<f64>> = self
            .rules
            .iter()
            .map(|rule| record.signal(&rule.when.signal))
            .collect();
        if values.iter().all(Option::is_none) {
            return;
        }
        let sequence = self.next_sequence;
        self.next_sequence += 1;
        self.buffered.insert(
            (record.event_time_ms, sequence),
            BufferedEvent {
                vehicle_id: record.vehicle_id.clone(),
                fleet: record.fleet.clone(),
                values,
            },
        );
    }

    /// Evaluates every buffered record with event time before `watermark_ms`, in order, and
    /// returns the alerts that fired or resolved.
    pub fn advance_watermark(&mut self, watermark_ms: i64) -> Vec<Alert> {
        let mut alerts = Vec::new();
        while let Some(entry) = self.buffered.first_entry() {
            if entry.key().0 >= watermark_ms {
                break;
            }
            let ((time_ms, _), event) = entry.remove_entry();
            self.evaluate(time_ms, event, &mut alerts);
        }
        alerts
    }

    /// Records waiting for the watermark.
    pub fn buffered_len(&self) -> usize {
        self.buffered.len()
    }

    /// Vehicles with a pending or firing rule.
    pub fn active_vehicles(&self) -> usize {
        self.vehicles.len()
    }

    fn evaluate(&mut self, time_ms: i64, event: BufferedEvent, alerts: &mut Vec<Alert>) {
        let rule_count = self.rules.len();
        let states = self
            .vehicles
            .entry(event.vehicle_id.clone())
            .or_insert_with(|| vec![RuleState::Idle; rule_count]);
        for ((rule, state), value) in self.rules.iter().zip(states.iter_mut()).zip(&event.values) {
            let Some(value) = *value else { continue };
            if let Some(status) = step(rule, state, time_ms, value) {
                alerts.push(alert_for(rule, state, &event, status, time_ms));
                if status == AlertStatus::Resolved {
                    *state = RuleState::Idle;
                }
            }
        }
        if states.iter().all(|state| *state == RuleState::Idle) {
            self.vehicles.remove(&event.vehicle_id);
        }
    }

    /// The state to checkpoint.
    pub fn snapshot(&self) -> RuleEngineState {
        RuleEngineState {
            rules: self.rules.clone(),
            buffered: self.buffered.clone(),
            next_sequence: self.next_sequence,
            vehicles: self
                .vehicles
                .iter()
                .map(|(vehicle, states)| (vehicle.clone(), states.clone()))
                .collect(),
        }
    }

    /// Restores checkpointed state. Rules are matched by name; a rule whose definition changed
    /// starts from idle, and buffered values are remapped to the current rules' signals.
    pub fn restore(&mut self, state: RuleEngineState) {
        let mapping: Vec<Option<usize>> = self
            .rules
            .iter()
            .map(|rule| state.rules.iter().position(|old| old == rule))
            .collect();
        let signal_mapping: Vec<Option<usize>> = self
            .rules
            .iter()
            .map(|rule| {
                state
                    .rules
                    .iter()
                    .position(|old| old.when.signal == rule.when.signal)
            })
            .collect();
        self.next_sequence = state.next_sequence;
        self.buffered = state
            .buffered
            .into_iter()
            .map(|(key, event)| {
                let values = signal_mapping
                    .iter()
                    .map(|old| old.and_then(|index| event.values.get(index).copied().flatten()))
                    .collect();
                (key, BufferedEvent { values, ..event })
            })
            .filter(|(_, event)| event.values.iter().any(Option::is_some))
            .collect();
        self.vehicles = state
            .vehicles
            .into_iter()
            .map(|(vehicle, old_states)| {
                let states: Vec<RuleState> = mapping
                    .iter()
                    .map(|old| {
                        old.and_then(|index| old_states.get(index).cloned())
                            .unwrap_or(RuleState::Idle)
                    })
                    .collect();
                (vehicle, states)
            })
            .filter(|(_, states)| states.iter().any(|state| *state != RuleState::Idle))
            .collect();
    }
}

/// The resolve condition: `clear_when`, or `when`'s comparison negated with no duration.
fn clear_condition(rule: &ThresholdRule) -> Condition {
    rule.clear_when.clone().unwrap_or_else(|| Condition {
        comparison: match rule.when.comparison {
            Comparison::Greater => Comparison::LessOrEqual,
            Comparison::GreaterOrEqual => Comparison::Less,
            Comparison::Less => Comparison::GreaterOrEqual,
            Comparison::LessOrEqual => Comparison::Greater,
            Comparison::Equal => Comparison::NotEqual,
            Comparison::NotEqual => Comparison::Equal,
        },
        for_ms: 0,
        ..rule.when.clone()
    })
}

/// Advances one rule's state with one sample; returns a status when an alert must be emitted.
fn step(
    rule: &ThresholdRule,
    state: &mut RuleState,
    time_ms: i64,
    value: f64,
) -> Option<AlertStatus> {
    match state {
        RuleState::Idle => {
            if !rule.when.holds(value) {
                return None;
            }
            *state = RuleState::Pending {
                since_ms: time_ms,
                trigger: TriggerValues::of(value),
            };
            fire_if_due(rule, state, time_ms)
        }
        RuleState::Pending { trigger, .. } => {
            if !rule.when.holds(value) {
                *state = RuleState::Idle;
                return None;
            }
            trigger.add(value);
            fire_if_due(rule, state, time_ms)
        }
        RuleState::Firing {
            clearing_since_ms, ..
        } => {
            let clear = clear_condition(rule);
            if !clear.holds(value) {
                *clearing_since_ms = None;
                return None;
            }
            let since = *clearing_since_ms.get_or_insert(time_ms);
            (time_ms - since >= clear.for_ms).then_some(AlertStatus::Resolved)
        }
    }
}

fn fire_if_due(rule: &ThresholdRule, state: &mut RuleState, time_ms: i64) -> Option<AlertStatus> {
    let RuleState::Pending { since_ms, trigger } = *state else {
        return None;
    };
    if time_ms - since_ms < rule.when.for_ms {
        return None;
    }
    *state = RuleState::Firing {
        start_ms: since_ms,
        fired_ms: time_ms,
        trigger,
        clearing_since_ms: None,
    };
    Some(AlertStatus::Firing)
}

fn alert_for(
    rule: &ThresholdRule,
    state: &RuleState,
    event: &BufferedEvent,
    status: AlertStatus,
    time_ms: i64,
) -> Alert {
    let (start_ms, fired_ms, trigger) = match state {
        RuleState::Firing {
            start_ms,
            fired_ms,
            trigger,
            ..
        } => (*start_ms, *fired_ms, *trigger),
        RuleState::Pending { since_ms, trigger } => (*since_ms, time_ms, *trigger),
        RuleState::Idle => (time_ms, time_ms, TriggerValues::of(f64::NAN)),
    };
    Alert {
        vehicle_id: event.vehicle_id.clone(),
        fleet: event.fleet.clone(),
        rule: rule.name.clone(),
        severity: rule.severity,
        signal: rule.when.signal.clone(),
        condition: rule.when.to_string(),
        start_time_ms: start_ms,
        fired_time_ms: fired_ms,
        end_time_ms: (status == AlertStatus::Resolved).then_some(time_ms),
        trigger,
        status,
    }
}
