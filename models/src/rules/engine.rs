//! Evaluates threshold rules per vehicle in event-time order — on the detector engine: each rule
//! is compiled to a detector model ([`super::compile`]), so rules and IoT Events models share one
//! engine, one ordering rule and one snapshot format.
//!
//! Records are buffered until the watermark passes them and then evaluated in (event time,
//! arrival) order, so the result does not depend on how the network reordered them. A record
//! behind the watermark must not be offered (the pipeline skips it for rules and counts it).
//! Only vehicles with a pending or firing rule hold state.

use std::sync::Arc;

use serde::{Deserialize, Serialize};
use telemetry::Record;

use super::alert::Alert;
use super::compile::{compile_rule, RULE_INPUT};
use super::rule::ThresholdRule;
use crate::detector::{DetectorEngine, DetectorEngineState, DetectorOutput};

/// The serializable state of a [`RuleEngine`], with the rules it was built for.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RuleEngineState {
    rules: Vec<ThresholdRule>,
    detectors: Vec<DetectorEngineState>,
}

/// Threshold rules over every vehicle; see the module documentation.
#[derive(Debug, Clone)]
pub struct RuleEngine {
    rules: Vec<ThresholdRule>,
    detectors: Vec<DetectorEngine>,
}

impl RuleEngine {
    /// An engine for `rules`. [`super::RuleSpec::compile`] only produces rules that compile to
    /// detector models; any other rule is left out.
    pub fn new(rules: Vec<ThresholdRule>) -> Self {
        let mut kept = Vec::new();
        let mut detectors = Vec::new();
        for rule in rules {
            if let Ok(model) = compile_rule(&rule) {
                detectors.push(DetectorEngine::new(model, RULE_INPUT).with_idle_eviction());
                kept.push(rule);
            }
        }
        Self {
            rules: kept,
            detectors,
        }
    }

    /// True when there are no rules (the pipeline then skips this stage).
    pub fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }

    /// Buffers `record` for the rules whose signal it carries.
    pub fn offer(&mut self, record: &Record) {
        let mut shared: Option<Arc<Record>> = None;
        for (rule, detector) in self.rules.iter().zip(&mut self.detectors) {
            if record.signal(&rule.when.signal).is_some() {
                let record = shared.get_or_insert_with(|| Arc::new(record.clone()));
                detector.offer_shared(Arc::clone(record));
            }
        }
    }

    /// Evaluates every buffered record with event time before `watermark_ms` and returns the
    /// alerts that fired or resolved, ordered by event time.
    pub fn advance_watermark(&mut self, watermark_ms: i64) -> Vec<Alert> {
        let mut alerts: Vec<Alert> = self
            .detectors
            .iter_mut()
            .flat_map(|detector| detector.advance_watermark(watermark_ms))
            .filter_map(|output| match output {
                DetectorOutput::Alert(alert) => Some(*alert),
                _ => None,
            })
            .collect();
        alerts.sort_by_key(|alert| alert.end_time_ms.unwrap_or(alert.fired_time_ms));
        alerts
    }

    /// Records waiting for the watermark (summed over rules).
    pub fn buffered_len(&self) -> usize {
        self.detectors
            .iter()
            .map(DetectorEngine::buffered_len)
            .sum()
    }

    /// Vehicle-rule pairs with a pending or firing rule.
    pub fn active_vehicles(&self) -> usize {
        self.detectors.iter().map(DetectorEngine::instances).sum()
    }

    /// The state to checkpoint.
    pub fn snapshot(&self) -> RuleEngineState {
        RuleEngineState {
            rules: self.rules.clone(),
            detectors: self
                .detectors
                .iter()
                .map(DetectorEngine::snapshot)
                .collect(),
        }
    }

    /// Restores checkpointed state. Rules are matched by definition: a rule that changed starts
    /// from idle.
    pub fn restore(&mut self, state: RuleEngineState) {
        for (rule, detector) in self.rules.iter().zip(&mut self.detectors) {
            if let Some(index) = state.rules.iter().position(|old| old == rule) {
                if let Some(saved) = state.detectors.get(index) {
                    detector.restore(saved.clone());
                }
            }
        }
    }
}
