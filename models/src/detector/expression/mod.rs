//! The AWS IoT Events expression language: literals, `$input…`/`$variable…` references,
//! backtick-quoted names, arithmetic, string `+`, bitwise and Boolean operators, comparisons,
//! the built-in functions and `${…}` string templates.
//!
//! [`parse_expression`] turns text into an [`Expr`] (errors point at the position with a caret);
//! [`evaluate`] computes it against a [`Context`] without ever panicking.

mod ast;
mod eval;
mod parser;
mod value;

pub use ast::{BinaryOp, Expr, PathSegment, TemplatePart, UnaryOp};
pub use eval::{check, evaluate, Context, TriggerType, FUNCTIONS};
pub use parser::{parse_expression, MAX_DEPTH, MAX_EXPRESSION_BYTES};
pub use value::Value;

#[cfg(test)]
mod tests;
