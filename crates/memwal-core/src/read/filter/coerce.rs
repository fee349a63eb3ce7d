//! Type coercion: which column types a filter may compare, the common type
//! of two compared columns, and how a literal becomes a one-element array of
//! the type of the column it meets.

use std::sync::Arc;

use arrow_array::cast::AsArray;
use arrow_array::types::{
    TimestampMicrosecondType, TimestampMillisecondType, TimestampNanosecondType,
    TimestampSecondType,
};
use arrow_array::{new_null_array, ArrayRef, BinaryArray, BooleanArray, StringArray};
use arrow_cast::cast::cast_with_options;
use arrow_schema::{DataType, TimeUnit, DECIMAL128_MAX_PRECISION, DECIMAL256_MAX_PRECISION};
use sqlparser::ast::{Expr, Spanned};

use super::bind::Lit;
use super::parse::{semantic, semantic_because};
use super::{strict, ColumnRef};
use crate::error::Result;

/// The type a column is compared at: dictionaries decode to their values.
pub(super) fn value_type(data_type: &DataType) -> &DataType {
    match data_type {
        DataType::Dictionary(_, values) => values,
        other => other,
    }
}

pub(super) fn is_string(data_type: &DataType) -> bool {
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
pub(super) fn comparable<'t>(
    name: &str,
    data_type: &'t DataType,
    context: &Expr,
) -> Result<&'t DataType> {
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
pub(super) fn common_type(a: &DataType, b: &DataType) -> Option<DataType> {
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
pub(super) fn coerce(
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
        Lit::Number(text) if decimal_widened(&target, text).is_some() => {
            let wide = decimal_widened(&target, text).unwrap_or(DataType::Float64);
            let array = StringArray::from(vec![text.as_str()]);
            let array = cast_with_options(&array, &wide, &strict()).map_err(cannot_convert)?;
            (wide, array)
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

/// The type a decimal column of type `target` is compared at with the number
/// `text`, when the number has more fractional digits than the column's
/// scale; `None` when the column's own type holds it.
///
/// Casting such a number to the column's type would round it (1.849 becomes
/// 1.85 at scale 2) and select the wrong rows, so the column is widened to
/// the number's scale instead, which is exact, up to the largest decimal
/// precision; past that both sides are compared as Float64.
fn decimal_widened(target: &DataType, text: &str) -> Option<DataType> {
    let (precision, scale) = match target {
        DataType::Decimal32(p, s) | DataType::Decimal64(p, s) => (*p, *s),
        DataType::Decimal128(p, s) | DataType::Decimal256(p, s) => (*p, *s),
        _ => return None,
    };
    let digits = fraction_digits(text)?;
    if digits <= i32::from(scale) {
        return None;
    }
    let wider = i32::from(precision) + digits - i32::from(scale);
    let scale = i8::try_from(digits).ok();
    Some(match (u8::try_from(wider).ok(), scale) {
        (Some(p), Some(s)) if p <= DECIMAL128_MAX_PRECISION => DataType::Decimal128(p, s),
        (Some(p), Some(s)) if p <= DECIMAL256_MAX_PRECISION => DataType::Decimal256(p, s),
        _ => DataType::Float64,
    })
}

/// The number of significant fractional digits of a number literal
/// (`1.250` has 2, `125e-4` has 4, `1.5e3` has 0), or `None` if it is not a
/// plain decimal number.
fn fraction_digits(text: &str) -> Option<i32> {
    let (mantissa, exponent) = match text.find(['e', 'E']) {
        Some(at) => (&text[..at], text[at + 1..].parse::<i32>().ok()?),
        None => (text, 0),
    };
    let fraction = mantissa.split_once('.').map_or("", |(_, f)| f);
    let digits = i32::try_from(fraction.trim_end_matches('0').len()).ok()?;
    Some(digits.saturating_sub(exponent).max(0))
}

fn is_integral(text: &str) -> bool {
    let digits = text.strip_prefix('-').unwrap_or(text);
    !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit())
}

#[cfg(test)]
mod tests {
    use crate::read::filter::fixtures::*;

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
        // Finer literals than the column's scale are not rounded to it.
        assert_eq!(eval("price = 1.499"), vec![F, F, N]);
        assert_eq!(eval("price >= 1.501"), vec![F, T, N]);
        assert_eq!(eval("price < 1.5001"), vec![T, F, N]);
        assert_eq!(eval("price = 1.5000"), vec![T, F, N]);
        assert_eq!(eval("price = 15e-1"), vec![T, F, N]);
        assert_eq!(eval("price BETWEEN 1.4999 AND 2.7501"), vec![T, T, N]);
        assert_eq!(
            eval(&format!("price < 1.{}", "5".repeat(60))),
            vec![T, F, N]
        );
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
}
