//! Parser of the IoT Events expression language (recursive descent with precedence climbing).
//!
//! Precedence, loosest first: `||`, `&&`, `|`, `^`, `&`, `== !=`, `< <= > >=`, `+ -`, `* /`,
//! unary `! ~ -`. Errors point at the character where parsing stopped; input length and nesting
//! depth are bounded so hostile input cannot exhaust the stack.

use super::ast::{BinaryOp, Expr, PathSegment, TemplatePart, UnaryOp};
use super::value::Value;
use crate::rules::condition::ParseError;

/// Longest accepted expression, in bytes.
pub const MAX_EXPRESSION_BYTES: usize = 16 * 1024;

/// Deepest accepted nesting (parentheses, unary chains, calls, templates).
pub const MAX_DEPTH: usize = 64;

/// Parses one expression.
pub fn parse_expression(text: &str) -> Result<Expr, ParseError> {
    let mut parser = Parser {
        text,
        at: 0,
        depth: 0,
    };
    if text.len() > MAX_EXPRESSION_BYTES {
        return Err(parser.error(format!(
            "expression longer than {MAX_EXPRESSION_BYTES} bytes"
        )));
    }
    let expr = parser.expression()?;
    parser.skip_spaces();
    if parser.at < text.len() {
        return Err(parser.error("unexpected text after the expression"));
    }
    Ok(expr)
}

struct Parser<'a> {
    text: &'a str,
    at: usize,
    depth: usize,
}

const LEVELS: &[&[(&str, BinaryOp)]] = &[
    &[("||", BinaryOp::Or)],
    &[("&&", BinaryOp::And)],
    &[("|", BinaryOp::BitOr)],
    &[("^", BinaryOp::BitXor)],
    &[("&", BinaryOp::BitAnd)],
    &[("==", BinaryOp::Equal), ("!=", BinaryOp::NotEqual)],
    &[
        ("<=", BinaryOp::LessOrEqual),
        (">=", BinaryOp::GreaterOrEqual),
        ("<", BinaryOp::Less),
        (">", BinaryOp::Greater),
    ],
    &[("+", BinaryOp::Add), ("-", BinaryOp::Subtract)],
    &[("*", BinaryOp::Multiply), ("/", BinaryOp::Divide)],
];

impl<'a> Parser<'a> {
    fn rest(&self) -> &'a str {
        &self.text[self.at..]
    }

    fn error(&self, message: impl Into<String>) -> ParseError {
        ParseError {
            message: message.into(),
            column: self.text[..self.at].chars().count(),
            input: self.text.to_owned(),
        }
    }

    fn skip_spaces(&mut self) {
        let trimmed = self.rest().trim_start();
        self.at = self.text.len() - trimmed.len();
    }

    fn enter(&mut self) -> Result<(), ParseError> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return Err(self.error(format!("expression nested deeper than {MAX_DEPTH}")));
        }
        Ok(())
    }

    fn expression(&mut self) -> Result<Expr, ParseError> {
        self.enter()?;
        let expr = self.level(0);
        self.depth -= 1;
        expr
    }

    fn level(&mut self, level: usize) -> Result<Expr, ParseError> {
        let Some(operators) = LEVELS.get(level) else {
            return self.unary();
        };
        let mut left = self.level(level + 1)?;
        loop {
            self.skip_spaces();
            let rest = self.rest();
            let found = operators.iter().find(|(symbol, _)| {
                rest.starts_with(symbol)
                    // `|` and `&` must not swallow `||` / `&&`.
                    && !(symbol.len() == 1 && matches!(*symbol, "|" | "&") && rest[1..].starts_with(*symbol))
            });
            let Some(&(symbol, op)) = found else {
                return Ok(left);
            };
            self.at += symbol.len();
            let right = self.level(level + 1)?;
            left = Expr::Binary(op, Box::new(left), Box::new(right));
        }
    }

    fn unary(&mut self) -> Result<Expr, ParseError> {
        self.skip_spaces();
        let op = match self.rest().chars().next() {
            Some('!') if !self.rest().starts_with("!=") => UnaryOp::Not,
            Some('~') => UnaryOp::BitNot,
            Some('-') => UnaryOp::Negate,
            _ => return self.primary(),
        };
        self.at += 1;
        self.enter()?;
        let operand = self.unary();
        self.depth -= 1;
        let operand = operand?;
        // Fold `-literal` so `-9223372036854775808` and `-1.5` stay literals.
        Ok(match (op, operand) {
            (UnaryOp::Negate, Expr::Literal(Value::Integer(i))) => {
                Expr::Literal(Value::Integer(i.wrapping_neg()))
            }
            (UnaryOp::Negate, Expr::Literal(Value::Decimal(d))) => {
                Expr::Literal(Value::Decimal(-d))
            }
            (op, operand) => Expr::Unary(op, Box::new(operand)),
        })
    }

    fn primary(&mut self) -> Result<Expr, ParseError> {
        self.skip_spaces();
        let Some(first) = self.rest().chars().next() else {
            return Err(self.error("expected a value, found the end of the expression"));
        };
        match first {
            '(' => {
                self.at += 1;
                let inner = self.expression()?;
                self.expect(')')?;
                Ok(inner)
            }
            '\'' | '"' => self.string(first),
            '$' => self.reference(),
            '0'..='9' | '.' => self.number(),
            '`' => Ok(Expr::Name(self.quoted_name()?)),
            c if c.is_ascii_alphabetic() => self.name_or_call(),
            _ => Err(self.error(format!("unexpected character {first:?}"))),
        }
    }

    fn expect(&mut self, wanted: char) -> Result<(), ParseError> {
        self.skip_spaces();
        if self.rest().starts_with(wanted) {
            self.at += wanted.len_utf8();
            Ok(())
        } else {
            Err(self.error(format!("expected `{wanted}`")))
        }
    }

    fn number(&mut self) -> Result<Expr, ParseError> {
        let rest = self.rest();
        let end = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        let mut end = end;
        if rest[end..].starts_with(['e', 'E']) {
            let exponent = &rest[end + 1..];
            let sign = usize::from(exponent.starts_with(['+', '-']));
            let digits = exponent[sign..]
                .find(|c: char| !c.is_ascii_digit())
                .unwrap_or(exponent.len() - sign);
            if digits > 0 {
                end += 1 + sign + digits;
            }
        }
        let literal = &rest[..end];
        let value = if literal.contains(['.', 'e', 'E']) {
            literal
                .parse::<f64>()
                .ok()
                .filter(|d| d.is_finite())
                .map(Value::Decimal)
        } else {
            // Integers beyond i64 become decimals, as in JSON.
            literal.parse::<i64>().map(Value::Integer).ok().or_else(|| {
                literal
                    .parse::<f64>()
                    .ok()
                    .filter(|d| d.is_finite())
                    .map(Value::Decimal)
            })
        };
        match value {
            Some(value) => {
                self.at += end;
                Ok(Expr::Literal(value))
            }
            None => Err(self.error(format!("invalid number {literal:?}"))),
        }
    }

    fn identifier(&mut self) -> Result<String, ParseError> {
        if self.rest().starts_with('`') {
            return self.quoted_name();
        }
        let rest = self.rest();
        let end = rest
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .unwrap_or(rest.len());
        if end == 0 || !rest.starts_with(|c: char| c.is_ascii_alphabetic()) {
            return Err(self.error("expected a name ([a-zA-Z][a-zA-Z0-9_]* or `quoted`)"));
        }
        self.at += end;
        Ok(rest[..end].to_owned())
    }

    fn quoted_name(&mut self) -> Result<String, ParseError> {
        let rest = &self.rest()[1..];
        let Some(end) = rest.find('`') else {
            return Err(self.error("missing closing backtick"));
        };
        self.at += end + 2;
        Ok(rest[..end].to_owned())
    }

    fn name_or_call(&mut self) -> Result<Expr, ParseError> {
        let name = self.identifier()?;
        match name.as_str() {
            "true" => return Ok(Expr::Literal(Value::Boolean(true))),
            "false" => return Ok(Expr::Literal(Value::Boolean(false))),
            _ => {}
        }
        self.skip_spaces();
        if !self.rest().starts_with('(') {
            return Ok(Expr::Name(name));
        }
        self.at += 1;
        self.enter()?;
        let mut arguments = Vec::new();
        self.skip_spaces();
        if self.rest().starts_with(')') {
            self.at += 1;
        } else {
            loop {
                arguments.push(self.expression()?);
                self.skip_spaces();
                match self.rest().chars().next() {
                    Some(',') => self.at += 1,
                    Some(')') => {
                        self.at += 1;
                        break;
                    }
                    _ => return Err(self.error("expected `,` or `)` in the argument list")),
                }
            }
        }
        self.depth -= 1;
        Ok(Expr::Call(name, arguments))
    }

    fn reference(&mut self) -> Result<Expr, ParseError> {
        let rest = self.rest();
        if rest.starts_with("$variable.") {
            self.at += "$variable.".len();
            return Ok(Expr::Variable(self.identifier()?));
        }
        if !rest.starts_with("$input.") {
            return Err(self.error("expected `$input.` or `$variable.`"));
        }
        self.at += "$input.".len();
        let input = self.identifier()?;
        let mut path = Vec::new();
        loop {
            let rest = self.rest();
            if rest.starts_with('.') {
                self.at += 1;
                path.push(PathSegment::Field(self.identifier()?));
            } else if rest.starts_with('[') {
                self.at += 1;
                let digits = self.rest().find(|c: char| !c.is_ascii_digit()).unwrap_or(0);
                let index = self.rest()[..digits]
                    .parse::<usize>()
                    .map_err(|_| self.error("expected an array index"))?;
                self.at += digits;
                self.expect(']')?;
                path.push(PathSegment::Index(index));
            } else {
                break;
            }
        }
        Ok(Expr::Input { input, path })
    }

    /// A string literal; `${…}` inside makes it a template.
    fn string(&mut self, quote: char) -> Result<Expr, ParseError> {
        let start = self.at;
        self.at += 1;
        let mut parts = Vec::new();
        let mut text = String::new();
        loop {
            let Some(c) = self.rest().chars().next() else {
                self.at = start;
                return Err(self.error("unterminated string"));
            };
            if c == quote {
                self.at += 1;
                break;
            }
            if c == '\\' {
                let mut chars = self.rest().chars();
                chars.next();
                if let Some(escaped) = chars.next() {
                    text.push(escaped);
                    self.at += 1 + escaped.len_utf8();
                    continue;
                }
            }
            if self.rest().starts_with("${") {
                self.at += 2;
                if !text.is_empty() {
                    parts.push(TemplatePart::Text(std::mem::take(&mut text)));
                }
                let inner = self.expression()?;
                self.expect('}')?;
                parts.push(TemplatePart::Expr(inner));
                continue;
            }
            text.push(c);
            self.at += c.len_utf8();
        }
        if parts.is_empty() {
            return Ok(Expr::Literal(Value::String(text)));
        }
        if !text.is_empty() {
            parts.push(TemplatePart::Text(text));
        }
        Ok(Expr::Template(parts))
    }
}
