//! Threshold rules compiled to detector models, so rules and IoT Events models run on one engine.
//!
//! `signal op value for D` with `clear_when` (default: the comparison negated, at once) becomes a
//! SERIAL model over input `Rule` with states `Idle`, `Pending` and `Firing`:
//! - `Idle` → `Pending` on the first matching sample (`since`, `first`, `min`, `max`, `last`,
//!   `count` start there) — straight to `Firing` when `D` is 0;
//! - in `Pending` every matching sample updates the values; a non-matching one returns to `Idle`;
//!   the first matching sample at least `D` after `since` fires (sample-based, like the rule
//!   semantics documented in the README);
//! - in `Firing` the clear condition must hold on every sample for its duration; the sample that
//!   completes it resolves the alert and returns to `Idle`.

use std::sync::Arc;

use super::alert::AlertStatus;
use super::condition::{Comparison, Condition};
use super::rule::ThresholdRule;
use crate::detector::expression::parse_expression;
use crate::detector::model::{Action, DetectorModel, EvaluationMethod, Event, State};

/// Input name compiled rules read.
pub const RULE_INPUT: &str = "Rule";

/// The comparison of `condition` on the current sample, as an expression.
fn test(condition: &Condition) -> String {
    format!(
        "$input.{RULE_INPUT}.`{}` {} {:?}",
        condition.signal,
        condition.comparison.symbol(),
        condition.threshold
    )
}

/// The clear condition: `clear_when`, or `when`'s comparison negated with no duration.
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

/// Compiles `rule`; fails only for a signal name the expression language cannot quote.
pub fn compile_rule(rule: &ThresholdRule) -> Result<DetectorModel, String> {
    if rule.when.signal.contains('`') {
        return Err(format!(
            "signal name {:?} cannot contain a backtick",
            rule.when.signal
        ));
    }
    let expression = |text: String| {
        parse_expression(&text).map_err(|err| format!("rule {:?}: {err}", rule.name))
    };
    let sample = format!("$input.{RULE_INPUT}.`{}`", rule.when.signal);
    let now = format!("$input.{RULE_INPUT}.ts");
    let present = format!("isNumeric({sample})");
    let when = format!("{present} && {}", test(&rule.when));
    let clear = clear_condition(rule);
    let clearing = format!("{present} && {}", test(&clear));
    let shared = Arc::new(rule.clone());
    let set = |name: &str, value: String| -> Result<Action, String> {
        Ok(Action::SetVariable {
            name: name.to_owned(),
            value: expression(value)?,
        })
    };
    let alert = |status: AlertStatus| Action::RuleAlert {
        rule: Arc::clone(&shared),
        status,
    };
    let event = |name: &str,
                 condition: String,
                 actions: Vec<Action>,
                 next: Option<usize>|
     -> Result<Event, String> {
        Ok(Event {
            name: name.to_owned(),
            condition: Some(expression(condition)?),
            actions,
            next_state: next,
        })
    };
    const IDLE: usize = 0;
    const PENDING: usize = 1;
    const FIRING: usize = 2;
    let mut start = vec![
        set("since", now.clone())?,
        set("first", sample.clone())?,
        set("min", sample.clone())?,
        set("max", sample.clone())?,
        set("last", sample.clone())?,
        set("count", "1".to_owned())?,
    ];
    let fire = vec![
        set("firedAt", now.clone())?,
        set("clearSince", "-1".to_owned())?,
        alert(AlertStatus::Firing),
    ];
    let immediate = rule.when.for_ms == 0;
    if immediate {
        start.extend(fire.clone());
    }
    let idle = State {
        name: "Idle".to_owned(),
        on_enter: Vec::new(),
        on_input: Vec::new(),
        transitions: vec![event(
            "start",
            when.clone(),
            start,
            Some(if immediate { FIRING } else { PENDING }),
        )?],
        on_exit: Vec::new(),
    };
    let pending = State {
        name: "Pending".to_owned(),
        on_enter: Vec::new(),
        on_input: vec![
            event(
                "track",
                when.clone(),
                vec![
                    set("last", sample.clone())?,
                    set("count", "$variable.count + 1".to_owned())?,
                ],
                None,
            )?,
            event(
                "newMin",
                format!("{when} && {sample} < $variable.min"),
                vec![set("min", sample.clone())?],
                None,
            )?,
            event(
                "newMax",
                format!("{when} && {sample} > $variable.max"),
                vec![set("max", sample.clone())?],
                None,
            )?,
        ],
        transitions: vec![
            event(
                "reset",
                format!("{present} && !({})", test(&rule.when)),
                Vec::new(),
                Some(IDLE),
            )?,
            event(
                "due",
                format!("{when} && {now} - $variable.since >= {}", rule.when.for_ms),
                fire,
                Some(FIRING),
            )?,
        ],
        on_exit: Vec::new(),
    };
    let firing = State {
        name: "Firing".to_owned(),
        on_enter: Vec::new(),
        on_input: vec![
            event(
                "notClearing",
                format!("{present} && !({})", test(&clear)),
                vec![set("clearSince", "-1".to_owned())?],
                None,
            )?,
            event(
                "clearing",
                format!("{clearing} && $variable.clearSince < 0"),
                vec![set("clearSince", now.clone())?],
                None,
            )?,
        ],
        transitions: vec![event(
            "resolved",
            format!(
                "{clearing} && {now} - $variable.clearSince >= {}",
                clear.for_ms
            ),
            vec![alert(AlertStatus::Resolved)],
            Some(IDLE),
        )?],
        on_exit: Vec::new(),
    };
    Ok(DetectorModel {
        name: format!("rule:{}", rule.name),
        evaluation: EvaluationMethod::Serial,
        key: None,
        states: vec![idle, pending, firing],
        initial: IDLE,
    })
}
