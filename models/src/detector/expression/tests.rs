//! Conformance cases from the IoT Events developer guide and robustness properties.

use std::collections::HashMap;

use proptest::prelude::*;

use super::*;

/// A context with one JSON input message, some variables and expired timers.
struct TestContext {
    input: (String, serde_json::Value),
    variables: HashMap<String, Value>,
    expired: Vec<String>,
    trigger: TriggerType,
}

impl TestContext {
    fn new(input: &str, message: serde_json::Value) -> Self {
        Self {
            input: (input.to_owned(), message),
            variables: HashMap::new(),
            expired: Vec::new(),
            trigger: TriggerType::Message,
        }
    }
}

impl Context for TestContext {
    fn input(&self, input: &str, path: &[PathSegment]) -> Value {
        if input != self.input.0 {
            return Value::Undefined;
        }
        let mut at = &self.input.1;
        for segment in path {
            let next = match segment {
                PathSegment::Field(name) => at.get(name),
                PathSegment::Index(index) => at.get(*index),
            };
            match next {
                Some(value) => at = value,
                None => return Value::Undefined,
            }
        }
        Value::from_json(at)
    }
    fn variable(&self, name: &str) -> Value {
        self.variables
            .get(name)
            .cloned()
            .unwrap_or(Value::Undefined)
    }
    fn timeout(&self, name: &str) -> bool {
        self.expired.iter().any(|timer| timer == name)
    }
    fn trigger_type(&self) -> TriggerType {
        self.trigger
    }
    fn current_input(&self) -> Option<&str> {
        Some(&self.input.0)
    }
}

fn eval_with(text: &str, context: &TestContext) -> Value {
    let expr = parse_expression(text).unwrap_or_else(|err| panic!("{text}: {err}"));
    assert!(check(&expr).is_empty(), "{text}: {:?}", check(&expr));
    evaluate(&expr, context)
}

fn eval(text: &str) -> Value {
    eval_with(text, &TestContext::new("none", serde_json::json!({})))
}

#[test]
fn documented_bitwise_examples() {
    assert_eq!(eval("13 | 5"), Value::Integer(13));
    assert_eq!(eval("13 & 5"), Value::Integer(5));
    assert_eq!(eval("13 ^ 5"), Value::Integer(8));
    assert_eq!(eval("~13"), Value::Integer(-14));
    assert_eq!(eval("bitor(13, 5)"), Value::Integer(13));
    assert_eq!(eval("bitnot(13)"), Value::Integer(-14));
}

#[test]
fn arithmetic_integer_and_decimal_rules() {
    assert_eq!(eval("7 / 2"), Value::Integer(3));
    assert_eq!(eval("-7 / 2"), Value::Integer(-3));
    assert_eq!(eval("7.0 / 2"), Value::Decimal(3.5));
    assert_eq!(eval("7 / 2.0"), Value::Decimal(3.5));
    assert_eq!(eval("1 + 2 * 3"), Value::Integer(7));
    assert_eq!(eval("(1 + 2) * 3"), Value::Integer(9));
    assert_eq!(eval("1 / 0"), Value::Undefined);
    assert_eq!(
        eval("9223372036854775807 + 1"),
        Value::Decimal(9_223_372_036_854_775_808.0)
    );
    assert_eq!(eval("1.5e1 - 5"), Value::Decimal(10.0));
}

#[test]
fn strings_concatenate_only_with_strings() {
    assert_eq!(eval("'my' + 'string'"), Value::String("mystring".into()));
    assert_eq!(eval("'a' + 1"), Value::Undefined);
    assert_eq!(eval("'abc' < 'abd'"), Value::Boolean(true));
    assert_eq!(eval("startsWith('coolant', 'cool')"), Value::Boolean(true));
    assert_eq!(eval("endsWith('coolant', 'ant')"), Value::Boolean(true));
    assert_eq!(eval("contains('coolant', 'ola')"), Value::Boolean(true));
}

#[test]
fn null_versus_undefined() {
    let context = TestContext::new("input", serde_json::json!({"a": null, "b": 1}));
    assert_eq!(
        eval_with("isNull($input.input.a)", &context),
        Value::Boolean(true)
    );
    assert_eq!(
        eval_with("isUndefined($input.input.a)", &context),
        Value::Boolean(false)
    );
    assert_eq!(
        eval_with("isUndefined($input.input.c)", &context),
        Value::Boolean(true)
    );
    assert_eq!(
        eval_with("isNull($input.input.c)", &context),
        Value::Boolean(false)
    );
    assert_eq!(
        eval_with("isNumeric($input.input.b)", &context),
        Value::Boolean(true)
    );
}

#[test]
fn undefined_operands_of_or_count_as_false() {
    let context = TestContext::new("input", serde_json::json!({"t": 120}));
    assert_eq!(
        eval_with("$input.input.missing > 3 || $input.input.t > 100", &context),
        Value::Boolean(true)
    );
    assert_eq!(
        eval_with("$input.input.missing > 3 || false", &context),
        Value::Boolean(false)
    );
    assert_eq!(
        eval_with("$input.input.missing > 3 && true", &context),
        Value::Boolean(false)
    );
    assert_eq!(
        eval_with("$input.input.missing == 3", &context),
        Value::Undefined
    );
}

#[test]
fn references_paths_backticks_and_variables() {
    let mut context = TestContext::new(
        "Vehicle",
        serde_json::json!({"signals": {"speed kmh": 42.5, "temps": [90, 111]}, "id": "veh-1"}),
    );
    context.variables.insert("count".into(), Value::Integer(2));
    assert_eq!(
        eval_with("$input.Vehicle.signals.`speed kmh`", &context),
        Value::Decimal(42.5)
    );
    assert_eq!(
        eval_with("$input.Vehicle.signals.temps[1] > 110", &context),
        Value::Boolean(true)
    );
    assert_eq!(
        eval_with("$variable.count + 1", &context),
        Value::Integer(3)
    );
    assert_eq!(eval_with("$input.Other.id", &context), Value::Undefined);
    assert_eq!(
        eval_with("currentInput('Vehicle')", &context),
        Value::Boolean(true)
    );
}

#[test]
fn functions_timers_and_conversions() {
    let mut context = TestContext::new("input", serde_json::json!({"s": "42"}));
    context.expired.push("cooldown".into());
    context.trigger = TriggerType::Timer;
    assert_eq!(
        eval_with("timeout('cooldown')", &context),
        Value::Boolean(true)
    );
    assert_eq!(
        eval_with("timeout('other')", &context),
        Value::Boolean(false)
    );
    assert_eq!(
        eval_with("triggerType('Timer')", &context),
        Value::Boolean(true)
    );
    assert_eq!(
        eval_with("convert(Integer, $input.input.s) + 1", &context),
        Value::Integer(43)
    );
    assert_eq!(
        eval_with("convert(Decimal, 3)", &context),
        Value::Decimal(3.0)
    );
    assert_eq!(
        eval_with("convert(String, 3.5)", &context),
        Value::String("3.5".into())
    );
    assert_eq!(
        eval_with("convert(Boolean, 'TRUE')", &context),
        Value::Boolean(true)
    );
}

#[test]
fn templates_substitute_expressions() {
    let context = TestContext::new("input", serde_json::json!({"temp": 112, "id": "veh-9"}));
    assert_eq!(
        eval_with(
            "'{\"vehicle\": \"${$input.input.id}\", \"temp\": ${$input.input.temp + 1}}'",
            &context
        ),
        Value::String("{\"vehicle\": \"veh-9\", \"temp\": 113}".into())
    );
}

#[test]
fn parse_errors_point_at_the_problem() {
    let error = parse_expression("$input.x.y > ").unwrap_err();
    assert!(error.to_string().contains("expected a value"), "{error}");
    assert_eq!(error.column, 13);
    let error = parse_expression("1 + (2").unwrap_err();
    assert!(error.message.contains("expected `)`"));
    let error = parse_expression("'open").unwrap_err();
    assert!(error.message.contains("unterminated string"));
    assert_eq!(error.column, 0);
    let deep = "(".repeat(200) + "1" + &")".repeat(200);
    assert!(parse_expression(&deep)
        .unwrap_err()
        .message
        .contains("nested deeper"));
    let expr = parse_expression("nosuch(1) + x").unwrap();
    let problems = check(&expr);
    assert_eq!(problems.len(), 2, "{problems:?}");
}

proptest! {
    #[test]
    fn random_text_never_panics(text in "[ -~]{0,60}") {
        if let Ok(expr) = parse_expression(&text) {
            let _ = evaluate(&expr, &TestContext::new("i", serde_json::json!({"a": 1})));
        }
    }

    #[test]
    fn random_expressions_never_panic(
        atoms in proptest::collection::vec(prop_oneof![
            Just("1".to_owned()), Just("-9223372036854775808".to_owned()), Just("2.5".to_owned()),
            Just("'s'".to_owned()), Just("true".to_owned()), Just("$input.i.a".to_owned()),
            Just("$variable.v".to_owned()), Just("isNull($input.i.z)".to_owned()), Just("0".to_owned()),
        ], 1..8),
        operators in proptest::collection::vec(prop_oneof![
            Just("+"), Just("-"), Just("*"), Just("/"), Just("|"), Just("&"), Just("^"),
            Just("=="), Just("<"), Just("&&"), Just("||"),
        ], 8),
    ) {
        let mut text = atoms[0].clone();
        for (atom, op) in atoms.iter().skip(1).zip(&operators) {
            text = format!("({text}) {op} ~-{atom}");
        }
        let expr = parse_expression(&text).unwrap();
        let _ = evaluate(&expr, &TestContext::new("i", serde_json::json!({"a": 1})));
    }
}
