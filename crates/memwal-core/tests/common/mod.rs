//! Helpers shared by the integration tests.
#![allow(dead_code)]

pub mod fault_store;
pub mod moto;

use std::sync::Arc;
use std::time::Duration;

use arrow_array::{Int64Array, RecordBatch, StringArray};
use arrow_schema::{DataType, Field, Schema, SchemaRef};
use memwal_core::{OpenOptions, ShardWriter, ShardWriterConfig, StorageRoot};

pub fn schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("id", DataType::Int64, false),
        Field::new("name", DataType::Utf8, true),
    ]))
}

/// A batch with ids `start..start+rows`.
pub fn batch(start: i64, rows: usize) -> RecordBatch {
    let ids: Vec<i64> = (start..start + rows as i64).collect();
    let names: Vec<String> = ids.iter().map(|i| format!("name-{i}")).collect();
    RecordBatch::try_new(
        schema(),
        vec![
            Arc::new(Int64Array::from(ids)),
            Arc::new(StringArray::from(names)),
        ],
    )
    .unwrap()
}

/// WAL-only config with the timer off, so only explicit triggers append.
pub fn wal_only() -> ShardWriterConfig {
    ShardWriterConfig {
        enable_memtable: false,
        max_wal_flush_interval: None,
        stats_log_interval: None,
        ..Default::default()
    }
}

pub fn memory_root(test: &str) -> StorageRoot {
    StorageRoot::open(&format!("memory://{test}-{}", uuid::Uuid::new_v4())).unwrap()
}

/// `n` iterations on a local backend, a quarter of them on S3 (moto
/// answers each request in milliseconds, not microseconds).
pub fn iterations(n: usize) -> usize {
    match std::env::var("MEMWAL_TEST_BACKEND").as_deref() {
        Ok("s3") => n.div_ceil(4),
        _ => n,
    }
}

/// A fresh root on the backend named by `MEMWAL_TEST_BACKEND`: `memory`
/// (the default), `file` (a directory under Cargo's test temp dir) or `s3`
/// (a prefix on a moto server shared by the test process).
pub fn test_root(test: &str) -> StorageRoot {
    let unique = format!("{test}-{}", uuid::Uuid::new_v4());
    match std::env::var("MEMWAL_TEST_BACKEND").as_deref() {
        Err(_) | Ok("memory") => memory_root(test),
        Ok("file") => {
            let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join(unique);
            std::fs::create_dir_all(&dir).unwrap();
            StorageRoot::open(&format!("file://{}", dir.display())).unwrap()
        }
        Ok("s3") => moto::s3_root(moto::shared_moto(), test),
        Ok(other) => panic!("MEMWAL_TEST_BACKEND={other}: use memory, file or s3"),
    }
}

pub async fn open(
    root: &StorageRoot,
    shard: Option<uuid::Uuid>,
    config: ShardWriterConfig,
) -> ShardWriter {
    open_with_schema(root, shard, schema(), config).await
}

pub async fn open_with_schema(
    root: &StorageRoot,
    shard: Option<uuid::Uuid>,
    schema: SchemaRef,
    config: ShardWriterConfig,
) -> ShardWriter {
    ShardWriter::open(
        root.clone(),
        OpenOptions {
            shard_id: shard,
            schema,
            config,
        },
    )
    .await
    .unwrap()
}

/// Fails the test instead of hanging when an awaited event never comes.
pub async fn within<T>(what: &str, fut: impl std::future::Future<Output = T>) -> T {
    tokio::time::timeout(Duration::from_secs(20), fut)
        .await
        .unwrap_or_else(|_| panic!("timed out waiting for {what}"))
}

/// MemTable-mode config with the timer off.
pub fn memtable() -> ShardWriterConfig {
    ShardWriterConfig {
        enable_memtable: true,
        max_wal_flush_interval: None,
        stats_log_interval: None,
        wal_persist_retry_base_delay: Duration::from_millis(1),
        ..Default::default()
    }
}

/// Every id in `batches`, in order.
pub fn ids(batches: &[RecordBatch]) -> Vec<i64> {
    batches
        .iter()
        .flat_map(|b| {
            b.column(0)
                .as_any()
                .downcast_ref::<Int64Array>()
                .unwrap()
                .values()
                .to_vec()
        })
        .collect()
}

/// The rows of every flushed generation in the latest manifest, in
/// generation order, read back with the parquet crate's own reader.
pub async fn flushed_rows(root: &StorageRoot, shard: uuid::Uuid) -> Vec<RecordBatch> {
    use memwal_core::format::layout::ShardLayout;
    use memwal_core::manifest::ManifestStore;
    use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
    let layout = ShardLayout::new(shard);
    let manifests = ManifestStore::new(root.clone(), layout.clone(), 2);
    let manifest = manifests.read_latest().await.unwrap().unwrap();
    let mut out = Vec::new();
    for generation in &manifest.flushed_generations {
        let path = root.path(&layout.generation_file(&generation.path));
        let bytes = root
            .get(&path)
            .await
            .unwrap()
            .expect("generation file exists");
        let reader = ParquetRecordBatchReaderBuilder::try_new(bytes)
            .unwrap()
            .build()
            .unwrap();
        for batch in reader {
            out.push(batch.unwrap());
        }
    }
    out
}

/// Every id in the shard, read through a fresh [`ShardReader`] snapshot
/// (flushed generations plus the WAL tail).
///
/// [`ShardReader`]: memwal_core::read::shard_reader::ShardReader
pub async fn reader_ids(root: &StorageRoot, shard: uuid::Uuid) -> Vec<i64> {
    use memwal_core::read::scan::ScanRequest;
    use memwal_core::read::shard_reader::ShardReader;
    let reader = ShardReader::open(root.clone(), shard).await.unwrap();
    let (_, batches) = reader.scan(&ScanRequest::default()).await.unwrap();
    ids(&batches)
}

/// The durability contract after a crash or a fault: every acknowledged
/// id is present exactly once, every other id at most once, and nothing
/// appears that was never attempted.
pub fn assert_kept(present: &[i64], acked: &[i64], attempted: &std::collections::HashSet<i64>) {
    let mut seen = std::collections::HashMap::<i64, usize>::new();
    for id in present {
        *seen.entry(*id).or_default() += 1;
    }
    for id in acked {
        assert_eq!(
            seen.get(id).copied().unwrap_or(0),
            1,
            "acknowledged id {id} must be present exactly once"
        );
    }
    for (id, count) in &seen {
        assert!(attempted.contains(id), "id {id} was never written");
        assert_eq!(*count, 1, "id {id} is present {count} times");
    }
}

/// Remove WAL entry `position` of `shard` behind memwal's back (a lost
/// object); returns its bytes, to put back later.
pub async fn remove_wal_entry(
    root: &StorageRoot,
    shard: uuid::Uuid,
    position: u64,
) -> bytes::Bytes {
    use object_store::ObjectStoreExt;
    let path = root.path(&memwal_core::ShardLayout::new(shard).wal_entry(position));
    let bytes = root.get(&path).await.unwrap().expect("the entry exists");
    root.store().delete(&path).await.unwrap();
    bytes
}

/// Whether WAL entry `position` of `shard` exists.
pub async fn wal_entry_exists(root: &StorageRoot, shard: uuid::Uuid, position: u64) -> bool {
    let path = root.path(&memwal_core::ShardLayout::new(shard).wal_entry(position));
    root.exists(&path).await.unwrap()
}
