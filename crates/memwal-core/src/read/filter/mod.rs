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
//!
//! The engine is split by stage, each run once per filter except `eval`:
//! `parse` (text to sqlparser's tree, located errors), `bind` (names to
//! columns, the checked tree of `Node`), `coerce` (the type rules `bind`
//! applies), `eval` (one batch at a time) and `prune` (row-group statistics).
//! docs/FILTERS.md describes the language and why it is not DataFusion's.

mod bind;
mod coerce;
mod eval;
#[cfg(test)]
mod fixtures;
mod parse;
mod prune;

use std::collections::BTreeSet;
use std::fmt;

use arrow_array::{ArrayRef, BooleanArray, RecordBatch};
use arrow_cast::cast::CastOptions;
use arrow_schema::{DataType, Schema};
use sqlparser::ast::BinaryOperator;

use crate::error::Result;

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
        let expr = parse::parse_expr(sql)?;
        let mut binder = bind::Binder {
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
        let mut eval = eval::Evaluator {
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
        prune::may_match(&self.root, range)
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

fn strict() -> CastOptions<'static> {
    CastOptions {
        safe: false,
        ..Default::default()
    }
}

#[cfg(test)]
mod tests {
    use super::fixtures::*;

    #[test]
    fn columns_lists_what_the_filter_reads() {
        let filter = parse("ID > 1 AND (name LIKE 'a%' OR tag IS NULL) AND \"my col\" IN (1, 2)");
        let columns: Vec<_> = filter.columns().into_iter().collect();
        assert_eq!(columns, vec!["id", "my col", "name", "tag"]);
        assert!(parse("TRUE").columns().is_empty());
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
}
