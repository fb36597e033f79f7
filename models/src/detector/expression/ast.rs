//! The syntax tree of an expression.

use super::value::Value;

/// One step of an input path: a field name or an array index.
#[derive(Debug, Clone, PartialEq)]
pub enum PathSegment {
    /// `.name` (or `` .`odd name` ``).
    Field(String),
    /// `[3]`.
    Index(usize),
}

/// Unary operators.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UnaryOp {
    /// `!` Boolean not.
    Not,
    /// `~` bitwise not.
    BitNot,
    /// `-` negation.
    Negate,
}

/// Binary operators.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BinaryOp {
    /// `||`
    Or,
    /// `&&`
    And,
    /// `|`
    BitOr,
    /// `^`
    BitXor,
    /// `&`
    BitAnd,
    /// `==`
    Equal,
    /// `!=`
    NotEqual,
    /// `<`
    Less,
    /// `<=`
    LessOrEqual,
    /// `>`
    Greater,
    /// `>=`
    GreaterOrEqual,
    /// `+` (numbers or strings)
    Add,
    /// `-`
    Subtract,
    /// `*`
    Multiply,
    /// `/`
    Divide,
}

/// An expression.
#[derive(Debug, Clone, PartialEq)]
pub enum Expr {
    /// A literal.
    Literal(Value),
    /// A string literal with `${…}` substitutions: alternating text and expressions.
    Template(Vec<TemplatePart>),
    /// `$input.InputName.path…`
    Input {
        /// Input name.
        input: String,
        /// Path inside the input message.
        path: Vec<PathSegment>,
    },
    /// `$variable.name`
    Variable(String),
    /// A unary operation.
    Unary(UnaryOp, Box<Expr>),
    /// A binary operation.
    Binary(BinaryOp, Box<Expr>, Box<Expr>),
    /// A function call.
    Call(String, Vec<Expr>),
    /// A bare name: only meaningful as a type argument of `convert` (`Decimal`, `String`…).
    Name(String),
}

/// A piece of a template string.
#[derive(Debug, Clone, PartialEq)]
pub enum TemplatePart {
    /// Literal text.
    Text(String),
    /// `${expression}`.
    Expr(Expr),
}
