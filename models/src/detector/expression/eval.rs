//! Evaluation. Never panics: type mismatches, division by zero and missing data evaluate to
//! [`Value::Undefined`], and a condition that is not `true` counts as false.
//!
//! Documented rules implemented here: `+` adds numbers or concatenates two strings; `/` of two
//! integers is an integer (truncated toward zero), a decimal otherwise; integer overflow promotes
//! to decimal; bitwise operators need integers; an undefined operand of `||` or `&&` counts as
//! false; `==` between different types is false (`!=` true), and anything compared with undefined
//! is undefined.

use super::ast::{BinaryOp, Expr, PathSegment, TemplatePart, UnaryOp};
use super::value::Value;

/// What started an evaluation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TriggerType {
    /// An input message.
    Message,
    /// A timer expiry.
    Timer,
}

/// The world an expression reads: the current input, variables and timers.
pub trait Context {
    /// The value at `path` in input `input`; undefined when that input is not the current one
    /// or the path is missing.
    fn input(&self, input: &str, path: &[PathSegment]) -> Value;
    /// The value of variable `name` (undefined when never set).
    fn variable(&self, name: &str) -> Value;
    /// True when timer `name` has expired and not been consumed yet.
    fn timeout(&self, name: &str) -> bool;
    /// Message or timer.
    fn trigger_type(&self) -> TriggerType;
    /// Name of the input being processed, if any.
    fn current_input(&self) -> Option<&str>;
}

/// Functions the language knows, with their arity.
pub const FUNCTIONS: &[(&str, usize)] = &[
    ("timeout", 1),
    ("convert", 2),
    ("isNull", 1),
    ("isUndefined", 1),
    ("isNumeric", 1),
    ("isString", 1),
    ("isBoolean", 1),
    ("triggerType", 1),
    ("currentInput", 1),
    ("startsWith", 2),
    ("endsWith", 2),
    ("contains", 2),
    ("bitor", 2),
    ("bitand", 2),
    ("bitxor", 2),
    ("bitnot", 1),
];

/// Problems a parsed expression would hit at run time (unknown functions, wrong arity, bare
/// names outside `convert`), for load-time validation.
pub fn check(expr: &Expr) -> Vec<String> {
    let mut problems = Vec::new();
    walk(expr, &mut problems, false);
    problems
}

fn walk(expr: &Expr, problems: &mut Vec<String>, type_position: bool) {
    match expr {
        Expr::Call(name, arguments) => {
            match FUNCTIONS.iter().find(|(known, _)| known == name) {
                None => problems.push(format!("unknown function `{name}`")),
                Some((_, arity)) if *arity != arguments.len() => problems.push(format!(
                    "`{name}` takes {arity} argument(s), got {}",
                    arguments.len()
                )),
                Some(_) => {}
            }
            for (index, argument) in arguments.iter().enumerate() {
                walk(argument, problems, name == "convert" && index == 0);
            }
        }
        Expr::Name(name) if !type_position => {
            problems.push(format!(
                "bare name `{name}` (references start with $input. or $variable.)"
            ));
        }
        Expr::Unary(_, operand) => walk(operand, problems, false),
        Expr::Binary(_, left, right) => {
            walk(left, problems, false);
            walk(right, problems, false);
        }
        Expr::Template(parts) => {
            for part in parts {
                if let TemplatePart::Expr(inner) = part {
                    walk(inner, problems, false);
                }
            }
        }
        _ => {}
    }
}

/// Evaluates `expr` in `context`.
pub fn evaluate(expr: &Expr, context: &dyn Context) -> Value {
    match expr {
        Expr::Literal(value) => value.clone(),
        Expr::Template(parts) => {
            let mut text = String::new();
            for part in parts {
                match part {
                    TemplatePart::Text(literal) => text.push_str(literal),
                    TemplatePart::Expr(inner) => {
                        text.push_str(&evaluate(inner, context).to_string())
                    }
                }
            }
            Value::String(text)
        }
        Expr::Input { input, path } => context.input(input, path),
        Expr::Variable(name) => context.variable(name),
        Expr::Name(name) => Value::String(name.clone()),
        Expr::Unary(op, operand) => unary(*op, evaluate(operand, context)),
        Expr::Binary(BinaryOp::Or, left, right) => {
            if evaluate(left, context).is_true() {
                return Value::Boolean(true);
            }
            Value::Boolean(evaluate(right, context).is_true())
        }
        Expr::Binary(BinaryOp::And, left, right) => {
            if !evaluate(left, context).is_true() {
                return Value::Boolean(false);
            }
            Value::Boolean(evaluate(right, context).is_true())
        }
        Expr::Binary(op, left, right) => {
            binary(*op, evaluate(left, context), evaluate(right, context))
        }
        Expr::Call(name, arguments) => call(name, arguments, context),
    }
}

fn unary(op: UnaryOp, value: Value) -> Value {
    match (op, value) {
        (UnaryOp::Not, Value::Boolean(b)) => Value::Boolean(!b),
        (UnaryOp::BitNot, Value::Integer(i)) => Value::Integer(!i),
        (UnaryOp::Negate, Value::Integer(i)) => i
            .checked_neg()
            .map_or(Value::Decimal(-(i as f64)), Value::Integer),
        (UnaryOp::Negate, Value::Decimal(d)) => Value::Decimal(-d),
        _ => Value::Undefined,
    }
}

fn integer_op(
    a: i64,
    b: i64,
    checked: fn(i64, i64) -> Option<i64>,
    float: fn(f64, f64) -> f64,
) -> Value {
    checked(a, b).map_or_else(|| Value::Decimal(float(a as f64, b as f64)), Value::Integer)
}

fn decimal(value: f64) -> Value {
    if value.is_finite() {
        Value::Decimal(value)
    } else {
        Value::Undefined
    }
}

fn binary(op: BinaryOp, left: Value, right: Value) -> Value {
    use BinaryOp::*;
    use Value::{Boolean, Integer};
    if matches!(left, Value::Undefined) || matches!(right, Value::Undefined) {
        return Value::Undefined;
    }
    match op {
        BitOr | BitXor | BitAnd => match (left, right) {
            (Integer(a), Integer(b)) => Integer(match op {
                BitOr => a | b,
                BitXor => a ^ b,
                _ => a & b,
            }),
            _ => Value::Undefined,
        },
        Equal | NotEqual => {
            let equal = match (&left, &right) {
                (Integer(a), Integer(b)) => a == b,
                (a, b) if a.as_f64().is_some() && b.as_f64().is_some() => a.as_f64() == b.as_f64(),
                (a, b) => a == b,
            };
            Boolean(if op == Equal { equal } else { !equal })
        }
        Less | LessOrEqual | Greater | GreaterOrEqual => {
            let ordering = match (&left, &right) {
                (Integer(a), Integer(b)) => Some(a.cmp(b)),
                (Value::String(a), Value::String(b)) => Some(a.cmp(b)),
                (a, b) => match (a.as_f64(), b.as_f64()) {
                    (Some(x), Some(y)) => x.partial_cmp(&y),
                    _ => None,
                },
            };
            let Some(ordering) = ordering else {
                return Value::Undefined;
            };
            Boolean(match op {
                Less => ordering.is_lt(),
                LessOrEqual => ordering.is_le(),
                Greater => ordering.is_gt(),
                _ => ordering.is_ge(),
            })
        }
        Add => match (left, right) {
            (Value::String(a), Value::String(b)) => Value::String(a + &b),
            (Integer(a), Integer(b)) => integer_op(a, b, i64::checked_add, |x, y| x + y),
            (a, b) => match (a.as_f64(), b.as_f64()) {
                (Some(x), Some(y)) => decimal(x + y),
                _ => Value::Undefined,
            },
        },
        Subtract | Multiply | Divide => match (left, right) {
            (Integer(_), Integer(0)) if op == Divide => Value::Undefined,
            (Integer(a), Integer(b)) => match op {
                Subtract => integer_op(a, b, i64::checked_sub, |x, y| x - y),
                Multiply => integer_op(a, b, i64::checked_mul, |x, y| x * y),
                _ => integer_op(a, b, i64::checked_div, |x, y| x / y),
            },
            (a, b) => match (a.as_f64(), b.as_f64()) {
                (Some(_), Some(y)) if op == Divide && y == 0.0 => Value::Undefined,
                (Some(x), Some(y)) => decimal(match op {
                    Subtract => x - y,
                    Multiply => x * y,
                    _ => x / y,
                }),
                _ => Value::Undefined,
            },
        },
        Or | And => Value::Undefined,
    }
}

fn text_argument(arguments: &[Expr], index: usize, context: &dyn Context) -> Option<String> {
    match arguments
        .get(index)
        .map(|argument| evaluate(argument, context))
    {
        Some(Value::String(text)) => Some(text),
        _ => None,
    }
}

fn call(name: &str, arguments: &[Expr], context: &dyn Context) -> Value {
    let argument = |index: usize| {
        arguments
            .get(index)
            .map_or(Value::Undefined, |a| evaluate(a, context))
    };
    let strings = |index: usize| text_argument(arguments, index, context);
    match name {
        "timeout" => strings(0).map_or(Value::Undefined, |timer| {
            Value::Boolean(context.timeout(&timer))
        }),
        "isNull" => Value::Boolean(argument(0) == Value::Null),
        "isUndefined" => Value::Boolean(argument(0) == Value::Undefined),
        "isNumeric" => Value::Boolean(matches!(argument(0), Value::Integer(_) | Value::Decimal(_))),
        "isString" => Value::Boolean(matches!(argument(0), Value::String(_))),
        "isBoolean" => Value::Boolean(matches!(argument(0), Value::Boolean(_))),
        "triggerType" => match strings(0).as_deref() {
            Some("Message") => Value::Boolean(context.trigger_type() == TriggerType::Message),
            Some("Timer") => Value::Boolean(context.trigger_type() == TriggerType::Timer),
            _ => Value::Undefined,
        },
        "currentInput" => strings(0).map_or(Value::Undefined, |input| {
            Value::Boolean(context.current_input() == Some(input.as_str()))
        }),
        "startsWith" | "endsWith" | "contains" => match (strings(0), strings(1)) {
            (Some(text), Some(part)) => Value::Boolean(match name {
                "startsWith" => text.starts_with(&part),
                "endsWith" => text.ends_with(&part),
                _ => text.contains(&part),
            }),
            _ => Value::Undefined,
        },
        "bitor" => binary(BinaryOp::BitOr, argument(0), argument(1)),
        "bitand" => binary(BinaryOp::BitAnd, argument(0), argument(1)),
        "bitxor" => binary(BinaryOp::BitXor, argument(0), argument(1)),
        "bitnot" => unary(UnaryOp::BitNot, argument(0)),
        "convert" => {
            let target = match arguments.first() {
                Some(Expr::Name(name)) => name.clone(),
                _ => strings(0).unwrap_or_default(),
            };
            convert(&target, argument(1))
        }
        _ => Value::Undefined,
    }
}

/// `convert(Type, value)` for Decimal, Integer, String and Boolean.
fn convert(target: &str, value: Value) -> Value {
    match (target, value) {
        (_, Value::Undefined) => Value::Undefined,
        ("String", value) => Value::String(value.to_string()),
        ("Decimal", Value::Integer(i)) => Value::Decimal(i as f64),
        ("Decimal", Value::Decimal(d)) => Value::Decimal(d),
        ("Decimal", Value::Boolean(b)) => Value::Decimal(if b { 1.0 } else { 0.0 }),
        ("Decimal", Value::String(s)) => s
            .trim()
            .parse::<f64>()
            .ok()
            .map_or(Value::Undefined, decimal),
        ("Integer", Value::Integer(i)) => Value::Integer(i),
        ("Integer", Value::Decimal(d)) if d.is_finite() && d.abs() < 9.2e18 => {
            Value::Integer(d.trunc() as i64)
        }
        ("Integer", Value::Boolean(b)) => Value::Integer(i64::from(b)),
        ("Integer", Value::String(s)) => s
            .trim()
            .parse::<i64>()
            .map_or(Value::Undefined, Value::Integer),
        ("Boolean", Value::Boolean(b)) => Value::Boolean(b),
        ("Boolean", Value::Integer(i)) => Value::Boolean(i != 0),
        ("Boolean", Value::Decimal(d)) => Value::Boolean(d != 0.0),
        ("Boolean", Value::String(s)) => match s.trim().to_ascii_lowercase().as_str() {
            "true" => Value::Boolean(true),
            "false" => Value::Boolean(false),
            _ => Value::Undefined,
        },
        _ => Value::Undefined,
    }
}
