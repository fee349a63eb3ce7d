//! Checking put batches against the writer schema.

use arrow_array::RecordBatch;
use arrow_schema::{Field, Schema, SchemaRef};

use crate::error::{Error, Result};

fn describe(field: &Field) -> String {
    format!(
        "'{}' {}{}",
        field.name(),
        field.data_type(),
        if field.is_nullable() {
            " (nullable)"
        } else {
            " (non-nullable)"
        }
    )
}

/// Check every batch against `schema` (names, types, nullability) and
/// relabel it with the writer schema so field and schema metadata are
/// the writer's. The error names the first difference.
pub fn conform_batches(schema: &SchemaRef, batches: Vec<RecordBatch>) -> Result<Vec<RecordBatch>> {
    if batches.is_empty() {
        return Err(Error::invalid_input("Cannot write empty batch list"));
    }
    batches
        .into_iter()
        .enumerate()
        .map(|(i, batch)| conform_batch(schema, i, batch))
        .collect()
}

fn conform_batch(schema: &SchemaRef, index: usize, batch: RecordBatch) -> Result<RecordBatch> {
    if batch.num_rows() == 0 {
        return Err(Error::invalid_input(format!("Batch {index} is empty")));
    }
    if let Some(difference) = first_difference(schema, &batch.schema()) {
        return Err(Error::schema_mismatch(format!(
            "Batch {index} {difference}"
        )));
    }
    relabel(schema, index, batch)
}

/// How `got` differs from `want` (names, types, nullability; metadata
/// aside), worded to follow "Batch 3" or "The WAL entry at 7"; `None` if
/// rows of `got` fit `want`. A non-nullable field fits a nullable one, not
/// the reverse.
pub fn first_difference(want: &Schema, got: &Schema) -> Option<String> {
    let expected = want.fields();
    for (position, want) in expected.iter().enumerate() {
        let Some(have) = got.fields().get(position) else {
            return Some(format!("is missing field {position} {}", describe(want)));
        };
        let nullability_ok = want.is_nullable() || !have.is_nullable();
        if have.name() != want.name() || have.data_type() != want.data_type() || !nullability_ok {
            return Some(format!(
                "field {position}: expected {}, got {}",
                describe(want),
                describe(have)
            ));
        }
    }
    got.fields()
        .get(expected.len())
        .map(|extra| format!("has an extra field {} {}", expected.len(), describe(extra)))
}

fn relabel(schema: &SchemaRef, index: usize, batch: RecordBatch) -> Result<RecordBatch> {
    RecordBatch::try_new(schema.clone(), batch.columns().to_vec())
        .map_err(|e| Error::schema_mismatch(format!("Batch {index}: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ErrorCode;
    use arrow_array::{Int32Array, Int64Array, StringArray};
    use arrow_schema::DataType;
    use std::collections::HashMap;
    use std::sync::Arc;

    fn writer_schema() -> SchemaRef {
        Arc::new(Schema::new_with_metadata(
            vec![
                Field::new("id", DataType::Int64, false)
                    .with_metadata(HashMap::from([("k".to_string(), "v".to_string())])),
                Field::new("name", DataType::Utf8, true),
            ],
            HashMap::from([("owner".to_string(), "writer".to_string())]),
        ))
    }

    fn batch_with(fields: Vec<Field>, columns: Vec<arrow_array::ArrayRef>) -> RecordBatch {
        RecordBatch::try_new(Arc::new(Schema::new(fields)), columns).unwrap()
    }

    #[test]
    fn matching_batches_take_the_writer_metadata() {
        let b = batch_with(
            vec![
                Field::new("id", DataType::Int64, false),
                Field::new("name", DataType::Utf8, true),
            ],
            vec![
                Arc::new(Int64Array::from(vec![1])),
                Arc::new(StringArray::from(vec!["a"])),
            ],
        );
        let out = conform_batches(&writer_schema(), vec![b]).unwrap();
        assert_eq!(out[0].schema(), writer_schema());
    }

    #[test]
    fn differences_are_named() {
        let id = || -> arrow_array::ArrayRef { Arc::new(Int64Array::from(vec![1])) };
        let name = || -> arrow_array::ArrayRef { Arc::new(StringArray::from(vec!["a"])) };
        let cases = vec![
            (
                batch_with(
                    vec![Field::new("id", DataType::Int32, false)],
                    vec![Arc::new(Int32Array::from(vec![1]))],
                ),
                "field 0: expected 'id' Int64 (non-nullable), got 'id' Int32",
            ),
            (
                batch_with(vec![Field::new("id", DataType::Int64, false)], vec![id()]),
                "missing field 1 'name'",
            ),
            (
                batch_with(
                    vec![
                        Field::new("id", DataType::Int64, false),
                        Field::new("name", DataType::Utf8, true),
                        Field::new("x", DataType::Utf8, true),
                    ],
                    vec![id(), name(), name()],
                ),
                "extra field 2 'x'",
            ),
            (
                batch_with(
                    vec![
                        Field::new("id", DataType::Int64, true),
                        Field::new("name", DataType::Utf8, true),
                    ],
                    vec![id(), name()],
                ),
                "got 'id' Int64 (nullable)",
            ),
            (
                batch_with(
                    vec![
                        Field::new("id", DataType::Int64, false),
                        Field::new("nom", DataType::Utf8, true),
                    ],
                    vec![id(), name()],
                ),
                "expected 'name' Utf8 (nullable), got 'nom'",
            ),
        ];
        for (batch, phrase) in cases {
            let err = conform_batches(&writer_schema(), vec![batch]).unwrap_err();
            assert_eq!(err.code(), ErrorCode::SchemaMismatch);
            assert!(err.message().contains(phrase), "{err} lacks {phrase}");
        }
    }

    #[test]
    fn empty_inputs_use_the_spec_wording() {
        assert_eq!(
            conform_batches(&writer_schema(), vec![])
                .unwrap_err()
                .message(),
            "Cannot write empty batch list"
        );
        let empty = RecordBatch::new_empty(writer_schema());
        let err = conform_batches(&writer_schema(), vec![empty]).unwrap_err();
        assert_eq!(
            (err.code(), err.message()),
            (ErrorCode::InvalidInput, "Batch 0 is empty")
        );
    }
}
