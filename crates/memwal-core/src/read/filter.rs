//! The filter language of `writer.scan({ filter })` and the shard reader.
//!
//! A filter is a SQL boolean expression such as `id > 5 AND name = 'x'`. It
//! is parsed with `sqlparser`, checked against an Arrow schema once (column
//! names, literal coercions, operator support), and then evaluated batch by
//! batch with the arrow-rs compute kernels.
//!
//! Supported: column references (plain or `"quoted"`), literals (integers,
//! floats, `'strings'`, `TRUE`/`FALSE`, `NULL`, `X'hex'`, `DATE '…'` and
//! `TIMESTAMP '…'`), the comparisons `= != <> < <= > >=`, `AND`, `OR`,
//! `NOT`, parentheses, `[NOT] IN (…)`, `IS [NOT] NULL`, `[NOT] LIKE` and
//! `[NOT] ILIKE` (with an optional `ESCAPE`), and `[NOT] BETWEEN a AND b`.
//! A boolean column may stand alone as a condition.
//!
//! Evaluation follows SQL three-valued logic: comparing with NULL yields
//! NULL, and [`Filter::apply`] keeps only the rows where the filter is TRUE.

use std::collections::BTreeSet;
use std::fmt;
use std::sync::Arc;

use arrow_array::cast::AsArray;
use arrow_array::types::{
    TimestampMicrosecondType, TimestampMillisecondType, TimestampNanosecondType,
    TimestampSecondType,
};
use arrow_array::{
    new_null_array, Array, ArrayRef, BinaryArray, BooleanArray, RecordBatch, Scalar, StringArray,
};
use arrow_cast::cast::{cast_with_options, CastOptions};
use arrow_schema::{DataType, Schema, TimeUnit};
use sqlparser::ast::{BinaryOperator, Expr, Ident, Spanned, UnaryOperator, Value};
use sqlparser::dialect::GenericDialect;
use sqlparser::keywords::Keyword;
use sqlparser::parser::{Parser, ParserError};
use sqlparser::tokenizer::{Location, Span, Token, Tokenizer};

use crate::error::{Error, Result};

/// At most this many operator, keyword and parenthesis tokens in one filter.
///
/// `sqlparser` builds chains such as `a = 1 AND b = 2 AND …` or `1 + 1 + …`
/// as left-deep trees without limiting their depth, and dropping, printing or
/// locating such a tree recurses once per link. The cap keeps that far from
/// the 2 MiB stack of a worker thread (locating a chain overflows it past
/// roughly 2,000 links in a debug build). Literals, commas and column names
/// do not count, so `IN` lists of any length are fine; the cap still admits
/// an `AND` or `OR` of about 500 comparisons.
const MAX_FILTER_TOKENS: usize = 1024;

/// A validated filter expression, ready to evaluate against record batches
/// of the schema it was parsed with (or any batch holding the columns it
/// reads with the same or castable types).
#[derive(Clone, Debug)]
pub struct Filter {
    sql: String,
    root: Node,
    columns: BTreeSet<String>,
}

impl Filter {
    /// Parse `sql` as a boolean SQL expression and check it against `schema`.
    ///
    /// Every failure is an `INVALID_INPUT` error whose message says where:
    /// the line and column for syntax errors, the offending fragment (and its
    /// position) for unknown columns, unsupported constructs and type
    /// mismatches.
    pub fn parse(sql: &str, schema: &Schema) -> Result<Filter> {
        let expr = parse_expr(sql)?;
        let mut binder = Binder {
            schema,
            columns: BTreeSet::new(),
        };
        let root = binder.predicate(&expr)?;
        Ok(Filter {
            sql: sql.to_string(),
            root,
            columns: binder.columns,
        })
    }

    /// The filter text as given to [`Filter::parse`].
    pub fn sql(&self) -> &str {
        &self.sql
    }

    /// The names of the columns the filter reads, as spelled in the schema.
    pub fn columns(&self) -> BTreeSet<String> {
        self.columns.clone()
    }

    /// Evaluate the filter on every row of `batch`.
    ///
    /// The result has one entry per row: TRUE, FALSE, or NULL when the
    /// outcome is unknown (SQL three-valued logic). Callers treat NULL as
    /// FALSE. The batch must hold every column in [`Filter::columns`].
    pub fn evaluate(&self, batch: &RecordBatch) -> Result<BooleanArray> {
        let mut eval = Evaluator {
            batch,
            cache: Vec::new(),
        };
        eval.node(&self.root)
    }

    /// Keep the rows of `batch` for which the filter is TRUE.
    pub fn apply(&self, batch: &RecordBatch) -> Result<RecordBatch> {
        let mask = self.evaluate(batch)?;
        // `filter_record_batch` treats NULL entries of the mask as FALSE.
        Ok(arrow_select::filter::filter_record_batch(batch, &mask)?)
    }
}

/// Value range of a column over a group of rows (a Parquet row group): its
/// minimum and maximum as one-element arrays of the column's type.
pub struct ColumnRange {
    pub min: ArrayRef,
    pub max: ArrayRef,
}

impl Filter {
    /// Whether some row whose columns lie within the given ranges could make
    /// the filter TRUE. `false` proves no row of the group matches, so the
    /// group can be skipped; `true` may be wrong only in the safe direction.
    /// `range` returns `None` for columns without known bounds.
    pub fn may_match(&self, range: &dyn Fn(&str) -> Option<ColumnRange>) -> bool {
        may_match(&self.root, range)
    }
}

fn may_match(node: &Node, range: &dyn Fn(&str) -> Option<ColumnRange>) -> bool {
    match node {
        // NULL is not TRUE either.
        Node::Const(value) => *value == Some(true),
        Node::And(nodes) => nodes.iter().all(|n| may_match(n, range)),
        Node::Or(nodes) => nodes.iter().any(|n| may_match(n, range)),
        Node::Compare { op, left, right } => match (left, right) {
            (Operand::Column(c), Operand::Literal(v)) => compare_may_match(*op, c, v, range),
            (Operand::Literal(v), Operand::Column(c)) => {
                compare_may_match(op.mirrored(), c, v, range)
            }
            _ => true,
        },
        _ => true,
    }
}

/// `column op literal` against the column's bounds; any doubt answers true.
fn compare_may_match(
    op: CmpOp,
    column: &ColumnRef,
    literal: &ArrayRef,
    range: &dyn Fn(&str) -> Option<ColumnRange>,
) -> bool {
    let Some(bounds) = range(&column.name) else {
        return true;
    };
    let as_type = |a: &ArrayRef| -> Option<ArrayRef> {
        if a.len() != 1 || a.is_null(0) {
            return None;
        }
        if a.data_type() == &column.as_type {
            Some(a.clone())
        } else {
            cast_with_options(a, &column.as_type, &strict()).ok()
        }
    };
    let (Some(min), Some(max)) = (as_type(&bounds.min), as_type(&bounds.max)) else {
        return true;
    };
    let holds = |result: std::result::Result<BooleanArray, arrow_schema::ArrowError>| {
        result.map_or(true, |b| b.is_valid(0) && b.value(0))
    };
    let v = literal;
    match op {
        CmpOp::Eq => holds(arrow_ord::cmp::lt_eq(&min, v)) && holds(arrow_ord::cmp::gt_eq(&max, v)),
        CmpOp::NotEq => !(holds(arrow_ord::cmp::eq(&min, v)) && holds(arrow_ord::cmp::eq(&max, v))),
        CmpOp::Lt => holds(arrow_ord::cmp::lt(&min, v)),
        CmpOp::LtEq => holds(arrow_ord::cmp::lt_eq(&min, v)),
        CmpOp::Gt => holds(arrow_ord::cmp::gt(&max, v)),
        CmpOp::GtEq => holds(arrow_ord::cmp::gt_eq(&max, v)),
    }
}

impl fmt::Display for Filter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.sql)
    }
}

// ---------------------------------------------------------------------------
// The checked expression tree.

#[derive(Clone, Debug)]
enum Node {
    /// `TRUE`, `FALSE` or `NULL` standing as a condition.
    Const(Option<bool>),
    /// A boolean column standing as a condition.
    Column(ColumnRef),
    Compare {
        op: CmpOp,
        left: Operand,
        right: Operand,
    },
    Like {
        column: ColumnRef,
        /// A one-element array of the column's (decoded) string type.
        pattern: ArrayRef,
        negated: bool,
        case_insensitive: bool,
    },
    IsNull {
        column: ColumnRef,
        negated: bool,
    },
    Not(Box<Node>),
    And(Vec<Node>),
    Or(Vec<Node>),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum CmpOp {
    Eq,
    NotEq,
    Lt,
    LtEq,
    Gt,
    GtEq,
}

impl CmpOp {
    /// The operator with its operands swapped: `a < b` is `b > a`.
    fn mirrored(self) -> CmpOp {
        match self {
            CmpOp::Lt => CmpOp::Gt,
            CmpOp::LtEq => CmpOp::GtEq,
            CmpOp::Gt => CmpOp::Lt,
            CmpOp::GtEq => CmpOp::LtEq,
            other => other,
        }
    }

    fn from_sql(op: &BinaryOperator) -> Option<CmpOp> {
        Some(match op {
            BinaryOperator::Eq => CmpOp::Eq,
            BinaryOperator::NotEq => CmpOp::NotEq,
            BinaryOperator::Lt => CmpOp::Lt,
            BinaryOperator::LtEq => CmpOp::LtEq,
            BinaryOperator::Gt => CmpOp::Gt,
            BinaryOperator::GtEq => CmpOp::GtEq,
            _ => return None,
        })
    }
}

#[derive(Clone, Debug)]
enum Operand {
    Column(ColumnRef),
    /// A one-element array already of the type it is compared at.
    Literal(ArrayRef),
}

/// A column as the filter reads it: by schema name, cast to `as_type` when
/// the batch holds it in another type (dictionary decoding, widening).
#[derive(Clone, Debug)]
struct ColumnRef {
    name: String,
    as_type: DataType,
}

// ---------------------------------------------------------------------------
// Parsing.

fn parse_expr(sql: &str) -> Result<Expr> {
    let dialect = GenericDialect {};
    let tokens = Tokenizer::new(&dialect, sql)
        .tokenize_with_location()
        .map_err(|err| syntax_error(sql, ParserError::TokenizerError(err.to_string())))?;
    let counted = tokens
        .iter()
        .filter(|t| counts_toward_limit(&t.token))
        .count();
    if counted > MAX_FILTER_TOKENS {
        return Err(Error::invalid_input(format!(
            "filter is too complex: {counted} operators, keywords and \
             parentheses where at most {MAX_FILTER_TOKENS} are allowed (use IN (…) \
             for long lists of values)"
        )));
    }

    let mut parser = Parser::new(&dialect).with_tokens_with_locations(tokens);
    let expr = parser.parse_expr().map_err(|err| syntax_error(sql, err))?;
    let next = parser.peek_token();
    if next.token != Token::EOF {
        return Err(Error::invalid_input(format!(
            "syntax error in filter{}: unexpected '{}' after the end of the expression",
            at(next.span.start),
            next.token,
        )));
    }
    Ok(expr)
}

/// Whether a token can extend an expression tree by one level: operators,
/// parentheses and the keywords sqlparser parses as infix operators. Column
/// names, literals and commas cannot.
fn counts_toward_limit(token: &Token) -> bool {
    match token {
        Token::Word(word) => {
            word.quote_style.is_none()
                && matches!(
                    word.keyword,
                    Keyword::AND
                        | Keyword::OR
                        | Keyword::XOR
                        | Keyword::NOT
                        | Keyword::IS
                        | Keyword::IN
                        | Keyword::BETWEEN
                        | Keyword::LIKE
                        | Keyword::ILIKE
                        | Keyword::SIMILAR
                        | Keyword::RLIKE
                        | Keyword::REGEXP
                        | Keyword::GLOB
                        | Keyword::MATCH
                        | Keyword::MEMBER
                        | Keyword::OPERATOR
                        | Keyword::OVERLAPS
                        | Keyword::DIV
                        | Keyword::AT
                        | Keyword::COLLATE
                        | Keyword::NOTNULL
                )
        }
        Token::Whitespace(_)
        | Token::Comma
        | Token::Number(_, _)
        | Token::SingleQuotedString(_)
        | Token::EOF => false,
        _ => true,
    }
}

fn syntax_error(sql: &str, err: ParserError) -> Error {
    let detail = match err {
        ParserError::TokenizerError(msg) | ParserError::ParserError(msg) => msg,
        ParserError::RecursionLimitExceeded => {
            return Error::invalid_input("syntax error in filter: parentheses nest too deeply")
        }
    };
    // sqlparser ends its messages with " at Line: L, Column: C", except at
    // the end of the input, whose token carries no location.
    let located = detail.rfind(" at Line: ").and_then(|at| {
        let (line, column) = detail[at + " at Line: ".len()..].split_once(", Column: ")?;
        let location = Location::new(line.trim().parse().ok()?, column.trim().parse().ok()?);
        Some((detail[..at].to_string(), location))
    });
    let (detail, location) = match located {
        Some(found) => found,
        None if detail.contains("EOF") => (detail, end_location(sql)),
        None => (detail, Location::new(0, 0)),
    };
    Error::invalid_input(format!("syntax error in filter{}: {detail}", at(location)))
}

fn end_location(sql: &str) -> Location {
    let line = sql.lines().count().max(1);
    let last = if sql.ends_with('\n') {
        ""
    } else {
        sql.lines().last().unwrap_or("")
    };
    let line = if sql.ends_with('\n') { line + 1 } else { line };
    Location::new(line as u64, last.chars().count() as u64 + 1)
}

/// " (line L, column C)", or nothing when the location is unknown.
fn position(location: Location) -> String {
    if location.line == 0 {
        String::new()
    } else {
        format!(" (line {}, column {})", location.line, location.column)
    }
}

/// " at line L, column C", or nothing when the location is unknown.
fn at(location: Location) -> String {
    if location.line == 0 {
        String::new()
    } else {
        format!(" at line {}, column {}", location.line, location.column)
    }
}

// ---------------------------------------------------------------------------
// Checking against the schema.

struct Binder<'a> {
    schema: &'a Schema,
    columns: BTreeSet<String>,
}

/// A literal before it is coerced to the type of the column it meets.
enum Lit {
    Null,
    Bool(bool),
    /// The number as written, with a leading `-` when negated.
    Number(String),
    String(String),
    Bytes(Vec<u8>),
}

impl Lit {
    fn describe(&self) -> &'static str {
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
    fn predicate(&mut self, expr: &Expr) -> Result<Node> {
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

/// At most this many characters of a fragment are quoted in an error.
const MAX_FRAGMENT_CHARS: usize = 200;

/// `expr` as SQL text for an error message, shortened when long.
fn fragment(expr: &Expr) -> String {
    let mut text = expr.to_string();
    if let Some((cut, _)) = text.char_indices().nth(MAX_FRAGMENT_CHARS) {
        text.truncate(cut);
        text.push('…');
    }
    text
}

/// An error about `context` (a fragment of the filter), located at `span`.
fn semantic(message: impl fmt::Display, context: &Expr, span: Span) -> Error {
    Error::invalid_input(format!(
        "{message} in filter at '{}'{}",
        fragment(context),
        position(span.start)
    ))
}

/// [`semantic`] followed by the underlying cause.
fn semantic_because(
    message: impl fmt::Display,
    context: &Expr,
    span: Span,
    cause: impl fmt::Display,
) -> Error {
    Error::invalid_input(format!(
        "{message} in filter at '{}'{}: {cause}",
        fragment(context),
        position(span.start)
    ))
}

fn not_boolean(expr: &Expr) -> Error {
    semantic(
        "expected a boolean condition (a comparison, IN, LIKE, IS NULL, BETWEEN \
         or a boolean column)",
        expr,
        expr.span(),
    )
}

fn unsupported(expr: &Expr) -> Error {
    unsupported_in(expr, expr)
}

fn unsupported_in(expr: &Expr, context: &Expr) -> Error {
    let what = match expr {
        Expr::Function(_) => "function call",
        Expr::Cast { .. } | Expr::Convert { .. } => "CAST",
        Expr::Case { .. } => "CASE expression",
        Expr::Subquery(_) | Expr::InSubquery { .. } | Expr::Exists { .. } => "subquery",
        Expr::CompoundIdentifier(_) | Expr::CompoundFieldAccess { .. } => "qualified name",
        Expr::IsTrue(_)
        | Expr::IsFalse(_)
        | Expr::IsNotTrue(_)
        | Expr::IsNotFalse(_)
        | Expr::IsUnknown(_)
        | Expr::IsNotUnknown(_) => "IS TRUE/FALSE/UNKNOWN test",
        Expr::IsDistinctFrom(..) | Expr::IsNotDistinctFrom(..) => "IS DISTINCT FROM",
        Expr::SimilarTo { .. } => "SIMILAR TO",
        Expr::RLike { .. } => "REGEXP",
        Expr::AnyOp { .. } | Expr::AllOp { .. } => "ANY/ALL comparison",
        Expr::Value(_) => "literal",
        Expr::InList { .. }
        | Expr::Between { .. }
        | Expr::Like { .. }
        | Expr::ILike { .. }
        | Expr::IsNull(_)
        | Expr::IsNotNull(_) => "condition as a value",
        _ => "expression",
    };
    semantic(format!("unsupported {what} '{expr}'"), context, expr.span())
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

fn strict() -> CastOptions<'static> {
    CastOptions {
        safe: false,
        ..Default::default()
    }
}

// ---------------------------------------------------------------------------
// Types.

/// The type a column is compared at: dictionaries decode to their values.
fn value_type(data_type: &DataType) -> &DataType {
    match data_type {
        DataType::Dictionary(_, values) => values,
        other => other,
    }
}

fn is_string(data_type: &DataType) -> bool {
    matches!(
        data_type,
        DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View
    )
}

fn is_binary(data_type: &DataType) -> bool {
    matches!(
        data_type,
        DataType::Binary
            | DataType::LargeBinary
            | DataType::BinaryView
            | DataType::FixedSizeBinary(_)
    )
}

fn is_datetime(data_type: &DataType) -> bool {
    matches!(
        data_type,
        DataType::Date32
            | DataType::Date64
            | DataType::Timestamp(_, _)
            | DataType::Time32(_)
            | DataType::Time64(_)
    )
}

/// The decoded type of a column a filter may compare, or an error naming it.
fn comparable<'t>(name: &str, data_type: &'t DataType, context: &Expr) -> Result<&'t DataType> {
    let value = value_type(data_type);
    if value.is_numeric()
        || *value == DataType::Boolean
        || is_string(value)
        || is_binary(value)
        || is_datetime(value)
    {
        Ok(value)
    } else {
        Err(semantic(
            format!("column '{name}' has type {data_type}, which filters cannot compare"),
            context,
            context.span(),
        ))
    }
}

/// The type two columns of (decoded) types `a` and `b` are compared at.
fn common_type(a: &DataType, b: &DataType) -> Option<DataType> {
    use DataType::*;
    if a == b {
        return Some(a.clone());
    }
    let int_width = |t: &DataType| t.primitive_width().unwrap_or(8);
    match (a, b) {
        _ if a.is_integer() && b.is_integer() => {
            let (signed, unsigned) = match (a.is_signed_integer(), b.is_signed_integer()) {
                (true, true) | (false, false) => {
                    return Some(if int_width(a) >= int_width(b) {
                        a.clone()
                    } else {
                        b.clone()
                    })
                }
                (true, false) => (a, b),
                (false, true) => (b, a),
            };
            Some(if int_width(unsigned) < int_width(signed) {
                signed.clone()
            } else if int_width(unsigned) < 8 {
                Int64
            } else {
                Decimal128(20, 0)
            })
        }
        _ if a.is_numeric() && b.is_numeric() => Some(Float64),
        _ if is_string(a) && is_string(b) => Some(if *a == LargeUtf8 || *b == LargeUtf8 {
            LargeUtf8
        } else {
            Utf8
        }),
        _ if is_binary(a) && is_binary(b) => Some(if *a == LargeBinary || *b == LargeBinary {
            LargeBinary
        } else {
            Binary
        }),
        (Date32, Date64) | (Date64, Date32) => Some(Date64),
        (Timestamp(unit_a, tz_a), Timestamp(unit_b, tz_b)) if tz_a.is_some() == tz_b.is_some() => {
            let unit = if unit_rank(unit_a) >= unit_rank(unit_b) {
                *unit_a
            } else {
                *unit_b
            };
            Some(Timestamp(unit, tz_a.clone()))
        }
        _ => None,
    }
}

fn unit_rank(unit: &TimeUnit) -> u8 {
    match unit {
        TimeUnit::Second => 0,
        TimeUnit::Millisecond => 1,
        TimeUnit::Microsecond => 2,
        TimeUnit::Nanosecond => 3,
    }
}

/// Coerce a literal to the type of the column it is compared with.
///
/// Returns how to read the column (usually its decoded type; `Float64` when
/// an integer column meets a fractional number) and the literal as a
/// one-element array of that type.
fn coerce(
    name: String,
    data_type: &DataType,
    lit: Lit,
    lit_expr: &Expr,
    context: &Expr,
) -> Result<(ColumnRef, ArrayRef)> {
    let target = comparable(&name, data_type, context)?.clone();
    let mismatch = |lit: &Lit| {
        semantic(
            format!(
                "cannot compare column '{name}' of type {data_type} with {} {lit_expr}",
                lit.describe()
            ),
            context,
            lit_expr.span(),
        )
    };
    let cannot_convert = |err: arrow_schema::ArrowError| {
        semantic_because(
            format!("cannot convert {lit_expr} to {target} for column '{name}'"),
            context,
            lit_expr.span(),
            err,
        )
    };
    let (as_type, array): (DataType, ArrayRef) = match &lit {
        Lit::Null => (target.clone(), new_null_array(&target, 1)),
        Lit::Number(text) if target.is_integer() && !is_integral(text) => {
            let array = StringArray::from(vec![text.as_str()]);
            let array =
                cast_with_options(&array, &DataType::Float64, &strict()).map_err(cannot_convert)?;
            (DataType::Float64, array)
        }
        Lit::Number(text) if target.is_numeric() => {
            let array = StringArray::from(vec![text.as_str()]);
            let array = cast_with_options(&array, &target, &strict()).map_err(|err| {
                if target.is_integer() {
                    semantic(
                        format!(
                            "integer literal {text} is out of range for column '{name}' \
                             of type {data_type}"
                        ),
                        context,
                        lit_expr.span(),
                    )
                } else {
                    cannot_convert(err)
                }
            })?;
            (target.clone(), array)
        }
        Lit::String(s) if is_string(&target) || is_datetime(&target) => {
            let array = StringArray::from(vec![s.as_str()]);
            let array = match cast_with_options(&array, &target, &strict()) {
                Ok(array) => array,
                Err(err) => match &target {
                    // Named zones need chrono-tz, which the build leaves out:
                    // read the literal as UTC (exact when it has an offset).
                    DataType::Timestamp(unit, Some(tz)) => {
                        let naive = DataType::Timestamp(*unit, None);
                        let array = cast_with_options(&array, &naive, &strict())
                            .map_err(|_| cannot_convert(err))?;
                        relabel_timezone(&array, *unit, tz.clone())
                    }
                    _ => return Err(cannot_convert(err)),
                },
            };
            (target.clone(), array)
        }
        Lit::String(s) if is_binary(&target) => {
            let array = BinaryArray::from(vec![s.as_bytes()]);
            let array = cast_with_options(&array, &target, &strict()).map_err(cannot_convert)?;
            (target.clone(), array)
        }
        Lit::Bytes(bytes) if is_binary(&target) => {
            let array = BinaryArray::from(vec![bytes.as_slice()]);
            let array = cast_with_options(&array, &target, &strict()).map_err(cannot_convert)?;
            (target.clone(), array)
        }
        Lit::Bool(b) if target == DataType::Boolean => {
            (target.clone(), Arc::new(BooleanArray::from(vec![*b])))
        }
        other => return Err(mismatch(other)),
    };
    Ok((ColumnRef { name, as_type }, array))
}

/// The same instants as `array` (a timezone-less timestamp array of `unit`),
/// labelled with `tz`.
fn relabel_timezone(array: &ArrayRef, unit: TimeUnit, tz: Arc<str>) -> ArrayRef {
    match unit {
        TimeUnit::Second => Arc::new(
            array
                .as_primitive::<TimestampSecondType>()
                .clone()
                .with_timezone(tz),
        ),
        TimeUnit::Millisecond => Arc::new(
            array
                .as_primitive::<TimestampMillisecondType>()
                .clone()
                .with_timezone(tz),
        ),
        TimeUnit::Microsecond => Arc::new(
            array
                .as_primitive::<TimestampMicrosecondType>()
                .clone()
                .with_timezone(tz),
        ),
        TimeUnit::Nanosecond => Arc::new(
            array
                .as_primitive::<TimestampNanosecondType>()
                .clone()
                .with_timezone(tz),
        ),
    }
}

fn is_integral(text: &str) -> bool {
    let digits = text.strip_prefix('-').unwrap_or(text);
    !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit())
}

// ---------------------------------------------------------------------------
// Evaluation.

struct Evaluator<'b> {
    batch: &'b RecordBatch,
    /// Columns already read (and cast), by name and type: an `IN` list
    /// compares the same column once per item.
    cache: Vec<(String, DataType, ArrayRef)>,
}

impl Evaluator<'_> {
    fn node(&mut self, node: &Node) -> Result<BooleanArray> {
        Ok(match node {
            Node::Const(value) => BooleanArray::from(vec![*value; self.batch.num_rows()]),
            Node::Column(column) => self.column(column)?.as_boolean().clone(),
            Node::Compare { op, left, right } => {
                let left = self.operand(left)?;
                let right = self.operand(right)?;
                let (l, r) = (left.datum(), right.datum());
                match op {
                    CmpOp::Eq => arrow_ord::cmp::eq(l, r)?,
                    CmpOp::NotEq => arrow_ord::cmp::neq(l, r)?,
                    CmpOp::Lt => arrow_ord::cmp::lt(l, r)?,
                    CmpOp::LtEq => arrow_ord::cmp::lt_eq(l, r)?,
                    CmpOp::Gt => arrow_ord::cmp::gt(l, r)?,
                    CmpOp::GtEq => arrow_ord::cmp::gt_eq(l, r)?,
                }
            }
            Node::Like {
                column,
                pattern,
                negated,
                case_insensitive,
            } => {
                let values = self.column(column)?;
                let pattern = Scalar::new(pattern.clone());
                match (case_insensitive, negated) {
                    (false, false) => arrow_string::like::like(&values, &pattern)?,
                    (false, true) => arrow_string::like::nlike(&values, &pattern)?,
                    (true, false) => arrow_string::like::ilike(&values, &pattern)?,
                    (true, true) => arrow_string::like::nilike(&values, &pattern)?,
                }
            }
            Node::IsNull { column, negated } => {
                let values = self.column(column)?;
                if *negated {
                    arrow_arith::boolean::is_not_null(&values)?
                } else {
                    arrow_arith::boolean::is_null(&values)?
                }
            }
            Node::Not(inner) => arrow_arith::boolean::not(&self.node(inner)?)?,
            Node::And(parts) => self.fold(parts, arrow_arith::boolean::and_kleene)?,
            Node::Or(parts) => self.fold(parts, arrow_arith::boolean::or_kleene)?,
        })
    }

    fn fold(
        &mut self,
        parts: &[Node],
        combine: fn(&BooleanArray, &BooleanArray) -> Result<BooleanArray, arrow_schema::ArrowError>,
    ) -> Result<BooleanArray> {
        let mut parts = parts.iter();
        let Some(first) = parts.next() else {
            return Err(Error::internal("Filter has an empty AND/OR"));
        };
        let mut acc = self.node(first)?;
        for part in parts {
            acc = combine(&acc, &self.node(part)?)?;
        }
        Ok(acc)
    }

    fn operand(&mut self, operand: &Operand) -> Result<Side> {
        Ok(match operand {
            Operand::Column(column) => Side::Array(self.column(column)?),
            Operand::Literal(literal) => Side::Scalar(Scalar::new(literal.clone())),
        })
    }

    fn column(&mut self, column: &ColumnRef) -> Result<ArrayRef> {
        if let Some((_, _, array)) = self
            .cache
            .iter()
            .find(|(name, data_type, _)| *name == column.name && *data_type == column.as_type)
        {
            return Ok(array.clone());
        }
        let Some(array) = self.batch.column_by_name(&column.name) else {
            return Err(Error::schema_mismatch(format!(
                "Filter reads column '{}', which the batch does not have",
                column.name
            )));
        };
        let array = if array.data_type() == &column.as_type {
            array.clone()
        } else {
            arrow_cast::cast(array, &column.as_type).map_err(|err| {
                Error::schema_mismatch(format!(
                    "Filter reads column '{}' as {}, but the batch holds {}: {err}",
                    column.name,
                    column.as_type,
                    array.data_type()
                ))
            })?
        };
        self.cache
            .push((column.name.clone(), column.as_type.clone(), array.clone()));
        Ok(array)
    }
}

/// An evaluated comparison operand: a column or a broadcast literal.
enum Side {
    Array(ArrayRef),
    Scalar(Scalar<ArrayRef>),
}

impl Side {
    fn datum(&self) -> &dyn arrow_array::Datum {
        match self {
            Side::Array(array) => array,
            Side::Scalar(scalar) => scalar,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow_array::types::Int32Type;
    use arrow_array::{
        BinaryArray, Date32Array, DictionaryArray, Float32Array, Float64Array, Int32Array,
        Int64Array, TimestampMicrosecondArray, TimestampMillisecondArray, UInt8Array,
    };
    use arrow_schema::{Field, SchemaRef};

    use crate::error::ErrorCode;

    const DAY_MS: i64 = 86_400_000;
    /// 2024-01-01T00:00:00Z in milliseconds.
    const JAN1_MS: i64 = 1_704_067_200_000;

    fn schema() -> SchemaRef {
        let dict = DataType::Dictionary(Box::new(DataType::Int32), Box::new(DataType::Utf8));
        Arc::new(Schema::new(vec![
            Field::new("row", DataType::Int32, false),
            Field::new("id", DataType::Int64, true),
            Field::new("name", DataType::Utf8, true),
            Field::new("score", DataType::Float64, true),
            Field::new("ratio", DataType::Float32, true),
            Field::new("flag", DataType::Boolean, true),
            Field::new("small", DataType::Int32, true),
            Field::new("u", DataType::UInt8, true),
            Field::new("tag", dict, true),
            Field::new("ts", DataType::Timestamp(TimeUnit::Millisecond, None), true),
            Field::new(
                "tstz",
                DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())),
                true,
            ),
            Field::new("day", DataType::Date32, true),
            Field::new("bin", DataType::Binary, true),
            Field::new("my col", DataType::Int32, true),
        ]))
    }

    fn batch() -> RecordBatch {
        let ts =
            [Some(0), Some(1), Some(2), None, Some(4)].map(|d| d.map(|d| JAN1_MS + d * DAY_MS));
        let tag: DictionaryArray<Int32Type> =
            vec![Some("red"), Some("blue"), Some("red"), None, Some("green")]
                .into_iter()
                .collect();
        RecordBatch::try_new(
            schema(),
            vec![
                Arc::new(Int32Array::from(vec![0, 1, 2, 3, 4])),
                Arc::new(Int64Array::from(vec![
                    Some(1),
                    Some(2),
                    Some(3),
                    None,
                    Some(5),
                ])),
                Arc::new(StringArray::from(vec![
                    Some("alice"),
                    Some("bob"),
                    None,
                    Some("Bobby"),
                    Some("al_x"),
                ])),
                Arc::new(Float64Array::from(vec![
                    Some(1.5),
                    Some(2.0),
                    None,
                    Some(4.25),
                    Some(5.0),
                ])),
                Arc::new(Float32Array::from(vec![
                    Some(0.1),
                    Some(0.2),
                    Some(0.3),
                    None,
                    Some(0.5),
                ])),
                Arc::new(BooleanArray::from(vec![
                    Some(true),
                    Some(false),
                    None,
                    Some(true),
                    Some(false),
                ])),
                Arc::new(Int32Array::from(vec![
                    Some(10),
                    Some(20),
                    Some(30),
                    Some(40),
                    None,
                ])),
                Arc::new(UInt8Array::from(vec![1, 2, 3, 4, 5])),
                Arc::new(tag),
                Arc::new(TimestampMillisecondArray::from(ts.to_vec())),
                Arc::new(
                    TimestampMicrosecondArray::from(ts.map(|t| t.map(|t| t * 1000)).to_vec())
                        .with_timezone("UTC"),
                ),
                Arc::new(Date32Array::from(vec![19723, 19724, 19725, 19726, 19727])),
                Arc::new(BinaryArray::from(vec![
                    Some(&[1u8, 2][..]),
                    Some(b"ab"),
                    None,
                    Some(b""),
                    Some(b"abc"),
                ])),
                Arc::new(Int32Array::from(vec![
                    Some(1),
                    None,
                    Some(1),
                    Some(2),
                    None,
                ])),
            ],
        )
        .unwrap()
    }

    fn parse(sql: &str) -> Filter {
        Filter::parse(sql, &schema()).unwrap_or_else(|err| panic!("{sql}: {err}"))
    }

    /// The `row` values of the rows `sql` keeps.
    fn rows(sql: &str) -> Vec<i32> {
        let kept = parse(sql).apply(&batch()).unwrap();
        kept.column_by_name("row")
            .unwrap()
            .as_primitive::<Int32Type>()
            .values()
            .to_vec()
    }

    /// The three-valued outcome per row.
    fn outcome(sql: &str) -> Vec<Option<bool>> {
        parse(sql).evaluate(&batch()).unwrap().iter().collect()
    }

    /// The message of the error parsing `sql`, which must be INVALID_INPUT.
    fn error(sql: &str) -> String {
        let err = Filter::parse(sql, &schema()).expect_err(sql);
        assert_eq!(err.code(), ErrorCode::InvalidInput, "{sql}: {err}");
        err.message().to_string()
    }

    #[track_caller]
    fn assert_contains(message: &str, parts: &[&str]) {
        for part in parts {
            assert!(
                message.contains(part),
                "expected {part:?} in error message: {message}"
            );
        }
    }

    const T: Option<bool> = Some(true);
    const F: Option<bool> = Some(false);
    const N: Option<bool> = None;

    #[test]
    fn comparison_operators() {
        assert_eq!(outcome("id = 2"), vec![F, T, F, N, F]);
        assert_eq!(rows("id = 2"), vec![1]);
        assert_eq!(rows("id != 2"), vec![0, 2, 4]);
        assert_eq!(rows("id <> 2"), vec![0, 2, 4]);
        assert_eq!(rows("id < 2"), vec![0]);
        assert_eq!(rows("id <= 2"), vec![0, 1]);
        assert_eq!(rows("id > 2"), vec![2, 4]);
        assert_eq!(rows("id >= 2"), vec![1, 2, 4]);
        assert_eq!(rows("name = 'bob'"), vec![1]);
        assert_eq!(rows("name >= 'b'"), vec![1]);
        assert_eq!(rows("name < 'alz'"), vec![0, 3, 4]);
    }

    #[test]
    fn literal_may_come_first() {
        assert_eq!(rows("2 < id"), vec![2, 4]);
        assert_eq!(rows("'bob' = name"), vec![1]);
        assert_eq!(rows("-1 < small"), vec![0, 1, 2, 3]);
    }

    #[test]
    fn column_against_column() {
        // Int64 vs Int32, both sides nullable.
        assert_eq!(outcome("id < small"), vec![T, T, T, N, N]);
        // UInt8 vs Int64.
        assert_eq!(rows("u = id"), vec![0, 1, 2, 4]);
        // Float64 vs Int64.
        assert_eq!(rows("score > id"), vec![0]);
        // Dictionary vs plain string.
        assert_eq!(rows("tag < name"), vec![1]);
        // Timestamps of different units and timezone-awareness are refused,
        // same awareness is fine.
        assert_eq!(rows("ts = ts"), vec![0, 1, 2, 4]);
    }

    #[test]
    fn and_or_not_follow_three_valued_logic() {
        // id > 1: [F, T, T, N, T]; flag: [T, F, N, T, F]
        assert_eq!(outcome("id > 1 AND flag"), vec![F, F, N, N, F]);
        assert_eq!(outcome("id > 1 OR flag"), vec![T, T, T, T, T]);
        assert_eq!(outcome("NOT flag"), vec![F, T, N, F, T]);
        assert_eq!(outcome("NOT (id > 1)"), vec![T, F, F, N, F]);
        assert_eq!(rows("id = 1 OR id = 3 OR id = 5"), vec![0, 2, 4]);
        assert_eq!(rows("id > 1 AND id < 5 AND name IS NULL"), vec![2]);
    }

    #[test]
    fn precedence_and_parentheses() {
        // AND binds tighter than OR: a OR (b AND c).
        assert_eq!(rows("id = 1 OR id = 2 AND flag = false"), vec![0, 1]);
        assert_eq!(rows("(id = 1 OR id = 2) AND flag = false"), vec![1]);
        // NOT binds tighter than AND.
        assert_eq!(rows("NOT id = 1 AND id < 3"), vec![1]);
        assert_eq!(rows("NOT (id = 1 AND id < 3)"), vec![1, 2, 4]);
        assert_eq!(rows("((id > 1))"), vec![1, 2, 4]);
    }

    #[test]
    fn in_and_not_in() {
        assert_eq!(rows("id IN (1, 3, 7)"), vec![0, 2]);
        assert_eq!(rows("id NOT IN (1, 3)"), vec![1, 4]);
        assert_eq!(rows("name IN ('bob', 'alice', 'zed')"), vec![0, 1]);
        // A NULL in the list makes "not found" unknown.
        assert_eq!(outcome("id IN (1, NULL)"), vec![T, N, N, N, N]);
        assert_eq!(rows("id NOT IN (1, NULL)"), Vec::<i32>::new());
        // Items are coerced one by one.
        assert_eq!(rows("id IN (2.0, 3.5, 5)"), vec![1, 4]);
    }

    #[test]
    fn is_null_and_is_not_null() {
        assert_eq!(outcome("name IS NULL"), vec![F, F, T, F, F]);
        assert_eq!(rows("name IS NOT NULL"), vec![0, 1, 3, 4]);
        assert_eq!(rows("tag IS NULL"), vec![3]);
        assert_eq!(rows("flag IS NULL OR id IS NULL"), vec![2, 3]);
    }

    #[test]
    fn like_with_wildcards() {
        assert_eq!(rows("name LIKE 'b%'"), vec![1]);
        assert_eq!(rows("name LIKE '%o%'"), vec![1, 3]);
        assert_eq!(rows("name LIKE 'b_b'"), vec![1]);
        assert_eq!(rows("name LIKE '_ob%'"), vec![1, 3]);
        assert_eq!(rows("name LIKE 'al___'"), vec![0]);
        assert_eq!(outcome("name NOT LIKE 'b%'"), vec![T, F, N, T, T]);
        assert_eq!(rows("name ILIKE 'B%'"), vec![1, 3]);
        assert_eq!(rows("name NOT ILIKE 'B%'"), vec![0, 4]);
        // `_` escaped: a literal underscore.
        assert_eq!(rows(r"name LIKE 'al\_%'"), vec![4]);
        assert_eq!(rows("name LIKE 'al!_%' ESCAPE '!'"), vec![4]);
        assert_eq!(outcome("name LIKE NULL"), vec![N, N, N, N, N]);
    }

    #[test]
    fn between() {
        assert_eq!(rows("id BETWEEN 2 AND 4"), vec![1, 2]);
        assert_eq!(rows("id NOT BETWEEN 2 AND 4"), vec![0, 4]);
        assert_eq!(rows("score BETWEEN 1 AND 2"), vec![0, 1]);
        assert_eq!(rows("name BETWEEN 'b' AND 'c'"), vec![1]);
        assert_eq!(rows("id BETWEEN 1 AND 2 AND flag"), vec![0]);
    }

    #[test]
    fn boolean_columns_and_literals() {
        assert_eq!(rows("flag"), vec![0, 3]);
        assert_eq!(rows("flag = TRUE"), vec![0, 3]);
        assert_eq!(rows("flag = false"), vec![1, 4]);
        assert_eq!(rows("flag <> true"), vec![1, 4]);
        assert_eq!(rows("TRUE"), vec![0, 1, 2, 3, 4]);
        assert_eq!(rows("FALSE"), Vec::<i32>::new());
        assert_eq!(outcome("NULL"), vec![N; 5]);
        assert_eq!(rows("id > 3 OR TRUE"), vec![0, 1, 2, 3, 4]);
        assert_eq!(outcome("id = NULL"), vec![N; 5]);
    }

    #[test]
    fn identifiers_plain_quoted_and_case_insensitive() {
        assert_eq!(rows("\"my col\" = 1"), vec![0, 2]);
        assert_eq!(rows("\"id\" = 2"), vec![1]);
        assert_eq!(rows("ID = 2"), vec![1]);
        assert_contains(&error("\"ID\" = 2"), &["unknown column 'ID'"]);
    }

    #[test]
    fn numeric_literals_coerce_to_the_column_type() {
        // Integer literal vs float column.
        assert_eq!(rows("score > 2"), vec![3, 4]);
        assert_eq!(rows("score = 5"), vec![4]);
        // Fractional literal vs integer column compares as floats.
        assert_eq!(rows("id > 2.5"), vec![2, 4]);
        assert_eq!(rows("id = 2.0"), vec![1]);
        assert_eq!(rows("id < 1e1"), vec![0, 1, 2, 4]);
        // Float32 column: the literal is rounded like the stored values.
        assert_eq!(rows("ratio = 0.1"), vec![0]);
        assert_eq!(rows("ratio >= 0.3"), vec![2, 4]);
        // Negative literals and narrow columns.
        assert_eq!(rows("small > -5"), vec![0, 1, 2, 3]);
        assert_eq!(rows("u >= 4"), vec![3, 4]);
        assert_eq!(rows("u = +2"), vec![1]);
    }

    #[test]
    fn temporal_columns_take_string_literals() {
        assert_eq!(rows("ts >= '2024-01-03'"), vec![2, 4]);
        assert_eq!(rows("ts = '2024-01-02 00:00:00'"), vec![1]);
        assert_eq!(rows("ts > '2024-01-02T12:00:00'"), vec![2, 4]);
        assert_eq!(rows("ts > TIMESTAMP '2024-01-02 12:00:00'"), vec![2, 4]);
        assert_eq!(rows("ts BETWEEN '2024-01-02' AND '2024-01-04'"), vec![1, 2]);
        assert_eq!(rows("tstz < '2024-01-02T00:00:00Z'"), vec![0]);
        assert_eq!(rows("tstz = '2024-01-02T01:00:00+01:00'"), vec![1]);
        assert_eq!(rows("day = '2024-01-02'"), vec![1]);
        assert_eq!(rows("day > DATE '2024-01-03'"), vec![3, 4]);
        assert_eq!(outcome("ts IS NULL"), vec![F, F, F, T, F]);
    }

    #[test]
    fn decimal_and_offset_timezone_columns() {
        let schema = Arc::new(Schema::new(vec![
            Field::new("price", DataType::Decimal128(10, 2), true),
            Field::new(
                "at",
                DataType::Timestamp(TimeUnit::Second, Some("+01:00".into())),
                true,
            ),
        ]));
        let batch = RecordBatch::try_new(
            schema.clone(),
            vec![
                Arc::new(
                    arrow_array::Decimal128Array::from(vec![Some(150), Some(275), None])
                        .with_precision_and_scale(10, 2)
                        .unwrap(),
                ),
                // 2024-01-01T00:00:00Z, +1h, +2h.
                Arc::new(
                    arrow_array::TimestampSecondArray::from(vec![
                        1_704_067_200,
                        1_704_070_800,
                        1_704_074_400,
                    ])
                    .with_timezone("+01:00"),
                ),
            ],
        )
        .unwrap();
        let eval = |sql: &str| -> Vec<Option<bool>> {
            let filter = Filter::parse(sql, &schema).unwrap_or_else(|e| panic!("{sql}: {e}"));
            filter.evaluate(&batch).unwrap().iter().collect()
        };
        assert_eq!(eval("price = 1.5"), vec![T, F, N]);
        assert_eq!(eval("price > 2"), vec![F, T, N]);
        assert_eq!(eval("price IN (2.75, 3)"), vec![F, T, N]);
        // A literal without an offset is local time in the column's zone.
        assert_eq!(eval("at = '2024-01-01 02:00:00'"), vec![F, T, F]);
        assert_eq!(eval("at >= '2024-01-01T01:00:00Z'"), vec![F, T, T]);
    }

    #[test]
    fn dictionary_columns_compare_on_their_values() {
        assert_eq!(rows("tag = 'red'"), vec![0, 2]);
        assert_eq!(outcome("tag != 'red'"), vec![F, T, F, N, T]);
        assert_eq!(rows("tag IN ('blue', 'green')"), vec![1, 4]);
        assert_eq!(rows("tag LIKE 'r%'"), vec![0, 2]);
        assert_eq!(rows("tag > 'c'"), vec![0, 2, 4]);
    }

    #[test]
    fn binary_columns() {
        assert_eq!(rows("bin = X'0102'"), vec![0]);
        assert_eq!(rows("bin = 'ab'"), vec![1]);
        assert_eq!(rows("bin = ''"), vec![3]);
        assert_eq!(rows("bin > 'ab'"), vec![4]);
    }

    #[test]
    fn columns_lists_what_the_filter_reads() {
        let filter = parse("ID > 1 AND (name LIKE 'a%' OR tag IS NULL) AND \"my col\" IN (1, 2)");
        let columns: Vec<_> = filter.columns().into_iter().collect();
        assert_eq!(columns, vec!["id", "my col", "name", "tag"]);
        assert!(parse("TRUE").columns().is_empty());
    }

    #[test]
    fn evaluates_on_a_projection_of_the_read_columns() {
        let filter = parse("tag = 'red' AND id > 1");
        let full = batch();
        let projected = full
            .project(&[
                full.schema().index_of("id").unwrap(),
                full.schema().index_of("tag").unwrap(),
            ])
            .unwrap();
        assert_eq!(
            filter.evaluate(&projected).unwrap(),
            BooleanArray::from(vec![F, F, T, N, F])
        );
        // A decoded string column works where a dictionary was declared.
        let plain = RecordBatch::try_from_iter(vec![
            ("id", Arc::new(Int64Array::from(vec![2, 2])) as ArrayRef),
            (
                "tag",
                Arc::new(StringArray::from(vec!["red", "blue"])) as ArrayRef,
            ),
        ])
        .unwrap();
        assert_eq!(
            filter.evaluate(&plain).unwrap(),
            BooleanArray::from(vec![true, false])
        );

        let missing = full.project(&[0]).unwrap();
        let err = filter.evaluate(&missing).unwrap_err();
        assert_eq!(err.code(), ErrorCode::SchemaMismatch);
        assert_contains(err.message(), &["'tag'"]);
    }

    #[test]
    fn apply_drops_null_and_false_rows() {
        let kept = parse("flag").apply(&batch()).unwrap();
        assert_eq!(kept.num_rows(), 2);
        assert_eq!(kept.schema(), schema());
        let empty = batch().slice(0, 0);
        assert_eq!(parse("id > 1").apply(&empty).unwrap().num_rows(), 0);
        assert_eq!(parse("TRUE").evaluate(&empty).unwrap().len(), 0);
    }

    #[test]
    fn filter_keeps_its_text_and_is_cloneable() {
        let filter = parse("id > 1");
        let copy = filter.clone();
        assert_eq!(copy.sql(), "id > 1");
        assert_eq!(copy.to_string(), "id > 1");
        assert!(format!("{copy:?}").contains("Compare"));
    }

    #[test]
    fn syntax_errors_report_line_and_column() {
        assert_contains(
            &error("id >"),
            &["syntax error in filter at line 1, column 5: Expected: an expression, found: EOF"],
        );
        assert_contains(
            &error("(id > 1"),
            &["syntax error in filter at line 1, column 8: Expected: ), found: EOF"],
        );
        assert_contains(
            &error("id > 1 AND\n  name = = 'x'"),
            &["syntax error in filter at line 2, column 10: Expected: an expression, found: ="],
        );
        assert_contains(
            &error("name = 'abc"),
            &["syntax error in filter at line 1, column 8: Unterminated string literal"],
        );
        assert_contains(
            &error("id BETWEEN 1"),
            &["syntax error in filter at line 1, column 13: Expected: AND"],
        );
        assert_contains(&error(""), &["syntax error in filter at line 1, column 1"]);
    }

    #[test]
    fn trailing_garbage_is_rejected() {
        assert_contains(
            &error("id > 5 junk"),
            &["syntax error in filter at line 1, column 8: unexpected 'junk'"],
        );
        assert_contains(
            &error("id > 5; id < 3"),
            &["syntax error in filter at line 1, column 7: unexpected ';'"],
        );
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

    #[test]
    fn type_mismatches_are_reported() {
        assert_contains(
            &error("id = 'abc'"),
            &[
                "cannot compare column 'id' of type Int64 with string literal 'abc'",
                "at 'id = 'abc''",
                "line 1, column 6",
            ],
        );
        assert_contains(
            &error("name > 5"),
            &["cannot compare column 'name' of type Utf8 with number literal 5"],
        );
        assert_contains(&error("flag = 1"), &["column 'flag' of type Boolean"]);
        assert_contains(&error("id = TRUE"), &["with boolean literal true"]);
        assert_contains(
            &error("u > 300"),
            &["integer literal 300 is out of range for column 'u' of type UInt8"],
        );
        assert_contains(&error("u > -1"), &["integer literal -1 is out of range"]);
        assert_contains(
            &error("ts = 'yesterday'"),
            &[
                "cannot convert 'yesterday' to Timestamp(ms) for column 'ts' in filter at \
                 'ts = 'yesterday'' (line 1, column 6): ",
                "Error parsing timestamp from 'yesterday'",
            ],
        );
        assert_contains(
            &error("id = name"),
            &["cannot compare column 'id' of type Int64 with column 'name' of type Utf8"],
        );
        assert_contains(&error("ts = tstz"), &["cannot compare column 'ts'"]);
        assert_contains(&error("id LIKE '1%'"), &["LIKE needs a string column"]);
        assert_contains(
            &error("name LIKE name"),
            &["the pattern of LIKE must be a string literal"],
        );
        assert_contains(&error("name LIKE 'a' ESCAPE 'ab'"), &["single-character"]);
        assert_contains(&error("bin = X'123'"), &["invalid hexadecimal literal"]);
    }

    #[test]
    fn oversized_and_overnested_filters_are_rejected() {
        let long = vec!["id = 1"; 600].join(" OR ");
        assert_contains(&error(&long), &["filter is too complex", "use IN"]);
        let within = vec!["id = 1"; 500].join(" OR ");
        assert_eq!(rows(&within), vec![0]);
        let deep = format!("{}id = 1{}", "(".repeat(200), ")".repeat(200));
        assert_contains(
            &error(&deep),
            &["syntax error in filter: parentheses nest too deeply"],
        );
        // Long IN lists are fine, and quoted shortened in errors.
        let list = (0..20_000).map(|i| i.to_string()).collect::<Vec<_>>();
        let sql = format!("id IN ({})", list.join(", "));
        assert_eq!(Filter::parse(&sql, &schema()).unwrap().columns().len(), 1);
        let message = error(&format!("name IN ({})", list.join(", ")));
        assert_contains(
            &message,
            &[
                "cannot compare column 'name'",
                "48, 49, 5…' (line 1, column 10)",
            ],
        );
        assert!(message.len() < 500, "{message}");
    }

    #[test]
    fn long_chains_stay_within_the_stack() {
        // The largest chains the token cap admits, with an error that has to
        // print the whole chain.
        let sql = format!("id = {}", vec!["1"; MAX_FILTER_TOKENS - 1].join("+"));
        assert_contains(&error(&sql), &["unsupported arithmetic"]);
        let sql = format!(
            "id {}",
            vec!["IS NULL"; MAX_FILTER_TOKENS / 2 - 1].join(" ")
        );
        assert_contains(&error(&sql), &["unsupported condition as a value"]);
        let sql = vec!["flag"; MAX_FILTER_TOKENS].join(" OR ");
        assert_eq!(rows(&sql), vec![0, 3]);
    }

    #[test]
    fn may_match_rules_out_only_ranges_that_cannot_satisfy_the_filter() {
        let schema = schema();
        // id in [10, 20], name in ['b', 'd'].
        let range = |column: &str| -> Option<ColumnRange> {
            match column {
                "id" => Some(ColumnRange {
                    min: Arc::new(Int64Array::from(vec![10])),
                    max: Arc::new(Int64Array::from(vec![20])),
                }),
                "name" => Some(ColumnRange {
                    min: Arc::new(StringArray::from(vec!["b"])),
                    max: Arc::new(StringArray::from(vec!["d"])),
                }),
                _ => None,
            }
        };
        let may = |sql: &str| Filter::parse(sql, &schema).unwrap().may_match(&range);
        for sql in [
            "id = 15",
            "id >= 20",
            "id <= 10",
            "21 > id",
            "id != 15",
            "id IN (1, 2, 12)",
            "id BETWEEN 0 AND 10",
            "id < 5 OR name = 'c'",
            "score > 1",
            "NOT (id = 15)",
            "name LIKE 'z%'",
        ] {
            assert!(may(sql), "{sql} may match");
        }
        for sql in [
            "id = 21",
            "id > 20",
            "id < 10",
            "5 >= id",
            "id IN (1, 2, 30)",
            "id BETWEEN 21 AND 30",
            "id < 5 AND score > 1",
            "name = 'a' OR name > 'e'",
            "FALSE",
            "NULL",
        ] {
            assert!(!may(sql), "{sql} cannot match");
        }
        let constant = ColumnRange {
            min: Arc::new(Int64Array::from(vec![7])),
            max: Arc::new(Int64Array::from(vec![7])),
        };
        let only_sevens = |c: &str| {
            (c == "id").then(|| ColumnRange {
                min: constant.min.clone(),
                max: constant.max.clone(),
            })
        };
        assert!(!Filter::parse("id != 7", &schema)
            .unwrap()
            .may_match(&only_sevens));
    }
}
