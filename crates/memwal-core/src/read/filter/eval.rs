//! Evaluation of the checked tree over one record batch with the arrow-rs
//! kernels. NULL follows SQL three-valued logic: comparisons with NULL are
//! NULL, AND/OR use the Kleene kernels, NOT keeps NULL.

use arrow_array::cast::AsArray;
use arrow_array::{ArrayRef, BooleanArray, RecordBatch, Scalar};
use arrow_schema::DataType;

use super::{CmpOp, ColumnRef, Node, Operand};
use crate::error::{Error, ErrorCode, Result};

pub(super) struct Evaluator<'b> {
    pub(super) batch: &'b RecordBatch,
    /// Columns already read (and cast), by name and type: an `IN` list
    /// compares the same column once per item.
    pub(super) cache: Vec<(String, DataType, ArrayRef)>,
}

impl Evaluator<'_> {
    pub(super) fn node(&mut self, node: &Node) -> Result<BooleanArray> {
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
                let matched = match (case_insensitive, negated) {
                    (false, false) => arrow_string::like::like(&values, &pattern),
                    (false, true) => arrow_string::like::nlike(&values, &pattern),
                    (true, false) => arrow_string::like::ilike(&values, &pattern),
                    (true, true) => arrow_string::like::nilike(&values, &pattern),
                };
                // Types were checked when the filter was bound; what fails
                // here is the caller's pattern (e.g. past the regex size limit).
                matched.map_err(|e| {
                    Error::caused_by(
                        ErrorCode::InvalidInput,
                        "The LIKE pattern cannot be matched",
                        e,
                    )
                })?
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
    use crate::read::filter::fixtures::*;

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
    fn a_like_pattern_past_the_regex_size_limit_is_the_callers_invalid_input() {
        let pattern = "_".repeat(200_000);
        let filter = parse(&format!("name LIKE '{pattern}'"));
        let err = filter.evaluate(&batch()).unwrap_err();
        assert_eq!(err.code(), crate::error::ErrorCode::InvalidInput, "{err}");
        assert!(err.message().contains("LIKE pattern"), "{err}");
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
}
