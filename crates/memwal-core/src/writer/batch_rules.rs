//! What a put's values must satisfy besides the schema: the rules that
//! decide whether the WAL entry decodes again and the flush writes the
//! rows unchanged. A put that breaks one would be acknowledged and then
//! brick the shard (replay, readers and the flush all fail on it), so it is
//! refused before it is queued.
//!
//! - A non-nullable field holds no null where its parent slot is valid.
//!   Arrow's validation of the incoming buffers looks at validity bitmaps
//!   only; the IPC decoder (`StructArray::try_new`) and the Parquet writer
//!   look at logical nulls, which also come from a `Null` array or from the
//!   null values of a dictionary. Same masking as the decoder: a struct's
//!   own null slots (a fixed-size list's, expanded) excuse nulls in its
//!   children; a top-level column and list items excuse none.
//! - A decimal value fits its declared precision: the flush stores decimals
//!   in the fewest bytes the precision needs, so a bigger value would come
//!   back truncated from Parquet.
//! - A primary-key value is never null: null keys would merge into one row
//!   that no delete can name.
//!
//! The plan is made once per writer: only columns where a rule can apply
//! are walked, so a flat schema of primitives costs nothing per put.

use arrow_array::cast::AsArray;
use arrow_array::types::{Decimal128Type, Decimal256Type, Decimal32Type, Decimal64Type};
use arrow_array::{Array, ArrayRef, RecordBatch};
use arrow_buffer::NullBuffer;
use arrow_schema::{DataType, Field, FieldRef, Schema};

use crate::error::{Error, Result};
use crate::format::primary_key::primary_key_columns;

/// The per-writer plan of which columns need a look at their values.
#[derive(Debug, Clone, Default)]
pub struct BatchRules {
    /// Columns (by position) where the null or decimal rules can apply.
    walked: Vec<usize>,
    /// Primary-key columns (by position).
    keys: Vec<usize>,
}

impl BatchRules {
    pub fn new(schema: &Schema) -> Self {
        let keys = primary_key_columns(schema)
            .iter()
            .filter_map(|name| schema.index_of(name).ok())
            .collect();
        let walked = schema
            .fields()
            .iter()
            .enumerate()
            .filter(|(_, f)| needs_walk(f))
            .map(|(i, _)| i)
            .collect();
        Self { walked, keys }
    }

    /// Check every batch of a put (already conformed to the writer schema).
    pub fn check(&self, batches: &[RecordBatch]) -> Result<()> {
        if self.walked.is_empty() && self.keys.is_empty() {
            return Ok(());
        }
        for (index, batch) in batches.iter().enumerate() {
            let schema = batch.schema();
            let at = |e: Error| Error::new(e.code(), format!("Batch {index}: {}", e.message()));
            for &column in &self.keys {
                check_key(schema.field(column), batch.column(column)).map_err(at)?;
            }
            for &column in &self.walked {
                let field = schema.field(column);
                let place = Place {
                    path: field.name(),
                    in_list: false,
                };
                walk(field, batch.column(column), None, &place).map_err(at)?;
            }
        }
        Ok(())
    }
}

/// Refuse a null key value, naming the first null row.
fn check_key(field: &Field, column: &ArrayRef) -> Result<()> {
    if column.logical_null_count() == 0 {
        return Ok(());
    }
    let row = column
        .logical_nulls()
        .and_then(|nulls| first_unmasked(&nulls, None))
        .unwrap_or_default();
    Err(Error::invalid_input(format!(
        "primary-key column '{}' is null at row {row}; key values must not be null",
        field.name()
    )))
}

/// Whether a type's logical nulls can differ from its validity bitmap.
fn has_hidden_nulls(data_type: &DataType) -> bool {
    matches!(
        data_type,
        DataType::Null
            | DataType::Dictionary(_, _)
            | DataType::RunEndEncoded(_, _)
            | DataType::Union(_, _)
    )
}

fn is_decimal(data_type: &DataType) -> bool {
    matches!(
        data_type,
        DataType::Decimal32(_, _)
            | DataType::Decimal64(_, _)
            | DataType::Decimal128(_, _)
            | DataType::Decimal256(_, _)
    )
}

/// The fields nested directly in `data_type` (a dictionary's values as a
/// nullable field: its keys carry the nulls). Shared, not copied: this runs
/// on every put of a nested column.
fn children(data_type: &DataType) -> Vec<FieldRef> {
    match data_type {
        DataType::Struct(fields) => fields.iter().cloned().collect(),
        DataType::List(item)
        | DataType::LargeList(item)
        | DataType::ListView(item)
        | DataType::LargeListView(item)
        | DataType::FixedSizeList(item, _)
        | DataType::Map(item, _) => vec![item.clone()],
        DataType::Dictionary(_, values) => vec![dictionary_values(values)],
        _ => Vec::new(),
    }
}

fn dictionary_values(values: &DataType) -> FieldRef {
    std::sync::Arc::new(Field::new("values", values.clone(), true))
}

/// Whether a rule can apply to `field` or anything nested in it.
fn needs_walk(field: &Field) -> bool {
    let data_type = field.data_type();
    is_decimal(data_type)
        || (!field.is_nullable() && has_hidden_nulls(data_type))
        || children(data_type).iter().any(|child| needs_walk(child))
}

/// Where in the batch a value is, for the error message.
struct Place<'a> {
    path: &'a str,
    /// Inside a list, positions count list items, not rows.
    in_list: bool,
}

impl Place<'_> {
    fn describe(&self, index: usize) -> String {
        if self.in_list {
            format!("column '{}' at list item {index}", self.path)
        } else {
            format!("column '{}' at row {index}", self.path)
        }
    }
}

/// The first position null in `nulls` and valid in `mask` (all valid when `None`).
fn first_unmasked(nulls: &NullBuffer, mask: Option<&NullBuffer>) -> Option<usize> {
    (0..nulls.len()).find(|&i| nulls.is_null(i) && mask.is_none_or(|m| m.is_valid(i)))
}

fn walk(field: &Field, array: &ArrayRef, mask: Option<&NullBuffer>, place: &Place) -> Result<()> {
    let data_type = field.data_type();
    if !field.is_nullable() && has_hidden_nulls(data_type) && array.logical_null_count() > 0 {
        if let Some(index) = array
            .logical_nulls()
            .as_ref()
            .and_then(|nulls| first_unmasked(nulls, mask))
        {
            return Err(Error::invalid_input(format!(
                "{} is null, but the field is non-nullable ({data_type}); \
                 the WAL decoder and the Parquet flush would refuse it",
                place.describe(index)
            )));
        }
    }
    match data_type {
        DataType::Decimal32(p, _) => decimals(array.as_primitive::<Decimal32Type>(), *p, place),
        DataType::Decimal64(p, _) => decimals(array.as_primitive::<Decimal64Type>(), *p, place),
        DataType::Decimal128(p, _) => decimals(array.as_primitive::<Decimal128Type>(), *p, place),
        DataType::Decimal256(p, _) => decimals(array.as_primitive::<Decimal256Type>(), *p, place),
        DataType::Struct(fields) => {
            let array = array.as_struct();
            for (child, values) in fields.iter().zip(array.columns()) {
                if needs_walk(child) {
                    let path = format!("{}.{}", place.path, child.name());
                    let inner = Place {
                        path: &path,
                        in_list: place.in_list,
                    };
                    walk(child, values, array.nulls(), &inner)?;
                }
            }
            Ok(())
        }
        DataType::FixedSizeList(item, size) => {
            let array = array.as_fixed_size_list();
            let mask = array.nulls().map(|n| n.expand(*size as usize));
            items(item, array.values(), mask.as_ref(), place)
        }
        DataType::List(item) | DataType::Map(item, _) => {
            let offsets = match data_type {
                DataType::Map(_, _) => array.as_map().offsets().clone(),
                _ => array.as_list::<i32>().offsets().clone(),
            };
            let values: ArrayRef = match data_type {
                DataType::Map(_, _) => std::sync::Arc::new(array.as_map().entries().clone()),
                _ => array.as_list::<i32>().values().clone(),
            };
            let (first, last) = (offsets[0] as usize, offsets[offsets.len() - 1] as usize);
            items(item, &values.slice(first, last - first), None, place)
        }
        DataType::LargeList(item) => {
            let list = array.as_list::<i64>();
            let offsets = list.offsets();
            let (first, last) = (offsets[0] as usize, offsets[offsets.len() - 1] as usize);
            items(item, &list.values().slice(first, last - first), None, place)
        }
        DataType::ListView(item) => items(item, array.as_list_view::<i32>().values(), None, place),
        DataType::LargeListView(item) => {
            items(item, array.as_list_view::<i64>().values(), None, place)
        }
        DataType::Dictionary(_, values) => {
            let field = dictionary_values(values);
            match needs_walk(&field) {
                true => walk(&field, array.as_any_dictionary().values(), None, place),
                false => Ok(()),
            }
        }
        _ => Ok(()),
    }
}

/// Walk the items of a list-like column.
fn items(item: &Field, values: &ArrayRef, mask: Option<&NullBuffer>, place: &Place) -> Result<()> {
    if !needs_walk(item) {
        return Ok(());
    }
    let path = format!("{}.{}", place.path, item.name());
    let inner = Place {
        path: &path,
        in_list: true,
    };
    walk(item, values, mask, &inner)
}

/// Refuse the first valid decimal that does not fit `precision` digits.
fn decimals<T>(array: &arrow_array::PrimitiveArray<T>, precision: u8, place: &Place) -> Result<()>
where
    T: arrow_array::types::DecimalType,
{
    let values = array.values();
    let bad = match array.nulls() {
        None => values
            .iter()
            .position(|v| !T::is_valid_decimal_precision(*v, precision)),
        Some(nulls) => values
            .iter()
            .enumerate()
            .position(|(i, v)| nulls.is_valid(i) && !T::is_valid_decimal_precision(*v, precision)),
    };
    match bad {
        None => Ok(()),
        Some(index) => Err(Error::invalid_input(format!(
            "{} holds {}, which does not fit the column's precision {precision} ({})",
            place.describe(index),
            array.value_as_string(index),
            array.data_type()
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ErrorCode;
    use crate::format::primary_key::PRIMARY_KEY_METADATA;
    use arrow_array::types::Int32Type;
    use arrow_array::{
        make_array, Decimal128Array, Decimal256Array, Decimal32Array, DictionaryArray,
        FixedSizeListArray, Int32Array, Int64Array, ListArray, NullArray, StringArray,
    };
    use arrow_buffer::{i256, Buffer, OffsetBuffer};
    use arrow_data::ArrayData;
    use arrow_schema::Fields;
    use std::collections::HashMap;
    use std::sync::Arc;

    fn batch(field: Field, column: ArrayRef) -> RecordBatch {
        RecordBatch::try_new(Arc::new(Schema::new(vec![field])), vec![column]).unwrap()
    }

    fn check(batch: &RecordBatch) -> Result<()> {
        BatchRules::new(&batch.schema()).check(std::slice::from_ref(batch))
    }

    fn refused(batch: RecordBatch, phrase: &str) {
        let err = check(&batch).unwrap_err();
        assert_eq!(err.code(), ErrorCode::InvalidInput);
        assert!(err.message().contains(phrase), "{err} lacks {phrase}");
    }

    /// A struct built the way the JS hand-off builds it: the buffers'
    /// validation sees no bitmap in a Null child, so nothing stops it.
    fn struct_of(child: Field, values: ArrayRef, valid: &[bool]) -> (Field, ArrayRef) {
        let fields = Fields::from(vec![child]);
        let nulls = NullBuffer::from(valid.to_vec());
        let data = ArrayData::builder(DataType::Struct(fields.clone()))
            .len(valid.len())
            .nulls((nulls.null_count() > 0).then_some(nulls))
            .child_data(vec![values.to_data()])
            .build()
            .unwrap();
        (
            Field::new("s", DataType::Struct(fields), true),
            make_array(data),
        )
    }

    fn null_child() -> Field {
        Field::new("n", DataType::Null, false)
    }

    /// Dictionary values with a null, referenced by every key.
    fn dict_with_null_value() -> ArrayRef {
        let values = StringArray::from(vec![Some("a"), None]);
        Arc::new(
            DictionaryArray::<Int32Type>::try_new(Int32Array::from(vec![1, 1]), Arc::new(values))
                .unwrap(),
        )
    }

    #[test]
    fn non_nullable_children_with_unmasked_nulls_are_refused_at_any_depth() {
        // struct<n: Null not null> with a valid slot: the case that bricked shards.
        let (field, column) = struct_of(null_child(), Arc::new(NullArray::new(2)), &[false, true]);
        refused(batch(field, column), "column 's.n' at row 1 is null");
        // A non-nullable dictionary whose keys point at a null value.
        let dict = Field::new("d", DataType::Utf8, false);
        let dict = Field::new(
            "d",
            dict_with_null_value().data_type().clone(),
            dict.is_nullable(),
        );
        refused(
            batch(dict.clone(), dict_with_null_value()),
            "column 'd' at row 0 is null",
        );
        let (field, column) = struct_of(dict, dict_with_null_value(), &[true, true]);
        refused(batch(field, column), "column 's.d' at row 0");
        // Two structs deep.
        let (inner, inner_column) = struct_of(null_child(), Arc::new(NullArray::new(1)), &[true]);
        let inner = inner.with_nullable(false);
        let (field, column) = struct_of(inner, inner_column, &[true]);
        refused(batch(field, column), "column 's.s.n' at row 0");
        // The items of a list.
        let (item, values) = struct_of(
            null_child(),
            Arc::new(NullArray::new(3)),
            &[false, false, true],
        );
        let list = ListArray::try_new(
            Arc::new(item),
            OffsetBuffer::new(vec![0, 1, 3].into()),
            values,
            None,
        )
        .unwrap();
        refused(
            batch(
                Field::new("l", list.data_type().clone(), true),
                Arc::new(list),
            ),
            "column 'l.s.n' at list item 2",
        );
        // The items of a fixed-size list, and the values of a map.
        let item = Field::new("item", DataType::Null, false);
        let data = ArrayData::builder(DataType::FixedSizeList(Arc::new(item), 2))
            .len(2)
            .nulls(Some(NullBuffer::from(vec![false, true])))
            .child_data(vec![NullArray::new(4).to_data()])
            .build()
            .unwrap();
        let fsl = make_array(data);
        refused(
            batch(Field::new("f", fsl.data_type().clone(), true), fsl),
            "column 'f.item' at list item 2",
        );
        let entry_fields = Fields::from(vec![
            Field::new("keys", DataType::Int32, false),
            Field::new("values", DataType::Null, false),
        ]);
        let entries = ArrayData::builder(DataType::Struct(entry_fields.clone()))
            .len(1)
            .child_data(vec![
                Int32Array::from(vec![1]).to_data(),
                NullArray::new(1).to_data(),
            ])
            .build()
            .unwrap();
        let entries_field = Field::new("entries", DataType::Struct(entry_fields), false);
        let map = ArrayData::builder(DataType::Map(Arc::new(entries_field), false))
            .len(1)
            .add_buffer(Buffer::from_slice_ref([0i32, 1]))
            .child_data(vec![entries])
            .build()
            .unwrap();
        let map = make_array(map);
        refused(
            batch(Field::new("m", map.data_type().clone(), true), map),
            "column 'm.entries.values' at list item 0",
        );
    }

    #[test]
    fn nulls_masked_by_their_parent_are_accepted() {
        let (field, column) = struct_of(null_child(), Arc::new(NullArray::new(2)), &[false, false]);
        check(&batch(field, column)).unwrap();
        let dict = dict_with_null_value();
        check(&batch(
            Field::new("d", dict.data_type().clone(), true),
            dict,
        ))
        .unwrap();
        // A null value no key points at.
        let values = StringArray::from(vec![Some("a"), None]);
        let dict =
            DictionaryArray::<Int32Type>::try_new(Int32Array::from(vec![0]), Arc::new(values))
                .unwrap();
        check(&batch(
            Field::new("d", dict.data_type().clone(), false),
            Arc::new(dict),
        ))
        .unwrap();
        // Items outside a sliced list's range are not its items.
        let (item, values) = struct_of(
            null_child(),
            Arc::new(NullArray::new(3)),
            &[true, false, false],
        );
        let list = ListArray::try_new(
            Arc::new(item),
            OffsetBuffer::new(vec![0, 1, 3].into()),
            values,
            None,
        )
        .unwrap()
        .slice(1, 1);
        check(&batch(
            Field::new("l", list.data_type().clone(), true),
            Arc::new(list),
        ))
        .unwrap();
        let fsl = FixedSizeListArray::try_new(
            Arc::new(Field::new("item", DataType::Null, false)),
            2,
            Arc::new(NullArray::new(4)),
            Some(NullBuffer::new_null(2)),
        )
        .unwrap();
        check(&batch(
            Field::new("f", fsl.data_type().clone(), true),
            Arc::new(fsl),
        ))
        .unwrap();
    }

    #[test]
    fn decimals_beyond_their_precision_are_refused_naming_column_and_row() {
        let d128 = Decimal128Array::from(vec![Some(1), None, Some(5_000_000_000)])
            .with_precision_and_scale(9, 2)
            .unwrap();
        refused(
            batch(
                Field::new("price", d128.data_type().clone(), true),
                Arc::new(d128),
            ),
            "column 'price' at row 2 holds 50000000.00",
        );
        let d256 = Decimal256Array::from(vec![i256::MAX])
            .with_precision_and_scale(40, 0)
            .unwrap();
        refused(
            batch(
                Field::new("big", d256.data_type().clone(), true),
                Arc::new(d256),
            ),
            "'big' at row 0",
        );
        let d32 = Decimal32Array::from(vec![123_456])
            .with_precision_and_scale(5, 1)
            .unwrap();
        refused(
            batch(
                Field::new("small", d32.data_type().clone(), true),
                Arc::new(d32),
            ),
            "'small' at row 0",
        );
        // Nested: in a list of structs.
        let d = Decimal128Array::from(vec![1, 1000])
            .with_precision_and_scale(3, 0)
            .unwrap();
        let (item, values) = struct_of(
            Field::new("d", d.data_type().clone(), true),
            Arc::new(d),
            &[true, true],
        );
        let list = ListArray::try_new(
            Arc::new(item),
            OffsetBuffer::new(vec![0, 2].into()),
            values,
            None,
        )
        .unwrap();
        refused(
            batch(
                Field::new("l", list.data_type().clone(), true),
                Arc::new(list),
            ),
            "column 'l.s.d' at list item 1 holds 1000",
        );
        // A value under a null slot is not a value.
        let data = Decimal128Array::from(vec![5_000_000_000])
            .with_precision_and_scale(9, 2)
            .unwrap()
            .to_data()
            .into_builder()
            .null_bit_buffer(Some(Buffer::from([0u8])))
            .build()
            .unwrap();
        let hidden = make_array(data);
        check(&batch(
            Field::new("price", hidden.data_type().clone(), true),
            hidden,
        ))
        .unwrap();
    }

    #[test]
    fn null_primary_key_values_are_refused_naming_the_row() {
        let key = Field::new("k", DataType::Int64, true).with_metadata(HashMap::from([(
            PRIMARY_KEY_METADATA.to_string(),
            "true".to_string(),
        )]));
        let keys = Int64Array::from(vec![Some(1), Some(2), None]);
        refused(
            batch(key.clone(), Arc::new(keys)),
            "primary-key column 'k' is null at row 2",
        );
        check(&batch(key, Arc::new(Int64Array::from(vec![1, 2])))).unwrap();
    }

    #[test]
    fn flat_schemas_without_decimals_or_keys_walk_nothing() {
        let schema = Schema::new(vec![
            Field::new("a", DataType::Int64, false),
            Field::new("b", DataType::Utf8, true),
            Field::new("n", DataType::Null, true),
            Field::new(
                "d",
                DataType::Dictionary(Box::new(DataType::Int32), Box::new(DataType::Utf8)),
                true,
            ),
        ]);
        let rules = BatchRules::new(&schema);
        assert!(rules.walked.is_empty() && rules.keys.is_empty());
    }
}
