//! The schema, batch and helpers the filter tests share: one batch with a
//! column of every type the filter language compares, NULLs included. The
//! imports are re-exported as the tests' prelude.

pub(super) use std::sync::Arc;

pub(super) use arrow_array::cast::AsArray;
pub(super) use arrow_array::{ArrayRef, BooleanArray, RecordBatch, StringArray};
pub(super) use arrow_schema::{DataType, Schema, TimeUnit};

pub(super) use super::{ColumnRange, Filter};
pub(super) use arrow_array::types::Int32Type;
pub(super) use arrow_array::{
    BinaryArray, Date32Array, DictionaryArray, Float32Array, Float64Array, Int32Array, Int64Array,
    TimestampMicrosecondArray, TimestampMillisecondArray, UInt8Array,
};
pub(super) use arrow_schema::{Field, SchemaRef};

pub(super) use crate::error::ErrorCode;

const DAY_MS: i64 = 86_400_000;
/// 2024-01-01T00:00:00Z in milliseconds.
const JAN1_MS: i64 = 1_704_067_200_000;

pub(super) fn schema() -> SchemaRef {
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

pub(super) fn batch() -> RecordBatch {
    let ts = [Some(0), Some(1), Some(2), None, Some(4)].map(|d| d.map(|d| JAN1_MS + d * DAY_MS));
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

pub(super) fn parse(sql: &str) -> Filter {
    Filter::parse(sql, &schema()).unwrap_or_else(|err| panic!("{sql}: {err}"))
}

/// The `row` values of the rows `sql` keeps.
pub(super) fn rows(sql: &str) -> Vec<i32> {
    let kept = parse(sql).apply(&batch()).unwrap();
    kept.column_by_name("row")
        .unwrap()
        .as_primitive::<Int32Type>()
        .values()
        .to_vec()
}

/// The three-valued outcome per row.
pub(super) fn outcome(sql: &str) -> Vec<Option<bool>> {
    parse(sql).evaluate(&batch()).unwrap().iter().collect()
}

/// The message of the error parsing `sql`, which must be INVALID_INPUT.
pub(super) fn error(sql: &str) -> String {
    let err = Filter::parse(sql, &schema()).expect_err(sql);
    assert_eq!(err.code(), ErrorCode::InvalidInput, "{sql}: {err}");
    err.message().to_string()
}

#[track_caller]
pub(super) fn assert_contains(message: &str, parts: &[&str]) {
    for part in parts {
        assert!(
            message.contains(part),
            "expected {part:?} in error message: {message}"
        );
    }
}

pub(super) const T: Option<bool> = Some(true);
pub(super) const F: Option<bool> = Some(false);
pub(super) const N: Option<bool> = None;
