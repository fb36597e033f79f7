//! The over-pressure motor example of the AWS IoT Events developer guide ("Simple step-by-step
//! example"), fixture written from its documented JSON structure: one message at 80, then three
//! at 60. The guide says the detector enters `Dangerous` at once and sends the warning with
//! `pressureThresholdBreached = 3`, and after the third low reading returns to `Normal`, sending
//! the all-clear from `Dangerous` with `pressureThresholdBreached = 0` (BATCH evaluation).

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::sync::Arc;

use models::detector::{bind_input, load_detector_model, DetectorEngine, DetectorOutput};
use telemetry::{Record, Signal};

const INPUT: &str = r#"{"inputName": "PressureInput", "inputDescription": "Pressure readings from a motor",
  "inputDefinition": {"attributes": [{"jsonPath": "sensorData.pressure"}, {"jsonPath": "motorid"}]}}"#;

fn message(sequence: i64, pressure: f64) -> Arc<Record> {
    Arc::new(Record {
        vehicle_id: "Fulton-A32".into(),
        event_time_ms: 1_558_129_816_000 + sequence * 1000,
        fleet: None,
        attributes: telemetry::Attributes::new(),
        signals: vec![Signal {
            name: "pressure".into(),
            value: pressure,
        }],
    })
}

#[test]
fn motor_over_pressure_example_behaves_as_documented() {
    let (model, report) = load_detector_model(include_str!("motor-detector-model.json"));
    let model = model.unwrap_or_else(|| panic!("{report}"));
    assert!(
        report.skipped_actions.is_empty() && report.errors.is_empty(),
        "{report}"
    );
    let input = bind_input(
        INPUT,
        [
            ("sensorData.pressure".to_owned(), "pressure".to_owned()),
            ("motorid".to_owned(), "vehicle_id".to_owned()),
        ]
        .into(),
    )
    .unwrap();
    let mut engine = DetectorEngine::new(model, "PressureInput").with_input(input);

    let mut outputs = Vec::new();
    for (sequence, pressure) in [(1, 80.0), (2, 60.0), (3, 60.0), (4, 60.0)] {
        engine.offer_shared(message(sequence, pressure));
        let step = engine.advance_watermark(message(sequence, pressure).event_time_ms + 1);
        let state = engine.state_of("Fulton-A32").unwrap().to_owned();
        outputs.push((sequence, state, step));
    }
    let states: Vec<(i64, &str)> = outputs
        .iter()
        .map(|(s, state, _)| (*s, state.as_str()))
        .collect();
    assert_eq!(
        states,
        vec![
            (1, "Dangerous"),
            (2, "Dangerous"),
            (3, "Dangerous"),
            (4, "Normal")
        ]
    );

    let notifications: Vec<(i64, serde_json::Value, String)> = outputs
        .iter()
        .flat_map(|(sequence, _, step)| {
            step.iter().filter_map(move |output| match output {
                DetectorOutput::Notification {
                    payload, target, ..
                } => Some((
                    *sequence,
                    serde_json::from_str(payload).unwrap(),
                    target.clone(),
                )),
                DetectorOutput::StateChange { .. } | DetectorOutput::Alert(_) => None,
            })
        })
        .collect();
    assert_eq!(notifications.len(), 2, "{notifications:?}");
    let (first_at, warning, warning_target) = &notifications[0];
    assert_eq!(*first_at, 1);
    assert!(warning_target.ends_with("underPressureAction"));
    assert_eq!(warning["eventName"], "Pressure Threshold Breached");
    assert_eq!(warning["payload"]["state"]["stateName"], "Dangerous");
    assert_eq!(
        warning["payload"]["state"]["variables"]["pressureThresholdBreached"],
        3
    );
    assert_eq!(warning["payload"]["detector"]["keyValue"], "Fulton-A32");
    assert_eq!(
        warning["payload"]["eventTriggerDetails"]["triggerType"],
        "Message"
    );
    let (cleared_at, cleared, cleared_target) = &notifications[1];
    assert_eq!(*cleared_at, 4, "after three consecutive low readings");
    assert!(cleared_target.ends_with("pressureClearedAction"));
    assert_eq!(cleared["eventName"], "Normal Pressure Restored");
    assert_eq!(cleared["payload"]["state"]["stateName"], "Dangerous");
    assert_eq!(
        cleared["payload"]["state"]["variables"]["pressureThresholdBreached"],
        0
    );
}
