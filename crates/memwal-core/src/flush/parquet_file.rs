//! Writing one generation as `<8 hex>_gen_<N>/data.parquet`.

use std::io::Write;
use std::sync::Arc;

use arrow_array::RecordBatch;
use arrow_schema::DataType;
use bytes::Bytes;
use parquet::arrow::{ArrowSchemaConverter, ArrowWriter};
use parquet::basic::{Compression, ZstdLevel};
use parquet::errors::ParquetError;
use parquet::file::properties::{EnabledStatistics, WriterProperties};
use parquet::schema::types::ColumnPath;

use crate::error::{Error, Result};
use crate::format::layout::{generation_dir_name, ShardLayout};
use crate::manifest::FlushedGeneration;
use crate::memtable::MemTable;
#[cfg(unix)]
use crate::store::StagedFile;
use crate::store::{CreateOutcome, StorageRoot};

/// Codec of flushed Parquet files.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FlushCompression {
    None,
    Snappy,
    Lz4,
    Zstd,
}

impl FlushCompression {
    /// Every codec's name, as [`Self::parse`] takes them.
    pub const NAMES: &'static [&'static str] = &["none", "snappy", "lz4", "zstd"];

    pub fn parse(name: &str) -> Result<Self> {
        match name {
            "none" => Ok(Self::None),
            "snappy" => Ok(Self::Snappy),
            "lz4" => Ok(Self::Lz4),
            "zstd" => Ok(Self::Zstd),
            other => Err(Error::invalid_config(format!(
                "flushCompression must be one of none, snappy, lz4, zstd; got '{other}'"
            ))),
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Self::None => "none",
            Self::Snappy => "snappy",
            Self::Lz4 => "lz4",
            Self::Zstd => "zstd",
        }
    }

    fn codec(self) -> Compression {
        match self {
            Self::None => Compression::UNCOMPRESSED,
            Self::Snappy => Compression::SNAPPY,
            Self::Lz4 => Compression::LZ4_RAW,
            Self::Zstd => Compression::ZSTD(ZstdLevel::default()),
        }
    }
}

/// The encoder keeps a whole row group in memory before it joins the file,
/// so a generation written as one row group costs its size twice while it is
/// encoded. Wide rows (vectors) reach this size well before the row limit.
const MAX_ROW_GROUP_BYTES: usize = 8 << 20;

/// The largest buffer a data page should need (the value buffer, its
/// compressed copy, the page itself). The Node addon's allocator maps every
/// allocation of `memwal_alloc::DIRECT_MAP_THRESHOLD` (256 KiB) or more on
/// pages of its own (crates/memwal-alloc/src/mapped.rs has the measurement);
/// staying at half of that, even after a `Vec` doubles, lets the allocator
/// recycle page buffers: with parquet-rs's 1 MiB default every page took
/// fresh mappings, and the page faults, zeroing and unmapping of those cost
/// a fifth of a sustained ingest's CPU. memwal-alloc tests the two agree.
pub const MAX_PAGE_BUFFER_BYTES: usize = 128 * 1024;

/// Data pages are encoded in buffers of about this size, under
/// [`MAX_PAGE_BUFFER_BYTES`] with room for a page's overshoot.
const DATA_PAGE_BYTES: usize = 96 * 1024;

/// Dictionary encoding only where values tend to repeat: top-level strings,
/// binaries and Arrow dictionaries. Elsewhere, above all in float vectors, it
/// hashes every value only to fall back to plain pages once the dictionary
/// fills up, and cost most of the flush time (2.4x slower flushes measured
/// with `crates/memwal-alloc/examples/sustained_heap.rs`).
///
/// No statistics for leaves inside lists (the elements of a vector): a
/// min/max over all elements of many rows prunes nothing, and computing it
/// was a tenth of the encoding time.
pub(super) fn writer_properties(
    schema: &arrow_schema::Schema,
    compression: FlushCompression,
) -> Result<WriterProperties> {
    let mut props = WriterProperties::builder()
        .set_compression(compression.codec())
        .set_max_row_group_row_count(Some(128 * 1024))
        .set_max_row_group_bytes(Some(MAX_ROW_GROUP_BYTES))
        .set_data_page_size_limit(DATA_PAGE_BYTES)
        .set_dictionary_enabled(false);
    for field in schema.fields() {
        if matches!(
            field.data_type(),
            DataType::Utf8
                | DataType::LargeUtf8
                | DataType::Utf8View
                | DataType::Binary
                | DataType::LargeBinary
                | DataType::BinaryView
                | DataType::Dictionary(_, _)
        ) {
            props =
                props.set_column_dictionary_enabled(ColumnPath::from(field.name().as_str()), true);
        }
    }
    let leaves = ArrowSchemaConverter::new()
        .convert(schema)
        .map_err(|e| Error::internal(format!("Cannot map the schema to Parquet: {e}")))?;
    for leaf in leaves.columns() {
        if leaf.max_rep_level() > 0 {
            props =
                props.set_column_statistics_enabled(leaf.path().clone(), EnabledStatistics::None);
        }
    }
    Ok(props.build())
}

/// Encode batches as one Parquet file with the Arrow schema embedded, rows
/// in put order, into `out`.
fn encode_into<W: Write + Send>(
    out: W,
    table_schema: arrow_schema::SchemaRef,
    batches: &[RecordBatch],
    compression: FlushCompression,
) -> Result<()> {
    let props = writer_properties(&table_schema, compression)?;
    let mut writer = ArrowWriter::try_new(out, table_schema, Some(props))
        .map_err(|e| encode_error("Cannot start Parquet file", e))?;
    for batch in batches {
        writer
            .write(batch)
            .map_err(|e| encode_error("Cannot encode Parquet rows", e))?;
    }
    writer
        .close()
        .map_err(|e| encode_error("Cannot finish Parquet file", e))?;
    Ok(())
}

#[cfg(test)]
fn encode(
    table_schema: arrow_schema::SchemaRef,
    batches: &[RecordBatch],
    compression: FlushCompression,
) -> Result<Vec<u8>> {
    let mut out = Vec::new();
    encode_into(&mut out, table_schema, batches, compression)?;
    Ok(out)
}

/// Every row of `table` as one Parquet file, into `out`.
fn encode_table<W: Write + Send>(
    out: W,
    table: &MemTable,
    compression: FlushCompression,
) -> Result<()> {
    let batches: Vec<RecordBatch> = table.stored().iter().map(|b| b.batch.clone()).collect();
    encode_into(out, table.schema().clone(), &batches, compression)
}

/// A failed write of the file (disk full, say) is `IO`; anything else the
/// encoder reports is a bug, `INTERNAL`.
fn encode_error(context: &str, err: ParquetError) -> Error {
    match &err {
        ParquetError::External(inner) if inner.is::<std::io::Error>() => {
            Error::io(format!("{context}: {inner}"))
        }
        _ => Error::internal(format!("{context}: {err}")),
    }
}

/// Create `path` holding `table` as Parquet, if nothing is there yet.
async fn write_file(
    root: &StorageRoot,
    path: &object_store::path::Path,
    table: &Arc<MemTable>,
    compression: FlushCompression,
) -> Result<CreateOutcome> {
    let encoded = table.clone();
    // Streaming past the page cache needs direct I/O, which is unix-only.
    #[cfg(unix)]
    if let Some(file) = root.local_file(path) {
        return super::encoder_threads::run(move || {
            let io = |e: std::io::Error| Error::io(format!("Cannot write {}: {e}", file.display()));
            let mut staged = StagedFile::create(&file).map_err(io)?;
            encode_table(&mut staged, &encoded, compression)?;
            staged.finish().map_err(io)
        })
        .await;
    }
    let bytes = super::encoder_threads::run(move || {
        let mut bytes = Vec::new();
        encode_table(&mut bytes, &encoded, compression)?;
        Ok(bytes)
    })
    .await?;
    root.put_if_absent(path, Bytes::from(bytes)).await
}

/// Write `table`'s rows under a fresh random folder of the shard. Nothing
/// references the folder until the manifest commit, so a crash or a retry
/// leaves at most an unreferenced folder behind.
///
/// On a local root the encoder streams the file to disk as it goes; on an
/// object store the file is encoded in memory and uploaded whole.
pub async fn write_generation(
    root: &StorageRoot,
    layout: &ShardLayout,
    table: &Arc<MemTable>,
    compression: FlushCompression,
) -> Result<FlushedGeneration> {
    let folder = generation_dir_name(rand::random::<u32>(), table.generation());
    let path = root.path(&layout.generation_file(&folder));
    let outcome = write_file(root, &path, table, compression).await?;
    if outcome == CreateOutcome::AlreadyExists {
        return Err(Error::io(format!(
            "Generation folder {folder} already exists"
        )));
    }
    Ok(FlushedGeneration {
        generation: table.generation(),
        path: folder,
        in_memory_bytes: Some(table.estimated_bytes()),
        physical_rows: Some(table.row_count()),
        primary_key_bytes: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow_array::{FixedSizeListArray, Float32Array, Int64Array, StringArray};
    use arrow_schema::{Field, Schema};
    use parquet::basic::Encoding;
    use parquet::file::reader::{FileReader, SerializedFileReader};

    #[test]
    fn only_string_columns_are_dictionary_encoded() {
        let item = Arc::new(Field::new("item", DataType::Float32, true));
        let schema = Arc::new(Schema::new(vec![
            Field::new("id", DataType::Int64, false),
            Field::new("vector", DataType::FixedSizeList(item.clone(), 4), true),
            Field::new("text", DataType::Utf8, true),
        ]));
        let rows = 1000;
        let values = Float32Array::from_iter_values((0..rows * 4).map(|i| i as f32));
        let batch = RecordBatch::try_new(
            schema.clone(),
            vec![
                Arc::new(Int64Array::from_iter_values(0..rows as i64)),
                Arc::new(FixedSizeListArray::new(item, 4, Arc::new(values), None)),
                Arc::new(StringArray::from_iter_values(
                    (0..rows).map(|i| ["a", "b", "c"][i % 3]),
                )),
            ],
        )
        .unwrap();
        let file = encode(schema, &[batch], FlushCompression::Snappy).unwrap();
        let reader = SerializedFileReader::new(Bytes::from(file)).unwrap();
        let group = reader.metadata().row_group(0);
        let dictionary = |column: usize| {
            group
                .column(column)
                .encodings()
                .any(|e| e == Encoding::RLE_DICTIONARY || e == Encoding::PLAIN_DICTIONARY)
        };
        assert_eq!(group.num_columns(), 3);
        assert!(!dictionary(0), "id");
        assert!(!dictionary(1), "vector");
        assert!(dictionary(2), "text");
    }

    #[test]
    fn list_elements_have_no_statistics_and_top_level_columns_do() {
        let item = Arc::new(Field::new("item", DataType::Float32, true));
        let schema = Arc::new(Schema::new(vec![
            Field::new("id", DataType::Int64, false),
            Field::new("vector", DataType::FixedSizeList(item.clone(), 2), true),
            Field::new(
                "tags",
                DataType::List(Arc::new(Field::new("item", DataType::Utf8, true))),
                true,
            ),
        ]));
        let mut tags =
            arrow_array::builder::ListBuilder::new(arrow_array::builder::StringBuilder::new());
        for i in 0..10 {
            tags.values().append_value(format!("t{i}"));
            tags.append(true);
        }
        let values = Float32Array::from_iter_values((0..20).map(|i| i as f32));
        let batch = RecordBatch::try_new(
            schema.clone(),
            vec![
                Arc::new(Int64Array::from_iter_values(5..15)),
                Arc::new(FixedSizeListArray::new(item, 2, Arc::new(values), None)),
                Arc::new(tags.finish()),
            ],
        )
        .unwrap();
        let file = encode(schema, &[batch], FlushCompression::None).unwrap();
        let reader = SerializedFileReader::new(Bytes::from(file)).unwrap();
        let group = reader.metadata().row_group(0);
        assert_eq!(group.num_columns(), 3);
        match group.column(0).statistics() {
            Some(parquet::file::statistics::Statistics::Int64(s)) => {
                assert_eq!((s.min_opt(), s.max_opt()), (Some(&5), Some(&14)));
            }
            other => panic!("id statistics: {other:?}"),
        }
        assert!(group.column(1).statistics().is_none(), "vector elements");
        assert!(group.column(2).statistics().is_none(), "list elements");
    }

    #[test]
    fn data_pages_stay_under_the_page_buffer_limit() {
        let item = Arc::new(Field::new("item", DataType::Float32, true));
        let schema = Arc::new(Schema::new(vec![Field::new(
            "vector",
            DataType::FixedSizeList(item.clone(), 128),
            false,
        )]));
        // One put of 2,000 vectors: 1 MB of floats in a single batch.
        let values = Float32Array::from_iter_values((0..2000 * 128).map(|i| i as f32 * 0.37));
        let vectors = FixedSizeListArray::new(item, 128, Arc::new(values), None);
        let batch = RecordBatch::try_new(schema.clone(), vec![Arc::new(vectors)]).unwrap();
        let file = encode(schema, &[batch], FlushCompression::None).unwrap();
        let reader = SerializedFileReader::new(Bytes::from(file)).unwrap();
        let mut pages = 0;
        for page in reader
            .get_row_group(0)
            .unwrap()
            .get_column_page_reader(0)
            .unwrap()
        {
            let page = page.unwrap();
            assert!(
                page.buffer().len() < MAX_PAGE_BUFFER_BYTES,
                "a page of {} bytes",
                page.buffer().len()
            );
            pages += 1;
        }
        assert!(pages >= 10, "{pages} page(s) for 1 MB");
    }

    #[test]
    fn a_failing_file_write_is_an_io_error() {
        struct Full;
        impl Write for Full {
            fn write(&mut self, _: &[u8]) -> std::io::Result<usize> {
                Err(std::io::Error::new(
                    std::io::ErrorKind::StorageFull,
                    "no space left",
                ))
            }
            fn flush(&mut self) -> std::io::Result<()> {
                Ok(())
            }
        }
        let schema = Arc::new(Schema::new(vec![Field::new("id", DataType::Int64, false)]));
        let batch = RecordBatch::try_new(
            schema.clone(),
            vec![Arc::new(Int64Array::from_iter_values(0..10_000))],
        )
        .unwrap();
        let err = encode_into(Full, schema, &[batch], FlushCompression::None).unwrap_err();
        assert_eq!(err.code(), crate::error::ErrorCode::Io, "{err}");
        assert!(err.to_string().contains("no space left"), "{err}");
    }

    #[test]
    fn wide_rows_are_cut_into_row_groups_by_encoded_size() {
        let item = Arc::new(Field::new("item", DataType::Float32, true));
        let schema = Arc::new(Schema::new(vec![Field::new(
            "vector",
            DataType::FixedSizeList(item.clone(), 128),
            false,
        )]));
        // 20,000 rows of 512-byte vectors: 10.24 MB, far below the row limit.
        let rows = 20_000;
        let batches: Vec<RecordBatch> = (0..10)
            .map(|b| {
                let values = Float32Array::from_iter_values(
                    (0..rows / 10 * 128).map(|i| (b * rows * 128 + i) as f32),
                );
                let vectors = FixedSizeListArray::new(item.clone(), 128, Arc::new(values), None);
                RecordBatch::try_new(schema.clone(), vec![Arc::new(vectors)]).unwrap()
            })
            .collect();
        let file = encode(schema, &batches, FlushCompression::None).unwrap();
        let reader = SerializedFileReader::new(Bytes::from(file)).unwrap();
        let groups = reader.metadata().row_groups();
        assert!(groups.len() >= 2, "{} row group(s)", groups.len());
        let total: i64 = groups.iter().map(|g| g.num_rows()).sum();
        assert_eq!(total, rows as i64);
        for group in groups {
            assert!(
                group.total_byte_size() as usize <= MAX_ROW_GROUP_BYTES + (1 << 20),
                "a row group of {} bytes",
                group.total_byte_size()
            );
        }
    }
}
