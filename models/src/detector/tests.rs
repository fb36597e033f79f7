//! Detector models over scripted inputs: golden state sequences, BATCH vs SERIAL, event-time
//! timers under disorder, the validation report, snapshot/restore.

use compact_str::CompactString;
use proptest::prelude::*;
use telemetry::{Record, Signal};

use super::*;

/// Coolant over 110 °C for 2 minutes while moving → alarm (SNS); then it must stay under 95 °C
/// for 5 minutes before the alarm clears. Written in the `describe-detector-model` shape.
const COOLANT_MODEL: &str = include_str!("../../../config/detectors/coolant.json");

fn record(vehicle: &str, time_ms: i64, coolant: f64) -> Record {
    Record {
        vehicle_id: CompactString::from(vehicle),
        event_time_ms: time_ms,
        fleet: None,
        attributes: telemetry::Attributes::new(),
        signals: vec![
            Signal {
                name: "coolant_temp_c".into(),
                value: coolant,
            },
            Signal {
                name: "speed_kmh".into(),
                value: 50.0,
            },
        ],
    }
}

/// Ten-second samples: hot for 3 minutes, warm for a minute, cool for 6 minutes.
fn script(vehicle: &str) -> Vec<Record> {
    (0..60)
        .map(|i| {
            let coolant = match i {
                0..=17 => 112.0 + (i % 3) as f64,
                18..=23 => 100.0,
                _ => 90.0,
            };
            record(vehicle, i * 10_000, coolant)
        })
        .collect()
}

fn transitions(outputs: &[DetectorOutput]) -> Vec<(String, String, i64, String)> {
    outputs
        .iter()
        .filter_map(|output| match output {
            DetectorOutput::StateChange {
                from,
                to,
                time_ms,
                trigger,
                ..
            } => Some((from.clone(), to.clone(), *time_ms, trigger.clone())),
            DetectorOutput::Notification { .. } | DetectorOutput::Alert(_) => None,
        })
        .collect()
}

fn coolant_engine() -> DetectorEngine {
    let (model, report) = load_detector_model(COOLANT_MODEL);
    DetectorEngine::new(model.unwrap_or_else(|| panic!("{report}")), "Telemetry")
}

#[test]
fn golden_state_sequence_with_event_time_timers() {
    let mut engine = coolant_engine();
    for record in script("veh-1") {
        engine.offer(&record);
    }
    let outputs = engine.advance_watermark(i64::MAX);
    let expected = vec![
        ("Normal".into(), "Overheating".into(), 0, "message".into()),
        (
            "Overheating".into(),
            "Alarm".into(),
            120_000,
            "timer:hot".into(),
        ),
        ("Alarm".into(), "Cooling".into(), 240_000, "message".into()),
        (
            "Cooling".into(),
            "Normal".into(),
            540_000,
            "timer:cool".into(),
        ),
    ];
    assert_eq!(transitions(&outputs), expected);
    let notification = outputs
        .iter()
        .find_map(|output| match output {
            DetectorOutput::Notification {
                payload,
                kind,
                time_ms,
                ..
            } => Some((payload.clone(), kind.clone(), *time_ms)),
            DetectorOutput::StateChange { .. } | DetectorOutput::Alert(_) => None,
        })
        .expect("the alarm pages");
    assert_eq!(
        notification,
        ("coolant alarm, peak 114".into(), "sns".into(), 120_000)
    );
    assert_eq!(engine.state_of("veh-1"), Some("Normal"));
}

#[test]
fn processing_time_timers_follow_the_wall_clock() {
    let mut engine = coolant_engine().with_timer_clock(TimerClock::Processing);
    engine.set_processing_time(1_000_000);
    engine.offer(&record("veh-1", 0, 120.0));
    engine.advance_watermark(1);
    assert_eq!(engine.state_of("veh-1"), Some("Overheating"));
    engine.offer(&record("veh-1", 500_000, 120.0));
    engine.set_processing_time(1_100_000);
    engine.advance_watermark(500_001);
    assert_eq!(
        engine.state_of("veh-1"),
        Some("Overheating"),
        "100 s of wall clock: not yet"
    );
    engine.set_processing_time(1_120_000);
    let outputs = engine.advance_watermark(500_001);
    assert_eq!(engine.state_of("veh-1"), Some("Alarm"));
    assert_eq!(
        transitions(&outputs)[0].2,
        1_120_000,
        "stamped with the wall clock"
    );
}

#[test]
fn validation_report_lists_actions_that_will_not_run() {
    let (model, report) = load_detector_model(COOLANT_MODEL);
    assert!(model.is_some());
    assert!(report.errors.is_empty(), "{report}");
    assert_eq!(report.skipped_actions.len(), 1);
    assert!(report.skipped_actions[0].contains("`lambda`"), "{report}");
    assert!(report.to_string().contains("will not run"));

    let broken = COOLANT_MODEL
        .replace(
            "\"nextState\": \"Alarm\"}]}}",
            "\"nextState\": \"Nowhere\"}]}}",
        )
        .replace("timeout('hot')", "timeout('hot'");
    let (model, report) = load_detector_model(&broken);
    assert!(model.is_none());
    assert_eq!(report.errors.len(), 2, "{report}");
}

const ORDER_MODEL: &str = r#"{
  "detectorModelName": "Order", "evaluationMethod": "EVALUATION",
  "detectorModelDefinition": {"initialStateName": "A", "states": [
    {"stateName": "A", "onInput": {
      "events": [
        {"eventName": "first", "actions": [{"setVariable": {"variableName": "x", "value": "1"}}]},
        {"eventName": "second", "condition": "$variable.x == 1",
         "actions": [{"setVariable": {"variableName": "y", "value": "'seen'"}}]}],
      "transitionEvents": [{"eventName": "go", "condition": "$variable.y == 'seen'", "nextState": "B"}]}},
    {"stateName": "B"}]}
}"#;

fn steps_until_b(method: &str) -> usize {
    let (model, report) = load_detector_model(&ORDER_MODEL.replace("EVALUATION", method));
    let mut engine = DetectorEngine::new(model.unwrap_or_else(|| panic!("{report}")), "Telemetry");
    for step in 1..=5 {
        engine.offer(&record("v", step * 1000, 1.0));
        engine.advance_watermark(step * 1000 + 1);
        if engine.state_of("v") == Some("B") {
            return step as usize;
        }
    }
    usize::MAX
}

#[test]
fn a_file_that_is_not_json_is_reported_as_such_by_both_loaders() {
    let (model, report) = load_detector_model("{ not json");
    assert!(model.is_none());
    assert_eq!(report.errors.len(), 1);
    assert!(report.errors[0].starts_with("not valid JSON: "), "{report}");
    let (alarm, report) = load_alarm_model("[1,");
    assert!(alarm.is_none());
    assert!(report.errors[0].starts_with("not valid JSON: "), "{report}");
}

#[test]
fn batch_and_serial_differ_as_documented() {
    assert_eq!(
        steps_until_b("SERIAL"),
        1,
        "each event sees the updates before it"
    );
    assert_eq!(
        steps_until_b("BATCH"),
        3,
        "updates become visible to the next input only"
    );
}

proptest! {
    #[test]
    fn disorder_and_restore_do_not_change_the_outcome(
        swaps in proptest::collection::vec((0usize..120, 0usize..120), 0..30),
        cut in 0usize..120,
    ) {
        let mut records: Vec<Record> = script("veh-1");
        records.extend(script("veh-2").into_iter().map(|mut r| { r.event_time_ms += 3_000; r }));
        records.sort_by_key(|r| r.event_time_ms);
        let mut straight = coolant_engine();
        let mut expected = Vec::new();
        for record in &records {
            straight.offer(record);
        }
        expected.extend(straight.advance_watermark(i64::MAX));

        // Disorder: swap arrivals, but never by more than the 30 s the watermark trails.
        let mut arrivals = records.clone();
        for (a, b) in swaps {
            let (a, b) = (a % arrivals.len(), b % arrivals.len());
            if (arrivals[a].event_time_ms - arrivals[b].event_time_ms).abs() <= 20_000 {
                arrivals.swap(a, b);
            }
        }
        let cut = cut.min(arrivals.len());
        let mut engine = coolant_engine();
        let mut actual = Vec::new();
        let mut max_seen = i64::MIN;
        for record in &arrivals[..cut] {
            engine.offer(record);
            max_seen = max_seen.max(record.event_time_ms);
            actual.extend(engine.advance_watermark(max_seen - 30_000));
        }
        let bytes = postcard::to_stdvec(&engine.snapshot()).unwrap();
        let mut restored = coolant_engine();
        restored.restore(postcard::from_bytes(&bytes).unwrap());
        for record in &arrivals[cut..] {
            restored.offer(record);
            max_seen = max_seen.max(record.event_time_ms);
            actual.extend(restored.advance_watermark(max_seen - 30_000));
        }
        actual.extend(restored.advance_watermark(i64::MAX));
        prop_assert_eq!(actual, expected);
    }
}

/// Two inputs: a seed input sets the limit, a reading above it goes to `Hot`.
const THERMOSTAT: &str = include_str!("../../tests/thermostat-detector-model.json");

fn reading(time_ms: i64, name: &str, value: f64) -> Record {
    Record {
        vehicle_id: "bus-1".into(),
        event_time_ms: time_ms,
        fleet: None,
        attributes: telemetry::Attributes::new(),
        signals: vec![Signal {
            name: name.into(),
            value,
        }],
    }
}

#[test]
fn a_model_can_read_several_inputs() {
    use super::input::InputBinding;
    let (model, report) = load_detector_model(THERMOSTAT);
    let binding = |name: &str, path: &str, field: &str| InputBinding {
        name: name.to_owned(),
        mapping: [(path.to_owned(), field.to_owned())].into(),
    };
    let mut engine = DetectorEngine::new(model.unwrap_or_else(|| panic!("{report}")), "unused")
        .with_inputs(vec![
            binding("SeedInput", "config.limit", "limit_c"),
            binding("TempInput", "reading.value", "cabin_temp_c"),
        ]);
    for record in [
        reading(0, "limit_c", 25.0),
        reading(1000, "cabin_temp_c", 24.0),
        reading(2000, "speed_kmh", 50.0),
    ] {
        engine.offer(&record);
    }
    engine.advance_watermark(2001);
    assert_eq!(
        engine.state_of("bus-1"),
        Some("Idle"),
        "24 < 25; a record of neither input is ignored"
    );
    engine.offer(&reading(3000, "cabin_temp_c", 26.0));
    let outputs = engine.advance_watermark(3001);
    assert_eq!(engine.state_of("bus-1"), Some("Hot"));
    assert_eq!(
        transitions(&outputs),
        vec![("Idle".into(), "Hot".into(), 3000, "message".into())]
    );
}
