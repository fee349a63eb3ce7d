//! Which schemas the flush can write, checked when a writer opens.
//!
//! A type the Parquet encoder cannot write would let puts be acknowledged
//! and then fail every flush (or panic in it), stalling the writer for
//! good; a type Parquet stores differently from what was put would change
//! rows between the WAL and the generation. WAL-only writers are checked
//! too: Lance readers flush their WALs later.
//!
//! The list below is what parquet-rs 60's `ArrowWriter` was found to do
//! with each Arrow type (a probe over every type; see docs/RELIABILITY.md);
//! on top of it, opening the encoder on the schema catches whatever it
//! refuses at schema level (empty structs, invalid decimal scales, ...).

use std::io::sink;

use arrow_array::types::{Decimal128Type, Decimal256Type, Decimal32Type, Decimal64Type};
use arrow_schema::{DataType, Field, IntervalUnit, SchemaRef};
use parquet::arrow::ArrowWriter;

use crate::error::{Error, Result};

/// Refuse a writer schema whose rows the flush could not write unchanged.
pub fn check_schema(schema: &SchemaRef) -> Result<()> {
    for field in schema.fields() {
        check_field(field, field.name(), true)?;
    }
    let props = super::parquet_file::writer_properties(schema, super::FlushCompression::None)
        .map_err(|e| refuse_schema(e.message()))?;
    ArrowWriter::try_new(sink(), schema.clone(), Some(props))
        .map(drop)
        .map_err(|e| refuse_schema(&e.to_string()))
}

fn refuse_schema(reason: &str) -> Error {
    Error::invalid_input(format!(
        "The flush cannot write this schema to Parquet: {reason}"
    ))
}

fn refuse(path: &str, field: &Field, reason: &str) -> Error {
    Error::invalid_input(format!("Column '{path}' ({}): {reason}", field.data_type()))
}

/// `required` says whether every field from the root down to `field` is
/// non-nullable, so that each row must hold a value here.
fn check_field(field: &Field, path: &str, required: bool) -> Result<()> {
    let required = required && !field.is_nullable();
    let nested = |child: &Field, required: bool| {
        check_field(child, &format!("{path}.{}", child.name()), required)
    };
    match field.data_type() {
        DataType::Null if required => Err(refuse(
            path,
            field,
            "a non-nullable Null field can never hold a row",
        )),
        DataType::Union(_, _) => Err(refuse(path, field, "Parquet cannot store unions")),
        DataType::RunEndEncoded(_, _) => Err(refuse(
            path,
            field,
            "Parquet stores run-end encoded arrays as their value type, so they would read back changed",
        )),
        DataType::Interval(IntervalUnit::MonthDayNano) => Err(refuse(
            path,
            field,
            "the Parquet writer cannot encode month-day-nanosecond intervals",
        )),
        DataType::FixedSizeBinary(0) => Err(refuse(
            path,
            field,
            "the Parquet writer cannot encode 0-byte fixed-size binaries",
        )),
        DataType::FixedSizeList(_, 0) => Err(refuse(
            path,
            field,
            "Parquet loses the rows of 0-element fixed-size lists",
        )),
        DataType::Struct(fields) if fields.is_empty() => Err(refuse(
            path,
            field,
            "Parquet cannot store a struct without fields",
        )),
        DataType::Decimal32(p, s) => decimal::<Decimal32Type>(path, field, *p, *s),
        DataType::Decimal64(p, s) => decimal::<Decimal64Type>(path, field, *p, *s),
        DataType::Decimal128(p, s) => decimal::<Decimal128Type>(path, field, *p, *s),
        DataType::Decimal256(p, s) => decimal::<Decimal256Type>(path, field, *p, *s),
        DataType::Struct(fields) => fields.iter().try_for_each(|f| nested(f, required)),
        DataType::FixedSizeList(item, _) => nested(item, required),
        // A list may be empty, a map too: their items are never required.
        DataType::List(item)
        | DataType::LargeList(item)
        | DataType::ListView(item)
        | DataType::LargeListView(item)
        | DataType::Map(item, _) => nested(item, false),
        DataType::Dictionary(_, values) => {
            nested(&Field::new("values", values.as_ref().clone(), true), false)
        }
        _ => Ok(()),
    }
}

/// Precision and scale Arrow allows for the width; Parquet needs the
/// scale non-negative.
fn decimal<T: arrow_array::types::DecimalType>(
    path: &str,
    field: &Field,
    precision: u8,
    scale: i8,
) -> Result<()> {
    arrow_array::types::validate_decimal_precision_and_scale::<T>(precision, scale)
        .map_err(|e| refuse(path, field, &e.to_string()))?;
    if scale < 0 {
        return Err(refuse(path, field, "Parquet cannot store a negative scale"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ErrorCode;
    use arrow_schema::{Fields, Schema, UnionFields, UnionMode};
    use std::sync::Arc;

    fn one(field: Field) -> SchemaRef {
        Arc::new(Schema::new(vec![field]))
    }

    fn structure(child: Field, nullable: bool) -> Field {
        Field::new("s", DataType::Struct(Fields::from(vec![child])), nullable)
    }

    #[test]
    fn every_type_the_flush_cannot_write_is_refused_naming_the_column() {
        let union = DataType::Union(
            UnionFields::try_new(vec![0], vec![Field::new("a", DataType::Int32, true)]).unwrap(),
            UnionMode::Sparse,
        );
        let mdn = DataType::Interval(IntervalUnit::MonthDayNano);
        let list = |item: Field| DataType::List(Arc::new(item));
        let cases = vec![
            (
                Field::new("e", DataType::Struct(Fields::empty()), true),
                "'e'",
            ),
            (
                structure(
                    Field::new("e", DataType::Struct(Fields::empty()), true),
                    true,
                ),
                "'s.e'",
            ),
            (Field::new("n", DataType::Null, false), "'n'"),
            (
                structure(Field::new("n", DataType::Null, false), false),
                "'s.n'",
            ),
            (Field::new("u", union.clone(), true), "'u'"),
            (
                Field::new("l", list(Field::new("item", union, true)), true),
                "'l.item'",
            ),
            (Field::new("i", mdn.clone(), true), "'i'"),
            (structure(Field::new("i", mdn, true), true), "'s.i'"),
            (Field::new("b", DataType::FixedSizeBinary(0), true), "'b'"),
            (
                Field::new(
                    "v",
                    DataType::FixedSizeList(Arc::new(Field::new("item", DataType::Int32, true)), 0),
                    true,
                ),
                "'v'",
            ),
            (
                Field::new(
                    "r",
                    DataType::RunEndEncoded(
                        Arc::new(Field::new("run_ends", DataType::Int32, false)),
                        Arc::new(Field::new("values", DataType::Int32, true)),
                    ),
                    true,
                ),
                "'r'",
            ),
            (Field::new("d", DataType::Decimal128(9, -2), true), "'d'"),
            (Field::new("d", DataType::Decimal128(40, 2), true), "'d'"),
            (Field::new("d", DataType::Decimal128(0, 0), true), "'d'"),
            (Field::new("d", DataType::Decimal32(5, 7), true), "'d'"),
            (
                Field::new(
                    "dict",
                    DataType::Dictionary(
                        Box::new(DataType::Int32),
                        Box::new(DataType::Interval(IntervalUnit::MonthDayNano)),
                    ),
                    true,
                ),
                "'dict.values'",
            ),
        ];
        for (field, phrase) in cases {
            let described = format!("{field:?}");
            let err = check_schema(&one(field)).unwrap_err();
            assert_eq!(err.code(), ErrorCode::InvalidInput, "{described}");
            assert!(err.message().contains(phrase), "{err} lacks {phrase}");
        }
    }

    #[test]
    fn types_the_flush_writes_are_accepted() {
        let list = |item: Field| DataType::List(Arc::new(item));
        for field in [
            Field::new("n", DataType::Null, true),
            // Lists, and structs whose slots may be null, can hold no Null value.
            Field::new("l", list(Field::new("item", DataType::Null, false)), false),
            structure(Field::new("n", DataType::Null, false), true),
            Field::new("i", DataType::Interval(IntervalUnit::YearMonth), true),
            Field::new("i", DataType::Interval(IntervalUnit::DayTime), true),
            Field::new("d", DataType::Decimal128(38, 2), false),
            Field::new("d", DataType::Decimal256(76, 0), true),
            Field::new("d", DataType::Decimal32(9, 9), true),
            Field::new("b", DataType::FixedSizeBinary(16), true),
            Field::new(
                "dict",
                DataType::Dictionary(Box::new(DataType::Int8), Box::new(DataType::Utf8)),
                false,
            ),
        ] {
            let described = format!("{field:?}");
            check_schema(&one(field)).unwrap_or_else(|e| panic!("{described}: {e}"));
        }
    }
}
