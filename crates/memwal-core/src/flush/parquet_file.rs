//! Writing one generation as `<8 hex>_gen_<N>/data.parquet`.

use std::sync::Arc;

use arrow_array::RecordBatch;
use bytes::Bytes;
use parquet::arrow::ArrowWriter;
use parquet::basic::{Compression, ZstdLevel};
use parquet::file::properties::WriterProperties;

use crate::error::{Error, Result};
use crate::layout::ShardLayout;
use crate::manifest::FlushedGeneration;
use crate::memtable::MemTable;
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

/// Encode batches as one Parquet file with the Arrow schema embedded, rows
/// in put order.
fn encode(
    table_schema: arrow_schema::SchemaRef,
    batches: &[RecordBatch],
    compression: FlushCompression,
) -> Result<Vec<u8>> {
    let props = WriterProperties::builder()
        .set_compression(compression.codec())
        .set_max_row_group_row_count(Some(128 * 1024))
        .build();
    let mut out = Vec::new();
    let mut writer = ArrowWriter::try_new(&mut out, table_schema, Some(props))
        .map_err(|e| Error::internal(format!("Cannot start Parquet file: {e}")))?;
    for batch in batches {
        writer
            .write(batch)
            .map_err(|e| Error::internal(format!("Cannot encode Parquet rows: {e}")))?;
    }
    writer
        .close()
        .map_err(|e| Error::internal(format!("Cannot finish Parquet file: {e}")))?;
    Ok(out)
}

/// Write `table`'s rows under a fresh random folder of the shard. Nothing
/// references the folder until the manifest commit, so a crash or a retry
/// leaves at most an unreferenced folder behind.
pub async fn write_generation(
    root: &StorageRoot,
    layout: &ShardLayout,
    table: &Arc<MemTable>,
    compression: FlushCompression,
) -> Result<FlushedGeneration> {
    let encoded_table = table.clone();
    let bytes = tokio::task::spawn_blocking(move || {
        let batches: Vec<RecordBatch> = encoded_table
            .stored()
            .iter()
            .map(|b| b.batch.clone())
            .collect();
        encode(encoded_table.schema().clone(), &batches, compression)
    })
    .await??;
    let folder = format!("{:08x}_gen_{}", rand::random::<u32>(), table.generation());
    let path = root.path(&format!("{}/{folder}/data.parquet", layout.shard_dir()));
    match root.put_if_absent(&path, Bytes::from(bytes)).await? {
        CreateOutcome::Created => {}
        CreateOutcome::AlreadyExists => {
            return Err(Error::io(format!(
                "Generation folder {folder} already exists"
            )));
        }
    }
    Ok(FlushedGeneration {
        generation: table.generation(),
        path: folder,
        in_memory_bytes: Some(table.estimated_bytes()),
        physical_rows: Some(table.row_count()),
        primary_key_bytes: None,
    })
}
