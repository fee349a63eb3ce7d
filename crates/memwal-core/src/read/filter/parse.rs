//! Parsing a filter: sqlparser's tokenizer and expression parser under a
//! complexity cap, and the error messages that point into the filter text
//! (syntax errors by line and column, later errors by fragment).

use std::fmt;

use sqlparser::ast::{Expr, Spanned};
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

pub(super) fn parse_expr(sql: &str) -> Result<Expr> {
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
pub(super) fn position(location: Location) -> String {
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

/// At most this many characters of a fragment are quoted in an error.
const MAX_FRAGMENT_CHARS: usize = 200;

/// `expr` as SQL text for an error message, shortened when long.
pub(super) fn fragment(expr: &Expr) -> String {
    let mut text = expr.to_string();
    if let Some((cut, _)) = text.char_indices().nth(MAX_FRAGMENT_CHARS) {
        text.truncate(cut);
        text.push('…');
    }
    text
}

/// An error about `context` (a fragment of the filter), located at `span`.
pub(super) fn semantic(message: impl fmt::Display, context: &Expr, span: Span) -> Error {
    Error::invalid_input(format!(
        "{message} in filter at '{}'{}",
        fragment(context),
        position(span.start)
    ))
}

/// [`semantic`] followed by the underlying cause.
pub(super) fn semantic_because(
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

pub(super) fn not_boolean(expr: &Expr) -> Error {
    semantic(
        "expected a boolean condition (a comparison, IN, LIKE, IS NULL, BETWEEN \
         or a boolean column)",
        expr,
        expr.span(),
    )
}

pub(super) fn unsupported(expr: &Expr) -> Error {
    unsupported_in(expr, expr)
}

pub(super) fn unsupported_in(expr: &Expr, context: &Expr) -> Error {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::read::filter::fixtures::*;

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
}
