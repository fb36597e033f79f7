//! The HVAC area-temperature example of the AWS IoT Events developer guide
//! (`areaDetectorModel` with `seedTemperatureInput` and `temperatureInput`), fixture written by
//! us after the guide's documented structure: a `start` state that waits for the seed message,
//! `idle` that keeps a running average of the area's readings, ignores anomalous spikes (reporting
//! them) and switches to `cooling` / `heating` when the average leaves the allowed band, and
//! `cooling` / `heating` states that hold for a delay timer before they may return to `idle`.
//! Timers run on event time. The `lambda` and `iotTopicPublish` actions cannot run here and must
//! appear in the validation report; the state sequence and the SNS notifications are golden.

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::sync::Arc;

use models::detector::{bind_input, load_detector_model, DetectorEngine, DetectorOutput};
use telemetry::{Record, Signal};

const SEED_INPUT: &str = r#"{"inputName": "seedTemperatureInput", "inputDescription": "Temperature seed values.",
  "inputDefinition": {"attributes": [{"jsonPath": "areaId"}, {"jsonPath": "desiredTemperature"},
    {"jsonPath": "allowedError"}, {"jsonPath": "rangeHigh"}, {"jsonPath": "rangeLow"},
    {"jsonPath": "anomalousHigh"}, {"jsonPath": "anomalousLow"}, {"jsonPath": "sensorCount"},
    {"jsonPath": "noDelay"}]}}"#;

const TEMPERATURE_INPUT: &str = r#"{"inputName": "temperatureInput", "inputDescription": "Temperature sensor unit data.",
  "inputDefinition": {"attributes": [{"jsonPath": "sensorId"}, {"jsonPath": "areaId"},
    {"jsonPath": "sensorData.temperature"}]}}"#;

const AREA: &str = "Area51";
const START_MS: i64 = 1_557_519_700_000;

fn at(second: i64) -> i64 {
    START_MS + second * 1000
}

fn record(second: i64, attributes: &[(&str, &str)], signals: &[(&str, f64)]) -> Arc<Record> {
    Arc::new(Record {
        vehicle_id: AREA.into(),
        event_time_ms: at(second),
        fleet: None,
        attributes: attributes
            .iter()
            .map(|(name, value)| ((*name).into(), (*value).into()))
            .collect::<Vec<_>>()
            .into(),
        signals: signals
            .iter()
            .map(|(name, value)| Signal::new(name, *value))
            .collect(),
    })
}

fn seed(second: i64) -> Arc<Record> {
    record(
        second,
        &[],
        &[
            ("desired_c", 20.0),
            ("allowed_error_c", 0.7),
            ("range_high_c", 30.0),
            ("range_low_c", 15.0),
            ("anomalous_high_c", 60.0),
            ("anomalous_low_c", 0.0),
            ("sensor_count", 2.0),
            ("no_delay", 0.0),
        ],
    )
}

fn reading(second: i64, sensor: &str, temperature: f64) -> Arc<Record> {
    record(
        second,
        &[("sensor_id", sensor)],
        &[("temperature_c", temperature)],
    )
}

fn engine() -> DetectorEngine {
    let (model, report) = load_detector_model(include_str!("hvac-area-detector-model.json"));
    let model = model.unwrap_or_else(|| panic!("{report}"));
    assert!(report.errors.is_empty(), "{report}");
    let skipped = report.to_string();
    assert_eq!(
        report.skipped_actions.len(),
        6,
        "two lambda and four iotTopicPublish actions: {skipped}"
    );
    assert!(skipped.contains("lambda") && skipped.contains("iotTopicPublish"));
    let seed_binding = bind_input(
        SEED_INPUT,
        [
            ("areaId", "vehicle_id"),
            ("desiredTemperature", "desired_c"),
            ("allowedError", "allowed_error_c"),
            ("rangeHigh", "range_high_c"),
            ("rangeLow", "range_low_c"),
            ("anomalousHigh", "anomalous_high_c"),
            ("anomalousLow", "anomalous_low_c"),
            ("sensorCount", "sensor_count"),
            ("noDelay", "no_delay"),
        ]
        .into_iter()
        .map(|(path, field)| (path.to_owned(), field.to_owned()))
        .collect(),
    )
    .unwrap();
    let temperature_binding = bind_input(
        TEMPERATURE_INPUT,
        [
            ("areaId", "vehicle_id"),
            ("sensorId", "sensor_id"),
            ("sensorData.temperature", "temperature_c"),
        ]
        .into_iter()
        .map(|(path, field)| (path.to_owned(), field.to_owned()))
        .collect(),
    )
    .unwrap();
    DetectorEngine::new(model, "temperatureInput")
        .with_inputs(vec![seed_binding, temperature_binding])
}

/// One scripted step: a message (or only a watermark advance for a timer) and what to expect.
struct Step {
    message: Option<Arc<Record>>,
    watermark_second: i64,
    state: &'static str,
}

fn step(message: Arc<Record>, state: &'static str) -> Step {
    let second = (message.event_time_ms - START_MS) / 1000;
    Step {
        message: Some(message),
        watermark_second: second,
        state,
    }
}

#[test]
fn hvac_area_example_runs_the_documented_control_loop() {
    let mut engine = engine();
    let script = vec![
        // A reading before the seed creates the instance but it waits in `start`.
        step(reading(0, "01", 22.0), "start"),
        step(seed(10), "idle"),
        // (20 + 21) / 2 = 20.5, inside 20 ± 0.7.
        step(reading(20, "01", 21.0), "idle"),
        // 75 is above anomalousHigh: reported as a spike, not averaged.
        step(reading(30, "02", 75.0), "idle"),
        // (20.5 + 22) / 2 = 21.25 > 20.7: cooling on, delay timer of 120 s set at 40 s.
        step(reading(40, "01", 22.0), "cooling"),
        // 19.625, then 18.8125 (≤ 19.3) — but the delay has not run out.
        step(reading(50, "02", 18.0), "cooling"),
        step(reading(60, "01", 18.0), "cooling"),
        // The timer expires at 160 s: goodToGo, still cooling.
        Step {
            message: None,
            watermark_second: 165,
            state: "cooling",
        },
        // (18.8125 + 19) / 2 = 18.90625 ≤ 19.3 and goodToGo: back to idle.
        step(reading(170, "02", 19.0), "idle"),
        // (18.90625 + 15) / 2 = 16.953125 < 19.3: heating on.
        step(reading(180, "01", 15.0), "heating"),
    ];

    let mut states = Vec::new();
    let mut notifications = Vec::new();
    for (index, scripted) in script.iter().enumerate() {
        if let Some(message) = &scripted.message {
            engine.offer_shared(Arc::clone(message));
        }
        for output in engine.advance_watermark(at(scripted.watermark_second) + 1) {
            if let DetectorOutput::Notification {
                payload, target, ..
            } = output
            {
                let payload: serde_json::Value = serde_json::from_str(&payload).unwrap();
                notifications.push((index, target, payload));
            }
        }
        states.push(engine.state_of(AREA).unwrap().to_owned());
    }
    let expected: Vec<&str> = script.iter().map(|s| s.state).collect();
    assert_eq!(states, expected);

    let summary: Vec<(usize, String, String, String)> = notifications
        .iter()
        .map(|(index, target, payload)| {
            (
                *index,
                target.rsplit(':').next().unwrap().to_owned(),
                payload["eventName"].as_str().unwrap().to_owned(),
                payload["payload"]["state"]["stateName"]
                    .as_str()
                    .unwrap()
                    .to_owned(),
            )
        })
        .collect();
    let expected_notifications: Vec<(usize, String, String, String)> = [
        (3, "temperatureSpike", "highTemperatureSpike", "idle"),
        (4, "Cooling-On", "highTemperatureThreshold", "idle"),
        (8, "hvac-Cooling-Off", "returnToNormal", "cooling"),
        (9, "Heating-On", "lowTemperatureThreshold", "idle"),
    ]
    .into_iter()
    .map(|(i, t, e, s)| (i, t.to_owned(), e.to_owned(), s.to_owned()))
    .collect();
    assert_eq!(summary, expected_notifications);

    let cooling_on = &notifications[1].2["payload"];
    assert_eq!(cooling_on["detector"]["keyValue"], AREA);
    assert_eq!(cooling_on["state"]["variables"]["desiredTemperature"], 20.0);
    // BATCH: conditions saw the old variables, but actions run after the message's variable
    // updates, so the payload carries this reading and the new average.
    assert_eq!(
        cooling_on["state"]["variables"]["reportedTemperature"],
        22.0
    );
    assert_eq!(
        cooling_on["state"]["variables"]["averageTemperature"],
        21.25
    );
}

#[test]
fn a_seed_in_idle_changes_the_set_point() {
    let mut engine = engine();
    for message in [seed(0), reading(10, "01", 20.0)] {
        engine.offer_shared(message);
    }
    engine.advance_watermark(at(10) + 1);
    assert_eq!(engine.state_of(AREA), Some("idle"));
    // The area now wants 25 °C: a reading of 21 pulls the average to 20.5 — well under 24.3.
    let mut raised = (*seed(20)).clone();
    for signal in &mut raised.signals {
        if signal.name == "desired_c" {
            signal.value = 25.0;
        }
    }
    engine.offer_shared(Arc::new(raised));
    engine.offer_shared(reading(30, "02", 21.0));
    engine.advance_watermark(at(30) + 1);
    assert_eq!(engine.state_of(AREA), Some("heating"));
}
