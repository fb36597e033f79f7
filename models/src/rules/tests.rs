//! Behaviour tests of the rule engine.

use compact_str::CompactString;
use proptest::prelude::*;
use telemetry::{Record, Signal};

use super::*;

fn rule(when: &str, clear: Option<&str>) -> ThresholdRule {
    RuleSpec {
        name: "hot".into(),
        severity: Some(Severity::Critical),
        when: Some(when.into()),
        clear_when: clear.map(str::to_owned),
        rule: None,
    }
    .compile()
    .unwrap()
}

fn record(vehicle: &str, time_ms: i64, value: f64) -> Record {
    Record {
        vehicle_id: CompactString::from(vehicle),
        event_time_ms: time_ms,
        fleet: Some(CompactString::from("f1")),
        attributes: telemetry::Attributes::new(),
        signals: vec![Signal {
            name: CompactString::from("coolant"),
            value,
        }],
    }
}

fn run(engine: &mut RuleEngine, samples: &[(i64, f64)]) -> Vec<Alert> {
    for (time, value) in samples {
        engine.offer(&record("v1", *time, *value));
    }
    engine.advance_watermark(i64::MAX)
}

#[test]
fn fires_only_after_the_duration_and_resolves_on_clear() {
    let mut engine = RuleEngine::new(vec![rule("coolant > 110 for 2m", None)]);
    let samples = [
        (0, 100.0),
        (60_000, 111.0),
        (120_000, 115.0),
        (179_999, 112.0),
        (180_000, 113.0),
        (240_000, 109.0),
    ];
    let alerts = run(&mut engine, &samples);
    assert_eq!(alerts.len(), 2);
    let fired = &alerts[0];
    assert_eq!(fired.status, AlertStatus::Firing);
    assert_eq!(
        (fired.start_time_ms, fired.fired_time_ms),
        (60_000, 180_000)
    );
    assert_eq!(fired.trigger.count, 4);
    assert_eq!(
        (fired.trigger.first, fired.trigger.max, fired.trigger.last),
        (111.0, 115.0, 113.0)
    );
    assert_eq!(fired.fleet.as_deref(), Some("f1"));
    assert!(
        fired.message().contains("coolant > 110 for 2m"),
        "{}",
        fired.message()
    );
    let resolved = &alerts[1];
    assert_eq!(resolved.status, AlertStatus::Resolved);
    assert_eq!(resolved.start_time_ms, 60_000);
    assert_eq!(resolved.end_time_ms, Some(240_000));
    assert_eq!(engine.active_vehicles(), 0, "idle vehicles hold no state");
}

#[test]
fn a_dip_resets_the_pending_duration() {
    let mut engine = RuleEngine::new(vec![rule("coolant > 110 for 2m", None)]);
    let alerts = run(
        &mut engine,
        &[
            (0, 111.0),
            (60_000, 111.0),
            (90_000, 100.0),
            (120_000, 111.0),
            (200_000, 111.0),
        ],
    );
    assert!(alerts.is_empty(), "{alerts:?}");
}

#[test]
fn hysteresis_clear_condition_needs_its_own_duration() {
    let mut engine = RuleEngine::new(vec![rule("coolant > 110", Some("coolant < 95 for 5m"))]);
    let alerts = run(
        &mut engine,
        &[
            (0, 120.0),
            (60_000, 100.0),
            (120_000, 90.0),
            (300_000, 96.0),
            (360_000, 90.0),
            (660_000, 91.0),
        ],
    );
    assert_eq!(alerts.len(), 2);
    assert_eq!(alerts[0].fired_time_ms, 0);
    assert_eq!(alerts[1].end_time_ms, Some(660_000));
}

#[test]
fn nothing_is_evaluated_before_the_watermark() {
    let mut engine = RuleEngine::new(vec![rule("coolant > 110", None)]);
    engine.offer(&record("v1", 1_000, 200.0));
    assert!(engine.advance_watermark(1_000).is_empty());
    assert_eq!(engine.buffered_len(), 1);
    assert_eq!(engine.advance_watermark(1_001).len(), 1);
}

proptest! {
    #[test]
    fn arrival_order_does_not_change_alerts(
        values in proptest::collection::vec(80.0f64..130.0, 5..60),
        swaps in proptest::collection::vec((0usize..60, 0usize..60), 0..20),
        cut in 0usize..60,
    ) {
        let rules = vec![rule("coolant > 110 for 20s", Some("coolant < 100 for 10s"))];
        let samples: Vec<(i64, f64)> = values.iter().enumerate().map(|(i, v)| (i as i64 * 10_000, *v)).collect();
        let expected = run(&mut RuleEngine::new(rules.clone()), &samples);

        let mut shuffled = samples.clone();
        for (a, b) in swaps {
            let (a, b) = (a % shuffled.len(), b % shuffled.len());
            shuffled.swap(a, b);
        }
        let cut = cut.min(shuffled.len());
        let mut first = RuleEngine::new(rules.clone());
        for (time, value) in &shuffled[..cut] {
            first.offer(&record("v1", *time, *value));
        }
        let bytes = postcard::to_stdvec(&first.snapshot()).unwrap();
        let mut restored = RuleEngine::new(rules);
        restored.restore(postcard::from_bytes(&bytes).unwrap());
        for (time, value) in &shuffled[cut..] {
            restored.offer(&record("v1", *time, *value));
        }
        prop_assert_eq!(restored.advance_watermark(i64::MAX), expected);
    }
}
