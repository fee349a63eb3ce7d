//! Pruning: deciding from a row group's min/max statistics that no row in it
//! can make the filter TRUE, so the reader may skip it. Only `column op
//! literal` comparisons under AND/OR and constant conditions prune; every
//! other node answers "may match".

use arrow_array::{Array, ArrayRef, BooleanArray};
use arrow_cast::cast::cast_with_options;

use super::{strict, CmpOp, ColumnRange, ColumnRef, Node, Operand};

pub(super) fn may_match(node: &Node, range: &dyn Fn(&str) -> Option<ColumnRange>) -> bool {
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

#[cfg(test)]
mod tests {
    use crate::read::filter::fixtures::*;

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
