//! Puts built the way apache-arrow's builders build them (nullable fields,
//! dictionary-encoded strings, the other string width), through a keyed
//! MemTable writer: stored and read back in the writer's types from the
//! MemTable, the Parquet flush and a shard reader; real nulls refused.

mod common;

use std::collections::HashMap;
use std::sync::Arc;

use arrow_array::cast::AsArray;
use arrow_array::types::Int32Type;
use arrow_array::{
    ArrayRef, DictionaryArray, Int32Array, Int64Array, LargeStringArray, RecordBatch, StringArray,
    StructArray,
};
use arrow_schema::{DataType, Field, Fields, Schema, SchemaRef};
use common::*;
use memwal_core::read::scan::ScanRequest;
use memwal_core::read::shard_reader::ShardReader;
use memwal_core::ErrorCode;

fn point(nullable: bool) -> DataType {
    DataType::Struct(Fields::from(vec![Field::new(
        "x",
        DataType::Int64,
        nullable,
    )]))
}

/// A Lance-style schema: a non-nullable primary key, plain strings, and a
/// non-nullable child in a struct.
fn writer_schema() -> SchemaRef {
    let key = HashMap::from([(
        "lance-schema:unenforced-primary-key".to_string(),
        "true".to_string(),
    )]);
    Arc::new(Schema::new(vec![
        Field::new("id", DataType::Int64, false).with_metadata(key),
        Field::new("name", DataType::Utf8, true),
        Field::new("p", point(false), true),
    ]))
}

/// Rows as a builder makes them: everything nullable, names either
/// dictionary-encoded or LargeUtf8.
fn built(ids: Vec<Option<i64>>, names: ArrayRef) -> RecordBatch {
    let xs: ArrayRef = Arc::new(Int64Array::from(ids.clone()));
    let DataType::Struct(fields) = point(true) else {
        unreachable!()
    };
    let points: ArrayRef = Arc::new(StructArray::try_new(fields, vec![xs], None).unwrap());
    let schema = Schema::new(vec![
        Field::new("id", DataType::Int64, true),
        Field::new("name", names.data_type().clone(), true),
        Field::new("p", point(true), true),
    ]);
    let ids: ArrayRef = Arc::new(Int64Array::from(ids));
    RecordBatch::try_new(Arc::new(schema), vec![ids, names, points]).unwrap()
}

fn dictionary(keys: Vec<i32>, values: Vec<&str>) -> ArrayRef {
    let values: ArrayRef = Arc::new(StringArray::from(values));
    Arc::new(DictionaryArray::<Int32Type>::try_new(Int32Array::from(keys), values).unwrap())
}

/// `(id, name)` of every row, checking each batch has the writer's types.
fn rows(batches: &[RecordBatch]) -> Vec<(i64, String)> {
    let want: Vec<_> = writer_schema()
        .fields()
        .iter()
        .map(|f| (f.name().clone(), f.data_type().clone(), f.is_nullable()))
        .collect();
    let mut out = Vec::new();
    for batch in batches {
        let got: Vec<_> = batch
            .schema()
            .fields()
            .iter()
            .filter(|f| f.name() != "_tombstone")
            .map(|f| (f.name().clone(), f.data_type().clone(), f.is_nullable()))
            .collect();
        assert_eq!(got, want);
        let ids = batch
            .column(0)
            .as_primitive::<arrow_array::types::Int64Type>();
        let names = batch.column(1).as_string::<i32>();
        out.extend((0..batch.num_rows()).map(|i| (ids.value(i), names.value(i).to_string())));
    }
    out
}

#[tokio::test]
async fn builder_shaped_puts_are_stored_and_read_back_in_the_writers_types() {
    let root = test_root("user-built");
    let writer = open_with_schema(&root, None, writer_schema(), memtable()).await;
    let shard = writer.shard_id();
    writer
        .put(vec![
            built(
                vec![Some(1), Some(2)],
                dictionary(vec![1, 0], vec!["a", "b"]),
            ),
            built(
                vec![Some(3)],
                Arc::new(LargeStringArray::from(vec!["c"])) as ArrayRef,
            ),
        ])
        .await
        .unwrap();
    let expected = vec![
        (1, "b".to_string()),
        (2, "a".to_string()),
        (3, "c".to_string()),
    ];
    let (_, scanned) = writer.scan(&ScanRequest::default()).unwrap();
    assert_eq!(rows(&scanned), expected);

    writer.force_seal_active().await.unwrap();
    writer.wait_for_flush_drain().await.unwrap();
    writer.close().await.unwrap();
    assert_eq!(rows(&flushed_rows(&root, shard).await), expected);
    let reader = ShardReader::open(root.clone(), shard).await.unwrap();
    let (_, read) = reader.scan(&ScanRequest::default()).await.unwrap();
    assert_eq!(rows(&read), expected);
}

#[tokio::test]
async fn real_nulls_under_non_nullable_fields_are_refused_and_nothing_is_written() {
    let root = test_root("user-built-nulls");
    let writer = open_with_schema(&root, None, writer_schema(), memtable()).await;
    let cases = [
        (
            built(vec![Some(1), None], dictionary(vec![0, 0], vec!["a"])),
            "column 'id' at row 1 is null",
        ),
        (
            // The key is fine; the struct's non-nullable child is not.
            {
                let b = built(vec![Some(1)], dictionary(vec![0], vec!["a"]));
                let DataType::Struct(fields) = point(true) else {
                    unreachable!()
                };
                let x: ArrayRef = Arc::new(Int64Array::from(vec![None]));
                let p: ArrayRef = Arc::new(StructArray::try_new(fields, vec![x], None).unwrap());
                RecordBatch::try_new(
                    b.schema(),
                    vec![b.column(0).clone(), b.column(1).clone(), p],
                )
                .unwrap()
            },
            "column 'p.x' at row 0 is null",
        ),
    ];
    for (batch, phrase) in cases {
        let err = writer.put(vec![batch]).await.unwrap_err();
        assert_eq!(err.code(), ErrorCode::SchemaMismatch, "{err}");
        assert!(err.message().contains(phrase), "{err} lacks {phrase}");
        assert_eq!(err.shard_id(), Some(writer.shard_id().to_string().as_str()));
    }
    assert_eq!(writer.wal_stats().entries_written, 0);
    writer.close().await.unwrap();
}
