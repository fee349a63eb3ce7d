//! Bringing put batches to the writer schema.
//!
//! Batches are checked field by field (names, order, types, nullability)
//! and relabelled with the writer schema, so field and schema metadata are
//! the writer's. apache-arrow's builders make fields nullable and strings
//! dictionary-encoded where Lance's schemas have non-nullable keys and plain
//! strings, so a column that holds the writer's values in another form is
//! converted here, once, before the put is queued (README, "What a put
//! accepts"):
//!
//! - a nullable field that holds no null fits a non-nullable writer field,
//!   at any depth (a null struct slot excuses nulls in its children, as in
//!   Arrow's own struct validation);
//! - a dictionary is decoded when its values convert to the writer's type;
//! - Utf8 and LargeUtf8, Binary and LargeBinary convert both ways; to the
//!   small form only while the values fit 32-bit offsets.
//!
//! Anything else (another type, a real null, values that do not fit) is a
//! SCHEMA_MISMATCH naming the column, and the first null row for nulls.

use std::sync::Arc;

use arrow_array::cast::AsArray;
use arrow_array::{
    Array, ArrayRef, FixedSizeListArray, GenericListArray, MapArray, OffsetSizeTrait, RecordBatch,
    StructArray,
};
use arrow_buffer::NullBuffer;
use arrow_schema::{DataType, Field, FieldRef, Schema, SchemaRef};

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

/// Check every batch against `schema` and bring it to it (see the module
/// comment for what is converted). The error names the first difference.
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
    let got = batch.schema();
    let Some(difference) = first_difference(schema, &got) else {
        return relabel(schema, index, batch);
    };
    let same_names = got.fields().len() == schema.fields().len()
        && got
            .fields()
            .iter()
            .zip(schema.fields())
            .all(|(have, want)| have.name() == want.name());
    if !same_names {
        return Err(Error::schema_mismatch(format!(
            "Batch {index} {difference}"
        )));
    }
    let columns = schema
        .fields()
        .iter()
        .zip(got.fields())
        .zip(batch.columns())
        .enumerate()
        .map(|(position, ((want, have), column))| {
            let place = Place::row(want.name());
            convert(want, have, column, None, &place)
                .map_err(|refusal| refusal.explain(&format!("Batch {index}"), position, want, have))
        })
        .collect::<Result<Vec<_>>>()?;
    RecordBatch::try_new(schema.clone(), columns)
        .map_err(|e| Error::schema_mismatch(format!("Batch {index}: {e}")))
}

/// The key columns of a delete batch in the writer's types (a key column
/// from apache-arrow is as nullable or dictionary-encoded as a put's).
/// Columns the writer schema lacks are left for the delete to report, and
/// so are null keys: the delete names them.
pub fn conform_keys(schema: &Schema, index: usize, keys: RecordBatch) -> Result<RecordBatch> {
    let got = keys.schema();
    let mut fields = Vec::with_capacity(got.fields().len());
    let mut columns = Vec::with_capacity(got.fields().len());
    for (position, (have, column)) in got.fields().iter().zip(keys.columns()).enumerate() {
        let Ok(want) = schema.field_with_name(have.name()) else {
            fields.push(have.clone());
            columns.push(column.clone());
            continue;
        };
        let want = Arc::new(want.clone().with_nullable(true));
        let place = Place::row(want.name());
        let column = convert(&want, have, column, None, &place).map_err(|refusal| {
            refusal.explain(&format!("Delete key batch {index}"), position, &want, have)
        })?;
        fields.push(want);
        columns.push(column);
    }
    RecordBatch::try_new(Arc::new(Schema::new(fields)), columns)
        .map_err(|e| Error::schema_mismatch(format!("Delete key batch {index}: {e}")))
}

/// How `got` differs from `want` (names, types, nullability; metadata
/// aside), worded to follow "Batch 3" or "The WAL entry at 7"; `None` if
/// rows of `got` fit `want` as they are. A non-nullable field fits a
/// nullable one, not the reverse.
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

/// Why a column could not be brought to the writer's field.
#[derive(Debug)]
enum Refusal {
    /// Not a conversion this module makes.
    Type,
    /// A null where the writer's field (or a nested one) is non-nullable.
    Null { at: String, field: String },
    /// A conversion that would change or lose values.
    Lossy(String),
}

impl Refusal {
    fn explain(self, batch: &str, position: usize, want: &Field, have: &Field) -> Error {
        Error::schema_mismatch(match self {
            Refusal::Type => format!(
                "{batch} field {position}: expected {}, got {}",
                describe(want),
                describe(have)
            ),
            Refusal::Null { at, field } => {
                format!("{batch}: {at} is null, but the writer's field {field} is non-nullable")
            }
            Refusal::Lossy(why) => format!(
                "{batch} field {position}: expected {}, got {}: {why}",
                describe(want),
                describe(have)
            ),
        })
    }
}

/// Where in the batch a value is, for the error message.
struct Place {
    path: String,
    /// Inside a list, positions count list items, not rows.
    in_list: bool,
}

impl Place {
    fn row(name: &str) -> Self {
        Self {
            path: name.to_string(),
            in_list: false,
        }
    }

    fn child(&self, name: &str) -> Self {
        Self {
            path: format!("{}.{name}", self.path),
            in_list: self.in_list,
        }
    }

    fn item(&self, name: &str) -> Self {
        Self {
            path: format!("{}.{name}", self.path),
            in_list: true,
        }
    }

    fn describe(&self, index: usize) -> String {
        match self.in_list {
            true => format!("column '{}' at list item {index}", self.path),
            false => format!("column '{}' at row {index}", self.path),
        }
    }
}

/// `array` (declared as `have`) as a column of `want`. Nulls are checked
/// where the type changed or `have` allowed them and `want` does not;
/// `mask` holds the parent struct's slots (a null slot excuses its child).
fn convert(
    want: &Field,
    have: &Field,
    array: &ArrayRef,
    mask: Option<&NullBuffer>,
    place: &Place,
) -> Result<ArrayRef, Refusal> {
    let same = array.data_type() == want.data_type();
    let converted = match same {
        true => array.clone(),
        false => reencode(want.data_type(), have, array, place)?,
    };
    if !want.is_nullable() && (have.is_nullable() || !same) {
        if let Some(index) = converted
            .logical_nulls()
            .and_then(|nulls| first_unmasked(&nulls, mask))
        {
            return Err(Refusal::Null {
                at: place.describe(index),
                field: format!("'{}' {}", want.name(), want.data_type()),
            });
        }
    }
    Ok(converted)
}

/// The first position null in `nulls` and valid in `mask` (all valid when `None`).
fn first_unmasked(nulls: &NullBuffer, mask: Option<&NullBuffer>) -> Option<usize> {
    if nulls.null_count() == 0 {
        return None;
    }
    (0..nulls.len()).find(|&i| nulls.is_null(i) && mask.is_none_or(|m| m.is_valid(i)))
}

/// Whether two field lists have the same names in the same order.
fn same_names<'a>(
    want: impl ExactSizeIterator<Item = &'a Arc<Field>>,
    have: impl ExactSizeIterator<Item = &'a Arc<Field>>,
) -> bool {
    want.len() == have.len() && want.zip(have).all(|(w, h)| w.name() == h.name())
}

/// A list (32- or 64-bit offsets) whose items are converted to `want`'s
/// item field; the offsets and the list's own nulls are kept.
fn convert_list<O: OffsetSizeTrait>(
    want: &FieldRef,
    have: &FieldRef,
    array: &ArrayRef,
    place: &Place,
) -> Result<ArrayRef, Refusal> {
    let list = array.as_list::<O>();
    let values = convert(want, have, list.values(), None, &place.item(want.name()))?;
    GenericListArray::<O>::try_new(
        want.clone(),
        list.offsets().clone(),
        values,
        list.nulls().cloned(),
    )
    .map(|a| Arc::new(a) as ArrayRef)
    .map_err(|e| Refusal::Lossy(e.to_string()))
}

/// `array` re-encoded as `want` when its type differs: the conversions
/// the module comment lists, applied at any depth.
fn reencode(
    want: &DataType,
    have: &Field,
    array: &ArrayRef,
    place: &Place,
) -> Result<ArrayRef, Refusal> {
    let rebuilt = |e: arrow_schema::ArrowError| Refusal::Lossy(e.to_string());
    match (want, array.data_type()) {
        (_, DataType::Dictionary(_, values)) => {
            let decoded = arrow_cast::cast(array, values).map_err(rebuilt)?;
            let values = Field::new(have.name(), values.as_ref().clone(), true);
            match decoded.data_type() == want {
                true => Ok(decoded),
                false => reencode(want, &values, &decoded, place),
            }
        }
        (DataType::Utf8, DataType::LargeUtf8)
        | (DataType::LargeUtf8, DataType::Utf8)
        | (DataType::Binary, DataType::LargeBinary)
        | (DataType::LargeBinary, DataType::Binary) => arrow_cast::cast(array, want)
            .map_err(|e| Refusal::Lossy(format!("{} does not fit {want} ({e})", place.path))),
        (DataType::Struct(wants), DataType::Struct(haves))
            if same_names(wants.iter(), haves.iter()) =>
        {
            let array = array.as_struct();
            let children = wants
                .iter()
                .zip(haves.iter())
                .zip(array.columns())
                .map(|((w, h), c)| convert(w, h, c, array.nulls(), &place.child(w.name())))
                .collect::<Result<Vec<_>, _>>()?;
            StructArray::try_new(wants.clone(), children, array.nulls().cloned())
                .map(|a| Arc::new(a) as ArrayRef)
                .map_err(rebuilt)
        }
        (DataType::List(w), DataType::List(h)) if w.name() == h.name() => {
            convert_list::<i32>(w, h, array, place)
        }
        (DataType::LargeList(w), DataType::LargeList(h)) if w.name() == h.name() => {
            convert_list::<i64>(w, h, array, place)
        }
        (DataType::FixedSizeList(w, size), DataType::FixedSizeList(h, got))
            if size == got && w.name() == h.name() =>
        {
            let list = array.as_fixed_size_list();
            let mask = list.nulls().map(|n| n.expand(*size as usize));
            let values = convert(w, h, list.values(), mask.as_ref(), &place.item(w.name()))?;
            FixedSizeListArray::try_new(w.clone(), *size, values, list.nulls().cloned())
                .map(|a| Arc::new(a) as ArrayRef)
                .map_err(rebuilt)
        }
        (DataType::Map(w, sorted), DataType::Map(h, got))
            if sorted == got && w.name() == h.name() =>
        {
            let map = array.as_map();
            let entries: ArrayRef = Arc::new(map.entries().clone());
            let entries = convert(w, h, &entries, None, &place.item(w.name()))?;
            MapArray::try_new(
                w.clone(),
                map.offsets().clone(),
                entries.as_struct().clone(),
                map.nulls().cloned(),
                *sorted,
            )
            .map(|a| Arc::new(a) as ArrayRef)
            .map_err(rebuilt)
        }
        _ => Err(Refusal::Type),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ErrorCode;
    use arrow_array::types::{ArrowDictionaryKeyType, Int64Type};
    use arrow_array::{
        BinaryArray, DictionaryArray, Int32Array, Int64Array, Int8Array, LargeBinaryArray,
        LargeStringArray, ListArray, PrimitiveArray, StringArray,
    };
    use arrow_buffer::{Buffer, OffsetBuffer};
    use arrow_schema::{DataType, Fields};
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
                    vec![Arc::new(Int64Array::from(vec![None])), name()],
                ),
                "column 'id' at row 0 is null, but the writer's field 'id' Int64 is non-nullable",
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

    fn keyed_schema(name: DataType) -> SchemaRef {
        Arc::new(Schema::new(vec![
            Field::new("id", DataType::Int64, false),
            Field::new("name", name, true),
        ]))
    }

    fn conform_one(
        schema: &SchemaRef,
        fields: Vec<Field>,
        columns: Vec<ArrayRef>,
    ) -> Result<RecordBatch> {
        conform_batches(schema, vec![batch_with(fields, columns)]).map(|mut b| b.remove(0))
    }

    fn mismatch(result: Result<RecordBatch>, phrase: &str) {
        let err = result.unwrap_err();
        assert_eq!(err.code(), ErrorCode::SchemaMismatch, "{err}");
        assert!(err.message().contains(phrase), "{err} lacks {phrase}");
    }

    fn ids(values: Vec<Option<i64>>) -> ArrayRef {
        Arc::new(Int64Array::from(values))
    }

    #[test]
    fn a_nullable_column_without_nulls_fits_a_non_nullable_field() {
        let schema = keyed_schema(DataType::Utf8);
        let out = conform_one(
            &schema,
            vec![
                Field::new("id", DataType::Int64, true),
                Field::new("name", DataType::Utf8, true),
            ],
            vec![
                ids(vec![Some(1), Some(2)]),
                Arc::new(StringArray::from(vec!["a", "b"])),
            ],
        )
        .unwrap();
        assert_eq!(out.schema(), schema);
        assert_eq!(out.column(0).as_primitive::<Int64Type>().values(), &[1, 2]);
    }

    #[test]
    fn a_null_under_a_non_nullable_field_is_refused_naming_column_and_first_null_row() {
        let schema = keyed_schema(DataType::Utf8);
        mismatch(
            conform_one(
                &schema,
                vec![
                    Field::new("id", DataType::Int64, true),
                    Field::new("name", DataType::Utf8, true),
                ],
                vec![
                    ids(vec![Some(1), Some(2), None, None]),
                    Arc::new(StringArray::from(vec!["a", "b", "c", "d"])),
                ],
            ),
            "Batch 0: column 'id' at row 2 is null, but the writer's field 'id' Int64 is non-nullable",
        );
    }

    fn point(nullable: bool) -> DataType {
        DataType::Struct(Fields::from(vec![
            Field::new("x", DataType::Int64, nullable),
            Field::new("label", DataType::Utf8, true),
        ]))
    }

    fn points(x: Vec<Option<i64>>, slots: Option<Vec<bool>>) -> ArrayRef {
        let labels: ArrayRef = Arc::new(StringArray::from(vec!["p"; x.len()]));
        let DataType::Struct(fields) = point(true) else {
            unreachable!()
        };
        Arc::new(
            StructArray::try_new(fields, vec![ids(x), labels], slots.map(NullBuffer::from))
                .unwrap(),
        )
    }

    #[test]
    fn nested_struct_children_are_relabelled_when_they_hold_no_unmasked_null() {
        let schema = Arc::new(Schema::new(vec![Field::new("p", point(false), false)]));
        let nullable = vec![Field::new("p", point(true), true)];
        let out = conform_one(
            &schema,
            nullable.clone(),
            vec![points(vec![Some(1), Some(2)], None)],
        )
        .unwrap();
        assert_eq!(out.schema(), schema);
        assert_eq!(out.column(0).data_type(), &point(false));
        // A null child under a null struct slot is no value.
        let schema = Arc::new(Schema::new(vec![Field::new("p", point(false), true)]));
        let out = conform_one(
            &schema,
            nullable.clone(),
            vec![points(vec![Some(1), None], Some(vec![true, false]))],
        )
        .unwrap();
        assert_eq!(out.column(0).null_count(), 1);
        mismatch(
            conform_one(&schema, nullable, vec![points(vec![Some(1), None], None)]),
            "column 'p.x' at row 1 is null, but the writer's field 'x' Int64 is non-nullable",
        );
    }

    #[test]
    fn list_items_are_relabelled_and_a_null_item_is_refused_by_position() {
        let item = |nullable| Arc::new(Field::new("item", DataType::Int64, nullable));
        let schema = Arc::new(Schema::new(vec![Field::new(
            "l",
            DataType::List(item(false)),
            true,
        )]));
        let list = |values: Vec<Option<i64>>| -> ArrayRef {
            let offsets = OffsetBuffer::from_lengths([1, values.len() - 1]);
            Arc::new(ListArray::try_new(item(true), offsets, ids(values), None).unwrap())
        };
        let field = vec![Field::new("l", DataType::List(item(true)), true)];
        let out = conform_one(
            &schema,
            field.clone(),
            vec![list(vec![Some(1), Some(2), Some(3)])],
        )
        .unwrap();
        assert_eq!(out.schema(), schema);
        mismatch(
            conform_one(&schema, field, vec![list(vec![Some(1), Some(2), None])]),
            "column 'l.item' at list item 2 is null",
        );
    }

    fn dictionary<K: ArrowDictionaryKeyType>(
        keys: PrimitiveArray<K>,
        values: ArrayRef,
    ) -> ArrayRef {
        Arc::new(DictionaryArray::<K>::try_new(keys, values).unwrap())
    }

    fn strings(column: &ArrayRef) -> Vec<Option<&str>> {
        column.as_string::<i32>().iter().collect()
    }

    #[test]
    fn dictionary_strings_are_decoded_to_the_writers_plain_strings() {
        let schema = keyed_schema(DataType::Utf8);
        let values: ArrayRef = Arc::new(StringArray::from(vec!["a", "b"]));
        let dict = dictionary(Int32Array::from(vec![Some(1), None, Some(0)]), values);
        let dict_type = dict.data_type().clone();
        let out = conform_one(
            &schema,
            vec![
                Field::new("id", DataType::Int64, true),
                Field::new("name", dict_type, true),
            ],
            vec![ids(vec![Some(1), Some(2), Some(3)]), dict],
        )
        .unwrap();
        assert_eq!(out.schema(), schema);
        assert_eq!(strings(out.column(1)), vec![Some("b"), None, Some("a")]);
        // Values in the other string width, small keys: decoded, then recast.
        let large: ArrayRef = Arc::new(LargeStringArray::from(vec!["x"]));
        let dict = dictionary(Int8Array::from(vec![0, 0]), large);
        let out = conform_one(
            &schema,
            vec![
                Field::new("id", DataType::Int64, false),
                Field::new("name", dict.data_type().clone(), false),
            ],
            vec![ids(vec![Some(1), Some(2)]), dict],
        )
        .unwrap();
        assert_eq!(strings(out.column(1)), vec![Some("x"), Some("x")]);
    }

    #[test]
    fn a_dictionary_with_a_null_under_a_non_nullable_field_is_refused() {
        let schema = Arc::new(Schema::new(vec![Field::new("name", DataType::Utf8, false)]));
        let values: ArrayRef = Arc::new(StringArray::from(vec![Some("a"), None]));
        let dict = dictionary(Int32Array::from(vec![0, 1]), values);
        mismatch(
            conform_one(
                &schema,
                vec![Field::new("name", dict.data_type().clone(), false)],
                vec![dict],
            ),
            "column 'name' at row 1 is null",
        );
    }

    #[test]
    fn a_dictionary_of_another_value_type_is_refused() {
        let schema = keyed_schema(DataType::Utf8);
        let dict = dictionary(
            Int32Array::from(vec![0]),
            Arc::new(Int32Array::from(vec![7])),
        );
        mismatch(
            conform_one(
                &schema,
                vec![
                    Field::new("id", DataType::Int64, false),
                    Field::new("name", dict.data_type().clone(), true),
                ],
                vec![ids(vec![Some(1)]), dict],
            ),
            "field 1: expected 'name' Utf8 (nullable), got 'name' Dictionary(Int32, Int32)",
        );
    }

    #[test]
    fn string_and_binary_widths_convert_both_ways() {
        let cases: Vec<(DataType, ArrayRef)> = vec![
            (
                DataType::Utf8,
                Arc::new(LargeStringArray::from(vec!["a", "bc"])),
            ),
            (
                DataType::LargeUtf8,
                Arc::new(StringArray::from(vec!["a", "bc"])),
            ),
            (
                DataType::Binary,
                Arc::new(LargeBinaryArray::from(vec![b"a".as_ref(), b"bc"])),
            ),
            (
                DataType::LargeBinary,
                Arc::new(BinaryArray::from(vec![b"a".as_ref(), b"bc"])),
            ),
        ];
        for (want, column) in cases {
            let schema = keyed_schema(want.clone());
            let got = column.data_type().clone();
            let out = conform_one(
                &schema,
                vec![
                    Field::new("id", DataType::Int64, false),
                    Field::new("name", got.clone(), true),
                ],
                vec![ids(vec![Some(1), Some(2)]), column],
            )
            .unwrap_or_else(|e| panic!("{got} -> {want}: {e}"));
            assert_eq!(out.schema(), schema);
            let back = arrow_cast::cast(out.column(1), &DataType::LargeBinary).unwrap();
            let back: Vec<_> = back.as_binary::<i64>().iter().collect();
            assert_eq!(back, vec![Some(b"a".as_ref()), Some(b"bc".as_ref())]);
        }
    }

    #[test]
    fn a_large_binary_past_32_bit_offsets_is_not_narrowed() {
        // 2 GiB of zeroes that are never touched: the cast refuses on the
        // offsets before it would copy a byte.
        let len = i32::MAX as usize + 1;
        let values = Buffer::from_vec(vec![0u8; len]);
        let offsets = OffsetBuffer::new(vec![0i64, 0, len as i64].into());
        let column: ArrayRef = Arc::new(LargeBinaryArray::try_new(offsets, values, None).unwrap());
        let schema = keyed_schema(DataType::Binary);
        mismatch(
            conform_one(
                &schema,
                vec![
                    Field::new("id", DataType::Int64, false),
                    Field::new("name", DataType::LargeBinary, true),
                ],
                vec![ids(vec![Some(1), Some(2)]), column],
            ),
            "expected 'name' Binary (nullable), got 'name' LargeBinary (nullable): name does not fit Binary",
        );
    }

    #[test]
    fn delete_keys_take_the_writers_key_type_and_keep_their_nulls_for_the_delete() {
        let schema = keyed_schema(DataType::Utf8);
        let values: ArrayRef = Arc::new(Int64Array::from(vec![5, 6]));
        let dict = dictionary(Int32Array::from(vec![Some(1), None]), values);
        let keys = batch_with(
            vec![Field::new("id", dict.data_type().clone(), true)],
            vec![dict],
        );
        let out = conform_keys(&schema, 0, keys).unwrap();
        assert_eq!(out.schema().field(0).data_type(), &DataType::Int64);
        assert_eq!(out.column(0).null_count(), 1);
        let strings = batch_with(
            vec![Field::new("id", DataType::Utf8, false)],
            vec![Arc::new(StringArray::from(vec!["5"]))],
        );
        let err = conform_keys(&schema, 0, strings).unwrap_err();
        assert_eq!(err.code(), ErrorCode::SchemaMismatch);
        assert!(
            err.message().contains("Delete key batch 0 field 0"),
            "{err}"
        );
    }
}
