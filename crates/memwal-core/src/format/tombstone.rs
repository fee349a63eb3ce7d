//! Delete markers: the hidden `_tombstone` column of primary-keyed shards.
//!
//! A shard with a primary key stores every row with one more column than
//! the user's schema, a non-nullable boolean `_tombstone` (as Lance does):
//! `false` for put rows, `true` for rows written by a delete, which carry
//! the key and nothing else. The column travels through the WAL, the
//! MemTables and the Parquet generations; readers keep the newest row per
//! key and then drop tombstones, so the column never reaches the user.
//! Shards without a primary key store exactly the user's schema.

use std::sync::Arc;

use arrow_array::{new_null_array, Array, ArrayRef, BooleanArray, RecordBatch};
use arrow_data::ArrayData;
use arrow_schema::{DataType, Field, Schema, SchemaRef};

use crate::error::{Error, Result};
use crate::format::primary_key::primary_key_columns;

/// The hidden delete-marker column (Lance's name; Lance-era WAL entries may
/// carry it too).
pub const TOMBSTONE_COLUMN: &str = "_tombstone";

/// The schema rows are stored with: the user's, plus `_tombstone` last when
/// the schema declares a primary key.
pub fn stored_schema(user: &SchemaRef) -> SchemaRef {
    if primary_key_columns(user).is_empty() {
        return user.clone();
    }
    let mut fields: Vec<Arc<Field>> = user.fields().iter().cloned().collect();
    fields.push(Arc::new(Field::new(
        TOMBSTONE_COLUMN,
        DataType::Boolean,
        false,
    )));
    Arc::new(Schema::new_with_metadata(fields, user.metadata().clone()))
}

/// Whether `stored` carries the marker column (last, by construction).
pub fn has_marker(stored: &Schema) -> bool {
    stored
        .fields()
        .last()
        .is_some_and(|f| f.name() == TOMBSTONE_COLUMN)
}

fn constant(value: bool, rows: usize) -> ArrayRef {
    Arc::new(BooleanArray::from(vec![value; rows]))
}

/// A put batch (already conformed to the user schema) as stored: with a
/// `_tombstone = false` column appended when `stored` has one.
pub fn as_live_rows(stored: &SchemaRef, batch: RecordBatch) -> Result<RecordBatch> {
    if !has_marker(stored) {
        return Ok(batch);
    }
    let mut columns = batch.columns().to_vec();
    columns.push(constant(false, batch.num_rows()));
    Ok(RecordBatch::try_new(stored.clone(), columns)?)
}

/// Bring WAL rows to the stored layout. Entries written before deletes
/// existed (or by a writer without the marker) lack the column: their rows
/// are all live. Entries from a keyed writer (Lance adds the column even
/// without a key) carry it: on a shard without a key it is dropped when no
/// row is a tombstone, and refused otherwise, since only a key can say what
/// a delete removes.
pub fn backfill(stored: &SchemaRef, batch: RecordBatch) -> Result<RecordBatch> {
    let columns = batch.num_columns();
    let wanted = stored.fields().len();
    if has_marker(stored) && columns + 1 == wanted && !has_marker(&batch.schema()) {
        let mut columns = batch.columns().to_vec();
        columns.push(constant(false, batch.num_rows()));
        return Ok(RecordBatch::try_new(stored.clone(), columns)?);
    }
    if !has_marker(stored) && columns == wanted + 1 && has_marker(&batch.schema()) {
        let marker = batch.column(columns - 1);
        let marker = marker.as_any().downcast_ref::<BooleanArray>();
        if marker.is_some_and(|m| m.true_count() > 0) {
            return Err(Error::schema_mismatch(
                "WAL rows delete keys (_tombstone = true), but the writer schema has no primary key",
            ));
        }
        return Ok(RecordBatch::try_new(
            stored.clone(),
            batch.columns()[..wanted].to_vec(),
        )?);
    }
    Ok(batch)
}

/// A column of `rows` placeholders for a non-key field of a delete row:
/// nulls where the field allows them, zeroed values (0, empty string or
/// list, false) where it does not.
fn placeholder(field: &Field, rows: usize) -> Result<ArrayRef> {
    let nulls = new_null_array(field.data_type(), rows);
    if field.is_nullable() {
        return Ok(nulls);
    }
    if matches!(field.data_type(), DataType::Dictionary(_, _)) {
        return Err(Error::invalid_input(format!(
            "Cannot delete from a shard whose non-nullable field '{}' is dictionary-encoded",
            field.name()
        )));
    }
    Ok(arrow_array::make_array(zeroed(nulls.to_data())?))
}

/// An all-null `data` as valid default values: the null array's buffers are
/// zeroed, so dropping its validity bitmap (and that of every non-nullable
/// child, at any depth) leaves zeroes, empty strings and empty lists that
/// the WAL decoder accepts.
fn zeroed(data: ArrayData) -> Result<ArrayData> {
    let children = match data.data_type() {
        DataType::Struct(fields) => fields
            .iter()
            .zip(data.child_data())
            .map(|(field, child)| match field.is_nullable() {
                true => Ok(child.clone()),
                false => zeroed(child.clone()),
            })
            .collect::<Result<Vec<_>>>()?,
        DataType::FixedSizeList(item, _) if !item.is_nullable() => {
            vec![zeroed(data.child_data()[0].clone())?]
        }
        _ => data.child_data().to_vec(),
    };
    Ok(data
        .into_builder()
        .nulls(None)
        .child_data(children)
        .build()?)
}

/// The stored rows that delete the keys in `keys`: key columns as given,
/// placeholders elsewhere, `_tombstone = true`. `keys` must hold exactly
/// the primary-key columns (by name, any order) with the writer's types.
pub fn delete_rows(
    user: &SchemaRef,
    stored: &SchemaRef,
    keys: &RecordBatch,
) -> Result<RecordBatch> {
    let pk = primary_key_columns(user);
    if pk.is_empty() || !has_marker(stored) {
        return Err(Error::invalid_input(
            "delete needs a primary key: open the writer with primaryKey",
        ));
    }
    let given = keys.schema();
    for field in given.fields() {
        if !pk.contains(field.name()) {
            return Err(Error::invalid_input(format!(
                "delete keys have a column '{}' that is not part of the primary key ({})",
                field.name(),
                pk.join(", ")
            )));
        }
    }
    let rows = keys.num_rows();
    if rows == 0 {
        return Err(Error::invalid_input("delete needs at least one key"));
    }
    let mut columns = Vec::with_capacity(stored.fields().len());
    for field in user.fields() {
        if pk.contains(field.name()) {
            let column = keys.column_by_name(field.name()).ok_or_else(|| {
                Error::invalid_input(format!(
                    "delete keys lack primary-key column '{}'",
                    field.name()
                ))
            })?;
            if column.data_type() != field.data_type() {
                return Err(Error::schema_mismatch(format!(
                    "delete key column '{}': expected {}, got {}",
                    field.name(),
                    field.data_type(),
                    column.data_type()
                )));
            }
            // Logical nulls: a dictionary's null values are nulls too.
            if column.logical_null_count() > 0 {
                let row = column
                    .logical_nulls()
                    .and_then(|nulls| nulls.iter().position(|valid| !valid))
                    .unwrap_or_default();
                return Err(Error::invalid_input(format!(
                    "delete key column '{}' is null at row {row}; key values must not be null",
                    field.name()
                )));
            }
            columns.push(column.clone());
        } else {
            columns.push(placeholder(field, rows)?);
        }
    }
    columns.push(constant(true, rows));
    Ok(RecordBatch::try_new(stored.clone(), columns)?)
}

/// Stored rows back in the user's schema: the marker column removed.
pub fn strip(user: &SchemaRef, batch: &RecordBatch) -> Result<RecordBatch> {
    if batch.num_columns() == user.fields().len() {
        return Ok(RecordBatch::try_new(
            user.clone(),
            batch.columns().to_vec(),
        )?);
    }
    let columns = batch.columns()[..user.fields().len()].to_vec();
    Ok(RecordBatch::try_new(user.clone(), columns)?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ErrorCode;
    use crate::format::primary_key::PRIMARY_KEY_METADATA;
    use arrow_array::cast::AsArray;
    use arrow_array::{FixedSizeListArray, Float32Array, Int64Array, StringArray};
    use arrow_schema::Fields;
    use std::collections::HashMap;

    fn user() -> SchemaRef {
        let pk = HashMap::from([(PRIMARY_KEY_METADATA.to_string(), "true".to_string())]);
        let item = Arc::new(Field::new("item", DataType::Float32, true));
        Arc::new(Schema::new(vec![
            Field::new("id", DataType::Int64, false).with_metadata(pk),
            Field::new("name", DataType::Utf8, true),
            Field::new("label", DataType::Utf8, false),
            Field::new("vector", DataType::FixedSizeList(item, 2), false),
        ]))
    }

    #[test]
    fn only_keyed_schemas_get_the_marker() {
        let plain = Arc::new(Schema::new(vec![Field::new("id", DataType::Int64, false)]));
        assert!(Arc::ptr_eq(&stored_schema(&plain), &plain));
        let stored = stored_schema(&user());
        assert!(has_marker(&stored));
        assert_eq!(stored.fields().len(), 5);
    }

    #[test]
    fn delete_rows_carry_keys_placeholders_and_true_markers() {
        let user = user();
        let stored = stored_schema(&user);
        let keys = RecordBatch::try_new(
            Arc::new(Schema::new(vec![Field::new("id", DataType::Int64, false)])),
            vec![Arc::new(Int64Array::from(vec![7, 9]))],
        )
        .unwrap();
        let rows = delete_rows(&user, &stored, &keys).unwrap();
        assert_eq!(
            rows.column(0)
                .as_primitive::<arrow_array::types::Int64Type>()
                .values(),
            &[7, 9]
        );
        assert_eq!(rows.column(1).null_count(), 2);
        let label: &StringArray = rows.column(2).as_string();
        assert_eq!((label.null_count(), label.value(0)), (0, ""));
        let vector: &FixedSizeListArray = rows.column(3).as_fixed_size_list();
        assert_eq!(vector.null_count(), 0);
        assert_eq!(
            vector
                .value(1)
                .as_any()
                .downcast_ref::<Float32Array>()
                .unwrap()
                .len(),
            2
        );
        let marker: &BooleanArray = rows.column(4).as_boolean();
        assert!(marker.iter().all(|v| v == Some(true)));
    }

    #[test]
    fn placeholders_of_required_nested_fields_hold_no_null() {
        let pk = HashMap::from([(PRIMARY_KEY_METADATA.to_string(), "true".to_string())]);
        let inner = Fields::from(vec![
            Field::new("b", DataType::Utf8, false),
            Field::new("c", DataType::Int32, true),
        ]);
        let item = Arc::new(Field::new("item", DataType::Struct(inner.clone()), false));
        let user = Arc::new(Schema::new(vec![
            Field::new("id", DataType::Int64, false).with_metadata(pk),
            Field::new("s", DataType::Struct(inner), false),
            Field::new("v", DataType::FixedSizeList(item, 2), false),
        ]));
        let stored = stored_schema(&user);
        let keys = RecordBatch::try_new(
            Arc::new(Schema::new(vec![Field::new("id", DataType::Int64, false)])),
            vec![Arc::new(Int64Array::from(vec![7]))],
        )
        .unwrap();
        let rows = delete_rows(&user, &stored, &keys).unwrap();
        let s = rows.column(1).as_struct();
        assert_eq!((s.null_count(), s.column(0).null_count()), (0, 0));
        assert_eq!(s.column(1).null_count(), 1, "nullable children stay null");
        let v = rows.column(2).as_fixed_size_list();
        assert_eq!(v.values().as_struct().column(0).null_count(), 0);
        // What the WAL decoder will do with it.
        let rebuilt = arrow_array::StructArray::try_new(
            s.fields().clone(),
            s.columns().to_vec(),
            s.nulls().cloned(),
        );
        assert!(rebuilt.is_ok());
    }

    #[test]
    fn deletes_need_a_key_and_only_key_columns() {
        let plain = Arc::new(Schema::new(vec![Field::new("id", DataType::Int64, false)]));
        let keys =
            RecordBatch::try_new(plain.clone(), vec![Arc::new(Int64Array::from(vec![1]))]).unwrap();
        let err = delete_rows(&plain, &plain, &keys).unwrap_err();
        assert_eq!(err.code(), ErrorCode::InvalidInput);

        let user = user();
        let stored = stored_schema(&user);
        let wrong = RecordBatch::try_new(
            Arc::new(Schema::new(vec![Field::new("name", DataType::Utf8, true)])),
            vec![Arc::new(StringArray::from(vec!["x"]))],
        )
        .unwrap();
        let err = delete_rows(&user, &stored, &wrong).unwrap_err();
        assert_eq!(err.code(), ErrorCode::InvalidInput, "{err}");
    }

    #[test]
    fn live_rows_and_backfill_append_false_and_strip_removes_it() {
        let user = user();
        let stored = stored_schema(&user);
        let keys = RecordBatch::try_new(
            Arc::new(Schema::new(vec![Field::new("id", DataType::Int64, false)])),
            vec![Arc::new(Int64Array::from(vec![1]))],
        )
        .unwrap();
        let deleted = delete_rows(&user, &stored, &keys).unwrap();
        let put = strip(&user, &deleted).unwrap();
        assert_eq!(put.schema(), user);
        for batch in [
            as_live_rows(&stored, put.clone()).unwrap(),
            backfill(&stored, put.clone()).unwrap(),
        ] {
            assert_eq!(batch.schema(), stored);
            assert!(!batch.column(4).as_boolean().value(0));
        }
    }
}
