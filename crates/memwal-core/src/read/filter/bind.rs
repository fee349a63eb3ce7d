//! Binding: turning sqlparser's expression into the checked tree of
//! `super::Node`. Names resolve to schema columns, literals are coerced to
//! the column they meet (see `coerce`), and anything the evaluator cannot run
//! is rejected here, once, instead of batch by batch.

use std::collections::BTreeSet;

use arrow_array::StringArray;
use arrow_cast::cast::cast_with_options;
use arrow_schema::{DataType, Schema};
use sqlparser::ast::{BinaryOperator, Expr, Ident, Spanned, UnaryOperator, Value};

use super::coerce::{coerce, common_type, comparable, is_string, value_type};
use super::parse::{fragment, not_boolean, position, semantic, unsupported, unsupported_in};
use super::{strict, CmpOp, ColumnRef, Node, Operand};
use crate::error::{Error, Result};

pub(super) struct Binder<'a> {
    pub(super) schema: &'a Schema,
    pub(super) columns: BTreeSet<String>,
}

/// A literal before it is coerced to the type of the column it meets.
pub(super) enum Lit {
    Null,
    Bool(bool),
    /// The number as written, with a leading `-` when negated.
    Number(String),
    String(String),
    Bytes(Vec<u8>),
}

impl Lit {
    pub(super) fn describe(&self) -> &'static str {
        match self {
            Lit::Null => "NULL",
            Lit::Bool(_) => "boolean literal",
            Lit::Number(_) => "number literal",
            Lit::String(_) => "string literal",
            Lit::Bytes(_) => "binary literal",
        }
    }
}

/// One side of a comparison, resolved but not yet coerced.
enum Term<'e> {
    Column { name: String, data_type: DataType },
    Literal { lit: Lit, expr: &'e Expr },
}

impl<'a> Binder<'a> {
    /// Check `expr` as a condition.
    pub(super) fn predicate(&mut self, expr: &Expr) -> Result<Node> {
        match expr {
            Expr::Nested(inner) => self.predicate(inner),
            Expr::BinaryOp {
                op: op @ (BinaryOperator::And | BinaryOperator::Or),
                ..
            } => {
                let parts = self.chain(expr, op)?;
                Ok(if *op == BinaryOperator::And {
                    Node::And(parts)
                } else {
                    Node::Or(parts)
                })
            }
            Expr::BinaryOp { left, op, right } => match CmpOp::from_sql(op) {
                Some(cmp) => self.compare(cmp, left, right, expr),
                None if is_arithmetic(op) => Err(not_boolean(expr)),
                None => Err(semantic(
                    format!("unsupported operator '{op}'"),
                    expr,
                    expr.span(),
                )),
            },
            Expr::UnaryOp {
                op: UnaryOperator::Not,
                expr: inner,
            } => Ok(Node::Not(Box::new(self.predicate(inner)?))),
            Expr::IsNull(inner) | Expr::IsNotNull(inner) => {
                let negated = matches!(expr, Expr::IsNotNull(_));
                match self.term(inner, expr)? {
                    Term::Column { name, data_type } => Ok(Node::IsNull {
                        column: ColumnRef {
                            name,
                            as_type: data_type,
                        },
                        negated,
                    }),
                    Term::Literal { .. } => {
                        Err(semantic("IS NULL needs a column", expr, inner.span()))
                    }
                }
            }
            Expr::InList {
                expr: target,
                list,
                negated,
            } => {
                if list.is_empty() {
                    return Err(semantic("empty IN list", expr, expr.span()));
                }
                let items = list
                    .iter()
                    .map(|item| self.compare(CmpOp::Eq, target, item, expr))
                    .collect::<Result<Vec<_>>>()?;
                Ok(negate(Node::Or(items), *negated))
            }
            Expr::Between {
                expr: target,
                negated,
                low,
                high,
            } => {
                let within = Node::And(vec![
                    self.compare(CmpOp::GtEq, target, low, expr)?,
                    self.compare(CmpOp::LtEq, target, high, expr)?,
                ]);
                Ok(negate(within, *negated))
            }
            Expr::Like {
                negated,
                any,
                expr: target,
                pattern,
                escape_char,
            }
            | Expr::ILike {
                negated,
                any,
                expr: target,
                pattern,
                escape_char,
            } => {
                let case_insensitive = matches!(expr, Expr::ILike { .. });
                if *any {
                    return Err(semantic("unsupported LIKE ANY", expr, expr.span()));
                }
                self.like(
                    target,
                    pattern,
                    escape_char.as_deref(),
                    *negated,
                    case_insensitive,
                    expr,
                )
            }
            Expr::Identifier(_) | Expr::CompoundIdentifier(_) => match self.term(expr, expr)? {
                Term::Column { name, data_type }
                    if value_type(&data_type) == &DataType::Boolean =>
                {
                    Ok(Node::Column(ColumnRef {
                        name,
                        as_type: DataType::Boolean,
                    }))
                }
                _ => Err(not_boolean(expr)),
            },
            Expr::Value(value) => match &value.value {
                Value::Boolean(b) => Ok(Node::Const(Some(*b))),
                Value::Null => Ok(Node::Const(None)),
                _ => Err(not_boolean(expr)),
            },
            Expr::UnaryOp { .. } => Err(not_boolean(expr)),
            other => Err(unsupported(other)),
        }
    }

    /// The conditions of a chain of one operator (`a AND b AND c`), in order.
    ///
    /// Iterative, because sqlparser builds such chains as left-deep trees.
    fn chain(&mut self, expr: &Expr, op: &BinaryOperator) -> Result<Vec<Node>> {
        let mut parts = Vec::new();
        let mut pending = vec![expr];
        while let Some(next) = pending.pop() {
            match next {
                Expr::BinaryOp {
                    left,
                    op: inner,
                    right,
                } if inner == op => {
                    pending.push(right);
                    pending.push(left);
                }
                other => parts.push(self.predicate(other)?),
            }
        }
        Ok(parts)
    }

    /// Resolve a comparison operand: a column or a literal.
    fn term<'e>(&mut self, expr: &'e Expr, context: &Expr) -> Result<Term<'e>> {
        match expr {
            Expr::Nested(inner) => self.term(inner, context),
            Expr::Identifier(ident) => self.column(ident, context),
            Expr::CompoundIdentifier(parts) if parts.len() == 1 => self.column(&parts[0], context),
            Expr::Value(value) => {
                let lit = match &value.value {
                    Value::Null => Lit::Null,
                    Value::Boolean(b) => Lit::Bool(*b),
                    Value::Number(text, _) => Lit::Number(text.clone()),
                    Value::SingleQuotedString(s)
                    | Value::EscapedStringLiteral(s)
                    | Value::UnicodeStringLiteral(s)
                    | Value::NationalStringLiteral(s) => Lit::String(s.clone()),
                    Value::HexStringLiteral(hex) => {
                        Lit::Bytes(decode_hex(hex).ok_or_else(|| {
                            semantic("invalid hexadecimal literal", context, expr.span())
                        })?)
                    }
                    _ => return Err(unsupported_in(expr, context)),
                };
                Ok(Term::Literal { lit, expr })
            }
            Expr::TypedString(typed) => match &typed.value.value {
                Value::SingleQuotedString(s) => Ok(Term::Literal {
                    lit: Lit::String(s.clone()),
                    expr,
                }),
                _ => Err(unsupported_in(expr, context)),
            },
            Expr::UnaryOp {
                op: op @ (UnaryOperator::Minus | UnaryOperator::Plus),
                expr: inner,
            } => match self.term(inner, context)? {
                Term::Literal {
                    lit: Lit::Number(text),
                    ..
                } => {
                    let text = match (op, text.strip_prefix('-')) {
                        (UnaryOperator::Plus, _) => text,
                        (_, Some(positive)) => positive.to_string(),
                        (_, None) => format!("-{text}"),
                    };
                    Ok(Term::Literal {
                        lit: Lit::Number(text),
                        expr,
                    })
                }
                _ => Err(semantic(
                    format!("unsupported arithmetic '{expr}'"),
                    context,
                    expr.span(),
                )),
            },
            Expr::BinaryOp { op, .. } if is_arithmetic(op) => Err(semantic(
                format!("unsupported arithmetic '{expr}'"),
                context,
                expr.span(),
            )),
            _ => Err(unsupported_in(expr, context)),
        }
    }

    fn column<'e>(&mut self, ident: &Ident, context: &Expr) -> Result<Term<'e>> {
        let fields = self.schema.fields();
        let exact = fields.iter().find(|f| f.name() == &ident.value);
        let field = match exact {
            Some(field) => Some(field),
            // Unquoted identifiers are case-insensitive when unambiguous.
            None if ident.quote_style.is_none() => {
                let mut matches = fields
                    .iter()
                    .filter(|f| f.name().eq_ignore_ascii_case(&ident.value));
                match (matches.next(), matches.next()) {
                    (Some(field), None) => Some(field),
                    _ => None,
                }
            }
            None => None,
        };
        let Some(field) = field else {
            let known = fields
                .iter()
                .map(|f| f.name().as_str())
                .collect::<Vec<_>>()
                .join(", ");
            return Err(Error::invalid_input(format!(
                "unknown column '{}' in filter at '{}'{}; known columns: {known}",
                ident.value,
                fragment(context),
                position(ident.span.start),
            )));
        };
        self.columns.insert(field.name().clone());
        Ok(Term::Column {
            name: field.name().clone(),
            data_type: field.data_type().clone(),
        })
    }

    fn compare(&mut self, op: CmpOp, left: &Expr, right: &Expr, context: &Expr) -> Result<Node> {
        let l = self.term(left, context)?;
        let r = self.term(right, context)?;
        let (left, right) = match (l, r) {
            (
                Term::Column {
                    name: a,
                    data_type: a_type,
                },
                Term::Column {
                    name: b,
                    data_type: b_type,
                },
            ) => {
                let a_value = comparable(&a, &a_type, context)?;
                let b_value = comparable(&b, &b_type, context)?;
                let Some(common) = common_type(a_value, b_value) else {
                    return Err(semantic(
                        format!(
                            "cannot compare column '{a}' of type {a_type} \
                             with column '{b}' of type {b_type}"
                        ),
                        context,
                        context.span(),
                    ));
                };
                (
                    Operand::Column(ColumnRef {
                        name: a,
                        as_type: common.clone(),
                    }),
                    Operand::Column(ColumnRef {
                        name: b,
                        as_type: common,
                    }),
                )
            }
            (Term::Column { name, data_type }, Term::Literal { lit, expr }) => {
                let (column, literal) = coerce(name, &data_type, lit, expr, context)?;
                (Operand::Column(column), Operand::Literal(literal))
            }
            (Term::Literal { lit, expr }, Term::Column { name, data_type }) => {
                let (column, literal) = coerce(name, &data_type, lit, expr, context)?;
                (Operand::Literal(literal), Operand::Column(column))
            }
            (Term::Literal { .. }, Term::Literal { .. }) => {
                return Err(semantic(
                    "a comparison needs at least one column",
                    context,
                    context.span(),
                ))
            }
        };
        Ok(Node::Compare { op, left, right })
    }

    fn like(
        &mut self,
        target: &Expr,
        pattern: &Expr,
        escape: Option<&Expr>,
        negated: bool,
        case_insensitive: bool,
        context: &Expr,
    ) -> Result<Node> {
        let keyword = if case_insensitive { "ILIKE" } else { "LIKE" };
        let (name, data_type) = match self.term(target, context)? {
            Term::Column { name, data_type } => (name, data_type),
            Term::Literal { .. } => {
                return Err(semantic(
                    format!("the left side of {keyword} must be a column"),
                    context,
                    target.span(),
                ))
            }
        };
        let as_type = value_type(&data_type).clone();
        if !is_string(&as_type) {
            return Err(semantic(
                format!("{keyword} needs a string column, but '{name}' has type {data_type}"),
                context,
                target.span(),
            ));
        }
        let pattern_text = match self.term(pattern, context)? {
            Term::Literal {
                lit: Lit::String(s),
                ..
            } => Some(s),
            Term::Literal { lit: Lit::Null, .. } => None,
            _ => {
                return Err(semantic(
                    format!("the pattern of {keyword} must be a string literal"),
                    context,
                    pattern.span(),
                ))
            }
        };
        let pattern_text = match (pattern_text, escape) {
            (Some(text), Some(escape)) => Some(self.escaped(&text, escape, context)?),
            (text, _) => text,
        };
        let pattern = StringArray::from(vec![pattern_text]);
        let pattern = cast_with_options(&pattern, &as_type, &strict())?;
        Ok(Node::Like {
            column: ColumnRef { name, as_type },
            pattern,
            negated,
            case_insensitive,
        })
    }

    /// Rewrite a LIKE pattern with a custom escape character to the
    /// backslash escapes the arrow kernels understand.
    fn escaped(&mut self, pattern: &str, escape: &Expr, context: &Expr) -> Result<String> {
        let escape_char = match self.term(escape, context)? {
            Term::Literal {
                lit: Lit::String(s),
                ..
            } if s.chars().count() == 1 => s.chars().next(),
            _ => None,
        };
        let Some(escape_char) = escape_char else {
            return Err(semantic(
                "ESCAPE needs a single-character string",
                context,
                escape.span(),
            ));
        };
        if escape_char == '\\' {
            return Ok(pattern.to_string());
        }
        let mut out = String::with_capacity(pattern.len());
        let mut chars = pattern.chars();
        while let Some(c) = chars.next() {
            if c == escape_char {
                out.push('\\');
                match chars.next() {
                    Some(next) => out.push(next),
                    None => {
                        return Err(semantic(
                            "LIKE pattern ends with its escape character",
                            context,
                            context.span(),
                        ))
                    }
                }
            } else if c == '\\' {
                out.push_str("\\\\");
            } else {
                out.push(c);
            }
        }
        Ok(out)
    }
}

fn negate(node: Node, negated: bool) -> Node {
    if negated {
        Node::Not(Box::new(node))
    } else {
        node
    }
}

fn is_arithmetic(op: &BinaryOperator) -> bool {
    matches!(
        op,
        BinaryOperator::Plus
            | BinaryOperator::Minus
            | BinaryOperator::Multiply
            | BinaryOperator::Divide
            | BinaryOperator::Modulo
            | BinaryOperator::StringConcat
            | BinaryOperator::BitwiseAnd
            | BinaryOperator::BitwiseOr
            | BinaryOperator::BitwiseXor
            | BinaryOperator::PGBitwiseShiftLeft
            | BinaryOperator::PGBitwiseShiftRight
    )
}

fn decode_hex(hex: &str) -> Option<Vec<u8>> {
    if !hex.len().is_multiple_of(2) {
        return None;
    }
    (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(hex.get(i..i + 2)?, 16).ok())
        .collect()
}

#[cfg(test)]
mod tests {
    use crate::read::filter::fixtures::*;

    #[test]
    fn identifiers_plain_quoted_and_case_insensitive() {
        assert_eq!(rows("\"my col\" = 1"), vec![0, 2]);
        assert_eq!(rows("\"id\" = 2"), vec![1]);
        assert_eq!(rows("ID = 2"), vec![1]);
        assert_contains(&error("\"ID\" = 2"), &["unknown column 'ID'"]);
    }

    #[test]
    fn unknown_columns_are_named_with_the_known_ones() {
        let message = error("nmae = 1");
        assert_contains(
            &message,
            &[
                "unknown column 'nmae' in filter at 'nmae = 1'",
                "line 1, column 1",
                "known columns: row, id, name, score",
            ],
        );
        let message = error("id > 1 AND\n  nmae LIKE 'x%'");
        assert_contains(&message, &["unknown column 'nmae'", "line 2, column 3"]);
        let message = error("id IN (1, missing)");
        assert_contains(&message, &["unknown column 'missing'", "line 1, column 11"]);
    }

    #[test]
    fn unsupported_constructs_are_named() {
        let message = error("lower(name) = 'x'");
        assert_contains(
            &message,
            &[
                "unsupported function call 'lower(name)'",
                "at 'lower(name) = 'x''",
            ],
        );
        assert_contains(&error("id IN (SELECT 1)"), &["unsupported subquery"]);
        assert_contains(&error("CAST(id AS TEXT) = '1'"), &["unsupported CAST"]);
        assert_contains(&error("name SIMILAR TO 'a'"), &["unsupported SIMILAR TO"]);
        assert_contains(
            &error("flag IS TRUE"),
            &["unsupported IS TRUE/FALSE/UNKNOWN"],
        );
        assert_contains(&error("t.id = 1"), &["unsupported qualified name 't.id'"]);
        assert_contains(&error("id = ?"), &["unsupported literal '?'"]);
        assert_contains(&error("id + 1 > 2"), &["unsupported arithmetic 'id + 1'"]);
        assert_contains(&error("id IS DISTINCT FROM 1"), &["IS DISTINCT FROM"]);
        assert_contains(&error("name LIKE ANY ('a%')"), &["LIKE ANY"]);
    }

    #[test]
    fn non_boolean_filters_are_rejected() {
        for sql in ["id + 1", "id", "5", "'x'", "-id", "name"] {
            assert_contains(
                &error(sql),
                &["expected a boolean condition", &format!("at '{sql}'")],
            );
        }
        assert_contains(
            &error("1 = 1"),
            &["a comparison needs at least one column", "at '1 = 1'"],
        );
    }
}
