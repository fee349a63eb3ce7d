//! Newest row per primary key.
//!
//! Rows are visited from newest to oldest (newest source first, and within a
//! source from its last row back to its first). The first visit of a key is
//! its newest version: it is kept unless it is a tombstone; every later
//! (older) visit is superseded. Only keys are remembered, so memory grows
//! with the number of distinct keys, not with row width.

use std::collections::HashSet;

use arrow_array::cast::AsArray;
use arrow_array::{Array, BooleanArray, RecordBatch};
use arrow_row::{RowConverter, SortField};
use arrow_schema::Schema;

use crate::error::{Error, Result};
use crate::format::tombstone::TOMBSTONE_COLUMN;

pub struct NewestPerKey {
    key_columns: Vec<String>,
    converter: RowConverter,
    seen: HashSet<Box<[u8]>>,
}

impl NewestPerKey {
    /// `key_columns` name primary-key columns of `schema` (non-empty).
    pub fn new(schema: &Schema, key_columns: &[String]) -> Result<Self> {
        let fields = key_columns
            .iter()
            .map(|name| {
                let field = schema.field_with_name(name).map_err(|_| {
                    Error::invalid_input(format!(
                        "primary-key column '{name}' is not in the schema"
                    ))
                })?;
                Ok(SortField::new(field.data_type().clone()))
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(Self {
            key_columns: key_columns.to_vec(),
            converter: RowConverter::new(fields)?,
            seen: HashSet::new(),
        })
    }

    /// The columns [`Self::keep_newest`] reads: the key and the marker.
    pub fn columns(&self) -> Vec<String> {
        let mut columns = self.key_columns.clone();
        columns.push(TOMBSTONE_COLUMN.to_string());
        columns
    }

    /// Keep-mask of `batch`, which must be the newest batch not visited yet.
    /// A batch without a `_tombstone` column has only live rows.
    pub fn keep_newest(&mut self, batch: &RecordBatch) -> Result<BooleanArray> {
        let keys = self
            .key_columns
            .iter()
            .map(|name| {
                batch.column_by_name(name).cloned().ok_or_else(|| {
                    Error::internal(format!(
                        "primary-key column '{name}' missing from a scanned batch"
                    ))
                })
            })
            .collect::<Result<Vec<_>>>()?;
        let rows = self.converter.convert_columns(&keys)?;
        let marker = batch
            .column_by_name(TOMBSTONE_COLUMN)
            .map(|c| c.as_boolean().clone());
        let mut keep = vec![false; batch.num_rows()];
        for i in (0..batch.num_rows()).rev() {
            if self.seen.insert(rows.row(i).as_ref().into()) {
                let deleted = marker.as_ref().is_some_and(|m| m.is_valid(i) && m.value(i));
                keep[i] = !deleted;
            }
        }
        Ok(BooleanArray::from(keep))
    }

    /// Keep-masks for `batches` given oldest first (one source or several in
    /// age order), returned in the same order.
    pub fn keep_newest_all(&mut self, batches: &[RecordBatch]) -> Result<Vec<BooleanArray>> {
        let mut masks: Vec<BooleanArray> = batches
            .iter()
            .rev()
            .map(|b| self.keep_newest(b))
            .collect::<Result<_>>()?;
        masks.reverse();
        Ok(masks)
    }
}

/// Rows of `batches` (oldest first) that survive newest-wins and deletes.
pub fn newest_rows(
    schema: &Schema,
    key_columns: &[String],
    batches: &[RecordBatch],
) -> Result<Vec<RecordBatch>> {
    let mut newest = NewestPerKey::new(schema, key_columns)?;
    let masks = newest.keep_newest_all(batches)?;
    batches
        .iter()
        .zip(masks)
        .map(|(b, m)| Ok(arrow_select::filter::filter_record_batch(b, &m)?))
        .filter(|b: &Result<RecordBatch>| b.as_ref().map_or(true, |b| b.num_rows() > 0))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow_array::{Int64Array, StringArray};
    use arrow_schema::{DataType, Field};
    use std::sync::Arc;

    fn schema() -> Arc<Schema> {
        Arc::new(Schema::new(vec![
            Field::new("id", DataType::Int64, false),
            Field::new("v", DataType::Utf8, true),
            Field::new(TOMBSTONE_COLUMN, DataType::Boolean, false),
        ]))
    }

    fn batch(rows: &[(i64, &str, bool)]) -> RecordBatch {
        RecordBatch::try_new(
            schema(),
            vec![
                Arc::new(Int64Array::from_iter_values(rows.iter().map(|r| r.0))),
                Arc::new(StringArray::from_iter_values(rows.iter().map(|r| r.1))),
                Arc::new(BooleanArray::from(
                    rows.iter().map(|r| r.2).collect::<Vec<_>>(),
                )),
            ],
        )
        .unwrap()
    }

    fn pairs(batches: &[RecordBatch]) -> Vec<(i64, String)> {
        batches
            .iter()
            .flat_map(|b| {
                let ids = b
                    .column(0)
                    .as_primitive::<arrow_array::types::Int64Type>()
                    .clone();
                let vs = b.column(1).as_string::<i32>().clone();
                (0..b.num_rows())
                    .map(move |i| (ids.value(i), vs.value(i).to_string()))
                    .collect::<Vec<_>>()
            })
            .collect()
    }

    #[test]
    fn later_rows_win_and_tombstones_delete() {
        let batches = [
            batch(&[(1, "a1", false), (2, "b1", false), (1, "a2", false)]),
            batch(&[(3, "c1", false), (2, "", true)]),
            batch(&[
                (3, "c2", false),
                (4, "d1", false),
                (4, "", true),
                (5, "", true),
            ]),
        ];
        let out = newest_rows(&schema(), &["id".to_string()], &batches).unwrap();
        // Survivors stay in put order.
        assert_eq!(pairs(&out), vec![(1, "a2".into()), (3, "c2".into())]);
    }

    #[test]
    fn a_put_after_a_delete_brings_the_key_back() {
        let batches = [
            batch(&[(1, "a1", false), (1, "", true)]),
            batch(&[(1, "a3", false)]),
        ];
        let out = newest_rows(&schema(), &["id".to_string()], &batches).unwrap();
        assert_eq!(pairs(&out), vec![(1, "a3".into())]);
    }

    #[test]
    fn composite_keys_compare_every_column() {
        let batches = [batch(&[(1, "x", false), (1, "y", false), (1, "x", false)])];
        let key = ["id".to_string(), "v".to_string()];
        let out = newest_rows(&schema(), &key, &batches).unwrap();
        assert_eq!(pairs(&out), vec![(1, "y".into()), (1, "x".into())]);
    }
}
