//! Every Arrow type a writer accepts reads back unchanged: what the
//! writer's `scan()` returns before a flush equals, value for value and
//! bit for bit (floats compared by their bits, NaNs included), what a
//! shard reader returns from the flushed Parquet generation. Generated
//! data: random values and nulls, sliced batches, nesting. A decimal
//! beyond its precision cannot round-trip, so it must be refused.

mod common;

use std::sync::Arc;

use arrow_array::builder::{MapBuilder, StringBuilder, UInt32Builder};
use arrow_array::*;
use arrow_buffer::{i256, Buffer, NullBuffer, OffsetBuffer};
use arrow_data::ArrayData;
use arrow_schema::{DataType, Field, Fields, IntervalUnit, Schema, SchemaRef, TimeUnit};
use common::{memory_root, memtable, within};
use memwal_core::read::scan::ScanRequest;
use memwal_core::read::shard_reader::ShardReader;
use memwal_core::{OpenOptions, ShardWriter};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

const ROWS: usize = 97;

/// Every type the flush writes, flat and nested.
fn types() -> Vec<DataType> {
    let item = |t: DataType| Arc::new(Field::new("item", t, true));
    let tz = Some("+02:00".into());
    let mut types = vec![
        DataType::Boolean,
        DataType::Int8,
        DataType::Int16,
        DataType::Int32,
        DataType::Int64,
        DataType::UInt8,
        DataType::UInt16,
        DataType::UInt32,
        DataType::UInt64,
        DataType::Float16,
        DataType::Float32,
        DataType::Float64,
        DataType::Decimal32(9, 2),
        DataType::Decimal64(18, 4),
        DataType::Decimal128(9, 2),
        DataType::Decimal128(38, 10),
        DataType::Decimal256(76, 20),
        DataType::Date32,
        DataType::Date64,
        DataType::Time32(TimeUnit::Second),
        DataType::Time32(TimeUnit::Millisecond),
        DataType::Time64(TimeUnit::Microsecond),
        DataType::Time64(TimeUnit::Nanosecond),
        DataType::Timestamp(TimeUnit::Second, None),
        DataType::Timestamp(TimeUnit::Millisecond, tz.clone()),
        DataType::Timestamp(TimeUnit::Microsecond, None),
        DataType::Timestamp(TimeUnit::Nanosecond, tz),
        DataType::Duration(TimeUnit::Second),
        DataType::Duration(TimeUnit::Nanosecond),
        DataType::Interval(IntervalUnit::YearMonth),
        DataType::Interval(IntervalUnit::DayTime),
        DataType::Utf8,
        DataType::LargeUtf8,
        DataType::Utf8View,
        DataType::Binary,
        DataType::LargeBinary,
        DataType::BinaryView,
        DataType::FixedSizeBinary(5),
        DataType::Null,
        DataType::Dictionary(Box::new(DataType::Int32), Box::new(DataType::Utf8)),
        DataType::Dictionary(Box::new(DataType::UInt8), Box::new(DataType::Int64)),
    ];
    let nested = vec![
        DataType::List(item(DataType::Int32)),
        DataType::LargeList(item(DataType::Utf8)),
        DataType::FixedSizeList(item(DataType::Float32), 3),
        DataType::List(item(DataType::Decimal128(12, 3))),
        DataType::Struct(Fields::from(vec![
            Field::new("a", DataType::Int64, true),
            Field::new("b", DataType::Utf8, false),
            Field::new("c", DataType::List(item(DataType::Boolean)), true),
        ])),
        DataType::List(item(DataType::Struct(Fields::from(vec![
            Field::new("x", DataType::Float64, true),
            Field::new("y", DataType::Binary, true),
        ])))),
    ];
    types.extend(nested);
    types
}

/// `len` random values of `data_type`, about a fifth of them null.
fn random_array(rng: &mut StdRng, data_type: &DataType, len: usize) -> ArrayRef {
    let nulls = NullBuffer::from((0..len).map(|_| rng.random_bool(0.8)).collect::<Vec<_>>());
    random_with(rng, data_type, len, Some(nulls))
}

fn random_bytes(rng: &mut StdRng, n: usize) -> Vec<u8> {
    (0..n).map(|_| rng.random()).collect()
}

/// A value that fits `precision` decimal digits.
fn fitting(rng: &mut StdRng, precision: u8) -> i128 {
    let limit = 10i128.pow(precision.min(38) as u32);
    rng.random_range(-limit + 1..limit)
}

fn random_with(
    rng: &mut StdRng,
    data_type: &DataType,
    len: usize,
    nulls: Option<NullBuffer>,
) -> ArrayRef {
    let width = data_type.primitive_width();
    match data_type {
        DataType::Null => Arc::new(NullArray::new(len)),
        DataType::Boolean => Arc::new(BooleanArray::new(
            (0..len).map(|_| rng.random_bool(0.5)).collect(),
            nulls,
        )),
        DataType::Decimal32(p, s) => Arc::new(
            Decimal32Array::new((0..len).map(|_| fitting(rng, *p) as i32).collect(), nulls)
                .with_precision_and_scale(*p, *s)
                .unwrap(),
        ),
        DataType::Decimal64(p, s) => Arc::new(
            Decimal64Array::new((0..len).map(|_| fitting(rng, *p) as i64).collect(), nulls)
                .with_precision_and_scale(*p, *s)
                .unwrap(),
        ),
        DataType::Decimal128(p, s) => Arc::new(
            Decimal128Array::new((0..len).map(|_| fitting(rng, *p)).collect(), nulls)
                .with_precision_and_scale(*p, *s)
                .unwrap(),
        ),
        DataType::Decimal256(p, s) => Arc::new(
            Decimal256Array::new(
                (0..len)
                    .map(|_| {
                        i256::from_i128(fitting(rng, 38))
                            .wrapping_mul(i256::from_i128(fitting(rng, 38)))
                    })
                    .collect(),
                nulls,
            )
            .with_precision_and_scale(*p, *s)
            .unwrap(),
        ),
        // Any bits are a valid value of these (NaN payloads included).
        _ if width.is_some() => {
            let bytes = random_bytes(rng, len * width.unwrap());
            make_array(
                ArrayData::builder(data_type.clone())
                    .len(len)
                    .add_buffer(Buffer::from_vec(bytes))
                    .nulls(nulls)
                    .build()
                    .unwrap(),
            )
        }
        DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View => {
            let values: Vec<Option<String>> = (0..len)
                .map(|i| {
                    nulls.as_ref().is_none_or(|n| n.is_valid(i)).then(|| {
                        let n = rng.random_range(0..12);
                        (0..n)
                            .map(|_| ['a', 'é', '€', '𝄞', ' ', 'z'][rng.random_range(0..6)])
                            .collect()
                    })
                })
                .collect();
            let utf8 = Arc::new(StringArray::from(values)) as ArrayRef;
            arrow_cast::cast(&utf8, data_type).unwrap()
        }
        DataType::Binary | DataType::LargeBinary | DataType::BinaryView => {
            let values: Vec<Option<Vec<u8>>> = (0..len)
                .map(|i| {
                    let n = rng.random_range(0..40);
                    nulls
                        .as_ref()
                        .is_none_or(|m| m.is_valid(i))
                        .then(|| random_bytes(rng, n))
                })
                .collect();
            let binary = Arc::new(BinaryArray::from_iter(values)) as ArrayRef;
            arrow_cast::cast(&binary, data_type).unwrap()
        }
        DataType::FixedSizeBinary(size) => Arc::new(
            FixedSizeBinaryArray::try_new(
                *size,
                random_bytes(rng, len * *size as usize).into(),
                nulls,
            )
            .unwrap(),
        ),
        DataType::Dictionary(key, value) => {
            let values = random_array(rng, value, 7);
            let keys: Vec<u64> = (0..len).map(|_| rng.random_range(0..7)).collect();
            let keys = Arc::new(UInt64Array::new(keys.into(), nulls)) as ArrayRef;
            let keys = arrow_cast::cast(&keys, key).unwrap();
            let data = ArrayData::builder(data_type.clone())
                .len(len)
                .add_buffer(keys.to_data().buffers()[0].clone())
                .nulls(keys.logical_nulls())
                .child_data(vec![values.to_data()])
                .build()
                .unwrap();
            make_array(data)
        }
        DataType::List(item) | DataType::LargeList(item) => {
            let lengths: Vec<usize> = (0..len)
                .map(|i| match nulls.as_ref().is_none_or(|n| n.is_valid(i)) {
                    true => rng.random_range(0..5),
                    false => 0,
                })
                .collect();
            let values = random_array(rng, item.data_type(), lengths.iter().sum());
            let list = ListArray::new(
                item.clone(),
                OffsetBuffer::from_lengths(lengths),
                values,
                nulls,
            );
            arrow_cast::cast(&list, data_type).unwrap()
        }
        DataType::FixedSizeList(item, size) => {
            let values = random_array(rng, item.data_type(), len * *size as usize);
            Arc::new(FixedSizeListArray::new(item.clone(), *size, values, nulls))
        }
        DataType::Struct(fields) => {
            let columns = fields
                .iter()
                .map(|f| match f.is_nullable() {
                    true => random_array(rng, f.data_type(), len),
                    false => random_with(rng, f.data_type(), len, None),
                })
                .collect();
            Arc::new(StructArray::new(fields.clone(), columns, nulls))
        }
        other => unimplemented!("no generator for {other}"),
    }
}

/// A map column (keys utf8, values u32), built apart: its layout has rules
/// the generic generator does not know.
fn random_map(rng: &mut StdRng, len: usize) -> ArrayRef {
    let mut builder = MapBuilder::new(None, StringBuilder::new(), UInt32Builder::new());
    for _ in 0..len {
        for k in 0..rng.random_range(0..4) {
            builder.keys().append_value(format!("k{k}"));
            match rng.random_bool(0.8) {
                true => builder.values().append_value(rng.random()),
                false => builder.values().append_null(),
            }
        }
        builder.append(rng.random_bool(0.85)).unwrap();
    }
    Arc::new(builder.finish())
}

/// The rows as the reader and scan hand them out, made comparable:
/// dictionaries compared by the values they stand for.
fn normalized(batches: &[RecordBatch], schema: &SchemaRef) -> Vec<ArrayData> {
    let joined = arrow_select::concat::concat_batches(schema, batches).unwrap();
    joined
        .columns()
        .iter()
        .map(|c| match c.data_type() {
            DataType::Dictionary(_, value) => arrow_cast::cast(c, value).unwrap().to_data(),
            _ => c.to_data(),
        })
        .collect()
}

#[tokio::test]
async fn every_type_reads_back_unchanged_after_a_flush() {
    for seed in 0..3u64 {
        let mut rng = StdRng::seed_from_u64(seed);
        let mut fields = vec![Field::new("id", DataType::Int64, false)];
        let mut columns: Vec<ArrayRef> =
            vec![Arc::new(Int64Array::from_iter_values(0..ROWS as i64))];
        for (i, data_type) in types().iter().enumerate() {
            fields.push(Field::new(format!("c{i}"), data_type.clone(), true));
            columns.push(random_array(&mut rng, data_type, ROWS));
        }
        let map = random_map(&mut rng, ROWS);
        fields.push(Field::new("map", map.data_type().clone(), true));
        columns.push(map);
        let schema: SchemaRef = Arc::new(Schema::new(fields));
        let whole = RecordBatch::try_new(schema.clone(), columns).unwrap();

        let root = memory_root("round-trip-types");
        let writer = ShardWriter::open(
            root.clone(),
            OpenOptions {
                shard_id: None,
                schema: schema.clone(),
                config: memtable(),
            },
        )
        .await
        .unwrap_or_else(|e| panic!("seed {seed}: open: {e}"));
        // Sliced batches: offsets into every buffer, bitmaps at odd bits.
        let cuts = [0, 1, 13, 50, ROWS];
        let slices: Vec<RecordBatch> = cuts
            .windows(2)
            .map(|w| whole.slice(w[0], w[1] - w[0]))
            .collect();
        writer.put(slices).await.unwrap();
        // Decimals beyond their precision cannot round-trip (Parquet keeps
        // as many bytes as the precision needs): refused, naming the column.
        for (i, field) in schema.fields().iter().enumerate() {
            let DataType::Decimal128(p, s) = field.data_type() else {
                continue;
            };
            let mut wide = whole.columns().to_vec();
            let too_big = 10i128.pow(*p as u32) + rng.random_range(0..1_000_000);
            let values = (0..ROWS).map(|r| if r == 7 { too_big } else { 0 });
            wide[i] = Arc::new(
                Decimal128Array::from_iter_values(values)
                    .with_precision_and_scale(*p, *s)
                    .unwrap(),
            );
            let wide = RecordBatch::try_new(schema.clone(), wide).unwrap();
            let err = writer.put(vec![wide]).await.unwrap_err();
            assert_eq!(err.code(), memwal_core::ErrorCode::InvalidInput, "{err}");
            let place = format!("'{}' at row 7", field.name());
            assert!(err.message().contains(&place), "{err} lacks {place}");
        }

        let (_, before) = writer.scan(&ScanRequest::default()).unwrap();
        assert!(writer.force_seal_active().await.unwrap());
        within("the flush", writer.wait_for_flush_drain())
            .await
            .unwrap();
        let manifest = writer.manifest().await.unwrap();
        assert_eq!(
            manifest.flushed_generations.len(),
            1,
            "the reader reads Parquet"
        );
        writer.close().await.unwrap();
        let reader = ShardReader::open(root, writer.shard_id()).await.unwrap();
        let (_, after) = reader.scan(&ScanRequest::default()).await.unwrap();

        let (before, after) = (normalized(&before, &schema), normalized(&after, &schema));
        assert_eq!(
            before[0],
            whole.column(0).to_data(),
            "seed {seed}: scan order"
        );
        for (i, field) in schema.fields().iter().enumerate() {
            let input = normalized(std::slice::from_ref(&whole), &schema);
            assert_eq!(
                before[i],
                input[i],
                "seed {seed}: scan changed {}",
                field.data_type()
            );
            assert_eq!(
                after[i],
                before[i],
                "seed {seed}: flush changed {}",
                field.data_type()
            );
        }
    }
}
